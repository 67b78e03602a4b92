use serde_json::json;
use uuid::Uuid;

use crate::support::*;

/// A retried op (same op_id) is acked with the same seq and applied once: concurrently, after a
/// reconnect, and after the node restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retried_op_is_applied_once_with_the_same_seq() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]).await;
    let alice = user(&node, "alice").await;
    let list = list(&alice, "once").await;
    let op_id = Uuid::new_v4();

    let mut live = alice.connect().await.unwrap();
    for _ in 0..5 {
        live.send_op(list, op_id, &add("exactly once"))
            .await
            .unwrap();
    }
    let mut seqs = Vec::new();
    for _ in 0..5 {
        seqs.push(
            expect_frame(&mut live, |frame| match frame {
                listwire::client::ServerFrame::Ack {
                    op_id: acked, seq, ..
                } if *acked == op_id => Some(*seq),
                _ => None,
            })
            .await,
        );
    }
    assert!(
        seqs.iter().all(|seq| *seq == seqs[0]),
        "acks differ: {seqs:?}"
    );
    live.close().await;

    let mut again = alice.connect().await.unwrap();
    assert_eq!(
        again.op(list, op_id, &add("exactly once")).await.unwrap(),
        seqs[0]
    );
    assert_eq!(
        alice.op(list, op_id, add("exactly once")).await.unwrap(),
        seqs[0],
        "http retry"
    );
    again.close().await;
    node.stop().await.unwrap();

    let node = start_node(dir.path(), &[]).await;
    let alice = alice_after_restart(&node).await;
    assert_eq!(
        alice.op(list, op_id, add("exactly once")).await.unwrap(),
        seqs[0],
        "retry after restart"
    );
    let state = alice.get_list(list).await.unwrap();
    let copies = state["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|item| item["text"] == "exactly once")
        .count();
    assert_eq!(copies, 1);
    assert_eq!(state["seq"], seqs[0]);
    node.stop().await.unwrap();
}

async fn alice_after_restart(node: &listwire::server::RunningNode) -> listwire::client::Client {
    let anonymous = listwire::client::Client::new(&node.http_url());
    let session = anonymous
        .login("alice", "correct horse battery")
        .await
        .expect("accounts survive a restart");
    anonymous.with_token(&session.token)
}

/// A token issued before a restart stays valid after it (the secret is kept in the data dir).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_survive_restart() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]).await;
    let alice = user(&node, "alice").await;
    let list = list(&alice, "kept").await;
    node.stop().await.unwrap();
    let node = start_node(dir.path(), &[]).await;
    let alice = listwire::client::Client::new(&node.http_url()).with_token(alice.token().unwrap());
    let state = alice.get_list(list).await.unwrap();
    assert_eq!(state["title"], "kept");
    let lists = alice.lists().await.unwrap();
    assert_eq!(lists.len(), 1);
    assert_eq!(lists[0].role, "owner");
    let seq = alice
        .op(
            list,
            Uuid::new_v4(),
            json!({"kind": "rename", "title": "still mine"}),
        )
        .await
        .unwrap();
    assert_eq!(seq, 2);
    node.stop().await.unwrap();
}
