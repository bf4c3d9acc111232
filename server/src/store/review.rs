//! Review queues and decisions (migration 0006); the rules are in `crate::review`.
//!
//! A queue's open items are the union of its open `review_entries` rows and, for the two
//! derived queues, a condition evaluated at read time:
//! - `disagreement`: complete items whose consensus posterior is below the project's
//!   `review_threshold` (a range scan of the `consensus_project` index), plus the entries the
//!   submission hook keeps for items whose answers differ (counted only once the item is
//!   complete, so a change of overlap needs no rewrite);
//! - `audit`: complete items whose `AuditDraw` key is below the cut (one integer expression
//!   per item: no stored draw to keep in step with the rate and seed).
//!
//! Derived members leave out gold items (their final label is the gold answer; misses have
//! their own queue) and items with a decision. Counting a queue is one query over the
//! project's items; at 100,000 items the audit part, the largest, evaluates its expression
//! once per complete item.
//!
//! Invariant: a decision and everything it changes (the entries it resolves, the gold answer it
//! corrects, its audit entries) commit in one transaction.
use app::api_types::{
    AuditAction, FinalLabel, GoldAction, GoldAnswer, Project, QueueEntriesAdded, ReviewAnswer, ReviewConsensus,
    ReviewDecision, ReviewItem, ReviewQueueCount, ReviewQueueItem, ReviewQueuePage, ReviewReason,
};
use serde_json::{json, Value};

use super::audit::Entry;
use super::BeginWrite;
use super::batch;
use super::{now_ms, Db};
use crate::error::{AppError, AppResult};
use crate::review::{self, AuditDraw, Filters, QueueKind, ValidDecision};
use crate::{append_audit, on_read, on_write};

/// The submission hook: call inside the submission's transaction after an annotation was
/// written (created or changed), with the batch of the submission's last writes `batch`
/// (`store::batch`), the project id, the item id, the item's gold answer as stored (JSON, None
/// when it is not gold), the other labelers' answers of the item (both read by the submission
/// already, under the item's lock on PostgreSQL), the labeler id, the labels as written and
/// now. It appends its one write to `batch`.
///
/// - On a gold item: an answer that differs from the gold answer opens a `gold_miss` entry for
///   that labeler (one open entry per labeler and item).
/// - On any other item: answers that differ keep one `labels_differ` entry in `disagreement`
///   (not re-opened once a decision resolved it: the lead has ruled); answers that agree again
///   remove the open one.
#[allow(clippy::too_many_arguments)]
pub(super) fn review_after_annotation(
    batch: &mut super::batch::Batch,
    pid: i64,
    item_id: i64,
    gold: Option<&str>,
    other_answers: &[Vec<String>],
    user_id: i64,
    labels: &[String],
    now: i64,
) {
    if let Some(gold) = crate::review::parse_labels(gold) {
        if !crate::review::same_labels(&gold, labels) {
            batch.push(
                OPEN_ENTRY_SQL,
                vec![
                    pid.into(),
                    item_id.into(),
                    "gold_miss".into(),
                    crate::review::REASON_GOLD_MISS.into(),
                    serde_json::json!({"labels": labels, "gold": gold}).to_string().into(),
                    Some(user_id).into(),
                    now.into(),
                ],
            );
        }
        return;
    }
    let answers: Vec<Vec<String>> = other_answers.iter().cloned().chain([labels.to_vec()]).collect();
    if crate::review::answers_differ(&answers) {
        batch.push(
            "INSERT INTO review_entries (project_id, item_id, queue, reason, detail, created_at)
             SELECT $1, $2, 'disagreement', $3, '{}', $4
             WHERE NOT EXISTS (SELECT 1 FROM review_entries
                               WHERE item_id = $2 AND queue = 'disagreement' AND reason = $3)",
            vec![pid.into(), item_id.into(), crate::review::REASON_LABELS_DIFFER.into(), now.into()],
        );
    } else {
        batch.push(
            "DELETE FROM review_entries
             WHERE item_id = $1 AND queue = 'disagreement' AND reason = $2 AND resolved_at IS NULL",
            vec![item_id.into(), crate::review::REASON_LABELS_DIFFER.into()],
        );
    }
}

/// Opens an entry unless the same (item, queue, labeler) has an open one (the partial unique
/// index `review_entries_open`). Binds: project, item, queue, reason, detail, labeler, now.
pub const OPEN_ENTRY_SQL: &str = "INSERT INTO review_entries (project_id, item_id, queue, reason, detail, labeler_id, created_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING";

/// The statement and its arguments that open `entries` ((item id, detail as JSON text)) in
/// `queue` with `reason`, each as [`OPEN_ENTRY_SQL`] would (no labeler), in one statement: the
/// entries go in as one JSON array. For feeds, audit draws and model runs of thousands of
/// items: a statement per item held the write transaction for a round trip each (on SQLite,
/// the one writer every labeler waits for). Run it with `batch::bind`.
/// (`WHERE true`: SQLite would read the `ON` of `ON CONFLICT` after a `FROM` as a join's.)
pub fn open_entries<D: serde::Serialize>(
    is_pg: bool,
    project_id: i64,
    queue: &str,
    reason: &str,
    now: i64,
    entries: &[(i64, D)],
) -> (&'static str, Vec<batch::Arg>) {
    let sql = if is_pg {
        "INSERT INTO review_entries (project_id, item_id, queue, reason, detail, labeler_id, created_at)
         SELECT $1, (e ->> 0)::bigint, $2, $3, e ->> 1, NULL, $4 FROM json_array_elements($5::json) AS e
         ON CONFLICT DO NOTHING"
    } else {
        "INSERT INTO review_entries (project_id, item_id, queue, reason, detail, labeler_id, created_at)
         SELECT $1, e.value ->> 0, $2, $3, e.value ->> 1, NULL, $4 FROM json_each($5) AS e WHERE true
         ON CONFLICT DO NOTHING"
    };
    let entries = serde_json::to_string(entries).expect("entries serialize");
    (sql, vec![project_id.into(), queue.into(), reason.into(), now.into(), entries.into()])
}

/// The visible items of project $2 among the ids of a JSON array ($1: item ids, or external ids
/// when `external`), in one statement: a row per id given, in their order, with the item's id,
/// or NULL when the project has no such visible item.
fn feed_lookup_sql(is_pg: bool, external: bool) -> String {
    let visible = "i.id <= (SELECT visible_max_item_id FROM projects WHERE id = $2)";
    match (is_pg, external) {
        (true, false) => format!(
            "SELECT j.v, i.id FROM json_array_elements_text($1::json) WITH ORDINALITY AS j(v, n)
             LEFT JOIN items i ON i.id = j.v::bigint AND i.project_id = $2 AND {visible} ORDER BY j.n"
        ),
        (true, true) => format!(
            "SELECT j.v, i.id FROM json_array_elements_text($1::json) WITH ORDINALITY AS j(v, n)
             LEFT JOIN items i ON i.project_id = $2 AND i.external_id = j.v AND {visible} ORDER BY j.n"
        ),
        (false, false) => format!(
            "SELECT CAST(j.value AS TEXT), i.id FROM json_each($1) AS j
             LEFT JOIN items i ON i.id = j.value AND i.project_id = $2 AND {visible} ORDER BY j.key"
        ),
        (false, true) => format!(
            "SELECT j.value, i.id FROM json_each($1) AS j
             LEFT JOIN items i ON i.project_id = $2 AND i.external_id = j.value AND {visible} ORDER BY j.key"
        ),
    }
}

/// An item has its k labels (aliases: `i` items, `p` its project).
const HAS_K: &str = "i.label_count >= COALESCE(i.overlap, p.overlap)";

/// A bound value of a query built at run time.
enum Arg {
    Int(i64),
    Text(String),
}

/// SQL text with its arguments, numbered as they are added (`$1`, `$2`, ...; both backends).
#[derive(Default)]
struct Sql {
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn int(&mut self, v: i64) -> String {
        self.args.push(Arg::Int(v));
        format!("${}", self.args.len())
    }
    fn text(&mut self, v: &str) -> String {
        self.args.push(Arg::Text(v.to_string()));
        format!("${}", self.args.len())
    }
}

/// Binds every argument of a `Sql` to a query of either backend.
macro_rules! bind_args {
    ($q:expr, $args:expr) => {{
        let mut q = $q;
        for a in $args {
            q = match a {
                Arg::Int(v) => q.bind(*v),
                Arg::Text(v) => q.bind(v.clone()),
            };
        }
        q
    }};
}

/// The review settings of a project (migration 0005's columns).
#[derive(Clone, Copy, Debug)]
pub struct ReviewSettings {
    pub review_threshold: f64,
    pub audit_rate: f64,
    pub audit_seed: i64,
}

impl ReviewSettings {
    pub fn draw(&self) -> AuditDraw {
        AuditDraw::new(self.audit_seed, self.audit_rate)
    }
}

pub async fn settings(db: &Db, project_id: i64) -> AppResult<ReviewSettings> {
    let row: Option<(f64, f64, i64)> = on_read!(db, pool => sqlx::query_as(
        "SELECT review_threshold, audit_rate, audit_seed FROM projects WHERE id = $1",
    )
    .bind(project_id)
    .fetch_optional(pool)
    .await?);
    let (review_threshold, audit_rate, audit_seed) =
        row.ok_or_else(|| AppError::not_found(format!("no project {project_id}")))?;
    Ok(ReviewSettings { review_threshold, audit_rate, audit_seed })
}

/// Labelers named in a `pair` filter: a username, else a numeric user id.
async fn resolve_user(db: &Db, who: &str) -> AppResult<i64> {
    if let Some(u) = super::users::find_user_by_username(db, who).await? {
        return Ok(u.id);
    }
    if let Ok(id) = who.parse::<i64>() {
        if super::users::get_user(db, id).await?.is_some() {
            return Ok(id);
        }
    }
    Err(AppError::bad_request(format!("pair: there is no user {who:?}")))
}

/// The filters with the pair's users looked up.
struct ResolvedFilters {
    pair: Option<(i64, i64)>,
    slice: Option<(String, String)>,
    label: Option<String>,
}

async fn resolve(db: &Db, f: &Filters) -> AppResult<ResolvedFilters> {
    let pair = match &f.pair {
        Some((a, b)) => Some((resolve_user(db, a).await?, resolve_user(db, b).await?)),
        None => None,
    };
    Ok(ResolvedFilters { pair, slice: f.slice.clone(), label: f.label.clone() })
}

/// ` AND ...` conditions on items `i` for the filters.
fn filter_sql(q: &mut Sql, f: &ResolvedFilters, is_pg: bool) -> String {
    let mut out = String::new();
    if let Some((a, b)) = f.pair {
        let (a, b) = (q.int(a), q.int(b));
        out.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM annotations a1 JOIN annotations a2 ON a2.item_id = a1.item_id
                          WHERE a1.item_id = i.id AND a1.user_id = {a} AND a2.user_id = {b} AND a1.labels <> a2.labels)"
        ));
    }
    if let Some((attr, value)) = &f.slice {
        let (attr, value) = (q.text(attr), q.text(value));
        // Values compare as text, as the dashboard's slices show them: strings as they are,
        // numbers as written, booleans as true/false.
        if is_pg {
            out.push_str(&format!(" AND (i.meta::jsonb ->> {attr}) = {value}"));
        } else {
            out.push_str(&format!(
                " AND EXISTS (SELECT 1 FROM json_each(i.meta) j WHERE j.key = {attr}
                              AND (CASE j.type WHEN 'true' THEN 'true' WHEN 'false' THEN 'false'
                                   ELSE CAST(j.value AS TEXT) END) = {value})"
            ));
        }
    }
    if let Some(label) = &f.label {
        let pat = q.text(&review::label_like_pattern(label));
        out.push_str(&format!(
            " AND EXISTS (SELECT 1 FROM annotations la WHERE la.item_id = i.id AND la.labels LIKE {pat} ESCAPE '\\')"
        ));
    }
    out
}

/// SQL selecting the item ids of a queue's open members (see the module comment).
fn members_sql(q: &mut Sql, pid: i64, queue: &str, settings: &ReviewSettings) -> String {
    let kind = QueueKind::of(queue);
    let (pid, queue) = (q.int(pid), q.text(queue));
    let undecided = "NOT EXISTS (SELECT 1 FROM review_decisions d WHERE d.item_id = i.id)";
    let mut parts = vec![match kind {
        QueueKind::Disagreement => format!(
            "SELECT e.item_id FROM review_entries e
               JOIN items i ON i.id = e.item_id JOIN projects p ON p.id = i.project_id
             WHERE e.project_id = {pid} AND e.queue = {queue} AND e.resolved_at IS NULL
               AND (e.reason <> '{}' OR {HAS_K})",
            review::REASON_LABELS_DIFFER
        ),
        _ => format!(
            "SELECT e.item_id FROM review_entries e
             WHERE e.project_id = {pid} AND e.queue = {queue} AND e.resolved_at IS NULL"
        ),
    }];
    match kind {
        QueueKind::Disagreement => parts.push(format!(
            "SELECT c.item_id FROM consensus c
               JOIN items i ON i.id = c.item_id JOIN projects p ON p.id = i.project_id
             WHERE c.project_id = {pid} AND c.posterior < p.review_threshold AND {HAS_K}
               AND i.gold IS NULL AND {undecided}"
        )),
        QueueKind::Audit => {
            let draw = settings.draw();
            let (s1, s2, cut) = (q.int(draw.s1), q.int(draw.s2), q.int(draw.cut));
            parts.push(format!(
                "SELECT i.id FROM items i JOIN projects p ON p.id = i.project_id
                 WHERE i.project_id = {pid} AND i.id <= p.visible_max_item_id AND {HAS_K}
                   AND i.gold IS NULL AND {key} < {cut} AND {undecided}",
                key = AuditDraw::key_sql("i.id", &s1, &s2)
            ));
        }
        _ => {}
    }
    parts.join(" UNION ")
}

async fn count_open(db: &Db, pid: i64, queue: &str, settings: &ReviewSettings, f: &ResolvedFilters) -> AppResult<i64> {
    let mut q = Sql::default();
    let members = members_sql(&mut q, pid, queue, settings);
    let filters = filter_sql(&mut q, f, db.is_postgres());
    q.text = format!("SELECT COUNT(*) FROM items i WHERE i.id IN ({members}){filters}");
    let n: i64 = on_read!(db, pool => bind_args!(sqlx::query_scalar(&q.text), &q.args).fetch_one(pool).await?);
    Ok(n)
}

/// Every queue of the project with its open (filtered) and resolved counts: the built-in ones,
/// then custom ones by name.
pub async fn queue_counts(db: &Db, pid: i64, filters: &Filters) -> AppResult<Vec<ReviewQueueCount>> {
    let settings = settings(db, pid).await?;
    let f = resolve(db, filters).await?;
    let resolved: Vec<(String, i64)> = on_read!(db, pool => sqlx::query_as(
        "SELECT queue, COUNT(*) FROM review_entries WHERE project_id = $1 AND resolved_at IS NOT NULL GROUP BY queue",
    )
    .bind(pid)
    .fetch_all(pool)
    .await?);
    let custom: Vec<String> = on_read!(db, pool => sqlx::query_scalar(
        "SELECT DISTINCT queue FROM review_entries WHERE project_id = $1 ORDER BY queue",
    )
    .bind(pid)
    .fetch_all(pool)
    .await?);
    let mut names: Vec<String> = review::builtin_queues().map(str::to_string).collect();
    for c in custom {
        if !names.contains(&c) {
            names.push(c);
        }
    }
    let mut out = Vec::with_capacity(names.len());
    for queue in names {
        let open = count_open(db, pid, &queue, &settings, &f).await?;
        let resolved = resolved.iter().find(|(q, _)| *q == queue).map(|r| r.1).unwrap_or(0);
        out.push(ReviewQueueCount { queue, open, resolved });
    }
    Ok(out)
}

#[derive(sqlx::FromRow)]
struct QueueItemRow {
    id: i64,
    external_id: Option<String>,
    snippet: Option<String>,
    image_name: Option<String>,
    label_count: i64,
    /// The page order's key and cursor ([`order_key_sql`]).
    sort_key: i64,
}

#[derive(sqlx::FromRow)]
struct EntryRow {
    item_id: i64,
    queue: String,
    reason: String,
    detail: String,
    labeler: Option<String>,
    created_at: i64,
}

impl EntryRow {
    fn into_reason(self) -> ReviewReason {
        ReviewReason {
            queue: self.queue,
            reason: self.reason,
            detail: serde_json::from_str(&self.detail).unwrap_or(Value::Null),
            labeler: self.labeler,
            created_at: Some(self.created_at),
        }
    }
}

const ENTRY_SELECT: &str = "SELECT e.item_id, e.queue, e.reason, e.detail, u.username AS labeler, e.created_at
     FROM review_entries e LEFT JOIN users u ON u.id = e.labeler_id";

/// The label-error queue's entries carry the model's rank (1 = most likely mislabeled) in
/// their detail; it is read from there. Entries fed without a usable rank (a positive integer
/// below 2^30) come after the ranked ones.
const UNRANKED: i64 = 1 << 30;

/// An entry's rank in its detail, as SQL on review entries `e`: NULL when absent or unusable,
/// so a feeder's free-form detail can never fail the query.
fn detail_rank_sql(is_pg: bool) -> String {
    if is_pg {
        // The text form is matched before the cast: `::bigint` on "high" or 1.5 would fail.
        "(CASE WHEN (e.detail::jsonb ->> 'rank') ~ '^[1-9][0-9]{0,8}$' THEN (e.detail::jsonb ->> 'rank')::bigint END)".into()
    } else {
        "(CASE WHEN json_type(e.detail, '$.rank') = 'integer' AND json_extract(e.detail, '$.rank') BETWEEN 1 AND 999999999
               THEN json_extract(e.detail, '$.rank') END)"
            .into()
    }
}

/// The order a queue's page is in, as one integer per item `i` that is also the keyset cursor
/// (`after`, `next_after`). Most queues: the item id. The label-error queue: most likely
/// mislabeled first, i.e. (rank, item id) packed as rank * 2^32 + id, so that paging needs no
/// second cursor and the review page's worklist follows the same order.
fn order_key_sql(q: &mut Sql, pid: i64, queue: &str, is_pg: bool) -> String {
    if queue != super::model::LABEL_ERROR_QUEUE {
        return "i.id".into();
    }
    let (pid, queue) = (q.int(pid), q.text(queue));
    format!(
        "((SELECT COALESCE(MIN({rank}), {UNRANKED}) FROM review_entries e
           WHERE e.item_id = i.id AND e.project_id = {pid} AND e.queue = {queue} AND e.resolved_at IS NULL) * 4294967296 + i.id)",
        rank = detail_rank_sql(is_pg)
    )
}

/// One page of a queue's open items after the cursor `after` (0: from the start), in the
/// queue's order ([`order_key_sql`]: item id, or rank for the label-error queue), with why
/// each is there.
pub async fn queue_page(
    db: &Db,
    pid: i64,
    queue: &str,
    filters: &Filters,
    after: i64,
    limit: i64,
) -> AppResult<ReviewQueuePage> {
    let settings = settings(db, pid).await?;
    let f = resolve(db, filters).await?;
    let mut q = Sql::default();
    let members = members_sql(&mut q, pid, queue, &settings);
    let filter = filter_sql(&mut q, &f, db.is_postgres());
    let key = order_key_sql(&mut q, pid, queue, db.is_postgres());
    let (after_p, limit_p) = (q.int(after), q.int(limit));
    q.text = format!(
        "SELECT * FROM (
           SELECT i.id, i.external_id, substr(i.text, 1, 240) AS snippet, i.image_name, i.label_count, {key} AS sort_key
           FROM items i WHERE i.id IN ({members}){filter}
         ) page WHERE sort_key > {after_p} ORDER BY sort_key LIMIT {limit_p}"
    );
    let rows: Vec<QueueItemRow> =
        on_read!(db, pool => bind_args!(sqlx::query_as(&q.text), &q.args).fetch_all(pool).await?);
    let open = count_open(db, pid, queue, &settings, &f).await?;
    let next_after = (rows.len() as i64 == limit).then(|| rows.last().map(|r| r.sort_key)).flatten();
    let mut items: Vec<ReviewQueueItem> = rows
        .into_iter()
        .map(|r| ReviewQueueItem {
            item_id: r.id,
            external_id: r.external_id,
            snippet: r.snippet.or(r.image_name).unwrap_or_default(),
            label_count: r.label_count,
            reasons: Vec::new(),
        })
        .collect();
    // The page's id range (not its first and last: a ranked page is not in id order).
    let ids = || items.iter().map(|i| i.item_id);
    if let (Some(first), Some(last)) = (ids().min(), ids().max()) {
        let entries: Vec<EntryRow> = on_read!(db, pool => sqlx::query_as(&format!(
            "{ENTRY_SELECT} WHERE e.project_id = $1 AND e.queue = $2 AND e.resolved_at IS NULL
               AND e.item_id >= $3 AND e.item_id <= $4 ORDER BY e.item_id, e.id"
        ))
        .bind(pid)
        .bind(queue)
        .bind(first)
        .bind(last)
        .fetch_all(pool)
        .await?);
        let low: Vec<(i64, f64)> = if QueueKind::of(queue) == QueueKind::Disagreement {
            on_read!(db, pool => sqlx::query_as(
                "SELECT item_id, posterior FROM consensus
                 WHERE project_id = $1 AND item_id >= $2 AND item_id <= $3 AND posterior < $4",
            )
            .bind(pid)
            .bind(first)
            .bind(last)
            .bind(settings.review_threshold)
            .fetch_all(pool)
            .await?)
        } else {
            Vec::new()
        };
        let draw = settings.draw();
        for item in &mut items {
            item.reasons.extend(entries.iter().filter(|e| e.item_id == item.item_id).map(|e| {
                EntryRow { queue: e.queue.clone(), reason: e.reason.clone(), detail: e.detail.clone(), labeler: e.labeler.clone(), ..*e }
                    .into_reason()
            }));
            if let Some((_, posterior)) = low.iter().find(|l| l.0 == item.item_id) {
                item.reasons.push(low_posterior_reason(*posterior, settings.review_threshold));
            }
            if QueueKind::of(queue) == QueueKind::Audit && item.reasons.is_empty() && draw.drawn(item.item_id) {
                item.reasons.push(audit_reason(&settings));
            }
        }
    }
    Ok(ReviewQueuePage { queue: queue.to_string(), items, next_after, open })
}

fn low_posterior_reason(posterior: f64, threshold: f64) -> ReviewReason {
    ReviewReason {
        queue: "disagreement".into(),
        reason: review::REASON_LOW_POSTERIOR.into(),
        detail: json!({"posterior": posterior, "threshold": threshold}),
        labeler: None,
        created_at: None,
    }
}

fn audit_reason(s: &ReviewSettings) -> ReviewReason {
    ReviewReason {
        queue: "audit".into(),
        reason: review::REASON_AUDIT.into(),
        detail: json!({"audit_rate": s.audit_rate, "audit_seed": s.audit_seed}),
        labeler: None,
        created_at: None,
    }
}

/// At most this many items per feed request.
pub const MAX_FEED: usize = 10_000;

/// Opens entries in `queue` for the given items (numeric and/or external ids). Any unknown id
/// refuses the whole request, so a feeder never half-succeeds without knowing.
pub async fn add_entries(
    db: &Db,
    pid: i64,
    queue: &str,
    item_ids: &[i64],
    external_ids: &[String],
    reason: &str,
    detail: &Value,
) -> AppResult<QueueEntriesAdded> {
    if item_ids.len() + external_ids.len() > MAX_FEED {
        return Err(AppError::bad_request(format!("at most {MAX_FEED} items per request")));
    }
    if item_ids.is_empty() && external_ids.is_empty() {
        return Err(AppError::bad_request("give the items as item_ids and/or external_ids"));
    }
    let detail = if detail.is_null() { "{}".to_string() } else { detail.to_string() };
    let now = now_ms();
    let out = on_write!(db, pool, is_pg => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let mut ids = Vec::with_capacity(item_ids.len() + external_ids.len());
        let mut unknown = Vec::new();
        let numeric = serde_json::to_string(item_ids).expect("ids serialize");
        let external = serde_json::to_string(external_ids).expect("ids serialize");
        for (given, is_external) in [(numeric, false), (external, true)] {
            let rows: Vec<(String, Option<i64>)> = sqlx::query_as(&feed_lookup_sql(is_pg, is_external))
                .bind(given)
                .bind(pid)
                .fetch_all(&mut *tx)
                .await?;
            for (given, found) in rows {
                match found {
                    Some(id) => ids.push(id),
                    None if is_external => unknown.push(format!("{given:?}")),
                    None => unknown.push(given),
                }
            }
        }
        if !unknown.is_empty() {
            let shown: Vec<&str> = unknown.iter().take(20).map(String::as_str).collect();
            return Err(AppError::bad_request(format!(
                "{} of the items are not in this project (nothing was added): {}{}",
                unknown.len(),
                shown.join(", "),
                if unknown.len() > 20 { ", ..." } else { "" }
            )));
        }
        ids.sort_unstable();
        ids.dedup();
        let entries: Vec<(i64, &str)> = ids.iter().map(|id| (*id, detail.as_str())).collect();
        let (sql, args) = open_entries(is_pg, pid, queue, reason, now, &entries);
        let added = batch::bind(sqlx::query(sql), args).execute(&mut *tx).await?.rows_affected() as i64;
        tx.commit().await?;
        QueueEntriesAdded { added, already_open: ids.len() as i64 - added }
    });
    Ok(out)
}

/// The item's facts a decision and the final label depend on.
#[derive(sqlx::FromRow)]
struct ItemFacts {
    label_count: i64,
    gold: Option<String>,
    k: i64,
}

const FACTS_SQL: &str = "SELECT i.label_count, i.gold, COALESCE(i.overlap, p.overlap) AS k
     FROM items i JOIN projects p ON p.id = i.project_id
     WHERE i.id = $1 AND i.project_id = $2 AND i.id <= p.visible_max_item_id";

#[derive(sqlx::FromRow)]
struct DecisionRow {
    id: i64,
    item_id: i64,
    reviewer_id: i64,
    reviewer: String,
    queue: String,
    labels: String,
    note: String,
    gold_outcome: Option<String>,
    created_at: i64,
}

impl DecisionRow {
    fn into_decision(self) -> ReviewDecision {
        ReviewDecision {
            id: self.id,
            item_id: self.item_id,
            reviewer_id: self.reviewer_id,
            reviewer: self.reviewer,
            queue: self.queue,
            labels: review::parse_labels(Some(&self.labels)).unwrap_or_default(),
            note: self.note,
            gold_outcome: self.gold_outcome.as_deref().and_then(GoldAction::parse),
            created_at: self.created_at,
        }
    }
}

/// Everything the review view shows of one item; None when the project has no such item.
pub async fn review_item(db: &Db, project_id: i64, item_id: i64) -> AppResult<Option<ReviewItem>> {
    let facts: Option<ItemFacts> = on_read!(db, pool => sqlx::query_as(FACTS_SQL)
        .bind(item_id)
        .bind(project_id)
        .fetch_optional(pool)
        .await?);
    let Some(facts) = facts else { return Ok(None) };
    let item = super::items::get_item(db, item_id).await?.into_view();
    let answers: Vec<(i64, String, String, i64, i64, i64)> = on_read!(db, pool => sqlx::query_as(
        "SELECT a.user_id, u.username, a.labels, a.time_ms, a.created_at, a.updated_at
         FROM annotations a JOIN users u ON u.id = a.user_id WHERE a.item_id = $1 ORDER BY a.id",
    )
    .bind(item_id)
    .fetch_all(pool)
    .await?);
    let consensus: Option<(String, f64, String, i64, i64)> = on_read!(db, pool => sqlx::query_as(
        "SELECT labels, posterior, method, n_labels, computed_at FROM consensus WHERE item_id = $1",
    )
    .bind(item_id)
    .fetch_optional(pool)
    .await?);
    let decisions: Vec<DecisionRow> = on_read!(db, pool => sqlx::query_as(
        "SELECT d.id, d.item_id, d.reviewer_id, u.username AS reviewer, d.queue, d.labels, d.note, d.gold_outcome, d.created_at
         FROM review_decisions d JOIN users u ON u.id = d.reviewer_id WHERE d.item_id = $1 ORDER BY d.id",
    )
    .bind(item_id)
    .fetch_all(pool)
    .await?);
    let entries: Vec<EntryRow> = on_read!(db, pool => sqlx::query_as(&format!(
        "{ENTRY_SELECT} WHERE e.item_id = $1 AND e.project_id = $2 AND e.resolved_at IS NULL ORDER BY e.id"
    ))
    .bind(item_id)
    .bind(project_id)
    .fetch_all(pool)
    .await?);
    let history = super::audit::item_history(db, project_id, item_id).await?.unwrap_or_default();

    let settings = settings(db, project_id).await?;
    let gold = review::parse_labels(facts.gold.as_deref());
    let consensus = consensus.map(|(labels, posterior, method, n_labels, computed_at)| ReviewConsensus {
        labels: review::parse_labels(Some(&labels)).unwrap_or_default(),
        posterior,
        method,
        n_labels,
        computed_at,
    });
    let decisions: Vec<ReviewDecision> = decisions.into_iter().map(DecisionRow::into_decision).collect();
    let auto = super::prelabels::accepted_of(db, item_id).await?;
    let final_label = review::final_label_or_auto(
        decisions.last().map(|d| d.labels.clone()),
        gold.clone(),
        consensus.as_ref().map(|c| c.labels.clone()),
        facts.label_count,
        facts.k,
        auto,
    );
    let mut reasons: Vec<ReviewReason> = entries.into_iter().map(EntryRow::into_reason).collect();
    let derived_apply = decisions.is_empty() && gold.is_none() && facts.label_count >= facts.k;
    if derived_apply {
        if let Some(c) = consensus.as_ref().filter(|c| c.posterior < settings.review_threshold) {
            reasons.push(low_posterior_reason(c.posterior, settings.review_threshold));
        }
        if settings.draw().drawn(item_id) {
            reasons.push(audit_reason(&settings));
        }
    }
    Ok(Some(ReviewItem {
        item,
        label_count: facts.label_count,
        k: facts.k,
        answers: answers
            .into_iter()
            .map(|(user_id, username, labels, time_ms, created_at, updated_at)| ReviewAnswer {
                user_id,
                username,
                labels: review::parse_labels(Some(&labels)).unwrap_or_default(),
                time_ms,
                created_at,
                updated_at,
            })
            .collect(),
        consensus,
        gold,
        decisions,
        final_label,
        reasons,
        history,
    }))
}

fn final_json(f: &FinalLabel) -> Value {
    json!({"labels": f.labels, "source": f.provenance()})
}

/// Records a lead's decision (see the module's invariant): the decision, its entries resolved,
/// the gold answer corrected when asked, and the audit entries with the final label before
/// and after. `validate` checks the request against the item's gold answer as read inside the
/// transaction.
pub async fn decide(
    db: &Db,
    project: &Project,
    item_id: i64,
    reviewer_id: i64,
    reviewer: &str,
    validate: impl Fn(Option<&[String]>) -> AppResult<ValidDecision>,
) -> AppResult<ReviewDecision> {
    let pid = project.id;
    let now = now_ms();
    let decision = on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let facts: ItemFacts = sqlx::query_as(FACTS_SQL)
            .bind(item_id)
            .bind(pid)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| AppError::not_found(format!("no item {item_id} in this project")))?;
        let gold = review::parse_labels(facts.gold.as_deref());
        let d = validate(gold.as_deref())?;
        let last: Option<String> = sqlx::query_scalar(
            "SELECT labels FROM review_decisions WHERE item_id = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(item_id)
        .fetch_optional(&mut *tx)
        .await?;
        let consensus: Option<String> = sqlx::query_scalar("SELECT labels FROM consensus WHERE item_id = $1")
            .bind(item_id)
            .fetch_optional(&mut *tx)
            .await?;
        // An auto label the decision overrides is part of the "before" the log keeps.
        let auto: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT a.labels, s.kind, s.name, s.version FROM prelabel_accepted a
             JOIN prelabel_sources s ON s.id = a.source_id WHERE a.item_id = $1",
        )
        .bind(item_id)
        .fetch_optional(&mut *tx)
        .await?;
        let before = review::final_label_or_auto(
            review::parse_labels(last.as_deref()),
            gold.clone(),
            review::parse_labels(consensus.as_deref()),
            facts.label_count,
            facts.k,
            auto.map(|(labels, kind, name, version)| review::AutoLabel {
                labels: review::parse_labels(Some(&labels)).unwrap_or_default(),
                source: crate::prelabels::auto_accept::source_name(&kind, &name, &version),
            }),
        );
        let labels_json = serde_json::to_string(&d.labels).map_err(anyhow::Error::from)?;
        let outcome = d.gold_action.map(GoldAction::as_str);
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO review_decisions (project_id, item_id, reviewer_id, queue, labels, note, gold_outcome, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
        )
        .bind(pid)
        .bind(item_id)
        .bind(reviewer_id)
        .bind(&d.queue)
        .bind(&labels_json)
        .bind(&d.note)
        .bind(outcome)
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let open_here: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM review_entries WHERE item_id = $1 AND queue = $2 AND resolved_at IS NULL",
        )
        .bind(item_id)
        .bind(&d.queue)
        .fetch_one(&mut *tx)
        .await?;
        sqlx::query(
            "UPDATE review_entries SET resolved_at = $2, resolved_by = $3, decision_id = $4
             WHERE item_id = $1 AND resolved_at IS NULL",
        )
        .bind(item_id)
        .bind(now)
        .bind(reviewer_id)
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if open_here == 0 {
            // A member of a derived queue (or an item opened from elsewhere): its resolved
            // entry makes the decision count in the queue's resolved number.
            let reason = match QueueKind::of(&d.queue) {
                QueueKind::Disagreement => review::REASON_LOW_POSTERIOR,
                QueueKind::Audit => review::REASON_AUDIT,
                _ => "decided",
            };
            sqlx::query(
                "INSERT INTO review_entries (project_id, item_id, queue, reason, detail, created_at, resolved_at, resolved_by, decision_id)
                 VALUES ($1, $2, $3, $4, '{}', $5, $5, $6, $7)",
            )
            .bind(pid)
            .bind(item_id)
            .bind(&d.queue)
            .bind(reason)
            .bind(now)
            .bind(reviewer_id)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        // A person has ruled: the item is no longer auto-accepted (nor counted as such).
        sqlx::query("DELETE FROM prelabel_accepted WHERE item_id = $1").bind(item_id).execute(&mut *tx).await?;
        if let Some(new_gold) = &d.new_gold {
            let gold_json = serde_json::to_string(new_gold).map_err(anyhow::Error::from)?;
            sqlx::query("UPDATE items SET gold = $1 WHERE id = $2")
                .bind(&gold_json)
                .bind(item_id)
                .execute(&mut *tx)
                .await?;
            append_audit!(tx, Entry {
                project_id: Some(pid),
                item_id: Some(item_id),
                before: Some(json!({"gold": gold})),
                after: Some(json!({"gold": new_gold, "decision_id": id})),
                ..Entry::new(now, Some(reviewer_id), AuditAction::GoldChanged)
            })?;
        }
        let after = review::final_label(Some(d.labels.clone()), None, None, 0, 0);
        let mut after_json = final_json(&after);
        after_json["queue"] = json!(d.queue);
        after_json["note"] = json!(d.note);
        after_json["gold_outcome"] = json!(outcome);
        after_json["decision_id"] = json!(id);
        append_audit!(tx, Entry {
            project_id: Some(pid),
            item_id: Some(item_id),
            before: Some(final_json(&before)),
            after: Some(after_json),
            ..Entry::new(now, Some(reviewer_id), AuditAction::ReviewDecided)
        })?;
        tx.commit().await?;
        ReviewDecision {
            id,
            item_id,
            reviewer_id,
            reviewer: reviewer.to_string(),
            queue: d.queue,
            labels: d.labels,
            note: d.note,
            gold_outcome: d.gold_action,
            created_at: now,
        }
    });
    Ok(decision)
}

/// Marks (labels) or unmarks (None) an item's gold answer, audited. Unmarking resolves the
/// item's open gold misses: with no gold answer there is nothing left to miss.
pub async fn set_gold(
    db: &Db,
    project_id: i64,
    item_id: i64,
    actor: i64,
    labels: Option<Vec<String>>,
) -> AppResult<GoldAnswer> {
    let now = now_ms();
    on_write!(db, pool => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        let facts: ItemFacts = sqlx::query_as(FACTS_SQL)
            .bind(item_id)
            .bind(project_id)
            .fetch_optional(&mut *tx)
            .await?
            .ok_or_else(|| AppError::not_found(format!("no item {item_id} in this project")))?;
        let old = review::parse_labels(facts.gold.as_deref());
        let unchanged = match (&old, &labels) {
            (Some(a), Some(b)) => review::same_labels(a, b),
            (None, None) => true,
            _ => false,
        };
        if !unchanged {
            let json_text = labels.as_ref().map(|l| serde_json::to_string(l)).transpose().map_err(anyhow::Error::from)?;
            sqlx::query("UPDATE items SET gold = $1 WHERE id = $2")
                .bind(json_text)
                .bind(item_id)
                .execute(&mut *tx)
                .await?;
            if labels.is_none() {
                sqlx::query(
                    "UPDATE review_entries SET resolved_at = $2, resolved_by = $3
                     WHERE item_id = $1 AND queue = 'gold_miss' AND resolved_at IS NULL",
                )
                .bind(item_id)
                .bind(now)
                .bind(actor)
                .execute(&mut *tx)
                .await?;
            }
            append_audit!(tx, Entry {
                project_id: Some(project_id),
                item_id: Some(item_id),
                before: Some(json!({"gold": old})),
                after: Some(json!({"gold": labels})),
                ..Entry::new(now, Some(actor), AuditAction::GoldChanged)
            })?;
        }
        tx.commit().await?;
    });
    Ok(GoldAnswer { item_id, gold: labels })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::test_db::{plan, sqlite_with};

    /// A feed of thousands of ids looks each up by its key (the primary key, or the project's
    /// unique external ids) from the list, never by a walk of the project's items.
    #[tokio::test]
    async fn a_feed_finds_its_items_by_key() {
        let (_dir, db) = sqlite_with(&[]).await;
        for (external, index) in [(false, "USING INTEGER PRIMARY KEY (rowid=?)"), (true, "(project_id=? AND external_id=?")] {
            let p = plan(&db, &feed_lookup_sql(false, external), 2).await;
            assert!(p.contains("SCAN j VIRTUAL TABLE") && p.lines().any(|l| l.starts_with("SEARCH i ") && l.contains(index)), "{p}");
            assert!(!p.contains("SCAN i"), "{p}");
        }
    }
}
