//! The numbers of the agreement dashboard and the consensus rows, from a [`Dataset`], in one
//! pure function: [`compute`]. Every statistic is the statistics core's (`crate::stats`);
//! this module only chooses the units, names things and packs the wire types.
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use app::api_types::{
    AgreementDashboard, AlphaPoint, Interval, LabelAgreementRow, LabelConfusion, LabelerAgreement, PairCell, SliceRow,
    StatValue,
};
use serde::{Deserialize, Serialize};

use super::dataset::Dataset;
use super::parallel;
use crate::stats::agreement::{agreement_report, AgreementOptions, AgreementReport};
use crate::stats::aggregate::{leave_one_out_agreement, majority_vote, Aggregation};
use crate::stats::bootstrap::{bootstrap_alpha, BootstrapInterval, BootstrapOptions};
use crate::stats::dawid_skene::{dawid_skene, DawidSkeneOptions};
use crate::stats::krippendorff::{coincidence_matrix, krippendorff_alpha};
use crate::stats::proportion::wilson_interval;
use crate::stats::{Level, Ratings, Stat, Undefined};
use crate::store::agreement::ConsensusRow;

/// The dashboard's bootstrap: 1,000 replicates at 95%, seed 0 (the `mirrorset stats
/// agreement --bootstrap 1000` default seed, so the command reproduces the intervals).
pub const BOOTSTRAP: BootstrapOptions = BootstrapOptions { replicates: 1000, confidence: 0.95, seed: 0 };

/// Slices are offered for meta attributes with at most this many distinct values.
pub const MAX_SLICE_VALUES: usize = 50;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    Majority,
    DawidSkene,
}

impl Method {
    pub fn parse(s: &str) -> Method {
        if s == "dawid_skene" {
            Method::DawidSkene
        } else {
            Method::Majority
        }
    }
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Majority => "majority",
            Method::DawidSkene => "dawid_skene",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Settings {
    pub project_id: i64,
    pub level: Level,
    pub method: Method,
    pub target_alpha: f64,
    /// Skips per user id.
    pub skips: Vec<(i64, String, i64)>,
}

/// What the consensus job stores (the job's result), so that GET is a read.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Snapshot {
    /// With `over_time` per day.
    pub dashboard: AgreementDashboard,
    pub over_time_week: Vec<AlphaPoint>,
    /// Per slice attribute, its rows.
    pub slices: BTreeMap<String, Vec<SliceRow>>,
}

pub struct Computed {
    pub snapshot: Snapshot,
    pub consensus: Vec<ConsensusRow>,
    pub timings: Timings,
}

fn interval(ci: Result<BootstrapInterval, Undefined>) -> (Option<Interval>, Option<String>) {
    match ci {
        Ok(ci) => (Some(Interval { lower: ci.lower, upper: ci.upper }), None),
        Err(e) => (None, Some(format!("no interval: {}", e.reason))),
    }
}

fn stat_value(value: &Stat, ci: Option<Result<BootstrapInterval, Undefined>>, n: usize) -> StatValue {
    match value {
        Err(e) => StatValue { value: None, interval: None, n: n as i64, reason: Some(e.reason.clone()) },
        Ok(v) => {
            let (interval, reason) = ci.map(interval).unwrap_or((None, None));
            StatValue { value: Some(*v), interval, n: n as i64, reason }
        }
    }
}

fn proportion(agree: u64, n: u64) -> StatValue {
    match wilson_interval(agree, n, 0.95) {
        Ok(ci) => StatValue {
            value: Some(ci.estimate),
            interval: Some(Interval { lower: ci.lower, upper: ci.upper }),
            n: n as i64,
            reason: None,
        },
        Err(e) => StatValue { value: None, interval: None, n: n as i64, reason: Some(e.reason) },
    }
}

/// Alpha with its bootstrap interval over some units (ascending).
fn alpha_of_units(d: &Dataset, units: &[usize], level: Level) -> StatValue {
    let r = d.ratings.restricted(units);
    let alpha = krippendorff_alpha(&r, level);
    let ci = alpha.is_ok().then(|| bootstrap_alpha(&r, level, &BOOTSTRAP));
    stat_value(&alpha, ci, r.n_pairable_items())
}

const DAY_MS: i64 = 86_400_000;

/// Start (ms) of the UTC day or the Monday-started week holding `t`.
pub fn period_start(t: i64, week: bool) -> i64 {
    let day = t.div_euclid(DAY_MS);
    if week {
        // 1970-01-01 was a Thursday: day 0 is 3 days after a Monday.
        ((day + 3).div_euclid(7) * 7 - 3) * DAY_MS
    } else {
        day * DAY_MS
    }
}

fn over_time(d: &Dataset, level: Level, week: bool) -> Vec<AlphaPoint> {
    let mut buckets: BTreeMap<i64, Vec<usize>> = BTreeMap::new();
    for (u, &ix) in d.unit_item.iter().enumerate() {
        buckets.entry(period_start(d.items[ix].last_at, week)).or_default().push(u);
    }
    buckets
        .into_iter()
        .map(|(start, units)| {
            let r = d.ratings.restricted(&units);
            let alpha = krippendorff_alpha(&r, level);
            AlphaPoint {
                period_start: start,
                n: r.n_pairable_items() as i64,
                alpha: alpha.as_ref().ok().copied(),
                reason: alpha.err().map(|e| e.reason),
            }
        })
        .collect()
}

/// The slice attributes (at most [`MAX_SLICE_VALUES`] values) with their values and item
/// counts, by name and value.
fn slice_values(d: &Dataset) -> Vec<(String, Vec<(String, usize)>)> {
    let mut values: BTreeMap<&str, BTreeMap<&str, usize>> = BTreeMap::new();
    for ix in 0..d.items.len() {
        for &(k, v) in d.meta(ix) {
            *values.entry(d.meta_attrs[k as usize].as_str()).or_default().entry(d.meta_values[v as usize].as_str()).or_default() += 1;
        }
    }
    values
        .into_iter()
        .filter(|(_, counts)| counts.len() <= MAX_SLICE_VALUES)
        .map(|(attr, counts)| (attr.to_string(), counts.into_iter().map(|(v, n)| (v.to_string(), n)).collect()))
        .collect()
}

/// One slice's row: its alpha (with its own bootstrap) over the items with that value.
fn slice_row(d: &Dataset, attr: &str, value: &str, items: usize, level: Level, target: f64) -> SliceRow {
    let units = d.units_of(|i| d.slice_of(i, attr) == Some(value));
    let alpha = alpha_of_units(d, &units, level);
    let below_target = alpha.interval.is_some_and(|ci| ci.upper < target);
    SliceRow { value: value.to_string(), items: items as i64, alpha, below_target }
}

/// Consensus rows from the chosen aggregation: single-label, the winning label and its
/// posterior; multi-label, the labels whose present/absent unit came out present, with the
/// smallest posterior among the item's decisions (the least certain one bounds the whole).
fn consensus_rows(d: &Dataset, agg: &Aggregation) -> Vec<ConsensusRow> {
    let mut texts = LabelsText::default();
    let mut out: Vec<ConsensusRow> = Vec::with_capacity(d.items.len());
    // Multi-label: the current item's present labels.
    let mut present: Vec<&str> = Vec::new();
    for (u, &ix) in d.unit_item.iter().enumerate() {
        let Some(choice) = agg.label(u) else { continue };
        let p = agg.posterior(u)[choice];
        let n = d.ratings.item_len(u) as i64;
        let item_id = d.items[ix].id;
        if !d.multi {
            out.push(ConsensusRow { item_id, labels: texts.of(&[&d.label_names[choice]]), posterior: p, n_labels: n });
            continue;
        }
        if out.last().map(|r| r.item_id) != Some(item_id) {
            present.clear();
            out.push(ConsensusRow { item_id, labels: texts.of(&present), posterior: 1.0, n_labels: n });
        }
        let row = out.last_mut().expect("pushed above");
        row.posterior = row.posterior.min(p);
        if d.ratings.labels().name(choice) == crate::export::PRESENT {
            present.push(&d.label_names[d.unit_label[u]]);
            row.labels = texts.of(&present);
        }
    }
    out
}

/// Label lists as the JSON text a consensus row stores, each distinct list allocated once
/// and shared by the rows that have it (a project has a handful of distinct lists and a
/// million rows).
#[derive(Default)]
struct LabelsText(HashMap<String, Arc<str>>);

impl LabelsText {
    fn of(&mut self, labels: &[&str]) -> Arc<str> {
        let text = serde_json::to_string(labels).expect("strings serialize");
        self.0.entry(text).or_insert_with_key(|t| Arc::from(t.as_str())).clone()
    }
}

/// Each annotator's Dawid–Skene confusion matrix, by annotator code of the ratings: rows the
/// true label, columns the label given.
fn annotator_confusions(ds: &Aggregation, r: &Ratings) -> Vec<Vec<Vec<f64>>> {
    (0..r.n_annotators()).map(|a| ds.confusion(a).chunks(r.n_labels()).map(<[f64]>::to_vec).collect()).collect()
}

/// Gold answers as (unit, label code) for Dawid–Skene (single-label: a one-label gold answer
/// in the label set; multi-label: every unit of a gold item).
fn gold_units(d: &Dataset) -> Vec<(usize, usize)> {
    let mut gold = Vec::new();
    for (u, &ix) in d.unit_item.iter().enumerate() {
        let Some(g) = d.gold(ix) else { continue };
        if d.multi {
            gold.push((u, g.contains(&d.label_names[d.unit_label[u]]) as usize));
        } else if let [one] = g {
            if let Some(c) = d.ratings.labels().index_of(one) {
                gold.push((u, c));
            }
        }
    }
    gold
}

/// What one part of [`compute`] gives; the parts run side by side ([`parallel`]).
enum Part {
    /// The headline statistics with their shared bootstrap (the largest part).
    Report(AgreementReport),
    /// Dawid–Skene's per-labeler confusions (whatever the method), the chosen method's
    /// aggregation, and each annotator's agreement with the others.
    Model { confusions: Option<Vec<Vec<Vec<f64>>>>, chosen: Option<Aggregation>, loo: Vec<(u64, u64)> },
    /// One multi-label per-label alpha, or one slice's row (each with its own bootstrap).
    Label(LabelAgreementRow),
    Slice(SliceRow),
    /// Alpha per day and per week.
    OverTime(Vec<AlphaPoint>, Vec<AlphaPoint>),
}

/// Seconds each kind of part took (summed over its parts, on whichever thread ran them) and
/// the wall time of them all: the consensus job logs them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Timings {
    pub headline: f64,
    pub model: f64,
    pub per_label: f64,
    pub slices: f64,
    pub over_time: f64,
    pub wall: f64,
    pub threads: usize,
}

/// [`compute_on`] on every core.
pub fn compute(d: &Dataset, s: &Settings, computed_at: i64) -> Computed {
    compute_on(d, s, computed_at, parallel::cores())
}

/// The dashboard and the consensus rows, its independent parts (the headline bootstrap, each
/// slice's and each multi-label per-label bootstrap, Dawid–Skene, alpha over time) run on up
/// to `threads` threads. Every part is deterministic on its own (each bootstrap seeds its own
/// generator), so the result does not depend on `threads` (a test checks it); a refresh of
/// 100,000 items × 3 labels was ~2.6 s of CPU on one thread, most of it bootstrap draws.
pub fn compute_on(d: &Dataset, s: &Settings, computed_at: i64, threads: usize) -> Computed {
    let started = std::time::Instant::now();
    let level = if d.multi { Level::Nominal } else { s.level };
    let r = &d.ratings;
    let multi_labels: Vec<usize> =
        if d.multi { (0..d.label_names.len()).filter(|&c| d.unit_label.contains(&c)).collect() } else { Vec::new() };
    let slice_values = slice_values(d);

    // The longest parts first, so that the last ones to start are short.
    let mut tasks: Vec<parallel::Task<'_, Part>> = vec![
        Box::new(|| Part::Report(agreement_report(r, &AgreementOptions { level, bootstrap: Some(BOOTSTRAP) }))),
        Box::new(|| {
            let ds = dawid_skene(r, &DawidSkeneOptions { gold: gold_units(d), ..Default::default() }).ok();
            // Of Dawid–Skene's result only the confusions are kept under majority vote.
            let confusions = ds.as_ref().map(|ds| annotator_confusions(ds, r));
            let chosen = match s.method {
                Method::DawidSkene => ds,
                Method::Majority => {
                    drop(ds);
                    (r.n_annotations() > 0).then(|| majority_vote(r))
                }
            };
            Part::Model { confusions, chosen, loo: leave_one_out_agreement(r) }
        }),
    ];
    for &c in &multi_labels {
        tasks.push(Box::new(move || {
            let units: Vec<usize> = (0..d.unit_label.len()).filter(|&u| d.unit_label[u] == c).collect();
            Part::Label(LabelAgreementRow { label: d.label_names[c].clone(), alpha: alpha_of_units(d, &units, Level::Nominal) })
        }));
    }
    for (attr, values) in &slice_values {
        for (value, items) in values {
            let target = s.target_alpha;
            tasks.push(Box::new(move || Part::Slice(slice_row(d, attr, value, *items, level, target))));
        }
    }
    tasks.push(Box::new(move || Part::OverTime(over_time(d, level, false), over_time(d, level, true))));

    let mut timings = Timings { threads, ..Default::default() };
    let (mut report, mut model, mut over) = (None, None, None);
    let (mut labels, mut slice_rows) = (Vec::new(), Vec::new());
    for (part, secs) in parallel::run(tasks, threads) {
        match part {
            Part::Report(x) => (report, timings.headline) = (Some(x), secs),
            Part::Model { confusions, chosen, loo } => {
                (model, timings.model) = (Some((confusions, chosen, loo)), secs);
            }
            Part::Label(x) => {
                labels.push(x);
                timings.per_label += secs;
            }
            Part::Slice(x) => {
                slice_rows.push(x);
                timings.slices += secs;
            }
            Part::OverTime(day, week) => (over, timings.over_time) = (Some((day, week)), secs),
        }
    }
    let report = report.expect("a part");
    let (confusions, chosen, loo) = model.expect("a part");
    let (over_time_day, over_time_week) = over.expect("a part");
    // Back in the parts' order: attributes by name, their values by value.
    let mut slice_rows = slice_rows.into_iter();
    let slices: BTreeMap<String, Vec<SliceRow>> = slice_values
        .iter()
        .map(|(attr, values)| (attr.clone(), slice_rows.by_ref().take(values.len()).collect()))
        .collect();

    // The four headline intervals come from one set of bootstrap draws, exactly as
    // `mirrorset stats agreement --bootstrap 1000` computes them.
    let ci = report.ci.clone().expect("bootstrap asked for");
    let n = report.n_pairable_items;

    // Annotator codes of `r` by name (a labeler whose every answer was unusable has none).
    let names: &[String] = r.annotators();
    let code_of = |username: &str| names.iter().position(|n| n == username);
    let per_label = if d.multi {
        labels
    } else {
        report
            .per_label_alpha
            .iter()
            .map(|l| LabelAgreementRow { label: d.label_names[l.label].clone(), alpha: stat_value(&l.alpha, None, n) })
            .collect()
    };
    let pairs = report
        .pairwise_cohen_kappa
        .iter()
        .map(|p| PairCell {
            a: names[p.a].to_string(),
            b: names[p.b].to_string(),
            n: p.n as i64,
            kappa: p.kappa.as_ref().ok().copied(),
            reason: p.kappa.as_ref().err().map(|e| e.reason.clone()),
        })
        .collect();
    let confusion = if d.multi { Vec::new() } else { label_confusion(d) };

    let mut labelers: Vec<LabelerAgreement> = d
        .users
        .iter()
        .enumerate()
        .map(|(a, (user_id, username))| {
            let code = code_of(username);
            let (mut gold_n, mut gold_ok) = (0u64, 0u64);
            for (ix, g) in d.gold_items() {
                let Some((_, labels)) = d.answers(ix).find(|(x, _)| *x == a) else { continue };
                gold_n += 1;
                let (mut x, mut y) = (d.label_texts(labels), g.to_vec());
                x.sort();
                y.sort();
                gold_ok += (x == y) as u64;
            }
            let skips = s.skips.iter().find(|(id, _, _)| id == user_id).map_or(0, |x| x.2);
            let labeled = d.times[a].answers as i64;
            LabelerAgreement {
                user_id: *user_id,
                username: username.clone(),
                items_labeled: labeled,
                median_seconds: d.times[a].median_seconds,
                skips,
                skip_rate: (labeled + skips > 0).then(|| skips as f64 / (labeled + skips) as f64),
                agreement_with_others: code.map_or_else(|| proportion(0, 0), |c| proportion(loo[c].0, loo[c].1)),
                ds_confusion: confusions.as_ref().zip(code).map(|(c, a)| c[a].clone()).unwrap_or_default(),
                gold_accuracy: proportion(gold_ok, gold_n),
            }
        })
        .collect();
    // Labelers who only skipped so far.
    for (user_id, username, skips) in &s.skips {
        if !d.users.iter().any(|(id, _)| id == user_id) {
            labelers.push(LabelerAgreement {
                user_id: *user_id,
                username: username.clone(),
                items_labeled: 0,
                median_seconds: None,
                skips: *skips,
                skip_rate: Some(1.0),
                agreement_with_others: proportion(0, 0),
                ds_confusion: Vec::new(),
                gold_accuracy: proportion(0, 0),
            });
        }
    }

    let dashboard = AgreementDashboard {
        project_id: s.project_id,
        computed_at: Some(computed_at),
        refreshing: false,
        measurement: crate::stats::krippendorff::level_name(s.level).to_string(),
        consensus_method: s.method.as_str().to_string(),
        target_alpha: s.target_alpha,
        multi_label: d.multi,
        n_items: d.items.len() as i64,
        n_annotations: d.times.iter().map(|t| t.answers).sum::<usize>() as i64,
        n_labelers: d.users.len() as i64,
        alpha: stat_value(&report.krippendorff_alpha, Some(ci.krippendorff_alpha), n),
        fleiss_kappa: stat_value(&report.fleiss_kappa, Some(ci.fleiss_kappa), n),
        mean_cohen_kappa: stat_value(&report.mean_pairwise_cohen_kappa, Some(ci.mean_pairwise_cohen_kappa), n),
        percent_agreement: stat_value(&report.percent_agreement, Some(ci.percent_agreement), n),
        per_label,
        pairs,
        confusion,
        period: "day".into(),
        over_time: over_time_day,
        confusion_labels: r.labels().names().to_vec(),
        labelers,
        slice_attributes: slices.keys().cloned().collect(),
    };
    // The consensus rows (a row per labeled item, 40 bytes each) are made last, once the
    // parts' own memory is back: the aggregation they come from holds a row per response
    // pattern, not per item.
    let consensus = chosen.map(|agg| consensus_rows(d, &agg)).unwrap_or_default();
    timings.wall = started.elapsed().as_secs_f64();
    Computed { snapshot: Snapshot { dashboard, over_time_week, slices }, consensus, timings }
}

fn label_confusion(d: &Dataset) -> Vec<LabelConfusion> {
    let o = coincidence_matrix(&d.ratings);
    let mut out = Vec::new();
    let mut total = 0.0;
    for a in 0..o.len() {
        for b in a + 1..o.len() {
            let count = o[a][b] + o[b][a];
            if count > 0.0 {
                total += count;
                out.push(LabelConfusion { a: d.label_names[a].clone(), b: d.label_names[b].clone(), count, share: 0.0 });
            }
        }
    }
    for c in &mut out {
        c.share = c.count / total;
    }
    out.sort_by(|x, y| y.count.total_cmp(&x.count));
    out
}

#[cfg(test)]
mod tests {
    use super::super::dataset::tests::{ann, item, users};
    use super::*;
    use std::borrow::Cow;

    fn settings() -> Settings {
        Settings { project_id: 1, level: Level::Nominal, method: Method::Majority, target_alpha: 0.8, skips: vec![(3, "u3".into(), 2)] }
    }

    #[test]
    fn weeks_start_on_monday_and_days_at_midnight() {
        // 2026-12-01 (a Tuesday) 17:00 UTC.
        let t = 1_796_144_400_000;
        assert_eq!(period_start(t, false), 1_796_083_200_000);
        // Monday 2026-11-30 00:00 UTC.
        assert_eq!(period_start(t, true), 1_795_996_800_000);
        assert_eq!(period_start(1_795_996_800_000, true), 1_795_996_800_000);
    }

    #[test]
    fn consensus_labeler_rows_and_slices() {
        // Items 1, 2: u1 and u2 agree; item 3: they differ (u3 breaks the tie).
        let rows = [
            ann(1, 1, &["a"], 0), ann(1, 2, &["a"], 0),
            ann(2, 1, &["b"], 0), ann(2, 2, &["b"], 0),
            ann(3, 1, &["a"], DAY_MS), ann(3, 2, &["b"], DAY_MS), ann(3, 3, &["b"], DAY_MS),
        ];
        let items = [item(1, r#"{"region":"eu"}"#), item(2, r#"{"region":"us"}"#), item(3, r#"{"region":"eu"}"#)];
        let d = Dataset::build(false, &["a".into(), "b".into()], &rows, &items, &users()).unwrap();
        let c = compute(&d, &settings(), 42);
        let labels: Vec<(i64, &str, f64)> = c.consensus.iter().map(|r| (r.item_id, &*r.labels, r.posterior)).collect();
        assert_eq!(labels, vec![(1, r#"["a"]"#, 1.0), (2, r#"["b"]"#, 1.0), (3, r#"["b"]"#, 2.0 / 3.0)]);
        let dash = &c.snapshot.dashboard;
        assert_eq!((dash.n_items, dash.n_annotations, dash.n_labelers), (3, 7, 3));
        assert_eq!(dash.over_time.len(), 2);
        assert_eq!(dash.confusion.len(), 1);
        let u3 = dash.labelers.iter().find(|l| l.username == "u3").unwrap();
        assert_eq!((u3.items_labeled, u3.skips, u3.skip_rate), (1, 2, Some(2.0 / 3.0)));
        // u1 vs the others: item 1 agree, item 2 agree, item 3 (others b, b) disagree.
        let u1 = &dash.labelers[0];
        assert_eq!((u1.agreement_with_others.value, u1.agreement_with_others.n), (Some(2.0 / 3.0), 3));
        assert_eq!(u1.median_seconds, Some(1.0));
        assert!(u1.gold_accuracy.value.is_none() && u1.gold_accuracy.reason.is_some());
        let eu = &c.snapshot.slices["region"];
        assert_eq!(eu.iter().map(|r| (r.value.as_str(), r.items)).collect::<Vec<_>>(), vec![("eu", 2), ("us", 1)]);
        assert!(eu[1].alpha.value.is_none(), "one item, one label: undefined");
    }

    /// The parts run side by side give exactly what one thread gives (same numbers to the
    /// last bit, slices and per-label rows in the same order), single- and multi-label.
    #[test]
    fn the_result_does_not_depend_on_the_number_of_threads() {
        let (mut single, mut multi) = (Vec::new(), Vec::new());
        let names = ["a", "b", "c"];
        for i in 1..=60i64 {
            for u in 1..=3i64 {
                let x = names[((i * 7 + u * (i % 4)) % 3) as usize];
                let y = names[((i + u) % 3) as usize];
                single.push(ann(i, u, &[x], i * 3_600_000));
                let both = [x, y];
                let labels = if (i + u) % 5 == 0 || x == y { &both[..1] } else { &both[..] };
                multi.push(ann(i, u, labels, i * 3_600_000));
            }
        }
        let regions = ["eu", "us", "apac"];
        let items: Vec<_> = (1..=60i64)
            .map(|i| item(i, &format!(r#"{{"region":"{}","device":"d{}","n":{}}}"#, regions[(i % 3) as usize], i % 2, i)))
            .collect();
        for (multi_label, rows) in [(false, &single), (true, &multi)] {
            let d = Dataset::build(multi_label, &["a".into(), "b".into(), "c".into()], rows, &items, &users()).unwrap();
            for method in [Method::Majority, Method::DawidSkene] {
                let s = Settings { method, ..settings() };
                let one = compute_on(&d, &s, 7, 1);
                assert!(one.snapshot.slices.contains_key("region") && one.snapshot.slices.contains_key("device"));
                for threads in [2, 3, 16] {
                    let many = compute_on(&d, &s, 7, threads);
                    assert_eq!(many.consensus, one.consensus, "{threads} threads, multi {multi_label}, {method:?}");
                    assert_eq!(
                        serde_json::to_string(&many.snapshot).unwrap(),
                        serde_json::to_string(&one.snapshot).unwrap(),
                        "{threads} threads, multi {multi_label}, {method:?}"
                    );
                }
            }
        }
    }

    #[test]
    fn a_slice_or_period_of_every_unit_is_computed_on_the_whole_with_a_copys_numbers() {
        let names = ["a", "b", "c"];
        let label = |i: i64, u: i64| names[((i * u) % 3) as usize];
        let rows: Vec<_> =
            (1..=40i64).flat_map(|i| (1..=3i64).map(move |u| ann(i, u, &[label(i, u)], 1000 + i))).collect();
        let items: Vec<_> = (1..=40i64).map(|i| item(i, r#"{"source":"web"}"#)).collect();
        let d = Dataset::build(false, &["a".into(), "b".into(), "c".into()], &rows, &items, &users()).unwrap();
        let all: Vec<usize> = (0..d.ratings.n_items()).collect();
        assert!(matches!(d.ratings.restricted(&all), Cow::Borrowed(_)));
        assert!(matches!(d.ratings.restricted(&all[1..]), Cow::Owned(_)));
        let copy = d.ratings.restrict_to_items(&all);
        let alpha = krippendorff_alpha(&copy, Level::Nominal);
        let ci = bootstrap_alpha(&copy, Level::Nominal, &BOOTSTRAP);
        let expected = serde_json::to_string(&stat_value(&alpha, Some(ci), copy.n_pairable_items())).unwrap();
        assert_eq!(serde_json::to_string(&alpha_of_units(&d, &all, Level::Nominal)).unwrap(), expected);
        // The dashboard's one slice value and its one day hold every unit.
        let c = compute(&d, &settings(), 1);
        assert_eq!(serde_json::to_string(&c.snapshot.slices["source"][0].alpha).unwrap(), expected);
        let [day] = &c.snapshot.dashboard.over_time[..] else { panic!("one day") };
        assert_eq!((day.alpha, day.n), (alpha.ok(), copy.n_pairable_items() as i64));
    }

    #[test]
    fn multi_label_consensus_lists_present_labels_with_the_weakest_posterior() {
        let rows = [ann(1, 1, &["a", "b"], 0), ann(1, 2, &["a"], 0), ann(1, 3, &["a", "b"], 0)];
        let d = Dataset::build(true, &["a".into(), "b".into()], &rows, &[item(1, "{}")], &users()).unwrap();
        let c = compute(&d, &settings(), 1);
        assert_eq!(c.consensus.len(), 1);
        assert_eq!(&*c.consensus[0].labels, r#"["a","b"]"#);
        assert!((c.consensus[0].posterior - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(c.snapshot.dashboard.per_label.len(), 2);
        assert_eq!(c.snapshot.dashboard.confusion_labels, ["absent", "present"]);
    }
}
