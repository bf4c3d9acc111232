//! The operator's endpoints: `/api/health` (versions), `/health` and `/ready` (probes),
//! `/metrics` (Prometheus text) and `--log-format json`.
use std::collections::HashMap;

use app::api_types::*;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(
    health_reports_the_app_and_schema_versions,
    ready_is_503_while_a_migration_is_missing,
    metrics_count_requests_per_route_and_labels_submitted,
    log_format_json_writes_json_lines,
);

/// The highest migration number this backend's directory holds (the schema version the
/// server must report once they are all applied). Numbers are reserved per piece of work, so
/// the directory may have gaps while some are still on their branches.
fn migration_count(b: Backend) -> i64 {
    *migration_versions(b).last().expect("migrations")
}

/// The migration numbers of this backend's directory, ascending.
fn migration_versions(b: Backend) -> Vec<i64> {
    let dir = workspace_root().join("migrations").join(match b {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    });
    let mut v: Vec<i64> = std::fs::read_dir(&dir)
        .expect("the migrations directory")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".sql")?.split('_').next()?.parse::<i64>().ok()
        })
        .collect();
    v.sort();
    v
}

async fn health_reports_the_app_and_schema_versions(b: Backend) {
    let server = TestServer::start(b).await;
    let anon = server.client();
    let n = migration_count(b);
    assert!(n >= 4, "{n} migrations");
    let health: Value = anon.get("/api/health").await;
    assert_eq!(health, json!({ "status": "ok", "version": env!("CARGO_PKG_VERSION"), "schema_version": n }));

    let resp = anon.get_raw("/health").await;
    assert_eq!(resp.ok::<Value>(), json!({ "status": "ok" }));
    let resp = anon.get_raw("/ready").await;
    assert_eq!(resp.ok::<Value>(), json!({ "status": "ok" }));
}

async fn ready_is_503_while_a_migration_is_missing(b: Backend) {
    let server = TestServer::start(b).await;
    let anon = server.client();
    let n = migration_count(b);
    // As if this binary were newer than the database's schema (the last migration not applied).
    assert_eq!(server.exec_sql(&format!("DELETE FROM _sqlx_migrations WHERE version = {n}")).await, 1);
    let resp = anon.get_raw("/ready").await;
    let err = resp.assert_error(503, "unavailable");
    assert_eq!(err.message, format!("migrations not applied yet: [{n}]"));
    assert_eq!(resp.headers["retry-after"], "5");
    // The process is still up, and /api/health says which schema it found.
    assert_eq!(anon.get_raw("/health").await.ok::<Value>(), json!({ "status": "ok" }));
    let health: Value = anon.get("/api/health").await;
    let versions = migration_versions(b);
    assert_eq!(health["schema_version"], json!(versions[versions.len() - 2]));
}

/// `/metrics` as (series with its labels, exactly as written) → value.
async fn scrape(c: &Client) -> (String, HashMap<String, f64>) {
    let resp = c.get_raw("/metrics").await;
    resp.assert_status(200);
    assert_eq!(resp.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    let text = resp.text();
    let mut series = HashMap::new();
    for line in text.lines().filter(|l| !l.starts_with('#') && !l.is_empty()) {
        let (name, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("bad metrics line {line:?}"));
        let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
        assert!(series.insert(name.to_string(), value).is_none(), "{name} written twice");
    }
    (text, series)
}

async fn metrics_count_requests_per_route_and_labels_submitted(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("metrics", 1, 600).await.id;
    admin.import_texts(pid, "m", 10).await;
    let (labeler, c) = server.user(&admin, "lena", Role::Labeler).await;
    admin.add_member(pid, labeler.id).await;

    let next = r#"method="POST",route="/api/projects/{pid}/next",status="2xx""#;
    let submit = r#"method="POST",route="/api/projects/{pid}/annotations",status="2xx""#;
    let mut last = 0;
    for i in 0..3 {
        last = c.next(pid).await.item.expect("an item").id;
        c.submit_raw(pid, last, &["pos"], &format!("metrics-{i}")).await.assert_status(200);
    }
    // A retry of an acknowledged submission (same client_id) is answered but adds no label.
    c.submit_raw(pid, last, &["pos"], "metrics-2").await.assert_status(200);
    let (text, m) = scrape(&admin).await;
    assert_eq!(m[&format!("mirrorset_http_requests_total{{{next}}}")], 3.0, "{text}");
    assert_eq!(m[&format!("mirrorset_http_requests_total{{{submit}}}")], 4.0, "{text}");
    assert_eq!(m["mirrorset_labels_submitted_total"], 3.0, "{text}");
    assert_eq!(m["mirrorset_active_labelers"], 1.0, "{text}");
    // The route pattern is the label, never the path with its ids.
    assert!(!text.contains(&format!("/api/projects/{pid}/")), "{text}");

    // Two more items asked for, one of them by the admin (a second active labeler), one
    // more label; a request the API refuses is counted in its own status class.
    admin.add_member(pid, admin.me().await.user.id).await;
    let item = c.next(pid).await.item.expect("an item");
    c.submit(pid, item.id, &["neg"]).await;
    admin.next(pid).await;
    c.submit_raw(pid, 999_999, &["pos"], "nope").await.assert_status(404);
    // Methods are chosen by clients: any unknown one is counted as OTHER, never by its name.
    let odd = admin.raw(reqwest::Method::from_bytes(b"FROB").unwrap(), "/health", None).await;
    odd.assert_status(405);
    let (text, m) = scrape(&admin).await;
    assert!(!text.contains("FROB"), "{text}");
    assert_eq!(m[r#"mirrorset_http_requests_total{method="OTHER",route="/health",status="4xx"}"#], 1.0, "{text}");
    let count = |labels: &str| m[&format!("mirrorset_http_requests_total{{{labels}}}")];
    assert_eq!(count(next), 5.0, "{text}");
    assert_eq!(count(submit), 5.0, "{text}");
    assert_eq!(count(r#"method="POST",route="/api/projects/{pid}/annotations",status="4xx""#), 1.0, "{text}");
    assert_eq!(m["mirrorset_labels_submitted_total"], 4.0, "{text}");
    assert_eq!(m["mirrorset_active_labelers"], 2.0, "{text}");

    // The latency histogram of next: cumulative buckets, +Inf equal to the count.
    let bucket = |le: &str| m[&format!("mirrorset_http_request_duration_seconds_bucket{{{next},le=\"{le}\"}}")];
    assert_eq!(bucket("+Inf"), 5.0, "{text}");
    assert_eq!(m[&format!("mirrorset_http_request_duration_seconds_count{{{next}}}")], 5.0, "{text}");
    let sum = m[&format!("mirrorset_http_request_duration_seconds_sum{{{next}}}")];
    assert!(sum > 0.0 && sum < 5.0 * 30.0, "{text}");
    let les = ["0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10", "+Inf"];
    for pair in les.windows(2) {
        assert!(bucket(pair[0]) <= bucket(pair[1]), "buckets not cumulative at {}: {text}", pair[0]);
    }
    assert!(text.contains("# TYPE mirrorset_http_request_duration_seconds histogram\n"), "{text}");

    // Database pools: the sizes `Db::connect` sets.
    let pools: &[(&str, f64)] = match b {
        Backend::Sqlite => &[("read", 8.0), ("write", 1.0)],
        Backend::Postgres => &[("pg", 16.0)],
    };
    assert_eq!(m.contains_key("mirrorset_sqlite_writes_in_flight"), b == Backend::Sqlite, "{text}");
    // The group-commit writer (SQLite): one labeler's requests one after another make groups
    // of one; every submission that reached the store went through it (a next does not).
    assert_eq!(m.contains_key("mirrorset_sqlite_writer_queue_depth"), b == Backend::Sqlite, "{text}");
    if b == Backend::Sqlite {
        assert_eq!(m["mirrorset_sqlite_writer_queue_depth"], 0.0, "{text}");
        let groups = m["mirrorset_sqlite_commit_group_size_count"];
        assert!(m["mirrorset_sqlite_commit_group_size_sum"] >= 6.0, "{text}");
        assert_eq!(m["mirrorset_sqlite_commit_group_size_bucket{le=\"+Inf\"}"], groups, "{text}");
        assert_eq!(m["mirrorset_sqlite_commit_group_size_bucket{le=\"1\"}"], groups, "sequential requests: groups of one; {text}");
        // The writer's time per phase: every phase present, and the jobs took some.
        for phase in ["acquire", "begin", "jobs", "commit"] {
            assert!(m.contains_key(&format!("mirrorset_sqlite_writer_seconds_total{{phase=\"{phase}\"}}")), "{phase}: {text}");
        }
        assert!(m["mirrorset_sqlite_writer_seconds_total{phase=\"jobs\"}"] > 0.0, "{text}");
        // By kind: six submissions reached the writer (a retry and a refused one among them),
        // no skip, and none of the five hand-outs (on SQLite a hand-out reads, and leases the
        // item in memory: `store::lease_book`); each kind that ran took some time.
        let jobs = |kind: &str| m[&format!("mirrorset_sqlite_writer_jobs_total{{kind=\"{kind}\"}}")];
        let job_seconds = |kind: &str| m[&format!("mirrorset_sqlite_writer_job_seconds_total{{kind=\"{kind}\"}}")];
        assert_eq!((jobs("hand_out"), jobs("submission"), jobs("skip")), (0.0, 6.0, 0.0), "{text}");
        assert!(job_seconds("submission") > 0.0, "{text}");
        assert_eq!((job_seconds("hand_out"), job_seconds("skip")), (0.0, 0.0), "{text}");
        assert!(
            job_seconds("hand_out") + job_seconds("submission") <= m["mirrorset_sqlite_writer_seconds_total{phase=\"jobs\"}"],
            "the jobs' statements are part of the jobs phase: {text}"
        );
        assert!(text.contains("# TYPE mirrorset_sqlite_writer_seconds_total counter\n"), "{text}");
        // Background checkpoints (`store::checkpoint`): a short WAL, none failed.
        let frames = m["mirrorset_sqlite_wal_frames"];
        assert!((0.0..16_384.0).contains(&frames), "{text}");
        assert_eq!(m["mirrorset_sqlite_checkpoint_failures_total"], 0.0, "{text}");
        // The syncing thread (`store::checkpoint::FileSyncer`) has synced the labeling writes'
        // WAL, and the database file the checkpoints copied the migrations and the import into.
        assert!(m["mirrorset_sqlite_wal_syncs_total"] >= 1.0, "{text}");
        assert!(text.contains("# TYPE mirrorset_sqlite_wal_syncs_total counter\n"), "{text}");
        assert!(m["mirrorset_sqlite_database_syncs_total"] >= 1.0, "{text}");
        assert!(text.contains("# TYPE mirrorset_sqlite_database_syncs_total counter\n"), "{text}");
    }
    assert_eq!(m.contains_key("mirrorset_sqlite_wal_frames"), b == Backend::Sqlite, "{text}");
    assert_eq!(m.contains_key("mirrorset_sqlite_wal_syncs_total"), b == Backend::Sqlite, "{text}");
    assert_eq!(m.contains_key("mirrorset_sqlite_database_syncs_total"), b == Backend::Sqlite, "{text}");
    assert_eq!(m.contains_key("mirrorset_sqlite_writer_seconds_total{phase=\"jobs\"}"), b == Backend::Sqlite, "{text}");
    for (pool, max) in pools {
        assert_eq!(m[&format!("mirrorset_db_pool_max_connections{{pool=\"{pool}\"}}")], *max, "{text}");
        let open = m[&format!("mirrorset_db_pool_connections{{pool=\"{pool}\"}}")];
        let idle = m[&format!("mirrorset_db_pool_idle_connections{{pool=\"{pool}\"}}")];
        assert!(open >= 1.0 && open <= *max && idle <= open, "{pool}: {text}");
    }
}

/// The SQLite writer's queue: while another connection holds the database's write lock, two
/// admins' requests to create a user wait on the single writer (one holds it, one waits for
/// it), and the gauge says so; when the lock goes, both are served and the gauge falls to 0.
/// (A user's creation starts its transaction with the INSERT, so SQLite waits out its busy
/// timeout instead of refusing at once.)
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sqlite_writes_in_flight_shows_the_writer_queue() {
    use sqlx::{Connection, Executor};
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin().await;
    let gauge = |m: &HashMap<String, f64>| m["mirrorset_sqlite_writes_in_flight"];
    assert_eq!(gauge(&scrape(&admin).await.1), 0.0);

    // Hold the write lock from outside (well within the server's 10 s busy timeout).
    let mut lock = sqlx::SqliteConnection::connect(server.database_url()).await.expect("open the database");
    lock.execute("BEGIN IMMEDIATE").await.expect("take the write lock");
    let mut waiting = Vec::new();
    for name in ["wa", "wb"] {
        let c = server.admin().await;
        waiting.push(tokio::spawn(async move {
            let body = NewUser { username: name.into(), password: password_for(name), role: Role::Labeler };
            c.post_json_raw("/api/users", &body).await
        }));
    }
    let t = std::time::Instant::now();
    let mut seen = 0.0;
    while t.elapsed() < std::time::Duration::from_secs(5) {
        seen = gauge(&scrape(&admin).await.1);
        assert!(seen <= 2.0, "{seen} writes in flight for two requests");
        if seen == 2.0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let finished: Vec<bool> = waiting.iter().map(|w| w.is_finished()).collect();
    assert_eq!(seen, 2.0, "the two waiting writes never showed (finished: {finished:?})");
    lock.execute("ROLLBACK").await.expect("release the write lock");
    for w in waiting {
        w.await.unwrap().assert_status(201);
    }
    assert_eq!(gauge(&scrape(&admin).await.1), 0.0);
    let _ = lock.close().await;
}

/// `--metrics-token`: /metrics answers only the bearer of that token (401 in the API's error
/// shape otherwise); the probes stay open.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn metrics_token_guards_the_metrics() {
    let server = TestServer::start_with_args(Backend::Sqlite, &["--metrics-token", "scrape-me"]).await;
    server.client().get_raw("/metrics").await.assert_error(401, "unauthorized");
    Client::with_bearer(server.base_url(), "scrape-m").get_raw("/metrics").await.assert_error(401, "unauthorized");
    // A user's session is not the scraper's token either.
    server.admin().await.get_raw("/metrics").await.assert_error(401, "unauthorized");
    let (text, _) = scrape(&Client::with_bearer(server.base_url(), "scrape-me")).await;
    assert!(text.contains("mirrorset_labels_submitted_total 0\n"), "{text}");
    server.client().get_raw("/health").await.assert_status(200);
    server.client().get_raw("/ready").await.assert_status(200);
}

async fn log_format_json_writes_json_lines(b: Backend) {
    let server = TestServer::start_with_args(b, &["--log-format", "json"]).await;
    let anon = server.client();
    anon.get_raw("/health").await.assert_status(200);
    let log = server.log();
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "the server logged nothing");
    let mut listening = false;
    for line in &lines {
        let v: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line:?}\n{log}"));
        assert!(v["timestamp"].is_string() && v["level"].is_string(), "{line}");
        listening |= v["message"].as_str().is_some_and(|m| m.starts_with("Mirrorset is listening on http://127.0.0.1:"));
    }
    assert!(listening, "no \"listening\" event in\n{log}");
}
