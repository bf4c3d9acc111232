//! File uploads with real progress: `fetch` cannot report upload progress, XMLHttpRequest can.
use wasm_bindgen::{closure::Closure, JsCast};
use wasm_bindgen_futures::JsFuture;

use crate::api_client::{self, ApiError, ApiResult};

pub enum UploadBody {
    /// The file as the raw request body, with this content type.
    Raw(web_sys::File, &'static str),
    /// A multipart form (for images).
    Form(web_sys::FormData),
}

/// What kind of import a picked set of files is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImportKind {
    Jsonl,
    Csv,
    Zip,
    /// A Label Studio JSON export (`.json`: an array of tasks with their annotations).
    LabelStudio,
    Images,
}

impl ImportKind {
    /// From file names: one .jsonl/.csv/.zip file, or any number of images.
    pub fn detect(names: &[String]) -> Result<ImportKind, String> {
        let ext = |n: &String| n.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase()).unwrap_or_default();
        let is_image = |n: &String| matches!(ext(n).as_str(), "png" | "jpg" | "jpeg" | "gif" | "webp" | "bmp");
        match names {
            [] => Err("Choose a file first.".into()),
            [one] => match ext(one).as_str() {
                "jsonl" | "ndjson" => Ok(ImportKind::Jsonl),
                "csv" => Ok(ImportKind::Csv),
                "zip" => Ok(ImportKind::Zip),
                "json" => Ok(ImportKind::LabelStudio),
                _ if is_image(one) => Ok(ImportKind::Images),
                _ => Err(format!("“{one}” is not a .jsonl, .csv, .zip, Label Studio .json or image file.")),
            },
            many if many.iter().all(is_image) => Ok(ImportKind::Images),
            _ => Err("Several files can only be imported together when they are all images.".into()),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ImportKind::Jsonl => "application/x-ndjson",
            ImportKind::Csv => "text/csv",
            ImportKind::Zip => "application/zip",
            ImportKind::LabelStudio => "application/json",
            ImportKind::Images => "multipart/form-data",
        }
    }

    pub fn url(self, pid: i64) -> String {
        match self {
            ImportKind::Jsonl => format!("/api/projects/{pid}/import?format=jsonl"),
            ImportKind::Csv => format!("/api/projects/{pid}/import?format=csv"),
            ImportKind::Zip => format!("/api/projects/{pid}/import?format=zip"),
            ImportKind::LabelStudio => format!("/api/projects/{pid}/import?format=label-studio"),
            ImportKind::Images => format!("/api/projects/{pid}/images"),
        }
    }
}

fn js_err(e: wasm_bindgen::JsValue) -> ApiError {
    ApiError::network(format!("The upload could not start ({e:?})."))
}

/// POSTs `body` to `url`. `on_progress(loaded, total)` follows the upload; `on_sent` fires
/// when the last byte has gone and the server is working. Returns status and body text.
pub async fn upload(
    url: &str,
    body: UploadBody,
    on_progress: impl Fn(f64, f64) + 'static,
    on_sent: impl Fn() + 'static,
) -> ApiResult<(u16, String)> {
    api_client::ensure_csrf().await;
    let xhr = web_sys::XmlHttpRequest::new().map_err(js_err)?;
    xhr.open_with_async("POST", url, true).map_err(js_err)?;
    xhr.set_request_header("x-csrf-token", &api_client::csrf_token())
        .map_err(js_err)?;
    xhr.set_request_header("accept", "application/json").map_err(js_err)?;

    // The closures live in this frame until the request has ended.
    let progress_cb = Closure::<dyn FnMut(web_sys::ProgressEvent)>::new(move |e: web_sys::ProgressEvent| {
        if e.length_computable() {
            on_progress(e.loaded(), e.total());
        }
    });
    let sent_cb = Closure::<dyn FnMut()>::new(move || on_sent());
    let up = xhr.upload().map_err(js_err)?;
    up.add_event_listener_with_callback("progress", progress_cb.as_ref().unchecked_ref())
        .map_err(js_err)?;
    up.add_event_listener_with_callback("load", sent_cb.as_ref().unchecked_ref())
        .map_err(js_err)?;

    let done = js_sys::Promise::new(&mut |resolve, _reject| {
        let _ = xhr.add_event_listener_with_callback("loadend", &resolve);
    });
    match body {
        UploadBody::Raw(file, content_type) => {
            xhr.set_request_header("content-type", content_type).map_err(js_err)?;
            xhr.send_with_opt_blob(Some(&file)).map_err(js_err)?;
        }
        UploadBody::Form(form) => {
            xhr.send_with_opt_form_data(Some(&form)).map_err(js_err)?;
        }
    }
    let _ = JsFuture::from(done).await;
    drop(progress_cb);
    drop(sent_cb);

    let status = xhr.status().unwrap_or(0);
    if status == 0 {
        return Err(ApiError::network("The upload was interrupted; check the connection and try again."));
    }
    let text = xhr.response_text().ok().flatten().unwrap_or_default();
    if status == 401 {
        api_client::redirect_to_login();
    }
    Ok((status, text))
}

#[cfg(test)]
mod tests {
    use super::ImportKind;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn detects_kinds() {
        assert_eq!(ImportKind::detect(&names(&["a.jsonl"])), Ok(ImportKind::Jsonl));
        assert_eq!(ImportKind::detect(&names(&["a.CSV"])), Ok(ImportKind::Csv));
        assert_eq!(ImportKind::detect(&names(&["a.zip"])), Ok(ImportKind::Zip));
        assert_eq!(ImportKind::detect(&names(&["project-1-at-2026.json"])), Ok(ImportKind::LabelStudio));
        assert_eq!(ImportKind::detect(&names(&["a.png", "b.JPG"])), Ok(ImportKind::Images));
        assert!(ImportKind::detect(&names(&[])).is_err());
        assert!(ImportKind::detect(&names(&["a.txt"])).is_err());
        assert!(ImportKind::detect(&names(&["a.csv", "b.png"])).is_err());
    }
}
