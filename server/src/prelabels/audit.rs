//! Audited precision: how often a source's pre-labels are right, measured on a seeded random
//! share of them that reviewers decide.
//!
//! The draw is stratified by source and proposed label: in each stratum of n pre-labels the
//! ⌈rate·n⌉ with the smallest keys are drawn, a key being SplitMix64 of (seed, source, item).
//! So the same seed and rate always give the same sample, a larger rate only adds to it, and
//! new pre-labels only add their own draws — audits already decided stay valid. Stratifying
//! per label is what lets each label's precision (and threshold) rest on audits of that label,
//! rare labels included (every non-empty stratum gets at least one draw).
//!
//! Precision per stratum: among drawn pre-labels whose item has a reviewer's decision, the
//! share whose decision equals the pre-label, with a 95% Wilson interval
//! (`stats::proportion`); the auto-accept threshold is `threshold::auto_accept_threshold` over
//! the same audits (a pre-label without a score counts as score 0).
use std::collections::BTreeMap;

/// The review queue (and the entries' reason) audits go to.
pub const QUEUE: &str = "prelabel_audit";

use super::threshold::{auto_accept_threshold, Audit};

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

fn key(seed: i64, source: i64, item: i64) -> u64 {
    splitmix(splitmix(splitmix(seed as u64) ^ source as u64) ^ item as u64)
}

/// The (source, item) pairs drawn from `prelabels` = (source, item, labels JSON).
pub fn draw(prelabels: &[(i64, i64, String)], rate: f64, seed: i64) -> Vec<(i64, i64)> {
    let rate = if rate.is_finite() { rate.clamp(0.0, 1.0) } else { 0.0 };
    if rate == 0.0 {
        return Vec::new();
    }
    let mut strata: BTreeMap<(i64, &str), Vec<(u64, i64)>> = BTreeMap::new();
    for (source, item, labels) in prelabels {
        strata.entry((*source, labels.as_str())).or_default().push((key(seed, *source, *item), *item));
    }
    let mut out = Vec::new();
    for ((source, _), mut members) in strata {
        members.sort_unstable();
        let take = ((rate * members.len() as f64).ceil() as usize).clamp(1, members.len());
        out.extend(members[..take].iter().map(|&(_, item)| (source, item)));
    }
    out.sort_unstable();
    out
}

/// One drawn pre-label with its reviewer's decision (None while undecided).
pub struct Audited<'a> {
    pub labels: &'a [String],
    pub score: Option<f64>,
    pub decision: Option<&'a [String]>,
}

/// (decided, correct, threshold) of one stratum's audits at `target`.
pub fn precision(audits: &[Audited<'_>], target: f64) -> (i64, i64, Option<f64>) {
    let decided: Vec<Audit> = audits
        .iter()
        .filter_map(|a| {
            a.decision.map(|d| Audit { score: a.score.unwrap_or(0.0), correct: crate::review::same_labels(a.labels, d) })
        })
        .collect();
    let correct = decided.iter().filter(|a| a.correct).count() as i64;
    let threshold = auto_accept_threshold(&decided, target, 0.95).ok().flatten().map(|t| t.min_score);
    (decided.len() as i64, correct, threshold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(source: i64, label: &str, items: std::ops::Range<i64>) -> Vec<(i64, i64, String)> {
        items.map(|i| (source, i, format!("[\"{label}\"]"))).collect()
    }

    #[test]
    fn draw_is_seeded_stratified_and_grows_monotonically() {
        let mut all = rows(1, "pos", 0..100);
        all.extend(rows(1, "neg", 100..103));
        all.extend(rows(2, "pos", 0..100));
        let a = draw(&all, 0.1, 7);
        assert_eq!(a, draw(&all, 0.1, 7), "same seed, same sample");
        assert_ne!(a, draw(&all, 0.1, 8), "another seed, another sample");
        // ⌈0.1·100⌉ + ⌈0.1·3⌉ (a rare label still gets one) + ⌈0.1·100⌉.
        assert_eq!(a.len(), 10 + 1 + 10);
        assert_eq!(a.iter().filter(|(s, i)| *s == 1 && *i >= 100).count(), 1);
        // A higher rate keeps every earlier draw.
        let b = draw(&all, 0.3, 7);
        assert!(a.iter().all(|x| b.contains(x)));
        assert!(draw(&all, 0.0, 7).is_empty());
    }

    #[test]
    fn precision_counts_decided_audits_and_finds_the_threshold() {
        let pos = vec!["pos".to_string()];
        let neg = vec!["neg".to_string()];
        // 40 right at scores 0.60..0.99, one wrong at 0.5, one undecided.
        let mut audits: Vec<Audited> =
            (0..40).map(|i| Audited { labels: &pos, score: Some(0.6 + i as f64 / 100.0), decision: Some(&pos) }).collect();
        audits.push(Audited { labels: &pos, score: Some(0.5), decision: Some(&neg) });
        audits.push(Audited { labels: &pos, score: Some(0.9), decision: None });
        let (decided, correct, threshold) = precision(&audits, 0.9);
        assert_eq!((decided, correct), (41, 40));
        // 40/40 at ≥ 0.60: Wilson lower bound 0.912 ≥ 0.9; including the wrong one it is not.
        assert_eq!(threshold, Some(0.6));
        assert_eq!(precision(&audits, 0.95).2, None, "40 audits cannot promise 95%");
    }
}
