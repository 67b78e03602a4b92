//! Stored encodings, versioned: every encoded value is a format version byte, then JSON.
//! JSON keeps stored records readable and lets `encode_batch(..)[1..]` be spliced into a delta frame.
//! A new format gets a new version byte and a new golden file; old versions keep decoding.
//!
//! Format 2 (written now) adds each event's and each op-id window entry's op digest (16 hex
//! digits; see `digest`). Format 1 decodes with every digest unknown (0).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::event::Event;
use super::invariants::check_invariants;
use super::state::{AppliedOp, Item, ListState, Member, OpRecord};
use super::types::{ItemId, Limits, ListId, Media, PollSettings, Role, UserId, Visibility};

/// The first format: no op digests.
const FORMAT_V1: u8 = 1;
/// The format this build writes: op digests in events and in the op-id window.
pub const FORMAT_V2: u8 = 2;

/// Why stored bytes could not be decoded.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The first byte names a format this code does not know.
    #[error("unknown format version {0}")]
    UnknownVersion(u8),
    /// There were no bytes at all.
    #[error("empty record")]
    Empty,
    /// The JSON after the version byte did not parse into the expected shape.
    #[error("malformed record: {0}")]
    Json(String),
    /// A snapshot parsed but describes an impossible state (duplicate items, miscounted votes, ...).
    #[error("inconsistent snapshot: {0}")]
    Inconsistent(String),
}

/// Encodes a batch of events: `[2]` followed by a JSON array of flat events.
pub fn encode_batch(events: &[Event]) -> Vec<u8> {
    let mut out = vec![FORMAT_V2];
    // Events hold only strings, numbers, booleans and uuids, which always serialize.
    serde_json::to_writer(&mut out, events).expect("events serialize");
    out
}

/// Decodes what `encode_batch` produced.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<Event>, CodecError> {
    let json = versioned_body(bytes)?;
    serde_json::from_slice(json).map_err(|error| CodecError::Json(error.to_string()))
}

/// Encodes everything needed to rebuild the state exactly, including per-user votes and the
/// op-id dedupe window.
pub fn encode_snapshot(state: &ListState) -> Vec<u8> {
    let mut out = vec![FORMAT_V2];
    serde_json::to_writer(&mut out, &SnapshotV1::from_state(state)).expect("snapshot serializes");
    out
}

/// Decodes what `encode_snapshot` produced; `decode_snapshot(&encode_snapshot(s))` equals `s`.
/// The result is checked against the structural invariants (limits are settings and may have
/// changed since the snapshot was written, so they are not checked here).
pub fn decode_snapshot(bytes: &[u8]) -> Result<ListState, CodecError> {
    let json = versioned_body(bytes)?;
    let snapshot: SnapshotV1 =
        serde_json::from_slice(json).map_err(|error| CodecError::Json(error.to_string()))?;
    let state = snapshot.into_state()?;
    let unbounded = Limits {
        items_max: usize::MAX,
        members_max: usize::MAX,
        op_ids_kept_max: usize::MAX,
        ..Limits::default()
    };
    check_invariants(&state, &unbounded).map_err(CodecError::Inconsistent)?;
    Ok(state)
}

fn versioned_body(bytes: &[u8]) -> Result<&[u8], CodecError> {
    match bytes.split_first() {
        None => Err(CodecError::Empty),
        // Format 2 only added optional fields, so one parser reads both.
        Some((&FORMAT_V1 | &FORMAT_V2, json)) => Ok(json),
        Some((&version, _)) => Err(CodecError::UnknownVersion(version)),
    }
}

/// Snapshot format 1. Private: the stored shape may differ from `ListState` and from the client
/// snapshot, which is a separate view.
#[derive(Serialize, Deserialize)]
struct SnapshotV1 {
    list: ListId,
    seq: u64,
    title: String,
    owner: Option<UserId>,
    visibility: Visibility,
    /// By user id.
    members: Vec<MemberV1>,
    poll: Option<PollSettings>,
    /// In display order.
    items: Vec<ItemV1>,
    /// By user id, each user's items by item id.
    votes: Vec<VotesV1>,
    /// Oldest first.
    op_ids: Vec<OpV1>,
}

#[derive(Serialize, Deserialize)]
struct MemberV1 {
    user: UserId,
    username: String,
    role: Role,
}

#[derive(Serialize, Deserialize)]
struct ItemV1 {
    id: ItemId,
    text: String,
    done: bool,
    media: Option<Media>,
    votes: u64,
    created_by: UserId,
    updated_at_ms: u64,
}

#[derive(Serialize, Deserialize)]
struct VotesV1 {
    user: UserId,
    items: Vec<ItemId>,
}

#[derive(Serialize, Deserialize)]
struct OpV1 {
    op_id: Uuid,
    seq: u64,
    at_ms: u64,
    /// Format 2: the window clock, when it differs from `at_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window_ms: Option<u64>,
    /// Format 2: the op digest; absent (0) in format 1.
    #[serde(
        default,
        skip_serializing_if = "super::digest::hex::is_unknown",
        with = "super::digest::hex"
    )]
    digest: u64,
}

impl SnapshotV1 {
    fn from_state(state: &ListState) -> Self {
        let members = state
            .members
            .iter()
            .map(|(user, member)| MemberV1 {
                user: *user,
                username: member.username.clone(),
                role: member.role,
            })
            .collect();
        let items = state
            .order
            .iter()
            .filter_map(|id| state.items.get(id).map(|item| (*id, item.clone())))
            .map(|(id, item)| ItemV1 {
                id,
                text: item.text,
                done: item.done,
                media: item.media,
                votes: item.votes,
                created_by: item.created_by,
                updated_at_ms: item.updated_at_ms,
            })
            .collect();
        let votes = state
            .votes
            .iter()
            .map(|(user, items)| VotesV1 {
                user: *user,
                items: items.iter().copied().collect(),
            })
            .collect();
        let op_ids = state
            .op_log
            .iter()
            .map(|record| OpV1 {
                op_id: record.op_id,
                seq: record.seq,
                at_ms: record.at_ms,
                window_ms: (record.window_ms != record.at_ms).then_some(record.window_ms),
                digest: record.digest,
            })
            .collect();
        SnapshotV1 {
            list: state.list_id,
            seq: state.seq,
            title: state.title.clone(),
            owner: state.owner,
            visibility: state.visibility,
            members,
            poll: state.poll.clone(),
            items,
            votes,
            op_ids,
        }
    }

    /// Rebuilds the state, rejecting duplicates that the maps would otherwise hide.
    fn into_state(self) -> Result<ListState, CodecError> {
        let duplicate =
            |what: &str, id: Uuid| CodecError::Inconsistent(format!("duplicate {what} {id}"));
        let mut members = BTreeMap::new();
        for member in self.members {
            let entry = Member {
                username: member.username,
                role: member.role,
            };
            if members.insert(member.user, entry).is_some() {
                return Err(duplicate("member", member.user));
            }
        }
        let mut order = Vec::with_capacity(self.items.len());
        let mut items = HashMap::with_capacity(self.items.len());
        for item in self.items {
            order.push(item.id);
            let entry = Item {
                text: item.text,
                done: item.done,
                media: item.media,
                votes: item.votes,
                created_by: item.created_by,
                updated_at_ms: item.updated_at_ms,
            };
            if items.insert(item.id, entry).is_some() {
                return Err(duplicate("item", item.id));
            }
        }
        let mut votes = BTreeMap::new();
        for user_votes in self.votes {
            let item_set: BTreeSet<ItemId> = user_votes.items.iter().copied().collect();
            if item_set.len() != user_votes.items.len()
                || votes.insert(user_votes.user, item_set).is_some()
            {
                return Err(duplicate("votes of user", user_votes.user));
            }
        }
        let mut op_log = VecDeque::with_capacity(self.op_ids.len());
        let mut op_index = HashMap::with_capacity(self.op_ids.len());
        for op in self.op_ids {
            let applied = AppliedOp {
                seq: op.seq,
                digest: op.digest,
            };
            if op_index.insert(op.op_id, applied).is_some() {
                return Err(duplicate("op id", op.op_id));
            }
            op_log.push_back(OpRecord {
                op_id: op.op_id,
                seq: op.seq,
                at_ms: op.at_ms,
                window_ms: op.window_ms.unwrap_or(op.at_ms),
                digest: op.digest,
            });
        }
        Ok(ListState {
            list_id: self.list,
            seq: self.seq,
            title: self.title,
            owner: self.owner,
            visibility: self.visibility,
            members,
            poll: self.poll,
            order,
            items,
            votes,
            op_log,
            op_index,
        })
    }
}
