//! CRC-32C (Castagnoli: reflected polynomial `0x82F63B78`, initial value and final xor
//! `0xFFFFFFFF`), the checksum of chunked snapshot bodies.
//!
//! The same checksum as iSCSI (RFC 3720), ext4 metadata and SSE 4.2's `crc32` instruction, so it
//! can be recomputed with any tool. Slicing-by-8 tables computed at compile time run it at a few
//! GB/s, so checksumming one 512 KiB chunk between two awaits stays a fraction of a millisecond.
//! Thirty lines of ours rather than a dependency (STYLE.md §17).

const POLYNOMIAL: u32 = 0x82F6_3B78;

/// `TABLES[0]` is the classic byte table; `TABLES[k][b]` is the CRC of byte `b` followed by `k`
/// zero bytes, which lets eight bytes be folded per step.
const TABLES: [[u32; 256]; 8] = tables();

// Evaluated at compile time, where an index out of bounds fails the build instead of panicking.
#[allow(clippy::indexing_slicing)]
const fn tables() -> [[u32; 256]; 8] {
    let mut tables = [[0u32; 256]; 8];
    let mut byte = 0;
    while byte < 256 {
        let mut crc = byte as u32;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ POLYNOMIAL
            } else {
                crc >> 1
            };
            bit += 1;
        }
        tables[0][byte] = crc;
        byte += 1;
    }
    let mut byte = 0;
    while byte < 256 {
        let mut table = 1;
        while table < 8 {
            let previous = tables[table - 1][byte];
            tables[table][byte] = (previous >> 8) ^ tables[0][(previous & 0xff) as usize];
            table += 1;
        }
        byte += 1;
    }
    tables
}

/// One table entry; both indices are always in bounds, so the fallback is never taken and the
/// optimizer drops the checks.
fn entry(table: usize, byte: u8) -> u32 {
    TABLES
        .get(table)
        .and_then(|row| row.get(usize::from(byte)))
        .copied()
        .unwrap_or(0)
}

/// A running CRC-32C: feed bytes with [`Crc32c::update`] in any split, then [`Crc32c::value`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Crc32c {
    state: u32,
}

impl Default for Crc32c {
    fn default() -> Self {
        Self::new()
    }
}

impl Crc32c {
    /// The checksum of no bytes so far.
    pub fn new() -> Self {
        Self { state: !0 }
    }

    /// Feeds `bytes`.
    pub fn update(&mut self, bytes: &[u8]) {
        let mut crc = self.state;
        let (blocks, rest) = bytes.as_chunks::<8>();
        for &[b0, b1, b2, b3, b4, b5, b6, b7] in blocks {
            let low = crc ^ u32::from_le_bytes([b0, b1, b2, b3]);
            let [l0, l1, l2, l3] = low.to_le_bytes();
            crc = entry(7, l0)
                ^ entry(6, l1)
                ^ entry(5, l2)
                ^ entry(4, l3)
                ^ entry(3, b4)
                ^ entry(2, b5)
                ^ entry(1, b6)
                ^ entry(0, b7);
        }
        for &byte in rest {
            crc = (crc >> 8) ^ entry(0, (crc as u8) ^ byte);
        }
        self.state = crc;
    }

    /// The checksum of everything fed so far.
    pub fn value(&self) -> u32 {
        !self.state
    }
}

/// The CRC-32C of `bytes` in one call.
pub fn checksum(bytes: &[u8]) -> u32 {
    let mut crc = Crc32c::new();
    crc.update(bytes);
    crc.value()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Published check values: the CRC catalogue's "123456789" and RFC 3720, appendix B.4.
    #[test]
    fn known_values() {
        assert_eq!(checksum(b""), 0);
        assert_eq!(checksum(b"123456789"), 0xE306_9283);
        assert_eq!(checksum(&[0u8; 32]), 0x8A91_36AA);
        assert_eq!(checksum(&[0xFFu8; 32]), 0x62A8_AB43);
        let ascending: Vec<u8> = (0..32).collect();
        assert_eq!(checksum(&ascending), 0x46DD_794E);
    }

    /// Feeding in pieces of any size gives the one-shot value (the chunk writer and reader feed
    /// one chunk at a time).
    #[test]
    fn incremental_equals_one_shot() {
        let data: Vec<u8> = (0..1000u32).map(|i| (i * 31 % 251) as u8).collect();
        let whole = checksum(&data);
        for piece in [1, 3, 7, 8, 9, 64, 999] {
            let mut crc = Crc32c::new();
            for part in data.chunks(piece) {
                crc.update(part);
            }
            assert_eq!(crc.value(), whole, "pieces of {piece}");
        }
        let mut flipped = data.clone();
        if let Some(byte) = flipped.get_mut(500) {
            *byte ^= 1;
        }
        assert_ne!(checksum(&flipped), whole, "one flipped bit changes it");
    }
}
