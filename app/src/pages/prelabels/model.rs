//! The pre-labels page's "Built-in model" card (issue 10): the last training's figures
//! (held-out accuracy beside the majority baseline, each with its interval and n), the training
//! job's progress, the settings (automatic retrain every N new labels, uncertainty order) and
//! "train now" (`m`).
use std::time::Duration;

use leptos::prelude::*;
use leptos::task::spawn_local;

use super::page::share_text;
use crate::api_client;
use crate::api_types::{JobInfo, ModelLabelCount, ModelSettings, ModelStatus};
use crate::components::{fmt_count, Kbd};
use crate::util;

/// "running · 40% (20,000 of 50,000)", "queued", "done", "failed: why".
pub fn job_text(j: &JobInfo) -> String {
    match j.state.as_str() {
        "running" if j.progress_total > 0 => format!(
            "running · {:.0}% ({} of {})",
            100.0 * j.progress_done as f64 / j.progress_total as f64,
            fmt_count(j.progress_done),
            fmt_count(j.progress_total)
        ),
        "failed" => format!("failed: {}", j.error.clone().unwrap_or_default()),
        s => s.to_string(),
    }
}

/// "pos 20 · neg 21 · other 0".
pub fn counts_text(c: &[ModelLabelCount]) -> String {
    c.iter().map(|l| format!("{} {}", l.label, fmt_count(l.n))).collect::<Vec<_>>().join(" · ")
}

fn busy(s: &Option<ModelStatus>) -> bool {
    s.as_ref().and_then(|s| s.job.as_ref()).is_some_and(|j| matches!(j.state.as_str(), "queued" | "running"))
}

#[component]
pub fn BuiltinModelCard(pid: i64) -> impl IntoView {
    let status = RwSignal::new(None::<ModelStatus>);
    let error = RwSignal::new(None::<String>);
    let note = RwSignal::new(None::<(bool, String)>);
    let form = RwSignal::new(ModelSettings::default());
    let url = format!("/api/projects/{pid}/model");
    let fetch = {
        let url = url.clone();
        move |reset_form: bool| {
            let url = url.clone();
            spawn_local(async move {
                match api_client::get::<ModelStatus>(&url).await {
                    Ok(s) => {
                        if reset_form {
                            form.set(s.settings.clone());
                        }
                        status.set(Some(s));
                        error.set(None);
                    }
                    Err(e) => error.set(Some(e.message)),
                }
            })
        }
    };
    {
        let fetch = fetch.clone();
        Effect::new(move |_| fetch(true));
    }
    // While a training is queued or running, its progress every second.
    {
        let fetch = fetch.clone();
        Effect::new(move |_| {
            let fetch = fetch.clone();
            let handle = set_interval_with_handle(
                move || {
                    if busy(&status.get_untracked()) {
                        fetch(false)
                    }
                },
                Duration::from_secs(1),
            );
            if let Ok(h) = handle {
                on_cleanup(move || h.clear());
            }
        });
    }
    let train = {
        let (url, fetch) = (url.clone(), fetch.clone());
        move || {
            let (url, fetch) = (url.clone(), fetch.clone());
            spawn_local(async move {
                match api_client::send_empty::<JobInfo>("POST", &format!("{url}/train")).await {
                    Ok(j) => note.set(Some((true, format!("Training {}.", job_text(&j))))),
                    Err(e) => note.set(Some((false, e.message))),
                }
                fetch(false);
            })
        }
    };
    let save = {
        let (url, fetch) = (url.clone(), fetch.clone());
        move |ev: leptos::ev::SubmitEvent| {
            ev.prevent_default();
            let (url, fetch, body) = (url.clone(), fetch.clone(), form.get_untracked());
            spawn_local(async move {
                match api_client::send::<_, ModelSettings>("PUT", &format!("{url}/settings"), &body).await {
                    Ok(_) => note.set(Some((true, "Settings saved.".into()))),
                    Err(e) => note.set(Some((false, e.message))),
                }
                fetch(true);
            })
        }
    };
    let keys = {
        let train = train.clone();
        window_event_listener(leptos::ev::keydown, move |ev| {
            if util::typing_in_field(&ev) || ev.repeat() || ev.ctrl_key() || ev.meta_key() || ev.alt_key() {
                return;
            }
            if matches!(ev.key().as_str(), "m" | "M") {
                train();
                ev.prevent_default();
            }
        })
    };
    on_cleanup(move || keys.remove());

    let figures = move || match status.get() {
        None => view! { <p class="muted">{move || error.get().unwrap_or_else(|| "Loading…".into())}</p> }.into_any(),
        Some(s) => {
            let job = s.job.as_ref().map(|j| format!("Last training job: {}", job_text(j)));
            let since = format!("{} new human final labels since the last run.", fmt_count(s.labels_since_last_run));
            let run = match s.last_run {
                None => view! { <p class="muted">"Not trained yet."</p> }.into_any(),
                Some(r) => view! {
                    <table class="table table-compact model-run">
                        <tbody>
                            <tr><th>"Trained"</th><td>{format!("{} · run {} · on {} labels ({})", util::fmt_datetime(r.trained_at), r.id, fmt_count(r.n_train), counts_text(&r.label_counts))}</td></tr>
                            <tr><th>{format!("Held-out accuracy ({}-fold)", r.folds)}</th><td>{share_text(&r.cv_accuracy)}</td></tr>
                            <tr><th>"Majority-class baseline"</th><td>{share_text(&r.baseline_accuracy)}</td></tr>
                            <tr><th>"Scored"</th><td>{format!("{} unlabeled items (source mirrorset-builtin)", fmt_count(r.items_scored))}</td></tr>
                            <tr><th>"Likely mislabeled"</th><td>
                                {fmt_count(r.flagged)} " items in the " <a href=format!("/projects/{pid}/review/label_error")>"label_error queue"</a>
                            </td></tr>
                        </tbody>
                    </table>
                }
                .into_any(),
            };
            view! { {run} <p class="muted">{since} " " {job}</p> }.into_any()
        }
    };

    view! {
        <section class="card" aria-labelledby="model-h">
            <h2 id="model-h">"Built-in model"</h2>
            {figures}
            <form class="form-inline model-settings" on:submit=save>
                <label><input type="checkbox" prop:checked=move || form.get().enabled
                    on:change=move |ev| form.update(|f| f.enabled = event_target_checked(&ev))/> " Retrain automatically every "</label>
                <input class="input input-narrow" type="number" min="1" max="1000000" aria-label="new labels between trainings"
                    prop:value=move || form.get().retrain_every.to_string()
                    on:input=move |ev| form.update(|f| f.retrain_every = event_target_value(&ev).trim().parse().unwrap_or(0))/>
                " new labels · "
                <label><input type="checkbox" prop:checked=move || form.get().uncertainty_order
                    on:change=move |ev| form.update(|f| f.uncertainty_order = event_target_checked(&ev))/> " Least certain items first in labelers' streams"</label>
                " "
                <button class="btn" type="submit">"Save"</button>
            </form>
            <p>
                <button class="btn" on:click={let train = train.clone(); move |_| train()} disabled=move || busy(&status.get())>"Train now " <Kbd k="m"/></button>
            </p>
            <p class="import-result" role="status">
                {move || note.get().map(|(ok, m)| view! { <span class:ok-text=ok class:error-text=!ok>{m}</span> })}
            </p>
        </section>
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(state: &str, done: i64, total: i64) -> JobInfo {
        JobInfo {
            id: 1,
            kind: "builtin_model".into(),
            state: state.into(),
            progress_done: done,
            progress_total: total,
            error: (state == "failed").then(|| "one label only".into()),
            created_at: 0,
            started_at: None,
            heartbeat_at: None,
            finished_at: None,
        }
    }

    #[test]
    fn job_and_counts_read_as_text() {
        assert_eq!(job_text(&job("running", 20_000, 50_000)), "running · 40% (20,000 of 50,000)");
        assert_eq!(job_text(&job("queued", 0, 0)), "queued");
        assert_eq!(job_text(&job("failed", 0, 0)), "failed: one label only");
        let c = vec![ModelLabelCount { label: "pos".into(), n: 1200 }, ModelLabelCount { label: "neg".into(), n: 3 }];
        assert_eq!(counts_text(&c), "pos 1,200 · neg 3");
    }
}
