//! `mirrorset stats evaluate`: predictions against gold labels, per slice, and two models
//! compared. Files have one `{"item", "label", "weight"?, "meta"?: {attr: value}}` per line;
//! weight and meta are read from the gold file.

use super::input::{parse_jsonl, read_source, scalar_text, split_list, Line, Source};
use crate::stats::bootstrap::BootstrapOptions;
use crate::stats::evaluation::{evaluate as evaluate_items, evaluate_by_slice, Evaluation};
use crate::stats::significance::{mcnemar_exact, paired_bootstrap_accuracy_difference};
use crate::stats::LabelSet;
use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::path::Path;

/// The slice value of items whose meta lacks the attribute (or has it null).
const MISSING: &str = "(missing)";

#[derive(Deserialize)]
struct LabelLine {
    item: Value,
    label: Value,
    #[serde(default)]
    weight: Option<Value>,
    #[serde(default)]
    meta: Option<Map<String, Value>>,
}

struct Example {
    item: String,
    label: String,
    line: usize,
    weight: Option<f64>,
    meta: Map<String, Value>,
}

fn read_examples(source: &Source) -> Result<Vec<Example>> {
    let lines: Vec<Line<LabelLine>> = parse_jsonl(source)?;
    let mut first: HashMap<String, usize> = HashMap::new();
    lines
        .into_iter()
        .map(|line| {
            let at = format!("{}:{}", source.name, line.number);
            let v = line.value;
            let item = scalar_text(&v.item, "item").map_err(|e| anyhow!("{at}: {e}"))?;
            if let Some(f) = first.insert(item.clone(), line.number) {
                bail!("{at}: item {item:?} already appeared on line {f}");
            }
            let label = scalar_text(&v.label, "label").map_err(|e| anyhow!("{at}: {e}"))?;
            let weight = match v.weight {
                None | Some(Value::Null) => None,
                Some(w) => match w.as_f64() {
                    Some(x) if x.is_finite() && x >= 0.0 => Some(x),
                    _ => bail!("{at}: weight must be a number ≥ 0"),
                },
            };
            Ok(Example { item, label, line: line.number, weight, meta: v.meta.unwrap_or_default() })
        })
        .collect()
}

pub struct EvaluateArgs<'a> {
    pub gold: &'a Path,
    pub pred: &'a Path,
    pub pred_b: Option<&'a Path>,
    pub slices: Option<&'a str>,
    pub labels: Option<&'a str>,
    pub bootstrap: usize,
    pub seed: u64,
    pub confidence: f64,
}

pub fn evaluate(args: EvaluateArgs) -> Result<Value> {
    let mut paths = vec![args.gold, args.pred];
    paths.extend(args.pred_b);
    super::input::at_most_one_stdin(&paths)?;
    let gold_source = read_source(args.gold)?;
    let gold = read_examples(&gold_source)?;
    let pred_source = read_source(args.pred)?;
    let pred = read_examples(&pred_source)?;
    let pred_b = match args.pred_b {
        Some(p) => {
            let s = read_source(p)?;
            let e = read_examples(&s)?;
            Some((s, e))
        }
        None => None,
    };

    // Label codes: the given order, or every label seen in gold and predictions.
    let set = match args.labels {
        Some(list) => LabelSet::new(split_list(list)).map_err(|e| anyhow!("--labels: {e}"))?,
        None => {
            let mut all: Vec<String> = gold.iter().chain(&pred).map(|e| e.label.clone()).collect();
            if let Some((_, b)) = &pred_b {
                all.extend(b.iter().map(|e| e.label.clone()));
            }
            LabelSet::discovered(all)
        }
    };
    let code = |source: &Source, e: &Example| {
        set.index_of(&e.label)
            .ok_or_else(|| anyhow!("{}:{}: unknown label {:?} (not in --labels)", source.name, e.line, e.label))
    };
    let gold_codes = gold.iter().map(|e| code(&gold_source, e)).collect::<Result<Vec<_>>>()?;
    let align = |source: &Source, preds: &[Example]| -> Result<(Vec<usize>, usize)> {
        let by_item: HashMap<&str, &Example> = preds.iter().map(|e| (e.item.as_str(), e)).collect();
        let codes = gold
            .iter()
            .map(|g| {
                let p = by_item.get(g.item.as_str()).ok_or_else(|| {
                    anyhow!("{}: no prediction for item {:?} (gold line {})", source.name, g.item, g.line)
                })?;
                code(source, p)
            })
            .collect::<Result<Vec<_>>>()?;
        let gold_items: std::collections::HashSet<&str> = gold.iter().map(|g| g.item.as_str()).collect();
        let unmatched = preds.iter().filter(|p| !gold_items.contains(p.item.as_str())).count();
        Ok((codes, unmatched))
    };
    let (pred_codes, unmatched) = align(&pred_source, &pred)?;
    let weights: Option<Vec<f64>> =
        gold.iter().any(|g| g.weight.is_some()).then(|| gold.iter().map(|g| g.weight.unwrap_or(1.0)).collect());
    let l = set.len();
    // The only refusal left at this point is about the weights, which the gold file holds.
    let in_gold = |e: crate::stats::Undefined| anyhow!("{}: {e}", gold_source.name);
    let evaluation = evaluate_items(&gold_codes, &pred_codes, weights.as_deref(), l).map_err(in_gold)?;
    let mut out = match metrics_json(&evaluation, &set) {
        Value::Object(m) => m,
        _ => unreachable!(),
    };
    out.insert("n_unmatched_predictions".into(), json!(unmatched));
    out.insert("weighted".into(), json!(weights.is_some()));

    if let Some(attrs) = args.slices {
        let mut slices = Map::new();
        for attr in split_list(attrs) {
            let mut values: BTreeMap<String, usize> = BTreeMap::new();
            let item_values: Vec<String> = gold
                .iter()
                .map(|g| match g.meta.get(&attr) {
                    None | Some(Value::Null) => MISSING.to_string(),
                    Some(v) => scalar_text(v, &attr).unwrap_or_else(|_| v.to_string()),
                })
                .collect();
            for v in &item_values {
                let next = values.len();
                values.entry(v.clone()).or_insert(next);
            }
            let slice_codes: Vec<Option<usize>> = item_values.iter().map(|v| Some(values[v])).collect();
            let per = evaluate_by_slice(&gold_codes, &pred_codes, weights.as_deref(), l, &slice_codes, values.len())
                .map_err(in_gold)?;
            let by_value: Map<String, Value> =
                values.iter().map(|(v, &c)| (v.clone(), metrics_json(&per[c], &set))).collect();
            slices.insert(attr, Value::Object(by_value));
        }
        out.insert("slices".into(), Value::Object(slices));
    }

    if let Some((b_source, b)) = &pred_b {
        let (b_codes, _) = align(b_source, b)?;
        let eval_b = evaluate_items(&gold_codes, &b_codes, weights.as_deref(), l).map_err(in_gold)?;
        out.insert("model_b".into(), metrics_json(&eval_b, &set));
        let correct = |codes: &[usize]| codes.iter().zip(&gold_codes).map(|(p, g)| p == g).collect::<Vec<bool>>();
        let m = mcnemar_exact(&correct(&pred_codes), &correct(&b_codes)).map_err(|e| anyhow!("{e}"))?;
        out.insert("mcnemar_p".into(), json!(m.p_value));
        out.insert("mcnemar".into(), json!(m));
        let options = BootstrapOptions { replicates: args.bootstrap, confidence: args.confidence, seed: args.seed };
        let ci = paired_bootstrap_accuracy_difference(&gold_codes, &pred_codes, &b_codes, weights.as_deref(), &options)
            .map_err(|e| anyhow!("{e}"))?;
        out.insert("accuracy_difference_ci".into(), json!(ci));
        if let (Ok(a), Ok(b)) = (&evaluation.accuracy, &eval_b.accuracy) {
            out.insert("accuracy_difference".into(), json!(a - b));
        }
    }
    Ok(Value::Object(out))
}

/// accuracy, the F1 averages, per_class and confusion, keyed by label names.
fn metrics_json(e: &Evaluation, set: &LabelSet) -> Value {
    let mut reasons = Map::new();
    let mut stat = |key: &str, s: &crate::stats::Stat| match s {
        Ok(v) => json!(v),
        Err(u) => {
            reasons.insert(key.into(), json!(u.reason));
            Value::Null
        }
    };
    let accuracy = stat("accuracy", &e.accuracy);
    let macro_f1 = stat("macro_f1", &e.macro_f1);
    let micro_f1 = stat("micro_f1", &e.micro_f1);
    let weighted_f1 = stat("weighted_f1", &e.weighted_f1);
    let per_class: Map<String, Value> = e
        .per_class
        .iter()
        .map(|m| {
            (set.name(m.label).to_string(), json!({"precision": m.precision, "recall": m.recall, "f1": m.f1, "support": m.support}))
        })
        .collect();
    let present: Vec<usize> = e.per_class.iter().map(|m| m.label).collect();
    let confusion: Map<String, Value> = present
        .iter()
        .map(|&g| {
            let row: Map<String, Value> = present.iter().map(|&p| (set.name(p).to_string(), json!(e.confusion[g][p]))).collect();
            (set.name(g).to_string(), Value::Object(row))
        })
        .collect();
    json!({
        "n": e.n,
        "total_weight": e.total_weight,
        "accuracy": accuracy,
        "macro_f1": macro_f1,
        "micro_f1": micro_f1,
        "weighted_f1": weighted_f1,
        "per_class": per_class,
        "confusion": confusion,
        "reasons": reasons,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_weight_and_duplicates_name_the_line() {
        let src = Source { name: "g.jsonl".into(), text: "{\"item\":\"a\",\"label\":\"x\"}\n{\"item\":\"b\",\"label\":\"x\",\"weight\":-1}".into() };
        assert_eq!(read_examples(&src).err().unwrap().to_string(), "g.jsonl:2: weight must be a number ≥ 0");
        let src = Source { name: "g.jsonl".into(), text: "{\"item\":\"a\",\"label\":\"x\"}\n{\"item\":\"a\",\"label\":\"y\"}".into() };
        assert_eq!(read_examples(&src).err().unwrap().to_string(), "g.jsonl:2: item \"a\" already appeared on line 1");
    }
}
