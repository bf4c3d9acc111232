//! The review pages (leads and admins): `/projects/:id/review` (the queues),
//! `/projects/:id/review/:queue?pair=U1,U2&slice=ATTR:VALUE&label=NAME` (work a queue) and
//! `/projects/:id/review/item/:item_id` (one item). State in `state`, panels in `panels`.
pub mod panels;
pub mod queues;
pub mod state;
pub mod work;

use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};

use crate::pages::project_id;
use state::QueueFilters;
use work::{Source, Worker};

fn not_a_project() -> AnyView {
    view! { <div class="narrow"><p class="error-text">"This is not a project address."</p></div> }.into_any()
}

#[component]
pub fn ReviewQueuesPage() -> impl IntoView {
    let pid = project_id();
    move || match pid.get() {
        Some(id) => view! { <queues::QueueList pid=id/> }.into_any(),
        None => not_a_project(),
    }
}

#[component]
pub fn ReviewQueuePage() -> impl IntoView {
    let pid = project_id();
    let params = use_params_map();
    let query = use_query_map();
    move || {
        let Some(id) = pid.get() else { return not_a_project() };
        let name = params.with(|p| p.get("queue")).unwrap_or_default();
        let filters = query.with(|q| QueueFilters { pair: q.get("pair"), slice: q.get("slice"), label: q.get("label") });
        view! { <Worker pid=id source=Source::Queue { name, filters }/> }.into_any()
    }
}

#[component]
pub fn ReviewItemPage() -> impl IntoView {
    let pid = project_id();
    let params = use_params_map();
    move || {
        let item = params.with(|p| p.get("item_id").and_then(|s| s.parse::<i64>().ok()));
        match (pid.get(), item) {
            (Some(id), Some(item)) => view! { <Worker pid=id source=Source::Item(item)/> }.into_any(),
            _ => not_a_project(),
        }
    }
}
