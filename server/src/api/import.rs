//! Uploads: a data file (JSONL, CSV, or a zip with images), or images one by one.
use app::api_types::ImportReport;
use axum::body::Body;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

use super::extract::{PathParam, QueryParams};
use crate::auth::{managed_project, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::import::{self, images::MAX_IMAGE_BYTES, ImportFormat};
use crate::state::AppState;

/// The largest upload accepted (spooled to disk, never held in memory).
pub const MAX_UPLOAD_BYTES: u64 = 16 * 1024 * 1024 * 1024;
pub const MAX_IMAGES_PER_UPLOAD: usize = 1000;

#[derive(Deserialize)]
pub struct ImportQuery {
    pub format: Option<String>,
}

fn format_from_content_type(headers: &HeaderMap) -> Option<ImportFormat> {
    let ct = headers.get(header::CONTENT_TYPE)?.to_str().ok()?;
    let ct = ct.split(';').next()?.trim();
    match ct {
        "application/zip" | "application/x-zip-compressed" => Some(ImportFormat::Zip),
        "text/csv" => Some(ImportFormat::Csv),
        "application/x-ndjson" | "application/jsonl" | "application/jsonlines" => Some(ImportFormat::Jsonl),
        _ => None,
    }
}

pub async fn import_file(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    QueryParams(q): QueryParams<ImportQuery>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<Json<ImportReport>> {
    managed_project(&state.db, &caller, pid).await?;
    let format = match q.format.as_deref() {
        Some(f) => ImportFormat::parse(f).ok_or_else(|| {
            AppError::bad_request(format!("unknown format {f:?}: use jsonl, csv or zip"))
        })?,
        None => format_from_content_type(&headers).ok_or_else(|| {
            AppError::bad_request("say which format this is: ?format=jsonl|csv|zip (or a matching Content-Type)")
        })?,
    };
    let spool = spool_body(&state, body).await?;
    let report = import::import_file(&state.db, &state.data_dir, pid, spool.to_path_buf(), format).await;
    drop(spool); // deletes the file
    Ok(Json(report?))
}

/// Streams the request body into a temporary file under the data directory.
async fn spool_body(state: &AppState, body: Body) -> AppResult<tempfile::TempPath> {
    let path = tempfile::NamedTempFile::new_in(state.data_dir.join("spool"))
        .map_err(|e| AppError::Internal(e.into()))?
        .into_temp_path();
    let mut file = tokio::fs::File::create(&path).await.map_err(|e| AppError::Internal(e.into()))?;
    let mut stream = body.into_data_stream();
    let mut written: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| AppError::bad_request(format!("the upload broke off: {e}")))?;
        written += chunk.len() as u64;
        if written > MAX_UPLOAD_BYTES {
            return Err(AppError::PayloadTooLarge(format!(
                "uploads are limited to {} GiB",
                MAX_UPLOAD_BYTES >> 30
            )));
        }
        file.write_all(&chunk).await.map_err(|e| AppError::Internal(e.into()))?;
    }
    file.flush().await.map_err(|e| AppError::Internal(e.into()))?;
    Ok(path)
}

/// `multipart/form-data` with one or more `file` parts; each image becomes an item.
pub async fn upload_images(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    mut multipart: Multipart,
) -> AppResult<Json<ImportReport>> {
    managed_project(&state.db, &caller, pid).await?;
    let mut files = Vec::new();
    while let Some(mut field) = multipart
        .next_field()
        .await
        .map_err(|e| AppError::bad_request(format!("bad multipart body: {e}")))?
    {
        if field.name() != Some("file") {
            continue;
        }
        let name = field.file_name().map(str::to_string).unwrap_or_else(|| format!("image-{}", files.len() + 1));
        let mut bytes = Vec::new();
        while let Some(chunk) = field
            .chunk()
            .await
            .map_err(|e| AppError::bad_request(format!("the upload broke off: {e}")))?
        {
            bytes.extend_from_slice(&chunk);
            if bytes.len() as u64 > MAX_IMAGE_BYTES {
                return Err(AppError::PayloadTooLarge(format!(
                    "{name} is larger than {} MiB",
                    MAX_IMAGE_BYTES >> 20
                )));
            }
        }
        files.push((name, bytes));
        if files.len() > MAX_IMAGES_PER_UPLOAD {
            return Err(AppError::PayloadTooLarge(format!(
                "at most {MAX_IMAGES_PER_UPLOAD} images per upload; use a zip for more"
            )));
        }
    }
    if files.is_empty() {
        return Err(AppError::bad_request("send one or more images as multipart parts named `file`"));
    }
    Ok(Json(import::import_images(&state.db, &state.data_dir, pid, files).await?))
}
