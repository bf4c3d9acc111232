//! Comparing two models on the same items: McNemar's exact test and a paired bootstrap
//! interval for their accuracy difference.

use super::bootstrap::{bootstrap_items, BootstrapInterval, BootstrapOptions};
use super::special::binomial_half_cdf;
use super::{overflow_safe_scale, Undefined};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct McNemar {
    /// Items model A got right and model B wrong.
    pub only_a_correct: u64,
    /// Items model B got right and model A wrong.
    pub only_b_correct: u64,
    /// Two-sided exact p-value: 2 · P(X ≤ min(b, c)) for X ~ Binomial(b + c, ½), capped at 1
    /// (statsmodels' `mcnemar(exact=True)`); 1 when the models never disagree in correctness.
    pub p_value: f64,
}

/// McNemar's exact test on per-item correctness of two models (unweighted: the test counts
/// items).
pub fn mcnemar_exact(a_correct: &[bool], b_correct: &[bool]) -> Result<McNemar, Undefined> {
    if a_correct.len() != b_correct.len() {
        return Err(Undefined::new("the two models must be scored on the same items"));
    }
    let only_a = a_correct.iter().zip(b_correct).filter(|(a, b)| **a && !**b).count() as u64;
    let only_b = a_correct.iter().zip(b_correct).filter(|(a, b)| !**a && **b).count() as u64;
    let discordant = only_a + only_b;
    let p_value = if discordant == 0 { 1.0 } else { (2.0 * binomial_half_cdf(only_a.min(only_b), discordant)).min(1.0) };
    Ok(McNemar { only_a_correct: only_a, only_b_correct: only_b, p_value })
}

/// Percentile bootstrap interval for accuracy(A) − accuracy(B), resampling items (both
/// models' predictions on a drawn item travel together), with optional item weights.
pub fn paired_bootstrap_accuracy_difference(
    gold: &[usize],
    pred_a: &[usize],
    pred_b: &[usize],
    weights: Option<&[f64]>,
    options: &BootstrapOptions,
) -> Result<BootstrapInterval, Undefined> {
    let n = gold.len();
    if pred_a.len() != n || pred_b.len() != n || weights.is_some_and(|w| w.len() != n) {
        return Err(Undefined::new("gold labels and both models' predictions must cover the same items"));
    }
    // Per item: weight and weight × (correct_A − correct_B).
    // Scaled (exactly, by a power of two) so the replicate sums cannot overflow to infinity
    // whatever the weights; only their ratio is used.
    let scale = overflow_safe_scale(weights.map_or(1.0, |w| w.iter().copied().fold(0.0, f64::max)));
    let w: Vec<f64> = (0..n).map(|i| weights.map_or(1.0, |w| w[i] / scale)).collect();
    let diff: Vec<f64> =
        (0..n).map(|i| w[i] * ((pred_a[i] == gold[i]) as u8 as f64 - (pred_b[i] == gold[i]) as u8 as f64)).collect();
    bootstrap_items(n, options, |draws| {
        let (mut num, mut den) = (0.0, 0.0);
        for i in 0..n {
            if draws[i] > 0 {
                let k = draws[i] as f64;
                num += k * diff[i];
                den += k * w[i];
            }
        }
        if den > 0.0 {
            Ok(num / den)
        } else {
            Err(Undefined::new("the replicate has zero total weight"))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mcnemar_exact_known_values() {
        // b = 1, c = 9: p = 2 · P(X ≤ 1 | n = 10) = 2 · 11 / 1024.
        let mut a = vec![true; 1];
        a.extend(vec![false; 9]);
        let b: Vec<bool> = a.iter().map(|x| !x).collect();
        let m = mcnemar_exact(&a, &b).unwrap();
        assert_eq!((m.only_a_correct, m.only_b_correct), (1, 9));
        assert!((m.p_value - 22.0 / 1024.0).abs() < 1e-15);
        // Balanced disagreements → p capped at 1; no disagreement → 1.
        assert_eq!(mcnemar_exact(&[true, false], &[false, true]).unwrap().p_value, 1.0);
        assert_eq!(mcnemar_exact(&[true, true], &[true, true]).unwrap().p_value, 1.0);
        assert!(mcnemar_exact(&[true], &[]).is_err());
    }

    #[test]
    fn paired_bootstrap_of_a_clear_difference_excludes_zero() {
        let gold: Vec<usize> = (0..200).map(|i| i % 2).collect();
        let pred_a = gold.clone();
        let pred_b: Vec<usize> = gold.iter().enumerate().map(|(i, &g)| if i % 4 == 0 { 1 - g } else { g }).collect();
        let o = BootstrapOptions { replicates: 500, confidence: 0.95, seed: 9 };
        let ci = paired_bootstrap_accuracy_difference(&gold, &pred_a, &pred_b, None, &o).unwrap();
        assert!(ci.lower > 0.0 && ci.upper < 0.5, "{ci:?}");
        assert!(ci.lower < 0.25 && 0.25 < ci.upper);
        assert!(paired_bootstrap_accuracy_difference(&gold, &pred_a, &pred_b[..3], None, &o).is_err());
    }

    #[test]
    fn paired_bootstrap_with_weights_near_the_largest_float() {
        // Their sum overflowed: every replicate was inf/inf, undefined.
        let gold = [0, 1, 0, 1, 0];
        let pred_a = [0, 1, 0, 1, 1];
        let pred_b = [0, 0, 0, 1, 1];
        let o = BootstrapOptions { replicates: 200, confidence: 0.9, seed: 5 };
        let big = [2f64.powi(1023); 5];
        let ci = paired_bootstrap_accuracy_difference(&gold, &pred_a, &pred_b, Some(&big), &o).unwrap();
        let ones = paired_bootstrap_accuracy_difference(&gold, &pred_a, &pred_b, None, &o).unwrap();
        assert_eq!(ci, ones);
    }
}
