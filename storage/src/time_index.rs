//! `TimeIndex`: one segment's `.timeindex` file — entries (timestamp `i64`, relative offset
//! `u32`), as Kafka writes them: when an offset-index entry is added and the segment's largest
//! timestamp grew since the last entry, the entry records that largest timestamp and the
//! (last) offset of the batch that first reached it. A segment that stops being appended to
//! (roll, close, recovery) gets a final entry with its largest timestamp, so the last entry of
//! a sealed segment is its largest timestamp.
//!
//! Timestamps are strictly increasing; an entry `(t, o)` means no batch before `o` has a
//! timestamp >= `t`, which is what an offsets-by-time lookup needs.

use std::path::Path;

use crate::index_entry::TimeIndexEntry;
use crate::index_file::IndexFile;
use crate::log_error::Result;

/// Kafka's `RecordBatch.NO_TIMESTAMP`: no entry is ever written with it.
pub const NO_TIMESTAMP: i64 = -1;

#[derive(Debug)]
pub struct TimeIndex {
    base_offset: i64,
    file: IndexFile<TimeIndexEntry>,
}

impl TimeIndex {
    pub(crate) async fn open(
        path: &Path,
        base_offset: i64,
        max_entries: usize,
        max_load_entries: usize,
    ) -> Result<Self> {
        Ok(TimeIndex { base_offset, file: IndexFile::open(path, max_entries, max_load_entries).await? })
    }

    /// Why the loaded entries cannot belong to a segment whose offsets end before
    /// `next_offset`, if they cannot.
    pub(crate) fn inconsistency(&self, next_offset: i64) -> Option<&'static str> {
        if !self.file.loaded_whole() {
            return Some("not a whole number of entries, or larger than its log allows");
        }
        let entries = self.file.entries();
        if entries
            .windows(2)
            .any(|w| w[0].timestamp >= w[1].timestamp || w[0].relative_offset > w[1].relative_offset)
        {
            return Some("entries not increasing");
        }
        let past_end = |e: &TimeIndexEntry| self.base_offset + e.relative_offset as i64 >= next_offset;
        if entries.iter().any(|e| e.timestamp <= NO_TIMESTAMP || past_end(e)) {
            return Some("entry points past the log or has no timestamp");
        }
        None
    }

    pub fn len(&self) -> usize {
        self.file.entries().len()
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
    pub fn is_full(&self) -> bool {
        self.file.is_full()
    }

    /// `(timestamp, offset)` of the greatest entry with timestamp <= `target_timestamp`.
    pub fn lookup(&self, target_timestamp: i64) -> Option<(i64, i64)> {
        let entries = self.file.entries();
        let after = entries.partition_point(|e| e.timestamp <= target_timestamp);
        let entry = entries.get(after.checked_sub(1)?)?;
        Some((entry.timestamp, self.base_offset + entry.relative_offset as i64))
    }

    pub fn last_entry(&self) -> Option<(i64, i64)> {
        self.file.entries().last().map(|e| (e.timestamp, self.base_offset + e.relative_offset as i64))
    }

    /// Appends `(timestamp, offset)` when `timestamp` is larger than the last entry's (and the
    /// index has room, unless `seal` — the one entry Kafka lets exceed a full index).
    pub(crate) fn maybe_append(&mut self, timestamp: i64, offset: i64, seal: bool) {
        let last_timestamp = self.last_entry().map_or(NO_TIMESTAMP, |(t, _)| t);
        if timestamp <= last_timestamp || (self.is_full() && !seal) {
            return;
        }
        let relative = offset - self.base_offset;
        assert!(
            (0..=i32::MAX as i64).contains(&relative),
            "offset {offset} not relative to {}",
            self.base_offset
        );
        if let Some((_, last_offset)) = self.last_entry() {
            assert!(offset >= last_offset, "time index offsets must not decrease");
        }
        self.file.push(TimeIndexEntry { timestamp, relative_offset: relative as u32 });
    }

    /// Drops the entries whose offset is >= `offset` (the log is cut there).
    pub(crate) async fn truncate_to_offset(&mut self, offset: i64) -> Result<()> {
        let keep =
            self.file.entries().partition_point(|e| self.base_offset + (e.relative_offset as i64) < offset);
        self.file.truncate_entries(keep).await
    }

    pub(crate) async fn clear(&mut self) -> Result<()> {
        self.file.clear().await
    }
    pub(crate) fn pending_entries(&self) -> usize {
        self.file.pending_entries()
    }
    pub(crate) async fn write_pending(&mut self) -> Result<()> {
        self.file.write_pending().await
    }
    pub(crate) async fn sync(&self) -> Result<()> {
        self.file.sync().await
    }
    pub(crate) async fn close(self) -> Result<()> {
        self.file.close().await
    }
    pub(crate) fn path(&self) -> &Path {
        self.file.path()
    }
    pub(crate) fn duplicate_descriptor(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        self.file.duplicate_descriptor()
    }
}
