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
//! | membership | `[1][u8 len][role][u16 len][title]` (`list_id` lives in the key)        |
//! | head       | `[1][head u64]`                                                         |
//!
//! The head is versioned like everything else: it is not derivable from the batches once they
//! are pruned, so it is as precious as any other record and deserves the same upgrade path.
//!
//! Decoders never panic. An unknown version, a truncated record or trailing bytes after a
//! fixed-shape record all yield [`Error::Corrupt`] with a message naming the record kind.

use bytes::Bytes;
use uuid::Uuid;

use crate::{Batch, Error, Membership, Snapshot, UserRecord};

/// The format version written by this release at the start of every record.
pub const FORMAT_VERSION: u8 = 1;

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

/// Encodes a membership record. The list id is not included: it is part of the key.
/// Fails with [`Error::InvalidArgument`] if the role is longer than 255 bytes or the title longer
/// than 65,535 bytes.
pub fn encode_membership(membership: &Membership) -> Result<Vec<u8>, Error> {
    let role = membership.role.as_bytes();
    let title = membership.title.as_bytes();
    let role_len = u8::try_from(role.len()).map_err(|_| {
        Error::InvalidArgument(format!("role is {} bytes, at most 255 allowed", role.len()))
    })?;
    let mut out = Vec::with_capacity(4 + role.len() + title.len());
    out.push(FORMAT_VERSION);
    out.push(role_len);
    out.extend_from_slice(role);
    put_u16_prefixed(&mut out, title, "title")?;
    Ok(out)
}

/// Decodes a membership record stored for `list_id`.
pub fn decode_membership(list_id: Uuid, bytes: &[u8]) -> Result<Membership, Error> {
    let mut r = Reader::new(bytes, "membership record");
    r.version()?;
    let len = usize::from(r.u8()?);
    let role = r.string(len)?;
    let len = usize::from(r.u16()?);
    let title = r.string(len)?;
    r.finish()?;
    Ok(Membership {
        list_id,
        role,
        title,
    })
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
mod tests {
    use super::*;

    fn user() -> UserRecord {
        UserRecord {
            user_id: Uuid::from_u128(7),
            username: "ada".into(),
            password_hash: "$argon2id$v=19$x".into(),
            created_at_ms: 1_700_000_000_000,
        }
    }

    fn membership() -> Membership {
        Membership {
            list_id: Uuid::from_u128(9),
            role: "editor".into(),
            title: "Groceries".into(),
        }
    }

    fn assert_corrupt<T: std::fmt::Debug>(result: Result<T, Error>, needle: &str) {
        match result {
            Err(Error::Corrupt(msg)) => assert!(msg.contains(needle), "message {msg:?}"),
            other => panic!("expected Corrupt containing {needle:?}, got {other:?}"),
        }
    }

    #[test]
    fn round_trips() -> Result<(), Error> {
        let batch = Batch {
            first_seq: 4,
            last_seq: 6,
            body: Bytes::from_static(b"events"),
        };
        assert_eq!(decode_batch(4, &encode_batch(&batch))?, batch);
        let snap = Snapshot {
            seq: 6,
            body: Bytes::from_static(b"state"),
        };
        assert_eq!(decode_snapshot(&encode_snapshot(&snap))?, snap);
        assert_eq!(decode_user(user().user_id, &encode_user(&user())?)?, user());
        let m = membership();
        assert_eq!(decode_membership(m.list_id, &encode_membership(&m)?)?, m);
        assert_eq!(decode_head(&encode_head(42))?, 42);
        let list = Uuid::from_u128(3);
        assert_eq!(decode_batch_key(&batch_key(list, 5))?, (list, 5));
        Ok(())
    }

    #[test]
    fn every_truncation_of_fixed_records_is_corrupt() -> Result<(), Error> {
        let user_bytes = encode_user(&user())?;
        for len in 0..user_bytes.len() {
            let cut = user_bytes.get(..len).unwrap_or_default();
            assert_corrupt(decode_user(Uuid::nil(), cut), "user record: truncated");
        }
        let m_bytes = encode_membership(&membership())?;
        for len in 0..m_bytes.len() {
            let cut = m_bytes.get(..len).unwrap_or_default();
            assert_corrupt(decode_membership(Uuid::nil(), cut), "truncated");
        }
        let head = encode_head(5);
        for len in 0..head.len() {
            let cut = head.get(..len).unwrap_or_default();
            assert_corrupt(decode_head(cut), "head record: truncated");
        }
        // Batch and snapshot bodies run to the end, so only the header can be truncated.
        assert_corrupt(decode_batch(1, &[1, 0, 0]), "batch record: truncated");
        assert_corrupt(decode_snapshot(&[1]), "snapshot record: truncated");
        assert_corrupt(decode_batch(1, &[]), "truncated");
        Ok(())
    }

    #[test]
    fn unknown_version_is_corrupt() -> Result<(), Error> {
        let mut b = encode_batch(&Batch {
            first_seq: 1,
            last_seq: 1,
            body: Bytes::new(),
        });
        if let Some(v) = b.first_mut() {
            *v = 2;
        }
        assert_corrupt(decode_batch(1, &b), "unknown format version 2");
        let mut s = encode_snapshot(&Snapshot {
            seq: 1,
            body: Bytes::new(),
        });
        if let Some(v) = s.first_mut() {
            *v = 0;
        }
        assert_corrupt(decode_snapshot(&s), "unknown format version 0");
        let mut u = encode_user(&user())?;
        if let Some(v) = u.first_mut() {
            *v = 255;
        }
        assert_corrupt(decode_user(Uuid::nil(), &u), "unknown format version 255");
        let mut m = encode_membership(&membership())?;
        if let Some(v) = m.first_mut() {
            *v = 9;
        }
        assert_corrupt(decode_membership(Uuid::nil(), &m), "unknown format version");
        assert_corrupt(decode_head(&[7, 0, 0, 0, 0, 0, 0, 0, 1]), "unknown format");
        Ok(())
    }

    #[test]
    fn trailing_garbage_is_corrupt() -> Result<(), Error> {
        let mut u = encode_user(&user())?;
        u.push(0xff);
        assert_corrupt(decode_user(Uuid::nil(), &u), "1 unexpected trailing bytes");
        let mut m = encode_membership(&membership())?;
        m.extend_from_slice(b"xx");
        assert_corrupt(decode_membership(Uuid::nil(), &m), "2 unexpected trailing");
        let mut h = encode_head(1).to_vec();
        h.push(0);
        assert_corrupt(decode_head(&h), "trailing");
        let mut k = batch_key(Uuid::nil(), 1).to_vec();
        k.push(0);
        assert_corrupt(decode_batch_key(&k), "trailing");
        Ok(())
    }

    #[test]
    fn invalid_contents_are_corrupt() {
        // last_seq below first_seq cannot come from a valid append.
        let b = encode_batch(&Batch {
            first_seq: 5,
            last_seq: 5,
            body: Bytes::new(),
        });
        assert_corrupt(decode_batch(6, &b), "below first_seq");
        // A username that is not UTF-8.
        let bad = [1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0, 0];
        assert_corrupt(decode_user(Uuid::nil(), &bad), "not UTF-8");
    }

    #[test]
    fn oversized_fields_are_rejected_on_encode() {
        let mut u = user();
        u.username = "x".repeat(70_000);
        assert!(matches!(encode_user(&u), Err(Error::InvalidArgument(_))));
        let mut m = membership();
        m.role = "r".repeat(256);
        assert!(matches!(
            encode_membership(&m),
            Err(Error::InvalidArgument(_))
        ));
    }
}
