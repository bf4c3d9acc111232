//! Account lifecycle: disabling, roles, password changes and resets, the last-admin guard,
//! token expiry, sign-in throttling and the sliding session expiry.
use std::time::{Duration, Instant};

use app::api_types::*;
use reqwest::header::{RETRY_AFTER, SET_COOKIE};
use serde_json::json;

use crate::common::*;

both_backends!(
    disabling_stops_sessions_and_tokens_at_once,
    role_changes_take_effect_at_once,
    password_changes_sign_out_other_sessions,
    the_last_enabled_admin_cannot_be_locked_out,
    admins_disabling_each_other_at_once_keep_one,
    only_admins_reach_the_account_routes,
    tokens_expire_and_cannot_mint_tokens,
    failed_sign_ins_are_throttled,
    active_sessions_slide_and_idle_ones_end,
);

async fn patch_user(admin: &Client, id: i64, body: serde_json::Value) -> RawResponse {
    admin.patch_json_raw(&format!("/api/users/{id}"), &body).await
}

async fn disabling_stops_sessions_and_tokens_at_once(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let (dana, session) = server.user(&admin, "dana", Role::Labeler).await;
    let token = session.create_token("dana's script").await;
    let bearer = Client::with_bearer(server.base_url(), &token.secret);
    assert_eq!(session.me().await.user.id, dana.id);
    assert_eq!(bearer.me().await.user.id, dana.id);

    let off: User = patch_user(&admin, dana.id, json!({"disabled": true})).await.ok();
    assert!(off.disabled, "{off:?}");
    assert_eq!(off.role, Role::Labeler, "the role is kept");
    // The very next request of the existing session and of the token is refused.
    session.get_raw("/api/me").await.assert_error(401, "account_disabled");
    bearer.get_raw("/api/me").await.assert_error(401, "account_disabled");
    bearer.get_raw("/api/projects").await.assert_error(401, "account_disabled");
    // The session is gone for good (the refusal ended it), not just paused.
    session.get_raw("/api/me").await.assert_error(401, "unauthorized");
    // Signing in: the right password says why; a wrong one reveals nothing.
    let anon = server.client();
    let err = anon.login_raw("dana", &password_for("dana")).await.assert_error(401, "account_disabled");
    assert!(err.message.contains("disabled"), "{err:?}");
    anon.login_raw("dana", "wrong password").await.assert_error(401, "unauthorized");
    assert!(!anon.has_session_cookie(), "no session for a disabled account");
    let listed: Vec<User> = admin.get("/api/users").await;
    assert!(listed.iter().any(|u| u.id == dana.id && u.disabled), "{listed:?}");

    let on: User = patch_user(&admin, dana.id, json!({"disabled": false})).await.ok();
    assert!(!on.disabled);
    // Enabled again: the token works again and she can sign in; the old session stays ended.
    assert_eq!(bearer.me().await.user.id, dana.id);
    let again = server.client();
    assert_eq!(again.login("dana", &password_for("dana")).await.user.id, dana.id);
    session.get_raw("/api/me").await.assert_error(401, "unauthorized");
    patch_user(&admin, 999_999, json!({"disabled": true})).await.assert_error(404, "not_found");
}

/// An instance remembers whom a token or a session belongs to, and a session's record, for a
/// second (`auth::fresh_cache`): a change made through another instance on the same database
/// reaches it when that second is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn disabling_through_another_instance_stops_tokens_and_sessions_within_a_second() {
    let first = TestServer::start(Backend::Postgres).await;
    let second = first.another_instance().await;
    let admin = first.admin().await;
    let (dana, session) = first.user(&admin, "dana", Role::Labeler).await;
    let token = session.create_token("dana's script").await;
    let token_on_second = Client::with_bearer(second.base_url(), &token.secret);
    let session_on_second = session.on(second.base_url());
    assert_eq!(token_on_second.me().await.user.id, dana.id, "the second instance has read the token's owner");
    assert_eq!(session_on_second.me().await.user.id, dana.id, "and the session's record and user");

    let off: User = patch_user(&admin, dana.id, json!({"disabled": true})).await.ok();
    assert!(off.disabled);
    let changed = Instant::now();
    Client::with_bearer(first.base_url(), &token.secret).get_raw("/api/me").await.assert_error(401, "account_disabled");
    refused_within_three_seconds(&token_on_second, changed, "account_disabled").await;
    refused_within_three_seconds(&session_on_second, changed, "account_disabled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn signing_out_through_another_instance_ends_the_session_within_a_second() {
    let first = TestServer::start(Backend::Postgres).await;
    let second = first.another_instance().await;
    let admin = first.admin().await;
    let (_, session) = first.user(&admin, "dana", Role::Labeler).await;
    let on_second = session.on(second.base_url());
    on_second.me().await;
    session.logout().await;
    let signed_out = Instant::now();
    refused_within_three_seconds(&on_second, signed_out, "unauthorized").await;
}

/// Waits for `client`'s next `GET /api/me` to be refused with 401 `code`; fails when it is
/// still served 3 s after `changed`.
async fn refused_within_three_seconds(client: &Client, changed: Instant, code: &str) {
    loop {
        let r = client.get_raw("/api/me").await;
        if r.status.as_u16() == 401 {
            r.assert_error(401, code);
            return;
        }
        assert_eq!(r.status.as_u16(), 200, "{}", r.text());
        let waited = changed.elapsed();
        assert!(waited < Duration::from_secs(3), "the second instance still takes the credential {waited:?} after");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn role_changes_take_effect_at_once(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let (leo, lead) = server.user(&admin, "leo", Role::Lead).await;
    let lead_token = Client::with_bearer(server.base_url(), &lead.create_token("leo's script").await.secret);
    lead.get_raw("/api/users").await.assert_error(403, "forbidden");
    // The token's owner was read just now, and is remembered: the change must still show.
    lead_token.get_raw("/api/users").await.assert_error(403, "forbidden");

    let promoted: User = patch_user(&admin, leo.id, json!({"role": "admin"})).await.ok();
    assert_eq!((promoted.role, promoted.disabled), (Role::Admin, false));
    // The same session, without signing in again, is an admin now, and so is the token.
    let users: Vec<User> = lead.get("/api/users").await;
    assert_eq!(users.len(), 2);
    let users: Vec<User> = lead_token.get("/api/users").await;
    assert_eq!(users.len(), 2);

    let demoted: User = patch_user(&admin, leo.id, json!({"role": "labeler"})).await.ok();
    assert_eq!(demoted.role, Role::Labeler);
    assert_eq!(lead.me().await.user.role, Role::Labeler);
    lead.post_json_raw("/api/projects", &new_project("not allowed", 1, 600)).await.assert_error(403, "forbidden");
    lead.get_raw("/api/users").await.assert_error(403, "forbidden");
    assert_eq!(lead_token.me().await.user.role, Role::Labeler);
    lead_token.get_raw("/api/users").await.assert_error(403, "forbidden");

    patch_user(&admin, leo.id, json!({"role": "boss"})).await.assert_error(400, "bad_request");
    // An empty change changes nothing.
    let same: User = patch_user(&admin, leo.id, json!({})).await.ok();
    assert_eq!((same.role, same.disabled), (Role::Labeler, false));
}

async fn password_changes_sign_out_other_sessions(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let (pat, s1) = server.user(&admin, "pat", Role::Labeler).await;
    let s2 = server.client();
    s2.login("pat", &password_for("pat")).await;
    let token = s1.create_token("pat's script").await;
    let change = |current: &str, new: &str| PasswordChange { current_password: current.into(), new_password: new.into() };

    let err = s1
        .post_json_raw("/api/me/password", &change("not my password", "brand new password"))
        .await
        .assert_error(403, "forbidden");
    assert!(err.message.contains("current password"), "{err:?}");
    s1.post_json_raw("/api/me/password", &change(&password_for("pat"), "short"))
        .await
        .assert_error(400, "bad_request");
    s2.me().await; // nothing happened yet

    s1.post_json_raw("/api/me/password", &change(&password_for("pat"), "brand new password"))
        .await
        .assert_status(204);
    assert_eq!(s1.me().await.user.id, pat.id, "the session that changed it stays signed in");
    s1.create_token("after the change").await; // and its CSRF token still works
    let err = s2.get_raw("/api/me").await.assert_error(401, "unauthorized");
    assert!(err.message.contains("sign in again"), "{err:?}");
    server.client().login_raw("pat", &password_for("pat")).await.assert_error(401, "unauthorized");
    server.client().login("pat", "brand new password").await;
    // API tokens are separate credentials: they keep working until revoked.
    assert_eq!(Client::with_bearer(server.base_url(), &token.secret).me().await.user.id, pat.id);

    // An admin's reset signs the user out everywhere, including the session that changed it.
    admin
        .post_json_raw(&format!("/api/users/{}/password", pat.id), &PasswordReset { password: "set by the admin".into() })
        .await
        .assert_status(204);
    s1.get_raw("/api/me").await.assert_error(401, "unauthorized");
    server.client().login_raw("pat", "brand new password").await.assert_error(401, "unauthorized");
    server.client().login("pat", "set by the admin").await;

    let me = admin.me().await.user.id;
    admin
        .post_json_raw(&format!("/api/users/{me}/password"), &PasswordReset { password: "long enough pw".into() })
        .await
        .assert_error(409, "conflict");
    admin
        .post_json_raw(&format!("/api/users/{}/password", pat.id), &PasswordReset { password: "short".into() })
        .await
        .assert_error(400, "bad_request");
    admin
        .post_json_raw("/api/users/999999/password", &PasswordReset { password: "long enough pw".into() })
        .await
        .assert_error(404, "not_found");
    server.client().login("admin", server.admin_password()).await; // unchanged by the refusals
}

async fn the_last_enabled_admin_cannot_be_locked_out(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let admin_id = admin.me().await.user.id;
    patch_user(&admin, admin_id, json!({"disabled": true})).await.assert_error(409, "conflict");
    let err = patch_user(&admin, admin_id, json!({"role": "lead"})).await.assert_error(409, "conflict");
    assert!(err.message.contains("last enabled admin"), "{err:?}");

    let (second, admin2) = server.user(&admin, "second", Role::Admin).await;
    // Another admin may disable the first; then the second is the last one.
    patch_user(&admin2, admin_id, json!({"disabled": true})).await.assert_status(200);
    patch_user(&admin2, second.id, json!({"disabled": true})).await.assert_error(409, "conflict");
    patch_user(&admin2, second.id, json!({"role": "labeler"})).await.assert_error(409, "conflict");
    // Re-enabling and demoting a disabled admin in one request is fine (they were not counted).
    let back: User = patch_user(&admin2, admin_id, json!({"disabled": false})).await.ok();
    assert!(!back.disabled);
    let demoted: User = patch_user(&admin2, second.id, json!({"role": "lead"})).await.ok();
    assert_eq!(demoted.role, Role::Lead);
    let users: Vec<User> = server.admin().await.get("/api/users").await;
    let enabled_admins = users.iter().filter(|u| u.role == Role::Admin && !u.disabled).count();
    assert_eq!(enabled_admins, 1, "{users:?}");
}

/// A connection of the test holding the rows of some users locked (PostgreSQL: `FOR UPDATE`;
/// SQLite: the database's write lock), so that requests pile up behind it.
enum HeldRows {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

async fn hold_user_rows(server: &TestServer, ids: &[i64]) -> HeldRows {
    use sqlx::Connection;
    let list = ids.iter().map(|id| id.to_string()).collect::<Vec<_>>().join(", ");
    if server.database_url().starts_with("sqlite:") {
        let mut conn = sqlx::SqliteConnection::connect(server.database_url()).await.unwrap();
        sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await.unwrap();
        HeldRows::Sqlite(conn)
    } else {
        let mut conn = sqlx::PgConnection::connect(server.database_url()).await.unwrap();
        sqlx::query("BEGIN").execute(&mut conn).await.unwrap();
        sqlx::query(&format!("SELECT id FROM users WHERE id IN ({list}) FOR UPDATE")).execute(&mut conn).await.unwrap();
        HeldRows::Postgres(conn)
    }
}

async fn release(held: HeldRows) {
    match held {
        HeldRows::Sqlite(mut c) => sqlx::query("ROLLBACK").execute(&mut c).await.map(drop).unwrap(),
        HeldRows::Postgres(mut c) => sqlx::query("ROLLBACK").execute(&mut c).await.map(drop).unwrap(),
    }
}

async fn admins_disabling_each_other_at_once_keep_one(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let (a2, c2) = server.user(&admin, "a2", Role::Admin).await;
    let (a3, c3) = server.user(&admin, "a3", Role::Admin).await;
    let first = admin.me().await.user.id;
    patch_user(&c2, first, json!({"disabled": true})).await.assert_status(200);

    // a2 and a3 are the only enabled admins. Each disables the other while their rows are
    // locked, so both requests have passed authentication and wait inside their update when
    // the lock goes: without the accounts lock both would count the other as the remaining
    // admin, and nobody would be left.
    let held = hold_user_rows(&server, &[a2.id, a3.id]).await;
    let (by_a2, by_a3) = (c2.clone(), c3.clone());
    let t2 = tokio::spawn(async move { patch_user(&by_a2, a3.id, json!({"disabled": true})).await });
    let t3 = tokio::spawn(async move { patch_user(&by_a3, a2.id, json!({"disabled": true})).await });
    tokio::time::sleep(Duration::from_millis(800)).await;
    release(held).await;
    let answers = [t2.await.unwrap(), t3.await.unwrap()];
    let ok = answers.iter().filter(|r| r.status.as_u16() == 200).count();
    assert_eq!(ok, 1, "exactly one succeeds: {answers:?}");
    let refused = answers.iter().find(|r| r.status.as_u16() != 200).unwrap();
    refused.assert_error(409, "conflict");
    let mut enabled = 0;
    for name in ["a2", "a3"] {
        if server.client().login_raw(name, &password_for(name)).await.status.is_success() {
            enabled += 1;
        }
    }
    assert_eq!(enabled, 1, "one enabled admin remains");
}

async fn only_admins_reach_the_account_routes(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let (target, _) = server.user(&admin, "target", Role::Labeler).await;
    let (_, labeler) = server.user(&admin, "lab", Role::Labeler).await;
    let (_, lead) = server.user(&admin, "lead", Role::Lead).await;
    let lab_token = Client::with_bearer(server.base_url(), &labeler.create_token("lab").await.secret);
    for caller in [&labeler, &lead, &lab_token] {
        patch_user(caller, target.id, json!({"disabled": true})).await.assert_error(403, "forbidden");
        patch_user(caller, target.id, json!({"role": "admin"})).await.assert_error(403, "forbidden");
        caller
            .post_json_raw(&format!("/api/users/{}/password", target.id), &PasswordReset { password: "taken over!".into() })
            .await
            .assert_error(403, "forbidden");
    }
    // Anonymous: signed out.
    patch_user(&server.client(), target.id, json!({"disabled": true})).await.assert_error(401, "unauthorized");
    let users: Vec<User> = admin.get("/api/users").await;
    let t = users.iter().find(|u| u.id == target.id).unwrap();
    assert_eq!((t.role, t.disabled), (Role::Labeler, false), "nothing changed");
    server.client().login("target", &password_for("target")).await;
}

async fn tokens_expire_and_cannot_mint_tokens(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let before = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let expiring: CreatedToken = admin
        .post_created("/api/tokens", &NewToken { name: "month".into(), expires_in_days: Some(30) })
        .await;
    let month = 30 * 86_400_000;
    let at = expiring.token.expires_at.expect("an expiry");
    assert!(at >= before + month && at <= before + month + 60_000, "expires_at {at} is 30 days after {before}");
    let listed: Vec<ApiToken> = admin.get("/api/tokens").await;
    assert_eq!(listed.iter().find(|t| t.id == expiring.token.id).unwrap().expires_at, Some(at));
    let forever = admin.create_token("forever").await;
    assert_eq!(forever.token.expires_at, None);
    for days in [0, -1, 3651] {
        admin
            .post_json_raw("/api/tokens", &json!({"name": "bad", "expires_in_days": days}))
            .await
            .assert_error(400, "bad_request");
    }

    let bearer = Client::with_bearer(server.base_url(), &expiring.secret);
    assert_eq!(bearer.me().await.user.username, "admin");
    // Its expiry passes (moved into the past behind the server's back).
    let moved = server
        .exec_sql(&format!("UPDATE api_tokens SET expires_at = {} WHERE id = {}", before - 1, expiring.token.id))
        .await;
    assert_eq!(moved, 1);
    // A change behind the server's back reaches a token it has just read once the owner it
    // remembers is a second old (`auth::fresh_cache::FRESH_FOR`).
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    let err = bearer.get_raw("/api/me").await.assert_error(401, "token_expired");
    assert!(err.message.contains("expired"), "{err:?}");
    bearer.get_raw("/api/projects").await.assert_error(401, "token_expired");

    // A bearer token cannot create tokens, with or without an expiry; a session can.
    let by_token = Client::with_bearer(server.base_url(), &forever.secret);
    let err = by_token.post_json_raw("/api/tokens", &NewToken { name: "minted".into(), expires_in_days: None }).await;
    let err = err.assert_error(403, "forbidden");
    assert!(err.message.contains("session"), "{err:?}");
    by_token
        .post_json_raw("/api/tokens", &NewToken { name: "minted".into(), expires_in_days: Some(1) })
        .await
        .assert_error(403, "forbidden");
    let names: Vec<String> = by_token.get::<Vec<ApiToken>>("/api/tokens").await.into_iter().map(|t| t.name).collect();
    assert_eq!(names, vec!["month".to_string(), "forever".to_string()], "nothing was minted");
}

async fn failed_sign_ins_are_throttled(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    admin.create_user("bob", &password_for("bob"), Role::Labeler).await;
    let anon = server.client();

    // A success clears the name's count: 5 failures and a success, then 10 more failures
    // are all still answered 401 (15 in the window, but only 10 since the success).
    for i in 0..5 {
        anon.login_raw("admin", &format!("early guess {i}")).await.assert_error(401, "unauthorized");
    }
    server.admin().await;
    for i in 0..10 {
        anon.login_raw("admin", &format!("guess {i}")).await.assert_error(401, "unauthorized");
    }
    // The 11th attempt is refused before the password is checked, even the right one.
    for password in ["guess 11", server.admin_password()] {
        let r = anon.login_raw("admin", password).await;
        let err = r.assert_error(429, "too_many_requests");
        assert!(err.message.contains("too many failed sign-ins for this user name"), "{err:?}");
        let retry: u64 = r
            .headers
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("429 without a numeric Retry-After: {:?}", r.headers));
        assert!((800..=900).contains(&retry), "Retry-After {retry}: the rest of the 15-minute window");
    }
    // Only that name is held back: the signed-in admin goes on, another name signs in.
    admin.me().await;
    server.client().login("bob", &password_for("bob")).await;
}

async fn active_sessions_slide_and_idle_ones_end(b: Backend) {
    // A 2.4-second idle window; the real default is 14 days.
    let server = TestServer::start_with_args(b, &["--session-idle-minutes", "0.04"]).await;
    let window = Duration::from_millis(2400);
    let active = server.admin().await;
    let idle = server.admin().await;

    // Twice the window of steady activity: every request finds the session alive.
    let start = Instant::now();
    let (mut requests, mut refreshed) = (0, 0);
    while start.elapsed() < window * 2 {
        requests += 1;
        let r = active.get_raw("/api/me").await;
        r.assert_status(200);
        let cookie = r.headers.get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join("; ");
        if cookie.contains("mirrorset_session=") {
            assert!(cookie.contains("Max-Age=2"), "a refreshed cookie lives for the idle window: {cookie}");
            refreshed += 1;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(refreshed >= 2, "the session was re-saved as it was used ({refreshed} times)");
    assert!(refreshed * 2 < requests, "but not on every request ({refreshed} of {requests})");
    // The other session, idle all along, has ended.
    idle.get_raw("/api/me").await.assert_error(401, "unauthorized");

    // Now the active one goes idle for longer than the window, and ends too.
    tokio::time::sleep(window + Duration::from_millis(600)).await;
    active.get_raw("/api/me").await.assert_error(401, "unauthorized");
}
