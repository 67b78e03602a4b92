//! Snapshots too large for one row: the chunk math, the pointer record and reassembly. Pure;
//! the reads and writes are in `snapshots.rs`, the reasoning in `storage/SCHEMA.md`
//! ("Snapshots").
//!
//! A large snapshot is written as `snapshot_chunks` rows of [`CHUNK_BYTES`] under a fresh
//! `write_id`, then made visible by a small pointer row in `snapshots`, written last. The
//! `snapshots.record` column holds either format:
//!
//! | format | layout | used for |
//! |---|---|---|
//! | 1, inline | `[1][seq u64][body]` (`record.rs`) | bodies up to [`INLINE_SNAPSHOT_BYTES_MAX`], and everything schema 1 wrote |
//! | 2, pointer | `[2][seq u64][write_id 16][chunk_bytes u32][chunk_count u32][total_bytes u64][crc32c u32]` | larger bodies |
//!
//! Integers are big-endian; `crc32c` is CRC-32C of the whole body (`crc32c.rs`).

use bytes::Bytes;
use uuid::Uuid;

use super::crc32c::Crc32c;
use crate::record;
use crate::{Error, Snapshot};

/// Bytes per chunk row (512 KiB): far below the 16 MiB mutation limit, and below ScyllaDB's
/// 1 MiB large-cell warning, so a 40 MiB snapshot is 80 ordinary rows.
pub const CHUNK_BYTES: usize = 512 << 10;

/// Bodies up to this size (64 KiB) stay inline in the pointer row: one conditional write,
/// cheaper than a chunk plus a pointer, and small enough that the Paxos copy costs little.
pub const INLINE_SNAPSHOT_BYTES_MAX: usize = 64 << 10;

// An inline body fits in one chunk's budget, and a chunk stays below the large-cell warning.
const _: () = assert!(INLINE_SNAPSHOT_BYTES_MAX < CHUNK_BYTES && CHUNK_BYTES < 1 << 20);

/// The format version of pointer records.
pub const POINTER_FORMAT_VERSION: u8 = 2;

const POINTER_LEN: usize = 1 + 8 + 16 + 4 + 4 + 8 + 4;

/// The pointer row of a chunked snapshot: where its chunks are and how to verify them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SnapshotPointer {
    /// The snapshot's seq (also its clustering key).
    pub seq: u64,
    /// The write that produced the chunks: two writers of one seq never mix their chunks.
    pub write_id: Uuid,
    /// Bytes per chunk; every chunk but the last is exactly this long.
    pub chunk_bytes: u32,
    /// Number of chunks, `ceil(total_bytes / chunk_bytes)`.
    pub chunk_count: u32,
    /// Length of the body.
    pub total_bytes: u64,
    /// CRC-32C of the body.
    pub crc32c: u32,
}

impl SnapshotPointer {
    /// Encodes the pointer record (format 2).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(POINTER_LEN);
        out.push(POINTER_FORMAT_VERSION);
        out.extend_from_slice(&self.seq.to_be_bytes());
        out.extend_from_slice(self.write_id.as_bytes());
        out.extend_from_slice(&self.chunk_bytes.to_be_bytes());
        out.extend_from_slice(&self.chunk_count.to_be_bytes());
        out.extend_from_slice(&self.total_bytes.to_be_bytes());
        out.extend_from_slice(&self.crc32c.to_be_bytes());
        out
    }

    /// Decodes a pointer record, refusing one whose sizes disagree.
    pub fn decode(bytes: &[u8]) -> Result<SnapshotPointer, Error> {
        let corrupt = |why: &str| Error::Corrupt(format!("snapshot pointer: {why}"));
        let Ok(fixed) = <&[u8; POINTER_LEN]>::try_from(bytes) else {
            return Err(corrupt(&format!(
                "{} bytes, expected {POINTER_LEN}",
                bytes.len()
            )));
        };
        let (version, rest) = fixed.split_at(1);
        if version != [POINTER_FORMAT_VERSION] {
            return Err(corrupt(&format!("format {version:?}")));
        }
        let (seq, rest) = split_array::<8>(rest);
        let (write_id, rest) = split_array::<16>(rest);
        let (chunk_bytes, rest) = split_array::<4>(rest);
        let (chunk_count, rest) = split_array::<4>(rest);
        let (total_bytes, rest) = split_array::<8>(rest);
        let (crc32c, _) = split_array::<4>(rest);
        let pointer = SnapshotPointer {
            seq: u64::from_be_bytes(seq),
            write_id: Uuid::from_bytes(write_id),
            chunk_bytes: u32::from_be_bytes(chunk_bytes),
            chunk_count: u32::from_be_bytes(chunk_count),
            total_bytes: u64::from_be_bytes(total_bytes),
            crc32c: u32::from_be_bytes(crc32c),
        };
        let expected = chunk_count_for(pointer.total_bytes, pointer.chunk_bytes);
        if expected != Some(u64::from(pointer.chunk_count)) || pointer.chunk_count > CHUNKS_MAX {
            return Err(corrupt(&format!(
                "{} chunks of {} bytes cannot hold {} bytes",
                pointer.chunk_count, pointer.chunk_bytes, pointer.total_bytes
            )));
        }
        Ok(pointer)
    }

    /// The length chunk `index` must have, `None` past the last chunk.
    pub fn chunk_len(&self, index: u32) -> Option<usize> {
        if index >= self.chunk_count {
            return None;
        }
        let start = u64::from(index) * u64::from(self.chunk_bytes);
        let len = self
            .total_bytes
            .checked_sub(start)?
            .min(u64::from(self.chunk_bytes));
        usize::try_from(len).ok()
    }
}

/// Chunk indexes are CQL `int`s.
const CHUNKS_MAX: u32 = i32::MAX as u32;

fn chunk_count_for(total_bytes: u64, chunk_bytes: u32) -> Option<u64> {
    (chunk_bytes > 0).then(|| total_bytes.div_ceil(u64::from(chunk_bytes)))
}

/// Splits off the first `N` bytes; the caller has checked the total length.
fn split_array<const N: usize>(bytes: &[u8]) -> ([u8; N], &[u8]) {
    match bytes.split_first_chunk::<N>() {
        Some((head, rest)) => (*head, rest),
        None => ([0; N], &[]),
    }
}

/// What a `snapshots` row holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoredSnapshot {
    /// The whole snapshot (format 1).
    Inline(Snapshot),
    /// A pointer to chunks (format 2).
    Chunked(SnapshotPointer),
}

/// Decodes a `snapshots` row stored at clustering seq `row_seq`, cross-checking the seq.
pub fn decode_stored(row_seq: u64, record: &[u8]) -> Result<StoredSnapshot, Error> {
    let stored = match record.first() {
        Some(&POINTER_FORMAT_VERSION) => StoredSnapshot::Chunked(SnapshotPointer::decode(record)?),
        _ => StoredSnapshot::Inline(record::decode_snapshot(record)?),
    };
    let seq = match &stored {
        StoredSnapshot::Inline(snapshot) => snapshot.seq,
        StoredSnapshot::Chunked(pointer) => pointer.seq,
    };
    if seq != row_seq {
        return Err(Error::Corrupt(format!(
            "snapshot row at seq {row_seq} holds seq {seq}"
        )));
    }
    Ok(stored)
}

/// The chunks of a body, in order, checksummed as they are handed out; after the last one,
/// [`Chunking::finish`] gives the pointer that describes them.
#[derive(Debug)]
pub struct Chunking<'a> {
    chunks: std::slice::Chunks<'a, u8>,
    next: u32,
    crc: Crc32c,
    chunk_bytes: u32,
    total_bytes: u64,
}

impl<'a> Chunking<'a> {
    /// Plans the chunks of `body`. Fails with [`Error::InvalidArgument`] for a chunk size of 0
    /// or over `u32::MAX`, or a body of more chunks than a CQL `int` can number.
    pub fn new(body: &'a [u8], chunk_bytes: usize) -> Result<Self, Error> {
        let invalid = || {
            Error::InvalidArgument(format!(
                "cannot split {} bytes into chunks of {chunk_bytes}",
                body.len()
            ))
        };
        let size = u32::try_from(chunk_bytes)
            .ok()
            .filter(|size| *size > 0)
            .ok_or_else(invalid)?;
        let total_bytes = u64::try_from(body.len()).map_err(|_| invalid())?;
        let count = chunk_count_for(total_bytes, size).ok_or_else(invalid)?;
        if count > u64::from(CHUNKS_MAX) {
            return Err(invalid());
        }
        Ok(Self {
            chunks: body.chunks(chunk_bytes),
            next: 0,
            crc: Crc32c::new(),
            chunk_bytes: size,
            total_bytes,
        })
    }

    /// The pointer for `seq` and `write_id`, once every chunk has been handed out.
    pub fn finish(mut self, seq: u64, write_id: Uuid) -> Result<SnapshotPointer, Error> {
        if self.chunks.next().is_some() {
            return Err(Error::InvalidArgument(
                "snapshot pointer requested before every chunk was written".into(),
            ));
        }
        Ok(SnapshotPointer {
            seq,
            write_id,
            chunk_bytes: self.chunk_bytes,
            chunk_count: self.next,
            total_bytes: self.total_bytes,
            crc32c: self.crc.value(),
        })
    }
}

impl<'a> Iterator for Chunking<'a> {
    type Item = (u32, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let chunk = self.chunks.next()?;
        self.crc.update(chunk);
        let index = self.next;
        self.next += 1;
        Some((index, chunk))
    }
}

/// Rebuilds a body from its chunks, in order, refusing any that does not fit the pointer.
#[derive(Debug)]
pub struct Reassembly {
    pointer: SnapshotPointer,
    body: Vec<u8>,
    crc: Crc32c,
    next: u32,
}

impl Reassembly {
    /// Starts reassembling `pointer`'s body (its memory is reserved up front).
    pub fn new(pointer: SnapshotPointer) -> Result<Self, Error> {
        let mut body = Vec::new();
        let reserved = usize::try_from(pointer.total_bytes)
            .is_ok_and(|total| body.try_reserve_exact(total).is_ok());
        if !reserved {
            return Err(Error::Corrupt(format!(
                "snapshot pointer at seq {} claims {} bytes, which cannot be allocated",
                pointer.seq, pointer.total_bytes
            )));
        }
        Ok(Self {
            pointer,
            body,
            crc: Crc32c::new(),
            next: 0,
        })
    }

    /// Appends chunk `index`, which must be the next one and have its exact length.
    pub fn push(&mut self, index: u32, chunk: &[u8]) -> Result<(), Error> {
        let expected = self.pointer.chunk_len(index);
        if index != self.next || expected != Some(chunk.len()) {
            return Err(Error::Corrupt(format!(
                "snapshot seq {}: chunk {index} has {} bytes, expected chunk {} of {expected:?} bytes",
                self.pointer.seq,
                chunk.len(),
                self.next
            )));
        }
        self.crc.update(chunk);
        self.body.extend_from_slice(chunk);
        self.next += 1;
        Ok(())
    }

    /// The snapshot, once every chunk is in and the checksum matches.
    pub fn finish(self) -> Result<Snapshot, Error> {
        let seq = self.pointer.seq;
        if self.next != self.pointer.chunk_count {
            return Err(Error::Corrupt(format!(
                "snapshot seq {seq}: {} of {} chunks",
                self.next, self.pointer.chunk_count
            )));
        }
        if self.crc.value() != self.pointer.crc32c {
            return Err(Error::Corrupt(format!(
                "snapshot seq {seq}: checksum {:#010x} of the chunks, {:#010x} in the pointer",
                self.crc.value(),
                self.pointer.crc32c
            )));
        }
        Ok(Snapshot {
            seq,
            body: Bytes::from(self.body),
        })
    }
}

#[cfg(test)]
#[path = "chunks_tests.rs"]
mod tests;
