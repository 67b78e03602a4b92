//! What the host keeps per active list: the admission counter, the actor, and the append in
//! flight that a successor actor must wait for.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use ractor::ActorRef;
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use crate::list::ListMsg;

/// One active (or activating) list on this node.
pub struct Slot {
    pub(super) inflight: AtomicUsize,
    pub(super) actor: OnceCell<ActorRef<ListMsg>>,
    /// Set (under the host lock, together with removal from the map) when activation failed:
    /// no actor may ever start in a slot that is no longer the list's current one.
    pub(super) retired: AtomicBool,
    /// One permit, held by the list's append in flight (an actor has at most one) until the
    /// store has answered it, even if the actor died meanwhile.
    pub(super) appending: Arc<Semaphore>,
    /// The `appending` of the list's previous slot, when its actor stopped with an append in
    /// flight: this slot's actor loads only once that append has resolved, so it never reads a
    /// batch whose fate is still open (on the embedded store: written but not yet fsync'd).
    pub(super) predecessor: Option<Arc<Semaphore>>,
}

/// Proof that the list's one append is in flight; dropping it (once the store has answered)
/// lets a successor actor load.
pub struct AppendGuard {
    _permit: OwnedSemaphorePermit,
}

impl Slot {
    pub(super) fn new(predecessor: Option<Arc<Semaphore>>) -> Self {
        Self {
            inflight: AtomicUsize::new(0),
            actor: OnceCell::new(),
            retired: AtomicBool::new(false),
            appending: Arc::new(Semaphore::new(1)),
            predecessor,
        }
    }

    /// Marks an append in flight. `None` if one already is, which the actor never allows.
    pub fn start_append(&self) -> Option<AppendGuard> {
        let permit = self.appending.clone().try_acquire_owned().ok()?;
        Some(AppendGuard { _permit: permit })
    }

    pub(super) fn has_append_in_flight(&self) -> bool {
        self.appending.available_permits() == 0
    }
}

/// Proof that a message was admitted; dropping it (when the message is answered) frees the place.
pub struct Admitted {
    pub(super) slot: Arc<Slot>,
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inflight = self.slot.inflight.load(Ordering::Relaxed);
        f.debug_struct("Admitted")
            .field("inflight", &inflight)
            .finish()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.slot.inflight.fetch_sub(1, Ordering::AcqRel);
    }
}
