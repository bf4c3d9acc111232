//! `mirrorset backup`: a copy of a SQLite deployment that a server can be started on, taken
//! while the server runs (or not).
//!
//! A backup directory holds `mirrorset.db` and the image files it names (`images/`,
//! `thumbnails/`), the layout of a data directory, so `mirrorset serve --data-dir <backup>`
//! serves it. The database is SQLite's own copy (`store::backup::snapshot`): one moment's
//! committed state, what is still in the WAL included. Copying the files of a running server
//! instead can miss what is only in the WAL, or pair a WAL with a database file of another
//! moment.
//!
//! Order, so that a directory with a `mirrorset.db` is always a whole backup: the copy is
//! written beside it as `mirrorset.db.partial`, checked, its images copied, synced, and only
//! then renamed over the previous backup's database (which stays whole until that rename). A
//! backup killed halfway leaves a `.partial` that the next one removes first. Images are named
//! by their content's SHA-256, so one already in the directory (from an earlier backup) is
//! the same file and is not copied again. A backup directory a server runs on is refused.
//! Sign-in sessions (`sessions.db`) are not copied: after a restore, people sign in again (API
//! tokens are in the database and keep working).
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::import::images::{original_path, thumbnail_path, write_atomically};
use crate::store::backup::{check_and_read, snapshot, take_out_of_use, Contents};

/// The database's name in a backup directory: the name `mirrorset serve --data-dir` opens.
pub const DATABASE_FILE: &str = "mirrorset.db";

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(
        "this command copies SQLite databases; back up a PostgreSQL database with pg_dump \
         (e.g. `pg_dump --format custom DATABASE_URL > mirrorset.dump`) and copy the data \
         directory's images/ and thumbnails/ beside it"
    )]
    Postgres,
    #[error("there is no database at {0} (check --data-dir or --database-url)")]
    NoDatabase(PathBuf),
    #[error(
        "--to {0} is where the database or its data directory lives: a backup there would replace \
         them; choose another directory"
    )]
    IntoTheSource(PathBuf),
    #[error(
        "a server has the database in {0} open (it runs on this backup): stop it, or back up into \
         another directory"
    )]
    InUse(PathBuf),
    #[error("copying the database: {0}")]
    Snapshot(rusqlite::Error),
    #[error("the database in --to does not read ({0}); choose another directory")]
    Unreadable(String),
    #[error("the copy of the database does not read back ({0}); the previous backup, if any, is untouched")]
    Check(String),
    #[error("{what}: {source}")]
    Io { what: String, source: std::io::Error },
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> BackupError {
    let what = what.into();
    move |source| BackupError::Io { what, source }
}

/// What a backup wrote.
#[derive(Debug, Clone)]
pub struct Report {
    pub to: PathBuf,
    pub contents: Contents,
    pub database_bytes: u64,
    /// Image files (originals and thumbnails) copied now, and those already in the backup.
    pub files_copied: usize,
    pub files_present: usize,
    /// Image files the database names that the data directory lacks: the backup has every
    /// other file, and the database; these are missing from the source too.
    pub missing: Vec<PathBuf>,
    pub seconds: f64,
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.contents;
        write!(
            f,
            "backed up {} projects, {} items, {} annotations and {} images (schema version {}) to {} in {:.1} s: \
             database {:.1} MiB, image files {} copied, {} already there",
            c.projects,
            c.items,
            c.annotations,
            c.image_shas.len(),
            c.schema_version,
            self.to.display(),
            self.seconds,
            self.database_bytes as f64 / (1 << 20) as f64,
            self.files_copied,
            self.files_present,
        )
    }
}

/// Backs up the SQLite database at `database` and the image files under `data_dir` into
/// `to` (created if missing); see the module's doc for the order and what a backup holds.
pub fn back_up(database: &Path, data_dir: &Path, to: &Path) -> Result<Report, BackupError> {
    let started = Instant::now();
    if !database.is_file() {
        return Err(BackupError::NoDatabase(database.to_path_buf()));
    }
    std::fs::create_dir_all(to).map_err(io(format!("creating {}", to.display())))?;
    let target = to.canonicalize().map_err(io(format!("reading {}", to.display())))?;
    // `mirrorset.db` alone has the empty path as its parent: the working directory.
    let database_dir = database.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if [database_dir, data_dir].iter().any(|dir| dir.canonicalize().is_ok_and(|d| d == target)) {
        return Err(BackupError::IntoTheSource(to.to_path_buf()));
    }
    // Replacing a database a server has open would pull it from under the server, and pair its
    // WAL with another file.
    let database_file = to.join(DATABASE_FILE);
    if database_file.exists() && !take_out_of_use(&database_file).map_err(|e| BackupError::Unreadable(e.to_string()))? {
        return Err(BackupError::InUse(to.to_path_buf()));
    }
    let partial = to.join(format!("{DATABASE_FILE}.partial"));
    std::fs::remove_file(&partial)
        .or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(()) } else { Err(e) })
        .map_err(io(format!("removing {}", partial.display())))?;
    // Removed on every way out but the rename: a failed copy (a full disk) gives its space back.
    let guard = PartialCopy(&partial);
    snapshot(database, &partial).map_err(BackupError::Snapshot)?;
    let (check, contents) = check_and_read(&partial).map_err(|e| BackupError::Check(e.to_string()))?;
    if check != "ok" {
        return Err(BackupError::Check(check));
    }
    let (mut files_copied, mut files_present, mut missing) = (0, 0, Vec::new());
    for sha in &contents.image_shas {
        let originals = (original_path(data_dir, sha), original_path(to, sha));
        for (from, into) in [originals, (thumbnail_path(data_dir, sha), thumbnail_path(to, sha))] {
            match copy_file(&from, &into)? {
                Copied::Now => files_copied += 1,
                Copied::Before => files_present += 1,
                Copied::NoSource => missing.push(from),
            }
        }
    }
    std::fs::File::open(&partial).and_then(|f| f.sync_all()).map_err(io(format!("syncing {}", partial.display())))?;
    std::fs::rename(&partial, &database_file).map_err(io(format!("renaming {}", partial.display())))?;
    std::mem::forget(guard);
    std::fs::File::open(to).and_then(|d| d.sync_all()).map_err(io(format!("syncing {}", to.display())))?;
    let database_bytes = std::fs::metadata(&database_file).map(|m| m.len()).unwrap_or(0);
    Ok(Report {
        to: to.to_path_buf(),
        contents,
        database_bytes,
        files_copied,
        files_present,
        missing,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The partial copy of the database, removed when dropped.
struct PartialCopy<'a>(&'a Path);

impl Drop for PartialCopy<'_> {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.0);
    }
}

enum Copied {
    Now,
    /// The backup has it: the same name is the same content (its SHA-256).
    Before,
    NoSource,
}

fn copy_file(from: &Path, into: &Path) -> Result<Copied, BackupError> {
    let wanted = match std::fs::metadata(from) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Copied::NoSource),
        Err(e) => return Err(io(format!("reading {}", from.display()))(e)),
    };
    // A file of another size is a copy cut short outside our atomic writes: copied again.
    if std::fs::metadata(into).is_ok_and(|m| m.len() == wanted) {
        return Ok(Copied::Before);
    }
    let bytes = std::fs::read(from).map_err(io(format!("reading {}", from.display())))?;
    write_atomically(into, &bytes).map_err(io(format!("writing {}", into.display())))?;
    Ok(Copied::Now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::Db;
    use rusqlite::Connection;

    /// A migrated database with a project, `items` items and a stored image (its two files
    /// under `data`), whose last `in_wal` items are committed but still only in the WAL: the
    /// returned connection keeps the database open and checkpoints nothing.
    async fn deployment(root: &Path, items: i64, in_wal: i64) -> (PathBuf, PathBuf, Connection) {
        let database = root.join("mirrorset.db");
        let data_dir = root.join("data");
        let db = Db::connect(&format!("sqlite://{}", database.display())).await.unwrap();
        drop(db);
        let conn = Connection::open(&database).unwrap();
        conn.execute_batch(
            "PRAGMA wal_autocheckpoint = 0;
             INSERT INTO projects (id, name, instructions, kind, labels, overlap, lease_seconds, created_at)
             VALUES (1, 'p', '', 'single', '[]', 1, 600, 0);
             INSERT INTO images (sha256, format, width, height, bytes, created_at) VALUES ('ab12', 'png', 1, 1, 3, 0);",
        )
        .unwrap();
        let item = |i: i64| {
            format!(
                "INSERT INTO items (project_id, kind, text, meta, weight, content_hash, created_at) \
                 VALUES (1, 'text', 'i{i}', '{{}}', 1, 'i{i}', 0)"
            )
        };
        for i in 0..items - in_wal {
            conn.execute(&item(i), []).unwrap();
        }
        conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
        for i in items - in_wal..items {
            conn.execute(&item(i), []).unwrap();
        }
        write_atomically(&original_path(&data_dir, "ab12"), b"png").unwrap();
        write_atomically(&thumbnail_path(&data_dir, "ab12"), b"jpeg").unwrap();
        (database, data_dir, conn)
    }

    fn items_in(database: &Path) -> i64 {
        Connection::open(database).unwrap().query_row("SELECT COUNT(*) FROM items", [], |r| r.get(0)).unwrap()
    }

    #[tokio::test]
    async fn the_copy_holds_the_commits_still_in_the_wal_and_the_image_files() {
        let root = tempfile::tempdir().unwrap();
        let (database, data_dir, _open) = deployment(root.path(), 10, 4).await;
        // What copying the file would have kept: the WAL's four items are not in it.
        let plain = root.path().join("plain.db");
        std::fs::copy(&database, &plain).unwrap();
        assert_eq!(items_in(&plain), 6);

        let to = root.path().join("backup");
        let report = back_up(&database, &data_dir, &to).unwrap();
        assert_eq!(items_in(&to.join(DATABASE_FILE)), 10);
        assert_eq!((report.contents.projects, report.contents.items, report.contents.annotations), (1, 10, 0));
        assert_eq!(report.contents.image_shas, vec!["ab12".to_string()]);
        assert!(report.contents.schema_version > 0);
        assert_eq!((report.files_copied, report.files_present, report.missing.len()), (2, 0, 0));
        assert_eq!(std::fs::read(original_path(&to, "ab12")).unwrap(), b"png");
        assert_eq!(std::fs::read(thumbnail_path(&to, "ab12")).unwrap(), b"jpeg");
        assert!(!to.join("mirrorset.db.partial").exists());
    }

    #[tokio::test]
    async fn a_second_backup_replaces_the_database_and_copies_only_what_is_new() {
        let root = tempfile::tempdir().unwrap();
        let (database, data_dir, open) = deployment(root.path(), 3, 0).await;
        let to = root.path().join("backup");
        back_up(&database, &data_dir, &to).unwrap();
        let later = "INSERT INTO items (project_id, kind, text, meta, weight, content_hash, created_at) \
                     VALUES (1, 'text', 'l', '{}', 1, 'l', 0)";
        open.execute(later, []).unwrap();
        // A backup killed halfway left its partial copy behind.
        std::fs::write(to.join("mirrorset.db.partial"), b"cut short").unwrap();
        let report = back_up(&database, &data_dir, &to).unwrap();
        assert_eq!(items_in(&to.join(DATABASE_FILE)), 4);
        assert_eq!((report.files_copied, report.files_present), (0, 2));
    }

    #[tokio::test]
    async fn a_backup_a_connection_has_open_is_not_replaced() {
        let root = tempfile::tempdir().unwrap();
        let (database, data_dir, _open) = deployment(root.path(), 2, 0).await;
        let to = root.path().join("backup");
        back_up(&database, &data_dir, &to).unwrap();
        // A server started on the backup: WAL mode, a connection open.
        let server = Connection::open(to.join(DATABASE_FILE)).unwrap();
        server.query_row("PRAGMA journal_mode = WAL", [], |_| Ok(())).unwrap();
        let item = "INSERT INTO items (project_id, kind, text, meta, weight, content_hash, created_at) \
                    VALUES (1, 'text', 's', '{}', 1, 's', 0)";
        server.execute(item, []).unwrap();
        let e = back_up(&database, &data_dir, &to).unwrap_err();
        assert!(matches!(e, BackupError::InUse(_)), "{e}");
        assert_eq!(items_in(&to.join(DATABASE_FILE)), 3, "the backup in use is untouched");
        // Killed, its WAL left beside the file: the next backup replaces it, and leaves no WAL.
        let (wal, kept) = (to.join("mirrorset.db-wal"), root.path().join("kept-wal"));
        std::fs::copy(&wal, &kept).unwrap();
        drop(server);
        std::fs::copy(&kept, &wal).unwrap();
        back_up(&database, &data_dir, &to).unwrap();
        assert!(!wal.exists(), "a WAL of the replaced database is left beside the new one");
        assert_eq!(items_in(&to.join(DATABASE_FILE)), 2);
    }

    #[tokio::test]
    async fn missing_image_files_are_reported_and_the_rest_is_backed_up() {
        let root = tempfile::tempdir().unwrap();
        let (database, data_dir, _open) = deployment(root.path(), 2, 1).await;
        std::fs::remove_file(thumbnail_path(&data_dir, "ab12")).unwrap();
        let to = root.path().join("backup");
        let report = back_up(&database, &data_dir, &to).unwrap();
        assert_eq!(report.missing, vec![thumbnail_path(&data_dir, "ab12")]);
        assert_eq!((report.files_copied, report.files_present), (1, 0));
        assert_eq!(items_in(&to.join(DATABASE_FILE)), 2);
    }

    #[tokio::test]
    async fn a_backup_never_writes_where_the_database_or_its_data_lives() {
        let root = tempfile::tempdir().unwrap();
        let (database, data_dir, _open) = deployment(root.path(), 2, 0).await;
        for to in [root.path().to_path_buf(), data_dir.clone(), data_dir.join("..")] {
            let e = back_up(&database, &data_dir, &to).unwrap_err();
            assert!(matches!(e, BackupError::IntoTheSource(_)), "{to:?}: {e}");
        }
        let e = back_up(&root.path().join("nope.db"), &data_dir, &root.path().join("b")).unwrap_err();
        let nope = root.path().join("nope.db").display().to_string();
        assert_eq!(e.to_string(), format!("there is no database at {nope} (check --data-dir or --database-url)"));
        assert_eq!(items_in(&database), 2);
    }
}
