//! Auto-accept (issue 10): the threshold in force, provenance `auto:<source>` in the exports,
//! dev-set items never auto-accepted (and revoked when an item enters one), the stream leaving
//! accepted items out, turning off, the audit log, the export's noise summary; and the
//! `prelabel_disagreement` queue.
use std::collections::{BTreeMap, BTreeSet};

use app::api_types::*;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(auto_accept_end_to_end, prelabel_disagreement_queue);

fn jsonl(lines: &[Value]) -> Vec<u8> {
    lines.iter().map(|l| l.to_string() + "\n").collect::<String>().into_bytes()
}

async fn import_predictions(c: &Client, pid: i64, lines: &[Value]) -> ImportReport {
    c.raw(Method::POST, &format!("/api/projects/{pid}/prelabels/import"), Some((jsonl(lines), "application/x-ndjson"))).await.ok()
}

async fn put_json<T: serde::de::DeserializeOwned>(c: &Client, path: &str, body: Value) -> T {
    c.raw(Method::PUT, path, Some((body.to_string().into_bytes(), "application/json"))).await.ok()
}

async fn put_raw(c: &Client, path: &str, body: Value) -> RawResponse {
    c.raw(Method::PUT, path, Some((body.to_string().into_bytes(), "application/json"))).await
}

async fn decide(c: &Client, pid: i64, item: i64, labels: &[&str], queue: &str) {
    c.post_json_raw(&format!("/api/projects/{pid}/review/items/{item}/decision"), &json!({"labels": labels, "queue": queue}))
        .await
        .assert_status(201);
}

/// The JSONL export by external id.
async fn export_lines(c: &Client, pid: i64) -> BTreeMap<String, Value> {
    let resp = c.get_raw(&format!("/api/projects/{pid}/export?format=jsonl")).await;
    resp.assert_status(200);
    resp.text()
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            (v["id"].as_str().unwrap().to_string(), v)
        })
        .collect()
}

fn auto_items(lines: &BTreeMap<String, Value>) -> BTreeSet<String> {
    lines.iter().filter(|(_, v)| v["final_source"].as_str().unwrap().starts_with("auto:")).map(|(k, _)| k.clone()).collect()
}

/// The 95% Wilson interval, written out (z = 1.959964).
fn wilson(right: f64, n: f64) -> (f64, f64, f64) {
    let z: f64 = 1.959_963_984_540_054;
    let p = right / n;
    let centre = (p + z * z / (2.0 * n)) / (1.0 + z * z / n);
    let half = z / (1.0 + z * z / n) * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt();
    (p, centre - half, (centre + half).min(1.0))
}

/// A dev set holding exactly `external_id` (must-include, size 1); returns its members.
async fn dev_set_of(c: &Client, pid: i64, profile: i64, name: &str, external_id: &str) -> Vec<i64> {
    let devset: Value = c
        .post_created(
            &format!("/api/projects/{pid}/devsets"),
            &json!({"name": name, "profile_id": profile, "attributes": ["region"], "size": 1, "overlap": 1,
                    "must_include": {"external_ids": [external_id]}}),
        )
        .await;
    let sample: Value = c.post_created(&format!("/api/projects/{pid}/devsets/{}/sample", devset["id"]), &json!({})).await;
    serde_json::from_value(sample["items"].clone()).unwrap()
}

async fn auto_accept_end_to_end(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("auto", 1, 600).await.id;
    let items: String = (0..130)
        .map(|i| json!({"id": format!("t-{i}"), "text": format!("text {i}"), "meta": {"region": "eu"}}).to_string() + "\n")
        .collect();
    assert_eq!(admin.import(pid, "jsonl", items).await.imported, 130);
    let ids: BTreeMap<String, i64> = export_lines(&admin, pid).await.iter().map(|(k, v)| (k.clone(), v["item_id"].as_i64().unwrap())).collect();
    let (lab, labeler) = server.user(&admin, "autolab", Role::Labeler).await;
    admin.add_member(pid, lab.id).await;

    // A labeler answers t-0 "neg" before the model says "pos" at 1.0: a contradiction, never
    // auto-accepted, and the import puts it in the disagreement queue.
    let first = labeler.next(pid).await.item.unwrap();
    assert_eq!(first.external_id.as_deref(), Some("t-0"));
    labeler.submit(pid, first.id, &["neg"]).await;

    // "pos" for t-0..t-119 scored 1.0 down to 0.008; "neg" at 0.99 for t-120..t-129.
    let score = |i: usize| (120 - i) as f64 / 120.0;
    let lines: Vec<Value> = (0..130)
        .map(|i| {
            if i < 120 {
                json!({"item": format!("t-{i}"), "label": "pos", "score": score(i), "model": "m", "version": "1"})
            } else {
                json!({"item": format!("t-{i}"), "label": "neg", "score": 0.99, "model": "m", "version": "1"})
            }
        })
        .collect();
    import_predictions(&admin, pid, &lines).await;
    let queue: ReviewQueuePage = admin.get(&format!("/api/projects/{pid}/review/queues/prelabel_disagreement")).await;
    assert_eq!(queue.items.iter().map(|i| i.external_id.clone().unwrap()).collect::<Vec<_>>(), vec!["t-0"]);

    // Audit half of each stratum; the reviewer finds "pos" right from score 0.25 up, "neg" right.
    let _: PrelabelSettings = put_json(
        &admin,
        &format!("/api/projects/{pid}/prelabels/settings"),
        json!({"hide_until_answered": false, "audit_rate": 0.5, "audit_seed": 1, "target_precision": 0.8}),
    )
    .await;
    let drawn: PrelabelAuditDrawn = admin.post(&format!("/api/projects/{pid}/prelabels/audit"), &json!({})).await;
    assert_eq!(drawn.drawn, 60 + 5);
    let page: ReviewQueuePage = admin.get(&format!("/api/projects/{pid}/review/queues/prelabel_audit?limit=500")).await;
    let audited: BTreeSet<usize> = page.items.iter().map(|i| i.external_id.as_deref().unwrap()[2..].parse().unwrap()).collect();
    assert_eq!(audited.len(), 65);
    for item in &page.items {
        let i: usize = item.external_id.as_deref().unwrap()[2..].parse().unwrap();
        let right = i >= 120 || score(i) >= 0.25;
        let label = if i >= 120 || !right { "neg" } else { "pos" };
        decide(&admin, pid, item.item_id, &[label], "prelabel_audit").await;
    }
    let source = admin.get::<Vec<PrelabelSource>>(&format!("/api/projects/{pid}/prelabels/sources")).await.remove(0);
    let pos = source.by_label.iter().find(|l| l.label == "pos").unwrap().clone();
    let threshold = pos.auto_accept_min_score.expect("a threshold for pos");
    assert!(threshold > 0.0 && threshold < 0.25, "{threshold}");
    assert_eq!(pos.auto_accept, None);
    // Scores cross JSON twice (serde_json's default float parsing may move the last bits):
    // "at or above the threshold" within a few ulps.
    let at_or_above = |i: usize| score(i) >= threshold - 1e-12;
    assert_eq!(source.by_label.iter().find(|l| l.label == "neg").unwrap().auto_accept_min_score, None, "5 audits promise no 80%");

    // Plant a dev-set item among the confident unaudited ones before switching on.
    let profile: Value = admin
        .raw(Method::POST, &format!("/api/projects/{pid}/profiles?name=prod&date=2026-11-30"),
             Some((b"{\"region\": \"eu\"}\n".to_vec(), "application/octet-stream")))
        .await
        .created();
    let profile_id = profile["id"].as_i64().unwrap();
    let unaudited_high: Vec<usize> = (1..40).filter(|i| !audited.contains(i)).collect();
    let (dev, later_dev) = (unaudited_high[0], unaudited_high[1]);
    assert_eq!(dev_set_of(&admin, pid, profile_id, "dev-1", &format!("t-{dev}")).await, vec![ids[&format!("t-{dev}")]]);

    // Switching "neg" on alone is refused: no threshold yet. Nothing changes.
    let url = format!("/api/projects/{pid}/prelabels/auto-accept");
    let err = put_raw(&admin, &url, json!({"source_id": source.id, "labels": ["neg"], "enabled": true})).await.assert_error(422, "unprocessable");
    assert!(err.message.contains("no audited threshold reaches the target precision 0.8"), "{}", err.message);
    put_raw(&admin, &url, json!({"source_id": source.id, "labels": ["maybe"], "enabled": true})).await.assert_error(422, "unprocessable");
    put_raw(&admin, &url, json!({"source_id": 999_999, "enabled": true})).await.assert_error(404, "not_found");
    assert!(auto_items(&export_lines(&admin, pid).await).is_empty());

    // The whole source: "pos" goes on at its threshold, "neg" is listed without one.
    let expected: BTreeSet<String> = (1..120)
        .filter(|&i| at_or_above(i) && !audited.contains(&i) && i != dev)
        .map(|i| format!("t-{i}"))
        .collect();
    let below: Vec<usize> = (0..120).filter(|&i| !at_or_above(i) && !audited.contains(&i)).collect();
    assert!(!below.is_empty(), "some unaudited pre-labels score below the threshold");
    let report: AutoAcceptReport = put_json(&admin, &url, json!({"source_id": source.id, "enabled": true})).await;
    assert_eq!(
        report,
        AutoAcceptReport {
            changed: vec![AutoAcceptChange { labels: vec!["pos".into()], min_score: Some(threshold) }],
            without_threshold: vec![vec!["neg".into()]],
            accepted: expected.len() as i64,
        }
    );

    // The exports: exactly those items, provenance auto:m@1, the pre-label as the final label.
    let lines = export_lines(&admin, pid).await;
    assert_eq!(auto_items(&lines), expected);
    for id in &expected {
        assert_eq!((&lines[id]["final_source"], &lines[id]["final_labels"]), (&json!("auto:m@1"), &json!(["pos"])));
    }
    assert_eq!(lines[&format!("t-{dev}")]["final_source"], "none", "a dev-set item stays human");
    // t-0: the labeler's "neg" (or the audit's decision) stands, not the model's "pos".
    assert!(!lines["t-0"]["final_source"].as_str().unwrap().starts_with("auto:"), "a contradicted pre-label is not taken");
    if audited.contains(&0) {
        assert_eq!(lines["t-0"]["final_source"], "adjudicated");
    } else {
        assert_ne!(lines["t-0"]["final_labels"], json!(["pos"]));
    }
    for i in &below {
        assert_eq!(lines[&format!("t-{i}")]["final_source"], "none", "t-{i} scores below the threshold");
    }
    let csv = admin.get_raw(&format!("/api/projects/{pid}/export?format=csv")).await;
    let mut r = csv::Reader::from_reader(csv.body.as_slice());
    let header: Vec<String> = r.headers().unwrap().iter().map(String::from).collect();
    let (id_col, src_col) = (header.iter().position(|h| h == "id").unwrap(), header.iter().position(|h| h == "final_source").unwrap());
    let csv_auto: BTreeSet<String> = r
        .records()
        .map(|r| r.unwrap())
        .filter(|r| &r[src_col] == "auto:m@1")
        .map(|r| r[id_col].to_string())
        .collect();
    assert_eq!(csv_auto, expected);
    // The review view names the source.
    let some = ids[expected.iter().next().unwrap()];
    let view: ReviewItem = admin.get(&format!("/api/projects/{pid}/review/items/{some}")).await;
    assert_eq!(
        view.final_label,
        FinalLabel { labels: Some(vec!["pos".into()]), source: FinalSource::Auto, auto_source: Some("m@1".into()) }
    );

    // The noise summary agrees with the export, and the auto part's precision is the audits'
    // at the threshold in force.
    let summary: ExportSummary = admin.get(&format!("/api/projects/{pid}/export/summary")).await;
    assert_eq!((summary.items, summary.auto), (130, expected.len() as i64));
    for noise in &summary.by_label {
        let count = |pred: &dyn Fn(&str) -> bool| {
            lines
                .values()
                .filter(|v| v["final_labels"].as_array().is_some_and(|l| l.contains(&json!(noise.label))))
                .filter(|v| pred(v["final_source"].as_str().unwrap()))
                .count() as i64
        };
        assert_eq!(noise.auto, count(&|s| s.starts_with("auto:")), "{}", noise.label);
        assert_eq!(noise.adjudicated, count(&|s| s == "adjudicated"), "{}", noise.label);
        assert_eq!(noise.human, count(&|s| s == "consensus" || s == "gold"), "{}", noise.label);
        assert_eq!(noise.total, noise.auto + noise.adjudicated + noise.human);
    }
    let pos_noise = summary.by_label.iter().find(|l| l.label == "pos").unwrap();
    assert_eq!(pos_noise.auto_share, Some(expected.len() as f64 / pos_noise.total as f64));
    let at_threshold: Vec<usize> = audited.iter().copied().filter(|&i| i < 120 && at_or_above(i)).collect();
    let right = at_threshold.iter().filter(|&&i| score(i) >= 0.25).count();
    let (p, lo, hi) = wilson(right as f64, at_threshold.len() as f64);
    assert_eq!(pos_noise.auto_precision.n, at_threshold.len() as i64);
    let got = pos_noise.auto_precision.interval.unwrap();
    assert!((pos_noise.auto_precision.value.unwrap() - p).abs() < 1e-9);
    assert!((got.lower - lo).abs() < 1e-6 && (got.upper - hi).abs() < 1e-6, "{got:?} vs ({lo}, {hi})");
    assert!(got.lower >= 0.8, "the promise the threshold was chosen for");
    assert!((pos_noise.expected_wrong.unwrap() - expected.len() as f64 * (1.0 - p)).abs() < 1e-9);
    let neg_noise = summary.by_label.iter().find(|l| l.label == "neg").unwrap();
    assert_eq!((neg_noise.auto, neg_noise.auto_precision.value), (0, None));

    // An accepted item that enters a dev set loses its auto label at once.
    let later = format!("t-{later_dev}");
    assert!(expected.contains(&later));
    dev_set_of(&admin, pid, profile_id, "dev-2", &later).await;
    let lines = export_lines(&admin, pid).await;
    assert_eq!(lines[&later]["final_source"], "none");
    let mut expected = expected;
    expected.remove(&later);
    assert_eq!(auto_items(&lines), expected);
    let source = admin.get::<Vec<PrelabelSource>>(&format!("/api/projects/{pid}/prelabels/sources")).await.remove(0);
    let on = source.by_label.iter().find(|l| l.label == "pos").unwrap().auto_accept.clone().unwrap();
    assert_eq!((on.min_score, on.target_precision, on.accepted), (threshold, 0.8, expected.len() as i64));

    // Labelers are no longer handed auto-accepted items; everything else still comes.
    let mut handed = BTreeSet::new();
    while let Some(item) = labeler.next(pid).await.item {
        let ext = item.external_id.clone().unwrap();
        assert!(!expected.contains(&ext), "{ext} is auto-accepted");
        handed.insert(ext);
        labeler.submit(pid, item.id, &["pos"]).await;
    }
    let all: BTreeSet<String> = ids.keys().cloned().collect();
    let rest: BTreeSet<String> = all.difference(&expected).filter(|e| e.as_str() != "t-0").cloned().collect();
    assert_eq!(handed, rest);

    // Off: every auto label goes; both switches are in the audit log.
    let report: AutoAcceptReport = put_json(&admin, &url, json!({"source_id": source.id, "labels": ["pos"], "enabled": false})).await;
    assert_eq!((report.changed[0].min_score, report.accepted), (None, 0));
    assert!(auto_items(&export_lines(&admin, pid).await).is_empty());
    let log = admin.get_raw(&format!("/api/projects/{pid}/audit")).await;
    let switches: Vec<AuditEntry> = log
        .text()
        .lines()
        .map(|l| serde_json::from_str::<AuditEntry>(l).unwrap())
        .filter(|e| e.action == AuditAction::AutoAcceptChanged)
        .collect();
    assert_eq!(switches.len(), 2);
    assert_eq!(switches[0].after.as_ref().unwrap()["auto_accept"]["min_score"], json!(threshold));
    assert_eq!(switches[0].after.as_ref().unwrap()["accepted"], json!(expected.len() + 1));
    assert_eq!(switches[0].after.as_ref().unwrap()["source"], "m@1");
    assert_eq!(switches[1].after.as_ref().unwrap()["auto_accept"], Value::Null);
    assert_eq!(switches[1].before.as_ref().unwrap()["auto_accept"]["min_score"], json!(threshold));

    // The command line: on again for "pos" (the same items, all still unlabeled), the noise.
    let token = admin.create_token("cli").await.secret;
    let (base, project) = (server.base_url().to_string(), pid.to_string());
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(server_binary())
            .args(["prelabels", args[0], "--url", base.as_str(), "--token", token.as_str(), "--project", project.as_str()])
            .args(&args[1..])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let source_arg = source.id.to_string();
    let on = cli(&["auto-accept", "--source", &source_arg, "--label", "pos"]);
    assert_eq!(on["accepted"], json!(expected.len()));
    assert_eq!(cli(&["noise"])["auto"], json!(expected.len()));
    let off = cli(&["auto-accept", "--source", &source_arg, "--off"]);
    assert_eq!((&off["accepted"], off["changed"].as_array().unwrap().len()), (&json!(0), 2));

    // Labelers cannot switch it.
    labeler.raw(Method::PUT, &url, Some((json!({"source_id": source.id, "enabled": true}).to_string().into_bytes(), "application/json")))
        .await
        .assert_error(403, "forbidden");
}

async fn prelabel_disagreement_queue(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("disagree", 2, 600).await.id;
    admin.import_texts(pid, "d", 4).await;
    import_predictions(
        &admin,
        pid,
        &[
            json!({"item": "d-0", "label": "pos", "score": 0.95, "model": "m"}),
            json!({"item": "d-1", "label": "pos", "score": 0.5, "model": "m"}),
            json!({"item": "d-2", "label": "pos", "score": 0.97, "model": "m"}),
        ],
    )
    .await;
    let (a, ann) = server.user(&admin, "ann", Role::Labeler).await;
    let (b_, bob) = server.user(&admin, "bob", Role::Labeler).await;
    admin.add_member(pid, a.id).await;
    admin.add_member(pid, b_.id).await;
    // ann: d-0 against a 0.95 "pos" (queued), d-1 against a 0.5 one (not), d-2 agreeing, d-3
    // without a pre-label.
    let mut item_of = BTreeMap::new();
    for answer in ["neg", "neg", "pos", "neg"] {
        let item = ann.next(pid).await.item.unwrap();
        item_of.insert(item.external_id.clone().unwrap(), item.id);
        ann.submit(pid, item.id, &[answer]).await;
    }
    let queue_url = format!("/api/projects/{pid}/review/queues/prelabel_disagreement");
    let page: ReviewQueuePage = admin.get(&queue_url).await;
    assert_eq!(page.open, 1);
    let r = &page.items[0].reasons[0];
    assert_eq!((page.items[0].external_id.as_deref(), r.queue.as_str(), r.reason.as_str()), (Some("d-0"), "prelabel_disagreement", "contradicts_prelabel"));
    assert_eq!(r.detail, json!({"source_id": r.detail["source_id"], "source": "m 1", "prelabel": ["pos"], "score": 0.95, "answer": ["neg"]}));

    // Lowering the threshold brings in the answer given before it.
    let settings_url = format!("/api/projects/{pid}/prelabels/settings");
    put_raw(&admin, &settings_url, json!({"hide_until_answered": false, "disagreement_min_score": 1.5})).await.assert_error(400, "bad_request");
    let s: PrelabelSettings = put_json(&admin, &settings_url, json!({"hide_until_answered": false, "disagreement_min_score": 0.4})).await;
    assert_eq!((s.disagreement_min_score, s.target_precision), (0.4, 0.95));
    let page: ReviewQueuePage = admin.get(&queue_url).await;
    assert_eq!(page.items.iter().map(|i| i.external_id.clone().unwrap()).collect::<Vec<_>>(), vec!["d-0", "d-1"]);

    // A model imported after the answers: its confident "neg" on d-2 contradicts ann's "pos".
    import_predictions(&admin, pid, &[json!({"item": "d-2", "label": "neg", "score": 0.99, "model": "m2"})]).await;
    let page: ReviewQueuePage = admin.get(&queue_url).await;
    assert_eq!(page.open, 3);
    let d2 = page.items.iter().find(|i| i.external_id.as_deref() == Some("d-2")).unwrap();
    assert_eq!((&d2.reasons[0].detail["source"], &d2.reasons[0].detail["score"]), (&json!("m2 1"), &json!(0.99)));

    // A decision settles it: another contradicting answer does not reopen it.
    decide(&admin, pid, item_of["d-0"], &["neg"], "prelabel_disagreement").await;
    let next = bob.next(pid).await.item.unwrap();
    assert_eq!(next.external_id.as_deref(), Some("d-0"));
    bob.submit(pid, next.id, &["neg"]).await;
    let page: ReviewQueuePage = admin.get(&queue_url).await;
    assert_eq!(page.items.iter().map(|i| i.external_id.clone().unwrap()).collect::<Vec<_>>(), vec!["d-1", "d-2"]);
}
