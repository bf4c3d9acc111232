//! The `imports` table and the statements that make a staged import visible or remove it.
//!
//! An import inserts its items in transactions (`items::insert_chunk`) that hold the writer for
//! a few milliseconds while others write (`import::pacing`), so labelers' submissions and lease
//! updates interleave with it. Its rows stay invisible (pending) until `commit` raises the project's watermark
//! `projects.visible_max_item_id` in one short transaction; every reader of items filters
//! `i.id <= visible_max_item_id`. A failed, refused or cancelled import deletes its pending
//! rows in short chunks (`delete_pending_chunk`) before it is marked finished, and an import
//! whose server died is found by its stale heartbeat and cleaned up the same way (`stale`).
//! Migration `0002_staged_imports.sql` says why item ids can serve as the watermark.
use super::imported_annotations::{AttachOutcome, ImportedAnnotation};
use super::BeginWrite;
use super::{now_ms, Db};
use crate::error::{AppError, AppResult};
use crate::on_write;

/// Rows deleted per statement when removing a failed import's pending rows: small enough
/// that each statement holds the SQLite writer for a few milliseconds only.
pub const DELETE_BATCH: i64 = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EndState {
    Failed,
    Cancelled,
}

impl EndState {
    fn as_str(self) -> &'static str {
        match self {
            EndState::Failed => "failed",
            EndState::Cancelled => "cancelled",
        }
    }
}

/// Registers a running import of the project. A second one while the first runs is refused
/// (409) by the partial unique index `imports_one_running`.
pub async fn begin(db: &Db, project_id: i64) -> AppResult<i64> {
    let now = now_ms();
    let res: Result<i64, sqlx::Error> = on_write!(db, pool => sqlx::query_scalar(
        "INSERT INTO imports (project_id, state, started_at, heartbeat_at) VALUES ($1, 'running', $2, $2)
         RETURNING id",
    )
    .bind(project_id)
    .bind(now)
    .fetch_one(pool)
    .await);
    match res {
        Ok(id) => Ok(id),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(AppError::conflict(
            "another import into this project is still running; wait until it finishes (imports of one \
             project run one at a time; one cut short by a server crash is cleaned up within 2 minutes)",
        )),
        Err(e) => Err(e.into()),
    }
}

/// Refreshes the heartbeat (and the progress counters) of a running import.
pub async fn heartbeat(db: &Db, import_id: i64, lines: i64, inserted: i64) -> AppResult<()> {
    on_write!(db, pool => sqlx::query(
        "UPDATE imports SET heartbeat_at = $2, lines = $3, inserted = $4 WHERE id = $1 AND state = 'running'",
    )
    .bind(import_id)
    .bind(now_ms())
    .bind(lines)
    .bind(inserted)
    .execute(pool)
    .await
    .map(|_| ())?);
    Ok(())
}

/// Makes the import's pending rows visible: one short transaction that marks the import
/// committed, raises the watermark to the highest id it inserted and bumps the item count.
/// Fails (and changes nothing) if the import is no longer running, e.g. because a clean-up
/// took it for dead.
/// `annotations` (a Label Studio import's, with the importing user): written in the same
/// transaction, so the items and their annotations commit together or not at all.
pub async fn commit(
    db: &Db,
    import_id: i64,
    project_id: i64,
    lines: i64,
    inserted: i64,
    max_id: i64,
    annotations: Option<(&[ImportedAnnotation], i64)>,
) -> AppResult<Option<AttachOutcome>> {
    let now = now_ms();
    let attached = on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let marked = sqlx::query(
            "UPDATE imports SET state = 'committed', finished_at = $2, heartbeat_at = $2, lines = $3, inserted = $4
             WHERE id = $1 AND state = 'running'",
        )
        .bind(import_id)
        .bind(now)
        .bind(lines)
        .bind(inserted)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if marked != 1 {
            return Err(AppError::Internal(anyhow::anyhow!(
                "import {import_id} was no longer running when it was about to commit"
            )));
        }
        if inserted > 0 {
            sqlx::query(
                "UPDATE projects SET visible_max_item_id = $2, item_count = item_count + $3 WHERE id = $1",
            )
            .bind(project_id)
            .bind(max_id)
            .bind(inserted)
            .execute(&mut *tx)
            .await?;
        }
        let attached = match annotations {
            Some((anns, actor)) => Some(crate::attach_imported_annotations!(tx, project_id, actor, anns, now)?),
            None => None,
        };
        tx.commit().await?;
        attached
    });
    Ok(attached)
}

/// Deletes up to `DELETE_BATCH` pending rows of the project (ids above its watermark);
/// returns how many. Call until it returns 0.
pub async fn delete_pending_chunk(db: &Db, project_id: i64) -> AppResult<u64> {
    let n = on_write!(db, pool => sqlx::query(
        "DELETE FROM items WHERE id IN (
             SELECT id FROM items
             WHERE project_id = $1 AND id > (SELECT visible_max_item_id FROM projects WHERE id = $1)
             ORDER BY id LIMIT $2)",
    )
    .bind(project_id)
    .bind(DELETE_BATCH)
    .execute(pool)
    .await?
    .rows_affected());
    Ok(n)
}

/// Marks a running import failed or cancelled (after its pending rows were deleted).
pub async fn finish(db: &Db, import_id: i64, state: EndState, error: &str) -> AppResult<()> {
    let now = now_ms();
    on_write!(db, pool => sqlx::query(
        "UPDATE imports SET state = $2, finished_at = $3, error = $4 WHERE id = $1 AND state = 'running'",
    )
    .bind(import_id)
    .bind(state.as_str())
    .bind(now)
    .bind(error)
    .execute(pool)
    .await
    .map(|_| ())?);
    Ok(())
}

/// Running imports whose heartbeat is older than `older_than_ms` (all running ones with 0):
/// their server died. (id, project id).
pub async fn stale(db: &Db, older_than_ms: i64) -> AppResult<Vec<(i64, i64)>> {
    // On the writer: the caller cleans them up next, and must not miss a fresh heartbeat.
    let rows = on_write!(db, pool => sqlx::query_as::<_, (i64, i64)>(
        "SELECT id, project_id FROM imports WHERE state = 'running' AND heartbeat_at <= $1 ORDER BY id",
    )
    .bind(now_ms() - older_than_ms)
    .fetch_all(pool)
    .await?);
    Ok(rows)
}

/// The state of an import (for tests and diagnostics).
pub async fn state_of(db: &Db, import_id: i64) -> AppResult<Option<String>> {
    Ok(crate::on_read!(db, pool => sqlx::query_scalar("SELECT state FROM imports WHERE id = $1")
        .bind(import_id)
        .fetch_optional(pool)
        .await?))
}

/// Deletes the `images` row of each given image that no item references any more, and says
/// which of them are now unknown to the database (so their files may go too).
pub async fn delete_unreferenced_images(db: &Db, shas: &[String]) -> AppResult<Vec<String>> {
    let mut gone = Vec::new();
    for chunk in shas.chunks(200) {
        on_write!(db, pool => {
            let mut tx = BeginWrite::begin_write(pool).await?;
            for sha in chunk {
                sqlx::query(
                    "DELETE FROM images WHERE sha256 = $1
                       AND NOT EXISTS (SELECT 1 FROM items WHERE image_sha256 = $1)",
                )
                .bind(sha)
                .execute(&mut *tx)
                .await?;
                let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM images WHERE sha256 = $1")
                    .bind(sha)
                    .fetch_one(&mut *tx)
                    .await?;
                if left == 0 {
                    gone.push(sha.clone());
                }
            }
            tx.commit().await?;
        });
    }
    Ok(gone)
}
