//! Label Studio JSON imports (issue 9: teams move in and out).
//!
//! - The real Label Studio 1.23.2 export (tests/data/label-studio-1.23.2) imports as exactly
//!   its 12 items (text, the other `data` fields as meta, `ls-<task id>` ids) and its 15
//!   answered annotations, attributed to one locked labeler account per Label Studio user
//!   (`ls-2`, `ls-3`), made members; the cancelled annotation of task 8 is left out.
//! - A bad task (no text), an annotation with a label the project does not have, and a file
//!   cut short are each refused with 422 naming the task's position; nothing is saved.
//! - The round trip (called from the release test): a release's Label Studio export imported
//!   into a fresh project gives the same items and labels, attributed to the same users.
use std::collections::BTreeMap;

use app::api_types::*;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(
    label_studio_export_imports_with_its_annotations,
    bad_label_studio_files_save_nothing,
    a_database_failure_saves_neither_items_nor_annotations
);

fn fixture() -> Vec<u8> {
    std::fs::read(workspace_root().join("tests/data/label-studio-1.23.2/export.json")).unwrap()
}

fn sentiment_project(name: &str, overlap: i64) -> NewProject {
    NewProject {
        labels: vec![label("positive", "p", "#22aa22"), label("neutral", "e", "#888888"), label("negative", "n", "#aa2222")],
        ..new_project(name, overlap, 600)
    }
}

/// Each item of the JSONL export as one line: id | text | meta | labeler:labels:ms, ...
async fn compact(admin: &Client, pid: i64) -> Vec<String> {
    let resp = admin.export_raw(pid, "jsonl", false).await;
    resp.assert_status(200);
    resp.text()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let anns: Vec<String> = v["annotations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| format!("{}:{}:{}", a["labeler"].as_str().unwrap(), labels_text(&a["labels"]), a["time_ms"]))
                .collect();
            format!("{} | {} | {} | {}", v["id"].as_str().unwrap(), v["text"].as_str().unwrap(), v["meta"], anns.join(","))
        })
        .collect()
}

fn labels_text(v: &Value) -> String {
    v.as_array().unwrap().iter().map(|l| l.as_str().unwrap()).collect::<Vec<_>>().join("+")
}

async fn label_studio_export_imports_with_its_annotations(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.create_project(&sentiment_project("from-ls", 2)).await.id;
    let full: LabelStudioImportReport = admin.import_raw(pid, "label-studio", fixture()).await.ok();
    let report = &full.report;
    assert_eq!((report.lines, report.imported, report.duplicates, report.error_count), (12, 12, 0, 0));
    // The report counts the annotations written and the accounts made for their annotators.
    assert_eq!(
        full.annotations,
        AnnotationImport { imported: 15, not_attached: 0, accounts_created: vec!["ls-2".into(), "ls-3".into()] }
    );
    let m = |r: &str, d: &str, id: &str| json!({"region": r, "device": d, "review_id": id}).to_string();
    let expected = vec![
        format!("ls-1 | The battery lasts all day. | {} | ls-2:negative:2580,ls-3:neutral:7550", m("apac", "desktop", "r-0")),
        format!("ls-2 | Arrived broken, refund pending. | {} | ls-2:neutral:3390,ls-3:neutral:6570", m("apac", "desktop", "r-1")),
        format!("ls-3 | It is a phone case. | {} | ls-2:neutral:4320,ls-3:positive:4850", m("apac", "mobile", "r-2")),
        format!("ls-4 | Love the colour, hate the clasp. | {} | ls-2:positive:3110,ls-3:negative:2410", m("us", "mobile", "r-3")),
        format!("ls-5 | Works as described. | {} | ls-2:neutral:3410,ls-3:neutral:8800", m("apac", "mobile", "r-4")),
        format!("ls-6 | Support never answered my emails. | {} | ls-2:negative:5690,ls-3:positive:8590", m("eu", "mobile", "r-5")),
        format!("ls-7 | Five stars, would buy again. | {} | ls-2:negative:6420,ls-3:neutral:7760", m("us", "desktop", "r-6")),
        format!("ls-8 | Meh. | {} | ls-2:neutral:1530", m("eu", "desktop", "r-7")),
        format!("ls-9 | Screen scratches far too easily. | {} | ", m("apac", "mobile", "r-8")),
        format!("ls-10 | Fast shipping and well packed. | {} | ", m("apac", "mobile", "r-9")),
        format!("ls-11 | The manual is in French only. | {} | ", m("eu", "mobile", "r-10")),
        format!("ls-12 | Best purchase this year! | {} | ", m("us", "desktop", "r-11")),
    ];
    assert_eq!(compact(&admin, pid).await, expected);
    // Seven items have their two labels (overlap 2): complete, as if labeled here.
    let summary = admin.projects().await.into_iter().find(|p| p.project.id == pid).unwrap();
    assert_eq!((summary.item_count, summary.done_count), (12, 7));
    // The annotators are locked labeler accounts, members of the project.
    let members: Vec<Member> = admin.get(&format!("/api/projects/{pid}/members")).await;
    let mut names: Vec<&str> = members.iter().map(|m| m.user.username.as_str()).collect();
    names.sort();
    assert_eq!(names, ["admin", "ls-2", "ls-3"]); // the creator, and the two annotators
    server.client().login_raw("ls-2", "any password").await.assert_error(401, "unauthorized");

    // A second project from the same Label Studio instance reuses the accounts. Its upload
    // names no format: a JSON document (Content-Type application/json) is a Label Studio export.
    let again = admin.create_project(&sentiment_project("from-ls-2", 1)).await.id;
    let again_report: LabelStudioImportReport =
        admin.raw(reqwest::Method::POST, &format!("/api/projects/{again}/import"), Some((fixture(), "application/json"))).await.ok();
    let report = &again_report.report;
    assert_eq!((report.lines, report.imported, report.error_count), (12, 12, 0));
    assert_eq!(again_report.annotations, AnnotationImport { imported: 15, not_attached: 0, accounts_created: vec![] });
    let users: Vec<User> = admin.get("/api/users").await;
    assert_eq!(users.iter().filter(|u| u.username.starts_with("ls-")).count(), 2);
}

async fn bad_label_studio_files_save_nothing(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.create_project(&sentiment_project("bad-ls", 1)).await.id;
    let ann = |label: &str| json!([{"completed_by": 1, "result": [{"type": "choices", "value": {"choices": [label]}}]}]);
    let cases: Vec<(Vec<u8>, i64, &str, &str)> = vec![
        (
            json!([{"id": 1, "data": {"text": "ok"}}, {"id": 2, "data": {"body": "no text"}}]).to_string().into_bytes(),
            2, "", "data has no \"text\" field (the text)",
        ),
        (
            json!([{"id": 1, "data": {"text": "a"}, "annotations": ann("positive")},
                   {"id": 2, "data": {"text": "b"}, "annotations": []},
                   {"id": 3, "data": {"text": "c"}, "annotations": ann("sarcastic")}]).to_string().into_bytes(),
            3, "annotations",
            "the annotation by \"1\": unknown label \"sarcastic\" (this project's labels: positive, neutral, negative)",
        ),
        (
            br#"[{"id": 1, "data": {"text": "a"}}, {"id": 2, "data": {"te"#.to_vec(),
            2, "", "not a Label Studio JSON export (an array of tasks): EOF while parsing a string at line 1 column 57",
        ),
    ];
    for (body, task, field, reason) in cases {
        let err = admin.import_raw(pid, "label-studio", body).await.assert_error(422, "invalid_import");
        let errors: Vec<LineError> = serde_json::from_value(err.details["errors"].clone()).unwrap();
        assert_eq!(errors, vec![LineError { line: task, field: field.into(), reason: reason.into() }], "{}", err.message);
        assert_eq!(err.details["imported"], 0);
    }
    assert_eq!(compact(&admin, pid).await, Vec::<String>::new());
    let users: Vec<User> = admin.get("/api/users").await;
    assert!(users.iter().all(|u| !u.username.starts_with("ls-")));
}

/// A database that fails while the import writes the annotations (a trigger refuses them: the
/// file itself is valid, so only the database can) leaves nothing: no items, no annotations, no
/// accounts, because all three are written in the transaction that commits the import. Once
/// the database accepts annotations again, the same file imports whole.
async fn a_database_failure_saves_neither_items_nor_annotations(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.create_project(&sentiment_project("ls-atomic", 2)).await.id;
    let (refuse, allow) = match b {
        Backend::Sqlite => (
            vec!["CREATE TRIGGER refuse_for_test BEFORE INSERT ON annotations BEGIN SELECT RAISE(ABORT, 'refused for the test'); END"],
            "DROP TRIGGER refuse_for_test",
        ),
        Backend::Postgres => (
            vec![
                "CREATE FUNCTION refuse_for_test() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused for the test'; END; $$",
                "CREATE TRIGGER refuse_for_test BEFORE INSERT ON annotations FOR EACH ROW EXECUTE FUNCTION refuse_for_test()",
            ],
            "DROP TRIGGER refuse_for_test ON annotations",
        ),
    };
    for sql in refuse {
        server.exec_sql(sql).await;
    }
    admin.import_raw(pid, "label-studio", fixture()).await.assert_error(500, "internal");
    assert_eq!(compact(&admin, pid).await, Vec::<String>::new());
    let summary = admin.projects().await.into_iter().find(|p| p.project.id == pid).unwrap();
    assert_eq!((summary.item_count, summary.done_count), (0, 0));
    let users: Vec<User> = admin.get("/api/users").await;
    assert!(users.iter().all(|u| !u.username.starts_with("ls-")), "{users:?}");

    server.exec_sql(allow).await;
    // The failed import removes its pending rows in the background; until it has, a second
    // import of the project is refused with 409.
    let mut tries = 0;
    let full: LabelStudioImportReport = loop {
        let resp = admin.import_raw(pid, "label-studio", fixture()).await;
        if resp.status.as_u16() == 409 && tries < 100 {
            tries += 1;
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            continue;
        }
        break resp.ok();
    };
    assert_eq!((full.report.imported, full.annotations.imported, full.annotations.accounts_created.len()), (12, 15, 2));
    assert_eq!(compact(&admin, pid).await.len(), 12);
}

/// The release's Label Studio export, imported into a fresh project with the same labels:
/// the same items (ids, text, meta) and the same label per item, by the same users.
pub async fn round_trip_into_fresh_project(admin: &Client, ls_export: &[u8], labels: Vec<LabelDef>) {
    let pid = admin.create_project(&NewProject { labels, ..new_project("ls-round-trip", 1, 600) }).await.id;
    let tasks: Vec<Value> = serde_json::from_slice(ls_export).unwrap();
    let users: Vec<String> = admin.get::<Vec<User>>("/api/users").await.into_iter().map(|u| u.username).collect();
    let full: LabelStudioImportReport = admin.import_raw(pid, "label-studio", ls_export.to_vec()).await.ok();
    assert_eq!(full.report.imported, tasks.len() as i64);
    // One annotation per task (the final label), all written; an account for each annotator
    // who is not a user yet (the provenances: gold, consensus, ...), in the order first met.
    let mut new_accounts: Vec<String> = Vec::new();
    for t in &tasks {
        let who = t["annotations"][0]["completed_by"]["email"].as_str().unwrap();
        let account = format!("ls-{who}");
        if !users.iter().any(|u| u == who || *u == account) && !new_accounts.contains(&account) {
            new_accounts.push(account);
        }
    }
    assert_eq!(
        full.annotations,
        AnnotationImport { imported: tasks.len() as i64, not_attached: 0, accounts_created: new_accounts }
    );
    let exported: BTreeMap<String, Value> = {
        let resp = admin.export_raw(pid, "jsonl", false).await;
        resp.text().lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).map(|v| (v["id"].as_str().unwrap().to_string(), v)).collect()
    };
    assert_eq!(exported.len(), tasks.len());
    for t in &tasks {
        let id = t["data"]["external_id"].as_str().unwrap();
        let got = &exported[id];
        assert_eq!(got["text"], t["data"]["text"], "{id}");
        let mut meta = t["data"].as_object().unwrap().clone();
        meta.remove("text");
        meta.remove("external_id");
        assert_eq!(got["meta"], Value::Object(meta), "{id}");
        let want: Vec<(Value, Value)> = t["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| (a["completed_by"]["email"].clone(), a["result"][0]["value"]["choices"].clone()))
            .collect();
        let have: Vec<(Value, Value)> = got["annotations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                // Native users keep their name; other provenances become ls-<name> accounts.
                let who = a["labeler"].as_str().unwrap();
                let back = if who.starts_with("ls-") && !want.iter().any(|(w, _)| w == who) { &who[3..] } else { who };
                (json!(back), a["labels"].clone())
            })
            .collect();
        assert_eq!(have, want, "{id}");
    }
}
