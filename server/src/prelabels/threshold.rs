//! Auto-accept: the lowest score above which a source's pre-labels are trusted without a person.
//!
//! A reviewer audits a seeded random share of a source's pre-labels for one label and says
//! whether each is right. For a candidate threshold t, the audited pre-labels with score ≥ t
//! estimate the precision of everything the source scores ≥ t; the threshold is the lowest t
//! (among the audited scores) whose Wilson lower bound meets the lead's target. Taking the
//! lower bound, not the estimate, is what makes "95%" a promise rather than a hope: with few
//! audits the bound is low and nothing is auto-accepted.
use serde::Serialize;

use crate::stats::proportion::{wilson_interval, ProportionInterval};
use crate::stats::Undefined;

/// One audited pre-label: its score and whether the reviewer agreed with it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Audit {
    pub score: f64,
    pub correct: bool,
}

/// The chosen threshold and what it rests on.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Threshold {
    /// Pre-labels with a score at least this are accepted.
    pub min_score: f64,
    /// Audited pre-labels at or above it, and how many of them were right.
    pub audited: u64,
    pub correct: u64,
    /// Their precision with its interval; `lower` ≥ the target.
    pub precision: ProportionInterval,
}

/// The lowest audited score whose audited precision at and above it has a Wilson lower bound
/// (at `confidence`) of at least `target`; None when no threshold reaches it.
pub fn auto_accept_threshold(audits: &[Audit], target: f64, confidence: f64) -> Result<Option<Threshold>, Undefined> {
    if !(target > 0.0 && target <= 1.0) {
        return Err(Undefined::new(format!("the target precision must be in (0, 1], not {target}")));
    }
    if audits.iter().any(|a| !a.score.is_finite()) {
        return Err(Undefined::new("every audited pre-label needs a finite score"));
    }
    let mut sorted: Vec<Audit> = audits.to_vec();
    // Highest score first: a running count then gives "at or above" for each distinct score.
    sorted.sort_by(|a, b| b.score.total_cmp(&a.score));
    let (mut total, mut correct) = (0u64, 0u64);
    let mut best = None;
    let mut i = 0;
    while i < sorted.len() {
        let score = sorted[i].score;
        while i < sorted.len() && sorted[i].score == score {
            total += 1;
            correct += sorted[i].correct as u64;
            i += 1;
        }
        let precision = wilson_interval(correct, total, confidence)?;
        if precision.lower >= target {
            best = Some(Threshold { min_score: score, audited: total, correct, precision });
        }
    }
    Ok(best)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn audits(rows: &[(f64, bool)]) -> Vec<Audit> {
        rows.iter().map(|&(score, correct)| Audit { score, correct }).collect()
    }

    #[test]
    fn picks_the_lowest_score_whose_lower_bound_meets_the_target() {
        // 200 audits at 0.9 and above, all right; 100 at 0.5, half right.
        let mut rows: Vec<(f64, bool)> = (0..200).map(|i| (0.9 + (i as f64) / 2000.0, true)).collect();
        rows.extend((0..100).map(|i| (0.5, i % 2 == 0)));
        let t = auto_accept_threshold(&audits(&rows), 0.95, 0.95).unwrap().expect("a threshold");
        assert_eq!(t.min_score, 0.9);
        assert_eq!((t.audited, t.correct), (200, 200));
        // Wilson lower bound of 200/200 at 95%: 0.98115...
        assert!((t.precision.lower - 0.981_155).abs() < 1e-5, "{:?}", t.precision);
        // Including the 0.5 scores would give 250/300: below target.
    }

    #[test]
    fn few_audits_accept_nothing() {
        // 10 of 10 right has a Wilson lower bound of 0.722: not 95%.
        let rows: Vec<(f64, bool)> = (0..10).map(|i| (0.99 - i as f64 / 100.0, true)).collect();
        assert_eq!(auto_accept_threshold(&audits(&rows), 0.95, 0.95).unwrap(), None);
        assert_eq!(auto_accept_threshold(&[], 0.95, 0.95).unwrap(), None);
    }

    #[test]
    fn equal_scores_are_taken_together() {
        // At score 0.8 there are 80 right and 1 wrong: the threshold cannot split them.
        let mut rows: Vec<(f64, bool)> = (0..80).map(|_| (0.8, true)).collect();
        rows.push((0.8, false));
        let t = auto_accept_threshold(&audits(&rows), 0.9, 0.95).unwrap().unwrap();
        assert_eq!((t.min_score, t.audited, t.correct), (0.8, 81, 80));
    }

    #[test]
    fn bad_input_is_refused() {
        assert!(auto_accept_threshold(&[], 0.0, 0.95).is_err());
        assert!(auto_accept_threshold(&[], 1.5, 0.95).is_err());
        assert!(auto_accept_threshold(&audits(&[(f64::NAN, true)]), 0.9, 0.95).is_err());
    }
}
