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
    /// Dev-set releases: freeze, list, show, export, diff, and verify an export on disk.
    #[command(subcommand)]
    Release(cli::release::ReleaseCommand),
    /// Pre-labels: import model predictions, list the sources' figures, through the API.
    #[command(subcommand)]
    Prelabels(cli::prelabels::PrelabelsCommand),
    /// Back up a SQLite database and its image files into a directory a server can start on
    /// (safe while the server runs; PostgreSQL: use pg_dump).
    Backup(cli::backup::BackupArgs),
    /// Statistics (agreement, aggregation, label errors, sampling, evaluation) on your own files.
    #[command(subcommand)]
    Stats(cli::stats::StatsCommand),
}

/// Pins glibc's mmap threshold at its default (128 KiB), which turns off its dynamic
/// adjustment. By default, each time glibc frees a large mmapped block it raises the threshold
/// to that block's size (up to 32 MiB) and the trim threshold to twice that; later blocks of
/// that size then come from the heap of the calling thread's arena and stay resident after
/// they are freed. argon2 takes 19 MiB per password hash, on whichever blocking thread the
/// `HashGate` slot runs: after the first hash, every hash left its 19 MiB resident in some
/// arena. 8 users created and signed in (16 hashes) took the server from 21 to 315 MiB RSS;
/// with the threshold pinned, to 22 MiB (docs/bench.md, "Memory regression").
///
/// It also caps glibc's arenas at one per core (at least 2) instead of eight per core. Each
/// thread allocates from its own arena, and memory a thread frees stays in that arena's free
/// lists for the threads of that arena only; the server runs dozens of threads (tokio's
/// workers and blocking pool, one per SQLite connection in sqlx, the leakage check's), so a
/// freeze's blocks freed in one arena stayed resident while the next phase grew another. A
/// release freeze of 100,000 items against a million: RssAnon peak 297 MiB with the default,
/// 264 MiB with 2 arenas (docs/bench.md, "Session 8").
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn tune_malloc() {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    // SAFETY: mallopt only sets allocator parameters; called before any other thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
        libc::mallopt(libc::M_ARENA_MAX, cores as libc::c_int);
    }
}

/// Turns off SQLite's memory statistics, before any connection exists. With them on (the
/// bundled library's default), every allocation and free SQLite makes counts itself under one
/// process-wide mutex, which the group-commit writer and the hand-outs' readers, on different
/// threads, wait for on the labeling path (`perf`: futex waits under `sqlite3Malloc`). Nothing
/// here reads those statistics (`sqlite3_memory_used`, a soft heap limit). docs/bench.md,
/// session 40.
fn tune_sqlite() {
    // SAFETY: called first thing in `main`, before SQLite is initialized or any other thread
    // exists; after initialization it would only answer SQLITE_MISUSE.
    let rc = unsafe { rusqlite::ffi::sqlite3_config(rusqlite::ffi::SQLITE_CONFIG_MEMSTATUS, 0 as libc::c_int) };
    debug_assert_eq!(rc, rusqlite::ffi::SQLITE_OK);
}

fn main() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    tune_malloc();
    tune_sqlite();
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Stats(cmd) => cli::stats::run(cmd),
        Command::Backup(args) => cli::backup::run(args),
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
        Command::Release(cmd) => cli::release::run(cmd).await,
        Command::Prelabels(cmd) => cli::prelabels::run(cmd).await,
        Command::Stats(_) | Command::Backup(_) => unreachable!("handled synchronously"),
    }
}
