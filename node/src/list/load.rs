//! Activation: rebuild a list from its latest snapshot plus the events after it.
//!
//! Events are applied as they are read (one page of batches at a time), so memory stays bounded
//! by a page and the resume ring, however long the tail. Every batch must hold exactly the events
//! of its `first_seq..=last_seq` and every page must advance: anything else is an integrity
//! error, never a loop. A read that raced a prune (the history after our snapshot is gone
//! because a newer snapshot replaced it) starts again from the newer snapshot.

use std::collections::VecDeque;

use bytes::Bytes;
use listwire_storage::Batch;
use uuid::Uuid;

use super::index::IndexSync;
use crate::domain::{decode_batch, decode_snapshot, evolve, Event, ListState};
use crate::host::ListContext;

/// Why a list could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// Storage failed.
    #[error("storage: {0}")]
    Storage(#[from] listwire_storage::Error),
    /// Stored bytes did not decode.
    #[error("decode: {0}")]
    Decode(String),
    /// The stored history is inconsistent with itself.
    #[error("integrity: {0}")]
    Integrity(String),
    /// Loading took longer than the activation timeout.
    #[error("loading took longer than {0:?}")]
    Timeout(std::time::Duration),
}

/// A loaded list.
pub struct Loaded {
    /// The durable state.
    pub state: ListState,
    /// The seq of the snapshot it started from (0 if none).
    pub snapshot_seq: u64,
    /// The size of that snapshot in bytes (0 if none).
    pub snapshot_bytes: usize,
    /// Encoded events replayed after the snapshot (for `since` resume), oldest first, at most
    /// the resume ring's size.
    pub tail: Vec<(u64, Bytes)>,
    /// The "my lists" index entries the replayed events touch. The index is synced before each
    /// snapshot, so only these may be missing from it after a crash.
    pub index: IndexSync,
}

/// Batches read per page: with batches capped at `batch_bytes_max`, a page holds at most this
/// many times that in memory.
const READ_PAGE_BATCHES: usize = 32;

/// Loads started over after racing a prune, before giving up.
const LOAD_ATTEMPTS: usize = 4;

/// How one load attempt ended, short of success.
enum Attempt {
    /// The history moved under the read (a prune behind a newer snapshot, or a concurrent
    /// append): load again.
    Raced(String),
    /// A definite failure.
    Failed(LoadError),
}

impl From<LoadError> for Attempt {
    fn from(error: LoadError) -> Self {
        Attempt::Failed(error)
    }
}

impl From<listwire_storage::Error> for Attempt {
    fn from(error: listwire_storage::Error) -> Self {
        Attempt::Failed(LoadError::Storage(error))
    }
}

/// Loads `list`: latest snapshot, then every later batch in order, checked against the head.
pub async fn load(context: &ListContext, list: Uuid) -> Result<Loaded, LoadError> {
    let mut last_race = String::new();
    for attempt in 1..=LOAD_ATTEMPTS {
        match load_once(context, list).await {
            Ok(loaded) => return Ok(loaded),
            Err(Attempt::Failed(error)) => return Err(error),
            Err(Attempt::Raced(reason)) => {
                tracing::info!(list_id = %list, attempt, %reason, "history moved while loading; loading again");
                last_race = reason;
            }
        }
    }
    Err(LoadError::Integrity(format!(
        "history kept moving while loading ({LOAD_ATTEMPTS} attempts): {last_race}"
    )))
}

/// Replays what one page of reads returned into a state being loaded.
struct Replay {
    state: ListState,
    ring: VecDeque<Event>,
    ring_max: usize,
    index: IndexSync,
}

async fn load_once(context: &ListContext, list: Uuid) -> Result<Loaded, Attempt> {
    let (state, snapshot_seq, snapshot_bytes) = read_snapshot(context, list).await?;
    let mut replay = Replay {
        state,
        ring: VecDeque::new(),
        ring_max: context.config.resume_events_max,
        index: IndexSync::default(),
    };
    loop {
        let after = replay.state.seq();
        let page = bounded(
            context,
            context.events.read_batches(list, after, READ_PAGE_BATCHES),
        )
        .await??;
        let Some(first) = page.first() else { break };
        if first.first_seq > after + 1 {
            return Err(gap(context, list, after, first.first_seq).await);
        }
        for batch in &page {
            replay.batch(context, list, batch)?;
        }
        if replay.state.seq() <= after {
            return Err(integrity(format!(
                "reading {list} after {after} did not advance"
            )));
        }
    }
    let head = bounded(context, context.events.head(list)).await??;
    let seq = replay.state.seq();
    if head > seq {
        return Err(Attempt::Raced(format!(
            "head of {list} moved to {head} past the events read ({seq})"
        )));
    }
    if head < seq {
        // A store's head can only be behind the events it returned if the two reads raced
        // (a prune between them); read again, and only a lasting mismatch is an error.
        return Err(Attempt::Raced(format!(
            "list {list} head is {head} but its events end at {seq}"
        )));
    }
    replay.finish(snapshot_seq, snapshot_bytes)
}

async fn read_snapshot(
    context: &ListContext,
    list: Uuid,
) -> Result<(ListState, u64, usize), Attempt> {
    let Some(snapshot) = bounded(context, context.events.latest_snapshot(list)).await?? else {
        return Ok((ListState::new(list), 0, 0));
    };
    let state = decode_snapshot(&snapshot.body).map_err(|error| decode(error.to_string()))?;
    if state.seq() != snapshot.seq || state.list_id() != list {
        return Err(integrity(format!(
            "snapshot of {list} at {} holds seq {}",
            snapshot.seq,
            state.seq()
        )));
    }
    Ok((state, snapshot.seq, snapshot.body.len()))
}

/// A read that starts past `after + 1`: the history in between was pruned, which is only
/// legitimate behind a newer snapshot (then load again from it).
async fn gap(context: &ListContext, list: Uuid, after: u64, first_seq: u64) -> Attempt {
    let latest = match bounded(context, context.events.latest_snapshot(list)).await {
        Ok(latest) => latest,
        Err(timeout) => return timeout,
    };
    match latest {
        Ok(Some(snapshot)) if snapshot.seq > after => Attempt::Raced(format!(
            "history after {after} was pruned behind snapshot {}",
            snapshot.seq
        )),
        Ok(_) => integrity(format!(
            "gap in {list}: have {after}, next stored batch starts at {first_seq}"
        )),
        Err(error) => Attempt::Failed(LoadError::Storage(error)),
    }
}

impl Replay {
    /// Applies one stored batch, which must hold exactly the events `first_seq..=last_seq`.
    fn batch(&mut self, context: &ListContext, list: Uuid, batch: &Batch) -> Result<(), Attempt> {
        let events = decode_batch(&batch.body).map_err(|error| decode(error.to_string()))?;
        let expected = batch.first_seq..=batch.last_seq;
        let exact = events.len() as u64 == batch.last_seq - batch.first_seq + 1
            && events
                .iter()
                .zip(expected.clone())
                .all(|(event, seq)| event.seq == seq);
        if !exact {
            return Err(integrity(format!(
                "batch {expected:?} of {list} holds {} events that are not exactly its seqs",
                events.len()
            )));
        }
        for event in events {
            if event.seq <= self.state.seq() {
                // The page's first batch may straddle where we start.
                continue;
            }
            if event.seq != self.state.seq() + 1 {
                return Err(integrity(format!(
                    "gap in {list}: have {}, next event {}",
                    self.state.seq(),
                    event.seq
                )));
            }
            evolve(&mut self.state, &event, &context.config.limits);
            self.index.note(&event.change);
            self.ring.push_back(event);
            if self.ring.len() > self.ring_max {
                self.ring.pop_front();
            }
        }
        Ok(())
    }

    fn finish(self, snapshot_seq: u64, snapshot_bytes: usize) -> Result<Loaded, Attempt> {
        let mut tail = Vec::with_capacity(self.ring.len());
        for event in self.ring {
            let encoded = serde_json::to_vec(&event).map_err(|error| decode(error.to_string()))?;
            tail.push((event.seq, Bytes::from(encoded)));
        }
        Ok(Loaded {
            state: self.state,
            snapshot_seq,
            snapshot_bytes,
            tail,
            index: self.index,
        })
    }
}

/// One storage read of a load, bounded by the activation timeout: a load as a whole may take as
/// long as its replay needs (a long tail on a slow machine), but no single read may hang.
async fn bounded<T>(
    context: &ListContext,
    read: impl std::future::Future<Output = T>,
) -> Result<T, Attempt> {
    let timeout = context.config.activation_timeout;
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| Attempt::Failed(LoadError::Timeout(timeout)))
}

fn integrity(reason: String) -> Attempt {
    Attempt::Failed(LoadError::Integrity(reason))
}

fn decode(reason: String) -> Attempt {
    Attempt::Failed(LoadError::Decode(reason))
}
