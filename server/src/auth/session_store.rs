//! The session store: tower-sessions' SQL stores, one per backend, behind one type.
//!
//! On SQLite, sessions live in a database file of their own (`sessions.db` in the data
//! directory, WAL, a small pool of its own), not in the main database: every cookie request
//! loads its session, and the main database has a single writer connection that imports and
//! submissions queue for. With their own file, session reads never wait and session writes
//! never queue behind the main writer. Sessions kept in the main database by earlier versions
//! are dropped by migration 0002 (users sign in again once). On PostgreSQL, sessions stay in
//! the main database (its pool has many connections, and every instance must see them).
//!
//! A session's record is remembered for a second after it was read (`fresh_cache`): every
//! request of a signed-in browser loads it, and loading it was most of the cost of a cookie
//! request beside the labeling write itself (docs/bench.md, session 26). Saving or deleting a
//! session here forgets it, so signing out takes effect on this instance at once; on another
//! instance, within the second.
use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use time::OffsetDateTime;
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use super::fresh_cache::FreshCache;
use crate::store::Db;

#[derive(Clone, Debug)]
pub struct SqlSessionStore {
    backend: Backend,
    /// Records read in the last second (see the module's comment).
    recent: Arc<FreshCache<Id, Record>>,
}

#[derive(Clone, Debug)]
enum Backend {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl SqlSessionStore {
    /// `data_dir` holds the SQLite sessions file.
    pub async fn new(db: &Db, data_dir: &Path) -> anyhow::Result<Self> {
        let backend = match db {
            Db::Sqlite { .. } => {
                let url = format!("sqlite://{}", data_dir.join("sessions.db").display());
                let opts = SqliteConnectOptions::from_str(&url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    // Session writes are a few hundred bytes: concurrent ones wait for each
                    // other for microseconds.
                    .busy_timeout(Duration::from_secs(5));
                // A file on this machine needs no round trip to prove the connection alive
                // before each use (sqlx's default).
                let pool =
                    SqlitePoolOptions::new().max_connections(4).test_before_acquire(false).connect_with(opts).await?;
                Backend::Sqlite(SqliteStore::new(pool))
            }
            Db::Postgres(pool) => Backend::Postgres(PostgresStore::new(pool.clone())),
        };
        match &backend {
            Backend::Sqlite(s) => s.migrate().await?,
            Backend::Postgres(s) => s.migrate().await?,
        }
        Ok(SqlSessionStore { backend, recent: Default::default() })
    }

    async fn load_stored(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match &self.backend {
            Backend::Sqlite(s) => s.load(id).await,
            Backend::Postgres(s) => s.load(id).await,
        }
    }
}

/// Sessions change only through this store's `save` and `delete`, which forget the record
/// themselves; nothing else counts.
fn no_changes() -> u64 {
    0
}

#[async_trait]
impl SessionStore for SqlSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.create(record).await,
            Backend::Postgres(s) => s.create(record).await,
        }
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        let saved = match &self.backend {
            Backend::Sqlite(s) => s.save(record).await,
            Backend::Postgres(s) => s.save(record).await,
        };
        self.recent.forget(&record.id);
        saved
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        let record = self.recent.get_or_read(id, no_changes, self.load_stored(id)).await?;
        // The stores read only unexpired records; one remembered may have expired since.
        Ok(record.filter(|r| r.expiry_date > OffsetDateTime::now_utc()))
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        let deleted = match &self.backend {
            Backend::Sqlite(s) => s.delete(id).await,
            Backend::Postgres(s) => s.delete(id).await,
        };
        self.recent.forget(id);
        deleted
    }
}

#[async_trait]
impl ExpiredDeletion for SqlSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match &self.backend {
            Backend::Sqlite(s) => s.delete_expired().await,
            Backend::Postgres(s) => s.delete_expired().await,
        }
    }
}
