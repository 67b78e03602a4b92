//! In-memory backend for tests and simulations.
//!
//! [`MemoryStore`] keeps everything behind one `std::sync::Mutex`. Every method takes the lock,
//! does its work synchronously and releases it before returning, so the lock is never held
//! across an `.await` and each operation (in particular the conditional append) is atomic.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use uuid::Uuid;

use crate::record::MembershipRecord;
use crate::{AccountStore, Batch, Error, EventStore, Membership, Snapshot, UserRecord};

/// An in-memory [`EventStore`] and [`AccountStore`]. Cloning is cheap and shares the data.
///
/// Nothing survives the process; "durable on return" means "visible to every later call".
#[derive(Debug, Clone, Default)]
pub struct MemoryStore {
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Default)]
struct State {
    lists: HashMap<Uuid, ListState>,
    users: HashMap<Uuid, UserRecord>,
    usernames: HashMap<String, Uuid>,
    /// Per user, by list: live entries and removals (tombstones), each with its version.
    memberships: HashMap<Uuid, BTreeMap<Uuid, MembershipRecord>>,
    closed: bool,
}

#[derive(Debug, Default)]
struct ListState {
    head: u64,
    /// Batches keyed by `first_seq`.
    batches: BTreeMap<u64, Batch>,
    snapshot: Option<Snapshot>,
}

impl MemoryStore {
    /// Creates an empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Locks the state. A panic in another thread while it held the lock cannot leave the state
    /// half-updated (every mutation is a single step after validation), so a poisoned lock is
    /// safe to recover.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Locks the state for a write, refusing once the store is closed.
    fn lock_for_write(&self) -> Result<MutexGuard<'_, State>, Error> {
        let state = self.lock();
        if state.closed {
            return Err(Error::ShuttingDown);
        }
        Ok(state)
    }
}

#[async_trait]
impl EventStore for MemoryStore {
    async fn append(&self, list: Uuid, batch: Batch) -> Result<(), Error> {
        if batch.last_seq < batch.first_seq {
            return Err(Error::InvalidArgument(format!(
                "batch last_seq {} is below first_seq {}",
                batch.last_seq, batch.first_seq
            )));
        }
        let mut state = self.lock_for_write()?;
        let entry = state.lists.entry(list).or_default();
        let fenced = !crate::mutants::active(crate::mutants::Mutant::SkipConditionalAppend);
        if fenced && Some(batch.first_seq) != entry.head.checked_add(1) {
            return Err(Error::AppendConflict {
                list,
                head: entry.head,
                first_seq: batch.first_seq,
            });
        }
        entry.head = batch.last_seq;
        entry.batches.insert(batch.first_seq, batch);
        Ok(())
    }

    async fn head(&self, list: Uuid) -> Result<u64, Error> {
        Ok(self.lock().lists.get(&list).map_or(0, |l| l.head))
    }

    async fn read_batches(
        &self,
        list: Uuid,
        after_seq: u64,
        max_batches: usize,
    ) -> Result<Vec<Batch>, Error> {
        let state = self.lock();
        let Some(entry) = state.lists.get(&list) else {
            return Ok(Vec::new());
        };
        // Batches are contiguous, so only the batch starting at or before `after_seq + 1` can
        // straddle `after_seq`; start there instead of scanning the whole history.
        let start = entry
            .batches
            .range(..=after_seq.saturating_add(1))
            .next_back()
            .map_or(0, |(first, _)| *first);
        Ok(entry
            .batches
            .range(start..)
            .map(|(_, b)| b)
            .filter(|b| b.last_seq > after_seq)
            .take(max_batches)
            .cloned()
            .collect())
    }

    async fn write_snapshot(&self, list: Uuid, snapshot: Snapshot) -> Result<(), Error> {
        let mut state = self.lock_for_write()?;
        let entry = state.lists.entry(list).or_default();
        let newer = entry
            .snapshot
            .as_ref()
            .is_none_or(|current| snapshot.seq > current.seq);
        if newer {
            entry.snapshot = Some(snapshot);
        }
        Ok(())
    }

    async fn latest_snapshot(&self, list: Uuid) -> Result<Option<Snapshot>, Error> {
        Ok(self
            .lock()
            .lists
            .get(&list)
            .and_then(|l| l.snapshot.clone()))
    }

    async fn prune(&self, list: Uuid, up_to_seq: u64) -> Result<(), Error> {
        let mut state = self.lock_for_write()?;
        if let Some(entry) = state.lists.get_mut(&list) {
            entry.batches.retain(|_, b| b.last_seq > up_to_seq);
        }
        Ok(())
    }

    async fn close(&self) -> Result<(), Error> {
        self.lock().closed = true;
        Ok(())
    }
}

#[async_trait]
impl AccountStore for MemoryStore {
    async fn create_user(&self, user: UserRecord) -> Result<(), Error> {
        let mut state = self.lock_for_write()?;
        if user.username.is_empty() {
            return Err(Error::InvalidArgument("username is empty".into()));
        }
        if state.usernames.contains_key(&user.username) {
            return Err(Error::AlreadyExists(format!(
                "username {:?}",
                user.username
            )));
        }
        if state.users.contains_key(&user.user_id) {
            return Err(Error::AlreadyExists(format!("user id {}", user.user_id)));
        }
        state.usernames.insert(user.username.clone(), user.user_id);
        state.users.insert(user.user_id, user);
        Ok(())
    }

    async fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>, Error> {
        let state = self.lock();
        Ok(state
            .usernames
            .get(username)
            .and_then(|id| state.users.get(id))
            .cloned())
    }

    async fn user_by_id(&self, user_id: Uuid) -> Result<Option<UserRecord>, Error> {
        Ok(self.lock().users.get(&user_id).cloned())
    }

    async fn put_membership(&self, user_id: Uuid, membership: Membership) -> Result<(), Error> {
        let mut state = self.lock_for_write()?;
        let list_id = membership.list_id;
        put_if_newer(
            state.memberships.entry(user_id).or_default(),
            list_id,
            MembershipRecord::Live(membership),
        );
        Ok(())
    }

    async fn remove_membership(
        &self,
        user_id: Uuid,
        list_id: Uuid,
        version: u64,
    ) -> Result<(), Error> {
        let mut state = self.lock_for_write()?;
        put_if_newer(
            state.memberships.entry(user_id).or_default(),
            list_id,
            MembershipRecord::Removed { list_id, version },
        );
        Ok(())
    }

    async fn memberships(&self, user_id: Uuid, limit: usize) -> Result<Vec<Membership>, Error> {
        Ok(self
            .lock()
            .memberships
            .get(&user_id)
            .map(|lists| {
                lists
                    .values()
                    .filter_map(|entry| entry.clone().into_live())
                    .take(limit)
                    .collect()
            })
            .unwrap_or_default())
    }
}

/// Stores `record` for `list_id` unless a higher version is stored.
fn put_if_newer(
    lists: &mut BTreeMap<Uuid, MembershipRecord>,
    list_id: Uuid,
    record: MembershipRecord,
) {
    let newer = lists
        .get(&list_id)
        .is_none_or(|stored| record.version() >= stored.version());
    if newer {
        lists.insert(list_id, record);
    }
}
