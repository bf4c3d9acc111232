//! An item's content and its `meta` pairs, as the pages that show items (labeling, review)
//! draw them.
use leptos::prelude::*;

use crate::api_types::{ItemKind, ItemView};

/// `meta` as `key value` pairs, values without JSON quotes.
#[component]
pub fn MetaPairs(item: ItemView) -> impl IntoView {
    item.meta
        .into_iter()
        .map(|(k, v)| {
            let v = match v {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            };
            view! { <span class="meta-pair"><span class="meta-key">{k}</span> " " <span class="meta-val">{v}</span></span> }
        })
        .collect_view()
}

/// The text, or the image scaled to fit its box (the review view needs no zoom).
#[component]
pub fn ItemBody(item: ItemView) -> impl IntoView {
    match item.kind {
        ItemKind::Image => {
            let src = item.image_url.clone().unwrap_or_else(|| format!("/api/items/{}/image", item.id));
            view! { <div class="image-fit"><img class="item-image-fit" src=src alt=format!("Item {}", item.id)/></div> }
                .into_any()
        }
        ItemKind::Text => view! { <div class="item-text">{item.text.unwrap_or_default()}</div> }.into_any(),
    }
}

/// Which of the labels a key press chooses: the label whose key is exactly the key, else one
/// whose key matches it ignoring case (label keys are stored in lower case).
pub fn label_for_key<'a>(labels: &'a [crate::api_types::LabelDef], key: &str) -> Option<&'a crate::api_types::LabelDef> {
    labels
        .iter()
        .find(|l| l.key == key)
        .or_else(|| labels.iter().find(|l| l.key.to_lowercase() == key.to_lowercase()))
}
