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
    let mut one = bootstrap_items_shared(n_items, 1, options, |draws, out| out[0] = statistic(draws));
    one.pop().expect("one statistic asked for")
}

/// [`bootstrap_items`] for several statistics over one set of draws: each replicate is drawn
/// once and `score` fills one value per statistic from it (an `Err` leaves that statistic's
/// replicate out). Every statistic gets exactly the interval [`bootstrap_items`] would give it
/// alone with the same options, since the draws depend only on the seed and the item count;
/// sharing them saves the drawing (10^8 generator calls for 1,000 replicates of 100,000 items)
/// for every statistic after the first.
pub fn bootstrap_items_shared(
    n_items: usize,
    n_statistics: usize,
    options: &BootstrapOptions,
    mut score: impl FnMut(&[u32], &mut [Stat]),
) -> Vec<Result<BootstrapInterval, Undefined>> {
    let refuse = |reason: &str| vec![Err(Undefined::new(reason)); n_statistics];
    if !(options.confidence > 0.0 && options.confidence < 1.0) {
        return refuse("the confidence level must be between 0 and 1");
    }
    if options.replicates == 0 {
        return refuse("the bootstrap needs at least one replicate");
    }
    if n_items == 0 {
        return refuse("there are no items to resample");
    }
    let mut rng = SeededRng::new(options.seed);
    let mut draws = vec![0u32; n_items];
    let mut values = vec![Vec::with_capacity(options.replicates); n_statistics];
    let mut scores: Vec<Stat> = vec![Ok(0.0); n_statistics];
    for _ in 0..options.replicates {
        draws.iter_mut().for_each(|d| *d = 0);
        for _ in 0..n_items {
            draws[rng.below(n_items as u64) as usize] += 1;
        }
        score(&draws, &mut scores);
        for (kept, score) in values.iter_mut().zip(&scores) {
            if let Ok(v) = score {
                kept.push(*v);
            }
        }
    }
    values.into_iter().map(|v| percentile_interval(v, options)).collect()
}

fn percentile_interval(mut values: Vec<f64>, options: &BootstrapOptions) -> Result<BootstrapInterval, Undefined> {
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
        // Items with equal ratings already share a number (`Ratings::item_pattern`); in the
        // ratings' order, every sum over the patterns runs as it did when the items themselves
        // were sorted by their ratings.
        let (firsts, place) = ratings.patterns_in_order(|_| true);
        let (mut names, mut records) = (Vec::new(), Vec::new());
        for (p, &i) in firsts.iter().enumerate() {
            names.push(ratings.item_name(i).into_owned());
            for (&a, &c) in ratings.item_annotators(i).iter().zip(ratings.item_labels(i)) {
                records.push((p, a as usize, c as usize));
            }
        }
        let item_pattern = (0..ratings.n_items()).map(|i| place[ratings.item_pattern(i) as usize]).collect();
        let ratings = Ratings::from_codes(names, ratings.annotators().to_vec(), ratings.labels().clone(), &records)
            .expect("codes taken from valid ratings");
        Collapsed { ratings, item_pattern }
    }

    /// [`bootstrap_items_shared`] over the original items; `score` receives pattern weights.
    fn bootstrap(
        &self,
        n_statistics: usize,
        options: &BootstrapOptions,
        mut score: impl FnMut(&[u32], &mut [Stat]),
    ) -> Vec<Result<BootstrapInterval, Undefined>> {
        let mut weights = vec![0u32; self.ratings.n_items()];
        bootstrap_items_shared(self.item_pattern.len(), n_statistics, options, |draws, out| {
            pattern_weights(&mut weights, &self.item_pattern, draws);
            score(&weights, out)
        })
    }
}

/// Each pattern's draws in a replicate: the sum of its items' draws. A function of its own, so
/// that this loop over every item (a million, a thousand times a refresh) compiles to a tight
/// loop whatever the caller's closure holds: inlined into it, its pointers were reloaded from
/// the stack on every item (session 39: the headline bootstrap 15 % slower).
#[inline(never)]
fn pattern_weights(weights: &mut [u32], item_pattern: &[u32], draws: &[u32]) {
    weights.iter_mut().for_each(|w| *w = 0);
    for (&p, &d) in item_pattern.iter().zip(draws) {
        weights[p as usize] += d;
    }
}

/// Which agreement statistics [`bootstrap_agreement`] gives intervals for (`None`/`false`:
/// not asked, and not computed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AgreementStatistics {
    /// Krippendorff's alpha at this level.
    pub alpha: Option<Level>,
    /// Cohen's kappa between these two annotators.
    pub cohen_kappa: Option<(usize, usize)>,
    /// The mean of the pairwise Cohen's kappas.
    pub mean_pairwise_kappa: bool,
    /// Weights of both kappas above.
    pub kappa_weights: KappaWeights,
    pub fleiss_kappa: bool,
    pub percent_agreement: bool,
}

/// What [`bootstrap_agreement`] gives: `None` for a statistic not asked for.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SharedIntervals {
    pub krippendorff_alpha: Option<Result<BootstrapInterval, Undefined>>,
    pub cohen_kappa: Option<Result<BootstrapInterval, Undefined>>,
    pub mean_pairwise_kappa: Option<Result<BootstrapInterval, Undefined>>,
    pub fleiss_kappa: Option<Result<BootstrapInterval, Undefined>>,
    pub percent_agreement: Option<Result<BootstrapInterval, Undefined>>,
}

/// Bootstrap intervals for several agreement statistics from one set of draws: every
/// replicate is drawn once (and reduced to pattern weights once) and each asked statistic is
/// scored on it. The one implementation of each statistic's replicate: the single-statistic
/// functions below are this with one statistic asked, so an interval is the same whichever
/// way it was asked for (a test checks it). A statistic that cannot be scored at all (alpha
/// with non-numeric labels at an interval level, percent agreement or Fleiss' kappa undefined
/// on the data, a Cohen pair with no item in common) gets its reason and takes no part.
pub fn bootstrap_agreement(ratings: &Ratings, which: &AgreementStatistics, options: &BootstrapOptions) -> SharedIntervals {
    // Checked on the data before any drawing, each with the reason it cannot be scored.
    let percent = which.percent_agreement.then(|| super::agreement::percent_agreement(ratings).map(|_| ()));
    let fleiss = which.fleiss_kappa.then(|| fleiss_kappa_weighted(ratings, None).map(|_| ()));
    let c = Collapsed::new(ratings);
    let alpha = which.alpha.map(|level| AlphaUnits::new(&c.ratings, level));
    let table = (which.cohen_kappa.is_some() || which.mean_pairwise_kappa).then(|| PairTable::new(&c.ratings));
    let cohen = which.cohen_kappa.map(|(a, b)| {
        let pair = (a.min(b) as u32, a.max(b) as u32);
        let table = table.as_ref().expect("built when a kappa is asked");
        table.pairs.iter().position(|&p| p == pair).ok_or_else(|| Undefined::new("the two annotators have no item in common"))
    });

    // Slots of the statistics that take part, in a fixed order.
    const ALPHA: usize = 0;
    const COHEN: usize = 1;
    const MEAN: usize = 2;
    const FLEISS: usize = 3;
    const PERCENT: usize = 4;
    let scored = [
        matches!(alpha, Some(Ok(_))),
        matches!(cohen, Some(Ok(_))),
        which.mean_pairwise_kappa,
        matches!(fleiss, Some(Ok(_))),
        matches!(percent, Some(Ok(_))),
    ];
    let mut out = SharedIntervals::default();
    let mut intervals = if scored.iter().any(|&s| s) {
        let mut unit_weights = vec![0u32; alpha.as_ref().and_then(|a| a.as_ref().ok()).map_or(0, AlphaUnits::n_units)];
        let weights_kind = which.kappa_weights;
        c.bootstrap(scored.len(), options, |weights, out| {
            if let Some(Ok(units)) = &alpha {
                for (w, &item) in unit_weights.iter_mut().zip(units.unit_items()) {
                    *w = weights[item as usize];
                }
                out[ALPHA] = units.alpha(Some(&unit_weights));
            }
            if let Some(table) = &table {
                let cells = table.confusions(Some(weights));
                if let Some(Ok(slot)) = cohen {
                    out[COHEN] = kappa_from_confusion(table.confusion(&cells, slot), table.n_labels, weights_kind);
                }
                if scored[MEAN] {
                    let defined: Vec<f64> = (0..table.pairs.len())
                        .filter_map(|slot| kappa_from_confusion(table.confusion(&cells, slot), table.n_labels, weights_kind).ok())
                        .collect();
                    out[MEAN] = if defined.is_empty() {
                        Err(Undefined::new("no pair has a defined kappa"))
                    } else {
                        Ok(defined.iter().sum::<f64>() / defined.len() as f64)
                    };
                }
            }
            if scored[FLEISS] {
                out[FLEISS] = fleiss_kappa_weighted(&c.ratings, Some(weights));
            }
            if scored[PERCENT] {
                out[PERCENT] = super::agreement::percent_agreement_weighted(&c.ratings, Some(weights));
            }
        })
        .into_iter()
        .map(Some)
        .collect()
    } else {
        vec![None; scored.len()]
    };
    let mut take = |slot: usize, prepared: Option<Result<(), Undefined>>| {
        prepared.map(|p| p.and_then(|()| intervals[slot].take().expect("scored")))
    };
    out.krippendorff_alpha = take(ALPHA, alpha.map(|a| a.map(|_| ())));
    out.cohen_kappa = take(COHEN, cohen.map(|c| c.map(|_| ())));
    out.mean_pairwise_kappa = take(MEAN, which.mean_pairwise_kappa.then_some(Ok(())));
    out.fleiss_kappa = take(FLEISS, fleiss);
    out.percent_agreement = take(PERCENT, percent);
    out
}

/// Only `alpha` asked of [`bootstrap_agreement`].
fn only(alpha: Option<Level>) -> AgreementStatistics {
    AgreementStatistics {
        alpha,
        cohen_kappa: None,
        mean_pairwise_kappa: false,
        kappa_weights: KappaWeights::Unweighted,
        fleiss_kappa: false,
        percent_agreement: false,
    }
}

/// Bootstrap interval for Krippendorff's alpha.
pub fn bootstrap_alpha(
    ratings: &Ratings,
    level: Level,
    options: &BootstrapOptions,
) -> Result<BootstrapInterval, Undefined> {
    bootstrap_agreement(ratings, &only(Some(level)), options).krippendorff_alpha.expect("asked")
}

/// Bootstrap interval for Cohen's kappa between annotators `a` and `b`.
pub fn bootstrap_cohen_kappa(
    ratings: &Ratings,
    a: usize,
    b: usize,
    weights: KappaWeights,
    options: &BootstrapOptions,
) -> Result<BootstrapInterval, Undefined> {
    let which = AgreementStatistics { cohen_kappa: Some((a, b)), kappa_weights: weights, ..only(None) };
    bootstrap_agreement(ratings, &which, options).cohen_kappa.expect("asked")
}

/// Bootstrap interval for the mean of the pairwise Cohen's kappas.
pub fn bootstrap_mean_pairwise_kappa(
    ratings: &Ratings,
    weights: KappaWeights,
    options: &BootstrapOptions,
) -> Result<BootstrapInterval, Undefined> {
    let which = AgreementStatistics { mean_pairwise_kappa: true, kappa_weights: weights, ..only(None) };
    bootstrap_agreement(ratings, &which, options).mean_pairwise_kappa.expect("asked")
}

/// Bootstrap interval for percent agreement.
pub fn bootstrap_percent_agreement(ratings: &Ratings, options: &BootstrapOptions) -> Result<BootstrapInterval, Undefined> {
    let which = AgreementStatistics { percent_agreement: true, ..only(None) };
    bootstrap_agreement(ratings, &which, options).percent_agreement.expect("asked")
}

/// Bootstrap interval for Fleiss' kappa.
pub fn bootstrap_fleiss_kappa(ratings: &Ratings, options: &BootstrapOptions) -> Result<BootstrapInterval, Undefined> {
    let which = AgreementStatistics { fleiss_kappa: true, ..only(None) };
    bootstrap_agreement(ratings, &which, options).fleiss_kappa.expect("asked")
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

    fn close(a: &Result<BootstrapInterval, Undefined>, b: &Result<BootstrapInterval, Undefined>, what: &str) {
        let (a, b) = (a.as_ref().unwrap(), b.as_ref().unwrap());
        assert!((a.lower - b.lower).abs() < 1e-12 && (a.upper - b.upper).abs() < 1e-12, "{what}: {a:?} vs {b:?}");
        assert_eq!((a.replicates, a.undefined_replicates), (b.replicates, b.undefined_replicates), "{what}");
    }

    /// The shared draws give every statistic the interval of its own bootstrap over the same
    /// draws: each statistic is scored here item by item on the original ratings (no
    /// patterns, no sharing), one `bootstrap_items` run per statistic with the same options.
    #[test]
    fn shared_draws_give_each_statistic_its_own_bootstrap() {
        use crate::stats::agreement::percent_agreement_weighted;
        // Two annotators on every item (Cohen and Fleiss defined), with repeated patterns.
        let mut records = Vec::new();
        for i in 0..40 {
            records.push((i, 0, i % 3));
            records.push((i, 1, if i % 5 == 0 { (i + 1) % 3 } else { i % 3 }));
        }
        let two = ratings_from(&records, &["a", "b", "c"]);
        let four = krippendorff_2011_example();
        let o = BootstrapOptions { replicates: 300, confidence: 0.9, seed: 11 };
        for (r, cohen, fleiss) in [(&two, Some((0, 1)), true), (&four, None, false)] {
            let level = Level::Ordinal;
            let which = AgreementStatistics {
                alpha: Some(level),
                cohen_kappa: cohen,
                mean_pairwise_kappa: true,
                kappa_weights: KappaWeights::Unweighted,
                fleiss_kappa: fleiss,
                percent_agreement: true,
            };
            let shared = bootstrap_agreement(r, &which, &o);
            let n = r.n_items();
            let units = AlphaUnits::new(r, level).unwrap();
            let alpha = bootstrap_items(n, &o, |d| {
                let w: Vec<u32> = units.unit_items().iter().map(|&i| d[i as usize]).collect();
                units.alpha(Some(&w))
            });
            close(shared.krippendorff_alpha.as_ref().unwrap(), &alpha, "alpha");
            let table = PairTable::new(r);
            let kappas = |d: &[u32]| -> Vec<Stat> {
                let cells = table.confusions(Some(d));
                (0..table.pairs.len()).map(|s| kappa_from_confusion(table.confusion(&cells, s), table.n_labels, KappaWeights::Unweighted)).collect()
            };
            let mean = bootstrap_items(n, &o, |d| {
                let k: Vec<f64> = kappas(d).into_iter().filter_map(Result::ok).collect();
                Ok(k.iter().sum::<f64>() / k.len() as f64)
            });
            close(shared.mean_pairwise_kappa.as_ref().unwrap(), &mean, "mean pairwise kappa");
            let percent = bootstrap_items(n, &o, |d| percent_agreement_weighted(r, Some(d)));
            close(shared.percent_agreement.as_ref().unwrap(), &percent, "percent agreement");
            if cohen.is_some() {
                let cohen = bootstrap_items(n, &o, |d| kappas(d).remove(0));
                close(shared.cohen_kappa.as_ref().unwrap(), &cohen, "Cohen");
                let fleiss = bootstrap_items(n, &o, |d| fleiss_kappa_weighted(r, Some(d)));
                close(shared.fleiss_kappa.as_ref().unwrap(), &fleiss, "Fleiss");
            } else {
                assert_eq!(shared.cohen_kappa, None, "not asked");
                assert_eq!(shared.fleiss_kappa, None, "not asked");
            }
            // And the single-statistic entry points give the shared intervals exactly.
            assert_eq!(Some(bootstrap_alpha(r, level, &o)), shared.krippendorff_alpha);
            assert_eq!(Some(bootstrap_percent_agreement(r, &o)), shared.percent_agreement);
            assert_eq!(Some(bootstrap_mean_pairwise_kappa(r, KappaWeights::Unweighted, &o)), shared.mean_pairwise_kappa);
        }
        // A statistic undefined on the data keeps its reason and does not stop the others.
        let which = AgreementStatistics { fleiss_kappa: true, ..only(Some(Level::Nominal)) };
        let shared = bootstrap_agreement(&four, &which, &o);
        assert!(shared.fleiss_kappa.unwrap().unwrap_err().reason.contains("different numbers"));
        assert!(shared.krippendorff_alpha.unwrap().is_ok());
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
