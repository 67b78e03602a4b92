//! Regression tests for the durability-path hardening (issue "Correctness hardening of the
//! durability path, before the cluster builds on it"): component tests of the host and list
//! actors over the in-memory store behind a gate that can hold appends. No sockets.

use std::sync::Arc;
use std::time::Duration;

use listwire::host::{Host, HostConfig};
use listwire::router::LocalRouter;
use listwire_gateway::{ErrorCode, FrameSink, OpOutcome, Outbound, Principal, Reply, Router};
use listwire_storage::memory::MemoryStore;
use listwire_storage::EventStore;
use serde_json::value::RawValue;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::support::eventually;
use crate::support::gated::GatedStore;

pub(crate) fn alice() -> Principal {
    Principal {
        user_id: Uuid::from_u128(1),
        username: "alice".into(),
    }
}

pub(crate) fn raw(json: &str) -> Box<RawValue> {
    RawValue::from_string(json.to_owned()).unwrap()
}

pub(crate) fn gated_host(gate: &Arc<GatedStore>, config: HostConfig) -> (Host, LocalRouter) {
    let host = Host::new(gate.clone(), gate.inner.clone(), config);
    let router = LocalRouter::new(host.clone());
    (host, router)
}

/// Submits `op` with `op_id` and returns a receiver for its outcome.
pub(crate) async fn submit_with(
    router: &LocalRouter,
    list: Uuid,
    op_id: Uuid,
    op: &str,
) -> oneshot::Receiver<OpOutcome> {
    let (outcome_tx, outcome) = oneshot::channel();
    let reply = Reply::new(move |result| {
        let _ = outcome_tx.send(result);
    });
    router.submit(&alice(), list, op_id, raw(op), reply).await;
    outcome
}

pub(crate) fn add_op(text: &str) -> String {
    format!(r#"{{"kind":"add_item","text":"{text}","after":null}}"#)
}

/// Item 10: an unsubscribe that arrives while the list is at its in-flight limit is still
/// delivered (control messages are never refused for load), so no more frames reach the
/// connection that asked to stop.
#[tokio::test]
async fn an_unsubscribe_is_never_refused_as_busy() {
    let gate = GatedStore::new(Arc::new(MemoryStore::new()));
    let config = HostConfig {
        list_inflight_max: 3,
        ..HostConfig::default()
    };
    let (_host, router) = gated_host(&gate, config);
    let list = router
        .create_list(&alice(), raw(r#"{"title":"full"}"#))
        .await
        .unwrap();
    let (sink, frames) = FrameSink::new(7, alice().user_id, 64, CancellationToken::new());
    router.subscribe(&alice(), list, None, sink).await.unwrap();
    assert!(
        matches!(frames.try_recv(), Ok(Outbound::Frame(_))),
        "snapshot first"
    );

    gate.hold();
    let mut outcomes = Vec::new();
    for index in 0..3 {
        let op = add_op(&format!("held {index}"));
        outcomes.push(submit_with(&router, list, Uuid::new_v4(), &op).await);
    }
    eventually(Duration::from_secs(5), || async { gate.waiting() == 1 }).await;
    let refused = submit_with(&router, list, Uuid::new_v4(), &add_op("over")).await;
    let refused = refused.await.unwrap().unwrap_err();
    assert_eq!(refused.code, ErrorCode::Busy, "the list is at its limit");

    router.unsubscribe(list, 7).await;
    gate.open();
    for outcome in outcomes {
        outcome.await.unwrap().unwrap();
    }
    // The ops are durable and published; the unsubscribed connection got none of it.
    let later = submit_with(&router, list, Uuid::new_v4(), &add_op("after")).await;
    later.await.unwrap().unwrap();
    assert!(frames.try_recv().is_err(), "no frame after unsubscribing");
}

/// Item 8: a list actor that dies with an append in flight (here killed, as a panic would end
/// it) must not be replaced before that append has resolved; otherwise the successor may load
/// without the batch (and fork the history when it lands) or, on the embedded store, read it
/// before it is fsync'd. The successor loads after the held append commits and continues it.
#[tokio::test]
async fn a_list_that_died_mid_append_restarts_only_after_the_append_resolved() {
    let gate = GatedStore::new(Arc::new(MemoryStore::new()));
    let (host, router) = gated_host(&gate, HostConfig::default());
    let list = router
        .create_list(&alice(), raw(r#"{"title":"crashy"}"#))
        .await
        .unwrap();
    gate.hold();
    let first = submit_with(&router, list, Uuid::new_v4(), &add_op("in flight")).await;
    eventually(Duration::from_secs(5), || async { gate.waiting() == 1 }).await;
    assert!(host.kill(list).await, "the list had an actor");
    let dropped = first.await.unwrap().unwrap_err();
    assert_eq!(
        dropped.code,
        ErrorCode::Unavailable,
        "the killed op's outcome is unknown"
    );

    let successor = {
        let router = router.clone();
        tokio::spawn(async move {
            let op = add_op("after restart");
            submit_with(&router, list, Uuid::new_v4(), &op).await.await
        })
    };
    gate.open();
    let seq = successor.await.unwrap().unwrap().unwrap();
    assert_eq!(
        seq, 3,
        "the successor saw the resolved append and continued after it"
    );
    let history = gate.inner.read_batches(list, 0, 10).await.unwrap();
    let seqs: Vec<(u64, u64)> = history.iter().map(|b| (b.first_seq, b.last_seq)).collect();
    assert_eq!(seqs, vec![(1, 1), (2, 2), (3, 3)], "one contiguous history");
}

/// Item 9: a create that does not finish in time may still commit, so it is answered
/// `unavailable` with an unknown outcome (not `busy`, a definite refusal); the retry with the
/// same `op_id` then reaches the same list and is answered from its op-id window.
#[tokio::test]
async fn a_create_that_times_out_is_answered_as_outcome_unknown() {
    let gate = GatedStore::new(Arc::new(MemoryStore::new()));
    let config = HostConfig {
        request_timeout: Duration::from_millis(200),
        ..HostConfig::default()
    };
    let (_host, router) = gated_host(&gate, config);
    let op_id = Uuid::new_v4();
    let body = format!(r#"{{"title":"slow","op_id":"{op_id}"}}"#);
    gate.hold();
    let timed_out = router.create_list(&alice(), raw(&body)).await.unwrap_err();
    assert_eq!(timed_out.code, ErrorCode::Unavailable);
    assert!(
        timed_out.message.contains("unknown"),
        "{}",
        timed_out.message
    );
    gate.open();
    eventually(Duration::from_secs(5), || async { gate.appended() == 1 }).await;
    let list = router.create_list(&alice(), raw(&body)).await.unwrap();
    let again = router.create_list(&alice(), raw(&body)).await.unwrap();
    assert_eq!(list, again, "retries reach the same list");
    let history = gate.inner.read_batches(list, 0, 10).await.unwrap();
    assert_eq!(history.len(), 1, "created exactly once");
}

/// Item 9: an activation whose storage reads hang fails within the activation timeout with a
/// retryable error, and frees its place: the next request activates the list afresh.
#[tokio::test]
async fn a_hanging_activation_fails_within_its_timeout() {
    let gate = GatedStore::new(Arc::new(MemoryStore::new()));
    let config = HostConfig {
        activation_timeout: Duration::from_millis(200),
        ..HostConfig::default()
    };
    let (host, router) = gated_host(&gate, config.clone());
    let list = router
        .create_list(&alice(), raw(r#"{"title":"cold"}"#))
        .await
        .unwrap();
    host.shutdown(Duration::from_secs(5)).await;
    let (host, router) = gated_host(&gate, config);
    gate.hold_reads();
    let outcome = submit_with(&router, list, Uuid::new_v4(), &add_op("x")).await;
    let refused = outcome.await.unwrap().unwrap_err();
    assert_eq!(refused.code, ErrorCode::Unavailable);
    assert_eq!(host.active_lists(), 0, "the failed activation left no slot");
    gate.open();
    let outcome = submit_with(&router, list, Uuid::new_v4(), &add_op("y")).await;
    assert_eq!(outcome.await.unwrap().unwrap(), 2);
}

/// Item 3, actor side: ops that pile up behind an append in flight are sent as batches of at
/// most `batch_bytes_max` bytes (the next batch takes the rest), so no append exceeds what a
/// backend accepts in one write.
#[tokio::test]
async fn pending_ops_are_split_into_batches_of_bounded_bytes() {
    let gate = GatedStore::new(Arc::new(MemoryStore::new()));
    let config = HostConfig {
        batch_bytes_max: 16 << 10,
        ..HostConfig::default()
    };
    let (_host, router) = gated_host(&gate, config);
    let list = router
        .create_list(&alice(), raw(r#"{"title":"bulky"}"#))
        .await
        .unwrap();
    gate.hold();
    let text = "x".repeat(4000);
    let mut outcomes = Vec::new();
    for _ in 0..20 {
        outcomes.push(submit_with(&router, list, Uuid::new_v4(), &add_op(&text)).await);
    }
    eventually(Duration::from_secs(5), || async { gate.waiting() == 1 }).await;
    gate.open();
    for outcome in outcomes {
        outcome.await.unwrap().unwrap();
    }
    let history = gate.inner.read_batches(list, 0, 100).await.unwrap();
    assert_eq!(history.last().unwrap().last_seq, 21);
    assert!(
        history.len() >= 7,
        "20 ops of 4 KB in batches of 16 KiB: {}",
        history.len()
    );
    for batch in &history {
        assert!(
            batch.body.len() <= 16 << 10,
            "batch of {} bytes",
            batch.body.len()
        );
    }
}

/// Item 3, actor side: a list whose snapshots keep failing still passivates (its history is
/// durable; the next activation replays it) instead of re-encoding its snapshot every tick,
/// and it tries once, not on every tick.
#[tokio::test]
async fn a_failing_snapshot_does_not_pin_the_list_or_retry_every_tick() {
    let gate = GatedStore::new(Arc::new(MemoryStore::new()));
    let config = HostConfig {
        passivate_after: Duration::from_millis(100),
        ..HostConfig::default()
    };
    let (host, router) = gated_host(&gate, config);
    let list = router
        .create_list(&alice(), raw(r#"{"title":"unsnappable"}"#))
        .await
        .unwrap();
    gate.fail_snapshots();
    submit_with(&router, list, Uuid::new_v4(), &add_op("a"))
        .await
        .await
        .unwrap()
        .unwrap();
    eventually(Duration::from_secs(10), || async {
        host.active_lists() == 0
    })
    .await;
    assert_eq!(gate.snapshot_attempts(), 1, "one attempt, then passivated");
    let outcome = submit_with(&router, list, Uuid::new_v4(), &add_op("b")).await;
    assert_eq!(
        outcome.await.unwrap().unwrap(),
        3,
        "reloads from the full history"
    );
}

/// Review finding: a request cancelled while its list was activating (a client that went
/// away, a timeout around the call) left an actor-less slot in the host for good; enough of
/// them locked the node out of new lists. Activation now runs in its own task, and a list that
/// turns out not to exist leaves at the next housekeeping tick.
#[tokio::test]
async fn a_cancelled_activation_leaves_no_slot_behind() {
    let gate = GatedStore::new(Arc::new(MemoryStore::new()));
    let config = HostConfig {
        lists_active_max: 2,
        passivate_after: Duration::from_millis(200),
        ..HostConfig::default()
    };
    let (host, router) = gated_host(&gate, config);
    gate.hold_reads();
    let alice = alice();
    let read = router.snapshot(&alice, Uuid::new_v4());
    assert!(tokio::time::timeout(Duration::from_millis(50), read)
        .await
        .is_err());
    let create = router.create_list(&alice, raw(r#"{"title":"t"}"#));
    assert!(tokio::time::timeout(Duration::from_millis(50), create)
        .await
        .is_err());
    assert_eq!(host.active_lists(), 2);
    gate.open();
    eventually(Duration::from_secs(10), || async {
        host.active_lists() == 0
    })
    .await;
    router
        .create_list(&alice, raw(r#"{"title":"new"}"#))
        .await
        .expect("the node takes new lists again");
}
