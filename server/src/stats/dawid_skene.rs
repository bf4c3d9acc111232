//! Dawid–Skene (1979) expectation–maximisation: each annotator has a confusion matrix
//! P(given | true), items have a latent true label with class priors, and EM alternates
//! between item posteriors (E-step) and priors and confusions (M-step).
//!
//! Initialised from majority-vote shares; each iteration is an E-step then an M-step, and the
//! returned priors and confusions are those re-estimated from the final posteriors (the same
//! order as crowd-kit's `DawidSkene`). Stops when the mean log-likelihood per annotation
//! improves by less than `tol`, or after `max_iter` iterations. Items with known gold labels
//! keep a one-hot posterior throughout, and the model learns from them.
//!
//! EM runs over response patterns rather than items (`aggregate::Patterns`): every item with
//! the same ratings and the same gold answer has the same posterior, so one row per pattern,
//! weighted by its number of items, is the same computation. 100,000 items rated by 3 of a few
//! labelers have a few hundred patterns: each iteration costs microseconds, not tens of
//! milliseconds, and the default tolerance and iteration limit cost nothing worth capping.

use super::aggregate::{m_step, Aggregation, Model, Patterns};
use super::{Ratings, Undefined};

#[derive(Debug, Clone, PartialEq)]
pub struct DawidSkeneOptions {
    /// Iteration limit (default 100).
    pub max_iter: usize,
    /// Stop when the mean log-likelihood per annotation improves by less than this (default 1e-7).
    pub tol: f64,
    /// Known labels: (item, label) codes.
    pub gold: Vec<(usize, usize)>,
}

impl Default for DawidSkeneOptions {
    fn default() -> Self {
        DawidSkeneOptions { max_iter: 100, tol: 1e-7, gold: Vec::new() }
    }
}

/// Posteriors closer than this to the best count as a tie (EM arithmetic is not exact).
const TIE_TOLERANCE: f64 = 1e-9;

/// Dawid–Skene over the ratings. EM runs over response patterns ([`Patterns`]): items with the
/// same ratings and gold answer share one weighted row, which is the same EM with far fewer
/// rows (a test checks it against one row per item).
pub fn dawid_skene(ratings: &Ratings, options: &DawidSkeneOptions) -> Result<Aggregation, Undefined> {
    dawid_skene_over(ratings, options, Patterns::collapsed)
}

fn dawid_skene_over(
    ratings: &Ratings,
    options: &DawidSkeneOptions,
    rows_of: fn(&Ratings, &[Option<u32>]) -> Patterns,
) -> Result<Aggregation, Undefined> {
    let l = ratings.n_labels();
    if ratings.n_annotations() == 0 {
        return Err(Undefined::new("there are no ratings"));
    }
    if !options.tol.is_finite() && options.tol != f64::NEG_INFINITY {
        return Err(Undefined::new("the tolerance must be a number"));
    }
    let mut gold: Vec<Option<u32>> = vec![None; ratings.n_items()];
    for &(item, label) in &options.gold {
        if item >= ratings.n_items() || label >= l {
            return Err(Undefined::new("a gold label refers to an unknown item or label"));
        }
        gold[item] = Some(label as u32);
    }
    let rows = rows_of(ratings, &gold);
    let mut posteriors = rows.vote_shares();
    apply_gold(&mut posteriors, &rows.gold, l);
    let mut model = m_step(&rows, &posteriors);
    let n_annotations = ratings.n_annotations() as f64;
    let (mut iterations, mut converged, mut last_ll, mut previous_ll) = (0, false, None, None::<f64>);
    for it in 1..=options.max_iter {
        let ll = e_step(&rows, &model, &mut posteriors, l) / n_annotations;
        model = m_step(&rows, &posteriors);
        iterations = it;
        last_ll = Some(ll);
        if let Some(prev) = previous_ll {
            if ll - prev < options.tol {
                converged = true;
                break;
            }
        }
        previous_ll = Some(ll);
    }
    Ok(Aggregation::assemble(&rows, posteriors, model, TIE_TOLERANCE, iterations, last_ll, converged))
}

fn apply_gold(posteriors: &mut [f64], gold: &[Option<u32>], l: usize) {
    for (p, g) in gold.iter().enumerate() {
        if let Some(g) = g {
            let row = &mut posteriors[p * l..(p + 1) * l];
            row.iter_mut().for_each(|x| *x = 0.0);
            row[*g as usize] = 1.0;
        }
    }
}

/// Posteriors T_pc ∝ π_c Π_r P_a(given_r | c) per pattern row, computed in log space; returns
/// the log-likelihood of all annotations (each row's times its number of items; for gold
/// items, of the ratings together with the gold label).
fn e_step(rows: &Patterns, model: &Model, posteriors: &mut [f64], l: usize) -> f64 {
    let log_priors: Vec<f64> = model.priors.iter().map(|p| p.ln()).collect();
    let log_conf: Vec<f64> = model.confusions.iter().map(|p| p.ln()).collect();
    let mut scores = vec![0.0f64; l];
    let mut total = 0.0;
    for p in 0..rows.n_rows() {
        scores.copy_from_slice(&log_priors);
        let (annotators, labels) = rows.row(p);
        for (&a, &given) in annotators.iter().zip(labels) {
            let row = &log_conf[(a as usize * l + given as usize) * l..][..l];
            for c in 0..l {
                scores[c] += row[c];
            }
        }
        let w = rows.weights[p];
        let out = &mut posteriors[p * l..(p + 1) * l];
        if let Some(g) = rows.gold[p] {
            total += w * scores[g as usize];
            continue; // the posterior stays one-hot
        }
        let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if max == f64::NEG_INFINITY {
            // Cannot happen after an M-step from these posteriors (every item keeps a class
            // that explains all its ratings), but never divide 0 by 0.
            continue;
        }
        let mut sum = 0.0;
        for c in 0..l {
            out[c] = (scores[c] - max).exp();
            sum += out[c];
        }
        out.iter_mut().for_each(|x| *x /= sum);
        total += w * (max + sum.ln());
    }
    total
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::aggregate::majority_vote;
    use crate::stats::krippendorff::tests::{arb_ratings, ratings_from};
    use proptest::prelude::*;

    /// Three careful annotators and one who always says "a": DS learns to ignore the last.
    fn three_good_one_spammer() -> crate::stats::Ratings {
        let truth = [0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 0, 1, 1, 0, 1];
        let mut records = Vec::new();
        for (i, &t) in truth.iter().enumerate() {
            records.push((i, 0, t));
            records.push((i, 1, if i % 5 == 0 { 1 - t } else { t }));
            records.push((i, 2, if i % 7 == 3 { 1 - t } else { t }));
            records.push((i, 3, 0));
        }
        ratings_from(&records, &["a", "b"])
    }

    #[test]
    fn learns_annotator_quality_and_converges() {
        let r = three_good_one_spammer();
        let ds = dawid_skene(&r, &DawidSkeneOptions::default()).unwrap();
        assert!(ds.converged, "{} iterations", ds.iterations);
        assert!(ds.iterations < 100);
        // The spammer's row for true b puts (almost) all mass on a.
        let spam = ds.confusion(3);
        assert!(spam[2] > 0.99, "{spam:?}");
        // Annotator 0 is right on every item but one that the others outvote (item 10).
        let good = ds.confusion(0);
        assert!(good[0] > 0.9 && good[3] > 0.9, "{good:?}");
        assert!((ds.priors.iter().sum::<f64>() - 1.0).abs() < 1e-12);
    }

    #[test]
    fn zero_iterations_is_majority_vote() {
        let r = three_good_one_spammer();
        let ds = dawid_skene(&r, &DawidSkeneOptions { max_iter: 0, ..Default::default() }).unwrap();
        let mv = majority_vote(&r);
        for i in 0..r.n_items() {
            assert_eq!(ds.posterior(i), mv.posterior(i));
        }
        assert_eq!(ds.priors, mv.priors);
        assert_eq!(ds.iterations, 0);
    }

    #[test]
    fn gold_items_stay_fixed() {
        let r = ratings_from(&[(0, 0, 0), (0, 1, 1), (1, 0, 1), (1, 1, 1), (2, 0, 0), (2, 1, 0)], &["a", "b"]);
        let ds = dawid_skene(&r, &DawidSkeneOptions { gold: vec![(0, 1)], ..Default::default() }).unwrap();
        assert_eq!(ds.posterior(0), &[0.0, 1.0]);
        assert_eq!(ds.label(0), Some(1));
        assert!(dawid_skene(&r, &DawidSkeneOptions { gold: vec![(9, 0)], ..Default::default() }).is_err());
    }

    /// The pattern rows are the same EM as one row per item: on a random instance (8
    /// annotators, 3 ratings per item from varying annotators, 4 labels, some gold), posteriors,
    /// priors, confusions and the iteration count agree.
    #[test]
    fn collapsed_patterns_equal_the_per_item_computation() {
        use crate::stats::rng::SeededRng;
        let mut rng = SeededRng::new(11);
        let (n_items, n_annotators, l) = (3000usize, 8u64, 4u64);
        let skill = [0.95, 0.9, 0.85, 0.8, 0.7, 0.6, 0.5, 0.3];
        let mut records = Vec::new();
        let mut gold = Vec::new();
        for i in 0..n_items {
            let truth = rng.below(l) as usize;
            let mut who: Vec<usize> = Vec::new();
            while who.len() < 3 {
                let a = rng.below(n_annotators) as usize;
                if !who.contains(&a) {
                    who.push(a);
                }
            }
            for a in who {
                let right = (rng.below(1000) as f64) < skill[a] * 1000.0;
                let label = if right { truth } else { rng.below(l) as usize };
                records.push((i, a, label));
            }
            if i % 97 == 0 {
                gold.push((i, truth));
            }
        }
        let r = ratings_from(&records, &["a", "b", "c", "d"]);
        let options = DawidSkeneOptions { gold, ..Default::default() };
        let fast = dawid_skene(&r, &options).unwrap();
        let slow = dawid_skene_over(&r, &options, Patterns::per_item).unwrap();
        assert!(Patterns::collapsed(&r, &[]).n_rows() < n_items / 2, "the instance repeats patterns");
        assert_eq!((fast.iterations, fast.converged), (slow.iterations, slow.converged));
        let close = |x: &[f64], y: &[f64]| x.iter().zip(y).all(|(a, b)| (a - b).abs() < 1e-9);
        for i in 0..r.n_items() {
            assert!(close(fast.posterior(i), slow.posterior(i)), "item {i}: {:?} vs {:?}", fast.posterior(i), slow.posterior(i));
            assert_eq!(fast.label(i), slow.label(i), "item {i}");
        }
        assert!(close(&fast.priors, &slow.priors));
        for a in 0..r.n_annotators() {
            assert!(close(fast.confusion(a), slow.confusion(a)), "annotator {a}");
        }
        assert!((fast.log_likelihood.unwrap() - slow.log_likelihood.unwrap()).abs() < 1e-9);
    }

    #[test]
    fn no_ratings_is_undefined() {
        let r = ratings_from(&[], &["a", "b"]);
        assert!(dawid_skene(&r, &DawidSkeneOptions::default()).is_err());
    }

    proptest! {
        #[test]
        fn log_likelihood_never_decreases(records in arb_ratings()) {
            let r = ratings_from(&records, &["1", "2", "3", "4", "5"]);
            prop_assume!(r.n_annotations() > 0);
            let mut previous = f64::NEG_INFINITY;
            for it in 1..8 {
                let ds = dawid_skene(&r, &DawidSkeneOptions { max_iter: it, tol: f64::NEG_INFINITY, gold: vec![] }).unwrap();
                let ll = ds.log_likelihood.unwrap();
                prop_assert!(ll >= previous - 1e-9, "iteration {it}: {ll} < {previous}");
                previous = ll;
                for i in 0..r.n_items() {
                    let s: f64 = ds.posterior(i).iter().sum();
                    prop_assert!(r.item_len(i) == 0 || (s - 1.0).abs() < 1e-9);
                    prop_assert!(ds.posterior(i).iter().all(|p| p.is_finite()));
                }
            }
        }
    }
}
