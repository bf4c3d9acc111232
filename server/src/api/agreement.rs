//! The agreement dashboard, its slices and drill-down, and a project's background jobs.
//! Leads and admins of the project only: labelers get 403 (they never see others' labels).
use app::api_types::{AgreementDashboard, AgreementSlices, DisagreementList, JobInfo};
use axum::extract::State;
use axum::Json;
use serde::Deserialize;

use super::extract::{PathParam, QueryParams};
use crate::agreement::{self, drill::Filter};
use crate::auth::{managed_project, CurrentUser};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store;

/// `GET /api/projects/{pid}/jobs`: the project's 50 most recent jobs with their progress.
pub async fn list_jobs(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
) -> AppResult<Json<Vec<JobInfo>>> {
    managed_project(&state.db, &caller, pid).await?;
    let jobs = store::jobs::recent(&state.db, pid, 50).await?;
    Ok(Json(jobs.into_iter().map(JobInfo::from).collect()))
}

#[derive(Deserialize)]
pub struct DashboardQuery {
    period: Option<String>,
}

/// `GET /api/projects/{pid}/agreement?period=day|week`: the stored dashboard.
pub async fn dashboard(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    QueryParams(q): QueryParams<DashboardQuery>,
) -> AppResult<Json<AgreementDashboard>> {
    managed_project(&state.db, &caller, pid).await?;
    let week = match q.period.as_deref() {
        None | Some("day") => false,
        Some("week") => true,
        Some(other) => return Err(AppError::bad_request(format!("unknown period {other:?}: use day or week"))),
    };
    Ok(Json(agreement::dashboard(&state.db, pid, week).await?))
}

#[derive(Deserialize)]
pub struct SlicesQuery {
    attr: Option<String>,
}

/// `GET /api/projects/{pid}/agreement/slices?attr=NAME`: alpha per value of a meta attribute.
pub async fn slices(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    QueryParams(q): QueryParams<SlicesQuery>,
) -> AppResult<Json<AgreementSlices>> {
    managed_project(&state.db, &caller, pid).await?;
    let attr = q.attr.filter(|a| !a.is_empty()).ok_or_else(|| AppError::bad_request("give attr=NAME, a meta attribute"))?;
    Ok(Json(agreement::slices(&state.db, pid, &attr).await?))
}

#[derive(Deserialize)]
pub struct ItemsQuery {
    pair: Option<String>,
    labels: Option<String>,
    label: Option<String>,
    slice: Option<String>,
    limit: Option<i64>,
}

/// `GET /api/projects/{pid}/agreement/items?pair=U1,U2 | labels=A,B | label=A | slice=ATTR:VALUE`:
/// the disagreeing items behind a dashboard number.
pub async fn items(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    QueryParams(q): QueryParams<ItemsQuery>,
) -> AppResult<Json<DisagreementList>> {
    managed_project(&state.db, &caller, pid).await?;
    let filter = Filter::parse(q.pair.as_deref(), q.labels.as_deref(), q.label.as_deref(), q.slice.as_deref())
        .map_err(AppError::bad_request)?;
    let limit = match q.limit {
        None => 100,
        Some(n @ 1..=500) => n as usize,
        Some(n) => return Err(AppError::bad_request(format!("limit must be between 1 and 500, not {n}"))),
    };
    Ok(Json(agreement::disagreements(&state.db, pid, filter, limit).await?))
}
