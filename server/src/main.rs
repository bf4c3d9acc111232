use clap::{Parser, Subcommand};
use server::cli;

/// Mirrorset: label data, measure agreement, build production-matched dev sets.
#[derive(Debug, Parser)]
#[command(name = "mirrorset", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web app (UI and JSON API).
    Serve(cli::serve::ServeArgs),
    /// Manage users (on the server's database).
    #[command(subcommand)]
    User(cli::user::UserCommand),
    /// Manage API tokens (on the server's database).
    #[command(subcommand)]
    Token(cli::user::TokenCommand),
    /// Upload a JSONL, CSV or zip file into a project through the API.
    Import(cli::client::ImportArgs),
    /// Download a project's items and annotations through the API.
    Export(cli::client::ExportArgs),
    /// Download an audit log (who changed what, when, before and after) through the API.
    #[command(subcommand)]
    Audit(cli::client::AuditCommand),
    /// Production profiles and production-matched dev sets through the API.
    #[command(subcommand)]
    Devset(cli::devset::DevsetCommand),
    /// Statistics (agreement, aggregation, label errors, sampling, evaluation) on your own files.
    #[command(subcommand)]
    Stats(cli::stats::StatsCommand),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Stats(cmd) => cli::stats::run(cmd),
        other => tokio::runtime::Runtime::new()
            .map_err(anyhow::Error::from)
            .and_then(|rt| rt.block_on(run_async(other))),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

async fn run_async(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Serve(args) => cli::serve::run(args).await,
        Command::User(cli::user::UserCommand::Add(args)) => cli::user::add_user(args).await,
        Command::Token(cli::user::TokenCommand::Create(args)) => cli::user::create_token(args).await,
        Command::Import(args) => cli::client::import(args).await,
        Command::Export(args) => cli::client::export(args).await,
        Command::Audit(cmd) => cli::client::audit(cmd).await,
        Command::Devset(cmd) => cli::devset::run(cmd).await,
        Command::Stats(_) => unreachable!("handled synchronously"),
    }
}
