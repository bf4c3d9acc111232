//! Percent agreement, per-label agreement, and [`agreement_report`], which bundles every
//! agreement statistic the dashboards and `mirrorset stats agreement` show.

use super::bootstrap::{self, BootstrapInterval, BootstrapOptions};
use super::kappa::{self, KappaWeights, PairKappa};
use super::krippendorff::krippendorff_alpha;
use super::{serialize_stat, Level, Ratings, Stat, Undefined};
use serde::Serialize;

/// Fleiss's P̄ generalised to any number of ratings per item: for each item with m ≥ 2
/// ratings, the share of agreeing pairs among its m(m − 1)/2 pairs; averaged over those items
/// with equal weight.
pub fn percent_agreement(ratings: &Ratings) -> Stat {
    percent_agreement_weighted(ratings, None)
}

/// [`percent_agreement`] with item multiplicities (a bootstrap replicate: item i counted
/// `weights[i]` times; `None` is once each).
pub(crate) fn percent_agreement_weighted(ratings: &Ratings, weights: Option<&[u32]>) -> Stat {
    let mut tally = vec![0u32; ratings.n_labels()];
    let (mut sum, mut items) = (0.0, 0usize);
    for i in 0..ratings.n_items() {
        let labels = ratings.item_labels(i);
        let w = weights.map_or(1, |w| w[i]);
        if labels.len() < 2 || w == 0 {
            continue;
        }
        let m = labels.len() as f64;
        for &c in labels {
            tally[c as usize] += 1;
        }
        let mut agreeing = 0.0;
        for &c in labels {
            let t = &mut tally[c as usize];
            agreeing += (*t as f64) * (*t as f64 - 1.0);
            *t = 0;
        }
        sum += w as f64 * agreeing / (m * (m - 1.0));
        items += w as usize;
    }
    if items == 0 {
        return Err(Undefined::new("no item has two or more ratings"));
    }
    Ok(sum / items as f64)
}

/// One-vs-rest agreement for one label: nominal alpha after recoding every rating as "this
/// label" or "another label".
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LabelAgreement {
    pub label: usize,
    #[serde(serialize_with = "serialize_stat")]
    pub alpha: Stat,
}

/// One-vs-rest nominal alpha for every label, in label order, in one pass over the data.
pub fn per_label_alpha(ratings: &Ratings) -> Vec<LabelAgreement> {
    let l = ratings.n_labels();
    let undefined_all = |reason: &str| {
        (0..l).map(|label| LabelAgreement { label, alpha: Err(Undefined::new(reason)) }).collect()
    };
    if ratings.n_active_annotators() < 2 {
        return undefined_all("fewer than two annotators rated anything");
    }
    // For a binary coding, unit u with m_u ratings of which k have the label contributes
    // 2k(m_u − k)/(m_u − 1) to the observed disagreement, and D_e = 2 n_l (n − n_l).
    let mut observed = vec![0.0f64; l];
    let mut used = vec![0.0f64; l];
    let mut n = 0.0;
    let mut tally = vec![0u32; l];
    for i in 0..ratings.n_items() {
        let labels = ratings.item_labels(i);
        if labels.len() < 2 {
            continue;
        }
        let m = labels.len() as f64;
        n += m;
        for &c in labels {
            tally[c as usize] += 1;
        }
        for &c in labels {
            let t = &mut tally[c as usize];
            if *t > 0 {
                let k = *t as f64;
                observed[c as usize] += 2.0 * k * (m - k) / (m - 1.0);
                used[c as usize] += k;
                *t = 0;
            }
        }
    }
    if n == 0.0 {
        return undefined_all("no item has two or more ratings");
    }
    (0..l)
        .map(|c| {
            let expected = 2.0 * used[c] * (n - used[c]);
            let alpha = if used[c] == 0.0 {
                Err(Undefined::new("the label was never used on a pairable item"))
            } else if expected == 0.0 {
                Err(Undefined::new("every pairable rating has this label: there is no variation"))
            } else {
                Ok(1.0 - (n - 1.0) * observed[c] / expected)
            };
            LabelAgreement { label: c, alpha }
        })
        .collect()
}

/// What [`agreement_report`] computes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgreementOptions {
    /// Level of measurement for alpha; weighted kappas are reported when it is ordered.
    pub level: Level,
    /// Bootstrap confidence intervals, when wanted.
    pub bootstrap: Option<BootstrapOptions>,
}

/// Every agreement statistic for one set of ratings.
#[derive(Debug, Clone, Serialize)]
pub struct AgreementReport {
    pub n_items: usize,
    pub n_pairable_items: usize,
    pub n_annotations: usize,
    pub n_annotators: usize,
    #[serde(serialize_with = "serialize_stat")]
    pub percent_agreement: Stat,
    /// Defined for exactly two annotators.
    #[serde(serialize_with = "serialize_stat")]
    pub cohen_kappa: Stat,
    /// Linear- and quadratic-weighted Cohen's kappa, for ordered labels only.
    pub cohen_kappa_weighted: Option<WeightedKappas>,
    pub pairwise_cohen_kappa: Vec<PairKappa>,
    #[serde(serialize_with = "serialize_stat")]
    pub mean_pairwise_cohen_kappa: Stat,
    #[serde(serialize_with = "serialize_stat")]
    pub fleiss_kappa: Stat,
    #[serde(serialize_with = "serialize_stat")]
    pub krippendorff_alpha: Stat,
    pub per_label_alpha: Vec<LabelAgreement>,
    pub ci: Option<AgreementIntervals>,
}

#[derive(Debug, Clone, Serialize)]
pub struct WeightedKappas {
    #[serde(serialize_with = "serialize_stat")]
    pub linear: Stat,
    #[serde(serialize_with = "serialize_stat")]
    pub quadratic: Stat,
}

/// Percentile bootstrap intervals (resampling items) for the headline statistics; each is
/// undefined when its point estimate is. All of them come from one set of replicates
/// ([`bootstrap::bootstrap_agreement`]).
#[derive(Debug, Clone, Serialize)]
pub struct AgreementIntervals {
    pub krippendorff_alpha: Result<BootstrapInterval, Undefined>,
    pub cohen_kappa: Result<BootstrapInterval, Undefined>,
    pub mean_pairwise_cohen_kappa: Result<BootstrapInterval, Undefined>,
    pub fleiss_kappa: Result<BootstrapInterval, Undefined>,
    pub percent_agreement: Result<BootstrapInterval, Undefined>,
}

/// Computes every agreement statistic (and, if asked, bootstrap intervals) for the ratings.
/// Restrict the ratings first ([`Ratings::restrict_to_items`]) to report on a slice.
pub fn agreement_report(ratings: &Ratings, options: &AgreementOptions) -> AgreementReport {
    let active: Vec<usize> = {
        let mut seen = vec![false; ratings.n_annotators()];
        for i in 0..ratings.n_items() {
            for &a in ratings.item_annotators(i) {
                seen[a as usize] = true;
            }
        }
        (0..seen.len()).filter(|&a| seen[a]).collect()
    };
    let two = (active.len() == 2).then(|| (active[0], active[1]));
    let cohen = |weights| match two {
        Some((a, b)) => kappa::cohen_kappa(ratings, a, b, weights).kappa,
        None => Err(Undefined::new(format!(
            "Cohen's kappa needs exactly two annotators (there are {}); see the pairwise kappas",
            active.len()
        ))),
    };
    let pairwise = kappa::pairwise_cohen_kappa(ratings, KappaWeights::Unweighted);
    let mean_pairwise = kappa::mean_pairwise_cohen_kappa(&pairwise);
    let fleiss = kappa::fleiss_kappa(ratings);
    let alpha = krippendorff_alpha(ratings, options.level);
    let cohen_kappa = cohen(KappaWeights::Unweighted);
    let percent = percent_agreement(ratings);
    let ci = options.bootstrap.map(|b| {
        // One set of draws for every statistic whose point estimate is defined; the others
        // keep the point estimate's reason.
        let which = bootstrap::AgreementStatistics {
            alpha: alpha.is_ok().then_some(options.level),
            cohen_kappa: if cohen_kappa.is_ok() { two } else { None },
            mean_pairwise_kappa: mean_pairwise.is_ok(),
            kappa_weights: KappaWeights::Unweighted,
            fleiss_kappa: fleiss.is_ok(),
            percent_agreement: percent.is_ok(),
        };
        let shared = bootstrap::bootstrap_agreement(ratings, &which, &b);
        let interval = |point: &Stat, ci: Option<Result<BootstrapInterval, Undefined>>| match point {
            Ok(_) => ci.expect("asked for every defined statistic"),
            Err(e) => Err(e.clone()),
        };
        AgreementIntervals {
            krippendorff_alpha: interval(&alpha, shared.krippendorff_alpha),
            cohen_kappa: interval(&cohen_kappa, shared.cohen_kappa),
            mean_pairwise_cohen_kappa: interval(&mean_pairwise, shared.mean_pairwise_kappa),
            fleiss_kappa: interval(&fleiss, shared.fleiss_kappa),
            percent_agreement: interval(&percent, shared.percent_agreement),
        }
    });
    AgreementReport {
        n_items: ratings.n_items(),
        n_pairable_items: ratings.n_pairable_items(),
        n_annotations: ratings.n_annotations(),
        n_annotators: active.len(),
        percent_agreement: percent,
        cohen_kappa,
        cohen_kappa_weighted: options.level.is_ordered().then(|| WeightedKappas {
            linear: cohen(KappaWeights::Linear),
            quadratic: cohen(KappaWeights::Quadratic),
        }),
        pairwise_cohen_kappa: pairwise,
        mean_pairwise_cohen_kappa: mean_pairwise,
        fleiss_kappa: fleiss,
        krippendorff_alpha: alpha,
        per_label_alpha: per_label_alpha(ratings),
        ci,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::krippendorff::tests::{arb_ratings, krippendorff_2011_example, ratings_from};
    use crate::stats::krippendorff::krippendorff_alpha;
    use proptest::prelude::*;

    #[test]
    fn percent_agreement_averages_items_equally() {
        // Item 0: a,a,b → 1 agreeing pair of 3; item 1: a,a → 1 of 1; item 2 (one rating) drops.
        let r = ratings_from(&[(0, 0, 0), (0, 1, 0), (0, 2, 1), (1, 0, 0), (1, 1, 0), (2, 0, 1)], &["a", "b"]);
        let p = percent_agreement(&r).unwrap();
        assert!((p - (1.0 / 3.0 + 1.0) / 2.0).abs() < 1e-15);
        let r = ratings_from(&[(0, 0, 0), (1, 1, 0)], &["a", "b"]);
        assert!(percent_agreement(&r).is_err());
    }

    #[test]
    fn per_label_alpha_equals_alpha_on_binary_recoding() {
        let r = krippendorff_2011_example();
        let per_label = per_label_alpha(&r);
        for (c, label) in per_label.iter().enumerate() {
            let mut records = Vec::new();
            for i in 0..r.n_items() {
                for (a, l) in r.item_annotators(i).iter().zip(r.item_labels(i)) {
                    records.push((i, *a as usize, (*l as usize == c) as usize));
                }
            }
            let binary = krippendorff_alpha(&ratings_from(&records, &["other", "this"]), Level::Nominal);
            match (&label.alpha, binary) {
                (Ok(x), Ok(y)) => assert!((x - y).abs() < 1e-12, "label {c}: {x} vs {y}"),
                (Err(_), Err(_)) => {}
                (x, y) => panic!("label {c}: {x:?} vs {y:?}"),
            }
        }
    }

    #[test]
    fn report_for_two_annotators_has_cohen_and_weighted_kappas() {
        let r = ratings_from(&[(0, 0, 0), (0, 1, 0), (1, 0, 1), (1, 1, 2), (2, 0, 2), (2, 1, 2), (3, 0, 1), (3, 1, 0)], &["1", "2", "3"]);
        let report = agreement_report(&r, &AgreementOptions { level: Level::Ordinal, bootstrap: None });
        assert_eq!(report.n_annotators, 2);
        assert_eq!(report.n_pairable_items, 4);
        assert!(report.cohen_kappa.is_ok());
        let w = report.cohen_kappa_weighted.unwrap();
        assert!(w.linear.is_ok() && w.quadratic.is_ok());
        assert_eq!(report.pairwise_cohen_kappa.len(), 1);
        assert_eq!(report.mean_pairwise_cohen_kappa, report.cohen_kappa);
        assert!(report.ci.is_none());
    }

    #[test]
    fn report_for_three_annotators_explains_missing_cohen() {
        let r = krippendorff_2011_example();
        let report = agreement_report(&r, &AgreementOptions { level: Level::Nominal, bootstrap: None });
        assert!(report.cohen_kappa.unwrap_err().reason.contains("exactly two annotators (there are 4)"));
        assert!(report.cohen_kappa_weighted.is_none());
        assert!(report.fleiss_kappa.unwrap_err().reason.contains("different numbers"));
        assert_eq!(report.pairwise_cohen_kappa.len(), 6);
    }

    #[test]
    fn report_with_bootstrap_brackets_the_estimate() {
        let r = krippendorff_2011_example();
        let b = BootstrapOptions { replicates: 200, confidence: 0.9, seed: 3 };
        let report = agreement_report(&r, &AgreementOptions { level: Level::Interval, bootstrap: Some(b) });
        let ci = report.ci.unwrap();
        let alpha = ci.krippendorff_alpha.unwrap();
        assert!(alpha.lower <= alpha.upper);
        assert!(ci.fleiss_kappa.is_err());
        assert!(ci.mean_pairwise_cohen_kappa.is_ok());
    }

    proptest! {
        #[test]
        fn percent_agreement_is_a_share(records in arb_ratings()) {
            let r = ratings_from(&records, &["1", "2", "3", "4", "5"]);
            if let Ok(p) = percent_agreement(&r) { prop_assert!((0.0..=1.0).contains(&p)); }
        }

        #[test]
        fn restricting_to_all_items_changes_nothing(records in arb_ratings()) {
            let r = ratings_from(&records, &["1", "2", "3", "4", "5"]);
            let all: Vec<usize> = (0..r.n_items()).collect();
            let s = r.restrict_to_items(&all);
            prop_assert_eq!(krippendorff_alpha(&r, Level::Ordinal), krippendorff_alpha(&s, Level::Ordinal));
        }
    }
}
