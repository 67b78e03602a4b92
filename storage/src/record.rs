//! Versioned on-disk encoding of every stored value, and the key layouts of the embedded backend.
//!
//! Every record starts with a one-byte format version ([`FORMAT_VERSION`], currently 1), so a
//! later release can change a layout and still read what earlier releases wrote. Integers are
//! big-endian. The layouts (version 1) are:
//!
//! | record     | layout                                                                  |
//! |------------|-------------------------------------------------------------------------|
//! | batch      | `[1][last_seq u64][body]` (`first_seq` lives in the key)                |
//! | snapshot   | `[1][seq u64][body]`                                                    |
//! | user       | `[1][created_at_ms u64][u16 len][username][u16 len][password_hash]`     |
//! | membership | `[2][version u64][1][u8 len][role][u16 len][title]`, or a removal: `[2][version u64][0]` (`list_id` lives in the key) |
//! | head       | `[1][head u64]`                                                         |
//!
//! Membership records are at format version 2, which added the entry's version (the list seq it
//! reflects, so index writes are ordered) and removals kept as tombstones. Version 1 records
//! (`[1][u8 len][role][u16 len][title]`) still decode, as live entries at version 0.
//!
//! The head is versioned like everything else: it is not derivable from the batches once they
//! are pruned, so it is as precious as any other record and deserves the same upgrade path.
//!
//! Decoders never panic. An unknown version, a truncated record or trailing bytes after a
//! fixed-shape record all yield [`Error::Corrupt`] with a message naming the record kind.

use bytes::Bytes;
use uuid::Uuid;

use crate::{Batch, Error, Membership, Snapshot, UserRecord};

/// The format version written by this release at the start of every record but memberships.
pub const FORMAT_VERSION: u8 = 1;

/// The format version of membership records written by this release.
pub const MEMBERSHIP_FORMAT_VERSION: u8 = 2;

/// A stored index entry: a live membership, or a removal remembered at its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipRecord {
    /// The user is a member.
    Live(Membership),
    /// The user was removed from the list as of list seq `version`.
    Removed {
        /// The list.
        list_id: Uuid,
        /// The list seq of the removal.
        version: u64,
    },
}

impl MembershipRecord {
    /// The list seq this record reflects.
    pub fn version(&self) -> u64 {
        match self {
            MembershipRecord::Live(membership) => membership.version,
            MembershipRecord::Removed { version, .. } => *version,
        }
    }

    /// The membership, if the record is live.
    pub fn into_live(self) -> Option<Membership> {
        match self {
            MembershipRecord::Live(membership) => Some(membership),
            MembershipRecord::Removed { .. } => None,
        }
    }
}

/// Length of a batch key: list id (16 bytes) followed by `first_seq` (u64 big-endian).
pub const BATCH_KEY_LEN: usize = 24;

/// Key of a batch in the `batches` keyspace: `list_id ‖ first_seq (u64 BE)`, so a prefix scan over
/// a list visits its batches in seq order.
pub fn batch_key(list: Uuid, first_seq: u64) -> [u8; BATCH_KEY_LEN] {
    let mut key = [0u8; BATCH_KEY_LEN];
    let (id, seq) = key.split_at_mut(16);
    id.copy_from_slice(list.as_bytes());
    seq.copy_from_slice(&first_seq.to_be_bytes());
    key
}

/// Splits a batch key into the list id and `first_seq`.
pub fn decode_batch_key(key: &[u8]) -> Result<(Uuid, u64), Error> {
    let mut r = Reader::new(key, "batch key");
    let list = r.uuid()?;
    let first_seq = r.u64()?;
    r.finish()?;
    Ok((list, first_seq))
}

/// Key of a membership in the `memberships` keyspace: `user_id ‖ list_id`, so a prefix scan over
/// a user visits their lists ordered by list id.
pub fn membership_key(user: Uuid, list: Uuid) -> [u8; 32] {
    let mut key = [0u8; 32];
    let (u, l) = key.split_at_mut(16);
    u.copy_from_slice(user.as_bytes());
    l.copy_from_slice(list.as_bytes());
    key
}

/// Splits a membership key into the user id and the list id.
pub fn decode_membership_key(key: &[u8]) -> Result<(Uuid, Uuid), Error> {
    let mut r = Reader::new(key, "membership key");
    let user = r.uuid()?;
    let list = r.uuid()?;
    r.finish()?;
    Ok((user, list))
}

/// Decodes a 16-byte id stored as a value (the `usernames` keyspace maps a name to a user id).
pub fn decode_id(bytes: &[u8]) -> Result<Uuid, Error> {
    let mut r = Reader::new(bytes, "user id");
    let id = r.uuid()?;
    r.finish()?;
    Ok(id)
}

/// Encodes a batch record. The batch's `first_seq` is not included: it is part of the key.
pub fn encode_batch(batch: &Batch) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + batch.body.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&batch.last_seq.to_be_bytes());
    out.extend_from_slice(&batch.body);
    out
}

/// Decodes a batch record stored under `first_seq`. Fails if `last_seq < first_seq`, which no
/// valid append can produce.
pub fn decode_batch(first_seq: u64, bytes: &[u8]) -> Result<Batch, Error> {
    let mut r = Reader::new(bytes, "batch record");
    r.version()?;
    let last_seq = r.u64()?;
    if last_seq < first_seq {
        return Err(Error::Corrupt(format!(
            "batch record: last_seq {last_seq} is below first_seq {first_seq}"
        )));
    }
    let body = Bytes::copy_from_slice(r.rest());
    Ok(Batch {
        first_seq,
        last_seq,
        body,
    })
}

/// The `last_seq` of a batch record, without copying its body.
pub fn batch_last_seq(bytes: &[u8]) -> Result<u64, Error> {
    let mut r = Reader::new(bytes, "batch record");
    r.version()?;
    r.u64()
}

/// Encodes a snapshot record.
pub fn encode_snapshot(snapshot: &Snapshot) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + snapshot.body.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&snapshot.seq.to_be_bytes());
    out.extend_from_slice(&snapshot.body);
    out
}

/// Decodes a snapshot record.
pub fn decode_snapshot(bytes: &[u8]) -> Result<Snapshot, Error> {
    let mut r = Reader::new(bytes, "snapshot record");
    r.version()?;
    let seq = r.u64()?;
    let body = Bytes::copy_from_slice(r.rest());
    Ok(Snapshot { seq, body })
}

/// The `seq` of a snapshot record, without copying its body.
pub fn snapshot_seq(bytes: &[u8]) -> Result<u64, Error> {
    let mut r = Reader::new(bytes, "snapshot record");
    r.version()?;
    r.u64()
}

/// Encodes a user record. The user id is not included: it is the key.
/// Fails with [`Error::InvalidArgument`] if the username or hash is longer than 65,535 bytes.
pub fn encode_user(user: &UserRecord) -> Result<Vec<u8>, Error> {
    let name = user.username.as_bytes();
    let hash = user.password_hash.as_bytes();
    let mut out = Vec::with_capacity(13 + name.len() + hash.len());
    out.push(FORMAT_VERSION);
    out.extend_from_slice(&user.created_at_ms.to_be_bytes());
    put_u16_prefixed(&mut out, name, "username")?;
    put_u16_prefixed(&mut out, hash, "password hash")?;
    Ok(out)
}

/// Decodes a user record stored under `user_id`.
pub fn decode_user(user_id: Uuid, bytes: &[u8]) -> Result<UserRecord, Error> {
    let mut r = Reader::new(bytes, "user record");
    r.version()?;
    let created_at_ms = r.u64()?;
    let len = usize::from(r.u16()?);
    let username = r.string(len)?;
    let len = usize::from(r.u16()?);
    let password_hash = r.string(len)?;
    r.finish()?;
    Ok(UserRecord {
        user_id,
        username,
        password_hash,
        created_at_ms,
    })
}

/// Encodes a live membership record (format 2). The list id is not included: it is part of the
/// key. Fails with [`Error::InvalidArgument`] if the role is longer than 255 bytes or the title
/// longer than 65,535 bytes.
pub fn encode_membership(membership: &Membership) -> Result<Vec<u8>, Error> {
    let role = membership.role.as_bytes();
    let title = membership.title.as_bytes();
    let role_len = u8::try_from(role.len()).map_err(|_| {
        Error::InvalidArgument(format!("role is {} bytes, at most 255 allowed", role.len()))
    })?;
    let mut out = Vec::with_capacity(13 + role.len() + title.len());
    out.push(MEMBERSHIP_FORMAT_VERSION);
    out.extend_from_slice(&membership.version.to_be_bytes());
    out.push(1);
    out.push(role_len);
    out.extend_from_slice(role);
    put_u16_prefixed(&mut out, title, "title")?;
    Ok(out)
}

/// Encodes the removal of a membership as of list seq `version` (format 2).
pub fn encode_membership_removed(version: u64) -> Vec<u8> {
    let mut out = Vec::with_capacity(10);
    out.push(MEMBERSHIP_FORMAT_VERSION);
    out.extend_from_slice(&version.to_be_bytes());
    out.push(0);
    out
}

/// Decodes a membership record (format 1 or 2) stored for `list_id`.
pub fn decode_membership(list_id: Uuid, bytes: &[u8]) -> Result<MembershipRecord, Error> {
    let mut r = Reader::new(bytes, "membership record");
    let version = match r.u8()? {
        1 => 0,
        MEMBERSHIP_FORMAT_VERSION => {
            let version = r.u64()?;
            match r.u8()? {
                1 => version,
                0 => {
                    r.finish()?;
                    return Ok(MembershipRecord::Removed { list_id, version });
                }
                other => {
                    return Err(Error::Corrupt(format!(
                        "membership record: unknown entry state {other}"
                    )))
                }
            }
        }
        other => {
            return Err(Error::Corrupt(format!(
                "membership record: unknown format version {other} (this build reads versions 1 and {MEMBERSHIP_FORMAT_VERSION})"
            )))
        }
    };
    let len = usize::from(r.u8()?);
    let role = r.string(len)?;
    let len = usize::from(r.u16()?);
    let title = r.string(len)?;
    r.finish()?;
    Ok(MembershipRecord::Live(Membership {
        list_id,
        role,
        title,
        version,
    }))
}

/// Encodes a list head record.
pub fn encode_head(head: u64) -> [u8; 9] {
    let mut out = [FORMAT_VERSION; 9];
    let (_, rest) = out.split_at_mut(1);
    rest.copy_from_slice(&head.to_be_bytes());
    out
}

/// Decodes a list head record.
pub fn decode_head(bytes: &[u8]) -> Result<u64, Error> {
    let mut r = Reader::new(bytes, "head record");
    r.version()?;
    let head = r.u64()?;
    r.finish()?;
    Ok(head)
}

fn put_u16_prefixed(out: &mut Vec<u8>, bytes: &[u8], what: &str) -> Result<(), Error> {
    let len = u16::try_from(bytes.len()).map_err(|_| {
        Error::InvalidArgument(format!(
            "{what} is {} bytes, at most 65535 allowed",
            bytes.len()
        ))
    })?;
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    Ok(())
}

/// A bounds-checked cursor over a record. Every read reports truncation as [`Error::Corrupt`].
struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], what: &'static str) -> Self {
        Self { buf, what }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        let Some((head, rest)) = self.buf.split_at_checked(n) else {
            return Err(Error::Corrupt(format!(
                "{}: truncated, needed {n} more bytes but {} remain",
                self.what,
                self.buf.len()
            )));
        };
        self.buf = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let bytes = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn version(&mut self) -> Result<(), Error> {
        let version = self.u8()?;
        if version != FORMAT_VERSION {
            return Err(Error::Corrupt(format!(
                "{}: unknown format version {version} (this build reads version {FORMAT_VERSION})",
                self.what
            )));
        }
        Ok(())
    }

    fn u8(&mut self) -> Result<u8, Error> {
        Ok(u8::from_be_bytes(self.array()?))
    }

    fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn uuid(&mut self) -> Result<Uuid, Error> {
        Ok(Uuid::from_bytes(self.array()?))
    }

    fn string(&mut self, len: usize) -> Result<String, Error> {
        let bytes = self.take(len)?;
        String::from_utf8(bytes.to_vec())
            .map_err(|e| Error::Corrupt(format!("{}: text is not UTF-8: {e}", self.what)))
    }

    fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    fn finish(&self) -> Result<(), Error> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(Error::Corrupt(format!(
                "{}: {} unexpected trailing bytes",
                self.what,
                self.buf.len()
            )))
        }
    }
}

#[cfg(test)]
#[path = "record_tests.rs"]
mod tests;
