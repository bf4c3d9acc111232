//! Who is calling, and what they may do.
//!
//! A caller is identified by an `Authorization: Bearer` API token or by the session cookie.
//! Cookie-authenticated requests that change state must echo the session's CSRF token in the
//! `x-csrf-token` header: a cross-site page can make the browser send the cookie, but cannot
//! read the token. Bearer requests need no such header (browsers never add one on their own).
//!
//! The account is checked on every request, not only at sign-in: a disabled user's sessions
//! and tokens stop working at once, an expired token is refused, and a session signed in
//! under an older session epoch (before a password change or reset) is ended. (Whom a token
//! or a session belongs to, and the session's record, are remembered for a second:
//! `account_cache`, `session_store`. A change made on this instance takes effect at its next
//! request; one made through another instance or the CLI, within that second.)
//!
//! Sessions expire after `AppState::session_idle` without activity. tower-sessions moves a
//! session's expiry (and the cookie's Max-Age) only when it saves the session, and it saves
//! only a modified session; so an active session is marked modified (its `seen` time is
//! rewritten) once every `session_refresh_interval`, not on every request: activity keeps
//! the session alive at the cost of at most one write a minute per session.
pub mod account_cache;
pub mod fresh_cache;
pub mod password;
pub mod session_store;
pub mod throttle;

use std::time::Duration;

use app::api_types::{ProjectSummary, Role, User};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Method;
use tower_sessions::Session;

use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store::{self, now_ms, Db};

pub const SESSION_USER_KEY: &str = "user_id";
pub const SESSION_CSRF_KEY: &str = "csrf";
/// The user's session epoch when this session signed in (see `store::users`).
pub const SESSION_EPOCH_KEY: &str = "epoch";
/// When the session was last saved (ms): it is saved again once this is older than
/// `session_refresh_interval`.
pub const SESSION_SEEN_KEY: &str = "seen";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// How often an active session is re-saved: a quarter of the idle window (so a short window
/// still slides), at most once a minute.
pub fn session_refresh_interval(idle: Duration) -> Duration {
    (idle / 4).min(Duration::from_secs(60))
}

/// How the caller proved who they are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthVia {
    /// The session cookie of a signed-in browser.
    Session,
    /// An `Authorization: Bearer` API token.
    Token,
}

/// The signed-in caller. Extracting it checks authentication, the account's state and, for
/// state-changing methods with the cookie, the CSRF token.
#[derive(Clone, Debug)]
pub struct CurrentUser {
    pub user: User,
    pub via: AuthVia,
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
    /// Refuses bearer tokens: a stolen token must not be able to mint more credentials.
    pub fn require_session(&self, what: &str) -> AppResult<()> {
        match self.via {
            AuthVia::Session => Ok(()),
            AuthVia::Token => Err(AppError::forbidden(format!(
                "{what} needs a signed-in browser session; an API token cannot do it"
            ))),
        }
    }
}

fn session_err(e: tower_sessions::session::Error) -> AppError {
    AppError::Internal(e.into())
}

impl FromRequestParts<AppState> for CurrentUser {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> AppResult<Self> {
        if let Some(value) = parts.headers.get(axum::http::header::AUTHORIZATION) {
            let value = value.to_str().unwrap_or_default();
            let Some(secret) = value.strip_prefix("Bearer ") else {
                return Err(AppError::bad_request("the Authorization header must be `Bearer <token>`"));
            };
            let owner = state
                .accounts
                .token_owner(&state.db, &password::token_hash(secret.trim()))
                .await?
                .ok_or(AppError::Unauthorized)?;
            if owner.user.disabled {
                return Err(AppError::AccountDisabled);
            }
            if owner.expires_at.is_some_and(|t| t <= now_ms()) {
                return Err(AppError::TokenExpired);
            }
            return Ok(CurrentUser { user: owner.user, via: AuthVia::Token });
        }
        let session = Session::from_request_parts(parts, state)
            .await
            .map_err(|(_, msg)| AppError::Internal(anyhow::anyhow!("session layer missing: {msg}")))?;
        let user_id: i64 = session.get(SESSION_USER_KEY).await.map_err(session_err)?.ok_or(AppError::Unauthorized)?;
        let Some(account) = state.accounts.session_user(&state.db, user_id).await? else {
            session.flush().await.map_err(session_err)?;
            return Err(AppError::Unauthorized);
        };
        if account.user.disabled {
            session.flush().await.map_err(session_err)?;
            return Err(AppError::AccountDisabled);
        }
        // Sessions from before this field existed count as epoch 0, the column's default.
        let epoch: i64 = session.get(SESSION_EPOCH_KEY).await.map_err(session_err)?.unwrap_or(0);
        if epoch != account.session_epoch {
            session.flush().await.map_err(session_err)?;
            return Err(AppError::SessionEnded(
                "this session was signed out (the password was changed or reset, or the account disabled); sign in again"
                    .into(),
            ));
        }
        if !matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS) {
            let expected: Option<String> = session.get(SESSION_CSRF_KEY).await.map_err(session_err)?;
            let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok());
            if expected.is_none() || sent != expected.as_deref() {
                return Err(AppError::forbidden(
                    "missing or wrong x-csrf-token header (take it from GET /api/me)",
                ));
            }
        }
        keep_alive(&session, state.session_idle).await?;
        Ok(CurrentUser { user: account.user, via: AuthVia::Session })
    }
}

/// Marks an active session modified when it was last saved longer than the refresh interval
/// ago, so the session layer saves it with a new expiry and cookie Max-Age.
async fn keep_alive(session: &Session, idle: Duration) -> AppResult<()> {
    let now = now_ms();
    let seen: Option<i64> = session.get(SESSION_SEEN_KEY).await.map_err(session_err)?;
    let interval = session_refresh_interval(idle).as_millis() as i64;
    if seen.is_none_or(|t| now - t >= interval || t > now) {
        session.insert(SESSION_SEEN_KEY, now).await.map_err(session_err)?;
    }
    Ok(())
}

/// Starts the session of a user who just proved who they are (at sign-in): a new session
/// id, so an id planted before sign-in is worthless, and a new CSRF token. Returns the token.
pub async fn start_session(session: &Session, user_id: i64, session_epoch: i64) -> AppResult<String> {
    session.cycle_id().await.map_err(session_err)?;
    let csrf_token = password::random_secret("");
    session.insert(SESSION_USER_KEY, user_id).await.map_err(session_err)?;
    session.insert(SESSION_CSRF_KEY, &csrf_token).await.map_err(session_err)?;
    session.insert(SESSION_EPOCH_KEY, session_epoch).await.map_err(session_err)?;
    session.insert(SESSION_SEEN_KEY, now_ms()).await.map_err(session_err)?;
    Ok(csrf_token)
}

/// The project, if the caller may see it (admins: all; others: members). Non-members get
/// 404, so project ids do not leak.
pub async fn visible_project(db: &Db, caller: &CurrentUser, project_id: i64) -> AppResult<ProjectSummary> {
    store::projects::get_project_for_member(db, project_id, caller.id(), caller.is_admin())
        .await?
        .ok_or_else(|| AppError::not_found(format!("no project {project_id}")))
}

/// The project, if the caller may manage it (admins, and leads who belong to it).
pub async fn managed_project(db: &Db, caller: &CurrentUser, project_id: i64) -> AppResult<ProjectSummary> {
    let project = visible_project(db, caller, project_id).await?;
    match caller.user.role {
        Role::Admin | Role::Lead => Ok(project),
        Role::Labeler => Err(AppError::forbidden("only an admin or a lead of this project can do this")),
    }
}
