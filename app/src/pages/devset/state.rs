//! The dev-set page's plain logic, testable without a browser: the draft form's fields and the
//! request they make, and the bars' geometry. The wire types are `crate::api_types`' (the
//! server serializes the same structs); the short names below are the page's.
pub use crate::api_types::{
    AttributeDistance as Distance, AttributeReport, Devset, DevsetPlan as Plan, DevsetProgress as Progress, DevsetReport as Report,
    ProfileSummary, TopUp,
};
use crate::api_types::{DevsetDraft, Exclusions, MustInclude, NewDevset, SizeCalculator};

/// The draft form's fields, as typed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DraftForm {
    pub name: String,
    pub profile_id: Option<i64>,
    pub attributes: String,
    /// "size" or "calculator".
    pub mode: String,
    pub size: String,
    pub accuracy: String,
    pub half_width: String,
    pub key_attribute: String,
    pub key_half_width: String,
    pub min_per_stratum: String,
    pub exclude_licenses: String,
    pub exclude_sources: String,
    pub must_weight: String,
    /// Comma-separated external ids the dev set must hold.
    pub must_ids: String,
    pub seed: String,
}

fn list(s: &str) -> Vec<String> {
    s.split(',').map(str::trim).filter(|x| !x.is_empty()).map(str::to_string).collect()
}

/// "3" or "±3 points" as a half-width: numbers above 1 are points (3 → 0.03).
fn half_width(s: &str, what: &str) -> Result<f64, String> {
    let x: f64 = s.trim().trim_start_matches('±').parse().map_err(|_| format!("{what}: a number like 3 (points) or 0.03"))?;
    Ok(if x >= 1.0 { x / 100.0 } else { x })
}

impl DraftForm {
    /// The request body, or what to fix first.
    pub fn to_request(&self) -> Result<NewDevset, String> {
        let name = self.name.trim().to_string();
        if name.is_empty() {
            return Err("Give the dev set a name.".into());
        }
        let profile_id = self.profile_id.ok_or("Pick a production profile (upload one first).")?;
        let attributes = list(&self.attributes);
        if attributes.is_empty() {
            return Err("Pick at least one stratification attribute.".into());
        }
        let (size, calculator) = if self.mode == "size" {
            let n: u64 = self.size.trim().parse().map_err(|_| "Size: a whole number of items.".to_string())?;
            (Some(n), None)
        } else {
            let accuracy: f64 = self.accuracy.trim().parse().map_err(|_| "Expected accuracy: a number like 0.9.".to_string())?;
            let accuracy = if accuracy > 1.0 { accuracy / 100.0 } else { accuracy };
            let hw = half_width(&self.half_width, "Half-width")?;
            let key = self.key_attribute.trim();
            let (key_attribute, key_half_width) = if key.is_empty() {
                (None, None)
            } else {
                (Some(key.to_string()), Some(half_width(&self.key_half_width, "Half-width per value")?))
            };
            (
                None,
                Some(SizeCalculator {
                    expected_accuracy: accuracy,
                    half_width: hw,
                    confidence: crate::api_types::default_confidence(),
                    key_attribute,
                    key_half_width,
                }),
            )
        };
        let min_per_stratum = if self.min_per_stratum.trim().is_empty() {
            0
        } else {
            self.min_per_stratum.trim().parse().map_err(|_| "Minimum per stratum: a whole number.".to_string())?
        };
        let seed = if self.seed.trim().is_empty() { 0 } else { self.seed.trim().parse().map_err(|_| "Seed: a whole number.".to_string())? };
        let weight_at_least = match self.must_weight.trim() {
            "" => None,
            w => Some(w.parse::<f64>().map_err(|_| "Must-include weight: a number.".to_string())?),
        };
        Ok(NewDevset {
            name,
            profile_id,
            seed,
            overlap: None,
            draft: DevsetDraft {
                attributes,
                size,
                calculator,
                min_per_stratum,
                must_include: MustInclude { weight_at_least, external_ids: list(&self.must_ids) },
                exclude: Exclusions { licenses: list(&self.exclude_licenses), sources: list(&self.exclude_sources) },
            },
        })
    }
}

/// The drift check's target: a joint TVD strictly between 0 and 1.
pub fn parse_tvd(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(t) if t > 0.0 && t < 1.0 => Ok(t),
        _ => Err("Target TVD: a number between 0 and 1, like 0.02.".into()),
    }
}

/// A share as a percentage with one decimal.
pub fn pct(x: f64) -> String {
    format!("{:.1}%", x * 100.0)
}

/// Bar geometry for the side-by-side chart: the x offset of series `s` (0..3) in group `g`,
/// and a bar's height for a share, so the largest share fills `height`.
pub fn bar_layout(groups: usize, group_width: f64, bar_width: f64, max_share: f64, height: f64) -> impl Fn(usize, usize, f64) -> (f64, f64) {
    let _ = groups;
    let scale = if max_share > 0.0 { height / max_share } else { 0.0 };
    move |g, s, share| (g as f64 * group_width + 4.0 + s as f64 * bar_width, share * scale)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_becomes_a_request() {
        let form = DraftForm {
            name: " dev ".into(),
            profile_id: Some(4),
            attributes: "region, device".into(),
            mode: "calculator".into(),
            accuracy: "90".into(),
            half_width: "±3".into(),
            key_attribute: "region".into(),
            key_half_width: "0.05".into(),
            min_per_stratum: "10".into(),
            exclude_licenses: "restricted".into(),
            must_weight: "2".into(),
            must_ids: "a-1, a-2".into(),
            ..Default::default()
        };
        let r = form.to_request().unwrap();
        assert_eq!(r.name, "dev");
        assert_eq!(r.draft.attributes, ["region", "device"]);
        let c = r.draft.calculator.clone().unwrap();
        assert_eq!((c.expected_accuracy, c.half_width, c.key_half_width, c.confidence), (0.9, 0.03, Some(0.05), 0.95));
        assert_eq!(r.draft.min_per_stratum, 10);
        assert_eq!(r.draft.must_include, MustInclude { weight_at_least: Some(2.0), external_ids: vec!["a-1".into(), "a-2".into()] });
        // The body the server reads: the draft's fields beside the name (flattened).
        let body = serde_json::to_value(&r).unwrap();
        assert_eq!(body["attributes"], serde_json::json!(["region", "device"]));
        assert_eq!(body["exclude"], serde_json::json!({"licenses": ["restricted"], "sources": []}));
        assert_eq!(serde_json::from_value::<NewDevset>(body).unwrap(), r);
        assert!(DraftForm { profile_id: None, ..form.clone() }.to_request().unwrap_err().contains("profile"));
        assert!(DraftForm { mode: "size".into(), size: "many".into(), ..form }.to_request().is_err());
    }

    #[test]
    fn the_target_tvd_is_a_fraction() {
        assert_eq!(parse_tvd(" 0.02 "), Ok(0.02));
        for bad in ["", "0", "1", "2", "-0.1", "x"] {
            assert!(parse_tvd(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn bars_scale_to_the_largest_share() {
        let at = bar_layout(2, 60.0, 16.0, 0.5, 100.0);
        assert_eq!(at(1, 2, 0.25), (60.0 + 4.0 + 32.0, 50.0));
    }
}
