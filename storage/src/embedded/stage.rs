//! Validation and staging of one commit group.
//!
//! The committer validates each request of a group against the stored data *plus* what earlier
//! requests of the same group staged, so two appends to one list in one group chain correctly
//! and a racing duplicate loses. Staged changes are kept in maps keyed like the fjall keys, which
//! guarantees each key appears at most once in the group's write batch: fjall gives every item of
//! a batch the same seqno, so two writes to one key in one batch would have no defined winner.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use fjall::OwnedWriteBatch;
use uuid::Uuid;

use super::committer::Op;
use super::{backend, Tables};
use crate::record;
use crate::{Batch, Error, Snapshot, UserRecord};

/// When the head cache grows past this many lists it is cleared between groups. Entries reload
/// from the `heads` keyspace on a miss, so clearing costs one read per list touched again.
const HEAD_CACHE_MAX: usize = 100_000;

/// The committer's cache of list heads. It is only ever ahead of the disk within a group that
/// has not committed yet; after a failed commit it is cleared.
#[derive(Default)]
pub(super) struct HeadCache {
    heads: HashMap<Uuid, u64>,
}

impl HeadCache {
    /// The head of `list`, loading it from disk on a miss.
    fn get(&mut self, t: &Tables, list: Uuid) -> Result<u64, Error> {
        if let Some(head) = self.heads.get(&list) {
            return Ok(*head);
        }
        let head = super::reads::head(&t.db.snapshot(), t, list)?;
        self.heads.insert(list, head);
        Ok(head)
    }

    /// Bounds memory; call only between groups, when the cache matches the disk.
    pub(super) fn trim(&mut self) {
        if self.heads.len() > HEAD_CACHE_MAX {
            self.heads.clear();
        }
    }

    /// Forgets everything, for when staged heads never reached the disk.
    pub(super) fn clear(&mut self) {
        self.heads.clear();
    }
}

/// The accepted changes of one group, not yet written.
#[derive(Default)]
pub(super) struct Stage {
    /// New batch records by (list, first_seq), with their last_seq.
    batches: BTreeMap<(Uuid, u64), (u64, Vec<u8>)>,
    /// Heads to record, for lists whose batches a prune deletes (appends record none).
    heads: HashMap<Uuid, u64>,
    /// Stored batch keys to delete (pruning).
    batch_deletes: BTreeSet<(Uuid, u64)>,
    /// The newest snapshot per list, with its seq.
    snapshots: HashMap<Uuid, (u64, Vec<u8>)>,
    /// New user records by id.
    users: HashMap<Uuid, Vec<u8>>,
    /// New username index entries.
    usernames: HashMap<String, Uuid>,
    /// Membership records (live entries and removals) by key, with their versions; the highest
    /// version wins, as against the stored record.
    memberships: BTreeMap<[u8; 32], (u64, Vec<u8>)>,
}

impl Stage {
    /// Validates `op` and stages its writes. On error nothing of `op` is staged.
    pub(super) fn apply(&mut self, t: &Tables, heads: &mut HeadCache, op: Op) -> Result<(), Error> {
        match op {
            Op::Append { list, batch } => self.append(t, heads, list, batch),
            Op::WriteSnapshot { list, snapshot } => self.write_snapshot(t, list, snapshot),
            Op::Prune { list, up_to_seq } => self.prune(t, heads, list, up_to_seq),
            Op::CreateUser(user) => self.create_user(t, user),
            Op::PutMembership {
                user_id,
                membership,
            } => {
                let key = record::membership_key(user_id, membership.list_id);
                let encoded = record::encode_membership(&membership)?;
                self.stage_membership(t, key, membership.version, encoded)
            }
            Op::RemoveMembership {
                user_id,
                list_id,
                version,
            } => {
                let key = record::membership_key(user_id, list_id);
                let encoded = record::encode_membership_removed(version);
                self.stage_membership(t, key, version, encoded)
            }
        }
    }

    fn append(
        &mut self,
        t: &Tables,
        heads: &mut HeadCache,
        list: Uuid,
        batch: Batch,
    ) -> Result<(), Error> {
        let head = heads.get(t, list)?;
        if Some(batch.first_seq) != head.checked_add(1) {
            return Err(Error::AppendConflict {
                list,
                head,
                first_seq: batch.first_seq,
            });
        }
        check_value_len(batch.body.len(), "batch body")?;
        // Only the cache: the stored head is derived from the newest batch (see `reads::head`).
        heads.heads.insert(list, batch.last_seq);
        self.batches.insert(
            (list, batch.first_seq),
            (batch.last_seq, record::encode_batch(&batch)),
        );
        Ok(())
    }

    fn write_snapshot(&mut self, t: &Tables, list: Uuid, snapshot: Snapshot) -> Result<(), Error> {
        check_value_len(snapshot.body.len(), "snapshot body")?;
        let current = match self.snapshots.get(&list) {
            Some((seq, _)) => Some(*seq),
            None => match t.snapshots.get(list.as_bytes()).map_err(backend)? {
                Some(bytes) => Some(record::snapshot_seq(&bytes)?),
                None => None,
            },
        };
        // An older or equal snapshot is ignored, as the trait promises.
        if current.is_none_or(|seq| snapshot.seq > seq) {
            let encoded = record::encode_snapshot(&snapshot);
            self.snapshots.insert(list, (snapshot.seq, encoded));
        }
        Ok(())
    }

    fn prune(
        &mut self,
        t: &Tables,
        heads: &mut HeadCache,
        list: Uuid,
        up_to_seq: u64,
    ) -> Result<(), Error> {
        // Pruning may delete the newest batch, which is where the head is read from otherwise:
        // record it in the same atomic write.
        let head = heads.get(t, list)?;
        // Batches are stored in seq order and their last_seqs increase, so the scan stops at the
        // first batch that survives: it reads only what it deletes, plus one.
        let mut doomed = Vec::new();
        for guard in t.batches.prefix(list.as_bytes()) {
            let (key, value) = guard.into_inner().map_err(backend)?;
            if record::batch_last_seq(&value)? > up_to_seq {
                break;
            }
            doomed.push(record::decode_batch_key(&key)?);
        }
        // Always (prunes are rare): it may also drop batches staged earlier in this group.
        self.heads.insert(list, head);
        self.batch_deletes.extend(doomed);
        // Batches appended earlier in this group are pruned by never writing them.
        self.batches
            .retain(|(l, _), (last_seq, _)| *l != list || *last_seq > up_to_seq);
        Ok(())
    }

    fn create_user(&mut self, t: &Tables, user: UserRecord) -> Result<(), Error> {
        if user.username.is_empty() {
            return Err(Error::InvalidArgument("username is empty".into()));
        }
        let encoded = record::encode_user(&user)?;
        let taken = self.usernames.contains_key(&user.username)
            || t.usernames
                .contains_key(user.username.as_bytes())
                .map_err(backend)?;
        if taken {
            return Err(Error::AlreadyExists(format!(
                "username {:?}",
                user.username
            )));
        }
        let id_taken = self.users.contains_key(&user.user_id)
            || t.users
                .contains_key(user.user_id.as_bytes())
                .map_err(backend)?;
        if id_taken {
            return Err(Error::AlreadyExists(format!("user id {}", user.user_id)));
        }
        self.usernames.insert(user.username, user.user_id);
        self.users.insert(user.user_id, encoded);
        Ok(())
    }

    /// Stages a membership record unless the staged or stored record for `key` is newer.
    fn stage_membership(
        &mut self,
        t: &Tables,
        key: [u8; 32],
        version: u64,
        encoded: Vec<u8>,
    ) -> Result<(), Error> {
        let current = match self.memberships.get(&key) {
            Some((staged, _)) => Some(*staged),
            None => match t.memberships.get(key).map_err(backend)? {
                Some(bytes) => {
                    let (_, list_id) = record::decode_membership_key(&key)?;
                    Some(record::decode_membership(list_id, &bytes)?.version())
                }
                None => None,
            },
        };
        if current.is_none_or(|stored| version >= stored) {
            self.memberships.insert(key, (version, encoded));
        }
        Ok(())
    }

    /// Whether nothing was staged (every request was refused or a no-op).
    pub(super) fn is_empty(&self) -> bool {
        self.batches.is_empty()
            && self.heads.is_empty()
            && self.batch_deletes.is_empty()
            && self.snapshots.is_empty()
            && self.users.is_empty()
            && self.usernames.is_empty()
            && self.memberships.is_empty()
    }

    /// How many items `write_to` will write (to size the batch once).
    pub(super) fn len(&self) -> usize {
        self.batches.len()
            + self.batch_deletes.len()
            + self.heads.len()
            + self.snapshots.len()
            + self.users.len()
            + self.usernames.len()
            + self.memberships.len()
    }

    /// Moves every staged change into `out`, one item per key.
    pub(super) fn write_to(self, t: &Tables, out: &mut OwnedWriteBatch) {
        for ((list, first_seq), (_, value)) in self.batches {
            out.insert(&t.batches, record::batch_key(list, first_seq), value);
        }
        // A deleted key is always an already stored one (first_seq <= stored head), and a new
        // batch always starts past the stored head, so no key is both inserted and removed.
        for (list, first_seq) in self.batch_deletes {
            out.remove(&t.batches, record::batch_key(list, first_seq));
        }
        for (list, head) in self.heads {
            out.insert(&t.heads, *list.as_bytes(), record::encode_head(head));
        }
        for (list, (_, value)) in self.snapshots {
            out.insert(&t.snapshots, *list.as_bytes(), value);
        }
        for (user_id, value) in self.users {
            out.insert(&t.users, *user_id.as_bytes(), value);
        }
        for (username, user_id) in self.usernames {
            out.insert(&t.usernames, username.into_bytes(), *user_id.as_bytes());
        }
        for (key, (_, value)) in self.memberships {
            out.insert(&t.memberships, key, value);
        }
    }
}

/// fjall stores values of at most 2^32 - 1 bytes and panics beyond; refuse them up front.
fn check_value_len(len: usize, what: &str) -> Result<(), Error> {
    if u32::try_from(len.saturating_add(9)).is_err() {
        return Err(Error::InvalidArgument(format!(
            "{what} is {len} bytes, larger than the 4 GiB the embedded store can hold"
        )));
    }
    Ok(())
}
