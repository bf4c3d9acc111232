//! Spooling uploads to disk: a directory per server instance, a free-space reserve, and an
//! idle timeout on the request body.
//!
//! Several instances may share one data directory (PostgreSQL deployments): each spools into
//! `spool/<instance id>/` and touches `spool/<instance id>/alive` every minute, so a starting
//! instance removes only the directories of instances that stopped touching theirs (dead ones),
//! never another live instance's uploads.
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use tokio::io::AsyncWriteExt;

use crate::error::{AppError, AppResult};

/// An instance directory not touched for this long belongs to an instance that is gone.
pub const STALE_INSTANCE: Duration = Duration::from_secs(15 * 60);
const ALIVE: &str = "alive";
/// Free space is checked again after this many bytes written.
const CHECK_EVERY: u64 = 8 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct SpoolConfig {
    /// This instance's directory, `<data dir>/spool/<instance id>`.
    pub dir: PathBuf,
    /// Spooling refuses to leave less than this free on the disk.
    pub min_free_bytes: u64,
    /// A request body that sends nothing for this long is answered 408.
    pub idle_timeout: Duration,
}

/// Creates this instance's spool directory and removes those of dead instances (and loose
/// files of the old single-directory layout that are as old).
pub fn prepare_instance_dir(data_dir: &Path) -> io::Result<PathBuf> {
    let root = data_dir.join("spool");
    std::fs::create_dir_all(&root)?;
    let id = format!("{}-{:016x}", std::process::id(), rand::random::<u64>());
    let dir = root.join(id);
    std::fs::create_dir_all(&dir)?;
    touch_alive(&dir);
    remove_stale(&root, &dir, STALE_INSTANCE);
    Ok(dir)
}

/// Marks this instance's spool directory as in use (every minute).
pub fn touch_alive(dir: &Path) {
    let alive = dir.join(ALIVE);
    let res = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&alive)
        .and_then(|f| f.set_modified(SystemTime::now()));
    if let Err(e) = res {
        tracing::warn!(path = %alive.display(), error = %e, "cannot touch the spool directory's marker");
    }
}

/// Removes entries of `root` other than `own` that were not touched within `older_than`.
pub fn remove_stale(root: &Path, own: &Path, older_than: Duration) {
    let Ok(entries) = std::fs::read_dir(root) else { return };
    for e in entries.flatten() {
        let path = e.path();
        if path == own {
            continue;
        }
        let stamp = if path.is_dir() { path.join(ALIVE) } else { path.clone() };
        let modified = std::fs::metadata(&stamp)
            .or_else(|_| std::fs::metadata(&path))
            .and_then(|m| m.modified())
            .unwrap_or(SystemTime::UNIX_EPOCH);
        if modified.elapsed().unwrap_or_default() < older_than {
            continue;
        }
        let res = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
        match res {
            Ok(()) => tracing::info!(path = %path.display(), "removed the spool of a stopped instance"),
            Err(e) => tracing::warn!(path = %path.display(), error = %e, "cannot remove a stale spool entry"),
        }
    }
}

/// Bytes available to this process on the disk holding `dir`.
pub fn free_bytes(dir: &Path) -> io::Result<u64> {
    let s = rustix::fs::statvfs(dir)?;
    Ok(s.f_bavail.saturating_mul(s.f_frsize))
}

fn mib(bytes: u64) -> u64 {
    bytes >> 20
}

/// Refuses (507) an upload whose declared size cannot fit on the disk above the reserve.
pub fn check_fits(cfg: &SpoolConfig, declared: Option<u64>) -> AppResult<()> {
    let Some(len) = declared else { return Ok(()) };
    let free = free_bytes(&cfg.dir).map_err(|e| AppError::Internal(e.into()))?;
    if free < len.saturating_add(cfg.min_free_bytes) {
        return Err(AppError::InsufficientStorage(format!(
            "the upload ({} MiB) does not fit: the server has {} MiB of disk free and keeps {} MiB in reserve; \
             nothing was imported",
            mib(len),
            mib(free),
            mib(cfg.min_free_bytes)
        )));
    }
    Ok(())
}

/// Awaits the next piece of a request body, or 408 after the idle timeout.
pub async fn next_or_timeout<T>(cfg: &SpoolConfig, next: impl std::future::Future<Output = T>) -> AppResult<T> {
    tokio::time::timeout(cfg.idle_timeout, next).await.map_err(|_| {
        AppError::RequestTimeout(format!(
            "the upload sent nothing for {} s; nothing was imported",
            cfg.idle_timeout.as_secs()
        ))
    })
}

/// A file being written in the spool directory; deleted when dropped unfinished.
pub struct SpoolFile {
    path: tempfile::TempPath,
    file: tokio::fs::File,
    written: u64,
    unchecked: u64,
    max_bytes: u64,
    what: String,
    cfg: SpoolConfig,
}

impl SpoolFile {
    /// `what` names the upload in messages ("the upload", "photo.png").
    pub async fn create(cfg: &SpoolConfig, max_bytes: u64, what: &str) -> AppResult<SpoolFile> {
        let path = tempfile::NamedTempFile::new_in(&cfg.dir)
            .map_err(|e| AppError::Internal(e.into()))?
            .into_temp_path();
        let file = tokio::fs::File::create(&path).await.map_err(|e| AppError::Internal(e.into()))?;
        Ok(SpoolFile { path, file, written: 0, unchecked: 0, max_bytes, what: what.to_string(), cfg: cfg.clone() })
    }

    pub async fn write(&mut self, chunk: &[u8]) -> AppResult<()> {
        self.written += chunk.len() as u64;
        if self.written > self.max_bytes {
            return Err(AppError::PayloadTooLarge(format!(
                "{} is larger than the limit of {} MiB",
                self.what,
                mib(self.max_bytes)
            )));
        }
        self.unchecked += chunk.len() as u64;
        if self.unchecked >= CHECK_EVERY {
            self.unchecked = 0;
            let free = free_bytes(&self.cfg.dir).map_err(|e| AppError::Internal(e.into()))?;
            if free < self.cfg.min_free_bytes {
                return Err(AppError::InsufficientStorage(format!(
                    "the server's disk is almost full ({} MiB free, {} MiB kept in reserve); the upload was \
                     stopped and nothing was imported",
                    mib(free),
                    mib(self.cfg.min_free_bytes)
                )));
            }
        }
        self.file.write_all(chunk).await.map_err(|e| AppError::Internal(e.into()))
    }

    pub async fn finish(mut self) -> AppResult<tempfile::TempPath> {
        self.file.flush().await.map_err(|e| AppError::Internal(e.into()))?;
        Ok(self.path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_instance_dirs_go_live_ones_stay() {
        let root = tempfile::tempdir().unwrap();
        let own = root.path().join("own");
        let live = root.path().join("live");
        let dead = root.path().join("dead");
        for d in [&own, &live, &dead] {
            std::fs::create_dir_all(d).unwrap();
            touch_alive(d);
            std::fs::write(d.join("upload"), b"x").unwrap();
        }
        let old = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options().write(true).open(dead.join(ALIVE)).unwrap().set_modified(old).unwrap();
        std::fs::File::options().write(true).open(own.join(ALIVE)).unwrap().set_modified(old).unwrap();
        remove_stale(root.path(), &own, STALE_INSTANCE);
        assert!(own.join("upload").exists(), "never the instance's own directory");
        assert!(live.join("upload").exists(), "a live instance's uploads stay");
        assert!(!dead.exists(), "a dead instance's directory goes");
    }

    #[test]
    fn an_upload_that_cannot_fit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = SpoolConfig { dir: dir.path().into(), min_free_bytes: u64::MAX / 2, idle_timeout: Duration::from_secs(1) };
        assert!(matches!(check_fits(&cfg, Some(10)), Err(AppError::InsufficientStorage(_))));
        assert!(check_fits(&cfg, None).is_ok());
        let cfg = SpoolConfig { min_free_bytes: 0, ..cfg };
        assert!(check_fits(&cfg, Some(10)).is_ok());
    }
}
