//! The project settings that steer agreement, consensus, gold, review and the stream order:
//! a form section of the project's settings card, with its text inputs parsed on save.
use leptos::prelude::*;

use crate::api_types::{AssignmentOrder, ConsensusMethod, Measurement, QualitySettings};

/// The section's inputs, as the user typed them.
#[derive(Clone, Copy)]
pub struct QualityForm {
    order: RwSignal<String>,
    measurement: RwSignal<String>,
    consensus: RwSignal<String>,
    target_alpha: RwSignal<String>,
    review_threshold: RwSignal<String>,
    gold_percent: RwSignal<String>,
    gold_training: RwSignal<bool>,
    audit_percent: RwSignal<String>,
    audit_seed: RwSignal<String>,
}

impl QualityForm {
    pub fn new(q: &QualitySettings, order: AssignmentOrder) -> Self {
        QualityForm {
            order: RwSignal::new(order.as_str().into()),
            measurement: RwSignal::new(q.measurement.as_str().into()),
            consensus: RwSignal::new(q.consensus_method.as_str().into()),
            target_alpha: RwSignal::new(q.target_alpha.to_string()),
            review_threshold: RwSignal::new(q.review_threshold.to_string()),
            gold_percent: RwSignal::new(percent(q.gold_rate)),
            gold_training: RwSignal::new(q.gold_training),
            audit_percent: RwSignal::new(percent(q.audit_rate)),
            audit_seed: RwSignal::new(q.audit_seed.to_string()),
        }
    }

    /// The settings typed in, or a message naming the field that is not a number.
    pub fn parse(&self) -> Result<(QualitySettings, AssignmentOrder), String> {
        let num = |s: RwSignal<String>, what: &str| {
            s.get_untracked().trim().parse::<f64>().map_err(|_| format!("{what} must be a number."))
        };
        // The selects offer only the enums' own spellings.
        let order = AssignmentOrder::parse(&self.order.get_untracked()).unwrap_or_default();
        let q = QualitySettings {
            measurement: Measurement::parse(&self.measurement.get_untracked()).unwrap_or_default(),
            consensus_method: ConsensusMethod::parse(&self.consensus.get_untracked()).unwrap_or_default(),
            target_alpha: num(self.target_alpha, "Target alpha")?,
            review_threshold: num(self.review_threshold, "Review threshold")?,
            gold_rate: num(self.gold_percent, "Gold share")? / 100.0,
            gold_training: self.gold_training.get_untracked(),
            audit_rate: num(self.audit_percent, "Audit share")? / 100.0,
            audit_seed: self
                .audit_seed
                .get_untracked()
                .trim()
                .parse::<i64>()
                .map_err(|_| "Audit seed must be a whole number.".to_string())?,
        };
        Ok((q, order))
    }
}

/// A share as a percentage without float noise (0.05 → "5").
fn percent(share: f64) -> String {
    let p = (share * 10_000.0).round() / 100.0;
    format!("{p}")
}

/// A `<select>` over fixed (value, text) options bound to `value`.
#[component]
fn Choice(label: &'static str, value: RwSignal<String>, options: &'static [(&'static str, &'static str)]) -> impl IntoView {
    view! {
        <label class="field field-small">
            <span class="field-label">{label}</span>
            <select class="input" on:change=move |ev| value.set(event_target_value(&ev))>
                {options
                    .iter()
                    .map(|(v, text)| {
                        let v = *v;
                        view! { <option value=v selected=move || value.get() == v>{*text}</option> }
                    })
                    .collect_view()}
            </select>
        </label>
    }
}

#[component]
fn Number(label: &'static str, value: RwSignal<String>, step: &'static str, hint: &'static str) -> impl IntoView {
    view! {
        <label class="field field-small" title=hint>
            <span class="field-label">{label}</span>
            <input class="input" type="number" step=step bind:value=value/>
        </label>
    }
}

/// The form section; its values are read with `QualityForm::parse` when the card is saved.
#[component]
pub fn QualityFields(form: QualityForm) -> impl IntoView {
    view! {
        <fieldset class="field-wide fieldset">
            <legend class="field-label">"Stream, agreement and review"</legend>
            <div class="form-grid">
                <Choice label="Order" value=form.order options=&[
                    ("random", "Random (seeded)"), ("import", "Import order"), ("priority", "Priority first"),
                ]/>
                <Choice label="Measurement" value=form.measurement options=&[
                    ("nominal", "Nominal"), ("ordinal", "Ordinal (label order)"),
                ]/>
                <Choice label="Consensus" value=form.consensus options=&[
                    ("majority", "Majority vote"), ("dawid_skene", "Dawid–Skene"),
                ]/>
                <Number label="Target alpha" value=form.target_alpha step="0.01"
                    hint="Slices whose interval lies below this are marked on the dashboard."/>
                <Number label="Review below posterior" value=form.review_threshold step="0.01"
                    hint="Complete items whose consensus posterior is below this go to the disagreement queue."/>
                <Number label="Gold share (%)" value=form.gold_percent step="0.5"
                    hint="Share of each labeler's stream drawn from gold items; 0 turns gold off."/>
                <Number label="Audit share (%)" value=form.audit_percent step="0.5"
                    hint="Share of completed items drawn into the random audit queue."/>
                <Number label="Audit seed" value=form.audit_seed step="1"
                    hint="The same seed draws the same audit sample."/>
                <label class="field field-small checkbox-field">
                    <input type="checkbox" bind:checked=form.gold_training/>
                    <span>"Show the answer after a gold miss"</span>
                </label>
            </div>
        </fieldset>
    }
}
