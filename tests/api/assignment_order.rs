//! The order of the labelers' stream (project setting `assignment_order`) and per-item overlap.
use std::collections::{BTreeMap, BTreeSet};

use app::api_types::*;
use serde_json::json;

use crate::common::*;

both_backends!(
    random_order_is_reproducible_and_not_import_order,
    import_order_follows_the_file,
    priority_items_come_first,
    item_overlap_is_honoured_under_concurrency,
);

/// Sets project settings through the API (a lead's PATCH), asserting it was accepted.
async fn set(admin: &Client, pid: i64, settings: serde_json::Value) {
    admin.patch_json_raw(&format!("/api/projects/{pid}"), &settings).await.assert_status(200);
}

/// The external ids one labeler is handed, taking and labeling items until none is left.
async fn stream_of(labeler: &Client, pid: i64) -> Vec<String> {
    let mut seen = Vec::new();
    while let Some(item) = labeler.next(pid).await.item {
        seen.push(item.external_id.clone().expect("items here have external ids"));
        labeler.submit(pid, item.id, &["pos"]).await;
    }
    seen
}

/// `o-0` .. `o-{n-1}`, the ids `import_texts(pid, "o", n)` gives.
fn file_order(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("o-{i}")).collect()
}

/// The random order the server must follow: by rank (`server::stream::rank`, pinned in its unit
/// test), ties in file order.
fn rank_order(pid: i64, ids: &[String]) -> Vec<String> {
    let mut v: Vec<(i64, usize, String)> =
        ids.iter().enumerate().map(|(i, id)| (server::stream::rank(pid, Some(id), ""), i, id.clone())).collect();
    v.sort();
    v.into_iter().map(|(_, _, id)| id).collect()
}

/// A project created without an order is in random order: items come by their rank, which
/// depends only on the project and each item's id, so the same file gives the same stream in
/// every database (SQLite and PostgreSQL pin the same first items), every labeler of the
/// project meets the items in that order, and it is not the file's order.
async fn random_order_is_reproducible_and_not_import_order(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    // As the UI creates it: no order given.
    let project: Project = admin
        .post_created(
            "/api/projects",
            &json!({"name": "random", "kind": "single", "overlap": 2,
                    "labels": [label("pos", "p", "#22aa22"), label("neg", "n", "#aa2222")]}),
        )
        .await;
    let pid = project.id;
    assert_eq!(pid, 1, "the pinned order below is project 1's (a fresh database)");
    assert_eq!(project.assignment_order, AssignmentOrder::Random, "the default for new projects");
    admin.import_texts(pid, "o", 40).await;
    let (a_user, a) = server.user(&admin, "rand-a", Role::Labeler).await;
    let (b_user, bl) = server.user(&admin, "rand-b", Role::Labeler).await;
    admin.add_member(pid, a_user.id).await;
    admin.add_member(pid, b_user.id).await;

    let seen_a = stream_of(&a, pid).await;
    assert_eq!(&seen_a[..6], ["o-2", "o-3", "o-33", "o-24", "o-20", "o-32"], "pinned (computed with Python's hashlib)");
    assert_eq!(seen_a, rank_order(pid, &file_order(40)));
    assert_ne!(seen_a, file_order(40), "not the import order");
    assert_eq!(stream_of(&bl, pid).await, seen_a, "the second labeler (overlap 2) meets the same order");
}

/// `import`: items in the order of the file, as every project had them before.
async fn import_order_follows_the_file(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("import order", 1, 600).await.id;
    set(&admin, pid, json!({"assignment_order": "random"})).await;
    set(&admin, pid, json!({"assignment_order": "import"})).await;
    assert_eq!(admin.project(pid).await.assignment_order, AssignmentOrder::Import);
    admin.import_texts(pid, "o", 30).await;
    let (u, l) = server.user(&admin, "importer", Role::Labeler).await;
    admin.add_member(pid, u.id).await;
    assert_eq!(stream_of(&l, pid).await, file_order(30));
}

/// `priority`: higher `items.priority` first (a dev-set campaign raises its members), each
/// priority in random (rank) order; under `random` the priority is ignored.
async fn priority_items_come_first(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("priority", 2, 600).await.id;
    set(&admin, pid, json!({"assignment_order": "random"})).await;
    admin.import_texts(pid, "o", 30).await;
    // The devset work sets these through store::assignment::set_campaign_members.
    server.exec_sql("UPDATE items SET priority = 5 WHERE external_id IN ('o-7', 'o-23')").await;
    server.exec_sql("UPDATE items SET priority = 1 WHERE external_id IN ('o-2', 'o-30', 'o-11', 'o-29')").await;
    let (u, l) = server.user(&admin, "prio", Role::Labeler).await;
    let (u2, l2) = server.user(&admin, "prio2", Role::Labeler).await;
    admin.add_member(pid, u.id).await;
    admin.add_member(pid, u2.id).await;

    // Under `random` the priority changes nothing.
    let first = l2.next(pid).await.item.unwrap().external_id.unwrap();
    assert_eq!(first, rank_order(pid, &file_order(30))[0]);

    set(&admin, pid, json!({"assignment_order": "priority"})).await;
    let high: Vec<String> = ["o-7", "o-23"].map(String::from).to_vec();
    let mid: Vec<String> = ["o-2", "o-11", "o-29"].map(String::from).to_vec();
    let rest: Vec<String> = file_order(30).into_iter().filter(|id| !high.contains(id) && !mid.contains(id)).collect();
    let expected: Vec<String> = [rank_order(pid, &high), rank_order(pid, &mid), rank_order(pid, &rest)].concat();
    let seen = stream_of(&l, pid).await;
    assert_eq!(&seen[..2], &expected[..2]);
    assert_eq!(seen, expected);
}

/// An item with its own overlap needs that many labels, whatever the project's: ten labelers
/// at once on a project of overlap 1 where ten items ask for 3. No item ends over its own k,
/// nobody labels an item twice, and a later change of the project's overlap recomputes only
/// the items without an overlap of their own.
async fn item_overlap_is_honoured_under_concurrency(b: Backend) {
    const ITEMS: usize = 30;
    const LABELERS: usize = 10;
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    // The test harness's projects hand items out in import order.
    let pid = admin.simple_project("own overlap", 1, 600).await.id;
    admin.import_texts(pid, "o", ITEMS).await;
    let campaign: BTreeSet<String> = (0..ITEMS).step_by(3).map(|i| format!("o-{i}")).collect();
    let list = campaign.iter().map(|id| format!("'{id}'")).collect::<Vec<_>>().join(",");
    server.exec_sql(&format!("UPDATE items SET overlap = 3 WHERE external_id IN ({list})")).await;

    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..LABELERS {
        let (u, c) = server.user(&admin, &format!("own{i}"), Role::Labeler).await;
        admin.add_member(pid, u.id).await;
        tasks.spawn(async move {
            let mut mine = Vec::new();
            while let Some(item) = c.next(pid).await.item {
                c.submit(pid, item.id, &["neg"]).await;
                mine.push(item.external_id.unwrap());
            }
            (u.username, mine)
        });
    }
    let mut per_item: BTreeMap<String, Vec<String>> = BTreeMap::new();
    while let Some(done) = tasks.join_next().await {
        let (name, mine) = done.expect("labeler task");
        let distinct: BTreeSet<_> = mine.iter().collect();
        assert_eq!(distinct.len(), mine.len(), "{name} labeled an item twice: {mine:?}");
        for id in mine {
            per_item.entry(id).or_default().push(name.clone());
        }
    }
    assert_eq!(per_item.len(), ITEMS);
    for (id, who) in &per_item {
        let k = if campaign.contains(id) { 3 } else { 1 };
        assert_eq!(who.len(), k, "{id} has {} labels, wants {k}: {who:?}", who.len());
    }
    let summary = admin.summary(pid).await;
    assert_eq!((summary.item_count, summary.done_count), (ITEMS as i64, ITEMS as i64));
    assert_eq!(admin.export_jsonl(pid, true).await.len(), ITEMS);

    // The project's overlap goes to 2: the campaign items keep their own 3 (and stay done);
    // every other item now lacks a label.
    set(&admin, pid, json!({"overlap": 2})).await;
    let summary = admin.summary(pid).await;
    assert_eq!(summary.done_count, campaign.len() as i64);
    let complete: BTreeSet<String> =
        admin.export_jsonl(pid, true).await.iter().map(|l| l["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(complete, campaign);
    let (u, late) = server.user(&admin, "late", Role::Labeler).await;
    admin.add_member(pid, u.id).await;
    let item = late.next(pid).await.item.expect("an item short of its second label");
    assert!(!campaign.contains(item.external_id.as_deref().unwrap()), "{item:?}");
}
