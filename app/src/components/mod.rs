//! Small building blocks shared by the pages.
pub mod labels_editor;
pub mod password;
pub mod status;
pub mod topbar;

use leptos::prelude::*;

pub use labels_editor::{LabelRow, LabelsEditor};
pub use password::{check_new_password, NewPasswordFields};
pub use status::{Status, StatusLine, Tone};
pub use topbar::TopBar;

/// Something loaded from the API after the page appeared.
#[derive(Clone, Debug, PartialEq)]
pub enum Load<T> {
    Loading,
    Ready(T),
    Failed(String),
}

impl<T> Load<T> {
    pub fn ready(&self) -> Option<&T> {
        match self {
            Load::Ready(t) => Some(t),
            _ => None,
        }
    }
}

/// A key, drawn as a key cap.
#[component]
pub fn Kbd(#[prop(into)] k: String) -> impl IntoView {
    view! { <kbd class="kbd">{k}</kbd> }
}

/// A thin progress bar with its numbers beside it.
#[component]
pub fn ProgressBar(
    #[prop(into)] done: Signal<i64>,
    #[prop(into)] total: Signal<i64>,
    /// Show "done / total" after the bar.
    #[prop(optional)]
    numbers: bool,
) -> impl IntoView {
    let pct = move || {
        let t = total.get();
        if t <= 0 {
            0.0
        } else {
            (done.get() as f64 / t as f64 * 100.0).clamp(0.0, 100.0)
        }
    };
    view! {
        <span class="progress">
            <span
                class="progress-track"
                role="progressbar"
                aria-valuemin="0"
                aria-valuemax=move || total.get().to_string()
                aria-valuenow=move || done.get().to_string()
            >
                <span class="progress-fill" style:width=move || format!("{:.2}%", pct())></span>
            </span>
            {numbers.then(|| view! {
                <span class="progress-numbers num">
                    {move || fmt_count(done.get())} " / " {move || fmt_count(total.get())}
                </span>
            })}
        </span>
    }
    .into_any()
}

/// 12345 → "12,345".
pub fn fmt_count(n: i64) -> String {
    let s = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    if n < 0 {
        format!("-{out}")
    } else {
        out
    }
}

/// A grey block of a given size, standing in for text that is still loading.
#[component]
pub fn Skeleton(#[prop(into, default = "8em".into())] width: String) -> impl IntoView {
    view! { <span class="skeleton" style:width=width aria-hidden="true"></span> }
}

#[cfg(test)]
mod tests {
    #[test]
    fn counts_are_grouped() {
        assert_eq!(super::fmt_count(0), "0");
        assert_eq!(super::fmt_count(999), "999");
        assert_eq!(super::fmt_count(1000), "1,000");
        assert_eq!(super::fmt_count(1234567), "1,234,567");
        assert_eq!(super::fmt_count(-1000), "-1,000");
    }
}
