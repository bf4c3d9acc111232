//! `mirrorset-bench --devset`: production profiles and dev-set plans at scale (issue 8), on a
//! project of its own.
//!
//! 1. A pool of `--devset-pool` items (default 1,000,000) through the import route, with
//!    region (10 values) × device (25) × length (a number, bucketed by the profile's quartiles
//!    into 4): 1,000 strata, the pool's mix shifted from production's.
//! 2. A first, tiny profile upload: its time is the pool index build (the first dev-set call
//!    after an import reads every item once; see server/src/devsets/index.rs).
//! 3. Production samples of 100,000 and `--devset-rows` rows (default 1,000,000) uploaded as
//!    JSONL records, streamed from disk: wall time, and the server's peak RSS above what it
//!    held before each upload (constant memory: the two peaks are about the same).
//! 4. A draft over the three attributes (the size calculator, a minimum of 5 per stratum),
//!    then `GET /plan` five times (the index cached): the plan over 1,000 strata.
//! 5. One more item imported, then the plan again: the index is rebuilt (cold plan).
//! 6. Sampling and the distribution report, for reference.
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Client, Method};
use serde_json::{json, Value};

use super::{call, import_file, json_or_error, mib, percentiles, proc_status_kib, spawn_rss_sampler, Percentiles};

pub const TARGET_PROFILE_S: f64 = 20.0;
pub const TARGET_PLAN_S: f64 = 1.0;
const TARGET_ROWS: u64 = 1_000_000;
const TARGET_POOL: u64 = 1_000_000;

const REGIONS: usize = 10;
const DEVICES: usize = 25;

pub struct DevsetFigures {
    pub pool: u64,
    pub rows: u64,
    pub import_s: f64,
    pub index_build_s: f64,
    /// (rows, seconds, bytes, peak RSS above the RSS before the upload, MiB)
    pub uploads: Vec<(u64, f64, u64, f64)>,
    pub create_s: f64,
    pub strata: u64,
    pub size: u64,
    pub plan: Percentiles,
    pub cold_plan_s: f64,
    pub sample_s: f64,
    pub report_s: f64,
    pub dev_tvd_max: f64,
    pub pool_tvd_min: f64,
}

/// Region and device drawn from a Zipf-like mix (`skew` 0 = uniform), length from a lognormal-ish
/// spread whose centre moves with `shift`.
fn draw(rng: &mut StdRng, skew: f64, shift: f64) -> (String, String, u64) {
    let zipf = |rng: &mut StdRng, n: usize| -> usize {
        let weights: Vec<f64> = (1..=n).map(|k| 1.0 / (k as f64).powf(skew)).collect();
        let total: f64 = weights.iter().sum();
        let mut u = rng.gen::<f64>() * total;
        for (i, w) in weights.iter().enumerate() {
            if u < *w {
                return i;
            }
            u -= w;
        }
        n - 1
    };
    let r = zipf(rng, REGIONS);
    let d = zipf(rng, DEVICES);
    let len = (rng.gen::<f64>() * rng.gen::<f64>() * 4000.0 * shift) as u64 + 1;
    (format!("r{r}"), format!("d{d:02}"), len)
}

/// The pool: `n` items, skewed towards the first regions and devices, longer texts.
fn generate_pool(path: &Path, n: u64, seed: u64) -> Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = StdRng::seed_from_u64(seed);
    for i in 0..n {
        let (region, device, length) = draw(&mut rng, 1.2, 1.3);
        let line = json!({"id": format!("pool-{seed}-{i}"), "text": format!("item {i} {region} {device}"),
                          "meta": {"region": region, "device": device, "length": length}});
        serde_json::to_writer(&mut w, &line)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Production: `n` meta records, a flatter mix than the pool's.
fn generate_production(path: &Path, n: u64) -> Result<u64> {
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = StdRng::seed_from_u64(8);
    for _ in 0..n {
        let (region, device, length) = draw(&mut rng, 0.5, 1.0);
        serde_json::to_writer(&mut w, &json!({"region": region, "device": device, "length": length}))?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

pub async fn upload_profile(client: &Client, base: &str, pid: i64, token: &str, name: &str, path: &Path) -> Result<Value> {
    let bytes = std::fs::metadata(path)?.len();
    let file = tokio::fs::File::open(path).await?;
    let url = format!("{base}/api/projects/{pid}/profiles?name={name}&date=2026-12-01");
    let resp = client
        .post(&url)
        .bearer_auth(token)
        .header(reqwest::header::CONTENT_LENGTH, bytes)
        .body(reqwest::Body::wrap_stream(tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024)))
        .send()
        .await
        .with_context(|| format!("devset: POST {url}"))?;
    json_or_error(resp, &format!("devset: POST {url}")).await
}

#[allow(clippy::too_many_arguments)]
pub async fn scenario(
    client: &Client,
    base: &str,
    admin: &str,
    server_pid: u32,
    pool: u64,
    rows: u64,
    tmp: &tempfile::TempDir,
    say: &dyn Fn(&str),
) -> Result<DevsetFigures> {
    let labels = json!([{"name": "a", "key": "1", "color": "#1f77b4"}, {"name": "b", "key": "2", "color": "#ff7f0e"}]);
    let project = call(
        client,
        Method::POST,
        &format!("{base}/api/projects"),
        admin,
        Some(&json!({"name": "devset-bench", "kind": "single", "labels": labels, "overlap": 1})),
        "devset (create the project)",
    )
    .await?;
    let pid = project["id"].as_i64().ok_or_else(|| anyhow!("devset: no project id in {project}"))?;

    say(&format!("[devset 1/6] generating and importing a pool of {pool} items"));
    let pool_path = tmp.path().join("devset-pool.jsonl");
    let bytes = generate_pool(&pool_path, pool, 1)?;
    let t = Instant::now();
    let report = import_file(client, base, pid, admin, &pool_path, bytes, "devset (import the pool)").await?;
    let import_s = t.elapsed().as_secs_f64();
    if report["imported"].as_u64() != Some(pool) {
        bail!("devset: {} of {pool} pool items imported: {report}", report["imported"]);
    }
    std::fs::remove_file(&pool_path)?;

    say("[devset 2/6] a tiny profile (builds the pool index)");
    let tiny = tmp.path().join("devset-tiny.jsonl");
    generate_production(&tiny, 10)?;
    let t = Instant::now();
    upload_profile(client, base, pid, admin, "tiny", &tiny).await?;
    let index_build_s = t.elapsed().as_secs_f64();

    let mut uploads = Vec::new();
    let mut profile_id = 0;
    for n in [100_000.min(rows), rows] {
        say(&format!("[devset 3/6] uploading a production sample of {n} rows"));
        let path = tmp.path().join(format!("devset-production-{n}.jsonl"));
        let bytes = generate_production(&path, n)?;
        let before = proc_status_kib(server_pid, "VmRSS").unwrap_or(0);
        let peak = Arc::new(AtomicU64::new(before));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = spawn_rss_sampler(server_pid, peak.clone(), Arc::new(AtomicU64::new(0)), stop.clone());
        let t = Instant::now();
        let profile = upload_profile(client, base, pid, admin, &format!("production-{n}"), &path).await?;
        let seconds = t.elapsed().as_secs_f64();
        stop.store(true, Ordering::Relaxed);
        let _ = sampler.await;
        if profile["records"].as_f64() != Some(n as f64) {
            bail!("devset: the profile of {n} rows has {} records", profile["records"]);
        }
        profile_id = profile["id"].as_i64().unwrap_or(0);
        uploads.push((n, seconds, bytes, mib(peak.load(Ordering::Relaxed).saturating_sub(before))));
        std::fs::remove_file(&path)?;
    }

    say("[devset 4/6] a draft over region × device × length, then its plan five times");
    let draft = json!({
        "name": "bench", "profile_id": profile_id, "seed": 1,
        "attributes": ["region", "device", "length"],
        "calculator": {"expected_accuracy": 0.9, "half_width": 0.01, "key_attribute": "region", "key_half_width": 0.03},
        "min_per_stratum": 5,
    });
    let t = Instant::now();
    let created = call(client, Method::POST, &format!("{base}/api/projects/{pid}/devsets"), admin, Some(&draft), "devset (create the draft)").await?;
    let create_s = t.elapsed().as_secs_f64();
    let id = created["id"].as_i64().ok_or_else(|| anyhow!("devset: no dev set id in {created}"))?;
    let plan_url = format!("{base}/api/projects/{pid}/devsets/{id}/plan");
    let mut plan_ms = Vec::new();
    let mut plan = Value::Null;
    for _ in 0..5 {
        let t = Instant::now();
        plan = call(client, Method::GET, &plan_url, admin, None, "devset (plan)").await?;
        plan_ms.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    let strata = plan["strata"].as_array().map_or(0, |s| s.len() as u64);
    let size = plan["size"].as_u64().unwrap_or(0);

    say("[devset 5/6] one more item imported, then the plan (the index is rebuilt)");
    let one = tmp.path().join("devset-one.jsonl");
    generate_pool(&one, 1, 2)?;
    import_file(client, base, pid, admin, &one, std::fs::metadata(&one)?.len(), "devset (import one more)").await?;
    let t = Instant::now();
    call(client, Method::GET, &plan_url, admin, None, "devset (cold plan)").await?;
    let cold_plan_s = t.elapsed().as_secs_f64();

    say("[devset 6/6] sampling and the distribution report");
    let t = Instant::now();
    call(client, Method::POST, &format!("{base}/api/projects/{pid}/devsets/{id}/sample"), admin, Some(&json!({})), "devset (sample)").await?;
    let sample_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let report = call(client, Method::GET, &format!("{base}/api/projects/{pid}/devsets/{id}/report"), admin, None, "devset (report)").await?;
    let report_s = t.elapsed().as_secs_f64();
    let tvd = |side: &str| -> Vec<f64> {
        report["attributes"].as_array().into_iter().flatten().filter_map(|a| a[side]["tvd"].as_f64()).collect()
    };
    Ok(DevsetFigures {
        pool,
        rows,
        import_s,
        index_build_s,
        uploads,
        create_s,
        strata,
        size,
        plan: percentiles(plan_ms),
        cold_plan_s,
        sample_s,
        report_s,
        dev_tvd_max: tvd("dev_vs_production").into_iter().fold(0.0, f64::max),
        pool_tvd_min: tvd("pool_vs_production").into_iter().fold(f64::INFINITY, f64::min),
    })
}

fn verdict(pass: bool) -> &'static str {
    super::verdict(pass)
}

impl DevsetFigures {
    fn profile_s(&self) -> f64 {
        self.uploads.last().map_or(f64::NAN, |u| u.1)
    }

    pub fn summary(&self) -> String {
        let mut s = format!("\nDev sets (issue 8): a pool of {} items, 1,000 strata wanted, {} found\n", self.pool, self.strata);
        s.push_str(&format!("  pool import             {:>10.1} s ({:.0} items/s)\n", self.import_s, self.pool as f64 / self.import_s));
        s.push_str(&format!("  pool index build        {:>10.2} s (first dev-set call after an import)\n", self.index_build_s));
        for (rows, seconds, bytes, rss) in &self.uploads {
            s.push_str(&format!(
                "  profile {rows:>9} rows   {:>10.2} s  {:>7.1} MiB file  peak RSS +{rss:.1} MiB\n",
                seconds,
                *bytes as f64 / 1048576.0
            ));
        }
        let note_rows = if self.rows == TARGET_ROWS { String::new() } else { format!(" (target is for {TARGET_ROWS} rows)") };
        s.push_str(&format!(
            "  profile upload target < {TARGET_PROFILE_S} s: {}{note_rows}\n",
            verdict(self.profile_s() < TARGET_PROFILE_S)
        ));
        s.push_str(&format!("  draft (validates, plans) {:>9.3} s; size {}\n", self.create_s, self.size));
        s.push_str(&format!(
            "  plan, index cached      p50 {:.1} ms, max {:.1} ms over {} calls\n",
            self.plan.p50, self.plan.max, self.plan.count
        ));
        let note_pool = if self.pool == TARGET_POOL { String::new() } else { format!(" (target is for {TARGET_POOL} items)") };
        s.push_str(&format!(
            "  plan target < {TARGET_PLAN_S} s: {}{note_pool}\n",
            verdict(self.plan.max / 1000.0 < TARGET_PLAN_S)
        ));
        s.push_str(&format!("  plan after an import    {:>10.2} s (index rebuilt)\n", self.cold_plan_s));
        s.push_str(&format!("  sample                  {:>10.2} s\n", self.sample_s));
        s.push_str(&format!(
            "  report                  {:>10.2} s (dev TVD max {:.4}, pool TVD min {:.4})\n",
            self.report_s, self.dev_tvd_max, self.pool_tvd_min
        ));
        s
    }

    pub fn to_json(&self) -> Value {
        json!({
            "pool_items": self.pool,
            "profile_rows": self.rows,
            "import_seconds": self.import_s,
            "index_build_seconds": self.index_build_s,
            "uploads": self.uploads.iter().map(|(rows, s, bytes, rss)| json!({"rows": rows, "seconds": s, "bytes": bytes, "rss_peak_above_before_mib": rss})).collect::<Vec<_>>(),
            "target_profile_seconds": TARGET_PROFILE_S,
            "profile_pass": self.profile_s() < TARGET_PROFILE_S,
            "create_seconds": self.create_s,
            "strata": self.strata,
            "size": self.size,
            "plan_ms": self.plan.to_json(),
            "target_plan_seconds": TARGET_PLAN_S,
            "plan_pass": self.plan.max / 1000.0 < TARGET_PLAN_S,
            "cold_plan_seconds": self.cold_plan_s,
            "sample_seconds": self.sample_s,
            "report_seconds": self.report_s,
            "dev_tvd_max": self.dev_tvd_max,
            "pool_tvd_min": self.pool_tvd_min,
        })
    }
}
