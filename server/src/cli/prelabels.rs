//! `mirrorset prelabels ...`: imported predictions, the sources' figures, auto-accept and the
//! export's estimated noise through the JSON API (the routes the browser uses). Prints the API's JSON answer; a refused file lists its
//! bad lines like `mirrorset import`.
use std::path::PathBuf;

use clap::Subcommand;
use serde_json::Value;

use super::client::{api_error, warn_if_in_clear};
use super::devset::ProjectArgs;

#[derive(Debug, Subcommand)]
pub enum PrelabelsCommand {
    /// Upload model predictions: JSONL, one {"item": external id, "label" (or "labels"),
    /// "score", "model", "version"} per line; all or nothing.
    Import {
        #[command(flatten)]
        project: ProjectArgs,
        file: PathBuf,
    },
    /// The project's pre-label sources: counts, acceptance with its interval, time per item.
    Sources(ProjectArgs),
    /// Turn auto-accept on (at the threshold the audits justify now) or off for a source, one
    /// label set (`--label`, repeated for a multi-label set) or all of them.
    AutoAccept {
        #[command(flatten)]
        project: ProjectArgs,
        /// The source's id (`mirrorset prelabels sources`).
        #[arg(long)]
        source: i64,
        #[arg(long = "label")]
        labels: Vec<String>,
        /// Turn it off instead.
        #[arg(long)]
        off: bool,
    },
    /// The estimated noise of the export: final labels by source per label, and the audited
    /// precision of the auto-accepted part.
    Noise(ProjectArgs),
}

pub async fn run(cmd: PrelabelsCommand) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let base = |p: &ProjectArgs| {
        warn_if_in_clear(&p.api);
        format!("{}/api/projects/{}/prelabels", p.api.url.trim_end_matches('/'), p.project)
    };
    let resp = match cmd {
        PrelabelsCommand::Import { project, file } => {
            let body = tokio::fs::File::open(&file).await.map_err(|e| anyhow::anyhow!("cannot open {}: {e}", file.display()))?;
            let len = body.metadata().await?.len();
            http.post(format!("{}/import", base(&project)))
                .bearer_auth(&project.api.token)
                .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
                .header(reqwest::header::CONTENT_LENGTH, len)
                .body(reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(body)))
                .send()
                .await?
        }
        PrelabelsCommand::Sources(p) => http.get(format!("{}/sources", base(&p))).bearer_auth(&p.api.token).send().await?,
        PrelabelsCommand::AutoAccept { project, source, labels, off } => {
            let body = app::api_types::AutoAcceptRequest {
                source_id: source,
                labels: (!labels.is_empty()).then_some(labels),
                enabled: !off,
            };
            http.put(format!("{}/auto-accept", base(&project))).bearer_auth(&project.api.token).json(&body).send().await?
        }
        PrelabelsCommand::Noise(p) => {
            warn_if_in_clear(&p.api);
            let url = format!("{}/api/projects/{}/export/summary", p.api.url.trim_end_matches('/'), p.project);
            http.get(url).bearer_auth(&p.api.token).send().await?
        }
    };
    if !resp.status().is_success() {
        return Err(api_error(resp).await);
    }
    let v: Value = resp.json().await?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}
