//! Gold items: the `gold` field at import, their share of each labeler's stream, that they
//! never count towards k, and training mode's right answer after a miss.
use std::collections::BTreeSet;

use app::api_types::*;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(
    gold_import_errors_are_pinned,
    gold_is_mixed_in_at_the_rate_and_never_counts_towards_k,
    every_labeler_gets_every_gold_item,
    training_mode_answers_only_after_a_miss,
    gold_items_are_counted_apart_so_a_project_can_be_complete,
);

async fn set(admin: &Client, pid: i64, settings: Value) {
    admin.patch_json_raw(&format!("/api/projects/{pid}"), &settings).await.assert_status(200);
}

/// Sets the project's gold rate and training mode (the quality settings go as one object).
async fn set_gold(admin: &Client, pid: i64, rate: f64, training: bool) {
    let mut quality = admin.project(pid).await.quality;
    quality.gold_rate = rate;
    quality.gold_training = training;
    set(admin, pid, json!({ "quality": quality })).await;
}

async fn labeler(server: &TestServer, admin: &Client, pid: i64, name: &str) -> Client {
    let (u, c) = server.user(admin, name, Role::Labeler).await;
    admin.add_member(pid, u.id).await;
    c
}

fn line_error(line: i64, reason: &str) -> LineError {
    LineError { line, field: "gold".into(), reason: reason.into() }
}

/// A bad gold answer is a bad line like any other: the whole import is refused with the
/// line, the field and why, and nothing is stored. JSONL takes a label name or an array of
/// them; CSV a `gold` column with labels joined by `|`.
async fn gold_import_errors_are_pinned(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("gold import", 1, 600).await.id;

    let body = jsonl(&[
        json!({"text": "fine", "gold": "pos"}),
        json!({"text": "b", "gold": "maybe"}),
        json!({"text": "c", "gold": ["pos", "neg"]}),
        json!({"text": "d", "gold": []}),
        json!({"text": "e", "gold": 7}),
        json!({"text": "f", "gold": ["pos", "pos"]}),
        json!({"text": "g", "gold": ["pos", 1]}),
        json!({"text": "also fine", "gold": ["neg"]}),
        json!({"text": "no gold", "gold": null}),
    ]);
    let e = admin.import_raw(pid, "jsonl", body.into_bytes()).await.assert_error(422, "invalid_import");
    let report: ImportReport = serde_json::from_value(e.details).unwrap();
    assert_eq!(
        report.errors,
        vec![
            line_error(2, "unknown label \"maybe\" (this project's labels: pos, neg, other)"),
            line_error(3, "names 2 labels, but this project takes exactly one label per item"),
            line_error(4, "names no label: give a label name, or leave gold out"),
            line_error(5, "must be a label name or an array of label names"),
            line_error(6, "the label \"pos\" is given twice"),
            line_error(7, "must be a label name or an array of label names"),
        ]
    );
    assert_eq!((report.error_count, report.imported), (6, 0));

    let csv = "text,gold,region\nx,neg|pos,eu\ny,nope,us\nz,,eu\nw,other,us\n";
    let e = admin.import_raw(pid, "csv", csv.as_bytes().to_vec()).await.assert_error(422, "invalid_import");
    let report: ImportReport = serde_json::from_value(e.details).unwrap();
    assert_eq!(
        report.errors,
        vec![
            line_error(2, "names 2 labels, but this project takes exactly one label per item"),
            line_error(3, "unknown label \"nope\" (this project's labels: pos, neg, other)"),
        ]
    );
    assert_eq!(admin.summary(pid).await.item_count, 0, "nothing was imported");

    // The good lines alone go in; gold is not a slice attribute.
    let ok = admin.import(pid, "csv", "text,gold,region\nz,,eu\nw,other,us\n").await;
    assert_eq!((ok.imported, ok.error_count), (2, 0));
    let lines = admin.export_jsonl(pid, false).await;
    assert_eq!(lines[1]["meta"], json!({"region": "us"}));

    // Multi-label: several labels, in any order.
    let mut multi = new_project("gold multi", 1, 600);
    multi.kind = LabelKind::Multi;
    let mid = admin.create_project(&multi).await.id;
    let ok = admin.import(mid, "jsonl", jsonl(&[json!({"text": "m", "gold": ["other", "pos"]})])).await;
    assert_eq!(ok.imported, 1);
    // A label a gold answer uses cannot be removed.
    let e = admin
        .patch_json_raw(&format!("/api/projects/{mid}"), &json!({"labels": [label("pos", "p", "#22aa22"), label("neg", "n", "#aa2222")]}))
        .await
        .assert_error(409, "conflict");
    assert_eq!(e.message, "the label \"other\" is used by annotations or gold answers and cannot be removed");
}

/// 2,000 hand-outs to one labeler from a pool of ordinary and gold items, at gold_rate 0.1:
/// the number of gold items is within four standard deviations of the binomial mean (fixed
/// seed: the draws depend only on project, labeler and sequence, so this is reproducible), no
/// gold item comes twice, a gold item looks like any other on the wire, gold answers never
/// count towards k or the done count, and gold_rate 0 turns gold off.
async fn gold_is_mixed_in_at_the_rate_and_never_counts_towards_k(b: Backend) {
    const HAND_OUTS: usize = 2_000;
    const RATE: f64 = 0.1;
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("gold rate", 1, 600).await.id;
    // The harness's projects hand items out in import order.
    set_gold(&admin, pid, RATE, false).await;
    // Gold lines spread through the file: in import order the stream would meet them at once
    // if gold items were handed out like ordinary ones.
    let lines: Vec<Value> = (0..2_400)
        .map(|i| {
            if i % 8 == 0 {
                json!({"id": format!("g-{i}"), "text": format!("gold item {i}"), "gold": "pos"})
            } else {
                json!({"id": format!("o-{i}"), "text": format!("ordinary item {i}")})
            }
        })
        .collect();
    let report = admin.import(pid, "jsonl", jsonl(&lines)).await;
    assert_eq!(report.imported, 2_400);
    let gold_total: i64 = 300;

    let a = labeler(&server, &admin, pid, "gold-a").await;
    let mut gold_seen: Vec<String> = Vec::new();
    let mut ordinary = 0i64;
    let keys_of = |raw: &RawResponse| -> BTreeSet<String> {
        raw.json::<Value>()["item"].as_object().unwrap().keys().cloned().collect()
    };
    let mut shapes: BTreeSet<BTreeSet<String>> = BTreeSet::new();
    for n in 0..HAND_OUTS {
        let raw = a.next_raw(pid, &[]).await;
        raw.assert_status(200);
        shapes.insert(keys_of(&raw));
        let item = raw.json::<NextItem>().item.unwrap_or_else(|| panic!("hand-out {n}: nothing left"));
        let ext = item.external_id.clone().unwrap();
        if ext.starts_with("g-") {
            gold_seen.push(ext);
        } else {
            ordinary += 1;
        }
        a.submit(pid, item.id, &["neg"]).await;
    }
    let g = gold_seen.len() as f64;
    let (mean, sd) = (HAND_OUTS as f64 * RATE, (HAND_OUTS as f64 * RATE * (1.0 - RATE)).sqrt());
    assert!((g - mean).abs() <= 4.0 * sd, "{g} gold items in {HAND_OUTS} hand-outs; expected {mean} ± {:.0}", 4.0 * sd);
    assert!((gold_seen.len() as i64) < gold_total, "the gold items did not run out: {}", gold_seen.len());
    let distinct: BTreeSet<&String> = gold_seen.iter().collect();
    assert_eq!(distinct.len(), gold_seen.len(), "a gold item came twice");
    assert_eq!(shapes.len(), 1, "gold and ordinary items look alike on the wire: {shapes:?}");

    // Gold answers are not counted: done is the ordinary items labeled, the total leaves gold out.
    let progress = a.progress(pid).await;
    assert_eq!((progress.mine_total, progress.done, progress.total), (HAND_OUTS as i64, ordinary, 2_400 - gold_total));
    assert_eq!(admin.summary(pid).await.done_count, ordinary);
    let complete = admin.export_jsonl(pid, true).await;
    assert!(complete.iter().all(|l| l["id"].as_str().unwrap().starts_with("o-")), "no gold item is complete");


    // gold_rate 0: no gold at all.
    set_gold(&admin, pid, 0.0, false).await;
    let c = labeler(&server, &admin, pid, "gold-c").await;
    for _ in 0..100 {
        let item = c.next(pid).await.item.unwrap();
        assert!(item.external_id.as_deref().unwrap().starts_with("o-"), "{item:?}");
        c.submit(pid, item.id, &["pos"]).await;
    }
}

/// Gold items stand outside overlap k: two labelers of a project of overlap 1, taking turns,
/// each answer every one of the ten gold items (no 409), while each ordinary item is labeled
/// once; both answers are kept and none counts towards done.
async fn every_labeler_gets_every_gold_item(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("gold for all", 1, 600).await.id;
    set_gold(&admin, pid, 0.5, false).await;
    let lines: Vec<Value> = (0..10)
        .map(|i| json!({"id": format!("g-{i}"), "text": format!("gold {i}"), "gold": "pos"}))
        .chain((0..200).map(|i| json!({"id": format!("o-{i}"), "text": format!("ordinary {i}")})))
        .collect();
    admin.import(pid, "jsonl", jsonl(&lines)).await;
    let ls = [labeler(&server, &admin, pid, "all-a").await, labeler(&server, &admin, pid, "all-b").await];
    let mut gold: [BTreeSet<String>; 2] = Default::default();
    let mut ordinary: [BTreeSet<String>; 2] = Default::default();
    for round in 0..100 {
        for (i, l) in ls.iter().enumerate() {
            let item = l.next(pid).await.item.unwrap_or_else(|| panic!("round {round}: nothing left"));
            let ext = item.external_id.clone().unwrap();
            l.submit(pid, item.id, &["neg"]).await;
            let fresh = if ext.starts_with("g-") { gold[i].insert(ext) } else { ordinary[i].insert(ext) };
            assert!(fresh, "labeler {i} got an item twice");
        }
        if gold.iter().all(|g| g.len() == 10) {
            break;
        }
    }
    assert_eq!(gold[0].len(), 10, "{gold:?}");
    assert_eq!(gold[0], gold[1]);
    assert!(ordinary[0].is_disjoint(&ordinary[1]), "overlap 1 still holds for ordinary items");
    let done = (ordinary[0].len() + ordinary[1].len()) as i64;
    assert_eq!(admin.summary(pid).await.done_count, done);
    for line in admin.export_jsonl(pid, false).await {
        let n = line["annotations"].as_array().unwrap().len();
        if line["id"].as_str().unwrap().starts_with("g-") {
            assert_eq!(n, 2, "both answers kept, beyond k = 1: {line}");
        } else {
            assert!(n <= 1, "{line}");
        }
    }
}

/// Training mode (`gold_training`): the answer to a submission that missed a gold item holds
/// the right labels; a hit, an ordinary item or training off hold none (no `gold_answer` key
/// at all). A changed answer on a gold item is checked again; a retry gets the same answer.
async fn training_mode_answers_only_after_a_miss(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("training", 1, 600).await.id;
    set_gold(&admin, pid, 0.5, false).await;
    let lines: Vec<Value> = (0..4)
        .map(|i| json!({"id": format!("g-{i}"), "text": format!("gold {i}"), "gold": "pos"}))
        .chain((0..20).map(|i| json!({"id": format!("o-{i}"), "text": format!("ordinary {i}")})))
        .collect();
    admin.import(pid, "jsonl", jsonl(&lines)).await;
    let l = labeler(&server, &admin, pid, "trainee").await;
    let gold_answer = |raw: &RawResponse| raw.json::<Value>().get("gold_answer").cloned();
    // The next gold item; the ordinary items on the way are answered `other`, which tells
    // nothing back.
    let next_gold = || async {
        loop {
            let item = l.next(pid).await.item.expect("items are left");
            if item.external_id.as_deref().unwrap().starts_with("g-") {
                return item;
            }
            let r = l.submit_raw(pid, item.id, &["other"], &client_id()).await;
            r.assert_status(200);
            assert_eq!(gold_answer(&r), None, "an ordinary item");
        }
    };

    let g1 = next_gold().await;
    let r = l.submit_raw(pid, g1.id, &["neg"], &client_id()).await;
    r.assert_status(200);
    assert_eq!(gold_answer(&r), None, "training is off");

    set_gold(&admin, pid, 0.5, true).await;
    let g2 = next_gold().await;
    let r = l.submit_raw(pid, g2.id, &["pos"], &client_id()).await;
    assert_eq!(gold_answer(&r), None, "a hit");

    let g3 = next_gold().await;
    let cid = client_id();
    let r = l.submit_raw(pid, g3.id, &["other"], &cid).await;
    assert_eq!(gold_answer(&r), Some(json!(["pos"])), "a miss in training mode");
    let again = l.submit_raw(pid, g3.id, &["other"], &cid).await;
    assert_eq!(again.json::<Value>(), r.json::<Value>(), "a retry gets the same answer");

    // Changing an earlier answer: checked again.
    let r = l.submit_raw(pid, g2.id, &["neg"], &client_id()).await;
    assert_eq!(gold_answer(&r), Some(json!(["pos"])), "changed to a miss");
    let r = l.submit_raw(pid, g1.id, &["pos"], &client_id()).await;
    assert_eq!(gold_answer(&r), None, "changed to a hit");

    // The last gold item, then only ordinary items: gold never blocks the stream.
    let g4 = next_gold().await;
    l.submit(pid, g4.id, &["pos"]).await;
    while let Some(o) = l.next(pid).await.item {
        assert!(o.external_id.as_deref().unwrap().starts_with("o-"), "every gold item was answered: {o:?}");
        l.submit(pid, o.id, &["pos"]).await;
    }
    let p = l.progress(pid).await;
    assert_eq!((p.mine_total, p.done, p.total), (24, 20, 20), "gold answers count for nothing");
}

/// The project list's numbers leave gold items out of the items to do: with its regular items
/// all labeled, a project with gold reads done/total = 100% (session 3's summary counted gold in
/// `item_count`, so it never could), and `gold_count` says how many gold items there are. An
/// item done before a lead marks it gold moves from the regular counts to the gold count, in
/// the summary and in the labeler's progress alike.
async fn gold_items_are_counted_apart_so_a_project_can_be_complete(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("gold apart", 1, 600).await.id;
    set_gold(&admin, pid, 0.5, false).await;
    let lines: Vec<Value> = (0..3)
        .map(|i| json!({"id": format!("g-{i}"), "text": format!("gold {i}"), "gold": "pos"}))
        .chain((0..5).map(|i| json!({"id": format!("o-{i}"), "text": format!("ordinary {i}")})))
        .collect();
    admin.import(pid, "jsonl", jsonl(&lines)).await;
    let counts = |s: ProjectSummary| (s.item_count, s.done_count, s.gold_count);
    assert_eq!(counts(admin.summary(pid).await), (5, 0, 3));

    let a = labeler(&server, &admin, pid, "apart-a").await;
    let (mut ordinary, mut gold) = (Vec::new(), 0);
    while let Some(item) = a.next(pid).await.item {
        if item.external_id.as_deref().unwrap().starts_with("o-") {
            ordinary.push(item.id);
        } else {
            gold += 1;
        }
        a.submit(pid, item.id, &["neg"]).await;
    }
    assert_eq!(ordinary.len(), 5);
    assert_eq!(counts(admin.summary(pid).await), (5, 5, 3), "every regular item is done: complete");
    let p = a.progress(pid).await;
    assert_eq!((p.mine_total, p.done, p.total), (5 + gold, 5, 5));

    // A done item marked gold leaves the regular counts (it stays complete in the table).
    let body = serde_json::to_vec(&json!({ "labels": ["neg"] })).unwrap();
    admin
        .raw(reqwest::Method::PUT, &format!("/api/projects/{pid}/items/{}/gold", ordinary[0]), Some((body, "application/json")))
        .await
        .assert_status(200);
    assert_eq!(counts(admin.summary(pid).await), (4, 4, 4));
    let p = a.progress(pid).await;
    assert_eq!((p.done, p.total), (4, 4));
}
