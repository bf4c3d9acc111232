//! `mirrorset devset ...`: production profiles and production-matched dev sets through the
//! JSON API (the same routes the browser uses). Every command prints the API's JSON answer.
use std::path::PathBuf;

use app::api_types::ErrorBody;
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

#[derive(Debug, Args)]
pub struct DevsetArgs {
    #[command(flatten)]
    pub project: ProjectArgs,
    /// The dev set id.
    #[arg(long)]
    pub devset: i64,
}

#[derive(Debug, Subcommand)]
pub enum DevsetCommand {
    /// Upload a production profile: a sample of records (JSONL/CSV of meta attributes or full
    /// items) or, with --kind counts, a counts table (attribute columns and `count`).
    Profile {
        #[command(flatten)]
        project: ProjectArgs,
        #[arg(long)]
        name: String,
        /// YYYY-MM-DD: when production looked like this.
        #[arg(long)]
        date: String,
        /// records (default) or counts.
        #[arg(long, default_value = "records")]
        kind: String,
        /// jsonl or csv (default: from the file name).
        #[arg(long)]
        format: Option<String>,
        file: PathBuf,
    },
    /// List the project's production profiles.
    Profiles(ProjectArgs),
    /// Create a dev-set draft from a JSON file ({"name", "profile_id", "attributes", "size" or
    /// "calculator", "min_per_stratum", "must_include", "exclude", "seed", "overlap"}).
    Create {
        #[command(flatten)]
        project: ProjectArgs,
        draft: PathBuf,
    },
    /// List the project's dev sets.
    List(ProjectArgs),
    /// The plan: size and what drove it, allocation per stratum, shortfalls, expected distances.
    Plan(DevsetArgs),
    /// Sample the plan with the dev set's seed; the members become a labeling campaign.
    Sample(DevsetArgs),
    /// Campaign progress per stratum.
    Progress(DevsetArgs),
    /// Distribution report against the dev set's profile, or --profile (a newer one: drift);
    /// --max-tvd adds the top-up plan: the fewest new labels to get back under that TVD.
    Report {
        #[command(flatten)]
        devset: DevsetArgs,
        #[arg(long)]
        profile: Option<i64>,
        #[arg(long)]
        max_tvd: Option<f64>,
    },
}

/// The API's error as one message, with the bad lines a refused profile lists.
async fn error_of(resp: reqwest::Response) -> anyhow::Error {
    let status = resp.status();
    let text = resp.text().await.unwrap_or_default();
    match serde_json::from_str::<ErrorBody>(&text) {
        Ok(body) => {
            let mut msg = format!("{} ({status})", body.error.message);
            for e in body.error.details.get("errors").and_then(Value::as_array).into_iter().flatten() {
                let s = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_string();
                let field = s("field");
                let field = if field.is_empty() { String::new() } else { format!(" [{field}]") };
                msg.push_str(&format!("\n  line {}{field}: {}", e.get("line").and_then(Value::as_i64).unwrap_or(0), s("reason")));
            }
            anyhow::anyhow!(msg)
        }
        Err(_) => anyhow::anyhow!("the server answered {status}: {text}"),
    }
}

async fn finish(resp: reqwest::Response) -> anyhow::Result<()> {
    if !resp.status().is_success() {
        return Err(error_of(resp).await);
    }
    let v: Value = resp.json().await?;
    println!("{}", serde_json::to_string_pretty(&v)?);
    Ok(())
}

pub async fn run(cmd: DevsetCommand) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let base = |p: &ProjectArgs| {
        warn_if_in_clear(&p.api);
        format!("{}/api/projects/{}", p.api.url.trim_end_matches('/'), p.project)
    };
    let get = |p: &ProjectArgs, path: String| http.get(format!("{}{path}", base(p))).bearer_auth(&p.api.token);
    let resp = match cmd {
        DevsetCommand::Profile { project, name, date, kind, format, file } => {
            let format = format.unwrap_or_else(|| {
                if file.to_string_lossy().to_ascii_lowercase().ends_with(".csv") { "csv" } else { "jsonl" }.to_string()
            });
            let body = tokio::fs::File::open(&file).await.map_err(|e| anyhow::anyhow!("cannot open {}: {e}", file.display()))?;
            let len = body.metadata().await?.len();
            let url = reqwest::Url::parse_with_params(
                &format!("{}/profiles", base(&project)),
                &[("name", name.as_str()), ("date", date.as_str()), ("kind", kind.as_str()), ("format", format.as_str())],
            )?;
            http.post(url)
                .bearer_auth(&project.api.token)
                .header(reqwest::header::CONTENT_LENGTH, len)
                .body(reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::new(body)))
                .send()
                .await?
        }
        DevsetCommand::Profiles(p) => get(&p, "/profiles".into()).send().await?,
        DevsetCommand::Create { project, draft } => {
            let text = std::fs::read_to_string(&draft).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", draft.display()))?;
            let body: Value = serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{}: not JSON: {e}", draft.display()))?;
            http.post(format!("{}/devsets", base(&project))).bearer_auth(&project.api.token).json(&body).send().await?
        }
        DevsetCommand::List(p) => get(&p, "/devsets".into()).send().await?,
        DevsetCommand::Plan(d) => get(&d.project, format!("/devsets/{}/plan", d.devset)).send().await?,
        DevsetCommand::Progress(d) => get(&d.project, format!("/devsets/{}/progress", d.devset)).send().await?,
        DevsetCommand::Sample(d) => {
            http.post(format!("{}/devsets/{}/sample", base(&d.project), d.devset)).bearer_auth(&d.project.api.token).send().await?
        }
        DevsetCommand::Report { devset, profile, max_tvd } => {
            let mut params: Vec<String> = profile.map(|p| format!("profile_id={p}")).into_iter().collect();
            params.extend(max_tvd.map(|t| format!("max_tvd={t}")));
            let query = if params.is_empty() { String::new() } else { format!("?{}", params.join("&")) };
            get(&devset.project, format!("/devsets/{}/report{query}", devset.devset)).send().await?
        }
    };
    finish(resp).await
}
