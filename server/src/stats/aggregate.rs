//! Aggregating several annotators' labels into one per item: the shared result type, majority
//! vote, and the M-step (priors and annotator confusion matrices from item posteriors) that
//! majority vote and Dawid–Skene share.

use std::collections::HashMap;

use super::Ratings;

/// Per-item label distributions and the annotator model behind them.
///
/// Items with the same ratings (and gold answer) get the same posterior, so the distributions
/// are kept once per response pattern ([`Patterns`]) and each item names its pattern: at a
/// million items, 4 bytes an item instead of a posterior, a label and a tie flag each
/// (~41 MiB for three labels; docs/bench.md, session 39).
#[derive(Debug, Clone, PartialEq)]
pub struct Aggregation {
    pub n_labels: usize,
    /// Item → its row of `posteriors`, `labels` and `ties`; items without ratings share the
    /// last row, which is all zeros with no label.
    item_row: Vec<u32>,
    /// Row-major rows × n_labels.
    posteriors: Vec<f64>,
    /// Per row: the most probable label, ties broken by label order (None: no ratings).
    labels: Vec<Option<usize>>,
    /// Per row: whether another label is as probable as the chosen one.
    ties: Vec<bool>,
    /// Class priors: the mean posterior over rated items.
    pub priors: Vec<f64>,
    /// n_annotators × n_labels × n_labels, indexed [annotator][true][given]: the probability
    /// that the annotator gives `given` to an item whose label is `true`.
    confusions: Vec<f64>,
    /// EM iterations run (0 for majority vote).
    pub iterations: usize,
    /// Mean log-likelihood per annotation at the last E-step (Dawid–Skene only).
    pub log_likelihood: Option<f64>,
    /// Whether EM stopped on the tolerance rather than the iteration limit.
    pub converged: bool,
}

impl Aggregation {
    /// Item `item`'s label distribution (all zeros for an item without ratings).
    pub fn posterior(&self, item: usize) -> &[f64] {
        let row = self.item_row[item] as usize;
        &self.posteriors[row * self.n_labels..(row + 1) * self.n_labels]
    }

    /// Item `item`'s most probable label, ties broken by label order; None without ratings.
    pub fn label(&self, item: usize) -> Option<usize> {
        self.labels[self.item_row[item] as usize]
    }

    /// Whether another label is as probable as item `item`'s [`Aggregation::label`].
    pub fn tie(&self, item: usize) -> bool {
        self.ties[self.item_row[item] as usize]
    }

    /// Row-major [true][given] confusion matrix of one annotator.
    pub fn confusion(&self, annotator: usize) -> &[f64] {
        let size = self.n_labels * self.n_labels;
        &self.confusions[annotator * size..(annotator + 1) * size]
    }

    /// `posteriors`: one distribution per row of `rows`.
    pub(crate) fn assemble(
        rows: &Patterns,
        mut posteriors: Vec<f64>,
        model: Model,
        tie_tolerance: f64,
        iterations: usize,
        log_likelihood: Option<f64>,
        converged: bool,
    ) -> Self {
        let l = rows.n_labels;
        let (mut labels, mut ties) = (Vec::with_capacity(rows.n_rows() + 1), Vec::with_capacity(rows.n_rows() + 1));
        for p in posteriors.chunks(l) {
            let best = (0..l).fold(0, |b, c| if p[c] > p[b] { c } else { b });
            ties.push((0..l).any(|c| c != best && p[best] - p[c] <= tie_tolerance));
            labels.push(Some(best));
        }
        // The row of the items without ratings.
        let unrated = rows.n_rows() as u32;
        posteriors.resize(posteriors.len() + l, 0.0);
        labels.push(None);
        ties.push(false);
        let item_row = rows.item_row.iter().map(|&p| if p == NO_ROW { unrated } else { p }).collect();
        let Model { priors, confusions } = model;
        // Re-index the confusions from the M-step's [annotator][given][true] layout.
        let n_a = rows.n_annotators;
        let mut by_true = vec![0.0; n_a * l * l];
        for a in 0..n_a {
            for given in 0..l {
                for truth in 0..l {
                    by_true[(a * l + truth) * l + given] = confusions[(a * l + given) * l + truth];
                }
            }
        }
        Aggregation { n_labels: l, item_row, posteriors, labels, ties, priors, confusions: by_true, iterations, log_likelihood, converged }
    }
}

/// Priors and confusion matrices; confusions are laid out [annotator][given][true] so that the
/// E-step's inner loop over true classes reads contiguous memory.
pub(crate) struct Model {
    pub(crate) priors: Vec<f64>,
    pub(crate) confusions: Vec<f64>,
}

/// Rated items grouped by response pattern: items with the same ratings (the same annotators
/// giving the same labels) and the same gold answer get the same posterior in every E-step and
/// contribute alike to every M-step, so EM runs over one row per pattern, weighted by the
/// number of its items. That is the same EM, term for term (only the order of summation
/// differs); with 3 of 8 labelers and a handful of labels there are a few thousand patterns
/// however many items there are, which makes Dawid–Skene over 100,000 items take milliseconds.
/// [`Patterns::per_item`] (one row per item) is the straightforward computation, kept for the
/// test that checks the two agree.
pub(crate) struct Patterns {
    n_labels: usize,
    n_annotators: usize,
    /// Row p's ratings are `annotators[starts[p]..starts[p + 1]]` and `labels[...]`.
    starts: Vec<usize>,
    annotators: Vec<u32>,
    labels: Vec<u32>,
    /// Items per row.
    pub(crate) weights: Vec<f64>,
    /// The gold label of the row's items.
    pub(crate) gold: Vec<Option<u32>>,
    /// Item → its row; `NO_ROW` for an item without ratings.
    item_row: Vec<u32>,
}

const NO_ROW: u32 = u32::MAX;

impl Patterns {
    /// One row per distinct (gold answer, ratings) among the rated items.
    pub(crate) fn collapsed(ratings: &Ratings, gold: &[Option<u32>]) -> Self {
        Self::build(ratings, gold, true)
    }

    /// One row per rated item, in item order.
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn per_item(ratings: &Ratings, gold: &[Option<u32>]) -> Self {
        Self::build(ratings, gold, false)
    }

    fn build(ratings: &Ratings, gold: &[Option<u32>], collapse: bool) -> Self {
        let gold_of = |i: usize| gold.get(i).copied().flatten();
        let key = |i: usize| (gold_of(i), ratings.item_annotators(i), ratings.item_labels(i));
        let rated = (0..ratings.n_items()).filter(|&i| ratings.item_len(i) > 0);
        // One item per row, in the rows' order; each item's row.
        let (firsts, item_row): (Vec<usize>, Vec<u32>) = if collapse {
            // Items with equal ratings already share a number (`Ratings::item_pattern`), so the
            // rows are the distinct (gold answer, pattern) pairs, in key order (the order
            // sorting the items by key gave them): the patterns of items without a gold answer
            // (None sorts first), then the gold items' pairs.
            let (mut firsts, place) = ratings.patterns_in_order(|i| ratings.item_len(i) > 0 && gold_of(i).is_none());
            let mut first_of_gold: HashMap<(u32, u32), usize> = HashMap::new();
            for i in rated.clone() {
                if let Some(g) = gold_of(i) {
                    first_of_gold.entry((g, ratings.item_pattern(i))).or_insert(i);
                }
            }
            let mut gold_firsts: Vec<usize> = first_of_gold.into_values().collect();
            gold_firsts.sort_unstable_by(|&x, &y| key(x).cmp(&key(y)));
            let gold_row = |i: usize| (gold_of(i), ratings.item_pattern(i));
            let row_of_gold: HashMap<_, u32> =
                gold_firsts.iter().enumerate().map(|(k, &i)| (gold_row(i), (firsts.len() + k) as u32)).collect();
            firsts.extend(gold_firsts);
            let mut item_row = vec![NO_ROW; ratings.n_items()];
            for i in rated {
                item_row[i] = match gold_of(i) {
                    None => place[ratings.item_pattern(i) as usize],
                    Some(_) => row_of_gold[&gold_row(i)],
                };
            }
            (firsts, item_row)
        } else {
            let firsts: Vec<usize> = rated.collect();
            let mut item_row = vec![NO_ROW; ratings.n_items()];
            for (row, &i) in firsts.iter().enumerate() {
                item_row[i] = row as u32;
            }
            (firsts, item_row)
        };
        let mut p = Patterns {
            n_labels: ratings.n_labels(),
            n_annotators: ratings.n_annotators(),
            starts: vec![0],
            annotators: Vec::new(),
            labels: Vec::new(),
            weights: vec![0.0; firsts.len()],
            gold: Vec::with_capacity(firsts.len()),
            item_row,
        };
        for &i in &firsts {
            p.annotators.extend_from_slice(ratings.item_annotators(i));
            p.labels.extend_from_slice(ratings.item_labels(i));
            p.starts.push(p.labels.len());
            p.gold.push(gold_of(i));
        }
        // Whole numbers: the sums are exact in any order.
        for &row in &p.item_row {
            if row != NO_ROW {
                p.weights[row as usize] += 1.0;
            }
        }
        p
    }

    pub(crate) fn n_rows(&self) -> usize {
        self.weights.len()
    }

    pub(crate) fn row(&self, p: usize) -> (&[u32], &[u32]) {
        let r = self.starts[p]..self.starts[p + 1];
        (&self.annotators[r.clone()], &self.labels[r])
    }

    /// Vote shares per row (the majority-vote posterior).
    pub(crate) fn vote_shares(&self) -> Vec<f64> {
        let l = self.n_labels;
        let mut shares = vec![0.0; self.n_rows() * l];
        for p in 0..self.n_rows() {
            let (_, labels) = self.row(p);
            for &c in labels {
                shares[p * l + c as usize] += 1.0;
            }
            let m = labels.len() as f64;
            shares[p * l..(p + 1) * l].iter_mut().for_each(|s| *s /= m);
        }
        shares
    }

}

/// M-step: priors are the mean posterior over rated items; annotator a's row for true class c
/// is Σ over a's ratings (i, given) of T_ic, normalised over `given`. A class with no posterior
/// mass among a's items leaves the row without evidence: it is uniform over the labels a used
/// (crowd-kit's behaviour, so results agree). Sums run over pattern rows, each term times the
/// number of items in the row.
pub(crate) fn m_step(rows: &Patterns, posteriors: &[f64]) -> Model {
    let l = rows.n_labels;
    let n_a = rows.n_annotators;
    let mut priors = vec![0.0; l];
    let mut rated = 0.0;
    let mut confusions = vec![0.0; n_a * l * l];
    let mut used = vec![false; n_a * l];
    for p in 0..rows.n_rows() {
        let w = rows.weights[p];
        rated += w;
        let t = &posteriors[p * l..(p + 1) * l];
        for c in 0..l {
            priors[c] += w * t[c];
        }
        let (annotators, labels) = rows.row(p);
        for (&a, &given) in annotators.iter().zip(labels) {
            let (a, given) = (a as usize, given as usize);
            used[a * l + given] = true;
            let row = &mut confusions[(a * l + given) * l..(a * l + given + 1) * l];
            for c in 0..l {
                row[c] += w * t[c];
            }
        }
    }
    if rated > 0.0 {
        priors.iter_mut().for_each(|p| *p /= rated);
    }
    for a in 0..n_a {
        let n_used = (0..l).filter(|&g| used[a * l + g]).count();
        for c in 0..l {
            let total: f64 = (0..l).map(|g| confusions[(a * l + g) * l + c]).sum();
            for g in 0..l {
                let cell = &mut confusions[(a * l + g) * l + c];
                *cell = if total > 0.0 {
                    *cell / total
                } else if used[a * l + g] {
                    1.0 / n_used as f64
                } else {
                    0.0
                };
            }
        }
    }
    Model { priors, confusions }
}

/// Majority vote. The posterior is the vote share; a tie is reported as such and broken by
/// label order. Annotator confusions are estimated against the vote shares (one M-step), and
/// show how each annotator's labels relate to the majority.
pub fn majority_vote(ratings: &Ratings) -> Aggregation {
    let rows = Patterns::collapsed(ratings, &[]);
    let shares = rows.vote_shares();
    let model = m_step(&rows, &shares);
    // Equal vote counts give bit-identical shares, so ties are exact.
    Aggregation::assemble(&rows, shares, model, 0.0, 0, None, false)
}

/// Each annotator's agreement with the consensus of the others: on every item the annotator
/// rated where the other annotators' ratings have a single most frequent label (a plurality,
/// not a tie), whether the annotator gave that label. Leaving the annotator's own rating out
/// keeps a labeler from agreeing with themselves (on an item with two ratings this is plain
/// pairwise agreement). Returns (agreeing, compared) per annotator code.
pub fn leave_one_out_agreement(ratings: &Ratings) -> Vec<(u64, u64)> {
    let l = ratings.n_labels();
    let mut out = vec![(0u64, 0u64); ratings.n_annotators()];
    let mut tally = vec![0u32; l];
    for i in 0..ratings.n_items() {
        let labels = ratings.item_labels(i);
        if labels.len() < 2 {
            continue;
        }
        for &c in labels {
            tally[c as usize] += 1;
        }
        for (&a, &own) in ratings.item_annotators(i).iter().zip(labels) {
            tally[own as usize] -= 1;
            // The others' plurality label, if unique.
            let (mut best, mut best_count, mut tied) = (0usize, 0u32, false);
            for (c, &t) in tally.iter().enumerate() {
                if t > best_count {
                    (best, best_count, tied) = (c, t, false);
                } else if t == best_count && t > 0 {
                    tied = true;
                }
            }
            tally[own as usize] += 1;
            if best_count > 0 && !tied {
                let entry = &mut out[a as usize];
                entry.1 += 1;
                entry.0 += (best == own as usize) as u64;
            }
        }
        for &c in labels {
            tally[c as usize] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::krippendorff::tests::{arb_ratings, ratings_from};
    use crate::stats::LabelSet;
    use proptest::prelude::*;

    #[test]
    fn majority_vote_reports_and_breaks_ties_by_label_order() {
        // Item 0: b, b, a → b. Item 1: b, a → tie, broken to a (first in label order).
        let r = ratings_from(&[(0, 0, 1), (0, 1, 1), (0, 2, 0), (1, 0, 1), (1, 1, 0)], &["a", "b"]);
        let mv = majority_vote(&r);
        assert_eq!((mv.label(0), mv.label(1)), (Some(1), Some(0)));
        assert_eq!((mv.tie(0), mv.tie(1)), (false, true));
        assert_eq!(mv.posterior(0), &[1.0 / 3.0, 2.0 / 3.0]);
        assert_eq!(mv.posterior(1), &[0.5, 0.5]);
        assert!((mv.priors[0] - (1.0 / 3.0 + 0.5) / 2.0).abs() < 1e-15);
        // Annotator 2 rated only item 0 (shares a 1/3, b 2/3) and said a: whatever the true
        // label, they give a.
        assert_eq!(mv.confusion(2), &[1.0, 0.0, 1.0, 0.0]);
    }

    #[test]
    fn items_share_their_patterns_posterior_and_an_unrated_item_has_none() {
        // Items 0 and 3 have the same ratings; item 1 has none; item 2 differs.
        let labels = LabelSet::new(vec!["a".into(), "b".into()]).unwrap();
        let items = (0..4).map(|i| format!("i{i}")).collect();
        let records = [(0, 0, 1), (0, 1, 1), (2, 0, 0), (2, 1, 1), (3, 0, 1), (3, 1, 1)];
        let r = Ratings::from_codes(items, vec!["x".into(), "y".into()], labels, &records).unwrap();
        let mv = majority_vote(&r);
        assert_eq!((mv.posterior(0), mv.posterior(3)), (&[0.0, 1.0][..], &[0.0, 1.0][..]));
        assert_eq!((mv.label(0), mv.label(3), mv.tie(0)), (Some(1), Some(1), false));
        assert_eq!((mv.posterior(1), mv.label(1), mv.tie(1)), (&[0.0, 0.0][..], None, false));
        assert_eq!((mv.posterior(2), mv.label(2), mv.tie(2)), (&[0.5, 0.5][..], Some(0), true));
        // The priors average the three rated items only.
        assert_eq!(mv.priors, vec![0.5 / 3.0, 2.5 / 3.0]);
    }

    #[test]
    fn leave_one_out_compares_with_the_others_plurality() {
        // Item 0: a, a, b. Annotator 0 (a) vs others {a, b}: tie, not compared; annotator 1
        // likewise; annotator 2 (b) vs others {a, a}: compared, disagrees.
        // Item 1: a, a. Each vs the other: agrees. Item 2 (one rating): nothing.
        let r = ratings_from(&[(0, 0, 0), (0, 1, 0), (0, 2, 1), (1, 0, 0), (1, 1, 0), (2, 2, 1)], &["a", "b"]);
        assert_eq!(leave_one_out_agreement(&r), vec![(1, 1), (1, 1), (0, 1)]);
    }

    proptest! {
        #[test]
        fn posteriors_and_confusion_rows_are_distributions(records in arb_ratings()) {
            let r = ratings_from(&records, &["1", "2", "3", "4", "5"]);
            let mv = majority_vote(&r);
            for i in 0..r.n_items() {
                let s: f64 = mv.posterior(i).iter().sum();
                prop_assert!(r.item_len(i) == 0 || (s - 1.0).abs() < 1e-12);
            }
            for a in 0..r.n_annotators() {
                let m = mv.confusion(a);
                for c in 0..5 {
                    let s: f64 = m[c * 5..(c + 1) * 5].iter().sum();
                    prop_assert!((s - 1.0).abs() < 1e-12 || s == 0.0);
                }
            }
            // Priors are the mean posterior over rated items: with none rated (every cell of
            // the generated table empty, about once in a hundred runs) there is nothing to
            // average and they stay zero.
            let rated = (0..r.n_items()).any(|i| r.item_len(i) > 0);
            let sum = mv.priors.iter().sum::<f64>();
            let priors_ok = if rated { (sum - 1.0).abs() < 1e-12 } else { sum == 0.0 };
            prop_assert!(priors_ok, "priors sum to {} (items rated: {})", sum, rated);
        }
    }
}
