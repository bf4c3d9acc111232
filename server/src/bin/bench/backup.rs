//! `--backup-during`: the labelers label while `mirrorset backup` copies the server's SQLite
//! database and image files (the README says labelers go on meanwhile: this measures it).
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{percentiles, run_labeler, Auth, Percentiles};

/// Figures of the labeling loop run while a backup is taken.
pub struct DuringBackup {
    seconds: f64,
    /// What `mirrorset backup` printed (counts, sizes, image files).
    report: String,
    labelers: usize,
    /// The server's WAL file when the backup ended: it grows while the backup's read
    /// transaction keeps the checkpoints from its start.
    wal_mib: f64,
    next: Percentiles,
    submit: Percentiles,
    annotations: u64,
}

/// Runs the labelers (`tokens`) on project `pid` while `bin backup` copies `database_url`
/// (SQLite) and `data_dir` into a directory of `tmp`; every request must succeed.
#[allow(clippy::too_many_arguments)]
pub async fn scenario(
    bin: &Path,
    database_url: &str,
    data_dir: &Path,
    base: &str,
    pid: i64,
    tokens: &[String],
    think: Duration,
    tmp: &tempfile::TempDir,
    say: &dyn Fn(&str),
) -> Result<DuringBackup> {
    let step = "step 5c (labeling during a backup)";
    say(&format!("[5c] {} labelers labeling while `mirrorset backup` copies the database", tokens.len()));
    let stop = Arc::new(AtomicBool::new(false));
    let submitted = Arc::new(AtomicU64::new(0));
    let far = Instant::now() + Duration::from_secs(24 * 3600);
    let tasks: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let auth = Auth::Bearer(t.clone());
            let (submitted, stop) = (submitted.clone(), stop.clone());
            tokio::spawn(run_labeler(2000 + i, base.to_string(), pid, auth, far, None, think, submitted, stop))
        })
        .collect();
    let mut command = tokio::process::Command::new(bin);
    command.arg("backup").arg("--to").arg(tmp.path().join("backup")).arg("--database-url").arg(database_url);
    command.arg("--data-dir").arg(data_dir);
    let t = Instant::now();
    let out = command.output().await.with_context(|| format!("{step}: running {}", bin.display()));
    let seconds = t.elapsed().as_secs_f64();
    let wal = database_url.strip_prefix("sqlite://").map(|f| format!("{f}-wal"));
    let wal_mib = wal.and_then(|w| std::fs::metadata(w).ok()).map_or(0.0, |m| m.len() as f64 / 1048576.0);
    stop.store(true, Ordering::Relaxed);
    let (mut next_ms, mut submit_ms) = (Vec::new(), Vec::new());
    for task in tasks {
        let r = task.await.with_context(|| format!("{step}: a labeler task panicked"))??;
        next_ms.extend(r.next_ms);
        submit_ms.extend(r.submit_ms);
    }
    let out = out?;
    if !out.status.success() {
        bail!("{step}: the backup failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(DuringBackup {
        seconds,
        report: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        labelers: tokens.len(),
        wal_mib,
        next: percentiles(next_ms),
        submit: percentiles(submit_ms),
        annotations: submitted.load(Ordering::Relaxed),
    })
}

impl DuringBackup {
    pub fn summary(&self) -> String {
        let mut s = format!(
            "\nLabeling during a backup ({:.1} s; {} labelers, {} annotations; the server's WAL {:.1} MiB at \
             its end)\n  {}\n",
            self.seconds, self.labelers, self.annotations, self.wal_mib, self.report
        );
        s.push_str("                          count      p50      p95      p99      max     mean (ms)\n");
        for (name, p) in [("next", self.next), ("submit", self.submit)] {
            s.push_str(&format!(
                "  {name:<20} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}\n",
                p.count, p.p50, p.p95, p.p99, p.max, p.mean
            ));
        }
        s
    }

    pub fn to_json(&self) -> Value {
        json!({
            "backup_seconds": self.seconds,
            "report": self.report,
            "labelers": self.labelers,
            "wal_mib": self.wal_mib,
            "annotations": self.annotations,
            "next": self.next.to_json(),
            "submit": self.submit.to_json(),
        })
    }
}
