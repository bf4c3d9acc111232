//! Who is calling, and what they may do.
//!
//! A caller is identified by an `Authorization: Bearer` API token or by the session cookie.
//! Cookie-authenticated requests that change state must echo the session's CSRF token in the
//! `x-csrf-token` header: a cross-site page can make the browser send the cookie, but cannot
//! read the token. Bearer requests need no such header (browsers never add one on their own).
pub mod password;
pub mod session_store;

use app::api_types::{ProjectSummary, Role, User};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use tower_sessions::Session;

use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store::{self, Db};

pub const SESSION_USER_KEY: &str = "user_id";
pub const SESSION_CSRF_KEY: &str = "csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// The signed-in caller. Extracting it checks authentication and, for state-changing
/// methods with the cookie, the CSRF token.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub user: User,
}

impl CurrentUser {
    pub fn id(&self) -> i64 {
        self.user.id
    }
    pub fn is_admin(&self) -> bool {
        self.user.role == Role::Admin
    }
    pub fn require_admin(&self) -> AppResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AppError::forbidden("only an admin can do this"))
        }
    }
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let value = value.to_str().unwrap_or_default();
            let Some(secret) = value.strip_prefix("Bearer ") else {
                return Err(AppError::bad_request("the Authorization header must be `Bearer <token>`"));
            };
            let user_id = store::tokens::user_for_token(&state.db, &password::token_hash(secret.trim()))
                .await?
                .ok_or(AppError::Unauthorized)?;
            let user = store::users::get_user(&state.db, user_id).await?.ok_or(AppError::Unauthorized)?;
            return Ok(CurrentUser { user });
        }
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, msg)| AppError::Internal(anyhow::anyhow!("session layer missing: {msg}")))?;
        let user_id: i64 = session
            .get(SESSION_USER_KEY)
            .await
            .map_err(|e| AppError::Internal(e.into()))?
            .ok_or(AppError::Unauthorized)?;
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let expected: Option<String> =
                session.get(SESSION_CSRF_KEY).await.map_err(|e| AppError::Internal(e.into()))?;
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if expected.is_none() || sent != expected.as_deref() {
                return Err(AppError::forbidden(
                    "missing or wrong x-csrf-token header (take it from GET /api/me)",
                ));
            }
        }
        let user = store::users::get_user(&state.db, user_id).await?.ok_or(AppError::Unauthorized)?;
        Ok(CurrentUser { user })
    }
}

/// The project, if the caller may see it (admins: all; others: members). Non-members get
/// 404, so project ids do not leak.
pub async fn visible_project(db: &Db, caller: &CurrentUser, project_id: i64) -> AppResult<ProjectSummary> {
    let project = store::projects::get_project(db, project_id).await?;
    if caller.is_admin() || store::users::is_member(db, project_id, caller.id()).await? {
        Ok(project)
    } else {
        Err(AppError::not_found(format!("no project {project_id}")))
    }
}

/// The project, if the caller may manage it (admins, and leads who belong to it).
pub async fn managed_project(db: &Db, caller: &CurrentUser, project_id: i64) -> AppResult<ProjectSummary> {
    let project = visible_project(db, caller, project_id).await?;
    match caller.user.role {
        Role::Admin | Role::Lead => Ok(project),
        Role::Labeler => Err(AppError::forbidden("only an admin or a lead of this project can do this")),
    }
}
