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
        // Slides: `auth::CurrentUser` re-saves active sessions, which moves this expiry.
        .with_expiry(Expiry::OnInactivity(idle_duration(state.session_idle)));
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

fn idle_duration(idle: Duration) -> tower_sessions::cookie::time::Duration {
    tower_sessions::cookie::time::Duration::milliseconds(idle.as_millis().min(i64::MAX as u128) as i64)
}

/// Housekeeping every minute: expired sessions and leases.
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
        }
    });
}
