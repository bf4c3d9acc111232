//! Handing out items: leases, skips, and the submission that closes a lease.
//!
//! The invariants, under any concurrency: no item gets more than `overlap` annotations, and no
//! labeler annotates an item twice. Every statement that reads and then changes an item's
//! capacity runs while holding the project's assignment lock: on SQLite that is the single
//! writer connection (submissions and skips go through its group commit, `store::writer`: one
//! job after another; every refusal is decided before the job's first write). On SQLite the
//! leases themselves live in memory, in the lease book (`store::lease_book`, which says why and
//! how a hand-out there is a read and a claim in the book, not a write). On PostgreSQL,
//! hand-outs and submissions take a transaction-scoped advisory lock on the project id in
//! *shared* mode and claim rows: a hand-out locks the item it gives
//! (`FOR NO KEY UPDATE SKIP LOCKED`, then checks its capacity again, `claim_open_item`; it
//! waits for a locked item only when no unlocked one is left), a submission waits for its
//! item's row lock; so two hand-outs or submissions contend only when they touch the same
//! item, across any number of app instances on the database. Settings and
//! campaign changes take the advisory lock exclusively and never run alongside them.
//!
//! Capacity: an item can take another labeler while
//! `label_count + (unexpired leases of other labelers) < COALESCE(items.overlap, projects.overlap)`
//! (an item's own overlap, set by a dev-set campaign, wins over the project's). A labeler's own
//! unexpired lease therefore reserves a slot, and an expired lease frees it without any clean-up.
//! `complete`, `label_count` and the project's `done_count` follow the same effective overlap.
//!
//! The order of the stream and the gold items mixed into it follow `crate::stream`. Gold items
//! stand outside the capacity rule: any labeler may answer each one once, and an answer on a
//! gold item changes neither its `label_count` nor `complete` nor the project's `done_count`.
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

use super::batch::Batch;
use super::statements::{Row, Statements};
use super::BeginWrite;
use super::items::{ItemRow, ITEM_COLUMNS, ITEM_FROM};
use super::audit::Entry;
use super::projects::{ProjectRow, PROJECT_COLUMNS};
use super::{now_ms, Db};
use crate::error::{AppError, AppResult};
use crate::{on_group_statements, on_read, on_write};

/// How long after its end a lease still entitles its labeler to submit (capacity allowing).
/// Expired leases are kept this long before the clean-up deletes them.
pub const LEASE_GRACE_MS: i64 = 3_600_000;

/// How many unexpired leases one labeler may hold in a project (the item on screen plus a
/// few prefetched ones). Older leases beyond this are released.
const MAX_LEASES_PER_LABELER: i64 = 3;

/// The stream settings of a project, read inside the hand-out's transaction (under the
/// assignment lock, like every setting a statement here depends on).
struct StreamSettings {
    overlap: i64,
    assignment_order: String,
    gold_rate: f64,
    visible_max_item_id: i64,
    lease_seconds: i64,
    /// Issue 10: the built-in model's least certain items first ([`UNCERTAIN_STEP`]).
    uncertainty_order: i64,
    /// What the gold draw needs (`gold_item`): the labeler's number of annotations, read only
    /// when `gold_rate` > 0 and the project has a visible gold item (None otherwise, and then
    /// there is no draw).
    answered: Option<i64>,
}

impl StreamSettings {
    fn from_row(r: &Row) -> AppResult<StreamSettings> {
        Ok(StreamSettings {
            overlap: r.i64("overlap")?,
            assignment_order: r.string("assignment_order")?,
            gold_rate: r.f64("gold_rate")?,
            visible_max_item_id: r.i64("visible_max_item_id")?,
            lease_seconds: r.i64("lease_seconds")?,
            uncertainty_order: r.i64("uncertainty_order")?,
            answered: r.opt_i64("answered")?,
        })
    }
}

/// The hand-out queries of an assignment order, tried in turn until one gives an item: each
/// is (extra condition, ORDER BY) and has an index that yields the items in this order
/// (migrations 0001, 0007, 0016), so LIMIT 1 stops at the first item that passes the per-row
/// checks and the project's items are never sorted. 'priority' is two: the items a dev-set
/// campaign raised (priority > 0, their own small index), then the rest by rank. On SQLite the
/// indexes also cover every column the checks read (migration 0020): passing over the items
/// other labelers hold reads no item row.
fn order_steps(assignment_order: &str) -> &'static [(&'static str, &'static str)] {
    match assignment_order {
        "import" => &[("", "i.id")],
        "priority" => &[("AND i.priority > 0", "i.priority DESC, i.rank, i.id"), ("AND i.priority <= 0", "i.rank, i.id")],
        // 'random', and anything the CHECK constraint will add later: never an error mid-stream.
        _ => &[("", "i.rank, i.id")],
    }
}

/// Issue 10's uncertainty order, a step before the order's own when the project turns it on:
/// the items the built-in model's last run ranked (`items.model_rank`, partial index
/// `items_model_rank`, migration 0017), least certain first.
const UNCERTAIN_STEP: (&str, &str) = ("AND i.model_rank IS NOT NULL", "i.model_rank, i.id");

/// One query of a hand-out's steps, as SQLite and PostgreSQL without row claiming run it
/// (`scan`), and as row claiming runs it: the same with `claim_sql`'s lock, passing over the
/// items other transactions have locked (`claim`), or waiting for them (`claim_waiting`).
struct HandOutStep {
    scan: String,
    claim: String,
    claim_waiting: String,
    /// SQLite: the step with the leases read from the lease book (`Leases::Book`), answering
    /// the item's `label_count` and effective `overlap` with its id for the claim.
    book: String,
}

/// The assignment orders whose steps `hand_out_steps` builds, one list each; any other order
/// is served as 'random' (`order_steps`).
const ORDERS: [&str; 3] = ["import", "priority", "random"];

/// Every query a hand-out tries in turn for a project in `assignment_order`: the uncertainty
/// step when the project turns it on (`uncertain`), the order's open items (`order_steps`),
/// then the item the labeler skipped longest ago. Their texts depend on nothing else, so they
/// are built once per order, not on every hand-out on the writer's path.
fn hand_out_steps(assignment_order: &str, uncertain: bool) -> &'static [HandOutStep] {
    static STEPS: std::sync::LazyLock<Vec<Vec<HandOutStep>>> = std::sync::LazyLock::new(|| {
        let lists = ORDERS.iter().flat_map(|order| [false, true].map(|uncertain| (order, uncertain)));
        lists
            .map(|(order, uncertain)| {
                let open = uncertain.then_some(&UNCERTAIN_STEP).into_iter().chain(order_steps(order));
                open.map(|(cond, order_by)| (open_item_sql(cond, order_by, Leases::Table), open_item_sql(cond, order_by, Leases::Book)))
                    .chain([(SKIPPED_ITEM_SQL.clone(), skipped_item_sql(Leases::Book))])
                    .map(|(scan, book)| {
                        let claim_waiting = claim_sql(&scan);
                        HandOutStep { claim: format!("{claim_waiting} SKIP LOCKED"), claim_waiting, scan, book }
                    })
                    .collect()
            })
            .collect()
    });
    let order = ORDERS.iter().position(|o| *o == assignment_order).unwrap_or(ORDERS.len() - 1);
    &STEPS[order * 2 + uncertain as usize]
}

/// The first open item for the labeler in the project's order: not gold, not complete, visible
/// ($4: `visible_max_item_id`), neither answered nor skipped nor held by them ($2, $3: now),
/// with capacity under its effective overlap ($5: the project's).
///
/// The capacity comes first: the items it turns away are the ones the scan meets most (those
/// other labelers hold right now, at the front of the stream), and SQLite tests the conditions
/// in the order written, so each of them costs one index look-up, not five.
///
/// `+i.id <= $4`: the unary plus keeps the planners from reading the visibility bound as a
/// range on an index led by (project_id, complete, id) (`items_stream_import`; `items_open`
/// before migration 0023); SQLite otherwise took that range for the random and priority orders
/// and then sorted every open item (the unit test below).
fn open_item_sql(condition: &str, order_by: &str, leases: Leases) -> String {
    format!(
        "SELECT {columns} FROM items i
         WHERE i.project_id = $1 AND i.complete = 0 AND i.gold IS NULL AND +i.id <= $4 {condition}
           AND {capacity}
           AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.user_id = $2)
           AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.item_id = i.id AND s.user_id = $2)
           AND NOT {held}
           AND NOT EXISTS (SELECT 1 FROM prelabel_accepted x WHERE x.item_id = i.id) -- auto-accepted (issue 10)
         ORDER BY {order_by} LIMIT 1",
        columns = leases.found_columns(),
        capacity = leases.capacity_sql("$2", "$3", "$5"),
        held = leases.held_sql("$2", "$3"),
    )
}

/// Where a hand-out's statements read the leases: PostgreSQL's leases table, or on SQLite the
/// lease book (`store::lease_book`) through the inline readers' functions
/// (`inline_reader::register_lease_functions`), with the reader's `ReadTicket::visible` in $6.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Leases {
    Table,
    Book,
}

impl Leases {
    /// The capacity rule for item `i` and labeler `user` at `now` (`overlap`: the project's),
    /// as SQL: every statement that hands an item out evaluates this one text.
    fn capacity_sql(self, user: &str, now: &str, overlap: &str) -> String {
        let others = match self {
            Leases::Table => format!("(SELECT COUNT(*) FROM leases l WHERE l.item_id = i.id AND l.user_id <> {user} AND l.expires_at > {now})"),
            Leases::Book => format!("mirrorset_lease_others(i.id, {user}, {now}, $6)"),
        };
        format!("i.label_count + {others} < COALESCE(i.overlap, {overlap})")
    }

    /// Whether labeler `user` holds item `i` at `now` (from the book: or has just answered it).
    fn held_sql(self, user: &str, now: &str) -> String {
        match self {
            Leases::Table => format!("EXISTS (SELECT 1 FROM leases m WHERE m.item_id = i.id AND m.user_id = {user} AND m.expires_at > {now})"),
            Leases::Book => format!("mirrorset_lease_holds(i.id, {user}, {now})"),
        }
    }

    /// What a hand-out's scan answers: the item's id, and from the book also what its claim
    /// checks (`LeaseBook::claim`).
    fn found_columns(self) -> &'static str {
        match self {
            Leases::Table => "i.id",
            Leases::Book => "i.id, i.label_count, COALESCE(i.overlap, $5) AS overlap",
        }
    }
}

/// The item the labeler skipped longest ago that still needs labels (same parameters).
fn skipped_item_sql(leases: Leases) -> String {
    format!(
        "SELECT {columns} FROM skips s JOIN items i ON i.id = s.item_id
         WHERE s.user_id = $2 AND s.project_id = $1 AND i.complete = 0 AND i.gold IS NULL AND i.id <= $4
           AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.user_id = $2)
           AND NOT {held}
           AND NOT EXISTS (SELECT 1 FROM prelabel_accepted x WHERE x.item_id = i.id)
           AND {capacity}
         ORDER BY s.skipped_at, i.id LIMIT 1",
        columns = leases.found_columns(),
        capacity = leases.capacity_sql("$2", "$3", "$5"),
        held = leases.held_sql("$2", "$3"),
    )
}

/// `skipped_item_sql` from the leases table.
static SKIPPED_ITEM_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| skipped_item_sql(Leases::Table));

/// Row claiming on PostgreSQL is the default; `MIRRORSET_PG_ASSIGNMENT=advisory` brings back the
/// previous behaviour (every hand-out and submission of a project takes the advisory lock
/// exclusively and reads without row locks), for the benchmark's comparison of the two
/// (docs/bench.md) on one binary. Read once.
fn pg_row_claiming() -> bool {
    static CLAIMING: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *CLAIMING.get_or_init(|| std::env::var("MIRRORSET_PG_ASSIGNMENT").map_or(true, |v| v.trim() != "advisory"))
}

/// PostgreSQL: the assignment lock of project `pid` that a hand-out or submission takes
/// before anything else, in the round trip that begins its transaction (`on_group_statements!`
/// with `pg_first`; before the first snapshot, so a settings change that held the lock is
/// seen in full). With row claiming it is shared: hand-outs and submissions run concurrently
/// and rely on row locks on the items for capacity (below), while a change of the project's
/// settings or campaign takes it exclusively (`pg_advisory_xact_lock`, same key) and so still
/// never runs alongside one of them. Without row claiming it is exclusive.
fn pg_project_lock(pid: i64) -> String {
    let lock = if pg_row_claiming() { "pg_advisory_xact_lock_shared" } else { "pg_advisory_xact_lock" };
    format!("SELECT {lock}({pid}::bigint)")
}

/// How many candidates one step of a hand-out claims and passes over (each one filled up
/// between the claiming statement's snapshot and its lock) before it gives up on that step.
const MAX_CLAIM_ATTEMPTS: usize = 16;

/// PostgreSQL: a hand-out query (`open_item_sql`, `SKIPPED_ITEM_SQL`) that also locks the item
/// it returns, leaving out those in $6 (comma-separated ids this hand-out already passed
/// over). As written it waits for an item another transaction has locked; `HandOutStep::claim`
/// adds `SKIP LOCKED` to pass over such items (they are being handed out or labeled right now).
fn claim_sql(hand_out_sql: &str) -> String {
    hand_out_sql.replacen(
        " ORDER BY ",
        " AND NOT (i.id = ANY(string_to_array($6, ',')::bigint[])) ORDER BY ",
        1,
    ) + " FOR NO KEY UPDATE OF i"
}

/// `FOR NO KEY UPDATE`, not `FOR UPDATE`: every transaction that inserts a row referencing an
/// item (a consensus refresh, pre-labels, a review entry) holds a `FOR KEY SHARE` lock on the
/// item until it commits, which `FOR UPDATE` conflicts with; `SKIP LOCKED` then passed over
/// every such item, and a labeler was told there was nothing left to label while a refresh
/// ran (the intermittent PostgreSQL failure of `dashboard_equals_the_stats_command_on_the_export`).
/// Hand-outs and submissions still exclude each other: `FOR NO KEY UPDATE` conflicts with itself.
///
/// Row claiming on PostgreSQL: the first open item of the hand-out's `steps` nobody else is
/// claiming right now (`HandOutStep::claim`), locked until the transaction ends; then its
/// lease (`claim_in_step`). Only when no step has an unlocked item left are the steps claimed
/// again, waiting for the locked items (`claim_waiting`), before the answer is "none": an item
/// locked by another labeler's submission or hand-out in flight may still have a slot once
/// that commits. Passing over it told labelers near a project's end that nothing was left
/// while an item still lacked a label (the intermittent PostgreSQL failure of
/// `k2_concurrent_labelers`). A hand-out that waits may hold the items it passed over, but
/// it waits only for an item its new snapshot shows open, so never for one that another
/// waiting hand-out had found full before, unless a slot was freed (a skip, a released
/// lease) in between: a cycle needs that on both sides at once, and PostgreSQL would end it
/// by failing one of the two. `lease`: (now, when the lease ends, the progress's `since`).
/// Answers the item and `HANDED_OUT_SQL`'s row for it.
async fn claim_open_item<S: Statements>(
    s: &mut S,
    steps: &[HandOutStep],
    pid: i64,
    user_id: i64,
    lease: (i64, i64, i64),
    settings: &StreamSettings,
) -> AppResult<Option<(i64, Row)>> {
    let mut passed_over = String::new();
    for waiting in [false, true] {
        for step in steps {
            let claim = if waiting { &step.claim_waiting } else { &step.claim };
            if let Some(found) = claim_in_step(s, claim, &mut passed_over, pid, user_id, lease, settings).await? {
                return Ok(Some(found));
            }
        }
    }
    Ok(None)
}

/// One step of `claim_open_item`: the first item of `claim` not in `passed_over`, locked,
/// then its lease, written only when the item still has capacity (`PG_CLAIMED_LEASE_SQL`), a
/// new statement, which sees every hand-out and submission committed before the lock was
/// taken (the claiming statement's snapshot may predate them). A candidate that filled up
/// meanwhile is added to `passed_over` and the next one claimed. Every change of an item's
/// capacity (a lease here, an annotation in `submit_annotation`) happens while holding that
/// item's row lock.
async fn claim_in_step<S: Statements>(
    s: &mut S,
    claim: &str,
    passed_over: &mut String,
    pid: i64,
    user_id: i64,
    (now, expires, since): (i64, i64, i64),
    settings: &StreamSettings,
) -> AppResult<Option<(i64, Row)>> {
    for _ in 0..MAX_CLAIM_ATTEMPTS {
        let args = vec![pid.into(), user_id.into(), now.into(), settings.visible_max_item_id.into(), settings.overlap.into(), passed_over.clone().into()];
        let Some(candidate) = s.first_i64(claim, args).await? else { break };
        let args = vec![pid.into(), user_id.into(), since.into(), candidate.into(), now.into(), expires.into(), settings.overlap.into()];
        if let Some(row) = s.first_row(&PG_CLAIMED_LEASE_SQL, args).await? {
            return Ok(Some((candidate, row)));
        }
        if !passed_over.is_empty() {
            passed_over.push(',');
        }
        passed_over.push_str(&candidate.to_string());
    }
    Ok(None)
}

/// PostgreSQL: the lease of claimed item $4 for labeler $2 in project $1 ($5: now, $6: when it
/// ends, $7: the project's overlap), written only when the item can still take the labeler
/// (evaluated afresh once the item is locked: the capacity rule of `open_item_sql`, and that
/// the labeler has neither answered the item nor holds it: the transaction the claim waited
/// for or raced with may have been their own answer or hand-out. The labeling page asks for
/// the next item while it saves an answer, and when that answer's lease had expired or the
/// item had been skipped, the claim's snapshot, from before the save, did not rule it out),
/// and `HANDED_OUT_SQL`'s row for it ($3: `since`), in one statement: no row when it cannot.
/// The read sees the snapshot from before the lease, and names no table it writes.
static PG_CLAIMED_LEASE_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH lease AS (
           INSERT INTO leases (item_id, user_id, project_id, leased_at, expires_at)
           SELECT i.id, $2, $1, $5, $6 FROM items i
           WHERE i.id = $4 AND i.complete = 0 AND {capacity}
             AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.user_id = $2)
             AND NOT EXISTS (SELECT 1 FROM leases m WHERE m.item_id = i.id AND m.user_id = $2 AND m.expires_at > $5)
           ON CONFLICT (item_id, user_id) DO UPDATE SET expires_at = $6
           RETURNING item_id)
         {handed_out} AND EXISTS (SELECT 1 FROM lease)",
        capacity = Leases::Table.capacity_sql("$2", "$5", "$7"),
        handed_out = *HANDED_OUT_SQL,
    )
});

/// The first gold item in rank order from the labeler's starting point $4 (`from_start`), or
/// before it (the wrap-around), that the labeler ($2) has not answered, skipped or been handed
/// (leases unexpired at $3); $5: `visible_max_item_id`.
fn gold_item_sql(from_start: bool, leases: Leases) -> String {
    let from = if from_start { "i.rank >= $4" } else { "i.rank < $4" };
    format!(
        "SELECT i.id FROM items i
         WHERE i.project_id = $1 AND i.gold IS NOT NULL AND i.id <= $5 AND {from}
           AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = i.id AND a.user_id = $2)
           AND NOT EXISTS (SELECT 1 FROM skips s WHERE s.item_id = i.id AND s.user_id = $2)
           AND NOT {held}
         ORDER BY i.rank, i.id LIMIT 1",
        held = leases.held_sql("$2", "$3"),
    )
}

/// The gold item of this hand-out, if any: when the project has gold items, the labeler's
/// draw for this hand-out (`crate::stream::draws_gold`, numbered by the items they answered
/// plus those they hold) says gold, and a gold item is left that they have not answered,
/// skipped or been handed. Gold items are taken in rank order from the labeler's own starting
/// point (`crate::stream::gold_start`), wrapping around: two range scans of the gold index.
async fn gold_item<S: Statements>(
    s: &mut S,
    leases: Leases,
    pid: i64,
    user_id: i64,
    now: i64,
    settings: &StreamSettings,
    held: i64,
) -> AppResult<Option<i64>> {
    let Some(answered) = settings.answered else {
        return Ok(None);
    };
    if !crate::stream::draws_gold(pid, user_id, answered + held, settings.gold_rate) {
        return Ok(None);
    }
    for from_start in [true, false] {
        let args = vec![pid.into(), user_id.into(), now.into(), crate::stream::gold_start(pid, user_id).into(), settings.visible_max_item_id.into()];
        if let Some(found) = s.first_i64(&gold_item_sql(from_start, leases), args).await? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// A hand-out's first read ($1: the labeler, $2: the project, $3: now): the project's stream
/// settings and what the gold draw needs (`StreamSettings`; the gold index is read only when
/// the project mixes in gold items, and the labeler's totals (`labeler_totals`, kept by
/// triggers: migration 0021) only when a visible gold item exists), and the labeler's
/// unexpired leases of items they have not answered, oldest first, as `held_item_id`: a row
/// per lease, or one row with a NULL `held_item_id` when they hold none; no row when the
/// project is gone or the labeler may not see it ($4: 1 when they may see every project,
/// `Labeler::any_project`). One statement, not four or five: on PostgreSQL each is a round
/// trip.
static HELD_AND_SETTINGS_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| held_and_settings_sql(Leases::Table));

/// `HELD_AND_SETTINGS_SQL`, or on SQLite without the leases (the hand-out asks the lease book
/// which items the labeler holds): the one row of settings.
fn held_and_settings_sql(leases: Leases) -> String {
    let (held, join, order) = match leases {
        Leases::Table => (
            "l.item_id",
            "LEFT JOIN leases l ON l.user_id = $1 AND l.project_id = p.id AND l.expires_at > $3
       AND NOT EXISTS (SELECT 1 FROM annotations a WHERE a.item_id = l.item_id AND a.user_id = $1)",
            "ORDER BY l.leased_at, l.item_id",
        ),
        Leases::Book => ("NULL", "", ""),
    };
    format!(
        "SELECT p.overlap, p.assignment_order, p.gold_rate, p.visible_max_item_id, p.lease_seconds,
        p.uncertainty_order, {held} AS held_item_id,
        CASE WHEN p.gold_rate > 0 AND EXISTS (SELECT 1 FROM items g
            WHERE g.project_id = p.id AND g.gold IS NOT NULL AND g.id <= p.visible_max_item_id)
          THEN COALESCE((SELECT t.annotations FROM labeler_totals t
            WHERE t.project_id = p.id AND t.user_id = $1), 0) END AS answered
     FROM projects p
     {join}
     WHERE p.id = $2 AND {visible}
     {order}",
        visible = super::projects::visible_to_sql("p.id", "$1", "$4"),
    )
}

/// Who labels: the user, and whether they may label in every project (an admin) rather than
/// only in those they belong to. The labeling loop's statements check it in their own
/// transaction: a project the labeler may not see is "no project", as if it did not exist.
#[derive(Clone, Copy, Debug)]
pub struct Labeler {
    pub user_id: i64,
    pub any_project: bool,
}

/// The item handed out and when its lease ends.
pub struct Assigned {
    pub item: ItemRow,
    pub lease_expires_at: i64,
    /// The pre-label the labeling view shows beside it, if any (`store::prelabels`).
    pub prelabel: Option<app::api_types::PrelabelView>,
}

/// What a `next` answers: the item (if any) and the caller's progress after the hand-out.
pub struct HandOut {
    pub assigned: Option<Assigned>,
    pub progress: ProgressCounts,
}

/// Gives the labeler an item to label: one they already hold (and the page does not have,
/// per `exclude`); else, when the gold draw of this hand-out says so (`crate::stream`), a gold
/// item they have not answered, skipped or been handed; else the first open item in the
/// project's order with capacity that they have neither labeled nor skipped; else the item
/// they skipped longest ago.
///
/// On SQLite this is a read on an inline reader and a claim in the lease book
/// (`hand_out_from_book`): no write, so it does not queue for the writer. On PostgreSQL it
/// is a transaction under the project's assignment lock that writes the lease (`hand_out`).
pub async fn assign_next_item(db: &Db, pid: i64, labeler: Labeler, exclude: &[i64], since: i64) -> AppResult<HandOut> {
    let now = now_ms();
    let (item, prelabel, progress, expires) = match db {
        Db::Sqlite { inline, leases, .. } => {
            let (handed, recount) = inline.with(|conn| hand_out_from_book(conn, leases, pid, labeler, now, since, exclude))?;
            if recount {
                // A new day's first hand-out stores the day's count (`recount_since`): a write.
                on_group_statements!(db, s, _is_pg, job = HandOut => s.run(recount_since_batch(pid, labeler.user_id, since)).await?);
            }
            handed
        }
        Db::Postgres(_) => {
            let exclude = exclude.to_vec();
            on_group_statements!(db, s, is_pg, job = HandOut, pg_first = pg_project_lock(pid) => {
                hand_out(&mut s, is_pg, pid, labeler, now, since, &exclude).await?
            })
        }
    };
    Ok(HandOut {
        assigned: item.map(|item| Assigned {
            item,
            lease_expires_at: expires,
            prelabel: prelabel.map(super::prelabels::view),
        }),
        progress,
    })
}

/// Answers (item, its pre-label, progress, when the lease ends).
type HandedOut = (Option<ItemRow>, Option<super::prelabels::PrelabelRow>, ProgressCounts, i64);

/// `assign_next_item`'s statements, the same on both backends (`store::statements`): on
/// SQLite on the writer's raw handle, with no hand-off to another thread between them.
async fn hand_out<S: Statements>(
    s: &mut S,
    is_pg: bool,
    pid: i64,
    labeler: Labeler,
    now: i64,
    since: i64,
    exclude: &[i64],
) -> AppResult<HandedOut> {
    let user_id = labeler.user_id;
    let args = vec![user_id.into(), pid.into(), now.into(), (labeler.any_project as i64).into()];
    let rows = s.rows(&HELD_AND_SETTINGS_SQL, args).await?;
    let settings = rows.first().ok_or_else(|| AppError::not_found(format!("no project {pid}")))?;
    let settings = StreamSettings::from_row(settings)?;
    let expires = now + settings.lease_seconds * 1000;
    let held: Vec<i64> = rows.iter().filter_map(|r| r.opt_i64("held_item_id").transpose()).collect::<AppResult<_>>()?;
    let mut chosen = held.iter().copied().find(|id| !exclude.contains(id));
    if chosen.is_none() && settings.gold_rate > 0.0 {
        chosen = gold_item(s, Leases::Table, pid, user_id, now, &settings, held.len() as i64).await?;
    }
    // A claimed item comes with its lease written and the hand-out's answer read
    // (`claim_open_item`).
    let mut claimed: Option<Row> = None;
    let steps = hand_out_steps(&settings.assignment_order, settings.uncertainty_order != 0);
    let claiming = is_pg && pg_row_claiming();
    if chosen.is_none() && claiming {
        if let Some((id, row)) = claim_open_item(s, steps, pid, user_id, (now, expires, since), &settings).await? {
            (chosen, claimed) = (Some(id), Some(row));
        }
    }
    if chosen.is_none() && !claiming {
        for step in steps {
            let args = vec![pid.into(), user_id.into(), now.into(), settings.visible_max_item_id.into(), settings.overlap.into()];
            chosen = s.first_i64(&step.scan, args).await?;
            if chosen.is_some() {
                break;
            }
        }
    }
    let Some(item_id) = chosen else {
        let progress = s.first_row(PROGRESS_SQL, vec![pid.into(), user_id.into(), since.into()]).await?;
        if let Some(r) = &progress {
            recount_since(s, r, pid, user_id, since).await?;
        }
        return Ok((None, None, progress.map(|r| progress_counts(&r)).transpose()?.unwrap_or((0, 0, 0, 0)), expires));
    };
    let is_new = !held.contains(&item_id);
    let mut lease = Batch::new();
    if claimed.is_none() {
        lease.push(
            "INSERT INTO leases (item_id, user_id, project_id, leased_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (item_id, user_id) DO UPDATE SET expires_at = $5",
            vec![item_id.into(), user_id.into(), pid.into(), now.into(), expires.into()],
        );
    }
    if is_new && held.len() as i64 >= MAX_LEASES_PER_LABELER {
        // Release the oldest leases so one labeler cannot hoard items. Ended, not deleted: the
        // labeler may still answer within the grace (capacity allowing).
        let surplus = held.len() as i64 + 1 - MAX_LEASES_PER_LABELER;
        for old in held.iter().take(surplus as usize) {
            lease.push(
                "UPDATE leases SET expires_at = $3 WHERE item_id = $1 AND user_id = $2",
                vec![(*old).into(), user_id.into(), now.into()],
            );
        }
    }
    // The item itself, the pre-label shown beside it and the caller's progress, read in the
    // same transaction, in one statement: their pages are the ones the hand-out just touched
    // (on SQLite a reader connection starts cold after each commit, while the writer's cache
    // stays warm: session 9's profile), and each statement is a round trip on PostgreSQL,
    // where the lease's writes go in the same statement (`Statements::rows_after`: the read
    // names no table they write).
    let row = match claimed {
        Some(row) => {
            // Only the release of older leases is left (rare: a page holding three asked for
            // a fourth).
            if !lease.is_empty() {
                s.run(lease).await?;
            }
            row
        }
        None => s
            .rows_after(lease, &HANDED_OUT_SQL, vec![pid.into(), user_id.into(), since.into(), item_id.into()])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("item {item_id} was handed out but cannot be read")))?,
    };
    recount_since(s, &row, pid, user_id, since).await?;
    let item = ItemRow::from_row(&row)?;
    let prelabel = super::prelabels::ShownPrelabel::from_row(&row)?.into_row();
    Ok((Some(item), prelabel, progress_counts(&row)?, expires))
}

/// When the hand-out's progress (`PROGRESS_SQL`'s row `r`) had to count the labeler's
/// annotations since `since` (their stored count is for another `since`: a new day), stores
/// the count from `since` on, so the next hand-outs of the day read it from the row.
async fn recount_since<S: Statements>(s: &mut S, r: &Row, pid: i64, user_id: i64, since: i64) -> AppResult<()> {
    if needs_recount(r, since)? {
        s.run(recount_since_batch(pid, user_id, since)).await?;
    }
    Ok(())
}

/// Whether the progress row `r` was counted for another `since` (`recount_since`).
fn needs_recount(r: &Row, since: i64) -> AppResult<bool> {
    Ok(r.opt_i64("counted_since")?.is_some_and(|counted| counted != since))
}

/// `recount_since`'s write. The count is taken again in the UPDATE itself: on PostgreSQL the
/// row's lock orders it with the triggers of concurrent submissions, so none is counted twice
/// or missed; on SQLite the writer runs it between submissions.
fn recount_since_batch(pid: i64, user_id: i64, since: i64) -> Batch {
    Batch::one(
        "UPDATE labeler_totals SET since = $3, since_count =
            (SELECT COUNT(*) FROM annotations WHERE project_id = $1 AND user_id = $2 AND created_at >= $3)
         WHERE project_id = $1 AND user_id = $2",
        vec![pid.into(), user_id.into(), since.into()],
    )
}

/// SQL of the settings read of a hand-out from the lease book.
static BOOK_SETTINGS_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| held_and_settings_sql(Leases::Book));

/// SQLite's hand-out (`assign_next_item`), on inline reader `conn` in one read transaction, the
/// leases in `book`: the same choice as `hand_out`'s (a held item the page does not have, a
/// gold item when drawn, the order's first open item, the item skipped longest ago), each
/// candidate leased by `LeaseBook::claim`, which checks its capacity again under the book's
/// lock; a candidate taken meanwhile is passed over (the scan, run again, sees its new lease).
/// Answers what `hand_out` does, and whether the labeler's count of the day is to be stored
/// (`recount_since`, which a reader cannot write).
#[allow(clippy::too_many_arguments)]
fn hand_out_from_book(
    conn: &mut rusqlite::Connection,
    book: &super::lease_book::LeaseBook,
    pid: i64,
    labeler: Labeler,
    now: i64,
    since: i64,
    exclude: &[i64],
) -> AppResult<(HandedOut, bool)> {
    // Before the snapshot's first read: a commit the book saw before this is in the snapshot.
    let ticket = book.begin_read();
    conn.execute_batch("BEGIN")?;
    let mut s = super::statements::RawSqlite(conn);
    let handed = futures::FutureExt::now_or_never(hand_out_in_book(&mut s, book, ticket.visible, pid, labeler, now, since, exclude))
        .expect("statements on SQLite's raw handle never wait");
    // A failed end leaves the connection in its transaction, and `InlineReaders::with` then
    // does not keep it.
    let ended = conn.execute_batch(if handed.is_ok() { "COMMIT" } else { "ROLLBACK" });
    let handed = handed?;
    ended?;
    Ok(handed)
}

/// `hand_out_from_book`'s statements and claims (`visible`: its `ReadTicket`'s).
#[allow(clippy::too_many_arguments)]
async fn hand_out_in_book<S: Statements>(
    s: &mut S,
    book: &super::lease_book::LeaseBook,
    visible: u64,
    pid: i64,
    labeler: Labeler,
    now: i64,
    since: i64,
    exclude: &[i64],
) -> AppResult<(HandedOut, bool)> {
    use super::lease_book::Claim;
    let user_id = labeler.user_id;
    let args = vec![user_id.into(), pid.into(), now.into(), (labeler.any_project as i64).into()];
    let settings = s.first_row(&BOOK_SETTINGS_SQL, args).await?.ok_or_else(|| AppError::not_found(format!("no project {pid}")))?;
    let settings = StreamSettings::from_row(&settings)?;
    let expires = now + settings.lease_seconds * 1000;
    let claim = |item_id: i64, capacity: Option<(i64, i64, u64)>| {
        book.claim(Claim { project_id: pid, item_id, user_id, now, expires_at: expires, capacity, max_held: MAX_LEASES_PER_LABELER as usize })
    };
    let held = book.held(pid, user_id, now);
    // A held item is leased again (its lease runs from now), unless the labeler answered it
    // meanwhile.
    let mut chosen = held.iter().copied().filter(|id| !exclude.contains(id)).find(|id| claim(*id, None));
    if chosen.is_none() && settings.gold_rate > 0.0 {
        if let Some(gold) = gold_item(s, Leases::Book, pid, user_id, now, &settings, held.len() as i64).await? {
            chosen = claim(gold, None).then_some(gold);
        }
    }
    let steps = hand_out_steps(&settings.assignment_order, settings.uncertainty_order != 0);
    'steps: for step in steps.iter().filter(|_| chosen.is_none()) {
        for _ in 0..MAX_CLAIM_ATTEMPTS {
            let args = vec![pid.into(), user_id.into(), now.into(), settings.visible_max_item_id.into(), settings.overlap.into(), (visible as i64).into()];
            let Some(found) = s.first_row(&step.book, args).await? else { break };
            let id = found.i64("id")?;
            if claim(id, Some((found.i64("label_count")?, found.i64("overlap")?, visible))) {
                chosen = Some(id);
                break 'steps;
            }
        }
    }
    let Some(item_id) = chosen else {
        let progress = s.first_row(PROGRESS_SQL, vec![pid.into(), user_id.into(), since.into()]).await?;
        let recount = progress.as_ref().map(|r| needs_recount(r, since)).transpose()?.unwrap_or(false);
        let progress = progress.map(|r| progress_counts(&r)).transpose()?.unwrap_or((0, 0, 0, 0));
        return Ok(((None, None, progress, expires), recount));
    };
    let row = s
        .first_row(&HANDED_OUT_SQL, vec![pid.into(), user_id.into(), since.into(), item_id.into()])
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("item {item_id} was handed out but cannot be read")))?;
    let item = ItemRow::from_row(&row)?;
    let prelabel = super::prelabels::ShownPrelabel::from_row(&row)?.into_row();
    Ok(((Some(item), prelabel, progress_counts(&row)?, expires), needs_recount(&row, since)?))
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
    fn from_row(r: &Row) -> AppResult<AnnotationRow> {
        Ok(AnnotationRow {
            id: r.i64("id")?,
            item_id: r.i64("item_id")?,
            user_id: r.i64("user_id")?,
            labels: r.string("labels")?,
            time_ms: r.i64("time_ms")?,
            created_at: r.i64("created_at")?,
            updated_at: r.i64("updated_at")?,
        })
    }

    fn into_annotation(self) -> Annotation {
        Annotation {
            id: self.id,
            item_id: self.item_id,
            user_id: self.user_id,
            labels: serde_json::from_str(&self.labels).unwrap_or_default(),
            time_ms: self.time_ms,
            created_at: self.created_at,
            updated_at: self.updated_at,
            gold_answer: None,
        }
    }
}

const ANNOTATION_COLUMNS: &str = "id, item_id, user_id, labels, time_ms, created_at, updated_at";

/// What a submission on a gold item showed.
#[derive(Clone, Debug, PartialEq)]
pub struct GoldOutcome {
    /// The gold answer, in the project's label order.
    pub gold: Vec<String>,
    /// The labeler's answer differs from it.
    pub missed: bool,
    /// The project shows the right answer after a miss (`projects.gold_training`).
    pub training: bool,
    /// This request created the annotation or changed its labels (false for a retry, or for
    /// a resubmission of the same labels).
    pub changed: bool,
}

/// The result of `submit_annotation`.
pub struct Submitted {
    pub annotation: Annotation,
    /// Whether this request wrote the annotation (false for a retry of the same client id).
    pub new: bool,
    /// Set when the item is a gold item.
    pub gold: Option<GoldOutcome>,
    /// Whether the item had pre-labels when this request wrote the annotation: only then has
    /// `store::prelabels::record_outcomes` anything to record (false for a retry).
    pub prelabeled: bool,
}

impl Submitted {
    /// The right answer to show the labeler: only after a miss, and only in training mode.
    pub fn training_answer(&self) -> Option<Vec<String>> {
        self.gold.as_ref().filter(|g| g.missed && g.training).map(|g| g.gold.clone())
    }

    /// The gold miss this request recorded (a created or changed answer that differs from the
    /// gold answer), for the review queue of gold misses.
    pub fn recorded_gold_miss(&self) -> Option<&GoldOutcome> {
        self.gold.as_ref().filter(|g| g.missed && g.changed)
    }
}

/// Decodes `items.gold` (written only by imports and review from checked label lists).
fn parse_gold(gold: Option<&str>) -> Option<Vec<String>> {
    gold.map(|g| serde_json::from_str(g).unwrap_or_default())
}

/// Records (or changes) the labeler's annotation of an item. A retried request with the same
/// client id returns the first result; the same client id on another item is refused (409),
/// since answering 200 would silently drop the new label. A new annotation is refused when
/// the item was never handed to the labeler (403) or has no capacity left for them (409); a
/// gold item has no capacity limit and its answers are not counted towards k.
pub async fn submit_annotation(db: &Db, project_id: i64, labeler: Labeler, s: &Submission<'_>) -> AppResult<Submitted> {
    let now = now_ms();
    // Owned: on SQLite the body runs on the writer task (`on_group_statements!`).
    let (item_id, time_ms) = (s.item_id, s.time_ms);
    let (client_id, labels) = (s.client_id.to_string(), s.labels.to_vec());
    let book = db.lease_book().cloned();
    Ok(on_group_statements!(db, st, _is_pg, job = Submission, pg_first = pg_project_lock(project_id) => {
        submit(&mut st, book.as_deref(), project_id, labeler, item_id, time_ms, &client_id, &labels, now).await?
    }))
}

/// `submit_annotation`'s statements, the same on both backends (`store::statements`); on
/// SQLite the leases are `book`'s (`store::lease_book`), on PostgreSQL (`None`) the table's.
#[allow(clippy::too_many_arguments)]
async fn submit<S: Statements>(
    s: &mut S,
    book: Option<&super::lease_book::LeaseBook>,
    pid: i64,
    labeler: Labeler,
    item_id: i64,
    time_ms: i64,
    client_id: &str,
    submitted_labels: &[String],
    now: i64,
) -> AppResult<Submitted> {
    // On SQLite everything the submission reads before it writes comes in one statement
    // (`SUBMISSION_CONTEXT_SQL`): nothing can run between its reads on the single writer.
    // PostgreSQL reads the retry key, the project and the item under its row lock in one
    // (`PG_SUBMISSION_HEAD_SQL`), then the capacity in another, below.
    let (user_id, any_project) = (labeler.user_id, labeler.any_project as i64);
    let is_pg = book.is_none();
    let context = if is_pg {
        let args = vec![pid.into(), user_id.into(), client_id.into(), item_id.into(), any_project.into()];
        s.first_row(&PG_SUBMISSION_HEAD_SQL, args).await?
    } else {
        let graced = now - LEASE_GRACE_MS;
        let args = vec![pid.into(), user_id.into(), item_id.into(), graced.into(), client_id.into(), now.into(), any_project.into()];
        s.first_row(&SUBMISSION_CONTEXT_SQL, args).await?
    };
    let context = context.ok_or_else(|| AppError::not_found(format!("no project {pid}")))?;
    let previous = context.opt_i64("previous_annotation")?.zip(context.opt_i64("previous_item")?);
    if let Some((annotation_id, first_item)) = previous {
        return retried_submission(s, client_id, item_id, annotation_id, first_item).await;
    }
    let project = ProjectRow::from_row(&context)?;
    let item = match context.opt_i64("item_id")? {
        Some(_) => Some((context.opt_i64("label_count")?.unwrap_or(0), context.opt_i64("item_overlap")?, context.opt_string("gold")?)),
        None => None,
    };
    let slots = if is_pg {
        // The head waited for the item's row lock, which orders this submission after any
        // hand-out or submission of the same item in flight; this is a new statement, so it
        // sees what those committed: the labeler's annotation of the item, if any, and what a
        // new one needs checked.
        let is_gold = item.as_ref().is_some_and(|(_, _, gold)| gold.is_some()) as i64;
        let slots = s
            .first_row(&SLOTS_SQL, vec![item_id.into(), user_id.into(), (now - LEASE_GRACE_MS).into(), now.into(), is_gold.into()])
            .await?
            .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the slots statement gave no row")))?;
        Slots::from_row(&slots)?
    } else {
        Slots::from_row(&context)?
    };
    let project: Project = project.into_summary().project;
    let labels = crate::projects::validate_submitted_labels(&project, submitted_labels)?;
    let labels_json = serde_json::to_string(&labels).map_err(anyhow::Error::from)?;
    let Some((label_count, item_overlap, gold_json)) = item else {
        return Err(AppError::not_found(format!("no item {item_id} in this project")));
    };
    // The item's own overlap (a dev-set campaign's) wins over the project's.
    let overlap = item_overlap.unwrap_or(project.overlap);
    let gold = parse_gold(gold_json.as_deref());
    let Slots { existing_id, existing_labels, handed_out, others_leases, other_answers } = slots;
    let existing = existing_id.zip(existing_labels);
    // The audit entry of this submission, appended below in this transaction.
    let audit = |action, before: Option<&str>| Entry {
        project_id: Some(pid),
        item_id: Some(item_id),
        user_id: Some(user_id),
        before: before.map(|b| json!({"labels": serde_json::from_str::<Value>(b).unwrap_or(Value::Null)})),
        after: Some(json!({"labels": labels})),
        ..Entry::new(now, Some(user_id), action)
    };
    // The writes after the annotation's own, whose results nobody reads: sent together
    // (`store::batch`), in this order, at the end.
    let mut tail = Batch::new();
    let (row, changed) = match existing {
        Some((id, old_labels)) => {
            // A changed answer ends the labeler's lease of the item, if they held one (the
            // book's; PostgreSQL deletes the table's row in the tail).
            if let Some(book) = book {
                book.release(item_id, user_id);
            }
            let row = s
                .first_row(
                    &format!(
                        "UPDATE annotations SET labels = $1, time_ms = time_ms + $2, updated_at = $3
                         WHERE id = $4 RETURNING {ANNOTATION_COLUMNS}"
                    ),
                    vec![labels_json.clone().into(), time_ms.into(), now.into(), id.into()],
                )
                .await?;
            let changed = old_labels != labels_json;
            if changed {
                audit(AuditAction::AnnotationChanged, Some(&old_labels)).push_to(&mut tail);
            }
            (row, changed)
        }
        None => {
            let may_answer = |handed_out: i64, others_leases: i64| {
                if handed_out == 0 {
                    return Err(AppError::forbidden(format!(
                        "item {item_id} was not handed to you (or its lease ended over an hour ago): take items with POST /api/projects/{pid}/next"
                    )));
                }
                // Every labeler may answer a gold item: it has no capacity to check.
                if gold.is_none() && label_count + others_leases >= overlap {
                    return Err(AppError::conflict(
                        "this item already has all the labels it needs (or is reserved by other labelers); take the next one",
                    ));
                }
                Ok(())
            };
            // On SQLite the leases are the book's: checked, and the labeler's turned into this
            // answer, under its lock, so no hand-out leases the slot in between.
            match book {
                Some(book) => book.answer(pid, item_id, user_id, (now, now - LEASE_GRACE_MS), |own_lease, others| {
                    may_answer(handed_out + own_lease as i64, others)
                })?,
                None => may_answer(handed_out, others_leases)?,
            }
            let row = s
                .first_row(
                    &format!(
                        "INSERT INTO annotations (project_id, item_id, user_id, labels, time_ms, created_at, updated_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $6) RETURNING {ANNOTATION_COLUMNS}"
                    ),
                    vec![pid.into(), item_id.into(), user_id.into(), labels_json.clone().into(), time_ms.into(), now.into()],
                )
                .await;
            let row = match (row, book) {
                (Err(e), Some(book)) => {
                    book.unanswer(item_id, user_id);
                    return Err(e);
                }
                (row, _) => row?,
            };
            // A gold item's answers never count towards k nor the done count.
            if gold.is_none() {
                let completes = label_count + 1 >= overlap;
                tail.push(
                    "UPDATE items SET label_count = label_count + 1, complete = $1 WHERE id = $2",
                    vec![(completes as i64).into(), item_id.into()],
                );
                if completes {
                    tail.push(ADD_DONE_SQL, vec![pid.into(), item_id.rem_euclid(DONE_SHARDS).into()]);
                }
            }
            audit(AuditAction::AnnotationCreated, None).push_to(&mut tail);
            (row, true)
        }
    };
    let row = AnnotationRow::from_row(&row.ok_or_else(|| AppError::Internal(anyhow::anyhow!("the annotation's write returned no row")))?)?;
    let gold = gold.map(|g| GoldOutcome {
        missed: !crate::stream::matches_gold(&labels, &g),
        gold: g,
        training: project.quality.gold_training,
        changed,
    });
    // Review queues (`store::review`).
    super::review::review_after_annotation(&mut tail, pid, item_id, gold_json.as_deref(), &other_answers, user_id, &labels, now);
    if is_pg {
        tail.push("DELETE FROM leases WHERE item_id = $1 AND user_id = $2", vec![item_id.into(), user_id.into()]);
    }
    tail.push("DELETE FROM skips WHERE item_id = $1 AND user_id = $2", vec![item_id.into(), user_id.into()]);
    tail.push(
        "INSERT INTO submissions (user_id, client_id, annotation_id, created_at) VALUES ($1, $2, $3, $4)",
        vec![user_id.into(), client_id.into(), row.id.into(), now.into()],
    );
    s.run(tail).await?;
    let prelabeled = context.i64("prelabeled")? != 0;
    Ok(Submitted { annotation: row.into_annotation(), new: true, gold, prelabeled })
}

/// A retry of a submission (its client id was used before): the first answer's response, the
/// right answer included; a client id reused for another item is a 409.
async fn retried_submission<S: Statements>(
    s: &mut S,
    client_id: &str,
    item_id: i64,
    annotation_id: i64,
    first_item: i64,
) -> AppResult<Submitted> {
    if first_item != item_id {
        return Err(AppError::conflict(format!(
            "client_id {client_id:?} was already used for item {first_item}; send a new client_id with every new submission"
        )));
    }
    let row = s
        .first_row(&format!("SELECT {ANNOTATION_COLUMNS} FROM annotations WHERE id = $1"), vec![annotation_id.into()])
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("annotation {annotation_id} of a submission is gone")))?;
    let row = AnnotationRow::from_row(&row)?;
    let gold = s
        .first_row(
            "SELECT i.gold, p.gold_training FROM items i JOIN projects p ON p.id = i.project_id WHERE i.id = $1",
            vec![first_item.into()],
        )
        .await?;
    let gold = match gold {
        Some(r) => parse_gold(r.opt_string("gold")?.as_deref()).map(|g| (g, r.i64("gold_training"))),
        None => None,
    };
    let gold = match gold {
        Some((g, training)) => {
            let labels: Vec<String> = serde_json::from_str(&row.labels).unwrap_or_default();
            Some(GoldOutcome { missed: !crate::stream::matches_gold(&labels, &g), gold: g, training: training? != 0, changed: false })
        }
        None => None,
    };
    Ok(Submitted { annotation: row.into_annotation(), new: false, gold, prelabeled: false })
}

/// Releases the labeler's lease and remembers the skip, so the item goes to others first.
pub async fn skip_item(db: &Db, project_id: i64, user_id: i64, item_id: i64) -> AppResult<()> {
    let now = now_ms();
    let book = db.lease_book().cloned();
    on_group_statements!(db, s, _is_pg, job = Skip => {
        let exists = s.first_i64("SELECT id FROM items WHERE id = $1 AND project_id = $2", vec![item_id.into(), project_id.into()]).await?;
        if exists.is_none() {
            return Err(AppError::not_found(format!("no item {item_id} in this project")));
        }
        let mut b = Batch::one(
            "INSERT INTO skips (item_id, user_id, project_id, skipped_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (item_id, user_id) DO UPDATE SET skipped_at = $4",
            vec![item_id.into(), user_id.into(), project_id.into(), now.into()],
        );
        match &book {
            // The skip lets the item go to others first: its slot is free at once.
            Some(book) => book.release(item_id, user_id),
            None => b.push("DELETE FROM leases WHERE item_id = $1 AND user_id = $2", vec![item_id.into(), user_id.into()]),
        }
        s.run(b).await?
    });
    Ok(())
}

/// The labeler's previous submission ($1: project, $2: labeler, $3: the annotation `before`,
/// $4: `i64::MAX`): their annotation made just before it, in (created_at, id) order, or their
/// latest when there is no such annotation. That order is the labeler's own index
/// (`annotations_user_time`, read backwards from the point), the only one of their annotations
/// in a project (migration 0025); ids and creation times move together, and the id breaks
/// ties within one millisecond.
fn previous_submission_sql() -> String {
    format!(
        "SELECT {ANNOTATION_COLUMNS} FROM annotations
         WHERE project_id = $1 AND user_id = $2
           AND (created_at, id) < (COALESCE((SELECT b.created_at FROM annotations b WHERE b.id = $3), $4), $3)
         ORDER BY created_at DESC, id DESC LIMIT 1"
    )
}

/// The labeler's submission made just before annotation `before` (or their latest).
pub async fn previous_submission(
    db: &Db,
    project_id: i64,
    user_id: i64,
    before: Option<i64>,
) -> AppResult<Option<(ItemRow, Annotation)>> {
    let row = on_read!(db, pool => sqlx::query_as::<_, AnnotationRow>(&previous_submission_sql())
    .bind(project_id)
    .bind(user_id)
    .bind(before.unwrap_or(i64::MAX))
    .bind(i64::MAX)
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

/// Shards of a project's done count (migration 0019). A completing submission adds 1 to the
/// shard of its item (`item_id mod DONE_SHARDS`) rather than to the project's row: on
/// PostgreSQL, where submissions of one project run concurrently (row claiming), one row took
/// every completing submission's lock until its commit, and they queued on it
/// (docs/bench.md, session 8). Items are handed out in a random order, so concurrent
/// submissions fall on different shards.
pub const DONE_SHARDS: i64 = 64;

/// A submission's view of its item and labeler (`item`, `user`, `graced` (now less the lease
/// grace) and `now`: the SQL of their values, placeholders of the caller's statement): the
/// labeler's annotation of it (id, labels; NULL when none), whether the item was handed to them
/// (a lease within the grace, or a skip), and the unexpired leases of other labelers on it (its
/// capacity), and the other labelers' answers of it (`other_answers`: a JSON array of their
/// labels' JSON texts, by `answers_agg`, PostgreSQL's `json_agg` or SQLite's
/// `json_group_array`; NULL or empty when none), which the review hook compares
/// (`store::review::review_after_annotation`). On PostgreSQL it runs after the item's row
/// lock, which every submission of the item holds while it writes; on SQLite it is part of
/// `SUBMISSION_CONTEXT_SQL`. `gold` is the SQL of a condition that holds when the item is
/// gold: its other answers are not read then (the hook never compares them, and every
/// labeler answers a gold item, so they are as many as the project has labelers).
///
/// From the lease book (SQLite, `Leases::Book`) the leases are not in SQL: `handed_out`
/// counts the skip alone and `others_leases` is 0, and `submit` adds the book's
/// (`LeaseBook::answer`).
fn slots_sql(item: &str, user: &str, graced: &str, now: &str, answers_agg: &str, gold: &str, leases: Leases) -> String {
    let (own_lease, others_leases) = match leases {
        Leases::Table => (
            format!("(SELECT COUNT(*) FROM leases WHERE item_id = {item} AND user_id = {user} AND expires_at > {graced}) + "),
            format!("(SELECT COUNT(*) FROM leases WHERE item_id = {item} AND user_id <> {user} AND expires_at > {now})"),
        ),
        Leases::Book => (String::new(), "0".to_string()),
    };
    format!(
        "SELECT a.id AS existing_id, a.labels AS existing_labels,
            CASE WHEN NOT ({gold}) THEN
              (SELECT CAST({answers_agg}(o.labels) AS TEXT) FROM annotations o WHERE o.item_id = {item} AND o.user_id <> {user})
            END AS other_answers,
            {own_lease}(SELECT COUNT(*) FROM skips WHERE item_id = {item} AND user_id = {user}) AS handed_out,
            {others_leases} AS others_leases
         FROM (SELECT 1 AS one) o LEFT JOIN annotations a ON a.item_id = {item} AND a.user_id = {user}"
    )
}

/// `slots_sql` as a statement of its own ($1: item, $2: labeler, $3: graced, $4: now, $5: 1
/// when the item is gold).
static SLOTS_SQL: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| slots_sql("$1", "$2", "$3", "$4", "json_agg", "$5 <> 0", Leases::Table));

/// `slots_sql`'s row.
struct Slots {
    existing_id: Option<i64>,
    existing_labels: Option<String>,
    handed_out: i64,
    others_leases: i64,
    /// The other labelers' answers of the item (their label lists).
    other_answers: Vec<Vec<String>>,
}

impl Slots {
    fn from_row(r: &Row) -> AppResult<Slots> {
        let texts: Vec<String> = match r.opt_string("other_answers")? {
            Some(json) => serde_json::from_str(&json).map_err(anyhow::Error::from)?,
            None => Vec::new(),
        };
        Ok(Slots {
            existing_id: r.opt_i64("existing_id")?,
            existing_labels: r.opt_string("existing_labels")?,
            handed_out: r.i64("handed_out")?,
            others_leases: r.i64("others_leases")?,
            other_answers: texts.iter().filter_map(|t| crate::review::parse_labels(Some(t))).collect(),
        })
    }
}

/// PostgreSQL: what a submission reads first ($1: project, $2: user, $3: client id, $4:
/// item, $5: 1 when the user may see every project): the project (`PROJECT_COLUMNS`), the
/// annotation and item of an earlier submission with the same client id
/// (`previous_annotation`, `previous_item`; NULL when none), the item's capacity columns
/// under its row lock (waited for, not skipped: `item_id` NULL when the project has no such
/// item; a locked row is read in its newest committed version, the rest as of the
/// statement's start) and whether the item has pre-labels (`prelabeled_sql`). No row when
/// the project is gone or the user may not see it.
static PG_SUBMISSION_HEAD_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT p.*, prev.annotation_id AS previous_annotation, prev.item_id AS previous_item,
            i.id AS item_id, i.label_count, i.overlap AS item_overlap, i.gold,
            {prelabeled} AS prelabeled
         FROM (SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1 AND {visible}) p
         LEFT JOIN (SELECT id, label_count, overlap, gold FROM items WHERE id = $4 AND project_id = $1
                    FOR NO KEY UPDATE) i ON TRUE
         LEFT JOIN (SELECT s.annotation_id, a.item_id FROM submissions s JOIN annotations a ON a.id = s.annotation_id
                    WHERE s.user_id = $2 AND s.client_id = $3) prev ON TRUE",
        prelabeled = prelabeled_sql("$4"),
        visible = super::projects::visible_to_sql("projects.id", "$2", "$5"),
    )
});

/// Whether item `item` (the SQL of its id) has pre-labels, as 1 or 0 on both backends: a
/// submission reads it so that the answer's pre-label outcomes are looked up only when there
/// are some (`store::prelabels::record_outcomes`, after the commit).
fn prelabeled_sql(item: &str) -> String {
    format!("CASE WHEN EXISTS (SELECT 1 FROM prelabels x WHERE x.item_id = {item}) THEN 1 ELSE 0 END")
}

/// SQLite: what a submission reads before it writes, in one statement ($1: project, $2:
/// labeler, $3: item, $4: now less the lease grace, $5: client id, $6: now, $7: 1 when the
/// labeler may see every project): the first submission with this client id (annotation,
/// item), the project's row (no row when the project is gone or the labeler may not see it),
/// the item's capacity columns (`item_id` NULL: no such item in the project), `slots_sql`'s
/// columns and whether the item has pre-labels (`prelabeled_sql`). On SQLite nothing runs
/// between these reads (the single writer), so one statement reads what the five did.
static SUBMISSION_CONTEXT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT p.*,
            (SELECT s.annotation_id FROM submissions s WHERE s.user_id = $2 AND s.client_id = $5) AS previous_annotation,
            (SELECT a.item_id FROM submissions s JOIN annotations a ON a.id = s.annotation_id
              WHERE s.user_id = $2 AND s.client_id = $5) AS previous_item,
            i.id AS item_id, i.label_count, i.overlap AS item_overlap, i.gold,
            sl.existing_id, sl.existing_labels, sl.handed_out, sl.others_leases, sl.other_answers,
            {prelabeled} AS prelabeled
         FROM (SELECT {PROJECT_COLUMNS} FROM projects WHERE id = $1 AND {visible}) p
         LEFT JOIN items i ON i.id = $3 AND i.project_id = p.id
         CROSS JOIN ({slots}) sl",
        // `sl` cannot see `i`: whether the item is gold is its own probe of the item's key.
        slots = slots_sql("$3", "$2", "$4", "$6", "json_group_array", "(SELECT gold FROM items WHERE id = $3) IS NOT NULL", Leases::Book),
        prelabeled = prelabeled_sql("$3"),
        visible = super::projects::visible_to_sql("projects.id", "$2", "$7"),
    )
});

/// Adds 1 to a shard of a project's done count ($1: project, $2: shard).
const ADD_DONE_SQL: &str = "INSERT INTO project_done_shards (project_id, shard, done) VALUES ($1, $2, 1)
     ON CONFLICT (project_id, shard) DO UPDATE SET done = project_done_shards.done + 1";

/// (mine since `since`, mine in all, done, total) for the labeler in the project; `total`
/// leaves gold items out.
/// The caller's progress ($1: project, $2: user, $3: `since`): theirs today and in total, and
/// the project's done and total counts. Gold items are outside the overlap flow: not part of
/// the total, nor of the done count (an item done before a lead marked it gold is still
/// `complete` and in `done_count`); counted over the small gold index, as
/// `store::projects::list_projects` counts them. `+i.complete`: without the plus SQLite took
/// `items_open (project_id, complete, id)` (before migration 0023) for the gold count and read
/// the row of every done item of the project, each hand-out, more as the project got done
/// (session 9's profile); the plus keeps it off the done items' index `items_done` too.
/// The shards' sum reads their covering index (migration 0020). The caller's own counts come
/// from their row of `labeler_totals` (migration 0021, kept by triggers): counting their
/// history took milliseconds per hand-out at 20,000 annotations. Its `since_count` answers
/// for the `since` it was counted from (`counted_since`); for another `since` (a new day) the
/// day's annotations are counted here, and a hand-out stores that count (`recount_since`).
const PROGRESS_SQL: &str = concat!(
    "SELECT mine.today AS mine_today, mine.total AS mine_total,
        ",
    super::projects::done_count_of!("p.done_count", "p.id"),
    "
        - (SELECT COUNT(*) FROM items i
         WHERE i.project_id = p.id AND i.gold IS NOT NULL AND +i.complete = 1 AND i.id <= p.visible_max_item_id) AS done,
        p.item_count - (SELECT COUNT(*) FROM items i
         WHERE i.project_id = p.id AND i.gold IS NOT NULL AND i.id <= p.visible_max_item_id) AS total,
        mine.counted_since
 FROM projects p,
      (SELECT CASE WHEN t.since = $3 THEN t.since_count
                   ELSE (SELECT COUNT(*) FROM annotations WHERE project_id = $1 AND user_id = $2 AND created_at >= $3) END AS today,
              COALESCE(t.annotations, 0) AS total, t.since AS counted_since
         FROM (SELECT 1 AS one) o LEFT JOIN labeler_totals t ON t.project_id = $1 AND t.user_id = $2) mine
 WHERE p.id = $1"
);

/// What a hand-out answers when it gave an item ($1: project, $2: user, $3: `since`, $4: the
/// item): the progress (`PROGRESS_SQL`), the item (`ITEM_COLUMNS`) and the pre-label shown
/// beside it (`prelabels::SHOWN_PRELABEL_SQL`, columns prefixed `pl_`; NULL when none).
static HANDED_OUT_SQL: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT pr.mine_today, pr.mine_total, pr.counted_since, pr.done, pr.total, {ITEM_COLUMNS},
            pl.source_id AS pl_source_id, pl.kind AS pl_kind, pl.name AS pl_name,
            pl.version AS pl_version, pl.labels AS pl_labels, pl.score AS pl_score
         FROM ({progress}) pr
         CROSS JOIN {ITEM_FROM}
         LEFT JOIN ({prelabel}) pl ON 1 = 1
         WHERE i.id = $4",
        progress = PROGRESS_SQL,
        prelabel = super::prelabels::shown_prelabel_sql("$4", "$1"),
    )
});

/// `PROGRESS_SQL`'s columns (also `HANDED_OUT_SQL`'s).
fn progress_counts(r: &Row) -> AppResult<ProgressCounts> {
    Ok((r.i64("mine_today")?, r.i64("mine_total")?, r.i64("done")?, r.i64("total")?))
}

/// (mine today, mine in total, done, total): see `PROGRESS_SQL`.
pub type ProgressCounts = (i64, i64, i64, i64);

pub async fn progress(db: &Db, project_id: i64, user_id: i64, since: i64) -> AppResult<ProgressCounts> {
    Ok(on_read!(db, pool => sqlx::query_as(PROGRESS_SQL)
        .bind(project_id)
        .bind(user_id)
        .bind(since)
        .fetch_optional(pool)
        .await?)
    .unwrap_or((0, 0, 0, 0)))
}

/// Deletes leases that ended more than the grace ago (they already count for nothing towards
/// capacity; this keeps the table, or on SQLite the lease book, small).
pub async fn delete_expired_leases(db: &Db) -> AppResult<u64> {
    let graced = now_ms() - LEASE_GRACE_MS;
    if let Some(leases) = db.lease_book() {
        return Ok(leases.forget_ended(graced));
    }
    let done = on_write!(db, pool => sqlx::query("DELETE FROM leases WHERE expires_at <= $1")
        .bind(graced)
        .execute(pool)
        .await?
        .rows_affected());
    Ok(done)
}

/// SQLite, at a graceful shutdown: writes the lease book's leases to the leases table, where
/// the next start finds them (`restore_leases`), so that labelers keep the items on their
/// screens across a restart (a lease of an item or labeler deleted meanwhile is left out: its
/// row could not refer to them). Nothing to do on PostgreSQL, whose leases are the table's.
pub async fn keep_leases(db: &Db) -> AppResult<usize> {
    let Some(leases) = db.lease_book() else { return Ok(0) };
    let rows = leases.leases();
    let n = rows.len();
    on_write!(db, pool => {
        let mut tx = pool.begin().await?;
        sqlx::query(&format!("PRAGMA user_version = {LEASES_KEPT}")).execute(&mut *tx).await?;
        for r in rows {
            sqlx::query(
                "INSERT INTO leases (item_id, user_id, project_id, leased_at, expires_at)
                 SELECT $1, $2, $3, $4, $5
                 WHERE EXISTS (SELECT 1 FROM items WHERE id = $1) AND EXISTS (SELECT 1 FROM users WHERE id = $2)
                 ON CONFLICT (item_id, user_id) DO UPDATE SET leased_at = $4, expires_at = $5",
            )
            .bind(r.item_id)
            .bind(r.user_id)
            .bind(r.project_id)
            .bind(r.leased_at)
            .bind(r.expires_at)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
    });
    Ok(n)
}

/// SQLite's `PRAGMA user_version` (which nothing else uses) says where the labeling leases
/// are: 0, in the leases table (a new database, or one a version before the lease book last
/// served); `LEASES_IN_MEMORY`, in a server's memory (it runs, or it died without keeping
/// them); `LEASES_KEPT`, in the table, kept by a graceful shutdown.
const LEASES_IN_MEMORY: i64 = 2;
const LEASES_KEPT: i64 = 1;

/// SQLite, when the server starts: the leases a graceful shutdown kept (`keep_leases`) go into
/// the lease book, and out of the table, which from then on is stale (leases live in the
/// book while the server runs). Leases of items or labelers deleted meanwhile are left out.
/// When the last server died with its leases in memory, answers need no lease for the grace
/// (`LeaseBook::leases_lost`).
pub async fn restore_leases(db: &Db) -> AppResult<usize> {
    let Some(leases) = db.lease_book() else { return Ok(0) };
    let now = now_ms();
    let graced = now - LEASE_GRACE_MS;
    let rows = on_write!(db, pool => {
        let mut tx = pool.begin().await?;
        let kept: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&mut *tx).await?;
        if kept == LEASES_IN_MEMORY {
            tracing::warn!("the last server stopped without keeping its leases: for an hour, answers to items not handed out are taken when the item has room");
            leases.leases_lost(now + LEASE_GRACE_MS);
        }
        sqlx::query(&format!("PRAGMA user_version = {LEASES_IN_MEMORY}")).execute(&mut *tx).await?;
        let rows: Vec<(i64, i64, i64, i64, i64)> = sqlx::query_as(
            "SELECT l.item_id, l.user_id, l.project_id, l.leased_at, l.expires_at FROM leases l
             JOIN items i ON i.id = l.item_id JOIN users u ON u.id = l.user_id WHERE l.expires_at > $1",
        )
        .bind(graced)
        .fetch_all(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM leases").execute(&mut *tx).await?;
        tx.commit().await?;
        rows
    });
    let rows: Vec<super::lease_book::LeaseRow> = rows
        .into_iter()
        .map(|(item_id, user_id, project_id, leased_at, expires_at)| super::lease_book::LeaseRow { item_id, user_id, project_id, leased_at, expires_at })
        .collect();
    leases.restore(&rows);
    Ok(rows.len())
}

/// Ids per statement of `set_campaign_members` (well under SQLite's bound-parameter limit).
const CAMPAIGN_CHUNK: usize = 500;

/// Puts items of a project into a campaign of the stream, or takes them out: their `priority`
/// (served first under the `priority` order, highest first) and their own `overlap` (labels
/// each needs; `None` gives them back the project's). This is how a dev-set campaign (issue 8)
/// raises its members and asks more labels of them. Their `complete` flags and the project's
/// done count follow the new overlap in the same transaction, under the assignment lock, so no
/// hand-out or submission sees the change half-made; an item whose new overlap is above its
/// labels returns to the stream. Gold items keep `complete = 0` (they are outside the overlap
/// flow). Every id must name an item of the project, else nothing changes (404). Returns the
/// number of items set.
pub async fn set_campaign_members(
    db: &Db,
    project_id: i64,
    item_ids: &[i64],
    priority: i64,
    overlap: Option<i64>,
) -> AppResult<u64> {
    if let Some(k) = overlap {
        if !(1..=crate::projects::MAX_OVERLAP).contains(&k) {
            return Err(AppError::bad_request(format!(
                "overlap must be between 1 and {}",
                crate::projects::MAX_OVERLAP
            )));
        }
    }
    let mut ids = item_ids.to_vec();
    ids.sort_unstable();
    ids.dedup();
    let pid = project_id;
    let set = on_write!(db, pool, is_pg => {
        let mut tx = BeginWrite::begin_write(pool).await?;
        if is_pg {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(pid).execute(&mut *tx).await?;
        }
        let project_overlap: Option<i64> = sqlx::query_scalar("SELECT overlap FROM projects WHERE id = $1")
            .bind(pid)
            .fetch_optional(&mut *tx)
            .await?;
        let project_overlap = project_overlap.ok_or_else(|| AppError::not_found(format!("no project {pid}")))?;
        let mut set = 0u64;
        let mut done_delta = 0i64;
        for chunk in ids.chunks(CAMPAIGN_CHUNK) {
            // The ids as placeholders $from, $from+1, ...
            let list = |from: usize| (0..chunk.len()).map(|i| format!("${}", i + from)).collect::<Vec<_>>().join(",");
            let count_done = format!(
                "SELECT COUNT(*) FROM items WHERE project_id = $1 AND complete = 1 AND id IN ({})",
                list(2)
            );
            let q = sqlx::query_scalar::<_, i64>(&count_done).bind(pid);
            let before: i64 = chunk.iter().fold(q, |q, id| q.bind(id)).fetch_one(&mut *tx).await?;
            // $1 project, $2 priority, $3 own overlap, $4 project overlap, then the ids.
            let update = format!(
                "UPDATE items SET priority = $2, overlap = $3,
                   complete = CASE WHEN gold IS NULL AND label_count >= COALESCE($3, $4) THEN 1 ELSE 0 END
                 WHERE project_id = $1 AND id IN ({})",
                list(5)
            );
            let mut q = sqlx::query(&update).bind(pid).bind(priority).bind(overlap).bind(project_overlap);
            q = chunk.iter().fold(q, |q, id| q.bind(id));
            let changed = q.execute(&mut *tx).await?.rows_affected();
            if changed != chunk.len() as u64 {
                return Err(AppError::not_found(format!(
                    "{} of the {} items are not items of project {pid}; nothing was changed",
                    chunk.len() as u64 - changed,
                    chunk.len()
                )));
            }
            let q = sqlx::query_scalar::<_, i64>(&count_done).bind(pid);
            let after: i64 = chunk.iter().fold(q, |q, id| q.bind(id)).fetch_one(&mut *tx).await?;
            done_delta += after - before;
            set += changed;
        }
        if done_delta != 0 {
            sqlx::query("UPDATE projects SET done_count = done_count + $2 WHERE id = $1")
                .bind(pid)
                .bind(done_delta)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        set
    });
    Ok(set)
}

#[cfg(test)]
mod tests {
    //! The hand-out queries against SQLite's planner: each order walks an index in its order,
    //! so LIMIT 1 never sorts the project's items (no temporary B-tree). PostgreSQL's plans
    //! depend on table statistics; they were checked with EXPLAIN on 100,000 items (see the
    //! migration 0007 notes in docs/bench.md).
    use super::*;
    use crate::store::test_db::{plan, sqlite_with};

    /// `set_campaign_members` moves `complete` and the done count with the items' own overlap,
    /// and changes nothing when an id is not the project's.
    #[tokio::test]
    async fn campaign_members_get_their_own_overlap_and_priority() {
        let (_dir, db) = sqlite_with(&[
            "INSERT INTO projects (id, name, instructions, kind, labels, overlap, lease_seconds, created_at, item_count, done_count, visible_max_item_id)
             VALUES (1, 'p', '', 'single', '[]', 1, 600, 0, 4, 3, 4)",
            "INSERT INTO items (id, project_id, kind, text, meta, weight, content_hash, created_at, label_count, complete) VALUES
             (1, 1, 'text', 'a', '{}', 1, 'a', 0, 1, 1), (2, 1, 'text', 'b', '{}', 1, 'b', 0, 1, 1),
             (3, 1, 'text', 'c', '{}', 1, 'c', 0, 0, 0), (4, 1, 'text', 'd', '{}', 1, 'd', 0, 2, 1)",
        ])
        .await;
        let state = |db: Db| async move {
            let Db::Sqlite { read, .. } = &db else { unreachable!() };
            let items: Vec<(i64, i64, Option<i64>, i64)> =
                sqlx::query_as("SELECT id, priority, overlap, complete FROM items ORDER BY id").fetch_all(read).await.unwrap();
            let done: i64 = sqlx::query_scalar("SELECT done_count FROM projects WHERE id = 1").fetch_one(read).await.unwrap();
            (items, done)
        };

        assert_eq!(set_campaign_members(&db, 1, &[4, 1, 2, 1], 5, Some(2)).await.unwrap(), 3);
        let (items, done) = state(db.clone()).await;
        assert_eq!(items, vec![(1, 5, Some(2), 0), (2, 5, Some(2), 0), (3, 0, None, 0), (4, 5, Some(2), 1)]);
        assert_eq!(done, 1, "items 1 and 2 need a second label now");

        // Out of the campaign: the project's overlap again.
        assert_eq!(set_campaign_members(&db, 1, &[1], 0, None).await.unwrap(), 1);
        let (items, done) = state(db.clone()).await;
        assert_eq!(items[0], (1, 0, None, 1));
        assert_eq!(done, 2);

        let before = state(db.clone()).await;
        let e = set_campaign_members(&db, 1, &[2, 999], 9, Some(3)).await.unwrap_err();
        assert!(matches!(e, AppError::NotFound(_)), "{e:?}");
        assert!(set_campaign_members(&db, 1, &[2], 9, Some(0)).await.is_err());
        assert!(set_campaign_members(&db, 2, &[2], 9, Some(3)).await.is_err(), "no project 2");
        assert_eq!(state(db.clone()).await, before, "a refused change changes nothing");
    }

    /// `labeler_totals` (migration 0021) follows every annotation that comes or goes, and the
    /// progress every hand-out answers with reads it.
    #[tokio::test]
    async fn labeler_totals_follow_every_annotation() {
        let (_dir, db) = sqlite_with(&[
            "INSERT INTO users (id, username, password_hash, role, created_at) VALUES (1, 'a', '', 'labeler', 0), (2, 'b', '', 'labeler', 0)",
            "INSERT INTO projects (id, name, instructions, kind, labels, overlap, lease_seconds, created_at, item_count, done_count, visible_max_item_id)
             VALUES (1, 'p', '', 'single', '[]', 2, 600, 0, 3, 0, 3), (2, 'q', '', 'single', '[]', 2, 600, 0, 2, 0, 5)",
            "INSERT INTO items (id, project_id, kind, text, meta, weight, content_hash, created_at) VALUES
             (1, 1, 'text', 'a', '{}', 1, 'a', 0), (2, 1, 'text', 'b', '{}', 1, 'b', 0), (3, 1, 'text', 'c', '{}', 1, 'c', 0),
             (4, 2, 'text', 'd', '{}', 1, 'd', 0)",
            "INSERT INTO annotations (project_id, item_id, user_id, labels, time_ms, created_at, updated_at) VALUES
             (1, 1, 1, '[]', 1, 10, 10), (1, 2, 1, '[]', 1, 20, 20), (1, 3, 1, '[]', 1, 30, 30), (1, 1, 2, '[]', 1, 10, 10),
             (2, 4, 1, '[]', 1, 10, 10)",
        ])
        .await;
        let Db::Sqlite { write, read, .. } = &db else { unreachable!() };
        let totals = || async {
            sqlx::query_as::<_, (i64, i64, i64)>("SELECT project_id, user_id, annotations FROM labeler_totals ORDER BY 1, 2")
                .fetch_all(read)
                .await
                .unwrap()
        };
        assert_eq!(totals().await, vec![(1, 1, 3), (1, 2, 1), (2, 1, 1)]);
        // (mine today since 20, mine in all, done, total) for labeler 1 in project 1.
        assert_eq!(progress(&db, 1, 1, 20).await.unwrap(), (2, 3, 0, 3));
        sqlx::query("DELETE FROM items WHERE id = 1").execute(write).await.unwrap();
        assert_eq!(totals().await, vec![(1, 1, 2), (1, 2, 0), (2, 1, 1)], "an item's annotations go with it");
        assert_eq!(progress(&db, 1, 1, 0).await.unwrap().1, 2);
        sqlx::query("DELETE FROM projects WHERE id = 1").execute(write).await.unwrap();
        assert_eq!(totals().await, vec![(2, 1, 1)], "a project's counts go with it");
        assert_eq!(progress(&db, 2, 2, 0).await.unwrap().1, 0, "no annotation yet: no row, 0");
        // A hand-out stores the count of a new `since` once; the triggers keep it from then on.
        sqlx::query("INSERT INTO items (id, project_id, kind, text, meta, weight, content_hash, created_at) VALUES (5, 2, 'text', 'e', '{}', 1, 'e', 0)")
            .execute(write)
            .await
            .unwrap();
        let stored = || async {
            sqlx::query_as::<_, (i64, i64)>("SELECT since, since_count FROM labeler_totals WHERE project_id = 2 AND user_id = 1")
                .fetch_one(read)
                .await
                .unwrap()
        };
        assert_eq!(stored().await, (0, 1));
        // Labeler 1 does not belong to project 2: to the hand-out it does not exist, unless
        // they may see every project (an admin).
        let outsider = Labeler { user_id: 1, any_project: false };
        let refused = assign_next_item(&db, 2, outsider, &[], 11).await.err().map(|e| e.to_string());
        assert_eq!(refused.as_deref(), Some("no project 2"));
        assert_eq!(stored().await, (0, 1), "a refused hand-out stores nothing");
        let admin = Labeler { any_project: true, ..outsider };
        let handed = assign_next_item(&db, 2, admin, &[], 11).await.unwrap();
        assert_eq!(handed.assigned.as_ref().map(|a| a.item.id), Some(5));
        assert_eq!(handed.progress.0, 0, "nothing since 11");
        assert_eq!(stored().await, (11, 0));
        sqlx::query("INSERT INTO annotations (project_id, item_id, user_id, labels, time_ms, created_at, updated_at) VALUES (2, 5, 1, '[]', 1, 12, 12)")
            .execute(write)
            .await
            .unwrap();
        assert_eq!(stored().await, (11, 1));
        assert_eq!(progress(&db, 2, 1, 11).await.unwrap(), (1, 2, 0, 2));
        assert_eq!(progress(&db, 2, 1, 0).await.unwrap().0, 2, "another since is counted, not stored");
        assert_eq!(stored().await, (11, 1));
    }

    /// A submission reads the other labelers' answers of its item for the review hook, but
    /// not of a gold item (the hook never compares those, and every labeler answers one).
    #[tokio::test]
    async fn a_submission_reads_other_answers_of_ordinary_items_only() {
        let (_dir, db) = sqlite_with(&[
            "INSERT INTO users (id, username, password_hash, role, created_at) VALUES (1, 'a', '', 'labeler', 0), (2, 'b', '', 'labeler', 0)",
            "INSERT INTO projects (id, name, instructions, kind, labels, overlap, lease_seconds, created_at, item_count, done_count, visible_max_item_id)
             VALUES (1, 'p', '', 'single', '[\"x\",\"y\"]', 2, 600, 0, 2, 0, 2)",
            "INSERT INTO items (id, project_id, kind, text, meta, weight, content_hash, created_at, gold) VALUES
             (1, 1, 'text', 'a', '{}', 1, 'a', 0, NULL), (2, 1, 'text', 'b', '{}', 1, 'b', 0, '[\"x\"]')",
            "INSERT INTO annotations (project_id, item_id, user_id, labels, time_ms, created_at, updated_at) VALUES
             (1, 1, 2, '[\"y\"]', 1, 10, 10), (1, 2, 2, '[\"y\"]', 1, 10, 10)",
        ])
        .await;
        let Db::Sqlite { read, .. } = &db else { unreachable!() };
        let other_answers = |item: i64| async move {
            // $1 project, $2 labeler, $3 item, $4 graced, $5 client id, $6 now, $7 any project.
            let sql = format!("SELECT other_answers FROM ({})", *SUBMISSION_CONTEXT_SQL);
            sqlx::query_scalar::<_, Option<String>>(&sql)
                .bind(1i64).bind(1i64).bind(item).bind(0i64).bind("c").bind(0i64).bind(1i64).fetch_one(read).await.unwrap()
        };
        assert_eq!(other_answers(1).await.as_deref(), Some(r#"["[\"y\"]"]"#));
        assert_eq!(other_answers(2).await, None, "a gold item's answers are not read");
        let p = plan(&db, &SUBMISSION_CONTEXT_SQL, 6).await;
        println!("submission context:\n{p}");
        assert!(p.contains("SEARCH items USING INTEGER PRIMARY KEY (rowid=?)"), "{p}");
    }

    #[tokio::test]
    async fn no_hand_out_query_sorts_the_items() {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        for (order, indexes) in [
            ("import", &["items_stream_import"][..]),
            ("random", &["items_stream_rank"][..]),
            ("priority", &["items_stream_raised", "items_stream_rank"][..]),
            // An order the CHECK constraint may add later is served as 'random'.
            ("anything else", &["items_stream_rank"][..]),
        ] {
            // The order's steps, then the skipped item; with the uncertainty step first when on.
            let steps = hand_out_steps(order, false);
            assert_eq!(steps.len(), indexes.len() + 1, "{order}");
            assert_eq!(steps.last().unwrap().scan, *SKIPPED_ITEM_SQL, "{order}");
            assert_eq!(steps.last().unwrap().book, skipped_item_sql(Leases::Book), "{order}");
            let uncertain = hand_out_steps(order, true);
            assert_eq!(uncertain[0].scan, open_item_sql(UNCERTAIN_STEP.0, UNCERTAIN_STEP.1, Leases::Table), "{order}");
            assert_eq!(uncertain[0].book, open_item_sql(UNCERTAIN_STEP.0, UNCERTAIN_STEP.1, Leases::Book), "{order}");
            assert!(uncertain[1..].iter().zip(steps).all(|(u, s)| u.scan == s.scan && u.claim == s.claim), "{order}");
            assert!(steps.iter().all(|s| s.claim_waiting == claim_sql(&s.scan)), "{order}");
            assert!(steps.iter().all(|s| s.claim == format!("{} SKIP LOCKED", s.claim_waiting)), "{order}");
            // SQLite runs the steps that read the lease book; the capacity (its functions) and
            // the answer's columns come from the order's covering index.
            for (step, index) in steps.iter().zip(indexes) {
                let p = plan(&db, &step.book, 6).await;
                assert!(!p.contains("TEMP B-TREE"), "{order}: {p}");
                assert!(p.contains(&format!("i USING COVERING INDEX {index} (")), "{order}: {p}");
                assert!(!p.contains("leases"), "{order}: {p}");
                println!("{order}:\n{p}");
            }
        }
        let p = plan(&db, &open_item_sql(UNCERTAIN_STEP.0, UNCERTAIN_STEP.1, Leases::Book), 6).await;
        assert!(!p.contains("TEMP B-TREE") && p.contains("i USING INDEX items_model_rank ("), "uncertainty: {p}");
        for from_start in [true, false] {
            let p = plan(&db, &gold_item_sql(from_start, Leases::Book), 5).await;
            assert!(!p.contains("TEMP B-TREE"), "{p}");
            assert!(p.contains("i USING INDEX items_gold_rank ("), "{p}");
            println!("gold:\n{p}");
        }
        // The skipped items come from the labeler's own skips in skip order (skips_user); only
        // the tie-break by item id within one millisecond may use a small sort.
        // The progress every hand-out answers with: gold items over their own index, the done
        // count's shards from an index alone, the caller's answers from theirs.
        let p = plan(&db, PROGRESS_SQL, 3).await;
        assert!(p.contains("SEARCH s USING COVERING INDEX project_done_shards_sum (project_id=?)"), "{p}");
        // The caller's counts: today's annotations only, and the total from its one row.
        assert!(p.contains("USING COVERING INDEX annotations_user_time (project_id=? AND user_id=? AND created_at>?)"), "{p}");
        assert!(p.contains("SEARCH t USING PRIMARY KEY (project_id=? AND user_id=?)"), "{p}");
        assert!(!p.contains("items_done"), "{p}");
        assert_eq!(p.matches("i USING INDEX items_gold (project_id=? AND id<?)").count(), 2, "{p}");
        // A hand-out's first read: the gold check and the labeler's totals each a search; no
        // table scanned.
        let p = plan(&db, &BOOK_SETTINGS_SQL, 4).await;
        println!("settings:\n{p}");
        assert!(p.contains("g USING INDEX items_gold (project_id=? AND id<?)"), "{p}");
        assert!(p.contains("t USING PRIMARY KEY (project_id=? AND user_id=?)"), "{p}");
        assert!(!p.contains("SCAN "), "{p}");
        let p = plan(&db, &skipped_item_sql(Leases::Book), 6).await;
        assert!(p.contains("s USING INDEX skips_user ("), "{p}");
        assert!(!p.contains("TEMP B-TREE FOR ORDER BY"), "{p}");
        // The labeling page's "back": the labeler's own annotations from the point backwards.
        let p = plan(&db, &previous_submission_sql(), 4).await;
        assert!(p.contains("USING INDEX annotations_user_time (project_id=? AND user_id=? AND created_at<?)"), "{p}");
        assert!(!p.contains("TEMP B-TREE") && !p.contains("SCAN "), "{p}");
    }
}
