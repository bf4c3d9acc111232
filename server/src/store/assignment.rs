//! Handing out items: leases, skips, and the submission that closes a lease.
//!
//! The invariants, under any concurrency: no item gets more than `overlap` annotations, and
//! no labeler annotates an item twice. Every statement that reads and then changes an item's
//! capacity runs while holding the project's assignment lock: on SQLite that is the single
//! writer connection; on PostgreSQL, a transaction-scoped advisory lock on the project id, so
//! several app instances behind a load balancer serialise on the same lock.
//!
//! Capacity: an item can take another labeler while
//! `label_count + (unexpired leases of other labelers) < overlap`. A labeler's own unexpired
//! lease therefore reserves a slot, and an expired lease frees it without any clean-up.
//!
//! The project's settings (overlap, labels) that a statement depends on are read inside its
//! transaction, under the same lock: the settings change in `store::projects::update_project`
//! takes that lock too, so a submission never sees half of a change (an item over its new
//! overlap, or a label that was just removed).
//!
//! Every new or changed annotation is appended to the audit log in its own transaction
//! (`store::audit`).
//!
//! Only items handed out can be labeled: a new annotation needs the labeler's lease on the
//! item (held, or expired less than `LEASE_GRACE_MS` ago, so a slow labeler's answer still
//! counts when nobody else took the slot) or a skip of it (a skipped item was handed out).
use app::api_types::{Annotation, AuditAction, Project};
use serde_json::{json, Value};

use super::BeginWrite;
use super::items::{ItemRow, ITEM_COLUMNS, ITEM_FROM};
use super::audit::Entry;
use super::projects::{ProjectRow, PROJECT_COLUMNS};
use super::{now_ms, Db};
use crate::error::{AppError, AppResult};
use crate::{append_audit, on_read, on_write};

/// How long after its end a lease still entitles its labeler to submit (capacity allowing).
/// Expired leases are kept this long before the clean-up deletes them.
pub const LEASE_GRACE_MS: i64 = 3_600_000;

/// How many unexpired leases one labeler may hold in a project (the item on screen plus a
/// few prefetched ones). Older leases beyond this are released.
const MAX_LEASES_PER_LABELER: i64 = 3;

/// The item handed out and when its lease ends.
pub struct Assigned {
    pub item: ItemRow,
    pub lease_expires_at: i64,
}

/// Gives the labeler an item to label: one they already hold (and the page does not have,
/// per `exclude`), else the first open item with capacity that they have neither labeled nor
/// skipped, else the item they skipped longest ago.
pub async fn assign_next_item(
    db: &Db,
    project: &Project,
    user_id: i64,
    exclude: &[i64],
) -> AppResult<Option<Assigned>> {
    let now = now_ms();
    let expires = now + project.lease_seconds * 1000;
    let pid = project.id;
    let item_id: Option<i64> = on_write!(db, pool, is_pg => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        if is_pg {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(pid).execute(&mut *tx).await?;
        }
        let held: Vec<i64> = sqlx::query_scalar(
            "SELECT l.item_id FROM leases l
             WHERE l.user_id = $1 AND l.project_id = $2 AND l.expires_at > $3
               AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = l.item_id AND a.user_id = $1)
             ORDER BY l.leased_at, l.item_id",
        )
        .bind(user_id)
        .bind(pid)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let mut chosen = held.iter().copied().find(|id| !exclude.contains(id));
        if chosen.is_none() {
            chosen = sqlx::query_scalar(
                "SELECT i.id FROM items i
                 WHERE i.project_id = $1 AND i.complete = 0
                   AND i.id <= (SELECT p.visible_max_item_id FROM projects p WHERE p.id = $1)
                   AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.user_id = $2)
                   AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.item_id = i.id AND s.user_id = $2)
                   AND NOT EXISTS (SELECT 1 FROM leases m WHERE m.item_id = i.id AND m.user_id = $2 AND m.expires_at > $3)
                   AND i.label_count + (SELECT COUNT(*) FROM leases l
                        WHERE l.item_id = i.id AND l.user_id <> $2 AND l.expires_at > $3)
                       < (SELECT overlap FROM projects WHERE id = $1)
                 ORDER BY i.id LIMIT 1",
            )
            .bind(pid)
            .bind(user_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        }
        if chosen.is_none() {
            chosen = sqlx::query_scalar(
                "SELECT i.id FROM skips s JOIN items i ON i.id = s.item_id
                 WHERE s.user_id = $2 AND s.project_id = $1 AND i.complete = 0
                   AND i.id <= (SELECT p.visible_max_item_id FROM projects p WHERE p.id = $1)
                   AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.user_id = $2)
                   AND NOT EXISTS (SELECT 1 FROM leases m WHERE m.item_id = i.id AND m.user_id = $2 AND m.expires_at > $3)
                   AND i.label_count + (SELECT COUNT(*) FROM leases l
                        WHERE l.item_id = i.id AND l.user_id <> $2 AND l.expires_at > $3)
                       < (SELECT overlap FROM projects WHERE id = $1)
                 ORDER BY s.skipped_at, i.id LIMIT 1",
            )
            .bind(pid)
            .bind(user_id)
            .bind(now)
            .fetch_optional(&mut *tx)
            .await?;
        }
        if let Some(item_id) = chosen {
            let is_new = !held.contains(&item_id);
            sqlx::query(
                "INSERT INTO leases (item_id, user_id, project_id, leased_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (item_id, user_id) DO UPDATE SET expires_at = $5",
            )
            .bind(item_id)
            .bind(user_id)
            .bind(pid)
            .bind(now)
            .bind(expires)
            .execute(&mut *tx)
            .await?;
            if is_new && held.len() as i64 >= MAX_LEASES_PER_LABELER {
                // Release the oldest leases so one labeler cannot hoard items. Ended, not
                // deleted: the labeler may still answer within the grace (capacity allowing).
                let surplus = held.len() as i64 + 1 - MAX_LEASES_PER_LABELER;
                for old in held.iter().take(surplus as usize) {
                    sqlx::query("UPDATE leases SET expires_at = $3 WHERE item_id = $1 AND user_id = $2")
                        .bind(old)
                        .bind(user_id)
                        .bind(now)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        chosen
    });
    match item_id {
        None => Ok(None),
        Some(id) => {
            let item = super::items::get_item(db, id).await?;
            Ok(Some(Assigned { item, lease_expires_at: expires }))
        }
    }
}

/// A submission; its labels are checked against the project's schema inside the transaction.
pub struct Submission<'a> {
    pub item_id: i64,
    pub labels: &'a [String],
    pub time_ms: i64,
    pub client_id: &'a str,
}

#[derive(sqlx::FromRow)]
struct AnnotationRow {
    id: i64,
    item_id: i64,
    user_id: i64,
    labels: String,
    time_ms: i64,
    created_at: i64,
    updated_at: i64,
}

impl AnnotationRow {
    fn into_annotation(self) -> Annotation {
        Annotation {
            id: self.id,
            item_id: self.item_id,
            user_id: self.user_id,
            labels: serde_json::from_str(&self.labels).unwrap_or_default(),
            time_ms: self.time_ms,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }
}

const ANNOTATION_COLUMNS: &str = "id, item_id, user_id, labels, time_ms, created_at, updated_at";

/// Records (or changes) the labeler's annotation of an item. A retried request with the same
/// client id returns the first result; the same client id on another item is refused (409),
/// since answering 200 would silently drop the new label. A new annotation is refused when
/// the item was never handed to the labeler (403) or has no capacity left for them (409).
/// Returns the annotation and whether this request wrote it (false for a retry).
pub async fn submit_annotation(
    db: &Db,
    project_id: i64,
    user_id: i64,
    s: &Submission<'_>,
) -> AppResult<(Annotation, bool)> {
    let now = now_ms();
    let pid = project_id;
    let row: AnnotationRow = on_write!(db, pool, is_pg => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        if is_pg {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(pid).execute(&mut *tx).await?;
        }
        let previous: Option<(i64, i64)> = sqlx::query_as(
            "SELECT s.annotation_id, a.item_id FROM submissions s JOIN annotations a ON a.id = s.annotation_id
             WHERE s.user_id = $1 AND s.client_id = $2",
        )
        .bind(user_id)
        .bind(s.client_id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some((annotation_id, first_item)) = previous {
            if first_item != s.item_id {
                return Err(AppError::conflict(format!(
                    "client_id {:?} was already used for item {first_item}; send a new client_id with every new submission",
                    s.client_id
                )));
            }
            let row = sqlx::query_as::<_, AnnotationRow>(&format!(
                "SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE id = $1"
            ))
            .bind(annotation_id)
            .fetch_one(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok((row.into_annotation(), false));
        }
        let project: Project = sqlx::query_as::<_, ProjectRow>(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1"
        ))
        .bind(pid)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no project {pid}")))?
        .into_summary()
        .project;
        let labels = crate::projects::validate_submitted_labels(&project, s.labels)?;
        let labels_json = serde_json::to_string(&labels).map_err(anyhow::Error::from)?;
        let label_count: Option<i64> = sqlx::query_scalar(
            "SELECT label_count FROM items WHERE id = $1 AND project_id = $2",
        )
        .bind(s.item_id)
        .bind(pid)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(label_count) = label_count else {
            return Err(AppError::not_found(format!("no item {} in this project", s.item_id)));
        };
        let existing: Option<(i64, String)> = sqlx::query_as(
            "SELECT id, labels FROM annotations WHERE item_id = $1 AND user_id = $2",
        )
        .bind(s.item_id)
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
        // The audit entry of this submission, appended below in this transaction.
        let audit = |action, before: Option<&str>| Entry {
            project_id: Some(pid),
            item_id: Some(s.item_id),
            user_id: Some(user_id),
            before: before.map(|b| json!({"labels": serde_json::from_str::<Value>(b).unwrap_or(Value::Null)})),
            after: Some(json!({"labels": labels})),
            ..Entry::new(now, Some(user_id), action)
        };
        let row = match existing {
            Some((id, old_labels)) => {
                let row = sqlx::query_as::<_, AnnotationRow>(&format!(
                    "UPDATE annotations SET labels = $1, time_ms = time_ms + $2, updated_at = $3
                     WHERE id = $4 RETURNING {ANNOTATION_COLUMNS}"
                ))
                .bind(&labels_json)
                .bind(s.time_ms)
                .bind(now)
                .bind(id)
                .fetch_one(&mut *tx)
                .await?;
                if old_labels != labels_json {
                    append_audit!(tx, audit(AuditAction::AnnotationChanged, Some(&old_labels)))?;
                }
                row
            }
            None => {
                let handed_out: i64 = sqlx::query_scalar(
                    "SELECT (SELECT COUNT(*) FROM leases WHERE item_id = $1 AND user_id = $2 AND expires_at > $3)
                          + (SELECT COUNT(*) FROM skips WHERE item_id = $1 AND user_id = $2)",
                )
                .bind(s.item_id)
                .bind(user_id)
                .bind(now - LEASE_GRACE_MS)
                .fetch_one(&mut *tx)
                .await?;
                if handed_out == 0 {
                    return Err(AppError::forbidden(format!(
                        "item {} was not handed to you (or its lease ended over an hour ago): take items with POST /api/projects/{pid}/next",
                        s.item_id
                    )));
                }
                let others_leases: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM leases WHERE item_id = $1 AND user_id <> $2 AND expires_at > $3",
                )
                .bind(s.item_id)
                .bind(user_id)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                if label_count + others_leases >= project.overlap {
                    return Err(AppError::conflict(
                        "this item already has all the labels it needs (or is reserved by other labelers); take the next one",
                    ));
                }
                let row = sqlx::query_as::<_, AnnotationRow>(&format!(
                    "INSERT INTO annotations (project_id, item_id, user_id, labels, time_ms, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {ANNOTATION_COLUMNS}"
                ))
                .bind(pid)
                .bind(s.item_id)
                .bind(user_id)
                .bind(&labels_json)
                .bind(s.time_ms)
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
                let completes = label_count + 1 >= project.overlap;
                sqlx::query(
                    "UPDATE items SET label_count = label_count + 1, complete = $1 WHERE id = $2",
                )
                .bind(completes as i64)
                .bind(s.item_id)
                .execute(&mut *tx)
                .await?;
                if completes {
                    sqlx::query("UPDATE projects SET done_count = done_count + 1 WHERE id = $1")
                        .bind(pid)
                        .execute(&mut *tx)
                        .await?;
                }
                append_audit!(tx, audit(AuditAction::AnnotationCreated, None))?;
                row
            }
        };
        crate::review_after_annotation!(tx, pid, s.item_id, user_id, &labels, now)?; // review queues (store::review)
        sqlx::query("DELETE FROM leases WHERE item_id = $1 AND user_id = $2")
            .bind(s.item_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM skips WHERE item_id = $1 AND user_id = $2")
            .bind(s.item_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO submissions (user_id, client_id, annotation_id, created_at) VALUES ($1, $2, $3, $4)",
        )
        .bind(user_id)
        .bind(s.client_id)
        .bind(row.id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        row
    });
    Ok((row.into_annotation(), true))
}

/// Releases the labeler's lease and remembers the skip, so the item goes to others first.
pub async fn skip_item(db: &Db, project_id: i64, user_id: i64, item_id: i64) -> AppResult<()> {
    let now = now_ms();
    on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let exists: Option<i64> = sqlx::query_scalar("SELECT id FROM items WHERE id = $1 AND project_id = $2")
            .bind(item_id)
            .bind(project_id)
            .fetch_optional(&mut *tx)
            .await?;
        if exists.is_none() {
            return Err(AppError::not_found(format!("no item {item_id} in this project")));
        }
        sqlx::query("DELETE FROM leases WHERE item_id = $1 AND user_id = $2")
            .bind(item_id)
            .bind(user_id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO skips (item_id, user_id, project_id, skipped_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (item_id, user_id) DO UPDATE SET skipped_at = $4",
        )
        .bind(item_id)
        .bind(user_id)
        .bind(project_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
    });
    Ok(())
}

/// The labeler's submission made just before annotation `before` (or their latest).
pub async fn previous_submission(
    db: &Db,
    project_id: i64,
    user_id: i64,
    before: Option<i64>,
) -> AppResult<Option<(ItemRow, Annotation)>> {
    let row = on_read!(db, pool => sqlx::query_as::<_, AnnotationRow>(&format!(
        "SELECT {ANNOTATION_COLUMNS} FROM annotations
         WHERE project_id = $1 AND user_id = $2 AND id < $3 ORDER BY id DESC LIMIT 1"
    ))
    .bind(project_id)
    .bind(user_id)
    .bind(before.unwrap_or(i64::MAX))
    .fetch_optional(pool)
    .await?);
    let Some(row) = row else { return Ok(None) };
    let item = on_read!(db, pool => sqlx::query_as::<_, ItemRow>(&format!(
        "SELECT {ITEM_COLUMNS} FROM {ITEM_FROM} WHERE i.id = $1"
    ))
    .bind(row.item_id)
    .fetch_one(pool)
    .await?);
    Ok(Some((item, row.into_annotation())))
}

/// (mine since `since`, mine in all, done, total) for the labeler in the project.
pub async fn progress(db: &Db, project_id: i64, user_id: i64, since: i64) -> AppResult<(i64, i64, i64, i64)> {
    let (today, total_mine): (i64, i64) = on_read!(db, pool => sqlx::query_as(
        "SELECT COALESCE(SUM(CASE WHEN created_at >= $3 THEN 1 ELSE 0 END), 0), COUNT(*)
         FROM annotations WHERE project_id = $1 AND user_id = $2",
    )
    .bind(project_id)
    .bind(user_id)
    .bind(since)
    .fetch_one(pool)
    .await?);
    let (done, total): (i64, i64) = on_read!(db, pool => sqlx::query_as(
        "SELECT done_count, item_count FROM projects WHERE id = $1",
    )
    .bind(project_id)
    .fetch_one(pool)
    .await?);
    Ok((today, total_mine, done, total))
}

/// Deletes leases that ended more than the grace ago (they already count for nothing towards
/// capacity; this keeps the table small).
pub async fn delete_expired_leases(db: &Db) -> AppResult<u64> {
    let done = on_write!(db, pool => sqlx::query("DELETE FROM leases WHERE expires_at <= $1")
        .bind(now_ms() - LEASE_GRACE_MS)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done)
}
