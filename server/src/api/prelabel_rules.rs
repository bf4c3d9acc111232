//! Labeling rules (issue 10): a lead's rules with their live figures, and applying them as the
//! rules source's pre-labels. Admins and the project's leads only (`managed_project`). The
//! work is in `prelabels::rules_run`.
use app::api_types::{JobInfo, PrelabelRule, RuleDraft, RuleList, RulePreview, RulePreviewRequest, RulesApplyStatus};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::extract::{JsonBody, PathParam};
use crate::auth::{managed_project, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::prelabels::rules_run::{self, check_draft, MAX_RULES};
use crate::state::AppState;
use crate::store::prelabel_rules as store;

pub async fn list(State(state): State<AppState>, caller: CurrentUser, PathParam(pid): PathParam<i64>) -> AppResult<Json<RuleList>> {
    let project = managed_project(&state.db, &caller, pid).await?.project;
    Ok(Json(rules_run::list(&state.db, pid, &project.labels).await?))
}

/// The rule's figures come with it (the list's, once saved).
async fn saved(state: &AppState, pid: i64, labels: &[app::api_types::LabelDef], id: i64) -> AppResult<PrelabelRule> {
    rules_run::list(&state.db, pid, labels)
        .await?
        .rules
        .into_iter()
        .find(|r| r.id == id)
        .ok_or_else(|| AppError::not_found("no such rule in this project"))
}

pub async fn create(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    JsonBody(mut draft): JsonBody<RuleDraft>,
) -> AppResult<(StatusCode, Json<PrelabelRule>)> {
    let project = managed_project(&state.db, &caller, pid).await?.project;
    let labels: Vec<String> = project.labels.iter().map(|l| l.name.clone()).collect();
    check_draft(&mut draft, &labels)?;
    if store::list_rules(&state.db, pid).await?.len() >= MAX_RULES {
        return Err(AppError::bad_request(format!("a project has at most {MAX_RULES} rules; delete one first")));
    }
    let row = store::insert_rule(&state.db, pid, caller.id(), &draft).await?;
    Ok((StatusCode::CREATED, Json(saved(&state, pid, &project.labels, row.id).await?)))
}

pub async fn update(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, id)): PathParam<(i64, i64)>,
    JsonBody(mut draft): JsonBody<RuleDraft>,
) -> AppResult<Json<PrelabelRule>> {
    let project = managed_project(&state.db, &caller, pid).await?.project;
    let labels: Vec<String> = project.labels.iter().map(|l| l.name.clone()).collect();
    check_draft(&mut draft, &labels)?;
    store::update_rule(&state.db, pid, id, caller.id(), &draft)
        .await?
        .ok_or_else(|| AppError::not_found("no such rule in this project"))?;
    Ok(Json(saved(&state, pid, &project.labels, id).await?))
}

pub async fn delete(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, id)): PathParam<(i64, i64)>,
) -> AppResult<StatusCode> {
    managed_project(&state.db, &caller, pid).await?;
    if store::delete_rule(&state.db, pid, id, caller.id()).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found("no such rule in this project"))
    }
}

/// The figures of an unsaved rule, as the lead types it.
pub async fn preview(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    JsonBody(req): JsonBody<RulePreviewRequest>,
) -> AppResult<Json<RulePreview>> {
    let project = managed_project(&state.db, &caller, pid).await?.project;
    Ok(Json(rules_run::preview(&state.db, pid, &project.labels, req).await?))
}

/// Queues the recomputation of the rules source's pre-labels from the enabled rules (the label
/// model) as a background job: 202 with the job; `GET` on the same path follows it.
pub async fn apply(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
) -> AppResult<(StatusCode, Json<JobInfo>)> {
    managed_project(&state.db, &caller, pid).await?;
    Ok((StatusCode::ACCEPTED, Json(rules_run::queue_apply(&state.db, pid, caller.id()).await?)))
}

/// The newest Apply job (progress, state, error) and the last finished Apply's result.
pub async fn apply_status(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
) -> AppResult<Json<RulesApplyStatus>> {
    managed_project(&state.db, &caller, pid).await?;
    Ok(Json(rules_run::apply_status(&state.db, pid).await?))
}
