//! CRC-32C (Castagnoli): the checksum of magic-2 record batches, and the one the broker's own
//! files use (producer-state snapshots, the metadata log).
//!
//! Computed by `crc-fast`, which folds the data with carry-less multiplication (512-bit
//! `VPCLMULQDQ` where the CPU has it) instead of one `crc32` instruction per 8 bytes: every
//! produced byte is checksummed on the shard before it is appended, and this was 8 % of the
//! broker's CPU under produce load. On this machine (AMD EPYC, AVX-512) `crc-fast` runs at
//! 2.4× the `crc32c` crate's rate on 16 KiB (54 against 23 GB/s) and 1.4× on 1 KiB;
//! measurements in `perf-reports/2026-12-05-crc-fast/`. Under valgrind, which has no
//! AVX-512, it takes its 128-bit path, so callgrind counts of this function are of that path.
//! The tests hold it to the `crc32c` crate, an independent implementation.

/// The CRC-32C of `bytes` (as Kafka's `Crc32C.compute`).
pub fn crc32c(bytes: &[u8]) -> u32 {
    // The algorithm's width is 32 bits; the crate returns every width as a u64.
    crc_fast::checksum(crc_fast::CrcAlgorithm::Crc32Iscsi, bytes) as u32
}

/// The CRC-32C of `parts` one after the other, as if they were one slice (a batch whose
/// rewritten header is not stored beside its body).
pub fn crc32c_of_parts(parts: &[&[u8]]) -> u32 {
    let mut digest = crc_fast::Digest::new(crc_fast::CrcAlgorithm::Crc32Iscsi);
    for part in parts {
        digest.update(part);
    }
    digest.finalize() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_standard_check_value() {
        // The CRC-32C catalogue's check value: the CRC of the ASCII digits "123456789".
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
        assert_eq!(crc32c(b""), 0);
    }

    #[test]
    fn agrees_with_the_crc32c_crate_at_every_length_and_alignment() {
        // Lengths around every folding width (16 to 256 bytes per step) and their tails,
        // at every offset of a 64-byte line, then sizes the broker sees (1 KiB to 1 MiB).
        let data: Vec<u8> =
            (0..(1usize << 20) + 64).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for offset in 0..64 {
            for len in 0..=1100 {
                let slice = &data[offset..offset + len];
                assert_eq!(crc32c(slice), crc32c::crc32c(slice), "offset {offset}, {len} bytes");
            }
        }
        for split in [0, 1, 40, 61, 1000] {
            let (a, b) = data[3..3 + 1100].split_at(split);
            assert_eq!(crc32c_of_parts(&[a, b]), crc32c::crc32c(&data[3..3 + 1100]), "split at {split}");
        }
        for len in [4096, 16 << 10, (16 << 10) + 61, 1 << 20] {
            for offset in [0, 1, 7, 63] {
                let slice = &data[offset..offset + len];
                assert_eq!(crc32c(slice), crc32c::crc32c(slice), "offset {offset}, {len} bytes");
            }
        }
    }
}
