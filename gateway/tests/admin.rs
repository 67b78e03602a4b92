//! Real-socket tests of the operator routes: disabled without a token, the admin token and only
//! it opens them, their answers, and their per-IP rate limit.

mod support;

use std::sync::atomic::Ordering;

use listwire_gateway::{Error, GatewayConfig};
use reqwest::StatusCode;
use serde_json::Value;
use support::{test_config, FakeAccounts, FakeRouter, TestServer};
use uuid::Uuid;

const ADMIN_TOKEN: &str = "an-admin-token-for-tests";

fn admin_config() -> GatewayConfig {
    GatewayConfig {
        admin_token: Some(ADMIN_TOKEN.into()),
        ..test_config()
    }
}

/// Sends `GET /v1/admin/cluster{query}` with `token` (if any); returns status and JSON body.
async fn get_cluster(server: &TestServer, query: &str, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().get(server.url(&format!("/v1/admin/cluster{query}")));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

async fn post_stop(server: &TestServer, token: Option<&str>) -> (StatusCode, Value) {
    let mut request = reqwest::Client::new().post(server.url("/v1/admin/stop"));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap())
}

// Goal: without an admin token the admin routes are off (404), even when the node has an admin
// side, and a node without an admin side is off even with a token; nothing reaches the node.
#[tokio::test]
async fn admin_routes_are_disabled_without_a_token() {
    let without_token = TestServer::start_with_admin(test_config()).await;
    for token in [None, Some(ADMIN_TOKEN)] {
        let (status, body) = get_cluster(&without_token, "", token).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::NOT_FOUND, Some("not_found"))
        );
        let (status, _) = post_stop(&without_token, token).await;
        assert_eq!(status, StatusCode::NOT_FOUND);
    }
    assert!(without_token.admin.asked.lock().unwrap().is_empty());
    assert_eq!(without_token.admin.stops.load(Ordering::SeqCst), 0);

    let without_admin = TestServer::start(admin_config()).await;
    let (status, _) = get_cluster(&without_admin, "", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

// Goal: a missing token, a wrong one and a valid user session token are all 401
// `unauthorized`; the node's admin side is never called for them.
#[tokio::test]
async fn only_the_admin_token_opens_the_admin_routes() {
    let server = TestServer::start_with_admin(admin_config()).await;
    let user_token = server.token();
    assert!(
        server.gateway.verify_token(&user_token).is_ok(),
        "a valid session token"
    );
    let cases = [
        (None, "missing admin token"),
        (Some("an-admin-token-for-test"), "invalid admin token"),
        (
            Some("an-admin-token-for-tests-and-more"),
            "invalid admin token",
        ),
        (Some(user_token.as_str()), "invalid admin token"),
    ];
    for (token, message) in cases {
        let (status, body) = get_cluster(&server, "", token).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{token:?}");
        assert_eq!(body["code"], "unauthorized");
        assert_eq!(body["message"], message);
        let (status, body) = post_stop(&server, token).await;
        assert_eq!(
            (status, body["code"].as_str()),
            (StatusCode::UNAUTHORIZED, Some("unauthorized"))
        );
    }
    assert!(server.admin.asked.lock().unwrap().is_empty());
    assert_eq!(server.admin.stops.load(Ordering::SeqCst), 0);
}

// Goal: with the admin token, the cluster route passes the node's JSON through (with the
// `list` parameter parsed, a bad one refused) and the stop route begins a stop with 202.
#[tokio::test]
async fn the_admin_token_gets_the_cluster_view_and_the_stop() {
    let server = TestServer::start_with_admin(admin_config()).await;
    let (status, body) = get_cluster(&server, "", Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["node"], "fake");
    let list = Uuid::now_v7();
    let query = format!("?list={list}&unknown=1");
    let (status, body) = get_cluster(&server, &query, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["list"], list.to_string());
    let (status, body) = get_cluster(&server, "?list=seven", Some(ADMIN_TOKEN)).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::BAD_REQUEST, Some("list must be a uuid"))
    );
    assert_eq!(*server.admin.asked.lock().unwrap(), [None, Some(list)]);

    let (status, body) = post_stop(&server, Some(ADMIN_TOKEN)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    assert_eq!(body["stopping"], true);
    assert_eq!(server.admin.stops.load(Ordering::SeqCst), 1);
    let scheme_case = reqwest::Client::new()
        .get(server.url("/v1/admin/cluster"))
        .header("authorization", format!("BEARER {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        scheme_case.status(),
        StatusCode::OK,
        "the scheme is case-insensitive"
    );
}

// Goal: admin calls share a per-IP budget (the auth quota settings) and answer 429 past it,
// before the token is checked, so a wrong token cannot be retried quickly either. The calls
// go out together, so the budget (2, then 1 a second) cannot refill between them however
// slow the machine.
#[tokio::test]
async fn admin_calls_are_rate_limited_per_ip() {
    let config = GatewayConfig {
        auth_per_second_per_ip: 1,
        auth_burst_per_ip: 2,
        ..admin_config()
    };
    let server = TestServer::start_with_admin(config).await;
    let tokens = [
        Some("wrong-token-of-some-length"),
        Some(ADMIN_TOKEN),
        Some(ADMIN_TOKEN),
    ];
    let calls = tokens
        .iter()
        .chain(tokens.iter())
        .map(|token| get_cluster(&server, "", *token));
    let answers = futures_util::future::join_all(calls).await;
    let limited: Vec<&Value> = answers
        .iter()
        .filter(|(status, _)| *status == StatusCode::TOO_MANY_REQUESTS)
        .map(|(_, body)| body)
        .collect();
    assert!(
        limited.len() >= 3,
        "six calls on a budget of 2 (+1/s): {answers:?}"
    );
    for body in limited {
        assert_eq!(body["code"].as_str(), Some("rate_limited"));
        assert!(body["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0));
    }
    assert!(
        answers.iter().all(|(status, _)| [
            StatusCode::OK,
            StatusCode::UNAUTHORIZED,
            StatusCode::TOO_MANY_REQUESTS
        ]
        .contains(status)),
        "{answers:?}"
    );
    // Logins have a budget of their own.
    let login = reqwest::Client::new()
        .post(server.url("/v1/auth/login"))
        .json(&serde_json::json!({"username": "nobody", "password": "long enough"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), StatusCode::UNAUTHORIZED);
}

// Goal: an admin token shorter than 16 bytes, or with spaces, is refused at construction.
#[test]
fn refuses_a_weak_admin_token() {
    for token in ["too-short-token", "a token with spaces"] {
        let config = GatewayConfig {
            admin_token: Some(token.into()),
            ..test_config()
        };
        let router = std::sync::Arc::new(FakeRouter::default());
        let accounts = std::sync::Arc::new(FakeAccounts::default());
        let refused = listwire_gateway::Gateway::new(config, router, accounts, None, None);
        assert!(matches!(refused, Err(Error::InvalidConfig(_))), "{token:?}");
    }
}
