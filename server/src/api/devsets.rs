//! Production profiles and production-matched dev sets (issue 8). Leads and admins of the
//! project only (labelers get 403). The work is in `crate::devsets`; SQL in `store::devsets`.
use std::collections::BTreeMap;
use std::io::BufReader;

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::Json;
use app::api_types::{
    Devset, DevsetProgress as Progress, DevsetSample as SampleResult, NewDevset as NewDevsetBody, ProfileDetail, ProfileSummary,
    StratumProgress,
};
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{JsonBody, PathParam, QueryParams};
use crate::auth::{managed_project, CurrentUser};
use crate::devsets::plan::{build_plan, validate_draft, Draft, Plan, PlanError, Planned, PoolView};
use crate::devsets::profile::{self, FileFormat, ParsedProfile, ProfileAttribute, ProfileRefusal, UploadKind};
use crate::devsets::{load_pool, report, sample_members, LoadedPool, Report};
use crate::error::{AppError, AppResult};
use crate::state::AppState;
use crate::store::devsets::{self as store, DevsetRow, DevsetStoreError, NewDevset, NewProfile, ProfileRow};

impl From<DevsetStoreError> for AppError {
    fn from(e: DevsetStoreError) -> Self {
        match e {
            DevsetStoreError::Conflict(m) => AppError::conflict(m),
            DevsetStoreError::Database(e) => AppError::Database(e),
        }
    }
}

fn unprocessable(message: impl Into<String>, details: Value) -> AppError {
    AppError::Unprocessable { message: message.into(), details }
}

impl From<PlanError> for AppError {
    fn from(e: PlanError) -> Self {
        unprocessable(e.0, Value::Null)
    }
}

// ------------------------------------------------------------------ profiles

fn decode_profile(row: &ProfileRow) -> AppResult<(Vec<ProfileAttribute>, Vec<(Vec<String>, f64)>)> {
    let attributes = serde_json::from_str(&row.attributes).map_err(anyhow::Error::from)?;
    let cells = serde_json::from_str(&row.cells).map_err(anyhow::Error::from)?;
    Ok((attributes, cells))
}

fn profile_summary(row: &ProfileRow) -> AppResult<ProfileSummary> {
    let (attributes, cells) = decode_profile(row)?;
    Ok(ProfileSummary {
        id: row.id,
        name: row.name.clone(),
        date: row.profile_date.clone(),
        records: row.records,
        attributes,
        combinations: cells.len() as u64,
        created_at: row.created_at,
    })
}

#[derive(Deserialize)]
pub struct ProfileQuery {
    pub name: String,
    /// YYYY-MM-DD.
    pub date: String,
    /// records (default) or counts.
    pub kind: Option<UploadKind>,
    /// jsonl (default) or csv.
    pub format: Option<FileFormat>,
}

fn valid_date(d: &str) -> bool {
    let b = d.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
        && (1..=12).contains(&d[5..7].parse::<u32>().unwrap_or(0))
        && (1..=31).contains(&d[8..10].parse::<u32>().unwrap_or(0))
}

pub async fn upload_profile(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    QueryParams(q): QueryParams<ProfileQuery>,
    headers: HeaderMap,
    body: Body,
) -> AppResult<(StatusCode, Json<ProfileSummary>)> {
    managed_project(&state.db, &caller, pid).await?;
    let name = q.name.trim().to_string();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::bad_request("a profile needs a name of 1 to 200 characters"));
    }
    if !valid_date(&q.date) {
        return Err(AppError::bad_request(format!("date {:?} is not a date like 2026-12-01", q.date)));
    }
    // A declared size that cannot fit on the disk above the reserve is refused (507) before a
    // byte is spooled, as an item import is; a chunked body is checked while it spools.
    crate::import::spool::check_fits(&state.spool, super::import::content_length(&headers))?;
    let known = pool_of(&state, pid).await?.index.attribute_names();
    let spooled = super::import::spool_body(&state, body).await?;
    let (kind, format) = (q.kind.unwrap_or(UploadKind::Records), q.format.unwrap_or(FileFormat::Jsonl));
    // Parsing a million lines is CPU work: off the async workers.
    let parsed = tokio::task::spawn_blocking(move || -> std::io::Result<Result<ParsedProfile, ProfileRefusal>> {
        let open = || std::fs::File::open(&spooled).map(|f| BufReader::with_capacity(1 << 16, f));
        match kind {
            UploadKind::Records => profile::parse_records(open, format, &known),
            UploadKind::Counts => profile::parse_counts(open()?, format, &known),
        }
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(anyhow::Error::from)?;
    let parsed = parsed.map_err(|r| {
        unprocessable(r.message, json!({"bad_lines": r.bad_lines, "errors": r.lines}))
    })?;
    let row = store::insert_profile(
        &state.db,
        pid,
        &NewProfile {
            name: &name,
            date: &q.date,
            records: parsed.records,
            attributes: serde_json::to_string(&parsed.attributes).map_err(anyhow::Error::from)?,
            cells: serde_json::to_string(&parsed.cells).map_err(anyhow::Error::from)?,
        },
        caller.id(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(profile_summary(&row)?)))
}

pub async fn list_profiles(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
) -> AppResult<Json<Vec<ProfileSummary>>> {
    managed_project(&state.db, &caller, pid).await?;
    let rows = store::list_profiles(&state.db, pid).await?;
    Ok(Json(rows.iter().map(profile_summary).collect::<AppResult<_>>()?))
}

async fn find_profile(state: &AppState, pid: i64, id: i64) -> AppResult<ProfileRow> {
    store::get_profile(&state.db, pid, id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no production profile {id} in this project")))
}

pub async fn get_profile(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, id)): PathParam<(i64, i64)>,
) -> AppResult<Json<ProfileDetail>> {
    managed_project(&state.db, &caller, pid).await?;
    let row = find_profile(&state, pid, id).await?;
    let (_, cells) = decode_profile(&row)?;
    Ok(Json(ProfileDetail { summary: profile_summary(&row)?, cells }))
}

// ------------------------------------------------------------------ dev sets

fn devset_view(row: &DevsetRow, members: i64) -> AppResult<Devset> {
    Ok(Devset {
        id: row.id,
        name: row.name.clone(),
        profile_id: row.profile_id,
        seed: row.seed,
        overlap: row.overlap,
        priority: row.priority,
        draft: serde_json::from_str(&row.draft).map_err(anyhow::Error::from)?,
        sampled_at: row.sampled_at,
        members,
        created_at: row.created_at,
    })
}

/// The project's pool (its cached index and today's dev-set members).
async fn pool_of(state: &AppState, pid: i64) -> AppResult<LoadedPool> {
    load_pool(&state.db, &state.devset_pools, pid)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no project {pid}")))
}

/// The plan of `draft` against its profile and today's pool.
async fn plan_for(state: &AppState, pid: i64, profile_id: i64, draft: &Draft, this: Option<i64>) -> AppResult<Planned> {
    let profile = find_profile(state, pid, profile_id).await?;
    let (attributes, cells) = decode_profile(&profile)?;
    let pool = pool_of(state, pid).await?;
    validate_draft(draft, &attributes, &pool.index.attribute_names())?;
    let must_external = if draft.must_include.external_ids.is_empty() {
        Vec::new()
    } else {
        store::items_by_external_id(&state.db, pid, pool.max_item_id, &draft.must_include.external_ids)
            .await?
            .into_iter()
            .filter_map(|(e, id)| pool.index.ids.binary_search(&id).ok().map(|p| (e, p)))
            .collect()
    };
    let draft = draft.clone();
    let planned = tokio::task::spawn_blocking(move || {
        let view = PoolView { index: &pool.index, members: &pool.members, must_external: &must_external };
        build_plan(&draft, &attributes, &cells, &view, this)
    })
    .await
    .map_err(anyhow::Error::from)??;
    Ok(planned)
}

pub async fn create_devset(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    JsonBody(body): JsonBody<NewDevsetBody>,
) -> AppResult<(StatusCode, Json<Devset>)> {
    managed_project(&state.db, &caller, pid).await?;
    let name = body.name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::bad_request("a dev set needs a name of 1 to 200 characters"));
    }
    let overlap = body.overlap.unwrap_or(3);
    if !(1..=100).contains(&overlap) {
        return Err(AppError::bad_request("overlap must be between 1 and 100"));
    }
    // A draft that cannot be planned (size above the pool, floors above the size, unknown
    // attributes) is refused before anything is saved.
    plan_for(&state, pid, body.profile_id, &body.draft, None).await?;
    let row = store::insert_devset(
        &state.db,
        pid,
        &NewDevset {
            name,
            profile_id: body.profile_id,
            draft: serde_json::to_string(&body.draft).map_err(anyhow::Error::from)?,
            seed: body.seed as i64,
            overlap,
            priority: 100,
        },
        caller.id(),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(devset_view(&row, 0)?)))
}

pub async fn list_devsets(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
) -> AppResult<Json<Vec<Devset>>> {
    managed_project(&state.db, &caller, pid).await?;
    let rows = store::list_devsets(&state.db, pid).await?;
    Ok(Json(rows.iter().map(|(r, m)| devset_view(r, *m)).collect::<AppResult<_>>()?))
}

async fn find_devset(state: &AppState, pid: i64, id: i64) -> AppResult<DevsetRow> {
    store::get_devset(&state.db, pid, id).await?.ok_or_else(|| AppError::not_found(format!("no dev set {id} in this project")))
}

pub async fn get_devset(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, id)): PathParam<(i64, i64)>,
) -> AppResult<Json<Devset>> {
    managed_project(&state.db, &caller, pid).await?;
    let row = find_devset(&state, pid, id).await?;
    let members = store::member_ids(&state.db, id).await?.len() as i64;
    Ok(Json(devset_view(&row, members)?))
}

fn draft_of(row: &DevsetRow) -> AppResult<Draft> {
    Ok(serde_json::from_str(&row.draft).map_err(anyhow::Error::from)?)
}

pub async fn get_plan(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, id)): PathParam<(i64, i64)>,
) -> AppResult<Json<Plan>> {
    managed_project(&state.db, &caller, pid).await?;
    let row = find_devset(&state, pid, id).await?;
    Ok(Json(plan_for(&state, pid, row.profile_id, &draft_of(&row)?, Some(id)).await?.plan))
}

pub async fn sample(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, id)): PathParam<(i64, i64)>,
) -> AppResult<(StatusCode, Json<SampleResult>)> {
    managed_project(&state.db, &caller, pid).await?;
    let row = find_devset(&state, pid, id).await?;
    if row.sampled_at.is_some() {
        return Err(AppError::conflict(format!(
            "the dev set {:?} is already sampled; create a new draft for another sample",
            row.name
        )));
    }
    let planned = plan_for(&state, pid, row.profile_id, &draft_of(&row)?, Some(id)).await?;
    let members = sample_members(&planned, row.seed as u64);
    store::save_sample(&state.db, &row, &members).await?;
    let mut per_stratum = BTreeMap::new();
    for (_, s) in &members {
        *per_stratum.entry(s.clone()).or_insert(0) += 1;
    }
    let mut items: Vec<i64> = members.iter().map(|m| m.0).collect();
    items.sort_unstable();
    Ok((StatusCode::CREATED, Json(SampleResult { seed: row.seed, members: items.len() as u64, items, per_stratum })))
}

pub async fn progress(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, id)): PathParam<(i64, i64)>,
) -> AppResult<Json<Progress>> {
    managed_project(&state.db, &caller, pid).await?;
    find_devset(&state, pid, id).await?;
    let rows = store::member_progress(&state.db, id).await?;
    let mut strata: BTreeMap<String, StratumProgress> = BTreeMap::new();
    let mut total = StratumProgress { stratum: "all".into(), ..Default::default() };
    for m in rows {
        let complete = m.labels >= m.needed;
        let s = strata.entry(m.stratum.clone()).or_insert_with(|| StratumProgress { stratum: m.stratum, ..Default::default() });
        for p in [&mut *s, &mut total] {
            p.members += 1;
            p.labeled += (m.labels > 0) as u64;
            p.complete += complete as u64;
            p.agreed += (complete && m.label_sets == 1) as u64;
            p.reviewed += m.reviewed as u64;
        }
    }
    Ok(Json(Progress { total, strata: strata.into_values().collect() }))
}

#[derive(Deserialize)]
pub struct ReportQuery {
    /// Another (newer) profile to compare with; the dev set's own by default.
    pub profile_id: Option<i64>,
    /// The drift check: propose the fewest new labels that bring the joint TVD under this.
    pub max_tvd: Option<f64>,
}

pub async fn get_report(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, id)): PathParam<(i64, i64)>,
    QueryParams(q): QueryParams<ReportQuery>,
) -> AppResult<Json<Report>> {
    managed_project(&state.db, &caller, pid).await?;
    let row = find_devset(&state, pid, id).await?;
    let profile_id = q.profile_id.unwrap_or(row.profile_id);
    let profile = find_profile(&state, pid, profile_id).await?;
    let (attributes, cells) = decode_profile(&profile)?;
    let draft = draft_of(&row)?;
    if let Some(t) = q.max_tvd {
        if !(t > 0.0 && t < 1.0) {
            return Err(AppError::bad_request("max_tvd must be between 0 and 1"));
        }
    }
    let pool = pool_of(&state, pid).await?;
    let max_tvd = q.max_tvd;
    let report = tokio::task::spawn_blocking(move || {
        let view = PoolView { index: &pool.index, members: &pool.members, must_external: &[] };
        report(profile_id, id, &draft, &attributes, &cells, &view, max_tvd)
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(|m| unprocessable(m, Value::Null))?;
    Ok(Json(report))
}
