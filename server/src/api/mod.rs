//! The JSON API: one router that the browser UI, the CLI and users' scripts all use.
//! Handlers stay thin: they check who may do what and call the domain and store layers.
mod agreement;
mod audit;
mod devsets;
mod auth;
mod export;
pub mod extract;
mod import;
mod items;
mod labeling;
mod model;
mod prelabel_rules;
mod prelabels;
mod projects;
mod releases;
mod review;
pub mod users;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::Method;
use axum::response::IntoResponse;
use axum::routing::{self, MethodRouter};
use axum::Router;

use crate::error::AppError;
use crate::state::AppState;

/// The OpenAPI 3.1 description of every route below.
pub const OPENAPI: &str = include_str!("openapi.json");

/// The route table: one line per (method, path), paths relative to `/api`. `router()` serves
/// exactly these and `routes()` lists them, so the API test `openapi_document_lists_every_route`
/// compares openapi.json with what the server really answers, not with a list of its own.
fn table() -> Routes {
    Routes::default()
        .get("/health", auth::health)
        .get("/openapi.json", openapi)
        .post("/auth/login", auth::login)
        .post("/auth/logout", auth::logout)
        .get("/me", auth::me)
        .get("/users", users::list_users)
        .post("/users", users::create_user)
        .patch("/users/{id}", users::update_user)
        .post("/users/{id}/password", users::reset_password)
        .post("/me/password", auth::change_own_password)
        .get("/tokens", users::list_tokens)
        .post("/tokens", users::create_token)
        .delete("/tokens/{id}", users::delete_token)
        .get("/projects", projects::list_projects)
        .post("/projects", projects::create_project)
        .get("/projects/{pid}", projects::get_project)
        .patch("/projects/{pid}", projects::update_project)
        .get("/projects/{pid}/members", projects::list_members)
        .post("/projects/{pid}/members", projects::add_member)
        .delete("/projects/{pid}/members/{uid}", projects::remove_member)
        // The body is streamed to disk with its own limit.
        .post_with("/projects/{pid}/import", import::import_file, |r| r.layer(DefaultBodyLimit::disable()))
        .post_with("/projects/{pid}/images", import::upload_images, |r| {
            r.layer(DefaultBodyLimit::max(1024 * 1024 * 1024))
        })
        .post("/projects/{pid}/next", labeling::next_item)
        .post("/projects/{pid}/annotations", labeling::submit)
        .post("/projects/{pid}/skip", labeling::skip)
        .get("/projects/{pid}/previous", labeling::previous)
        .get("/projects/{pid}/progress", labeling::progress)
        .get("/projects/{pid}/export", export::export)
        .get("/items/{id}/image", items::image)
        .get("/items/{id}/thumbnail", items::thumbnail)
        .get("/projects/{pid}/items/{id}/history", audit::item_history)
        .get("/projects/{pid}/audit", audit::project_log)
        .get("/audit", audit::accounts_log)
        .get("/projects/{pid}/review/queues", review::list_queues)
        .get("/projects/{pid}/review/queues/{name}", review::queue_page)
        .post("/projects/{pid}/review/queues/{name}/entries", review::add_entries)
        .get("/projects/{pid}/review/items/{item_id}", review::review_item)
        .post("/projects/{pid}/review/items/{item_id}/decision", review::decide)
        .put("/projects/{pid}/items/{id}/gold", review::set_gold)
        // Production-matched dev sets (issue 8). The profile upload streams to disk.
        .get("/projects/{pid}/profiles", devsets::list_profiles)
        .post_with("/projects/{pid}/profiles", devsets::upload_profile, |r| r.layer(DefaultBodyLimit::disable()))
        .get("/projects/{pid}/profiles/{id}", devsets::get_profile)
        .get("/projects/{pid}/devsets", devsets::list_devsets)
        .post("/projects/{pid}/devsets", devsets::create_devset)
        .get("/projects/{pid}/devsets/{id}", devsets::get_devset)
        .get("/projects/{pid}/devsets/{id}/plan", devsets::get_plan)
        .post("/projects/{pid}/devsets/{id}/sample", devsets::sample)
        .get("/projects/{pid}/devsets/{id}/progress", devsets::progress)
        .get("/projects/{pid}/devsets/{id}/report", devsets::get_report)
        .get("/projects/{pid}/jobs", agreement::list_jobs)
        .get("/projects/{pid}/agreement", agreement::dashboard)
        .get("/projects/{pid}/agreement/slices", agreement::slices)
        .get("/projects/{pid}/agreement/items", agreement::items)
        // Dev-set releases (issue 9).
        .get("/projects/{pid}/releases", releases::list)
        .post("/projects/{pid}/devsets/{id}/releases", releases::freeze)
        .get("/projects/{pid}/releases/{id}", releases::get)
        .get("/projects/{pid}/releases/{id}/export", releases::export)
        .get("/projects/{pid}/releases/{id}/diff/{other}", releases::diff)
        .get("/projects/{pid}/release-freezes/{job}", releases::freeze_status)
        // Pre-labels (issue 10). The predictions upload streams to disk.
        .post_with("/projects/{pid}/prelabels/import", prelabels::import_predictions, |r| {
            r.layer(DefaultBodyLimit::disable())
        })
        .get("/projects/{pid}/prelabels/sources", prelabels::list_sources)
        .get("/projects/{pid}/prelabels/settings", prelabels::get_settings)
        .put("/projects/{pid}/prelabels/settings", prelabels::put_settings)
        .post("/projects/{pid}/prelabels/audit", prelabels::draw_audit)
        // Auto-accept and the export's noise figures (issue 10).
        .put("/projects/{pid}/prelabels/auto-accept", prelabels::put_auto_accept)
        .get("/projects/{pid}/export/summary", export::export_summary)
        // Labeling rules and their label model (issue 10).
        .get("/projects/{pid}/prelabels/rules", prelabel_rules::list)
        .post("/projects/{pid}/prelabels/rules", prelabel_rules::create)
        .put("/projects/{pid}/prelabels/rules/{id}", prelabel_rules::update)
        .delete("/projects/{pid}/prelabels/rules/{id}", prelabel_rules::delete)
        .post("/projects/{pid}/prelabels/rules/preview", prelabel_rules::preview)
        .post("/projects/{pid}/prelabels/rules/apply", prelabel_rules::apply)
        .get("/projects/{pid}/prelabels/rules/apply", prelabel_rules::apply_status)
        // The built-in model (issue 10).
        .get("/projects/{pid}/model", model::get)
        .put("/projects/{pid}/model/settings", model::put_settings)
        .post("/projects/{pid}/model/train", model::train)
}

/// Routes whose bodies stream for as long as they need: the request timeout
/// (`crate::web::request_timeout`) leaves them alone. Uploads guard their reads with their own
/// idle timeout; the export's (and the audit logs') response head comes at once and its body
/// streams after it.
pub const STREAMING_ROUTES: &[&str] = &[
    "/api/projects/{pid}/import",
    "/api/projects/{pid}/images",
    "/api/projects/{pid}/export",
    "/api/projects/{pid}/audit",
    "/api/audit",
    "/api/projects/{pid}/profiles",
    "/api/projects/{pid}/prelabels/import",
];

pub fn router() -> Router<AppState> {
    table()
        .router
        .fallback(|| async { AppError::not_found("no such API route (see /api/openapi.json)") })
}

/// Every (method, path) the API serves, paths relative to `/api`, in table order.
pub fn routes() -> Vec<(Method, &'static str)> {
    table().list
}

/// Builds the router and records each (method, path) as it adds it, so the list cannot drift
/// from what is served. Several methods on one path are separate lines; axum merges them.
#[derive(Default)]
struct Routes {
    router: Router<AppState>,
    list: Vec<(Method, &'static str)>,
}

impl Routes {
    fn add(mut self, method: Method, path: &'static str, method_router: MethodRouter<AppState>) -> Self {
        self.router = self.router.route(path, method_router);
        self.list.push((method, path));
        self
    }
    fn get<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::GET, path, routing::get(handler))
    }
    fn post<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::POST, path, routing::post(handler))
    }
    fn put<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::PUT, path, routing::put(handler))
    }
    fn patch<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::PATCH, path, routing::patch(handler))
    }
    fn delete<H: Handler<T, AppState>, T: 'static>(self, path: &'static str, handler: H) -> Self {
        self.add(Method::DELETE, path, routing::delete(handler))
    }
    /// A POST route whose method router needs a layer (a body limit); the method is still
    /// stated once, by the name of this function.
    fn post_with<H: Handler<T, AppState>, T: 'static>(
        self,
        path: &'static str,
        handler: H,
        wrap: impl FnOnce(MethodRouter<AppState>) -> MethodRouter<AppState>,
    ) -> Self {
        self.add(Method::POST, path, wrap(routing::post(handler)))
    }
}

async fn openapi() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}
