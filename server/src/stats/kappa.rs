//! Cohen's kappa (unweighted, linear, quadratic; for one pair or all pairs of annotators) and
//! Fleiss' kappa.
//!
//! Cohen's kappa follows scikit-learn's `cohen_kappa_score`: κ = 1 − Σ w_ij O_ij / Σ w_ij E_ij
//! with O the pair's confusion matrix over the items both rated, E the outer product of its
//! marginals divided by n, and w_ij = 1 − [i = j], |i − j| or (i − j)², where i and j are
//! positions in the project's label order (scikit-learn's `labels=` argument).

use super::{finite, serialize_stat, Ratings, Stat, Undefined};
use serde::Serialize;
use std::collections::HashMap;

/// Disagreement weights for Cohen's kappa.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KappaWeights {
    Unweighted,
    Linear,
    Quadratic,
}

impl KappaWeights {
    fn weight(self, i: usize, j: usize) -> f64 {
        let d = i.abs_diff(j) as f64;
        match self {
            KappaWeights::Unweighted => (i != j) as u8 as f64,
            KappaWeights::Linear => d,
            KappaWeights::Quadratic => d * d,
        }
    }
}

/// Cohen's kappa for one pair of annotators (codes `a` < `b` in [`Ratings::annotators`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PairKappa {
    pub a: usize,
    pub b: usize,
    /// Items rated by both.
    pub n: usize,
    #[serde(serialize_with = "serialize_stat")]
    pub kappa: Stat,
}

/// Cohen's kappa between annotators `a` and `b` over the items both rated.
pub fn cohen_kappa(ratings: &Ratings, a: usize, b: usize, weights: KappaWeights) -> PairKappa {
    let (a, b) = (a.min(b), a.max(b));
    let l = ratings.n_labels();
    let mut confusion = vec![0.0; l * l];
    let mut n = 0;
    if a != b {
        for i in 0..ratings.n_items() {
            let (ann, lab) = (ratings.item_annotators(i), ratings.item_labels(i));
            let find = |x: usize| ann.binary_search(&(x as u32)).ok().map(|p| lab[p] as usize);
            if let (Some(la), Some(lb)) = (find(a), find(b)) {
                confusion[la * l + lb] += 1.0;
                n += 1;
            }
        }
    }
    let kappa = if a == b {
        Err(Undefined::new("kappa compares two different annotators"))
    } else {
        kappa_from_confusion(&confusion, l, weights)
    };
    PairKappa { a, b, n, kappa }
}

/// Cohen's kappa for every pair of annotators that rated at least one item in common, in
/// order of (a, b).
pub fn pairwise_cohen_kappa(ratings: &Ratings, weights: KappaWeights) -> Vec<PairKappa> {
    let table = PairTable::new(ratings);
    let cells = table.confusions(None);
    let mut out: Vec<PairKappa> = table
        .pairs
        .iter()
        .enumerate()
        .map(|(slot, &(a, b))| PairKappa {
            a: a as usize,
            b: b as usize,
            n: table.counts[slot],
            kappa: kappa_from_confusion(table.confusion(&cells, slot), table.n_labels, weights),
        })
        .collect();
    out.sort_by_key(|p| (p.a, p.b));
    out
}

/// The mean of the defined pairwise kappas (each pair counts once, whatever its n).
pub fn mean_pairwise_cohen_kappa(pairs: &[PairKappa]) -> Stat {
    let defined: Vec<f64> = pairs.iter().filter_map(|p| p.kappa.as_ref().ok().copied()).collect();
    if defined.is_empty() {
        return Err(Undefined::new(if pairs.is_empty() {
            "no two annotators rated a common item"
        } else {
            "no pair of annotators has a defined kappa"
        }));
    }
    Ok(defined.iter().sum::<f64>() / defined.len() as f64)
}

/// Every pair of ratings on the same item, coded once as (pair slot, confusion cell), so the
/// confusion matrices of all annotator pairs can be re-accumulated under any item weights
/// (the bootstrap) without hashing.
pub(crate) struct PairTable {
    pub(crate) pairs: Vec<(u32, u32)>,
    pub(crate) counts: Vec<usize>,
    pub(crate) n_labels: usize,
    starts: Vec<usize>,
    entries: Vec<(u32, u32)>,
}

impl PairTable {
    pub(crate) fn new(ratings: &Ratings) -> Self {
        let l = ratings.n_labels();
        let mut slots: HashMap<(u32, u32), u32> = HashMap::new();
        let mut table =
            PairTable { pairs: Vec::new(), counts: Vec::new(), n_labels: l, starts: vec![0], entries: Vec::new() };
        for i in 0..ratings.n_items() {
            let (ann, lab) = (ratings.item_annotators(i), ratings.item_labels(i));
            for x in 0..ann.len() {
                for y in (x + 1)..ann.len() {
                    let slot = *slots.entry((ann[x], ann[y])).or_insert_with(|| {
                        table.pairs.push((ann[x], ann[y]));
                        table.counts.push(0);
                        (table.pairs.len() - 1) as u32
                    });
                    table.counts[slot as usize] += 1;
                    table.entries.push((slot, lab[x] * l as u32 + lab[y]));
                }
            }
            table.starts.push(table.entries.len());
        }
        table
    }

    /// All pairs' confusion matrices, concatenated; item i counted `item_weights[i]` times.
    pub(crate) fn confusions(&self, item_weights: Option<&[u32]>) -> Vec<f64> {
        let size = self.n_labels * self.n_labels;
        let mut cells = vec![0.0; self.pairs.len() * size];
        for i in 0..self.starts.len() - 1 {
            let w = item_weights.map_or(1.0, |w| w[i] as f64);
            if w == 0.0 {
                continue;
            }
            for &(slot, cell) in &self.entries[self.starts[i]..self.starts[i + 1]] {
                cells[slot as usize * size + cell as usize] += w;
            }
        }
        cells
    }

    pub(crate) fn confusion<'a>(&self, cells: &'a [f64], slot: usize) -> &'a [f64] {
        let size = self.n_labels * self.n_labels;
        &cells[slot * size..(slot + 1) * size]
    }
}

/// κ = 1 − Σ w O / Σ w E from a row-major l × l confusion matrix (rows: first annotator).
pub(crate) fn kappa_from_confusion(confusion: &[f64], l: usize, weights: KappaWeights) -> Stat {
    let n: f64 = confusion.iter().sum();
    if n == 0.0 {
        return Err(Undefined::new("the two annotators have no item in common"));
    }
    let rows: Vec<f64> = (0..l).map(|i| confusion[i * l..(i + 1) * l].iter().sum()).collect();
    let cols: Vec<f64> = (0..l).map(|j| (0..l).map(|i| confusion[i * l + j]).sum()).collect();
    let (mut observed, mut expected) = (0.0, 0.0);
    for i in 0..l {
        for j in 0..l {
            let w = weights.weight(i, j);
            observed += w * confusion[i * l + j];
            expected += w * rows[i] * cols[j] / n;
        }
    }
    if expected == 0.0 {
        return Err(Undefined::new(
            "chance disagreement is zero (both annotators used one and the same label throughout)",
        ));
    }
    finite(1.0 - observed / expected, "Cohen's kappa")
}

/// Fleiss' kappa. Defined only when every rated item has the same number m ≥ 2 of ratings.
pub fn fleiss_kappa(ratings: &Ratings) -> Stat {
    fleiss_kappa_weighted(ratings, None)
}

pub(crate) fn fleiss_kappa_weighted(ratings: &Ratings, item_weights: Option<&[u32]>) -> Stat {
    let l = ratings.n_labels();
    let mut m: Option<usize> = None;
    let (mut lo, mut hi) = (usize::MAX, 0);
    for i in 0..ratings.n_items() {
        let len = ratings.item_len(i);
        if len > 0 {
            lo = lo.min(len);
            hi = hi.max(len);
            m = Some(len);
        }
    }
    let Some(m) = m else {
        return Err(Undefined::new("there are no ratings"));
    };
    if lo != hi {
        return Err(Undefined::new(format!(
            "items have different numbers of ratings ({lo} to {hi}); Fleiss' kappa needs the same number for every item"
        )));
    }
    if m < 2 {
        return Err(Undefined::new("every item has a single rating"));
    }
    let mf = m as f64;
    let mut category_totals = vec![0.0f64; l];
    let mut tally = vec![0u32; l];
    let (mut agreement_sum, mut total_weight) = (0.0, 0.0);
    for i in 0..ratings.n_items() {
        let w = item_weights.map_or(1.0, |w| w[i] as f64);
        let labels = ratings.item_labels(i);
        if w == 0.0 || labels.is_empty() {
            continue;
        }
        for &c in labels {
            tally[c as usize] += 1;
        }
        let mut squares = 0.0;
        for &c in labels {
            let t = &mut tally[c as usize];
            if *t > 0 {
                let n_ij = *t as f64;
                squares += n_ij * n_ij;
                category_totals[c as usize] += w * n_ij;
                *t = 0;
            }
        }
        agreement_sum += w * (squares - mf) / (mf * (mf - 1.0));
        total_weight += w;
    }
    let p_bar = agreement_sum / total_weight;
    let p_e: f64 = category_totals.iter().map(|t| (t / (total_weight * mf)).powi(2)).sum();
    if p_e >= 1.0 {
        return Err(Undefined::new(
            "every rating has the same label: chance agreement is 1, so kappa is undefined",
        ));
    }
    finite((p_bar - p_e) / (1.0 - p_e), "Fleiss' kappa")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::krippendorff::tests::{arb_ratings, ratings_from};
    use crate::stats::{LabelSet, RatingsBuilder};
    use proptest::prelude::*;

    /// Fleiss (1971), Table 1: 30 patients, 6 psychiatrists each, 5 diagnoses
    /// (depression, personality disorder, schizophrenia, neurosis, other); counts per
    /// patient and diagnosis. Fleiss reports κ = 0.430 (the `diagnoses` data of R's irr).
    pub(crate) const FLEISS_1971: [[u32; 5]; 30] = [
        [0, 0, 0, 6, 0],
        [0, 3, 0, 0, 3],
        [0, 1, 4, 0, 1],
        [0, 0, 0, 0, 6],
        [0, 3, 0, 3, 0],
        [2, 0, 4, 0, 0],
        [0, 0, 4, 0, 2],
        [2, 0, 3, 1, 0],
        [2, 0, 0, 4, 0],
        [0, 0, 0, 0, 6],
        [1, 0, 0, 5, 0],
        [1, 1, 0, 4, 0],
        [0, 3, 3, 0, 0],
        [1, 0, 0, 5, 0],
        [0, 2, 0, 3, 1],
        [0, 0, 5, 0, 1],
        [3, 0, 0, 1, 2],
        [5, 1, 0, 0, 0],
        [0, 2, 0, 4, 0],
        [1, 0, 2, 0, 3],
        [0, 0, 0, 0, 6],
        [0, 1, 0, 5, 0],
        [0, 2, 0, 1, 3],
        [2, 0, 0, 4, 0],
        [1, 0, 0, 4, 1],
        [0, 5, 0, 1, 0],
        [4, 0, 0, 0, 2],
        [0, 2, 0, 4, 0],
        [1, 0, 5, 0, 0],
        [0, 0, 0, 0, 6],
    ];

    fn fleiss_1971() -> Ratings {
        let names = ["depression", "personality disorder", "schizophrenia", "neurosis", "other"];
        let set = LabelSet::new(names.iter().map(|s| s.to_string()).collect()).unwrap();
        let mut b = RatingsBuilder::new(Some(set));
        for (p, row) in FLEISS_1971.iter().enumerate() {
            let mut rater = 0;
            for (c, &count) in row.iter().enumerate() {
                for _ in 0..count {
                    b.push(&format!("patient{p}"), &format!("rater{rater}"), names[c]).unwrap();
                    rater += 1;
                }
            }
        }
        b.build().unwrap()
    }

    #[test]
    fn fleiss_1971_psychiatric_diagnoses() {
        let kappa = fleiss_kappa(&fleiss_1971()).unwrap();
        assert_eq!((kappa * 1000.0).round() / 1000.0, 0.430);
        // Full value: statsmodels' fleiss_kappa on the same table (tests/data/stats).
        assert!((kappa - 0.43024452006014074).abs() < 1e-12, "{kappa}");
    }

    #[test]
    fn fleiss_undefined_for_unequal_counts_and_no_variation() {
        let r = ratings_from(&[(0, 0, 0), (0, 1, 1), (1, 0, 0), (1, 1, 0), (1, 2, 1)], &["a", "b"]);
        assert!(fleiss_kappa(&r).unwrap_err().reason.contains("different numbers of ratings (2 to 3)"));
        let r = ratings_from(&[(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)], &["a", "b"]);
        assert!(fleiss_kappa(&r).unwrap_err().reason.contains("same label"));
        let r = ratings_from(&[(0, 0, 0), (1, 1, 1)], &["a", "b"]);
        assert!(fleiss_kappa(&r).unwrap_err().reason.contains("single rating"));
    }

    #[test]
    fn cohen_kappa_textbook_and_weighted() {
        // 2 × 2: 20 yes/yes, 5 yes/no, 10 no/yes, 15 no/no → p_o 0.7, p_e 0.5, κ 0.4.
        let mut records = Vec::new();
        let mut item = 0;
        for (la, lb, count) in [(0, 0, 20), (0, 1, 5), (1, 0, 10), (1, 1, 15)] {
            for _ in 0..count {
                records.push((item, 0, la));
                records.push((item, 1, lb));
                item += 1;
            }
        }
        let r = ratings_from(&records, &["yes", "no"]);
        let k = cohen_kappa(&r, 0, 1, KappaWeights::Unweighted);
        assert_eq!(k.n, 50);
        assert!((k.kappa.unwrap() - 0.4).abs() < 1e-12);
        // With two labels every weighting is the same up to scale.
        let lin = cohen_kappa(&r, 0, 1, KappaWeights::Linear).kappa.unwrap();
        assert!((lin - 0.4).abs() < 1e-12);
        // Three ordered labels: quadratic penalises the far disagreement more.
        let r = ratings_from(&[(0, 0, 0), (0, 1, 2), (1, 0, 1), (1, 1, 1), (2, 0, 2), (2, 1, 2), (3, 0, 0), (3, 1, 0)], &["lo", "mid", "hi"]);
        let u = cohen_kappa(&r, 0, 1, KappaWeights::Unweighted).kappa.unwrap();
        let q = cohen_kappa(&r, 0, 1, KappaWeights::Quadratic).kappa.unwrap();
        assert!(q < u, "{q} {u}");
    }

    #[test]
    fn cohen_kappa_undefined_cases() {
        let r = ratings_from(&[(0, 0, 0), (1, 1, 1)], &["a", "b"]);
        assert!(cohen_kappa(&r, 0, 1, KappaWeights::Unweighted).kappa.unwrap_err().reason.contains("no item in common"));
        let r = ratings_from(&[(0, 0, 0), (0, 1, 0), (1, 0, 0), (1, 1, 0)], &["a", "b"]);
        assert!(cohen_kappa(&r, 0, 1, KappaWeights::Unweighted).kappa.unwrap_err().reason.contains("same label"));
        assert!(cohen_kappa(&r, 1, 1, KappaWeights::Unweighted).kappa.is_err());
        assert!(mean_pairwise_cohen_kappa(&[]).is_err());
    }

    proptest! {
        #[test]
        fn pairwise_matches_single_pair(records in arb_ratings()) {
            let r = ratings_from(&records, &["1", "2", "3", "4", "5"]);
            for p in pairwise_cohen_kappa(&r, KappaWeights::Quadratic) {
                let single = cohen_kappa(&r, p.a, p.b, KappaWeights::Quadratic);
                prop_assert_eq!(p.n, single.n);
                match (&p.kappa, &single.kappa) {
                    (Ok(x), Ok(y)) => prop_assert!((x - y).abs() < 1e-12),
                    (Err(_), Err(_)) => {}
                    _ => prop_assert!(false),
                }
            }
        }

        #[test]
        fn unweighted_kappas_are_invariant_to_relabeling(
            records in arb_ratings(),
            permutation in Just((0..5usize).collect::<Vec<_>>()).prop_shuffle(),
        ) {
            let names = ["1", "2", "3", "4", "5"];
            let r = ratings_from(&records, &names);
            let renamed: Vec<_> = records.iter().map(|&(i, n, l)| (i, n, permutation[l])).collect();
            let s = ratings_from(&renamed, &names);
            let same = |x: &Stat, y: &Stat| match (x, y) {
                (Ok(x), Ok(y)) => (x - y).abs() < 1e-12,
                (Err(_), Err(_)) => true,
                _ => false,
            };
            prop_assert!(same(&fleiss_kappa(&r), &fleiss_kappa(&s)));
            for (p, q) in pairwise_cohen_kappa(&r, KappaWeights::Unweighted).iter().zip(pairwise_cohen_kappa(&s, KappaWeights::Unweighted).iter()) {
                prop_assert!(same(&p.kappa, &q.kappa));
            }
        }

        #[test]
        fn kappa_is_one_under_perfect_agreement(truth in proptest::collection::vec(0usize..3, 2..30)) {
            let records: Vec<_> = truth.iter().enumerate().flat_map(|(i, &l)| [(i, 0, l), (i, 1, l), (i, 2, l)]).collect();
            let r = ratings_from(&records, &["a", "b", "c"]);
            if let Ok(k) = fleiss_kappa(&r) { prop_assert!((k - 1.0).abs() < 1e-12); }
            if let Ok(k) = cohen_kappa(&r, 0, 1, KappaWeights::Linear).kappa { prop_assert!((k - 1.0).abs() < 1e-12); }
        }
    }
}
