//! Where the outcome of an op goes: a client's [`Reply`] (one op at a time, from the gateway
//! of this node), or a place in the shared answers of a forwarded batch (issue 13: one
//! allocation per batch instead of a oneshot and a boxed closure per op).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use listwire_gateway::{EdgeError, OpOutcome, Reply};
use tokio::sync::Notify;

/// The outcome of a dropped op: it may or may not have taken effect.
fn dropped() -> EdgeError {
    EdgeError::unavailable("the op was dropped before completion; retry with the same op_id")
}

/// Where one op's outcome goes. Dropping it unanswered answers `unavailable`, as a dropped
/// [`Reply`] does.
#[derive(Debug)]
pub enum Answer {
    /// A single op's reply.
    Reply(Reply),
    /// One op's place in a batch.
    Batch(BatchPlace),
}

impl Answer {
    /// Delivers the outcome.
    pub fn send(self, outcome: OpOutcome) {
        match self {
            Answer::Reply(reply) => reply.send(outcome),
            Answer::Batch(place) => place.send(outcome),
        }
    }
}

impl From<Reply> for Answer {
    fn from(reply: Reply) -> Self {
        Answer::Reply(reply)
    }
}

impl From<BatchPlace> for Answer {
    fn from(place: BatchPlace) -> Self {
        Answer::Batch(place)
    }
}

struct Shared {
    outcomes: Mutex<Vec<Option<OpOutcome>>>,
    /// Places not answered yet.
    remaining: AtomicUsize,
    /// Signalled when `remaining` reaches zero.
    done: Notify,
}

impl Shared {
    fn record(&self, index: usize, outcome: OpOutcome) {
        {
            let mut outcomes = self
                .outcomes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            outcomes[index] = Some(outcome);
        }
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.done.notify_one();
        }
    }
}

/// The outcomes of a batch of ops, in the order of their places.
pub struct BatchAnswers {
    shared: Arc<Shared>,
    places: usize,
}

impl BatchAnswers {
    /// Answers for `count` ops.
    pub fn new(count: usize) -> Self {
        Self {
            shared: Arc::new(Shared {
                outcomes: Mutex::new(vec![None; count]),
                remaining: AtomicUsize::new(count),
                done: Notify::new(),
            }),
            places: 0,
        }
    }

    /// The place of the next op (places are handed out in order, each once).
    pub fn next_place(&mut self) -> BatchPlace {
        let index = self.places;
        self.places += 1;
        BatchPlace {
            shared: Some(Arc::clone(&self.shared)),
            index,
        }
    }

    /// Waits until every place is answered (or dropped) and returns the outcomes in order.
    pub async fn outcomes(self) -> Vec<OpOutcome> {
        assert_eq!(
            self.places,
            self.shared
                .outcomes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .len(),
            "every place of a batch is handed out"
        );
        while self.shared.remaining.load(Ordering::Acquire) > 0 {
            self.shared.done.notified().await;
        }
        let outcomes = std::mem::take(
            &mut *self
                .shared
                .outcomes
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner()),
        );
        outcomes
            .into_iter()
            .map(|outcome| outcome.unwrap_or_else(|| Err(dropped())))
            .collect()
    }
}

/// One op's place in a [`BatchAnswers`].
pub struct BatchPlace {
    /// `None` once answered.
    shared: Option<Arc<Shared>>,
    index: usize,
}

impl BatchPlace {
    /// Delivers the outcome.
    pub fn send(mut self, outcome: OpOutcome) {
        if let Some(shared) = self.shared.take() {
            shared.record(self.index, outcome);
        }
    }
}

impl Drop for BatchPlace {
    fn drop(&mut self) {
        if let Some(shared) = self.shared.take() {
            shared.record(self.index, Err(dropped()));
        }
    }
}

impl std::fmt::Debug for BatchPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BatchPlace")
            .field("index", &self.index)
            .field("answered", &self.shared.is_none())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: outcomes come back in the order of the places whatever order they are answered
    /// in, and a place dropped unanswered reads `unavailable`.
    #[tokio::test]
    async fn outcomes_keep_place_order_and_dropped_places_are_unavailable() {
        let mut answers = BatchAnswers::new(3);
        let first = answers.next_place();
        let second = answers.next_place();
        let third = answers.next_place();
        third.send(Ok(3));
        drop(second);
        let waiter = tokio::spawn(answers.outcomes());
        first.send(Ok(1));
        let outcomes = waiter.await.unwrap();
        assert_eq!(outcomes[0], Ok(1));
        assert_eq!(
            outcomes[1].as_ref().unwrap_err().code.as_str(),
            "unavailable"
        );
        assert_eq!(outcomes[2], Ok(3));
    }
}
