//! The audit trail: every annotation, settings, membership and account change is appended
//! with who, when, before and after; leads and admins read it, labelers cannot; the database
//! itself refuses to change or delete an entry.
use std::process::Command;

use app::api_types::*;
use serde_json::json;

use crate::common::*;

both_backends!(
    annotations_are_logged_with_before_and_after,
    settings_and_membership_changes_are_logged,
    account_changes_are_logged_without_secrets,
    the_database_refuses_to_change_the_log,
    no_change_commits_without_its_entry,
);

fn entries(text: &str) -> Vec<AuditEntry> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not an AuditEntry ({e}): {l}")))
        .collect()
}

async fn project_log(c: &Client, pid: i64) -> Vec<AuditEntry> {
    let resp = c.get_raw(&format!("/api/projects/{pid}/audit")).await;
    resp.assert_status(200);
    assert_eq!(resp.headers["content-type"], "application/x-ndjson");
    entries(&resp.text())
}

async fn accounts_log(c: &Client) -> (String, Vec<AuditEntry>) {
    let resp = c.get_raw("/api/audit").await;
    resp.assert_status(200);
    let text = resp.text();
    let e = entries(&text);
    (text, e)
}

fn actions(log: &[AuditEntry]) -> Vec<AuditAction> {
    log.iter().map(|e| e.action).collect()
}

async fn annotations_are_logged_with_before_and_after(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("audited", 1, 600).await.id;
    let (lena, l) = server.user(&admin, "lena", Role::Labeler).await;
    admin.add_member(pid, lena.id).await;
    admin.import_texts(pid, "a", 1).await;

    let item = l.next(pid).await.item.expect("an item").id;
    let first = l.submit(pid, item, &["pos"]).await;
    // The same answer again changes no label: nothing to log. A refused one logs nothing.
    l.submit(pid, item, &["pos"]).await;
    l.submit_raw(pid, item, &["nope"], &client_id()).await.assert_error(400, "bad_request");
    let changed = l.submit(pid, item, &["neg"]).await;

    let history: Vec<AuditEntry> = admin.get(&format!("/api/projects/{pid}/items/{item}/history")).await;
    assert_eq!(history.len(), 2, "{history:#?}");
    let (created, change) = (&history[0], &history[1]);
    assert_eq!(
        *created,
        AuditEntry {
            id: created.id,
            at: first.created_at,
            actor_id: Some(lena.id),
            actor: Some("lena".into()),
            project_id: Some(pid),
            item_id: Some(item),
            user_id: Some(lena.id),
            user: Some("lena".into()),
            action: AuditAction::AnnotationCreated,
            before: None,
            after: Some(json!({"labels": ["pos"]})),
        }
    );
    assert_eq!(change.action, AuditAction::AnnotationChanged);
    assert_eq!((change.before.clone(), change.after.clone()), (Some(json!({"labels": ["pos"]})), Some(json!({"labels": ["neg"]}))));
    assert_eq!((change.at, change.actor.as_deref(), change.item_id), (changed.updated_at, Some("lena"), Some(item)));
    assert!(change.id > created.id);

    // A lead of the project reads it too; a labeler of the project reads nothing.
    let (lee, lead) = server.user(&admin, "lee", Role::Lead).await;
    admin.add_member(pid, lee.id).await;
    let as_lead: Vec<AuditEntry> = lead.get(&format!("/api/projects/{pid}/items/{item}/history")).await;
    assert_eq!(as_lead, history);
    l.get_raw(&format!("/api/projects/{pid}/items/{item}/history")).await.assert_error(403, "forbidden");
    l.get_raw(&format!("/api/projects/{pid}/audit")).await.assert_error(403, "forbidden");
    l.get_raw("/api/audit").await.assert_error(403, "forbidden");
    lead.get_raw("/api/audit").await.assert_error(403, "forbidden");
    admin.get_raw(&format!("/api/projects/{pid}/items/{}/history", item + 1000)).await.assert_error(404, "not_found");

    // The project's log, oldest first, through the API and through `mirrorset audit export`.
    let log = project_log(&lead, pid).await;
    assert_eq!(
        actions(&log),
        [
            AuditAction::ProjectCreated,
            AuditAction::MemberAdded,
            AuditAction::AnnotationCreated,
            AuditAction::AnnotationChanged,
            AuditAction::MemberAdded,
        ]
    );
    assert_eq!(log[0].actor.as_deref(), Some("admin"));
    assert_eq!(log[0].after.as_ref().unwrap()["overlap"], 1);
    assert_eq!((log[1].user.as_deref(), log[4].user.as_deref()), (Some("lena"), Some("lee")));
    assert_eq!(&log[2..4], &history[..]);

    let token = admin.create_token("audit").await.secret;
    let out = Command::new(env!("CARGO_BIN_EXE_mirrorset"))
        .args(["audit", "export", "--url", server.base_url(), "--token", &token, "--project", &pid.to_string()])
        .output()
        .expect("run mirrorset audit export");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(entries(&String::from_utf8(out.stdout).unwrap()), log);
}

async fn settings_and_membership_changes_are_logged(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("settings", 1, 600).await.id;
    let (lena, _) = server.user(&admin, "lena", Role::Labeler).await;
    admin.add_member(pid, lena.id).await;

    let patch = |body: serde_json::Value| {
        let admin = admin.clone();
        async move { admin.patch_json_raw(&format!("/api/projects/{pid}"), &body).await }
    };
    patch(json!({"name": "renamed", "overlap": 2, "lease_seconds": 600})).await.assert_status(200);
    // Nothing changes, or the change is refused: no entry.
    patch(json!({"overlap": 2})).await.assert_status(200);
    patch(json!({"overlap": 0})).await.assert_error(400, "bad_request");
    admin.delete_raw(&format!("/api/projects/{pid}/members/{}", lena.id)).await.assert_status(204);
    // Adding someone who already belongs changes nothing.
    admin.add_member(pid, lena.id).await;
    admin.add_member(pid, lena.id).await;

    let log = project_log(&admin, pid).await;
    assert_eq!(
        actions(&log),
        [
            AuditAction::ProjectCreated,
            AuditAction::MemberAdded,
            AuditAction::ProjectUpdated,
            AuditAction::MemberRemoved,
            AuditAction::MemberAdded,
        ]
    );
    let update = &log[2];
    // Only the fields that changed, before and after.
    assert_eq!(update.before, Some(json!({"name": "settings", "overlap": 1})));
    assert_eq!(update.after, Some(json!({"name": "renamed", "overlap": 2})));
    assert_eq!((update.actor.as_deref(), update.project_id, update.item_id), (Some("admin"), Some(pid), None));
    assert_eq!((log[3].user_id, log[3].actor.as_deref()), (Some(lena.id), Some("admin")));
    assert!(log.windows(2).all(|w| w[0].id < w[1].id && w[0].at <= w[1].at), "{log:#?}");
}

async fn account_changes_are_logged_without_secrets(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let (bob, _) = server.user(&admin, "bob", Role::Labeler).await;
    let user = |body: UserUpdate| {
        let admin = admin.clone();
        async move { admin.patch_json_raw(&format!("/api/users/{}", bob.id), &body).await }
    };
    user(UserUpdate { role: Some(Role::Lead), disabled: None }).await.assert_status(200);
    user(UserUpdate { role: Some(Role::Lead), disabled: Some(true) }).await.assert_status(200);
    user(UserUpdate { role: None, disabled: Some(false) }).await.assert_status(200);
    let reset = "reset-password-7f3a";
    admin
        .post_json_raw(&format!("/api/users/{}/password", bob.id), &PasswordReset { password: reset.into() })
        .await
        .assert_status(204);
    let b2 = server.client();
    b2.login("bob", reset).await;
    let own = "own-password-91cc";
    b2.post_json_raw("/api/me/password", &PasswordChange { current_password: reset.into(), new_password: own.into() })
        .await
        .assert_status(204);

    let (text, log) = accounts_log(&admin).await;
    // The first entry: the server made its admin at start-up, from the command line.
    assert_eq!((log[0].action, log[0].actor_id, log[0].user.as_deref()), (AuditAction::UserCreated, None, Some("admin")));
    let about_bob: Vec<&AuditEntry> = log.iter().filter(|e| e.user_id == Some(bob.id)).collect();
    let brief: Vec<_> = about_bob.iter().map(|e| (e.action, e.actor.as_deref(), e.before.clone(), e.after.clone())).collect();
    assert_eq!(
        brief,
        [
            (AuditAction::UserCreated, Some("admin"), None, Some(json!({"username": "bob", "role": "labeler"}))),
            (AuditAction::RoleChanged, Some("admin"), Some(json!({"role": "labeler"})), Some(json!({"role": "lead"}))),
            (AuditAction::UserDisabled, Some("admin"), Some(json!({"disabled": false})), Some(json!({"disabled": true}))),
            (AuditAction::UserEnabled, Some("admin"), Some(json!({"disabled": true})), Some(json!({"disabled": false}))),
            (AuditAction::PasswordReset, Some("admin"), None, None),
            (AuditAction::PasswordChanged, Some("bob"), None, None),
        ]
    );
    assert!(log.iter().all(|e| e.project_id.is_none()));
    for secret in [password_for("bob").as_str(), reset, own, "$argon2"] {
        assert!(!text.contains(secret), "the log holds a secret ({secret}): {text}");
    }
    // Bob is a lead now, and still cannot read the accounts' log.
    b2.get_raw("/api/audit").await.assert_error(403, "forbidden");
}

async fn the_database_refuses_to_change_the_log(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    admin.simple_project("append only", 1, 600).await;
    let (_, before) = accounts_log(&admin).await;
    assert!(!before.is_empty());

    let mut refusals = vec![
        server.try_exec_sql("UPDATE audit_log SET action = 'user_enabled'").await,
        server.try_exec_sql("UPDATE audit_log SET before_json = NULL, after_json = NULL WHERE id = 1").await,
        server.try_exec_sql("DELETE FROM audit_log").await,
        server.try_exec_sql("DELETE FROM audit_log WHERE id = 1").await,
    ];
    if b == Backend::Postgres {
        refusals.push(server.try_exec_sql("TRUNCATE audit_log").await);
    }
    for r in refusals {
        let e = r.expect_err("the database must refuse to change or delete an audit entry");
        assert!(e.contains("append-only"), "{e}");
    }
    // Appending is what the log is for: the database accepts it.
    let appended = server
        .try_exec_sql("INSERT INTO audit_log (at, action) VALUES (1, 'user_enabled')")
        .await
        .expect("an INSERT is allowed");
    assert_eq!(appended, 1);
    let (_, after) = accounts_log(&admin).await;
    assert_eq!(&after[..before.len()], &before[..], "entries changed behind the refusals");
}

/// The entry is written in the change's own transaction: when the database refuses the entry
/// (a test trigger here), the change itself is not made either.
async fn no_change_commits_without_its_entry(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("atomic", 1, 600).await.id;
    let (lena, l) = server.user(&admin, "lena", Role::Labeler).await;
    let (max, _) = server.user(&admin, "max", Role::Labeler).await;
    admin.add_member(pid, lena.id).await;
    admin.import_texts(pid, "t", 1).await;
    let item = l.next(pid).await.item.expect("an item").id;

    let refuse = match b {
        Backend::Sqlite => vec![
            "CREATE TRIGGER refuse_for_test BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'refused for the test'); END",
        ],
        Backend::Postgres => vec![
            "CREATE FUNCTION refuse_for_test() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'refused for the test'; END; $$",
            "CREATE TRIGGER refuse_for_test BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION refuse_for_test()",
        ],
    };
    for sql in refuse {
        server.exec_sql(sql).await;
    }
    l.submit_raw(pid, item, &["pos"], &client_id()).await.assert_error(500, "internal");
    admin.patch_json_raw(&format!("/api/projects/{pid}"), &json!({"overlap": 2})).await.assert_error(500, "internal");
    admin
        .post_json_raw(&format!("/api/projects/{pid}/members"), &AddMember { user_id: Some(max.id), username: None })
        .await
        .assert_error(500, "internal");
    admin
        .patch_json_raw(&format!("/api/users/{}", max.id), &UserUpdate { role: Some(Role::Lead), disabled: None })
        .await
        .assert_error(500, "internal");

    // None of the four changes happened.
    let exported = admin.export_jsonl(pid, false).await;
    assert_eq!((exported[0]["label_count"].as_i64(), exported[0]["annotations"].as_array().map(Vec::len)), (Some(0), Some(0)));
    assert_eq!(admin.project(pid).await.overlap, 1);
    let members: Vec<Member> = admin.get(&format!("/api/projects/{pid}/members")).await;
    assert!(members.iter().all(|m| m.user.id != max.id), "{members:?}");
    let users: Vec<User> = admin.get("/api/users").await;
    assert_eq!(users.iter().find(|u| u.id == max.id).map(|u| u.role), Some(Role::Labeler));

    // Without the test trigger the same submission goes through, with its entry.
    server.exec_sql(match b {
        Backend::Sqlite => "DROP TRIGGER refuse_for_test",
        Backend::Postgres => "DROP TRIGGER refuse_for_test ON audit_log",
    })
    .await;
    l.submit(pid, item, &["pos"]).await;
    let history: Vec<AuditEntry> = admin.get(&format!("/api/projects/{pid}/items/{item}/history")).await;
    assert_eq!(actions(&history), [AuditAction::AnnotationCreated]);
}
