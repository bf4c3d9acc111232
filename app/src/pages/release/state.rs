//! The release pages' plain logic, testable without a browser: the freeze form as text fields
//! and the request it makes, and what a refused freeze lists (`ApiError.details`).
use crate::api_types::{FreezeJob, FreezeRequest, LeakagePair, UnreadyItem};

/// A dev set as the release pages need it (the server's `Devset`, fewer fields).
#[derive(Clone, Debug, serde::Deserialize, PartialEq)]
pub struct DevsetRef {
    pub id: i64,
    pub name: String,
    pub sampled_at: Option<i64>,
    pub members: i64,
}

/// The freeze form, as typed.
#[derive(Clone, Debug, PartialEq)]
pub struct FreezeForm {
    pub dev_share: String,
    pub seed: String,
    pub group_by: String,
    pub train_dev_size: String,
    pub licenses: String,
    pub sources: String,
    pub threshold: String,
    pub override_unready: String,
    pub override_leakage: String,
}

impl Default for FreezeForm {
    fn default() -> Self {
        FreezeForm {
            dev_share: "50".into(),
            seed: "0".into(),
            group_by: String::new(),
            train_dev_size: String::new(),
            licenses: String::new(),
            sources: String::new(),
            threshold: "0.8".into(),
            override_unready: String::new(),
            override_leakage: String::new(),
        }
    }
}

fn list(s: &str) -> Option<Vec<String>> {
    let v: Vec<String> = s.split(',').map(|x| x.trim().to_string()).filter(|x| !x.is_empty()).collect();
    (!v.is_empty()).then_some(v)
}

fn text(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

impl FreezeForm {
    /// The request, or what is wrong with a field.
    pub fn to_request(&self) -> Result<FreezeRequest, String> {
        let dev: f64 = self.dev_share.trim().parse().map_err(|_| "Dev share: a percentage between 1 and 99".to_string())?;
        if !(dev > 0.0 && dev < 100.0) {
            return Err("Dev share: a percentage between 1 and 99".into());
        }
        let seed: u32 = self.seed.trim().parse().map_err(|_| "Seed: a whole number from 0".to_string())?;
        let train_dev_size = match text(&self.train_dev_size) {
            None => None,
            Some(t) => Some(t.parse::<u64>().map_err(|_| "Train-dev size: a whole number".to_string())?),
        };
        let threshold: f64 = self.threshold.trim().parse().map_err(|_| "Jaccard threshold: a number in (0, 1]".to_string())?;
        if !(threshold > 0.0 && threshold <= 1.0) {
            return Err("Jaccard threshold: a number in (0, 1]".into());
        }
        Ok(FreezeRequest {
            dev_share: Some(dev / 100.0),
            test_share: Some(1.0 - dev / 100.0),
            seed,
            group_by: text(&self.group_by),
            train_dev_size,
            licenses: list(&self.licenses),
            sources: list(&self.sources),
            jaccard_threshold: Some(threshold),
            override_unready: text(&self.override_unready),
            override_leakage: text(&self.override_leakage),
        })
    }
}

/// What a refused freeze lists.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Refusal {
    pub unready: Vec<UnreadyItem>,
    pub leakage: Vec<LeakagePair>,
}

impl Refusal {
    pub fn from_details(details: &serde_json::Value) -> Refusal {
        Refusal {
            unready: serde_json::from_value(details["unready"].clone()).unwrap_or_default(),
            leakage: serde_json::from_value(details["leakage"].clone()).unwrap_or_default(),
        }
    }
}

/// A running freeze job in one line: its phase, and its counts when it has them
/// ("Leakage check: 420,000 of 1,000,000 pool items (42%)").
pub fn progress_text(job: &FreezeJob) -> String {
    let Some(phase) = job.phase.as_deref() else {
        return "Queued: waiting for the job runner…".into();
    };
    let what = match phase {
        "leakage check" => " pool items",
        "splitting" | "hashing" | "writing" => " items",
        _ => "",
    };
    let mut name = phase.to_string();
    if let Some(c) = name.get_mut(0..1) {
        c.make_ascii_uppercase();
    }
    let (done, total) = (job.job.progress_done, job.job.progress_total);
    if total > 0 && phase == "leakage check" {
        format!("{name}: {} of {}{what} ({}%)…", thousands(done), thousands(total), done * 100 / total)
    } else if total > 0 {
        format!("{name}: {}{what}…", thousands(total))
    } else {
        format!("{name}…")
    }
}

/// The share done of a running freeze, 0 to 1 (the leakage check's counts; the phases before
/// it count as 0, after it as 1).
pub fn progress_share(job: &FreezeJob) -> f64 {
    match job.phase.as_deref() {
        None | Some("reading members") | Some("splitting") => 0.0,
        Some("leakage check") if job.job.progress_total > 0 => job.job.progress_done as f64 / job.job.progress_total as f64,
        Some("leakage check") => 0.0,
        _ => 1.0,
    }
}

fn thousands(n: i64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 && c != '-' {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The first 12 characters of a hash, for tables.
pub fn short_hash(h: &str) -> String {
    h.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_freeze_in_one_line() {
        let job = |phase: Option<&str>, done: i64, total: i64| FreezeJob {
            job: crate::api_types::JobInfo {
                id: 1,
                kind: "release_freeze".into(),
                state: "running".into(),
                progress_done: done,
                progress_total: total,
                error: None,
                created_at: 0,
                started_at: None,
                heartbeat_at: None,
                finished_at: None,
            },
            devset_id: 1,
            phase: phase.map(str::to_string),
            release: None,
            blocked: None,
        };
        assert_eq!(progress_text(&job(None, 0, 0)), "Queued: waiting for the job runner…");
        let leak = job(Some("leakage check"), 420_000, 1_000_000);
        assert_eq!(progress_text(&leak), "Leakage check: 420,000 of 1,000,000 pool items (42%)…");
        assert_eq!(progress_share(&leak), 0.42);
        assert_eq!(progress_text(&job(Some("writing"), 0, 100_000)), "Writing: 100,000 items…");
        assert_eq!(progress_text(&job(Some("lineage"), 0, 0)), "Lineage…");
        assert_eq!(progress_share(&job(Some("hashing"), 0, 5)), 1.0);
    }

    #[test]
    fn the_form_makes_the_request_or_names_the_field() {
        let r = FreezeForm { licenses: "cc-by-4.0, ,mit".into(), group_by: " user ".into(), ..Default::default() }.to_request().unwrap();
        assert_eq!((r.dev_share, r.test_share), (Some(0.5), Some(0.5)));
        assert_eq!(r.licenses, Some(vec!["cc-by-4.0".to_string(), "mit".to_string()]));
        assert_eq!(r.group_by.as_deref(), Some("user"));
        assert_eq!((r.sources, r.override_unready), (None, None));
        let bad = FreezeForm { dev_share: "100".into(), ..Default::default() }.to_request().unwrap_err();
        assert!(bad.starts_with("Dev share"), "{bad}");
        assert!(FreezeForm { threshold: "0".into(), ..Default::default() }.to_request().unwrap_err().starts_with("Jaccard"));
    }

    #[test]
    fn a_refusal_reads_its_lists() {
        let d = serde_json::json!({"unready": [{"item_id": 3, "external_id": null, "reason": "open_review"}]});
        let r = Refusal::from_details(&d);
        assert_eq!((r.unready.len(), r.leakage.len()), (1, 0));
        assert_eq!(Refusal::from_details(&serde_json::Value::Null), Refusal::default());
    }
}
