//! `/projects/:id/agreement`: the agreement dashboard for leads and admins.
//!
//! The numbers are computed in the background when labels change (`GET
//! /api/projects/{pid}/agreement` only reads them); the page polls every 15 s and says when
//! they were computed. Keys: `D` / `W` alpha over time per day / week, `P` back to the project.
mod charts;
mod format;
mod sections;

use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;

use crate::api_client;
use crate::api_types::{AgreementDashboard, AgreementSlices};
use crate::components::{Kbd, Load, Skeleton};
use crate::pages::project_id;
use crate::util;
use sections::{ConfusionList, LabelersTable, OverTime, PairMatrix, PerLabelTable, SlicesSection, StatCards};

async fn fetch(pid: i64, week: bool, dash: RwSignal<Load<AgreementDashboard>>) {
    match api_client::agreement(pid, week).await {
        Ok(d) => dash.set(Load::Ready(d)),
        // Keep showing the last numbers when a poll fails; say so only when there are none.
        Err(e) if dash.with_untracked(|d| d.ready().is_none()) => dash.set(Load::Failed(e.message)),
        Err(_) => {}
    }
}

#[component]
pub fn AgreementPage() -> impl IntoView {
    let pid = project_id();
    let dash = RwSignal::new(Load::<AgreementDashboard>::Loading);
    let week = RwSignal::new(false);
    let now = RwSignal::new(0i64);

    Effect::new(move |_| {
        let (Some(id), week) = (pid.get(), week.get()) else { return };
        spawn_local(fetch(id, week, dash));
    });
    // Poll: new labels show up on their own.
    Effect::new(move |_| {
        now.set(util::now_ms());
        let handle = set_interval_with_handle(
            move || {
                now.set(util::now_ms());
                if let Some(id) = pid.get_untracked() {
                    spawn_local(fetch(id, week.get_untracked(), dash));
                }
            },
            Duration::from_secs(15),
        );
        if let Ok(h) = handle {
            on_cleanup(move || h.clear());
        }
    });

    let navigate = use_navigate();
    let keys = window_event_listener(leptos::ev::keydown, move |ev| {
        if util::typing_in_field(&ev) {
            return;
        }
        match ev.key().as_str() {
            "d" | "D" => week.set(false),
            "w" | "W" => week.set(true),
            "p" | "P" => {
                if let Some(id) = pid.get_untracked() {
                    navigate(&format!("/projects/{id}"), NavigateOptions::default());
                }
            }
            _ => return,
        }
        ev.prevent_default();
    });
    on_cleanup(move || keys.remove());

    let project_href = move || pid.get().map(|id| format!("/projects/{id}")).unwrap_or_default();
    let computed = move || {
        dash.with(|d| match d {
            Load::Ready(d) => {
                let when = match d.computed_at {
                    Some(t) => format!("Computed {} ({})", util::fmt_datetime(t), format::age(t, now.get())),
                    None => "Not computed yet: the first numbers appear a few seconds after labels arrive".into(),
                };
                let refreshing = if d.refreshing { " · new labels: refreshing now" } else { "" };
                format!("{when}{refreshing} · refreshes automatically when labels change")
            }
            _ => "\u{a0}".into(),
        })
    };
    let body = move || {
        let Some(id) = pid.get() else { return view! { <p class="error-text">"This is not a project address."</p> }.into_any() };
        dash.with(|d| match d {
            Load::Loading => view! { <div class="agreement-loading"><Skeleton width="90%"/></div> }.into_any(),
            Load::Failed(msg) => view! { <p class="error-text">{msg.clone()}</p> }.into_any(),
            Load::Ready(d) => {
                let d = d.clone();
                let slices = RwSignal::new(Load::<AgreementSlices>::Loading);
                view! {
                    <StatCards d=d.clone()/>
                    <div class="agreement-grid">
                        <PairMatrix pid=id d=d.clone()/>
                        <ConfusionList pid=id d=d.clone()/>
                    </div>
                    <div class="agreement-grid">
                        <PerLabelTable pid=id d=d.clone()/>
                        <OverTime d=d.clone() week/>
                    </div>
                    <SlicesSection pid=id d=d.clone() slices/>
                    <LabelersTable d=d/>
                }
                .into_any()
            }
        })
    };

    view! {
        <div class="wide agreement">
            <div class="crumbs"><a href="/">"Projects"</a> " / " <a href=project_href>"Project"</a> " / "</div>
            <div class="page-head">
                <h1>"Agreement"</h1>
                <span class="spacer"></span>
                <span class="btn-group" role="group" aria-label="Alpha over time by">
                    <button class="btn btn-small" class:btn-primary=move || !week.get() on:click=move |_| week.set(false)>"Per day " <Kbd k="D"/></button>
                    <button class="btn btn-small" class:btn-primary=move || week.get() on:click=move |_| week.set(true)>"Per week " <Kbd k="W"/></button>
                </span>
                <a class="btn btn-small" href=project_href>"Project " <Kbd k="P"/></a>
            </div>
            <p class="muted computed-at" role="status">{computed}</p>
            {body}
        </div>
    }
    .into_any()
}
