//! `OffsetIndex`: one segment's `.index` file — sparse entries (relative offset `u32`,
//! position `u32`) mapping the last offset of a batch to the batch's position in the `.log`,
//! one every `index.interval.bytes` of log, as Kafka writes them.
//!
//! A lookup finds the greatest entry whose offset is <= the target: the batch holding the
//! target starts at or after that position, so the caller scans forward from there.

use std::path::Path;

use crate::index_entry::OffsetIndexEntry;
use crate::index_file::IndexFile;
use crate::log_error::Result;

/// The search behind [`OffsetIndex::lookup`] over `entries` of a segment based at
/// `base_offset`. Separate from the file so `storage/benches/index_lookup.rs` measures this
/// exact code without an io_uring executor (callgrind cannot run glommio here).
pub fn lookup_in(entries: &[OffsetIndexEntry], base_offset: i64, target_offset: i64) -> Option<(i64, u32)> {
    let relative = target_offset - base_offset;
    if relative < 0 {
        return None;
    }
    let after = entries.partition_point(|e| (e.relative_offset as i64) <= relative);
    let entry = entries.get(after.checked_sub(1)?)?;
    Some((base_offset + entry.relative_offset as i64, entry.position))
}

#[derive(Debug)]
pub struct OffsetIndex {
    base_offset: i64,
    file: IndexFile<OffsetIndexEntry>,
}

impl OffsetIndex {
    pub(crate) async fn open(
        path: &Path,
        base_offset: i64,
        max_entries: usize,
        max_load_entries: usize,
    ) -> Result<Self> {
        Ok(OffsetIndex { base_offset, file: IndexFile::open(path, max_entries, max_load_entries).await? })
    }

    /// Why the loaded entries cannot belong to a log of `log_size_bytes`, if they cannot:
    /// torn file, offsets or positions not strictly increasing, a position past the log.
    pub(crate) fn inconsistency(&self, log_size_bytes: u64) -> Option<&'static str> {
        if !self.file.loaded_whole() {
            return Some("not a whole number of entries, or larger than its log allows");
        }
        let entries = self.file.entries();
        if entries
            .windows(2)
            .any(|w| w[0].relative_offset >= w[1].relative_offset || w[0].position >= w[1].position)
        {
            return Some("entries not strictly increasing");
        }
        if entries.iter().any(|e| e.relative_offset > i32::MAX as u32 || e.position as u64 >= log_size_bytes)
        {
            return Some("entry points past the log");
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

    /// `(offset, position)` of the greatest entry with offset <= `target_offset`; `None` when
    /// the target precedes every entry (scan from position 0).
    pub fn lookup(&self, target_offset: i64) -> Option<(i64, u32)> {
        lookup_in(self.file.entries(), self.base_offset, target_offset)
    }

    /// Position of the greatest entry whose position is <= `position`: a batch boundary.
    pub fn position_floor(&self, position: u64) -> Option<u32> {
        let entries = self.file.entries();
        let after = entries.partition_point(|e| e.position as u64 <= position);
        Some(entries.get(after.checked_sub(1)?)?.position)
    }

    pub fn last_entry(&self) -> Option<(i64, u32)> {
        self.file.entries().last().map(|e| (self.base_offset + e.relative_offset as i64, e.position))
    }

    /// Adds `(offset, position)`; both must exceed the last entry's and the index not be full.
    pub(crate) fn append(&mut self, offset: i64, position: u32) {
        let relative = offset - self.base_offset;
        assert!(
            (0..=i32::MAX as i64).contains(&relative),
            "offset {offset} not relative to {}",
            self.base_offset
        );
        assert!(!self.is_full());
        if let Some((last_offset, last_position)) = self.last_entry() {
            assert!(offset > last_offset && position > last_position, "index entries must increase");
        }
        self.file.push(OffsetIndexEntry { relative_offset: relative as u32, position });
    }

    /// Drops the entries of batches at or after `position` (the log is cut there).
    pub(crate) async fn truncate_to_position(&mut self, position: u64) -> Result<()> {
        let keep = self.file.entries().partition_point(|e| (e.position as u64) < position);
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
