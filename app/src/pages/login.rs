//! `/login`: username, password, Enter.
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::hooks::{use_navigate, use_query_map};
use leptos_router::NavigateOptions;

use crate::api_client;
use crate::components::{Status, StatusLine};
use crate::session::use_session;
use crate::util;

/// Where to go after signing in: `next` when it is a path on this site (not the sign-in page
/// again), else nothing. A crafted `?next=` must not send a user who just signed in to another
/// origin (see `util::is_same_origin_path` for the tricks it refuses).
pub fn safe_redirect_target(next: &str) -> Option<&str> {
    (util::is_same_origin_path(next) && !next.starts_with("/login")).then_some(next)
}

fn safe_next(next: Option<String>) -> String {
    next.as_deref().and_then(safe_redirect_target).unwrap_or("/").to_string()
}

#[component]
pub fn LoginPage() -> impl IntoView {
    let session = use_session();
    let query = use_query_map();
    let navigate = use_navigate();

    let username = RwSignal::new(String::new());
    let password = RwSignal::new(String::new());
    let status = RwSignal::new(None::<Status>);
    let busy = RwSignal::new(false);
    // The form only works once the page is live; until then its button stays disabled, so an
    // early Enter cannot send the password anywhere as a plain form.
    let live = RwSignal::new(false);
    Effect::new(move |_| {
        live.set(true);
        util::focus_id("login-username");
    });

    let submit = move |ev: leptos::ev::SubmitEvent| {
        ev.prevent_default();
        if busy.get_untracked() {
            return;
        }
        let u = username.get_untracked();
        let p = password.get_untracked();
        if u.trim().is_empty() {
            status.set(Status::error("Enter your username."));
            util::focus_id("login-username");
            return;
        }
        if p.is_empty() {
            status.set(Status::error("Enter your password."));
            util::focus_id("login-password");
            return;
        }
        busy.set(true);
        status.set(Status::info("Signing in…"));
        let next = safe_next(query.with_untracked(|q| q.get("next")));
        let navigate = navigate.clone();
        spawn_local(async move {
            match api_client::login(u.trim(), &p).await {
                Ok(me) => {
                    session.me.set(Some(me));
                    session.checked.set(true);
                    status.set(None);
                    navigate(&next, NavigateOptions::default());
                }
                Err(e) => {
                    // 401 `unauthorized` is a wrong name or password; other answers (a
                    // disabled account, throttling) say what they mean.
                    let msg = if e.status == 401 && e.code == "unauthorized" {
                        "Wrong username or password.".to_string()
                    } else {
                        e.message
                    };
                    status.set(Status::error(msg));
                    password.set(String::new());
                    util::focus_id("login-password");
                }
            }
            busy.set(false);
        });
    };

    view! {
        <div class="login-wrap">
            <form class="card login-card" on:submit=submit novalidate>
                <div class="login-brand">
                    <span class="brand-mark" aria-hidden="true"></span>
                    "Mirrorset"
                </div>
                <h1 class="login-title">"Sign in"</h1>
                <label class="field">
                    <span class="field-label">"Username"</span>
                    <input
                        id="login-username"
                        class="input"
                        type="text"
                        name="username"
                        autocomplete="username"
                        autocapitalize="off"
                        spellcheck="false"
                        autofocus
                        bind:value=username
                    />
                </label>
                <label class="field">
                    <span class="field-label">"Password"</span>
                    <input
                        id="login-password"
                        class="input"
                        type="password"
                        name="password"
                        autocomplete="current-password"
                        bind:value=password
                    />
                </label>
                <button type="submit" class="btn btn-primary btn-block" disabled=move || !live.get() || busy.get()>
                    "Sign in"
                </button>
                <StatusLine status id="login-status"/>
            </form>
        </div>
    }
    .into_any()
}

#[cfg(test)]
mod tests {
    use super::{safe_next, safe_redirect_target};

    #[test]
    fn redirect_targets_stay_on_site() {
        assert_eq!(safe_redirect_target("/projects/3/label?x=1"), Some("/projects/3/label?x=1"));
        assert_eq!(safe_redirect_target("/"), Some("/"));
        for bad in [
            "//evil.com",
            "/\t/evil.com",
            "/\n/evil.com",
            "/\\evil.com",
            "/x\\y",
            "https://evil.com",
            "javascript:alert(1)",
            "/projects\u{0}",
            "/login",
            "/login?next=/",
            "",
        ] {
            assert_eq!(safe_redirect_target(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn next_stays_on_site() {
        assert_eq!(safe_next(None), "/");
        assert_eq!(safe_next(Some("/projects/3/label".into())), "/projects/3/label");
        assert_eq!(safe_next(Some("//evil.example".into())), "/");
        assert_eq!(safe_next(Some("https://evil.example".into())), "/");
        assert_eq!(safe_next(Some("/login?next=/".into())), "/");
    }
}
