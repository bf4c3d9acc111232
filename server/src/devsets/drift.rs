//! The drift check's top-up plan: when production has moved (a newer profile), which new items
//! to label so that the dev set, keeping every member it has (their labels are reused), is back
//! within a total variation distance the lead sets.
//!
//! The target is the *joint* TVD over the strata, which bounds every attribute's TVD (a
//! marginal's TVD is at most the joint's), so meeting it meets the per-attribute reading too.
//!
//! For a final size N = M + A (M members now, A new labels), the best additions fill the
//! strata below their production share N·p_s (the deficits, capped by the items available):
//! A is shared over the deficits in proportion to them (largest remainder, ties by stratum
//! order). Without caps the deficits always add up to at least A (Σ max(0, N·p_s − c_s) ≥
//! Σ (N·p_s − c_s) = A), so no addition lands in a stratum already above its share. The
//! smallest N whose TVD meets the target is found by trying N = M, M+1, … up to `MAX_STEPS`
//! new labels or the available items; the TVD is not monotone in N once availability caps
//! bite, so this scans rather than bisects. If no N meets the target, the plan with the lowest
//! TVD is returned, marked as not reaching it.
use std::collections::BTreeMap;

pub use app::api_types::{TopUp, TopUpStratum};

/// The most new labels a top-up plan considers.
pub const MAX_STEPS: u64 = 20_000;

/// `cells`: per stratum (members now, production count, items available to add).
pub fn top_up(cells: &BTreeMap<Vec<String>, (u64, f64, u64)>, target_tvd: f64) -> TopUp {
    let keys: Vec<&Vec<String>> = cells.keys().collect();
    let c: Vec<u64> = cells.values().map(|v| v.0).collect();
    let scale = crate::stats::overflow_safe_scale(cells.values().map(|v| v.1).fold(0.0, f64::max));
    let prod_total: f64 = cells.values().map(|v| v.1 / scale).sum();
    let p: Vec<f64> = cells.values().map(|v| if prod_total > 0.0 { v.1 / scale / prod_total } else { 0.0 }).collect();
    let avail: Vec<u64> = cells.values().map(|v| v.2).collect();
    let m: u64 = c.iter().sum();
    let tvd = |x: &[u64], n: u64| -> f64 {
        if n == 0 {
            return 1.0;
        }
        x.iter().zip(&p).map(|(&x, &p)| (x as f64 / n as f64 - p).abs()).sum::<f64>() / 2.0
    };
    let additions = |n: u64| -> Vec<u64> {
        let a = n - m;
        let d: Vec<f64> = (0..c.len()).map(|s| (n as f64 * p[s] - c[s] as f64).max(0.0).min(avail[s] as f64)).collect();
        let total: f64 = d.iter().sum();
        if a == 0 || total <= 0.0 {
            return vec![0; c.len()];
        }
        let quota: Vec<f64> = d.iter().map(|d| (a as f64 * d / total).min(*d)).collect();
        let mut add: Vec<u64> = quota.iter().map(|q| q.floor() as u64).collect();
        let mut left = a.saturating_sub(add.iter().sum());
        let mut order: Vec<usize> = (0..c.len()).collect();
        order.sort_by(|&i, &j| (quota[j] - quota[j].floor()).total_cmp(&(quota[i] - quota[i].floor())).then(i.cmp(&j)));
        // Leftovers to the largest fractions, then anywhere there is room (capped deficits).
        for pass in 0..2 {
            for &s in &order {
                if left == 0 {
                    break;
                }
                let room = if pass == 0 { (d[s].ceil() as u64).min(avail[s]) } else { avail[s] };
                if add[s] < room {
                    add[s] += 1;
                    left -= 1;
                }
            }
        }
        add
    };
    let most = m + avail.iter().sum::<u64>().min(MAX_STEPS);
    let tvd_now = tvd(&c, m);
    let mut best = (tvd_now, m, vec![0; c.len()]);
    for n in m..=most {
        let add = additions(n);
        let x: Vec<u64> = c.iter().zip(&add).map(|(c, a)| c + a).collect();
        let t = tvd(&x, x.iter().sum());
        if t < best.0 - 1e-12 {
            best = (t, n, add);
        }
        if best.0 <= target_tvd {
            break;
        }
    }
    let (tvd_after, n, add) = best;
    TopUp {
        target_tvd,
        tvd_now,
        tvd_after,
        reached: tvd_after <= target_tvd,
        new_labels: n - m,
        strata: keys
            .iter()
            .enumerate()
            .map(|(s, k)| TopUpStratum {
                values: (*k).clone(),
                production_share: p[s],
                members: c[s],
                add: add[s],
                available: avail[s],
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cells(rows: &[(&str, u64, f64, u64)]) -> BTreeMap<Vec<String>, (u64, f64, u64)> {
        rows.iter().map(|&(k, c, p, a)| (vec![k.to_string()], (c, p, a))).collect()
    }

    #[test]
    fn a_matching_dev_set_needs_nothing() {
        let t = top_up(&cells(&[("a", 50, 500.0, 100), ("b", 50, 500.0, 100)]), 0.02);
        assert_eq!((t.new_labels, t.reached, t.tvd_now), (0, true, 0.0));
    }

    #[test]
    fn the_fewest_new_labels_to_get_under_the_target() {
        // Production moved from 50/50 to 40/60: 100 members, 50/50. Keeping them all, N items
        // with 50 a's have TVD |50/N − 0.4|; under 0.02 needs 50/N ≤ 0.42, N ≥ 120 (119.05…):
        // 20 new labels, all b.
        let t = top_up(&cells(&[("a", 50, 400.0, 1000), ("b", 50, 600.0, 1000)]), 0.02);
        assert!(t.reached, "{t:?}");
        assert_eq!(t.new_labels, 20);
        assert_eq!(t.strata.iter().map(|s| s.add).collect::<Vec<_>>(), [0, 20]);
        assert!(t.tvd_after <= 0.02 && (t.tvd_now - 0.1).abs() < 1e-12);
    }

    #[test]
    fn availability_can_make_the_target_unreachable() {
        let t = top_up(&cells(&[("a", 50, 400.0, 1000), ("b", 50, 600.0, 5)]), 0.02);
        assert!(!t.reached);
        assert_eq!(t.strata[1].add, 5);
        assert!(t.tvd_after < t.tvd_now);
    }
}
