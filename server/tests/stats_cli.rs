//! `mirrorset stats` as users run it: the real binary on files.
//!
//! - Every example in docs/stats.md is run (inputs from the repository, or made here for the
//!   error examples), and its output must be what the page shows (abridged parts marked `…` or `...` match anything), so
//!   the page stays true.
//! - Extreme input (counts and weights near the largest float) gives the statistic or a clear
//!   error with status 1, never a wrong number with status 0.
//! - A repeated stratum in a pretty-printed allocation file is reported at the line where the
//!   repetition starts.

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

fn mirrorset(args: &[&str]) -> Output {
    mirrorset_in(&root(), args)
}

fn mirrorset_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_mirrorset")).args(args).current_dir(dir).output().expect("run mirrorset")
}

/// Runs `mirrorset stats ARGS`, expecting success; returns the JSON printed.
fn stats_ok(args: &[&str]) -> Value {
    let out = mirrorset(&[&["stats"], args].concat());
    assert!(
        out.status.success(),
        "mirrorset stats {args:?} failed ({}): {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("stdout is one JSON document")
}

/// Runs `mirrorset stats ARGS`, expecting exit status 1 and nothing on stdout; returns stderr.
fn stats_err(args: &[&str]) -> String {
    let out = mirrorset(&[&["stats"], args].concat());
    assert_eq!(out.status.code(), Some(1), "mirrorset stats {args:?}: {}", String::from_utf8_lossy(&out.stdout));
    assert!(out.stdout.is_empty(), "a refused input prints no numbers: {}", String::from_utf8_lossy(&out.stdout));
    String::from_utf8(out.stderr).unwrap().trim_end().to_string()
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

// ------------------------------------------------------------------ docs/stats.md examples

/// Whether `actual` is what the docs show as `doc`: equal, except that a string "...", one
/// starting with "…", or a description in parentheses standing for a non-string ("(as for
/// majority)") stands for any value, an array ending in such a string shows a prefix, and an
/// object with a key "..." or "…" shows some of the keys.
fn matches_doc(doc: &Value, actual: &Value, at: &str) -> Result<(), String> {
    let is_ellipsis = |s: &str| s == "..." || s.starts_with('…');
    let is_description = |s: &str| s.starts_with('(') && s.ends_with(')');
    match (doc, actual) {
        (Value::String(s), _) if is_ellipsis(s) => Ok(()),
        (Value::String(s), a) if is_description(s) && !a.is_string() => Ok(()),
        (Value::Array(d), Value::Array(a)) => {
            let abridged = d.last().and_then(Value::as_str).is_some_and(is_ellipsis);
            let shown = if abridged { &d[..d.len() - 1] } else { &d[..] };
            if (abridged && a.len() < shown.len()) || (!abridged && a.len() != d.len()) {
                return Err(format!("{at}: {} elements shown, {} printed", d.len(), a.len()));
            }
            shown.iter().zip(a).enumerate().try_for_each(|(i, (d, a))| matches_doc(d, a, &format!("{at}[{i}]")))
        }
        (Value::Object(d), Value::Object(a)) => {
            let abridged = d.keys().any(|k| is_ellipsis(k));
            for (k, dv) in d.iter().filter(|(k, _)| !is_ellipsis(k)) {
                let av = a.get(k).ok_or_else(|| format!("{at}.{k}: shown but not printed"))?;
                matches_doc(dv, av, &format!("{at}.{k}"))?;
            }
            if !abridged {
                if let Some(k) = a.keys().find(|k| !d.contains_key(*k)) {
                    return Err(format!("{at}.{k}: printed but not shown"));
                }
            }
            Ok(())
        }
        _ if doc == actual => Ok(()),
        _ => Err(format!("{at}: shown {doc}, printed {actual}")),
    }
}

/// Inputs for the examples of the page's Errors section, which shows only the messages.
const ERROR_EXAMPLE_INPUTS: [(&str, &str); 3] = [
    ("probs.jsonl", "{\"item\": \"a\", \"label\": \"x\", \"probs\": {\"x\": 0.5, \"y\": 0.4}}\n"),
    ("empty.jsonl", ""),
    ("strata.json", PRETTY_DUPLICATE),
];

/// An allocation request, pretty-printed, whose second stratum (lines 9 to 13) repeats the key
/// of the first (lines 4 to 8).
const PRETTY_DUPLICATE: &str = r#"{
  "n": 10,
  "strata": [
    {
      "key": "a",
      "production": 1,
      "available": 5
    },
    {
      "key": "a",
      "production": 2,
      "available": 5
    }
  ]
}
"#;

#[test]
fn docs_examples_print_what_the_docs_show() {
    let docs = std::fs::read_to_string(root().join("docs/stats.md")).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let fixtures = tempfile::tempdir().unwrap();
    let mut checked = Vec::new();
    let mut skipped = Vec::new();
    let mut wrong = Vec::new();
    let lines: Vec<&str> = docs.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let Some(command) = lines[i].strip_prefix("$ mirrorset ") else {
            i += 1;
            continue;
        };
        // The shown output runs to the next command or the end of the block.
        let mut j = i + 1;
        while j < lines.len() && !lines[j].starts_with("$ ") && !lines[j].starts_with("```") {
            j += 1;
        }
        let shown = lines[i + 1..j].join("\n");
        i = j;
        let (command, redirect) = match command.split_once(" > ") {
            Some((c, file)) => (c, Some(file.trim())),
            None => (command, None),
        };
        // Files written by an earlier example's redirect live in the temporary directory.
        let args: Vec<String> = command
            .split_whitespace()
            .map(|a| if tmp.path().join(a).exists() { tmp.path().join(a).to_str().unwrap().to_string() } else { a.to_string() })
            .collect();
        // The error examples name files the page does not show: made here (in their own
        // directory, so the messages name them as the page does).
        let missing = args.iter().find(|a| (a.ends_with(".json") || a.ends_with(".jsonl")) && !root().join(a).exists());
        let dir = match missing {
            None => root(),
            Some(file) => match ERROR_EXAMPLE_INPUTS.iter().find(|(name, _)| name == file) {
                Some((name, text)) => {
                    write(fixtures.path(), name, text);
                    fixtures.path().to_path_buf()
                }
                None => {
                    skipped.push(format!("{command} ({file} is not in the repository)"));
                    continue;
                }
            },
        };
        let out = mirrorset_in(&dir, &args.iter().map(String::as_str).collect::<Vec<_>>());
        if let Some(file) = redirect {
            assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
            std::fs::write(tmp.path().join(file), &out.stdout).unwrap();
        } else if let Some(message) = shown.strip_prefix("error: ") {
            assert_eq!(out.status.code(), Some(1), "{command}");
            assert_eq!(String::from_utf8_lossy(&out.stderr).trim_end(), format!("error: {message}"), "{command}");
        } else {
            assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
            let printed: Value = serde_json::from_slice(&out.stdout).unwrap();
            let doc: Value = serde_json::from_str(&shown).unwrap_or_else(|e| panic!("{command}: the docs show no JSON ({e}):\n{shown}"));
            if let Err(e) = matches_doc(&doc, &printed, "") {
                wrong.push(format!("`mirrorset {command}`: {e}\nprinted:\n{printed:#}"));
            }
        }
        checked.push(command.to_string());
    }
    assert!(skipped.is_empty(), "examples not run (add their inputs to ERROR_EXAMPLE_INPUTS): {skipped:#?}");
    assert!(wrong.is_empty(), "docs/stats.md shows other outputs than printed:\n{}", wrong.join("\n\n"));
    // Every subcommand's example ran (a parsing slip here must not pass silently).
    for sub in ["agreement", "aggregate", "label-issues", "allocate", "sample ", "distance", "interval", "sample-size", "evaluate"] {
        assert!(checked.iter().any(|c| c.starts_with(&format!("stats {sub}"))), "no example of {sub} ran: {checked:#?}");
    }
}

// ------------------------------------------------------------------ seeded sampling

/// A seeded sample of the docs' example pool, in full: the same ids in every release. The
/// allocation is fixed here (it is what `allocate` gave before minimums became floors), so the
/// pin is about the sampler alone.
#[test]
fn sample_with_a_seed_is_pinned() {
    let tmp = tempfile::tempdir().unwrap();
    let allocation = r#"{"strata": [
        {"key": "region=eu|device=mobile", "allocated": 52}, {"key": "region=eu|device=web", "allocated": 12},
        {"key": "region=us|device=mobile", "allocated": 27}, {"key": "region=us|device=web", "allocated": 9}]}"#;
    let allocation = write(tmp.path(), "allocation.json", allocation);
    let pool = "tests/data/stats/examples/pool.jsonl";
    let sample = stats_ok(&["sample", "--allocation", &allocation, "--pool", pool, "--seed", "1"]);
    let ids: Vec<&str> = sample["items"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert_eq!(ids.len(), 100);
    assert_eq!(ids[..4], ["eu-mobile-000", "eu-mobile-029", "eu-mobile-008", "eu-mobile-050"]);
    assert_eq!(fnv1a(ids.join("\n").as_bytes()), SAMPLE_SEED_1_FNV, "the ids of the seed-1 sample changed: {ids:?}");
    // Another seed, another sample; the same seed again, the same one.
    let other = stats_ok(&["sample", "--allocation", &allocation, "--pool", pool, "--seed", "2"]);
    assert_ne!(other["items"], sample["items"]);
    assert_eq!(stats_ok(&["sample", "--allocation", &allocation, "--pool", pool, "--seed", "1"]), sample);
}

/// FNV-1a of the 100 ids of the seed-1 sample, joined by newlines: computed once, by an
/// independent implementation of the documented procedure (the ChaCha8 reference of
/// server/src/stats/rng.rs's known-output test), which drew the very same 100 ids.
const SAMPLE_SEED_1_FNV: u64 = 989_958_973_036_123_774;

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

// ------------------------------------------------------------------ extreme input

#[test]
fn allocate_with_production_near_the_largest_float() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(
        tmp.path(),
        "big.json",
        r#"{"n": 100, "strata": [
            {"key": "a", "production": 1.7976931348623157e308, "available": 1000},
            {"key": "b", "production": 1.7976931348623157e308, "available": 1000},
            {"key": "c", "production": 8.988465674311579e307, "available": 1000}]}"#,
    );
    let out = stats_ok(&["allocate", &file]);
    let got: Vec<(u64, u64)> = out["strata"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["requested"].as_u64().unwrap(), s["allocated"].as_u64().unwrap()))
        .collect();
    assert_eq!(got, [(40, 40), (40, 40), (20, 20)], "{out:#}");
    // Beyond the largest float: refused while parsing, with the line.
    let file = write(tmp.path(), "inf.json", "{\"n\": 1, \"strata\": [\n{\"key\": \"a\", \"production\": 1e999, \"available\": 1}]}");
    let e = stats_err(&["allocate", &file]);
    assert!(e.starts_with(&format!("error: {file}:2: ")), "{e}");
}

#[test]
fn distance_with_counts_near_the_largest_float() {
    let tmp = tempfile::tempdir().unwrap();
    // 2^1023, 2^1023, 2^1022: their sum overflowed, KL came out negative with status 0.
    let file = write(tmp.path(), "big.json", r#"{"p": {"a": 8.98846567431158e307, "b": 8.98846567431158e307, "c": 4.49423283715579e307, "d": 0}, "q": {"a": 1, "b": 1, "c": 2, "d": 1}}"#);
    let small = write(tmp.path(), "small.json", r#"{"p": {"a": 2, "b": 2, "c": 1, "d": 0}, "q": {"a": 1, "b": 1, "c": 2, "d": 1}}"#);
    let (big, small) = (stats_ok(&["distance", &file]), stats_ok(&["distance", &small]));
    assert_eq!(big, small, "only proportions matter");
    assert!(big["kl"].as_f64().unwrap() > 0.0, "{big}");
    let joint = write(
        tmp.path(),
        "joint.json",
        r#"{"attributes": ["r"], "p": [{"values": {"r": "a"}, "count": 1.7976931348623157e308},
            {"values": {"r": "a"}, "count": 1.7976931348623157e308}, {"values": {"r": "b"}, "count": 1.7976931348623157e308}],
            "q": [{"values": {"r": "a"}, "count": 1}, {"values": {"r": "b"}, "count": 1}]}"#,
    );
    let joint = stats_ok(&["distance", &joint]);
    let expected = stats_ok(&["distance", &write(tmp.path(), "two.json", r#"{"p": {"a": 2, "b": 1}, "q": {"a": 1, "b": 1}}"#)]);
    for key in ["tvd", "kl", "psi"] {
        let (got, want) = (joint["joint"][key].as_f64().unwrap(), expected[key].as_f64().unwrap());
        assert!((got - want).abs() < 1e-15, "{key}: {joint:#} vs {expected:#}");
    }
    // Negative counts are refused with the line.
    let file = write(tmp.path(), "neg.json", "{\"p\": {\"a\": 1},\n \"q\": {\"a\": -1}}");
    assert_eq!(stats_err(&["distance", &file]), format!("error: {file}:2: expected a number ≥ 0, found -1 (column 15)"));
}

#[test]
fn evaluate_with_weights_near_the_largest_float() {
    let tmp = tempfile::tempdir().unwrap();
    let gold = |weights: [&str; 3]| {
        format!(
            "{{\"item\": \"1\", \"label\": \"a\", \"weight\": {}}}\n{{\"item\": \"2\", \"label\": \"a\", \"weight\": {}}}\n{{\"item\": \"3\", \"label\": \"b\", \"weight\": {}}}\n",
            weights[0], weights[1], weights[2]
        )
    };
    let pred = write(tmp.path(), "pred.jsonl", "{\"item\": \"1\", \"label\": \"a\"}\n{\"item\": \"2\", \"label\": \"b\"}\n{\"item\": \"3\", \"label\": \"b\"}\n");
    // 0.2, 0.2 and 0.45 times the largest float: the total fits, but F1's intermediate sums
    // overflowed: class b's F1 came out 0 (it is 0.82) and micro F1 null with no reason.
    let big = write(tmp.path(), "big.jsonl", &gold(["3.5953862697246315e307", "3.5953862697246315e307", "8.089619106880421e307"]));
    let small = write(tmp.path(), "small.jsonl", &gold(["4", "4", "9"]));
    let (big, small) = (stats_ok(&["evaluate", "--gold", &big, "--pred", &pred]), stats_ok(&["evaluate", "--gold", &small, "--pred", &pred]));
    for key in ["accuracy", "macro_f1", "micro_f1", "weighted_f1"] {
        let (got, want) = (big[key].as_f64(), small[key].as_f64().unwrap());
        assert!(got.is_some_and(|g| (g - want).abs() < 1e-12), "{key}: {big:#}");
    }
    for class in ["a", "b"] {
        for key in ["precision", "recall", "f1"] {
            let (got, want) = (&big["per_class"][class][key], &small["per_class"][class][key]);
            assert!((got.as_f64().unwrap() - want.as_f64().unwrap()).abs() < 1e-12, "{class} {key}: {big:#}");
        }
    }
    assert_eq!(big["reasons"], serde_json::json!({}));
    // A total weight beyond the largest float: refused, saying why.
    let over = write(tmp.path(), "over.jsonl", &gold(["1.7976931348623157e308", "1.7976931348623157e308", "1"]));
    let e = stats_err(&["evaluate", "--gold", &over, "--pred", &pred]);
    assert_eq!(
        e,
        format!("error: {over}: the weights add up to more than the largest number a float can hold (1.7976931348623157e308); divide them all by a common factor")
    );
}

// ------------------------------------------------------------------ error lines

#[test]
fn repeated_stratum_in_a_pretty_printed_file_names_the_line_where_it_starts() {
    let tmp = tempfile::tempdir().unwrap();
    let text = PRETTY_DUPLICATE;
    let file = write(tmp.path(), "strata.json", text);
    assert_eq!(stats_err(&["allocate", &file]), format!("error: {file}:9: stratum \"a\" appears twice (first on line 4)"));
    // The same for the allocation given to `sample`.
    let alloc = write(tmp.path(), "alloc.json", &text.replace("\"production\"", "\"allocated\"").replace(",\n      \"available\": 5", ""));
    let pool = write(tmp.path(), "pool.jsonl", "{\"item\": 1, \"stratum\": \"a\"}\n");
    assert_eq!(
        stats_err(&["sample", "--allocation", &alloc, "--pool", &pool]),
        format!("error: {alloc}:8: stratum \"a\" appears twice (first on line 4)")
    );
}

/// Floors that add up to more than n: refused with the sum and what to change, nothing printed.
#[test]
fn allocate_refuses_floors_above_n() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(
        tmp.path(),
        "floors.json",
        r#"{"n": 30, "min_per_stratum": 10, "strata": [
            {"key": "a", "production": 50, "available": 100}, {"key": "b", "production": 30, "available": 100},
            {"key": "c", "production": 15, "available": 100}, {"key": "d", "production": 5, "available": 100}]}"#,
    );
    assert_eq!(
        stats_err(&["allocate", &file]),
        format!(
            "error: {file}: the minimum of 10 per stratum needs 40 items over 4 strata (each stratum's minimum \
             or all its items, if fewer), more than the dev-set size 30; lower the minimum or raise the size"
        )
    );
}
