//! Dev-set releases (issue 9): frozen versions of a dev set. This module holds the domain
//! logic as plain functions over plain data: near-duplicate search for the leakage check
//! (`leakage`) and splits that keep groups whole and strata balanced (`splits`).
pub mod leakage;
pub mod splits;
