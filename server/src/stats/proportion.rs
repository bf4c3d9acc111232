//! The Wilson score interval for a proportion (accuracy on a dev set, say), and the dev-set
//! size needed for a given interval half-width.

use super::special::z_for_confidence;
use super::Undefined;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct ProportionInterval {
    pub estimate: f64,
    pub lower: f64,
    pub upper: f64,
}

fn check_confidence(confidence: f64) -> Result<f64, Undefined> {
    if confidence > 0.0 && confidence < 1.0 {
        Ok(z_for_confidence(confidence))
    } else {
        Err(Undefined::new(format!("the confidence level must be between 0 and 1, not {confidence}")))
    }
}

/// Wilson score interval for `successes` out of `total` at the given confidence (e.g. 0.95),
/// clipped to [0, 1] (as statsmodels' `proportion_confint(method="wilson")`).
pub fn wilson_interval(successes: u64, total: u64, confidence: f64) -> Result<ProportionInterval, Undefined> {
    let z = check_confidence(confidence)?;
    if total == 0 {
        return Err(Undefined::new("a proportion of zero trials is undefined"));
    }
    if successes > total {
        return Err(Undefined::new(format!("{successes} successes out of {total} trials is impossible")));
    }
    let estimate = successes as f64 / total as f64;
    let (center, half) = wilson_center_and_half_width(estimate, total as f64, z);
    Ok(ProportionInterval { estimate, lower: (center - half).clamp(0.0, 1.0), upper: (center + half).clamp(0.0, 1.0) })
}

/// Centre and half-width of the Wilson interval at observed proportion p over n trials.
fn wilson_center_and_half_width(p: f64, n: f64, z: f64) -> (f64, f64) {
    let z2 = z * z;
    let denominator = 1.0 + z2 / n;
    let center = (p + z2 / (2.0 * n)) / denominator;
    let half = z * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt() / denominator;
    (center, half)
}

/// The smallest n for which the Wilson interval around an observed accuracy p has half-width
/// at most h. The half-width falls monotonically in n for every p, so a binary search finds it.
pub fn wilson_sample_size(accuracy: f64, half_width: f64, confidence: f64) -> Result<u64, Undefined> {
    let z = check_confidence(confidence)?;
    if !(0.0..=1.0).contains(&accuracy) {
        return Err(Undefined::new(format!("the expected accuracy must be between 0 and 1, not {accuracy}")));
    }
    if !(half_width > 0.0 && half_width < 1.0) {
        return Err(Undefined::new(format!("the half-width must be between 0 and 1 (exclusive), not {half_width}")));
    }
    let fits = |n: u64| wilson_center_and_half_width(accuracy, n as f64, z).1 <= half_width;
    let mut hi = 1u64;
    while !fits(hi) {
        hi = hi.checked_mul(2).ok_or_else(|| Undefined::new("the half-width is too small to reach"))?;
    }
    let mut lo = hi / 2; // fits(lo) is false (or lo = 0)
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if fits(mid) {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wilson_known_value() {
        // 81 of 263 at 95%: the classic example (Newcombe 1998): 0.2553 to 0.3662.
        let ci = wilson_interval(81, 263, 0.95).unwrap();
        assert!((ci.lower - 0.2553).abs() < 5e-5 && (ci.upper - 0.3662).abs() < 5e-5, "{ci:?}");
        let ci = wilson_interval(0, 10, 0.95).unwrap();
        assert!(ci.lower.abs() < 1e-15);
        assert!(ci.upper > 0.0);
    }

    #[test]
    fn wilson_undefined_cases() {
        assert!(wilson_interval(1, 0, 0.95).is_err());
        assert!(wilson_interval(3, 2, 0.95).is_err());
        assert!(wilson_interval(1, 2, 1.0).is_err());
        assert!(wilson_sample_size(0.9, 0.0, 0.95).is_err());
        assert!(wilson_sample_size(1.5, 0.1, 0.95).is_err());
    }

    #[test]
    fn sample_size_is_the_smallest_that_fits() {
        let n = wilson_sample_size(0.9, 0.02, 0.95).unwrap();
        let z = z_for_confidence(0.95);
        assert!(wilson_center_and_half_width(0.9, n as f64, z).1 <= 0.02);
        assert!(wilson_center_and_half_width(0.9, (n - 1) as f64, z).1 > 0.02);
        // Close to the normal-approximation answer z² p(1 − p) / h² ≈ 864.
        assert!((850..880).contains(&n), "{n}");
    }

    proptest! {
        #[test]
        fn interval_contains_estimate(k in 0u64..200, extra in 0u64..200, c in 0.5f64..0.999) {
            let ci = wilson_interval(k, k + extra.max(1), c).unwrap();
            prop_assert!(ci.lower <= ci.estimate + 1e-12 && ci.estimate <= ci.upper + 1e-12);
            prop_assert!(ci.lower >= 0.0 && ci.upper <= 1.0);
        }
    }
}
