//! The authorization matrix: every operation of the OpenAPI document the server serves
//! (`GET /api/openapi.json`; `openapi_document_lists_every_route` keeps it equal to the router)
//! × six callers × three ways of presenting credentials, against `EXPECTED`, the one table of
//! what each caller gets.
//!
//! Callers: `anon` (no credentials: no cookie, a made-up CSRF header, an unknown bearer token),
//! `lab_other` / `lead_other` (labeler / lead of project Q only), `lab` / `lead` (labeler /
//! lead of project P, the one every `{pid}` names), `admin` (member of nothing).
//! Modes: the session cookie without the `x-csrf-token` header, the cookie with it, and an
//! `Authorization: Bearer` API token of the same user.
//!
//! How to extend it (a new route):
//! 1. add a row to `EXPECTED`: `"METHOD /api/path/{param}"` as in openapi.json (a key ending in
//!    `*` covers every route it prefixes, e.g. `"GET /api/projects/{pid}/review*"`), the six
//!    statuses in column order `anon lab_other lab lead_other lead admin` for a cookie request
//!    with its CSRF header, and `Via`: how the other two modes differ (`Any`: a cookie without
//!    the header gets 403 on every method but GET; `SessionOnly`: a bearer token gets 403 too;
//!    `Public`: credentials are not looked at);
//! 2. if a caller who is allowed needs a body, other path ids or some setup to succeed, add
//!    an arm to `request()`; the default fills `{pid}` with P, `{id}` with an item of P,
//!    `{uid}` with a spare member, and sends no body.
//!
//! A route with no row fails the test with its name, as does a row that matches no route. A
//! refusal must also have the error shape with the code of its status.
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};

use app::api_types::*;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(every_route_for_every_caller_and_credential);

/// How the cookie-without-CSRF and bearer modes differ from the table's cookie+CSRF column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Via {
    /// A signed-in caller's cookie without the CSRF header is refused (403) on every method
    /// but GET; a bearer token gets what the cookie+CSRF request gets.
    Any,
    /// As `Any`, and a bearer token is refused (403): only a browser session may do it.
    SessionOnly,
    /// No credentials are checked: every mode gets the table's status.
    Public,
}

/// THE table: route → statuses of `anon lab_other lab lead_other lead admin` (cookie + CSRF).
const EXPECTED: &[(&str, &str, Via)] = &[
    //  route                                              anon lab_o lab lead_o lead admin
    ("GET /api/health",                                   "200 200 200 200 200 200", Via::Public),
    ("GET /api/openapi.json",                             "200 200 200 200 200 200", Via::Public),
    // Anyone with an account signs in; `anon` sends a wrong password.
    ("POST /api/auth/login",                              "401 200 200 200 200 200", Via::Public),
    ("POST /api/auth/logout",                             "401 204 204 204 204 204", Via::Any),
    ("GET /api/me",                                       "401 200 200 200 200 200", Via::Any),
    ("POST /api/me/password",                             "401 204 204 204 204 204", Via::Any),
    ("GET /api/users",                                    "401 403 403 403 403 200", Via::Any),
    ("POST /api/users",                                   "401 403 403 403 403 201", Via::Any),
    ("PATCH /api/users/{id}",                             "401 403 403 403 403 200", Via::Any),
    ("POST /api/users/{id}/password",                     "401 403 403 403 403 204", Via::Any),
    ("GET /api/audit",                                    "401 403 403 403 403 200", Via::Any),
    ("GET /api/tokens",                                   "401 200 200 200 200 200", Via::Any),
    ("POST /api/tokens",                                  "401 201 201 201 201 201", Via::SessionOnly),
    ("DELETE /api/tokens/{id}",                           "401 204 204 204 204 204", Via::Any),
    ("GET /api/projects",                                 "401 200 200 200 200 200", Via::Any),
    ("POST /api/projects",                                "401 403 403 201 201 201", Via::Any),
    // Non-members get 404 (project ids do not leak); a labeler of P gets 403 where it must manage.
    ("GET /api/projects/{pid}",                           "401 404 200 404 200 200", Via::Any),
    ("PATCH /api/projects/{pid}",                         "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/members",                   "401 404 403 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/members",                  "401 404 403 404 200 200", Via::Any),
    ("DELETE /api/projects/{pid}/members/{uid}",          "401 404 403 404 204 204", Via::Any),
    ("POST /api/projects/{pid}/import",                   "401 404 403 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/images",                   "401 404 403 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/next",                     "401 404 200 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/annotations",              "401 404 200 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/skip",                     "401 404 204 404 204 204", Via::Any),
    ("GET /api/projects/{pid}/previous",                  "401 404 200 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/progress",                  "401 404 200 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/export",                    "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/items/{id}/history",        "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/audit",                     "401 404 403 404 200 200", Via::Any),
    // {id} is an image item of P: members of its project see it.
    ("GET /api/items/{id}/image",                         "401 404 200 404 200 200", Via::Any),
    ("GET /api/items/{id}/thumbnail",                     "401 404 200 404 200 200", Via::Any),
    // Review queues, gold, dev sets, jobs and the agreement dashboard (issues 7, 8): leads and
    // admins of the project only (`managed_project`); a labeler of P never sees others' labels.
    ("GET /api/projects/{pid}/review/queues",             "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/review/queues/{name}",      "401 404 403 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/review/queues/{name}/entries", "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/review/items/{item_id}",    "401 404 403 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/review/items/{item_id}/decision", "401 404 403 404 201 201", Via::Any),
    ("PUT /api/projects/{pid}/items/{id}/gold",           "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/profiles",                  "401 404 403 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/profiles",                 "401 404 403 404 201 201", Via::Any),
    ("GET /api/projects/{pid}/profiles/{id}",             "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/devsets",                   "401 404 403 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/devsets",                  "401 404 403 404 201 201", Via::Any),
    ("GET /api/projects/{pid}/devsets/{id}",              "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/devsets/{id}/plan",         "401 404 403 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/devsets/{id}/sample",      "401 404 403 404 201 201", Via::Any),
    ("GET /api/projects/{pid}/devsets/{id}/progress",     "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/devsets/{id}/report",       "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/jobs",                      "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/agreement",                 "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/agreement/slices",          "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/agreement/items",           "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/releases",                  "401 404 403 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/devsets/{id}/releases",    "401 404 403 404 202 202", Via::Any),
    ("GET /api/projects/{pid}/releases/{id}",             "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/releases/{id}/export",      "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/releases/{id}/diff/{other}", "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/release-freezes/{job}",     "401 404 403 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/prelabels/import",         "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/prelabels/sources",         "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/prelabels/settings",        "401 404 403 404 200 200", Via::Any),
    ("PUT /api/projects/{pid}/prelabels/settings",        "401 404 403 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/prelabels/audit",          "401 404 403 404 200 200", Via::Any),
    ("PUT /api/projects/{pid}/prelabels/auto-accept",     "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/export/summary",            "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/prelabels/rules",           "401 404 403 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/prelabels/rules",          "401 404 403 404 201 201", Via::Any),
    ("PUT /api/projects/{pid}/prelabels/rules/{id}",      "401 404 403 404 200 200", Via::Any),
    ("DELETE /api/projects/{pid}/prelabels/rules/{id}",   "401 404 403 404 204 204", Via::Any),
    ("POST /api/projects/{pid}/prelabels/rules/preview",  "401 404 403 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/prelabels/rules/apply",    "401 404 403 404 202 202", Via::Any),
    ("GET /api/projects/{pid}/prelabels/rules/apply",     "401 404 403 404 200 200", Via::Any),
    ("GET /api/projects/{pid}/model",                     "401 404 403 404 200 200", Via::Any),
    ("PUT /api/projects/{pid}/model/settings",            "401 404 403 404 200 200", Via::Any),
    ("POST /api/projects/{pid}/model/train",              "401 404 403 404 202 202", Via::Any),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Actor {
    Anon,
    LabOther,
    Lab,
    LeadOther,
    Lead,
    Admin,
}
const ACTORS: [Actor; 6] = [Actor::Anon, Actor::LabOther, Actor::Lab, Actor::LeadOther, Actor::Lead, Actor::Admin];

impl Actor {
    fn name(self) -> &'static str {
        match self {
            Actor::Anon => "anon",
            Actor::LabOther => "lab_other",
            Actor::Lab => "lab",
            Actor::LeadOther => "lead_other",
            Actor::Lead => "lead",
            Actor::Admin => "admin",
        }
    }
    /// May label in P (a member, or an admin).
    fn labels_in_p(self) -> bool {
        matches!(self, Actor::Lab | Actor::Lead | Actor::Admin)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    CookieNoCsrf,
    Cookie,
    Bearer,
}
const MODES: [Mode; 3] = [Mode::CookieNoCsrf, Mode::Cookie, Mode::Bearer];

/// The table's row for a route: an exact key, else the longest `*` pattern that prefixes it.
fn rule_for(route: &str) -> Option<(&'static str, [u16; 6], Via)> {
    let parse = |s: &str| -> [u16; 6] {
        let v: Vec<u16> = s.split_whitespace().map(|x| x.parse().expect("a status")).collect();
        v.try_into().expect("six statuses per row")
    };
    let exact = EXPECTED.iter().find(|(k, _, _)| *k == route);
    let pattern = || {
        EXPECTED
            .iter()
            .filter(|(k, _, _)| k.strip_suffix('*').is_some_and(|p| route.starts_with(p)))
            .max_by_key(|(k, _, _)| k.len())
    };
    exact.or_else(pattern).map(|(k, s, v)| (*k, parse(s), *v))
}

/// The status one cell must get: the table's, adjusted for the mode.
fn expected(statuses: [u16; 6], via: Via, actor: Actor, mode: Mode, method: &Method) -> u16 {
    let base = statuses[actor as usize];
    if via == Via::Public || actor == Actor::Anon {
        return base;
    }
    match mode {
        Mode::CookieNoCsrf if *method != Method::GET => 403,
        Mode::Bearer if via == Via::SessionOnly => 403,
        _ => base,
    }
}

/// Every (method, path) of the document, in document order.
fn operations(doc: &Value) -> Vec<(Method, String)> {
    let mut ops = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().expect("path item") {
            if let Ok(m) = Method::from_bytes(method.to_ascii_uppercase().as_bytes()) {
                ops.push((m, path.clone()));
            }
        }
    }
    ops
}

struct Creds {
    user_id: i64,
    username: String,
    password: String,
    cookie: Client,
    bearer: Client,
}

struct Ctx {
    server: TestServer,
    admin: Client,
    p: i64,
    text_item: i64,
    image_item: i64,
    /// A production profile and a sampled dev set of P.
    profile: i64,
    devset: i64,
    /// A release of that dev set, and the freeze job that made it.
    release: i64,
    freeze_job: i64,
    spare: User,
    victim: User,
    creds: BTreeMap<Actor, Creds>,
}

static SEQ: AtomicU32 = AtomicU32::new(0);
fn seq() -> u32 {
    SEQ.fetch_add(1, Ordering::Relaxed)
}

fn json_body(v: Value) -> Option<(Vec<u8>, &'static str)> {
    Some((serde_json::to_vec(&v).unwrap(), "application/json"))
}

/// A multipart body with one `file` part.
fn multipart_png(bytes: &[u8]) -> Option<(Vec<u8>, &'static str)> {
    let mut body = Vec::new();
    body.extend_from_slice(b"--matrixboundary\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.png\"\r\nContent-Type: image/png\r\n\r\n");
    body.extend_from_slice(bytes);
    body.extend_from_slice(b"\r\n--matrixboundary--\r\n");
    Some((body, "multipart/form-data; boundary=matrixboundary"))
}

/// A production profile's records (JSONL meta), for the dev-set routes: one stratum, so a
/// dev set of one item always allocates its item there.
const PROFILE_RECORDS: &str = "{\"region\": \"eu\"}\n{\"region\": \"eu\"}\n";

/// A dev-set draft of one item stratified by region, with a name of its own.
fn devset_draft(profile: i64) -> Value {
    json!({"name": format!("matrix-{}", seq()), "profile_id": profile, "attributes": ["region"], "size": 1})
}

/// A keyword rule with a name of its own.
fn matrix_rule() -> Value {
    json!({"name": format!("matrix-{}", seq()), "kind": "keyword", "pattern": "matrix", "label": "pos"})
}

/// An item of P leased to the actor (through its bearer token), or any item of P for a
/// caller who cannot label there.
async fn leased_item(ctx: &Ctx, actor: Actor) -> i64 {
    if !actor.labels_in_p() {
        return ctx.text_item;
    }
    let next: NextItem = ctx.creds[&actor].bearer.post(&format!("/api/projects/{}/next", ctx.p), &json!({})).await;
    next.item.expect("P has items left to lease").id
}

/// The path and body a caller allowed to use the route needs for it to succeed (and the
/// setup that makes it possible, done with other credentials).
async fn request(ctx: &Ctx, route: &str, path: &str, actor: Actor) -> (String, Option<(Vec<u8>, &'static str)>) {
    let p = ctx.p;
    let fill = |path: &str, id: i64| {
        path.replace("{pid}", &p.to_string()).replace("{id}", &id.to_string()).replace("{uid}", &ctx.spare.id.to_string())
    };
    let creds = ctx.creds.get(&actor);
    match route {
        "POST /api/auth/login" => {
            let (u, pw) = creds.map_or(("nobody", "not the password"), |c| (c.username.as_str(), c.password.as_str()));
            (fill(path, 0), json_body(json!({"username": u, "password": pw})))
        }
        "POST /api/me/password" => {
            let pw = creds.map_or("not the password".to_string(), |c| c.password.clone());
            (fill(path, 0), json_body(json!({"current_password": pw, "new_password": pw})))
        }
        "POST /api/users" => (
            fill(path, 0),
            json_body(json!({"username": format!("m{}", seq()), "password": "a long password", "role": "labeler"})),
        ),
        "PATCH /api/users/{id}" => (fill(path, ctx.victim.id), json_body(json!({"role": "labeler"}))),
        "POST /api/users/{id}/password" => {
            (fill(path, ctx.victim.id), json_body(json!({"password": "another long password"})))
        }
        "POST /api/tokens" => (fill(path, 0), json_body(json!({"name": "matrix"}))),
        "DELETE /api/tokens/{id}" => {
            // A token of the caller's own (anon: someone's token, which it must not reach).
            let owner = creds.map_or(&ctx.admin, |c| &c.cookie);
            let token: CreatedToken = owner.post_created("/api/tokens", &json!({"name": "to revoke"})).await;
            (fill(path, token.token.id), None)
        }
        "POST /api/projects" => (
            fill(path, 0),
            json_body(json!({"name": "matrix", "kind": "single", "labels": [{"name": "pos", "key": "p", "color": "#22aa22"}]})),
        ),
        "PATCH /api/projects/{pid}" => (fill(path, 0), json_body(json!({"instructions": "Is it positive? (matrix)"}))),
        "POST /api/projects/{pid}/members" => (fill(path, 0), json_body(json!({"username": ctx.spare.username}))),
        "DELETE /api/projects/{pid}/members/{uid}" => {
            ctx.admin.add_member(p, ctx.spare.id).await;
            (fill(path, 0), None)
        }
        "POST /api/projects/{pid}/import" => {
            let line = json!({"text": format!("imported by the matrix {}", seq())}).to_string() + "\n";
            (fill(path, 0) + "?format=jsonl", Some((line.into_bytes(), "application/x-ndjson")))
        }
        "POST /api/projects/{pid}/images" => (fill(path, 0), multipart_png(&png(3, 2, (seq() % 250) as u8))),
        "POST /api/projects/{pid}/next" => (fill(path, 0), json_body(json!({}))),
        "POST /api/projects/{pid}/annotations" => {
            let item = leased_item(ctx, actor).await;
            let body = json!({"item_id": item, "labels": ["pos"], "time_ms": 900, "client_id": format!("matrix-{}", seq())});
            (fill(path, 0), json_body(body))
        }
        "POST /api/projects/{pid}/skip" => {
            let item = leased_item(ctx, actor).await;
            (fill(path, 0), json_body(json!({"item_id": item})))
        }
        "GET /api/projects/{pid}/previous" => {
            if actor.labels_in_p() {
                let item = leased_item(ctx, actor).await;
                ctx.creds[&actor].bearer.submit(p, item, &["neg"]).await;
            }
            (fill(path, 0), None)
        }
        "GET /api/items/{id}/image" | "GET /api/items/{id}/thumbnail" => (fill(path, ctx.image_item), None),
        "GET /api/projects/{pid}/review/queues/{name}" | "POST /api/projects/{pid}/review/queues/{name}/entries" => {
            let body = json!({"item_ids": [ctx.text_item], "reason": "matrix"});
            let body = (route.starts_with("POST")).then(|| json_body(body)).flatten();
            (fill(path, 0).replace("{name}", "disagreement"), body)
        }
        "GET /api/projects/{pid}/review/items/{item_id}" => (fill(path, 0).replace("{item_id}", &ctx.text_item.to_string()), None),
        "POST /api/projects/{pid}/review/items/{item_id}/decision" => (
            fill(path, 0).replace("{item_id}", &ctx.text_item.to_string()),
            json_body(json!({"labels": ["pos"], "queue": "disagreement"})),
        ),
        "PUT /api/projects/{pid}/items/{id}/gold" => (fill(path, ctx.text_item), json_body(json!({"labels": null}))),
        "POST /api/projects/{pid}/profiles" => {
            let url = fill(path, 0) + &format!("?name=matrix-{}&date=2026-11-30", seq());
            (url, Some((PROFILE_RECORDS.as_bytes().to_vec(), "application/octet-stream")))
        }
        "GET /api/projects/{pid}/profiles/{id}" => (fill(path, ctx.profile), None),
        "POST /api/projects/{pid}/devsets" => (fill(path, 0), json_body(devset_draft(ctx.profile))),
        "POST /api/projects/{pid}/devsets/{id}/sample" => {
            // A sample succeeds once per dev set: a fresh draft for every call.
            let created: Value = ctx.admin.post_created(&format!("/api/projects/{p}/devsets"), &devset_draft(ctx.profile)).await;
            (fill(path, created["id"].as_i64().unwrap()), None)
        }
        "GET /api/projects/{pid}/devsets/{id}" | "GET /api/projects/{pid}/devsets/{id}/plan"
        | "GET /api/projects/{pid}/devsets/{id}/progress" | "GET /api/projects/{pid}/devsets/{id}/report" => {
            (fill(path, ctx.devset), None)
        }
        "POST /api/projects/{pid}/devsets/{id}/releases" => {
            (fill(path, ctx.devset), json_body(json!({"override_unready": "matrix", "override_leakage": "matrix"})))
        }
        "GET /api/projects/{pid}/releases/{id}" | "GET /api/projects/{pid}/releases/{id}/export" => {
            (fill(path, ctx.release), None)
        }
        "GET /api/projects/{pid}/releases/{id}/diff/{other}" => {
            (fill(path, ctx.release).replace("{other}", &ctx.release.to_string()), None)
        }
        "GET /api/projects/{pid}/release-freezes/{job}" => (fill(path, 0).replace("{job}", &ctx.freeze_job.to_string()), None),
        "GET /api/projects/{pid}/agreement/slices" => (fill(path, 0) + "?attr=region", None),
        "GET /api/projects/{pid}/agreement/items" => (fill(path, 0) + "?label=pos", None),
        "POST /api/projects/{pid}/prelabels/import" => {
            let line = json!({"item": "p-1", "label": "pos", "score": 0.5, "model": "matrix"}).to_string() + "\n";
            (fill(path, 0), Some((line.into_bytes(), "application/x-ndjson")))
        }
        "PUT /api/projects/{pid}/prelabels/settings" => (fill(path, 0), json_body(json!({"hide_until_answered": false}))),
        "PUT /api/projects/{pid}/model/settings" => (fill(path, 0), json_body(json!({"enabled": false}))),
        "PUT /api/projects/{pid}/prelabels/auto-accept" => {
            // Switching a source off needs no audits: a source of its own for every call.
            let model = format!("matrix-aa-{}", seq());
            let line = json!({"item": "p-1", "label": "pos", "score": 0.5, "model": model}).to_string() + "\n";
            ctx.admin
                .raw(Method::POST, &format!("/api/projects/{p}/prelabels/import"), Some((line.into_bytes(), "application/x-ndjson")))
                .await
                .assert_status(200);
            let sources: Vec<PrelabelSource> = ctx.admin.get(&format!("/api/projects/{p}/prelabels/sources")).await;
            let id = sources.iter().find(|s| s.name == model).unwrap().id;
            (fill(path, 0), json_body(json!({"source_id": id, "enabled": false})))
        }
        "POST /api/projects/{pid}/prelabels/rules" => (fill(path, 0), json_body(matrix_rule())),
        "PUT /api/projects/{pid}/prelabels/rules/{id}" | "DELETE /api/projects/{pid}/prelabels/rules/{id}" => {
            // A rule of its own for every call (a delete succeeds once).
            let rule: Value = ctx.admin.post_created(&format!("/api/projects/{p}/prelabels/rules"), &matrix_rule()).await;
            let body = route.starts_with("PUT").then(|| json_body(matrix_rule())).flatten();
            (fill(path, rule["id"].as_i64().unwrap()), body)
        }
        "POST /api/projects/{pid}/prelabels/rules/preview" => {
            (fill(path, 0), json_body(json!({"kind": "keyword", "pattern": "matrix", "label": "pos"})))
        }
        _ => (fill(path, ctx.text_item), None),
    }
}

/// Routes whose cell gets a session of its own (signing in or out, or a password change that
/// ends the user's other sessions), so the shared sessions of the other cells survive.
const OWN_SESSION: &[&str] = &["POST /api/auth/login", "POST /api/auth/logout", "POST /api/me/password"];

/// The client for one cell.
async fn client_for(ctx: &Ctx, actor: Actor, mode: Mode, own_session: bool) -> Client {
    let Some(c) = ctx.creds.get(&actor) else {
        return match mode {
            Mode::CookieNoCsrf => ctx.server.client(),
            Mode::Cookie => ctx.server.client().with_csrf_token("made-up"),
            Mode::Bearer => Client::with_bearer(ctx.server.base_url(), "ms_not_a_token"),
        };
    };
    let cookie = if own_session {
        let fresh = ctx.server.client();
        fresh.login(&c.username, &c.password).await;
        fresh
    } else {
        c.cookie.clone()
    };
    match mode {
        Mode::CookieNoCsrf => cookie.without_csrf(),
        Mode::Cookie => cookie,
        Mode::Bearer => c.bearer.clone(),
    }
}

async fn setup(b: Backend) -> Ctx {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let p = admin.simple_project("P", 1, 600).await.id;
    let q = admin.simple_project("Q", 1, 600).await.id;
    admin.import_texts(p, "p", 100).await;
    admin.import_texts(q, "q", 5).await;
    let image: ImportReport = {
        let (body, ct) = multipart_png(&png(8, 6, 251)).unwrap();
        admin.raw(Method::POST, &format!("/api/projects/{p}/images"), Some((body, ct))).await.ok()
    };
    assert_eq!(image.imported, 1, "{image:?}");
    let items = admin.export_jsonl(p, false).await;
    let id_of = |kind: &str| items.iter().find(|l| l["kind"] == kind).and_then(|l| l["item_id"].as_i64()).unwrap();
    let (text_item, image_item) = (id_of("text"), id_of("image"));
    // Items with a region, a profile and a sampled dev set for the dev-set routes; every
    // `POST .../sample` of the matrix takes one more item out of the pool.
    let pool: String =
        (0..60)
            .map(|i| {
                let region = ["eu", "us"][i % 2];
                json!({"id": format!("r-{i}"), "text": format!("regional {i}"), "meta": {"region": region}}).to_string() + "\n"
            })
            .collect();
    assert_eq!(admin.import(p, "jsonl", pool).await.imported, 60);
    let profile: Value = admin
        .raw(Method::POST, &format!("/api/projects/{p}/profiles?name=prod&date=2026-11-30"), Some((PROFILE_RECORDS.as_bytes().to_vec(), "application/octet-stream")))
        .await
        .created();
    let profile = profile["id"].as_i64().unwrap();
    let devset: Value = admin.post_created(&format!("/api/projects/{p}/devsets"), &devset_draft(profile)).await;
    let devset = devset["id"].as_i64().unwrap();
    let sample: Value = admin.raw(Method::POST, &format!("/api/projects/{p}/devsets/{devset}/sample"), None).await.created();
    // Its member gets a final label, and the dev set a release.
    let member = sample["items"][0].as_i64().unwrap();
    admin
        .post_json_raw(&format!("/api/projects/{p}/review/items/{member}/decision"), &json!({"labels": ["pos"], "queue": "audit"}))
        .await
        .assert_status(201);
    // The freeze is a job (202): wait for its release.
    let queued: FreezeJob =
        admin.post_json_raw(&format!("/api/projects/{p}/devsets/{devset}/releases"), &json!({})).await.assert_status(202).json();
    let freeze_job = queued.job.id;
    let release = loop {
        let j: FreezeJob = admin.get(&format!("/api/projects/{p}/release-freezes/{freeze_job}")).await;
        if j.finished() {
            let Some(r) = j.release.clone() else { panic!("the matrix's freeze was not frozen: {j:?}") };
            break r.summary.id;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };

    let mut creds = BTreeMap::new();
    let admin_pw = server.admin_password().to_string();
    for (actor, role, project) in [
        (Actor::LabOther, Role::Labeler, Some(q)),
        (Actor::Lab, Role::Labeler, Some(p)),
        (Actor::LeadOther, Role::Lead, Some(q)),
        (Actor::Lead, Role::Lead, Some(p)),
        (Actor::Admin, Role::Admin, None),
    ] {
        let (user_id, username, password, cookie) = if actor == Actor::Admin {
            // A session of its own, so `admin` (the setup's client) is not the actor.
            let c = server.client();
            let me = c.login("admin", &admin_pw).await;
            (me.user.id, "admin".to_string(), admin_pw.clone(), c)
        } else {
            let (user, c) = server.user(&admin, actor.name(), role).await;
            (user.id, user.username.clone(), password_for(actor.name()), c)
        };
        if let Some(pid) = project {
            admin.add_member(pid, user_id).await;
        }
        let secret = cookie.create_token("matrix").await.secret;
        let bearer = Client::with_bearer(server.base_url(), &secret);
        creds.insert(actor, Creds { user_id, username, password, cookie, bearer });
    }
    let spare = admin.create_user("spare", &password_for("spare"), Role::Labeler).await;
    let victim = admin.create_user("victim", &password_for("victim"), Role::Labeler).await;
    Ctx { server, admin, p, text_item, image_item, profile, devset, release, freeze_job, spare, victim, creds }
}

fn error_code(status: u16) -> Option<&'static str> {
    match status {
        400 => Some("bad_request"),
        401 => Some("unauthorized"),
        403 => Some("forbidden"),
        404 => Some("not_found"),
        409 => Some("conflict"),
        _ => None,
    }
}

async fn every_route_for_every_caller_and_credential(b: Backend) {
    let mut ctx = setup(b).await;
    let doc: Value = ctx.server.client().get("/api/openapi.json").await;
    let ops = operations(&doc);
    assert!(ops.len() >= 30, "the document lists {} operations", ops.len());

    let mut failures = Vec::new();
    let mut used_rows = std::collections::BTreeSet::new();
    let mut cells = 0;
    for (method, path) in &ops {
        let route = format!("{method} {path}");
        let Some((row, statuses, via)) = rule_for(&route) else {
            failures.push(format!("{route}: no row in EXPECTED (tests/api/authz_matrix.rs): add one"));
            continue;
        };
        used_rows.insert(row);
        let own_session = OWN_SESSION.contains(&route.as_str());
        for actor in ACTORS {
            for mode in MODES {
                let want = expected(statuses, via, actor, mode, method);
                let client = client_for(&ctx, actor, mode, own_session).await;
                let (url, body) = request(&ctx, &route, path, actor).await;
                let resp = client.raw(method.clone(), &url, body).await;
                cells += 1;
                let got = resp.status.as_u16();
                let cell = format!("{route} as {} with {mode:?}", actor.name());
                if got != want {
                    let text = resp.text();
                    failures.push(format!("{cell}: expected {want}, got {got}: {}", &text[..text.len().min(200)]));
                } else if let Some(code) = error_code(got) {
                    let v: Value = serde_json::from_slice(&resp.body).unwrap_or(Value::Null);
                    if v["error"]["code"] != code || v["error"]["message"].as_str().is_none_or(|m| m.is_empty()) {
                        failures.push(format!("{cell}: a {got} without the error shape and code {code}: {v}"));
                    }
                }
            }
            // A password change ends the user's other sessions, the shared one included.
            if route == "POST /api/me/password" {
                if let Some(c) = ctx.creds.get_mut(&actor) {
                    let fresh = ctx.server.client();
                    fresh.login(&c.username, &c.password).await;
                    c.cookie = fresh;
                }
                if actor == Actor::Admin {
                    ctx.admin = ctx.server.admin().await;
                }
            }
        }
    }
    for (row, _, _) in EXPECTED {
        if !used_rows.contains(row) {
            failures.push(format!("{row}: a row in EXPECTED that matches no operation of the document: remove or fix it"));
        }
    }
    // Every actor's identity stayed what the table assumes (nothing above changed a role).
    for (actor, c) in &ctx.creds {
        let me: Me = c.bearer.get("/api/me").await;
        assert_eq!(me.user.id, c.user_id, "{}", actor.name());
    }
    assert!(failures.is_empty(), "{} of {cells} cells wrong:\n{}", failures.len(), failures.join("\n"));
    eprintln!("authorization matrix: {cells} cells ({} operations × 6 callers × 3 modes) as expected", ops.len());
}
