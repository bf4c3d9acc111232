//! The statistics core: pure functions over plain data (no I/O, no database).
//!
//! Everything that a dashboard, a review queue, a dev-set builder or an evaluation report shows
//! is computed here, once, and reached from the JSON API, the UI and `mirrorset stats` alike.
//!
//! Conventions:
//! - Data comes in dense integer-coded form ([`Ratings`] for annotation records; plain index
//!   slices elsewhere), so inner loops never hash strings.
//! - A value that is mathematically undefined for the data (one annotator, no variation, no
//!   pairable items, ...) is an `Err(Undefined)` carrying the reason, never NaN and never a panic.
//! - Randomness (bootstrap, sampling) takes an explicit seed and uses ChaCha8, whose output
//!   stream is fixed by its specification, so results do not change with a crate upgrade.
//!
//! Topics, one file each: [`ratings`] (the coded data), [`agreement`] (percent agreement,
//! per-label and the bundled report), [`kappa`] (Cohen, Fleiss), [`krippendorff`],
//! [`bootstrap`], [`aggregate`] (majority vote), [`dawid_skene`], [`label_errors`] (confident
//! learning), [`allocation`], [`distance`], [`proportion`] (Wilson), [`sampling`],
//! [`evaluation`], [`significance`] (McNemar, paired bootstrap).

pub mod aggregate;
pub mod agreement;
pub mod allocation;
pub mod bootstrap;
pub mod dawid_skene;
pub mod distance;
pub mod evaluation;
pub mod kappa;
pub mod label_model;
pub mod krippendorff;
pub mod label_errors;
pub mod proportion;
pub mod ratings;
pub mod runs;
pub mod sampling;
pub mod significance;

pub(crate) mod rng;
mod special;

pub use ratings::{ItemKeys, LabelSet, Level, Ratings, RatingsBuilder, RatingsError};

use serde::Serialize;
use std::fmt;

/// A divisor that brings non-negative values whose largest is `max` below 2 without changing any
/// result: the largest power of two ≤ `max`. Dividing by a power of two is exact, so sums and
/// ratios of the scaled values round exactly as those of the originals would, except that the
/// sums can no longer overflow to infinity (k values add up to less than 2k). Subnormal values
/// are scaled up the same way: their sums are exact, but a product such as F1 × support would
/// lose all but a few bits (a weighted F1 of 2/3 came out as 1/2). For `max` not positive, it is 1.
pub(crate) fn overflow_safe_scale(max: f64) -> f64 {
    if max.is_normal() && max > 0.0 {
        // Keep the exponent bits, clear the mantissa: 2^floor(log2(max)).
        f64::from_bits(max.to_bits() & 0x7ff0_0000_0000_0000)
    } else if max > 0.0 && max.is_finite() {
        // Subnormal: the value is mantissa × 2^-1074; keep the mantissa's highest bit.
        let bits = max.to_bits();
        f64::from_bits(1u64 << (63 - bits.leading_zeros()))
    } else {
        1.0
    }
}

/// The median of the values (the 0.5 quantile, as NumPy's `median`); undefined when empty.
pub fn median(values: &mut [f64]) -> Stat {
    if values.is_empty() {
        return Err(Undefined::new("there are no values"));
    }
    values.sort_by(f64::total_cmp);
    finite(rng::quantile_sorted(values, 0.5), "the median")
}

/// Why a statistic has no value for the given data.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Undefined {
    pub reason: String,
}

impl Undefined {
    pub fn new(reason: impl Into<String>) -> Self {
        Undefined { reason: reason.into() }
    }
}

impl fmt::Display for Undefined {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.reason)
    }
}

impl std::error::Error for Undefined {}

/// A statistic: a finite number, or undefined with the reason.
pub type Stat = Result<f64, Undefined>;

/// Serializes a [`Stat`] as its number, or `null` when undefined (the reason is reported
/// separately by whoever shows it).
pub fn serialize_stat<S: serde::Serializer>(stat: &Stat, s: S) -> Result<S::Ok, S::Error> {
    match stat {
        Ok(v) => s.serialize_f64(*v),
        Err(_) => s.serialize_none(),
    }
}

/// Turns a computed number into a [`Stat`], refusing NaN and infinities so that a division by
/// zero that slipped through a guard surfaces as "undefined" instead of a silent NaN.
pub(crate) fn finite(value: f64, what: &str) -> Stat {
    if value.is_finite() {
        Ok(value)
    } else {
        Err(Undefined::new(format!("{what} is not a finite number for this data")))
    }
}

/// Test inputs shared by the statistics' property tests.
#[cfg(test)]
pub(crate) mod test_support {
    use proptest::prelude::*;

    /// Any finite float ≥ 0, drawn by bit pattern so every binade is as likely as any other:
    /// subnormals, ordinary numbers and numbers near the largest float all come up, and the
    /// edges (0, the smallest subnormal, the smallest normal, 1, the largest) come up often.
    pub fn non_negative_float() -> impl Strategy<Value = f64> {
        prop_oneof![
            1 => Just(0.0),
            1 => Just(f64::from_bits(1)),
            1 => Just(f64::MIN_POSITIVE),
            1 => Just(1.0),
            2 => Just(f64::MAX),
            2 => (0x7fe0_0000_0000_0000u64..=f64::MAX.to_bits()).prop_map(f64::from_bits),
            8 => (0u64..=f64::MAX.to_bits()).prop_map(f64::from_bits),
        ]
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(super::median(&mut [3.0, 1.0, 2.0]), Ok(2.0));
        assert_eq!(super::median(&mut [4.0, 1.0, 2.0, 3.0]), Ok(2.5));
        assert!(super::median(&mut []).is_err());
    }

    #[test]
    fn overflow_safe_scale_is_a_power_of_two_at_most_the_max() {
        use super::overflow_safe_scale;
        assert_eq!(overflow_safe_scale(f64::MAX), 2f64.powi(1023));
        assert_eq!(overflow_safe_scale(3.0), 2.0);
        assert_eq!(overflow_safe_scale(1.0), 1.0);
        assert_eq!(overflow_safe_scale(0.75), 0.5);
        assert_eq!(overflow_safe_scale(f64::MIN_POSITIVE), f64::MIN_POSITIVE);
        assert_eq!(overflow_safe_scale(f64::from_bits(1)), f64::from_bits(1));
        assert_eq!(overflow_safe_scale(f64::from_bits(3)), f64::from_bits(2));
        assert_eq!(overflow_safe_scale(0.0), 1.0);
    }
}
