//! Labeling rules (issue 10): a lead's rules with their figures (coverage, overlap, conflict,
//! accuracy on items with a final label), the live preview of an unsaved rule, and applying the
//! rules through the label model as the rules source's pre-labels.
//!
//! The planted project (`planted`): eight items, five with a gold answer (a final label), and
//! three rules. Every figure below is counted by hand from that table, and the label model's
//! probabilities come from an independent re-implementation of its EM (Python, same
//! initialisation, smoothing and stopping rule).
use app::api_types::*;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(
    rules_crud_is_for_leads_and_audited,
    rule_figures_on_a_planted_project,
    preview_figures_of_an_unsaved_rule,
    applied_rules_become_prelabels_by_the_label_model,
);

/// (external id, text, meta, gold)
const ITEMS: &[(&str, &str, &str, Option<&str>)] = &[
    ("i0", "great movie, loved it", "a", Some("pos")),
    ("i1", "Loved the acting", "a", Some("pos")),
    ("i2", "terrible plot", "b", Some("neg")),
    ("i3", "loved it but terrible ending", "b", Some("neg")),
    ("i4", "great fun", "a", None),
    ("i5", "terrible, simply terrible", "b", None),
    ("i6", "boring", "c", Some("neg")),
    ("i7", "nothing to say", "", None),
];

fn rules_url(pid: i64) -> String {
    format!("/api/projects/{pid}/prelabels/rules")
}

/// Applies the rules: 202 with a queued (or already running) `rules_apply` job, followed on
/// `GET …/apply` until it finishes; returns the finished job and what the status said.
async fn apply_and_wait(admin: &Client, pid: i64) -> (JobInfo, RulesApplyStatus) {
    let url = format!("{}/apply", rules_url(pid));
    let raw = admin.post_json_raw(&url, &json!({})).await;
    raw.assert_status(202);
    let job: JobInfo = raw.json();
    assert_eq!(job.kind, "rules_apply");
    assert!(matches!(job.state.as_str(), "queued" | "running"), "{job:?}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let s: RulesApplyStatus = admin.get(&url).await;
        let newest = s.job.clone().expect("the job just queued");
        assert_eq!(newest.id, job.id, "no other Apply was asked for");
        if matches!(newest.state.as_str(), "done" | "failed") {
            return (newest, s);
        }
        assert!(std::time::Instant::now() < deadline, "the Apply job did not finish within 60 s: {newest:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The planted project and its three rules: R1 keyword → pos (items 0, 1, 3, 4), R2 regex →
/// neg (2, 3, 5), R3 meta src = b, abstaining (2, 3, 5).
async fn planted(server: &TestServer) -> (Client, i64, [i64; 3]) {
    let admin = server.admin().await;
    let pid = admin.simple_project("rules", 1, 600).await.id;
    let body: String = ITEMS
        .iter()
        .map(|(id, text, src, gold)| {
            let mut v = json!({"id": id, "text": text});
            if !src.is_empty() {
                v["meta"] = json!({"src": src});
            }
            if let Some(g) = gold {
                v["gold"] = json!(g);
            }
            v.to_string() + "\n"
        })
        .collect();
    assert_eq!(admin.import(pid, "jsonl", body).await.imported, 8);
    let mut ids = [0; 3];
    for (i, rule) in [
        json!({"name": "praise", "kind": "keyword", "pattern": "loved great", "label": "pos"}),
        json!({"name": "terrible", "kind": "regex", "pattern": "terribl[ey]", "label": "neg"}),
        json!({"name": "source b", "kind": "meta", "meta_key": "src", "pattern": "b"}),
    ]
    .iter()
    .enumerate()
    {
        let r: PrelabelRule = admin.post_created(&rules_url(pid), rule).await;
        ids[i] = r.id;
    }
    (admin, pid, ids)
}

fn figures(s: &RuleStats) -> (i64, i64, i64, i64, Option<f64>) {
    (s.coverage, s.overlap, s.conflict, s.accuracy.n, s.accuracy.value)
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

async fn rules_crud_is_for_leads_and_audited(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("crud", 1, 600).await.id;
    admin.import_texts(pid, "t", 3).await;
    let (lab_user, lab) = server.user(&admin, "lab", Role::Labeler).await;
    admin.add_member(pid, lab_user.id).await;
    let (lead_user, lead) = server.user(&admin, "lead", Role::Lead).await;
    admin.add_member(pid, lead_user.id).await;

    let draft = json!({"name": " items ", "kind": "keyword", "pattern": "item", "label": "pos"});
    let created: PrelabelRule = lead.post_created(&rules_url(pid), &draft).await;
    assert_eq!(
        (created.name.as_str(), created.kind, created.pattern.as_str(), created.label.as_deref(), created.enabled),
        ("items", RuleKind::Keyword, "item", Some("pos"), true)
    );
    assert_eq!(figures(&created.stats), (3, 0, 0, 0, None));
    assert_eq!(created.stats.accuracy.reason.as_deref(), Some("no matched item has a final label yet"));

    // Labelers may neither read nor write rules; another project's id is not found.
    lab.get_raw(&rules_url(pid)).await.assert_error(403, "forbidden");
    lab.post_json_raw(&rules_url(pid), &draft).await.assert_error(403, "forbidden");
    lab.post_json_raw(&format!("{}/preview", rules_url(pid)), &json!({"kind": "keyword", "pattern": "x"}))
        .await
        .assert_error(403, "forbidden");
    lab.post_json_raw(&format!("{}/apply", rules_url(pid)), &json!({})).await.assert_error(403, "forbidden");
    lab.get_raw(&format!("{}/apply", rules_url(pid))).await.assert_error(403, "forbidden");
    lab.delete_raw(&format!("{}/{}", rules_url(pid), created.id)).await.assert_error(403, "forbidden");
    admin.get_raw(&rules_url(pid + 1000)).await.assert_error(404, "not_found");

    // Bad rules are named and nothing is saved.
    let bad = |pattern: &str, kind: &str, label: Value| json!({"name": "bad", "kind": kind, "pattern": pattern, "label": label});
    let e = lead.post_json_raw(&rules_url(pid), &bad("free-money", "keyword", json!("pos"))).await.assert_error(422, "unprocessable");
    assert_eq!(e.message, "\"free-money\" is not one word (letters and digits only; use a regular expression for phrases)");
    let e = lead.post_json_raw(&rules_url(pid), &bad("(x", "regex", json!("pos"))).await.assert_error(422, "unprocessable");
    assert!(e.message.starts_with("not a valid regular expression"), "{}", e.message);
    let e = lead.post_json_raw(&rules_url(pid), &bad("x", "keyword", json!("maybe"))).await.assert_error(422, "unprocessable");
    assert_eq!(e.message, "\"maybe\" is not one of the project's labels");
    let e = lead.post_json_raw(&rules_url(pid), &bad("x", "meta", json!("pos"))).await.assert_error(422, "unprocessable");
    assert_eq!(e.message, "an attribute rule needs the attribute's name (meta_key)");
    let e = lead.post_json_raw(&rules_url(pid), &json!({"name": " ", "kind": "keyword", "pattern": "x"})).await.assert_error(400, "bad_request");
    assert_eq!(e.message, "a rule needs a name of 1 to 200 characters");
    let e = lead.post_json_raw(&rules_url(pid), &draft).await.assert_error(409, "conflict");
    assert_eq!(e.message, "this project already has a rule named \"items\"");

    // Replace: the figures follow the new rule; a replacement that changes nothing logs nothing.
    let url = format!("{}/{}", rules_url(pid), created.id);
    let replaced = json!({"name": "item one", "kind": "regex", "pattern": r"item 1\b", "label": null, "enabled": false});
    let bytes = serde_json::to_vec(&replaced).unwrap();
    let r: PrelabelRule = lead.raw(reqwest::Method::PUT, &url, Some((bytes.clone(), "application/json"))).await.ok();
    assert_eq!((r.kind, r.label.clone(), r.enabled, r.stats.coverage), (RuleKind::Regex, None, false, 1));
    assert_eq!(r.stats.accuracy.reason.as_deref(), Some("the rule abstains: it votes for no label"));
    let _: PrelabelRule = lead.raw(reqwest::Method::PUT, &url, Some((bytes, "application/json"))).await.ok();
    let missing = format!("{}/{}", rules_url(pid), created.id + 1000);
    lead.raw(reqwest::Method::PUT, &missing, Some((serde_json::to_vec(&replaced).unwrap(), "application/json")))
        .await
        .assert_error(404, "not_found");

    lead.delete_raw(&url).await.assert_status(204);
    lead.delete_raw(&url).await.assert_error(404, "not_found");
    let list: RuleList = lead.get(&rules_url(pid)).await;
    assert_eq!((list.items, list.labeled, list.covered, list.rules.len()), (3, 0, 0, 0));

    // The audit log: created, changed once, deleted, each with the lead as actor.
    let log: Vec<AuditEntry> = admin
        .get_raw(&format!("/api/projects/{pid}/audit"))
        .await
        .text()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rules: Vec<(AuditAction, Option<String>)> = log
        .iter()
        .filter(|e| e.action.as_str().starts_with("rule"))
        .map(|e| (e.action, e.actor.clone()))
        .collect();
    let lead_name = Some("lead".to_string());
    assert_eq!(
        rules,
        vec![
            (AuditAction::RuleCreated, lead_name.clone()),
            (AuditAction::RuleChanged, lead_name.clone()),
            (AuditAction::RuleDeleted, lead_name.clone())
        ]
    );
    let changed = log.iter().find(|e| e.action == AuditAction::RuleChanged).unwrap();
    assert_eq!(changed.before.as_ref().unwrap()["pattern"], json!("item"));
    assert_eq!(changed.after.as_ref().unwrap()["pattern"], json!(r"item 1\b"));
}

async fn rule_figures_on_a_planted_project(b: Backend) {
    let server = TestServer::start(b).await;
    let (admin, pid, ids) = planted(&server).await;
    let list: RuleList = admin.get(&rules_url(pid)).await;
    assert_eq!((list.items, list.labeled, list.covered), (8, 5, 6));
    let names: Vec<(i64, &str)> = list.rules.iter().map(|r| (r.id, r.name.as_str())).collect();
    assert_eq!(names, vec![(ids[0], "praise"), (ids[1], "terrible"), (ids[2], "source b")]);
    // praise: items 0, 1, 3, 4; item 3 also matched (and voted neg) by terrible and source b;
    // final labels on 0, 1 (pos) and 3 (neg): 2 of 3.
    assert_eq!(figures(&list.rules[0].stats), (4, 1, 1, 3, Some(2.0 / 3.0)));
    let iv = list.rules[0].stats.accuracy.interval.unwrap();
    assert!(close(iv.lower, 0.2076596008020477) && close(iv.upper, 0.9385080552796037), "{iv:?}");
    // terrible: items 2, 3, 5, all matched by source b too; conflict on 3 only; 2 of 2.
    assert_eq!(figures(&list.rules[1].stats), (3, 3, 1, 2, Some(1.0)));
    // source b abstains: no conflict, no accuracy.
    assert_eq!(figures(&list.rules[2].stats), (3, 3, 0, 0, None));

    // Disabling terrible: it keeps its own figures (against the enabled rules), the others lose
    // it as a neighbour.
    let bytes = serde_json::to_vec(&json!({"name": "terrible", "kind": "regex", "pattern": "terribl[ey]", "label": "neg", "enabled": false})).unwrap();
    let _: PrelabelRule =
        admin.raw(reqwest::Method::PUT, &format!("{}/{}", rules_url(pid), ids[1]), Some((bytes, "application/json"))).await.ok();
    let list: RuleList = admin.get(&rules_url(pid)).await;
    assert_eq!(list.covered, 4);
    assert_eq!(figures(&list.rules[0].stats), (4, 1, 0, 3, Some(2.0 / 3.0)));
    // terrible itself still conflicts with praise (enabled) on item 3.
    assert_eq!(figures(&list.rules[1].stats), (3, 3, 1, 2, Some(1.0)));
}

async fn preview_figures_of_an_unsaved_rule(b: Backend) {
    let server = TestServer::start(b).await;
    let (admin, pid, ids) = planted(&server).await;
    let preview = |body: Value| {
        let admin = &admin;
        async move { admin.post::<RulePreview, _>(&format!("{}/preview", rules_url(pid)), &body).await }
    };
    // "boring, plot" → neg: items 2 and 6; item 2 is matched by terrible and source b, which
    // agree; both are labeled neg.
    let p = preview(json!({"kind": "keyword", "pattern": "Boring, PLOT", "label": "neg"})).await;
    assert_eq!(p.items, 8);
    assert_eq!(figures(&p.stats), (2, 1, 0, 2, Some(1.0)));
    let iv = p.stats.accuracy.interval.unwrap();
    assert!(close(iv.lower, 0.34238022750665303) && close(iv.upper, 1.0), "{iv:?}");
    let examples: Vec<(&str, Option<Vec<String>>)> = p.examples.iter().map(|e| (e.text.as_str(), e.final_labels.clone())).collect();
    assert_eq!(examples, vec![("terrible plot", Some(vec!["neg".into()])), ("boring", Some(vec!["neg".into()]))]);
    // The same words voting pos: a conflict on item 2, and 0 of 2 right.
    let p = preview(json!({"kind": "keyword", "pattern": "boring plot", "label": "pos"})).await;
    assert_eq!(figures(&p.stats), (2, 1, 1, 2, Some(0.0)));
    // Editing praise into "great": compared with the two other rules only.
    let p = preview(json!({"kind": "keyword", "pattern": "great", "label": "pos", "editing": ids[0]})).await;
    assert_eq!(figures(&p.stats), (2, 0, 0, 1, Some(1.0)));
    // An attribute rule, and a rule that matches nothing.
    let p = preview(json!({"kind": "meta", "meta_key": "src", "pattern": "c", "label": "neg"})).await;
    assert_eq!(figures(&p.stats), (1, 0, 0, 1, Some(1.0)));
    let p = preview(json!({"kind": "regex", "pattern": "^zzz", "label": "neg"})).await;
    assert_eq!(figures(&p.stats), (0, 0, 0, 0, None));
    assert_eq!(p.examples, vec![]);
    // A half-typed expression is a 422 that says why.
    let e = admin
        .post_json_raw(&format!("{}/preview", rules_url(pid)), &json!({"kind": "regex", "pattern": "terribl[", "label": "neg"}))
        .await
        .assert_error(422, "unprocessable");
    assert!(e.message.starts_with("not a valid regular expression"), "{}", e.message);
    // A new import changes the corpus: the preview sees the new item.
    admin.import(pid, "jsonl", json!({"id": "i8", "text": "so boring"}).to_string() + "\n").await;
    let p = preview(json!({"kind": "keyword", "pattern": "boring", "label": "neg"})).await;
    assert_eq!((p.items, p.stats.coverage), (9, 2));
}

async fn applied_rules_become_prelabels_by_the_label_model(b: Backend) {
    let server = TestServer::start(b).await;
    let (admin, pid, _) = planted(&server).await;
    // Nothing applied yet.
    let none: RulesApplyStatus = admin.get(&format!("{}/apply", rules_url(pid))).await;
    assert_eq!(none, RulesApplyStatus { job: None, applied: None });
    let (job, status) = apply_and_wait(&admin, pid).await;
    assert_eq!((job.state.as_str(), job.progress_done, job.progress_total, job.error), ("done", 3, 3, None));
    let applied = status.applied.expect("a finished Apply's result");
    // Voters: praise and terrible (source b abstains). Items 0..5 get a pre-label; 6 and 7,
    // where no voting rule fires, none.
    assert_eq!((applied.prelabels, applied.iterations, applied.converged), (6, 2, true));
    let sources: Vec<PrelabelSource> = admin.get(&format!("/api/projects/{pid}/prelabels/sources")).await;
    let rules = sources.iter().find(|s| s.kind == PrelabelSourceKind::Rules).expect("a rules source");
    assert_eq!((rules.id, rules.name.as_str(), rules.prelabels), (applied.source_id, "rules", 6));
    let mut by_label: Vec<(String, i64)> = rules.by_label.iter().map(|l| (l.label.clone(), l.prelabels)).collect();
    by_label.sort();
    assert_eq!(by_label, vec![("neg".into(), 3), ("pos".into(), 3)]);

    // The labeling view shows the label model's label and probability: praise alone 0.674806
    // (pos), terrible alone 0.782332 (neg), both 0.538059 (neg).
    let expected = |text: &str| -> Option<(&str, f64)> {
        match text {
            "great movie, loved it" | "Loved the acting" | "great fun" => Some(("pos", 0.6748060485985622)),
            "terrible plot" | "terrible, simply terrible" => Some(("neg", 0.7823318749898003)),
            "loved it but terrible ending" => Some(("neg", 0.5380589656788561)),
            _ => None,
        }
    };
    let mut seen = 0;
    let mut exclude = Vec::new();
    // At most one pass over the eight items: an item served again ends the walk.
    for _ in 0..ITEMS.len() {
        let next = admin.next_excluding(pid, &exclude).await;
        let Some(item) = next.item else { break };
        if exclude.contains(&item.id) {
            break;
        }
        exclude.push(item.id);
        let got = next.prelabel.map(|p| (p.labels, p.score.unwrap(), p.source_kind));
        match expected(item.text.as_deref().unwrap_or("")) {
            Some((label, score)) => {
                let (labels, s, kind) = got.expect("a pre-label");
                assert_eq!((labels, kind), (vec![label.to_string()], PrelabelSourceKind::Rules), "{:?}", item.text);
                assert!((s - score).abs() < 1e-6, "{:?}: {s} vs {score}", item.text);
                seen += 1;
            }
            None => assert_eq!(got, None, "{:?}", item.text),
        }
        admin.skip(pid, item.id).await;
    }
    assert!(seen >= 1, "the stream showed no pre-labeled item");

    // Applying again after deleting the voters empties the source.
    let list: RuleList = admin.get(&rules_url(pid)).await;
    for r in &list.rules {
        admin.delete_raw(&format!("{}/{}", rules_url(pid), r.id)).await.assert_status(204);
    }
    let (job, status) = apply_and_wait(&admin, pid).await;
    assert_eq!(job.state, "done");
    let applied = status.applied.expect("a finished Apply's result");
    assert_eq!(applied.prelabels, 0);
    let sources: Vec<PrelabelSource> = admin.get(&format!("/api/projects/{pid}/prelabels/sources")).await;
    assert_eq!(sources.iter().find(|s| s.kind == PrelabelSourceKind::Rules).unwrap().prelabels, 0);
}
