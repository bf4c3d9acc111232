//! The pre-labels page's auto-accept column (per source and label: the threshold in force or
//! available, and the items taken) and the export's estimated noise (`GET .../export/summary`).
use leptos::prelude::*;

use super::page::share_text;
use crate::api_types::{ExportSummary, PrelabelLabelStats};
use crate::components::fmt_count;

/// The auto-accept cell: its text, and what a toggle would switch it to (None: it cannot be
/// switched on yet).
pub fn auto_cell(l: &PrelabelLabelStats) -> (String, Option<bool>) {
    match (&l.auto_accept, l.auto_accept_min_score) {
        (Some(a), _) => (format!("on from {:.2} · {} items", a.min_score, fmt_count(a.accepted)), Some(false)),
        (None, Some(t)) => (format!("off · could start at {t:.2}"), Some(true)),
        (None, None) => ("off · needs more audits".into(), None),
    }
}

/// "40.0%", or "–" for an undefined share.
pub fn pct(x: Option<f64>) -> String {
    x.map(|v| format!("{:.1}%", v * 100.0)).unwrap_or_else(|| "–".into())
}

/// The export's noise per label: where its final labels come from and how precise the
/// auto-accepted part is expected to be.
#[component]
pub fn NoiseSummary(#[prop(into)] summary: Signal<Option<Result<ExportSummary, String>>>) -> impl IntoView {
    move || match summary.get() {
        None => view! { <p class="muted">"Loading…"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="error-text" role="alert">{e}</p> }.into_any(),
        Some(Ok(s)) => view! {
            <p class="muted">
                {format!(
                    "{} of {} items have a final label: {} human, {} adjudicated, {} auto-accepted.",
                    fmt_count(s.labeled), fmt_count(s.items), fmt_count(s.human), fmt_count(s.adjudicated), fmt_count(s.auto)
                )}
            </p>
            <table class="table table-compact noise-summary">
                <thead><tr>
                    <th>"Label"</th><th class="num">"Final labels"</th><th class="num">"Human"</th>
                    <th class="num">"Adjudicated"</th><th class="num">"Auto"</th>
                    <th>"Auto precision (audited)"</th><th class="num">"Expected wrong"</th>
                </tr></thead>
                <tbody>
                    {s.by_label.into_iter().map(|l| view! {
                        <tr>
                            <td>{l.label}</td>
                            <td class="num">{fmt_count(l.total)}</td>
                            <td class="num">{format!("{} · {}", fmt_count(l.human), pct(l.human_share))}</td>
                            <td class="num">{format!("{} · {}", fmt_count(l.adjudicated), pct(l.adjudicated_share))}</td>
                            <td class="num">{format!("{} · {}", fmt_count(l.auto), pct(l.auto_share))}</td>
                            <td>{share_text(&l.auto_precision)}</td>
                            <td class="num">{l.expected_wrong.map(|w| format!("{w:.1}")).unwrap_or_else(|| "–".into())}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        }
        .into_any(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_types::{AutoAcceptState, StatValue};

    fn stats() -> PrelabelLabelStats {
        let none = StatValue { value: None, interval: None, n: 0, reason: Some("no answers yet".into()) };
        PrelabelLabelStats {
            label: "pos".into(),
            prelabels: 10,
            acceptance: none.clone(),
            audited: 0,
            precision: none,
            auto_accept_min_score: None,
            labels: vec!["pos".into()],
            auto_accept: None,
        }
    }

    #[test]
    fn auto_cell_says_what_a_toggle_does() {
        let mut l = stats();
        assert_eq!(auto_cell(&l), ("off · needs more audits".to_string(), None));
        l.auto_accept_min_score = Some(0.8);
        assert_eq!(auto_cell(&l), ("off · could start at 0.80".to_string(), Some(true)));
        l.auto_accept = Some(AutoAcceptState { min_score: 0.75, target_precision: 0.95, accepted: 1200, enabled_at: 0 });
        assert_eq!(auto_cell(&l), ("on from 0.75 · 1,200 items".to_string(), Some(false)));
        assert_eq!((pct(Some(0.4)), pct(None)), ("40.0%".to_string(), "–".to_string()));
    }
}
