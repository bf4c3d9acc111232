//! The agreement dashboard and consensus (issue 7).
//!
//! A consensus job ([`refresh`], run by `crate::jobs`) reads a project's annotations, computes
//! every item's consensus and the whole dashboard with the statistics core, writes the
//! consensus rows that changed ([`changes`]) in short batches, and stores the dashboard as the
//! job's result. Reading the
//! dashboard is then one row read ([`dashboard`], [`slices`]); only the drill-down
//! ([`disagreements`]) reads the annotations at request time, so it always lists the items as
//! they are now.
pub mod changes;
pub mod compute;
pub mod dataset;
pub mod drill;
pub mod parallel;

use std::time::Instant;

use app::api_types::{AgreementDashboard, AgreementSlices, DisagreementItem, DisagreementList, LabelDef};

use crate::error::{AppError, AppResult};
use crate::jobs::JobCtx;
use crate::stats::Level;
use crate::store::agreement as store;
use crate::store::{jobs, now_ms, Db};
use compute::{Method, Settings, Snapshot};
use dataset::{Dataset, DatasetBuilder, ItemCoder};

/// Consensus rows per write transaction (in statements of `store::agreement::STATEMENT_ROWS`).
/// Every changed row moves in the `(project_id, posterior)` index, to a place unrelated to its
/// neighbours by item id, so a transaction dirties about one index page per row up to the
/// whole index (~400 pages at 100,000 rows), and SQLite writes every dirty page to the WAL at
/// each commit: by that reckoning 1,000 transactions of 100 rows write ~100,000 pages for a
/// rewrite of a 100,000-item project, 100 of 1,000 rows about a third of that (an estimate:
/// the job logs its write time, `write_s`, to check it). A labeler's submit waits
/// behind at most one such transaction (a few milliseconds), and only while rows change in
/// bulk (the first refresh, a change of method); a refresh while labeling writes a handful.
pub const BATCH: usize = 1000;

/// Progress (a write of its own) is recorded every this many batches.
const PROGRESS_EVERY: usize = 2;

/// The job kind name in the `jobs` table.
pub const KIND: &str = "consensus";

/// Reads and codes the project's annotations, each annotation and item row coded as it is
/// read. `here`: the consensus job, on its low-priority thread with connections of its own:
/// every read on the calling thread (side by side on PostgreSQL; on SQLite the long ones are
/// stepped in place, one after the other: `store::agreement::in_place`); rather than one read
/// at a time on the shared readers, on a blocking-pool thread (a request).
async fn load(db: &Db, project_id: i64, here: bool) -> anyhow::Result<Option<(Dataset, Settings)>> {
    Ok(load_timed(db, project_id, here).await?.map(|(d, s, _)| (d, s)))
}

/// [`load`], with the seconds spent reading (coding the rows as they come included) and
/// finishing the dataset.
async fn load_timed(db: &Db, project_id: i64, here: bool) -> anyhow::Result<Option<(Dataset, Settings, (f64, f64))>> {
    let started = Instant::now();
    let Some(q) = store::quality(db, project_id).await? else { return Ok(None) };
    let labels: Vec<LabelDef> = serde_json::from_str(&q.labels)?;
    let names: Vec<String> = labels.into_iter().map(|l| l.name).collect();
    let multi = q.kind == "multi";
    let (dataset, skips, read, build) = if here {
        // The refresh's own connections ([`store::private_reader`]).
        let mut builder = DatasetBuilder::new(multi, &names);
        let mut items = ItemCoder::default();
        let (usernames, (), skips, ()) = tokio::try_join!(
            store::annotators(db, project_id),
            store::for_each_labeled_item(db, project_id, |row| items.push(&row)),
            store::skips(db, project_id),
            store::for_each_annotation(db, project_id, |row| builder.push(&row)),
        )?;
        let read = started.elapsed().as_secs_f64();
        let started = Instant::now();
        (builder.finish(items, &usernames)?, skips, read, started.elapsed().as_secs_f64())
    } else {
        // A request (or a release's freeze), on the shared readers one read at a time, each row
        // coded as it is read like the job's, on a blocking-pool thread: coding a million rows
        // is CPU work the async threads must not do, and collecting them first took more memory
        // than the coded dataset (the rows' text).
        let (db, handle) = (db.clone(), tokio::runtime::Handle::current());
        tokio::task::spawn_blocking(move || {
            handle.block_on(async {
                let mut builder = DatasetBuilder::new(multi, &names);
                store::for_each_annotation(&db, project_id, |row| builder.push(&row)).await?;
                let mut items = ItemCoder::default();
                store::for_each_labeled_item(&db, project_id, |row| items.push(&row)).await?;
                let usernames = store::annotators(&db, project_id).await?;
                let skips = store::skips(&db, project_id).await?;
                let read = started.elapsed().as_secs_f64();
                let started = Instant::now();
                anyhow::Ok((builder.finish(items, &usernames)?, skips, read, started.elapsed().as_secs_f64()))
            })
        })
        .await??
    };
    let settings = Settings {
        project_id,
        level: if q.measurement == "ordinal" { Level::Ordinal } else { Level::Nominal },
        method: Method::parse(&q.consensus_method),
        target_alpha: q.target_alpha,
        skips,
    };
    Ok(Some((dataset, settings, (read, build))))
}

/// What a refresh computed, before it writes anything.
struct Refreshed {
    snapshot: Snapshot,
    diff: changes::Changes,
    method: Method,
    phases: Phases,
}

/// Where a refresh's time went (seconds), for its log line: the reads, coding the dataset,
/// the computation (with its parts' own times: they run side by side), reading the stored
/// rows while comparing them, and writing.
#[derive(Debug, Default)]
struct Phases {
    read: f64,
    build: f64,
    compute: compute::Timings,
    diff: f64,
}

/// The consensus job: computes and stores the project's consensus and dashboard. Returns the
/// job's result (the [`Snapshot`] as JSON text). Writes only the consensus rows that changed
/// ([`changes`]); the job's progress counts those writes (and deletions). Stops between
/// batches when cancelled.
pub async fn refresh(ctx: &JobCtx, project_id: i64) -> anyhow::Result<String> {
    // Reads and CPU work both off the async threads and below them in priority, so requests
    // keep being served at full speed meanwhile; only the writes of changed rows (none while
    // labeling goes on elsewhere) come back to the shared pools.
    let db = ctx.db.clone();
    let Some(Refreshed { snapshot, diff, method, phases }) = low_priority(move || read_and_compute_here(db, project_id)).await??
    else {
        anyhow::bail!("project {project_id} no longer exists");
    };
    let total = (diff.write.len() + diff.delete.len()) as i64;
    ctx.progress(0, total).await?;
    let mut done = 0;
    let writing = Instant::now();
    for (n, batch) in diff.write.chunks(BATCH).enumerate() {
        ctx.check_cancelled()?;
        store::write_consensus(&ctx.db, project_id, method.as_str(), batch).await?;
        done += batch.len();
        if (n + 1) % PROGRESS_EVERY == 0 {
            ctx.progress(done as i64, total).await?;
        }
        // Let waiting labeling requests take the writer between batches.
        tokio::task::yield_now().await;
    }
    for batch in diff.delete.chunks(BATCH) {
        ctx.check_cancelled()?;
        store::delete_consensus(&ctx.db, project_id, batch).await?;
        tokio::task::yield_now().await;
    }
    ctx.progress(total, total).await?;
    let c = &phases.compute;
    tracing::info!(
        project = project_id,
        written = diff.write.len(),
        deleted = diff.delete.len(),
        unchanged = diff.unchanged,
        read_s = phases.read,
        build_s = phases.build,
        compute_s = c.wall,
        threads = c.threads,
        headline_s = c.headline,
        model_s = c.model,
        slices_s = c.slices,
        per_label_s = c.per_label,
        over_time_s = c.over_time,
        diff_s = phases.diff,
        write_s = writing.elapsed().as_secs_f64(),
        "consensus rows refreshed"
    );
    Ok(serde_json::to_string(&snapshot)?)
}

/// The refresh's reads and computation, run on the calling (low-priority) thread: a runtime of
/// its own drives a database connection of its own ([`store::private_reader`]), so that the
/// reads (300,000 annotation rows at 100,000 items, stepped by SQLite and decoded) run at the
/// refresh's priority too. Session 5 ran them on the shared readers at the
/// labelers' priority, and labeling `next` was 1.41x slower while refreshes ran.
fn read_and_compute_here(db: Db, project_id: i64) -> anyhow::Result<Option<Refreshed>> {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    rt.block_on(async move {
        let reader = store::private_reader(&db).await?;
        let out = read_and_compute(&reader, project_id).await;
        store::close_private_reader(reader).await;
        out
    })
}

async fn read_and_compute(db: &Db, project_id: i64) -> anyhow::Result<Option<Refreshed>> {
    let Some((dataset, settings, (read, build))) = load_timed(db, project_id, true).await? else { return Ok(None) };
    let method = settings.method;
    let computed = compute::compute(&dataset, &settings, now_ms());
    drop(dataset);
    // Only this job writes the project's consensus rows, and one runs per project at a time,
    // so what is read here stays what is stored until the refresh's writes. Read after the
    // computation, compared as read: a refresh holds the computed rows but never the stored
    // ones as well (docs/bench.md, session 29).
    let t = Instant::now();
    let mut differ = changes::Differ::new(computed.consensus, method.as_str());
    store::for_each_stored_consensus(db, project_id, |row, m| differ.stored(row, m)).await?;
    let diff = differ.finish();
    let phases = Phases { read, build, compute: computed.timings, diff: t.elapsed().as_secs_f64() };
    Ok(Some(Refreshed { snapshot: computed.snapshot, diff, method, phases }))
}

/// Runs `f` on a thread of its own at the lowest CPU priority and awaits its result. A refresh
/// is seconds of CPU on a server whose labeling requests take milliseconds: on a machine with
/// few cores, a refresh at normal priority competes with the request threads and makes each
/// request wait for a time slice (session 3 measured 1.2× slower labeling while refreshing);
/// at the lowest priority the scheduler gives the requests the cores whenever they want them,
/// and the refresh the time left over.
pub(crate) async fn low_priority<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> anyhow::Result<T> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new().name("consensus".into()).spawn(move || {
        lower_this_threads_priority();
        let _ = tx.send(f());
    })?;
    Ok(rx.await?)
}

/// Nice 19 for the calling thread only (threads it starts inherit it, such as the SQLite
/// worker of [`store::private_reader`]): on Linux, `setpriority(PRIO_PROCESS, tid)` sets the
/// priority of one thread (each thread is its own scheduling entity), not the whole server.
/// Not `SCHED_IDLE`: tried in session 6 on a loaded machine (load 11-12), it starved the
/// refresh (a Dawid–Skene refresh 95 s, against 62 s for the previous build at nice 19 under
/// the same load) without a labeling gain the noise could show, and new labels must reach the
/// dashboard within a minute.
#[cfg(target_os = "linux")]
fn lower_this_threads_priority() {
    // SAFETY: plain system calls on the calling thread's own id; no memory is shared.
    let done = unsafe {
        let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
        libc::setpriority(libc::PRIO_PROCESS, tid, 19)
    };
    if done != 0 {
        tracing::warn!(error = %std::io::Error::last_os_error(), "could not lower the consensus thread's priority");
    }
}

#[cfg(not(target_os = "linux"))]
fn lower_this_threads_priority() {}

async fn snapshot(db: &Db, project_id: i64) -> AppResult<Option<Snapshot>> {
    match jobs::latest_result(db, KIND, project_id).await? {
        None => Ok(None),
        Some((text, _)) => Ok(Some(serde_json::from_str(&text).map_err(anyhow::Error::from)?)),
    }
}

/// The stored dashboard (an empty one before the first computation); `week` picks the
/// weekly alpha-over-time series.
pub async fn dashboard(db: &Db, project_id: i64, week: bool) -> AppResult<AgreementDashboard> {
    let refreshing = jobs::pending(db, KIND, project_id).await?;
    let mut d = match snapshot(db, project_id).await? {
        Some(s) => {
            let mut d = s.dashboard;
            if week {
                d.over_time = s.over_time_week;
                d.period = "week".into();
            }
            d
        }
        None => empty_dashboard(db, project_id).await?,
    };
    d.refreshing = refreshing;
    Ok(d)
}

/// The stored snapshot (the last consensus job's), if any.
pub async fn stored_snapshot(db: &Db, project_id: i64) -> AppResult<Option<Snapshot>> {
    snapshot(db, project_id).await
}

/// The dashboard and slices computed now, from the annotations as they are (the consensus
/// job's computation; nothing is written), for a caller that must not record a stale figure:
/// a release's lineage when labels changed after the last snapshot (issue 9). None when the
/// project is gone.
pub async fn compute_now(db: &Db, project_id: i64) -> AppResult<Option<Snapshot>> {
    let Some((dataset, settings)) = load(db, project_id, false).await.map_err(AppError::Internal)? else { return Ok(None) };
    let computed = tokio::task::spawn_blocking(move || compute::compute(&dataset, &settings, now_ms()))
        .await
        .map_err(anyhow::Error::from)?;
    Ok(Some(computed.snapshot))
}

async fn empty_dashboard(db: &Db, project_id: i64) -> AppResult<AgreementDashboard> {
    let q = store::quality(db, project_id).await?.ok_or_else(|| AppError::not_found("no such project"))?;
    let none = || app::api_types::StatValue { reason: Some("not computed yet".into()), ..Default::default() };
    Ok(AgreementDashboard {
        project_id,
        computed_at: None,
        refreshing: false,
        measurement: q.measurement,
        consensus_method: q.consensus_method,
        target_alpha: q.target_alpha,
        multi_label: q.kind == "multi",
        n_items: 0,
        n_annotations: 0,
        n_labelers: 0,
        alpha: none(),
        fleiss_kappa: none(),
        mean_cohen_kappa: none(),
        percent_agreement: none(),
        per_label: Vec::new(),
        pairs: Vec::new(),
        confusion: Vec::new(),
        period: "day".into(),
        over_time: Vec::new(),
        confusion_labels: Vec::new(),
        labelers: Vec::new(),
        slice_attributes: Vec::new(),
    })
}

/// One row per value of the meta attribute, from the stored snapshot.
pub async fn slices(db: &Db, project_id: i64, attr: &str) -> AppResult<AgreementSlices> {
    let snap = snapshot(db, project_id).await?;
    let target = match &snap {
        Some(s) => s.dashboard.target_alpha,
        None => store::quality(db, project_id).await?.map_or(0.8, |q| q.target_alpha),
    };
    let computed_at = snap.as_ref().and_then(|s| s.dashboard.computed_at);
    let rows = match snap {
        None => Vec::new(),
        Some(mut s) => match s.slices.remove(attr) {
            Some(rows) => rows,
            None if s.dashboard.computed_at.is_some() => {
                return Err(AppError::bad_request(format!(
                    "no slices by {attr:?}: the labeled items' meta attributes with at most {} values are: {}",
                    compute::MAX_SLICE_VALUES,
                    if s.slices.is_empty() { "(none)".to_string() } else { s.slices.keys().cloned().collect::<Vec<_>>().join(", ") }
                )))
            }
            None => Vec::new(),
        },
    };
    Ok(AgreementSlices { attr: attr.to_string(), computed_at, target_alpha: target, rows })
}

/// The items where labelers disagree under the filter, first `limit` of them by id.
pub async fn disagreements(db: &Db, project_id: i64, filter: drill::Filter, limit: usize) -> AppResult<DisagreementList> {
    let Some((d, _)) = load(db, project_id, false).await? else { return Err(AppError::not_found("no such project")) };
    let (total, mut items) = tokio::task::spawn_blocking(move || {
        let found = drill::disagreeing(&d, &filter);
        let items: Vec<DisagreementItem> = found
            .iter()
            .take(limit)
            .map(|&ix| DisagreementItem {
                item_id: d.items[ix].id,
                // Read below for these items only.
                external_id: None,
                snippet: None,
                labels: drill::answers(&d, ix),
            })
            .collect();
        (found.len(), items)
    })
    .await
    .map_err(anyhow::Error::from)?;
    let ids: Vec<i64> = items.iter().map(|i| i.item_id).collect();
    let shown = store::external_ids_and_snippets(db, project_id, &ids).await?;
    for item in &mut items {
        if let Some((_, external_id, snippet)) = shown.iter().find(|(id, _, _)| *id == item.item_id) {
            (item.external_id, item.snippet) = (external_id.clone(), snippet.clone());
        }
    }
    Ok(DisagreementList { total: total as i64, limit: limit as i64, items })
}
