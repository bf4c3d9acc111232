//! `/admin/users` (admins): everyone, with per-row actions (role, disable / enable, reset
//! password), and a form to add someone. Every action is a native control, so Tab reaches
//! it and Enter or Space runs it; the reset form takes focus when it opens, Escape closes it.
use leptos::prelude::*;
use leptos::task::spawn_local;

use crate::api_client;
use crate::api_types::{NewUser, Role, User, UserUpdate};
use crate::components::{check_new_password, Load, NewPasswordFields, Skeleton, Status, StatusLine};
use crate::session::use_session;
use crate::util;

const ROLES: [Role; 3] = [Role::Labeler, Role::Lead, Role::Admin];

/// What a successful change did, in words for the status line.
fn change_done(user: &User, change: &UserUpdate) -> String {
    match (change.role, change.disabled) {
        (Some(role), _) => format!("{} is now {} {}.", user.username, article(role), role.as_str()),
        (_, Some(true)) => format!("Disabled {}: signed out, and their API tokens refused.", user.username),
        (_, Some(false)) => format!("Enabled {} again; they can sign in.", user.username),
        _ => String::new(),
    }
}

fn article(role: Role) -> &'static str {
    if role == Role::Admin {
        "an"
    } else {
        "a"
    }
}

#[component]
pub fn UsersPage() -> impl IntoView {
    let session = use_session();
    let users = RwSignal::new(Load::<Vec<User>>::Loading);
    // The status of the per-row actions (the forms have their own).
    let status = RwSignal::new(None::<Status>);
    // Whose password the reset form is for, when it is open.
    let reset_for = RwSignal::new(None::<User>);

    let load = move || {
        spawn_local(async move {
            users.set(match api_client::users().await {
                Ok(u) => Load::Ready(u),
                Err(e) => Load::Failed(e.message),
            });
        });
    };
    Effect::new(move |_| load());

    let change = move |user: User, change: UserUpdate| {
        spawn_local(async move {
            match api_client::update_user(user.id, &change).await {
                Ok(updated) => status.set(Status::ok(change_done(&updated, &change))),
                // The list is reloaded either way, so a refused role change snaps back.
                Err(e) => status.set(Status::api(&e)),
            }
            load();
        });
    };

    let toggle = move |user: User| {
        let disable = !user.disabled;
        if disable {
            let ok = window()
                .confirm_with_message(&format!(
                    "Disable {}? They are signed out at once and their API tokens stop working until you enable them again.",
                    user.username
                ))
                .unwrap_or(false);
            if !ok {
                return;
            }
        }
        change(user, UserUpdate { role: None, disabled: Some(disable) });
    };

    let rows = move || match users.get() {
        Load::Loading => (0..3)
            .map(|_| view! { <tr><td><Skeleton width="10em"/></td><td><Skeleton width="6em"/></td><td></td><td><Skeleton width="6em"/></td><td></td></tr> })
            .collect_view()
            .into_any(),
        Load::Failed(msg) => view! { <tr><td colspan="5" class="error-text">{msg}</td></tr> }.into_any(),
        Load::Ready(us) => {
            let me = session.me.with(|m| m.as_ref().map(|m| m.user.id));
            us.into_iter()
                .map(|u| {
                    let is_me = me == Some(u.id);
                    let name = u.username.clone();
                    let (u_role, u_toggle, u_reset) = (u.clone(), u.clone(), u.clone());
                    let on_role = move |ev: leptos::ev::Event| {
                        if let Some(role) = Role::parse(&event_target_value(&ev)) {
                            change(u_role.clone(), UserUpdate { role: Some(role), disabled: None });
                        }
                    };
                    let options = ROLES
                        .into_iter()
                        .map(|r| view! { <option value=r.as_str() selected={r == u.role}>{r.as_str()}</option> })
                        .collect_view();
                    view! {
                        <tr class:is-disabled=u.disabled>
                            <td>
                                {u.username.clone()}
                                {is_me.then(|| view! { <span class="muted">" (you)"</span> })}
                            </td>
                            <td>
                                <select class="input input-compact" aria-label=format!("Role of {name}") on:change=on_role>
                                    {options}
                                </select>
                            </td>
                            <td>
                                {if u.disabled {
                                    view! { <span class="state-badge is-off">"disabled"</span> }.into_any()
                                } else {
                                    view! { <span class="state-badge">"active"</span> }.into_any()
                                }}
                            </td>
                            <td class="muted tnum">{util::fmt_date(u.created_at)}</td>
                            <td class="actions">
                                <button
                                    class="btn btn-quiet btn-small"
                                    aria-label=format!("Reset the password of {name}")
                                    disabled=is_me
                                    title=is_me.then_some("Change your own password on the Account page")
                                    on:click=move |_| {
                                        reset_for.set(Some(u_reset.clone()));
                                        util::focus_id("rp-new");
                                    }
                                >
                                    "Reset password"
                                </button>
                                <button
                                    class={if u.disabled { "btn btn-quiet btn-small" } else { "btn btn-quiet btn-small btn-danger" }}
                                    aria-label=format!("{} {name}", if u.disabled { "Enable" } else { "Disable" })
                                    disabled=is_me
                                    title=is_me.then_some("Another admin can disable your account")
                                    on:click=move |_| toggle(u_toggle.clone())
                                >
                                    {if u.disabled { "Enable" } else { "Disable" }}
                                </button>
                            </td>
                        </tr>
                    }
                })
                .collect_view()
                .into_any()
        }
    };

    view! {
        <div class="wide">
            <div class="page-head"><h1>"Users"</h1></div>
            <Show when=move || !session.checked.get() || session.is_admin() fallback=|| view! {
                <p class="error-text">"Only admins can manage users."</p>
            }>
                <div class="two-col">
                    <div>
                        <table class="table">
                            <thead><tr>
                                <th>"Username"</th><th>"Role"</th><th>"State"</th><th>"Created"</th>
                                <th class="actions"><span class="sr-only">"Actions"</span></th>
                            </tr></thead>
                            <tbody>{rows}</tbody>
                        </table>
                        <StatusLine status id="users-status"/>
                    </div>
                    <div>
                        <Show when=move || reset_for.with(|r| r.is_some())>
                            <ResetPasswordForm reset_for/>
                        </Show>
                        <NewUserForm on_created=move || load()/>
                    </div>
                </div>
            </Show>
        </div>
    }
    .into_any()
}

/// An admin sets someone's password; they are signed out everywhere.
#[component]
fn ResetPasswordForm(reset_for: RwSignal<Option<User>>) -> impl IntoView {
    let password = RwSignal::new(String::new());
    let repeat = RwSignal::new(String::new());
    let status = RwSignal::new(None::<Status>);
    let busy = RwSignal::new(false);
    let name = move || reset_for.with(|r| r.as_ref().map(|u| u.username.clone()).unwrap_or_default());
    let close = move || {
        password.set(String::new());
        repeat.set(String::new());
        reset_for.set(None);
    };

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        let Some(user) = reset_for.get_untracked() else { return };
        if busy.get_untracked() {
            return;
        }
        let new = password.get_untracked();
        if let Err(problem) = check_new_password(&new, &repeat.get_untracked()) {
            status.set(Status::error(problem.message()));
            util::focus_id("rp-new");
            return;
        }
        busy.set(true);
        spawn_local(async move {
            match api_client::reset_password(user.id, &new).await {
                Ok(()) => {
                    status.set(Status::ok(format!("New password set; {} was signed out.", user.username)));
                    password.set(String::new());
                    repeat.set(String::new());
                }
                Err(e) => status.set(Status::api(&e)),
            }
            busy.set(false);
        });
    };

    view! {
        <form
            class="card form-card"
            on:submit=submit
            on:keydown=move |ev| {
                if ev.key() == "Escape" {
                    close();
                }
            }
            novalidate
        >
            <h2>"Reset password of " {name}</h2>
            <NewPasswordFields password repeat id_password="rp-new" id_repeat="rp-repeat"/>
            <div class="form-actions">
                <button type="submit" class="btn btn-primary" disabled=move || busy.get()>"Set password"</button>
                <button type="button" class="btn btn-quiet" on:click=move |_| close()>"Close"</button>
            </div>
            <StatusLine status id="reset-status"/>
        </form>
    }
}

/// Adds a user; `on_created` runs after each success (to reload the list).
#[component]
fn NewUserForm(on_created: impl Fn() + Copy + Send + Sync + 'static) -> impl IntoView {
    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let role = RwSignal::new("labeler".to_string());
    let status = RwSignal::new(None::<Status>);
    let busy = RwSignal::new(false);

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
                    on_created();
                }
                Err(e) => status.set(Status::api(&e)),
            }
            busy.set(false);
        });
    };

    view! {
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str) -> User {
        User { id: 2, username: name.into(), role: Role::Labeler, created_at: 0, disabled: false }
    }

    #[test]
    fn the_status_line_says_what_changed() {
        let to_admin = UserUpdate { role: Some(Role::Admin), disabled: None };
        assert_eq!(change_done(&user("ann"), &to_admin), "ann is now an admin.");
        let to_lead = UserUpdate { role: Some(Role::Lead), disabled: None };
        assert_eq!(change_done(&user("ann"), &to_lead), "ann is now a lead.");
        let off = UserUpdate { role: None, disabled: Some(true) };
        assert!(change_done(&user("ann"), &off).starts_with("Disabled ann"));
        let on = UserUpdate { role: None, disabled: Some(false) };
        assert!(change_done(&user("ann"), &on).starts_with("Enabled ann"));
    }
}
