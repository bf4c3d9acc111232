//! `/projects/:id/prelabels/rules`: a lead's labeling rules — the list with each rule's
//! figures, an editor whose figures follow the rule as it is typed (debounced preview), and
//! Apply, which turns the rules' votes into the rules source's pre-labels (label model).
//!
//! Keys (outside fields): `n` new rule, `j`/`k` select, `e` edit the selected rule, `x` delete
//! it, `A` apply the rules, `Escape` leaves a field. In the editor, Enter saves.
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::page::share_text;
use super::rules_state::{apply_text, coverage_text, describe_pattern, vote_text, Editor, KINDS};
use crate::api_client;
use crate::api_types::{JobInfo, PrelabelRule, RuleKind, RuleList, RulePreview, RulesApplyStatus};
use crate::components::{fmt_count, Kbd};
use crate::pages::project_id;
use crate::util;

/// Milliseconds of quiet typing before the preview asks the server.
const DEBOUNCE_MS: u32 = 250;
/// How often the page asks how a running Apply job does.
const APPLY_POLL_MS: u32 = 400;

#[component]
pub fn RulesPage() -> impl IntoView {
    let pid = project_id();
    move || match pid.get() {
        Some(id) => view! { <Rules pid=id/> }.into_any(),
        None => view! { <div class="narrow"><p class="error-text">"This is not a project address."</p></div> }.into_any(),
    }
}

#[component]
fn Rules(pid: i64) -> impl IntoView {
    let base = format!("/api/projects/{pid}/prelabels/rules");
    let list = RwSignal::new(None::<Result<RuleList, String>>);
    let labels = RwSignal::new(Vec::<String>::new());
    let editor = RwSignal::new(Editor::new(None));
    let preview = RwSignal::new(None::<Result<RulePreview, String>>);
    let selected = RwSignal::new(0usize);
    let status = RwSignal::new(None::<(bool, String)>);
    let pattern_input = NodeRef::<leptos::html::Input>::new();

    let refresh = {
        let base = base.clone();
        move || {
            let base = base.clone();
            spawn_local(async move {
                let got = api_client::get::<RuleList>(&base).await;
                list.set(Some(got.map_err(|e| e.message)));
            })
        }
    };
    let first_refresh = refresh.clone();
    Effect::new(move |_| first_refresh());
    Effect::new(move |_| {
        spawn_local(async move {
            if let Ok(p) = api_client::project(pid).await {
                let names: Vec<String> = p.labels.iter().map(|l| l.name.clone()).collect();
                editor.update(|e| {
                    if e.editing.is_none() && e.label.is_none() {
                        e.label = names.first().cloned();
                    }
                });
                labels.set(names);
            }
        })
    });

    // The live preview: each change waits DEBOUNCE_MS; only the latest request's answer shows.
    let seq = StoredValue::new(0u64);
    {
        let url = format!("{base}/preview");
        Effect::new(move |_| {
            let req = editor.with(|e| e.preview_request());
            seq.update_value(|s| *s += 1);
            let n = seq.get_value();
            let url = url.clone();
            spawn_local(async move {
                util::sleep_ms(DEBOUNCE_MS).await;
                if seq.get_value() != n {
                    return;
                }
                let Some(req) = req else {
                    preview.set(None);
                    return;
                };
                let got = api_client::send::<_, RulePreview>("POST", &url, &req).await;
                if seq.get_value() == n {
                    preview.set(Some(got.map_err(|e| e.message)));
                }
            });
        });
    }

    let rules = move || list.with(|l| l.as_ref().and_then(|l| l.as_ref().ok()).map(|l| l.rules.clone()).unwrap_or_default());
    let new_rule = move || {
        editor.set(Editor::new(labels.with_untracked(|l| l.first().cloned())));
        if let Some(el) = pattern_input.get_untracked() {
            let _ = el.focus();
        }
    };
    let edit = move |r: &PrelabelRule| {
        editor.set(Editor::from_rule(r));
        if let Some(el) = pattern_input.get_untracked() {
            let _ = el.focus();
        }
    };
    let save = {
        let base = base.clone();
        let refresh = refresh.clone();
        move || {
            let e = editor.get_untracked();
            let (method, url) = match e.editing {
                Some(id) => ("PUT", format!("{base}/{id}")),
                None => ("POST", base.clone()),
            };
            let refresh = refresh.clone();
            spawn_local(async move {
                match api_client::send::<_, PrelabelRule>(method, &url, &e.draft()).await {
                    Ok(r) => {
                        status.set(Some((true, format!("Saved rule “{}”.", r.name))));
                        editor.set(Editor::from_rule(&r));
                    }
                    Err(err) => status.set(Some((false, err.message))),
                }
                refresh();
            });
        }
    };
    let delete = {
        let base = base.clone();
        let refresh = refresh.clone();
        move |r: PrelabelRule| {
            let url = format!("{base}/{}", r.id);
            let refresh = refresh.clone();
            spawn_local(async move {
                match api_client::send_empty::<()>("DELETE", &url).await {
                    Ok(()) => {
                        status.set(Some((true, format!("Deleted rule “{}”.", r.name))));
                        if editor.with_untracked(|e| e.editing == Some(r.id)) {
                            editor.update(|e| e.editing = None);
                        }
                    }
                    Err(err) => status.set(Some((false, err.message))),
                }
                refresh();
            });
        }
    };
    let apply = {
        let url = format!("{base}/apply");
        let refresh = refresh.clone();
        move || {
            let url = url.clone();
            let refresh = refresh.clone();
            status.set(Some((true, "Applying the rules…".into())));
            spawn_local(async move {
                // A background job (202): follow it until it finishes.
                if let Err(err) = api_client::send_empty::<JobInfo>("POST", &url).await {
                    status.set(Some((false, err.message)));
                    return;
                }
                loop {
                    util::sleep_ms(APPLY_POLL_MS).await;
                    match api_client::get::<RulesApplyStatus>(&url).await {
                        Ok(s) => {
                            let (good, text, finished) = apply_text(&s);
                            status.set(Some((good, text)));
                            if finished {
                                break;
                            }
                        }
                        Err(err) => {
                            status.set(Some((false, err.message)));
                            break;
                        }
                    }
                }
                refresh();
            });
        }
    };

    let keys = {
        let (delete, apply) = (delete.clone(), apply.clone());
        window_event_listener(leptos::ev::keydown, move |ev| {
            if ev.key() == "Escape" {
                if let Some(el) = document().active_element() {
                    use wasm_bindgen::JsCast;
                    if let Some(el) = el.dyn_ref::<web_sys::HtmlElement>() {
                        let _ = el.blur();
                    }
                }
                return;
            }
            if util::typing_in_field(&ev) || ev.repeat() {
                return;
            }
            let all = rules();
            let current = all.get(selected.get_untracked().min(all.len().saturating_sub(1))).cloned();
            match ev.key().as_str() {
                "n" => new_rule(),
                "j" => selected.update(|s| *s = (*s + 1).min(all.len().saturating_sub(1))),
                "k" => selected.update(|s| *s = s.saturating_sub(1)),
                "e" => match current {
                    Some(r) => edit(&r),
                    None => return,
                },
                "x" => match current {
                    Some(r) => delete(r),
                    None => return,
                },
                "A" => apply(),
                _ => return,
            }
            ev.prevent_default();
        })
    };
    on_cleanup(move || keys.remove());

    let on_submit = {
        let save = save.clone();
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            save();
        }
    };

    let table = move || match list.get() {
        None => view! { <p class="muted">"Loading…"</p> }.into_any(),
        Some(Err(e)) => view! { <p class="error-text" role="alert">{e}</p> }.into_any(),
        Some(Ok(l)) if l.rules.is_empty() => {
            view! { <p class="muted">"No rules yet: write one below (" <Kbd k="n"/> ")."</p> }.into_any()
        }
        Some(Ok(l)) => {
            let items = l.items;
            view! {
                <p class="muted">
                    {format!(
                        "{} items, {} with a final label; the enabled rules vote on {}.",
                        fmt_count(l.items),
                        fmt_count(l.labeled),
                        fmt_count(l.covered)
                    )}
                </p>
                <table class="table table-compact rule-list">
                    <thead><tr>
                        <th>"Rule"</th><th>"Looks for"</th><th>"Votes"</th><th class="num">"Coverage"</th>
                        <th class="num">"Overlap"</th><th class="num">"Conflict"</th><th>"Accuracy on labeled"</th>
                    </tr></thead>
                    <tbody>
                        {l.rules.into_iter().enumerate().map(|(i, r)| {
                            let looks = describe_pattern(r.kind, &r.pattern, r.meta_key.as_deref());
                            view! {
                                <tr class:is-selected=move || selected.get() == i class:is-disabled=!r.enabled
                                    aria-selected=move || (selected.get() == i).to_string()>
                                    <td>{r.name.clone()}{(!r.enabled).then(|| view! { <span class="muted">" (off)"</span> })}</td>
                                    <td><code>{looks}</code></td>
                                    <td>{vote_text(r.label.as_deref())}</td>
                                    <td class="num">{coverage_text(&r.stats, items)}</td>
                                    <td class="num">{fmt_count(r.stats.overlap)}</td>
                                    <td class="num">{fmt_count(r.stats.conflict)}</td>
                                    <td>{share_text(&r.stats.accuracy)}</td>
                                </tr>
                            }
                        }).collect_view()}
                    </tbody>
                </table>
            }
            .into_any()
        }
    };

    let preview_view = move || match preview.get() {
        None => view! { <p class="muted">"Type a pattern to see what the rule catches."</p> }.into_any(),
        Some(Err(e)) => view! { <p class="error-text" role="alert">{e}</p> }.into_any(),
        Some(Ok(p)) => view! {
            <dl class="stat-grid rule-preview" aria-label="Preview">
                <div><dt>"Coverage"</dt><dd>{coverage_text(&p.stats, p.items)}</dd></div>
                <div><dt>"Overlap"</dt><dd>{fmt_count(p.stats.overlap)}</dd></div>
                <div><dt>"Conflict"</dt><dd>{fmt_count(p.stats.conflict)}</dd></div>
                <div><dt>"Accuracy on labeled"</dt><dd>{share_text(&p.stats.accuracy)}</dd></div>
            </dl>
            <ul class="rule-examples">
                {p.examples.into_iter().map(|e| view! {
                    <li>
                        <span>{e.text}</span>
                        {e.final_labels.map(|l| view! { <span class="muted">{format!(" · final: {}", l.join(", "))}</span> })}
                    </li>
                }).collect_view()}
            </ul>
            <p class="muted small">{format!("over {} items in {:.0} ms", fmt_count(p.items), p.elapsed_ms)}</p>
        }
        .into_any(),
    };

    view! {
        <div class="wide stack">
            <div>
                <div class="crumbs">
                    <a href="/">"Projects"</a> " / " <a href=format!("/projects/{pid}")>"Project"</a> " / "
                    <a href=format!("/projects/{pid}/prelabels")>"Pre-labels"</a> " / "
                </div>
                <div class="page-head">
                    <h1>"Labeling rules"</h1>
                    <span class="muted">
                        "New " <Kbd k="n"/> " · select " <Kbd k="j"/> <Kbd k="k"/> " · edit " <Kbd k="e"/>
                        " · delete " <Kbd k="x"/> " · apply " <Kbd k="A"/>
                    </span>
                </div>
            </div>
            <section class="card" aria-labelledby="rules-h">
                <h2 id="rules-h">"Rules"</h2>
                {table}
                <p>
                    <button class="btn" on:click={
                        let apply = apply.clone();
                        move |_| apply()
                    }>"Apply rules " <Kbd k="A"/></button>
                    " "
                    <span class="import-result" role="status">
                        {move || status.get().map(|(ok, m)| view! { <span class:ok-text=ok class:error-text=!ok>{m}</span> })}
                    </span>
                </p>
            </section>
            <section class="card" aria-labelledby="editor-h">
                <h2 id="editor-h">
                    {move || match editor.with(|e| e.editing) {
                        Some(_) => "Edit rule",
                        None => "New rule",
                    }}
                </h2>
                <form class="form-grid rule-editor" on:submit=on_submit novalidate>
                    <label class="field">
                        <span class="field-label">"Kind"</span>
                        <select id="rule-kind" class="input" aria-label="Kind"
                            prop:value=move || editor.with(|e| e.kind.as_str().to_string())
                            on:change=move |ev| {
                                let k = RuleKind::parse(&event_target_value(&ev)).unwrap_or_default();
                                editor.update(|e| e.kind = k);
                            }>
                            {KINDS.iter().map(|(k, name)| view! { <option value=k.as_str()>{*name}</option> }).collect_view()}
                        </select>
                    </label>
                    <Show when=move || editor.with(|e| e.kind == RuleKind::Meta)>
                        <label class="field">
                            <span class="field-label">"Attribute"</span>
                            <input id="rule-meta-key" class="input" type="text" placeholder="e.g. source"
                                prop:value=move || editor.with(|e| e.meta_key.clone())
                                on:input=move |ev| editor.update(|e| e.meta_key = event_target_value(&ev))/>
                        </label>
                    </Show>
                    <label class="field">
                        <span class="field-label">
                            {move || match editor.with(|e| e.kind) {
                                RuleKind::Keyword => "Words (any of them, whole words, any case)",
                                RuleKind::Regex => "Regular expression (any case)",
                                RuleKind::Meta => "Value",
                            }}
                        </span>
                        <input id="rule-pattern" node_ref=pattern_input class="input" type="text" autocomplete="off"
                            prop:value=move || editor.with(|e| e.pattern.clone())
                            on:input=move |ev| editor.update(|e| e.pattern = event_target_value(&ev))/>
                    </label>
                    <label class="field">
                        <span class="field-label">"Label"</span>
                        <select id="rule-label" class="input" aria-label="Label"
                            prop:value=move || editor.with(|e| e.label.clone().unwrap_or_default())
                            on:change=move |ev| {
                                let v = event_target_value(&ev);
                                editor.update(|e| e.label = (!v.is_empty()).then_some(v));
                            }>
                            {move || labels.get().into_iter().map(|l| view! { <option value=l.clone()>{l.clone()}</option> }).collect_view()}
                            <option value="">"abstain"</option>
                        </select>
                    </label>
                    <label class="field">
                        <span class="field-label">"Name (optional)"</span>
                        <input id="rule-name" class="input" type="text"
                            prop:value=move || editor.with(|e| e.name.clone())
                            on:input=move |ev| editor.update(|e| e.name = event_target_value(&ev))/>
                    </label>
                    <label class="field field-inline">
                        <input id="rule-enabled" type="checkbox"
                            prop:checked=move || editor.with(|e| e.enabled)
                            on:change=move |ev| editor.update(|e| e.enabled = event_target_checked(&ev))/>
                        <span>"Enabled"</span>
                    </label>
                    <div class="form-actions">
                        <button class="btn btn-primary" type="submit">"Save " <Kbd k="⏎"/></button>
                        <button class="btn btn-quiet" type="button" on:click=move |_| new_rule()>"New " <Kbd k="n"/></button>
                    </div>
                </form>
                <div class="rule-preview-box" aria-live="polite">{preview_view}</div>
            </section>
        </div>
    }
    .into_any()
}
