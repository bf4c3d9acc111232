//! Who may see and do what; sessions, CSRF and bearer tokens; the error shape.
use std::collections::BTreeSet;

use app::api_types::*;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(
    labeler_sees_only_own_projects,
    labelers_never_see_others_labels,
    leads_manage_only_their_projects,
    csrf_and_bearer_tokens,
    sessions_survive_restart,
    error_bodies,
);

async fn labeler_sees_only_own_projects(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let p1 = admin.simple_project("mine", 1, 600).await.id;
    let p2 = admin.simple_project("not mine", 1, 600).await.id;
    admin.import_texts(p1, "p1", 2).await;
    let data = jsonl(&[json!({"id": "secret", "image": "s.png"})]);
    admin.import(p2, "zip", zip_of(&[("d.jsonl", data.as_bytes()), ("s.png", &png(6, 6, 5))])).await;
    let p2_item = admin.next(p2).await.item.expect("admin sees p2's item").id;
    admin.skip(p2, p2_item).await;

    let (lu, l) = server.user(&admin, "outsider", Role::Labeler).await;
    admin.add_member(p1, lu.id).await;

    let visible: Vec<i64> = l.projects().await.iter().map(|s| s.project.id).collect();
    assert_eq!(visible, vec![p1], "a labeler lists only their projects");

    // Another project: invisible, 404 as for a project that does not exist, so ids do not leak
    // (auth::visible_project).
    for path in [
        format!("/api/projects/{p2}"),
        format!("/api/projects/{p2}/progress"),
        format!("/api/projects/{p2}/previous"),
        format!("/api/projects/{p2}/export?format=jsonl"),
        format!("/api/projects/{p2}/members"),
        format!("/api/items/{p2_item}/image"),
        format!("/api/items/{p2_item}/thumbnail"),
    ] {
        l.get_raw(&path).await.assert_error(404, "not_found");
    }
    l.next_raw(p2, &[]).await.assert_error(404, "not_found");
    l.submit_raw(p2, p2_item, &["pos"], &client_id()).await.assert_error(404, "not_found");
    l.skip_raw(p2, p2_item).await.assert_error(404, "not_found");
    l.import_raw(p2, "jsonl", b"{\"text\":\"x\"}\n".to_vec()).await.assert_error(404, "not_found");

    // Their own project: label, yes; manage or read everyone's labels, no.
    let id = l.next_id(p1).await.expect("an item in p1");
    l.submit(p1, id, &["pos"]).await;
    l.export_raw(p1, "jsonl", false).await.assert_error(403, "forbidden");
    l.export_raw(p1, "csv", true).await.assert_error(403, "forbidden");
    l.get_raw(&format!("/api/projects/{p1}/members")).await.assert_error(403, "forbidden");
    l.import_raw(p1, "jsonl", b"{\"text\":\"x\"}\n".to_vec()).await.assert_error(403, "forbidden");
    l.patch_json_raw(&format!("/api/projects/{p1}"), &json!({"name": "renamed"})).await.assert_error(403, "forbidden");
    l.post_json_raw(&format!("/api/projects/{p1}/members"), &json!({"user_id": lu.id}))
        .await
        .assert_error(403, "forbidden");
    l.post_json_raw("/api/projects", &new_project("mine now", 1, 600)).await.assert_error(403, "forbidden");
    l.get_raw("/api/users").await.assert_error(403, "forbidden");
    l.post_json_raw("/api/users", &json!({"username": "x", "password": "long enough pw", "role": "admin"}))
        .await
        .assert_error(403, "forbidden");
    assert_eq!(admin.summary(p1).await.item_count, 2, "the refused import added nothing");
    assert_eq!(admin.project(p1).await.name, "mine", "the refused rename changed nothing");
}

async fn labelers_never_see_others_labels(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("overlap", 2, 600).await.id;
    admin.import_texts(pid, "ov", 1).await;
    let (u1, l1) = server.user(&admin, "alice", Role::Labeler).await;
    let (u2, l2) = server.user(&admin, "bob", Role::Labeler).await;
    admin.add_member(pid, u1.id).await;
    admin.add_member(pid, u2.id).await;

    let id = l1.next_id(pid).await.unwrap();
    let a1 = l1.submit(pid, id, &["neg"]).await;

    // bob gets the same item (overlap 2) with nothing about alice's answer in it.
    let raw = l2.next_raw(pid, &[]).await;
    raw.assert_status(200);
    let v: Value = raw.json();
    let item = v["item"].as_object().expect("bob gets the item");
    assert_eq!(item["id"], id);
    let allowed: BTreeSet<&str> =
        ["id", "external_id", "kind", "text", "image_url", "width", "height", "meta"].into_iter().collect();
    for key in item.keys() {
        assert!(allowed.contains(key.as_str()), "the item a labeler sees has an unexpected field {key:?}: {v}");
    }
    assert!(!raw.text().contains("alice"), "nothing of alice's in bob's item: {}", raw.text());
    // bob has no submissions of his own to go back to, and sees none of alice's.
    l2.get_raw(&format!("/api/projects/{pid}/previous")).await.assert_error(404, "not_found");
    l2.get_raw(&format!("/api/projects/{pid}/previous?before={}", a1.id + 1))
        .await
        .assert_error(404, "not_found");
    let p = l2.progress(pid).await;
    assert_eq!((p.mine_total, p.mine_today), (0, 0), "{p:?}");

    let a2 = l2.submit(pid, id, &["pos"]).await;
    let prev: PreviousSubmission = l2.get(&format!("/api/projects/{pid}/previous")).await;
    assert_eq!(prev.annotation.id, a2.id);
    assert_eq!(prev.annotation.user_id, u2.id);
    assert_eq!(prev.annotation.labels, vec!["pos".to_string()]);
    let prev1: PreviousSubmission = l1.get(&format!("/api/projects/{pid}/previous")).await;
    assert_eq!((prev1.annotation.id, prev1.annotation.labels.clone()), (a1.id, vec!["neg".to_string()]));
    // Export is for admins and leads only.
    l1.export_raw(pid, "jsonl", false).await.assert_error(403, "forbidden");
}

async fn leads_manage_only_their_projects(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let (lead_user, lead) = server.user(&admin, "lead1", Role::Lead).await;
    let (lab_user, _lab) = server.user(&admin, "lab1", Role::Labeler).await;
    let other = admin.simple_project("admin's", 1, 600).await.id;

    // A lead may create a project, and then manages it.
    let own = lead.create_project(&new_project("lead's own", 1, 600)).await.id;
    let listed: Vec<i64> = lead.projects().await.iter().map(|s| s.project.id).collect();
    assert_eq!(listed, vec![own], "the lead belongs to the project they created");
    assert_eq!(lead.import_texts(own, "lead", 2).await.imported, 2);
    lead.add_member(own, lab_user.id).await;
    let members: Vec<Member> = lead.get(&format!("/api/projects/{own}/members")).await;
    let names: BTreeSet<String> = members.iter().map(|m| m.user.username.clone()).collect();
    assert!(names.contains("lab1"), "{names:?}");
    lead.export_raw(own, "jsonl", false).await.assert_status(200);
    let patched: Project = lead
        .patch_json_raw(&format!("/api/projects/{own}"), &json!({"instructions": "Be careful."}))
        .await
        .ok();
    assert_eq!(patched.instructions, "Be careful.");

    // Not a member of the admin's project: it is invisible (404, as if it did not exist).
    lead.export_raw(other, "jsonl", false).await.assert_error(404, "not_found");
    lead.import_raw(other, "jsonl", b"{\"text\":\"x\"}\n".to_vec()).await.assert_error(404, "not_found");
    lead.get_raw("/api/users").await.assert_error(403, "forbidden");
    // Once added, the lead manages it too.
    admin.add_member(other, lead_user.id).await;
    lead.export_raw(other, "csv", false).await.assert_status(200);
    lead.delete_raw(&format!("/api/projects/{own}/members/{}", lab_user.id)).await.assert_status(204);
    let members: Vec<Member> = lead.get(&format!("/api/projects/{own}/members")).await;
    assert!(members.iter().all(|m| m.user.id != lab_user.id), "removed: {members:?}");
}

async fn csrf_and_bearer_tokens(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let body = new_project("csrf", 1, 600);

    // Cookie without the header, or with a wrong one: refused.
    admin.without_csrf().post_json_raw("/api/projects", &body).await.assert_error(403, "forbidden");
    admin.with_csrf_token("not-the-token").post_json_raw("/api/projects", &body).await.assert_error(403, "forbidden");
    // Another session's token does not fit this session.
    let other = server.admin().await;
    let theirs = other.csrf_token().unwrap();
    assert_ne!(Some(theirs.clone()), admin.csrf_token(), "each session has its own CSRF token");
    admin.with_csrf_token(&theirs).post_json_raw("/api/projects", &body).await.assert_error(403, "forbidden");
    assert!(admin.projects().await.is_empty(), "none of the refused requests created anything");
    // GET needs no header; the right header works.
    admin.without_csrf().me().await;
    admin.create_project(&body).await;

    // Bearer tokens need no CSRF header.
    let created = admin.create_token("ci script").await;
    assert!(!created.secret.is_empty());
    let bearer = Client::with_bearer(server.base_url(), &created.secret);
    assert_eq!(bearer.me().await.user.username, "admin");
    let p = bearer.create_project(&new_project("by token", 1, 600)).await;
    bearer.import_texts(p.id, "tok", 1).await;
    let raw = admin.get_raw("/api/tokens").await;
    let tokens: Vec<ApiToken> = raw.json();
    assert!(tokens.iter().any(|t| t.id == created.token.id && t.name == "ci script"), "{tokens:?}");
    assert!(!raw.text().contains(&created.secret), "the secret is shown only once");
    // A wrong token, and a deleted one, are 401.
    Client::with_bearer(server.base_url(), "ms_not-a-real-token").get_raw("/api/me").await.assert_error(401, "unauthorized");
    admin.delete_raw(&format!("/api/tokens/{}", created.token.id)).await.assert_status(204);
    bearer.get_raw("/api/me").await.assert_error(401, "unauthorized");

    // Logout ends the session on the server, not just in this client.
    let copy = admin.clone();
    admin.logout().await;
    admin.get_raw("/api/me").await.assert_error(401, "unauthorized");
    copy.get_raw("/api/me").await.assert_error(401, "unauthorized");
}

async fn sessions_survive_restart(b: Backend) {
    let mut server = TestServer::start(b).await;
    let admin = server.admin().await;
    let (lu, l) = server.user(&admin, "steady", Role::Labeler).await;
    let pid = admin.simple_project("restart", 1, 600).await.id;
    admin.add_member(pid, lu.id).await;
    admin.import_texts(pid, "rs", 3).await;
    let token = admin.create_token("survivor").await;
    let held = l.next_id(pid).await.unwrap();

    server.restart().await;
    assert_eq!(admin.me().await.user.username, "admin", "the admin's session survived a restart");
    assert_eq!(l.me().await.user.id, lu.id);
    // The CSRF token survived with the session.
    admin.create_project(&new_project("after restart", 1, 600)).await;
    assert_eq!(Client::with_bearer(server.base_url(), &token.secret).me().await.user.username, "admin");
    // The lease survived too.
    assert_eq!(l.next_id(pid).await, Some(held), "the held item is still the labeler's");
    l.submit(pid, held, &["pos"]).await;

    server.crash_restart().await;
    assert_eq!(l.me().await.user.id, lu.id, "sessions survive a crash");
    assert_eq!(l.progress(pid).await.mine_total, 1);
}

async fn error_bodies(b: Backend) {
    let server = TestServer::start(b).await;
    let anon = server.client();
    anon.get_raw("/api/me").await.assert_error(401, "unauthorized");
    anon.get_raw("/api/projects").await.assert_error(401, "unauthorized");
    // Not signed in is 401 before any CSRF check (there is no session to hold a token).
    anon.post_json_raw("/api/projects", &new_project("x", 1, 600)).await.assert_error(401, "unauthorized");
    let wrong_pw = anon.login_raw("admin", "wrong password").await.assert_error(401, "unauthorized");
    let no_user = anon.login_raw("nobody", "wrong password").await.assert_error(401, "unauthorized");
    assert_eq!(wrong_pw.message, no_user.message, "an unknown user and a wrong password look the same");
    anon.post_json_raw("/api/auth/login", &json!({"username": "admin"})).await.assert_error(400, "bad_request");

    let admin = server.admin().await;
    admin.get_raw("/api/projects/999999").await.assert_error(404, "not_found");
    admin.get_raw("/api/projects/not-a-number").await.assert_error(400, "bad_request");
    admin.get_raw("/api/no/such/route").await.assert_error(404, "not_found");
    admin
        .raw(Method::POST, "/api/projects", Some((b"{\"name\": ".to_vec(), "application/json")))
        .await
        .assert_error(400, "bad_request");
    admin.post_json_raw("/api/projects", &json!({"name": "no labels"})).await.assert_error(400, "bad_request");
    admin.post_json_raw("/api/projects", &new_project("zero overlap", 0, 600)).await.assert_error(400, "bad_request");
    admin.post_json_raw("/api/projects", &new_project("", 1, 600)).await.assert_error(400, "bad_request");
    admin.next_raw(999999, &[]).await.assert_error(404, "not_found");

    admin.create_user("dup", "long enough pw", Role::Labeler).await;
    admin
        .post_json_raw("/api/users", &NewUser { username: "dup".into(), password: "long enough pw".into(), role: Role::Lead })
        .await
        .assert_error(409, "conflict");
    admin
        .post_json_raw("/api/users", &NewUser { username: "shorty".into(), password: "short".into(), role: Role::Lead })
        .await
        .assert_error(400, "bad_request");
    admin.delete_raw("/api/tokens/999999").await.assert_error(404, "not_found");

    let pid = admin.simple_project("errors", 1, 600).await.id;
    admin.import_texts(pid, "err", 2).await;
    let id = admin.next_id(pid).await.unwrap();
    admin.submit_raw(pid, id, &["nonexistent"], &client_id()).await.assert_error(400, "bad_request");
    admin.submit_raw(pid, id, &["pos", "neg"], &client_id()).await.assert_error(400, "bad_request");
    admin.submit_raw(pid, id, &["pos"], "").await.assert_error(400, "bad_request");
    admin.submit_raw(pid, 999999, &["pos"], &client_id()).await.assert_error(404, "not_found");
    admin.get_raw(&format!("/api/projects/{pid}/previous")).await.assert_error(404, "not_found");
    admin.export_raw(pid, "xml", false).await.assert_error(400, "bad_request");
    admin.submit(pid, id, &["pos"]).await;
    // Removing a label that annotations use is a conflict; adding one is fine.
    let mut labels = new_project("", 1, 600).labels;
    labels.retain(|l| l.name != "pos");
    admin
        .patch_json_raw(&format!("/api/projects/{pid}"), &ProjectUpdate { labels: Some(labels.clone()), ..Default::default() })
        .await
        .assert_error(409, "conflict");
    labels.insert(0, label("pos", "p", "#22aa22"));
    labels.push(label("unsure", "x", "#0000ff"));
    let updated: Project = admin
        .patch_json_raw(&format!("/api/projects/{pid}"), &ProjectUpdate { labels: Some(labels), ..Default::default() })
        .await
        .ok();
    assert_eq!(updated.labels.len(), 4);
}

/// The OpenAPI document served at /api/openapi.json describes exactly the routes the router
/// serves (`server::api::routes()`, the table `router()` is built from): every route is
/// described and every described operation exists. (Backend-independent, so it runs once.)
#[tokio::test]
async fn openapi_document_lists_every_route() {
    let server = TestServer::start(Backend::Sqlite).await;
    let resp = server.client().get_raw("/api/openapi.json").await;
    resp.assert_status(200);
    let doc: Value = resp.json();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["servers"], json!([{ "url": "/" }]), "paths in the document are absolute (/api/...)");

    let served: BTreeSet<String> = server::api::routes()
        .iter()
        .map(|(method, path)| format!("{method} /api{path}"))
        .collect();
    assert_eq!(served.len(), server::api::routes().len(), "a (method, path) is routed twice");

    const OPERATIONS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];
    let paths = doc["paths"].as_object().expect("paths is an object");
    let mut described = BTreeSet::new();
    for (path, item) in paths {
        let item = item.as_object().expect("a path item is an object");
        for key in item.keys().filter(|k| OPERATIONS.contains(&k.as_str())) {
            described.insert(format!("{} {path}", key.to_uppercase()));
        }
    }
    let undocumented: Vec<&String> = served.difference(&described).collect();
    let unrouted: Vec<&String> = described.difference(&served).collect();
    assert!(
        undocumented.is_empty() && unrouted.is_empty(),
        "openapi.json and the router disagree (regenerate with scripts/gen_openapi.py)\n\
         routed but not in openapi.json: {undocumented:#?}\n\
         in openapi.json but not routed: {unrouted:#?}"
    );
}
