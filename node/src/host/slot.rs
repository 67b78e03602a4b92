//! What the host keeps per active list: the admission counter, the actor, and the append in
//! flight that a successor actor must wait for.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use listwire_gateway::EdgeError;
use ractor::ActorRef;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};

use crate::list::ListMsg;

/// One active (or activating) list on this node.
pub struct Slot {
    pub(super) inflight: AtomicUsize,
    /// The activation's outcome: `None` while activating, then the actor or why it failed.
    /// The activation runs in its own task (started once, by the first request), so a request
    /// cancelled while it waits cannot abandon it half done.
    pub(super) activation: watch::Sender<Option<Result<ActorRef<ListMsg>, EdgeError>>>,
    pub(super) activation_started: AtomicBool,
    /// One permit, held by the list's append in flight (an actor has at most one) until the
    /// store has answered it, even if the actor died meanwhile.
    pub(super) appending: Arc<Semaphore>,
    /// The `appending` of the list's previous slot, when its actor stopped with an append in
    /// flight: this slot's actor loads only once that append has resolved, so it never reads a
    /// batch whose fate is still open (on the embedded store: written but not yet fsync'd).
    pub(super) predecessor: Option<Arc<Semaphore>>,
    /// Set once the actor was asked to hand the list off: a handoff cannot be taken back, so
    /// it is asked (and counted) once per actor.
    pub(super) handoff_requested: AtomicBool,
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
            activation: watch::Sender::new(None),
            activation_started: AtomicBool::new(false),
            appending: Arc::new(Semaphore::new(1)),
            predecessor,
            handoff_requested: AtomicBool::new(false),
        }
    }

    /// The list's actor, once activated.
    pub(super) fn actor(&self) -> Option<ActorRef<ListMsg>> {
        match &*self.activation.borrow() {
            Some(Ok(actor)) => Some(actor.clone()),
            _ => None,
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
