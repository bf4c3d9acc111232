//! `mirrorset-bench --model`: the built-in model's training job at scale (issue 10: "retrain
//! on 50,000 labeled items and scoring of 1,000,000 items under 60 s on 2 cores, without
//! raising next-item latency for 8 concurrent labelers by more than 20%"), on a project of its
//! own.
//!
//! 1. `--model-items` text items (default 1,000,000) of 20 words: 15 from a shared 5,000-word
//!    Zipf-like vocabulary and 5 from one of three class vocabularies (with 20% of those drawn
//!    from another class, so the classes overlap), and a gold answer on the first
//!    `--model-labeled` (default 50,000): the human final labels it trains on.
//! 2. The main project's labelers label for `--duration` seconds without a training running
//!    (next-item latency: the baseline).
//! 3. `POST …/model/train`, and the same labelers label for `--duration` seconds while it runs:
//!    the job's time (started to finished, from the job row), the server's VmRSS and RssAnon
//!    maxima, and next-item latency during the training.
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Client, Method};
use serde_json::{json, Value};

use super::agreement::label_for;
use super::{call, import_file, mib, percentiles, proc_status_kib, spawn_rss_sampler, Percentiles};

pub const TARGET_TRAIN_S: f64 = 60.0;
/// Next-item latency during training may be at most this times the baseline (p50).
pub const TARGET_NEXT_RATIO: f64 = 1.2;

const LABELS: [&str; 3] = ["a", "b", "c"];
const VOCABULARY: usize = 5000;
const CLASS_WORDS: usize = 300;

pub struct ModelFigures {
    pub items: u64,
    pub labeled: u64,
    pub import_s: f64,
    pub train_s: f64,
    pub job: Value,
    pub run: Value,
    pub rss_max_mib: f64,
    pub anon_max_mib: f64,
    pub anon_before_mib: f64,
    pub next_without: Percentiles,
    pub next_with: Percentiles,
    /// The labelers' window ended before the training did (so it measured training only).
    pub labeling_ended_first: bool,
}

fn write_items(path: &Path, n: u64, labeled: u64) -> Result<u64> {
    let mut rng = StdRng::seed_from_u64(17);
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    for i in 0..n {
        let class = rng.gen_range(0..LABELS.len());
        let mut words: Vec<String> = (0..15)
            .map(|_| {
                let u: f64 = rng.gen();
                format!("w{}", ((VOCABULARY as f64).powf(u) as usize).clamp(1, VOCABULARY))
            })
            .collect();
        for _ in 0..5 {
            let c = if rng.gen_bool(0.8) { class } else { rng.gen_range(0..LABELS.len()) };
            words.push(format!("{}{}", LABELS[c], rng.gen_range(0..CLASS_WORDS)));
        }
        words.push(format!("n{i}")); // every text distinct
        let mut line = json!({"id": format!("m-{i}"), "text": words.join(" ")});
        if i < labeled {
            line["gold"] = json!(LABELS[class]);
        }
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

#[allow(clippy::too_many_arguments)]
pub async fn scenario(
    client: &Client,
    base: &str,
    admin: &str,
    server_pid: u32,
    n: u64,
    labeled: u64,
    main_pid: i64,
    tokens: &[String],
    seconds: f64,
    tmp: &tempfile::TempDir,
    say: &dyn Fn(&str),
) -> Result<ModelFigures> {
    let step = "model";
    say(&format!("[model] a project of {n} items, {labeled} with a gold answer"));
    let labels: Vec<Value> =
        LABELS.iter().enumerate().map(|(i, l)| json!({"name": l, "key": (i + 1).to_string(), "color": "#888888"})).collect();
    let p = call(client, Method::POST, &format!("{base}/api/projects"), admin,
                 Some(&json!({"name": "model bench", "kind": "single", "labels": labels, "overlap": 1})), step).await?;
    let pid = p["id"].as_i64().ok_or_else(|| anyhow!("no project id in {p}"))?;
    let path = tmp.path().join("model-items.jsonl");
    let bytes = write_items(&path, n, labeled)?;
    let t = Instant::now();
    import_file(client, base, pid, admin, &path, bytes, "model: import").await?;
    let import_s = t.elapsed().as_secs_f64();
    let _ = std::fs::remove_file(&path);

    say(&format!("[model] {} labelers for {seconds} s without a training", tokens.len()));
    let next_without = percentiles(label_for(base, main_pid, tokens, seconds, 4000).await?.0);

    say("[model] training (the labelers keep labeling until it is done)");
    let anon_before = proc_status_kib(server_pid, "RssAnon").unwrap_or(0);
    let (rss_max, anon_max) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(anon_before)));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = spawn_rss_sampler(server_pid, rss_max.clone(), anon_max.clone(), stop.clone());
    let model_url = format!("{base}/api/projects/{pid}/model");
    let t = Instant::now();
    call(client, Method::POST, &format!("{model_url}/train"), admin, None, "model: train").await?;
    // The labelers label during the training's first `seconds` (at this scale it runs longer);
    // meanwhile the job is polled until it is done.
    let labeling = {
        let (base, tokens) = (base.to_string(), tokens.to_vec());
        tokio::spawn(async move { label_for(&base, main_pid, &tokens, seconds, 5000).await })
    };
    let status = loop {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let s = call(client, Method::GET, &model_url, admin, None, "model: status").await?;
        match s["job"]["state"].as_str() {
            Some("done") => break s,
            Some("failed") => bail!("the training failed: {}", s["job"]["error"]),
            _ if t.elapsed() > Duration::from_secs(1800) => bail!("the training took over 30 minutes: {s}"),
            _ => {}
        }
    };
    let labeling_ended_first = labeling.is_finished();
    let next_with = percentiles(labeling.await.context("the labelers' task")??.0);
    let job = status["job"].clone();
    let train_s = match (job["started_at"].as_i64(), job["finished_at"].as_i64()) {
        (Some(a), Some(b)) => (b - a) as f64 / 1000.0,
        _ => t.elapsed().as_secs_f64(),
    };
    stop.store(true, Ordering::Relaxed);
    sampler.await.context("the memory sampler")?;
    Ok(ModelFigures {
        items: n,
        labeled,
        import_s,
        train_s,
        job,
        run: status["last_run"].clone(),
        rss_max_mib: mib(rss_max.load(Ordering::Relaxed)),
        anon_max_mib: mib(anon_max.load(Ordering::Relaxed)),
        anon_before_mib: mib(anon_before),
        next_without,
        next_with,
        labeling_ended_first,
    })
}

impl ModelFigures {
    fn ratio(&self) -> f64 {
        self.next_with.p50 / self.next_without.p50
    }

    pub fn summary(&self) -> String {
        let cv = &self.run["cv_accuracy"];
        format!(
            "\nBuilt-in model ({} items, {} labeled)\n  import {:>9.2} s\n  training job (CV 5 folds, fit, score {} items) {:>8.2} s   target < {TARGET_TRAIN_S} s: {}\n  \
             held-out accuracy {:.3} (n {}), majority baseline {:.3}; {} flagged as likely mislabeled\n  \
             memory: RssAnon {:.0} MiB before, max {:.0} MiB during; VmRSS max {:.0} MiB\n  \
             next p50 without {:>6.1} ms, during the training {:>6.1} ms: ×{:.2}   target ≤ ×{TARGET_NEXT_RATIO}: {}{}\n",
            self.items,
            self.labeled,
            self.import_s,
            self.run["items_scored"],
            self.train_s,
            if self.train_s < TARGET_TRAIN_S { "PASS" } else { "FAIL" },
            cv["value"].as_f64().unwrap_or(f64::NAN),
            cv["n"],
            self.run["baseline_accuracy"]["value"].as_f64().unwrap_or(f64::NAN),
            self.run["flagged"],
            self.anon_before_mib,
            self.anon_max_mib,
            self.rss_max_mib,
            self.next_without.p50,
            self.next_with.p50,
            self.ratio(),
            if self.ratio() <= TARGET_NEXT_RATIO { "PASS" } else { "FAIL" },
            if self.labeling_ended_first { "" } else { " (the training ended inside the labeling window: part of it was measured without)" },
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "items": self.items,
            "labeled": self.labeled,
            "import_s": self.import_s,
            "train_s": self.train_s,
            "job": self.job,
            "run": self.run,
            "rss_anon_before_mib": self.anon_before_mib,
            "rss_anon_max_mib": self.anon_max_mib,
            "vm_rss_max_mib": self.rss_max_mib,
            "next_ms_without": {"p50": self.next_without.p50, "p95": self.next_without.p95, "max": self.next_without.max},
            "next_ms_with": {"p50": self.next_with.p50, "p95": self.next_with.p95, "max": self.next_with.max},
            "next_p50_ratio": self.ratio(),
            "labeling_within_training": self.labeling_ended_first,
        })
    }
}
