//! Pre-labels (issue 10): imported predictions (all or nothing, per-line errors in the item
//! import's shape), the pre-label in the labeling loop, acceptance and time per source and
//! label, and the setting that hides pre-labels until the labeler has answered.
use app::api_types::*;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(
    predictions_import_all_or_nothing,
    predictions_replace_per_model_version,
    labeler_sees_and_accepts_prelabels,
    hidden_prelabels_measure_agreement,
    prelabel_routes_are_for_leads,
    audit_draw_precision_and_threshold,
    prelabels_cli_round_trip,
);

fn jsonl(lines: &[Value]) -> Vec<u8> {
    lines.iter().map(|l| l.to_string() + "\n").collect::<String>().into_bytes()
}

async fn import_predictions(c: &Client, pid: i64, lines: &[Value]) -> RawResponse {
    c.raw(Method::POST, &format!("/api/projects/{pid}/prelabels/import"), Some((jsonl(lines), "application/x-ndjson"))).await
}

async fn sources(c: &Client, pid: i64) -> Vec<PrelabelSource> {
    c.get(&format!("/api/projects/{pid}/prelabels/sources")).await
}

fn no_answers() -> StatValue {
    StatValue { value: None, interval: None, n: 0, reason: Some("no answers yet".into()) }
}

async fn predictions_import_all_or_nothing(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("predictions", 1, 600).await.id;
    admin.import_texts(pid, "t", 4).await;
    let resp = import_predictions(
        &admin,
        pid,
        &[
            json!({"item": "t-0", "label": "pos", "score": 0.9, "model": "m", "version": "1"}),
            json!({"item": "t-1", "label": "maybe", "model": "m", "version": "1"}),
            json!({"item": "t-2", "label": "neg", "score": 1.5}),
            json!({"item": "t-0", "label": "neg", "model": "m", "version": "1"}),
            json!({"item": "t-3", "labels": ["pos", "neg"]}),
        ],
    )
    .await;
    let err = resp.assert_error(422, "invalid_import");
    assert_eq!(err.message, "nothing was imported: 4 bad lines; first: line 2 (label): \"maybe\" is not one of the project's labels");
    let report: ImportReport = serde_json::from_value(err.details).unwrap();
    assert_eq!(
        report,
        ImportReport {
            lines: 5,
            imported: 0,
            duplicates: 0,
            duplicate_lines: vec![],
            errors: vec![
                LineError { line: 2, field: "label".into(), reason: "\"maybe\" is not one of the project's labels".into() },
                LineError { line: 3, field: "score".into(), reason: "\"score\" must be between 0 and 1, not 1.5".into() },
                LineError { line: 4, field: "item".into(), reason: "model \"m\" version \"1\" predicts this item on line 1 too".into() },
                LineError { line: 5, field: "labels".into(), reason: "this project takes one label per item".into() },
            ],
            error_count: 4,
        }
    );
    assert_eq!(sources(&admin, pid).await, vec![], "a refused file stores nothing");

    // Good lines, but one names an item the project does not have: still nothing.
    let resp = import_predictions(
        &admin,
        pid,
        &[json!({"item": "t-0", "label": "pos", "score": 0.9}), json!({"item": "nope", "label": "pos"})],
    )
    .await;
    let report: ImportReport = serde_json::from_value(resp.assert_error(422, "invalid_import").details).unwrap();
    assert_eq!(report.errors, vec![LineError { line: 2, field: "item".into(), reason: "the project has no item with id \"nope\"".into() }]);
    assert_eq!(sources(&admin, pid).await, vec![]);

    // Not JSON at all, and an empty file.
    let resp = admin.raw(Method::POST, &format!("/api/projects/{pid}/prelabels/import"), Some((b"{oops\n".to_vec(), "application/x-ndjson"))).await;
    let report: ImportReport = serde_json::from_value(resp.assert_error(422, "invalid_import").details).unwrap();
    assert_eq!((report.errors[0].line, report.errors[0].field.as_str()), (1, ""));
    assert!(report.errors[0].reason.starts_with("not a prediction object"), "{report:?}");
    let resp = import_predictions(&admin, pid, &[]).await;
    let report: ImportReport = serde_json::from_value(resp.assert_error(422, "invalid_import").details).unwrap();
    assert_eq!(report.errors, vec![LineError { line: 0, field: "".into(), reason: "the file has no predictions".into() }]);

    // All good: two models, one of them in two versions.
    let report: ImportReport = import_predictions(
        &admin,
        pid,
        &[
            json!({"item": "t-0", "label": "pos", "score": 0.9, "model": "m", "version": "1"}),
            json!({"item": "t-1", "label": "neg", "score": 0.4, "model": "m", "version": "1"}),
            json!({"item": "t-0", "label": "neg", "score": 0.7, "model": "m", "version": "2"}),
            json!({"item": "t-2", "label": "other"}),
        ],
    )
    .await
    .ok();
    assert_eq!(
        report,
        ImportReport { lines: 4, imported: 4, duplicates: 0, duplicate_lines: vec![], errors: vec![], error_count: 0 }
    );
    let got = sources(&admin, pid).await;
    let summary: Vec<(PrelabelSourceKind, &str, &str, i64)> =
        got.iter().map(|s| (s.kind, s.name.as_str(), s.version.as_str(), s.prelabels)).collect();
    assert_eq!(
        summary,
        vec![
            (PrelabelSourceKind::Model, "m", "1", 2),
            (PrelabelSourceKind::Model, "m", "2", 1),
            (PrelabelSourceKind::Model, "imported", "1", 1),
        ]
    );
    let m1 = &got[0];
    assert_eq!((m1.acceptance.clone(), m1.agreement_hidden.clone()), (no_answers(), no_answers()));
    assert_eq!((m1.mean_time_ms_shown, m1.mean_time_ms_hidden), (None, None));
    let mut by_label: Vec<(String, i64)> = m1.by_label.iter().map(|l| (l.label.clone(), l.prelabels)).collect();
    by_label.sort();
    assert_eq!(by_label, vec![("neg".to_string(), 1), ("pos".to_string(), 1)]);
}

async fn predictions_replace_per_model_version(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("replace", 1, 600).await.id;
    admin.import_texts(pid, "t", 2).await;
    import_predictions(&admin, pid, &[json!({"item": "t-0", "label": "pos", "score": 0.9, "model": "m"})]).await.ok::<ImportReport>();
    // The same model and version again: its pre-label for t-0 is replaced, not doubled.
    import_predictions(
        &admin,
        pid,
        &[json!({"item": "t-0", "label": "neg", "score": 0.8, "model": "m"}), json!({"item": "t-1", "label": "neg", "model": "m"})],
    )
    .await
    .ok::<ImportReport>();
    let got = sources(&admin, pid).await;
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!(got[0].prelabels, 2);
    assert_eq!(got[0].by_label.iter().map(|l| (l.label.as_str(), l.prelabels)).collect::<Vec<_>>(), vec![("neg", 2)]);
}

async fn labeler_sees_and_accepts_prelabels(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("accept", 1, 600).await.id;
    admin.import_texts(pid, "t", 3).await;
    import_predictions(
        &admin,
        pid,
        &[
            json!({"item": "t-0", "label": "pos", "score": 0.9, "model": "m", "version": "v1"}),
            json!({"item": "t-0", "label": "neg", "score": 0.3, "model": "weak"}),
            json!({"item": "t-1", "label": "neg", "score": 0.8, "model": "m", "version": "v1"}),
        ],
    )
    .await
    .ok::<ImportReport>();
    let (user, lab) = server.user(&admin, "lab", Role::Labeler).await;
    admin.add_member(pid, user.id).await;

    // Import order: t-0 (best pre-label: m v1's, the higher score), t-1, t-2 (none).
    let next = lab.next(pid).await;
    let item = next.item.expect("an item");
    assert_eq!(
        next.prelabel,
        Some(PrelabelView {
            source_id: sources(&admin, pid).await[0].id,
            source_kind: PrelabelSourceKind::Model,
            source: "m v1".into(),
            labels: vec!["pos".into()],
            score: Some(0.9),
        })
    );
    lab.submit(pid, item.id, &["pos"]).await; // accepted
    let next = lab.next(pid).await;
    assert_eq!(next.prelabel.as_ref().map(|p| p.labels.clone()), Some(vec!["neg".to_string()]));
    lab.submit(pid, next.item.unwrap().id, &["other"]).await; // overruled
    let next = lab.next(pid).await;
    assert!(next.item.is_some());
    // An item without pre-labels has no `prelabel` key at all.
    let raw: Value = lab.next_raw(pid, &[]).await.ok();
    assert!(raw.get("prelabel").is_none(), "{raw}");
    lab.submit(pid, next.item.unwrap().id, &["pos"]).await;

    let got = sources(&admin, pid).await;
    let m = got.iter().find(|s| s.name == "m").unwrap();
    // Two answers with m's pre-label on screen, one took it: 1/2 with its Wilson interval.
    assert_eq!(m.acceptance.n, 2);
    assert_eq!(m.acceptance.value, Some(0.5));
    let iv = m.acceptance.interval.unwrap();
    assert!((iv.lower - 0.0945).abs() < 1e-3 && (iv.upper - 0.9055).abs() < 1e-3, "{iv:?}");
    assert_eq!(m.mean_time_ms_shown, Some(1234.0));
    assert_eq!(m.agreement_hidden, no_answers());
    let pos = m.by_label.iter().find(|l| l.label == "pos").unwrap();
    assert_eq!((pos.acceptance.n, pos.acceptance.value), (1, Some(1.0)));
    let neg = m.by_label.iter().find(|l| l.label == "neg").unwrap();
    assert_eq!((neg.acceptance.n, neg.acceptance.value), (1, Some(0.0)));
    // The weak model's pre-label was not on screen: the answer counts as agreement, not acceptance.
    let weak = got.iter().find(|s| s.name == "weak").unwrap();
    assert_eq!(weak.acceptance, no_answers());
    assert_eq!((weak.agreement_hidden.n, weak.agreement_hidden.value), (1, Some(0.0)));
}

async fn hidden_prelabels_measure_agreement(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("hidden", 1, 600).await.id;
    admin.import_texts(pid, "t", 2).await;
    let settings: PrelabelSettings = admin.get(&format!("/api/projects/{pid}/prelabels/settings")).await;
    assert_eq!(settings, PrelabelSettings { hide_until_answered: false, audit_rate: 0.05, audit_seed: 0, target_precision: 0.95, disagreement_min_score: 0.9 });
    let put = admin
        .raw(Method::PUT, &format!("/api/projects/{pid}/prelabels/settings"), Some((br#"{"hide_until_answered": true}"#.to_vec(), "application/json")))
        .await;
    // Fields left out take their defaults.
    assert_eq!(put.ok::<PrelabelSettings>(), PrelabelSettings { hide_until_answered: true, ..Default::default() });
    for (body, message) in [
        (json!({"hide_until_answered": true, "audit_rate": 1.5}), "audit_rate must be between 0 and 1, not 1.5"),
        (json!({"hide_until_answered": true, "target_precision": 0}), "target_precision must be above 0 and at most 1, not 0"),
    ] {
        let resp = admin.raw(Method::PUT, &format!("/api/projects/{pid}/prelabels/settings"), Some((body.to_string().into_bytes(), "application/json"))).await;
        assert_eq!(resp.assert_error(400, "bad_request").message, message);
    }
    let bad = admin
        .raw(Method::PUT, &format!("/api/projects/{pid}/prelabels/settings"), Some((br#"{"hide_until_answered": "yes"}"#.to_vec(), "application/json")))
        .await;
    bad.assert_error(400, "bad_request");
    import_predictions(&admin, pid, &[json!({"item": "t-0", "label": "pos", "score": 0.9}), json!({"item": "t-1", "label": "pos", "score": 0.9})])
        .await
        .ok::<ImportReport>();
    let next = admin.next(pid).await;
    assert_eq!(next.prelabel, None, "hidden until answered");
    admin.submit(pid, next.item.unwrap().id, &["pos"]).await;
    let next = admin.next(pid).await;
    admin.submit(pid, next.item.unwrap().id, &["neg"]).await;
    let s = &sources(&admin, pid).await[0];
    assert_eq!(s.acceptance, no_answers());
    assert_eq!((s.agreement_hidden.n, s.agreement_hidden.value), (2, Some(0.5)));
    assert_eq!((s.mean_time_ms_shown, s.mean_time_ms_hidden), (None, Some(1234.0)));
}

async fn prelabel_routes_are_for_leads(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("authz", 1, 600).await.id;
    admin.import_texts(pid, "t", 1).await;
    let (user, lab) = server.user(&admin, "lab", Role::Labeler).await;
    admin.add_member(pid, user.id).await;
    let resp = import_predictions(&lab, pid, &[json!({"item": "t-0", "label": "pos"})]).await;
    resp.assert_error(403, "forbidden");
    lab.get_raw(&format!("/api/projects/{pid}/prelabels/sources")).await.assert_error(403, "forbidden");
    admin.get_raw(&format!("/api/projects/{}/prelabels/sources", pid + 1000)).await.assert_error(404, "not_found");
    assert_eq!(sources(&admin, pid).await, vec![]);
}

/// The audit draw: a seeded share per source and label into the `prelabel_audit` queue, the
/// same on a repeat; reviewers' decisions give precision per source and label with a Wilson
/// interval, and the auto-accept threshold is the lowest score whose lower bound meets the target.
async fn audit_draw_precision_and_threshold(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("audit", 1, 600).await.id;
    admin.import_texts(pid, "t", 50).await;
    // 40 "pos" pre-labels scored 0.60..0.99 and 10 "neg" ones scored 0.5.
    let lines: Vec<Value> = (0..50)
        .map(|i| {
            if i < 40 {
                json!({"item": format!("t-{i}"), "label": "pos", "score": 0.6 + i as f64 / 100.0, "model": "m"})
            } else {
                json!({"item": format!("t-{i}"), "label": "neg", "score": 0.5, "model": "m"})
            }
        })
        .collect();
    import_predictions(&admin, pid, &lines).await.ok::<ImportReport>();
    let put = |body: Value| {
        let admin = &admin;
        async move {
            admin
                .raw(Method::PUT, &format!("/api/projects/{pid}/prelabels/settings"), Some((body.to_string().into_bytes(), "application/json")))
                .await
                .ok::<PrelabelSettings>()
        }
    };
    put(json!({"hide_until_answered": false, "audit_rate": 0.1, "audit_seed": 3, "target_precision": 0.9})).await;
    let drawn: PrelabelAuditDrawn = admin.post(&format!("/api/projects/{pid}/prelabels/audit"), &json!({})).await;
    // ⌈0.1 × 40⌉ + ⌈0.1 × 10⌉.
    assert_eq!(drawn, PrelabelAuditDrawn { drawn: 5, queued: 5 });
    let again: PrelabelAuditDrawn = admin.post(&format!("/api/projects/{pid}/prelabels/audit"), &json!({})).await;
    assert_eq!(again, PrelabelAuditDrawn { drawn: 0, queued: 0 }, "the same seed and rate draw the same sample");
    let page: ReviewQueuePage = admin.get(&format!("/api/projects/{pid}/review/queues/prelabel_audit")).await;
    assert_eq!(page.open, 5);
    let s = &sources(&admin, pid).await[0];
    let pos = s.by_label.iter().find(|l| l.label == "pos").unwrap();
    assert_eq!((pos.audited, pos.precision.n, pos.precision.value), (4, 0, None));
    assert_eq!(pos.precision.reason.as_deref(), Some("no audited pre-label decided yet"));
    assert_eq!(pos.auto_accept_min_score, None);

    // The reviewer agrees with every "pos" audit and overrules the "neg" one.
    for item in &page.items {
        let n: usize = item.external_id.as_deref().unwrap()[2..].parse().unwrap();
        let labels = if n < 40 { json!(["pos"]) } else { json!(["other"]) };
        admin
            .post_json_raw(
                &format!("/api/projects/{pid}/review/items/{}/decision", item.item_id),
                &json!({"labels": labels, "queue": "prelabel_audit"}),
            )
            .await
            .assert_status(201);
    }
    let s = &sources(&admin, pid).await[0];
    let pos = s.by_label.iter().find(|l| l.label == "pos").unwrap();
    assert_eq!((pos.audited, pos.precision.n, pos.precision.value), (4, 4, Some(1.0)));
    let iv = pos.precision.interval.unwrap();
    assert!((iv.lower - 0.5101).abs() < 1e-3 && iv.upper == 1.0, "{iv:?}");
    assert_eq!(pos.auto_accept_min_score, None, "4 audits cannot promise 90%");
    let neg = s.by_label.iter().find(|l| l.label == "neg").unwrap();
    assert_eq!((neg.audited, neg.precision.n, neg.precision.value), (1, 1, Some(0.0)));

    // Audit every pre-label: 40 right "pos" audits promise 90% from the lowest score up.
    put(json!({"hide_until_answered": false, "audit_rate": 1.0, "audit_seed": 3, "target_precision": 0.9})).await;
    let drawn: PrelabelAuditDrawn = admin.post(&format!("/api/projects/{pid}/prelabels/audit"), &json!({})).await;
    assert_eq!(drawn, PrelabelAuditDrawn { drawn: 45, queued: 45 }, "a higher rate keeps the earlier draws");
    let page: ReviewQueuePage = admin.get(&format!("/api/projects/{pid}/review/queues/prelabel_audit?limit=500")).await;
    assert_eq!(page.open, 45);
    for item in &page.items {
        let n: usize = item.external_id.as_deref().unwrap()[2..].parse().unwrap();
        let labels = if n < 40 { json!(["pos"]) } else { json!(["neg"]) };
        admin
            .post_json_raw(
                &format!("/api/projects/{pid}/review/items/{}/decision", item.item_id),
                &json!({"labels": labels, "queue": "prelabel_audit"}),
            )
            .await
            .assert_status(201);
    }
    let s = &sources(&admin, pid).await[0];
    let pos = s.by_label.iter().find(|l| l.label == "pos").unwrap();
    assert_eq!((pos.audited, pos.precision.n, pos.precision.value), (40, 40, Some(1.0)));
    assert_eq!(pos.auto_accept_min_score, Some(0.6));
    // At 95% the same 40 audits are not enough.
    put(json!({"hide_until_answered": false, "audit_rate": 1.0, "audit_seed": 3, "target_precision": 0.95})).await;
    let s = &sources(&admin, pid).await[0];
    assert_eq!(s.by_label.iter().find(|l| l.label == "pos").unwrap().auto_accept_min_score, None);
    let neg = s.by_label.iter().find(|l| l.label == "neg").unwrap();
    assert_eq!((neg.audited, neg.precision.n, neg.precision.value), (10, 10, Some(0.9)), "the first neg audit was overruled");
}

/// `mirrorset prelabels import` uploads a predictions file (a refused one lists its bad lines
/// on standard error, exit status 1); `mirrorset prelabels sources` prints the sources.
async fn prelabels_cli_round_trip(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("cli", 1, 600).await.id;
    admin.import_texts(pid, "t", 3).await;
    let token = admin.create_token("cli").await.secret;
    let dir = tempfile::tempdir().unwrap();
    let (url, project) = (server.base_url().to_string(), pid.to_string());
    let run = |cmd: &str, file: Option<&[u8]>| {
        let mut c = std::process::Command::new(server_binary());
        c.args(["prelabels", cmd, "--url", url.as_str(), "--token", token.as_str(), "--project", project.as_str()]);
        if let Some(bytes) = file {
            let path = dir.path().join("predictions.jsonl");
            std::fs::write(&path, bytes).unwrap();
            c.arg(&path);
        }
        let out = c.output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let bad = jsonl(&[json!({"item": "t-0", "label": "pos"}), json!({"item": "t-9", "label": "pos"})]);
    let (code, _, err) = run("import", Some(&bad));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("line 2 [item]: the project has no item with id \"t-9\""), "{err}");
    let good = jsonl(&[json!({"item": "t-0", "label": "pos", "score": 0.7, "model": "cli"}), json!({"item": "t-1", "label": "neg", "model": "cli"})]);
    let (code, out, err) = run("import", Some(&good));
    assert_eq!(code, Some(0), "{err}");
    let report: ImportReport = serde_json::from_str(&out).unwrap();
    assert_eq!((report.lines, report.imported, report.error_count), (2, 2, 0));
    let (code, out, err) = run("sources", None);
    assert_eq!(code, Some(0), "{err}");
    let listed: Vec<PrelabelSource> = serde_json::from_str(&out).unwrap();
    assert_eq!(listed.iter().map(|s| (s.name.as_str(), s.prelabels)).collect::<Vec<_>>(), vec![("cli", 2)]);
}
