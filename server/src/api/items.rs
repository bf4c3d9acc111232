//! Image bytes of items, for members of the item's project.
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};

use super::extract::PathParam;
use crate::auth::{visible_project, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::import::images::{content_type, original_path, thumbnail_path};
use crate::state::AppState;
use crate::store;

async fn image_response(state: &AppState, caller: &CurrentUser, item_id: i64, thumbnail: bool) -> AppResult<Response> {
    let item = store::items::get_item(&state.db, item_id).await?;
    visible_project(&state.db, caller, item.project_id).await?;
    let sha = item.image_sha256.ok_or_else(|| AppError::not_found(format!("item {item_id} is not an image")))?;
    let (path, ctype) = if thumbnail {
        (thumbnail_path(&state.data_dir, &sha), "image/jpeg")
    } else {
        let format = store::items::image_format(&state.db, &sha).await?.unwrap_or_default();
        (original_path(&state.data_dir, &sha), content_type(&format))
    };
    let file = tokio::fs::File::open(&path)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!("image file {} unreadable: {e}", path.display())))?;
    let body = Body::from_stream(tokio_util::io::ReaderStream::new(file));
    Ok((
        [
            (header::CONTENT_TYPE, ctype),
            // An item's image never changes; only members may fetch it.
            (header::CACHE_CONTROL, "private, max-age=31536000, immutable"),
        ],
        body,
    )
        .into_response())
}

pub async fn image(State(state): State<AppState>, caller: CurrentUser, PathParam(id): PathParam<i64>) -> AppResult<Response> {
    image_response(&state, &caller, id, false).await
}

pub async fn thumbnail(State(state): State<AppState>, caller: CurrentUser, PathParam(id): PathParam<i64>) -> AppResult<Response> {
    image_response(&state, &caller, id, true).await
}
