//! Users (admins only) and the caller's API tokens.
use app::api_types::{ApiToken, CreatedToken, NewToken, NewUser, PasswordReset, User, UserUpdate};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::extract::{JsonBody, PathParam};
use crate::auth::password::{hash_password, random_secret, token_hash, validate_new_password};
use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store;
use crate::store::users::UserChange;

/// The longest token lifetime `expires_in_days` accepts (ten years).
pub const MAX_TOKEN_DAYS: i64 = 3650;

pub fn validate_username(name: &str) -> AppResult<()> {
    let ok = (1..=64).contains(&name.len())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(AppError::bad_request("a username has 1 to 64 letters, digits, '.', '_' or '-'"))
    }
}

pub async fn list_users(State(state): State<AppState>, caller: CurrentUser) -> AppResult<Json<Vec<User>>> {
    caller.require_admin()?;
    Ok(Json(store::users::list_users(&state.db).await?))
}

pub async fn create_user(
    State(state): State<AppState>,
    caller: CurrentUser,
    JsonBody(new): JsonBody<NewUser>,
) -> AppResult<(StatusCode, Json<User>)> {
    caller.require_admin()?;
    let username = new.username.trim();
    validate_username(username)?;
    validate_new_password(&new.password)?;
    let hash = hash_password(new.password).await?;
    let user = store::users::create_user(&state.db, username, &hash, new.role, Some(caller.id())).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

/// Changes a user's role or disabled state (admin). Refused (409): disabling oneself, and
/// any change that would leave no enabled admin.
pub async fn update_user(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(id): PathParam<i64>,
    JsonBody(change): JsonBody<UserUpdate>,
) -> AppResult<Json<User>> {
    caller.require_admin()?;
    if id == caller.id() && change.disabled == Some(true) {
        return Err(AppError::conflict("you cannot disable your own account; another admin can"));
    }
    match store::users::update_user(&state.db, id, &change, caller.id()).await? {
        UserChange::Updated(user) => Ok(Json(user)),
        UserChange::NotFound => Err(AppError::not_found(format!("no user {id}"))),
        UserChange::LastAdmin => Err(AppError::conflict(
            "this is the last enabled admin: make another user an admin first, or nobody could manage accounts",
        )),
    }
}

/// Sets a user's password (admin) and signs them out everywhere. Not for one's own password:
/// that change must prove the current one (`POST /api/me/password`).
pub async fn reset_password(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(id): PathParam<i64>,
    JsonBody(req): JsonBody<PasswordReset>,
) -> AppResult<StatusCode> {
    caller.require_admin()?;
    if id == caller.id() {
        // 409 like disabling oneself: the request is well formed, the target is the caller.
        return Err(AppError::conflict(
            "change your own password with POST /api/me/password (it needs your current password)",
        ));
    }
    validate_new_password(&req.password)?;
    if store::users::get_user(&state.db, id).await?.is_none() {
        return Err(AppError::not_found(format!("no user {id}")));
    }
    let hash = hash_password(req.password).await?;
    match store::users::set_password_hash(&state.db, id, &hash, caller.id()).await? {
        Some(_) => Ok(StatusCode::NO_CONTENT),
        None => Err(AppError::not_found(format!("no user {id}"))),
    }
}

pub async fn list_tokens(State(state): State<AppState>, caller: CurrentUser) -> AppResult<Json<Vec<ApiToken>>> {
    Ok(Json(store::tokens::list_tokens(&state.db, caller.id()).await?))
}

pub async fn create_token(
    State(state): State<AppState>,
    caller: CurrentUser,
    JsonBody(new): JsonBody<NewToken>,
) -> AppResult<(StatusCode, Json<CreatedToken>)> {
    caller.require_session("creating an API token")?;
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_request("a token name has 1 to 100 characters"));
    }
    let expires_at = match new.expires_in_days {
        None => None,
        Some(days) if (1..=MAX_TOKEN_DAYS).contains(&days) => Some(store::now_ms() + days * 86_400_000),
        Some(days) => {
            return Err(AppError::bad_request(format!(
                "expires_in_days must be 1 to {MAX_TOKEN_DAYS} (or left out for a token that does not expire), not {days}"
            )))
        }
    };
    let created = issue_token(&state.db, caller.id(), name, expires_at).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Creates a token; the secret exists only in the returned value.
pub async fn issue_token(db: &store::Db, user_id: i64, name: &str, expires_at: Option<i64>) -> AppResult<CreatedToken> {
    let secret = random_secret("ms_");
    let token = store::tokens::create_token(db, user_id, name, &token_hash(&secret), expires_at).await?;
    Ok(CreatedToken { token, secret })
}

pub async fn delete_token(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(id): PathParam<i64>,
) -> AppResult<StatusCode> {
    if store::tokens::delete_token(&state.db, caller.id(), id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found(format!("you have no token {id}")))
    }
}
