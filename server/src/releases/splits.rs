//! Splits inside a release: dev and test (and any other named parts) drawn from the same
//! distribution, with every group (a user, a thread: a `meta` attribute) wholly in one split.
//!
//! Items without a group are groups of one. Groups are dealt in a seeded random order, largest
//! first (big groups are the hard ones to place), each to the split that is furthest below its
//! target share over the strata the group's items belong to; ties go to the split listed first.
//! With groups of one this is a stratified split whose per-stratum counts are within one of
//! the target; with groups, as close as whole groups allow.
use std::collections::{BTreeMap, HashMap};

use crate::stats::rng::SeededRng;
use crate::stats::Undefined;

/// An item to place: its stratum key and its group, if any.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitItem {
    pub stratum: String,
    pub group: Option<String>,
}

/// The split index of each item, in item order. `shares` are the splits' target shares (they
/// are normalised: 1:1 and 0.5:0.5 are the same).
pub fn grouped_stratified_split(items: &[SplitItem], shares: &[f64], seed: u64) -> Result<Vec<usize>, Undefined> {
    if shares.is_empty() || shares.iter().any(|s| !s.is_finite() || *s <= 0.0) {
        return Err(Undefined::new("every split needs a positive share"));
    }
    let total_share: f64 = shares.iter().sum();
    let shares: Vec<f64> = shares.iter().map(|s| s / total_share).collect();

    // Groups in first-appearance order, each with its items; ungrouped items alone.
    let mut groups: Vec<Vec<usize>> = Vec::new();
    let mut by_name: HashMap<&str, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        match &item.group {
            Some(g) => {
                let at = *by_name.entry(g.as_str()).or_insert_with(|| {
                    groups.push(Vec::new());
                    groups.len() - 1
                });
                groups[at].push(i);
            }
            None => groups.push(vec![i]),
        }
    }
    let mut stratum_total: BTreeMap<&str, f64> = BTreeMap::new();
    for item in items {
        *stratum_total.entry(item.stratum.as_str()).or_default() += 1.0;
    }

    let mut order: Vec<usize> = (0..groups.len()).collect();
    SeededRng::new(seed).shuffle(&mut order);
    // Stable: equal sizes keep their shuffled order.
    order.sort_by_key(|&g| std::cmp::Reverse(groups[g].len()));

    // placed[split][stratum]: items of the stratum already in the split.
    let mut placed: Vec<HashMap<&str, f64>> = vec![HashMap::new(); shares.len()];
    let mut split_of = vec![0usize; items.len()];
    for g in order {
        let mut composition: BTreeMap<&str, f64> = BTreeMap::new();
        for &i in &groups[g] {
            *composition.entry(items[i].stratum.as_str()).or_default() += 1.0;
        }
        // Deficit of split s for this group: how far its strata are below their target in s,
        // weighted by how many of the group's items are in each.
        let deficit = |s: usize| -> f64 {
            composition
                .iter()
                .map(|(st, n)| n * (shares[s] * stratum_total[st] - placed[s].get(st).copied().unwrap_or(0.0)))
                .sum()
        };
        let mut best = 0;
        for s in 1..shares.len() {
            if deficit(s) > deficit(best) + 1e-9 {
                best = s;
            }
        }
        for (st, n) in composition {
            *placed[best].entry(st).or_default() += n;
        }
        for &i in &groups[g] {
            split_of[i] = best;
        }
    }
    Ok(split_of)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(stratum: &str, group: Option<&str>) -> SplitItem {
        SplitItem { stratum: stratum.into(), group: group.map(String::from) }
    }

    #[test]
    fn ungrouped_items_split_evenly_within_every_stratum() {
        let items: Vec<SplitItem> =
            (0..1000).map(|i| item(["eu", "us", "apac"][i % 3], None)).collect();
        let split = grouped_stratified_split(&items, &[1.0, 1.0], 9).unwrap();
        for st in ["eu", "us", "apac"] {
            let in_dev = items.iter().zip(&split).filter(|(it, s)| it.stratum == st && **s == 0).count();
            let all = items.iter().filter(|it| it.stratum == st).count();
            assert!((in_dev as i64 - (all / 2) as i64).abs() <= 1, "{st}: {in_dev} of {all}");
        }
        // Reproducible from the seed, different for another.
        assert_eq!(split, grouped_stratified_split(&items, &[1.0, 1.0], 9).unwrap());
        assert_ne!(split, grouped_stratified_split(&items, &[1.0, 1.0], 10).unwrap());
    }

    #[test]
    fn a_group_never_straddles_two_splits() {
        let items: Vec<SplitItem> = (0..900)
            .map(|i| {
                let user = format!("u{}", (i * 7) % 150); // 150 users, 6 items each, mixed strata
                item(["a", "b"][i % 2], Some(&user))
            })
            .collect();
        let split = grouped_stratified_split(&items, &[0.7, 0.3], 1).unwrap();
        let mut seen: HashMap<&str, usize> = HashMap::new();
        for (it, s) in items.iter().zip(&split) {
            let g = it.group.as_deref().unwrap();
            assert_eq!(*seen.entry(g).or_insert(*s), *s, "group {g} is in two splits");
        }
        let dev = split.iter().filter(|s| **s == 0).count();
        assert!((dev as f64 / 900.0 - 0.7).abs() < 0.02, "{dev}");
    }

    #[test]
    fn shares_must_be_positive() {
        assert!(grouped_stratified_split(&[], &[], 0).is_err());
        assert!(grouped_stratified_split(&[], &[1.0, 0.0], 0).is_err());
        assert_eq!(grouped_stratified_split(&[], &[1.0], 0).unwrap(), Vec::<usize>::new());
    }
}
