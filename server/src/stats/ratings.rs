//! Annotation records `(item, annotator, label)` coded once into dense integer arrays, grouped
//! by item, so that every agreement and aggregation loop runs over plain slices.

use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::runs::{RunInterner, RunPool};

/// How labels relate to each other (Krippendorff's "level of measurement"): it decides which
/// disagreements count and how much.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Categories: any two different labels disagree equally.
    Nominal,
    /// Ordered categories: the label order matters, distances do not.
    Ordinal,
    /// Numbers: differences matter (squared difference).
    Interval,
    /// Numbers with a true zero: relative differences matter.
    Ratio,
}

impl Level {
    /// Whether the labels have an order (weighted kappas are reported only then).
    pub fn is_ordered(self) -> bool {
        !matches!(self, Level::Nominal)
    }
}

/// The labels of a project, in the project's order. The position of a label is its code in
/// [`Ratings`]; for ordinal data it is the rank, and it breaks ties wherever one label must be
/// chosen. When every label is a number, `values` holds them (needed by interval and ratio).
#[derive(Debug, Clone, PartialEq)]
pub struct LabelSet {
    names: Vec<String>,
    values: Option<Vec<f64>>,
    index: HashMap<String, usize>,
}

impl LabelSet {
    /// Labels in the given order. Duplicate names are an error.
    pub fn new(names: Vec<String>) -> Result<Self, RatingsError> {
        let mut index = HashMap::with_capacity(names.len());
        for (i, name) in names.iter().enumerate() {
            if index.insert(name.clone(), i).is_some() {
                return Err(RatingsError::DuplicateLabel(name.clone()));
            }
        }
        let values = names
            .iter()
            .map(|n| n.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
            .collect::<Option<Vec<f64>>>();
        Ok(LabelSet { names, values, index })
    }

    /// Labels found in the data, with no project order given: ascending by value when all are
    /// numbers, otherwise in text order, so the result never depends on the order of records.
    pub fn discovered(names: impl IntoIterator<Item = String>) -> Self {
        let mut names: Vec<String> = names.into_iter().collect();
        names.sort();
        names.dedup();
        let numeric: Option<Vec<f64>> = names
            .iter()
            .map(|n| n.trim().parse::<f64>().ok().filter(|v| v.is_finite()))
            .collect();
        if let Some(values) = numeric {
            let mut pairs: Vec<(f64, String)> = values.into_iter().zip(names).collect();
            pairs.sort_by(|a, b| a.0.total_cmp(&b.0).then_with(|| a.1.cmp(&b.1)));
            names = pairs.into_iter().map(|(_, n)| n).collect();
        }
        LabelSet::new(names).expect("deduplicated above")
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn name(&self, code: usize) -> &str {
        &self.names[code]
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// The numeric value of every label, when all of them are numbers.
    pub fn values(&self) -> Option<&[f64]> {
        self.values.as_deref()
    }
}

/// Why records could not be coded.
#[derive(Debug, Clone, PartialEq)]
pub enum RatingsError {
    /// A label outside the project's label set; `record` is the record's position.
    UnknownLabel { record: usize, label: String },
    /// The same annotator rated the same item twice (records `first` and `second`).
    Duplicate { item: String, annotator: String, first: usize, second: usize },
    /// A coded record refers to an item, annotator or label index that does not exist.
    OutOfRange { record: usize, what: &'static str },
    /// The label set names a label twice.
    DuplicateLabel(String),
}

impl fmt::Display for RatingsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RatingsError::UnknownLabel { label, .. } => {
                write!(f, "unknown label {label:?} (not in the label set)")
            }
            RatingsError::Duplicate { item, annotator, .. } => {
                write!(f, "annotator {annotator:?} rated item {item:?} more than once")
            }
            RatingsError::OutOfRange { what, .. } => write!(f, "{what} index out of range"),
            RatingsError::DuplicateLabel(l) => write!(f, "label {l:?} appears twice in the label set"),
        }
    }
}

impl std::error::Error for RatingsError {}

/// What names a set's items: their names as given, or numbers named when asked, so that the
/// consensus job's million units do not each hold a string (an item id as text is a 24-byte
/// `String` and a 32-byte allocation; as a number, 8 bytes).
#[derive(Debug, Clone)]
pub enum ItemKeys {
    /// One name per item.
    Names(Vec<String>),
    /// Item `i` is named `ids[i]`, followed by `/` and `suffixes[suffix_of[i]]` when
    /// `suffix_of` is not empty (the consensus job's multi-label units: item id / label).
    Numbers { ids: Vec<i64>, suffix_of: Vec<u32>, suffixes: Vec<String> },
}

impl ItemKeys {
    fn len(&self) -> usize {
        match self {
            ItemKeys::Names(names) => names.len(),
            ItemKeys::Numbers { ids, .. } => ids.len(),
        }
    }

    fn name(&self, i: usize) -> Cow<'_, str> {
        match self {
            ItemKeys::Names(names) => Cow::Borrowed(names[i].as_str()),
            ItemKeys::Numbers { ids, suffix_of, .. } if suffix_of.is_empty() => Cow::Owned(ids[i].to_string()),
            ItemKeys::Numbers { ids, suffix_of, suffixes } => {
                Cow::Owned(format!("{}/{}", ids[i], suffixes[suffix_of[i] as usize]))
            }
        }
    }
}

/// Item names, shared by a set of ratings and its restrictions ([`Ratings::restrict_to_items`]):
/// a restriction names its items by position in the whole's list instead of copying a name
/// per item (the consensus job restricts every unit of a project by day, by week and by slice).
#[derive(Debug, Clone)]
struct ItemNames {
    all: Arc<ItemKeys>,
    /// The items, as positions in `all`; `None`: all of them, in order.
    pick: Option<Vec<u32>>,
}

impl ItemNames {
    fn len(&self) -> usize {
        self.pick.as_ref().map_or(self.all.len(), Vec::len)
    }

    /// Position in `all` of item `i`.
    fn position(&self, i: usize) -> usize {
        self.pick.as_ref().map_or(i, |p| p[i] as usize)
    }
}

/// Annotation records grouped by item: item `i`'s ratings are run `item_runs[i]` of `runs`, its
/// annotator codes (ascending) followed by their label codes. Items with the same ratings share
/// one run ([`RunPool`]), and a restriction shares the whole's pool.
#[derive(Debug, Clone)]
pub struct Ratings {
    labels: LabelSet,
    items: ItemNames,
    annotators: Vec<String>,
    item_runs: Vec<u32>,
    runs: Arc<RunPool<u32>>,
    n_annotations: usize,
}

/// Interns items' ratings as runs of annotator codes then label codes.
#[derive(Default)]
struct RatingRuns {
    interner: RunInterner<u32>,
    item_runs: Vec<u32>,
    run: Vec<u32>,
    n_annotations: usize,
}

impl RatingRuns {
    /// The next item's ratings: (annotator, label) codes, sorted by annotator.
    fn push(&mut self, ratings: impl Iterator<Item = (u32, u32)> + Clone) {
        self.run.clear();
        self.run.extend(ratings.clone().map(|(a, _)| a));
        self.run.extend(ratings.map(|(_, l)| l));
        self.n_annotations += self.run.len() / 2;
        self.item_runs.push(self.interner.intern(&self.run));
    }

    fn finish(self, labels: LabelSet, items: ItemNames, annotators: Vec<String>) -> Ratings {
        let RatingRuns { interner, mut item_runs, n_annotations, .. } = self;
        item_runs.shrink_to_fit();
        Ratings { labels, items, annotators, item_runs, runs: Arc::new(interner.finish()), n_annotations }
    }
}

impl Ratings {
    /// Codes records given as `(item, annotator, label)` indices into `items`, `annotators` and
    /// `labels`. Items without records are kept (they have no ratings). One rating per
    /// (item, annotator) pair: a second one is an error naming both records.
    pub fn from_codes(
        items: Vec<String>,
        annotators: Vec<String>,
        labels: LabelSet,
        records: &[(usize, usize, usize)],
    ) -> Result<Self, RatingsError> {
        Ratings::from_keyed_codes(ItemKeys::Names(items), annotators, labels, records)
    }

    /// [`Ratings::from_codes`] with the items named by [`ItemKeys`].
    pub fn from_keyed_codes(
        items: ItemKeys,
        annotators: Vec<String>,
        labels: LabelSet,
        records: &[(usize, usize, usize)],
    ) -> Result<Self, RatingsError> {
        let (n_items, n_annotators, n_labels) = (items.len(), annotators.len(), labels.len());
        let mut counts = vec![0usize; n_items + 1];
        for (r, &(i, a, l)) in records.iter().enumerate() {
            if i >= n_items {
                return Err(RatingsError::OutOfRange { record: r, what: "item" });
            }
            if a >= n_annotators {
                return Err(RatingsError::OutOfRange { record: r, what: "annotator" });
            }
            if l >= n_labels {
                return Err(RatingsError::OutOfRange { record: r, what: "label" });
            }
            counts[i + 1] += 1;
        }
        for i in 0..n_items {
            counts[i + 1] += counts[i];
        }
        let starts = counts.clone();
        // Counting sort by item (stable, so record order is kept within an item) ...
        let mut order = vec![0u32; records.len()];
        let mut next = counts;
        for (r, &(i, _, _)) in records.iter().enumerate() {
            order[next[i]] = r as u32;
            next[i] += 1;
        }
        // ... then by annotator within each item (a handful of ratings each).
        for i in 0..n_items {
            let slice = &mut order[starts[i]..starts[i + 1]];
            slice.sort_by_key(|&r| (records[r as usize].1, r));
            for w in slice.windows(2) {
                let (r1, r2) = (w[0] as usize, w[1] as usize);
                if records[r1].1 == records[r2].1 {
                    return Err(RatingsError::Duplicate {
                        item: items.name(i).into_owned(),
                        annotator: annotators[records[r1].1].clone(),
                        first: r1,
                        second: r2,
                    });
                }
            }
        }
        let mut runs = RatingRuns::default();
        for i in 0..n_items {
            let item = &order[starts[i]..starts[i + 1]];
            runs.push(item.iter().map(|&r| (records[r as usize].1 as u32, records[r as usize].2 as u32)));
        }
        Ok(runs.finish(labels, ItemNames { all: Arc::new(items), pick: None }, annotators))
    }

    /// [`Ratings::from_keyed_codes`] for records that come grouped by item, in item order,
    /// without a list of them: `ratings_of(i, out)` appends item `i`'s (annotator, label) codes
    /// to `out`, in record order (records are numbered in the order they come, as in a list
    /// grouped by item). The result and the errors are `from_keyed_codes`'s for that list: the
    /// first record out of range, else the first item rated twice by one annotator. A consensus
    /// refresh codes millions of records, and a list of them was 24 bytes each beside the
    /// ratings' own 8 (docs/bench.md, session 30).
    pub fn from_grouped_codes(
        items: ItemKeys,
        annotators: Vec<String>,
        labels: LabelSet,
        mut ratings_of: impl FnMut(usize, &mut Vec<(usize, usize)>),
    ) -> Result<Self, RatingsError> {
        let (n_items, n_annotators, n_labels) = (items.len(), annotators.len(), labels.len());
        let mut runs = RatingRuns { item_runs: Vec::with_capacity(n_items), ..Default::default() };
        let mut duplicate = None;
        let (mut given, mut sorted) = (Vec::new(), Vec::new());
        for i in 0..n_items {
            given.clear();
            ratings_of(i, &mut given);
            let first = runs.n_annotations;
            sorted.clear();
            for (k, &(a, l)) in given.iter().enumerate() {
                if a >= n_annotators {
                    return Err(RatingsError::OutOfRange { record: first + k, what: "annotator" });
                }
                if l >= n_labels {
                    return Err(RatingsError::OutOfRange { record: first + k, what: "label" });
                }
                sorted.push((a, first + k, l));
            }
            // By annotator, then record: the order `from_keyed_codes` gives an item's ratings.
            sorted.sort_unstable();
            if duplicate.is_none() {
                duplicate = sorted.windows(2).find(|w| w[0].0 == w[1].0).map(|w| (i, w[0].0, w[0].1, w[1].1));
            }
            runs.push(sorted.iter().map(|&(a, _, l)| (a as u32, l as u32)));
        }
        if let Some((i, a, first, second)) = duplicate {
            let (item, annotator) = (items.name(i).into_owned(), annotators[a].clone());
            return Err(RatingsError::Duplicate { item, annotator, first, second });
        }
        Ok(runs.finish(labels, ItemNames { all: Arc::new(items), pick: None }, annotators))
    }

    pub fn labels(&self) -> &LabelSet {
        &self.labels
    }

    /// Item `i`'s name.
    pub fn item_name(&self, i: usize) -> Cow<'_, str> {
        self.items.all.name(self.items.position(i))
    }

    /// The items' names, in item order.
    pub fn item_names(&self) -> impl ExactSizeIterator<Item = Cow<'_, str>> + '_ {
        (0..self.n_items()).map(|i| self.item_name(i))
    }

    pub fn annotators(&self) -> &[String] {
        &self.annotators
    }

    pub fn n_items(&self) -> usize {
        self.items.len()
    }

    pub fn n_annotators(&self) -> usize {
        self.annotators.len()
    }

    pub fn n_labels(&self) -> usize {
        self.labels.len()
    }

    pub fn n_annotations(&self) -> usize {
        self.n_annotations
    }

    /// The annotator codes of item `i`'s ratings (ascending).
    pub fn item_annotators(&self, i: usize) -> &[u32] {
        let run = self.runs.get(self.item_runs[i]);
        &run[..run.len() / 2]
    }

    /// The label codes of item `i`'s ratings, aligned with [`Ratings::item_annotators`].
    pub fn item_labels(&self, i: usize) -> &[u32] {
        let run = self.runs.get(self.item_runs[i]);
        &run[run.len() / 2..]
    }

    /// Number of ratings of item `i`.
    pub fn item_len(&self, i: usize) -> usize {
        self.runs.get(self.item_runs[i]).len() / 2
    }

    /// Item `i`'s ratings as a number shared by every item with the same ratings (the same
    /// annotators giving the same labels): equal numbers, equal ratings (and the reverse).
    pub fn item_pattern(&self, i: usize) -> u32 {
        self.item_runs[i]
    }

    /// The distinct patterns ([`Ratings::item_pattern`]) of the items `keep` keeps, each as its
    /// first such item, in the order of their ratings (annotator codes, then label codes): the
    /// order sorting those items by their ratings gives them, one item a pattern. Also each
    /// pattern number's place in that order (`u32::MAX`: none of the kept items has it). The
    /// bootstrap and the aggregations sum over patterns in this order.
    pub fn patterns_in_order(&self, keep: impl Fn(usize) -> bool) -> (Vec<usize>, Vec<u32>) {
        let mut first = vec![u32::MAX; self.n_patterns()];
        for i in (0..self.n_items()).filter(|&i| keep(i)) {
            let f = &mut first[self.item_pattern(i) as usize];
            if *f == u32::MAX {
                *f = u32::try_from(i).expect("fewer than 2^32 items");
            }
        }
        let mut firsts: Vec<usize> = first.into_iter().filter(|&i| i != u32::MAX).map(|i| i as usize).collect();
        let ratings = |i: usize| (self.item_annotators(i), self.item_labels(i));
        firsts.sort_unstable_by(|&x, &y| ratings(x).cmp(&ratings(y)));
        let mut place = vec![u32::MAX; self.n_patterns()];
        for (k, &i) in firsts.iter().enumerate() {
            place[self.item_pattern(i) as usize] = k as u32;
        }
        (firsts, place)
    }

    /// How many distinct patterns [`Ratings::item_pattern`] numbers (some may belong to
    /// items a restriction left out).
    pub fn n_patterns(&self) -> usize {
        self.runs.len()
    }

    /// The same data restricted to the given items (for slices), keeping the label set and
    /// the annotator list so results stay comparable with the whole.
    pub fn restrict_to_items(&self, keep: &[usize]) -> Ratings {
        let mut pick = Vec::with_capacity(keep.len());
        let mut item_runs = Vec::with_capacity(keep.len());
        let mut n_annotations = 0;
        for &i in keep {
            pick.push(u32::try_from(self.items.position(i)).expect("fewer than 2^32 items"));
            item_runs.push(self.item_runs[i]);
            n_annotations += self.item_len(i);
        }
        Ratings {
            labels: self.labels.clone(),
            items: ItemNames { all: self.items.all.clone(), pick: Some(pick) },
            annotators: self.annotators.clone(),
            item_runs,
            runs: self.runs.clone(),
            n_annotations,
        }
    }

    /// [`Ratings::restrict_to_items`] to `keep` (ascending, distinct), borrowing the whole when
    /// it keeps every item instead of copying every rating (a consensus refresh restricts a
    /// project's million units by day, week and slice value, and a project labeled within one
    /// day or a slice of one value keeps them all: docs/bench.md, session 30).
    pub fn restricted(&self, keep: &[usize]) -> Cow<'_, Ratings> {
        if keep.len() == self.n_items() {
            Cow::Borrowed(self)
        } else {
            Cow::Owned(self.restrict_to_items(keep))
        }
    }

    /// Number of annotators with at least one rating.
    pub fn n_active_annotators(&self) -> usize {
        let mut seen = vec![false; self.n_annotators()];
        for i in 0..self.n_items() {
            for &a in self.item_annotators(i) {
                seen[a as usize] = true;
            }
        }
        seen.iter().filter(|s| **s).count()
    }

    /// Number of items with at least two ratings (the ones agreement can be measured on).
    pub fn n_pairable_items(&self) -> usize {
        (0..self.n_items()).filter(|&i| self.item_len(i) >= 2).count()
    }
}

/// Builds [`Ratings`] from records named by strings, interning names as they come. With a
/// label set given, a label outside it is rejected at once; without one, the labels found are
/// ordered as [`LabelSet::discovered`] does.
#[derive(Debug, Default)]
pub struct RatingsBuilder {
    labels: Option<LabelSet>,
    item_index: HashMap<String, usize>,
    items: Vec<String>,
    annotator_index: HashMap<String, usize>,
    annotators: Vec<String>,
    found_labels: HashMap<String, usize>,
    found_label_names: Vec<String>,
    records: Vec<(usize, usize, usize)>,
}

impl RatingsBuilder {
    /// A builder; `labels` is the project's label order, if known.
    pub fn new(labels: Option<LabelSet>) -> Self {
        RatingsBuilder { labels, ..Default::default() }
    }

    /// Adds one record. Records are numbered from 0 in the order pushed (errors refer to them).
    pub fn push(&mut self, item: &str, annotator: &str, label: &str) -> Result<(), RatingsError> {
        let label_code = match &self.labels {
            Some(set) => set.index_of(label).ok_or_else(|| RatingsError::UnknownLabel {
                record: self.records.len(),
                label: label.to_string(),
            })?,
            None => intern(&mut self.found_labels, &mut self.found_label_names, label),
        };
        let i = intern(&mut self.item_index, &mut self.items, item);
        let a = intern(&mut self.annotator_index, &mut self.annotators, annotator);
        self.records.push((i, a, label_code));
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.records.len()
    }

    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    pub fn build(self) -> Result<Ratings, RatingsError> {
        let RatingsBuilder { labels, items, annotators, found_label_names, mut records, .. } = self;
        let labels = match labels {
            Some(set) => set,
            None => {
                let set = LabelSet::discovered(found_label_names.iter().cloned());
                let remap: Vec<usize> = found_label_names
                    .iter()
                    .map(|n| set.index_of(n).expect("discovered from these names"))
                    .collect();
                for r in &mut records {
                    r.2 = remap[r.2];
                }
                set
            }
        };
        Ratings::from_codes(items, annotators, labels, &records)
    }
}

fn intern(index: &mut HashMap<String, usize>, names: &mut Vec<String>, name: &str) -> usize {
    if let Some(&i) = index.get(name) {
        return i;
    }
    names.push(name.to_string());
    index.insert(name.to_string(), names.len() - 1);
    names.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discovered_labels_sort_numbers_by_value_and_text_alphabetically() {
        let set = LabelSet::discovered(["10", "9", "1.5"].map(String::from));
        assert_eq!(set.names(), ["1.5", "9", "10"]);
        assert_eq!(set.values(), Some(&[1.5, 9.0, 10.0][..]));
        let set = LabelSet::discovered(["dog", "cat", "dog"].map(String::from));
        assert_eq!(set.names(), ["cat", "dog"]);
        assert_eq!(set.values(), None);
    }

    #[test]
    fn label_set_rejects_duplicates() {
        assert_eq!(
            LabelSet::new(vec!["a".into(), "a".into()]),
            Err(RatingsError::DuplicateLabel("a".into()))
        );
    }

    #[test]
    fn builder_groups_by_item_and_sorts_by_annotator() {
        let mut b = RatingsBuilder::new(None);
        b.push("x", "bob", "1").unwrap();
        b.push("y", "ann", "2").unwrap();
        b.push("x", "ann", "2").unwrap();
        let r = b.build().unwrap();
        assert_eq!(r.n_items(), 2);
        assert_eq!(r.n_annotations(), 3);
        assert_eq!(r.item_names().collect::<Vec<_>>(), ["x", "y"]);
        // Annotators are coded in order of appearance (bob 0, ann 1); item x lists them by code.
        assert_eq!(r.item_annotators(0), [0, 1]);
        assert_eq!(r.item_labels(0), [0, 1]);
        assert_eq!(r.n_pairable_items(), 1);
    }

    #[test]
    fn builder_rejects_unknown_label_and_duplicate_rating() {
        let set = LabelSet::new(vec!["a".into(), "b".into()]).unwrap();
        let mut b = RatingsBuilder::new(Some(set));
        b.push("x", "ann", "a").unwrap();
        assert!(matches!(
            b.push("x", "bob", "c"),
            Err(RatingsError::UnknownLabel { record: 1, .. })
        ));
        b.push("x", "ann", "b").unwrap();
        assert!(matches!(
            b.build(),
            Err(RatingsError::Duplicate { first: 0, second: 1, .. })
        ));
    }

    #[test]
    fn restrict_keeps_labels_and_annotators() {
        let mut b = RatingsBuilder::new(None);
        b.push("x", "ann", "a").unwrap();
        b.push("y", "bob", "b").unwrap();
        b.push("z", "ann", "b").unwrap();
        let whole = b.build().unwrap();
        let r = whole.restrict_to_items(&[2, 1]);
        assert_eq!(r.n_items(), 2);
        assert_eq!(r.n_labels(), 2);
        assert_eq!(r.n_annotators(), 2);
        assert_eq!((r.item_labels(0), r.item_labels(1)), (&[1][..], &[1][..]));
        assert_eq!((r.item_annotators(0), r.item_annotators(1)), (&[0][..], &[1][..]));
        // A restriction of a restriction names the whole's items.
        let r = r.restrict_to_items(&[1]);
        assert_eq!(r.item_names().collect::<Vec<_>>(), ["y"]);
        assert_eq!(r.item_annotators(0), [1]);
    }

    /// Every item's annotators and labels, and the annotators' and items' names.
    fn contents(r: &Ratings) -> (Vec<(Vec<u32>, Vec<u32>)>, Vec<String>, Vec<String>) {
        let items = (0..r.n_items()).map(|i| (r.item_annotators(i).to_vec(), r.item_labels(i).to_vec())).collect();
        (items, r.annotators().to_vec(), r.item_names().map(String::from).collect())
    }

    #[test]
    fn grouped_codes_give_what_a_list_of_them_gives() {
        let labels = || LabelSet::new(vec!["a".into(), "b".into(), "c".into()]).unwrap();
        let keys =
            |n: usize| ItemKeys::Numbers { ids: (0..n as i64).collect(), suffix_of: Vec::new(), suffixes: Vec::new() };
        let annotators = || (0..5).map(|a| format!("u{a}")).collect::<Vec<String>>();
        let mut seed = 7u64;
        let mut draw = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            ((seed >> 33) % n) as usize
        };
        // Cases: distinct annotators per item; some items rated twice by one annotator; an
        // annotator or a label code out of range (after a duplicate: the range error wins).
        for case in 0..60 {
            let n_items = 1 + draw(40);
            let mut groups: Vec<Vec<(usize, usize)>> = Vec::new();
            for _ in 0..n_items {
                let mut g: Vec<(usize, usize)> = Vec::new();
                for a in 0..5 {
                    if draw(3) > 0 {
                        g.push((a, draw(3)));
                    }
                }
                // Shuffled, so the records of an item do not come by annotator.
                for k in (1..g.len()).rev() {
                    g.swap(k, draw(k as u64 + 1));
                }
                groups.push(g);
            }
            type Groups = Vec<Vec<(usize, usize)>>;
            let spoil = |groups: &mut Groups, what: (usize, usize), draw: &mut dyn FnMut(u64) -> usize| {
                let i = draw(n_items as u64);
                let at = draw(groups[i].len() as u64 + 1);
                groups[i].insert(at, what);
            };
            match case % 4 {
                1 => spoil(&mut groups, (draw(5), 0), &mut draw),
                2 => {
                    spoil(&mut groups, (draw(5), 1), &mut draw);
                    spoil(&mut groups, (5, 0), &mut draw);
                }
                3 => spoil(&mut groups, (0, 3), &mut draw),
                _ => {}
            }
            let list: Vec<(usize, usize, usize)> =
                groups.iter().enumerate().flat_map(|(i, g)| g.iter().map(move |&(a, l)| (i, a, l))).collect();
            let from_list = Ratings::from_keyed_codes(keys(n_items), annotators(), labels(), &list);
            let grouped = Ratings::from_grouped_codes(keys(n_items), annotators(), labels(), |i, out| {
                out.extend_from_slice(&groups[i]);
            });
            match (from_list, grouped) {
                (Ok(x), Ok(y)) => assert_eq!(contents(&x), contents(&y), "case {case}"),
                (Err(x), Err(y)) => assert_eq!(x, y, "case {case}"),
                (x, y) => panic!("case {case}: {:?} against {:?}", x.map(|r| contents(&r)), y.map(|r| contents(&r))),
            }
        }
    }

    #[test]
    fn numbered_items_are_named_when_asked() {
        let records = [(0, 0, 0), (1, 0, 1), (2, 0, 0)];
        let labels = || LabelSet::new(vec!["a".into(), "b".into()]).unwrap();
        let ids = ItemKeys::Numbers { ids: vec![7, 9, 12], suffix_of: Vec::new(), suffixes: Vec::new() };
        let r = Ratings::from_keyed_codes(ids, vec!["ann".into()], labels(), &records).unwrap();
        assert_eq!(r.item_names().collect::<Vec<_>>(), ["7", "9", "12"]);
        assert_eq!(r.restrict_to_items(&[2]).item_name(0), "12");
        let suffixes = vec!["x".into(), "y/z".into()];
        let units = ItemKeys::Numbers { ids: vec![7, 7, 9], suffix_of: vec![1, 0, 1], suffixes };
        let r = Ratings::from_keyed_codes(units, vec!["ann".into()], labels(), &records).unwrap();
        assert_eq!(r.item_names().collect::<Vec<_>>(), ["7/y/z", "7/x", "9/y/z"]);
        // A second rating of one item by one annotator names the item.
        let twice = ItemKeys::Numbers { ids: vec![5], suffix_of: Vec::new(), suffixes: Vec::new() };
        let err = Ratings::from_keyed_codes(twice, vec!["ann".into()], labels(), &[(0, 0, 0), (0, 0, 1)]).unwrap_err();
        assert!(matches!(err, RatingsError::Duplicate { ref item, .. } if item == "5"), "{err:?}");
    }
}
