//! Dev-set releases (issue 9): frozen versions of a dev set. This module holds the domain
//! logic as plain functions over plain data; the API gathers the data (`store::releases`) and
//! calls them, and so does the CLI's `release verify` (on exported files).
//!
//! - `leakage`: near-duplicate search (MinHash/LSH) and image hashes;
//! - `splits`: splits that keep groups whole and strata balanced;
//! - `freeze` (here): readiness, filters, splits, leakage pairs, the content hash;
//! - `export`: JSONL, CSV, the Hugging Face layout with its dataset card, Label Studio JSON,
//!   the manifest and the zip; `verify` of an exported folder;
//! - `diff`: what changed between two releases.
//!
//! The content hash. A release's hash is the SHA-256 (hex) of its canonical serialisation:
//! one line per item, each the item's canonical JSON (object keys sorted at every depth, no
//! whitespace, serde_json's number formatting) of exactly these fields —
//! `external_id, image_sha256, kind, labels (sorted), license, meta, source, split, text, weight`
//! — followed by `\n`, the lines sorted bytewise. It leaves out what differs between two
//! databases holding the same data (internal item ids, who froze it, when, the provenance's
//! reviewer names) so two parties can compare their copies; everything a model is trained or
//! evaluated on is in it. The items are stored, and exported, in this order.
pub mod archive;
pub mod diff;
pub mod export;
pub mod job;
pub mod leakage;
pub mod splits;

use std::collections::{BTreeMap, HashMap, HashSet};

use app::api_types::{FreezeRequest, LeakagePair, LeakageSide, UnreadyItem};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::review::{final_label, parse_labels};
use app::api_types::FinalSource;

/// An item as the freeze reads it (a dev-set member, or a labeled pool item for train-dev).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Candidate {
    pub id: i64,
    pub external_id: Option<String>,
    pub kind: String,
    pub text: Option<String>,
    pub image_sha256: Option<String>,
    pub meta: String,
    pub weight: f64,
    pub source: Option<String>,
    pub license: Option<String>,
    pub label_count: i64,
    pub gold: Option<String>,
    pub k: i64,
    pub stratum: String,
    pub consensus: Option<String>,
    pub posterior: Option<f64>,
    pub consensus_method: Option<String>,
    pub decision: Option<String>,
    pub decided_by: Option<String>,
    pub open_reviews: i64,
}

/// One frozen item.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReleaseItem {
    pub item_id: i64,
    pub external_id: Option<String>,
    pub kind: String,
    pub text: Option<String>,
    pub image_sha256: Option<String>,
    /// The meta object as canonical JSON (`canonical_meta`). Text rather than a parsed map
    /// (and the provenance likewise): a parsed map costs about a kilobyte an item, and a
    /// release of 100,000 items freezes and exports within a bounded memory (docs/bench.md).
    pub meta: String,
    pub weight: f64,
    pub source: Option<String>,
    pub license: Option<String>,
    /// The final label set, sorted.
    pub labels: Vec<String>,
    /// Where the label came from, as compact JSON: `{"source": "adjudicated", "by"}`,
    /// `{"source": "gold"}`, `{"source": "consensus", "method", "posterior"}` or
    /// `{"source": "single_label"}`.
    pub provenance: String,
    pub n_labels: i64,
    pub split: String,
}

impl ReleaseItem {
    pub fn meta_map(&self) -> Map<String, Value> {
        parse_meta(&self.meta)
    }

    pub fn provenance_value(&self) -> Value {
        serde_json::from_str(&self.provenance).unwrap_or(Value::Null)
    }

    /// The provenance's `source` (`adjudicated`, `gold`, `consensus`, `single_label`).
    pub fn provenance_source(&self) -> String {
        self.provenance_value()["source"].as_str().unwrap_or("").to_string()
    }
}

/// A meta object's canonical JSON (keys sorted at every depth, no whitespace); anything but
/// an object is `{}`.
pub fn canonical_meta(text: &str) -> String {
    let mut out = String::new();
    canonical_json(&Value::Object(parse_meta(text)), &mut out);
    out
}

pub const SPLIT_DEV: &str = "dev";
pub const SPLIT_TEST: &str = "test";
pub const SPLIT_TRAIN_DEV: &str = "train_dev";

fn parse_meta(text: &str) -> Map<String, Value> {
    match serde_json::from_str(text) {
        Ok(Value::Object(m)) => m,
        _ => Map::new(),
    }
}

/// The final label of a candidate and its provenance (`review::final_label`'s precedence);
/// None when it has none.
pub fn final_of(c: &Candidate) -> Option<(Vec<String>, Value)> {
    let fin = final_label(
        parse_labels(c.decision.as_deref()),
        parse_labels(c.gold.as_deref()),
        parse_labels(c.consensus.as_deref()),
        c.label_count,
        c.k,
    );
    let mut labels = fin.labels?;
    labels.sort();
    let provenance = match fin.source {
        FinalSource::Adjudicated => json!({"source": "adjudicated", "by": c.decided_by}),
        FinalSource::Gold => json!({"source": "gold"}),
        FinalSource::Consensus if c.label_count <= 1 => json!({"source": "single_label"}),
        FinalSource::Consensus => {
            json!({"source": "consensus", "method": c.consensus_method, "posterior": c.posterior})
        }
        // `final_label` never gives Auto (only `final_label_or_auto` does): release labels stay human.
        FinalSource::None | FinalSource::Auto => return None,
    };
    Some((labels, provenance))
}

/// Items that block a freeze: no final label, or an open review. Sorted by item id.
pub fn unready(members: &[Candidate]) -> Vec<UnreadyItem> {
    let mut out = Vec::new();
    for c in members {
        if final_of(c).is_none() {
            out.push(UnreadyItem { item_id: c.id, external_id: c.external_id.clone(), reason: "no_final_label".into() });
        } else if c.open_reviews > 0 {
            out.push(UnreadyItem { item_id: c.id, external_id: c.external_id.clone(), reason: "open_review".into() });
        }
    }
    out
}

/// Why a candidate is left out by the licence/source filter, if it is.
pub fn filtered_out(c: &Candidate, req: &FreezeRequest) -> Option<&'static str> {
    if let Some(allowed) = &req.licenses {
        match &c.license {
            Some(l) if allowed.contains(l) => {}
            Some(_) => return Some("license_not_allowed"),
            None => return Some("no_license"),
        }
    }
    if let Some(allowed) = &req.sources {
        if !c.source.as_ref().is_some_and(|s| allowed.contains(s)) {
            return Some("source_not_allowed");
        }
    }
    None
}

/// A validated freeze request.
#[derive(Clone, Debug)]
pub struct FreezeSettings {
    pub shares: [f64; 2],
    pub seed: u64,
    pub group_by: Option<String>,
    pub train_dev_size: u64,
    pub threshold: f64,
}

pub fn validate(req: &FreezeRequest) -> Result<FreezeSettings, String> {
    let dev = req.dev_share.unwrap_or(0.5);
    let test = req.test_share.unwrap_or(0.5);
    if !(dev.is_finite() && test.is_finite() && dev > 0.0 && test > 0.0) {
        return Err("dev_share and test_share must be positive numbers".into());
    }
    let threshold = req.jaccard_threshold.unwrap_or(0.8);
    if !(threshold > 0.0 && threshold <= 1.0) {
        return Err("jaccard_threshold must be above 0 and at most 1".into());
    }
    for (name, reason) in [("override_unready", &req.override_unready), ("override_leakage", &req.override_leakage)] {
        if let Some(r) = reason {
            if r.trim().is_empty() || r.chars().count() > 1000 {
                return Err(format!("{name} needs a reason of 1 to 1000 characters"));
            }
        }
    }
    if let Some(g) = &req.group_by {
        if g.trim().is_empty() {
            return Err("group_by names a meta attribute".into());
        }
    }
    Ok(FreezeSettings {
        shares: [dev, test],
        seed: req.seed as u64,
        group_by: req.group_by.clone(),
        train_dev_size: req.train_dev_size.unwrap_or(0),
        threshold,
    })
}

/// The group of an item: its `group_by` meta value as text (None: a group of its own).
fn group_of(meta: &Map<String, Value>, attr: &Option<String>) -> Option<String> {
    let v = meta.get(attr.as_deref()?)?;
    match v {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

/// Moves a candidate's fields into a release item (the candidate is consumed: a 100,000-item
/// freeze holds one copy of the texts, not two).
fn to_item(c: Candidate, labels: Vec<String>, provenance: Value, split: &str) -> ReleaseItem {
    ReleaseItem {
        item_id: c.id,
        external_id: c.external_id,
        kind: c.kind,
        text: c.text,
        image_sha256: c.image_sha256,
        meta: canonical_meta(&c.meta),
        weight: c.weight,
        source: c.source,
        license: c.license,
        labels,
        provenance: provenance.to_string(),
        n_labels: c.label_count,
        split: split.to_string(),
    }
}

/// The release's items with their splits: members with a final label (dev/test, grouped and
/// stratified by the member's stratum, seeded), then `train_dev_size` labeled pool items drawn
/// with the same seed. Returned in canonical (hash) order.
///
/// Memory: a 100,000-item freeze must stay within bounds (docs/bench.md, "Releases at a
/// million"), so each candidate is moved into its release item as it is read (no second list
/// of candidates with their labels), the canonical order is found without writing the
/// canonical lines (`canonical_order`), and the items are put in that order in place.
pub fn build_items(members: Vec<Candidate>, pool: Vec<Candidate>, s: &FreezeSettings) -> Result<Vec<ReleaseItem>, String> {
    let mut split_items: Vec<splits::SplitItem> = Vec::new();
    let mut items: Vec<ReleaseItem> = members
        .into_iter()
        .filter_map(|c| {
            let (labels, provenance) = final_of(&c)?;
            split_items.push(splits::SplitItem { stratum: c.stratum.clone(), group: group_of(&parse_meta(&c.meta), &s.group_by) });
            Some(to_item(c, labels, provenance, SPLIT_DEV))
        })
        .collect();
    let assigned = splits::grouped_stratified_split(&split_items, &s.shares, s.seed).map_err(|e| e.reason)?;
    drop(split_items);
    for (item, split) in items.iter_mut().zip(assigned) {
        if split != 0 {
            item.split = [SPLIT_DEV, SPLIT_TEST][split].to_string();
        }
    }
    if s.train_dev_size > 0 {
        let mut candidates: Vec<(Candidate, Vec<String>, Value)> =
            pool.into_iter().filter_map(|c| final_of(&c).map(|(l, p)| (c, l, p))).collect();
        if (candidates.len() as u64) < s.train_dev_size {
            return Err(format!(
                "train_dev_size is {} but the training pool has {} labeled items",
                s.train_dev_size,
                candidates.len()
            ));
        }
        crate::stats::rng::SeededRng::new(s.seed ^ 0x7472_6169_6e5f_6465).shuffle(&mut candidates);
        candidates.truncate(s.train_dev_size as usize);
        items.extend(candidates.into_iter().map(|(c, l, p)| to_item(c, l, p, SPLIT_TRAIN_DEV)));
    }
    let order = canonical_order(&items);
    permute_in_place(&mut items, &order);
    Ok(items)
}

/// The positions of `items` sorted by their canonical lines (`canonical_line`), without
/// making a line per item (a 100,000-item release's lines are some 60 MB).
///
/// A line is the fixed key names with the fields' JSON values between them, in key order, and
/// every value before `text` (a string or null, a label array, a meta object) is prefix-free:
/// no value is a proper prefix of another of its field. So two lines compare as the tuples of
/// their values compare, and the values before `text` — short — are written once, one
/// after the other, into one buffer (the "head"). Equal heads are settled by the texts' JSON
/// (compared byte by byte as escaped, without writing it), then by `weight` and the closing
/// brace. `canonical_order_is_the_order_of_the_lines` checks this against sorting the lines.
pub fn canonical_order(items: &[ReleaseItem]) -> Vec<u32> {
    let mut heads = String::new();
    let mut ends: Vec<usize> = Vec::with_capacity(items.len());
    for i in items {
        canonical_head_into(i, &mut heads);
        ends.push(heads.len());
    }
    let head = |k: usize| &heads.as_bytes()[if k == 0 { 0 } else { ends[k - 1] }..ends[k]];
    let mut order: Vec<u32> = (0..items.len() as u32).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (a as usize, b as usize);
        head(a).cmp(head(b)).then_with(|| json_string_cmp(items[a].text.as_deref(), items[b].text.as_deref())).then_with(|| {
            let tail = |w: f64| format!("{}}}", Value::from(w));
            tail(items[a].weight).cmp(&tail(items[b].weight))
        })
    });
    order
}

/// The order of two `text` values' JSON (`null`, or the string with serde_json's escapes
/// between quotes) compared as bytes, without writing them. JSON strings are prefix-free, so
/// the closing quote settles a text that is the start of the other.
fn json_string_cmp(a: Option<&str>, b: Option<&str>) -> std::cmp::Ordering {
    match (a, b) {
        (None, None) => std::cmp::Ordering::Equal,
        // `"…` against `null`: '"' (0x22) sorts before 'n'.
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (Some(a), Some(b)) => quoted(a).cmp(quoted(b)),
    }
}

fn quoted(s: &str) -> impl Iterator<Item = u8> + '_ {
    json_escaped(s).chain(std::iter::once(b'"'))
}

/// The bytes serde_json writes for a string between its quotes: `"` and `\` escaped with a
/// backslash, control characters as `\b \t \n \f \r` or `\u00xx`, everything else as is.
fn json_escaped(s: &str) -> impl Iterator<Item = u8> + '_ {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    s.bytes().flat_map(|b| {
        let mut out = [b, 0, 0, 0, 0, 0];
        let n = match b {
            b'"' | b'\\' => {
                out = [b'\\', b, 0, 0, 0, 0];
                2
            }
            0x08 => escape2(&mut out, b'b'),
            0x09 => escape2(&mut out, b't'),
            0x0A => escape2(&mut out, b'n'),
            0x0C => escape2(&mut out, b'f'),
            0x0D => escape2(&mut out, b'r'),
            0x00..=0x1F => {
                out = [b'\\', b'u', b'0', b'0', HEX[(b >> 4) as usize], HEX[(b & 0xF) as usize]];
                6
            }
            _ => 1,
        };
        out.into_iter().take(n)
    })
}

fn escape2(out: &mut [u8; 6], letter: u8) -> usize {
    *out = [b'\\', letter, 0, 0, 0, 0];
    2
}

/// Reorders `items` so that position k holds what was at `order[k]` (a permutation), in
/// place: one cycle at a time, each element moved by swaps (no second list of items).
fn permute_in_place<T>(items: &mut [T], order: &[u32]) {
    let mut placed = vec![false; items.len()];
    for start in 0..items.len() {
        if placed[start] {
            continue;
        }
        let mut k = start;
        loop {
            placed[k] = true;
            let src = order[k] as usize;
            if src == start {
                break;
            }
            items.swap(k, src);
            k = src;
        }
    }
}

// ---- the content hash ----------------------------------------------------------------------

/// JSON with object keys sorted at every depth and no whitespace.
pub fn canonical_json(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical_json(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical_json(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// The hashed fields of an item (see the module comment), canonical: the object's keys are
/// written in their sorted order, and `meta` is already canonical JSON (`canonical_meta`).
pub fn canonical_line(i: &ReleaseItem) -> String {
    let mut out = String::new();
    canonical_line_into(i, &mut out);
    out
}

/// The keys of a canonical line, in their (sorted) order.
const CANONICAL_KEYS: [&str; 10] =
    ["external_id", "image_sha256", "kind", "labels", "license", "meta", "source", "split", "text", "weight"];

/// How many of `CANONICAL_KEYS` come before `text`: `canonical_order`'s head.
const HEAD_FIELDS: usize = 8;

/// The JSON values of an item's fields before `text`, in `CANONICAL_KEYS`' order; `meta` is
/// already canonical JSON (`canonical_meta`) and the labels are sorted.
fn canonical_head_values(i: &ReleaseItem) -> [String; HEAD_FIELDS] {
    let mut labels: Vec<&str> = i.labels.iter().map(String::as_str).collect();
    labels.sort();
    let j = |v: &Option<String>| Value::from(v.as_deref()).to_string();
    [
        j(&i.external_id),
        j(&i.image_sha256),
        Value::from(i.kind.as_str()).to_string(),
        Value::from(labels).to_string(),
        j(&i.license),
        i.meta.clone(),
        j(&i.source),
        Value::from(i.split.as_str()).to_string(),
    ]
}

/// `canonical_line`, appended to `out`.
pub fn canonical_line_into(i: &ReleaseItem, out: &mut String) {
    let tail = [Value::from(i.text.as_deref()).to_string(), Value::from(i.weight).to_string()];
    out.push('{');
    for (k, (key, value)) in CANONICAL_KEYS.iter().zip(canonical_head_values(i).into_iter().chain(tail)).enumerate() {
        if k > 0 {
            out.push(',');
        }
        out.push('"');
        out.push_str(key);
        out.push_str("\":");
        out.push_str(&value);
    }
    out.push('}');
}

/// The JSON values of the fields before `text` in a canonical line, one after the other
/// without their keys (`canonical_order`'s sort key; the texts are compared apart, unwritten).
fn canonical_head_into(i: &ReleaseItem, out: &mut String) {
    for value in canonical_head_values(i) {
        out.push_str(&value);
    }
}

/// SHA-256 (hex) of the items' canonical lines, sorted (see the module comment).
pub fn content_hash(items: &[ReleaseItem]) -> String {
    let mut lines: Vec<String> = items.iter().map(canonical_line).collect();
    lines.sort();
    let mut h = Sha256::new();
    for l in &lines {
        h.update(l.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())
}

/// `content_hash` of items already in canonical order (`build_items`' order): each line is
/// made, checked against the one before and hashed, instead of all of them held and sorted
/// (some 55 MB for a 100,000-item release, on top of the items, at the freeze's memory peak).
/// Items out of order get `content_hash`, so the result never depends on the order.
pub fn content_hash_sorted(items: &[ReleaseItem]) -> String {
    let mut h = Sha256::new();
    let (mut prev, mut line) = (String::new(), String::new());
    for i in items {
        line.clear();
        canonical_line_into(i, &mut line);
        if line < prev {
            return content_hash(items);
        }
        h.update(line.as_bytes());
        h.update(b"\n");
        std::mem::swap(&mut prev, &mut line);
    }
    hex::encode(h.finalize())
}

// ---- leakage ---------------------------------------------------------------------------------

/// Text normalised for the exact-duplicate check: lower case, runs of whitespace as one space,
/// trimmed. (Byte-identical texts cannot both be in a project: `items` is unique on its
/// content hash; a copy that differs in case or spacing is still the same text to a model.)
/// Lower case is taken character by character (as `exact_key` does, so equal normalised
/// texts always share a key).
pub fn normalised(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for (n, w) in text.split_whitespace().enumerate() {
        if n > 0 {
            out.push(' ');
        }
        out.extend(w.chars().flat_map(char::to_lowercase));
    }
    out
}

fn snippet(text: Option<&str>) -> Option<String> {
    text.map(|t| t.chars().take(160).collect())
}

/// The key of a text for the exact-duplicate check: a 64-bit hash of its normalised form
/// (`normalised`), computed word by word without building that string (a million pool texts
/// pass through here); a match is confirmed on the normalised texts themselves.
fn exact_key(text: &str) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut feed = |b: u8| {
        h ^= b as u64;
        h = h.wrapping_mul(0x100_0000_01b3);
    };
    let mut buf = [0u8; 4];
    for (n, w) in text.split_whitespace().enumerate() {
        if n > 0 {
            feed(b' ');
        }
        for c in w.chars().flat_map(char::to_lowercase) {
            c.encode_utf8(&mut buf).bytes().for_each(&mut feed);
        }
    }
    // FNV's low bits are weak; the key's top bits pick the `KeyIndex` run.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// The leakage check: the release's items indexed once; pairs between its splits at once,
/// pool items streamed past it one at a time (`check_pool_item`). The indexes hold hashes and
/// positions, not copies of the texts: a 100,000-item release indexes in some 40 MB.
pub struct LeakageCheck<'a> {
    items: &'a [ReleaseItem],
    index: leakage::NearDuplicateIndex,
    exact: leakage::KeyIndex,
    images: HashMap<&'a str, Vec<usize>>,
    /// The dHashes of the release's images whose thumbnail could be read.
    image_index: leakage::ImageIndex,
    release_ids: HashSet<i64>,
    pub pairs: Vec<LeakagePair>,
    pub pool_items: u64,
}

/// Images whose 64-bit dHashes differ in at most this many bits are near-duplicates: a
/// resized or re-encoded copy differs in about 4 or fewer (`leakage`'s test), unrelated images
/// in well over 16.
pub const IMAGE_HAMMING: u32 = 6;

impl<'a> LeakageCheck<'a> {
    /// `dhash_of` gives an image's perceptual hash by its SHA-256 (None when it cannot be read:
    /// that image is then compared by exact content only).
    pub fn new(items: &'a [ReleaseItem], threshold: f64, dhash_of: &dyn Fn(&str) -> Option<u64>) -> Self {
        let cfg = leakage::MinHashConfig { threshold, ..Default::default() };
        let mut index = leakage::NearDuplicateIndex::new(cfg);
        let mut exact = Vec::new();
        let mut images: HashMap<&str, Vec<usize>> = HashMap::new();
        let mut image_hashes = Vec::new();
        for (pos, it) in items.iter().enumerate() {
            if let Some(t) = &it.text {
                index.insert(pos as u64, t);
                exact.push((leakage::KeyIndex::short(exact_key(t)), pos as u32));
            }
            if let Some(sha) = &it.image_sha256 {
                images.entry(sha.as_str()).or_default().push(pos);
                if let Some(h) = dhash_of(sha) {
                    image_hashes.push((pos as u32, h));
                }
            }
        }
        index.finish();
        let release_ids = items.iter().map(|i| i.item_id).collect();
        let mut check = LeakageCheck {
            items,
            index,
            exact: leakage::KeyIndex::build(exact),
            images,
            image_index: leakage::ImageIndex::new(image_hashes, IMAGE_HAMMING),
            release_ids,
            pairs: Vec::new(),
            pool_items: 0,
        };
        check.between_splits();
        check
    }

    fn side(&self, pos: usize) -> LeakageSide {
        let it = &self.items[pos];
        LeakageSide { item_id: it.item_id, external_id: it.external_id.clone(), split: it.split.clone(), snippet: snippet(it.text.as_deref()) }
    }

    /// Positions of the release's texts equal to `text` once normalised.
    fn exact_matches(&self, text: &str) -> Vec<usize> {
        let mut found = self.exact.get(exact_key(text)).map(|p| p as usize).peekable();
        if found.peek().is_none() {
            return Vec::new();
        }
        let n = normalised(text);
        found.filter(|&p| self.items[p].text.as_deref().is_some_and(|t| normalised(t) == n)).collect()
    }

    /// Pairs of the release's own items in different splits.
    fn between_splits(&mut self) {
        let mut seen: HashSet<(usize, usize)> = HashSet::new();
        let mut found = Vec::new();
        for (a, it) in self.items.iter().enumerate() {
            let mut add = |b: usize, kind: &str, j: f64| {
                let (x, y) = (a.min(b), a.max(b));
                if x != y && self.items[x].split != self.items[y].split && seen.insert((x, y)) {
                    found.push((x, y, kind.to_string(), j));
                }
            };
            if let Some(t) = &it.text {
                for b in self.exact_matches(t) {
                    add(b, "exact", 1.0);
                }
                for m in self.index.query(t) {
                    add(m.id as usize, "near", m.jaccard);
                }
            }
            if let Some(sha) = &it.image_sha256 {
                for &b in &self.images[sha.as_str()] {
                    add(b, "exact", 1.0);
                }
            }
        }
        // Images: each hash against the candidates that share a band of bits with it.
        for &(x, hx) in self.image_index.hashes() {
            for (y, d) in self.image_index.near(hx) {
                let (x, y) = (x.min(y) as usize, x.max(y) as usize);
                if x != y && self.items[x].split != self.items[y].split && seen.insert((x, y)) {
                    found.push((x, y, "near".to_string(), 1.0 - d as f64 / 64.0));
                }
            }
        }
        for (x, y, kind, jaccard) in found {
            let pair = LeakagePair { kind, jaccard, a: self.side(x), b: self.side(y) };
            self.pairs.push(pair);
        }
    }

    /// One item of the training pool (in no dev set). Items of the release itself (its
    /// train-dev split) are not pool items here: they are checked between splits.
    /// `image_dhash`: the pool item's image's perceptual hash, when it has a readable one.
    pub fn check_pool_item(
        &mut self,
        id: i64,
        external_id: Option<String>,
        text: Option<String>,
        image: Option<String>,
        image_dhash: Option<u64>,
    ) {
        if self.release_ids.contains(&id) {
            return;
        }
        self.pool_items += 1;
        let found = self.pool_hits(id, &external_id, text.as_deref(), image.as_deref(), image_dhash);
        self.pairs.extend(found);
    }

    /// A batch of pool items, checked on `threads` threads (the index is only read), with the
    /// pairs appended in the batch's order: the same pairs, in the same order, as checking
    /// the items one by one.
    pub fn check_pool_batch(
        &mut self,
        batch: Vec<crate::store::releases::PoolItem>,
        dhash_of: &(dyn Fn(&str) -> Option<u64> + Sync),
        threads: usize,
    ) {
        let batch: Vec<_> = batch.into_iter().filter(|(id, ..)| !self.release_ids.contains(id)).collect();
        self.pool_items += batch.len() as u64;
        let per = batch.len().div_ceil(threads.max(1)).max(1);
        let this = &*self;
        let found: Vec<Vec<LeakagePair>> = std::thread::scope(|scope| {
            let handles: Vec<_> = batch
                .chunks(per)
                .map(|chunk| {
                    scope.spawn(move || {
                        let mut out = Vec::new();
                        for (id, ext, text, image) in chunk {
                            let dhash = image.as_deref().and_then(dhash_of);
                            out.extend(this.pool_hits(*id, ext, text.as_deref(), image.as_deref(), dhash));
                        }
                        out
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap_or_default()).collect()
        });
        for f in found {
            self.pairs.extend(f);
        }
    }

    /// The pairs one pool item makes with the release's items.
    fn pool_hits(
        &self,
        id: i64,
        external_id: &Option<String>,
        text: Option<&str>,
        image: Option<&str>,
        image_dhash: Option<u64>,
    ) -> Vec<LeakagePair> {
        let mut hits: BTreeMap<usize, (String, f64)> = BTreeMap::new();
        if let Some(t) = text {
            for p in self.exact_matches(t) {
                hits.insert(p, ("exact".into(), 1.0));
            }
            for m in self.index.query(t) {
                hits.entry(m.id as usize).or_insert(("near".into(), m.jaccard));
            }
        }
        if let Some(sha) = image {
            for &p in self.images.get(sha).into_iter().flatten() {
                hits.insert(p, ("exact".into(), 1.0));
            }
        }
        if let Some(h) = image_dhash {
            for (p, d) in self.image_index.near(h) {
                hits.entry(p as usize).or_insert(("near".into(), 1.0 - d as f64 / 64.0));
            }
        }
        hits.into_iter()
            .map(|(p, (kind, jaccard))| {
                let b = LeakageSide { item_id: id, external_id: external_id.clone(), split: "pool".into(), snippet: snippet(text) };
                LeakagePair { kind, jaccard, a: self.side(p), b }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand(id: i64, text: &str, stratum: &str, meta: &str) -> Candidate {
        Candidate {
            id,
            external_id: Some(format!("x{id}")),
            kind: "text".into(),
            text: Some(text.into()),
            image_sha256: None,
            meta: meta.into(),
            weight: 1.0,
            source: None,
            license: None,
            label_count: 3,
            gold: None,
            k: 3,
            stratum: stratum.into(),
            consensus: Some("[\"pos\"]".into()),
            posterior: Some(1.0),
            consensus_method: Some("majority".into()),
            decision: None,
            decided_by: None,
            open_reviews: 0,
        }
    }

    #[test]
    fn provenance_follows_the_final_label_precedence() {
        let mut c = cand(1, "a", "s", "{}");
        assert_eq!(final_of(&c).unwrap().1, json!({"source": "consensus", "method": "majority", "posterior": 1.0}));
        c.gold = Some("[\"neg\"]".into());
        assert_eq!(final_of(&c).unwrap(), (vec!["neg".to_string()], json!({"source": "gold"})));
        c.decision = Some("[\"pos\"]".into());
        c.decided_by = Some("lead".into());
        assert_eq!(final_of(&c).unwrap().1, json!({"source": "adjudicated", "by": "lead"}));
        let mut single = cand(2, "b", "s", "{}");
        single.label_count = 1;
        single.k = 1;
        assert_eq!(final_of(&single).unwrap().1, json!({"source": "single_label"}));
        let mut short = cand(3, "c", "s", "{}");
        short.label_count = 2;
        assert!(final_of(&short).is_none());
        assert_eq!(unready(&[short.clone()])[0].reason, "no_final_label");
        let mut open = cand(4, "d", "s", "{}");
        open.open_reviews = 1;
        assert_eq!(unready(&[open, cand(5, "e", "s", "{}")]).len(), 1);
    }

    /// The hash of fixed items is pinned (the expected value was computed independently, with
    /// Python's hashlib over the lines the module comment defines): a change to the canonical
    /// form (a field, the key order, number formatting) changes every published hash and must
    /// be deliberate.
    #[test]
    fn content_hash_is_pinned_and_order_free() {
        let items: Vec<ReleaseItem> = (1..=4)
            .map(|i| {
                let mut it = item(i, &format!("text {i}"));
                it.external_id = Some(format!("x{i}"));
                it.meta = canonical_meta(&format!("{{\"b\": {i}, \"a\": \"x\"}}"));
                it.labels = vec!["pos".into(), "neg".into()];
                it.split = if i % 2 == 1 { "dev" } else { "test" }.into();
                it
            })
            .collect();
        assert_eq!(
            canonical_line(&items[0]),
            r#"{"external_id":"x1","image_sha256":null,"kind":"text","labels":["neg","pos"],"license":null,"meta":{"a":"x","b":1},"source":null,"split":"dev","text":"text 1","weight":1.0}"#
        );
        let mut reversed = items.clone();
        reversed.reverse();
        assert_eq!(content_hash(&items), content_hash(&reversed));
        assert_eq!(content_hash(&items), "2f9cdb508b4cc0b9b6b8912241519ebed2f1946333b74d6025fe5df4109797db");
        // Provenance and item ids are not part of it.
        let mut other = items.clone();
        other[0].item_id = 99;
        other[0].provenance = json!({"source": "adjudicated", "by": "someone"}).to_string();
        assert_eq!(content_hash(&other), content_hash(&items));
        other[0].split = "test".into();
        assert_ne!(content_hash(&other), content_hash(&items));
    }

    /// The freeze hashes its items in their canonical order line by line (`content_hash_sorted`);
    /// it must give `content_hash` whatever order it is handed.
    #[test]
    fn the_streamed_hash_of_sorted_items_equals_the_sorted_hash() {
        let items: Vec<ReleaseItem> = (1..=50)
            .map(|i| ReleaseItem { external_id: Some(format!("e{}", (i * 37) % 50)), split: ["dev", "test"][i as usize % 2].into(), ..item(i, &format!("text {i}")) })
            .collect();
        let mut sorted = items.clone();
        sorted.sort_by_key(canonical_line);
        assert_ne!(sorted, items);
        assert_eq!(content_hash_sorted(&sorted), content_hash(&items));
        assert_eq!(content_hash_sorted(&items), content_hash(&items), "out of order: falls back to sorting");
    }

    /// Strings that exercise every escape serde_json makes and texts that start one another.
    fn tricky_text() -> impl proptest::strategy::Strategy<Value = Option<String>> {
        use proptest::prelude::*;
        prop_oneof![
            1 => Just(None),
            6 => proptest::collection::vec(
                prop_oneof![Just("a"), Just("ab"), Just("\""), Just("\\"), Just("\n"), Just("\u{1}"), Just("\u{1f}"),
                    Just("\u{7f}"), Just("é"), Just("😀"), Just(" "), Just("z"), Just("\t"), Just("/")],
                0..6
            )
            .prop_map(|parts| Some(parts.concat())),
        ]
    }

    proptest::proptest! {
        /// `canonical_order` sorts as the canonical lines sort, with ties on every field
        /// before `text` (no external ids, few metas and labels) so the texts and weights
        /// decide.
        #[test]
        fn canonical_order_is_the_order_of_the_lines(
            rows in proptest::collection::vec(
                (tricky_text(), proptest::option::of(0..3u8), 0..2u8, 0..2u8, 0..3u8, tricky_text()),
                0..40,
            )
        ) {
            let items: Vec<ReleaseItem> = rows
                .iter()
                .enumerate()
                .map(|(k, (text, ext, meta, split, weight, source))| ReleaseItem {
                    external_id: ext.map(|e| format!("e{e}")),
                    meta: canonical_meta(["{}", "{\"r\": \"eu\"}"][*meta as usize]),
                    split: ["dev", "test"][*split as usize].into(),
                    weight: [1.0, 0.5, 10.0][*weight as usize],
                    source: source.clone(),
                    text: text.clone(),
                    ..item(k as i64, "")
                })
                .collect();
            let by_order: Vec<String> = canonical_order(&items).iter().map(|&k| canonical_line(&items[k as usize])).collect();
            let mut by_lines: Vec<String> = items.iter().map(canonical_line).collect();
            by_lines.sort();
            proptest::prop_assert_eq!(by_order, by_lines);
            let mut sorted = items.clone();
            permute_in_place(&mut sorted, &canonical_order(&items));
            proptest::prop_assert_eq!(content_hash_sorted(&sorted), content_hash(&items));
        }

        /// The escapes `canonical_order` compares are exactly serde_json's.
        #[test]
        fn json_escaped_is_serde_jsons_escaping(s in "\\PC*|[\\x00-\\x7f]*") {
            let json = Value::from(s.as_str()).to_string();
            let ours: Vec<u8> = json_escaped(&s).collect();
            proptest::prop_assert_eq!(&ours[..], &json.as_bytes()[1..json.len() - 1]);
        }
    }

    #[test]
    fn permute_in_place_puts_each_element_where_the_order_says() {
        let mut v = vec!['a', 'b', 'c', 'd', 'e', 'f'];
        permute_in_place(&mut v, &[3, 0, 4, 1, 2, 5]);
        assert_eq!(v, vec!['d', 'a', 'e', 'b', 'c', 'f']);
    }

    #[test]
    fn leakage_pairs_between_splits_and_against_the_pool() {
        let base = "The delivery arrived two days late and the box was crushed on one side, but the headphones \
            inside work perfectly and the sound is clear even at high volume. Customer service answered my email \
            within an hour and offered a small refund.";
        let items = vec![
            ReleaseItem { split: "dev".into(), ..item(1, base) },
            ReleaseItem { split: "test".into(), ..item(2, &base.replace("crushed", "dented")) },
            ReleaseItem { split: "test".into(), ..item(3, "an unrelated review of a blender that broke after a week of use") },
        ];
        let mut check = LeakageCheck::new(&items, 0.8, &|_| None);
        assert_eq!(check.pairs.len(), 1, "{:?}", check.pairs);
        assert_eq!((check.pairs[0].a.item_id, check.pairs[0].b.item_id, check.pairs[0].kind.as_str()), (1, 2, "near"));
        check.check_pool_item(9, None, Some("An unrelated   review of a blender that broke after a WEEK of use".into()), None, None);
        check.check_pool_item(10, None, Some("nothing like the others at all".into()), None, None);
        check.check_pool_item(1, None, Some(base.into()), None, None);
        assert_eq!(check.pairs.len(), 2);
        assert_eq!((check.pairs[1].a.item_id, check.pairs[1].b.item_id, check.pairs[1].kind.as_str()), (3, 9, "exact"));
        assert_eq!(check.pairs[1].b.split, "pool");
        assert_eq!(check.pool_items, 2);
    }

    /// A batch checked on several threads gives the pairs checking one item at a time gives,
    /// in the same order, and skips the release's own items alike.
    #[test]
    fn a_parallel_batch_equals_one_by_one() {
        let words: Vec<String> = (0..50).map(|i| format!("w{i}")).collect();
        let mut rng = crate::stats::rng::SeededRng::new(5);
        let mut text = |n: usize| (0..n).map(|_| words[rng.below(50) as usize].as_str()).collect::<Vec<_>>().join(" ");
        let items: Vec<ReleaseItem> = (1..=40).map(|i| ReleaseItem { split: ["dev", "test"][i % 2].into(), ..item(i as i64, &text(30)) }).collect();
        let mut pool: Vec<crate::store::releases::PoolItem> = Vec::new();
        for id in 100..400i64 {
            // Every third pool item copies a release item with one word changed (or exactly).
            let t = if id % 3 == 0 {
                let src = items[(id as usize) % items.len()].text.clone().unwrap();
                if id % 2 == 0 { src.replacen("w", "W", 1) } else { src.replacen(' ', " x", 1) }
            } else {
                text(30)
            };
            pool.push((id, Some(format!("p{id}")), Some(t), None));
        }
        pool.push((3, None, items[2].text.clone(), None));
        let mut one = LeakageCheck::new(&items, 0.8, &|_| None);
        for (id, ext, t, img) in pool.clone() {
            one.check_pool_item(id, ext, t, img, None);
        }
        let mut batch = LeakageCheck::new(&items, 0.8, &|_| None);
        batch.check_pool_batch(pool, &|_| None, 3);
        assert!(one.pairs.len() >= 100, "{}", one.pairs.len());
        assert_eq!(batch.pairs, one.pairs);
        assert_eq!((batch.pool_items, one.pool_items), (300, 300));
    }

    /// Images: near by the Hamming distance of their dHashes (the score is 1 − d/64), between
    /// splits and against pool images; identical images by their SHA-256.
    #[test]
    fn image_leakage_by_perceptual_hash() {
        let img = |id: i64, sha: &str, split: &str| ReleaseItem {
            kind: "image".into(),
            text: None,
            image_sha256: Some(sha.into()),
            split: split.into(),
            ..item(id, "")
        };
        let items = vec![img(1, "aa", "dev"), img(2, "bb", "test"), img(3, "cc", "test")];
        let hashes: HashMap<&str, u64> = HashMap::from([("aa", 0xFFFF_0000_FFFF_0000), ("bb", 0xFFFF_0000_FFFF_000F), ("cc", 0x1234_5678_9ABC_DEF0)]);
        let mut check = LeakageCheck::new(&items, 0.8, &|sha| hashes.get(sha).copied());
        assert_eq!(check.pairs.len(), 1, "{:?}", check.pairs);
        assert_eq!((check.pairs[0].a.item_id, check.pairs[0].b.item_id), (1, 2));
        assert_eq!(check.pairs[0].jaccard, 1.0 - 4.0 / 64.0);
        check.check_pool_item(7, None, None, Some("zz".into()), Some(0x1234_5678_9ABC_DEF1));
        check.check_pool_item(8, None, None, Some("yy".into()), Some(0x0F0F_0F0F_0F0F_0F0F));
        check.check_pool_item(9, None, None, Some("cc".into()), None);
        let pool: Vec<(i64, i64, &str)> = check.pairs[1..].iter().map(|p| (p.a.item_id, p.b.item_id, p.kind.as_str())).collect();
        assert_eq!(pool, vec![(3, 7, "near"), (3, 9, "exact")]);
    }

    fn item(id: i64, text: &str) -> ReleaseItem {
        ReleaseItem {
            item_id: id,
            external_id: None,
            kind: "text".into(),
            text: Some(text.into()),
            image_sha256: None,
            meta: "{}".into(),
            weight: 1.0,
            source: None,
            license: None,
            labels: vec!["pos".into()],
            provenance: json!({"source": "gold"}).to_string(),
            n_labels: 0,
            split: "dev".into(),
        }
    }
}
