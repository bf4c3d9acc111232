//! Pre-labels in the UI (issue 10): the lead's page (`page`), and the hint the labeling view
//! shows above its label buttons — the item's best pre-label with its source and score, taken
//! with Enter.
mod auto;
mod model;
mod page;
mod rules;
mod rules_state;

use leptos::prelude::*;

pub use page::PrelabelsPage;
pub use rules::RulesPage;

use crate::api_types::PrelabelView;
use crate::components::Kbd;

/// "pos · m v1 · 0.93": the labels, the source, the score (two decimals) when there is one.
pub fn describe(p: &PrelabelView) -> String {
    let mut parts = vec![p.labels.join(", "), p.source.clone()];
    if let Some(s) = p.score {
        parts.push(format!("{s:.2}"));
    }
    parts.join(" · ")
}

/// The pre-label line of the labeling view; nothing when the item has none to show.
#[component]
pub fn PrelabelHint(#[prop(into)] prelabel: Signal<Option<PrelabelView>>, on_accept: Callback<()>) -> impl IntoView {
    move || {
        prelabel.get().map(|p| {
            let text = describe(&p);
            view! {
                <div class="prelabel-hint" role="note" aria-label="Pre-label">
                    <span class="prelabel-tag">"pre-label"</span>
                    <span class="prelabel-text">{text}</span>
                    <button class="btn btn-quiet prelabel-accept" on:click=move |_| on_accept.run(())>
                        "Accept " <Kbd k="⏎"/>
                    </button>
                </div>
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_types::PrelabelSourceKind;

    #[test]
    fn describes_labels_source_and_score() {
        let mut p = PrelabelView {
            source_id: 1,
            source_kind: PrelabelSourceKind::Model,
            source: "m v1".into(),
            labels: vec!["pos".into()],
            score: Some(0.934),
        };
        assert_eq!(describe(&p), "pos · m v1 · 0.93");
        p.score = None;
        p.labels.push("neg".into());
        assert_eq!(describe(&p), "pos, neg · m v1");
    }
}
