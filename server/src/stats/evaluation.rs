//! Evaluating predictions against gold labels: accuracy, per-class precision / recall / F1,
//! their macro, micro and support-weighted averages, and the confusion matrix, optionally
//! with per-example weights and per slice.
//!
//! Definitions are scikit-learn's (`precision_recall_fscore_support` with `zero_division=0`
//! and `sample_weight`): precision = tp / predicted, recall = tp / support,
//! F1 = 2tp / (predicted + support), each 0 when its denominator is 0; supports are weighted;
//! averages run over the labels that occur in the gold labels or the predictions of the items
//! evaluated (scikit-learn's default), so a slice averages over its own labels.

use super::{overflow_safe_scale, serialize_stat, Stat, Undefined};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClassMetrics {
    pub label: usize,
    pub precision: f64,
    pub recall: f64,
    pub f1: f64,
    /// Weighted number of items with this gold label.
    pub support: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Evaluation {
    pub n: usize,
    pub total_weight: f64,
    #[serde(serialize_with = "serialize_stat")]
    pub accuracy: Stat,
    #[serde(serialize_with = "serialize_stat")]
    pub macro_f1: Stat,
    #[serde(serialize_with = "serialize_stat")]
    pub micro_f1: Stat,
    #[serde(serialize_with = "serialize_stat")]
    pub weighted_f1: Stat,
    /// Labels occurring in gold or predictions, in label order.
    pub per_class: Vec<ClassMetrics>,
    /// Weighted counts, [gold][predicted], over all labels.
    pub confusion: Vec<Vec<f64>>,
}

fn check_weights(weights: Option<&[f64]>, n: usize) -> Result<(), Undefined> {
    if let Some(w) = weights {
        if w.len() != n {
            return Err(Undefined::new("there must be one weight per item"));
        }
        if let Some(x) = w.iter().find(|x| !(x.is_finite() && **x >= 0.0)) {
            return Err(Undefined::new(format!("weight {x} is not a finite number ≥ 0")));
        }
    }
    Ok(())
}

/// Metrics of `pred` against `gold` (label codes below `n_labels`), items weighted by
/// `weights` (default 1).
pub fn evaluate(gold: &[usize], pred: &[usize], weights: Option<&[f64]>, n_labels: usize) -> Result<Evaluation, Undefined> {
    if gold.len() != pred.len() {
        return Err(Undefined::new("gold labels and predictions must cover the same items"));
    }
    check_weights(weights, gold.len())?;
    if gold.iter().chain(pred).any(|&l| l >= n_labels) {
        return Err(Undefined::new("a label code is outside the label set"));
    }
    let all: Vec<usize> = (0..gold.len()).collect();
    evaluate_subset(gold, pred, weights, n_labels, &all)
}

/// Weights may be anywhere in the finite range: they are divided by (a power of two near) the
/// largest one before anything is added up, so every ratio (accuracy, precision, recall, F1) is computed from sums
/// that cannot overflow, whatever the weights. The reported sums (total weight, supports,
/// confusion cells) are in the caller's units; when they do not fit in a float, the evaluation
/// is refused rather than printed as infinity.
fn evaluate_subset(
    gold: &[usize],
    pred: &[usize],
    weights: Option<&[f64]>,
    l: usize,
    items: &[usize],
) -> Result<Evaluation, Undefined> {
    let scale = overflow_safe_scale(weights.map_or(1.0, |w| items.iter().map(|&i| w[i]).fold(0.0, f64::max)));
    let mut confusion = vec![vec![0.0; l]; l];
    let mut present = vec![false; l];
    let mut total_weight = 0.0;
    for &i in items {
        let w = weights.map_or(1.0, |w| w[i] / scale);
        confusion[gold[i]][pred[i]] += w;
        present[gold[i]] = true;
        present[pred[i]] = true;
        total_weight += w;
    }
    let ratio = |num: f64, den: f64| if den > 0.0 { num / den } else { 0.0 };
    let (mut tp_total, mut support_total) = (0.0, 0.0);
    let mut per_class = Vec::new();
    for c in (0..l).filter(|&c| present[c]) {
        let tp = confusion[c][c];
        let support: f64 = confusion[c].iter().sum();
        let predicted: f64 = (0..l).map(|g| confusion[g][c]).sum();
        tp_total += tp;
        support_total += support;
        per_class.push(ClassMetrics {
            label: c,
            precision: ratio(tp, predicted),
            recall: ratio(tp, support),
            f1: ratio(2.0 * tp, predicted + support),
            support,
        });
    }
    let undefined = |why: &str| Err(Undefined::new(why));
    let (accuracy, macro_f1, micro_f1, weighted_f1) = if items.is_empty() {
        let why = "there are no items to evaluate";
        (undefined(why), undefined(why), undefined(why), undefined(why))
    } else if total_weight == 0.0 {
        let why = "every item has weight 0";
        (undefined(why), undefined(why), undefined(why), undefined(why))
    } else {
        let macro_f1 = per_class.iter().map(|m| m.f1).sum::<f64>() / per_class.len() as f64;
        // Micro-averaged precision and recall both equal tp / total for single-label data.
        let micro_f1 = ratio(tp_total, support_total);
        let weighted_f1 = ratio(per_class.iter().map(|m| m.f1 * m.support).sum::<f64>(), support_total);
        (Ok(tp_total / total_weight), Ok(macro_f1), Ok(micro_f1), Ok(weighted_f1))
    };
    // Back to the caller's units.
    let total_weight = total_weight * scale;
    per_class.iter_mut().for_each(|m| m.support *= scale);
    confusion.iter_mut().flatten().for_each(|x| *x *= scale);
    let reported = std::iter::once(total_weight).chain(per_class.iter().map(|m| m.support));
    if reported.chain(confusion.iter().flatten().copied()).any(|x| !x.is_finite()) {
        return Err(Undefined::new(format!(
            "the weights add up to more than the largest number a float can hold ({:e}); divide them all by a common factor",
            f64::MAX
        )));
    }
    Ok(Evaluation { n: items.len(), total_weight, accuracy, macro_f1, micro_f1, weighted_f1, per_class, confusion })
}

/// The same metrics for each slice: `slice[i]` is item i's slice code (below `n_slices`), or
/// None for items outside every slice of this attribute.
pub fn evaluate_by_slice(
    gold: &[usize],
    pred: &[usize],
    weights: Option<&[f64]>,
    n_labels: usize,
    slice: &[Option<usize>],
    n_slices: usize,
) -> Result<Vec<Evaluation>, Undefined> {
    evaluate(gold, pred, weights, n_labels)?;
    if slice.len() != gold.len() || slice.iter().flatten().any(|&s| s >= n_slices) {
        return Err(Undefined::new("every item needs a slice code below the number of slices"));
    }
    let mut members = vec![Vec::new(); n_slices];
    for (i, s) in slice.iter().enumerate() {
        if let Some(s) = s {
            members[*s].push(i);
        }
    }
    members.iter().map(|items| evaluate_subset(gold, pred, weights, n_labels, items)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::test_support::non_negative_float;
    use proptest::prelude::*;

    #[test]
    fn hand_computed_example() {
        // gold a a a b b c, pred a a b b c c.
        let gold = [0, 0, 0, 1, 1, 2];
        let pred = [0, 0, 1, 1, 2, 2];
        let e = evaluate(&gold, &pred, None, 3).unwrap();
        assert!((e.accuracy.clone().unwrap() - 4.0 / 6.0).abs() < 1e-15);
        let a = &e.per_class[0];
        assert_eq!((a.precision, a.recall, a.support), (1.0, 2.0 / 3.0, 3.0));
        assert!((a.f1 - 0.8).abs() < 1e-15);
        let c = &e.per_class[2];
        assert_eq!((c.precision, c.recall), (0.5, 1.0));
        let macro_f1 = (0.8 + 0.5 + 2.0 / 3.0) / 3.0;
        assert!((e.macro_f1.clone().unwrap() - macro_f1).abs() < 1e-15);
        assert!((e.micro_f1.clone().unwrap() - 4.0 / 6.0).abs() < 1e-15);
        let weighted = (0.8 * 3.0 + 0.5 * 2.0 + 2.0 / 3.0) / 6.0;
        assert!((e.weighted_f1.clone().unwrap() - weighted).abs() < 1e-15);
        assert_eq!(e.confusion[0], vec![2.0, 1.0, 0.0]);
    }

    #[test]
    fn weights_count_items_more_and_absent_labels_are_skipped() {
        let gold = [0, 1];
        let pred = [0, 0];
        let e = evaluate(&gold, &pred, Some(&[3.0, 1.0]), 4).unwrap();
        assert_eq!(e.accuracy, Ok(0.75));
        assert_eq!(e.per_class.len(), 2);
        // Label 1 is never predicted: precision 0 (zero_division = 0), f1 0.
        assert_eq!((e.per_class[1].precision, e.per_class[1].f1), (0.0, 0.0));
    }

    #[test]
    fn undefined_and_bad_input() {
        assert!(evaluate(&[], &[], None, 2).unwrap().accuracy.is_err());
        assert!(evaluate(&[0], &[0], Some(&[0.0]), 2).unwrap().accuracy.is_err());
        assert!(evaluate(&[0], &[0, 1], None, 2).is_err());
        assert!(evaluate(&[0], &[5], None, 2).is_err());
        assert!(evaluate(&[0], &[0], Some(&[-1.0]), 2).is_err());
    }

    #[test]
    fn slices_evaluate_their_own_items() {
        let gold = [0, 0, 1, 1];
        let pred = [0, 1, 1, 1];
        let slices = evaluate_by_slice(&gold, &pred, None, 2, &[Some(0), Some(0), Some(1), None], 2).unwrap();
        assert_eq!(slices[0].n, 2);
        assert_eq!(slices[0].accuracy, Ok(0.5));
        assert_eq!(slices[1].accuracy, Ok(1.0));
        assert_eq!(slices[1].per_class.len(), 1);
    }

    #[test]
    fn weights_near_the_largest_float() {
        // gold a a b, pred a b b. These weights overflowed the sums: every F1 came out null
        // with no reason given.
        let (gold, pred) = ([0, 0, 1], [0, 1, 1]);
        let big = [f64::MAX / 4.0, f64::MAX / 4.0, f64::MAX / 2.0];
        let e = evaluate(&gold, &pred, Some(&big), 2).unwrap();
        let small = evaluate(&gold, &pred, Some(&[1.0, 1.0, 2.0]), 2).unwrap();
        for (got, want) in [(&e.accuracy, &small.accuracy), (&e.macro_f1, &small.macro_f1), (&e.micro_f1, &small.micro_f1), (&e.weighted_f1, &small.weighted_f1)] {
            assert!((got.clone().unwrap() - want.clone().unwrap()).abs() < 1e-15, "{e:?} vs {small:?}");
        }
        assert_eq!(e.total_weight, f64::MAX);
        assert_eq!(e.per_class[1].support, f64::MAX / 2.0);
        // A total that fits, but F1's intermediate sums did not: class b's F1 came out 0.
        let big = [0.2 * f64::MAX, 0.2 * f64::MAX, 0.45 * f64::MAX];
        let e = evaluate(&gold, &pred, Some(&big), 2).unwrap();
        let small = evaluate(&gold, &pred, Some(&[4.0, 4.0, 9.0]), 2).unwrap();
        assert!((e.per_class[1].f1 - small.per_class[1].f1).abs() < 1e-15, "{e:?}");
        assert!((e.micro_f1.clone().unwrap() - small.micro_f1.clone().unwrap()).abs() < 1e-15, "{e:?}");
        // Weights whose total does not fit in a float: refused, saying so.
        let e = evaluate(&gold, &pred, Some(&[f64::MAX, f64::MAX, 1.0]), 2).unwrap_err();
        assert!(e.reason.starts_with("the weights add up to more than the largest number a float can hold"), "{e}");
        // Subnormal weights are weights.
        let tiny = f64::from_bits(1);
        let e = evaluate(&gold, &pred, Some(&[tiny, tiny, 2.0 * tiny]), 2).unwrap();
        assert_eq!(e.accuracy, Ok(0.75));
        // Infinite and NaN weights are refused.
        assert!(evaluate(&gold, &pred, Some(&[1.0, f64::INFINITY, 1.0]), 2).unwrap_err().reason.contains("weight inf"));
        assert!(evaluate(&gold, &pred, Some(&[1.0, f64::NAN, 1.0]), 2).unwrap_err().reason.contains("weight NaN"));
    }

    proptest! {
        /// Over the whole range of weights (0, subnormals, up to the largest float): every
        /// metric is in [0, 1] or undefined with a reason, every reported sum is finite, the
        /// ratios are those of the weights divided by the largest (ordinary floats), and the
        /// only refusal is a total weight beyond the largest float.
        #[test]
        fn metrics_over_the_whole_float_range(
            rows in proptest::collection::vec((0usize..3, 0usize..3, non_negative_float()), 1..20)
        ) {
            let gold: Vec<usize> = rows.iter().map(|r| r.0).collect();
            let pred: Vec<usize> = rows.iter().map(|r| r.1).collect();
            let w: Vec<f64> = rows.iter().map(|r| r.2).collect();
            let max = w.iter().copied().fold(0.0, f64::max);
            let e = match evaluate(&gold, &pred, Some(&w), 3) {
                Ok(e) => e,
                Err(u) => {
                    prop_assert!(u.reason.starts_with("the weights add up to more than"), "{u}");
                    // Indeed: the weights over the largest, summed, times the largest, overflow
                    // (or come within rounding of the largest float).
                    let total = w.iter().map(|x| x / max).sum::<f64>() * max;
                    prop_assert!(total.is_infinite() || total > f64::MAX * (1.0 - 1e-12), "{total}");
                    return Ok(());
                }
            };
            let unit = |x: f64| (0.0..=1.0 + 1e-12).contains(&x);
            for m in &e.per_class {
                prop_assert!(unit(m.precision) && unit(m.recall) && unit(m.f1) && m.support.is_finite(), "{m:?}");
            }
            prop_assert!(e.total_weight.is_finite() && e.confusion.iter().flatten().all(|x| x.is_finite()));
            for stat in [&e.accuracy, &e.macro_f1, &e.micro_f1, &e.weighted_f1] {
                match stat {
                    Ok(x) => prop_assert!(unit(*x), "{e:?}"),
                    Err(u) => prop_assert_eq!(u.reason.as_str(), "every item has weight 0"),
                }
            }
            // Where a weight is below 1e-290 of the largest, the two scalings round it
            // differently (to a subnormal or to 0), and a class made only of such weights can
            // then get any precision; compare where every weight is 0 or clearly above that.
            let clear = w.iter().all(|&x| x == 0.0 || x / max >= 1e-290);
            if max > 0.0 && clear {
                let scaled: Vec<f64> = w.iter().map(|x| x / max).collect();
                let reference = evaluate(&gold, &pred, Some(&scaled), 3).unwrap();
                let close = |a: &Stat, b: &Stat| match (a, b) {
                    (Ok(a), Ok(b)) => (a - b).abs() <= 1e-9,
                    (a, b) => a == b,
                };
                prop_assert!(close(&e.accuracy, &reference.accuracy) && close(&e.macro_f1, &reference.macro_f1)
                    && close(&e.micro_f1, &reference.micro_f1) && close(&e.weighted_f1, &reference.weighted_f1),
                    "{e:?} vs {reference:?}");
            }
        }

        #[test]
        fn micro_f1_is_accuracy_and_unit_weights_change_nothing(
            pairs in proptest::collection::vec((0usize..4, 0usize..4), 1..50)
        ) {
            let (gold, pred): (Vec<usize>, Vec<usize>) = pairs.into_iter().unzip();
            let e = evaluate(&gold, &pred, None, 4).unwrap();
            prop_assert!((e.micro_f1.clone().unwrap() - e.accuracy.clone().unwrap()).abs() < 1e-12);
            let ones = vec![1.0; gold.len()];
            prop_assert_eq!(evaluate(&gold, &pred, Some(&ones), 4).unwrap(), e);
        }
    }
}
