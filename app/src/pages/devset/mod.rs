//! `/projects/:id/devsets`: production-matched dev sets (issue 8), for admins and leads.
//! Profiles and the draft form on top; the selected dev set's plan, then (once sampled) its
//! distribution report, drift check and campaign progress. Keys: N new draft, S sample,
//! C drift check, R reload, V its releases (`pages::release`).
mod draft;
mod drift;
mod plan;
mod profiles;
mod report;
pub mod state;

use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api_client;
use crate::components::{Kbd, Status, StatusLine};
use crate::pages::project_id;
use crate::util;
use draft::DraftCard;
use plan::PlanCard;
use profiles::ProfilesCard;
use report::ReportCard;
use state::{Devset, Distance, ProfileSummary};

/// One row of a distance table: TVD, PSI, KL and the PSI reading.
#[component]
fn DistanceRow(d: Distance) -> impl IntoView {
    view! {
        <tr>
            <td>{d.attribute}</td>
            <td class="num">{format!("{:.4}", d.tvd)}</td>
            <td class="num">{format!("{:.4}", d.psi)}</td>
            <td class="num">{format!("{:.4}", d.kl)}</td>
            <td>{d.reading}</td>
        </tr>
    }
}

#[component]
pub fn DevsetPage() -> impl IntoView {
    let pid = project_id();
    let profiles = RwSignal::new(Vec::<ProfileSummary>::new());
    let devsets = RwSignal::new(Vec::<Devset>::new());
    let selected = RwSignal::new(None::<i64>);
    let refresh = RwSignal::new(0u32);
    let status = RwSignal::new(None::<Status>);

    Effect::new(move |_| {
        refresh.track();
        let Some(id) = pid.get() else { return };
        spawn_local(async move {
            match api_client::get::<Vec<ProfileSummary>>(&format!("/api/projects/{id}/profiles")).await {
                Ok(p) => profiles.set(p),
                Err(e) => status.set(Status::api(&e)),
            }
            match api_client::get::<Vec<Devset>>(&format!("/api/projects/{id}/devsets")).await {
                Ok(d) => {
                    if selected.get_untracked().is_none() {
                        selected.set(d.last().map(|d| d.id));
                    }
                    devsets.set(d);
                }
                Err(e) => status.set(Status::api(&e)),
            }
        });
    });

    let sample = move || {
        let (Some(id), Some(d)) = (pid.get_untracked(), selected.get_untracked()) else { return };
        if devsets.with_untracked(|ds| ds.iter().any(|x| x.id == d && x.sampled_at.is_some())) {
            return;
        }
        status.set(Status::info("Sampling…"));
        spawn_local(async move {
            match api_client::send_empty::<serde_json::Value>("POST", &format!("/api/projects/{id}/devsets/{d}/sample")).await {
                Ok(v) => status.set(Status::ok(format!("Sampled {} items; they are now a labeling campaign.", v["members"]))),
                Err(e) => status.set(Status::api(&e)),
            }
            refresh.update(|n| *n += 1);
        });
    };

    let navigate = leptos_router::hooks::use_navigate();
    let handle = window_event_listener(leptos::ev::keydown, move |ev| {
        if util::typing_in_field(&ev) || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
            return;
        }
        match ev.key().as_str() {
            "n" | "N" => {
                ev.prevent_default();
                util::focus_id("dv-name");
            }
            "s" | "S" => {
                ev.prevent_default();
                sample();
            }
            "c" | "C" => {
                ev.prevent_default();
                util::focus_id("drift-profile");
            }
            "r" | "R" => {
                ev.prevent_default();
                refresh.update(|n| *n += 1);
            }
            "v" | "V" => {
                if let Some(id) = pid.get_untracked() {
                    ev.prevent_default();
                    let q = selected.get_untracked().map(|d| format!("?devset={d}")).unwrap_or_default();
                    navigate(&format!("/projects/{id}/releases{q}"), Default::default());
                }
            }
            _ => {}
        }
    });
    on_cleanup(move || handle.remove());

    let sampled = Signal::derive(move || {
        let d = selected.get();
        devsets.with(|ds| ds.iter().any(|x| Some(x.id) == d && x.sampled_at.is_some()))
    });
    let project_href = move || pid.get().map(|id| format!("/projects/{id}")).unwrap_or_default();

    view! {
        <div class="wide">
            <div class="crumbs"><a href="/">"Projects"</a> " / " <a href=project_href>"Project"</a> " / "</div>
            <div class="page-head">
                <h1>"Dev sets"</h1>
                <span class="muted">"New draft " <Kbd k="N"/> " · Sample " <Kbd k="S"/> " · Drift check " <Kbd k="C"/> " · Reload " <Kbd k="R"/>
                    " · " <a href=move || pid.get().map(|id| format!("/projects/{id}/releases")).unwrap_or_default() id="releases-link">"Releases"</a> " " <Kbd k="V"/></span>
            </div>
            <StatusLine status/>
            {move || pid.get().map(|id| view! {
                <div class="manage-grid">
                    <ProfilesCard pid=id profiles on_done=move || refresh.update(|n| *n += 1)/>
                    <DraftCard pid=id profiles on_created=move |d| {
                        selected.set(Some(d));
                        refresh.update(|n| *n += 1);
                    }/>
                </div>
                <div class="chips" role="tablist" aria-label="Dev sets">
                    {move || devsets.get().into_iter().map(|d| {
                        let id = d.id;
                        view! {
                            <button class="chip" role="tab" aria-selected=move || (selected.get() == Some(id)).to_string()
                                on:click=move |_| selected.set(Some(id))>
                                {format!("{} · {}", d.name, if d.sampled_at.is_some() { format!("{} members", d.members) } else { "draft".into() })}
                            </button>
                        }
                    }).collect_view()}
                </div>
                {move || selected.get().map(|d| view! {
                    <PlanCard pid=id devset=d sampled refresh on_sample=sample/>
                    <Show when=move || sampled.get()>
                        <ReportCard pid=id devset=d refresh profiles/>
                    </Show>
                })}
            })}
        </div>
    }
    .into_any()
}
