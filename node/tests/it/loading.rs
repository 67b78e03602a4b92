//! Activation under damaged or moving history (issue "Correctness hardening", item 4): a batch
//! whose events do not cover its range, a read that does not advance, and loads racing prunes.
//! Component tests over the in-memory store behind a wrapper that misbehaves on purpose.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use listwire::domain::{decode_batch, encode_snapshot, evolve, Limits, ListState};
use listwire::host::{Host, HostConfig};
use listwire::router::LocalRouter;
use listwire_gateway::{ErrorCode, Router};
use listwire_storage::memory::MemoryStore;
use listwire_storage::{Batch, Error, EventStore, Snapshot};
use uuid::Uuid;

use crate::hardening::{add_op, alice, raw, submit_with};

/// How the wrapper misbehaves.
enum Mode {
    /// Before the n-th read, write `snapshots[n]` and prune behind it, as another actor of the
    /// list stopping with a final snapshot would, between the loader's two reads.
    PruneBehind(Vec<Snapshot>),
    /// Every read returns the list's first stored batch again (a page that does not advance).
    Stuck,
}

struct Misbehaving {
    inner: Arc<MemoryStore>,
    mode: Mode,
    reads: AtomicUsize,
}

#[async_trait]
impl EventStore for Misbehaving {
    async fn append(&self, list: Uuid, batch: Batch) -> Result<(), Error> {
        self.inner.append(list, batch).await
    }
    async fn head(&self, list: Uuid) -> Result<u64, Error> {
        self.inner.head(list).await
    }
    async fn read_batches(&self, list: Uuid, after: u64, max: usize) -> Result<Vec<Batch>, Error> {
        let call = self.reads.fetch_add(1, Ordering::SeqCst);
        match &self.mode {
            Mode::Stuck => self.inner.read_batches(list, 0, 1).await,
            Mode::PruneBehind(snapshots) => {
                if let Some(snapshot) = snapshots.get(call) {
                    let seq = snapshot.seq;
                    self.inner.write_snapshot(list, snapshot.clone()).await?;
                    self.inner.prune(list, seq).await?;
                }
                self.inner.read_batches(list, after, max).await
            }
        }
    }
    async fn write_snapshot(&self, list: Uuid, snapshot: Snapshot) -> Result<(), Error> {
        self.inner.write_snapshot(list, snapshot).await
    }
    async fn latest_snapshot(&self, list: Uuid) -> Result<Option<Snapshot>, Error> {
        self.inner.latest_snapshot(list).await
    }
    async fn prune(&self, list: Uuid, up_to_seq: u64) -> Result<(), Error> {
        self.inner.prune(list, up_to_seq).await
    }
    async fn close(&self) -> Result<(), Error> {
        self.inner.close().await
    }
}

/// A list of `events` events (one batch each) in `store`, never snapshotted.
async fn history(store: &Arc<MemoryStore>, events: u64) -> Uuid {
    let config = HostConfig {
        snapshot_every: 1_000_000,
        ..HostConfig::default()
    };
    let host = Host::new(store.clone(), store.clone(), config);
    let router = LocalRouter::new(host.clone());
    let list = router
        .create_list(&alice(), raw(r#"{"title":"long"}"#))
        .await
        .unwrap();
    for index in 1..events {
        let op = add_op(&format!("item {index}"));
        submit_with(&router, list, Uuid::new_v4(), &op)
            .await
            .await
            .unwrap()
            .unwrap();
    }
    list
}

/// Encoded snapshots of `list` at each of `seqs`, replayed from its stored history.
async fn snapshots_at(store: &MemoryStore, list: Uuid, seqs: &[u64]) -> Vec<Snapshot> {
    let mut state = ListState::new(list);
    let mut out = Vec::new();
    for batch in store.read_batches(list, 0, 10_000).await.unwrap() {
        for event in decode_batch(&batch.body).unwrap() {
            evolve(&mut state, &event, &Limits::default());
            if seqs.contains(&event.seq) {
                out.push(Snapshot {
                    seq: event.seq,
                    body: Bytes::from(encode_snapshot(&state)),
                });
            }
        }
    }
    out
}

fn misbehaving_router(inner: &Arc<MemoryStore>, mode: Mode) -> LocalRouter {
    let store = Arc::new(Misbehaving {
        inner: inner.clone(),
        mode,
        reads: AtomicUsize::new(0),
    });
    let config = HostConfig {
        // Long, so a loader that loops is caught by the test's own deadline, not this one.
        activation_timeout: Duration::from_secs(60),
        ..HostConfig::default()
    };
    LocalRouter::new(Host::new(store, inner.clone(), config))
}

/// A load that races two prunes in a row (each behind a newer snapshot) starts again from the
/// newer snapshot each time and loads the whole list; it is not reported as corrupt.
#[tokio::test]
async fn a_load_racing_prunes_starts_again_from_the_newer_snapshot() {
    let store = Arc::new(MemoryStore::new());
    let list = history(&store, 30).await;
    let snapshots = snapshots_at(&store, list, &[10, 20]).await;
    let router = misbehaving_router(&store, Mode::PruneBehind(snapshots));
    let state: serde_json::Value =
        serde_json::from_slice(&router.snapshot(&alice(), list).await.unwrap()).unwrap();
    assert_eq!(state["seq"], 30);
    assert_eq!(state["items"].as_array().unwrap().len(), 29);
}

/// A stored batch whose events do not cover its `first_seq..=last_seq` is an integrity error
/// at once (the list does not load), not a read repeated forever holding an activation permit.
#[tokio::test]
async fn a_short_batch_fails_the_load_instead_of_spinning() {
    let store = Arc::new(MemoryStore::new());
    let source = history(&store, 1).await;
    let create = store.read_batches(source, 0, 1).await.unwrap().remove(0);
    let damaged = Uuid::new_v4();
    let short = Batch {
        first_seq: 1,
        last_seq: 3,
        body: create.body,
    };
    store.append(damaged, short).await.unwrap();
    let router = misbehaving_router(&store, Mode::PruneBehind(Vec::new()));
    let refused = tokio::time::timeout(Duration::from_secs(10), router.snapshot(&alice(), damaged))
        .await
        .expect("the load fails promptly")
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Unavailable);
}

/// A store that returns a page which does not advance past `after_seq` makes the load fail
/// promptly with an integrity error instead of reading the same page forever.
#[tokio::test]
async fn a_page_that_does_not_advance_fails_the_load() {
    let store = Arc::new(MemoryStore::new());
    let list = history(&store, 5).await;
    let router = misbehaving_router(&store, Mode::Stuck);
    let refused = tokio::time::timeout(Duration::from_secs(10), router.snapshot(&alice(), list))
        .await
        .expect("the load fails promptly")
        .unwrap_err();
    assert_eq!(refused.code, ErrorCode::Unavailable);
}
