//! Dumping `.index` and `.timeindex` files, and checking them against the `.log` beside them
//! as Kafka's tool does.
//!
//! Entries hold offsets relative to the segment's base offset (from the file name); Kafka reads
//! them, and positions, as signed 32-bit ints, so we print them that way too. Index files are
//! preallocated, so the first entry after entry 0 with relative offset 0 marks the unused tail
//! and ends the dump. Files are read in bounded chunks, never whole.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::Path;

use shardlog_storage::index_entry::{OffsetIndexEntry, TimeIndexEntry, OFFSET_INDEX_ENTRY_BYTES};
use shardlog_storage::record_batch::RecordBatch;
use shardlog_storage::records::Records;

use super::segment::{LogFile, Next, MAX_UNCOMPRESSED_BYTES};
use super::{absolute, base_offset_from_name, sibling_log, Diagnostics, DumpError, DumpLogArgs};

/// Read size for index files: a whole number of entries of either kind (8 and 12 bytes), so
/// no entry straddles two chunks.
const CHUNK_BYTES: usize = 48 * 1024;
/// Kafka's `RecordBatch.NO_TIMESTAMP`.
const NO_TIMESTAMP: i64 = -1;

/// Calls `each` with every whole entry of the file, decoded by `decode`, in order, until it
/// returns `false`. A partial entry at the end is ignored (Kafka: `entries = length / size`).
fn for_each_entry<T>(
    path: &Path,
    decode: fn(&[u8]) -> Vec<T>,
    mut each: impl FnMut(T) -> Result<bool, DumpError>,
) -> Result<(), DumpError> {
    let mut file = File::open(path).map_err(DumpError::input(path))?;
    let mut chunk = vec![0u8; CHUNK_BYTES];
    loop {
        let filled = read_up_to(&mut file, &mut chunk).map_err(DumpError::input(path))?;
        for entry in decode(&chunk[..filled]) {
            if !each(entry)? {
                return Ok(());
            }
        }
        if filled < chunk.len() {
            return Ok(());
        }
    }
}

/// Fills `buf` unless the file ends first; returns how much was read.
fn read_up_to(file: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Absolute offset and position of an offset index entry, read as Kafka reads them.
fn offset_entry(base_offset: i64, e: OffsetIndexEntry) -> (i64, i32) {
    (base_offset.wrapping_add(e.relative_offset as i32 as i64), e.position as i32)
}

/// Timestamp and absolute offset of a time index entry.
fn time_entry(base_offset: i64, e: TimeIndexEntry) -> (i64, i64) {
    (e.timestamp, base_offset.wrapping_add(e.relative_offset as i32 as i64))
}

/// Last offset of the batch that starts at `position` of `log`, or -1 if none frames there.
fn last_offset_at(log: &LogFile, position: i64, buf: &mut Vec<u8>) -> i64 {
    let Ok(position) = u64::try_from(position) else { return -1 };
    match log.next_batch(position, log.len(), buf) {
        Ok(Next::Batch) => RecordBatch::parse_lenient(buf).map_or(-1, |b| b.last_offset()),
        _ => -1,
    }
}

pub(super) fn dump_offset_index(
    args: &DumpLogArgs,
    path: &Path,
    out: &mut dyn Write,
    diagnostics: &mut Diagnostics,
) -> Result<(), DumpError> {
    let base_offset = base_offset_from_name(path)?;
    let len = std::fs::metadata(path).map_err(DumpError::input(path))?.len();
    if len < OFFSET_INDEX_ENTRY_BYTES as u64 {
        writeln!(out, "{} is empty.", path.display())?;
        return Ok(());
    }
    // Without the .log beside it (Kafka would fail) the entries are printed unchecked.
    let log = sibling_log(path).and_then(|p| LogFile::open(&p).ok());
    let file = absolute(path);
    let mut buf = Vec::new();
    let mut i = 0u64;
    for_each_entry(path, OffsetIndexEntry::decode_all, |entry| {
        let (offset, position) = offset_entry(base_offset, entry);
        if offset == base_offset && i > 0 {
            return Ok(false);
        }
        i += 1;
        if let Some(log) = &log {
            let log_offset = last_offset_at(log, position as i64, &mut buf);
            if log_offset != offset {
                diagnostics.index_mismatch(&file, offset, log_offset);
            }
        }
        if !args.verify_index_only {
            writeln!(out, "offset: {offset} position: {position}")?;
        }
        Ok(true)
    })
}

pub(super) fn dump_time_index(
    args: &DumpLogArgs,
    path: &Path,
    out: &mut dyn Write,
    diagnostics: &mut Diagnostics,
) -> Result<(), DumpError> {
    let base_offset = base_offset_from_name(path)?;
    let checker = sibling_log(path).and_then(|log_path| TimeIndexChecker::open(&log_path, base_offset));
    let file = absolute(path);
    let mut previous = NO_TIMESTAMP;
    let mut i = 0u64;
    for_each_entry(path, TimeIndexEntry::decode_all, |entry| {
        let (timestamp, offset) = time_entry(base_offset, entry);
        if offset == base_offset && i > 0 {
            return Ok(false);
        }
        i += 1;
        if let Some(checker) = &checker {
            match checker.find_batch(offset) {
                None => diagnostics.time_offset_not_found(&file, offset, -1),
                Some((last_offset, _)) if last_offset != offset => {
                    diagnostics.time_offset_not_found(&file, offset, last_offset)
                }
                Some((_, max_timestamp)) => {
                    if max_timestamp != timestamp {
                        diagnostics.time_mismatch(&file, timestamp, max_timestamp);
                    }
                    if previous >= timestamp {
                        diagnostics.time_out_of_order(&file, timestamp, previous);
                    }
                }
            }
        }
        if !args.verify_index_only {
            writeln!(out, "timestamp: {timestamp} offset: {offset}")?;
        }
        previous = timestamp;
        Ok(true)
    })
}

/// Finds the batch a time index entry points at: like Kafka, start from the offset index's
/// position for the offset (or the start of the log) and walk to the first batch whose last
/// offset reaches it.
struct TimeIndexChecker {
    log: LogFile,
    /// (absolute offset, position) of the `.index` entries, for the starting point.
    index: Vec<(i64, i32)>,
}

impl TimeIndexChecker {
    fn open(log_path: &Path, base_offset: i64) -> Option<Self> {
        let log = LogFile::open(log_path).ok()?;
        let mut index = Vec::new();
        let index_path = log_path.with_extension("index");
        if index_path.exists() {
            let read = for_each_entry(&index_path, OffsetIndexEntry::decode_all, |entry| {
                let (offset, position) = offset_entry(base_offset, entry);
                if offset == base_offset && !index.is_empty() {
                    return Ok(false);
                }
                index.push((offset, position));
                Ok(true)
            });
            if read.is_err() {
                index.clear();
            }
        }
        Some(TimeIndexChecker { log, index })
    }

    /// `(last offset, largest record timestamp)` of the first batch whose last offset is at
    /// least `offset`, or `None` if the walk ends first.
    fn find_batch(&self, offset: i64) -> Option<(i64, i64)> {
        let start = match self.index.partition_point(|(o, _)| *o <= offset) {
            0 => 0,
            n => u64::try_from(self.index[n - 1].1).unwrap_or(0),
        };
        let mut position = start;
        let mut buf = Vec::new();
        while let Ok(Next::Batch) = self.log.next_batch(position, self.log.len(), &mut buf) {
            let size = buf.len() as u64;
            if let Ok(batch) = RecordBatch::parse_lenient(&buf) {
                if batch.last_offset() >= offset {
                    return Some((batch.last_offset(), max_record_timestamp(batch)));
                }
            }
            position += size;
        }
        None
    }
}

/// Largest record timestamp of a batch, over the records that can be read.
fn max_record_timestamp(batch: RecordBatch<'_>) -> i64 {
    let Ok(records) = Records::decode(batch, MAX_UNCOMPRESSED_BYTES) else { return NO_TIMESTAMP };
    records.iter().map_while(Result::ok).map(|r| r.timestamp).fold(NO_TIMESTAMP, i64::max)
}
