//! Exactly-once across clocks and reused op ids (issue "Correctness hardening", items 6 and 7):
//! component tests of the host and list actors over the in-memory store. No sockets.

use std::sync::Arc;

use listwire::host::HostConfig;
use listwire_gateway::{ErrorCode, Principal, Reply, Router};
use listwire_storage::memory::MemoryStore;
use listwire_storage::EventStore;
use tokio::sync::oneshot;
use uuid::Uuid;

use crate::hardening::{add_op, alice, gated_host, raw, submit_with};
use crate::support::gated::GatedStore;

/// Item 6: event times come from the list owner's clock, never below the list's previous
/// event, so the op-id window (kept for ten minutes of list time) cannot be cut short by the
/// clock of whichever node received an op, nor reversed by a clock stepped back. The node's
/// production clock (`MonotonicClock`) reads the wall clock once and then advances with the
/// monotonic clock, so a wall-clock step does not move list time at all.
#[tokio::test]
async fn events_are_stamped_by_the_owner_clock_and_never_go_back() {
    use listwire::clock::{Clock, ManualClock};
    use listwire::domain::decode_batch;
    let gate = GatedStore::new(Arc::new(MemoryStore::new()));
    let clock = Arc::new(ManualClock::at(1_800_000_000_000));
    let config = HostConfig {
        clock: clock.clone(),
        ..HostConfig::default()
    };
    let (_host, router) = gated_host(&gate, config);
    let list = router
        .create_list(&alice(), raw(r#"{"title":"timed"}"#))
        .await
        .unwrap();
    clock.set(1_800_000_005_000);
    submit_with(&router, list, Uuid::new_v4(), &add_op("later"))
        .await
        .await
        .unwrap()
        .unwrap();
    clock.set(1_700_000_000_000);
    submit_with(&router, list, Uuid::new_v4(), &add_op("stepped back"))
        .await
        .await
        .unwrap()
        .unwrap();
    let mut times = Vec::new();
    for batch in gate.inner.read_batches(list, 0, 10).await.unwrap() {
        times.extend(
            decode_batch(&batch.body)
                .unwrap()
                .into_iter()
                .map(|e| e.at_ms),
        );
    }
    assert_eq!(
        times,
        vec![1_800_000_000_000, 1_800_000_005_000, 1_800_000_005_000]
    );
    assert!(clock.now_ms() < times[2], "the clock did go back");
}

/// A clock that reads a wall time that tests can step, on every call: what the router's
/// clock was before the fix.
#[derive(Debug)]
struct SteppableWall(std::sync::atomic::AtomicU64);

impl listwire::clock::Clock for SteppableWall {
    fn now_ms(&self) -> u64 {
        self.0.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Applies op A, steps the wall clock forward by fifteen minutes, applies six more ops (the
/// window keeps only three beyond ten minutes of list time), then retries A. Returns whether
/// the retry was answered with A's seq (exactly once) rather than applied again.
async fn retry_after_a_wall_step(
    clock: Arc<dyn listwire::clock::Clock>,
    wall: &SteppableWall,
) -> bool {
    let gate = GatedStore::new(Arc::new(MemoryStore::new()));
    let mut config = HostConfig {
        clock,
        ..HostConfig::default()
    };
    config.limits.op_ids_kept_min = 3;
    let (_host, router) = gated_host(&gate, config);
    let list = router
        .create_list(&alice(), raw(r#"{"title":"stepped"}"#))
        .await
        .unwrap();
    // A rename, which (unlike an add with an id derived from its op id) applies again.
    let rename = r#"{"kind":"rename","title":"renamed"}"#;
    let op_a = Uuid::new_v4();
    let first = submit_with(&router, list, op_a, rename)
        .await
        .await
        .unwrap()
        .unwrap();
    wall.0
        .fetch_add(15 * 60 * 1000, std::sync::atomic::Ordering::SeqCst);
    for index in 0..6 {
        let op = add_op(&format!("after {index}"));
        submit_with(&router, list, Uuid::new_v4(), &op)
            .await
            .await
            .unwrap()
            .unwrap();
    }
    let retried = submit_with(&router, list, op_a, rename)
        .await
        .await
        .unwrap()
        .unwrap();
    retried == first
}

/// Item 6, the scenario itself: a forward step of fifteen minutes used to cut the op-id window
/// to its floor, so a client's retry was applied twice. Two defences now hold it: the node's
/// clock reads the wall clock once (so a step does not reach event times), and the window's
/// own clock advances by at most the real time between events (so even a clock that does
/// step, read on every op as the router's once was, cannot age the window).
#[tokio::test]
async fn a_wall_clock_step_cannot_break_exactly_once() {
    let wall = Arc::new(SteppableWall(std::sync::atomic::AtomicU64::new(
        1_800_000_000_000,
    )));
    assert!(
        retry_after_a_wall_step(wall.clone(), &wall).await,
        "a clock read per op steps event times, but not the window's clock"
    );
    let wall = Arc::new(SteppableWall(std::sync::atomic::AtomicU64::new(
        1_800_000_000_000,
    )));
    let reader = wall.clone();
    let clock = listwire::clock::MonotonicClock::from_wall(move || {
        listwire::clock::Clock::now_ms(reader.as_ref())
    });
    assert!(
        retry_after_a_wall_step(Arc::new(clock), &wall).await,
        "the node clock ignores the step: the retry is answered with the first seq"
    );
}

/// Review finding: a node that *starts* with a clock fifteen minutes fast and takes over a list
/// (here: a restart) jumped list time on its first event and pruned the window, so a client's
/// retry of an op from before the restart was applied twice. The window's clock does not
/// advance across an owner change.
#[tokio::test]
async fn an_owner_started_with_a_fast_clock_keeps_retries_exactly_once() {
    use listwire::clock::MonotonicClock;
    let gate = GatedStore::new(Arc::new(MemoryStore::new()));
    let t0 = 1_800_000_000_000;
    let mut config = HostConfig {
        clock: Arc::new(MonotonicClock::starting_at(t0)),
        ..HostConfig::default()
    };
    config.limits.op_ids_kept_min = 3;
    let (host, router) = gated_host(&gate, config.clone());
    let list = router
        .create_list(&alice(), raw(r#"{"title":"skew"}"#))
        .await
        .unwrap();
    let rename = r#"{"kind":"rename","title":"renamed"}"#;
    let op_a = Uuid::new_v4();
    let first = submit_with(&router, list, op_a, rename)
        .await
        .await
        .unwrap()
        .unwrap();
    host.shutdown(std::time::Duration::from_secs(5)).await;
    config.clock = Arc::new(MonotonicClock::starting_at(t0 + 15 * 60 * 1000));
    let (_host, router) = gated_host(&gate, config);
    for index in 0..6 {
        let op = add_op(&format!("after {index}"));
        submit_with(&router, list, Uuid::new_v4(), &op)
            .await
            .await
            .unwrap()
            .unwrap();
    }
    let retried = submit_with(&router, list, op_a, rename)
        .await
        .await
        .unwrap()
        .unwrap();
    assert_eq!(retried, first, "the retry is answered with the first seq");
}

/// Item 7: an op id inside the window matched on the op id alone, so a different op, or
/// another user's op, reusing it was acked with the first op's seq and silently not applied.
/// The window now remembers a digest of (sender, op): only a true retry gets the first answer;
/// a reuse gets `conflict`. The same holds for a create reusing its `op_id`.
#[tokio::test]
async fn a_reused_op_id_is_a_conflict_not_a_silent_ack() {
    let gate = GatedStore::new(Arc::new(MemoryStore::new()));
    let (_host, router) = gated_host(&gate, HostConfig::default());
    let list = router
        .create_list(&alice(), raw(r#"{"title":"public","visibility":"public"}"#))
        .await
        .unwrap();
    let op_id = Uuid::new_v4();
    let rename = r#"{"kind":"rename","title":"first"}"#;
    let first = submit_with(&router, list, op_id, rename)
        .await
        .await
        .unwrap();
    assert_eq!(first, Ok(2));
    let retry = submit_with(&router, list, op_id, rename)
        .await
        .await
        .unwrap();
    assert_eq!(retry, Ok(2), "a true retry gets the first answer");

    let other_op = r#"{"kind":"rename","title":"second"}"#;
    let reused = submit_with(&router, list, op_id, other_op)
        .await
        .await
        .unwrap();
    assert_eq!(reused.unwrap_err().code, ErrorCode::Conflict);

    let bob = Principal {
        user_id: Uuid::from_u128(2),
        username: "bob".into(),
    };
    let (outcome_tx, outcome) = oneshot::channel();
    let reply = Reply::new(move |result| {
        let _ = outcome_tx.send(result);
    });
    router.submit(&bob, list, op_id, raw(rename), reply).await;
    let borrowed = outcome.await.unwrap().unwrap_err();
    assert_eq!(
        borrowed.code,
        ErrorCode::Conflict,
        "another user's op is not a retry"
    );
    assert_eq!(
        gate.inner.head(list).await.unwrap(),
        2,
        "nothing else was applied"
    );

    let create_id = Uuid::new_v4();
    let create = |title: &str| format!(r#"{{"title":"{title}","op_id":"{create_id}"}}"#);
    let created = router
        .create_list(&alice(), raw(&create("one")))
        .await
        .unwrap();
    let again = router
        .create_list(&alice(), raw(&create("one")))
        .await
        .unwrap();
    assert_eq!(created, again);
    let different = router.create_list(&alice(), raw(&create("two"))).await;
    assert_eq!(different.unwrap_err().code, ErrorCode::Conflict);
}
