//! An event store for component tests: the in-memory store behind a gate that can hold appends
//! (as a stalled disk would) and count them, so tests can stop a list mid-append.
#![allow(dead_code)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use async_trait::async_trait;
use listwire_storage::memory::MemoryStore;
use listwire_storage::{Batch, Error, EventStore, Snapshot};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// The in-memory store with appends that can be held until released.
pub struct GatedStore {
    /// The store behind the gate.
    pub inner: Arc<MemoryStore>,
    hold: AtomicBool,
    hold_reads: AtomicBool,
    gate: Semaphore,
    waiting: AtomicUsize,
    appended: AtomicUsize,
    fail_snapshots: AtomicBool,
    snapshot_attempts: AtomicUsize,
}

impl GatedStore {
    /// A gate that lets everything through until `hold` is called.
    pub fn new(inner: Arc<MemoryStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            hold: AtomicBool::new(false),
            hold_reads: AtomicBool::new(false),
            gate: Semaphore::new(0),
            waiting: AtomicUsize::new(0),
            appended: AtomicUsize::new(0),
            fail_snapshots: AtomicBool::new(false),
            snapshot_attempts: AtomicUsize::new(0),
        })
    }

    /// Holds every later append until `release`.
    pub fn hold(&self) {
        self.hold.store(true, Ordering::SeqCst);
    }

    /// Holds every later snapshot read (the first read of an activation) until `open`.
    pub fn hold_reads(&self) {
        self.hold_reads.store(true, Ordering::SeqCst);
    }

    /// Lets `count` held appends through.
    pub fn release(&self, count: usize) {
        self.gate.add_permits(count);
    }

    /// Stops holding and lets every held append through.
    pub fn open(&self) {
        self.hold.store(false, Ordering::SeqCst);
        self.hold_reads.store(false, Ordering::SeqCst);
        self.gate.add_permits(1 << 20);
    }

    /// Makes every later snapshot write fail (as one too big for the backend would).
    pub fn fail_snapshots(&self) {
        self.fail_snapshots.store(true, Ordering::SeqCst);
    }

    /// Snapshot writes attempted so far.
    pub fn snapshot_attempts(&self) -> usize {
        self.snapshot_attempts.load(Ordering::SeqCst)
    }

    /// Appends waiting at the gate now.
    pub fn waiting(&self) -> usize {
        self.waiting.load(Ordering::SeqCst)
    }

    /// Appends that reached the store (whatever their outcome).
    pub fn appended(&self) -> usize {
        self.appended.load(Ordering::SeqCst)
    }
}

#[async_trait]
impl EventStore for GatedStore {
    async fn append(&self, list: Uuid, batch: Batch) -> Result<(), Error> {
        if self.hold.load(Ordering::SeqCst) {
            self.waiting.fetch_add(1, Ordering::SeqCst);
            let permit = self.gate.acquire().await;
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            permit.map_err(|_| Error::ShuttingDown)?.forget();
        }
        let result = self.inner.append(list, batch).await;
        self.appended.fetch_add(1, Ordering::SeqCst);
        result
    }

    async fn head(&self, list: Uuid) -> Result<u64, Error> {
        self.inner.head(list).await
    }

    async fn read_batches(&self, list: Uuid, after: u64, max: usize) -> Result<Vec<Batch>, Error> {
        self.inner.read_batches(list, after, max).await
    }

    async fn write_snapshot(&self, list: Uuid, snapshot: Snapshot) -> Result<(), Error> {
        self.snapshot_attempts.fetch_add(1, Ordering::SeqCst);
        if self.fail_snapshots.load(Ordering::SeqCst) {
            return Err(Error::Backend("snapshot refused by the test".into()));
        }
        self.inner.write_snapshot(list, snapshot).await
    }

    async fn latest_snapshot(&self, list: Uuid) -> Result<Option<Snapshot>, Error> {
        if self.hold_reads.load(Ordering::SeqCst) {
            let permit = self.gate.acquire().await;
            permit.map_err(|_| Error::ShuttingDown)?.forget();
        }
        self.inner.latest_snapshot(list).await
    }

    async fn prune(&self, list: Uuid, up_to_seq: u64) -> Result<(), Error> {
        self.inner.prune(list, up_to_seq).await
    }

    async fn close(&self) -> Result<(), Error> {
        self.inner.close().await
    }
}
