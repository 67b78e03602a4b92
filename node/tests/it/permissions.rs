use listwire::client::ServerFrame;
use serde_json::json;
use uuid::Uuid;

use crate::support::*;

/// Roles are enforced by the list: a viewer's edit is forbidden, a stranger cannot read a
/// private list, and unsharing ends the member's live subscription at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_are_enforced_and_unshare_revokes_live_access() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]).await;
    let alice = user(&node, "alice").await;
    let viewer = user(&node, "victor").await;
    let stranger = user(&node, "sam").await;
    let list = list(&alice, "private").await;
    alice
        .op(
            list,
            Uuid::new_v4(),
            json!({"kind": "share", "user": "victor", "role": "viewer"}),
        )
        .await
        .unwrap();

    let mut viewer_live = viewer.connect().await.unwrap();
    subscribe_snapshot(&mut viewer_live, list).await;
    let denied = viewer_live
        .op(list, Uuid::new_v4(), &add("nope"))
        .await
        .unwrap_err();
    assert_eq!(denied.code(), Some("forbidden"));
    assert_eq!(
        stranger.get_list(list).await.unwrap_err().code(),
        Some("forbidden")
    );
    let missing = alice
        .op(
            list,
            Uuid::new_v4(),
            json!({"kind": "share", "user": "nobody", "role": "viewer"}),
        )
        .await
        .unwrap_err();
    assert_eq!(missing.code(), Some("not_found"));

    alice
        .op(
            list,
            Uuid::new_v4(),
            json!({"kind": "unshare", "user": "victor"}),
        )
        .await
        .unwrap();
    let code = expect_frame(&mut viewer_live, |frame| match frame {
        ServerFrame::Error {
            list: Some(about),
            code,
            op_id: None,
            ..
        } if *about == list => Some(code.clone()),
        _ => None,
    })
    .await;
    assert_eq!(code, "forbidden");
    // No more deltas reach the former member.
    alice
        .op(
            list,
            Uuid::new_v4(),
            json!({"kind": "add_item", "text": "secret", "after": null}),
        )
        .await
        .unwrap();
    let mut stranger_live = stranger.connect().await.unwrap();
    stranger_live.subscribe(list, None).await.unwrap();
    let refused = expect_frame(&mut stranger_live, |frame| match frame {
        ServerFrame::Error { code, .. } => Some(code.clone()),
        _ => None,
    })
    .await;
    assert_eq!(refused, "forbidden");
    // The owner publishes before it acks, so a leaked delta would already sit in the former
    // member's queue ahead of the answer to this probe.
    viewer_live.send_text("not json").await.unwrap();
    let next = viewer_live.next().await.unwrap();
    assert!(
        matches!(&next, ServerFrame::Error { code, .. } if code == "invalid"),
        "former member got {next:?}"
    );
    eventually(std::time::Duration::from_secs(5), || async {
        viewer.lists().await.unwrap().is_empty()
    })
    .await;
    node.stop().await.unwrap();
}
