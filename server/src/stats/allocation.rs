//! Allocating a dev set of size n over strata (combinations of slice attributes) so that it
//! matches production, with a minimum per stratum as a *floor*, not an addition.
//!
//! Before rounding, stratum s gets
//!
//! ```text
//!     x_s = clamp(λ · production_s, floor_s, available_s),   floor_s = min(minimum, available_s)
//! ```
//!
//! where λ is the one value that makes the x_s add up to n (water-filling): strata whose
//! proportional share is below their floor sit at it, strata short of items sit at their
//! availability, all others are exactly proportional to production. A stratum with zero
//! production gets its floor. When even every stratum at its upper bound (availability; the
//! floor for zero production) falls short of n, each sits there and the shortfall is reported.
//!
//! Why floors and not "minimum first, then share the rest" (what this module did before): the
//! addition over-represents every small stratum even when its proportional share already exceeds
//! the minimum. With floors, a minimum that every stratum's share already meets changes nothing.
//!
//! λ is solved exactly rather than by re-sharing (fix every stratum that crosses a bound, share
//! the rest again, repeat), which can fix too many strata at once and land elsewhere: the total
//! S(λ) = Σ x_s(λ) is continuous, non-decreasing and linear between the breakpoints
//! floor_s/production_s (a stratum starts to grow) and available_s/production_s (it stops).
//! A binary search over the sorted breakpoints finds the first one at which S reaches n, in
//! O(k log k). The strata strictly between their bounds in the segment before it then share
//! R = n − C (C: the integer sum of the strata at a bound) in proportion to production (quota
//! R·p_s/P, P their production, which is λ·p_s), rounded by largest remainder (Hamilton) with
//! ties broken by stratum key: each quota lies between two integer bounds, so neither its floor
//! nor its ceiling crosses one.
//!
//! Floors that add up to more than n are an error: no allocation of n can honour them.
//!
//! Production counts may be anywhere in the finite range, up to the largest float: the search
//! only compares ratios of two counts, and the shares divide by (a power of two near) the
//! largest count first, so no sum overflows and a count of 1 next to the largest float still
//! counts.
//!
//! "Requested" is what the same rule gives with unlimited items (floor = the minimum for every
//! stratum): the production-matched target that availability may force the allocation away
//! from. When those unlimited floors alone exceed n (possible only when some strata hold fewer
//! items than the minimum), requested uses the actual floors min(minimum, available) instead.

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
    /// Σ min(minimum, available) > n.
    FloorsExceedN { n: u64, minimum: u64, strata: usize, floors: u128 },
}

impl fmt::Display for AllocationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AllocationError::DuplicateKey(k) => write!(f, "stratum {k:?} appears twice"),
            AllocationError::BadProduction { key, value } => {
                write!(f, "stratum {key:?} has production {value}; it must be a finite number ≥ 0")
            }
            AllocationError::FloorsExceedN { n, minimum, strata, floors } => write!(
                f,
                "the minimum of {minimum} per stratum needs {floors} items over {strata} strata \
                 (each stratum's minimum or all its items, if fewer), more than the dev-set size {n}; \
                 lower the minimum or raise the size"
            ),
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
    let minimum = request.min_per_stratum.unwrap_or(0);
    let floors: Vec<u64> = strata.iter().map(|s| s.available.min(minimum)).collect();
    let floors_total: u128 = floors.iter().map(|&f| f as u128).sum();
    if floors_total > request.n as u128 {
        return Err(AllocationError::FloorsExceedN {
            n: request.n,
            minimum,
            strata: strata.len(),
            floors: floors_total,
        });
    }
    let production: Vec<f64> = strata.iter().map(|s| s.production).collect();
    let caps: Vec<Option<u64>> = strata.iter().map(|s| Some(s.available)).collect();
    let allocated = water_fill(request.n, &production, &floors, &caps, &key_rank);
    let unlimited_floor = minimum as u128 * strata.len() as u128;
    let requested_floors =
        if unlimited_floor <= request.n as u128 { vec![minimum; strata.len()] } else { floors.clone() };
    let requested = water_fill(request.n, &production, &requested_floors, &vec![None; strata.len()], &key_rank);
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

/// The allocation of `n` by x_s = clamp(λ·p_s, floor_s, cap_s), rounded (see the top of the
/// file). `cap` None is unlimited. Requires Σ floor ≤ n.
fn water_fill(n: u64, production: &[f64], floors: &[u64], caps: &[Option<u64>], key_rank: &[usize]) -> Vec<u64> {
    let k = production.len();
    // Upper bound of each stratum as λ → ∞: its cap, or its floor when it has no production.
    let top = |s: usize| if production[s] > 0.0 { caps[s] } else { Some(floors[s]) };
    if (0..k).all(|s| top(s).is_some()) {
        let most: u128 = (0..k).map(|s| top(s).unwrap() as u128).sum();
        if most <= n as u128 {
            return (0..k).map(|s| top(s).unwrap()).collect();
        }
    }
    // Breakpoints: at λ = floor/p a stratum leaves its floor (Enter), at λ = cap/p it reaches
    // its cap (Leave). Sorted by ln(bound) − ln(p), which no range of production can overflow
    // or underflow to a tie that is not one (a count of 1 next to the largest float).
    #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
    enum Event {
        Enter,
        Leave,
    }
    let mut events: Vec<(f64, Event, usize)> = Vec::with_capacity(2 * k);
    for s in (0..k).filter(|&s| production[s] > 0.0) {
        let ln_p = production[s].ln();
        events.push(((floors[s] as f64).ln() - ln_p, Event::Enter, s));
        if let Some(cap) = caps[s] {
            events.push(((cap as f64).ln() - ln_p, Event::Leave, s));
        }
    }
    // Enter before Leave at the same λ (a stratum whose floor is its cap passes through).
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    // S at the λ of event e: λ·p_s is bound_e·(p_s/p_e), a ratio of productions, which is
    // finite or +∞ (then clamped to the cap) and never needs a sum of productions.
    let bound = |(_, event, s): (f64, Event, usize)| match event {
        Event::Enter => floors[s] as f64,
        Event::Leave => caps[s].unwrap() as f64,
    };
    let total_at = |e: usize| -> f64 {
        let (b, t) = (bound(events[e]), events[e].2);
        (0..k)
            .map(|s| {
                let grown = if b == 0.0 || production[s] == 0.0 { 0.0 } else { b * (production[s] / production[t]) };
                grown.max(floors[s] as f64).min(caps[s].map_or(f64::INFINITY, |c| c as f64))
            })
            .sum()
    };
    // S is non-decreasing in λ: the first event at which it reaches n closes the segment that
    // holds the solution (binary search, O(k log k) in all).
    let (mut lo, mut hi) = (0, events.len());
    while lo < hi {
        let mid = (lo + hi) / 2;
        if total_at(mid) >= n as f64 {
            hi = mid;
        } else {
            lo = mid + 1;
        }
    }
    // Events before `lo` have happened: entered strata grow, left ones sit at their cap.
    let mut state = vec![0u8; k]; // 0 at floor, 1 in between, 2 at cap
    for &(_, event, s) in &events[..lo] {
        state[s] = if event == Event::Enter { 1 } else { 2 };
    }
    let fixed: u128 = (0..k)
        .map(|s| match state[s] {
            0 => floors[s] as u128,
            2 => caps[s].unwrap() as u128,
            _ => 0,
        })
        .sum();
    let mut x: Vec<u64> = (0..k)
        .map(|s| match state[s] {
            0 => floors[s],
            2 => caps[s].unwrap(),
            _ => 0,
        })
        .collect();
    let middle: Vec<usize> = (0..k).filter(|&s| state[s] == 1).collect();
    if middle.is_empty() {
        return x;
    }
    let rest = (n as u128).saturating_sub(fixed) as u64;
    // Scaled by the largest among them, so the sum cannot overflow.
    let scale = overflow_safe_scale(middle.iter().map(|&s| production[s]).fold(0.0, f64::max));
    let p_total: f64 = middle.iter().map(|&s| production[s] / scale).sum();
    let quotas: Vec<f64> = middle
        .iter()
        .map(|&s| {
            let q = snap_to_grid(rest as f64 * ((production[s] / scale) / p_total));
            // Within its bounds by construction; clamped against float rounding at a breakpoint.
            q.max(floors[s] as f64).min(caps[s].map_or(f64::INFINITY, |c| c as f64))
        })
        .collect();
    let shares = largest_remainder(rest, &middle, &quotas, floors, caps, key_rank);
    for (&s, share) in middle.iter().zip(shares) {
        x[s] = share;
    }
    x
}

/// A quota rounded to the nearest multiple of 2⁻²⁰. The same exact quota reaches this code
/// along different float paths (a stratum whose share is exactly its floor is fixed at it, or
/// shares with the others), a few ulps apart; without the snap those ulps, not the key order,
/// would break a tie of remainders (1/3 against 1/3) and a minimum every share meets would move
/// an item. Quotas at or above 2³² already have coarser spacing and stay as they are.
fn snap_to_grid(q: f64) -> f64 {
    const GRID: f64 = (1u64 << 20) as f64;
    if q < (1u64 << 32) as f64 { (q * GRID).round() / GRID } else { q }
}

/// Hamilton's method over the strata in between: floors of the quotas, then one more to each
/// of the largest fractional parts (ties by key order) until the shares add up to `amount`,
/// never past a stratum's cap nor below its floor.
fn largest_remainder(
    amount: u64,
    middle: &[usize],
    quotas: &[f64],
    floors: &[u64],
    caps: &[Option<u64>],
    key_rank: &[usize],
) -> Vec<u64> {
    let mut shares: Vec<u64> = quotas.iter().map(|q| q.floor() as u64).collect();
    let given: u64 = shares.iter().sum();
    let fraction = |j: usize| quotas[j] - quotas[j].floor();
    let by_priority = |a: &usize, b: &usize| {
        fraction(*b).total_cmp(&fraction(*a)).then(key_rank[middle[*a]].cmp(&key_rank[middle[*b]]))
    };
    let mut order: Vec<usize> = (0..middle.len()).collect();
    if given < amount {
        let mut leftover = amount - given;
        let room = |j: usize, share: u64| caps[middle[j]].is_none_or(|c| share < c);
        if (leftover as usize) < order.len() {
            // Only the top `leftover` are needed, not a full sort; fall back to it if any of
            // them has no room (possible only through float rounding at a bound).
            let take = leftover as usize;
            order.select_nth_unstable_by(take - 1, by_priority);
            order[..take].sort_by(by_priority);
            if order[..take].iter().all(|&j| room(j, shares[j])) {
                for &j in &order[..take] {
                    shares[j] += 1;
                }
                return shares;
            }
        }
        order.sort_by(by_priority);
        while leftover > 0 {
            let before = leftover;
            for &j in &order {
                if leftover > 0 && room(j, shares[j]) {
                    shares[j] += 1;
                    leftover -= 1;
                }
            }
            if before == leftover {
                break;
            }
        }
    } else if given > amount {
        // Rounding pushed the floors past the amount: take back from the smallest fractions.
        order.sort_by(by_priority);
        let mut excess = given - amount;
        while excess > 0 {
            let before = excess;
            for &j in order.iter().rev() {
                if excess > 0 && shares[j] > floors[middle[j]] {
                    shares[j] -= 1;
                    excess -= 1;
                }
            }
            if before == excess {
                break;
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
    fn minimum_per_stratum_is_a_floor() {
        // Requested (unlimited): shares 8 / 1 / 1 put b and c below the minimum 2; they sit at
        // it and a takes the other 6. Allocated: c has 1 item, so its floor and cap are 1; b's
        // share at λ = 7/80 is 0.875, so it sits at 2 and a takes 7.
        let got = run(10, Some(2), vec![stratum("a", 80.0, 100), stratum("b", 10.0, 100), stratum("c", 10.0, 1)]);
        assert_eq!(got, vec![(6, 7), (2, 2), (2, 1)]);
    }

    /// The issue's example: n = 300, minimum 10, four strata. Adding the minimum first landed
    /// at TVD ≈ 0.05 from production; with floors only the smallest stratum (proportional share
    /// 9) is lifted, and the dev set is within 0.005 of production.
    #[test]
    fn floors_are_not_additions() {
        let production = [5500.0, 3000.0, 1200.0, 300.0];
        let strata: Vec<Stratum> =
            production.iter().enumerate().map(|(i, &p)| stratum(&format!("s{i}"), p, 10_000)).collect();
        let a = allocate_strata(&AllocationRequest { n: 300, min_per_stratum: Some(10), strata }).unwrap();
        let allocated: Vec<f64> = a.strata.iter().map(|s| s.allocated as f64).collect();
        assert_eq!(allocated, [164.0, 90.0, 36.0, 10.0]);
        let tvd = crate::stats::distance::distribution_distance(&production, &allocated).unwrap().tvd;
        assert!(tvd < 0.005, "{tvd}");
        // The old rule (10 each, then 260 by production: 143, 78, 31.2, 7.8).
        let additive = [153.0, 88.0, 41.0, 18.0];
        let old = crate::stats::distance::distribution_distance(&production, &additive).unwrap().tvd;
        assert!(old > 0.04, "{old}");
    }

    #[test]
    fn zero_production_gets_its_floor_and_short_strata_their_availability() {
        // "new" has no production: it gets the minimum 3 and nothing more. "b" has 4 items for a
        // share of 45: it gives all 4 and a takes the rest of the proportional part.
        let got = run(
            100,
            Some(3),
            vec![stratum("a", 50.0, 1000), stratum("b", 45.0, 4), stratum("c", 5.0, 1000), stratum("new", 0.0, 1000)],
        );
        // Requested: 97 over 50:45:5 → 48.5, 43.65, 4.85 → 48, 44, 5 (remainders .5, .65, .85).
        // Allocated: b at 4, 93 over 50:5 → 84.55, 8.45 → 85, 8.
        assert_eq!(got, vec![(48, 85), (44, 4), (5, 8), (3, 3)]);
        // Even every stratum at its availability falls short: each gives all it has (a stratum
        // without production its floor) and the shortfall is reported.
        let a = allocate_strata(&AllocationRequest {
            n: 50,
            min_per_stratum: Some(2),
            strata: vec![stratum("a", 1.0, 10), stratum("b", 3.0, 5), stratum("idle", 0.0, 100)],
        })
        .unwrap();
        assert_eq!(a.strata.iter().map(|s| s.allocated).collect::<Vec<_>>(), [10, 5, 2]);
        assert_eq!((a.total, a.shortfall), (17, 33));
    }

    #[test]
    fn floors_above_n_are_an_error() {
        let request = AllocationRequest {
            n: 3,
            min_per_stratum: Some(5),
            strata: vec![stratum("a", 1.0, 10), stratum("b", 100.0, 10), stratum("c", 0.0, 1)],
        };
        let err = allocate_strata(&request).unwrap_err();
        assert_eq!(err, AllocationError::FloorsExceedN { n: 3, minimum: 5, strata: 3, floors: 11 });
        assert_eq!(
            err.to_string(),
            "the minimum of 5 per stratum needs 11 items over 3 strata (each stratum's minimum or all \
             its items, if fewer), more than the dev-set size 3; lower the minimum or raise the size"
        );
        // Floors are capped by availability: 5 + 5 + 1 = 11 fits in 11.
        assert!(allocate_strata(&AllocationRequest { n: 11, ..request }).is_ok());
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

    /// Found by `a_minimum_every_share_meets_changes_nothing`: s05's share is exactly the
    /// minimum 120 (4888 · 90 / 3666), and s01, s03, s04 and s06 tie at a remainder of 1/3. With
    /// the minimum, s05 sat at its floor and float noise gave the tied item to s04, not s01.
    #[test]
    fn a_share_exactly_at_the_minimum_keeps_key_order_ties() {
        let productions = [201.0, 520.0, 788.0, 250.0, 877.0, 90.0, 940.0];
        let strata: Vec<Stratum> =
            productions.iter().enumerate().map(|(i, &p)| stratum(&format!("s{i:02}"), p, 1_000_000)).collect();
        let expected = [268, 694, 1051, 333, 1169, 120, 1253];
        for min in [None, Some(120)] {
            let a = allocate_strata(&AllocationRequest { n: 4888, min_per_stratum: min, strata: strata.clone() }).unwrap();
            assert_eq!(a.strata.iter().map(|s| s.allocated).collect::<Vec<_>>(), expected, "minimum {min:?}");
        }
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
            let floors: u64 = strata.iter().map(|s| s.available.min(min)).sum();
            let result = allocate_strata(&AllocationRequest { n, min_per_stratum: Some(min), strata: strata.clone() });
            if floors > n {
                prop_assert!(matches!(result, Err(AllocationError::FloorsExceedN { .. })), "{:?}", result);
                return Ok(());
            }
            let a = result.unwrap();
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
            if min.unwrap_or(0) * strata.len() as u64 > n {
                return Ok(());
            }
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

        /// The water-filling rule itself, against a plain bisection for λ: every allocation is
        /// within its bounds and within 1 of clamp(λ·p, floor, available), and the total is n
        /// or everything the bounds allow.
        #[test]
        fn allocation_is_the_rounded_water_filling(
            n in 0u64..3_000,
            min in 0u64..15,
            strata in proptest::collection::vec((0u32..1000, 0u64..300), 1..25),
        ) {
            let strata: Vec<Stratum> = strata.iter().enumerate()
                .map(|(i, &(p, a))| stratum(&format!("s{i:02}"), p as f64, a)).collect();
            let floors: Vec<u64> = strata.iter().map(|s| s.available.min(min)).collect();
            if floors.iter().sum::<u64>() > n {
                return Ok(());
            }
            let a = allocate_strata(&AllocationRequest { n, min_per_stratum: Some(min), strata: strata.clone() }).unwrap();
            let x = |lambda: f64, s: usize| (lambda * strata[s].production).max(floors[s] as f64).min(strata[s].available as f64);
            let top: u64 = (0..strata.len()).map(|s| if strata[s].production > 0.0 { strata[s].available } else { floors[s] }).sum();
            prop_assert_eq!(a.total, n.min(top));
            if n < top {
                let (mut lo, mut hi) = (0.0f64, 1e9f64);
                for _ in 0..200 {
                    let mid = (lo + hi) / 2.0;
                    if (0..strata.len()).map(|s| x(mid, s)).sum::<f64>() < n as f64 { lo = mid } else { hi = mid }
                }
                for (s, out) in a.strata.iter().enumerate() {
                    prop_assert!((out.allocated as f64 - x(hi, s)).abs() < 1.0 + 1e-6, "{s}: {} vs {} ({a:?})", out.allocated, x(hi, s));
                }
            }
            for (s, out) in a.strata.iter().enumerate() {
                prop_assert!(out.allocated >= floors[s] && out.allocated <= strata[s].available);
            }
        }

        /// Floors are not additions: when every stratum's proportional share already meets the
        /// minimum (and items are plentiful), the minimum changes nothing.
        #[test]
        fn a_minimum_every_share_meets_changes_nothing(
            n in 100u64..5_000,
            strata in proptest::collection::vec(1u32..1000, 1..10),
        ) {
            let total: f64 = strata.iter().map(|&p| p as f64).sum();
            let min = strata.iter().map(|&p| (n as f64 * p as f64 / total).floor() as u64).min().unwrap();
            let strata: Vec<Stratum> = strata.iter().enumerate()
                .map(|(i, &p)| stratum(&format!("s{i:02}"), p as f64, 1_000_000)).collect();
            let with = allocate_strata(&AllocationRequest { n, min_per_stratum: Some(min), strata: strata.clone() }).unwrap();
            let without = allocate_strata(&AllocationRequest { n, min_per_stratum: None, strata }).unwrap();
            prop_assert_eq!(with, without);
        }
    }
}
