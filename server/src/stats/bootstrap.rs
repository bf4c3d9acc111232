//! Percentile bootstrap confidence intervals by resampling items with replacement.
//!
//! A replicate draws n items out of n with replacement and recomputes the statistic with each
//! item counted as often as it was drawn; the interval is the (1 − c)/2 and (1 + c)/2
//! quantiles of the defined replicates (linear interpolation, NumPy's default). Replicates
//! where the statistic is undefined (say, every drawn item got the same label) are counted
//! and left out.

use super::kappa::{fleiss_kappa_weighted, kappa_from_confusion, KappaWeights, PairTable};
use super::krippendorff::AlphaUnits;
use super::rng::{quantile_sorted, SeededRng};
use super::{Level, Ratings, Stat, Undefined};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapOptions {
    /// Number of replicates (default 1,000).
    pub replicates: usize,
    /// Confidence level in (0, 1) (default 0.95).
    pub confidence: f64,
    pub seed: u64,
}

impl Default for BootstrapOptions {
    fn default() -> Self {
        BootstrapOptions { replicates: 1000, confidence: 0.95, seed: 0 }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct BootstrapInterval {
    pub lower: f64,
    pub upper: f64,
    pub confidence: f64,
    pub replicates: usize,
    /// Replicates whose statistic was undefined and so left out of the quantiles.
    pub undefined_replicates: usize,
}

/// Runs the bootstrap over `n_items` items: `statistic` receives how often each item was
/// drawn in the replicate.
pub fn bootstrap_items(
    n_items: usize,
    options: &BootstrapOptions,
    mut statistic: impl FnMut(&[u32]) -> Stat,
) -> Result<BootstrapInterval, Undefined> {
    if !(options.confidence > 0.0 && options.confidence < 1.0) {
        return Err(Undefined::new("the confidence level must be between 0 and 1"));
    }
    if options.replicates == 0 {
        return Err(Undefined::new("the bootstrap needs at least one replicate"));
    }
    if n_items == 0 {
        return Err(Undefined::new("there are no items to resample"));
    }
    let mut rng = SeededRng::new(options.seed);
    let mut draws = vec![0u32; n_items];
    let mut values = Vec::with_capacity(options.replicates);
    for _ in 0..options.replicates {
        draws.iter_mut().for_each(|d| *d = 0);
        for _ in 0..n_items {
            draws[rng.below(n_items as u64) as usize] += 1;
        }
        if let Ok(v) = statistic(&draws) {
            values.push(v);
        }
    }
    if values.is_empty() {
        return Err(Undefined::new("the statistic was undefined in every bootstrap replicate"));
    }
    values.sort_by(f64::total_cmp);
    let tail = (1.0 - options.confidence) / 2.0;
    Ok(BootstrapInterval {
        lower: quantile_sorted(&values, tail),
        upper: quantile_sorted(&values, 1.0 - tail),
        confidence: options.confidence,
        replicates: options.replicates,
        undefined_replicates: options.replicates - values.len(),
    })
}

/// The ratings with items of equal ratings (the same annotators giving the same labels)
/// merged into one item per pattern. Every statistic bootstrapped here sums per-item terms
/// that depend only on the item's ratings, so a replicate evaluated over the patterns, each
/// weighted by how often its items were drawn, gives the same number (up to the order of
/// floating-point sums) from the same draws: a few thousand patterns instead of every item
/// per replicate, which is what makes 1,000 replicates over 100,000 items take well under a
/// second. The draws themselves are still made over the original items, so the replicates
/// are exactly those of resampling items.
struct Collapsed {
    ratings: Ratings,
    /// Original item → its pattern (an item of `ratings`).
    item_pattern: Vec<u32>,
}

impl Collapsed {
    fn new(ratings: &Ratings) -> Self {
        let key = |i: usize| (ratings.item_annotators(i), ratings.item_labels(i));
        let mut order: Vec<usize> = (0..ratings.n_items()).collect();
        // Ratings are sorted by annotator within an item, so equal patterns have equal slices.
        order.sort_unstable_by(|&x, &y| key(x).cmp(&key(y)));
        let mut item_pattern = vec![0u32; ratings.n_items()];
        let (mut names, mut records) = (Vec::new(), Vec::new());
        let mut previous: Option<usize> = None;
        for &i in &order {
            if previous.is_none_or(|j| key(j) != key(i)) {
                let p = names.len();
                names.push(ratings.items()[i].clone());
                for (&a, &c) in ratings.item_annotators(i).iter().zip(ratings.item_labels(i)) {
                    records.push((p, a as usize, c as usize));
                }
            }
            item_pattern[i] = (names.len() - 1) as u32;
            previous = Some(i);
        }
        let ratings = Ratings::from_codes(names, ratings.annotators().to_vec(), ratings.labels().clone(), &records)
            .expect("codes taken from valid ratings");
        Collapsed { ratings, item_pattern }
    }

    /// [`bootstrap_items`] over the original items; `statistic` receives pattern weights.
    fn bootstrap(&self, options: &BootstrapOptions, mut statistic: impl FnMut(&[u32]) -> Stat) -> Result<BootstrapInterval, Undefined> {
        let mut weights = vec![0u32; self.ratings.n_items()];
        bootstrap_items(self.item_pattern.len(), options, |draws| {
            weights.iter_mut().for_each(|w| *w = 0);
            for (&p, &d) in self.item_pattern.iter().zip(draws) {
                weights[p as usize] += d;
            }
            statistic(&weights)
        })
    }
}

/// Bootstrap interval for Krippendorff's alpha.
pub fn bootstrap_alpha(
    ratings: &Ratings,
    level: Level,
    options: &BootstrapOptions,
) -> Result<BootstrapInterval, Undefined> {
    let c = Collapsed::new(ratings);
    let units = AlphaUnits::new(&c.ratings, level)?;
    let mut unit_weights = vec![0u32; units.n_units()];
    c.bootstrap(options, |weights| {
        for (w, &item) in unit_weights.iter_mut().zip(units.unit_items()) {
            *w = weights[item];
        }
        units.alpha(Some(&unit_weights))
    })
}

/// Bootstrap interval for Cohen's kappa between annotators `a` and `b`.
pub fn bootstrap_cohen_kappa(
    ratings: &Ratings,
    a: usize,
    b: usize,
    weights: KappaWeights,
    options: &BootstrapOptions,
) -> Result<BootstrapInterval, Undefined> {
    let (a, b) = (a.min(b) as u32, a.max(b) as u32);
    let c = Collapsed::new(ratings);
    let table = PairTable::new(&c.ratings);
    let slot = table
        .pairs
        .iter()
        .position(|&p| p == (a, b))
        .ok_or_else(|| Undefined::new("the two annotators have no item in common"))?;
    c.bootstrap(options, |draws| {
        let cells = table.confusions(Some(draws));
        kappa_from_confusion(table.confusion(&cells, slot), table.n_labels, weights)
    })
}

/// Bootstrap interval for the mean of the pairwise Cohen's kappas.
pub fn bootstrap_mean_pairwise_kappa(
    ratings: &Ratings,
    weights: KappaWeights,
    options: &BootstrapOptions,
) -> Result<BootstrapInterval, Undefined> {
    let c = Collapsed::new(ratings);
    let table = PairTable::new(&c.ratings);
    c.bootstrap(options, |draws| {
        let cells = table.confusions(Some(draws));
        let defined: Vec<f64> = (0..table.pairs.len())
            .filter_map(|slot| kappa_from_confusion(table.confusion(&cells, slot), table.n_labels, weights).ok())
            .collect();
        if defined.is_empty() {
            Err(Undefined::new("no pair has a defined kappa"))
        } else {
            Ok(defined.iter().sum::<f64>() / defined.len() as f64)
        }
    })
}

/// Bootstrap interval for percent agreement.
pub fn bootstrap_percent_agreement(ratings: &Ratings, options: &BootstrapOptions) -> Result<BootstrapInterval, Undefined> {
    super::agreement::percent_agreement(ratings)?;
    let c = Collapsed::new(ratings);
    c.bootstrap(options, |draws| super::agreement::percent_agreement_weighted(&c.ratings, Some(draws)))
}

/// Bootstrap interval for Fleiss' kappa.
pub fn bootstrap_fleiss_kappa(ratings: &Ratings, options: &BootstrapOptions) -> Result<BootstrapInterval, Undefined> {
    fleiss_kappa_weighted(ratings, None)?;
    let c = Collapsed::new(ratings);
    c.bootstrap(options, |draws| fleiss_kappa_weighted(&c.ratings, Some(draws)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::kappa::fleiss_kappa;
    use crate::stats::krippendorff::tests::{krippendorff_2011_example, ratings_from};
    use crate::stats::krippendorff::krippendorff_alpha;

    #[test]
    fn same_seed_same_interval_and_it_contains_the_estimate_here() {
        let r = krippendorff_2011_example();
        let o = BootstrapOptions { replicates: 500, confidence: 0.95, seed: 42 };
        let a = bootstrap_alpha(&r, Level::Nominal, &o).unwrap();
        let b = bootstrap_alpha(&r, Level::Nominal, &o).unwrap();
        assert_eq!(a, b);
        let alpha = krippendorff_alpha(&r, Level::Nominal).unwrap();
        assert!(a.lower < alpha && alpha < a.upper, "{a:?} {alpha}");
        let other = bootstrap_alpha(&r, Level::Nominal, &BootstrapOptions { seed: 43, ..o }).unwrap();
        assert_ne!(a, other);
    }

    /// Known output, pinned forever to full precision (docs/stats.md: the same seed gives the
    /// same interval in every release). The mean's interval was computed by an independent
    /// implementation of the procedure (ChaCha8 draws, type-7 quantiles); alpha's is this
    /// code's output when the test was written.
    #[test]
    fn known_intervals_for_a_seed() {
        let x = [0.5, 1.25, 2.0, 3.5, 0.125, 7.0, 4.75, 1.0, 2.5, 6.0];
        let o = BootstrapOptions { replicates: 200, confidence: 0.9, seed: 42 };
        let ci = bootstrap_items(x.len(), &o, |d| {
            Ok(d.iter().zip(&x).fold(0.0, |s, (&k, &v)| s + k as f64 * v) / x.len() as f64)
        })
        .unwrap();
        assert_eq!((ci.lower, ci.upper), (1.67375, 4.125624999999999));
        assert_eq!((ci.replicates, ci.undefined_replicates), (200, 0));

        let r = krippendorff_2011_example();
        let o = BootstrapOptions { replicates: 500, confidence: 0.95, seed: 42 };
        let ci = bootstrap_alpha(&r, Level::Nominal, &o).unwrap();
        assert_eq!((ci.lower, ci.upper, ci.undefined_replicates), (0.4008058624310455, 0.9720588235294104, 0));
    }

    #[test]
    fn all_ones_weights_reproduce_the_point_estimates() {
        let r = krippendorff_2011_example();
        let units = AlphaUnits::new(&r, Level::Ordinal).unwrap();
        let ones = vec![1u32; units.n_units()];
        assert!((units.alpha(Some(&ones)).unwrap() - krippendorff_alpha(&r, Level::Ordinal).unwrap()).abs() < 1e-15);
        let r = ratings_from(&[(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 1), (2, 0, 0), (2, 1, 0)], &["a", "b"]);
        let ones = vec![1u32; 3];
        assert_eq!(fleiss_kappa_weighted(&r, Some(&ones)), fleiss_kappa(&r));
    }

    #[test]
    fn percent_agreement_weights_are_multiplicities() {
        use crate::stats::agreement::{percent_agreement, percent_agreement_weighted};
        let r = ratings_from(&[(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 1), (2, 0, 0), (2, 1, 0)], &["a", "b"]);
        assert_eq!(percent_agreement_weighted(&r, Some(&[1, 1, 1])), percent_agreement(&r));
        // Item 0 (disagreeing) twice, item 2 left out: 1 agreeing of 3.
        assert!((percent_agreement_weighted(&r, Some(&[2, 1, 0])).unwrap() - 1.0 / 3.0).abs() < 1e-15);
        let o = BootstrapOptions { replicates: 200, confidence: 0.95, seed: 3 };
        let ci = bootstrap_percent_agreement(&r, &o).unwrap();
        assert!(ci.lower >= 0.0 && ci.upper <= 1.0 && ci.lower <= ci.upper);
        assert_eq!(bootstrap_percent_agreement(&r, &o), bootstrap_percent_agreement(&r, &o));
    }

    #[test]
    fn item_weights_are_multiplicities() {
        // Weights are multiplicities: weight 2 = the item appears twice.
        let r = ratings_from(&[(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 1), (2, 0, 0), (2, 1, 0)], &["a", "b"]);
        let twice = ratings_from(
            &[(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 1), (2, 0, 0), (2, 1, 0), (3, 0, 0), (3, 1, 1), (4, 0, 1), (4, 1, 1), (5, 0, 0), (5, 1, 0)],
            &["a", "b"],
        );
        let units = AlphaUnits::new(&r, Level::Nominal).unwrap();
        let alpha2 = units.alpha(Some(&[2, 2, 2])).unwrap();
        assert!((alpha2 - krippendorff_alpha(&twice, Level::Nominal).unwrap()).abs() < 1e-15);
        assert!((fleiss_kappa_weighted(&r, Some(&[2, 2, 2])).unwrap() - fleiss_kappa(&twice).unwrap()).abs() < 1e-15);
    }

    #[test]
    fn bad_options_and_undefined_statistics() {
        let o = BootstrapOptions { replicates: 10, confidence: 1.5, seed: 1 };
        assert!(bootstrap_items(3, &o, |_| Ok(0.0)).is_err());
        let o = BootstrapOptions { confidence: 0.9, ..o };
        assert!(bootstrap_items(0, &o, |_| Ok(0.0)).is_err());
        let e = bootstrap_items(3, &o, |_| Err(Undefined::new("x"))).unwrap_err();
        assert!(e.reason.contains("every bootstrap replicate"));
        let o = BootstrapOptions { replicates: 200, ..o };
        let ci = bootstrap_items(3, &o, |d| if d[0] > 1 { Err(Undefined::new("x")) } else { Ok(d[0] as f64) }).unwrap();
        assert!(ci.undefined_replicates > 0 && ci.undefined_replicates < 200);
    }
}
