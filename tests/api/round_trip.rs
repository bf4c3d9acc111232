//! Import → next → submit → export, in every import and export format.
use std::collections::{BTreeMap, BTreeSet};

use app::api_types::*;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(jsonl_import_label_export, csv_import_meta_columns, complete_only_export, zip_image_import);

fn label_for(text: &str) -> &'static str {
    if text.contains("great") {
        "pos"
    } else if text.contains("Terrible") {
        "neg"
    } else {
        "other"
    }
}

async fn jsonl_import_label_export(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let project = admin.simple_project("round trip", 1, 600).await;
    let pid = project.id;
    let (lena, l) = server.user(&admin, "lena", Role::Labeler).await;
    admin.add_member(pid, lena.id).await;

    let file = jsonl(&[
        json!({"id": "a1", "text": "The food was great", "meta": {"region": "eu", "channel": "web"},
               "weight": 2.5, "source": "prod-2024", "license": "cc-by-4.0"}),
        json!({"id": "a2", "text": "Terrible service", "meta": {"region": "us"}}),
        json!({"text": "No id here", "source": "synthetic"}),
    ]);
    let report = admin.import(pid, "jsonl", file).await;
    assert_eq!(
        (report.lines, report.imported, report.duplicates, report.error_count),
        (3, 3, 0, 0),
        "{report:?}"
    );
    assert!(report.errors.is_empty() && report.duplicate_lines.is_empty(), "{report:?}");

    let summary = admin.summary(pid).await;
    assert_eq!((summary.item_count, summary.done_count), (3, 0));

    // Label everything, remembering what the labeler was shown and answered.
    let mut given: BTreeMap<i64, (String, &str)> = BTreeMap::new();
    let mut submitted_at: BTreeMap<i64, String> = BTreeMap::new();
    for _ in 0..3 {
        let next = l.next(pid).await;
        let item = next.item.clone().expect("an item while some are unlabeled");
        assert!(next.lease_expires_at.is_some(), "a handed-out item has a lease: {next:?}");
        assert_eq!(item.kind, ItemKind::Text);
        let text = item.text.clone().expect("a text item has text");
        if text.contains("great") {
            assert_eq!(item.external_id.as_deref(), Some("a1"));
            assert_eq!(item.meta.get("region"), Some(&json!("eu")));
            assert_eq!(item.meta.get("channel"), Some(&json!("web")));
        }
        let lab = label_for(&text);
        let ann = l.submit(pid, item.id, &[lab]).await;
        assert_eq!((ann.item_id, ann.user_id, ann.labels.clone()), (item.id, lena.id, vec![lab.to_string()]));
        assert_eq!(ann.time_ms, 1234);
        assert!(ann.created_at > 1_600_000_000_000, "created_at is ms since the epoch: {ann:?}");
        assert!(given.insert(item.id, (text, lab)).is_none(), "item {} handed out twice", item.id);
        submitted_at.insert(item.id, rfc3339_ms(ann.created_at));
    }
    let done = l.next(pid).await;
    assert!(done.item.is_none(), "nothing left after labeling all three: {done:?}");
    assert_eq!((done.progress.mine_total, done.progress.done, done.progress.total), (3, 3, 3), "{done:?}");
    let progress = l.progress(pid).await;
    assert_eq!((progress.mine_total, progress.done, progress.total), (3, 3, 3));

    // JSONL export: one line per item, every annotation inside.
    let lines = admin.export_jsonl(pid, false).await;
    assert_eq!(lines.len(), 3, "{lines:?}");
    for line in &lines {
        let item_id = line["item_id"].as_i64().unwrap_or_else(|| panic!("item_id missing: {line}"));
        let (text, lab) = given.get(&item_id).unwrap_or_else(|| panic!("unknown item_id in {line}"));
        assert_eq!(line["text"], json!(text), "{line}");
        let anns = line["annotations"].as_array().unwrap_or_else(|| panic!("annotations missing: {line}"));
        assert_eq!(anns.len(), 1, "{line}");
        assert_eq!(anns[0]["labeler"], "lena", "{line}");
        assert_eq!(anns[0]["labels"], json!([lab]), "{line}");
        assert_eq!(anns[0]["time_ms"], 1234, "{line}");
        // Timestamps are RFC 3339 strings in UTC with milliseconds, the submission's created_at.
        let created = &submitted_at[&item_id];
        assert_eq!(anns[0]["created_at"], json!(created), "{line}");
        assert_eq!(anns[0]["updated_at"], json!(created), "{line}");
        match text.as_str() {
            "The food was great" => {
                assert_eq!(line["id"], "a1");
                assert_eq!(line["meta"], json!({"region": "eu", "channel": "web"}));
                assert_eq!(line["weight"].as_f64(), Some(2.5));
                assert_eq!(line["source"], "prod-2024");
                assert_eq!(line["license"], "cc-by-4.0");
            }
            "Terrible service" => {
                assert_eq!(line["id"], "a2");
                assert_eq!(line["meta"], json!({"region": "us"}));
                assert_eq!(line["weight"].as_f64(), Some(1.0), "weight defaults to 1: {line}");
                assert!(line["source"].is_null() && line["license"].is_null(), "{line}");
            }
            _ => {
                assert!(line["id"].is_null(), "no external id was given: {line}");
                assert_eq!(line["source"], "synthetic");
            }
        }
    }

    // CSV export: one row per annotation, same content.
    let (header, rows) = admin.export_csv(pid, false).await;
    assert_eq!(
        header,
        [
            "item_id", "id", "kind", "text", "image", "image_sha256", "meta", "weight", "source", "license",
            "label_count", "labeler", "labels", "time_ms", "annotated_at", "updated_at",
            "final_labels", "final_source", "posterior", "gold", "review_note",
        ],
        "the CSV columns, in order"
    );
    assert_eq!(rows.len(), 3, "{rows:?}");
    for row in &rows {
        let item_id: i64 = row["item_id"].parse().expect("item_id is an integer");
        let (text, lab) = &given[&item_id];
        assert_eq!(&row["text"], text);
        assert_eq!(row["labeler"], "lena");
        assert_eq!(row["labels"], *lab);
        assert_eq!(row["time_ms"], "1234");
        assert_eq!(row["annotated_at"], submitted_at[&item_id], "{row:?}");
        if text.contains("great") {
            assert_eq!(row["id"], "a1");
            assert_eq!(row["weight"].parse::<f64>().unwrap(), 2.5);
            assert_eq!(row["source"], "prod-2024");
            assert_eq!(row["license"], "cc-by-4.0");
            let meta: Value = serde_json::from_str(&row["meta"]).expect("meta column is JSON");
            assert_eq!(meta, json!({"region": "eu", "channel": "web"}));
        }
    }
}

async fn csv_import_meta_columns(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("csv", 1, 600).await.id;
    let csv = "id,text,weight,source,license,region,lang\n\
               c1,\"Hello, world\",1.5,web,cc0,eu,en\n\
               c2,\"Line with \"\"quotes\"\"\nand a newline\",1,app,cc-by,us,de\n";
    let report = admin.import(pid, "csv", csv).await;
    assert_eq!((report.lines, report.imported, report.error_count), (2, 2, 0), "{report:?}");

    // The admin labels too (admins may label any project).
    for _ in 0..2 {
        let item = admin.next(pid).await.item.expect("an item");
        admin.submit(pid, item.id, &["pos"]).await;
    }
    let lines = admin.export_jsonl(pid, false).await;
    assert_eq!(lines.len(), 2);
    let by_id: BTreeMap<String, &Value> =
        lines.iter().map(|l| (l["id"].as_str().expect("id").to_string(), l)).collect();
    let c1 = by_id["c1"];
    assert_eq!(c1["text"], "Hello, world");
    assert_eq!(c1["weight"].as_f64(), Some(1.5));
    assert_eq!(c1["source"], "web");
    assert_eq!(c1["license"], "cc0");
    assert_eq!(c1["meta"], json!({"region": "eu", "lang": "en"}), "other CSV columns become meta: {c1}");
    let c2 = by_id["c2"];
    assert_eq!(c2["text"], "Line with \"quotes\"\nand a newline");
    assert_eq!(c2["meta"], json!({"region": "us", "lang": "de"}));
    assert_eq!(c2["annotations"][0]["labeler"], "admin");
}

async fn complete_only_export(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("k2", 2, 600).await.id;
    admin.import_texts(pid, "k2", 2).await;
    let (u1, l1) = server.user(&admin, "first", Role::Labeler).await;
    let (u2, l2) = server.user(&admin, "second", Role::Labeler).await;
    admin.add_member(pid, u1.id).await;
    admin.add_member(pid, u2.id).await;

    // first labels both items, second labels one.
    let mut firsts = BTreeSet::new();
    while let Some(id) = l1.next_id(pid).await {
        l1.submit(pid, id, &["pos"]).await;
        firsts.insert(id);
    }
    assert_eq!(firsts.len(), 2);
    let id = l2.next_id(pid).await.expect("second gets an item");
    l2.submit(pid, id, &["neg"]).await;

    let all = admin.export_jsonl(pid, false).await;
    assert_eq!(all.len(), 2);
    let complete = admin.export_jsonl(pid, true).await;
    assert_eq!(complete.len(), 1, "only the item with 2 labels is complete: {complete:?}");
    assert_eq!(complete[0]["item_id"], id);
    let labelers: BTreeSet<&str> =
        complete[0]["annotations"].as_array().unwrap().iter().map(|a| a["labeler"].as_str().unwrap()).collect();
    assert_eq!(labelers, BTreeSet::from(["first", "second"]));

    let (_, rows) = admin.export_csv(pid, true).await;
    assert_eq!(rows.len(), 2, "two annotation rows of the one complete item: {rows:?}");
    assert!(rows.iter().all(|r| r["item_id"] == id.to_string()));
    let (_, rows) = admin.export_csv(pid, false).await;
    assert_eq!(rows.len(), 3, "{rows:?}");
    assert_eq!(admin.summary(pid).await.done_count, 1);
}

async fn zip_image_import(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("images", 1, 600).await.id;
    let a = png(40, 30, 1);
    let bb = png(20, 10, 2);
    let data = jsonl(&[
        json!({"id": "img1", "image": "images/a.png", "meta": {"camera": "front"}}),
        json!({"id": "img2", "image": "images/b.png", "license": "cc0"}),
    ]);
    let zip = zip_of(&[("data.jsonl", data.as_bytes()), ("images/a.png", &a), ("images/b.png", &bb)]);
    let report = admin.import(pid, "zip", zip).await;
    assert_eq!((report.lines, report.imported, report.error_count), (2, 2, 0), "{report:?}");

    let mut seen = BTreeMap::new();
    while let Some(item) = admin.next(pid).await.item {
        assert_eq!(item.kind, ItemKind::Image, "{item:?}");
        let url = item.image_url.clone().expect("an image item has image_url");
        let ext = item.external_id.clone().expect("external id");
        let (w, h) = if ext == "img1" { (40, 30) } else { (20, 10) };
        assert_eq!((item.width, item.height), (Some(w), Some(h)), "{item:?}");

        let resp = admin.get_raw(&url).await;
        resp.assert_status(200);
        let ct = resp.headers.get("content-type").map(|v| v.to_str().unwrap());
        assert_eq!(ct, Some("image/png"), "the original is served in its own format");
        let img = image::load_from_memory(&resp.body).expect("the served image decodes");
        assert_eq!((img.width() as i64, img.height() as i64), (w, h));

        let thumb = admin.get_raw(&format!("/api/items/{}/thumbnail", item.id)).await;
        thumb.assert_status(200);
        assert_eq!(thumb.headers.get("content-type").map(|v| v.to_str().unwrap()), Some("image/jpeg"));
        assert_eq!(image::guess_format(&thumb.body).ok(), Some(image::ImageFormat::Jpeg), "thumbnails are JPEG");
        image::load_from_memory(&thumb.body).expect("the thumbnail decodes");

        admin.submit(pid, item.id, &["other"]).await;
        seen.insert(ext, item.id);
    }
    assert_eq!(seen.len(), 2);
    let lines = admin.export_jsonl(pid, false).await;
    for line in &lines {
        // The export names each item's image as the data file did.
        let name = if line["id"] == "img1" { "images/a.png" } else { "images/b.png" };
        assert_eq!(line["image"], name, "{line}");
        assert_eq!(line["annotations"].as_array().unwrap().len(), 1);
    }
    let img1 = lines.iter().find(|l| l["id"] == "img1").expect("img1 exported");
    assert_eq!(img1["meta"], json!({"camera": "front"}));
}

/// Milliseconds since the epoch as the export writes them: RFC 3339, UTC, three decimals.
fn rfc3339_ms(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000).expect("a valid time");
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        t.month() as u8,
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}
