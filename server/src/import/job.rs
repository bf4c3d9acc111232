//! The life of one import: registered as running (one per project), kept alive by a heartbeat,
//! and ended exactly once: committed, or failed/cancelled with its pending rows removed.
//!
//! Whatever ends an import (an error, a refusal, a shutdown, a panic, the request being
//! dropped), `ImportJob` makes sure its pending rows are deleted and the import is marked
//! finished: explicitly through `abort`, or from `Drop` on a spawned task. An import whose
//! server died keeps state `running` with a stale heartbeat; `reap_stale` (at start-up and
//! every minute) removes it the same way.
use std::path::PathBuf;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::error::{AppError, AppResult};
use crate::store::imported_annotations::{AttachOutcome, ImportedAnnotation};
use crate::store::imports::{self, EndState};
use crate::store::Db;

/// How often a running import refreshes its heartbeat.
pub const HEARTBEAT: Duration = Duration::from_secs(10);
/// A running import whose heartbeat is older than this belongs to a server that died.
pub const STALE_AFTER: Duration = Duration::from_secs(120);
/// What a client told to come back later is advised to wait.
pub const RETRY_AFTER_SECS: u64 = 30;

/// Everything an import needs from the server.
#[derive(Clone)]
pub struct ImportCtx {
    pub db: Db,
    /// Images and thumbnails (shared by every instance).
    pub data_dir: Arc<PathBuf>,
    /// This instance's spool directory (uploads, extracted zip data files).
    pub spool_dir: Arc<PathBuf>,
    /// Cancelled when the server shuts down: running imports stop and remove their rows.
    pub shutdown: CancellationToken,
    pub gate: ImportGate,
}

/// At most a few imports run at once on this server: each takes a core for parsing and
/// decoding images, and disk for its spool.
#[derive(Clone, Debug)]
pub struct ImportGate(Arc<Semaphore>);

impl ImportGate {
    pub fn new(max_concurrent: usize) -> Self {
        ImportGate(Arc::new(Semaphore::new(max_concurrent.max(1))))
    }

    /// A slot, or 503 with Retry-After when every slot is taken.
    pub fn try_enter(&self) -> AppResult<OwnedSemaphorePermit> {
        self.0.clone().try_acquire_owned().map_err(|_| AppError::Unavailable {
            message: "the server is running as many imports as it allows at once; try again in a minute".into(),
            retry_after_secs: RETRY_AFTER_SECS,
        })
    }
}

/// Progress counters shared with the heartbeat task.
#[derive(Default, Debug)]
pub struct Progress {
    pub lines: AtomicI64,
    pub inserted: AtomicI64,
}

/// A running import. End it with `commit` or `abort`; dropping it unended aborts it in the
/// background.
pub struct ImportJob {
    db: Db,
    pub id: i64,
    pub project_id: i64,
    pub progress: Arc<Progress>,
    heartbeat: tokio::task::JoinHandle<()>,
    ended: bool,
    /// Still counted among the running imports (`store::items::import_started`).
    counted: bool,
    /// The import's hold on the server's memory was given back (`give_back`).
    given_back: bool,
    _slot: OwnedSemaphorePermit,
    /// A Label Studio import's annotations, written by `commit` in the transaction that makes
    /// the items visible.
    annotations: Option<Annotations>,
}

/// Annotations to write with the items: the importing user, and where `commit` leaves the
/// outcome for the caller.
struct Annotations {
    list: Vec<ImportedAnnotation>,
    actor: i64,
    outcome: Arc<std::sync::OnceLock<AttachOutcome>>,
}

impl ImportJob {
    /// Takes a server-wide slot (503 if none) and registers the import (409 if the project
    /// has one running).
    pub async fn start(ctx: &ImportCtx, project_id: i64) -> AppResult<ImportJob> {
        if ctx.shutdown.is_cancelled() {
            return Err(shutting_down());
        }
        let slot = ctx.gate.try_enter()?;
        let id = imports::begin(&ctx.db, project_id).await?;
        crate::store::items::import_started(&ctx.db);
        let progress = Arc::new(Progress::default());
        let heartbeat = {
            let (db, progress) = (ctx.db.clone(), progress.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(HEARTBEAT);
                tick.tick().await;
                loop {
                    tick.tick().await;
                    let (l, i) = (progress.lines.load(Ordering::Relaxed), progress.inserted.load(Ordering::Relaxed));
                    if let Err(e) = imports::heartbeat(&db, id, l, i).await {
                        tracing::warn!(import = id, error = %e, "could not refresh the import's heartbeat");
                    }
                }
            })
        };
        Ok(ImportJob { db: ctx.db.clone(), id, project_id, progress, heartbeat, ended: false, counted: true, given_back: false, _slot: slot, annotations: None })
    }

    /// Has `commit` write these annotations (by `actor`) with the items, all or nothing; the
    /// outcome is in the returned cell once the import committed.
    pub fn with_annotations(&mut self, list: Vec<ImportedAnnotation>, actor: i64) -> Arc<std::sync::OnceLock<AttachOutcome>> {
        let outcome = Arc::new(std::sync::OnceLock::new());
        self.annotations = Some(Annotations { list, actor, outcome: outcome.clone() });
        outcome
    }

    /// Makes the import's rows visible (one short transaction).
    pub async fn commit(mut self, lines: i64, inserted: i64, max_id: i64) -> AppResult<()> {
        self.heartbeat.abort();
        let annotations = self.annotations.as_ref().map(|a| (a.list.as_slice(), a.actor));
        let res = imports::commit(&self.db, self.id, self.project_id, lines, inserted, max_id, annotations).await;
        // A failed commit changed nothing: Drop cleans the pending rows up.
        self.ended = res.is_ok();
        if let (Ok(Some(outcome)), Some(a)) = (&res, &self.annotations) {
            let _ = a.outcome.set(outcome.clone());
        }
        if self.ended {
            self.give_back().await;
        }
        res.map(|_| ())
    }

    /// Deletes the pending rows in short chunks and marks the import failed or cancelled.
    pub async fn abort(mut self, state: EndState, error: &str) -> AppResult<()> {
        self.heartbeat.abort();
        self.ended = true;
        let removed = remove(&self.db, self.id, self.project_id, state, error).await;
        self.give_back().await;
        removed
    }

    /// Ends the import's hold on memory before its caller answers: the write connection's
    /// larger page cache (`store::items::fit_writer_cache`) and what the allocator keeps free.
    /// Done from `Drop` on a task of its own, this often came after the answer, and the
    /// client's next request (the bench's export, 10–20 ms later) started with the import's
    /// 128 MiB cache still held (4 of 7 runs; docs/bench.md, session 32).
    async fn give_back(&mut self) {
        self.uncount();
        shrink_after(&self.db, self.id).await;
        self.given_back = true;
    }

    /// `store::items::import_ended`, once (a request dropped inside `give_back` leaves the rest
    /// to `Drop`).
    fn uncount(&mut self) {
        if std::mem::take(&mut self.counted) {
            crate::store::items::import_ended(&self.db);
        }
    }
}

impl Drop for ImportJob {
    fn drop(&mut self) {
        self.heartbeat.abort();
        if self.given_back {
            return;
        }
        self.uncount();
        let (db, id, pid, ended) = (self.db.clone(), self.id, self.project_id, self.ended);
        let Ok(rt) = tokio::runtime::Handle::try_current() else { return };
        rt.spawn(async move {
            if !ended {
                if let Err(e) = remove(&db, id, pid, EndState::Failed, "the import stopped unexpectedly").await {
                    tracing::error!(import = id, error = %e, "could not clean up an interrupted import");
                }
            }
            shrink_after(&db, id).await;
        });
    }
}

/// What an import's end gives back: the write connection's page cache, fitted to the imports
/// still running (`store::items::fit_writer_cache`), and the allocator's free memory (the
/// import's buffers and the cache's pages are freed by now; a million rows leave tens of MiB in
/// the allocator's arenas otherwise: an export after it started 20 MiB higher).
async fn shrink_after(db: &Db, import_id: i64) {
    if let Err(e) = crate::store::items::fit_writer_cache(db).await {
        tracing::warn!(import = import_id, error = %e, "could not shrink the writer's page cache after an import");
    }
    let _ = tokio::task::spawn_blocking(crate::heap::release_free_memory).await;
}

async fn remove(db: &Db, import_id: i64, project_id: i64, state: EndState, error: &str) -> AppResult<()> {
    let mut removed = 0u64;
    loop {
        let n = imports::delete_pending_chunk(db, project_id).await?;
        removed += n;
        if n == 0 {
            break;
        }
        // Let labelers' writes in between the chunks.
        tokio::task::yield_now().await;
    }
    imports::finish(db, import_id, state, error).await?;
    tracing::info!(import = import_id, project = project_id, removed, state = ?state, "import ended without committing");
    Ok(())
}

/// Cleans up imports whose server died: all running ones at start-up on SQLite (one server per
/// database file), those with a stale heartbeat otherwise (PostgreSQL may have other instances
/// importing right now).
pub async fn reap_stale(db: &Db, at_startup: bool) -> AppResult<usize> {
    let older_than = if at_startup && !db.is_postgres() { 0 } else { STALE_AFTER.as_millis() as i64 };
    let stale = imports::stale(db, older_than).await?;
    for &(id, pid) in &stale {
        remove(db, id, pid, EndState::Failed, "the server stopped during the import").await?;
    }
    Ok(stale.len())
}

pub fn shutting_down() -> AppError {
    AppError::Unavailable {
        message: "the server is shutting down; nothing was imported: send the file again in a minute".into(),
        retry_after_secs: RETRY_AFTER_SECS,
    }
}
