//! `/tokens`: the user's API tokens (for scripts): create (with an optional expiry), list,
//! revoke.
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api_client;
use crate::api_types::{ApiToken, CreatedToken};
use crate::components::{Load, Skeleton, Status, StatusLine};
use crate::util;

#[component]
pub fn TokensPage() -> impl IntoView {
    let tokens = RwSignal::new(Load::<Vec<ApiToken>>::Loading);
    let name = RwSignal::new(String::new());
    // Days until the new token expires; "" for never. 90 days by default: a forgotten token
    // should not work for ever.
    let expires = RwSignal::new("90".to_string());
    let created = RwSignal::new(None::<CreatedToken>);
    let status = RwSignal::new(None::<Status>);
    let busy = RwSignal::new(false);
    let secret_input = NodeRef::<leptos::html::Input>::new();

    let load = move || {
        spawn_local(async move {
            tokens.set(match api_client::tokens().await {
                Ok(t) => Load::Ready(t),
                Err(e) => Load::Failed(e.message),
            });
        });
    };
    Effect::new(move |_| load());

    let create = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let n = name.get_untracked().trim().to_string();
        if n.is_empty() {
            status.set(Status::error("Give the token a name, e.g. the script that will use it."));
            util::focus_id("tok-name");
            return;
        }
        let days = expires.get_untracked().parse::<i64>().ok();
        busy.set(true);
        spawn_local(async move {
            match api_client::create_token(&n, days).await {
                Ok(t) => {
                    created.set(Some(t));
                    name.set(String::new());
                    status.set(None);
                    util::focus_id("tok-copy");
                    load();
                }
                Err(e) => status.set(Status::api(&e)),
            }
            busy.set(false);
        });
    };

    let revoke = move |id: i64, tname: String| {
        let ok = window()
            .confirm_with_message(&format!("Revoke “{tname}”? Scripts using it will stop working."))
            .unwrap_or(false);
        if !ok {
            return;
        }
        spawn_local(async move {
            match api_client::revoke_token(id).await {
                Ok(()) => {
                    status.set(Status::ok(format!("Revoked “{tname}”.")));
                    if created.with_untracked(|c| c.as_ref().map(|c| c.token.id) == Some(id)) {
                        created.set(None);
                    }
                    load();
                }
                Err(e) => status.set(Status::api(&e)),
            }
        });
    };

    let copy = move |_| {
        if let Some(c) = created.get_untracked() {
            if util::copy_text(&c.secret, secret_input.get_untracked()) {
                status.set(Status::ok("Copied to the clipboard."));
            } else {
                status.set(Status::warn("Selected; press Ctrl+C to copy."));
            }
        }
    };

    let rows = move || match tokens.get() {
        Load::Loading => view! { <tr><td><Skeleton width="10em"/></td><td></td><td></td><td></td><td></td></tr> }.into_any(),
        Load::Failed(msg) => view! { <tr><td colspan="5" class="error-text">{msg}</td></tr> }.into_any(),
        Load::Ready(ts) if ts.is_empty() => view! {
            <tr><td colspan="5" class="muted empty-cell">"No tokens yet."</td></tr>
        }
        .into_any(),
        Load::Ready(ts) => ts
            .into_iter()
            .map(|t| {
                let id = t.id;
                let tname = t.name.clone();
                let label = format!("Revoke {}", t.name);
                let now = util::now_ms();
                let expiry = match t.expires_at {
                    None => view! { <span class="muted">"never"</span> }.into_any(),
                    Some(at) if at <= now => view! {
                        <span class="state-badge is-off">"expired"</span>
                        <span class="muted tnum">" " {util::fmt_date(at)}</span>
                    }
                    .into_any(),
                    Some(at) => view! { <span class="muted tnum">{util::fmt_date(at)}</span> }.into_any(),
                };
                view! {
                    <tr>
                        <td>{t.name.clone()}</td>
                        <td class="muted tnum">{util::fmt_datetime(t.created_at)}</td>
                        <td class="muted tnum">{t.last_used_at.map(util::fmt_datetime).unwrap_or_else(|| "never".into())}</td>
                        <td>{expiry}</td>
                        <td class="actions">
                            <button class="btn btn-quiet btn-small btn-danger" aria-label=label on:click=move |_| revoke(id, tname.clone())>
                                "Revoke"
                            </button>
                        </td>
                    </tr>
                }
            })
            .collect_view()
            .into_any(),
    };

    view! {
        <div class="wide">
            <div class="page-head"><h1>"API tokens"</h1></div>
            <p class="muted">
                "Scripts use a token as " <code>"Authorization: Bearer <secret>"</code>
                "; it acts as you, with your role, but cannot create tokens."
            </p>
            <form class="inline-form" on:submit=create>
                <input id="tok-name" class="input" type="text" placeholder="token name, e.g. nightly-export" aria-label="Token name" bind:value=name/>
                <select id="tok-expires" class="input input-auto" aria-label="Expires" bind:value=expires>
                    <option value="7">"expires in 7 days"</option>
                    <option value="30">"expires in 30 days"</option>
                    <option value="90" selected>"expires in 90 days"</option>
                    <option value="365">"expires in a year"</option>
                    <option value="">"never expires"</option>
                </select>
                <button type="submit" class="btn btn-primary" disabled=move || busy.get()>"Create token"</button>
            </form>
            <StatusLine status/>
            <Show when=move || created.with(|c| c.is_some())>
                <div class="card secret-card" role="alert">
                    <p class="warn-text">
                        <strong>"Copy this secret now."</strong>
                        " It is shown only once; Mirrorset keeps only its hash."
                    </p>
                    <div class="secret-row">
                        <input
                            node_ref=secret_input
                            class="input mono"
                            type="text"
                            readonly
                            aria-label="Token secret"
                            prop:value=move || created.with(|c| c.as_ref().map(|c| c.secret.clone()).unwrap_or_default())
                            on:focus=move |ev| {
                                use wasm_bindgen::JsCast;
                                if let Some(el) = ev.target().and_then(|t| t.dyn_into::<web_sys::HtmlInputElement>().ok()) {
                                    el.select();
                                }
                            }
                        />
                        <button id="tok-copy" class="btn btn-primary" on:click=copy>"Copy"</button>
                        <button class="btn btn-quiet" on:click=move |_| created.set(None)>"Done"</button>
                    </div>
                </div>
            </Show>
            <table class="table">
                <thead><tr><th>"Name"</th><th>"Created"</th><th>"Last used"</th><th>"Expires"</th><th class="actions"><span class="sr-only">"Actions"</span></th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </div>
    }
    .into_any()
}
