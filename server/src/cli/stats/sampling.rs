//! `mirrorset stats allocate`, `sample`, `distance`, `interval` and `sample-size`: building
//! production-matched dev sets.

use super::input::{array_element_line, parse_document, parse_jsonl, read_source, scalar_text, Line, Source};
use crate::stats::allocation::{allocate_strata, AllocationRequest, Stratum};
use crate::stats::distance::{distribution_distance, slice_distances};
use crate::stats::proportion::{wilson_interval, wilson_sample_size};
use crate::stats::sampling::{sample_stratified, PoolItem};
use anyhow::{anyhow, bail, Result};
use serde::{Deserialize, Deserializer};
use serde_json::{json, Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// A number ≥ 0, rejected during parsing so the error carries the line and column.
fn non_negative<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    let x = f64::deserialize(d)?;
    if x.is_finite() && x >= 0.0 {
        Ok(x)
    } else {
        Err(serde::de::Error::custom(format!("expected a number ≥ 0, found {x}")))
    }
}

fn non_negative_map<'de, D: Deserializer<'de>>(d: D) -> std::result::Result<BTreeMap<String, f64>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "non_negative")] f64);
    let map = BTreeMap::<String, Wrapped>::deserialize(d)?;
    Ok(map.into_iter().map(|(k, Wrapped(v))| (k, v)).collect())
}

/// Strata with distinct keys. Checked after parsing rather than while (serde's position would
/// then be past the repeated stratum, the line after it in a pretty-printed file): the error
/// names the line where the repetition starts and the line of the first one.
trait Keyed {
    fn key(&self) -> &str;
}

fn unique_keys<T: Keyed>(source: &Source, strata: &[T]) -> Result<()> {
    let mut first = std::collections::HashMap::new();
    for (i, s) in strata.iter().enumerate() {
        if let Some(j) = first.insert(s.key(), i) {
            let line = |index| array_element_line(&source.text, "strata", index);
            let at = line(i).map_or(String::new(), |l| format!(":{l}"));
            let first_at = line(j).map_or(String::new(), |l| format!(" (first on line {l})"));
            bail!("{}{at}: stratum {:?} appears twice{first_at}", source.name, s.key());
        }
    }
    Ok(())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AllocationFile {
    n: u64,
    #[serde(default)]
    min_per_stratum: Option<u64>,
    strata: Vec<StratumLine>,
}

impl Keyed for StratumLine {
    fn key(&self) -> &str {
        &self.key
    }
}

impl Keyed for AllocatedStratum {
    fn key(&self) -> &str {
        &self.key
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StratumLine {
    key: String,
    #[serde(deserialize_with = "non_negative")]
    production: f64,
    available: u64,
}

pub fn allocate(file: &Path) -> Result<Value> {
    let source = read_source(file)?;
    let doc: AllocationFile = parse_document(&source)?;
    unique_keys(&source, &doc.strata)?;
    let request = AllocationRequest {
        n: doc.n,
        min_per_stratum: doc.min_per_stratum,
        strata: doc
            .strata
            .into_iter()
            .map(|s| Stratum { key: s.key, production: s.production, available: s.available })
            .collect(),
    };
    let allocation = allocate_strata(&request).map_err(|e| anyhow!("{}: {e}", source.name))?;
    let strata: Vec<Value> = allocation
        .strata
        .iter()
        .zip(&request.strata)
        .map(|(a, s)| json!({"key": a.key, "requested": a.requested, "allocated": a.allocated, "available": s.available}))
        .collect();
    Ok(json!({"n": request.n, "strata": strata, "total": allocation.total, "shortfall": allocation.shortfall}))
}

/// The allocation for `sample`: the output of `allocate` (only `key` and `allocated` are read).
#[derive(Deserialize)]
struct AllocationOutput {
    strata: Vec<AllocatedStratum>,
}

#[derive(Deserialize)]
struct AllocatedStratum {
    key: String,
    allocated: u64,
}

#[derive(Deserialize)]
struct PoolLine {
    item: Value,
    stratum: Value,
    #[serde(default)]
    must_include: bool,
}

pub fn sample(allocation: &Path, pool: &Path, seed: u64) -> Result<Value> {
    super::input::at_most_one_stdin(&[allocation, pool])?;
    let alloc_source = read_source(allocation)?;
    let alloc: AllocationOutput = parse_document(&alloc_source)?;
    unique_keys(&alloc_source, &alloc.strata)?;
    let pool_source = read_source(pool)?;
    let lines: Vec<Line<PoolLine>> = parse_jsonl(&pool_source)?;
    let mut items = Vec::with_capacity(lines.len());
    let mut first_line = std::collections::HashMap::new();
    for line in &lines {
        let at = format!("{}:{}", pool_source.name, line.number);
        let id = scalar_text(&line.value.item, "item").map_err(|e| anyhow!("{at}: {e}"))?;
        let stratum = scalar_text(&line.value.stratum, "stratum").map_err(|e| anyhow!("{at}: {e}"))?;
        if let Some(first) = first_line.insert(id.clone(), line.number) {
            bail!("{at}: item {id:?} already appeared on line {first}");
        }
        items.push(PoolItem { id, stratum, must_include: line.value.must_include });
    }
    let allocation: Vec<(String, u64)> = alloc.strata.into_iter().map(|s| (s.key, s.allocated)).collect();
    let sample = sample_stratified(&items, &allocation, seed).map_err(|e| anyhow!("{}: {e}", alloc_source.name))?;
    Ok(json!({
        "seed": seed,
        "items": sample.items.iter().map(|&i| items[i].id.clone()).collect::<Vec<_>>(),
        "strata": sample.strata,
        "total": sample.items.len(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DistanceFile {
    #[serde(deserialize_with = "non_negative_map")]
    p: BTreeMap<String, f64>,
    #[serde(deserialize_with = "non_negative_map")]
    q: BTreeMap<String, f64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JointDistanceFile {
    attributes: Vec<String>,
    p: Vec<Cell>,
    q: Vec<Cell>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Cell {
    values: BTreeMap<String, Value>,
    #[serde(deserialize_with = "non_negative")]
    count: f64,
}

pub fn distance(file: &Path) -> Result<Value> {
    let source = read_source(file)?;
    let is_joint = serde_json::from_str::<Value>(&source.text).ok().is_some_and(|v| v.get("attributes").is_some());
    if is_joint {
        let doc: JointDistanceFile = parse_document(&source)?;
        let cells = |side: &str, cells: &[Cell]| -> Result<Vec<(Vec<String>, f64)>> {
            cells
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    let values = doc
                        .attributes
                        .iter()
                        .map(|a| {
                            let v = c.values.get(a).ok_or_else(|| anyhow!("{}: {side}[{i}] has no value for attribute {a:?}", source.name))?;
                            scalar_text(v, a).map_err(|e| anyhow!("{}: {side}[{i}]: {e}", source.name))
                        })
                        .collect::<Result<Vec<_>>>()?;
                    Ok((values, c.count))
                })
                .collect()
        };
        let (p, q) = (cells("p", &doc.p)?, cells("q", &doc.q)?);
        let d = slice_distances(&doc.attributes, &p, &q).map_err(|e| anyhow!("{}: {e}", source.name))?;
        let marginals: Map<String, Value> = d.marginals.iter().map(|(a, m)| (a.clone(), json!(m))).collect();
        return Ok(json!({"joint": d.joint, "marginals": marginals}));
    }
    let doc: DistanceFile = parse_document(&source)?;
    let categories: Vec<&String> = doc.p.keys().chain(doc.q.keys()).collect::<std::collections::BTreeSet<_>>().into_iter().collect();
    let p: Vec<f64> = categories.iter().map(|c| doc.p.get(*c).copied().unwrap_or(0.0)).collect();
    let q: Vec<f64> = categories.iter().map(|c| doc.q.get(*c).copied().unwrap_or(0.0)).collect();
    let d = distribution_distance(&p, &q).map_err(|e| anyhow!("{}: {e}", source.name))?;
    Ok(json!({"tvd": d.tvd, "kl": d.kl, "psi": d.psi}))
}

pub fn interval(successes: u64, total: u64, confidence: f64) -> Result<Value> {
    let ci = wilson_interval(successes, total, confidence).map_err(|e| anyhow!("{e}"))?;
    Ok(json!({"estimate": ci.estimate, "lower": ci.lower, "upper": ci.upper, "confidence": confidence, "method": "wilson"}))
}

pub fn sample_size(accuracy: f64, half_width: f64, confidence: f64) -> Result<Value> {
    let n = wilson_sample_size(accuracy, half_width, confidence).map_err(|e| anyhow!("{e}"))?;
    Ok(json!({"n": n, "accuracy": accuracy, "half_width": half_width, "confidence": confidence}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_file_errors_carry_line_numbers() {
        let src = Source { name: "a.json".into(), text: "{\"n\": 5,\n \"strata\": [\n  {\"key\": \"x\", \"production\": -2, \"available\": 3}\n]}".into() };
        let e = parse_document::<AllocationFile>(&src).err().unwrap().to_string();
        assert!(e.starts_with("a.json:3: expected a number ≥ 0, found -2"), "{e}");
        let src = Source { name: "a.json".into(), text: "{\"n\": 5, \"strata\": [\n{\"key\": \"x\", \"production\": 1, \"available\": 1},\n{\"key\": \"x\", \"production\": 1, \"available\": 1}]}".into() };
        let doc = parse_document::<AllocationFile>(&src).unwrap();
        let e = unique_keys(&src, &doc.strata).unwrap_err().to_string();
        assert_eq!(e, "a.json:3: stratum \"x\" appears twice (first on line 2)");
        let src = Source { name: "a.json".into(), text: "{\"n\": 5, \"strata\": [], \"typo\": 1}".into() };
        assert!(parse_document::<AllocationFile>(&src).err().unwrap().to_string().contains("unknown field `typo`"));
    }
}
