//! Small building blocks shared by the pages.
pub mod item_body;
pub mod labels_editor;
pub mod password;
pub mod quality_settings;
pub mod status;
pub mod topbar;

use leptos::prelude::*;

pub use item_body::{label_for_key, ItemBody, MetaPairs};
pub use labels_editor::{LabelRow, LabelsEditor};
pub use password::{check_new_password, NewPasswordFields};
pub use quality_settings::{QualityFields, QualityForm};
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
                // No width while empty (the style sheet's is 0): the server renders the bar
                // empty, and the CSP refuses a `style` attribute in served HTML. Widths set
                // later go through the CSSOM, which it allows.
                <span
                    class="progress-fill"
                    style:width=move || Some(pct()).filter(|p| *p > 0.0).map(|p| format!("{p:.2}%"))
                ></span>
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
///
/// The width is a class (`w-12em`, `w-90pc` for 90%) defined in style/main.css, not a
/// `style` attribute: the server renders skeletons, and the Content-Security-Policy refuses
/// inline styles in served HTML. A test checks that every width used has its rule.
#[component]
pub fn Skeleton(#[prop(default = "8em")] width: &'static str) -> impl IntoView {
    view! { <span class=format!("skeleton {}", width_class(width)) aria-hidden="true"></span> }
}

/// "12em" → "w-12em", "90%" → "w-90pc".
pub fn width_class(width: &str) -> String {
    format!("w-{}", width.replace('%', "pc"))
}

#[cfg(test)]
mod tests {
    /// Every `<Skeleton width="…"/>` in the UI has its width class in the style sheet.
    #[test]
    fn skeleton_widths_have_css_rules() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let css = std::fs::read_to_string(root.join("../style/main.css")).unwrap();
        let mut sources = vec![root.join("src")];
        let mut widths = vec!["8em".to_string()];
        while let Some(path) = sources.pop() {
            if path.is_dir() {
                sources.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
            } else if path.extension().is_some_and(|e| e == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                for part in text.split("<Skeleton width=\"").skip(1) {
                    let w = part.split('"').next().unwrap();
                    // (Not the "…" of the comments about it.)
                    if w.starts_with(|c: char| c.is_ascii_digit()) {
                        widths.push(w.to_string());
                    }
                }
            }
        }
        assert!(widths.len() > 5, "found {widths:?}");
        for w in widths {
            let rule = format!(".skeleton.{} {{", super::width_class(&w));
            assert!(css.contains(&rule), "style/main.css has no `{rule}` for <Skeleton width=\"{w}\"/>");
        }
    }

    /// Every block of the style sheet is closed: one missing `}` after an `@media` rule (a
    /// merge) once put every later rule inside it, so the dev-set charts drew in black.
    #[test]
    fn style_sheet_blocks_are_balanced() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let css = std::fs::read_to_string(root.join("../style/main.css")).unwrap();
        // Comments may hold braces: leave them out.
        let mut depth = 0i32;
        let mut rest = css.as_str();
        while let Some(c) = rest.chars().next() {
            if rest.starts_with("/*") {
                rest = rest.find("*/").map_or("", |end| &rest[end + 2..]);
                continue;
            }
            depth += match c {
                '{' => 1,
                '}' => -1,
                _ => 0,
            };
            assert!(depth >= 0, "style/main.css closes a block it never opened near: {:?}", &rest[..rest.len().min(80)]);
            rest = &rest[c.len_utf8()..];
        }
        assert_eq!(depth, 0, "style/main.css leaves {depth} block(s) open");
    }

    #[test]
    fn counts_are_grouped() {
        assert_eq!(super::fmt_count(0), "0");
        assert_eq!(super::fmt_count(999), "999");
        assert_eq!(super::fmt_count(1000), "1,000");
        assert_eq!(super::fmt_count(1234567), "1,234,567");
        assert_eq!(super::fmt_count(-1000), "-1,000");
    }
}
