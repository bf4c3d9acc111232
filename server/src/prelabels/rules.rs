//! Labeling rules: a lead's keyword, regular-expression or attribute rules, each voting for one
//! label on the items it matches (or abstaining), their statistics, and the label model that
//! turns their votes into pre-labels.
//!
//! A rule runs against a project's [`Corpus`] (`rules_index`: item texts, an inverted index of
//! lowercased words, an index of `meta` values), cached in memory per project, so a rule's
//! statistics over 100,000 items cost one posting-list merge (keyword, attribute) or one pass
//! of the regular expression over the texts, not a database read.
//!
//! Statistics per rule, over the project's items (`statistics`): coverage (items matched),
//! overlap (matched items some other enabled rule also matches), conflict (matched items some
//! other enabled rule votes a different label for), and accuracy on matched items that have a
//! final label (`review::final_label`), with its Wilson interval and n (`stats::proportion`).
//!
//! The label model (`label`): the enabled rules that vote are the voters of the statistics
//! core's `label_model` (Dawid–Skene with abstention as an answer: plain Dawid–Skene over the
//! votes cast is uninformative for voters that only ever say one label, see there), fitted on
//! every item with the items' single final labels as gold; each item some voter fires on gets
//! the model's most probable label, its posterior as the score, computed from the votes alone
//! (its own final label is not looked at, so the pre-label of a labeled item is an honest
//! prediction the audit can measure).
use app::api_types::{RuleKind, RuleStats, StatValue};
use regex::{Regex, RegexBuilder};

pub use super::rules_index::Corpus;
use super::share;
use crate::stats::label_model::{self, LabelModelOptions};

enum Matcher {
    /// Lowercased words; an item matches when it contains any of them as a whole word.
    Keyword(Vec<String>),
    Regex(Regex),
    /// (attribute, value as text).
    Meta(String, String),
}

/// A rule ready to run: its matcher and the code of the label it votes for (None: abstains).
pub struct Rule {
    matcher: Matcher,
    pub label: Option<u16>,
}

/// Longest pattern accepted, and the compiled size limit: a rule runs over every item while
/// the lead types, so it must stay cheap.
pub const MAX_PATTERN: usize = 1000;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// A keyword pattern's words: separated by white space or commas, lowercased.
pub fn keyword_words(pattern: &str) -> Vec<String> {
    pattern.split(|c: char| c.is_whitespace() || c == ',').filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

/// Words of a text as the keyword rules see them: maximal runs of letters and digits, lowercased.
pub fn words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty())
}

/// Checks a rule against the project's labels; the message names what is wrong.
pub fn compile(
    kind: RuleKind,
    pattern: &str,
    meta_key: Option<&str>,
    label: Option<&str>,
    labels: &[String],
) -> Result<Rule, String> {
    let label = match label {
        None => None,
        Some(name) => Some(
            labels.iter().position(|l| l == name).ok_or_else(|| format!("{name:?} is not one of the project's labels"))?
                as u16,
        ),
    };
    if pattern.chars().count() > MAX_PATTERN {
        return Err(format!("a pattern must be at most {MAX_PATTERN} characters"));
    }
    let matcher = match kind {
        RuleKind::Keyword => {
            let words = keyword_words(pattern);
            if words.is_empty() {
                return Err("a keyword rule needs at least one word".into());
            }
            if let Some(w) = words.iter().find(|w| w.contains(|c: char| !c.is_alphanumeric())) {
                return Err(format!(
                    "{w:?} is not one word (letters and digits only; use a regular expression for phrases)"
                ));
            }
            Matcher::Keyword(words)
        }
        RuleKind::Regex => {
            if pattern.is_empty() {
                return Err("a regular expression rule needs a pattern".into());
            }
            let re = RegexBuilder::new(pattern)
                .case_insensitive(true)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| format!("not a valid regular expression: {e}"))?;
            Matcher::Regex(re)
        }
        RuleKind::Meta => {
            let key = meta_key.map(str::trim).unwrap_or("");
            if key.is_empty() {
                return Err("an attribute rule needs the attribute's name (meta_key)".into());
            }
            Matcher::Meta(key.to_string(), pattern.to_string())
        }
    };
    Ok(Rule { matcher, label })
}

/// The positions (in the corpus) of the items the rule matches, ascending.
pub fn hits(rule: &Rule, corpus: &Corpus) -> Vec<u32> {
    match &rule.matcher {
        Matcher::Keyword(words) => {
            let lists: Vec<&[u32]> = words.iter().filter_map(|w| corpus.postings(w)).collect();
            union(&lists)
        }
        Matcher::Regex(re) => (0..corpus.len() as u32).filter(|&i| re.is_match(corpus.text(i as usize))).collect(),
        Matcher::Meta(key, value) => corpus.meta_postings(key, value).map(<[u32]>::to_vec).unwrap_or_default(),
    }
}

/// The sorted union of ascending lists.
fn union(lists: &[&[u32]]) -> Vec<u32> {
    match lists {
        [] => Vec::new(),
        [one] => one.to_vec(),
        _ => {
            let mut all: Vec<u32> = lists.iter().flat_map(|l| l.iter().copied()).collect();
            all.sort_unstable();
            all.dedup();
            all
        }
    }
}

/// What the other rules do on each item: how many match it, how many vote on it, and how many
/// vote each label. Built once per request from the enabled rules' hits (O(total hits)).
pub struct Fabric {
    matched: Vec<u16>,
    voting: Vec<u16>,
    by_label: Vec<Vec<u16>>,
}

impl Fabric {
    pub fn new(n_items: usize, n_labels: usize, rules: &[(&Rule, &[u32])]) -> Fabric {
        let mut f = Fabric { matched: vec![0; n_items], voting: vec![0; n_items], by_label: vec![Vec::new(); n_labels] };
        for (rule, hits) in rules {
            for &i in *hits {
                f.matched[i as usize] = f.matched[i as usize].saturating_add(1);
            }
            if let Some(l) = rule.label {
                let counts = &mut f.by_label[l as usize];
                if counts.is_empty() {
                    *counts = vec![0; n_items];
                }
                for &i in *hits {
                    f.voting[i as usize] = f.voting[i as usize].saturating_add(1);
                    counts[i as usize] = counts[i as usize].saturating_add(1);
                }
            }
        }
        f
    }

    /// Items any voting rule of the fabric votes on.
    pub fn covered(&self) -> i64 {
        self.voting.iter().filter(|&&v| v > 0).count() as i64
    }
}

/// Each item's final labels as label codes, by corpus position (None: no final label yet).
pub type Finals = Vec<Option<Box<[u16]>>>;

/// A rule's statistics given its hits and the fabric of the other rules. `in_fabric`: the
/// rule is itself one of the fabric's rules (an enabled saved rule), so its own match is not
/// counted as another's.
pub fn statistics(rule: &Rule, hits: &[u32], fabric: &Fabric, in_fabric: bool, finals: &Finals) -> RuleStats {
    let own = in_fabric as u16;
    let overlap = hits.iter().filter(|&&i| fabric.matched[i as usize] > own).count() as i64;
    let mut conflict = 0;
    let (mut labeled, mut correct) = (0i64, 0i64);
    if let Some(l) = rule.label {
        let mine = &fabric.by_label[l as usize];
        for &i in hits {
            let i = i as usize;
            // Votes of other labels: every vote on the item minus those for this label (the
            // rule's own vote, when it is in the fabric, is among both and cancels).
            let same = if mine.is_empty() { 0 } else { mine[i] };
            conflict += (fabric.voting[i] > same) as i64;
            if let Some(f) = &finals[i] {
                labeled += 1;
                correct += f.contains(&l) as i64;
            }
        }
    }
    let accuracy = if rule.label.is_none() {
        StatValue { reason: Some("the rule abstains: it votes for no label".into()), ..Default::default() }
    } else if labeled == 0 {
        StatValue { reason: Some("no matched item has a final label yet".into()), ..Default::default() }
    } else {
        share(correct, labeled)
    };
    RuleStats { coverage: hits.len() as i64, overlap, conflict, accuracy }
}

/// The label model's pre-labels: (corpus position, label code, probability) for every item
/// at least one voting rule fires on, and the fitted model's iterations and convergence.
/// `voters`: the enabled rules that vote, with their hits.
pub fn label(
    voters: &[(&Rule, &[u32])],
    n_items: usize,
    n_labels: usize,
    finals: &Finals,
) -> Result<(Vec<(u32, u16, f64)>, usize, bool), crate::stats::Undefined> {
    let mut fired: Vec<Vec<u32>> = vec![Vec::new(); n_items];
    for (j, (_, hits)) in voters.iter().enumerate() {
        for &i in *hits {
            fired[i as usize].push(j as u32);
        }
    }
    let voter_labels: Vec<usize> = voters.iter().map(|(r, _)| r.label.expect("voters vote") as usize).collect();
    let gold: Vec<(usize, usize)> = finals
        .iter()
        .enumerate()
        .filter_map(|(i, f)| match f.as_deref() {
            Some([one]) => Some((i, *one as usize)),
            _ => None,
        })
        .collect();
    let model = label_model::fit(&fired, &voter_labels, n_labels, &LabelModelOptions { gold, ..Default::default() })?;
    let voted: Vec<u32> = (0..n_items as u32).filter(|&i| !fired[i as usize].is_empty()).collect();
    let out = voted
        .iter()
        .zip(model.posteriors(voted.iter().map(|&i| fired[i as usize].as_slice())))
        .map(|(&i, p)| {
            let (c, prob) = label_model::best(&p);
            (i, c as u16, prob)
        })
        .collect();
    Ok((out, model.iterations, model.converged))
}

#[cfg(test)]
mod tests {
    use super::super::rules_index::CorpusBuilder;
    use super::*;

    fn labels() -> Vec<String> {
        vec!["spam".into(), "ham".into()]
    }

    #[test]
    fn bad_rules_are_named() {
        let l = labels();
        let err = |kind, pattern: &str, key: Option<&str>, label: Option<&str>| {
            compile(kind, pattern, key, label, &l).err().unwrap()
        };
        assert_eq!(err(RuleKind::Keyword, " , ", None, Some("spam")), "a keyword rule needs at least one word");
        assert_eq!(
            err(RuleKind::Keyword, "free-money", None, Some("spam")),
            "\"free-money\" is not one word (letters and digits only; use a regular expression for phrases)"
        );
        assert_eq!(err(RuleKind::Keyword, "win", None, Some("eggs")), "\"eggs\" is not one of the project's labels");
        assert!(err(RuleKind::Regex, "(unclosed", None, Some("spam")).starts_with("not a valid regular expression"));
        assert_eq!(err(RuleKind::Regex, "", None, None), "a regular expression rule needs a pattern");
        assert!(err(RuleKind::Regex, &"x".repeat(1001), None, Some("spam")).contains("at most 1000"));
        assert_eq!(err(RuleKind::Meta, "boss", Some(" "), None), "an attribute rule needs the attribute's name (meta_key)");
    }

    #[test]
    fn coverage_overlap_conflict_and_accuracy() {
        let l = labels();
        let mut b = CorpusBuilder::default();
        b.push(1, Some("You are a WINNER! Unsubscribe here."), "{}");
        b.push(2, Some("Free lunch today"), r#"{"sender": "boss"}"#);
        b.push(3, Some("freedom is not free-ish"), "{}");
        b.push(4, Some("Meeting at noon"), r#"{"sender": "boss", "n": 3}"#);
        b.push(5, None, "{}");
        let corpus = b.finish();
        let rules: Vec<Rule> = vec![
            compile(RuleKind::Keyword, "FREE, winner", None, Some("spam"), &l).unwrap(),
            compile(RuleKind::Regex, r"unsubscribe\s+here", None, Some("spam"), &l).unwrap(),
            compile(RuleKind::Meta, "boss", Some("sender"), Some("ham"), &l).unwrap(),
            compile(RuleKind::Meta, "3", Some("n"), None, &l).unwrap(),
        ];
        let h: Vec<Vec<u32>> = rules.iter().map(|r| hits(r, &corpus)).collect();
        // "free-ish" splits into "free" and "ish": a whole-word match; "freedom" is not.
        assert_eq!(h, vec![vec![0, 1, 2], vec![0], vec![1, 3], vec![3]]);
        let finals: Finals = vec![Some(vec![0].into()), Some(vec![1].into()), None, Some(vec![1].into()), Some(vec![1].into())];
        let all: Vec<(&Rule, &[u32])> = rules.iter().zip(&h).map(|(r, h)| (r, h.as_slice())).collect();
        let fabric = Fabric::new(corpus.len(), 2, &all);
        let s: Vec<RuleStats> = (0..4).map(|r| statistics(&rules[r], &h[r], &fabric, true, &finals)).collect();
        let tuple = |s: &RuleStats| (s.coverage, s.overlap, s.conflict, s.accuracy.n, s.accuracy.value);
        assert_eq!(tuple(&s[0]), (3, 2, 1, 2, Some(0.5)));
        assert_eq!(tuple(&s[1]), (1, 1, 0, 1, Some(1.0)));
        assert_eq!(tuple(&s[2]), (2, 2, 1, 2, Some(1.0)));
        assert_eq!(tuple(&s[3]), (1, 1, 0, 0, None));
        assert_eq!(s[3].accuracy.reason.as_deref(), Some("the rule abstains: it votes for no label"));
        assert_eq!(fabric.covered(), 4);
        // The same keyword rule as an unsaved draft against the other three: the same figures.
        let others = Fabric::new(corpus.len(), 2, &all[1..]);
        assert_eq!(statistics(&rules[0], &h[0], &others, false, &finals), s[0]);
    }

    #[test]
    fn the_label_model_labels_what_the_rules_vote_on() {
        let l = labels();
        let mut b = CorpusBuilder::default();
        for i in 0..40 {
            // Items 0..20 say "free" (spam), 20..40 "meeting" (ham); every fourth says both.
            let text = match (i < 20, i % 4 == 0) {
                (true, false) => "free offer",
                (false, false) => "meeting notes",
                _ => "free meeting",
            };
            b.push(i + 1, Some(text), "{}");
        }
        b.push(41, Some("nothing"), "{}");
        let corpus = b.finish();
        let rules = [
            compile(RuleKind::Keyword, "free", None, Some("spam"), &l).unwrap(),
            compile(RuleKind::Keyword, "meeting", None, Some("ham"), &l).unwrap(),
        ];
        let h: Vec<Vec<u32>> = rules.iter().map(|r| hits(r, &corpus)).collect();
        let voters: Vec<(&Rule, &[u32])> = rules.iter().zip(&h).map(|(r, h)| (r, h.as_slice())).collect();
        let finals: Finals = vec![None; corpus.len()];
        let (labels_out, _, converged) = label(&voters, corpus.len(), 2, &finals).unwrap();
        assert!(converged);
        assert_eq!(labels_out.len(), 40, "the item nothing fires on gets no pre-label");
        assert!(labels_out.iter().all(|&(_, _, p)| (0.5..=1.0).contains(&p)));
        assert_eq!(labels_out[1].1, 0, "\"free offer\" is spam");
        assert_eq!(labels_out[21].1, 1, "\"meeting notes\" is ham");
    }
}
