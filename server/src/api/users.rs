//! Users (admins only) and the caller's API tokens.
use app::api_types::{ApiToken, CreatedToken, NewToken, NewUser, User};
use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;

use super::extract::{JsonBody, PathParam};
use crate::auth::password::{hash_password, random_secret, token_hash, validate_new_password};
use crate::auth::CurrentUser;
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store;

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
    let user = store::users::create_user(&state.db, username, &hash, new.role).await?;
    Ok((StatusCode::CREATED, Json(user)))
}

pub async fn list_tokens(State(state): State<AppState>, caller: CurrentUser) -> AppResult<Json<Vec<ApiToken>>> {
    Ok(Json(store::tokens::list_tokens(&state.db, caller.id()).await?))
}

pub async fn create_token(
    State(state): State<AppState>,
    caller: CurrentUser,
    JsonBody(new): JsonBody<NewToken>,
) -> AppResult<(StatusCode, Json<CreatedToken>)> {
    let name = new.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AppError::bad_request("a token name has 1 to 100 characters"));
    }
    let created = issue_token(&state.db, caller.id(), name).await?;
    Ok((StatusCode::CREATED, Json(created)))
}

/// Creates a token; the secret exists only in the returned value.
pub async fn issue_token(db: &store::Db, user_id: i64, name: &str) -> AppResult<CreatedToken> {
    let secret = random_secret("ms_");
    let token = store::tokens::create_token(db, user_id, name, &token_hash(&secret)).await?;
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
