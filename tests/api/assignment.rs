//! Who gets which item: overlap, leases, skip, idempotent submissions, prefetch.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use app::api_types::*;

use crate::common::*;

both_backends!(
    k1_two_labelers_never_share,
    k2_concurrent_labelers,
    expired_lease_returns_item,
    skip_releases_item,
    submit_is_idempotent,
    next_keeps_lease_and_exclude_prefetches,
    client_id_is_tied_to_its_item,
    only_handed_out_items_can_be_labeled,
    settings_change_never_races_a_submission,
    previous_walks_back_through_the_labelers_own_submissions,
    leases_outlive_a_restart_and_a_crash_costs_no_answer,
);

/// Adds `n` labelers named `{prefix}{i}` to the project; returns their clients.
async fn labelers(server: &TestServer, admin: &Client, pid: i64, prefix: &str, n: usize) -> Vec<(User, Client)> {
    let mut out = Vec::new();
    for i in 0..n {
        let (u, c) = server.user(admin, &format!("{prefix}{i}"), Role::Labeler).await;
        admin.add_member(pid, u.id).await;
        out.push((u, c));
    }
    out
}

async fn k1_two_labelers_never_share(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("k1", 1, 600).await.id;
    admin.import_texts(pid, "k1", 20).await;
    let ls = labelers(&server, &admin, pid, "k1lab", 2).await;
    let (a, c) = (&ls[0].1, &ls[1].1);

    // Both hold a lease at the same time: never on the same item.
    let mut got: [BTreeSet<i64>; 2] = Default::default();
    loop {
        let na = a.next_id(pid).await;
        let nc = c.next_id(pid).await;
        if let (Some(x), Some(y)) = (na, nc) {
            assert_ne!(x, y, "two labelers hold the same item with overlap 1");
        }
        if na.is_none() && nc.is_none() {
            break;
        }
        for (i, (client, id)) in [(a, na), (c, nc)].into_iter().enumerate() {
            if let Some(id) = id {
                client.submit(pid, id, &["pos"]).await;
                assert!(got[i].insert(id), "labeler {i} got item {id} twice");
            }
        }
    }
    assert!(got[0].is_disjoint(&got[1]), "with overlap 1 no item is labeled by both: {got:?}");
    assert_eq!(got[0].len() + got[1].len(), 20, "{got:?}");
    assert!(!got[0].is_empty() && !got[1].is_empty(), "both labelers got work: {got:?}");
    let summary = admin.summary(pid).await;
    assert_eq!((summary.item_count, summary.done_count), (20, 20));
    for line in admin.export_jsonl(pid, false).await {
        assert_eq!(line["annotations"].as_array().unwrap().len(), 1, "{line}");
    }
}

/// Many labelers at once, each looping next → submit, on overlap 2: every item ends with
/// exactly two labels from two different people, and nobody labels an item twice.
async fn k2_concurrent_labelers(b: Backend) {
    const LABELERS: usize = 10;
    const ITEMS: usize = 40;
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("k2 concurrent", 2, 600).await.id;
    admin.import_texts(pid, "k2c", ITEMS).await;
    let ls = labelers(&server, &admin, pid, "k2lab", LABELERS).await;

    // A JoinSet aborts the other labelers as soon as one fails (no cascade of errors).
    let mut tasks = tokio::task::JoinSet::new();
    for (user, client) in ls {
        tasks.spawn(async move {
            let mut mine = Vec::new();
            for _ in 0..ITEMS * 2 {
                let Some(id) = client.next_id(pid).await else { break };
                let lab = if mine.len() % 2 == 0 { "pos" } else { "neg" };
                let ann = client.submit(pid, id, &[lab]).await;
                assert_eq!((ann.item_id, ann.user_id), (id, user.id));
                mine.push(id);
            }
            (user.username, mine)
        });
    }
    let mut per_item: BTreeMap<i64, Vec<String>> = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let (name, mine) = done.expect("labeler task");
        let distinct: BTreeSet<_> = mine.iter().collect();
        assert_eq!(distinct.len(), mine.len(), "{name} labeled an item twice: {mine:?}");
        for id in mine {
            per_item.entry(id).or_default().push(name.clone());
        }
    }
    assert_eq!(per_item.len(), ITEMS, "every item was labeled");
    for (id, names) in &per_item {
        assert_eq!(names.len(), 2, "item {id} has {} labels: {names:?}", names.len());
    }
    // The export agrees.
    let lines = admin.export_jsonl(pid, false).await;
    assert_eq!(lines.len(), ITEMS);
    for line in &lines {
        let anns = line["annotations"].as_array().unwrap();
        let who: BTreeSet<&str> = anns.iter().map(|a| a["labeler"].as_str().unwrap()).collect();
        assert_eq!((anns.len(), who.len()), (2, 2), "two labels from two people: {line}");
    }
    let summary = admin.summary(pid).await;
    assert_eq!((summary.item_count, summary.done_count), (ITEMS as i64, ITEMS as i64));
    assert_eq!(admin.export_jsonl(pid, true).await.len(), ITEMS);
}

async fn expired_lease_returns_item(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("short lease", 1, 1).await.id;
    admin.import_texts(pid, "lease", 1).await;
    let ls = labelers(&server, &admin, pid, "leaser", 2).await;
    let (a, c) = (&ls[0].1, &ls[1].1);

    let first = a.next(pid).await;
    let id = first.item.expect("a gets the only item").id;
    let expires = first.lease_expires_at.expect("a lease expiry");
    assert!(expires > 1_600_000_000_000, "lease_expires_at is ms since the epoch: {expires}");
    assert!(c.next(pid).await.item.is_none(), "the only item is leased to a");

    tokio::time::sleep(Duration::from_millis(2500)).await;
    let again = c.next(pid).await;
    assert_eq!(again.item.map(|i| i.id), Some(id), "after the 1 s lease ran out the item is handed out again");
    c.submit(pid, id, &["neg"]).await;
    assert!(a.next(pid).await.item.is_none());
    assert_eq!(admin.summary(pid).await.done_count, 1);
}

async fn skip_releases_item(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("skip", 1, 600).await.id;
    admin.import_texts(pid, "skip", 1).await;
    let ls = labelers(&server, &admin, pid, "skipper", 2).await;
    let (a, c) = (&ls[0].1, &ls[1].1);

    let id = a.next_id(pid).await.expect("a gets the only item");
    assert!(c.next(pid).await.item.is_none(), "leased to a");
    a.skip(pid, id).await;
    assert_eq!(c.next_id(pid).await, Some(id), "a skipped it, so c gets it");
    c.submit(pid, id, &["pos"]).await;
    // Nothing was recorded for the skip.
    let lines = admin.export_jsonl(pid, false).await;
    let anns = lines[0]["annotations"].as_array().unwrap();
    assert_eq!(anns.len(), 1);
    assert_eq!(anns[0]["labeler"], "skipper1");
}

async fn submit_is_idempotent(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("idempotent", 1, 600).await.id;
    admin.import_texts(pid, "idem", 2).await;
    let ls = labelers(&server, &admin, pid, "retrier", 1).await;
    let l = &ls[0].1;

    let id = l.next_id(pid).await.unwrap();
    let cid = client_id();
    let first: Annotation = l.submit_raw(pid, id, &["pos"], &cid).await.ok();
    let second: Annotation = l.submit_raw(pid, id, &["pos"], &cid).await.ok();
    assert_eq!(first.id, second.id, "a retried submission returns the first annotation");
    assert_eq!(first, second);

    // A retry arriving after the labeler moved on still creates nothing.
    let other = l.next_id(pid).await.unwrap();
    assert_ne!(other, id);
    let third: Annotation = l.submit_raw(pid, id, &["pos"], &cid).await.ok();
    assert_eq!(third.id, first.id);
    assert_eq!(l.progress(pid).await.mine_total, 1);

    let lines = admin.export_jsonl(pid, false).await;
    let total: usize = lines.iter().map(|l| l["annotations"].as_array().unwrap().len()).sum();
    assert_eq!(total, 1, "one annotation, however many retries: {lines:?}");
    // The other item is still leased to the labeler and gets labeled normally.
    l.submit(pid, other, &["neg"]).await;
    assert_eq!(l.progress(pid).await.mine_total, 2);
}

/// The labeling page's "back" (`GET /previous?before=`): one labeler's submissions, newest
/// first, one step at a time, none of another labeler's between them (their answers are
/// interleaved), and an answer changed later stays where it was first given; then 404.
async fn previous_walks_back_through_the_labelers_own_submissions(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("back", 1, 600).await.id;
    admin.import_texts(pid, "back", 10).await;
    let ls = labelers(&server, &admin, pid, "walker", 2).await;
    let (a, other) = (&ls[0].1, &ls[1].1);
    let mut mine = Vec::new();
    for label in ["pos", "neg", "pos", "neg"] {
        let id = a.next_id(pid).await.unwrap();
        mine.push(a.submit(pid, id, &[label]).await);
        let theirs = other.next_id(pid).await.unwrap();
        other.submit(pid, theirs, &["pos"]).await;
    }
    // The second answer changed after the fourth: it keeps its place.
    let changed = a.submit(pid, mine[1].item_id, &["pos"]).await;
    assert_eq!(changed.id, mine[1].id);
    let latest: PreviousSubmission = a.get(&format!("/api/projects/{pid}/previous")).await;
    assert_eq!(latest.annotation.id, mine[3].id);
    let mut walked = vec![(latest.annotation.id, latest.item.id)];
    loop {
        let before = walked.last().unwrap().0;
        let r = a.get_raw(&format!("/api/projects/{pid}/previous?before={before}")).await;
        if r.status == 404 {
            r.assert_error(404, "not_found");
            break;
        }
        let prev: PreviousSubmission = r.json();
        assert_eq!(prev.annotation.user_id, ls[0].0.id);
        walked.push((prev.annotation.id, prev.item.id));
    }
    let expected: Vec<(i64, i64)> = mine.iter().rev().map(|m| (m.id, m.item_id)).collect();
    assert_eq!(walked, expected);
    let second: PreviousSubmission = a.get(&format!("/api/projects/{pid}/previous?before={}", mine[2].id)).await;
    assert_eq!(second.annotation.labels, vec!["pos".to_string()], "the changed answer, as it is now");
}

/// Without `exclude` the caller gets back the item it holds (a reload shows the same item);
/// with `exclude` it gets another one (prefetch), and other labelers get neither.
async fn next_keeps_lease_and_exclude_prefetches(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("prefetch", 1, 600).await.id;
    admin.import_texts(pid, "pf", 3).await;
    let ls = labelers(&server, &admin, pid, "pf", 2).await;
    let (a, c) = (&ls[0].1, &ls[1].1);

    let x = a.next_id(pid).await.unwrap();
    assert_eq!(a.next_id(pid).await, Some(x), "a reload returns the held item");
    let y = a.next_excluding(pid, &[x]).await.item.expect("a prefetched item").id;
    assert_ne!(x, y);
    let z = c.next_id(pid).await.expect("c gets the third item");
    assert!(z != x && z != y, "c must not get an item a holds");
    assert!(a.next_excluding(pid, &[x, y]).await.item.is_none(), "all three are leased");
    a.submit(pid, x, &["pos"]).await;
    a.submit(pid, y, &["pos"]).await;
    c.submit(pid, z, &["pos"]).await;
    assert_eq!(admin.summary(pid).await.done_count, 3);
}

/// A client id names one submission of one item: reusing it on another item must not answer
/// 200 with the first annotation (which would silently drop the new label).
async fn client_id_is_tied_to_its_item(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("cid", 1, 600).await.id;
    admin.import_texts(pid, "cid", 2).await;
    let ls = labelers(&server, &admin, pid, "cider", 1).await;
    let l = &ls[0].1;

    let x = l.next_id(pid).await.unwrap();
    let cid = client_id();
    l.submit_raw(pid, x, &["pos"], &cid).await.assert_status(200);
    let y = l.next_id(pid).await.unwrap();
    assert_ne!(x, y);
    let e = l.submit_raw(pid, y, &["neg"], &cid).await.assert_error(409, "conflict");
    assert!(e.message.contains(&format!("already used for item {x}")), "{}", e.message);
    // Nothing was recorded for y, and a fresh client id labels it.
    assert_eq!(l.progress(pid).await.mine_total, 1);
    let ann = l.submit(pid, y, &["neg"]).await;
    assert_eq!((ann.item_id, ann.labels.clone()), (y, vec!["neg".to_string()]));
}

/// A labeler can label only what was handed to them: an item leased to them (also for a
/// while after the lease ended, when nobody else took it), one they skipped, or one they
/// labeled before (a change). Anything else is 403, and nothing is stored.
async fn only_handed_out_items_can_be_labeled(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("handed", 2, 1).await.id;
    admin.import_texts(pid, "handed", 4).await;
    let ls = labelers(&server, &admin, pid, "hand", 2).await;
    let (a, c) = (&ls[0].1, &ls[1].1);

    // Never shown to anybody: refused.
    let ids: Vec<i64> = admin.export_jsonl(pid, false).await.iter().map(|l| l["item_id"].as_i64().unwrap()).collect();
    let e = a.submit_raw(pid, ids[3], &["pos"], &client_id()).await.assert_error(403, "forbidden");
    assert!(e.message.contains("was not handed to you"), "{}", e.message);

    // Leased to c, not to a: refused for a, fine for c.
    let held_by_c = c.next_id(pid).await.unwrap();
    a.submit_raw(pid, held_by_c, &["pos"], &client_id()).await.assert_error(403, "forbidden");
    c.submit(pid, held_by_c, &["pos"]).await;

    // An expired lease (1 s) still counts within the grace.
    let x = a.next_id(pid).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    a.submit(pid, x, &["neg"]).await;

    // A skipped item was handed out too.
    let y = a.next_id(pid).await.unwrap();
    a.skip(pid, y).await;
    a.submit(pid, y, &["other"]).await;

    // Changing one's own earlier answer needs no lease.
    let changed = a.submit(pid, x, &["pos"]).await;
    assert_eq!(changed.labels, vec!["pos".to_string()]);

    // An item of another project: 404, as before.
    let other = admin.simple_project("elsewhere", 1, 600).await.id;
    admin.import_texts(other, "elsewhere", 1).await;
    let foreign = admin.export_jsonl(other, false).await[0]["item_id"].as_i64().unwrap();
    a.submit_raw(pid, foreign, &["pos"], &client_id()).await.assert_error(404, "not_found");

    let total: usize = admin.export_jsonl(pid, false).await.iter().map(|l| l["annotations"].as_array().unwrap().len()).sum();
    assert_eq!(total, 3, "c's one label and a's two; none of the refused ones");
}

/// Settings are read inside the submission's transaction: while labelers submit `neg`, the
/// lead keeps trying to remove `neg` (refused while an annotation uses it). Whatever the
/// interleaving, no annotation ends up with a label the project no longer has, and no item
/// holds more labels than the overlap.
async fn settings_change_never_races_a_submission(b: Backend) {
    const ITEMS: usize = 60;
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("race", 2, 600).await.id;
    admin.import_texts(pid, "race", ITEMS).await;
    let ls = labelers(&server, &admin, pid, "racer", 4).await;
    let mut tasks = tokio::task::JoinSet::new();
    for (_, client) in ls {
        tasks.spawn(async move {
            let mut statuses = Vec::new();
            while let Some(id) = client.next_id(pid).await {
                let r = client.submit_raw(pid, id, &["neg"], &client_id()).await;
                statuses.push(r.status.as_u16());
                if r.status.as_u16() == 400 {
                    // `neg` was removed: answer with a label that exists.
                    client.submit_raw(pid, id, &["pos"], &client_id()).await.assert_status(200);
                }
            }
            statuses
        });
    }
    let without_neg = vec![label("pos", "p", "#22aa22"), label("other", "o", "#888888")];
    let mut removed = false;
    for round in 0..40 {
        let r = admin.patch_json_raw(&format!("/api/projects/{pid}"), &serde_json::json!({"labels": without_neg})).await;
        match r.status.as_u16() {
            200 => {
                removed = true;
                break;
            }
            409 => {}
            s => panic!("round {round}: unexpected status {s}: {}", r.text()),
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    while let Some(statuses) = tasks.join_next().await {
        let statuses = statuses.expect("labeler task");
        assert!(statuses.iter().all(|s| [200, 400, 409].contains(s)), "{statuses:?}");
    }
    let project = admin.project(pid).await;
    let lines = admin.export_jsonl(pid, false).await;
    let used: BTreeSet<String> = lines
        .iter()
        .flat_map(|l| l["annotations"].as_array().unwrap().iter())
        .flat_map(|a| a["labels"].as_array().unwrap().iter().map(|v| v.as_str().unwrap().to_string()))
        .collect();
    let names: BTreeSet<String> = project.labels.iter().map(|l| l.name.clone()).collect();
    assert!(used.is_subset(&names), "annotations use {used:?} but the project has {names:?} (removed: {removed})");
    for line in &lines {
        assert!(line["annotations"].as_array().unwrap().len() <= 2, "over the overlap: {line}");
    }
}

/// Another process holding SQLite's write lock for a moment (`mirrorset user add` on the live
/// database, a backup) makes labeling wait, not fail: write transactions begin IMMEDIATE, so
/// the busy timeout applies. (A deferred transaction read first and then failed at once with
/// SQLITE_BUSY when it tried to write: a 500.) SQLite only: PostgreSQL has row locks.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn labeling_waits_for_another_process_holding_the_sqlite_writer() {
    use sqlx::{Connection, Executor};
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("busy", 1, 600).await.id;
    admin.import_texts(pid, "busy", 3).await;
    let ls = labelers(&server, &admin, pid, "patient", 1).await;
    let l = ls[0].1.clone();

    let mut lock = sqlx::SqliteConnection::connect(server.database_url()).await.expect("open the database");
    lock.execute("BEGIN IMMEDIATE").await.expect("take the write lock");
    let labeling = tokio::spawn(async move {
        let next = l.next_raw(pid, &[]).await;
        let id = next.json::<NextItem>().item.map(|i| i.id);
        (next.status.as_u16(), id, l)
    });
    tokio::time::sleep(Duration::from_millis(1500)).await;
    lock.execute("ROLLBACK").await.expect("release the write lock");
    let (status, id, l) = labeling.await.unwrap();
    assert_eq!(status, 200, "next while another process held the writer");
    let id = id.expect("an item");
    l.submit(pid, id, &["pos"]).await;
    let _ = lock.close().await;
}

/// PostgreSQL: a transaction that holds `FOR KEY SHARE` locks on items — the lock every insert
/// of a row referencing an item takes (a consensus refresh, pre-labels, review entries) — does
/// not hide those items from hand-outs, nor hold up a submission. With `FOR UPDATE` claiming,
/// `SKIP LOCKED` passed over every such item and a labeler was told nothing was left while a
/// refresh ran.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn items_referenced_by_an_open_transaction_are_still_handed_out_on_postgres() {
    use sqlx::Connection;
    let server = TestServer::start(Backend::Postgres).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("key share", 1, 600).await.id;
    admin.import_texts(pid, "key share", 3).await;
    let (u, labeler) = server.user(&admin, "keyshare", Role::Labeler).await;
    admin.add_member(pid, u.id).await;

    let mut other = sqlx::PgConnection::connect(server.database_url()).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    let locked: Vec<i64> = sqlx::query_scalar("SELECT id FROM items WHERE project_id = $1 FOR KEY SHARE")
        .bind(pid)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    assert_eq!(locked.len(), 3);

    let item = tokio::time::timeout(Duration::from_secs(10), labeler.next(pid))
        .await
        .expect("the hand-out waited on the other transaction")
        .item
        .expect("an item, although another transaction references every item");
    let annotation = tokio::time::timeout(Duration::from_secs(10), labeler.submit(pid, item.id, &["pos"]))
        .await
        .expect("the submission waited on the other transaction");
    assert_eq!(annotation.item_id, item.id);
    tx.rollback().await.unwrap();
}

/// Asks for `labeler`'s next item in the background while the test holds every open item's
/// row lock, and checks that the hand-out is still waiting 800 ms later (instead of
/// answering, as `SKIP LOCKED` alone did). Its answer: (status, item id).
async fn hand_out_waiting_on_locks(labeler: Client, pid: i64) -> tokio::task::JoinHandle<(u16, Option<i64>)> {
    let hand_out = tokio::spawn(async move {
        let next = labeler.next_raw(pid, &[]).await;
        (next.status.as_u16(), next.json::<NextItem>().item.map(|i| i.id))
    });
    tokio::time::sleep(Duration::from_millis(800)).await;
    assert!(!hand_out.is_finished(), "the hand-out answered while every open item was locked: {:?}", hand_out.await);
    hand_out
}

/// The answer of a `hand_out_waiting_on_locks` once the locks are gone.
async fn hand_out_answer(hand_out: tokio::task::JoinHandle<(u16, Option<i64>)>) -> (u16, Option<i64>) {
    tokio::time::timeout(Duration::from_secs(10), hand_out).await.expect("the hand-out ends").unwrap()
}

/// PostgreSQL: when every open item is locked by another transaction (a labeler's submission
/// or hand-out in flight holds its item's row lock until it commits), a hand-out waits for
/// them instead of answering that nothing is left: the labeler would stop while an item still
/// lacked a label (the intermittent failure of `k2_concurrent_labelers` under load). Once the
/// other transaction commits, the hand-out passes over the item it filled and gives the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hand_out_waits_for_locked_items_before_saying_nothing_is_left_on_postgres() {
    use sqlx::Connection;
    let server = TestServer::start(Backend::Postgres).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("locked tail", 1, 600).await.id;
    admin.import_texts(pid, "locked tail", 2).await;
    let ls = labelers(&server, &admin, pid, "tail", 2).await;
    let (waiter, other_user) = (ls[0].1.clone(), ls[1].0.id);

    let mut other = sqlx::PgConnection::connect(server.database_url()).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    let locked: Vec<i64> = sqlx::query_scalar("SELECT id FROM items WHERE project_id = $1 ORDER BY id FOR NO KEY UPDATE")
        .bind(pid)
        .fetch_all(&mut *tx)
        .await
        .unwrap();
    let [first, second] = locked[..] else { panic!("two items: {locked:?}") };
    let hand_out = hand_out_waiting_on_locks(waiter, pid).await;
    // The other transaction takes the first item's only slot, as another labeler's hand-out.
    sqlx::query("INSERT INTO leases (item_id, user_id, project_id, leased_at, expires_at) VALUES ($1, $2, $3, 0, $4)")
        .bind(first)
        .bind(other_user)
        .bind(pid)
        .bind(i64::MAX)
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let answer = hand_out_answer(hand_out).await;
    assert_eq!(answer, (200, Some(second)), "the item with a slot left, not the one the other transaction filled");
}

/// PostgreSQL: the wait above is only for a hand-out that would otherwise find nothing. An
/// item locked by another transaction is passed over while any step of the order has an
/// unlocked one: here the raised item of a `priority` project, so the labeler gets an item of
/// the next step at once instead of waiting for the raised one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_locked_item_is_passed_over_while_another_step_has_one_on_postgres() {
    use sqlx::Connection;
    let server = TestServer::start(Backend::Postgres).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("locked raised", 1, 600).await.id;
    admin.import_texts(pid, "locked raised", 2).await;
    admin.patch_json_raw(&format!("/api/projects/{pid}"), &serde_json::json!({"assignment_order": "priority"})).await.assert_status(200);
    let ls = labelers(&server, &admin, pid, "raised", 1).await;

    let mut other = sqlx::PgConnection::connect(server.database_url()).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    let raised: i64 = sqlx::query_scalar("UPDATE items SET priority = 5 WHERE id = (SELECT MIN(id) FROM items WHERE project_id = $1) RETURNING id")
        .bind(pid)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    let mut tx = other.begin().await.unwrap();
    sqlx::query("SELECT id FROM items WHERE id = $1 FOR NO KEY UPDATE").bind(raised).execute(&mut *tx).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(5), ls[0].1.next(pid))
        .await
        .expect("the hand-out gave the unlocked item without waiting for the raised one");
    let given = next.item.expect("the item of the next step").id;
    assert_ne!(given, raised);
    tx.rollback().await.unwrap();
    assert_eq!(ls[0].1.next_excluding(pid, &[given]).await.item.map(|i| i.id), Some(raised), "the raised item once unlocked");
}

/// PostgreSQL: a hand-out that waited for an item rechecks the labeler's own claim on it too,
/// not only its capacity: when the transaction it waited for was the labeler's own answer to
/// the item, the item is not handed to them again, although it still has a slot for someone
/// else. (The labeling page asks for the next item while it saves an answer; an answer to an
/// item whose lease had expired, or that had been skipped, holds no lease the claim would see,
/// as here.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hand_out_that_waited_never_gives_back_an_item_the_labeler_just_answered_on_postgres() {
    use sqlx::Connection;
    let server = TestServer::start(Backend::Postgres).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("own answer", 2, 600).await.id;
    admin.import_texts(pid, "own answer", 1).await;
    let ls = labelers(&server, &admin, pid, "own", 1).await;
    let (user, labeler) = (ls[0].0.id, ls[0].1.clone());

    let mut other = sqlx::PgConnection::connect(server.database_url()).await.unwrap();
    let mut tx = other.begin().await.unwrap();
    let item: i64 = sqlx::query_scalar("SELECT id FROM items WHERE project_id = $1 FOR NO KEY UPDATE")
        .bind(pid)
        .fetch_one(&mut *tx)
        .await
        .unwrap();
    let hand_out = hand_out_waiting_on_locks(labeler, pid).await;
    // The labeler's own answer to the item commits (as `submit_annotation` writes it).
    sqlx::query(
        "INSERT INTO annotations (project_id, item_id, user_id, labels, time_ms, created_at, updated_at)
         VALUES ($1, $2, $3, '[\"pos\"]', 1000, 1, 1)",
    )
    .bind(pid)
    .bind(item)
    .bind(user)
    .execute(&mut *tx)
    .await
    .unwrap();
    sqlx::query("UPDATE items SET label_count = 1 WHERE id = $1").bind(item).execute(&mut *tx).await.unwrap();
    tx.commit().await.unwrap();
    let answer = hand_out_answer(hand_out).await;
    assert_eq!(answer, (200, None), "the item the labeler answered, handed to them again");
}

/// A clean restart keeps every lease (on SQLite they live in memory while the server runs and
/// are kept at its shutdown: `store::lease_book`): the holder gets their item back and
/// nobody else gets it. After a crash, an answer to an item that was on a labeler's screen is
/// still taken (on SQLite the lease is lost, and for an hour an answer needs none when the
/// item has room); capacity still decides.
async fn leases_outlive_a_restart_and_a_crash_costs_no_answer(b: Backend) {
    let mut server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("restart", 1, 600).await.id;
    admin.import_texts(pid, "restart", 3).await;
    let ls = labelers(&server, &admin, pid, "rs", 2).await;
    let (a, c) = (&ls[0].1, &ls[1].1);

    let x = a.next_id(pid).await.expect("a gets an item");
    server.restart().await;
    // c asks first: x would be the first item of the stream for anyone without a's lease.
    let y = c.next_id(pid).await.expect("c gets another item");
    assert_ne!(y, x, "a's lease survived the restart");
    assert_eq!(a.next_id(pid).await, Some(x), "a gets their held item back after the restart");
    a.submit(pid, x, &["pos"]).await;

    server.crash_restart().await;
    let ann = c.submit(pid, y, &["neg"]).await;
    assert_eq!((ann.item_id, ann.labels), (y, vec!["neg".to_string()]), "the answer to the item on c's screen is taken");
    // Capacity still decides: y has its one label.
    let refused = a.submit_raw(pid, y, &["pos"], &client_id()).await;
    match b {
        // No lease needed for the hour after the crash, but no room either.
        Backend::Sqlite => refused.assert_error(409, "conflict"),
        Backend::Postgres => refused.assert_error(403, "forbidden"),
    };
    let z = a.next_id(pid).await.expect("the third item");
    assert!(z != x && z != y);
    a.submit(pid, z, &["pos"]).await;
    assert_eq!(admin.summary(pid).await.done_count, 3);
}
