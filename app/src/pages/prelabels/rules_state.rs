//! The rules page's state, apart from its views (unit-tested without a browser): the rule
//! being written, what it sends, and how a rule and its figures read on screen.
use crate::api_types::{PrelabelRule, RuleDraft, RuleKind, RulePreviewRequest, RuleStats, RulesApplyStatus};
use crate::components::fmt_count;

/// The editor's rule: a new one (`editing` None) or a saved one being changed.
#[derive(Clone, Debug, PartialEq)]
pub struct Editor {
    pub editing: Option<i64>,
    pub name: String,
    pub kind: RuleKind,
    pub pattern: String,
    pub meta_key: String,
    /// None: the rule abstains.
    pub label: Option<String>,
    pub enabled: bool,
}

impl Editor {
    /// A new rule voting for `label` (the project's first label).
    pub fn new(label: Option<String>) -> Editor {
        Editor {
            editing: None,
            name: String::new(),
            kind: RuleKind::Keyword,
            pattern: String::new(),
            meta_key: String::new(),
            label,
            enabled: true,
        }
    }

    pub fn from_rule(r: &PrelabelRule) -> Editor {
        Editor {
            editing: Some(r.id),
            name: r.name.clone(),
            kind: r.kind,
            pattern: r.pattern.clone(),
            meta_key: r.meta_key.clone().unwrap_or_default(),
            label: r.label.clone(),
            enabled: r.enabled,
        }
    }

    fn meta_key(&self) -> Option<String> {
        (self.kind == RuleKind::Meta).then(|| self.meta_key.trim().to_string())
    }

    /// What Save sends; an unnamed rule is named after what it looks for.
    pub fn draft(&self) -> RuleDraft {
        let name = match self.name.trim() {
            "" => describe_pattern(self.kind, &self.pattern, self.meta_key().as_deref()),
            n => n.to_string(),
        };
        RuleDraft {
            name,
            kind: self.kind,
            pattern: self.pattern.clone(),
            meta_key: self.meta_key(),
            label: self.label.clone(),
            enabled: self.enabled,
        }
    }

    /// What the live preview sends; None until there is something to look for.
    pub fn preview_request(&self) -> Option<RulePreviewRequest> {
        if self.pattern.trim().is_empty() || (self.kind == RuleKind::Meta && self.meta_key.trim().is_empty()) {
            return None;
        }
        Some(RulePreviewRequest {
            kind: self.kind,
            pattern: self.pattern.clone(),
            meta_key: self.meta_key(),
            label: self.label.clone(),
            editing: self.editing,
        })
    }
}

/// `keyword "loved, great"`, `regex /terribl[ey]/`, `meta src = "b"`.
pub fn describe_pattern(kind: RuleKind, pattern: &str, meta_key: Option<&str>) -> String {
    match kind {
        RuleKind::Keyword => format!("keyword \"{pattern}\""),
        RuleKind::Regex => format!("regex /{pattern}/"),
        RuleKind::Meta => format!("meta {} = \"{pattern}\"", meta_key.unwrap_or("")),
    }
}

/// What a rule votes for: the label, or "abstains".
pub fn vote_text(label: Option<&str>) -> String {
    label.map_or_else(|| "abstains".to_string(), |l| format!("→ {l}"))
}

/// "1,234 · 12.3%": matched items and their share of the project's items.
pub fn coverage_text(s: &RuleStats, items: i64) -> String {
    let share = if items > 0 { format!("{:.1}%", s.coverage as f64 * 100.0 / items as f64) } else { "–".into() };
    format!("{} · {share}", crate::components::fmt_count(s.coverage))
}

/// Which kinds the kind field offers, with their names on screen.
pub const KINDS: [(RuleKind, &str); 3] =
    [(RuleKind::Keyword, "Keyword"), (RuleKind::Regex, "Regular expression"), (RuleKind::Meta, "Attribute equals")];

/// What the page says about the newest Apply job: (good news, text, finished). Apply is a
/// background job; the page follows it until it finishes.
pub fn apply_text(s: &RulesApplyStatus) -> (bool, String, bool) {
    let Some(job) = &s.job else { return (false, "No Apply job was found.".into(), true) };
    match job.state.as_str() {
        "queued" => (true, "Applying the rules: waiting for the job runner…".into(), false),
        "running" if job.progress_total > 0 => (
            true,
            format!("Applying the rules: step {} of {}…", (job.progress_done + 1).min(job.progress_total), job.progress_total),
            false,
        ),
        "running" => (true, "Applying the rules…".into(), false),
        "done" => match &s.applied {
            Some(a) => (
                true,
                format!(
                    "Applied: {} pre-labels from the label model ({} EM iterations{}).",
                    fmt_count(a.prelabels),
                    a.iterations,
                    if a.converged { "" } else { ", not converged" }
                ),
                true,
            ),
            None => (false, "The Apply job finished without a result.".into(), true),
        },
        _ => (false, format!("Applying the rules failed: {}", job.error.as_deref().unwrap_or("no reason given")), true),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_types::{JobInfo, RulesApplied};

    #[test]
    fn apply_text_follows_the_job_to_its_result_or_error() {
        let job = |state: &str, done: i64, total: i64, error: Option<&str>| JobInfo {
            id: 1,
            kind: "rules_apply".into(),
            state: state.into(),
            progress_done: done,
            progress_total: total,
            error: error.map(str::to_string),
            created_at: 0,
            started_at: None,
            heartbeat_at: None,
            finished_at: None,
        };
        let older = RulesApplied { source_id: 1, prelabels: 5, iterations: 2, converged: true };
        let s = |j, a: Option<RulesApplied>| RulesApplyStatus { job: Some(j), applied: a };
        assert!(!apply_text(&s(job("queued", 0, 0, None), Some(older.clone()))).2);
        assert_eq!(
            apply_text(&s(job("running", 1, 3, None), Some(older.clone()))),
            (true, "Applying the rules: step 2 of 3…".to_string(), false)
        );
        let done = RulesApplied { source_id: 1, prelabels: 1234, iterations: 7, converged: false };
        assert_eq!(
            apply_text(&s(job("done", 3, 3, None), Some(done))),
            (true, "Applied: 1,234 pre-labels from the label model (7 EM iterations, not converged).".to_string(), true)
        );
        let failed = apply_text(&s(job("failed", 1, 3, Some("the rules give no pre-labels: x")), Some(older)));
        assert_eq!(failed, (false, "Applying the rules failed: the rules give no pre-labels: x".to_string(), true));
    }

    #[test]
    fn drafts_name_themselves_and_drop_the_unused_key() {
        let mut e = Editor::new(Some("pos".into()));
        assert_eq!(e.preview_request(), None, "nothing to look for yet");
        e.pattern = "loved great".into();
        e.meta_key = "left over".into();
        let d = e.draft();
        assert_eq!((d.name.as_str(), d.meta_key, d.label.as_deref()), ("keyword \"loved great\"", None, Some("pos")));
        e.kind = RuleKind::Meta;
        e.meta_key = " ".into();
        assert_eq!(e.preview_request(), None, "an attribute rule needs its attribute");
        e.meta_key = "src".into();
        e.editing = Some(4);
        e.label = None;
        let p = e.preview_request().unwrap();
        assert_eq!((p.meta_key.as_deref(), p.editing, p.label), (Some("src"), Some(4), None));
        assert_eq!(e.draft().name, "meta src = \"loved great\"");
    }

    #[test]
    fn figures_read_as_counts_and_shares() {
        let s = RuleStats { coverage: 1234, ..Default::default() };
        assert_eq!(coverage_text(&s, 10_000), "1,234 · 12.3%");
        assert_eq!(coverage_text(&s, 0), "1,234 · –");
        assert_eq!(vote_text(None), "abstains");
        assert_eq!(vote_text(Some("neg")), "→ neg");
        assert_eq!(describe_pattern(RuleKind::Regex, "a+", None), "regex /a+/");
    }
}
