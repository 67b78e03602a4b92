//! Component tests of the host and list actors over the in-memory store: passivation and
//! reactivation, snapshots, admission control and stale-owner fencing. No sockets.

use std::sync::Arc;
use std::time::Duration;

use listwire::host::{Host, HostConfig};
use listwire::router::LocalRouter;
use listwire_gateway::{EdgeError, OpOutcome, Principal, Reply, Router};
use listwire_storage::memory::MemoryStore;
use listwire_storage::EventStore;
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::support::eventually;

fn alice() -> Principal {
    Principal {
        user_id: Uuid::from_u128(1),
        username: "alice".into(),
    }
}

fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap()
}

fn host(store: &Arc<MemoryStore>, config: HostConfig) -> (Host, LocalRouter) {
    let host = Host::new(store.clone(), store.clone(), config);
    let router = LocalRouter::new(host.clone());
    (host, router)
}

/// Submits an op and returns a receiver for its outcome.
async fn submit(router: &LocalRouter, list: Uuid, text: &str) -> oneshot::Receiver<OpOutcome> {
    let (outcome_tx, outcome) = oneshot::channel();
    let reply = Reply::new(move |result| {
        let _ = outcome_tx.send(result);
    });
    let op = raw(&format!(
        r#"{{"kind":"add_item","text":"{text}","after":null}}"#
    ));
    router
        .submit(&alice(), list, Uuid::new_v4(), op, reply)
        .await;
    outcome
}

async fn add(router: &LocalRouter, list: Uuid, text: &str) -> Result<u64, EdgeError> {
    submit(router, list, text).await.await.unwrap()
}

/// An idle list passivates after writing a snapshot, and comes back with its state on next use.
#[tokio::test]
async fn idle_lists_passivate_with_a_snapshot_and_reactivate() {
    let store = Arc::new(MemoryStore::new());
    let config = HostConfig {
        passivate_after: Duration::from_millis(100),
        ..HostConfig::default()
    };
    let (host, router) = host(&store, config);
    let list = router
        .create_list(&alice(), raw(r#"{"title":"idle"}"#))
        .await
        .unwrap();
    for index in 0..3 {
        add(&router, list, &format!("item {index}")).await.unwrap();
    }
    assert_eq!(host.active_lists(), 1);
    eventually(Duration::from_secs(10), || async {
        host.active_lists() == 0
    })
    .await;
    let snapshot = store
        .latest_snapshot(list)
        .await
        .unwrap()
        .expect("snapshot written on passivation");
    assert_eq!(snapshot.seq, 4);
    assert_eq!(add(&router, list, "after reactivation").await.unwrap(), 5);
    let state: serde_json::Value =
        serde_json::from_slice(&router.snapshot(&alice(), list).await.unwrap()).unwrap();
    assert_eq!(state["items"].as_array().unwrap().len(), 4);
}

/// Snapshots are written every `snapshot_every` events and history before them is pruned;
/// a fresh host rebuilds the same state from snapshot + tail.
#[tokio::test]
async fn periodic_snapshots_and_reload() {
    let store = Arc::new(MemoryStore::new());
    let config = HostConfig {
        snapshot_every: 5,
        ..HostConfig::default()
    };
    let (_host, router) = host(&store, config.clone());
    let list = router
        .create_list(&alice(), raw(r#"{"title":"snap"}"#))
        .await
        .unwrap();
    for index in 0..11 {
        add(&router, list, &format!("item {index}")).await.unwrap();
    }
    eventually(Duration::from_secs(10), || async {
        let latest = store.latest_snapshot(list).await.unwrap();
        latest.is_some_and(|snapshot| snapshot.seq >= 10)
    })
    .await;
    let before = router.snapshot(&alice(), list).await.unwrap();
    let (_other_host, other_router) = host(&store, config);
    assert_eq!(other_router.snapshot(&alice(), list).await.unwrap(), before);
}

/// A list with too many unanswered ops answers `busy` instead of queueing without bound.
#[tokio::test(flavor = "current_thread")]
async fn overloaded_list_answers_busy() {
    let store = Arc::new(MemoryStore::new());
    let config = HostConfig {
        list_inflight_max: 4,
        ..HostConfig::default()
    };
    let (_host, router) = host(&store, config);
    let list = router
        .create_list(&alice(), raw(r#"{"title":"busy"}"#))
        .await
        .unwrap();
    // On one thread nothing else runs until we await an answer, so all 20 are in flight at once.
    let mut outcomes = Vec::new();
    for index in 0..20 {
        outcomes.push(submit(&router, list, &format!("{index}")).await);
    }
    let mut busy = 0;
    let mut acked = 0;
    for outcome in outcomes {
        match outcome.await.unwrap() {
            Ok(_) => acked += 1,
            Err(error) if error.code == listwire_gateway::ErrorCode::Busy => busy += 1,
            Err(error) => panic!("unexpected {error}"),
        }
    }
    assert_eq!((acked, busy), (4, 16));
}

/// Two hosts that both believe they own a list: the conditional append lets only one write;
/// the stale one answers `moved` and stops, and a retry reloads and succeeds.
#[tokio::test]
async fn stale_owner_is_fenced_off_by_the_conditional_append() {
    let store = Arc::new(MemoryStore::new());
    let (_first_host, first) = host(&store, HostConfig::default());
    let (second_host, second) = host(&store, HostConfig::default());
    let list = first
        .create_list(&alice(), raw(r#"{"title":"contested"}"#))
        .await
        .unwrap();
    // Both activate at seq 1.
    second.snapshot(&alice(), list).await.unwrap();
    assert_eq!(add(&first, list, "first writer").await.unwrap(), 2);
    let stale = add(&second, list, "stale writer").await.unwrap_err();
    assert_eq!(stale.code, listwire_gateway::ErrorCode::Moved);
    eventually(Duration::from_secs(5), || async {
        second_host.active_lists() == 0
    })
    .await;
    assert_eq!(add(&second, list, "after reload").await.unwrap(), 3);
    assert_eq!(store.head(list).await.unwrap(), 3);
}

/// Shutdown flushes in-flight ops, answers them, and writes a final snapshot.
#[tokio::test]
async fn shutdown_flushes_and_snapshots() {
    let store = Arc::new(MemoryStore::new());
    let (host, router) = host(&store, HostConfig::default());
    let list = router
        .create_list(&alice(), raw(r#"{"title":"bye"}"#))
        .await
        .unwrap();
    let texts: Vec<String> = (0..10).map(|index| index.to_string()).collect();
    let pending: Vec<_> =
        futures_util::future::join_all(texts.iter().map(|text| submit(&router, list, text))).await;
    host.shutdown(Duration::from_secs(10)).await;
    for outcome in pending {
        assert!(outcome.await.unwrap().is_ok());
    }
    assert_eq!(store.latest_snapshot(list).await.unwrap().unwrap().seq, 11);
    let refused = add(&router, list, "too late").await.unwrap_err();
    assert_eq!(refused.code, listwire_gateway::ErrorCode::Unavailable);
}

/// Reads of lists that do not exist answer `not_found` and leave no actor behind, so probing
/// random ids cannot fill the node.
#[tokio::test]
async fn missing_lists_leave_no_actor_behind() {
    let store = Arc::new(MemoryStore::new());
    let (host, router) = host(&store, HostConfig::default());
    for _ in 0..50 {
        let missing = router.snapshot(&alice(), Uuid::new_v4()).await.unwrap_err();
        assert_eq!(missing.code, listwire_gateway::ErrorCode::NotFound);
        let refused = add(&router, Uuid::new_v4(), "nowhere").await.unwrap_err();
        assert_eq!(refused.code, listwire_gateway::ErrorCode::NotFound);
    }
    eventually(Duration::from_secs(5), || async {
        host.active_lists() == 0
    })
    .await;
}

/// The "my lists" index is derived after events are durable; if an entry is lost (a crash
/// between the two writes), activating the list rewrites it.
#[tokio::test]
async fn activation_repairs_the_my_lists_index() {
    use listwire_storage::AccountStore;
    let store = Arc::new(MemoryStore::new());
    let (first_host, router) = host(&store, HostConfig::default());
    let list = router
        .create_list(&alice(), raw(r#"{"title":"indexed"}"#))
        .await
        .unwrap();
    eventually(Duration::from_secs(5), || async {
        store.memberships(alice().user_id, 10).await.unwrap().len() == 1
    })
    .await;
    first_host.shutdown(Duration::from_secs(5)).await;
    store
        .remove_membership(alice().user_id, list)
        .await
        .unwrap();

    let (_second_host, router) = host(&store, HostConfig::default());
    router.snapshot(&alice(), list).await.unwrap();
    eventually(Duration::from_secs(5), || async {
        let entries = store.memberships(alice().user_id, 10).await.unwrap();
        entries.len() == 1 && entries[0].role == "owner" && entries[0].title == "indexed"
    })
    .await;
}
