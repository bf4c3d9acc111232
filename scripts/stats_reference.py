#!/usr/bin/env python3
"""Compute the expected values of the statistics cross-checks with trusted implementations.

Run once (outputs are committed under tests/data/stats/); the Rust test
server/tests/stats_crosscheck.rs compares the statistics core against them.

    python3 -m venv /tmp/statsref && /tmp/statsref/bin/pip install -r scripts/stats_reference_requirements.txt
    /tmp/statsref/bin/python scripts/stats_reference.py

References: scikit-learn (Cohen's kappa, classification metrics), statsmodels (Fleiss' kappa,
Wilson interval, McNemar), the `krippendorff` package (alpha), crowd-kit (majority vote,
Dawid-Skene), cleanlab (confident learning), SciPy (KL divergence). Where no library
implements a definition (percent agreement, PSI with the 1e-6 zero replacement, Wilson
sample size), the value is computed here with NumPy from the definition, and the case says
so in its "reference" field.
"""

import json
import os
import warnings
from importlib.metadata import version

import numpy as np
import pandas as pd

warnings.filterwarnings("ignore")

import cleanlab  # noqa: E402
import krippendorff  # noqa: E402
from cleanlab.count import compute_confident_joint, estimate_latent, get_confident_thresholds  # noqa: E402
from cleanlab.filter import find_label_issues  # noqa: E402
from crowdkit.aggregation import DawidSkene, MajorityVote  # noqa: E402
from scipy.special import rel_entr  # noqa: E402
from sklearn.metrics import (  # noqa: E402
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)
from statsmodels.stats.contingency_tables import mcnemar  # noqa: E402
from statsmodels.stats.inter_rater import fleiss_kappa  # noqa: E402
from statsmodels.stats.proportion import proportion_confint  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "stats")
VERSIONS = {
    p: version(p)
    for p in ["numpy", "scipy", "pandas", "scikit-learn", "statsmodels", "krippendorff", "crowd-kit", "cleanlab"]
}


def write(name, cases):
    os.makedirs(OUT, exist_ok=True)
    path = os.path.join(OUT, name)
    with open(path, "w") as f:
        json.dump({"generated_by": "scripts/stats_reference.py", "versions": VERSIONS, "cases": cases}, f, indent=1)
        f.write("\n")
    print(f"wrote {path} ({len(cases)} cases)")


def num(x):
    """A float for JSON, or None for NaN (an undefined value)."""
    x = float(x)
    return None if np.isnan(x) else x


# ---------------------------------------------------------------- agreement


def agreement_case(name, records, labels, levels, numeric):
    """records: [(item, annotator, label_name)], labels: label order (names)."""
    items = sorted({r[0] for r in records}, key=lambda s: (len(s), s))
    annotators = sorted({r[1] for r in records})
    index = {l: i for i, l in enumerate(labels)}
    # Reliability data for `krippendorff`: annotators x items, NaN where missing.
    values = np.array([float(l) for l in labels]) if numeric else np.arange(len(labels), dtype=float)
    data = np.full((len(annotators), len(items)), np.nan)
    for item, ann, lab in records:
        data[annotators.index(ann), items.index(item)] = values[index[lab]]
    domain = values if numeric else np.arange(len(labels), dtype=float)
    alpha = {}
    for level in levels:
        alpha[level] = num(krippendorff.alpha(reliability_data=data, level_of_measurement=level, value_domain=domain))
    # One-vs-rest nominal alpha per label, by the `krippendorff` package on a binary recoding.
    per_label = {}
    for l in labels:
        binary = np.where(np.isnan(data), np.nan, (data == values[index[l]]).astype(float))
        present = binary[~np.isnan(binary)]
        counts = (~np.isnan(binary)).sum(axis=0)
        pairable = binary[:, counts >= 2]
        pv = pairable[~np.isnan(pairable)]
        if len(pv) == 0 or len(set(pv)) < 2:
            per_label[l] = None  # undefined: label never or always used on pairable items
        else:
            per_label[l] = num(krippendorff.alpha(reliability_data=binary, level_of_measurement="nominal", value_domain=[0.0, 1.0]))
        del present
    # Pairwise Cohen's kappa by scikit-learn over the items both rated, with the full label order.
    pairwise = []
    for a in range(len(annotators)):
        for b in range(a + 1, len(annotators)):
            both = ~np.isnan(data[a]) & ~np.isnan(data[b])
            if not both.any():
                continue
            ya = [labels[int(np.where(values == v)[0][0])] for v in data[a][both]]
            yb = [labels[int(np.where(values == v)[0][0])] for v in data[b][both]]
            entry = {"a": annotators[a], "b": annotators[b], "n": int(both.sum())}
            for w, key in [(None, "kappa"), ("linear", "kappa_linear"), ("quadratic", "kappa_quadratic")]:
                entry[key] = num(cohen_kappa_score(ya, yb, labels=labels, weights=w))
            pairwise.append(entry)
    # Fleiss' kappa by statsmodels when every rated item has the same number of ratings.
    counts = (~np.isnan(data)).sum(axis=0)
    rated = counts > 0
    fleiss = None
    if rated.any() and counts[rated].min() == counts[rated].max() and counts[rated].max() >= 2:
        table = np.array([[int((data[:, j] == v).sum()) for v in values] for j in range(len(items)) if rated[j]])
        fleiss = num(fleiss_kappa(table, method="fleiss"))
    # Percent agreement (Fleiss's P-bar over items with >= 2 ratings): NumPy, from the definition.
    shares = []
    for j in range(len(items)):
        col = data[:, j][~np.isnan(data[:, j])]
        m = len(col)
        if m >= 2:
            _, c = np.unique(col, return_counts=True)
            shares.append(float((c * (c - 1)).sum()) / (m * (m - 1)))
    percent = float(np.mean(shares)) if shares else None
    return {
        "name": name,
        "reference": "krippendorff (alpha, per-label alpha), scikit-learn (Cohen), statsmodels (Fleiss); percent agreement: NumPy from the definition",
        "labels": labels,
        "records": [list(r) for r in records],
        "expected": {
            "krippendorff_alpha": alpha,
            "per_label_alpha": per_label,
            "pairwise_cohen_kappa": pairwise,
            "fleiss_kappa": fleiss,
            "percent_agreement": percent,
        },
    }


def random_records(rng, n_items, n_annotators, labels, missing, truth_bias=0.6):
    records = []
    for i in range(n_items):
        truth = rng.integers(len(labels))
        for a in range(n_annotators):
            if rng.random() < missing:
                continue
            if rng.random() < truth_bias:
                lab = truth
            else:
                lab = min(len(labels) - 1, max(0, truth + rng.integers(-1, 2))) if rng.random() < 0.5 else rng.integers(len(labels))
            records.append((f"i{i}", f"ann{a}", labels[lab]))
    return records


def agreement_cases():
    cases = []
    paper = [
        [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
        [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
        [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
        [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
    ]
    records = [(f"u{u + 1}", f"obs{o}", str(v)) for o, row in enumerate(paper) for u, v in enumerate(row) if v is not None]
    cases.append(agreement_case("krippendorff_2011", records, ["1", "2", "3", "4", "5"], ["nominal", "ordinal", "interval", "ratio"], True))

    import pyirr  # only for its copy of Fleiss (1971)'s data (R's irr::diagnoses)

    diag = pd.read_csv(os.path.join(os.path.dirname(pyirr.__file__), "data", "diagnoses.csv")).iloc[:, 1:]
    names = sorted(set(diag.values.ravel()))
    records = [(f"patient{p + 1}", f"rater{r + 1}", diag.iloc[p, r]) for p in range(len(diag)) for r in range(diag.shape[1])]
    cases.append(agreement_case("fleiss_1971", records, names, ["nominal"], False))

    rng = np.random.default_rng(20240601)
    cases.append(agreement_case("two_annotators_ordinal", random_records(rng, 80, 2, ["low", "mid", "high", "top"], 0.1), ["low", "mid", "high", "top"], ["nominal", "ordinal"], False))
    cases.append(agreement_case("five_annotators_missing", random_records(rng, 120, 5, ["cat", "dog", "fox"], 0.35), ["cat", "dog", "fox"], ["nominal", "ordinal"], False))
    cases.append(agreement_case("complete_four_annotators", random_records(rng, 60, 4, ["a", "b", "c", "d", "e"], 0.0), ["a", "b", "c", "d", "e"], ["nominal", "ordinal"], False))
    numeric = ["0.5", "1.5", "3", "7.25", "10"]
    cases.append(agreement_case("numeric_interval_ratio", random_records(rng, 90, 3, numeric, 0.2), numeric, ["nominal", "ordinal", "interval", "ratio"], True))
    return cases


# ---------------------------------------------------------------- aggregation


def aggregation_cases():
    rng = np.random.default_rng(7)
    labels = ["neg", "neu", "pos"]
    n_items, n_workers = 150, 8
    accuracy = rng.uniform(0.45, 0.95, n_workers)
    truth = rng.integers(3, size=n_items)
    rows = []
    for i in range(n_items):
        for w in rng.choice(n_workers, size=rng.integers(3, 6), replace=False):
            lab = truth[i] if rng.random() < accuracy[w] else rng.integers(3)
            rows.append((f"t{i}", f"w{w}", labels[lab]))
    df = pd.DataFrame(rows, columns=["task", "worker", "label"])
    records = [list(r) for r in rows]

    def frame_to_dict(probas):
        return {task: {str(c): float(probas.loc[task, c]) for c in probas.columns} for task in probas.index}

    cases = []
    mv = MajorityVote().fit_predict_proba(df)
    cases.append({"name": "majority_vote", "method": "majority", "reference": "crowd-kit MajorityVote",
                  "labels": labels, "records": records, "expected": {"posteriors": frame_to_dict(mv)}})
    gold = {f"t{i}": labels[truth[i]] for i in range(0, 20)}
    for n_iter, use_gold in [(1, False), (5, False), (40, False), (40, True)]:
        ds = DawidSkene(n_iter=n_iter, tol=-np.inf)
        true_labels = pd.Series(gold) if use_gold else None
        probas = ds.fit_predict_proba(df, true_labels=true_labels)
        errors = {}
        for (worker, given), row in ds.errors_.iterrows():
            for true, p in row.items():
                errors.setdefault(worker, {}).setdefault(str(true), {})[str(given)] = float(p)
        cases.append({
            "name": f"dawid_skene_{n_iter}{'_gold' if use_gold else ''}",
            "method": "dawid-skene",
            "reference": "crowd-kit DawidSkene(n_iter, tol=-inf): n_iter E-steps from majority-vote shares",
            "labels": labels,
            "records": records,
            "max_iter": n_iter,
            "gold": gold if use_gold else {},
            "expected": {
                "posteriors": frame_to_dict(probas),
                "priors": {str(k): float(v) for k, v in ds.priors_.items()},
                "confusion": errors,
            },
        })
    return cases


# ---------------------------------------------------------------- label issues


def label_issue_cases():
    cases = []
    for seed, n, k in [(1, 300, 3), (2, 500, 4), (3, 200, 2)]:
        rng = np.random.default_rng(seed)
        truth = rng.integers(k, size=n)
        logits = rng.normal(0, 1, (n, k))
        logits[np.arange(n), truth] += 2.0
        probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
        given = truth.copy()
        flip = rng.random(n) < 0.15
        given[flip] = rng.integers(k, size=flip.sum())
        ranked = find_label_issues(given, probs, filter_by="prune_by_noise_rate", return_indices_ranked_by="self_confidence", n_jobs=1)
        cj = compute_confident_joint(given, probs, calibrate=True)
        _, noise, _ = estimate_latent(cj, given)
        cases.append({
            "name": f"noisy_{k}_classes_{n}",
            "reference": "cleanlab find_label_issues(prune_by_noise_rate, ranked by self_confidence), compute_confident_joint(calibrate=True), estimate_latent",
            "given": given.tolist(),
            "probs": probs.tolist(),
            "expected": {
                "flagged": ranked.tolist(),
                "thresholds": get_confident_thresholds(given, probs).tolist(),
                "confident_joint": cj.tolist(),
                "noise_matrix": noise.tolist(),
            },
        })
    return cases


# ---------------------------------------------------------------- evaluation


def evaluation_cases():
    rng = np.random.default_rng(11)
    cases = []
    for name, n, k_gold, k_pred, weighted in [("three_labels", 200, 3, 3, False), ("weighted", 150, 4, 4, True),
                                               ("label_only_predicted", 80, 3, 4, False), ("label_only_gold_weighted", 60, 4, 3, True)]:
        gold = rng.integers(k_gold, size=n)
        pred = np.where(rng.random(n) < 0.7, np.minimum(gold, k_pred - 1), rng.integers(k_pred, size=n))
        pred_b = np.where(rng.random(n) < 0.6, np.minimum(gold, k_pred - 1), rng.integers(k_pred, size=n))
        w = rng.uniform(0.1, 3.0, size=n).round(3) if weighted else None
        present = sorted(set(gold) | set(pred))
        p, r, f, s = precision_recall_fscore_support(gold, pred, labels=present, average=None, zero_division=0, sample_weight=w)
        cm = confusion_matrix(gold, pred, labels=present, sample_weight=w)
        table = [[int(((pred == gold) & (pred_b == gold)).sum()), int(((pred == gold) & (pred_b != gold)).sum())],
                 [int(((pred != gold) & (pred_b == gold)).sum()), int(((pred != gold) & (pred_b != gold)).sum())]]
        cases.append({
            "name": name,
            "reference": "scikit-learn (zero_division=0, sample_weight), statsmodels mcnemar(exact=True)",
            "gold": gold.tolist(), "pred": pred.tolist(), "pred_b": pred_b.tolist(),
            "weights": None if w is None else w.tolist(),
            "n_labels": max(k_gold, k_pred),
            "expected": {
                "accuracy": float(accuracy_score(gold, pred, sample_weight=w)),
                "macro_f1": float(f1_score(gold, pred, average="macro", zero_division=0, sample_weight=w)),
                "micro_f1": float(f1_score(gold, pred, average="micro", zero_division=0, sample_weight=w)),
                "weighted_f1": float(f1_score(gold, pred, average="weighted", zero_division=0, sample_weight=w)),
                "per_class": [{"label": int(c), "precision": float(p[i]), "recall": float(r[i]), "f1": float(f[i]), "support": float(s[i])}
                              for i, c in enumerate(present)],
                "confusion": {"labels": [int(c) for c in present], "matrix": cm.astype(float).tolist()},
                "mcnemar_p": float(mcnemar(table, exact=True).pvalue),
            },
        })
    return cases


# ---------------------------------------------------------------- proportions, McNemar, distances


def proportion_cases():
    cases = []
    for k, n, c in [(81, 263, 0.95), (0, 10, 0.95), (10, 10, 0.9), (1, 2, 0.99), (950, 1000, 0.95), (3, 7, 0.8), (123456, 200000, 0.999)]:
        lo, hi = proportion_confint(k, n, alpha=1 - c, method="wilson")
        cases.append({"kind": "interval", "successes": k, "total": n, "confidence": c, "expected": {"lower": float(lo), "upper": float(hi)},
                      "reference": "statsmodels proportion_confint(method='wilson')"})
    for p, h, c in [(0.9, 0.02, 0.95), (0.5, 0.05, 0.95), (0.99, 0.01, 0.95), (0.75, 0.03, 0.9), (0.0, 0.05, 0.95)]:
        ns = np.arange(1, 200000)
        lo, hi = proportion_confint(p * ns, ns, alpha=1 - c, method="wilson")
        n = int(ns[np.argmax((hi - lo) / 2 <= h)])
        cases.append({"kind": "sample_size", "accuracy": p, "half_width": h, "confidence": c, "expected": {"n": n},
                      "reference": "smallest n with statsmodels' Wilson half-width <= h at count = p*n (brute force)"})
    return cases


def mcnemar_cases():
    cases = []
    for b, c in [(1, 9), (5, 5), (0, 0), (0, 12), (37, 61), (480, 530), (12000, 12400)]:
        p = float(mcnemar([[10, b], [c, 10]], exact=True).pvalue)
        cases.append({"only_a_correct": b, "only_b_correct": c, "expected": {"p_value": p}, "reference": "statsmodels mcnemar(exact=True)"})
    return cases


def distance_cases():
    cases = []
    rng = np.random.default_rng(5)
    for i in range(4):
        k = int(rng.integers(2, 8))
        p = rng.integers(1, 100, size=k).astype(float)
        q = rng.integers(1, 100, size=k).astype(float)
        if i == 3:
            p[0] = 0.0  # a zero: KL and PSI use the 1e-6 replacement (NumPy, from the definition)
        pn, qn = p / p.sum(), q / q.sum()
        pl, ql = np.where(pn == 0, 1e-6, pn), np.where(qn == 0, 1e-6, qn)
        kl = float(rel_entr(pn, qn).sum()) if i < 3 else float((pl * np.log(pl / ql)).sum())
        cases.append({
            "p": p.tolist(), "q": q.tolist(),
            "reference": "TVD and PSI: NumPy from the definition; KL: scipy.special.rel_entr" if i < 3 else "NumPy from the definition (zero replaced by 1e-6)",
            "expected": {"tvd": float(0.5 * np.abs(pn - qn).sum()), "kl": kl, "psi": float(((pl - ql) * np.log(pl / ql)).sum())},
        })
    return cases


if __name__ == "__main__":
    write("agreement.json", agreement_cases())
    write("aggregation.json", aggregation_cases())
    write("label_issues.json", label_issue_cases())
    write("evaluation.json", evaluation_cases())
    write("proportion.json", proportion_cases())
    write("mcnemar.json", mcnemar_cases())
    write("distance.json", distance_cases())
