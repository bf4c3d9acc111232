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

/// One labeled item.
#[derive(Debug, Clone)]
pub struct Item {
    pub id: i64,
    pub external_id: Option<String>,
    pub meta: Map<String, Value>,
    pub gold: Option<Vec<String>>,
    /// When its newest annotation was first made (ms): its place on the timeline.
    pub last_at: i64,
    /// (annotator code, labels), in annotation order.
    pub answers: Vec<(usize, Vec<String>)>,
}

#[derive(Debug, Clone)]
pub struct Dataset {
    pub multi: bool,
    /// The project's labels, then any others found in annotations.
    pub label_names: Vec<String>,
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

impl Dataset {
    /// Builds the dataset from annotation rows in (item id, annotation id) order and the
    /// labeled items' rows.
    pub fn build(multi: bool, project_labels: &[String], rows: &[AnnotationRow], item_rows: &[ItemRow]) -> anyhow::Result<Dataset> {
        let by_id: HashMap<i64, &ItemRow> = item_rows.iter().map(|r| (r.id, r)).collect();
        let mut label_names: Vec<String> = project_labels.to_vec();
        let mut user_index: HashMap<i64, usize> = HashMap::new();
        let mut users = Vec::new();
        let mut seconds: Vec<Vec<f64>> = Vec::new();
        let mut items: Vec<Item> = Vec::new();
        for r in rows {
            let code = *user_index.entry(r.user_id).or_insert_with(|| {
                users.push((r.user_id, r.username.clone()));
                seconds.push(Vec::new());
                users.len() - 1
            });
            seconds[code].push(r.time_ms as f64 / 1000.0);
            let labels: Vec<String> = serde_json::from_str(&r.labels).unwrap_or_default();
            for l in &labels {
                if !label_names.contains(l) {
                    label_names.push(l.clone());
                }
            }
            if items.last().map(|i| i.id) != Some(r.item_id) {
                let row = by_id.get(&r.item_id);
                items.push(Item {
                    id: r.item_id,
                    external_id: row.and_then(|i| i.external_id.clone()),
                    meta: row.and_then(|i| serde_json::from_str(&i.meta).ok()).unwrap_or_default(),
                    gold: row.and_then(|i| i.gold.as_deref()).and_then(|g| serde_json::from_str(g).ok()),
                    last_at: r.created_at,
                    answers: Vec::new(),
                });
            }
            let item = items.last_mut().expect("pushed above");
            item.last_at = item.last_at.max(r.created_at);
            item.answers.push((code, labels));
        }

        let names: Vec<String> = users.iter().map(|(_, n)| n.clone()).collect();
        let (mut unit_item, mut unit_label) = (Vec::new(), Vec::new());
        let ratings = if multi {
            let mut b = RatingsBuilder::new(Some(LabelSet::new(vec![ABSENT.into(), PRESENT.into()])?));
            for (ix, item) in items.iter().enumerate() {
                // The export's universe: the project's labels, then others in order of use.
                let mut universe: Vec<usize> = (0..project_labels.len()).collect();
                for (_, labels) in &item.answers {
                    for l in labels {
                        let code = label_names.iter().position(|n| n == l).expect("collected above");
                        if !universe.contains(&code) {
                            universe.push(code);
                        }
                    }
                }
                for code in universe {
                    let key = format!("{}/{}", item.id, label_names[code]);
                    unit_item.push(ix);
                    unit_label.push(code);
                    for (a, labels) in &item.answers {
                        let value = if labels.contains(&label_names[code]) { PRESENT } else { ABSENT };
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
                        b.push(&key, &names[*a], label)?;
                        any = true;
                    }
                }
                if any {
                    unit_item.push(ix);
                }
            }
            b.build()?
        };
        Ok(Dataset { multi, label_names, items, ratings, unit_item, unit_label, users, seconds })
    }

    /// The units of the given items (by index into `items`).
    pub fn units_of(&self, keep: impl Fn(&Item) -> bool) -> Vec<usize> {
        (0..self.unit_item.len()).filter(|&u| keep(&self.items[self.unit_item[u]])).collect()
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
            username: format!("u{user_id}"),
            labels: serde_json::to_string(labels).unwrap(),
            time_ms: 1000 * user_id,
            created_at,
        }
    }

    pub fn item(id: i64, meta: &str) -> ItemRow {
        ItemRow { id, external_id: Some(format!("x-{id}")), meta: meta.into(), gold: None }
    }

    #[test]
    fn single_label_units_are_items_and_annotators_code_in_order_of_appearance() {
        let rows = [ann(5, 2, &["b"], 10), ann(5, 1, &["a"], 20), ann(7, 1, &["a"], 5)];
        let d = Dataset::build(false, &["a".into(), "b".into()], &rows, &[item(5, "{}"), item(7, "{}")]).unwrap();
        assert_eq!(d.ratings.items(), ["5", "7"]);
        assert_eq!(d.ratings.annotators(), ["u2", "u1"]);
        assert_eq!(d.users, vec![(2, "u2".to_string()), (1, "u1".to_string())]);
        assert_eq!(d.items[0].last_at, 20);
        assert_eq!(d.unit_item, vec![0, 1]);
    }

    #[test]
    fn multi_label_units_are_item_label_pairs_with_extra_labels_last() {
        let rows = [ann(3, 1, &["a", "old"], 1), ann(3, 2, &[], 1)];
        let d = Dataset::build(true, &["a".into(), "b".into()], &rows, &[item(3, "{}")]).unwrap();
        assert_eq!(d.ratings.items(), ["3/a", "3/b", "3/old"]);
        assert_eq!(d.unit_label, vec![0, 1, 2]);
        // u1: present, absent, present; u2: absent everywhere.
        assert_eq!(d.ratings.item_labels(0), [1, 0]);
        assert_eq!(d.ratings.item_labels(2), [1, 0]);
    }
}
