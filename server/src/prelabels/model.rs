//! The built-in text classifier: hashed word and character n-grams, multinomial logistic
//! regression trained with AdaGrad, and k-fold cross-validation whose out-of-fold
//! probabilities feed the label-error search (`stats::label_errors`).
//!
//! Why this shape: it needs no vocabulary (the hashing trick maps any n-gram to one of
//! 2^`buckets_log2` weights), so training and scoring are one pass each in constant memory per
//! item; character n-grams (3 to 5, inside word boundaries, as fastText) carry misspellings,
//! inflections and short texts; and a linear model over them is a strong, well-understood
//! baseline for text classification that trains on 50,000 items in seconds on two cores.
//! Everything is seeded: the same items, labels and seed give the same model bit for bit.
use serde::Serialize;

use crate::stats::proportion::{wilson_interval, ProportionInterval};
use crate::stats::rng::SeededRng;
use crate::stats::Undefined;

/// How text becomes features.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FeatureConfig {
    /// 2^this many hashed feature slots.
    pub buckets_log2: u32,
    /// Character n-grams from `char_min` to `char_max` characters (0 turns them off).
    pub char_min: usize,
    pub char_max: usize,
    /// Word bigrams as well as single words.
    pub word_bigrams: bool,
}

impl Default for FeatureConfig {
    fn default() -> Self {
        FeatureConfig { buckets_log2: 18, char_min: 3, char_max: 5, word_bigrams: true }
    }
}

/// A sparse, L2-normalised feature vector: sorted distinct slots and their values.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Features {
    pub slots: Vec<u32>,
    pub values: Vec<f32>,
}

/// FNV-1a, 64-bit, started from a namespace so words, bigrams and character n-grams of the same
/// bytes land in different slots.
fn fnv1a(namespace: u64, parts: &[&[u8]]) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64 ^ namespace.wrapping_mul(0x100_0000_01b3);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            h ^= 0x20;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
        for &b in *part {
            h ^= b as u64;
            h = h.wrapping_mul(0x100_0000_01b3);
        }
    }
    h
}

/// The features of one text: lower-cased words (runs of letters and digits), word bigrams, and
/// character n-grams of each word padded with `<` and `>`; counts are damped (1 + ln count) and
/// the vector scaled to unit length. An empty text has no features.
pub fn featurize(text: &str, cfg: &FeatureConfig) -> Features {
    let mask = (1u64 << cfg.buckets_log2) - 1;
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).collect();
    let mut hashes: Vec<u32> = Vec::with_capacity(words.len() * 8);
    let mut padded = String::new();
    let mut bounds: Vec<usize> = Vec::new();
    for (i, w) in words.iter().enumerate() {
        hashes.push((fnv1a(1, &[w.as_bytes()]) & mask) as u32);
        if cfg.word_bigrams && i + 1 < words.len() {
            hashes.push((fnv1a(2, &[w.as_bytes(), words[i + 1].as_bytes()]) & mask) as u32);
        }
        if cfg.char_min > 0 && cfg.char_max >= cfg.char_min {
            padded.clear();
            padded.push('<');
            padded.push_str(w);
            padded.push('>');
            bounds.clear();
            bounds.extend(padded.char_indices().map(|(b, _)| b));
            bounds.push(padded.len());
            let chars = bounds.len() - 1;
            for n in cfg.char_min..=cfg.char_max.min(chars) {
                for start in 0..=(chars - n) {
                    let gram = &padded.as_bytes()[bounds[start]..bounds[start + n]];
                    hashes.push((fnv1a(3, &[gram]) & mask) as u32);
                }
            }
        }
    }
    hashes.sort_unstable();
    let mut f = Features::default();
    let mut i = 0;
    while i < hashes.len() {
        let mut j = i + 1;
        while j < hashes.len() && hashes[j] == hashes[i] {
            j += 1;
        }
        f.slots.push(hashes[i]);
        f.values.push(1.0 + ((j - i) as f32).ln());
        i = j;
    }
    let norm = f.values.iter().map(|v| v * v).sum::<f32>().sqrt();
    if norm > 0.0 {
        f.values.iter_mut().for_each(|v| *v /= norm);
    }
    f
}

/// How the model is fitted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    pub features: FeatureConfig,
    /// Passes over the training items.
    pub epochs: usize,
    /// AdaGrad's base step.
    pub learning_rate: f32,
    /// Shuffles the items before each pass, and splits the cross-validation folds.
    pub seed: u64,
    /// Threads that fit the cross-validation's models (and the final one) side by side. The
    /// fits are independent and each is seeded, so the result does not depend on it.
    pub threads: usize,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig { features: FeatureConfig::default(), epochs: 5, learning_rate: 0.5, seed: 0, threads: 2 }
    }
}

/// A fitted classifier over `n_classes` label codes.
#[derive(Debug, Clone)]
pub struct Model {
    pub n_classes: usize,
    pub features: FeatureConfig,
    /// Slot-major: the weights of slot s are `weights[s * n_classes .. (s + 1) * n_classes]`.
    weights: Vec<f32>,
    bias: Vec<f32>,
}

/// Softmax of `scores` in place, stable for large scores.
fn softmax(scores: &mut [f32]) {
    let max = scores.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for s in scores.iter_mut() {
        *s = (*s - max).exp();
        sum += *s;
    }
    scores.iter_mut().for_each(|s| *s /= sum);
}

impl Model {
    fn scores(&self, x: &Features, out: &mut [f32]) {
        let c = self.n_classes;
        out.copy_from_slice(&self.bias);
        for (&s, &v) in x.slots.iter().zip(&x.values) {
            let w = &self.weights[s as usize * c..(s as usize + 1) * c];
            for k in 0..c {
                out[k] += w[k] * v;
            }
        }
    }

    /// The probability of each label code for already-featurized input.
    pub fn predict_features(&self, x: &Features) -> Vec<f64> {
        let mut p = vec![0.0f32; self.n_classes];
        self.scores(x, &mut p);
        softmax(&mut p);
        p.into_iter().map(f64::from).collect()
    }

    /// The probability of each label code for a text.
    pub fn predict(&self, text: &str) -> Vec<f64> {
        self.predict_features(&featurize(text, &self.features))
    }
}

/// Fits a model to `(features, label code)` pairs; codes must be below `n_classes`.
pub fn train(examples: &[(&Features, usize)], n_classes: usize, cfg: &TrainConfig) -> Result<Model, Undefined> {
    if n_classes < 2 {
        return Err(Undefined::new("a classifier needs at least two labels"));
    }
    if examples.is_empty() {
        return Err(Undefined::new("there are no labeled items to train on"));
    }
    if let Some((_, y)) = examples.iter().find(|(_, y)| *y >= n_classes) {
        return Err(Undefined::new(format!("label code {y} is outside the {n_classes} labels")));
    }
    let c = n_classes;
    let slots = 1usize << cfg.features.buckets_log2;
    let mut model = Model { n_classes: c, features: cfg.features, weights: vec![0.0; slots * c], bias: vec![0.0; c] };
    // AdaGrad's running sums of squared gradients, one per weight: big steps for rare n-grams,
    // small ones for frequent, without tuning a schedule.
    let mut g2 = vec![0.0f32; slots * c];
    let mut b2 = vec![0.0f32; c];
    let mut order: Vec<usize> = (0..examples.len()).collect();
    let mut rng = SeededRng::new(cfg.seed);
    let mut p = vec![0.0f32; c];
    const EPS: f32 = 1e-6;
    for _ in 0..cfg.epochs {
        rng.shuffle(&mut order);
        for &i in &order {
            let (x, y) = examples[i];
            model.scores(x, &mut p);
            softmax(&mut p);
            p[y] -= 1.0; // now the gradient of the log loss with respect to the scores
            for k in 0..c {
                b2[k] += p[k] * p[k];
                model.bias[k] -= cfg.learning_rate * p[k] / (b2[k].sqrt() + EPS);
            }
            for (&s, &v) in x.slots.iter().zip(&x.values) {
                let base = s as usize * c;
                for k in 0..c {
                    let g = p[k] * v;
                    if g != 0.0 {
                        g2[base + k] += g * g;
                        model.weights[base + k] -= cfg.learning_rate * g / (g2[base + k].sqrt() + EPS);
                    }
                }
            }
        }
    }
    Ok(model)
}

/// The held-out measure of a model and the out-of-fold probabilities of every item.
#[derive(Debug, Clone, Serialize)]
pub struct CrossValidation {
    pub folds: usize,
    pub n: u64,
    /// Items whose out-of-fold argmax equals their label.
    pub correct: u64,
    /// Accuracy with its Wilson 95% interval.
    pub accuracy: ProportionInterval,
    /// Accuracy of always answering the most frequent label, for comparison.
    pub majority_baseline: f64,
    /// Row-major n × n_classes: item i's probabilities from the model that did not see it.
    #[serde(skip)]
    pub out_of_fold: Vec<f64>,
}

/// k-fold cross-validation: items are dealt to folds after a seeded shuffle, each fold is
/// scored by a model trained on the others.
pub fn cross_validate(
    examples: &[(&Features, usize)],
    n_classes: usize,
    folds: usize,
    cfg: &TrainConfig,
) -> Result<CrossValidation, Undefined> {
    Ok(fits(examples, n_classes, folds, cfg, false)?.0)
}

/// [`cross_validate`], and the model trained on every item, fitted in the same pool of
/// `cfg.threads` threads (6 fits of similar size for 5 folds: the pool stays busy to the end).
pub fn cross_validate_and_train(
    examples: &[(&Features, usize)],
    n_classes: usize,
    folds: usize,
    cfg: &TrainConfig,
) -> Result<(CrossValidation, Model), Undefined> {
    let (cv, model) = fits(examples, n_classes, folds, cfg, true)?;
    Ok((cv, model.expect("the final fit was asked for")))
}

/// What one fit of [`fits`] gives: fold f's out-of-fold rows (item, probabilities), or the
/// final model.
enum Fitted {
    Fold(Vec<(usize, Vec<f64>)>),
    Final(Model),
}

fn fits(
    examples: &[(&Features, usize)],
    n_classes: usize,
    folds: usize,
    cfg: &TrainConfig,
    with_final: bool,
) -> Result<(CrossValidation, Option<Model>), Undefined> {
    let n = examples.len();
    if folds < 2 || n < folds {
        return Err(Undefined::new(format!(
            "{folds}-fold cross-validation needs at least {folds} labeled items and 2 folds; there are {n} items"
        )));
    }
    let mut order: Vec<usize> = (0..n).collect();
    SeededRng::new(cfg.seed ^ 0x5eed_f01d).shuffle(&mut order);
    let mut fold_of = vec![0usize; n];
    for (rank, &i) in order.iter().enumerate() {
        fold_of[i] = rank % folds;
    }
    let fit_one = |job: usize| -> Result<Fitted, Undefined> {
        if job == folds {
            return Ok(Fitted::Final(train(examples, n_classes, cfg)?));
        }
        let train_set: Vec<(&Features, usize)> = (0..n).filter(|&i| fold_of[i] != job).map(|i| examples[i]).collect();
        let model = train(&train_set, n_classes, cfg)?;
        Ok(Fitted::Fold((0..n).filter(|&i| fold_of[i] == job).map(|i| (i, model.predict_features(examples[i].0))).collect()))
    };
    // Fits are handed out in order from a shared counter to at most `threads` workers.
    let jobs = folds + usize::from(with_final);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let results: Vec<Result<Fitted, Undefined>> = std::thread::scope(|s| {
        let workers: Vec<_> = (0..cfg.threads.clamp(1, jobs))
            .map(|_| {
                s.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let job = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if job >= jobs {
                            break mine;
                        }
                        mine.push(fit_one(job));
                    }
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("a training thread panicked")).collect()
    });
    let mut out_of_fold = vec![0.0f64; n * n_classes];
    let mut final_model = None;
    for r in results {
        match r? {
            Fitted::Fold(rows) => {
                for (i, p) in rows {
                    out_of_fold[i * n_classes..(i + 1) * n_classes].copy_from_slice(&p);
                }
            }
            Fitted::Final(m) => final_model = Some(m),
        }
    }
    let correct = (0..n)
        .filter(|&i| argmax(&out_of_fold[i * n_classes..(i + 1) * n_classes]) == examples[i].1)
        .count() as u64;
    let mut counts = vec![0u64; n_classes];
    examples.iter().for_each(|(_, y)| counts[*y] += 1);
    let majority = *counts.iter().max().unwrap_or(&0);
    let cv = CrossValidation {
        folds,
        n: n as u64,
        correct,
        accuracy: wilson_interval(correct, n as u64, 0.95)?,
        majority_baseline: majority as f64 / n as f64,
        out_of_fold,
    };
    Ok((cv, final_model))
}

/// The index of the largest value (the first of equal ones).
pub fn argmax(p: &[f64]) -> usize {
    let mut best = 0;
    for (i, &v) in p.iter().enumerate() {
        if v > p[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::label_errors::confident_learning;

    /// Short "reviews" of three topics from overlapping vocabularies, with shared filler words,
    /// so a bag of words is needed but no single word decides.
    fn corpus(n: usize, seed: u64) -> Vec<(String, usize)> {
        let topics: [&[&str]; 3] = [
            &["refund", "broken", "late", "damaged", "return", "complaint", "waiting"],
            &["love", "great", "perfect", "recommend", "happy", "excellent", "fast"],
            &["price", "size", "colour", "question", "available", "shipping", "stock"],
        ];
        let filler = ["the", "a", "it", "was", "and", "my", "order", "this", "item", "very"];
        let mut rng = SeededRng::new(seed);
        (0..n)
            .map(|i| {
                let y = i % 3;
                let words: Vec<&str> = (0..14)
                    .map(|_| {
                        // Two words in five are from the topic, one in thirty from another one.
                        match rng.below(30) {
                            0..=11 => topics[y][rng.below(7) as usize],
                            12 => topics[(y + 1 + rng.below(2) as usize) % 3][rng.below(7) as usize],
                            _ => filler[rng.below(10) as usize],
                        }
                    })
                    .collect();
                (words.join(" "), y)
            })
            .collect()
    }

    #[test]
    fn features_are_unit_length_sorted_and_deterministic() {
        let cfg = FeatureConfig::default();
        let a = featurize("Great product, GREAT price!", &cfg);
        assert_eq!(a, featurize("great product great price", &cfg));
        assert!(a.slots.windows(2).all(|w| w[0] < w[1]));
        let norm: f32 = a.values.iter().map(|v| v * v).sum();
        assert!((norm - 1.0).abs() < 1e-5);
        assert_eq!(featurize("  ,.! ", &cfg), Features::default());
        // Non-ASCII text is cut at character boundaries, not bytes.
        assert!(!featurize("Größe über naïve 東京", &cfg).slots.is_empty());
        // Words only, no bigrams: "great great" is one slot.
        let words_only = FeatureConfig { char_min: 0, word_bigrams: false, ..cfg };
        assert_eq!(featurize("great great", &words_only).slots.len(), 1);
    }

    #[test]
    fn learns_topics_well_above_the_majority_baseline() {
        let data = corpus(1500, 7);
        let cfg = TrainConfig::default();
        let feats: Vec<Features> = data.iter().map(|(t, _)| featurize(t, &cfg.features)).collect();
        let examples: Vec<(&Features, usize)> = feats.iter().zip(&data).map(|(f, (_, y))| (f, *y)).collect();
        let cv = cross_validate(&examples, 3, 5, &cfg).unwrap();
        assert!((cv.majority_baseline - 1.0 / 3.0).abs() < 1e-3);
        assert!(cv.accuracy.estimate > 0.9, "{:?}", cv.accuracy);
        assert!(cv.accuracy.lower > cv.majority_baseline + 0.4);
        // Probabilities are probabilities.
        for row in cv.out_of_fold.chunks(3) {
            assert!((row.iter().sum::<f64>() - 1.0).abs() < 1e-5);
        }
        // The same seed gives the same model, on any number of threads, with or without the
        // final fit in the pool.
        let again = cross_validate(&examples, 3, 5, &cfg).unwrap();
        assert_eq!(cv.out_of_fold, again.out_of_fold);
        let one = cross_validate(&examples, 3, 5, &TrainConfig { threads: 1, ..cfg }).unwrap();
        assert_eq!(cv.out_of_fold, one.out_of_fold);
        let (with_final, model) = cross_validate_and_train(&examples, 3, 5, &TrainConfig { threads: 3, ..cfg }).unwrap();
        assert_eq!(cv.out_of_fold, with_final.out_of_fold);
        let alone = train(&examples, 3, &cfg).unwrap();
        assert_eq!(model.predict(&data[0].0), alone.predict(&data[0].0));
    }

    #[test]
    fn out_of_fold_probabilities_find_planted_label_flips() {
        let mut data = corpus(1500, 11);
        // Flip 5% of the labels.
        let flipped: Vec<usize> = (0..data.len()).filter(|i| i % 20 == 3).collect();
        for &i in &flipped {
            data[i].1 = (data[i].1 + 1) % 3;
        }
        let cfg = TrainConfig::default();
        let feats: Vec<Features> = data.iter().map(|(t, _)| featurize(t, &cfg.features)).collect();
        let examples: Vec<(&Features, usize)> = feats.iter().zip(&data).map(|(f, (_, y))| (f, *y)).collect();
        let cv = cross_validate(&examples, 3, 5, &cfg).unwrap();
        let given: Vec<usize> = data.iter().map(|(_, y)| *y).collect();
        let cl = confident_learning(&given, &cv.out_of_fold, 3).unwrap();
        let top: Vec<usize> = cl.flagged.iter().copied().take(50).collect();
        let hits = top.iter().filter(|i| flipped.contains(i)).count();
        // Measured: 49 of 50 (cross-validated accuracy 0.925 against a ceiling of 0.95).
        assert!(hits >= 45, "only {hits} of the top 50 flagged are planted flips ({:?})", cv.accuracy);
    }

    #[test]
    fn bad_training_input_is_refused() {
        let f = Features::default();
        assert!(train(&[], 2, &TrainConfig::default()).is_err());
        assert!(train(&[(&f, 0)], 1, &TrainConfig::default()).is_err());
        assert!(train(&[(&f, 2)], 2, &TrainConfig::default()).is_err());
        assert!(cross_validate(&[(&f, 0)], 2, 5, &TrainConfig::default()).is_err());
    }
}
