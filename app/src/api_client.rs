//! Typed wrappers around the public JSON API (`/api`, see `api_types.rs`).
//!
//! Everything here runs in the browser only: pages call these from effects and event
//! handlers, never while rendering on the server. State-changing requests carry the CSRF token
//! from `GET /api/me` and a JSON content type. A 401 from any call (except signing in) sends
//! the browser to `/login?next=<current path>`.
use std::cell::RefCell;

use serde::{de::DeserializeOwned, Serialize};
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;

use crate::api_types::*;

/// An API failure, as a person should see it.
#[derive(Clone, Debug, PartialEq)]
pub struct ApiError {
    /// HTTP status; 0 when the request never got an answer (network down, server gone).
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: serde_json::Value,
}

impl ApiError {
    pub fn network(message: impl Into<String>) -> Self {
        ApiError {
            status: 0,
            code: "network".into(),
            message: message.into(),
            details: serde_json::Value::Null,
        }
    }

    /// Worth sending again unchanged: no answer, or the server had trouble.
    pub fn is_retryable(&self) -> bool {
        self.status == 0 || self.status == 502 || self.status == 503 || self.status == 504
    }

    fn from_response(status: u16, body: &str) -> Self {
        match serde_json::from_str::<ErrorBody>(body) {
            Ok(b) => ApiError {
                status,
                code: b.error.code,
                message: b.error.message,
                details: b.error.details,
            },
            Err(_) => ApiError {
                status,
                code: "http".into(),
                message: format!("The server answered {status} without an explanation."),
                details: serde_json::Value::Null,
            },
        }
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

pub type ApiResult<T> = Result<T, ApiError>;

thread_local! {
    static CSRF: RefCell<String> = const { RefCell::new(String::new()) };
}

/// Remembers the CSRF token of the signed-in session (from `Me`).
pub fn set_csrf_token(token: &str) {
    CSRF.with(|c| *c.borrow_mut() = token.to_string());
}

pub fn csrf_token() -> String {
    CSRF.with(|c| c.borrow().clone())
}

/// Where the browser is now (path + query), for `?next=`.
pub fn current_path() -> String {
    let loc = leptos::prelude::window().location();
    format!(
        "{}{}",
        loc.pathname().unwrap_or_else(|_| "/".into()),
        loc.search().unwrap_or_default()
    )
}

/// The sign-in page, coming back to `next` afterwards.
pub fn login_url(next: &str) -> String {
    if next.is_empty() || next == "/" || next.starts_with("/login") {
        "/login".to_string()
    } else {
        format!("/login?next={}", encode(next))
    }
}

pub fn encode(s: &str) -> String {
    String::from(js_sys::encode_uri_component(s))
}

/// Leaves for the sign-in page (a full page load, so no stale state survives).
pub fn redirect_to_login() {
    let here = current_path();
    if here.starts_with("/login") {
        return;
    }
    let _ = leptos::prelude::window()
        .location()
        .set_href(&login_url(&here));
}

fn js_err(e: JsValue) -> ApiError {
    let msg = e
        .dyn_ref::<js_sys::Error>()
        .map(|e| String::from(e.message()))
        .or_else(|| e.as_string())
        .unwrap_or_else(|| "the request failed".into());
    ApiError::network(format!("Could not reach the server ({msg})."))
}

/// Makes sure the CSRF token is known before a state-changing request (a page may send one
/// before the app's own `GET /api/me` has answered).
pub async fn ensure_csrf() {
    if csrf_token().is_empty() {
        // Boxed: `me` goes through `raw` too (as a GET, so this never recurses at run time).
        let fut: std::pin::Pin<Box<dyn std::future::Future<Output = ApiResult<Option<Me>>>>> = Box::pin(me());
        let _ = fut.await;
    }
}

/// One request; returns the status and the body text. `body` is JSON text.
async fn raw(method: &str, path: &str, body: Option<String>) -> ApiResult<(u16, String)> {
    if method != "GET" && method != "HEAD" && path != "/api/auth/login" {
        ensure_csrf().await;
    }
    let init = web_sys::RequestInit::new();
    init.set_method(method);
    init.set_credentials(web_sys::RequestCredentials::SameOrigin);
    let headers = web_sys::Headers::new().map_err(js_err)?;
    headers.set("accept", "application/json").map_err(js_err)?;
    if method != "GET" && method != "HEAD" {
        headers.set("x-csrf-token", &csrf_token()).map_err(js_err)?;
        headers.set("content-type", "application/json").map_err(js_err)?;
    }
    init.set_headers(&headers);
    if let Some(b) = body {
        init.set_body(&JsValue::from_str(&b));
    }
    let req = web_sys::Request::new_with_str_and_init(path, &init).map_err(js_err)?;
    let resp = JsFuture::from(leptos::prelude::window().fetch_with_request(&req))
        .await
        .map_err(js_err)?;
    let resp: web_sys::Response = resp.dyn_into().map_err(js_err)?;
    let status = resp.status();
    let text = JsFuture::from(resp.text().map_err(js_err)?)
        .await
        .map_err(js_err)?
        .as_string()
        .unwrap_or_default();
    Ok((status, text))
}

async fn call<T: DeserializeOwned>(
    method: &str,
    path: &str,
    body: Option<String>,
    redirect_on_401: bool,
) -> ApiResult<T> {
    let (status, text) = raw(method, path, body).await?;
    if (200..300).contains(&status) {
        let text = if text.trim().is_empty() { "null" } else { text.as_str() };
        serde_json::from_str(text).map_err(|e| ApiError {
            status,
            code: "bad_response".into(),
            message: format!("The server's answer could not be read: {e}"),
            details: serde_json::Value::Null,
        })
    } else {
        if status == 401 && redirect_on_401 {
            redirect_to_login();
        }
        Err(ApiError::from_response(status, &text))
    }
}

fn json<B: Serialize>(body: &B) -> Option<String> {
    Some(serde_json::to_string(body).expect("API bodies always serialize"))
}

pub async fn get<T: DeserializeOwned>(path: &str) -> ApiResult<T> {
    call("GET", path, None, true).await
}

pub async fn send<B: Serialize, T: DeserializeOwned>(method: &str, path: &str, body: &B) -> ApiResult<T> {
    call(method, path, json(body), true).await
}

pub async fn send_empty<T: DeserializeOwned>(method: &str, path: &str) -> ApiResult<T> {
    call(method, path, None, true).await
}

// ---- auth -------------------------------------------------------------------------------

/// Who is signed in; `Ok(None)` when nobody is (no redirect: the caller decides).
pub async fn me() -> ApiResult<Option<Me>> {
    match call::<Me>("GET", "/api/me", None, false).await {
        Ok(me) => {
            set_csrf_token(&me.csrf_token);
            Ok(Some(me))
        }
        Err(e) if e.status == 401 => Ok(None),
        Err(e) => Err(e),
    }
}

/// Signs in; a wrong password is an `Err` with the server's message (no redirect).
pub async fn login(username: &str, password: &str) -> ApiResult<Me> {
    let body = LoginRequest {
        username: username.to_string(),
        password: password.to_string(),
    };
    let me: Me = call("POST", "/api/auth/login", json(&body), false).await?;
    set_csrf_token(&me.csrf_token);
    Ok(me)
}

pub async fn logout() -> ApiResult<()> {
    let r = call::<()>("POST", "/api/auth/logout", None, false).await;
    set_csrf_token("");
    match r {
        Err(e) if e.status == 401 => Ok(()),
        other => other,
    }
}

// ---- users and tokens ---------------------------------------------------------------------

pub async fn users() -> ApiResult<Vec<User>> {
    get("/api/users").await
}

pub async fn create_user(body: &NewUser) -> ApiResult<User> {
    send("POST", "/api/users", body).await
}

pub async fn update_user(id: i64, body: &UserUpdate) -> ApiResult<User> {
    send("PATCH", &format!("/api/users/{id}"), body).await
}

pub async fn reset_password(id: i64, password: &str) -> ApiResult<()> {
    send("POST", &format!("/api/users/{id}/password"), &PasswordReset { password: password.to_string() }).await
}

/// Changes the caller's own password; a wrong current password is a 403 (no redirect).
pub async fn change_password(current_password: &str, new_password: &str) -> ApiResult<()> {
    let body = PasswordChange {
        current_password: current_password.to_string(),
        new_password: new_password.to_string(),
    };
    send("POST", "/api/me/password", &body).await
}

pub async fn tokens() -> ApiResult<Vec<ApiToken>> {
    get("/api/tokens").await
}

/// A token that stops working after `expires_in_days` days (None: never).
pub async fn create_token(name: &str, expires_in_days: Option<i64>) -> ApiResult<CreatedToken> {
    send("POST", "/api/tokens", &NewToken { name: name.to_string(), expires_in_days }).await
}

pub async fn revoke_token(id: i64) -> ApiResult<()> {
    send_empty("DELETE", &format!("/api/tokens/{id}")).await
}

// ---- projects -------------------------------------------------------------------------------

pub async fn projects() -> ApiResult<Vec<ProjectSummary>> {
    get("/api/projects").await
}

pub async fn create_project(body: &NewProject) -> ApiResult<Project> {
    send("POST", "/api/projects", body).await
}

pub async fn project(pid: i64) -> ApiResult<Project> {
    get(&format!("/api/projects/{pid}")).await
}

pub async fn update_project(pid: i64, body: &ProjectUpdate) -> ApiResult<Project> {
    send("PATCH", &format!("/api/projects/{pid}"), body).await
}

pub async fn members(pid: i64) -> ApiResult<Vec<Member>> {
    get(&format!("/api/projects/{pid}/members")).await
}

pub async fn add_member(pid: i64, username: &str) -> ApiResult<Vec<Member>> {
    let body = AddMember {
        user_id: None,
        username: Some(username.to_string()),
    };
    send("POST", &format!("/api/projects/{pid}/members"), &body).await
}

pub async fn remove_member(pid: i64, uid: i64) -> ApiResult<()> {
    send_empty("DELETE", &format!("/api/projects/{pid}/members/{uid}")).await
}

pub fn export_url(pid: i64, format: &str, complete_only: bool) -> String {
    let mut url = format!("/api/projects/{pid}/export?format={format}");
    if complete_only {
        url.push_str("&complete_only=true");
    }
    url
}

/// The project's audit log (JSONL), for a download link.
pub fn audit_url(pid: i64) -> String {
    format!("/api/projects/{pid}/audit")
}

// ---- the labeling loop ----------------------------------------------------------------------

pub async fn next_item(pid: i64, since: i64, exclude: Vec<i64>) -> ApiResult<NextItem> {
    send(
        "POST",
        &format!("/api/projects/{pid}/next?since={since}"),
        &NextRequest { exclude },
    )
    .await
}

pub async fn submit(pid: i64, body: &SubmitAnnotation) -> ApiResult<Annotation> {
    send("POST", &format!("/api/projects/{pid}/annotations"), body).await
}

pub async fn skip(pid: i64, item_id: i64) -> ApiResult<()> {
    send("POST", &format!("/api/projects/{pid}/skip"), &SkipItem { item_id }).await
}

/// The caller's submission before `before` (or the latest); `Ok(None)` when there is none.
pub async fn previous(pid: i64, before: Option<i64>) -> ApiResult<Option<PreviousSubmission>> {
    let path = match before {
        Some(b) => format!("/api/projects/{pid}/previous?before={b}"),
        None => format!("/api/projects/{pid}/previous"),
    };
    match get(&path).await {
        Ok(p) => Ok(Some(p)),
        Err(e) if e.status == 404 => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn progress(pid: i64, since: i64) -> ApiResult<Progress> {
    get(&format!("/api/projects/{pid}/progress?since={since}")).await
}

// ---- review (leads and admins) ----------------------------------------------------------------

/// `query`: the filters as a query string without `?` (`pair=a,b&slice=...`), or "".
pub async fn review_queues(pid: i64, query: &str) -> ApiResult<ReviewQueues> {
    get(&format!("/api/projects/{pid}/review/queues?{query}")).await
}

pub async fn review_queue_page(pid: i64, queue: &str, query: &str, after: i64, limit: i64) -> ApiResult<ReviewQueuePage> {
    get(&format!("/api/projects/{pid}/review/queues/{}?{query}&after={after}&limit={limit}", encode(queue))).await
}

pub async fn review_item(pid: i64, item_id: i64) -> ApiResult<ReviewItem> {
    get(&format!("/api/projects/{pid}/review/items/{item_id}")).await
}

pub async fn review_decide(pid: i64, item_id: i64, body: &ReviewDecisionRequest) -> ApiResult<ReviewDecision> {
    send("POST", &format!("/api/projects/{pid}/review/items/{item_id}/decision"), body).await
}

/// Marks (labels) or unmarks (None) an item's gold answer.
pub async fn set_gold(pid: i64, item_id: i64, labels: Option<Vec<String>>) -> ApiResult<GoldAnswer> {
    send("PUT", &format!("/api/projects/{pid}/items/{item_id}/gold"), &GoldUpdate { labels }).await
}

// ---- agreement dashboard ----------------------------------------------------------------

pub async fn agreement(pid: i64, week: bool) -> ApiResult<AgreementDashboard> {
    get(&format!("/api/projects/{pid}/agreement?period={}", if week { "week" } else { "day" })).await
}

pub async fn agreement_slices(pid: i64, attr: &str) -> ApiResult<AgreementSlices> {
    get(&format!("/api/projects/{pid}/agreement/slices?attr={}", encode(attr))).await
}
