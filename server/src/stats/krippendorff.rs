//! Krippendorff's alpha for nominal, ordinal, interval and ratio data with missing ratings,
//! as in Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability":
//!
//! α = 1 − (n − 1) · Σ_ck o_ck δ²_ck / Σ_ck n_c n_k δ²_ck
//!
//! where o is the coincidence matrix (each pairable unit u with m_u ≥ 2 ratings adds
//! n_uc n_uk / (m_u − 1) for every ordered pair of its ratings, c ≠ k or c = k), n_c its
//! marginals and n = Σ n_c. Units with fewer than two ratings are not pairable and drop out.
//!
//! The sums are accumulated unit by unit rather than through an L × L matrix, which is the
//! same sum regrouped: it keeps memory linear when numeric labels take many distinct values.
//! The expected-disagreement sum uses closed forms (nominal: n² − Σn_c²; interval and
//! ordinal: 2n Σ n_c (x_c − x̄)², because the ordinal δ_ck is the difference of the
//! categories' mid-ranks x_c = Σ_{g<c} n_g + n_c/2); ratio sums over value pairs.

use super::{finite, Level, Ratings, Stat, Undefined};

/// The coincidence matrix o (labels × labels, in label order) over pairable items.
pub fn coincidence_matrix(ratings: &Ratings) -> Vec<Vec<f64>> {
    let l = ratings.n_labels();
    let mut o = vec![vec![0.0; l]; l];
    let mut tally = vec![0.0f64; l];
    let mut distinct = Vec::new();
    for i in 0..ratings.n_items() {
        let labels = ratings.item_labels(i);
        if labels.len() < 2 {
            continue;
        }
        let m = labels.len() as f64;
        distinct.clear();
        for &c in labels {
            if tally[c as usize] == 0.0 {
                distinct.push(c as usize);
            }
            tally[c as usize] += 1.0;
        }
        for &c in &distinct {
            for &k in &distinct {
                let pairs = if c == k { tally[c] * (tally[c] - 1.0) } else { tally[c] * tally[k] };
                o[c][k] += pairs / (m - 1.0);
            }
        }
        for &c in &distinct {
            tally[c] = 0.0;
        }
    }
    o
}

/// Krippendorff's alpha of the ratings at the given level of measurement.
pub fn krippendorff_alpha(ratings: &Ratings, level: Level) -> Stat {
    AlphaUnits::new(ratings, level)?.alpha(None)
}

/// The pairable units in compact form: per unit the distinct labels it received and how
/// often. Built once and reused by the bootstrap, which only reweights units.
///
/// Units with the same ratings have the same label counts, so the counts are kept once per
/// ratings pattern ([`Ratings::item_pattern`]) and each unit names its own: the consensus job
/// builds these for a million units and more, two at a time, and per unit they were ~44 bytes
/// (docs/bench.md, session 39). The sums still run unit by unit, in unit order, so every
/// number is the one a per-unit copy gives, to the last bit.
pub(crate) struct AlphaUnits {
    level: Level,
    /// Numeric value (interval, ratio) of each label code.
    values: Vec<f64>,
    /// Item index of each pairable unit.
    item: Vec<u32>,
    /// Each unit's label counts, by number: count set `k` has the distinct labels
    /// `codes[starts[k]..starts[k + 1]]`, each given `counts[...]` times.
    unit_counts: Vec<u32>,
    starts: Vec<u32>,
    codes: Vec<u32>,
    counts: Vec<u32>,
    /// Per count set: Σ_{c≠k} n_uc n_uk δ²_ck / (m_u − 1), for levels whose δ does not depend
    /// on the marginals (all but ordinal).
    fixed_disagreement: Vec<f64>,
    n_labels: usize,
}

impl AlphaUnits {
    pub(crate) fn new(ratings: &Ratings, level: Level) -> Result<Self, Undefined> {
        let values = match level {
            Level::Interval | Level::Ratio => match ratings.labels().values() {
                Some(v) => v.to_vec(),
                None => {
                    return Err(Undefined::new(format!(
                        "the {} metric needs numeric labels, and some labels are not numbers",
                        level_name(level)
                    )))
                }
            },
            _ => Vec::new(),
        };
        if ratings.n_active_annotators() < 2 {
            return Err(Undefined::new("fewer than two annotators rated anything"));
        }
        let l = ratings.n_labels();
        let mut units = AlphaUnits {
            level,
            values,
            item: Vec::new(),
            unit_counts: Vec::new(),
            starts: vec![0],
            codes: Vec::new(),
            counts: Vec::new(),
            fixed_disagreement: Vec::new(),
            n_labels: l,
        };
        let mut tally = vec![0u32; l];
        // Ratings pattern → its count set, once a unit of it has been seen.
        let mut set_of_pattern = vec![u32::MAX; ratings.n_patterns()];
        for i in 0..ratings.n_items() {
            let labels = ratings.item_labels(i);
            if labels.len() < 2 {
                continue;
            }
            let set = &mut set_of_pattern[ratings.item_pattern(i) as usize];
            if *set == u32::MAX {
                for &c in labels {
                    tally[c as usize] += 1;
                }
                for &c in labels {
                    let t = &mut tally[c as usize];
                    if *t > 0 {
                        units.codes.push(c);
                        units.counts.push(*t);
                        *t = 0;
                    }
                }
                *set = (units.starts.len() - 1) as u32;
                units.starts.push(u32::try_from(units.codes.len()).expect("fewer than 2^32 distinct labels of units"));
            }
            units.item.push(u32::try_from(i).expect("fewer than 2^32 items"));
            units.unit_counts.push(*set);
        }
        if units.item.is_empty() {
            return Err(Undefined::new("no item has two or more ratings"));
        }
        if level != Level::Ordinal {
            let fixed: Vec<f64> = (0..units.starts.len() - 1)
                .map(|k| units.set_disagreement(k, &|c, k| units.fixed_delta2(c, k)))
                .collect();
            units.fixed_disagreement = fixed;
        }
        Ok(units)
    }

    pub(crate) fn n_units(&self) -> usize {
        self.item.len()
    }

    pub(crate) fn unit_items(&self) -> &[u32] {
        &self.item
    }

    fn fixed_delta2(&self, c: usize, k: usize) -> f64 {
        match self.level {
            Level::Nominal => 1.0,
            Level::Interval => (self.values[c] - self.values[k]).powi(2),
            Level::Ratio => ratio_delta2(self.values[c], self.values[k]),
            Level::Ordinal => unreachable!("ordinal distances depend on the marginals"),
        }
    }

    /// Σ_{c≠k} n_uc n_uk δ²_ck / (m_u − 1) for the units of count set `set`.
    fn set_disagreement(&self, set: usize, delta2: &dyn Fn(usize, usize) -> f64) -> f64 {
        let range = self.starts[set] as usize..self.starts[set + 1] as usize;
        let (codes, counts) = (&self.codes[range.clone()], &self.counts[range]);
        let m: f64 = counts.iter().map(|&n| n as f64).sum();
        let mut sum = 0.0;
        for x in 0..codes.len() {
            for y in (x + 1)..codes.len() {
                sum += counts[x] as f64 * counts[y] as f64 * delta2(codes[x] as usize, codes[y] as usize);
            }
        }
        2.0 * sum / (m - 1.0)
    }

    /// Alpha with each unit counted `weights[u]` times (None: once), as the bootstrap needs.
    pub(crate) fn alpha(&self, weights: Option<&[u32]>) -> Stat {
        let w = |u: usize| weights.map_or(1.0, |w| w[u] as f64);
        let mut marginals = vec![0.0f64; self.n_labels];
        for u in 0..self.n_units() {
            let wu = w(u);
            if wu == 0.0 {
                continue;
            }
            let set = self.unit_counts[u] as usize;
            for j in self.starts[set] as usize..self.starts[set + 1] as usize {
                marginals[self.codes[j] as usize] += wu * self.counts[j] as f64;
            }
        }
        let n: f64 = marginals.iter().sum();
        if marginals.iter().filter(|&&c| c > 0.0).count() < 2 {
            return Err(Undefined::new(
                "every pairable rating has the same label: there is no variation to measure agreement against",
            ));
        }
        let (observed, expected) = match self.level {
            Level::Ordinal => {
                let ranks = mid_ranks(&marginals);
                let delta2 = |c: usize, k: usize| (ranks[c] - ranks[k]).powi(2);
                let sets: Vec<f64> = (0..self.starts.len() - 1).map(|k| self.set_disagreement(k, &delta2)).collect();
                let observed: f64 = (0..self.n_units()).map(|u| w(u) * sets[self.unit_counts[u] as usize]).sum();
                (observed, spread(&marginals, &ranks, n))
            }
            level => {
                let observed: f64 =
                    (0..self.n_units()).map(|u| w(u) * self.fixed_disagreement[self.unit_counts[u] as usize]).sum();
                let expected = match level {
                    Level::Nominal => n * n - marginals.iter().map(|c| c * c).sum::<f64>(),
                    Level::Interval => spread(&marginals, &self.values, n),
                    _ => ratio_expected(&marginals, &self.values),
                };
                (observed, expected)
            }
        };
        if expected <= 0.0 {
            return Err(Undefined::new(
                "the expected disagreement is zero: there is no variation to measure agreement against",
            ));
        }
        finite(1.0 - (n - 1.0) * observed / expected, "Krippendorff's alpha")
    }
}

pub(crate) fn level_name(level: Level) -> &'static str {
    match level {
        Level::Nominal => "nominal",
        Level::Ordinal => "ordinal",
        Level::Interval => "interval",
        Level::Ratio => "ratio",
    }
}

fn ratio_delta2(a: f64, b: f64) -> f64 {
    let s = a + b;
    if s == 0.0 {
        0.0
    } else {
        ((a - b) / s).powi(2)
    }
}

/// Mid-rank of each category: Σ_{g<c} n_g + n_c / 2. The ordinal δ_ck of Krippendorff (2011),
/// Σ_{g=c..k} n_g − (n_c + n_k)/2, equals the difference of mid-ranks.
fn mid_ranks(marginals: &[f64]) -> Vec<f64> {
    let mut below = 0.0;
    marginals
        .iter()
        .map(|&n_c| {
            let r = below + n_c / 2.0;
            below += n_c;
            r
        })
        .collect()
}

/// Σ_c Σ_k n_c n_k (x_c − x_k)² = 2n Σ_c n_c (x_c − x̄)², centred for accuracy.
fn spread(marginals: &[f64], x: &[f64], n: f64) -> f64 {
    let mean = marginals.iter().zip(x).map(|(c, v)| c * v).sum::<f64>() / n;
    2.0 * n * marginals.iter().zip(x).map(|(c, v)| c * (v - mean).powi(2)).sum::<f64>()
}

fn ratio_expected(marginals: &[f64], values: &[f64]) -> f64 {
    let used: Vec<usize> = (0..marginals.len()).filter(|&c| marginals[c] > 0.0).collect();
    let mut sum = 0.0;
    for (i, &c) in used.iter().enumerate() {
        for &k in &used[i + 1..] {
            sum += marginals[c] * marginals[k] * ratio_delta2(values[c], values[k]);
        }
    }
    2.0 * sum
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::stats::{LabelSet, RatingsBuilder};
    use proptest::prelude::*;

    /// Krippendorff (2011), section C: 4 observers, 12 units, missing values as None.
    pub(crate) fn krippendorff_2011_example() -> Ratings {
        let rows: [[Option<u8>; 12]; 4] = {
            let n = None;
            let s = Some;
            [
                [s(1), s(2), s(3), s(3), s(2), s(1), s(4), s(1), s(2), n, n, n],
                [s(1), s(2), s(3), s(3), s(2), s(2), s(4), s(1), s(2), s(5), n, s(3)],
                [n, s(3), s(3), s(3), s(2), s(3), s(4), s(2), s(2), s(5), s(1), n],
                [s(1), s(2), s(3), s(3), s(2), s(4), s(4), s(1), s(2), s(5), s(1), n],
            ]
        };
        let labels = LabelSet::new((1..=5).map(|v| v.to_string()).collect()).unwrap();
        let mut b = RatingsBuilder::new(Some(labels));
        for (obs, row) in rows.iter().enumerate() {
            for (unit, v) in row.iter().enumerate() {
                if let Some(v) = v {
                    b.push(&format!("u{unit}"), &format!("obs{obs}"), &v.to_string()).unwrap();
                }
            }
        }
        b.build().unwrap()
    }

    #[test]
    fn krippendorff_2011_worked_example() {
        let r = krippendorff_2011_example();
        // The paper reports three decimals; the full values were computed with the
        // `krippendorff` Python package (see tests/data/stats).
        let nominal = krippendorff_alpha(&r, Level::Nominal).unwrap();
        let ordinal = krippendorff_alpha(&r, Level::Ordinal).unwrap();
        let interval = krippendorff_alpha(&r, Level::Interval).unwrap();
        let ratio = krippendorff_alpha(&r, Level::Ratio).unwrap();
        assert_eq!((nominal * 1000.0).round() / 1000.0, 0.743);
        assert!((nominal - 0.743421052631579).abs() < 1e-14);
        assert!((ordinal - 0.8153875037548814).abs() < 1e-14);
        assert!((interval - 0.8491071428571428).abs() < 1e-14);
        assert!((ratio - 0.7974027747116121).abs() < 1e-14);
        assert_eq!((ordinal * 1000.0).round() / 1000.0, 0.815);
        assert_eq!((interval * 1000.0).round() / 1000.0, 0.849);
        assert_eq!((ratio * 1000.0).round() / 1000.0, 0.797);
    }

    #[test]
    fn coincidence_matrix_of_the_worked_example() {
        // The paper's matrix (section C): rows and columns are values 1..5.
        let o = coincidence_matrix(&krippendorff_2011_example());
        let third = 1.0 / 3.0;
        let expected = [
            [21.0, 4.0, 1.0, 1.0, 0.0],
            [4.0, 30.0, 4.0, 1.0, 0.0],
            [1.0, 4.0, 24.0, 1.0, 0.0],
            [1.0, 1.0, 1.0, 12.0, 0.0],
            [0.0, 0.0, 0.0, 0.0, 9.0],
        ]
        .map(|row| row.map(|x| x * third));
        for c in 0..5 {
            for k in 0..5 {
                assert!((o[c][k] - expected[c][k]).abs() < 1e-12, "o[{c}][{k}] = {}", o[c][k]);
            }
        }
        // Alpha from the matrix itself (the paper's formula) equals the unit-wise sum.
        let n_c: Vec<f64> = o.iter().map(|row| row.iter().sum()).collect();
        let n: f64 = n_c.iter().sum();
        let d_o: f64 = (0..5).flat_map(|c| (0..5).map(move |k| (c, k))).filter(|(c, k)| c != k).map(|(c, k)| o[c][k]).sum();
        let d_e: f64 = (0..5).flat_map(|c| (0..5).map(move |k| (c, k))).filter(|(c, k)| c != k).map(|(c, k)| n_c[c] * n_c[k]).sum();
        let from_matrix = 1.0 - (n - 1.0) * d_o / d_e;
        let alpha = krippendorff_alpha(&krippendorff_2011_example(), Level::Nominal).unwrap();
        assert!((from_matrix - alpha).abs() < 1e-14);
    }

    fn build(records: &[(&str, &str, &str)]) -> Ratings {
        let mut b = RatingsBuilder::new(None);
        for (i, a, l) in records {
            b.push(i, a, l).unwrap();
        }
        b.build().unwrap()
    }

    #[test]
    fn undefined_cases_say_why() {
        let one_annotator = build(&[("x", "ann", "a"), ("y", "ann", "b")]);
        let e = krippendorff_alpha(&one_annotator, Level::Nominal).unwrap_err();
        assert!(e.reason.contains("fewer than two annotators"), "{e}");

        let not_pairable = build(&[("x", "ann", "a"), ("y", "bob", "b")]);
        let e = krippendorff_alpha(&not_pairable, Level::Nominal).unwrap_err();
        assert!(e.reason.contains("two or more ratings"), "{e}");

        let identical = build(&[("x", "ann", "a"), ("x", "bob", "a"), ("y", "ann", "a"), ("y", "bob", "a")]);
        let e = krippendorff_alpha(&identical, Level::Nominal).unwrap_err();
        assert!(e.reason.contains("no variation"), "{e}");

        let text = build(&[("x", "ann", "a"), ("x", "bob", "b")]);
        let e = krippendorff_alpha(&text, Level::Interval).unwrap_err();
        assert!(e.reason.contains("numeric labels"), "{e}");
    }

    #[test]
    fn ratio_with_zero_values_is_finite() {
        let r = build(&[("x", "a", "0"), ("x", "b", "0"), ("y", "a", "0"), ("y", "b", "3"), ("z", "a", "2"), ("z", "b", "2")]);
        assert!(krippendorff_alpha(&r, Level::Ratio).unwrap().is_finite());
    }

    /// Random ratings: items × annotators, each rating present with some probability.
    pub(crate) fn arb_ratings() -> impl Strategy<Value = Vec<(usize, usize, usize)>> {
        (2usize..12, 2usize..5, 2usize..5).prop_flat_map(|(items, annotators, labels)| {
            proptest::collection::vec(
                proptest::option::weighted(0.8, 0..labels),
                items * annotators,
            )
            .prop_map(move |cells| {
                cells
                    .iter()
                    .enumerate()
                    .filter_map(|(k, l)| l.map(|l| (k / annotators, k % annotators, l)))
                    .collect()
            })
        })
    }

    pub(crate) fn ratings_from(records: &[(usize, usize, usize)], label_names: &[&str]) -> Ratings {
        let mut b = RatingsBuilder::new(Some(LabelSet::new(label_names.iter().map(|s| s.to_string()).collect()).unwrap()));
        for &(i, a, l) in records {
            b.push(&format!("i{i}"), &format!("a{a}"), label_names[l]).unwrap();
        }
        b.build().unwrap()
    }

    proptest! {
        #[test]
        fn alpha_is_one_under_perfect_agreement(truth in proptest::collection::vec(0usize..4, 2..20), raters in 2usize..5) {
            let records: Vec<_> = truth.iter().enumerate()
                .flat_map(|(i, &l)| (0..raters).map(move |a| (i, a, l))).collect();
            let r = ratings_from(&records, &["1", "2", "3", "4"]);
            for level in [Level::Nominal, Level::Ordinal, Level::Interval, Level::Ratio] {
                match krippendorff_alpha(&r, level) {
                    Ok(a) => prop_assert!((a - 1.0).abs() < 1e-12, "{level:?}: {a}"),
                    Err(e) => prop_assert!(e.reason.contains("no variation")),
                }
            }
        }

        #[test]
        fn nominal_alpha_is_invariant_to_relabeling(
            records in arb_ratings(),
            permutation in Just((0..5usize).collect::<Vec<_>>()).prop_shuffle(),
        ) {
            let names = ["p", "q", "r", "s", "t"];
            let a = krippendorff_alpha(&ratings_from(&records, &names), Level::Nominal);
            let renamed: Vec<_> = records.iter().map(|&(i, n, l)| (i, n, permutation[l])).collect();
            let b = krippendorff_alpha(&ratings_from(&renamed, &names), Level::Nominal);
            match (a, b) {
                (Ok(a), Ok(b)) => prop_assert!((a - b).abs() < 1e-12),
                (Err(_), Err(_)) => {}
                (a, b) => prop_assert!(false, "{a:?} vs {b:?}"),
            }
        }

        #[test]
        fn alpha_never_nan_and_at_most_one(records in arb_ratings()) {
            let r = ratings_from(&records, &["1", "2", "3", "4", "5"]);
            for level in [Level::Nominal, Level::Ordinal, Level::Interval, Level::Ratio] {
                if let Ok(a) = krippendorff_alpha(&r, level) {
                    prop_assert!(a.is_finite() && a <= 1.0 + 1e-12);
                }
            }
        }
    }
}
