//! `--backup-during`: the labelers label while `mirrorset backup` copies the server's SQLite
//! database and image files (the README says labelers go on meanwhile: this measures it).
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};

use super::{latency_table, Auth, LabelersBeside, Percentiles};

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
    let auths = tokens.iter().cloned().map(Auth::Bearer).collect();
    let labelers = LabelersBeside::start(2000, base, pid, auths, think);
    let mut command = tokio::process::Command::new(bin);
    command.arg("backup").arg("--to").arg(tmp.path().join("backup")).arg("--database-url").arg(database_url);
    command.arg("--data-dir").arg(data_dir);
    let t = Instant::now();
    let out = command.output().await.with_context(|| format!("{step}: running {}", bin.display()));
    let seconds = t.elapsed().as_secs_f64();
    let wal = database_url.strip_prefix("sqlite://").map(|f| format!("{f}-wal"));
    let wal_mib = wal.and_then(|w| std::fs::metadata(w).ok()).map_or(0.0, |m| m.len() as f64 / 1048576.0);
    let (next, submit, annotations) = labelers.finish(step).await?;
    let out = out?;
    if !out.status.success() {
        bail!("{step}: the backup failed ({}): {}", out.status, String::from_utf8_lossy(&out.stderr));
    }
    Ok(DuringBackup {
        seconds,
        report: String::from_utf8_lossy(&out.stdout).trim().to_string(),
        labelers: tokens.len(),
        wal_mib,
        next,
        submit,
        annotations,
    })
}

impl DuringBackup {
    pub fn summary(&self) -> String {
        let mut s = format!(
            "\nLabeling during a backup ({:.1} s; {} labelers, {} annotations; the server's WAL {:.1} MiB at \
             its end)\n  {}\n",
            self.seconds, self.labelers, self.annotations, self.wal_mib, self.report
        );
        s.push_str(&latency_table(self.next, self.submit));
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
