//! The distribution report of a sampled dev set (side-by-side bars as inline SVG, TVD, PSI with
//! its reading, KL, Wilson half-widths) and the campaign's progress per stratum.
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::drift::{DriftForm, TopUpTable};
use super::state::{bar_layout, pct, AttributeReport, ProfileSummary, Progress, Report};
use super::DistanceRow;
use crate::api_client;
use crate::components::Load;

const SERIES: [(&str, &str); 3] = [("production", "bar-prod"), ("dev set", "bar-dev"), ("pool", "bar-pool")];

/// Side-by-side bars per value: production, dev set, pool; the share printed above each bar
/// (colour is not the only carrier: the legend and the order say which is which).
#[component]
fn Bars(a: AttributeReport) -> impl IntoView {
    let (group, bar, height) = (3.0 * 26.0 + 16.0, 26.0, 120.0);
    let max = a.bars.iter().flat_map(|b| [b.production, b.dev, b.pool]).fold(0.0, f64::max);
    let at = bar_layout(a.bars.len(), group, bar, max, height);
    let width = (a.bars.len() as f64 * group).max(200.0);
    let rects = a
        .bars
        .iter()
        .enumerate()
        .flat_map(|(g, b)| {
            [b.production, b.dev, b.pool].into_iter().enumerate().map(move |(s, share)| (g, s, share))
        })
        .map(|(g, s, share)| {
            let (x, h) = at(g, s, share);
            let y = 16.0 + height - h;
            view! {
                <rect x=x y=y width={bar - 3.0} height=h class=SERIES[s].1/>
                <text x={x + (bar - 3.0) / 2.0} y={y - 3.0} class="bar-num" text-anchor="middle">{format!("{:.0}", share * 100.0)}</text>
            }
        })
        .collect_view();
    let labels = a
        .bars
        .iter()
        .enumerate()
        .map(|(g, b)| view! {
            <text x={g as f64 * group + group / 2.0} y={16.0 + height + 14.0} class="bar-label" text-anchor="middle">{b.value.clone()}</text>
        })
        .collect_view();
    view! {
        <figure class="bars">
            <figcaption>{format!("{} — shares in %", a.attribute)}</figcaption>
            <svg viewBox=format!("0 0 {width} {}", height + 36.0) width=width height={height + 36.0} role="img"
                aria-label=format!("{}: production, dev set and pool shares per value", a.attribute)>
                {rects}
                {labels}
            </svg>
        </figure>
    }
}

#[component]
pub fn ReportCard(pid: i64, devset: i64, refresh: RwSignal<u32>, profiles: RwSignal<Vec<ProfileSummary>>) -> impl IntoView {
    let report = RwSignal::new(Load::<Report>::Loading);
    let progress = RwSignal::new(None::<Progress>);
    // The drift check: (profile, target TVD); None is the report against the dev set's own profile.
    let drift = RwSignal::new(None::<(i64, f64)>);
    Effect::new(move |_| {
        refresh.track();
        let query = drift.get().map(|(p, t)| format!("?profile_id={p}&max_tvd={t}")).unwrap_or_default();
        spawn_local(async move {
            report.set(match api_client::get::<Report>(&format!("/api/projects/{pid}/devsets/{devset}/report{query}")).await {
                Ok(r) => Load::Ready(r),
                Err(e) => Load::Failed(e.message),
            });
            progress.set(api_client::get::<Progress>(&format!("/api/projects/{pid}/devsets/{devset}/progress")).await.ok());
        });
    });
    let legend = view! {
        <p class="legend">
            {SERIES.iter().map(|(name, class)| view! {
                <span class="legend-item"><svg width="12" height="12"><rect width="12" height="12" class=*class/></svg> " " {*name}</span>
            }).collect_view()}
        </p>
    };
    let body = move || match report.get() {
        Load::Loading => view! { <p class="muted">"Loading the report…"</p> }.into_any(),
        Load::Failed(m) => view! { <p class="error-text" role="alert">{m}</p> }.into_any(),
        Load::Ready(r) => {
            let hw = |x: Option<f64>| x.map(|h| format!("±{:.1} points", h * 100.0)).unwrap_or_else(|| "undefined (no items)".into());
            let against = profiles.with(|ps| ps.iter().find(|p| p.id == r.profile_id).map(|p| format!("{} ({})", p.name, p.date)));
            view! {
                <p class="muted" id="report-profile">{format!("Against the production profile {}", against.unwrap_or_else(|| format!("#{}", r.profile_id)))}</p>
                <p>
                    <strong class="num">{format!("{} members", r.members)}</strong>
                    {format!(" · Wilson half-width at accuracy {} ({}): {}", r.accuracy, r.accuracy_source, hw(r.half_width))}
                </p>
                <div class="bars-grid">
                    {r.attributes.iter().cloned().map(|a| view! { <Bars a/> }).collect_view()}
                </div>
                <table class="table table-compact" id="report-table">
                    <thead><tr><th>"Dev set vs production"</th><th class="num">"TVD"</th><th class="num">"PSI"</th><th class="num">"KL"</th><th>"Reading"</th></tr></thead>
                    <tbody>
                        {r.attributes.iter().filter_map(|a| a.dev_vs_production.clone()).map(|d| view! { <DistanceRow d/> }).collect_view()}
                        {r.joint_dev_vs_production.clone().map(|d| view! { <DistanceRow d/> })}
                    </tbody>
                </table>
                <table class="table table-compact">
                    <thead><tr><th>"Pool vs production"</th><th class="num">"TVD"</th><th class="num">"PSI"</th><th class="num">"KL"</th><th>"Reading"</th></tr></thead>
                    <tbody>
                        {r.attributes.iter().filter_map(|a| a.pool_vs_production.clone()).map(|d| view! { <DistanceRow d/> }).collect_view()}
                        {r.joint_pool_vs_production.clone().map(|d| view! { <DistanceRow d/> })}
                    </tbody>
                </table>
                <table class="table table-compact">
                    <caption>{format!("Half-width per {}", r.key_attribute)}</caption>
                    <thead><tr><th>{r.key_attribute.clone()}</th><th class="num">"n"</th><th class="num">"Half-width"</th></tr></thead>
                    <tbody>
                        {r.key_slices.iter().map(|s| view! {
                            <tr><td>{s.value.clone()}</td><td class="num">{s.n}</td><td class="num">{hw(s.half_width)}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
                {r.reasons.iter().map(|m| view! { <p class="muted">{m.clone()}</p> }).collect_view()}
                {r.top_up.clone().map(|t| view! { <TopUpTable t/> })}
            }
            .into_any()
        }
    };
    let progress_view = move || {
        progress.get().map(|p| view! {
            <table class="table table-compact" id="progress-table">
                <caption>"Campaign progress"</caption>
                <thead><tr><th>"Stratum"</th><th class="num">"Members"</th><th class="num">"Labeled"</th><th class="num">"Complete"</th><th class="num">"Agreed"</th><th class="num">"Reviewed"</th></tr></thead>
                <tbody>
                    {p.strata.iter().chain(std::iter::once(&p.total)).map(|s| view! {
                        <tr>
                            <td>{s.stratum.replace('|', " × ")}</td>
                            <td class="num">{s.members}</td>
                            <td class="num">{s.labeled}</td>
                            <td class="num">{s.complete}</td>
                            <td class="num">{s.agreed}</td>
                            <td class="num">{s.reviewed}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        })
    };
    let _ = pct;
    view! {
        <section class="card" aria-labelledby="report-h">
            <h2 id="report-h">"Distribution report"</h2>
            {legend}
            {body}
            <DriftForm profiles drift/>
            {progress_view}
        </section>
    }
    .into_any()
}
