//! Blocking reads against the fjall keyspaces. Callers run them on tokio's blocking pool.
//!
//! Every value is decoded (and so copied) out of fjall's `Slice` before returning, because a
//! `Slice` pins its whole block in memory.

use fjall::{Readable, Snapshot as View};
use uuid::Uuid;

use super::{backend, Tables};
use crate::record;
use crate::{Batch, Error, Membership, Snapshot, UserRecord};

/// The stored head of `list`, 0 if it has none.
///
/// Appends do not write the `heads` keyspace (that would double the memtable inserts of the
/// hottest write path): the head is the `last_seq` of the list's newest batch. Only a prune,
/// which may delete that batch, records the head there, atomically with the deletions. So the
/// head is the larger of the two; data written when appends still wrote `heads` reads the same.
///
/// The newest batch is read first: a prune that deletes it records the head in the same atomic
/// write, so reading the two in this order can miss the batch only if the recorded head
/// already covers it (the other order could miss both and report an old head).
pub(super) fn head(s: &View, t: &Tables, list: Uuid) -> Result<u64, Error> {
    let newest = match s.prefix(&t.batches, list.as_bytes()).next_back() {
        Some(guard) => {
            let (_key, value) = guard.into_inner().map_err(backend)?;
            record::batch_last_seq(&value)?
        }
        None => 0,
    };
    let recorded = match s.get(&t.heads, list.as_bytes()).map_err(backend)? {
        Some(bytes) => record::decode_head(&bytes)?,
        None => 0,
    };
    Ok(recorded.max(newest))
}

/// Batches of `list` with `last_seq > after_seq`, in seq order, at most `max_batches`.
///
/// Where the scan starts: batches are contiguous (each starts one past the previous one's end),
/// so exactly one stored batch can straddle `after_seq`, and it is the last one whose
/// `first_seq <= after_seq + 1`. One reverse seek over `list‖0 ..= list‖(after_seq + 1)` finds
/// it; the forward scan starts at its key and skips it if it ends at or before `after_seq`.
/// This costs two seeks however long the list's history is, unlike scanning from `list‖0`,
/// which would read every unpruned batch on each page.
pub(super) fn batches(
    s: &View,
    t: &Tables,
    list: Uuid,
    after_seq: u64,
    max_batches: usize,
) -> Result<Vec<Batch>, Error> {
    let mut out = Vec::new();
    if max_batches == 0 {
        return Ok(out);
    }
    let probe = record::batch_key(list, after_seq.saturating_add(1));
    let start = match s
        .range(&t.batches, record::batch_key(list, 0)..=probe)
        .next_back()
    {
        Some(guard) => guard.key().map_err(backend)?.to_vec(),
        None => probe.to_vec(),
    };
    let end = record::batch_key(list, u64::MAX);
    for guard in s.range(&t.batches, start.as_slice()..=end.as_slice()) {
        let (key, value) = guard.into_inner().map_err(backend)?;
        let (_, first_seq) = record::decode_batch_key(&key)?;
        let batch = record::decode_batch(first_seq, &value)?;
        if batch.last_seq <= after_seq {
            continue;
        }
        out.push(batch);
        if out.len() >= max_batches {
            break;
        }
    }
    Ok(out)
}

/// The latest snapshot of `list`.
pub(super) fn latest_snapshot(s: &View, t: &Tables, list: Uuid) -> Result<Option<Snapshot>, Error> {
    s.get(&t.snapshots, list.as_bytes())
        .map_err(backend)?
        .map(|bytes| record::decode_snapshot(&bytes))
        .transpose()
}

/// Looks a user up by username.
pub(super) fn user_by_name(
    s: &View,
    t: &Tables,
    username: &str,
) -> Result<Option<UserRecord>, Error> {
    // fjall rejects empty keys, and no user can have an empty name (create_user refuses it).
    if username.is_empty() {
        return Ok(None);
    }
    let Some(id) = s.get(&t.usernames, username.as_bytes()).map_err(backend)? else {
        return Ok(None);
    };
    let user_id = record::decode_id(&id)?;
    let user = user_by_id(s, t, user_id)?;
    match user {
        Some(user) if user.username == username => Ok(Some(user)),
        Some(user) => Err(Error::Corrupt(format!(
            "username index maps {username:?} to user {user_id}, whose name is {:?}",
            user.username
        ))),
        None => Err(Error::Corrupt(format!(
            "username index maps {username:?} to missing user {user_id}"
        ))),
    }
}

/// Looks a user up by id.
pub(super) fn user_by_id(s: &View, t: &Tables, user_id: Uuid) -> Result<Option<UserRecord>, Error> {
    s.get(&t.users, user_id.as_bytes())
        .map_err(backend)?
        .map(|bytes| record::decode_user(user_id, &bytes))
        .transpose()
}

/// The user's live index entries, ordered by list id (the key order), at most `limit`.
pub(super) fn memberships(
    s: &View,
    t: &Tables,
    user_id: Uuid,
    limit: usize,
) -> Result<Vec<Membership>, Error> {
    let mut out = Vec::new();
    if limit == 0 {
        return Ok(out);
    }
    // Removals are kept as tombstones (so late, older writes stay ignored); skip them.
    for guard in s.prefix(&t.memberships, user_id.as_bytes()) {
        let (key, value) = guard.into_inner().map_err(backend)?;
        let (_, list_id) = record::decode_membership_key(&key)?;
        if let Some(membership) = record::decode_membership(list_id, &value)?.into_live() {
            out.push(membership);
            if out.len() >= limit {
                break;
            }
        }
    }
    Ok(out)
}
