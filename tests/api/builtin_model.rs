//! The built-in model (issue 10): training as a job on the human final labels, its
//! cross-validated accuracy beside the majority baseline, its pre-labels on the unlabeled items
//! only, the automatic retrain after N new labels, the label-error queue and the uncertainty
//! order of the labeling stream.
//!
//! The data is tiny and separable on purpose: fruit words are `pos`, vehicle words `neg`, so
//! what the model must get right is known without a reference implementation. Gold answers
//! given at import are human final labels; review decisions add more through the API.
use std::time::{Duration, Instant};

use app::api_types::*;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(
    training_scores_unlabeled_items_only_and_measures_itself,
    rights_and_settings_validation,
    retrains_automatically_after_n_new_labels,
    label_error_queue_ranks_a_planted_flip_first,
    label_error_queue_pages_in_rank_order_not_id_order,
    uncertainty_order_hands_out_the_least_certain_item_first,
);

const FRUIT: [&str; 10] = ["apple", "banana", "cherry", "grape", "mango", "peach", "pear", "plum", "melon", "lemon"];
const VEHICLE: [&str; 10] = ["car", "truck", "engine", "wheel", "bus", "tractor", "van", "motor", "brake", "garage"];

/// Three words of one vocabulary, varied by `i`.
fn text(words: &[&str; 10], i: usize) -> String {
    format!("{} {} {}", words[i % 10], words[(i * 3 + 1) % 10], words[(i * 7 + 2) % 10])
}

/// `n` gold items per class (ids `f-i`, `v-i`), the planted flip (`flip`: fruit text, gold
/// `neg`) when asked, then `unlabeled` items per class without gold (`uf-i`, `uv-i`) and any
/// `extra` (id, text) lines last.
fn dataset(n: usize, flip: bool, unlabeled: usize, extra: &[(&str, &str)]) -> String {
    let mut lines = Vec::new();
    for i in 0..n {
        lines.push(json!({"id": format!("f-{i}"), "text": text(&FRUIT, i), "gold": "pos"}));
        lines.push(json!({"id": format!("v-{i}"), "text": text(&VEHICLE, i), "gold": "neg"}));
    }
    if flip {
        lines.push(json!({"id": "flip", "text": "banana mango cherry", "gold": "neg"}));
    }
    for i in 0..unlabeled {
        lines.push(json!({"id": format!("uf-{i}"), "text": text(&FRUIT, i + 3)}));
        lines.push(json!({"id": format!("uv-{i}"), "text": text(&VEHICLE, i + 3)}));
    }
    for (id, t) in extra {
        lines.push(json!({"id": id, "text": t}));
    }
    // A neutral token of its own per item: the import keeps one item per distinct text, and
    // the word combinations repeat.
    lines
        .into_iter()
        .enumerate()
        .map(|(n, mut l)| {
            l["text"] = json!(format!("{} item{n}", l["text"].as_str().unwrap()));
            l.to_string() + "\n"
        })
        .collect()
}

async fn project_with(admin: &Client, body: String) -> i64 {
    let pid = admin.simple_project("model", 1, 600).await.id;
    let lines = body.lines().count() as i64;
    assert_eq!(admin.import(pid, "jsonl", body).await.imported, lines);
    pid
}

async fn put_json<B: serde::Serialize + ?Sized>(client: &Client, path: &str, body: &B) -> RawResponse {
    client.raw(reqwest::Method::PUT, path, Some((serde_json::to_vec(body).unwrap(), "application/json"))).await
}

fn model_url(pid: i64) -> String {
    format!("/api/projects/{pid}/model")
}

/// Waits until a training newer than `after` (a run id) has finished; panics with the job's
/// error if it failed.
async fn wait_for_run(admin: &Client, pid: i64, after: Option<i64>) -> ModelStatus {
    let start = Instant::now();
    loop {
        let s: ModelStatus = admin.get(&model_url(pid)).await;
        if let Some(job) = &s.job {
            assert_ne!(job.state, "failed", "the training failed: {:?}", job.error);
        }
        if s.last_run.as_ref().is_some_and(|r| Some(r.id) != after) && s.job.as_ref().is_some_and(|j| j.state == "done") {
            return s;
        }
        assert!(start.elapsed() < Duration::from_secs(90), "no training finished: {s:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

async fn train_now(admin: &Client, pid: i64) -> ModelStatus {
    let before: ModelStatus = admin.get(&model_url(pid)).await;
    let job: JobInfo = admin.post_json_raw(&format!("{}/train", model_url(pid)), &json!({})).await.assert_status(202).json();
    assert_eq!((job.kind.as_str(), job.progress_total >= 0), ("builtin_model", true));
    assert!(matches!(job.state.as_str(), "queued" | "running" | "done"), "{job:?}");
    wait_for_run(admin, pid, before.last_run.map(|r| r.id)).await
}

async fn builtin_source(admin: &Client, pid: i64) -> PrelabelSource {
    let sources: Vec<PrelabelSource> = admin.get(&format!("/api/projects/{pid}/prelabels/sources")).await;
    let mut builtin: Vec<PrelabelSource> = sources.into_iter().filter(|s| s.kind == PrelabelSourceKind::Builtin).collect();
    assert_eq!(builtin.len(), 1, "one builtin source: {builtin:?}");
    builtin.remove(0)
}

async fn training_scores_unlabeled_items_only_and_measures_itself(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = project_with(&admin, dataset(20, true, 5, &[])).await;
    let s = train_now(&admin, pid).await;
    let run = s.last_run.clone().unwrap();
    assert_eq!((run.n_train, run.folds, run.items_scored), (41, 5, 10));
    assert_eq!(
        run.label_counts,
        vec![
            ModelLabelCount { label: "pos".into(), n: 20 },
            ModelLabelCount { label: "neg".into(), n: 21 },
            ModelLabelCount { label: "other".into(), n: 0 },
        ]
    );
    // Held out, the separable data is learned; the planted flip is the one it must miss.
    let cv = &run.cv_accuracy;
    assert_eq!(cv.n, 41);
    let (v, iv) = (cv.value.unwrap(), cv.interval.unwrap());
    assert!(v >= 38.0 / 41.0 && iv.lower <= v && v <= iv.upper && iv.upper <= 1.0, "{cv:?}");
    assert_eq!(run.baseline_accuracy.n, 41);
    assert!((run.baseline_accuracy.value.unwrap() - 21.0 / 41.0).abs() < 1e-12, "{:?}", run.baseline_accuracy);
    assert!(run.baseline_accuracy.interval.is_some());
    assert_eq!((s.labels_since_last_run, s.settings.clone()), (0, ModelSettings::default()));
    let job = s.job.unwrap();
    assert_eq!((job.progress_done, job.state.as_str()), (job.progress_total, "done"));

    // Pre-labels of the builtin source on the 10 unlabeled items only, version = the run.
    let source = builtin_source(&admin, pid).await;
    assert_eq!((source.name.as_str(), source.version.clone(), source.prelabels), ("mirrorset-builtin", run.id.to_string(), 10));
    assert_eq!(s.source_id, Some(source.id));
    let (user, lab) = server.user(&admin, "lab", Role::Labeler).await;
    admin.add_member(pid, user.id).await;
    // Import order: gold items never come to labelers; the first is uf-0 (fruit), then uv-0.
    for (ext, label) in [("uf-0", "pos"), ("uv-0", "neg")] {
        let next = lab.next(pid).await;
        let item = next.item.unwrap();
        assert_eq!(item.external_id.as_deref(), Some(ext));
        let p = next.prelabel.expect("a builtin pre-label");
        assert_eq!((p.source_kind, p.source_id, p.labels), (PrelabelSourceKind::Builtin, source.id, vec![label.to_string()]));
        assert!(p.score.unwrap() > 0.5 && p.score.unwrap() <= 1.0, "{:?}", p.score);
        lab.submit(pid, item.id, &[label]).await;
    }

    // A second run replaces the first run's pre-labels: still one source, new version. The
    // two items labeled above have k = 1 labels, so consensus makes them final (once the
    // consensus job has run) and they drop out of the scored set.
    let s2 = train_now(&admin, pid).await;
    let run2 = s2.last_run.unwrap();
    assert!(run2.id > run.id);
    let source2 = builtin_source(&admin, pid).await;
    assert_eq!((source2.id, source2.version.clone()), (source.id, run2.id.to_string()));
    assert_eq!(source2.prelabels, run2.items_scored);
    assert_eq!(run2.items_scored + run2.n_train, 51, "every item is either trained on or scored");
}

async fn rights_and_settings_validation(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = project_with(&admin, dataset(2, false, 2, &[])).await;
    let (user, lab) = server.user(&admin, "lab", Role::Labeler).await;
    admin.add_member(pid, user.id).await;
    lab.get_raw(&model_url(pid)).await.assert_error(403, "forbidden");
    put_json(&lab, &format!("{}/settings", model_url(pid)), &json!({"enabled": true}))
        .await
        .assert_error(403, "forbidden");
    lab.post_json_raw(&format!("{}/train", model_url(pid)), &json!({})).await.assert_error(403, "forbidden");

    // Defaults: off, every 200 labels, no uncertainty order; nothing trained; 4 gold labels.
    let s: ModelStatus = admin.get(&model_url(pid)).await;
    let raw: Value = admin.get(&model_url(pid)).await;
    assert_eq!(
        raw,
        json!({"settings": {"enabled": false, "retrain_every": 200, "uncertainty_order": false},
               "last_run": null, "job": null, "labels_since_last_run": 4, "source_id": null})
    );
    assert_eq!(s.settings, ModelSettings::default());

    let settings_url = format!("/api/projects/{pid}/model/settings");
    for bad in [0, -5, 1_000_001] {
        let e = put_json(&admin, &settings_url, &json!({"enabled": true, "retrain_every": bad})).await.assert_error(400, "bad_request");
        assert_eq!(e.message, format!("retrain_every must be between 1 and 1000000, not {bad}"));
    }
    put_json(&admin, &settings_url, &json!({"enabled": "yes"})).await.assert_status(400);
    assert_eq!(admin.get::<ModelStatus>(&model_url(pid)).await.settings, ModelSettings::default(), "nothing saved");
    let good = ModelSettings { enabled: true, retrain_every: 50, uncertainty_order: true };
    let back: ModelSettings = put_json(&admin, &settings_url, &good).await.ok();
    assert_eq!(back, good);
    assert_eq!(admin.get::<ModelStatus>(&model_url(pid)).await.settings, good);

    // 4 human final labels: fewer than the 5 folds need.
    let e = admin.post_json_raw(&format!("{}/train", model_url(pid)), &json!({})).await.assert_error(422, "unprocessable");
    assert!(e.message.contains("at least 5 items with a human final label") && e.message.ends_with("there are 4"), "{}", e.message);

    // A multi-label project: the model cannot learn it, said as 422; switching off is fine.
    let mut multi = new_project("multi", 1, 600);
    multi.kind = LabelKind::Multi;
    let mp = admin.create_project(&multi).await.id;
    let e = put_json(&admin, &format!("/api/projects/{mp}/model/settings"), &json!({"enabled": true}))
        .await
        .assert_error(422, "unprocessable");
    assert_eq!(e.message, "the built-in model classifies single-label projects only");
    put_json(&admin, &format!("/api/projects/{mp}/model/settings"), &json!({"enabled": false}))
        .await
        .assert_status(200);
    admin.post_json_raw(&format!("/api/projects/{mp}/model/train"), &json!({})).await.assert_error(422, "unprocessable");
}

async fn decide(admin: &Client, pid: i64, item: i64, label: &str) {
    admin
        .post_json_raw(&format!("/api/projects/{pid}/review/items/{item}/decision"), &json!({"labels": [label], "queue": "audit"}))
        .await
        .assert_status(201);
}

async fn retrains_automatically_after_n_new_labels(b: Backend) {
    let server = TestServer::start_with_args(b, &["--refresh-interval-secs", "1"]).await;
    let admin = server.admin().await;
    let pid = project_with(&admin, dataset(5, false, 5, &[])).await;
    let put = put_json(&admin, &format!("/api/projects/{pid}/model/settings"), &json!({"enabled": true, "retrain_every": 5}))
        .await;
    put.assert_status(200);
    // 10 gold labels ≥ 5: the runner queues the first training by itself.
    let s = wait_for_run(&admin, pid, None).await;
    let run = s.last_run.unwrap();
    assert_eq!((run.n_train, run.items_scored, s.labels_since_last_run), (10, 10, 0));

    // The items to decide on: the unlabeled ones, found through a labeler's stream (skipped,
    // so the stream moves on without a label).
    let (user, lab) = server.user(&admin, "lab", Role::Labeler).await;
    admin.add_member(pid, user.id).await;
    let mut items = Vec::new();
    for _ in 0..5 {
        let id = lab.next(pid).await.item.unwrap().id;
        lab.skip(pid, id).await;
        items.push(id);
    }
    for &item in &items[..4] {
        decide(&admin, pid, item, "pos").await;
    }
    tokio::time::sleep(Duration::from_millis(3000)).await; // three runner ticks
    let s: ModelStatus = admin.get(&model_url(pid)).await;
    assert_eq!((s.last_run.as_ref().map(|r| r.id), s.labels_since_last_run), (Some(run.id), 4), "4 < 5: no retrain");
    decide(&admin, pid, items[4], "neg").await;
    let s = wait_for_run(&admin, pid, Some(run.id)).await;
    let run2 = s.last_run.unwrap();
    assert_eq!((run2.n_train, run2.items_scored, s.labels_since_last_run), (15, 5, 0));
    assert_eq!(builtin_source(&admin, pid).await.prelabels, 5, "the decided items lost their pre-labels");
}

async fn label_error_queue_ranks_a_planted_flip_first(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = project_with(&admin, dataset(20, true, 2, &[])).await;
    let run = train_now(&admin, pid).await.last_run.unwrap();
    assert!(run.flagged >= 1, "{run:?}");
    let page: ReviewQueuePage = admin.get(&format!("/api/projects/{pid}/review/queues/label_error?limit=100")).await;
    assert_eq!(page.open, run.flagged);
    let ranked = |item: &ReviewQueueItem| item.reasons[0].detail["rank"].as_i64().unwrap();
    // The page lists the queue most likely first: the flip heads it.
    let ranks: Vec<i64> = page.items.iter().map(ranked).collect();
    assert_eq!(ranks, (1..=ranks.len() as i64).collect::<Vec<_>>());
    let first = &page.items[0];
    assert_eq!(first.external_id.as_deref(), Some("flip"));
    let reason = &first.reasons[0];
    assert_eq!((reason.queue.as_str(), reason.reason.as_str()), ("label_error", "likely_mislabeled"));
    assert_eq!((reason.detail["given"].as_str(), reason.detail["suggested"].as_str(), ranked(first)), (Some("neg"), Some("pos"), 1));
    let p = reason.detail["probability"].as_f64().unwrap();
    assert!(p > 0.5 && p <= 1.0, "{p}");
    assert!(reason.detail["given_probability"].as_f64().unwrap() < 0.5);

    // Retraining replaces the open entries (one entry per item, not one per run).
    let run2 = train_now(&admin, pid).await.last_run.unwrap();
    let page: ReviewQueuePage = admin.get(&format!("/api/projects/{pid}/review/queues/label_error?limit=100")).await;
    assert_eq!(page.open, run2.flagged);
    assert_eq!(page.items.iter().filter(|i| i.external_id.as_deref() == Some("flip")).count(), 1);
}

/// The queue's page and the paging the review page's worklist follows (`next_after` as
/// `after`) list the items by rank, whatever their ids; entries fed without a usable rank come
/// last, by item id. Ranks are planted through the queue's feed so that rank order reverses
/// import order.
async fn label_error_queue_pages_in_rank_order_not_id_order(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = project_with(&admin, dataset(3, false, 0, &[])).await; // f-0 v-0 f-1 v-1 f-2 v-2, in id order
    let feed = |ext: &str, detail: Value| {
        let body = NewQueueEntries { item_ids: vec![], external_ids: vec![ext.into()], reason: "likely_mislabeled".into(), detail };
        let path = format!("/api/projects/{pid}/review/queues/label_error/entries");
        let admin = &admin;
        async move {
            let added: QueueEntriesAdded = admin.post(&path, &body).await;
            assert_eq!(added.added, 1);
        }
    };
    feed("v-2", json!({"rank": 1})).await;
    feed("f-1", json!({"rank": 2})).await;
    feed("v-0", json!({"rank": 3})).await;
    feed("f-0", json!({"rank": 10})).await;
    feed("f-2", json!({"note": "no rank"})).await;
    feed("v-1", json!({"rank": "high"})).await; // not a rank: unranked, not an error
    let expected = ["v-2", "f-1", "v-0", "f-0", "v-1", "f-2"];

    let one_page: ReviewQueuePage = admin.get(&format!("/api/projects/{pid}/review/queues/label_error?limit=100")).await;
    let ext = |p: &ReviewQueuePage| p.items.iter().map(|i| i.external_id.clone().unwrap()).collect::<Vec<_>>();
    assert_eq!((ext(&one_page), one_page.open, one_page.next_after), (expected.map(String::from).to_vec(), 6, None));

    // Two at a time, as the worklist fetches: the same order, each page's cursor from the last.
    let mut walked = Vec::new();
    let mut after = 0;
    for expected_page in expected.chunks(2) {
        let page: ReviewQueuePage =
            admin.get(&format!("/api/projects/{pid}/review/queues/label_error?limit=2&after={after}")).await;
        assert_eq!(ext(&page), expected_page.iter().map(|s| s.to_string()).collect::<Vec<_>>(), "after {after}");
        assert_eq!(page.open, 6);
        walked.extend(ext(&page));
        after = page.next_after.expect("a full page has a next one");
    }
    let last: ReviewQueuePage = admin.get(&format!("/api/projects/{pid}/review/queues/label_error?limit=2&after={after}")).await;
    assert_eq!((last.items.len(), last.next_after), (0, None));
    assert_eq!(walked, expected);

    // Other queues keep item id order (a custom queue fed in the same reversed order).
    for ext_id in ["v-2", "f-0"] {
        let body = NewQueueEntries { item_ids: vec![], external_ids: vec![ext_id.into()], reason: "x".into(), detail: json!({"rank": 1}) };
        let _: QueueEntriesAdded = admin.post(&format!("/api/projects/{pid}/review/queues/mine/entries"), &body).await;
    }
    let mine: ReviewQueuePage = admin.get(&format!("/api/projects/{pid}/review/queues/mine")).await;
    assert_eq!(ext(&mine), ["f-0", "v-2"]);
}

async fn uncertainty_order_hands_out_the_least_certain_item_first(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    // Clear items first in import order, the ambiguous one (a fruit and a vehicle) last.
    let pid = project_with(&admin, dataset(10, false, 3, &[("mixed", "apple car")])).await;
    put_json(&admin, &format!("/api/projects/{pid}/model/settings"), &json!({"enabled": false, "uncertainty_order": true}))
        .await
        .assert_status(200);
    train_now(&admin, pid).await;
    let (user, lab) = server.user(&admin, "lab", Role::Labeler).await;
    admin.add_member(pid, user.id).await;
    let next = lab.next(pid).await;
    assert_eq!(next.item.unwrap().external_id.as_deref(), Some("mixed"));

    // Off again: import order at once, without retraining.
    put_json(&admin, &format!("/api/projects/{pid}/model/settings"), &json!({"enabled": false, "uncertainty_order": false}))
        .await
        .assert_status(200);
    let (user2, lab2) = server.user(&admin, "lab2", Role::Labeler).await;
    admin.add_member(pid, user2.id).await;
    assert_eq!(lab2.next(pid).await.item.unwrap().external_id.as_deref(), Some("uf-0"));
}
