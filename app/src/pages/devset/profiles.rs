//! Production profiles: the list, and the upload of a production sample or a counts table.
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::state::ProfileSummary;
use crate::api_client::encode;
use crate::components::fmt_count;
use crate::upload::{self, UploadBody};

#[derive(Clone, Debug, PartialEq)]
enum Phase {
    Idle,
    Sending,
    Done(String),
    Refused { message: String, lines: Vec<(i64, String, String)> },
}

#[component]
pub fn ProfilesCard(
    pid: i64,
    profiles: RwSignal<Vec<ProfileSummary>>,
    on_done: impl Fn() + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let input = NodeRef::<leptos::html::Input>::new();
    let name = RwSignal::new(String::new());
    let date = RwSignal::new(String::new());
    let kind = RwSignal::new("records".to_string());
    let phase = RwSignal::new(Phase::Idle);

    let start = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if phase.get_untracked() == Phase::Sending {
            return;
        }
        let file = input.get_untracked().and_then(|el| el.files()).and_then(|l| l.item(0));
        let Some(file) = file else {
            phase.set(Phase::Refused { message: "Choose a .jsonl or .csv file first.".into(), lines: vec![] });
            return;
        };
        let (n, d) = (name.get_untracked(), date.get_untracked());
        if n.trim().is_empty() || d.trim().is_empty() {
            phase.set(Phase::Refused { message: "Give the profile a name and a date.".into(), lines: vec![] });
            return;
        }
        let format = if file.name().to_ascii_lowercase().ends_with(".csv") { "csv" } else { "jsonl" };
        let url = format!(
            "/api/projects/{pid}/profiles?name={}&date={}&kind={}&format={format}",
            encode(n.trim()),
            encode(d.trim()),
            kind.get_untracked()
        );
        phase.set(Phase::Sending);
        spawn_local(async move {
            let result = upload::upload(&url, UploadBody::Raw(file, "application/octet-stream"), |_, _| {}, || {}).await;
            phase.set(match result {
                Err(e) => Phase::Refused { message: e.message, lines: vec![] },
                Ok((status, text)) if (200..300).contains(&status) => match serde_json::from_str::<ProfileSummary>(&text) {
                    Ok(p) => Phase::Done(format!("Saved “{}”: {} records, {} combinations.", p.name, fmt_count(p.records as i64), p.combinations)),
                    Err(e) => Phase::Refused { message: format!("Saved, but the answer could not be read: {e}"), lines: vec![] },
                },
                Ok((status, text)) => {
                    let body: Option<crate::api_types::ErrorBody> = serde_json::from_str(&text).ok();
                    let message = body.as_ref().map(|b| b.error.message.clone()).unwrap_or_else(|| format!("The server answered {status}."));
                    let lines = body
                        .and_then(|b| b.error.details.get("errors").cloned())
                        .and_then(|e| e.as_array().cloned())
                        .unwrap_or_default()
                        .iter()
                        .map(|e| {
                            let s = |k: &str| e.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
                            (e.get("line").and_then(|v| v.as_i64()).unwrap_or(0), s("field"), s("reason"))
                        })
                        .collect();
                    Phase::Refused { message, lines }
                }
            });
            on_done();
        });
    };

    let result = move || match phase.get() {
        Phase::Sending => view! { <p class="muted">"Reading the file…"</p> }.into_any(),
        Phase::Done(m) => view! { <p class="ok-text">{m}</p> }.into_any(),
        Phase::Refused { message, lines } => view! {
            <p class="error-text" role="alert">{message}</p>
            <Show when={let n = lines.len(); move || n > 0}>
                <table class="table table-compact">
                    <thead><tr><th class="num">"Line"</th><th>"Field"</th><th>"Reason"</th></tr></thead>
                    <tbody>
                        {lines.clone().into_iter().map(|(l, f, r)| view! {
                            <tr><td class="num">{l}</td><td><code>{f}</code></td><td>{r}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </Show>
        }
        .into_any(),
        Phase::Idle => ().into_any(),
    };

    view! {
        <section class="card" aria-labelledby="profiles-h">
            <h2 id="profiles-h">"Production profiles"</h2>
            <table class="table table-compact">
                <thead><tr><th>"Name"</th><th>"Date"</th><th class="num">"Records"</th><th>"Attributes"</th></tr></thead>
                <tbody>
                    {move || profiles.get().into_iter().map(|p| view! {
                        <tr>
                            <td>{p.name}</td>
                            <td class="num">{p.date}</td>
                            <td class="num">{fmt_count(p.records as i64)}</td>
                            <td>{p.attributes.iter().map(|a| if a.kind == "numeric" { format!("{} (quartiles)", a.name) } else { a.name.clone() }).collect::<Vec<_>>().join(", ")}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
            <form class="form-grid" on:submit=start novalidate>
                <label class="field">
                    <span class="field-label">"Name"</span>
                    <input id="pf-name" class="input" type="text" bind:value=name/>
                </label>
                <label class="field field-small">
                    <span class="field-label">"Date"</span>
                    <input class="input" type="date" bind:value=date/>
                </label>
                <label class="field field-small">
                    <span class="field-label">"Kind"</span>
                    <select class="input" on:change=move |ev| kind.set(event_target_value(&ev))>
                        <option value="records" selected>"Sample of records"</option>
                        <option value="counts">"Counts table"</option>
                    </select>
                </label>
                <label class="field">
                    <span class="field-label">"File (.jsonl or .csv)"</span>
                    <input node_ref=input class="input" type="file" accept=".jsonl,.ndjson,.csv"/>
                </label>
                <div class="field">
                    <button class="btn btn-primary" type="submit" disabled=move || phase.get() == Phase::Sending>"Upload profile"</button>
                </div>
            </form>
            <div class="import-result">{result}</div>
        </section>
    }
    .into_any()
}
