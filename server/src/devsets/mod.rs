//! Production-matched dev sets (issue 8): the domain room between the API and the store.
//!
//! - `profile`: parsing a production profile upload (records or counts, JSONL or CSV).
//! - `plan`: a draft's eligible pool, size, allocation and expected distances.
//! - here: sampling a plan into members, and the distribution report of a dev set.
//!
//! Invariants: an item is in at most one dev set (the store's primary key on
//! `devset_members.item_id`, and the plan excludes other dev sets' items); a sample is a pure
//! function of the plan, the eligible items and the seed (`stats::sampling`).
pub mod drift;
pub mod index;
pub mod plan;
pub mod profile;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use app::api_types::{AttributeReport, DevsetReport as Report, DistributionBar as Bar, SliceHalfWidth};
use crate::stats::distance::{distribution_distance, slice_distances};
use crate::store::devsets as store;
use crate::store::Db;
use crate::stats::sampling::{sample_stratified, PoolItem};
use index::{IndexBuilder, PoolCache, PoolIndex, PoolItemRow, NONE};
use plan::{attribute_distance, half_width, production_cells, Draft, Planned, PoolView};
use profile::ProfileAttribute;

/// A project's pool for a plan or a report: its (cached) index and today's dev-set members.
pub struct LoadedPool {
    pub index: Arc<PoolIndex>,
    /// The project's `visible_max_item_id` the index is for.
    pub max_item_id: i64,
    pub members: Vec<(usize, i64)>,
}

/// Loads the pool of a project (None when there is no such project). The index is built on
/// the first call (one pass over the items, on a blocking thread), reused until the next import
/// commits, then extended by that import's items (see `index`).
pub async fn load_pool(db: &Db, cache: &PoolCache, project_id: i64) -> sqlx::Result<Option<LoadedPool>> {
    let Some(version) = store::pool_version(db, project_id).await? else { return Ok(None) };
    let index = cache
        .get(project_id, version, || async {
            // Items are only appended: an index cached before the last import goes on from
            // where it stopped (the import's items only), as long as the counts add up.
            let base = cache.latest(project_id).filter(|((max, count), _)| *max <= version.0 && *count <= version.1);
            if let Some(((max, count), old)) = base {
                let extended = extend_index(db, project_id, Some(old.clone()), max, version.0).await?;
                if (extended.len() as i64 - old.len() as i64) == version.1 - count {
                    return Ok(extended);
                }
            }
            extend_index(db, project_id, None, i64::MIN, version.0).await
        })
        .await?;
    let members = index::member_positions(&index, &store::project_members(db, project_id).await?);
    Ok(Some(LoadedPool { index, max_item_id: version.0, members }))
}

/// Builds (or extends) a project's pool index in the background once an import has committed,
/// when the project builds dev sets (it has a production profile): the lead's next plan then
/// reads a warm index instead of waiting for a pass over the pool. Projects without profiles
/// are left alone: the index costs memory and a pass over every item's meta.
pub fn warm_pool_after_import(db: Db, cache: Arc<PoolCache>, project_id: i64) {
    tokio::spawn(async move {
        let warmed = async {
            if store::list_profiles(&db, project_id).await?.is_empty() {
                return Ok(());
            }
            load_pool(&db, &cache, project_id).await.map(|_| ())
        };
        if let Err(e) = warmed.await {
            tracing::warn!(project_id, error = %e, "warming the dev-set pool index after an import failed (the next plan builds it)");
        }
    });
}

/// `base` (or an empty index) with the project's items `after < id <= max` appended.
async fn extend_index(db: &Db, project_id: i64, base: Option<Arc<PoolIndex>>, after: i64, max: i64) -> sqlx::Result<PoolIndex> {
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<PoolItemRow>>(4);
    let builder = tokio::task::spawn_blocking(move || {
        let mut b = base.map_or_else(IndexBuilder::default, |ix| IndexBuilder::resume(&ix));
        while let Some(chunk) = rx.blocking_recv() {
            for row in chunk {
                b.push(row);
            }
        }
        b.finish()
    });
    store::stream_pool(db, project_id, after, max, tx).await?;
    builder.await.map_err(|e| sqlx::Error::Protocol(format!("building the pool index: {e}")))
}

/// The members a plan's sample picks: (item id, stratum key), reproducible from the seed.
pub fn sample_members(planned: &Planned, seed: u64) -> Vec<(i64, String)> {
    // Zero-padded ids sort like the numbers, so the draw does not depend on the pool's order.
    let pool: Vec<PoolItem> = planned
        .eligible
        .iter()
        .map(|e| PoolItem {
            id: format!("{:020}", e.id),
            stratum: planned.plan.strata[e.stratum].key.clone(),
            must_include: e.must_include,
        })
        .collect();
    let allocation: Vec<(String, u64)> = planned.plan.strata.iter().map(|s| (s.key.clone(), s.allocated)).collect();
    let sample = sample_stratified(&pool, &allocation, seed).expect("item ids and stratum keys are unique");
    sample.items.iter().map(|&i| (planned.eligible[i].id, pool[i].stratum.clone())).collect()
}

fn shares(counts: &BTreeMap<String, f64>, value: &str) -> f64 {
    let total: f64 = counts.values().sum();
    if total > 0.0 {
        counts.get(value).copied().unwrap_or(0.0) / total
    } else {
        0.0
    }
}

/// The distribution report of dev set `devset_id` (its members are in `pool.members`) against
/// a profile, with the whole pool beside it.
pub fn report(
    profile_id: i64,
    devset_id: i64,
    draft: &Draft,
    profile_attrs: &[ProfileAttribute],
    profile_cells: &[(Vec<String>, f64)],
    pool: &PoolView<'_>,
    top_up: Option<f64>,
) -> Result<Report, String> {
    let mut reasons = Vec::new();
    let cols: Vec<usize> = draft
        .attributes
        .iter()
        .map(|a| {
            profile_attrs
                .iter()
                .position(|p| &p.name == a)
                .ok_or_else(|| format!("the profile has no attribute {a:?}, which the dev set is stratified by"))
        })
        .collect::<Result<_, _>>()?;
    let attrs: Vec<&ProfileAttribute> = cols.iter().map(|&c| &profile_attrs[c]).collect();
    let production = production_cells(&cols, profile_cells);
    let index = pool.index;
    let mut devset_of: Vec<Option<i64>> = vec![None; index.len()];
    for &(pos, d) in pool.members {
        devset_of[pos] = Some(d);
    }
    let as_f64 = |t: BTreeMap<Vec<String>, u64>| -> BTreeMap<Vec<String>, f64> { t.into_iter().map(|(k, n)| (k, n as f64)).collect() };
    let dev = as_f64(index.tally(&attrs, |pos| devset_of[pos] == Some(devset_id)).map_err(|e| e.0)?);
    let pool_cells = as_f64(index.tally(&attrs, |_| true).map_err(|e| e.0)?);
    let members: u64 = dev.values().sum::<f64>() as u64;
    let mut attributes = Vec::new();
    for (a, name) in draft.attributes.iter().enumerate() {
        let marginal = |cells: &BTreeMap<Vec<String>, f64>| {
            let mut m: BTreeMap<String, f64> = BTreeMap::new();
            for (v, c) in cells {
                *m.entry(v[a].clone()).or_insert(0.0) += c;
            }
            m
        };
        let (p, d, q) = (marginal(&production), marginal(&dev), marginal(&pool_cells));
        let values: std::collections::BTreeSet<&String> = p.keys().chain(d.keys()).chain(q.keys()).collect();
        let bars: Vec<Bar> = values
            .iter()
            .map(|v| Bar { value: (*v).clone(), production: shares(&p, v), dev: shares(&d, v), pool: shares(&q, v) })
            .collect();
        let distance = |side: &BTreeMap<String, f64>, what: &str, reasons: &mut Vec<String>| {
            let pv: Vec<f64> = values.iter().map(|v| p.get(*v).copied().unwrap_or(0.0)).collect();
            let qv: Vec<f64> = values.iter().map(|v| side.get(*v).copied().unwrap_or(0.0)).collect();
            match distribution_distance(&pv, &qv) {
                Ok(d) => Some(attribute_distance(name, &d)),
                Err(e) => {
                    reasons.push(format!("{name}, {what} vs production: {}", e.reason));
                    None
                }
            }
        };
        let dev_vs_production = distance(&d, "dev set", &mut reasons);
        let pool_vs_production = distance(&q, "pool", &mut reasons);
        attributes.push(AttributeReport { attribute: name.clone(), bars, dev_vs_production, pool_vs_production });
    }
    let joint = |side: &BTreeMap<Vec<String>, f64>, what: &str, reasons: &mut Vec<String>| {
        let p: Vec<(Vec<String>, f64)> = production.iter().map(|(v, c)| (v.clone(), *c)).collect();
        let q: Vec<(Vec<String>, f64)> = side.iter().map(|(v, c)| (v.clone(), *c)).collect();
        match slice_distances(&draft.attributes, &p, &q) {
            Ok(d) => Some(attribute_distance("joint", &d.joint)),
            Err(e) => {
                reasons.push(format!("joint, {what} vs production: {}", e.reason));
                None
            }
        }
    };
    let joint_dev_vs_production = joint(&dev, "dev set", &mut reasons);
    let joint_pool_vs_production = joint(&pool_cells, "pool", &mut reasons);
    let (accuracy, accuracy_source, confidence) = match &draft.calculator {
        Some(c) => (c.expected_accuracy, "the draft's expected accuracy".to_string(), c.confidence),
        None => (0.5, "0.5, the widest interval (the draft gave a size, not an expected accuracy)".to_string(), 0.95),
    };
    let key = draft.calculator.as_ref().and_then(|c| c.key_attribute.clone()).unwrap_or_else(|| draft.attributes[0].clone());
    let k = draft.attributes.iter().position(|a| a == &key).unwrap_or(0);
    let mut per_value: BTreeMap<String, u64> = BTreeMap::new();
    for (v, c) in &dev {
        *per_value.entry(v[k].clone()).or_insert(0) += *c as u64;
    }
    let key_slices = per_value
        .into_iter()
        .map(|(value, n)| SliceHalfWidth { value, n, half_width: half_width(accuracy, n, confidence) })
        .collect();
    // The drift check: members, production and the items still free to add (in no dev set,
    // not excluded by the draft), per stratum.
    let top_up = match top_up {
        None => None,
        Some(target) => {
            let bad_license = PoolIndex::flags(&index.licenses, &draft.exclude.licenses);
            let bad_source = PoolIndex::flags(&index.sources, &draft.exclude.sources);
            let free = index
                .tally(&attrs, |pos| {
                    devset_of[pos].is_none()
                        && !(index.license[pos] != NONE && bad_license[index.license[pos] as usize])
                        && !(index.source[pos] != NONE && bad_source[index.source[pos] as usize])
                })
                .map_err(|e| e.0)?;
            let mut cells: BTreeMap<Vec<String>, (u64, f64, u64)> = BTreeMap::new();
            for (v, c) in &production {
                cells.entry(v.clone()).or_default().1 += c;
            }
            for (v, c) in &dev {
                cells.entry(v.clone()).or_default().0 += *c as u64;
            }
            for (v, n) in free {
                cells.entry(v).or_default().2 += n;
            }
            Some(drift::top_up(&cells, target))
        }
    };
    Ok(Report {
        top_up,
        profile_id,
        members,
        pool_items: index.len() as u64,
        attributes,
        joint_dev_vs_production,
        joint_pool_vs_production,
        accuracy,
        accuracy_source,
        confidence,
        half_width: half_width(accuracy, members, confidence),
        key_attribute: key,
        key_slices,
        reasons,
    })
}
