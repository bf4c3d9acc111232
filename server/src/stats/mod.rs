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
pub mod krippendorff;
pub mod label_errors;
pub mod proportion;
pub mod ratings;
pub mod sampling;
pub mod significance;

mod rng;
mod special;

pub use ratings::{LabelSet, Level, Ratings, RatingsBuilder, RatingsError};

use serde::Serialize;
use std::fmt;

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
