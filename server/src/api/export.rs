//! Streamed exports.
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::extract::{PathParam, QueryParams};
use crate::auth::{managed_project, CurrentUser};
use crate::error::{AppError, AppResult};
use app::api_types::LabelKind;

use crate::export::{export_stream, ExportFormat, Formulas, LabelSchema};
use crate::state::AppState;

#[derive(Deserialize)]
pub struct ExportQuery {
    pub format: Option<String>,
    #[serde(default)]
    pub complete_only: bool,
    /// CSV only: `neutralise` (default) or `keep` (see `crate::export`).
    pub formulas: Option<String>,
}

pub async fn export(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    QueryParams(q): QueryParams<ExportQuery>,
) -> AppResult<Response> {
    let project = managed_project(&state.db, &caller, pid).await?.project;
    let format = match q.format.as_deref() {
        None => ExportFormat::Jsonl,
        Some(f) => ExportFormat::parse(f)
            .ok_or_else(|| AppError::bad_request(format!("unknown format {f:?}: use jsonl, csv or annotations")))?,
    };
    let formulas = match q.formulas.as_deref() {
        None => Formulas::default(),
        Some(f) => Formulas::parse(f).ok_or_else(|| {
            AppError::bad_request(format!("unknown formulas {f:?}: use neutralise (the default) or keep"))
        })?,
    };
    let schema = LabelSchema {
        multi: project.kind == LabelKind::Multi,
        labels: project.labels.into_iter().map(|l| l.name).collect(),
    };
    // An export of a million items formats tens of MiB on top of whatever the heap holds
    // free when it starts: after a busy spell of labeling, 40–80 MiB that glibc keeps in its
    // arenas (`heap`), which took the export over its 100 MiB (docs/bench.md, session 23).
    tokio::task::spawn_blocking(crate::heap::release_free_memory).await.map_err(anyhow::Error::from)?;
    let stream = export_stream(state.db.clone(), pid, format, formulas, schema, q.complete_only, state.shutdown.clone());
    let filename = format!(
        "project-{pid}{}.{}",
        if q.complete_only { "-complete" } else { "" },
        format.extension()
    );
    Ok((
        [
            (header::CONTENT_TYPE, format.content_type().to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{filename}\"")),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

/// The estimated noise of the training export: final labels by source per label, and the
/// audited precision of the auto-accepted part (`prelabels::auto_accept`).
pub async fn export_summary(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
) -> AppResult<axum::Json<app::api_types::ExportSummary>> {
    let project = managed_project(&state.db, &caller, pid).await?.project;
    let labels: Vec<String> = project.labels.into_iter().map(|l| l.name).collect();
    Ok(axum::Json(crate::export::summary(&state.db, pid, &labels).await?))
}
