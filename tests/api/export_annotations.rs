//! The `annotations` export: exactly what `mirrorset stats agreement` and `aggregate` read.
//! Three labelers label a tiny project, the real `mirrorset stats` binary reads the export,
//! and its numbers must be the ones computed by hand below.
use std::collections::BTreeMap;
use std::process::Command;

use app::api_types::*;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(single_label_annotations_feed_the_stats_commands, multi_label_annotations_are_present_or_absent_per_label);

/// Three labelers, each a member of the project.
async fn three_labelers(server: &TestServer, admin: &Client, pid: i64) -> Vec<(User, Client)> {
    let mut out = Vec::new();
    for name in ["ana", "ben", "chen"] {
        let (user, client) = server.user(admin, name, Role::Labeler).await;
        admin.add_member(pid, user.id).await;
        out.push((user, client));
    }
    out
}

/// Each labeler takes every item in turn and answers `answer(external id, labeler index)`.
async fn label_all(labelers: &[(User, Client)], pid: i64, n: usize, answer: impl Fn(&str, usize) -> Vec<&'static str>) {
    for (who, (_, c)) in labelers.iter().enumerate() {
        for _ in 0..n {
            let item = c.next(pid).await.item.expect("an item for every labeler while they have not seen all");
            let ext = item.external_id.clone().expect("imported with ids");
            c.submit(pid, item.id, &answer(&ext, who)).await;
        }
        assert!(c.next(pid).await.item.is_none());
    }
}

/// Writes the export to a file and runs `mirrorset stats ARGS FILE`; returns its JSON output.
fn stats(export: &str, args: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("annotations.jsonl");
    std::fs::write(&file, export).expect("write the export");
    let out = Command::new(env!("CARGO_BIN_EXE_mirrorset"))
        .arg("stats")
        .args(args)
        .arg(&file)
        .output()
        .expect("run mirrorset stats");
    assert!(
        out.status.success(),
        "mirrorset stats {args:?} refused the export: {}\n--- export ---\n{export}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stats prints JSON")
}

fn close(got: &Value, want: f64) -> bool {
    got.as_f64().is_some_and(|g| (g - want).abs() < 1e-9)
}

async fn export_annotations(admin: &Client, pid: i64) -> String {
    let resp = admin.export_raw(pid, "annotations", false).await;
    resp.assert_status(200);
    assert_eq!(resp.headers["content-type"], "application/x-ndjson");
    assert_eq!(
        resp.headers["content-disposition"],
        format!("attachment; filename=\"project-{pid}.annotations.jsonl\"")
    );
    resp.text()
}

async fn single_label_annotations_feed_the_stats_commands(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("agreement", 3, 600).await.id;
    admin.import_texts(pid, "s", 4).await;
    let labelers = three_labelers(&server, &admin, pid).await;
    // s-0: pos ×3, s-1: neg ×3, s-2: pos, pos, neg (chen disagrees), s-3: other ×3.
    label_all(&labelers, pid, 4, |ext, who| {
        vec![match (ext, who) {
            ("s-0", _) => "pos",
            ("s-1", _) => "neg",
            ("s-2", 2) => "neg",
            ("s-2", _) => "pos",
            _ => "other",
        }]
    })
    .await;

    let text = export_annotations(&admin, pid).await;
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).expect("a JSON line")).collect();
    assert_eq!(lines.len(), 12, "one line per annotation:\n{text}");
    // Keyed by the numeric item id (external ids are optional, so they cannot be the key);
    // the external id rides along.
    let ids: BTreeMap<String, i64> = admin
        .export_jsonl(pid, false)
        .await
        .iter()
        .map(|l| (l["id"].as_str().unwrap().to_string(), l["item_id"].as_i64().unwrap()))
        .collect();
    let s2 = ids["s-2"];
    let chen_s2 = lines.iter().find(|l| l["item"] == s2 && l["annotator"] == "chen").expect("chen's answer on s-2");
    assert_eq!(*chen_s2, json!({"item": s2, "annotator": "chen", "label": "neg", "item_id": s2, "id": "s-2"}));

    // By hand (nominal alpha): the coincidence matrix has o(pos,pos) = 3 + 1, o(neg,neg) = 3,
    // o(other,other) = 3, o(pos,neg) = o(neg,pos) = 1 (s-2's three ordered disagreeing pairs
    // at weight 1/(3-1)); n = 12, n_pos = 5, n_neg = 4, n_other = 3. D_o = 2/12,
    // D_e = (144 - 25 - 16 - 9)/(12·11) = 94/132, alpha = 1 - D_o/D_e = 36/47.
    // Fleiss: P̄ = (1 + 1 + 1/3 + 1)/4 = 5/6, P_e = 50/144, kappa = (5/6 - 50/144)/(1 - 50/144) = 35/47.
    let report = stats(&text, &["agreement"]);
    assert_eq!((report["n_items"].as_i64(), report["n_annotators"].as_i64(), report["n_annotations"].as_i64()),
               (Some(4), Some(3), Some(12)), "{report:#}");
    assert!(close(&report["krippendorff_alpha"], 36.0 / 47.0), "{report:#}");
    assert!(close(&report["fleiss_kappa"], 35.0 / 47.0), "{report:#}");

    let agg = stats(&text, &["aggregate", "--method", "majority"]);
    for (ext, want) in [("s-0", "pos"), ("s-1", "neg"), ("s-2", "pos"), ("s-3", "other")] {
        let item = &agg["items"][ids[ext].to_string()];
        assert_eq!(item["label"], want, "{ext}: {agg:#}");
    }
    assert!(close(&agg["items"][s2.to_string()]["posterior"]["pos"], 2.0 / 3.0), "{agg:#}");

    // The command line downloads the same file.
    let token = admin.create_token("cli").await.secret;
    let out = Command::new(env!("CARGO_BIN_EXE_mirrorset"))
        .args(["export", "--url", server.base_url(), "--token", &token, "--project", &pid.to_string(), "--format", "annotations"])
        .output()
        .expect("run mirrorset export");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);

    // Lead routes only, like the other formats; a bad format names the good ones.
    labelers[0].1.export_raw(pid, "annotations", false).await.assert_error(403, "forbidden");
    let e = admin.export_raw(pid, "annotation", false).await.assert_error(400, "bad_request");
    assert!(e.message.contains("jsonl, csv or annotations"), "{e:?}");
}

async fn multi_label_annotations_are_present_or_absent_per_label(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let project = admin
        .create_project(&NewProject {
            kind: LabelKind::Multi,
            labels: vec![label("a", "a", "#22aa22"), label("b", "b", "#aa2222"), label("c", "c", "#2222aa")],
            ..new_project("multi", 3, 600)
        })
        .await;
    let pid = project.id;
    admin.import_texts(pid, "m", 2).await;
    let labelers = three_labelers(&server, &admin, pid).await;
    // Everyone agrees: m-0 is {a, b}, m-1 is {c}.
    label_all(&labelers, pid, 2, |ext, _| if ext == "m-0" { vec!["a", "b"] } else { vec!["c"] }).await;

    let text = export_annotations(&admin, pid).await;
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    // 2 items × 3 labels × 3 labelers.
    assert_eq!(lines.len(), 18, "{text}");
    let m0 = admin.export_jsonl(pid, false).await.iter().find(|l| l["id"] == "m-0").unwrap()["item_id"].as_i64().unwrap();
    let ana_m0_c = lines.iter().find(|l| l["item"] == format!("{m0}/c") && l["annotator"] == "ana").unwrap();
    assert_eq!(
        *ana_m0_c,
        json!({"item": format!("{m0}/c"), "annotator": "ana", "label": "absent", "item_id": m0, "id": "m-0", "for_label": "c"})
    );

    // Six (item, label) units, all rated alike by the three labelers, with both values
    // present: perfect agreement, alpha = 1.
    let report = stats(&text, &["agreement"]);
    assert_eq!((report["n_items"].as_i64(), report["n_annotations"].as_i64()), (Some(6), Some(18)), "{report:#}");
    assert!(close(&report["krippendorff_alpha"], 1.0), "{report:#}");
    assert!(close(&report["percent_agreement"], 1.0), "{report:#}");
    let agg = stats(&text, &["aggregate", "--method", "majority"]);
    assert_eq!(agg["labels"], json!(["absent", "present"]), "{agg:#}");
    assert_eq!(agg["items"][format!("{m0}/a")]["label"], "present", "{agg:#}");
    assert_eq!(agg["items"][format!("{m0}/c")]["label"], "absent", "{agg:#}");
}
