//! The statistics core at production scale, on one core:
//! - Krippendorff's alpha and Fleiss' kappa over 1,000,000 annotations (200,000 items ×
//!   5 annotators, 5 labels): target under 1 s each;
//! - Dawid–Skene, 50 iterations, on the same data: target under 5 s;
//! - allocation over 10,000 strata: target under 10 ms.
//!
//! Run with `cargo bench -p server --bench stats`.

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use server::stats::allocation::{allocate_strata, AllocationRequest, Stratum};
use server::stats::dawid_skene::{dawid_skene, DawidSkeneOptions};
use server::stats::kappa::fleiss_kappa;
use server::stats::krippendorff::krippendorff_alpha;
use server::stats::{LabelSet, Level, Ratings};
use std::time::Duration;

const ITEMS: usize = 200_000;
const ANNOTATORS: usize = 5;
const LABELS: usize = 5;

/// A small deterministic generator (SplitMix64), so the data is the same on every run.
struct Mix(u64);

impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Every annotator rates every item: right 70% of the time, otherwise a random label.
fn million_annotations() -> Ratings {
    let mut rng = Mix(42);
    let mut records = Vec::with_capacity(ITEMS * ANNOTATORS);
    for i in 0..ITEMS {
        let truth = rng.below(LABELS as u64) as usize;
        for a in 0..ANNOTATORS {
            let label = if rng.below(10) < 7 { truth } else { rng.below(LABELS as u64) as usize };
            records.push((i, a, label));
        }
    }
    let items = (0..ITEMS).map(|i| format!("item{i}")).collect();
    let annotators = (0..ANNOTATORS).map(|a| format!("annotator{a}")).collect();
    let labels = LabelSet::new((1..=LABELS).map(|l| l.to_string()).collect()).unwrap();
    Ratings::from_codes(items, annotators, labels, &records).unwrap()
}

fn ten_thousand_strata() -> AllocationRequest {
    let mut rng = Mix(7);
    let strata = (0..10_000)
        .map(|s| Stratum {
            key: format!("region={}|device={}|lang={}", s % 37, s % 11, s),
            production: (1 + rng.below(100_000)) as f64,
            available: rng.below(60),
        })
        .collect();
    AllocationRequest { n: 100_000, min_per_stratum: Some(2), strata }
}

fn agreement(c: &mut Criterion) {
    let ratings = million_annotations();
    let mut group = c.benchmark_group("1M annotations");
    group.sample_size(10).measurement_time(Duration::from_secs(10));
    group.bench_function("coding 1M records into Ratings", |b| {
        let mut rng = Mix(42);
        let records: Vec<(usize, usize, usize)> =
            (0..ITEMS * ANNOTATORS).map(|k| (k / ANNOTATORS, k % ANNOTATORS, rng.below(LABELS as u64) as usize)).collect();
        let items: Vec<String> = (0..ITEMS).map(|i| format!("item{i}")).collect();
        let annotators: Vec<String> = (0..ANNOTATORS).map(|a| format!("annotator{a}")).collect();
        let labels = LabelSet::new((1..=LABELS).map(|l| l.to_string()).collect()).unwrap();
        b.iter(|| Ratings::from_codes(items.clone(), annotators.clone(), labels.clone(), black_box(&records)).unwrap())
    });
    for level in [Level::Nominal, Level::Ordinal, Level::Interval] {
        group.bench_function(format!("krippendorff_alpha {level:?}"), |b| {
            b.iter(|| krippendorff_alpha(black_box(&ratings), level).unwrap())
        });
    }
    group.bench_function("fleiss_kappa", |b| b.iter(|| fleiss_kappa(black_box(&ratings)).unwrap()));
    group.bench_function("dawid_skene 50 iterations", |b| {
        let options = DawidSkeneOptions { max_iter: 50, tol: f64::NEG_INFINITY, gold: Vec::new() };
        b.iter(|| {
            let result = dawid_skene(black_box(&ratings), &options).unwrap();
            assert_eq!(result.iterations, 50);
            result
        })
    });
    group.finish();
}

fn allocation(c: &mut Criterion) {
    let request = ten_thousand_strata();
    c.bench_function("allocate_strata 10,000 strata", |b| b.iter(|| allocate_strata(black_box(&request)).unwrap()));
}

criterion_group!(benches, agreement, allocation);
criterion_main!(benches);
