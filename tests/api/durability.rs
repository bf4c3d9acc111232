//! A crash (SIGKILL) in the middle of labeling loses no acknowledged submission.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::api_types::*;

use crate::common::*;

both_backends!(kill_mid_work_loses_no_acknowledged_submission);

/// One submission the server answered 200 to.
#[derive(Debug, Clone)]
struct Acked {
    item_id: i64,
    annotation_id: i64,
    label: String,
    client_id: String,
}

async fn kill_mid_work_loses_no_acknowledged_submission(b: Backend) {
    const LABELERS: usize = 4;
    const ITEMS: usize = 300;
    let mut server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("crash", 1, 600).await.id;
    admin.import_texts(pid, "crash", ITEMS).await;
    let mut clients = Vec::new();
    for i in 0..LABELERS {
        let (u, c) = server.user(&admin, &format!("crasher{i}"), Role::Labeler).await;
        admin.add_member(pid, u.id).await;
        clients.push((u, Arc::new(c)));
    }

    // Labelers work until the server dies under them.
    let acked_total = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    // A JoinSet aborts the other labelers as soon as one fails (no cascade of errors).
    let mut tasks = tokio::task::JoinSet::new();
    for (user, client) in clients.iter().cloned() {
        let acked_total = acked_total.clone();
        let finished = finished.clone();
        tasks.spawn(async move {
            let mut acked: Vec<Acked> = Vec::new();
            let mut in_flight: Option<(i64, String, String)> = None;
            let deadline = Instant::now() + Duration::from_secs(120);
            loop {
                if Instant::now() > deadline {
                    break;
                }
                let next = match client
                    .send(reqwest::Method::POST, &format!("/api/projects/{pid}/next"), Some((b"{}".to_vec(), "application/json")))
                    .await
                {
                    Ok(r) if r.status.is_success() => r.json::<NextItem>(),
                    _ => break, // the server is gone (or answered an error after the kill)
                };
                let Some(item) = next.item else { break };
                let label = ["pos", "neg", "other"][(item.id % 3) as usize].to_string();
                let cid = client_id();
                in_flight = Some((item.id, label.clone(), cid.clone()));
                let body = serde_json::to_vec(&SubmitAnnotation {
                    item_id: item.id,
                    labels: vec![label.clone()],
                    time_ms: 500,
                    client_id: cid.clone(),
                })
                .unwrap();
                match client
                    .send(reqwest::Method::POST, &format!("/api/projects/{pid}/annotations"), Some((body, "application/json")))
                    .await
                {
                    Ok(r) if r.status.is_success() => {
                        let ann: Annotation = r.json();
                        assert_eq!((ann.item_id, ann.user_id), (item.id, user.id));
                        acked.push(Acked { item_id: item.id, annotation_id: ann.id, label, client_id: cid });
                        in_flight = None;
                        acked_total.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) if r.status.is_server_error() => break,
                    Ok(r) => panic!("submit refused: {} {}", r.status, r.text()),
                    Err(_) => break,
                }
            }
            finished.fetch_add(1, Ordering::SeqCst);
            (user.username.clone(), acked, in_flight)
        });
    }

    // Kill the server while they are busy.
    let wait_until = Instant::now() + Duration::from_secs(120);
    while acked_total.load(Ordering::SeqCst) < 40 {
        assert!(Instant::now() < wait_until, "the labelers made no progress");
        assert!(finished.load(Ordering::SeqCst) < LABELERS, "the labelers stopped before the kill");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.kill();
    let mut acked_by: BTreeMap<String, Vec<Acked>> = BTreeMap::new();
    let mut in_flight_by = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let (name, acked, in_flight) = done.expect("labeler task");
        acked_by.insert(name.clone(), acked);
        if let Some(f) = in_flight {
            in_flight_by.insert(name, f);
        }
    }
    let total: usize = acked_by.values().map(Vec::len).sum();
    assert!(total >= 40, "{total} acknowledged before the kill");
    eprintln!("killed with {total} submissions acknowledged and {} in flight", in_flight_by.len());

    server.crash_restart().await;
    let admin = server.admin().await;

    // Every acknowledged submission is there, with its labels.
    let lines = admin.export_jsonl(pid, false).await;
    let mut stored: BTreeMap<(String, i64), Vec<String>> = BTreeMap::new();
    for line in &lines {
        let item_id = line["item_id"].as_i64().unwrap();
        for a in line["annotations"].as_array().unwrap() {
            let labels: Vec<String> = serde_json::from_value(a["labels"].clone()).unwrap();
            let key = (a["labeler"].as_str().unwrap().to_string(), item_id);
            assert!(stored.insert(key.clone(), labels).is_none(), "two annotations for {key:?}");
        }
    }
    let mut missing = Vec::new();
    for (name, acked) in &acked_by {
        for a in acked {
            match stored.get(&(name.clone(), a.item_id)) {
                Some(labels) => assert_eq!(labels, &vec![a.label.clone()], "{name}'s labels on {}", a.item_id),
                None => missing.push((name.clone(), a.clone())),
            }
        }
    }
    assert!(missing.is_empty(), "acknowledged submissions lost in the crash: {missing:?}");
    // At most the in-flight submissions (one per labeler) may exist beyond the acknowledged ones.
    assert!(
        stored.len() >= total && stored.len() <= total + in_flight_by.len(),
        "stored {} annotations for {total} acknowledged (+{} in flight)",
        stored.len(),
        in_flight_by.len()
    );

    // The labelers' sessions survived; retrying the in-flight submissions is safe, and
    // acknowledged ones keep their ids when retried.
    for (user, client) in &clients {
        client.me().await;
        if let Some((item_id, label, cid)) = in_flight_by.get(&user.username) {
            // Whether or not the first attempt committed before the kill, the retry answers 200
            // with the annotation: the stored one (same client id: the first result is
            // returned), or a new one (the labeler still holds the item's lease, so it has room).
            let ann: Annotation = client.submit_raw(pid, *item_id, &[label.as_str()], cid).await.ok();
            assert_eq!((ann.item_id, ann.user_id, ann.labels.clone()), (*item_id, user.id, vec![label.clone()]));
            let again: Annotation = client.submit_raw(pid, *item_id, &[label.as_str()], cid).await.ok();
            assert_eq!(again.id, ann.id, "a second retry returns the same annotation");
        }
        if let Some(a) = acked_by[&user.username].last() {
            let again: Annotation = client.submit_raw(pid, a.item_id, &[a.label.as_str()], &a.client_id).await.ok();
            assert_eq!(again.id, a.annotation_id, "a retried acknowledged submission returns the stored one");
        }
    }
    let mut seen_items = BTreeSet::new();
    for line in admin.export_jsonl(pid, false).await {
        let n = line["annotations"].as_array().unwrap().len();
        assert!(n <= 1, "overlap 1, yet {n} annotations: {line}");
        if n == 1 {
            seen_items.insert(line["item_id"].as_i64().unwrap());
        }
    }
    // Every acknowledged submission and every retried in-flight one, once each.
    assert_eq!(seen_items.len(), total + in_flight_by.len());

    // Work goes on after the crash.
    let (_, c) = &clients[0];
    let id = c.next_id(pid).await.expect("items remain");
    c.submit(pid, id, &["pos"]).await;
}

/// SQLite: another process that opens the database and closes it while the server runs (the
/// `mirrorset` CLI, a `sqlite3` shell, this test) costs no answer. The server's syncing thread
/// syncs the database file (`store::checkpoint`); had it opened and closed a descriptor of the
/// file itself, the server would have lost its POSIX locks on it, and the other process, taking
/// itself for the last connection, would have deleted the WAL as it closed: the answers after
/// that would be in no file after a crash (and a restart would find a database without them).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn another_process_closing_the_database_costs_no_answer_on_sqlite() {
    let mut server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("shared file", 1, 600).await.id;
    admin.import_texts(pid, "shared", 6).await;
    admin.add_member(pid, admin.me().await.user.id).await;
    // The syncing thread has synced the database file at least once (it had the migrations'
    // and the import's pages copied into it by then).
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let metrics = admin.get_raw("/metrics").await.text();
        let synced = metrics.lines().find_map(|l| l.strip_prefix("mirrorset_sqlite_database_syncs_total "));
        if synced.is_some_and(|n| n != "0") {
            break;
        }
        assert!(Instant::now() < deadline, "no sync of the database file within 10 s: {metrics}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let mut answered = BTreeSet::new();
    for round in 0..2 {
        for _ in 0..3 {
            let item = admin.next(pid).await.item.expect("an item").id;
            admin.submit(pid, item, &["pos"]).await;
            answered.insert(item);
        }
        if round == 0 {
            // Another process opens the database, reads, and closes it.
            server.exec_sql("SELECT COUNT(*) FROM annotations").await;
        }
    }
    // A crash, then a start: every answer is in the database.
    server.kill();
    server.start_again().await;
    let admin = server.admin().await;
    let exported: BTreeSet<i64> = admin
        .export_jsonl(pid, false)
        .await
        .iter()
        .filter(|line| line["annotations"].as_array().is_some_and(|a| !a.is_empty()))
        .map(|line| line["item_id"].as_i64().expect("an item id"))
        .collect();
    assert_eq!(exported, answered, "the items answered, and only those, have their answers after the crash");
}
