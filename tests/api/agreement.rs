//! The agreement dashboard and consensus (issue 7): the background refresh computes them
//! without anyone asking, the numbers equal `mirrorset stats` on the project's `annotations`
//! export, labelers never see them, and a restart finishes or cleanly fails a job that was
//! running.
use std::process::Command;
use std::time::{Duration, Instant};

use app::api_types::*;
use serde_json::{json, Value};

use crate::common::*;

both_backends!(
    dashboard_equals_the_stats_command_on_the_export,
    multi_label_dashboard_is_per_label_present_absent,
    consensus_appears_without_any_request_after_labels_change,
    a_refresh_writes_only_the_consensus_rows_that_changed,
    labelers_get_403_on_every_agreement_route,
    a_restart_resumes_a_running_consensus_job_and_fails_a_kind_that_cannot_resume
);

/// A one-second refresh, so tests wait seconds rather than the default 15.
const FAST: &[&str] = &["--refresh-interval-secs", "1"];

async fn labelers(server: &TestServer, admin: &Client, pid: i64, names: &[&str]) -> Vec<(User, Client)> {
    let mut out = Vec::new();
    for name in names {
        let (user, client) = server.user(admin, name, Role::Labeler).await;
        admin.add_member(pid, user.id).await;
        out.push((user, client));
    }
    out
}

/// Each labeler takes `n` items and answers `answer(external id, labeler index)`.
async fn label_all(labelers: &[(User, Client)], pid: i64, n: usize, answer: impl Fn(&str, usize) -> Vec<&'static str>) {
    for (who, (_, c)) in labelers.iter().enumerate() {
        for _ in 0..n {
            let item = c.next(pid).await.item.expect("an item");
            let ext = item.external_id.clone().expect("imported with ids");
            c.submit(pid, item.id, &answer(&ext, who)).await;
        }
    }
}

/// Polls the dashboard until it was computed from `annotations` annotations.
async fn dashboard_with(admin: &Client, pid: i64, annotations: i64) -> AgreementDashboard {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let d: AgreementDashboard = admin.get(&format!("/api/projects/{pid}/agreement")).await;
        if d.computed_at.is_some() && d.n_annotations == annotations && !d.refreshing {
            return d;
        }
        assert!(Instant::now() < deadline, "the dashboard was not refreshed: {d:#?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

fn stats(export: &str, args: &[&str]) -> Value {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("annotations.jsonl");
    std::fs::write(&file, export).expect("write the export");
    let out = Command::new(env!("CARGO_BIN_EXE_mirrorset")).arg("stats").args(args).arg(&file).output().expect("run mirrorset stats");
    assert!(out.status.success(), "mirrorset stats {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("stats prints JSON")
}

#[track_caller]
fn same(got: Option<f64>, want: &Value, what: &str) {
    let want = want.as_f64().unwrap_or_else(|| panic!("{what}: the command gave no number: {want}"));
    let got = got.unwrap_or_else(|| panic!("{what}: the dashboard gave no number"));
    assert!((got - want).abs() < 1e-9, "{what}: dashboard {got} vs stats {want}");
}

#[track_caller]
fn same_interval(got: &StatValue, want: &Value, what: &str) {
    let ci = got.interval.unwrap_or_else(|| panic!("{what}: no interval: {got:?}"));
    same(Some(ci.lower), &want["lower"], &format!("{what} lower"));
    same(Some(ci.upper), &want["upper"], &format!("{what} upper"));
}

async fn export(admin: &Client, pid: i64) -> String {
    let resp = admin.export_raw(pid, "annotations", false).await;
    resp.assert_status(200);
    resp.text()
}

/// Counts consensus rows by SQL (the refresh must not need any request to happen).
async fn consensus_count(server: &TestServer, pid: i64, condition: &str) -> u64 {
    // An UPDATE that changes nothing reports how many rows match.
    server.exec_sql(&format!("UPDATE consensus SET n_labels = n_labels WHERE project_id = {pid} AND {condition}")).await
}

async fn dashboard_equals_the_stats_command_on_the_export(b: Backend) {
    let server = TestServer::start_with_args(b, FAST).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("agreement", 3, 600).await.id;
    let body: String = (0..12)
        .map(|i| json!({"id": format!("s-{i}"), "text": format!("item {i}"), "meta": {"region": if i % 3 == 0 { "us" } else { "eu" }}}).to_string() + "\n")
        .collect();
    admin.import(pid, "jsonl", body).await;
    let team = labelers(&server, &admin, pid, &["ana", "ben", "chen"]).await;
    // Mostly agreeing; chen differs on every fourth item, ben on s-5 and s-7.
    label_all(&team, pid, 12, |ext, who| {
        let i: usize = ext[2..].parse().unwrap();
        let truth = ["pos", "neg", "other"][i % 3];
        vec![match (who, i) {
            (2, i) if i % 4 == 0 => "neg",
            (1, 5) | (1, 7) => "pos",
            _ => truth,
        }]
    })
    .await;

    let d = dashboard_with(&admin, pid, 36).await;
    let text = export(&admin, pid).await;
    let report = stats(&text, &["agreement", "--bootstrap", "1000"]);
    assert_eq!((d.n_items, d.n_labelers, d.alpha.n), (12, 3, 12), "{d:#?}");
    same(d.alpha.value, &report["krippendorff_alpha"], "alpha");
    same(d.fleiss_kappa.value, &report["fleiss_kappa"], "Fleiss");
    same(d.mean_cohen_kappa.value, &report["mean_pairwise_cohen_kappa"], "mean Cohen");
    same(d.percent_agreement.value, &report["percent_agreement"], "percent agreement");
    same_interval(&d.alpha, &report["ci"]["krippendorff_alpha"], "alpha");
    same_interval(&d.fleiss_kappa, &report["ci"]["fleiss_kappa"], "Fleiss");
    same_interval(&d.mean_cohen_kappa, &report["ci"]["mean_pairwise_cohen_kappa"], "mean Cohen");
    assert!(d.percent_agreement.interval.is_some(), "{d:#?}");
    for pair in report["pairwise_cohen_kappa"].as_array().unwrap() {
        let cell = d.pairs.iter().find(|c| c.a == pair["a"] && c.b == pair["b"]).expect("every pair");
        assert_eq!(cell.n, pair["n"].as_i64().unwrap());
        same(cell.kappa, &pair["kappa"], "pair kappa");
    }
    for row in &d.per_label {
        same(row.alpha.value, &report["per_label_krippendorff_alpha"][&row.label], &format!("alpha of {}", row.label));
    }
    // chen mixes pos/other up with neg: the confusion list names those pairs.
    assert!(d.confusion.iter().any(|c| (c.a.as_str(), c.b.as_str()) == ("pos", "neg")), "{:?}", d.confusion);

    // Majority-vote consensus rows equal `aggregate --method majority`.
    let agg = stats(&text, &["aggregate", "--method", "majority"]);
    for (item, want) in agg["items"].as_object().unwrap() {
        let (label, p) = (want["label"].as_str().unwrap(), want["posterior"][want["label"].as_str().unwrap()].as_f64().unwrap());
        let cond = format!("item_id = {item} AND labels = '[\"{label}\"]' AND method = 'majority' AND ABS(posterior - {p}) < 1e-9");
        assert_eq!(consensus_count(&server, pid, &cond).await, 1, "item {item}: {want}");
    }
    assert_eq!(consensus_count(&server, pid, "1 = 1").await, 12);

    // Dawid–Skene: switching the method refreshes on its own; rows and confusions equal the command's.
    server.exec_sql(&format!("UPDATE projects SET consensus_method = 'dawid_skene' WHERE id = {pid}")).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let d = loop {
        let d: AgreementDashboard = admin.get(&format!("/api/projects/{pid}/agreement")).await;
        if d.consensus_method == "dawid_skene" && !d.refreshing {
            break d;
        }
        assert!(Instant::now() < deadline, "no refresh after the method changed");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let ds = stats(&text, &["aggregate", "--method", "dawid-skene"]);
    for (item, want) in ds["items"].as_object().unwrap() {
        let label = want["label"].as_str().unwrap();
        let p = want["posterior"][label].as_f64().unwrap();
        let cond = format!("item_id = {item} AND labels = '[\"{label}\"]' AND method = 'dawid_skene' AND ABS(posterior - {p}) < 1e-9");
        assert_eq!(consensus_count(&server, pid, &cond).await, 1, "item {item}: {want}");
    }
    for l in &d.labelers {
        let theirs = &ds["annotators"][&l.username]["confusion"];
        for (t, truth) in d.confusion_labels.iter().enumerate() {
            for (g, given) in d.confusion_labels.iter().enumerate() {
                same(Some(l.ds_confusion[t][g]), &theirs[truth][given], &format!("{} DS confusion {truth}->{given}", l.username));
            }
        }
    }
    let chen = d.labelers.iter().find(|l| l.username == "chen").unwrap();
    assert_eq!((chen.items_labeled, chen.skips), (12, 0));
    // chen's answers against ana + ben's plurality: s-5 and s-7 are ties (ana ≠ ben), the rest
    // are compared; chen differs on s-0 and s-8 (on s-4 the truth is neg anyway).
    assert_eq!((chen.agreement_with_others.n, chen.agreement_with_others.value), (10, Some(8.0 / 10.0)));

    // Slices by region: agreement per value, from the same command with --items.
    let slices: AgreementSlices = admin.get(&format!("/api/projects/{pid}/agreement/slices?attr=region")).await;
    assert_eq!(slices.rows.iter().map(|r| (r.value.as_str(), r.items)).collect::<Vec<_>>(), vec![("eu", 8), ("us", 4)]);
    let ids = admin.export_jsonl(pid, false).await;
    let us: String = ids.iter().filter(|l| l["meta"]["region"] == "us").map(|l| format!("{}\n", l["item_id"])).collect();
    let dir = tempfile::tempdir().unwrap();
    let subset = dir.path().join("us.txt");
    std::fs::write(&subset, us).unwrap();
    let us_report = stats(&text, &["agreement", "--bootstrap", "1000", "--items", subset.to_str().unwrap()]);
    same(slices.rows[1].alpha.value, &us_report["krippendorff_alpha"], "alpha on us");
    same_interval(&slices.rows[1].alpha, &us_report["ci"]["krippendorff_alpha"], "alpha on us");
    assert_eq!(slices.rows[1].below_target, slices.rows[1].alpha.interval.unwrap().upper < 0.8);
    admin.get_raw(&format!("/api/projects/{pid}/agreement/slices?attr=colour")).await.assert_error(400, "bad_request");

    // Drill-down: ana and ben differ exactly on s-5 and s-7.
    let list: DisagreementList = admin.get(&format!("/api/projects/{pid}/agreement/items?pair=ana,ben")).await;
    let mut exts: Vec<String> = list.items.iter().map(|i| i.external_id.clone().unwrap()).collect();
    exts.sort();
    assert_eq!((list.total, exts), (2, vec!["s-5".to_string(), "s-7".to_string()]));
    assert_eq!(list.items[0].snippet.as_deref(), Some("item 5"));
    assert_eq!(list.items[0].labels.len(), 3);
    let list: DisagreementList = admin.get(&format!("/api/projects/{pid}/agreement/items?slice=region:us")).await;
    assert_eq!(list.total, 1, "s-0 (chen) is the one us item in dispute: {list:?}");
    let list: DisagreementList = admin.get(&format!("/api/projects/{pid}/agreement/items?labels=pos,neg")).await;
    assert!(list.total >= 1);
    admin.get_raw(&format!("/api/projects/{pid}/agreement/items")).await.assert_error(400, "bad_request");
    admin.get_raw(&format!("/api/projects/{pid}/agreement?period=month")).await.assert_error(400, "bad_request");
    let weekly: AgreementDashboard = admin.get(&format!("/api/projects/{pid}/agreement?period=week")).await;
    assert_eq!((weekly.period.as_str(), weekly.over_time.len()), ("week", 1));
    assert_eq!(weekly.over_time[0].n, 12);
}

async fn multi_label_dashboard_is_per_label_present_absent(b: Backend) {
    let server = TestServer::start_with_args(b, FAST).await;
    let admin = server.admin().await;
    let project = admin
        .create_project(&NewProject {
            kind: LabelKind::Multi,
            labels: vec![label("a", "a", "#22aa22"), label("b", "b", "#aa2222"), label("c", "c", "#2222aa")],
            ..new_project("multi", 3, 600)
        })
        .await;
    let pid = project.id;
    admin.import_texts(pid, "m", 4).await;
    let team = labelers(&server, &admin, pid, &["ana", "ben", "chen"]).await;
    label_all(&team, pid, 4, |ext, who| match (ext, who) {
        ("m-0", _) => vec!["a", "b"],
        ("m-1", 2) => vec!["c", "a"],
        ("m-1", _) => vec!["c"],
        ("m-2", 1) => vec!["c"],
        ("m-2", _) => vec!["b"],
        _ => vec!["a"],
    })
    .await;
    let d = dashboard_with(&admin, pid, 12).await;
    let text = export(&admin, pid).await;
    let report = stats(&text, &["agreement", "--bootstrap", "1000"]);
    assert!(d.multi_label);
    same(d.alpha.value, &report["krippendorff_alpha"], "alpha over (item, label) units");
    same_interval(&d.alpha, &report["ci"]["krippendorff_alpha"], "alpha");
    assert_eq!(d.per_label.iter().map(|l| l.label.as_str()).collect::<Vec<_>>(), ["a", "b", "c"]);
    // Per label: the command on that label's lines only.
    for row in &d.per_label {
        let lines: String = text.lines().filter(|l| serde_json::from_str::<Value>(l).unwrap()["for_label"] == row.label.as_str()).map(|l| format!("{l}\n")).collect();
        let one = stats(&lines, &["agreement"]);
        match one["krippendorff_alpha"].as_f64() {
            Some(_) => same(row.alpha.value, &one["krippendorff_alpha"], &format!("alpha of {}", row.label)),
            None => assert!(row.alpha.value.is_none() && row.alpha.reason.is_some(), "{row:?}"),
        }
    }
    assert_eq!(d.confusion_labels, ["absent", "present"]);
    // Consensus: m-1 is {c} (a is present for chen only), with the weakest decision's posterior.
    let m1 = admin.export_jsonl(pid, false).await.iter().find(|l| l["id"] == "m-1").unwrap()["item_id"].as_i64().unwrap();
    let cond = format!("item_id = {m1} AND labels = '[\"c\"]' AND ABS(posterior - 2.0/3.0) < 1e-9");
    assert_eq!(consensus_count(&server, pid, &cond).await, 1);
    let list: DisagreementList = admin.get(&format!("/api/projects/{pid}/agreement/items?label=a")).await;
    assert_eq!(list.items.iter().map(|i| i.external_id.clone().unwrap()).collect::<Vec<_>>(), ["m-1"]);
}

async fn consensus_appears_without_any_request_after_labels_change(b: Backend) {
    let server = TestServer::start_with_args(b, FAST).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("live", 2, 600).await.id;
    admin.import_texts(pid, "l", 1).await;
    let team = labelers(&server, &admin, pid, &["ana", "ben"]).await;
    let item = team[0].1.next(pid).await.item.unwrap().id;
    team[0].1.submit(pid, item, &["pos"]).await;

    // Only SQL from here: no request may be what triggers the refresh.
    let wait_for = |cond: String| {
        let server = &server;
        async move {
            let deadline = Instant::now() + Duration::from_secs(30);
            while consensus_count(server, pid, &cond).await != 1 {
                assert!(Instant::now() < deadline, "no consensus row with {cond}");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    wait_for(format!("item_id = {item} AND labels = '[\"pos\"]' AND n_labels = 1 AND posterior = 1")).await;
    let item2 = team[1].1.next(pid).await.item.unwrap().id;
    assert_eq!(item2, item);
    team[1].1.submit(pid, item, &["neg"]).await;
    // A tie (pos, neg) breaks by label order: pos, at posterior 1/2, from two labels.
    wait_for(format!("item_id = {item} AND labels = '[\"pos\"]' AND n_labels = 2 AND posterior = 0.5")).await;

    // The jobs list shows the refreshes with their progress.
    let jobs: Vec<JobInfo> = admin.get(&format!("/api/projects/{pid}/jobs")).await;
    let done: Vec<&JobInfo> = jobs.iter().filter(|j| j.kind == "consensus" && j.state == "done").collect();
    assert!(done.len() >= 2, "{jobs:#?}");
    assert_eq!((done[0].progress_done, done[0].progress_total), (1, 1));
    assert!(jobs.windows(2).all(|w| w[0].id > w[1].id), "newest first");
}

/// Waits until the project has more than `before` finished consensus jobs and none queued or
/// running; returns how many are done and the newest.
async fn refreshed_after(admin: &Client, pid: i64, before: usize) -> (usize, JobInfo) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let jobs: Vec<JobInfo> = admin.get(&format!("/api/projects/{pid}/jobs")).await;
        let consensus: Vec<&JobInfo> = jobs.iter().filter(|j| j.kind == "consensus").collect();
        let done = consensus.iter().filter(|j| j.state == "done").count();
        if done > before && consensus.iter().all(|j| j.state == "done") {
            return (done, consensus[0].clone());
        }
        assert!(Instant::now() < deadline, "{jobs:#?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A refresh writes only the consensus rows whose consensus changed (the job's progress counts
/// the rows written and deleted); a row left alone keeps its `computed_at`.
async fn a_refresh_writes_only_the_consensus_rows_that_changed(b: Backend) {
    let server = TestServer::start_with_args(b, FAST).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("changes", 3, 600).await.id;
    admin.import_texts(pid, "c", 6).await;
    let team = labelers(&server, &admin, pid, &["ana", "ben", "chen"]).await;
    label_all(&team[..2], pid, 6, |_, _| vec!["pos"]).await;
    dashboard_with(&admin, pid, 12).await;
    // (Refreshes may have run while the labels came in, each writing what changed.)
    let (done, _) = refreshed_after(&admin, pid, 0).await;

    // With no stored rows, a refresh writes every row. (Changing the target alpha is a
    // change that refreshes without touching the labels.)
    server.exec_sql(&format!("DELETE FROM consensus WHERE project_id = {pid}")).await;
    server.exec_sql(&format!("UPDATE projects SET target_alpha = 0.75 WHERE id = {pid}")).await;
    let (done, first) = refreshed_after(&admin, pid, done).await;
    assert_eq!((first.progress_done, first.progress_total), (6, 6), "{first:?}");
    assert_eq!(consensus_count(&server, pid, "labels = '[\"pos\"]' AND n_labels = 2 AND posterior = 1").await, 6);
    server.exec_sql(&format!("UPDATE consensus SET computed_at = 1 WHERE project_id = {pid}")).await;

    // One new label: exactly its item's row is written.
    let (_, chen) = &team[2];
    let item = chen.next(pid).await.item.unwrap().id;
    chen.submit(pid, item, &["neg"]).await;
    let (done, second) = refreshed_after(&admin, pid, done).await;
    assert_eq!((second.progress_done, second.progress_total), (1, 1), "{second:?}");
    let changed = format!("item_id = {item} AND labels = '[\"pos\"]' AND n_labels = 3 AND computed_at > 1");
    assert_eq!(consensus_count(&server, pid, &changed).await, 1);
    assert_eq!(consensus_count(&server, pid, &format!("item_id = {item} AND ABS(posterior - 2.0/3.0) < 1e-9")).await, 1);
    assert_eq!(consensus_count(&server, pid, "computed_at = 1").await, 5, "the other rows were left alone");

    // A changed answer (no new annotation: only its update time says so) refreshes, and
    // exactly its item's row is written.
    chen.submit(pid, item, &["pos"]).await;
    let (done, edited) = refreshed_after(&admin, pid, done).await;
    assert_eq!((edited.progress_done, edited.progress_total), (1, 1), "{edited:?}");
    assert_eq!(consensus_count(&server, pid, &format!("item_id = {item} AND n_labels = 3 AND posterior = 1")).await, 1);
    assert_eq!(consensus_count(&server, pid, "computed_at = 1").await, 5);

    // A refresh that moves no consensus writes nothing.
    server.exec_sql(&format!("UPDATE projects SET target_alpha = 0.7 WHERE id = {pid}")).await;
    let (done, third) = refreshed_after(&admin, pid, done).await;
    assert_eq!((third.progress_done, third.progress_total), (0, 0), "{third:?}");
    assert_eq!(consensus_count(&server, pid, "computed_at = 1").await, 5);

    // An item whose labels are gone loses its row, and nothing else is written.
    let ids: Vec<i64> = admin.export_jsonl(pid, false).await.iter().map(|l| l["item_id"].as_i64().unwrap()).collect();
    let gone = *ids.iter().find(|&&id| id != item).unwrap();
    server.exec_sql(&format!("DELETE FROM annotations WHERE item_id = {gone}")).await;
    let (_, fourth) = refreshed_after(&admin, pid, done).await;
    assert_eq!((fourth.progress_done, fourth.progress_total), (1, 1), "{fourth:?}");
    assert_eq!(consensus_count(&server, pid, &format!("item_id = {gone}")).await, 0);
    assert_eq!(consensus_count(&server, pid, "1 = 1").await, 5);
}

async fn labelers_get_403_on_every_agreement_route(b: Backend) {
    let server = TestServer::start(b).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("private", 2, 600).await.id;
    let team = labelers(&server, &admin, pid, &["ana"]).await;
    let labeler = &team[0].1;
    for path in [
        format!("/api/projects/{pid}/jobs"),
        format!("/api/projects/{pid}/agreement"),
        format!("/api/projects/{pid}/agreement?period=week"),
        format!("/api/projects/{pid}/agreement/slices?attr=region"),
        format!("/api/projects/{pid}/agreement/items?pair=ana,admin"),
    ] {
        labeler.get_raw(&path).await.assert_error(403, "forbidden");
    }
    // A lead sees an empty dashboard before the first computation, with the reason.
    let d: AgreementDashboard = admin.get(&format!("/api/projects/{pid}/agreement")).await;
    assert_eq!((d.computed_at, d.alpha.value, d.alpha.reason.as_deref()), (None, None, Some("not computed yet")));
    admin.get_raw("/api/projects/999999/agreement").await.assert_status(404);
}

async fn a_restart_resumes_a_running_consensus_job_and_fails_a_kind_that_cannot_resume(b: Backend) {
    let mut server = TestServer::start_with_args(b, FAST).await;
    let admin = server.admin().await;
    let pid = admin.simple_project("restart", 1, 600).await.id;
    admin.import_texts(pid, "r", 2).await;
    let team = labelers(&server, &admin, pid, &["ana"]).await;
    let item = team[0].1.next(pid).await.item.unwrap().id;
    team[0].1.submit(pid, item, &["neg"]).await;
    // Let the first refresh finish, so nothing is left queued at the stop.
    dashboard_with(&admin, pid, 1).await;
    server.stop();
    // Two jobs a dead server left running (heartbeat at 0): a consensus refresh, and a kind
    // this server does not know how to resume.
    server.exec_sql(&format!(
        "INSERT INTO jobs (id, kind, project_id, state, params, created_at, started_at, heartbeat_at)
         VALUES (9001, 'consensus', {pid}, 'running', '{{}}', 1, 1, 1), (9002, 'training', {pid}, 'running', '{{}}', 1, 1, 1)"
    ))
    .await;
    server.start_again().await;
    let admin = server.admin().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let jobs: Vec<JobInfo> = admin.get(&format!("/api/projects/{pid}/jobs")).await;
        let state = |id| jobs.iter().find(|j| j.id == id).map(|j| j.state.clone()).unwrap_or_default();
        if state(9001) == "done" && state(9002) == "failed" {
            let failed = jobs.iter().find(|j| j.id == 9002).unwrap();
            assert!(failed.error.as_deref().unwrap().contains("cannot resume"), "{failed:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{jobs:#?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert_eq!(consensus_count(&server, pid, &format!("item_id = {item} AND labels = '[\"neg\"]'")).await, 1);
}
