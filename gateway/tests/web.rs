//! Real-socket tests of the web client's routes: `/` and every asset with its content type.

mod support;

use reqwest::StatusCode;
use support::{test_config, TestServer};

// Goal: `/` is the page, each asset answers with its content type and no-cache, and the page
// names only assets that exist.
#[tokio::test]
async fn serves_the_page_and_its_assets() {
    let server = TestServer::start(test_config()).await;
    let client = reqwest::Client::new();

    let page = client.get(server.url("/")).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    assert_eq!(page.headers()["cache-control"], "no-cache");
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    let policy = page.headers()["content-security-policy"].to_str().unwrap();
    assert!(policy.contains("default-src 'self'"), "{policy}");
    // default-src does not cover form targets: a form could post elsewhere without this.
    assert!(policy.contains("form-action 'self'"), "{policy}");
    let html = page.text().await.unwrap();
    assert!(html.contains(r#"<script type="module" src="/web/app.js">"#));

    let cases = [
        ("/web/index.html", "text/html; charset=utf-8"),
        ("/web/app.css", "text/css; charset=utf-8"),
        ("/web/app.js", "text/javascript; charset=utf-8"),
        ("/web/live.js", "text/javascript; charset=utf-8"),
        ("/web/view-poll.js", "text/javascript; charset=utf-8"),
        ("/web/icon.svg", "image/svg+xml"),
    ];
    for (path, content_type) in cases {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{path}");
        assert_eq!(response.headers()["content-type"], content_type, "{path}");
        assert!(!response.bytes().await.unwrap().is_empty(), "{path}");
    }

    // Every module the scripts import is served.
    for path in ["/web/app.js", "/web/view-list.js"] {
        let script = client
            .get(server.url(path))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        for import in script.lines().filter_map(|line| {
            let (_, rest) = line.split_once(" from './")?;
            rest.split_once('\'').map(|(name, _)| name.to_owned())
        }) {
            let status = client
                .get(server.url(&format!("/web/{import}")))
                .send()
                .await
                .unwrap()
                .status();
            assert_eq!(status, StatusCode::OK, "{import} imported by {path}");
        }
    }

    for path in ["/web/nope.js", "/web/..%2FCargo.toml", "/web/"] {
        let response = client.get(server.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(body["code"], "not_found", "{path}");
    }
}
