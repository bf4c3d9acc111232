//! Importing predictions: a spooled JSONL upload read line by line (the item import's bounded
//! line reader, `import::sources::jsonl_lines`), every line checked on its own, and a report in
//! the item import's shape (`ImportReport`, refused with `import::refused`): any bad line and
//! nothing is stored.
//!
//! Unlike items, predictions are held in memory between the check and the write (a row is an
//! item id, a source index, the labels and a score: ~60 bytes), so a file is limited to
//! `MAX_LINES` lines; they are written in one transaction (`store::prelabels::store_predictions`)
//! because "all or nothing" then needs no pending-row machinery.
use std::collections::{HashMap, HashSet};
use std::fs::File;
use std::io;

use app::api_types::{ImportReport, LineError};

use super::predictions::{parse_line, Prediction};
use crate::import::record::FieldError;
use crate::import::{sources, MAX_REPORTED};

/// The most prediction lines one upload may hold.
pub const MAX_LINES: i64 = 2_000_000;

/// One checked prediction, waiting for its item id.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub line: i64,
    /// Index into `Checked::sources`.
    pub source: usize,
    pub item: String,
    /// JSON array of label names, in the project's order.
    pub labels: String,
    pub score: Option<f64>,
}

/// The first reading of an upload.
#[derive(Debug, Default)]
pub struct Checked {
    pub report: ImportReport,
    /// (model, version), in order of first appearance.
    pub sources: Vec<(String, String)>,
    pub rows: Vec<Row>,
}

impl Checked {
    fn error(&mut self, line: i64, e: FieldError) {
        self.report.error_count += 1;
        if self.report.errors.len() < MAX_REPORTED {
            self.report.errors.push(LineError { line, field: e.field, reason: e.reason });
        }
    }

    /// The distinct item ids the rows name.
    pub fn item_ids(&self) -> Vec<String> {
        let set: HashSet<&str> = self.rows.iter().map(|r| r.item.as_str()).collect();
        let mut ids: Vec<String> = set.into_iter().map(str::to_string).collect();
        ids.sort_unstable();
        ids
    }

    /// Turns each row's external id into the item's id; a row naming no item of the project
    /// is a bad line. Returns (source index, item id, labels, score) rows when all resolve.
    pub fn resolve(&mut self, items: &HashMap<String, i64>) -> Vec<(usize, i64, String, Option<f64>)> {
        let rows = std::mem::take(&mut self.rows);
        let mut out = Vec::with_capacity(rows.len());
        for r in rows {
            match items.get(&r.item) {
                Some(&id) => out.push((r.source, id, r.labels, r.score)),
                None => self.error(r.line, FieldError::new("item", format!("the project has no item with id {:?}", r.item))),
            }
        }
        // Errors are reported in line order, whichever check found them.
        self.report.errors.sort_by_key(|e| e.line);
        out
    }
}

/// Reads and checks every line of a predictions file against the project's labels.
pub fn check_file(file: File, labels: &[String], multi: bool) -> io::Result<Checked> {
    let labels_owned = labels.to_vec();
    let lines = sources::jsonl_lines(file, move |text| parse_line(text, &labels_owned, multi));
    check_lines(lines)
}

/// `check_file` over parsed lines (separate so it is testable without files).
pub fn check_lines(lines: impl Iterator<Item = io::Result<(i64, Result<Prediction, FieldError>)>>) -> io::Result<Checked> {
    let mut c = Checked::default();
    let mut source_of: HashMap<(String, String), usize> = HashMap::new();
    // (source, item) → the line that gave it first: one prediction per item and model version.
    let mut seen: HashMap<(usize, String), i64> = HashMap::new();
    for next in lines {
        let (line, parsed) = next?;
        c.report.lines += 1;
        if c.report.lines > MAX_LINES {
            c.error(line, FieldError::new("", format!("a predictions file may hold at most {MAX_LINES} lines; split it")));
            break;
        }
        let p = match parsed {
            Ok(p) => p,
            Err(e) => {
                c.error(line, e);
                continue;
            }
        };
        let key = (p.model.clone(), p.version.clone());
        let next_index = source_of.len();
        let source = *source_of.entry(key.clone()).or_insert_with(|| {
            c.sources.push(key);
            next_index
        });
        if let Some(first) = seen.get(&(source, p.item.clone())) {
            c.error(
                line,
                FieldError::new("item", format!("model {:?} version {:?} predicts this item on line {first} too", p.model, p.version)),
            );
            continue;
        }
        seen.insert((source, p.item.clone()), line);
        if c.report.error_count == 0 {
            c.rows.push(Row {
                line,
                source,
                item: p.item,
                labels: serde_json::to_string(&p.labels).unwrap_or_default(),
                score: p.score,
            });
        }
    }
    if c.report.lines == 0 && c.report.error_count == 0 {
        c.error(0, FieldError::new("", "the file has no predictions"));
    }
    if c.report.error_count > 0 {
        c.rows.clear(); // nothing will be stored: free them early
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(text: &[&str]) -> Checked {
        let labels = vec!["pos".to_string(), "neg".to_string()];
        let parsed: Vec<_> = text
            .iter()
            .enumerate()
            .map(|(i, t)| Ok((i as i64 + 1, parse_line(t, &labels, false))))
            .collect();
        check_lines(parsed.into_iter()).unwrap()
    }

    #[test]
    fn good_file_groups_by_model_version() {
        let mut c = lines(&[
            r#"{"item": "a", "label": "pos", "score": 0.9, "model": "m", "version": "1"}"#,
            r#"{"item": "a", "label": "neg", "score": 0.6, "model": "m", "version": "2"}"#,
            r#"{"item": "b", "label": "neg"}"#,
        ]);
        assert_eq!(c.report.error_count, 0);
        assert_eq!(c.sources, vec![("m".into(), "1".into()), ("m".into(), "2".into()), ("imported".into(), "1".into())]);
        assert_eq!(c.item_ids(), vec!["a".to_string(), "b".to_string()]);
        let items = HashMap::from([("a".to_string(), 10), ("b".to_string(), 11)]);
        let rows = c.resolve(&items);
        assert_eq!(
            rows,
            vec![(0, 10, r#"["pos"]"#.to_string(), Some(0.9)), (1, 10, r#"["neg"]"#.to_string(), Some(0.6)), (2, 11, r#"["neg"]"#.to_string(), None)]
        );
        assert_eq!(c.report.error_count, 0);
    }

    #[test]
    fn bad_lines_and_unknown_items_are_reported_in_line_order() {
        let c = lines(&[
            r#"{"item": "a", "label": "pos", "score": 0.9}"#,
            r#"{"item": "a", "label": "neg", "score": 0.2}"#,
            r#"{"item": "zzz", "label": "pos"}"#,
        ]);
        assert_eq!(c.report.error_count, 1);
        assert_eq!(c.report.errors[0].line, 2);
        assert_eq!(c.report.errors[0].field, "item");
        assert!(c.rows.is_empty(), "a refused file keeps no rows");
        // Unknown items are found after the ids are looked up.
        let mut c = lines(&[r#"{"item": "zzz", "label": "pos"}"#, r#"{"item": "a", "label": "nope"}"#]);
        assert_eq!(c.report.error_count, 1);
        let mut ok = lines(&[r#"{"item": "a", "label": "pos"}"#, r#"{"item": "zzz", "label": "pos"}"#]);
        let rows = ok.resolve(&HashMap::from([("a".to_string(), 1)]));
        assert_eq!(rows.len(), 1);
        assert_eq!(ok.report.error_count, 1);
        assert_eq!(ok.report.errors[0], LineError { line: 2, field: "item".into(), reason: "the project has no item with id \"zzz\"".into() });
        c.resolve(&HashMap::new());
        assert_eq!(c.report.errors.iter().map(|e| e.line).collect::<Vec<_>>(), vec![2]);
    }

    #[test]
    fn empty_file_is_refused() {
        let c = lines(&[]);
        assert_eq!(c.report.error_count, 1);
        assert_eq!(c.report.errors[0].reason, "the file has no predictions");
    }
}
