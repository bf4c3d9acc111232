//! Faults with several instances (issue 11): two `mirrorset serve` processes on one PostgreSQL
//! database, 50 labelers spread over both, one instance killed (SIGKILL) halfway. Every
//! acknowledged submission must be in the export, no item may get more than k labels, and the
//! surviving instance must serve the rest (the killed instance's labelers move to it, as behind
//! a load balancer). (A SIGKILL during a large import, on both backends, is
//! `import_shutdown::sigkill_mid_import_is_all_or_nothing`.)
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::api_types::*;

use crate::common::*;

const LABELERS: usize = 50;
const ITEMS: usize = 300;
const OVERLAP: i64 = 2;

/// One submission an instance answered 200 to.
#[derive(Debug, Clone)]
struct Acked {
    item_id: i64,
    label: String,
}

/// What a labeler saw: its acknowledged submissions, and whether it had a submission in flight
/// when its instance died (it may or may not have been committed).
struct Outcome {
    name: String,
    acked: Vec<Acked>,
    lost_in_flight: usize,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_postgres_instances_one_killed_mid_labeling() {
    let mut first = TestServer::start(Backend::Postgres).await;
    let second = first.another_instance().await;
    let admin = first.admin().await;
    let pid = admin.simple_project("two instances", OVERLAP, 600).await.id;
    admin.import_texts(pid, "twin", ITEMS).await;

    // Labeler i signs in on instance i mod 2; the second instance's client is its fallback.
    let mut labelers = Vec::new();
    for i in 0..LABELERS {
        let name = format!("twin{i:02}");
        let (user, on_first) = first.user(&admin, &name, Role::Labeler).await;
        admin.add_member(pid, user.id).await;
        let on_second = second.client();
        on_second.login(&name, &password_for(&name)).await;
        labelers.push((name, i % 2 == 0, on_first, on_second));
    }

    let killed = Arc::new(AtomicBool::new(false));
    let acked_total = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for (name, starts_on_first, on_first, on_second) in labelers {
        let (killed, acked_total) = (killed.clone(), acked_total.clone());
        tasks.spawn(async move {
            let mut out = Outcome { name: name.clone(), acked: Vec::new(), lost_in_flight: 0 };
            let mut on_first_now = starts_on_first;
            let deadline = Instant::now() + Duration::from_secs(240);
            loop {
                assert!(Instant::now() < deadline, "{name}: still labeling after 240 s");
                let client = if on_first_now { &on_first } else { &on_second };
                // A failure is allowed only from the killed instance once it was killed: the
                // labeler then moves to the survivor. Anything else fails the test.
                let fail_over = |what: &str, detail: String| {
                    assert!(on_first_now && killed.load(Ordering::SeqCst), "{name}: {what} failed: {detail}");
                };
                let next = match client
                    .send(reqwest::Method::POST, &format!("/api/projects/{pid}/next"), Some((b"{}".to_vec(), "application/json")))
                    .await
                {
                    Ok(r) if r.status.is_success() => r.json::<NextItem>(),
                    Ok(r) => {
                        fail_over("next", format!("{} {}", r.status, r.text()));
                        on_first_now = false;
                        continue;
                    }
                    Err(e) => {
                        fail_over("next", e.to_string());
                        on_first_now = false;
                        continue;
                    }
                };
                let Some(item) = next.item else { break };
                let label = ["pos", "neg", "other"][(item.id % 3) as usize].to_string();
                let body = serde_json::to_vec(&SubmitAnnotation {
                    item_id: item.id,
                    labels: vec![label.clone()],
                    time_ms: 500,
                    client_id: client_id(),
                })
                .unwrap();
                match client
                    .send(reqwest::Method::POST, &format!("/api/projects/{pid}/annotations"), Some((body, "application/json")))
                    .await
                {
                    Ok(r) if r.status.is_success() => {
                        let ann: Annotation = r.json();
                        assert_eq!(ann.item_id, item.id);
                        out.acked.push(Acked { item_id: item.id, label });
                        acked_total.fetch_add(1, Ordering::SeqCst);
                    }
                    Ok(r) if !r.status.is_server_error() => panic!("{name}: submit refused: {} {}", r.status, r.text()),
                    Ok(r) => {
                        fail_over("submit", format!("{} {}", r.status, r.text()));
                        out.lost_in_flight += 1;
                        on_first_now = false;
                    }
                    Err(e) => {
                        fail_over("submit", e.to_string());
                        out.lost_in_flight += 1;
                        on_first_now = false;
                    }
                }
            }
            out
        });
    }

    // Kill the first instance halfway through the work.
    let half = ITEMS * OVERLAP as usize / 2;
    let wait_until = Instant::now() + Duration::from_secs(180);
    while acked_total.load(Ordering::SeqCst) < half {
        assert!(Instant::now() < wait_until, "the labelers made no progress");
        assert!(!tasks.is_empty(), "the labelers stopped before the kill");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    killed.store(true, Ordering::SeqCst);
    first.kill();
    let acked_at_kill = acked_total.load(Ordering::SeqCst);

    let mut outcomes = Vec::new();
    while let Some(done) = tasks.join_next().await {
        outcomes.push(done.expect("labeler task"));
    }

    // The survivor's export: every acknowledged submission, no item over k, and all the work
    // done (the killed instance's labelers finished on the survivor).
    let admin = second.admin().await;
    let mut stored: BTreeMap<(String, i64), Vec<String>> = BTreeMap::new();
    let mut over_k = Vec::new();
    let lines = admin.export_jsonl(pid, false).await;
    assert_eq!(lines.len(), ITEMS);
    for line in &lines {
        let item_id = line["item_id"].as_i64().unwrap();
        let annotations = line["annotations"].as_array().unwrap();
        if annotations.len() as i64 > OVERLAP {
            over_k.push((item_id, annotations.len()));
        }
        for a in annotations {
            let key = (a["labeler"].as_str().unwrap().to_string(), item_id);
            let labels: Vec<String> = serde_json::from_value(a["labels"].clone()).unwrap();
            assert!(stored.insert(key.clone(), labels).is_none(), "two annotations for {key:?}");
        }
    }
    assert!(over_k.is_empty(), "items over k = {OVERLAP}: {over_k:?}");
    let mut missing = Vec::new();
    let mut acked = 0;
    for o in &outcomes {
        for a in &o.acked {
            acked += 1;
            match stored.get(&(o.name.clone(), a.item_id)) {
                Some(labels) => assert_eq!(labels, &vec![a.label.clone()], "{}'s labels on {}", o.name, a.item_id),
                None => missing.push((o.name.clone(), a.item_id)),
            }
        }
    }
    assert!(missing.is_empty(), "acknowledged submissions lost: {missing:?}");
    let in_flight: usize = outcomes.iter().map(|o| o.lost_in_flight).sum();
    assert!(
        stored.len() >= acked && stored.len() <= acked + in_flight,
        "{} stored for {acked} acknowledged (+{in_flight} in flight at the kill)",
        stored.len()
    );
    assert_eq!(stored.len(), ITEMS * OVERLAP as usize, "the survivor served the rest: every item has its k labels");
    eprintln!("killed after {acked_at_kill} acknowledged; {acked} acknowledged in all, {in_flight} in flight at the kill");
}

/// PostgreSQL: connections the database dropped while they sat idle in the server's pool (a
/// database restart, an administrator's `pg_terminate_backend`) are found and replaced before
/// a request uses them: every request after the drop succeeds. The pool pings a connection
/// before use only when it has been idle for over a second (`store::Db::connect`), so the test
/// waits longer than that.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_the_database_dropped_are_replaced_before_use_on_postgres() {
    use sqlx::Connection;
    let server = TestServer::start(Backend::Postgres).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("dropped", 1, 600).await.id;
    admin.import_texts(pid, "dropped", 30).await;
    let (u, labeler) = server.user(&admin, "dropped", Role::Labeler).await;
    admin.add_member(pid, u.id).await;
    let item = labeler.next(pid).await.item.expect("an item");
    labeler.submit(pid, item.id, &["pos"]).await;

    let mut other = sqlx::PgConnection::connect(server.database_url()).await.unwrap();
    let dropped: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(&mut other)
    .await
    .unwrap();
    assert!(!dropped.is_empty() && dropped.iter().all(|d| *d), "{dropped:?}");
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    for _ in 0..10 {
        let item = labeler.next(pid).await.item.expect("an item after the connections were dropped");
        let a = labeler.submit(pid, item.id, &["pos"]).await;
        assert_eq!(a.item_id, item.id);
    }
    let progress = labeler.next(pid).await.progress;
    assert_eq!(progress.mine_total, 11);
}

/// PostgreSQL: a hand-out or submission begins its transaction and takes the project's
/// assignment lock in one round trip (`on_group_statements!` with `pg_first`). When the lock
/// fails after the BEGIN succeeded (here a `lock_timeout` while another session holds the
/// project's lock), the server holds that connection in a failed transaction that sqlx does
/// not count as open: the request fails, and the connection must never serve another one.
/// Every request after the lock is free again succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_labeling_request_whose_lock_fails_leaves_no_broken_connection_on_postgres() {
    use sqlx::Connection;
    let server = TestServer::start(Backend::Postgres).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("locked", 1, 600).await.id;
    admin.import_texts(pid, "locked", 40).await;
    let (u, labeler) = server.user(&admin, "locked", Role::Labeler).await;
    admin.add_member(pid, u.id).await;
    let held = labeler.next(pid).await.item.expect("an item");

    // Lock waits of the server's connections end after 200 ms: new connections take the
    // database's setting, so the ones open now are ended and replaced.
    let mut other = sqlx::PgConnection::connect(server.database_url()).await.unwrap();
    let database: String = sqlx::query_scalar("SELECT current_database()").fetch_one(&mut other).await.unwrap();
    sqlx::query(&format!("ALTER DATABASE \"{database}\" SET lock_timeout = '200ms'")).execute(&mut other).await.unwrap();
    sqlx::query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()")
        .execute(&mut other)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(1_500)).await;

    // The project's lock, held exclusively by another session (same key as a settings change).
    sqlx::query("SELECT pg_advisory_lock($1)").bind(pid).execute(&mut other).await.unwrap();
    labeler.next_raw(pid, &[]).await.assert_status(500);
    labeler.submit_raw(pid, held.id, &["pos"], "locked-1").await.assert_status(500);
    sqlx::query("SELECT pg_advisory_unlock($1)").bind(pid).execute(&mut other).await.unwrap();

    // The submission that failed stored nothing; its retry and 20 more labels all succeed.
    let first = labeler.submit_raw(pid, held.id, &["pos"], "locked-1").await.ok::<Annotation>();
    assert_eq!(first.item_id, held.id);
    for _ in 0..20 {
        let item = labeler.next(pid).await.item.expect("an item after the lock was released");
        assert_eq!(labeler.submit(pid, item.id, &["pos"]).await.item_id, item.id);
    }
    assert_eq!(labeler.next(pid).await.progress.mine_total, 21);
}
