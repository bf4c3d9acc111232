//! SQLite reads that run in place on the request's own thread, for the few statements every
//! labeling request makes before its write (its bearer token's owner, the project and the
//! caller's membership).
//!
//! Through sqlx each SQLite statement is a hand-off to the connection's own thread and back:
//! a futex wake and a sleep on each side. With the labeling writes off that path
//! (`store::statements`) the profile of 50 labelers showed over half of the server's CPU in
//! the kernel, in those wake-ups, for reads that take SQLite a few microseconds
//! (docs/bench.md, session 13). These connections are our own (rusqlite, opened here on the
//! same file, read-only, mapped like the sqlx readers), so their prepared statements live as
//! long as they do.
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use super::lease_book::LeaseBook;
use crate::error::AppResult;

/// Connections kept open when idle; more are opened when more requests read at once.
const IDLE_MAX: usize = 8;

#[derive(Clone)]
pub struct InlineReaders {
    path: PathBuf,
    idle: Arc<Mutex<Vec<rusqlite::Connection>>>,
    leases: Arc<LeaseBook>,
}

impl std::fmt::Debug for InlineReaders {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InlineReaders").field("path", &self.path).finish()
    }
}

impl InlineReaders {
    /// Readers of the database at `path` whose SQL can read `leases` (`register_lease_functions`).
    pub fn new(path: PathBuf, leases: Arc<LeaseBook>) -> InlineReaders {
        InlineReaders { path, idle: Arc::new(Mutex::new(Vec::new())), leases }
    }

    fn open(&self) -> AppResult<rusqlite::Connection> {
        use rusqlite::OpenFlags;
        let conn = rusqlite::Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        conn.busy_timeout(std::time::Duration::from_secs(10))?;
        conn.execute_batch(&format!("PRAGMA mmap_size = {}", super::READER_MMAP_BYTES))?;
        conn.set_prepared_statement_cache_capacity(super::statements::RAW_STATEMENT_CACHE);
        register_lease_functions(&conn, &self.leases)?;
        Ok(conn)
    }

    /// Runs `f` on an idle connection (or a new one) in autocommit mode: each statement reads
    /// the last committed state, as a sqlx reader does.
    pub fn with<T>(&self, f: impl FnOnce(&mut rusqlite::Connection) -> AppResult<T>) -> AppResult<T> {
        let taken = self.idle.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let mut conn = match taken {
            Some(c) => c,
            None => self.open()?,
        };
        let result = f(&mut conn);
        // A connection left inside a transaction (a body that failed halfway) is not reused.
        if conn.is_autocommit() {
            let mut idle = self.idle.lock().unwrap_or_else(|p| p.into_inner());
            if idle.len() < IDLE_MAX {
                idle.push(conn);
            }
        }
        result
    }
}

/// The lease book's questions as SQL functions, for a hand-out's statements
/// (`store::assignment`, `Leases::Book`): `mirrorset_lease_others(item, user, now, visible)`,
/// the slots others hold on the item as a reader that began at `visible` must count them
/// (`LeaseBook::reserved_for_reader`), and `mirrorset_lease_holds(item, user, now)`, 1 when the
/// labeler holds the item or has just answered it (`LeaseBook::holds`).
fn register_lease_functions(conn: &rusqlite::Connection, leases: &Arc<LeaseBook>) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    let book = leases.clone();
    conn.create_scalar_function("mirrorset_lease_others", 4, FunctionFlags::SQLITE_UTF8, move |ctx| {
        Ok(book.reserved_for_reader(ctx.get(0)?, ctx.get(1)?, ctx.get(2)?, ctx.get::<i64>(3)? as u64))
    })?;
    let book = leases.clone();
    conn.create_scalar_function("mirrorset_lease_holds", 3, FunctionFlags::SQLITE_UTF8, move |ctx| {
        Ok(book.holds(ctx.get(0)?, ctx.get(1)?, ctx.get(2)?))
    })
}
