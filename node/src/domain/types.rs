//! Small value types shared by ops, events and the state: limits, roles, media, polls, rejections.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Identifies a list.
pub type ListId = Uuid;
/// Identifies a user account.
pub type UserId = Uuid;
/// Identifies an item within a list.
pub type ItemId = Uuid;

/// Every limit the list domain enforces; each one is a setting, `Default` gives the protocol's values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest list title, in characters (not bytes); longer titles are `invalid`.
    pub title_chars_max: usize,
    /// Longest item text, in UTF-8 bytes; longer texts are `too_large`.
    pub item_text_bytes_max: usize,
    /// Most items a list may hold; adding past it is a `conflict`.
    pub items_max: usize,
    /// Most members a list may have, the owner included; sharing past it is a `conflict`.
    pub members_max: usize,
    /// Longest media url, in bytes; longer urls are `too_large`.
    pub url_bytes_max: usize,
    /// Upper bound for a poll's `max_votes_per_user` (which must be `1..=cap`).
    pub max_votes_per_user_cap: u32,
    /// The op-id dedupe window always keeps at least this many of the latest op ids.
    pub op_ids_kept_min: usize,
    /// The op-id dedupe window keeps every op id younger than this many milliseconds
    /// (relative to the newest event), as long as `op_ids_kept_max` allows.
    pub op_ids_kept_ms_min: u64,
    /// Hard cap on the dedupe window, so a flood of ops cannot grow memory without bound.
    pub op_ids_kept_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            title_chars_max: 200,
            item_text_bytes_max: 4096,
            items_max: 10_000,
            members_max: 10_000,
            url_bytes_max: 2048,
            max_votes_per_user_cap: 1000,
            op_ids_kept_min: 10_000,
            op_ids_kept_ms_min: 600_000,
            op_ids_kept_max: 200_000,
        }
    }
}

/// What a member may do with a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Everything, including sharing, visibility and poll settings; exactly one per list.
    Owner,
    /// May add, edit, complete, move, remove items and attach media; may vote.
    Editor,
    /// May vote and unvote only.
    Voter,
    /// May read only.
    Viewer,
}

impl Role {
    /// The wire name of the role.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Editor => "editor",
            Role::Voter => "voter",
            Role::Viewer => "viewer",
        }
    }

    /// Whether this role may change items.
    pub fn can_edit_items(self) -> bool {
        matches!(self, Role::Owner | Role::Editor)
    }

    /// Whether this role may vote and unvote.
    pub fn can_vote(self) -> bool {
        matches!(self, Role::Owner | Role::Editor | Role::Voter)
    }
}

/// Who may see a list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Visibility {
    /// Members only.
    Private,
    /// Any signed-in user may view and vote; only members edit.
    Public,
}

impl Visibility {
    /// The wire name of the visibility.
    pub fn as_str(self) -> &'static str {
        match self {
            Visibility::Private => "private",
            Visibility::Public => "public",
        }
    }
}

/// The kind of media an item refers to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MediaType {
    /// A picture.
    Image,
    /// A video.
    Video,
    /// Any other file.
    File,
}

impl MediaType {
    /// The wire name of the media type.
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Image => "image",
            MediaType::Video => "video",
            MediaType::File => "file",
        }
    }
}

/// A media reference attached to an item (the domain stores the url, never the bytes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Media {
    /// An `http://` or `https://` url.
    pub url: String,
    /// What the url points at.
    pub media_type: MediaType,
}

/// A list's poll settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PollSettings {
    /// How many items one user may vote for (1 = one vote per person).
    pub max_votes_per_user: u32,
    /// Whether users may take a vote back (`unvote`).
    pub allow_change: bool,
    /// Whether the poll takes votes at all.
    pub open: bool,
    /// The poll is closed for commands at or after this time, when set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub close_at_ms: Option<u64>,
}

impl PollSettings {
    /// Whether the poll takes votes and unvotes at `at_ms`.
    pub fn is_open_at(&self, at_ms: u64) -> bool {
        self.open
            && self
                .close_at_ms
                .is_none_or(|close_at_ms| at_ms < close_at_ms)
    }
}

/// A user as the domain needs to know them: the stable id and the current username.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRef {
    /// The account's id.
    pub user_id: UserId,
    /// The account's username.
    pub username: String,
}

/// Why a command was refused; maps one to one onto the protocol's error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectCode {
    /// The user may not do this to this list.
    Forbidden,
    /// The list, item, user or member does not exist.
    NotFound,
    /// Bad input; the message names the field.
    Invalid,
    /// A value is longer than its limit.
    TooLarge,
    /// The command contradicts the current state (full list, closed poll, duplicate vote, ...).
    Conflict,
}

impl RejectCode {
    /// The protocol's error code.
    pub fn as_str(self) -> &'static str {
        match self {
            RejectCode::Forbidden => "forbidden",
            RejectCode::NotFound => "not_found",
            RejectCode::Invalid => "invalid",
            RejectCode::TooLarge => "too_large",
            RejectCode::Conflict => "conflict",
        }
    }
}

/// A refused command: an expected outcome, not an error of the node.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct Rejection {
    /// The protocol error code.
    pub code: RejectCode,
    /// A lowercase, client-facing explanation naming the problem.
    pub message: String,
}

impl Rejection {
    pub(crate) fn new(code: RejectCode, message: impl Into<String>) -> Self {
        Rejection {
            code,
            message: message.into(),
        }
    }
}
