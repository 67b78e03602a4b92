//! Unit tests of the record encodings.

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
        version: 12,
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
    let live = decode_membership(m.list_id, &encode_membership(&m)?)?;
    assert_eq!(live, MembershipRecord::Live(m.clone()));
    let removed = decode_membership(m.list_id, &encode_membership_removed(40))?;
    assert_eq!(
        removed,
        MembershipRecord::Removed {
            list_id: m.list_id,
            version: 40
        }
    );
    assert_eq!(removed.version(), 40);
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
    let removed = encode_membership_removed(3);
    for len in 0..removed.len() {
        let cut = removed.get(..len).unwrap_or_default();
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
