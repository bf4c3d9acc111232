//! `mirrorset release ...`: dev-set releases through the JSON API (the routes the browser
//! uses), and `verify`, which checks an exported release on disk with the same code the
//! server hashes with (`crate::releases::export::verify`).
use std::path::PathBuf;

use app::api_types::{ErrorBody, FreezeJob};
use clap::{Args, Subcommand};
use serde_json::Value;

use super::client::{warn_if_in_clear, ApiArgs};

#[derive(Debug, Args)]
pub struct ProjectArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The project id.
    #[arg(long)]
    pub project: i64,
}

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// List the project's releases (of one dev set with --devset).
    List {
        #[command(flatten)]
        project: ProjectArgs,
        #[arg(long)]
        devset: Option<i64>,
    },
    /// Freeze a dev set as its next release. REQUEST is a JSON file of the freeze request
    /// (dev_share, test_share, seed, group_by, train_dev_size, licenses, sources,
    /// jaccard_threshold, override_unready, override_leakage); without it, the defaults.
    /// The freeze runs as a job: this waits for it (its phase on stderr). A refusal prints the
    /// items or leakage pairs that block it and exits non-zero.
    Freeze {
        #[command(flatten)]
        project: ProjectArgs,
        #[arg(long)]
        devset: i64,
        request: Option<PathBuf>,
    },
    /// A release's summary, lineage and dataset card.
    Show {
        #[command(flatten)]
        project: ProjectArgs,
        #[arg(long)]
        release: i64,
    },
    /// Download a release: zip (default; the Hugging Face folder with JSONL, CSV, Label
    /// Studio JSON and the manifest), jsonl, csv, label_studio, card or manifest.
    Export {
        #[command(flatten)]
        project: ProjectArgs,
        #[arg(long)]
        release: i64,
        #[arg(long, default_value = "zip")]
        format: String,
        /// Where to write it; with a zip and --unpack, a folder to unpack it into.
        #[arg(long)]
        out: PathBuf,
        #[arg(long)]
        unpack: bool,
    },
    /// What changed from release --from to release --to.
    Diff {
        #[command(flatten)]
        project: ProjectArgs,
        #[arg(long)]
        from: i64,
        #[arg(long)]
        to: i64,
    },
    /// Recompute an unpacked release's content hash and file checksums against its manifest.
    Verify { dir: PathBuf },
}

async fn error_of(resp: reqwest::Response) -> anyhow::Error {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => {
            let mut msg = format!("{} ({status})", body.error.message);
            if !body.error.details.is_null() {
                msg.push('\n');
                msg.push_str(&serde_json::to_string_pretty(&body.error.details).unwrap_or_default());
            }
            anyhow::anyhow!(msg)
        }
        Err(_) => anyhow::anyhow!("the server answered {status}: {text}"),
    }
}

pub async fn run(cmd: ReleaseCommand) -> anyhow::Result<()> {
    if let ReleaseCommand::Verify { dir } = &cmd {
        let hash = crate::releases::export::verify(dir).map_err(|e| anyhow::anyhow!("{}: does not verify:\n{e}", dir.display()))?;
        println!("{}: OK, content hash {hash}", dir.display());
        return Ok(());
    }
    let http = reqwest::Client::new();
    let base = |p: &ProjectArgs| {
        warn_if_in_clear(&p.api);
        format!("{}/api/projects/{}", p.api.url.trim_end_matches('/'), p.project)
    };
    let get = |p: &ProjectArgs, path: String| http.get(format!("{}{path}", base(p))).bearer_auth(&p.api.token);
    let resp = match cmd {
        ReleaseCommand::Verify { .. } => unreachable!("handled above"),
        ReleaseCommand::List { project, devset } => {
            let q = devset.map(|d| format!("?devset_id={d}")).unwrap_or_default();
            get(&project, format!("/releases{q}")).send().await?
        }
        ReleaseCommand::Freeze { project, devset, request } => {
            let body: Value = match request {
                Some(path) => {
                    let text = std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", path.display()))?
                }
                None => serde_json::json!({}),
            };
            let resp =
                http.post(format!("{}/devsets/{devset}/releases", base(&project))).bearer_auth(&project.api.token).json(&body).send().await?;
            if !resp.status().is_success() {
                return Err(error_of(resp).await);
            }
            // 202: the freeze is a job; follow it to its end, its phase on stderr.
            let mut job: FreezeJob = resp.json().await?;
            let mut last = String::new();
            while !job.finished() {
                let now = format!("{} {}/{}", job.phase.as_deref().unwrap_or("queued"), job.job.progress_done, job.job.progress_total);
                if now != last {
                    eprintln!("freeze {}: {now}", job.job.id);
                    last = now;
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
                let r = get(&project, format!("/release-freezes/{}", job.job.id)).send().await?;
                if !r.status().is_success() {
                    return Err(error_of(r).await);
                }
                job = r.json().await?;
            }
            if let Some(b) = job.blocked {
                let mut msg = format!("refused: {}", b.message);
                if !b.details.is_null() {
                    msg.push('\n');
                    msg.push_str(&serde_json::to_string_pretty(&b.details).unwrap_or_default());
                }
                anyhow::bail!(msg);
            }
            match job.release {
                Some(release) => println!("{}", serde_json::to_string_pretty(&release)?),
                None => anyhow::bail!("the freeze failed: {}", job.job.error.unwrap_or_default()),
            }
            return Ok(());
        }
        ReleaseCommand::Show { project, release } => get(&project, format!("/releases/{release}")).send().await?,
        ReleaseCommand::Diff { project, from, to } => get(&project, format!("/releases/{from}/diff/{to}")).send().await?,
        ReleaseCommand::Export { project, release, format, out, unpack } => {
            let resp = get(&project, format!("/releases/{release}/export?format={format}")).send().await?;
            if !resp.status().is_success() {
                return Err(error_of(resp).await);
            }
            let bytes = resp.bytes().await?;
            if unpack {
                if format != "zip" {
                    anyhow::bail!("--unpack is for --format zip");
                }
                zip::ZipArchive::new(std::io::Cursor::new(bytes))?.extract(&out)?;
            } else {
                std::fs::write(&out, &bytes).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", out.display()))?;
            }
            eprintln!("wrote {}", out.display());
            return Ok(());
        }
    };
    if !resp.status().is_success() {
        return Err(error_of(resp).await);
    }
    let v: Value = resp.json().await?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
