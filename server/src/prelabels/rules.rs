//! Labeling rules: a lead's keyword, regular-expression or attribute rules, each voting for one
//! label on the items it matches (or abstaining), and their statistics.
//!
//! Statistics per rule, over the items it is run on: coverage (items matched), overlap (matched
//! items some other rule also matches), conflict (matched items some other rule votes a
//! different label for), and accuracy on items that already have a final label, with a Wilson
//! interval.
//!
//! Not here yet: the label model that combines the votes. Plain Dawid–Skene over the votes is
//! uninformative (a rule only ever gives its own label, so its confusion rows are identical and
//! every vote has likelihood ratio 1); it needs abstention modelled as an answer (a "given"
//! category that is not a true class), which the statistics core does not have yet.
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::stats::proportion::{wilson_interval, ProportionInterval};

/// What a rule looks for, as a lead writes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RuleSpec {
    /// Any of the words, as whole words, ignoring case.
    Keyword { words: Vec<String>, label: String },
    /// A regular expression anywhere in the text, ignoring case.
    Regex { pattern: String, label: String },
    /// A slice attribute equal to a value (compared as text).
    MetaEquals { attribute: String, value: String, label: String },
}

enum Matcher {
    Keyword(Vec<String>),
    Regex(Regex),
    MetaEquals(String, String),
}

/// A rule ready to run: its matcher and the code of the label it votes for.
pub struct Rule {
    matcher: Matcher,
    pub label: usize,
}

/// Longest regular expression accepted, and the compiled size limit: a rule runs over every
/// item while the lead types, so it must stay cheap.
const MAX_PATTERN: usize = 1000;
const REGEX_SIZE_LIMIT: usize = 1 << 20;

/// Checks a rule against the project's labels; the message names what is wrong.
pub fn compile(spec: &RuleSpec, labels: &[String]) -> Result<Rule, String> {
    let label_of = |name: &str| {
        labels.iter().position(|l| l == name).ok_or_else(|| format!("{name:?} is not one of the project's labels"))
    };
    Ok(match spec {
        RuleSpec::Keyword { words, label } => {
            let words: Vec<String> =
                words.iter().map(|w| w.trim().to_lowercase()).filter(|w| !w.is_empty()).collect();
            if words.is_empty() {
                return Err("a keyword rule needs at least one word".into());
            }
            if let Some(w) = words.iter().find(|w| w.contains(|c: char| !c.is_alphanumeric())) {
                return Err(format!("{w:?} is not one word (letters and digits only; use a regular expression for phrases)"));
            }
            Rule { matcher: Matcher::Keyword(words), label: label_of(label)? }
        }
        RuleSpec::Regex { pattern, label } => {
            if pattern.is_empty() || pattern.len() > MAX_PATTERN {
                return Err(format!("a pattern must be 1 to {MAX_PATTERN} characters"));
            }
            let re = RegexBuilder::new(pattern)
                .case_insensitive(true)
                .size_limit(REGEX_SIZE_LIMIT)
                .build()
                .map_err(|e| format!("not a valid regular expression: {e}"))?;
            Rule { matcher: Matcher::Regex(re), label: label_of(label)? }
        }
        RuleSpec::MetaEquals { attribute, value, label } => {
            if attribute.is_empty() {
                return Err("an attribute rule needs the attribute's name".into());
            }
            Rule { matcher: Matcher::MetaEquals(attribute.clone(), value.clone()), label: label_of(label)? }
        }
    })
}

/// One item as the rules see it.
pub struct RuleItem<'a> {
    pub text: &'a str,
    pub meta: &'a Map<String, Value>,
    /// The item's final label code, when it has one (for accuracy).
    pub final_label: Option<usize>,
}

fn meta_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Which rules match each item: `votes[i]` lists the indices of the rules matching item i.
pub fn apply(rules: &[Rule], items: &[RuleItem<'_>]) -> Vec<Vec<u32>> {
    let needs_words = rules.iter().any(|r| matches!(r.matcher, Matcher::Keyword(_)));
    let mut words: Vec<String> = Vec::new();
    items
        .iter()
        .map(|item| {
            if needs_words {
                words.clear();
                words.extend(
                    item.text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase),
                );
            }
            rules
                .iter()
                .enumerate()
                .filter(|(_, r)| match &r.matcher {
                    Matcher::Keyword(ws) => ws.iter().any(|w| words.iter().any(|x| x == w)),
                    Matcher::Regex(re) => re.is_match(item.text),
                    Matcher::MetaEquals(a, v) => item.meta.get(a).and_then(meta_text).is_some_and(|x| &x == v),
                })
                .map(|(i, _)| i as u32)
                .collect()
        })
        .collect()
}

/// A rule's statistics over a set of items.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RuleStats {
    pub items: u64,
    pub coverage: u64,
    pub overlap: u64,
    pub conflict: u64,
    /// Matched items with a final label, and how many of those carry the rule's label.
    pub labeled: u64,
    pub correct: u64,
    /// Accuracy on those with its Wilson 95% interval; None when no matched item is labeled.
    pub accuracy: Option<ProportionInterval>,
}

pub fn statistics(rules: &[Rule], items: &[RuleItem<'_>], votes: &[Vec<u32>]) -> Vec<RuleStats> {
    let mut stats: Vec<RuleStats> = rules
        .iter()
        .map(|_| RuleStats {
            items: items.len() as u64,
            coverage: 0,
            overlap: 0,
            conflict: 0,
            labeled: 0,
            correct: 0,
            accuracy: None,
        })
        .collect();
    for (item, v) in items.iter().zip(votes) {
        for &r in v {
            let s = &mut stats[r as usize];
            let label = rules[r as usize].label;
            s.coverage += 1;
            s.overlap += (v.len() > 1) as u64;
            s.conflict += v.iter().any(|&o| rules[o as usize].label != label) as u64;
            if let Some(f) = item.final_label {
                s.labeled += 1;
                s.correct += (f == label) as u64;
            }
        }
    }
    for s in &mut stats {
        s.accuracy = wilson_interval(s.correct, s.labeled, 0.95).ok();
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn labels() -> Vec<String> {
        vec!["spam".into(), "ham".into()]
    }

    #[test]
    fn bad_rules_are_named() {
        let l = labels();
        let err = |spec: RuleSpec| compile(&spec, &l).err().unwrap();
        assert_eq!(
            err(RuleSpec::Keyword { words: vec![" ".into()], label: "spam".into() }),
            "a keyword rule needs at least one word"
        );
        assert_eq!(
            err(RuleSpec::Keyword { words: vec!["free money".into()], label: "spam".into() }),
            "\"free money\" is not one word (letters and digits only; use a regular expression for phrases)"
        );
        assert_eq!(
            err(RuleSpec::Keyword { words: vec!["win".into()], label: "eggs".into() }),
            "\"eggs\" is not one of the project's labels"
        );
        assert!(err(RuleSpec::Regex { pattern: "(unclosed".into(), label: "spam".into() })
            .starts_with("not a valid regular expression"));
        assert!(err(RuleSpec::Regex { pattern: "x".repeat(1001), label: "spam".into() }).contains("1 to 1000"));
    }

    #[test]
    fn coverage_overlap_conflict_and_accuracy() {
        let l = labels();
        let rules: Vec<Rule> = [
            RuleSpec::Keyword { words: vec!["FREE".into(), "winner".into()], label: "spam".into() },
            RuleSpec::Regex { pattern: r"unsubscribe\s+here".into(), label: "spam".into() },
            RuleSpec::MetaEquals { attribute: "sender".into(), value: "boss".into(), label: "ham".into() },
        ]
        .iter()
        .map(|s| compile(s, &l).unwrap())
        .collect();
        let none = Map::new();
        let boss = json!({"sender": "boss"}).as_object().unwrap().clone();
        let items = vec![
            RuleItem { text: "You are a WINNER! Unsubscribe here.", meta: &none, final_label: Some(0) },
            RuleItem { text: "Free lunch today", meta: &boss, final_label: Some(1) },
            RuleItem { text: "freedom is not free-ish", meta: &none, final_label: None },
            RuleItem { text: "Meeting at noon", meta: &boss, final_label: Some(1) },
            RuleItem { text: "nothing", meta: &none, final_label: Some(1) },
        ];
        let votes = apply(&rules, &items);
        // "free-ish" splits into "free" and "ish": a whole-word match; "freedom" is not.
        assert_eq!(votes, vec![vec![0, 1], vec![0, 2], vec![0], vec![2], vec![]]);
        let s = statistics(&rules, &items, &votes);
        assert_eq!((s[0].coverage, s[0].overlap, s[0].conflict, s[0].labeled, s[0].correct), (3, 2, 1, 2, 1));
        assert_eq!((s[1].coverage, s[1].overlap, s[1].conflict, s[1].labeled, s[1].correct), (1, 1, 0, 1, 1));
        assert_eq!((s[2].coverage, s[2].overlap, s[2].conflict, s[2].labeled, s[2].correct), (2, 1, 1, 2, 2));
        assert_eq!(s[0].accuracy.unwrap().estimate, 0.5);
        assert_eq!(s[0].items, 5);
    }
}
