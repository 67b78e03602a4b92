//! Activation: rebuild a list from its latest snapshot plus the events after it.

use bytes::Bytes;
use uuid::Uuid;

use crate::domain::{decode_batch, decode_snapshot, evolve, Change, ListState};
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
    /// Encoded events replayed after the snapshot (for `since` resume), oldest first.
    pub tail: Vec<(u64, Bytes)>,
    /// Membership and title changes among the replayed events. The "my lists" index is synced
    /// before each snapshot, so only these may be missing from it after a crash.
    pub index_changes: Vec<Change>,
}

const READ_PAGE_BATCHES: usize = 256;

/// Loads `list`: latest snapshot, then every later batch in order, checked against the head.
///
/// A gap can appear if a previous actor of this list, stopping, wrote a newer snapshot and pruned
/// the history between our two reads; reading again then starts from that snapshot.
pub async fn load(context: &ListContext, list: Uuid) -> Result<Loaded, LoadError> {
    match load_once(context, list).await {
        Err(LoadError::Integrity(reason)) => {
            tracing::info!(list = %list, %reason, "reloading after an inconsistent read");
            load_once(context, list).await
        }
        loaded => loaded,
    }
}

async fn load_once(context: &ListContext, list: Uuid) -> Result<Loaded, LoadError> {
    let limits = &context.config.limits;
    let (mut state, snapshot_seq, snapshot_bytes) =
        match context.events.latest_snapshot(list).await? {
            Some(snapshot) => {
                let state = decode_snapshot(&snapshot.body)
                    .map_err(|error| LoadError::Decode(error.to_string()))?;
                if state.seq() != snapshot.seq || state.list_id() != list {
                    return Err(LoadError::Integrity(format!(
                        "snapshot of {list} at {} holds seq {}",
                        snapshot.seq,
                        state.seq()
                    )));
                }
                (state, snapshot.seq, snapshot.body.len())
            }
            None => (ListState::new(list), 0, 0),
        };
    let mut tail = Vec::new();
    let mut index_changes = Vec::new();
    loop {
        let batches = context
            .events
            .read_batches(list, state.seq(), READ_PAGE_BATCHES)
            .await?;
        if batches.is_empty() {
            break;
        }
        for batch in batches {
            let events =
                decode_batch(&batch.body).map_err(|error| LoadError::Decode(error.to_string()))?;
            for event in events {
                if event.seq <= state.seq() {
                    continue;
                }
                if event.seq != state.seq() + 1 {
                    return Err(LoadError::Integrity(format!(
                        "gap in {list}: have {}, next event {}",
                        state.seq(),
                        event.seq
                    )));
                }
                let encoded = serde_json::to_vec(&event)
                    .map_err(|error| LoadError::Decode(error.to_string()))?;
                evolve(&mut state, &event, limits);
                if matches!(
                    event.change,
                    Change::Create { .. }
                        | Change::Share { .. }
                        | Change::Unshare { .. }
                        | Change::Rename { .. }
                ) {
                    index_changes.push(event.change.clone());
                }
                tail.push((event.seq, Bytes::from(encoded)));
            }
        }
    }
    let head = context.events.head(list).await?;
    if head != state.seq() {
        return Err(LoadError::Integrity(format!(
            "list {list} head is {head} but its events end at {}",
            state.seq()
        )));
    }
    let keep_from = tail.len().saturating_sub(context.config.resume_events_max);
    tail.drain(..keep_from);
    Ok(Loaded {
        state,
        snapshot_seq,
        snapshot_bytes,
        tail,
        index_changes,
    })
}
