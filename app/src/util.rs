//! Small browser helpers: time, random ids, timers, keyboard and storage.
//!
//! Like `api_client`, these are called from effects and event handlers, so they only run in
//! the browser.
use wasm_bindgen::JsCast;

use leptos::prelude::window;

/// True when `s` is a path on this site: it starts with one `/` and nothing in it can make a
/// browser resolve it against another origin. Browsers read `\` as `/` (so `/\evil.com` is
/// `//evil.com`, another host) and silently drop tabs and newlines from URLs (so `/\t/evil.com`
/// is `//evil.com` too): paths with a backslash or any control character are refused outright,
/// as is anything with a scheme or starting with `//`.
pub fn is_same_origin_path(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next() == Some('/')
        && !matches!(chars.next(), Some('/'))
        && !s.contains('\\')
        && !s.chars().any(char::is_control)
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    js_sys::Date::now() as i64
}

/// A monotonic clock in milliseconds, for measuring time spent on an item.
pub fn perf_now() -> f64 {
    window()
        .performance()
        .map(|p| p.now())
        .unwrap_or_else(js_sys::Date::now)
}

/// Local midnight today, in milliseconds since the epoch (for "mine today").
pub fn local_midnight_ms() -> i64 {
    let d = js_sys::Date::new_0();
    d.set_hours(0);
    d.set_minutes(0);
    d.set_seconds(0);
    d.set_milliseconds(0);
    d.get_time() as i64
}

/// A random UUID v4 from the browser's CSPRNG (works without a secure context, unlike
/// `crypto.randomUUID`).
pub fn new_client_id() -> String {
    let mut b = [0u8; 16];
    let filled = window()
        .crypto()
        .ok()
        .and_then(|c| c.get_random_values_with_u8_array(&mut b).ok())
        .is_some();
    if !filled {
        for x in b.iter_mut() {
            *x = (js_sys::Math::random() * 256.0) as u8;
        }
    }
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[0..8], &h[8..12], &h[12..16], &h[16..20], &h[20..32])
}

/// Waits `ms` milliseconds.
pub async fn sleep_ms(ms: u32) {
    let promise = js_sys::Promise::new(&mut |resolve, _reject| {
        let _ = window().set_timeout_with_callback_and_timeout_and_arguments_0(&resolve, ms as i32);
    });
    let _ = wasm_bindgen_futures::JsFuture::from(promise).await;
}

/// True when a key press belongs to a text field (or carries a modifier), so page shortcuts
/// must leave it alone.
pub fn typing_in_field(ev: &web_sys::KeyboardEvent) -> bool {
    if ev.ctrl_key() || ev.meta_key() || ev.alt_key() || ev.is_composing() {
        return true;
    }
    let Some(target) = ev.target() else { return false };
    let Some(el) = target.dyn_ref::<web_sys::HtmlElement>() else { return false };
    if el.is_content_editable() {
        return true;
    }
    match el.tag_name().to_ascii_uppercase().as_str() {
        "TEXTAREA" | "SELECT" => true,
        "INPUT" => {
            let kind = el.get_attribute("type").unwrap_or_default().to_ascii_lowercase();
            !matches!(
                kind.as_str(),
                "checkbox" | "radio" | "button" | "submit" | "reset" | "file" | "color" | "range"
            )
        }
        _ => false,
    }
}

/// A date and time in the browser's locale, short.
pub fn fmt_datetime(ms: i64) -> String {
    let d = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    let date = format!(
        "{:04}-{:02}-{:02} {:02}:{:02}",
        d.get_full_year(),
        d.get_month() + 1,
        d.get_date(),
        d.get_hours(),
        d.get_minutes()
    );
    date
}

pub fn fmt_date(ms: i64) -> String {
    fmt_datetime(ms)[..10].to_string()
}

pub fn storage_get(key: &str) -> Option<String> {
    window().local_storage().ok().flatten()?.get_item(key).ok().flatten()
}

pub fn storage_set(key: &str, value: &str) {
    if let Some(s) = window().local_storage().ok().flatten() {
        let _ = s.set_item(key, value);
    }
}

/// Copies text to the clipboard. Selects it in `input` too, so Ctrl+C works if the browser
/// refuses (the Clipboard API needs a secure context).
pub fn copy_text(text: &str, input: Option<web_sys::HtmlInputElement>) -> bool {
    if let Some(input) = &input {
        input.select();
    }
    let nav = window().navigator();
    let has_clipboard = js_sys::Reflect::get(&nav, &wasm_bindgen::JsValue::from_str("clipboard"))
        .map(|v| !v.is_undefined() && !v.is_null())
        .unwrap_or(false);
    if has_clipboard {
        let _ = nav.clipboard().write_text(text);
        return true;
    }
    window()
        .document()
        .and_then(|d| d.dyn_into::<web_sys::HtmlDocument>().ok())
        .map(|d| d.exec_command("copy").unwrap_or(false))
        .unwrap_or(false)
}

/// Moves keyboard focus to the element with this id, on the next frame (after rendering).
pub fn focus_id(id: &'static str) {
    leptos::prelude::request_animation_frame(move || {
        if let Some(el) = window()
            .document()
            .and_then(|d| d.get_element_by_id(id))
            .and_then(|e| e.dyn_into::<web_sys::HtmlElement>().ok())
        {
            let _ = el.focus();
        }
    });
}

/// Warn before leaving while `pending` says there is unsaved work.
pub fn guard_unload(pending: impl Fn() -> bool + 'static) -> leptos::prelude::WindowListenerHandle {
    leptos::prelude::window_event_listener_untyped("beforeunload", move |ev| {
        if pending() {
            ev.prevent_default();
            if let Some(e) = ev.dyn_ref::<web_sys::BeforeUnloadEvent>() {
                e.set_return_value("Some labels are still being saved.");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::is_same_origin_path;

    #[test]
    fn same_origin_paths() {
        for ok in ["/", "/projects/3/label?x=1", "/api/items/5/image", "/a/b#c", "/%09/x", "/a//b"] {
            assert!(is_same_origin_path(ok), "{ok:?} refused");
        }
        for bad in [
            "",
            "projects",
            "//evil.com",
            "/\\evil.com",
            "\\\\evil.com",
            "/\t/evil.com",
            "/\n/evil.com",
            "/\r/evil.com",
            "/a\\b",
            "/x\u{0}y",
            "/x\u{7f}",
            "/x\u{85}",
            "https://evil.com",
            "javascript:alert(1)",
            " /x",
        ] {
            assert!(!is_same_origin_path(bad), "{bad:?} accepted");
        }
    }
}
