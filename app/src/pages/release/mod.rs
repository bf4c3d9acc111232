//! `/projects/:id/releases`: dev-set releases (issue 9), for admins and leads. The list, the
//! freeze form (with what blocks a freeze and its overrides), the selected release (lineage,
//! splits, card preview, downloads) and its diff with the release before it.
//! Keys: F freeze, Z download the zip, C compare with the previous release, J/K next/previous
//! release, R reload. The dev-set page opens it with V.
mod freeze;
pub mod state;
mod view;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_query_map;

use crate::api_client;
use crate::api_types::ReleaseSummary;
use crate::components::{Kbd, Status, StatusLine};
use crate::pages::project_id;
use crate::util;
use freeze::FreezeCard;
use state::{short_hash, DevsetRef};
use view::{download_url, previous_of, DiffView, ReleaseView};

#[component]
pub fn ReleasesPage() -> impl IntoView {
    let pid = project_id();
    let query = use_query_map();
    let devsets = RwSignal::new(Vec::<DevsetRef>::new());
    let releases = RwSignal::new(Vec::<ReleaseSummary>::new());
    let devset = RwSignal::new(query.with_untracked(|q| q.get("devset").and_then(|s| s.parse::<i64>().ok())));
    let selected = RwSignal::new(None::<i64>);
    let compare = RwSignal::new(false);
    let refresh = RwSignal::new(0u32);
    let status = RwSignal::new(None::<Status>);

    Effect::new(move |_| {
        refresh.track();
        let Some(id) = pid.get() else { return };
        spawn_local(async move {
            match api_client::get::<Vec<DevsetRef>>(&format!("/api/projects/{id}/devsets")).await {
                Ok(d) => {
                    if devset.get_untracked().is_none() {
                        devset.set(d.iter().rev().find(|d| d.sampled_at.is_some()).map(|d| d.id));
                    }
                    devsets.set(d);
                }
                Err(e) => status.set(Status::api(&e)),
            }
            match api_client::get::<Vec<ReleaseSummary>>(&format!("/api/projects/{id}/releases")).await {
                Ok(r) => {
                    if selected.get_untracked().is_none() {
                        selected.set(r.last().map(|r| r.id));
                    }
                    releases.set(r);
                }
                Err(e) => status.set(Status::api(&e)),
            }
        });
    });

    let step = move |by: i64| {
        releases.with_untracked(|rs| {
            let at = rs.iter().position(|r| Some(r.id) == selected.get_untracked());
            let next = match at {
                Some(i) => (i as i64 + by).clamp(0, rs.len() as i64 - 1) as usize,
                None => 0,
            };
            if let Some(r) = rs.get(next) {
                selected.set(Some(r.id));
                compare.set(false);
            }
        });
    };
    let handle = window_event_listener(leptos::ev::keydown, move |ev| {
        if util::typing_in_field(&ev) || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        match ev.key().as_str() {
            "f" | "F" => {
                ev.prevent_default();
                // The form's own submit button: the same path as a click.
                if let Some(b) = leptos::prelude::document().get_element_by_id("freeze-btn") {
                    use wasm_bindgen::JsCast;
                    if let Ok(b) = b.dyn_into::<web_sys::HtmlElement>() {
                        b.click();
                    }
                }
            }
            "z" | "Z" => {
                if let (Some(p), Some(r)) = (pid.get_untracked(), selected.get_untracked()) {
                    ev.prevent_default();
                    let _ = leptos::prelude::window().location().set_href(&download_url(p, r, "zip"));
                }
            }
            "c" | "C" => {
                ev.prevent_default();
                compare.update(|c| *c = !*c);
            }
            "j" | "J" => step(1),
            "k" | "K" => step(-1),
            "r" | "R" => {
                ev.prevent_default();
                refresh.update(|n| *n += 1);
            }
            _ => {}
        }
    });
    on_cleanup(move || handle.remove());

    let devsets_href = move || pid.get().map(|id| format!("/projects/{id}/devsets")).unwrap_or_default();
    let project_href = move || pid.get().map(|id| format!("/projects/{id}")).unwrap_or_default();
    let devset_name = move |id: i64| devsets.with(|ds| ds.iter().find(|d| d.id == id).map(|d| d.name.clone()).unwrap_or_else(|| format!("#{id}")));

    view! {
        <div class="wide">
            <div class="crumbs"><a href="/">"Projects"</a> " / " <a href=project_href>"Project"</a> " / " <a href=devsets_href>"Dev sets"</a> " / "</div>
            <div class="page-head">
                <h1>"Releases"</h1>
                <span class="muted">"Freeze " <Kbd k="F"/> " · Zip " <Kbd k="Z"/> " · Compare " <Kbd k="C"/> " · Next/previous " <Kbd k="J"/> <Kbd k="K"/> " · Reload " <Kbd k="R"/></span>
            </div>
            <StatusLine status/>
            {move || pid.get().map(|id| view! {
                <div class="manage-grid">
                    <section class="card" aria-labelledby="releases-h">
                        <h2 id="releases-h">"Frozen releases"</h2>
                        <Show when=move || releases.with(|r| r.is_empty())>
                            <p class="muted">"No release yet: freeze a labeled dev set."</p>
                        </Show>
                        <table class="table table-compact" id="releases-table">
                            <thead><tr><th>"Dev set"</th><th>"Version"</th><th class="num">"Items"</th><th>"Splits"</th><th>"Hash"</th><th>"Frozen"</th></tr></thead>
                            <tbody>
                                {move || releases.get().into_iter().map(|r| {
                                    let rid = r.id;
                                    view! {
                                        <tr class:selected=move || selected.get() == Some(rid)
                                            aria-selected=move || (selected.get() == Some(rid)).to_string()>
                                            <td>{devset_name(r.devset_id)}</td>
                                            <td><button class="link-btn" on:click=move |_| { selected.set(Some(rid)); compare.set(false); }>{r.version.clone()}</button></td>
                                            <td class="num">{r.item_count}</td>
                                            <td>{r.splits.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(" · ")}</td>
                                            <td><code>{short_hash(&r.content_hash)}</code></td>
                                            <td>{format!("{} · {}", r.created_by.clone().unwrap_or_default(), util::fmt_datetime(r.created_at))}</td>
                                        </tr>
                                    }
                                }).collect_view()}
                            </tbody>
                        </table>
                    </section>
                    <FreezeCard pid=id devsets devset on_frozen=move |r| {
                        selected.set(Some(r));
                        compare.set(false);
                        refresh.update(|n| *n += 1);
                    }/>
                </div>
                {move || selected.get().map(|r| view! { <ReleaseView pid=id release=r/> })}
                {move || {
                    let (r, on) = (selected.get()?, compare.get());
                    let prev = releases.with(|rs| previous_of(rs, r));
                    match (on, prev) {
                        (true, Some(p)) => Some(view! { <DiffView pid=id from=p to=r/> }.into_any()),
                        (true, None) => Some(view! { <p class="muted">"This is the dev set's first release: nothing to compare with."</p> }.into_any()),
                        _ => None,
                    }
                }}
            })}
        </div>
    }
    .into_any()
}
