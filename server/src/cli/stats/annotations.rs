//! `mirrorset stats agreement` and `mirrorset stats aggregate`: annotation records
//! `{"item", "annotator", "label"}` per line.

use super::input::{parse_jsonl, read_source, scalar_text, split_list, Line, Source};
use crate::stats::agreement::{agreement_report, AgreementOptions};
use crate::stats::aggregate::{majority_vote, Aggregation};
use crate::stats::bootstrap::{BootstrapInterval, BootstrapOptions};
use crate::stats::dawid_skene::{dawid_skene, DawidSkeneOptions};
use crate::stats::{LabelSet, Level, Ratings, RatingsBuilder, RatingsError, Stat, Undefined};
use anyhow::{anyhow, bail, Result};
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::path::Path;

#[derive(Deserialize)]
struct AnnotationLine {
    item: Value,
    annotator: Value,
    label: Value,
}

/// Reads annotation records into [`Ratings`], with line-numbered errors.
pub fn read_ratings(path: &Path, labels: Option<&str>) -> Result<Ratings> {
    let source = read_source(path)?;
    ratings_from_source(&source, labels)
}

pub fn ratings_from_source(source: &Source, labels: Option<&str>) -> Result<Ratings> {
    let lines: Vec<Line<AnnotationLine>> = parse_jsonl(source)?;
    let label_set = labels.map(|l| LabelSet::new(split_list(l))).transpose().map_err(|e| anyhow!("--labels: {e}"))?;
    if label_set.as_ref().is_some_and(|s| s.len() < 2) {
        bail!("--labels must name at least two labels");
    }
    let mut builder = RatingsBuilder::new(label_set);
    let at = |line: &Line<AnnotationLine>| format!("{}:{}", source.name, line.number);
    for line in &lines {
        let v = &line.value;
        let text = |value: &Value, what: &str| scalar_text(value, what).map_err(|e| anyhow!("{}: {e}", at(line)));
        let (item, annotator, label) = (text(&v.item, "item")?, text(&v.annotator, "annotator")?, text(&v.label, "label")?);
        builder.push(&item, &annotator, &label).map_err(|e| match e {
            RatingsError::UnknownLabel { label, .. } => {
                anyhow!("{}: unknown label {label:?} (not in --labels)", at(line))
            }
            other => anyhow!("{}: {other}", at(line)),
        })?;
    }
    builder.build().map_err(|e| match e {
        RatingsError::Duplicate { item, annotator, first, second } => anyhow!(
            "{}:{}: annotator {annotator:?} already rated item {item:?} on line {}",
            source.name,
            lines[second].number,
            lines[first].number
        ),
        other => anyhow!("{}: {other}", source.name),
    })
}

/// Reads a file of item ids, one per line (blank lines ignored), for `--items`.
fn read_item_subset(path: &Path, ratings: &Ratings) -> Result<Vec<usize>> {
    let source = read_source(path)?;
    let index: HashMap<Cow<str>, usize> = ratings.item_names().enumerate().map(|(i, s)| (s, i)).collect();
    let mut keep = Vec::new();
    let mut seen = HashSet::new();
    for (n, line) in source.text.lines().enumerate() {
        let id = line.trim();
        if id.is_empty() {
            continue;
        }
        let Some(&i) = index.get(id) else {
            bail!("{}:{}: item {id:?} has no annotations", source.name, n + 1);
        };
        if seen.insert(i) {
            keep.push(i);
        }
    }
    if keep.is_empty() {
        bail!("{}: the file is empty (expected one item id per line)", source.name);
    }
    Ok(keep)
}

fn stat(value: &Stat, key: &str, reasons: &mut Map<String, Value>) -> Value {
    match value {
        Ok(v) => json!(v),
        Err(Undefined { reason }) => {
            reasons.insert(key.to_string(), json!(reason));
            Value::Null
        }
    }
}

fn interval(ci: &Result<BootstrapInterval, Undefined>, key: &str, reasons: &mut Map<String, Value>) -> Value {
    match ci {
        Ok(ci) => json!(ci),
        Err(Undefined { reason }) => {
            reasons.insert(format!("ci.{key}"), json!(reason));
            Value::Null
        }
    }
}

pub struct AgreementArgs<'a> {
    pub file: &'a Path,
    pub level: Level,
    pub labels: Option<&'a str>,
    pub bootstrap: Option<usize>,
    pub seed: u64,
    pub confidence: f64,
    pub items: Option<&'a Path>,
}

pub fn agreement(args: AgreementArgs) -> Result<Value> {
    let mut ratings = read_ratings(args.file, args.labels)?;
    if args.level.is_ordered() && args.labels.is_none() && ratings.labels().values().is_none() {
        bail!("--level {} needs the label order: give --labels a,b,c (or use numeric labels)", level_name(args.level));
    }
    if let Some(path) = args.items {
        ratings = ratings.restrict_to_items(&read_item_subset(path, &ratings)?);
    }
    let bootstrap = args
        .bootstrap
        .map(|replicates| BootstrapOptions { replicates, confidence: args.confidence, seed: args.seed });
    let report = agreement_report(&ratings, &AgreementOptions { level: args.level, bootstrap });
    let names = ratings.annotators();
    let labels = ratings.labels();
    let mut reasons = Map::new();
    let mut out = Map::new();
    out.insert("level".into(), json!(level_name(args.level)));
    out.insert("labels".into(), json!(labels.names()));
    out.insert("n_items".into(), json!(report.n_items));
    out.insert("n_pairable_items".into(), json!(report.n_pairable_items));
    out.insert("n_annotations".into(), json!(report.n_annotations));
    out.insert("n_annotators".into(), json!(report.n_annotators));
    out.insert("percent_agreement".into(), stat(&report.percent_agreement, "percent_agreement", &mut reasons));
    out.insert("cohen_kappa".into(), stat(&report.cohen_kappa, "cohen_kappa", &mut reasons));
    if let Some(w) = &report.cohen_kappa_weighted {
        out.insert("cohen_kappa_linear".into(), stat(&w.linear, "cohen_kappa_linear", &mut reasons));
        out.insert("cohen_kappa_quadratic".into(), stat(&w.quadratic, "cohen_kappa_quadratic", &mut reasons));
    }
    let pairwise: Vec<Value> = report
        .pairwise_cohen_kappa
        .iter()
        .map(|p| {
            let mut entry = json!({"a": names[p.a], "b": names[p.b], "n": p.n, "kappa": p.kappa.as_ref().ok()});
            if let Err(e) = &p.kappa {
                entry["reason"] = json!(e.reason);
            }
            entry
        })
        .collect();
    out.insert("pairwise_cohen_kappa".into(), json!(pairwise));
    out.insert(
        "mean_pairwise_cohen_kappa".into(),
        stat(&report.mean_pairwise_cohen_kappa, "mean_pairwise_cohen_kappa", &mut reasons),
    );
    out.insert("fleiss_kappa".into(), stat(&report.fleiss_kappa, "fleiss_kappa", &mut reasons));
    out.insert("krippendorff_alpha".into(), stat(&report.krippendorff_alpha, "krippendorff_alpha", &mut reasons));
    let mut per_label = Map::new();
    for l in &report.per_label_alpha {
        let name = labels.name(l.label);
        per_label.insert(name.to_string(), stat(&l.alpha, &format!("per_label_krippendorff_alpha.{name}"), &mut reasons));
    }
    out.insert("per_label_krippendorff_alpha".into(), Value::Object(per_label));
    if let Some(ci) = &report.ci {
        out.insert(
            "ci".into(),
            json!({
                "krippendorff_alpha": interval(&ci.krippendorff_alpha, "krippendorff_alpha", &mut reasons),
                "cohen_kappa": interval(&ci.cohen_kappa, "cohen_kappa", &mut reasons),
                "mean_pairwise_cohen_kappa": interval(&ci.mean_pairwise_cohen_kappa, "mean_pairwise_cohen_kappa", &mut reasons),
                "fleiss_kappa": interval(&ci.fleiss_kappa, "fleiss_kappa", &mut reasons),
                "percent_agreement": interval(&ci.percent_agreement, "percent_agreement", &mut reasons),
            }),
        );
    }
    out.insert("reasons".into(), Value::Object(reasons));
    Ok(Value::Object(out))
}

fn level_name(level: Level) -> &'static str {
    crate::stats::krippendorff::level_name(level)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Method {
    Majority,
    DawidSkene,
}

pub struct AggregateArgs<'a> {
    pub file: &'a Path,
    pub method: Method,
    pub labels: Option<&'a str>,
    pub max_iter: usize,
    pub tol: f64,
    pub gold: Option<&'a Path>,
}

#[derive(Deserialize)]
struct GoldLine {
    item: Value,
    label: Value,
}

pub fn aggregate(args: AggregateArgs) -> Result<Value> {
    let ratings = read_ratings(args.file, args.labels)?;
    let result: Aggregation = match args.method {
        Method::Majority => {
            if args.gold.is_some() {
                bail!("--gold applies to --method dawid-skene");
            }
            majority_vote(&ratings)
        }
        Method::DawidSkene => {
            if args.tol.is_nan() || args.tol < 0.0 {
                bail!("--tol must be a number ≥ 0");
            }
            let gold = match args.gold {
                Some(path) => read_gold(path, &ratings)?,
                None => Vec::new(),
            };
            dawid_skene(&ratings, &DawidSkeneOptions { max_iter: args.max_iter, tol: args.tol, gold })
                .map_err(|e| anyhow!("{}: {e}", args.file.display()))?
        }
    };
    let labels = ratings.labels();
    let by_label = |values: &[f64]| -> Value {
        Value::Object(values.iter().enumerate().map(|(c, p)| (labels.name(c).to_string(), json!(p))).collect())
    };
    let mut items = Map::new();
    for (i, name) in ratings.item_names().enumerate() {
        items.insert(
            name.into_owned(),
            json!({
                "label": result.label(i).map(|c| labels.name(c)),
                "tie": result.tie(i),
                "posterior": by_label(result.posterior(i)),
            }),
        );
    }
    let l = ratings.n_labels();
    let mut annotators = Map::new();
    for (a, name) in ratings.annotators().iter().enumerate() {
        let matrix = result.confusion(a);
        let rows: Map<String, Value> =
            (0..l).map(|t| (labels.name(t).to_string(), by_label(&matrix[t * l..(t + 1) * l]))).collect();
        annotators.insert(name.clone(), json!({ "confusion": rows }));
    }
    Ok(json!({
        "method": match args.method { Method::Majority => "majority", Method::DawidSkene => "dawid-skene" },
        "labels": labels.names(),
        "items": items,
        "annotators": annotators,
        "priors": by_label(&result.priors),
        "iterations": result.iterations,
        "converged": result.converged,
        "log_likelihood": result.log_likelihood,
    }))
}

fn read_gold(path: &Path, ratings: &Ratings) -> Result<Vec<(usize, usize)>> {
    let source = read_source(path)?;
    let lines: Vec<Line<GoldLine>> = parse_jsonl(&source)?;
    let items: HashMap<Cow<str>, usize> = ratings.item_names().enumerate().map(|(i, s)| (s, i)).collect();
    let mut gold = Vec::new();
    for line in &lines {
        let at = format!("{}:{}", source.name, line.number);
        let item = scalar_text(&line.value.item, "item").map_err(|e| anyhow!("{at}: {e}"))?;
        let label = scalar_text(&line.value.label, "label").map_err(|e| anyhow!("{at}: {e}"))?;
        let i = *items.get(item.as_str()).ok_or_else(|| anyhow!("{at}: item {item:?} has no annotations"))?;
        let c = ratings.labels().index_of(&label).ok_or_else(|| anyhow!("{at}: unknown label {label:?}"))?;
        gold.push((i, c));
    }
    Ok(gold)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn source(text: &str) -> Source {
        Source { name: "a.jsonl".into(), text: text.into() }
    }

    #[test]
    fn bad_annotation_files_name_the_line() {
        let e = ratings_from_source(&source("{\"item\":\"x\",\"annotator\":\"a\",\"label\":\"p\"}\n{\"item\":\"x\",\"annotator\":\"b\",\"label\":\"z\"}"), Some("p,q"))
            .unwrap_err()
            .to_string();
        assert_eq!(e, "a.jsonl:2: unknown label \"z\" (not in --labels)");
        let e = ratings_from_source(&source("{\"item\":\"x\",\"annotator\":\"a\",\"label\":true}"), None).unwrap_err().to_string();
        assert_eq!(e, "a.jsonl:1: label must be a string or a number, not a boolean");
        let e = ratings_from_source(&source("{\"item\":\"x\",\"annotator\":\"a\",\"label\":1}\n\n{\"item\":\"x\",\"annotator\":\"a\",\"label\":2}"), None)
            .unwrap_err()
            .to_string();
        assert_eq!(e, "a.jsonl:3: annotator \"a\" already rated item \"x\" on line 1");
        let e = ratings_from_source(&source("{\"item\":\"x\",\"annotator\":\"a\",\"label\":1"), None).unwrap_err().to_string();
        assert!(e.starts_with("a.jsonl:1: EOF while parsing"), "{e}");
    }

    #[test]
    fn numeric_labels_are_numbers() {
        let r = ratings_from_source(&source("{\"item\":1,\"annotator\":\"a\",\"label\":10}\n{\"item\":1,\"annotator\":\"b\",\"label\":9.0}"), None).unwrap();
        assert_eq!(r.labels().names(), ["9", "10"]);
        assert_eq!(r.item_names().collect::<Vec<_>>(), ["1"]);
    }
}
