//! WAL checkpoints off the writer's path (SQLite).
//!
//! In WAL mode every commit appends the pages it changed to the `-wal` file, and a checkpoint
//! copies them back into the database file (then syncs both), after which the next write
//! transaction starts the WAL over. SQLite's default runs that checkpoint inside the COMMIT
//! that took the WAL past 1,000 pages, on the committing connection: here the one writer. So
//! the copy and its two fsyncs were part of whichever write crossed the line: a labeler's
//! commit group now and then, and every transaction of a large import. A 1,000,000-item import
//! writes ~40 MB of WAL per 250 ms transaction (two indexes take its rows at random places),
//! so each of its transactions paid a 40 MB checkpoint: 17 % of the writer's samples in a
//! profile, plus fsync, inside the time budget that sizes the import's transactions
//! (`import::pacing`).
//!
//! Now a task of its own, on a connection of its own, runs a PASSIVE checkpoint every
//! `PERIOD`. PASSIVE never waits for (nor blocks) the writer or the readers: it copies what is
//! committed and not read by an older snapshot, concurrently with the next transaction. The
//! WAL restarts exactly as before (the first write after a complete checkpoint), so it stays as
//! small as it was. The writer keeps an automatic checkpoint as a backstop, at
//! `WRITER_BACKSTOP_PAGES`: if the task ever falls behind (or stops), the WAL is still bounded.
//! Durability is unchanged: a commit's frames are in the WAL before it is acknowledged, and
//! `synchronous = NORMAL` syncs them at the checkpoint, on whichever connection runs it.
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use sqlx::SqlitePool;
use tokio_util::sync::{CancellationToken, DropGuard};

/// How often the task checkpoints. A checkpoint with nothing to copy is one statement that
/// reads the WAL's header; one with frames copies them and syncs.
pub const PERIOD: Duration = Duration::from_millis(100);

/// The writer's own automatic checkpoint (`PRAGMA wal_autocheckpoint`, in pages: 8 KiB in a
/// database created since session 20, `store::NEW_DATABASE_PAGE_SIZE`, 4 KiB before): a
/// backstop only, 16 times SQLite's default, so an import's transaction does not trigger it while
/// the task keeps up (one of a second's length, at a million items, may).
pub const WRITER_BACKSTOP_PAGES: u32 = 16_384;

/// The WAL's length in frames (pages) at the last checkpoint, and the checkpoints that failed
/// (`GET /metrics`): a WAL that stays long means checkpoints cannot keep up or an old reader
/// holds them back. One process serves one database, so globals, like `store::writer`'s.
pub static WAL_FRAMES: AtomicI64 = AtomicI64::new(0);
pub static CHECKPOINT_FAILURES: AtomicU64 = AtomicU64::new(0);

/// Keeps the checkpoint task running; it stops when the last clone of the `Db` holding this
/// is dropped.
#[derive(Clone, Debug)]
pub struct Checkpointer {
    _stop: Arc<DropGuard>,
}

impl Checkpointer {
    /// Starts the task on `pool` (a pool of one connection to the same database file, used by
    /// nobody else).
    pub fn start(pool: SqlitePool) -> Checkpointer {
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(PERIOD);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = token.cancelled() => break,
                    _ = tick.tick() => {}
                }
                if let Err(e) = checkpoint(&pool).await {
                    // A full disk or an unwritable file: the writer's requests report it (503);
                    // the next tick tries again, and the backstop bounds the WAL meanwhile.
                    CHECKPOINT_FAILURES.fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(error = %e, "WAL checkpoint failed");
                }
            }
            pool.close().await;
        });
        Checkpointer { _stop: Arc::new(stop.drop_guard()) }
    }
}

/// One PASSIVE checkpoint.
async fn checkpoint(pool: &SqlitePool) -> Result<(), sqlx::Error> {
    // (busy, frames in the WAL, frames copied into the database); -1s when not in WAL mode.
    let (_busy, frames, _copied): (i64, i64, i64) =
        sqlx::query_as("PRAGMA wal_checkpoint(PASSIVE)").fetch_one(pool).await?;
    WAL_FRAMES.store(frames.max(0), Ordering::Relaxed);
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use app::api_types::Role;
    use sqlx::Connection as _;

    use super::*;
    use crate::store::{users, Db};

    /// The users whose names start with `u` in a copy of the database file alone, as a crash
    /// that lost the WAL would leave it: what checkpoints have copied. `None`: not readable
    /// (no users table there yet, or a copy torn by a checkpoint writing at that moment).
    async fn users_in_the_file_alone(db_file: &std::path::Path, copy: &std::path::Path) -> Option<i64> {
        std::fs::copy(db_file, copy).ok()?;
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", copy.display())).await.ok()?;
        let n = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE username LIKE 'u%'").fetch_one(&mut conn).await.ok();
        let _ = conn.close().await;
        n
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn commits_reach_the_database_file_without_the_writer_checkpointing() {
        let dir = tempfile::tempdir().unwrap();
        let db_file = dir.path().join("c.db");
        let db = Db::connect(&format!("sqlite://{}", db_file.display())).await.unwrap();
        for i in 0..20 {
            users::create_user(&db, &format!("u{i}"), "x", Role::Labeler, None).await.unwrap();
        }
        // A few dozen pages: far below the writer's backstop (and SQLite's default of 1,000),
        // so only the task copies them.
        let deadline = Instant::now() + Duration::from_secs(10);
        let copy = dir.path().join("copy.db");
        loop {
            let _ = std::fs::remove_file(&copy);
            let seen = users_in_the_file_alone(&db_file, &copy).await;
            if seen == Some(20) {
                break;
            }
            assert!(Instant::now() < deadline, "after 10 s the database file alone holds {seen:?} of 20 users (None: not even the table)");
            tokio::time::sleep(PERIOD / 2).await;
        }
        let frames = WAL_FRAMES.load(Ordering::Relaxed);
        assert!(frames >= 0 && frames < WRITER_BACKSTOP_PAGES as i64, "{frames} frames");
    }
}
