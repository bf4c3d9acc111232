//! `mirrorset backup`: a copy of a SQLite deployment (database and image files) that a server
//! can be started on, taken on the server's machine while it runs (`crate::backup`).
use std::path::PathBuf;

use clap::Args;

use super::serve::DbArgs;
use crate::backup::{back_up, BackupError};

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The directory to write the backup to (created if missing). A backup already there is
    /// replaced once the new one is complete, and its image files are reused.
    #[arg(long)]
    pub to: PathBuf,
    #[command(flatten)]
    pub db: DbArgs,
}

pub fn run(args: BackupArgs) -> anyhow::Result<()> {
    let Some(database) = args.db.sqlite_file()? else { return Err(BackupError::Postgres.into()) };
    eprintln!("copying {} and its images to {}", database.display(), args.to.display());
    let report = back_up(&database, &args.db.data_dir, &args.to)?;
    println!("{report}");
    if !report.missing.is_empty() {
        let listed: Vec<String> = report.missing.iter().take(5).map(|p| p.display().to_string()).collect();
        anyhow::bail!(
            "image files the database names are missing from {}, so from the backup too ({}): {}{}",
            args.db.data_dir.display(),
            report.missing.len(),
            listed.join(", "),
            if report.missing.len() > listed.len() { ", ..." } else { "" }
        );
    }
    Ok(())
}
