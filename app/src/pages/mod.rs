//! One module per route.
pub mod account;
pub mod gold_note;
pub mod devset;
pub mod agreement;
pub mod label;
pub mod login;
pub mod prelabels;
pub mod project;
pub mod projects;
pub mod release;
pub mod review;
pub mod tokens;
pub mod users;

use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

#[component]
pub fn NotFound() -> impl IntoView {
    view! {
        <div class="narrow">
            <h1>"Not found"</h1>
            <p class="muted">"There is no page at this address."</p>
            <p><a href="/" class="btn">"Back to projects"</a></p>
        </div>
    }
    .into_any()
}

/// The `:id` of the current route, when it is a number.
pub fn project_id() -> Memo<Option<i64>> {
    let params = use_params_map();
    Memo::new(move |_| params.with(|p| p.get("id").and_then(|s| s.parse::<i64>().ok())))
}
