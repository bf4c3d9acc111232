//! Imports stay all or nothing when the server stops under them: SIGTERM cancels them (and the
//! server exits within its shutdown deadline), SIGKILL leaves invisible rows that the next
//! start removes. A backup taken mid-import (`mirrorset backup`) is such a state too.
use std::time::{Duration, Instant};

use serde_json::json;

use crate::common::*;

both_backends!(sigterm_mid_import_cancels_it_within_the_deadline, sigkill_mid_import_is_all_or_nothing);

/// Runs one SQL count against the server's database directly.
async fn count(server: &TestServer, sql: &str) -> i64 {
    use sqlx::Connection;
    match server.backend {
        Backend::Sqlite => {
            let mut c = sqlx::SqliteConnection::connect(server.database_url()).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
        Backend::Postgres => {
            let mut c = sqlx::PgConnection::connect(server.database_url()).await.unwrap();
            sqlx::query_scalar(sql).fetch_one(&mut c).await.unwrap()
        }
    }
}

fn big_file(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 60);
    for i in 0..n {
        out.extend_from_slice(json!({"id": format!("big-{i}"), "text": format!("a large import, item {i}")}).to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// Starts importing `body` into the project; returns the (status, body) of the answer, or
/// None if the connection broke.
fn import_in_background(base: &str, token: &str, pid: i64, body: Vec<u8>) -> tokio::task::JoinHandle<Option<(u16, String)>> {
    let req = reqwest::Client::new()
        .post(format!("{base}/api/projects/{pid}/import?format=jsonl"))
        .bearer_auth(token)
        .body(body);
    tokio::spawn(async move {
        let resp = req.send().await.ok()?;
        let status = resp.status().as_u16();
        Some((status, resp.text().await.ok()?))
    })
}

/// Waits until the import has written pending rows (it is in its insertion pass).
async fn wait_for_pending_rows(server: &TestServer, pid: i64) {
    let deadline = Instant::now() + Duration::from_secs(90);
    let sql = format!("SELECT COUNT(*) FROM items WHERE project_id = {pid}");
    while count(server, &sql).await == 0 {
        assert!(Instant::now() < deadline, "the import never reached its insertion pass");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

const LINES: usize = 200_000;

async fn sigterm_mid_import_cancels_it_within_the_deadline(b: Backend) {
    let mut server = TestServer::start_with_args(b, &["--shutdown-timeout", "8"]).await;
    let admin = server.admin().await;
    let token = admin.create_token("import").await.secret;
    let pid = admin.simple_project("stopped import", 1, 600).await.id;
    admin.import_texts(pid, "before", 10).await;
    let other = admin.simple_project("pending", 1, 600).await.id;

    let import = import_in_background(server.base_url(), &token, other, big_file(LINES));
    wait_for_pending_rows(&server, other).await;
    let took = server.stop_within(Duration::from_secs(20)).expect("the server exits by itself after SIGTERM");
    assert!(took < Duration::from_secs(8 + 2), "the server took {took:?} to stop; its deadline is 8 s");
    // The import was answered before the server exited: cancelled, nothing imported.
    let (status, body) = import.await.unwrap().expect("the import is answered before the server exits");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("\"code\":\"unavailable\"") && body.contains("nothing was imported"), "{body}");

    server.start_again().await;
    let admin = server.admin().await;
    assert_eq!(admin.summary(other).await.item_count, 0);
    assert!(admin.export_jsonl(other, false).await.is_empty());
    assert_eq!(admin.summary(pid).await.item_count, 10, "items committed before stay");
    assert_eq!(count(&server, &format!("SELECT COUNT(*) FROM items WHERE project_id = {other}")).await, 0, "its rows are gone");
    assert_eq!(count(&server, "SELECT COUNT(*) FROM imports WHERE state = 'cancelled'").await, 1);
    // Nothing blocks the next import of that project.
    assert_eq!(admin.import(other, "jsonl", big_file(3)).await.imported, 3);
}

async fn sigkill_mid_import_is_all_or_nothing(b: Backend) {
    let mut server = TestServer::start(b).await;
    let admin = server.admin().await;
    let token = admin.create_token("import").await.secret;
    let pid = admin.simple_project("killed import", 1, 600).await.id;
    let import = import_in_background(server.base_url(), &token, pid, big_file(LINES));
    wait_for_pending_rows(&server, pid).await;
    server.crash_restart().await;
    assert!(import.await.unwrap().is_none(), "the import died with the server");

    let admin = server.admin().await;
    let summary = admin.summary(pid).await;
    assert_eq!(summary.item_count, 0, "nothing of a killed import is visible");
    assert!(admin.export_jsonl(pid, false).await.is_empty());
    assert!(admin.next(pid).await.item.is_none());
    match b {
        Backend::Sqlite => {
            // One server per SQLite file: the start removed the killed import's rows at once.
            assert_eq!(count(&server, &format!("SELECT COUNT(*) FROM items WHERE project_id = {pid}")).await, 0);
            assert_eq!(admin.import(pid, "jsonl", big_file(3)).await.imported, 3);
        }
        Backend::Postgres => {
            // Another instance might be the one importing: the import is taken for dead only
            // once its heartbeat is 2 minutes old; until then the project says why it waits.
            let resp = admin.import_raw(pid, "jsonl", big_file(3)).await;
            let err = resp.assert_error(409, "conflict");
            assert!(err.message.contains("cleaned up within 2 minutes"), "{err:?}");
        }
    }
}

/// A backup taken while an import inserts holds its invisible rows, like a server killed then;
/// a server started on the copy removes them: the copy has none of the import, the source all.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_backup_mid_import_holds_none_of_it_once_served_on_sqlite() {
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin().await;
    let token = admin.create_token("import").await.secret;
    let pid = admin.simple_project("imported while backed up", 1, 600).await.id;
    let import = import_in_background(server.base_url(), &token, pid, big_file(LINES));
    wait_for_pending_rows(&server, pid).await;
    let dir = tempfile::tempdir().unwrap();
    let copy_dir = dir.path().join("copy");
    let (url, data_dir, into) = (server.database_url().to_string(), server.data_dir().to_path_buf(), copy_dir.clone());
    let out = tokio::task::spawn_blocking(move || run_backup(&url, &data_dir, &into)).await.unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (status, body) = import.await.unwrap().expect("the import answered");
    assert_eq!(status, 200, "{body}");

    // The copy caught the import halfway: some of its rows, not all.
    let copy = server.serving_a_copy(&copy_dir).await;
    let in_copy = count(&copy, &format!("SELECT COUNT(*) FROM items WHERE project_id = {pid}")).await;
    assert_eq!(in_copy, 0, "the start on the copy left the unfinished import's rows");
    let summary = String::from_utf8_lossy(&out.stdout);
    let items_backed_up: i64 = summary.split(" items,").next().and_then(|h| h.rsplit(' ').next()).unwrap().parse().unwrap();
    assert!(
        items_backed_up > 0 && items_backed_up < LINES as i64,
        "the backup did not fall inside the import ({items_backed_up} items of {LINES}): {summary}"
    );
    let copy_admin = copy.admin().await;
    assert_eq!(copy_admin.summary(pid).await.item_count, 0);
    assert_eq!(copy_admin.import(pid, "jsonl", big_file(3)).await.imported, 3, "the copy takes imports");
    assert_eq!(admin.summary(pid).await.item_count, LINES as i64, "the source has all of it");
}

/// A second `mirrorset serve` on a SQLite database that a server serves refuses to start,
/// naming the running server's process: started, it would have removed the rows of the
/// import the first one is running (as a server does at startup after a crash) and handed out
/// the items on its labelers' screens. Once the first server is gone, however it went (here
/// SIGKILL), a server starts on the database again.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_second_server_on_a_served_sqlite_database_refuses_to_start_and_the_running_import_completes() {
    let mut server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin().await;
    let token = admin.create_token("import").await.secret;
    let pid = admin.simple_project("imported beside a second server", 1, 600).await.id;
    let import = import_in_background(server.base_url(), &token, pid, big_file(LINES));
    wait_for_pending_rows(&server, pid).await;

    let mut second = std::process::Command::new(server_binary())
        .args(["serve", "--addr", &format!("127.0.0.1:{}", free_port()), "--database-url", server.database_url()])
        .arg("--data-dir")
        .arg(server.data_dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start a second mirrorset serve");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = second.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            second.kill().unwrap();
            panic!("the second server is still running beside the first");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let out = std::process::Output { status, stdout: Vec::new(), stderr: second.wait_with_output().unwrap().stderr };
    assert_eq!(out.status.code(), Some(1));
    let database = server.database_url().trim_start_matches("sqlite://").to_string();
    assert_eq!(
        error_line(&out),
        format!(
            "error: another mirrorset server (process {}) is serving {database}: stop it first. One server serves a \
             SQLite database (the labelers' leases are in its memory); for several instances use PostgreSQL \
             (--database-url postgres://...)",
            server.pid().expect("the first server runs")
        )
    );

    let (status, body) = import.await.unwrap().expect("the import answered");
    assert_eq!(status, 200, "{body}");
    assert_eq!(admin.summary(pid).await.item_count, LINES as i64, "the running import lost rows");

    server.kill();
    server.start_again().await;
    assert_eq!(server.admin().await.summary(pid).await.item_count, LINES as i64);
}
