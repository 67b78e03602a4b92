//! Real-socket tests of the WebSocket protocol: auth, frame errors, limits and closes.

mod support;

use std::sync::atomic::Ordering;

use futures_util::{SinkExt, StreamExt};
use support::{
    close_code, next_json, op, send_json, subscribe, test_config, ws_connect, TestServer, DEADLINE,
};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::{self, Message};
use uuid::Uuid;

// Goal: the upgrade accepts a token in the header or the query and refuses a missing or bad one.
#[tokio::test]
async fn authenticates_the_upgrade() {
    let server = TestServer::start(test_config()).await;
    let token = server.token();
    let list = Uuid::now_v7();

    let mut by_header = ws_connect(&server, &token).await;
    send_json(&mut by_header, subscribe(list)).await;
    assert_eq!(next_json(&mut by_header).await["type"], "snapshot");

    let (mut by_query, _) =
        tokio_tungstenite::connect_async(format!("ws://{}/v1/ws?token={token}", server.addr))
            .await
            .unwrap();
    send_json(&mut by_query, subscribe(list)).await;
    assert_eq!(next_json(&mut by_query).await["type"], "snapshot");

    for url in [
        format!("ws://{}/v1/ws", server.addr),
        format!("ws://{}/v1/ws?token=garbage", server.addr),
    ] {
        match tokio_tungstenite::connect_async(url.into_client_request().unwrap()).await {
            Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 401),
            other => panic!("expected a 401, got {other:?}"),
        }
    }
}

// Goal: unusable frames get `invalid` (with the ids that could be read), unknown fields are
// ignored, and the connection keeps working afterwards.
#[tokio::test]
async fn invalid_frames_keep_the_connection_open() {
    let server = TestServer::start(test_config()).await;
    let mut ws = ws_connect(&server, &server.token()).await;
    let list = Uuid::now_v7();

    send_json(&mut ws, "{not json".into()).await;
    assert_eq!(next_json(&mut ws).await["code"], "invalid");

    send_json(&mut ws, format!(r#"{{"type":"dance","list":"{list}"}}"#)).await;
    let unknown = next_json(&mut ws).await;
    assert_eq!(
        (unknown["code"].as_str(), unknown["list"].as_str()),
        (Some("invalid"), Some(list.to_string().as_str()))
    );

    send_json(
        &mut ws,
        format!(r#"{{"type":"op","list":"{list}","op_id":"nope","op":{{}}}}"#),
    )
    .await;
    let bad_op_id = next_json(&mut ws).await;
    assert_eq!(bad_op_id["code"], "invalid");
    assert!(bad_op_id["message"].as_str().unwrap().contains("op_id"));

    ws.send(Message::binary(vec![1, 2, 3])).await.unwrap();
    assert_eq!(next_json(&mut ws).await["code"], "invalid");

    send_json(
        &mut ws,
        format!(r#"{{"type":"subscribe","list":"{list}","since":null,"future_field":{{"a":1}}}}"#),
    )
    .await;
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");

    let op_id = Uuid::now_v7();
    send_json(&mut ws, op(list, op_id)).await;
    let ack = next_json(&mut ws).await;
    assert_eq!(
        (ack["type"].as_str(), ack["op_id"].as_str()),
        (Some("ack"), Some(op_id.to_string().as_str()))
    );
}

// Goal: a message over the soft limit gets `too_large` and the connection stays usable; one
// over the hard limit closes it with 1009 while the server keeps accepting connections.
#[tokio::test]
async fn message_size_limits() {
    let server = TestServer::start(test_config()).await;
    let token = server.token();
    let list = Uuid::now_v7();
    let mut ws = ws_connect(&server, &token).await;

    let op_id = Uuid::now_v7();
    let big = format!(
        r#"{{"type":"op","list":"{list}","op_id":"{op_id}","op":{{"kind":"rename","title":"{}"}}}}"#,
        "x".repeat(2000)
    );
    send_json(&mut ws, big).await;
    let too_large = next_json(&mut ws).await;
    assert_eq!(too_large["code"], "too_large");
    assert_eq!(
        too_large["op_id"].as_str(),
        Some(op_id.to_string().as_str())
    );
    send_json(&mut ws, subscribe(list)).await;
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");

    send_json(&mut ws, "x".repeat(8192)).await;
    assert_eq!(close_code(&mut ws).await, 1009);

    let mut again = ws_connect(&server, &token).await;
    send_json(&mut again, subscribe(list)).await;
    assert_eq!(next_json(&mut again).await["type"], "snapshot");
}

// Goal: one subscription past the per-connection limit gets `too_large`; re-subscribing does not count.
#[tokio::test]
async fn subscription_limit() {
    let config = listwire_gateway::GatewayConfig {
        subscriptions_per_connection_max: 2,
        ..test_config()
    };
    let server = TestServer::start(config).await;
    let mut ws = ws_connect(&server, &server.token()).await;
    let (first, second, third) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    for list in [first, second, first] {
        send_json(&mut ws, subscribe(list)).await;
        assert_eq!(next_json(&mut ws).await["type"], "snapshot");
    }
    send_json(&mut ws, subscribe(third)).await;
    let refused = next_json(&mut ws).await;
    assert_eq!(
        (refused["code"].as_str(), refused["list"].as_str()),
        (Some("too_large"), Some(third.to_string().as_str()))
    );

    send_json(
        &mut ws,
        format!(r#"{{"type":"unsubscribe","list":"{first}"}}"#),
    )
    .await;
    send_json(&mut ws, subscribe(third)).await;
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");
}

// Goal: a flood of ops past the user's burst gets `rate_limited` with `retry_after_ms`.
#[tokio::test]
async fn op_flood_is_rate_limited() {
    let config = listwire_gateway::GatewayConfig {
        ops_per_second_per_user: 1,
        ops_burst_per_user: 3,
        ..test_config()
    };
    let server = TestServer::start(config).await;
    let mut ws = ws_connect(&server, &server.token()).await;
    let list = Uuid::now_v7();
    for _ in 0..10 {
        send_json(&mut ws, op(list, Uuid::now_v7())).await;
    }
    let mut answers = Vec::new();
    for _ in 0..10 {
        answers.push(next_json(&mut ws).await);
    }
    let acks = answers
        .iter()
        .filter(|answer| answer["type"] == "ack")
        .count();
    let limited: Vec<_> = answers
        .iter()
        .filter(|answer| answer["code"] == "rate_limited")
        .collect();
    assert_eq!((acks, limited.len()), (3, 7));
    assert!(limited
        .iter()
        .all(|answer| answer["retry_after_ms"].as_u64().is_some_and(|ms| ms > 0)));
    assert!(limited
        .iter()
        .all(|answer| answer["op_id"].is_string() && answer["list"].is_string()));
}

// Goal: a connection whose outbound queue overflows is closed with 1013.
#[tokio::test]
async fn slow_consumer_is_closed_with_1013() {
    let config = listwire_gateway::GatewayConfig {
        outbound_queue_frames: 4,
        ..test_config()
    };
    let server = TestServer::start(config).await;
    server.router.subscribe_flood.store(true, Ordering::SeqCst);
    let mut ws = ws_connect(&server, &server.token()).await;
    send_json(&mut ws, subscribe(Uuid::now_v7())).await;
    assert_eq!(close_code(&mut ws).await, 1013);
}

// Goal: shutdown closes open WebSockets with 1001, unsubscribes them, and `serve` returns.
#[tokio::test]
async fn shutdown_closes_with_1001() {
    let mut server = TestServer::start(test_config()).await;
    let mut ws = ws_connect(&server, &server.token()).await;
    let list = Uuid::now_v7();
    send_json(&mut ws, subscribe(list)).await;
    assert_eq!(next_json(&mut ws).await["type"], "snapshot");

    let (code, ()) = tokio::join!(close_code(&mut ws), server.shutdown());
    assert_eq!(code, 1001);
    assert!(server
        .router
        .unsubscribed
        .lock()
        .unwrap()
        .iter()
        .any(|(unsubscribed, _)| *unsubscribed == list));
    assert_eq!(server.gateway.connection_count(), 0);
    // The client may see the end of the stream or an error after the close; either way it ends.
    let end = tokio::time::timeout(DEADLINE, ws.next()).await.unwrap();
    assert!(!matches!(end, Some(Ok(Message::Text(_)))));
}

// Goal: past `connections_max` an upgrade gets 503, and a freed slot is reusable.
#[tokio::test]
async fn connection_limit() {
    let config = listwire_gateway::GatewayConfig {
        connections_max: 1,
        ..test_config()
    };
    let server = TestServer::start(config).await;
    let token = server.token();
    let mut first = ws_connect(&server, &token).await;
    let url = format!("ws://{}/v1/ws?token={token}", server.addr);
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tungstenite::Error::Http(response)) => assert_eq!(response.status(), 503),
        other => panic!("expected a 503, got {other:?}"),
    }
    first.close(None).await.unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while server.gateway.connection_count() > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the slot was not released"
        );
        tokio::task::yield_now().await;
    }
    let mut second = ws_connect(&server, &token).await;
    send_json(&mut second, subscribe(Uuid::now_v7())).await;
    assert_eq!(next_json(&mut second).await["type"], "snapshot");
}

// Goal: past `connections_per_user_max` a user's next upgrade gets 429 while other users still
// connect, and a closed connection frees the user's slot.
#[tokio::test]
async fn per_user_connection_limit() {
    let config = listwire_gateway::GatewayConfig {
        connections_per_user_max: 2,
        ..test_config()
    };
    let server = TestServer::start(config).await;
    let token = server.token();
    let mut first = ws_connect(&server, &token).await;
    let _second = ws_connect(&server, &token).await;
    let url = format!("ws://{}/v1/ws?token={token}", server.addr);
    match tokio_tungstenite::connect_async(url.as_str()).await {
        Err(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 429);
            assert!(
                response.headers().contains_key("retry-after"),
                "{response:?}"
            );
        }
        other => panic!("expected a 429, got {other:?}"),
    }
    let other = server.token();
    let _other = ws_connect(&server, &other).await;
    first.close(None).await.unwrap();
    let deadline = tokio::time::Instant::now() + DEADLINE;
    loop {
        match tokio_tungstenite::connect_async(url.as_str()).await {
            Ok((mut again, _)) => {
                send_json(&mut again, subscribe(Uuid::now_v7())).await;
                assert_eq!(next_json(&mut again).await["type"], "snapshot");
                break;
            }
            Err(tungstenite::Error::Http(response)) if response.status() == 429 => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "the slot was not released"
                );
                tokio::task::yield_now().await;
            }
            Err(error) => panic!("unexpected {error}"),
        }
    }
}
