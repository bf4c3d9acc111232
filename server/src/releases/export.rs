//! A release's files: JSONL and CSV (one row per item with its final label, provenance and
//! split), the Hugging Face datasets layout (`data/<split>.jsonl` and a `README.md` whose YAML
//! front matter `datasets.load_dataset(folder)` reads, and whose body is the dataset card),
//! Label Studio JSON (one task per item, the final label as its annotation), and
//! `manifest.json` with the content hash and every file's SHA-256. `super::archive` puts them
//! all in one archive whose root is the Hugging Face folder; `verify` checks an unpacked one.
//!
//! Memory: every file is written item by item from an `ItemSource` (a slice, or a database
//! cursor in the API), and the card from `ReleaseStats` gathered in one pass. So exporting a
//! 100,000-item release never holds the release, or any of its files, in memory (docs/bench.md,
//! the releases benchmark).
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
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

/// What the card needs of the items, gathered in one pass (`add`).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReleaseStats {
    pub items: u64,
    pub splits: BTreeMap<String, u64>,
    /// Label names in the order first seen.
    pub labels_seen: Vec<String>,
    pub provenance: BTreeMap<String, usize>,
    pub licences: BTreeMap<String, usize>,
    pub sources: BTreeMap<String, usize>,
    pub unlicensed: u64,
}

impl ReleaseStats {
    pub fn add(&mut self, i: &ReleaseItem) {
        self.items += 1;
        *self.splits.entry(i.split.clone()).or_default() += 1;
        for l in &i.labels {
            if !self.labels_seen.contains(l) {
                self.labels_seen.push(l.clone());
            }
        }
        let p = i.provenance_source();
        *self.provenance.entry(if p.is_empty() { "?".into() } else { p }).or_default() += 1;
        *self.licences.entry(i.license.clone().unwrap_or_else(|| "(none)".into())).or_default() += 1;
        *self.sources.entry(i.source.clone().unwrap_or_else(|| "(none)".into())).or_default() += 1;
        self.unlicensed += i.license.is_none() as u64;
    }

    pub fn of(items: &[ReleaseItem]) -> ReleaseStats {
        let mut s = ReleaseStats::default();
        for i in items {
            s.add(i);
        }
        s
    }

    fn split_count(&self, split: &str) -> u64 {
        self.splits.get(split).copied().unwrap_or(0)
    }
}

/// The release's items, one pass at a time (all of them, or one split's, in canonical order),
/// so the files can be written from a database cursor without holding the release.
pub trait ItemSource {
    fn each(&mut self, split: Option<&str>, f: &mut dyn FnMut(&ReleaseItem) -> io::Result<()>) -> io::Result<()>;

    /// All items, each handed over (the zip's reader passes them to other threads); a source
    /// that reads rows anyway gives them without a copy.
    fn each_owned(&mut self, f: &mut dyn FnMut(ReleaseItem) -> io::Result<()>) -> io::Result<()> {
        self.each(None, &mut |i| f(i.clone()))
    }
}

impl ItemSource for &[ReleaseItem] {
    fn each(&mut self, split: Option<&str>, f: &mut dyn FnMut(&ReleaseItem) -> io::Result<()>) -> io::Result<()> {
        for i in self.iter().filter(|i| split.is_none_or(|s| i.split == s)) {
            f(i)?;
        }
        Ok(())
    }
}

impl ReleaseInfo<'_> {
    /// The project's label names, in its order (the ClassLabel's names).
    pub fn labels(&self, stats: &ReleaseStats) -> Vec<String> {
        let mut names: Vec<String> = self.lineage["project"]["labels"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(String::from))
            .collect();
        // A label no longer in the project's list (renamed since) still needs a class.
        for l in &stats.labels_seen {
            if !names.contains(l) {
                names.push(l.clone());
            }
        }
        names
    }

    pub fn multi_label(&self) -> bool {
        self.lineage["project"]["multi_label"].as_bool().unwrap_or(false)
    }
}

/// Splits in their conventional order, then any others.
pub fn split_names(stats: &ReleaseStats) -> Vec<String> {
    let present: BTreeSet<&str> = stats.splits.keys().map(String::as_str).collect();
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
        "meta": i.meta_map(),
        "weight": i.weight,
        "source": i.source,
        "license": i.license,
        "labels": i.labels,
        "provenance": i.provenance_value(),
        "n_labels": i.n_labels,
        "split": i.split,
    })
}


/// Appends one `release.jsonl` line to `buf`. Rows are built in a buffer and written whole: a
/// serialiser writing straight into a deflate stream makes one tiny write per token, and each
/// tiny write cost a compressor call and a hash update (most of the zip export's time).
pub fn push_jsonl(i: &ReleaseItem, buf: &mut Vec<u8>) -> io::Result<()> {
    serde_json::to_writer(&mut *buf, &jsonl_row(i))?;
    buf.push(b'\n');
    Ok(())
}

/// Bytes buffered before a single-format writer hands them on.
const FLUSH_AT: usize = 256 * 1024;

/// Writes the items' rows through `row` into `w`, a buffer at a time; `head` and `tail` around.
fn write_rows(
    src: &mut dyn ItemSource,
    w: &mut dyn Write,
    head: &[u8],
    tail: &[u8],
    row: &mut dyn FnMut(&ReleaseItem, &mut Vec<u8>) -> io::Result<()>,
) -> io::Result<()> {
    let mut buf = Vec::with_capacity(FLUSH_AT + 4096);
    buf.extend_from_slice(head);
    src.each(None, &mut |i| {
        row(i, &mut buf)?;
        if buf.len() >= FLUSH_AT {
            w.write_all(&buf)?;
            buf.clear();
        }
        Ok(())
    })?;
    buf.extend_from_slice(tail);
    w.write_all(&buf)
}

pub fn write_jsonl(src: &mut dyn ItemSource, w: &mut dyn Write) -> io::Result<()> {
    write_rows(src, w, b"", b"", &mut push_jsonl)
}

pub fn jsonl(mut items: &[ReleaseItem]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = write_jsonl(&mut items, &mut out);
    out
}

pub const CSV_HEADER: [&str; 15] = [
    "item_id", "id", "kind", "text", "image_sha256", "meta", "weight", "source", "license", "labels",
    "provenance", "posterior", "n_labels", "split", "reviewed_by",
];

/// The CSV writer every CSV row goes through (all cells quoted).
pub fn csv_writer<W: Write>(w: W) -> csv::Writer<W> {
    csv::WriterBuilder::new().quote_style(csv::QuoteStyle::Always).from_writer(w)
}

/// One CSV record's cells; `labels` joined by `|`; cells that a spreadsheet would run as a
/// formula are neutralised like the project export's default (`crate::export`).
pub fn write_csv_record<W: Write>(w: &mut csv::Writer<W>, i: &ReleaseItem) -> io::Result<()> {
    let provenance = i.provenance_value();
    let weight = i.weight.to_string();
    let labels = i.labels.join("|");
    let posterior = provenance["posterior"].as_f64().map(|p| p.to_string()).unwrap_or_default();
    let n_labels = i.n_labels.to_string();
    let item_id = i.item_id.to_string();
    let cells: [&str; 15] = [
        &item_id,
        i.external_id.as_deref().unwrap_or_default(),
        &i.kind,
        i.text.as_deref().unwrap_or_default(),
        i.image_sha256.as_deref().unwrap_or_default(),
        &i.meta,
        &weight,
        i.source.as_deref().unwrap_or_default(),
        i.license.as_deref().unwrap_or_default(),
        &labels,
        provenance["source"].as_str().unwrap_or(""),
        &posterior,
        &n_labels,
        &i.split,
        provenance["by"].as_str().unwrap_or(""),
    ];
    for c in cells {
        w.write_field(neutralise_cell(c).as_bytes())?;
    }
    w.write_record(None::<&[u8]>).map_err(io::Error::other)
}

/// CSV with the same rows as the JSONL (`write_csv_record`).
pub fn write_csv(src: &mut dyn ItemSource, out: &mut dyn Write) -> io::Result<()> {
    let mut w = csv_writer(out);
    w.write_record(CSV_HEADER)?;
    src.each(None, &mut |i| write_csv_record(&mut w, i))?;
    w.flush()
}

pub fn csv(mut items: &[ReleaseItem]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = write_csv(&mut items, &mut out);
    out
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
        "meta": i.meta,
        "provenance": i.provenance_source(),
        "n_labels": i.n_labels,
    });
    if multi {
        row["labels"] = json!(i.labels.iter().map(idx).collect::<Vec<_>>());
    } else {
        row["label"] = json!(i.labels.first().map(idx).unwrap_or(0));
    }
    row
}

/// The ClassLabel names while the items pass in canonical order: the project's labels, then
/// each label no longer in the project's list (renamed since) in the order first seen. At
/// every item it is a prefix of `ReleaseInfo::labels` of the whole release, so the indices
/// `hf_row` gives are the final ones.
pub struct LabelNames(pub Vec<String>);

impl LabelNames {
    pub fn see(&mut self, i: &ReleaseItem) {
        for l in &i.labels {
            if !self.0.contains(l) {
                self.0.push(l.clone());
            }
        }
    }
}

/// Appends one `data/<split>.jsonl` line; `names` must have seen the item.
pub fn push_hf(i: &ReleaseItem, names: &LabelNames, multi: bool, buf: &mut Vec<u8>) -> io::Result<()> {
    serde_json::to_writer(&mut *buf, &hf_row(i, &names.0, multi))?;
    buf.push(b'\n');
    Ok(())
}

/// A YAML scalar: a JSON string is a valid YAML double-quoted scalar.
fn y(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

/// Licence identifiers for the front matter: the items' licences (lower case), `unknown`
/// when some item has none.
fn licences(stats: &ReleaseStats) -> Vec<String> {
    let mut set: BTreeSet<String> =
        stats.licences.keys().filter(|l| *l != "(none)").map(|l| l.to_lowercase()).collect();
    if stats.unlicensed > 0 || set.is_empty() {
        set.insert("unknown".into());
    }
    set.into_iter().collect()
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
pub fn card(info: &ReleaseInfo<'_>, stats: &ReleaseStats) -> String {
    let names = info.labels(stats);
    let multi = info.multi_label();
    let splits = split_names(stats);
    let l = info.lineage;
    let mut s = String::from("---\n");
    s.push_str(&format!("pretty_name: {}\n", y(&info.name)));
    s.push_str("license:\n");
    for lic in licences(stats) {
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
        s.push_str(&format!("  - name: {sp}\n    num_examples: {}\n", stats.split_count(sp)));
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
    for (p, n) in &stats.provenance {
        s.push_str(&format!("| {p} | {n} |\n"));
    }
    s.push('\n');

    // Size and confidence.
    s.push_str("## Size and the confidence it gives\n\n| split | items | ±95% on an accuracy near 50% |\n|---|---:|---:|\n");
    for sp in &splits {
        let n = stats.split_count(sp);
        let hw = crate::devsets::plan::half_width(0.5, n, 0.95).map(|h| format!("±{:.1} points", h * 100.0)).unwrap_or_else(|| "undefined".into());
        s.push_str(&format!("| {sp} | {n} | {hw} |\n"));
    }
    s.push('\n');

    // Known limits.
    s.push_str("## Known limits\n\n");
    let mut limits = Vec::new();
    let unlicensed = stats.unlicensed;
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
    for (k, n) in &stats.licences {
        s.push_str(&format!("| {k} | {n} |\n"));
    }
    s.push_str("\n| source | items |\n|---|---:|\n");
    for (k, n) in &stats.sources {
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


/// Label Studio JSON: one task per item, its final label as one annotation. One task a line
/// (the array written as it goes; Label Studio reads any JSON layout).
pub const LABEL_STUDIO_HEAD: &[u8] = b"[";
pub const LABEL_STUDIO_TAIL: &[u8] = b"\n]\n";

/// Appends one Label Studio task, with the separator before it (`first`: none).
pub fn push_label_studio(i: &ReleaseItem, first: bool, buf: &mut Vec<u8>) -> io::Result<()> {
    let provenance = i.provenance_value();
    let by = match provenance["source"].as_str() {
        Some("adjudicated") => provenance["by"].as_str().unwrap_or("reviewer"),
        Some(other) => other,
        None => "release",
    };
    let meta = i.meta_map();
    let task = crate::label_studio::task_json(&crate::label_studio::OutTask {
        id: i.item_id,
        external_id: i.external_id.as_deref(),
        text: i.text.as_deref().unwrap_or(""),
        meta: &meta,
        annotations: vec![(by, &i.labels, 0)],
    });
    buf.extend_from_slice(if first { b"\n" } else { b",\n" });
    serde_json::to_writer(&mut *buf, &task).map_err(io::Error::from)
}

pub fn write_label_studio(src: &mut dyn ItemSource, w: &mut dyn Write) -> io::Result<()> {
    let mut first = true;
    write_rows(src, w, LABEL_STUDIO_HEAD, LABEL_STUDIO_TAIL, &mut |i, buf| {
        push_label_studio(i, first, buf)?;
        first = false;
        Ok(())
    })
}

pub fn label_studio(mut items: &[ReleaseItem]) -> Vec<u8> {
    let mut out = Vec::new();
    let _ = write_label_studio(&mut items, &mut out);
    out
}

pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The manifest: the content hash, the counts, and every other file's SHA-256.
pub fn manifest_json(info: &ReleaseInfo<'_>, stats: &ReleaseStats, hashes: serde_json::Map<String, Value>) -> Value {
    json!({
        "name": info.name,
        "version": info.version,
        "content_hash": info.content_hash,
        "hash": "SHA-256 of the canonical lines of release.jsonl's items (see README: Releases)",
        "items": stats.items,
        "splits": stats.splits,
        "files": hashes,
    })
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
                meta: super::canonical_meta(&v["meta"].to_string()),
                weight: v["weight"].as_f64().ok_or_else(|| format!("release.jsonl line {}: no weight", n + 1))?,
                source: s("source"),
                license: s("license"),
                labels: serde_json::from_value(v["labels"].clone()).map_err(|e| format!("release.jsonl line {}: labels: {e}", n + 1))?,
                provenance: v["provenance"].to_string(),
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
