use listwire::client::{ClientError, ServerFrame};
use serde_json::json;
use std::time::Duration;
use uuid::Uuid;

use crate::support::*;

async fn expect_error(live: &mut listwire::client::Live) -> (String, Option<Uuid>, Option<u64>) {
    expect_frame(live, |frame| match frame {
        ServerFrame::Error {
            code,
            op_id,
            retry_after_ms,
            ..
        } => Some((code.clone(), *op_id, *retry_after_ms)),
        _ => None,
    })
    .await
}

/// Bad input gets its documented error code and the connection and the node stay healthy:
/// oversize frames, malformed JSON, unknown types and op kinds, bad fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_get_error_codes_and_the_connection_survives() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]).await;
    let alice = user(&node, "alice").await;
    let list = list(&alice, "limits").await;
    let mut live = alice.connect().await.unwrap();

    live.send_text("{not json").await.unwrap();
    assert_eq!(expect_error(&mut live).await.0, "invalid");
    live.send_text(json!({"type": "dance"}).to_string())
        .await
        .unwrap();
    assert_eq!(expect_error(&mut live).await.0, "invalid");
    let op_id = Uuid::new_v4();
    live.send_op(list, op_id, &json!({"kind": "teleport_item"}))
        .await
        .unwrap();
    let (code, echoed, _) = expect_error(&mut live).await;
    assert_eq!((code.as_str(), echoed), ("invalid", Some(op_id)));
    live.send_op(
        list,
        Uuid::new_v4(),
        &json!({"kind": "add_item", "text": 42}),
    )
    .await
    .unwrap();
    assert_eq!(expect_error(&mut live).await.0, "invalid");
    let long_text = "x".repeat(5000);
    live.send_op(
        list,
        Uuid::new_v4(),
        &json!({"kind": "add_item", "text": long_text, "after": null}),
    )
    .await
    .unwrap();
    assert_eq!(expect_error(&mut live).await.0, "too_large");
    live.send_op(
        list,
        Uuid::new_v4(),
        &json!({"kind": "rename", "title": "t".repeat(201)}),
    )
    .await
    .unwrap();
    assert_eq!(expect_error(&mut live).await.0, "invalid");
    let oversize = json!({"type": "op", "list": list, "op_id": Uuid::new_v4(), "op": {"kind": "add_item", "text": "y".repeat(70_000)}});
    live.send_text(oversize.to_string()).await.unwrap();
    assert_eq!(expect_error(&mut live).await.0, "too_large");

    assert!(live
        .op(list, Uuid::new_v4(), &add("still works"))
        .await
        .is_ok());

    // A message far beyond the hard limit closes that connection (1009), and only it.
    let mut doomed = alice.connect().await.unwrap();
    let _ = doomed.send_text("z".repeat(2 << 20)).await;
    let closed = loop {
        match doomed.next_within(Duration::from_secs(10)).await {
            Err(ClientError::Closed { code, .. }) => break Some(code),
            Err(ClientError::Transport(_)) => break None,
            Err(other) => panic!("unexpected {other}"),
            Ok(_) => continue,
        }
    };
    assert!(
        matches!(closed, Some(1009) | None),
        "closed with {closed:?}"
    );
    assert!(live
        .op(list, Uuid::new_v4(), &add("others unaffected"))
        .await
        .is_ok());
    let healthy = reqwest::get(format!("{}/healthz", node.http_url()))
        .await
        .unwrap();
    assert!(healthy.status().is_success());
    node.stop().await.unwrap();
}

/// A flood beyond the per-user rate gets `rate_limited` with a retry hint; the node stays up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn floods_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(
        dir.path(),
        &[
            "--ops-per-second-per-user",
            "5",
            "--ops-burst-per-user",
            "5",
        ],
    )
    .await;
    let alice = user(&node, "alice").await;
    let list = list(&alice, "flood").await;
    let mut live = alice.connect().await.unwrap();
    for index in 0..50 {
        live.send_op(list, Uuid::new_v4(), &add(&format!("flood {index}")))
            .await
            .unwrap();
    }
    let mut acked = 0;
    let mut limited = 0;
    while acked + limited < 50 {
        match live.next().await.unwrap() {
            ServerFrame::Ack { .. } => acked += 1,
            ServerFrame::Error {
                code,
                retry_after_ms,
                ..
            } => {
                assert_eq!(code, "rate_limited");
                assert!(retry_after_ms.is_some());
                limited += 1;
            }
            _ => {}
        }
    }
    assert!(limited >= 40, "acked {acked}, limited {limited}");
    let state = alice.get_list(list).await.unwrap();
    assert_eq!(state["items"].as_array().unwrap().len(), acked);
    node.stop().await.unwrap();
}

/// Limits on list size are settings and answer `conflict` when reached.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn items_per_list_limit_is_enforced() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &["--items-max", "3"]).await;
    let alice = user(&node, "alice").await;
    let list = list(&alice, "small").await;
    for index in 0..3 {
        alice
            .op(list, Uuid::new_v4(), add(&format!("{index}")))
            .await
            .unwrap();
    }
    let full = alice
        .op(list, Uuid::new_v4(), add("one too many"))
        .await
        .unwrap_err();
    assert_eq!(full.code(), Some("conflict"));
    node.stop().await.unwrap();
}
