//! One node's handle on the shared store. A paused node's process does not run, so what it had
//! in flight reaches the database only when it wakes: its appends wait for it to wake before
//! they are written (after any delay the store injects), a request its tasks make while it is
//! paused is sent when it wakes (a stopped process makes none), and every answer reaches it
//! only once it is awake.
//! This is the stale owner whose last append lands after a new owner's — the case the
//! conditional append exists for.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use listwire_storage::{Batch, Error, EventStore, Snapshot};
use uuid::Uuid;

use super::node::RUNNING;
use super::store::FaultyStore;

/// How often a paused node's request looks whether the node woke (simulated time).
const WAKE_POLL: Duration = Duration::from_millis(5);

/// Node `index`'s view of the store.
pub struct NodeStore {
    store: Arc<FaultyStore>,
    frozen: Arc<Vec<AtomicI64>>,
    index: usize,
}

impl NodeStore {
    /// The store as node `index` reaches it; `frozen` says which nodes are paused.
    pub fn new(store: Arc<FaultyStore>, frozen: Arc<Vec<AtomicI64>>, index: usize) -> NodeStore {
        NodeStore {
            store,
            frozen,
            index,
        }
    }

    async fn awake(&self) {
        while self.frozen[self.index].load(Ordering::SeqCst) != RUNNING {
            tokio::time::sleep(WAKE_POLL).await;
        }
    }

    async fn answered<T>(&self, answer: T) -> T {
        self.awake().await;
        answer
    }
}

#[async_trait]
impl EventStore for NodeStore {
    async fn append(&self, list: Uuid, batch: Batch) -> Result<(), Error> {
        let result = self.store.append_gated(list, batch, self.awake()).await;
        self.answered(result).await
    }

    async fn head(&self, list: Uuid) -> Result<u64, Error> {
        self.awake().await;
        let answer = self.store.head(list).await;
        self.answered(answer).await
    }

    async fn read_batches(
        &self,
        list: Uuid,
        after_seq: u64,
        max_batches: usize,
    ) -> Result<Vec<Batch>, Error> {
        self.awake().await;
        let answer = self.store.read_batches(list, after_seq, max_batches).await;
        self.answered(answer).await
    }

    async fn write_snapshot(&self, list: Uuid, snapshot: Snapshot) -> Result<(), Error> {
        self.awake().await;
        let answer = self.store.write_snapshot(list, snapshot).await;
        self.answered(answer).await
    }

    async fn latest_snapshot(&self, list: Uuid) -> Result<Option<Snapshot>, Error> {
        self.awake().await;
        let answer = self.store.latest_snapshot(list).await;
        self.answered(answer).await
    }

    async fn prune(&self, list: Uuid, up_to_seq: u64) -> Result<(), Error> {
        self.awake().await;
        let answer = self.store.prune(list, up_to_seq).await;
        self.answered(answer).await
    }

    async fn close(&self) -> Result<(), Error> {
        self.store.close().await
    }
}
