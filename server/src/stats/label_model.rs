//! The label model for labeling rules: Dawid–Skene (1979) for voters that either vote for one
//! fixed label or abstain.
//!
//! A labeling rule only ever says its own label, so in plain Dawid–Skene over the votes cast
//! its confusion row is the same for every true class (P(given = its label | c) = 1) and its
//! vote carries no evidence: every item's posterior would stay at the priors. What does carry
//! evidence is *when* a rule fires. So each voter j (a rule voting for label l_j) answers on
//! every item, with one of two answers: "l_j" (it fires) or "abstain", and its confusion matrix
//! is the firing rate per true class, f_jc = P(j fires | true class c). This is Dawid–Skene
//! with a two-letter answer alphabet per voter, the generative model of data programming
//! (Ratner et al., "Data Programming: Creating Large Training Sets, Quickly", NeurIPS 2016,
//! with conditionally independent labeling functions).
//!
//! Posterior of item i: T_ic ∝ π_c Π_{j fires} f_jc Π_{j abstains} (1 - f_jc), in log space
//! as log π_c + Σ_j log(1 - f_jc) + Σ_{j fires} [log f_jc - log(1 - f_jc)], so an item costs
//! its own firings, not the number of rules.
//!
//! EM as in [`super::dawid_skene`]: initialised from the shares of the votes cast (uniform for
//! items nothing fires on), then E-step, M-step until the mean log-likelihood per item improves
//! by less than `tol`. Items with a known label (`gold`) keep a one-hot posterior and teach the
//! model. The M-step adds one to each count (Laplace's rule of succession: π_c = (n_c + 1) /
//! (N + L), f_jc = (fires_jc + 1) / (n_c + 2)), so a rule never seen firing off its label is
//! still not taken as certain, and a log is never of zero.
//!
//! EM runs over firing patterns: items with the same set of firing voters and the same gold
//! answer share one weighted row (100,000 items under ten rules have at most a few hundred).

use std::collections::HashMap;

use super::Undefined;

#[derive(Debug, Clone, PartialEq)]
pub struct LabelModelOptions {
    /// Iteration limit (default 100).
    pub max_iter: usize,
    /// Stop when the mean log-likelihood per item improves by less than this (default 1e-9).
    pub tol: f64,
    /// Known labels: (item, label) codes.
    pub gold: Vec<(usize, usize)>,
}

impl Default for LabelModelOptions {
    fn default() -> Self {
        LabelModelOptions { max_iter: 100, tol: 1e-9, gold: Vec::new() }
    }
}

/// A fitted label model.
#[derive(Debug, Clone, PartialEq)]
pub struct LabelModel {
    /// π_c, the class priors.
    pub priors: Vec<f64>,
    /// f_jc = P(voter j fires | true class c), row-major: `firing[j * n_labels + c]`.
    pub firing: Vec<f64>,
    pub voter_labels: Vec<usize>,
    pub iterations: usize,
    pub converged: bool,
    /// Mean log-likelihood per item at the last E-step.
    pub log_likelihood: f64,
}

/// Firing patterns: one row per distinct (sorted firing voters, gold), with its item count.
struct Patterns {
    fired: Vec<Vec<u32>>,
    gold: Vec<Option<usize>>,
    weights: Vec<f64>,
}

fn patterns(fired: &[Vec<u32>], gold: &[Option<usize>]) -> Patterns {
    let mut at: HashMap<(&[u32], Option<usize>), usize> = HashMap::new();
    let mut p = Patterns { fired: Vec::new(), gold: Vec::new(), weights: Vec::new() };
    for (f, g) in fired.iter().zip(gold) {
        let row = *at.entry((f.as_slice(), *g)).or_insert_with(|| {
            p.fired.push(f.clone());
            p.gold.push(*g);
            p.weights.push(0.0);
            p.weights.len() - 1
        });
        p.weights[row] += 1.0;
    }
    p
}

/// Fits the label model. `fired[i]` lists the voters firing on item i (ascending, no repeats);
/// `voter_labels[j]` is the label voter j votes for, among `n_labels`.
pub fn fit(
    fired: &[Vec<u32>],
    voter_labels: &[usize],
    n_labels: usize,
    options: &LabelModelOptions,
) -> Result<LabelModel, Undefined> {
    let (l, v) = (n_labels, voter_labels.len());
    if l < 2 {
        return Err(Undefined::new("a label model needs at least two labels"));
    }
    if v == 0 || fired.iter().all(|f| f.is_empty()) {
        return Err(Undefined::new("no rule fires on any item"));
    }
    if voter_labels.iter().any(|&c| c >= l) {
        return Err(Undefined::new("a rule votes for an unknown label"));
    }
    if fired.iter().any(|f| f.windows(2).any(|w| w[0] >= w[1]) || f.iter().any(|&j| j as usize >= v)) {
        return Err(Undefined::new("an item's firing rules must be known rules, ascending, without repeats"));
    }
    let mut gold: Vec<Option<usize>> = vec![None; fired.len()];
    for &(item, label) in &options.gold {
        if item >= fired.len() || label >= l {
            return Err(Undefined::new("a gold label refers to an unknown item or label"));
        }
        gold[item] = Some(label);
    }
    let rows = patterns(fired, &gold);
    let n_rows = rows.weights.len();
    // Initial posteriors: the shares of the votes cast (uniform when none is), gold one-hot.
    let mut post = vec![0.0f64; n_rows * l];
    for p in 0..n_rows {
        let out = &mut post[p * l..(p + 1) * l];
        if let Some(g) = rows.gold[p] {
            out[g] = 1.0;
        } else if rows.fired[p].is_empty() {
            out.iter_mut().for_each(|x| *x = 1.0 / l as f64);
        } else {
            for &j in &rows.fired[p] {
                out[voter_labels[j as usize]] += 1.0 / rows.fired[p].len() as f64;
            }
        }
    }
    let n_items = fired.len() as f64;
    let mut model = LabelModel {
        priors: vec![0.0; l],
        firing: vec![0.0; v * l],
        voter_labels: voter_labels.to_vec(),
        iterations: 0,
        converged: false,
        log_likelihood: f64::NEG_INFINITY,
    };
    m_step(&rows, &post, &mut model);
    let mut previous: Option<f64> = None;
    for it in 1..=options.max_iter {
        let ll = e_step(&rows, &model, &mut post) / n_items;
        m_step(&rows, &post, &mut model);
        model.iterations = it;
        model.log_likelihood = ll;
        if previous.is_some_and(|prev| ll - prev < options.tol) {
            model.converged = true;
            break;
        }
        previous = Some(ll);
    }
    Ok(model)
}

/// Priors and firing rates from the posteriors, with Laplace's add-one (module comment).
fn m_step(rows: &Patterns, post: &[f64], model: &mut LabelModel) {
    let l = model.priors.len();
    let mut class_mass = vec![0.0f64; l];
    let mut fire_mass = vec![0.0f64; model.firing.len()];
    for p in 0..rows.weights.len() {
        let w = rows.weights[p];
        let t = &post[p * l..(p + 1) * l];
        for c in 0..l {
            class_mass[c] += w * t[c];
        }
        for &j in &rows.fired[p] {
            let row = &mut fire_mass[j as usize * l..][..l];
            for c in 0..l {
                row[c] += w * t[c];
            }
        }
    }
    let total: f64 = class_mass.iter().sum();
    for c in 0..l {
        model.priors[c] = (class_mass[c] + 1.0) / (total + l as f64);
    }
    for (j, f) in fire_mass.chunks(l).enumerate() {
        for c in 0..l {
            model.firing[j * l + c] = (f[c] + 1.0) / (class_mass[c] + 2.0);
        }
    }
}

/// Each row's posterior; returns the log-likelihood of all items (for a gold item, of its
/// firings together with its label). Gold rows keep their one-hot posterior.
fn e_step(rows: &Patterns, model: &LabelModel, post: &mut [f64]) -> f64 {
    let l = model.priors.len();
    let (base, lift) = model.log_terms();
    let mut scores = vec![0.0f64; l];
    let mut total = 0.0;
    for p in 0..rows.weights.len() {
        model.scores_into(&base, &lift, &rows.fired[p], &mut scores);
        let w = rows.weights[p];
        if let Some(g) = rows.gold[p] {
            total += w * scores[g];
            continue;
        }
        total += w * normalise(&mut scores);
        post[p * l..(p + 1) * l].copy_from_slice(&scores);
    }
    total
}

/// Turns log scores into probabilities in place; returns their log-sum-exp.
fn normalise(scores: &mut [f64]) -> f64 {
    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
    for s in scores.iter_mut() {
        *s = (*s - max).exp() / sum;
    }
    max + sum.ln()
}

impl LabelModel {
    pub fn n_labels(&self) -> usize {
        self.priors.len()
    }

    /// log π_c + Σ_j log(1 - f_jc) per class, and log f_jc - log(1 - f_jc) per voter and class.
    fn log_terms(&self) -> (Vec<f64>, Vec<f64>) {
        let l = self.n_labels();
        let mut base: Vec<f64> = self.priors.iter().map(|p| p.ln()).collect();
        let mut lift = vec![0.0; self.firing.len()];
        for (j, f) in self.firing.chunks(l).enumerate() {
            for c in 0..l {
                base[c] += (1.0 - f[c]).ln();
                lift[j * l + c] = f[c].ln() - (1.0 - f[c]).ln();
            }
        }
        (base, lift)
    }

    fn scores_into(&self, base: &[f64], lift: &[f64], fired: &[u32], scores: &mut [f64]) {
        let l = self.n_labels();
        scores.copy_from_slice(base);
        for &j in fired {
            for (s, x) in scores.iter_mut().zip(&lift[j as usize * l..][..l]) {
                *s += x;
            }
        }
    }

    /// The posterior over the labels of an item on which `fired` fire (and every other voter
    /// abstains), under the fitted model: what a rule pre-label's score is.
    pub fn posterior(&self, fired: &[u32]) -> Vec<f64> {
        let (base, lift) = self.log_terms();
        let mut scores = vec![0.0; self.n_labels()];
        self.scores_into(&base, &lift, fired, &mut scores);
        normalise(&mut scores);
        scores
    }

    /// The posteriors of many items, sharing the log terms (for applying rules to every item).
    pub fn posteriors<'a>(&'a self, fired: impl IntoIterator<Item = &'a [u32]> + 'a) -> impl Iterator<Item = Vec<f64>> + 'a {
        let (base, lift) = self.log_terms();
        fired.into_iter().map(move |f| {
            let mut scores = vec![0.0; self.n_labels()];
            self.scores_into(&base, &lift, f, &mut scores);
            normalise(&mut scores);
            scores
        })
    }
}

/// The most probable label and its probability; the lowest code on an exact tie.
pub fn best(posterior: &[f64]) -> (usize, f64) {
    posterior.iter().copied().enumerate().fold((0, f64::NEG_INFINITY), |b, (c, p)| if p > b.1 { (c, p) } else { b })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::rng::SeededRng;

    fn close(a: f64, b: f64, eps: f64) -> bool {
        (a - b).abs() < eps
    }

    #[test]
    fn posterior_follows_the_formula() {
        // Two classes, two voters: j0 votes 0, j1 votes 1.
        let m = LabelModel {
            priors: vec![0.6, 0.4],
            firing: vec![0.5, 0.1, 0.2, 0.4],
            voter_labels: vec![0, 1],
            iterations: 0,
            converged: true,
            log_likelihood: 0.0,
        };
        // Only j0 fires: 0.6·0.5·0.8 against 0.4·0.1·0.6.
        let (a, b) = (0.6 * 0.5 * 0.8, 0.4 * 0.1 * 0.6);
        let p = m.posterior(&[0]);
        assert!(close(p[0], a / (a + b), 1e-12), "{p:?}");
        // Nothing fires: abstaining is evidence too. 0.6·0.5·0.8 against 0.4·0.9·0.6.
        let (a, b) = (0.6 * 0.5 * 0.8, 0.4 * 0.9 * 0.6);
        assert!(close(m.posterior(&[])[0], a / (a + b), 1e-12));
        let both: Vec<Vec<f64>> = m.posteriors([&[0u32, 1][..], &[][..]]).collect();
        assert_eq!(both[1], m.posterior(&[]));
        assert_eq!(best(&[0.2, 0.8]), (1, 0.8));
        assert_eq!(best(&[0.5, 0.5]), (0, 0.5));
    }

    /// Items drawn from the model itself: EM recovers the firing rates it was drawn with, and
    /// its labels beat a majority vote of the votes cast where rules disagree.
    #[test]
    fn recovers_planted_firing_rates() {
        let mut rng = SeededRng::new(7);
        let truth_priors = [0.7, 0.3];
        // Voter labels and firing rates per class: a precise spam rule, a noisy spam rule that
        // fires often on ham, a ham rule.
        let voters = [0usize, 0, 1];
        let rates = [[0.4, 0.02], [0.5, 0.3], [0.05, 0.6]];
        let u = |rng: &mut SeededRng| rng.below(1_000_000) as f64 / 1_000_000.0;
        let n = 40_000;
        let mut fired = Vec::with_capacity(n);
        let mut truth = Vec::with_capacity(n);
        for _ in 0..n {
            let c = if u(&mut rng) < truth_priors[0] { 0 } else { 1 };
            let f: Vec<u32> = (0..3).filter(|&j| u(&mut rng) < rates[j as usize][c]).collect();
            truth.push(c);
            fired.push(f);
        }
        // Three voters over two classes are just identified: EM creeps, so give it room.
        let m = fit(&fired, &voters, 2, &LabelModelOptions { max_iter: 2000, ..Default::default() }).unwrap();
        assert!(m.converged, "{} iterations", m.iterations);
        for j in 0..3 {
            for c in 0..2 {
                assert!(close(m.firing[j * 2 + c], rates[j][c], 0.03), "f[{j}][{c}] = {} vs {}", m.firing[j * 2 + c], rates[j][c]);
            }
        }
        assert!(close(m.priors[0], 0.7, 0.03), "{:?}", m.priors);
        // Where the noisy spam rule and the ham rule disagree, a vote count ties; the model knows
        // that the noisy rule fires on ham a third of the time and says ham.
        let p = m.posterior(&[1, 2]);
        assert_eq!(best(&p).0, 1, "{p:?}");
        let right = fired.iter().zip(&truth).filter(|(f, _)| !f.is_empty()).filter(|(f, &t)| best(&m.posterior(f)).0 == t).count();
        let voted = fired.iter().filter(|f| !f.is_empty()).count();
        assert!(right as f64 / voted as f64 > 0.8, "{right}/{voted}");
    }

    /// One voter alone cannot tell two classes apart (its firing rates stay near each other);
    /// a few gold items can. Figures from an independent re-implementation of this EM (Python,
    /// same initialisation, smoothing and stopping rule).
    #[test]
    fn gold_items_teach_the_model() {
        // Items 0..10: the voter fires; 10..20: it does not. Gold: 0, 1, 2 are class 0 and
        // 10, 11, 12 class 1.
        let fired: Vec<Vec<u32>> = (0..20).map(|i| if i < 10 { vec![0] } else { vec![] }).collect();
        let without = fit(&fired, &[0], 2, &LabelModelOptions::default()).unwrap();
        assert!(close(without.firing[0], 0.5035299895934131, 1e-9) && close(without.firing[1], 0.49606929238398473, 1e-9), "{:?}", without.firing);
        let gold = vec![(0, 0), (1, 0), (2, 0), (10, 1), (11, 1), (12, 1)];
        let with = fit(&fired, &[0], 2, &LabelModelOptions { gold, ..Default::default() }).unwrap();
        assert!(with.converged);
        assert!(close(with.firing[0], 0.7999999811211858, 1e-9) && close(with.firing[1], 0.19999998388752432, 1e-9), "{:?}", with.firing);
        assert!(close(with.priors[0], 0.5000000318102636, 1e-9), "{:?}", with.priors);
        assert!(close(with.posterior(&[0])[0], 0.8000000294727853, 1e-9));
        assert!(close(with.posterior(&[])[1], 0.7999999677608738, 1e-9));
    }

    #[test]
    fn identical_items_share_a_row() {
        let fired = vec![vec![0], vec![0, 1], vec![1], vec![], vec![0], vec![0, 1], vec![]];
        let gold = vec![None, None, None, None, Some(1), None, None];
        let p = patterns(&fired, &gold);
        assert_eq!(p.fired, vec![vec![0], vec![0, 1], vec![1], vec![], vec![0]]);
        assert_eq!(p.weights, vec![1.0, 2.0, 1.0, 2.0, 1.0]);
        assert_eq!(p.gold[4], Some(1));
    }

    #[test]
    fn undefined_inputs_say_why() {
        let e = |r: Result<LabelModel, Undefined>| r.unwrap_err().reason;
        assert_eq!(e(fit(&[vec![0]], &[0], 1, &Default::default())), "a label model needs at least two labels");
        assert_eq!(e(fit(&[vec![], vec![]], &[0], 2, &Default::default())), "no rule fires on any item");
        assert_eq!(e(fit(&[vec![0]], &[2], 2, &Default::default())), "a rule votes for an unknown label");
        assert!(e(fit(&[vec![1, 0]], &[0, 1], 2, &Default::default())).starts_with("an item's firing rules"));
        let bad_gold = LabelModelOptions { gold: vec![(5, 0)], ..Default::default() };
        assert_eq!(e(fit(&[vec![0]], &[0], 2, &bad_gold)), "a gold label refers to an unknown item or label");
    }
}
