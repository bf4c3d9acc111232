//! One record of an import file, checked field by field.
use serde_json::{Map, Value};

/// A record as the file gave it, before images are resolved.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    pub external_id: Option<String>,
    pub content: Content,
    pub meta: Map<String, Value>,
    pub weight: f64,
    pub source: Option<String>,
    pub license: Option<String>,
    /// The known answer (label names as given; checked against the project's labels in
    /// `import::check_gold`), for a gold item.
    pub gold: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text(String),
    /// A file name, relative to the data file inside the uploaded zip.
    Image(String),
}

/// What is wrong with a record: the field at fault ("" for the whole line) and why.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub field: String,
    pub reason: String,
}

impl FieldError {
    pub fn new(field: &str, reason: impl Into<String>) -> Self {
        FieldError { field: field.to_string(), reason: reason.into() }
    }
}

pub const KNOWN_FIELDS: &[&str] = &["id", "text", "image", "meta", "weight", "source", "license", "gold"];
pub const MAX_ID_LEN: usize = 200;
pub const MAX_TEXT_BYTES: usize = 1 << 20;
const MAX_SHORT_FIELD: usize = 1000;

/// Parses one JSONL line.
pub fn parse_json_line(line: &str) -> Result<Record, FieldError> {
    let value: Value = serde_json::from_str(line)
        .map_err(|e| FieldError::new("", format!("not valid JSON: {e}")))?;
    let Value::Object(obj) = value else {
        return Err(FieldError::new("", "each line must be a JSON object"));
    };
    if let Some(unknown) = obj.keys().find(|k| !KNOWN_FIELDS.contains(&k.as_str())) {
        return Err(FieldError::new(
            unknown,
            format!("unknown field (known: {}; put slice attributes in meta)", KNOWN_FIELDS.join(", ")),
        ));
    }
    let external_id = match obj.get("id") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        Some(_) => return Err(FieldError::new("id", "must be a string or an integer")),
    };
    let text = optional_string(&obj, "text")?;
    let image = optional_string(&obj, "image")?;
    let meta = match obj.get("meta") {
        None | Some(Value::Null) => Map::new(),
        Some(Value::Object(m)) => m.clone(),
        Some(_) => return Err(FieldError::new("meta", "must be an object of slice attributes")),
    };
    let weight = match obj.get("weight") {
        None | Some(Value::Null) => 1.0,
        Some(Value::Number(n)) => n.as_f64().unwrap_or(f64::NAN),
        Some(_) => return Err(FieldError::new("weight", "must be a number")),
    };
    let gold = match obj.get("gold") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(a)) => Some(
            a.iter()
                .map(|v| v.as_str().map(str::to_string))
                .collect::<Option<Vec<String>>>()
                .ok_or_else(|| FieldError::new("gold", GOLD_SHAPE))?,
        ),
        Some(_) => return Err(FieldError::new("gold", GOLD_SHAPE)),
    };
    let mut record = build(
        external_id,
        text,
        image,
        meta,
        weight,
        optional_string(&obj, "source")?,
        optional_string(&obj, "license")?,
    )?;
    record.gold = gold;
    Ok(record)
}

const GOLD_SHAPE: &str = "must be a label name or an array of label names";

fn optional_string(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, FieldError> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(FieldError::new(field, "must be a string")),
    }
}

/// Parses one CSV record given the header. Known columns are fields; every other column is
/// a slice attribute in `meta` (empty cells are left out).
pub fn parse_csv_record(headers: &[String], cells: &[String]) -> Result<Record, FieldError> {
    if cells.len() != headers.len() {
        return Err(FieldError::new(
            "",
            format!("has {} cells but the header has {} columns", cells.len(), headers.len()),
        ));
    }
    let mut id = None;
    let mut text = None;
    let mut image = None;
    let mut weight = 1.0;
    let mut source = None;
    let mut license = None;
    let mut gold = None;
    let mut meta = Map::new();
    for (h, c) in headers.iter().zip(cells) {
        let non_empty = (!c.is_empty()).then(|| c.clone());
        match h.as_str() {
            "id" => id = non_empty,
            "text" => text = non_empty,
            "image" => image = non_empty,
            "weight" => {
                if !c.trim().is_empty() {
                    weight = c.trim().parse::<f64>().map_err(|_| {
                        FieldError::new("weight", format!("{c:?} is not a number"))
                    })?;
                }
            }
            "source" => source = non_empty,
            "license" => license = non_empty,
            // Several labels (multi-label projects) are joined with `|`, as the CSV export
            // writes them.
            "gold" => {
                if !c.trim().is_empty() {
                    gold = Some(c.split('|').map(|l| l.trim().to_string()).collect());
                }
            }
            "meta" => {
                return Err(FieldError::new(
                    "meta",
                    "in CSV, give each slice attribute its own column instead of a meta column",
                ))
            }
            other => {
                if let Some(v) = non_empty {
                    meta.insert(other.to_string(), Value::String(v));
                }
            }
        }
    }
    let mut record = build(id, text, image, meta, weight, source, license)?;
    record.gold = gold;
    Ok(record)
}

/// The checks every record passes, whatever file it came from.
pub(crate) fn build(
    external_id: Option<String>,
    text: Option<String>,
    image: Option<String>,
    meta: Map<String, Value>,
    weight: f64,
    source: Option<String>,
    license: Option<String>,
) -> Result<Record, FieldError> {
    if let Some(id) = &external_id {
        if id.is_empty() || id.len() > MAX_ID_LEN {
            return Err(FieldError::new("id", format!("must have 1 to {MAX_ID_LEN} characters")));
        }
    }
    let content = match (text, image) {
        (Some(_), Some(_)) => {
            return Err(FieldError::new("", "give either text or image, not both"))
        }
        (None, None) => return Err(FieldError::new("", "needs a text or an image field")),
        (Some(t), None) => {
            if t.trim().is_empty() {
                return Err(FieldError::new("text", "is empty"));
            }
            if t.len() > MAX_TEXT_BYTES {
                return Err(FieldError::new("text", format!("is longer than {MAX_TEXT_BYTES} bytes")));
            }
            Content::Text(t)
        }
        (None, Some(i)) => {
            if i.trim().is_empty() {
                return Err(FieldError::new("image", "is empty"));
            }
            Content::Image(i)
        }
    };
    for (k, v) in &meta {
        if k.is_empty() || k.len() > 100 {
            return Err(FieldError::new("meta", "attribute names must have 1 to 100 characters"));
        }
        if matches!(v, Value::Object(_) | Value::Array(_)) {
            return Err(FieldError::new(
                "meta",
                format!("attribute {k:?} must be a string, number, boolean or null (slices need plain values)"),
            ));
        }
    }
    if !weight.is_finite() || weight <= 0.0 {
        return Err(FieldError::new("weight", "must be a positive number"));
    }
    for (field, value) in [("source", &source), ("license", &license)] {
        if value.as_ref().is_some_and(|v| v.len() > MAX_SHORT_FIELD) {
            return Err(FieldError::new(field, format!("is longer than {MAX_SHORT_FIELD} characters")));
        }
    }
    Ok(Record { external_id, content, meta, weight, source, license, gold: None })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_full_json_line_parses() {
        let r = parse_json_line(
            r#"{"id": 7, "text": "hello", "meta": {"region": "eu"}, "weight": 2.5, "source": "s", "license": "cc"}"#,
        )
        .unwrap();
        assert_eq!(r.external_id.as_deref(), Some("7"));
        assert_eq!(r.content, Content::Text("hello".into()));
        assert_eq!(r.meta["region"], "eu");
        assert_eq!(r.weight, 2.5);
    }

    #[test]
    fn bad_json_lines_name_the_field() {
        let cases = [
            ("not json", ""),
            ("[1]", ""),
            (r#"{"text": 3}"#, "text"),
            (r#"{"text": "a", "image": "b.png"}"#, ""),
            (r#"{"id": "x"}"#, ""),
            (r#"{"text": "a", "weight": -1}"#, "weight"),
            (r#"{"text": "a", "weight": "heavy"}"#, "weight"),
            (r#"{"text": "a", "meta": [1]}"#, "meta"),
            (r#"{"text": "a", "meta": {"x": {"y": 1}}}"#, "meta"),
            (r#"{"text": "a", "label": "x"}"#, "label"),
            (r#"{"text": "   "}"#, "text"),
            (r#"{"text": "a", "id": 1.5}"#, "id"),
            (r#"{"text": "a", "gold": 3}"#, "gold"),
            (r#"{"text": "a", "gold": ["a", 1]}"#, "gold"),
            (r#"{"text": "a", "gold": {"a": 1}}"#, "gold"),
        ];
        for (line, field) in cases {
            let e = parse_json_line(line).expect_err(line);
            assert_eq!(e.field, field, "{line}: {}", e.reason);
        }
    }

    #[test]
    fn gold_is_a_label_or_a_list_of_labels() {
        let r = parse_json_line(r#"{"text": "a", "gold": "pos"}"#).unwrap();
        assert_eq!(r.gold, Some(vec!["pos".to_string()]));
        let r = parse_json_line(r#"{"text": "a", "gold": ["x", "y"]}"#).unwrap();
        assert_eq!(r.gold, Some(vec!["x".to_string(), "y".to_string()]));
        assert_eq!(parse_json_line(r#"{"text": "a", "gold": null}"#).unwrap().gold, None);
        let h: Vec<String> = ["text", "gold"].map(String::from).to_vec();
        let r = parse_csv_record(&h, &["hi", "x | y"].map(String::from)).unwrap();
        assert_eq!(r.gold, Some(vec!["x".to_string(), "y".to_string()]));
        assert!(r.meta.is_empty(), "gold is not a slice attribute");
        assert_eq!(parse_csv_record(&h, &["hi", ""].map(String::from)).unwrap().gold, None);
    }

    #[test]
    fn csv_extra_columns_become_meta() {
        let h: Vec<String> = ["id", "text", "region", "device", "weight"].map(String::from).to_vec();
        let r = parse_csv_record(&h, &["a", "hi", "eu", "", "3"].map(String::from)).unwrap();
        assert_eq!(r.meta.len(), 1);
        assert_eq!(r.meta["region"], "eu");
        assert_eq!(r.weight, 3.0);
        let e = parse_csv_record(&h, &["a", "hi", "eu", "", "x"].map(String::from)).unwrap_err();
        assert_eq!(e.field, "weight");
        let e = parse_csv_record(&h, &["a", "hi"].map(String::from)).unwrap_err();
        assert_eq!(e.field, "");
    }
}
