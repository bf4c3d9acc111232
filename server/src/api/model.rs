//! The built-in model (issue 10): its figures and settings, and "train now". Admins and the
//! project's leads only (`managed_project`); the training runs as a job
//! (`prelabels::model_job`), automatically every `retrain_every` new human final labels when on.
use app::api_types::{JobInfo, LabelKind, ModelSettings, ModelStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::extract::{JsonBody, PathParam};
use crate::auth::{managed_project, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::prelabels::model_job::{self, FOLDS, KIND};
use crate::state::AppState;
use crate::store;

/// The largest `retrain_every` (the schema says so too).
pub const MAX_RETRAIN_EVERY: i64 = 1_000_000;

fn single_label_only(kind: LabelKind) -> AppResult<()> {
    // 422: the request is well formed; this project is not one the model can learn.
    match kind {
        LabelKind::Single => Ok(()),
        LabelKind::Multi => Err(AppError::unprocessable("the built-in model classifies single-label projects only")),
    }
}

pub async fn get(State(state): State<AppState>, caller: CurrentUser, PathParam(pid): PathParam<i64>) -> AppResult<Json<ModelStatus>> {
    let project = managed_project(&state.db, &caller, pid).await?.project;
    let labels: Vec<String> = project.labels.iter().map(|l| l.name.clone()).collect();
    Ok(Json(model_job::status(&state.db, pid, &labels).await.map_err(AppError::Internal)?))
}

pub async fn put_settings(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    JsonBody(req): JsonBody<ModelSettings>,
) -> AppResult<Json<ModelSettings>> {
    let project = managed_project(&state.db, &caller, pid).await?.project;
    if !(1..=MAX_RETRAIN_EVERY).contains(&req.retrain_every) {
        return Err(AppError::bad_request(format!(
            "retrain_every must be between 1 and {MAX_RETRAIN_EVERY}, not {}",
            req.retrain_every
        )));
    }
    if req.enabled || req.uncertainty_order {
        single_label_only(project.kind)?;
    }
    store::model::put_settings(&state.db, pid, &req).await?;
    Ok(Json(req))
}

/// Queues a training now (202 with the job; the one already queued, if any).
pub async fn train(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
) -> AppResult<(StatusCode, Json<JobInfo>)> {
    let project = managed_project(&state.db, &caller, pid).await?.project;
    single_label_only(project.kind)?;
    let signal = store::model::label_signal(&state.db, pid).await?;
    if signal < FOLDS as i64 {
        return Err(AppError::unprocessable(format!(
            "the built-in model needs at least {FOLDS} items with a human final label (adjudicated, gold, or complete with consensus); there are {signal}"
        )));
    }
    store::jobs::enqueue(&state.db, KIND, Some(pid), &model_job::job_params(signal, "manual")).await?;
    let job = store::jobs::latest(&state.db, KIND, pid)
        .await?
        .ok_or_else(|| AppError::Internal(anyhow::anyhow!("the queued training is gone")))?;
    Ok((StatusCode::ACCEPTED, Json(job.into())))
}
