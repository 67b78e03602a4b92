//! What the committer has made durable, shared with readers: reads return only fsync'd data.
//!
//! fjall makes a committed group visible to readers (in the memtable) before the committer's
//! fsync returns. A reader that saw such a group and answered from it could let the node
//! acknowledge or publish an op whose fsync then fails. So the committer *announces* each group
//! (a counter bumped before the commit) and publishes the last announced group it has synced;
//! a reader, once it has read, waits until every group announced by then is synced. Anything it
//! could have seen was announced before it was visible, so it is durable when the wait ends. The
//! wait is at most one fsync; after a failed sync the store is poisoned and readers fail.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::watch;

use crate::Error;

/// Durability progress of the committer, shared with every store handle.
pub(super) struct Progress {
    announced: AtomicU64,
    synced_tx: watch::Sender<u64>,
    poisoned: AtomicBool,
    #[cfg(feature = "testsuite")]
    pub(super) before_sync: std::sync::Mutex<Option<Box<dyn Fn() + Send>>>,
}

impl Progress {
    pub(super) fn new() -> Self {
        Self {
            announced: AtomicU64::new(0),
            synced_tx: watch::Sender::new(0),
            poisoned: AtomicBool::new(false),
            #[cfg(feature = "testsuite")]
            before_sync: std::sync::Mutex::new(None),
        }
    }

    /// Committer: a group is about to become visible; returns its number.
    pub(super) fn announce(&self) -> u64 {
        self.announced.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// Committer: every group up to `group` is durable.
    pub(super) fn synced(&self, group: u64) {
        self.synced_tx.send_replace(group);
    }

    /// Committer: durability is unknown from now on; wakes waiting readers so they fail.
    pub(super) fn poison(&self) {
        self.poisoned.store(true, Ordering::SeqCst);
        let current = *self.synced_tx.borrow();
        self.synced_tx.send_replace(current);
    }

    /// Whether a commit or sync failed.
    pub(super) fn is_poisoned(&self) -> bool {
        self.poisoned.load(Ordering::SeqCst)
    }

    /// Committer: runs the test hook between a group's commit and its fsync.
    pub(super) fn before_sync(&self) {
        #[cfg(feature = "testsuite")]
        if let Ok(hook) = self.before_sync.lock() {
            if let Some(hook) = hook.as_ref() {
                hook();
            }
        }
    }

    /// Reader, after reading: waits until everything it could have seen is durable.
    pub(super) async fn wait_synced(&self, timeout: Duration) -> Result<(), Error> {
        let needed = self.announced.load(Ordering::SeqCst);
        let mut synced_rx = self.synced_tx.subscribe();
        let done = |synced: &u64| *synced >= needed || self.is_poisoned();
        let waited = tokio::time::timeout(timeout, synced_rx.wait_for(done)).await;
        if self.is_poisoned() {
            return Err(Error::Poisoned);
        }
        match waited {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_closed)) => Err(Error::ShuttingDown),
            Err(_elapsed) => Err(Error::Unavailable(
                "storage sync did not finish in time; retry".into(),
            )),
        }
    }
}
