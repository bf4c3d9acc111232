//! The audit log: who changed what, when, with the values before and after.
//!
//! The invariant: a change and its entry commit together or not at all. Every store function
//! that makes a change the log records appends its entry with `append_audit!` on the
//! transaction of the change itself, so there is no window (and no crash) in which one exists
//! without the other. Entries are never updated or deleted: migration 0004 installs triggers
//! that make the database refuse both, whoever asks.
//!
//! Only changes are logged: a resubmission with the same labels, a settings update that
//! changes nothing, or adding a member twice appends nothing. Secrets never enter the log: a
//! password change is recorded as an event with no values.
use app::api_types::{AuditAction, AuditEntry};
use serde_json::Value;

use super::Db;
use crate::error::{AppError, AppResult};
use crate::on_read;

/// One entry to append; `at` is the time of the change it records.
pub struct Entry {
    pub at: i64,
    pub actor_id: Option<i64>,
    pub project_id: Option<i64>,
    pub item_id: Option<i64>,
    pub user_id: Option<i64>,
    pub action: AuditAction,
    pub before: Option<Value>,
    pub after: Option<Value>,
}

impl Entry {
    /// An entry with no project, item, subject or values yet.
    pub fn new(at: i64, actor_id: Option<i64>, action: AuditAction) -> Entry {
        Entry { at, actor_id, project_id: None, item_id: None, user_id: None, action, before: None, after: None }
    }

    /// Appends this entry to `batch` (`store::batch`): the same INSERT as `append_audit!`, sent
    /// with the other writes of its change.
    pub fn push_to(self, batch: &mut super::batch::Batch) {
        batch.push(
            APPEND_SQL,
            vec![
                self.at.into(),
                self.actor_id.into(),
                self.project_id.into(),
                self.item_id.into(),
                self.user_id.into(),
                self.action.as_str().into(),
                self.before.map(|v| v.to_string()).into(),
                self.after.map(|v| v.to_string()).into(),
            ],
        );
    }
}

/// The INSERT behind `append_audit!`.
pub const APPEND_SQL: &str = "INSERT INTO audit_log (at, actor_id, project_id, item_id, user_id, action, before_json, after_json)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";

/// Appends `$entry` (an `audit::Entry`) on `$tx`, the open transaction of the change it
/// records (see the module comment). A macro, like `on_write!`, so one text serves the
/// transaction types of both backends; evaluates to `Result<(), sqlx::Error>`.
#[macro_export]
macro_rules! append_audit {
    ($tx:expr, $entry:expr) => {{
        let e: $crate::store::audit::Entry = $entry;
        sqlx::query($crate::store::audit::APPEND_SQL)
            .bind(e.at)
            .bind(e.actor_id)
            .bind(e.project_id)
            .bind(e.item_id)
            .bind(e.user_id)
            .bind(e.action.as_str())
            .bind(e.before.map(|v| v.to_string()))
            .bind(e.after.map(|v| v.to_string()))
            .execute(&mut *$tx)
            .await
            .map(|_| ())
    }};
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    id: i64,
    at: i64,
    actor_id: Option<i64>,
    actor: Option<String>,
    project_id: Option<i64>,
    item_id: Option<i64>,
    user_id: Option<i64>,
    username: Option<String>,
    action: String,
    before_json: Option<String>,
    after_json: Option<String>,
}

impl EntryRow {
    fn into_entry(self) -> AppResult<AuditEntry> {
        // Only this crate writes the log, from `AuditAction` and serde_json values: anything
        // else is a bug worth a 500, not an entry silently dropped.
        let action = AuditAction::parse(&self.action)
            .ok_or_else(|| anyhow::anyhow!("audit entry {} has an unknown action {:?}", self.id, self.action))?;
        let json = |s: Option<String>| -> AppResult<Option<Value>> {
            s.map(|s| serde_json::from_str(&s)).transpose().map_err(|e| AppError::from(anyhow::Error::from(e)))
        };
        Ok(AuditEntry {
            id: self.id,
            at: self.at,
            actor_id: self.actor_id,
            actor: self.actor,
            project_id: self.project_id,
            item_id: self.item_id,
            user_id: self.user_id,
            user: self.username,
            action,
            before: json(self.before_json)?,
            after: json(self.after_json)?,
        })
    }
}

/// The columns of `EntryRow`, with the actor's and the subject's usernames.
const ENTRY_SELECT: &str = "SELECT l.id, l.at, l.actor_id, a.username AS actor, l.project_id, l.item_id, l.user_id,
        u.username AS username, l.action, l.before_json, l.after_json
     FROM audit_log l LEFT JOIN users a ON a.id = l.actor_id LEFT JOIN users u ON u.id = l.user_id";

/// An item's entries, oldest first; None when the project has no such item.
pub async fn item_history(db: &Db, project_id: i64, item_id: i64) -> AppResult<Option<Vec<AuditEntry>>> {
    let exists: Option<i64> = on_read!(db, pool => sqlx::query_scalar(
        "SELECT id FROM items WHERE id = $1 AND project_id = $2",
    )
    .bind(item_id)
    .bind(project_id)
    .fetch_optional(pool)
    .await?);
    if exists.is_none() {
        return Ok(None);
    }
    let rows: Vec<EntryRow> = on_read!(db, pool => sqlx::query_as(&format!(
        "{ENTRY_SELECT} WHERE l.item_id = $1 AND l.project_id = $2 ORDER BY l.id"
    ))
    .bind(item_id)
    .bind(project_id)
    .fetch_all(pool)
    .await?);
    rows.into_iter().map(EntryRow::into_entry).collect::<AppResult<Vec<_>>>().map(Some)
}

/// Which part of the log a reader streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// One project's entries (annotations, settings, members).
    Project(i64),
    /// The entries of no project: account changes.
    Accounts,
}

/// Up to `limit` entries of the scope with id > `after`, in id order (keyset paging, as the
/// export: every page costs the same however long the log is).
pub async fn page(db: &Db, scope: Scope, after: i64, limit: i64) -> AppResult<Vec<AuditEntry>> {
    let rows: Vec<EntryRow> = match scope {
        Scope::Project(pid) => on_read!(db, pool => sqlx::query_as(&format!(
            "{ENTRY_SELECT} WHERE l.project_id = $1 AND l.id > $2 ORDER BY l.id LIMIT $3"
        ))
        .bind(pid)
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?),
        Scope::Accounts => on_read!(db, pool => sqlx::query_as(&format!(
            "{ENTRY_SELECT} WHERE l.project_id IS NULL AND l.id > $1 ORDER BY l.id LIMIT $2"
        ))
        .bind(after)
        .bind(limit)
        .fetch_all(pool)
        .await?),
    };
    rows.into_iter().map(EntryRow::into_entry).collect()
}
