//! Deadlines of one connection's unanswered ops, with one timer per connection.
//!
//! Every op a WebSocket client sends is answered exactly once: by its owner (an ack or an
//! error) or, if no answer came within `op_timeout`, by the gateway with `unavailable` and an
//! "outcome unknown" message, since the op may still be applied (a retry with the same `op_id`
//! is then answered from the list's op-id window). Whichever comes first *claims* the op; the
//! other is dropped. Ops share one timeout, so their deadlines are in arrival order and a FIFO
//! queue finds the next one; the connection's writer sleeps until it, never per op.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{Notify, OwnedSemaphorePermit};
use tokio::time::Instant;
use uuid::Uuid;

use crate::op_metrics::OpTimer;

/// One unanswered op.
pub(crate) struct PendingOp {
    pub(crate) op_id: Uuid,
    pub(crate) list: Uuid,
    answered: AtomicBool,
    /// The connection's in-flight place, freed by whoever answers.
    permit: Mutex<Option<OwnedSemaphorePermit>>,
    /// The op's clock, finished by whoever answers: the owner's reply, or the deadline (so an
    /// op answered "outcome unknown" counts as that error, at the time the client heard it).
    timer: Mutex<Option<OpTimer>>,
}

impl PendingOp {
    /// Claims the right to answer; true exactly once. Frees the op's in-flight place.
    pub(crate) fn claim(&self) -> bool {
        if self.answered.swap(true, Ordering::AcqRel) {
            return false;
        }
        if let Ok(mut permit) = self.permit.lock() {
            permit.take();
        }
        true
    }

    /// Gives the op its clock (right after it is tracked, before anyone can claim it).
    pub(crate) fn attach_timer(&self, timer: OpTimer) {
        if let Ok(mut slot) = self.timer.lock() {
            *slot = Some(timer);
        }
    }

    /// The op's clock, for whoever claimed the op.
    pub(crate) fn take_timer(&self) -> Option<OpTimer> {
        self.timer.lock().ok().and_then(|mut slot| slot.take())
    }

    fn is_answered(&self) -> bool {
        self.answered.load(Ordering::Acquire)
    }
}

/// The deadlines of one connection's ops, oldest first.
pub(crate) struct Deadlines {
    timeout: Duration,
    /// Past this length, answered entries are dropped from the whole queue at once; so the
    /// queue holds at most about twice the connection's in-flight limit.
    compact_above: usize,
    queue: Mutex<VecDeque<(Instant, Arc<PendingOp>)>>,
    /// Woken when an op is tracked while none was, so the writer arms its timer.
    pub(crate) armed: Notify,
}

impl Deadlines {
    pub(crate) fn new(timeout: Duration, in_flight_max: usize) -> Self {
        Self {
            timeout,
            compact_above: in_flight_max.saturating_mul(2).max(16),
            queue: Mutex::new(VecDeque::new()),
            armed: Notify::new(),
        }
    }

    /// Starts the clock of an op holding `permit`.
    pub(crate) fn track(
        &self,
        op_id: Uuid,
        list: Uuid,
        permit: OwnedSemaphorePermit,
    ) -> Arc<PendingOp> {
        let pending = Arc::new(PendingOp {
            op_id,
            list,
            answered: AtomicBool::new(false),
            permit: Mutex::new(Some(permit)),
            timer: Mutex::new(None),
        });
        let deadline = Instant::now() + self.timeout;
        let was_empty = {
            let mut queue = self.lock();
            let was_empty = queue.is_empty();
            queue.push_back((deadline, pending.clone()));
            if queue.len() > self.compact_above {
                queue.retain(|(_, op)| !op.is_answered());
            }
            was_empty
        };
        if was_empty {
            self.armed.notify_one();
        }
        pending
    }

    /// The next deadline of an unanswered op, dropping answered ones from the front.
    pub(crate) fn next(&self) -> Option<Instant> {
        let mut queue = self.lock();
        while queue.front().is_some_and(|(_, op)| op.is_answered()) {
            queue.pop_front();
        }
        queue.front().map(|(deadline, _)| *deadline)
    }

    /// The ops whose deadline passed by `now` and that this call claimed (they must now be
    /// answered `unavailable` by the caller).
    pub(crate) fn expire(&self, now: Instant) -> Vec<Arc<PendingOp>> {
        let mut expired = Vec::new();
        let mut queue = self.lock();
        while queue.front().is_some_and(|(deadline, _)| *deadline <= now) {
            if let Some((_, op)) = queue.pop_front() {
                if op.claim() {
                    expired.push(op);
                }
            }
        }
        expired
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VecDeque<(Instant, Arc<PendingOp>)>> {
        // Every critical section is a few queue operations that cannot leave it inconsistent.
        self.queue
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::sync::Semaphore;

    /// Goal: an op is claimed exactly once, by its answer or by its deadline, and the queue
    /// stays bounded when answers come back.
    #[tokio::test(start_paused = true)]
    async fn each_op_is_claimed_once_by_answer_or_deadline() {
        let permits = Arc::new(Semaphore::new(100));
        let deadlines = Deadlines::new(Duration::from_secs(10), 4);
        let answered = deadlines.track(
            Uuid::from_u128(1),
            Uuid::nil(),
            permits.clone().try_acquire_owned().unwrap(),
        );
        let late = deadlines.track(
            Uuid::from_u128(2),
            Uuid::nil(),
            permits.clone().try_acquire_owned().unwrap(),
        );
        assert_eq!(permits.available_permits(), 98);
        assert!(answered.claim(), "the answer claims first");
        assert!(!answered.claim(), "only once");
        assert_eq!(
            permits.available_permits(),
            99,
            "the answer freed its place"
        );
        let next = deadlines.next().expect("an unanswered op");
        assert!(deadlines.expire(next - Duration::from_millis(1)).is_empty());
        tokio::time::advance(Duration::from_secs(10)).await;
        let expired = deadlines.expire(Instant::now());
        assert_eq!(expired.len(), 1);
        assert_eq!(expired[0].op_id, Uuid::from_u128(2));
        assert!(!late.claim(), "the late answer is dropped");
        assert_eq!(permits.available_permits(), 100);
        assert!(deadlines.next().is_none());
        for index in 0..1000 {
            let op = deadlines.track(
                Uuid::from_u128(index),
                Uuid::nil(),
                permits.clone().try_acquire_owned().unwrap(),
            );
            op.claim();
        }
        assert!(
            deadlines.lock().len() <= 16 + 1,
            "answered ops do not pile up"
        );
    }
}
