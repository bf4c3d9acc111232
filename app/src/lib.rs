//! Mirrorset's browser UI (Leptos, SSR + hydration) and the types shared by UI and API.
//!
//! The server renders each page's frame with calm placeholders of the final size; after
//! hydration the browser fetches the data from the public JSON API (`api_client`). There are
//! no server functions: the UI uses exactly the API that scripts use.
#![recursion_limit = "256"]

pub mod api_client;
pub mod api_types;
pub mod components;
pub mod markdown;
pub mod pages;
pub mod session;
pub mod upload;
pub mod util;

use leptos::prelude::*;
use leptos::task::spawn_local;
use leptos_router::components::{Route, Router, Routes};
use leptos_router::hooks::use_location;
use leptos_router::path;

use components::TopBar;
use pages::{
    account::AccountPage, agreement::AgreementPage, label::LabelPage, login::LoginPage, project::ProjectPage, projects::ProjectsPage,
    tokens::TokensPage, users::UsersPage, NotFound,
};
use pages::review::{ReviewItemPage, ReviewQueuePage, ReviewQueuesPage};
use session::Session;

pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <meta name="color-scheme" content="light"/>
                <link rel="icon" type="image/svg+xml" href="/favicon.svg"/>
                <HydrationScripts options/>
                <link rel="stylesheet" href="/pkg/mirrorset.css"/>
                <title>"Mirrorset"</title>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
    .into_any()
}

#[component]
pub fn App() -> impl IntoView {
    let session = Session::new();
    provide_context(session);

    // Who is signed in: asked once, in the browser, after hydration.
    Effect::new(move |_| {
        spawn_local(async move {
            match api_client::me().await {
                Ok(Some(me)) => session.me.set(Some(me)),
                Ok(None) => api_client::redirect_to_login(),
                Err(_) => {}
            }
            session.checked.set(true);
        });
    });

    view! {
        <Router>
            <Frame/>
        </Router>
    }
    .into_any()
}

/// The top bar (except on the sign-in page) and the page under it.
#[component]
fn Frame() -> impl IntoView {
    let location = use_location();
    let on_login = move || location.pathname.with(|p| p.starts_with("/login"));
    view! {
        <div class="app">
            <Show when=move || !on_login()>
                <TopBar/>
            </Show>
            <main class="page" id="main">
                <Routes fallback=NotFound>
                    <Route path=path!("/") view=ProjectsPage/>
                    <Route path=path!("/login") view=LoginPage/>
                    <Route path=path!("/projects/:id") view=ProjectPage/>
                    <Route path=path!("/projects/:id/label") view=LabelPage/>
                    <Route path=path!("/projects/:id/review") view=ReviewQueuesPage/>
                    <Route path=path!("/projects/:id/review/item/:item_id") view=ReviewItemPage/>
                    <Route path=path!("/projects/:id/review/:queue") view=ReviewQueuePage/>
                    <Route path=path!("/projects/:id/devsets") view=crate::pages::devset::DevsetPage/>
                    <Route path=path!("/projects/:id/releases") view=crate::pages::release::ReleasesPage/>
                    <Route path=path!("/projects/:id/agreement") view=AgreementPage/>
                    <Route path=path!("/projects/:id/prelabels") view=crate::pages::prelabels::PrelabelsPage/>
                    <Route path=path!("/projects/:id/prelabels/rules") view=crate::pages::prelabels::RulesPage/>
                    <Route path=path!("/admin/users") view=UsersPage/>
                    <Route path=path!("/tokens") view=TokensPage/>
                    <Route path=path!("/account") view=AccountPage/>
                </Routes>
            </main>
        </div>
    }
    .into_any()
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}
