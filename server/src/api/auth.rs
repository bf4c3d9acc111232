//! Signing in and out, who the caller is, and changing one's own password.
use std::time::Instant;

use app::api_types::{LoginRequest, Me, PasswordChange};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use tower_sessions::Session;

use super::extract::{ClientAddr, JsonBody};
use crate::auth::password::{dummy_hash, hash_password, validate_new_password, verify_password};
use crate::auth::throttle::Throttled;
use crate::auth::{start_session, CurrentUser, AuthVia, SESSION_CSRF_KEY, SESSION_EPOCH_KEY};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store;

fn session_err(e: tower_sessions::session::Error) -> AppError {
    AppError::Internal(e.into())
}

fn throttled(t: Throttled) -> AppError {
    AppError::TooManyRequests { message: t.message(), retry_after_secs: t.retry_after_secs() }
}

/// Signs in. Refused without hashing anything while the name or the address has too many
/// recent failures (429); a wrong password counts as a failure for both.
pub async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    session: Session,
    JsonBody(req): JsonBody<LoginRequest>,
) -> AppResult<Json<Me>> {
    let name = req.username.trim();
    let throttle = &state.login_throttle;
    throttle.check(name, addr, Instant::now()).map_err(throttled)?;
    let found = store::users::find_user_with_hash(&state.db, name).await?;
    let hash = found.as_ref().map_or_else(dummy_hash, |u| u.password_hash.clone());
    let verified = verify_password(req.password, hash).await?;
    let Some(account) = found.filter(|_| verified) else {
        throttle.record_failure(name, addr, Instant::now());
        return Err(AppError::WrongCredentials);
    };
    throttle.record_success(name);
    // Only after the password: a disabled account is not revealed to someone guessing.
    if account.user.disabled {
        return Err(AppError::AccountDisabled);
    }
    let csrf_token = start_session(&session, account.user.id, account.session_epoch).await?;
    Ok(Json(Me { user: account.user, csrf_token }))
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

/// The caller changes their own password, proving the current one (throttled like a
/// sign-in, so a borrowed session cannot guess it). Every other session of the user is
/// signed out; this one stays.
pub async fn change_own_password(
    State(state): State<AppState>,
    caller: CurrentUser,
    ClientAddr(addr): ClientAddr,
    session: Session,
    JsonBody(req): JsonBody<PasswordChange>,
) -> AppResult<StatusCode> {
    validate_new_password(&req.new_password)?;
    let name = caller.user.username.as_str();
    let throttle = &state.login_throttle;
    throttle.check(name, addr, Instant::now()).map_err(throttled)?;
    let account = store::users::get_user_with_hash(&state.db, caller.id()).await?.ok_or(AppError::Unauthorized)?;
    if !verify_password(req.current_password, account.password_hash).await? {
        throttle.record_failure(name, addr, Instant::now());
        return Err(AppError::forbidden("the current password is wrong"));
    }
    throttle.record_success(name);
    let hash = hash_password(req.new_password).await?;
    let epoch = store::users::set_password_hash(&state.db, caller.id(), &hash, caller.id()).await?.ok_or(AppError::Unauthorized)?;
    if caller.via == AuthVia::Session {
        session.insert(SESSION_EPOCH_KEY, epoch).await.map_err(session_err)?;
    }
    Ok(StatusCode::NO_CONTENT)
}

/// What operators and clients talk to: the app's version and the schema version (the highest
/// applied migration). Reading the latter also checks that the database answers.
pub async fn health(State(state): State<AppState>) -> AppResult<Json<serde_json::Value>> {
    let schema_version = state.db.schema_version().await?;
    Ok(Json(serde_json::json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "schema_version": schema_version,
    })))
}
