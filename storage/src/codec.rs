//! Compression of a batch's records section, in the four codecs Kafka uses, with the field's
//! crates: gzip (`flate2`), snappy (`snap`), lz4 (`lz4_flex`, LZ4 *frame* format, which is what
//! Kafka's `KafkaLZ4BlockOutputStream` writes) and zstd (`zstd`).
//!
//! Decompression is for tools and the log cleaner only (the produce path never decompresses,
//! DESIGN.md invariant 6). Its input is untrusted, so the output is always bounded by the
//! caller's `max_bytes`: a decompression bomb ends in [`BatchError::DecompressedTooLarge`]
//! after at most that many bytes (plus `Vec` growth slack), never an unbounded allocation.
//!
//! Snappy comes in two framings: the Java client wraps raw snappy blocks in xerial's
//! `SnappyOutputStream` framing (`\x82SNAPPY\0`, version, compatible version, then blocks each
//! prefixed by a 4-byte big-endian length); librdkafka may send plain raw snappy. We read both,
//! as Kafka's `SnappyInputStream` does, and write the xerial framing like the Java client.

use std::io::{Read, Write};

use crate::record_batch::{BatchError, Compression};

/// xerial `SnappyOutputStream` header: magic, then version 1 and compatible version 1.
const XERIAL_MAGIC: &[u8; 8] = b"\x82SNAPPY\0";
const XERIAL_HEADER_BYTES: usize = 16;
/// xerial's default block size; Java clients write blocks of this uncompressed size.
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;
/// Kafka's default `compression.zstd.level` and `compression.gzip.level`.
const ZSTD_LEVEL: i32 = 3;
/// zstd window bounds for decoding. A frame header may ask for a window of up to 2^31 bytes,
/// which the decoder would allocate; we allow what the output limit needs, but at least 8 MiB
/// (level-19 streaming frames use 2^23) and never more than 2^27 (zstd's own default cap).
const ZSTD_MIN_WINDOW_LOG: u32 = 23;
const ZSTD_MAX_WINDOW_LOG: u32 = 27;

/// Compresses `input` with `codec` (`Compression::None` copies it).
pub fn compress(codec: Compression, input: &[u8]) -> std::io::Result<Vec<u8>> {
    match codec {
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(input)?;
            enc.finish()
        }
        Compression::Snappy => compress_xerial_snappy(input),
        Compression::Lz4 => {
            // 64 KiB independent blocks, no checksums: what Kafka's Java lz4 stream writes.
            let info = lz4_flex::frame::FrameInfo::new()
                .block_size(lz4_flex::frame::BlockSize::Max64KB)
                .block_mode(lz4_flex::frame::BlockMode::Independent);
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(input)?;
            enc.finish().map_err(std::io::Error::other)
        }
        // The bulk API records the content size in the frame header, so readers can size
        // their output exactly.
        Compression::Zstd => zstd::bulk::compress(input, ZSTD_LEVEL),
    }
}

fn compress_xerial_snappy(input: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::with_capacity(XERIAL_HEADER_BYTES + snap::raw::max_compress_len(input.len()));
    out.extend_from_slice(XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for block in input.chunks(XERIAL_BLOCK_BYTES) {
        let compressed = encoder.compress_vec(block).map_err(std::io::Error::other)?;
        out.extend_from_slice(&(compressed.len() as u32).to_be_bytes());
        out.extend_from_slice(&compressed);
    }
    Ok(out)
}

/// Decompresses `input` into at most `max_bytes` bytes.
pub fn decompress(codec: Compression, input: &[u8], max_bytes: usize) -> Result<Vec<u8>, BatchError> {
    let fail = |e: std::io::Error| BatchError::Decompression(format!("{}: {e}", codec.name()));
    match codec {
        Compression::None => {
            if input.len() > max_bytes {
                return Err(BatchError::DecompressedTooLarge { max_bytes });
            }
            Ok(input.to_vec())
        }
        Compression::Gzip => {
            // Multi-member, like Java's GZIPInputStream.
            read_bounded(flate2::read::MultiGzDecoder::new(input), input.len(), max_bytes)
                .map_err(|e| e.or(fail))
        }
        Compression::Snappy => decompress_snappy(input, max_bytes),
        Compression::Lz4 => read_bounded(lz4_flex::frame::FrameDecoder::new(input), input.len(), max_bytes)
            .map_err(|e| e.or(fail)),
        Compression::Zstd => {
            let mut dec = zstd::stream::read::Decoder::with_buffer(input).map_err(fail)?;
            dec.window_log_max(zstd_window_log(max_bytes)).map_err(fail)?;
            read_bounded(dec, input.len(), max_bytes).map_err(|e| e.or(fail))
        }
    }
}

fn zstd_window_log(max_bytes: usize) -> u32 {
    let needed = usize::BITS - max_bytes.saturating_sub(1).leading_zeros();
    needed.clamp(ZSTD_MIN_WINDOW_LOG, ZSTD_MAX_WINDOW_LOG)
}

/// Why a bounded read stopped: over the limit (already typed) or an I/O error from the decoder
/// (typed by the caller, which knows the codec).
enum ReadFailure {
    TooLarge(BatchError),
    Io(std::io::Error),
}

impl ReadFailure {
    fn or(self, fail: impl Fn(std::io::Error) -> BatchError) -> BatchError {
        match self {
            ReadFailure::TooLarge(e) => e,
            ReadFailure::Io(e) => fail(e),
        }
    }
}

/// Reads a decoder to its end, stopping one byte past `max_bytes` so a bomb is detected
/// without inflating it. The first allocation is a guess from the compressed size.
fn read_bounded(reader: impl Read, compressed_len: usize, max_bytes: usize) -> Result<Vec<u8>, ReadFailure> {
    let limit = max_bytes.saturating_add(1) as u64;
    let mut out = Vec::with_capacity(compressed_len.saturating_mul(4).min(max_bytes));
    reader.take(limit).read_to_end(&mut out).map_err(ReadFailure::Io)?;
    if out.len() > max_bytes {
        return Err(ReadFailure::TooLarge(BatchError::DecompressedTooLarge { max_bytes }));
    }
    Ok(out)
}

fn decompress_snappy(input: &[u8], max_bytes: usize) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    if input.len() >= XERIAL_HEADER_BYTES && input.starts_with(XERIAL_MAGIC) {
        let mut rest = &input[XERIAL_HEADER_BYTES..];
        while !rest.is_empty() {
            if rest.len() < 4 {
                return Err(BatchError::Decompression("snappy: truncated xerial block length".into()));
            }
            let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
            rest = &rest[4..];
            if len > rest.len() {
                return Err(BatchError::Decompression("snappy: xerial block longer than the input".into()));
            }
            snappy_block_into(&rest[..len], &mut out, max_bytes)?;
            rest = &rest[len..];
        }
    } else {
        snappy_block_into(input, &mut out, max_bytes)?;
    }
    Ok(out)
}

/// Appends one raw snappy block to `out`. Raw snappy states its decompressed length up front,
/// so the bound is checked before anything is allocated.
fn snappy_block_into(block: &[u8], out: &mut Vec<u8>, max_bytes: usize) -> Result<(), BatchError> {
    let fail = |e: snap::Error| BatchError::Decompression(format!("snappy: {e}"));
    let len = snap::raw::decompress_len(block).map_err(fail)?;
    if len > max_bytes - out.len() {
        return Err(BatchError::DecompressedTooLarge { max_bytes });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new().decompress(block, &mut out[start..]).map_err(fail)?;
    out.truncate(start + written);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    fn sample(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8 ^ (i / 7) as u8).collect()
    }

    #[test]
    fn round_trips_every_codec() {
        for codec in ALL {
            for len in [0, 1, 1000, XERIAL_BLOCK_BYTES + 17, 300_000] {
                let data = sample(len);
                let c = compress(codec, &data).unwrap();
                assert_eq!(decompress(codec, &c, len).unwrap(), data, "{codec:?} {len}");
            }
        }
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let zeros = vec![0u8; 4 << 20];
        for codec in ALL {
            let c = compress(codec, &zeros).unwrap();
            let err = decompress(codec, &c, 1 << 20).unwrap_err();
            assert_eq!(err, BatchError::DecompressedTooLarge { max_bytes: 1 << 20 }, "{codec:?}");
            // Exactly at the limit is fine.
            assert_eq!(decompress(codec, &c, 4 << 20).unwrap().len(), 4 << 20);
        }
    }

    #[test]
    fn raw_snappy_is_read_too() {
        let data = sample(70_000);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(decompress(Compression::Snappy, &raw, data.len()).unwrap(), data);
        let err = decompress(Compression::Snappy, &raw, data.len() - 1).unwrap_err();
        assert!(matches!(err, BatchError::DecompressedTooLarge { .. }));
    }

    #[test]
    fn xerial_framing_has_the_java_header() {
        let c = compress(Compression::Snappy, b"hello").unwrap();
        assert_eq!(&c[..16], b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01");
    }

    #[test]
    fn garbage_and_truncation_are_errors_not_panics() {
        for codec in ALL {
            let c = compress(codec, &sample(10_000)).unwrap();
            for cut in [0, 1, 5, 17, c.len() / 2, c.len().saturating_sub(1)] {
                let _ = decompress(codec, &c[..cut.min(c.len())], 1 << 20);
            }
            let mut flipped = c.clone();
            for i in (0..flipped.len()).step_by(7) {
                flipped[i] ^= 0x5a;
            }
            let _ = decompress(codec, &flipped, 1 << 20);
        }
        assert!(decompress(Compression::Snappy, b"\x82SNAPPY\0\0\0\0\x01\0\0\0\x01\0\0", 100).is_err());
    }

    #[test]
    fn zstd_window_follows_the_limit() {
        assert_eq!(zstd_window_log(1), ZSTD_MIN_WINDOW_LOG);
        assert_eq!(zstd_window_log(1 << 25), 25);
        assert_eq!(zstd_window_log((1 << 25) + 1), 26);
        assert_eq!(zstd_window_log(usize::MAX), ZSTD_MAX_WINDOW_LOG);
    }
}
