//! Pre-labels (issue 10): imported predictions, the sources' figures, the project's pre-label
//! settings. Admins and the project's leads only (`managed_project`); labelers meet pre-labels
//! in the labeling loop (`labeling::next_item`).
use app::api_types::{ImportReport, LabelKind, PrelabelAuditDrawn, PrelabelSettings, PrelabelSource};
use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::Json;

use super::extract::{JsonBody, PathParam};
use crate::auth::{managed_project, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::import::{refused, spool};
use crate::prelabels::import::check_file;
use crate::state::AppState;
use crate::store;

/// A JSONL file of predictions, all or nothing: any bad line (or a line naming no item of the
/// project) and nothing is stored; the 422 lists the bad lines in the item import's shape.
pub async fn import_predictions(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Json<ImportReport>> {
    let project = managed_project(&state.db, &caller, pid).await?.project;
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok());
    spool::check_fits(&state.spool, declared)?;
    let spooled = super::import::spool_body(&state, body).await?;
    let labels: Vec<String> = project.labels.iter().map(|l| l.name.clone()).collect();
    let multi = project.kind == LabelKind::Multi;
    let mut checked = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&spooled).map_err(|e| AppError::Internal(e.into()))?;
        let checked = check_file(file, &labels, multi).map_err(|e| AppError::bad_request(format!("cannot read the upload: {e}")));
        drop(spooled); // deletes the file
        checked
    })
    .await
    .map_err(|e| AppError::Internal(anyhow::anyhow!("the predictions check failed: {e}")))??;
    if checked.report.error_count > 0 {
        return Err(refused(checked.report));
    }
    let items = store::prelabels::items_by_external_id(&state.db, pid, &checked.item_ids()).await?;
    let rows = checked.resolve(&items);
    if checked.report.error_count > 0 {
        return Err(refused(checked.report));
    }
    let imported = store::prelabels::store_predictions(&state.db, pid, &checked.sources, &rows).await?;
    Ok(Json(ImportReport { imported, ..checked.report }))
}

pub async fn list_sources(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
) -> AppResult<Json<Vec<PrelabelSource>>> {
    managed_project(&state.db, &caller, pid).await?;
    Ok(Json(store::prelabels::list_sources(&state.db, pid).await?))
}

pub async fn get_settings(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
) -> AppResult<Json<PrelabelSettings>> {
    managed_project(&state.db, &caller, pid).await?;
    Ok(Json(store::prelabels::settings(&state.db, pid).await?))
}

pub async fn put_settings(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    JsonBody(req): JsonBody<PrelabelSettings>,
) -> AppResult<Json<PrelabelSettings>> {
    managed_project(&state.db, &caller, pid).await?;
    if !(0.0..=1.0).contains(&req.audit_rate) {
        return Err(AppError::bad_request(format!("audit_rate must be between 0 and 1, not {}", req.audit_rate)));
    }
    if !(req.target_precision > 0.0 && req.target_precision <= 1.0) {
        return Err(AppError::bad_request(format!("target_precision must be above 0 and at most 1, not {}", req.target_precision)));
    }
    store::prelabels::put_settings(&state.db, pid, &req).await?;
    Ok(Json(req))
}

/// Draws the audit sample (the project's `audit_rate` and `audit_seed`, per source and label;
/// see `prelabels::audit`) and puts the drawn items in the `prelabel_audit` review queue.
pub async fn draw_audit(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
) -> AppResult<Json<PrelabelAuditDrawn>> {
    managed_project(&state.db, &caller, pid).await?;
    let settings = store::prelabels::settings(&state.db, pid).await?;
    let population = store::prelabels::audit_population(&state.db, pid).await?;
    let drawn = crate::prelabels::audit::draw(&population, settings.audit_rate, settings.audit_seed);
    let (drawn, queued) = store::prelabels::record_audits(&state.db, pid, &drawn).await?;
    Ok(Json(PrelabelAuditDrawn { drawn, queued }))
}
