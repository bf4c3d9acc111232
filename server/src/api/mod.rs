//! The JSON API: one router that the browser UI, the CLI and users' scripts all use.
//! Handlers stay thin: they check who may do what and call the domain and store layers.
mod auth;
mod export;
pub mod extract;
mod import;
mod items;
mod labeling;
mod projects;
pub mod users;

use axum::extract::DefaultBodyLimit;
use axum::response::IntoResponse;
use axum::routing::{delete, get, patch, post};
use axum::Router;

use crate::error::AppError;
use crate::state::AppState;

/// The OpenAPI 3.1 description of every route below.
pub const OPENAPI: &str = include_str!("openapi.json");

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/health", get(auth::health))
        .route("/openapi.json", get(openapi))
        .route("/auth/login", post(auth::login))
        .route("/auth/logout", post(auth::logout))
        .route("/me", get(auth::me))
        .route("/users", get(users::list_users).post(users::create_user))
        .route("/tokens", get(users::list_tokens).post(users::create_token))
        .route("/tokens/{id}", delete(users::delete_token))
        .route("/projects", get(projects::list_projects).post(projects::create_project))
        .route("/projects/{pid}", get(projects::get_project).patch(projects::update_project))
        .route("/projects/{pid}/members", get(projects::list_members).post(projects::add_member))
        .route("/projects/{pid}/members/{uid}", delete(projects::remove_member))
        .route(
            "/projects/{pid}/import",
            // The body is streamed to disk with its own limit.
            post(import::import_file).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/projects/{pid}/images",
            post(import::upload_images).layer(DefaultBodyLimit::max(1024 * 1024 * 1024)),
        )
        .route("/projects/{pid}/next", post(labeling::next_item))
        .route("/projects/{pid}/annotations", post(labeling::submit))
        .route("/projects/{pid}/skip", post(labeling::skip))
        .route("/projects/{pid}/previous", get(labeling::previous))
        .route("/projects/{pid}/progress", get(labeling::progress))
        .route("/projects/{pid}/export", get(export::export))
        .route("/items/{id}/image", get(items::image))
        .route("/items/{id}/thumbnail", get(items::thumbnail))
        .route("/users/{id}", patch(users::update_user))
        .route("/users/{id}/password", post(users::reset_password))
        .route("/me/password", post(auth::change_own_password))
        .fallback(|| async { AppError::not_found("no such API route (see /api/openapi.json)") })
}

async fn openapi() -> impl IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], OPENAPI)
}
