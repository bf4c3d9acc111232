//! `/account`: who is signed in, and changing one's own password (which signs out every
//! other session of the account).
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api_client;
use crate::components::{check_new_password, NewPasswordFields, Skeleton, Status, StatusLine};
use crate::session::use_session;
use crate::util;

#[component]
pub fn AccountPage() -> impl IntoView {
    let session = use_session();
    let current = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let repeat = RwSignal::new(String::new());
    let status = RwSignal::new(None::<Status>);
    let busy = RwSignal::new(false);

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let cur = current.get_untracked();
        let new = password.get_untracked();
        if cur.is_empty() {
            status.set(Status::error("Enter your current password."));
            util::focus_id("acc-current");
            return;
        }
        if let Err(problem) = check_new_password(&new, &repeat.get_untracked()) {
            status.set(Status::error(problem.message()));
            util::focus_id("acc-new");
            return;
        }
        busy.set(true);
        status.set(Status::info("Changing the password…"));
        spawn_local(async move {
            match api_client::change_password(&cur, &new).await {
                Ok(()) => {
                    current.set(String::new());
                    password.set(String::new());
                    repeat.set(String::new());
                    status.set(Status::ok("Password changed. Your other sessions are signed out."));
                }
                Err(e) if e.status == 403 => {
                    current.set(String::new());
                    status.set(Status::error("The current password is wrong."));
                    util::focus_id("acc-current");
                }
                Err(e) => status.set(Status::api(&e)),
            }
            busy.set(false);
        });
    };

    let who = move || {
        session.me.with(|m| match m {
            Some(m) => view! {
                <strong>{m.user.username.clone()}</strong>
                " "
                <span class="role-badge">{m.user.role.as_str()}</span>
            }
            .into_any(),
            None => view! { <Skeleton width="9em"/> }.into_any(),
        })
    };

    view! {
        <div class="narrow">
            <div class="page-head"><h1>"Your account"</h1></div>
            <p>"Signed in as " {who}</p>
            <form class="card form-card" on:submit=submit novalidate>
                <h2>"Change password"</h2>
                <label class="field">
                    <span class="field-label">"Current password"</span>
                    <input id="acc-current" class="input" type="password" autocomplete="current-password" bind:value=current/>
                </label>
                <NewPasswordFields password repeat id_password="acc-new" id_repeat="acc-repeat"/>
                <div class="form-actions">
                    <button type="submit" class="btn btn-primary" disabled=move || busy.get()>"Change password"</button>
                </div>
                <StatusLine status id="account-status"/>
            </form>
            <p class="muted">
                "Changing the password signs out your sessions in other browsers. API tokens keep "
                "working; revoke them under " <a href="/tokens">"API tokens"</a> "."
            </p>
        </div>
    }
    .into_any()
}
