//! The `mirrorset` command line: one subcommand per file.
pub mod backup;
pub mod client;
pub mod devset;
pub mod release;
pub mod prelabels;
pub mod serve;
pub mod stats;
pub mod user;

/// How the server writes its log (`mirrorset serve --log-format`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line (timestamp, level, target, fields), for log collectors.
    Json,
}

pub fn init_tracing(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,tower_sessions=warn"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // Event fields at the top level (`"message"` among them), not nested under "fields".
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
}
