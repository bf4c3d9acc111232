//! Review queues, decisions, gold answers and the final label (issue 7): leads and admins work
//! the queues, labelers get 403 everywhere; a decision sets the final label, leaves its queues
//! and is in the audit log with before and after; the export carries the final label.
use std::collections::{BTreeMap, BTreeSet};

use app::api_types::*;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(
    labelers_get_403_on_every_review_route,
    a_decision_sets_the_final_label_and_is_audited,
    the_disagreement_queue_follows_changed_answers,
    gold_misses_are_queued_and_both_outcomes_work,
    the_audit_queue_is_a_seeded_share,
    queues_filter_by_pair_slice_and_label_and_take_feeds,
);

/// Labels every item the labeler is handed: `want` maps external ids to the label to give
/// (items not in it are skipped). Does not rely on the order items are handed out in.
async fn label_all(c: &Client, pid: i64, want: &BTreeMap<&str, &str>) -> BTreeMap<String, i64> {
    let mut ids = BTreeMap::new();
    for _ in 0..100 {
        let Some(item) = c.next(pid).await.item else { break };
        let ext = item.external_id.clone().unwrap_or_default();
        match want.get(ext.as_str()) {
            Some(label) => {
                c.submit(pid, item.id, &[*label]).await;
            }
            None => c.skip(pid, item.id).await,
        }
        if ids.insert(ext, item.id).is_some() {
            break;
        }
    }
    ids
}

async fn queues(c: &Client, pid: i64, query: &str) -> BTreeMap<String, (i64, i64)> {
    let q: ReviewQueues = c.get(&format!("/api/projects/{pid}/review/queues{query}")).await;
    q.queues.into_iter().map(|q| (q.queue, (q.open, q.resolved))).collect()
}

async fn queue_ids(c: &Client, pid: i64, queue: &str, query: &str) -> Vec<i64> {
    let page: ReviewQueuePage = c.get(&format!("/api/projects/{pid}/review/queues/{queue}?limit=500{query}")).await;
    assert_eq!(page.open, page.items.len() as i64, "{page:?}");
    page.items.iter().map(|i| i.item_id).collect()
}

async fn decide_raw(c: &Client, pid: i64, item: i64, body: Value) -> RawResponse {
    c.post_json_raw(&format!("/api/projects/{pid}/review/items/{item}/decision"), &body).await
}

async fn put_gold(c: &Client, pid: i64, item: i64, labels: Value) -> RawResponse {
    let body = serde_json::to_vec(&json!({ "labels": labels })).unwrap();
    c.raw(Method::PUT, &format!("/api/projects/{pid}/items/{item}/gold"), Some((body, "application/json"))).await
}

async fn labelers_get_403_on_every_review_route(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("review", 1, 600).await.id;
    let (lena, l) = server.user(&admin, "lena", Role::Labeler).await;
    admin.add_member(pid, lena.id).await;
    admin.import_texts(pid, "a", 1).await;
    let item = l.next(pid).await.item.expect("an item").id;
    l.submit(pid, item, &["pos"]).await;

    let gets = [
        format!("/api/projects/{pid}/review/queues"),
        format!("/api/projects/{pid}/review/queues/disagreement"),
        format!("/api/projects/{pid}/review/items/{item}"),
    ];
    for path in &gets {
        l.get_raw(path).await.assert_error(403, "forbidden");
        admin.get_raw(path).await.assert_status(200);
    }
    let entries = json!({"item_ids": [item], "reason": "x"});
    l.post_json_raw(&format!("/api/projects/{pid}/review/queues/custom/entries"), &entries)
        .await
        .assert_error(403, "forbidden");
    decide_raw(&l, pid, item, json!({"labels": ["pos"], "queue": "audit"})).await.assert_error(403, "forbidden");
    put_gold(&l, pid, item, json!(["pos"])).await.assert_error(403, "forbidden");
    // Nothing was changed by the refused requests.
    let seen: ReviewItem = admin.get(&format!("/api/projects/{pid}/review/items/{item}")).await;
    assert!(seen.decisions.is_empty() && seen.gold.is_none() && seen.reasons.is_empty(), "{seen:?}");

    // A lead of another project sees no project here (404, as everywhere).
    let (_, other_lead) = server.user(&admin, "olga", Role::Lead).await;
    other_lead.get_raw(&gets[0]).await.assert_error(404, "not_found");
    // Bad input is a clear 400.
    admin.get_raw(&format!("/api/projects/{pid}/review/queues/Bad%20Name")).await.assert_error(400, "bad_request");
    admin.get_raw(&format!("/api/projects/{pid}/review/queues/audit?limit=0")).await.assert_error(400, "bad_request");
    admin.get_raw(&format!("/api/projects/{pid}/review/queues/audit?pair=lena")).await.assert_error(400, "bad_request");
    admin.get_raw(&format!("/api/projects/{pid}/review/queues/audit?pair=lena,nobody")).await.assert_error(400, "bad_request");
    admin.get_raw(&format!("/api/projects/{pid}/review/items/{}", item + 100)).await.assert_error(404, "not_found");
}

/// The submission hook compares the item's answers (the other labelers', read by the
/// submission, and the one it writes): once the item has its k answers, an answer changed to
/// differ opens the item's disagreement entry, and one changed to agree again removes it,
/// whichever labeler changes.
async fn the_disagreement_queue_follows_changed_answers(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("changed", 3, 600).await.id;
    let labelers = server.labelers_of(&admin, pid, &["ann", "bob", "cat"]).await;
    admin.import_texts(pid, "c", 1).await;
    let mut item = None;
    for c in &labelers {
        let id = c.next(pid).await.item.expect("an item").id;
        assert_eq!(*item.get_or_insert(id), id);
    }
    let item = item.unwrap();
    let (a, bb, c) = (&labelers[0], &labelers[1], &labelers[2]);
    let open = || async { queue_ids(&admin, pid, "disagreement", "").await };
    a.submit(pid, item, &["pos"]).await;
    bb.submit(pid, item, &["pos"]).await;
    c.submit(pid, item, &["pos"]).await;
    assert!(open().await.is_empty(), "three answers that agree");
    c.submit(pid, item, &["neg"]).await; // cat changes hers: they differ
    assert_eq!(open().await, [item]);
    c.submit(pid, item, &["pos"]).await; // and back: they agree again
    assert!(open().await.is_empty());
    bb.submit(pid, item, &["other"]).await;
    assert_eq!(open().await, [item]);
    bb.submit(pid, item, &["pos"]).await;
    assert!(open().await.is_empty());
    a.submit(pid, item, &["neg"]).await;
    assert_eq!(open().await, [item]);
}

async fn a_decision_sets_the_final_label_and_is_audited(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("review", 2, 600).await.id;
    let (lee, lead) = server.user(&admin, "lee", Role::Lead).await;
    admin.add_member(pid, lee.id).await;
    let (ann, a) = server.user(&admin, "ann", Role::Labeler).await;
    let (bob, bb) = server.user(&admin, "bob", Role::Labeler).await;
    admin.add_member(pid, ann.id).await;
    admin.add_member(pid, bob.id).await;
    admin.import_texts(pid, "t", 3).await;
    // t-0: the labels differ; t-1: they agree; t-2: only ann labels it (incomplete).
    let ids = label_all(&a, pid, &BTreeMap::from([("t-0", "pos"), ("t-1", "pos"), ("t-2", "neg")])).await;
    label_all(&bb, pid, &BTreeMap::from([("t-0", "neg"), ("t-1", "pos")])).await;
    let (t0, t1, t2) = (ids["t-0"], ids["t-1"], ids["t-2"]);

    assert_eq!(queue_ids(&lead, pid, "disagreement", "").await, [t0]);
    assert_eq!(queues(&lead, pid, "").await["disagreement"], (1, 0));
    let page: ReviewQueuePage = lead.get(&format!("/api/projects/{pid}/review/queues/disagreement")).await;
    assert_eq!(page.items[0].reasons[0].reason, "labels_differ");
    assert_eq!((page.items[0].snippet.as_str(), page.items[0].external_id.as_deref()), ("t item 0", Some("t-0")));

    // The consensus job's row (written here by hand): the final label until a lead decides.
    server
        .exec_sql(&format!(
            "INSERT INTO consensus (item_id, project_id, labels, posterior, method, n_labels, computed_at)
             VALUES ({t0}, {pid}, '[\"pos\"]', 0.5, 'majority', 2, 1), ({t1}, {pid}, '[\"pos\"]', 1.0, 'majority', 2, 1),
                    ({t2}, {pid}, '[\"neg\"]', 1.0, 'majority', 1, 1)"
        ))
        .await;
    let view: ReviewItem = lead.get(&format!("/api/projects/{pid}/review/items/{t0}")).await;
    let answers: Vec<(&str, Vec<String>)> = view.answers.iter().map(|a| (a.username.as_str(), a.labels.clone())).collect();
    assert_eq!(answers, [("ann", vec!["pos".to_string()]), ("bob", vec!["neg".to_string()])]);
    assert!(view.answers.iter().all(|a| a.created_at > 0));
    assert_eq!(view.consensus.as_ref().map(|c| c.posterior), Some(0.5));
    assert_eq!((view.label_count, view.k), (2, 2));
    assert_eq!(view.final_label, FinalLabel { labels: Some(vec!["pos".into()]), source: FinalSource::Consensus, auto_source: None });
    let reasons: BTreeSet<&str> = view.reasons.iter().map(|r| r.reason.as_str()).collect();
    assert_eq!(reasons, BTreeSet::from(["labels_differ", "low_posterior"]));
    assert_eq!(view.history.len(), 2);

    // Bad decisions are refused and change nothing.
    decide_raw(&lead, pid, t0, json!({"labels": ["nope"], "queue": "disagreement"})).await.assert_error(400, "bad_request");
    decide_raw(&lead, pid, t0, json!({"labels": ["pos", "neg"], "queue": "disagreement"})).await.assert_error(400, "bad_request");
    decide_raw(&lead, pid, t0, json!({"labels": ["neg"], "queue": "disagreement", "gold_action": "labeler_wrong"}))
        .await
        .assert_error(400, "bad_request");
    decide_raw(&lead, pid, t0 + 100, json!({"labels": ["neg"], "queue": "disagreement"})).await.assert_error(404, "not_found");

    let decided: ReviewDecision = decide_raw(&lead, pid, t0, json!({"labels": ["neg"], "note": " bob is right ", "queue": "disagreement"}))
        .await
        .created();
    assert_eq!(
        (decided.reviewer.as_str(), decided.labels.clone(), decided.note.as_str(), decided.gold_outcome),
        ("lee", vec!["neg".to_string()], "bob is right", None)
    );
    // It left its queue; the count says it was resolved.
    assert!(queue_ids(&lead, pid, "disagreement", "").await.is_empty());
    assert_eq!(queues(&lead, pid, "").await["disagreement"], (0, 1));
    let view: ReviewItem = lead.get(&format!("/api/projects/{pid}/review/items/{t0}")).await;
    assert_eq!(view.final_label, FinalLabel { labels: Some(vec!["neg".into()]), source: FinalSource::Adjudicated, auto_source: None });
    assert!(view.reasons.is_empty(), "{:?}", view.reasons);
    let last = view.history.last().unwrap();
    assert_eq!((last.action, last.actor.as_deref(), last.item_id), (AuditAction::ReviewDecided, Some("lee"), Some(t0)));
    assert_eq!(last.before, Some(json!({"labels": ["pos"], "source": "consensus"})));
    assert_eq!(
        last.after,
        Some(json!({"labels": ["neg"], "source": "adjudicated", "queue": "disagreement", "note": "bob is right",
                    "gold_outcome": null, "decision_id": decided.id}))
    );
    // A second decision supersedes the first, and its `before` is the first.
    decide_raw(&lead, pid, t0, json!({"labels": ["other"], "queue": "disagreement"})).await.assert_status(201);
    let view: ReviewItem = lead.get(&format!("/api/projects/{pid}/review/items/{t0}")).await;
    assert_eq!(view.decisions.len(), 2);
    assert_eq!(view.final_label.labels, Some(vec!["other".to_string()]));
    assert_eq!(view.history.last().unwrap().before, Some(json!({"labels": ["neg"], "source": "adjudicated"})));

    // The export: the final label next to the raw annotations, with its provenance. Pinned.
    let lines = admin.export_jsonl(pid, false).await;
    let by_id: BTreeMap<i64, &Value> = lines.iter().map(|l| (l["item_id"].as_i64().unwrap(), l)).collect();
    let keys: Vec<&str> = by_id[&t0].as_object().unwrap().keys().map(String::as_str).collect();
    let want_keys = BTreeSet::from([
        "item_id", "id", "kind", "text", "image", "image_sha256", "meta", "weight", "source", "license", "label_count",
        "annotations", "final_labels", "final_source", "posterior", "gold", "review_note",
    ]);
    assert_eq!(keys.into_iter().collect::<BTreeSet<_>>(), want_keys);
    let fin = |id: i64| {
        let l = by_id[&id];
        json!([l["final_labels"], l["final_source"], l["posterior"], l["gold"], l["review_note"]])
    };
    assert_eq!(fin(t0), json!([["other"], "adjudicated", 0.5, false, ""]));
    assert_eq!(fin(t1), json!([["pos"], "consensus", 1.0, false, null]));
    // t-2 has one label of its two: its consensus is no final label yet.
    assert_eq!(fin(t2), json!([null, "none", 1.0, false, null]));
    let (header, rows) = admin.export_csv(pid, false).await;
    assert_eq!(
        header,
        [
            "item_id", "id", "kind", "text", "image", "image_sha256", "meta", "weight", "source", "license",
            "label_count", "labeler", "labels", "time_ms", "annotated_at", "updated_at",
            "final_labels", "final_source", "posterior", "gold", "review_note",
        ]
    );
    let row = rows.iter().find(|r| r["item_id"] == t1.to_string()).unwrap();
    assert_eq!(
        [&row["final_labels"], &row["final_source"], &row["posterior"], &row["gold"], &row["review_note"]],
        ["pos", "consensus", "1", "false", ""]
    );
    let rows0: Vec<_> = rows.iter().filter(|r| r["item_id"] == t0.to_string()).collect();
    assert_eq!(rows0.len(), 2);
    assert!(rows0.iter().all(|r| r["final_labels"] == "other" && r["final_source"] == "adjudicated"));

    // A labeler changing their answer to agree takes the item out of the queue (t-1 never in it).
    let t1_view: ReviewItem = lead.get(&format!("/api/projects/{pid}/review/items/{t1}")).await;
    assert!(t1_view.reasons.is_empty());
    let _ = (bob, bb);
}

async fn gold_misses_are_queued_and_both_outcomes_work(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("gold", 1, 600).await.id;
    let (ann, a) = server.user(&admin, "ann", Role::Labeler).await;
    admin.add_member(pid, ann.id).await;
    admin.import_texts(pid, "g", 3).await;
    let ids = label_all(&a, pid, &BTreeMap::from([("g-0", "pos"), ("g-1", "pos"), ("g-2", "neg")])).await;
    let (g0, g1, g2) = (ids["g-0"], ids["g-1"], ids["g-2"]);

    // A lead marks gold answers (audited); bad labels are refused.
    put_gold(&admin, pid, g0, json!(["nope"])).await.assert_error(400, "bad_request");
    for (id, gold) in [(g0, "neg"), (g1, "neg"), (g2, "neg")] {
        let answer: GoldAnswer = put_gold(&admin, pid, id, json!([gold])).await.ok();
        assert_eq!(answer, GoldAnswer { item_id: id, gold: Some(vec![gold.to_string()]) });
    }
    let history: Vec<AuditEntry> = admin.get(&format!("/api/projects/{pid}/items/{g0}/history")).await;
    let last = history.last().unwrap();
    assert_eq!((last.action, last.before.clone(), last.after.clone()), (AuditAction::GoldChanged, Some(json!({"gold": null})), Some(json!({"gold": ["neg"]}))));

    // The labeler answers again (as after a gold item comes round): misses are recorded.
    a.submit(pid, g0, &["pos"]).await;
    a.submit(pid, g1, &["other"]).await;
    a.submit(pid, g2, &["neg"]).await;
    a.submit(pid, g0, &["pos"]).await; // the same miss again stays one entry
    let page: ReviewQueuePage = admin.get(&format!("/api/projects/{pid}/review/queues/gold_miss")).await;
    assert_eq!(page.items.iter().map(|i| i.item_id).collect::<Vec<_>>(), [g0, g1]);
    let r = &page.items[0].reasons;
    assert_eq!(r.len(), 1, "{r:?}");
    assert_eq!((r[0].reason.as_str(), r[0].labeler.as_deref()), ("gold_miss", Some("ann")));
    assert_eq!(r[0].detail, json!({"labels": ["pos"], "gold": ["neg"]}));

    // From the gold-miss queue a decision must say what the miss was.
    decide_raw(&admin, pid, g0, json!({"labels": ["neg"], "queue": "gold_miss"})).await.assert_error(400, "bad_request");
    decide_raw(&admin, pid, g0, json!({"labels": ["pos"], "queue": "gold_miss", "gold_action": "labeler_wrong"}))
        .await
        .assert_error(400, "bad_request");
    // Outcome 1: the labeler was wrong; the gold answer stands.
    let d: ReviewDecision = decide_raw(&admin, pid, g0, json!({"labels": ["neg"], "queue": "gold_miss", "gold_action": "labeler_wrong"}))
        .await
        .created();
    assert_eq!(d.gold_outcome, Some(GoldAction::LabelerWrong));
    let v0: ReviewItem = admin.get(&format!("/api/projects/{pid}/review/items/{g0}")).await;
    assert_eq!(v0.gold, Some(vec!["neg".to_string()]));
    assert_eq!(v0.final_label.source, FinalSource::Adjudicated);
    // Outcome 2: the gold answer was wrong; it becomes the decision's labels (audited).
    decide_raw(&admin, pid, g1, json!({"labels": ["other"], "queue": "gold_miss", "gold_action": "gold_corrected", "note": "guideline v2"}))
        .await
        .assert_status(201);
    let v1: ReviewItem = admin.get(&format!("/api/projects/{pid}/review/items/{g1}")).await;
    assert_eq!(v1.gold, Some(vec!["other".to_string()]));
    assert_eq!(v1.decisions[0].gold_outcome, Some(GoldAction::GoldCorrected));
    let actions: Vec<AuditAction> = v1.history.iter().map(|e| e.action).collect();
    assert_eq!(actions[actions.len() - 2..], [AuditAction::GoldChanged, AuditAction::ReviewDecided]);
    let gold_change = &v1.history[v1.history.len() - 2];
    assert_eq!(gold_change.before, Some(json!({"gold": ["neg"]})));
    assert_eq!(gold_change.after.as_ref().unwrap()["gold"], json!(["other"]));
    assert_eq!(queues(&admin, pid, "").await["gold_miss"], (0, 2));

    // The export: g2 (right answer, no decision) has the gold answer as its final label.
    let lines = admin.export_jsonl(pid, false).await;
    let g2_line = lines.iter().find(|l| l["item_id"] == g2).unwrap();
    assert_eq!((&g2_line["final_labels"], &g2_line["final_source"], &g2_line["gold"]), (&json!(["neg"]), &json!("gold"), &json!(true)));

    // Unmarking: no gold answer, no longer a gold item; a new miss cannot happen.
    let cleared: GoldAnswer = put_gold(&admin, pid, g2, Value::Null).await.ok();
    assert_eq!(cleared.gold, None);
    a.submit(pid, g2, &["pos"]).await;
    assert!(queue_ids(&admin, pid, "gold_miss", "").await.is_empty());
    // Decisions on items without gold cannot carry a gold action.
    decide_raw(&admin, pid, g2, json!({"labels": ["pos"], "queue": "audit", "gold_action": "gold_corrected"}))
        .await
        .assert_error(400, "bad_request");
}

async fn the_audit_queue_is_a_seeded_share(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("audit", 1, 600).await.id;
    let n = 2000;
    admin.import_texts(pid, "x", n).await;
    // Completed by hand (labeling 2,000 items through the API is not what is tested here),
    // with one item left incomplete: incomplete items are never drawn.
    server.exec_sql(&format!("UPDATE items SET label_count = 1, complete = 1 WHERE project_id = {pid}")).await;
    let (rate, seed) = (0.1, 42i64);
    server.exec_sql(&format!("UPDATE projects SET audit_rate = {rate}, audit_seed = {seed} WHERE id = {pid}")).await;
    let ids: Vec<i64> = admin.export_jsonl(pid, false).await.iter().map(|l| l["item_id"].as_i64().unwrap()).collect();
    let incomplete = ids[0];
    server.exec_sql(&format!("UPDATE items SET label_count = 0, complete = 0 WHERE id = {incomplete}")).await;

    let mut drawn = Vec::new();
    let mut after = 0;
    loop {
        let page: ReviewQueuePage =
            admin.get(&format!("/api/projects/{pid}/review/queues/audit?limit=100&after={after}")).await;
        drawn.extend(page.items.iter().map(|i| i.item_id));
        assert!(page.items.iter().all(|i| i.reasons.iter().any(|r| r.reason == "audit")));
        match page.next_after {
            Some(a) => after = a,
            None => break,
        }
    }
    // Exactly the items the seeded draw names, the database and the Rust draw agreeing ...
    let draw = server::review::AuditDraw::new(seed, rate);
    let want: Vec<i64> = ids.iter().copied().filter(|&id| id != incomplete && draw.drawn(id)).collect();
    assert_eq!(drawn, want);
    // ... and a share within binomial bounds (4 standard deviations).
    let (k, n) = (drawn.len() as f64, (n - 1) as f64);
    let sd = (n * rate * (1.0 - rate)).sqrt();
    assert!((k - n * rate).abs() < 4.0 * sd, "{k} of {n} drawn at rate {rate}");
    assert_eq!(queues(&admin, pid, "").await["audit"], (drawn.len() as i64, 0));

    // Reproducible: the same seed draws the same items; another seed draws others.
    assert_eq!(queue_ids(&admin, pid, "audit", "").await.len(), drawn.len().min(500));
    server.exec_sql(&format!("UPDATE projects SET audit_seed = 43 WHERE id = {pid}")).await;
    let other = queue_ids(&admin, pid, "audit", "").await;
    let same = other.iter().filter(|id| drawn.contains(id)).count();
    assert!(same < other.len() / 2, "{same} of {} in common", other.len());
    server.exec_sql(&format!("UPDATE projects SET audit_seed = {seed} WHERE id = {pid}")).await;

    // A decision takes the item out of the audit queue.
    decide_raw(&admin, pid, drawn[0], json!({"labels": ["pos"], "queue": "audit"})).await.assert_status(201);
    assert_eq!(queues(&admin, pid, "").await["audit"], (drawn.len() as i64 - 1, 1));
    // Rate 0 draws nothing.
    server.exec_sql(&format!("UPDATE projects SET audit_rate = 0 WHERE id = {pid}")).await;
    assert_eq!(queues(&admin, pid, "").await["audit"], (0, 1));
}

async fn queues_filter_by_pair_slice_and_label_and_take_feeds(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("filters", 3, 600).await.id;
    let clients = server.labelers_of(&admin, pid, &["ann", "bob", "cat"]).await;
    let items = [
        json!({"id": "f-1", "text": "one", "meta": {"region": "eu", "n": 3}}),
        json!({"id": "f-2", "text": "two", "meta": {"region": "us", "n": 4}}),
        json!({"id": "f-3", "text": "three", "meta": {"region": "eu", "n": 3}}),
        json!({"id": "f-4", "text": "four", "meta": {"region": "eu"}}),
    ];
    admin.import(pid, "jsonl", jsonl(&items)).await;
    // f-1: ann and bob differ; f-2: ann and cat differ; f-3: all agree; f-4: not labeled.
    let plan = [
        [("f-1", "pos"), ("f-2", "pos"), ("f-3", "pos")],
        [("f-1", "neg"), ("f-2", "pos"), ("f-3", "pos")],
        [("f-1", "pos"), ("f-2", "other"), ("f-3", "pos")],
    ];
    let mut ids = BTreeMap::new();
    for (c, want) in clients.iter().zip(plan) {
        ids.extend(label_all(c, pid, &want.into_iter().collect()).await);
    }
    let (f1, f2, f3) = (ids["f-1"], ids["f-2"], ids["f-3"]);
    assert_eq!(queue_ids(&admin, pid, "disagreement", "").await, [f1, f2]);
    assert_eq!(queue_ids(&admin, pid, "disagreement", "&pair=ann,bob").await, [f1]);
    assert_eq!(queue_ids(&admin, pid, "disagreement", "&pair=cat,ann").await, [f2]);
    assert_eq!(queue_ids(&admin, pid, "disagreement", "&pair=bob,cat").await, [f1, f2]);
    assert_eq!(queue_ids(&admin, pid, "disagreement", "&slice=region:eu").await, [f1]);
    assert_eq!(queue_ids(&admin, pid, "disagreement", "&slice=region:us").await, [f2]);
    assert_eq!(queue_ids(&admin, pid, "disagreement", "&slice=n:4").await, [f2]);
    assert!(queue_ids(&admin, pid, "disagreement", "&slice=region:mars").await.is_empty());
    assert_eq!(queue_ids(&admin, pid, "disagreement", "&label=neg").await, [f1]);
    assert_eq!(queue_ids(&admin, pid, "disagreement", "&label=other").await, [f2]);
    assert!(queue_ids(&admin, pid, "disagreement", "&label=ne").await.is_empty());
    assert_eq!(queue_ids(&admin, pid, "disagreement", "&label=pos&slice=region:eu&pair=ann,bob").await, [f1]);
    // Counts follow the filters.
    assert_eq!(queues(&admin, pid, "?slice=region:us").await["disagreement"], (1, 0));
    assert_eq!(queues(&admin, pid, "?label=neg").await["disagreement"], (1, 0));
    // Keyset paging.
    let p1: ReviewQueuePage = admin.get(&format!("/api/projects/{pid}/review/queues/disagreement?limit=1")).await;
    assert_eq!((p1.items.len(), p1.next_after, p1.open), (1, Some(f1), 2));
    let p2: ReviewQueuePage = admin.get(&format!("/api/projects/{pid}/review/queues/disagreement?limit=1&after={f1}")).await;
    assert_eq!(p2.items.iter().map(|i| i.item_id).collect::<Vec<_>>(), [f2]);
    // A low consensus posterior puts an item whose labels agree in the queue too.
    server
        .exec_sql(&format!(
            "INSERT INTO consensus (item_id, project_id, labels, posterior, method, n_labels, computed_at)
             VALUES ({f3}, {pid}, '[\"pos\"]', 0.6, 'dawid_skene', 3, 1)"
        ))
        .await;
    assert_eq!(queue_ids(&admin, pid, "disagreement", "").await, [f1, f2, f3]);
    server.exec_sql(&format!("UPDATE projects SET review_threshold = 0.5 WHERE id = {pid}")).await;
    assert_eq!(queue_ids(&admin, pid, "disagreement", "").await, [f1, f2]);

    // Other sources feed queues by numeric or external id; an unknown id adds nothing.
    let path = format!("/api/projects/{pid}/review/queues/label_errors/entries");
    let bad = admin.post_json_raw(&path, &json!({"external_ids": ["f-4", "nope"], "reason": "cleanlab"})).await;
    assert!(bad.assert_error(400, "bad_request").message.contains("\"nope\""));
    let missing = f3 + 1_000_000;
    let body = json!({"item_ids": [f1, missing, f2], "external_ids": ["f-4", "nope", "f-4", "gone"], "reason": "cleanlab"});
    let bad = admin.post_json_raw(&path, &body).await;
    assert_eq!(
        bad.assert_error(400, "bad_request").message,
        format!("3 of the items are not in this project (nothing was added): {missing}, \"nope\", \"gone\"")
    );
    assert!(!queues(&admin, pid, "").await.contains_key("label_errors"));
    admin.post_json_raw(&path, &json!({"item_ids": [f3], "reason": " "})).await.assert_error(400, "bad_request");
    let added: QueueEntriesAdded = admin
        .post(&path, &json!({"external_ids": ["f-4"], "item_ids": [f3], "reason": "cleanlab", "detail": {"score": 0.93}}))
        .await;
    assert_eq!(added, QueueEntriesAdded { added: 2, already_open: 0 });
    let again: QueueEntriesAdded = admin.post(&path, &json!({"item_ids": [f3], "reason": "cleanlab"})).await;
    assert_eq!(again, QueueEntriesAdded { added: 0, already_open: 1 });
    let page: ReviewQueuePage = admin.get(&format!("/api/projects/{pid}/review/queues/label_errors")).await;
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[0].reasons[0].detail, json!({"score": 0.93}));
    let all = queues(&admin, pid, "").await;
    assert_eq!(all.keys().map(String::as_str).collect::<Vec<_>>(), ["audit", "disagreement", "gold_miss", "label_errors"]);
    assert_eq!(all["label_errors"], (2, 0));
    // A decision from any queue takes the item out of all of them.
    decide_raw(&admin, pid, f3, json!({"labels": ["pos"], "queue": "label_errors"})).await.assert_status(201);
    assert_eq!(queues(&admin, pid, "").await["label_errors"], (1, 1));
}
