//! The whole HTTP application: the JSON API under /api, the Leptos pages, static files.
//!
//! Every response carries the security headers set here: a Content-Security-Policy (with a
//! fresh nonce on each rendered page), `nosniff`, `DENY` framing and a same-origin referrer.
//! Every request except the streamed uploads gets a deadline (`request_timeout`).
//! Every request is counted and timed per route pattern for `/metrics` (`crate::metrics`).
use std::time::Duration;

use app::{shell, App};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, HeaderValue};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use leptos::prelude::use_context;
use leptos_axum::{generate_route_list, LeptosRoutes};
use tower_http::set_header::SetResponseHeaderLayer;
use tower_sessions::cookie::SameSite;
use tower_sessions::{Expiry, SessionManagerLayer};

use crate::auth::session_store::SqlSessionStore;
use crate::error::AppError;
use crate::state::AppState;

pub const SESSION_COOKIE: &str = "mirrorset_session";

/// How the HTTP layer behaves; set by `mirrorset serve`'s flags.
#[derive(Clone, Copy, Debug)]
pub struct WebConfig {
    /// Mark the session cookie `Secure` (the app is served over HTTPS).
    pub secure_cookies: bool,
    /// The most time a request may take to arrive and be answered (up to the response head).
    pub request_timeout: Duration,
}

impl Default for WebConfig {
    fn default() -> Self {
        WebConfig { secure_cookies: false, request_timeout: Duration::from_secs(30) }
    }
}

pub fn app_router(state: AppState, sessions: SqlSessionStore, config: WebConfig) -> Router {
    let session_layer = SessionManagerLayer::new(sessions)
        .with_name(SESSION_COOKIE)
        .with_http_only(true)
        .with_same_site(SameSite::Lax)
        .with_secure(config.secure_cookies)
        // Slides: `auth::CurrentUser` re-saves active sessions, which moves this expiry.
        .with_expiry(Expiry::OnInactivity(idle_duration(state.session_idle)));
    let routes = generate_route_list(App);
    let options = state.leptos_options.clone();
    let metrics = state.metrics.clone();
    Router::new()
        .nest("/api", crate::api::router())
        // /health, /ready, /metrics: at the root, where load balancers and Prometheus look.
        .merge(crate::ops::router())
        .leptos_routes_with_context(&state, routes, page_csp, move || shell(options.clone()))
        .fallback(leptos_axum::file_and_error_handler_with_context::<AppState, _>(page_csp, shell))
        .layer(session_layer)
        // Outside the session layer, so a session store that hangs is cut off too.
        .layer(axum::middleware::from_fn_with_state(config.request_timeout, request_timeout))
        // Pages set their own policy, with their nonce (`page_csp`); everything else gets it
        // without one.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_str(&content_security_policy(None)).expect("a valid header value"),
        ))
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
        // A static file sent gzipped (its precompressed copy, `scripts/build-site.sh --release`)
        // is one of two answers for its URL: a cache must not hand it to a client that did not
        // ask for gzip.
        .layer(SetResponseHeaderLayer::if_not_present(header::VARY, |res: &Response| {
            res.headers().contains_key(header::CONTENT_ENCODING).then(|| HeaderValue::from_static("accept-encoding"))
        }))
        // Outermost, so a request cut off by the timeout is counted (as a 408) too. Route
        // layers run after routing, so it sees the route pattern (`MatchedPath`).
        .layer(axum::middleware::from_fn_with_state(metrics, crate::metrics::track))
        .with_state(state)
}

/// The Content-Security-Policy. Scripts come only from the app itself: the wasm bundle's
/// JS glue under /pkg, and the one inline bootstrap `<script>` Leptos puts in each page (plus
/// the inline chunks it streams), which carry the page's `nonce`. `'wasm-unsafe-eval'` lets
/// the page compile the wasm module, and nothing else: no `eval`, no inline handlers.
/// Styles come only from /pkg/mirrorset.css: the UI sets no `style` attribute in the HTML it
/// renders (an API test checks), and the styles it sets later go through the CSSOM, which a
/// policy does not restrict. Images: the app's own (item images, thumbnails), plus `data:`
/// and `blob:` URLs, which never leave the browser. Frames, `<base>` and form targets are
/// locked down, so the UI cannot be framed or made to post elsewhere.
pub fn content_security_policy(nonce: Option<&str>) -> String {
    let script_src = match nonce {
        Some(n) => format!("script-src 'self' 'nonce-{n}' 'wasm-unsafe-eval'"),
        None => "script-src 'self' 'wasm-unsafe-eval'".to_string(),
    };
    format!(
        "default-src 'self'; {script_src}; style-src 'self'; img-src 'self' data: blob:; \
         connect-src 'self'; object-src 'none'; frame-ancestors 'none'; base-uri 'self'; \
         form-action 'self'"
    )
}

/// Runs in Leptos's context of each rendered page (after leptos_axum made the page's nonce):
/// the page's response gets the policy that admits its own inline scripts.
fn page_csp() {
    let (Some(nonce), Some(response)) =
        (leptos::nonce::use_nonce(), use_context::<leptos_axum::ResponseOptions>())
    else {
        return;
    };
    if let Ok(value) = HeaderValue::from_str(&content_security_policy(Some(&nonce))) {
        response.insert_header(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// Gives each request `limit` to arrive and be answered (up to the response head; a streamed
/// body may take longer), so a client that sends its body slowly, or a request stuck behind
/// something else, cannot hold a connection and a task for ever. The answer is a 408 in the
/// API's error shape. The upload routes stream bodies of any size and guard their reads with
/// their own idle timeout, so they are left out (`crate::api::STREAMING_ROUTES`).
///
/// A client that sends its request *headers* slowly is handled before this: the accept loop
/// (`crate::http`) closes a connection whose headers take longer than the header-read timeout.
async fn request_timeout(State(limit): State<Duration>, request: Request, next: Next) -> Response {
    let streaming = request
        .extensions()
        .get::<MatchedPath>()
        .is_some_and(|p| crate::api::STREAMING_ROUTES.contains(&p.as_str()));
    if streaming {
        return next.run(request).await;
    }
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => AppError::RequestTimeout(format!(
            "the request took longer than {} s to arrive and be answered; send it again",
            limit.as_secs_f64()
        ))
        .into_response(),
    }
}

/// `--public-url`: the address people use to reach the app. It must be an http(s) URL of an
/// origin (Mirrorset serves from the root of its origin, so a path is refused).
pub fn parse_public_url(s: &str) -> Result<reqwest::Url, String> {
    let url = reqwest::Url::parse(s.trim()).map_err(|e| format!("{s:?} is not a URL ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!("{s:?} must start with https:// (or http://)"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(format!("{s:?} has no host name"));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "{s:?} has a path; Mirrorset is served from the root of its origin, like https://labels.example.org"
        ));
    }
    Ok(url)
}

fn idle_duration(idle: Duration) -> tower_sessions::cookie::time::Duration {
    tower_sessions::cookie::time::Duration::milliseconds(idle.as_millis().min(i64::MAX as u128) as i64)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_admits_only_the_pages_own_scripts() {
        let p = content_security_policy(Some("abc123"));
        let script = p.split("; ").find(|d| d.starts_with("script-src ")).unwrap();
        assert_eq!(script, "script-src 'self' 'nonce-abc123' 'wasm-unsafe-eval'");
        for directive in [
            "default-src 'self'",
            "style-src 'self'",
            "img-src 'self' data: blob:",
            "object-src 'none'",
            "frame-ancestors 'none'",
            "base-uri 'self'",
            "form-action 'self'",
        ] {
            assert!(p.split("; ").any(|d| d == directive), "{directive} missing from {p}");
        }
        assert!(!p.contains("unsafe-inline") && !p.contains("'unsafe-eval'"), "{p}");
        let plain = content_security_policy(None);
        assert!(plain.contains("script-src 'self' 'wasm-unsafe-eval';") && !plain.contains("nonce"), "{plain}");
    }

    #[test]
    fn public_url_is_an_http_origin() {
        assert_eq!(parse_public_url("https://labels.example.org").unwrap().scheme(), "https");
        assert_eq!(parse_public_url("https://labels.example.org/").unwrap().host_str(), Some("labels.example.org"));
        assert_eq!(parse_public_url("http://127.0.0.1:3000").unwrap().scheme(), "http");
        for bad in ["labels.example.org", "ftp://x.org", "https://x.org/mirrorset", "https://x.org/?a=1", "https://", ""] {
            assert!(parse_public_url(bad).is_err(), "{bad:?} accepted");
        }
    }
}
