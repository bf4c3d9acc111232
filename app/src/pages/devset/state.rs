//! The dev-set page's view of the API's answers (only the fields the page shows; the server's
//! types are in server/src/devsets and /api/openapi.json) and the plain logic of the page,
//! testable without a browser.
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ProfileAttribute {
    pub name: String,
    pub kind: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct ProfileSummary {
    pub id: i64,
    pub name: String,
    pub date: String,
    pub records: f64,
    pub attributes: Vec<ProfileAttribute>,
    pub combinations: i64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Devset {
    pub id: i64,
    pub name: String,
    pub profile_id: i64,
    pub seed: i64,
    pub overlap: i64,
    pub sampled_at: Option<i64>,
    pub members: i64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Distance {
    pub attribute: String,
    pub tvd: f64,
    pub psi: f64,
    pub kl: f64,
    pub reading: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct SizeDriver {
    pub requirement: String,
    pub message: String,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct PlanStratum {
    pub key: String,
    pub values: Vec<String>,
    pub production_share: f64,
    pub requested: u64,
    pub available: u64,
    pub allocated: u64,
    pub shortfall: u64,
    pub message: Option<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Plan {
    pub size: u64,
    pub size_driver: SizeDriver,
    pub eligible_items: u64,
    pub strata: Vec<PlanStratum>,
    pub total: u64,
    pub shortfall: u64,
    pub expected: Vec<Distance>,
    pub expected_joint: Distance,
    pub messages: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Bar {
    pub value: String,
    pub production: f64,
    pub dev: f64,
    pub pool: f64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct AttributeReport {
    pub attribute: String,
    pub bars: Vec<Bar>,
    pub dev_vs_production: Option<Distance>,
    pub pool_vs_production: Option<Distance>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct SliceHalfWidth {
    pub value: String,
    pub n: u64,
    pub half_width: Option<f64>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Report {
    pub members: u64,
    pub attributes: Vec<AttributeReport>,
    pub joint_dev_vs_production: Option<Distance>,
    pub joint_pool_vs_production: Option<Distance>,
    pub accuracy: f64,
    pub accuracy_source: String,
    pub half_width: Option<f64>,
    pub key_attribute: String,
    pub key_slices: Vec<SliceHalfWidth>,
    pub reasons: Vec<String>,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct StratumProgress {
    pub stratum: String,
    pub members: u64,
    pub labeled: u64,
    pub complete: u64,
    pub agreed: u64,
}

#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct Progress {
    pub total: StratumProgress,
    pub strata: Vec<StratumProgress>,
}

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
    pub seed: String,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct SizeCalculator {
    pub expected_accuracy: f64,
    pub half_width: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_attribute: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_half_width: Option<f64>,
}

#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct NewDevset {
    pub name: String,
    pub profile_id: i64,
    pub seed: u32,
    pub attributes: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub calculator: Option<SizeCalculator>,
    pub min_per_stratum: u64,
    pub must_include: serde_json::Value,
    pub exclude: serde_json::Value,
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
            (None, Some(SizeCalculator { expected_accuracy: accuracy, half_width: hw, key_attribute, key_half_width }))
        };
        let min_per_stratum = if self.min_per_stratum.trim().is_empty() {
            0
        } else {
            self.min_per_stratum.trim().parse().map_err(|_| "Minimum per stratum: a whole number.".to_string())?
        };
        let seed = if self.seed.trim().is_empty() { 0 } else { self.seed.trim().parse().map_err(|_| "Seed: a whole number.".to_string())? };
        let must_include = match self.must_weight.trim() {
            "" => serde_json::json!({}),
            w => serde_json::json!({"weight_at_least": w.parse::<f64>().map_err(|_| "Must-include weight: a number.".to_string())?}),
        };
        Ok(NewDevset {
            name,
            profile_id,
            seed,
            attributes,
            size,
            calculator,
            min_per_stratum,
            must_include,
            exclude: serde_json::json!({"licenses": list(&self.exclude_licenses), "sources": list(&self.exclude_sources)}),
        })
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
            ..Default::default()
        };
        let r = form.to_request().unwrap();
        assert_eq!(r.name, "dev");
        assert_eq!(r.attributes, ["region", "device"]);
        let c = r.calculator.unwrap();
        assert_eq!((c.expected_accuracy, c.half_width, c.key_half_width), (0.9, 0.03, Some(0.05)));
        assert_eq!(r.min_per_stratum, 10);
        assert!(DraftForm { profile_id: None, ..form.clone() }.to_request().unwrap_err().contains("profile"));
        assert!(DraftForm { mode: "size".into(), size: "many".into(), ..form }.to_request().is_err());
    }

    #[test]
    fn bars_scale_to_the_largest_share() {
        let at = bar_layout(2, 60.0, 16.0, 0.5, 100.0);
        assert_eq!(at(1, 2, 0.25), (60.0 + 4.0 + 32.0, 50.0));
    }
}
