use clap::{Parser, Subcommand};
use server::cli;

/// Mirrorset: labeling, agreement and production-matched dev sets.
#[derive(Debug, Parser)]
#[command(name = "mirrorset", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Statistics (agreement, aggregation, label errors, sampling, evaluation) on your own files.
    #[command(subcommand)]
    Stats(cli::stats::StatsCommand),
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Stats(cmd) => cli::stats::run(cmd),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
