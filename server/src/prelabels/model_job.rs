//! The built-in model's training job (job kind [`KIND`], run by `crate::jobs`): train on the
//! project's human final labels, measure it held out, score every item without a final label,
//! and flag the labels that look wrong.
//!
//! Steps, each reading and writing the database in chunks so a million items fit in bounded
//! memory (only the labeled items' features are held, and one chunk of the others):
//! 1. The final labels (`review::final_label`: adjudicated > gold > consensus). Never the
//!    auto-accepted labels or any pre-label: a model trained on its own (or another model's)
//!    guesses would only learn to agree with them.
//! 2. The labeled items' texts (`store::model::labeled_texts`, text or ""), featurized.
//! 3. k-fold cross-validation (`model::cross_validate`): accuracy with a Wilson interval, the
//!    majority-class baseline, and the out-of-fold probabilities that confident learning
//!    (`stats::label_errors`) turns into the `label_error` review queue, most likely first.
//! 4. The model trained on every labeled item scores the unlabeled ones, in one walk over the
//!    corpus as the rules read it (`store::prelabel_rules::corpus_chunk`), chunk by chunk; each
//!    gets the top label and its probability as a pre-label of the `builtin` source, and the
//!    least certain ones (smallest margin between the two likeliest labels) an uncertainty rank
//!    for the labeling stream when the project asks for that order.
//! 5. `store::model::finish_run` swaps the run in; auto-accept and the disagreement queue
//!    follow the new scores as after an import.
//!
//! A restart redoes the run from the start (the kind is resumable): its writes are upserts
//! stamped with the run's start, and nothing older is dropped before step 5.
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use anyhow::{anyhow, bail, Context};
use app::api_types::{JobInfo, LabelKind, ModelLabelCount, ModelRun, ModelStatus};
use serde_json::json;

use super::share;
use super::model::{argmax, cross_validate_and_train, featurize, Features, Model, TrainConfig};
use crate::jobs::JobCtx;
use crate::stats::label_errors::confident_learning;
use crate::store::model::{self as store, NewRun};
use crate::store::prelabel_rules::{corpus_chunk, final_label_inputs, CORPUS_CHUNK};
use crate::store::{now_ms, Db};

/// The job kind's name in the `jobs` table.
pub const KIND: &str = "builtin_model";
/// Cross-validation folds.
pub const FOLDS: usize = 5;
/// Unlabeled items given an uncertainty rank per run: the head of the stream until the next
/// run; a labeling team gets through far fewer between two retrains.
pub const RANKED: usize = 5_000;

/// One label per labeled item, as label codes: items whose final label is not exactly one of
/// the project's labels are left out.
async fn final_codes(db: &Db, project_id: i64, labels: &[String]) -> anyhow::Result<HashMap<i64, usize>> {
    let mut out = HashMap::new();
    for (item, decision, gold, consensus, n, k) in final_label_inputs(db, project_id).await? {
        let parse = |s: Option<String>| crate::review::parse_labels(s.as_deref());
        let f = crate::review::final_label(parse(decision), parse(gold), parse(consensus), n, k);
        if let Some([name]) = f.labels.as_deref() {
            if let Some(code) = labels.iter().position(|l| l == name) {
                out.insert(item, code);
            }
        }
    }
    Ok(out)
}

/// The gap between the two likeliest labels: small means unsure.
pub fn margin(p: &[f64]) -> f64 {
    let (mut a, mut b) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    for &v in p {
        if v > a {
            (a, b) = (v, a);
        } else if v > b {
            b = v;
        }
    }
    if b.is_finite() {
        a - b
    } else {
        1.0
    }
}

/// The `cap` items of smallest margin seen so far (ties: the smaller item id first).
pub struct LeastCertain {
    cap: usize,
    heap: BinaryHeap<(OrdF64, i64)>,
}

#[derive(PartialEq, PartialOrd, Clone, Copy)]
struct OrdF64(f64);
impl Eq for OrdF64 {}
impl Ord for OrdF64 {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0)
    }
}

impl LeastCertain {
    pub fn new(cap: usize) -> Self {
        LeastCertain { cap, heap: BinaryHeap::with_capacity(cap + 1) }
    }

    pub fn push(&mut self, item: i64, margin: f64) {
        if self.cap == 0 {
            return;
        }
        self.heap.push((OrdF64(margin), item));
        if self.heap.len() > self.cap {
            self.heap.pop(); // the most certain of them
        }
    }

    /// Item ids, least certain first.
    pub fn into_ranked(self) -> Vec<i64> {
        self.heap.into_sorted_vec().into_iter().map(|(_, item)| item).collect()
    }
}

/// What the cross-validation and the label-error search found, before anything is written.
struct Trained {
    model: Arc<Model>,
    n: u64,
    correct: u64,
    majority: u64,
    counts: Vec<u64>,
    /// (item, detail of its `label_error` entry), most likely mislabeled first.
    flagged: Vec<(i64, serde_json::Value)>,
}

/// Cross-validation, confident learning and the final fit: CPU only.
fn fit(examples: &[(i64, Features, usize)], labels: &[String], cfg: &TrainConfig) -> anyhow::Result<Trained> {
    let c = labels.len();
    let pairs: Vec<(&Features, usize)> = examples.iter().map(|(_, f, y)| (f, *y)).collect();
    let mut counts = vec![0u64; c];
    pairs.iter().for_each(|(_, y)| counts[*y] += 1);
    if counts.iter().filter(|n| **n > 0).count() < 2 {
        bail!("the built-in model needs human final labels of at least two different labels; there are {} labeled items", pairs.len());
    }
    let (cv, model) = cross_validate_and_train(&pairs, c, FOLDS, cfg).map_err(|u| anyhow!("{u}"))?;
    let given: Vec<usize> = pairs.iter().map(|(_, y)| *y).collect();
    let cl = confident_learning(&given, &cv.out_of_fold, c).map_err(|u| anyhow!("{u}"))?;
    let flagged = cl
        .flagged
        .iter()
        .enumerate()
        .map(|(rank, &i)| {
            let p = &cv.out_of_fold[i * c..(i + 1) * c];
            let guess = argmax(p);
            let detail = json!({
                "given": labels[given[i]],
                "suggested": labels[guess],
                "probability": p[guess],
                "given_probability": p[given[i]],
                "rank": rank + 1,
            });
            (examples[i].0, detail)
        })
        .collect();
    Ok(Trained {
        model: Arc::new(model),
        n: cv.n,
        correct: cv.correct,
        majority: counts.iter().copied().max().unwrap_or(0),
        counts,
        flagged,
    })
}

/// Worker threads that score one chunk of items. Two: the machine the target is stated for
/// has two cores, and at nice 19 ([`crate::agreement::low_priority`]) they only take what the
/// labelers' requests leave.
const SCORING_THREADS: usize = 2;

/// The project's visible items in id order, one `CORPUS_CHUNK` at a time: the one walk over
/// the corpus a run makes (scoring).
struct Corpus<'a> {
    db: &'a Db,
    project_id: i64,
    visible_max: i64,
    after: i64,
    done: bool,
}

impl<'a> Corpus<'a> {
    fn new(db: &'a Db, project_id: i64, visible_max: i64) -> Self {
        Corpus { db, project_id, visible_max, after: i64::MIN, done: false }
    }

    /// The next chunk of (id, text, meta), or None after the last.
    async fn next_chunk(&mut self) -> anyhow::Result<Option<Vec<(i64, Option<String>, String)>>> {
        if self.done {
            return Ok(None);
        }
        let rows = corpus_chunk(self.db, self.project_id, self.after, self.visible_max, CORPUS_CHUNK).await?;
        self.done = (rows.len() as i64) < CORPUS_CHUNK;
        match rows.last() {
            Some(last) => {
                self.after = last.0;
                Ok(Some(rows))
            }
            None => Ok(None),
        }
    }
}

/// One scored item: (item, labels JSON, probability of the top label, margin).
type Scored = (i64, String, f64, f64);

/// Scores the items of a chunk that have no final label, split over [`SCORING_THREADS`]
/// scoped threads (they inherit the calling thread's priority); the result is in chunk order.
fn score_chunk(rows: Vec<(i64, Option<String>, String)>, finals: &HashMap<i64, usize>, model: &Model, label_json: &[String]) -> Vec<Scored> {
    let todo: Vec<(i64, Option<String>)> =
        rows.into_iter().filter(|(id, _, _)| !finals.contains_key(id)).map(|(id, text, _)| (id, text)).collect();
    let score = |part: &[(i64, Option<String>)]| -> Vec<Scored> {
        part.iter()
            .map(|(id, text)| {
                let p = model.predict(text.as_deref().unwrap_or(""));
                let top = argmax(&p);
                (*id, label_json[top].clone(), p[top], margin(&p))
            })
            .collect()
    };
    if todo.len() < 2 * SCORING_THREADS {
        return score(&todo);
    }
    let per = todo.len().div_ceil(SCORING_THREADS);
    std::thread::scope(|s| {
        let parts: Vec<_> = todo.chunks(per).map(|part| s.spawn(move || score(part))).collect();
        parts.into_iter().flat_map(|h| h.join().expect("a scoring thread panicked")).collect()
    })
}

/// A reader connection of the run's own ([`crate::store::agreement::private_reader`]), opened
/// from a nice-19 thread so that on SQLite the connection's worker thread, which steps the
/// corpus' million rows, inherits the low priority (as the consensus refresh's reads do).
async fn low_priority_reader(db: &Db) -> anyhow::Result<Db> {
    let (db, rt) = (db.clone(), tokio::runtime::Handle::current());
    Ok(crate::agreement::low_priority(move || rt.block_on(crate::store::agreement::private_reader(&db))).await??)
}

/// Runs one training of project `project_id`'s built-in model; the result text is a summary.
///
/// The CPU work (featurizing, cross-validation, fitting, scoring) runs on nice-19 threads and
/// the corpus is read on a connection of the run's own, also at nice 19: labelers' requests get
/// the cores whenever they want them (issue 10: a retrain may slow `next` by 20% at most).
pub async fn run(ctx: &JobCtx, project_id: i64, job_id: i64) -> anyhow::Result<String> {
    let reader = low_priority_reader(&ctx.db).await.context("opening the run's reader")?;
    let out = run_with(ctx, &reader, project_id, job_id).await;
    crate::store::agreement::close_private_reader(reader).await;
    out
}

async fn run_with(ctx: &JobCtx, reader: &Db, project_id: i64, job_id: i64) -> anyhow::Result<String> {
    use crate::agreement::low_priority;
    let db = &ctx.db;
    let stamp = now_ms();
    let project = crate::store::projects::get_project(db, project_id).await.context("reading the project")?.project;
    if project.kind == LabelKind::Multi {
        bail!("the built-in model classifies single-label projects only");
    }
    let labels: Vec<String> = project.labels.iter().map(|l| l.name.clone()).collect();
    let settings = store::settings(db, project_id).await?;
    let signal = store::label_signal(db, project_id).await?;
    let (visible_max, total_items) =
        crate::store::devsets::pool_version(db, project_id).await?.ok_or_else(|| anyhow!("no project {project_id}"))?;
    let finals = Arc::new(final_codes(db, project_id, &labels).await?);
    if finals.len() < FOLDS {
        bail!("the built-in model needs at least {FOLDS} items with a human final label; there are {}", finals.len());
    }
    let cfg = TrainConfig::default();
    // Progress in items: read the labeled ones, train (counted as one pass), score the rest.
    let total = total_items + 2 * finals.len() as i64;
    let mut done = 0i64;
    ctx.progress(done, total).await?;

    // Step 2: the labeled items' features, in id order (the folds' deal depends on the order).
    let mut ids: Vec<i64> = finals.keys().copied().collect();
    ids.sort_unstable();
    let texts = store::labeled_texts(reader, project_id, visible_max, &ids).await?;
    drop(ids);
    let f = finals.clone();
    let examples: Vec<(i64, Features, usize)> = low_priority(move || {
        texts.into_iter().map(|(id, text)| (id, featurize(text.as_deref().unwrap_or(""), &cfg.features), f[&id])).collect::<Vec<_>>()
    })
    .await?;
    done += finals.len() as i64;
    ctx.progress(done, total).await?;

    // Step 3: held-out measure, label errors, final fit.
    ctx.check_cancelled()?;
    let labels_for_fit = labels.clone();
    let trained = low_priority(move || fit(&examples, &labels_for_fit, &cfg)).await??;
    done += finals.len() as i64;
    ctx.progress(done, total).await?;

    // Step 4: score the unlabeled items.
    let source = store::ensure_source(db, project_id).await?;
    let label_json: Arc<Vec<String>> = Arc::new(labels.iter().map(|l| json!([l]).to_string()).collect());
    let mut least = LeastCertain::new(if settings.uncertainty_order { RANKED } else { 0 });
    let mut scored = 0i64;
    let mut corpus = Corpus::new(reader, project_id, visible_max);
    while let Some(rows) = corpus.next_chunk().await? {
        ctx.check_cancelled()?;
        done += rows.len() as i64;
        let (f, model, names) = (finals.clone(), trained.model.clone(), label_json.clone());
        let out = low_priority(move || score_chunk(rows, &f, &model, &names)).await?;
        for (id, _, _, m) in &out {
            least.push(*id, *m);
        }
        scored += out.len() as i64;
        let rows: Vec<(i64, String, f64)> = out.into_iter().map(|(id, l, p, _)| (id, l, p)).collect();
        store::write_scores(db, project_id, source, stamp, &rows).await?;
        ctx.progress(done, total).await?;
    }

    // Step 5.
    ctx.check_cancelled()?;
    let label_counts: serde_json::Map<String, serde_json::Value> =
        labels.iter().zip(&trained.counts).map(|(l, n)| (l.clone(), json!(n))).collect();
    let flagged = trained.flagged.len();
    let run_id = store::finish_run(
        db,
        project_id,
        source,
        stamp,
        NewRun {
            job_id,
            label_count: trained.n as i64,
            folds: FOLDS as i64,
            cv_correct: trained.correct as i64,
            majority: trained.majority as i64,
            scored,
            label_counts: serde_json::Value::Object(label_counts),
            label_signal: signal,
            ranked: least.into_ranked(),
            flagged: trained.flagged,
        },
    )
    .await?;
    crate::store::prelabels::apply_auto_accept(db, project_id).await?;
    crate::store::prelabels::queue_disagreements(db, project_id).await?;
    Ok(json!({
        "run": run_id, "n_train": trained.n, "cv_correct": trained.correct, "scored": scored, "flagged": flagged
    })
    .to_string())
}

/// What a training job's parameters record: the label signal when it was asked for, and
/// whether a lead asked ("manual") or the runner did ("auto").
pub fn job_params(signal: i64, trigger: &str) -> String {
    json!({"signal": signal, "trigger": trigger}).to_string()
}

fn params_signal(params: &str) -> Option<i64> {
    serde_json::from_str::<serde_json::Value>(params).ok()?.get("signal")?.as_i64()
}

/// Whether a project with the model on is due for an automatic training: `retrain_every` new
/// human final labels since the last run, counted from the last failed attempt when that is
/// newer (so a training that cannot succeed, e.g. one label only, is not retried every few
/// seconds but after another `retrain_every` labels).
pub fn due(signal: i64, retrain_every: i64, last_run_signal: Option<i64>, failed_at_signal: Option<i64>) -> bool {
    let base = last_run_signal.unwrap_or(0).max(failed_at_signal.unwrap_or(i64::MIN));
    signal - base >= retrain_every.max(1)
}

/// Queues a training for every project whose built-in model is on and due ([`due`]), unless
/// one is already queued or running. Called from the job runner's periodic side, never from a
/// labeling request. Returns the jobs queued.
pub async fn enqueue_due(db: &Db) -> anyhow::Result<usize> {
    let mut queued = 0;
    for (project_id, every) in store::enabled_projects(db).await? {
        let every = if every > 0 { every } else { app::api_types::default_retrain_every() };
        let latest = crate::store::jobs::latest(db, KIND, project_id).await?;
        if latest.as_ref().is_some_and(|j| matches!(j.state.as_str(), "queued" | "running")) {
            continue;
        }
        let failed_at = latest.as_ref().filter(|j| j.state == "failed").and_then(|j| params_signal(&j.params));
        let signal = store::label_signal(db, project_id).await?;
        let last = store::last_run(db, project_id).await?.map(|r| r.label_signal);
        if due(signal, every, last, failed_at) {
            crate::store::jobs::enqueue(db, KIND, Some(project_id), &job_params(signal, "auto")).await?;
            queued += 1;
        }
    }
    Ok(queued)
}

/// The model's page: settings, the last run with its figures, the newest job, the labels since.
pub async fn status(db: &Db, project_id: i64, labels: &[String]) -> anyhow::Result<ModelStatus> {
    let settings = store::settings(db, project_id).await?;
    let run = store::last_run(db, project_id).await?;
    let job = crate::store::jobs::latest(db, KIND, project_id).await?.map(JobInfo::from);
    let signal = store::label_signal(db, project_id).await?;
    let labels_since_last_run = (signal - run.as_ref().map_or(0, |r| r.label_signal)).max(0);
    let source_id = run.as_ref().map(|r| r.source_id);
    Ok(ModelStatus { settings, last_run: run.map(|r| run_view(r, labels)), job, labels_since_last_run, source_id })
}

fn run_view(r: store::RunRow, labels: &[String]) -> ModelRun {
    let counts: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&r.label_counts).unwrap_or_default();
    // The project's label order, then any label renamed away since the run.
    let mut label_counts: Vec<ModelLabelCount> = labels
        .iter()
        .filter_map(|l| counts.get(l).and_then(|n| n.as_i64()).map(|n| ModelLabelCount { label: l.clone(), n }))
        .collect();
    for (l, n) in &counts {
        if !labels.contains(l) {
            label_counts.push(ModelLabelCount { label: l.clone(), n: n.as_i64().unwrap_or(0) });
        }
    }
    ModelRun {
        id: r.id,
        trained_at: r.trained_at,
        n_train: r.label_count,
        label_counts,
        folds: r.folds,
        cv_accuracy: share(r.cv_correct, r.label_count),
        baseline_accuracy: share(r.majority, r.label_count),
        items_scored: r.scored,
        flagged: r.flagged,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn margin_is_the_gap_between_the_two_likeliest() {
        assert!((margin(&[0.2, 0.5, 0.3]) - 0.2).abs() < 1e-12);
        assert!((margin(&[0.5, 0.5]) - 0.0).abs() < 1e-12);
        assert_eq!(margin(&[1.0]), 1.0);
    }

    #[test]
    fn least_certain_keeps_the_smallest_margins_in_order() {
        let mut l = LeastCertain::new(3);
        for (item, m) in [(1, 0.9), (2, 0.1), (3, 0.5), (4, 0.05), (5, 0.7), (6, 0.1)] {
            l.push(item, m);
        }
        assert_eq!(l.into_ranked(), vec![4, 2, 6]);
        let mut none = LeastCertain::new(0);
        none.push(1, 0.0);
        assert!(none.into_ranked().is_empty());
    }

    #[test]
    fn due_counts_from_the_last_run_or_the_last_failure() {
        assert!(!due(199, 200, None, None));
        assert!(due(200, 200, None, None));
        assert!(!due(350, 200, Some(200), None));
        assert!(due(400, 200, Some(200), None));
        assert!(!due(400, 200, Some(200), Some(300)), "a failure at 300 waits for 500");
        assert!(due(500, 200, Some(200), Some(300)));
    }
}
