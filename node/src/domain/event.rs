//! Durable events: what a decided op changed, with the resulting ids and values.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::types::{ItemId, MediaType, PollSettings, Role, UserId, Visibility};

/// One durable event, serialized flat:
/// `{"seq":43,"op_id":"..","by":"<user id>","at_ms":..,"kind":"add_item","item":"..","text":"milk","after":null}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The list's event number; the first event (create) is 1.
    pub seq: u64,
    /// The op id of the command that produced it.
    pub op_id: Uuid,
    /// The acting user.
    pub by: UserId,
    /// The command's time, as the list's owner stamped it; never below the previous event's.
    pub at_ms: u64,
    /// The digest of (sender, op) that produced it (see `digest`); 0 for events stored before
    /// digests existed. Written as 16 hex digits, left out when 0.
    #[serde(
        default,
        skip_serializing_if = "super::digest::hex::is_unknown",
        with = "super::digest::hex"
    )]
    pub op_digest: u64,
    /// The op-id window's clock at this event, when it is not the previous event's plus the
    /// growth of `at_ms` (after an owner change, or when `at_ms` jumped further than real time
    /// went). Left out otherwise; see `state::OpRecord::window_ms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window_ms: Option<u64>,
    /// What changed.
    #[serde(flatten)]
    pub change: Change,
}

/// What an event changed; mirrors the ops, with resulting ids and values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Change {
    /// The list was created (always seq 1).
    Create {
        /// The title.
        title: String,
        /// The owner's user id.
        owner: UserId,
        /// The owner's username.
        owner_name: String,
        /// The initial visibility.
        visibility: Visibility,
        /// The initial poll, if any.
        poll: Option<PollSettings>,
    },
    /// The title changed.
    Rename {
        /// The new title.
        title: String,
    },
    /// An item was added.
    AddItem {
        /// The new item's id.
        item: ItemId,
        /// Its text.
        text: String,
        /// The item it follows, or `None` at the top.
        after: Option<ItemId>,
    },
    /// An item's text changed.
    EditItem {
        /// The item.
        item: ItemId,
        /// The new text.
        text: String,
    },
    /// An item was marked done or not done.
    SetDone {
        /// The item.
        item: ItemId,
        /// The new state.
        done: bool,
    },
    /// An item moved.
    MoveItem {
        /// The item.
        item: ItemId,
        /// The item it now follows, or `None` at the top.
        after: Option<ItemId>,
    },
    /// An item and its votes were removed.
    RemoveItem {
        /// The item.
        item: ItemId,
    },
    /// Media was attached to an item.
    AttachMedia {
        /// The item.
        item: ItemId,
        /// The url.
        url: String,
        /// The media type.
        media_type: MediaType,
    },
    /// A user became a member, or a member's role changed.
    Share {
        /// The user's id.
        user: UserId,
        /// The user's username.
        username: String,
        /// The new role (never owner).
        role: Role,
    },
    /// A member was removed (their votes stay).
    Unshare {
        /// The user's id.
        user: UserId,
        /// The user's username.
        username: String,
    },
    /// The poll was created or changed.
    SetPoll {
        /// How many items one user may vote for.
        max_votes_per_user: u32,
        /// Whether votes may be taken back.
        allow_change: bool,
        /// Whether the poll takes votes.
        open: bool,
        /// Optional closing time.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        close_at_ms: Option<u64>,
    },
    /// The visibility changed.
    SetVisibility {
        /// The new visibility.
        visibility: Visibility,
    },
    /// The acting user voted for an item.
    Vote {
        /// The item.
        item: ItemId,
        /// The item's vote count after this vote.
        votes: u64,
    },
    /// The acting user took a vote back.
    Unvote {
        /// The item.
        item: ItemId,
        /// The item's vote count after this unvote.
        votes: u64,
    },
}

impl Change {
    /// Whether this is a vote or an unvote (the events that tallies may stand for).
    pub fn is_vote(&self) -> bool {
        matches!(self, Change::Vote { .. } | Change::Unvote { .. })
    }
}
