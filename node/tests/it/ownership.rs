//! The host enforces ownership (issue "The shard cluster"): it refuses lists its view gives to
//! another node, naming the owner; it hands off a list it stops owning (subscribers are told it
//! moved, what it accepted is flushed); and a list whose follower is ahead of it reloads.
//! Component tests with a hand-set ownership over the in-memory store. No sockets.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use listwire::host::{Host, HostConfig, Owner, Ownership};
use listwire::list::node_sink::NodeItem;
use listwire::router::LocalRouter;
use listwire_gateway::{ErrorCode, FrameSink, Outbound, Router};
use listwire_storage::memory::MemoryStore;
use listwire_storage::EventStore;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::hardening::{add_op, alice, raw, submit_with};
use crate::support::eventually;

/// Ownership that can be taken away: while `elsewhere` is set, node "node-b" owns every list.
#[derive(Default)]
struct Switch {
    elsewhere: AtomicBool,
}

impl Ownership for Switch {
    fn check(&self, _list: Uuid) -> Owner {
        if self.elsewhere.load(Ordering::SeqCst) {
            Owner::Elsewhere(Some("node-b".into()))
        } else {
            Owner::Here
        }
    }
}

fn host(store: &Arc<MemoryStore>, ownership: Arc<Switch>) -> (Host, LocalRouter) {
    let host = Host::with_ownership(
        store.clone(),
        store.clone(),
        HostConfig::default(),
        ownership,
    );
    let router = LocalRouter::new(host.clone());
    (host, router)
}

/// A list owned elsewhere is refused `moved` naming the owner, and never activated here.
#[tokio::test]
async fn an_unowned_list_is_refused_with_its_owner() {
    let store = Arc::new(MemoryStore::new());
    let switch = Arc::new(Switch::default());
    let (host, router) = host(&store, switch.clone());
    let list = router
        .create_list(&alice(), raw(r#"{"title":"mine"}"#))
        .await
        .unwrap();
    host.release_all();
    eventually(Duration::from_secs(5), || async {
        host.active_lists() == 0
    })
    .await;
    switch.elsewhere.store(true, Ordering::SeqCst);
    let refused = submit_with(&router, list, Uuid::new_v4(), &add_op("x")).await;
    let refused = refused.await.unwrap().unwrap_err();
    assert_eq!(refused.code, ErrorCode::Moved);
    assert!(refused.message.contains("node-b"), "{}", refused.message);
    assert_eq!(host.active_lists(), 0, "not activated");
}

/// When placement moves a list away, its old owner hands it off: the ops it accepted are
/// flushed and acked, connection subscribers get `moved`, node subscribers get `End(moved)`,
/// and the list leaves the host; later ops are refused `moved`.
#[tokio::test]
async fn a_list_that_moves_away_is_handed_off() {
    let store = Arc::new(MemoryStore::new());
    let switch = Arc::new(Switch::default());
    let (host, router) = host(&store, switch.clone());
    let list = router
        .create_list(&alice(), raw(r#"{"title":"moving"}"#))
        .await
        .unwrap();
    let (sink, frames) = FrameSink::new(7, alice().user_id, 64, CancellationToken::new());
    router.subscribe(&alice(), list, None, sink).await.unwrap();
    let node = router.subscribe_node(list, None, 64).await.unwrap();
    assert!(matches!(
        node.next().await,
        Some(NodeItem::Started { seq: 1, .. })
    ));
    let accepted = submit_with(&router, list, Uuid::new_v4(), &add_op("accepted")).await;
    switch.elsewhere.store(true, Ordering::SeqCst);
    assert_eq!(host.release_unowned().len(), 1);
    assert_eq!(
        accepted.await.unwrap(),
        Ok(2),
        "accepted before the move: flushed"
    );
    eventually(Duration::from_secs(5), || async {
        host.active_lists() == 0
    })
    .await;
    let ended = loop {
        match frames.recv_async().await.unwrap() {
            Outbound::SubscriptionEnded { frame, .. } => {
                break String::from_utf8(frame.to_vec()).unwrap()
            }
            Outbound::Frame(_) => continue,
        }
    };
    assert!(ended.contains("moved"), "{ended}");
    loop {
        match node.next().await {
            Some(NodeItem::End { code, .. }) => {
                assert_eq!(code, ErrorCode::Moved);
                break;
            }
            Some(_) => continue,
            None => panic!("the node subscription ended without saying why"),
        }
    }
    assert_eq!(
        store.latest_snapshot(list).await.unwrap().unwrap().seq,
        2,
        "snapshotted"
    );
}

/// Two hosts both believe they own a list: the second appends, and a follower that saw that
/// event subscribes at the first with `since` past its head. The first is stale: it answers
/// `moved` and stops, so the next request reloads it from storage, never serving old state.
#[tokio::test]
async fn a_follower_ahead_of_the_owner_makes_the_stale_owner_reload() {
    let store = Arc::new(MemoryStore::new());
    let (stale_host, stale) = host(&store, Arc::new(Switch::default()));
    let (_fresh_host, fresh) = host(&store, Arc::new(Switch::default()));
    let list = stale
        .create_list(&alice(), raw(r#"{"title":"two owners"}"#))
        .await
        .unwrap();
    let seq = submit_with(&fresh, list, Uuid::new_v4(), &add_op("newer")).await;
    assert_eq!(seq.await.unwrap(), Ok(2));
    let (sink, _frames) = FrameSink::new(9, alice().user_id, 64, CancellationToken::new());
    let refused = stale
        .subscribe(&alice(), list, Some(2), sink)
        .await
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Moved);
    eventually(Duration::from_secs(5), || async {
        stale_host.active_lists() == 0
    })
    .await;
    let state: serde_json::Value =
        serde_json::from_slice(&stale.snapshot(&alice(), list).await.unwrap()).unwrap();
    assert_eq!(state["seq"], 2, "reloaded, not the old copy");
}
