//! `IndexFile<E>`: what the offset index and the time index share — an append-only file of
//! fixed-size big-endian entries plus its in-memory copy, which every lookup searches.
//!
//! The file holds exactly the entries, with no preallocated tail. Appends go to memory first;
//! [`IndexFile::write_pending`] writes the unwritten suffix in one write. The owning segment
//! calls it on flush, roll and close (and when enough entries pile up), so an append costs no
//! index syscall. A crash can therefore leave an index shorter than its log; recovery rebuilds
//! the index of every segment it rescans, and a short index is still correct, only slower.

use std::path::{Path, PathBuf};

use glommio::io::{BufferedFile, OpenOptions};

use crate::index_entry::{
    OffsetIndexEntry, TimeIndexEntry, OFFSET_INDEX_ENTRY_BYTES, TIME_INDEX_ENTRY_BYTES,
};
use crate::log_error::Result;

/// Unwritten entries that trigger a write without waiting for flush/roll/close: bounds the
/// work a crash can lose and the size of one index write.
pub(crate) const PENDING_ENTRIES_WRITE_THRESHOLD: usize = 512;

pub(crate) trait IndexEntry: Copy {
    const BYTES: usize;
    fn encode_into(&self, out: &mut Vec<u8>);
    fn decode_all(bytes: &[u8]) -> Vec<Self>;
}

impl IndexEntry for OffsetIndexEntry {
    const BYTES: usize = OFFSET_INDEX_ENTRY_BYTES;
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.encode());
    }
    fn decode_all(bytes: &[u8]) -> Vec<Self> {
        OffsetIndexEntry::decode_all(bytes)
    }
}

impl IndexEntry for TimeIndexEntry {
    const BYTES: usize = TIME_INDEX_ENTRY_BYTES;
    fn encode_into(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.encode());
    }
    fn decode_all(bytes: &[u8]) -> Vec<Self> {
        TimeIndexEntry::decode_all(bytes)
    }
}

#[derive(Debug)]
pub(crate) struct IndexFile<E> {
    path: PathBuf,
    file: BufferedFile,
    entries: Vec<E>,
    /// How many of `entries` are in the file; the rest are pending.
    written_entries: usize,
    max_entries: usize,
    /// False when the file on open was not a whole number of entries or implausibly large;
    /// `entries` is then empty and the owner must rebuild.
    loaded_whole: bool,
}

impl<E: IndexEntry> IndexFile<E> {
    /// Opens (creating when absent) and loads the file. A file larger than
    /// `max_load_entries` entries is not read at all: it cannot belong to its log, and its
    /// size must not drive an allocation.
    pub(crate) async fn open(path: &Path, max_entries: usize, max_load_entries: usize) -> Result<Self> {
        let file = OpenOptions::new().read(true).write(true).create(true).buffered_open(path).await?;
        let size_bytes = file.file_size().await?;
        let mut index = IndexFile {
            path: path.to_path_buf(),
            file,
            entries: Vec::new(),
            written_entries: 0,
            max_entries,
            loaded_whole: false,
        };
        let whole = size_bytes % E::BYTES as u64 == 0;
        let plausible = size_bytes <= (max_load_entries as u64).saturating_mul(E::BYTES as u64);
        if whole && plausible {
            let bytes =
                if size_bytes == 0 { None } else { Some(index.file.read_at(0, size_bytes as usize).await?) };
            let read_bytes = bytes.as_ref().map_or(0, |b| b.len());
            if read_bytes as u64 == size_bytes {
                index.entries = bytes.map_or_else(Vec::new, |b| E::decode_all(&b));
                index.written_entries = index.entries.len();
                index.loaded_whole = true;
            }
        }
        Ok(index)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
    pub(crate) fn entries(&self) -> &[E] {
        &self.entries
    }
    pub(crate) fn loaded_whole(&self) -> bool {
        self.loaded_whole
    }
    pub(crate) fn is_full(&self) -> bool {
        self.entries.len() >= self.max_entries
    }

    /// Adds an entry in memory; the caller has checked order and capacity.
    pub(crate) fn push(&mut self, entry: E) {
        self.entries.push(entry);
    }

    /// Keeps the first `keep` entries, in memory and in the file.
    pub(crate) async fn truncate_entries(&mut self, keep: usize) -> Result<()> {
        assert!(keep <= self.entries.len());
        self.entries.truncate(keep);
        if keep < self.written_entries {
            self.file.truncate((keep * E::BYTES) as u64).await?;
            self.written_entries = keep;
        }
        Ok(())
    }

    /// Drops every entry and empties the file (before a rebuild).
    pub(crate) async fn clear(&mut self) -> Result<()> {
        self.entries.clear();
        self.written_entries = 0;
        self.loaded_whole = true;
        self.file.truncate(0).await?;
        Ok(())
    }

    pub(crate) fn pending_entries(&self) -> usize {
        self.entries.len() - self.written_entries
    }

    /// Appends the pending entries to the file in one write.
    pub(crate) async fn write_pending(&mut self) -> Result<()> {
        if self.pending_entries() == 0 {
            return Ok(());
        }
        let mut bytes = Vec::with_capacity(self.pending_entries() * E::BYTES);
        for entry in &self.entries[self.written_entries..] {
            entry.encode_into(&mut bytes);
        }
        write_all_at(&self.file, bytes, (self.written_entries * E::BYTES) as u64).await?;
        self.written_entries = self.entries.len();
        Ok(())
    }

    pub(crate) async fn sync(&self) -> Result<()> {
        self.file.fdatasync().await?;
        Ok(())
    }

    pub(crate) async fn close(self) -> Result<()> {
        self.file.close().await?;
        Ok(())
    }

    /// See `LogSegment::close_replaced`.
    pub(crate) fn duplicate_descriptor(&self) -> std::io::Result<std::os::fd::OwnedFd> {
        crate::log_segment::duplicate_descriptor(&self.file)
    }
}

/// Writes all of `bytes` at `position`. glommio takes the buffer, so a short write (on a
/// regular file only when the disk fills up) cannot be resumed: it is an error, and the
/// caller, which advances its sizes only after success, overwrites or truncates the torn bytes.
pub(crate) async fn write_all_at(file: &BufferedFile, bytes: Vec<u8>, position: u64) -> Result<()> {
    let total = bytes.len();
    let written = file.write_at(bytes, position).await?;
    if written != total {
        let msg = format!("short write: {written} of {total} bytes at position {position}");
        return Err(std::io::Error::new(std::io::ErrorKind::WriteZero, msg).into());
    }
    Ok(())
}
