//! `mirrorset import`, `mirrorset export` and `mirrorset audit export`: the JSON API from the command line, with
//! progress bars. They use the same HTTP API as the browser UI and users' scripts.
use std::path::PathBuf;

use app::api_types::{ErrorBody, ImportReport};
use clap::Args;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use tokio::io::AsyncWriteExt;

use crate::import::ImportFormat;

#[derive(Debug, Args)]
pub struct ApiArgs {
    /// The Mirrorset server.
    #[arg(long, env = "MIRRORSET_URL", default_value = "http://127.0.0.1:3000")]
    pub url: String,
    /// An API token (`mirrorset token create`, or the web UI's API tokens page).
    #[arg(long, env = "MIRRORSET_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The project id.
    #[arg(long)]
    pub project: i64,
    /// jsonl, csv, zip or label-studio (a Label Studio JSON export; default: from the file's extension).
    #[arg(long)]
    pub format: Option<String>,
    /// The file to import.
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The project id.
    #[arg(long)]
    pub project: i64,
    /// jsonl, csv, or annotations (one {"item", "annotator", "label"} line per annotation, the
    /// input of `mirrorset stats agreement` and `aggregate`).
    #[arg(long, default_value = "jsonl")]
    pub format: String,
    /// Only items with at least `overlap` labels.
    #[arg(long)]
    pub complete_only: bool,
    /// CSV: write cells exactly as stored. By default a cell starting with = + - @ (or a tab or
    /// carriage return) gets a leading ' so spreadsheets do not run it as a formula.
    #[arg(long)]
    pub keep_formulas: bool,
    /// Where to write (default: standard output).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Download an audit log as JSON Lines, one entry per line, oldest first: a project's (lead
    /// or admin of it), or without --project the account changes (admin).
    Export(AuditExportArgs),
}

#[derive(Debug, Args)]
pub struct AuditExportArgs {
    #[command(flatten)]
    pub api: ApiArgs,
    /// The project id (default: the account changes, which belong to no project).
    #[arg(long)]
    pub project: Option<i64>,
    /// Where to write (default: standard output).
    #[arg(long, short)]
    pub out: Option<PathBuf>,
}

fn bytes_bar(len: Option<u64>, verb: &str) -> ProgressBar {
    let bar = match len {
        Some(n) => ProgressBar::new(n),
        None => ProgressBar::new_spinner(),
    };
    let template = if len.is_some() {
        format!("{verb} {{bar:40}} {{bytes}}/{{total_bytes}} {{bytes_per_sec}} {{eta}}")
    } else {
        format!("{verb} {{spinner}} {{bytes}} {{bytes_per_sec}}")
    };
    bar.set_style(ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_bar()));
    bar
}

pub(crate) async fn api_error(resp: reqwest::Response) -> anyhow::Error {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => {
            let mut msg = format!("{} ({status})", body.error.message);
            if let Ok(report) = serde_json::from_value::<ImportReport>(body.error.details.clone()) {
                for e in &report.errors {
                    let field = if e.field.is_empty() { String::new() } else { format!(" [{}]", e.field) };
                    msg.push_str(&format!("\n  line {}{}: {}", e.line, field, e.reason));
                }
                if report.error_count as usize > report.errors.len() {
                    msg.push_str(&format!("\n  ... and {} more", report.error_count as usize - report.errors.len()));
                }
            }
            anyhow::anyhow!(msg)
        }
        Err(_) => anyhow::anyhow!("the server answered {status}: {text}"),
    }
}

/// True when the token would cross a network unencrypted: plain http to a host other than
/// this machine.
fn token_in_clear(url: &str) -> bool {
    let Ok(url) = reqwest::Url::parse(url) else { return false };
    let host = url.host_str().unwrap_or("").trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    url.scheme() == "http" && !loopback
}

pub(crate) fn warn_if_in_clear(api: &ApiArgs) {
    if token_in_clear(&api.url) {
        eprintln!("warning: {} is plain HTTP, so your token travels unencrypted; use https://", api.url);
    }
}

pub async fn import(args: ImportArgs) -> anyhow::Result<()> {
    warn_if_in_clear(&args.api);
    let format = match &args.format {
        Some(f) => ImportFormat::parse(f).ok_or_else(|| anyhow::anyhow!("unknown format {f:?}: use jsonl, csv, zip or label-studio"))?,
        None => ImportFormat::from_file_name(&args.file.to_string_lossy())
            .ok_or_else(|| anyhow::anyhow!("cannot tell the format from the file name; pass --format"))?,
    };
    let format_name = format.name();
    let file = tokio::fs::File::open(&args.file)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", args.file.display()))?;
    let len = file.metadata().await?.len();
    let bar = bytes_bar(Some(len), "uploading");
    let counting = {
        let bar = bar.clone();
        tokio_util::io::ReaderStream::new(file).inspect(move |chunk| {
            if let Ok(c) = chunk {
                bar.inc(c.len() as u64);
            }
        })
    };
    let url = format!("{}/api/projects/{}/import?format={format_name}", args.api.url.trim_end_matches('/'), args.project);
    let resp = reqwest::Client::new()
        .post(url)
        .bearer_auth(&args.api.token)
        .header(reqwest::header::CONTENT_LENGTH, len)
        .body(reqwest::Body::wrap_stream(counting))
        .send()
        .await?;
    bar.finish_and_clear();
    if !resp.status().is_success() {
        return Err(api_error(resp).await);
    }
    let answer: serde_json::Value = resp.json().await?;
    let report: ImportReport = serde_json::from_value(answer.clone())?;
    eprintln!(
        "imported {} of {} records ({} duplicates skipped)",
        report.imported, report.lines, report.duplicates
    );
    // A Label Studio import also says what became of the file's annotations.
    if let Ok(ls) = serde_json::from_value::<app::api_types::LabelStudioImportReport>(answer.clone()) {
        eprintln!("{}", app::api_types::annotation_import_line(&ls.annotations));
    }
    // The whole answer, as the server sent it.
    println!("{}", serde_json::to_string_pretty(&answer)?);
    Ok(())
}

pub async fn export(args: ExportArgs) -> anyhow::Result<()> {
    warn_if_in_clear(&args.api);
    let url = format!(
        "{}/api/projects/{}/export?format={}&complete_only={}&formulas={}",
        args.api.url.trim_end_matches('/'),
        args.project,
        args.format,
        args.complete_only,
        if args.keep_formulas { "keep" } else { "neutralise" }
    );
    download(&args.api, url, args.out.as_ref()).await
}

pub async fn audit(cmd: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::Export(args) = cmd;
    warn_if_in_clear(&args.api);
    let base = args.api.url.trim_end_matches('/');
    let url = match args.project {
        Some(pid) => format!("{base}/api/projects/{pid}/audit"),
        None => format!("{base}/api/audit"),
    };
    download(&args.api, url, args.out.as_ref()).await
}

/// GETs `url` and streams the body to `out` (or stdout), with a progress bar for a file.
async fn download(api: &ApiArgs, url: String, out_path: Option<&PathBuf>) -> anyhow::Result<()> {
    let resp = reqwest::Client::new().get(url).bearer_auth(&api.token).send().await?;
    if !resp.status().is_success() {
        return Err(api_error(resp).await);
    }
    let mut out: Box<dyn tokio::io::AsyncWrite + Unpin> = match out_path {
        Some(path) => Box::new(tokio::fs::File::create(path).await?),
        None => Box::new(tokio::io::stdout()),
    };
    let bar = bytes_bar(None, "downloading");
    if out_path.is_none() {
        bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    }
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        bar.inc(chunk.len() as u64);
        out.write_all(&chunk).await?;
    }
    out.flush().await?;
    bar.finish_and_clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::token_in_clear;

    #[test]
    fn plain_http_beyond_this_machine_is_flagged() {
        assert!(token_in_clear("http://labels.example.org"));
        assert!(token_in_clear("http://10.0.0.5:3000"));
        for ok in ["https://labels.example.org", "http://127.0.0.1:3000", "http://localhost:3000", "http://[::1]:3000"] {
            assert!(!token_in_clear(ok), "{ok}");
        }
    }
}
