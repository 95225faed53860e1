//! `shardlog dump-log`: prints Kafka-format segment files the way Kafka 3.7's
//! `kafka-dump-log.sh` (`kafka.tools.DumpLogSegments`) does.
//!
//! Per file, stdout gets `Dumping <file>` and then, by suffix:
//! - `.log`: `Log starting offset: N`, one line per batch, with `--deep-iteration` or
//!   `--print-data-log` one `| offset: …` line per record, and `Found N invalid bytes at the
//!   end of <name>` when the file ends in bytes that do not frame a batch;
//! - `.index`: `offset: N position: P` per entry (or `<file> is empty.`);
//! - `.timeindex`: `timestamp: T offset: N` per entry.
//!
//! Like Kafka, the index dumps are checked against the `.log` next to them and the findings
//! (and non-consecutive record offsets) are printed to stderr after all files. Where Kafka
//! would stop with a stack trace (a record that does not parse, an unsupported magic, a
//! control record without a valid key) we print a one-line report to stderr and go on.
//! A file that is missing, unreadable, of an unknown type or misnamed is reported on stderr,
//! the other files are still dumped, and the outcome counts it so the binary exits non-zero.

mod diagnostics;
mod index;
mod segment;

use std::io::{self, Write};
use std::path::{Path, PathBuf};

use diagnostics::Diagnostics;

/// Kafka's `kafka-dump-log.sh` options that apply to Kafka-format segments.
#[derive(Debug, Clone, clap::Args)]
#[command(
    about = "Print the batches, records and index entries of Kafka-format log segment files",
    long_about = "Print the batches, records and index entries of Kafka-format log segment \
                  files (.log, .index, .timeindex), exactly as Kafka's kafka-dump-log.sh does. \
                  Useful for debugging a seemingly corrupt segment: a damaged batch shows \
                  `isvalid: false` and the dump goes on.",
    after_help = "Examples:\n  \
        shardlog dump-log --files data/orders-0/00000000000000000000.log\n  \
        shardlog dump-log --files data/orders-0/00000000000000000000.log --print-data-log\n  \
        shardlog dump-log --files 00000000000000000000.index,00000000000000000000.timeindex\n  \
        shardlog dump-log --files 00000000000000000000.log --deep-iteration --max-bytes 1048576"
)]
pub struct DumpLogArgs {
    /// Comma-separated list of files to dump: segment data (.log), offset index (.index) or
    /// time index (.timeindex). May be given more than once.
    #[arg(long, value_name = "PATHS", value_delimiter = ',', required = true)]
    pub files: Vec<PathBuf>,

    /// Print each record's key and payload too (as UTF-8). Implies --deep-iteration.
    #[arg(long)]
    pub print_data_log: bool,

    /// Print one line per record, not only one per batch.
    #[arg(long)]
    pub deep_iteration: bool,

    /// With --print-data-log: print only the key and payload of each record.
    #[arg(long)]
    pub skip_record_metadata: bool,

    /// For index files: only check the entries against the .log file and report mismatches.
    #[arg(long)]
    pub verify_index_only: bool,

    /// Read at most this many bytes of each .log file (whole batches only).
    #[arg(long, value_name = "BYTES")]
    pub max_bytes: Option<u64>,
}

impl DumpLogArgs {
    fn deep_iteration(&self) -> bool {
        self.deep_iteration || self.print_data_log
    }
}

/// What a run did, for the exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Outcome {
    /// Files that could not be dumped at all (missing, unreadable, unknown type, bad name).
    pub failed_files: usize,
}

impl Outcome {
    pub fn success(&self) -> bool {
        self.failed_files == 0
    }
}

/// Why one file could not be dumped. `Output` is not about the file: stdout or stderr
/// failed (e.g. a closed pipe), which ends the whole run.
#[derive(Debug, thiserror::Error)]
enum DumpError {
    #[error("cannot read {path}: {source}")]
    Input { path: PathBuf, source: io::Error },
    #[error("cannot dump {0}: unknown file type (expected a .log, .index or .timeindex file)")]
    UnknownFileType(PathBuf),
    #[error("cannot dump {0}: the file name does not start with a base offset")]
    BadFileName(PathBuf),
    #[error(transparent)]
    Output(#[from] io::Error),
}

impl DumpError {
    fn input(path: &Path) -> impl FnOnce(io::Error) -> DumpError + '_ {
        move |source| DumpError::Input { path: path.to_path_buf(), source }
    }
}

/// Dumps every file in `args.files` in order: the dump to `out`, reports to `err`. Returns an
/// error only when writing to `out` or `err` fails.
pub fn run(args: &DumpLogArgs, out: &mut dyn Write, err: &mut dyn Write) -> io::Result<Outcome> {
    let mut diagnostics = Diagnostics::default();
    let mut failed_files = 0;
    for path in &args.files {
        writeln!(out, "Dumping {}", path.display())?;
        match dump_file(args, path, out, err, &mut diagnostics) {
            Ok(()) => {}
            Err(DumpError::Output(e)) => return Err(e),
            Err(e) => {
                out.flush()?;
                writeln!(err, "error: {e}")?;
                failed_files += 1;
            }
        }
    }
    out.flush()?;
    diagnostics.print(err)?;
    Ok(Outcome { failed_files })
}

fn dump_file(
    args: &DumpLogArgs,
    path: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
    diagnostics: &mut Diagnostics,
) -> Result<(), DumpError> {
    // Kafka picks the dumper by the text after the last dot of the file name.
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    match name.rsplit_once('.').map(|(_, suffix)| suffix) {
        Some("log") => segment::dump(args, path, out, err, diagnostics),
        Some("index") => index::dump_offset_index(args, path, out, diagnostics),
        Some("timeindex") => index::dump_time_index(args, path, out, diagnostics),
        _ => Err(DumpError::UnknownFileType(path.to_path_buf())),
    }
}

/// The base offset Kafka reads from a segment file's name: the text before its first dot
/// (`00000000000000000042.log` → 42).
fn base_offset_from_name(path: &Path) -> Result<i64, DumpError> {
    path.file_name()
        .and_then(|n| n.to_str())
        .and_then(|n| n.split('.').next())
        .and_then(|stem| stem.parse::<i64>().ok())
        .ok_or_else(|| DumpError::BadFileName(path.to_path_buf()))
}

/// The `.log` next to an index file (same base name), which Kafka checks the index against.
fn sibling_log(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?.to_str()?;
    let stem = name.split('.').next()?;
    Some(path.with_file_name(format!("{stem}.log")))
}

/// Kafka keys its reports by `File.getAbsolutePath`.
fn absolute(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base_offsets_come_from_the_name_before_the_first_dot() {
        assert_eq!(base_offset_from_name(Path::new("/d/00000000000000000042.log")).unwrap(), 42);
        assert_eq!(base_offset_from_name(Path::new("00000000000000000007.index.deleted")).unwrap(), 7);
        assert!(base_offset_from_name(Path::new("/d/segment.log")).is_err());
        assert_eq!(sibling_log(Path::new("/d/0001.timeindex")).unwrap(), Path::new("/d/0001.log"));
    }
}
