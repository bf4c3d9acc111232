//! The site's static files: a gzipped copy beside a file (`scripts/build-site.sh --release`
//! writes them for the bundle) goes to clients that accept gzip, marked so that caches keep
//! the two answers apart; everyone else gets the file itself.
use reqwest::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE, VARY};

use crate::common::{Backend, TestServer};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_gzipped_copy_goes_only_to_clients_that_accept_gzip() {
    let site = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(site.path().join("pkg")).unwrap();
    let glue = b"console.log('the glue');\n".repeat(200);
    // The server sends the copy's bytes as they are: these stand in for gzip's output.
    let glue_gz = b"\x1f\x8b\x08 the glue, gzipped".to_vec();
    std::fs::write(site.path().join("pkg/glue.js"), &glue).unwrap();
    std::fs::write(site.path().join("pkg/glue.js.gz"), &glue_gz).unwrap();
    std::fs::write(site.path().join("pkg/alone.css"), b"body { margin: 0 }").unwrap();
    let server = TestServer::start_with_args(Backend::Sqlite, &["--site-root", site.path().to_str().unwrap()]).await;
    // reqwest without its gzip feature: it neither asks for gzip nor unzips.
    let http = reqwest::Client::new();
    let get = |path: &'static str, accept: &'static str| {
        let request = http.get(server.url(path)).header(ACCEPT_ENCODING, accept);
        async move {
            let resp = request.send().await.unwrap();
            assert_eq!(resp.status(), 200, "GET {path} ({accept})");
            let header = |name| resp.headers().get(name).map(|v: &reqwest::header::HeaderValue| v.to_str().unwrap().to_string());
            let (encoding, vary, kind) = (header(CONTENT_ENCODING), header(VARY), header(CONTENT_TYPE));
            (encoding, vary, kind, resp.bytes().await.unwrap().to_vec())
        }
    };

    let (encoding, vary, kind, body) = get("/pkg/glue.js", "gzip, deflate, br").await;
    assert_eq!((encoding.as_deref(), vary.as_deref()), (Some("gzip"), Some("accept-encoding")));
    assert_eq!(kind.as_deref(), Some("text/javascript"), "the original's type, not gzip's");
    assert_eq!(body, glue_gz, "the gzipped copy");

    let (encoding, vary, kind, body) = get("/pkg/glue.js", "identity").await;
    assert_eq!((encoding, vary, kind.as_deref()), (None, None, Some("text/javascript")));
    assert_eq!(body, glue, "the file itself to a client that does not accept gzip");

    // A file without a copy is sent as it is, whatever the client accepts.
    let (encoding, vary, _, body) = get("/pkg/alone.css", "gzip").await;
    assert_eq!((encoding, vary, body), (None, None, b"body { margin: 0 }".to_vec()));
}
