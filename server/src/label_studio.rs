//! Label Studio JSON, both ways (issue 9): teams move in and out.
//!
//! Reading: Label Studio's full JSON export (`exportType=JSON`, an array of tasks with their
//! annotations), streamed task by task, so a large export needs memory for one task only.
//! A task's `data` holds the text under a field the caller names (`text` by default); the
//! other scalar fields become slice attributes (`meta`), and one of them may be the external
//! id (else `ls-<task id>`). Annotations of type `choices` become label sets; cancelled
//! (skipped) annotations and other result types are counted, not imported. Predictions, when
//! the export inlines them (objects rather than ids), are kept with score and model version.
//!
//! Writing: the same shape, with one `choices` control named `label` on a `text` object, and
//! the label config that goes with it (`label_config`), so Label Studio reads it back.
use std::collections::BTreeMap;
use std::fmt;
use std::io::Read;

use serde::de::{DeserializeSeed, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{json, Map, Value};

/// One task as Mirrorset sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Task {
    pub external_id: String,
    pub text: String,
    pub meta: Map<String, Value>,
    pub annotations: Vec<TaskAnnotation>,
    pub predictions: Vec<TaskPrediction>,
    /// Annotations left out: cancelled (skipped) ones, and those with no `choices` result.
    pub skipped_annotations: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskAnnotation {
    /// Label Studio's user: an id, or an email when the export inlines the user.
    pub annotator: String,
    pub labels: Vec<String>,
    pub lead_time_ms: i64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TaskPrediction {
    pub labels: Vec<String>,
    pub score: Option<f64>,
    pub model_version: Option<String>,
}

/// Where the text and the external id are in a task's `data` (without `id_field`:
/// `data.external_id` when the task has one, as Mirrorset writes it, else `ls-<task id>`).
#[derive(Debug, Clone)]
pub struct ReadOptions {
    pub text_field: String,
    pub id_field: Option<String>,
}

impl Default for ReadOptions {
    fn default() -> Self {
        ReadOptions { text_field: "text".into(), id_field: None }
    }
}

/// Why a task could not be read: its position (1-based) and a sentence.
#[derive(Debug, Clone, PartialEq)]
pub struct TaskError {
    pub task: usize,
    pub message: String,
}

impl fmt::Display for TaskError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task {}: {}", self.task, self.message)
    }
}

#[derive(Deserialize)]
struct RawTask {
    id: Option<i64>,
    #[serde(default)]
    data: Map<String, Value>,
    #[serde(default)]
    annotations: Vec<RawAnnotation>,
    #[serde(default)]
    predictions: Vec<Value>,
}

#[derive(Deserialize)]
struct RawAnnotation {
    #[serde(default)]
    completed_by: Value,
    #[serde(default)]
    result: Vec<RawResult>,
    #[serde(default)]
    was_cancelled: bool,
    #[serde(default)]
    lead_time: Option<f64>,
}

#[derive(Deserialize)]
struct RawResult {
    #[serde(rename = "type", default)]
    kind: String,
    #[serde(default)]
    value: Value,
}

/// The choices of a result list's `choices` entries, in order, without repeats.
fn choices(results: &[RawResult]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in results.iter().filter(|r| r.kind == "choices") {
        for c in r.value.get("choices").and_then(Value::as_array).into_iter().flatten() {
            if let Some(c) = c.as_str() {
                if !out.iter().any(|o| o == c) {
                    out.push(c.to_string());
                }
            }
        }
    }
    out
}

fn annotator(v: &Value) -> String {
    match v {
        Value::Object(o) => o
            .get("email")
            .or_else(|| o.get("id"))
            .map(|x| x.as_str().map(String::from).unwrap_or_else(|| x.to_string()))
            .unwrap_or_default(),
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

fn convert(raw: RawTask, position: usize, opts: &ReadOptions) -> Result<Task, TaskError> {
    let err = |message: String| TaskError { task: position, message };
    let mut data = raw.data;
    let text = match data.remove(&opts.text_field) {
        Some(Value::String(s)) => s,
        Some(_) => return Err(err(format!("data.{} is not a string", opts.text_field))),
        None => return Err(err(format!("data has no {:?} field (the text)", opts.text_field))),
    };
    let external_id = match &opts.id_field {
        Some(f) => match data.remove(f) {
            Some(Value::String(s)) if !s.is_empty() => s,
            Some(Value::Number(n)) => n.to_string(),
            _ => return Err(err(format!("data has no {f:?} field (the external id)"))),
        },
        // What Mirrorset's own export writes (`task_json`), so a round trip keeps ids; else
        // the Label Studio task id.
        None => match (data.get("external_id"), raw.id) {
            (Some(Value::String(s)), _) if !s.is_empty() => {
                let s = s.clone();
                data.remove("external_id");
                s
            }
            (_, Some(id)) => format!("ls-{id}"),
            (_, None) => return Err(err("the task has no id".into())),
        },
    };
    // Slice attributes are scalars; nested values would not make a slice.
    let meta: Map<String, Value> =
        data.into_iter().filter(|(_, v)| matches!(v, Value::String(_) | Value::Number(_) | Value::Bool(_))).collect();
    let mut annotations = Vec::new();
    let mut skipped = 0;
    for a in raw.annotations {
        let labels = choices(&a.result);
        if a.was_cancelled || labels.is_empty() {
            skipped += 1;
            continue;
        }
        annotations.push(TaskAnnotation {
            annotator: annotator(&a.completed_by),
            labels,
            lead_time_ms: a.lead_time.map_or(0, |s| (s * 1000.0).round() as i64),
        });
    }
    let predictions = raw
        .predictions
        .into_iter()
        .filter_map(|p| {
            // The full export lists predictions by id only: nothing to import from those.
            let o = p.as_object()?;
            let results: Vec<RawResult> = serde_json::from_value(o.get("result")?.clone()).ok()?;
            let labels = choices(&results);
            (!labels.is_empty()).then(|| TaskPrediction {
                labels,
                score: o.get("score").and_then(Value::as_f64),
                model_version: o.get("model_version").and_then(Value::as_str).map(String::from),
            })
        })
        .collect();
    Ok(Task { external_id, text, meta, annotations, predictions, skipped_annotations: skipped })
}

/// Reads a Label Studio JSON export, calling `each` with every task in order (or the reason it
/// could not be read). Stops at the first error `each` returns. A file that is not a JSON
/// array of objects is an error before any task.
pub fn read_tasks<R: Read, E>(
    reader: R,
    opts: &ReadOptions,
    mut each: impl FnMut(Result<Task, TaskError>) -> Result<(), E>,
) -> Result<Result<(), E>, serde_json::Error> {
    struct Tasks<'a, F, E> {
        opts: &'a ReadOptions,
        each: &'a mut F,
        outcome: Option<E>,
    }
    impl<'de, F, E> Visitor<'de> for &mut Tasks<'_, F, E>
    where
        F: FnMut(Result<Task, TaskError>) -> Result<(), E>,
    {
        type Value = ();
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("a JSON array of Label Studio tasks")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
            let mut position = 0;
            while let Some(raw) = seq.next_element::<RawTask>()? {
                position += 1;
                if let Err(e) = (self.each)(convert(raw, position, self.opts)) {
                    self.outcome = Some(e);
                    // The rest is read past (not parsed into tasks): serde wants the array whole.
                    while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                    return Ok(());
                }
            }
            Ok(())
        }
    }
    impl<'de, F, E> DeserializeSeed<'de> for &mut Tasks<'_, F, E>
    where
        F: FnMut(Result<Task, TaskError>) -> Result<(), E>,
    {
        type Value = ();
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
            d.deserialize_seq(self)
        }
    }
    let mut tasks = Tasks { opts, each: &mut each, outcome: None };
    let mut de = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
    (&mut tasks).deserialize(&mut de)?;
    if tasks.outcome.is_none() {
        de.end()?;
    }
    Ok(match tasks.outcome {
        Some(e) => Err(e),
        None => Ok(()),
    })
}

/// One item to write, with its labelers' answers.
#[derive(Debug, Clone, Serialize)]
pub struct OutTask<'a> {
    pub id: i64,
    pub external_id: Option<&'a str>,
    pub text: &'a str,
    pub meta: &'a Map<String, Value>,
    /// (annotator name, labels, time in ms)
    pub annotations: Vec<(&'a str, &'a [String], i64)>,
}

/// A task in Label Studio's import/export shape. The external id goes in `data.external_id`,
/// so reading it back with `id_field = "external_id"` keeps ids.
pub fn task_json(t: &OutTask<'_>) -> Value {
    let mut data: BTreeMap<String, Value> = t.meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
    data.insert("text".into(), json!(t.text));
    if let Some(x) = t.external_id {
        data.insert("external_id".into(), json!(x));
    }
    let annotations: Vec<Value> = t
        .annotations
        .iter()
        .map(|(who, labels, ms)| {
            json!({
                "completed_by": {"email": who},
                "result": [{"from_name": "label", "to_name": "text", "type": "choices", "value": {"choices": labels}}],
                "was_cancelled": false,
                "lead_time": *ms as f64 / 1000.0,
            })
        })
        .collect();
    json!({"id": t.id, "data": data, "annotations": annotations, "predictions": []})
}

/// The labeling config that reads `task_json`'s tasks: a text and one choices control.
pub fn label_config(labels: &[String], multiple: bool) -> String {
    let mut xml = String::from("<View>\n  <Text name=\"text\" value=\"$text\"/>\n");
    let choice = if multiple { "multiple" } else { "single" };
    xml.push_str(&format!("  <Choices name=\"label\" toName=\"text\" choice=\"{choice}\">\n"));
    for l in labels {
        let escaped = l.replace('&', "&amp;").replace('"', "&quot;").replace('<', "&lt;").replace('>', "&gt;");
        xml.push_str(&format!("    <Choice value=\"{escaped}\"/>\n"));
    }
    xml.push_str("  </Choices>\n</View>\n");
    xml
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture() -> std::fs::File {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        std::fs::File::open(root.join("../tests/data/label-studio-1.23.2/export.json")).unwrap()
    }

    fn read_all(r: impl Read, opts: &ReadOptions) -> Vec<Result<Task, TaskError>> {
        let mut out = Vec::new();
        read_tasks(r, opts, |t| {
            out.push(t);
            Ok::<(), ()>(())
        })
        .unwrap()
        .unwrap();
        out
    }

    /// The real Label Studio 1.23.2 export: 12 tasks, two annotators on the first eight, the
    /// second one's skip of task 8 left out, four tasks without annotations.
    #[test]
    fn reads_a_real_label_studio_export() {
        let opts = ReadOptions { id_field: Some("review_id".into()), ..Default::default() };
        let tasks: Vec<Task> = read_all(fixture(), &opts).into_iter().map(Result::unwrap).collect();
        assert_eq!(tasks.len(), 12);
        let first = &tasks[0];
        assert_eq!(first.external_id, "r-0");
        assert_eq!(first.text, "The battery lasts all day.");
        assert_eq!(first.meta, json!({"region": "apac", "device": "desktop"}).as_object().unwrap().clone());
        assert_eq!(
            first.annotations,
            vec![
                TaskAnnotation { annotator: "2".into(), labels: vec!["negative".into()], lead_time_ms: 2580 },
                TaskAnnotation { annotator: "3".into(), labels: vec!["neutral".into()], lead_time_ms: 7550 },
            ]
        );
        assert_eq!(tasks[7].annotations.len(), 1);
        assert_eq!(tasks[7].skipped_annotations, 1);
        assert_eq!(tasks.iter().filter(|t| t.annotations.is_empty()).count(), 4);
        assert_eq!(tasks.iter().map(|t| t.annotations.len()).sum::<usize>(), 15);
        // The full export lists predictions by id only.
        assert!(tasks.iter().all(|t| t.predictions.is_empty()));
        // Without an id field, the task id.
        let by_task_id = read_all(fixture(), &ReadOptions::default());
        assert_eq!(by_task_id[0].as_ref().unwrap().external_id, "ls-1");
    }

    #[test]
    fn written_tasks_read_back_the_same() {
        let meta = json!({"region": "eu"}).as_object().unwrap().clone();
        let labels = vec!["a".to_string(), "b".to_string()];
        let out = OutTask {
            id: 7,
            external_id: Some("x-7"),
            text: "hello",
            meta: &meta,
            annotations: vec![("lena", &labels, 1500)],
        };
        let file = serde_json::to_vec(&vec![task_json(&out)]).unwrap();
        let opts = ReadOptions { id_field: Some("external_id".into()), ..Default::default() };
        let back = read_all(&file[..], &opts).remove(0).unwrap();
        assert_eq!(back.external_id, "x-7");
        assert_eq!(back.text, "hello");
        assert_eq!(back.meta, meta);
        assert_eq!(back.annotations, vec![TaskAnnotation { annotator: "lena".into(), labels, lead_time_ms: 1500 }]);
        assert!(label_config(&["a\"<".into()], true).contains("<Choice value=\"a&quot;&lt;\"/>"));
    }

    #[test]
    fn bad_tasks_and_bad_files_are_named() {
        let file = br#"[{"id": 1, "data": {"text": "ok"}}, {"id": 2, "data": {"body": "no text"}}, {"id": 3, "data": {"text": 5}}]"#;
        let got = read_all(&file[..], &ReadOptions::default());
        assert!(got[0].is_ok());
        assert_eq!(got[1].as_ref().unwrap_err().to_string(), "task 2: data has no \"text\" field (the text)");
        assert_eq!(got[2].as_ref().unwrap_err().to_string(), "task 3: data.text is not a string");
        assert!(read_tasks(&b"{\"not\": \"an array\"}"[..], &ReadOptions::default(), |_| Ok::<(), ()>(())).is_err());
        assert!(read_tasks(&b"[{\"id\": 1, \"data\": {\"text\": \"a\"}}] trailing"[..], &ReadOptions::default(), |_| Ok::<(), ()>(())).is_err());
        // The callback can stop the read.
        let stopped = read_tasks(&file[..], &ReadOptions::default(), |_| Err("stop")).unwrap();
        assert_eq!(stopped, Err("stop"));
    }
}
