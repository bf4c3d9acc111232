//! One `mirrorset serve` per SQLite database.
//!
//! A SQLite server keeps state that only works when it is the database's only server: the
//! labelers' leases live in its memory (`lease_book`), its one writer assumes nobody else
//! writes, and at startup it removes the rows of imports that were running when the last
//! server stopped (`import::job::reap_stale`), which, with a server still running, are that
//! server's imports in flight. A second `serve` on the same file (a second terminal, a
//! service manager beside a manual start) would hand out items the first has on screens and
//! delete its running imports. So `serve` holds an exclusive lock on a file beside the
//! database for as long as it runs, and a second one refuses to start. The kernel drops the
//! lock when the process ends, however it ends, so a crashed server never leaves it held.
//! The lock is on a file of its own, not on the database: SQLite's own locks on the database
//! are POSIX locks, which any close of the file by this process would drop (docs/bench.md,
//! session 37). Other commands (`mirrorset user`, `token`, `backup`) do not take it: they are
//! meant to run beside the server. Several instances share a PostgreSQL database instead.
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// Why a server may not serve the database.
#[derive(Debug, thiserror::Error)]
pub enum ServerLockError {
    #[error(
        "another mirrorset server{} is serving {database}: stop it first. One server serves a SQLite \
         database (the labelers' leases are in its memory); for several instances use PostgreSQL \
         (--database-url postgres://...)",
        pid.map(|p| format!(" (process {p})")).unwrap_or_default()
    )]
    InUse { database: String, pid: Option<u32> },
}

/// Held while the server runs; dropping it (or the process ending) lets another server start.
#[derive(Debug)]
pub struct ServerLock {
    _file: Option<File>,
}

/// The lock file of the SQLite database at `database`.
pub fn lock_file(database: &Path) -> PathBuf {
    let mut name = database.file_name().unwrap_or_default().to_os_string();
    name.push(".server-lock");
    database.with_file_name(name)
}

/// Takes the lock of the SQLite database at `database` for this process, and writes the
/// process id into the lock file for the message another server gives. Where no lock can be
/// taken at all (a read-only directory without the file, a file system without locks) the
/// server starts without one, with a warning: a server on a read-only or full disk still
/// serves reads, as it did before the lock.
pub fn claim(database: &Path) -> Result<ServerLock, ServerLockError> {
    let path = lock_file(database);
    let unlocked = |error: std::io::Error| {
        tracing::warn!(path = %path.display(), %error, "cannot lock the database for this server: starting without the check that no other server serves it");
        Ok(ServerLock { _file: None })
    };
    let opened = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(&path);
    let mut file = match opened.or_else(|_| File::open(&path)) {
        Ok(file) => file,
        Err(error) => return unlocked(error),
    };
    // SAFETY: flock on a descriptor this function owns.
    if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() != std::io::ErrorKind::WouldBlock {
            return unlocked(error);
        }
        let mut text = String::new();
        let pid = file.read_to_string(&mut text).ok().and_then(|_| text.trim().parse().ok());
        return Err(ServerLockError::InUse { database: database.display().to_string(), pid });
    }
    // For the message only: a full disk may refuse these bytes, and the lock holds without them.
    let _ = file.set_len(0).and_then(|()| file.rewind()).and_then(|()| write!(file, "{}", std::process::id()));
    Ok(ServerLock { _file: Some(file) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_claim_is_refused_naming_the_holder_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let database = dir.path().join("mirrorset.db");
        let first = claim(&database).unwrap();
        assert_eq!(std::fs::read_to_string(lock_file(&database)).unwrap(), std::process::id().to_string());
        // flock locks belong to the open file, so a second open in this process conflicts too.
        match claim(&database) {
            Err(ServerLockError::InUse { pid, database: named }) => {
                assert_eq!(pid, Some(std::process::id()));
                assert_eq!(named, database.display().to_string());
            }
            other => panic!("expected InUse, got {other:?}"),
        }
        drop(first);
        claim(&database).expect("free once the holder is gone");
        assert_eq!(lock_file(Path::new("/srv/data/mirrorset.db")), Path::new("/srv/data/mirrorset.db.server-lock"));
    }
}
