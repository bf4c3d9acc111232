//! Allocating a dev set of size n over strata (combinations of slice attributes) so that it
//! matches production.
//!
//! 1. Every stratum first gets min(m, available), m being the optional minimum per stratum.
//!    (If those minimums alone exceed n, n is shared out equally instead, largest remainders
//!    and key order deciding who gets the odd ones.)
//! 2. The rest is shared in proportion to production counts, rounded by largest remainder
//!    (Hamilton), ties broken by stratum key order.
//! 3. A stratum that cannot take its share passes the shortfall on, again in proportion to
//!    production, to the strata that still have items, until n is reached or no stratum with
//!    production has items left. Strata with zero production get only the minimum.
//!
//! Production counts may be anywhere in the finite range, up to the largest float: shares are
//! computed from counts divided by (a power of two near) the largest one, so no sum overflows.
//!
//! "Requested" is what the same procedure gives when every stratum has unlimited items: the
//! production-matched target that availability may force the allocation away from.

use super::overflow_safe_scale;
use serde::Serialize;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct Stratum {
    pub key: String,
    /// Production volume (a count or a share; only ratios matter).
    pub production: f64,
    /// Items available to sample in this stratum.
    pub available: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct AllocationRequest {
    pub n: u64,
    pub min_per_stratum: Option<u64>,
    pub strata: Vec<Stratum>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StratumAllocation {
    pub key: String,
    pub requested: u64,
    pub allocated: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Allocation {
    /// In the order of the request.
    pub strata: Vec<StratumAllocation>,
    pub total: u64,
    /// n − total: what could not be allocated for lack of items.
    pub shortfall: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub enum AllocationError {
    DuplicateKey(String),
    BadProduction { key: String, value: f64 },
}

impl fmt::Display for AllocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocationError::DuplicateKey(k) => write!(f, "stratum {k:?} appears twice"),
            AllocationError::BadProduction { key, value } => {
                write!(f, "stratum {key:?} has production {value}; it must be a finite number ≥ 0")
            }
        }
    }
}

impl std::error::Error for AllocationError {}

pub fn allocate_strata(request: &AllocationRequest) -> Result<Allocation, AllocationError> {
    let strata = &request.strata;
    for s in strata {
        if !(s.production.is_finite() && s.production >= 0.0) {
            return Err(AllocationError::BadProduction { key: s.key.clone(), value: s.production });
        }
    }
    // Rank of each stratum in key order, for tie-breaking.
    let mut by_key: Vec<usize> = (0..strata.len()).collect();
    by_key.sort_by(|&a, &b| strata[a].key.cmp(&strata[b].key));
    for w in by_key.windows(2) {
        if strata[w[0]].key == strata[w[1]].key {
            return Err(AllocationError::DuplicateKey(strata[w[0]].key.clone()));
        }
    }
    let mut key_rank = vec![0usize; strata.len()];
    for (rank, &s) in by_key.iter().enumerate() {
        key_rank[s] = rank;
    }
    let production: Vec<f64> = strata.iter().map(|s| s.production).collect();
    let available: Vec<u64> = strata.iter().map(|s| s.available).collect();
    let unlimited = vec![u64::MAX; strata.len()];
    let requested = allocate(request.n, request.min_per_stratum, &production, &unlimited, &key_rank);
    let allocated = allocate(request.n, request.min_per_stratum, &production, &available, &key_rank);
    let total: u64 = allocated.iter().sum();
    Ok(Allocation {
        strata: strata
            .iter()
            .zip(requested.iter().zip(&allocated))
            .map(|(s, (&requested, &allocated))| StratumAllocation { key: s.key.clone(), requested, allocated })
            .collect(),
        total,
        shortfall: request.n - total,
    })
}

fn allocate(n: u64, minimum: Option<u64>, production: &[f64], available: &[u64], key_rank: &[usize]) -> Vec<u64> {
    let k = production.len();
    let mut allocated = vec![0u64; k];
    let base: Vec<u64> = available.iter().map(|&a| a.min(minimum.unwrap_or(0))).collect();
    let base_total: u128 = base.iter().map(|&b| b as u128).sum();
    if base_total > n as u128 {
        let mut caps = base;
        let equal = vec![1.0; k];
        fill(n, &equal, &mut caps, &mut allocated, key_rank);
        return allocated;
    }
    let mut caps: Vec<u64> = available.iter().zip(&base).map(|(a, b)| a - b).collect();
    allocated.copy_from_slice(&base);
    fill(n - base_total as u64, production, &mut caps, &mut allocated, key_rank);
    allocated
}

/// Shares `amount` in proportion to `weights` among strata with capacity left, passing any
/// share a stratum cannot take on to the others, round after round.
fn fill(mut amount: u64, weights: &[f64], caps: &mut [u64], allocated: &mut [u64], key_rank: &[usize]) {
    let mut active: Vec<usize> = (0..weights.len()).filter(|&s| caps[s] > 0 && weights[s] > 0.0).collect();
    while amount > 0 && !active.is_empty() {
        let shares = largest_remainder(amount, weights, &active, key_rank);
        for (&s, share) in active.iter().zip(shares) {
            let given = share.min(caps[s]);
            allocated[s] += given;
            caps[s] -= given;
            amount -= given;
        }
        active.retain(|&s| caps[s] > 0);
    }
}

/// Hamilton's method: floors of the exact quotas, then one more to each of the largest
/// fractional parts (ties by key order) until the shares add up to `amount`.
fn largest_remainder(amount: u64, weights: &[f64], active: &[usize], key_rank: &[usize]) -> Vec<u64> {
    // Weights may be anywhere up to the largest float: divided by (a power of two near) the
    // largest active one first, their sum is below twice the number of strata and cannot
    // overflow to infinity (which made every quota 0 and handed the whole amount out in key
    // order). The division is exact, so ordinary weights give the very same quotas.
    let scale = overflow_safe_scale(active.iter().map(|&s| weights[s]).fold(0.0, f64::max));
    let scaled: Vec<f64> = active.iter().map(|&s| weights[s] / scale).collect();
    let total_weight: f64 = scaled.iter().sum();
    let quotas: Vec<f64> = scaled.iter().map(|w| amount as f64 * (w / total_weight)).collect();
    let mut shares: Vec<u64> = quotas.iter().map(|q| q.floor() as u64).collect();
    let given: u64 = shares.iter().sum();
    let fraction = |j: usize| quotas[j] - quotas[j].floor();
    // Largest fraction first, ties by key order: a total order, so the top k are well defined.
    let by_priority = |a: &usize, b: &usize| {
        fraction(*b).total_cmp(&fraction(*a)).then(key_rank[active[*a]].cmp(&key_rank[active[*b]]))
    };
    let mut order: Vec<usize> = (0..active.len()).collect();
    if given <= amount {
        // The leftover is below the number of strata (each fraction is below 1), up to
        // rounding in the quotas; only the top `leftover` need finding, not a full sort.
        let leftover = (amount - given) as usize;
        if leftover == 0 {
            return shares;
        }
        if leftover < order.len() {
            order.select_nth_unstable_by(leftover - 1, by_priority);
            order.truncate(leftover);
        } else {
            order.sort_by(by_priority);
        }
        for j in order.iter().cycle().take(leftover) {
            shares[*j] += 1;
        }
    } else {
        // Rounding pushed the floors past the amount: take back from the smallest fractions.
        order.sort_by(by_priority);
        let mut excess = given - amount;
        for &j in order.iter().rev().cycle() {
            if excess == 0 {
                break;
            }
            if shares[j] > 0 {
                shares[j] -= 1;
                excess -= 1;
            }
        }
    }
    shares
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::test_support::non_negative_float;
    use proptest::prelude::*;

    fn stratum(key: &str, production: f64, available: u64) -> Stratum {
        Stratum { key: key.into(), production, available }
    }

    fn run(n: u64, min: Option<u64>, strata: Vec<Stratum>) -> Vec<(u64, u64)> {
        let a = allocate_strata(&AllocationRequest { n, min_per_stratum: min, strata }).unwrap();
        a.strata.iter().map(|s| (s.requested, s.allocated)).collect()
    }

    #[test]
    fn proportional_with_shortfall_passed_on() {
        // Shares 5 / 3 / 2; b has only 2 items, its missing 1 goes to a and c in ratio 50:20,
        // which rounds to a.
        let got = run(10, None, vec![stratum("a", 50.0, 100), stratum("b", 30.0, 2), stratum("c", 20.0, 100)]);
        assert_eq!(got, vec![(5, 6), (3, 2), (2, 2)]);
    }

    #[test]
    fn largest_remainder_with_key_order_ties() {
        // Three equal strata, n = 4: quotas 1.33 each; the extra one goes to the first key.
        let got = run(4, None, vec![stratum("z", 1.0, 10), stratum("m", 1.0, 10), stratum("a", 1.0, 10)]);
        assert_eq!(got, vec![(1, 1), (1, 1), (2, 2)]);
        // Hamilton, not rounding each: 7 over 0.45/0.45/0.1 → quotas 3.15, 3.15, 0.7 → 3, 3, 1.
        let got = run(7, None, vec![stratum("a", 45.0, 10), stratum("b", 45.0, 10), stratum("c", 10.0, 10)]);
        assert_eq!(got, vec![(3, 3), (3, 3), (1, 1)]);
    }

    #[test]
    fn minimum_per_stratum_comes_first() {
        // Requested: 2 each, then 4 by 8:1:1 → 3.2, 0.4, 0.4 → 3, 0, 0 plus one to b (tie with
        // c, key order). Allocated: c has only 1, so 5 remain after the minimums, shared by a
        // and b alone (c is exhausted) in ratio 8:1 → 4.44, 0.56 → 4 and 1.
        let got = run(10, Some(2), vec![stratum("a", 80.0, 100), stratum("b", 10.0, 100), stratum("c", 10.0, 1)]);
        assert_eq!(got, vec![(5, 6), (3, 3), (2, 1)]);
    }

    #[test]
    fn minimums_larger_than_n_are_shared_equally() {
        let got = run(3, Some(5), vec![stratum("a", 1.0, 10), stratum("b", 100.0, 10), stratum("c", 0.0, 10)]);
        assert_eq!(got, vec![(1, 1), (1, 1), (1, 1)]);
    }

    #[test]
    fn running_out_reports_a_shortfall() {
        let a = allocate_strata(&AllocationRequest {
            n: 10,
            min_per_stratum: None,
            strata: vec![stratum("a", 1.0, 3), stratum("b", 1.0, 2), stratum("idle", 0.0, 50)],
        })
        .unwrap();
        assert_eq!(a.total, 5);
        assert_eq!(a.shortfall, 5);
        assert_eq!(a.strata[2].allocated, 0);
    }

    #[test]
    fn bad_requests() {
        let dup = AllocationRequest { n: 1, min_per_stratum: None, strata: vec![stratum("a", 1.0, 1), stratum("a", 1.0, 1)] };
        assert_eq!(allocate_strata(&dup), Err(AllocationError::DuplicateKey("a".into())));
        let neg = AllocationRequest { n: 1, min_per_stratum: None, strata: vec![stratum("a", -1.0, 1)] };
        assert!(matches!(allocate_strata(&neg), Err(AllocationError::BadProduction { .. })));
        let nan = AllocationRequest { n: 1, min_per_stratum: None, strata: vec![stratum("a", f64::NAN, 1)] };
        assert!(allocate_strata(&nan).is_err());
        let empty = AllocationRequest { n: 5, min_per_stratum: None, strata: vec![] };
        assert_eq!(allocate_strata(&empty).unwrap().shortfall, 5);
    }

    #[test]
    fn production_near_the_largest_float_is_shared_in_proportion() {
        // The sum of these overflows to infinity: every quota became 0 and the 100 were dealt
        // out in key order (34 / 33 / 33).
        let got = run(100, None, vec![stratum("a", f64::MAX, 1000), stratum("b", f64::MAX, 1000), stratum("c", f64::MAX / 2.0, 1000)]);
        assert_eq!(got, vec![(40, 40), (40, 40), (20, 20)]);
        // Subnormal counts are counts too.
        let tiny = f64::from_bits(1);
        let got = run(10, None, vec![stratum("a", 3.0 * tiny, 100), stratum("b", tiny, 100), stratum("c", 0.0, 100)]);
        assert_eq!(got, vec![(8, 8), (2, 2), (0, 0)]);
        // A stratum whose production is a vanishing share still takes what others cannot.
        let got = run(10, None, vec![stratum("a", f64::MAX, 0), stratum("b", tiny, 100)]);
        assert_eq!(got, vec![(10, 0), (0, 10)]);
    }

    proptest! {
        /// Over the whole range of production counts (0, subnormals, up to the largest float):
        /// the requested shares are the Hamilton quotas (within one of n·p/Σp), add up to n,
        /// and the allocation respects availability and adds up to what it can.
        #[test]
        fn shares_follow_production_over_the_whole_float_range(
            n in 0u64..10_000,
            strata in proptest::collection::vec((non_negative_float(), 0u64..500), 1..12),
        ) {
            let strata: Vec<Stratum> = strata.iter().enumerate()
                .map(|(i, &(p, a))| stratum(&format!("s{i:02}"), p, a)).collect();
            let a = allocate_strata(&AllocationRequest { n, min_per_stratum: None, strata: strata.clone() }).unwrap();
            let max = strata.iter().map(|s| s.production).fold(0.0, f64::max);
            let requested: u64 = a.strata.iter().map(|s| s.requested).sum();
            if max == 0.0 {
                prop_assert_eq!(requested, 0);
                prop_assert_eq!(a.total, 0);
            } else {
                prop_assert_eq!(requested, n);
                // Shares of the largest production, in ordinary floats (not a power of two:
                // the reference does not share the implementation's scaling).
                let share: Vec<f64> = strata.iter().map(|s| s.production / max).collect();
                let total_share: f64 = share.iter().sum();
                for (s, out) in share.iter().zip(&a.strata) {
                    let quota = n as f64 * s / total_share;
                    prop_assert!((out.requested as f64 - quota).abs() < 1.0 + 1e-9 * n as f64,
                        "requested {} for quota {quota} ({:?})", out.requested, a);
                }
                let with_production: u64 = strata.iter().filter(|s| s.production > 0.0).map(|s| s.available).sum();
                prop_assert_eq!(a.total, n.min(with_production));
            }
            prop_assert_eq!(a.shortfall, n - a.total);
            for (s, out) in strata.iter().zip(&a.strata) {
                prop_assert!(out.allocated <= s.available);
            }
        }

        /// With a minimum per stratum, over the whole range of production counts: every
        /// stratum gets its minimum (or all it has) when the minimums fit in n, nobody gets
        /// more than it has, and the total is n whenever the items exist.
        #[test]
        fn minimums_hold_over_the_whole_float_range(
            n in 0u64..2_000,
            min in 0u64..20,
            strata in proptest::collection::vec((non_negative_float(), 0u64..100), 1..12),
        ) {
            let strata: Vec<Stratum> = strata.iter().enumerate()
                .map(|(i, &(p, a))| stratum(&format!("s{i:02}"), p, a)).collect();
            let a = allocate_strata(&AllocationRequest { n, min_per_stratum: Some(min), strata: strata.clone() }).unwrap();
            prop_assert!(a.total <= n);
            for (s, out) in strata.iter().zip(&a.strata) {
                prop_assert!(out.allocated <= s.available);
                if min * strata.len() as u64 <= n {
                    prop_assert!(out.allocated >= min.min(s.available), "{:?}", a);
                    prop_assert!(out.requested >= min, "{:?}", a);
                }
            }
            if strata.iter().all(|s| s.production > 0.0) {
                prop_assert_eq!(a.total, n.min(strata.iter().map(|s| s.available).sum()));
                prop_assert_eq!(a.strata.iter().map(|s| s.requested).sum::<u64>(), n);
            }
        }

        #[test]
        fn allocation_sums_to_n_when_enough_items_exist(
            n in 0u64..500,
            min in proptest::option::of(0u64..5),
            strata in proptest::collection::vec((1u32..1000, 0u64..200), 1..30),
        ) {
            let strata: Vec<Stratum> = strata.iter().enumerate()
                .map(|(i, &(p, a))| stratum(&format!("s{i:02}"), p as f64, a)).collect();
            let available: u64 = strata.iter().map(|s| s.available).sum();
            let a = allocate_strata(&AllocationRequest { n, min_per_stratum: min, strata: strata.clone() }).unwrap();
            prop_assert_eq!(a.total, n.min(available));
            prop_assert_eq!(a.strata.iter().map(|s| s.requested).sum::<u64>(), n);
            for (s, out) in strata.iter().zip(&a.strata) {
                prop_assert!(out.allocated <= s.available);
                if let Some(m) = min {
                    if m * strata.len() as u64 <= n {
                        prop_assert!(out.allocated >= m.min(s.available));
                    }
                }
            }
        }
    }
}
