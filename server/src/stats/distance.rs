//! Distances between two distributions over the same categories, for comparing a dev set
//! with production: total variation distance ½Σ|p − q|, KL divergence KL(p‖q) = Σ p ln(p/q),
//! and the population stability index Σ (p − q) ln(p/q).
//!
//! Inputs are counts or proportions (each side is normalised to sum to 1). Before taking
//! logarithms, zero proportions are replaced by 1e-6 (without renormalising), the usual PSI
//! convention, so a category missing on one side gives a large but finite value. With the
//! replaced values p′, q′ no longer summing to 1, KL is not quite ≥ 0: by the log-sum
//! inequality it is ≥ Σp′ − Σq′ ≥ −1e-6 × (number of zero proportions in q). PSI is a sum of
//! non-negative terms and stays ≥ 0.
//!
//! Counts may be anywhere in the finite range, up to the largest float: each side is divided
//! by (a power of two near) its largest value before it is summed, so the total never
//! overflows to infinity (which turned every proportion into 0 and the distances into
//! nonsense, a negative KL).

use super::{overflow_safe_scale, Undefined};
use serde::Serialize;
use std::collections::BTreeMap;

/// The stand-in for a zero proportion inside logarithms.
pub const ZERO_PROPORTION: f64 = 1e-6;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Distance {
    pub tvd: f64,
    pub kl: f64,
    pub psi: f64,
}

/// Distances between p and q, given as aligned counts or proportions per category.
pub fn distribution_distance(p: &[f64], q: &[f64]) -> Result<Distance, Undefined> {
    if p.len() != q.len() {
        return Err(Undefined::new("p and q must cover the same categories"));
    }
    let p = normalise(p, "p")?;
    let q = normalise(q, "q")?;
    let (mut tvd, mut kl, mut psi) = (0.0, 0.0, 0.0);
    for (&pi, &qi) in p.iter().zip(&q) {
        tvd += (pi - qi).abs();
        let (lp, lq) = (floor_zero(pi), floor_zero(qi));
        let log_ratio = (lp / lq).ln();
        kl += lp * log_ratio;
        psi += (lp - lq) * log_ratio;
    }
    Ok(Distance { tvd: tvd / 2.0, kl, psi })
}

fn floor_zero(x: f64) -> f64 {
    if x == 0.0 {
        ZERO_PROPORTION
    } else {
        x
    }
}

fn normalise(v: &[f64], name: &str) -> Result<Vec<f64>, Undefined> {
    if let Some(x) = v.iter().find(|x| !(x.is_finite() && **x >= 0.0)) {
        return Err(Undefined::new(format!("{name} has the value {x}; counts and proportions must be finite and ≥ 0")));
    }
    let scaled = scale_to_max(v);
    let total: f64 = scaled.iter().sum();
    if total <= 0.0 {
        return Err(Undefined::new(format!("{name} is empty (its values sum to 0)")));
    }
    Ok(scaled.iter().map(|x| x / total).collect())
}

/// The values divided by a power of two near the largest of them (see
/// [`overflow_safe_scale`]), so that a sum of k of them is below 2k: exact, so ordinary inputs
/// give the very same results, and a value below 2⁻¹⁰⁷⁴ times the largest becomes 0 (it is
/// that small a share).
fn scale_to_max(v: &[f64]) -> Vec<f64> {
    let scale = overflow_safe_scale(v.iter().copied().fold(0.0, f64::max));
    v.iter().map(|x| x / scale).collect()
}

/// Distances per attribute (marginal distributions) and over attribute combinations (joint).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SliceDistances {
    pub joint: Distance,
    /// In the order of the attributes given.
    pub marginals: Vec<(String, Distance)>,
}

/// `p` and `q` list (attribute values, count) cells; a value vector has one entry per
/// attribute. A combination present on one side only counts as zero on the other.
pub fn slice_distances(
    attributes: &[String],
    p: &[(Vec<String>, f64)],
    q: &[(Vec<String>, f64)],
) -> Result<SliceDistances, Undefined> {
    if let Some((values, _)) = p.iter().chain(q).find(|(v, _)| v.len() != attributes.len()) {
        return Err(Undefined::new(format!(
            "a cell has {} values for {} attributes",
            values.len(),
            attributes.len()
        )));
    }
    for (side, cells) in [("p", p), ("q", q)] {
        if let Some((_, x)) = cells.iter().find(|(_, c)| !(c.is_finite() && *c >= 0.0)) {
            return Err(Undefined::new(format!("{side} has the count {x}; counts must be finite and ≥ 0")));
        }
    }
    // Cells are added up per combination and per attribute value: scale each side first so
    // those sums cannot overflow (only ratios within a side matter).
    fn scaled(cells: &[(Vec<String>, f64)]) -> Vec<(&Vec<String>, f64)> {
        let counts: Vec<f64> = cells.iter().map(|(_, c)| *c).collect();
        cells.iter().map(|(v, _)| v).zip(scale_to_max(&counts)).collect()
    }
    let (p, q) = (scaled(p), scaled(q));
    let aligned = |key: &dyn Fn(&[String]) -> Vec<String>| {
        let mut cells: BTreeMap<Vec<String>, (f64, f64)> = BTreeMap::new();
        for (values, count) in &p {
            cells.entry(key(values)).or_default().0 += count;
        }
        for (values, count) in &q {
            cells.entry(key(values)).or_default().1 += count;
        }
        let (ps, qs): (Vec<f64>, Vec<f64>) = cells.values().copied().unzip();
        distribution_distance(&ps, &qs)
    };
    let joint = aligned(&|v| v.to_vec())?;
    let marginals = attributes
        .iter()
        .enumerate()
        .map(|(a, name)| aligned(&|v| vec![v[a].clone()]).map(|d| (name.clone(), d)))
        .collect::<Result<_, _>>()?;
    Ok(SliceDistances { joint, marginals })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::test_support::non_negative_float;
    use proptest::prelude::*;

    #[test]
    fn known_values() {
        let d = distribution_distance(&[0.5, 0.5], &[0.25, 0.75]).unwrap();
        assert!((d.tvd - 0.25).abs() < 1e-15);
        let kl = 0.5 * (0.5f64 / 0.25).ln() + 0.5 * (0.5f64 / 0.75).ln();
        assert!((d.kl - kl).abs() < 1e-15);
        let psi = 0.25 * (0.5f64 / 0.25).ln() - 0.25 * (0.5f64 / 0.75).ln();
        assert!((d.psi - psi).abs() < 1e-15);
        // Counts are normalised.
        assert_eq!(distribution_distance(&[2.0, 2.0], &[1.0, 3.0]).unwrap(), d);
    }

    #[test]
    fn zero_proportions_are_replaced_before_logs() {
        let d = distribution_distance(&[1.0, 0.0], &[0.5, 0.5]).unwrap();
        assert!((d.tvd - 0.5).abs() < 1e-15);
        let kl = (1.0f64 / 0.5).ln() + 1e-6 * (1e-6f64 / 0.5).ln();
        assert!((d.kl - kl).abs() < 1e-15);
        assert!(d.psi.is_finite() && d.psi > 0.0);
    }

    #[test]
    fn bad_input_is_undefined() {
        assert!(distribution_distance(&[0.0, 0.0], &[1.0, 1.0]).is_err());
        assert!(distribution_distance(&[1.0], &[1.0, 1.0]).is_err());
        assert!(distribution_distance(&[-1.0, 2.0], &[1.0, 1.0]).is_err());
        assert!(distribution_distance(&[f64::NAN, 2.0], &[1.0, 1.0]).is_err());
    }

    #[test]
    fn marginals_and_joint() {
        let attrs = vec!["region".to_string(), "device".to_string()];
        let cell = |r: &str, d: &str, c: f64| (vec![r.to_string(), d.to_string()], c);
        let p = vec![cell("eu", "ios", 1.0), cell("us", "web", 1.0)];
        let q = vec![cell("eu", "web", 1.0), cell("us", "ios", 1.0)];
        let s = slice_distances(&attrs, &p, &q).unwrap();
        // Same marginals, disjoint joint support.
        assert_eq!(s.marginals[0].1.tvd, 0.0);
        assert_eq!(s.marginals[1].1.tvd, 0.0);
        assert!((s.joint.tvd - 1.0).abs() < 1e-15);
        assert_eq!(s.marginals[0].0, "region");
    }

    #[test]
    fn counts_near_the_largest_float_give_the_distances_of_their_proportions() {
        // These sums overflowed to infinity: every proportion became 0, and KL came out
        // negative (-1.3e-5), which it cannot be.
        let p = [2f64.powi(1023), 2f64.powi(1023), 2f64.powi(1022), 0.0];
        let q = [1.0, 1.0, 2.0, 1.0];
        let d = distribution_distance(&p, &q).unwrap();
        let expected = distribution_distance(&[2.0, 2.0, 1.0, 0.0], &q).unwrap();
        assert_eq!(d, expected);
        assert!(d.kl > 0.0 && (d.tvd - 0.4).abs() < 1e-15, "{d:?}");
        // Not only powers of two.
        let d = distribution_distance(&[f64::MAX, f64::MAX / 2.0, 0.0], &[1.0, 1.0, 2.0]).unwrap();
        let expected = distribution_distance(&[2.0, 1.0, 0.0], &[1.0, 1.0, 2.0]).unwrap();
        assert!((d.tvd - 0.5).abs() < 1e-15 && (d.kl - expected.kl).abs() < 1e-15 && (d.psi - expected.psi).abs() < 1e-12, "{d:?}");
        // The same in the joint form, where cells are added up per attribute value.
        let cell = |r: &str, c: f64| (vec![r.to_string()], c);
        let s = slice_distances(&["r".to_string()], &[cell("a", f64::MAX), cell("a", f64::MAX), cell("b", f64::MAX)], &[cell("a", 1.0), cell("b", 1.0)]).unwrap();
        let expected = distribution_distance(&[2.0, 1.0], &[1.0, 1.0]).unwrap();
        assert!((s.joint.tvd - expected.tvd).abs() < 1e-15 && (s.joint.kl - expected.kl).abs() < 1e-15, "{s:?}");
        assert!((s.marginals[0].1.psi - expected.psi).abs() < 1e-15, "{s:?}");
        // Infinite, negative and NaN counts are refused, naming the value.
        let e = slice_distances(&["r".to_string()], &[cell("a", f64::INFINITY)], &[cell("a", 1.0)]).unwrap_err();
        assert_eq!(e.reason, "p has the count inf; counts must be finite and ≥ 0");
        let e = distribution_distance(&[1.0, f64::INFINITY], &[1.0, 1.0]).unwrap_err();
        assert_eq!(e.reason, "p has the value inf; counts and proportions must be finite and ≥ 0");
    }

    proptest! {
        /// Over the whole range of counts (0, subnormals, up to the largest float): TVD in
        /// [0, 1], PSI ≥ 0, KL ≥ 0 up to the 1e-6 replacement of zeros, and the same values as
        /// the proportions computed the ordinary way (each count over the largest, in floats
        /// that cannot overflow).
        #[test]
        fn distances_over_the_whole_float_range(
            pq in proptest::collection::vec((non_negative_float(), non_negative_float()), 1..12)
        ) {
            let (p, q): (Vec<f64>, Vec<f64>) = pq.into_iter().unzip();
            let d = distribution_distance(&p, &q);
            let (p_max, q_max) = (p.iter().copied().fold(0.0, f64::max), q.iter().copied().fold(0.0, f64::max));
            if p_max == 0.0 || q_max == 0.0 {
                prop_assert!(d.unwrap_err().reason.contains("is empty"));
                return Ok(());
            }
            let d = d.unwrap();
            prop_assert!((0.0..=1.0 + 1e-12).contains(&d.tvd), "{d:?}");
            prop_assert!(d.psi >= -1e-12, "{d:?}");
            // Σ p' ln(p'/q') ≥ Σp' − Σq' (log-sum inequality) where p', q' are the proportions
            // with zeros replaced: at least −1e-6 per zero of q.
            // (A share below 1e-290 of the largest may underflow to a zero proportion.)
            let p_norm: Vec<f64> = p.iter().map(|x| x / p_max).collect();
            let q_norm: Vec<f64> = q.iter().map(|x| x / q_max).collect();
            let may_be_zero = |x: &&f64| **x < 1e-290;
            let q_zeros = q_norm.iter().filter(may_be_zero).count() as f64;
            prop_assert!(d.kl >= -q_zeros * ZERO_PROPORTION - 1e-12, "{d:?}");
            let reference = distribution_distance(&p_norm, &q_norm).unwrap();
            let close = |a: f64, b: f64| (a - b).abs() <= 1e-9 * (1.0 + b.abs());
            prop_assert!(close(d.tvd, reference.tvd), "{d:?} vs {reference:?}");
            // KL and PSI jump by ~1e-5 where a proportion is 0 on one computation and a
            // subnormal on the other; compare them where no share is that close to 0.
            let clear = |orig: &[f64], norm: &[f64]| orig.iter().zip(norm).all(|(o, x)| *o == 0.0 || !may_be_zero(&x));
            if clear(&p, &p_norm) && clear(&q, &q_norm) {
                prop_assert!(close(d.kl, reference.kl) && close(d.psi, reference.psi), "{d:?} vs {reference:?}");
            }
        }

        #[test]
        fn distances_are_zero_for_equal_distributions(p in proptest::collection::vec(0.0f64..100.0, 1..20), scale in 0.1f64..10.0) {
            prop_assume!(p.iter().sum::<f64>() > 0.0);
            let q: Vec<f64> = p.iter().map(|x| x * scale).collect();
            let d = distribution_distance(&p, &q).unwrap();
            prop_assert!(d.tvd.abs() < 1e-12 && d.kl.abs() < 1e-12 && d.psi.abs() < 1e-12, "{d:?}");
        }

        #[test]
        fn distances_are_non_negative_and_tvd_at_most_one(
            pq in proptest::collection::vec((0.0f64..10.0, 0.0f64..10.0), 1..20)
        ) {
            let (p, q): (Vec<f64>, Vec<f64>) = pq.into_iter().unzip();
            prop_assume!(p.iter().sum::<f64>() > 0.0 && q.iter().sum::<f64>() > 0.0);
            let d = distribution_distance(&p, &q).unwrap();
            prop_assert!(d.tvd >= 0.0 && d.tvd <= 1.0 + 1e-12);
            prop_assert!(d.psi >= -1e-12);
        }
    }
}
