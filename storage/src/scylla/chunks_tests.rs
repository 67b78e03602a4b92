//! Chunking math: split and reassemble, exact boundaries, the empty body, the pointer record,
//! and every way a torn or mixed read shows up (`Corrupt`, never a wrong body).

use super::*;
use crate::scylla::crc32c::checksum;

fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i % 251) as u8 ^ 0x5a).collect()
}

fn write_id() -> Uuid {
    Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef)
}

/// Splits `data` into owned chunks and the pointer, as the writer does.
fn split(data: &[u8], chunk_bytes: usize) -> (Vec<(u32, Vec<u8>)>, SnapshotPointer) {
    let Ok(mut chunking) = Chunking::new(data, chunk_bytes) else {
        panic!("chunking {} bytes by {chunk_bytes}", data.len());
    };
    let chunks: Vec<(u32, Vec<u8>)> = chunking.by_ref().map(|(i, c)| (i, c.to_vec())).collect();
    match chunking.finish(9, write_id()) {
        Ok(pointer) => (chunks, pointer),
        Err(err) => panic!("finish: {err}"),
    }
}

fn reassemble(pointer: SnapshotPointer, chunks: &[(u32, Vec<u8>)]) -> Result<Snapshot, Error> {
    let mut reassembly = Reassembly::new(pointer)?;
    for (index, chunk) in chunks {
        reassembly.push(*index, chunk)?;
    }
    reassembly.finish()
}

#[test]
fn split_and_reassemble_at_the_boundaries() {
    let size = 8;
    for len in [0, 1, size - 1, size, size + 1, 2 * size, 2 * size + 1, 100] {
        let data = body(len);
        let (chunks, pointer) = split(&data, size);
        assert_eq!(
            pointer.chunk_count as usize,
            len.div_ceil(size),
            "{len} bytes"
        );
        assert_eq!(pointer.total_bytes, len as u64);
        assert_eq!(pointer.crc32c, checksum(&data));
        for (index, chunk) in &chunks {
            assert_eq!(
                pointer.chunk_len(*index),
                Some(chunk.len()),
                "chunk {index}"
            );
            assert!(chunk.len() == size || *index + 1 == pointer.chunk_count);
        }
        assert_eq!(pointer.chunk_len(pointer.chunk_count), None);
        let rebuilt = reassemble(pointer, &chunks).map(|s| s.body.to_vec()).ok();
        assert_eq!(rebuilt, Some(data), "{len} bytes round-trip");
    }
}

#[test]
fn the_empty_body_has_no_chunks() {
    let (chunks, pointer) = split(&[], CHUNK_BYTES);
    assert!(chunks.is_empty());
    assert_eq!(
        (pointer.chunk_count, pointer.total_bytes, pointer.crc32c),
        (0, 0, 0)
    );
    let rebuilt = reassemble(pointer, &[]).ok();
    assert_eq!(rebuilt.map(|s| (s.seq, s.body.len())), Some((9, 0)));
}

/// The production sizes: a 40 MiB snapshot is 80 chunks of 512 KiB.
#[test]
fn a_full_list_is_eighty_chunks() {
    let data = body(40 << 20);
    let (chunks, pointer) = split(&data, CHUNK_BYTES);
    assert_eq!(pointer.chunk_count, 80);
    assert!(chunks.iter().all(|(_, c)| c.len() == CHUNK_BYTES));
}

#[test]
fn torn_and_mixed_reads_are_corrupt() {
    let data = body(50);
    let (chunks, pointer) = split(&data, 16);
    let corrupt = |result: Result<Snapshot, Error>, what: &str| {
        assert!(
            matches!(result, Err(Error::Corrupt(_))),
            "{what}: {result:?}"
        );
    };
    let mut missing = chunks.clone();
    missing.remove(1);
    corrupt(reassemble(pointer, &missing), "a missing middle chunk");
    corrupt(
        reassemble(pointer, chunks.get(..3).unwrap_or(&[])),
        "a missing last chunk",
    );
    let mut flipped = chunks.clone();
    if let Some((_, chunk)) = flipped.get_mut(2) {
        if let Some(byte) = chunk.first_mut() {
            *byte ^= 0x80;
        }
    }
    corrupt(reassemble(pointer, &flipped), "a flipped byte (checksum)");
    let mut short = chunks.clone();
    if let Some((_, chunk)) = short.get_mut(0) {
        chunk.pop();
    }
    corrupt(reassemble(pointer, &short), "a short chunk");
    let mut swapped = chunks.clone();
    swapped.swap(0, 1);
    corrupt(reassemble(pointer, &swapped), "chunks out of order");
    // Same length, other content: a chunk of another write of the same seq.
    let (other, _) = split(&body(50).iter().map(|b| b ^ 1).collect::<Vec<_>>(), 16);
    let mut mixed = chunks.clone();
    if let (Some(slot), Some(foreign)) = (mixed.get_mut(1), other.get(1)) {
        *slot = foreign.clone();
    }
    corrupt(reassemble(pointer, &mixed), "a chunk of another write");
}

#[test]
fn pointer_records_round_trip_and_are_validated() {
    let (_, pointer) = split(&body(100), 16);
    let encoded = pointer.encode();
    assert_eq!(encoded.len(), 45);
    assert_eq!(SnapshotPointer::decode(&encoded).ok(), Some(pointer));
    // The layout is fixed: this exact record must keep decoding (a golden value).
    let mut golden = vec![2u8, 0, 0, 0, 0, 0, 0, 0, 9];
    golden.extend_from_slice(write_id().as_bytes());
    golden.extend_from_slice(&[0, 0, 0, 16, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0, 100]);
    golden.extend_from_slice(&checksum(&body(100)).to_be_bytes());
    assert_eq!(encoded, golden);
    let bad = |bytes: &[u8], what: &str| {
        let decoded = SnapshotPointer::decode(bytes);
        assert!(
            matches!(decoded, Err(Error::Corrupt(_))),
            "{what}: {decoded:?}"
        );
    };
    bad(encoded.get(..44).unwrap_or(&[]), "truncated");
    bad(&[encoded.as_slice(), &[0]].concat(), "trailing byte");
    let mut wrong_count = encoded.clone();
    if let Some(byte) = wrong_count.get_mut(32) {
        *byte = 8;
    }
    bad(&wrong_count, "chunk count disagrees with the length");
    let mut zero_size = encoded.clone();
    if let Some(byte) = zero_size.get_mut(28) {
        *byte = 0;
    }
    bad(&zero_size, "chunk size 0");
}

/// A `snapshots` row decodes as either format; schema-1 inline rows keep decoding.
#[test]
fn stored_rows_decode_both_formats() {
    let inline = Snapshot {
        seq: 4,
        body: Bytes::from_static(b"state"),
    };
    let v1 = record::encode_snapshot(&inline);
    assert_eq!(v1.first(), Some(&1));
    assert_eq!(
        decode_stored(4, &v1).ok(),
        Some(StoredSnapshot::Inline(inline))
    );
    assert!(
        matches!(decode_stored(5, &v1), Err(Error::Corrupt(_))),
        "seq mismatch"
    );
    let (_, pointer) = split(&body(100), 16);
    let v2 = pointer.encode();
    assert_eq!(
        decode_stored(9, &v2).ok(),
        Some(StoredSnapshot::Chunked(pointer))
    );
    assert!(
        matches!(decode_stored(8, &v2), Err(Error::Corrupt(_))),
        "seq mismatch"
    );
    assert!(
        matches!(decode_stored(9, &[7, 0]), Err(Error::Corrupt(_))),
        "unknown format"
    );
}

#[test]
fn impossible_plans_are_refused() {
    assert!(matches!(
        Chunking::new(b"abc", 0),
        Err(Error::InvalidArgument(_))
    ));
    let (chunks, pointer) = split(&body(10), 4);
    let Ok(chunking) = Chunking::new(&[1, 2, 3, 4, 5], 4) else {
        panic!("plan");
    };
    assert!(
        chunking.finish(1, write_id()).is_err(),
        "finish before the chunks are out"
    );
    let huge = SnapshotPointer {
        total_bytes: u64::MAX,
        chunk_bytes: u32::MAX,
        chunk_count: u32::MAX,
        ..pointer
    };
    assert!(matches!(Reassembly::new(huge), Err(Error::Corrupt(_))));
    assert_eq!(chunks.len(), 3);
}
