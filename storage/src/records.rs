//! Record-level reading of a magic-2 batch, for tools (`dump-log`) and the log cleaner — never
//! for the produce or fetch path, which stay at batch level (DESIGN.md invariant 6).
//!
//! Each record in the (decompressed) records section is:
//!
//! ```text
//! length          varint   bytes after this field
//! attributes      int8     unused
//! timestampDelta  varlong  from the batch's baseTimestamp
//! offsetDelta     varint   from the batch's baseOffset
//! key             varint length (-1 = null), bytes
//! value           varint length (-1 = null), bytes
//! headers         varint count, then per header: key (varint length, bytes; never null),
//!                 value (varint length, -1 = null, bytes)
//! ```
//!
//! Everything here treats the bytes as hostile, even batches that passed
//! [`RecordBatch::validate`] (a CRC only proves the producer wrote them): lengths are checked
//! against the bytes that remain before slicing, a record's fields must add up to exactly its
//! length, the number of records must equal the header's `recordCount`, no bytes may follow the
//! last record, and decompression is bounded by the caller's limit. Errors are
//! [`BatchError`]s, mostly [`BatchError::InvalidRecord`].

use std::borrow::Cow;

use crate::codec;
use crate::record_batch::{BatchError, Compression, RecordBatch, TimestampType, NO_SEQUENCE};
use crate::varint::Reader;

/// The smallest possible record: length, attributes, timestampDelta, offsetDelta, key length,
/// value length, header count — one byte each.
pub const MIN_RECORD_BYTES: usize = 7;
/// The smallest possible header: key length 0 and value length -1.
const MIN_HEADER_BYTES: usize = 2;

/// One header of a record. Kafka header keys are strings; they are kept as bytes here because
/// nothing guarantees they are UTF-8 (use [`String::from_utf8_lossy`] to show one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'b> {
    pub key: &'b [u8],
    pub value: Option<&'b [u8]>,
}

/// One record with its absolute offset, timestamp and sequence worked out from the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'b> {
    pub offset: i64,
    /// `baseTimestamp + timestampDelta`, or the batch's `maxTimestamp` for `LogAppendTime`
    /// batches (as Kafka's `DefaultRecord` reports it).
    pub timestamp: i64,
    pub key: Option<&'b [u8]>,
    pub value: Option<&'b [u8]>,
    pub headers: Vec<Header<'b>>,
    /// `baseSequence + offsetDelta` (wrapping at `i32::MAX`), or -1 when the batch has none.
    pub sequence: i32,
}

/// The records section of one batch, decompressed when the batch is compressed.
pub struct Records<'a> {
    batch: RecordBatch<'a>,
    data: Cow<'a, [u8]>,
}

impl<'a> Records<'a> {
    /// Prepares `batch` for iteration. Compressed sections are decompressed into at most
    /// `max_uncompressed_bytes` (pick a few times `max.message.bytes`); uncompressed ones are
    /// borrowed, never copied. Works on any view, including [`RecordBatch::parse_lenient`]
    /// ones: the codec and record count are checked here again.
    pub fn decode(batch: RecordBatch<'a>, max_uncompressed_bytes: usize) -> Result<Self, BatchError> {
        let codec = Compression::from_id((batch.attributes() & 0x07) as u8)?;
        let count = batch.record_count();
        if count < 0 {
            return Err(BatchError::InvalidRecord("negative record count"));
        }
        let data = match codec {
            Compression::None => Cow::Borrowed(batch.records_bytes()),
            codec => {
                // A count that cannot fit in the limit would only fail after inflating it all.
                if count as usize > max_uncompressed_bytes / MIN_RECORD_BYTES {
                    return Err(BatchError::DecompressedTooLarge { max_bytes: max_uncompressed_bytes });
                }
                Cow::Owned(codec::decompress(codec, batch.records_bytes(), max_uncompressed_bytes)?)
            }
        };
        Ok(Records { batch, data })
    }

    /// The uncompressed records section.
    pub fn as_bytes(&self) -> &[u8] {
        &self.data
    }

    /// Iterates the records in order. After the first error the iterator ends.
    pub fn iter(&self) -> RecordIter<'_> {
        let b = &self.batch;
        let log_append_time = (b.timestamp_type() == TimestampType::LogAppendTime).then(|| b.max_timestamp());
        RecordIter {
            rest: &self.data,
            remaining: b.record_count().max(0),
            base_offset: b.base_offset(),
            base_timestamp: b.base_timestamp(),
            log_append_time,
            base_sequence: b.base_sequence(),
            last_offset_delta: b.last_offset_delta(),
            done: false,
        }
    }
}

/// Iterator over the records of a [`Records`] section.
pub struct RecordIter<'b> {
    rest: &'b [u8],
    remaining: i32,
    base_offset: i64,
    base_timestamp: i64,
    log_append_time: Option<i64>,
    base_sequence: i32,
    last_offset_delta: i32,
    done: bool,
}

impl<'b> Iterator for RecordIter<'b> {
    type Item = Result<Record<'b>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.remaining == 0 {
            self.done = true;
            return (!self.rest.is_empty())
                .then_some(Err(BatchError::InvalidRecord("bytes remain after the last record")));
        }
        if self.rest.is_empty() {
            self.done = true;
            return Some(Err(BatchError::InvalidRecord("fewer records than the batch's recordCount")));
        }
        match self.parse_one() {
            Ok(record) => {
                self.remaining -= 1;
                Some(Ok(record))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}

impl<'b> RecordIter<'b> {
    fn parse_one(&mut self) -> Result<Record<'b>, BatchError> {
        let mut outer = Reader::new(self.rest);
        let length = outer.varint()?;
        if length < 0 {
            return Err(BatchError::InvalidRecord("negative record length"));
        }
        let body = outer.bytes(length as usize)?;
        self.rest = &self.rest[outer.position()..];

        let mut r = Reader::new(body);
        let _attributes = r.u8()?;
        let timestamp_delta = r.varlong()?;
        let offset_delta = r.varint()?;
        if offset_delta < 0 || offset_delta > self.last_offset_delta {
            return Err(BatchError::InvalidRecord("offsetDelta outside the batch's offset range"));
        }
        let key = r.nullable_bytes()?;
        let value = r.nullable_bytes()?;
        let header_count = r.varint()?;
        if header_count < 0 {
            return Err(BatchError::InvalidRecord("negative header count"));
        }
        // Checked before the loop so a huge count fails at once instead of header by header.
        if header_count as usize > r.remaining() / MIN_HEADER_BYTES {
            return Err(BatchError::InvalidRecord("header count exceeds the record's length"));
        }
        let mut headers = Vec::with_capacity(header_count as usize);
        for _ in 0..header_count {
            let key = r.nullable_bytes()?.ok_or(BatchError::InvalidRecord("null header key"))?;
            let value = r.nullable_bytes()?;
            headers.push(Header { key, value });
        }
        if r.remaining() != 0 {
            return Err(BatchError::InvalidRecord("record length does not match its fields"));
        }

        let timestamp = self.log_append_time.unwrap_or(self.base_timestamp.wrapping_add(timestamp_delta));
        let sequence = if self.base_sequence < 0 {
            NO_SEQUENCE
        } else {
            increment_sequence(self.base_sequence, offset_delta)
        };
        Ok(Record {
            offset: self.base_offset.wrapping_add(offset_delta as i64),
            timestamp,
            key,
            value,
            headers,
            sequence,
        })
    }
}

/// Kafka's `DefaultRecordBatch.incrementSequence`: sequences wrap from `i32::MAX` to 0.
fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

/// The record types a control batch (attribute bit 5) may hold, from the record key
/// (`version: int16, type: int16`). Ids are Kafka's `ControlRecordType`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlRecordType {
    Abort,
    Commit,
    LeaderChange,
    SnapshotHeader,
    SnapshotFooter,
    Unknown,
}

impl ControlRecordType {
    pub fn from_id(id: i16) -> Self {
        match id {
            0 => ControlRecordType::Abort,
            1 => ControlRecordType::Commit,
            2 => ControlRecordType::LeaderChange,
            3 => ControlRecordType::SnapshotHeader,
            4 => ControlRecordType::SnapshotFooter,
            _ => ControlRecordType::Unknown,
        }
    }

    /// The Java enum constant's name, as Kafka's tools print it.
    pub fn name(self) -> &'static str {
        match self {
            ControlRecordType::Abort => "ABORT",
            ControlRecordType::Commit => "COMMIT",
            ControlRecordType::LeaderChange => "LEADER_CHANGE",
            ControlRecordType::SnapshotHeader => "SNAPSHOT_HEADER",
            ControlRecordType::SnapshotFooter => "SNAPSHOT_FOOTER",
            ControlRecordType::Unknown => "UNKNOWN",
        }
    }
}

const CONTROL_KEY_BYTES: usize = 4;
const END_TXN_MARKER_VALUE_BYTES: usize = 6;

/// Reads the type id from a control record's key. Like Kafka, a key shorter than 4 bytes or
/// with a negative version is invalid; newer versions are read as version 0.
pub fn control_type_id(key: Option<&[u8]>) -> Result<i16, BatchError> {
    let key = key.ok_or(BatchError::InvalidRecord("control record without a key"))?;
    if key.len() < CONTROL_KEY_BYTES {
        return Err(BatchError::InvalidRecord("control record key shorter than 4 bytes"));
    }
    if i16::from_be_bytes([key[0], key[1]]) < 0 {
        return Err(BatchError::InvalidRecord("negative control record key version"));
    }
    Ok(i16::from_be_bytes([key[2], key[3]]))
}

/// A transaction marker (`ABORT` or `COMMIT` control record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnMarker {
    pub commit: bool,
    pub coordinator_epoch: i32,
}

impl EndTxnMarker {
    /// Reads a marker from a control record; other control record types are an error.
    pub fn parse(record: &Record<'_>) -> Result<Self, BatchError> {
        let commit = match ControlRecordType::from_id(control_type_id(record.key)?) {
            ControlRecordType::Commit => true,
            ControlRecordType::Abort => false,
            _ => return Err(BatchError::InvalidRecord("control record is not a transaction marker")),
        };
        let value = record.value.ok_or(BatchError::InvalidRecord("transaction marker without a value"))?;
        if value.len() < END_TXN_MARKER_VALUE_BYTES {
            return Err(BatchError::InvalidRecord("transaction marker value shorter than 6 bytes"));
        }
        if i16::from_be_bytes([value[0], value[1]]) < 0 {
            return Err(BatchError::InvalidRecord("negative transaction marker version"));
        }
        let coordinator_epoch = i32::from_be_bytes([value[2], value[3], value[4], value[5]]);
        Ok(EndTxnMarker { commit, coordinator_epoch })
    }

    /// The record key and value Kafka writes for this marker (version 0 of both).
    pub fn encode(&self) -> ([u8; CONTROL_KEY_BYTES], [u8; END_TXN_MARKER_VALUE_BYTES]) {
        let type_id: i16 = if self.commit { 1 } else { 0 };
        let mut key = [0u8; CONTROL_KEY_BYTES];
        key[2..4].copy_from_slice(&type_id.to_be_bytes());
        let mut value = [0u8; END_TXN_MARKER_VALUE_BYTES];
        value[2..6].copy_from_slice(&self.coordinator_epoch.to_be_bytes());
        (key, value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch_builder::RecordBatchBuilder;
    use crate::record_batch::tests::build_batch;
    use crate::varint::{put_varint, put_varlong};

    const MAX: usize = 1 << 20;

    #[test]
    fn reads_the_hand_built_batch() {
        let b = build_batch(100, 3, 4);
        let batch = RecordBatch::validate(&b, MAX).unwrap();
        let records = Records::decode(batch, MAX).unwrap();
        let all: Vec<_> = records.iter().collect::<Result<_, _>>().unwrap();
        assert_eq!(all.len(), 3);
        for (i, r) in all.iter().enumerate() {
            assert_eq!(r.offset, 100 + i as i64);
            assert_eq!(r.timestamp, 1_700_000_000_000);
            assert_eq!(r.key, None);
            assert_eq!(r.value, Some(&b"vvvv"[..]));
            assert!(r.headers.is_empty());
            assert_eq!(r.sequence, -1);
        }
    }

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(increment_sequence(5, 3), 8);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 1, 3), 1);
    }

    #[test]
    fn log_append_time_replaces_record_timestamps() {
        let mut b = RecordBatchBuilder::new(0, Compression::None);
        b.push(5, None, Some(b"x"), &[]).unwrap();
        let mut bytes = b.build().unwrap();
        crate::record_batch::rewrite::set_log_append_time(&mut bytes, 777);
        let batch = RecordBatch::validate(&bytes, MAX).unwrap();
        let records = Records::decode(batch, MAX).unwrap();
        assert_eq!(records.iter().next().unwrap().unwrap().timestamp, 777);
    }

    /// A batch whose records section is `records` verbatim, with the given count.
    fn with_records(records: &[u8], count: i32, last_offset_delta: i32) -> Vec<u8> {
        let mut b = build_batch(0, 1, 0);
        b.truncate(crate::record_batch::BATCH_HEADER_BYTES);
        b.extend_from_slice(records);
        let len = (b.len() - 12) as i32;
        b[8..12].copy_from_slice(&len.to_be_bytes());
        b[23..27].copy_from_slice(&last_offset_delta.to_be_bytes());
        b[57..61].copy_from_slice(&count.to_be_bytes());
        b
    }

    fn record(fields: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
        let mut body = vec![0u8];
        fields(&mut body);
        let mut out = Vec::new();
        put_varint(&mut out, body.len() as i32);
        out.extend_from_slice(&body);
        out
    }

    fn first_error(batch_bytes: &[u8]) -> BatchError {
        let batch = RecordBatch::parse_lenient(batch_bytes).unwrap();
        let records = Records::decode(batch, MAX).unwrap();
        let err = records.iter().find_map(|r| r.err());
        err.expect("an error")
    }

    #[test]
    fn malformed_records_are_typed_errors() {
        let good = |b: &mut Vec<u8>| {
            put_varlong(b, 0);
            put_varint(b, 0);
            put_varint(b, -1);
            put_varint(b, 1);
            b.push(b'v');
            put_varint(b, 0);
        };
        let ok = record(good);
        // Count says 2, only 1 record.
        assert!(matches!(first_error(&with_records(&ok, 2, 1)), BatchError::InvalidRecord(_)));
        // Count says 1, 2 records follow.
        let two = [ok.clone(), ok.clone()].concat();
        assert!(matches!(first_error(&with_records(&two, 1, 1)), BatchError::InvalidRecord(_)));
        // Key length -2.
        let bad_key = record(|b| {
            put_varlong(b, 0);
            put_varint(b, 0);
            put_varint(b, -2);
        });
        assert!(matches!(first_error(&with_records(&bad_key, 1, 0)), BatchError::InvalidRecord(_)));
        // Value length past the record end.
        let long_value = record(|b| {
            put_varlong(b, 0);
            put_varint(b, 0);
            put_varint(b, -1);
            put_varint(b, 1000);
        });
        assert!(matches!(first_error(&with_records(&long_value, 1, 0)), BatchError::InvalidRecord(_)));
        // A header count in the millions.
        let many_headers = record(|b| {
            put_varlong(b, 0);
            put_varint(b, 0);
            put_varint(b, -1);
            put_varint(b, -1);
            put_varint(b, 5_000_000);
        });
        assert!(matches!(first_error(&with_records(&many_headers, 1, 0)), BatchError::InvalidRecord(_)));
        // Offset delta beyond lastOffsetDelta.
        let far = record(|b| {
            put_varlong(b, 0);
            put_varint(b, 9);
            put_varint(b, -1);
            put_varint(b, -1);
            put_varint(b, 0);
        });
        assert!(matches!(first_error(&with_records(&far, 1, 0)), BatchError::InvalidRecord(_)));
        // Record length larger than its fields.
        let mut padded = record(|b| {
            good(b);
            b.push(0);
        });
        assert!(matches!(first_error(&with_records(&padded, 1, 0)), BatchError::InvalidRecord(_)));
        // Record length larger than the section.
        padded.truncate(padded.len() - 2);
        assert!(matches!(first_error(&with_records(&padded, 1, 0)), BatchError::InvalidRecord(_)));
    }

    #[test]
    fn huge_counts_fail_before_decompressing() {
        let mut builder = RecordBatchBuilder::new(0, Compression::Gzip);
        builder.push(0, None, None, &[]).unwrap();
        let mut b = builder.build().unwrap();
        b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let batch = RecordBatch::parse_lenient(&b).unwrap();
        assert!(matches!(Records::decode(batch, MAX), Err(BatchError::DecompressedTooLarge { .. })));
        b[57..61].copy_from_slice(&(-3i32).to_be_bytes());
        let batch = RecordBatch::parse_lenient(&b).unwrap();
        assert!(matches!(Records::decode(batch, MAX), Err(BatchError::InvalidRecord(_))));
    }

    #[test]
    fn end_txn_markers_round_trip() {
        for commit in [true, false] {
            let marker = EndTxnMarker { commit, coordinator_epoch: 42 };
            let (key, value) = marker.encode();
            let record = Record {
                offset: 0,
                timestamp: 0,
                key: Some(&key),
                value: Some(&value),
                headers: vec![],
                sequence: -1,
            };
            assert_eq!(EndTxnMarker::parse(&record).unwrap(), marker);
            assert_eq!(control_type_id(Some(&key)).unwrap(), if commit { 1 } else { 0 });
        }
        assert!(control_type_id(Some(&[0, 0, 1])).is_err());
        assert!(control_type_id(None).is_err());
        assert_eq!(ControlRecordType::from_id(9).name(), "UNKNOWN");
    }
}
