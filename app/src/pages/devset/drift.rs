//! The drift check: the report against another (newer) production profile, and the top-up
//! plan the server proposes for a target joint TVD (the fewest new labels, members kept).
use leptos::prelude::*;

use super::state::{parse_tvd, pct, ProfileSummary, TopUp};

/// Picks the profile and the target TVD; `drift` is what the report is asked for.
#[component]
pub fn DriftForm(profiles: RwSignal<Vec<ProfileSummary>>, drift: RwSignal<Option<(i64, f64)>>) -> impl IntoView {
    let profile = RwSignal::new(None::<i64>);
    let target = RwSignal::new("0.02".to_string());
    let error = RwSignal::new(None::<String>);
    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        // The select shows the newest profile first until another is picked.
        let chosen = profile.get_untracked().or_else(|| profiles.with_untracked(|p| p.first().map(|p| p.id)));
        match (chosen, parse_tvd(&target.get_untracked())) {
            (None, _) => error.set(Some("Upload a production profile first.".into())),
            (_, Err(m)) => error.set(Some(m)),
            (Some(p), Ok(t)) => {
                error.set(None);
                drift.set(Some((p, t)));
            }
        }
    };
    view! {
        <form class="form-grid" on:submit=submit novalidate aria-labelledby="drift-h">
            <h3 id="drift-h" class="field-wide">"Drift check"</h3>
            <label class="field">
                <span class="field-label">"Against profile"</span>
                <select id="drift-profile" class="input" on:change=move |ev| profile.set(event_target_value(&ev).parse().ok())>
                    {move || profiles.get().into_iter().map(|p| view! {
                        <option value=p.id.to_string()>{format!("{} ({})", p.name, p.date)}</option>
                    }).collect_view()}
                </select>
            </label>
            <label class="field field-small">
                <span class="field-label">"Target joint TVD"</span>
                <input id="drift-tvd" class="input" type="text" bind:value=target/>
            </label>
            <div class="field">
                <button class="btn" type="submit" id="drift-btn">"Check drift"</button>
            </div>
            {move || error.get().map(|m| view! { <p class="error-text field-wide" role="alert">{m}</p> })}
        </form>
    }
}

/// The top-up plan: what it reaches, and the strata that get new items.
#[component]
pub fn TopUpTable(t: TopUp) -> impl IntoView {
    let summary = if t.reached {
        format!(
            "Top-up: {} new labels bring the joint TVD from {:.4} to {:.4} (target {}), keeping every member.",
            t.new_labels, t.tvd_now, t.tvd_after, t.target_tvd
        )
    } else {
        format!(
            "No top-up within the items available reaches the target {}: the closest, {} new labels, gives {:.4} (now {:.4}).",
            t.target_tvd, t.new_labels, t.tvd_after, t.tvd_now
        )
    };
    view! {
        <p class=if t.reached { "ok-text" } else { "error-text" }>{summary}</p>
        <table class="table table-compact" id="topup-table">
            <caption>"Strata that get new items"</caption>
            <thead><tr>
                <th>"Stratum"</th><th class="num">"Production"</th><th class="num">"Members"</th>
                <th class="num">"Add"</th><th class="num">"Available"</th>
            </tr></thead>
            <tbody>
                {t.strata.iter().filter(|s| s.add > 0).map(|s| view! {
                    <tr>
                        <td>{s.values.join(" × ")}</td>
                        <td class="num">{pct(s.production_share)}</td>
                        <td class="num">{s.members}</td>
                        <td class="num">{s.add}</td>
                        <td class="num">{s.available}</td>
                    </tr>
                }).collect_view()}
            </tbody>
        </table>
    }
}
