//! The shared store behind a seeded fault injector: slow requests, `Unavailable` errors, and
//! appends whose outcome is unknown (written, then reported as an error). Every simulated
//! host shares one `MemoryStore`, as a cluster shares its database. Pruned batches are kept
//! aside so the checkers still see the whole history.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use listwire_storage::memory::MemoryStore;
use listwire_storage::{Batch, Error, EventStore, Snapshot};
use uuid::Uuid;

use super::rng::SimRng;
use super::trace::Trace;

/// How often each store fault strikes while faults are on.
#[derive(Debug, Clone, Copy)]
pub struct StoreFaults {
    /// A request waits up to `slow_max` before it runs.
    pub slow: f64,
    /// The longest extra wait of a slow request.
    pub slow_max: Duration,
    /// A request fails `Unavailable` without running.
    pub unavailable: f64,
    /// An append is written, then reported `Unavailable` (outcome unknown to the writer).
    pub unknown: f64,
}

/// Counts of what the store injected.
#[derive(Debug, Default)]
pub struct StoreCounts {
    /// Slowed requests.
    pub slow: AtomicU64,
    /// Requests refused `Unavailable`.
    pub unavailable: AtomicU64,
    /// Appends written but reported failed.
    pub unknown: AtomicU64,
    /// Appends that succeeded (and were reported so).
    pub appended: AtomicU64,
}

/// The fault-injecting store.
pub struct FaultyStore {
    /// The real store (what the checkers read).
    pub inner: Arc<MemoryStore>,
    faults: StoreFaults,
    /// Faults strike only while at least one store-fault window is open.
    pub windows: AtomicU32,
    rng: Mutex<SimRng>,
    pruned: Mutex<BTreeMap<Uuid, Vec<Batch>>>,
    /// What was injected.
    pub counts: StoreCounts,
    trace: Trace,
}

enum Fate {
    Run,
    Refuse,
    Unknown,
}

impl FaultyStore {
    /// A store injecting `faults` with draws from `rng`.
    pub fn new(faults: StoreFaults, rng: SimRng, trace: Trace) -> Arc<FaultyStore> {
        Arc::new(FaultyStore {
            inner: Arc::new(MemoryStore::new()),
            faults,
            windows: AtomicU32::new(0),
            rng: Mutex::new(rng),
            pruned: Mutex::new(BTreeMap::new()),
            counts: StoreCounts::default(),
            trace,
        })
    }

    /// Every batch of `list` ever stored, pruned ones included, in seq order.
    pub async fn history(&self, list: Uuid) -> Result<Vec<Batch>, Error> {
        let mut batches = lock(&self.pruned).get(&list).cloned().unwrap_or_default();
        let after = batches.last().map_or(0, |batch| batch.last_seq);
        batches.extend(self.inner.read_batches(list, after, usize::MAX).await?);
        Ok(batches)
    }

    /// Decides a request's fate, waiting first if it is slow.
    async fn fate(&self, what: &str, list: Uuid, may_be_unknown: bool) -> Fate {
        if self.windows.load(Ordering::SeqCst) == 0 {
            return Fate::Run;
        }
        let (delay, fate) = {
            let mut rng = lock(&self.rng);
            let delay = rng.chance(self.faults.slow).then(|| {
                Duration::from_millis(rng.between(1, self.faults.slow_max.as_millis() as u64))
            });
            let fate = if rng.chance(self.faults.unavailable) {
                Fate::Refuse
            } else if may_be_unknown && rng.chance(self.faults.unknown) {
                Fate::Unknown
            } else {
                Fate::Run
            };
            (delay, fate)
        };
        if let Some(delay) = delay {
            self.counts.slow.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(delay).await;
        }
        match fate {
            Fate::Refuse => {
                self.counts.unavailable.fetch_add(1, Ordering::Relaxed);
                self.trace.record(format!("store refuses {what} {list}"));
            }
            Fate::Unknown => {
                self.counts.unknown.fetch_add(1, Ordering::Relaxed);
            }
            Fate::Run => {}
        }
        fate
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn refused() -> Error {
    Error::Unavailable("injected by the simulation".into())
}

impl FaultyStore {
    /// Appends `batch` once `gate` opens (after any injected delay): the gate of a paused
    /// node opens when it wakes, so an append it had in flight lands late, as a stopped
    /// process's does.
    pub async fn append_gated(
        &self,
        list: Uuid,
        batch: Batch,
        gate: impl std::future::Future<Output = ()>,
    ) -> Result<(), Error> {
        let span = (batch.first_seq, batch.last_seq);
        let fate = self.fate("append", list, true).await;
        gate.await;
        match fate {
            Fate::Refuse => Err(refused()),
            Fate::Unknown => {
                let written = self.inner.append(list, batch).await;
                self.trace.record(format!(
                    "store append {list} {span:?} outcome hidden (was {})",
                    if written.is_ok() {
                        "written"
                    } else {
                        "refused"
                    }
                ));
                Err(Error::Unavailable("outcome unknown (injected)".into()))
            }
            Fate::Run => {
                let result = self.inner.append(list, batch).await;
                if result.is_ok() {
                    self.counts.appended.fetch_add(1, Ordering::Relaxed);
                }
                result
            }
        }
    }
}

#[async_trait]
impl EventStore for FaultyStore {
    async fn append(&self, list: Uuid, batch: Batch) -> Result<(), Error> {
        self.append_gated(list, batch, async {}).await
    }

    async fn head(&self, list: Uuid) -> Result<u64, Error> {
        match self.fate("head", list, false).await {
            Fate::Run => self.inner.head(list).await,
            _ => Err(refused()),
        }
    }

    async fn read_batches(
        &self,
        list: Uuid,
        after_seq: u64,
        max_batches: usize,
    ) -> Result<Vec<Batch>, Error> {
        match self.fate("read", list, false).await {
            Fate::Run => self.inner.read_batches(list, after_seq, max_batches).await,
            _ => Err(refused()),
        }
    }

    async fn write_snapshot(&self, list: Uuid, snapshot: Snapshot) -> Result<(), Error> {
        match self.fate("snapshot", list, false).await {
            Fate::Run => self.inner.write_snapshot(list, snapshot).await,
            _ => Err(refused()),
        }
    }

    async fn latest_snapshot(&self, list: Uuid) -> Result<Option<Snapshot>, Error> {
        match self.fate("load snapshot", list, false).await {
            Fate::Run => self.inner.latest_snapshot(list).await,
            _ => Err(refused()),
        }
    }

    async fn prune(&self, list: Uuid, up_to_seq: u64) -> Result<(), Error> {
        let kept = lock(&self.pruned)
            .get(&list)
            .and_then(|batches| batches.last().map(|batch| batch.last_seq))
            .unwrap_or(0);
        let doomed = self.inner.read_batches(list, kept, usize::MAX).await?;
        let doomed = doomed
            .into_iter()
            .filter(|batch| batch.last_seq <= up_to_seq);
        lock(&self.pruned).entry(list).or_default().extend(doomed);
        self.inner.prune(list, up_to_seq).await
    }

    async fn close(&self) -> Result<(), Error> {
        Ok(())
    }
}
