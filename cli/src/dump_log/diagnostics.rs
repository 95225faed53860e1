//! Findings Kafka's dump tool collects while dumping and prints to stderr after the last file:
//! index entries that do not match the log, time index problems, and record offsets that do
//! not follow each other. Wording and order are Kafka's (`DumpLogSegments.main` and
//! `TimeIndexDumpErrors.printErrors`).

use std::io::{self, Write};
use std::path::{Path, PathBuf};

/// `(file, [(a, b)])` lists, one per file that had findings, in dump order.
type PerFile = Vec<(PathBuf, Vec<(i64, i64)>)>;

#[derive(Debug, Default)]
pub(super) struct Diagnostics {
    /// `.index`: (indexed offset, last offset of the batch at the indexed position).
    index_mismatches: PerFile,
    /// `.timeindex`: (indexed timestamp, largest record timestamp of the indexed batch).
    time_mismatches: PerFile,
    /// `.timeindex`: (indexed timestamp, previous indexed timestamp).
    time_out_of_order: PerFile,
    /// `.timeindex`: (indexed offset, last offset of the batch found, or -1).
    time_offsets_not_found: PerFile,
    /// `.log` with deep iteration: (offset, the record offset that followed it).
    non_consecutive: PerFile,
}

fn push(list: &mut PerFile, file: &Path, pair: (i64, i64)) {
    match list.last_mut() {
        Some((f, pairs)) if f.as_path() == file => pairs.push(pair),
        _ => list.push((file.to_path_buf(), vec![pair])),
    }
}

impl Diagnostics {
    pub fn index_mismatch(&mut self, file: &Path, index_offset: i64, log_offset: i64) {
        push(&mut self.index_mismatches, file, (index_offset, log_offset));
    }
    pub fn time_mismatch(&mut self, file: &Path, index_timestamp: i64, log_timestamp: i64) {
        push(&mut self.time_mismatches, file, (index_timestamp, log_timestamp));
    }
    pub fn time_out_of_order(&mut self, file: &Path, index_timestamp: i64, previous: i64) {
        push(&mut self.time_out_of_order, file, (index_timestamp, previous));
    }
    pub fn time_offset_not_found(&mut self, file: &Path, index_offset: i64, log_offset: i64) {
        push(&mut self.time_offsets_not_found, file, (index_offset, log_offset));
    }
    pub fn non_consecutive(&mut self, file: &Path, previous: i64, offset: i64) {
        push(&mut self.non_consecutive, file, (previous, offset));
    }

    /// Kafka prepends index mismatches and non-consecutive pairs to Scala lists, so those come
    /// out newest first; the time index findings are appended and come out in order.
    pub fn print(&self, err: &mut dyn Write) -> io::Result<()> {
        for (file, pairs) in &self.index_mismatches {
            writeln!(err, "Mismatches in :{}", file.display())?;
            for (index_offset, log_offset) in pairs.iter().rev() {
                writeln!(err, "  Index offset: {index_offset}, log offset: {log_offset}")?;
            }
        }
        for (file, pairs) in &self.time_mismatches {
            writeln!(err, "Found timestamp mismatch in :{}", file.display())?;
            for (index_ts, log_ts) in pairs {
                writeln!(err, "  Index timestamp: {index_ts}, log timestamp: {log_ts}")?;
            }
        }
        for (file, pairs) in &self.time_out_of_order {
            writeln!(err, "Found out of order timestamp in :{}", file.display())?;
            for (index_ts, previous) in pairs {
                writeln!(err, "  Index timestamp: {index_ts}, Previously indexed timestamp: {previous}")?;
            }
        }
        for (_, pairs) in &self.time_offsets_not_found {
            writeln!(err, "The following indexed offsets are not found in the log.")?;
            for (index_offset, log_offset) in pairs {
                writeln!(err, "Indexed offset: {index_offset}, found log offset: {log_offset}")?;
            }
        }
        for (file, pairs) in &self.non_consecutive {
            writeln!(err, "Non-consecutive offsets in {}", file.display())?;
            for (first, second) in pairs.iter().rev() {
                writeln!(err, "  {first} is followed by {second}")?;
            }
        }
        Ok(())
    }
}
