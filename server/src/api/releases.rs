//! Dev-set releases (issue 9): freeze, list, show, export, diff. Leads and admins of the
//! project only (labelers get 403). The work is in `crate::releases`; SQL in `store::releases`.
use std::collections::BTreeMap;

use app::api_types::{FreezeRequest, ReleaseDetail, ReleaseDiff, ReleaseSummary};
use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::{json, Value};

use super::extract::{JsonBody, PathParam, QueryParams};
use crate::auth::{managed_project, CurrentUser};
use crate::devsets::plan::Draft;
use crate::devsets::profile::ProfileAttribute;
use crate::error::{AppError, AppResult};
use crate::releases::export::{self, ItemSource, ReleaseInfo, ReleaseStats};
use crate::releases::{self, content_hash, filtered_out, unready, LeakageCheck, ReleaseItem};
use crate::state::AppState;
use crate::store::devsets as devset_store;
use crate::store::releases::{self as store, NewRelease, ReleaseRow, ReleaseStoreError};

impl From<ReleaseStoreError> for AppError {
    fn from(e: ReleaseStoreError) -> Self {
        match e {
            ReleaseStoreError::Conflict(m) => AppError::conflict(m),
            ReleaseStoreError::Database(e) => AppError::Database(e),
        }
    }
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn unprocessable(message: impl Into<String>, details: Value) -> AppError {
    AppError::Unprocessable { message: message.into(), details }
}

async fn summary(state: &AppState, row: &ReleaseRow) -> AppResult<ReleaseSummary> {
    let splits: BTreeMap<String, i64> = store::split_counts(&state.db, row.id).await?.into_iter().collect();
    Ok(ReleaseSummary {
        id: row.id,
        project_id: row.project_id,
        devset_id: row.devset_id,
        version: format!("v{}", row.version),
        content_hash: row.content_hash.clone(),
        item_count: row.item_count,
        splits,
        created_by: row.created_by.clone(),
        created_at: row.created_at,
    })
}

fn lineage_of(row: &ReleaseRow) -> AppResult<Value> {
    Ok(serde_json::from_str(&row.lineage).map_err(anyhow::Error::from)?)
}

fn info<'a>(row: &'a ReleaseRow, lineage: &'a Value) -> ReleaseInfo<'a> {
    let name = format!(
        "{}-{}-v{}",
        lineage["project"]["name"].as_str().unwrap_or("project"),
        lineage["devset"]["name"].as_str().unwrap_or("devset"),
        row.version
    );
    ReleaseInfo { name: slug(&name), version: format!("v{}", row.version), content_hash: &row.content_hash, lineage }
}

/// A file-name-safe name: letters, digits, `-`, `_`, `.`; anything else becomes `-`.
fn slug(s: &str) -> String {
    s.chars().map(|c| if c.is_ascii_alphanumeric() || "-_.".contains(c) { c.to_ascii_lowercase() } else { '-' }).collect()
}

async fn find_release(state: &AppState, pid: i64, id: i64) -> AppResult<ReleaseRow> {
    store::get_release(&state.db, pid, id).await?.ok_or_else(|| AppError::not_found(format!("no release {id} in this project")))
}

/// What the card needs of a release's items, read in one pass over them (one row in memory).
async fn stats_of(state: &AppState, release_id: i64) -> AppResult<ReleaseStats> {
    let mut stats = ReleaseStats::default();
    store::for_each_release_item(&state.db, release_id, None, |item| {
        stats.add(&item);
        Ok::<(), sqlx::Error>(())
    })
    .await?;
    Ok(stats)
}

async fn detail(state: &AppState, row: &ReleaseRow) -> AppResult<ReleaseDetail> {
    let stats = stats_of(state, row.id).await?;
    detail_with(state, row, &stats).await
}

async fn detail_with(state: &AppState, row: &ReleaseRow, stats: &ReleaseStats) -> AppResult<ReleaseDetail> {
    let lineage = lineage_of(row)?;
    let card = export::card(&info(row, &lineage), stats);
    Ok(ReleaseDetail { summary: summary(state, row).await?, lineage, card })
}

/// Rows per batch sent from the pool's cursor to the leakage check.
const POOL_BATCH: usize = 2_000;

/// `POST /api/projects/{pid}/devsets/{id}/releases`: freeze the dev set as its next release.
///
/// Refused with 422 (nothing saved) while members lack a final label or have open reviews
/// (`details.unready`), or while the leakage check finds pairs (`details.leakage`), unless the
/// matching override gives a reason; the reason and the list are recorded in the lineage.
pub async fn freeze(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, devset_id)): PathParam<(i64, i64)>,
    JsonBody(req): JsonBody<FreezeRequest>,
) -> AppResult<(StatusCode, Json<ReleaseDetail>)> {
    let project = managed_project(&state.db, &caller, pid).await?.project;
    let devset = devset_store::get_devset(&state.db, pid, devset_id)
        .await?
        .ok_or_else(|| AppError::not_found(format!("no dev set {devset_id} in this project")))?;
    if devset.sampled_at.is_none() {
        return Err(AppError::conflict(format!("the dev set {:?} is not sampled yet: sample it, label it, then freeze", devset.name)));
    }
    let settings = releases::validate(&req).map_err(AppError::bad_request)?;

    // Licence and source filter, then readiness of what is left.
    let all = store::members(&state.db, pid, devset_id).await?;
    let mut left_out: BTreeMap<&str, u64> = BTreeMap::new();
    let members: Vec<_> = all
        .into_iter()
        .filter(|c| match filtered_out(c, &req) {
            Some(why) => {
                *left_out.entry(why).or_default() += 1;
                false
            }
            None => true,
        })
        .collect();
    let blocking = unready(&members);
    if !blocking.is_empty() && req.override_unready.is_none() {
        return Err(unprocessable(
            format!("{} of the dev set lack a final label or have an open review; label or review them, or override with a reason", plural(blocking.len(), "item")),
            json!({"unready": blocking}),
        ));
    }
    let pool = if settings.train_dev_size > 0 { store::labeled_pool(&state.db, pid).await? } else { Vec::new() };
    let s2 = settings.clone();
    let items: Vec<ReleaseItem> = tokio::task::spawn_blocking(move || releases::build_items(members, pool, &s2))
        .await
        .map_err(anyhow::Error::from)?
        .map_err(|m| unprocessable(m, Value::Null))?;
    if items.is_empty() {
        return Err(unprocessable("no item of the dev set has a final label: nothing to freeze", Value::Null));
    }

    // Leakage: between the release's splits, and against every item that can end up in
    // training. The check is CPU work over a million rows: it runs on a blocking thread that
    // owns the release's items for the while, fed batches from the pool's cursor through a
    // bounded channel (the async side only reads rows). Images are compared by the dHash of
    // their thumbnails (already small, so cheap to read).
    let data_dir = state.data_dir.clone();
    let threshold = settings.threshold;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<store::PoolItem>>(4);
    let checker = tokio::task::spawn_blocking(move || {
        let dhash_of = |sha: &str| {
            let path = crate::import::images::thumbnail_path(&data_dir, sha);
            image::open(path).ok().map(|i| releases::leakage::dhash(&i))
        };
        let mut check = LeakageCheck::new(&items, threshold, &dhash_of);
        while let Some(batch) = rx.blocking_recv() {
            for (id, ext, text, image) in batch {
                let dhash = image.as_deref().and_then(dhash_of);
                check.check_pool_item(id, ext, text, image, dhash);
            }
        }
        let pairs = std::mem::take(&mut check.pairs);
        let pool_items = check.pool_items;
        drop(check);
        (items, pairs, pool_items)
    });
    let sent = store::send_pool_items(&state.db, pid, POOL_BATCH, &tx).await;
    drop(tx);
    let (items, pairs, pool_items) = checker.await.map_err(anyhow::Error::from)?;
    sent?;
    if !pairs.is_empty() && req.override_leakage.is_none() {
        return Err(unprocessable(
            format!("the leakage check found {} of duplicates or near-duplicates; remove them, or override with a reason", plural(pairs.len(), "pair")),
            json!({"leakage": pairs}),
        ));
    }

    // Lineage.
    let draft: Draft = serde_json::from_str(&devset.draft).map_err(anyhow::Error::from)?;
    let profile = devset_store::get_profile(&state.db, pid, devset.profile_id).await?;
    let distribution = match &profile {
        Some(p) => distribution(&draft, p, &items),
        None => Vec::new(),
    };
    // Agreement at freeze time: the last snapshot when it is at least as new as the latest
    // label of the dev set's items; computed now (the same code the consensus job runs) when
    // a label came after it, so the lineage never records a stale figure.
    let key = draft.calculator.as_ref().and_then(|c| c.key_attribute.clone()).or_else(|| draft.attributes.first().cloned());
    let latest_label = store::latest_label_at(&state.db, devset_id).await?;
    let stored_at = crate::agreement::stored_snapshot(&state.db, pid).await?.and_then(|s| s.dashboard.computed_at);
    let stale = latest_label.is_some_and(|t| stored_at.is_none_or(|c| c < t));
    let fresh = if stale { crate::agreement::compute_now(&state.db, pid).await? } else { None };
    let (dashboard, per_key_slice, agreement_source) = match fresh {
        Some(mut s) => {
            let rows = key.as_ref().and_then(|k| s.slices.remove(k)).unwrap_or_default();
            (s.dashboard, rows, "computed_at_freeze")
        }
        None => {
            let dashboard = crate::agreement::dashboard(&state.db, pid, false).await?;
            let rows = match &key {
                Some(k) => crate::agreement::slices(&state.db, pid, k).await.map(|s| s.rows).unwrap_or_default(),
                None => Vec::new(),
            };
            (dashboard, rows, "snapshot")
        }
    };
    let mut split_counts: BTreeMap<&str, u64> = BTreeMap::new();
    for i in &items {
        *split_counts.entry(i.split.as_str()).or_default() += 1;
    }
    let lineage = json!({
        "format": 1,
        "project": {
            "id": project.id, "name": project.name,
            "labels": project.labels.iter().map(|l| l.name.clone()).collect::<Vec<_>>(),
            "multi_label": matches!(project.kind, app::api_types::LabelKind::Multi),
            "overlap": project.overlap,
        },
        "devset": {
            "id": devset.id, "name": devset.name, "seed": devset.seed, "overlap": devset.overlap,
            "profile_id": devset.profile_id,
            "profile": profile.as_ref().map(|p| format!("{} ({})", p.name, p.profile_date)),
            "plan": draft,
        },
        "aggregation": {
            "method": project.quality.consensus_method.as_str(),
            "precedence": "adjudicated > gold > consensus of all k labels",
            "review_threshold": project.quality.review_threshold,
        },
        "agreement": {
            "source": agreement_source,
            "latest_label_at": latest_label,
            "computed_at": dashboard.computed_at,
            "measurement": dashboard.measurement,
            "alpha": dashboard.alpha,
            "target_alpha": dashboard.target_alpha,
            "n_items": dashboard.n_items,
            "n_labelers": dashboard.n_labelers,
            "key_attribute": key,
            "per_key_slice": per_key_slice,
        },
        "distribution": distribution,
        "splits": {
            "dev_share": settings.shares[0], "test_share": settings.shares[1], "seed": settings.seed,
            "stratified_by": "the dev set's strata", "group_by": settings.group_by,
            "train_dev_size": settings.train_dev_size, "counts": split_counts,
        },
        "filters": {"licenses": req.licenses, "sources": req.sources, "left_out": left_out},
        "leakage": {"threshold": settings.threshold, "shingle_words": 3, "pool_items": pool_items, "pairs": pairs.len()},
        "overrides": {
            "unready": req.override_unready.as_ref().filter(|_| !blocking.is_empty())
                .map(|r| json!({"reason": r.trim(), "items": blocking})),
            "leakage": req.override_leakage.as_ref().filter(|_| !pairs.is_empty())
                .map(|r| json!({"reason": r.trim(), "pairs": pairs})),
        },
        "frozen_by": {"id": caller.id(), "username": caller.user.username},
        "frozen_at": crate::store::now_ms(),
        "app_version": env!("CARGO_PKG_VERSION"),
    });
    let (hash, items) = tokio::task::spawn_blocking(move || (content_hash(&items), items)).await.map_err(anyhow::Error::from)?;
    let lineage_text = lineage.to_string();
    let (id, _) = store::insert_release(
        &state.db,
        &NewRelease { project_id: pid, devset_id, lineage: &lineage_text, content_hash: &hash, created_by: caller.id() },
        &items,
    )
    .await?;
    let stats = ReleaseStats::of(&items);
    drop(items);
    let row = find_release(&state, pid, id).await?;
    Ok((StatusCode::CREATED, Json(detail_with(&state, &row, &stats).await?)))
}

/// Per stratification attribute and value: production's share (the dev set's profile) and
/// the release's dev+test share.
fn distribution(draft: &Draft, profile: &crate::store::devsets::ProfileRow, items: &[ReleaseItem]) -> Vec<Value> {
    let attrs: Vec<ProfileAttribute> = serde_json::from_str(&profile.attributes).unwrap_or_default();
    let cells: Vec<(Vec<String>, f64)> = serde_json::from_str(&profile.cells).unwrap_or_default();
    // The release's dev+test items as a pool of their own, all members of one dev set (0).
    let mut builder = crate::devsets::index::IndexBuilder::default();
    for (i, item) in items.iter().filter(|i| i.split != releases::SPLIT_TRAIN_DEV).enumerate() {
        builder.push(crate::devsets::index::PoolItemRow {
            id: i as i64,
            meta: item.meta.clone(),
            weight: 1.0,
            source: None,
            license: None,
        });
    }
    let index = builder.finish();
    let members: Vec<(usize, i64)> = (0..index.len()).map(|pos| (pos, 0)).collect();
    let pool = crate::devsets::plan::PoolView { index: &index, members: &members, must_external: &[] };
    match crate::devsets::report(profile.id, 0, draft, &attrs, &cells, &pool, None) {
        Ok(r) => r
            .attributes
            .iter()
            .flat_map(|a| a.bars.iter().map(move |b| json!({"attribute": a.attribute, "value": b.value, "production": b.production, "release": b.dev})))
            .collect(),
        Err(_) => Vec::new(),
    }
}

#[derive(Deserialize)]
pub struct ListQuery {
    devset_id: Option<i64>,
}

/// `GET /api/projects/{pid}/releases[?devset_id=]`: releases, by dev set then version.
pub async fn list(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam(pid): PathParam<i64>,
    QueryParams(q): QueryParams<ListQuery>,
) -> AppResult<Json<Vec<ReleaseSummary>>> {
    managed_project(&state.db, &caller, pid).await?;
    let mut out = Vec::new();
    for row in store::list_releases(&state.db, pid, q.devset_id).await? {
        out.push(summary(&state, &row).await?);
    }
    Ok(Json(out))
}

/// `GET /api/projects/{pid}/releases/{id}`: summary, lineage and dataset card.
pub async fn get(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, id)): PathParam<(i64, i64)>,
) -> AppResult<Json<ReleaseDetail>> {
    managed_project(&state.db, &caller, pid).await?;
    let row = find_release(&state, pid, id).await?;
    Ok(Json(detail(&state, &row).await?))
}

#[derive(Deserialize)]
pub struct ExportQuery {
    format: Option<String>,
}

/// A release's items read from the database, one pass per `each`, on a blocking thread (the
/// export's writers are synchronous): each pass drives the async cursor with `block_on`.
struct DbItems {
    db: crate::store::Db,
    release_id: i64,
    rt: tokio::runtime::Handle,
}

impl ItemSource for DbItems {
    fn each(&mut self, split: Option<&str>, f: &mut dyn FnMut(&ReleaseItem) -> std::io::Result<()>) -> std::io::Result<()> {
        self.rt.block_on(store::for_each_release_item(&self.db, self.release_id, split, |item| {
            f(&item).map_err(ExportError::Io)
        }))
        .map_err(|e| match e {
            ExportError::Io(e) => e,
            ExportError::Db(e) => std::io::Error::other(e),
        })
    }
}

enum ExportError {
    Io(std::io::Error),
    Db(sqlx::Error),
}

impl From<sqlx::Error> for ExportError {
    fn from(e: sqlx::Error) -> Self {
        ExportError::Db(e)
    }
}

/// `GET /api/projects/{pid}/releases/{id}/export?format=zip|jsonl|csv|label_studio|card|manifest`.
///
/// The file is written on a blocking thread into an unnamed temporary file (gone when closed),
/// item by item from the database, then streamed from it: memory stays flat whatever the
/// release's size (docs/bench.md, the releases benchmark).
pub async fn export(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, id)): PathParam<(i64, i64)>,
    QueryParams(q): QueryParams<ExportQuery>,
) -> AppResult<Response> {
    managed_project(&state.db, &caller, pid).await?;
    let row = find_release(&state, pid, id).await?;
    let lineage = lineage_of(&row)?;
    let format = q.format.unwrap_or_else(|| "zip".into());
    let (content_type, ext) = match format.as_str() {
        "zip" => ("application/zip", "zip"),
        "jsonl" => ("application/x-ndjson", "jsonl"),
        "csv" => ("text/csv; charset=utf-8", "csv"),
        "label_studio" => ("application/json", "label-studio.json"),
        "card" => ("text/markdown; charset=utf-8", "md"),
        "manifest" => ("application/json", "manifest.json"),
        other => {
            return Err(AppError::bad_request(format!(
                "unknown format {other:?}: use zip, jsonl, csv, label_studio, card or manifest"
            )))
        }
    };
    let name = info(&row, &lineage).name;
    let stats = stats_of(&state, row.id).await?;
    let mut src = DbItems { db: state.db.clone(), release_id: row.id, rt: tokio::runtime::Handle::current() };
    let file = tokio::task::spawn_blocking(move || -> std::io::Result<std::fs::File> {
        use std::io::{Seek, Write};
        let info = info(&row, &lineage);
        let mut file = tempfile::tempfile()?;
        match format.as_str() {
            "zip" => {
                let w = export::write_zip(&info, &stats, &mut src, std::io::BufWriter::new(file))?;
                file = w.into_inner().map_err(|e| e.into_error())?;
            }
            "card" => file.write_all(export::card(&info, &stats).as_bytes())?,
            "manifest" => file.write_all(&export::manifest(&info, &stats, &mut src)?)?,
            _ => {
                let mut w = std::io::BufWriter::new(file);
                match format.as_str() {
                    "jsonl" => export::write_jsonl(&mut src, &mut w)?,
                    "csv" => export::write_csv(&mut src, &mut w)?,
                    _ => export::write_label_studio(&mut src, &mut w)?,
                }
                file = w.into_inner().map_err(|e| e.into_error())?;
            }
        }
        file.rewind()?;
        Ok(file)
    })
    .await
    .map_err(anyhow::Error::from)?
    .map_err(anyhow::Error::from)?;
    let len = file.metadata().map_err(anyhow::Error::from)?.len();
    let body = axum::body::Body::from_stream(tokio_util::io::ReaderStream::with_capacity(tokio::fs::File::from_std(file), 256 * 1024));
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}.{ext}\"")),
            (header::CONTENT_LENGTH, len.to_string()),
        ],
        body,
    )
        .into_response())
}

/// `GET /api/projects/{pid}/releases/{id}/diff/{other}`: from release `id` to `other`.
pub async fn diff(
    State(state): State<AppState>,
    caller: CurrentUser,
    PathParam((pid, id, other)): PathParam<(i64, i64, i64)>,
) -> AppResult<Json<ReleaseDiff>> {
    managed_project(&state.db, &caller, pid).await?;
    let (a, b) = (find_release(&state, pid, id).await?, find_release(&state, pid, other).await?);
    let (ia, ib) = (store::release_items(&state.db, a.id).await?, store::release_items(&state.db, b.id).await?);
    // The stratification attributes of both releases' plans.
    let mut attributes: Vec<String> = Vec::new();
    for row in [&a, &b] {
        for v in lineage_of(row)?["devset"]["plan"]["attributes"].as_array().into_iter().flatten() {
            if let Some(s) = v.as_str().filter(|s| !attributes.iter().any(|x| x == s)) {
                attributes.push(s.to_string());
            }
        }
    }
    let d = releases::diff::diff(&ia, &ib, &attributes);
    Ok(Json(ReleaseDiff {
        from: summary(&state, &a).await?,
        to: summary(&state, &b).await?,
        added: d.added,
        removed: d.removed,
        label_changes: d.label_changes,
        distribution: d.distribution,
    }))
}
