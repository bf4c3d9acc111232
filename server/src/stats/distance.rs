//! Distances between two distributions over the same categories, for comparing a dev set
//! with production: total variation distance ½Σ|p − q|, KL divergence KL(p‖q) = Σ p ln(p/q),
//! and the population stability index Σ (p − q) ln(p/q).
//!
//! Inputs are counts or proportions (each side is normalised to sum to 1). Before taking
//! logarithms, zero proportions are replaced by 1e-6 (without renormalising), the usual PSI
//! convention, so a category missing on one side gives a large but finite value.

use super::Undefined;
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
    let total: f64 = v.iter().sum();
    if total <= 0.0 {
        return Err(Undefined::new(format!("{name} is empty (its values sum to 0)")));
    }
    Ok(v.iter().map(|x| x / total).collect())
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
    let aligned = |key: &dyn Fn(&[String]) -> Vec<String>| {
        let mut cells: BTreeMap<Vec<String>, (f64, f64)> = BTreeMap::new();
        for (values, count) in p {
            cells.entry(key(values)).or_default().0 += count;
        }
        for (values, count) in q {
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

    proptest! {
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
