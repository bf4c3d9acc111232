//! `mirrorset serve`: the web app.
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use app::api_types::Role;
use clap::Args;
use leptos::config::{Env, LeptosOptions};
use sqlx::sqlite::SqliteConnectOptions;

use crate::auth::password::{hash_password, random_secret, validate_new_password};
use crate::auth::session_store::SqlSessionStore;
use crate::import::spool::{self, SpoolConfig};
use crate::import::{ImportCtx, ImportGate};
use crate::state::{AppState, Shared};
use tokio_util::sync::CancellationToken;
use crate::store::{self, Db};

#[derive(Debug, Args)]
pub struct DbArgs {
    /// Where data lives: the SQLite database (by default), images, thumbnails, upload spool.
    #[arg(long, env = "MIRRORSET_DATA_DIR", default_value = "data")]
    pub data_dir: PathBuf,
    /// `sqlite://PATH` or `postgres://USER:PASS@HOST/DB`; default: SQLite in the data directory.
    #[arg(long, env = "MIRRORSET_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl DbArgs {
    pub fn url(&self) -> String {
        self.database_url
            .clone()
            .unwrap_or_else(|| format!("sqlite://{}", self.data_dir.join("mirrorset.db").display()))
    }

    /// The SQLite database file, or None for PostgreSQL.
    pub fn sqlite_file(&self) -> anyhow::Result<Option<PathBuf>> {
        let url = self.url();
        if !url.starts_with("sqlite:") {
            return Ok(None);
        }
        Ok(Some(SqliteConnectOptions::from_str(&url)?.get_filename().to_path_buf()))
    }

    /// Creates the data directory and connects (migrating the schema).
    pub async fn connect(&self) -> anyhow::Result<Db> {
        std::fs::create_dir_all(self.data_dir.join("spool"))?;
        Db::connect(&self.url()).await
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "MIRRORSET_ADDR", default_value = "127.0.0.1:3000")]
    pub addr: SocketAddr,
    #[command(flatten)]
    pub db: DbArgs,
    /// The built site (wasm, JS, CSS) from scripts/build-site.sh.
    #[arg(long, env = "LEPTOS_SITE_ROOT", default_value = "target/site")]
    pub site_root: String,
    /// Create a demo project with a few hundred text and image items (once).
    #[arg(long)]
    pub demo: bool,
    /// The address people reach the app at, e.g. https://labels.example.org. When it is
    /// https, the session cookie is Secure (the browser never sends it over plain HTTP).
    #[arg(long, env = "MIRRORSET_PUBLIC_URL", value_parser = crate::web::parse_public_url)]
    pub public_url: Option<reqwest::Url>,
    /// Mark the session cookie Secure even without an https --public-url (kept for existing
    /// set-ups; --public-url https://... implies it).
    #[arg(long, env = "MIRRORSET_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Seconds a request may take to arrive and be answered before it gets a 408 (uploads
    /// and export downloads stream and are not limited by it).
    #[arg(long, env = "MIRRORSET_REQUEST_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout_secs: u64,
    /// Seconds a client may take to send a request's headers before its connection is closed
    /// (so slow clients cannot hold connections open).
    #[arg(long, env = "MIRRORSET_HEADER_READ_TIMEOUT_SECS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_read_timeout_secs: u64,
    /// Sign a session out after this many minutes without activity (default 14 days; any
    /// request of the session counts as activity). Fractions are allowed: 0.05 is 3 seconds.
    #[arg(long, env = "MIRRORSET_SESSION_IDLE_MINUTES", default_value = "20160", value_parser = parse_idle_minutes)]
    pub session_idle_minutes: std::time::Duration,
    /// Seconds in-flight requests get after SIGTERM (imports and exports are cancelled at
    /// once and clean up); then the server exits anyway.
    #[arg(long, env = "MIRRORSET_SHUTDOWN_TIMEOUT", default_value_t = 20)]
    pub shutdown_timeout: u64,
    /// Imports running at once on this server; more get 503 with Retry-After.
    #[arg(long, env = "MIRRORSET_MAX_CONCURRENT_IMPORTS", default_value_t = 2)]
    pub max_concurrent_imports: usize,
    /// Disk space (MiB) uploads never use: an upload that cannot fit above it is refused
    /// with 507, and spooling stops when the disk falls below it.
    #[arg(long, env = "MIRRORSET_MIN_FREE_DISK_MB", default_value_t = 1024)]
    pub min_free_disk_mb: u64,
    /// Seconds an upload may send nothing before it is answered 408 and its spool removed.
    #[arg(long, env = "MIRRORSET_BODY_IDLE_TIMEOUT", default_value_t = 60)]
    pub body_idle_timeout: u64,
    /// `text` (readable lines) or `json` (one JSON object per line, for log collectors).
    #[arg(long, env = "MIRRORSET_LOG_FORMAT", value_enum, default_value_t = crate::cli::LogFormat::Text)]
    pub log_format: crate::cli::LogFormat,
    /// When set, GET /metrics answers only requests with `Authorization: Bearer <this>` (401
    /// otherwise); without it, anyone who reaches the port can read the metrics.
    #[arg(long, env = "MIRRORSET_METRICS_TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Seconds between checks for projects whose labels changed; a changed project's
    /// consensus and agreement dashboard are then recomputed in the background.
    #[arg(long, env = "MIRRORSET_REFRESH_INTERVAL_SECS", default_value_t = 15, value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub refresh_interval_secs: u64,
    /// A background job whose heartbeat is older than this many seconds lost its server:
    /// it is resumed (or failed, for kinds that cannot resume).
    #[arg(long, env = "MIRRORSET_JOB_STALE_SECS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=86400))]
    pub job_stale_secs: u64,
}

impl ServeArgs {
    pub fn web_config(&self) -> crate::web::WebConfig {
        let https = self.public_url.as_ref().is_some_and(|u| u.scheme() == "https");
        crate::web::WebConfig {
            secure_cookies: self.secure_cookies || https,
            request_timeout: std::time::Duration::from_secs(self.request_timeout_secs),
        }
    }
}

fn parse_idle_minutes(s: &str) -> Result<std::time::Duration, String> {
    let minutes: f64 = s.trim().parse().map_err(|_| format!("{s:?} is not a number of minutes"))?;
    if !(minutes.is_finite() && minutes > 0.0 && minutes <= 10.0 * 365.0 * 24.0 * 60.0) {
        return Err(format!("{s:?}: the idle time must be more than 0 and at most ten years"));
    }
    Ok(std::time::Duration::from_secs_f64(minutes * 60.0))
}

pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    crate::cli::init_tracing(args.log_format);
    // Before anything reads or writes the database: a second server on it would remove the
    // first one's running imports at its startup (`store::server_lock`). Held until we return.
    std::fs::create_dir_all(&args.db.data_dir)?;
    let _serving = args.db.sqlite_file()?.map(|file| store::server_lock::claim(&file)).transpose()?;
    let db = args.db.connect().await?;
    let spool_dir = spool::prepare_instance_dir(&args.db.data_dir)?;
    let reaped = crate::import::job::reap_stale(&db, true).await?;
    if reaped > 0 {
        tracing::info!(reaped, "removed the rows of imports cut short when a server stopped");
    }
    // A database that cannot be written now (a full disk, a read-only file) still serves reads.
    match crate::store::assignment::restore_leases(&db).await {
        Ok(0) => {}
        Ok(restored) => tracing::info!(restored, "took back the leases the last server kept at its shutdown"),
        Err(e) => tracing::warn!(error = %e, "could not take back the leases the last server kept; their items will be offered again"),
    }
    ensure_admin(&db).await?;
    let spool = Arc::new(SpoolConfig {
        dir: spool_dir.clone(),
        min_free_bytes: args.min_free_disk_mb.saturating_mul(1024 * 1024),
        idle_timeout: Duration::from_secs(args.body_idle_timeout.max(1)),
    });
    let shutdown = CancellationToken::new();
    let import_gate = ImportGate::new(args.max_concurrent_imports);
    let data_dir = Arc::new(args.db.data_dir.clone());
    if args.demo {
        let ctx = ImportCtx {
            db: db.clone(),
            data_dir: data_dir.clone(),
            spool_dir: Arc::new(spool_dir.clone()),
            shutdown: shutdown.clone(),
            gate: import_gate.clone(),
        };
        crate::demo::create_demo_project(&ctx).await?;
    }
    let sessions = SqlSessionStore::new(&db, &args.db.data_dir).await?;
    let leptos_options = LeptosOptions::builder()
        .output_name("mirrorset")
        .site_root(args.site_root.as_str())
        .site_pkg_dir("pkg")
        .site_addr(args.addr)
        .env(Env::PROD)
        .build();
    let state = AppState::new(Shared {
        db,
        data_dir,
        leptos_options,
        session_idle: args.session_idle_minutes,
        login_throttle: Arc::new(crate::auth::throttle::LoginThrottle::new(Default::default())),
        spool,
        import_gate,
        shutdown: shutdown.clone(),
        metrics: crate::metrics::Metrics::new(args.metrics_token.clone()),
        devset_pools: Default::default(),
        accounts: Default::default(),
    });
    crate::web::spawn_cleanup(state.clone(), sessions.clone());
    let jobs = crate::jobs::spawn(
        state.db.clone(),
        shutdown.clone(),
        crate::jobs::JobsConfig {
            refresh_interval: Duration::from_secs(args.refresh_interval_secs),
            stale_after: Duration::from_secs(args.job_stale_secs),
            data_dir: (*state.data_dir).clone(),
        },
    );
    let db = state.db.clone();
    let app = crate::web::app_router(state, sessions, args.web_config());
    let listener = tokio::net::TcpListener::bind(args.addr).await?;
    tracing::info!("Mirrorset is listening on http://{}", listener.local_addr()?);
    let header_read_timeout = Duration::from_secs(args.header_read_timeout_secs);
    serve_until_shutdown(listener, app, header_read_timeout, shutdown.clone(), Duration::from_secs(args.shutdown_timeout)).await?;
    // The runner puts its running job back in the queue before the process ends.
    shutdown.cancel();
    if tokio::time::timeout(Duration::from_secs(5), jobs).await.is_err() {
        tracing::warn!("the job runner did not stop within 5 s; the next start resumes its job");
    }
    // The requests have ended; a labeling write whose request was cancelled (its client went
    // away) may still be queued for the group commit: commit it before exiting.
    db.drain_writes().await;
    // On SQLite the leases live in memory (`store::lease_book`): keep them for the next start.
    match crate::store::assignment::keep_leases(&db).await {
        Ok(kept) => tracing::info!(kept, "kept the labelers' leases for the next start"),
        Err(e) => tracing::warn!(error = %e, "could not keep the labelers' leases; their items will be offered again"),
    }
    let _ = std::fs::remove_dir_all(&spool_dir);
    Ok(())
}

/// Serves until SIGTERM or Ctrl-C; then stops accepting connections, cancels imports and
/// exports (they clean up and answer 503 / end their stream), and gives in-flight requests
/// `deadline` to finish before returning anyway. An import still cleaning up at the deadline
/// leaves invisible pending rows that the next start removes.
async fn serve_until_shutdown(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
    deadline: Duration,
) -> anyhow::Result<()> {
    {
        let shutdown = shutdown.clone();
        tokio::spawn(async move {
            shutdown_signal().await;
            tracing::info!(deadline_secs = deadline.as_secs(), "shutting down: cancelling imports and exports");
            shutdown.cancel();
        });
    }
    crate::http::serve(listener, app, header_read_timeout, shutdown, deadline).await
}

/// On first start, creates the `admin` user: with the password in MIRRORSET_ADMIN_PASSWORD,
/// or a generated one printed once.
async fn ensure_admin(db: &Db) -> anyhow::Result<()> {
    if store::users::count_users(db).await? > 0 {
        return Ok(());
    }
    let (password, generated) = match std::env::var("MIRRORSET_ADMIN_PASSWORD") {
        Ok(p) if !p.is_empty() => (p, false),
        _ => (random_secret("")[..20].to_string(), true),
    };
    validate_new_password(&password).map_err(|e| anyhow::anyhow!("MIRRORSET_ADMIN_PASSWORD: {e}"))?;
    let hash = hash_password(password.clone()).await?;
    store::users::create_user(db, "admin", &hash, Role::Admin, None).await?;
    if generated {
        // On stdout, not through the log: the password must not reach a log collector.
        println!("Created the admin user. Sign in as `admin` with password: {password}");
        println!("(shown once; set MIRRORSET_ADMIN_PASSWORD before the first start to choose it)");
    } else {
        // Through the log, so `--log-format json` output stays all JSON.
        tracing::info!("created the admin user `admin` with the password from MIRRORSET_ADMIN_PASSWORD");
    }
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = terminate => {} }
}
