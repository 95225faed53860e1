//! `RecordBatch`: a zero-copy view over one Kafka record batch (magic 2).
//!
//! Layout (big-endian), as Kafka's `DefaultRecordBatch` defines it:
//!
//! ```text
//! offset  size  field
//!      0     8  baseOffset             rewritten by the broker on append
//!      8     4  batchLength            bytes after this field
//!     12     4  partitionLeaderEpoch   rewritten by the broker on append (outside the CRC)
//!     16     1  magic                  must be 2
//!     17     4  crc                    CRC-32C of bytes 21..end
//!     21     2  attributes             codec:0-2 timestampType:3 transactional:4 control:5
//!     23     4  lastOffsetDelta
//!     27     8  baseTimestamp
//!     35     8  maxTimestamp
//!     43     8  producerId
//!     51     2  producerEpoch
//!     53     4  baseSequence
//!     57     4  recordCount
//!     61     -  records                (possibly compressed)
//! ```
//!
//! Parsing never allocates and never trusts a length field further than the buffer it was
//! given: every slice is bounds-checked first. Mutation is limited to the fields Kafka lets a
//! broker rewrite (`baseOffset`, `partitionLeaderEpoch`, and `maxTimestamp` + CRC for
//! `LogAppendTime` topics).

use thiserror::Error;

/// Bytes before `batchLength` counts: `baseOffset` + `batchLength` (Kafka's `LOG_OVERHEAD`).
pub const LOG_OVERHEAD: usize = 12;
/// Size of the fixed batch header up to and including `recordCount`.
pub const BATCH_HEADER_BYTES: usize = 61;
/// The only message format this broker stores.
pub const MAGIC_V2: i8 = 2;

const BASE_OFFSET_AT: usize = 0;
const BATCH_LENGTH_AT: usize = 8;
const PARTITION_LEADER_EPOCH_AT: usize = 12;
const MAGIC_AT: usize = 16;
pub(crate) const CRC_AT: usize = 17;
pub(crate) const ATTRIBUTES_AT: usize = 21;
const LAST_OFFSET_DELTA_AT: usize = 23;
const BASE_TIMESTAMP_AT: usize = 27;
const MAX_TIMESTAMP_AT: usize = 35;
const PRODUCER_ID_AT: usize = 43;
const PRODUCER_EPOCH_AT: usize = 51;
const BASE_SEQUENCE_AT: usize = 53;
const RECORD_COUNT_AT: usize = 57;

const COMPRESSION_MASK: i16 = 0x07;
const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;
/// Set by the log cleaner when `baseTimestamp` holds the delete horizon (KIP-534).
const DELETE_HORIZON_BIT: i16 = 0x40;

/// Producer id / epoch / sequence value meaning "not idempotent" (Kafka's `NO_PRODUCER_ID` etc.).
pub const NO_PRODUCER_ID: i64 = -1;
pub const NO_PRODUCER_EPOCH: i16 = -1;
pub const NO_SEQUENCE: i32 = -1;

/// Why a batch was rejected. The broker maps `TooLarge` to `MESSAGE_TOO_LARGE` and every
/// other variant to `CORRUPT_MESSAGE` (see [`BatchError::is_too_large`]).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum BatchError {
    #[error("batch truncated: {needed} bytes needed, {available} available")]
    Truncated { needed: usize, available: usize },
    #[error("batchLength {0} is smaller than the batch header")]
    LengthTooSmall(i32),
    #[error("batch of {size_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    TooLarge { size_bytes: usize, max_bytes: usize },
    #[error("unsupported magic {0} (only magic 2 is supported)")]
    UnsupportedMagic(i8),
    #[error("CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch { stored: u32, computed: u32 },
    #[error("lastOffsetDelta {last_offset_delta} is inconsistent with record count {record_count}")]
    InconsistentRecordCount { last_offset_delta: i32, record_count: i32 },
    #[error("unknown compression codec {0}")]
    UnknownCompression(u8),
    #[error("invalid producer fields: {0}")]
    InvalidProducerFields(&'static str),
    #[error("invalid record: {0}")]
    InvalidRecord(&'static str),
    #[error("decompression failed: {0}")]
    Decompression(String),
    /// The records section decompresses (or, by its record count, would decompress) to more
    /// than the caller's limit: a decompression bomb or a batch this reader is not sized for.
    #[error("decompressed records exceed the limit of {max_bytes} bytes")]
    DecompressedTooLarge { max_bytes: usize },
}

impl BatchError {
    /// True when the batch was well-formed but over a size limit (`MESSAGE_TOO_LARGE`);
    /// false for every kind of corruption (`CORRUPT_MESSAGE`).
    pub fn is_too_large(&self) -> bool {
        matches!(self, BatchError::TooLarge { .. })
    }
}

/// Compression codec from attribute bits 0..2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    pub fn from_id(id: u8) -> Result<Self, BatchError> {
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(BatchError::UnknownCompression(other)),
        }
    }

    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The name Kafka's tools print (`compresscodec: NONE`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }
}

/// Whether a batch's timestamps were set by the producer or by the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    CreateTime,
    LogAppendTime,
}

impl TimestampType {
    pub fn name(self) -> &'static str {
        match self {
            TimestampType::CreateTime => "CreateTime",
            TimestampType::LogAppendTime => "LogAppendTime",
        }
    }
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}
fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}
fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

/// Reads only `batchLength` at the front of `buf` and returns the whole batch size in bytes
/// (`LOG_OVERHEAD + batchLength`), without checking that `buf` holds it. `None` when `buf` is
/// shorter than `LOG_OVERHEAD` or the length is below the header size.
pub fn batch_size_at(buf: &[u8]) -> Option<usize> {
    if buf.len() < LOG_OVERHEAD {
        return None;
    }
    let batch_length = be_i32(buf, BATCH_LENGTH_AT);
    let size = LOG_OVERHEAD as i64 + batch_length as i64;
    if size < BATCH_HEADER_BYTES as i64 {
        return None;
    }
    usize::try_from(size).ok()
}

/// A view over exactly one batch. Construct with [`RecordBatch::parse`], which checks the
/// header's shape (lengths, magic, codec, record count) but not the CRC; call
/// [`RecordBatch::validate`] for the full check a produce request or recovery needs.
#[derive(Clone, Copy)]
pub struct RecordBatch<'a> {
    bytes: &'a [u8],
}

impl<'a> RecordBatch<'a> {
    /// Parses the batch at the front of `buf`. `buf` may hold more bytes after it (use
    /// [`RecordBatch::size_bytes`] to step over it). Checks: enough bytes, `batchLength` at
    /// least the header, batch no larger than `max_batch_bytes`, magic 2, known codec,
    /// `lastOffsetDelta` and `recordCount` consistent, producer fields well-formed.
    pub fn parse(buf: &'a [u8], max_batch_bytes: usize) -> Result<Self, BatchError> {
        if buf.len() < LOG_OVERHEAD {
            return Err(BatchError::Truncated { needed: LOG_OVERHEAD, available: buf.len() });
        }
        let batch_length = be_i32(buf, BATCH_LENGTH_AT);
        let size_bytes = LOG_OVERHEAD as i64 + batch_length as i64;
        if size_bytes < BATCH_HEADER_BYTES as i64 {
            return Err(BatchError::LengthTooSmall(batch_length));
        }
        let size_bytes = size_bytes as usize;
        if size_bytes > max_batch_bytes {
            return Err(BatchError::TooLarge { size_bytes, max_bytes: max_batch_bytes });
        }
        if buf.len() < size_bytes {
            return Err(BatchError::Truncated { needed: size_bytes, available: buf.len() });
        }
        let batch = RecordBatch { bytes: &buf[..size_bytes] };
        batch.check_header()?;
        Ok(batch)
    }

    /// A view for tools that show damaged batches (`dump-log`): checks only that `buf` holds the
    /// fixed header and the whole `batchLength`, nothing about the contents (magic, codec,
    /// counts, CRC). Every accessor stays in bounds; nothing else may be assumed.
    pub fn parse_lenient(buf: &'a [u8]) -> Result<Self, BatchError> {
        if buf.len() < LOG_OVERHEAD {
            return Err(BatchError::Truncated { needed: LOG_OVERHEAD, available: buf.len() });
        }
        let batch_length = be_i32(buf, BATCH_LENGTH_AT);
        let size_bytes = LOG_OVERHEAD as i64 + batch_length as i64;
        if size_bytes < BATCH_HEADER_BYTES as i64 {
            return Err(BatchError::LengthTooSmall(batch_length));
        }
        let size_bytes = size_bytes as usize;
        if buf.len() < size_bytes {
            return Err(BatchError::Truncated { needed: size_bytes, available: buf.len() });
        }
        Ok(RecordBatch { bytes: &buf[..size_bytes] })
    }

    fn check_header(&self) -> Result<(), BatchError> {
        let magic = self.magic();
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        Compression::from_id((self.attributes() & COMPRESSION_MASK) as u8)?;
        let record_count = self.record_count();
        let last_offset_delta = self.last_offset_delta();
        // Kafka: "Inconsistent batch offset range and record count". An empty batch (count 0)
        // is only legal as the result of compaction, where lastOffsetDelta is kept.
        if record_count < 0 || last_offset_delta < 0 || record_count > last_offset_delta.saturating_add(1) {
            return Err(BatchError::InconsistentRecordCount { last_offset_delta, record_count });
        }
        // Every record takes at least 7 bytes uncompressed; a count beyond what the bytes
        // could hold is corrupt (compressed batches are checked when decompressed).
        if self.compression_unchecked() == Compression::None
            && record_count as usize > (self.bytes.len() - BATCH_HEADER_BYTES) / 7 + 1
        {
            return Err(BatchError::InconsistentRecordCount { last_offset_delta, record_count });
        }
        let producer_id = self.producer_id();
        if producer_id < NO_PRODUCER_ID {
            return Err(BatchError::InvalidProducerFields("negative producerId other than -1"));
        }
        if self.is_transactional() && producer_id == NO_PRODUCER_ID {
            return Err(BatchError::InvalidProducerFields("transactional batch without producerId"));
        }
        if producer_id >= 0 && self.base_sequence() < 0 && !self.is_control() {
            return Err(BatchError::InvalidProducerFields("idempotent batch without baseSequence"));
        }
        Ok(())
    }

    /// The full check for bytes from the network or the disk: [`RecordBatch::parse`] plus the
    /// CRC-32C over `attributes..end`.
    pub fn validate(buf: &'a [u8], max_batch_bytes: usize) -> Result<Self, BatchError> {
        let batch = Self::parse(buf, max_batch_bytes)?;
        batch.check_crc()?;
        Ok(batch)
    }

    /// What a producer's batch must also satisfy: one record per offset in its range (only
    /// compaction leaves fewer records than offsets).
    pub fn has_one_record_per_offset(&self) -> bool {
        self.record_count() as i64 == self.last_offset_delta() as i64 + 1
    }

    /// What a producer's uncompressed batch must also satisfy: its records section holds
    /// exactly `recordCount` length-prefixed records, no bytes before or after. Walks only the
    /// length varints; compressed sections are left to the reader that decompresses them (the
    /// produce path never decompresses, DESIGN.md invariant 6).
    pub fn check_record_framing(&self) -> Result<(), BatchError> {
        if self.compression_unchecked() != Compression::None {
            return Ok(());
        }
        // Bounded: `check_header` capped the count by the section's length.
        let mut reader = crate::varint::Reader::new(self.records_bytes());
        for _ in 0..self.record_count() {
            if reader.remaining() == 0 {
                return Err(BatchError::InvalidRecord("fewer records than the batch's recordCount"));
            }
            let length = reader.varint()?;
            if length < 0 {
                return Err(BatchError::InvalidRecord("negative record length"));
            }
            reader.bytes(length as usize)?;
        }
        if reader.remaining() != 0 {
            return Err(BatchError::InvalidRecord("bytes remain after the last record"));
        }
        Ok(())
    }

    pub fn check_crc(&self) -> Result<(), BatchError> {
        let stored = self.crc();
        let computed = self.compute_crc();
        if stored != computed {
            return Err(BatchError::CrcMismatch { stored, computed });
        }
        Ok(())
    }

    pub fn compute_crc(&self) -> u32 {
        crate::checksum::crc32c(&self.bytes[ATTRIBUTES_AT..])
    }

    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    pub fn size_bytes(&self) -> usize {
        self.bytes.len()
    }
    pub fn base_offset(&self) -> i64 {
        be_i64(self.bytes, BASE_OFFSET_AT)
    }
    /// Wraps like Java's `long` instead of panicking: `baseOffset` is outside the CRC, so a
    /// damaged one may be anything.
    pub fn last_offset(&self) -> i64 {
        self.base_offset().wrapping_add(self.last_offset_delta() as i64)
    }
    /// Offset after this batch: where the next batch starts.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().wrapping_add(1)
    }
    pub fn batch_length(&self) -> i32 {
        be_i32(self.bytes, BATCH_LENGTH_AT)
    }
    pub fn partition_leader_epoch(&self) -> i32 {
        be_i32(self.bytes, PARTITION_LEADER_EPOCH_AT)
    }
    pub fn magic(&self) -> i8 {
        self.bytes[MAGIC_AT] as i8
    }
    pub fn crc(&self) -> u32 {
        be_i32(self.bytes, CRC_AT) as u32
    }
    pub fn attributes(&self) -> i16 {
        be_i16(self.bytes, ATTRIBUTES_AT)
    }
    fn compression_unchecked(&self) -> Compression {
        Compression::from_id((self.attributes() & COMPRESSION_MASK) as u8).unwrap_or(Compression::None)
    }
    /// The codec; always known because [`RecordBatch::parse`] rejected unknown ones.
    pub fn compression(&self) -> Compression {
        self.compression_unchecked()
    }
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & TIMESTAMP_TYPE_BIT != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
    pub fn is_transactional(&self) -> bool {
        self.attributes() & TRANSACTIONAL_BIT != 0
    }
    pub fn is_control(&self) -> bool {
        self.attributes() & CONTROL_BIT != 0
    }
    /// The delete horizon the log cleaner stored in `baseTimestamp`, if its attribute bit is set.
    pub fn delete_horizon_ms(&self) -> Option<i64> {
        (self.attributes() & DELETE_HORIZON_BIT != 0).then(|| self.base_timestamp())
    }
    pub fn last_offset_delta(&self) -> i32 {
        be_i32(self.bytes, LAST_OFFSET_DELTA_AT)
    }
    pub fn base_timestamp(&self) -> i64 {
        be_i64(self.bytes, BASE_TIMESTAMP_AT)
    }
    pub fn max_timestamp(&self) -> i64 {
        be_i64(self.bytes, MAX_TIMESTAMP_AT)
    }
    pub fn producer_id(&self) -> i64 {
        be_i64(self.bytes, PRODUCER_ID_AT)
    }
    pub fn producer_epoch(&self) -> i16 {
        be_i16(self.bytes, PRODUCER_EPOCH_AT)
    }
    pub fn base_sequence(&self) -> i32 {
        be_i32(self.bytes, BASE_SEQUENCE_AT)
    }
    /// Sequence of the last record, wrapping at `i32::MAX` as Kafka's does.
    pub fn last_sequence(&self) -> i32 {
        let base = self.base_sequence();
        if base == NO_SEQUENCE {
            return NO_SEQUENCE;
        }
        let last = base as i64 + self.last_offset_delta() as i64;
        if last > i32::MAX as i64 {
            (last - i32::MAX as i64 - 1) as i32
        } else {
            last as i32
        }
    }
    pub fn record_count(&self) -> i32 {
        be_i32(self.bytes, RECORD_COUNT_AT)
    }
    /// The records section (compressed when [`RecordBatch::compression`] is not `None`).
    pub fn records_bytes(&self) -> &'a [u8] {
        &self.bytes[BATCH_HEADER_BYTES..]
    }
}

impl std::fmt::Debug for RecordBatch<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordBatch")
            .field("base_offset", &self.base_offset())
            .field("last_offset_delta", &self.last_offset_delta())
            .field("size_bytes", &self.size_bytes())
            .field("record_count", &self.record_count())
            .field("compression", &self.compression())
            .field("producer_id", &self.producer_id())
            .field("base_sequence", &self.base_sequence())
            .finish()
    }
}

/// The broker's in-place rewrites of a batch it is about to append. Only fields outside the
/// CRC are touched, except by [`set_log_append_time`], which recomputes it.
pub mod rewrite {
    use super::*;

    /// Sets `baseOffset`. Outside the CRC, so the batch stays valid.
    pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
        batch[BASE_OFFSET_AT..BASE_OFFSET_AT + 8].copy_from_slice(&base_offset.to_be_bytes());
    }

    /// Sets `partitionLeaderEpoch`. Outside the CRC, so the batch stays valid.
    pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
        batch[PARTITION_LEADER_EPOCH_AT..PARTITION_LEADER_EPOCH_AT + 4].copy_from_slice(&epoch.to_be_bytes());
    }

    /// For `message.timestamp.type=LogAppendTime`: sets the timestamp-type bit and
    /// `maxTimestamp` to the broker's clock, then recomputes the CRC (both are inside it).
    pub fn set_log_append_time(batch: &mut [u8], now_ms: i64) {
        let (header, body) = batch.split_at_mut(BATCH_HEADER_BYTES);
        set_log_append_time_in_header(header, body, now_ms);
    }

    /// [`set_log_append_time`] on a copy of a batch's header (its first
    /// [`BATCH_HEADER_BYTES`]), with `body` the rest of the batch, left as it is.
    pub fn set_log_append_time_in_header(header: &mut [u8], body: &[u8], now_ms: i64) {
        assert_eq!(header.len(), BATCH_HEADER_BYTES, "a whole batch header");
        let attributes = be_i16(header, ATTRIBUTES_AT) | TIMESTAMP_TYPE_BIT;
        header[ATTRIBUTES_AT..ATTRIBUTES_AT + 2].copy_from_slice(&attributes.to_be_bytes());
        header[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&now_ms.to_be_bytes());
        let crc = crate::checksum::crc32c_of_parts(&[&header[ATTRIBUTES_AT..], body]);
        header[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
    }
}

/// Iterates over the batches of a record set (a produce request's partition data, or a
/// segment's bytes). Stops with an error at the first batch that fails
/// [`RecordBatch::parse`]; the caller decides whether that is corruption (a produce request)
/// or a torn tail (recovery).
pub struct BatchIter<'a> {
    buf: &'a [u8],
    position: usize,
    max_batch_bytes: usize,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    pub fn new(buf: &'a [u8], max_batch_bytes: usize) -> Self {
        BatchIter { buf, position: 0, max_batch_bytes, failed: false }
    }
    /// Byte position of the next batch within the record set.
    pub fn position(&self) -> usize {
        self.position
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(usize, RecordBatch<'a>), BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.position >= self.buf.len() {
            return None;
        }
        match RecordBatch::parse(&self.buf[self.position..], self.max_batch_bytes) {
            Ok(batch) => {
                let at = self.position;
                self.position += batch.size_bytes();
                Some(Ok((at, batch)))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// The fixed-header fields a partition log needs to walk a segment batch by batch without
/// reading whole batches (fetch boundaries, index lookups, the tail of a segment on open).
/// [`BatchHeader::parse`] needs only the first [`BATCH_HEADER_BYTES`] bytes, so it checks the
/// header's shape, never the CRC: use it on bytes this broker already validated and wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// The whole batch: `LOG_OVERHEAD + batchLength`.
    pub size_bytes: usize,
    pub last_offset_delta: i32,
    pub max_timestamp: i64,
}

impl BatchHeader {
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < BATCH_HEADER_BYTES {
            return Err(BatchError::Truncated { needed: BATCH_HEADER_BYTES, available: buf.len() });
        }
        let batch_length = be_i32(buf, BATCH_LENGTH_AT);
        let size_bytes = LOG_OVERHEAD as i64 + batch_length as i64;
        if size_bytes < BATCH_HEADER_BYTES as i64 {
            return Err(BatchError::LengthTooSmall(batch_length));
        }
        let magic = buf[MAGIC_AT] as i8;
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        let last_offset_delta = be_i32(buf, LAST_OFFSET_DELTA_AT);
        if last_offset_delta < 0 {
            let record_count = be_i32(buf, RECORD_COUNT_AT);
            return Err(BatchError::InconsistentRecordCount { last_offset_delta, record_count });
        }
        Ok(BatchHeader {
            base_offset: be_i64(buf, BASE_OFFSET_AT),
            size_bytes: size_bytes as usize,
            last_offset_delta,
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_AT),
        })
    }

    pub fn last_offset(&self) -> i64 {
        self.base_offset.saturating_add(self.last_offset_delta as i64)
    }

    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Builds a syntactically valid uncompressed batch of `count` empty-key records; the
    /// record bodies are real varint records so iteration works too.
    pub fn build_batch(base_offset: i64, count: i32, value_len: usize) -> Vec<u8> {
        let mut records = Vec::new();
        for i in 0..count {
            let mut body = Vec::new();
            body.push(0u8); // attributes
            put_varint(&mut body, 0); // timestampDelta
            put_varint(&mut body, i as i64); // offsetDelta
            put_varint(&mut body, -1); // key null
            put_varint(&mut body, value_len as i64);
            body.extend(std::iter::repeat_n(b'v', value_len));
            put_varint(&mut body, 0); // headers
            put_varint(&mut records, body.len() as i64);
            records.extend_from_slice(&body);
        }
        let mut b = vec![0u8; BATCH_HEADER_BYTES];
        b[0..8].copy_from_slice(&base_offset.to_be_bytes());
        let batch_length = (BATCH_HEADER_BYTES - LOG_OVERHEAD + records.len()) as i32;
        b[8..12].copy_from_slice(&batch_length.to_be_bytes());
        b[MAGIC_AT] = 2;
        b[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&(count - 1).to_be_bytes());
        b[BASE_TIMESTAMP_AT..BASE_TIMESTAMP_AT + 8].copy_from_slice(&1_700_000_000_000i64.to_be_bytes());
        b[MAX_TIMESTAMP_AT..MAX_TIMESTAMP_AT + 8].copy_from_slice(&1_700_000_000_000i64.to_be_bytes());
        b[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&(-1i64).to_be_bytes());
        b[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&(-1i16).to_be_bytes());
        b[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&(-1i32).to_be_bytes());
        b[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
        b.extend_from_slice(&records);
        let crc = crate::checksum::crc32c(&b[ATTRIBUTES_AT..]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        b
    }

    /// An idempotent batch: producer id/epoch and base sequence set, CRC recomputed.
    pub fn build_idempotent_batch(
        base_offset: i64,
        producer_id: i64,
        epoch: i16,
        base_seq: i32,
        count: i32,
    ) -> Vec<u8> {
        let mut b = build_batch(base_offset, count, 4);
        b[PRODUCER_ID_AT..PRODUCER_ID_AT + 8].copy_from_slice(&producer_id.to_be_bytes());
        b[PRODUCER_EPOCH_AT..PRODUCER_EPOCH_AT + 2].copy_from_slice(&epoch.to_be_bytes());
        b[BASE_SEQUENCE_AT..BASE_SEQUENCE_AT + 4].copy_from_slice(&base_seq.to_be_bytes());
        let crc = crate::checksum::crc32c(&b[ATTRIBUTES_AT..]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        b
    }

    fn put_varint(out: &mut Vec<u8>, v: i64) {
        let mut z = ((v << 1) ^ (v >> 63)) as u64;
        loop {
            if z < 0x80 {
                out.push(z as u8);
                return;
            }
            out.push((z as u8 & 0x7f) | 0x80);
            z >>= 7;
        }
    }

    #[test]
    fn parses_and_validates_a_built_batch() {
        let b = build_batch(42, 3, 10);
        let batch = RecordBatch::validate(&b, 1 << 20).expect("valid");
        assert_eq!(batch.base_offset(), 42);
        assert_eq!(batch.last_offset(), 44);
        assert_eq!(batch.record_count(), 3);
        assert_eq!(batch.compression(), Compression::None);
        assert_eq!(batch.size_bytes(), b.len());
    }

    #[test]
    fn every_prefix_is_truncated_not_a_panic() {
        let b = build_batch(0, 2, 5);
        for cut in 0..b.len() {
            assert!(RecordBatch::validate(&b[..cut], 1 << 20).is_err(), "cut at {cut}");
        }
    }

    #[test]
    fn a_flipped_bit_after_the_crc_is_caught() {
        let b = build_batch(0, 2, 5);
        for at in ATTRIBUTES_AT..b.len() {
            let mut c = b.clone();
            c[at] ^= 0x01;
            assert!(RecordBatch::validate(&c, 1 << 20).is_err(), "flip at {at}");
        }
    }

    #[test]
    fn rewrites_outside_the_crc_keep_it_valid() {
        let mut b = build_batch(0, 2, 5);
        rewrite::set_base_offset(&mut b, 1234);
        rewrite::set_partition_leader_epoch(&mut b, 7);
        let batch = RecordBatch::validate(&b, 1 << 20).expect("still valid");
        assert_eq!(batch.base_offset(), 1234);
        assert_eq!(batch.partition_leader_epoch(), 7);
        rewrite::set_log_append_time(&mut b, 99);
        let batch = RecordBatch::validate(&b, 1 << 20).expect("crc recomputed");
        assert_eq!(batch.max_timestamp(), 99);
        assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
    }

    #[test]
    fn oversized_batches_are_too_large_not_corrupt() {
        let b = build_batch(0, 10, 100);
        let err = RecordBatch::validate(&b, 100).unwrap_err();
        assert!(err.is_too_large(), "{err:?}");
    }

    #[test]
    fn length_fields_never_drive_reads_past_the_buffer() {
        let mut b = build_batch(0, 1, 5);
        b[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(matches!(RecordBatch::parse(&b, usize::MAX), Err(BatchError::Truncated { .. })));
        b[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(matches!(RecordBatch::parse(&b, usize::MAX), Err(BatchError::LengthTooSmall(-5))));
    }

    #[test]
    fn inconsistent_counts_are_rejected() {
        let mut b = build_batch(0, 3, 5);
        b[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&4i32.to_be_bytes());
        assert!(matches!(
            RecordBatch::parse(&b, usize::MAX),
            Err(BatchError::InconsistentRecordCount { .. })
        ));
    }

    #[test]
    fn record_framing_must_match_the_record_count() {
        let b = build_batch(0, 3, 5);
        RecordBatch::parse(&b, usize::MAX).unwrap().check_record_framing().expect("well framed");
        // Count and lastOffsetDelta agree with each other but not with the records held.
        for count in [1i32, 2, 4] {
            let mut c = b.clone();
            c[LAST_OFFSET_DELTA_AT..LAST_OFFSET_DELTA_AT + 4].copy_from_slice(&(count - 1).to_be_bytes());
            c[RECORD_COUNT_AT..RECORD_COUNT_AT + 4].copy_from_slice(&count.to_be_bytes());
            let batch = RecordBatch::parse(&c, usize::MAX).expect("the header alone is consistent");
            assert!(
                matches!(batch.check_record_framing(), Err(BatchError::InvalidRecord(_))),
                "count {count}"
            );
        }
    }

    #[test]
    fn iterates_a_record_set() {
        let mut set = build_batch(0, 2, 5);
        set.extend(build_batch(2, 3, 5));
        let offsets: Vec<i64> = BatchIter::new(&set, 1 << 20).map(|r| r.unwrap().1.base_offset()).collect();
        assert_eq!(offsets, vec![0, 2]);
    }
}
