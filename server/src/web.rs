//! The whole HTTP application: the JSON API under /api, the Leptos pages, static files.
use std::time::Duration;

use app::{shell, App};
use axum::http::{header, HeaderValue};
use axum::Router;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::auth::session_store::SqlSessionStore;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "mirrorset_session";

pub fn app_router(state: AppState, sessions: SqlSessionStore, secure_cookies: bool) -> Router {
    let session_layer = SessionManagerLayer::new(sessions)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(secure_cookies)
        .with_expiry(Expiry::OnInactivity(tower_sessions::cookie::time::Duration::days(14)));
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    Router::new()
        .nest("/api", crate::api::router())
        .leptos_routes(&state, routes, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler::<AppState, _>(shell))
        .layer(session_layer)
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .with_state(state)
}

/// Housekeeping every minute: expired sessions and leases, imports whose server died (stale
/// heartbeat), and the marker that keeps this instance's spool directory from looking dead.
pub fn spawn_cleanup(state: AppState, sessions: SqlSessionStore) {
    use tower_sessions::session_store::ExpiredDeletion;
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_secs(60));
        loop {
            tick.tick().await;
            if let Err(e) = sessions.delete_expired().await {
                tracing::warn!(error = %e, "could not delete expired sessions");
            }
            if let Err(e) = crate::store::assignment::delete_expired_leases(&state.db).await {
                tracing::warn!(error = %e, "could not delete expired leases");
            }
            if let Err(e) = crate::import::job::reap_stale(&state.db, false).await {
                tracing::warn!(error = %e, "could not clean up stale imports");
            }
            crate::import::spool::touch_alive(&state.spool.dir);
        }
    });
}
