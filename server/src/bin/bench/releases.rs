//! `mirrorset-bench --releases`: freezing and exporting a dev-set release at scale (issue 9),
//! on a project of its own.
//!
//! 1. A pool of `--releases-pool` text items (default 1,000,000) through the import route: 60
//!    words each from a 2,000-word vocabulary, a region and a device, and a gold answer (so every
//!    dev-set member has a final label without a labeling campaign). `PLANTED` of them have a
//!    near-duplicate copy (one middle word changed: Jaccard of the word 3-grams about 0.87)
//!    whose source is `mirror`.
//! 2. A dev set of `--releases-size` items (default 100,000) stratified by region, its draft
//!    forcing the planted originals in (`must_include`) and the copies out (`exclude` source
//!    `mirror`): every planted pair is a release item against a pool item.
//! 3. The freeze, twice, each a job (202, then its status polled every 200 ms until done):
//!    refused with exactly the planted pairs, then frozen with the leakage override. Both run
//!    the whole leakage check against the pool. The phases' times are printed as they pass.
//! 4. The exports: the zip (Hugging Face layout, JSONL, CSV, Label Studio JSON, manifest) and
//!    the JSONL alone, each downloaded and counted.
//!
//! Memory: each phase of steps 3 and 4 (refused freeze, freeze, zip, JSONL) polls the server's
//! RssAnon every 100 ms and prints its start and peak with the load average at both ends; the
//! target is judged on the highest RssAnon over the freeze and the exports (VmHWM, reset with
//! `/proc/<pid>/clear_refs` before step 3, is printed beside it but also counts the database
//! pages SQLite's readers map). The targets are the issue's: freeze + zip + JSONL < 30 s,
//! peak < 300 MiB.
//!
//! With `--data-dir DIR` (kept between runs), a second run finds the project
//! `release-bench-<pool>-<size>` and its sampled dev set there and skips steps 1 and 2; each
//! run freezes one more version of the same dev set.
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{anyhow, bail, Context, Result};
use futures::StreamExt;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Client, Method};
use serde_json::{json, Value};

use super::{call, import_file, loadavg, mib, proc_status_kib, spawn_rss_sampler, Phase, PhaseMemory};

pub const TARGET_TOTAL_S: f64 = 30.0;
pub const TARGET_PEAK_MIB: f64 = 300.0;
const TARGET_POOL: u64 = 1_000_000;
const TARGET_SIZE: u64 = 100_000;
/// Near-duplicate pairs planted between release items and the pool.
const PLANTED: u64 = 50;
const WORDS_PER_TEXT: usize = 60;
const REGIONS: &[&str] = &["eu", "us", "apac", "latam"];
const DEVICES: &[&str] = &["ios", "android", "web"];

pub struct ReleaseFigures {
    pub pool: u64,
    pub size: u64,
    pub items: u64,
    pub import_s: f64,
    pub sample_s: f64,
    pub refused_s: f64,
    pub pairs: u64,
    pub freeze_s: f64,
    pub zip_s: f64,
    pub zip_bytes: u64,
    pub jsonl_s: f64,
    pub jsonl_lines: u64,
    /// VmHWM after the reset (freeze + exports), MiB; None without /proc or clear_refs.
    pub peak_mib: Option<f64>,
    /// RSS polled every 100 ms over the same span, MiB.
    pub rss_polled_mib: f64,
    pub rss_before_mib: f64,
    /// RssAnon before the first freeze, MiB.
    pub anon_before_mib: f64,
    /// The refused freeze, the freeze, the zip, the JSONL.
    pub phases: Vec<Phase>,
    pub loadavg: String,
}

fn word(i: usize) -> String {
    // Pronounceable-ish distinct words: w0..w1999 spelled with letters.
    let letters = b"abcdefghijklmnopqrstuvwxyz";
    let mut s = String::new();
    let mut n = i + 26;
    while n > 0 {
        s.push(letters[n % 26] as char);
        n /= 26;
    }
    s
}

/// The pool: `n` items; the last `PLANTED` are the copies of items 0..PLANTED.
fn generate_pool(path: &Path, n: u64) -> Result<u64> {
    let vocab: Vec<String> = (0..2_000).map(word).collect();
    let mut w = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut rng = StdRng::seed_from_u64(9);
    let mut originals: Vec<Vec<usize>> = Vec::new();
    for i in 0..n {
        let copy_of = i.checked_sub(n - PLANTED);
        let words: Vec<usize> = match copy_of {
            Some(k) => {
                let mut ws = originals[k as usize].clone();
                ws[WORDS_PER_TEXT / 2] = usize::MAX;
                ws
            }
            None => (0..WORDS_PER_TEXT).map(|_| rng.gen_range(0..vocab.len())).collect(),
        };
        if i < PLANTED {
            originals.push(words.clone());
        }
        let text: Vec<&str> = words.iter().map(|&x| if x == usize::MAX { "planted" } else { vocab[x].as_str() }).collect();
        let mut line = json!({
            "id": format!("rel-{i}"),
            // The number keeps every text distinct (the import refuses exact duplicates).
            "text": format!("{} n{i}", text.join(" ")),
            "meta": {"region": REGIONS[rng.gen_range(0..REGIONS.len())], "device": DEVICES[rng.gen_range(0..DEVICES.len())]},
            "gold": [if rng.gen_bool(0.5) { "a" } else { "b" }],
        });
        if copy_of.is_some() {
            line["source"] = json!("mirror");
        }
        serde_json::to_writer(&mut w, &line)?;
        w.write_all(b"\n")?;
    }
    w.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Resets the process's peak RSS (VmHWM) to its current RSS; false when the kernel refuses.
fn reset_hwm(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// Downloads an export, counting bytes and lines without keeping it.
async fn download(client: &Client, url: &str, token: &str) -> Result<(f64, u64, u64)> {
    let t = Instant::now();
    let resp = client.get(url).bearer_auth(token).send().await.with_context(|| format!("releases: GET {url}"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        bail!("releases: GET {url} returned {status}: {}", resp.text().await.unwrap_or_default());
    }
    let (mut bytes, mut lines) = (0u64, 0u64);
    let mut body = resp.bytes_stream();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.with_context(|| format!("releases: reading {url}"))?;
        bytes += chunk.len() as u64;
        lines += chunk.iter().filter(|&&b| b == b'\n').count() as u64;
    }
    Ok((t.elapsed().as_secs_f64(), bytes, lines))
}

#[allow(clippy::too_many_arguments)]
pub async fn scenario(
    client: &Client,
    base: &str,
    admin: &str,
    server_pid: u32,
    pool: u64,
    size: u64,
    tmp: &tempfile::TempDir,
    say: &dyn Fn(&str),
) -> Result<ReleaseFigures> {
    if pool < size + PLANTED {
        bail!("releases: the pool ({pool}) must be larger than the release ({size}) plus {PLANTED} planted copies");
    }
    let name = format!("release-bench-{pool}-{size}");
    let (pid, devset, import_s, sample_s) = match reusable(client, base, admin, &name, size).await? {
        Some((pid, devset)) => {
            say(&format!("[releases 1-2/4] reusing the pool and dev set of project {name:?} (--data-dir)"));
            (pid, devset, 0.0, 0.0)
        }
        None => prepare(client, base, admin, &name, pool, size, tmp, say).await?,
    };

    say("[releases 3/4] freezing: refused for leakage, then with the override");
    let rss_before = proc_status_kib(server_pid, "VmRSS").unwrap_or(0);
    let anon_before = proc_status_kib(server_pid, "RssAnon").unwrap_or(0);
    let hwm_reset = reset_hwm(server_pid);
    let polled = Arc::new(AtomicU64::new(rss_before));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = spawn_rss_sampler(server_pid, polled.clone(), Arc::new(AtomicU64::new(0)), stop.clone());
    let loads = loadavg();
    let freeze_url = format!("{base}/api/projects/{pid}/devsets/{devset}/releases");
    let m = PhaseMemory::start(server_pid);
    let t = Instant::now();
    let refused_job = freeze_job(client, base, pid, admin, server_pid, &freeze_url, &json!({"seed": 1})).await?;
    let refused_s = t.elapsed().as_secs_f64();
    let refused_phase = m.stop("freeze refused", refused_s).await;
    if refused_job["blocked"].is_null() {
        bail!("releases: the first freeze should be refused for leakage, got {refused_job}");
    }
    let pairs = refused_job["blocked"]["details"]["leakage"].as_array().map_or(0, |p| p.len() as u64);
    let m = PhaseMemory::start(server_pid);
    let t = Instant::now();
    let body = json!({"seed": 1, "override_leakage": "benchmark: planted near-duplicates"});
    let done = freeze_job(client, base, pid, admin, server_pid, &freeze_url, &body).await?;
    let freeze_s = t.elapsed().as_secs_f64();
    let freeze_phase = m.stop("freeze (override)", freeze_s).await;
    let frozen = &done["release"];
    let release = frozen["id"].as_i64().ok_or_else(|| anyhow!("releases: no release in the freeze's answer: {done}"))?;
    let items = frozen["item_count"].as_u64().unwrap_or(0);

    say("[releases 4/4] exporting: the zip (HF layout and all formats), then JSONL");
    let export = format!("{base}/api/projects/{pid}/releases/{release}/export");
    let m = PhaseMemory::start(server_pid);
    let (zip_s, zip_bytes, _) = download(client, &format!("{export}?format=zip"), admin).await?;
    let zip_phase = m.stop("export zip", zip_s).await;
    let m = PhaseMemory::start(server_pid);
    let (jsonl_s, _, jsonl_lines) = download(client, &format!("{export}?format=jsonl"), admin).await?;
    let jsonl_phase = m.stop("export jsonl", jsonl_s).await;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    let peak_mib = if hwm_reset { proc_status_kib(server_pid, "VmHWM").map(mib) } else { None };
    if jsonl_lines != items {
        bail!("releases: the JSONL export has {jsonl_lines} lines for {items} items");
    }
    Ok(ReleaseFigures {
        pool,
        size,
        items,
        import_s,
        sample_s,
        refused_s,
        pairs,
        freeze_s,
        zip_s,
        zip_bytes,
        jsonl_s,
        jsonl_lines,
        peak_mib,
        rss_polled_mib: mib(polled.load(Ordering::Relaxed)),
        rss_before_mib: mib(rss_before),
        anon_before_mib: mib(anon_before),
        phases: vec![refused_phase, freeze_phase, zip_phase, jsonl_phase],
        loadavg: loads,
    })
}

impl ReleaseFigures {
    /// Freezing (with the leakage check) and exporting: the override freeze, the zip and the
    /// JSONL (the refused freeze is reported beside it, not added).
    fn total_s(&self) -> f64 {
        self.freeze_s + self.zip_s + self.jsonl_s
    }

    /// The server's own memory (RssAnon) at its highest over the freeze and the exports: what
    /// the 300 MiB target is judged on (VmHWM also counts the database pages SQLite's readers
    /// map, which are the OS's file cache).
    fn peak(&self) -> f64 {
        self.phases.iter().skip(1).map(|p| p.anon_peak_mib).fold(0.0, f64::max)
    }

    pub fn summary(&self) -> String {
        let note = if self.pool == TARGET_POOL && self.size == TARGET_SIZE {
            String::new()
        } else {
            format!(" (targets are for {TARGET_SIZE} items against {TARGET_POOL})")
        };
        let mut s = format!(
            "\nReleases (issue 9): a release of {} items (dev set of {}) against a pool of {} (load average at the freeze {})\n",
            self.items, self.size, self.pool, self.loadavg
        );
        s.push_str(&format!("  pool import             {:>10.1} s{}\n", self.import_s, if self.import_s == 0.0 { "  (reused, --data-dir)" } else { "" }));
        s.push_str(&format!("  dev-set sample          {:>10.2} s\n", self.sample_s));
        s.push_str(&format!("  RssAnon before          {:>10.1} MiB\n", self.anon_before_mib));
        s.push_str("  phase                       seconds   RssAnon start → peak (MiB)   load average start | end\n");
        for p in &self.phases {
            s.push_str(&format!(
                "  {:<24}{:>10.2}   {:>8.1} → {:>8.1}             {} | {}\n",
                p.name, p.seconds, p.anon_start_mib, p.anon_peak_mib, p.load_start, p.load_end
            ));
        }
        s.push_str(&format!("  leakage pairs           {:>10}   {PLANTED} planted\n", self.pairs));
        s.push_str(&format!("  zip                     {:>10.1} MiB\n", self.zip_bytes as f64 / 1048576.0));
        s.push_str(&format!("  jsonl                   {:>10} lines\n", self.jsonl_lines));
        s.push_str(&format!(
            "  freeze + zip + jsonl    {:>10.2} s   ({:.2} + {:.2} + {:.2})   target < {TARGET_TOTAL_S} s: {}{note}\n",
            self.total_s(),
            self.freeze_s,
            self.zip_s,
            self.jsonl_s,
            super::verdict(self.total_s() < TARGET_TOTAL_S)
        ));
        s.push_str(&format!(
            "  server RssAnon peak     {:>10.1} MiB  (freeze and exports; polled)   target < {TARGET_PEAK_MIB} MiB: {}\n",
            self.peak(),
            super::verdict(self.peak() < TARGET_PEAK_MIB)
        ));
        s.push_str(&format!(
            "  server VmHWM            {:>10.1} MiB  (after the reset; with the database pages the readers map; RSS before {:.1}, polled peak {:.1})\n",
            self.peak_mib.unwrap_or(f64::NAN),
            self.rss_before_mib,
            self.rss_polled_mib
        ));
        s
    }

    pub fn to_json(&self) -> Value {
        json!({
            "pool_items": self.pool,
            "devset_size": self.size,
            "release_items": self.items,
            "import_seconds": self.import_s,
            "sample_seconds": self.sample_s,
            "refused_freeze_seconds": self.refused_s,
            "leakage_pairs": self.pairs,
            "planted_pairs": PLANTED,
            "freeze_seconds": self.freeze_s,
            "zip_seconds": self.zip_s,
            "zip_bytes": self.zip_bytes,
            "jsonl_seconds": self.jsonl_s,
            "jsonl_lines": self.jsonl_lines,
            "total_seconds": self.total_s(),
            "target_total_seconds": TARGET_TOTAL_S,
            "total_pass": self.total_s() < TARGET_TOTAL_S,
            "peak_mib": self.peak(),
            "peak_is": "RssAnon, polled every 100 ms over the freeze and the exports",
            "vm_hwm_mib": self.peak_mib,
            "rss_anon_before_mib": self.anon_before_mib,
            "phases": self.phases.iter().map(|p| json!({
                "name": p.name, "seconds": p.seconds, "rss_anon_start_mib": p.anon_start_mib,
                "rss_anon_peak_mib": p.anon_peak_mib, "loadavg_start": p.load_start, "loadavg_end": p.load_end,
            })).collect::<Vec<_>>(),
            "rss_before_mib": self.rss_before_mib,
            "target_peak_mib": TARGET_PEAK_MIB,
            "peak_pass": self.peak() < TARGET_PEAK_MIB,
            "loadavg": self.loadavg,
        })
    }
}

/// A project of an earlier run in a kept data directory (`--data-dir`) with this name (pool
/// and release sizes) and its sampled dev set `bench` of `size` members: (project, dev set).
async fn reusable(client: &Client, base: &str, admin: &str, name: &str, size: u64) -> Result<Option<(i64, i64)>> {
    let projects = call(client, Method::GET, &format!("{base}/api/projects"), admin, None, "releases (list projects)").await?;
    let Some(pid) = projects.as_array().into_iter().flatten().find(|p| p["project"]["name"] == name).and_then(|p| p["project"]["id"].as_i64())
    else {
        return Ok(None);
    };
    let devsets = call(client, Method::GET, &format!("{base}/api/projects/{pid}/devsets"), admin, None, "releases (list dev sets)").await?;
    let devset = devsets
        .as_array()
        .into_iter()
        .flatten()
        .find(|d| d["name"] == "bench" && !d["sampled_at"].is_null() && d["members"].as_u64() == Some(size))
        .and_then(|d| d["id"].as_i64());
    match devset {
        Some(d) => Ok(Some((pid, d))),
        None => bail!("releases: project {name:?} exists in the data directory but has no sampled dev set of {size}: use a fresh --data-dir"),
    }
}

/// Steps 1 and 2: the project, its pool and its sampled dev set: (project, dev set, import s, sample s).
#[allow(clippy::too_many_arguments)]
async fn prepare(
    client: &Client,
    base: &str,
    admin: &str,
    name: &str,
    pool: u64,
    size: u64,
    tmp: &tempfile::TempDir,
    say: &dyn Fn(&str),
) -> Result<(i64, i64, f64, f64)> {
    let labels = json!([{"name": "a", "key": "1", "color": "#1f77b4"}, {"name": "b", "key": "2", "color": "#ff7f0e"}]);
    let project = call(
        client,
        Method::POST,
        &format!("{base}/api/projects"),
        admin,
        Some(&json!({"name": name, "kind": "single", "labels": labels, "overlap": 1})),
        "releases (create the project)",
    )
    .await?;
    let pid = project["id"].as_i64().ok_or_else(|| anyhow!("releases: no project id in {project}"))?;

    say(&format!("[releases 1/4] generating and importing a pool of {pool} items ({PLANTED} near-duplicates planted)"));
    let pool_path = tmp.path().join("releases-pool.jsonl");
    let bytes = generate_pool(&pool_path, pool)?;
    let t = Instant::now();
    let report = import_file(client, base, pid, admin, &pool_path, bytes, "releases (import the pool)").await?;
    let import_s = t.elapsed().as_secs_f64();
    if report["imported"].as_u64() != Some(pool) {
        bail!("releases: {} of {pool} pool items imported: {report}", report["imported"]);
    }
    std::fs::remove_file(&pool_path)?;

    say(&format!("[releases 2/4] a dev set of {size} items stratified by region"));
    let production = tmp.path().join("releases-production.jsonl");
    {
        let mut w = BufWriter::new(std::fs::File::create(&production)?);
        for i in 0..1_000 {
            writeln!(w, "{}", json!({"region": REGIONS[i % REGIONS.len()], "device": DEVICES[i % DEVICES.len()]}))?;
        }
        w.flush()?;
    }
    let profile = super::devset::upload_profile(client, base, pid, admin, "production", &production).await?;
    let profile_id = profile["id"].as_i64().ok_or_else(|| anyhow!("releases: no profile id in {profile}"))?;
    let draft = json!({
        "name": "bench", "profile_id": profile_id, "seed": 1, "overlap": 1,
        "attributes": ["region"], "size": size,
        "must_include": {"external_ids": (0..PLANTED).map(|i| format!("rel-{i}")).collect::<Vec<_>>()},
        "exclude": {"sources": ["mirror"]},
    });
    let created = call(client, Method::POST, &format!("{base}/api/projects/{pid}/devsets"), admin, Some(&draft), "releases (create the dev set)").await?;
    let devset = created["id"].as_i64().ok_or_else(|| anyhow!("releases: no dev set id in {created}"))?;
    let t = Instant::now();
    let sampled = call(client, Method::POST, &format!("{base}/api/projects/{pid}/devsets/{devset}/sample"), admin, Some(&json!({})), "releases (sample)").await?;
    let sample_s = t.elapsed().as_secs_f64();
    drop(sampled);
    Ok((pid, devset, import_s, sample_s))
}

/// Queues a freeze (202) and polls its job every 200 ms until it is done; returns the final
/// `FreezeJob`. Prints each job phase as it ends: its seconds and the server's highest RssAnon
/// seen while it ran (read at each poll).
async fn freeze_job(client: &Client, base: &str, pid: i64, admin: &str, server_pid: u32, url: &str, body: &Value) -> Result<Value> {
    let t = Instant::now();
    let resp = client.post(url).bearer_auth(admin).json(body).send().await?;
    let status = resp.status();
    let queued: Value = resp.json().await.unwrap_or(Value::Null);
    if status.as_u16() != 202 {
        bail!("releases: the freeze should be queued (202), got {status}: {queued}");
    }
    let job = queued["job"]["id"].as_i64().ok_or_else(|| anyhow!("releases: no job id in {queued}"))?;
    let status_url = format!("{base}/api/projects/{pid}/release-freezes/{job}");
    let (mut last_phase, mut since, mut anon_max) = ("queued".to_string(), 0.0, 0u64);
    let end_phase = |name: &str, since: f64, now: f64, anon: u64| {
        eprintln!("    {since:>7.2} s  {name:<16} {:>6.2} s   RssAnon peak {:>7.1} MiB", now - since, mib(anon));
    };
    loop {
        let j = call(client, Method::GET, &status_url, admin, None, "releases (freeze status)").await?;
        let anon = proc_status_kib(server_pid, "RssAnon").unwrap_or(0);
        let now = t.elapsed().as_secs_f64();
        let phase = j["phase"].as_str().unwrap_or("queued").to_string();
        if phase != last_phase {
            end_phase(&last_phase, since, now, anon_max.max(anon));
            (last_phase, since, anon_max) = (phase, now, anon);
        }
        anon_max = anon_max.max(anon);
        match j["job"]["state"].as_str() {
            Some("done") => {
                end_phase(&last_phase, since, now, anon_max);
                return Ok(j);
            }
            Some("failed") => bail!("releases: the freeze failed: {}", j["job"]["error"]),
            _ => tokio::time::sleep(std::time::Duration::from_millis(200)).await,
        }
    }
}
