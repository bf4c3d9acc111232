//! Pre-labels (issue 10): labels proposed by something other than a person — imported model
//! predictions, a lead's labeling rules, the built-in model — and the rules for trusting them.
//!
//! This module holds the domain logic as plain functions over plain data: checking imported
//! predictions (`predictions`), labeling rules and their statistics (`rules`), the built-in
//! text classifier (`model`) and the auto-accept threshold (`threshold`). Every estimate they report
//! (accuracy, precision and their intervals) comes from `crate::stats`.
pub mod audit;
pub mod auto_accept;
pub mod import;
pub mod model;
pub mod model_job;
pub mod predictions;
pub mod rules;
pub mod rules_index;
pub mod rules_run;
pub mod threshold;

use app::api_types::{Interval, StatValue};

/// A share with its 95% Wilson interval (`stats::proportion`), as the pages show it; with no
/// trials, no value and the reason.
pub fn share(successes: i64, n: i64) -> StatValue {
    match crate::stats::proportion::wilson_interval(successes.max(0) as u64, n.max(0) as u64, 0.95) {
        Ok(p) => StatValue {
            value: Some(p.estimate),
            interval: Some(Interval { lower: p.lower, upper: p.upper }),
            n,
            reason: None,
        },
        Err(_) => StatValue { value: None, interval: None, n, reason: Some("no answers yet".into()) },
    }
}
