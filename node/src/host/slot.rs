//! What the host keeps per active list: the admission counter, the actor, and the append in
//! flight that a successor actor must wait for.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use listwire_gateway::EdgeError;
use ractor::ActorRef;
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use uuid::Uuid;

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
    /// Set once the list was asked to hand off: a handoff cannot be taken back, so it is
    /// asked (and counted) once per slot; a slot still activating hands off as soon as its
    /// actor exists.
    pub(super) handoff_requested: AtomicBool,
    /// Messages admitted since activation (ops, subscribes, reads): how busy the list is.
    pub(super) admitted: AtomicU64,
    /// Messages refused `busy` since activation because the list had too many in flight.
    pub(super) refused: AtomicU64,
    /// When the slot was made.
    pub(super) since: Instant,
}

/// How busy one active list is, for the operator's busiest-lists view (`GET /v1/admin/lists`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ListLoad {
    /// The list.
    pub list: Uuid,
    /// Messages admitted since it was activated here (ops, subscribes, reads).
    pub admitted: u64,
    /// Messages refused `busy` since then: more than `--list-inflight-max` unanswered.
    pub refused: u64,
    /// Messages admitted and not yet answered.
    pub inflight: u64,
    /// Seconds since it was activated here.
    pub active_secs: u64,
}

impl ListLoad {
    pub(super) fn of(list: Uuid, slot: &Slot) -> ListLoad {
        ListLoad {
            list,
            admitted: slot.admitted.load(Ordering::Relaxed),
            refused: slot.refused.load(Ordering::Relaxed),
            inflight: slot.inflight.load(Ordering::Relaxed) as u64,
            active_secs: slot.since.elapsed().as_secs(),
        }
    }
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
            admitted: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            since: Instant::now(),
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

/// Proof that a message was admitted; dropping it (when the message is answered) frees its
/// places: one for most messages, one per op for a batch of ops.
pub struct Admitted {
    pub(super) slot: Arc<Slot>,
    pub(super) count: usize,
}

impl Admitted {
    /// How many places this admission holds.
    pub fn count(&self) -> usize {
        self.count
    }

    /// Takes one op's place out of a batch's admission, so that op frees it when answered;
    /// `None` once every place is taken.
    pub fn take_one(&mut self) -> Option<Admitted> {
        if self.count == 0 {
            return None;
        }
        self.count -= 1;
        Some(Admitted {
            slot: Arc::clone(&self.slot),
            count: 1,
        })
    }
}

impl std::fmt::Debug for Admitted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let inflight = self.slot.inflight.load(Ordering::Relaxed);
        f.debug_struct("Admitted")
            .field("count", &self.count)
            .field("inflight", &inflight)
            .finish()
    }
}

impl Drop for Admitted {
    fn drop(&mut self) {
        if self.count > 0 {
            self.slot.inflight.fetch_sub(self.count, Ordering::AcqRel);
        }
    }
}
