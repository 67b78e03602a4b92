//! The owner's side of node subscriptions over a real (in-memory) internode connection.

use std::sync::Arc;
use std::time::Duration;

use listwire_cluster::transport::memory::MemoryNetwork;
use listwire_cluster::transport::{Client, ClusterSecret, Server, TransportConfig};
use listwire_cluster::NodeId;
use listwire_gateway::Router;
use listwire_storage::memory::MemoryStore;

use super::super::items;
use super::super::test_support::{principal, raw, submit};
use super::super::wire::{self, Subscribe};
use super::*;
use crate::host::{Host, HostConfig};

fn transport(id: &str) -> TransportConfig {
    let secret = ClusterSecret::new(vec![9u8; 32]).unwrap();
    TransportConfig::new("unit", NodeId::new(id).unwrap(), secret, 1)
}

/// Goal: a gateway node that stops reading for a while (more than a stream window of
/// frames, 128) is waited for, not cut off: once it reads again it gets every frame, in
/// order, and its subscription goes on. Only an overflow of the owner's own queue cuts it.
/// (Outside review, F8.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gateway_node_a_window_behind_is_waited_for() {
    let store = Arc::new(MemoryStore::new());
    let local = LocalRouter::new(Host::new(store.clone(), store, HostConfig::default()));
    let alice = principal(1, "alice");
    let list = local
        .create_list(&alice, raw(r#"{"title":"busy"}"#))
        .await
        .unwrap();
    let network = MemoryNetwork::new();
    let handler = InternodeHandler::new(local.clone(), 4096);
    let _server = Server::spawn(
        transport("owner"),
        network.listen("owner:1").unwrap(),
        handler,
    )
    .unwrap();
    let client = Client::new(
        transport("gateway"),
        Arc::new(network.connector("gateway:1")),
    )
    .unwrap();
    let owner = NodeId::new("owner").unwrap();
    let request = wire::encode(&Subscribe { list, since: None });
    let mut stream = client
        .peer(&owner, "owner:1")
        .open_stream(request, Duration::from_secs(5))
        .await
        .unwrap();
    let first = items::decode_item(stream.next().await.unwrap().unwrap()).unwrap();
    assert!(matches!(first, NodeItem::Started { seq: 1, .. }));
    // 300 ops, each its own batch and frame, while the gateway node reads nothing.
    for n in 0..300 {
        let op = format!(r#"{{"kind":"add_item","text":"item {n}","after":null}}"#);
        assert_eq!(submit(&local, &alice, list, &op).await, Ok(n + 2));
    }
    for expected in 2..=301u64 {
        let payload = tokio::time::timeout(Duration::from_secs(5), stream.next())
            .await
            .expect("frames keep coming")
            .expect("the stream is open")
            .expect("no error");
        match items::decode_item(payload).unwrap() {
            NodeItem::Frame { from, seq, .. } => {
                assert_eq!((from, seq), (Some(expected), expected));
            }
            other => panic!("expected frame {expected}, got {other:?}"),
        }
    }
}

/// Goal (second review, R4): ops of different lists in one forwarded batch do not wait for
/// each other. The handler submits a batch's ops one after another and each submission waits
/// for its list's activation (settle round trip, predecessor append, activation permit,
/// load): an op for a list that is slow to load (here its load is held, as after a failover
/// when it settles with an unreachable holder or reads a long tail) holds up the op of an
/// active list behind it, and every later batch of the lane.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_slow_to_load_does_not_hold_up_other_lists_in_its_batch() {
    use super::super::test_support::HeldLoads;
    use super::super::wire::{WireOp, WireOpBody, WirePrincipal};
    use listwire_storage::EventStore;
    use std::sync::atomic::Ordering;

    let inner = Arc::new(MemoryStore::new());
    let creator = LocalRouter::new(Host::new(
        inner.clone(),
        inner.clone(),
        HostConfig::default(),
    ));
    let alice = principal(1, "alice");
    let slow = creator
        .create_list(&alice, raw(r#"{"title":"slow to load"}"#))
        .await
        .unwrap();
    let quick = creator
        .create_list(&alice, raw(r#"{"title":"active"}"#))
        .await
        .unwrap();
    let held = HeldLoads::new(inner.clone());
    let local = LocalRouter::new(Host::new(
        held.clone(),
        inner.clone(),
        HostConfig::default(),
    ));
    // `quick` is active on this node; `slow` is not, and its load is held.
    local.snapshot(&alice, quick).await.unwrap();
    held.hold.store(true, Ordering::SeqCst);
    let handler = InternodeHandler::new(local.clone(), 64);
    let op = |list| WireOp {
        principal: WirePrincipal::from(&alice),
        list,
        op_id: uuid::Uuid::new_v4(),
        body: WireOpBody::Apply(r#"{"kind":"add_item","text":"x","after":null}"#.into()),
    };
    let batch = vec![op(slow), op(quick)];
    let answering = tokio::spawn(async move { handler.ops(batch).await });
    let applied = tokio::time::timeout(Duration::from_secs(3), async {
        while inner.head(quick).await.unwrap() < 2 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    held.hold.store(false, Ordering::SeqCst);
    held.gate.add_permits(1 << 20);
    let _ = answering.await;
    assert!(
        applied.is_ok(),
        "the op for an active list waited for another list's load"
    );
}
