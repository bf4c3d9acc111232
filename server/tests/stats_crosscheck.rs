//! Cross-checks of the statistics core against trusted implementations: the expected values in
//! tests/data/stats were computed once by scripts/stats_reference.py with scikit-learn,
//! statsmodels, the `krippendorff` package, crowd-kit and cleanlab (versions recorded in each
//! file). Values must agree to 1e-9 wherever the definitions are the same; the differences in
//! definition are noted where they are handled.

use server::stats::agreement::{per_label_alpha, percent_agreement};
use server::stats::aggregate::{majority_vote, Aggregation};
use server::stats::dawid_skene::{dawid_skene, DawidSkeneOptions};
use server::stats::distance::distribution_distance;
use server::stats::evaluation::evaluate;
use server::stats::kappa::{cohen_kappa, fleiss_kappa, pairwise_cohen_kappa, KappaWeights};
use server::stats::krippendorff::krippendorff_alpha;
use server::stats::label_errors::confident_learning;
use server::stats::proportion::{wilson_interval, wilson_sample_size};
use server::stats::significance::mcnemar_exact;
use server::stats::{LabelSet, Level, Ratings, RatingsBuilder};
use serde_json::Value;

const TOLERANCE: f64 = 1e-9;

fn cases(file: &str) -> Vec<Value> {
    let path = format!("{}/../tests/data/stats/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let doc: Value = serde_json::from_str(&text).unwrap();
    doc["cases"].as_array().unwrap().clone()
}

fn close(what: &str, got: f64, expected: f64) {
    assert!((got - expected).abs() <= TOLERANCE, "{what}: got {got}, expected {expected} (diff {:e})", got - expected);
}

fn f(v: &Value) -> f64 {
    v.as_f64().unwrap_or_else(|| panic!("not a number: {v}"))
}

fn strings(v: &Value) -> Vec<String> {
    v.as_array().unwrap().iter().map(|s| s.as_str().unwrap().to_string()).collect()
}

fn ratings(case: &Value) -> Ratings {
    let labels = LabelSet::new(strings(&case["labels"])).unwrap();
    let mut b = RatingsBuilder::new(Some(labels));
    for r in case["records"].as_array().unwrap() {
        let r = strings(r);
        b.push(&r[0], &r[1], &r[2]).unwrap();
    }
    b.build().unwrap()
}

fn level(name: &str) -> Level {
    match name {
        "nominal" => Level::Nominal,
        "ordinal" => Level::Ordinal,
        "interval" => Level::Interval,
        _ => Level::Ratio,
    }
}

#[test]
fn agreement_matches_krippendorff_sklearn_and_statsmodels() {
    for case in cases("agreement.json") {
        let name = case["name"].as_str().unwrap();
        let r = ratings(&case);
        let expected = &case["expected"];
        for (lvl, value) in expected["krippendorff_alpha"].as_object().unwrap() {
            let got = krippendorff_alpha(&r, level(lvl)).unwrap();
            close(&format!("{name} alpha {lvl}"), got, f(value));
        }
        let per_label = per_label_alpha(&r);
        for (label, value) in expected["per_label_alpha"].as_object().unwrap() {
            let code = r.labels().index_of(label).unwrap();
            match (value.as_f64(), &per_label[code].alpha) {
                (Some(e), Ok(g)) => close(&format!("{name} per-label alpha {label}"), *g, e),
                (None, Err(_)) => {}
                (e, g) => panic!("{name} per-label alpha {label}: expected {e:?}, got {g:?}"),
            }
        }
        let pairwise = pairwise_cohen_kappa(&r, KappaWeights::Unweighted);
        let expected_pairs = expected["pairwise_cohen_kappa"].as_array().unwrap();
        assert_eq!(pairwise.len(), expected_pairs.len(), "{name}: number of annotator pairs");
        for e in expected_pairs {
            let code = |key: &str| r.annotators().iter().position(|a| a == e[key].as_str().unwrap()).unwrap();
            let (a, b) = (code("a"), code("b"));
            let got = pairwise.iter().find(|p| (p.a, p.b) == (a.min(b), a.max(b))).unwrap();
            assert_eq!(got.n as u64, e["n"].as_u64().unwrap(), "{name}: n of pair");
            for (key, weights) in
                [("kappa", KappaWeights::Unweighted), ("kappa_linear", KappaWeights::Linear), ("kappa_quadratic", KappaWeights::Quadratic)]
            {
                let got = cohen_kappa(&r, a, b, weights).kappa;
                match (e[key].as_f64(), got) {
                    (Some(x), Ok(g)) => close(&format!("{name} {key} {a}-{b}"), g, x),
                    // scikit-learn returns NaN where chance disagreement is zero; we say why.
                    (None, Err(_)) => {}
                    (x, g) => panic!("{name} {key}: expected {x:?}, got {g:?}"),
                }
            }
        }
        match (expected["fleiss_kappa"].as_f64(), fleiss_kappa(&r)) {
            (Some(e), Ok(g)) => close(&format!("{name} fleiss"), g, e),
            (None, Err(_)) => {}
            (e, g) => panic!("{name} fleiss: expected {e:?}, got {g:?}"),
        }
        close(&format!("{name} percent agreement"), percent_agreement(&r).unwrap(), f(&expected["percent_agreement"]));
    }
}

fn check_aggregation(name: &str, r: &Ratings, got: &Aggregation, expected: &Value) {
    for (item, posterior) in expected["posteriors"].as_object().unwrap() {
        let i = r.item_names().position(|x| x == item.as_str()).unwrap();
        for (label, p) in posterior.as_object().unwrap() {
            let c = r.labels().index_of(label).unwrap();
            close(&format!("{name} posterior {item} {label}"), got.posterior(i)[c], f(p));
        }
    }
    if let Some(priors) = expected.get("priors") {
        for (label, p) in priors.as_object().unwrap() {
            close(&format!("{name} prior {label}"), got.priors[r.labels().index_of(label).unwrap()], f(p));
        }
    }
    if let Some(confusion) = expected.get("confusion") {
        let l = r.n_labels();
        for (worker, rows) in confusion.as_object().unwrap() {
            let a = r.annotators().iter().position(|x| x == worker).unwrap();
            let m = got.confusion(a);
            for (truth, row) in rows.as_object().unwrap() {
                let t = r.labels().index_of(truth).unwrap();
                // crowd-kit lists only the labels the worker gave; the others are 0 here.
                let mut listed = 0.0;
                for (given, p) in row.as_object().unwrap() {
                    let g = r.labels().index_of(given).unwrap();
                    close(&format!("{name} confusion {worker} {truth}->{given}"), m[t * l + g], f(p));
                    listed += m[t * l + g];
                }
                close(&format!("{name} confusion {worker} {truth} unlisted"), listed, 1.0);
            }
        }
    }
}

#[test]
fn aggregation_matches_crowd_kit() {
    // crowd-kit clips error rates and priors at 1e-10 before taking logs; here zeros stay zeros.
    // On this data no rate is that small, so the two agree to the tolerance.
    for case in cases("aggregation.json") {
        let name = case["name"].as_str().unwrap();
        let r = ratings(&case);
        let got = if case["method"] == "majority" {
            majority_vote(&r)
        } else {
            let gold = case["gold"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(item, label)| {
                    (r.item_names().position(|x| x == item.as_str()).unwrap(), r.labels().index_of(label.as_str().unwrap()).unwrap())
                })
                .collect();
            // tol = -inf: run exactly max_iter iterations, as crowd-kit does with tol=-inf.
            let options = DawidSkeneOptions { max_iter: case["max_iter"].as_u64().unwrap() as usize, tol: f64::NEG_INFINITY, gold };
            dawid_skene(&r, &options).unwrap()
        };
        check_aggregation(name, &r, &got, &case["expected"]);
    }
}

#[test]
fn label_issues_match_cleanlab() {
    for case in cases("label_issues.json") {
        let name = case["name"].as_str().unwrap();
        let given: Vec<usize> = case["given"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        let rows = case["probs"].as_array().unwrap();
        let k = rows[0].as_array().unwrap().len();
        let probs: Vec<f64> = rows.iter().flat_map(|r| r.as_array().unwrap().iter().map(f)).collect();
        let cl = confident_learning(&given, &probs, k).unwrap();
        let e = &case["expected"];
        let flagged: Vec<usize> = e["flagged"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        assert_eq!(cl.flagged, flagged, "{name}: flagged items and their order");
        for (j, t) in e["thresholds"].as_array().unwrap().iter().enumerate() {
            close(&format!("{name} threshold {j}"), cl.thresholds[j], f(t));
        }
        for (g, row) in e["confident_joint"].as_array().unwrap().iter().enumerate() {
            for (t, x) in row.as_array().unwrap().iter().enumerate() {
                assert_eq!(cl.confident_joint[g][t], x.as_u64().unwrap(), "{name}: confident joint [{g}][{t}]");
            }
        }
        for (g, row) in e["noise_matrix"].as_array().unwrap().iter().enumerate() {
            for (t, x) in row.as_array().unwrap().iter().enumerate() {
                close(&format!("{name} noise [{g}][{t}]"), cl.noise_matrix[g][t], f(x));
            }
        }
    }
}

#[test]
fn evaluation_matches_sklearn_and_statsmodels() {
    for case in cases("evaluation.json") {
        let name = case["name"].as_str().unwrap();
        let codes = |key: &str| -> Vec<usize> { case[key].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect() };
        let (gold, pred, pred_b) = (codes("gold"), codes("pred"), codes("pred_b"));
        let weights: Option<Vec<f64>> = case["weights"].as_array().map(|w| w.iter().map(f).collect());
        let n_labels = case["n_labels"].as_u64().unwrap() as usize;
        let e = evaluate(&gold, &pred, weights.as_deref(), n_labels).unwrap();
        let x = &case["expected"];
        close(&format!("{name} accuracy"), e.accuracy.clone().unwrap(), f(&x["accuracy"]));
        close(&format!("{name} macro f1"), e.macro_f1.clone().unwrap(), f(&x["macro_f1"]));
        close(&format!("{name} micro f1"), e.micro_f1.clone().unwrap(), f(&x["micro_f1"]));
        close(&format!("{name} weighted f1"), e.weighted_f1.clone().unwrap(), f(&x["weighted_f1"]));
        let per_class = x["per_class"].as_array().unwrap();
        assert_eq!(e.per_class.len(), per_class.len(), "{name}: labels present");
        for (got, want) in e.per_class.iter().zip(per_class) {
            assert_eq!(got.label as u64, want["label"].as_u64().unwrap());
            for (key, value) in [("precision", got.precision), ("recall", got.recall), ("f1", got.f1), ("support", got.support)] {
                close(&format!("{name} {key} of {}", got.label), value, f(&want[key]));
            }
        }
        let labels: Vec<usize> = x["confusion"]["labels"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect();
        for (i, row) in x["confusion"]["matrix"].as_array().unwrap().iter().enumerate() {
            for (j, v) in row.as_array().unwrap().iter().enumerate() {
                close(&format!("{name} confusion"), e.confusion[labels[i]][labels[j]], f(v));
            }
        }
        let correct = |p: &[usize]| p.iter().zip(&gold).map(|(a, b)| a == b).collect::<Vec<_>>();
        let m = mcnemar_exact(&correct(&pred), &correct(&pred_b)).unwrap();
        close(&format!("{name} mcnemar"), m.p_value, f(&x["mcnemar_p"]));
    }
}

#[test]
fn wilson_interval_and_sample_size_match_statsmodels() {
    for case in cases("proportion.json") {
        let c = f(&case["confidence"]);
        let e = &case["expected"];
        if case["kind"] == "interval" {
            let (k, n) = (case["successes"].as_u64().unwrap(), case["total"].as_u64().unwrap());
            let ci = wilson_interval(k, n, c).unwrap();
            close(&format!("wilson {k}/{n} lower"), ci.lower, f(&e["lower"]));
            close(&format!("wilson {k}/{n} upper"), ci.upper, f(&e["upper"]));
        } else {
            let (p, h) = (f(&case["accuracy"]), f(&case["half_width"]));
            assert_eq!(wilson_sample_size(p, h, c).unwrap(), e["n"].as_u64().unwrap(), "sample size p={p} h={h} c={c}");
        }
    }
}

#[test]
fn mcnemar_exact_matches_statsmodels() {
    for case in cases("mcnemar.json") {
        let (b, c) = (case["only_a_correct"].as_u64().unwrap() as usize, case["only_b_correct"].as_u64().unwrap() as usize);
        let mut a_correct = vec![true; b];
        a_correct.extend(vec![false; c]);
        let b_correct: Vec<bool> = a_correct.iter().map(|x| !x).collect();
        let got = mcnemar_exact(&a_correct, &b_correct).unwrap().p_value;
        let want = f(&case["expected"]["p_value"]);
        // Relative: the p-values of the large tables are tiny.
        assert!((got - want).abs() <= TOLERANCE * want.max(1e-300), "mcnemar b={b} c={c}: got {got:e}, expected {want:e}");
    }
}

#[test]
fn distances_match_scipy_and_the_definition() {
    for case in cases("distance.json") {
        let vec = |key: &str| -> Vec<f64> { case[key].as_array().unwrap().iter().map(f).collect() };
        let d = distribution_distance(&vec("p"), &vec("q")).unwrap();
        let e = &case["expected"];
        close("tvd", d.tvd, f(&e["tvd"]));
        close("kl", d.kl, f(&e["kl"]));
        close("psi", d.psi, f(&e["psi"]));
    }
}
