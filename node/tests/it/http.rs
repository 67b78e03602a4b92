use serde_json::json;
use uuid::Uuid;

use crate::support::*;

/// The REST surface: auth errors, my lists, snapshots, ops and health.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_flow_and_errors() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]).await;
    let anonymous = listwire::client::Client::new(&node.http_url());
    let alice = user(&node, "alice").await;
    let taken = anonymous
        .register("alice", "another password")
        .await
        .unwrap_err();
    assert_eq!(taken.code(), Some("conflict"));
    let wrong = anonymous
        .login("alice", "wrong password")
        .await
        .unwrap_err();
    assert_eq!(wrong.code(), Some("unauthorized"));
    assert_eq!(
        anonymous.lists().await.unwrap_err().code(),
        Some("unauthorized")
    );

    let list = alice
        .create_list(json!({"title": "rest", "visibility": "public"}))
        .await
        .unwrap();
    // "My lists" is derived after the create is durable, so it may lag by a moment.
    eventually(std::time::Duration::from_secs(5), || async {
        alice.lists().await.unwrap().len() == 1
    })
    .await;
    let lists = alice.lists().await.unwrap();
    assert_eq!((lists[0].list_id, lists[0].role.as_str()), (list, "owner"));
    let missing = alice.get_list(Uuid::new_v4()).await.unwrap_err();
    assert_eq!(missing.code(), Some("not_found"));
    let seq = alice
        .op(list, Uuid::new_v4(), add("from http"))
        .await
        .unwrap();
    let state = alice.get_list(list).await.unwrap();
    assert_eq!(state["seq"], seq);
    assert_eq!(state["visibility"], "public");
    assert_eq!(
        state["owner"],
        user_id(&alice, &node, "alice").await.to_string()
    );

    let bad = alice.create_list(json!({"title": ""})).await.unwrap_err();
    assert_eq!(bad.code(), Some("invalid"));
    for path in ["/healthz", "/readyz", "/metrics"] {
        let response = reqwest::get(format!("{}{path}", node.http_url()))
            .await
            .unwrap();
        assert!(response.status().is_success(), "{path}");
    }
    let metrics = reqwest::get(format!("{}/metrics", node.http_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("listwire_ops_applied_total"), "{metrics}");
    node.stop().await.unwrap();
}

/// Creating a list with a client-chosen `op_id` is idempotent: a retry returns the same list
/// and creates nothing new.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_with_op_id_is_idempotent() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]).await;
    let alice = user(&node, "alice").await;
    let op_id = Uuid::new_v4();
    let body = json!({"title": "once", "op_id": op_id});
    let first = alice.create_list(body.clone()).await.unwrap();
    let retried = alice.create_list(body).await.unwrap();
    assert_eq!(first, retried);
    assert_eq!(alice.get_list(first).await.unwrap()["seq"], 1);
    let bob = user(&node, "bob").await;
    let other = bob
        .create_list(json!({"title": "bob's", "op_id": op_id}))
        .await
        .unwrap();
    assert_ne!(other, first, "op ids are scoped to the user");
    node.stop().await.unwrap();
}
