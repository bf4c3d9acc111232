//! The plan of a draft: the size and what drove it, the allocation per stratum with shortfalls
//! named, and the expected distance from production before anything is sampled.
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::state::{pct, Plan};
use super::DistanceRow;
use crate::api_client;
use crate::components::{Kbd, Load};

#[component]
pub fn PlanCard(
    pid: i64,
    devset: i64,
    sampled: Signal<bool>,
    refresh: RwSignal<u32>,
    on_sample: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let plan = RwSignal::new(Load::<Plan>::Loading);
    Effect::new(move |_| {
        refresh.track();
        spawn_local(async move {
            plan.set(match api_client::get::<Plan>(&format!("/api/projects/{pid}/devsets/{devset}/plan")).await {
                Ok(p) => Load::Ready(p),
                Err(e) => Load::Failed(e.message),
            });
        });
    });
    let body = move || match plan.get() {
        Load::Loading => view! { <p class="muted">"Planning…"</p> }.into_any(),
        Load::Failed(m) => view! { <p class="error-text" role="alert">{m}</p> }.into_any(),
        Load::Ready(p) => view! {
            <p>
                <strong class="num">{format!("{} items", p.size)}</strong>
                " — " {p.size_driver.message.clone()}
                <span class="muted">{format!(" · {} eligible in the pool", p.eligible_items)}</span>
            </p>
            {p.messages.iter().map(|m| view! { <p class="error-text">{m.clone()}</p> }).collect_view()}
            <div class="table-scroll">
                <table class="table table-compact" id="plan-table">
                    <thead><tr>
                        <th>"Stratum"</th><th class="num">"Production"</th><th class="num">"Requested"</th>
                        <th class="num">"Available"</th><th class="num">"Allocated"</th><th class="num">"Shortfall"</th>
                    </tr></thead>
                    <tbody>
                        {p.strata.iter().map(|s| view! {
                            <tr>
                                <td>{s.values.join(" × ")}</td>
                                <td class="num">{pct(s.production_share)}</td>
                                <td class="num">{s.requested}</td>
                                <td class="num">{s.available}</td>
                                <td class="num">{s.allocated}</td>
                                <td class="num">{if s.shortfall > 0 { s.shortfall.to_string() } else { "–".into() }}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
            <table class="table table-compact">
                <caption>"Expected distance from production (before sampling)"</caption>
                <thead><tr><th>"Attribute"</th><th class="num">"TVD"</th><th class="num">"PSI"</th><th class="num">"KL"</th><th>"Reading"</th></tr></thead>
                <tbody>
                    {p.expected.iter().cloned().map(|d| view! { <DistanceRow d/> }).collect_view()}
                    <DistanceRow d=p.expected_joint.clone()/>
                </tbody>
            </table>
        }
        .into_any(),
    };
    view! {
        <section class="card" aria-labelledby="plan-h">
            <div class="page-head">
                <h2 id="plan-h">"Plan"</h2>
                <button class="btn btn-primary" id="sample-btn" on:click=move |_| on_sample()
                    disabled=move || sampled.get() || plan.with(|p| p.ready().is_none())>
                    {move || if sampled.get() { "Sampled".into_any() } else { view! { "Sample " <Kbd k="S"/> }.into_any() }}
                </button>
            </div>
            {body}
        </section>
    }
    .into_any()
}
