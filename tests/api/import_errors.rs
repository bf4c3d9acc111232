//! Imports that must be refused, or partly skipped, with reports a person can act on.
use std::collections::BTreeMap;

use app::api_types::*;
use serde_json::json;

use crate::common::*;

both_backends!(
    bad_line_imports_nothing,
    bad_csv_row_imports_nothing,
    duplicates_reported_and_skipped,
    exact_duplicate_lines_are_skipped,
    decompression_bomb_rejected,
    zip_with_parent_paths_rejected,
    broken_uploads_rejected,
    refused_imports_leave_no_images,
    over_long_csv_record_refused,
);

/// The `ImportReport` in a 422's `error.details`.
fn report_of(resp: &RawResponse) -> ImportReport {
    let err = resp.assert_error(422, "invalid_import");
    serde_json::from_value(err.details.clone())
        .unwrap_or_else(|e| panic!("error.details is not an ImportReport ({e}): {}", resp.text()))
}

async fn bad_line_imports_nothing(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("bad lines", 1, 600).await.id;
    let file = [
        json!({"id": "ok1", "text": "fine"}).to_string(),
        json!({"id": "w", "text": "heavy", "weight": "heavy"}).to_string(),
        json!({"id": "ok2", "text": "also fine"}).to_string(),
        "{this is not json".to_string(),
        json!({"id": "typo", "txt": "a typo in the field name"}).to_string(),
    ]
    .join("\n")
        + "\n";
    let resp = admin.import_raw(pid, "jsonl", file.into_bytes()).await;
    let report = report_of(&resp);
    assert_eq!(report.imported, 0, "any bad line means nothing is imported: {report:?}");
    assert_eq!(report.lines, 5, "{report:?}");
    assert_eq!(report.error_count, 3, "{report:?}");
    let find = |line: i64| {
        report
            .errors
            .iter()
            .find(|e| e.line == line)
            .unwrap_or_else(|| panic!("no error for line {line}: {report:?}"))
    };
    let weight = find(2);
    assert_eq!(weight.field, "weight", "{weight:?}");
    assert!(!weight.reason.trim().is_empty());
    let json_err = find(4);
    assert_eq!(json_err.field, "", "a line that is not JSON is wrong as a whole: {json_err:?}");
    assert!(!json_err.reason.trim().is_empty());
    assert_eq!(find(5).field, "txt", "the unknown field is named: {report:?}");
    assert!(report.errors.iter().all(|e| ![1, 3].contains(&e.line)), "good lines are not errors: {report:?}");

    // Nothing from the file exists.
    let summary = admin.summary(pid).await;
    assert_eq!(summary.item_count, 0);
    assert!(admin.next(pid).await.item.is_none());
    // The corrected file imports completely.
    let fixed = jsonl(&[json!({"id": "ok1", "text": "fine"}), json!({"id": "ok2", "text": "also fine"})]);
    assert_eq!(admin.import(pid, "jsonl", fixed).await.imported, 2);
    assert_eq!(admin.summary(pid).await.item_count, 2);
}

async fn bad_csv_row_imports_nothing(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("bad csv", 1, 600).await.id;
    let csv = "id,text,weight\nr1,fine,1\nr2,not a weight,abc\nr3,fine too,2\n";
    let resp = admin.import_raw(pid, "csv", csv.as_bytes().to_vec()).await;
    let report = report_of(&resp);
    assert_eq!((report.imported, report.error_count), (0, 1), "{report:?}");
    assert_eq!(report.errors[0].line, 3, "CSV lines count the header as line 1: {report:?}");
    assert_eq!(report.errors[0].field, "weight");
    assert_eq!(admin.summary(pid).await.item_count, 0);
}

async fn duplicates_reported_and_skipped(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("dups", 1, 600).await.id;
    // Duplicates are by content (the text or the image), whatever the id and meta say.
    let file = jsonl(&[
        json!({"id": "d1", "text": "same text", "meta": {"k": 1}}),
        json!({"id": "d2", "text": "other text"}),
        json!({"id": "d3", "text": "same text", "meta": {"k": 2}}),
        json!({"text": "other text"}),
    ]);
    let report = admin.import(pid, "jsonl", file.clone()).await;
    assert_eq!((report.lines, report.imported, report.duplicates), (4, 2, 2), "{report:?}");
    assert_eq!(
        report.duplicate_lines,
        vec![
            DuplicateLine { line: 3, duplicate_of: "line 1".into() },
            DuplicateLine { line: 4, duplicate_of: "line 2".into() },
        ],
        "{report:?}"
    );
    assert!(report.errors.is_empty());
    assert_eq!(admin.summary(pid).await.item_count, 2);

    // The same file again: everything is a duplicate. A line whose content appeared earlier in
    // the same file is a duplicate of that line (found while the file is validated, before the
    // database is asked); the first occurrences are duplicates of the stored items.
    let again = admin.import(pid, "jsonl", file).await;
    assert_eq!((again.lines, again.imported, again.duplicates), (4, 0, 4), "{again:?}");
    let item_of: BTreeMap<String, i64> = admin
        .export_jsonl(pid, false)
        .await
        .iter()
        .map(|l| (l["text"].as_str().unwrap().to_string(), l["item_id"].as_i64().unwrap()))
        .collect();
    assert_eq!(
        again.duplicate_lines,
        vec![
            DuplicateLine { line: 1, duplicate_of: format!("item {}", item_of["same text"]) },
            DuplicateLine { line: 2, duplicate_of: format!("item {}", item_of["other text"]) },
            DuplicateLine { line: 3, duplicate_of: "line 1".into() },
            DuplicateLine { line: 4, duplicate_of: "line 2".into() },
        ],
        "{again:?}"
    );
    assert_eq!(admin.summary(pid).await.item_count, 2);
}

/// A line repeated verbatim (the same id too, as when a file was concatenated twice) is an
/// exact duplicate: reported and skipped, not an error that refuses the whole file.
async fn exact_duplicate_lines_are_skipped(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("exact dups", 1, 600).await.id;
    let line = json!({"id": "e1", "text": "exactly the same", "meta": {"k": 1}, "source": "s"});
    let file = jsonl(&[line.clone(), json!({"id": "e2", "text": "different"}), line]);
    // Skipped as a duplicate, not refused (200 with the report).
    let report: ImportReport = admin.import_raw(pid, "jsonl", file.into_bytes()).await.ok();
    assert_eq!((report.lines, report.imported, report.duplicates), (3, 2, 1), "{report:?}");
    assert_eq!(report.duplicate_lines, vec![DuplicateLine { line: 3, duplicate_of: "line 1".into() }]);
    // The same id with different content is a real conflict, though.
    let clash = jsonl(&[json!({"id": "c1", "text": "one"}), json!({"id": "c1", "text": "two"})]);
    let resp = admin.import_raw(pid, "jsonl", clash.into_bytes()).await;
    let report = report_of(&resp);
    assert_eq!((report.errors[0].line, report.errors[0].field.as_str()), (2, "id"), "{report:?}");
}

fn multipart_files(files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    let boundary = format!("----mirrorset-test-{}", random_hex(8));
    let mut body = Vec::new();
    for (name, bytes) in files {
        body.extend_from_slice(
            format!(
                "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
                 Content-Type: image/png\r\n\r\n"
            )
            .as_bytes(),
        );
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (body, format!("multipart/form-data; boundary={boundary}"))
}

async fn decompression_bomb_rejected(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("bombs", 1, 600).await.id;
    let bomb = png_declaring(100_000, 100_000);
    assert!(bomb.len() < 1000, "the bomb is tiny on the wire");
    let ok = png(8, 8, 3);

    // In a zip: the import fails, naming the line and the image field.
    let data = jsonl(&[json!({"id": "bomb", "image": "bomb.png"}), json!({"id": "fine", "image": "ok.png"})]);
    let zip = zip_of(&[("data.jsonl", data.as_bytes()), ("bomb.png", &bomb), ("ok.png", &ok)]);
    let resp = admin.import_raw(pid, "zip", zip).await;
    let report = report_of(&resp);
    assert_eq!(report.imported, 0, "{report:?}");
    let e = report.errors.iter().find(|e| e.line == 1).unwrap_or_else(|| panic!("line 1 is named: {report:?}"));
    assert_eq!(e.field, "image", "{e:?}");
    assert!(e.reason.contains("100000"), "the reason says what the image declares: {e:?}");
    assert_eq!(admin.summary(pid).await.item_count, 0);

    // Uploaded directly: refused with a clear error, nothing stored.
    let (body, ct) = multipart_files(&[("bomb.png", &bomb)]);
    let resp = admin.raw(reqwest::Method::POST, &format!("/api/projects/{pid}/images"), Some((body, ct.as_str()))).await;
    // The upload goes through the same validation as a zip's lines: a 422 report naming it.
    let report = report_of(&resp);
    assert_eq!((report.error_count, report.errors[0].line, report.errors[0].field.as_str()), (1, 1, "image"), "{report:?}");
    assert!(report.errors[0].reason.contains("100000"), "the error says what the image declares: {report:?}");
    assert_eq!(admin.summary(pid).await.item_count, 0);

    // A real image through the same route works.
    let (body, ct) = multipart_files(&[("ok.png", &ok)]);
    let report: ImportReport =
        admin.raw(reqwest::Method::POST, &format!("/api/projects/{pid}/images"), Some((body, ct.as_str()))).await.ok();
    assert_eq!(report.imported, 1, "{report:?}");
    assert_eq!(admin.summary(pid).await.item_count, 1);
}

async fn zip_with_parent_paths_rejected(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("zip slip", 1, 600).await.id;
    let ok = png(4, 4, 9);
    let marker = format!("escaped-{}.png", random_hex(6));

    // An entry that would land outside the extraction directory.
    let data = jsonl(&[json!({"id": "x", "image": "ok.png"})]);
    let evil_entry = format!("../../{marker}");
    let zip = zip_of(&[("data.jsonl", data.as_bytes()), ("ok.png", &ok), (&evil_entry, &ok)]);
    let resp = admin.import_raw(pid, "zip", zip).await;
    // The archive as a whole is unusable (not one of its lines): 400.
    let err = resp.assert_error(400, "bad_request");
    assert!(err.message.contains(&evil_entry), "the error names the unsafe path: {}", resp.text());
    assert_eq!(admin.summary(pid).await.item_count, 0, "nothing imported from a malicious zip");

    // A data line pointing outside the zip.
    let data = jsonl(&[json!({"id": "y", "image": format!("../{marker}")})]);
    let zip = zip_of(&[("data.jsonl", data.as_bytes()), ("ok.png", &ok)]);
    let resp = admin.import_raw(pid, "zip", zip).await;
    let report = report_of(&resp);
    assert_eq!(report.errors.len(), 1, "{report:?}");
    assert_eq!((report.errors[0].line, report.errors[0].field.as_str()), (1, "image"), "{report:?}");
    assert_eq!(admin.summary(pid).await.item_count, 0);

    // Nothing was written outside the data directory.
    let mut escaped = Vec::new();
    let mut dirs = vec![server.dir().to_path_buf()];
    if let Some(parent) = server.dir().parent() {
        dirs.push(parent.to_path_buf());
    }
    dirs.push(server.data_dir().to_path_buf());
    if let Ok(entries) = std::fs::read_dir(server.data_dir()) {
        dirs.extend(entries.flatten().map(|e| e.path()).filter(|p| p.is_dir()));
    }
    for d in dirs {
        if d.join(&marker).exists() {
            escaped.push(d.join(&marker));
        }
    }
    assert!(escaped.is_empty(), "zip entries escaped: {escaped:?}");
}

async fn broken_uploads_rejected(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("broken", 1, 600).await.id;

    // Not a zip at all.
    // A file that cannot be read at all is a bad request (400), not a report of bad lines (422).
    let resp = admin.import_raw(pid, "zip", b"this is not a zip file".to_vec()).await;
    assert!(resp.assert_error(400, "bad_request").message.contains("not a readable zip"), "{}", resp.text());
    // A zip without a data file.
    let resp = admin.import_raw(pid, "zip", zip_of(&[("a.png", &png(2, 2, 1))])).await;
    assert!(resp.assert_error(400, "bad_request").message.contains("exactly one .jsonl or .csv"), "{}", resp.text());
    // An unknown format.
    let resp = admin.import_raw(pid, "xlsx", b"x".to_vec()).await;
    resp.assert_error(400, "bad_request");
    // An image line whose file is missing from the zip.
    let data = jsonl(&[json!({"id": "m", "image": "missing.png"})]);
    let resp = admin.import_raw(pid, "zip", zip_of(&[("data.jsonl", data.as_bytes())])).await;
    let report = report_of(&resp);
    assert_eq!((report.errors[0].line, report.errors[0].field.as_str()), (1, "image"), "{report:?}");
    // A non-image file named as the image.
    let data = jsonl(&[json!({"id": "t", "image": "fake.png"})]);
    let zip = zip_of(&[("data.jsonl", data.as_bytes()), ("fake.png", b"not an image at all")]);
    let report = report_of(&admin.import_raw(pid, "zip", zip).await);
    assert_eq!((report.errors[0].line, report.errors[0].field.as_str()), (1, "image"), "{report:?}");
    assert_eq!(admin.summary(pid).await.item_count, 0);
}

/// Images are stored while an upload is validated. When the import is then refused (a bad
/// line, or an id that clashes with a stored item at insertion), the images it stored go
/// again: files, thumbnails and `images` rows. Images that something else uses stay.
async fn refused_imports_leave_no_images(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("refused images", 1, 600).await.id;
    let images_dir = server.data_dir().join("images");
    let thumbs_dir = server.data_dir().join("thumbnails");
    let files = || (count_files(&images_dir), count_files(&thumbs_dir));
    let kept = png(6, 6, 200);
    let report = admin
        .import(pid, "zip", zip_of(&[("d.jsonl", jsonl(&[json!({"id": "kept", "image": "k.png"})]).as_bytes()), ("k.png", &kept)]))
        .await;
    assert_eq!(report.imported, 1, "{report:?}");
    assert_eq!(files(), (1, 1));
    admin.import(pid, "jsonl", jsonl(&[json!({"id": "taken", "text": "a stored text item"})])).await;

    let (a, b2, c) = (png(5, 5, 1), png(5, 5, 2), png(5, 5, 3));
    // Refused at validation: a bad line next to good image lines (and the kept image again).
    let data = jsonl(&[
        json!({"id": "a", "image": "a.png"}),
        json!({"id": "b", "image": "b.png"}),
        json!({"id": "k2", "image": "k.png"}),
        json!({"id": "w", "image": "c.png", "weight": "heavy"}),
    ]);
    let zip = zip_of(&[("d.jsonl", data.as_bytes()), ("a.png", &a), ("b.png", &b2), ("c.png", &c), ("k.png", &kept)]);
    let report = report_of(&admin.import_raw(pid, "zip", zip).await);
    assert_eq!(report.error_count, 1, "{report:?}");
    assert_eq!(files(), (1, 1), "only the image of the stored item is left");

    // Refused at insertion: an id already used by a stored item, after 600 good lines (so at
    // least one chunk of pending rows with images was written first).
    let mut lines: Vec<serde_json::Value> = (0..600).map(|i| json!({"id": format!("n{i}"), "text": format!("text {i}")})).collect();
    lines[0] = json!({"id": "n0", "image": "a.png"});
    lines[1] = json!({"id": "n1", "image": "b.png"});
    lines.push(json!({"id": "taken", "image": "c.png"}));
    let zip = zip_of(&[("d.jsonl", jsonl(&lines).as_bytes()), ("a.png", &a), ("b.png", &b2), ("c.png", &c)]);
    let resp = admin.import_raw(pid, "zip", zip).await;
    let report = report_of(&resp);
    assert_eq!((report.error_count, report.errors[0].line, report.errors[0].field.as_str()), (1, 601, "id"), "{report:?}");
    assert_eq!(files(), (1, 1), "the refused import's images are collected");
    assert_eq!(admin.summary(pid).await.item_count, 2);
    assert_eq!(admin.export_jsonl(pid, false).await.len(), 2);

    // The same images import fine afterwards, and are served.
    let data = jsonl(&[json!({"id": "a", "image": "a.png"}), json!({"id": "b", "image": "b.png"})]);
    let report = admin.import(pid, "zip", zip_of(&[("d.jsonl", data.as_bytes()), ("a.png", &a), ("b.png", &b2)])).await;
    assert_eq!(report.imported, 2, "{report:?}");
    assert_eq!(files(), (3, 3));
    let items = admin.export_jsonl(pid, false).await;
    for item in items.iter().filter(|i| i["kind"] == "image") {
        let id = item["item_id"].as_i64().unwrap();
        admin.get_raw(&format!("/api/items/{id}/image")).await.assert_status(200);
        admin.get_raw(&format!("/api/items/{id}/thumbnail")).await.assert_status(200);
    }
}

/// A CSV record is capped like a JSONL line (4 MiB): reported by line, nothing imported.
async fn over_long_csv_record_refused(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("long csv", 1, 600).await.id;
    let long = "x".repeat(5 * 1024 * 1024);
    let csv = format!("id,text\nr1,fine\nr2,{long}\nr3,also fine\n");
    let report = report_of(&admin.import_raw(pid, "csv", csv.into_bytes()).await);
    assert_eq!((report.error_count, report.errors[0].line), (1, 3), "{report:?}");
    assert!(report.errors[0].reason.contains("longer than 4 MiB"), "{report:?}");
    // An unclosed quote would make the rest of the file one record: refused at the cap.
    let csv = format!("id,text\nr1,fine\nr2,\"{long}\n");
    let report = report_of(&admin.import_raw(pid, "csv", csv.into_bytes()).await);
    assert!(report.errors.iter().any(|e| e.reason.contains("unclosed quote")), "{report:?}");
    assert_eq!(admin.summary(pid).await.item_count, 0);
}
