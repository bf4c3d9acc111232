//! `mirrorset-bench --rules`: labeling-rule figures at scale (issue 10: "rule statistics on
//! 100,000 items under 1 s"), on a project of its own.
//!
//! 1. `--rules-items` text items (default 100,000) of 25 words drawn from a 5,000-word
//!    vocabulary (Zipf-like), a `src` attribute of 20 values, and a gold answer on every fifth
//!    item (so accuracy has final labels to count).
//! 2. Ten saved rules (four keyword, four regular-expression, two attribute).
//! 3. The first preview after the import: it builds the project's corpus (the cold figure).
//! 4. 30 previews of unsaved rules (keyword, regular expression, attribute in turn), each
//!    against the ten saved rules: wall time per request and the server's own evaluation time.
//! 5. The rule list (all ten rules' figures) five times, and applying the rules (the label
//!    model over every item, and the rules source's pre-labels written): a background job,
//!    timed from the request until the job is done.
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::{Client, Method};
use serde_json::{json, Value};

use super::{call, import_file, percentiles, Percentiles};

pub const TARGET_PREVIEW_MS: f64 = 1000.0;

const VOCABULARY: usize = 5000;
const WORDS_PER_ITEM: usize = 25;

pub struct RulesFigures {
    pub items: u64,
    pub import_s: f64,
    pub cold_preview_s: f64,
    pub preview_wall: Percentiles,
    pub preview_server: Percentiles,
    pub list_wall: Percentiles,
    pub apply_s: f64,
    pub prelabels: i64,
}

fn word(rng: &mut StdRng) -> String {
    // Zipf-like: the k-th word has weight ~ 1/k (inverse transform of a log-uniform draw).
    let u: f64 = rng.gen();
    let k = ((VOCABULARY as f64).powf(u) as usize).clamp(1, VOCABULARY);
    format!("w{k}")
}

fn write_items(path: &Path, n: u64) -> Result<u64> {
    let mut rng = StdRng::seed_from_u64(10);
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    for i in 0..n {
        let words: Vec<String> = (0..WORDS_PER_ITEM).map(|_| word(&mut rng)).collect();
        let pos = words.iter().any(|w| w == "w7" || w == "w11");
        let mut line = json!({"id": format!("r-{i}"), "text": words.join(" "), "meta": {"src": format!("s{}", i % 20)}});
        if i % 5 == 0 {
            line["gold"] = json!(if pos { "pos" } else { "neg" });
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
    n: u64,
    tmp: &tempfile::TempDir,
    say: &dyn Fn(&str),
) -> Result<RulesFigures> {
    say(&format!("[rules] a project of {n} items, ten rules"));
    let project = call(
        client,
        Method::POST,
        &format!("{base}/api/projects"),
        admin,
        Some(&json!({"name": "bench rules", "kind": "single", "overlap": 1,
                     "labels": [{"name": "pos", "key": "p", "color": "#22aa22"}, {"name": "neg", "key": "n", "color": "#aa2222"}]})),
        "rules: create project",
    )
    .await?;
    let pid = project["id"].as_i64().context("rules: project id")?;
    let path = tmp.path().join("rules-items.jsonl");
    let bytes = write_items(&path, n)?;
    let t = Instant::now();
    import_file(client, base, pid, admin, &path, bytes, "rules: import").await?;
    let import_s = t.elapsed().as_secs_f64();
    let rules_url = format!("{base}/api/projects/{pid}/prelabels/rules");
    let saved = [
        json!({"name": "k1", "kind": "keyword", "pattern": "w7 w11", "label": "pos"}),
        json!({"name": "k2", "kind": "keyword", "pattern": "w3", "label": "neg"}),
        json!({"name": "k3", "kind": "keyword", "pattern": "w100, w200, w300", "label": "pos"}),
        json!({"name": "k4", "kind": "keyword", "pattern": "w42", "label": null}),
        json!({"name": "r1", "kind": "regex", "pattern": r"\bw7\b.*\bw9\b", "label": "pos"}),
        json!({"name": "r2", "kind": "regex", "pattern": r"w12\d\d", "label": "neg"}),
        json!({"name": "r3", "kind": "regex", "pattern": r"^w1 ", "label": "neg"}),
        json!({"name": "r4", "kind": "regex", "pattern": r"w4999|w4998", "label": "pos"}),
        json!({"name": "m1", "kind": "meta", "meta_key": "src", "pattern": "s3", "label": "neg"}),
        json!({"name": "m2", "kind": "meta", "meta_key": "src", "pattern": "s4", "label": null}),
    ];
    for r in &saved {
        call(client, Method::POST, &rules_url, admin, Some(r), "rules: create rule").await?;
    }
    // Saving a rule answers with its figures, so the corpus is built by now; the cold figure
    // is the first list after one more import would rebuild it: measured as the first call
    // after an import of one item.
    let extra = tmp.path().join("rules-extra.jsonl");
    std::fs::write(&extra, "{\"id\": \"r-extra\", \"text\": \"w7 extra\"}\n")?;
    import_file(client, base, pid, admin, &extra, std::fs::metadata(&extra)?.len(), "rules: extra import").await?;
    let drafts = [
        json!({"kind": "keyword", "pattern": "w7 w13", "label": "pos"}),
        json!({"kind": "regex", "pattern": r"\bw2\d\b", "label": "neg"}),
        json!({"kind": "meta", "meta_key": "src", "pattern": "s5", "label": "pos"}),
    ];
    let preview_url = format!("{rules_url}/preview");
    let t = Instant::now();
    call(client, Method::POST, &preview_url, admin, Some(&drafts[0]), "rules: cold preview").await?;
    let cold_preview_s = t.elapsed().as_secs_f64();
    let (mut wall, mut server) = (Vec::new(), Vec::new());
    for i in 0..30 {
        let t = Instant::now();
        let p: Value = call(client, Method::POST, &preview_url, admin, Some(&drafts[i % 3]), "rules: preview").await?;
        wall.push(t.elapsed().as_secs_f64() * 1e3);
        server.push(p["elapsed_ms"].as_f64().unwrap_or(f64::NAN));
    }
    let mut list = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        call(client, Method::GET, &rules_url, admin, None, "rules: list").await?;
        list.push(t.elapsed().as_secs_f64() * 1e3);
    }
    // Apply is a background job (202): from the request until its job reports done.
    let apply_url = format!("{rules_url}/apply");
    let t = Instant::now();
    let job = call(client, Method::POST, &apply_url, admin, None, "rules: apply").await?;
    let job_id = job["id"].as_i64().context("rules: the apply job's id")?;
    let applied = loop {
        let s = call(client, Method::GET, &apply_url, admin, None, "rules: apply status").await?;
        if s["job"]["id"].as_i64() != Some(job_id) {
            bail!("rules: another apply job replaced {job_id}: {s}");
        }
        match s["job"]["state"].as_str() {
            Some("done") => break s["applied"].clone(),
            Some("failed") => bail!("rules: the apply job failed: {s}"),
            _ if t.elapsed().as_secs() > 600 => bail!("rules: the apply job did not finish within 10 minutes"),
            _ => tokio::time::sleep(std::time::Duration::from_millis(50)).await,
        }
    };
    let apply_s = t.elapsed().as_secs_f64();
    Ok(RulesFigures {
        items: n,
        import_s,
        cold_preview_s,
        preview_wall: percentiles(wall),
        preview_server: percentiles(server),
        list_wall: percentiles(list),
        apply_s,
        prelabels: applied["prelabels"].as_i64().unwrap_or(-1),
    })
}

impl RulesFigures {
    pub fn summary(&self) -> String {
        let pass = self.preview_wall.p95 < TARGET_PREVIEW_MS;
        format!(
            "\nLabeling rules ({} items, 10 saved rules)\n  import {:>9.2} s\n  first preview after an import (corpus build) {:>8.3} s\n  \
             preview wall   p50 {:>7.1} ms  p95 {:>7.1} ms  max {:>7.1} ms   target < {TARGET_PREVIEW_MS} ms: {}\n  \
             preview server p50 {:>7.1} ms  p95 {:>7.1} ms\n  \
             list (10 rules' figures) p50 {:>7.1} ms  max {:>7.1} ms\n  apply (label model, {} pre-labels written) {:>8.3} s\n",
            self.items,
            self.import_s,
            self.cold_preview_s,
            self.preview_wall.p50,
            self.preview_wall.p95,
            self.preview_wall.max,
            if pass { "PASS" } else { "FAIL" },
            self.preview_server.p50,
            self.preview_server.p95,
            self.list_wall.p50,
            self.list_wall.max,
            self.prelabels,
            self.apply_s,
        )
    }

    pub fn to_json(&self) -> Value {
        json!({
            "items": self.items,
            "import_s": self.import_s,
            "cold_preview_s": self.cold_preview_s,
            "preview_wall_ms": {"p50": self.preview_wall.p50, "p95": self.preview_wall.p95, "max": self.preview_wall.max},
            "preview_server_ms": {"p50": self.preview_server.p50, "p95": self.preview_server.p95},
            "list_ms": {"p50": self.list_wall.p50, "max": self.list_wall.max},
            "apply_s": self.apply_s,
            "prelabels": self.prelabels,
        })
    }
}
