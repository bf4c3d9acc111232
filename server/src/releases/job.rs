//! Freezing a release as a background job (`JobKind::ReleaseFreeze`).
//!
//! A freeze of 100,000 items checked for leakage against a million pool items takes longer
//! than a request may (the 30 s timeout): `POST …/devsets/{id}/releases` validates the request,
//! queues this job and answers 202; `GET …/release-freezes/{job}` shows its phase and counts,
//! then the release, or why it was refused.
//!
//! Phases, in order (`jobs.phase`, migration 0018): `reading members` → `splitting` →
//! `leakage check` (counts: pool items checked of the pool) → `lineage` → `hashing` →
//! `writing` (counts: items). A phase and its counts are written about once a second.
//!
//! Outcomes (the job's result, JSON [`FreezeOutcome`]):
//! - `frozen`: the release's id;
//! - `blocked`: refused, nothing saved, with the same `{code, message, details}` the freeze
//!   request itself answered before it became a job (`details.unready` or `details.leakage`),
//!   so a caller shows the list of items or the pairs side by side. A refusal is an answer,
//!   not a failure: the job is `done`;
//! - a failure (the dev set was deleted meanwhile, a database error): the job is `failed` with
//!   its message.
//!
//! Restarts. The release and its items are written in one transaction (`insert_release`), so
//! a stop leaves either the whole release or nothing. The job is resumable: a stopped freeze
//! (shutdown, or a crash noticed by the stale heartbeat) is queued again and runs from the
//! start. A freeze whose release was committed but whose job was not yet marked done finds
//! that release by its job id (`releases.job_id`, unique) instead of writing a twin.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use app::api_types::{ErrorInfo, FreezeRequest};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::{build_items, content_hash_sorted, filtered_out, unready, LeakageCheck, ReleaseItem};
use crate::devsets::plan::Draft;
use crate::devsets::profile::ProfileAttribute;
use crate::jobs::JobCtx;
use crate::store::devsets as devset_store;
use crate::store::jobs::JobRow;
use crate::store::releases::{self as store, NewRelease};

/// The job kind's name in the `jobs` table.
pub const KIND: &str = "release_freeze";

/// Rows per batch sent from the pool's cursor to the leakage check, and batches in flight:
/// enough to keep both sides busy, few enough that the pool's texts in memory stay a few MB.
const POOL_BATCH: usize = 2_000;
const POOL_BATCHES_IN_FLIGHT: usize = 2;

/// What the request handler hands the job (the job's `params`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FreezeParams {
    pub devset_id: i64,
    pub request: FreezeRequest,
    /// Who asked for the freeze (recorded in the lineage as `frozen_by`).
    pub by_id: i64,
    pub by_username: String,
}

/// The job's result.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "snake_case")]
pub enum FreezeOutcome {
    Frozen { release_id: i64 },
    Blocked(ErrorInfo),
}

fn plural(n: usize, what: &str) -> String {
    format!("{n} {what}{}", if n == 1 { "" } else { "s" })
}

fn blocked(message: String, details: Value) -> anyhow::Result<String> {
    Ok(serde_json::to_string(&FreezeOutcome::Blocked(ErrorInfo { code: "unprocessable".into(), message, details }))?)
}

/// Writes the phase and counts; a failure to record progress never fails the freeze.
async fn phase(ctx: &JobCtx, name: &str, done: i64, total: i64) {
    if let Err(e) = store::set_phase(&ctx.db, ctx.job_id(), name, done, total).await {
        tracing::warn!(job = ctx.job_id(), error = %e, "could not record the freeze's progress");
    }
}

/// Runs one freeze job; the returned text is its [`FreezeOutcome`].
pub async fn run(ctx: &JobCtx, job: &JobRow, data_dir: &std::path::Path) -> anyhow::Result<String> {
    let params: FreezeParams = serde_json::from_str(&job.params)?;
    let pid = job.project_id.ok_or_else(|| anyhow::anyhow!("a freeze job needs a project"))?;
    // A rerun after a restart: the release may already be committed.
    if let Some(release_id) = store::release_of_job(&ctx.db, job.id).await? {
        return Ok(serde_json::to_string(&FreezeOutcome::Frozen { release_id })?);
    }
    let req = &params.request;
    let devset_id = params.devset_id;
    let settings = super::validate(req).map_err(|m| anyhow::anyhow!(m))?;
    let project = crate::store::projects::get_project(&ctx.db, pid).await.map_err(|e| anyhow::anyhow!("{e}"))?.project;
    let devset = devset_store::get_devset(&ctx.db, pid, devset_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the dev set {devset_id} was deleted before its freeze ran"))?;

    // Licence and source filter, then readiness of what is left.
    phase(ctx, "reading members", 0, 0).await;
    crate::heap::release_free_memory();
    let all = store::members(&ctx.db, pid, devset_id).await?;
    let mut left_out: BTreeMap<&str, u64> = BTreeMap::new();
    let members: Vec<_> = all
        .into_iter()
        .filter(|c| match filtered_out(c, req) {
            Some(why) => {
                *left_out.entry(why).or_default() += 1;
                false
            }
            None => true,
        })
        .collect();
    let blocking = unready(&members);
    if !blocking.is_empty() && req.override_unready.is_none() {
        return blocked(
            format!("{} of the dev set lack a final label or have an open review; label or review them, or override with a reason", plural(blocking.len(), "item")),
            json!({"unready": blocking}),
        );
    }
    ctx.check_cancelled()?;
    phase(ctx, "splitting", 0, members.len() as i64).await;
    let pool = if settings.train_dev_size > 0 { store::labeled_pool(&ctx.db, pid).await? } else { Vec::new() };
    let s2 = settings.clone();
    let items: Vec<ReleaseItem> = match tokio::task::spawn_blocking(move || build_items(members, pool, &s2)).await? {
        Ok(items) => items,
        Err(m) => return blocked(m, Value::Null),
    };
    if items.is_empty() {
        return blocked("no item of the dev set has a final label: nothing to freeze".into(), Value::Null);
    }
    ctx.check_cancelled()?;

    // Leakage: between the release's splits, and against every item that can end up in
    // training. CPU work over a million rows: it runs on a blocking thread that owns the
    // release's items for the while, fed batches from the pool's cursor through a bounded
    // channel (the async side only reads rows); each batch is checked on all cores
    // (`LeakageCheck::check_pool_batch`). Images are compared by the dHash of their thumbnails.
    let pool_total = store::pool_count(&ctx.db, pid).await?;
    phase(ctx, "leakage check", 0, pool_total).await;
    let checked = Arc::new(AtomicU64::new(0));
    let ticker = {
        let (db, id, checked) = (ctx.db.clone(), ctx.job_id(), checked.clone());
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let _ = store::set_phase(&db, id, "leakage check", checked.load(Ordering::Relaxed) as i64, pool_total).await;
            }
        })
    };
    let data_dir = data_dir.to_path_buf();
    let threshold = settings.threshold;
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<store::PoolItem>>(POOL_BATCHES_IN_FLIGHT);
    let counter = checked.clone();
    let checker = tokio::task::spawn_blocking(move || {
        let dhash_of = |sha: &str| {
            let path = crate::import::images::thumbnail_path(&data_dir, sha);
            image::open(path).ok().map(|i| super::leakage::dhash(&i))
        };
        let mut check = LeakageCheck::new(&items, threshold, &dhash_of);
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(8);
        while let Some(batch) = rx.blocking_recv() {
            let n = batch.len() as u64;
            check.check_pool_batch(batch, &dhash_of, threads);
            counter.fetch_add(n, Ordering::Relaxed);
        }
        let pairs = std::mem::take(&mut check.pairs);
        let pool_items = check.pool_items;
        drop(check);
        (items, pairs, pool_items)
    });
    let sent = store::send_pool_items(&ctx.db, pid, POOL_BATCH, &tx).await;
    drop(tx);
    let joined = checker.await;
    ticker.abort();
    let (items, pairs, pool_items) = joined?;
    sent?;
    if !pairs.is_empty() && req.override_leakage.is_none() {
        return blocked(
            format!("the leakage check found {} of duplicates or near-duplicates; remove them, or override with a reason", plural(pairs.len(), "pair")),
            json!({"leakage": pairs}),
        );
    }
    ctx.check_cancelled()?;

    // Lineage.
    phase(ctx, "lineage", 0, 0).await;
    let draft: Draft = serde_json::from_str(&devset.draft)?;
    let profile = devset_store::get_profile(&ctx.db, pid, devset.profile_id).await?;
    let distribution = match &profile {
        Some(p) => distribution(&draft, p, &items),
        None => Vec::new(),
    };
    // Agreement at freeze time: the last snapshot when it is at least as new as the latest
    // label of the dev set's items; computed now (the same code the consensus job runs) when
    // a label came after it, so the lineage never records a stale figure.
    let key = draft.calculator.as_ref().and_then(|c| c.key_attribute.clone()).or_else(|| draft.attributes.first().cloned());
    let latest_label = store::latest_label_at(&ctx.db, devset_id).await?;
    let app_err = |e: crate::error::AppError| anyhow::anyhow!("{e}");
    let stored_at = crate::agreement::stored_snapshot(&ctx.db, pid).await.map_err(app_err)?.and_then(|s| s.dashboard.computed_at);
    let stale = latest_label.is_some_and(|t| stored_at.is_none_or(|c| c < t));
    let fresh = if stale { crate::agreement::compute_now(&ctx.db, pid).await.map_err(app_err)? } else { None };
    let (dashboard, per_key_slice, agreement_source) = match fresh {
        Some(mut s) => {
            let rows = key.as_ref().and_then(|k| s.slices.remove(k)).unwrap_or_default();
            (s.dashboard, rows, "computed_at_freeze")
        }
        None => {
            let dashboard = crate::agreement::dashboard(&ctx.db, pid, false).await.map_err(app_err)?;
            let rows = match &key {
                Some(k) => crate::agreement::slices(&ctx.db, pid, k).await.map(|s| s.rows).unwrap_or_default(),
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
        "frozen_by": {"id": params.by_id, "username": params.by_username},
        "frozen_at": crate::store::now_ms(),
        "app_version": env!("CARGO_PKG_VERSION"),
    });
    ctx.check_cancelled()?;
    phase(ctx, "hashing", 0, items.len() as i64).await;
    let (hash, items) = tokio::task::spawn_blocking(move || (content_hash_sorted(&items), items)).await?;
    let lineage_text = lineage.to_string();
    ctx.check_cancelled()?;
    phase(ctx, "writing", 0, items.len() as i64).await;
    let (release_id, _) = store::insert_release(
        &ctx.db,
        &NewRelease {
            project_id: pid,
            devset_id,
            lineage: &lineage_text,
            content_hash: &hash,
            created_by: params.by_id,
            job_id: Some(job.id),
        },
        &items,
    )
    .await?;
    phase(ctx, "done", items.len() as i64, items.len() as i64).await;
    Ok(serde_json::to_string(&FreezeOutcome::Frozen { release_id })?)
}

/// Per stratification attribute and value: production's share (the dev set's profile) and
/// the release's dev+test share.
fn distribution(draft: &Draft, profile: &crate::store::devsets::ProfileRow, items: &[ReleaseItem]) -> Vec<Value> {
    let attrs: Vec<ProfileAttribute> = serde_json::from_str(&profile.attributes).unwrap_or_default();
    let cells: Vec<(Vec<String>, f64)> = serde_json::from_str(&profile.cells).unwrap_or_default();
    // The release's dev+test items as a pool of their own, all members of one dev set (0).
    let mut builder = crate::devsets::index::IndexBuilder::default();
    for (i, item) in items.iter().filter(|i| i.split != super::SPLIT_TRAIN_DEV).enumerate() {
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
