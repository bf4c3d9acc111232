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
use std::collections::HashMap;

use serde_json::{Map, Value};

use crate::export::{ABSENT, PRESENT};
use crate::stats::{LabelSet, Ratings, RatingsBuilder};
use crate::store::agreement::{AnnotationRow, ItemRow};

/// One labeled item, coded compactly: a refresh holds every labeled item of the project at
/// once (100,000 and more), so nothing here is a string or JSON per annotation.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: i64,
    pub external_id: Option<String>,
    /// Slice attributes: (code in `Dataset::meta_attrs`, code in `Dataset::meta_values`), for
    /// the meta values that are slice values ([`slice_value`]).
    pub meta: Vec<(u32, u32)>,
    pub gold: Option<Vec<String>>,
    /// When its newest annotation was first made (ms): its place on the timeline.
    pub last_at: i64,
    /// (annotator code, label codes into `Dataset::label_names`), in annotation order.
    pub answers: Vec<(usize, Vec<u32>)>,
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub multi: bool,
    /// The project's labels, then any others found in annotations.
    pub label_names: Vec<String>,
    /// Meta attribute names and slice values, interned (each once for the whole project).
    pub meta_attrs: Vec<String>,
    pub meta_values: Vec<String>,
    pub items: Vec<Item>,
    /// Units: items (single-label) or (item, label) pairs (multi-label).
    pub ratings: Ratings,
    /// Unit → index into `items`.
    pub unit_item: Vec<usize>,
    /// Multi-label: unit → index into `label_names`.
    pub unit_label: Vec<usize>,
    /// Annotator code → (user id, username); codes as in `ratings`.
    pub users: Vec<(i64, String)>,
    /// Seconds spent per annotation, per annotator code.
    pub seconds: Vec<Vec<f64>>,
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
    /// items' rows, and the usernames of the annotators (by user id).
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
        builder.finish(item_rows, usernames)
    }

    /// The units of the given items (by index into `items`).
    pub fn units_of(&self, keep: impl Fn(&Item) -> bool) -> Vec<usize> {
        (0..self.unit_item.len()).filter(|&u| keep(&self.items[self.unit_item[u]])).collect()
    }

    /// The item's slice value for the attribute, if it has one.
    pub fn slice_of(&self, item: &Item, attr: &str) -> Option<&str> {
        let a = self.meta_attrs.iter().position(|n| n == attr)? as u32;
        item.meta.iter().find(|(k, _)| *k == a).map(|(_, v)| self.meta_values[*v as usize].as_str())
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
/// are read instead of holding every row's text first (a refresh of 73,000 annotations: the
/// server's heap peak 68.6 MiB with the rows collected, 51.8 with them coded as read, by
/// heaptrack; docs/bench.md, session 28). The rows need neither the items nor the usernames, which
/// [`finish`](DatasetBuilder::finish) takes, so all of them can be read side by side.
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
        let names: Vec<String> = serde_json::from_str(&r.labels).unwrap_or_default();
        let labels: Vec<u32> = names.iter().map(|l| intern(&mut self.label_index, &mut self.label_names, l)).collect();
        if self.items.last().map(|i| i.id) != Some(r.item_id) {
            self.items.push(Item {
                id: r.item_id,
                // From the item's row, in `finish`.
                external_id: None,
                meta: Vec::new(),
                gold: None,
                last_at: r.created_at,
                // Most items have one annotation (overlap 1): room for one, not Vec's first four.
                answers: Vec::with_capacity(1),
            });
        }
        let item = self.items.last_mut().expect("pushed above");
        item.last_at = item.last_at.max(r.created_at);
        item.answers.push((code, labels));
    }

    /// The coded dataset, given the labeled items' rows and the annotators' usernames (by user
    /// id): its items' external ids, slice values and gold answers, its units and ratings.
    pub fn finish(self, item_rows: &[ItemRow], usernames: &[(i64, String)]) -> anyhow::Result<Dataset> {
        let DatasetBuilder { multi, project_labels, label_names, user_ids, seconds, mut items, .. } = self;
        let username_of: HashMap<i64, &str> = usernames.iter().map(|(id, n)| (*id, n.as_str())).collect();
        let users: Vec<(i64, String)> = user_ids
            .into_iter()
            .map(|id| (id, username_of.get(&id).map_or_else(|| format!("user {id}"), |n| n.to_string())))
            .collect();
        // Attributes and values are coded in item order, as the items come.
        let by_id: HashMap<i64, &ItemRow> = item_rows.iter().map(|r| (r.id, r)).collect();
        let (mut attr_index, mut value_index) = (HashMap::new(), HashMap::new());
        let (mut meta_attrs, mut meta_values) = (Vec::new(), Vec::new());
        for item in &mut items {
            let Some(row) = by_id.get(&item.id) else { continue };
            if let Ok(object) = serde_json::from_str::<Map<String, Value>>(&row.meta) {
                for (k, v) in &object {
                    if let Some(v) = slice_value(v) {
                        item.meta.push((intern(&mut attr_index, &mut meta_attrs, k), intern(&mut value_index, &mut meta_values, &v)));
                    }
                }
            }
            item.external_id = row.external_id.clone();
            item.gold = row.gold.as_deref().and_then(|g| serde_json::from_str(g).ok());
        }
        drop(by_id);
        let names: Vec<String> = users.iter().map(|(_, n)| n.clone()).collect();
        let (mut unit_item, mut unit_label) = (Vec::new(), Vec::new());
        let ratings = if multi {
            let mut b = RatingsBuilder::new(Some(LabelSet::new(vec![ABSENT.into(), PRESENT.into()])?));
            for (ix, item) in items.iter().enumerate() {
                // The export's universe: the project's labels, then others in order of use.
                let mut universe: Vec<u32> = (0..project_labels.len() as u32).collect();
                for (_, labels) in &item.answers {
                    for &code in labels {
                        if !universe.contains(&code) {
                            universe.push(code);
                        }
                    }
                }
                for code in universe {
                    let key = format!("{}/{}", item.id, label_names[code as usize]);
                    unit_item.push(ix);
                    unit_label.push(code as usize);
                    for (a, labels) in &item.answers {
                        let value = if labels.contains(&code) { PRESENT } else { ABSENT };
                        b.push(&key, &names[*a], value)?;
                    }
                }
            }
            b.build()?
        } else {
            let mut b = RatingsBuilder::new(Some(LabelSet::new(label_names.clone())?));
            for (ix, item) in items.iter().enumerate() {
                let key = item.id.to_string();
                let mut any = false;
                for (a, labels) in &item.answers {
                    // Validation stores exactly one label per single-label annotation.
                    if let [label] = labels.as_slice() {
                        b.push(&key, &names[*a], &label_names[*label as usize])?;
                        any = true;
                    }
                }
                if any {
                    unit_item.push(ix);
                }
            }
            b.build()?
        };
        Ok(Dataset { multi, label_names, meta_attrs, meta_values, items, ratings, unit_item, unit_label, users, seconds })
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
        ItemRow { id, external_id: Some(format!("x-{id}")), meta: meta.into(), gold: None }
    }

    #[test]
    fn single_label_units_are_items_and_annotators_code_in_order_of_appearance() {
        let rows = [ann(5, 2, &["b"], 10), ann(5, 1, &["a"], 20), ann(7, 1, &["a"], 5)];
        let d = Dataset::build(false, &["a".into(), "b".into()], &rows, &[item(5, "{}"), item(7, "{}")], &users()).unwrap();
        assert_eq!(d.ratings.items(), ["5", "7"]);
        assert_eq!(d.ratings.annotators(), ["u2", "u1"]);
        assert_eq!(d.users, vec![(2, "u2".to_string()), (1, "u1".to_string())]);
        assert_eq!(d.items[0].last_at, 20);
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
        // Item 9 has no row (it was hidden since); item 6's meta comes first in id order.
        let items = [item(6, r#"{"n": 3, "region": "eu"}"#), item(4, r#"{"region": "us", "x": [1]}"#)];
        let d = b.finish(&items, &users()).unwrap();
        assert_eq!(d.users, vec![(42, "user 42".to_string()), (1, "u1".to_string())]);
        assert_eq!(d.meta_attrs, ["region", "n"]);
        assert_eq!(d.meta_values, ["us", "3", "eu"]);
        assert_eq!(d.items[0].meta, vec![(0, 0)]);
        assert_eq!(d.items[1].meta, vec![(1, 1), (0, 2)]);
        assert_eq!(d.items[1].external_id.as_deref(), Some("x-6"));
        assert_eq!((d.items[2].external_id.clone(), d.items[2].meta.len()), (None, 0));
    }

    #[test]
    fn multi_label_units_are_item_label_pairs_with_extra_labels_last() {
        let rows = [ann(3, 1, &["a", "old"], 1), ann(3, 2, &[], 1)];
        let d = Dataset::build(true, &["a".into(), "b".into()], &rows, &[item(3, "{}")], &users()).unwrap();
        assert_eq!(d.ratings.items(), ["3/a", "3/b", "3/old"]);
        assert_eq!(d.unit_label, vec![0, 1, 2]);
        // u1: present, absent, present; u2: absent everywhere.
        assert_eq!(d.ratings.item_labels(0), [1, 0]);
        assert_eq!(d.ratings.item_labels(2), [1, 0]);
    }
}
