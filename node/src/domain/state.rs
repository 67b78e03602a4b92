//! The state of one list, its read accessors and its client-facing JSON views.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use serde::Serialize;
use uuid::Uuid;

use super::types::{ItemId, ListId, Media, PollSettings, Role, UserId, Visibility};

/// One item of a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Item {
    pub(crate) text: String,
    pub(crate) done: bool,
    pub(crate) media: Option<Media>,
    pub(crate) votes: u64,
    pub(crate) created_by: UserId,
    /// The time of the last change to its text, done flag, media or position (votes do not count).
    pub(crate) updated_at_ms: u64,
}

/// A member's username and role.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Member {
    pub(crate) username: String,
    pub(crate) role: Role,
}

/// One remembered op id, oldest first in the dedupe window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OpRecord {
    pub(crate) op_id: Uuid,
    pub(crate) seq: u64,
    pub(crate) at_ms: u64,
    /// The op-id window's clock at this op: it advances with `at_ms`, but never by more than
    /// the real time its owner measured between events, and not at all across an owner change.
    /// So a clock that jumps (a node started with a wrong clock taking over the list) cannot
    /// make the window forget op ids that clients may still retry.
    pub(crate) window_ms: u64,
    /// The digest of (sender, op), 0 if unknown (see `digest`).
    pub(crate) digest: u64,
}

/// What the op-id window remembers of an applied op.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedOp {
    /// The seq it got.
    pub seq: u64,
    /// The digest of (sender, op); 0 if unknown.
    pub digest: u64,
}

/// The state of one list: changed only by `evolve` (through `apply` or `create`), read by everyone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListState {
    pub(crate) list_id: ListId,
    pub(crate) seq: u64,
    pub(crate) title: String,
    pub(crate) owner: Option<UserId>,
    pub(crate) visibility: Visibility,
    /// Every member, the owner included; ordered by user id so iteration is deterministic.
    pub(crate) members: BTreeMap<UserId, Member>,
    pub(crate) poll: Option<PollSettings>,
    /// Display order; always a permutation of the keys of `items`.
    pub(crate) order: Vec<ItemId>,
    pub(crate) items: HashMap<ItemId, Item>,
    /// Each voter's items, keyed by user id so a vote can never count twice; no empty sets.
    pub(crate) votes: BTreeMap<UserId, BTreeSet<ItemId>>,
    /// The dedupe window, oldest first, and its index.
    pub(crate) op_log: VecDeque<OpRecord>,
    pub(crate) op_index: HashMap<Uuid, AppliedOp>,
}

impl ListState {
    /// A list that has not been created yet: `exists()` is false and `seq()` is 0.
    pub fn new(list_id: ListId) -> Self {
        ListState {
            list_id,
            seq: 0,
            title: String::new(),
            owner: None,
            visibility: Visibility::Private,
            members: BTreeMap::new(),
            poll: None,
            order: Vec::new(),
            items: HashMap::new(),
            votes: BTreeMap::new(),
            op_log: VecDeque::new(),
            op_index: HashMap::new(),
        }
    }

    /// The list's id.
    pub fn list_id(&self) -> ListId {
        self.list_id
    }

    /// Whether the create event has been applied.
    pub fn exists(&self) -> bool {
        self.seq > 0
    }

    /// The seq of the last applied event (0 before create).
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The title (empty before create).
    pub fn title(&self) -> &str {
        &self.title
    }

    /// The visibility.
    pub fn visibility(&self) -> Visibility {
        self.visibility
    }

    /// The owner, once created.
    pub fn owner(&self) -> Option<UserId> {
        self.owner
    }

    /// The poll settings, if the list has a poll.
    pub fn poll(&self) -> Option<&PollSettings> {
        self.poll.as_ref()
    }

    /// The user's role, if they are a member.
    pub fn role_of(&self, user: UserId) -> Option<Role> {
        self.members.get(&user).map(|member| member.role)
    }

    /// Whether the user may read the list: any member, or anyone when the list is public.
    pub fn can_view(&self, user: UserId) -> bool {
        self.exists() && (self.visibility == Visibility::Public || self.members.contains_key(&user))
    }

    /// Every member with username and role: the owner first, then the others by user id.
    pub fn members(&self) -> impl Iterator<Item = (UserId, &str, Role)> {
        let owner = self.owner;
        let owner_entry = owner.and_then(|owner_id| self.members.get_key_value(&owner_id));
        let others = self
            .members
            .iter()
            .filter(move |(user, _)| Some(**user) != owner);
        owner_entry
            .into_iter()
            .chain(others)
            .map(|(user, member)| (*user, member.username.as_str(), member.role))
    }

    /// The number of members, the owner included.
    pub fn member_count(&self) -> usize {
        self.members.len()
    }

    /// The number of items.
    pub fn item_count(&self) -> usize {
        self.order.len()
    }

    /// The items a user has voted for, in id order.
    pub fn votes_of(&self, user: UserId) -> impl Iterator<Item = ItemId> + '_ {
        self.votes.get(&user).into_iter().flatten().copied()
    }

    /// The seq an already-applied op got, while its op id is in the dedupe window.
    pub fn op_seq(&self, op_id: Uuid) -> Option<u64> {
        self.op_index.get(&op_id).map(|applied| applied.seq)
    }

    /// What the dedupe window remembers of the op with `op_id`, if it is there.
    pub fn applied_op(&self, op_id: Uuid) -> Option<AppliedOp> {
        self.op_index.get(&op_id).copied()
    }

    /// The time of the last event (0 before any): the list's own clock, which event times never
    /// go below. The newest op record is never pruned while any is kept.
    pub fn clock_ms(&self) -> u64 {
        self.op_log.back().map_or(0, |record| record.at_ms)
    }

    /// The op-id window's clock at the last event (see `OpRecord::window_ms`).
    pub fn window_clock_ms(&self) -> Option<u64> {
        self.op_log.back().map(|record| record.window_ms)
    }

    /// The list snapshot of PROTOCOL.md ("The list snapshot"); items in display order.
    pub fn snapshot_json(&self) -> Vec<u8> {
        let members = self
            .members()
            .map(|(user, username, role)| MemberView {
                user,
                username,
                role,
            })
            .collect();
        let items = self
            .order
            .iter()
            .filter_map(|id| self.items.get(id).map(|item| (id, item)))
            .map(|(id, item)| ItemView {
                id: *id,
                text: &item.text,
                done: item.done,
                media: item.media.as_ref(),
                votes: item.votes,
                created_by: item.created_by,
                updated_at_ms: item.updated_at_ms,
            })
            .collect();
        let view = SnapshotView {
            list: self.list_id,
            seq: self.seq,
            title: &self.title,
            owner: self.owner,
            visibility: self.visibility,
            members,
            poll: self.poll.as_ref(),
            items,
        };
        // Plain structs of strings, numbers and uuids always serialize.
        serde_json::to_vec(&view).expect("snapshot view serializes")
    }

    /// The current vote counts, `{"<item id>":count,...}`, for every item in display order.
    pub fn tally_json(&self) -> Vec<u8> {
        let mut out = String::with_capacity(2 + self.order.len() * 48);
        out.push('{');
        for (index, id) in self.order.iter().enumerate() {
            let votes = self.items.get(id).map_or(0, |item| item.votes);
            if index > 0 {
                out.push(',');
            }
            // Hyphenated uuids need no JSON escaping.
            out.push_str(&format!("\"{id}\":{votes}"));
        }
        out.push('}');
        out.into_bytes()
    }
}

#[derive(Serialize)]
struct SnapshotView<'a> {
    list: ListId,
    seq: u64,
    title: &'a str,
    owner: Option<UserId>,
    visibility: Visibility,
    members: Vec<MemberView<'a>>,
    poll: Option<&'a PollSettings>,
    items: Vec<ItemView<'a>>,
}

#[derive(Serialize)]
struct MemberView<'a> {
    user: UserId,
    username: &'a str,
    role: Role,
}

#[derive(Serialize)]
struct ItemView<'a> {
    id: ItemId,
    text: &'a str,
    done: bool,
    media: Option<&'a Media>,
    votes: u64,
    created_by: UserId,
    updated_at_ms: u64,
}

#[cfg(test)]
impl ListState {
    /// The size of the dedupe window, for tests.
    pub(crate) fn op_count_for_test(&self) -> usize {
        self.op_log.len()
    }
}
