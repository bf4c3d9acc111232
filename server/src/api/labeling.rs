//! The labeling loop: next item, submit, skip, go back, progress.
use app::api_types::{Annotation, NextItem, NextRequest, PreviousSubmission, Progress, SkipItem, SubmitAnnotation};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::extract::{JsonBody, PathParam, QueryParams};
use crate::auth::{visible_project, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store;
use crate::store::assignment::Submission;

/// Time on one item above this is clamped: the labeler walked away.
pub const MAX_TIME_MS: i64 = 3_600_000;

async fn progress_of(state: &AppState, pid: i64, user_id: i64, since: i64) -> AppResult<Progress> {
    let (mine_today, mine_total, done, total) = store::assignment::progress(&state.db, pid, user_id, since).await?;
    Ok(Progress { mine_today, mine_total, done, total })
}

/// The caller as the labeling loop's statements check them (`store::assignment::Labeler`):
/// admins may label in every project, as `visible_project` lets them see every project.
fn labeler(caller: &CurrentUser) -> store::assignment::Labeler {
    store::assignment::Labeler { user_id: caller.id(), any_project: caller.is_admin() }
}

/// The body is optional: no body means "nothing to exclude".
pub async fn next_item(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    QueryParams(q): QueryParams<SinceQuery>,
    body: Bytes,
) -> AppResult<Json<NextItem>> {
    let req: NextRequest = if body.iter().all(u8::is_ascii_whitespace) {
        NextRequest::default()
    } else {
        super::extract::from_json_bytes(&body)?
    };
    // Whether the caller may label here is asked inside the hand-out's transaction: one round
    // trip fewer per request on PostgreSQL (a project they may not see answers 404).
    let since = q.since.unwrap_or(0);
    let handed = store::assignment::assign_next_item(&state.db, pid, labeler(&caller), &req.exclude, since).await?;
    state.metrics.labeler_seen(caller.id());
    let (mine_today, mine_total, done, total) = handed.progress;
    let progress = Progress { mine_today, mine_total, done, total };
    Ok(Json(match handed.assigned {
        Some(a) => NextItem {
            item: Some(a.item.into_view()),
            lease_expires_at: Some(a.lease_expires_at),
            progress,
            prelabel: a.prelabel,
        },
        None => NextItem { item: None, lease_expires_at: None, progress, prelabel: None },
    }))
}

pub async fn submit(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    JsonBody(req): JsonBody<SubmitAnnotation>,
) -> AppResult<Json<Annotation>> {
    // Whether the caller may label here is asked inside the submission's transaction, as in
    // `next_item`.
    let client_id = req.client_id.trim();
    if client_id.is_empty() || client_id.len() > 100 {
        return Err(AppError::bad_request("client_id must have 1 to 100 characters"));
    }
    // The labels are checked against the project's schema inside the store's transaction,
    // so a concurrent settings change cannot slip between the check and the write.
    let submission = Submission {
        item_id: req.item_id,
        labels: &req.labels,
        time_ms: req.time_ms.clamp(0, MAX_TIME_MS),
        client_id,
    };
    let submitted = store::assignment::submit_annotation(&state.db, pid, labeler(&caller), &submission).await?;
    // A retry of an acknowledged submission (same client_id) adds no label.
    if submitted.new {
        state.metrics.label_submitted();
    }
    if submitted.new && submitted.prelabeled {
        // What the answer did with the item's pre-labels (acceptance, time per source). The
        // label is stored already: a failure here costs a statistic one answer, not the label.
        let a = &submitted.annotation;
        if let Err(e) = store::prelabels::record_outcomes(&state.db, pid, a.item_id, caller.id(), &a.labels, a.time_ms).await {
            tracing::warn!(project_id = pid, item_id = a.item_id, error = %e, "could not record the pre-label outcome");
        }
    }
    if let Some(miss) = submitted.recorded_gold_miss() {
        gold_missed(&state, pid, caller.id(), &submitted.annotation, miss).await;
    }
    let gold_answer = submitted.training_answer();
    Ok(Json(Annotation { gold_answer, ..submitted.annotation }))
}

/// Logs a labeler's miss on a gold item (created or changed answer differing from gold; never
/// a retry or an unchanged answer). The gold-miss review queue entry itself is written inside
/// the submission's transaction (`review_after_annotation!` in `store::assignment`).
async fn gold_missed(
    _state: &AppState,
    project_id: i64,
    user_id: i64,
    annotation: &Annotation,
    miss: &store::assignment::GoldOutcome,
) {
    tracing::info!(
        project_id,
        item_id = annotation.item_id,
        user_id,
        annotation_id = annotation.id,
        labels = ?annotation.labels,
        gold = ?miss.gold,
        "gold miss"
    );
}

pub async fn skip(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    JsonBody(req): JsonBody<SkipItem>,
) -> AppResult<StatusCode> {
    visible_project(&state.db, &caller, pid).await?;
    store::assignment::skip_item(&state.db, pid, caller.id(), req.item_id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
pub struct BeforeQuery {
    pub before: Option<i64>,
}

pub async fn previous(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    QueryParams(q): QueryParams<BeforeQuery>,
) -> AppResult<Json<PreviousSubmission>> {
    visible_project(&state.db, &caller, pid).await?;
    match store::assignment::previous_submission(&state.db, pid, caller.id(), q.before).await? {
        Some((item, annotation)) => Ok(Json(PreviousSubmission { item: item.into_view(), annotation })),
        None => Err(AppError::not_found("no earlier submission")),
    }
}

#[derive(Deserialize)]
pub struct SinceQuery {
    pub since: Option<i64>,
}

pub async fn progress(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    QueryParams(q): QueryParams<SinceQuery>,
) -> AppResult<Json<Progress>> {
    visible_project(&state.db, &caller, pid).await?;
    Ok(Json(progress_of(&state, pid, caller.id(), q.since.unwrap_or(0)).await?))
}
