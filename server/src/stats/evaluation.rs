//! Evaluating predictions against gold labels: accuracy, per-class precision / recall / F1,
//! their macro, micro and support-weighted averages, and the confusion matrix, optionally
//! with per-example weights and per slice.
//!
//! Definitions are scikit-learn's (`precision_recall_fscore_support` with `zero_division=0`
//! and `sample_weight`): precision = tp / predicted, recall = tp / support,
//! F1 = 2tp / (predicted + support), each 0 when its denominator is 0; supports are weighted;
//! averages run over the labels that occur in the gold labels or the predictions of the items
//! evaluated (scikit-learn's default), so a slice averages over its own labels.

use super::{serialize_stat, Stat, Undefined};
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
    Ok(evaluate_subset(gold, pred, weights, n_labels, &all))
}

fn evaluate_subset(gold: &[usize], pred: &[usize], weights: Option<&[f64]>, l: usize, items: &[usize]) -> Evaluation {
    let mut confusion = vec![vec![0.0; l]; l];
    let mut present = vec![false; l];
    let mut total_weight = 0.0;
    for &i in items {
        let w = weights.map_or(1.0, |w| w[i]);
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
        let micro_f1 = ratio(2.0 * tp_total, 2.0 * support_total);
        let weighted_f1 = ratio(per_class.iter().map(|m| m.f1 * m.support).sum::<f64>(), support_total);
        (Ok(tp_total / total_weight), Ok(macro_f1), Ok(micro_f1), Ok(weighted_f1))
    };
    Evaluation { n: items.len(), total_weight, accuracy, macro_f1, micro_f1, weighted_f1, per_class, confusion }
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
    Ok(members.iter().map(|items| evaluate_subset(gold, pred, weights, n_labels, items)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
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

    proptest! {
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
