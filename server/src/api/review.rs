//! Review queues, decisions and gold answers (issue 7). Admins and the project's leads only:
//! every route starts with `managed_project`, so labelers get 403 and never see others' labels.
use app::api_types::{
    GoldAnswer, GoldUpdate, NewQueueEntries, QueueEntriesAdded, ReviewDecision, ReviewDecisionRequest, ReviewItem,
    ReviewQueuePage, ReviewQueues,
};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;

use super::extract::{JsonBody, PathParam, QueryParams};
use crate::auth::{managed_project, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::review::{self, Filters};
use crate::state::AppState;
use crate::store;

#[derive(Deserialize, Default)]
pub struct QueueQuery {
    pub pair: Option<String>,
    pub slice: Option<String>,
    pub label: Option<String>,
    pub after: Option<i64>,
    pub limit: Option<i64>,
}

impl QueueQuery {
    fn filters(&self) -> AppResult<Filters> {
        Filters::parse(self.pair.as_deref(), self.slice.as_deref(), self.label.as_deref())
    }
}

/// `GET /api/projects/{pid}/review/queues`: every queue with its open and resolved counts.
pub async fn list_queues(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    QueryParams(q): QueryParams<QueueQuery>,
) -> AppResult<Json<ReviewQueues>> {
    managed_project(&state.db, &caller, pid).await?;
    let queues = store::review::queue_counts(&state.db, pid, &q.filters()?).await?;
    Ok(Json(ReviewQueues { queues }))
}

/// `GET /api/projects/{pid}/review/queues/{name}`: a page of the queue's open items.
pub async fn queue_page(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, name)): PathParam<(i64, String)>,
    QueryParams(q): QueryParams<QueueQuery>,
) -> AppResult<Json<ReviewQueuePage>> {
    managed_project(&state.db, &caller, pid).await?;
    let name = review::validate_queue_name(&name)?;
    let limit = q.limit.unwrap_or(review::DEFAULT_PAGE);
    if !(1..=review::MAX_PAGE).contains(&limit) {
        return Err(AppError::bad_request(format!("limit must be between 1 and {}", review::MAX_PAGE)));
    }
    let page = store::review::queue_page(&state.db, pid, &name, &q.filters()?, q.after.unwrap_or(0), limit).await?;
    Ok(Json(page))
}

/// `POST /api/projects/{pid}/review/queues/{name}/entries`: other sources feed a queue.
pub async fn add_entries(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, name)): PathParam<(i64, String)>,
    JsonBody(body): JsonBody<NewQueueEntries>,
) -> AppResult<Json<QueueEntriesAdded>> {
    managed_project(&state.db, &caller, pid).await?;
    let name = review::validate_queue_name(&name)?;
    let reason = review::validate_reason(&body.reason)?;
    let added =
        store::review::add_entries(&state.db, pid, &name, &body.item_ids, &body.external_ids, &reason, &body.detail)
            .await?;
    Ok(Json(added))
}

/// `GET /api/projects/{pid}/review/items/{item_id}`: the item with every answer, consensus,
/// gold, decisions and history.
pub async fn review_item(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, item_id)): PathParam<(i64, i64)>,
) -> AppResult<Json<ReviewItem>> {
    managed_project(&state.db, &caller, pid).await?;
    store::review::review_item(&state.db, pid, item_id)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::not_found(format!("no item {item_id} in this project")))
}

/// `POST /api/projects/{pid}/review/items/{item_id}/decision`: the item's final labels.
pub async fn decide(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, item_id)): PathParam<(i64, i64)>,
    JsonBody(body): JsonBody<ReviewDecisionRequest>,
) -> AppResult<(StatusCode, Json<ReviewDecision>)> {
    let project = managed_project(&state.db, &caller, pid).await?.project;
    let validate = |gold: Option<&[String]>| {
        review::validate_decision(&project, gold, &body.labels, &body.note, &body.queue, body.gold_action)
    };
    let decision =
        store::review::decide(&state.db, &project, item_id, caller.id(), &caller.user.username, validate).await?;
    Ok((StatusCode::CREATED, Json(decision)))
}

/// `PUT /api/projects/{pid}/items/{item_id}/gold`: mark, change or (null) unmark the gold answer.
pub async fn set_gold(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, item_id)): PathParam<(i64, i64)>,
    JsonBody(body): JsonBody<GoldUpdate>,
) -> AppResult<Json<GoldAnswer>> {
    let project = managed_project(&state.db, &caller, pid).await?.project;
    let labels = body.labels.as_deref().map(|l| review::validate_gold(&project, l)).transpose()?;
    Ok(Json(store::review::set_gold(&state.db, pid, item_id, caller.id(), labels).await?))
}
