//! A list changing owner while its old owner still flushes (outside review of the cluster,
//! F1): the old owner settles the list on request (answers once what it accepted is
//! durable), a new owner's load waits for that, and a copy loaded too early notices the store
//! got ahead of it and reloads. Component tests of the host over the in-memory store.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use listwire::host::{Host, HostConfig, Owner, Ownership};
use listwire::router::LocalRouter;
use listwire_gateway::Router;
use listwire_storage::memory::MemoryStore;
use listwire_storage::EventStore;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::hardening::{add_op, alice, gated_host, raw, submit_with};
use crate::support::eventually;
use crate::support::gated::GatedStore;

async fn seq_of(router: &LocalRouter, list: Uuid) -> u64 {
    let json = router.snapshot(&alice(), list).await.unwrap();
    let state: serde_json::Value = serde_json::from_slice(&json).unwrap();
    state["seq"].as_u64().unwrap()
}

/// Goal: `Host::settle` answers only once the op the list accepted is durable, so a node that
/// loads the list after asking sees it.
#[tokio::test]
async fn settle_answers_once_accepted_ops_are_durable() {
    let gate = GatedStore::new(Arc::new(MemoryStore::new()));
    let (host, router) = gated_host(&gate, HostConfig::default());
    let list = router
        .create_list(&alice(), raw(r#"{"title":"flushing"}"#))
        .await
        .unwrap();
    gate.hold();
    let accepted = submit_with(&router, list, Uuid::new_v4(), &add_op("in flight")).await;
    eventually(Duration::from_secs(5), || async { gate.waiting() == 1 }).await;
    let settling = {
        let host = host.clone();
        tokio::spawn(async move { host.settle(list, Duration::from_secs(10)).await })
    };
    // While the append is held, the settle cannot have answered.
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        !settling.is_finished(),
        "answered with an op still in flight"
    );
    gate.open();
    settling.await.unwrap();
    assert_eq!(
        gate.inner.head(list).await.unwrap(),
        2,
        "durable when settled"
    );
    assert_eq!(accepted.await.unwrap(), Ok(2));
}

/// Goal: settling a list this node does not have, or has nothing in flight for, answers at
/// once; and a settle that cannot finish gives up at its deadline.
#[tokio::test]
async fn settle_is_quick_when_idle_and_bounded_when_stuck() {
    let gate = GatedStore::new(Arc::new(MemoryStore::new()));
    let (host, router) = gated_host(&gate, HostConfig::default());
    let started = tokio::time::Instant::now();
    host.settle(Uuid::new_v4(), Duration::from_secs(10)).await;
    let list = router
        .create_list(&alice(), raw(r#"{"title":"idle"}"#))
        .await
        .unwrap();
    host.settle(list, Duration::from_secs(10)).await;
    assert!(started.elapsed() < Duration::from_secs(5), "no waiting");
    gate.hold();
    let _stuck = submit_with(&router, list, Uuid::new_v4(), &add_op("stuck")).await;
    eventually(Duration::from_secs(5), || async { gate.waiting() == 1 }).await;
    let deadline = Duration::from_millis(300);
    tokio::time::timeout(Duration::from_secs(5), host.settle(list, deadline))
        .await
        .expect("settle gives up at its deadline");
    gate.open();
}

/// Ownership that owns everything but holds every load in `settle` until released.
struct HeldSettle {
    gate: Semaphore,
}

#[async_trait]
impl Ownership for HeldSettle {
    fn check(&self, _list: Uuid) -> Owner {
        Owner::Here
    }

    async fn settle(&self, _list: Uuid) {
        self.gate.acquire().await.unwrap().forget();
    }
}

/// Goal: a list's activation waits for `Ownership::settle` before it loads, so an op the
/// previous holder made durable meanwhile is in the new copy.
#[tokio::test]
async fn a_load_waits_for_the_previous_holder_to_settle() {
    let store = Arc::new(MemoryStore::new());
    let old_owner = LocalRouter::new(Host::new(
        store.clone(),
        store.clone(),
        HostConfig::default(),
    ));
    let list = old_owner
        .create_list(&alice(), raw(r#"{"title":"moving"}"#))
        .await
        .unwrap();
    let ownership = Arc::new(HeldSettle {
        gate: Semaphore::new(0),
    });
    let new_host = Host::with_ownership(
        store.clone(),
        store.clone(),
        HostConfig::default(),
        ownership.clone(),
    );
    let new_owner = LocalRouter::new(new_host.clone());
    let reading = {
        let new_owner = new_owner.clone();
        tokio::spawn(async move { seq_of(&new_owner, list).await })
    };
    eventually(Duration::from_secs(5), || async {
        new_host.active_lists() == 1
    })
    .await;
    // The old owner's last accepted op becomes durable while the new one waits to settle.
    let last = submit_with(&old_owner, list, Uuid::new_v4(), &add_op("last")).await;
    assert_eq!(last.await.unwrap(), Ok(2));
    ownership.gate.add_permits(1);
    assert_eq!(
        reading.await.unwrap(),
        2,
        "the new copy includes the old owner's op"
    );
}

/// Goal: a copy loaded before the previous owner's last append landed (the settle could not
/// wait for it) notices at its next head recheck that the store is ahead, and reloads, so
/// reads catch up without any write to this list. A copy that wrote is current and is not
/// rechecked.
#[tokio::test]
async fn a_copy_behind_the_store_reloads_at_its_head_recheck() {
    let store = Arc::new(MemoryStore::new());
    let config = HostConfig {
        head_rechecks: vec![Duration::from_millis(100), Duration::from_millis(300)],
        ..HostConfig::default()
    };
    let other = LocalRouter::new(Host::new(
        store.clone(),
        store.clone(),
        HostConfig::default(),
    ));
    let list = other
        .create_list(&alice(), raw(r#"{"title":"late flush"}"#))
        .await
        .unwrap();
    let host = Host::new(store.clone(), store.clone(), config);
    let router = LocalRouter::new(host.clone());
    assert_eq!(seq_of(&router, list).await, 1, "loaded at seq 1");
    let late = submit_with(&other, list, Uuid::new_v4(), &add_op("landed late")).await;
    assert_eq!(late.await.unwrap(), Ok(2));
    eventually(Duration::from_secs(5), || async {
        !host.active_list_ids().contains(&list)
    })
    .await;
    assert_eq!(seq_of(&router, list).await, 2, "reloaded with the late op");
    // Its own write proves the reloaded copy current: no recheck stops it afterwards.
    let own = submit_with(&router, list, Uuid::new_v4(), &add_op("mine")).await;
    assert_eq!(own.await.unwrap(), Ok(3));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        host.active_list_ids().contains(&list),
        "still active after its rechecks"
    );
}

/// Ownership that moves every list away once the flag is set.
struct Switch(Arc<AtomicBool>);

impl Ownership for Switch {
    fn check(&self, _list: Uuid) -> Owner {
        if self.0.load(Ordering::SeqCst) {
            Owner::Elsewhere(Some("node-n".into()))
        } else {
            Owner::Here
        }
    }
}

/// The new owner's side of the handshake, as `ClusterOwnership` and the internode handler do
/// it: before loading, ask the previous holder to settle the list (it waits at most 1.5 s).
struct AsksHolder {
    holder: Host,
}

#[async_trait]
impl Ownership for AsksHolder {
    fn check(&self, _list: Uuid) -> Owner {
        Owner::Here
    }

    async fn settle(&self, list: Uuid) {
        self.holder.settle(list, Duration::from_millis(1500)).await;
    }
}

/// Goal (second outside review, R1): `Host::settle` answers only once every op this node accepted
/// for the list is durable or failed, also while the list is still activating here. The old
/// owner A admitted an op while it owned the list and is loading the list slowly when its view
/// moves the list to N. N asks A to settle: A waits for its activation, hands the list off,
/// and answers once what it accepted is durable; an op A acknowledges is then in N's copy.
/// (While A's view still gives it the list, A may write after N loaded: storage fences the
/// writes, and N's head rechecks bring its reads up to date.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_settle_waits_for_an_op_accepted_while_the_list_was_loading() {
    let inner = Arc::new(MemoryStore::new());
    let creator = LocalRouter::new(Host::new(
        inner.clone(),
        inner.clone(),
        HostConfig::default(),
    ));
    let list = creator
        .create_list(&alice(), raw(r#"{"title":"moving"}"#))
        .await
        .unwrap();
    // The old owner A; its loads are held.
    let gate = GatedStore::new(inner.clone());
    let moved_away = Arc::new(AtomicBool::new(false));
    let old_host = Host::with_ownership(
        gate.clone(),
        inner.clone(),
        HostConfig::default(),
        Arc::new(Switch(moved_away.clone())),
    );
    let old_owner = LocalRouter::new(old_host.clone());
    gate.hold_reads();
    let accepted = tokio::spawn(async move {
        let outcome = submit_with(&old_owner, list, Uuid::new_v4(), &add_op("accepted")).await;
        outcome.await.unwrap()
    });
    eventually(Duration::from_secs(5), || async {
        old_host.active_lists() == 1
    })
    .await;
    // A sees the new view (N owns the list now); its list is still loading.
    moved_away.store(true, Ordering::SeqCst);
    old_host.release_unowned();
    // The new owner N settles with A, then loads.
    let new_host = Host::with_ownership(
        inner.clone(),
        inner.clone(),
        HostConfig::default(),
        Arc::new(AsksHolder {
            holder: old_host.clone(),
        }),
    );
    let new_owner = LocalRouter::new(new_host.clone());
    let mut first_read = {
        let new_owner = new_owner.clone();
        tokio::spawn(async move { seq_of(&new_owner, list).await })
    };
    // Give N's settle the time it may take to answer while A still loads (a correct settle
    // waits for A; the buggy one answers at once and N loads).
    let early = tokio::time::timeout(Duration::from_millis(500), &mut first_read).await;
    assert!(
        early.is_err(),
        "the new owner waits for the old one's activation"
    );
    gate.open();
    // A hands the list off as soon as it exists: the op is flushed before the settle answers,
    // or refused `moved` (never applied after it).
    let outcome = accepted.await.unwrap();
    let _ = first_read.await;
    let read = seq_of(&new_owner, list).await;
    match outcome {
        Ok(seq) => assert!(
            read >= seq,
            "acknowledged at {seq}, read through the new owner at {read}"
        ),
        Err(error) => {
            // Refused while the actor handed off (`moved`), or dropped unprocessed from its
            // mailbox as it stopped (`unavailable`, retry with the op id): never applied.
            assert!(
                matches!(
                    error.code,
                    listwire_gateway::ErrorCode::Moved | listwire_gateway::ErrorCode::Unavailable
                ),
                "{error:?}"
            );
            assert_eq!(read, 1, "a refused op is not applied");
        }
    }
}
