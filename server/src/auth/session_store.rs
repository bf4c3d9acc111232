//! The session store: tower-sessions' SQL stores, one per backend, behind one type.
//!
//! On SQLite, sessions live in a database file of their own (`sessions.db` in the data
//! directory, WAL, a small pool of its own), not in the main database: every cookie request
//! loads its session, and the main database has a single writer connection that imports and
//! submissions queue for. With their own file, session reads never wait and session writes
//! never queue behind the main writer. Sessions kept in the main database by earlier versions
//! are dropped by migration 0002 (users sign in again once). On PostgreSQL, sessions stay in
//! the main database (its pool has many connections, and every instance must see them).
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use tower_sessions::session::{Id, Record};
use tower_sessions::session_store::{self, ExpiredDeletion, SessionStore};
use tower_sessions_sqlx_store::{PostgresStore, SqliteStore};

use crate::store::Db;

#[derive(Clone, Debug)]
pub enum SqlSessionStore {
    Sqlite(SqliteStore),
    Postgres(PostgresStore),
}

impl SqlSessionStore {
    /// `data_dir` holds the SQLite sessions file.
    pub async fn new(db: &Db, data_dir: &Path) -> anyhow::Result<Self> {
        let store = match db {
            Db::Sqlite { .. } => {
                let url = format!("sqlite://{}", data_dir.join("sessions.db").display());
                let opts = SqliteConnectOptions::from_str(&url)?
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    .synchronous(SqliteSynchronous::Normal)
                    // Session writes are a few hundred bytes: concurrent ones wait for each
                    // other for microseconds.
                    .busy_timeout(Duration::from_secs(5));
                let pool = SqlitePoolOptions::new().max_connections(4).connect_with(opts).await?;
                SqlSessionStore::Sqlite(SqliteStore::new(pool))
            }
            Db::Postgres(pool) => SqlSessionStore::Postgres(PostgresStore::new(pool.clone())),
        };
        match &store {
            SqlSessionStore::Sqlite(s) => s.migrate().await?,
            SqlSessionStore::Postgres(s) => s.migrate().await?,
        }
        Ok(store)
    }
}

#[async_trait]
impl SessionStore for SqlSessionStore {
    async fn create(&self, record: &mut Record) -> session_store::Result<()> {
        match self {
            SqlSessionStore::Sqlite(s) => s.create(record).await,
            SqlSessionStore::Postgres(s) => s.create(record).await,
        }
    }
    async fn save(&self, record: &Record) -> session_store::Result<()> {
        match self {
            SqlSessionStore::Sqlite(s) => s.save(record).await,
            SqlSessionStore::Postgres(s) => s.save(record).await,
        }
    }
    async fn load(&self, id: &Id) -> session_store::Result<Option<Record>> {
        match self {
            SqlSessionStore::Sqlite(s) => s.load(id).await,
            SqlSessionStore::Postgres(s) => s.load(id).await,
        }
    }
    async fn delete(&self, id: &Id) -> session_store::Result<()> {
        match self {
            SqlSessionStore::Sqlite(s) => s.delete(id).await,
            SqlSessionStore::Postgres(s) => s.delete(id).await,
        }
    }
}

#[async_trait]
impl ExpiredDeletion for SqlSessionStore {
    async fn delete_expired(&self) -> session_store::Result<()> {
        match self {
            SqlSessionStore::Sqlite(s) => s.delete_expired().await,
            SqlSessionStore::Postgres(s) => s.delete_expired().await,
        }
    }
}
