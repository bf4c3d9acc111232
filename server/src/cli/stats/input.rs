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
    fn scalars_as_text() {
        assert_eq!(scalar_text(&serde_json::json!(3), "x").unwrap(), "3");
        assert_eq!(scalar_text(&serde_json::json!(1.0), "x").unwrap(), "1");
        assert_eq!(scalar_text(&serde_json::json!(2.5), "x").unwrap(), "2.5");
        assert_eq!(scalar_text(&serde_json::json!("b"), "x").unwrap(), "b");
        assert!(scalar_text(&serde_json::json!(null), "label").unwrap_err().contains("label must be"));
    }
}
