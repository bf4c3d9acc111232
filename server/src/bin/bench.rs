//! `mirrorset-bench`: end-to-end benchmark of the labeling loop against the real server.
//!
//! Starts `mirrorset serve` on a free 127.0.0.1 port with a temporary data directory (SQLite
//! by default, or `--database-url postgres://...`), then measures, over HTTP:
//! import of an N-line JSONL, C labelers running next/submit concurrently (latency
//! percentiles, throughput), JSONL and CSV export, and the server's peak memory.
//! See docs/bench.md.
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use clap::Parser;
use futures::StreamExt;
use rand::distributions::Alphanumeric;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Client, Method, StatusCode};
use serde_json::{json, Value};

#[path = "bench/agreement.rs"]
mod agreement;
#[path = "bench/devset.rs"]
mod devset;
#[path = "bench/releases.rs"]
mod releases;
#[path = "bench/rules.rs"]
mod rules;
#[path = "bench/model.rs"]
mod model;
#[path = "bench/baseline.rs"]
mod baseline;
#[path = "bench/backup.rs"]
mod backup;
#[path = "bench/server_side.rs"]
mod server_side;

/// Targets the figures are compared against.
const TARGET_IMPORT_ITEMS_PER_S: f64 = 50_000.0;
const TARGET_NEXT_P99_MS: f64 = 5.0;
/// Issue 11's target for several PostgreSQL instances on one database (`--instances`).
const TARGET_NEXT_P99_MS_INSTANCES: f64 = 20.0;
const TARGET_EXPORT_S: f64 = 2.0;
/// Issue 11's export target at a million items.
const TARGET_EXPORT_1M_S: f64 = 10.0;
/// The server's own memory (RssAnon) during an export (issue 11: < 100 MiB at a million items).
const TARGET_EXPORT_ANON_MIB: f64 = 100.0;
/// Labeling while a large import runs (issue 6).
const TARGET_DURING_IMPORT_P99_MS: f64 = 50.0;

/// Benchmark of the labeling loop: import, concurrent labelers, export, peak memory.
#[derive(Debug, Parser)]
#[command(name = "mirrorset-bench", version, about)]
struct Args {
    /// Number of text items to generate and import.
    #[arg(long, default_value_t = 100_000)]
    items: u64,
    /// Number of concurrent labelers.
    #[arg(long, default_value_t = 8)]
    labelers: usize,
    /// How long the labelers run, in seconds.
    #[arg(long, default_value_t = 20.0)]
    duration: f64,
    /// Stop the labelers once this many annotations were submitted in total.
    #[arg(long)]
    annotations: Option<u64>,
    /// The project's overlap (annotations wanted per item).
    #[arg(long, default_value_t = 1)]
    overlap: i64,
    /// The `mirrorset` binary to start; default: the one next to this executable.
    #[arg(long)]
    server_bin: Option<PathBuf>,
    /// Database for the server (e.g. postgres://USER@HOST/DB, which should be empty);
    /// default: SQLite in the temporary data directory.
    #[arg(long)]
    database_url: Option<String>,
    /// Each labeler waits about this long between receiving an item and submitting it (drawn
    /// from 0.5–1.5 times it, and a first wait of 0–1 times it, so labelers do not act in
    /// step; 0: a closed loop with no think time, the harshest load).
    #[arg(long, default_value_t = 0)]
    think_ms: u64,
    /// Keep the temporary directory (data, server log) and print its path.
    #[arg(long)]
    keep_dir: bool,
    /// The server's data directory, kept, and reused when it exists (the admin password is
    /// kept in DIR/bench-admin-password; the labelers get fresh names each run). With
    /// --releases, a pool of the same size already imported there is reused instead of
    /// imported again (minutes for a million items).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Also print one JSON document with every figure (on stdout, after the summary).
    #[arg(long)]
    json: bool,
    /// Print only the JSON document (implies --json).
    #[arg(long)]
    json_only: bool,
    /// After the labeling step, run the labelers again while a lead imports a JSONL of this
    /// many lines into another project, and report next/submit latencies during the import.
    #[arg(long)]
    import_during: Option<u64>,
    /// After the labeling step (and --import-during's), run the labelers again while
    /// `mirrorset backup` copies the database and images (SQLite), and report its time and the
    /// next/submit latencies during it.
    #[arg(long)]
    backup_during: bool,
    /// With --import-during: this many more labelers that use cookie sessions and the CSRF
    /// header (as the browser does), besides the --labelers that use bearer tokens.
    #[arg(long, default_value_t = 0)]
    cookie_labelers: usize,
    /// The --labelers sign in with a password and use their session cookie and the CSRF header,
    /// as the browser does, instead of bearer tokens (the labeling step; the other steps and
    /// --import-during's labelers keep their tokens).
    #[arg(long)]
    sessions: bool,
    /// Also measure the consensus refresh and the agreement dashboard (issue 7) on a second
    /// project of --items items × 3 labels (see bench/agreement.rs).
    #[arg(long)]
    agreement: bool,
    /// Also measure production-profile uploads and dev-set plans (issue 8) on a project of its
    /// own (see bench/devset.rs).
    #[arg(long)]
    devset: bool,
    /// Also measure labeling-rule figures (issue 10) on a project of --rules-items items (see
    /// bench/rules.rs).
    #[arg(long)]
    rules: bool,
    /// With --rules: the project's items.
    #[arg(long, default_value_t = 100_000)]
    rules_items: u64,
    /// Also measure the built-in model's training job (issue 10) on a project of
    /// --model-items items, --model-labeled of them with a gold answer, with 8 of the labelers
    /// labeling the main project before and during it (see bench/model.rs).
    #[arg(long)]
    model: bool,
    /// With --model: the project's items.
    #[arg(long, default_value_t = 1_000_000)]
    model_items: u64,
    /// With --model: the items with a gold answer (the training labels).
    #[arg(long, default_value_t = 50_000)]
    model_labeled: u64,
    /// With --devset: the pool's size.
    #[arg(long, default_value_t = 1_000_000)]
    devset_pool: u64,
    /// With --devset: the rows of the production sample uploaded.
    #[arg(long, default_value_t = 1_000_000)]
    devset_rows: u64,
    /// Also measure freezing and exporting a dev-set release (issue 9) on a project of its own:
    /// the leakage check against a pool of --releases-pool items (see bench/releases.rs).
    #[arg(long)]
    releases: bool,
    /// With --releases: the pool's size.
    #[arg(long, default_value_t = 1_000_000)]
    releases_pool: u64,
    /// With --releases: the dev set's (and so the release's) size.
    #[arg(long, default_value_t = 100_000)]
    releases_size: u64,
    /// Start this many `mirrorset serve` processes on the one --database-url (PostgreSQL) and
    /// spread the labelers over them (labeler i talks to instance i mod N); after labeling, the
    /// export is checked: no item over k, every acknowledged submission in it (issue 11).
    #[arg(long, default_value_t = 1)]
    instances: usize,
    /// Compare the figures with the latest run of the same workload recorded in this file
    /// (e.g. docs/bench-baselines.json) and print the changes.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// Append this run's figures to this file (made if missing), labelled with --label.
    #[arg(long)]
    record_baseline: Option<PathBuf>,
    /// With --record-baseline: what the run was (the build, the host's state).
    #[arg(long, default_value = "")]
    label: String,
}

fn main() {
    let args = Args::parse();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = rt.block_on(run(args)) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------------
// The server child process

/// The running server; killed (and reaped) when dropped, so also on every error path.
struct ServerProcess {
    child: std::process::Child,
    log_path: PathBuf,
}

impl ServerProcess {
    fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The last lines of the server's output, for error messages.
    fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(l.local_addr()?.port())
}

/// The admin password of a kept data directory (--data-dir): read back, or made and saved.
fn kept_admin_password(dir: &Path) -> Result<String> {
    let path = dir.join("bench-admin-password");
    if let Ok(p) = std::fs::read_to_string(&path) {
        return Ok(p.trim().to_string());
    }
    let p = random_string(24);
    std::fs::write(&path, &p).with_context(|| format!("writing {}", path.display()))?;
    Ok(p)
}

fn random_string(len: usize) -> String {
    rand::thread_rng().sample_iter(&Alphanumeric).take(len).map(char::from).collect()
}

fn start_server(bin: &Path, port: u16, data_dir: &Path, database_url: Option<&str>, admin_password: &str, extra: &[&str]) -> Result<ServerProcess> {
    if !bin.is_file() {
        bail!(
            "the server binary {} does not exist (build it with `cargo build --release -p server --bins`, or pass --server-bin)",
            bin.display()
        );
    }
    let log_path = data_dir.with_extension("server.log");
    let log = std::fs::File::create(&log_path).with_context(|| format!("creating {}", log_path.display()))?;
    let mut cmd = std::process::Command::new(bin);
    cmd.arg("serve")
        .arg("--addr")
        .arg(format!("127.0.0.1:{port}"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(extra)
        .env("MIRRORSET_ADMIN_PASSWORD", admin_password)
        .env_remove("MIRRORSET_DATABASE_URL")
        .env_remove("MIRRORSET_ADDR")
        .env_remove("MIRRORSET_DATA_DIR")
        .stdin(std::process::Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    if let Some(url) = database_url {
        cmd.arg("--database-url").arg(url);
    }
    let child = cmd.spawn().with_context(|| format!("starting {}", bin.display()))?;
    Ok(ServerProcess { child, log_path })
}

async fn wait_healthy(server: &mut ServerProcess, base: &str) -> Result<Duration> {
    let client = Client::new();
    let start = Instant::now();
    loop {
        if let Some(status) = server.child.try_wait()? {
            bail!("the server exited during start-up ({status}); its output:\n{}", server.log_tail(30));
        }
        if let Ok(resp) = client.get(format!("{base}/api/health")).send().await {
            if resp.status() == StatusCode::OK {
                return Ok(start.elapsed());
            }
        }
        if start.elapsed() > Duration::from_secs(60) {
            bail!("the server did not answer GET /api/health with 200 within 60 s; its output:\n{}", server.log_tail(30));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// Memory

fn proc_status_kib(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field) && l[field.len()..].starts_with(':'))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// A process's write system calls and bytes written so far, to files and sockets alike
/// (`/proc/PID/io`: `syscw`, `wchar`).
fn proc_io_writes(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    let field = |name: &str| text.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse::<u64>().ok());
    Some((field("syscw")?, field("wchar")?))
}

/// The server's writes per label while the labelers ran. A regression in how the writer
/// writes shows here before it shows in the latencies: until session 23 each submission's
/// savepoint journal went to a temporary file, ~50 write calls per label (docs/bench.md).
struct WritesPerLabel {
    calls: f64,
    kib: f64,
}

impl WritesPerLabel {
    fn between(before: (u64, u64), after: (u64, u64), labels: u64) -> WritesPerLabel {
        let n = labels as f64;
        WritesPerLabel {
            calls: after.0.saturating_sub(before.0) as f64 / n,
            kib: after.1.saturating_sub(before.1) as f64 / 1024.0 / n,
        }
    }
}

/// Samples the server's VmRSS and RssAnon every 100 ms and keeps their maxima (KiB).
///
/// Both are reported because SQLite's readers map the database file (`store::connect`): the
/// pages they touch count in VmRSS and VmHWM, but they are the OS's file cache, shared and
/// dropped under memory pressure. RssAnon is the server's own memory (heap, stacks): what a
/// memory target is about.
fn spawn_rss_sampler(pid: u32, max_kib: Arc<AtomicU64>, anon_max_kib: Arc<AtomicU64>, stop: Arc<AtomicBool>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        while !stop.load(Ordering::Relaxed) {
            tick.tick().await;
            if let Some(kib) = proc_status_kib(pid, "VmRSS") {
                max_kib.fetch_max(kib, Ordering::Relaxed);
            }
            if let Some(kib) = proc_status_kib(pid, "RssAnon") {
                anon_max_kib.fetch_max(kib, Ordering::Relaxed);
            }
        }
    })
}

/// One timed phase (a freeze, an export): the server's RssAnon (its own memory: heap, stacks; not the
/// database pages SQLite's readers map, which VmRSS and VmHWM count) at the start and its peak
/// polled every 100 ms, and the load average at both ends.
pub struct Phase {
    pub name: &'static str,
    pub seconds: f64,
    pub anon_start_mib: f64,
    pub anon_peak_mib: f64,
    pub load_start: String,
    pub load_end: String,
}

pub struct PhaseMemory {
    pid: u32,
    anon_start: u64,
    anon_max: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
    load_start: String,
}

impl PhaseMemory {
    pub fn start(pid: u32) -> PhaseMemory {
        let anon_start = proc_status_kib(pid, "RssAnon").unwrap_or(0);
        let anon_max = Arc::new(AtomicU64::new(anon_start));
        let stop = Arc::new(AtomicBool::new(false));
        let task = spawn_rss_sampler(pid, Arc::new(AtomicU64::new(0)), anon_max.clone(), stop.clone());
        PhaseMemory { pid, anon_start, anon_max, stop, task, load_start: loadavg() }
    }

    pub async fn stop(self, name: &'static str, seconds: f64) -> Phase {
        // One last sample: a phase shorter than the poll interval still has its end.
        if let Some(k) = proc_status_kib(self.pid, "RssAnon") {
            self.anon_max.fetch_max(k, Ordering::Relaxed);
        }
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        Phase {
            name,
            seconds,
            anon_start_mib: mib(self.anon_start),
            anon_peak_mib: mib(self.anon_max.load(Ordering::Relaxed)),
            load_start: self.load_start,
            load_end: loadavg(),
        }
    }
}

impl Phase {
    /// RssAnon at the phase's start and its peak, MiB.
    pub fn start_and_peak(&self) -> (f64, f64) {
        (self.anon_start_mib, self.anon_peak_mib)
    }
}

/// The load average over 1, 5 and 15 minutes, as /proc/loadavg gives it.
pub fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg").map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" ")).unwrap_or_default()
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------------------------
// HTTP helpers

/// Sends a request with a bearer token; any status but 2xx becomes an error naming the step
/// and carrying the server's error body.
async fn call(client: &Client, method: Method, url: &str, token: &str, body: Option<&Value>, step: &str) -> Result<Value> {
    let mut req = client.request(method.clone(), url).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(b);
    }
    let resp = req.send().await.with_context(|| format!("{step}: {method} {url} failed"))?;
    json_or_error(resp, &format!("{step}: {method} {url}")).await
}

async fn json_or_error(resp: reqwest::Response, what: &str) -> Result<Value> {
    let status = resp.status();
    let bytes = resp.bytes().await.with_context(|| format!("{what}: reading the response"))?;
    if !status.is_success() {
        bail!("{what} returned {status}: {}", String::from_utf8_lossy(&bytes));
    }
    if bytes.is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_slice(&bytes)
        .with_context(|| format!("{what}: the response is not JSON: {}", String::from_utf8_lossy(&bytes)))
}

/// How a labeler authenticates: a bearer token, or a session cookie with its CSRF token.
#[derive(Clone)]
enum Auth {
    Bearer(String),
    Cookie { cookie: String, csrf: String },
}

impl Auth {
    fn apply(&self, req: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Auth::Bearer(t) => req.bearer_auth(t),
            Auth::Cookie { cookie, csrf } => req.header(reqwest::header::COOKIE, cookie).header("x-csrf-token", csrf),
        }
    }
}

/// How the labeling step's labelers authenticate, in words (the summary, the JSON document).
fn labelers_auth(args: &Args) -> &'static str {
    if args.sessions {
        "cookie sessions"
    } else {
        "bearer tokens"
    }
}

/// Signs in with a password: the session cookie and the CSRF token.
async fn sign_in(client: &Client, base: &str, username: &str, password: &str) -> Result<Auth> {
    let step = format!("signing in as {username}");
    let resp = client
        .post(format!("{base}/api/auth/login"))
        .json(&json!({ "username": username, "password": password }))
        .send()
        .await
        .with_context(|| format!("{step}: POST /api/auth/login failed"))?;
    let cookies: Vec<String> = resp
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next())
        .map(str::to_string)
        .collect();
    let me = json_or_error(resp, &format!("{step}: POST /api/auth/login")).await?;
    let csrf = me["csrf_token"].as_str().ok_or_else(|| anyhow!("{step}: no csrf_token in {me}"))?.to_string();
    if cookies.is_empty() {
        bail!("{step}: the sign-in response set no cookie");
    }
    Ok(Auth::Cookie { cookie: cookies.join("; "), csrf })
}

/// Signs in with a password (session cookie + CSRF token), then creates an API token.
async fn token_for(client: &Client, base: &str, username: &str, password: &str) -> Result<String> {
    Ok(session_and_token(client, base, username, password).await?.1)
}

/// Signs in with a password: the session (cookie + CSRF token), and an API token made with it.
async fn session_and_token(client: &Client, base: &str, username: &str, password: &str) -> Result<(Auth, String)> {
    let step = format!("signing in as {username}");
    let session = sign_in(client, base, username, password).await?;
    let resp = session
        .apply(client.post(format!("{base}/api/tokens")))
        .json(&json!({ "name": "bench" }))
        .send()
        .await
        .with_context(|| format!("{step}: POST /api/tokens failed"))?;
    let created = json_or_error(resp, &format!("{step}: POST /api/tokens")).await?;
    let token = created["secret"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| anyhow!("{step}: no secret in the token response {created}"))?;
    Ok((session, token))
}

// ---------------------------------------------------------------------------------------------
// Data

const WORDS: &[&str] = &[
    "order", "late", "refund", "battery", "screen", "delivery", "great", "broken", "support", "price",
    "fast", "slow", "charger", "app", "crash", "login", "password", "update", "love", "hate", "works",
    "again", "never", "always", "package", "driver", "store", "receipt", "quality", "sound",
];
const REGIONS: &[&str] = &["eu", "us", "apac", "latam"];
const DEVICES: &[&str] = &["ios", "android", "web"];

/// Writes N unique JSONL text items of about 100 characters each; returns the file size.
fn generate_jsonl(path: &Path, n: u64) -> Result<u64> {
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    let mut rng = StdRng::seed_from_u64(42);
    let mut text = String::with_capacity(160);
    for i in 0..n {
        text.clear();
        // The number makes every text unique (imports may deduplicate identical texts).
        text.push_str(&format!("#{i} "));
        while text.len() < 95 {
            text.push_str(WORDS[rng.gen_range(0..WORDS.len())]);
            text.push(' ');
        }
        let line = json!({
            "id": format!("bench-{i}"),
            "text": text.trim_end(),
            "meta": {
                "region": REGIONS[rng.gen_range(0..REGIONS.len())],
                "device": DEVICES[rng.gen_range(0..DEVICES.len())],
            },
        });
        serde_json::to_writer(&mut w, &line)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

// ---------------------------------------------------------------------------------------------
// Statistics

#[derive(Debug, Clone, Copy, Default)]
struct Percentiles {
    count: usize,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
    mean: f64,
}

/// Nearest-rank percentiles of latencies in milliseconds.
fn percentiles(mut ms: Vec<f64>) -> Percentiles {
    if ms.is_empty() {
        return Percentiles::default();
    }
    ms.sort_by(|a, b| a.total_cmp(b));
    let rank = |p: f64| {
        let k = ((p / 100.0) * ms.len() as f64).ceil() as usize;
        ms[k.clamp(1, ms.len()) - 1]
    };
    Percentiles {
        count: ms.len(),
        p50: rank(50.0),
        p95: rank(95.0),
        p99: rank(99.0),
        max: *ms.last().unwrap(),
        mean: ms.iter().sum::<f64>() / ms.len() as f64,
    }
}

impl Percentiles {
    fn to_json(self) -> Value {
        json!({ "count": self.count, "p50_ms": self.p50, "p95_ms": self.p95, "p99_ms": self.p99, "max_ms": self.max, "mean_ms": self.mean })
    }
}

/// The summary's table of next and submit latencies.
fn latency_table(next: Percentiles, submit: Percentiles) -> String {
    let mut s = String::from("                          count      p50      p95      p99      max     mean (ms)\n");
    for (name, p) in [("next", next), ("submit", submit)] {
        s.push_str(&format!(
            "  {name:<20} {:>8} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}\n",
            p.count, p.p50, p.p95, p.p99, p.max, p.mean
        ));
    }
    s
}

fn verdict(pass: bool) -> &'static str {
    if pass {
        "PASS"
    } else {
        "MISS"
    }
}

// ---------------------------------------------------------------------------------------------
// The labeling loop

struct LabelerResult {
    next_ms: Vec<f64>,
    submit_ms: Vec<f64>,
    empty_nexts: u64,
}

#[allow(clippy::too_many_arguments)]
async fn run_labeler(
    index: usize,
    base: String,
    pid: i64,
    auth: Auth,
    deadline: Instant,
    limit: Option<u64>,
    think: Duration,
    submitted: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
) -> Result<LabelerResult> {
    let client = Client::builder().pool_max_idle_per_host(1).build()?;
    let next_url = format!("{base}/api/projects/{pid}/next");
    let submit_url = format!("{base}/api/projects/{pid}/annotations");
    let mut out = LabelerResult { next_ms: Vec::new(), submit_ms: Vec::new(), empty_nexts: 0 };
    let labels = ["a", "b", "c"];
    let mut seq: u64 = 0;
    // People do not act in step: each think time is drawn from 0.5–1.5 × `think`, and each
    // labeler starts after a draw from 0–1 × `think`. With the same pause for everyone, the 50
    // labelers sent their requests in bursts of 50 for ever, and the latencies measured the
    // bursts (session 16).
    let mut rng = StdRng::seed_from_u64(index as u64);
    if !think.is_zero() {
        tokio::time::sleep(think.mul_f64(rng.gen_range(0.0..1.0))).await;
    }
    loop {
        if Instant::now() >= deadline
            || stop.load(Ordering::Relaxed)
            || limit.is_some_and(|l| submitted.load(Ordering::Relaxed) >= l)
        {
            break;
        }
        let t = Instant::now();
        let resp = auth
            .apply(client.post(&next_url))
            .send()
            .await
            .with_context(|| format!("labeling (labeler {index}): POST /next failed"))?;
        let next = json_or_error(resp, &format!("labeling (labeler {index}): POST /api/projects/{pid}/next")).await?;
        out.next_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        let Some(item_id) = next["item"]["id"].as_i64() else {
            // Nothing left for this labeler.
            out.empty_nexts += 1;
            break;
        };
        seq += 1;
        if !think.is_zero() {
            tokio::time::sleep(think.mul_f64(rng.gen_range(0.5..1.5))).await;
        }
        let body = json!({
            "item_id": item_id,
            "labels": [labels[(item_id as usize) % labels.len()]],
            "time_ms": 1000,
            "client_id": format!("bench-{index}-{seq}"),
        });
        let t = Instant::now();
        let resp = auth
            .apply(client.post(&submit_url))
            .json(&body)
            .send()
            .await
            .with_context(|| format!("labeling (labeler {index}): POST /annotations failed"))?;
        json_or_error(resp, &format!("labeling (labeler {index}): POST /api/projects/{pid}/annotations (item {item_id})"))
            .await?;
        out.submit_ms.push(t.elapsed().as_secs_f64() * 1000.0);
        submitted.fetch_add(1, Ordering::Relaxed);
    }
    Ok(out)
}

/// Uploads a JSONL file to the project's import route; returns the report.
async fn import_file(client: &Client, base: &str, pid: i64, token: &str, path: &Path, bytes: u64, step: &str) -> Result<Value> {
    let file = tokio::fs::File::open(path).await?;
    let url = format!("{base}/api/projects/{pid}/import?format=jsonl");
    let resp = client
        .post(&url)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_TYPE, "application/x-ndjson")
        .header(reqwest::header::CONTENT_LENGTH, bytes)
        .body(reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)))
        .send()
        .await
        .with_context(|| format!("{step}: POST failed"))?;
    json_or_error(resp, &format!("{step}: POST {url}")).await
}

/// The server's binary, SQLite database URL and data directory, as `run` started it.
fn server_files(args: &Args, tmp: &tempfile::TempDir) -> Result<(PathBuf, String, PathBuf)> {
    let url = database_url(args, tmp);
    if url.starts_with("postgres") {
        bail!("--backup-during copies SQLite databases (PostgreSQL: pg_dump)");
    }
    Ok((server_binary(args)?, url, data_dir(args, tmp)))
}

/// The server's data directory: `--data-dir`, else one in `tmp`.
fn data_dir(args: &Args, tmp: &tempfile::TempDir) -> PathBuf {
    args.data_dir.clone().unwrap_or_else(|| tmp.path().join("data"))
}

/// `--database-url`, else the SQLite database in the data directory (as `mirrorset serve`).
fn database_url(args: &Args, tmp: &tempfile::TempDir) -> String {
    match &args.database_url {
        Some(u) => u.clone(),
        None => format!("sqlite://{}", data_dir(args, tmp).join("mirrorset.db").display()),
    }
}

/// `--server-bin`, else the `mirrorset` beside this binary.
fn server_binary(args: &Args) -> Result<PathBuf> {
    Ok(match &args.server_bin {
        Some(p) => p.clone(),
        None => std::env::current_exe()?.with_file_name("mirrorset"),
    })
}

/// Figures of the labeling loop run while a large import is under way.
struct DuringImport {
    lines: u64,
    import_s: f64,
    bearer: usize,
    cookie: usize,
    next: Percentiles,
    submit: Percentiles,
    annotations: u64,
}

/// Runs the bearer labelers (`tokens`) and `cookie_labelers` more with cookie sessions on
/// project `pid` while `lines` lines are imported into a new project; every request must
/// succeed (a failed one ends the benchmark with its error).
#[allow(clippy::too_many_arguments)]
async fn label_during_import(
    client: &Client,
    base: &str,
    admin: &str,
    pid: i64,
    tokens: &[String],
    cookie_labelers: usize,
    lines: u64,
    think: Duration,
    tmp: &tempfile::TempDir,
) -> Result<DuringImport> {
    let step = "step 5b (labeling during an import)";
    let mut auths: Vec<Auth> = tokens.iter().cloned().map(Auth::Bearer).collect();
    for i in 0..cookie_labelers {
        let username = format!("cookie{i:03}");
        let password = random_string(16);
        call(client, Method::POST, &format!("{base}/api/users"), admin,
             Some(&json!({ "username": username, "password": password, "role": "labeler" })), step).await?;
        call(client, Method::POST, &format!("{base}/api/projects/{pid}/members"), admin,
             Some(&json!({ "username": username })), step).await?;
        auths.push(sign_in(client, base, &username, &password).await.context(step)?);
    }
    let target = call(client, Method::POST, &format!("{base}/api/projects"), admin,
        Some(&json!({ "name": "bench import target", "kind": "single",
                      "labels": [{"name": "a", "key": "1", "color": "#1f77b4"}], "overlap": 1 })), step).await?;
    let target = target["id"].as_i64().ok_or_else(|| anyhow!("{step}: no project id in {target}"))?;
    let path = tmp.path().join("during.jsonl");
    let bytes = generate_jsonl(&path, lines).context(step)?;

    let labelers = LabelersBeside::start(1000, base, pid, auths, think);
    let t = Instant::now();
    let report = import_file(client, base, target, admin, &path, bytes, step).await;
    let import_s = t.elapsed().as_secs_f64();
    let (next, submit, annotations) = labelers.finish(step).await?;
    let report = report?;
    if report["imported"].as_u64() != Some(lines) {
        bail!("{step}: the import did not import {lines} items: {report}");
    }
    Ok(DuringImport {
        lines,
        import_s,
        bearer: tokens.len(),
        cookie: cookie_labelers,
        next,
        submit,
        annotations,
    })
}

/// Labelers on project `pid` that label until `finish`, beside other work (an import, a
/// backup); every request must succeed (a failed one ends the benchmark with its error).
struct LabelersBeside {
    stop: Arc<AtomicBool>,
    submitted: Arc<AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<Result<LabelerResult>>>,
}

impl LabelersBeside {
    /// `first`: the first labeler's index (its client ids' prefix).
    fn start(first: usize, base: &str, pid: i64, auths: Vec<Auth>, think: Duration) -> LabelersBeside {
        let stop = Arc::new(AtomicBool::new(false));
        let submitted = Arc::new(AtomicU64::new(0));
        let far = Instant::now() + Duration::from_secs(24 * 3600);
        let tasks = auths
            .into_iter()
            .enumerate()
            .map(|(i, auth)| {
                let (submitted, stop) = (submitted.clone(), stop.clone());
                tokio::spawn(run_labeler(first + i, base.to_string(), pid, auth, far, None, think, submitted, stop))
            })
            .collect();
        LabelersBeside { stop, submitted, tasks }
    }

    /// Stops the labelers: their next and submit latencies, and the annotations they made.
    async fn finish(self, step: &str) -> Result<(Percentiles, Percentiles, u64)> {
        self.stop.store(true, Ordering::Relaxed);
        let (mut next_ms, mut submit_ms) = (Vec::new(), Vec::new());
        for task in self.tasks {
            let r = task.await.with_context(|| format!("{step}: a labeler task panicked"))??;
            next_ms.extend(r.next_ms);
            submit_ms.extend(r.submit_ms);
        }
        Ok((percentiles(next_ms), percentiles(submit_ms), self.submitted.load(Ordering::Relaxed)))
    }
}

// ---------------------------------------------------------------------------------------------
// Export

fn epoch_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// How many of the project's consensus refreshes ran at some moment between `from` and `to`
/// (ms since the epoch, the server's clock being this one).
async fn refreshes_between(client: &Client, base: &str, pid: i64, admin: &str, from: i64, to: i64) -> Result<usize> {
    let jobs = agreement::jobs(client, base, pid, admin).await?;
    Ok(jobs
        .iter()
        .filter(|j| {
            let started = j["started_at"].as_i64();
            let finished = j["finished_at"].as_i64().unwrap_or(i64::MAX);
            j["kind"] == "consensus" && started.is_some_and(|s| s < to && finished > from)
        })
        .count())
}

struct ExportFigures {
    seconds: f64,
    bytes: u64,
    lines: u64,
    /// The server's RssAnon at the start of the export and its peak during it.
    memory: Phase,
}

/// SQLite's group-commit writer over the run, from `GET /metrics`.
struct CommitGroups {
    groups: f64,
    writes: f64,
    /// Seconds in each phase of `WRITER_PHASES` (None from a server before they were counted).
    phases: Option<Vec<f64>>,
    /// (seconds in its statements, jobs run) for each of `WRITER_JOB_KINDS` (None from a
    /// server before they were counted).
    jobs: Option<Vec<(f64, f64)>>,
}

/// The kinds of `mirrorset_sqlite_writer_job_seconds_total` (`store::writer::JOB_KINDS`).
const WRITER_JOB_KINDS: [&str; 3] = ["hand_out", "submission", "skip"];

/// The phases of `mirrorset_sqlite_writer_seconds_total` (`store::writer::PHASES`).
const WRITER_PHASES: [&str; 4] = ["acquire", "begin", "jobs", "commit"];

/// The group-commit writer's figures in one scrape of `/metrics` (not there on PostgreSQL, or
/// from a server before group commit: None).
fn commit_groups(text: &str) -> Option<CommitGroups> {
    let value = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.strip_prefix(' ')))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    let phases = WRITER_PHASES
        .iter()
        .map(|p| value(&format!("mirrorset_sqlite_writer_seconds_total{{phase=\"{p}\"}}")))
        .collect::<Option<Vec<f64>>>();
    let jobs = WRITER_JOB_KINDS
        .iter()
        .map(|k| {
            let seconds = value(&format!("mirrorset_sqlite_writer_job_seconds_total{{kind=\"{k}\"}}"))?;
            Some((seconds, value(&format!("mirrorset_sqlite_writer_jobs_total{{kind=\"{k}\"}}"))?))
        })
        .collect::<Option<Vec<(f64, f64)>>>();
    Some(CommitGroups {
        groups: value("mirrorset_sqlite_commit_group_size_count")?,
        writes: value("mirrorset_sqlite_commit_group_size_sum")?,
        phases,
        jobs,
    })
}

struct ExportCheck {
    over_k: u64,
    annotations: u64,
}

/// Reads the JSONL export and counts the items with more than `overlap` annotations and the
/// annotations in all (the bench's project has no gold items, so every item counts towards k).
async fn check_export(client: &Client, base: &str, pid: i64, token: &str, overlap: i64) -> Result<ExportCheck> {
    let url = format!("{base}/api/projects/{pid}/export?format=jsonl");
    let resp = client.get(&url).bearer_auth(token).send().await.with_context(|| format!("GET {url} failed"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        bail!("GET {url} returned {status}: {}", resp.text().await.unwrap_or_default());
    }
    let body = resp.text().await?;
    let mut c = ExportCheck { over_k: 0, annotations: 0 };
    for line in body.lines().filter(|l| !l.trim().is_empty()) {
        let v: Value = serde_json::from_str(line).with_context(|| format!("an export line is not JSON: {line}"))?;
        let k = v["annotations"].as_array().map_or(0, |a| a.len()) as u64;
        c.annotations += k;
        if k as i64 > overlap {
            c.over_k += 1;
        }
    }
    Ok(c)
}

async fn time_export(client: &Client, base: &str, pid: i64, token: &str, format: &'static str, server_pid: u32) -> Result<ExportFigures> {
    let url = format!("{base}/api/projects/{pid}/export?format={format}");
    let what = format!("export ({format}): GET {url}");
    let memory = PhaseMemory::start(server_pid);
    let t = Instant::now();
    let resp = client.get(&url).bearer_auth(token).send().await.with_context(|| format!("{what} failed"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        bail!("{what} returned {status}: {body}");
    }
    let mut stream = resp.bytes_stream();
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut last = b'\n';
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.with_context(|| format!("{what}: the body broke off"))?;
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
        if let Some(&b) = chunk.last() {
            last = b;
        }
    }
    if last != b'\n' {
        lines += 1;
    }
    let seconds = t.elapsed().as_secs_f64();
    Ok(ExportFigures { seconds, bytes, lines, memory: memory.stop(format, seconds).await })
}

// ---------------------------------------------------------------------------------------------

async fn run(args: Args) -> Result<()> {
    let json_out = args.json || args.json_only;
    let quiet = args.json_only;
    let say = |s: &str| {
        if !quiet {
            eprintln!("{s}");
        }
    };
    // Baseline files are read before the run: a bad one fails now, not after minutes.
    let baselines = args.baseline.as_deref().map(baseline::read).transpose()?;
    if let Some(path) = &args.record_baseline {
        baseline::read(path)?;
    }
    if args.labelers == 0 {
        bail!("--labelers must be at least 1");
    }
    if args.instances == 0 || (args.instances > 1 && !args.database_url.as_deref().is_some_and(|u| u.starts_with("postgres"))) {
        bail!("--instances must be 1, or more with a PostgreSQL --database-url (instances share one database)");
    }
    let bin = server_binary(&args)?;
    let tmp = tempfile::Builder::new().prefix("mirrorset-bench-").tempdir().context("creating a temporary directory")?;
    let data_dir = data_dir(&args, &tmp);
    std::fs::create_dir_all(&data_dir)?;
    let admin_password = match &args.data_dir {
        Some(dir) => kept_admin_password(dir)?,
        None => random_string(24),
    };
    let port = free_port()?;
    let base = format!("http://127.0.0.1:{port}");
    let backend = if args.database_url.as_deref().is_some_and(|u| u.starts_with("postgres")) { "postgres" } else { "sqlite" };

    say(&format!("[1/7] starting {} on 127.0.0.1:{port} ({backend})", bin.display()));
    // The agreement scenario waits for refreshes: check for changes every second.
    let extra: &[&str] = if args.agreement { &["--refresh-interval-secs", "1"] } else { &[] };
    let mut server = start_server(&bin, port, &data_dir, args.database_url.as_deref(), &admin_password, extra)
        .context("step 1 (start the server)")?;
    let server_pid = server.pid();
    let startup = wait_healthy(&mut server, &base).await.context("step 1 (start the server)")?;
    let rss_max = Arc::new(AtomicU64::new(0));
    let stop_sampler = Arc::new(AtomicBool::new(false));
    let anon_max = Arc::new(AtomicU64::new(0));
    let sampler = spawn_rss_sampler(server_pid, rss_max.clone(), anon_max.clone(), stop_sampler.clone());

    // More instances on the same database (PostgreSQL): the labelers are spread over them.
    let mut others = Vec::new();
    let mut bases = vec![base.clone()];
    for k in 2..=args.instances {
        let port = free_port()?;
        let dir = tmp.path().join(format!("data-{k}"));
        std::fs::create_dir_all(&dir)?;
        say(&format!("[1/7] starting instance {k} on 127.0.0.1:{port}"));
        let mut other = start_server(&bin, port, &dir, args.database_url.as_deref(), &admin_password, extra)
            .with_context(|| format!("step 1 (start instance {k})"))?;
        let other_base = format!("http://127.0.0.1:{port}");
        wait_healthy(&mut other, &other_base).await.with_context(|| format!("step 1 (start instance {k})"))?;
        others.push(other);
        bases.push(other_base);
    }

    let result = bench(&args, &bases, &admin_password, &tmp, &rss_max, server_pid, &say).await;
    for (k, other) in others.iter_mut().enumerate() {
        if let Ok(Some(status)) = other.child.try_wait() {
            bail!("instance {} died during the benchmark ({status}); its output:\n{}", k + 2, other.log_tail(30));
        }
    }
    drop(others);

    // Memory, while the server still runs.
    let hwm_kib = proc_status_kib(server_pid, "VmHWM");
    let rss_end_kib = proc_status_kib(server_pid, "VmRSS");
    stop_sampler.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    if let Ok(Some(status)) = server.child.try_wait() {
        bail!("the server died during the benchmark ({status}); its output:\n{}", server.log_tail(30));
    }
    let mut figures = match result {
        Ok(f) => f,
        Err(e) => {
            let tail = server.log_tail(15);
            drop(server);
            return Err(e.context(format!("server output (last lines):\n{tail}")));
        }
    };
    drop(server);

    let rss_peak_kib = rss_max.load(Ordering::Relaxed);
    figures.json["server"] = json!({
        "backend": backend,
        "startup_s": startup.as_secs_f64(),
        "vm_hwm_mib": hwm_kib.map(mib),
        "rss_peak_sampled_mib": mib(rss_peak_kib),
        "rss_anon_peak_sampled_mib": mib(anon_max.load(Ordering::Relaxed)),
        "rss_end_mib": rss_end_kib.map(mib),
    });

    figures.json["instances"] = json!(args.instances);
    figures.json["duration_s"] = json!(args.duration);
    // Read before the run, so a file given to both compares with the run before this one.
    let compared = baselines.as_ref().map(|b| baseline::compare(b, &figures.json));
    if let Some((_, value)) = &compared {
        figures.json["baseline"] = value.clone();
    }
    if let Some(path) = &args.record_baseline {
        baseline::record(path, &args.label, &figures.json)?;
    }

    if !quiet {
        let mut s = String::new();
        s.push_str(&figures.summary);
        s.push_str("\nServer memory\n");
        match hwm_kib {
            Some(k) => s.push_str(&format!("  peak (VmHWM)            {:>10.1} MiB\n", mib(k))),
            None => s.push_str("  peak (VmHWM)            unavailable (no /proc)\n"),
        }
        s.push_str(&format!("  peak RSS (100 ms poll)  {:>10.1} MiB  (with the database file pages the readers map)\n", mib(rss_peak_kib)));
        s.push_str(&format!("  peak RssAnon (poll)     {:>10.1} MiB  (the server's own memory)\n", mib(anon_max.load(Ordering::Relaxed))));
        if let Some(k) = rss_end_kib {
            s.push_str(&format!("  RSS at the end          {:>10.1} MiB\n", mib(k)));
        }
        if let Some((text, _)) = &compared {
            s.push_str(text);
        }
        println!("{s}");
    }
    if json_out {
        println!("{}", serde_json::to_string_pretty(&figures.json)?);
    }
    if args.keep_dir {
        let kept = tmp.keep();
        eprintln!("kept {} (server log: {})", kept.display(), kept.join("data.server.log").display());
    }
    Ok(())
}

struct Figures {
    summary: String,
    json: Value,
}

async fn bench(
    args: &Args,
    bases: &[String],
    admin_password: &str,
    tmp: &tempfile::TempDir,
    rss_max: &AtomicU64,
    server_pid: u32,
    say: &dyn Fn(&str),
) -> Result<Figures> {
    let client = Client::new();
    let n = args.items;
    let base = bases[0].as_str();

    // 2. Admin token and project.
    say("[2/7] signing in as admin, creating the project");
    let admin = token_for(&client, base, "admin", admin_password).await.context("step 2 (sign in as admin)")?;
    let labels = json!([
        {"name": "a", "key": "1", "color": "#1f77b4"},
        {"name": "b", "key": "2", "color": "#ff7f0e"},
        {"name": "c", "key": "3", "color": "#2ca02c"},
    ]);
    let project = call(
        &client,
        Method::POST,
        &format!("{base}/api/projects"),
        &admin,
        Some(&json!({ "name": "bench", "kind": "single", "labels": labels, "overlap": args.overlap })),
        "step 2 (create the project)",
    )
    .await?;
    let pid = project["id"].as_i64().ok_or_else(|| anyhow!("step 2: no project id in {project}"))?;

    // 3. Import.
    say(&format!("[3/7] generating {n} JSONL items and importing them"));
    let jsonl = tmp.path().join("items.jsonl");
    let t = Instant::now();
    let file_bytes = generate_jsonl(&jsonl, n).context("step 3 (generate the JSONL)")?;
    let gen_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let report = import_file(&client, base, pid, &admin, &jsonl, file_bytes, "step 3 (import)").await?;
    let import_s = t.elapsed().as_secs_f64();
    let imported = report["imported"].as_i64().unwrap_or(-1);
    if imported != n as i64 {
        bail!("step 3 (import): {imported} of {n} items imported; the report: {report}");
    }
    let import_rate = n as f64 / import_s;
    let rss_after_import = rss_max.load(Ordering::Relaxed);

    // 4. Labelers.
    say(&format!("[4/7] creating {} labelers", args.labelers));
    let mut tokens = Vec::with_capacity(args.labelers);
    let mut sessions = Vec::with_capacity(args.labelers);
    for i in 0..args.labelers {
        // A kept data directory (--data-dir) has the last run's labelers: new names.
        let run = if args.data_dir.is_some() { format!("-{}", random_string(6).to_lowercase()) } else { String::new() };
        let username = format!("labeler{i:03}{run}");
        let password = random_string(16);
        let step = format!("step 4 (create labeler {username})");
        call(
            &client,
            Method::POST,
            &format!("{base}/api/users"),
            &admin,
            Some(&json!({ "username": username, "password": password, "role": "labeler" })),
            &step,
        )
        .await?;
        call(
            &client,
            Method::POST,
            &format!("{base}/api/projects/{pid}/members"),
            &admin,
            Some(&json!({ "username": username })),
            &step,
        )
        .await?;
        let (session, token) = session_and_token(&client, base, &username, &password).await.context(step)?;
        sessions.push(session);
        tokens.push(token);
    }

    // 5. The labeling loop.
    say(&format!(
        "[5/7] {} labelers ({}, think time {} ms) labeling for {} s{}",
        args.labelers,
        labelers_auth(&args),
        args.think_ms,
        args.duration,
        args.annotations.map(|a| format!(" or {a} annotations")).unwrap_or_default()
    ));
    let submitted = Arc::new(AtomicU64::new(0));
    let think = Duration::from_millis(args.think_ms);
    let start = Instant::now();
    let deadline = start + Duration::from_secs_f64(args.duration);
    let no_stop = Arc::new(AtomicBool::new(false));
    let writes_before = proc_io_writes(server_pid);
    let metrics_before = server_side::scrape(&client, &bases).await;
    let tasks: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(i, token)| {
            let auth = if args.sessions { sessions[i].clone() } else { Auth::Bearer(token.clone()) };
            let base = bases[i % bases.len()].clone();
            tokio::spawn(run_labeler(i, base, pid, auth, deadline, args.annotations, think, submitted.clone(), no_stop.clone()))
        })
        .collect();
    let mut next_ms = Vec::new();
    let mut submit_ms = Vec::new();
    let mut empty_nexts = 0;
    for task in tasks {
        let r = task.await.context("step 5 (labeling): a labeler task panicked")??;
        next_ms.extend(r.next_ms);
        submit_ms.extend(r.submit_ms);
        empty_nexts += r.empty_nexts;
    }
    let label_s = start.elapsed().as_secs_f64();
    let annotations = submitted.load(Ordering::Relaxed);
    // One server's writes divided by every instance's labels would say nothing: one instance only.
    let server_writes = match (writes_before, proc_io_writes(server_pid)) {
        (Some(before), Some(after)) if bases.len() == 1 && annotations > 0 => Some(WritesPerLabel::between(before, after, annotations)),
        _ => None,
    };
    let throughput = annotations as f64 / label_s;
    let next = percentiles(next_ms);
    let submit = percentiles(submit_ms);
    let rss_after_labeling = rss_max.load(Ordering::Relaxed);
    let metrics_after = server_side::scrape(&client, &bases).await;
    // The same requests as the servers timed them.
    let in_server = match (&metrics_before, &metrics_after) {
        (Some(before), Some(after)) => {
            let (next0, submit0) = server_side::next_and_submit(before);
            let (next1, submit1) = server_side::next_and_submit(after);
            Some((next1.since(&next0), submit1.since(&submit0)))
        }
        _ => None,
    };

    // The group commit's figures (SQLite, one instance): labeling writes per commit over the
    // whole run.
    let group = metrics_after.as_ref().and_then(|texts| commit_groups(&texts[0]));

    // 5a. With several instances: what the database holds after the labeling.
    let consistency = if bases.len() > 1 {
        say("[5a] checking the export: items over k, acknowledged submissions missing");
        let c = check_export(&client, base, pid, &admin, args.overlap).await.context("step 5a (check the export)")?;
        Some(json!({
            "instances": bases.len(),
            "items_over_k": c.over_k,
            "annotations_in_export": c.annotations,
            "acknowledged": annotations,
            "lost": annotations as i64 - c.annotations as i64,
        }))
    } else {
        None
    };

    // 5b. Labeling while a large import runs.
    let during = match args.import_during {
        None => None,
        Some(lines) => {
            say(&format!(
                "[5b] {} bearer + {} cookie labelers labeling while {lines} lines are imported into another project",
                tokens.len(),
                args.cookie_labelers
            ));
            Some(label_during_import(&client, base, &admin, pid, &tokens, args.cookie_labelers, lines, think, tmp).await?)
        }
    };

    // 5c. Labeling while a backup is taken.
    let during_backup = if args.backup_during {
        let (bin, database_url, data_dir) = server_files(args, tmp)?;
        Some(backup::scenario(&bin, &database_url, &data_dir, base, pid, &tokens, think, tmp, say).await?)
    } else {
        None
    };

    // 5c. The agreement dashboard and consensus refresh (issue 7).
    let agreement = if args.agreement {
        let db_url = database_url(args, tmp);
        Some(agreement::scenario(&client, base, &admin, &db_url, n, pid, &tokens, args.duration, tmp, server_pid, say).await?)
    } else {
        None
    };

    // 5d. Production profiles and dev-set plans (issue 8).
    let devset = if args.devset {
        Some(devset::scenario(&client, base, &admin, server_pid, args.devset_pool, args.devset_rows, tmp, say).await?)
    } else {
        None
    };

    // 5e. Dev-set releases (issue 9).
    let releases = if args.releases {
        Some(releases::scenario(&client, base, &admin, server_pid, args.releases_pool, args.releases_size, tmp, say).await?)
    } else {
        None
    };
    // 5f. Labeling-rule figures (issue 10).
    let rules = if args.rules { Some(rules::scenario(&client, base, &admin, args.rules_items, tmp, say).await?) } else { None };
    // 5g. The built-in model's training (issue 10), with 8 labelers on the main project.
    let model = if args.model {
        let eight = &tokens[..tokens.len().min(8)];
        Some(model::scenario(&client, base, &admin, server_pid, args.model_items, args.model_labeled, pid, eight, args.duration, tmp, say).await?)
    } else {
        None
    };

    // 6. Export.
    say("[6/7] exporting (jsonl, csv)");
    let exports_from = epoch_ms();
    let ej = time_export(&client, base, pid, &admin, "jsonl", server_pid).await.context("step 6 (export jsonl)")?;
    let ec = time_export(&client, base, pid, &admin, "csv", server_pid).await.context("step 6 (export csv)")?;
    let refreshes_beside = refreshes_between(&client, base, pid, &admin, exports_from, epoch_ms()).await.context("step 6 (jobs)")?;
    let mut warnings = Vec::new();
    if ej.lines != n {
        warnings.push(format!("the JSONL export has {} lines, expected {n}", ej.lines));
    }
    if ec.lines != n + 1 {
        warnings.push(format!("the CSV export has {} lines, expected {} (header + items)", ec.lines, n + 1));
    }
    say("[7/7] reading the server's memory");

    // Verdicts.
    let import_pass = import_rate >= TARGET_IMPORT_ITEMS_PER_S;
    let next_target = if args.instances > 1 { TARGET_NEXT_P99_MS_INSTANCES } else { TARGET_NEXT_P99_MS };
    let next_pass = next.p99 < next_target;
    // 2 s at 100,000 items; the 10 s at a million (and below that, in proportion).
    let export_target = if n >= 1_000_000 { TARGET_EXPORT_1M_S } else { TARGET_EXPORT_S };
    let export_j_pass = ej.seconds < export_target;
    let export_c_pass = ec.seconds < export_target;
    let export_memory_pass = ej.memory.anon_peak_mib.max(ec.memory.anon_peak_mib) < TARGET_EXPORT_ANON_MIB;
    let note_n = if n == 100_000 { String::new() } else { format!(" (target is for 100,000 items; here {n})") };
    let note_export = if n == 100_000 || n == 1_000_000 { String::new() } else { note_n.clone() };
    let note_c = if args.labelers == 50 { String::new() } else { format!(" (target is for C = 50; here C = {})", args.labelers) };

    let mut s = String::new();
    s.push_str(&format!(
        "\nMirrorset bench: {n} items, {} labelers ({}), overlap {}, think time {} ms\n",
        args.labelers, labelers_auth(&args), args.overlap, args.think_ms
    ));
    s.push_str("\nImport\n");
    s.push_str(&format!("  file                    {:>10.1} MiB (generated in {gen_s:.2} s)\n", file_bytes as f64 / 1048576.0));
    s.push_str(&format!("  wall time               {:>10.3} s\n", import_s));
    s.push_str(&format!(
        "  rate                    {:>10.0} items/s   target >= {:.0}: {}{}\n",
        import_rate,
        TARGET_IMPORT_ITEMS_PER_S,
        verdict(import_pass),
        note_n
    ));
    s.push_str(&format!("\nLabeling ({:.1} s)\n", label_s));
    s.push_str(&latency_table(next, submit));
    if let Some((next, submit)) = &in_server {
        s.push_str(&server_side::table(next, submit));
    }
    s.push_str(&format!(
        "  next p99 target < {next_target} ms: {}{note_c}\n",
        verdict(next_pass)
    ));
    s.push_str(&format!("  annotations             {:>10}\n", annotations));
    s.push_str(&format!("  throughput              {:>10.1} annotations/s\n", throughput));
    if empty_nexts > 0 {
        s.push_str(&format!("  labelers that ran out of items: {empty_nexts}\n"));
    }
    if let Some(g) = &group {
        if g.groups > 0.0 {
            s.push_str(&format!(
                "  group commit            {:>10.0} commits of {:.0} labeling writes ({:.1} per commit)\n",
                g.groups,
                g.writes,
                g.writes / g.groups
            ));
        }
        // How busy the one writer was while the labelers ran (its groups all fall in that
        // time): at 100 % it is what bounds the loop.
        if let Some(phases) = g.phases.as_ref().filter(|_| g.writes > 0.0) {
            let busy: f64 = phases.iter().sum();
            let shares: Vec<String> =
                WRITER_PHASES.iter().zip(phases).map(|(p, t)| format!("{p} {:.0} %", 100.0 * t / busy.max(1e-9))).collect();
            s.push_str(&format!(
                "  writer busy             {:>10.0} % of the labeling time ({}); {:.0} µs per labeling write\n",
                100.0 * busy / label_s,
                shares.join(", "),
                1e6 * busy / g.writes
            ));
        }
        // Which kind of write the jobs' time goes to: what taking one kind off the writer
        // would save.
        if let Some(jobs) = &g.jobs {
            let per_kind: Vec<String> = WRITER_JOB_KINDS
                .iter()
                .zip(jobs)
                .filter(|(_, (_, n))| *n > 0.0)
                .map(|(k, (secs, n))| format!("{k} {:.0} µs (n {n:.0})", 1e6 * secs / n))
                .collect();
            s.push_str(&format!("  writer per job          {} in their statements\n", per_kind.join(", ")));
        }
    }
    if let Some(w) = &server_writes {
        s.push_str(&format!(
            "  server writes           {:>10.1} write calls, {:.1} KiB per label (files and sockets: the WAL, checkpoints, responses)\n",
            w.calls, w.kib
        ));
    }
    if let Some(c) = &consistency {
        s.push_str(&format!(
            "  {} instances: items over k {}, acknowledged {}, in the export {}, lost {}\n",
            c["instances"], c["items_over_k"], c["acknowledged"], c["annotations_in_export"], c["lost"]
        ));
    }
    if let Some(d) = &during {
        s.push_str(&format!(
            "\nLabeling during an import of {} lines ({:.1} s; {} bearer + {} cookie labelers, {} annotations)\n",
            d.lines, d.import_s, d.bearer, d.cookie, d.annotations
        ));
        s.push_str(&latency_table(d.next, d.submit));
        s.push_str(&format!(
            "  next and submit p99 target < {TARGET_DURING_IMPORT_P99_MS} ms: {}\n",
            verdict(d.next.p99 < TARGET_DURING_IMPORT_P99_MS && d.submit.p99 < TARGET_DURING_IMPORT_P99_MS)
        ));
    }
    if let Some(b) = &during_backup {
        s.push_str(&b.summary());
    }
    if let Some(a) = &agreement {
        s.push_str(&a.summary());
    }
    if let Some(d) = &devset {
        s.push_str(&d.summary());
    }
    if let Some(r) = &releases {
        s.push_str(&r.summary());
    }
    if let Some(r) = &rules {
        s.push_str(&r.summary());
    }
    if let Some(m) = &model {
        s.push_str(&m.summary());
    }
    s.push_str("\nExport\n");
    for (name, e, pass) in [("jsonl", &ej, export_j_pass), ("csv", &ec, export_c_pass)] {
        s.push_str(&format!(
            "  {name:<6} {:>9.3} s  {:>8.1} MiB  {:>8} lines   target < {export_target} s: {}{note_export}\n",
            e.seconds,
            e.bytes as f64 / 1048576.0,
            e.lines,
            verdict(pass)
        ));
    }
    s.push_str(&format!(
        "  server RssAnon during the exports: jsonl {:.1} → {:.1} MiB, csv {:.1} → {:.1} MiB   target < {TARGET_EXPORT_ANON_MIB} MiB: {}\n",
        ej.memory.anon_start_mib,
        ej.memory.anon_peak_mib,
        ec.memory.anon_start_mib,
        ec.memory.anon_peak_mib,
        verdict(export_memory_pass)
    ));
    if refreshes_beside > 0 {
        // The export's own memory is not alone in that figure: a refresh holds the project's
        // annotations coded in memory while it runs (docs/bench.md, session 28).
        s.push_str(&format!(
            "  (a consensus refresh ran during the exports ({refreshes_beside}): its memory is in the figure above)\n"
        ));
    }
    for w in &warnings {
        s.push_str(&format!("  WARNING: {w}\n"));
    }

    let json = json!({
        "agreement": agreement.as_ref().map(|a| a.to_json()),
        "devset": devset.as_ref().map(|d| d.to_json()),
        "releases": releases.as_ref().map(|r| r.to_json()),
        "rules": rules.as_ref().map(|r| r.to_json()),
        "model": model.as_ref().map(|m| m.to_json()),
        "items": n,
        "labelers": args.labelers,
        "labelers_auth": labelers_auth(&args),
        "overlap": args.overlap,
        "think_ms": args.think_ms,
        "import": {
            "file_bytes": file_bytes,
            "seconds": import_s,
            "items_per_s": import_rate,
            "target_items_per_s": TARGET_IMPORT_ITEMS_PER_S,
            "pass": import_pass,
            "rss_peak_sampled_mib": mib(rss_after_import),
        },
        "labeling": {
            "seconds": label_s,
            "annotations": annotations,
            "annotations_per_s": throughput,
            "labelers_out_of_items": empty_nexts,
            "next": next.to_json(),
            "submit": submit.to_json(),
            "in_server": in_server.as_ref().map(|(n, s)| json!({ "next": n.to_json(), "submit": s.to_json() })),
            "target_next_p99_ms": next_target,
            "next_pass": next_pass,
            "rss_peak_sampled_mib": mib(rss_after_labeling),
            "server_writes_per_label": server_writes.as_ref().map(|w| json!({ "calls": w.calls, "kib": w.kib })),
            "instances": consistency,
            "commit_groups": group.as_ref().map(|g| json!({
                "commits": g.groups,
                "writes": g.writes,
                "writer_seconds": g.phases.as_ref().map(|p| WRITER_PHASES.iter().zip(p).map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_, _>>()),
                "jobs": g.jobs.as_ref().map(|j| WRITER_JOB_KINDS.iter().zip(j).map(|(k, (secs, n))| (k.to_string(), json!({ "seconds": secs, "count": n }))).collect::<serde_json::Map<_, _>>()),
            })),
        },
        "export": {
            "jsonl": { "seconds": ej.seconds, "bytes": ej.bytes, "lines": ej.lines, "pass": export_j_pass,
                       "rss_anon_start_mib": ej.memory.anon_start_mib, "rss_anon_peak_mib": ej.memory.anon_peak_mib },
            "csv": { "seconds": ec.seconds, "bytes": ec.bytes, "lines": ec.lines, "pass": export_c_pass,
                     "rss_anon_start_mib": ec.memory.anon_start_mib, "rss_anon_peak_mib": ec.memory.anon_peak_mib },
            "target_rss_anon_mib": TARGET_EXPORT_ANON_MIB,
            "memory_pass": export_memory_pass,
            "consensus_refreshes_during": refreshes_beside,
            "target_seconds": export_target,
        },
        "warnings": warnings,
        "during_backup": during_backup.as_ref().map(|b| b.to_json()),
        "during_import": during.as_ref().map(|d| json!({
            "lines": d.lines,
            "import_seconds": d.import_s,
            "bearer_labelers": d.bearer,
            "cookie_labelers": d.cookie,
            "annotations": d.annotations,
            "next": d.next.to_json(),
            "submit": d.submit.to_json(),
            "target_p99_ms": TARGET_DURING_IMPORT_P99_MS,
            "pass": d.next.p99 < TARGET_DURING_IMPORT_P99_MS && d.submit.p99 < TARGET_DURING_IMPORT_P99_MS,
        })),
    });
    Ok(Figures { summary: s, json })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The figure reads the kernel's counters of a live process: this one's grow by the
    /// calls and bytes it writes, and a label's share is their change over the labels.
    #[test]
    fn server_writes_are_counted_per_label() {
        let dir = tempfile::tempdir().unwrap();
        let before = proc_io_writes(std::process::id()).expect("/proc/self/io is readable");
        let mut f = std::fs::File::create(dir.path().join("w")).unwrap();
        for _ in 0..10 {
            std::io::Write::write_all(&mut f, &[7u8; 4096]).unwrap();
        }
        let after = proc_io_writes(std::process::id()).unwrap();
        assert!(after.0 >= before.0 + 10 && after.1 >= before.1 + 40_960, "{before:?} → {after:?}");
        let w = WritesPerLabel::between((100, 1_024_000), (150, 3_072_000), 10);
        assert_eq!((w.calls, w.kib), (5.0, 200.0));
        assert!(proc_io_writes(u32::MAX).is_none(), "no such process: no figure");
    }
}
