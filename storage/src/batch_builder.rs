//! `RecordBatchBuilder`: records → one magic-2 batch, with a chosen codec and a correct CRC.
//!
//! For the broker's own writes that are not a producer's bytes (control batches with
//! transaction markers, batches the log cleaner rewrites) and for tests. It follows what Kafka's
//! `MemoryRecordsBuilder` writes: `baseTimestamp` is the first record's timestamp,
//! `maxTimestamp` the largest (or the log-append time), `lastOffsetDelta` the last record's
//! offset delta, and records are encoded uncompressed first, then the whole section is
//! compressed at [`RecordBatchBuilder::build`].

use thiserror::Error;

use crate::codec;
use crate::record_batch::{
    Compression, ATTRIBUTES_AT, BATCH_HEADER_BYTES, CRC_AT, LOG_OVERHEAD, MAGIC_V2, NO_PRODUCER_EPOCH,
    NO_PRODUCER_ID, NO_SEQUENCE,
};
use crate::records::{Header, Record};
use crate::varint::{put_varint, put_varlong};

const TIMESTAMP_TYPE_BIT: i16 = 0x08;
const TRANSACTIONAL_BIT: i16 = 0x10;
const CONTROL_BIT: i16 = 0x20;

/// Why a batch could not be built. These are caller mistakes, not corrupt input.
#[derive(Debug, Error)]
pub enum BuildError {
    #[error("a batch needs at least one record")]
    Empty,
    #[error("offset {offset} does not follow the previous offset {previous} of the batch")]
    OffsetOutOfOrder { offset: i64, previous: i64 },
    #[error("offset {offset} is too far from the batch's base offset {base_offset}")]
    OffsetOutOfRange { offset: i64, base_offset: i64 },
    #[error("a key, value or header is longer than i32::MAX bytes")]
    FieldTooLong,
    #[error("the batch would be larger than i32::MAX bytes")]
    BatchTooLarge,
    #[error("compression failed: {0}")]
    Compression(#[from] std::io::Error),
}

/// Builds one batch. Set the batch-level fields first, then append records in offset order.
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    base_offset: i64,
    compression: Compression,
    partition_leader_epoch: i32,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    transactional: bool,
    control: bool,
    log_append_time: Option<i64>,
    /// Uncompressed records section so far.
    records: Vec<u8>,
    count: i32,
    last_offset: Option<i64>,
    base_timestamp: i64,
    max_timestamp: i64,
    /// Kafka's `overrideLastOffset`: the cleaner keeps a rebuilt batch's original last offset
    /// (and so its last sequence) with the max timestamp an emptied batch keeps.
    kept_last: Option<(i64, i64)>,
}

impl RecordBatchBuilder {
    /// A non-transactional, non-idempotent batch starting at `base_offset`, leader epoch 0.
    pub fn new(base_offset: i64, compression: Compression) -> Self {
        RecordBatchBuilder {
            base_offset,
            compression,
            partition_leader_epoch: 0,
            producer_id: NO_PRODUCER_ID,
            producer_epoch: NO_PRODUCER_EPOCH,
            base_sequence: NO_SEQUENCE,
            transactional: false,
            control: false,
            log_append_time: None,
            records: Vec::new(),
            count: 0,
            last_offset: None,
            base_timestamp: -1,
            max_timestamp: -1,
            kept_last: None,
        }
    }

    /// Keeps `last_offset` as the batch's last offset whatever records it ends up holding
    /// (the log cleaner's rebuilt batches: the producer's last sequence must not shrink). With
    /// no record at all the batch is Kafka's empty batch — header only, no compression, no
    /// base timestamp, `max_timestamp` as given — which a cleaner keeps when it is an
    /// idempotent producer's last batch.
    pub fn keep_last_offset(mut self, last_offset: i64, max_timestamp: i64) -> Self {
        self.kept_last = Some((last_offset, max_timestamp));
        self
    }

    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Idempotent producer fields: id, epoch and the sequence of the first record.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    /// Marks a control batch (its records are markers such as [`crate::records::EndTxnMarker`]).
    pub fn control(mut self, control: bool) -> Self {
        self.control = control;
        self
    }

    /// `LogAppendTime` batch: sets the timestamp-type bit and `maxTimestamp` to `now_ms`.
    pub fn log_append_time(mut self, now_ms: i64) -> Self {
        self.log_append_time = Some(now_ms);
        self
    }

    /// Offset the next [`RecordBatchBuilder::push`] will use.
    pub fn next_offset(&self) -> i64 {
        self.last_offset.map_or(self.base_offset, |o| o.saturating_add(1))
    }

    pub fn record_count(&self) -> i32 {
        self.count
    }

    /// Appends a record at the next offset.
    pub fn push(
        &mut self,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
    ) -> Result<(), BuildError> {
        self.append_at(self.next_offset(), timestamp, key, value, headers)
    }

    /// Appends `record` at its own offset (gaps are allowed, as in compacted batches); its
    /// `sequence` is ignored, sequences follow from the batch's base sequence.
    pub fn append(&mut self, record: &Record<'_>) -> Result<(), BuildError> {
        self.append_at(record.offset, record.timestamp, record.key, record.value, &record.headers)
    }

    fn append_at(
        &mut self,
        offset: i64,
        timestamp: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header<'_>],
    ) -> Result<(), BuildError> {
        if let Some(previous) = self.last_offset {
            if offset <= previous {
                return Err(BuildError::OffsetOutOfOrder { offset, previous });
            }
        }
        let offset_delta = offset
            .checked_sub(self.base_offset)
            .and_then(|d| i32::try_from(d).ok())
            .filter(|d| *d >= 0)
            .ok_or(BuildError::OffsetOutOfRange { offset, base_offset: self.base_offset })?;
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }

        let mut body = Vec::with_capacity(
            16 + key.map_or(0, <[u8]>::len) + value.map_or(0, <[u8]>::len) + 8 * headers.len(),
        );
        body.push(0); // attributes: unused
        put_varlong(&mut body, timestamp.wrapping_sub(self.base_timestamp));
        put_varint(&mut body, offset_delta);
        put_nullable(&mut body, key)?;
        put_nullable(&mut body, value)?;
        put_varint(&mut body, i32::try_from(headers.len()).map_err(|_| BuildError::FieldTooLong)?);
        for h in headers {
            put_nullable(&mut body, Some(h.key))?;
            put_nullable(&mut body, h.value)?;
        }
        put_varint(&mut self.records, i32::try_from(body.len()).map_err(|_| BuildError::FieldTooLong)?);
        self.records.extend_from_slice(&body);

        self.count += 1;
        self.last_offset = Some(offset);
        self.max_timestamp = if self.count == 1 { timestamp } else { self.max_timestamp.max(timestamp) };
        Ok(())
    }

    /// The finished batch: header, (compressed) records, CRC-32C over `attributes..end`.
    pub fn build(self) -> Result<Vec<u8>, BuildError> {
        let (last_offset, compression, max_timestamp) = match (self.last_offset, self.kept_last) {
            (Some(last), None) => (last, self.compression, self.max_timestamp),
            (Some(last), Some((kept, _))) if kept >= last => (kept, self.compression, self.max_timestamp),
            (Some(last), Some((kept, _))) => {
                return Err(BuildError::OffsetOutOfOrder { offset: kept, previous: last })
            }
            (None, Some((kept, max_timestamp))) if kept >= self.base_offset => {
                (kept, Compression::None, max_timestamp)
            }
            (None, _) => return Err(BuildError::Empty),
        };
        if last_offset - self.base_offset > i32::MAX as i64 {
            return Err(BuildError::OffsetOutOfRange { offset: last_offset, base_offset: self.base_offset });
        }
        let records = if self.count == 0 { Vec::new() } else { codec::compress(compression, &self.records)? };
        let size = BATCH_HEADER_BYTES + records.len();
        let batch_length = i32::try_from(size - LOG_OVERHEAD).map_err(|_| BuildError::BatchTooLarge)?;

        let mut attributes = compression.id() as i16;
        if self.log_append_time.is_some() {
            attributes |= TIMESTAMP_TYPE_BIT;
        }
        if self.transactional {
            attributes |= TRANSACTIONAL_BIT;
        }
        if self.control {
            attributes |= CONTROL_BIT;
        }
        // Fits: checked above.
        let last_offset_delta = (last_offset - self.base_offset) as i32;

        let mut b = Vec::with_capacity(size);
        b.extend_from_slice(&self.base_offset.to_be_bytes());
        b.extend_from_slice(&batch_length.to_be_bytes());
        b.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        b.push(MAGIC_V2 as u8);
        b.extend_from_slice(&[0; 4]); // CRC, filled in below
        b.extend_from_slice(&attributes.to_be_bytes());
        b.extend_from_slice(&last_offset_delta.to_be_bytes());
        b.extend_from_slice(&self.base_timestamp.to_be_bytes());
        b.extend_from_slice(&self.log_append_time.unwrap_or(max_timestamp).to_be_bytes());
        b.extend_from_slice(&self.producer_id.to_be_bytes());
        b.extend_from_slice(&self.producer_epoch.to_be_bytes());
        b.extend_from_slice(&self.base_sequence.to_be_bytes());
        b.extend_from_slice(&self.count.to_be_bytes());
        debug_assert_eq!(b.len(), BATCH_HEADER_BYTES);
        b.extend_from_slice(&records);
        let crc = crate::checksum::crc32c(&b[ATTRIBUTES_AT..]);
        b[CRC_AT..CRC_AT + 4].copy_from_slice(&crc.to_be_bytes());
        Ok(b)
    }
}

fn put_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) -> Result<(), BuildError> {
    match bytes {
        None => put_varint(out, -1),
        Some(b) => {
            put_varint(out, i32::try_from(b.len()).map_err(|_| BuildError::FieldTooLong)?);
            out.extend_from_slice(b);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_batch::{RecordBatch, TimestampType};
    use crate::records::{EndTxnMarker, Records};

    const ALL: [Compression; 5] =
        [Compression::None, Compression::Gzip, Compression::Snappy, Compression::Lz4, Compression::Zstd];

    #[test]
    fn builds_valid_batches_in_every_codec() {
        for codec in ALL {
            let mut b = RecordBatchBuilder::new(10, codec).producer(7, 1, 100).partition_leader_epoch(3);
            let h = [Header { key: b"h1", value: Some(b"x") }, Header { key: b"h2", value: None }];
            b.push(1000, Some(b"k0"), Some(b"v0"), &h).unwrap();
            b.push(990, None, None, &[]).unwrap();
            b.push(1010, Some(b""), Some(b"v2"), &[]).unwrap();
            let bytes = b.build().unwrap();
            let batch = RecordBatch::validate(&bytes, 1 << 20).unwrap();
            assert_eq!(batch.compression(), codec);
            assert_eq!((batch.base_offset(), batch.last_offset(), batch.record_count()), (10, 12, 3));
            assert_eq!((batch.base_timestamp(), batch.max_timestamp()), (1000, 1010));
            assert_eq!((batch.producer_id(), batch.producer_epoch(), batch.base_sequence()), (7, 1, 100));
            assert_eq!(batch.partition_leader_epoch(), 3);
            let records = Records::decode(batch, 1 << 20).unwrap();
            let all: Vec<_> = records.iter().collect::<Result<_, _>>().unwrap();
            assert_eq!(all[0].headers, h);
            assert_eq!(all[1].timestamp, 990);
            assert_eq!((all[1].key, all[1].value), (None, None));
            assert_eq!((all[2].offset, all[2].sequence, all[2].key), (12, 102, Some(&b""[..])));
        }
    }

    #[test]
    fn gaps_are_kept_and_order_is_enforced() {
        let mut b = RecordBatchBuilder::new(0, Compression::None);
        b.push(0, None, Some(b"a"), &[]).unwrap();
        let r = Record { offset: 5, timestamp: 0, key: None, value: None, headers: vec![], sequence: -1 };
        b.append(&r).unwrap();
        assert!(matches!(b.append(&r), Err(BuildError::OffsetOutOfOrder { .. })));
        let far = Record { offset: 1 << 40, ..r.clone() };
        assert!(matches!(b.append(&far), Err(BuildError::OffsetOutOfRange { .. })));
        let bytes = b.build().unwrap();
        let batch = RecordBatch::validate(&bytes, 1 << 20).unwrap();
        assert_eq!((batch.last_offset_delta(), batch.record_count()), (5, 2));
        assert!(matches!(RecordBatchBuilder::new(0, Compression::None).build(), Err(BuildError::Empty)));
    }

    #[test]
    fn a_kept_last_offset_survives_a_rebuild_and_an_emptied_batch() {
        let r =
            Record { offset: 11, timestamp: 7, key: Some(b"k"), value: None, headers: vec![], sequence: -1 };
        let mut b = RecordBatchBuilder::new(10, Compression::Gzip).producer(5, 2, 40).keep_last_offset(14, 9);
        b.append(&r).unwrap();
        let bytes = b.build().unwrap();
        let batch = RecordBatch::validate(&bytes, 1 << 20).unwrap();
        assert_eq!((batch.last_offset(), batch.record_count(), batch.last_sequence()), (14, 1, 44));
        assert_eq!(batch.max_timestamp(), 7);

        let empty = RecordBatchBuilder::new(10, Compression::Gzip).producer(5, 2, 40).keep_last_offset(14, 9);
        let bytes = empty.build().unwrap();
        assert_eq!(bytes.len(), BATCH_HEADER_BYTES);
        let batch = RecordBatch::validate(&bytes, 1 << 20).unwrap();
        assert_eq!((batch.base_offset(), batch.last_offset(), batch.record_count()), (10, 14, 0));
        assert_eq!(
            (batch.compression(), batch.base_timestamp(), batch.max_timestamp()),
            (Compression::None, -1, 9)
        );
        assert_eq!((batch.producer_id(), batch.producer_epoch(), batch.last_sequence()), (5, 2, 44));
        assert_eq!(Records::decode(batch, 1 << 20).unwrap().iter().count(), 0);

        let mut short = RecordBatchBuilder::new(10, Compression::None).keep_last_offset(10, 0);
        short.append(&r).unwrap();
        assert!(matches!(short.build(), Err(BuildError::OffsetOutOfOrder { .. })));
    }

    #[test]
    fn control_and_log_append_time_flags() {
        let marker = EndTxnMarker { commit: true, coordinator_epoch: 4 };
        let (key, value) = marker.encode();
        let mut b = RecordBatchBuilder::new(0, Compression::None)
            .producer(9, 0, -1)
            .transactional(true)
            .control(true)
            .log_append_time(55);
        b.push(1, Some(&key), Some(&value), &[]).unwrap();
        let bytes = b.build().unwrap();
        let batch = RecordBatch::validate(&bytes, 1 << 20).unwrap();
        assert!(batch.is_control() && batch.is_transactional());
        assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
        assert_eq!(batch.max_timestamp(), 55);
        let records = Records::decode(batch, 1 << 20).unwrap();
        let r = records.iter().next().unwrap().unwrap();
        assert_eq!(EndTxnMarker::parse(&r).unwrap(), marker);
    }
}
