//! Golden files: records written by format version 1 must decode forever, and this build must
//! still encode those values to exactly the same bytes.
//!
//! The files in `tests/golden/` are checked in. To (re)generate them after adding a record kind,
//! run `LISTWIRE_BLESS=1 cargo test -p listwire-storage --test golden` and commit the new files.
//! Never re-bless an existing version's file: a change there means old data would misread.

use std::path::PathBuf;

use bytes::Bytes;
use listwire_storage::record::{self, MembershipRecord};
use listwire_storage::{Batch, Error, Membership, Snapshot, UserRecord};
use uuid::Uuid;

fn golden_path(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(name)
}

/// Reads a golden file; with `LISTWIRE_BLESS=1`, first writes `encoded` to it.
fn golden(name: &str, encoded: &[u8]) -> Vec<u8> {
    if std::env::var("LISTWIRE_BLESS").as_deref() == Ok("1") {
        let path = golden_path(name);
        std::fs::create_dir_all(path.parent().expect("golden dir")).expect("create golden dir");
        std::fs::write(&path, encoded).expect("write golden file");
    }
    read_golden(name)
}

fn read_golden(name: &str) -> Vec<u8> {
    let path = golden_path(name);
    std::fs::read(&path).unwrap_or_else(|e| {
        panic!(
            "reading {}: {e}; generate it with LISTWIRE_BLESS=1",
            path.display()
        )
    })
}

const BATCH_FIRST_SEQ: u64 = 41;
const USER_ID: Uuid = Uuid::from_u128(0x0192_3e4f_5a6b_7c8d_9eaf_b0c1_d2e3_f405);
const LIST_ID: Uuid = Uuid::from_u128(0x0193_0000_1111_2222_3333_4444_5555_6666);

fn batch_v1() -> Batch {
    Batch {
        first_seq: BATCH_FIRST_SEQ,
        last_seq: 43,
        body: Bytes::from_static(b"\x00opaque events \xff\x01"),
    }
}

fn snapshot_v1() -> Snapshot {
    Snapshot {
        seq: 0x0102_0304_0506_0708,
        body: Bytes::from_static(b"list state"),
    }
}

fn user_v1() -> UserRecord {
    UserRecord {
        user_id: USER_ID,
        username: "ada.lovelace".into(),
        password_hash: "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2g".into(),
        created_at_ms: 1_795_737_600_000,
    }
}

fn membership_v1() -> Membership {
    Membership {
        list_id: LIST_ID,
        role: "editor".into(),
        title: "Wochenmarkt 🥕".into(),
        version: 0,
    }
}

fn membership_v2() -> Membership {
    Membership {
        version: 0x0a0b_0c0d_0e0f_1011,
        ..membership_v1()
    }
}

#[test]
fn batch_v1_decodes_and_reencodes() -> Result<(), Error> {
    let bytes = golden("batch_v1.bin", &record::encode_batch(&batch_v1()));
    assert_eq!(bytes.first(), Some(&1), "version byte");
    assert_eq!(record::decode_batch(BATCH_FIRST_SEQ, &bytes)?, batch_v1());
    assert_eq!(record::encode_batch(&batch_v1()), bytes);
    Ok(())
}

#[test]
fn snapshot_v1_decodes_and_reencodes() -> Result<(), Error> {
    let bytes = golden("snapshot_v1.bin", &record::encode_snapshot(&snapshot_v1()));
    assert_eq!(record::decode_snapshot(&bytes)?, snapshot_v1());
    assert_eq!(record::encode_snapshot(&snapshot_v1()), bytes);
    Ok(())
}

#[test]
fn user_v1_decodes_and_reencodes() -> Result<(), Error> {
    let bytes = golden("user_v1.bin", &record::encode_user(&user_v1())?);
    assert_eq!(record::decode_user(USER_ID, &bytes)?, user_v1());
    assert_eq!(record::encode_user(&user_v1())?, bytes);
    Ok(())
}

#[test]
fn membership_v1_decodes_as_a_live_entry_at_version_0() -> Result<(), Error> {
    // Written by format 1, before entries carried versions; this build writes format 2.
    let bytes = read_golden("membership_v1.bin");
    assert_eq!(
        record::decode_membership(LIST_ID, &bytes)?,
        MembershipRecord::Live(membership_v1())
    );
    Ok(())
}

#[test]
fn membership_v2_decodes_and_reencodes() -> Result<(), Error> {
    let bytes = golden(
        "membership_v2.bin",
        &record::encode_membership(&membership_v2())?,
    );
    assert_eq!(bytes.first(), Some(&2), "version byte");
    assert_eq!(
        record::decode_membership(LIST_ID, &bytes)?,
        MembershipRecord::Live(membership_v2())
    );
    assert_eq!(record::encode_membership(&membership_v2())?, bytes);
    let removed = golden(
        "membership_removed_v2.bin",
        &record::encode_membership_removed(77),
    );
    assert_eq!(
        record::decode_membership(LIST_ID, &removed)?,
        MembershipRecord::Removed {
            list_id: LIST_ID,
            version: 77
        }
    );
    assert_eq!(record::encode_membership_removed(77), removed);
    Ok(())
}

#[test]
fn head_v1_decodes_and_reencodes() -> Result<(), Error> {
    let bytes = golden("head_v1.bin", &record::encode_head(1_000_001));
    assert_eq!(record::decode_head(&bytes)?, 1_000_001);
    assert_eq!(record::encode_head(1_000_001).as_slice(), bytes.as_slice());
    Ok(())
}

#[test]
fn golden_layouts_match_the_documented_format() {
    // Spelled out once by hand, so a change to the encoder cannot silently re-bless itself.
    let mut expected = vec![1u8];
    expected.extend_from_slice(&43u64.to_be_bytes());
    expected.extend_from_slice(b"\x00opaque events \xff\x01");
    assert_eq!(read_golden("batch_v1.bin"), expected);

    let mut expected = vec![1u8, 6];
    expected.extend_from_slice(b"editor");
    let title = "Wochenmarkt 🥕".as_bytes();
    expected.extend_from_slice(&u16::try_from(title.len()).expect("short").to_be_bytes());
    expected.extend_from_slice(title);
    assert_eq!(read_golden("membership_v1.bin"), expected);

    let mut expected = vec![2u8];
    expected.extend_from_slice(&0x0a0b_0c0d_0e0f_1011u64.to_be_bytes());
    expected.extend_from_slice(&[1, 6]);
    expected.extend_from_slice(b"editor");
    expected.extend_from_slice(&u16::try_from(title.len()).expect("short").to_be_bytes());
    expected.extend_from_slice(title);
    assert_eq!(read_golden("membership_v2.bin"), expected);
    let mut expected = vec![2u8];
    expected.extend_from_slice(&77u64.to_be_bytes());
    expected.push(0);
    assert_eq!(read_golden("membership_removed_v2.bin"), expected);
}
