//! The two on-disk index entry formats, exactly as Kafka writes them (big-endian):
//!
//! - `.index` — [`OffsetIndexEntry`]: relative offset `u32` (offset − segment base offset),
//!   physical position `u32` of the batch in the `.log` file. 8 bytes.
//! - `.timeindex` — [`TimeIndexEntry`]: timestamp `i64`, relative offset `u32`. 12 bytes.
//!
//! Kafka preallocates index files and trims them on a clean close; a trailing run of all-zero
//! entries after the first entry therefore means "unused"; recovery must account for it.

pub const OFFSET_INDEX_ENTRY_BYTES: usize = 8;
pub const TIME_INDEX_ENTRY_BYTES: usize = 12;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OffsetIndexEntry {
    pub relative_offset: u32,
    pub position: u32,
}

impl OffsetIndexEntry {
    pub fn encode(&self) -> [u8; OFFSET_INDEX_ENTRY_BYTES] {
        let mut b = [0u8; OFFSET_INDEX_ENTRY_BYTES];
        b[0..4].copy_from_slice(&self.relative_offset.to_be_bytes());
        b[4..8].copy_from_slice(&self.position.to_be_bytes());
        b
    }

    /// Decodes every whole entry in `bytes`; a partial trailing entry is ignored.
    pub fn decode_all(bytes: &[u8]) -> Vec<OffsetIndexEntry> {
        bytes
            .chunks_exact(OFFSET_INDEX_ENTRY_BYTES)
            .map(|c| OffsetIndexEntry {
                relative_offset: u32::from_be_bytes([c[0], c[1], c[2], c[3]]),
                position: u32::from_be_bytes([c[4], c[5], c[6], c[7]]),
            })
            .collect()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeIndexEntry {
    pub timestamp: i64,
    pub relative_offset: u32,
}

impl TimeIndexEntry {
    pub fn encode(&self) -> [u8; TIME_INDEX_ENTRY_BYTES] {
        let mut b = [0u8; TIME_INDEX_ENTRY_BYTES];
        b[0..8].copy_from_slice(&self.timestamp.to_be_bytes());
        b[8..12].copy_from_slice(&self.relative_offset.to_be_bytes());
        b
    }

    /// Decodes every whole entry in `bytes`; a partial trailing entry is ignored.
    pub fn decode_all(bytes: &[u8]) -> Vec<TimeIndexEntry> {
        bytes
            .chunks_exact(TIME_INDEX_ENTRY_BYTES)
            .map(|c| {
                let mut ts = [0u8; 8];
                ts.copy_from_slice(&c[0..8]);
                TimeIndexEntry {
                    timestamp: i64::from_be_bytes(ts),
                    relative_offset: u32::from_be_bytes([c[8], c[9], c[10], c[11]]),
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_layout_matches_kafka() {
        let e = OffsetIndexEntry { relative_offset: 0x0102_0304, position: 0x0A0B_0C0D };
        assert_eq!(e.encode(), [1, 2, 3, 4, 0xA, 0xB, 0xC, 0xD]);
        assert_eq!(OffsetIndexEntry::decode_all(&e.encode()), vec![e]);
        let t = TimeIndexEntry { timestamp: 0x0102_0304_0506_0708, relative_offset: 9 };
        assert_eq!(t.encode(), [1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 9]);
        assert_eq!(TimeIndexEntry::decode_all(&t.encode()[..11]), vec![]);
    }
}
