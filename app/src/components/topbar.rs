//! The bar on top of every signed-in page: app name, navigation, who is signed in.
use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::A;

use crate::api_client;
use crate::components::Skeleton;
use crate::session::use_session;

#[component]
pub fn TopBar() -> impl IntoView {
    let session = use_session();
    let signing_out = RwSignal::new(false);

    let sign_out = move |_| {
        if signing_out.get_untracked() {
            return;
        }
        signing_out.set(true);
        spawn_local(async move {
            let _ = api_client::logout().await;
            session.me.set(None);
            let _ = window().location().set_href("/login");
        });
    };

    let user_line = move || {
        session.me.with(|m| {
            m.as_ref().map(|m| {
                // The name leads to the account page (changing one's password).
                let name = m.user.username.clone();
                view! {
                    <A href="/account" attr:class="topbar-user-name" attr:title="Your account">
                        {name}
                    </A>
                    <span class="role-badge">{m.user.role.as_str()}</span>
                }
            })
        })
    };

    view! {
        <header class="topbar">
            <A href="/" attr:class="brand">
                <span class="brand-mark" aria-hidden="true"></span>
                "Mirrorset"
            </A>
            <nav class="topnav" aria-label="Main">
                <A href="/" exact=true>"Projects"</A>
                <A href="/tokens">"API tokens"</A>
                <Show when=move || session.is_admin()>
                    <A href="/admin/users">"Users"</A>
                </Show>
            </nav>
            <div class="topbar-user">
                <Show
                    when=move || session.me.with(|m| m.is_some())
                    fallback=|| view! { <Skeleton width="9em"/> }
                >
                    {user_line}
                </Show>
                <button class="btn btn-quiet" on:click=sign_out disabled=move || signing_out.get()>
                    "Sign out"
                </button>
            </div>
        </header>
    }
    .into_any()
}
