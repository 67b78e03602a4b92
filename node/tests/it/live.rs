use listwire::client::ServerFrame;
use serde_json::json;
use uuid::Uuid;

use crate::support::*;

/// Two users on one list see each other's edits live, in order, each op acked with its seq.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_users_see_each_others_edits_live() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]).await;
    let alice = user(&node, "alice").await;
    let bob = user(&node, "bob").await;
    let list = list(&alice, "groceries").await;
    alice
        .op(
            list,
            Uuid::new_v4(),
            json!({"kind": "share", "user": "bob", "role": "editor"}),
        )
        .await
        .unwrap();

    let mut alice_live = alice.connect().await.unwrap();
    let mut bob_live = bob.connect().await.unwrap();
    let (alice_seq, _) = subscribe_snapshot(&mut alice_live, list).await;
    let (bob_seq, state) = subscribe_snapshot(&mut bob_live, list).await;
    assert_eq!(alice_seq, bob_seq);
    assert_eq!(state["members"].as_array().unwrap().len(), 2);

    let seq = alice_live
        .op(list, Uuid::new_v4(), &add("milk"))
        .await
        .unwrap();
    assert_eq!(seq, bob_seq + 1);
    let (item, text) = expect_frame(&mut bob_live, |frame| match frame {
        ServerFrame::Delta {
            from, to, events, ..
        } if *from == seq && *to == seq => Some((
            events[0]["item"].as_str().unwrap().to_owned(),
            events[0]["text"].as_str().unwrap().to_owned(),
        )),
        _ => None,
    })
    .await;
    assert_eq!(text, "milk");

    let edit = json!({"kind": "edit_item", "item": item, "text": "oat milk"});
    let edit_seq = bob_live.op(list, Uuid::new_v4(), &edit).await.unwrap();
    assert_eq!(edit_seq, seq + 1);
    let kind = expect_frame(&mut alice_live, |frame| match frame {
        ServerFrame::Delta { from, events, .. } if *from == edit_seq => {
            Some(events[0]["kind"].as_str().unwrap().to_owned())
        }
        _ => None,
    })
    .await;
    assert_eq!(kind, "edit_item");
    let state = alice.get_list(list).await.unwrap();
    assert_eq!(state["items"][0]["text"], "oat milk");
    assert_eq!(state["seq"], edit_seq);
    node.stop().await.unwrap();
}

/// Every op kind of the protocol works end to end over the WebSocket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_op_kind_round_trips() {
    let dir = tempfile::tempdir().unwrap();
    let node = start_node(dir.path(), &[]).await;
    let alice = user(&node, "alice").await;
    let _carol = user(&node, "carol").await;
    let list = list(&alice, "everything").await;
    let mut live = alice.connect().await.unwrap();
    let first = Uuid::new_v4();
    let second = Uuid::new_v4();
    let ops = [
        json!({"kind": "rename", "title": "renamed"}),
        json!({"kind": "add_item", "text": "one", "after": null, "item": first}),
        json!({"kind": "add_item", "text": "two", "after": first, "item": second}),
        json!({"kind": "edit_item", "item": first, "text": "uno"}),
        json!({"kind": "set_done", "item": first, "done": true}),
        json!({"kind": "move_item", "item": first, "after": second}),
        json!({"kind": "attach_media", "item": second, "url": "https://example.com/a.png", "media_type": "image"}),
        json!({"kind": "share", "user": "carol", "role": "viewer"}),
        json!({"kind": "unshare", "user": "carol"}),
        json!({"kind": "set_poll", "max_votes_per_user": 1, "allow_change": true, "open": true}),
        json!({"kind": "vote", "item": second}),
        json!({"kind": "unvote", "item": second}),
        json!({"kind": "set_visibility", "visibility": "public"}),
        json!({"kind": "remove_item", "item": first}),
    ];
    for op in &ops {
        live.op(list, Uuid::new_v4(), op)
            .await
            .unwrap_or_else(|error| panic!("{op}: {error}"));
    }
    let state = alice.get_list(list).await.unwrap();
    assert_eq!(state["title"], "renamed");
    assert_eq!(state["visibility"], "public");
    assert_eq!(state["seq"], 1 + ops.len() as u64);
    let items = state["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["text"], "two");
    assert_eq!(items[0]["media"]["media_type"], "image");
    assert_eq!(items[0]["votes"], 0);
    assert_eq!(state["members"].as_array().unwrap().len(), 1);
    node.stop().await.unwrap();
}
