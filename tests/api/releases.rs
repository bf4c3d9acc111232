//! Dev-set releases (issue 9): freeze → refusals and overrides → immutability → diff →
//! exports → leakage.
//!
//! - Freezing is refused (422) with exactly the unlabeled / under-review items; an override
//!   freezes and records its reason and the list in the lineage.
//! - A release never changes: a later decision, and a direct UPDATE (refused by the triggers),
//!   leave its items, exports and hash as they were.
//! - The content hash is the same on SQLite and PostgreSQL for the same data (pinned), and
//!   `mirrorset release verify` recomputes it from the unpacked zip (and rejects a tampered one).
//! - Grouped splits never put one `user` in two splits.
//! - The diff reports exactly the planted changes (one item added, one label changed).
//! - A near-duplicate of a dev item planted among the training items blocks the freeze with
//!   exactly that pair, until overridden with a reason.
//! - `mirrorset release list / export --unpack / verify / diff` agree with the API.
//! - The lineage's agreement is computed at the freeze when labels came after the last
//!   snapshot (here: no snapshot at all), from the labels as they are.
//! - Each export's shape is pinned; the Hugging Face README's front matter parses as YAML with
//!   the configs, splits and ClassLabel names (python3 + PyYAML, when installed), and the
//!   folder loads with `datasets.load_dataset` (the pinned venv of scripts/hf_datasets.sh).
use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;

use app::api_types::*;
use reqwest::Method;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(
    release_freeze_diff_exports_and_leakage,
    agreement_at_freeze_is_never_stale,
    freeze_runs_as_a_job_and_survives_restarts,
    a_freeze_killed_mid_leakage_check_resumes_after_the_restart
);

/// The v1 release's content hash: the same data, so the same hash on both backends.
const HASH_V1: &str = "82187a73cb1334700b65ab5d4d254203dfcfda543422522a809a30da30291f88";

struct Lcg(u64);
impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }
}

/// 40 items: 40 words each from a 300-word vocabulary (no two alike), region and user.
fn pool_jsonl() -> String {
    let mut g = Lcg(5);
    (0..40)
        .map(|i| {
            let words: Vec<String> = (0..40).map(|_| format!("w{}", g.next() % 300)).collect();
            json!({"id": format!("it-{i}"), "text": words.join(" "),
                   "meta": {"region": (["eu", "us"][i % 2]), "user": format!("u{}", i % 8)},
                   "license": "cc-by-4.0", "source": "support-tickets"})
            .to_string()
                + "\n"
        })
        .collect()
}

async fn decide(c: &Client, pid: i64, item: i64, label: &str) {
    let body = json!({"labels": [label], "queue": "release-check"});
    c.post_json_raw(&format!("/api/projects/{pid}/review/items/{item}/decision"), &body).await.assert_status(201);
}

/// Freezes through the job: the POST's answer as it is unless it is 202, else the job
/// followed to its end and its outcome given back as the request answered before freezing
/// became a job (201 with the release, or 422 with the refusal), so the scenarios below read
/// the same. The job's own shape is pinned by `freeze_runs_as_a_job_and_survives_restarts`.
async fn freeze(c: &Client, pid: i64, devset: i64, body: Value) -> RawResponse {
    let r = c.post_json_raw(&format!("/api/projects/{pid}/devsets/{devset}/releases"), &body).await;
    if r.status.as_u16() != 202 {
        return r;
    }
    let job = wait_freeze(c, pid, r.json::<FreezeJob>().job.id).await;
    let (status, body) = match (&job.release, &job.blocked) {
        (Some(release), None) => (201, serde_json::to_vec(release).unwrap()),
        (None, Some(blocked)) => (422, serde_json::to_vec(&ErrorBody { error: blocked.clone() }).unwrap()),
        _ => panic!("a finished freeze has either a release or a refusal: {job:?}"),
    };
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::CONTENT_TYPE, "application/json".parse().unwrap());
    RawResponse { status: reqwest::StatusCode::from_u16(status).unwrap(), headers, body, what: format!("freeze job {}", job.job.id) }
}

/// Polls a freeze job until it is done or failed (60 s at most); panics when it failed.
async fn wait_freeze(c: &Client, pid: i64, job: i64) -> FreezeJob {
    let t = std::time::Instant::now();
    loop {
        let j: FreezeJob = c.get(&format!("/api/projects/{pid}/release-freezes/{job}")).await;
        if j.finished() {
            assert_eq!(j.job.state, "done", "the freeze failed: {j:?}");
            return j;
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(60), "the freeze did not finish: {j:?}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

fn jsonl_rows(bytes: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(bytes).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// A production profile balanced over `region`, a dev set of `size` items matching it, sampled:
/// (dev-set id, member item ids).
async fn sampled_devset(admin: &Client, pid: i64, size: i64, overlap: i64) -> (i64, Vec<i64>) {
    let profile_body: String = (0..100).map(|i| json!({"region": (["eu", "us"][i % 2])}).to_string() + "\n").collect();
    let profile: Value = admin
        .raw(Method::POST, &format!("/api/projects/{pid}/profiles?name=prod&date=2026-11-30"),
             Some((profile_body.into_bytes(), "application/octet-stream")))
        .await
        .created();
    let devset: Value = admin
        .post_created(&format!("/api/projects/{pid}/devsets"),
            &json!({"name": "dev", "profile_id": profile["id"], "attributes": ["region"], "size": size, "overlap": overlap, "seed": 1}))
        .await;
    let did = devset["id"].as_i64().unwrap();
    let sample: Value = admin.post_created(&format!("/api/projects/{pid}/devsets/{did}/sample"), &json!({})).await;
    (did, serde_json::from_value(sample["items"].clone()).unwrap())
}

async fn export(c: &Client, pid: i64, rid: i64, format: &str) -> Vec<u8> {
    let r = c.get_raw(&format!("/api/projects/{pid}/releases/{rid}/export?format={format}")).await;
    r.assert_status(200);
    r.body
}

async fn release_freeze_diff_exports_and_leakage(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("rel", 1, 600).await.id;
    assert_eq!(admin.import(pid, "jsonl", pool_jsonl()).await.imported, 40);
    let (did, members) = sampled_devset(&admin, pid, 12, 1).await;
    assert_eq!(members.len(), 12);

    // Labelers: 403.
    let (lab, lab_client) = server.user(&admin, "rellab", Role::Labeler).await;
    admin.add_member(pid, lab.id).await;
    lab_client.get_raw(&format!("/api/projects/{pid}/releases")).await.assert_error(403, "forbidden");
    freeze(&lab_client, pid, did, json!({})).await.assert_error(403, "forbidden");

    // Nothing labeled: refused, listing every member.
    let refused = freeze(&admin, pid, did, json!({})).await;
    let err = refused.assert_error(422, "unprocessable");
    let listed: Vec<UnreadyItem> = serde_json::from_value(err.details["unready"].clone()).unwrap();
    assert_eq!(listed.iter().map(|u| u.item_id).collect::<Vec<_>>(), members);
    assert!(listed.iter().all(|u| u.reason == "no_final_label"));

    // All but U decided; R decided but fed to a queue again: exactly those two block.
    let (u, r, flip) = (members[0], members[1], members[2]);
    for (n, &m) in members.iter().enumerate().skip(1) {
        decide(&admin, pid, m, if n % 2 == 0 { "pos" } else { "neg" }).await;
    }
    admin
        .post_json_raw(&format!("/api/projects/{pid}/review/queues/recheck/entries"),
                       &json!({"item_ids": [r], "reason": "customer complaint"}))
        .await
        .assert_status(200);
    let err = freeze(&admin, pid, did, json!({})).await.assert_error(422, "unprocessable");
    let listed: Vec<UnreadyItem> = serde_json::from_value(err.details["unready"].clone()).unwrap();
    let got: BTreeSet<(i64, String)> = listed.into_iter().map(|u| (u.item_id, u.reason)).collect();
    assert_eq!(got, BTreeSet::from([(u, "no_final_label".to_string()), (r, "open_review".to_string())]));
    assert!(admin.get::<Vec<ReleaseSummary>>(&format!("/api/projects/{pid}/releases")).await.is_empty(), "nothing saved");

    // Override: frozen without U, with the reason and the list in the lineage.
    let request = json!({"override_unready": "U is unlabeled; R is rechecked later", "group_by": "user", "seed": 3});
    let v1: ReleaseDetail = freeze(&admin, pid, did, request.clone()).await.created();
    assert_eq!(v1.summary.version, "v1");
    assert_eq!(v1.summary.item_count, 11);
    assert_eq!(v1.summary.splits.values().sum::<i64>(), 11);
    assert_eq!(v1.summary.splits.keys().cloned().collect::<Vec<_>>(), vec!["dev", "test"]);
    let l = &v1.lineage;
    assert_eq!(l["overrides"]["unready"]["reason"], "U is unlabeled; R is rechecked later");
    assert_eq!(l["overrides"]["unready"]["items"].as_array().unwrap().len(), 2);
    assert_eq!(l["overrides"]["leakage"], Value::Null);
    assert_eq!(l["leakage"]["pool_items"], 28);
    assert_eq!(l["splits"]["group_by"], "user");
    assert_eq!(l["frozen_by"]["username"], "admin");
    assert_eq!(l["devset"]["plan"]["attributes"], json!(["region"]));
    assert_eq!(l["aggregation"]["method"], "majority");
    assert!(l["agreement"]["alpha"].is_object() && l["app_version"].is_string(), "{l}");
    assert_eq!(v1.summary.content_hash.len(), 64);
    assert_eq!(v1.summary.content_hash, HASH_V1, "the same data must hash the same on every backend");
    let rid1 = v1.summary.id;

    // Exports: JSONL rows.
    let jsonl1 = export(&admin, pid, rid1, "jsonl").await;
    let rows = jsonl_rows(&jsonl1);
    assert_eq!(rows.len(), 11);
    let keys: BTreeSet<&str> = rows[0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, BTreeSet::from(["item_id", "id", "kind", "text", "image_sha256", "meta", "weight", "source",
        "license", "labels", "provenance", "n_labels", "split"]));
    assert!(rows.iter().all(|r| r["provenance"]["source"] == "adjudicated" && r["provenance"]["by"] == "admin"));
    assert!(!rows.iter().any(|r| r["item_id"] == u));
    // Grouped: one user, one split.
    let mut split_of_user: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for r in &rows {
        split_of_user.entry(r["meta"]["user"].as_str().unwrap().into()).or_default().insert(r["split"].as_str().unwrap().into());
    }
    assert!(split_of_user.values().all(|s| s.len() == 1), "{split_of_user:?}");
    // Stable: a second export is the same bytes.
    assert_eq!(export(&admin, pid, rid1, "jsonl").await, jsonl1);

    // CSV header, Label Studio tasks, card, manifest.
    let csv = String::from_utf8(export(&admin, pid, rid1, "csv").await).unwrap();
    assert_eq!(csv.lines().next().unwrap(),
        r#""item_id","id","kind","text","image_sha256","meta","weight","source","license","labels","provenance","posterior","n_labels","split","reviewed_by""#);
    assert_eq!(csv.lines().count(), 12);
    let ls: Value = serde_json::from_slice(&export(&admin, pid, rid1, "label_studio").await).unwrap();
    let tasks = ls.as_array().unwrap();
    assert_eq!(tasks.len(), 11);
    assert_eq!(tasks[0]["data"]["text"], rows[0]["text"]);
    assert_eq!(tasks[0]["annotations"][0]["result"][0]["value"]["choices"], rows[0]["labels"]);
    assert_eq!(tasks[0]["annotations"][0]["result"][0]["from_name"], "label");
    // Out and back in: a fresh project holds the same items and labels.
    let labels = admin.project(pid).await.labels;
    crate::releases_label_studio::round_trip_into_fresh_project(&admin, &serde_json::to_vec(&ls).unwrap(), labels).await;
    let card = String::from_utf8(export(&admin, pid, rid1, "card").await).unwrap();
    assert_eq!(card, v1.card);
    for heading in ["# rel-dev-v1", "## How it was sampled", "## Agreement and label provenance",
                    "## Size and the confidence it gives", "## Known limits", "## Licences and sources"] {
        assert!(card.contains(heading), "{heading} missing from the card:\n{card}");
    }
    let manifest_bytes = export(&admin, pid, rid1, "manifest").await;
    let manifest: Value = serde_json::from_slice(&manifest_bytes).unwrap();
    assert_eq!(manifest["content_hash"], HASH_V1);

    // The zip: exactly these files, in this order; verify recomputes the hash; a tampered copy
    // fails. It is written in one pass on three threads (`releases::archive`): its per-item
    // files are byte for byte the single-format exports, its manifest the manifest export's,
    // and every file has the SHA-256 the manifest gives.
    let zip_bytes = export(&admin, pid, rid1, "zip").await;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zip_bytes)).unwrap();
    let names: Vec<String> = (0..archive.len()).map(|k| archive.by_index(k).unwrap().name().to_string()).collect();
    assert_eq!(names, ["README.md", "release.jsonl", "release.csv", "label_studio.json", "label_studio_config.xml",
        "lineage.json", "data/dev.jsonl", "data/test.jsonl", "manifest.json"]);
    let entry = |archive: &mut zip::ZipArchive<std::io::Cursor<Vec<u8>>>, name: &str| {
        let mut body = Vec::new();
        std::io::Read::read_to_end(&mut archive.by_name(name).unwrap(), &mut body).unwrap();
        body
    };
    assert_eq!(entry(&mut archive, "release.jsonl"), jsonl1);
    assert_eq!(entry(&mut archive, "release.csv"), csv.as_bytes());
    assert_eq!(entry(&mut archive, "label_studio.json"), export(&admin, pid, rid1, "label_studio").await);
    assert_eq!(entry(&mut archive, "README.md"), card.as_bytes());
    assert_eq!(entry(&mut archive, "manifest.json"), manifest_bytes);
    let files = manifest["files"].as_object().unwrap();
    assert_eq!(files.len(), names.len() - 1, "every file but the manifest: {files:?}");
    for (name, sha) in files {
        let digest = sha2::Digest::finalize(<sha2::Sha256 as sha2::Digest>::new_with_prefix(entry(&mut archive, name)));
        assert_eq!(sha.as_str().unwrap(), hex::encode(digest), "{name}");
    }
    let dir = tempfile::tempdir().unwrap();
    archive.extract(dir.path()).unwrap();
    let verify = Command::new(server_binary()).args(["release", "verify"]).arg(dir.path()).output().unwrap();
    assert!(verify.status.success(), "{}", String::from_utf8_lossy(&verify.stderr));
    assert!(String::from_utf8_lossy(&verify.stdout).contains(HASH_V1));
    let hf_dev = jsonl_rows(&std::fs::read(dir.path().join("data/dev.jsonl")).unwrap());
    assert_eq!(hf_dev.len() as i64, v1.summary.splits["dev"]);
    let hf_keys: BTreeSet<&str> = hf_dev[0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(hf_keys, BTreeSet::from(["id", "text", "image_sha256", "weight", "source", "license", "meta",
        "provenance", "n_labels", "label"]));
    assert!(hf_dev.iter().all(|r| r["label"] == 0 || r["label"] == 1), "class indices of pos/neg");
    front_matter_parses(&dir.path().join("README.md"), &v1);
    loads_with_hf_datasets(dir.path(), &v1);
    let tampered = std::fs::read_to_string(dir.path().join("release.jsonl")).unwrap().replacen("\"neg\"", "\"pos\"", 1);
    std::fs::write(dir.path().join("release.jsonl"), tampered).unwrap();
    let verify = Command::new(server_binary()).args(["release", "verify"]).arg(dir.path()).output().unwrap();
    assert!(!verify.status.success(), "a tampered release must not verify");

    // Immutable: a later decision changes nothing in v1; UPDATEs are refused by the database.
    let flipped_to = if rows.iter().find(|r| r["item_id"] == flip).unwrap()["labels"] == json!(["pos"]) { "neg" } else { "pos" };
    decide(&admin, pid, flip, flipped_to).await;
    let again: ReleaseDetail = admin.get(&format!("/api/projects/{pid}/releases/{rid1}")).await;
    assert_eq!(again.summary.content_hash, HASH_V1);
    assert_eq!(export(&admin, pid, rid1, "jsonl").await, jsonl1);
    assert!(server.try_exec_sql("UPDATE release_items SET labels = '[]'").await.is_err());
    assert!(server.try_exec_sql("UPDATE releases SET content_hash = 'x'").await.is_err());

    // v2: U labeled, one label flipped; the diff reports exactly that.
    decide(&admin, pid, u, "pos").await;
    let v2: ReleaseDetail = freeze(&admin, pid, did, request.clone()).await.created();
    assert_eq!((v2.summary.version.as_str(), v2.summary.item_count), ("v2", 12));
    assert_ne!(v2.summary.content_hash, HASH_V1);
    let d: ReleaseDiff = admin.get(&format!("/api/projects/{pid}/releases/{rid1}/diff/{}", v2.summary.id)).await;
    assert_eq!(d.added, vec![u]);
    assert!(d.removed.is_empty());
    assert_eq!(d.label_changes.len(), 1);
    assert_eq!(d.label_changes[0].item_id, flip);
    assert_eq!(d.label_changes[0].to_labels, vec![flipped_to.to_string()]);
    assert_eq!(d.label_changes[0].from_provenance["source"], "adjudicated");
    let eu = d.distribution.iter().filter(|c| c.attribute == "region").map(|c| c.to_count).sum::<i64>();
    assert_eq!(eu, 12);
    assert_eq!(admin.get::<Vec<ReleaseSummary>>(&format!("/api/projects/{pid}/releases?devset_id={did}")).await.len(), 2);

    // The CLI: list, export --unpack, verify and diff through the API with a token.
    let token = admin.create_token("cli").await.secret;
    let (url, project) = (server.base_url().to_string(), pid.to_string());
    let cli = |args: &[&str]| {
        let out = Command::new(server_binary()).arg("release").arg(args[0])
            .args(["--url", url.as_str(), "--token", token.as_str(), "--project", project.as_str()])
            .args(&args[1..]).output().unwrap();
        assert!(out.status.success(), "mirrorset release {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let listed: Vec<ReleaseSummary> = serde_json::from_str(&cli(&["list"])).unwrap();
    assert_eq!(listed.iter().map(|r| r.version.as_str()).collect::<Vec<_>>(), ["v1", "v2"]);
    let out_dir = tempfile::tempdir().unwrap();
    let unpacked = out_dir.path().join("v1");
    cli(&["export", "--release", &rid1.to_string(), "--out", unpacked.to_str().unwrap(), "--unpack"]);
    let verify = Command::new(server_binary()).args(["release", "verify"]).arg(&unpacked).output().unwrap();
    assert!(verify.status.success() && String::from_utf8_lossy(&verify.stdout).contains(HASH_V1));
    let cli_diff: ReleaseDiff = serde_json::from_str(&cli(&["diff", "--from", &rid1.to_string(), "--to", &v2.summary.id.to_string()])).unwrap();
    assert_eq!(cli_diff.added, d.added);

    // Leakage: a near-copy of a dev item (one word of 40 changed) among the training items.
    let rows2 = jsonl_rows(&export(&admin, pid, v2.summary.id, "jsonl").await);
    let victim = rows2.iter().find(|r| r["split"] == "dev").unwrap();
    let mut words: Vec<&str> = victim["text"].as_str().unwrap().split(' ').collect();
    words[20] = "planted";
    let planted = json!({"id": "planted", "text": words.join(" ")}).to_string() + "\n";
    assert_eq!(admin.import(pid, "jsonl", planted).await.imported, 1);
    let err = freeze(&admin, pid, did, request.clone()).await.assert_error(422, "unprocessable");
    let pairs: Vec<LeakagePair> = serde_json::from_value(err.details["leakage"].clone()).unwrap();
    assert_eq!(pairs.len(), 1, "{pairs:?}");
    assert_eq!((pairs[0].kind.as_str(), pairs[0].a.item_id, pairs[0].a.split.as_str()), ("near", victim["item_id"].as_i64().unwrap(), "dev"));
    assert_eq!((pairs[0].b.external_id.as_deref(), pairs[0].b.split.as_str()), (Some("planted"), "pool"));
    assert!(pairs[0].jaccard >= 0.8 && pairs[0].jaccard < 1.0, "{pairs:?}");
    let mut overridden = request.clone();
    overridden["override_leakage"] = json!("the planted copy is removed from training by hand");
    let v3: ReleaseDetail = freeze(&admin, pid, did, overridden).await.created();
    assert_eq!(v3.summary.version, "v3");
    assert_eq!(v3.lineage["overrides"]["leakage"]["reason"], "the planted copy is removed from training by hand");
    assert_eq!(v3.lineage["overrides"]["leakage"]["pairs"].as_array().unwrap().len(), 1);

    // Train-dev from the labeled training pool; the licence filter.
    let pool_ids: Vec<i64> = admin.export_jsonl(pid, false).await.iter()
        .filter_map(|i| i["item_id"].as_i64()).filter(|id| !members.contains(id)).collect();
    for &id in &pool_ids[..4] {
        decide(&admin, pid, id, "pos").await;
    }
    let mut with_train_dev = request.clone();
    with_train_dev["train_dev_size"] = json!(3);
    with_train_dev["licenses"] = json!(["cc-by-4.0"]);
    with_train_dev["override_leakage"] = json!("known copy");
    let v4: ReleaseDetail = freeze(&admin, pid, did, with_train_dev.clone()).await.created();
    assert_eq!(v4.summary.splits.get("train_dev"), Some(&3));
    assert_eq!(v4.summary.item_count, 15);
    // 40 − 12 members + the planted copy, less the 3 train-dev items (checked between splits).
    assert_eq!(v4.lineage["leakage"]["pool_items"], 26);
    assert_eq!(v4.lineage["filters"]["left_out"], json!({}));
    let tdr = jsonl_rows(&export(&admin, pid, v4.summary.id, "jsonl").await);
    assert!(tdr.iter().filter(|r| r["split"] == "train_dev").all(|r| pool_ids[..4].contains(&r["item_id"].as_i64().unwrap())));
    with_train_dev["train_dev_size"] = json!(5);
    let err = freeze(&admin, pid, did, with_train_dev.clone()).await.assert_error(422, "unprocessable");
    assert!(err.message.contains("4 labeled items"), "{}", err.message);
    let err = freeze(&admin, pid, did, json!({"licenses": ["mit"], "override_unready": "x"})).await.assert_error(422, "unprocessable");
    assert!(err.message.contains("nothing to freeze"), "{}", err.message);

    // Bad requests.
    admin.get_raw(&format!("/api/projects/{pid}/releases/{rid1}/export?format=parquet")).await.assert_error(400, "bad_request");
    admin.get_raw(&format!("/api/projects/{pid}/releases/999")).await.assert_error(404, "not_found");
    freeze(&admin, pid, did, json!({"dev_share": -1})).await.assert_error(400, "bad_request");
}

/// `datasets.load_dataset(folder)` with the pinned `datasets` (scripts/hf_datasets.sh sets
/// MIRRORSET_DATASETS_PYTHON and runs this test; without it, a note): the release's splits
/// with their sizes, the label a ClassLabel with the project's label names.
fn loads_with_hf_datasets(folder: &std::path::Path, release: &ReleaseDetail) {
    let Ok(python) = std::env::var("MIRRORSET_DATASETS_PYTHON") else {
        eprintln!("note: MIRRORSET_DATASETS_PYTHON not set; the folder was not loaded with datasets (scripts/hf_datasets.sh does)");
        return;
    };
    let out = Command::new(python).arg(workspace_root().join("scripts/hf_datasets_check.py")).arg(folder).output().unwrap();
    assert!(out.status.success(), "load_dataset failed: {}", String::from_utf8_lossy(&out.stderr));
    let got: Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut want = serde_json::Map::new();
    for (split, rows) in &release.summary.splits {
        want.insert(split.clone(), json!({"rows": rows, "label_feature": "ClassLabel", "label_names": ["pos", "neg", "other"]}));
    }
    let without_first: Value = got.as_object().unwrap().iter()
        .map(|(k, v)| { let mut v = v.clone(); v.as_object_mut().unwrap().remove("first_label"); (k.clone(), v) })
        .collect::<serde_json::Map<_, _>>().into();
    assert_eq!(without_first, Value::Object(want));
    // The first dev row's label, decoded by name, is the one the release holds.
    let dev = String::from_utf8(std::fs::read(folder.join("data/dev.jsonl")).unwrap()).unwrap();
    let first: Value = serde_json::from_str(dev.lines().next().unwrap()).unwrap();
    let names = ["pos", "neg", "other"];
    let first_name = match &first["label"] { Value::Number(n) => json!(names[n.as_u64().unwrap() as usize]), other => other.clone() };
    assert_eq!(got["dev"]["first_label"], first_name);
}

/// The README's YAML front matter, read by PyYAML (skipped, with a note, without python3 and
/// PyYAML): the keys `datasets.load_dataset` reads.
fn front_matter_parses(readme: &std::path::Path, release: &ReleaseDetail) {
    let script = r#"
import json, sys, yaml
text = open(sys.argv[1], encoding="utf-8").read()
assert text.startswith("---\n")
front = yaml.safe_load(text.split("---\n")[1])
print(json.dumps(front))
"#;
    let out = match Command::new("python3").arg("-c").arg(script).arg(readme).output() {
        Ok(o) if o.status.success() => o,
        Ok(o) if String::from_utf8_lossy(&o.stderr).contains("No module named 'yaml'") => {
            eprintln!("note: PyYAML not installed; the front matter was not parsed");
            return;
        }
        Ok(o) => panic!("the front matter does not parse: {}", String::from_utf8_lossy(&o.stderr)),
        Err(_) => {
            eprintln!("note: no python3; the front matter was not parsed");
            return;
        }
    };
    let front: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(front["configs"][0]["config_name"], "default");
    assert_eq!(front["configs"][0]["data_files"], json!([{"split": "dev", "path": "data/dev.jsonl"}, {"split": "test", "path": "data/test.jsonl"}]));
    assert_eq!(front["license"], json!(["cc-by-4.0"]));
    let label = front["dataset_info"]["features"].as_array().unwrap().iter().find(|f| f["name"] == "label").unwrap();
    assert_eq!(label["dtype"]["class_label"]["names"], json!({"0": "pos", "1": "neg", "2": "other"}));
    let splits: Vec<(String, i64)> = front["dataset_info"]["splits"].as_array().unwrap().iter()
        .map(|s| (s["name"].as_str().unwrap().to_string(), s["num_examples"].as_i64().unwrap())).collect();
    assert_eq!(splits, release.summary.splits.iter().map(|(k, v)| (k.clone(), *v)).collect::<Vec<_>>());
}

/// The lineage's agreement is never older than the labels: the refresh runs hourly here, so
/// no snapshot exists when the dev set's items are labeled and frozen; the freeze computes
/// agreement then (the consensus job's code), from every label written so far, and records
/// where the figure came from and when.
async fn agreement_at_freeze_is_never_stale(b: Backend) {
    let server = TestServer::start_with_args(b, &["--refresh-interval-secs", "3600"]).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("rel-agree", 2, 600).await.id;
    assert_eq!(admin.import(pid, "jsonl", pool_jsonl()).await.imported, 40);
    let (did, members) = sampled_devset(&admin, pid, 6, 2).await;

    // Two labelers label everything: they agree except on every third item.
    let mut latest = 0;
    let mut annotations = 0;
    for (who, name) in ["agree-a", "agree-b"].into_iter().enumerate() {
        let (user, c) = server.user(&admin, name, Role::Labeler).await;
        admin.add_member(pid, user.id).await;
        while let Some(item) = c.next(pid).await.item {
            let label = if who == 1 && item.id % 3 == 0 { "neg" } else { "pos" };
            latest = latest.max(c.submit(pid, item.id, &[label]).await.updated_at);
            annotations += 1;
        }
    }
    assert_eq!(annotations, 80);
    let stored: AgreementDashboard = admin.get(&format!("/api/projects/{pid}/agreement")).await;
    assert_eq!(stored.computed_at, None, "no snapshot yet: the refresh runs hourly here");
    for &m in &members {
        decide(&admin, pid, m, "pos").await;
    }

    let v1: ReleaseDetail = freeze(&admin, pid, did, json!({})).await.created();
    let a = &v1.lineage["agreement"];
    assert_eq!(a["source"], "computed_at_freeze", "{a}");
    let dev_latest = a["latest_label_at"].as_i64().expect("the dev items have labels");
    assert!(dev_latest > 0 && dev_latest <= latest, "{a}");
    assert!(a["computed_at"].as_i64().unwrap() >= latest, "computed before the last label: {a}");
    assert_eq!((a["n_items"].as_i64(), a["n_labelers"].as_i64()), (Some(40), Some(2)), "{a}");
    let alpha = a["alpha"]["value"].as_f64().expect("alpha computed");
    assert!(alpha < 1.0, "the labelers disagree on some items: {a}");
    assert!(v1.card.contains("Krippendorff's alpha at freeze time: "), "{}", v1.card);
    assert!(!v1.card.contains("not computed"), "{}", v1.card);
}

/// The phases a freeze job reports, in order (`releases::job`).
const PHASES: &[&str] = &["reading members", "splitting", "leakage check", "lineage", "hashing", "writing", "done"];

/// A freeze is a background job: the POST answers 202 with the queued job; its GET shows the
/// phase and counts, then the release (done) or the refusal (done, blocked, nothing saved).
/// A crash right after the POST, and a crash after the release was committed but before the
/// job was marked done, both end with exactly one release: never a twin, never a half.
async fn freeze_runs_as_a_job_and_survives_restarts(b: Backend) {
    let mut server = TestServer::start_with_args(b, &["--refresh-interval-secs", "1", "--job-stale-secs", "1"]).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("rel-job", 1, 600).await.id;
    assert_eq!(admin.import(pid, "jsonl", pool_jsonl()).await.imported, 40);
    let (did, members) = sampled_devset(&admin, pid, 10, 1).await;
    let url = format!("/api/projects/{pid}/devsets/{did}/releases");
    let status_url = |job: i64| format!("/api/projects/{pid}/release-freezes/{job}");

    // Blocked: 202, then done with the refusal listing every member; nothing saved.
    let queued: FreezeJob = admin.post_json_raw(&url, &json!({})).await.assert_status(202).json();
    assert_eq!((queued.job.kind.as_str(), queued.devset_id), ("release_freeze", did));
    assert!(matches!(queued.job.state.as_str(), "queued" | "running"), "{queued:?}");
    assert!(queued.release.is_none() && queued.blocked.is_none(), "{queued:?}");
    let refused = wait_freeze(&admin, pid, queued.job.id).await;
    assert!(refused.release.is_none(), "{refused:?}");
    let err = refused.blocked.expect("a refusal");
    assert_eq!(err.code, "unprocessable");
    assert!(err.message.contains("10 items of the dev set lack a final label"), "{}", err.message);
    let listed: Vec<UnreadyItem> = serde_json::from_value(err.details["unready"].clone()).unwrap();
    assert_eq!(listed.iter().map(|u| u.item_id).collect::<Vec<_>>(), members);
    assert!(admin.get::<Vec<ReleaseSummary>>(&format!("/api/projects/{pid}/releases")).await.is_empty(), "nothing saved");

    // Frozen: the phases seen while polling are the known ones, in order; at the end the
    // release, with the counts of the last phase complete.
    for (n, &m) in members.iter().enumerate() {
        decide(&admin, pid, m, if n % 2 == 0 { "pos" } else { "neg" }).await;
    }
    let job = admin.post_json_raw(&url, &json!({"seed": 2})).await.assert_status(202).json::<FreezeJob>().job.id;
    let mut seen: Vec<String> = Vec::new();
    let done = loop {
        let j: FreezeJob = admin.get(&status_url(job)).await;
        if let Some(p) = &j.phase {
            assert!(PHASES.contains(&p.as_str()), "unknown phase {p:?}");
            if seen.last() != Some(p) {
                seen.push(p.clone());
            }
        }
        assert!(j.job.progress_done <= j.job.progress_total || j.job.progress_total == 0, "{j:?}");
        if j.finished() {
            break j;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let order: Vec<usize> = seen.iter().map(|p| PHASES.iter().position(|q| q == p).unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "phases out of order: {seen:?}");
    assert_eq!((done.job.state.as_str(), done.phase.as_deref()), ("done", Some("done")), "{done:?}");
    assert_eq!((done.job.progress_done, done.job.progress_total), (10, 10));
    let v1 = done.release.expect("the release");
    assert_eq!((v1.summary.version.as_str(), v1.summary.item_count), ("v1", 10));
    assert_eq!(v1.lineage["frozen_by"]["username"], "admin");
    assert_eq!(v1.lineage["leakage"]["pool_items"], 30, "{}", v1.lineage["leakage"]);

    // Unknown job: 404; a labeler: 403.
    admin.get_raw(&status_url(job + 1000)).await.assert_error(404, "not_found");
    let (lab, lab_client) = server.user(&admin, "rel-job-lab", Role::Labeler).await;
    admin.add_member(pid, lab.id).await;
    lab_client.get_raw(&status_url(job)).await.assert_error(403, "forbidden");

    // A crash right after the POST: the job runs (again) after the restart; one v2.
    let job2 = admin.post_json_raw(&url, &json!({"seed": 3})).await.assert_status(202).json::<FreezeJob>().job.id;
    server.crash_restart().await;
    let admin = server.admin().await;
    let v2 = wait_freeze(&admin, pid, job2).await.release.expect("frozen after the restart");
    assert_eq!((v2.summary.version.as_str(), v2.summary.item_count), ("v2", 10));
    let all: Vec<ReleaseSummary> = admin.get(&format!("/api/projects/{pid}/releases")).await;
    assert_eq!(all.iter().map(|r| r.version.as_str()).collect::<Vec<_>>(), vec!["v1", "v2"]);

    // A crash after the release was committed, before the job was marked done (made by hand:
    // the job put back to running with a dead heartbeat): the rerun finds its release.
    server
        .exec_sql(&format!("UPDATE jobs SET state = 'running', heartbeat_at = 1, result = NULL, finished_at = NULL WHERE id = {job2}"))
        .await;
    server.crash_restart().await;
    let admin = server.admin().await;
    let again = wait_freeze(&admin, pid, job2).await;
    assert_eq!(again.release.expect("its release").summary.id, v2.summary.id);
    let all: Vec<ReleaseSummary> = admin.get(&format!("/api/projects/{pid}/releases")).await;
    assert_eq!(all.len(), 2, "no twin written: {all:?}");
}

/// A server killed (SIGKILL) while a freeze job runs, here in its leakage check (a pool of
/// 12,000 items keeps it there for seconds in a debug build), comes back and the job resumes
/// (its heartbeat goes stale, the runner queues it again and it runs from the start): it ends
/// done with release v1 of every member, and nothing else was written. The same request frozen
/// again without a crash gives the same content hash.
async fn a_freeze_killed_mid_leakage_check_resumes_after_the_restart(b: Backend) {
    let mut server = TestServer::start_with_args(b, &["--job-stale-secs", "1"]).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("rel-kill", 1, 600).await.id;
    let mut g = Lcg(9);
    let pool: String = (0..12_000)
        .map(|i| {
            let words: Vec<String> = (0..60).map(|_| format!("w{}", g.next() % 2000)).collect();
            json!({"id": format!("k-{i}"), "text": words.join(" "), "meta": {"region": (["eu", "us"][i % 2])},
                   "gold": (["pos", "neg"][i % 2])})
            .to_string()
                + "\n"
        })
        .collect();
    assert_eq!(admin.import(pid, "jsonl", pool).await.imported, 12_000);
    let (did, _) = sampled_devset(&admin, pid, 500, 1).await;
    let url = format!("/api/projects/{pid}/devsets/{did}/releases");

    let job = admin.post_json_raw(&url, &json!({"seed": 4})).await.assert_status(202).json::<FreezeJob>().job.id;
    let status_url = format!("/api/projects/{pid}/release-freezes/{job}");
    let caught = loop {
        let j: FreezeJob = admin.get(&status_url).await;
        if j.job.state == "running" && j.phase.as_deref() == Some("leakage check") {
            break j;
        }
        assert!(!j.finished(), "the freeze ended before it could be killed in its leakage check: {j:?}");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    server.crash_restart().await;
    let admin = server.admin().await;
    let resumed = wait_freeze(&admin, pid, job).await;
    assert!(resumed.job.error.is_none(), "{resumed:?}");
    let v1 = resumed.release.expect("frozen after the restart");
    assert_eq!((v1.summary.version.as_str(), v1.summary.item_count), ("v1", 500), "killed at {:?}", caught.phase);
    assert_eq!(v1.lineage["leakage"]["pool_items"], 11_500);

    let again = wait_freeze(&admin, pid, admin.post_json_raw(&url, &json!({"seed": 4})).await.assert_status(202).json::<FreezeJob>().job.id).await;
    let v2 = again.release.expect("frozen");
    assert_eq!(v2.summary.version, "v2");
    assert_eq!(v2.summary.content_hash, v1.summary.content_hash, "the resumed freeze froze what an uninterrupted one does");
    let all: Vec<ReleaseSummary> = admin.get(&format!("/api/projects/{pid}/releases")).await;
    assert_eq!(all.len(), 2, "the killed run saved nothing of its own: {all:?}");
}
