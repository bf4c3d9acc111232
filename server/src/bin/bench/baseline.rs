//! The figures of earlier runs (`--baseline FILE`), so that a run shows what changed.
//!
//! A baseline file (`docs/bench-baselines.json`) holds runs recorded with
//! `--record-baseline FILE --label TEXT`: each is the run's JSON document (`--json`) with a
//! label (the build, the host's state) and when it was recorded. A run compares itself with
//! the latest recorded run of the same workload (backend, instances, items, labelers and their
//! credentials, overlap, think time, duration, `--import-during`'s lines and cookie labelers)
//! and prints each headline figure beside it, with the change and whether it is worse, better
//! or the same within the spread of single runs.
use anyhow::{Context, Result};
use serde_json::{json, Value};

/// Single runs of one build spread by about this much on the 2-core host (docs/bench.md,
/// sessions 21 and 22: ±10–20 %); a change within it is not called worse or better.
const SPREAD: f64 = 0.20;

/// The figures compared: (JSON pointer, name, whether higher is better, the smallest change
/// that counts: a 100k export's 0.25 s or a p50's few milliseconds move by more than the
/// spread between runs, and by less than this).
const FIGURES: &[(&str, &str, bool, f64)] = &[
    ("/import/items_per_s", "import items/s", true, 0.0),
    ("/labeling/annotations_per_s", "labels/s", true, 0.0),
    ("/labeling/next/p50_ms", "next p50 ms", false, 1.0),
    ("/labeling/next/p99_ms", "next p99 ms", false, 2.0),
    ("/labeling/submit/p99_ms", "submit p99 ms", false, 2.0),
    // The servers' own time (their /metrics histogram), without the closed loop's queue.
    ("/labeling/in_server/next/mean_ms", "next mean in server ms", false, 0.05),
    ("/labeling/in_server/submit/mean_ms", "submit mean in server ms", false, 1.0),
    ("/export/jsonl/seconds", "export JSONL s", false, 0.5),
    ("/export/csv/seconds", "export CSV s", false, 0.5),
    ("/export/jsonl/rss_anon_peak_mib", "RssAnon in export MiB", false, 10.0),
    ("/server/rss_anon_peak_sampled_mib", "peak RssAnon MiB", false, 10.0),
    ("/during_import/next/p99_ms", "next p99 ms, import", false, 2.0),
    ("/labeling/server_writes_per_label/calls", "write calls per label", false, 2.0),
];

/// What makes two runs comparable: each figure's JSON pointer, and its value (as JSON text) in
/// the runs recorded before the bench wrote it (their labelers all used bearer tokens).
const WORKLOAD: &[(&str, &str)] = &[
    ("/server/backend", "null"),
    ("/instances", "null"),
    ("/items", "null"),
    ("/labelers", "null"),
    ("/labelers_auth", "\"bearer tokens\""),
    ("/overlap", "null"),
    ("/think_ms", "null"),
    ("/duration_s", "null"),
    ("/during_import/lines", "null"),
    ("/during_import/cookie_labelers", "0"),
];

/// The workload of a run's JSON document, as text (for matching and for messages).
pub fn workload(doc: &Value) -> String {
    WORKLOAD
        .iter()
        .map(|(p, missing)| {
            let value = doc.pointer(p).map(Value::to_string).unwrap_or_else(|| missing.to_string());
            format!("{}={value}", p.trim_start_matches('/').replace('/', "."))
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The latest recorded run of `doc`'s workload in the baseline file's `runs`.
pub fn matching<'b>(baselines: &'b Value, doc: &Value) -> Option<&'b Value> {
    let want = workload(doc);
    baselines["runs"].as_array()?.iter().rev().find(|r| workload(&r["figures"]) == want)
}

/// A figure's change against the baseline, in words.
fn verdict(base: f64, now: f64, higher_is_better: bool, min_change: f64) -> (f64, &'static str) {
    let change = (now - base) / base;
    let better = if higher_is_better { change } else { -change };
    let word = if (now - base).abs() < min_change {
        "same within the spread"
    } else if better < -SPREAD {
        "WORSE"
    } else if better > SPREAD {
        "better"
    } else {
        "same within the spread"
    };
    (change, word)
}

/// The comparison's lines (for the summary) and JSON (for `--json`), or a line saying that
/// the file has no run of this workload.
pub fn compare(baselines: &Value, doc: &Value) -> (String, Value) {
    let Some(run) = matching(baselines, doc) else {
        let line = format!("\nBaseline\n  no recorded run of this workload ({})\n", workload(doc));
        return (line, Value::Null);
    };
    let mut s = format!(
        "\nBaseline: {} (recorded {}); worse or better: beyond ±{:.0} %\n",
        run["label"].as_str().unwrap_or("?"),
        run["recorded_at"].as_str().unwrap_or("?"),
        SPREAD * 100.0
    );
    let mut rows = Vec::new();
    for (pointer, name, higher_is_better, min_change) in FIGURES {
        let (Some(base), Some(now)) = (run["figures"].pointer(pointer).and_then(Value::as_f64), doc.pointer(pointer).and_then(Value::as_f64)) else {
            continue;
        };
        if base == 0.0 {
            continue;
        }
        let (change, word) = verdict(base, now, *higher_is_better, *min_change);
        s.push_str(&format!("  {name:<24} {base:>12.2} → {now:>12.2}  {:>+7.1} %  {word}\n", change * 100.0));
        rows.push(json!({ "figure": pointer, "baseline": base, "now": now, "change": change, "verdict": word }));
    }
    (s, json!({ "label": run["label"], "recorded_at": run["recorded_at"], "figures": rows }))
}

/// Reads a baseline file; a missing file is an empty one (the first `--record-baseline`).
pub fn read(path: &std::path::Path) -> Result<Value> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes).with_context(|| format!("{}: not a baseline file (JSON)", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(json!({ "runs": [] })),
        Err(e) => Err(e).with_context(|| format!("reading {}", path.display())),
    }
}

/// Appends the run `doc` (without its own comparison) to the baseline file, with its label
/// and the time.
pub fn record(path: &std::path::Path, label: &str, doc: &Value) -> Result<()> {
    let mut baselines = read(path)?;
    let mut doc = doc.clone();
    if let Some(fields) = doc.as_object_mut() {
        fields.remove("baseline");
    }
    let recorded_at = time::OffsetDateTime::now_utc()
        .replace_nanosecond(0)
        .context("the time")?
        .format(&time::format_description::well_known::Rfc3339)
        .context("formatting the time")?;
    let runs = baselines["runs"].as_array_mut().with_context(|| format!("{}: no \"runs\" array", path.display()))?;
    runs.push(json!({ "label": label, "recorded_at": recorded_at, "figures": doc }));
    let text = serde_json::to_string_pretty(&baselines)? + "\n";
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(items: u64, labels_per_s: f64, next_p99: f64) -> Value {
        json!({
            "server": { "backend": "sqlite", "rss_anon_peak_sampled_mib": 200.0 },
            "instances": 1, "items": items, "labelers": 50, "overlap": 1, "think_ms": 0, "duration_s": 10.0,
            "import": { "items_per_s": 50_000.0 },
            "labeling": { "annotations_per_s": labels_per_s, "next": { "p50_ms": 8.0, "p99_ms": next_p99 }, "submit": { "p99_ms": 30.0 } },
        })
    }

    /// The latest run of the same workload is the baseline; another workload is none.
    #[test]
    fn the_latest_run_of_the_same_workload_is_the_baseline() {
        let file = json!({ "runs": [
            { "label": "old", "recorded_at": "t1", "figures": run(100_000, 2_000.0, 30.0) },
            { "label": "million", "recorded_at": "t2", "figures": run(1_000_000, 2_500.0, 60.0) },
            { "label": "new", "recorded_at": "t3", "figures": run(100_000, 3_000.0, 30.0) },
        ]});
        assert_eq!(matching(&file, &run(100_000, 1.0, 1.0)).unwrap()["label"], "new");
        assert_eq!(matching(&file, &run(1_000_000, 1.0, 1.0)).unwrap()["label"], "million");
        assert!(matching(&file, &run(10, 1.0, 1.0)).is_none());
        let (text, value) = compare(&file, &run(10, 1.0, 1.0));
        assert!(text.contains("no recorded run of this workload (server.backend=\"sqlite\""), "{text}");
        assert_eq!(value, Value::Null);
    }

    /// Cookie-session labelers, or more of them beside an import, are another workload; a run
    /// recorded before the bench named its labelers' credentials used bearer tokens.
    #[test]
    fn the_labelers_credentials_are_part_of_the_workload() {
        let old = run(100_000, 2_000.0, 30.0);
        let mut tokens = run(100_000, 2_100.0, 30.0);
        tokens["labelers_auth"] = json!("bearer tokens");
        let mut sessions = run(100_000, 1_900.0, 30.0);
        sessions["labelers_auth"] = json!("cookie sessions");
        let file = json!({ "runs": [{ "label": "old", "recorded_at": "t1", "figures": old }] });
        assert_eq!(matching(&file, &tokens).unwrap()["label"], "old");
        assert!(matching(&file, &sessions).is_none());
        assert!(workload(&sessions).contains("labelers_auth=\"cookie sessions\""), "{}", workload(&sessions));

        let mut beside = tokens.clone();
        beside["during_import"] = json!({ "lines": 200_000, "cookie_labelers": 0 });
        let file = json!({ "runs": [{ "label": "import", "recorded_at": "t2", "figures": beside.clone() }] });
        let mut with_cookies = beside.clone();
        with_cookies["during_import"]["cookie_labelers"] = json!(10);
        assert_eq!(matching(&file, &beside).unwrap()["label"], "import");
        assert!(matching(&file, &with_cookies).is_none());
    }

    /// Each figure is worse or better only beyond the spread, in its own direction.
    #[test]
    fn changes_beyond_the_spread_are_called_worse_or_better() {
        let file = json!({ "runs": [{ "label": "b0ef1a2", "recorded_at": "t", "figures": run(100_000, 3_000.0, 30.0) }] });
        // Throughput 25 % down (worse), next p99 halved (better), the rest unchanged.
        let (text, value) = compare(&file, &run(100_000, 2_250.0, 15.0));
        println!("{text}");
        let verdicts: Vec<(&str, &str)> = value["figures"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| (f["figure"].as_str().unwrap(), f["verdict"].as_str().unwrap()))
            .collect();
        assert_eq!(
            verdicts,
            vec![
                ("/import/items_per_s", "same within the spread"),
                ("/labeling/annotations_per_s", "WORSE"),
                ("/labeling/next/p50_ms", "same within the spread"),
                ("/labeling/next/p99_ms", "better"),
                ("/labeling/submit/p99_ms", "same within the spread"),
                ("/server/rss_anon_peak_sampled_mib", "same within the spread"),
            ]
        );
        assert!(text.contains("Baseline: b0ef1a2 (recorded t)"), "{text}");
        assert_eq!(verdict(100.0, 119.0, true, 0.0).1, "same within the spread");
        assert_eq!(verdict(100.0, 121.0, false, 0.0).1, "WORSE");
        assert_eq!(verdict(0.25, 0.46, false, 0.5).1, "same within the spread", "a 100k export's fraction of a second");
        assert_eq!(verdict(2.5, 3.5, false, 0.5).1, "WORSE");
    }

    /// Recording appends to the file (made on first use) and the run is then its baseline.
    #[test]
    fn a_recorded_run_becomes_the_baseline() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("baselines.json");
        record(&path, "first", &run(100_000, 2_000.0, 30.0)).unwrap();
        let mut compared = run(100_000, 2_100.0, 30.0);
        compared["baseline"] = json!({ "label": "first" });
        record(&path, "second", &compared).unwrap();
        let file = read(&path).unwrap();
        assert_eq!(file["runs"].as_array().unwrap().len(), 2);
        assert!(file["runs"][1]["figures"].get("baseline").is_none(), "a run's own comparison is not recorded");
        assert_eq!(matching(&file, &run(100_000, 1.0, 1.0)).unwrap()["label"], "second");
        std::fs::write(&path, "not json").unwrap();
        assert!(format!("{:#}", read(&path).unwrap_err()).contains("not a baseline file"));
    }
}
