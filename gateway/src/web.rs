//! The web client: static assets embedded in the binary and served at `/` and `/web/{file}`.
//!
//! The page is plain HTML, CSS and ES modules from `gateway/web/`, compiled in with
//! `include_bytes!`, so every node serves it with no build step and no separate server. It
//! speaks only the public client protocol (`docs/PROTOCOL.md`) from the browser; the gateway
//! knows nothing of what the files do. Assets are answered with `Cache-Control: no-cache` (the
//! browser revalidates, so a new binary's page is seen at once) and a content security policy
//! that lets the page load only its own scripts and talk only to its own origin.

use axum::extract::Path;
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::error::{EdgeError, ErrorCode};
use crate::gateway::Gateway;
use crate::http::ApiError;

/// One embedded file: its name under `/web/`, its content type and its bytes.
pub(crate) struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub bytes: &'static [u8],
}

macro_rules! asset {
    ($name:literal, $content_type:expr) => {
        Asset {
            name: $name,
            content_type: $content_type,
            bytes: include_bytes!(concat!("../web/", $name)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of `gateway/web/` (a test checks that none is missing).
pub(crate) const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("app.css", "text/css; charset=utf-8"),
    asset!("icon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("backoff.js", JS),
    asset!("dom.js", JS),
    asset!("errors.js", JS),
    asset!("live.js", JS),
    asset!("model.js", JS),
    asset!("outbox.js", JS),
    asset!("sender.js", JS),
    asset!("store.js", JS),
    asset!("view-auth.js", JS),
    asset!("view-lists.js", JS),
    asset!("view-list.js", JS),
    asset!("view-items.js", JS),
    asset!("view-share.js", JS),
    asset!("view-poll.js", JS),
];

/// Scripts and styles only from this origin; media links may show images from anywhere; the
/// page connects only to its own origin (HTTP and WebSocket) and submits forms only to it.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' http: https: data:; \
     connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

/// The routes of the web client.
pub(crate) fn routes() -> axum::Router<Gateway> {
    axum::Router::new()
        .route("/", get(|| async { serve("index.html") }))
        .route(
            "/web/{name}",
            get(|Path(name): Path<String>| async move { serve(&name) }),
        )
}

/// The asset called `name`, if embedded.
pub(crate) fn find(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

fn serve(name: &str) -> Response {
    let Some(asset) = find(name) else {
        return ApiError(EdgeError::new(ErrorCode::NotFound, "no such file")).into_response();
    };
    (
        StatusCode::OK,
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(asset.content_type),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            (
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            ),
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(CONTENT_SECURITY_POLICY),
            ),
        ],
        asset.bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Goal: every file in gateway/web/ is embedded, and every embedded name is unique.
    #[test]
    fn embeds_every_file_of_the_web_folder() {
        let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        let mut on_disk: Vec<String> = std::fs::read_dir(folder)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().into_string().unwrap())
            .collect();
        on_disk.sort();
        let mut embedded: Vec<String> = ASSETS.iter().map(|a| a.name.to_owned()).collect();
        embedded.sort();
        assert_eq!(on_disk, embedded);
    }

    // Goal: an unknown or path-like name is not found.
    #[test]
    fn finds_only_embedded_names() {
        assert!(find("app.js").is_some());
        assert!(find("../Cargo.toml").is_none());
        assert!(find("nope.js").is_none());
    }
}
