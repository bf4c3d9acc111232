//! A release's files: JSONL and CSV (one row per item with its final label, provenance and
//! split), the Hugging Face datasets layout (`data/<split>.jsonl` and a `README.md` whose YAML
//! front matter `datasets.load_dataset(folder)` reads, and whose body is the dataset card),
//! Label Studio JSON (one task per item, the final label as its annotation), and
//! `manifest.json` with the content hash and every file's SHA-256. `zip` puts them all in one
//! archive whose root is the Hugging Face folder; `verify` checks an unpacked one.
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::{content_hash, ReleaseItem, SPLIT_DEV, SPLIT_TEST, SPLIT_TRAIN_DEV};
use crate::export::neutralise_cell;

/// What the card and the layouts need besides the items.
pub struct ReleaseInfo<'a> {
    /// e.g. `reviews-dev-v2` (project, dev set, version).
    pub name: String,
    pub version: String,
    pub content_hash: &'a str,
    pub lineage: &'a Value,
}

impl ReleaseInfo<'_> {
    /// The project's label names, in its order (the ClassLabel's names).
    pub fn labels(&self, items: &[ReleaseItem]) -> Vec<String> {
        let mut names: Vec<String> = self.lineage["project"]["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        // A label no longer in the project's list (renamed since) still needs a class.
        for i in items {
            for l in &i.labels {
                if !names.contains(l) {
                    names.push(l.clone());
                }
            }
        }
        names
    }

    pub fn multi_label(&self) -> bool {
        self.lineage["project"]["multi_label"].as_bool().unwrap_or(false)
    }
}

/// Splits in their conventional order, then any others.
pub fn split_names(items: &[ReleaseItem]) -> Vec<String> {
    let present: BTreeSet<&str> = items.iter().map(|i| i.split.as_str()).collect();
    let mut out: Vec<String> = [SPLIT_DEV, SPLIT_TEST, SPLIT_TRAIN_DEV].iter().filter(|s| present.contains(**s)).map(|s| s.to_string()).collect();
    let others: Vec<String> = present.iter().filter(|s| !out.iter().any(|o| o == *s)).map(|s| s.to_string()).collect();
    out.extend(others);
    out
}

/// One JSONL row: everything the release holds of the item (and what `verify` re-hashes).
pub fn jsonl_row(i: &ReleaseItem) -> Value {
    json!({
        "item_id": i.item_id,
        "id": i.external_id,
        "kind": i.kind,
        "text": i.text,
        "image_sha256": i.image_sha256,
        "meta": i.meta,
        "weight": i.weight,
        "source": i.source,
        "license": i.license,
        "labels": i.labels,
        "provenance": i.provenance,
        "n_labels": i.n_labels,
        "split": i.split,
    })
}

pub fn jsonl(items: &[ReleaseItem]) -> Vec<u8> {
    let mut out = Vec::new();
    for i in items {
        out.extend_from_slice(jsonl_row(i).to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

pub const CSV_HEADER: [&str; 15] = [
    "item_id", "id", "kind", "text", "image_sha256", "meta", "weight", "source", "license", "labels",
    "provenance", "posterior", "n_labels", "split", "reviewed_by",
];

/// CSV with the same rows; `labels` joined by `|`; cells that a spreadsheet would run as a
/// formula are neutralised like the project export's default (`crate::export`).
pub fn csv(items: &[ReleaseItem]) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new().quote_style(csv::QuoteStyle::Always).from_writer(Vec::new());
    let _ = w.write_record(CSV_HEADER);
    for i in items {
        let cells = [
            i.item_id.to_string(),
            i.external_id.clone().unwrap_or_default(),
            i.kind.clone(),
            i.text.clone().unwrap_or_default(),
            i.image_sha256.clone().unwrap_or_default(),
            Value::Object(i.meta.clone()).to_string(),
            i.weight.to_string(),
            i.source.clone().unwrap_or_default(),
            i.license.clone().unwrap_or_default(),
            i.labels.join("|"),
            i.provenance["source"].as_str().unwrap_or("").to_string(),
            i.provenance["posterior"].as_f64().map(|p| p.to_string()).unwrap_or_default(),
            i.n_labels.to_string(),
            i.split.clone(),
            i.provenance["by"].as_str().unwrap_or("").to_string(),
        ];
        let _ = w.write_record(cells.iter().map(|c| neutralise_cell(c).into_owned()));
    }
    w.into_inner().unwrap_or_default()
}

/// A row of `data/<split>.jsonl`: flat columns the YAML features declare; `label` is the
/// class index (multi-label projects: `labels`, a list of indices); `meta` as a JSON string
/// (its attributes differ between items, which a fixed schema cannot hold).
fn hf_row(i: &ReleaseItem, names: &[String], multi: bool) -> Value {
    let idx = |l: &String| names.iter().position(|n| n == l).unwrap_or(0) as i64;
    let mut row = json!({
        "id": i.external_id.clone().unwrap_or_else(|| i.item_id.to_string()),
        "text": i.text,
        "image_sha256": i.image_sha256,
        "weight": i.weight,
        "source": i.source,
        "license": i.license,
        "meta": Value::Object(i.meta.clone()).to_string(),
        "provenance": i.provenance["source"].as_str().unwrap_or(""),
        "n_labels": i.n_labels,
    });
    if multi {
        row["labels"] = json!(i.labels.iter().map(idx).collect::<Vec<_>>());
    } else {
        row["label"] = json!(i.labels.first().map(idx).unwrap_or(0));
    }
    row
}

/// `data/<split>.jsonl` files, in `split_names` order.
pub fn hf_data(info: &ReleaseInfo<'_>, items: &[ReleaseItem]) -> Vec<(String, Vec<u8>)> {
    let names = info.labels(items);
    let multi = info.multi_label();
    split_names(items)
        .into_iter()
        .map(|split| {
            let mut out = Vec::new();
            for i in items.iter().filter(|i| i.split == split) {
                out.extend_from_slice(hf_row(i, &names, multi).to_string().as_bytes());
                out.push(b'\n');
            }
            (format!("data/{split}.jsonl"), out)
        })
        .collect()
}

/// A YAML scalar: a JSON string is a valid YAML double-quoted scalar.
fn y(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// Licence identifiers for the front matter: the items' licences (lower case), `unknown`
/// when some item has none.
fn licences(items: &[ReleaseItem]) -> Vec<String> {
    let mut set: BTreeSet<String> = items.iter().filter_map(|i| i.license.as_ref().map(|l| l.to_lowercase())).collect();
    if items.iter().any(|i| i.license.is_none()) || set.is_empty() {
        set.insert("unknown".into());
    }
    set.into_iter().collect()
}

fn counts<'a>(it: impl Iterator<Item = &'a str>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for s in it {
        *m.entry(s.to_string()).or_insert(0) += 1;
    }
    m
}

fn fmt_stat(v: &Value) -> String {
    match v["value"].as_f64() {
        Some(x) => match (v["interval"]["lower"].as_f64(), v["interval"]["upper"].as_f64()) {
            (Some(lo), Some(hi)) => format!("{x:.3} (95% interval {lo:.3} to {hi:.3}, n = {})", v["n"]),
            _ => format!("{x:.3} (n = {}; no interval: {})", v["n"], v["reason"].as_str().unwrap_or("undefined")),
        },
        None => format!("undefined: {}", v["reason"].as_str().unwrap_or("not computed")),
    }
}

/// The dataset card: YAML front matter for `datasets`, then purpose, sampling against
/// production, agreement and provenance, size and confidence, known limits, licences and
/// sources.
pub fn card(info: &ReleaseInfo<'_>, items: &[ReleaseItem]) -> String {
    let names = info.labels(items);
    let multi = info.multi_label();
    let splits = split_names(items);
    let l = info.lineage;
    let mut s = String::from("---\n");
    s.push_str(&format!("pretty_name: {}\n", y(&info.name)));
    s.push_str("license:\n");
    for lic in licences(items) {
        s.push_str(&format!("- {}\n", y(&lic)));
    }
    s.push_str("configs:\n- config_name: default\n  data_files:\n");
    for sp in &splits {
        s.push_str(&format!("  - split: {sp}\n    path: data/{sp}.jsonl\n"));
    }
    s.push_str("dataset_info:\n  features:\n");
    for (name, dtype) in [("id", "string"), ("text", "string"), ("image_sha256", "string"), ("weight", "float64"),
                          ("source", "string"), ("license", "string"), ("meta", "string"), ("provenance", "string"),
                          ("n_labels", "int64")] {
        s.push_str(&format!("  - name: {name}\n    dtype: {dtype}\n"));
    }
    let class_label = |indent: &str| {
        let mut c = format!("{indent}class_label:\n{indent}  names:\n");
        for (i, n) in names.iter().enumerate() {
            c.push_str(&format!("{indent}    '{i}': {}\n", y(n)));
        }
        c
    };
    if multi {
        s.push_str("  - name: labels\n    sequence:\n");
        s.push_str(&class_label("      "));
    } else {
        s.push_str("  - name: label\n    dtype:\n");
        s.push_str(&class_label("      "));
    }
    s.push_str("  splits:\n");
    for sp in &splits {
        s.push_str(&format!("  - name: {sp}\n    num_examples: {}\n", items.iter().filter(|i| &i.split == sp).count()));
    }
    s.push_str("---\n\n");

    // Purpose.
    s.push_str(&format!("# {}\n\n", info.name));
    s.push_str(&format!(
        "A frozen evaluation set: release {} of the dev set {:?} of the Mirrorset project {:?}, \
         sampled to match production so that a model's score on it estimates its score in production, \
         and split into dev (for choosing models) and test (for the final number). It never changes: \
         its SHA-256 content hash is `{}` (`mirrorset release verify DIR` recomputes it).\n\n",
        info.version,
        l["devset"]["name"].as_str().unwrap_or(""),
        l["project"]["name"].as_str().unwrap_or(""),
        info.content_hash
    ));
    s.push_str(&format!("Load it with `datasets.load_dataset(\"path/to/this/folder\")`. Labels: {}.\n\n",
        names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ")));

    // Sampling against production.
    s.push_str("## How it was sampled\n\n");
    let plan = &l["devset"]["plan"];
    s.push_str(&format!(
        "Stratified by {} against the production profile {} (seed {}); minimum per stratum {}.\n\n",
        plan["attributes"].as_array().map(|a| a.iter().filter_map(Value::as_str).collect::<Vec<_>>().join(", ")).unwrap_or_default(),
        l["devset"]["profile"].as_str().unwrap_or("(unknown)"),
        l["devset"]["seed"],
        plan["min_per_stratum"]
    ));
    if let Some(rows) = l["distribution"].as_array().filter(|r| !r.is_empty()) {
        s.push_str("| attribute | value | production | this release |\n|---|---|---:|---:|\n");
        for r in rows {
            s.push_str(&format!(
                "| {} | {} | {:.1}% | {:.1}% |\n",
                r["attribute"].as_str().unwrap_or(""),
                r["value"].as_str().unwrap_or(""),
                r["production"].as_f64().unwrap_or(0.0) * 100.0,
                r["release"].as_f64().unwrap_or(0.0) * 100.0
            ));
        }
        s.push('\n');
    }
    let sp = &l["splits"];
    s.push_str(&format!(
        "Splits: dev and test drawn from the same distribution (stratified by the dev set's strata, seed {}){}{}.\n\n",
        sp["seed"],
        sp["group_by"].as_str().map(|g| format!(", grouped by `{g}` so no group straddles two splits")).unwrap_or_default(),
        if sp["train_dev_size"].as_u64().unwrap_or(0) > 0 { "; train_dev is drawn from the training pool (labeled items in no dev set), to tell variance from distribution mismatch" } else { "" }
    ));

    // Agreement and provenance.
    s.push_str("## Agreement and label provenance\n\n");
    let ag = &l["agreement"];
    s.push_str(&format!("Krippendorff's alpha at freeze time: {}. Aggregation: {} (final label precedence: adjudicated > gold > consensus of all k labels).\n\n",
        fmt_stat(&ag["alpha"]), l["aggregation"]["method"].as_str().unwrap_or("majority")));
    if let Some(rows) = ag["per_key_slice"].as_array().filter(|r| !r.is_empty()) {
        s.push_str(&format!("| {} | items | alpha |\n|---|---:|---|\n", ag["key_attribute"].as_str().unwrap_or("slice")));
        for r in rows {
            s.push_str(&format!("| {} | {} | {} |\n", r["value"].as_str().unwrap_or(""), r["items"], fmt_stat(&r["alpha"])));
        }
        s.push('\n');
    }
    s.push_str("| provenance | items |\n|---|---:|\n");
    for (p, n) in counts(items.iter().map(|i| i.provenance["source"].as_str().unwrap_or("?"))) {
        s.push_str(&format!("| {p} | {n} |\n"));
    }
    s.push('\n');

    // Size and confidence.
    s.push_str("## Size and the confidence it gives\n\n| split | items | ±95% on an accuracy near 50% |\n|---|---:|---:|\n");
    for sp in &splits {
        let n = items.iter().filter(|i| &i.split == sp).count() as u64;
        let hw = crate::devsets::plan::half_width(0.5, n, 0.95).map(|h| format!("±{:.1} points", h * 100.0)).unwrap_or_else(|| "undefined".into());
        s.push_str(&format!("| {sp} | {n} | {hw} |\n"));
    }
    s.push('\n');

    // Known limits.
    s.push_str("## Known limits\n\n");
    let mut limits = Vec::new();
    let unlicensed = items.iter().filter(|i| i.license.is_none()).count();
    if unlicensed > 0 {
        limits.push(format!("{unlicensed} items have no licence: check before redistributing."));
    }
    if let Some(o) = l["overrides"]["unready"].as_object() {
        limits.push(format!("Frozen with items unlabeled or under review (override: {:?}); {} items left out or unreviewed.",
            o.get("reason").and_then(Value::as_str).unwrap_or(""), o.get("items").and_then(Value::as_array).map(Vec::len).unwrap_or(0)));
    }
    if let Some(o) = l["overrides"]["leakage"].as_object() {
        limits.push(format!("Frozen despite {} leakage pairs (override: {:?}).",
            o.get("pairs").and_then(Value::as_array).map(Vec::len).unwrap_or(0), o.get("reason").and_then(Value::as_str).unwrap_or("")));
    }
    if let Some(left) = l["filters"]["left_out"].as_object().filter(|m| !m.is_empty()) {
        limits.push(format!("Left out by the licence/source filter: {}.",
            left.iter().map(|(k, v)| format!("{v} ({k})")).collect::<Vec<_>>().join(", ")));
    }
    limits.push(format!(
        "The leakage check (exact and near duplicates, Jaccard ≥ {} over word 3-grams) compared the release with {} items that can end up in training; images by content and by perceptual hash (dHash, at most 6 of 64 bits apart).",
        l["leakage"]["threshold"], l["leakage"]["pool_items"]
    ));
    for x in limits {
        s.push_str(&format!("- {x}\n"));
    }
    s.push('\n');

    // Licences and sources.
    s.push_str("## Licences and sources\n\n| licence | items |\n|---|---:|\n");
    for (k, n) in counts(items.iter().map(|i| i.license.as_deref().unwrap_or("(none)"))) {
        s.push_str(&format!("| {k} | {n} |\n"));
    }
    s.push_str("\n| source | items |\n|---|---:|\n");
    for (k, n) in counts(items.iter().map(|i| i.source.as_deref().unwrap_or("(none)"))) {
        s.push_str(&format!("| {k} | {n} |\n"));
    }
    s.push_str(&format!(
        "\nFrozen by {} at {} with Mirrorset {}.\n",
        l["frozen_by"]["username"].as_str().unwrap_or("?"),
        crate::export::timestamp(l["frozen_at"].as_i64().unwrap_or(0)),
        l["app_version"].as_str().unwrap_or("?")
    ));
    s
}

/// Label Studio JSON: one task per item, its final label as one annotation.
pub fn label_studio(items: &[ReleaseItem]) -> Vec<u8> {
    let tasks: Vec<Value> = items
        .iter()
        .map(|i| {
            let by = match i.provenance["source"].as_str() {
                Some("adjudicated") => i.provenance["by"].as_str().unwrap_or("reviewer"),
                Some(other) => other,
                None => "release",
            };
            crate::label_studio::task_json(&crate::label_studio::OutTask {
                id: i.item_id,
                external_id: i.external_id.as_deref(),
                text: i.text.as_deref().unwrap_or(""),
                meta: &i.meta,
                annotations: vec![(by, &i.labels, 0)],
            })
        })
        .collect();
    serde_json::to_vec_pretty(&tasks).unwrap_or_default()
}

fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Every file of the release, paths relative to the archive's root, manifest last.
pub fn files(info: &ReleaseInfo<'_>, items: &[ReleaseItem]) -> Vec<(String, Vec<u8>)> {
    let mut files = vec![
        ("README.md".to_string(), card(info, items).into_bytes()),
        ("release.jsonl".to_string(), jsonl(items)),
        ("release.csv".to_string(), csv(items)),
        ("label_studio.json".to_string(), label_studio(items)),
        (
            "label_studio_config.xml".to_string(),
            crate::label_studio::label_config(&info.labels(items), info.multi_label()).into_bytes(),
        ),
        ("lineage.json".to_string(), serde_json::to_vec_pretty(info.lineage).unwrap_or_default()),
    ];
    files.extend(hf_data(info, items));
    let manifest = json!({
        "name": info.name,
        "version": info.version,
        "content_hash": info.content_hash,
        "hash": "SHA-256 of the canonical lines of release.jsonl's items (see README: Releases)",
        "items": items.len(),
        "splits": counts(items.iter().map(|i| i.split.as_str())),
        "files": files.iter().map(|(p, b)| (p.clone(), Value::String(sha256_hex(b)))).collect::<serde_json::Map<_, _>>(),
    });
    files.push(("manifest.json".to_string(), serde_json::to_vec_pretty(&manifest).unwrap_or_default()));
    files
}

/// The release as a zip archive (deflated); its root is the Hugging Face folder.
pub fn zip(info: &ReleaseInfo<'_>, items: &[ReleaseItem]) -> std::io::Result<Vec<u8>> {
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (path, bytes) in files(info, items) {
        w.start_file(path, opts).map_err(std::io::Error::other)?;
        w.write_all(&bytes)?;
    }
    Ok(w.finish().map_err(std::io::Error::other)?.into_inner())
}

/// Parses `release.jsonl` rows back into items (the fields the hash covers, and the rest).
pub fn read_jsonl(text: &str) -> Result<Vec<ReleaseItem>, String> {
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(n, line)| {
            let v: Value = serde_json::from_str(line).map_err(|e| format!("release.jsonl line {}: {e}", n + 1))?;
            let s = |k: &str| v[k].as_str().map(String::from);
            Ok(ReleaseItem {
                item_id: v["item_id"].as_i64().unwrap_or(0),
                external_id: s("id"),
                kind: s("kind").unwrap_or_default(),
                text: s("text"),
                image_sha256: s("image_sha256"),
                meta: v["meta"].as_object().cloned().unwrap_or_default(),
                weight: v["weight"].as_f64().ok_or_else(|| format!("release.jsonl line {}: no weight", n + 1))?,
                source: s("source"),
                license: s("license"),
                labels: serde_json::from_value(v["labels"].clone()).map_err(|e| format!("release.jsonl line {}: labels: {e}", n + 1))?,
                provenance: v["provenance"].clone(),
                n_labels: v["n_labels"].as_i64().unwrap_or(0),
                split: s("split").unwrap_or_default(),
            })
        })
        .collect()
}

/// Checks an unpacked release: every file the manifest lists has its SHA-256, and the content
/// hash recomputed from `release.jsonl` equals the manifest's. Returns the hash.
pub fn verify(dir: &Path) -> Result<String, String> {
    let read = |p: &str| std::fs::read(dir.join(p)).map_err(|e| format!("{}: {e}", dir.join(p).display()));
    let manifest: Value = serde_json::from_slice(&read("manifest.json")?).map_err(|e| format!("manifest.json: {e}"))?;
    let expected = manifest["content_hash"].as_str().ok_or("manifest.json has no content_hash")?.to_string();
    let mut problems = Vec::new();
    for (path, sha) in manifest["files"].as_object().ok_or("manifest.json has no files")? {
        match read(path) {
            Ok(bytes) if Some(sha256_hex(&bytes).as_str()) == sha.as_str() => {}
            Ok(_) => problems.push(format!("{path}: SHA-256 differs from the manifest")),
            Err(e) => problems.push(e),
        }
    }
    let text = String::from_utf8(read("release.jsonl")?).map_err(|_| "release.jsonl is not UTF-8".to_string())?;
    let actual = content_hash(&read_jsonl(&text)?);
    if actual != expected {
        problems.push(format!("content hash {actual} differs from the manifest's {expected}"));
    }
    if problems.is_empty() {
        Ok(actual)
    } else {
        Err(problems.join("\n"))
    }
}
