//! One release: summary, splits, the lineage's key facts, downloads and the dataset card;
//! and the diff against another release.
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api_client;
use crate::api_types::{ReleaseDetail, ReleaseDiff, ReleaseSummary};
use crate::components::{Kbd, Load};

fn stat(v: &serde_json::Value) -> String {
    match v["value"].as_f64() {
        Some(x) => match (v["interval"]["lower"].as_f64(), v["interval"]["upper"].as_f64()) {
            (Some(lo), Some(hi)) => format!("{x:.3} [{lo:.3}, {hi:.3}], n = {}", v["n"]),
            _ => format!("{x:.3}, n = {}", v["n"]),
        },
        None => format!("undefined: {}", v["reason"].as_str().unwrap_or("not computed")),
    }
}

pub fn download_url(pid: i64, release: i64, format: &str) -> String {
    format!("/api/projects/{pid}/releases/{release}/export?format={format}")
}

#[component]
pub fn ReleaseView(pid: i64, release: i64) -> impl IntoView {
    let detail = RwSignal::new(Load::<ReleaseDetail>::Loading);
    Effect::new(move |_| {
        spawn_local(async move {
            detail.set(match api_client::get::<ReleaseDetail>(&format!("/api/projects/{pid}/releases/{release}")).await {
                Ok(d) => Load::Ready(d),
                Err(e) => Load::Failed(e.message),
            });
        });
    });
    move || match detail.get() {
        Load::Loading => view! { <p class="muted">"Loading the release…"</p> }.into_any(),
        Load::Failed(m) => view! { <p class="error-text" role="alert">{m}</p> }.into_any(),
        Load::Ready(d) => {
            let l = d.lineage.clone();
            let overrides: Vec<String> = ["unready", "leakage"]
                .iter()
                .filter_map(|k| l["overrides"][k]["reason"].as_str().map(|r| format!("{k}: {r}")))
                .collect();
            view! {
                <section class="card" aria-labelledby="release-h" id="release-view">
                    <div class="page-head">
                        <h2 id="release-h">{format!("{} · {} items", d.summary.version, d.summary.item_count)}</h2>
                        <span class="muted">
                            <a class="btn btn-primary" id="download-zip" href=download_url(pid, release, "zip") download>"Download zip " <Kbd k="Z"/></a>
                            " " <a class="btn" href=download_url(pid, release, "jsonl") download>"JSONL"</a>
                            " " <a class="btn" href=download_url(pid, release, "csv") download>"CSV"</a>
                            " " <a class="btn" href=download_url(pid, release, "label_studio") download>"Label Studio"</a>
                        </span>
                    </div>
                    <table class="table table-compact">
                        <tbody>
                            <tr><th>"Content hash (SHA-256)"</th><td><code id="release-hash">{d.summary.content_hash.clone()}</code></td></tr>
                            <tr><th>"Splits"</th><td>{d.summary.splits.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(" · ")}</td></tr>
                            <tr><th>"Frozen"</th><td>{format!("by {} at {} (Mirrorset {})", l["frozen_by"]["username"].as_str().unwrap_or("?"),
                                crate::util::fmt_datetime(d.summary.created_at), l["app_version"].as_str().unwrap_or("?"))}</td></tr>
                            <tr><th>"Agreement at freeze"</th><td>{format!("alpha {}", stat(&l["agreement"]["alpha"]))}</td></tr>
                            <tr><th>"Aggregation"</th><td>{format!("{} · {}", l["aggregation"]["method"].as_str().unwrap_or(""), l["aggregation"]["precedence"].as_str().unwrap_or(""))}</td></tr>
                            <tr><th>"Split settings"</th><td>{format!("dev {:.0}% · seed {} · grouped by {}", l["splits"]["dev_share"].as_f64().unwrap_or(0.5) * 100.0 / (l["splits"]["dev_share"].as_f64().unwrap_or(0.5) + l["splits"]["test_share"].as_f64().unwrap_or(0.5)),
                                l["splits"]["seed"], l["splits"]["group_by"].as_str().unwrap_or("nothing"))}</td></tr>
                            <tr><th>"Leakage check"</th><td>{format!("{} pairs against {} training items (Jaccard ≥ {})", l["leakage"]["pairs"], l["leakage"]["pool_items"], l["leakage"]["threshold"])}</td></tr>
                            <tr><th>"Overrides"</th><td>{if overrides.is_empty() { "none".to_string() } else { overrides.join(" · ") }}</td></tr>
                        </tbody>
                    </table>
                    <details open>
                        <summary>"Dataset card (README.md)"</summary>
                        <pre class="card-preview" id="card-preview">{d.card.clone()}</pre>
                    </details>
                </section>
            }
            .into_any()
        }
    }
}

#[component]
pub fn DiffView(pid: i64, from: i64, to: i64) -> impl IntoView {
    let diff = RwSignal::new(Load::<ReleaseDiff>::Loading);
    Effect::new(move |_| {
        spawn_local(async move {
            diff.set(match api_client::get::<ReleaseDiff>(&format!("/api/projects/{pid}/releases/{from}/diff/{to}")).await {
                Ok(d) => Load::Ready(d),
                Err(e) => Load::Failed(e.message),
            });
        });
    });
    move || match diff.get() {
        Load::Loading => view! { <p class="muted">"Comparing…"</p> }.into_any(),
        Load::Failed(m) => view! { <p class="error-text" role="alert">{m}</p> }.into_any(),
        Load::Ready(d) => view! {
            <section class="card" aria-labelledby="diff-h" id="diff-view">
                <h2 id="diff-h">{format!("{} → {}", d.from.version, d.to.version)}</h2>
                <p>
                    {format!("{} added · {} removed · {} labels changed", d.added.len(), d.removed.len(), d.label_changes.len())}
                </p>
                <Show when={let n = d.label_changes.len(); move || n > 0}>
                    <table class="table table-compact">
                        <thead><tr><th class="num">"Item"</th><th>"Before"</th><th>"After"</th></tr></thead>
                        <tbody>
                            {d.label_changes.iter().map(|c| view! {
                                <tr>
                                    <td class="num">{c.item_id}</td>
                                    <td>{format!("{} ({})", c.from_labels.join(", "), c.from_provenance["source"].as_str().unwrap_or(""))}</td>
                                    <td>{format!("{} ({})", c.to_labels.join(", "), c.to_provenance["source"].as_str().unwrap_or(""))}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </Show>
                <p class="muted">{format!("Added: {:?} · Removed: {:?}", d.added, d.removed)}</p>
                <table class="table table-compact">
                    <thead><tr><th>"Attribute"</th><th>"Value"</th><th class="num">"Before"</th><th class="num">"After"</th><th class="num">"Δ share"</th></tr></thead>
                    <tbody>
                        {d.distribution.iter().map(|c| view! {
                            <tr>
                                <td>{c.attribute.clone()}</td><td>{c.value.clone()}</td>
                                <td class="num">{c.from_count}</td><td class="num">{c.to_count}</td>
                                <td class="num">{format!("{:+.1} pts", (c.to_share - c.from_share) * 100.0)}</td>
                            </tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </section>
        }
        .into_any(),
    }
}

/// The release before `id` of the same dev set, if any (the default to compare with).
pub fn previous_of(list: &[ReleaseSummary], id: i64) -> Option<i64> {
    let r = list.iter().find(|r| r.id == id)?;
    list.iter().filter(|x| x.devset_id == r.devset_id && x.created_at <= r.created_at && x.id < r.id).map(|x| x.id).max()
}
