//! Review: the queues a lead works through, the decisions that settle an item's final label,
//! and where every item's final label comes from.
//!
//! Queues (membership is computed in `store::review`):
//! - `disagreement`: complete items (with their k labels) whose answers differ, or whose
//!   consensus posterior (the `consensus` table, written by the consensus job) is below the
//!   project's `review_threshold`;
//! - `gold_miss`: a labeler's answer on a gold item differs from the gold answer (recorded by
//!   `store::review::after_annotation!` when the answer is written);
//! - `audit`: a share `audit_rate` of the complete items, drawn with `audit_seed` (`AuditDraw`);
//! - any other name: items fed through the queue API.
//!
//! A decision takes the item out of every queue. The final label of an item follows one order
//! of precedence (`final_label`, `final_label_or_auto`): adjudicated (its latest decision) >
//! gold > consensus (only once the item has all k labels: a consensus of one label out of three
//! is not an answer) > auto (an auto-accepted pre-label, `prelabels::auto_accept`) > none.
//!
//! Auto comes last among the labels because every other source is a person: a pre-label is
//! trusted only where no person has settled the item, and any human final label that arrives
//! later (labelers who held a lease, a review decision, a gold answer) wins over it without
//! anything to revoke. The final label is computed, never stored, so this order is the only
//! place that decides it.
use std::collections::BTreeSet;

use app::api_types::{FinalLabel, FinalSource, GoldAction, Project, REVIEW_QUEUES};

use crate::error::{AppError, AppResult};

/// Which rules make up a queue's membership.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueKind {
    Disagreement,
    GoldMiss,
    Audit,
    /// Fed through the queue API only.
    Custom,
}

impl QueueKind {
    pub fn of(name: &str) -> QueueKind {
        match name {
            "disagreement" => QueueKind::Disagreement,
            "gold_miss" => QueueKind::GoldMiss,
            "audit" => QueueKind::Audit,
            _ => QueueKind::Custom,
        }
    }
}

pub const MAX_QUEUE_NAME: usize = 64;

/// A queue name as it may appear in a URL: 1 to 64 of `a-z`, `0-9`, `_`, `-`.
pub fn validate_queue_name(name: &str) -> AppResult<String> {
    let ok = !name.is_empty()
        && name.len() <= MAX_QUEUE_NAME
        && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
    if ok {
        Ok(name.to_string())
    } else {
        Err(AppError::bad_request(format!(
            "a queue name has 1 to {MAX_QUEUE_NAME} characters among a-z, 0-9, _ and - (got {name:?})"
        )))
    }
}

/// The reasons the built-in queues use themselves; feeders choose their own.
pub const REASON_LABELS_DIFFER: &str = "labels_differ";
pub const REASON_LOW_POSTERIOR: &str = "low_posterior";
pub const REASON_GOLD_MISS: &str = "gold_miss";
pub const REASON_AUDIT: &str = "audit";

/// A feeder's reason: 1 to 200 characters, trimmed.
pub fn validate_reason(reason: &str) -> AppResult<String> {
    let r = reason.trim();
    if r.is_empty() || r.chars().count() > 200 {
        return Err(AppError::bad_request("reason must have 1 to 200 characters"));
    }
    Ok(r.to_string())
}

/// Label sets compared as sets: the order of a stored answer follows the label schema of the
/// day it was written, which a lead may have reordered since.
pub fn same_labels(a: &[String], b: &[String]) -> bool {
    a.iter().collect::<BTreeSet<_>>() == b.iter().collect::<BTreeSet<_>>()
}

/// True when not every answer has the same label set.
pub fn answers_differ(answers: &[Vec<String>]) -> bool {
    answers.windows(2).any(|w| !same_labels(&w[0], &w[1]))
}

/// The final label and its source; see the module comment for the order. `consensus` counts
/// only when the item has its k labels (`label_count >= k`).
pub fn final_label(
    decision: Option<Vec<String>>,
    gold: Option<Vec<String>>,
    consensus: Option<Vec<String>>,
    label_count: i64,
    k: i64,
) -> FinalLabel {
    let human = |labels: Vec<String>, source| FinalLabel { labels: Some(labels), source, auto_source: None };
    if let Some(labels) = decision {
        return human(labels, FinalSource::Adjudicated);
    }
    if let Some(labels) = gold {
        return human(labels, FinalSource::Gold);
    }
    match consensus {
        Some(labels) if label_count >= k => human(labels, FinalSource::Consensus),
        _ => FinalLabel { labels: None, source: FinalSource::None, auto_source: None },
    }
}

/// An item's auto-accepted pre-label: its labels and its source's name (`auto:<source>`).
#[derive(Clone, Debug, PartialEq)]
pub struct AutoLabel {
    pub labels: Vec<String>,
    pub source: String,
}

/// `final_label`, then the auto-accepted pre-label when no person has given one (see the
/// module comment for why auto comes last).
pub fn final_label_or_auto(
    decision: Option<Vec<String>>,
    gold: Option<Vec<String>>,
    consensus: Option<Vec<String>>,
    label_count: i64,
    k: i64,
    auto: Option<AutoLabel>,
) -> FinalLabel {
    let fin = final_label(decision, gold, consensus, label_count, k);
    match (fin.source, auto) {
        (FinalSource::None, Some(a)) => FinalLabel { labels: Some(a.labels), source: FinalSource::Auto, auto_source: Some(a.source) },
        _ => fin,
    }
}

/// A JSON array of label names as stored; None for NULL or (never written by us) garbage.
pub fn parse_labels(json: Option<&str>) -> Option<Vec<String>> {
    json.and_then(|s| serde_json::from_str(s).ok())
}

// ---- the audit draw ---------------------------------------------------------------------------

/// The modulus of the audit draw: 2^31 - 1, a prime with p ≡ 3 (mod 4), small enough that the
/// square of any residue fits in an i64 (SQLite and PostgreSQL compute it in 64-bit integers).
pub const AUDIT_P: i64 = 2_147_483_647;

/// The seeded audit draw: an item is in the audit queue when `key(id) < cut`.
///
/// `key` is Preshing's permutation by quadratic residues ("Generating a sequence of unique
/// random integers", 2012): `q(x) = x² mod p` for x ≤ p/2, else `p - (x² mod p)`, is a
/// permutation of [0, p) when p ≡ 3 (mod 4); applied twice, with the seed's two offsets, it
/// scatters consecutive ids like random numbers. It is written in plain integer arithmetic
/// (`key_sql`), so the database draws exactly the items `key` says, with no stored state:
/// changing the rate or the seed redraws at once, and the draw of an item never changes
/// otherwise (reproducible).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AuditDraw {
    pub s1: i64,
    pub s2: i64,
    /// Keys below this are drawn: rate × p.
    pub cut: i64,
}

fn qpr(x: i64) -> i64 {
    let r = (x * x) % AUDIT_P;
    if x <= AUDIT_P / 2 {
        r
    } else {
        AUDIT_P - r
    }
}

/// SplitMix64's finaliser: spreads a seed's bits so nearby seeds give unrelated offsets.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl AuditDraw {
    pub fn new(seed: i64, rate: f64) -> AuditDraw {
        let a = splitmix(seed as u64);
        let b = splitmix(a);
        let rate = if rate.is_finite() { rate.clamp(0.0, 1.0) } else { 0.0 };
        AuditDraw {
            s1: (a % AUDIT_P as u64) as i64,
            s2: (b % AUDIT_P as u64) as i64,
            cut: (rate * AUDIT_P as f64).round() as i64,
        }
    }

    pub fn key(&self, item_id: i64) -> i64 {
        let x = (item_id.rem_euclid(AUDIT_P) + self.s1) % AUDIT_P;
        qpr((qpr(x) + self.s2) % AUDIT_P)
    }

    pub fn drawn(&self, item_id: i64) -> bool {
        self.key(item_id) < self.cut
    }

    /// `key` as SQL over the integer expression `id`, with `s1` and `s2` the SQL of the two
    /// offsets (bound parameters). Each step names its input three times, so the text grows
    /// ninefold over two steps: a few hundred characters.
    pub fn key_sql(id: &str, s1: &str, s2: &str) -> String {
        fn q(x: &str) -> String {
            format!(
                "(CASE WHEN ({x}) <= {half} THEN (({x}) * ({x})) % {p} ELSE {p} - (({x}) * ({x})) % {p} END)",
                half = AUDIT_P / 2,
                p = AUDIT_P
            )
        }
        let x = format!("((({id}) % {p}) + {s1}) % {p}", p = AUDIT_P);
        q(&format!("({} + {s2}) % {p}", q(&x), p = AUDIT_P))
    }
}

// ---- queue filters ----------------------------------------------------------------------------

/// The filters of a queue listing, as given in the query string.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Filters {
    /// Two labelers (usernames, or numeric user ids) whose answers on the item differ.
    pub pair: Option<(String, String)>,
    /// A `meta` attribute and the value it must have (compared as text).
    pub slice: Option<(String, String)>,
    /// A label some answer of the item contains.
    pub label: Option<String>,
}

impl Filters {
    pub fn parse(pair: Option<&str>, slice: Option<&str>, label: Option<&str>) -> AppResult<Filters> {
        let nonempty = |s: Option<&str>| s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_string);
        let pair = match nonempty(pair) {
            None => None,
            Some(p) => match p.split_once(',') {
                Some((a, b)) if !a.trim().is_empty() && !b.trim().is_empty() && !b.contains(',') => {
                    Some((a.trim().to_string(), b.trim().to_string()))
                }
                _ => return Err(AppError::bad_request(format!("pair must be two labelers, U1,U2 (got {p:?})"))),
            },
        };
        let slice = match nonempty(slice) {
            None => None,
            Some(s) => match s.split_once(':') {
                Some((attr, value)) if !attr.is_empty() => Some((attr.to_string(), value.to_string())),
                _ => {
                    return Err(AppError::bad_request(format!(
                        "slice must be ATTRIBUTE:VALUE, a meta attribute and its value (got {s:?})"
                    )))
                }
            },
        };
        Ok(Filters { pair, slice, label: nonempty(label) })
    }
}

/// A LIKE pattern (escape character `\`) matching a stored JSON array of label names that
/// contains `label`: the label as a JSON string, quotes included, so `pos` does not match
/// `positive`.
pub fn label_like_pattern(label: &str) -> String {
    let quoted = serde_json::Value::String(label.to_string()).to_string();
    let mut out = String::from("%");
    for c in quoted.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Keys of a queue page's `limit`.
pub const DEFAULT_PAGE: i64 = 50;
pub const MAX_PAGE: i64 = 500;

// ---- decisions --------------------------------------------------------------------------------

pub const MAX_NOTE: usize = 2000;

/// A decision checked against the project's labels and the item's gold answer.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidDecision {
    pub labels: Vec<String>,
    pub note: String,
    pub queue: String,
    pub gold_action: Option<GoldAction>,
    /// The gold answer after the decision, when it changes (`gold_corrected`).
    pub new_gold: Option<Vec<String>>,
}

/// Checks a decision: labels as for a submission; a note of at most `MAX_NOTE` characters;
/// `gold_action` only on gold items, and required from the `gold_miss` queue; `labeler_wrong`
/// confirms the gold answer, so the labels must equal it.
pub fn validate_decision(
    project: &Project,
    gold: Option<&[String]>,
    labels: &[String],
    note: &str,
    queue: &str,
    gold_action: Option<GoldAction>,
) -> AppResult<ValidDecision> {
    let labels = crate::projects::validate_submitted_labels(project, labels)?;
    let note = note.trim().to_string();
    if note.chars().count() > MAX_NOTE {
        return Err(AppError::bad_request(format!("the note may have at most {MAX_NOTE} characters")));
    }
    let queue = validate_queue_name(queue)?;
    let new_gold = match (gold, gold_action) {
        (None, Some(_)) => {
            return Err(AppError::bad_request("gold_action is only for gold items, and this item has no gold answer"))
        }
        (Some(_), None) if queue == "gold_miss" => {
            return Err(AppError::bad_request(
                "a gold miss needs gold_action: labeler_wrong (the gold answer stands) or gold_corrected (it becomes these labels)",
            ))
        }
        (Some(g), Some(GoldAction::LabelerWrong)) if !same_labels(g, &labels) => {
            return Err(AppError::bad_request(format!(
                "labeler_wrong confirms the gold answer ({}), so the labels must be the gold answer",
                g.join(", ")
            )))
        }
        (Some(g), Some(GoldAction::GoldCorrected)) if !same_labels(g, &labels) => Some(labels.clone()),
        _ => None,
    };
    Ok(ValidDecision { labels, note, queue, gold_action, new_gold })
}

/// A gold answer checked against the project's labels (as a submission's labels are).
pub fn validate_gold(project: &Project, labels: &[String]) -> AppResult<Vec<String>> {
    crate::projects::validate_submitted_labels(project, labels)
}

/// The built-in queues, in the order the queue list shows them.
pub fn builtin_queues() -> impl Iterator<Item = &'static str> {
    REVIEW_QUEUES.iter().copied()
}

#[cfg(test)]
mod tests {
    use super::*;
    use app::api_types::{LabelDef, LabelKind};

    fn project() -> Project {
        let l = |n: &str, k: &str| LabelDef { name: n.into(), key: k.into(), color: "#1f77b4".into() };
        Project {
            id: 1,
            name: "p".into(),
            instructions: String::new(),
            kind: LabelKind::Single,
            labels: vec![l("pos", "1"), l("neg", "2")],
            overlap: 2,
            lease_seconds: 600,
            created_at: 0,
            quality: Default::default(),
            assignment_order: Default::default(),
        }
    }
    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn final_label_precedence() {
        let f = |d: Option<&[&str]>, g: Option<&[&str]>, c: Option<&[&str]>, n, k| {
            let r = final_label(d.map(v), g.map(v), c.map(v), n, k);
            (r.labels, r.source)
        };
        assert_eq!(f(Some(&["a"]), Some(&["b"]), Some(&["c"]), 3, 3), (Some(v(&["a"])), FinalSource::Adjudicated));
        assert_eq!(f(None, Some(&["b"]), Some(&["c"]), 3, 3), (Some(v(&["b"])), FinalSource::Gold));
        assert_eq!(f(None, None, Some(&["c"]), 3, 3), (Some(v(&["c"])), FinalSource::Consensus));
        // A consensus before the item has its k labels is no final label.
        assert_eq!(f(None, None, Some(&["c"]), 2, 3), (None, FinalSource::None));
        assert_eq!(f(None, None, None, 3, 3), (None, FinalSource::None));
    }

    #[test]
    fn every_human_final_label_wins_over_auto() {
        let auto = || Some(AutoLabel { labels: v(&["x"]), source: "m@1".into() });
        let f = |d: Option<&[&str]>, g: Option<&[&str]>, c: Option<&[&str]>, n, k| {
            let r = final_label_or_auto(d.map(v), g.map(v), c.map(v), n, k, auto());
            let p = r.provenance();
            (r.labels, p)
        };
        assert_eq!(f(Some(&["a"]), None, None, 0, 3), (Some(v(&["a"])), "adjudicated".to_string()));
        assert_eq!(f(None, Some(&["b"]), None, 0, 3), (Some(v(&["b"])), "gold".to_string()));
        assert_eq!(f(None, None, Some(&["c"]), 3, 3), (Some(v(&["c"])), "consensus".to_string()));
        // One label of three is no human final label: the auto label stands.
        assert_eq!(f(None, None, Some(&["c"]), 1, 3), (Some(v(&["x"])), "auto:m@1".to_string()));
        assert_eq!(f(None, None, None, 0, 3), (Some(v(&["x"])), "auto:m@1".to_string()));
        let none = final_label_or_auto(None, None, None, 0, 3, None);
        assert_eq!((none.provenance(), none.labels), ("none".to_string(), None));
    }

    #[test]
    fn answers_compare_as_sets() {
        assert!(!answers_differ(&[v(&["a", "b"]), v(&["b", "a"])]));
        assert!(answers_differ(&[v(&["a"]), v(&["a"]), v(&["b"])]));
        assert!(!answers_differ(&[v(&["a"])]));
        assert!(!answers_differ(&[]));
    }

    #[test]
    fn audit_draw_is_a_seeded_share() {
        // Over 20,000 consecutive ids the share drawn is within 4 standard deviations of the
        // rate, for several seeds; different seeds draw different items.
        let n = 20_000i64;
        for (seed, rate) in [(0i64, 0.02), (1, 0.02), (42, 0.1), (-7, 0.5), (i64::MAX, 0.05)] {
            let d = AuditDraw::new(seed, rate);
            let k = (1..=n).filter(|&id| d.drawn(id)).count() as f64;
            let sd = (n as f64 * rate * (1.0 - rate)).sqrt();
            assert!((k - n as f64 * rate).abs() < 4.0 * sd, "seed {seed} rate {rate}: {k} of {n}");
        }
        let (a, b) = (AuditDraw::new(1, 0.1), AuditDraw::new(2, 0.1));
        let both = (1..=n).filter(|&id| a.drawn(id) && b.drawn(id)).count();
        assert!(both < 400, "seeds 1 and 2 draw nearly the same items ({both})");
        assert_eq!(AuditDraw::new(3, 0.0).cut, 0);
        assert!((1..1000).all(|id| AuditDraw::new(3, 1.0).drawn(id)));
        // Draws do not cluster: no run of 10 consecutive ids drawn at rate 0.1.
        let d = AuditDraw::new(9, 0.1);
        assert!((1..n - 10).all(|s| (s..s + 10).any(|id| !d.drawn(id))));
    }

    #[test]
    fn qpr_is_a_permutation_on_a_small_prime_analogue() {
        // The same construction with p = 11 (≡ 3 mod 4) permutes 0..11.
        let p = 11i64;
        let q = |x: i64| if x <= p / 2 { x * x % p } else { p - x * x % p };
        let mut seen: Vec<i64> = (0..p).map(q).collect();
        seen.sort();
        assert_eq!(seen, (0..p).collect::<Vec<_>>());
    }

    #[test]
    fn filters_parse() {
        let f = Filters::parse(Some("ann,bob"), Some("region:eu:west"), Some("pos")).unwrap();
        assert_eq!(f.pair, Some(("ann".into(), "bob".into())));
        assert_eq!(f.slice, Some(("region".into(), "eu:west".into())));
        assert_eq!(f.label.as_deref(), Some("pos"));
        assert_eq!(Filters::parse(None, Some(""), None).unwrap(), Filters::default());
        assert!(Filters::parse(Some("ann"), None, None).is_err());
        assert!(Filters::parse(Some("a,b,c"), None, None).is_err());
        assert!(Filters::parse(None, Some("region"), None).is_err());
        assert!(Filters::parse(None, Some(":eu"), None).is_err());
    }

    #[test]
    fn label_patterns_escape_like_wildcards() {
        assert_eq!(label_like_pattern("pos"), "%\"pos\"%");
        assert_eq!(label_like_pattern("a_b%"), "%\"a\\_b\\%\"%");
        assert_eq!(label_like_pattern("q\"x"), "%\"q\\\\\"x\"%");
    }

    #[test]
    fn queue_names() {
        assert!(validate_queue_name("label_errors-2").is_ok());
        for bad in ["", "Upper", "a b", "ü", &"x".repeat(65)] {
            assert!(validate_queue_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn decisions_on_gold_items() {
        let p = project();
        let gold = v(&["pos"]);
        let ok = validate_decision(&p, Some(&gold), &v(&["pos"]), " fine ", "gold_miss", Some(GoldAction::LabelerWrong)).unwrap();
        assert_eq!((ok.note.as_str(), ok.new_gold.clone()), ("fine", None));
        let fixed = validate_decision(&p, Some(&gold), &v(&["neg"]), "", "gold_miss", Some(GoldAction::GoldCorrected)).unwrap();
        assert_eq!(fixed.new_gold, Some(v(&["neg"])));
        assert!(validate_decision(&p, Some(&gold), &v(&["neg"]), "", "gold_miss", Some(GoldAction::LabelerWrong)).is_err());
        assert!(validate_decision(&p, Some(&gold), &v(&["neg"]), "", "gold_miss", None).is_err());
        assert!(validate_decision(&p, None, &v(&["neg"]), "", "disagreement", Some(GoldAction::GoldCorrected)).is_err());
        assert!(validate_decision(&p, None, &v(&["nope"]), "", "disagreement", None).is_err());
        assert!(validate_decision(&p, None, &v(&["pos", "neg"]), "", "disagreement", None).is_err());
        assert!(validate_decision(&p, None, &v(&["pos"]), &"x".repeat(MAX_NOTE + 1), "disagreement", None).is_err());
        assert!(validate_decision(&p, None, &v(&["pos"]), "", "Bad Queue", None).is_err());
    }
}
