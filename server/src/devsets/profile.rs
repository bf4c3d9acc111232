//! Production profiles: what production looks like, as joint counts of attribute values.
//!
//! Two kinds of upload, each JSONL or CSV:
//! - **records**: a sample of production records, one per line: the `meta` attributes alone
//!   (`{"region": "eu", "device": "tablet", "length": 412}`), or full items whose `meta` object
//!   holds them (`{"text": "...", "meta": {...}}`). CSV: a header row of attribute names.
//! - **counts**: one row per combination of attribute values with its `count` (a column, or a
//!   key of the JSON line): `{"region": "eu", "device": "tablet", "count": 1200}`.
//!
//! A records upload is read twice from the spooled file, never held in memory: the first pass
//! checks every line, learns which attributes are numeric (every value a number) and keeps a
//! seeded reservoir of at most `RESERVOIR` values per numeric attribute; the quartiles of that
//! reservoir become the attribute's bucket edges; the second pass counts the combinations. A
//! million rows take memory for the reservoirs and the (few) combinations only.
//!
//! A numeric attribute is bucketed by quantiles of the *production* values (the edges are
//! stored with the profile), so the pool and the dev set are bucketed the same way. A counts
//! table is taken as it is: its values are categories.
//!
//! Bad input (an attribute the pool's items do not have, a value that is an object or an array,
//! a negative or non-numeric count, a malformed line) refuses the whole upload with every bad
//! line listed (the first `MAX_LISTED`); nothing is saved.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::BufRead;

use app::api_types::LineError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::stats::rng::{quantile_sorted, SeededRng};

/// Values kept per numeric attribute to find its quantiles.
pub const RESERVOIR: usize = 100_000;
/// Bad lines listed in a refusal (all are counted).
pub const MAX_LISTED: usize = 100;
/// The columns of a full item that are not `meta` attributes (the item import's own fields,
/// `import::record`).
pub const ITEM_FIELDS: &[&str] = &["id", "text", "image", "weight", "source", "license", "gold"];
/// The value of an attribute a record does not have.
pub const MISSING: &str = "(missing)";

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum UploadKind {
    Records,
    Counts,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FileFormat {
    Jsonl,
    Csv,
}

pub use app::api_types::ProfileAttribute;

/// How a raw `meta` value falls into a profile attribute's categories.
pub trait Categorize {
    /// The category of a raw meta value under this attribute (a bucket for numeric ones).
    fn category(&self, value: Option<&Value>) -> String;
}

impl Categorize for ProfileAttribute {
    fn category(&self, value: Option<&Value>) -> String {
        match value {
            None | Some(Value::Null) => MISSING.to_string(),
            Some(Value::Number(n)) if self.kind == "numeric" => bucket_label(&self.edges, n.as_f64().unwrap_or(0.0)),
            Some(Value::String(s)) if self.kind == "numeric" => match s.trim().parse::<f64>() {
                Ok(x) if x.is_finite() => bucket_label(&self.edges, x),
                _ => s.clone(),
            },
            Some(v) => scalar_text(v),
        }
    }
}

/// "< 12", "12 – 40", "≥ 95": the bucket of `x` among `edges`.
pub fn bucket_label(edges: &[f64], x: f64) -> String {
    let i = edges.partition_point(|e| *e <= x);
    if edges.is_empty() {
        "all".to_string()
    } else if i == 0 {
        format!("< {}", edges[0])
    } else if i == edges.len() {
        format!("≥ {}", edges[i - 1])
    } else {
        format!("{} – {}", edges[i - 1], edges[i])
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => MISSING.to_string(),
        other => other.to_string(),
    }
}

/// A parsed profile: attributes sorted by name, and the joint counts.
#[derive(Clone, Debug, PartialEq)]
pub struct ParsedProfile {
    pub attributes: Vec<ProfileAttribute>,
    pub cells: Vec<(Vec<String>, f64)>,
    pub records: f64,
}

#[derive(Debug)]
pub struct ProfileRefusal {
    pub message: String,
    pub lines: Vec<LineError>,
    pub bad_lines: usize,
}

struct Errors {
    listed: Vec<LineError>,
    count: usize,
}

impl Errors {
    fn add(&mut self, line: usize, field: &str, reason: String) {
        self.count += 1;
        if self.listed.len() < MAX_LISTED {
            self.listed.push(LineError { line: line as i64, field: field.to_string(), reason });
        }
    }
}

/// One line's attributes, in file order, or why the line is bad.
type Record = Vec<(String, Value)>;

/// Reads the records or count rows of `reader`, calling `each(line, record)`.
fn for_each_record(
    reader: impl BufRead,
    format: FileFormat,
    errors: &mut Errors,
    mut each: impl FnMut(usize, Record, &mut Errors),
) -> std::io::Result<()> {
    match format {
        FileFormat::Jsonl => {
            for (i, line) in reader.lines().enumerate() {
                let line_no = i + 1;
                let line = line?;
                if line.trim().is_empty() {
                    continue;
                }
                match serde_json::from_str::<Value>(&line) {
                    Ok(Value::Object(mut map)) => {
                        // A full item: its attributes are its meta (none without one).
                        let attrs: Map<String, Value> = match map.remove("meta") {
                            Some(Value::Object(meta)) => meta,
                            Some(_) => {
                                errors.add(line_no, "meta", "meta must be an object of attributes".into());
                                continue;
                            }
                            None if map.contains_key("text") || map.contains_key("image") => Map::new(),
                            None => map,
                        };
                        each(line_no, attrs.into_iter().collect(), errors);
                    }
                    Ok(_) => errors.add(line_no, "", "each line must be a JSON object".into()),
                    Err(e) => errors.add(line_no, "", format!("not valid JSON: {e}")),
                }
            }
        }
        FileFormat::Csv => {
            let mut csv = csv::ReaderBuilder::new().flexible(false).from_reader(reader);
            let header: Vec<String> = match csv.headers() {
                Ok(h) => h.iter().map(|s| s.trim().to_string()).collect(),
                Err(e) => {
                    errors.add(1, "", format!("the header row is not valid CSV: {e}"));
                    return Ok(());
                }
            };
            // Full items (a `text` or `image` column): every column but the item format's own is
            // a meta attribute, as the item import reads it.
            let full_items = header.iter().any(|h| h == "text" || h == "image");
            for row in csv.records() {
                match row {
                    Ok(row) => {
                        let line_no = row.position().map_or(0, |p| p.line() as usize);
                        let record = header
                            .iter()
                            .zip(row.iter())
                            .filter(|(k, v)| !v.is_empty() && !(full_items && ITEM_FIELDS.contains(&k.as_str())))
                            .map(|(k, v)| {
                                // A cell that reads as a number is one (numeric attributes).
                                let t = v.trim();
                                let value = if let Ok(i) = t.parse::<i64>() {
                                    Value::Number(i.into())
                                } else {
                                    match t.parse::<f64>() {
                                        Ok(x) if x.is_finite() => serde_json::Number::from_f64(x)
                                            .map_or_else(|| Value::String(v.to_string()), Value::Number),
                                        _ => Value::String(v.to_string()),
                                    }
                                };
                                (k.clone(), value)
                            })
                            .collect();
                        each(line_no, record, errors);
                    }
                    Err(e) => {
                        let line_no = e.position().map_or(0, |p| p.line() as usize);
                        errors.add(line_no, "", format!("not valid CSV: {e}"));
                    }
                }
            }
        }
    }
    Ok(())
}

fn refusal(errors: Errors, what: &str) -> ProfileRefusal {
    ProfileRefusal {
        message: format!(
            "{} bad line{} in the {what}; nothing was saved (the first {} are listed)",
            errors.count,
            if errors.count == 1 { "" } else { "s" },
            errors.listed.len()
        ),
        lines: errors.listed,
        bad_lines: errors.count,
    }
}

/// Checks one attribute name against the pool's; an unknown one is reported once, at its first line.
fn check_known(name: &str, line: usize, known: &BTreeSet<String>, reported: &mut BTreeSet<String>, errors: &mut Errors) -> bool {
    if known.contains(name) {
        return true;
    }
    if reported.insert(name.to_string()) {
        let have: Vec<&str> = known.iter().map(String::as_str).collect();
        errors.add(
            line,
            name,
            format!("unknown attribute {name:?}: no item of the pool has it (the pool's attributes: {})", have.join(", ")),
        );
    }
    false
}

/// Parses a records upload (see the top of the file). `open` gives a fresh reader of the
/// spooled file for each pass.
pub fn parse_records<R: BufRead>(
    mut open: impl FnMut() -> std::io::Result<R>,
    format: FileFormat,
    known: &BTreeSet<String>,
) -> std::io::Result<Result<ParsedProfile, ProfileRefusal>> {
    struct Seen {
        non_numeric: bool,
        numbers: u64,
        reservoir: Vec<f64>,
    }
    let mut errors = Errors { listed: Vec::new(), count: 0 };
    let mut seen: BTreeMap<String, Seen> = BTreeMap::new();
    let mut reported = BTreeSet::new();
    let mut rng = SeededRng::new(0x5eed_0f_9d0c);
    let mut records = 0u64;
    for_each_record(open()?, format, &mut errors, |line, record, errors| {
        records += 1;
        for (name, value) in record {
            if !check_known(&name, line, known, &mut reported, errors) {
                continue;
            }
            let s = seen.entry(name.clone()).or_insert(Seen { non_numeric: false, numbers: 0, reservoir: Vec::new() });
            match value {
                Value::Number(n) => {
                    let x = n.as_f64().unwrap_or(0.0);
                    s.numbers += 1;
                    // Algorithm R: every value seen has the same chance to be in the reservoir.
                    if s.reservoir.len() < RESERVOIR {
                        s.reservoir.push(x);
                    } else {
                        let j = rng.below(s.numbers) as usize;
                        if j < RESERVOIR {
                            s.reservoir[j] = x;
                        }
                    }
                }
                Value::Object(_) | Value::Array(_) => {
                    errors.add(line, &name, "an attribute value must be a string, number or boolean".into())
                }
                Value::Null => {}
                _ => s.non_numeric = true,
            }
        }
    })?;
    if errors.count > 0 {
        return Ok(Err(refusal(errors, "production sample")));
    }
    if records == 0 {
        let mut errors = errors;
        errors.add(0, "", "the file has no records".into());
        return Ok(Err(refusal(errors, "production sample")));
    }
    let attributes: Vec<ProfileAttribute> = seen
        .into_iter()
        .map(|(name, mut s)| {
            if s.non_numeric || s.numbers == 0 {
                ProfileAttribute { name, kind: "categorical".into(), edges: Vec::new() }
            } else {
                s.reservoir.sort_by(f64::total_cmp);
                let mut edges: Vec<f64> =
                    [0.25, 0.5, 0.75].iter().map(|&q| quantile_sorted(&s.reservoir, q)).collect();
                edges.dedup();
                ProfileAttribute { name, kind: "numeric".into(), edges }
            }
        })
        .collect();
    let index: HashMap<&str, usize> = attributes.iter().enumerate().map(|(i, a)| (a.name.as_str(), i)).collect();
    let mut counts: HashMap<Vec<String>, f64> = HashMap::new();
    let mut second = Errors { listed: Vec::new(), count: 0 };
    for_each_record(open()?, format, &mut second, |_, record, _| {
        let mut values: Vec<Option<Value>> = vec![None; attributes.len()];
        for (name, value) in record {
            if let Some(&i) = index.get(name.as_str()) {
                values[i] = Some(value);
            }
        }
        let key: Vec<String> = attributes.iter().zip(&values).map(|(a, v)| a.category(v.as_ref())).collect();
        *counts.entry(key).or_insert(0.0) += 1.0;
    })?;
    let mut cells: Vec<(Vec<String>, f64)> = counts.into_iter().collect();
    cells.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(Ok(ParsedProfile { attributes, cells, records: records as f64 }))
}

/// Parses a counts table: every row's attributes and its `count` (a finite number ≥ 0).
pub fn parse_counts(
    reader: impl BufRead,
    format: FileFormat,
    known: &BTreeSet<String>,
) -> std::io::Result<Result<ParsedProfile, ProfileRefusal>> {
    let mut errors = Errors { listed: Vec::new(), count: 0 };
    let mut reported = BTreeSet::new();
    let mut names: BTreeSet<String> = BTreeSet::new();
    let mut rows: Vec<(BTreeMap<String, String>, f64)> = Vec::new();
    for_each_record(reader, format, &mut errors, |line, record, errors| {
        let mut count = None;
        let mut values = BTreeMap::new();
        for (name, value) in record {
            if name == "count" {
                match &value {
                    Value::Number(n) if n.as_f64().is_some_and(|x| x.is_finite() && x >= 0.0) => count = n.as_f64(),
                    other => errors.add(line, "count", format!("count must be a number ≥ 0, found {}", other)),
                }
                continue;
            }
            if check_known(&name, line, known, &mut reported, errors) {
                if matches!(value, Value::Object(_) | Value::Array(_)) {
                    errors.add(line, &name, "an attribute value must be a string, number or boolean".into());
                }
                names.insert(name.clone());
                values.insert(name, scalar_text(&value));
            }
        }
        match count {
            Some(c) => rows.push((values, c)),
            None if errors.listed.last().is_some_and(|e| e.line == line as i64 && e.field == "count") => {}
            None => errors.add(line, "count", "the row has no count".into()),
        }
    })?;
    if errors.count == 0 && rows.is_empty() {
        errors.add(0, "", "the file has no rows".into());
    }
    if errors.count > 0 {
        return Ok(Err(refusal(errors, "counts table")));
    }
    let attributes: Vec<ProfileAttribute> =
        names.into_iter().map(|name| ProfileAttribute { name, kind: "categorical".into(), edges: Vec::new() }).collect();
    let mut counts: BTreeMap<Vec<String>, f64> = BTreeMap::new();
    for (values, c) in rows {
        let key = attributes.iter().map(|a| values.get(&a.name).cloned().unwrap_or_else(|| MISSING.to_string())).collect();
        *counts.entry(key).or_insert(0.0) += c;
    }
    let records = counts.values().sum();
    Ok(Ok(ParsedProfile { attributes, cells: counts.into_iter().collect(), records }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn known(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn records_count_combinations_and_bucket_numbers() {
        let text = (0..100)
            .map(|i| format!("{{\"region\": \"{}\", \"length\": {i}}}", if i % 4 == 0 { "eu" } else { "us" }))
            .collect::<Vec<_>>()
            .join("\n");
        let p = parse_records(|| Ok(Cursor::new(text.clone())), FileFormat::Jsonl, &known(&["region", "length"]))
            .unwrap()
            .unwrap();
        assert_eq!(p.records, 100.0);
        assert_eq!(p.attributes[0].name, "length");
        assert_eq!(p.attributes[0].kind, "numeric");
        assert_eq!(p.attributes[0].edges, vec![24.75, 49.5, 74.25]);
        let total: f64 = p.cells.iter().map(|c| c.1).sum();
        assert_eq!(total, 100.0);
        assert!(p.cells.contains(&(vec!["< 24.75".to_string(), "eu".to_string()], 7.0)));
    }

    #[test]
    fn full_items_and_csv() {
        let items = "{\"text\": \"a\", \"meta\": {\"region\": \"eu\"}}\n{\"text\": \"b\", \"meta\": {\"region\": \"us\"}}\n";
        let p = parse_records(|| Ok(Cursor::new(items)), FileFormat::Jsonl, &known(&["region"])).unwrap().unwrap();
        assert_eq!(p.cells, vec![(vec!["eu".into()], 1.0), (vec!["us".into()], 1.0)]);
        // Full items without meta, and full items as CSV: their item fields are not attributes.
        let items = "{\"text\": \"a\"}\n";
        let p = parse_records(|| Ok(Cursor::new(items)), FileFormat::Jsonl, &known(&["region"])).unwrap().unwrap();
        assert_eq!((p.attributes.len(), p.cells.clone()), (0, vec![(vec![], 1.0)]));
        let csv = "id,text,weight,source,license,gold,region\nx1,hello,2,web,cc,pos,eu\nx2,bye,,,,,us\n";
        let p = parse_records(|| Ok(Cursor::new(csv)), FileFormat::Csv, &known(&["region"])).unwrap().unwrap();
        assert_eq!(p.cells, vec![(vec!["eu".into()], 1.0), (vec!["us".into()], 1.0)]);
        let csv = "region,device\neu,tablet\nus,\n";
        let p = parse_records(|| Ok(Cursor::new(csv)), FileFormat::Csv, &known(&["region", "device"])).unwrap().unwrap();
        assert_eq!(p.cells, vec![(vec![MISSING.into(), "us".into()], 1.0), (vec!["tablet".into(), "eu".into()], 1.0)]);
    }

    #[test]
    fn bad_records_are_listed_by_line() {
        let text = "{\"region\": \"eu\"}\n{\"regoin\": \"eu\"}\nnot json\n{\"regoin\": \"us\"}\n";
        let r = parse_records(|| Ok(Cursor::new(text)), FileFormat::Jsonl, &known(&["region"])).unwrap().unwrap_err();
        assert_eq!(r.bad_lines, 2);
        assert_eq!(r.lines[0].line, 2);
        assert_eq!(r.lines[0].field, "regoin");
        assert!(r.lines[0].reason.starts_with("unknown attribute \"regoin\""), "{}", r.lines[0].reason);
        assert_eq!(r.lines[1].line, 3);
    }

    #[test]
    fn counts_tables() {
        let csv = "region,count\neu,300\nus,700\neu,100\n";
        let p = parse_counts(Cursor::new(csv), FileFormat::Csv, &known(&["region"])).unwrap().unwrap();
        assert_eq!(p.cells, vec![(vec!["eu".into()], 400.0), (vec!["us".into()], 700.0)]);
        let bad = "region,count\neu,-3\nus,many\n";
        let r = parse_counts(Cursor::new(bad), FileFormat::Csv, &known(&["region"])).unwrap().unwrap_err();
        assert_eq!(r.bad_lines, 2);
        assert_eq!((r.lines[0].line, r.lines[0].field.as_str()), (2, "count"));
        assert_eq!(r.lines[0].reason, "count must be a number ≥ 0, found -3");
        assert_eq!(r.lines[1].reason, "count must be a number ≥ 0, found \"many\"");
    }
}
