//! Limits on imports: one at a time per project, a few at a time per server, a disk reserve,
//! and an idle timeout on the upload body.
use std::path::Path;
use std::time::{Duration, Instant};

use app::api_types::*;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::common::*;

both_backends!(one_import_per_project_and_a_few_per_server, idle_upload_times_out, disk_reserve_refuses_uploads);

/// Spool files of uploads in progress (every instance directory; the `alive` markers aside).
fn spool_files(data_dir: &Path) -> usize {
    let Ok(dirs) = std::fs::read_dir(data_dir.join("spool")) else { return 0 };
    dirs.flatten()
        .filter(|d| d.path().is_dir())
        .flat_map(|d| std::fs::read_dir(d.path()).into_iter().flatten().flatten())
        .filter(|f| f.file_name() != "alive")
        .count()
}

async fn wait_for_spool_files(data_dir: &Path, n: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while spool_files(data_dir) < n {
        assert!(Instant::now() < deadline, "the server never started spooling {n} upload(s)");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An import whose body the test sends piece by piece; `finish` sends the rest.
struct SlowImport {
    tx: Option<mpsc::Sender<Vec<u8>>>,
    rest: Vec<u8>,
    response: tokio::task::JoinHandle<(u16, String)>,
}

impl SlowImport {
    fn start(base: &str, token: &str, pid: i64, body: String) -> SlowImport {
        let (tx, rx) = mpsc::channel::<Vec<u8>>(4);
        let split = body.len() / 2;
        let (first, rest) = body.as_bytes().split_at(split);
        tx.try_send(first.to_vec()).unwrap();
        let stream = futures::stream::unfold(rx, |mut rx| async move {
            rx.recv().await.map(|b| (Ok::<_, std::io::Error>(b), rx))
        });
        let req = reqwest::Client::new()
            .post(format!("{base}/api/projects/{pid}/import?format=jsonl"))
            .bearer_auth(token)
            .body(reqwest::Body::wrap_stream(stream));
        let response = tokio::spawn(async move {
            let resp = req.send().await.expect("the slow import's request");
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        });
        SlowImport { tx: Some(tx), rest: rest.to_vec(), response }
    }

    async fn finish(mut self) -> ImportReport {
        let tx = self.tx.take().unwrap();
        tx.send(std::mem::take(&mut self.rest)).await.unwrap();
        drop(tx);
        let (status, text) = self.response.await.unwrap();
        assert_eq!(status, 200, "the slow import: {text}");
        serde_json::from_str(&text).unwrap()
    }
}

fn texts(prefix: &str, n: usize) -> String {
    jsonl(&(0..n).map(|i| json!({"id": format!("{prefix}{i}"), "text": format!("{prefix} text {i}")})).collect::<Vec<_>>())
}

async fn one_import_per_project_and_a_few_per_server(b: Backend) {
    let server = TestServer::start_with_args(b, &["--max-concurrent-imports", "2"]).await;
    let admin = server.admin().await;
    let token = admin.create_token("imports").await.secret;
    let p1 = admin.simple_project("one", 1, 600).await.id;
    let p2 = admin.simple_project("two", 1, 600).await.id;
    let p3 = admin.simple_project("three", 1, 600).await.id;

    // An import of p1 is running (its body still arriving).
    let a = SlowImport::start(server.base_url(), &token, p1, texts("a", 50));
    wait_for_spool_files(server.data_dir(), 1).await;
    // A second import of p1 waits its turn: 409, saying why.
    let resp = admin.import_raw(p1, "jsonl", texts("b", 3).into_bytes()).await;
    let err = resp.assert_error(409, "conflict");
    assert!(err.message.contains("another import into this project is still running"), "{err:?}");

    // Another project's import takes the second slot; a third import waits: 503, Retry-After.
    let c = SlowImport::start(server.base_url(), &token, p2, texts("c", 40));
    wait_for_spool_files(server.data_dir(), 2).await;
    let resp = admin.import_raw(p3, "jsonl", texts("d", 3).into_bytes()).await;
    let err = resp.assert_error(503, "unavailable");
    assert!(err.message.contains("as many imports as it allows"), "{err:?}");
    assert_eq!(resp.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("30"), "{:?}", resp.headers);

    // Both running imports complete; then the others go through.
    assert_eq!(a.finish().await.imported, 50);
    assert_eq!(c.finish().await.imported, 40);
    assert_eq!(admin.import(p1, "jsonl", texts("b", 3)).await.imported, 3);
    assert_eq!(admin.import(p3, "jsonl", texts("d", 3)).await.imported, 3);
    assert_eq!(admin.summary(p1).await.item_count, 53);
    assert_eq!(admin.summary(p2).await.item_count, 40);
    assert_eq!(spool_files(server.data_dir()), 0, "no spool file is left behind");
}

async fn idle_upload_times_out(b: Backend) {
    let server = TestServer::start_with_args(b, &["--body-idle-timeout", "1"]).await;
    let admin = server.admin().await;
    let token = admin.create_token("slow").await.secret;
    let pid = admin.simple_project("slow", 1, 600).await.id;

    // A client that announces 100,000 bytes, sends a few, and goes quiet.
    let addr = server.base_url().trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /api/projects/{pid}/import?format=jsonl HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: 100000\r\n\r\n{{\"text\": \"a\"}}\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let t = Instant::now();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer)).await;
    assert!(read.is_ok(), "the server neither answered nor closed within 20 s");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    assert!(t.elapsed() < Duration::from_secs(10), "answered after {:?}", t.elapsed());
    assert_eq!(spool_files(server.data_dir()), 0, "the spool file is removed");
    // The import ended: the project takes the next one at once, and holds only that.
    assert_eq!(admin.import(pid, "jsonl", texts("n", 2)).await.imported, 2);
    assert_eq!(admin.summary(pid).await.item_count, 2);
}

async fn disk_reserve_refuses_uploads(b: Backend) {
    // A reserve larger than any disk: nothing fits.
    let server = TestServer::start_with_args(b, &["--min-free-disk-mb", "1000000000"]).await;
    let admin = server.admin().await;
    let token = admin.create_token("disk").await.secret;
    let pid = admin.simple_project("full disk", 1, 600).await.id;

    // With a Content-Length: refused before a byte is spooled.
    let resp = admin.import_raw(pid, "jsonl", texts("x", 10).into_bytes()).await;
    let err = resp.assert_error(507, "insufficient_storage");
    assert!(err.message.contains("does not fit"), "{err:?}");
    let png_bytes = png(4, 4, 1);
    let boundary = "xyzzy";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&png_bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let ct = format!("multipart/form-data; boundary={boundary}");
    let resp = admin.raw(reqwest::Method::POST, &format!("/api/projects/{pid}/images"), Some((body, ct.as_str()))).await;
    resp.assert_error(507, "insufficient_storage");

    // Without one (chunked): spooling stops once the disk is found below the reserve.
    let chunk = texts("y", 300_000).into_bytes();
    assert!(chunk.len() > 8 * 1024 * 1024, "over the size checked between two looks at the disk");
    let stream = futures::stream::iter(chunk.chunks(64 * 1024).map(|c| Ok::<_, std::io::Error>(c.to_vec())).collect::<Vec<_>>());
    let resp = reqwest::Client::new()
        .post(server.url(&format!("/api/projects/{pid}/import?format=jsonl")))
        .bearer_auth(&token)
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await;
    // The server may answer before reading the whole body and close the connection.
    if let Ok(resp) = resp {
        assert_eq!(resp.status().as_u16(), 507);
        let text = resp.text().await.unwrap_or_default();
        assert!(text.contains("almost full"), "{text}");
    }
    assert_eq!(spool_files(server.data_dir()), 0);
    assert_eq!(admin.summary(pid).await.item_count, 0);
}
