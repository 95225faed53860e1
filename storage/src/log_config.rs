//! `LogConfig`: the topic-level settings one partition log obeys, with Kafka's defaults. Names
//! follow Kafka's topic configs (`segment.bytes` → `segment_bytes`), units are in the names.

use crate::index_entry::TIME_INDEX_ENTRY_BYTES;
use crate::log_error::{LogError, Result};
use crate::record_batch::{TimestampType, BATCH_HEADER_BYTES};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;

/// `cleanup.policy`: `delete` (retention), `compact` (the log cleaner), or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CleanupPolicy {
    pub delete: bool,
    pub compact: bool,
}

impl CleanupPolicy {
    pub const DELETE: CleanupPolicy = CleanupPolicy { delete: true, compact: false };
    pub const COMPACT: CleanupPolicy = CleanupPolicy { delete: false, compact: true };

    /// Parses Kafka's list syntax (`delete`, `compact`, `compact,delete`, `delete, compact`);
    /// `None` for anything else (an empty list included).
    pub fn parse(value: &str) -> Option<Self> {
        let mut policy = CleanupPolicy { delete: false, compact: false };
        for item in value.split(',').map(str::trim) {
            match item {
                "delete" => policy.delete = true,
                "compact" => policy.compact = true,
                _ => return None,
            }
        }
        (policy.delete || policy.compact).then_some(policy)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LogConfig {
    /// `segment.bytes`: roll when the active segment would grow past this.
    pub segment_bytes: u32,
    /// `segment.ms`: roll when the active segment's first batch is this old.
    pub segment_ms: i64,
    /// `segment.index.bytes`: capacity of each index file; a full index rolls the segment.
    pub segment_index_bytes: u32,
    /// `index.interval.bytes`: log bytes between two offset-index entries.
    pub index_interval_bytes: u32,
    /// `max.message.bytes`: the largest batch a producer or a leader may append.
    pub max_message_bytes: u32,
    /// `flush.messages`: unflushed messages that make a flush due (`i64::MAX` = never).
    pub flush_messages: i64,
    /// `flush.ms`: age of the oldest unflushed append that makes a flush due (`i64::MAX` = never).
    pub flush_ms: i64,
    /// `retention.ms`: delete segments whose newest timestamp is older (-1 = keep forever).
    pub retention_ms: i64,
    /// `retention.bytes`: delete the oldest segments while the log is larger (-1 = no limit).
    pub retention_bytes: i64,
    /// `message.timestamp.type`.
    pub message_timestamp_type: TimestampType,
    /// `file.delete.delay.ms`: how long a deleted segment lingers as `*.deleted`.
    pub file_delete_delay_ms: i64,
    /// `cleanup.policy`: retention applies with `delete`, the log cleaner with `compact`.
    pub cleanup_policy: CleanupPolicy,
    /// `delete.retention.ms`: how long the cleaner keeps a tombstone (see `log_cleaner`).
    pub delete_retention_ms: i64,
    /// `min.cleanable.dirty.ratio`: clean when dirty bytes / cleanable bytes reach this.
    pub min_cleanable_dirty_ratio: f64,
    /// `min.compaction.lag.ms`: segments with records younger than this are not cleaned.
    pub min_compaction_lag_ms: i64,
    /// `max.compaction.lag.ms`: a dirty segment older than this is cleaned whatever the ratio.
    pub max_compaction_lag_ms: i64,
    /// Not a Kafka setting: an append up to this size, with no write in flight, is written by
    /// the shard itself instead of an io_uring worker (see `log_segment`). 0 pipelines every
    /// append (tests use it to exercise that path with small batches).
    pub sync_append_bytes_max: usize,
    /// Not a Kafka setting: the active segment's blocks are reserved (`fallocate`, size kept)
    /// this many bytes ahead of its appends and released beyond its end when it is sealed
    /// (see `log_segment`). 0 reserves nothing.
    pub preallocate_step_bytes: u64,
}

// `validate` rejects a NaN ratio, so equality is an equivalence.
impl Eq for LogConfig {}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            segment_ms: 7 * DAY_MS,
            segment_index_bytes: 10 << 20,
            index_interval_bytes: 4096,
            max_message_bytes: 1_048_588,
            flush_messages: i64::MAX,
            flush_ms: i64::MAX,
            retention_ms: 7 * DAY_MS,
            retention_bytes: -1,
            message_timestamp_type: TimestampType::CreateTime,
            file_delete_delay_ms: 60_000,
            cleanup_policy: CleanupPolicy::DELETE,
            delete_retention_ms: DAY_MS,
            min_cleanable_dirty_ratio: 0.5,
            min_compaction_lag_ms: 0,
            max_compaction_lag_ms: i64::MAX,
            sync_append_bytes_max: crate::log_segment::SYNC_APPEND_BYTES_MAX,
            preallocate_step_bytes: crate::log_segment::PREALLOCATE_STEP_BYTES,
        }
    }
}

impl LogConfig {
    /// Rejects settings the log cannot honour. Positions in Kafka's index files are signed
    /// 32-bit, so a segment is at most `i32::MAX` bytes.
    pub fn validate(&self) -> Result<()> {
        let fail = |what: &str| Err(LogError::InvalidConfig(what.to_string()));
        if (self.segment_bytes as usize) < BATCH_HEADER_BYTES || self.segment_bytes > i32::MAX as u32 {
            return fail("segment_bytes must be in [61, i32::MAX]");
        }
        if self.segment_ms < 1 {
            return fail("segment_ms must be positive");
        }
        if (self.segment_index_bytes as usize) < TIME_INDEX_ENTRY_BYTES {
            return fail("segment_index_bytes must hold at least one time-index entry (12 bytes)");
        }
        if self.max_message_bytes as usize > i32::MAX as usize - BATCH_HEADER_BYTES {
            return fail("max_message_bytes must fit a signed 32-bit batch length");
        }
        if self.flush_messages < 1 || self.flush_ms < 0 {
            return fail("flush_messages must be >= 1 and flush_ms >= 0");
        }
        if self.retention_ms < -1 || self.retention_bytes < -1 {
            return fail("retention_ms and retention_bytes must be >= -1");
        }
        if self.file_delete_delay_ms < 0 {
            return fail("file_delete_delay_ms must be >= 0");
        }
        if !(0.0..=1.0).contains(&self.min_cleanable_dirty_ratio) {
            return fail("min_cleanable_dirty_ratio must be in [0, 1]");
        }
        if self.delete_retention_ms < 0 || self.min_compaction_lag_ms < 0 || self.max_compaction_lag_ms < 1 {
            return fail(
                "delete_retention_ms and min_compaction_lag_ms must be >= 0, max_compaction_lag_ms >= 1",
            );
        }
        Ok(())
    }

    /// Kafka's `LogConfig.maxSegmentMs`: a compacted log also rolls its active segment by
    /// `max.compaction.lag.ms`, since the active segment is never cleaned and the lag could
    /// not be honoured otherwise.
    pub fn max_segment_ms(&self) -> i64 {
        if self.cleanup_policy.compact && self.max_compaction_lag_ms > 0 {
            self.segment_ms.min(self.max_compaction_lag_ms)
        } else {
            self.segment_ms
        }
    }

    pub(crate) fn offset_index_max_entries(&self) -> usize {
        self.segment_index_bytes as usize / crate::index_entry::OFFSET_INDEX_ENTRY_BYTES
    }

    pub(crate) fn time_index_max_entries(&self) -> usize {
        self.segment_index_bytes as usize / TIME_INDEX_ENTRY_BYTES
    }
}
