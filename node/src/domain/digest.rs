//! The digest of an op: who sent it and what it asks, so a reused op id is told apart from a
//! retry.
//!
//! The op-id window answers a retry (same op id) with the first outcome. An op id reused by a
//! different op, or by another user, must not be answered that way: it would be acked with
//! another op's seq and silently not applied. Each window entry therefore keeps a digest of
//! (user id, op); a retry must match it.
//!
//! The digest is persisted (in events and snapshots), so it is a specified function: XXH3-64
//! over a domain tag, the user id's 16 bytes and the op's JSON as serde writes it (fields in
//! declaration order; `after` is always written, `null` when absent; `item` only when given).
//! That serialization is therefore frozen: changing how an op serializes (a `skip_serializing_if`
//! on `after`, a renamed field) changes digests, and a retry sent across that upgrade would be
//! answered `conflict`. A pinned test guards it. A new optional field that is left out when
//! absent keeps the digests of ops that do not use it. 0 means "unknown" (events stored before
//! digests): such entries match any op with their op id, as before.

use std::io::Write;

use xxhash_rust::xxh3::Xxh3;

use super::op::{CreateList, Op};
use super::types::UserId;

const OP_TAG: &[u8] = b"listwire-op-digest-v1\0";
const CREATE_TAG: &[u8] = b"listwire-create-digest-v1\0";

/// The digest of `op` sent by `user`; never 0.
pub fn op_digest(user: UserId, op: &Op) -> u64 {
    digest(OP_TAG, user, op)
}

/// The digest of creating a list with `create`, by `user`; never 0.
pub fn create_digest(user: UserId, create: &CreateList) -> u64 {
    digest(CREATE_TAG, user, create)
}

/// Whether an op with digest `incoming` is a retry of the remembered op with digest `stored`.
pub fn is_retry(stored: u64, incoming: u64) -> bool {
    stored == 0 || stored == incoming
}

fn digest<T: serde::Serialize>(tag: &[u8], user: UserId, value: &T) -> u64 {
    let mut hasher = Hashing(Xxh3::new());
    hasher.0.update(tag);
    hasher.0.update(user.as_bytes());
    // Ops are plain data (strings, numbers, uuids) and always serialize; the writer never fails.
    if serde_json::to_writer(&mut hasher, value).is_err() {
        return 1;
    }
    hasher.0.digest().max(1)
}

/// Streams serde's output into the hasher, so no JSON buffer is built.
struct Hashing(Xxh3);

impl Write for Hashing {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.update(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Serde helpers for digests as 16 hex digits (JSON numbers above 2^53 lose precision in
/// JavaScript), with 0 left out entirely.
pub(crate) mod hex {
    use serde::{Deserialize, Deserializer, Serializer};

    pub(crate) fn is_unknown(digest: &u64) -> bool {
        *digest == 0
    }

    pub(crate) fn serialize<S: Serializer>(digest: &u64, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&format!("{digest:016x}"))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<u64, D::Error> {
        let text = <&str>::deserialize(deserializer)?;
        u64::from_str_radix(text, 16).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::parse_op;
    use uuid::Uuid;

    /// Goal: the digest is a fixed function (pinned values), tells users and ops apart, and
    /// ignores how the client spelled the JSON.
    #[test]
    fn digests_are_pinned_and_discriminating() {
        let alice = Uuid::from_u128(1);
        let bob = Uuid::from_u128(2);
        let add = parse_op(r#"{"kind":"add_item","text":"milk","after":null}"#).unwrap();
        let spaced =
            parse_op(r#"{ "after" : null, "text" : "milk", "kind" : "add_item", "x": 1 }"#)
                .unwrap();
        let other = parse_op(r#"{"kind":"add_item","text":"eggs","after":null}"#).unwrap();
        assert_eq!(op_digest(alice, &add), op_digest(alice, &spaced));
        assert_ne!(op_digest(alice, &add), op_digest(alice, &other));
        assert_ne!(op_digest(alice, &add), op_digest(bob, &add));
        assert_eq!(
            op_digest(alice, &add),
            0x2d5b_22bb_821e_62a3,
            "pinned: {:#x}",
            op_digest(alice, &add)
        );
        assert!(is_retry(0, 42), "unknown digests match any op");
        assert!(is_retry(42, 42));
        assert!(!is_retry(42, 43));
    }
}
