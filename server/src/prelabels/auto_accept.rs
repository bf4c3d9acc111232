//! Auto-accept and the estimated noise of the training export.
//!
//! **Auto-accept.** A lead switches it on per source and proposed label set; it takes the
//! threshold `threshold::auto_accept_threshold` finds at that moment (the lowest score whose
//! audited precision has a 95% Wilson lower bound at the project's target) and keeps it, so what
//! was accepted does not shift under the lead as audits accumulate; switching on again takes the
//! current threshold. Switching on with no threshold is refused: without enough audits there is
//! no promise to keep. The items accepted are rebuilt as a whole (`store::prelabels::
//! apply_auto_accept`) from the switches and the pre-labels. An item is accepted only when no
//! person has a say on it — not in a dev set or a release (dev and test labels stay human; the
//! database also revokes the moment an item enters one, migration 0013), not gold, not
//! complete, without a review decision, and no labeler answered it otherwise. Among several
//! qualifying pre-labels the best scored wins (then the oldest source), as in the labeling view.
//!
//! Auto-accepted items leave the labeling stream: labelers are not handed what the project has
//! decided to take from a model (the audit sample still reaches reviewers through its own
//! queue). A human final label that arrives anyway wins over the auto label
//! (`review::final_label_or_auto`).
//!
//! **Noise.** For each label of the export: how many final labels are human (consensus and
//! gold), adjudicated (a review decision) or auto-accepted, and the expected precision of the
//! auto-accepted part. That precision is what the audits say about the accepted pre-labels: for
//! each (source, label set) switched on, the decided audits scored at or above its threshold.
//! With one such stratum behind a label (the common case) it is exactly that stratum's share
//! and Wilson interval. With several it is their mean weighted by the labels each contributes,
//! and the interval is the same weighted mean of their Wilson bounds: a conservative
//! combination (the weighted bounds are never tighter than the strata justify), chosen over a
//! normal approximation because audits per stratum are often few and near 100%.
use std::collections::BTreeMap;

use app::api_types::{ExportLabelNoise, ExportSummary, FinalSource, Interval, PrelabelSourceKind, StatValue};

use crate::stats::proportion::wilson_interval;

/// The review queue (and the entries' reason) for human answers that contradict a pre-label
/// scored at least the project's `disagreement_min_score`.
pub const DISAGREEMENT_QUEUE: &str = "prelabel_disagreement";
pub const REASON_CONTRADICTS: &str = "contradicts_prelabel";

/// A source as provenance names it after `auto:`: `name@version` for an imported model,
/// `rules` and `builtin` for the other two (one source each per project).
pub fn source_name(kind: &str, name: &str, version: &str) -> String {
    match PrelabelSourceKind::parse(kind) {
        Some(PrelabelSourceKind::Rules) => "rules".into(),
        Some(PrelabelSourceKind::Builtin) => "builtin".into(),
        _ => format!("{name}@{version}"),
    }
}

/// Decided audits of one (source, label set) at or above `min_score`: (right, decided).
/// A pre-label without a score counts as 0, as in `audit::precision`.
pub fn audits_at(audits: &[(Option<f64>, bool)], min_score: f64) -> (u64, u64) {
    audits
        .iter()
        .filter(|(score, _)| score.unwrap_or(0.0) >= min_score)
        .fold((0, 0), |(right, n), (_, ok)| (right + *ok as u64, n + 1))
}

/// The expected precision of auto-accepted labels that come from strata given as
/// (labels contributed, right audits, decided audits); see the module comment.
pub fn combined_precision(parts: &[(i64, u64, u64)]) -> StatValue {
    let parts: Vec<&(i64, u64, u64)> = parts.iter().filter(|p| p.0 > 0).collect();
    let n: u64 = parts.iter().map(|p| p.2).sum();
    if parts.is_empty() {
        return StatValue { value: None, interval: None, n: 0, reason: Some("no auto-accepted labels".into()) };
    }
    let weight: i64 = parts.iter().map(|p| p.0).sum();
    let (mut est, mut lo, mut hi) = (0.0, 0.0, 0.0);
    for (w, right, decided) in parts {
        let Ok(p) = wilson_interval(*right, *decided, 0.95) else {
            // Switched on only with a threshold, so never without audits; a stratum whose
            // audits were undone since (pre-labels replaced) leaves the figure undefined.
            return StatValue {
                value: None,
                interval: None,
                n: n as i64,
                reason: Some("an auto-accepted stratum has no decided audits".into()),
            };
        };
        let w = *w as f64 / weight as f64;
        est += w * p.estimate;
        lo += w * p.lower;
        hi += w * p.upper;
    }
    StatValue { value: Some(est), interval: Some(Interval { lower: lo, upper: hi }), n: n as i64, reason: None }
}

/// One exported item's final label, for the summary: its labels, source, and for an auto
/// label the stratum (source id, labels JSON) it was accepted from.
pub struct FinalOf<'a> {
    pub labels: &'a [String],
    pub source: FinalSource,
    pub stratum: Option<(i64, &'a str)>,
}

/// The export summary over every item's final label. `labels`: the project's labels in order
/// (labels no longer in the project but still in final labels follow, sorted);
/// `strata`: (source id, labels JSON) → (right, decided) audits at its threshold in force.
pub fn summarise<'a>(
    labels: &[String],
    items: impl IntoIterator<Item = FinalOf<'a>>,
    strata: &BTreeMap<(i64, String), (u64, u64)>,
) -> ExportSummary {
    #[derive(Default)]
    struct Acc {
        human: i64,
        adjudicated: i64,
        auto: i64,
        by_stratum: BTreeMap<(i64, String), i64>,
    }
    let mut per: BTreeMap<String, Acc> = BTreeMap::new();
    let mut s = ExportSummary { items: 0, labeled: 0, human: 0, adjudicated: 0, auto: 0, by_label: Vec::new() };
    for it in items {
        s.items += 1;
        let bucket = match it.source {
            FinalSource::None => continue,
            FinalSource::Adjudicated => 1,
            FinalSource::Auto => 2,
            FinalSource::Gold | FinalSource::Consensus => 0,
        };
        s.labeled += 1;
        *[&mut s.human, &mut s.adjudicated, &mut s.auto][bucket] += 1;
        for l in it.labels {
            let a = per.entry(l.clone()).or_default();
            *[&mut a.human, &mut a.adjudicated, &mut a.auto][bucket] += 1;
            if let (2, Some((src, key))) = (bucket, it.stratum) {
                *a.by_stratum.entry((src, key.to_string())).or_default() += 1;
            }
        }
    }
    let mut order: Vec<String> = labels.to_vec();
    order.extend(per.keys().filter(|k| !labels.contains(k)).cloned());
    for label in order {
        let a = per.remove(&label).unwrap_or_default();
        let total = a.human + a.adjudicated + a.auto;
        let share = |x: i64| (total > 0).then(|| x as f64 / total as f64);
        let parts: Vec<(i64, u64, u64)> = a
            .by_stratum
            .iter()
            .map(|(k, w)| {
                let (right, n) = strata.get(k).copied().unwrap_or((0, 0));
                (*w, right, n)
            })
            .collect();
        let auto_precision = combined_precision(&parts);
        s.by_label.push(ExportLabelNoise {
            label,
            total,
            human: a.human,
            adjudicated: a.adjudicated,
            auto: a.auto,
            human_share: share(a.human),
            adjudicated_share: share(a.adjudicated),
            auto_share: share(a.auto),
            expected_wrong: auto_precision.value.map(|p| a.auto as f64 * (1.0 - p)),
            auto_precision,
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn provenance_names() {
        assert_eq!(source_name("model", "bert", "v2"), "bert@v2");
        assert_eq!(source_name("rules", "rules", "1"), "rules");
        assert_eq!(source_name("builtin", "x", "y"), "builtin");
    }

    #[test]
    fn audits_at_a_threshold() {
        let a = [(Some(0.95), true), (Some(0.9), false), (Some(0.8), true), (None, true)];
        assert_eq!(audits_at(&a, 0.9), (1, 2));
        assert_eq!(audits_at(&a, 0.0), (3, 4));
    }

    #[test]
    fn one_stratum_is_its_wilson_interval() {
        let p = combined_precision(&[(30, 40, 40)]);
        let w = wilson_interval(40, 40, 0.95).unwrap();
        assert_eq!((p.value, p.n), (Some(1.0), 40));
        let iv = p.interval.unwrap();
        assert!((iv.lower - w.lower).abs() < 1e-12 && (iv.upper - w.upper).abs() < 1e-12);
        assert_eq!(combined_precision(&[]).reason.as_deref(), Some("no auto-accepted labels"));
        assert_eq!(combined_precision(&[(0, 5, 5)]).value, None, "a stratum contributing nothing does not count");
    }

    #[test]
    fn several_strata_weigh_by_labels_contributed() {
        // 3 labels from a stratum at 40/40, 1 from one at 9/10: 0.75·1 + 0.25·0.9.
        let p = combined_precision(&[(3, 40, 40), (1, 9, 10)]);
        assert!((p.value.unwrap() - 0.975).abs() < 1e-12);
        let (a, b) = (wilson_interval(40, 40, 0.95).unwrap(), wilson_interval(9, 10, 0.95).unwrap());
        let iv = p.interval.unwrap();
        assert!((iv.lower - (0.75 * a.lower + 0.25 * b.lower)).abs() < 1e-12);
        assert_eq!(p.n, 50);
    }

    #[test]
    fn summary_counts_sources_per_label() {
        let (pos, neg, both) = (v(&["pos"]), v(&["neg"]), v(&["pos", "neg"]));
        let key = r#"["pos"]"#;
        let items = vec![
            FinalOf { labels: &pos, source: FinalSource::Consensus, stratum: None },
            FinalOf { labels: &pos, source: FinalSource::Gold, stratum: None },
            FinalOf { labels: &neg, source: FinalSource::Adjudicated, stratum: None },
            FinalOf { labels: &pos, source: FinalSource::Auto, stratum: Some((7, key)) },
            FinalOf { labels: &pos, source: FinalSource::Auto, stratum: Some((7, key)) },
            FinalOf { labels: &both, source: FinalSource::Consensus, stratum: None },
            FinalOf { labels: &[], source: FinalSource::None, stratum: None },
        ];
        let strata = BTreeMap::from([((7, key.to_string()), (40, 40))]);
        let s = summarise(&v(&["pos", "neg", "other"]), items, &strata);
        assert_eq!((s.items, s.labeled, s.human, s.adjudicated, s.auto), (7, 6, 3, 1, 2));
        let pos = &s.by_label[0];
        assert_eq!((pos.label.as_str(), pos.total, pos.human, pos.adjudicated, pos.auto), ("pos", 5, 3, 0, 2));
        assert_eq!(pos.auto_share, Some(0.4));
        assert_eq!((pos.auto_precision.value, pos.auto_precision.n), (Some(1.0), 40));
        assert_eq!(pos.expected_wrong, Some(0.0));
        let neg = &s.by_label[1];
        assert_eq!((neg.total, neg.human, neg.adjudicated, neg.auto), (2, 1, 1, 0));
        assert_eq!(neg.auto_precision.value, None);
        let other = &s.by_label[2];
        assert_eq!((other.total, other.human_share), (0, None));
    }
}
