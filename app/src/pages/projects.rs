//! `/`: the projects the user belongs to; admins and leads can start a new one.
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;

use crate::api_client;
use crate::api_types::{LabelKind, NewProject, ProjectSummary};
use crate::components::labels_editor::{starter_rows, to_defs};
use crate::components::{fmt_count, Kbd, LabelsEditor, Load, ProgressBar, Skeleton, Status, StatusLine};
use crate::session::use_session;
use crate::util;

#[component]
pub fn ProjectsPage() -> impl IntoView {
    let session = use_session();
    let list = RwSignal::new(Load::<Vec<ProjectSummary>>::Loading);
    let show_form = RwSignal::new(false);

    Effect::new(move |_| {
        spawn_local(async move {
            list.set(match api_client::projects().await {
                Ok(p) => Load::Ready(p),
                Err(e) => Load::Failed(e.message),
            });
        });
    });

    // `n` opens the new-project form (for those who may create projects).
    let handle = window_event_listener(leptos::ev::keydown, move |ev| {
        if util::typing_in_field(&ev) || ev.key() != "n" || !session.can_manage() {
            return;
        }
        ev.prevent_default();
        show_form.set(true);
        util::focus_id("np-name");
    });
    on_cleanup(move || handle.remove());

    let rows = move || match list.get() {
        Load::Loading => (0..3)
            .map(|_| {
                view! {
                    <tr class="row-placeholder">
                        <td><Skeleton width="14em"/></td>
                        <td><Skeleton width="4em"/></td>
                        <td class="num"><Skeleton width="3em"/></td>
                        <td><Skeleton width="12em"/></td>
                        <td></td>
                    </tr>
                }
                .into_any()
            })
            .collect_view(),
        Load::Failed(msg) => vec![view! {
            <tr><td colspan="5" class="error-text">{msg}</td></tr>
        }
        .into_any()]
        .collect_view(),
        Load::Ready(ps) if ps.is_empty() => vec![view! {
            <tr>
                <td colspan="5" class="muted empty-cell">
                    {move || if session.can_manage() {
                        "No projects yet. Start one with “New project”."
                    } else {
                        "You are not in any project yet. Ask a lead to add you."
                    }}
                </td>
            </tr>
        }
        .into_any()]
        .collect_view(),
        Load::Ready(ps) => ps
            .into_iter()
            .map(|s| {
                let id = s.project.id;
                let kind = match s.project.kind {
                    LabelKind::Single => "single",
                    LabelKind::Multi => "multi",
                };
                let done = s.done_count;
                let total = s.item_count;
                view! {
                    <tr>
                        <td><a class="strong-link" href=format!("/projects/{id}")>{s.project.name.clone()}</a></td>
                        <td class="muted">{kind}</td>
                        <td class="num">
                            {fmt_count(s.item_count)}
                            // Gold items are not part of done/total: shown apart.
                            {(s.gold_count > 0).then(|| view! { <span class="muted">{format!(" + {} gold", fmt_count(s.gold_count))}</span> })}
                        </td>
                        <td><ProgressBar done=Signal::stored(done) total=Signal::stored(total) numbers=true/></td>
                        <td class="actions">
                            <a class="btn btn-primary btn-small" href=format!("/projects/{id}/label")>"Label"</a>
                        </td>
                    </tr>
                }
                .into_any()
            })
            .collect_view(),
    };

    view! {
        <div class="wide">
            <div class="page-head">
                <h1>"Projects"</h1>
                <Show when=move || session.can_manage()>
                    <button
                        class="btn"
                        aria-expanded=move || show_form.get().to_string()
                        on:click=move |_| {
                            show_form.update(|s| *s = !*s);
                            if show_form.get_untracked() {
                                util::focus_id("np-name");
                            }
                        }
                    >
                        "New project " <Kbd k="n"/>
                    </button>
                </Show>
            </div>
            <Show when=move || show_form.get()>
                <NewProjectForm on_cancel=move || show_form.set(false)/>
            </Show>
            <table class="table">
                <thead>
                    <tr>
                        <th>"Project"</th>
                        <th>"Kind"</th>
                        <th class="num">"Items"</th>
                        <th class="col-progress">"Done"</th>
                        <th class="actions"><span class="sr-only">"Actions"</span></th>
                    </tr>
                </thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn NewProjectForm(on_cancel: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let navigate = use_navigate();
    let name = RwSignal::new(String::new());
    let kind = RwSignal::new("single".to_string());
    let labels = RwSignal::new(starter_rows());
    let overlap = RwSignal::new("1".to_string());
    let lease = RwSignal::new("600".to_string());
    let instructions = RwSignal::new(String::new());
    let status = RwSignal::new(None::<Status>);
    let busy = RwSignal::new(false);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let n = name.get_untracked().trim().to_string();
        if n.is_empty() {
            status.set(Status::error("The project needs a name."));
            util::focus_id("np-name");
            return;
        }
        let defs = match labels.with_untracked(|r| to_defs(r)) {
            Ok(d) => d,
            Err(e) => {
                status.set(Status::error(e));
                return;
            }
        };
        let Ok(k) = overlap.get_untracked().trim().parse::<i64>() else {
            status.set(Status::error("Overlap must be a whole number."));
            return;
        };
        let Ok(lease_s) = lease.get_untracked().trim().parse::<i64>() else {
            status.set(Status::error("Lease must be a whole number of seconds."));
            return;
        };
        let body = NewProject {
            name: n,
            instructions: instructions.get_untracked(),
            kind: if kind.get_untracked() == "multi" { LabelKind::Multi } else { LabelKind::Single },
            labels: defs,
            overlap: k,
            lease_seconds: lease_s,
            quality: Default::default(),
            assignment_order: Default::default(),
        };
        busy.set(true);
        status.set(Status::info("Creating…"));
        let navigate = navigate.clone();
        spawn_local(async move {
            match api_client::create_project(&body).await {
                Ok(p) => navigate(&format!("/projects/{}", p.id), NavigateOptions::default()),
                Err(e) => status.set(Status::api(&e)),
            }
            busy.set(false);
        });
    };

    view! {
        <form class="card form-card" on:submit=submit novalidate>
            <h2>"New project"</h2>
            <div class="form-grid">
                <label class="field">
                    <span class="field-label">"Name"</span>
                    <input id="np-name" class="input" type="text" bind:value=name/>
                </label>
                <fieldset class="field">
                    <legend class="field-label">"Kind"</legend>
                    <div class="radio-row">
                        <label class="radio">
                            <input type="radio" name="np-kind" value="single" bind:group=kind/>
                            " Single label"
                            <span class="hint">" — a key press submits"</span>
                        </label>
                        <label class="radio">
                            <input type="radio" name="np-kind" value="multi" bind:group=kind/>
                            " Multi label"
                            <span class="hint">" — keys toggle, Enter submits"</span>
                        </label>
                    </div>
                </fieldset>
                <div class="field field-wide">
                    <span class="field-label">"Labels"</span>
                    <LabelsEditor rows=labels id_prefix="np"/>
                </div>
                <label class="field field-small">
                    <span class="field-label">"Overlap k"</span>
                    <input class="input" type="number" min="1" step="1" bind:value=overlap/>
                    <span class="hint">"labelers per item"</span>
                </label>
                <label class="field field-small">
                    <span class="field-label">"Lease (seconds)"</span>
                    <input class="input" type="number" min="10" step="10" bind:value=lease/>
                    <span class="hint">"how long a handed-out item stays reserved"</span>
                </label>
                <label class="field field-wide">
                    <span class="field-label">"Instructions (markdown)"</span>
                    <textarea class="input textarea" rows="6" bind:value=instructions></textarea>
                </label>
            </div>
            <div class="form-actions">
                <button type="submit" class="btn btn-primary" disabled=move || busy.get()>"Create project"</button>
                <button type="button" class="btn btn-quiet" on:click=move |_| on_cancel()>"Cancel"</button>
                <StatusLine status/>
            </div>
        </form>
    }
    .into_any()
}
