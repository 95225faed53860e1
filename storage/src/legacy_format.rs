//! Kafka's message formats before record batches — magic 0 (Kafka 0.8–0.9) and magic 1 (0.10)
//! message sets — and their conversion to and from the magic-2 batches this broker stores.
//!
//! Old clients still send and expect them: Produce v0–2 carry message sets, and Fetch v0–1
//! (magic 0) and v2–3 (magic 1) must answer with them. Kafka 3.7 does the same conversions:
//! on produce it up-converts to the log's format (magic 2), on fetch it down-converts.
//!
//! One message (big-endian):
//!
//! ```text
//! offset        int64   producers may send anything; the broker assigns offsets
//! messageSize   int32   bytes after this field
//! crc           uint32  CRC-32 (IEEE) of magic..end
//! magic         int8    0 or 1
//! attributes    int8    codec:0-2 (none, gzip, snappy, lz4), timestampType:3 (magic 1 only)
//! timestamp     int64   magic 1 only; -1 = none
//! key           int32 length (-1 = null), bytes
//! value         int32 length (-1 = null), bytes
//! ```
//!
//! A compressed message ("wrapper") holds a whole inner message set, compressed, as its value.
//! Inner offsets are absolute for magic 0 and relative (0, 1, …) for magic 1, where the wrapper
//! carries the offset of the last inner message; for magic 1 with `LogAppendTime` the inner
//! timestamps are the wrapper's. Inner messages may not be compressed themselves.
//!
//! LZ4 quirk: Kafka before 0.10 (magic 0) wrote the LZ4 frame's header checksum over the frame
//! magic *and* the descriptor instead of the descriptor alone, and Kafka's reader ignores that
//! checksum for magic 0 (kafka-python still writes it that way for magic 0). Magic 1 frames are
//! standard. We repair the byte for magic 0 before decoding and require it for magic 1, as
//! Kafka does.
//!
//! Everything here treats its input as hostile: every length is checked against the bytes
//! behind it before slicing, CRCs are checked for every message (wrapper and inner),
//! decompression is bounded, and damage is a [`LegacyError`], never a panic.
//!
//! Conversions:
//! - [`up_convert`]: one produce partition's message set → **one** magic-2 batch (built with
//!   [`RecordBatchBuilder`]), in the source's codec (the last compressed wrapper's, as Kafka's
//!   `compression.type=producer`). Timestamps follow Kafka's up-conversion: magic 0 messages
//!   have none (-1, `CreateTime`; a `LogAppendTime` topic gets the broker's time from the log's
//!   append), magic 1 messages keep theirs.
//! - [`down_convert`]: magic-2 batches read from the log → an uncompressed magic 0 or 1 message
//!   set with absolute offsets. Control batches are dropped and headers are lost (the old
//!   formats have neither), as in Kafka.

use thiserror::Error;

use crate::batch_builder::RecordBatchBuilder;
use crate::codec;
use crate::record_batch::{BatchError, BatchIter, Compression, TimestampType};
use crate::records::Records;

pub const MAGIC_V0: i8 = 0;
pub const MAGIC_V1: i8 = 1;
/// `offset` + `messageSize`: the bytes in front of what `messageSize` counts.
pub const MESSAGE_LOG_OVERHEAD: usize = 12;
/// The smallest `messageSize` of a magic 0 message: crc, magic, attributes, key and value
/// lengths.
pub const MESSAGE_V0_MIN_SIZE: usize = 4 + 1 + 1 + 4 + 4;
/// The smallest `messageSize` of a magic 1 message: magic 0's plus the timestamp.
pub const MESSAGE_V1_MIN_SIZE: usize = MESSAGE_V0_MIN_SIZE + 8;
/// Where the magic byte sits, both in a message and in a magic-2 batch (so one byte tells
/// which format a produce request's records are in).
pub const MAGIC_AT: usize = 16;

const OFFSET_AT: usize = 0;
const SIZE_AT: usize = 8;
const CRC_AT: usize = 12;
const ATTRIBUTES_AT: usize = 17;
const TIMESTAMP_AT: usize = 18;
const CODEC_MASK: i8 = 0x07;
const TIMESTAMP_TYPE_BIT: i8 = 0x08;
/// "No timestamp" (Kafka's `RecordBatch.NO_TIMESTAMP`).
pub const NO_TIMESTAMP: i64 = -1;

const LZ4_FRAME_MAGIC: [u8; 4] = [0x04, 0x22, 0x4d, 0x18];

/// Why a message set could not be read or converted.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum LegacyError {
    #[error("the message set holds no messages")]
    Empty,
    #[error("message at byte {at} truncated: {needed} bytes needed, {available} available")]
    Truncated { at: usize, needed: usize, available: usize },
    #[error("message at byte {at} has messageSize {size}, below the minimum for its magic")]
    SizeTooSmall { at: usize, size: i32 },
    #[error("message at byte {at} is {size_bytes} bytes, over the limit of {max_bytes} bytes")]
    TooLarge { at: usize, size_bytes: usize, max_bytes: usize },
    #[error("message at byte {at} has magic {magic}; message sets have magic 0 or 1")]
    UnsupportedMagic { at: usize, magic: i8 },
    #[error("CRC mismatch in message at byte {at}: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { at: usize, stored: u32, computed: u32 },
    #[error("message at byte {at}: {reason}")]
    InvalidMessage { at: usize, reason: &'static str },
    #[error("compression codec {codec} is not valid for magic {magic}")]
    UnsupportedCompression { codec: u8, magic: i8 },
    #[error("a compressed message holds another compressed message")]
    NestedCompression,
    #[error("an inner message has magic {inner} but its compressed wrapper magic {outer}")]
    MagicMismatch { outer: i8, inner: i8 },
    #[error("a compressed message has a null value")]
    NullCompressedValue,
    #[error("a compressed message holds no messages")]
    EmptyCompressedSet,
    #[error("decompression failed: {0}")]
    Decompression(String),
    #[error("decompressed messages exceed the limit of {max_bytes} bytes")]
    DecompressedTooLarge { max_bytes: usize },
    /// A magic-2 batch being down-converted failed to parse (a damaged log).
    #[error("record batch: {0}")]
    Batch(#[from] BatchError),
    #[error("cannot build the converted batch: {0}")]
    Build(String),
    #[error("cannot convert to magic {0}: only 0 and 1 are message-set formats")]
    UnsupportedTargetMagic(i8),
}

impl LegacyError {
    /// Well-formed but over a size limit: Kafka's `MESSAGE_TOO_LARGE` (our decompression bound
    /// counts as one: the input is not wrong, only bigger than this broker inflates).
    pub fn is_too_large(&self) -> bool {
        matches!(
            self,
            LegacyError::TooLarge { .. }
                | LegacyError::DecompressedTooLarge { .. }
                | LegacyError::Batch(BatchError::TooLarge { .. })
        )
    }

    /// Intact bytes that break a rule of the format (Kafka's `InvalidRecordException`,
    /// `INVALID_RECORD`); everything else that is not [`LegacyError::is_too_large`] is
    /// corruption (`CORRUPT_MESSAGE`).
    pub fn is_invalid_record(&self) -> bool {
        matches!(
            self,
            LegacyError::NestedCompression
                | LegacyError::MagicMismatch { .. }
                | LegacyError::NullCompressedValue
                | LegacyError::EmptyCompressedSet
                | LegacyError::UnsupportedCompression { .. }
        )
    }
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// One message, borrowed from its message set; its CRC has been checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyMessage<'a> {
    /// As written by whoever wrote the set (meaningless in a produce request).
    pub offset: i64,
    pub magic: i8,
    pub attributes: i8,
    /// -1 for magic 0.
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    /// The whole message including `offset` and `messageSize`.
    pub size_bytes: usize,
}

impl LegacyMessage<'_> {
    /// The codec of a wrapper, `None` for a plain message.
    pub fn compression(&self) -> Result<Compression, LegacyError> {
        let codec = (self.attributes & CODEC_MASK) as u8;
        match codec {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            _ => Err(LegacyError::UnsupportedCompression { codec, magic: self.magic }),
        }
    }

    /// Magic 1 only; magic 0 messages are `CreateTime` with no timestamp.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.magic >= MAGIC_V1 && self.attributes & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
}

/// Reads the message at the front of `buf` (which may hold more after it), checking its
/// length fields against `buf` and its CRC. `at` is only for error messages.
pub fn parse_message(buf: &[u8], at: usize) -> Result<LegacyMessage<'_>, LegacyError> {
    // offset, messageSize, crc, magic: enough to know the magic and the minimum size.
    if buf.len() < MAGIC_AT + 1 {
        return Err(LegacyError::Truncated { at, needed: MAGIC_AT + 1, available: buf.len() });
    }
    let size = be_i32(buf, SIZE_AT);
    let magic = buf[MAGIC_AT] as i8;
    let min_size = match magic {
        MAGIC_V0 => MESSAGE_V0_MIN_SIZE,
        MAGIC_V1 => MESSAGE_V1_MIN_SIZE,
        other => return Err(LegacyError::UnsupportedMagic { at, magic: other }),
    };
    if size < 0 || (size as usize) < min_size {
        return Err(LegacyError::SizeTooSmall { at, size });
    }
    let size_bytes = MESSAGE_LOG_OVERHEAD + size as usize;
    if buf.len() < size_bytes {
        return Err(LegacyError::Truncated { at, needed: size_bytes, available: buf.len() });
    }
    let message = &buf[..size_bytes];
    let stored = be_i32(message, CRC_AT) as u32;
    let computed = crc32fast::hash(&message[MAGIC_AT..]);
    if stored != computed {
        return Err(LegacyError::CrcMismatch { at, stored, computed });
    }
    let attributes = message[ATTRIBUTES_AT] as i8;
    let (timestamp, mut pos) = if magic == MAGIC_V1 {
        (be_i64(message, TIMESTAMP_AT), TIMESTAMP_AT + 8)
    } else {
        (NO_TIMESTAMP, ATTRIBUTES_AT + 1)
    };
    let key = nullable_bytes(message, &mut pos, at)?;
    let value = nullable_bytes(message, &mut pos, at)?;
    if pos != message.len() {
        return Err(LegacyError::InvalidMessage { at, reason: "key and value do not fill messageSize" });
    }
    Ok(LegacyMessage {
        offset: be_i64(message, OFFSET_AT),
        magic,
        attributes,
        timestamp,
        key,
        value,
        size_bytes,
    })
}

/// An `int32`-length-prefixed nullable byte string at `*pos`; advances `*pos`.
fn nullable_bytes<'a>(
    message: &'a [u8],
    pos: &mut usize,
    at: usize,
) -> Result<Option<&'a [u8]>, LegacyError> {
    if message.len() - *pos < 4 {
        return Err(LegacyError::InvalidMessage { at, reason: "length field past messageSize" });
    }
    let len = be_i32(message, *pos);
    *pos += 4;
    match len {
        -1 => Ok(None),
        n if n < -1 => Err(LegacyError::InvalidMessage { at, reason: "negative key or value length" }),
        n => {
            let n = n as usize;
            if message.len() - *pos < n {
                return Err(LegacyError::InvalidMessage {
                    at,
                    reason: "key or value longer than messageSize",
                });
            }
            let bytes = &message[*pos..*pos + n];
            *pos += n;
            Ok(Some(bytes))
        }
    }
}

/// Iterates the messages of a whole message set. Strict: a set that ends in the middle of a
/// message is an error (a producer never sends one), and the iterator ends after an error.
pub struct MessageIter<'a> {
    buf: &'a [u8],
    position: usize,
    failed: bool,
}

impl<'a> MessageIter<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        MessageIter { buf, position: 0, failed: false }
    }
}

impl<'a> Iterator for MessageIter<'a> {
    type Item = Result<LegacyMessage<'a>, LegacyError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.buf.len() {
            return None;
        }
        match parse_message(&self.buf[self.position..], self.position) {
            Ok(message) => {
                self.position += message.size_bytes;
                Some(Ok(message))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Bounds for [`up_convert`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UpConvertLimits {
    /// The topic's `max.message.bytes`: no top-level message (plain or wrapper) may be larger,
    /// as Kafka checks each "batch" of an old-format set.
    pub max_message_bytes: usize,
    /// The most bytes all compressed wrappers of the set may inflate to, together.
    pub max_decompressed_bytes: usize,
}

/// The result of [`up_convert`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpConverted {
    /// One magic-2 batch at base offset 0 (the log assigns the real one).
    pub batch: Vec<u8>,
    pub record_count: i32,
    /// The magic of the first message.
    pub source_magic: i8,
    /// The codec of the batch: the last compressed wrapper's, or none.
    pub compression: Compression,
}

/// Converts a produce request's message set (magic 0 or 1, possibly with compressed wrappers)
/// into one magic-2 batch. Every message's CRC is checked; offsets in the set are ignored (the
/// broker assigns them), as are the keys of wrappers.
pub fn up_convert(set: &[u8], limits: UpConvertLimits) -> Result<UpConverted, LegacyError> {
    // First pass: validate the top level and pick the codec, without inflating anything.
    let mut source_magic = None;
    let mut compression = Compression::None;
    for message in MessageIter::new(set) {
        let message = message?;
        source_magic.get_or_insert(message.magic);
        if message.size_bytes > limits.max_message_bytes {
            return Err(LegacyError::TooLarge {
                at: 0,
                size_bytes: message.size_bytes,
                max_bytes: limits.max_message_bytes,
            });
        }
        let codec = message.compression()?;
        if codec != Compression::None {
            compression = codec;
        }
    }
    let Some(source_magic) = source_magic else { return Err(LegacyError::Empty) };

    let mut builder = RecordBatchBuilder::new(0, compression);
    let mut decompressed_budget = limits.max_decompressed_bytes;
    let push = |builder: &mut RecordBatchBuilder, timestamp: i64, m: &LegacyMessage<'_>| {
        builder.push(timestamp, m.key, m.value, &[]).map_err(|e| LegacyError::Build(e.to_string()))
    };
    for message in MessageIter::new(set) {
        let message = message?;
        let codec = message.compression()?;
        if codec == Compression::None {
            push(&mut builder, message.timestamp, &message)?;
            continue;
        }
        let inner = inflate(&message, decompressed_budget)?;
        decompressed_budget -= inner.len();
        let wrapper_log_append_time = message.timestamp_type() == TimestampType::LogAppendTime;
        let mut inner_count = 0usize;
        for inner_message in MessageIter::new(&inner) {
            let inner_message = inner_message?;
            if inner_message.magic != message.magic {
                return Err(LegacyError::MagicMismatch { outer: message.magic, inner: inner_message.magic });
            }
            if inner_message.compression()? != Compression::None {
                return Err(LegacyError::NestedCompression);
            }
            let timestamp = if wrapper_log_append_time { message.timestamp } else { inner_message.timestamp };
            push(&mut builder, timestamp, &inner_message)?;
            inner_count += 1;
        }
        if inner_count == 0 {
            return Err(LegacyError::EmptyCompressedSet);
        }
    }
    let record_count = builder.record_count();
    let batch = builder.build().map_err(|e| LegacyError::Build(e.to_string()))?;
    Ok(UpConverted { batch, record_count, source_magic, compression })
}

/// The inner message set of a compressed wrapper, inflated into at most `max_bytes`.
fn inflate(wrapper: &LegacyMessage<'_>, max_bytes: usize) -> Result<Vec<u8>, LegacyError> {
    let codec = wrapper.compression()?;
    let value = wrapper.value.ok_or(LegacyError::NullCompressedValue)?;
    let result = if codec == Compression::Lz4 && wrapper.magic == MAGIC_V0 {
        codec::decompress(codec, &repair_lz4_header_checksum(value), max_bytes)
    } else {
        codec::decompress(codec, value, max_bytes)
    };
    result.map_err(|e| match e {
        BatchError::DecompressedTooLarge { max_bytes } => LegacyError::DecompressedTooLarge { max_bytes },
        other => LegacyError::Decompression(other.to_string()),
    })
}

/// Length of an LZ4 frame descriptor (FLG, BD, optional content size and dictionary id), if
/// `frame` starts with an LZ4 frame header.
fn lz4_descriptor_len(frame: &[u8]) -> Option<usize> {
    if frame.len() < 6 || frame[..4] != LZ4_FRAME_MAGIC {
        return None;
    }
    let flg = frame[4];
    Some(2 + if flg & 0x08 != 0 { 8 } else { 0 } + if flg & 0x01 != 0 { 4 } else { 0 })
}

/// A copy of a magic-0 LZ4 frame with the header checksum Kafka 0.8/0.9 got wrong replaced by
/// the correct one (over the descriptor only). Anything that is not an LZ4 frame header is
/// returned unchanged for the decoder to reject.
fn repair_lz4_header_checksum(frame: &[u8]) -> Vec<u8> {
    let mut fixed = frame.to_vec();
    if let Some(len) = lz4_descriptor_len(frame) {
        if frame.len() > 4 + len {
            fixed[4 + len] = (xxh32(&frame[4..4 + len], 0) >> 8) as u8;
        }
    }
    fixed
}

/// The header checksum byte that Kafka 0.8/0.9 wrote: over the frame magic and descriptor.
fn broken_lz4_header_checksum(frame: &mut [u8]) {
    if let Some(len) = lz4_descriptor_len(frame) {
        if frame.len() > 4 + len {
            frame[4 + len] = (xxh32(&frame[..4 + len], 0) >> 8) as u8;
        }
    }
}

/// XXH32, for the LZ4 frame header checksum (a handful of bytes).
fn xxh32(input: &[u8], seed: u32) -> u32 {
    const P1: u32 = 2_654_435_761;
    const P2: u32 = 2_246_822_519;
    const P3: u32 = 3_266_489_917;
    const P4: u32 = 668_265_263;
    const P5: u32 = 374_761_393;
    let word = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let round =
        |acc: u32, lane: u32| acc.wrapping_add(lane.wrapping_mul(P2)).rotate_left(13).wrapping_mul(P1);
    let mut rest = input;
    let mut h = if input.len() >= 16 {
        let mut v =
            [seed.wrapping_add(P1).wrapping_add(P2), seed.wrapping_add(P2), seed, seed.wrapping_sub(P1)];
        while rest.len() >= 16 {
            for (i, lane) in v.iter_mut().enumerate() {
                *lane = round(*lane, word(&rest[i * 4..]));
            }
            rest = &rest[16..];
        }
        v[0].rotate_left(1)
            .wrapping_add(v[1].rotate_left(7))
            .wrapping_add(v[2].rotate_left(12))
            .wrapping_add(v[3].rotate_left(18))
    } else {
        seed.wrapping_add(P5)
    };
    h = h.wrapping_add(input.len() as u32);
    while rest.len() >= 4 {
        h = h.wrapping_add(word(rest).wrapping_mul(P3)).rotate_left(17).wrapping_mul(P4);
        rest = &rest[4..];
    }
    for &b in rest {
        h = h.wrapping_add(u32::from(b).wrapping_mul(P5)).rotate_left(11).wrapping_mul(P1);
    }
    h ^= h >> 15;
    h = h.wrapping_mul(P2);
    h ^= h >> 13;
    h = h.wrapping_mul(P3);
    h ^= h >> 16;
    h
}

/// Appends one message. `attributes` carries the codec (for wrappers) and, for magic 1, the
/// timestamp type; `timestamp` is ignored for magic 0.
pub fn put_message(
    out: &mut Vec<u8>,
    magic: i8,
    offset: i64,
    attributes: i8,
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> Result<(), LegacyError> {
    let header = match magic {
        MAGIC_V0 => MESSAGE_V0_MIN_SIZE,
        MAGIC_V1 => MESSAGE_V1_MIN_SIZE,
        other => return Err(LegacyError::UnsupportedTargetMagic(other)),
    };
    let size = header + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len);
    let size = i32::try_from(size).map_err(|_| LegacyError::Build("message larger than i32::MAX".into()))?;
    let start = out.len();
    out.extend_from_slice(&offset.to_be_bytes());
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(&[0; 4]); // CRC, below
    out.push(magic as u8);
    out.push(attributes as u8);
    if magic == MAGIC_V1 {
        out.extend_from_slice(&timestamp.to_be_bytes());
    }
    for field in [key, value] {
        match field {
            None => out.extend_from_slice(&(-1i32).to_be_bytes()),
            Some(bytes) => {
                // Fits: the sum of the lengths fits an i32 (checked above).
                out.extend_from_slice(&(bytes.len() as i32).to_be_bytes());
                out.extend_from_slice(bytes);
            }
        }
    }
    let crc = crc32fast::hash(&out[start + MAGIC_AT..]);
    out[start + CRC_AT..start + CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(())
}

/// A message to write with [`build_message_set`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewMessage<'a> {
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

/// Writes `messages` as a message set the way the old clients do: plain messages at offsets
/// `base_offset..`, or — with a codec — one wrapper holding them compressed (inner offsets
/// absolute for magic 0, relative for magic 1; the wrapper at the last offset with the largest
/// timestamp; magic-0 LZ4 with Kafka 0.8's header checksum). For tests and tools.
pub fn build_message_set(
    magic: i8,
    compression: Compression,
    base_offset: i64,
    messages: &[NewMessage<'_>],
) -> Result<Vec<u8>, LegacyError> {
    let codec_id = match compression {
        Compression::None => 0,
        Compression::Gzip => 1,
        Compression::Snappy => 2,
        Compression::Lz4 => 3,
        Compression::Zstd => return Err(LegacyError::UnsupportedCompression { codec: 4, magic }),
    };
    let mut plain = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let offset = if codec_id != 0 && magic == MAGIC_V1 { i as i64 } else { base_offset + i as i64 };
        put_message(&mut plain, magic, offset, 0, m.timestamp, m.key, m.value)?;
    }
    if codec_id == 0 {
        return Ok(plain);
    }
    let mut compressed =
        codec::compress(compression, &plain).map_err(|e| LegacyError::Build(e.to_string()))?;
    if compression == Compression::Lz4 && magic == MAGIC_V0 {
        broken_lz4_header_checksum(&mut compressed);
    }
    let last_offset = base_offset + messages.len().saturating_sub(1) as i64;
    let max_timestamp = messages.iter().map(|m| m.timestamp).max().unwrap_or(NO_TIMESTAMP);
    let mut out = Vec::new();
    put_message(&mut out, magic, last_offset, codec_id, max_timestamp, None, Some(&compressed))?;
    Ok(out)
}

/// The result of [`down_convert`].
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DownConverted {
    pub bytes: Vec<u8>,
    pub message_count: usize,
}

/// Converts magic-2 batches (as read from the log: whole batches, possibly starting before
/// `fetch_offset`) into an uncompressed message set of `to_magic` (0 or 1) with absolute
/// offsets, starting at the first record at or after `fetch_offset`, of whole messages within
/// `max_bytes` — but at least one message when `min_one_message`, so a consumer never stalls on
/// a message larger than its fetch size. Control batches are skipped and headers dropped;
/// magic 1 keeps timestamps and the batch's timestamp type. Compressed batches are inflated into
/// at most `max_decompressed_bytes` each.
pub fn down_convert(
    batches: &[u8],
    to_magic: i8,
    fetch_offset: i64,
    max_bytes: usize,
    min_one_message: bool,
    max_decompressed_bytes: usize,
) -> Result<DownConverted, LegacyError> {
    let header = match to_magic {
        MAGIC_V0 => MESSAGE_V0_MIN_SIZE,
        MAGIC_V1 => MESSAGE_V1_MIN_SIZE,
        other => return Err(LegacyError::UnsupportedTargetMagic(other)),
    };
    let mut out = DownConverted::default();
    for item in BatchIter::new(batches, usize::MAX) {
        let (_, batch) = item?;
        if batch.is_control() || batch.last_offset() < fetch_offset {
            continue;
        }
        let attributes = if to_magic == MAGIC_V1 && batch.timestamp_type() == TimestampType::LogAppendTime {
            TIMESTAMP_TYPE_BIT
        } else {
            0
        };
        let records = Records::decode(batch, max_decompressed_bytes)?;
        for record in records.iter() {
            let record = record?;
            if record.offset < fetch_offset {
                continue;
            }
            let size = MESSAGE_LOG_OVERHEAD
                + header
                + record.key.map_or(0, <[u8]>::len)
                + record.value.map_or(0, <[u8]>::len);
            let first = out.message_count == 0;
            if out.bytes.len().saturating_add(size) > max_bytes && !(first && min_one_message) {
                return Ok(out);
            }
            put_message(
                &mut out.bytes,
                to_magic,
                record.offset,
                attributes,
                record.timestamp,
                record.key,
                record.value,
            )?;
            out.message_count += 1;
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_batch::RecordBatch;
    use proptest::prelude::*;

    const LIMITS: UpConvertLimits =
        UpConvertLimits { max_message_bytes: 1 << 20, max_decompressed_bytes: 8 << 20 };
    const CODECS: [Compression; 4] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4];

    fn messages(n: usize, timestamp: i64) -> Owned {
        (0..n)
            .map(|i| (timestamp + i as i64, format!("k{i}").into_bytes(), format!("v{i}").into_bytes()))
            .collect()
    }

    fn new_messages(owned: &[(i64, Vec<u8>, Vec<u8>)]) -> Vec<NewMessage<'_>> {
        owned.iter().map(|(t, k, v)| NewMessage { timestamp: *t, key: Some(k), value: Some(v) }).collect()
    }

    /// `(offset, timestamp, key, value)`.
    type Entry = (i64, i64, Option<Vec<u8>>, Option<Vec<u8>>);
    /// `(timestamp, key, value)` to write.
    type Owned = Vec<(i64, Vec<u8>, Vec<u8>)>;

    /// Every record of a magic-2 batch.
    fn records_of(batch: &[u8]) -> Vec<Entry> {
        let batch = RecordBatch::validate(batch, usize::MAX).expect("a valid batch");
        let records = Records::decode(batch, 1 << 24).unwrap();
        records
            .iter()
            .map(|r| {
                let r = r.unwrap();
                (r.offset, r.timestamp, r.key.map(<[u8]>::to_vec), r.value.map(<[u8]>::to_vec))
            })
            .collect()
    }

    /// Every message of a plain message set.
    fn messages_of(set: &[u8]) -> Vec<Entry> {
        MessageIter::new(set)
            .map(|m| {
                let m = m.unwrap();
                (m.offset, m.timestamp, m.key.map(<[u8]>::to_vec), m.value.map(<[u8]>::to_vec))
            })
            .collect()
    }

    #[test]
    fn xxh32_matches_known_values_and_lz4_flex() {
        assert_eq!(xxh32(b"", 0), 0x02cc_5d05);
        assert_eq!(xxh32(b"a", 0), 0x550d_7456);
        assert_eq!(xxh32(b"abc", 0), 0x32d1_53ff);
        assert_eq!(xxh32(b"Nobody inspects the spammish repetition", 0), 0xe229_3b2f);
        // lz4_flex writes a correct header checksum over the descriptor.
        let frame = codec::compress(Compression::Lz4, b"hello hello hello").unwrap();
        let len = lz4_descriptor_len(&frame).unwrap();
        assert_eq!(frame[4 + len], (xxh32(&frame[4..4 + len], 0) >> 8) as u8);
    }

    #[test]
    fn every_magic_and_codec_up_converts_to_one_batch() {
        let owned = messages(5, 1_700_000_000_000);
        for magic in [MAGIC_V0, MAGIC_V1] {
            for codec in CODECS {
                let set = build_message_set(magic, codec, 100, &new_messages(&owned)).unwrap();
                let up = up_convert(&set, LIMITS).unwrap_or_else(|e| panic!("magic {magic} {codec:?}: {e}"));
                assert_eq!((up.record_count, up.source_magic, up.compression), (5, magic, codec));
                let batch = RecordBatch::validate(&up.batch, usize::MAX).unwrap();
                assert_eq!((batch.base_offset(), batch.compression()), (0, codec));
                assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
                let got = records_of(&up.batch);
                for (i, (offset, timestamp, key, value)) in got.into_iter().enumerate() {
                    assert_eq!(offset, i as i64);
                    // Magic 0 has no timestamps: -1, as Kafka up-converts them.
                    let want_ts = if magic == MAGIC_V0 { NO_TIMESTAMP } else { owned[i].0 };
                    assert_eq!(timestamp, want_ts, "magic {magic} {codec:?}");
                    assert_eq!((key.unwrap(), value.unwrap()), (owned[i].1.clone(), owned[i].2.clone()));
                }
            }
        }
    }

    #[test]
    fn mixed_plain_and_wrapped_messages_keep_their_order() {
        let a = messages(2, 10);
        let b = messages(3, 20);
        let mut set = build_message_set(MAGIC_V1, Compression::None, 0, &new_messages(&a)).unwrap();
        set.extend(build_message_set(MAGIC_V1, Compression::Gzip, 2, &new_messages(&b)).unwrap());
        set.extend(build_message_set(MAGIC_V1, Compression::None, 5, &new_messages(&a)).unwrap());
        let up = up_convert(&set, LIMITS).unwrap();
        assert_eq!((up.record_count, up.compression), (7, Compression::Gzip));
        let timestamps: Vec<i64> = records_of(&up.batch).iter().map(|r| r.1).collect();
        assert_eq!(timestamps, vec![10, 11, 20, 21, 22, 10, 11]);
    }

    #[test]
    fn null_keys_and_values_survive() {
        let set = build_message_set(
            MAGIC_V1,
            Compression::None,
            0,
            &[
                NewMessage { timestamp: 5, key: None, value: None },
                NewMessage { timestamp: 6, key: Some(b""), value: Some(b"x") },
            ],
        )
        .unwrap();
        let up = up_convert(&set, LIMITS).unwrap();
        let got = records_of(&up.batch);
        assert_eq!(got[0], (0, 5, None, None));
        assert_eq!(got[1], (1, 6, Some(vec![]), Some(b"x".to_vec())));
    }

    #[test]
    fn log_append_time_wrapper_stamps_its_inner_messages() {
        let owned = messages(3, 1);
        let mut set = build_message_set(MAGIC_V1, Compression::Snappy, 0, &new_messages(&owned)).unwrap();
        // Set the wrapper's timestamp type and time, recompute its CRC.
        set[ATTRIBUTES_AT] |= TIMESTAMP_TYPE_BIT as u8;
        set[TIMESTAMP_AT..TIMESTAMP_AT + 8].copy_from_slice(&777i64.to_be_bytes());
        let crc = crc32fast::hash(&set[MAGIC_AT..]);
        set[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        let up = up_convert(&set, LIMITS).unwrap();
        assert!(records_of(&up.batch).iter().all(|r| r.1 == 777));
    }

    #[test]
    fn magic0_lz4_with_a_correct_checksum_is_read_too_but_magic1_must_be_correct() {
        let owned = messages(4, 0);
        // Magic 0 with a standard frame (what a fixed client would write): still readable.
        let plain = build_message_set(MAGIC_V0, Compression::None, 0, &new_messages(&owned)).unwrap();
        let compressed = codec::compress(Compression::Lz4, &plain).unwrap();
        let mut set = Vec::new();
        put_message(&mut set, MAGIC_V0, 3, 3, NO_TIMESTAMP, None, Some(&compressed)).unwrap();
        assert_eq!(up_convert(&set, LIMITS).unwrap().record_count, 4);
        // Magic 1 with Kafka 0.8's broken checksum: rejected, as Kafka's reader does.
        let plain = build_message_set(MAGIC_V1, Compression::None, 0, &new_messages(&owned)).unwrap();
        let mut compressed = codec::compress(Compression::Lz4, &plain).unwrap();
        broken_lz4_header_checksum(&mut compressed);
        let mut set = Vec::new();
        put_message(&mut set, MAGIC_V1, 3, 3, 0, None, Some(&compressed)).unwrap();
        assert!(matches!(up_convert(&set, LIMITS), Err(LegacyError::Decompression(_))));
    }

    #[test]
    fn damaged_sets_are_typed_errors() {
        let owned = messages(3, 0);
        let set = build_message_set(MAGIC_V1, Compression::None, 0, &new_messages(&owned)).unwrap();

        assert_eq!(up_convert(&[], LIMITS), Err(LegacyError::Empty));
        let one = set.len() / 3;
        for cut in 1..set.len() {
            // A cut between messages leaves a valid, shorter set.
            if cut % one != 0 {
                let err = up_convert(&set[..cut], LIMITS).unwrap_err();
                assert!(matches!(err, LegacyError::Truncated { .. }), "cut {cut}: {err}");
            }
        }
        let mut flipped = set.clone();
        flipped[30] ^= 1;
        assert!(matches!(up_convert(&flipped, LIMITS), Err(LegacyError::CrcMismatch { at: 0, .. })));

        let mut bad_magic = set.clone();
        bad_magic[MAGIC_AT] = 2;
        assert!(matches!(
            up_convert(&bad_magic, LIMITS),
            Err(LegacyError::UnsupportedMagic { magic: 2, .. })
        ));

        let mut tiny = set.clone();
        tiny[SIZE_AT..SIZE_AT + 4].copy_from_slice(&3i32.to_be_bytes());
        assert!(matches!(up_convert(&tiny, LIMITS), Err(LegacyError::SizeTooSmall { size: 3, .. })));
        tiny[SIZE_AT..SIZE_AT + 4].copy_from_slice(&(-7i32).to_be_bytes());
        assert!(matches!(up_convert(&tiny, LIMITS), Err(LegacyError::SizeTooSmall { size: -7, .. })));

        // A key length that overruns the message, with a valid CRC.
        let mut overrun = Vec::new();
        put_message(&mut overrun, MAGIC_V1, 0, 0, 0, Some(b"key"), Some(b"value")).unwrap();
        overrun[26..30].copy_from_slice(&100i32.to_be_bytes());
        let crc = crc32fast::hash(&overrun[MAGIC_AT..]);
        overrun[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        assert!(matches!(up_convert(&overrun, LIMITS), Err(LegacyError::InvalidMessage { .. })));

        let big = up_convert(&set, UpConvertLimits { max_message_bytes: 20, ..LIMITS }).unwrap_err();
        assert!(big.is_too_large(), "{big}");

        let zstd = build_message_set(MAGIC_V1, Compression::Zstd, 0, &new_messages(&owned)).unwrap_err();
        assert!(zstd.is_invalid_record());
        let mut zstd_wrapper = Vec::new();
        put_message(&mut zstd_wrapper, MAGIC_V1, 0, 4, 0, None, Some(b"x")).unwrap();
        let err = up_convert(&zstd_wrapper, LIMITS).unwrap_err();
        assert!(matches!(err, LegacyError::UnsupportedCompression { codec: 4, magic: 1 }), "{err}");
    }

    #[test]
    fn wrapper_rules_are_enforced() {
        let owned = messages(2, 0);
        // Nested compression.
        let inner = build_message_set(MAGIC_V1, Compression::Gzip, 0, &new_messages(&owned)).unwrap();
        let compressed = codec::compress(Compression::Gzip, &inner).unwrap();
        let mut nested = Vec::new();
        put_message(&mut nested, MAGIC_V1, 0, 1, 0, None, Some(&compressed)).unwrap();
        assert_eq!(up_convert(&nested, LIMITS), Err(LegacyError::NestedCompression));
        // Inner magic differs from the wrapper's.
        let inner = build_message_set(MAGIC_V0, Compression::None, 0, &new_messages(&owned)).unwrap();
        let compressed = codec::compress(Compression::Gzip, &inner).unwrap();
        let mut mismatch = Vec::new();
        put_message(&mut mismatch, MAGIC_V1, 0, 1, 0, None, Some(&compressed)).unwrap();
        assert_eq!(up_convert(&mismatch, LIMITS), Err(LegacyError::MagicMismatch { outer: 1, inner: 0 }));
        // Null and empty wrapper values.
        let mut null = Vec::new();
        put_message(&mut null, MAGIC_V1, 0, 1, 0, None, None).unwrap();
        assert_eq!(up_convert(&null, LIMITS), Err(LegacyError::NullCompressedValue));
        let empty = codec::compress(Compression::Gzip, &[]).unwrap();
        let mut hollow = Vec::new();
        put_message(&mut hollow, MAGIC_V1, 0, 1, 0, None, Some(&empty)).unwrap();
        assert_eq!(up_convert(&hollow, LIMITS), Err(LegacyError::EmptyCompressedSet));
        // A damaged inner message (CRC) inside a valid wrapper.
        let mut inner = build_message_set(MAGIC_V1, Compression::None, 0, &new_messages(&owned)).unwrap();
        let last = inner.len() - 1;
        inner[last] ^= 0x20;
        let compressed = codec::compress(Compression::Snappy, &inner).unwrap();
        let mut damaged = Vec::new();
        put_message(&mut damaged, MAGIC_V1, 0, 2, 0, None, Some(&compressed)).unwrap();
        assert!(matches!(up_convert(&damaged, LIMITS), Err(LegacyError::CrcMismatch { .. })));
        // Garbage where the compressed bytes should be.
        let mut garbage = Vec::new();
        put_message(&mut garbage, MAGIC_V1, 0, 3, 0, None, Some(b"not lz4 at all")).unwrap();
        assert!(matches!(up_convert(&garbage, LIMITS), Err(LegacyError::Decompression(_))));
    }

    #[test]
    fn decompression_is_bounded_for_the_whole_set() {
        let big = vec![0u8; 100_000];
        let set = build_message_set(
            MAGIC_V1,
            Compression::Gzip,
            0,
            &[NewMessage { timestamp: 0, key: None, value: Some(&big) }],
        )
        .unwrap();
        let mut two = set.clone();
        two.extend_from_slice(&set);
        let limits = UpConvertLimits { max_message_bytes: 1 << 20, max_decompressed_bytes: 150_000 };
        assert_eq!(up_convert(&set, limits).unwrap().record_count, 1);
        let err = up_convert(&two, limits).unwrap_err();
        assert!(matches!(err, LegacyError::DecompressedTooLarge { .. }) && err.is_too_large(), "{err}");
    }

    fn log_batches(codec: Compression) -> (Vec<u8>, Owned) {
        // Two batches at offsets 10..13 and 13..15, as a log holds them.
        let owned = messages(5, 1000);
        let mut log = Vec::new();
        for (base, range) in [(10, 0..3), (13, 3..5)] {
            let mut b = RecordBatchBuilder::new(base, codec);
            for (t, k, v) in &owned[range] {
                b.push(*t, Some(k), Some(v), &[crate::records::Header { key: b"h", value: Some(b"x") }])
                    .unwrap();
            }
            log.extend(b.build().unwrap());
        }
        (log, owned)
    }

    #[test]
    fn down_converts_to_both_magics_with_absolute_offsets() {
        for codec in [Compression::None, Compression::Gzip, Compression::Lz4, Compression::Zstd] {
            let (log, owned) = log_batches(codec);
            for magic in [MAGIC_V0, MAGIC_V1] {
                let out = down_convert(&log, magic, 11, usize::MAX, true, 1 << 20).unwrap();
                assert_eq!(out.message_count, 4);
                let got = messages_of(&out.bytes);
                for (j, (offset, timestamp, key, value)) in got.into_iter().enumerate() {
                    let i = j + 1;
                    assert_eq!(offset, 10 + i as i64);
                    assert_eq!(timestamp, if magic == MAGIC_V1 { owned[i].0 } else { NO_TIMESTAMP });
                    assert_eq!((key.unwrap(), value.unwrap()), (owned[i].1.clone(), owned[i].2.clone()));
                }
                assert!(MessageIter::new(&out.bytes).all(|m| m.unwrap().magic == magic));
            }
        }
    }

    #[test]
    fn round_trip_up_then_down() {
        let owned = messages(7, 42);
        for magic in [MAGIC_V0, MAGIC_V1] {
            for codec in CODECS {
                let set = build_message_set(magic, codec, 0, &new_messages(&owned)).unwrap();
                let up = up_convert(&set, LIMITS).unwrap();
                let down = down_convert(&up.batch, magic, 0, usize::MAX, true, 1 << 20).unwrap();
                let plain = build_message_set(magic, Compression::None, 0, &new_messages(&owned)).unwrap();
                assert_eq!(down.bytes, plain, "magic {magic} {codec:?}");
            }
        }
    }

    #[test]
    fn down_conversion_respects_max_bytes_but_returns_one_message() {
        let (log, _) = log_batches(Compression::None);
        let one = MESSAGE_LOG_OVERHEAD + MESSAGE_V1_MIN_SIZE + 4; // "k0" + "v0"
        let out = down_convert(&log, MAGIC_V1, 10, 2 * one + 1, true, 1 << 20).unwrap();
        assert_eq!((out.message_count, out.bytes.len()), (2, 2 * one));
        let out = down_convert(&log, MAGIC_V1, 10, 1, true, 1 << 20).unwrap();
        assert_eq!(out.message_count, 1);
        let out = down_convert(&log, MAGIC_V1, 10, 1, false, 1 << 20).unwrap();
        assert_eq!(out.message_count, 0);
        // Past the end, or an empty read: nothing.
        assert_eq!(down_convert(&log, MAGIC_V0, 15, 1000, true, 1 << 20).unwrap().message_count, 0);
        assert_eq!(down_convert(&[], MAGIC_V0, 0, 1000, true, 1 << 20).unwrap(), DownConverted::default());
    }

    #[test]
    fn down_conversion_keeps_log_append_time_and_skips_control_batches() {
        let mut log = Vec::new();
        let mut marker = RecordBatchBuilder::new(0, Compression::None)
            .producer(1, 0, -1)
            .transactional(true)
            .control(true);
        let (k, v) = crate::records::EndTxnMarker { commit: true, coordinator_epoch: 0 }.encode();
        marker.push(5, Some(&k), Some(&v), &[]).unwrap();
        log.extend(marker.build().unwrap());
        let mut b = RecordBatchBuilder::new(1, Compression::None).log_append_time(999);
        b.push(5, None, Some(b"x"), &[]).unwrap();
        log.extend(b.build().unwrap());
        let out = down_convert(&log, MAGIC_V1, 0, usize::MAX, true, 1 << 20).unwrap();
        let m: Vec<_> = MessageIter::new(&out.bytes).collect::<Result<_, _>>().unwrap();
        assert_eq!(m.len(), 1);
        assert_eq!(
            (m[0].offset, m[0].timestamp, m[0].timestamp_type()),
            (1, 999, TimestampType::LogAppendTime)
        );
    }

    #[test]
    fn damaged_log_bytes_and_bad_targets_are_errors() {
        let (mut log, _) = log_batches(Compression::Gzip);
        assert!(matches!(
            down_convert(&log, 2, 0, 100, true, 1 << 20),
            Err(LegacyError::UnsupportedTargetMagic(2))
        ));
        // The bound on decompression.
        let err = down_convert(&log, MAGIC_V1, 0, usize::MAX, true, 10).unwrap_err();
        assert!(matches!(err, LegacyError::Batch(BatchError::DecompressedTooLarge { .. })), "{err}");
        // Compressed bytes replaced with garbage.
        let at = crate::record_batch::BATCH_HEADER_BYTES + 3;
        log[at] ^= 0xff;
        log[at + 1] ^= 0xff;
        assert!(down_convert(&log, MAGIC_V1, 0, usize::MAX, true, 1 << 20).is_err());
        // A cut in the middle of a batch.
        let (log, _) = log_batches(Compression::None);
        assert!(matches!(
            down_convert(&log[..log.len() - 3], MAGIC_V1, 0, usize::MAX, true, 1 << 20),
            Err(LegacyError::Batch(BatchError::Truncated { .. }))
        ));
    }

    /// Message sets written by another implementation: kafka-python 2.0.2's
    /// `LegacyRecordBatchBuilder` (Debian's python3-kafka with python3-snappy, python3-lz4 and
    /// python3-xxhash), three messages `k0/v0..k2/v2` with timestamps 1000.. for magic 1. Its
    /// magic-0 LZ4 frame carries Kafka 0.8's broken header checksum (`lz4_encode_old_kafka`);
    /// its magic-1 LZ4 frame a correct one, with the content-size flag set.
    const KAFKA_PYTHON_SETS: [(i8, Compression, &str); 8] = [
        (0, Compression::None, "0000000000000000000000128697724c0000000000026b3000000002763000000000000000010000001257e7496e0000000000026b31000000027631000000000000000200000012ff0602490000000000026b32000000027632"),
        (0, Compression::Gzip, "0000000000000000000000508f685a880001ffffffff000000421f8b0800e867066b02ff63608003a1b6e9453e601653b601882c3380ca308264c39f7be641650dc1b28650592690ec7f36264fa8ac1158d60800a74288715a000000"),
        (0, Compression::Snappy, "00000000000000000000006ca3de90a00002ffffffff0000005e82534e415050590000000001000000010000004a5a0000190110128697724c050f1c026b3000000002760106010120010000001257e7496e010d1000026b3100011e01060101580200000012ff0602490000000000026b32000000027632"),
        (0, Compression::Lz4, "000000000000000000000067e8406a6b0003ffffffff0000005904224d1860401a4a0000001600010051128697724c0f0080026b300000000276060000020090010000001257e7496e0d004000026b3106001076060000020010021e0040ff0602490d00a000026b3200000002763200000000"),
        (1, Compression::None, "00000000000000000000001a60d6d754010000000000000003e8000000026b3000000002763000000000000000010000001a6c3035f3010000000000000003e9000000026b3100000002763100000000000000020000001a791b121a010000000000000003ea000000026b32000000027632"),
        (1, Compression::Gzip, "000000000000000000000064b7cf5bcc01010000000000000000ffffffff0000004e1f8b0800e867066b02ff63608003a9846bd74318a11ce617408229db0044961940054192523906a69fe1aa5e82551982551942059940aa2aa585a4e0aa5e8155198155190100d779524572000000"),
        (1, Compression::Snappy, "00000000000000000000007f9609535d01020000000000000000ffffffff0000006982534e41505059000000000100000001000000557200001901141a60d6d754010d101c03e8000000026b300106007601060101011d101a6c3035f3010901010403e90120046b31010600760106010120020000001a791b121a152630ea000000026b32000000027632"),
        (1, Compression::Lz4, "00000000000000000000008415e820c501030000000000000000ffffffff0000006e04224d1868407200000000000000ce5700000016000100631a60d6d7540110008003e8000000026b30060010760600000200001d00501a6c3035f309000002002003e92000206b3106001076060000020095020000001a791b121a260010ea2000806b3200000002763200000000"),
    ];

    fn unhex(s: &str) -> Vec<u8> {
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    #[test]
    fn reads_what_kafka_python_writes() {
        for (magic, codec, hex) in KAFKA_PYTHON_SETS {
            let set = unhex(hex);
            let up = up_convert(&set, LIMITS).unwrap_or_else(|e| panic!("magic {magic} {codec:?}: {e}"));
            assert_eq!((up.source_magic, up.compression, up.record_count), (magic, codec, 3));
            for (i, (offset, timestamp, key, value)) in records_of(&up.batch).into_iter().enumerate() {
                assert_eq!(offset, i as i64);
                assert_eq!(timestamp, if magic == 0 { NO_TIMESTAMP } else { 1000 + i as i64 });
                assert_eq!(key.unwrap(), format!("k{i}").into_bytes());
                assert_eq!(value.unwrap(), format!("v{i}").into_bytes());
            }
            // Our plain sets are byte for byte kafka-python's.
            if codec == Compression::None {
                let owned: Vec<_> = (0..3)
                    .map(|i| {
                        (
                            if magic == 0 { 0 } else { 1000 + i },
                            format!("k{i}").into_bytes(),
                            format!("v{i}").into_bytes(),
                        )
                    })
                    .collect();
                assert_eq!(build_message_set(magic, codec, 0, &new_messages(&owned)).unwrap(), set);
                // And so is the down-conversion of the up-converted batch.
                assert_eq!(down_convert(&up.batch, magic, 0, usize::MAX, true, 1 << 20).unwrap().bytes, set);
            }
        }
        // Magic-0 LZ4 from kafka-python does carry the broken checksum (so the repair matters).
        let set = unhex(KAFKA_PYTHON_SETS[3].2);
        let wrapper = parse_message(&set, 0).unwrap();
        let frame = wrapper.value.unwrap();
        assert!(codec::decompress(Compression::Lz4, frame, 1 << 20).is_err());
        // And our magic-0 LZ4 writer writes what kafka-python writes there.
        let mut ours = codec::compress(Compression::Lz4, b"x").unwrap();
        broken_lz4_header_checksum(&mut ours);
        let len = lz4_descriptor_len(frame).unwrap();
        assert_eq!(frame[4 + len], (xxh32(&frame[..4 + len], 0) >> 8) as u8);
    }

    proptest! {
        /// Random bytes and mutated valid sets: any outcome but a panic.
        #[test]
        fn up_convert_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = up_convert(&bytes, LIMITS);
        }

        #[test]
        fn mutated_sets_never_panic(
            magic in 0i8..2,
            codec in 0usize..4,
            edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
            cut in any::<u16>(),
        ) {
            let owned = messages(4, 7);
            let mut set = build_message_set(magic, CODECS[codec], 0, &new_messages(&owned)).unwrap();
            for (pos, value) in edits {
                let len = set.len();
                set[pos as usize % len] = value;
            }
            let _ = up_convert(&set, LIMITS);
            let cut = cut as usize % (set.len() + 1);
            let _ = up_convert(&set[..cut], LIMITS);
        }

        #[test]
        fn down_convert_never_panics_on_damaged_logs(
            codec in 0usize..4,
            edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
        ) {
            let (mut log, _) = log_batches(CODECS[codec]);
            for (pos, value) in edits {
                let len = log.len();
                log[pos as usize % len] = value;
            }
            let _ = down_convert(&log, MAGIC_V1, 10, 1 << 16, true, 1 << 16);
        }
    }
}
