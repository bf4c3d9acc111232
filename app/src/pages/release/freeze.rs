//! The freeze form, the running freeze's phase and progress bar (it is a background job,
//! polled every half second), and what a refused freeze lists: the items that lack a final label or
//! are under review, or the leakage pairs side by side; each with its override reason field.
use leptos::prelude::*;
use leptos::task::spawn_local;

use super::state::{progress_share, progress_text, DevsetRef, FreezeForm, Refusal};
use crate::api_client;
use crate::api_types::FreezeJob;
use crate::util;
use crate::components::{Kbd, ProgressBar, Status, StatusLine};

#[component]
pub fn FreezeCard(
    pid: i64,
    devsets: RwSignal<Vec<DevsetRef>>,
    devset: RwSignal<Option<i64>>,
    on_frozen: impl Fn(i64) + Copy + Send + Sync + 'static,
) -> impl IntoView {
    let form = RwSignal::new(FreezeForm::default());
    let refusal = RwSignal::new(Refusal::default());
    let status = RwSignal::new(None::<Status>);
    // The running freeze's share done (None: no freeze running).
    let progress = RwSignal::new(None::<f64>);
    let field = move |get: fn(&FreezeForm) -> &String, set: fn(&mut FreezeForm, String)| {
        (move || form.with(|f| get(f).clone()), move |ev: leptos::ev::Event| form.update(|f| set(f, event_target_value(&ev))))
    };
    let (dev, set_dev) = field(|f| &f.dev_share, |f, v| f.dev_share = v);
    let (seed, set_seed) = field(|f| &f.seed, |f, v| f.seed = v);
    let (group, set_group) = field(|f| &f.group_by, |f, v| f.group_by = v);
    let (td, set_td) = field(|f| &f.train_dev_size, |f, v| f.train_dev_size = v);
    let (lic, set_lic) = field(|f| &f.licenses, |f, v| f.licenses = v);
    let (src, set_src) = field(|f| &f.sources, |f, v| f.sources = v);
    let (thr, set_thr) = field(|f| &f.threshold, |f, v| f.threshold = v);
    let (ou, set_ou) = field(|f| &f.override_unready, |f, v| f.override_unready = v);
    let (ol, set_ol) = field(|f| &f.override_leakage, |f, v| f.override_leakage = v);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(d) = devset.get_untracked() else {
            status.set(Status::error("Choose a sampled dev set first."));
            return;
        };
        let request = match form.get_untracked().to_request() {
            Ok(r) => r,
            Err(m) => {
                status.set(Status::error(m));
                return;
            }
        };
        status.set(Status::info("Queuing the freeze…"));
        progress.set(Some(0.0));
        spawn_local(async move {
            // The freeze is a background job (202): follow it until it is done or failed.
            let mut job = match api_client::send::<_, FreezeJob>("POST", &format!("/api/projects/{pid}/devsets/{d}/releases"), &request).await {
                Ok(j) => j,
                Err(e) => {
                    progress.set(None);
                    refusal.set(Refusal::from_details(&e.details));
                    status.set(Status::api(&e));
                    return;
                }
            };
            while !job.finished() {
                status.set(Status::info(progress_text(&job)));
                progress.set(Some(progress_share(&job)));
                util::sleep_ms(500).await;
                match api_client::get::<FreezeJob>(&format!("/api/projects/{pid}/release-freezes/{}", job.job.id)).await {
                    Ok(j) => job = j,
                    Err(e) => {
                        progress.set(None);
                        status.set(Status::api(&e));
                        return;
                    }
                }
            }
            progress.set(None);
            match (job.release, job.blocked) {
                (Some(r), _) => {
                    refusal.set(Refusal::default());
                    status.set(Status::ok(format!("Frozen {} ({} items, hash {}…).", r.summary.version, r.summary.item_count, &r.summary.content_hash[..12])));
                    on_frozen(r.summary.id);
                }
                (None, Some(b)) => {
                    refusal.set(Refusal::from_details(&b.details));
                    status.set(Status::error(b.message));
                }
                (None, None) => status.set(Status::error(format!("The freeze failed: {}", job.job.error.unwrap_or_default()))),
            }
        });
    };

    view! {
        <form class="card form-card" id="freeze-form" on:submit=submit novalidate aria-labelledby="freeze-h">
            <div class="page-head">
                <h2 id="freeze-h">"Freeze a release"</h2>
                <button class="btn btn-primary" id="freeze-btn" type="submit">"Freeze " <Kbd k="F"/></button>
            </div>
            <div class="form-grid">
                <label class="field">
                    <span class="field-label">"Dev set"</span>
                    <select class="input" id="rl-devset" on:change=move |ev| devset.set(event_target_value(&ev).parse().ok())>
                        {move || devsets.get().into_iter().filter(|d| d.sampled_at.is_some()).map(|d| {
                            let id = d.id;
                            view! { <option value=id.to_string() selected=move || devset.get() == Some(id)>{format!("{} ({} items)", d.name, d.members)}</option> }
                        }).collect_view()}
                    </select>
                </label>
                <label class="field field-small">
                    <span class="field-label">"Dev share % (rest: test)"</span>
                    <input id="rl-dev" class="input" type="text" prop:value=dev on:input=set_dev/>
                </label>
                <label class="field field-small">
                    <span class="field-label">"Seed"</span>
                    <input class="input" type="text" prop:value=seed on:input=set_seed/>
                </label>
                <label class="field field-small">
                    <span class="field-label">"Group by (meta)"</span>
                    <input id="rl-group" class="input" type="text" placeholder="user" prop:value=group on:input=set_group/>
                </label>
                <label class="field field-small">
                    <span class="field-label">"Train-dev items"</span>
                    <input class="input" type="text" placeholder="0" prop:value=td on:input=set_td/>
                </label>
                <label class="field field-small">
                    <span class="field-label">"Jaccard threshold"</span>
                    <input class="input" type="text" prop:value=thr on:input=set_thr/>
                </label>
                <label class="field">
                    <span class="field-label">"Allowed licences (comma-separated)"</span>
                    <input class="input" type="text" placeholder="any" prop:value=lic on:input=set_lic/>
                </label>
                <label class="field">
                    <span class="field-label">"Allowed sources"</span>
                    <input class="input" type="text" placeholder="any" prop:value=src on:input=set_src/>
                </label>
            </div>
            <StatusLine status id="freeze-status"/>
            <Show when=move || progress.get().is_some()>
                <div id="freeze-progress">
                    <ProgressBar done=Signal::derive(move || (progress.get().unwrap_or(0.0) * 1000.0) as i64) total=1000/>
                </div>
            </Show>
            <Show when=move || refusal.with(|r| !r.unready.is_empty())>
                <h3>"Not ready"</h3>
                <div class="table-scroll">
                    <table class="table table-compact" id="unready-table">
                        <thead><tr><th class="num">"Item"</th><th>"Id"</th><th>"Why"</th></tr></thead>
                        <tbody>
                            {move || refusal.get().unready.into_iter().map(|u| view! {
                                <tr>
                                    <td class="num"><a href=format!("/projects/{pid}/review/item/{}", u.item_id)>{u.item_id}</a></td>
                                    <td>{u.external_id.unwrap_or_default()}</td>
                                    <td>{if u.reason == "open_review" { "open review" } else { "no final label" }}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                <label class="field field-wide">
                    <span class="field-label">"Override: freeze anyway, leaving unlabeled items out (reason, recorded in the lineage)"</span>
                    <input id="rl-override-unready" class="input" type="text" prop:value=ou on:input=set_ou/>
                </label>
            </Show>
            <Show when=move || refusal.with(|r| !r.leakage.is_empty())>
                <h3>"Leakage"</h3>
                <div class="table-scroll">
                    <table class="table table-compact" id="leakage-table">
                        <thead><tr><th>"Kind"</th><th class="num">"Jaccard"</th><th>"Release item"</th><th>"Duplicate"</th></tr></thead>
                        <tbody>
                            {move || refusal.get().leakage.into_iter().map(|p| view! {
                                <tr>
                                    <td>{p.kind.clone()}</td>
                                    <td class="num">{format!("{:.2}", p.jaccard)}</td>
                                    <td><span class="muted">{format!("#{} {} · ", p.a.item_id, p.a.split)}</span>{p.a.snippet.clone().unwrap_or_else(|| "(image)".into())}</td>
                                    <td><span class="muted">{format!("#{} {} · ", p.b.item_id, p.b.split)}</span>{p.b.snippet.clone().unwrap_or_else(|| "(image)".into())}</td>
                                </tr>
                            }).collect_view()}
                        </tbody>
                    </table>
                </div>
                <label class="field field-wide">
                    <span class="field-label">"Override: freeze despite these pairs (reason, recorded in the lineage)"</span>
                    <input id="rl-override-leakage" class="input" type="text" prop:value=ol on:input=set_ol/>
                </label>
            </Show>
        </form>
    }
    .into_any()
}
