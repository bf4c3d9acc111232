//! A project's annotations as the statistics core reads them.
//!
//! The coding follows the `annotations` export line for line (`crate::export::annotation_lines`),
//! so that every number here equals what `mirrorset stats agreement` / `aggregate` print for
//! that export:
//! - single-label: one unit per item (keyed by the numeric item id), label = the chosen label;
//! - multi-label: one unit per (item, label) with value `absent` / `present`, the project's
//!   labels first, then any label an annotation of the item uses that the project no longer
//!   lists.
//!
//! Items come in id order and annotators are coded in order of first appearance, exactly as
//! the command reads the export, so even the bootstrap (which resamples units by position)
//! draws the same replicates.
//!
//! A refresh holds every labeled item of the project at once (a million and more), so an
//! item's answers and slice values are a number each: their run in a pool of the distinct runs
//! (`stats::runs`), with no allocation of their own per item or per annotation. An item struct
//! with its own vectors, until session 29, took about 250 bytes for one annotation; flat
//! arrays indexed by item, until session 39, 12 bytes an answer (docs/bench.md).
use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::export::{ABSENT, PRESENT};
use crate::stats::runs::{RunInterner, RunPool};
use crate::stats::{median, ItemKeys, LabelSet, Ratings, RatingsError};
use crate::store::agreement::{AnnotationRow, ItemRow};

/// One labeled item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Item {
    pub id: i64,
    /// When its newest annotation was first made (ms): its place on the timeline.
    pub last_at: i64,
}

/// An item's answers, as [`Dataset::answers`] reads them from the item's run: the answer
/// count, then per answer its annotator code, its label count and its label codes.
#[derive(Debug, Clone)]
struct Answers<'a> {
    rest: &'a [u32],
    left: usize,
}

impl<'a> Answers<'a> {
    fn of(run: &'a [u32]) -> Answers<'a> {
        Answers { rest: &run[1..], left: run[0] as usize }
    }
}

impl<'a> Iterator for Answers<'a> {
    type Item = (usize, &'a [u32]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        let (annotator, n) = (self.rest[0] as usize, self.rest[1] as usize);
        let labels = &self.rest[2..2 + n];
        self.rest = &self.rest[2 + n..];
        self.left -= 1;
        Some((annotator, labels))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl ExactSizeIterator for Answers<'_> {}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub multi: bool,
    /// The project's labels, then any others found in annotations.
    pub label_names: Vec<String>,
    /// Meta attribute names and slice values, interned (each once for the whole project).
    pub meta_attrs: Vec<String>,
    pub meta_values: Vec<String>,
    pub items: Vec<Item>,
    /// Per item, its answers as a run of `answer_runs` ([`Dataset::answers`]); items with the
    /// same answers share one (`stats::runs`: a million items of three labelers choosing among
    /// a few labels have a few hundred distinct runs).
    item_answers: Vec<u32>,
    answer_runs: RunPool<u32>,
    /// Per item, its slice values ([`Dataset::meta`]) as a run of `meta_runs`.
    item_meta: Vec<u32>,
    meta_runs: RunPool<(u32, u32)>,
    /// (index into `items`, gold answer), by index: few items have one.
    golds: Vec<(usize, Vec<String>)>,
    /// Units: items (single-label) or (item, label) pairs (multi-label).
    pub ratings: Ratings,
    /// Unit → index into `items`.
    pub unit_item: Vec<usize>,
    /// Multi-label: unit → index into `label_names`.
    pub unit_label: Vec<usize>,
    /// Annotator code → (user id, username), in order of first appearance (`ratings` has its
    /// own codes, in order of first usable answer: the same unless a labeler's first answers
    /// had no usable label).
    pub users: Vec<(i64, String)>,
    /// Per annotator code: their answers and the time they spent on them.
    pub times: Vec<AnswerTimes>,
}

/// An annotator's answers and the median time spent on one (the seconds of each answer are
/// held only while the rows are read: 8 bytes per annotation).
#[derive(Debug, Clone, PartialEq)]
pub struct AnswerTimes {
    pub answers: usize,
    pub median_seconds: Option<f64>,
}

fn intern(index: &mut HashMap<String, u32>, names: &mut Vec<String>, name: &str) -> u32 {
    if let Some(&c) = index.get(name) {
        return c;
    }
    names.push(name.to_string());
    index.insert(name.to_string(), (names.len() - 1) as u32);
    (names.len() - 1) as u32
}

impl Dataset {
    /// Builds the dataset from annotation rows in (item id, annotation id) order, the labeled
    /// items' rows (in id order), and the usernames of the annotators (by user id): the
    /// builders below fed from slices, for tests (the server codes rows as they are read).
    #[cfg(test)]
    pub fn build(
        multi: bool,
        project_labels: &[String],
        rows: &[AnnotationRow],
        item_rows: &[ItemRow],
        usernames: &[(i64, String)],
    ) -> anyhow::Result<Dataset> {
        let mut builder = DatasetBuilder::new(multi, project_labels);
        for r in rows {
            builder.push(r);
        }
        let mut items = ItemCoder::default();
        for r in item_rows {
            items.push(r);
        }
        builder.finish(items, usernames)
    }

    /// The item's answers, in annotation order: (annotator code, label codes into
    /// `label_names`).
    pub fn answers(&self, ix: usize) -> impl ExactSizeIterator<Item = (usize, &[u32])> + Clone + '_ {
        Answers::of(self.answer_runs.get(self.item_answers[ix]))
    }

    /// The item's slice values: (code in `meta_attrs`, code in `meta_values`).
    pub fn meta(&self, ix: usize) -> &[(u32, u32)] {
        self.meta_runs.get(self.item_meta[ix])
    }

    /// The item's gold answer, if it has one.
    pub fn gold(&self, ix: usize) -> Option<&[String]> {
        self.golds.binary_search_by_key(&ix, |(i, _)| *i).ok().map(|g| self.golds[g].1.as_slice())
    }

    /// The items with a gold answer: (index into `items`, the answer), by index.
    pub fn gold_items(&self) -> impl Iterator<Item = (usize, &[String])> + '_ {
        self.golds.iter().map(|(ix, g)| (*ix, g.as_slice()))
    }

    /// The units of the items that `keep` keeps (it is given their index into `items`).
    pub fn units_of(&self, keep: impl Fn(usize) -> bool) -> Vec<usize> {
        (0..self.unit_item.len()).filter(|&u| keep(self.unit_item[u])).collect()
    }

    /// The item's slice value for the attribute, if it has one.
    pub fn slice_of(&self, ix: usize, attr: &str) -> Option<&str> {
        let a = self.meta_attrs.iter().position(|n| n == attr)? as u32;
        self.meta(ix).iter().find(|(k, _)| *k == a).map(|(_, v)| self.meta_values[*v as usize].as_str())
    }

    /// The code of a label name, if any annotation or the project uses it.
    pub fn label_code(&self, name: &str) -> Option<u32> {
        self.label_names.iter().position(|n| n == name).map(|c| c as u32)
    }

    /// Label codes as names.
    pub fn label_texts(&self, codes: &[u32]) -> Vec<String> {
        codes.iter().map(|&c| self.label_names[c as usize].clone()).collect()
    }
}

/// [`Dataset::build`] one annotation row at a time, so that a refresh codes the rows as they
/// are read instead of holding every row's text first (docs/bench.md, sessions 28 and 29). The
/// rows need neither the items nor the usernames, which [`finish`](DatasetBuilder::finish)
/// takes, so all of them can be read side by side.
pub struct DatasetBuilder<'a> {
    multi: bool,
    project_labels: &'a [String],
    label_names: Vec<String>,
    label_index: HashMap<String, u32>,
    user_index: HashMap<i64, usize>,
    /// Annotator code → user id, in order of first appearance.
    user_ids: Vec<i64>,
    seconds: Vec<Vec<f64>>,
    items: Vec<Item>,
    /// The current item's answers, as [`Answers`] reads them.
    current: Vec<u32>,
    item_answers: Vec<u32>,
    answer_runs: RunInterner<u32>,
}

impl<'a> DatasetBuilder<'a> {
    pub fn new(multi: bool, project_labels: &'a [String]) -> DatasetBuilder<'a> {
        let label_names: Vec<String> = project_labels.to_vec();
        let label_index = label_names.iter().enumerate().map(|(c, n)| (n.clone(), c as u32)).collect();
        DatasetBuilder {
            multi,
            project_labels,
            label_names,
            label_index,
            user_index: HashMap::new(),
            user_ids: Vec::new(),
            seconds: Vec::new(),
            items: Vec::new(),
            current: Vec::new(),
            item_answers: Vec::new(),
            answer_runs: RunInterner::default(),
        }
    }

    /// The next annotation row, in (item id, annotation id) order.
    pub fn push(&mut self, r: &AnnotationRow) {
        let code = *self.user_index.entry(r.user_id).or_insert_with(|| {
            self.user_ids.push(r.user_id);
            self.seconds.push(Vec::new());
            self.user_ids.len() - 1
        });
        self.seconds[code].push(r.time_ms as f64 / 1000.0);
        if self.items.last().map(|i| i.id) != Some(r.item_id) {
            self.close_item();
            self.items.push(Item { id: r.item_id, last_at: r.created_at });
            self.current.push(0);
        }
        let item = self.items.last_mut().expect("pushed above");
        item.last_at = item.last_at.max(r.created_at);
        let names: Vec<String> = serde_json::from_str(&r.labels).unwrap_or_default();
        self.current[0] += 1;
        self.current.extend([code as u32, names.len() as u32]);
        for name in &names {
            let label = intern(&mut self.label_index, &mut self.label_names, name);
            self.current.push(label);
        }
    }

    /// Interns the current item's answers, if there is a current item.
    fn close_item(&mut self) {
        if !self.current.is_empty() {
            self.item_answers.push(self.answer_runs.intern(&self.current));
            self.current.clear();
        }
    }

    /// The coded dataset, given the labeled items' rows ([`ItemCoder`]) and the annotators'
    /// usernames (by user id): its items' slice values and gold answers, its units and ratings.
    pub fn finish(mut self, mut item_rows: ItemCoder, usernames: &[(i64, String)]) -> anyhow::Result<Dataset> {
        self.close_item();
        let DatasetBuilder {
            multi, project_labels, label_names, user_ids, seconds, mut items, mut item_answers, answer_runs, ..
        } = self;
        items.shrink_to_fit();
        item_answers.shrink_to_fit();
        let times = seconds
            .into_iter()
            .map(|mut s| AnswerTimes { answers: s.len(), median_seconds: median(&mut s).ok() })
            .collect();
        let username_of: HashMap<i64, &str> = usernames.iter().map(|(id, n)| (*id, n.as_str())).collect();
        let users: Vec<(i64, String)> = user_ids
            .into_iter()
            .map(|id| (id, username_of.get(&id).map_or_else(|| format!("user {id}"), |n| n.to_string())))
            .collect();
        let (item_meta, golds) = item_rows.join(&items);
        let ItemCoder { meta_attrs, meta_values, meta_runs, .. } = item_rows;
        let mut d = Dataset {
            multi,
            label_names,
            meta_attrs,
            meta_values,
            items,
            item_answers,
            answer_runs: answer_runs.finish(),
            item_meta,
            meta_runs: meta_runs.finish(),
            golds,
            // Coded below from the answers, which are the dataset's own.
            ratings: Ratings::from_codes(Vec::new(), Vec::new(), LabelSet::new(Vec::new())?, &[])?,
            unit_item: Vec::new(),
            unit_label: Vec::new(),
            users,
            times,
        };
        d.ratings = units(&mut d, project_labels.len())?;
        Ok(d)
    }
}

/// Codes the dataset's units into `unit_item` and `unit_label` and returns their ratings.
/// Ratings number annotators in order of first usable answer and records in the order the
/// export's lines give them, as `mirrorset stats` does reading the export. The units are found
/// first, then the ratings read each unit's answers again ([`Ratings::from_grouped_codes`]), so
/// no list of every record is held.
fn units(d: &mut Dataset, project_labels: usize) -> Result<Ratings, RatingsError> {
    // Units are named when asked (item id, or item id / label), not each given a string.
    let (mut ids, mut suffix_of): (Vec<i64>, Vec<u32>) = (Vec::new(), Vec::new());
    let mut rater_of = vec![u32::MAX; d.users.len()];
    let mut raters: Vec<String> = Vec::new();
    let mut rater = |a: usize| {
        if rater_of[a] == u32::MAX {
            rater_of[a] = raters.len() as u32;
            raters.push(d.users[a].1.clone());
        }
    };
    let (mut unit_item, mut unit_label) = (Vec::new(), Vec::new());
    let labels = if d.multi {
        let mut universe: Vec<u32> = Vec::new();
        for ix in 0..d.items.len() {
            // The export's universe: the project's labels, then others in order of use.
            universe.clear();
            universe.extend(0..project_labels as u32);
            for (_, labels) in d.answers(ix) {
                for &code in labels {
                    if !universe.contains(&code) {
                        universe.push(code);
                    }
                }
            }
            if !universe.is_empty() {
                d.answers(ix).for_each(|(a, _)| rater(a));
            }
            for &code in &universe {
                ids.push(d.items[ix].id);
                suffix_of.push(code);
                unit_item.push(ix);
                unit_label.push(code as usize);
            }
        }
        LabelSet::new(vec![ABSENT.into(), PRESENT.into()])?
    } else {
        for ix in 0..d.items.len() {
            let mut any = false;
            for (a, labels) in d.answers(ix) {
                // Validation stores exactly one label per single-label annotation.
                if labels.len() == 1 {
                    rater(a);
                    any = true;
                }
            }
            if any {
                ids.push(d.items[ix].id);
                unit_item.push(ix);
            }
        }
        LabelSet::new(d.label_names.clone())?
    };
    let suffixes = if d.multi { d.label_names.clone() } else { Vec::new() };
    let keys = ItemKeys::Numbers { ids, suffix_of, suffixes };
    let ratings = Ratings::from_grouped_codes(keys, raters, labels, |u, out| {
        let ix = unit_item[u];
        for (a, labels) in d.answers(ix) {
            let rater = rater_of[a] as usize;
            if d.multi {
                // The label set above: absent = 0, present = 1.
                out.push((rater, labels.contains(&(unit_label[u] as u32)) as usize));
            } else if let [label] = labels {
                out.push((rater, *label as usize));
            }
        }
    })?;
    (d.unit_item, d.unit_label) = (unit_item, unit_label);
    Ok(ratings)
}

/// The labeled items' slice values and gold answers, coded as their rows are read (in id
/// order; side by side with the annotations, which [`DatasetBuilder::finish`] joins them to).
/// Attributes and values are interned in the rows' order.
#[derive(Default)]
pub struct ItemCoder {
    ids: Vec<i64>,
    /// Per row, its slice values as a run of `meta_runs`.
    row_meta: Vec<u32>,
    meta_runs: RunInterner<(u32, u32)>,
    /// The current row's slice values.
    values: Vec<(u32, u32)>,
    /// (index into `ids`, gold answer).
    golds: Vec<(usize, Vec<String>)>,
    attr_index: HashMap<String, u32>,
    value_index: HashMap<String, u32>,
    meta_attrs: Vec<String>,
    meta_values: Vec<String>,
}

impl ItemCoder {
    /// The next item row, in id order.
    pub fn push(&mut self, row: &ItemRow) {
        self.values.clear();
        if let Ok(object) = serde_json::from_str::<Map<String, Value>>(&row.meta) {
            for (k, v) in &object {
                if let Some(v) = slice_value(v) {
                    let attr = intern(&mut self.attr_index, &mut self.meta_attrs, k);
                    let value = intern(&mut self.value_index, &mut self.meta_values, &v);
                    self.values.push((attr, value));
                }
            }
        }
        self.row_meta.push(self.meta_runs.intern(&self.values));
        if let Some(gold) = row.gold.as_deref().and_then(|g| serde_json::from_str(g).ok()) {
            self.golds.push((self.ids.len(), gold));
        }
        self.ids.push(row.id);
    }

    /// The slice values (as runs of `meta_runs`) and gold answers of `items` (in id order), by
    /// their index: an item whose row was not read (hidden since) has neither. The gold
    /// answers move out.
    fn join(&mut self, items: &[Item]) -> (Vec<u32>, Vec<(usize, Vec<String>)>) {
        let no_values = self.meta_runs.intern(&[]);
        let mut meta = Vec::with_capacity(items.len());
        let mut golds = Vec::new();
        let mut row = 0;
        for (ix, item) in items.iter().enumerate() {
            while row < self.ids.len() && self.ids[row] < item.id {
                row += 1;
            }
            if self.ids.get(row) == Some(&item.id) {
                meta.push(self.row_meta[row]);
                if let Ok(g) = self.golds.binary_search_by_key(&row, |(r, _)| *r) {
                    golds.push((ix, std::mem::take(&mut self.golds[g].1)));
                }
            } else {
                meta.push(no_values);
            }
        }
        (meta, golds)
    }
}

/// A meta value as slice text: strings as they are, numbers and booleans as JSON writes them;
/// objects, arrays and null are not slice values.
pub fn slice_value(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub fn ann(item_id: i64, user_id: i64, labels: &[&str], created_at: i64) -> AnnotationRow {
        AnnotationRow {
            item_id,
            user_id,
            labels: serde_json::to_string(labels).unwrap(),
            time_ms: 1000 * user_id,
            created_at,
        }
    }

    /// Usernames u1..u9 for user ids 1..9.
    pub fn users() -> Vec<(i64, String)> {
        (1..10).map(|i| (i, format!("u{i}"))).collect()
    }

    pub fn item(id: i64, meta: &str) -> ItemRow {
        ItemRow { id, meta: meta.into(), gold: None }
    }

    #[test]
    fn single_label_units_are_items_and_annotators_code_in_order_of_appearance() {
        let rows = [ann(5, 2, &["b"], 10), ann(5, 1, &["a"], 20), ann(7, 1, &["a"], 5)];
        let d = Dataset::build(false, &["a".into(), "b".into()], &rows, &[item(5, "{}"), item(7, "{}")], &users()).unwrap();
        assert_eq!(d.ratings.item_names().collect::<Vec<_>>(), ["5", "7"]);
        assert_eq!(d.ratings.annotators(), ["u2", "u1"]);
        assert_eq!(d.users, vec![(2, "u2".to_string()), (1, "u1".to_string())]);
        assert_eq!(d.items, [Item { id: 5, last_at: 20 }, Item { id: 7, last_at: 5 }]);
        assert_eq!(d.answers(0).collect::<Vec<_>>(), [(0, &[1][..]), (1, &[0][..])]);
        assert_eq!(d.answers(1).collect::<Vec<_>>(), [(1, &[0][..])]);
        assert_eq!(d.unit_item, vec![0, 1]);
    }

    #[test]
    fn rows_coded_before_their_items_are_read_get_them_in_item_order() {
        let rows = [ann(4, 42, &["a"], 1), ann(6, 1, &["b"], 2), ann(9, 1, &["a"], 3)];
        let labels = ["a".to_string(), "b".to_string()];
        let mut b = DatasetBuilder::new(false, &labels);
        for r in &rows {
            b.push(r);
        }
        // Item 9 has no row (it was hidden since); item 5 has no annotation (made since).
        let mut items = ItemCoder::default();
        for row in [item(4, r#"{"region": "us", "x": [1]}"#), item(5, r#"{"z": 1}"#), item(6, r#"{"n": 3, "region": "eu"}"#)] {
            items.push(&ItemRow { gold: Some(format!(r#"["g{}"]"#, row.id)), ..row });
        }
        let d = b.finish(items, &users()).unwrap();
        assert_eq!(d.users, vec![(42, "user 42".to_string()), (1, "u1".to_string())]);
        // Interned in the rows' order; item 5's attribute is coded but no item has it.
        assert_eq!(d.meta_attrs, ["region", "z", "n"]);
        assert_eq!(d.meta_values, ["us", "1", "3", "eu"]);
        assert_eq!(d.meta(0), [(0, 0)]);
        assert_eq!(d.meta(1), [(2, 2), (0, 3)]);
        assert_eq!(d.meta(2), []);
        assert_eq!((d.gold(0), d.gold(1), d.gold(2)), (Some(&["g4".to_string()][..]), Some(&["g6".to_string()][..]), None));
        assert_eq!(d.slice_of(1, "region"), Some("eu"));
        assert_eq!(d.answers(1).collect::<Vec<_>>(), [(1, &[1][..])]);
    }

    #[test]
    fn multi_label_units_are_item_label_pairs_with_extra_labels_last() {
        let rows = [ann(3, 1, &["a", "old"], 1), ann(3, 2, &[], 1)];
        let d = Dataset::build(true, &["a".into(), "b".into()], &rows, &[item(3, "{}")], &users()).unwrap();
        assert_eq!(d.ratings.item_names().collect::<Vec<_>>(), ["3/a", "3/b", "3/old"]);
        assert_eq!(d.unit_label, vec![0, 1, 2]);
        // u1: present, absent, present; u2: absent everywhere.
        assert_eq!(d.ratings.item_labels(0), [1, 0]);
        assert_eq!(d.ratings.item_labels(2), [1, 0]);
    }
}
