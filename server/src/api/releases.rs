//! Dev-set releases (issue 9): freeze, list, show, export, diff. Leads and admins of the
//! project only (labelers get 403). The work is in `crate::releases`; SQL in `store::releases`.
use std::collections::BTreeMap;

use app::api_types::{FreezeJob, FreezeRequest, ReleaseDetail, ReleaseDiff, ReleaseSummary};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use super::extract::{JsonBody, PathParam, QueryParams};
use crate::auth::{managed_project, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::releases::archive;
use crate::releases::export::{self, ItemSource, ReleaseInfo, ReleaseStats};
use crate::releases::job::{self, FreezeOutcome, FreezeParams};
use crate::releases::{self, ReleaseItem};
use crate::state::AppState;
use crate::store::devsets as devset_store;
use crate::store::releases::{self as store, ReleaseRow, ReleaseStoreError};

impl From<ReleaseStoreError> for AppError {
    fn from(e: ReleaseStoreError) -> Self {
        match e {
            ReleaseStoreError::Conflict(m) => AppError::conflict(m),
            ReleaseStoreError::Database(e) => AppError::Database(e),
        }
    }
}

async fn summary(state: &AppState, row: &ReleaseRow) -> AppResult<ReleaseSummary> {
    let splits: BTreeMap<String, i64> = store::split_counts(&state.db, row.id).await?.into_iter().collect();
    Ok(ReleaseSummary {
        id: row.id,
        project_id: row.project_id,
        devset_id: row.devset_id,
        version: format!("v{}", row.version),
        content_hash: row.content_hash.clone(),
        item_count: row.item_count,
        splits,
        created_by: row.created_by.clone(),
        created_at: row.created_at,
    })
}

fn lineage_of(row: &ReleaseRow) -> AppResult<Value> {
    Ok(serde_json::from_str(&row.lineage).map_err(anyhow::Error::from)?)
}

fn info<'a>(row: &'a ReleaseRow, lineage: &'a Value) -> ReleaseInfo<'a> {
    let name = format!(
        "{}-{}-v{}",
        lineage["project"]["name"].as_str().unwrap_or("project"),
        lineage["devset"]["name"].as_str().unwrap_or("devset"),
        row.version
    );
    ReleaseInfo { name: slug(&name), version: format!("v{}", row.version), content_hash: &row.content_hash, lineage }
}

/// A file-name-safe name: letters, digits, `-`, `_`, `.`; anything else becomes `-`.
fn slug(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c.to_ascii_lowercase() } else { '-' }).collect()
}

async fn find_release(state: &AppState, pid: i64, id: i64) -> AppResult<ReleaseRow> {
    store::get_release(&state.db, pid, id).await?.ok_or_else(|| AppError::not_found(format!("no release {id} in this project")))
}

/// What the card needs of a release's items, read in one pass over them (one row in memory).
async fn stats_of(state: &AppState, release_id: i64) -> AppResult<ReleaseStats> {
    let mut stats = ReleaseStats::default();
    store::for_each_release_item(&state.db, release_id, None, |item| {
        stats.add(&item);
        Ok::<(), sqlx::Error>(())
    })
    .await?;
    Ok(stats)
}

async fn detail(state: &AppState, row: &ReleaseRow) -> AppResult<ReleaseDetail> {
    let stats = stats_of(state, row.id).await?;
    detail_with(state, row, &stats).await
}

async fn detail_with(state: &AppState, row: &ReleaseRow, stats: &ReleaseStats) -> AppResult<ReleaseDetail> {
    let lineage = lineage_of(row)?;
    let card = export::card(&info(row, &lineage), stats);
    Ok(ReleaseDetail { summary: summary(state, row).await?, lineage, card })
}

/// `POST /api/projects/{pid}/devsets/{id}/releases`: queue the freeze of the dev set as its
/// next release; 202 with the job (`releases::job` runs it).
///
/// What can be refused at once is (403, 404, 409 for a dev set not sampled, 400 for a bad
/// request); what needs the data is the job's: a freeze refused while members lack a final
/// label or have open reviews (`blocked.details.unready`), or while the leakage check finds
/// pairs (`blocked.details.leakage`), unless the matching override gives a reason; the reason
/// and the list are recorded in the lineage. Nothing is saved by a refused freeze.
pub async fn freeze(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, devset_id)): PathParam<(i64, i64)>,
    JsonBody(req): JsonBody<FreezeRequest>,
) -> AppResult<(StatusCode, Json<FreezeJob>)> {
    managed_project(&state.db, &caller, pid).await?;
    let devset = devset_store::get_devset(&state.db, pid, devset_id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no dev set {devset_id} in this project")))?;
    if devset.sampled_at.is_none() {
        return Err(AppError::conflict(format!("the dev set {:?} is not sampled yet: sample it, label it, then freeze", devset.name)));
    }
    releases::validate(&req).map_err(AppError::bad_request)?;
    let params = FreezeParams { devset_id, request: req, by_id: caller.id(), by_username: caller.user.username.clone() };
    let job_id = store::enqueue_freeze(&state.db, job::KIND, pid, &serde_json::to_string(&params).map_err(anyhow::Error::from)?).await?;
    Ok((StatusCode::ACCEPTED, Json(freeze_job_view(&state, pid, job_id).await?)))
}

/// `GET /api/projects/{pid}/release-freezes/{job}`: a freeze's state, phase and counts, then
/// its release or its refusal.
pub async fn freeze_status(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, job_id)): PathParam<(i64, i64)>,
) -> AppResult<Json<FreezeJob>> {
    managed_project(&state.db, &caller, pid).await?;
    Ok(Json(freeze_job_view(&state, pid, job_id).await?))
}

async fn freeze_job_view(state: &AppState, pid: i64, job_id: i64) -> AppResult<FreezeJob> {
    let row = store::freeze_job(&state.db, job::KIND, pid, job_id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no release freeze {job_id} in this project")))?;
    let devset_id = serde_json::from_str::<FreezeParams>(&row.job.params).map(|p| p.devset_id).unwrap_or_default();
    let outcome = row.result.as_deref().and_then(|r| serde_json::from_str::<FreezeOutcome>(r).ok());
    // The release by the job's own record first: `jobs::finish` clears the results of older
    // jobs of the same kind and project, the release's `job_id` stays.
    let release_id = match outcome {
        Some(FreezeOutcome::Frozen { release_id }) => Some(release_id),
        _ if row.job.state == "done" => store::release_of_job(&state.db, job_id).await?,
        _ => None,
    };
    let release = match release_id {
        Some(id) => Some(detail(state, &find_release(state, pid, id).await?).await?),
        None => None,
    };
    let blocked = match outcome {
        Some(FreezeOutcome::Blocked(e)) => Some(e),
        _ => None,
    };
    let phase = if row.job.state == "queued" { None } else { row.phase.clone() };
    Ok(FreezeJob { job: row.job.into(), devset_id, phase, release, blocked })
}

#[derive(Deserialize)]
pub struct ListQuery {
    devset_id: Option<i64>,
}

/// `GET /api/projects/{pid}/releases[?devset_id=]`: releases, by dev set then version.
pub async fn list(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    QueryParams(q): QueryParams<ListQuery>,
) -> AppResult<Json<Vec<ReleaseSummary>>> {
    managed_project(&state.db, &caller, pid).await?;
    let mut out = Vec::new();
    for row in store::list_releases(&state.db, pid, q.devset_id).await? {
        out.push(summary(&state, &row).await?);
    }
    Ok(Json(out))
}

/// `GET /api/projects/{pid}/releases/{id}`: summary, lineage and dataset card.
pub async fn get(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, id)): PathParam<(i64, i64)>,
) -> AppResult<Json<ReleaseDetail>> {
    managed_project(&state.db, &caller, pid).await?;
    let row = find_release(&state, pid, id).await?;
    Ok(Json(detail(&state, &row).await?))
}

#[derive(Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
}

/// A release's items read from the database, one pass per `each`, on a blocking thread (the
/// export's writers are synchronous): each pass drives the async cursor with `block_on`.
struct DbItems {
    db: crate::store::Db,
    release_id: i64,
    rt: tokio::runtime::Handle,
}

impl ItemSource for DbItems {
    fn each(&mut self, split: Option<&str>, f: &mut dyn FnMut(&ReleaseItem) -> std::io::Result<()>) -> std::io::Result<()> {
        self.rt.block_on(store::for_each_release_item(&self.db, self.release_id, split, |item| {
            f(&item).map_err(ExportError::Io)
        }))
        .map_err(ExportError::into_io)
    }

    fn each_owned(&mut self, f: &mut dyn FnMut(ReleaseItem) -> std::io::Result<()>) -> std::io::Result<()> {
        self.rt.block_on(store::for_each_release_item(&self.db, self.release_id, None, |item| f(item).map_err(ExportError::Io)))
            .map_err(ExportError::into_io)
    }
}

enum ExportError {
    Io(std::io::Error),
    Db(sqlx::Error),
}

impl ExportError {
    fn into_io(self) -> std::io::Error {
        match self {
            ExportError::Io(e) => e,
            ExportError::Db(e) => std::io::Error::other(e),
        }
    }
}

impl From<sqlx::Error> for ExportError {
    fn from(e: sqlx::Error) -> Self {
        ExportError::Db(e)
    }
}

/// `GET /api/projects/{pid}/releases/{id}/export?format=zip|jsonl|csv|label_studio|card|manifest`.
///
/// The file is written on a blocking thread into an unnamed temporary file (gone when closed),
/// item by item from the database, then streamed from it: memory stays flat whatever the
/// release's size (docs/bench.md, the releases benchmark). The zip reads the rows once and
/// writes its files on two more threads (`releases::archive`); only the card needs the
/// statistics pass of its own.
pub async fn export(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, id)): PathParam<(i64, i64)>,
    QueryParams(q): QueryParams<ExportQuery>,
) -> AppResult<Response> {
    managed_project(&state.db, &caller, pid).await?;
    let row = find_release(&state, pid, id).await?;
    let lineage = lineage_of(&row)?;
    let format = q.format.unwrap_or_else(|| "zip".into());
    let (content_type, ext) = match format.as_str() {
        "zip" => ("application/zip", "zip"),
        "jsonl" => ("application/x-ndjson", "jsonl"),
        "csv" => ("text/csv; charset=utf-8", "csv"),
        "label_studio" => ("application/json", "label-studio.json"),
        "card" => ("text/markdown; charset=utf-8", "md"),
        "manifest" => ("application/json", "manifest.json"),
        other => {
            return Err(AppError::bad_request(format!(
                "unknown format {other:?}: use zip, jsonl, csv, label_studio, card or manifest"
            )))
        }
    };
    let name = info(&row, &lineage).name;
    let stats = if format == "card" { Some(stats_of(&state, row.id).await?) } else { None };
    let mut src = DbItems { db: state.db.clone(), release_id: row.id, rt: tokio::runtime::Handle::current() };
    let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        use std::io::{Seek, Write};
        let info = info(&row, &lineage);
        let mut file = tempfile::tempfile()?;
        match format.as_str() {
            "zip" => {
                let (w, _) = archive::write_zip(&info, &mut src, std::io::BufWriter::new(file))?;
                file = w.into_inner().map_err(|e| e.into_error())?;
            }
            "card" => file.write_all(export::card(&info, &stats.unwrap_or_default()).as_bytes())?,
            "manifest" => file.write_all(&archive::manifest(&info, &mut src)?)?,
            _ => {
                let mut w = std::io::BufWriter::new(file);
                match format.as_str() {
                    "jsonl" => export::write_jsonl(&mut src, &mut w)?,
                    "csv" => export::write_csv(&mut src, &mut w)?,
                    _ => export::write_label_studio(&mut src, &mut w)?,
                }
                file = w.into_inner().map_err(|e| e.into_error())?;
            }
        }
        file.rewind()?;
        drop(src);
        crate::heap::release_free_memory();
        Ok(file)
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(anyhow::Error::from)?;
    let len = file.metadata().map_err(anyhow::Error::from)?.len();
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 256 * 1024));
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.{ext}\"")),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response())
}

/// `GET /api/projects/{pid}/releases/{id}/diff/{other}`: from release `id` to `other`.
pub async fn diff(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, id, other)): PathParam<(i64, i64, i64)>,
) -> AppResult<Json<ReleaseDiff>> {
    managed_project(&state.db, &caller, pid).await?;
    let (a, b) = (find_release(&state, pid, id).await?, find_release(&state, pid, other).await?);
    let (ia, ib) = (store::release_items(&state.db, a.id).await?, store::release_items(&state.db, b.id).await?);
    // The stratification attributes of both releases' plans.
    let mut attributes: Vec<String> = Vec::new();
    for row in [&a, &b] {
        for v in lineage_of(row)?["devset"]["plan"]["attributes"].as_array().into_iter().flatten() {
            if let Some(s) = v.as_str().filter(|s| !attributes.iter().any(|x| x == s)) {
                attributes.push(s.to_string());
            }
        }
    }
    let d = releases::diff::diff(&ia, &ib, &attributes);
    Ok(Json(ReleaseDiff {
        from: summary(&state, &a).await?,
        to: summary(&state, &b).await?,
        added: d.added,
        removed: d.removed,
        label_changes: d.label_changes,
        distribution: d.distribution,
    }))
}
