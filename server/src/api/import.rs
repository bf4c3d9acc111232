//! Uploads: a data file (JSONL, CSV, a Label Studio JSON export, or a zip with images), or
//! images one by one.
use app::api_types::{AnnotationImport, ImportReport, LabelStudioImportReport};
use axum::body::Body;
use axum::extract::{Multipart, State};
use axum::http::{header, HeaderMap};
use axum::Json;
use futures::StreamExt;
use serde::Deserialize;

use super::extract::{PathParam, QueryParams};
use crate::auth::{managed_project, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::import::spool::{self, SpoolFile};
use crate::import::{self, images::MAX_IMAGE_BYTES, ImportFormat, ImportJob};
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
        // One JSON document (not lines): what Label Studio exports, and what the API documents.
        "application/json" => Some(ImportFormat::LabelStudio),
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
) -> AppResult<Json<serde_json::Value>> {
    managed_project(&state.db, &caller, pid).await?;
    let format = match q.format.as_deref() {
        Some(f) => ImportFormat::parse(f).ok_or_else(|| {
            AppError::bad_request(format!("unknown format {f:?}: use jsonl, csv, zip or label-studio"))
        })?,
        None => format_from_content_type(&headers).ok_or_else(|| {
            AppError::bad_request("say which format this is: ?format=jsonl|csv|zip|label-studio (or a matching Content-Type)")
        })?,
    };
    spool::check_fits(&state.spool, content_length(&headers))?;
    let ctx = state.import_ctx();
    // Registered before the body is read: a second import of the project, or one too many on
    // the server, is refused before the client sends gigabytes.
    let mut job = ImportJob::start(&ctx, pid).await?;
    let spooled = match spool_body(&state, body).await {
        Ok(p) => p,
        Err(e) => return Err(import::abandon(job, e).await),
    };
    // A Label Studio export's annotations are checked before its items are imported (a bad
    // answer refuses the file, nothing saved) and written in the transaction that commits the
    // items (a database failure leaves neither).
    let outcome = match format {
        ImportFormat::LabelStudio => match import::label_studio::plan(&state.db, pid, spooled.to_path_buf()).await {
            Ok(a) => Some(job.with_annotations(a, caller.user.id)),
            Err(e) => return Err(import::abandon(job, e).await),
        },
        _ => None,
    };
    let report = import::import_file(&ctx, job, spooled, format).await?;
    crate::devsets::warm_pool_after_import(state.db.clone(), state.devset_pools.clone(), pid);
    match outcome {
        Some(cell) => {
            let o = cell.get().cloned().unwrap_or_default();
            let annotations =
                AnnotationImport { imported: o.inserted, not_attached: o.not_attached, accounts_created: o.users_created };
            Ok(Json(serde_json::to_value(LabelStudioImportReport { report, annotations }).map_err(anyhow::Error::from)?))
        }
        None => Ok(Json(serde_json::to_value(report).map_err(anyhow::Error::from)?)),
    }
}

pub(super) fn content_length(headers: &HeaderMap) -> Option<u64> {
    headers.get(header::CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// Streams the request body into a spool file (deleted when dropped).
pub(super) async fn spool_body(state: &AppState, body: Body) -> AppResult<tempfile::TempPath> {
    let mut file = SpoolFile::create(&state.spool, MAX_UPLOAD_BYTES, "the upload").await?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = spool::next_or_timeout(&state.spool, stream.next()).await? {
        let chunk = chunk.map_err(|e| AppError::bad_request(format!("the upload broke off: {e}")))?;
        file.write(&chunk).await?;
    }
    file.finish().await
}

/// `multipart/form-data` with one or more `file` parts; each image becomes an item. Each part
/// is spooled to a file of its own, never held in memory.
pub async fn upload_images(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    headers: HeaderMap,
    mut multipart: Multipart,
) -> AppResult<Json<ImportReport>> {
    managed_project(&state.db, &caller, pid).await?;
    spool::check_fits(&state.spool, content_length(&headers))?;
    let ctx = state.import_ctx();
    let job = ImportJob::start(&ctx, pid).await?;
    let files = match spool_images(&state, &mut multipart).await {
        Ok(files) => files,
        Err(e) => return Err(import::abandon(job, e).await),
    };
    Ok(Json(import::import_images(&ctx, job, files).await?))
}

/// Spools each `file` part to a file of its own.
async fn spool_images(state: &AppState, multipart: &mut Multipart) -> AppResult<Vec<(String, tempfile::TempPath)>> {
    let mut files = Vec::new();
    while let Some(mut field) = spool::next_or_timeout(&state.spool, multipart.next_field())
        .await?
        .map_err(|e| AppError::bad_request(format!("bad multipart body: {e}")))?
    {
        if field.name() != Some("file") {
            continue;
        }
        if files.len() == MAX_IMAGES_PER_UPLOAD {
            return Err(AppError::PayloadTooLarge(format!(
                "at most {MAX_IMAGES_PER_UPLOAD} images per upload; use a zip for more"
            )));
        }
        let name = field.file_name().map(str::to_string).unwrap_or_else(|| format!("image-{}", files.len() + 1));
        let mut file = SpoolFile::create(&state.spool, MAX_IMAGE_BYTES, &name).await?;
        while let Some(chunk) = spool::next_or_timeout(&state.spool, field.chunk())
            .await?
            .map_err(|e| AppError::bad_request(format!("the upload broke off: {e}")))?
        {
            file.write(&chunk).await?;
        }
        files.push((name, file.finish().await?));
    }
    if files.is_empty() {
        return Err(AppError::bad_request("send one or more images as multipart parts named `file`"));
    }
    Ok(files)
}
