//! `/admin/users` (admins): everyone, and a form to add someone.
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api_client;
use crate::api_types::{NewUser, Role, User};
use crate::components::{Load, Skeleton, Status, StatusLine};
use crate::session::use_session;
use crate::util;

#[component]
pub fn UsersPage() -> impl IntoView {
    let session = use_session();
    let users = RwSignal::new(Load::<Vec<User>>::Loading);
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let role = RwSignal::new("labeler".to_string());
    let status = RwSignal::new(None::<Status>);
    let busy = RwSignal::new(false);

    let load = move || {
        spawn_local(async move {
            users.set(match api_client::users().await {
                Ok(u) => Load::Ready(u),
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
        let u = username.get_untracked().trim().to_string();
        let p = password.get_untracked();
        if u.is_empty() {
            status.set(Status::error("The new user needs a username."));
            util::focus_id("nu-username");
            return;
        }
        if p.is_empty() {
            status.set(Status::error("The new user needs a password."));
            util::focus_id("nu-password");
            return;
        }
        let body = NewUser {
            username: u.clone(),
            password: p,
            role: Role::parse(&role.get_untracked()).unwrap_or(Role::Labeler),
        };
        busy.set(true);
        spawn_local(async move {
            match api_client::create_user(&body).await {
                Ok(user) => {
                    status.set(Status::ok(format!("Created {} ({}).", user.username, user.role.as_str())));
                    username.set(String::new());
                    password.set(String::new());
                    util::focus_id("nu-username");
                    load();
                }
                Err(e) => status.set(Status::api(&e)),
            }
            busy.set(false);
        });
    };

    let rows = move || match users.get() {
        Load::Loading => (0..3)
            .map(|_| view! { <tr><td><Skeleton width="10em"/></td><td><Skeleton width="5em"/></td><td><Skeleton width="8em"/></td></tr> })
            .collect_view()
            .into_any(),
        Load::Failed(msg) => view! { <tr><td colspan="3" class="error-text">{msg}</td></tr> }.into_any(),
        Load::Ready(us) => us
            .into_iter()
            .map(|u| {
                view! {
                    <tr>
                        <td>{u.username}</td>
                        <td><span class="role-badge">{u.role.as_str()}</span></td>
                        <td class="muted tnum">{util::fmt_date(u.created_at)}</td>
                    </tr>
                }
            })
            .collect_view()
            .into_any(),
    };

    view! {
        <div class="wide">
            <div class="page-head"><h1>"Users"</h1></div>
            <Show when=move || !session.checked.get() || session.is_admin() fallback=|| view! {
                <p class="error-text">"Only admins can manage users."</p>
            }>
                <div class="two-col">
                    <table class="table">
                        <thead><tr><th>"Username"</th><th>"Role"</th><th>"Created"</th></tr></thead>
                        <tbody>{rows}</tbody>
                    </table>
                    <form class="card form-card" on:submit=create novalidate>
                        <h2>"New user"</h2>
                        <label class="field">
                            <span class="field-label">"Username"</span>
                            <input id="nu-username" class="input" type="text" autocomplete="off" bind:value=username/>
                        </label>
                        <label class="field">
                            <span class="field-label">"Password"</span>
                            <input id="nu-password" class="input" type="password" autocomplete="new-password" bind:value=password/>
                        </label>
                        <label class="field">
                            <span class="field-label">"Role"</span>
                            <select class="input" bind:value=role>
                                <option value="labeler">"labeler — labels in their projects"</option>
                                <option value="lead">"lead — manages their projects"</option>
                                <option value="admin">"admin — everything"</option>
                            </select>
                        </label>
                        <div class="form-actions">
                            <button type="submit" class="btn btn-primary" disabled=move || busy.get()>"Create user"</button>
                        </div>
                        <StatusLine status/>
                    </form>
                </div>
            </Show>
        </div>
    }
    .into_any()
}
