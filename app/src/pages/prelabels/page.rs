//! `/projects/:id/prelabels`: a lead's view of the project's pre-label sources — upload model
//! predictions, see each source's figures per label, draw the audit sample (`a`), turn
//! auto-accept on or off for the selected row (`j`/`k` select, `t` toggles), and read the
//! export's estimated noise.
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api_client;
use super::auto::{auto_cell, NoiseSummary};
use super::model::BuiltinModelCard;
use crate::api_types::{
    AutoAcceptReport, AutoAcceptRequest, ErrorBody, ExportSummary, ImportReport, PrelabelAuditDrawn, PrelabelLabelStats,
    PrelabelSource, StatValue,
};
use crate::components::{fmt_count, Kbd};
use crate::pages::project_id;
use crate::upload::{self, UploadBody};
use crate::util;

/// A share as the page writes it: "80.0% [49.0, 94.3] · n 10", or "– · no answers yet".
pub fn share_text(s: &StatValue) -> String {
    match (s.value, s.interval) {
        (Some(v), Some(ci)) => format!("{:.1}% [{:.1}, {:.1}] · n {}", v * 100.0, ci.lower * 100.0, ci.upper * 100.0, s.n),
        (Some(v), None) => format!("{:.1}% · n {}", v * 100.0, s.n),
        (None, _) => format!("– · {}", s.reason.clone().unwrap_or_else(|| "undefined".into())),
    }
}

#[component]
pub fn PrelabelsPage() -> impl IntoView {
    let pid = project_id();
    move || match pid.get() {
        Some(id) => view! { <Prelabels pid=id/> }.into_any(),
        None => view! { <div class="narrow"><p class="error-text">"This is not a project address."</p></div> }.into_any(),
    }
}

#[component]
fn Prelabels(pid: i64) -> impl IntoView {
    let sources = RwSignal::new(None::<Result<Vec<PrelabelSource>, String>>);
    let status = RwSignal::new(None::<(bool, String)>);
    let refused = RwSignal::new(Vec::<(i64, String, String)>::new());
    let input = NodeRef::<leptos::html::Input>::new();
    let noise = RwSignal::new(None::<Result<ExportSummary, String>>);
    // What the audit draw or a toggle did, shown under the sources.
    let note = RwSignal::new(None::<(bool, String)>);
    let selected = RwSignal::new(0usize);
    let refresh = move || {
        spawn_local(async move {
            let got = api_client::get::<Vec<PrelabelSource>>(&format!("/api/projects/{pid}/prelabels/sources")).await;
            sources.set(Some(got.map_err(|e| e.message)));
            let got = api_client::get::<ExportSummary>(&format!("/api/projects/{pid}/export/summary")).await;
            noise.set(Some(got.map_err(|e| e.message)));
        })
    };
    Effect::new(move |_| refresh());
    // One row per source and label, in the table's order: what `j`/`k` and `t` act on.
    let rows = Memo::new(move |_| -> Vec<(i64, String, PrelabelLabelStats)> {
        match sources.get() {
            Some(Ok(list)) => list
                .into_iter()
                .flat_map(|s| {
                    let name = format!("{} {}", s.name, s.version);
                    s.by_label.into_iter().map(move |l| (s.id, name.clone(), l))
                })
                .collect(),
            _ => Vec::new(),
        }
    });
    let toggle = move |i: usize| {
        let Some((source_id, name, l)) = rows.get_untracked().get(i).cloned() else { return };
        let Some(enabled) = auto_cell(&l).1 else {
            note.set(Some((false, format!("{name} · {}: no threshold reaches the target yet; draw and decide more audits.", l.label))));
            return;
        };
        spawn_local(async move {
            let body = AutoAcceptRequest { source_id, labels: Some(l.labels.clone()), enabled };
            match api_client::send::<_, AutoAcceptReport>("PUT", &format!("/api/projects/{pid}/prelabels/auto-accept"), &body).await {
                Ok(r) => note.set(Some((true, format!(
                    "Auto-accept {} for {name} · {}: {} items auto-accepted in the project.",
                    if enabled { "on" } else { "off" }, l.label, fmt_count(r.accepted)
                )))),
                Err(e) => note.set(Some((false, e.message))),
            }
            refresh();
        });
    };

    let draw = move || {
        spawn_local(async move {
            match api_client::send_empty::<PrelabelAuditDrawn>("POST", &format!("/api/projects/{pid}/prelabels/audit")).await {
                Ok(d) => note.set(Some((true, format!("Audit draw: {} new pre-labels, {} items queued for review.", d.drawn, d.queued)))),
                Err(e) => note.set(Some((false, e.message))),
            }
            refresh();
        })
    };
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        if util::typing_in_field(&ev) || ev.repeat() || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        let n = rows.get_untracked().len();
        match ev.key().as_str() {
            "a" | "A" => draw(),
            "j" | "ArrowDown" if n > 0 => selected.update(|i| *i = (*i + 1).min(n - 1)),
            "k" | "ArrowUp" => selected.update(|i| *i = i.saturating_sub(1)),
            "t" | "T" => toggle(selected.get_untracked()),
            // R: the labeling rules (`rules`).
            "r" => {
                let _ = window().location().set_href(&format!("/projects/{pid}/prelabels/rules"));
            }
            _ => return,
        }
        ev.prevent_default();
    });
    on_cleanup(move || keys.remove());

    let upload = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(file) = input.get_untracked().and_then(|el| el.files()).and_then(|l| l.item(0)) else {
            status.set(Some((false, "Choose a .jsonl file of predictions first.".into())));
            return;
        };
        status.set(Some((true, "Reading the file…".into())));
        refused.set(vec![]);
        spawn_local(async move {
            let url = format!("/api/projects/{pid}/prelabels/import");
            match upload::upload(&url, UploadBody::Raw(file, "application/x-ndjson"), |_, _| {}, || {}).await {
                Err(e) => status.set(Some((false, e.message))),
                Ok((code, text)) if (200..300).contains(&code) => {
                    let msg = serde_json::from_str::<ImportReport>(&text)
                        .map(|r| format!("Imported {} predictions.", fmt_count(r.imported)))
                        .unwrap_or_else(|e| format!("Imported, but the answer could not be read: {e}"));
                    status.set(Some((true, msg)));
                }
                Ok((code, text)) => {
                    let body: Option<ErrorBody> = serde_json::from_str(&text).ok();
                    let message = body.as_ref().map(|b| b.error.message.clone()).unwrap_or_else(|| format!("The server answered {code}."));
                    let report: Option<ImportReport> = body.and_then(|b| serde_json::from_value(b.error.details).ok());
                    refused.set(report.map(|r| r.errors.into_iter().map(|e| (e.line, e.field, e.reason)).collect()).unwrap_or_default());
                    status.set(Some((false, message)));
                }
            }
            refresh();
        });
    };

    let table = move || match sources.get() {
        None => view! { <p class="muted">"Loading…"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="error-text" role="alert">{e}</p> }.into_any(),
        Some(Ok(list)) if list.is_empty() => view! { <p class="muted">"No pre-labels yet: upload a model's predictions below."</p> }.into_any(),
        Some(Ok(_)) => view! {
            <table class="table table-compact prelabel-sources">
                <thead><tr>
                    <th>"Source"</th><th>"Label"</th><th class="num">"Pre-labels"</th>
                    <th>"Accepted when shown"</th><th>"Audited precision"</th><th class="num">"Audited"</th>
                    <th class="num">"Threshold"</th><th>"Auto-accept " <Kbd k="t"/></th>
                </tr></thead>
                <tbody>
                    {move || rows.get().into_iter().enumerate().map(|(i, (_, name, l))| {
                        let (text, next) = auto_cell(&l);
                        let on = l.auto_accept.is_some();
                        view! {
                            <tr class:selected=move || selected.get() == i on:click=move |_| selected.set(i)>
                                <td>{name}</td>
                                <td>{l.label.clone()}</td>
                                <td class="num">{fmt_count(l.prelabels)}</td>
                                <td>{share_text(&l.acceptance)}</td>
                                <td>{share_text(&l.precision)}</td>
                                <td class="num">{fmt_count(l.audited)}</td>
                                <td class="num">{l.auto_accept_min_score.map(|t| format!("{t:.2}")).unwrap_or_else(|| "– not reached".into())}</td>
                                <td>
                                    <button class="btn btn-quiet auto-toggle" aria-pressed=on.to_string() disabled=next.is_none()
                                        on:click=move |_| { selected.set(i); toggle(i) }>
                                        {text}
                                    </button>
                                </td>
                            </tr>
                        }
                    }).collect_view()}
                </tbody>
            </table>
        }
        .into_any(),
    };

    view! {
        <div class="wide stack">
            <div>
                <div class="crumbs"><a href="/">"Projects"</a> " / " <a href=format!("/projects/{pid}")>"Project"</a> " / "</div>
                <div class="page-head">
                    <h1>"Pre-labels"</h1>
                    <span class="muted">"Draw the audit sample " <Kbd k="a"/> " · " <a href=format!("/projects/{pid}/prelabels/rules")>"Labeling rules"</a> " " <Kbd k="r"/></span>
                </div>
            </div>
            <section class="card" aria-labelledby="sources-h">
                <h2 id="sources-h">"Sources"</h2>
                {table}
                <p>
                    <button class="btn" on:click=move |_| draw()>"Draw audit sample " <Kbd k="a"/></button>
                    " "
                    <span class="muted">"Select a row " <Kbd k="j"/> " " <Kbd k="k"/> ", toggle its auto-accept " <Kbd k="t"/></span>
                </p>
                <p class="import-result" role="status">
                    {move || note.get().map(|(ok, m)| view! { <span class:ok-text=ok class:error-text=!ok>{m}</span> })}
                </p>
            </section>
            <BuiltinModelCard pid=pid/>
            <section class="card" aria-labelledby="noise-h">
                <h2 id="noise-h">"Estimated noise of the export"</h2>
                <NoiseSummary summary=noise/>
            </section>
            <section class="card" aria-labelledby="upload-h">
                <h2 id="upload-h">"Upload predictions"</h2>
                <form id="prelabel-upload" class="form-grid" on:submit=upload novalidate>
                    <label class="field">
                        <span class="field-label">"JSONL: item, label or labels, score, model, version"</span>
                        <input id="prelabel-file" node_ref=input class="input" type="file" accept=".jsonl,.ndjson"/>
                    </label>
                    <div class="form-actions"><button class="btn btn-primary" type="submit">"Upload"</button></div>
                </form>
                <p class="import-result" role="status">
                    {move || status.get().map(|(ok, m)| view! { <span class:ok-text=ok class:error-text=!ok>{m}</span> })}
                </p>
                <Show when=move || refused.with(|r| !r.is_empty())>
                    <table class="table table-compact">
                        <thead><tr><th class="num">"Line"</th><th>"Field"</th><th>"Reason"</th></tr></thead>
                        <tbody>
                            {move || refused.get().into_iter().map(|(l, f, r)| view! {
                                <tr><td class="num">{l}</td><td><code>{f}</code></td><td>{r}</td></tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </Show>
            </section>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_types::Interval;

    #[test]
    fn shares_show_n_and_interval_or_why_not() {
        let s = StatValue { value: Some(0.8), interval: Some(Interval { lower: 0.49, upper: 0.943 }), n: 10, reason: None };
        assert_eq!(share_text(&s), "80.0% [49.0, 94.3] · n 10");
        let none = StatValue { value: None, interval: None, n: 0, reason: Some("no answers yet".into()) };
        assert_eq!(share_text(&none), "– · no answers yet");
    }
}
