use async_trait::async_trait;
use bytes::Bytes;
use uuid::Uuid;

use crate::Error;

/// A group of consecutive events of one list, stored as one opaque record.
///
/// It covers seqs `first_seq..=last_seq`. The body is encoded by the node crate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Batch {
    /// Seq of the first event in the batch (seqs start at 1).
    pub first_seq: u64,
    /// Seq of the last event in the batch; `last_seq >= first_seq`.
    pub last_seq: u64,
    /// Opaque encoded events.
    pub body: Bytes,
}

/// The state of a list as of `seq`, opaque to storage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The seq of the last event folded into this snapshot.
    pub seq: u64,
    /// Opaque encoded state.
    pub body: Bytes,
}

/// Durable per-list history: conditional append of batches, reads from a seq, snapshots.
#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends `batch` to `list` if and only if `batch.first_seq == head + 1`, where `head` is the
    /// `last_seq` of the newest stored batch (0 for a new list). The check and the write are
    /// atomic, so of two writers racing with the same `first_seq` exactly one succeeds; the other
    /// gets [`Error::AppendConflict`]. Returns only once the batch is durable (fsync'd).
    async fn append(&self, list: Uuid, batch: Batch) -> Result<(), Error>;

    /// The stored head of `list`: the `last_seq` of its newest batch, 0 if it has none.
    /// Pruning never lowers the head.
    async fn head(&self, list: Uuid) -> Result<u64, Error>;

    /// Batches of `list` with `last_seq > after_seq`, in seq order, at most `max_batches` of them.
    /// A caller pages by calling again with the last returned batch's `last_seq`.
    ///
    /// The returned batches are contiguous (each starts one past the previous one's end). If the
    /// history after `after_seq` was pruned, the first batch starts past `after_seq + 1` (the
    /// caller reloads from the newer snapshot that justified the prune); a read racing a prune
    /// never fails because of it.
    async fn read_batches(
        &self,
        list: Uuid,
        after_seq: u64,
        max_batches: usize,
    ) -> Result<Vec<Batch>, Error>;

    /// Stores `snapshot` as the latest snapshot of `list` if it is newer than the stored one
    /// (an older or equal `seq` is ignored). Durable on return.
    async fn write_snapshot(&self, list: Uuid, snapshot: Snapshot) -> Result<(), Error>;

    /// The latest snapshot of `list`, if any.
    async fn latest_snapshot(&self, list: Uuid) -> Result<Option<Snapshot>, Error>;

    /// Deletes batches of `list` whose `last_seq <= up_to_seq`. Callers only prune history that a
    /// durable snapshot covers. The head is unchanged.
    async fn prune(&self, list: Uuid, up_to_seq: u64) -> Result<(), Error>;

    /// Flushes everything to disk and stops accepting writes. Idempotent.
    async fn close(&self) -> Result<(), Error>;
}

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// Stable user id.
    pub user_id: Uuid,
    /// Unique username (compared exactly; the caller normalizes).
    pub username: String,
    /// PHC-format password hash (argon2).
    pub password_hash: String,
    /// Creation time, milliseconds since the Unix epoch.
    pub created_at_ms: u64,
}

/// One entry of the user → lists index ("my lists").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The list.
    pub list_id: Uuid,
    /// The user's role in it (`owner`, `editor`, `voter`, `viewer`), as the node spells it.
    pub role: String,
    /// The list's title as of the last index update.
    pub title: String,
    /// The list's seq this entry reflects. Index writes are ordered by it: a write (or removal)
    /// older than what is stored for the same user and list is ignored, so a late write from a
    /// stopped owner can never undo a newer one.
    pub version: u64,
}

/// Accounts and the user → lists index.
#[async_trait]
pub trait AccountStore: Send + Sync + 'static {
    /// Creates a user. Fails with [`Error::AlreadyExists`] if the username is taken.
    async fn create_user(&self, user: UserRecord) -> Result<(), Error>;
    /// Looks a user up by username.
    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, Error>;
    /// Looks a user up by id.
    async fn user_by_id(&self, user_id: Uuid) -> Result<Option<UserRecord>, Error>;
    /// Inserts or replaces the index entry for (`user_id`, `membership.list_id`), unless the
    /// stored entry or removal for that pair has a higher version (then nothing changes and the
    /// call still succeeds). An equal version replaces: it describes the same list state.
    async fn put_membership(&self, user_id: Uuid, membership: Membership) -> Result<(), Error>;
    /// Removes the index entry for (`user_id`, `list_id`) as of list seq `version`, unless the
    /// stored entry has a higher version. The removal is remembered (a tombstone), so a put with
    /// a lower version arriving later is ignored.
    async fn remove_membership(
        &self,
        user_id: Uuid,
        list_id: Uuid,
        version: u64,
    ) -> Result<(), Error>;
    /// The user's live index entries (removals are skipped), ordered by list id, at most `limit`.
    async fn memberships(&self, user_id: Uuid, limit: usize) -> Result<Vec<Membership>, Error>;
}
