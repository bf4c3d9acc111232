//! Releases and their items (migration 0011).
//!
//! Invariant: a release never changes. Its items are copies written once, in the transaction
//! that creates the release; both tables refuse UPDATE (triggers), and nothing here updates.
//! The version is the dev set's highest plus one, read inside the write transaction, and
//! `UNIQUE (devset_id, version)` turns a concurrent freeze of the same dev set into a conflict
//! instead of two `v2`s.
//!
//! Errors are domain errors (`ReleaseStoreError`); the API maps them.
use futures::TryStreamExt;
use sqlx::FromRow;

use super::{now_ms, BeginWrite, Db};
use crate::releases::{Candidate, ReleaseItem};
use crate::{on_read, on_write};

#[derive(Debug, thiserror::Error)]
pub enum ReleaseStoreError {
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Database(#[from] sqlx::Error),
}

#[derive(Clone, Debug, FromRow)]
pub struct ReleaseRow {
    pub id: i64,
    pub project_id: i64,
    pub devset_id: i64,
    pub version: i64,
    pub lineage: String,
    pub content_hash: String,
    pub item_count: i64,
    pub created_by: Option<String>,
    pub created_at: i64,
}

const RELEASE_COLUMNS: &str = "r.id, r.project_id, r.devset_id, r.version, r.lineage, r.content_hash, r.item_count,
     (SELECT u.username FROM users u WHERE u.id = r.created_by) AS created_by, r.created_at";

/// What a freeze needs of an item: content, final-label ingredients, open reviews.
/// `$1` is the project. The latest decision is the highest id (`review_decisions_item`).
/// An item is unresolved when it has an open review entry, or when it is complete, has no
/// decision and its consensus posterior is below the project's review threshold (the derived
/// part of the disagreement queue, `store::review`).
const CANDIDATE_SELECT: &str = "SELECT i.id, i.external_id, i.kind, i.text, i.image_sha256, i.meta, i.weight, i.source, i.license,
        i.label_count, i.gold, COALESCE(i.overlap, p.overlap) AS k, %STRATUM% AS stratum,
        c.labels AS consensus, c.posterior, c.method AS consensus_method,
        (SELECT d.labels FROM review_decisions d WHERE d.item_id = i.id ORDER BY d.id DESC LIMIT 1) AS decision,
        (SELECT u.username FROM review_decisions d JOIN users u ON u.id = d.reviewer_id
          WHERE d.item_id = i.id ORDER BY d.id DESC LIMIT 1) AS decided_by,
        (SELECT COUNT(*) FROM review_entries e WHERE e.item_id = i.id AND e.resolved_at IS NULL)
        + CASE WHEN c.posterior < p.review_threshold AND i.label_count >= COALESCE(i.overlap, p.overlap)
                AND NOT EXISTS (SELECT 1 FROM review_decisions d WHERE d.item_id = i.id) THEN 1 ELSE 0 END
          AS open_reviews
   FROM items i
   JOIN projects p ON p.id = i.project_id
   LEFT JOIN consensus c ON c.item_id = i.id";

/// The dev set's members as freeze candidates, in item order.
pub async fn members(db: &Db, project_id: i64, devset_id: i64) -> sqlx::Result<Vec<Candidate>> {
    let sql = format!(
        "{} JOIN devset_members m ON m.item_id = i.id WHERE i.project_id = $1 AND m.devset_id = $2 ORDER BY i.id",
        CANDIDATE_SELECT.replace("%STRATUM%", "m.stratum")
    );
    on_read!(db, pool => sqlx::query_as::<_, Candidate>(&sql).bind(project_id).bind(devset_id).fetch_all(pool).await)
}

/// Items of the training pool (visible, in no dev set) that have a final-label ingredient
/// (a decision, a gold answer or a consensus), for a train-dev split; in item order.
pub async fn labeled_pool(db: &Db, project_id: i64) -> sqlx::Result<Vec<Candidate>> {
    let sql = format!(
        "{} WHERE i.project_id = $1 AND i.id <= p.visible_max_item_id
            AND NOT EXISTS (SELECT 1 FROM devset_members m WHERE m.item_id = i.id)
            AND (c.item_id IS NOT NULL OR i.gold IS NOT NULL
                 OR EXISTS (SELECT 1 FROM review_decisions d WHERE d.item_id = i.id))
          ORDER BY i.id",
        CANDIDATE_SELECT.replace("%STRATUM%", "''")
    );
    on_read!(db, pool => sqlx::query_as::<_, Candidate>(&sql).bind(project_id).fetch_all(pool).await)
}

/// One item of the training pool: id, external id, text, image sha256.
pub type PoolItem = (i64, Option<String>, Option<String>, Option<String>);

/// Streams the project's items that can end up in training (visible, in no dev set) into
/// `tx` in batches of `batch` (the leakage check runs on a blocking thread at the other end,
/// so the async workers only read rows; the bounded channel keeps a few batches in memory).
/// Stops early, without error, when the receiver is gone. Returns the rows read.
pub async fn send_pool_items(
    db: &Db,
    project_id: i64,
    batch: usize,
    tx: &tokio::sync::mpsc::Sender<Vec<PoolItem>>,
) -> sqlx::Result<u64> {
    on_read!(db, pool => {
        let mut rows = sqlx::query_as::<_, PoolItem>(
            "SELECT i.id, i.external_id, i.text, i.image_sha256 FROM items i
              WHERE i.project_id = $1
                AND i.id <= (SELECT p.visible_max_item_id FROM projects p WHERE p.id = $1)
                AND NOT EXISTS (SELECT 1 FROM devset_members m WHERE m.item_id = i.id)
              ORDER BY i.id",
        )
        .bind(project_id)
        .fetch(pool);
        let mut n = 0;
        let mut buf = Vec::with_capacity(batch);
        while let Some(row) = rows.try_next().await? {
            n += 1;
            buf.push(row);
            if buf.len() >= batch && tx.send(std::mem::replace(&mut buf, Vec::with_capacity(batch))).await.is_err() {
                return Ok(n);
            }
        }
        if !buf.is_empty() {
            let _ = tx.send(buf).await;
        }
        Ok(n)
    })
}

/// When the latest label (annotation, written or changed) of the dev set's members was
/// written, in ms; None when they have none.
pub async fn latest_label_at(db: &Db, devset_id: i64) -> sqlx::Result<Option<i64>> {
    on_read!(db, pool => {
        sqlx::query_scalar::<_, Option<i64>>(
            "SELECT MAX(a.updated_at) FROM annotations a JOIN devset_members m ON m.item_id = a.item_id WHERE m.devset_id = $1",
        )
        .bind(devset_id)
        .fetch_one(pool)
        .await
    })
}

pub struct NewRelease<'a> {
    pub project_id: i64,
    pub devset_id: i64,
    pub lineage: &'a str,
    pub content_hash: &'a str,
    pub created_by: i64,
    /// The freeze job writing it (`releases.job_id`, migration 0018).
    pub job_id: Option<i64>,
}

/// Rows per INSERT statement (15 parameters each).
const ITEM_BATCH: usize = 60;

/// Writes a release and its items in one transaction; returns its id and version.
pub async fn insert_release(db: &Db, r: &NewRelease<'_>, items: &[ReleaseItem]) -> Result<(i64, i64), ReleaseStoreError> {
    let now = now_ms();
    let result: Result<(i64, i64), ReleaseStoreError> = on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let version: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(version), 0) + 1 FROM releases WHERE devset_id = $1")
            .bind(r.devset_id)
            .fetch_one(&mut *tx)
            .await?;
        let inserted = sqlx::query_scalar::<_, i64>(
            "INSERT INTO releases (project_id, devset_id, version, lineage, content_hash, item_count, created_by, created_at, job_id)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(r.project_id)
        .bind(r.devset_id)
        .bind(version)
        .bind(r.lineage)
        .bind(r.content_hash)
        .bind(items.len() as i64)
        .bind(r.created_by)
        .bind(now)
        .bind(r.job_id)
        .fetch_one(&mut *tx)
        .await;
        let id = match inserted {
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
                return Err(ReleaseStoreError::Conflict(
                    "another release of this dev set was frozen at the same moment; freeze again".into(),
                ));
            }
            other => other?,
        };
        for (c, chunk) in items.chunks(ITEM_BATCH).enumerate() {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = 15 * i;
                    format!("(${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${}, ${})",
                        b + 1, b + 2, b + 3, b + 4, b + 5, b + 6, b + 7, b + 8, b + 9, b + 10, b + 11, b + 12, b + 13, b + 14, b + 15)
                })
                .collect();
            let sql = format!(
                "INSERT INTO release_items (release_id, position, item_id, external_id, kind, text, image_sha256, meta,
                    weight, source, license, labels, provenance, n_labels, split) VALUES {}",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (j, it) in chunk.iter().enumerate() {
                q = q
                    .bind(id)
                    .bind((c * ITEM_BATCH + j) as i64)
                    .bind(it.item_id)
                    .bind(&it.external_id)
                    .bind(&it.kind)
                    .bind(&it.text)
                    .bind(&it.image_sha256)
                    .bind(&it.meta)
                    .bind(it.weight)
                    .bind(&it.source)
                    .bind(&it.license)
                    .bind(serde_json::to_string(&it.labels).unwrap_or_else(|_| "[]".into()))
                    .bind(&it.provenance)
                    .bind(it.n_labels)
                    .bind(&it.split);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok((id, version))
    });
    result
}

pub async fn list_releases(db: &Db, project_id: i64, devset_id: Option<i64>) -> sqlx::Result<Vec<ReleaseRow>> {
    on_read!(db, pool => {
        sqlx::query_as::<_, ReleaseRow>(&format!(
            "SELECT {RELEASE_COLUMNS} FROM releases r
              WHERE r.project_id = $1 AND ($2 IS NULL OR r.devset_id = $2) ORDER BY r.devset_id, r.version"
        ))
        .bind(project_id)
        .bind(devset_id)
        .fetch_all(pool)
        .await
    })
}

pub async fn get_release(db: &Db, project_id: i64, id: i64) -> sqlx::Result<Option<ReleaseRow>> {
    on_read!(db, pool => {
        sqlx::query_as::<_, ReleaseRow>(&format!("SELECT {RELEASE_COLUMNS} FROM releases r WHERE r.project_id = $1 AND r.id = $2"))
            .bind(project_id)
            .bind(id)
            .fetch_optional(pool)
            .await
    })
}

/// Items per split of a release.
pub async fn split_counts(db: &Db, release_id: i64) -> sqlx::Result<Vec<(String, i64)>> {
    on_read!(db, pool => {
        sqlx::query_as::<_, (String, i64)>(
            "SELECT split, COUNT(*) FROM release_items WHERE release_id = $1 GROUP BY split ORDER BY split",
        )
        .bind(release_id)
        .fetch_all(pool)
        .await
    })
}

#[derive(FromRow)]
struct ItemRow {
    item_id: i64,
    external_id: Option<String>,
    kind: String,
    text: Option<String>,
    image_sha256: Option<String>,
    meta: String,
    weight: f64,
    source: Option<String>,
    license: Option<String>,
    labels: String,
    provenance: String,
    n_labels: i64,
    split: String,
}

impl From<ItemRow> for ReleaseItem {
    fn from(r: ItemRow) -> ReleaseItem {
        ReleaseItem {
            item_id: r.item_id,
            external_id: r.external_id,
            kind: r.kind,
            text: r.text,
            image_sha256: r.image_sha256,
            // Written canonical by `insert_release` (`releases::canonical_meta`).
            meta: r.meta,
            weight: r.weight,
            source: r.source,
            license: r.license,
            labels: serde_json::from_str(&r.labels).unwrap_or_default(),
            provenance: r.provenance,
            n_labels: r.n_labels,
            split: r.split,
        }
    }
}

const ITEM_SELECT: &str = "SELECT item_id, external_id, kind, text, image_sha256, meta, weight, source, license, labels, provenance,
        n_labels, split FROM release_items";

/// A release's items in their canonical order (the order the hash was computed in).
pub async fn release_items(db: &Db, release_id: i64) -> sqlx::Result<Vec<ReleaseItem>> {
    let rows: Vec<ItemRow> = on_read!(db, pool => {
        sqlx::query_as::<_, ItemRow>(&format!("{ITEM_SELECT} WHERE release_id = $1 ORDER BY position"))
            .bind(release_id)
            .fetch_all(pool)
            .await?
    });
    Ok(rows.into_iter().map(ReleaseItem::from).collect())
}

/// Streams a release's items (all, or one split's) in canonical order past `f`, one row in
/// memory at a time; stops at the first error `f` returns and gives it back.
pub async fn for_each_release_item<E: From<sqlx::Error>>(
    db: &Db,
    release_id: i64,
    split: Option<&str>,
    mut f: impl FnMut(ReleaseItem) -> Result<(), E>,
) -> Result<(), E> {
    let sql = format!("{ITEM_SELECT} WHERE release_id = $1 AND ($2 IS NULL OR split = $2) ORDER BY position");
    on_read!(db, pool => {
        let mut rows = sqlx::query_as::<_, ItemRow>(&sql)
        .bind(release_id)
        .bind(split)
        .fetch(pool);
        while let Some(row) = rows.try_next().await? {
            f(ReleaseItem::from(row))?;
        }
        Ok(())
    })
}

// ---- freeze jobs (migration 0018) -----------------------------------------------------------
//
// A freeze runs in the job runner (`crate::releases::job`). These statements touch the `jobs`
// table directly rather than through `store::jobs::enqueue`, which folds a second queued job of
// the same kind and project into the first: two freezes (of two dev sets, or with different
// overrides) are two pieces of work, never one.

/// Queues a freeze job; returns its id.
pub async fn enqueue_freeze(db: &Db, kind: &str, project_id: i64, params: &str) -> sqlx::Result<i64> {
    on_write!(db, pool => {
        sqlx::query_scalar(
            "INSERT INTO jobs (kind, project_id, state, params, created_at) VALUES ($1, $2, 'queued', $3, $4) RETURNING id",
        )
        .bind(kind)
        .bind(project_id)
        .bind(params)
        .bind(now_ms())
        .fetch_one(pool)
        .await
    })
}

/// Records a running freeze's phase and counts (and so its heartbeat).
pub async fn set_phase(db: &Db, job_id: i64, phase: &str, done: i64, total: i64) -> sqlx::Result<()> {
    on_write!(db, pool => {
        sqlx::query(
            "UPDATE jobs SET phase = $1, progress_done = $2, progress_total = $3, heartbeat_at = $4 WHERE id = $5 AND state = 'running'",
        )
        .bind(phase)
        .bind(done)
        .bind(total)
        .bind(now_ms())
        .bind(job_id)
        .execute(pool)
        .await?;
        Ok(())
    })
}

/// A freeze job as its progress page reads it.
#[derive(Clone, Debug, FromRow)]
pub struct FreezeJobRow {
    #[sqlx(flatten)]
    pub job: super::jobs::JobRow,
    pub phase: Option<String>,
    pub result: Option<String>,
}

/// The job `id` of `kind` in the project, with its phase and result.
pub async fn freeze_job(db: &Db, kind: &str, project_id: i64, id: i64) -> sqlx::Result<Option<FreezeJobRow>> {
    on_read!(db, pool => {
        sqlx::query_as::<_, FreezeJobRow>(
            "SELECT id, kind, project_id, state, progress_done, progress_total, params, error, created_at, started_at,
                    heartbeat_at, finished_at, phase, result
               FROM jobs WHERE id = $1 AND project_id = $2 AND kind = $3",
        )
        .bind(id)
        .bind(project_id)
        .bind(kind)
        .fetch_optional(pool)
        .await
    })
}

/// The release a freeze job wrote, if it committed one.
pub async fn release_of_job(db: &Db, job_id: i64) -> sqlx::Result<Option<i64>> {
    on_read!(db, pool => {
        sqlx::query_scalar("SELECT id FROM releases WHERE job_id = $1").bind(job_id).fetch_optional(pool).await
    })
}

/// Items that can end up in training (visible, in no dev set): the leakage check's progress total.
pub async fn pool_count(db: &Db, project_id: i64) -> sqlx::Result<i64> {
    on_read!(db, pool => {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM items i
              WHERE i.project_id = $1
                AND i.id <= (SELECT p.visible_max_item_id FROM projects p WHERE p.id = $1)
                AND NOT EXISTS (SELECT 1 FROM devset_members m WHERE m.item_id = i.id)",
        )
        .bind(project_id)
        .fetch_one(pool)
        .await
    })
}
