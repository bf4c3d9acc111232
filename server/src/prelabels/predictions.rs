//! Imported model predictions: one JSON object per line,
//! `{"item": external id, "label": "x"` or `"labels": ["x", "y"], "score": 0.93, "model": "m",
//! "version": "v1"}`. Each line is checked on its own, so an import can list every bad line
//! (like the item import) and store nothing when any is bad.
use serde::Deserialize;
use serde_json::Value;

use crate::import::record::FieldError;

/// One checked prediction.
#[derive(Debug, Clone, PartialEq)]
pub struct Prediction {
    pub item: String,
    /// In the project's label order, without repeats.
    pub labels: Vec<String>,
    /// In [0, 1]; None when the source gives no score.
    pub score: Option<f64>,
    pub model: String,
    pub version: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    item: Value,
    label: Option<String>,
    labels: Option<Vec<String>>,
    score: Option<f64>,
    model: Option<String>,
    version: Option<String>,
}

/// Longest model or version name accepted.
const MAX_NAME: usize = 200;

/// Checks one line against the project's labels (`multi`: several labels allowed). The error
/// names the field at fault ("" for the line as a whole), in the item import's shape, and is
/// a sentence about this line only.
pub fn parse_line(line: &str, labels: &[String], multi: bool) -> Result<Prediction, FieldError> {
    let raw: Line = serde_json::from_str(line).map_err(|e| FieldError::new("", format!("not a prediction object: {e}")))?;
    let item = match raw.item {
        Value::String(s) if !s.is_empty() => s,
        Value::Number(n) => n.to_string(),
        _ => return Err(FieldError::new("item", "\"item\" must be the item's external id (a non-empty string)")),
    };
    let given: Vec<String> = match (raw.label, raw.labels) {
        (Some(l), None) => vec![l],
        (None, Some(ls)) => ls,
        (Some(_), Some(_)) => return Err(FieldError::new("labels", "give \"label\" or \"labels\", not both")),
        (None, None) => return Err(FieldError::new("label", "a prediction needs \"label\" or \"labels\"")),
    };
    if given.is_empty() {
        return Err(FieldError::new("labels", "\"labels\" is empty"));
    }
    if let Some(bad) = given.iter().find(|g| !labels.contains(g)) {
        return Err(FieldError::new("label", format!("{bad:?} is not one of the project's labels")));
    }
    // Schema order, no repeats: the same shape as a person's annotation.
    let ordered: Vec<String> = labels.iter().filter(|l| given.contains(l)).cloned().collect();
    if !multi && ordered.len() > 1 {
        return Err(FieldError::new("labels", "this project takes one label per item"));
    }
    if let Some(s) = raw.score {
        if !(0.0..=1.0).contains(&s) {
            return Err(FieldError::new("score", format!("\"score\" must be between 0 and 1, not {s}")));
        }
    }
    let name = |v: Option<String>, what: &str, default: &str| -> Result<String, FieldError> {
        let v = v.unwrap_or_else(|| default.to_string());
        if v.is_empty() || v.chars().count() > MAX_NAME {
            return Err(FieldError::new(what, format!("\"{what}\" must be 1 to {MAX_NAME} characters")));
        }
        Ok(v)
    };
    Ok(Prediction {
        item,
        labels: ordered,
        score: raw.score,
        model: name(raw.model, "model", "imported")?,
        version: name(raw.version, "version", "1")?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels() -> Vec<String> {
        vec!["pos".into(), "neg".into(), "other".into()]
    }

    #[test]
    fn good_lines() {
        let p = parse_line(r#"{"item": "a-1", "label": "neg", "score": 0.9, "model": "bert", "version": "v2"}"#, &labels(), false)
            .unwrap();
        assert_eq!(
            p,
            Prediction { item: "a-1".into(), labels: vec!["neg".into()], score: Some(0.9), model: "bert".into(), version: "v2".into() }
        );
        let p = parse_line(r#"{"item": 7, "labels": ["other", "pos", "pos"]}"#, &labels(), true).unwrap();
        assert_eq!(p.item, "7");
        assert_eq!(p.labels, vec!["pos".to_string(), "other".to_string()]);
        assert_eq!((p.score, p.model.as_str(), p.version.as_str()), (None, "imported", "1"));
    }

    #[test]
    fn bad_lines_say_why() {
        let l = labels();
        let err = |line: &str, multi: bool| parse_line(line, &l, multi).unwrap_err().reason;
        assert_eq!(err(r#"{"item": "", "label": "pos"}"#, false), "\"item\" must be the item's external id (a non-empty string)");
        assert_eq!(err(r#"{"item": "a"}"#, false), "a prediction needs \"label\" or \"labels\"");
        assert_eq!(err(r#"{"item": "a", "label": "pos", "labels": ["pos"]}"#, false), "give \"label\" or \"labels\", not both");
        assert_eq!(err(r#"{"item": "a", "labels": []}"#, true), "\"labels\" is empty");
        assert_eq!(err(r#"{"item": "a", "label": "meh"}"#, false), "\"meh\" is not one of the project's labels");
        assert_eq!(err(r#"{"item": "a", "labels": ["pos", "neg"]}"#, false), "this project takes one label per item");
        assert_eq!(err(r#"{"item": "a", "label": "pos", "score": 1.5}"#, false), "\"score\" must be between 0 and 1, not 1.5");
        assert_eq!(err(r#"{"item": "a", "label": "pos", "model": ""}"#, false), "\"model\" must be 1 to 200 characters");
        assert!(err(r#"{"item": "a", "label": "pos", "confidence": 1}"#, false).starts_with("not a prediction object: unknown field `confidence`"));
        assert!(err("not json", false).starts_with("not a prediction object"));
        // The field at fault is named, as in the item import's report.
        let field = |line: &str| parse_line(line, &l, false).unwrap_err().field;
        assert_eq!(field(r#"{"item": "a", "label": "pos", "score": -1}"#), "score");
        assert_eq!(field(r#"{"item": "a", "label": "meh"}"#), "label");
        assert_eq!(field(r#"{"item": null, "label": "pos"}"#), "item");
        assert_eq!(field("{"), "");
    }
}
