//! The one error type of the server, and the one place it becomes an HTTP response.
use app::api_types::{ErrorBody, ErrorInfo};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("sign in first")]
    Unauthorized,
    #[error("wrong username or password")]
    WrongCredentials,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The server cannot take this now (import slots full, every password-hashing slot busy,
    /// shutting down): 503 with `Retry-After`.
    #[error("{message}")]
    Unavailable { message: String, retry_after_secs: u64 },
    /// Not enough free disk for an upload: 507.
    #[error("{0}")]
    InsufficientStorage(String),
    /// An import with bad lines: nothing was imported; `details` lists them.
    #[error("{message}")]
    InvalidImport { message: String, details: serde_json::Value },
    /// Well-formed input that cannot be used (a production profile with bad lines, a dev-set
    /// draft that cannot be planned): 422; nothing was saved; `details` may list the lines.
    #[error("{message}")]
    Unprocessable { message: String, details: serde_json::Value },
    /// The request was not read and answered in time (the request timeout), or the client
    /// stopped sending an upload's body (the body idle timeout): 408.
    #[error("{0}")]
    RequestTimeout(String),
    /// The caller's account is disabled (their session or token, or a sign-in with the right
    /// password).
    #[error("this account is disabled; an admin can enable it again")]
    AccountDisabled,
    /// The bearer token is past its `expires_at`.
    #[error("this API token expired; create a new one on the API tokens page")]
    TokenExpired,
    /// The session was signed out elsewhere (a password change or reset).
    #[error("{0}")]
    SessionEnded(String),
    /// Too many failed attempts (sign-in throttling); answered with `Retry-After`.
    #[error("{message}")]
    TooManyRequests { message: String, retry_after_secs: u64 },
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

pub type AppResult<T> = Result<T, AppError>;

/// What a client reads when the database cannot store anything (issue 11's fault cases).
pub(crate) const STORAGE_REFUSAL_MESSAGE: &str =
    "the database cannot store anything right now (read-only, out of disk space or failing to write); nothing of this request was saved: try again later";
pub(crate) const STORAGE_REFUSAL_RETRY_SECS: u64 = 5;

/// Whether the database refused a write because of its storage, not because of the request:
/// SQLite's SQLITE_READONLY (8), SQLITE_IOERR (10: a write, sync or truncate the file system
/// refused, e.g. an immutable or failing file) and SQLITE_FULL (13), extended codes included
/// (the low byte is the primary code); PostgreSQL's disk_full (53100) and read_only_sql_transaction (25006, a
/// standby). These pass when the condition clears, so they are a 503 with `Retry-After`, not
/// a 500: the server goes on serving reads, and the same request succeeds later.
pub(crate) fn is_storage_refusal(e: &sqlx::Error) -> bool {
    let Some(db) = e.as_database_error() else { return false };
    let Some(code) = db.code() else { return false };
    if let Ok(n) = code.parse::<i32>() {
        return is_storage_refusal_code(n);
    }
    matches!(code.as_ref(), "53100" | "25006")
}

/// Whether a SQLite result code (extended or primary) is one of `is_storage_refusal`'s.
pub(crate) fn is_storage_refusal_code(code: i32) -> bool {
    matches!(code & 0xff, 8 | 10 | 13)
}

/// An error of a statement on SQLite's raw handle (`store::statements`): a storage refusal is
/// the same 503 as through sqlx, anything else a 500.
impl From<rusqlite::Error> for AppError {
    fn from(e: rusqlite::Error) -> AppError {
        match storage_refusal(&e) {
            Some(refused) => {
                tracing::error!(error = %e, "the database refuses writes");
                refused
            }
            None => AppError::Internal(anyhow::Error::from(e)),
        }
    }
}

/// The 503 for an error of SQLite's raw handle that is a storage refusal (read-only, disk
/// full); `None` for any other error.
pub(crate) fn storage_refusal(e: &rusqlite::Error) -> Option<AppError> {
    let rusqlite::Error::SqliteFailure(f, _) = e else { return None };
    if !is_storage_refusal_code(f.extended_code) {
        return None;
    }
    Some(AppError::Unavailable { message: STORAGE_REFUSAL_MESSAGE.to_string(), retry_after_secs: STORAGE_REFUSAL_RETRY_SECS })
}

impl AppError {
    pub fn bad_request(msg: impl Into<String>) -> Self {
        AppError::BadRequest(msg.into())
    }
    /// A well-formed request whose content breaks a rule the schema cannot state (422).
    pub fn unprocessable(msg: impl Into<String>) -> Self {
        AppError::Unprocessable { message: msg.into(), details: serde_json::Value::Null }
    }
    pub fn forbidden(msg: impl Into<String>) -> Self {
        AppError::Forbidden(msg.into())
    }
    pub fn not_found(msg: impl Into<String>) -> Self {
        AppError::NotFound(msg.into())
    }
    pub fn conflict(msg: impl Into<String>) -> Self {
        AppError::Conflict(msg.into())
    }

    fn status_and_code(&self) -> (StatusCode, &'static str) {
        match self {
            AppError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad_request"),
            AppError::Unauthorized | AppError::WrongCredentials | AppError::SessionEnded(_) => {
                (StatusCode::UNAUTHORIZED, "unauthorized")
            }
            AppError::AccountDisabled => (StatusCode::UNAUTHORIZED, "account_disabled"),
            AppError::TokenExpired => (StatusCode::UNAUTHORIZED, "token_expired"),
            AppError::TooManyRequests { .. } => (StatusCode::TOO_MANY_REQUESTS, "too_many_requests"),
            AppError::Unavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden"),
            AppError::NotFound(_) => (StatusCode::NOT_FOUND, "not_found"),
            AppError::Conflict(_) => (StatusCode::CONFLICT, "conflict"),
            AppError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            AppError::InvalidImport { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_import"),
            AppError::Unprocessable { .. } => (StatusCode::UNPROCESSABLE_ENTITY, "unprocessable"),
            AppError::InsufficientStorage(_) => (StatusCode::INSUFFICIENT_STORAGE, "insufficient_storage"),
            AppError::RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            AppError::Database(e) if is_storage_refusal(e) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable"),
            AppError::Database(_) | AppError::Internal(_) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "internal")
            }
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        let message = match &self {
            AppError::Database(e) if is_storage_refusal(e) => {
                tracing::error!(error = %e, "the database refuses writes");
                STORAGE_REFUSAL_MESSAGE.to_string()
            }
            // Internal details go to the log, not to the client.
            AppError::Database(e) => {
                tracing::error!(error = %e, "database error");
                "internal error; the server log has the details".to_string()
            }
            AppError::Internal(e) => {
                tracing::error!(error = ?e, "internal error");
                "internal error; the server log has the details".to_string()
            }
            other => other.to_string(),
        };
        let retry_after = match &self {
            AppError::TooManyRequests { retry_after_secs, .. } | AppError::Unavailable { retry_after_secs, .. } => {
                Some(*retry_after_secs)
            }
            AppError::Database(e) if is_storage_refusal(e) => Some(STORAGE_REFUSAL_RETRY_SECS),
            _ => None,
        };
        let details = match self {
            AppError::InvalidImport { details, .. } | AppError::Unprocessable { details, .. } => details,
            _ => serde_json::Value::Null,
        };
        let body = ErrorBody { error: ErrorInfo { code: code.to_string(), message, details } };
        let mut response = (status, axum::Json(body)).into_response();
        if let Some(secs) = retry_after {
            // At least 1: `Retry-After: 0` invites an immediate retry that fails the same way.
            response.headers_mut().insert(axum::http::header::RETRY_AFTER, secs.max(1).into());
        }
        if status == StatusCode::REQUEST_TIMEOUT {
            // The rest of the body will not be read: the connection cannot be reused.
            response
                .headers_mut()
                .insert(axum::http::header::CONNECTION, axum::http::HeaderValue::from_static("close"));
        }
        response
    }
}

/// Axum's own rejections (bad JSON, wrong content type, bad path) in our error shape.
impl From<axum::extract::rejection::JsonRejection> for AppError {
    fn from(e: axum::extract::rejection::JsonRejection) -> Self {
        AppError::BadRequest(e.body_text())
    }
}
impl From<axum::extract::rejection::QueryRejection> for AppError {
    fn from(e: axum::extract::rejection::QueryRejection) -> Self {
        AppError::BadRequest(e.body_text())
    }
}
impl From<axum::extract::rejection::PathRejection> for AppError {
    fn from(e: axum::extract::rejection::PathRejection) -> Self {
        AppError::BadRequest(e.body_text())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A write refused by a read-only SQLite database is a 503 with `Retry-After` and a message
    /// that says nothing was saved; another database error stays a 500.
    #[tokio::test]
    async fn a_read_only_database_is_a_503_not_a_500() {
        use sqlx::sqlite::SqliteConnectOptions;
        use sqlx::{ConnectOptions, Connection};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ro.db");
        let mut rw = SqliteConnectOptions::new().filename(&path).create_if_missing(true).connect().await.unwrap();
        sqlx::query("CREATE TABLE t (x INTEGER)").execute(&mut rw).await.unwrap();
        rw.close().await.unwrap();
        let mut ro = SqliteConnectOptions::new().filename(&path).read_only(true).connect().await.unwrap();
        let e = sqlx::query("INSERT INTO t VALUES (1)").execute(&mut ro).await.unwrap_err();
        let response = AppError::from(e).into_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[axum::http::header::RETRY_AFTER], "5");
        let body = axum::body::to_bytes(response.into_body(), 10_000).await.unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], "unavailable");
        assert_eq!(v["error"]["message"], STORAGE_REFUSAL_MESSAGE);

        let e = sqlx::query("INSERT INTO no_such_table VALUES (1)").execute(&mut ro).await.unwrap_err();
        assert_eq!(AppError::from(e).into_response().status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
}
