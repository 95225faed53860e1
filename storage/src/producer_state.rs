//! `ProducerStateManager`: per-partition state of idempotent producers, and its snapshot file.
//!
//! For every producer id the partition remembers its epoch and the metadata of its last
//! [`BATCHES_PER_PRODUCER_MAX`] batches (Kafka keeps five: a producer has at most five requests
//! in flight, so a retry is always one of them). Before a batch is appended [`check`] says:
//! append it, answer it as a duplicate with the offsets it got the first time, or refuse it
//! (stale epoch: `INVALID_PRODUCER_EPOCH`; a sequence gap: `OUT_OF_ORDER_SEQUENCE_NUMBER`).
//! After the append [`record`] remembers it. The rules are Kafka's (`ProducerAppendInfo`).
//!
//! Snapshots use Kafka's `<20-digit offset>.snapshot` format (version 1): a producer's epoch,
//! last sequence and last offset as of the snapshot's offset; on open the owner loads the
//! newest snapshot and [`replay`]s the log after it, which rebuilds the recent batches too.
//!
//! [`check`]: ProducerStateManager::check
//! [`record`]: ProducerStateManager::record
//! [`replay`]: ProducerStateManager::replay

use std::collections::{HashMap, VecDeque};

use crate::record_batch::{RecordBatch, NO_PRODUCER_EPOCH, NO_PRODUCER_ID, NO_SEQUENCE};

/// Batches remembered per producer, as Kafka (`ProducerStateEntry.NUM_BATCHES_TO_RETAIN`).
pub const BATCHES_PER_PRODUCER_MAX: usize = 5;
/// Producers remembered per partition; the least recently used is forgotten beyond it, so a
/// client cycling through producer ids cannot grow the broker's memory without bound.
pub const PRODUCERS_PER_PARTITION_MAX: usize = 100_000;
/// A snapshot larger than this is refused before it is parsed (about 2.7 M producers).
pub const SNAPSHOT_BYTES_MAX: usize = 128 * 1024 * 1024;

const SNAPSHOT_VERSION: i16 = 1;
const SNAPSHOT_HEADER_BYTES: usize = 2 + 4 + 4; // version, crc, entry count
const SNAPSHOT_ENTRY_BYTES: usize = 8 + 2 + 4 + 8 + 4 + 8 + 4 + 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchMetadata {
    pub first_seq: i32,
    pub last_seq: i32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerStateEntry {
    pub producer_id: i64,
    pub epoch: i16,
    /// Oldest first; at most [`BATCHES_PER_PRODUCER_MAX`].
    pub batches: VecDeque<BatchMetadata>,
    pub coordinator_epoch: i32,
    /// First offset of the producer's open transaction, if any (transactions issue).
    pub current_txn_first_offset: Option<i64>,
    /// Used to forget the least recently used producer.
    last_used_offset: i64,
}

impl ProducerStateEntry {
    fn last_seq(&self) -> i32 {
        self.batches.back().map_or(NO_SEQUENCE, |b| b.last_seq)
    }
}

/// What to do with a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProducerCheck {
    /// Not idempotent, or the next batch in sequence: append it.
    Append,
    /// A retry of a batch already in the log: answer with its original offsets, append nothing.
    Duplicate { first_offset: i64, last_offset: i64, max_timestamp: i64 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProducerStateError {
    #[error("producer {producer_id}: epoch {request_epoch} is older than the current epoch {current_epoch}")]
    InvalidProducerEpoch { producer_id: i64, request_epoch: i16, current_epoch: i16 },
    #[error(
        "producer {producer_id}: out of order sequence number {first_seq} (epoch {epoch}), expected {expected_seq}"
    )]
    OutOfOrderSequence { producer_id: i64, epoch: i16, first_seq: i32, expected_seq: i32 },
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot of {0} bytes is larger than the limit")]
    TooLarge(usize),
    #[error("snapshot truncated")]
    Truncated,
    #[error("snapshot version {0} is not supported")]
    UnsupportedVersion(i16),
    #[error("snapshot CRC mismatch")]
    CrcMismatch,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ProducerStateManager {
    producers: HashMap<i64, ProducerStateEntry>,
}

impl ProducerStateManager {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.producers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.producers.is_empty()
    }

    pub fn entry(&self, producer_id: i64) -> Option<&ProducerStateEntry> {
        self.producers.get(&producer_id)
    }

    /// `(producer id, last offset of its last batch)` for every producer with a batch: what
    /// the log cleaner must not drop whole (Kafka's `lastRecordsOfActiveProducers`).
    pub fn last_batch_offsets(&self) -> Vec<(i64, i64)> {
        self.producers
            .values()
            .filter_map(|e| e.batches.back().map(|b| (e.producer_id, b.last_offset)))
            .collect()
    }

    /// Decides what to do with `batch` before it is appended.
    pub fn check(&self, batch: &RecordBatch<'_>) -> Result<ProducerCheck, ProducerStateError> {
        let producer_id = batch.producer_id();
        if producer_id == NO_PRODUCER_ID {
            return Ok(ProducerCheck::Append);
        }
        let epoch = batch.producer_epoch();
        let first_seq = batch.base_sequence();
        let Some(entry) = self.producers.get(&producer_id) else {
            // Unknown producer (new, or its state was removed by retention): Kafka accepts
            // any sequence, because it cannot tell a gap from forgotten history.
            return Ok(ProducerCheck::Append);
        };
        if epoch < entry.epoch {
            return Err(ProducerStateError::InvalidProducerEpoch {
                producer_id,
                request_epoch: epoch,
                current_epoch: entry.epoch,
            });
        }
        if epoch == entry.epoch {
            let last_seq = batch.last_sequence();
            if let Some(b) = entry.batches.iter().find(|b| b.first_seq == first_seq && b.last_seq == last_seq)
            {
                return Ok(ProducerCheck::Duplicate {
                    first_offset: b.first_offset,
                    last_offset: b.last_offset,
                    max_timestamp: b.max_timestamp,
                });
            }
        }
        if batch.is_control() {
            return Ok(ProducerCheck::Append);
        }
        if epoch > entry.epoch {
            // A bumped epoch must restart its sequence at 0.
            if first_seq != 0 && entry.epoch != NO_PRODUCER_EPOCH {
                return Err(ProducerStateError::OutOfOrderSequence {
                    producer_id,
                    epoch,
                    first_seq,
                    expected_seq: 0,
                });
            }
            return Ok(ProducerCheck::Append);
        }
        let last_seq = entry.last_seq();
        if last_seq != NO_SEQUENCE && !in_sequence(last_seq, first_seq) {
            return Err(ProducerStateError::OutOfOrderSequence {
                producer_id,
                epoch,
                first_seq,
                expected_seq: next_seq(last_seq),
            });
        }
        Ok(ProducerCheck::Append)
    }

    /// Remembers a batch that was just appended at `base_offset` (the offset the log
    /// assigned; the request's own bytes still carry the producer's placeholder).
    pub fn record(&mut self, batch: &RecordBatch<'_>, base_offset: i64) {
        let last_offset = base_offset + batch.last_offset_delta() as i64;
        let producer_id = batch.producer_id();
        if producer_id == NO_PRODUCER_ID {
            return;
        }
        if !self.producers.contains_key(&producer_id) && self.producers.len() >= PRODUCERS_PER_PARTITION_MAX {
            self.forget_least_recently_used();
        }
        let entry = self.producers.entry(producer_id).or_insert_with(|| ProducerStateEntry {
            producer_id,
            epoch: batch.producer_epoch(),
            batches: VecDeque::with_capacity(BATCHES_PER_PRODUCER_MAX),
            coordinator_epoch: -1,
            current_txn_first_offset: None,
            last_used_offset: last_offset,
        });
        if batch.producer_epoch() != entry.epoch {
            entry.epoch = batch.producer_epoch();
            entry.batches.clear();
        }
        entry.last_used_offset = last_offset;
        if batch.is_control() || batch.base_sequence() == NO_SEQUENCE {
            return;
        }
        if entry.batches.len() == BATCHES_PER_PRODUCER_MAX {
            entry.batches.pop_front();
        }
        entry.batches.push_back(BatchMetadata {
            first_seq: batch.base_sequence(),
            last_seq: batch.last_sequence(),
            first_offset: base_offset,
            last_offset,
            max_timestamp: batch.max_timestamp(),
        });
    }

    /// Rebuilds state from a batch read back from the log during open. Same as [`record`]:
    /// the log is the truth, so nothing is checked.
    ///
    /// [`record`]: ProducerStateManager::record
    pub fn replay(&mut self, batch: &RecordBatch<'_>) {
        self.record(batch, batch.base_offset())
    }

    /// Drops what the state knows about offsets at or after `offset` (after a log
    /// truncation); producers left with no batch keep their epoch.
    pub fn truncate_to(&mut self, offset: i64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.last_offset < offset);
        }
    }

    fn forget_least_recently_used(&mut self) {
        if let Some((&oldest, _)) = self.producers.iter().min_by_key(|(_, e)| e.last_used_offset) {
            self.producers.remove(&oldest);
        }
    }

    /// Kafka's snapshot format v1: version i16, crc u32 (CRC-32C of everything after it),
    /// entry count i32, then per producer: id i64, epoch i16, last sequence i32, last offset
    /// i64, offset delta i32, timestamp i64, coordinator epoch i32, txn first offset i64.
    pub fn encode_snapshot(&self) -> Vec<u8> {
        let mut entries: Vec<&ProducerStateEntry> = self.producers.values().collect();
        entries.sort_by_key(|e| e.producer_id);
        let mut out = Vec::with_capacity(SNAPSHOT_HEADER_BYTES + entries.len() * SNAPSHOT_ENTRY_BYTES);
        out.extend_from_slice(&SNAPSHOT_VERSION.to_be_bytes());
        out.extend_from_slice(&[0u8; 4]);
        out.extend_from_slice(&(entries.len() as i32).to_be_bytes());
        for e in entries {
            let last = e.batches.back();
            out.extend_from_slice(&e.producer_id.to_be_bytes());
            out.extend_from_slice(&e.epoch.to_be_bytes());
            out.extend_from_slice(&last.map_or(NO_SEQUENCE, |b| b.last_seq).to_be_bytes());
            out.extend_from_slice(&last.map_or(-1i64, |b| b.last_offset).to_be_bytes());
            let offset_delta = last.map_or(0, |b| (b.last_offset - b.first_offset) as i32);
            out.extend_from_slice(&offset_delta.to_be_bytes());
            out.extend_from_slice(&last.map_or(-1i64, |b| b.max_timestamp).to_be_bytes());
            out.extend_from_slice(&e.coordinator_epoch.to_be_bytes());
            out.extend_from_slice(&e.current_txn_first_offset.unwrap_or(-1).to_be_bytes());
        }
        let crc = crate::checksum::crc32c(&out[6..]);
        out[2..6].copy_from_slice(&crc.to_be_bytes());
        out
    }

    pub fn decode_snapshot(bytes: &[u8]) -> Result<Self, SnapshotError> {
        if bytes.len() > SNAPSHOT_BYTES_MAX {
            return Err(SnapshotError::TooLarge(bytes.len()));
        }
        let mut r = Reader { bytes, at: 0 };
        let version = r.i16()?;
        if version != SNAPSHOT_VERSION {
            return Err(SnapshotError::UnsupportedVersion(version));
        }
        let crc = r.i32()? as u32;
        if crate::checksum::crc32c(&bytes[6..]) != crc {
            return Err(SnapshotError::CrcMismatch);
        }
        let count = r.i32()?;
        let count = usize::try_from(count).map_err(|_| SnapshotError::Truncated)?;
        if bytes.len() != SNAPSHOT_HEADER_BYTES + count.saturating_mul(SNAPSHOT_ENTRY_BYTES) {
            return Err(SnapshotError::Truncated);
        }
        let mut producers = HashMap::with_capacity(count);
        for _ in 0..count {
            let producer_id = r.i64()?;
            let epoch = r.i16()?;
            let last_seq = r.i32()?;
            let last_offset = r.i64()?;
            let offset_delta = r.i32()?;
            let max_timestamp = r.i64()?;
            let coordinator_epoch = r.i32()?;
            let txn_first_offset = r.i64()?;
            let mut batches = VecDeque::with_capacity(BATCHES_PER_PRODUCER_MAX);
            if last_seq != NO_SEQUENCE && last_offset >= 0 {
                let first_seq = last_seq.wrapping_sub(offset_delta).max(0);
                let first_offset = last_offset - offset_delta as i64;
                batches.push_back(BatchMetadata {
                    first_seq,
                    last_seq,
                    first_offset,
                    last_offset,
                    max_timestamp,
                });
            }
            producers.insert(
                producer_id,
                ProducerStateEntry {
                    producer_id,
                    epoch,
                    batches,
                    coordinator_epoch,
                    current_txn_first_offset: (txn_first_offset >= 0).then_some(txn_first_offset),
                    last_used_offset: last_offset,
                },
            );
        }
        Ok(ProducerStateManager { producers })
    }
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

fn in_sequence(last_seq: i32, next: i32) -> bool {
    next == next_seq(last_seq)
}

/// The file name of a snapshot taken at `offset`: `<20-digit offset>.snapshot`.
pub fn snapshot_file_name(offset: i64) -> String {
    format!("{offset:020}.snapshot")
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take<const N: usize>(&mut self) -> Result<[u8; N], SnapshotError> {
        let end = self.at.checked_add(N).ok_or(SnapshotError::Truncated)?;
        let slice = self.bytes.get(self.at..end).ok_or(SnapshotError::Truncated)?;
        self.at = end;
        let mut a = [0u8; N];
        a.copy_from_slice(slice);
        Ok(a)
    }
    fn i16(&mut self) -> Result<i16, SnapshotError> {
        self.take::<2>().map(i16::from_be_bytes)
    }
    fn i32(&mut self) -> Result<i32, SnapshotError> {
        self.take::<4>().map(i32::from_be_bytes)
    }
    fn i64(&mut self) -> Result<i64, SnapshotError> {
        self.take::<8>().map(i64::from_be_bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_batch::tests::build_idempotent_batch;

    fn batch(bytes: &[u8]) -> RecordBatch<'_> {
        RecordBatch::validate(bytes, usize::MAX).unwrap()
    }

    #[test]
    fn in_sequence_batches_append_and_retries_are_duplicates() {
        let mut state = ProducerStateManager::new();
        let b0 = build_idempotent_batch(0, 7, 0, 0, 3);
        assert_eq!(state.check(&batch(&b0)), Ok(ProducerCheck::Append));
        state.record(&batch(&b0), 0);
        let b1 = build_idempotent_batch(3, 7, 0, 3, 2);
        assert_eq!(state.check(&batch(&b1)), Ok(ProducerCheck::Append));
        state.record(&batch(&b1), 3);
        // A retry of the first batch (any base offset in the request) is a duplicate.
        let retry = build_idempotent_batch(0, 7, 0, 0, 3);
        assert_eq!(
            state.check(&batch(&retry)),
            Ok(ProducerCheck::Duplicate {
                first_offset: 0,
                last_offset: 2,
                max_timestamp: 1_700_000_000_000
            })
        );
    }

    #[test]
    fn gaps_and_stale_epochs_are_refused() {
        let mut state = ProducerStateManager::new();
        state.replay(&batch(&build_idempotent_batch(0, 7, 3, 0, 1)));
        let gap = build_idempotent_batch(1, 7, 3, 2, 1);
        assert!(matches!(
            state.check(&batch(&gap)),
            Err(ProducerStateError::OutOfOrderSequence { expected_seq: 1, .. })
        ));
        let stale = build_idempotent_batch(1, 7, 2, 1, 1);
        assert!(matches!(state.check(&batch(&stale)), Err(ProducerStateError::InvalidProducerEpoch { .. })));
        let bumped_nonzero = build_idempotent_batch(1, 7, 4, 5, 1);
        assert!(state.check(&batch(&bumped_nonzero)).is_err());
        let bumped = build_idempotent_batch(1, 7, 4, 0, 1);
        assert_eq!(state.check(&batch(&bumped)), Ok(ProducerCheck::Append));
    }

    #[test]
    fn only_the_last_five_batches_are_remembered() {
        let mut state = ProducerStateManager::new();
        for i in 0..7 {
            state.replay(&batch(&build_idempotent_batch(i, 9, 0, i as i32, 1)));
        }
        assert_eq!(state.entry(9).unwrap().batches.len(), BATCHES_PER_PRODUCER_MAX);
        // The oldest two are forgotten, so they are neither duplicates nor in sequence.
        assert!(state.check(&batch(&build_idempotent_batch(0, 9, 0, 0, 1))).is_err());
        assert!(matches!(
            state.check(&batch(&build_idempotent_batch(0, 9, 0, 6, 1))),
            Ok(ProducerCheck::Duplicate { first_offset: 6, .. })
        ));
    }

    #[test]
    fn snapshot_round_trips_and_rejects_damage() {
        let mut state = ProducerStateManager::new();
        state.replay(&batch(&build_idempotent_batch(10, 1, 0, 0, 4)));
        state.replay(&batch(&build_idempotent_batch(20, 2, 3, 7, 1)));
        let bytes = state.encode_snapshot();
        let loaded = ProducerStateManager::decode_snapshot(&bytes).unwrap();
        // After a reload the next in-sequence batch is accepted and a gap is refused.
        assert_eq!(loaded.check(&batch(&build_idempotent_batch(30, 1, 0, 4, 1))), Ok(ProducerCheck::Append));
        assert!(loaded.check(&batch(&build_idempotent_batch(30, 2, 3, 9, 1))).is_err());
        for cut in 0..bytes.len() {
            assert!(ProducerStateManager::decode_snapshot(&bytes[..cut]).is_err(), "cut {cut}");
        }
        let mut flipped = bytes.clone();
        flipped[12] ^= 1;
        assert_eq!(ProducerStateManager::decode_snapshot(&flipped), Err(SnapshotError::CrcMismatch));
        assert_eq!(snapshot_file_name(42), "00000000000000000042.snapshot");
    }
}
