//! `mirrorset-bench --agreement`: the consensus refresh and the agreement dashboard at scale
//! (issue 7). A second project gets the bench's item count × 3 labels: the items through the
//! import route, the 3 annotations per item written straight into the database (labeling them
//! over HTTP would take longer than the whole rest of the bench; the refresh reads the table
//! either way). Then it measures:
//! - the first refresh (majority vote) and the Dawid–Skene refresh of every item: the job's
//!   own duration (started → finished) and the wall time from the change until the dashboard
//!   shows it (adds the wait for the next refresh tick, 1 s here);
//! - the server's own memory (RssAnon) at the start of each of those two refreshes and its
//!   peak during it: a refresh holds the whole project's coded answers while it computes;
//! - how long `GET /agreement` takes to serve the full dashboard (1,000 bootstrap replicates);
//! - next/submit latency of the bench's labelers on the main project, without and with
//!   refreshes of the big project running back to back: half the window without, the whole
//!   window with, the other half without (a drift over the run cancels out).
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Client, Method};
use serde_json::{json, Value};
use server::store::{now_ms, BeginWrite, Db};

use super::{call, percentiles, run_labeler, Auth, Percentiles, PhaseMemory};

pub const TARGET_DASHBOARD_S: f64 = 1.0;
pub const TARGET_DS_REFRESH_S: f64 = 5.0;
/// Labeling latency during a refresh, relative to without one.
pub const TARGET_SLOWDOWN: f64 = 1.2;

pub struct AgreementFigures {
    pub items: u64,
    pub annotations: u64,
    pub insert_s: f64,
    pub majority_job_s: f64,
    pub majority_wall_s: f64,
    pub ds_job_s: f64,
    pub ds_wall_s: f64,
    /// The server's RssAnon during the first refresh (every row written) and the Dawid–Skene
    /// one (every row rewritten): start and peak, MiB.
    pub majority_memory: (f64, f64),
    pub ds_memory: (f64, f64),
    /// The same over the window of refreshes with their rows stored (one annotation changed
    /// each), with the labelers labeling the main project.
    pub churn_memory: (f64, f64),
    pub dashboard: Percentiles,
    pub dashboard_bytes: usize,
    pub alpha: Value,
    pub without: (Percentiles, Percentiles),
    pub with: (Percentiles, Percentiles),
    pub refreshes_during: u64,
    /// The refresh jobs' running time over the window with refreshes (about 1: one always ran).
    pub refresh_share: f64,
    /// `next` p50 of the windows without refreshes before and after the one with them.
    pub halves_next_p50: (f64, f64),
    /// Consensus rows written by the first and the Dawid–Skene refresh, and the most written
    /// by one refresh during the labeling run (only changed rows are written).
    pub rows_written: (i64, i64, i64),
    /// During the labeling run: one annotation changed → the refreshed dashboard is served
    /// (the refresh tick, 1 s here, plus the refresh).
    pub change_to_dashboard: Percentiles,
}

/// The project's recent background jobs (`GET /api/projects/{pid}/jobs`), newest first.
pub(crate) async fn jobs(client: &Client, base: &str, pid: i64, admin: &str) -> Result<Vec<Value>> {
    let v = call(client, Method::GET, &format!("{base}/api/projects/{pid}/jobs"), admin, None, "jobs").await?;
    Ok(v.as_array().cloned().unwrap_or_default())
}

/// Waits for a consensus job created after `after` (ms) to finish; returns its duration (s)
/// and the consensus rows it wrote or deleted (its progress total).
async fn wait_job_rows(client: &Client, base: &str, pid: i64, admin: &str, after: i64) -> Result<(f64, i64)> {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        for j in jobs(client, base, pid, admin).await? {
            if j["created_at"].as_i64().unwrap_or(0) >= after && j["kind"] == "consensus" {
                match j["state"].as_str() {
                    Some("done") => {
                        let ms = j["finished_at"].as_i64().unwrap_or(0) - j["started_at"].as_i64().unwrap_or(0);
                        return Ok((ms as f64 / 1000.0, j["progress_total"].as_i64().unwrap_or(-1)));
                    }
                    Some("failed") => bail!("the consensus job failed: {j}"),
                    _ => {}
                }
            }
        }
        if Instant::now() > deadline {
            bail!("no consensus job finished within 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Writes 3 annotations per item of the project, by 3 raters of differing accuracy.
async fn insert_annotations(db: &Db, pid: i64, raters: &[i64]) -> Result<u64> {
    let labels = ["a", "b", "c"];
    let accuracy = [0.9, 0.8, 0.65];
    let ids: Vec<i64> = server::on_read!(db, pool => {
        sqlx::query_scalar("SELECT id FROM items WHERE project_id = $1 ORDER BY id").bind(pid).fetch_all(pool).await?
    });
    let mut rng = StdRng::seed_from_u64(7);
    let now = now_ms();
    let mut rows: Vec<(i64, i64, &str)> = Vec::with_capacity(ids.len() * raters.len());
    for &id in &ids {
        let truth = rng.gen_range(0..3usize);
        for (r, &user) in raters.iter().enumerate() {
            let label = if rng.gen_bool(accuracy[r]) { truth } else { (truth + rng.gen_range(1..3usize)) % 3 };
            rows.push((id, user, labels[label]));
        }
    }
    for chunk in rows.chunks(1000) {
        let mut sql = String::from("INSERT INTO annotations (project_id, item_id, user_id, labels, time_ms, created_at, updated_at) VALUES ");
        for i in 0..chunk.len() {
            if i > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("($1, ${}, ${}, ${}, 2000, $2, $2)", 3 * i + 3, 3 * i + 4, 3 * i + 5));
        }
        server::on_write!(db, pool => {
            let mut tx = pool.begin_write().await?;
            let mut q = sqlx::query(&sql).bind(pid).bind(now);
            for (item, user, label) in chunk {
                q = q.bind(*item).bind(*user).bind(format!("[\"{label}\"]"));
            }
            q.execute(&mut *tx).await?;
            tx.commit().await?;
        });
    }
    server::on_write!(db, pool => {
        sqlx::query("UPDATE items SET label_count = 3, complete = 1 WHERE project_id = $1").bind(pid).execute(pool).await?;
        sqlx::query("UPDATE projects SET done_count = item_count WHERE id = $1").bind(pid).execute(pool).await?;
    });
    Ok(rows.len() as u64)
}

/// `first`: the labelers' index base, distinct per run (their client ids must never repeat).
/// Returns every next and submit latency (ms).
pub async fn label_for(base: &str, pid: i64, tokens: &[String], seconds: f64, first: usize) -> Result<(Vec<f64>, Vec<f64>)> {
    let submitted = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let deadline = Instant::now() + Duration::from_secs_f64(seconds);
    let tasks: Vec<_> = tokens
        .iter()
        .enumerate()
        .map(|(i, t)| {
            tokio::spawn(run_labeler(first + i, base.to_string(), pid, Auth::Bearer(t.clone()), deadline, None, Duration::ZERO, submitted.clone(), stop.clone()))
        })
        .collect();
    let (mut next, mut submit) = (Vec::new(), Vec::new());
    for t in tasks {
        let r = t.await.context("a labeler task panicked")??;
        next.extend(r.next_ms);
        submit.extend(r.submit_ms);
    }
    Ok((next, submit))
}

#[allow(clippy::too_many_arguments)]
pub async fn scenario(
    client: &Client,
    base: &str,
    admin: &str,
    db_url: &str,
    n: u64,
    main_pid: i64,
    tokens: &[String],
    seconds: f64,
    tmp: &tempfile::TempDir,
    server_pid: u32,
    say: &dyn Fn(&str),
) -> Result<AgreementFigures> {
    let step = "agreement";
    say(&format!("[agreement] a project of {n} items × 3 labels"));
    let labels = json!([{"name": "a", "key": "1", "color": "#1f77b4"}, {"name": "b", "key": "2", "color": "#ff7f0e"},
                        {"name": "c", "key": "3", "color": "#2ca02c"}]);
    let p = call(client, Method::POST, &format!("{base}/api/projects"), admin,
                 Some(&json!({"name": "agreement bench", "kind": "single", "labels": labels, "overlap": 3})), step).await?;
    let pid = p["id"].as_i64().ok_or_else(|| anyhow!("no project id in {p}"))?;
    let path = tmp.path().join("agreement.jsonl");
    let bytes = super::generate_jsonl(&path, n)?;
    super::import_file(client, base, pid, admin, &path, bytes, "agreement (import)").await?;
    let mut raters = Vec::new();
    for i in 0..3 {
        let u = call(client, Method::POST, &format!("{base}/api/users"), admin,
                     Some(&json!({"username": format!("rater{i}"), "password": super::random_string(16), "role": "labeler"})), step).await?;
        raters.push(u["id"].as_i64().ok_or_else(|| anyhow!("no user id in {u}"))?);
        call(client, Method::POST, &format!("{base}/api/projects/{pid}/members"), admin, Some(&json!({"user_id": raters[i]})), step).await?;
    }
    let db = Db::connect(db_url).await.context("agreement: connecting to the server's database")?;
    let t = Instant::now();
    let annotations = insert_annotations(&db, pid, &raters).await?;
    let insert_s = t.elapsed().as_secs_f64();
    // A refresh the ticker started while the rows were going in saw only part of them: wait
    // for one queued after the last row (session 3's figure timed a partial one).
    let before = now_ms();

    say("[agreement] first refresh (majority vote)");
    let t = Instant::now();
    let memory = PhaseMemory::start(server_pid);
    let (majority_job_s, majority_rows) = wait_job_rows(client, base, pid, admin, before).await?;
    let majority_wall_s = t.elapsed().as_secs_f64();
    let majority_memory = memory.stop("first refresh", majority_wall_s).await.start_and_peak();

    say("[agreement] serving the dashboard");
    let mut times = Vec::new();
    let mut dashboard_bytes = 0;
    let mut alpha = Value::Null;
    for _ in 0..20 {
        let t = Instant::now();
        let d = call(client, Method::GET, &format!("{base}/api/projects/{pid}/agreement"), admin, None, step).await?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        dashboard_bytes = d.to_string().len();
        alpha = d["alpha"].clone();
    }
    let dashboard = percentiles(times);

    say("[agreement] Dawid–Skene refresh of every item");
    let before = now_ms();
    server::on_write!(&db, pool => {
        sqlx::query("UPDATE projects SET consensus_method = 'dawid_skene' WHERE id = $1").bind(pid).execute(pool).await?;
    });
    let t = Instant::now();
    let memory = PhaseMemory::start(server_pid);
    let (ds_job_s, ds_rows) = wait_job_rows(client, base, pid, admin, before).await?;
    let ds_wall_s = t.elapsed().as_secs_f64();
    let ds_memory = memory.stop("Dawid–Skene refresh", ds_wall_s).await.start_and_peak();

    // Without / with / without (half, whole, half the window): the two halves around the
    // refresh window cancel a drift of the machine or the database over the run (session 5
    // compared a first window without against a later one with, on a growing database).
    say(&format!("[agreement] {} labelers: {:.1} s without, {seconds} s with refreshes running, {:.1} s without", tokens.len(), seconds / 2.0, seconds / 2.0));
    let before_1 = label_for(base, main_pid, tokens, seconds / 2.0, 2000).await?;
    // Keep the big project's refreshes going back to back: touch one annotation whenever the
    // previous refresh is done, so each tick finds a change.
    let stop = Arc::new(AtomicBool::new(false));
    let refreshes = Arc::new(AtomicU64::new(0));
    let change_ms = Arc::new(std::sync::Mutex::new(Vec::new()));
    let churn_rows = Arc::new(AtomicU64::new(0));
    // When each refresh job ran (bench clock, ms: observed finish minus the job's duration),
    // for the share of the window with a refresh actually running.
    let refresh_spans = Arc::new(std::sync::Mutex::new(Vec::<(i64, i64)>::new()));
    let churn = {
        let (db, stop, refreshes, client, base, admin, change_ms, churn_rows, refresh_spans) = (
            db.clone(),
            stop.clone(),
            refreshes.clone(),
            client.clone(),
            base.to_string(),
            admin.to_string(),
            change_ms.clone(),
            churn_rows.clone(),
            refresh_spans.clone(),
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let before = now_ms();
                let touched: Result<(), sqlx::Error> = server::on_write!(&db, pool => {
                    sqlx::query("UPDATE annotations SET updated_at = $1 WHERE id = (SELECT MIN(id) FROM annotations WHERE project_id = $2)")
                        .bind(before).bind(pid).execute(pool).await.map(|_| ())
                });
                if touched.is_err() {
                    break;
                }
                let Ok((job_s, rows)) = wait_job_rows(&client, &base, pid, &admin, before).await else { break };
                churn_rows.fetch_max(rows.max(0) as u64, Ordering::Relaxed);
                refreshes.fetch_add(1, Ordering::Relaxed);
                let end = now_ms();
                refresh_spans.lock().expect("not poisoned").push((end - (job_s * 1000.0) as i64, end));
                change_ms.lock().expect("not poisoned").push(t.elapsed().as_secs_f64() * 1000.0);
            }
        })
    };
    // Let the first refresh start before measuring.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let window_start = now_ms();
    let memory = PhaseMemory::start(server_pid);
    let (with_next, with_submit) = label_for(base, main_pid, tokens, seconds, 3000).await?;
    let with = (percentiles(with_next), percentiles(with_submit));
    let window_end = now_ms();
    stop.store(true, Ordering::Relaxed);
    // The refresh in flight finishes before the second window without.
    let _ = churn.await;
    let churn_memory = memory.stop("refreshes while labeling", seconds).await.start_and_peak();
    let covered: i64 = refresh_spans
        .lock()
        .expect("not poisoned")
        .iter()
        .map(|&(s, e)| (e.min(window_end) - s.max(window_start)).max(0))
        .sum();
    let refresh_share = covered as f64 / (window_end - window_start).max(1) as f64;
    let after_2 = label_for(base, main_pid, tokens, seconds / 2.0, 4000).await?;
    let halves_next_p50 = (percentiles(before_1.0.clone()).p50, percentiles(after_2.0.clone()).p50);
    let without = (percentiles([before_1.0, after_2.0].concat()), percentiles([before_1.1, after_2.1].concat()));
    let change_ms = std::mem::take(&mut *change_ms.lock().expect("not poisoned"));
    Ok(AgreementFigures {
        items: n,
        annotations,
        insert_s,
        majority_job_s,
        majority_wall_s,
        ds_job_s,
        ds_wall_s,
        majority_memory,
        ds_memory,
        churn_memory,
        dashboard,
        dashboard_bytes,
        alpha,
        without,
        with,
        refreshes_during: refreshes.load(Ordering::Relaxed),
        refresh_share,
        halves_next_p50,
        rows_written: (majority_rows, ds_rows, churn_rows.load(Ordering::Relaxed) as i64),
        change_to_dashboard: percentiles(change_ms),
    })
}

impl AgreementFigures {
    pub fn summary(&self) -> String {
        let mut s = format!("\nAgreement ({} items × 3 labels = {} annotations, written in {:.1} s)\n", self.items, self.annotations, self.insert_s);
        s += &format!("  first refresh (majority)   job {:>7.2} s   change → dashboard {:>6.2} s\n", self.majority_job_s, self.majority_wall_s);
        s += &format!(
            "  Dawid–Skene refresh        job {:>7.2} s   change → dashboard {:>6.2} s   target job < {TARGET_DS_REFRESH_S} s: {}\n",
            self.ds_job_s,
            self.ds_wall_s,
            super::verdict(self.ds_job_s < TARGET_DS_REFRESH_S)
        );
        for (name, (start, peak)) in [
            ("first refresh", self.majority_memory),
            ("Dawid–Skene refresh", self.ds_memory),
            ("refreshes while labeling", self.churn_memory),
        ] {
            s += &format!("  {name:<26} server RssAnon {start:.1} → {peak:.1} MiB (its own memory)\n");
        }
        s += &format!(
            "  GET /agreement             p50 {:>6.2} ms  max {:>6.2} ms  ({} KiB)   target < {TARGET_DASHBOARD_S} s: {}\n",
            self.dashboard.p50,
            self.dashboard.max,
            self.dashboard_bytes / 1024,
            super::verdict(self.dashboard.max / 1000.0 < TARGET_DASHBOARD_S)
        );
        s += &format!(
            "  consensus rows written     first {}, Dawid–Skene {}, at most {} per refresh while labeling\n",
            self.rows_written.0, self.rows_written.1, self.rows_written.2
        );
        s += &format!("  alpha                      {}\n", self.alpha);
        s += "  labeling (main project)      count      p50      p95      p99 (ms)\n";
        for (name, (n, sub)) in [("without refresh", &self.without), ("with refresh", &self.with)] {
            s += &format!("  {name:<16} next   {:>8} {:>8.2} {:>8.2} {:>8.2}\n", n.count, n.p50, n.p95, n.p99);
            s += &format!("  {name:<16} submit {:>8} {:>8.2} {:>8.2} {:>8.2}\n", sub.count, sub.p50, sub.p95, sub.p99);
        }
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        let r_next = ratio(self.with.0.p50, self.without.0.p50);
        let r_submit = ratio(self.with.1.p50, self.without.1.p50);
        s += &format!(
            "  one label changed → refreshed dashboard (while labeling): p50 {:.2} s, max {:.2} s   target < 60 s: {}\n",
            self.change_to_dashboard.p50 / 1000.0,
            self.change_to_dashboard.max / 1000.0,
            super::verdict(self.change_to_dashboard.count > 0 && self.change_to_dashboard.max < 60_000.0)
        );
        s += &format!(
            "  windows without: next p50 {:.2} ms before, {:.2} ms after the window with (a refresh ran {:.0}% of it)\n",
            self.halves_next_p50.0,
            self.halves_next_p50.1,
            self.refresh_share * 100.0
        );
        s += &format!(
            "  p50 with/without: next {r_next:.2}, submit {r_submit:.2} ({} refreshes ran)   target <= {TARGET_SLOWDOWN}: {}\n",
            self.refreshes_during,
            super::verdict(r_next <= TARGET_SLOWDOWN && r_submit <= TARGET_SLOWDOWN)
        );
        s
    }

    pub fn to_json(&self) -> Value {
        json!({
            "items": self.items, "annotations": self.annotations,
            "majority_job_s": self.majority_job_s, "majority_change_to_dashboard_s": self.majority_wall_s,
            "ds_job_s": self.ds_job_s, "ds_change_to_dashboard_s": self.ds_wall_s,
            "majority_rss_anon_mib": {"start": self.majority_memory.0, "peak": self.majority_memory.1},
            "ds_rss_anon_mib": {"start": self.ds_memory.0, "peak": self.ds_memory.1},
            "while_labeling_rss_anon_mib": {"start": self.churn_memory.0, "peak": self.churn_memory.1},
            "dashboard_get": self.dashboard.to_json(), "dashboard_bytes": self.dashboard_bytes,
            "labeling_without_refresh": {"next": self.without.0.to_json(), "submit": self.without.1.to_json()},
            "labeling_with_refresh": {"next": self.with.0.to_json(), "submit": self.with.1.to_json()},
            "refreshes_during": self.refreshes_during,
            "refresh_share_of_window": self.refresh_share,
            "without_next_p50_before_after": [self.halves_next_p50.0, self.halves_next_p50.1],
            "consensus_rows_written": {"first": self.rows_written.0, "dawid_skene": self.rows_written.1, "max_while_labeling": self.rows_written.2},
            "change_to_dashboard_ms": self.change_to_dashboard.to_json(),
        })
    }
}
