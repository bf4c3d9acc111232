//! Labeling rules (table `prelabel_rules`, migration 0012), what the rules read of the items,
//! and the rules source's pre-labels. The rules themselves are in `crate::prelabels::rules`.
//!
//! Every change to a rule, and every application of the rules, appends its audit entry on the
//! transaction of the change (`store::audit`).
use app::api_types::{AuditAction, RuleDraft, RuleKind};
use serde_json::{json, Value};

use super::audit::Entry;
use super::BeginWrite;
use super::{now_ms, Db};
use crate::error::{AppError, AppResult};
use crate::{append_audit, on_read, on_write};

#[derive(sqlx::FromRow, Clone, Debug)]
pub struct RuleRow {
    pub id: i64,
    pub name: String,
    pub kind: String,
    pub pattern: String,
    pub meta_key: Option<String>,
    pub label: Option<String>,
    pub enabled: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl RuleRow {
    pub fn kind(&self) -> RuleKind {
        // The table's CHECK admits only the three kinds.
        RuleKind::parse(&self.kind).unwrap_or_default()
    }

    /// The rule's fields as the audit log records them.
    fn audited(&self) -> Value {
        json!({"name": self.name, "kind": self.kind, "pattern": self.pattern, "meta_key": self.meta_key,
               "label": self.label, "enabled": self.enabled != 0})
    }
}

fn audited(d: &RuleDraft) -> Value {
    json!({"name": d.name, "kind": d.kind.as_str(), "pattern": d.pattern, "meta_key": d.meta_key,
           "label": d.label, "enabled": d.enabled})
}

const RULE_COLUMNS: &str = "id, name, kind, pattern, meta_key, label, enabled, created_at, updated_at";

/// A rule's name is unique in its project.
fn name_taken(name: &str) -> AppError {
    AppError::conflict(format!("this project already has a rule named {name:?}"))
}

pub async fn list_rules(db: &Db, project_id: i64) -> AppResult<Vec<RuleRow>> {
    Ok(on_read!(db, pool => {
        sqlx::query_as::<_, RuleRow>(&format!("SELECT {RULE_COLUMNS} FROM prelabel_rules WHERE project_id = $1 ORDER BY id"))
            .bind(project_id)
            .fetch_all(pool)
            .await?
    }))
}

pub async fn insert_rule(db: &Db, project_id: i64, actor: i64, d: &RuleDraft) -> AppResult<RuleRow> {
    let now = now_ms();
    let result: Result<RuleRow, sqlx::Error> = on_write!(db, pool => {
        async {
            let mut tx = BeginWrite::begin_write(pool).await?;
            let row = sqlx::query_as::<_, RuleRow>(&format!(
                "INSERT INTO prelabel_rules (project_id, name, kind, pattern, meta_key, label, enabled, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8) RETURNING {RULE_COLUMNS}"
            ))
            .bind(project_id)
            .bind(&d.name)
            .bind(d.kind.as_str())
            .bind(&d.pattern)
            .bind(&d.meta_key)
            .bind(&d.label)
            .bind(d.enabled as i64)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            append_audit!(tx, Entry { project_id: Some(project_id), after: Some(audited(d)), ..Entry::new(now, Some(actor), AuditAction::RuleCreated) })?;
            tx.commit().await?;
            Ok(row)
        }
        .await
    });
    match result {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(name_taken(&d.name)),
        other => Ok(other?),
    }
}

/// Replaces a rule; None when the project has no such rule. A replacement that changes
/// nothing is no change (no entry in the log).
pub async fn update_rule(db: &Db, project_id: i64, id: i64, actor: i64, d: &RuleDraft) -> AppResult<Option<RuleRow>> {
    let now = now_ms();
    let result: Result<Option<RuleRow>, sqlx::Error> = on_write!(db, pool => {
        async {
            let mut tx = BeginWrite::begin_write(pool).await?;
            let before = sqlx::query_as::<_, RuleRow>(&format!(
                "SELECT {RULE_COLUMNS} FROM prelabel_rules WHERE project_id = $1 AND id = $2"
            ))
            .bind(project_id)
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
            let Some(before) = before else { return Ok(None) };
            if before.audited() == audited(d) {
                return Ok(Some(before));
            }
            let row = sqlx::query_as::<_, RuleRow>(&format!(
                "UPDATE prelabel_rules SET name = $3, kind = $4, pattern = $5, meta_key = $6, label = $7, enabled = $8,
                     updated_at = $9
                 WHERE project_id = $1 AND id = $2 RETURNING {RULE_COLUMNS}"
            ))
            .bind(project_id)
            .bind(id)
            .bind(&d.name)
            .bind(d.kind.as_str())
            .bind(&d.pattern)
            .bind(&d.meta_key)
            .bind(&d.label)
            .bind(d.enabled as i64)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            append_audit!(tx, Entry {
                project_id: Some(project_id),
                before: Some(before.audited()),
                after: Some(audited(d)),
                ..Entry::new(now, Some(actor), AuditAction::RuleChanged)
            })?;
            tx.commit().await?;
            Ok(Some(row))
        }
        .await
    });
    match result {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(name_taken(&d.name)),
        other => Ok(other?),
    }
}

/// Deletes a rule; false when the project has no such rule. The rules source's pre-labels
/// stay as they are until the rules are applied again.
pub async fn delete_rule(db: &Db, project_id: i64, id: i64, actor: i64) -> AppResult<bool> {
    let now = now_ms();
    Ok(on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let before = sqlx::query_as::<_, RuleRow>(&format!(
            "DELETE FROM prelabel_rules WHERE project_id = $1 AND id = $2 RETURNING {RULE_COLUMNS}"
        ))
        .bind(project_id)
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(before) = &before {
            append_audit!(tx, Entry { project_id: Some(project_id), before: Some(before.audited()), ..Entry::new(now, Some(actor), AuditAction::RuleDeleted) })?;
        }
        tx.commit().await?;
        before.is_some()
    }))
}

/// Items read per statement when building a corpus.
pub const CORPUS_CHUNK: i64 = 20_000;

/// The project's visible items `after < id <= max_item_id` in id order, at most `limit`:
/// (id, text, meta JSON).
pub async fn corpus_chunk(
    db: &Db,
    project_id: i64,
    after: i64,
    max_item_id: i64,
    limit: i64,
) -> AppResult<Vec<(i64, Option<String>, String)>> {
    Ok(on_read!(db, pool => {
        sqlx::query_as(
            "SELECT id, text, meta FROM items WHERE project_id = $1 AND id > $2 AND id <= $3 ORDER BY id LIMIT $4",
        )
        .bind(project_id)
        .bind(after)
        .bind(max_item_id)
        .bind(limit)
        .fetch_all(pool)
        .await?
    }))
}

/// What an item's final label is made of (`review::final_label`), for every item that has any
/// of it: (item, latest decision, gold, consensus, label_count, k). Three reads of the
/// project's rows that can make a final label, merged by item.
pub async fn final_label_inputs(
    db: &Db,
    project_id: i64,
) -> AppResult<Vec<(i64, Option<String>, Option<String>, Option<String>, i64, i64)>> {
    type Row = (i64, Option<String>, Option<String>, Option<String>, i64, i64);
    let (decisions, golds, consensus): (Vec<(i64, String)>, Vec<(i64, String, i64, i64)>, Vec<(i64, String, i64, i64)>) = on_read!(db, pool => {
        // Ordered by item then id: the last row of an item is its latest decision.
        let decisions = sqlx::query_as("SELECT item_id, labels FROM review_decisions WHERE project_id = $1 ORDER BY item_id, id")
            .bind(project_id)
            .fetch_all(pool)
            .await?;
        let golds = sqlx::query_as(
            "SELECT id, gold, label_count, COALESCE(overlap, (SELECT p.overlap FROM projects p WHERE p.id = $1))
             FROM items WHERE project_id = $1 AND gold IS NOT NULL",
        )
        .bind(project_id)
        .fetch_all(pool)
        .await?;
        let consensus = sqlx::query_as(
            "SELECT c.item_id, c.labels, i.label_count, COALESCE(i.overlap, (SELECT p.overlap FROM projects p WHERE p.id = $1))
             FROM consensus c JOIN items i ON i.id = c.item_id WHERE c.project_id = $1",
        )
        .bind(project_id)
        .fetch_all(pool)
        .await?;
        (decisions, golds, consensus)
    });
    let mut by_item: std::collections::BTreeMap<i64, Row> = std::collections::BTreeMap::new();
    for (id, labels) in decisions {
        by_item.entry(id).or_insert((id, None, None, None, 0, 0)).1 = Some(labels);
    }
    for (id, gold, n, k) in golds {
        let e = by_item.entry(id).or_insert((id, None, None, None, 0, 0));
        (e.2, e.4, e.5) = (Some(gold), n, k);
    }
    for (id, labels, n, k) in consensus {
        let e = by_item.entry(id).or_insert((id, None, None, None, 0, 0));
        (e.3, e.4, e.5) = (Some(labels), n, k);
    }
    Ok(by_item.into_values().collect())
}

/// Replaces the rules source's pre-labels with `rows` (item, labels JSON, score) in one
/// transaction, creating the source on first use; returns the source's id. The audit entry
/// records how many pre-labels and rules there were.
pub async fn replace_rule_prelabels(
    db: &Db,
    project_id: i64,
    actor: i64,
    rows: &[(i64, String, f64)],
    rules: usize,
) -> AppResult<i64> {
    let now = now_ms();
    Ok(on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let source: i64 = sqlx::query_scalar(
            "INSERT INTO prelabel_sources (project_id, kind, name, version, created_at)
             VALUES ($1, 'rules', 'rules', '', $2)
             ON CONFLICT (project_id, kind, name, version) DO UPDATE SET name = excluded.name
             RETURNING id",
        )
        .bind(project_id)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM prelabels WHERE source_id = $1").bind(source).execute(&mut *tx).await?;
        for chunk in rows.chunks(super::prelabels::SCORED_INSERT_CHUNK) {
            let sql = super::prelabels::scored_prelabels_insert_sql(chunk.len());
            let mut q = sqlx::query(&sql).bind(source).bind(project_id).bind(now);
            for (item, labels, score) in chunk {
                q = q.bind(*item).bind(labels.as_str()).bind(*score);
            }
            q.execute(&mut *tx).await?;
        }
        append_audit!(tx, Entry {
            project_id: Some(project_id),
            after: Some(json!({"source_id": source, "prelabels": rows.len(), "rules": rules})),
            ..Entry::new(now, Some(actor), AuditAction::RulesApplied)
        })?;
        tx.commit().await?;
        source
    }))
}
