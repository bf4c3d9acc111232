//! Production-matched dev sets (issue 8): profile → draft → plan → sample → report.
//!
//! - The plan's numbers are what `mirrorset stats sample-size | allocate | distance` print for
//!   the same inputs (the real binary, as a subprocess).
//! - A pool and a production sample with a known shift: the dev set built from the pool is
//!   within TVD 0.02 of production on every stratification attribute; the pool is far off.
//! - Sampling is reproducible from its seed; no item is in two dev sets; the campaign raises
//!   its members' priority and sets their overlap.
//! - Bad input is refused with a 422 that names the lines, and nothing is saved.
use std::collections::BTreeSet;
use std::process::Command;

use app::api_types::*;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(
    devset_end_to_end_matches_the_stats_cli,
    devset_bad_input_saves_nothing,
    devset_cli_round_trip,
    devset_profile_upload_checks_free_disk,
    devset_plan_categories_match_the_profile_rules,
);

/// A small deterministic generator (the test must not depend on a crate's random stream).
struct Lcg(u64);
impl Lcg {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
    fn pick<'a>(&mut self, choices: &[(&'a str, f64)]) -> &'a str {
        let mut u = self.unit();
        for (c, p) in choices {
            if u < *p {
                return c;
            }
            u -= p;
        }
        choices.last().unwrap().0
    }
}

const POOL_REGIONS: &[(&str, f64)] = &[("eu", 0.6), ("us", 0.3), ("apac", 0.1)];
const POOL_DEVICES: &[(&str, f64)] = &[("mobile", 0.2), ("web", 0.7), ("tablet", 0.1)];
const PROD_REGIONS: &[(&str, f64)] = &[("eu", 0.3), ("us", 0.4), ("apac", 0.3)];
const PROD_DEVICES: &[(&str, f64)] = &[("mobile", 0.6), ("web", 0.25), ("tablet", 0.15)];

/// The pool: `n` items with region and device drawn from the pool's (shifted) mix.
fn pool_jsonl(prefix: &str, n: usize, seed: u64) -> String {
    let mut g = Lcg(seed);
    (0..n)
        .map(|i| {
            let (r, d) = (g.pick(POOL_REGIONS), g.pick(POOL_DEVICES));
            let mut item = json!({"id": format!("{prefix}-{i}"), "text": format!("{prefix} {i} {r} {d}"),
                                  "meta": {"region": r, "device": d}});
            if i % 50 == 0 {
                item["license"] = json!("restricted");
            }
            item.to_string() + "\n"
        })
        .collect()
}

/// Production: `n` meta records from production's mix.
fn production_jsonl(n: usize, seed: u64) -> String {
    records_jsonl(n, seed, PROD_REGIONS, PROD_DEVICES)
}

fn records_jsonl(n: usize, seed: u64, regions: &[(&str, f64)], devices: &[(&str, f64)]) -> String {
    let mut g = Lcg(seed);
    (0..n).map(|_| json!({"region": g.pick(regions), "device": g.pick(devices)}).to_string() + "\n").collect()
}

async fn upload_profile(c: &Client, pid: i64, name: &str, query: &str, body: &str) -> RawResponse {
    c.raw(
        Method::POST,
        &format!("/api/projects/{pid}/profiles?name={name}&date=2026-11-30{query}"),
        Some((body.as_bytes().to_vec(), "application/octet-stream")),
    )
    .await
}

/// Runs `mirrorset stats ARGS` and returns its JSON.
fn stats(args: &[&str]) -> Value {
    let out = Command::new(server_binary()).arg("stats").args(args).output().expect("run mirrorset stats");
    assert!(out.status.success(), "mirrorset stats {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn draft(name: &str, profile_id: i64, seed: u32) -> Value {
    json!({
        "name": name, "profile_id": profile_id, "seed": seed,
        "attributes": ["region", "device"],
        "calculator": {"expected_accuracy": 0.9, "half_width": 0.05, "key_attribute": "region", "key_half_width": 0.07},
        "min_per_stratum": 3,
        "exclude": {"licenses": ["restricted"]},
    })
}

async fn project_with_pool(admin: &Client, name: &str) -> i64 {
    let pid = admin.simple_project(name, 1, 600).await.id;
    let report = admin.import(pid, "jsonl", pool_jsonl(name, 3000, 7)).await;
    assert_eq!(report.imported, 3000, "{report:?}");
    pid
}

async fn devset_end_to_end_matches_the_stats_cli(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = project_with_pool(&admin, "dev").await;

    // Labelers may not see any of it.
    let (lab, lab_client) = server.user(&admin, "devlab", Role::Labeler).await;
    admin.add_member(pid, lab.id).await;
    lab_client.get_raw(&format!("/api/projects/{pid}/profiles")).await.assert_error(403, "forbidden");
    upload_profile(&lab_client, pid, "x", "", "{\"region\": \"eu\"}\n").await.assert_error(403, "forbidden");

    // Profile: a production sample of meta records.
    let profile: Value = upload_profile(&admin, pid, "november", "", &production_jsonl(20_000, 11)).await.created();
    assert_eq!(profile["records"], 20_000.0);
    assert_eq!(profile["combinations"], 9);
    let profile_id = profile["id"].as_i64().unwrap();

    // Draft with the size calculator, then its plan.
    let created: Value = admin.post_created(&format!("/api/projects/{pid}/devsets"), &draft("dev-1", profile_id, 5)).await;
    let id = created["id"].as_i64().unwrap();
    let plan: Value = admin.get(&format!("/api/projects/{pid}/devsets/{id}/plan")).await;

    // Size: the key attribute's requirement (±7 points per region) drives it, as computed by
    // `mirrorset stats sample-size` and the regions' production shares.
    let overall = stats(&["sample-size", "--accuracy", "0.9", "--half-width", "0.05"])["n"].as_u64().unwrap();
    let per_region = stats(&["sample-size", "--accuracy", "0.9", "--half-width", "0.07"])["n"].as_u64().unwrap();
    assert_eq!(plan["size_driver"]["overall"], overall);
    let smallest_share = plan["size_driver"]["per_value"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert_eq!(v["needed"], per_region);
            v["production_share"].as_f64().unwrap()
        })
        .fold(1.0, f64::min);
    let size = plan["size"].as_u64().unwrap();
    assert_eq!(size, ((per_region as f64 / smallest_share) - 1e-9).ceil() as u64);
    assert!(size > overall, "{plan:#}");
    assert_eq!(plan["size_driver"]["requirement"], "key_attribute");
    assert_eq!(plan["excluded"]["license"], 60);

    // Allocation: what `mirrorset stats allocate` gives for the plan's strata.
    let strata = plan["strata"].as_array().unwrap();
    let request = json!({
        "n": size, "min_per_stratum": 3,
        "strata": strata.iter().map(|s| json!({"key": s["key"], "production": s["production"], "available": s["available"]})).collect::<Vec<_>>(),
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("request.json");
    std::fs::write(&file, request.to_string()).unwrap();
    let cli = stats(&["allocate", file.to_str().unwrap()]);
    for (s, c) in strata.iter().zip(cli["strata"].as_array().unwrap()) {
        assert_eq!((&s["key"], &s["requested"], &s["allocated"]), (&c["key"], &c["requested"], &c["allocated"]));
    }
    assert_eq!((&plan["total"], &plan["shortfall"]), (&cli["total"], &cli["shortfall"]));

    // Expected distances: what `mirrorset stats distance` gives for production vs allocation.
    let cell = |s: &Value, count: &Value| json!({"values": {"region": s["values"][0], "device": s["values"][1]}, "count": count});
    let joint = json!({
        "attributes": ["region", "device"],
        "p": strata.iter().map(|s| cell(s, &s["production"])).collect::<Vec<_>>(),
        "q": strata.iter().map(|s| cell(s, &s["allocated"])).collect::<Vec<_>>(),
    });
    let file = dir.path().join("distance.json");
    std::fs::write(&file, joint.to_string()).unwrap();
    let cli = stats(&["distance", file.to_str().unwrap()]);
    for e in plan["expected"].as_array().unwrap() {
        let m = &cli["marginals"][e["attribute"].as_str().unwrap()];
        assert_eq!((&e["tvd"], &e["psi"], &e["kl"]), (&m["tvd"], &m["psi"], &m["kl"]), "{e}");
        assert!(e["tvd"].as_f64().unwrap() < 0.02, "{e}");
    }
    assert_eq!(plan["expected_joint"]["tvd"], cli["joint"]["tvd"]);

    // Sample: the campaign's members, with raised priority and their own overlap.
    let sampled: Value = admin.post_created(&format!("/api/projects/{pid}/devsets/{id}/sample"), &json!({})).await;
    let members: BTreeSet<i64> = sampled["items"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert_eq!(members.len() as u64, size);
    let raised = server.exec_sql(&format!("UPDATE items SET priority = priority WHERE project_id = {pid} AND priority = 100 AND overlap = 3")).await;
    assert_eq!(raised, size);
    admin
        .post_json_raw(&format!("/api/projects/{pid}/devsets/{id}/sample"), &json!({}))
        .await
        .assert_error(409, "conflict");

    // Report: the dev set matches production on every attribute; the pool does not.
    let report: Value = admin.get(&format!("/api/projects/{pid}/devsets/{id}/report")).await;
    assert_eq!(report["members"], size);
    for a in report["attributes"].as_array().unwrap() {
        let dev = a["dev_vs_production"]["tvd"].as_f64().unwrap();
        let pool = a["pool_vs_production"]["tvd"].as_f64().unwrap();
        assert!(dev < 0.02, "{}: dev TVD {dev}", a["attribute"]);
        assert!(pool > 0.25, "{}: pool TVD {pool}", a["attribute"]);
        assert_eq!(a["dev_vs_production"]["reading"], "stable (PSI < 0.1)");
    }
    assert_eq!(report["key_attribute"], "region");
    assert!(report["half_width"].as_f64().unwrap() < 0.05);
    for s in report["key_slices"].as_array().unwrap() {
        assert!(s["half_width"].as_f64().unwrap() <= 0.072, "{s}");
    }

    // Drift: production moved (more eu, more web; towards what the pool has plenty of). Against the newer profile the report
    // shows the shift, and the top-up plan keeps every member and adds the fewest new labels
    // that bring the joint TVD under 0.02.
    let newer: Value = upload_profile(
        &admin,
        pid,
        "december",
        "",
        &records_jsonl(20_000, 13, &[("eu", 0.35), ("us", 0.4), ("apac", 0.25)], &[("mobile", 0.5), ("web", 0.35), ("tablet", 0.15)]),
    )
    .await
    .created();
    let drift: Value =
        admin.get(&format!("/api/projects/{pid}/devsets/{id}/report?profile_id={}&max_tvd=0.02", newer["id"])).await;
    assert!(drift["joint_dev_vs_production"]["tvd"].as_f64().unwrap() > 0.05, "{drift:#}");
    let top_up = &drift["top_up"];
    assert_eq!(top_up["reached"], true, "{top_up:#}");
    assert!(top_up["tvd_after"].as_f64().unwrap() <= 0.02);
    let added: u64 = top_up["strata"].as_array().unwrap().iter().map(|s| s["add"].as_u64().unwrap()).sum();
    assert_eq!(added, top_up["new_labels"].as_u64().unwrap());
    assert!(added > 0);
    // Only strata below their new share of the final size get new items.
    let final_size = (size + added) as f64;
    for s in top_up["strata"].as_array().unwrap() {
        if s["add"].as_u64().unwrap() > 0 {
            assert!(s["members"].as_f64().unwrap() < s["production_share"].as_f64().unwrap() * final_size, "{s}");
        }
    }

    // Progress: nothing labeled yet, every member counted in its stratum.
    let progress: Value = admin.get(&format!("/api/projects/{pid}/devsets/{id}/progress")).await;
    assert_eq!(progress["total"]["members"], size);
    assert_eq!(progress["total"]["labeled"], 0);
    assert_eq!(progress["total"]["reviewed"], 0);
    // A review decision on a member counts as reviewed in its stratum (and only there).
    let reviewed_item = *members.iter().next().unwrap();
    let mut stratum = String::new();
    for s in progress["strata"].as_array().unwrap() {
        let key = s["stratum"].as_str().unwrap();
        let sql = format!("UPDATE devset_members SET stratum = stratum WHERE item_id = {reviewed_item} AND stratum = '{key}'");
        if server.exec_sql(&sql).await == 1 {
            stratum = key.to_string();
        }
    }
    assert!(!stratum.is_empty());
    let _: Value = admin
        .post_json_raw(
            &format!("/api/projects/{pid}/review/items/{reviewed_item}/decision"),
            &json!({"labels": ["pos"], "queue": "audit"}),
        )
        .await
        .created();
    let progress: Value = admin.get(&format!("/api/projects/{pid}/devsets/{id}/progress")).await;
    assert_eq!(progress["total"]["reviewed"], 1);
    for s in progress["strata"].as_array().unwrap() {
        let expected = if s["stratum"] == stratum.as_str() { 1 } else { 0 };
        assert_eq!(s["reviewed"], expected, "{s}");
        assert_eq!(
            s.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["agreed", "complete", "labeled", "members", "reviewed", "stratum"]
        );
    }

    // A second dev set in the project: none of the first's items, and the database refuses to
    // share one even if asked.
    let second: Value = admin.post_created(&format!("/api/projects/{pid}/devsets"), &draft("dev-2", profile_id, 5)).await;
    let id2 = second["id"].as_i64().unwrap();
    let listed = |list: Value| -> Vec<(String, i64)> {
        list.as_array().unwrap().iter().map(|d| (d["name"].as_str().unwrap().to_string(), d["members"].as_i64().unwrap())).collect()
    };
    let list: Value = admin.get(&format!("/api/projects/{pid}/devsets")).await;
    assert_eq!(listed(list), [("dev-1".to_string(), size as i64), ("dev-2".to_string(), 0)]);
    let plan2: Value = admin.get(&format!("/api/projects/{pid}/devsets/{id2}/plan")).await;
    assert_eq!(plan2["excluded"]["other_devset"], size);
    let sampled2: Value = admin.post_created(&format!("/api/projects/{pid}/devsets/{id2}/sample"), &json!({})).await;
    let members2: BTreeSet<i64> = sampled2["items"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    assert!(members.is_disjoint(&members2));
    let list: Value = admin.get(&format!("/api/projects/{pid}/devsets")).await;
    assert_eq!(listed(list), [("dev-1".to_string(), size as i64), ("dev-2".to_string(), members2.len() as i64)]);
    let first = members.iter().next().unwrap();
    let refused = server.try_exec_sql(&format!("INSERT INTO devset_members (item_id, devset_id, stratum) VALUES ({first}, {id2}, 'x')")).await;
    assert!(refused.is_err(), "an item in two dev sets was accepted");

    // Reproducible: the same pool (imported in the same order), profile, draft and seed in
    // another project pick the same items: the same ids up to the projects' id offset.
    let pid_b = project_with_pool(&admin, "dev-b").await;
    let profile_b: Value = upload_profile(&admin, pid_b, "november", "", &production_jsonl(20_000, 11)).await.created();
    let created_b: Value =
        admin.post_created(&format!("/api/projects/{pid_b}/devsets"), &draft("dev-1", profile_b["id"].as_i64().unwrap(), 5)).await;
    let sampled_b: Value =
        admin.post_created(&format!("/api/projects/{pid_b}/devsets/{}/sample", created_b["id"]), &json!({})).await;
    let members_b: Vec<i64> = sampled_b["items"].as_array().unwrap().iter().map(|v| v.as_i64().unwrap()).collect();
    let offset = members_b[0] - members.iter().next().unwrap();
    assert!(offset >= 3000, "{offset}");
    assert_eq!(members_b.iter().map(|id| id - offset).collect::<BTreeSet<_>>(), members);
}

async fn devset_bad_input_saves_nothing(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("bad", 1, 600).await.id;
    admin.import(pid, "jsonl", pool_jsonl("bad", 200, 3)).await;

    // Unknown attribute: named, at its first line, and nothing saved.
    let body = "{\"region\": \"eu\", \"device\": \"web\"}\n{\"region\": \"us\", \"plan\": \"pro\"}\n{\"plan\": \"free\"}\n";
    let e = upload_profile(&admin, pid, "p", "", body).await.assert_error(422, "unprocessable");
    assert_eq!(e.message, "1 bad line in the production sample; nothing was saved (the first 1 are listed)");
    assert_eq!(
        e.details,
        json!({"bad_lines": 1, "errors": [{"line": 2, "field": "plan",
            "reason": "unknown attribute \"plan\": no item of the pool has it (the pool's attributes: device, region)"}]})
    );
    // Counts table with a negative and a non-numeric count.
    let counts = "region,device,count\neu,web,120\nus,web,-4\napac,mobile,lots\n";
    let e = upload_profile(&admin, pid, "c", "&kind=counts&format=csv", counts).await.assert_error(422, "unprocessable");
    assert_eq!(e.message, "2 bad lines in the counts table; nothing was saved (the first 2 are listed)");
    assert_eq!(
        e.details["errors"],
        json!([{"line": 3, "field": "count", "reason": "count must be a number ≥ 0, found -4"},
               {"line": 4, "field": "count", "reason": "count must be a number ≥ 0, found \"lots\""}])
    );
    let profiles: Vec<Value> = admin.get(&format!("/api/projects/{pid}/profiles")).await;
    assert!(profiles.is_empty(), "{profiles:?}");

    // A good counts table, then drafts that cannot be planned: a size above the pool, floors
    // above the size. Nothing saved.
    let counts = "region,device,count\neu,web,500\nus,mobile,300\napac,tablet,200\n";
    let profile: Value = upload_profile(&admin, pid, "c", "&kind=counts&format=csv", counts).await.created();
    let profile_id = profile["id"].as_i64().unwrap();
    let path = format!("/api/projects/{pid}/devsets");
    let e = admin
        .post_json_raw(&path, &json!({"name": "big", "profile_id": profile_id, "attributes": ["region"], "size": 500}))
        .await
        .assert_error(422, "unprocessable");
    assert_eq!(
        e.message,
        "a dev set of 500 items is larger than the eligible pool (200 items of 200 after exclusions); import more items or lower the size"
    );
    let e = admin
        .post_json_raw(
            &path,
            &json!({"name": "floors", "profile_id": profile_id, "attributes": ["region", "device"], "size": 20, "min_per_stratum": 5}),
        )
        .await
        .assert_error(422, "unprocessable");
    // 45 for nine strata, less the 8 items the rarest strata do not have (floors are capped by availability).
    assert_eq!(
        e.message,
        "the minimum of 5 per stratum needs 37 items over 9 strata (each stratum's minimum or all its items, if fewer), \
         more than the dev-set size 20; lower the minimum or raise the size"
    );
    let e = admin
        .post_json_raw(&path, &json!({"name": "attr", "profile_id": profile_id, "attributes": ["plan"], "size": 20}))
        .await
        .assert_error(422, "unprocessable");
    assert_eq!(e.message, "the attribute \"plan\" is not in both the profile and the pool; attributes in both: device, region");
    let devsets: Vec<Value> = admin.get(&path).await;
    assert!(devsets.is_empty(), "{devsets:?}");
}

/// `mirrorset devset ...` through the API with a token: profile, draft, plan, sample, report,
/// and a refused profile's lines on standard error with exit status 1.
async fn devset_cli_round_trip(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("cli", 1, 600).await.id;
    admin.import(pid, "jsonl", pool_jsonl("cli", 300, 5)).await;
    let token = admin.create_token("cli").await.secret;
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.to_str().unwrap().to_string()
    };
    let (url, project) = (server.base_url().to_string(), pid.to_string());
    let run = |args: &[&str]| {
        let common = ["--url", url.as_str(), "--token", token.as_str(), "--project", project.as_str()];
        let out = Command::new(server_binary()).arg("devset").arg(args[0]).args(common).args(&args[1..]).output().unwrap();
        (out.status.code(), String::from_utf8_lossy(&out.stdout).into_owned(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let ok = |args: &[&str]| -> Value {
        let (code, out, err) = run(args);
        assert_eq!(code, Some(0), "mirrorset devset {args:?}: {err}");
        serde_json::from_str(&out).unwrap()
    };
    let prod = write("prod.jsonl", &production_jsonl(2000, 3));
    let profile = ok(&["profile", "--name", "nov", "--date", "2026-11-30", &prod]);
    let draft = write("draft.json", &json!({"name": "cli", "profile_id": profile["id"], "attributes": ["region"], "size": 40}).to_string());
    let created = ok(&["create", &draft]);
    let id = created["id"].to_string();
    assert_eq!(ok(&["plan", "--devset", &id])["size"], 40);
    assert_eq!(ok(&["sample", "--devset", &id])["members"], 40);
    assert_eq!(ok(&["report", "--devset", &id])["members"], 40);
    assert_eq!(ok(&["progress", "--devset", &id])["total"]["members"], 40);
    assert_eq!(ok(&["list"]).as_array().unwrap().len(), 1);

    let bad = write("bad.jsonl", "{\"plan\": \"pro\"}\n");
    let (code, out, err) = run(&["profile", "--name", "bad", "--date", "2026-11-30", &bad]);
    assert_eq!(code, Some(1));
    assert!(out.is_empty(), "{out}");
    assert_eq!(
        err.trim_end(),
        "error: 1 bad line in the production sample; nothing was saved (the first 1 are listed) (422 Unprocessable Entity)\n  \
         line 1 [plan]: unknown attribute \"plan\": no item of the pool has it (the pool's attributes: device, region)"
    );
    assert_eq!(ok(&["profiles"]).as_array().unwrap().len(), 1);
}

/// The profile upload checks the disk like an item import: a body whose declared size does not
/// fit above the reserve is refused before it is spooled, and nothing is saved.
async fn devset_profile_upload_checks_free_disk(b: Backend) {
    let server = TestServer::start_with_args(b, &["--min-free-disk-mb", "1000000000"]).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("disk", 1, 600).await.id;
    admin.import_raw(pid, "jsonl", b"{\"text\": \"a\", \"meta\": {\"region\": \"eu\"}}\n".to_vec()).await.assert_error(507, "insufficient_storage");
    let e = upload_profile(&admin, pid, "p", "", "{\"region\": \"eu\"}\n").await.assert_error(507, "insufficient_storage");
    assert!(e.message.starts_with("the upload (0 MiB) does not fit: the server has "), "{}", e.message);
    let profiles: Vec<Value> = admin.get(&format!("/api/projects/{pid}/profiles")).await;
    assert!(profiles.is_empty(), "{profiles:?}");
}

/// The plan's strata come from the pool index; each item's stratum must be exactly what the
/// profile's rules give its meta: numbers bucketed by the production quartiles (a numeric
/// string too, a value on an edge in the upper bucket), a non-numeric string as itself, a
/// number in a categorical attribute as its text (so 1 and "1" share a stratum), a missing or
/// null value as "(missing)". A second import after the first plan must show in the next plan
/// (the index is rebuilt when an import commits).
async fn devset_plan_categories_match_the_profile_rules(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("cats", 1, 600).await.id;
    let metas = [
        json!({"tier": "gold", "len": 1}),
        json!({"tier": 1, "len": 10}),
        json!({"tier": "1", "len": "10"}),
        json!({"tier": true, "len": 25.5}),
        json!({"tier": null, "len": "n/a"}),
        json!({"len": 100}),
        json!({"tier": "gold"}),
        json!({"tier": "gold", "len": 7}),
    ];
    let items: String = metas
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"id": format!("c{i}"), "text": format!("t{i}"), "meta": m}).to_string() + "\n")
        .collect();
    assert_eq!(admin.import(pid, "jsonl", items).await.imported, 8);
    // Production lengths 0..=40: quartiles 10, 20, 30.
    let production: String = (0..=40).map(|i| json!({"tier": "gold", "len": i}).to_string() + "\n").collect();
    let profile: Value = upload_profile(&admin, pid, "p", "", &production).await.created();
    assert_eq!(profile["attributes"], json!([{"name": "len", "kind": "numeric", "edges": [10.0, 20.0, 30.0]}, {"name": "tier", "kind": "categorical"}]));
    let draft = json!({"name": "d", "profile_id": profile["id"], "attributes": ["len", "tier"], "size": 1});
    let created: Value = admin.post_created(&format!("/api/projects/{pid}/devsets"), &draft).await;
    let plan_path = format!("/api/projects/{pid}/devsets/{}/plan", created["id"]);
    let available = |plan: &Value| -> Vec<(String, u64)> {
        plan["strata"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["available"].as_u64().unwrap() > 0)
            .map(|s| (s["key"].as_str().unwrap().to_string(), s["available"].as_u64().unwrap()))
            .collect()
    };
    let plan: Value = admin.get(&plan_path).await;
    assert_eq!(
        available(&plan),
        [
            ("len=(missing)|tier=gold", 1),
            ("len=10 – 20|tier=1", 2),
            ("len=20 – 30|tier=true", 1),
            ("len=< 10|tier=gold", 2),
            ("len=n/a|tier=(missing)", 1),
            ("len=≥ 30|tier=(missing)", 1),
        ]
        .map(|(k, n)| (k.to_string(), n))
    );
    assert_eq!((plan["pool_items"].as_u64(), plan["eligible_items"].as_u64()), (Some(8), Some(8)));
    // Another import: the next plan sees it.
    admin.import(pid, "jsonl", json!({"id": "c8", "text": "t8", "meta": {"tier": "gold", "len": 30}}).to_string() + "\n").await;
    let plan: Value = admin.get(&plan_path).await;
    assert_eq!(plan["pool_items"], 9);
    assert!(available(&plan).contains(&("len=≥ 30|tier=gold".to_string(), 1)), "{plan:#}");
}
