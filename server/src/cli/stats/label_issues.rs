//! `mirrorset stats label-issues`: `{"item", "label", "probs": {label: p}}` per line.

use super::input::{parse_jsonl, read_source, scalar_text, split_list, Line, Source};
use crate::stats::label_errors::confident_learning;
use crate::stats::LabelSet;
use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// How far a row of probabilities may be from summing to 1 (float32 softmax outputs drift).
const SUM_TOLERANCE: f64 = 1e-4;

#[derive(Deserialize)]
struct PredictionLine {
    item: Value,
    label: Value,
    probs: HashMap<String, Value>,
}

pub fn label_issues(file: &Path, labels: Option<&str>) -> Result<Value> {
    let source = read_source(file)?;
    label_issues_from_source(&source, labels)
}

pub fn label_issues_from_source(source: &Source, labels: Option<&str>) -> Result<Value> {
    let lines: Vec<Line<PredictionLine>> = parse_jsonl(source)?;
    let set = match labels {
        Some(list) => LabelSet::new(split_list(list)).map_err(|e| anyhow!("--labels: {e}"))?,
        None => LabelSet::discovered(lines[0].value.probs.keys().cloned()),
    };
    let k = set.len();
    if k < 2 {
        bail!("{}:{}: probs must name at least two labels", source.name, lines[0].number);
    }
    let mut items = Vec::with_capacity(lines.len());
    let mut given = Vec::with_capacity(lines.len());
    let mut probs = Vec::with_capacity(lines.len() * k);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for line in &lines {
        let at = format!("{}:{}", source.name, line.number);
        let v = &line.value;
        let item = scalar_text(&v.item, "item").map_err(|e| anyhow!("{at}: {e}"))?;
        if let Some(first) = seen.insert(item.clone(), line.number) {
            bail!("{at}: item {item:?} already appeared on line {first}");
        }
        let label = scalar_text(&v.label, "label").map_err(|e| anyhow!("{at}: {e}"))?;
        let code = set.index_of(&label).ok_or_else(|| anyhow!("{at}: unknown label {label:?} (not among the probability labels {:?})", set.names()))?;
        let mut row = vec![f64::NAN; k];
        for (name, p) in &v.probs {
            let c = set.index_of(name).ok_or_else(|| anyhow!("{at}: unknown label {name:?} in probs (expected {:?})", set.names()))?;
            let p = p.as_f64().ok_or_else(|| anyhow!("{at}: probs[{name:?}] must be a number"))?;
            if !(0.0..=1.0).contains(&p) {
                bail!("{at}: probs[{name:?}] = {p} is not a probability");
            }
            row[c] = p;
        }
        if let Some(missing) = (0..k).find(|&c| row[c].is_nan()) {
            bail!("{at}: probs has no entry for label {:?}", set.name(missing));
        }
        let sum: f64 = row.iter().sum();
        if (sum - 1.0).abs() > SUM_TOLERANCE {
            bail!("{at}: probabilities sum to {}, not 1", (sum * 1e6).round() / 1e6);
        }
        items.push(item);
        given.push(code);
        probs.extend(row);
    }
    let cl = confident_learning(&given, &probs, k).map_err(|e| anyhow!("{}: {e}", source.name))?;
    let name = |c: usize| set.name(c).to_string();
    // Noise matrix and joint keyed by the true label first, so each inner object reads
    // "items whose true label is t were given ...".
    let noise: Map<String, Value> = (0..k)
        .map(|t| (name(t), Value::Object((0..k).map(|g| (name(g), json!(cl.noise_matrix[g][t]))).collect())))
        .collect();
    let joint: Map<String, Value> = (0..k)
        .map(|t| (name(t), Value::Object((0..k).map(|g| (name(g), json!(cl.confident_joint[g][t]))).collect())))
        .collect();
    let flagged: Vec<Value> = cl
        .flagged
        .iter()
        .map(|&i| json!({"item": items[i], "label": name(given[i]), "self_confidence": cl.self_confidence[i]}))
        .collect();
    Ok(json!({
        "n_items": items.len(),
        "labels": set.names(),
        "flagged": cl.flagged.iter().map(|&i| items[i].clone()).collect::<Vec<_>>(),
        "flagged_details": flagged,
        "noise_matrix": noise,
        "confident_joint": joint,
        "thresholds": Value::Object((0..k).map(|c| (name(c), json!(cl.thresholds[c]))).collect()),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> Result<Value> {
        label_issues_from_source(&Source { name: "p.jsonl".into(), text: text.into() }, None)
    }

    #[test]
    fn bad_prediction_files_name_the_line() {
        let ok = r#"{"item":"a","label":"x","probs":{"x":0.9,"y":0.1}}"#;
        let e = run(&format!("{ok}\n{}", r#"{"item":"b","label":"x","probs":{"x":0.5,"y":0.2}}"#)).unwrap_err().to_string();
        assert_eq!(e, "p.jsonl:2: probabilities sum to 0.7, not 1");
        let e = run(&format!("{ok}\n{}", r#"{"item":"b","label":"z","probs":{"x":0.5,"y":0.5}}"#)).unwrap_err().to_string();
        assert!(e.starts_with("p.jsonl:2: unknown label \"z\""), "{e}");
        let e = run(&format!("{ok}\n{}", r#"{"item":"b","label":"x","probs":{"x":1.0}}"#)).unwrap_err().to_string();
        assert_eq!(e, "p.jsonl:2: probs has no entry for label \"y\"");
        let e = run(&format!("{ok}\n{ok}")).unwrap_err().to_string();
        assert_eq!(e, "p.jsonl:2: item \"a\" already appeared on line 1");
    }
}
