//! `/projects/:id`: progress for everyone; import, export, members and settings for admins
//! and the project's leads.
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::use_navigate;
use leptos_router::NavigateOptions;

use crate::api_client;
use crate::api_types::{ImportReport, LabelKind, Member, Progress, Project, ProjectUpdate};
use crate::components::labels_editor::{rows_from, to_defs};
use crate::components::{
    fmt_count, Kbd, LabelsEditor, Load, ProgressBar, QualityFields, QualityForm, Skeleton, Status, StatusLine,
};
use crate::pages::project_id;
use crate::session::use_session;
use crate::upload::{self, ImportKind, UploadBody};
use crate::util;

/// The lead's pages of a project (leads and admins): title, key on the project page, path.
const LEAD_PAGES: [(&str, &str, &str); 5] = [
    ("Agreement", "a", "agreement"),
    ("Review", "r", "review"),
    ("Dev sets", "d", "devsets"),
    ("Releases", "v", "releases"),
    ("Pre-labels", "p", "prelabels"),
];

#[component]
pub fn ProjectPage() -> impl IntoView {
    let session = use_session();
    let pid = project_id();
    let project = RwSignal::new(Load::<Project>::Loading);
    let progress = RwSignal::new(None::<Progress>);
    // Bumped after an import, so the numbers follow.
    let refresh = RwSignal::new(0u32);

    Effect::new(move |_| {
        let Some(id) = pid.get() else {
            project.set(Load::Failed("This is not a project address.".into()));
            return;
        };
        spawn_local(async move {
            project.set(match api_client::project(id).await {
                Ok(p) => Load::Ready(p),
                Err(e) => Load::Failed(e.message),
            });
        });
    });
    Effect::new(move |_| {
        refresh.track();
        let Some(id) = pid.get() else { return };
        spawn_local(async move {
            if let Ok(p) = api_client::progress(id, util::local_midnight_ms()).await {
                progress.set(Some(p));
            }
        });
    });

    let navigate = use_navigate();
    let handle = window_event_listener(leptos::ev::keydown, move |ev| {
        if util::typing_in_field(&ev) {
            return;
        }
        // L: label; the lead pages (leads and admins) by their keys in LEAD_PAGES.
        let key = ev.key().to_lowercase();
        let page = match LEAD_PAGES.iter().find(|(_, k, _)| *k == key) {
            _ if key == "l" => "label",
            Some(&(_, _, page)) if session.can_manage() => page,
            _ => return,
        };
        if let Some(id) = pid.get_untracked() {
            ev.prevent_default();
            navigate(&format!("/projects/{id}/{page}"), NavigateOptions::default());
        }
    });
    on_cleanup(move || handle.remove());

    let name = move || match project.get() {
        Load::Ready(p) => p.name.into_any(),
        Load::Loading => view! { <Skeleton width="12em"/> }.into_any(),
        Load::Failed(_) => "Project".into_any(),
    };
    let summary = move || {
        project.with(|p| match p {
            Load::Ready(p) => {
                let kind = match p.kind {
                    LabelKind::Single => "single label",
                    LabelKind::Multi => "multi label",
                };
                let labels = p
                    .labels
                    .iter()
                    .map(|l| {
                        view! {
                            <span class="chip">
                                <span class="swatch" style:background=l.color.clone()></span>
                                {l.name.clone()}
                                <kbd class="kbd kbd-small">{l.key.clone()}</kbd>
                            </span>
                        }
                    })
                    .collect_view();
                view! {
                    <span class="muted">{format!("{kind} · overlap {} · lease {} s", p.overlap, p.lease_seconds)}</span>
                    <span class="chips">{labels}</span>
                }
                .into_any()
            }
            Load::Failed(msg) => view! { <span class="error-text">{msg.clone()}</span> }.into_any(),
            Load::Loading => view! { <Skeleton width="24em"/> }.into_any(),
        })
    };

    let done = Signal::derive(move || progress.with(|p| p.as_ref().map(|p| p.done).unwrap_or(0)));
    let total = Signal::derive(move || progress.with(|p| p.as_ref().map(|p| p.total).unwrap_or(0)));
    let mine = move || {
        progress.with(|p| match p {
            Some(p) => format!(
                "You: {} today · {} in all",
                fmt_count(p.mine_today),
                fmt_count(p.mine_total)
            ),
            None => "\u{a0}".to_string(),
        })
    };
    let label_href = move || pid.get().map(|id| format!("/projects/{id}/label")).unwrap_or_default();

    view! {
        <div class="wide">
            <div class="crumbs"><a href="/">"Projects"</a> " / "</div>
            <div class="page-head">
                <h1>{name}</h1>
                <div class="head-actions">
                    <Show when=move || session.can_manage()>
                        {LEAD_PAGES
                            .iter()
                            .map(|&(title, key, page)| {
                                let href = move || pid.get().map(|id| format!("/projects/{id}/{page}")).unwrap_or_default();
                                view! { <a class="btn" href=href>{title} " " <Kbd k=key.to_uppercase()/></a> }
                            })
                            .collect_view()}
                    </Show>
                    <a class="btn btn-primary" href=label_href>"Start labeling " <Kbd k="L"/></a>
                </div>
            </div>
            <div class="project-summary">{summary}</div>
            <section class="card progress-card" aria-label="Progress">
                <div class="progress-card-row">
                    <span class="big-number num">
                        {move || progress.with(|p| p.as_ref().map(|p| fmt_count(p.done)).unwrap_or_else(|| "–".into()))}
                        <span class="muted">
                            " / "
                            {move || progress.with(|p| p.as_ref().map(|p| fmt_count(p.total)).unwrap_or_else(|| "–".into()))}
                        </span>
                    </span>
                    <span class="muted">"items done"</span>
                    <span class="spacer"></span>
                    <span class="muted num">{mine}</span>
                </div>
                <ProgressBar done total/>
            </section>
            <Show when=move || session.can_manage() && project.with(|p| p.ready().is_some())>
                {move || pid.get().map(|id| view! {
                    <div class="manage-grid">
                        <ImportCard pid=id on_done=move || refresh.update(|n| *n += 1)/>
                        <div class="stack">
                            <ExportCard pid=id project/>
                            <MembersCard pid=id/>
                        </div>
                        <SettingsCard pid=id project/>
                    </div>
                })}
            </Show>
        </div>
    }
    .into_any()
}

#[derive(Clone, Debug, PartialEq)]
enum ImportPhase {
    Idle,
    Uploading { loaded: f64, total: f64 },
    Processing,
    /// The report, and a Label Studio import's annotations.
    Done(ImportReport, Option<crate::api_types::AnnotationImport>),
    Refused { message: String, report: Option<ImportReport> },
}

#[component]
fn ImportCard(pid: i64, on_done: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let input = NodeRef::<leptos::html::Input>::new();
    let phase = RwSignal::new(ImportPhase::Idle);
    let chosen = RwSignal::new(String::new());

    let on_change = move |_| {
        let names = selected_names(input);
        chosen.set(match names.len() {
            0 => String::new(),
            1 => names[0].clone(),
            n => format!("{n} images"),
        });
    };

    let start = move |_| {
        if matches!(phase.get_untracked(), ImportPhase::Uploading { .. } | ImportPhase::Processing) {
            return;
        }
        let Some(el) = input.get_untracked() else { return };
        let files: Vec<web_sys::File> = match el.files() {
            Some(list) => (0..list.length()).filter_map(|i| list.item(i)).collect(),
            None => vec![],
        };
        let names: Vec<String> = files.iter().map(|f| f.name()).collect();
        let kind = match ImportKind::detect(&names) {
            Ok(k) => k,
            Err(msg) => {
                phase.set(ImportPhase::Refused { message: msg, report: None });
                return;
            }
        };
        let body = if kind == ImportKind::Images {
            let Ok(form) = web_sys::FormData::new() else { return };
            for f in &files {
                let _ = form.append_with_blob_and_filename("file", f, &f.name());
            }
            UploadBody::Form(form)
        } else {
            UploadBody::Raw(files[0].clone(), kind.content_type())
        };
        let total: f64 = files.iter().map(|f| f.size()).sum();
        phase.set(ImportPhase::Uploading { loaded: 0.0, total });
        spawn_local(async move {
            let result = upload::upload(
                &kind.url(pid),
                body,
                move |loaded, total| {
                    if matches!(phase.get_untracked(), ImportPhase::Uploading { .. }) {
                        phase.set(ImportPhase::Uploading { loaded, total });
                    }
                },
                move || phase.set(ImportPhase::Processing),
            )
            .await;
            phase.set(match result {
                Err(e) => ImportPhase::Refused { message: e.message, report: None },
                Ok((status, text)) if (200..300).contains(&status) => {
                    match serde_json::from_str::<ImportReport>(&text) {
                        Ok(r) => ImportPhase::Done(
                            r,
                            serde_json::from_str::<crate::api_types::LabelStudioImportReport>(&text).ok().map(|l| l.annotations),
                        ),
                        Err(e) => ImportPhase::Refused {
                            message: format!("The import finished, but its report could not be read: {e}"),
                            report: None,
                        },
                    }
                }
                Ok((status, text)) => {
                    let body: Option<crate::api_types::ErrorBody> = serde_json::from_str(&text).ok();
                    let message = body
                        .as_ref()
                        .map(|b| b.error.message.clone())
                        .unwrap_or_else(|| format!("The server answered {status}."));
                    let report = body.and_then(|b| serde_json::from_value::<ImportReport>(b.error.details).ok());
                    ImportPhase::Refused { message, report }
                }
            });
            if let Some(el) = input.get_untracked() {
                el.set_value("");
            }
            chosen.set(String::new());
            on_done();
        });
    };

    let busy = move || matches!(phase.get(), ImportPhase::Uploading { .. } | ImportPhase::Processing);
    let bar = move || match phase.get() {
        ImportPhase::Uploading { loaded, total } => {
            let pct = if total > 0.0 { loaded / total * 100.0 } else { 0.0 };
            view! {
                <div class="upload-line">
                    <span class="progress-track" role="progressbar" aria-valuemin="0" aria-valuemax="100" aria-valuenow=format!("{pct:.0}")>
                        <span class="progress-fill" style:width=format!("{pct:.1}%")></span>
                    </span>
                    <span class="num muted">{format!("Uploading {pct:.0}% · {} of {}", fmt_bytes(loaded), fmt_bytes(total))}</span>
                </div>
            }
            .into_any()
        }
        ImportPhase::Processing => view! {
            <div class="upload-line">
                <span class="progress-track is-busy" role="progressbar"><span class="progress-fill"></span></span>
                <span class="muted">"Processing…"</span>
            </div>
        }
        .into_any(),
        _ => view! { <div class="upload-line"></div> }.into_any(),
    };
    let result = move || match phase.get() {
        ImportPhase::Done(r, annotations) => view! {
            <p class="ok-text">
                {format!(
                    "Imported {} of {} · {} duplicate{} skipped",
                    fmt_count(r.imported),
                    fmt_count(r.lines),
                    fmt_count(r.duplicates),
                    if r.duplicates == 1 { "" } else { "s" }
                )}
            </p>
            {annotations.map(|a| view! { <p class="ok-text">{crate::api_types::annotation_import_line(&a)}</p> })}
            <DuplicatesTable report=r/>
        }
        .into_any(),
        ImportPhase::Refused { message, report } => view! {
            <p class="error-text" role="alert">{message}</p>
            {report.map(|r| view! { <ErrorsTable report=r.clone()/> <DuplicatesTable report=r/> })}
        }
        .into_any(),
        _ => ().into_any(),
    };

    view! {
        <section class="card" aria-labelledby="import-h">
            <h2 id="import-h">"Import"</h2>
            <p class="hint">"One .jsonl, .csv or .zip file (text items or images with a manifest), a Label Studio JSON export (.json, with its annotations), or image files."</p>
            <div class="file-row">
                <label class="btn file-btn">
                    "Choose file…"
                    <input
                        node_ref=input
                        type="file"
                        class="file-input"
                        accept=".jsonl,.ndjson,.csv,.zip,.json,image/*"
                        multiple
                        on:change=on_change
                    />
                </label>
                <span class="file-name muted">{move || {
                    let c = chosen.get();
                    if c.is_empty() { "No file chosen".to_string() } else { c }
                }}</span>
                <button class="btn btn-primary" on:click=start disabled=move || busy() || chosen.with(|c| c.is_empty())>
                    "Upload"
                </button>
            </div>
            {bar}
            <div class="import-result">{result}</div>
        </section>
    }
    .into_any()
}

fn selected_names(input: NodeRef<leptos::html::Input>) -> Vec<String> {
    input
        .get_untracked()
        .and_then(|el| el.files())
        .map(|list| (0..list.length()).filter_map(|i| list.item(i)).map(|f| f.name()).collect())
        .unwrap_or_default()
}

fn fmt_bytes(b: f64) -> String {
    if b >= 1024.0 * 1024.0 * 1024.0 {
        format!("{:.1} GiB", b / 1024.0 / 1024.0 / 1024.0)
    } else if b >= 1024.0 * 1024.0 {
        format!("{:.1} MiB", b / 1024.0 / 1024.0)
    } else if b >= 1024.0 {
        format!("{:.0} KiB", b / 1024.0)
    } else {
        format!("{b:.0} B")
    }
}

#[component]
fn ErrorsTable(report: ImportReport) -> impl IntoView {
    if report.errors.is_empty() {
        return ().into_any();
    }
    let shown = report.errors.len() as i64;
    let caption = if report.error_count > shown {
        format!("Bad lines: the first {shown} of {}", fmt_count(report.error_count))
    } else {
        "Bad lines".to_string()
    };
    view! {
        <div class="table-scroll">
            <table class="table table-compact">
                <caption>{caption}</caption>
                <thead><tr><th class="num">"Line"</th><th>"Field"</th><th>"Reason"</th></tr></thead>
                <tbody>
                    {report.errors.into_iter().map(|e| view! {
                        <tr>
                            <td class="num">{e.line}</td>
                            <td><code>{if e.field.is_empty() { "—".to_string() } else { e.field }}</code></td>
                            <td>{e.reason}</td>
                        </tr>
                    }).collect_view()}
                </tbody>
            </table>
        </div>
    }
    .into_any()
}

#[component]
fn DuplicatesTable(report: ImportReport) -> impl IntoView {
    if report.duplicate_lines.is_empty() {
        return ().into_any();
    }
    view! {
        <details class="details">
            <summary>{format!("Duplicates ({})", fmt_count(report.duplicates))}</summary>
            <div class="table-scroll">
                <table class="table table-compact">
                    <thead><tr><th class="num">"Line"</th><th>"Same as"</th></tr></thead>
                    <tbody>
                        {report.duplicate_lines.into_iter().map(|d| view! {
                            <tr><td class="num">{d.line}</td><td>{d.duplicate_of}</td></tr>
                        }).collect_view()}
                    </tbody>
                </table>
            </div>
        </details>
    }
    .into_any()
}

#[component]
fn ExportCard(pid: i64, project: RwSignal<Load<Project>>) -> impl IntoView {
    let complete_only = RwSignal::new(false);
    let k = move || project.with(|p| p.ready().map(|p| p.overlap).unwrap_or(1));
    view! {
        <section class="card" aria-labelledby="export-h">
            <h2 id="export-h">"Export"</h2>
            <label class="check">
                <input type="checkbox" bind:checked=complete_only/>
                {move || format!(" Only items with ≥ {} label{}", k(), if k() == 1 { "" } else { "s" })}
            </label>
            <div class="button-row">
                <a class="btn" download href=move || api_client::export_url(pid, "jsonl", complete_only.get())>"Download JSONL"</a>
                <a class="btn" download href=move || api_client::export_url(pid, "csv", complete_only.get())>"Download CSV"</a>
                <a class="btn" download title="One {item, annotator, label} line per annotation, for mirrorset stats"
                    href=move || api_client::export_url(pid, "annotations", complete_only.get())>"Download annotations"</a>
                <a class="btn" download title="Who created or changed what, when, before and after (JSON Lines)"
                    href=api_client::audit_url(pid)>"Download audit log"</a>
            </div>
        </section>
    }
    .into_any()
}

#[component]
fn MembersCard(pid: i64) -> impl IntoView {
    let members = RwSignal::new(Load::<Vec<Member>>::Loading);
    let username = RwSignal::new(String::new());
    let status = RwSignal::new(None::<Status>);

    let load = move || {
        spawn_local(async move {
            members.set(match api_client::members(pid).await {
                Ok(m) => Load::Ready(m),
                Err(e) => Load::Failed(e.message),
            });
        });
    };
    Effect::new(move |_| load());

    let add = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let u = username.get_untracked().trim().to_string();
        if u.is_empty() {
            status.set(Status::error("Type a username to add."));
            return;
        }
        spawn_local(async move {
            match api_client::add_member(pid, &u).await {
                Ok(m) => {
                    members.set(Load::Ready(m));
                    username.set(String::new());
                    status.set(Status::ok(format!("Added {u}.")));
                }
                Err(e) => status.set(Status::api(&e)),
            }
        });
    };
    let remove = move |uid: i64, name: String| {
        spawn_local(async move {
            match api_client::remove_member(pid, uid).await {
                Ok(()) => {
                    status.set(Status::ok(format!("Removed {name}.")));
                    load();
                }
                Err(e) => status.set(Status::api(&e)),
            }
        });
    };

    let rows = move || match members.get() {
        Load::Loading => view! { <tr><td colspan="3"><Skeleton width="10em"/></td></tr> }.into_any(),
        Load::Failed(msg) => view! { <tr><td colspan="3" class="error-text">{msg}</td></tr> }.into_any(),
        Load::Ready(ms) if ms.is_empty() => view! { <tr><td colspan="3" class="muted">"No members yet."</td></tr> }.into_any(),
        Load::Ready(ms) => ms
            .into_iter()
            .map(|m| {
                let uid = m.user.id;
                let name = m.user.username.clone();
                let label = format!("Remove {name}");
                view! {
                    <tr>
                        <td>{m.user.username.clone()}</td>
                        <td class="muted">{m.user.role.as_str()}</td>
                        <td class="actions">
                            <button class="btn btn-quiet btn-small" aria-label=label on:click=move |_| remove(uid, name.clone())>
                                "Remove"
                            </button>
                        </td>
                    </tr>
                }
            })
            .collect_view()
            .into_any(),
    };

    view! {
        <section class="card" aria-labelledby="members-h">
            <h2 id="members-h">"Members"</h2>
            <div class="table-scroll table-scroll-short">
                <table class="table table-compact">
                    <tbody>{rows}</tbody>
                </table>
            </div>
            <form class="inline-form" on:submit=add>
                <input class="input" type="text" placeholder="username" aria-label="Username to add" bind:value=username/>
                <button type="submit" class="btn">"Add"</button>
            </form>
            <StatusLine status/>
        </section>
    }
    .into_any()
}

#[component]
fn SettingsCard(pid: i64, project: RwSignal<Load<Project>>) -> impl IntoView {
    let p = project.get_untracked().ready().cloned();
    let Some(p) = p else { return ().into_any() };
    let name = RwSignal::new(p.name.clone());
    let instructions = RwSignal::new(p.instructions.clone());
    let labels = RwSignal::new(rows_from(&p.labels));
    let overlap = RwSignal::new(p.overlap.to_string());
    let lease = RwSignal::new(p.lease_seconds.to_string());
    let quality = QualityForm::new(&p.quality, p.assignment_order);
    let status = RwSignal::new(None::<Status>);
    let busy = RwSignal::new(false);

    let save = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
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
        let Ok(l) = lease.get_untracked().trim().parse::<i64>() else {
            status.set(Status::error("Lease must be a whole number of seconds."));
            return;
        };
        let (q, order) = match quality.parse() {
            Ok(v) => v,
            Err(e) => {
                status.set(Status::error(e));
                return;
            }
        };
        let body = ProjectUpdate {
            name: Some(name.get_untracked().trim().to_string()),
            instructions: Some(instructions.get_untracked()),
            labels: Some(defs),
            overlap: Some(k),
            lease_seconds: Some(l),
            quality: Some(q),
            assignment_order: Some(order),
        };
        busy.set(true);
        spawn_local(async move {
            match api_client::update_project(pid, &body).await {
                Ok(p) => {
                    labels.set(rows_from(&p.labels));
                    project.set(Load::Ready(p));
                    status.set(Status::ok("Saved."));
                }
                Err(e) => status.set(Status::api(&e)),
            }
            busy.set(false);
        });
    };

    view! {
        <form class="card settings-card" on:submit=save aria-labelledby="settings-h" novalidate>
            <h2 id="settings-h">"Settings"</h2>
            <div class="form-grid">
                <label class="field field-wide">
                    <span class="field-label">"Name"</span>
                    <input class="input" type="text" bind:value=name/>
                </label>
                <div class="field field-wide">
                    <span class="field-label">"Labels"</span>
                    <LabelsEditor rows=labels id_prefix="ps"/>
                </div>
                <label class="field field-small">
                    <span class="field-label">"Overlap k"</span>
                    <input class="input" type="number" min="1" step="1" bind:value=overlap/>
                </label>
                <label class="field field-small">
                    <span class="field-label">"Lease (seconds)"</span>
                    <input class="input" type="number" min="10" step="10" bind:value=lease/>
                </label>
                <QualityFields form=quality/>
                <label class="field field-wide">
                    <span class="field-label">"Instructions (markdown)"</span>
                    <textarea class="input textarea" rows="8" bind:value=instructions></textarea>
                </label>
            </div>
            <div class="form-actions">
                <button type="submit" class="btn btn-primary" disabled=move || busy.get()>"Save settings"</button>
                <StatusLine status/>
            </div>
        </form>
    }
    .into_any()
}
