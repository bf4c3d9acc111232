//! The `mirrorset` command line: one subcommand per file.
pub mod stats;
