//! Reading the user's files: paths or `-` for stdin, JSON Lines with line-numbered errors, and
//! single JSON documents whose errors carry serde_json's line and column.

use anyhow::{anyhow, bail, Context, Result};
use serde::de::DeserializeOwned;
use serde_json::Value;
use std::io::Read;
use std::path::Path;

/// A file's name (for messages) and text.
pub struct Source {
    pub name: String,
    pub text: String,
}

/// Reads a path, or stdin for `-`.
pub fn read_source(path: &Path) -> Result<Source> {
    if path.as_os_str() == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text).context("reading standard input")?;
        return Ok(Source { name: "<stdin>".into(), text });
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(Source { name: path.display().to_string(), text })
}

/// At most one input may come from stdin.
pub fn at_most_one_stdin(paths: &[&Path]) -> Result<()> {
    if paths.iter().filter(|p| p.as_os_str() == "-").count() > 1 {
        bail!("only one input can be read from standard input (-)");
    }
    Ok(())
}

/// One parsed line and its 1-based line number.
pub struct Line<T> {
    pub number: usize,
    pub value: T,
}

/// Parses JSON Lines: one JSON object per non-blank line. An empty file is an error.
pub fn parse_jsonl<T: DeserializeOwned>(source: &Source) -> Result<Vec<Line<T>>> {
    let mut out = Vec::new();
    for (index, raw) in source.text.lines().enumerate() {
        let number = index + 1;
        if raw.trim().is_empty() {
            continue;
        }
        let value: T = serde_json::from_str(raw).map_err(|e| {
            anyhow!("{}:{number}: {} (column {})", source.name, strip_position(&e), e.column())
        })?;
        out.push(Line { number, value });
    }
    if out.is_empty() {
        bail!("{}: the file is empty (expected one JSON object per line)", source.name);
    }
    Ok(out)
}

/// Parses one JSON document.
pub fn parse_document<T: DeserializeOwned>(source: &Source) -> Result<T> {
    if source.text.trim().is_empty() {
        bail!("{}: the file is empty (expected a JSON document)", source.name);
    }
    serde_json::from_str(&source.text)
        .map_err(|e| anyhow!("{}:{}: {} (column {})", source.name, e.line(), strip_position(&e), e.column()))
}

/// The 1-based line where element `index` of the array under `field` of the top-level object
/// starts (its first character), for messages about an element found wrong after parsing: a
/// serde error raised there would point past the element, at the line after it in a
/// pretty-printed file. None when the text does not have that shape.
pub fn array_element_line(text: &str, field: &str, index: usize) -> Option<usize> {
    let bytes = text.as_bytes();
    let skip_ws = |mut pos: usize| {
        while pos < bytes.len() && bytes[pos].is_ascii_whitespace() {
            pos += 1;
        }
        pos
    };
    // One JSON value starting at `start`, parsed by serde_json itself: its end and, for a key,
    // its text.
    let value_end = |start: usize| -> Option<usize> {
        let mut values = serde_json::Deserializer::from_str(&text[start..]).into_iter::<serde::de::IgnoredAny>();
        values.next()?.ok()?;
        Some(start + values.byte_offset())
    };
    let mut pos = skip_ws(0);
    if bytes.get(pos) != Some(&b'{') {
        return None;
    }
    pos += 1;
    loop {
        pos = skip_ws(pos);
        let mut keys = serde_json::Deserializer::from_str(&text[pos..]).into_iter::<String>();
        let key = keys.next()?.ok()?;
        pos = skip_ws(pos + keys.byte_offset());
        if bytes.get(pos) != Some(&b':') {
            return None;
        }
        pos = skip_ws(pos + 1);
        if key == field {
            if bytes.get(pos) != Some(&b'[') {
                return None;
            }
            pos += 1;
            for i in 0.. {
                pos = skip_ws(pos);
                if bytes.get(pos).is_none_or(|&b| b == b']') {
                    return None;
                }
                if i == index {
                    return Some(text[..pos].matches('\n').count() + 1);
                }
                pos = skip_ws(value_end(pos)?);
                if bytes.get(pos) == Some(&b',') {
                    pos += 1;
                }
            }
        }
        pos = skip_ws(value_end(pos)?);
        if bytes.get(pos) != Some(&b',') {
            return None;
        }
        pos += 1;
    }
}

/// serde_json appends " at line L column C"; we print the position our own way.
fn strip_position(e: &serde_json::Error) -> String {
    let text = e.to_string();
    match text.rfind(" at line ") {
        Some(at) => text[..at].to_string(),
        None => text,
    }
}

/// A label, item or annotator id given as a JSON string or number, as text. Numbers are
/// written the shortest way that reads back the same (1.0 and 1 are both "1").
pub fn scalar_text(value: &Value, what: &str) -> std::result::Result<String, String> {
    match value {
        Value::String(s) => Ok(s.clone()),
        Value::Number(n) => Ok(if let Some(i) = n.as_i64() {
            i.to_string()
        } else if let Some(u) = n.as_u64() {
            u.to_string()
        } else {
            n.as_f64().map(|f| f.to_string()).unwrap_or_else(|| n.to_string())
        }),
        other => Err(format!("{what} must be a string or a number, not {}", kind(other))),
    }
}

pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Splits `--labels a,b,c` into names (trimmed, non-empty).
pub fn split_list(list: &str) -> Vec<String> {
    list.split(',').map(|s| s.trim().to_string()).filter(|s| !s.is_empty()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;

    #[derive(Deserialize)]
    struct Row {
        #[allow(dead_code)]
        item: String,
    }

    fn source(text: &str) -> Source {
        Source { name: "f.jsonl".into(), text: text.into() }
    }

    #[test]
    fn jsonl_errors_name_the_line() {
        let e = parse_jsonl::<Row>(&source("{\"item\": \"a\"}\n\n{\"item\": 3\n")).err().unwrap().to_string();
        assert!(e.starts_with("f.jsonl:3: "), "{e}");
        let e = parse_jsonl::<Row>(&source("{\"other\": 1}")).err().unwrap().to_string();
        assert!(e.contains("f.jsonl:1: missing field `item`"), "{e}");
        let e = parse_jsonl::<Row>(&source("\n  \n")).err().unwrap().to_string();
        assert!(e.contains("empty"), "{e}");
    }

    #[test]
    fn document_errors_name_the_line() {
        let e = parse_document::<Row>(&source("{\n  \"item\": [1]\n}")).err().unwrap().to_string();
        assert!(e.starts_with("f.jsonl:2: "), "{e}");
        assert!(parse_document::<Row>(&source("  ")).err().unwrap().to_string().contains("empty"));
    }

    #[test]
    fn array_elements_are_located_where_they_start() {
        let text = "{\n  \"n\": [1, {\"x\": \"]\"}],\n  \"strata\": [\n    {\n      \"key\": \"a\"\n    },\n    {\"key\": \"b\"}, {\n\"key\": 3}\n  ]\n}";
        assert_eq!(array_element_line(text, "strata", 0), Some(4));
        assert_eq!(array_element_line(text, "strata", 1), Some(7));
        assert_eq!(array_element_line(text, "strata", 2), Some(7));
        assert_eq!(array_element_line(text, "strata", 3), None);
        assert_eq!(array_element_line(text, "n", 1), Some(2));
        assert_eq!(array_element_line(text, "other", 0), None);
        assert_eq!(array_element_line("[1]", "strata", 0), None);
    }

    #[test]
    fn scalars_as_text() {
        assert_eq!(scalar_text(&serde_json::json!(3), "x").unwrap(), "3");
        assert_eq!(scalar_text(&serde_json::json!(1.0), "x").unwrap(), "1");
        assert_eq!(scalar_text(&serde_json::json!(2.5), "x").unwrap(), "2.5");
        assert_eq!(scalar_text(&serde_json::json!("b"), "x").unwrap(), "b");
        assert!(scalar_text(&serde_json::json!(null), "label").unwrap_err().contains("label must be"));
    }
}
