//! Confident learning (Northcutt, Jiang & Chuang, 2021, "Confident Learning: Estimating
//! Uncertainty in Dataset Labels"): find items whose given label is probably wrong from a
//! model's out-of-sample predicted probabilities.
//!
//! Steps, each as cleanlab 2.x does them so results can be checked against it:
//! 1. Per-class threshold t_j: the mean predicted probability of class j over the items given
//!    label j (a class nobody was given gets 2, i.e. never confident; floor 2e-6).
//! 2. Confident joint C[given][guess]: an item counts when some p_j ≥ t_j − 1e-6; its guess is
//!    that class, or the overall argmax when several classes pass. The diagonal is at least 1.
//! 3. Calibration: each row scaled to the given-label count, the whole to the number of items,
//!    then rounded to integers keeping row totals (largest remainders).
//! 4. Prune by noise rate: for given label k and each other class j, the C[k][j] items given k
//!    with the largest margin p_j − p_k are flagged (after cleanlab's `min_examples_per_class`
//!    = 1 adjustment); items whose given label is also the predicted argmax are unflagged.
//! 5. Flagged items are ranked by self-confidence p_given, lowest (most likely wrong) first.
//!
//! The noise matrix is P(given = i | true = j) = C[i][j] / Σ_i C[i][j] from the calibrated
//! joint, with off-diagonal rates clipped to 0.9999 and columns renormalised (cleanlab's
//! `estimate_latent`). Ties (equal margins or self-confidences) are broken by item order;
//! NumPy's unstable sort may order exact ties differently.

use super::Undefined;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConfidentLearning {
    /// Per-class confidence thresholds t_j.
    pub thresholds: Vec<f64>,
    /// Calibrated confident joint, [given][true] counts.
    pub confident_joint: Vec<Vec<u64>>,
    /// P(given = i | true = j), indexed [given][true]; each column sums to 1.
    pub noise_matrix: Vec<Vec<f64>>,
    /// Flagged items, most likely error (lowest self-confidence) first.
    pub flagged: Vec<usize>,
    /// p_given for every item.
    pub self_confidence: Vec<f64>,
}

/// `given[i]` is item i's label code, `probs` the row-major n × k predicted probabilities.
pub fn confident_learning(given: &[usize], probs: &[f64], n_classes: usize) -> Result<ConfidentLearning, Undefined> {
    let (n, k) = (given.len(), n_classes);
    if k < 2 {
        return Err(Undefined::new("confident learning needs at least two classes"));
    }
    if n == 0 {
        return Err(Undefined::new("there are no items"));
    }
    if probs.len() != n * k {
        return Err(Undefined::new("there must be one probability per item and class"));
    }
    if let Some(i) = given.iter().position(|&g| g >= k) {
        return Err(Undefined::new(format!("item {i} has a label outside the classes")));
    }
    if let Some(x) = probs.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(Undefined::new(format!("probability {x} is outside [0, 1]")));
    }
    let row = |i: usize| &probs[i * k..(i + 1) * k];

    let mut label_counts = vec![0u64; k];
    let mut sums = vec![0.0; k];
    for i in 0..n {
        label_counts[given[i]] += 1;
        sums[given[i]] += row(i)[given[i]];
    }
    let thresholds: Vec<f64> = (0..k)
        .map(|j| if label_counts[j] > 0 { sums[j] / label_counts[j] as f64 } else { 2.0 })
        .map(|t| t.max(2e-6))
        .collect();

    // Confident joint, [given][guess].
    let mut joint = vec![vec![0.0f64; k]; k];
    for i in 0..n {
        let p = row(i);
        let confident: Vec<usize> = (0..k).filter(|&j| p[j] >= thresholds[j] - 1e-6).collect();
        let guess = match confident.len() {
            0 => continue,
            1 => confident[0],
            _ => argmax(p),
        };
        joint[given[i]][guess] += 1.0;
    }
    for (j, row) in joint.iter_mut().enumerate() {
        row[j] = row[j].max(1.0);
    }
    let calibrated = calibrate(&joint, &label_counts, n);

    // Prune by noise rate (cleanlab's `_keep_at_least_n_per_class` with n = 1, then per class).
    let prune = prune_counts(&calibrated);
    let mut flagged_mask = vec![false; n];
    let mut members: Vec<Vec<usize>> = vec![Vec::new(); k];
    for i in 0..n {
        members[given[i]].push(i);
    }
    for (class, items) in members.iter().enumerate() {
        if items.len() <= 1 {
            continue; // too few examples to prune (min_examples_per_class)
        }
        for (other, counts) in prune.iter().enumerate() {
            let count = counts[class] as usize;
            if other == class || count == 0 {
                continue;
            }
            let mut by_margin = items.clone();
            let margin = |i: usize| row(i)[other] - row(i)[class];
            by_margin.sort_by(|&a, &b| margin(b).total_cmp(&margin(a)).then(a.cmp(&b)));
            for &i in by_margin.iter().take(count) {
                flagged_mask[i] = true;
            }
        }
    }
    // Unflag items the model agrees with (cleanlab's `_reduce_issues`: the given label gets a
    // 1e-6 head start in the argmax).
    for i in 0..n {
        let mut p = row(i).to_vec();
        p[given[i]] += 1e-6;
        if argmax(&p) == given[i] {
            flagged_mask[i] = false;
        }
    }
    let self_confidence: Vec<f64> = (0..n).map(|i| row(i)[given[i]]).collect();
    let mut flagged: Vec<usize> = (0..n).filter(|&i| flagged_mask[i]).collect();
    flagged.sort_by(|&a, &b| self_confidence[a].total_cmp(&self_confidence[b]).then(a.cmp(&b)));

    let noise_matrix = noise_matrix(&calibrated);
    Ok(ConfidentLearning { thresholds, confident_joint: calibrated, noise_matrix, flagged, self_confidence })
}

/// The first index of the largest value (NumPy's argmax).
fn argmax(p: &[f64]) -> usize {
    (0..p.len()).fold(0, |b, j| if p[j] > p[b] { j } else { b })
}

fn calibrate(joint: &[Vec<f64>], label_counts: &[u64], n: usize) -> Vec<Vec<u64>> {
    let mut scaled: Vec<Vec<f64>> = joint
        .iter()
        .zip(label_counts)
        .map(|(row, &count)| {
            let total: f64 = row.iter().sum::<f64>().max(1e-100);
            row.iter().map(|x| x / total * count as f64).collect()
        })
        .collect();
    let grand: f64 = scaled.iter().flatten().sum::<f64>().max(1e-100);
    for row in &mut scaled {
        for x in row.iter_mut() {
            *x = *x / grand * n as f64;
        }
    }
    scaled.iter().map(|row| round_preserving_sum(row)).collect()
}

/// Rounds to integers (half to even), then moves the total back to the rounded float total by
/// adding to the largest remainders, or taking from the smallest, as cleanlab does.
fn round_preserving_sum(values: &[f64]) -> Vec<u64> {
    let mut ints: Vec<f64> = values.iter().map(|v| v.round_ties_even()).collect();
    let target = values.iter().sum::<f64>().round_ties_even();
    for _ in 0..values.len() + 1 {
        let current = ints.iter().sum::<f64>().round_ties_even();
        let diff = target - current;
        if diff.abs() <= 1e-6 {
            break;
        }
        let step = if diff < 0.0 { -1.0 } else { 1.0 };
        let changes = (diff.abs() as usize).min(values.len());
        let mut order: Vec<usize> = (0..values.len()).collect();
        // NumPy: argsort(remainders) ascending (stable for these short rows), reversed when adding.
        order.sort_by(|&a, &b| (values[a] - ints[a]).total_cmp(&(values[b] - ints[b])).then(a.cmp(&b)));
        if step > 0.0 {
            order.reverse();
        }
        for &j in order.iter().take(changes) {
            ints[j] += step;
        }
    }
    ints.iter().map(|&x| x.max(0.0) as u64).collect()
}

/// cleanlab's prune-count matrix, indexed [true][given]: the transposed joint, with each given
/// label keeping at least one item on its diagonal (the difference taken evenly from that
/// column's nonzero noise counts) and fractions truncated.
#[allow(clippy::needless_range_loop)] // matrix code reads best with explicit indices
fn prune_counts(calibrated: &[Vec<u64>]) -> Vec<Vec<u64>> {
    let k = calibrated.len();
    let mut m: Vec<Vec<f64>> = (0..k).map(|t| (0..k).map(|g| calibrated[g][t] as f64).collect()).collect();
    for g in 0..k {
        let diagonal = m[g][g];
        let raised = diagonal.max(1.0);
        let diff = raised - diagonal;
        let nonzero = (0..k).filter(|&t| m[t][g] != 0.0).count() as f64;
        let spread = (nonzero - 1.0).max(1.0);
        for t in 0..k {
            m[t][g] = (m[t][g] - diff / spread).max(0.0);
        }
        m[g][g] = raised;
    }
    m.iter().map(|row| row.iter().map(|x| x.trunc() as u64).collect()).collect()
}

fn noise_matrix(calibrated: &[Vec<u64>]) -> Vec<Vec<f64>> {
    let k = calibrated.len();
    let column_total = |t: usize| ((0..k).map(|g| calibrated[g][t]).sum::<u64>() as f64).max(1e-100);
    let mut noise: Vec<Vec<f64>> =
        (0..k).map(|g| (0..k).map(|t| calibrated[g][t] as f64 / column_total(t)).collect()).collect();
    for (g, row) in noise.iter_mut().enumerate() {
        for (t, x) in row.iter_mut().enumerate() {
            if g != t {
                *x = x.clamp(0.0, 0.9999);
            }
        }
    }
    for t in 0..k {
        let total = (0..k).map(|g| noise[g][t]).sum::<f64>().max(1e-100);
        for row in noise.iter_mut() {
            row[t] /= total;
        }
    }
    noise
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn probs_of(rows: &[[f64; 2]]) -> Vec<f64> {
        rows.iter().flatten().copied().collect()
    }

    #[test]
    fn flags_the_confidently_mislabeled_item_first() {
        // Given labels: items 0-4 "0", items 5-9 "1". The model strongly disagrees on 3 and 7.
        let given = [0, 0, 0, 0, 0, 1, 1, 1, 1, 1];
        let probs = probs_of(&[
            [0.9, 0.1], [0.8, 0.2], [0.85, 0.15], [0.05, 0.95], [0.7, 0.3],
            [0.2, 0.8], [0.1, 0.9], [0.9, 0.1], [0.3, 0.7], [0.25, 0.75],
        ]);
        let cl = confident_learning(&given, &probs, 2).unwrap();
        assert_eq!(cl.flagged, vec![3, 7]);
        // Thresholds: mean p_0 over given-0 items, mean p_1 over given-1 items.
        assert!((cl.thresholds[0] - (0.9 + 0.8 + 0.85 + 0.05 + 0.7) / 5.0).abs() < 1e-12);
        for t in 0..2 {
            let s: f64 = (0..2).map(|g| cl.noise_matrix[g][t]).sum();
            assert!((s - 1.0).abs() < 1e-12);
        }
        let total: u64 = cl.confident_joint.iter().flatten().sum();
        assert_eq!(total, 10);
    }

    #[test]
    fn round_preserving_sum_keeps_totals() {
        // Ties in the remainders go to the later entry when adding, the earlier when taking.
        assert_eq!(round_preserving_sum(&[0.5, 0.5, 1.0]), vec![0, 1, 1]);
        assert_eq!(round_preserving_sum(&[1.4, 1.4, 1.2]), vec![1, 2, 1]);
        assert_eq!(round_preserving_sum(&[2.6, 2.6, 0.8]), vec![2, 3, 1]);
    }

    #[test]
    fn bad_input_is_undefined_not_a_panic() {
        assert!(confident_learning(&[0], &[1.0], 1).is_err());
        assert!(confident_learning(&[], &[], 2).is_err());
        assert!(confident_learning(&[2], &[0.5, 0.5], 2).is_err());
        assert!(confident_learning(&[0], &[1.5, -0.5], 2).is_err());
        assert!(confident_learning(&[0], &[0.5], 2).is_err());
    }

    proptest! {
        #[test]
        fn flagged_items_are_ones_the_model_disagrees_with(
            rows in proptest::collection::vec((0usize..3, proptest::collection::vec(0.01f64..1.0, 3)), 3..40)
        ) {
            let given: Vec<usize> = rows.iter().map(|r| r.0).collect();
            let probs: Vec<f64> = rows.iter().flat_map(|r| { let s: f64 = r.1.iter().sum(); r.1.iter().map(move |x| x / s) }).collect();
            let cl = confident_learning(&given, &probs, 3).unwrap();
            for &i in &cl.flagged {
                let p = &probs[i * 3..i * 3 + 3];
                prop_assert!(argmax(p) != given[i]);
            }
            for w in cl.flagged.windows(2) {
                prop_assert!(cl.self_confidence[w[0]] <= cl.self_confidence[w[1]]);
            }
            let total: u64 = cl.confident_joint.iter().flatten().sum();
            prop_assert_eq!(total as usize, given.len());
        }
    }
}
