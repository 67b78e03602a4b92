//! Real-socket tests of the REST routes, health and error bodies.

mod support;

use std::sync::atomic::Ordering;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{test_config, TestServer};
use uuid::Uuid;

async fn post(client: &reqwest::Client, url: String, body: Value) -> (StatusCode, Value) {
    let response = client.post(url).json(&body).send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

// Goal: register, login, duplicate, bad credentials and bad input each get their status and code.
#[tokio::test]
async fn register_and_login() {
    let server = TestServer::start(test_config()).await;
    let client = reqwest::Client::new();
    let credentials = json!({"username": "alice", "password": "correct horse"});

    let (status, registered) = post(
        &client,
        server.url("/v1/auth/register"),
        credentials.clone(),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let token = registered["token"].as_str().unwrap();
    assert_eq!(
        server
            .gateway
            .verify_token(token)
            .unwrap()
            .user_id
            .to_string(),
        registered["user_id"]
    );

    let (status, duplicate) = post(
        &client,
        server.url("/v1/auth/register"),
        credentials.clone(),
    )
    .await;
    assert_eq!(
        (status, duplicate["code"].as_str()),
        (StatusCode::CONFLICT, Some("conflict"))
    );

    let (status, session) = post(&client, server.url("/v1/auth/login"), credentials).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["user_id"], registered["user_id"]);
    assert!(session["expires_at"].as_str().unwrap().ends_with('Z'));
    assert!(session["expires_at_ms"].as_u64().unwrap() > 0);
    let lists = client
        .get(server.url("/v1/lists"))
        .bearer_auth(session["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(lists.status(), StatusCode::OK);

    let (status, wrong_password) = post(
        &client,
        server.url("/v1/auth/login"),
        json!({"username": "alice", "password": "wrong horse"}),
    )
    .await;
    assert_eq!(
        (status, wrong_password["code"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("unauthorized"))
    );
    let (status, unknown_user) = post(
        &client,
        server.url("/v1/auth/login"),
        json!({"username": "bob", "password": "correct horse"}),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(unknown_user["message"], wrong_password["message"]);

    let (status, bad_name) = post(
        &client,
        server.url("/v1/auth/register"),
        json!({"username": "no spaces", "password": "long enough"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(bad_name["message"].as_str().unwrap().contains("username"));
    let (status, short_password) = post(
        &client,
        server.url("/v1/auth/register"),
        json!({"username": "carol", "password": "short"}),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(short_password["message"]
        .as_str()
        .unwrap()
        .contains("password"));
}

// Goal: missing and invalid bearer tokens are refused with a JSON 401.
#[tokio::test]
async fn refuses_bad_tokens() {
    let server = TestServer::start(test_config()).await;
    let client = reqwest::Client::new();
    for request in [
        client.get(server.url("/v1/lists")),
        client.get(server.url("/v1/lists")).bearer_auth("garbage"),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["code"], "unauthorized");
    }
}

// Goal: an oversized body is a JSON 413 and malformed JSON a JSON 400.
#[tokio::test]
async fn body_limits_and_malformed_json() {
    let server = TestServer::start(test_config()).await;
    let client = reqwest::Client::new();
    let token = server.token();
    let huge = json!({"title": "x".repeat(2048)});
    let response = client
        .post(server.url("/v1/lists"))
        .bearer_auth(&token)
        .json(&huge)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "too_large");

    let response = client
        .post(server.url("/v1/lists"))
        .bearer_auth(&token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "invalid");
}

// Goal: create a list, read its snapshot, submit ops, and refuse bad ids and bodies.
#[tokio::test]
async fn lists_and_ops() {
    let server = TestServer::start(test_config()).await;
    let client = reqwest::Client::new();
    let token = server.token();
    let (status, created) = {
        let response = client
            .post(server.url("/v1/lists"))
            .bearer_auth(&token)
            .json(&json!({"title": "groceries"}))
            .send()
            .await
            .unwrap();
        (response.status(), response.json::<Value>().await.unwrap())
    };
    assert_eq!(status, StatusCode::CREATED);
    let list = created["list_id"].as_str().unwrap();

    let snapshot = client
        .get(server.url(&format!("/v1/lists/{list}")))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(snapshot.headers()["content-type"], "application/json");
    assert_eq!(
        snapshot.json::<Value>().await.unwrap()["title"],
        "groceries"
    );
    let all = client
        .get(server.url("/v1/lists"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(all.json::<Value>().await.unwrap()[0]["list_id"], list);

    let op =
        json!({"op_id": Uuid::now_v7(), "op": {"kind": "add_item", "text": "milk", "after": null}});
    let response = client
        .post(server.url(&format!("/v1/lists/{list}/ops")))
        .bearer_auth(&token)
        .json(&op)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), json!({"seq": 1}));

    let no_op_id = json!({"op": {"kind": "rename", "title": "x"}});
    let response = client
        .post(server.url(&format!("/v1/lists/{list}/ops")))
        .bearer_auth(&token)
        .json(&no_op_id)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.json::<Value>().await.unwrap()["message"]
        .as_str()
        .unwrap()
        .contains("op_id"));

    let bad_id = client
        .get(server.url("/v1/lists/not-a-uuid"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(bad_id.status(), StatusCode::BAD_REQUEST);
    let missing = client
        .get(server.url(&format!("/v1/lists/{}", Uuid::now_v7())))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), StatusCode::NOT_FOUND);
}

// Goal: HTTP ops share the per-user rate limit and answer 429 with both retry hints.
#[tokio::test]
async fn http_ops_are_rate_limited() {
    let config = listwire_gateway::GatewayConfig {
        ops_per_second_per_user: 1,
        ops_burst_per_user: 1,
        ..test_config()
    };
    let server = TestServer::start(config).await;
    let client = reqwest::Client::new();
    let token = server.token();
    let url = server.url(&format!("/v1/lists/{}/ops", Uuid::now_v7()));
    let op = json!({"op_id": Uuid::now_v7(), "op": {"kind": "rename", "title": "x"}});
    assert_eq!(
        client
            .post(&url)
            .bearer_auth(&token)
            .json(&op)
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    let limited = client
        .post(&url)
        .bearer_auth(&token)
        .json(&op)
        .send()
        .await
        .unwrap();
    assert_eq!(limited.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(limited.headers().contains_key("retry-after"));
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["code"], "rate_limited");
    assert!(body["retry_after_ms"].as_u64().unwrap() > 0);
}

// Goal: health, readiness (following the router) and metrics without a handle.
#[tokio::test]
async fn health_readiness_and_metrics() {
    let server = TestServer::start(test_config()).await;
    let client = reqwest::Client::new();
    let health = client.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(
        (health.status(), health.text().await.unwrap()),
        (StatusCode::OK, "ok".to_owned())
    );
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::OK
    );
    server.router.not_ready.store(true, Ordering::SeqCst);
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::SERVICE_UNAVAILABLE
    );
    assert_eq!(
        client
            .get(server.url("/metrics"))
            .send()
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
}

// Goal: the gateway refuses a JWT secret shorter than 32 bytes.
#[test]
fn refuses_a_short_secret() {
    let config = listwire_gateway::GatewayConfig {
        jwt_secret: vec![1; 31],
        ..test_config()
    };
    let router = std::sync::Arc::new(support::FakeRouter::default());
    let accounts = std::sync::Arc::new(support::FakeAccounts::default());
    let refused = listwire_gateway::Gateway::new(config, router, accounts, None, None);
    assert!(matches!(
        refused,
        Err(listwire_gateway::Error::InvalidConfig(_))
    ));
}

// Goal: register and login share a per-IP limit that answers 429 `rate_limited`. The calls
// go out together: password hashing can take longer than the limit's refill (1 a second) on a
// slow machine, so calls in a row could each find a fresh token.
#[tokio::test]
async fn auth_is_rate_limited_per_ip() {
    let config = listwire_gateway::GatewayConfig {
        auth_per_second_per_ip: 1,
        auth_burst_per_ip: 1,
        ..test_config()
    };
    let server = TestServer::start(config).await;
    let client = reqwest::Client::new();
    let credentials = json!({"username": "dave", "password": "long enough"});
    let calls = [
        "/v1/auth/register",
        "/v1/auth/login",
        "/v1/auth/login",
        "/v1/auth/register",
    ]
    .map(|path| post(&client, server.url(path), credentials.clone()));
    let answers = futures_util::future::join_all(calls).await;
    let limited = answers
        .iter()
        .filter(|(status, body)| {
            *status == StatusCode::TOO_MANY_REQUESTS
                && body["code"].as_str() == Some("rate_limited")
        })
        .count();
    assert!(
        limited >= 2,
        "four calls on a budget of 1 (+1/s): {answers:?}"
    );
}

// Goal: an HTTP op whose owner never answers gets `503 unavailable` ("outcome unknown") after
// `op_timeout`, instead of waiting forever.
#[tokio::test]
async fn an_unanswered_http_op_times_out_as_outcome_unknown() {
    let config = listwire_gateway::GatewayConfig {
        op_timeout: std::time::Duration::from_millis(150),
        ..test_config()
    };
    let server = TestServer::start(config).await;
    let client = reqwest::Client::new();
    let list = Uuid::now_v7();
    let response = client
        .post(server.url(&format!("/v1/lists/{list}/ops")))
        .bearer_auth(server.token())
        .json(&json!({"op_id": Uuid::now_v7(), "op": {"kind": "rename", "title": "hang"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], "unavailable");
    assert!(body["message"].as_str().unwrap().contains("unknown"));
    assert_eq!(server.router.held.lock().unwrap().len(), 1);
}
