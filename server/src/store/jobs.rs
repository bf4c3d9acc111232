//! The background job runner's state (`jobs` table, migration 0005).
//!
//! Invariants:
//! - At most one job per (kind, project) is `running` (unique index `jobs_one_running`,
//!   migration 0009). A claim that would break it fails and claims nothing.
//! - At most one job per (kind, project) is `queued`: [`enqueue`] returns the queued one
//!   instead of adding a twin, so a burst of changes costs one refresh.
//! - A `running` job's `heartbeat_at` is at most a few seconds old while a runner works on
//!   it; one older than the stale limit belongs to a runner that died, and
//!   [`recover_stale`] re-queues it (resumable kinds) or fails it.
use super::{now_ms, BeginWrite, Db};
use crate::{on_read, on_write};
use app::api_types::JobInfo;

#[derive(sqlx::FromRow, Debug, Clone)]
pub struct JobRow {
    pub id: i64,
    pub kind: String,
    pub project_id: Option<i64>,
    pub state: String,
    pub progress_done: i64,
    pub progress_total: i64,
    pub params: String,
    pub error: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub heartbeat_at: Option<i64>,
    pub finished_at: Option<i64>,
}

impl From<JobRow> for JobInfo {
    fn from(j: JobRow) -> JobInfo {
        JobInfo {
            id: j.id,
            kind: j.kind,
            state: j.state,
            progress_done: j.progress_done,
            progress_total: j.progress_total,
            error: j.error,
            created_at: j.created_at,
            started_at: j.started_at,
            heartbeat_at: j.heartbeat_at,
            finished_at: j.finished_at,
        }
    }
}

const COLUMNS: &str = "id, kind, project_id, state, progress_done, progress_total, params, error, \
                       created_at, started_at, heartbeat_at, finished_at";

/// Queues a job unless one of the same kind and project is already queued; returns the id of
/// the queued job (the new or the existing one).
pub async fn enqueue(db: &Db, kind: &str, project_id: Option<i64>, params: &str) -> Result<i64, sqlx::Error> {
    on_write!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let existing: Option<i64> = sqlx::query_scalar(
            "SELECT id FROM jobs WHERE kind = $1 AND project_id IS NOT DISTINCT FROM $2 AND state = 'queued' LIMIT 1",
        )
        .bind(kind)
        .bind(project_id)
        .fetch_optional(&mut *tx)
        .await?;
        let id = match existing {
            Some(id) => {
                // The newest request's parameters win (they describe the newest data).
                sqlx::query("UPDATE jobs SET params = $1 WHERE id = $2").bind(params).bind(id).execute(&mut *tx).await?;
                id
            }
            None => {
                sqlx::query_scalar(
                    "INSERT INTO jobs (kind, project_id, state, params, created_at) VALUES ($1, $2, 'queued', $3, $4) RETURNING id",
                )
                .bind(kind)
                .bind(project_id)
                .bind(params)
                .bind(now_ms())
                .fetch_one(&mut *tx)
                .await?
            }
        };
        tx.commit().await?;
        Ok(id)
    })
}

/// Claims the oldest queued job whose (kind, project) has nothing running, marking it
/// running. On PostgreSQL the row is taken `FOR UPDATE SKIP LOCKED`, so two instances never
/// claim the same job; the unique index makes a claim racing a twin fail, which counts as
/// nothing claimed.
pub async fn claim(db: &Db) -> Result<Option<JobRow>, sqlx::Error> {
    let now = now_ms();
    let pick = "SELECT j.id FROM jobs j WHERE j.state = 'queued' AND NOT EXISTS (
                    SELECT 1 FROM jobs r WHERE r.state = 'running' AND r.kind = j.kind
                      AND r.project_id IS NOT DISTINCT FROM j.project_id)
                ORDER BY j.id LIMIT 1";
    let claimed: Result<Option<JobRow>, sqlx::Error> = on_write!(db, pool, is_pg => {
        let lock = if is_pg { " FOR UPDATE SKIP LOCKED" } else { "" };
        sqlx::query_as(&format!(
            "UPDATE jobs SET state = 'running', started_at = $1, heartbeat_at = $1
             WHERE id = ({pick}{lock}) AND state = 'queued'
             RETURNING {COLUMNS}"
        ))
        .bind(now)
        .fetch_optional(pool)
        .await
    });
    match claimed {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(None),
        other => other,
    }
}

/// Records progress and proves the runner is alive.
pub async fn progress(db: &Db, id: i64, done: i64, total: i64) -> Result<(), sqlx::Error> {
    on_write!(db, pool => {
        sqlx::query("UPDATE jobs SET progress_done = $1, progress_total = $2, heartbeat_at = $3 WHERE id = $4 AND state = 'running'")
            .bind(done)
            .bind(total)
            .bind(now_ms())
            .bind(id)
            .execute(pool)
            .await?;
        Ok(())
    })
}

pub async fn heartbeat(db: &Db, id: i64) -> Result<(), sqlx::Error> {
    on_write!(db, pool => {
        sqlx::query("UPDATE jobs SET heartbeat_at = $1 WHERE id = $2 AND state = 'running'")
            .bind(now_ms())
            .bind(id)
            .execute(pool)
            .await?;
        Ok(())
    })
}

/// Marks a job done with its result, and drops the results of the same (kind, project)'s
/// older jobs: only the newest result is ever read, and one per refresh would pile up.
pub async fn finish(db: &Db, job: &JobRow, result: &str) -> Result<(), sqlx::Error> {
    let now = now_ms();
    on_write!(db, pool => {
        let mut tx = pool.begin_write().await?;
        sqlx::query("UPDATE jobs SET state = 'done', result = $1, finished_at = $2, heartbeat_at = $2 WHERE id = $3")
            .bind(result)
            .bind(now)
            .bind(job.id)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE jobs SET result = NULL WHERE kind = $1 AND project_id IS NOT DISTINCT FROM $2 AND id < $3 AND result IS NOT NULL",
        )
        .bind(&job.kind)
        .bind(job.project_id)
        .bind(job.id)
        .execute(&mut *tx)
        .await?;
        // A week of finished jobs is plenty of history for the jobs list.
        sqlx::query("DELETE FROM jobs WHERE state IN ('done', 'failed') AND finished_at < $1 AND id < $2")
            .bind(now - 7 * 24 * 3600 * 1000)
            .bind(job.id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    })
}

pub async fn fail(db: &Db, id: i64, error: &str) -> Result<(), sqlx::Error> {
    on_write!(db, pool => {
        sqlx::query("UPDATE jobs SET state = 'failed', error = $1, finished_at = $2 WHERE id = $3")
            .bind(error)
            .bind(now_ms())
            .bind(id)
            .execute(pool)
            .await?;
        Ok(())
    })
}

/// Puts a running job back in the queue (shutdown interrupted it; the next runner redoes it),
/// unless a twin was queued meanwhile, in which case that twin covers it and this one fails.
pub async fn requeue(db: &Db, id: i64, why: &str) -> Result<(), sqlx::Error> {
    on_write!(db, pool => {
        let mut tx = pool.begin_write().await?;
        let twin: Option<i64> = sqlx::query_scalar(
            "SELECT q.id FROM jobs q JOIN jobs r ON r.kind = q.kind AND r.project_id IS NOT DISTINCT FROM q.project_id
             WHERE r.id = $1 AND q.state = 'queued' LIMIT 1",
        )
        .bind(id)
        .fetch_optional(&mut *tx)
        .await?;
        if twin.is_some() {
            sqlx::query("UPDATE jobs SET state = 'failed', error = $1, finished_at = $2 WHERE id = $3")
                .bind(format!("{why}; a newer queued job replaces it"))
                .bind(now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?;
        } else {
            sqlx::query(
                "UPDATE jobs SET state = 'queued', started_at = NULL, heartbeat_at = NULL, progress_done = 0 WHERE id = $1",
            )
            .bind(id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    })
}

/// Running jobs whose heartbeat is older than `stale_before` (ms): their runner died.
pub async fn stale_running(db: &Db, stale_before: i64) -> Result<Vec<JobRow>, sqlx::Error> {
    on_read!(db, pool => {
        sqlx::query_as(&format!(
            "SELECT {COLUMNS} FROM jobs WHERE state = 'running' AND COALESCE(heartbeat_at, 0) < $1 ORDER BY id"
        ))
        .bind(stale_before)
        .fetch_all(pool)
        .await
    })
}

/// The project's most recent jobs, newest first.
pub async fn recent(db: &Db, project_id: i64, limit: i64) -> Result<Vec<JobRow>, sqlx::Error> {
    on_read!(db, pool => {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM jobs WHERE project_id = $1 ORDER BY id DESC LIMIT $2"))
            .bind(project_id)
            .bind(limit)
            .fetch_all(pool)
            .await
    })
}

/// The newest job of a kind for a project (any state), for change detection.
pub async fn latest(db: &Db, kind: &str, project_id: i64) -> Result<Option<JobRow>, sqlx::Error> {
    on_read!(db, pool => {
        sqlx::query_as(&format!("SELECT {COLUMNS} FROM jobs WHERE kind = $1 AND project_id = $2 ORDER BY id DESC LIMIT 1"))
            .bind(kind)
            .bind(project_id)
            .fetch_optional(pool)
            .await
    })
}

/// The result of the newest finished job of a kind for a project, with when it finished.
pub async fn latest_result(db: &Db, kind: &str, project_id: i64) -> Result<Option<(String, i64)>, sqlx::Error> {
    on_read!(db, pool => {
        sqlx::query_as(
            "SELECT result, finished_at FROM jobs
             WHERE kind = $1 AND project_id = $2 AND state = 'done' AND result IS NOT NULL
             ORDER BY id DESC LIMIT 1",
        )
        .bind(kind)
        .bind(project_id)
        .fetch_optional(pool)
        .await
    })
}

/// Whether a job of the kind is queued or running for the project.
pub async fn pending(db: &Db, kind: &str, project_id: i64) -> Result<bool, sqlx::Error> {
    let n: i64 = on_read!(db, pool => {
        sqlx::query_scalar("SELECT COUNT(*) FROM jobs WHERE kind = $1 AND project_id = $2 AND state IN ('queued', 'running')")
            .bind(kind)
            .bind(project_id)
            .fetch_one(pool)
            .await?
    });
    Ok(n > 0)
}

/// Whether any job waits in the queue (a read: an idle runner never takes the writer).
pub async fn any_queued(db: &Db) -> Result<bool, sqlx::Error> {
    let found: Option<i64> = on_read!(db, pool => {
        sqlx::query_scalar("SELECT id FROM jobs WHERE state = 'queued' LIMIT 1").fetch_optional(pool).await?
    });
    Ok(found.is_some())
}
