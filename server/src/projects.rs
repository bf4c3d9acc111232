//! Project settings: validation of names, label schemas and limits.
use std::collections::HashSet;

use app::api_types::{
    key_name, reserved_key, AssignmentOrder, LabelDef, LabelKind, NewProject, Project, ProjectUpdate,
    QualitySettings,
};

use crate::error::{AppError, AppResult};

pub const MAX_LABELS: usize = 64;
pub const MAX_OVERLAP: i64 = 100;
pub const MAX_LEASE_SECONDS: i64 = 24 * 3600;

pub fn validate_name(name: &str) -> AppResult<String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 200 {
        return Err(AppError::bad_request("the project name must have 1 to 200 characters"));
    }
    Ok(name.to_string())
}

pub fn validate_labels(labels: &[LabelDef]) -> AppResult<Vec<LabelDef>> {
    if labels.is_empty() {
        return Err(AppError::bad_request("a project needs at least one label"));
    }
    if labels.len() > MAX_LABELS {
        return Err(AppError::bad_request(format!("at most {MAX_LABELS} labels")));
    }
    let mut names = HashSet::new();
    let mut keys = HashSet::new();
    let mut out = Vec::with_capacity(labels.len());
    for (i, l) in labels.iter().enumerate() {
        let n = i + 1;
        let name = l.name.trim().to_string();
        if name.is_empty() || name.chars().count() > 100 {
            return Err(AppError::bad_request(format!("label {n}: the name must have 1 to 100 characters")));
        }
        if !names.insert(name.clone()) {
            return Err(AppError::bad_request(format!("label {n}: the name {name:?} is used twice")));
        }
        let key = l.key.to_lowercase();
        if key.chars().count() != 1 {
            return Err(AppError::bad_request(format!("label {n} ({name}): the key must be one character")));
        }
        // The one list the labels editor uses too (app::api_types::RESERVED_KEYS).
        if let Some(what) = reserved_key(&key) {
            return Err(AppError::bad_request(format!(
                "label {n} ({name}): the key {} is reserved: it is \"{what}\" on the labeling page",
                key_name(&key)
            )));
        }
        if !keys.insert(key.clone()) {
            return Err(AppError::bad_request(format!("label {n} ({name}): the key {key:?} is used twice")));
        }
        let color = l.color.trim().to_lowercase();
        let valid_color = color.len() == 7
            && color.starts_with('#')
            && color[1..].chars().all(|c| c.is_ascii_hexdigit());
        if !valid_color {
            return Err(AppError::bad_request(format!(
                "label {n} ({name}): the colour must look like #1f77b4"
            )));
        }
        out.push(LabelDef { name, key, color });
    }
    Ok(out)
}

fn validate_overlap(overlap: i64) -> AppResult<i64> {
    if !(1..=MAX_OVERLAP).contains(&overlap) {
        return Err(AppError::bad_request(format!("overlap must be between 1 and {MAX_OVERLAP}")));
    }
    Ok(overlap)
}

fn validate_lease(seconds: i64) -> AppResult<i64> {
    if !(1..=MAX_LEASE_SECONDS).contains(&seconds) {
        return Err(AppError::bad_request(format!(
            "lease_seconds must be between 1 and {MAX_LEASE_SECONDS}"
        )));
    }
    Ok(seconds)
}

/// Checks the quality settings' ranges; every rate and threshold is a finite share.
pub fn validate_quality(q: &QualitySettings) -> AppResult<QualitySettings> {
    let share = |name: &str, v: f64, lo: f64, hi: f64, open_lo: bool| -> AppResult<()> {
        let ok = v.is_finite() && v <= hi && if open_lo { v > lo } else { v >= lo };
        if ok {
            Ok(())
        } else {
            let lo_bracket = if open_lo { "(" } else { "[" };
            Err(AppError::bad_request(format!("quality.{name} must be in {lo_bracket}{lo}, {hi}]")))
        }
    };
    share("target_alpha", q.target_alpha, 0.0, 1.0, true)?;
    share("review_threshold", q.review_threshold, 0.0, 1.0, false)?;
    share("gold_rate", q.gold_rate, 0.0, MAX_GOLD_RATE, false)?;
    share("audit_rate", q.audit_rate, 0.0, 1.0, false)?;
    if q.audit_seed < 0 {
        return Err(AppError::bad_request("quality.audit_seed must be 0 or more"));
    }
    Ok(q.clone())
}

/// At most half a labeler's stream is gold: more would leave little real work.
pub const MAX_GOLD_RATE: f64 = 0.5;

pub struct ValidProject {
    pub name: String,
    pub instructions: String,
    pub kind: LabelKind,
    pub labels: Vec<LabelDef>,
    pub overlap: i64,
    pub lease_seconds: i64,
    pub quality: QualitySettings,
    pub assignment_order: AssignmentOrder,
}

pub fn validate_new_project(p: &NewProject) -> AppResult<ValidProject> {
    Ok(ValidProject {
        name: validate_name(&p.name)?,
        instructions: p.instructions.clone(),
        kind: p.kind,
        labels: validate_labels(&p.labels)?,
        overlap: validate_overlap(p.overlap)?,
        lease_seconds: validate_lease(p.lease_seconds)?,
        quality: validate_quality(&p.quality)?,
        assignment_order: p.assignment_order,
    })
}

/// The project with the update applied. `labels_in_use` are label names annotations use:
/// removing one of those would orphan labels, so it is refused.
pub fn apply_update(
    mut project: Project,
    update: &ProjectUpdate,
    labels_in_use: &std::collections::BTreeSet<String>,
) -> AppResult<Project> {
    if let Some(name) = &update.name {
        project.name = validate_name(name)?;
    }
    if let Some(instructions) = &update.instructions {
        project.instructions = instructions.clone();
    }
    if let Some(labels) = &update.labels {
        let labels = validate_labels(labels)?;
        let kept: HashSet<&str> = labels.iter().map(|l| l.name.as_str()).collect();
        if let Some(lost) = labels_in_use.iter().find(|n| !kept.contains(n.as_str())) {
            return Err(AppError::conflict(format!(
                "the label {lost:?} is used by annotations and cannot be removed"
            )));
        }
        project.labels = labels;
    }
    if let Some(overlap) = update.overlap {
        project.overlap = validate_overlap(overlap)?;
    }
    if let Some(lease) = update.lease_seconds {
        project.lease_seconds = validate_lease(lease)?;
    }
    if let Some(quality) = &update.quality {
        project.quality = validate_quality(quality)?;
    }
    if let Some(order) = update.assignment_order {
        project.assignment_order = order;
    }
    Ok(project)
}

/// Checks submitted labels against the project's schema; returns them in schema order.
pub fn validate_submitted_labels(project: &Project, labels: &[String]) -> AppResult<Vec<String>> {
    let mut seen = HashSet::new();
    for l in labels {
        if !project.labels.iter().any(|d| &d.name == l) {
            return Err(AppError::bad_request(format!("unknown label {l:?} for this project")));
        }
        if !seen.insert(l.as_str()) {
            return Err(AppError::bad_request(format!("the label {l:?} is given twice")));
        }
    }
    match project.kind {
        LabelKind::Single if labels.len() != 1 => {
            Err(AppError::bad_request("this project takes exactly one label per item"))
        }
        LabelKind::Multi if labels.is_empty() => {
            Err(AppError::bad_request("choose at least one label"))
        }
        _ => Ok(project
            .labels
            .iter()
            .filter(|d| seen.contains(d.name.as_str()))
            .map(|d| d.name.clone())
            .collect()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn label(name: &str, key: &str) -> LabelDef {
        LabelDef { name: name.into(), key: key.into(), color: "#1f77b4".into() }
    }

    #[test]
    fn labels_need_unique_unreserved_keys() {
        assert!(validate_labels(&[label("a", "1"), label("b", "2")]).is_ok());
        assert!(validate_labels(&[label("a", "1"), label("b", "1")]).is_err());
        assert!(validate_labels(&[label("a", "s")]).is_err());
        assert!(validate_labels(&[label("a", "12")]).is_err());
        assert!(validate_labels(&[]).is_err());
        assert!(validate_labels(&[label("a", "1"), label("a", "2")]).is_err());
    }

    #[test]
    fn every_reserved_key_is_refused_and_no_other() {
        for (key, what) in app::api_types::RESERVED_KEYS {
            for k in [key.to_string(), key.to_uppercase()] {
                let err = validate_labels(&[label("a", &k)]).expect_err(&format!("{k:?} accepted"));
                assert!(err.to_string().contains(what), "{k:?}: {err}");
            }
        }
        for key in ["1", "9", "a", "p", "r", "x", "/", "é"] {
            assert!(validate_labels(&[label("a", key)]).is_ok(), "{key:?} refused");
        }
    }

    #[test]
    fn colours_are_checked() {
        let mut l = label("a", "1");
        l.color = "red".into();
        assert!(validate_labels(&[l]).is_err());
    }

    #[test]
    fn removing_a_used_label_is_refused() {
        let p = Project {
            id: 1,
            name: "p".into(),
            instructions: String::new(),
            kind: LabelKind::Single,
            labels: vec![label("a", "1"), label("b", "2")],
            overlap: 1,
            lease_seconds: 600,
            created_at: 0,
            quality: QualitySettings::default(),
            assignment_order: AssignmentOrder::Random,
        };
        let used = ["a".to_string()].into_iter().collect();
        let update = ProjectUpdate { labels: Some(vec![label("b", "2")]), ..Default::default() };
        assert!(apply_update(p.clone(), &update, &used).is_err());
        let update = ProjectUpdate { labels: Some(vec![label("a", "1")]), ..Default::default() };
        assert!(apply_update(p, &update, &used).is_ok());
    }

    #[test]
    fn submitted_labels_follow_the_schema() {
        let mut p = Project {
            id: 1,
            name: "p".into(),
            instructions: String::new(),
            kind: LabelKind::Single,
            labels: vec![label("a", "1"), label("b", "2")],
            overlap: 1,
            lease_seconds: 600,
            created_at: 0,
            quality: QualitySettings::default(),
            assignment_order: AssignmentOrder::Random,
        };
        assert!(validate_submitted_labels(&p, &["a".into()]).is_ok());
        assert!(validate_submitted_labels(&p, &["a".into(), "b".into()]).is_err());
        assert!(validate_submitted_labels(&p, &["c".into()]).is_err());
        p.kind = LabelKind::Multi;
        assert_eq!(
            validate_submitted_labels(&p, &["b".into(), "a".into()]).unwrap(),
            vec!["a".to_string(), "b".to_string()]
        );
        assert!(validate_submitted_labels(&p, &[]).is_err());
    }
}
