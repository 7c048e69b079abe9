//! The web console: `web-ui/index.html` at `/` and `web-ui/assets/` at `/assets/...`, embedded
//! in the binary (crate `sluice-console`), with a strict Content-Security-Policy. The console is
//! a client of the public API like any other: it has no route of its own besides its files.
//!
//! For work on the console, `SLUICE_CONSOLE_DIR=web-ui` serves the files from that directory
//! instead, read at each request (edit, reload).

use std::path::{Component, Path, PathBuf};

use axum::Router;
use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ApiError;

/// What the console's pages may load and where they may connect: their own origin only, no
/// inline script or style, no frames, no plugins.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Where the console's files come from.
#[derive(Clone, Debug)]
enum Files {
    /// The copies embedded at build time.
    Embedded,
    /// A directory read at each request (`SLUICE_CONSOLE_DIR`).
    Dir(PathBuf),
}

/// The console's routes (`/`, `/assets/...`), files from `SLUICE_CONSOLE_DIR` if it is set.
pub fn routes() -> Router {
    let files = match std::env::var_os("SLUICE_CONSOLE_DIR") {
        Some(dir) if !dir.is_empty() => {
            tracing::info!(
                "the console is served from {} (SLUICE_CONSOLE_DIR)",
                Path::new(&dir).display()
            );
            Files::Dir(dir.into())
        }
        _ => Files::Embedded,
    };
    Router::new()
        .route("/", get(index))
        .route("/assets/{*path}", get(asset))
        .with_state(files)
}

async fn index(State(files): State<Files>, headers: HeaderMap) -> Response {
    serve(&files, "/", &headers).await
}

async fn asset(State(files): State<Files>, UrlPath(path): UrlPath<String>, headers: HeaderMap) -> Response {
    serve(&files, &format!("/assets/{path}"), &headers).await
}

async fn serve(files: &Files, url: &str, headers: &HeaderMap) -> Response {
    let (bytes, content_type, etag): (std::borrow::Cow<'static, [u8]>, &str, Option<&str>) = match files {
        Files::Embedded => match sluice_console::file(url) {
            Some(f) => (f.bytes.into(), f.content_type, Some(f.etag)),
            None => return not_found(url),
        },
        Files::Dir(dir) => {
            let Some(path) = on_disk(dir, url) else {
                return not_found(url);
            };
            match tokio::fs::read(&path).await {
                Ok(b) => (b.into(), content_type(&path), None),
                Err(_) => return not_found(url),
            }
        }
    };
    let mut res = if etag.is_some_and(|e| {
        headers
            .get(header::IF_NONE_MATCH)
            .is_some_and(|v| v.as_bytes() == e.as_bytes())
    }) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let mut r = bytes.into_owned().into_response();
        r.headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        r
    };
    let h = res.headers_mut();
    if let Some(e) = etag {
        h.insert(header::ETAG, HeaderValue::from_static(e));
    }
    // Revalidated at each load (cheap with the ETag): a new binary's console is seen at once.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    res
}

fn not_found(url: &str) -> Response {
    ApiError::new(
        StatusCode::NOT_FOUND,
        super::error::ErrorCode::NotFound,
        format!("the console has no file {url}"),
    )
    .into_response()
}

/// The file for `url` under `dir`: `/` is `index.html`; only plain names below `assets/`.
fn on_disk(dir: &Path, url: &str) -> Option<PathBuf> {
    if url == "/" {
        return Some(dir.join("index.html"));
    }
    let rel = Path::new(url.strip_prefix("/assets/")?);
    rel.components()
        .all(|c| matches!(c, Component::Normal(_)))
        .then(|| dir.join("assets").join(rel))
}

fn content_type(path: &Path) -> &'static str {
    sluice_console::content_type_of(path.extension().and_then(|e| e.to_str()).unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_out_of_the_console_directory_is_refused() {
        let dir = Path::new("/srv/web-ui");
        assert_eq!(on_disk(dir, "/"), Some(dir.join("index.html")));
        assert_eq!(on_disk(dir, "/assets/js/main.js"), Some(dir.join("assets/js/main.js")));
        assert_eq!(on_disk(dir, "/assets/../Cargo.toml"), None);
        assert_eq!(on_disk(dir, "/assets//etc/passwd"), None);
        assert_eq!(on_disk(dir, "/index.html"), None);
    }
}
