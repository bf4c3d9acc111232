//! What changed between two releases: items added and removed (by the project item they were
//! frozen from), final labels changed (with both provenances), and the change in distribution
//! per attribute (each attribute asked for, plus `label` and `split`).
use std::collections::{BTreeMap, BTreeSet, HashMap};

use app::api_types::{DistributionChange, LabelChange};
use serde_json::Value;

use super::ReleaseItem;

pub struct Diff {
    pub added: Vec<i64>,
    pub removed: Vec<i64>,
    pub label_changes: Vec<LabelChange>,
    pub distribution: Vec<DistributionChange>,
}

/// An attribute's value as text: strings as they are, other JSON as JSON, missing as "(none)".
pub fn value_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => "(none)".into(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn values_of(item: &ReleaseItem, attribute: &str) -> Vec<String> {
    match attribute {
        "label" => item.labels.clone(),
        "split" => vec![item.split.clone()],
        a => vec![value_text(item.meta_map().get(a))],
    }
}

pub fn diff(from: &[ReleaseItem], to: &[ReleaseItem], attributes: &[String]) -> Diff {
    let a: HashMap<i64, &ReleaseItem> = from.iter().map(|i| (i.item_id, i)).collect();
    let b: HashMap<i64, &ReleaseItem> = to.iter().map(|i| (i.item_id, i)).collect();
    let mut added: Vec<i64> = b.keys().filter(|id| !a.contains_key(id)).copied().collect();
    let mut removed: Vec<i64> = a.keys().filter(|id| !b.contains_key(id)).copied().collect();
    added.sort_unstable();
    removed.sort_unstable();
    let mut label_changes: Vec<LabelChange> = a
        .iter()
        .filter_map(|(id, x)| {
            let y = b.get(id)?;
            (x.labels != y.labels).then(|| LabelChange {
                item_id: *id,
                external_id: y.external_id.clone(),
                from_labels: x.labels.clone(),
                to_labels: y.labels.clone(),
                from_provenance: x.provenance_value(),
                to_provenance: y.provenance_value(),
            })
        })
        .collect();
    label_changes.sort_by_key(|c| c.item_id);

    let mut attrs: Vec<String> = attributes.to_vec();
    for extra in ["label", "split"] {
        if !attrs.iter().any(|a| a == extra) {
            attrs.push(extra.into());
        }
    }
    let mut distribution = Vec::new();
    for attr in &attrs {
        let count = |items: &[ReleaseItem]| {
            let mut m: BTreeMap<String, i64> = BTreeMap::new();
            for i in items {
                for v in values_of(i, attr) {
                    *m.entry(v).or_default() += 1;
                }
            }
            m
        };
        let (ca, cb) = (count(from), count(to));
        let (ta, tb) = (ca.values().sum::<i64>().max(1) as f64, cb.values().sum::<i64>().max(1) as f64);
        let values: BTreeSet<&String> = ca.keys().chain(cb.keys()).collect();
        for v in values {
            let (x, y) = (ca.get(v).copied().unwrap_or(0), cb.get(v).copied().unwrap_or(0));
            distribution.push(DistributionChange {
                attribute: attr.clone(),
                value: v.clone(),
                from_count: x,
                to_count: y,
                from_share: x as f64 / ta,
                to_share: y as f64 / tb,
            });
        }
    }
    Diff { added, removed, label_changes, distribution }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn item(id: i64, label: &str, region: &str) -> ReleaseItem {
        let mut meta = serde_json::Map::new();
        meta.insert("region".into(), json!(region));
        ReleaseItem {
            item_id: id,
            external_id: None,
            kind: "text".into(),
            text: Some(format!("t{id}")),
            image_sha256: None,
            meta: serde_json::Value::Object(meta).to_string(),
            weight: 1.0,
            source: None,
            license: None,
            labels: vec![label.into()],
            provenance: json!({"source": "gold"}).to_string(),
            n_labels: 0,
            split: "dev".into(),
        }
    }

    #[test]
    fn reports_exactly_the_changes() {
        let a = vec![item(1, "pos", "eu"), item(2, "neg", "eu"), item(3, "pos", "us")];
        let b = vec![item(1, "pos", "eu"), item(2, "pos", "eu"), item(4, "neg", "us")];
        let d = diff(&a, &b, &["region".into()]);
        assert_eq!(d.added, vec![4]);
        assert_eq!(d.removed, vec![3]);
        assert_eq!(d.label_changes.len(), 1);
        assert_eq!((d.label_changes[0].item_id, d.label_changes[0].to_labels.clone()), (2, vec!["pos".to_string()]));
        let eu = d.distribution.iter().find(|c| c.attribute == "region" && c.value == "eu").unwrap();
        assert_eq!((eu.from_count, eu.to_count), (2, 2));
        let pos = d.distribution.iter().find(|c| c.attribute == "label" && c.value == "pos").unwrap();
        assert_eq!((pos.from_count, pos.to_count), (2, 2));
    }
}
