//! Golden-file tests: the committed v1 encodings of a fixed script still decode to the same value
//! and re-encode to the same bytes. Set `LISTWIRE_BLESS=1` to rewrite them after a deliberate change
//! (which, for a stored format, means a new version and new files, not edited old ones).
//!
//! The files are found from `file!()`: absolute when this module is built through `#[path]` (the
//! scratch crate), workspace-relative in the real crate, where the test's working directory is the
//! crate root; both are tried, so the same code works in both builds.

use std::path::PathBuf;

use super::script::run;
use super::{decode_batch, decode_snapshot, encode_batch, encode_snapshot, Limits};

/// A fixed script touching every change kind, with fixed uuids and times.
const GOLDEN_SCRIPT: &str = r#"
    alice t=1795230000000 op=o1 create {"title":"groceries","visibility":"private"}
    alice t=1795230000100 op=o2 {"kind":"share","user":"bob","role":"editor"}
    alice t=1795230000200 op=o3 {"kind":"share","user":"carol","role":"voter"}
    bob t=1795230000300 op=o4 {"kind":"add_item","text":"milk","item":"@milk"}
    bob t=1795230000400 op=o5 {"kind":"add_item","text":"eggs","after":"@milk"}
    bob t=1795230000500 op=o6 {"kind":"add_item","text":"tea","item":"@tea","after":"@milk"}
    bob t=1795230000600 op=o7 {"kind":"edit_item","item":"@milk","text":"oat milk"}
    bob t=1795230000700 op=o8 {"kind":"set_done","item":"@tea","done":true}
    bob t=1795230000800 op=o9 {"kind":"move_item","item":"@tea","after":null}
    bob t=1795230000900 op=o10 {"kind":"attach_media","item":"@milk","url":"https://img.example/milk.png","media_type":"image"}
    alice t=1795230001000 op=o11 {"kind":"set_poll","max_votes_per_user":2,"allow_change":true,"open":true,"close_at_ms":1795240000000}
    carol t=1795230001100 op=o12 {"kind":"vote","item":"@milk"}
    carol t=1795230001200 op=o13 {"kind":"vote","item":"@tea"}
    carol t=1795230001300 op=o14 {"kind":"unvote","item":"@tea"}
    alice t=1795230001400 op=o15 {"kind":"set_visibility","visibility":"public"}
    eve t=1795230001500 op=o16 {"kind":"vote","item":"@milk"}
    alice t=1795230001600 op=o17 {"kind":"rename","title":"weekly groceries"}
    alice t=1795230001700 op=o18 {"kind":"add_item","text":"bread","item":"@bread"}
    bob t=1795230001800 op=o19 {"kind":"remove_item","item":"@bread"}
    alice t=1795230001900 op=o20 {"kind":"unshare","user":"carol"}
"#;

/// The golden script's events and state as format 1 stored them: without op digests.
fn without_digests(mut golden: super::script::Run) -> super::script::Run {
    for event in &mut golden.events {
        event.op_digest = 0;
    }
    let mut replayed = super::ListState::new(golden.state.list_id());
    for event in &golden.events {
        super::evolve(&mut replayed, event, &Limits::default());
    }
    golden.state = replayed;
    golden
}

#[test]
fn golden_v1_files_decode_without_digests() {
    // Goal: batches and snapshots stored by format 1 (before op digests) stay readable: every
    // digest decodes as unknown (0), and nothing else changes.
    let golden = without_digests(run(&Limits::default(), GOLDEN_SCRIPT));
    assert_eq!(golden.events.len(), 20);
    let stored_batch = read_golden("batch_v1.bin");
    let stored_snapshot = read_golden("snapshot_v1.bin");
    assert_eq!(stored_batch.first(), Some(&1));
    assert_eq!(
        decode_batch(&stored_batch).expect("golden v1 batch decodes"),
        golden.events
    );
    assert_eq!(
        decode_snapshot(&stored_snapshot).expect("golden v1 snapshot decodes"),
        golden.state
    );
}

#[test]
fn golden_v2_files_decode_and_reencode_identically() {
    // Goal: stored v2 batches and snapshots (with op digests) stay readable and byte-stable.
    let golden = run(&Limits::default(), GOLDEN_SCRIPT);
    assert!(
        !golden.transcript.contains(": "),
        "the golden script is all accepted:\n{}",
        golden.transcript
    );
    assert!(golden.events.iter().all(|event| event.op_digest != 0));
    let batch = encode_batch(&golden.events);
    let snapshot = encode_snapshot(&golden.state);
    if std::env::var("LISTWIRE_BLESS").as_deref() == Ok("1") {
        std::fs::write(golden_path("batch_v2.bin"), &batch).expect("golden batch is writable");
        std::fs::write(golden_path("snapshot_v2.bin"), &snapshot)
            .expect("golden snapshot is writable");
    }
    let stored_batch = read_golden("batch_v2.bin");
    let stored_snapshot = read_golden("snapshot_v2.bin");
    assert_eq!(stored_batch.first(), Some(&2));
    assert_eq!(
        decode_batch(&stored_batch).expect("golden batch decodes"),
        golden.events
    );
    assert_eq!(
        decode_snapshot(&stored_snapshot).expect("golden snapshot decodes"),
        golden.state
    );
    assert!(
        batch == stored_batch,
        "batch encoding changed; a new format needs a new version"
    );
    assert!(
        snapshot == stored_snapshot,
        "snapshot encoding changed; a new format needs a new version"
    );
}

#[test]
fn codec_rejects_damaged_input() {
    // Goal: empty, unknown-version, truncated and inconsistent records are errors, never panics.
    let golden = run(&Limits::default(), GOLDEN_SCRIPT);
    let batch = encode_batch(&golden.events);
    let snapshot = encode_snapshot(&golden.state);
    assert!(matches!(decode_batch(&[]), Err(super::CodecError::Empty)));
    assert!(matches!(
        decode_snapshot(&[3, b'{']),
        Err(super::CodecError::UnknownVersion(3))
    ));
    assert!(matches!(
        decode_batch(&batch[..batch.len() - 1]),
        Err(super::CodecError::Json(_))
    ));
    assert!(matches!(
        decode_snapshot(&snapshot[..40]),
        Err(super::CodecError::Json(_))
    ));
    let text = String::from_utf8(snapshot[1..].to_vec()).expect("snapshot json is utf-8");
    let miscounted = text.replacen("\"votes\":2", "\"votes\":3", 1);
    assert_ne!(miscounted, text);
    let mut damaged = vec![1];
    damaged.extend_from_slice(miscounted.as_bytes());
    assert!(matches!(
        decode_snapshot(&damaged),
        Err(super::CodecError::Inconsistent(_))
    ));
}

fn read_golden(name: &str) -> Vec<u8> {
    let path = golden_path(name);
    std::fs::read(&path).unwrap_or_else(|error| {
        panic!(
            "cannot read {}: {error}; run the tests once with LISTWIRE_BLESS=1",
            path.display()
        )
    })
}

/// `golden/<name>` next to this source file, in the scratch build and in the real crate.
fn golden_path(name: &str) -> PathBuf {
    let source = PathBuf::from(file!());
    let directory = source
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
        .join("golden");
    if directory.is_absolute() || directory.exists() {
        return directory.join(name);
    }
    // Cargo passes workspace-relative paths, and tests run in the crate root (`node/`).
    let manifest_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let workspace = manifest_dir.parent().map(PathBuf::from).unwrap_or_default();
    workspace.join(directory).join(name)
}
