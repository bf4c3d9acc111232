//! The operator's endpoints, at the root (outside `/api`, where load balancers and Prometheus
//! look for them) and outside the OpenAPI document, which describes the API for its clients:
//!
//! - `GET /health`: the process is up and answering. Touches no database, so a slow database
//!   does not get a healthy instance restarted.
//! - `GET /ready`: this instance can serve: the database answers and every migration the
//!   binary embeds is applied. 503 in the API's error shape otherwise, so a load balancer
//!   sends no traffic to an instance whose database is gone or behind.
//! - `GET /metrics`: Prometheus text format (`crate::metrics`). Without `--metrics-token`,
//!   anyone who reaches the port can read it, like /health: keep the port behind the reverse
//!   proxy or a firewall (README); with it, only `Authorization: Bearer <token>` (else 401).
//!
//! `GET /api/health` (in the API) adds the app's and the schema's versions.
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};

use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// The longest /ready waits for the database before it answers 503 (the pools wait up to
/// 30 s for a connection; a readiness probe must answer well before its own timeout).
const READY_TIMEOUT: Duration = Duration::from_secs(5);

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
}

async fn health() -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok" }))
}

async fn ready(State(state): State<AppState>) -> AppResult<Json<serde_json::Value>> {
    let applied = match tokio::time::timeout(READY_TIMEOUT, state.db.applied_migrations()).await {
        Ok(Ok(applied)) => applied,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "readiness check: the database did not answer");
            return Err(not_ready("the database does not answer; the server log has the details".into()));
        }
        Err(_) => {
            return Err(not_ready(format!(
                "the database did not answer within {} s",
                READY_TIMEOUT.as_secs()
            )))
        }
    };
    let missing = missing_migrations(&state.db.embedded_migrations(), &applied);
    if !missing.is_empty() {
        return Err(not_ready(format!("migrations not applied yet: {missing:?}")));
    }
    Ok(Json(serde_json::json!({ "status": "ok" })))
}

/// The embedded migrations that `applied` lacks, in order.
fn missing_migrations(embedded: &[i64], applied: &[i64]) -> Vec<i64> {
    embedded.iter().copied().filter(|v| !applied.contains(v)).collect()
}

fn not_ready(message: String) -> AppError {
    AppError::Unavailable { message, retry_after_secs: 5 }
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let authorization = headers.get(header::AUTHORIZATION).map(|v| v.as_bytes());
    if !state.metrics.may_scrape(authorization) {
        return AppError::Unauthorized.into_response();
    }
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")],
        state.metrics.render(&state.db),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_needs_every_embedded_migration() {
        assert_eq!(missing_migrations(&[1, 2, 3], &[1, 2, 3]), Vec::<i64>::new());
        assert_eq!(missing_migrations(&[1, 2, 3, 4], &[1, 2]), vec![3, 4]);
        // A newer instance already migrated the database: this one can still serve.
        assert_eq!(missing_migrations(&[1, 2], &[1, 2, 3]), Vec::<i64>::new());
    }
}
