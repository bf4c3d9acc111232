//! The browser end-to-end test: a real Chromium (headless, through Debian's chromedriver)
//! against the real `mirrorset` server and the wasm site built by scripts/build-site.sh.
//!
//! It signs in with the keyboard, opens a project, labels three items with label keys, goes
//! back twice with `u` and changes an earlier answer, and then checks through the export API
//! that every label (including the changed one) was stored. A screenshot of the labeling view
//! is saved to `target/screenshots/labeling.png`; the project page's export and audit-log links
//! are checked (`project.png`). Chromium's console must show no
//! Content-Security-Policy violation on any page it visited.
//!
//! Needs: scripts/build-site.sh (debug or `--release`: the test serves whichever is there) first, and
//! `/usr/bin/chromium` + `/usr/bin/chromedriver` (`apt-get install chromium chromium-driver`).
#[allow(unused_macros)]
#[path = "../common/mod.rs"]
mod common;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use app::api_types::{LabelDef, LabelKind, NewProject, QualitySettings, Role};
use common::{password_for, workspace_root, Backend, TestServer};
use fantoccini::actions::{InputSource, KeyAction, KeyActions};
use fantoccini::key::Key;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

const STEP_TIMEOUT: Duration = Duration::from_secs(30);

fn chromedriver_path() -> String {
    std::env::var("MIRRORSET_CHROMEDRIVER").unwrap_or_else(|_| "/usr/bin/chromedriver".into())
}

fn chromium_path() -> String {
    std::env::var("MIRRORSET_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// chromedriver on a free port; killed on drop.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Driver {
    async fn start() -> Driver {
        // The port was free when chosen; another process may take it before chromedriver binds
        // it, and then chromedriver exits. Try a few.
        for _ in 0..5 {
            if let Some(driver) = Driver::start_on_a_free_port().await {
                return driver;
            }
        }
        panic!("chromedriver exited five times without answering (port taken?)");
    }

    async fn start_on_a_free_port() -> Option<Driver> {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut child = Command::new(chromedriver_path())
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e} (apt-get install chromium-driver)", chromedriver_path()));
        let url = format!("http://127.0.0.1:{port}");
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Ok(r) = http.get(format!("{url}/status")).send().await {
                if r.status().is_success() {
                    break;
                }
            }
            if child.try_wait().unwrap().is_some() {
                return None;
            }
            assert!(Instant::now() < deadline, "chromedriver did not answer on {url}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::Builder::new().prefix("mirrorset-chromium-").tempdir().unwrap();
        Some(Driver { child, url, _profile: profile })
    }

    async fn browser(&self) -> Client {
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({
                "binary": chromium_path(),
                "args": [
                    "--headless",
                    "--no-sandbox",
                    "--disable-gpu",
                    "--no-first-run",
                    "--disable-background-networking",
                    "--disable-component-update",
                    "--disable-sync",
                    "--disable-dev-shm-usage",
                    format!("--user-data-dir={}", self._profile.path().display()),
                    "--window-size=1400,900",
                ],
            }),
        );
        // Keep the console, so the test can read it (`console_messages`).
        caps.insert("goog:loggingPrefs".into(), json!({"browser": "ALL"}));
        ClientBuilder::native()
            .capabilities(caps)
            .connect(&self.url)
            .await
            .expect("start a Chromium session through chromedriver")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A test that panics never closes its browser session, and chromium outlives the
        // chromedriver that started it: a failed run left a dozen browsers running, which then
        // slowed everything after it. Ours are the ones using this driver's profile directory.
        let _ = Command::new("pkill")
            .arg("-KILL")
            .args(["-f", "--"])
            .arg(format!("--user-data-dir={}", self._profile.path().display()))
            .status();
    }
}

/// chromedriver's console log of the page: every message since the last call.
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base_url: &reqwest::Url,
        session_id: Option<&str>,
    ) -> Result<reqwest::Url, <reqwest::Url as std::str::FromStr>::Err> {
        base_url.join(&format!("session/{}/se/log", session_id.unwrap_or_default()))
    }

    fn method_and_body(&self, _url: &reqwest::Url) -> (axum::http::Method, Option<String>) {
        (axum::http::Method::POST, Some(r#"{"type":"browser"}"#.to_string()))
    }
}

/// The console messages since the last call, as "LEVEL message".
async fn console_messages(c: &Client) -> Vec<String> {
    let log = c.issue_cmd(BrowserLog).await.expect("read the browser console (goog:loggingPrefs)");
    log.as_array()
        .map(|entries| {
            entries
                .iter()
                .map(|e| format!("{} {}", e["level"].as_str().unwrap_or("?"), e["message"].as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default()
}

/// Presses one key on whatever has focus (like a person at the keyboard).
async fn press(c: &Client, key: char) {
    let seq = KeyActions::new("keyboard".into())
        .then(KeyAction::Down { value: key })
        .then(KeyAction::Up { value: key });
    c.perform_actions(seq).await.expect("key press");
}

/// Waits until `css` matches an element whose text satisfies `pred`; returns that text.
async fn wait_text(c: &Client, css: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut last = String::new();
    loop {
        if let Ok(els) = c.find_all(Locator::Css(css)).await {
            for el in els {
                if let Ok(t) = el.text().await {
                    if pred(&t) {
                        return t;
                    }
                    last = t;
                }
            }
        }
        if Instant::now() > deadline {
            let shot = c.screenshot().await.unwrap_or_default();
            let path = workspace_root().join("target/screenshots/failure.png");
            let _ = std::fs::create_dir_all(path.parent().unwrap());
            let _ = std::fs::write(&path, shot);
            panic!("timed out waiting for {what} ({css}); last text seen: {last:?}; screenshot: {}", path.display());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The item text currently on screen, once it differs from `previous`.
async fn next_item_text(c: &Client, previous: &str) -> String {
    wait_text(c, ".item-text", "the next item", |t| t.contains("browser item") && t != previous).await
}

fn label(name: &str, key: &str, color: &str) -> LabelDef {
    LabelDef { name: name.into(), key: key.into(), color: color.into() }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyboard_labeling_with_undo_reaches_the_export() {
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin().await;

    // A single-label project with three text items, and a labeler who belongs to it.
    let project = admin
        .create_project(&NewProject {
            name: "Browser sentiment".into(),
            instructions: "Label the **tone** of each sentence.\n\n- positive: `1`\n- negative: `2`".into(),
            kind: LabelKind::Single,
            labels: vec![label("positive", "1", "#16a34a"), label("negative", "2", "#dc2626")],
            overlap: 1,
            lease_seconds: 600,
            quality: Default::default(),
            assignment_order: app::api_types::AssignmentOrder::Import,
        })
        .await;
    let pid = project.id;
    admin.import_texts(pid, "browser", 3).await;
    let (labeler, _) = server.user(&admin, "lina", Role::Labeler).await;
    admin.add_member(pid, labeler.id).await;
    let password = password_for("lina");

    let driver = Driver::start().await;
    let c = driver.browser().await;

    // Sign in with the keyboard only: focus starts in the username field.
    c.goto(&server.url("/login")).await.unwrap();
    // The button is enabled once the page is live (hydrated).
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let btn = c.find(Locator::Css("form.login-card button[type=submit]")).await.unwrap();
        if btn.is_enabled().await.unwrap_or(false) {
            break;
        }
        assert!(Instant::now() < deadline, "the sign-in page never became live (hydration failed?)");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    wasm_came_gzipped_from_a_release_site(&c).await;
    let focused = c.active_element().await.unwrap();
    assert_eq!(focused.attr("id").await.unwrap().as_deref(), Some("login-username"), "focus starts in username");
    focused.send_keys("lina").await.unwrap();
    press(&c, char::from(Key::Tab)).await;
    let focused = c.active_element().await.unwrap();
    assert_eq!(focused.attr("id").await.unwrap().as_deref(), Some("login-password"), "Tab reaches the password");
    // A wrong password first: a clear message, and we stay on the page.
    focused.send_keys("not-the-password").await.unwrap();
    press(&c, char::from(Key::Enter)).await;
    wait_text(&c, "#login-status", "the wrong-password message", |t| t.contains("Wrong username or password")).await;
    let focused = c.active_element().await.unwrap();
    assert_eq!(focused.attr("id").await.unwrap().as_deref(), Some("login-password"), "focus returns to the password");
    focused.send_keys(&password).await.unwrap();
    press(&c, char::from(Key::Enter)).await;

    // The projects page lists the project; open its labeling view from the keyboard.
    wait_text(&c, ".table a.strong-link", "the project in the list", |t| t == "Browser sentiment").await;
    wait_text(&c, ".topbar-user-name", "the signed-in user", |t| t == "lina").await;
    let label_link = c.find(Locator::Css(&format!("a[href='/projects/{pid}/label']"))).await.unwrap();
    label_link.send_keys(&char::from(Key::Enter).to_string()).await.unwrap();

    // Three items, labeled with keys 1, 2, 1.
    let mut answers: Vec<(String, &str)> = Vec::new();
    let first = next_item_text(&c, "").await;
    wait_text(&c, ".label-btn", "the label buttons", |t| t.contains("positive")).await;
    wait_text(&c, ".instructions-body", "the instructions", |t| t.contains("tone")).await;
    let shot = c.screenshot().await.unwrap();
    let dir = workspace_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("labeling.png"), shot).unwrap();

    press(&c, '1').await;
    answers.push((first.clone(), "positive"));
    let second = next_item_text(&c, &first).await;
    press(&c, '2').await;
    answers.push((second.clone(), "negative"));
    let third = next_item_text(&c, &second).await;
    press(&c, '1').await;
    answers.push((third.clone(), "positive"));
    assert!(first != second && second != third && first != third, "three different items");
    wait_text(&c, ".all-done h2", "the All done state", |t| t == "All done").await;

    // u: the last answer; u again: the one before (the second item). Change it to positive.
    press(&c, 'u').await;
    wait_text(&c, ".item-text", "the third item again", |t| t == third).await;
    wait_text(&c, ".label-btn.is-selected", "the third item's earlier label", |t| t.contains("positive")).await;
    press(&c, 'u').await;
    wait_text(&c, ".item-text", "the second item again", |t| t == second).await;
    wait_text(&c, ".label-btn.is-selected", "the second item's earlier label", |t| t.contains("negative")).await;
    press(&c, '1').await;
    answers[1].1 = "positive";
    wait_text(&c, ".all-done h2", "All done after the change", |t| t == "All done").await;
    // The header counts three of mine (the change is not a fourth).
    wait_text(&c, ".done-counts", "the final counts", |t| t.contains("3 / 3")).await;

    // The export holds exactly those labels, once each, by lina.
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let export = admin.export_jsonl(pid, false).await;
        let mismatch = check_export(&export, &answers);
        match mismatch {
            None => break,
            Some(msg) if Instant::now() > deadline => panic!("export does not match the keyboard answers: {msg}\n{export:#?}"),
            Some(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }

    // Every page above ran under the server's Content-Security-Policy: nothing was refused.
    let violations: Vec<String> = console_messages(&c)
        .await
        .into_iter()
        .filter(|m| m.contains("Content Security Policy") || m.contains("Refused to"))
        .collect();
    assert!(violations.is_empty(), "Content-Security-Policy violations in the console: {violations:#?}");

    c.close().await.unwrap();
}

/// `None` when every answered text has exactly one annotation, by lina, with that label.
fn check_export(export: &[Value], answers: &[(String, &str)]) -> Option<String> {
    if export.len() != 3 {
        return Some(format!("{} items exported, expected 3", export.len()));
    }
    for (text, want) in answers {
        let Some(item) = export.iter().find(|i| i["text"].as_str() == Some(text.as_str())) else {
            return Some(format!("no exported item with text {text:?}"));
        };
        let anns = item["annotations"].as_array().cloned().unwrap_or_default();
        if anns.len() != 1 {
            return Some(format!("{text:?} has {} annotations", anns.len()));
        }
        if anns[0]["labeler"] != "lina" {
            return Some(format!("{text:?} labeled by {}", anns[0]["labeler"]));
        }
        if anns[0]["labels"] != json!([want]) {
            return Some(format!("{text:?} has labels {}, expected [{want:?}]", anns[0]["labels"]));
        }
        // The page measures the time from showing the item to the key press.
        if anns[0]["time_ms"].as_i64().unwrap_or(0) <= 0 {
            return Some(format!("{text:?} has time_ms {}", anns[0]["time_ms"]));
        }
    }
    None
}

/// Signs in through the sign-in page with the keyboard, once the page is live.
/// A release site (`scripts/build-site.sh --release`) has gzipped copies of its bundle beside
/// it: the page that just hydrated must have downloaded the wasm compressed (its resource
/// timing: fewer bytes on the wire than decoded). A debug site has none, and nothing to check.
async fn wasm_came_gzipped_from_a_release_site(c: &Client) {
    let pkg = common::site_root().join("pkg");
    let gzipped = std::fs::read_dir(&pkg).is_ok_and(|d| d.flatten().any(|e| e.file_name().to_string_lossy().ends_with(".wasm.gz")));
    if !gzipped {
        return;
    }
    let sizes = c
        .execute(
            "const e = performance.getEntriesByType('resource').find(r => r.name.endsWith('.wasm'));\n\
             return e ? [e.encodedBodySize, e.decodedBodySize] : null;",
            vec![],
        )
        .await
        .unwrap();
    let sizes: Option<(u64, u64)> = serde_json::from_value(sizes.clone()).unwrap_or_else(|_| panic!("resource sizes: {sizes}"));
    let (wire, decoded) = sizes.expect("the page loaded no .wasm");
    assert!(wire > 0 && wire * 2 < decoded, "the wasm came {wire} bytes on the wire for {decoded} decoded: not gzipped");
}

async fn sign_in(c: &Client, server: &TestServer, username: &str, password: &str) {
    c.goto(&server.url("/login")).await.unwrap();
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let btn = c.find(Locator::Css("form.login-card button[type=submit]")).await.unwrap();
        if btn.is_enabled().await.unwrap_or(false) {
            break;
        }
        assert!(Instant::now() < deadline, "the sign-in page never became live (hydration failed?)");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let focused = c.active_element().await.unwrap();
    focused.send_keys(username).await.unwrap();
    press(c, char::from(Key::Tab)).await;
    c.active_element().await.unwrap().send_keys(password).await.unwrap();
    press(c, char::from(Key::Enter)).await;
    wait_text(c, ".topbar-user-name", "the signed-in user", |t| t == username).await;
}

async fn screenshot(c: &Client, name: &str) {
    let shot = c.screenshot().await.unwrap();
    let dir = workspace_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), shot).unwrap();
}

/// Waits for the browser's confirm() dialog and accepts it.
async fn accept_confirm(c: &Client) -> String {
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        if let Ok(text) = c.get_alert_text().await {
            c.accept_alert().await.unwrap();
            return text;
        }
        assert!(Instant::now() < deadline, "no confirm dialog appeared");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn focused_id(c: &Client) -> Option<String> {
    c.active_element().await.ok()?.attr("id").await.ok().flatten()
}

/// The account pages from the keyboard: an admin disables a user, changes their role and
/// resets their password on the Users page, creates an expiring token, and changes their own
/// password on the Account page; each change is checked through the API. Screenshots of the
/// Users, API tokens and Account pages go to `target/screenshots/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_manages_accounts_from_the_keyboard() {
    let server = TestServer::start(Backend::Sqlite).await;
    let api = server.admin().await;
    let kim = api.create_user("kim", &password_for("kim"), Role::Labeler).await;
    let user = |users: Vec<app::api_types::User>| users.into_iter().find(|u| u.id == kim.id).unwrap();

    let driver = Driver::start().await;
    let c = driver.browser().await;
    sign_in(&c, &server, "admin", server.admin_password()).await;
    c.goto(&server.url("/admin/users")).await.unwrap();
    wait_text(&c, ".table td", "kim's row", |t| t == "kim").await;

    // Disable: Enter on the row's button, then confirm.
    let enter = char::from(Key::Enter).to_string();
    c.find(Locator::Css("button[aria-label='Disable kim']")).await.unwrap().send_keys(&enter).await.unwrap();
    let question = accept_confirm(&c).await;
    assert!(question.contains("Disable kim"), "{question}");
    wait_text(&c, "#users-status", "the disable message", |t| t.starts_with("Disabled kim")).await;
    wait_text(&c, ".state-badge.is-off", "kim shown as disabled", |t| t == "disabled").await;
    assert!(user(api.get("/api/users").await).disabled, "kim is disabled on the server");

    // Role: the row's select.
    c.find(Locator::Css("select[aria-label='Role of kim']")).await.unwrap().select_by_value("lead").await.unwrap();
    wait_text(&c, "#users-status", "the role message", |t| t == "kim is now a lead.").await;
    assert_eq!(user(api.get("/api/users").await).role, Role::Lead);

    // Reset password: the form opens with focus in its first field; Tab, Enter.
    c.find(Locator::Css("button[aria-label='Reset the password of kim']")).await.unwrap().send_keys(&enter).await.unwrap();
    let deadline = Instant::now() + STEP_TIMEOUT;
    while focused_id(&c).await.as_deref() != Some("rp-new") {
        assert!(Instant::now() < deadline, "focus never reached the reset form");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    c.active_element().await.unwrap().send_keys("kim's new password").await.unwrap();
    press(&c, char::from(Key::Tab)).await;
    c.active_element().await.unwrap().send_keys("kim's new password").await.unwrap();
    press(&c, char::from(Key::Enter)).await;
    wait_text(&c, "#reset-status", "the reset message", |t| t == "New password set; kim was signed out.").await;
    screenshot(&c, "users.png").await;
    api.patch_json_raw(&format!("/api/users/{}", kim.id), &json!({"disabled": false})).await.assert_status(200);
    server.client().login("kim", "kim's new password").await;

    // A token with the default expiry (90 days) from the form.
    c.goto(&server.url("/tokens")).await.unwrap();
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let name = c.find(Locator::Id("tok-name")).await.unwrap();
        // Typing before hydration would be lost: wait until the table has loaded.
        if c.find(Locator::Css("td.empty-cell")).await.is_ok() {
            name.send_keys("nightly").await.unwrap();
            break;
        }
        assert!(Instant::now() < deadline, "the tokens page never loaded");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    press(&c, char::from(Key::Enter)).await;
    wait_text(&c, ".table td", "the new token's row", |t| t == "nightly").await;
    let tokens: Vec<app::api_types::ApiToken> = api.get("/api/tokens").await;
    let expires = tokens[0].expires_at.expect("the form's default expiry");
    assert!((expires - tokens[0].created_at - 90 * 86_400_000).abs() < 1000, "{tokens:?}");
    screenshot(&c, "tokens.png").await;

    // The account page, from the name in the top bar: change the own password.
    c.find(Locator::Css("a.topbar-user-name")).await.unwrap().send_keys(&enter).await.unwrap();
    wait_text(&c, "h1", "the account page", |t| t == "Your account").await;
    c.find(Locator::Id("acc-current")).await.unwrap().send_keys(server.admin_password()).await.unwrap();
    press(&c, char::from(Key::Tab)).await;
    c.active_element().await.unwrap().send_keys("the admin's new password").await.unwrap();
    press(&c, char::from(Key::Tab)).await;
    c.active_element().await.unwrap().send_keys("the admin's new password").await.unwrap();
    press(&c, char::from(Key::Enter)).await;
    wait_text(&c, "#account-status", "the change message", |t| t.starts_with("Password changed")).await;
    screenshot(&c, "account.png").await;
    // The browser stays signed in; the API client's session (another one) was signed out.
    c.goto(&server.url("/admin/users")).await.unwrap();
    wait_text(&c, ".table td", "kim's row again", |t| t == "kim").await;
    api.get_raw("/api/me").await.assert_error(401, "unauthorized");
    server.client().login("admin", "the admin's new password").await;

    c.close().await.unwrap();
}

/// The project page offers every export and the audit log as links a lead reaches with Tab:
/// the links point at routes that answer with the file. Screenshot: `target/screenshots/project.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_page_links_the_exports_and_the_audit_log() {
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin().await;
    let pid = admin
        .create_project(&NewProject {
            name: "Exports".into(),
            instructions: String::new(),
            kind: LabelKind::Single,
            labels: vec![label("positive", "1", "#16a34a"), label("negative", "2", "#dc2626")],
            overlap: 1,
            lease_seconds: 600,
            quality: Default::default(),
            assignment_order: app::api_types::AssignmentOrder::Import,
        })
        .await
        .id;
    admin.import_texts(pid, "page", 2).await;

    let driver = Driver::start().await;
    let c = driver.browser().await;
    sign_in(&c, &server, "admin", server.admin_password()).await;
    c.goto(&server.url(&format!("/projects/{pid}"))).await.unwrap();
    wait_text(&c, "#export-h", "the export card", |t| t == "Export").await;
    let mut hrefs = Vec::new();
    for (text, want) in [
        ("Download annotations", format!("/api/projects/{pid}/export?format=annotations")),
        ("Download audit log", format!("/api/projects/{pid}/audit")),
    ] {
        let link = c.find(Locator::LinkText(text)).await.unwrap_or_else(|_| panic!("no link {text:?}"));
        assert_eq!(link.attr("href").await.unwrap().as_deref(), Some(want.as_str()), "{text}");
        hrefs.push(want);
    }
    screenshot(&c, "project.png").await;
    // Nothing is labeled yet: the annotations file is empty, the log holds the creation.
    let annotations = admin.get_raw(&hrefs[0]).await;
    annotations.assert_status(200);
    assert_eq!(annotations.text(), "");
    let log = admin.get_raw(&hrefs[1]).await;
    log.assert_status(200);
    assert!(log.text().contains("\"action\":\"project_created\""), "{}", log.text());
    c.close().await.unwrap();
}

/// The lead's side (issue 7): a lead opens the queues from the project page with `R`, then the
/// agreement dashboard with `A`, sees alpha, opens the disagreement queue of the labeler pair
/// from its heat-map cell, adjudicates both items with label keys (marking the second gold with
/// `g` first), and the export carries the final labels with source `adjudicated` and the gold flag. Screenshots: `target/screenshots/review-queues.png`,
/// `agreement.png` and `review-item.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_adjudicates_a_disagreement_queue_with_the_keyboard() {
    // Consensus and the dashboard refresh every second instead of every 15.
    let server = TestServer::start_with_args(Backend::Sqlite, &["--refresh-interval-secs", "1"]).await;
    let admin = server.admin().await;
    let pid = admin
        .create_project(&NewProject {
            name: "Review sentiment".into(),
            instructions: String::new(),
            kind: LabelKind::Single,
            labels: vec![label("positive", "1", "#16a34a"), label("negative", "2", "#dc2626")],
            overlap: 2,
            lease_seconds: 600,
            quality: Default::default(),
            assignment_order: app::api_types::AssignmentOrder::Import,
        })
        .await
        .id;
    admin.import(pid, "jsonl", concat!(
        r#"{"id": "r-1", "text": "The soup was cold but the staff were lovely.", "meta": {"region": "eu"}}"#, "\n",
        r#"{"id": "r-2", "text": "Fine, I guess.", "meta": {"region": "us"}}"#, "\n",
        r#"{"id": "r-3", "text": "Wonderful evening.", "meta": {"region": "eu"}}"#, "\n",
    )).await;
    let (lee, _) = server.user(&admin, "lee", Role::Lead).await;
    admin.add_member(pid, lee.id).await;
    // ann and bob disagree on r-1 and r-2 and agree on r-3.
    for (name, answers) in [("ann", ["positive", "positive", "positive"]), ("bob", ["negative", "negative", "positive"])] {
        let (u, c) = server.user(&admin, name, Role::Labeler).await;
        admin.add_member(pid, u.id).await;
        for _ in 0..3 {
            let item = c.next(pid).await.item.expect("an item");
            let i = match item.external_id.as_deref() { Some("r-1") => 0, Some("r-2") => 1, _ => 2 };
            c.submit(pid, item.id, &[answers[i]]).await;
        }
    }

    let driver = Driver::start().await;
    let c = driver.browser().await;
    sign_in(&c, &server, "lee", &password_for("lee")).await;
    c.goto(&server.url(&format!("/projects/{pid}"))).await.unwrap();
    wait_text(&c, ".page-head h1", "the project page", |t| t == "Review sentiment").await;
    wait_text(&c, ".page-head a", "the review link", |t| t.contains("Review")).await;
    press(&c, 'r').await;
    wait_text(&c, ".queue-table td.num.strong", "the disagreement count", |t| t == "2").await;
    screenshot(&c, "review-queues.png").await;

    // The dashboard, from the project page with `A`; it fills in once the background job ran.
    c.goto(&server.url(&format!("/projects/{pid}"))).await.unwrap();
    wait_text(&c, ".page-head h1", "the project page", |t| t == "Review sentiment").await;
    press(&c, 'a').await;
    wait_text(&c, ".stat-card .stat-title", "the alpha card", |t| t.starts_with("Krippendorff's alpha")).await;
    let alpha = wait_text(&c, ".stat-card .stat-value", "alpha's value", |t| !t.is_empty()).await;
    assert!(alpha.parse::<f64>().is_ok() || alpha.starts_with('-') || alpha.starts_with('−'), "alpha shows as {alpha:?}");
    screenshot(&c, "agreement.png").await;
    // The ann × bob cell opens their disagreement queue.
    let cell = c.find(Locator::Css("a.heat-cell")).await.expect("a heat-map cell");
    cell.click().await.unwrap();
    let first = wait_text(&c, ".review-page .item-text", "the first queued item", |t| !t.is_empty()).await;
    wait_text(&c, ".answers td.who", "the answers", |t| t == "bob").await;
    wait_text(&c, ".label-btn", "the label buttons", |t| t.contains("negative")).await;
    screenshot(&c, "review-item.png").await;
    press(&c, '2').await;
    let second = wait_text(&c, ".review-page .item-text", "the second queued item", |t| !t.is_empty() && t != first).await;
    // `g` makes it a gold item with its consensus as the answer, before it is decided.
    press(&c, 'g').await;
    wait_text(&c, "[role=status]", "the gold confirmation", |t| t.contains("is a gold item: positive")).await;
    press(&c, '1').await;
    wait_text(&c, ".all-done h2", "the empty queue", |t| t == "Queue empty").await;

    // The export: both items adjudicated, the third with no final label yet (no consensus row).
    let want = [(first.clone(), "negative"), (second.clone(), "positive")];
    let deadline = Instant::now() + STEP_TIMEOUT;
    loop {
        let export = admin.export_jsonl(pid, false).await;
        let ok = want.iter().all(|(text, label)| {
            export.iter().any(|l| {
                l["text"].as_str() == Some(text.as_str()) && l["final_source"] == "adjudicated" && l["final_labels"] == json!([label])
            })
        }) && export.iter().any(|l| l["text"].as_str() == Some(second.as_str()) && l["gold"] == json!(true));
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "the export lacks the adjudicated labels {want:?}: {export:#?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let violations: Vec<String> = console_messages(&c)
        .await
        .into_iter()
        .filter(|m| m.contains("Content Security Policy") || m.contains("Refused to"))
        .collect();
    assert!(violations.is_empty(), "Content-Security-Policy violations in the console: {violations:#?}");
    c.close().await.unwrap();
}

/// A lead's dev set in the browser (issue 8): uploads a production profile, builds a draft
/// with the size calculator (the per-region requirement drives the size, and the plan says
/// so), samples with `S`, and sees the report. Screenshots: `target/screenshots/devset-plan.png`
/// and `devset-report.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_builds_a_production_matched_dev_set() {
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin().await;
    let pid = admin
        .create_project(&NewProject {
            name: "Dev sets".into(),
            instructions: String::new(),
            kind: LabelKind::Single,
            labels: vec![label("positive", "1", "#16a34a"), label("negative", "2", "#dc2626")],
            overlap: 1,
            lease_seconds: 600,
            quality: Default::default(),
            assignment_order: app::api_types::AssignmentOrder::Import,
        })
        .await
        .id;
    // The pool leans eu/web; production leans us/mobile.
    let pool: String = (0..2000)
        .map(|i| {
            let region = ["eu", "eu", "eu", "us", "apac"][i % 5];
            let device = ["web", "web", "mobile"][(i / 5) % 3];
            json!({"id": format!("p{i}"), "text": format!("item {i}"), "meta": {"region": region, "device": device}}).to_string() + "\n"
        })
        .collect();
    admin.import(pid, "jsonl", pool).await;
    let production: String = (0..3000)
        .map(|i| {
            let region = ["us", "us", "eu", "apac"][i % 4];
            let device = ["mobile", "mobile", "web"][(i / 4) % 3];
            json!({"region": region, "device": device}).to_string() + "\n"
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("production.jsonl");
    std::fs::write(&file, production).unwrap();

    let driver = Driver::start().await;
    let c = driver.browser().await;
    sign_in(&c, &server, "admin", server.admin_password()).await;
    c.goto(&server.url(&format!("/projects/{pid}"))).await.unwrap();
    wait_text(&c, "#export-h", "the project page", |t| t == "Export").await;
    press(&c, 'd').await;
    wait_text(&c, "#profiles-h", "the dev-set page", |t| t == "Production profiles").await;

    // Upload the profile.
    c.find(Locator::Css("#pf-name")).await.unwrap().send_keys("november").await.unwrap();
    c.execute(
        "const d = document.querySelector('input[type=date]'); d.value = '2026-11-30'; d.dispatchEvent(new Event('input', {bubbles: true}));",
        vec![],
    )
    .await
    .unwrap();
    c.find(Locator::Css("input[type=file]")).await.unwrap().send_keys(file.to_str().unwrap()).await.unwrap();
    c.find(Locator::Css("form.form-grid button[type=submit]")).await.unwrap().click().await.unwrap();
    wait_text(&c, ".ok-text", "the saved profile", |t| t.starts_with("Saved “november”: 3,000 records")).await;

    // The draft: size calculator, ±3 points overall and ±5 for every region (the latter drives
    // the size: 139 items per region at a 25 % share).
    c.find(Locator::Css("#dv-name")).await.unwrap().send_keys("dev-nov").await.unwrap();
    c.find(Locator::Css("#dv-attrs")).await.unwrap().send_keys("region, device").await.unwrap();
    c.find(Locator::Css("#dv-key")).await.unwrap().send_keys("region").await.unwrap();
    c.find(Locator::Css("#dv-khw")).await.unwrap().send_keys("5").await.unwrap();
    c.find(Locator::Css("form.form-card button[type=submit]")).await.unwrap().click().await.unwrap();
    let head = wait_text(&c, "#plan-h + p, section p", "the plan's size", |t| t.contains("drove the size")).await;
    assert!(head.contains("region=apac drove the size"), "{head}");
    wait_text(&c, "#plan-table", "the plan table", |t| t.contains("apac × mobile")).await;
    section_screenshot(&c, "plan-h", "devset-plan.png").await;

    // Sample with S (focus out of the form first), then the report.
    c.execute("document.activeElement && document.activeElement.blur();", vec![]).await.unwrap();
    press(&c, 's').await;
    wait_text(&c, "#report-table", "the report", |t| t.contains("stable (PSI < 0.1)")).await;
    wait_text(&c, "#progress-table", "the campaign progress", |t| t.contains("Members")).await;
    section_screenshot(&c, "report-h", "devset-report.png").await;
    let devsets: Vec<Value> = admin.get(&format!("/api/projects/{pid}/devsets")).await;
    assert_eq!(devsets.len(), 1);
    assert!(devsets[0]["members"].as_i64().unwrap() > 0, "{devsets:?}");

    // The drift check: production moved a little towards eu and web; against the newer profile
    // (the select's first, newest), the report proposes a top-up plan for a joint TVD of 0.03
    // (0.02 is out of reach with this small pool: the page says so in red).
    let december: String = (0..4000)
        .map(|i| {
            let region = if i % 20 < 8 { "us" } else if i % 20 < 15 { "eu" } else { "apac" };
            let device = if (i / 20) % 20 < 11 { "mobile" } else { "web" };
            json!({"region": region, "device": device}).to_string() + "\n"
        })
        .collect();
    admin
        .raw(
            reqwest::Method::POST,
            &format!("/api/projects/{pid}/profiles?name=december&date=2026-12-01"),
            Some((december.into_bytes(), "application/octet-stream")),
        )
        .await
        .assert_status(201);
    c.execute("document.activeElement && document.activeElement.blur();", vec![]).await.unwrap();
    press(&c, 'r').await;
    wait_text(&c, "#drift-profile", "the newer profile in the drift check", |t| t.contains("december")).await;
    press(&c, 'c').await;
    let tvd = c.find(Locator::Css("#drift-tvd")).await.unwrap();
    tvd.clear().await.unwrap();
    tvd.send_keys("0.03").await.unwrap();
    c.find(Locator::Css("#drift-btn")).await.unwrap().click().await.unwrap();
    wait_text(&c, "#report-profile", "the report against december", |t| t.contains("december (2026-12-01)")).await;
    let top_up = wait_text(&c, ".ok-text, .error-text", "the top-up plan", |t| t.contains("new labels")).await;
    assert!(top_up.starts_with("Top-up: ") && top_up.contains("keeping every member"), "{top_up}");
    wait_text(&c, "#topup-table", "the top-up table", |t| t.contains("Add")).await;
    section_screenshot(&c, "report-h", "devset-drift.png").await;
    c.close().await.unwrap();
}

/// A screenshot of the card headed by `#heading_id` (the dev-set cards are below the fold).
async fn section_screenshot(c: &Client, heading_id: &str, name: &str) {
    let el = c.find(Locator::Css(&format!("section[aria-labelledby={heading_id}]"))).await.unwrap();
    let shot = el.screenshot().await.unwrap();
    let dir = workspace_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), shot).unwrap();
}

/// A lead freezes a release in the browser (issue 9): from the dev-set page `V` opens the
/// releases; `F` tries to freeze and the leakage report lists the planted near-duplicate side
/// by side; with an override reason the release freezes, shows its hash, lineage and card, and
/// its zip (the Hugging Face layout) downloads through the page's link with the session.
/// Screenshots: `target/screenshots/release-leakage.png`, `release-view.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_freezes_a_release_and_downloads_it() {
    let server = TestServer::start(Backend::Sqlite).await;
    let admin = server.admin().await;
    let pid = admin
        .create_project(&NewProject {
            name: "Releases".into(),
            instructions: String::new(),
            kind: LabelKind::Single,
            labels: vec![label("positive", "1", "#16a34a"), label("negative", "2", "#dc2626")],
            overlap: 1,
            lease_seconds: 600,
            quality: Default::default(),
            assignment_order: app::api_types::AssignmentOrder::Import,
        })
        .await
        .id;
    // 30 texts of 40 words from a 300-word vocabulary: no two alike.
    let mut state = 11u64;
    let mut word = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        format!("w{}", (state >> 33) % 300)
    };
    let pool: String = (0..30)
        .map(|i| {
            let text: Vec<String> = (0..40).map(|_| word()).collect();
            json!({"id": format!("r{i}"), "text": text.join(" "), "meta": {"region": (["eu", "us"][i % 2])}}).to_string() + "\n"
        })
        .collect();
    admin.import(pid, "jsonl", pool).await;
    let production: String = (0..100).map(|i| json!({"region": (["eu", "us"][i % 2])}).to_string() + "\n").collect();
    let profile: Value = admin
        .raw(reqwest::Method::POST, &format!("/api/projects/{pid}/profiles?name=prod&date=2026-11-30"),
             Some((production.into_bytes(), "application/octet-stream")))
        .await
        .created();
    let devset: Value = admin
        .post_created(&format!("/api/projects/{pid}/devsets"),
            &json!({"name": "dev-dec", "profile_id": profile["id"], "attributes": ["region"], "size": 8, "overlap": 1}))
        .await;
    let did = devset["id"].as_i64().unwrap();
    let sample: Value = admin.post_created(&format!("/api/projects/{pid}/devsets/{did}/sample"), &json!({})).await;
    let members: Vec<i64> = serde_json::from_value(sample["items"].clone()).unwrap();
    for (n, m) in members.iter().enumerate() {
        let body = json!({"labels": [(["positive", "negative"][n % 2])], "queue": "audit"});
        admin.post_json_raw(&format!("/api/projects/{pid}/review/items/{m}/decision"), &body).await.assert_status(201);
    }
    // A near copy of a member among the training items.
    let items = admin.export_jsonl(pid, false).await;
    let text = items.iter().find(|i| i["item_id"] == members[0]).unwrap()["text"].as_str().unwrap().to_string();
    let copy = text.replacen(' ', " planted ", 1);
    admin.import(pid, "jsonl", json!({"id": "copy", "text": copy}).to_string() + "\n").await;

    let driver = Driver::start().await;
    let c = driver.browser().await;
    sign_in(&c, &server, "admin", server.admin_password()).await;
    c.goto(&server.url(&format!("/projects/{pid}/devsets"))).await.unwrap();
    wait_text(&c, "#profiles-h", "the dev-set page", |t| t == "Production profiles").await;
    wait_text(&c, ".chip", "the dev set", |t| t.contains("dev-dec")).await;
    press(&c, 'v').await;
    wait_text(&c, "#freeze-h", "the releases page", |t| t == "Freeze a release").await;
    wait_text(&c, "#rl-devset option", "the dev set in the form", |t| t.contains("dev-dec")).await;

    // F: refused, with the pair side by side.
    press(&c, 'f').await;
    let pairs = wait_text(&c, "#leakage-table", "the leakage report", |t| t.contains("planted")).await;
    assert!(pairs.contains("pool") && pairs.contains("near"), "{pairs}");
    section_screenshot_of(&c, "form[aria-labelledby=freeze-h]", "release-leakage.png").await;
    let releases: Vec<Value> = admin.get(&format!("/api/projects/{pid}/releases")).await;
    assert!(releases.is_empty(), "a refused freeze saves nothing");

    // The override, then F again (out of the field first).
    c.find(Locator::Css("#rl-override-leakage")).await.unwrap().send_keys("the copy is dropped from training").await.unwrap();
    c.execute("document.activeElement && document.activeElement.blur();", vec![]).await.unwrap();
    press(&c, 'f').await;
    let hash = wait_text(&c, "#release-hash", "the frozen release's hash", |t| t.len() == 64).await;
    wait_text(&c, "#card-preview", "the dataset card", |t| t.contains("configs:") && t.contains("## Known limits")).await;
    let releases: Vec<Value> = admin.get(&format!("/api/projects/{pid}/releases")).await;
    assert_eq!(releases.len(), 1);
    assert_eq!(releases[0]["content_hash"], hash.as_str());
    section_screenshot(&c, "release-h", "release-view.png").await;

    // The zip, fetched through the page's download link with the browser's session.
    let got = c
        .execute_async(
            "const done = arguments[arguments.length - 1];
             fetch(document.querySelector('#download-zip').href, {credentials: 'same-origin'})
               .then(r => r.arrayBuffer()).then(b => { const u = new Uint8Array(b); done([u.length, u[0], u[1]]); })
               .catch(e => done(String(e)));",
            vec![],
        )
        .await
        .unwrap();
    let rid = releases[0]["id"].as_i64().unwrap();
    let api_zip = admin.get_raw(&format!("/api/projects/{pid}/releases/{rid}/export?format=zip")).await;
    assert_eq!(got, json!([api_zip.body.len(), 0x50, 0x4b]), "the page's zip is the release's zip (PK header)");
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(api_zip.body)).unwrap();
    assert!(archive.by_name("data/dev.jsonl").is_ok() && archive.by_name("README.md").is_ok());
    c.close().await.unwrap();
}

/// A screenshot of the element `css`.
async fn section_screenshot_of(c: &Client, css: &str, name: &str) {
    let el = c.find(Locator::Css(css)).await.unwrap();
    let shot = el.screenshot().await.unwrap();
    let dir = workspace_root().join("target/screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(name), shot).unwrap();
}

/// A labeler sees an item's pre-label (labels, source, score) above the label buttons and takes
/// it with one key (Enter); the answer is stored as theirs and counted as an acceptance of that
/// source. Screenshot: `target/screenshots/prelabel.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn labeler_accepts_a_prelabel_with_one_key() {
   let server = TestServer::start(Backend::Sqlite).await;
   let admin = server.admin().await;
   let pid = admin
       .create_project(&NewProject {
           name: "Pre-labeled".into(),
           instructions: String::new(),
           kind: LabelKind::Single,
           labels: vec![label("positive", "1", "#16a34a"), label("negative", "2", "#dc2626")],
           overlap: 1,
           lease_seconds: 600,
           quality: Default::default(),
           assignment_order: app::api_types::AssignmentOrder::Import,
       })
       .await
       .id;
   admin.import_texts(pid, "browser", 2).await;
   let predictions = json!({"item": "browser-0", "label": "negative", "score": 0.87, "model": "sentiment", "version": "v3"}).to_string() + "\n";
   admin
       .raw(reqwest::Method::POST, &format!("/api/projects/{pid}/prelabels/import"), Some((predictions.into_bytes(), "application/x-ndjson")))
       .await
       .assert_status(200);

   let driver = Driver::start().await;
   let c = driver.browser().await;
   sign_in(&c, &server, "admin", server.admin_password()).await;
   c.goto(&server.url(&format!("/projects/{pid}/label"))).await.unwrap();
   let first = next_item_text(&c, "").await;
   assert!(first.contains("browser item 0"), "{first}");
   wait_text(&c, ".prelabel-hint", "the pre-label", |t| t.contains("negative · sentiment v3 · 0.87")).await;
   screenshot(&c, "prelabel.png").await;
   press(&c, char::from(Key::Enter)).await;
   let second = next_item_text(&c, &first).await;
   assert!(second.contains("browser item 1"), "{second}");
   // The second item has no pre-label: no hint.
   assert!(c.find(Locator::Css(".prelabel-hint")).await.is_err(), "no pre-label, no hint");
   // The answer is saved in the background: wait for the source to count the acceptance.
   let deadline = Instant::now() + STEP_TIMEOUT;
   loop {
       let sources: Value = admin.get(&format!("/api/projects/{pid}/prelabels/sources")).await;
       if sources[0]["acceptance"]["n"] == json!(1) {
           assert_eq!(sources[0]["acceptance"]["value"], json!(1.0), "{sources}");
           break;
       }
       assert!(Instant::now() < deadline, "the acceptance was never recorded: {sources}");
       tokio::time::sleep(Duration::from_millis(100)).await;
   }
   let export = admin.get_raw(&format!("/api/projects/{pid}/export?format=jsonl")).await;
   let first_line: Value = serde_json::from_str(export.text().lines().next().unwrap()).unwrap();
   assert_eq!(first_line["annotations"][0]["labels"], json!(["negative"]), "{first_line}");
   c.close().await.unwrap();
}

/// A lead uploads a predictions file on the pre-labels page, sees the source with its figures
/// per label, gets a refused file's bad lines listed, and draws the audit sample with `a`.
/// Screenshot: `target/screenshots/prelabels.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_uploads_predictions_and_draws_the_audit() {
   let server = TestServer::start(Backend::Sqlite).await;
   let admin = server.admin().await;
   let pid = admin
       .create_project(&NewProject {
           name: "Predictions".into(),
           instructions: String::new(),
           kind: LabelKind::Single,
           labels: vec![label("positive", "1", "#16a34a"), label("negative", "2", "#dc2626")],
           overlap: 1,
           lease_seconds: 600,
           quality: Default::default(),
           assignment_order: app::api_types::AssignmentOrder::Import,
       })
       .await
       .id;
   admin.import_texts(pid, "browser", 4).await;
   let dir = tempfile::tempdir().unwrap();
   let good = dir.path().join("good.jsonl");
   let lines: String = (0..4)
       .map(|i| json!({"item": format!("browser-{i}"), "label": if i < 3 { "positive" } else { "negative" }, "score": 0.9, "model": "sentiment", "version": "v3"}).to_string() + "\n")
       .collect();
   std::fs::write(&good, lines).unwrap();
   let bad = dir.path().join("bad.jsonl");
   std::fs::write(&bad, json!({"item": "nope", "label": "positive"}).to_string() + "\n").unwrap();

   let driver = Driver::start().await;
   let c = driver.browser().await;
   sign_in(&c, &server, "admin", server.admin_password()).await;
   c.goto(&server.url(&format!("/projects/{pid}/prelabels"))).await.unwrap();
   wait_text(&c, ".card", "the empty sources card", |t| t.contains("No pre-labels yet")).await;
   let upload = |path: std::path::PathBuf| {
       let c = c.clone();
       async move {
           let input = c.find(Locator::Css("#prelabel-file")).await.unwrap();
           input.send_keys(path.to_str().unwrap()).await.unwrap();
           c.find(Locator::Css("#prelabel-upload button[type=submit]")).await.unwrap().click().await.unwrap();
       }
   };
   upload(bad).await;
   wait_text(&c, ".import-result", "the refusal", |t| t.contains("nothing was imported")).await;
   wait_text(&c, "td", "the bad line's reason", |t| t.contains("the project has no item with id \"nope\"")).await;
   upload(good).await;
   wait_text(&c, ".import-result", "the import", |t| t == "Imported 4 predictions.").await;
   wait_text(&c, ".prelabel-sources", "the source's rows", |t| t.contains("sentiment v3") && t.contains("negative")).await;
   c.find(Locator::Css("h1")).await.unwrap().click().await.unwrap(); // focus off the form
   press(&c, 'a').await;
   wait_text(&c, ".import-result", "the audit draw", |t| t.contains("Audit draw: 2 new pre-labels, 2 items queued")).await;
   wait_text(&c, ".prelabel-sources", "the audited counts", |t| t.contains("no audited pre-label decided yet")).await;
   screenshot(&c, "prelabels.png").await;

   // Auto-accept: a second model over 30 more items, half of them audited and found right,
   // which promises 75%; the lead selects its row (j j) and turns auto-accept on (t); the
   // undecided half becomes auto-accepted, and the noise summary says so.
   admin.import_texts(pid, "more", 30).await;
   let lines: String = (0..30)
       .map(|i| json!({"item": format!("more-{i}"), "label": "positive", "score": 0.95, "model": "topic", "version": "v1"}).to_string() + "\n")
       .collect();
   admin
       .raw(reqwest::Method::POST, &format!("/api/projects/{pid}/prelabels/import"), Some((lines.into_bytes(), "application/x-ndjson")))
       .await
       .assert_status(200);
   let settings = json!({"hide_until_answered": false, "audit_rate": 0.5, "audit_seed": 0, "target_precision": 0.75});
   admin
       .raw(reqwest::Method::PUT, &format!("/api/projects/{pid}/prelabels/settings"), Some((settings.to_string().into_bytes(), "application/json")))
       .await
       .assert_status(200);
   let _: Value = admin.post(&format!("/api/projects/{pid}/prelabels/audit"), &json!({})).await;
   let page: Value = admin.get(&format!("/api/projects/{pid}/review/queues/prelabel_audit?limit=500")).await;
   for item in page["items"].as_array().unwrap() {
       let ext = item["external_id"].as_str().unwrap();
       let label = if ext == "browser-3" { "negative" } else { "positive" };
       admin
           .post_json_raw(&format!("/api/projects/{pid}/review/items/{}/decision", item["item_id"]), &json!({"labels": [label], "queue": "prelabel_audit"}))
           .await
           .assert_status(201);
   }
   c.refresh().await.unwrap();
   wait_text(&c, ".prelabel-sources", "the topic model's threshold", |t| t.contains("topic v1") && t.contains("could start at 0.95")).await;
   c.find(Locator::Css("h1")).await.unwrap().click().await.unwrap();
   press(&c, 'j').await;
   press(&c, 'j').await;
   press(&c, 't').await;
   wait_text(&c, ".import-result", "the switch", |t| t.contains("Auto-accept on for topic v1 · positive: 15 items auto-accepted")).await;
   wait_text(&c, ".prelabel-sources", "the switch in the table", |t| t.contains("on from 0.95 · 15 items")).await;
   wait_text(&c, ".noise-summary", "the noise figures", |t| t.contains("15 · ")).await;
   screenshot(&c, "prelabels-auto.png").await;
   c.close().await.unwrap();
}

/// A lead goes from the pre-labels page to the labeling rules (`r`), writes a keyword rule
/// (`n`, typing), sees its coverage and accuracy while typing, saves it with Enter and applies
/// the rules with `A`; then a labeler takes the rules' pre-label with Enter, and the answer
/// counts as an acceptance of the rules source. Screenshots:
/// `target/screenshots/prelabel-rules.png`, `prelabel-rules-labeler.png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lead_writes_a_keyword_rule_and_sees_its_coverage() {
   let server = TestServer::start(Backend::Sqlite).await;
   let admin = server.admin().await;
   let pid = admin
       .create_project(&NewProject {
           name: "Rules".into(),
           instructions: String::new(),
           kind: LabelKind::Single,
           labels: vec![label("positive", "1", "#16a34a"), label("negative", "2", "#dc2626")],
           overlap: 1,
           lease_seconds: 600,
           // No gold draws: the labeler below is handed r1 first, whatever the draw.
           quality: QualitySettings { gold_rate: 0.0, ..Default::default() },
           assignment_order: app::api_types::AssignmentOrder::Import,
       })
       .await
       .id;
   let items: String = [
       json!({"id": "r0", "text": "A great movie, I loved it", "gold": "positive"}),
       json!({"id": "r1", "text": "Loved the acting"}),
       json!({"id": "r2", "text": "terrible plot", "gold": "negative"}),
       json!({"id": "r3", "text": "boring"}),
   ]
   .iter()
   .map(|l| l.to_string() + "\n")
   .collect();
   admin.import(pid, "jsonl", items).await;

   let driver = Driver::start().await;
   let c = driver.browser().await;
   sign_in(&c, &server, "admin", server.admin_password()).await;
   c.goto(&server.url(&format!("/projects/{pid}/prelabels"))).await.unwrap();
   // The sources card is filled in by the hydrated page: its keys work from then on.
   wait_text(&c, ".card", "the empty sources card", |t| t.contains("No pre-labels yet")).await;
   press(&c, 'r').await;
   wait_text(&c, "h1", "the rules page", |t| t == "Labeling rules").await;
   wait_text(&c, ".card", "the empty list", |t| t.contains("No rules yet")).await;
   // The label list arrives with the project; wait for it before typing.
   wait_text(&c, "#rule-label option", "the project's labels", |t| t == "positive").await;
   press(&c, 'n').await;
   assert_eq!(focused_id(&c).await.as_deref(), Some("rule-pattern"), "n puts the cursor in the pattern");
   c.find(Locator::Css("#rule-pattern")).await.unwrap().send_keys("loved, great").await.unwrap();
   let preview = wait_text(&c, ".rule-preview", "the live coverage", |t| t.contains("2 · 50.0%")).await;
   assert!(preview.contains("100.0% [20.7, 100.0] · n 1"), "{preview}");
   wait_text(&c, ".rule-examples", "the matched items", |t| t.contains("Loved the acting")).await;
   press(&c, char::from(Key::Enter)).await;
   wait_text(&c, ".import-result", "the save", |t| t.contains("Saved rule")).await;
   wait_text(&c, ".rule-list", "the saved rule's row", |t| t.contains("keyword \"loved, great\"") && t.contains("2 · 50.0%")).await;
   c.find(Locator::Css("h1")).await.unwrap().click().await.unwrap(); // focus off the form
   press(&c, 'A').await;
   wait_text(&c, ".import-result", "the apply", |t| t.contains("Applied: 2 pre-labels")).await;
   screenshot(&c, "prelabel-rules.png").await;
   let sources: Value = admin.get(&format!("/api/projects/{pid}/prelabels/sources")).await;
   assert_eq!((sources[0]["kind"].clone(), sources[0]["prelabels"].clone()), (json!("rules"), json!(2)), "{sources}");
   c.close().await.unwrap();

   // A labeler of the project (own browser, own session) is handed r1 with the rules'
   // pre-label on screen and takes it with Enter; r3, which no rule matches, shows none.
   let (lab, _) = server.user(&admin, "rulelab", Role::Labeler).await;
   admin.add_member(pid, lab.id).await;
   let driver = Driver::start().await;
   let c = driver.browser().await;
   sign_in(&c, &server, "rulelab", &password_for("rulelab")).await;
   c.goto(&server.url(&format!("/projects/{pid}/label"))).await.unwrap();
   wait_text(&c, ".item-text", "r1", |t| t.contains("Loved the acting")).await;
   wait_text(&c, ".prelabel-hint", "the rules' pre-label", |t| t.contains("positive · rules")).await;
   screenshot(&c, "prelabel-rules-labeler.png").await;
   press(&c, char::from(Key::Enter)).await;
   wait_text(&c, ".item-text", "r3", |t| t.contains("boring")).await;
   assert!(c.find(Locator::Css(".prelabel-hint")).await.is_err(), "no rule matches r3: no hint");
   // The answer is the labeler's, and counts as an acceptance of the rules source.
   let deadline = Instant::now() + STEP_TIMEOUT;
   loop {
       let sources: Value = admin.get(&format!("/api/projects/{pid}/prelabels/sources")).await;
       if sources[0]["acceptance"]["n"] == json!(1) {
           assert_eq!(sources[0]["acceptance"]["value"], json!(1.0), "{sources}");
           break;
       }
       assert!(Instant::now() < deadline, "the acceptance was never recorded: {sources}");
       tokio::time::sleep(Duration::from_millis(100)).await;
   }
   let export = admin.export_jsonl(pid, false).await;
   let r1 = export.iter().find(|l| l["id"] == "r1").unwrap();
   assert_eq!(
       (&r1["annotations"][0]["labeler"], &r1["annotations"][0]["labels"], r1["annotations"].as_array().unwrap().len()),
       (&json!("rulelab"), &json!(["positive"]), 1),
       "{r1}"
   );
   c.close().await.unwrap();
}
