//! The one-line status area every page has: messages appear in place, nothing moves.
use leptos::prelude::*;

use crate::api_client::ApiError;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tone {
    Info,
    Ok,
    Warn,
    Error,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Status {
    pub tone: Tone,
    pub text: String,
}

impl Status {
    pub fn info(t: impl Into<String>) -> Option<Status> {
        Some(Status { tone: Tone::Info, text: t.into() })
    }
    pub fn ok(t: impl Into<String>) -> Option<Status> {
        Some(Status { tone: Tone::Ok, text: t.into() })
    }
    pub fn warn(t: impl Into<String>) -> Option<Status> {
        Some(Status { tone: Tone::Warn, text: t.into() })
    }
    pub fn error(t: impl Into<String>) -> Option<Status> {
        Some(Status { tone: Tone::Error, text: t.into() })
    }
    pub fn api(e: &ApiError) -> Option<Status> {
        Status::error(e.message.clone())
    }
}

/// A fixed-height line that shows the latest message (errors in red). Screen readers hear it.
#[component]
pub fn StatusLine(status: RwSignal<Option<Status>>, #[prop(optional, into)] id: Option<String>) -> impl IntoView {
    let class = move || {
        let tone = status.with(|s| s.as_ref().map(|s| s.tone));
        match tone {
            Some(Tone::Error) => "status-line is-error",
            Some(Tone::Warn) => "status-line is-warn",
            Some(Tone::Ok) => "status-line is-ok",
            _ => "status-line",
        }
    };
    view! {
        <div class=class id=id role="status" aria-live="polite">
            {move || status.with(|s| s.as_ref().map(|s| s.text.clone()).unwrap_or_default())}
        </div>
    }
    .into_any()
}
