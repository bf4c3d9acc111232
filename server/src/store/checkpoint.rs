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
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
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

/// How often the WAL's new frames, and the pages the checkpoints copied into the database
/// file, are synced to the disk by a thread of their own.
///
/// Under continuous labeling the WAL starts over only at the writer's backstop checkpoint (a
/// writer that commits every few milliseconds rarely begins with every frame copied), and that
/// checkpoint syncs on the writer's thread, while all labelers wait (docs/bench.md, session 26:
/// next p99 25–30 ms on disk, 10 ms on tmpfs):
/// - the WAL: every frame written since its last sync, tens of megabytes. Synced every 10 ms
///   beside it, the backstop finds little left to flush: next p99 20.5–20.9 ms, and 44.8–46.7
///   beside an import (5 ms began to cost throughput). Syncing the WAL more often only makes
///   it more durable.
/// - the database file: every page the PASSIVE checkpoints copied into it since the WAL last
///   started over, since SQLite syncs the database only when a checkpoint reaches the WAL's
///   end, which under load only the backstop does. Synced every 10 ms too (session 37, ten
///   alternating pairs): submit p99 18.6 ms against 22.1 (means), max 29.5 against 35.2
///   (medians); labels a second the same within the host's spread. A page synced early is one
///   whose frame is still in the WAL, so a crash before the backstop replays it as before.
pub const SYNC_PERIOD: Duration = Duration::from_millis(10);

/// The syncs of the WAL and of the database file done by `FileSyncer` (`GET /metrics`).
pub static WAL_SYNCS: AtomicU64 = AtomicU64::new(0);
pub static DATABASE_SYNCS: AtomicU64 = AtomicU64::new(0);

/// Keeps the checkpoint task and the syncing thread running; they stop when the last clone of
/// the `Db` holding this is dropped.
#[derive(Clone, Debug)]
pub struct Checkpointer {
    _stop: Arc<DropGuard>,
    _syncer: Arc<FileSyncer>,
}

/// Syncs the WAL and the database file every `SYNC_PERIOD`, each when it changed since its
/// last sync (an idle server syncs nothing); stops when dropped.
#[derive(Debug)]
struct FileSyncer {
    stop: Arc<AtomicBool>,
    /// This syncer's syncs of either file (the globals count every database's): what the unit
    /// tests read.
    #[cfg_attr(not(test), allow(dead_code))]
    syncs: Arc<AtomicU64>,
}

impl FileSyncer {
    /// Syncs `db_file` and its WAL (`db_file` + `-wal`).
    fn start(db_file: &std::path::Path) -> FileSyncer {
        let mut wal = db_file.as_os_str().to_owned();
        wal.push("-wal");
        let wal = PathBuf::from(wal);
        let db_file = db_file.to_path_buf();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let syncs = Arc::new(AtomicU64::new(0));
        let counted = syncs.clone();
        let spawned = std::thread::Builder::new().name("file-sync".into()).spawn(move || {
            let (mut wal_synced_at, mut db_synced_at) = (None, None);
            let mut database: Option<DatabaseFile> = None;
            // Only the time it was last changed is looked up each time (`stat` opens nothing).
            let changed = |path: &PathBuf, synced_at: &Option<std::time::SystemTime>| {
                let modified = std::fs::metadata(path).ok()?.modified().ok();
                (modified.is_none() || modified != *synced_at).then_some(modified)
            };
            while !stopped.load(Ordering::Relaxed) {
                std::thread::sleep(SYNC_PERIOD);
                // A failure to sync (a full or failing disk) is the writer's to report; the
                // checkpoints sync both files anyway.
                if let Some(modified) = changed(&wal, &wal_synced_at) {
                    // Opened only to be synced: SQLite deletes the WAL when its last connection
                    // closes and makes a new one with the next. (It holds no lock on the WAL
                    // file itself, so closing this descriptor costs it none: see below.)
                    if std::fs::File::open(&wal).and_then(|f| f.sync_data()).is_ok() {
                        WAL_SYNCS.fetch_add(1, Ordering::Relaxed);
                        counted.fetch_add(1, Ordering::Relaxed);
                        wal_synced_at = modified;
                    }
                }
                if let Some(modified) = changed(&db_file, &db_synced_at) {
                    if database.is_none() {
                        database = DatabaseFile::open(&db_file);
                    }
                    if database.as_ref().is_some_and(DatabaseFile::sync) {
                        DATABASE_SYNCS.fetch_add(1, Ordering::Relaxed);
                        counted.fetch_add(1, Ordering::Relaxed);
                        db_synced_at = modified;
                    }
                }
            }
        });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start the WAL's and database's syncing thread; checkpoints still sync them");
        }
        FileSyncer { stop, syncs }
    }
}

/// The database file, synced through a connection of SQLite's own, never through a descriptor
/// of ours: SQLite's locks on the database file are POSIX locks, which belong to the process,
/// and closing *any* descriptor of the file drops all of them. Another process's connection
/// (the `mirrorset` CLI, a `sqlite3` shell) would then take itself for the last one and, as it
/// closes, checkpoint and delete the WAL under the server's feet. (A first version of this
/// syncer did that: five API tests whose test process touches the database failed.) SQLite's
/// own file keeps its descriptor open until the process holds no lock on the file. The
/// connection runs no statement, so it never reads the file, takes a lock or opens the WAL.
struct DatabaseFile(rusqlite::Connection);

impl DatabaseFile {
    /// `None` while there is no such file (read-only: this never creates one).
    fn open(path: &std::path::Path) -> Option<DatabaseFile> {
        use rusqlite::OpenFlags;
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        rusqlite::Connection::open_with_flags(path, flags).ok().map(DatabaseFile)
    }

    /// Syncs the file (`fdatasync`, as SQLite's own syncs): the pages any connection of any
    /// process wrote to it reach the disk.
    fn sync(&self) -> bool {
        use rusqlite::ffi;
        let mut file: *mut ffi::sqlite3_file = std::ptr::null_mut();
        // SAFETY: the handle is this open connection's, used on this thread only (it was opened
        // without SQLite's mutex, and the syncer's thread owns it); the file pointer SQLite
        // answers lives as long as the connection, which outlives this call.
        unsafe {
            let rc = ffi::sqlite3_file_control(
                self.0.handle(),
                c"main".as_ptr(),
                ffi::SQLITE_FCNTL_FILE_POINTER,
                (&mut file as *mut *mut ffi::sqlite3_file).cast(),
            );
            if rc != ffi::SQLITE_OK || file.is_null() || (*file).pMethods.is_null() {
                return false;
            }
            match (*(*file).pMethods).xSync {
                Some(sync) => sync(file, ffi::SQLITE_SYNC_NORMAL) == ffi::SQLITE_OK,
                None => false,
            }
        }
    }
}

impl Drop for FileSyncer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

impl Checkpointer {
    /// Starts the task on `pool` (a pool of one connection to the same database file, used by
    /// nobody else), and the syncing of `db_file` and its WAL.
    pub fn start(pool: SqlitePool, db_file: &std::path::Path) -> Checkpointer {
        let syncer = Arc::new(FileSyncer::start(db_file));
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
        Checkpointer { _stop: Arc::new(stop.drop_guard()), _syncer: syncer }
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

    /// A database's WAL, and its file once a checkpoint copied the write there, are synced
    /// after a write (the globals count every database of the process, so this only looks for
    /// more; the exact counts are the next test's).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_wal_and_the_database_file_are_synced_after_writes() {
        let dir = tempfile::tempdir().unwrap();
        let db_file = dir.path().join("s.db");
        let db = Db::connect(&format!("sqlite://{}", db_file.display())).await.unwrap();
        let before = (WAL_SYNCS.load(Ordering::Relaxed), DATABASE_SYNCS.load(Ordering::Relaxed));
        users::create_user(&db, "w1", "x", Role::Labeler, None).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while WAL_SYNCS.load(Ordering::Relaxed) == before.0 || DATABASE_SYNCS.load(Ordering::Relaxed) == before.1 {
            assert!(Instant::now() < deadline, "within 10 s of a write, no sync of the WAL or of the database file");
            tokio::time::sleep(SYNC_PERIOD).await;
        }
    }

    /// Each file is synced once after each change, not again while it stays the same, and
    /// neither at all once the syncer was dropped.
    #[test]
    fn an_unchanged_file_is_not_synced_again_and_a_dropped_syncer_stops() {
        let dir = tempfile::tempdir().unwrap();
        let (db_file, wal) = (dir.path().join("x.db"), dir.path().join("x.db-wal"));
        let syncs_after = |syncer: &FileSyncer, periods: u32| {
            std::thread::sleep(SYNC_PERIOD * periods);
            syncer.syncs.load(Ordering::Relaxed)
        };
        // On a loaded machine the thread may take a while to get its turn.
        let wait_for = |syncer: &FileSyncer, n: u64| {
            let deadline = std::time::Instant::now() + Duration::from_secs(10);
            while syncer.syncs.load(Ordering::Relaxed) < n {
                assert!(std::time::Instant::now() < deadline, "sync {n} did not come within 10 s");
                std::thread::sleep(SYNC_PERIOD);
            }
        };
        let syncer = FileSyncer::start(&db_file);
        assert_eq!(syncs_after(&syncer, 5), 0, "no file yet");
        std::fs::write(&wal, b"frames").unwrap();
        wait_for(&syncer, 1);
        assert_eq!(syncs_after(&syncer, 10), 1, "the WAL synced once, then left alone");
        std::fs::write(&db_file, b"pages").unwrap();
        wait_for(&syncer, 2);
        assert_eq!(syncs_after(&syncer, 10), 2, "the database file synced once, the WAL not again");
        std::fs::write(&wal, b"more frames").unwrap();
        wait_for(&syncer, 3);
        assert_eq!(syncs_after(&syncer, 10), 3, "the WAL synced once more after a change");
        let syncs = syncer.syncs.clone();
        drop(syncer);
        std::thread::sleep(SYNC_PERIOD * 3);
        std::fs::write(&wal, b"written after the drop").unwrap();
        std::fs::write(&db_file, b"written after the drop").unwrap();
        std::thread::sleep(SYNC_PERIOD * 10);
        assert_eq!(syncs.load(Ordering::Relaxed), 3, "a dropped syncer syncs nothing");
    }
}
