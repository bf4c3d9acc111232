//! The dashboard's sections: small components, each given the dashboard it shows.
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::charts::{alpha_line_svg, enc, heat_map_svg};
use super::format::{interval_text, num, percent, proportion, stat_with_interval};
use crate::api_client;
use crate::api_types::{AgreementDashboard, AgreementSlices, StatValue};
use crate::components::Load;
use crate::util;

fn review(pid: i64, query: String) -> String {
    format!("/projects/{pid}/review/disagreement?{query}")
}

/// One headline statistic: value, interval, n, or why it is undefined.
#[component]
fn StatCard(title: &'static str, s: StatValue, #[prop(optional)] hint: &'static str) -> impl IntoView {
    let value = s.value.map(num).unwrap_or_else(|| "–".into());
    let detail = match (&s.value, interval_text(&s), &s.reason) {
        (Some(_), Some(ci), _) => ci,
        (Some(_), None, Some(r)) => r.clone(),
        (None, _, Some(r)) => r.clone(),
        _ => String::new(),
    };
    view! {
        <div class="card stat-card">
            <div class="stat-title">{title} " " <span class="muted">{hint}</span></div>
            <div class="stat-value num">{value}</div>
            <div class="stat-detail muted">{detail}</div>
            <div class="stat-n muted num">{format!("n = {} pairable items", s.n)}</div>
        </div>
    }
}

#[component]
pub fn StatCards(d: AgreementDashboard) -> impl IntoView {
    let measurement = if d.measurement == "ordinal" { "(ordinal)" } else { "(nominal)" };
    view! {
        <section class="stat-cards" aria-label="Overall agreement">
            <StatCard title="Krippendorff's alpha" hint=measurement s=d.alpha.clone()/>
            <StatCard title="Fleiss' kappa" s=d.fleiss_kappa.clone()/>
            <StatCard title="Mean pairwise Cohen's kappa" s=d.mean_cohen_kappa.clone()/>
            <StatCard title="Percent agreement" s=d.percent_agreement.clone()/>
        </section>
        <p class="muted small">
            {format!(
                "{} items · {} labels · {} labelers · target alpha {} · consensus by {}{}",
                d.n_items, d.n_annotations, d.n_labelers, d.target_alpha,
                if d.consensus_method == "dawid_skene" { "Dawid–Skene" } else { "majority vote" },
                if d.multi_label { " · multi-label: each label counts as present/absent" } else { "" },
            )}
        </p>
    }
}

#[component]
pub fn PairMatrix(pid: i64, d: AgreementDashboard) -> impl IntoView {
    let empty = d.pairs.is_empty();
    let svg = heat_map_svg(pid, &d.pairs);
    view! {
        <section class="card" aria-label="Labeler pairs">
            <h2>"Labeler pairs " <span class="muted">"Cohen's kappa, n items in common; a cell opens its disagreements"</span></h2>
            {if empty {
                view! { <p class="muted">"No two labelers have labeled the same item yet."</p> }.into_any()
            } else {
                view! { <div class="heatmap-wrap" inner_html=svg></div> }.into_any()
            }}
        </section>
    }
}

#[component]
pub fn ConfusionList(pid: i64, d: AgreementDashboard) -> impl IntoView {
    let rows = d
        .confusion
        .iter()
        .take(10)
        .map(|c| {
            view! {
                <tr>
                    <td><a href=review(pid, format!("label={}", enc(&c.a)))>{c.a.clone()}</a></td>
                    <td><a href=review(pid, format!("label={}", enc(&c.b)))>{c.b.clone()}</a></td>
                    <td class="num">{format!("{:.1}", c.count)}</td>
                    <td class="num">{percent(c.share)}</td>
                </tr>
            }
        })
        .collect_view();
    let note = if d.multi_label {
        "Multi-label project: see the per-label agreement."
    } else if d.confusion.is_empty() {
        "No label pair has been mixed up."
    } else {
        ""
    };
    view! {
        <section class="card" aria-label="Label confusion">
            <h2>"Labels mixed up " <span class="muted">"from the coincidence matrix"</span></h2>
            <table class="table table-compact">
                <thead><tr><th>"Label"</th><th>"with"</th><th class="num">"pairs"</th><th class="num">"share"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            <p class="muted small">{note}</p>
        </section>
    }
}

#[component]
pub fn PerLabelTable(pid: i64, d: AgreementDashboard) -> impl IntoView {
    let rows = d
        .per_label
        .iter()
        .map(|l| {
            let why = if l.alpha.value.is_none() { l.alpha.reason.clone().unwrap_or_default() } else { String::new() };
            view! {
                <tr>
                    <td><a href=review(pid, format!("label={}", enc(&l.label)))>{l.label.clone()}</a></td>
                    <td class="num">{stat_with_interval(&l.alpha)}</td>
                    <td class="muted small">{why}</td>
                </tr>
            }
        })
        .collect_view();
    let title = if d.multi_label { "Per label (present/absent alpha)" } else { "Per label (one-vs-rest alpha)" };
    view! {
        <section class="card" aria-label="Per label">
            <h2>{title}</h2>
            <table class="table table-compact">
                <thead><tr><th>"Label"</th><th class="num">"alpha"</th><th></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
}

#[component]
pub fn OverTime(d: AgreementDashboard, week: RwSignal<bool>) -> impl IntoView {
    let is_week = d.period == "week";
    let label = move |t: i64| {
        let s = util::fmt_date(t);
        if is_week { format!("wk {}", &s[5..]) } else { s[5..].to_string() }
    };
    let svg = alpha_line_svg(&d.over_time, d.target_alpha, label);
    let empty = d.over_time.is_empty();
    let _ = week;
    view! {
        <section class="card" aria-label="Alpha over time">
            <h2>{if is_week { "Alpha per week" } else { "Alpha per day" }} <span class="muted">" items by the day their last label came"</span></h2>
            {if empty {
                view! { <p class="muted">"No labels yet."</p> }.into_any()
            } else {
                view! { <div class="alpha-line-wrap" inner_html=svg></div> }.into_any()
            }}
        </section>
    }
}

#[component]
pub fn SlicesSection(pid: i64, d: AgreementDashboard, slices: RwSignal<Load<AgreementSlices>>) -> impl IntoView {
    let attrs = d.slice_attributes.clone();
    let attr = RwSignal::new(attrs.first().cloned());
    Effect::new(move |_| {
        let Some(a) = attr.get() else { return };
        spawn_local(async move {
            slices.set(match api_client::agreement_slices(pid, &a).await {
                Ok(s) => Load::Ready(s),
                Err(e) => Load::Failed(e.message),
            });
        });
    });
    let options = attrs.iter().map(|a| view! { <option value=a.clone()>{a.clone()}</option> }).collect_view();
    let table = move || {
        if attr.with(Option::is_none) {
            return view! { <p class="muted">"The labeled items have no meta attribute with 50 values or fewer to slice by."</p> }.into_any();
        }
        slices.with(|s| match s {
            Load::Loading => view! { <p class="muted">"Loading…"</p> }.into_any(),
            Load::Failed(m) => view! { <p class="error-text">{m.clone()}</p> }.into_any(),
            Load::Ready(s) => {
                let rows = s
                    .rows
                    .iter()
                    .map(|r| {
                        let href = review(pid, format!("slice={}:{}", enc(&s.attr), enc(&r.value)));
                        view! {
                            <tr class:below-target=r.below_target>
                                <td><a href=href>{r.value.clone()}</a></td>
                                <td class="num">{r.items}</td>
                                <td class="num">{r.alpha.n}</td>
                                <td class="num">{stat_with_interval(&r.alpha)}</td>
                                <td>{if r.below_target { "below target".to_string() } else { r.alpha.reason.clone().unwrap_or_default() }}</td>
                            </tr>
                        }
                    })
                    .collect_view();
                view! {
                    <table class="table table-compact">
                        <thead><tr><th>"Value"</th><th class="num">"items"</th><th class="num">"n"</th><th class="num">"alpha [95% CI]"</th><th></th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                    <p class="muted small">{format!("Marked: the whole interval lies below the target alpha {}.", s.target_alpha)}</p>
                }
                .into_any()
            }
        })
    };
    view! {
        <section class="card" aria-label="Slices">
            <div class="section-head">
                <h2>"Per slice"</h2>
                <label class="muted small">"attribute "
                    <select class="input input-small" on:change=move |ev| attr.set(Some(event_target_value(&ev)))>{options}</select>
                </label>
            </div>
            {table}
        </section>
    }
}

#[component]
pub fn LabelersTable(d: AgreementDashboard) -> impl IntoView {
    let labels = d.confusion_labels.clone();
    let rows = d
        .labelers
        .iter()
        .map(|l| {
            // The diagonal of the Dawid–Skene confusion: how often they give the true label.
            let diag = l
                .ds_confusion
                .iter()
                .enumerate()
                .map(|(i, row)| format!("{} {}", labels.get(i).cloned().unwrap_or_default(), row.get(i).map(|v| format!("{v:.2}")).unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(" · ");
            view! {
                <tr>
                    <td>{l.username.clone()}</td>
                    <td class="num">{l.items_labeled}</td>
                    <td class="num">{l.median_seconds.map(|s| format!("{s:.1} s")).unwrap_or_else(|| "–".into())}</td>
                    <td class="num">{l.skip_rate.map(percent).unwrap_or_else(|| "–".into())}</td>
                    <td class="num">{proportion(&l.agreement_with_others)} <span class="muted small">{format!(" n={}", l.agreement_with_others.n)}</span></td>
                    <td class="num">{proportion(&l.gold_accuracy)} <span class="muted small">{format!(" n={}", l.gold_accuracy.n)}</span></td>
                    <td class="small">{diag}</td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card" aria-label="Labelers">
            <h2>"Labelers"</h2>
            <div class="table-scroll">
                <table class="table table-compact">
                    <thead><tr>
                        <th>"Labeler"</th><th class="num">"items"</th><th class="num">"median time"</th><th class="num">"skipped"</th>
                        <th class="num">"agrees with others [95% CI]"</th><th class="num">"gold accuracy [95% CI]"</th>
                        <th>"Dawid–Skene: P(gives the true label)"</th>
                    </tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
}
