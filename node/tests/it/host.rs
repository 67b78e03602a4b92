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

/// Submits a raw op and returns a receiver for its outcome.
async fn submit_op(router: &LocalRouter, list: Uuid, op: &str) -> oneshot::Receiver<OpOutcome> {
    let (outcome_tx, outcome) = oneshot::channel();
    let reply = Reply::new(move |result| {
        let _ = outcome_tx.send(result);
    });
    router
        .submit(&alice(), list, Uuid::new_v4(), raw(op), reply)
        .await;
    outcome
}

/// Submits an `add_item` and returns a receiver for its outcome.
async fn submit(router: &LocalRouter, list: Uuid, text: &str) -> oneshot::Receiver<OpOutcome> {
    submit_op(
        router,
        list,
        &format!(r#"{{"kind":"add_item","text":"{text}","after":null}}"#),
    )
    .await
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

/// Snapshots are written after `snapshot_every` events (spaced further for big states) and
/// history before them is pruned;
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
        // The first snapshot comes after `snapshot_every` events; later ones are spaced by size.
        latest.is_some_and(|snapshot| snapshot.seq >= 5)
    })
    .await;
    let history = store.read_batches(list, 0, 100).await.unwrap();
    assert!(
        history.first().is_some_and(|batch| batch.first_seq > 1),
        "history behind the snapshot is pruned"
    );
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

fn sink() -> (
    listwire_gateway::FrameSink,
    listwire_gateway::OutboundReceiver,
) {
    listwire_gateway::FrameSink::new(
        7,
        alice().user_id,
        64,
        tokio_util::sync::CancellationToken::new(),
    )
}

/// When a list actor stops on an error (here: fenced off as a stale owner), its subscribers
/// are told, so they resubscribe instead of waiting on a list that sends nothing more.
#[tokio::test]
async fn subscribers_of_a_stopped_list_are_told_to_resubscribe() {
    let store = Arc::new(MemoryStore::new());
    let (_first_host, first) = host(&store, HostConfig::default());
    let (_second_host, second) = host(&store, HostConfig::default());
    let list = first
        .create_list(&alice(), raw(r#"{"title":"contested"}"#))
        .await
        .unwrap();
    let (sink, frames) = sink();
    second.subscribe(&alice(), list, None, sink).await.unwrap();
    assert!(
        matches!(
            frames.recv_async().await.unwrap(),
            listwire_gateway::Outbound::Frame(_)
        ),
        "snapshot first"
    );
    add(&first, list, "first writer").await.unwrap();
    assert_eq!(
        add(&second, list, "stale").await.unwrap_err().code,
        listwire_gateway::ErrorCode::Moved
    );
    match frames.recv_async().await.unwrap() {
        listwire_gateway::Outbound::SubscriptionEnded { list: ended, frame } => {
            assert_eq!(ended, list);
            let frame: serde_json::Value = serde_json::from_slice(&frame).unwrap();
            assert_eq!(frame["code"], "unavailable");
        }
        other => panic!("expected the subscription to end, got {other:?}"),
    }
}

/// An event store whose first snapshot read fails, as a storage hiccup during activation.
struct FlakyFirstLoad {
    inner: Arc<MemoryStore>,
    failed: std::sync::atomic::AtomicBool,
}

#[async_trait::async_trait]
impl EventStore for FlakyFirstLoad {
    async fn append(
        &self,
        list: Uuid,
        batch: listwire_storage::Batch,
    ) -> Result<(), listwire_storage::Error> {
        self.inner.append(list, batch).await
    }
    async fn head(&self, list: Uuid) -> Result<u64, listwire_storage::Error> {
        self.inner.head(list).await
    }
    async fn read_batches(
        &self,
        list: Uuid,
        after: u64,
        max: usize,
    ) -> Result<Vec<listwire_storage::Batch>, listwire_storage::Error> {
        self.inner.read_batches(list, after, max).await
    }
    async fn write_snapshot(
        &self,
        list: Uuid,
        snapshot: listwire_storage::Snapshot,
    ) -> Result<(), listwire_storage::Error> {
        self.inner.write_snapshot(list, snapshot).await
    }
    async fn latest_snapshot(
        &self,
        list: Uuid,
    ) -> Result<Option<listwire_storage::Snapshot>, listwire_storage::Error> {
        if !self.failed.swap(true, std::sync::atomic::Ordering::SeqCst) {
            return Err(listwire_storage::Error::Unavailable("injected".into()));
        }
        self.inner.latest_snapshot(list).await
    }
    async fn prune(&self, list: Uuid, up_to: u64) -> Result<(), listwire_storage::Error> {
        self.inner.prune(list, up_to).await
    }
    async fn close(&self) -> Result<(), listwire_storage::Error> {
        self.inner.close().await
    }
}

/// A failed activation answers `unavailable` and leaves no orphan actor: a request that waited
/// on the failed activation gets a fresh one, and whatever subscription succeeded receives the
/// list's later deltas (an orphan actor would hold it and never hear of them).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_activation_leaves_no_orphan_actor() {
    let memory = Arc::new(MemoryStore::new());
    let (_creator, creator_router) = host(&memory, HostConfig::default());
    let list = creator_router
        .create_list(&alice(), raw(r#"{"title":"flaky"}"#))
        .await
        .unwrap();
    let flaky = Arc::new(FlakyFirstLoad {
        inner: memory.clone(),
        failed: std::sync::atomic::AtomicBool::new(false),
    });
    let host = Host::new(flaky, memory.clone(), HostConfig::default());
    let router = LocalRouter::new(host.clone());
    let (sink, frames) = sink();
    let principal = alice();
    let (subscribed, read) = tokio::join!(
        router.subscribe(&principal, list, None, sink),
        router.snapshot(&principal, list)
    );
    assert!(
        subscribed.is_err() || read.is_err(),
        "the first activation fails"
    );
    if subscribed.is_err() {
        let (sink, retry_frames) = self::sink();
        router.subscribe(&alice(), list, None, sink).await.unwrap();
        return check_live(&router, &host, list, retry_frames).await;
    }
    check_live(&router, &host, list, frames).await;
}

async fn check_live(
    router: &LocalRouter,
    host: &Host,
    list: Uuid,
    frames: listwire_gateway::OutboundReceiver,
) {
    assert!(
        matches!(
            frames.recv_async().await.unwrap(),
            listwire_gateway::Outbound::Frame(_)
        ),
        "snapshot"
    );
    add(router, list, "reaches the subscriber").await.unwrap();
    let delta = tokio::time::timeout(Duration::from_secs(5), frames.recv_async())
        .await
        .expect("the live delta arrives")
        .unwrap();
    assert!(matches!(delta, listwire_gateway::Outbound::Frame(_)));
    assert_eq!(host.active_lists(), 1);
}
