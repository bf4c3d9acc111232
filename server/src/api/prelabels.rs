//! Pre-labels (issue 10): imported predictions, the sources' figures, the project's pre-label
//! settings. Admins and the project's leads only (`managed_project`); labelers meet pre-labels
//! in the labeling loop (`labeling::next_item`).
use app::api_types::{
    AutoAcceptChange, AutoAcceptReport, AutoAcceptRequest, ImportReport, LabelKind, PrelabelAuditDrawn, PrelabelSettings,
    PrelabelSource,
};
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
    // New scores: what auto-accept takes, and which human answers now contradict a confident
    // pre-label, follow at once.
    store::prelabels::apply_auto_accept(&state.db, pid).await?;
    store::prelabels::queue_disagreements(&state.db, pid).await?;
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
    if !(0.0..=1.0).contains(&req.disagreement_min_score) {
        return Err(AppError::bad_request(format!(
            "disagreement_min_score must be between 0 and 1, not {}",
            req.disagreement_min_score
        )));
    }
    store::prelabels::put_settings(&state.db, pid, &req).await?;
    // A lowered threshold brings answers given before it into the queue.
    store::prelabels::queue_disagreements(&state.db, pid).await?;
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

/// Turns auto-accept on or off for a source's label set (or all of them), recorded in the audit
/// log. On takes the threshold the audits justify now (`PrelabelLabelStats::
/// auto_accept_min_score`) and keeps it; a label set without one cannot be switched on (422 when
/// named, listed in `without_threshold` when the whole source is switched). The accepted items
/// are rebuilt at once (`prelabels::auto_accept`).
pub async fn put_auto_accept(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    JsonBody(req): JsonBody<AutoAcceptRequest>,
) -> AppResult<Json<AutoAcceptReport>> {
    managed_project(&state.db, &caller, pid).await?;
    let Some((kind, name, version, label_sets)) = store::prelabels::source_of(&state.db, pid, req.source_id).await? else {
        return Err(AppError::not_found(format!("no pre-label source {} in this project", req.source_id)));
    };
    let parsed = |json: &str| crate::review::parse_labels(Some(json)).unwrap_or_default();
    let chosen: Vec<String> = match &req.labels {
        None => label_sets,
        Some(want) => match label_sets.iter().find(|l| crate::review::same_labels(&parsed(l), want)) {
            Some(l) => vec![l.clone()],
            None => {
                return Err(AppError::Unprocessable {
                    message: format!("source {} has no pre-label {:?}", req.source_id, want.join(", ")),
                    details: serde_json::Value::Null,
                })
            }
        },
    };
    let target = store::prelabels::settings(&state.db, pid).await?.target_precision;
    let stats = store::prelabels::list_sources(&state.db, pid).await?;
    let threshold = |json: &str| -> Option<f64> {
        let labels = parsed(json);
        stats
            .iter()
            .find(|s| s.id == req.source_id)
            .and_then(|s| s.by_label.iter().find(|l| crate::review::same_labels(&l.labels, &labels)))
            .and_then(|l| l.auto_accept_min_score)
    };
    let mut turns = Vec::new();
    let mut without_threshold = Vec::new();
    for l in &chosen {
        if !req.enabled {
            turns.push(store::prelabels::Turn { labels: l.clone(), on: None });
        } else if let Some(t) = threshold(l) {
            turns.push(store::prelabels::Turn { labels: l.clone(), on: Some((t, target)) });
        } else {
            without_threshold.push(parsed(l));
        }
    }
    if req.enabled && turns.is_empty() {
        return Err(AppError::Unprocessable {
            message: format!(
                "no audited threshold reaches the target precision {target} yet for {}: draw and decide more audits first",
                without_threshold.iter().map(|l| l.join(", ")).collect::<Vec<_>>().join("; ")
            ),
            details: serde_json::json!({"without_threshold": without_threshold}),
        });
    }
    let source = crate::prelabels::auto_accept::source_name(&kind, &name, &version);
    let accepted = store::prelabels::set_auto_accept(&state.db, pid, Some(caller.id()), req.source_id, &source, &turns).await?;
    Ok(Json(AutoAcceptReport {
        changed: turns.iter().map(|t| AutoAcceptChange { labels: parsed(&t.labels), min_score: t.on.map(|o| o.0) }).collect(),
        without_threshold,
        accepted,
    }))
}
