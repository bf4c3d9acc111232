//! Pre-labels (issue 10): labels proposed by something other than a person — imported model
//! predictions, a lead's labeling rules, the built-in model — and the rules for trusting them.
//!
//! This module holds the domain logic as plain functions over plain data: checking imported
//! predictions (`predictions`), labeling rules and their statistics (`rules`), the built-in
//! text classifier (`model`) and the auto-accept threshold (`threshold`). Every estimate they report
//! (accuracy, precision and their intervals) comes from `crate::stats`.
pub mod model;
pub mod predictions;
pub mod rules;
pub mod threshold;
