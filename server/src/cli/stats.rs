//! `mirrorset stats ...`: the statistics core on the user's own files.
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum StatsCommand {}

pub fn run(cmd: StatsCommand) -> anyhow::Result<()> {
    match cmd {}
}
