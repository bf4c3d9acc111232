//! Projects: settings, label schema and the item/done counters kept beside them.
use super::statements::Statements as _;
use std::collections::BTreeSet;

use app::api_types::{
    AssignmentOrder, AuditAction, ConsensusMethod, LabelDef, LabelKind, Measurement, Project,
    ProjectSummary, QualitySettings,
};
use serde_json::{json, Map, Value};
use sqlx::FromRow;

use super::BeginWrite;
use super::audit::Entry;
use super::{now_ms, Db};
use crate::error::{AppError, AppResult};
use crate::{append_audit, on_read, on_write};

/// A project's done count as SQL: its row's `$count` plus the sum of its shards (migration
/// 0019; `$id` is the project's id column). One definition for every query that reads it.
macro_rules! done_count_of {
    ($count:literal, $id:literal) => {
        concat!(
            $count,
            " + CAST(COALESCE((SELECT SUM(s.done) FROM project_done_shards s WHERE s.project_id = ",
            $id,
            "), 0) AS BIGINT)"
        )
    };
}
pub(super) use done_count_of;

/// The project columns, with `$done` for the done count.
macro_rules! project_columns {
    ($done:expr) => {
        concat!(
            "id, name, instructions, kind, labels, overlap, lease_seconds, created_at, item_count, ",
            $done,
            ",
     measurement, target_alpha, consensus_method, review_threshold, gold_rate, gold_training,
     audit_rate, audit_seed, assignment_order"
        )
    };
}

/// A project's columns. Its done count is `done_count` plus its shards (migration 0019: a
/// completing submission adds to a shard, not to the project's row). Inside the subquery an
/// unqualified `id` is the project's: the shard table has none.
pub(super) const PROJECT_COLUMNS: &str = project_columns!(concat!(done_count_of!("done_count", "id"), " AS done_count"));

/// The columns of a project just inserted (it has no shards yet), for `RETURNING`.
const NEW_PROJECT_COLUMNS: &str = project_columns!("done_count");

#[derive(FromRow)]
pub(super) struct ProjectRow {
    id: i64,
    name: String,
    instructions: String,
    kind: String,
    labels: String,
    overlap: i64,
    lease_seconds: i64,
    created_at: i64,
    item_count: i64,
    done_count: i64,
    measurement: String,
    target_alpha: f64,
    consensus_method: String,
    review_threshold: f64,
    gold_rate: f64,
    gold_training: i64,
    audit_rate: f64,
    audit_seed: i64,
    assignment_order: String,
}

impl ProjectRow {
    /// `PROJECT_COLUMNS` of a row of `store::statements`.
    pub(super) fn from_row(r: &super::statements::Row) -> crate::error::AppResult<ProjectRow> {
        Ok(ProjectRow {
            id: r.i64("id")?,
            name: r.string("name")?,
            instructions: r.string("instructions")?,
            kind: r.string("kind")?,
            labels: r.string("labels")?,
            overlap: r.i64("overlap")?,
            lease_seconds: r.i64("lease_seconds")?,
            created_at: r.i64("created_at")?,
            item_count: r.i64("item_count")?,
            done_count: r.i64("done_count")?,
            measurement: r.string("measurement")?,
            target_alpha: r.f64("target_alpha")?,
            consensus_method: r.string("consensus_method")?,
            review_threshold: r.f64("review_threshold")?,
            gold_rate: r.f64("gold_rate")?,
            gold_training: r.i64("gold_training")?,
            audit_rate: r.f64("audit_rate")?,
            audit_seed: r.i64("audit_seed")?,
            assignment_order: r.string("assignment_order")?,
        })
    }

    pub(super) fn into_summary(self) -> ProjectSummary {
        let kind = if self.kind == "multi" { LabelKind::Multi } else { LabelKind::Single };
        // Written only by this module from a Vec<LabelDef>; an unreadable value would be a bug.
        let labels: Vec<LabelDef> = serde_json::from_str(&self.labels).unwrap_or_default();
        ProjectSummary {
            project: Project {
                id: self.id,
                name: self.name,
                instructions: self.instructions,
                kind,
                labels,
                overlap: self.overlap,
                lease_seconds: self.lease_seconds,
                created_at: self.created_at,
                quality: QualitySettings {
                    // The CHECK constraints of migration 0005 allow only these spellings.
                    measurement: Measurement::parse(&self.measurement).unwrap_or_default(),
                    target_alpha: self.target_alpha,
                    consensus_method: ConsensusMethod::parse(&self.consensus_method).unwrap_or_default(),
                    review_threshold: self.review_threshold,
                    gold_rate: self.gold_rate,
                    gold_training: self.gold_training != 0,
                    audit_rate: self.audit_rate,
                    audit_seed: self.audit_seed,
                },
                assignment_order: AssignmentOrder::parse(&self.assignment_order).unwrap_or(AssignmentOrder::Import),
            },
            item_count: self.item_count,
            done_count: self.done_count,
            gold_count: 0,
        }
    }

    /// The summary with gold items taken out of the item and done counts (see [`GoldCounts`]).
    fn into_summary_with(self, gold: &[GoldCounts]) -> ProjectSummary {
        let id = self.id;
        let mut s = self.into_summary();
        if let Some(g) = gold.iter().find(|g| g.project_id == id) {
            s.item_count -= g.items;
            s.done_count -= g.complete;
            s.gold_count = g.items;
        }
        s
    }
}

/// A project's visible gold items. Gold items stand outside the overlap flow: an answer on one
/// never makes it complete, so a project whose regular items are all done must read as done.
/// `items.complete` is still 1 on an item that was done before a lead marked it gold, and the
/// project's `done_count` still counts it: `complete` says how many to take back out.
#[derive(FromRow)]
struct GoldCounts {
    project_id: i64,
    items: i64,
    complete: i64,
}

/// Gold counts of every project that has gold items; a count over the partial gold index
/// (`items_gold`), so it costs in proportion to the gold items, not the items.
async fn gold_counts(db: &Db) -> Result<Vec<GoldCounts>, sqlx::Error> {
    on_read!(db, pool => sqlx::query_as::<_, GoldCounts>(
        "SELECT i.project_id, COUNT(*) AS items, COUNT(CASE WHEN i.complete = 1 THEN 1 END) AS complete
         FROM items i JOIN projects p ON p.id = i.project_id
         WHERE i.gold IS NOT NULL AND i.id <= p.visible_max_item_id
         GROUP BY i.project_id",
    )
    .fetch_all(pool)
    .await)
}

/// Stores a project's quality settings and order inside the caller's transaction (a macro,
/// so one statement serves both backends' transaction types).
macro_rules! write_quality {
    ($tx:expr, $project_id:expr, $q:expr, $order:expr) => {
        sqlx::query(
            "UPDATE projects SET measurement = $1, target_alpha = $2, consensus_method = $3,
                 review_threshold = $4, gold_rate = $5, gold_training = $6, audit_rate = $7,
                 audit_seed = $8, assignment_order = $9
             WHERE id = $10",
        )
        .bind($q.measurement.as_str())
        .bind($q.target_alpha)
        .bind($q.consensus_method.as_str())
        .bind($q.review_threshold)
        .bind($q.gold_rate)
        .bind($q.gold_training as i64)
        .bind($q.audit_rate)
        .bind($q.audit_seed)
        .bind($order.as_str())
        .bind($project_id)
        .execute(&mut *$tx)
        .await?
    };
}

fn kind_str(kind: LabelKind) -> &'static str {
    match kind {
        LabelKind::Single => "single",
        LabelKind::Multi => "multi",
    }
}

/// The validated settings of a new project (see `crate::projects::validate_new_project`).
pub struct ProjectSettings<'a> {
    pub name: &'a str,
    pub instructions: &'a str,
    pub kind: LabelKind,
    pub labels: &'a [LabelDef],
    pub overlap: i64,
    pub lease_seconds: i64,
    pub quality: &'a QualitySettings,
    pub assignment_order: AssignmentOrder,
}

pub async fn create_project(db: &Db, s: &ProjectSettings<'_>, creator: i64) -> AppResult<Project> {
    let labels = serde_json::to_string(s.labels).map_err(anyhow::Error::from)?;
    let now = now_ms();
    let row = on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let row = sqlx::query_as::<_, ProjectRow>(&format!(
            "INSERT INTO projects (name, instructions, kind, labels, overlap, lease_seconds, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {NEW_PROJECT_COLUMNS}"
        ))
        .bind(s.name)
        .bind(s.instructions)
        .bind(kind_str(s.kind))
        .bind(&labels)
        .bind(s.overlap)
        .bind(s.lease_seconds)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        write_quality!(tx, row.id, s.quality, s.assignment_order);
        // The creator belongs to the project, so leads see what they made.
        sqlx::query("INSERT INTO project_members (project_id, user_id, added_at) VALUES ($1, $2, $3)")
            .bind(row.id)
            .bind(creator)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        append_audit!(tx, Entry {
            project_id: Some(row.id),
            after: Some(json!({
                "name": s.name, "instructions": s.instructions, "kind": s.kind, "labels": s.labels,
                "overlap": s.overlap, "lease_seconds": s.lease_seconds,
                "quality": s.quality, "assignment_order": s.assignment_order,
            })),
            ..Entry::new(now, Some(creator), AuditAction::ProjectCreated)
        })?;
        tx.commit().await?;
        row
    });
    // The row was read back by the INSERT, before `write_quality!` stored these.
    let mut project = row.into_summary().project;
    project.quality = s.quality.clone();
    project.assignment_order = s.assignment_order;
    Ok(project)
}

/// One project, in one read: every labeling request checks access through it. Its counts are
/// the stored counters (gold items included, `gold_count` 0); the summary with gold items
/// counted apart, as the API shows it, is [`list_projects`]'s.
pub async fn get_project(db: &Db, id: i64) -> AppResult<ProjectSummary> {
    let row = on_read!(db, pool => sqlx::query_as::<_, ProjectRow>(&format!(
        "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(pool)
    .await?);
    row.map(ProjectRow::into_summary)
        .ok_or_else(|| AppError::not_found(format!("no project {id}")))
}

/// The project if `user_id` belongs to it (or `any_member` is true: an admin), in one read:
/// the labeling loop checks this on every request.
pub async fn get_project_for_member(db: &Db, id: i64, user_id: i64, any_member: bool) -> AppResult<Option<ProjectSummary>> {
    // Many requests ask: read in place (`on_read_statements!`).
    let row = crate::on_read_statements!(db, s => {
        s.first_row(
            &format!(
                "SELECT {PROJECT_COLUMNS} FROM projects p WHERE id = $1 AND {visible}",
                visible = visible_to_sql("p.id", "$2", "$3"),
            ),
            vec![id.into(), user_id.into(), (any_member as i64).into()],
        )
        .await?
    });
    row.map(|r| ProjectRow::from_row(&r).map(ProjectRow::into_summary)).transpose()
}

/// Whether a user may see a project and label in it (the SQL of the project's id, the user's,
/// and 1 when they may see every project: an admin): they belong to it, or see every project.
/// `get_project_for_member` asks it before a request; the labeling loop's own statements ask it
/// in their transaction (`store::assignment`), which saves a round trip per request.
pub(super) fn visible_to_sql(project: &str, user: &str, any_project: &str) -> String {
    format!(
        "({any_project} = 1 OR EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = {project} AND m.user_id = {user}))"
    )
}

/// All projects (for admins) or those the user belongs to, gold items counted apart from the
/// regular items and their done count.
pub async fn list_projects(db: &Db, user_id: Option<i64>) -> AppResult<Vec<ProjectSummary>> {
    let rows = on_read!(db, pool => match user_id {
        None => sqlx::query_as::<_, ProjectRow>(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects ORDER BY id"
        ))
        .fetch_all(pool)
        .await?,
        Some(uid) => sqlx::query_as::<_, ProjectRow>(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects p
             WHERE EXISTS (SELECT 1 FROM project_members m WHERE m.project_id = p.id AND m.user_id = $1)
             ORDER BY id"
        ))
        .bind(uid)
        .fetch_all(pool)
        .await?,
    });
    let gold = gold_counts(db).await?;
    Ok(rows.into_iter().map(|r| r.into_summary_with(&gold)).collect())
}

/// Changes a project's settings: `change` gets the current settings and the label names that
/// annotations use, both read inside the write transaction under the assignment lock, and
/// returns the new settings (or refuses). Read, check and write in one transaction, so a
/// submission cannot store a label between the "is it in use?" check and its removal. When
/// the overlap changes, every item's `complete` flag and the done counter are recomputed in
/// the same transaction.
///
/// The settings that changed are appended to the audit log, before and after, in the same
/// transaction, as `actor`'s doing.
pub async fn update_project<F>(db: &Db, project_id: i64, actor: i64, change: F) -> AppResult<Project>
where
    F: FnOnce(Project, &BTreeSet<String>) -> AppResult<Project>,
{
    let updated = on_write!(db, pool, is_pg => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        if is_pg {
            // The assignment lock (see store/assignment.rs): submissions read the overlap and
            // the labels inside their transaction under this lock, so a settings change is
            // wholly before or wholly after each of them.
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(project_id).execute(&mut *tx).await?;
        }
        let current = sqlx::query_as::<_, ProjectRow>(&format!(
            "SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1"
        ))
        .bind(project_id)
        .fetch_optional(&mut *tx)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no project {project_id}")))?
        .into_summary()
        .project;
        // Gold answers use labels too (pending rows of a running import included).
        let used: Vec<String> = sqlx::query_scalar(
            "SELECT DISTINCT labels FROM annotations WHERE project_id = $1
             UNION SELECT DISTINCT gold FROM items WHERE project_id = $1 AND gold IS NOT NULL",
        )
            .bind(project_id)
            .fetch_all(&mut *tx)
            .await?;
        let in_use = label_names(&used);
        let old_overlap = current.overlap;
        let before = current.clone();
        let p = change(current, &in_use)?;
        let labels = serde_json::to_string(&p.labels).map_err(anyhow::Error::from)?;
        sqlx::query(
            "UPDATE projects SET name = $1, instructions = $2, labels = $3, overlap = $4, lease_seconds = $5
             WHERE id = $6",
        )
        .bind(&p.name)
        .bind(&p.instructions)
        .bind(&labels)
        .bind(p.overlap)
        .bind(p.lease_seconds)
        .bind(project_id)
        .execute(&mut *tx)
        .await?;
        write_quality!(tx, project_id, p.quality, p.assignment_order);
        if old_overlap != p.overlap {
            // Items with an overlap of their own (a dev-set campaign's) keep it; gold items
            // are outside the overlap flow and never complete.
            sqlx::query(
                "UPDATE items SET complete = CASE WHEN label_count >= $1 THEN 1 ELSE 0 END
                 WHERE project_id = $2 AND overlap IS NULL AND gold IS NULL",
            )
            .bind(p.overlap)
            .bind(project_id)
            .execute(&mut *tx)
            .await?;
            // Counted again from the items: the shards' increments are in the count.
            sqlx::query("DELETE FROM project_done_shards WHERE project_id = $1")
                .bind(project_id)
                .execute(&mut *tx)
                .await?;
            sqlx::query(
                "UPDATE projects SET done_count =
                   (SELECT COUNT(*) FROM items WHERE project_id = $1 AND complete = 1)
                 WHERE id = $1",
            )
            .bind(project_id)
            .execute(&mut *tx)
            .await?;
        }
        if let Some((before, after)) = settings_diff(&before, &p) {
            append_audit!(tx, Entry {
                project_id: Some(project_id),
                before: Some(before),
                after: Some(after),
                ..Entry::new(now_ms(), Some(actor), AuditAction::ProjectUpdated)
            })?;
        }
        tx.commit().await?;
        p
    });
    Ok(updated)
}

/// The settings a change touched, as (before, after) objects holding only those fields; None
/// when nothing changed.
fn settings_diff(old: &Project, new: &Project) -> Option<(Value, Value)> {
    let (mut before, mut after) = (Map::new(), Map::new());
    let mut field = |name: &str, a: Value, b: Value| {
        if a != b {
            before.insert(name.to_string(), a);
            after.insert(name.to_string(), b);
        }
    };
    field("name", json!(old.name), json!(new.name));
    field("instructions", json!(old.instructions), json!(new.instructions));
    field("labels", json!(old.labels), json!(new.labels));
    field("overlap", json!(old.overlap), json!(new.overlap));
    field("lease_seconds", json!(old.lease_seconds), json!(new.lease_seconds));
    field("quality", json!(old.quality), json!(new.quality));
    field("assignment_order", json!(old.assignment_order), json!(new.assignment_order));
    (!before.is_empty()).then(|| (Value::Object(before), Value::Object(after)))
}

/// The label names in annotations' stored label arrays.
fn label_names(rows: &[String]) -> BTreeSet<String> {
    rows.iter()
        .filter_map(|s| serde_json::from_str::<Vec<String>>(s).ok())
        .flatten()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn project() -> Project {
        Project {
            id: 1,
            name: "p".into(),
            instructions: "i".into(),
            kind: LabelKind::Single,
            labels: vec![LabelDef { name: "a".into(), key: "a".into(), color: "#000000".into() }],
            overlap: 1,
            lease_seconds: 600,
            created_at: 0,
            quality: QualitySettings::default(),
            assignment_order: AssignmentOrder::Random,
        }
    }

    #[test]
    fn settings_diff_holds_only_what_changed() {
        assert_eq!(settings_diff(&project(), &project()), None);
        let new = Project { overlap: 3, name: "q".into(), ..project() };
        assert_eq!(
            settings_diff(&project(), &new),
            Some((json!({"name": "p", "overlap": 1}), json!({"name": "q", "overlap": 3})))
        );
    }
}
