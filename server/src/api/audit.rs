//! The audit log: an item's history (JSON), a project's log and the accounts' log (JSONL).
//! Leads and admins of the project read its history and log; labelers get 403. Account changes
//! belong to no project: only admins read them.
use app::api_types::AuditEntry;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::extract::PathParam;
use crate::audit::log_stream;
use crate::auth::{managed_project, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store;
use crate::store::audit::Scope;

/// `GET /api/projects/{pid}/items/{id}/history`: the item's entries, oldest first.
pub async fn item_history(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, item_id)): PathParam<(i64, i64)>,
) -> AppResult<Json<Vec<AuditEntry>>> {
    managed_project(&state.db, &caller, pid).await?;
    store::audit::item_history(&state.db, pid, item_id)
        .await?
        .map(Json)
        .ok_or_else(|| AppError::not_found(format!("no item {item_id} in this project")))
}

fn jsonl_download(scope: Scope, filename: String, state: &AppState) -> Response {
    (
        [
            (header::CONTENT_TYPE, "application/x-ndjson".to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        Body::from_stream(log_stream(state.db.clone(), scope)),
    )
        .into_response()
}

/// `GET /api/projects/{pid}/audit`: the project's log as JSONL, oldest first.
pub async fn project_log(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
) -> AppResult<Response> {
    managed_project(&state.db, &caller, pid).await?;
    Ok(jsonl_download(Scope::Project(pid), format!("project-{pid}-audit.jsonl"), &state))
}

/// `GET /api/audit`: the account changes (entries of no project) as JSONL (admins).
pub async fn accounts_log(State(state): State<AppState>, caller: CurrentUser) -> AppResult<Response> {
    caller.require_admin()?;
    Ok(jsonl_download(Scope::Accounts, "accounts-audit.jsonl".to_string(), &state))
}
