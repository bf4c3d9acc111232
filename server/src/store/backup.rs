//! The SQL of `mirrorset backup` (`crate::backup`): a copy of a SQLite database made by SQLite
//! itself, and what a copy holds.
//!
//! On SQLite's own connections (rusqlite), not the server's pools: the command runs in a
//! process of its own, beside a running server or without one, and must never migrate or
//! write the database it copies.
use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

/// What a copy holds, read from the copy itself.
#[derive(Debug, Clone, PartialEq)]
pub struct Contents {
    /// The highest migration applied (`GET /api/health`'s `schema_version`).
    pub schema_version: i64,
    pub projects: i64,
    pub items: i64,
    pub annotations: i64,
    /// Every stored image's SHA-256 (its file and thumbnail are named by it).
    pub image_shas: Vec<String>,
}

/// Writes a consistent copy of the database at `database` to `target`, which must not exist.
/// `VACUUM INTO` reads in one transaction: the copy holds every transaction committed before
/// it began, those still only in the WAL included, and nothing of a later one. A reader blocks
/// no writer in WAL mode, so a running server's labelers go on meanwhile. (Copying the file
/// instead misses what is still in the WAL, and the WAL and the file copied one after the
/// other need not be from the same moment.)
pub fn snapshot(database: &Path, target: &Path) -> rusqlite::Result<()> {
    let conn = Connection::open_with_flags(database, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    // A reader may meet a lock for a moment (the WAL's index being rebuilt after a crash).
    conn.busy_timeout(Duration::from_secs(30))?;
    // SQLite names files by UTF-8 strings: another path would be written somewhere else.
    let name = target.to_str().ok_or_else(|| rusqlite::Error::InvalidPath(target.to_path_buf()))?;
    conn.execute("VACUUM INTO ?1", [name])?;
    Ok(())
}

/// Takes the database at `path` (an earlier backup, about to be replaced) out of WAL mode,
/// which SQLite grants only to the one connection that has it open: `Ok(false)` when another
/// connection (a server started on the backup) has it open. After it, no WAL is left beside
/// the file, so the next copy renamed over it cannot be paired with that WAL.
pub fn take_out_of_use(path: &Path) -> rusqlite::Result<bool> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    match conn.query_row("PRAGMA journal_mode = DELETE", [], |r| r.get::<_, String>(0)) {
        Ok(mode) => Ok(mode.eq_ignore_ascii_case("delete")),
        Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::DatabaseBusy => Ok(false),
        Err(e) => Err(e),
    }
}

/// SQLite's `quick_check` of the copy ("ok" when every page and index entry reads back), and
/// what the copy holds.
pub fn check_and_read(copy: &Path) -> rusqlite::Result<(String, Contents)> {
    let conn = Connection::open_with_flags(copy, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
    let check: String = conn.query_row("PRAGMA quick_check(1)", [], |r| r.get(0))?;
    let count = |table: &str| conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get::<_, i64>(0));
    let schema_version =
        conn.query_row("SELECT COALESCE(MAX(version), 0) FROM _sqlx_migrations WHERE success = TRUE", [], |r| r.get(0))?;
    let mut shas = conn.prepare("SELECT sha256 FROM images ORDER BY sha256")?;
    let image_shas = shas.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>()?;
    let (projects, items, annotations) = (count("projects")?, count("items")?, count("annotations")?);
    let contents = Contents { schema_version, projects, items, annotations, image_shas };
    Ok((check, contents))
}
