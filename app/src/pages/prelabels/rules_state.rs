//! The rules page's state, apart from its views (unit-tested without a browser): the rule
//! being written, what it sends, and how a rule and its figures read on screen.
use crate::api_types::{PrelabelRule, RuleDraft, RuleKind, RulePreviewRequest, RuleStats};

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

#[cfg(test)]
mod tests {
    use super::*;

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
