//! `mirrorset stats ...`: the statistics core on the user's own files. Each subcommand reads
//! paths (or `-` for stdin), prints one JSON document on stdout, and reports bad input with
//! the file name and line number. The computations are `crate::stats`; this module only
//! reads, validates and formats.

mod annotations;
mod evaluate;
mod input;
mod label_issues;
mod sampling;

use crate::stats::Level;
use clap::{Subcommand, ValueEnum};
use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LevelArg {
    Nominal,
    Ordinal,
    Interval,
    Ratio,
}

impl From<LevelArg> for Level {
    fn from(l: LevelArg) -> Level {
        match l {
            LevelArg::Nominal => Level::Nominal,
            LevelArg::Ordinal => Level::Ordinal,
            LevelArg::Interval => Level::Interval,
            LevelArg::Ratio => Level::Ratio,
        }
    }
}

pub use annotations::Method;

#[derive(Debug, Subcommand)]
pub enum StatsCommand {
    /// Inter-annotator agreement: percent agreement, Cohen's (pairwise) and Fleiss' kappa,
    /// Krippendorff's alpha, per-label alpha, optional bootstrap intervals.
    /// FILE: one {"item", "annotator", "label"} per line.
    Agreement {
        file: PathBuf,
        /// Level of measurement for alpha (and weighted kappas when ordered).
        #[arg(long, value_enum, default_value = "nominal")]
        level: LevelArg,
        /// Label order, comma-separated (needed for ordinal text labels; unknown labels are errors).
        #[arg(long)]
        labels: Option<String>,
        /// Bootstrap replicates for confidence intervals (e.g. 1000).
        #[arg(long)]
        bootstrap: Option<usize>,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value_t = 0.95)]
        confidence: f64,
        /// Restrict to the item ids listed in this file (one per line): agreement on a slice.
        #[arg(long)]
        items: Option<PathBuf>,
    },
    /// One label per item: majority vote or Dawid–Skene.
    /// FILE: one {"item", "annotator", "label"} per line.
    Aggregate {
        file: PathBuf,
        #[arg(long, value_enum)]
        method: Method,
        /// Label order, comma-separated (breaks majority-vote ties).
        #[arg(long)]
        labels: Option<String>,
        #[arg(long, default_value_t = 100)]
        max_iter: usize,
        /// Stop when the mean log-likelihood per annotation improves by less than this.
        #[arg(long, default_value_t = 1e-7)]
        tol: f64,
        /// Known labels for some items (Dawid–Skene): one {"item", "label"} per line.
        #[arg(long)]
        gold: Option<PathBuf>,
    },
    /// Likely label errors by confident learning.
    /// FILE: one {"item", "label", "probs": {label: p}} per line.
    LabelIssues {
        file: PathBuf,
        #[arg(long)]
        labels: Option<String>,
    },
    /// Allocate a dev set over strata in proportion to production, the minimum per stratum a floor.
    /// FILE: {"n", "min_per_stratum", "strata": [{"key", "production", "available"}]}.
    Allocate { file: PathBuf },
    /// Draw the items of a dev set from a pool, given an allocation (the output of allocate).
    Sample {
        #[arg(long)]
        allocation: PathBuf,
        /// One {"item", "stratum", "must_include"?} per line.
        #[arg(long)]
        pool: PathBuf,
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Distance between two distributions: TVD, KL(p‖q), PSI.
    /// FILE: {"p": {category: number}, "q": {...}}, or {"attributes": [...], "p": [{"values": {...}, "count"}], "q": [...]}
    Distance { file: PathBuf },
    /// Wilson score interval for a proportion.
    Interval {
        #[arg(long)]
        successes: u64,
        #[arg(long)]
        total: u64,
        #[arg(long, default_value_t = 0.95)]
        confidence: f64,
    },
    /// Dev-set size for a Wilson half-width at an expected accuracy.
    SampleSize {
        #[arg(long)]
        accuracy: f64,
        #[arg(long)]
        half_width: f64,
        #[arg(long, default_value_t = 0.95)]
        confidence: f64,
    },
    /// Evaluate predictions against gold labels, per slice; compare two models.
    /// Files: one {"item", "label", "weight"?, "meta"?} per line.
    Evaluate {
        #[arg(long)]
        gold: PathBuf,
        #[arg(long)]
        pred: PathBuf,
        /// A second model's predictions: adds McNemar's test and a paired bootstrap interval.
        #[arg(long)]
        pred_b: Option<PathBuf>,
        /// Meta attributes to slice by, comma-separated.
        #[arg(long)]
        slices: Option<String>,
        #[arg(long)]
        labels: Option<String>,
        #[arg(long, default_value_t = 1000)]
        bootstrap: usize,
        #[arg(long, default_value_t = 0)]
        seed: u64,
        #[arg(long, default_value_t = 0.95)]
        confidence: f64,
    },
}

pub fn run(cmd: StatsCommand) -> anyhow::Result<()> {
    let output = match cmd {
        StatsCommand::Agreement { file, level, labels, bootstrap, seed, confidence, items } => {
            annotations::agreement(annotations::AgreementArgs {
                file: &file,
                level: level.into(),
                labels: labels.as_deref(),
                bootstrap,
                seed,
                confidence,
                items: items.as_deref(),
            })?
        }
        StatsCommand::Aggregate { file, method, labels, max_iter, tol, gold } => {
            annotations::aggregate(annotations::AggregateArgs {
                file: &file,
                method,
                labels: labels.as_deref(),
                max_iter,
                tol,
                gold: gold.as_deref(),
            })?
        }
        StatsCommand::LabelIssues { file, labels } => label_issues::label_issues(&file, labels.as_deref())?,
        StatsCommand::Allocate { file } => sampling::allocate(&file)?,
        StatsCommand::Sample { allocation, pool, seed } => sampling::sample(&allocation, &pool, seed)?,
        StatsCommand::Distance { file } => sampling::distance(&file)?,
        StatsCommand::Interval { successes, total, confidence } => sampling::interval(successes, total, confidence)?,
        StatsCommand::SampleSize { accuracy, half_width, confidence } => {
            sampling::sample_size(accuracy, half_width, confidence)?
        }
        StatsCommand::Evaluate { gold, pred, pred_b, slices, labels, bootstrap, seed, confidence } => {
            evaluate::evaluate(evaluate::EvaluateArgs {
                gold: &gold,
                pred: &pred,
                pred_b: pred_b.as_deref(),
                slices: slices.as_deref(),
                labels: labels.as_deref(),
                bootstrap,
                seed,
                confidence,
            })?
        }
    };
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let written = serde_json::to_writer_pretty(&mut stdout, &output)
        .map_err(std::io::Error::from)
        .and_then(|()| writeln!(stdout));
    match written {
        // The reader went away (`| head`): not our error.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => Ok(other?),
    }
}
