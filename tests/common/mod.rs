//! The test harness: spawns the REAL `mirrorset` binary on a free port with a fresh database
//! (SQLite file or a new PostgreSQL database) and a temporary data directory, and talks HTTP
//! to it, as a user's script or the browser would.
//!
//! - `TestServer::start(Backend::Sqlite | Backend::Postgres)` starts a server and waits for
//!   `GET /api/health`; dropping it kills the server (and drops the PostgreSQL database).
//! - `restart()` / `crash_restart()` stop the server (SIGTERM / SIGKILL) and start it again on
//!   the same port, database and data directory.
//! - `Client` is a cookie-session client (it echoes the CSRF token from `Me` on every
//!   non-GET) or a bearer-token client, with typed helpers returning `app::api_types` types
//!   and raw helpers for asserting error statuses and bodies.
//!
//! Environment:
//! - `MIRRORSET_TEST_PG_URL`: a PostgreSQL superuser URL (able to CREATE DATABASE), e.g.
//!   `postgres://postgres@127.0.0.1:25432/postgres`. `scripts/test.sh` starts a private cluster
//!   and sets it. PostgreSQL tests FAIL without it; they never skip.
//! - `MIRRORSET_TEST_BIN`, `MIRRORSET_TEST_SITE_ROOT`: override the binary (e.g.
//!   `target/release/mirrorset`) / the site directory.
//! - `MIRRORSET_TEST_KEEP=1`: keep the temporary directory and PostgreSQL database of each
//!   server for inspection (their paths are printed).
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use app::api_types::*;
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

/// How long a server may take to answer `/api/health` after it is spawned.
pub const START_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs each named `async fn NAME(backend: Backend)` on both backends, as the tests
/// `NAME::sqlite` and `NAME::postgres` (so `cargo test --test api sqlite` selects one backend).
/// Declare the module with `#[macro_use]` so the macro is in scope in the modules after it.
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn sqlite() {
                    super::$name($crate::common::Backend::Sqlite).await
                }
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn postgres() {
                    super::$name($crate::common::Backend::Postgres).await
                }
            }
        )*
    };
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("server/ has a parent").to_path_buf()
}

fn truthy(var: &str) -> bool {
    matches!(std::env::var(var).as_deref(), Ok(v) if !v.is_empty() && v != "0" && v != "false")
}

/// Cargo's target directory (`CARGO_TARGET_DIR`, else `<workspace>/target`).
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// The server binary under test.
pub fn server_binary() -> PathBuf {
    if let Ok(bin) = std::env::var("MIRRORSET_TEST_BIN") {
        return PathBuf::from(bin);
    }
    PathBuf::from(env!("CARGO_BIN_EXE_mirrorset"))
}

/// The site directory (scripts/build-site.sh's output) the server serves.
pub fn site_root() -> PathBuf {
    match std::env::var("MIRRORSET_TEST_SITE_ROOT") {
        Ok(dir) => PathBuf::from(dir),
        Err(_) => workspace_root().join("target/site"),
    }
}

/// `mirrorset backup --to <to>` of a SQLite database and its data directory (owned arguments
/// of `TestServer::backup_to`, for a blocking task beside async labelers).
pub fn run_backup(database_url: &str, data_dir: &Path, to: &Path) -> std::process::Output {
    Command::new(server_binary())
        .arg("backup")
        .arg("--to")
        .arg(to)
        .arg("--database-url")
        .arg(database_url)
        .arg("--data-dir")
        .arg(data_dir)
        .output()
        .expect("run mirrorset backup")
}

/// The last line a command wrote to stderr: `error: <message>` when a `mirrorset` command fails.
pub fn error_line(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).lines().last().unwrap_or_default().to_string()
}

pub fn random_hex(bytes: usize) -> String {
    let mut rng = rand::thread_rng();
    (0..bytes).map(|_| format!("{:02x}", rng.gen::<u8>())).collect()
}

/// The password `TestServer::user` gives a user: `pw-{username}-secret`.
pub fn password_for(username: &str) -> String {
    format!("pw-{username}-secret")
}

/// A fresh id for `SubmitAnnotation::client_id`.
pub fn client_id() -> String {
    format!("test-{}", random_hex(12))
}

/// A free TCP port on 127.0.0.1 (the OS picks one; the listener is closed again).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0").local_addr().unwrap().port()
}

/// A PostgreSQL database made for one server.
struct PgDatabase {
    admin_url: String,
    name: String,
    url: String,
}

fn pg_admin_url() -> String {
    match std::env::var("MIRRORSET_TEST_PG_URL") {
        Ok(url) if !url.trim().is_empty() => url,
        _ => panic!(
            "MIRRORSET_TEST_PG_URL is not set, so the PostgreSQL tests cannot run. Run \
             `scripts/test.sh`, which starts a private PostgreSQL cluster and sets it, or point it at a \
             superuser URL such as postgres://postgres@127.0.0.1:25432/postgres. (The PostgreSQL \
             tests fail rather than skip, so a green run always means both backends passed.)"
        ),
    }
}

async fn pg_execute(admin_url: &str, sql: &str) -> Result<(), sqlx::Error> {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url).await?;
    sqlx::query(sql).execute(&mut conn).await?;
    conn.close().await?;
    Ok(())
}

impl PgDatabase {
    async fn create() -> PgDatabase {
        let admin_url = pg_admin_url();
        let name = format!("mirrorset_test_{}", random_hex(8));
        pg_execute(&admin_url, &format!("CREATE DATABASE \"{name}\""))
            .await
            .unwrap_or_else(|e| panic!("CREATE DATABASE {name} via MIRRORSET_TEST_PG_URL failed: {e}"));
        let mut url = reqwest::Url::parse(&admin_url).expect("MIRRORSET_TEST_PG_URL is a URL");
        url.set_path(&format!("/{name}"));
        PgDatabase { admin_url, name, url: url.to_string() }
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if truthy("MIRRORSET_TEST_KEEP") {
            eprintln!("[harness] kept PostgreSQL database {}", self.url);
            return;
        }
        // Drop may run inside a Tokio runtime: do the async work on a thread of its own.
        let admin_url = self.admin_url.clone();
        let sql = format!("DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)", self.name);
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().ok()?;
            rt.block_on(pg_execute(&admin_url, &sql)).ok()
        })
        .join();
    }
}

pub struct TestServer {
    pub backend: Backend,
    child: Option<Child>,
    port: u16,
    base_url: String,
    database_url: String,
    admin_password: String,
    data_dir: PathBuf,
    log_path: PathBuf,
    /// Keeps the directory (database file, data dir, log) alive; `None` when kept on purpose.
    dir: Option<tempfile::TempDir>,
    dir_path: PathBuf,
    pg: Option<PgDatabase>,
    /// Extra arguments to `mirrorset serve` (e.g. `--demo`).
    extra_args: Vec<String>,
}

impl TestServer {
    pub async fn start(backend: Backend) -> TestServer {
        Self::start_with_args(backend, &[]).await
    }

    pub async fn start_with_args(backend: Backend, extra_args: &[&str]) -> TestServer {
        Self::start_in(backend, extra_args, &std::env::temp_dir()).await
    }

    /// A server whose directory (SQLite database, data dir, log) is created inside `parent`:
    /// e.g. a small tmpfs, to fill its disk (`storage_faults.rs`).
    pub async fn start_in(backend: Backend, extra_args: &[&str], parent: &Path) -> TestServer {
        let dir = tempfile::Builder::new().prefix("mirrorset-test-").tempdir_in(parent).expect("tempdir");
        let dir_path = dir.path().to_path_buf();
        let data_dir = dir_path.join("data");
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        let (database_url, pg) = match backend {
            Backend::Sqlite => (format!("sqlite://{}", dir_path.join("mirrorset.db").display()), None),
            Backend::Postgres => {
                let db = PgDatabase::create().await;
                (db.url.clone(), Some(db))
            }
        };
        let dir = if truthy("MIRRORSET_TEST_KEEP") {
            eprintln!("[harness] keeping {}", dir_path.display());
            let _ = dir.keep();
            None
        } else {
            Some(dir)
        };
        let port = free_port();
        let mut server = TestServer {
            backend,
            child: None,
            port,
            base_url: format!("http://127.0.0.1:{port}"),
            database_url,
            admin_password: format!("admin-{}", random_hex(12)),
            data_dir,
            log_path: dir_path.join("server.log"),
            dir,
            dir_path,
            pg,
            extra_args: extra_args.iter().map(|s| s.to_string()).collect(),
        };
        server.spawn_and_wait().await;
        server
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base_url, path)
    }
    pub fn admin_password(&self) -> &str {
        &self.admin_password
    }
    pub fn database_url(&self) -> &str {
        &self.database_url
    }
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }
    /// The temporary directory holding the data dir, the SQLite file and the server log.
    pub fn dir(&self) -> &Path {
        &self.dir_path
    }
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(|c| c.id())
    }

    /// Everything the server printed so far (all its starts).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn log_tail(&self, max: u64) -> String {
        let Ok(mut f) = File::open(&self.log_path) else { return String::from("(no log)") };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(max)));
        let mut s = String::new();
        let _ = f.read_to_string(&mut s);
        s
    }

    fn spawn(&mut self) {
        let bin = server_binary();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_path)
            .expect("open server log");
        let mut cmd = Command::new(&bin);
        cmd.arg("serve")
            .arg("--addr")
            .arg(format!("127.0.0.1:{}", self.port))
            .arg("--database-url")
            .arg(&self.database_url)
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(&self.extra_args)
            .current_dir(workspace_root())
            .env("MIRRORSET_ADMIN_PASSWORD", &self.admin_password)
            .env(
                "RUST_LOG",
                std::env::var("MIRRORSET_TEST_LOG").unwrap_or_else(|_| "info".to_string()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        // The built site, unless the test serves a site of its own.
        if !self.extra_args.iter().any(|a| a == "--site-root") {
            cmd.arg("--site-root").arg(site_root());
        }
        let child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {}: {e}", bin.display()));
        self.child = Some(child);
    }

    async fn wait_healthy(&mut self) -> Result<(), String> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        let deadline = Instant::now() + START_TIMEOUT;
        let url = self.url("/api/health");
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Ok(Some(status)) = child.try_wait() {
                    self.child = None;
                    return Err(format!("the server exited during start-up ({status})"));
                }
            }
            if let Ok(resp) = http.get(&url).send().await {
                let status = resp.status();
                let body = resp.text().await.unwrap_or_default();
                if status == StatusCode::OK {
                    let v: Value = serde_json::from_str(&body)
                        .map_err(|e| format!("/api/health answered 200 but not JSON ({e}): {body}"))?;
                    if v["status"] != "ok" {
                        return Err(format!("/api/health answered {body}, expected {{\"status\":\"ok\"}}"));
                    }
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                return Err(format!("no 200 from {url} within {START_TIMEOUT:?}"));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn spawn_and_wait(&mut self) {
        // The port was free when chosen; another process may have taken it since. Try a few.
        let mut last_err = String::new();
        for attempt in 0..3 {
            self.spawn();
            match self.wait_healthy().await {
                Ok(()) => return,
                Err(e) => {
                    last_err = e;
                    self.kill();
                    let in_use = self.log_tail(2000).to_lowercase().contains("address already in use");
                    if in_use && attempt < 2 {
                        self.port = free_port();
                        self.base_url = format!("http://127.0.0.1:{}", self.port);
                        continue;
                    }
                    break;
                }
            }
        }
        panic!(
            "the server did not start ({backend:?}, {db}): {last_err}\n--- server log ({log}) ---\n{tail}",
            backend = self.backend,
            db = self.database_url,
            log = self.log_path.display(),
            tail = self.log_tail(8000)
        );
    }

    /// SIGKILL, and reap. Nothing is flushed or shut down cleanly: a crash.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then up to 10 s for a clean shutdown, then SIGKILL.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, then waits up to `limit` for the server to exit by itself: returns how long it
    /// took, or None if it had to be killed (SIGKILL) at the limit. Start it again with
    /// `start_again`.
    pub fn stop_within(&mut self, limit: Duration) -> Option<Duration> {
        let mut child = self.child.take()?;
        let t = Instant::now();
        let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
        while t.elapsed() < limit {
            if let Ok(Some(_)) = child.try_wait() {
                return Some(t.elapsed());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// Starts a stopped server again on the same port, database and data directory.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "the server is still running");
        self.spawn_and_wait().await;
    }

    /// A clean stop and a new start on the same port, database and data directory.
    pub async fn restart(&mut self) {
        self.stop();
        self.spawn_and_wait().await;
    }

    /// SIGKILL and a new start on the same port, database and data directory.
    pub async fn crash_restart(&mut self) {
        self.kill();
        self.spawn_and_wait().await;
    }

    /// Runs one SQL statement on the server's database behind its back (SQLite file or
    /// PostgreSQL database), e.g. to move a timestamp into the past; returns the rows affected.
    pub async fn exec_sql(&self, sql: &str) -> u64 {
        self.try_exec_sql(sql).await.unwrap_or_else(|e| panic!("{sql}: {e}"))
    }

    /// Like `exec_sql`, but the database's refusal is returned (as its message), for tests
    /// that expect one.
    pub async fn try_exec_sql(&self, sql: &str) -> Result<u64, String> {
        use sqlx::Connection;
        let affected = if self.database_url.starts_with("sqlite:") {
            let mut conn = sqlx::SqliteConnection::connect(&self.database_url).await.expect("open the SQLite database");
            let done = sqlx::query(sql).execute(&mut conn).await;
            let _ = conn.close().await;
            done.map(|r| r.rows_affected())
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.database_url).await.expect("connect to the PostgreSQL database");
            let done = sqlx::query(sql).execute(&mut conn).await;
            let _ = conn.close().await;
            done.map(|r| r.rows_affected())
        };
        affected.map_err(|e| e.to_string())
    }

    /// Another `mirrorset serve` on this server's database (PostgreSQL: several instances behind
    /// a load balancer), with its own port, data directory and log; the database stays owned
    /// (and dropped) by `self`.
    pub async fn another_instance(&self) -> TestServer {
        self.another_server(self.database_url.clone(), None).await
    }

    /// `mirrorset backup --to <to>` of this server's database and data directory, run as an
    /// operator runs it (a process of its own, beside the running server).
    pub fn backup_to(&self, to: &Path) -> std::process::Output {
        run_backup(&self.database_url, &self.data_dir, to)
    }

    /// A `mirrorset serve` on a copy of this server's files (`mirrorset backup`'s directory:
    /// `mirrorset.db` and the images), with its own port and log; the same admin password.
    pub async fn serving_a_copy(&self, copy: &Path) -> TestServer {
        self.another_server(format!("sqlite://{}", copy.join("mirrorset.db").display()), Some(copy.to_path_buf())).await
    }

    async fn another_server(&self, database_url: String, data_dir: Option<PathBuf>) -> TestServer {
        let dir = tempfile::Builder::new().prefix("mirrorset-test-").tempdir().expect("tempdir");
        let dir_path = dir.path().to_path_buf();
        let data_dir = data_dir.unwrap_or_else(|| dir_path.join("data"));
        std::fs::create_dir_all(&data_dir).expect("create data dir");
        let port = free_port();
        let mut server = TestServer {
            backend: self.backend,
            child: None,
            port,
            base_url: format!("http://127.0.0.1:{port}"),
            database_url,
            admin_password: self.admin_password.clone(),
            data_dir,
            log_path: dir_path.join("server.log"),
            dir: Some(dir),
            dir_path,
            pg: None,
            extra_args: self.extra_args.clone(),
        };
        server.spawn_and_wait().await;
        server
    }

    /// A client that is not signed in.
    pub fn client(&self) -> Client {
        Client::new(&self.base_url)
    }

    /// A client signed in as `admin`.
    pub async fn admin(&self) -> Client {
        let c = self.client();
        c.login("admin", &self.admin_password).await;
        c
    }

    /// Creates a user as `admin` (with the password `password_for(username)`) and returns a
    /// client signed in as that user.
    pub async fn user(&self, admin: &Client, username: &str, role: Role) -> (User, Client) {
        let password = password_for(username);
        let user = admin.create_user(username, &password, role).await;
        let c = self.client();
        c.login(username, &password).await;
        (user, c)
    }

    /// Labelers `names`, each created as by `user` and made a member of project `pid`: their
    /// signed-in clients, in the order of `names`.
    pub async fn labelers_of(&self, admin: &Client, pid: i64, names: &[&str]) -> Vec<Client> {
        let mut clients = Vec::with_capacity(names.len());
        for name in names {
            let (u, c) = self.user(admin, name, Role::Labeler).await;
            admin.add_member(pid, u.id).await;
            clients.push(c);
        }
        clients
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!(
                "--- server log, last 6000 bytes ({}) ---\n{}\n--- end of server log ---",
                self.log_path.display(),
                self.log_tail(6000)
            );
        }
    }
}

/// A raw answer: status, headers and the whole body.
#[derive(Debug)]
pub struct RawResponse {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
    /// "METHOD path", for messages.
    pub what: String,
}

impl RawResponse {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!("{}: {} body is not the expected JSON ({e}): {}", self.what, self.status, self.text())
        })
    }

    /// Asserts 200 OK (not merely a success: the API says which) and decodes the body.
    pub fn ok<T: DeserializeOwned>(self) -> T {
        self.assert_status(200);
        self.json()
    }

    /// Asserts 201 Created (what the API answers when a POST creates a user, token or
    /// project) and decodes the body.
    pub fn created<T: DeserializeOwned>(self) -> T {
        self.assert_status(201);
        self.json()
    }

    pub fn assert_status(&self, status: u16) -> &Self {
        assert_eq!(self.status.as_u16(), status, "{}: wrong status; body: {}", self.what, self.text());
        self
    }

    /// Asserts the status and the error shape `{"error": {"code","message","details"}}`,
    /// with the given code and a non-empty message; returns the error.
    pub fn assert_error(&self, status: u16, code: &str) -> ErrorInfo {
        self.assert_status(status);
        let ct = self.headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
        assert!(
            ct.starts_with("application/json"),
            "{}: an error must be JSON, got content-type {ct:?}: {}",
            self.what,
            self.text()
        );
        let v: Value = self.json();
        let err = v.get("error").unwrap_or_else(|| {
            panic!("{}: error body has no \"error\" object: {}", self.what, self.text())
        });
        assert!(err.get("code").map_or(false, Value::is_string), "{}: error.code missing: {v}", self.what);
        assert!(err.get("message").map_or(false, Value::is_string), "{}: error.message missing: {v}", self.what);
        let body: ErrorBody = self.json();
        assert_eq!(body.error.code, code, "{}: wrong error code in {v}", self.what);
        assert!(!body.error.message.trim().is_empty(), "{}: empty error message in {v}", self.what);
        body.error
    }

}

/// An HTTP client of the API: a cookie session (with CSRF) or a bearer token.
pub struct Client {
    http: reqwest::Client,
    base_url: String,
    /// name → value, from `Set-Cookie` (a minimal jar: one host, session cookies).
    cookies: Mutex<BTreeMap<String, String>>,
    csrf: Mutex<Option<String>>,
    bearer: Option<String>,
    /// When false, the CSRF header is not sent (to test that the server refuses).
    send_csrf: bool,
}

impl Clone for Client {
    fn clone(&self) -> Self {
        Client {
            http: self.http.clone(),
            base_url: self.base_url.clone(),
            cookies: Mutex::new(self.cookies.lock().unwrap().clone()),
            csrf: Mutex::new(self.csrf.lock().unwrap().clone()),
            bearer: self.bearer.clone(),
            send_csrf: self.send_csrf,
        }
    }
}

impl Client {
    pub fn new(base_url: &str) -> Client {
        Client {
            http: reqwest::Client::builder()
                // Generous: a 500,000-line import in a debug build on a loaded 2-core CI machine
                // can take minutes; a hung server still fails the test.
                .timeout(Duration::from_secs(600))
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("reqwest client"),
            base_url: base_url.to_string(),
            cookies: Mutex::new(BTreeMap::new()),
            csrf: Mutex::new(None),
            bearer: None,
            send_csrf: true,
        }
    }

    /// A client that authenticates with `Authorization: Bearer <secret>` only.
    pub fn with_bearer(base_url: &str, secret: &str) -> Client {
        let mut c = Client::new(base_url);
        c.bearer = Some(secret.to_string());
        c
    }

    /// The same session (cookies), without the CSRF header.
    pub fn without_csrf(&self) -> Client {
        let mut c = self.clone();
        c.send_csrf = false;
        c
    }

    /// The same session, sending this CSRF token instead.
    pub fn with_csrf_token(&self, token: &str) -> Client {
        let c = self.clone();
        *c.csrf.lock().unwrap() = Some(token.to_string());
        c
    }

    /// The same credentials (cookies, CSRF token, bearer token) sent to another instance.
    pub fn on(&self, base_url: &str) -> Client {
        let mut c = self.clone();
        c.base_url = base_url.to_string();
        c
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }
    pub fn csrf_token(&self) -> Option<String> {
        self.csrf.lock().unwrap().clone()
    }
    pub fn has_session_cookie(&self) -> bool {
        !self.cookies.lock().unwrap().is_empty()
    }

    fn store_cookies(&self, headers: &HeaderMap) {
        let mut jar = self.cookies.lock().unwrap();
        for v in headers.get_all(SET_COOKIE) {
            let Ok(v) = v.to_str() else { continue };
            let pair = v.split(';').next().unwrap_or("").trim();
            let Some((name, value)) = pair.split_once('=') else { continue };
            let lower = v.to_ascii_lowercase();
            let expired = lower.contains("max-age=0") || lower.contains("expires=thu, 01 jan 1970");
            if expired || value.is_empty() {
                jar.remove(name.trim());
            } else {
                jar.insert(name.trim().to_string(), value.trim().to_string());
            }
        }
    }

    /// Sends a request with this client's credentials; never panics on an HTTP error status.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<(Vec<u8>, &str)>,
    ) -> Result<RawResponse, reqwest::Error> {
        let what = format!("{method} {path}");
        let mut req = self.http.request(method.clone(), format!("{}{}", self.base_url, path));
        if let Some(secret) = &self.bearer {
            req = req.bearer_auth(secret);
        }
        let cookie_header = {
            let jar = self.cookies.lock().unwrap();
            jar.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("; ")
        };
        if !cookie_header.is_empty() {
            req = req.header(COOKIE, HeaderValue::from_str(&cookie_header).unwrap());
        }
        if self.send_csrf && !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS) {
            if let Some(token) = self.csrf.lock().unwrap().clone() {
                if !token.is_empty() {
                    req = req.header("x-csrf-token", token);
                }
            }
        }
        if let Some((bytes, content_type)) = body {
            req = req.header(CONTENT_TYPE, content_type).body(bytes);
        }
        let resp = req.send().await?;
        self.store_cookies(resp.headers());
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.bytes().await?.to_vec();
        Ok(RawResponse { status, headers, body, what })
    }

    /// Like `send`, panicking on a transport error.
    pub async fn raw(&self, method: Method, path: &str, body: Option<(Vec<u8>, &str)>) -> RawResponse {
        let what = format!("{method} {path}");
        self.send(method, path, body).await.unwrap_or_else(|e| panic!("{what}: request failed: {e}"))
    }

    pub async fn get_raw(&self, path: &str) -> RawResponse {
        self.raw(Method::GET, path, None).await
    }

    pub async fn post_json_raw<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> RawResponse {
        let bytes = serde_json::to_vec(body).unwrap();
        self.raw(Method::POST, path, Some((bytes, "application/json"))).await
    }

    pub async fn patch_json_raw<B: Serialize + ?Sized>(&self, path: &str, body: &B) -> RawResponse {
        let bytes = serde_json::to_vec(body).unwrap();
        self.raw(Method::PATCH, path, Some((bytes, "application/json"))).await
    }

    pub async fn delete_raw(&self, path: &str) -> RawResponse {
        self.raw(Method::DELETE, path, None).await
    }

    pub async fn get<T: DeserializeOwned>(&self, path: &str) -> T {
        self.get_raw(path).await.ok()
    }

    /// POST expecting 200.
    pub async fn post<T: DeserializeOwned, B: Serialize + ?Sized>(&self, path: &str, body: &B) -> T {
        self.post_json_raw(path, body).await.ok()
    }

    /// POST expecting 201 (creations).
    pub async fn post_created<T: DeserializeOwned, B: Serialize + ?Sized>(&self, path: &str, body: &B) -> T {
        self.post_json_raw(path, body).await.created()
    }

    // ---- auth ----

    pub async fn login_raw(&self, username: &str, password: &str) -> RawResponse {
        self.post_json_raw("/api/auth/login", &LoginRequest { username: username.into(), password: password.into() })
            .await
    }

    /// Signs in and remembers the session cookie and the CSRF token.
    pub async fn login(&self, username: &str, password: &str) -> Me {
        let resp = self.login_raw(username, password).await;
        let me: Me = resp.ok();
        assert!(!me.csrf_token.is_empty(), "login returned an empty csrf_token");
        assert!(self.has_session_cookie(), "login set no session cookie");
        *self.csrf.lock().unwrap() = Some(me.csrf_token.clone());
        me
    }

    pub async fn logout(&self) {
        self.raw(Method::POST, "/api/auth/logout", None).await.assert_status(204);
    }

    pub async fn me(&self) -> Me {
        self.get("/api/me").await
    }

    pub async fn create_user(&self, username: &str, password: &str, role: Role) -> User {
        self.post_created("/api/users", &NewUser { username: username.into(), password: password.into(), role }).await
    }

    pub async fn create_token(&self, name: &str) -> CreatedToken {
        self.post_created("/api/tokens", &NewToken { name: name.into(), expires_in_days: None }).await
    }

    // ---- projects ----

    pub async fn create_project(&self, new: &NewProject) -> Project {
        self.post_created("/api/projects", new).await
    }

    /// A single-label project with labels pos (p) / neg (n) / other (o).
    pub async fn simple_project(&self, name: &str, overlap: i64, lease_seconds: i64) -> Project {
        self.create_project(&new_project(name, overlap, lease_seconds)).await
    }

    pub async fn project(&self, pid: i64) -> Project {
        self.get(&format!("/api/projects/{pid}")).await
    }

    pub async fn projects(&self) -> Vec<ProjectSummary> {
        self.get("/api/projects").await
    }

    pub async fn summary(&self, pid: i64) -> ProjectSummary {
        self.projects()
            .await
            .into_iter()
            .find(|s| s.project.id == pid)
            .unwrap_or_else(|| panic!("project {pid} not in GET /api/projects"))
    }

    pub async fn add_member(&self, pid: i64, user_id: i64) -> Vec<Member> {
        self.post(&format!("/api/projects/{pid}/members"), &AddMember { user_id: Some(user_id), username: None })
            .await
    }

    // ---- import ----

    pub async fn import_raw(&self, pid: i64, format: &str, body: Vec<u8>) -> RawResponse {
        let ct = match format {
            "jsonl" => "application/x-ndjson",
            "csv" => "text/csv",
            "zip" => "application/zip",
            _ => "application/octet-stream",
        };
        self.raw(Method::POST, &format!("/api/projects/{pid}/import?format={format}"), Some((body, ct))).await
    }

    pub async fn import(&self, pid: i64, format: &str, body: impl Into<Vec<u8>>) -> ImportReport {
        self.import_raw(pid, format, body.into()).await.ok()
    }

    /// Imports `n` text items `"{prefix} item {i}"` with ids `{prefix}-{i}`.
    pub async fn import_texts(&self, pid: i64, prefix: &str, n: usize) -> ImportReport {
        let body: String = (0..n)
            .map(|i| json!({"id": format!("{prefix}-{i}"), "text": format!("{prefix} item {i}")}).to_string() + "\n")
            .collect();
        let report = self.import(pid, "jsonl", body).await;
        assert_eq!(report.imported, n as i64, "import of {n} texts: {report:?}");
        report
    }

    // ---- labeling ----

    pub async fn next_raw(&self, pid: i64, exclude: &[i64]) -> RawResponse {
        self.post_json_raw(&format!("/api/projects/{pid}/next"), &NextRequest { exclude: exclude.to_vec() })
            .await
    }

    pub async fn next(&self, pid: i64) -> NextItem {
        self.next_raw(pid, &[]).await.ok()
    }

    pub async fn next_excluding(&self, pid: i64, exclude: &[i64]) -> NextItem {
        self.next_raw(pid, exclude).await.ok()
    }

    /// The id of the next item, or None.
    pub async fn next_id(&self, pid: i64) -> Option<i64> {
        self.next(pid).await.item.map(|i| i.id)
    }

    pub async fn submit_raw(&self, pid: i64, item_id: i64, labels: &[&str], client_id: &str) -> RawResponse {
        self.post_json_raw(
            &format!("/api/projects/{pid}/annotations"),
            &SubmitAnnotation {
                item_id,
                labels: labels.iter().map(|s| s.to_string()).collect(),
                time_ms: 1234,
                client_id: client_id.to_string(),
            },
        )
        .await
    }

    pub async fn submit(&self, pid: i64, item_id: i64, labels: &[&str]) -> Annotation {
        self.submit_raw(pid, item_id, labels, &client_id()).await.ok()
    }

    pub async fn skip_raw(&self, pid: i64, item_id: i64) -> RawResponse {
        self.post_json_raw(&format!("/api/projects/{pid}/skip"), &SkipItem { item_id }).await
    }

    pub async fn skip(&self, pid: i64, item_id: i64) {
        self.skip_raw(pid, item_id).await.assert_status(204);
    }

    pub async fn progress(&self, pid: i64) -> Progress {
        self.get(&format!("/api/projects/{pid}/progress")).await
    }

    // ---- export ----

    pub async fn export_raw(&self, pid: i64, format: &str, complete_only: bool) -> RawResponse {
        let q = if complete_only { "&complete_only=true" } else { "" };
        self.get_raw(&format!("/api/projects/{pid}/export?format={format}{q}")).await
    }

    /// The JSONL export, one JSON value per item.
    pub async fn export_jsonl(&self, pid: i64, complete_only: bool) -> Vec<Value> {
        let resp = self.export_raw(pid, "jsonl", complete_only).await;
        resp.assert_status(200);
        resp.text()
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("export line is not JSON ({e}): {l}")))
            .collect()
    }

    /// The CSV export as (header, rows of column → value).
    pub async fn export_csv(&self, pid: i64, complete_only: bool) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
        let resp = self.export_raw(pid, "csv", complete_only).await;
        resp.assert_status(200);
        parse_csv(&resp.body)
    }
}

pub fn parse_csv(bytes: &[u8]) -> (Vec<String>, Vec<BTreeMap<String, String>>) {
    let mut r = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes);
    let header: Vec<String> = r.headers().expect("CSV header").iter().map(str::to_string).collect();
    let rows = r
        .records()
        .map(|rec| {
            let rec = rec.expect("CSV record");
            header.iter().cloned().zip(rec.iter().map(str::to_string)).collect()
        })
        .collect();
    (header, rows)
}

pub fn label(name: &str, key: &str, color: &str) -> LabelDef {
    LabelDef { name: name.into(), key: key.into(), color: color.into() }
}

pub fn new_project(name: &str, overlap: i64, lease_seconds: i64) -> NewProject {
    NewProject {
        name: name.into(),
        instructions: "Is it positive?".into(),
        kind: LabelKind::Single,
        labels: vec![label("pos", "p", "#22aa22"), label("neg", "n", "#aa2222"), label("other", "o", "#888888")],
        overlap,
        lease_seconds,
        quality: Default::default(),
        assignment_order: app::api_types::AssignmentOrder::Import,
    }
}

/// A PNG of the given size, encoded with the `image` crate.
pub fn png(width: u32, height: u32, seed: u8) -> Vec<u8> {
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        image::Rgb([seed, (x % 256) as u8, (y % 256) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).expect("encode PNG");
    out.into_inner()
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

/// A small, well-formed PNG (valid CRCs) whose header declares `width`×`height` pixels: a
/// decompression bomb as a decoder sees it before reading any pixel data.
pub fn png_declaring(width: u32, height: u32) -> Vec<u8> {
    let mut bytes = png(1, 1, 7);
    // Signature (8) + IHDR length (4) + "IHDR" (4): width and height follow.
    assert_eq!(&bytes[12..16], b"IHDR");
    bytes[16..20].copy_from_slice(&width.to_be_bytes());
    bytes[20..24].copy_from_slice(&height.to_be_bytes());
    let crc = crc32(&bytes[12..29]);
    bytes[29..33].copy_from_slice(&crc.to_be_bytes());
    bytes
}

/// A zip archive of (name, bytes) entries, stored as given (names are not sanitised).
pub fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        w.start_file(*name, opts).expect("zip entry");
        w.write_all(bytes).expect("zip write");
    }
    w.finish().expect("zip finish").into_inner()
}

/// How many files are under `dir` (recursively; 0 if it does not exist).
pub fn count_files(dir: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    entries
        .flatten()
        .map(|e| {
            let p = e.path();
            if p.is_dir() {
                count_files(&p)
            } else {
                1
            }
        })
        .sum()
}

/// JSONL text from JSON values, one per line.
pub fn jsonl(lines: &[Value]) -> String {
    lines.iter().map(|v| v.to_string() + "\n").collect()
}
