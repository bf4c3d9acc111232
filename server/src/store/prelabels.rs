//! Pre-labels (migration 0012); the rules are in `crate::prelabels`.
//!
//! Pre-labels never touch `annotations`: they do not count towards an item's k labels, and a
//! labeler who takes one submits an ordinary annotation. What labelers did with them is kept
//! in `prelabel_outcomes`, written after the annotation (outside its transaction: a lost
//! outcome row costs a statistic one answer, never a label).
use super::statements::Statements as _;
use std::collections::{HashMap, HashSet};

use app::api_types::{
    AuditAction, AutoAcceptState, PrelabelLabelStats, PrelabelSettings, PrelabelSource, PrelabelSourceKind, PrelabelView,
    StatValue,
};
use serde_json::json;

use super::items::ITEM_VISIBLE;
use super::audit::Entry;
use super::BeginWrite;
use super::{now_ms, Db};
use crate::error::AppResult;
use crate::prelabels::audit::{self, Audited};
use crate::prelabels::share;
use crate::prelabels::auto_accept::{self as auto, DISAGREEMENT_QUEUE, REASON_CONTRADICTS};
use crate::review::AutoLabel;
use crate::{append_audit, on_read, on_write};

/// External ids looked up per statement (well under both backends' parameter limits).
const LOOKUP_CHUNK: usize = 500;
/// Prediction rows written per statement (5 parameters each).
const INSERT_CHUNK: usize = 1000;

/// Scored pre-labels written per statement by the rules' Apply and the built-in model.
pub(super) const SCORED_INSERT_CHUNK: usize = 1000;

/// One statement writing `n` scored pre-labels of one source: $1 source, $2 project, $3
/// created_at, then (item, labels JSON, score) per row. A pre-label the source already has on
/// an item is replaced.
pub(super) fn scored_prelabels_insert_sql(n: usize) -> String {
    let values: Vec<String> = (0..n)
        .map(|i| {
            let b = i * 3;
            format!("($1, ${}, $2, ${}, ${}, $3)", b + 4, b + 5, b + 6)
        })
        .collect();
    format!(
        "INSERT INTO prelabels (source_id, item_id, project_id, labels, score, created_at) VALUES {}
         ON CONFLICT (source_id, item_id) DO UPDATE
         SET labels = excluded.labels, score = excluded.score, created_at = excluded.created_at",
        values.join(", ")
    )
}

/// The visible items of a project among `ids` (external ids), by external id.
pub async fn items_by_external_id(db: &Db, project_id: i64, ids: &[String]) -> AppResult<HashMap<String, i64>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(LOOKUP_CHUNK) {
        let marks: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
        let sql = format!(
            "SELECT i.external_id, i.id FROM items i WHERE i.project_id = $1 AND i.external_id IN ({}) AND {ITEM_VISIBLE}",
            marks.join(", ")
        );
        let rows: Vec<(String, i64)> = on_read!(db, pool => {
            let mut q = sqlx::query_as(&sql).bind(project_id);
            for id in chunk {
                q = q.bind(id);
            }
            q.fetch_all(pool).await?
        });
        out.extend(rows);
    }
    Ok(out)
}

/// Stores checked predictions of imported models, all in one transaction: each (model,
/// version) becomes a source (or is found again), and a source's earlier pre-label for an item
/// is replaced. Rows are (index into `sources`, item id, labels JSON, score). Returns the rows
/// written.
pub async fn store_predictions(
    db: &Db,
    project_id: i64,
    sources: &[(String, String)],
    rows: &[(usize, i64, String, Option<f64>)],
) -> AppResult<i64> {
    let now = now_ms();
    on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let mut ids = Vec::with_capacity(sources.len());
        for (name, version) in sources {
            // DO UPDATE (a no-op change) so RETURNING gives the id of an existing source too.
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO prelabel_sources (project_id, kind, name, version, created_at)
                 VALUES ($1, 'model', $2, $3, $4)
                 ON CONFLICT (project_id, kind, name, version) DO UPDATE SET name = excluded.name
                 RETURNING id",
            )
            .bind(project_id)
            .bind(name)
            .bind(version)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            ids.push(id);
        }
        for chunk in rows.chunks(INSERT_CHUNK) {
            let values: Vec<String> = (0..chunk.len())
                .map(|i| {
                    let b = i * 5;
                    format!("(${}, ${}, ${}, ${}, ${}, $1)", b + 2, b + 3, b + 4, b + 5, b + 6)
                })
                .collect();
            // $1 is the shared created_at; each row has five parameters of its own.
            let sql = format!(
                "INSERT INTO prelabels (source_id, item_id, project_id, labels, score, created_at) VALUES {}
                 ON CONFLICT (source_id, item_id) DO UPDATE
                 SET labels = excluded.labels, score = excluded.score, created_at = excluded.created_at",
                values.join(", ")
            );
            let mut q = sqlx::query(&sql).bind(now);
            for (source, item, labels, score) in chunk {
                q = q.bind(ids[*source]).bind(*item).bind(project_id).bind(labels.as_str()).bind(*score);
            }
            q.execute(&mut *tx).await?;
        }
        tx.commit().await?;
    });
    Ok(rows.len() as i64)
}

#[derive(sqlx::FromRow)]
struct SourceRow {
    id: i64,
    kind: String,
    name: String,
    version: String,
    created_at: i64,
    prelabels: i64,
}

#[derive(sqlx::FromRow)]
struct OutcomeRow {
    source_id: i64,
    labels: String,
    shown: i64,
    n: i64,
    accepted: i64,
    time_ms: i64,
}

/// The project's sources with their pre-label counts and what labelers did with them.
pub async fn list_sources(db: &Db, project_id: i64) -> AppResult<Vec<PrelabelSource>> {
    let target = settings(db, project_id).await?.target_precision;
    let audits = audit_outcomes(db, project_id).await?;
    let switches = auto_accept_switches(db, project_id).await?;
    let parsed: Vec<(i64, &str, Vec<String>, Option<f64>, Option<Vec<String>>)> = audits
        .iter()
        .map(|(src, labels, score, decision)| {
            let l: Vec<String> = serde_json::from_str(labels).unwrap_or_default();
            let d = decision.as_deref().and_then(|d| serde_json::from_str(d).ok());
            (*src, labels.as_str(), l, *score, d)
        })
        .collect();
    let (sources, counts, outcomes): (Vec<SourceRow>, Vec<(i64, String, i64)>, Vec<OutcomeRow>) = on_read!(db, pool => {
        let sources = sqlx::query_as::<_, SourceRow>(
            "SELECT s.id, s.kind, s.name, s.version, s.created_at,
                    (SELECT COUNT(*) FROM prelabels p WHERE p.source_id = s.id) AS prelabels
             FROM prelabel_sources s WHERE s.project_id = $1 ORDER BY s.id",
        )
        .bind(project_id)
        .fetch_all(pool)
        .await?;
        let counts = sqlx::query_as(
            "SELECT source_id, labels, COUNT(*) FROM prelabels WHERE project_id = $1 GROUP BY source_id, labels",
        )
        .bind(project_id)
        .fetch_all(pool)
        .await?;
        let outcomes = sqlx::query_as::<_, OutcomeRow>(
            "SELECT source_id, labels, shown, COUNT(*) AS n, CAST(SUM(accepted) AS BIGINT) AS accepted,
                    CAST(SUM(time_ms) AS BIGINT) AS time_ms
             FROM prelabel_outcomes WHERE project_id = $1 GROUP BY source_id, labels, shown",
        )
        .bind(project_id)
        .fetch_all(pool)
        .await?;
        (sources, counts, outcomes)
    });
    Ok(sources
        .into_iter()
        .map(|s| {
            let mine: Vec<&OutcomeRow> = outcomes.iter().filter(|o| o.source_id == s.id).collect();
            let total = |shown: i64| -> (i64, i64, i64) {
                mine.iter()
                    .filter(|o| o.shown == shown)
                    .fold((0, 0, 0), |(n, a, t), o| (n + o.n, a + o.accepted, t + o.time_ms))
            };
            let (n_shown, acc_shown, t_shown) = total(1);
            let (n_hidden, acc_hidden, t_hidden) = total(0);
            let mean = |t: i64, n: i64| (n > 0).then(|| t as f64 / n as f64);
            let by_label = counts
                .iter()
                .filter(|c| c.0 == s.id)
                .map(|(_, labels, count)| {
                    let (n, a) = mine
                        .iter()
                        .filter(|o| o.shown == 1 && &o.labels == labels)
                        .fold((0, 0), |(n, a), o| (n + o.n, a + o.accepted));
                    let stratum: Vec<Audited> = parsed
                        .iter()
                        .filter(|p| p.0 == s.id && p.1 == labels.as_str())
                        .map(|p| Audited { labels: &p.2, score: p.3, decision: p.4.as_deref() })
                        .collect();
                    let (decided, correct, auto_accept_min_score) = audit::precision(&stratum, target);
                    let precision = match share(correct, decided) {
                        v if decided == 0 => StatValue { reason: Some("no audited pre-label decided yet".into()), ..v },
                        v => v,
                    };
                    let auto_accept = switches.iter().find(|w| w.source_id == s.id && &w.labels == labels).map(|w| AutoAcceptState {
                        min_score: w.min_score,
                        target_precision: w.target_precision,
                        accepted: w.accepted,
                        enabled_at: w.enabled_at,
                    });
                    PrelabelLabelStats {
                        label: label_text(labels),
                        prelabels: *count,
                        acceptance: share(a, n),
                        audited: stratum.len() as i64,
                        precision,
                        auto_accept_min_score,
                        labels: serde_json::from_str(labels).unwrap_or_default(),
                        auto_accept,
                    }
                })
                .collect();
            PrelabelSource {
                id: s.id,
                kind: PrelabelSourceKind::parse(&s.kind).unwrap_or(PrelabelSourceKind::Model),
                name: s.name,
                version: s.version,
                prelabels: s.prelabels,
                acceptance: share(acc_shown, n_shown),
                agreement_hidden: share(acc_hidden, n_hidden),
                mean_time_ms_shown: mean(t_shown, n_shown),
                mean_time_ms_hidden: mean(t_hidden, n_hidden),
                by_label,
                created_at: s.created_at,
            }
        })
        .collect())
}

/// A stored labels array as text: `["a","b"]` → "a, b".
fn label_text(labels: &str) -> String {
    serde_json::from_str::<Vec<String>>(labels).map(|l| l.join(", ")).unwrap_or_else(|_| labels.to_string())
}

pub async fn settings(db: &Db, project_id: i64) -> AppResult<PrelabelSettings> {
    let row: Option<(i64, f64, i64, f64, f64)> = on_read!(db, pool => {
        sqlx::query_as(
            "SELECT hide_until_answered, audit_rate, audit_seed, target_precision, disagreement_min_score
             FROM prelabel_settings WHERE project_id = $1",
        )
        .bind(project_id)
        .fetch_optional(pool)
        .await?
    });
    Ok(match row {
        Some((hide, audit_rate, audit_seed, target_precision, disagreement_min_score)) => PrelabelSettings {
            hide_until_answered: hide != 0,
            audit_rate,
            audit_seed,
            target_precision,
            disagreement_min_score,
        },
        None => PrelabelSettings::default(),
    })
}

pub async fn put_settings(db: &Db, project_id: i64, s: &PrelabelSettings) -> AppResult<()> {
    on_write!(db, pool => {
        sqlx::query(
            "INSERT INTO prelabel_settings (project_id, hide_until_answered, audit_rate, audit_seed, target_precision,
                                            disagreement_min_score, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)
             ON CONFLICT (project_id) DO UPDATE SET hide_until_answered = excluded.hide_until_answered,
                 audit_rate = excluded.audit_rate, audit_seed = excluded.audit_seed,
                 target_precision = excluded.target_precision,
                 disagreement_min_score = excluded.disagreement_min_score, updated_at = excluded.updated_at",
        )
        .bind(project_id)
        .bind(s.hide_until_answered as i64)
        .bind(s.audit_rate)
        .bind(s.audit_seed)
        .bind(s.target_precision)
        .bind(s.disagreement_min_score)
        .bind(now_ms())
        .execute(pool)
        .await?;
    });
    Ok(())
}

/// Every pre-label of the project as (source, item, labels JSON): what an audit draws from.
pub async fn audit_population(db: &Db, project_id: i64) -> AppResult<Vec<(i64, i64, String)>> {
    Ok(on_read!(db, pool => {
        sqlx::query_as("SELECT source_id, item_id, labels FROM prelabels WHERE project_id = $1")
            .bind(project_id)
            .fetch_all(pool)
            .await?
    }))
}

/// Records a JSON array of drawn [source, item] pairs ($3; $1 project, $2 now) in one statement
/// and returns the pairs not drawn before. A draw at a 5 % rate over a million pre-labels is
/// 50,000 pairs: a statement or two per pair held the write transaction (on SQLite, the one
/// writer every labeler waits for) for a round trip each.
const SQLITE_RECORD_DRAWS_SQL: &str = "INSERT INTO prelabel_audits (source_id, item_id, project_id, drawn_at)
     SELECT d.value ->> 0, d.value ->> 1, $1, $2 FROM json_each($3) AS d WHERE true
     ON CONFLICT (source_id, item_id) DO NOTHING RETURNING source_id, item_id";
const PG_RECORD_DRAWS_SQL: &str = "INSERT INTO prelabel_audits (source_id, item_id, project_id, drawn_at)
     SELECT (d ->> 0)::bigint, (d ->> 1)::bigint, $1, $2 FROM json_array_elements($3::json) AS d
     ON CONFLICT (source_id, item_id) DO NOTHING RETURNING source_id, item_id";

/// Records drawn (source, item) pairs and opens a `prelabel_audit` review entry for each item
/// (one per item, whatever the number of sources drawing it: one decision settles them all),
/// in one transaction. Returns (pairs newly drawn, entries newly opened).
pub async fn record_audits(db: &Db, project_id: i64, drawn: &[(i64, i64)]) -> AppResult<(i64, i64)> {
    let now = now_ms();
    let pairs = serde_json::to_string(drawn).expect("pairs serialize");
    let out = on_write!(db, pool, is_pg => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let inserted: Vec<(i64, i64)> = sqlx::query_as(if is_pg { PG_RECORD_DRAWS_SQL } else { SQLITE_RECORD_DRAWS_SQL })
            .bind(project_id)
            .bind(now)
            .bind(pairs)
            .fetch_all(&mut *tx)
            .await?;
        let new_draws = inserted.len() as i64;
        // A pair drawn before had its entry opened then (and it may be decided). In the order
        // drawn, so that an item two sources drew names the first, as the queue shows it.
        let inserted: HashSet<(i64, i64)> = inserted.into_iter().collect();
        let entries: Vec<(i64, String)> = drawn
            .iter()
            .filter(|pair| inserted.contains(pair))
            .map(|(source, item)| (*item, serde_json::json!({"source_id": source}).to_string()))
            .collect();
        let mut queued = 0;
        if !entries.is_empty() {
            let queue = crate::prelabels::audit::QUEUE;
            let (sql, args) = super::review::open_entries(is_pg, project_id, queue, queue, now, &entries);
            queued = super::batch::bind(sqlx::query(sql), args).execute(&mut *tx).await?.rows_affected() as i64;
        }
        tx.commit().await?;
        (new_draws, queued)
    });
    Ok(out)
}

/// The drawn pre-labels with their item's latest decision: (source, labels, score, decision).
async fn audit_outcomes(db: &Db, project_id: i64) -> AppResult<Vec<(i64, String, Option<f64>, Option<String>)>> {
    Ok(on_read!(db, pool => {
        sqlx::query_as(
            "SELECT a.source_id, p.labels, p.score,
                    (SELECT d.labels FROM review_decisions d WHERE d.item_id = a.item_id ORDER BY d.id DESC LIMIT 1)
             FROM prelabel_audits a JOIN prelabels p ON p.source_id = a.source_id AND p.item_id = a.item_id
             WHERE a.project_id = $1",
        )
        .bind(project_id)
        .fetch_all(pool)
        .await?
    }))
}

#[derive(sqlx::FromRow)]
pub(crate) struct PrelabelRow {
    source_id: i64,
    kind: String,
    name: String,
    version: String,
    labels: String,
    score: Option<f64>,
}

/// An item's pre-labels, best first: highest score (none counts as 0), then the oldest source.
/// Every submission asks (`record_outcomes`): read in place (`on_read_statements!`).
async fn item_prelabels(db: &Db, item_id: i64) -> AppResult<Vec<PrelabelRow>> {
    let rows = crate::on_read_statements!(db, s => {
        s.rows(
            "SELECT p.source_id, s.kind, s.name, s.version, p.labels, p.score
             FROM prelabels p JOIN prelabel_sources s ON s.id = p.source_id
             WHERE p.item_id = $1
             ORDER BY COALESCE(p.score, 0) DESC, p.source_id",
            vec![item_id.into()],
        )
        .await?
    });
    rows.iter().map(PrelabelRow::from_row).collect()
}

impl PrelabelRow {
    fn from_row(r: &super::statements::Row) -> AppResult<PrelabelRow> {
        Ok(PrelabelRow {
            source_id: r.i64("source_id")?,
            kind: r.string("kind")?,
            name: r.string("name")?,
            version: r.string("version")?,
            labels: r.string("labels")?,
            score: r.opt_f64("score")?,
        })
    }
}

/// A source as the labeling view names it: "name version", "rules", "built-in model".
fn view_source(kind: &str, name: &str, version: &str) -> String {
    match PrelabelSourceKind::parse(kind).unwrap_or(PrelabelSourceKind::Model) {
        PrelabelSourceKind::Model => format!("{name} {version}"),
        PrelabelSourceKind::Rules => "rules".to_string(),
        PrelabelSourceKind::Builtin => "built-in model".to_string(),
    }
}

pub(crate) fn view(r: PrelabelRow) -> PrelabelView {
    let kind = PrelabelSourceKind::parse(&r.kind).unwrap_or(PrelabelSourceKind::Model);
    let source = view_source(&r.kind, &r.name, &r.version);
    PrelabelView {
        source_id: r.source_id,
        source_kind: kind,
        source,
        labels: serde_json::from_str(&r.labels).unwrap_or_default(),
        score: r.score,
    }
}

/// The pre-label shown beside an item in the labeling view (`item` and `project`: the SQL of
/// their ids, placeholders of the caller's statement): the best one, unless the project hides
/// pre-labels until the labeler has answered. The hand-out (`store::assignment`) reads it in
/// the statement that reads the item, as `ShownPrelabel`'s columns.
pub(crate) fn shown_prelabel_sql(item: &str, project: &str) -> String {
    format!(
        "SELECT p.source_id, s.kind, s.name, s.version, p.labels, p.score
         FROM prelabels p JOIN prelabel_sources s ON s.id = p.source_id
         WHERE p.item_id = {item}
           AND NOT EXISTS (SELECT 1 FROM prelabel_settings st WHERE st.project_id = {project} AND st.hide_until_answered <> 0)
         ORDER BY COALESCE(p.score, 0) DESC, p.source_id LIMIT 1"
    )
}

/// `shown_prelabel_sql`'s columns as another statement's, prefixed `pl_` (all NULL: none shown).
#[derive(sqlx::FromRow)]
pub(crate) struct ShownPrelabel {
    pl_source_id: Option<i64>,
    pl_kind: Option<String>,
    pl_name: Option<String>,
    pl_version: Option<String>,
    pl_labels: Option<String>,
    pl_score: Option<f64>,
}

impl ShownPrelabel {
    /// The `pl_` columns of a row of `store::statements`.
    pub(crate) fn from_row(r: &super::statements::Row) -> crate::error::AppResult<ShownPrelabel> {
        Ok(ShownPrelabel {
            pl_source_id: r.opt_i64("pl_source_id")?,
            pl_kind: r.opt_string("pl_kind")?,
            pl_name: r.opt_string("pl_name")?,
            pl_version: r.opt_string("pl_version")?,
            pl_labels: r.opt_string("pl_labels")?,
            pl_score: r.opt_f64("pl_score")?,
        })
    }

    pub(crate) fn into_row(self) -> Option<PrelabelRow> {
        Some(PrelabelRow {
            source_id: self.pl_source_id?,
            kind: self.pl_kind?,
            name: self.pl_name?,
            version: self.pl_version?,
            labels: self.pl_labels?,
            score: self.pl_score,
        })
    }
}

/// Records what a labeler's answer did with each of the item's pre-labels: one row per source
/// (`accepted`: the answer is exactly the pre-label; `shown`: it was the one on screen). An
/// answer changed later overwrites the row. Items without pre-labels cost one indexed read
/// (the project's settings are read only for items that have some).
pub async fn record_outcomes(
    db: &Db,
    project_id: i64,
    item_id: i64,
    user_id: i64,
    answer: &[String],
    time_ms: i64,
) -> AppResult<()> {
    let rows = item_prelabels(db, item_id).await?;
    if rows.is_empty() {
        return Ok(());
    }
    let settings = settings(db, project_id).await?;
    let (hidden, min_score) = (settings.hide_until_answered, settings.disagreement_min_score);
    let now = now_ms();
    on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        // The best-scored pre-label the answer contradicts, if it is scored high enough.
        let contradicted = rows.iter().find(|r| {
            let labels: Vec<String> = serde_json::from_str(&r.labels).unwrap_or_default();
            r.score.is_some_and(|s| s >= min_score) && !crate::review::same_labels(&labels, answer)
        });
        if let Some(r) = contradicted {
            let detail = json!({
                "source_id": r.source_id,
                "source": view_source(&r.kind, &r.name, &r.version),
                "prelabel": serde_json::from_str::<serde_json::Value>(&r.labels).unwrap_or_default(),
                "score": r.score,
                "answer": answer,
            });
            sqlx::query(OPEN_DISAGREEMENT_SQL)
                .bind(project_id)
                .bind(item_id)
                .bind(detail.to_string())
                .bind(now)
                .bind(DISAGREEMENT_QUEUE)
                .bind(REASON_CONTRADICTS)
                .execute(&mut *tx)
                .await?;
        }
        for (i, r) in rows.iter().enumerate() {
            let labels: Vec<String> = serde_json::from_str(&r.labels).unwrap_or_default();
            let accepted = crate::review::same_labels(&labels, answer);
            let shown = i == 0 && !hidden;
            sqlx::query(
                "INSERT INTO prelabel_outcomes (project_id, source_id, item_id, user_id, labels, accepted, shown, time_ms, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (item_id, user_id, source_id) DO UPDATE
                 SET accepted = excluded.accepted, shown = excluded.shown, time_ms = excluded.time_ms,
                     labels = excluded.labels, created_at = excluded.created_at",
            )
            .bind(project_id)
            .bind(r.source_id)
            .bind(item_id)
            .bind(user_id)
            .bind(&r.labels)
            .bind(accepted as i64)
            .bind(shown as i64)
            .bind(time_ms)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    });
    Ok(())
}

// ---- disagreement with pre-labels -------------------------------------------------------------

/// Opens the item's `prelabel_disagreement` entry unless it ever had one (a lead who resolved it
/// has ruled, as for `disagreement`) or has a review decision (its final label is a person's).
/// Binds: project, item, detail, now, queue, reason.
const OPEN_DISAGREEMENT_SQL: &str = "INSERT INTO review_entries (project_id, item_id, queue, reason, detail, labeler_id, created_at)
     SELECT $1, $2, $5, $6, $3, NULL, $4
     WHERE NOT EXISTS (SELECT 1 FROM review_entries e WHERE e.item_id = $2 AND e.queue = $5)
       AND NOT EXISTS (SELECT 1 FROM review_decisions d WHERE d.item_id = $2)";

#[derive(sqlx::FromRow)]
struct Contradiction {
    item_id: i64,
    source_id: i64,
    kind: String,
    name: String,
    version: String,
    labels: String,
    score: f64,
    answer: String,
}

/// Puts every item whose human answers contradict a pre-label scored at least the project's
/// `disagreement_min_score` in the `prelabel_disagreement` queue: what the submission hook
/// (`record_outcomes`) does for new answers, done over the answers already given, for
/// pre-labels imported after them or a lowered threshold. Returns the entries opened.
pub async fn queue_disagreements(db: &Db, project_id: i64) -> AppResult<i64> {
    let min_score = settings(db, project_id).await?.disagreement_min_score;
    // Best score first, so an item's entry names its most confident contradicted pre-label.
    let rows: Vec<Contradiction> = on_read!(db, pool => sqlx::query_as(
        "SELECT p.item_id, p.source_id, s.kind, s.name, s.version, p.labels, p.score, a.labels AS answer
         FROM prelabels p JOIN prelabel_sources s ON s.id = p.source_id
         JOIN annotations a ON a.item_id = p.item_id
         WHERE p.project_id = $1 AND p.score >= $2
           AND NOT EXISTS (SELECT 1 FROM review_entries e WHERE e.item_id = p.item_id AND e.queue = $3)
         ORDER BY p.score DESC, p.source_id, a.id",
    )
    .bind(project_id)
    .bind(min_score)
    .bind(DISAGREEMENT_QUEUE)
    .fetch_all(pool)
    .await?);
    let contradicting: Vec<&Contradiction> = rows
        .iter()
        .filter(|r| {
            let (p, a) = (crate::review::parse_labels(Some(&r.labels)), crate::review::parse_labels(Some(&r.answer)));
            matches!((p, a), (Some(p), Some(a)) if !crate::review::same_labels(&p, &a))
        })
        .collect();
    if contradicting.is_empty() {
        return Ok(0);
    }
    let now = now_ms();
    let opened = on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let mut opened = 0i64;
        for r in contradicting {
            let detail = json!({
                "source_id": r.source_id,
                "source": view_source(&r.kind, &r.name, &r.version),
                "prelabel": serde_json::from_str::<serde_json::Value>(&r.labels).unwrap_or_default(),
                "score": r.score,
                "answer": serde_json::from_str::<serde_json::Value>(&r.answer).unwrap_or_default(),
            });
            opened += sqlx::query(OPEN_DISAGREEMENT_SQL)
                .bind(project_id)
                .bind(r.item_id)
                .bind(detail.to_string())
                .bind(now)
                .bind(DISAGREEMENT_QUEUE)
                .bind(REASON_CONTRADICTS)
                .execute(&mut *tx)
                .await?
                .rows_affected() as i64;
        }
        tx.commit().await?;
        opened
    });
    Ok(opened)
}

// ---- auto-accept ------------------------------------------------------------------------------

/// One auto-accept switch that is on, with the items it accepts now.
#[derive(sqlx::FromRow, Clone, Debug)]
pub struct Switch {
    pub source_id: i64,
    /// JSON array, as in `prelabels.labels`.
    pub labels: String,
    pub min_score: f64,
    pub target_precision: f64,
    pub enabled_at: i64,
    pub accepted: i64,
}

/// The project's auto-accept switches that are on.
pub async fn auto_accept_switches(db: &Db, project_id: i64) -> AppResult<Vec<Switch>> {
    Ok(on_read!(db, pool => sqlx::query_as::<_, Switch>(
        "SELECT r.source_id, r.labels, r.min_score, r.target_precision, r.enabled_at,
                (SELECT COUNT(*) FROM prelabel_accepted a WHERE a.source_id = r.source_id AND a.labels = r.labels) AS accepted
         FROM prelabel_auto_accept r WHERE r.project_id = $1 ORDER BY r.source_id, r.labels",
    )
    .bind(project_id)
    .fetch_all(pool)
    .await?))
}

/// A source of the project: (kind, name, version, its distinct label sets as JSON).
pub async fn source_of(db: &Db, project_id: i64, source_id: i64) -> AppResult<Option<(String, String, String, Vec<String>)>> {
    let row: Option<(String, String, String)> = on_read!(db, pool => sqlx::query_as(
        "SELECT kind, name, version FROM prelabel_sources WHERE id = $1 AND project_id = $2",
    )
    .bind(source_id)
    .bind(project_id)
    .fetch_optional(pool)
    .await?);
    let Some((kind, name, version)) = row else { return Ok(None) };
    let labels: Vec<String> = on_read!(db, pool => sqlx::query_scalar(
        "SELECT DISTINCT labels FROM prelabels WHERE source_id = $1 ORDER BY labels",
    )
    .bind(source_id)
    .fetch_all(pool)
    .await?);
    Ok(Some((kind, name, version, labels)))
}

/// Rebuilds the project's auto-accepted items from its switches (the rules are in
/// `prelabels::auto_accept`); runs on the caller's transaction `$tx` with (project id, now),
/// evaluates to `Result<u64, sqlx::Error>`: the items accepted.
///
/// The release check is one `NOT IN` over the project's release items, evaluated once
/// (`release_items` has no index on `item_id` alone); the others are primary-key probes. The
/// `ORDER BY` with `DO NOTHING` keeps, per item, its best-scored qualifying pre-label.
macro_rules! rebuild_accepted {
    ($tx:expr, $pid:expr, $now:expr) => {{
        let (pid, now): (i64, i64) = ($pid, $now);
        async {
            sqlx::query("DELETE FROM prelabel_accepted WHERE project_id = $1").bind(pid).execute(&mut *$tx).await?;
            let done = sqlx::query(
                "INSERT INTO prelabel_accepted (item_id, project_id, source_id, labels, score, accepted_at)
                 SELECT p.item_id, p.project_id, p.source_id, p.labels, p.score, $2
                 FROM prelabels p
                 JOIN prelabel_auto_accept r ON r.source_id = p.source_id AND r.labels = p.labels
                 JOIN items i ON i.id = p.item_id
                 WHERE p.project_id = $1 AND p.score IS NOT NULL AND p.score >= r.min_score
                   AND i.gold IS NULL AND i.complete = 0
                   AND NOT EXISTS (SELECT 1 FROM devset_members d WHERE d.item_id = p.item_id)
                   AND p.item_id NOT IN (SELECT ri.item_id FROM release_items ri
                                         JOIN releases rl ON rl.id = ri.release_id WHERE rl.project_id = $1)
                   AND NOT EXISTS (SELECT 1 FROM review_decisions d WHERE d.item_id = p.item_id)
                   AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = p.item_id AND a.labels <> p.labels)
                 ORDER BY p.score DESC, p.source_id
                 ON CONFLICT (item_id) DO NOTHING",
            )
            .bind(pid)
            .bind(now)
            .execute(&mut *$tx)
            .await?;
            Ok::<u64, sqlx::Error>(done.rows_affected())
        }
        .await
    }};
}

/// Rebuilds the auto-accepted items (after a source's pre-labels changed); returns how many.
/// Costs nothing when no switch is on.
pub async fn apply_auto_accept(db: &Db, project_id: i64) -> AppResult<i64> {
    let now = now_ms();
    let n = on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let n = rebuild_accepted!(tx, project_id, now)?;
        tx.commit().await?;
        n
    });
    Ok(n as i64)
}

/// One switch to turn: the label set (JSON) and, to switch on, (min_score, target).
pub struct Turn {
    pub labels: String,
    pub on: Option<(f64, f64)>,
}

/// Turns auto-accept switches of one source on or off and rebuilds the accepted items, with one
/// audit entry per switch that changed, all in one transaction. Returns the project's accepted
/// items after it.
pub async fn set_auto_accept(
    db: &Db,
    project_id: i64,
    actor_id: Option<i64>,
    source_id: i64,
    source: &str,
    turns: &[Turn],
) -> AppResult<i64> {
    let now = now_ms();
    let n = on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let mut entries = Vec::new();
        for t in turns {
            let before: Option<(f64, f64)> = sqlx::query_as(
                "SELECT min_score, target_precision FROM prelabel_auto_accept WHERE source_id = $1 AND labels = $2",
            )
            .bind(source_id)
            .bind(&t.labels)
            .fetch_optional(&mut *tx)
            .await?;
            match t.on {
                Some((min_score, target)) => {
                    sqlx::query(
                        "INSERT INTO prelabel_auto_accept (source_id, labels, project_id, min_score, target_precision, enabled_by, enabled_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7)
                         ON CONFLICT (source_id, labels) DO UPDATE SET min_score = excluded.min_score,
                             target_precision = excluded.target_precision, enabled_by = excluded.enabled_by,
                             enabled_at = excluded.enabled_at",
                    )
                    .bind(source_id)
                    .bind(&t.labels)
                    .bind(project_id)
                    .bind(min_score)
                    .bind(target)
                    .bind(actor_id)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                }
                None => {
                    sqlx::query("DELETE FROM prelabel_auto_accept WHERE source_id = $1 AND labels = $2")
                        .bind(source_id)
                        .bind(&t.labels)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            if before != t.on {
                let state = |v: Option<(f64, f64)>| {
                    v.map(|(m, t)| json!({"min_score": m, "target_precision": t})).unwrap_or(serde_json::Value::Null)
                };
                let labels: serde_json::Value = serde_json::from_str(&t.labels).unwrap_or_default();
                entries.push((
                    json!({"source_id": source_id, "source": source, "labels": labels, "auto_accept": state(before)}),
                    json!({"source_id": source_id, "source": source, "labels": labels, "auto_accept": state(t.on)}),
                ));
            }
        }
        let n = rebuild_accepted!(tx, project_id, now)?;
        for (before, mut after) in entries {
            after["accepted"] = json!(n);
            append_audit!(tx, Entry {
                project_id: Some(project_id),
                before: Some(before),
                after: Some(after),
                ..Entry::new(now, actor_id, AuditAction::AutoAcceptChanged)
            })?;
        }
        tx.commit().await?;
        n
    });
    Ok(n as i64)
}

#[derive(sqlx::FromRow)]
struct AcceptedRow {
    item_id: i64,
    source_id: i64,
    labels: String,
    kind: String,
    name: String,
    version: String,
}

impl AcceptedRow {
    fn into_auto(self) -> (i64, i64, String, AutoLabel) {
        let source = auto::source_name(&self.kind, &self.name, &self.version);
        let labels = crate::review::parse_labels(Some(&self.labels)).unwrap_or_default();
        (self.item_id, self.source_id, self.labels, AutoLabel { labels, source })
    }
}

const ACCEPTED_SELECT: &str = "SELECT a.item_id, a.source_id, a.labels, s.kind, s.name, s.version
     FROM prelabel_accepted a JOIN prelabel_sources s ON s.id = a.source_id";

/// The query of an export page's auto-accepted items. `+a.project_id`: without it SQLite reads the page through
/// `prelabel_accepted_project (project_id=?)`, every accepted item of the project on every page.
pub(super) static ACCEPTED_PAGE: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!("{ACCEPTED_SELECT} WHERE a.item_id >= $2 AND a.item_id <= $3 AND +a.project_id = $1 ORDER BY a.item_id")
});

/// The auto-accepted items with ids in [first, last], in id order: (item, source, labels JSON,
/// the auto label). One range read of the primary key, for an export page on PostgreSQL.
pub(super) async fn accepted_between_postgres(
    pool: &sqlx::PgPool,
    project_id: i64,
    first: i64,
    last: i64,
) -> AppResult<Vec<(i64, i64, String, AutoLabel)>> {
    let rows: Vec<AcceptedRow> = sqlx::query_as(&ACCEPTED_PAGE).bind(project_id).bind(first).bind(last).fetch_all(pool).await?;
    Ok(rows.into_iter().map(AcceptedRow::into_auto).collect())
}

/// [`accepted_between_postgres`] on SQLite's raw handle, inside an export page's read transaction.
pub(super) fn accepted_between_sqlite(
    conn: &rusqlite::Connection,
    project_id: i64,
    first: i64,
    last: i64,
) -> AppResult<Vec<(i64, i64, String, AutoLabel)>> {
    let mut stmt = conn.prepare_cached(&ACCEPTED_PAGE)?;
    let rows = stmt.query_map(rusqlite::named_params! { "$1": project_id, "$2": first, "$3": last }, |r| {
        Ok(AcceptedRow { item_id: r.get(0)?, source_id: r.get(1)?, labels: r.get(2)?, kind: r.get(3)?, name: r.get(4)?, version: r.get(5)? })
    })?;
    rows.map(|r| Ok(r?.into_auto())).collect()
}

/// An item's auto label, if it is auto-accepted.
pub async fn accepted_of(db: &Db, item_id: i64) -> AppResult<Option<AutoLabel>> {
    let row: Option<AcceptedRow> = on_read!(db, pool => sqlx::query_as(&format!("{ACCEPTED_SELECT} WHERE a.item_id = $1"))
        .bind(item_id)
        .fetch_optional(pool)
        .await?);
    Ok(row.map(|r| r.into_auto().3))
}

/// For each switch that is on: (source, labels JSON) → (right, decided) audits at or above its
/// threshold, for the export's noise figures.
pub async fn audits_at_switches(db: &Db, project_id: i64) -> AppResult<std::collections::BTreeMap<(i64, String), (u64, u64)>> {
    let switches = auto_accept_switches(db, project_id).await?;
    let audits = audit_outcomes(db, project_id).await?;
    Ok(switches
        .into_iter()
        .map(|w| {
            let stratum: Vec<(Option<f64>, bool)> = audits
                .iter()
                .filter(|(src, labels, _, _)| *src == w.source_id && *labels == w.labels)
                .filter_map(|(_, labels, score, decision)| {
                    let (p, d) = (crate::review::parse_labels(Some(labels))?, crate::review::parse_labels(decision.as_deref())?);
                    Some((*score, crate::review::same_labels(&p, &d)))
                })
                .collect();
            ((w.source_id, w.labels.clone()), auto::audits_at(&stratum, w.min_score))
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::sqlite_with;

    /// An audit draw records each new (source, item) pair once and opens one entry per item,
    /// naming the first source drawn for it; pairs drawn before count for nothing, and a new
    /// source's pair for an item already in the queue adds a draw but no entry.
    #[tokio::test]
    async fn an_audit_draw_opens_one_entry_per_item_for_its_new_pairs() {
        let (_dir, db) = sqlite_with(&[
            "INSERT INTO projects (id, name, instructions, kind, labels, overlap, lease_seconds, created_at)
             VALUES (1, 'p', '', 'single', '[]', 1, 600, 0)",
            "INSERT INTO items (id, project_id, kind, text, meta, weight, content_hash, created_at) VALUES
             (1, 1, 'text', 'a', '{}', 1, 'a', 0), (2, 1, 'text', 'b', '{}', 1, 'b', 0), (3, 1, 'text', 'c', '{}', 1, 'c', 0)",
            "INSERT INTO prelabel_sources (id, project_id, kind, name, version, created_at) VALUES
             (1, 1, 'model', 'm', '1', 0), (2, 1, 'model', 'n', '1', 0), (3, 1, 'rules', 'r', '1', 0)",
        ])
        .await;
        let Db::Sqlite { read, .. } = &db else { unreachable!() };
        let entries = || async {
            sqlx::query_as::<_, (i64, String)>("SELECT item_id, detail FROM review_entries WHERE queue = 'prelabel_audit' ORDER BY item_id")
                .fetch_all(read)
                .await
                .unwrap()
        };
        let entry = |item: i64, source: i64| (item, format!(r#"{{"source_id":{source}}}"#));

        assert_eq!(record_audits(&db, 1, &[(2, 1), (1, 1), (1, 2)]).await.unwrap(), (3, 2));
        assert_eq!(entries().await, [entry(1, 2), entry(2, 1)]);
        assert_eq!(record_audits(&db, 1, &[(2, 1), (1, 2)]).await.unwrap(), (0, 0));
        assert_eq!(record_audits(&db, 1, &[(1, 1), (3, 1), (1, 3)]).await.unwrap(), (2, 1));
        assert_eq!(entries().await, [entry(1, 2), entry(2, 1), entry(3, 1)]);
        assert_eq!(record_audits(&db, 1, &[]).await.unwrap(), (0, 0));
    }
}
