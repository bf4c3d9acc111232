//! A dev-set draft and its plan: which pool items are eligible, how many items the dev set
//! needs (a size, or the size calculator), and how they are shared over the strata.
//!
//! Everything numeric comes from the statistics core, so the plan equals what
//! `mirrorset stats sample-size | allocate | distance` print for the same inputs:
//! - size: `wilson_sample_size(accuracy, half_width)` overall; for each value v of a key
//!   attribute, the dev set must hold `wilson_sample_size(accuracy, key_half_width)` items of v,
//!   and a production-matched dev set holds about n·share_v of them, so it needs
//!   ⌈needed / share_v⌉ in all. The larger requirement wins, and the plan names it.
//! - allocation: `allocate_strata` with the minimum per stratum as a floor (water-filling).
//! - expected distances: `slice_distances` between production and the allocation.
//!
//! Strata are the combinations of the stratification attributes' values seen in production or
//! in the eligible pool; a stratum's key is `attr=value|attr=value` in the draft's attribute
//! order (the key `mirrorset stats allocate` is given).

use std::collections::{BTreeMap, BTreeSet, HashMap};

pub use app::api_types::{
    AttributeDistance, DevsetDraft as Draft, DevsetPlan as Plan, Exclusions, KeyValueNeed, MustInclude, PlanExclusions as Excluded,
    PlanStratum, SizeCalculator, SizeDriver,
};

use super::index::{Categories, PoolIndex, NONE};
use super::profile::ProfileAttribute;
use crate::stats::allocation::{allocate_strata, AllocationRequest, Stratum};
use crate::stats::distance::{slice_distances, Distance};
use crate::stats::proportion::{wilson_interval, wilson_sample_size};

/// The pool as a plan reads it: the project's index, and what changes without an import.
pub struct PoolView<'a> {
    pub index: &'a PoolIndex,
    /// Every dev-set member in the pool: (position in the index, dev set), ascending.
    pub members: &'a [(usize, i64)],
    /// The draft's must-include external ids that name an item of the pool: (id, position).
    pub must_external: &'a [(String, usize)],
}

/// An item the plan may sample, with its stratum.
#[derive(Clone, Debug)]
pub struct Eligible {
    pub id: i64,
    pub stratum: usize,
    pub must_include: bool,
}

/// The plan and, for sampling, the eligible items.
pub struct Planned {
    pub plan: Plan,
    pub eligible: Vec<Eligible>,
}

/// The usual reading of the population stability index.
pub fn psi_reading(psi: f64) -> &'static str {
    if psi < 0.1 {
        "stable (PSI < 0.1)"
    } else if psi <= 0.25 {
        "moderate shift (PSI 0.1–0.25)"
    } else {
        "significant shift (PSI > 0.25)"
    }
}

pub fn attribute_distance(attribute: &str, d: &Distance) -> AttributeDistance {
    AttributeDistance { attribute: attribute.to_string(), tvd: d.tvd, psi: d.psi, kl: d.kl, reading: psi_reading(d.psi).into() }
}

pub fn stratum_key(attributes: &[String], values: &[String]) -> String {
    attributes.iter().zip(values).map(|(a, v)| format!("{a}={v}")).collect::<Vec<_>>().join("|")
}

/// Production counts marginalised onto `attributes` (profile attribute indices `cols`).
pub fn production_cells(cols: &[usize], cells: &[(Vec<String>, f64)]) -> BTreeMap<Vec<String>, f64> {
    let mut out = BTreeMap::new();
    for (values, count) in cells {
        let key: Vec<String> = cols.iter().map(|&c| values[c].clone()).collect();
        *out.entry(key).or_insert(0.0) += count;
    }
    out
}

/// Why a draft cannot be planned (a 422 with this message).
#[derive(Debug, PartialEq)]
pub struct PlanError(pub String);

pub fn validate_draft(draft: &Draft, profile_attrs: &[ProfileAttribute], pool_attrs: &BTreeSet<String>) -> Result<(), PlanError> {
    if draft.attributes.is_empty() {
        return Err(PlanError("pick at least one stratification attribute".into()));
    }
    let mut seen = BTreeSet::new();
    for a in &draft.attributes {
        if !seen.insert(a) {
            return Err(PlanError(format!("the attribute {a:?} is listed twice")));
        }
        let in_profile = profile_attrs.iter().any(|p| &p.name == a);
        if !in_profile || !pool_attrs.contains(a) {
            let both: Vec<&str> =
                profile_attrs.iter().map(|p| p.name.as_str()).filter(|n| pool_attrs.contains(*n)).collect();
            return Err(PlanError(format!(
                "the attribute {a:?} is not in both the profile and the pool; attributes in both: {}",
                if both.is_empty() { "none".to_string() } else { both.join(", ") }
            )));
        }
    }
    match (&draft.size, &draft.calculator) {
        (Some(_), Some(_)) => return Err(PlanError("give either a size or the size calculator, not both".into())),
        (None, None) => return Err(PlanError("give a size or the size calculator".into())),
        (Some(0), _) => return Err(PlanError("the size must be at least 1".into())),
        _ => {}
    }
    if let Some(c) = &draft.calculator {
        wilson_sample_size(c.expected_accuracy, c.half_width, c.confidence).map_err(|e| PlanError(e.reason))?;
        match (&c.key_attribute, c.key_half_width) {
            (Some(k), Some(h)) => {
                if !draft.attributes.contains(k) {
                    return Err(PlanError(format!("the key attribute {k:?} must be one of the stratification attributes")));
                }
                wilson_sample_size(c.expected_accuracy, h, c.confidence).map_err(|e| PlanError(e.reason))?;
            }
            (None, None) => {}
            _ => return Err(PlanError("give both key_attribute and key_half_width, or neither".into())),
        }
    }
    if let Some(w) = draft.must_include.weight_at_least {
        if !w.is_finite() {
            return Err(PlanError("weight_at_least must be a number".into()));
        }
    }
    Ok(())
}

/// The size the draft asks for, and what drove it.
pub fn plan_size(draft: &Draft, production_by_key_value: &BTreeMap<String, f64>) -> Result<(u64, SizeDriver), PlanError> {
    if let Some(n) = draft.size {
        return Ok((
            n,
            SizeDriver { requirement: "size".into(), message: format!("size {n} as given"), overall: None, per_value: vec![] },
        ));
    }
    let c = draft.calculator.as_ref().expect("validated: size or calculator");
    let overall = wilson_sample_size(c.expected_accuracy, c.half_width, c.confidence).map_err(|e| PlanError(e.reason))?;
    let mut per_value = Vec::new();
    if let (Some(_), Some(h)) = (&c.key_attribute, c.key_half_width) {
        let needed = wilson_sample_size(c.expected_accuracy, h, c.confidence).map_err(|e| PlanError(e.reason))?;
        let total: f64 = production_by_key_value.values().sum();
        for (value, count) in production_by_key_value {
            let share = if total > 0.0 { count / total } else { 0.0 };
            if share <= 0.0 {
                continue;
            }
            per_value.push(KeyValueNeed {
                value: value.clone(),
                production_share: share,
                needed,
                total: (needed as f64 / share - 1e-9).ceil() as u64,
            });
        }
    }
    let worst = per_value.iter().max_by(|a, b| a.total.cmp(&b.total).then(b.value.cmp(&a.value)));
    match worst {
        Some(w) if w.total > overall => {
            let c_key = c.key_attribute.as_deref().unwrap_or("");
            let message = format!(
                "{c_key}={} drove the size: ±{:.1} points for it needs {} of its items, and at its production share \
                 {:.1}% that is {} in all (the overall ±{:.1} points needs {overall})",
                w.value,
                c.key_half_width.unwrap_or(0.0) * 100.0,
                w.needed,
                w.production_share * 100.0,
                w.total,
                c.half_width * 100.0
            );
            let total = w.total;
            Ok((total, SizeDriver { requirement: "key_attribute".into(), message, overall: Some(overall), per_value }))
        }
        _ => {
            let message = format!(
                "the overall ±{:.1} points at expected accuracy {} drove the size: {overall} items",
                c.half_width * 100.0, c.expected_accuracy
            );
            Ok((overall, SizeDriver { requirement: "overall".into(), message, overall: Some(overall), per_value }))
        }
    }
}

/// Builds the plan for `draft` over the profile's cells and the pool.
pub fn build_plan(
    draft: &Draft,
    profile_attrs: &[ProfileAttribute],
    profile_cells: &[(Vec<String>, f64)],
    pool: &PoolView<'_>,
    this_devset: Option<i64>,
) -> Result<Planned, PlanError> {
    let cols: Vec<usize> = draft
        .attributes
        .iter()
        .map(|a| profile_attrs.iter().position(|p| &p.name == a).expect("validated"))
        .collect();
    let attrs: Vec<&ProfileAttribute> = cols.iter().map(|&c| &profile_attrs[c]).collect();
    let production = production_cells(&cols, profile_cells);

    // Eligible pool, by stratum: one pass over the index's arrays (see `index`).
    let cats = Categories::new(pool.index, &attrs)?;
    let bad_license = PoolIndex::flags(&pool.index.licenses, &draft.exclude.licenses);
    let bad_source = PoolIndex::flags(&pool.index.sources, &draft.exclude.sources);
    let mut must_positions: Vec<usize> = pool.must_external.iter().map(|(_, p)| *p).collect();
    must_positions.sort_unstable();
    let (mut members, mut musts) = (pool.members.iter().peekable(), must_positions.iter().peekable());
    let mut excluded = Excluded { license: 0, source: 0, other_devset: 0 };
    let mut strata_index: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    for values in production.keys() {
        let next = strata_index.len();
        strata_index.entry(values.clone()).or_insert(next);
    }
    // Pool strata by code first (a hash per item), named once per stratum afterwards.
    let mut by_code: HashMap<u128, usize> = HashMap::new();
    let mut codes: Vec<u128> = Vec::new();
    let mut picked: Vec<(usize, usize, bool)> = Vec::new();
    let mut eligible_at = vec![false; pool.index.len()];
    let index = pool.index;
    for pos in 0..index.len() {
        let devset = match members.peek() {
            Some(&&(p, d)) if p == pos => {
                members.next();
                Some(d)
            }
            _ => None,
        };
        let listed = match musts.peek() {
            Some(&&p) if p == pos => {
                while musts.peek().is_some_and(|&&p| p == pos) {
                    musts.next();
                }
                true
            }
            _ => false,
        };
        if devset.is_some_and(|d| Some(d) != this_devset) {
            excluded.other_devset += 1;
            continue;
        }
        if index.license[pos] != NONE && bad_license[index.license[pos] as usize] {
            excluded.license += 1;
            continue;
        }
        if index.source[pos] != NONE && bad_source[index.source[pos] as usize] {
            excluded.source += 1;
            continue;
        }
        eligible_at[pos] = true;
        let code = cats.code(pos);
        let next = codes.len();
        let local = *by_code.entry(code).or_insert_with(|| {
            codes.push(code);
            next
        });
        let must_include = draft.must_include.weight_at_least.is_some_and(|w| index.weight[pos] >= w) || listed;
        picked.push((pos, local, must_include));
    }
    if let Some(missing) = draft
        .must_include
        .external_ids
        .iter()
        .find(|id| !pool.must_external.iter().any(|(e, p)| e == *id && eligible_at[*p]))
    {
        return Err(PlanError(format!(
            "the must-include external id {missing:?} is not an eligible item of the pool (unknown, excluded, or in another dev set)"
        )));
    }
    let local_values: Vec<Vec<String>> = codes.iter().map(|&c| cats.values(c)).collect();
    for values in &local_values {
        let next = strata_index.len();
        strata_index.entry(values.clone()).or_insert(next);
    }
    // Strata in key order (the allocation's tie-break order), so the plan reads sorted.
    let mut ordered: Vec<(String, Vec<String>)> =
        strata_index.keys().map(|v| (stratum_key(&draft.attributes, v), v.clone())).collect();
    ordered.sort();
    let position: HashMap<&Vec<String>, usize> = ordered.iter().enumerate().map(|(i, (_, v))| (v, i)).collect();
    let local_to_ordered: Vec<usize> = local_values.iter().map(|v| position[v]).collect();
    let mut available = vec![0u64; ordered.len()];
    let mut must = vec![0u64; ordered.len()];
    let mut eligible = Vec::with_capacity(picked.len());
    for (pos, local, must_include) in picked {
        let s = local_to_ordered[local];
        available[s] += 1;
        must[s] += must_include as u64;
        eligible.push(Eligible { id: index.ids[pos], stratum: s, must_include });
    }
    let eligible_items = eligible.len() as u64;

    // Size.
    let key_col = draft.calculator.as_ref().and_then(|c| c.key_attribute.as_ref()).and_then(|k| draft.attributes.iter().position(|a| a == k));
    let mut by_key_value: BTreeMap<String, f64> = BTreeMap::new();
    if let Some(k) = key_col {
        for (values, count) in &production {
            *by_key_value.entry(values[k].clone()).or_insert(0.0) += count;
        }
    }
    let (size, size_driver) = plan_size(draft, &by_key_value)?;
    if size > eligible_items {
        return Err(PlanError(format!(
            "a dev set of {size} items is larger than the eligible pool ({eligible_items} items of {} after exclusions); \
             import more items or lower the size",
            pool.index.len()
        )));
    }

    let request = AllocationRequest {
        n: size,
        min_per_stratum: (draft.min_per_stratum > 0).then_some(draft.min_per_stratum),
        strata: ordered
            .iter()
            .enumerate()
            .map(|(i, (key, values))| Stratum {
                key: key.clone(),
                production: production.get(values).copied().unwrap_or(0.0),
                available: available[i],
            })
            .collect(),
    };
    let allocation = allocate_strata(&request).map_err(|e| PlanError(e.to_string()))?;
    let total_production: f64 = production.values().sum();
    let mut messages = Vec::new();
    let strata: Vec<PlanStratum> = ordered
        .iter()
        .zip(&allocation.strata)
        .enumerate()
        .map(|(i, ((key, values), a))| {
            let prod = request.strata[i].production;
            let shortfall = a.requested.saturating_sub(a.allocated);
            let message = (shortfall > 0).then(|| {
                format!(
                    "{}: {} of {} — import more {} items",
                    values.join(" × "),
                    a.allocated,
                    a.requested,
                    values.join(" ")
                )
            });
            if let Some(m) = &message {
                messages.push(m.clone());
            }
            PlanStratum {
                key: key.clone(),
                values: values.clone(),
                production: prod,
                production_share: if total_production > 0.0 { prod / total_production } else { 0.0 },
                requested: a.requested,
                available: available[i],
                must_include: must[i],
                allocated: a.allocated,
                shortfall,
                message,
            }
        })
        .collect();
    let p: Vec<(Vec<String>, f64)> = production.iter().map(|(v, c)| (v.clone(), *c)).collect();
    let q: Vec<(Vec<String>, f64)> = strata.iter().map(|s| (s.values.clone(), s.allocated as f64)).collect();
    let (expected, expected_joint) = match slice_distances(&draft.attributes, &p, &q) {
        Ok(d) => (
            d.marginals.iter().map(|(a, d)| attribute_distance(a, d)).collect(),
            attribute_distance("joint", &d.joint),
        ),
        Err(e) => return Err(PlanError(format!("the expected distances are undefined: {}", e.reason))),
    };
    Ok(Planned {
        plan: Plan {
            attributes: draft.attributes.clone(),
            size,
            size_driver,
            min_per_stratum: draft.min_per_stratum,
            pool_items: pool.index.len() as u64,
            eligible_items,
            excluded,
            strata,
            total: allocation.total,
            shortfall: allocation.shortfall,
            expected,
            expected_joint,
            messages,
        },
        eligible,
    })
}

/// Wilson half-width at the expected accuracy over n items (None when n is 0).
pub fn half_width(accuracy: f64, n: u64, confidence: f64) -> Option<f64> {
    let successes = (accuracy * n as f64).round() as u64;
    wilson_interval(successes.min(n), n, confidence).ok().map(|i| (i.upper - i.lower) / 2.0)
}
