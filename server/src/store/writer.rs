//! Group commit on SQLite: one writer task commits many labeling writes in one transaction.
//!
//! SQLite has one writer. Before this, every `next` and every submission was its own write
//! transaction (`BEGIN IMMEDIATE` … `COMMIT`), so 50 labelers in a closed loop queued on the
//! writer connection one transaction at a time, and each commit wrote the pages it touched to
//! the WAL again (the project's row, the audit log's tail, the annotations' tail: the same
//! pages, written once per request).
//!
//! Now the labeling writes (`store::assignment`: submission, skip; a hand-out is a read, its
//! lease in memory, `store::lease_book`) are *jobs* sent to one task per database. The task takes the first job, then every job already queued behind
//! it (at most `MAX_GROUP`), and runs them one after another on the writer connection inside
//! one `BEGIN IMMEDIATE` … `COMMIT`. A job that fails without having changed a row (a 409, a
//! 403, a 404: every refusal is decided before the job's first write; or a statement that
//! failed, which SQLite undoes itself) leaves the others of its group unaffected. A job that
//! fails after it changed rows (a bug, or the storage failing halfway) cannot be undone alone:
//! the group's transaction is rolled back, the jobs before it in the group are answered 503
//! ("nothing was saved, send it again"), and the rest of the group runs in a new transaction
//! (`run_group`). Jobs have no savepoint of their own: one per job journaled every page the job
//! changed, a seventh of the writer's time per label (docs/bench.md, session 24).
//!
//! **The jobs run on the connection's raw handle** (`store::statements`): the task borrows it
//! from sqlx and keeps it while labeling writes keep coming (`hold`), and the jobs' statements
//! run in place, with no hand-off to
//! sqlx's thread per statement (which was most of the writer's time: docs/bench.md, session 13).
//!
//! **Acknowledged = durable.** A job's result is handed back to its request only after its
//! group's `COMMIT` returned; if the commit fails, every job of the group gets the error and
//! none of their effects exists. So a submission acknowledged to a labeler is in the database
//! (with `synchronous = NORMAL` in WAL mode, as before: durable across a process crash, and
//! across a power loss up to the last checkpoint's sync).
//!
//! **The invariants hold as before.** Jobs run strictly one at a time, in arrival order, on the
//! single writer connection, and each sees the effects of the jobs before it in its group: the
//! "assignment lock" of `store::assignment` (the single writer on SQLite) is still held by every
//! statement that reads and changes an item's capacity.
//!
//! **Other writes are unchanged.** The task borrows the write pool's one connection per group
//! and gives it back after the commit, so imports, settings changes and the rest of `on_write!`
//! take their turns between groups, as they took their turns between single transactions.
//!
//! A group is not held open to wait for more jobs: it is whatever queued while the previous
//! group ran, so a lone labeler pays no extra latency, and under load the groups grow by
//! themselves (the commit cost is shared by more writes exactly when writes queue).
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use sqlx::SqlitePool;
use tokio::sync::{mpsc, oneshot};

use super::lease_book::LeaseBook;
use crate::error::{AppError, AppResult};

/// The most jobs in one group: bounds the time one group holds the writer (and so the wait of
/// an import or a settings change behind it) to a few milliseconds.
pub const MAX_GROUP: usize = 128;

/// `MIRRORSET_GROUP_COMMIT_MAX` overrides `MAX_GROUP` (1 to 1,024). With 1 every labeling
/// write is its own transaction again, as before group commit: the benchmark's before/after
/// comparison on one binary (docs/bench.md), and a way back should grouping ever misbehave.
fn max_group() -> usize {
    std::env::var("MIRRORSET_GROUP_COMMIT_MAX")
        .ok()
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(MAX_GROUP, |n| n.clamp(1, 1024))
}

/// Upper bounds of the commit group size histogram's buckets (`GET /metrics`).
pub const GROUP_SIZE_BUCKETS: [u64; 8] = [1, 2, 4, 8, 16, 32, 64, 128];

/// Jobs sent and not yet taken into a group: the writer's queue depth (`GET /metrics` shows it
/// as `mirrorset_sqlite_writer_queue_depth`). One process serves one database, so one global,
/// like `store::SQLITE_WRITES_IN_FLIGHT`.
pub static QUEUE_DEPTH: AtomicI64 = AtomicI64::new(0);

/// Jobs sent whose results are not delivered yet: queued, in a group that waits for the write
/// pool's connection (an import's transaction holds it), or running. Unlike `QUEUE_DEPTH` it
/// counts the group the writer task has taken but cannot start, which is what an import's long
/// transaction must notice to let labelers in (`labeling_waits`).
static JOBS_WAITING: AtomicI64 = AtomicI64::new(0);

/// Whether a labeling write (hand-out, submission, skip) is waiting for the writer or running.
pub fn labeling_waits() -> bool {
    JOBS_WAITING.load(Ordering::Relaxed) > 0
}

/// Counts one job in `JOBS_WAITING` until dropped: with its result delivered, or with the job
/// if it never ran.
pub(crate) struct Waiting(());

impl Waiting {
    /// Public to the crate for tests that need a labeling write to be waiting, exactly then.
    pub(crate) fn enter() -> Waiting {
        JOBS_WAITING.fetch_add(1, Ordering::Relaxed);
        Waiting(())
    }
}

impl Drop for Waiting {
    fn drop(&mut self) {
        JOBS_WAITING.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Writes other than the labeling ones (`on_write!`: imports, settings, reviews…) waiting for
/// the write connection or running on it: the writer gives the connection back after its
/// current group when there is one (`hold`).
static OTHER_WRITES: AtomicI64 = AtomicI64::new(0);

fn other_writes_wait() -> bool {
    OTHER_WRITES.load(Ordering::Relaxed) > 0
}

/// The import transactions among `OTHER_WRITES` (`store::items::insert_chunk`): an import's
/// long transaction ends early for any other write (`interactive_write_waits`), but not for
/// another import's, or two imports would cut each other short.
static IMPORT_WRITES: AtomicI64 = AtomicI64::new(0);

/// Whether a write other than a labeling one or an import's waits for the write connection or
/// runs on it: a lead's settings, a review decision, a job's progress.
pub fn interactive_write_waits() -> bool {
    OTHER_WRITES.load(Ordering::Relaxed) > IMPORT_WRITES.load(Ordering::Relaxed)
}

/// Counts one import transaction in `IMPORT_WRITES` (and in `OTHER_WRITES`) until dropped.
/// `IMPORT_WRITES` goes up first and down last, so another import never sees this one as an
/// interactive write in between.
pub struct ImportWrite(Option<OtherWrite>);

impl ImportWrite {
    pub fn enter() -> ImportWrite {
        IMPORT_WRITES.fetch_add(1, Ordering::Relaxed);
        ImportWrite(Some(OtherWrite::enter()))
    }
}

impl Drop for ImportWrite {
    fn drop(&mut self) {
        drop(self.0.take());
        IMPORT_WRITES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Counts one write in `OTHER_WRITES` until dropped.
pub struct OtherWrite(());

impl OtherWrite {
    pub fn enter() -> OtherWrite {
        OTHER_WRITES.fetch_add(1, Ordering::Relaxed);
        // A permit is kept when the writer is not waiting: it then gives the connection back
        // at its next pause, at worst once too often.
        OTHER_WRITE_ARRIVED.notify_one();
        OtherWrite(())
    }
}

impl Drop for OtherWrite {
    fn drop(&mut self) {
        OTHER_WRITES.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Commit groups by size bucket (not cumulative), and their count and total of jobs.
pub static GROUP_SIZES: [AtomicU64; GROUP_SIZE_BUCKETS.len()] = [const { AtomicU64::new(0) }; GROUP_SIZE_BUCKETS.len()];
pub static GROUPS: AtomicU64 = AtomicU64::new(0);
pub static GROUPED_JOBS: AtomicU64 = AtomicU64::new(0);

/// The phases of a group, in order: waiting for the write pool's connection (an import's or a
/// settings change's transaction may hold it) and borrowing its raw handle from sqlx's thread,
/// `BEGIN IMMEDIATE`, running the jobs, `COMMIT`.
pub const PHASES: [&str; 4] = ["acquire", "begin", "jobs", "commit"];
const ACQUIRE: usize = 0;
const BEGIN: usize = 1;
const JOBS: usize = 2;
const COMMIT: usize = 3;

/// Microseconds the writer spent in each of `PHASES` over all its groups (`GET /metrics`:
/// `mirrorset_sqlite_writer_seconds_total`). Their sum over a stretch of wall time is how busy
/// the writer was: at 100 % it bounds the labeling loop, and the phases say where its time
/// goes (docs/bench.md, sessions 12 and 13).
pub static PHASE_MICROS: [AtomicU64; PHASES.len()] = [const { AtomicU64::new(0) }; PHASES.len()];

/// The labeling jobs the writer runs, by kind (`on_group_statements!`'s `job`): how much of
/// the writer's time each kind takes, and so what moving one of them off the writer would
/// save (`GET /metrics`: `mirrorset_sqlite_writer_job_seconds_total`).
#[derive(Clone, Copy, Debug)]
pub enum JobKind {
    HandOut = 0,
    Submission = 1,
    Skip = 2,
}

/// `JobKind`'s names, in its order (the metric's `kind` label).
pub const JOB_KINDS: [&str; 3] = ["hand_out", "submission", "skip"];

/// Microseconds the writer spent in the statements of each kind of job, and the jobs run.
pub static JOB_MICROS: [AtomicU64; JOB_KINDS.len()] = [const { AtomicU64::new(0) }; JOB_KINDS.len()];
pub static JOBS_RUN: [AtomicU64; JOB_KINDS.len()] = [const { AtomicU64::new(0) }; JOB_KINDS.len()];

/// Adds the time since `*since` to phase `phase` and starts the next phase now.
fn phase_done(phase: usize, since: &mut std::time::Instant) {
    let now = std::time::Instant::now();
    PHASE_MICROS[phase].fetch_add(now.duration_since(*since).as_micros() as u64, Ordering::Relaxed);
    *since = now;
}

/// How the transaction a job ran in ended, as its request is told.
enum Ending<'e> {
    /// The job's result stands: committed when it succeeded, its own error when it failed.
    Kept,
    /// The commit failed: nothing of the job was saved, whatever it answered.
    CommitFailed(&'e rusqlite::Error),
    /// A later job of the group failed after it had written, and the transaction was rolled
    /// back with it: nothing of this job was saved.
    Undone,
}

/// What a job hands back after running: whether it failed (`run_group` then checks whether it
/// wrote first), and what answers its request once its transaction's end is known.
struct Ran {
    failed: bool,
    deliver: Box<dyn FnOnce(Ending<'_>) + Send>,
}
type Job = Box<dyn FnOnce(&mut rusqlite::Connection) -> Ran + Send>;

/// The handle requests send their jobs through. Cloning it is cheap; the task ends when the
/// last handle is dropped (after it committed what was queued).
#[derive(Clone)]
pub struct GroupWriter {
    jobs: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for GroupWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("GroupWriter")
    }
}

impl GroupWriter {
    /// Starts the writer task on `pool` (the one-connection write pool); it tells `leases`
    /// when each of its transactions ends (`LeaseBook::transaction_ended`).
    pub fn start(pool: SqlitePool, leases: Arc<LeaseBook>) -> GroupWriter {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(run(pool, rx, max_group(), leases));
        GroupWriter { jobs }
    }

    /// Runs `body` on the writer connection's raw handle inside the next group's transaction,
    /// and returns its result once that group is committed. A `body` that refuses must do so
    /// before its first write: one that fails after it changed rows takes the jobs before it in
    /// its group back with it (`run_group`). The jobs of a group share one borrow of the handle
    /// and one statement cache, kept across groups while jobs keep coming (`hold`).
    pub async fn run_raw<T, F>(&self, body: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> AppResult<T> + Send + 'static,
    {
        let (job, done_rx) = job_of(body);
        self.send(job, done_rx).await
    }

    async fn send<T>(&self, job: Job, done_rx: oneshot::Receiver<AppResult<T>>) -> AppResult<T> {
        QUEUE_DEPTH.fetch_add(1, Ordering::Relaxed);
        if self.jobs.send(job).is_err() {
            QUEUE_DEPTH.fetch_sub(1, Ordering::Relaxed);
            return Err(writer_gone());
        }
        // A dropped sender: the job never ran or its group could not start (the error is in
        // the log); nothing of it was saved.
        done_rx.await.unwrap_or_else(|_| Err(writer_gone()))
    }
}

impl GroupWriter {
    /// `run_raw` for a labeling job of kind `kind`, whose statements' time is counted under it
    /// (`JOB_MICROS`).
    pub async fn run_labeling<T, F>(&self, kind: JobKind, body: F) -> AppResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut rusqlite::Connection) -> AppResult<T> + Send + 'static,
    {
        self.run_raw(move |conn| {
            let started = std::time::Instant::now();
            let result = body(conn);
            JOB_MICROS[kind as usize].fetch_add(started.elapsed().as_micros() as u64, Ordering::Relaxed);
            JOBS_RUN[kind as usize].fetch_add(1, Ordering::Relaxed);
            result
        })
        .await
    }

    /// Returns once every job sent before this call is committed (or failed): jobs run in the
    /// order they were sent, so a no-op job's answer comes after all of theirs. For a graceful
    /// shutdown: a request that was cancelled (its client went away) leaves its job queued, and
    /// it is still committed before the process exits.
    pub async fn drain(&self) {
        let _ = self.run_raw(|_conn| Ok(())).await;
    }
}

/// `body` as a job for the writer, and where its answer arrives (a dropped sender: the job
/// never ran, or panicked).
fn job_of<T, F>(body: F) -> (Job, oneshot::Receiver<AppResult<T>>)
where
    T: Send + 'static,
    F: FnOnce(&mut rusqlite::Connection) -> AppResult<T> + Send + 'static,
{
    let (done_tx, done_rx) = oneshot::channel::<AppResult<T>>();
    let waiting = Waiting::enter();
    let job: Job = Box::new(move |conn| {
        let result = body(conn);
        let failed = result.is_err();
        let deliver = Box::new(move |ending: Ending<'_>| {
            let _waiting = waiting;
            let _ = done_tx.send(match ending {
                Ending::Kept => result,
                // Even a job that failed on its own gets the commit's error: whatever it
                // would have answered, nothing of its group was saved.
                Ending::CommitFailed(e) => Err(commit_failed(e)),
                Ending::Undone => Err(undone_with_another()),
            });
        });
        Ran { failed, deliver }
    });
    (job, done_rx)
}

/// The answer of a job rolled back because a later job of its group failed after writing.
fn undone_with_another() -> AppError {
    AppError::Unavailable {
        message: "another request written together with this one failed halfway, and both were undone; nothing of this \
                  request was saved: send it again"
            .into(),
        retry_after_secs: 1,
    }
}

/// A failed COMMIT: a 503 when the database's storage refused it (read-only, disk full: it
/// passes when the condition clears), else a 500.
fn commit_failed(e: &rusqlite::Error) -> AppError {
    crate::error::storage_refusal(e)
        .unwrap_or_else(|| AppError::Internal(anyhow::anyhow!("the group commit failed, nothing of this request was saved: {e}")))
}

fn writer_gone() -> AppError {
    AppError::Internal(anyhow::anyhow!("the database writer could not run this request; nothing of it was saved"))
}

async fn run(pool: SqlitePool, mut rx: mpsc::UnboundedReceiver<Job>, max_group: usize, leases: Arc<LeaseBook>) {
    while let Some(first) = rx.recv().await {
        let mut since = std::time::Instant::now();
        let mut conn = match pool.acquire().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "group commit: no writer connection");
                continue;
            }
        };
        let mut handle = match conn.lock_handle().await {
            Ok(h) => h,
            Err(e) => {
                tracing::error!(error = %e, "group commit: the connection's handle cannot be borrowed");
                continue;
            }
        };
        // SAFETY: the handle is sqlx's open connection, locked for us until `handle` is
        // dropped, after `raw` (`hold` takes `raw` and drops it before returning); `from_handle`
        // never closes it.
        let raw = match unsafe { rusqlite::Connection::from_handle(handle.as_raw_handle().as_ptr()) } {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "group commit: the raw handle cannot be used");
                continue;
            }
        };
        phase_done(ACQUIRE, &mut since);
        hold(raw, first, &mut rx, max_group, &leases).await;
        drop(handle);
    }
}

/// How long the writer keeps the write connection borrowed across groups and the pauses
/// between them: the longest a write that is not counted in `OtherWrite` (none today: every
/// other write goes through `on_write!`) would wait behind it. Long, because each return of
/// the connection finalizes the prepared statements and the next borrow prepares them again,
/// milliseconds of the writer's time: at 20 ms it returned the connection every few groups and
/// spent a sixth of its time per write on that; and when labelers pause between items (a
/// person's second), every write paid it (docs/bench.md, session 16).
const HOLD_MAX: std::time::Duration = std::time::Duration::from_secs(1);

/// Wakes the writer while it keeps the connection between labeling writes (`hold`): another
/// write has started waiting for the connection.
static OTHER_WRITE_ARRIVED: tokio::sync::Notify = tokio::sync::Notify::const_new();

/// Commits groups on the borrowed connection, the first one starting with `first`, and waits
/// for the next labeling write on it, while no other write waits for the connection, the last
/// group committed, and `HOLD_MAX` has not passed. Borrowing the connection from the pool and
/// its handle from sqlx's thread is two hand-offs and a wait to be polled, and the statements
/// are prepared again on each borrow. The prepared statements live in `raw` across these groups
/// and are finalized when it is dropped here, before the handle goes back to sqlx: sqlx must
/// never close its connection with a statement of ours open.
async fn hold(mut raw: rusqlite::Connection, first: Job, rx: &mut mpsc::UnboundedReceiver<Job>, max_group: usize, leases: &LeaseBook) {
    raw.set_prepared_statement_cache_capacity(super::statements::RAW_STATEMENT_CACHE);
    if let Err(e) = raw.execute_batch(JOURNALS_IN_MEMORY) {
        tracing::warn!(error = %e, "group commit: the statement journals stay in files");
    }
    let held_at = std::time::Instant::now();
    let mut next = Some(first);
    while let Some(first) = next.take() {
        let mut group = vec![first];
        while group.len() < max_group {
            match rx.try_recv() {
                Ok(job) => group.push(job),
                Err(_) => break,
            }
        }
        QUEUE_DEPTH.fetch_sub(group.len() as i64, Ordering::Relaxed);
        record_group(group.len());
        let mut since = std::time::Instant::now();
        let outcome = run_group(&mut raw, group, &mut since, leases);
        if outcome.is_err() || other_writes_wait() || held_at.elapsed() >= HOLD_MAX {
            break;
        }
        // The requests just answered run (and send their next writes) before the next look.
        tokio::task::yield_now().await;
        next = match rx.try_recv() {
            Ok(job) => Some(job),
            // A pause: keep the connection, and the statements prepared on it, for the next
            // labeling write, unless another write wants it first.
            Err(_) => tokio::select! {
                job = rx.recv() => job,
                _ = OTHER_WRITE_ARRIVED.notified() => None,
                _ = tokio::time::sleep_until(tokio::time::Instant::from_std(held_at + HOLD_MAX)) => None,
            },
        };
    }
    // Fails only inside a transaction, which a failed COMMIT and ROLLBACK left open: then the
    // connection's next transaction fails too (and sqlx replaces the connection).
    if let Err(e) = raw.execute_batch(JOURNALS_IN_FILES) {
        tracing::error!(error = %e, "group commit: the connection goes back with its journals in memory");
    }
}

/// Labeling jobs keep their statement journals in memory; the connection's other writes keep
/// SQLite's default, files. A statement that may fail halfway (one whose triggers write other
/// tables, such as a new annotation's) journals the original of each page it changes, so that
/// SQLite can undo it alone. Until session 24 every job also ran in a savepoint, whose
/// journal for a submission (~20 pages, ~160 KiB) went past the 64 KiB that SQLite keeps in
/// memory before it moves a statement journal to a temporary file: ~25 page writes of 8 KiB,
/// 50 write system calls per label, on the writer's path (counted with strace; docs/bench.md,
/// session 23). A statement's journal is emptied when the statement ends, so in memory it holds
/// one statement's pages at most. Other writes keep files: a statement of an import's
/// transaction, or a bulk update, may journal far more pages than memory should hold.
/// (SQLite's process-wide threshold, `SQLITE_CONFIG_STMTJRNL_SPILL`, cannot be raised enough:
/// set above 128 KiB, a journal that reaches it fails to move to its file with "database or
/// disk is full", as the unix file layer writes at most 128 KiB at once.) The setting takes
/// effect at each `BEGIN` and cannot change inside a transaction: it is set when the writer
/// takes the connection and reset before it gives it back.
const JOURNALS_IN_MEMORY: &str = "PRAGMA temp_store = MEMORY";
const JOURNALS_IN_FILES: &str = "PRAGMA temp_store = DEFAULT";

fn record_group(size: usize) {
    GROUPS.fetch_add(1, Ordering::Relaxed);
    GROUPED_JOBS.fetch_add(size as u64, Ordering::Relaxed);
    let i = GROUP_SIZE_BUCKETS.iter().position(|&le| size as u64 <= le).unwrap_or(GROUP_SIZE_BUCKETS.len() - 1);
    GROUP_SIZES[i].fetch_add(1, Ordering::Relaxed);
}

/// One group in one transaction on the raw connection: `BEGIN IMMEDIATE`, the group's jobs one
/// after another in arrival order, `COMMIT`, each in place, with no hand-off to sqlx's thread;
/// then every job's request is answered. When the transaction cannot start, the jobs are
/// dropped unrun (their requests get `writer_gone`, nothing was written).
///
/// A job that fails (or panics) having changed no row (`total_changes` did not move) leaves the
/// transaction as it found it, and the group goes on (unless the failure ended the
/// transaction). One that fails after it changed rows cannot be undone alone (jobs have no
/// savepoints: see the module's doc): the transaction is rolled back, the jobs before it are
/// answered `undone_with_another`, it gets its own error, and the rest of the group runs in a
/// new transaction. The lease book hears of each transaction's end
/// (`LeaseBook::transaction_ended`): the answers a commit made take their leases' places for
/// readers, and those a rollback undid are leases again.
fn run_group(raw: &mut rusqlite::Connection, group: Vec<Job>, since: &mut std::time::Instant, leases: &LeaseBook) -> Result<(), rusqlite::Error> {
    let begin = |raw: &mut rusqlite::Connection| {
        raw.execute_batch("BEGIN IMMEDIATE")
            .inspect_err(|e| tracing::error!(error = %e, "group commit: BEGIN failed; the group's jobs not run yet are dropped"))
    };
    begin(raw)?;
    phase_done(BEGIN, since);
    let mut in_transaction: Vec<Ran> = Vec::with_capacity(group.len());
    for job in group {
        let changes_before = raw.total_changes();
        // A panicking job loses its own answer (its request gets `writer_gone`) but not the
        // writer task.
        let ran = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut *raw)))
            .inspect_err(|_| tracing::error!("group commit: a job panicked; its request fails"))
            .ok();
        // A failure that ended the transaction (SQLite rolls it back itself on some I/O
        // errors) took the jobs before it back too, as one that wrote must.
        let intact = raw.total_changes() == changes_before && !raw.is_autocommit();
        if ran.as_ref().is_some_and(|r| !r.failed) || intact {
            in_transaction.extend(ran);
            continue;
        }
        tracing::error!(undone = in_transaction.len(), "group commit: a job failed after it wrote; its group's transaction is rolled back");
        let rolled_back = if raw.is_autocommit() { Ok(()) } else { raw.execute_batch("ROLLBACK") };
        leases.transaction_ended(false);
        for earlier in in_transaction.drain(..) {
            (earlier.deliver)(Ending::Undone);
        }
        if let Some(failed) = ran {
            (failed.deliver)(Ending::Kept);
        }
        rolled_back.inspect_err(|e| tracing::error!(error = %e, "group commit: ROLLBACK failed; the group's jobs not run yet are dropped"))?;
        begin(raw)?;
    }
    phase_done(JOBS, since);
    let outcome = raw.execute_batch("COMMIT");
    if let Err(e) = &outcome {
        tracing::error!(error = %e, jobs = in_transaction.len(), "group commit: COMMIT failed");
        // A COMMIT refused by a deferred constraint leaves the transaction open; one refused
        // by the storage may have rolled it back already.
        if !raw.is_autocommit() {
            if let Err(e) = raw.execute_batch("ROLLBACK") {
                tracing::error!(error = %e, "group commit: ROLLBACK after the failed COMMIT failed");
            }
        }
    }
    leases.transaction_ended(outcome.is_ok());
    phase_done(COMMIT, since);
    for ran in in_transaction {
        (ran.deliver)(outcome.as_ref().map_or_else(Ending::CommitFailed, |_| Ending::Kept));
    }
    outcome
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Db;
    use futures::FutureExt as _;

    async fn sqlite() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        (dir, db)
    }

    fn audit_row(conn: &rusqlite::Connection, at: i64) -> AppResult<()> {
        conn.execute("INSERT INTO audit_log (at, action) VALUES (?1, 'annotation_created')", [at])?;
        Ok(())
    }

    /// A database with one table whose rows the test jobs write, on a connection of its own.
    fn scratch_connection() -> (tempfile::TempDir, rusqlite::Connection) {
        let dir = tempfile::tempdir().unwrap();
        let conn = rusqlite::Connection::open(dir.path().join("g.db")).unwrap();
        conn.execute_batch("PRAGMA journal_mode = WAL; CREATE TABLE t (n INTEGER NOT NULL UNIQUE)").unwrap();
        (dir, conn)
    }

    /// One group's jobs on `conn`, in order, through `run_group`: each job's answer, and the
    /// rows the table holds after.
    fn run_jobs(conn: &mut rusqlite::Connection, bodies: Vec<Box<dyn FnOnce(&mut rusqlite::Connection) -> AppResult<i64> + Send>>) -> (Vec<AppResult<i64>>, Vec<i64>) {
        let (jobs, mut answers): (Vec<Job>, Vec<_>) = bodies.into_iter().map(job_of).unzip();
        run_group(conn, jobs, &mut std::time::Instant::now(), &LeaseBook::default()).unwrap();
        let answers = answers.iter_mut().map(|rx| rx.try_recv().unwrap_or_else(|_| Err(writer_gone()))).collect();
        let rows = conn.prepare("SELECT n FROM t ORDER BY n").unwrap().query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        (answers, rows)
    }

    fn insert(conn: &rusqlite::Connection, n: i64) -> AppResult<i64> {
        conn.execute("INSERT INTO t (n) VALUES (?1)", [n])?;
        Ok(n)
    }

    /// A job that refuses, whose statement fails, or that panics, all before writing anything,
    /// costs the jobs around it in its group nothing: they are committed and answered.
    #[test]
    fn a_job_failing_before_it_writes_leaves_its_group_alone() {
        let (_dir, mut conn) = scratch_connection();
        let (answers, rows) = run_jobs(
            &mut conn,
            vec![
                Box::new(|c| insert(c, 1)),
                Box::new(|_| Err(AppError::conflict("refused"))),
                // The UNIQUE constraint: the statement fails, and SQLite undoes it alone.
                Box::new(|c| insert(c, 1)),
                Box::new(|_| panic!("a job panics before it writes")),
                Box::new(|c| insert(c, 5)),
            ],
        );
        assert!(matches!(answers[0], Ok(1)), "{answers:?}");
        assert!(matches!(answers[1], Err(AppError::Conflict(_))), "{answers:?}");
        assert!(matches!(&answers[2], Err(AppError::Internal(e)) if e.to_string().contains("UNIQUE")), "{answers:?}");
        assert!(matches!(&answers[3], Err(AppError::Internal(e)) if e.to_string().contains("could not run this request")), "{answers:?}");
        assert!(matches!(answers[4], Ok(5)), "{answers:?}");
        assert_eq!(rows, vec![1, 5]);
    }

    /// A job that fails or panics after it wrote takes the jobs before it in its transaction
    /// back with it (they are answered 503, nothing of them saved); the jobs after it run in a
    /// new transaction and are committed.
    #[test]
    fn a_job_failing_after_it_wrote_takes_back_the_jobs_before_it() {
        let (_dir, mut conn) = scratch_connection();
        let (answers, rows) = run_jobs(
            &mut conn,
            vec![
                Box::new(|c| insert(c, 1)),
                Box::new(|c| insert(c, 2)),
                Box::new(|c| {
                    insert(c, 3)?;
                    Err(AppError::conflict("refused after its write"))
                }),
                Box::new(|c| insert(c, 4)),
                Box::new(|c| {
                    insert(c, 5)?;
                    panic!("a job panics after its write")
                }),
                Box::new(|c| insert(c, 6)),
            ],
        );
        let undone = |a: &AppResult<i64>| matches!(a, Err(AppError::Unavailable { message, .. }) if message.contains("send it again"));
        assert!(undone(&answers[0]) && undone(&answers[1]), "{answers:?}");
        assert!(matches!(answers[2], Err(AppError::Conflict(_))), "the failing job gets its own error: {answers:?}");
        assert!(undone(&answers[3]), "{answers:?}");
        assert!(matches!(&answers[4], Err(AppError::Internal(e)) if e.to_string().contains("could not run this request")), "{answers:?}");
        assert!(matches!(answers[5], Ok(6)), "{answers:?}");
        assert_eq!(rows, vec![6], "only the job after the last failure is saved");
        assert!(conn.is_autocommit(), "no transaction is left open");
    }

    /// A request cancelled after its job was sent (its client went away) still has the job
    /// committed, and `drain` (the graceful shutdown's last step) waits for it.
    #[tokio::test]
    async fn drain_waits_for_jobs_of_cancelled_requests() {
        let (_dir, db) = sqlite().await;
        let Db::Sqlite { read, writer, .. } = &db else { unreachable!() };
        for i in 0..5i64 {
            let job = writer.run_raw(move |conn| audit_row(conn, i));
            // Polled once (the job is sent), then dropped: the request was cancelled.
            assert!(job.now_or_never().is_none());
        }
        db.drain_writes().await;
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log").fetch_one(read).await.unwrap();
        assert_eq!(n, 5);
    }

    /// A commit that fails takes every job of its group with it: none is acknowledged.
    #[tokio::test]
    async fn a_failed_commit_acknowledges_nothing() {
        let (_dir, db) = sqlite().await;
        let Db::Sqlite { read, writer, .. } = &db else { unreachable!() };
        // A deferred foreign key is checked at COMMIT: the job itself succeeds, the commit fails.
        let r = writer
            .run_raw(|conn| {
                conn.execute_batch(
                    "PRAGMA defer_foreign_keys = ON;
                     INSERT INTO leases (item_id, user_id, project_id, leased_at, expires_at) VALUES (999, 999, 999, 0, 0)",
                )?;
                Ok(())
            })
            .await;
        assert!(matches!(r, Err(AppError::Internal(_))), "{r:?}");
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM leases").fetch_one(read).await.unwrap();
        assert_eq!(n, 0);
        // The writer goes on after a failed group.
        let r = writer.run_raw(|_conn| Ok(7)).await.unwrap();
        assert_eq!(r, 7);
    }

    /// The prepared statements of the writer are gone when the connection goes back to sqlx's
    /// pool (else sqlx could not close it): once the pool hands the connection to someone
    /// else, none of the statements the jobs prepared is open.
    #[tokio::test]
    async fn no_statement_outlives_the_borrow() {
        let (_dir, db) = sqlite().await;
        let Db::Sqlite { writer, write, .. } = &db else { unreachable!() };
        writer
            .run_raw(|conn| {
                conn.prepare_cached("SELECT COUNT(*) FROM audit_log")?.raw_query().next()?;
                Ok(())
            })
            .await
            .unwrap();
        // The pool's one connection, once the writer gave it back (it keeps it between
        // labeling writes until another write waits); its open statements by text (sqlx keeps
        // its own).
        let _other = OtherWrite::enter();
        let mut conn = write.acquire().await.unwrap();
        let mut handle = conn.lock_handle().await.unwrap();
        let db = handle.as_raw_handle().as_ptr();
        let mut open = Vec::new();
        // SAFETY: a read-only walk of the locked connection's statement list.
        unsafe {
            let mut stmt = rusqlite::ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
            while !stmt.is_null() {
                open.push(std::ffi::CStr::from_ptr(rusqlite::ffi::sqlite3_sql(stmt)).to_string_lossy().into_owned());
                stmt = rusqlite::ffi::sqlite3_next_stmt(db, stmt);
            }
        }
        assert!(open.iter().any(|t| t.contains("_sqlx_migrations")), "the walk sees sqlx's statements: {open:?}");
        assert!(!open.iter().any(|t| t.contains("FROM audit_log") || t.contains("raw_job")), "{open:?}");
    }

    /// A labeling job journals in memory (`JOURNALS_IN_MEMORY`), a job that fails after
    /// changing far more pages than a file-less journal should be asked to hold at once
    /// (~400 KiB) is rolled back completely, and the connection goes back to the pool's other
    /// writes with SQLite's default (files) again.
    #[tokio::test]
    async fn labeling_jobs_journal_in_memory_and_other_writes_in_files() {
        let (_dir, db) = sqlite().await;
        let Db::Sqlite { writer, write, read, .. } = &db else { unreachable!() };
        sqlx::query("CREATE TABLE scratch (id INTEGER PRIMARY KEY, body TEXT NOT NULL)").execute(write).await.unwrap();
        sqlx::query(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 200)
             INSERT INTO scratch (id, body) SELECT i, printf('%.2000c', 'a') FROM n",
        )
        .execute(write)
        .await
        .unwrap();
        let in_job = writer
            .run_raw(|conn| Ok(conn.query_row("PRAGMA temp_store", [], |r| r.get::<_, i64>(0))?))
            .await
            .unwrap();
        assert_eq!(in_job, 2, "a labeling job runs with temp_store = MEMORY");
        let r = writer
            .run_raw(|conn| -> AppResult<()> {
                assert_eq!(conn.execute("UPDATE scratch SET body = upper(body)", [])?, 200);
                Err(AppError::conflict("refused after its writes"))
            })
            .await;
        assert!(matches!(r, Err(AppError::Conflict(_))), "{r:?}");
        let upper: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM scratch WHERE body <> lower(body)").fetch_one(read).await.unwrap();
        assert_eq!(upper, 0, "the failed job's changes are all rolled back");
        let _other = OtherWrite::enter();
        let mut conn = write.acquire().await.unwrap();
        let after: i64 = sqlx::query_scalar("PRAGMA temp_store").fetch_one(&mut *conn).await.unwrap();
        assert_eq!(after, 0, "the pool's other writes journal in files, SQLite's default");
    }

    /// While labeling writes keep coming without a pause, the writer keeps the write
    /// connection across groups (`hold`), and another write (an import's, a settings change)
    /// still gets its turn, with the labeling writes going on around it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn another_write_gets_its_turn_while_labeling_writes_keep_coming() {
        use std::sync::atomic::AtomicBool;
        use std::sync::Arc;
        let (_dir, db) = sqlite().await;
        let Db::Sqlite { writer, .. } = &db else { unreachable!() };
        let stop = Arc::new(AtomicBool::new(false));
        let done = Arc::new(AtomicU64::new(0));
        let mut labelers = Vec::new();
        for l in 0..8i64 {
            let (writer, stop, done) = (writer.clone(), stop.clone(), done.clone());
            labelers.push(tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    writer.run_raw(move |conn| audit_row(conn, l)).await.unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        while done.load(Ordering::Relaxed) < 200 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        let other = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            async { crate::on_write!(&db, pool => sqlx::query("INSERT INTO audit_log (at, action) VALUES (-1, 'annotation_created')").execute(pool).await.map(|_| ())) },
        )
        .await;
        let at_other = done.load(Ordering::Relaxed);
        while done.load(Ordering::Relaxed) < at_other + 200 {
            tokio::time::sleep(std::time::Duration::from_millis(1)).await;
        }
        stop.store(true, Ordering::Relaxed);
        for l in labelers {
            l.await.unwrap();
        }
        assert!(matches!(other, Ok(Ok(_))), "the other write waited behind the labeling writes: {other:?}");
        let Db::Sqlite { read, .. } = &db else { unreachable!() };
        let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE at = -1").fetch_one(read).await.unwrap();
        assert_eq!(n, 1);
    }
}
