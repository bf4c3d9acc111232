//! The store layer: every SQL statement of the server lives under this module.
//!
//! SQLite (the embedded default) and PostgreSQL (the scale-out path) run the same SQL text:
//! both accept `$1` placeholders, `RETURNING`, `ON CONFLICT`, and the schemas use only types
//! that decode alike (integers as i64, reals as f64, text, JSON kept as text). The macros
//! below compile each function body once per backend, so there is one implementation.
//!
//! SQLite has one writer at a time. Rather than let connections race for the write lock and
//! fail with SQLITE_BUSY, all writes go through a pool of exactly one connection; reads use a
//! separate pool and, with WAL, never wait for writes. The labeling loop's writes (hand-out,
//! submission, skip) go through `on_group_statements!` instead: on SQLite a writer task commits
//! whatever of them queued in one transaction (`store::writer`, group commit).
pub mod agreement;
pub mod assignment;
pub mod audit;
pub mod backup;
pub mod batch;
pub mod checkpoint;
pub mod devsets;
pub mod export;
pub mod gathered_wal;
pub mod imports;
pub mod imported_annotations;
pub mod inline_reader;
pub mod items;
pub mod jobs;
pub mod lease_book;
pub mod model;
pub mod prelabel_rules;
pub mod prelabels;
pub mod projects;
pub mod releases;
pub mod review;
pub mod server_lock;
pub mod statements;
#[cfg(test)]
mod test_db;
pub mod tokens;
pub mod users;
pub mod writer;

use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous, SqliteTransactionManager,
};
use sqlx::{ConnectOptions as _, Connection as _, TransactionManager as _};

#[derive(Clone, Debug)]
pub enum Db {
    /// `writer` borrows `write`'s one connection for its commit groups (`store::writer`).
    /// `checkpointer` copies the WAL into the database file off the writer's path
    /// (`store::checkpoint`).
    /// `inline` reads in place on the caller's thread (`store::inline_reader`).
    /// `imports` counts the imports running, which want a larger page cache on the writer
    /// (`store::items::fit_writer_cache`).
    /// `leases` holds the labeling leases (`store::lease_book`): the writer tells it when its
    /// transactions end, the inline readers read it in SQL.
    Sqlite {
        read: SqlitePool,
        write: SqlitePool,
        writer: writer::GroupWriter,
        checkpointer: checkpoint::Checkpointer,
        inline: inline_reader::InlineReaders,
        imports: std::sync::Arc<std::sync::atomic::AtomicUsize>,
        leases: std::sync::Arc<lease_book::LeaseBook>,
    },
    Postgres(PgPool),
}

/// Runs `$body` with `$pool` bound to the backend's pool for reads.
#[macro_export]
macro_rules! on_read {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { read: $pool, .. } => $body,
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
}

/// Runs `$body` with `$pool` bound to the backend's pool for writes, and `$is_pg` telling
/// which backend it is (for the few statements that only one of them needs). On SQLite the
/// body is counted in `SQLITE_WRITES_IN_FLIGHT` while it runs (every body awaits its writes
/// inside the macro).
#[macro_export]
macro_rules! on_write {
    ($db:expr, $pool:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { write: $pool, .. } => {
                let _in_flight = $crate::store::SqliteWriteInFlight::enter();
                let _other = $crate::store::writer::OtherWrite::enter();
                $body
            }
            $crate::store::Db::Postgres($pool) => $body,
        }
    };
    ($db:expr, $pool:ident, $is_pg:ident => $body:expr) => {
        match $db {
            $crate::store::Db::Sqlite { write: $pool, .. } => {
                let _in_flight = $crate::store::SqliteWriteInFlight::enter();
                let _other = $crate::store::writer::OtherWrite::enter();
                let $is_pg = false;
                $body
            }
            $crate::store::Db::Postgres($pool) => {
                let $is_pg = true;
                $body
            }
        }
    };
}

/// SQLite write operations (`on_write!` and `on_group_statements!` bodies) waiting for the single writer connection or
/// running on it: the writer's queue depth plus the one it is serving. `GET /metrics` shows it
/// as `mirrorset_sqlite_writes_in_flight`. One process serves one database, so one global.
pub static SQLITE_WRITES_IN_FLIGHT: std::sync::atomic::AtomicI64 = std::sync::atomic::AtomicI64::new(0);

/// Counts one write in `SQLITE_WRITES_IN_FLIGHT` until dropped (also on `?`, early return or
/// a cancelled request).
pub struct SqliteWriteInFlight(());

impl SqliteWriteInFlight {
    pub fn enter() -> SqliteWriteInFlight {
        SQLITE_WRITES_IN_FLIGHT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        SqliteWriteInFlight(())
    }
}

impl Drop for SqliteWriteInFlight {
    fn drop(&mut self) {
        SQLITE_WRITES_IN_FLIGHT.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// How much of the SQLite file each reader maps (`PRAGMA mmap_size`): address space, not
/// memory; pages are shared with the OS page cache.
pub(crate) const READER_MMAP_BYTES: u64 = 1 << 30;

/// The page size of a database this creates (`PRAGMA page_size`; a database that exists keeps
/// its own: in WAL mode only a VACUUM into a new file could change it). 8 KiB instead of
/// SQLite's 4 KiB: a million-item import inserts at random places of two large indexes (the
/// content hash, the stream rank), and with pages twice as large their b-trees have fewer
/// pages to split and write to the WAL at each commit. 1,000,000 items imported in 22.1 s
/// against 24.3 s on average over nine alternating runs each (single runs spread 20–27 s), 16
/// KiB no better than 8; the labeling loop the same within the spread (docs/bench.md, session 20).
pub(crate) const NEW_DATABASE_PAGE_SIZE: u32 = 8192;

/// PostgreSQL: a pooled connection idle for longer than this is pinged before it is used
/// (`Db::connect`).
const PG_PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// The writer connection's page cache (`PRAGMA cache_size`, in KiB); larger while an import
/// runs (`store::items::IMPORT_WRITER_CACHE_KIB`).
pub(crate) const WRITER_CACHE_KIB: u64 = 32 * 1024;

impl Db {
    /// SQLite's lease book (`store::lease_book`); `None` on PostgreSQL, whose leases are a table.
    pub fn lease_book(&self) -> Option<&std::sync::Arc<lease_book::LeaseBook>> {
        match self {
            Db::Sqlite { leases, .. } => Some(leases),
            Db::Postgres(_) => None,
        }
    }

    /// Connects to `sqlite://path` (created if missing) or `postgres://...`, and migrates.
    pub async fn connect(url: &str) -> anyhow::Result<Db> {
        let db = if url.starts_with("sqlite:") {
            gathered_wal::register()?;
            let opts = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Normal)
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(10))
                .page_size(NEW_DATABASE_PAGE_SIZE);
            // The one writer keeps a larger page cache: nobody else writes, so it is never
            // invalidated, and an import inserts at random places of several large indexes
            // (content hash, rank), which with the default 2 MiB re-read pages from the OS.
            let write = SqlitePoolOptions::new()
                .max_connections(1)
                // A COMMIT the storage refused (disk full, an unwritable file) leaves SQLite
                // with the transaction rolled back but sqlx still counting it open, and then
                // every later BEGIN on the one write connection fails: the writer would never
                // recover when the disk does (found by `tests/api/storage_faults.rs`). Such a
                // connection is closed on release and the pool opens a fresh one. The ping
                // first runs the rollback a dropped transaction left queued.
                .after_release(|conn, _meta| {
                    Box::pin(async move {
                        conn.ping().await?;
                        Ok(SqliteTransactionManager::get_transaction_depth(conn) == 0)
                    })
                })
                // A transaction that rolls back drops the WAL frames it had gathered
                // (`gathered_wal::discard_on_rollback`): on every connection the pool opens.
                .after_connect(|conn, _meta| {
                    Box::pin(async move {
                        let mut handle = conn.lock_handle().await?;
                        // SAFETY: the pool's one write connection, locked; nothing else sets its
                        // rollback hook.
                        unsafe { gathered_wal::discard_on_rollback(handle.as_raw_handle().as_ptr()) };
                        Ok(())
                    })
                })
                .connect_with(
                    opts.clone()
                        // Its WAL appends reach the file in pieces of up to 124 KiB, each commit's
                        // before COMMIT returns (`gathered_wal`).
                        .vfs(gathered_wal::VFS_NAME)
                        .pragma("cache_size", format!("-{}", WRITER_CACHE_KIB))
                        .pragma("wal_autocheckpoint", checkpoint::WRITER_BACKSTOP_PAGES.to_string()),
                )
                .await?;
            // Readers map the file instead of copying pages with pread: every commit of the
            // writer empties each reader's page cache (WAL: a reader that sees a new snapshot
            // starts cold), so under labeling load every read statement re-read its b-tree
            // path page by page; the perf profile of the labeling loop showed readers' pread
            // and cache truncation as the largest cost. Readers only: a write through a map
            // onto a full disk would be a SIGBUS instead of an error.
            let opts_filename = opts.get_filename().to_path_buf();
            let read = SqlitePoolOptions::new()
                .max_connections(8)
                .connect_with(opts.clone().pragma("mmap_size", READER_MMAP_BYTES.to_string()))
                .await?;
            // A checkpoint of a large WAL may take over a second: not a slow query to warn about.
            let checkpoints = SqlitePoolOptions::new()
                .max_connections(1)
                .connect_with(opts.disable_statement_logging())
                .await?;
            let leases = std::sync::Arc::new(lease_book::LeaseBook::default());
            let writer = writer::GroupWriter::start(write.clone(), leases.clone());
            let checkpointer = checkpoint::Checkpointer::start(checkpoints, &opts_filename);
            let inline = inline_reader::InlineReaders::new(opts_filename, leases.clone());
            Db::Sqlite { read, write, writer, checkpointer, inline, imports: Default::default(), leases }
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let pool = PgPoolOptions::new()
                .max_connections(16)
                .acquire_timeout(Duration::from_secs(30))
                // sqlx pings a connection on every acquire by default: a round trip each, and a
                // labeling request acquires one twice (its token, its transaction). A
                // connection idle for less than `PG_PING_AFTER_IDLE` is taken as it is; one
                // idle longer (the database may have restarted meanwhile) is pinged first, and
                // one that fails the ping is replaced.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for > PG_PING_AFTER_IDLE {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .connect(url)
                .await?;
            Db::Postgres(pool)
        } else {
            anyhow::bail!("unsupported database URL {url:?}: use sqlite://PATH or postgres://...");
        };
        db.migrate().await?;
        Ok(db)
    }

    async fn migrate(&self) -> anyhow::Result<()> {
        match self {
            Db::Sqlite { write, .. } => sqlx::migrate!("../migrations/sqlite").run(write).await?,
            Db::Postgres(pool) => sqlx::migrate!("../migrations/postgres").run(pool).await?,
        }
        Ok(())
    }

    /// The migration versions this binary embeds for its backend (`migrations/<backend>`).
    pub fn embedded_migrations(&self) -> Vec<i64> {
        let migrator = match self {
            Db::Sqlite { .. } => sqlx::migrate!("../migrations/sqlite"),
            Db::Postgres(_) => sqlx::migrate!("../migrations/postgres"),
        };
        migrator.iter().filter(|m| m.migration_type.is_up_migration()).map(|m| m.version).collect()
    }

    /// The versions sqlx recorded as applied successfully (its `_sqlx_migrations` table).
    pub async fn applied_migrations(&self) -> Result<Vec<i64>, sqlx::Error> {
        on_read!(self, pool => {
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations WHERE success = TRUE ORDER BY version")
                .fetch_all(pool)
                .await
        })
    }

    /// The schema version: the highest applied migration (0 before any). One indexed read of
    /// a table of a handful of rows, cheap enough for every health check.
    pub async fn schema_version(&self) -> Result<i64, sqlx::Error> {
        let version: Option<i64> = on_read!(self, pool => {
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(pool)
                .await?
        });
        Ok(version.unwrap_or(0))
    }

    /// Waits until the labeling writes already sent to SQLite's group-commit writer are
    /// committed (`store::writer`); nothing to wait for on PostgreSQL.
    pub async fn drain_writes(&self) {
        if let Db::Sqlite { writer, .. } = self {
            writer.drain().await;
        }
    }

    pub fn is_postgres(&self) -> bool {
        matches!(self, Db::Postgres(_))
    }
}

/// Starts a write transaction. On SQLite it is `BEGIN IMMEDIATE`: the write lock is taken at
/// the start, so when another process holds it (`mirrorset user add` on a live database, a
/// backup) the busy timeout makes the transaction wait. A plain (deferred) `BEGIN` reads first
/// and fails at once with SQLITE_BUSY when it then tries to write, which surfaced as a 500.
pub trait BeginWrite {
    type Database: sqlx::Database;
    fn begin_write(
        &self,
    ) -> impl std::future::Future<Output = Result<sqlx::Transaction<'static, Self::Database>, sqlx::Error>> + Send;
}

impl BeginWrite for SqlitePool {
    type Database = sqlx::Sqlite;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Sqlite>, sqlx::Error> {
        self.begin_with("BEGIN IMMEDIATE").await
    }
}

impl BeginWrite for PgPool {
    type Database = sqlx::Postgres;
    async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Postgres>, sqlx::Error> {
        self.begin().await
    }
}

/// Milliseconds since the Unix epoch: every timestamp in the store.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::api_types::Role;
    use sqlx::Connection;

    async fn page_size_of(file: &std::path::Path) -> i64 {
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}", file.display())).await.unwrap();
        let size = sqlx::query_scalar("PRAGMA page_size").fetch_one(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        size
    }

    /// A database this creates has `NEW_DATABASE_PAGE_SIZE` pages; one created before (4 KiB,
    /// already in WAL mode, where the size can no longer change) keeps its pages, migrates and
    /// takes writes.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn new_databases_get_the_larger_pages_and_older_ones_keep_theirs() {
        let dir = tempfile::tempdir().unwrap();
        let new_file = dir.path().join("new.db");
        let db = Db::connect(&format!("sqlite://{}", new_file.display())).await.unwrap();
        users::create_user(&db, "u1", "x", Role::Labeler, None).await.unwrap();
        drop(db);
        assert_eq!(page_size_of(&new_file).await, i64::from(NEW_DATABASE_PAGE_SIZE));

        let old_file = dir.path().join("old.db");
        let mut conn = sqlx::SqliteConnection::connect(&format!("sqlite://{}?mode=rwc", old_file.display())).await.unwrap();
        sqlx::query("PRAGMA page_size = 4096").execute(&mut conn).await.unwrap();
        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut conn).await.unwrap();
        sqlx::query("CREATE TABLE before_us (x INTEGER)").execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
        let db = Db::connect(&format!("sqlite://{}", old_file.display())).await.unwrap();
        users::create_user(&db, "u2", "x", Role::Labeler, None).await.unwrap();
        assert!(users::find_user_by_username(&db, "u2").await.unwrap().is_some());
        drop(db);
        assert_eq!(page_size_of(&old_file).await, 4096);
    }
}
