//! Signing in and out, and who the caller is.
use app::api_types::{LoginRequest, Me};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use tower_sessions::Session;

use super::extract::JsonBody;
use crate::auth::password::{dummy_hash, random_secret, verify_password};
use crate::auth::{CurrentUser, SESSION_CSRF_KEY, SESSION_USER_KEY};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store;

fn session_err(e: tower_sessions::session::Error) -> AppError {
    AppError::Internal(e.into())
}

pub async fn login(
    State(state): State<AppState>,
    session: Session,
    JsonBody(req): JsonBody<LoginRequest>,
) -> AppResult<Json<Me>> {
    let found = store::users::find_user_with_hash(&state.db, req.username.trim()).await?;
    let (hash, user) = match found {
        Some(u) => (u.password_hash, Some(u.user)),
        None => (dummy_hash(), None),
    };
    let verified = verify_password(req.password, hash).await?;
    let Some(user) = user.filter(|_| verified) else {
        return Err(AppError::WrongCredentials);
    };
    // A new session id on sign-in, so an id planted before sign-in is worthless.
    session.cycle_id().await.map_err(session_err)?;
    let csrf_token = random_secret("");
    session.insert(SESSION_USER_KEY, user.id).await.map_err(session_err)?;
    session.insert(SESSION_CSRF_KEY, &csrf_token).await.map_err(session_err)?;
    Ok(Json(Me { user, csrf_token }))
}

pub async fn logout(_caller: CurrentUser, session: Session) -> AppResult<StatusCode> {
    session.flush().await.map_err(session_err)?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn me(caller: CurrentUser, session: Session) -> AppResult<Json<Me>> {
    // Bearer callers have no session and need no CSRF token.
    let csrf_token: Option<String> = session.get(SESSION_CSRF_KEY).await.map_err(session_err)?;
    Ok(Json(Me { user: caller.user, csrf_token: csrf_token.unwrap_or_default() }))
}

pub async fn health(State(state): State<AppState>) -> AppResult<Json<serde_json::Value>> {
    store::users::count_users(&state.db).await?;
    Ok(Json(serde_json::json!({ "status": "ok" })))
}
