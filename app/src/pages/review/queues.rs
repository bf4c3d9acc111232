//! `/projects/:id/review`: the review queues with their counts, filtered by slice and label.
//! Keys: `1`–`9` open the queue of that row, `/` goes to the slice filter.
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;

use crate::api_client;
use crate::api_types::{Project, ReviewQueueCount};
use crate::components::{fmt_count, Kbd, Load, Skeleton};
use crate::util;

use super::state::QueueFilters;

/// What each built-in queue holds, for the list.
fn describe(queue: &str) -> &'static str {
    match queue {
        "disagreement" => "complete items whose labels differ, or whose consensus is unsure",
        "gold_miss" => "answers on gold items that differ from the gold answer",
        "audit" => "a seeded random share of complete items",
        _ => "fed by another source",
    }
}

#[component]
pub fn QueueList(pid: i64) -> impl IntoView {
    let query = use_query_map();
    let filters = Memo::new(move |_| {
        query.with(|q| QueueFilters { pair: None, slice: q.get("slice"), label: q.get("label") })
    });
    let project = RwSignal::new(Load::<Project>::Loading);
    let queues = RwSignal::new(Load::<Vec<ReviewQueueCount>>::Loading);
    let slice_input = RwSignal::new(String::new());
    let label_input = RwSignal::new(String::new());

    Effect::new(move |_| {
        spawn_local(async move {
            project.set(match api_client::project(pid).await {
                Ok(p) => Load::Ready(p),
                Err(e) => Load::Failed(e.message),
            });
        });
    });
    Effect::new(move |_| {
        let f = filters.get();
        slice_input.set(f.slice.clone().unwrap_or_default());
        label_input.set(f.label.clone().unwrap_or_default());
        spawn_local(async move {
            queues.set(match api_client::review_queues(pid, &f.query()).await {
                Ok(q) => Load::Ready(q.queues),
                Err(e) => Load::Failed(e.message),
            });
        });
    });

    let queue_href = move |queue: &str| {
        let q = filters.get_untracked().query();
        let base = format!("/projects/{pid}/review/{queue}");
        if q.is_empty() { base } else { format!("{base}?{q}") }
    };
    let navigate = use_navigate();
    let nav = navigate.clone();
    let apply = move || {
        let f = QueueFilters {
            pair: None,
            slice: Some(slice_input.get_untracked()),
            label: Some(label_input.get_untracked()),
        };
        let q = f.query();
        nav(&format!("/projects/{pid}/review{}", if q.is_empty() { String::new() } else { format!("?{q}") }), NavigateOptions::default());
    };
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        if util::typing_in_field(&ev) {
            return;
        }
        let key = ev.key();
        if key == "/" {
            ev.prevent_default();
            util::focus_id("review-slice");
            return;
        }
        if let Ok(n) = key.parse::<usize>() {
            let name = queues.with_untracked(|q| q.ready().and_then(|q| q.get(n.wrapping_sub(1)).map(|q| q.queue.clone())));
            if let Some(name) = name {
                ev.prevent_default();
                navigate(&queue_href(&name), NavigateOptions::default());
            }
        }
    });
    on_cleanup(move || keys.remove());

    let name = move || match project.get() {
        Load::Ready(p) => p.name.into_any(),
        Load::Loading => view! { <Skeleton width="10em"/> }.into_any(),
        Load::Failed(_) => "Project".into_any(),
    };
    let label_options = move || {
        project.with(|p| p.ready().map(|p| p.labels.iter().map(|l| l.name.clone()).collect::<Vec<_>>()).unwrap_or_default())
    };
    let rows = move || match queues.get() {
        Load::Loading => (0..3)
            .map(|_| view! { <tr><td><Skeleton width="8em"/></td><td></td><td class="num"><Skeleton width="3em"/></td><td class="num"><Skeleton width="3em"/></td></tr> })
            .collect_view()
            .into_any(),
        Load::Failed(msg) => view! { <tr><td colspan="4" class="error-text">{msg}</td></tr> }.into_any(),
        Load::Ready(list) => list
            .into_iter()
            .enumerate()
            .map(|(i, q)| {
                let href = queue_href(&q.queue);
                let key = (i < 9).then(|| (i + 1).to_string());
                view! {
                    <tr>
                        <td>
                            <a class="queue-link" href=href>{q.queue.replace('_', " ")}</a>
                            " " {key.map(|k| view! { <Kbd k/> })}
                        </td>
                        <td class="muted">{describe(&q.queue)}</td>
                        <td class="num strong">{fmt_count(q.open)}</td>
                        <td class="num muted">{fmt_count(q.resolved)}</td>
                    </tr>
                }
            })
            .collect_view()
            .into_any(),
    };

    view! {
        <div class="wide review-queues">
            <div class="crumbs"><a href="/">"Projects"</a> " / " <a href=format!("/projects/{pid}")>{name}</a> " / "</div>
            <div class="page-head"><h1>"Review"</h1></div>
            <form class="filter-row" on:submit=move |ev| { ev.prevent_default(); apply(); }>
                <label class="field-inline">
                    <span>"slice " <Kbd k="/"/></span>
                    <input id="review-slice" class="input" placeholder="attribute:value" prop:value=slice_input
                        on:input=move |ev| slice_input.set(event_target_value(&ev))/>
                </label>
                <label class="field-inline">
                    <span>"label"</span>
                    <select class="input" prop:value=label_input on:change=move |ev| label_input.set(event_target_value(&ev))>
                        <option value="">"any"</option>
                        <For each=label_options key=|l| l.clone() let:l>
                            <option value=l.clone()>{l.clone()}</option>
                        </For>
                    </select>
                </label>
                <button class="btn" type="submit">"Filter"</button>
                <Show when=move || !filters.get().is_empty()>
                    <a class="btn btn-quiet" href=format!("/projects/{pid}/review")>"Clear"</a>
                </Show>
            </form>
            <table class="table queue-table">
                <thead><tr><th>"queue"</th><th>"holds"</th><th class="num">"open"</th><th class="num">"resolved"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
