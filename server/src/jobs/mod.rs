//! The one background job runner: work longer than a request (consensus refresh and the
//! agreement dashboard today; model training and big exports later).
//!
//! One runner task per server ([`spawn`], started by `serve`). Its state is the `jobs` table
//! (`crate::store::jobs`, whose invariants say what a claim guarantees), so several instances
//! on one PostgreSQL database share the queue and never run the same job twice.
//!
//! The loop: every refresh interval, queue a consensus job for each project whose annotations
//! changed since its last one (a cheap signature: count and newest `updated_at` of its
//! annotations, skips, gold items and the settings that change the numbers: method, level of
//! measurement, target alpha), and re-queue or
//! fail jobs whose runner died (stale heartbeat); then claim and run queued jobs one at a time.
//! A running job's heartbeat is refreshed every few seconds. On shutdown the running job is
//! cancelled between steps and put back in the queue, so the next start finishes it.
//!
//! Adding a kind: a variant in [`JobKind`], its name in `as_str`, whether a restart may
//! resume it, and its function in [`JobKind::run`].
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::store::jobs::{self, JobRow};
use crate::store::{agreement as agreement_store, now_ms, Db};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobKind {
    /// Consensus rows and the agreement dashboard of one project.
    Consensus,
    /// Applying a project's labeling rules: the rules source's pre-labels (issue 10).
    RulesApply,
    /// A training of one project's built-in model (`prelabels::model_job`).
    BuiltinModel,
    /// Freezing a dev set as a release (`crate::releases::job`).
    ReleaseFreeze,
}

impl JobKind {
    pub const ALL: &'static [JobKind] =
        &[JobKind::Consensus, JobKind::RulesApply, JobKind::BuiltinModel, JobKind::ReleaseFreeze];

    pub fn as_str(self) -> &'static str {
        match self {
            JobKind::Consensus => crate::agreement::KIND,
            JobKind::RulesApply => crate::prelabels::rules_run::APPLY_KIND,
            JobKind::BuiltinModel => crate::prelabels::model_job::KIND,
            JobKind::ReleaseFreeze => crate::releases::job::KIND,
        }
    }

    pub fn parse(s: &str) -> Option<JobKind> {
        Self::ALL.iter().copied().find(|k| k.as_str() == s)
    }

    /// Whether a job of this kind interrupted by a stopped runner may simply run again.
    pub fn resumable(self) -> bool {
        match self {
            // Recomputed from the data as it is then; its writes are upserts.
            JobKind::Consensus => true,
            // Recomputed from the rules as they are then; the pre-labels are replaced in one
            // transaction, so an interrupted apply left the previous ones whole.
            JobKind::RulesApply => true,
            // Redone from the start: its writes are upserts stamped with the run's start, and
            // the previous run's rows are dropped only at its very end.
            JobKind::BuiltinModel => true,
            // Runs again from the start; the release is one transaction, and a rerun whose
            // release was committed finds it by its job id instead of writing a twin.
            JobKind::ReleaseFreeze => true,
        }
    }

    /// Runs the job; the result text is stored with it.
    async fn run(self, ctx: &JobCtx, job: &JobRow) -> anyhow::Result<String> {
        match self {
            JobKind::Consensus => {
                let pid = job.project_id.ok_or_else(|| anyhow::anyhow!("a consensus job needs a project"))?;
                crate::agreement::refresh(ctx, pid).await
            }
            JobKind::RulesApply => {
                let pid = job.project_id.ok_or_else(|| anyhow::anyhow!("a rules job needs a project"))?;
                crate::prelabels::rules_run::apply_job(ctx, pid, &job.params).await
            }
            JobKind::BuiltinModel => {
                let pid = job.project_id.ok_or_else(|| anyhow::anyhow!("a model training needs a project"))?;
                crate::prelabels::model_job::run(ctx, pid, job.id).await
            }
            JobKind::ReleaseFreeze => crate::releases::job::run(ctx, job, &ctx.data_dir).await,
        }
    }
}

#[derive(Debug, Clone)]
pub struct JobsConfig {
    /// How often changed projects get a consensus refresh (`--refresh-interval-secs`).
    pub refresh_interval: Duration,
    /// A running job whose heartbeat is older than this has lost its runner (`--job-stale-secs`).
    pub stale_after: Duration,
    /// The server's data directory (image thumbnails, for the release freeze's leakage check).
    pub data_dir: std::path::PathBuf,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig { refresh_interval: Duration::from_secs(15), stale_after: Duration::from_secs(60), data_dir: Default::default() }
    }
}

/// What a running job can reach.
pub struct JobCtx {
    pub db: Db,
    job_id: i64,
    cancel: CancellationToken,
    pub data_dir: std::path::PathBuf,
}

/// The job stopped because the server is shutting down.
#[derive(Debug, thiserror::Error)]
#[error("the server is shutting down")]
pub struct Cancelled;

impl JobCtx {
    /// The running job's id.
    pub fn job_id(&self) -> i64 {
        self.job_id
    }

    /// Records progress (and so the heartbeat).
    pub async fn progress(&self, done: i64, total: i64) -> anyhow::Result<()> {
        Ok(jobs::progress(&self.db, self.job_id, done, total).await?)
    }

    /// Err([`Cancelled`]) once shutdown began: jobs call it between steps.
    pub fn check_cancelled(&self) -> anyhow::Result<()> {
        if self.cancel.is_cancelled() {
            Err(Cancelled.into())
        } else {
            Ok(())
        }
    }
}

/// Starts the runner; it stops (and puts back its running job) when `shutdown` is cancelled.
pub fn spawn(db: Db, shutdown: CancellationToken, config: JobsConfig) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut next_refresh = tokio::time::Instant::now();
        while !shutdown.is_cancelled() {
            if tokio::time::Instant::now() >= next_refresh {
                next_refresh = tokio::time::Instant::now() + config.refresh_interval;
                if let Err(e) = recover_stale(&db, config.stale_after).await {
                    tracing::warn!(error = %e, "could not check for stale jobs");
                }
                if let Err(e) = enqueue_changed(&db).await {
                    tracing::warn!(error = %e, "could not check projects for changed annotations");
                }
                if let Err(e) = crate::prelabels::model_job::enqueue_due(&db).await {
                    tracing::warn!(error = %e, "could not check projects for a due model training");
                }
            }
            loop {
                if shutdown.is_cancelled() {
                    break;
                }
                match next_job(&db).await {
                    Ok(Some(job)) => run_one(&db, job, &shutdown, &config).await,
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "could not claim a job");
                        break;
                    }
                }
            }
            let poll = Duration::from_secs(1).min(config.refresh_interval);
            tokio::select! {
                _ = shutdown.cancelled() => {}
                _ = tokio::time::sleep(poll) => {}
            }
        }
    })
}

/// Claims a queued job, looking with a read first so an idle queue never takes the writer.
async fn next_job(db: &Db) -> Result<Option<JobRow>, sqlx::Error> {
    if !jobs::any_queued(db).await? {
        return Ok(None);
    }
    jobs::claim(db).await
}

async fn run_one(db: &Db, job: JobRow, shutdown: &CancellationToken, config: &JobsConfig) {
    let stale_after = config.stale_after;
    let Some(kind) = JobKind::parse(&job.kind) else {
        let _ = jobs::fail(db, job.id, &format!("unknown job kind {:?} (from a newer server?)", job.kind)).await;
        return;
    };
    let ctx = JobCtx { db: db.clone(), job_id: job.id, cancel: shutdown.child_token(), data_dir: config.data_dir.clone() };
    // The heartbeat, a few times per stale period, whatever the job is doing.
    let beat = {
        let (db, id) = (db.clone(), job.id);
        let every = (stale_after / 4).clamp(Duration::from_millis(200), Duration::from_secs(5));
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let _ = jobs::heartbeat(&db, id).await;
            }
        })
    };
    let started = now_ms();
    let outcome = tokio::select! {
        r = kind.run(&ctx, &job) => r,
        _ = shutdown.cancelled() => Err(Cancelled.into()),
    };
    beat.abort();
    let recorded = match outcome {
        Ok(result) => {
            tracing::info!(job = job.id, kind = job.kind, project = job.project_id, ms = now_ms() - started, "job done");
            jobs::finish(db, &job, &result).await
        }
        Err(e) if e.is::<Cancelled>() => {
            tracing::info!(job = job.id, kind = job.kind, "job interrupted by shutdown; queued again");
            jobs::requeue(db, job.id, "interrupted by a shutdown").await
        }
        Err(e) => {
            tracing::warn!(job = job.id, kind = job.kind, error = %e, "job failed");
            jobs::fail(db, job.id, &format!("{e:#}")).await
        }
    };
    if let Err(e) = recorded {
        tracing::warn!(job = job.id, error = %e, "could not record the job's outcome");
    }
    // A job's working set is freed when it ends, but glibc keeps it resident in its arenas: a
    // consensus refresh of 73,000 annotations peaked 55 MiB and left 47 MiB of the server's own
    // memory behind, under whatever ran next (an export, docs/bench.md, session 28).
    let _ = tokio::task::spawn_blocking(crate::heap::release_free_memory).await;
}

/// Re-queues (resumable kinds) or fails the running jobs whose runner stopped beating.
pub async fn recover_stale(db: &Db, stale_after: Duration) -> Result<usize, sqlx::Error> {
    let stale = jobs::stale_running(db, now_ms() - stale_after.as_millis() as i64).await?;
    for job in &stale {
        match JobKind::parse(&job.kind) {
            Some(kind) if kind.resumable() => {
                tracing::info!(job = job.id, kind = job.kind, "resuming a job whose runner stopped");
                jobs::requeue(db, job.id, "its runner stopped").await?
            }
            _ => {
                tracing::warn!(job = job.id, kind = job.kind, "failing a job whose runner stopped");
                jobs::fail(db, job.id, "interrupted: the server running it stopped, and this kind cannot resume").await?
            }
        }
    }
    Ok(stale.len())
}

/// Queues a consensus job for every project whose change signature differs from the one its
/// newest consensus job recorded (and that has no job queued or running).
pub async fn enqueue_changed(db: &Db) -> anyhow::Result<usize> {
    let mut queued = 0;
    for sig in agreement_store::change_signatures(db).await? {
        if sig.annotations == 0 && sig.skips == 0 {
            continue;
        }
        let params = serde_json::to_string(&sig)?;
        let latest = jobs::latest(db, JobKind::Consensus.as_str(), sig.project_id).await?;
        let unchanged = latest.as_ref().is_some_and(|j| matches!(j.state.as_str(), "queued" | "running") || j.params == params);
        if !unchanged {
            jobs::enqueue(db, JobKind::Consensus.as_str(), Some(sig.project_id), &params).await?;
            queued += 1;
        }
    }
    Ok(queued)
}
