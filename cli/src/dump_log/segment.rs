//! Dumping a `.log` segment: walk its batches the way Kafka's `FileLogInputStream` frames
//! them, print one line per batch and, with deep iteration, one per record.
//!
//! Framing follows Kafka so the output (and where it stops) matches: the walk ends when no
//! more than the 17 header bytes up to `magic` remain, or when a batch runs past the end; the
//! bytes left over are reported as `Found N invalid bytes at the end of <name>`. A
//! `batchLength` too small for any batch means nothing after it can be framed: Kafka throws
//! there, we report it on stderr and end the file the same way. Batches that frame but do not
//! check out print `isvalid: false`; their records are shown as far as they parse.

use std::fs::File;
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::Path;

use shardlog_storage::record_batch::{BatchError, Compression, RecordBatch, LOG_OVERHEAD, MAGIC_V2};
use shardlog_storage::records::{control_type_id, ControlRecordType, EndTxnMarker, Record, Records};

use super::{absolute, base_offset_from_name, Diagnostics, DumpError, DumpLogArgs};

/// Kafka's `HEADER_SIZE_UP_TO_MAGIC`: a batch is only looked at when more bytes than this remain.
const HEADER_UP_TO_MAGIC: u64 = 17;
/// Kafka's `LegacyRecord.RECORD_OVERHEAD_V0`: the smallest `batchLength` of any message format.
const MIN_BATCH_LENGTH: i32 = 14;
/// Largest batch this tool reads into memory. Kafka's own limit is `message.max.bytes`
/// (1 MiB by default, an `int`); anything near this is damage, not data.
const MAX_BATCH_READ_BYTES: u64 = 256 << 20;
/// Bound on one batch's decompressed records (decompression bombs end here).
pub(super) const MAX_UNCOMPRESSED_BYTES: usize = 256 << 20;
/// Kafka prints `|` in front of every record line.
const RECORD_INDENT: &str = "|";

/// A `.log` file opened for positioned reads.
pub(super) struct LogFile {
    file: File,
    len: u64,
}

/// What the walk finds at a position.
pub(super) enum Next {
    /// No more than [`HEADER_UP_TO_MAGIC`] bytes remain: the end (or leftover bytes).
    End,
    /// `batchLength` is below any batch's: the rest cannot be framed.
    BadLength(i32),
    /// The batch runs past the end of the file (or of `--max-bytes`).
    Truncated,
    /// The batch frames but is larger than [`MAX_BATCH_READ_BYTES`]; not read.
    TooLarge(u64),
    /// The whole batch is now in the buffer.
    Batch,
}

impl LogFile {
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = File::open(path)?;
        let len = file.metadata()?.len();
        Ok(LogFile { file, len })
    }

    pub fn len(&self) -> u64 {
        self.len
    }

    /// Reads the batch at `pos` into `buf` if it frames and ends at or before `end`.
    pub fn next_batch(&self, pos: u64, end: u64, buf: &mut Vec<u8>) -> io::Result<Next> {
        if pos.saturating_add(HEADER_UP_TO_MAGIC) >= end {
            return Ok(Next::End);
        }
        let mut head = [0u8; LOG_OVERHEAD];
        self.file.read_exact_at(&mut head, pos)?;
        let batch_length = i32::from_be_bytes([head[8], head[9], head[10], head[11]]);
        if batch_length < MIN_BATCH_LENGTH {
            return Ok(Next::BadLength(batch_length));
        }
        let size = LOG_OVERHEAD as u64 + batch_length as u64;
        if size > end - pos {
            return Ok(Next::Truncated);
        }
        if size > MAX_BATCH_READ_BYTES {
            return Ok(Next::TooLarge(size));
        }
        buf.clear();
        buf.resize(size as usize, 0);
        self.file.read_exact_at(buf, pos)?;
        Ok(Next::Batch)
    }
}

/// Dumps one `.log` file.
pub(super) fn dump(
    args: &DumpLogArgs,
    path: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
    diagnostics: &mut Diagnostics,
) -> Result<(), DumpError> {
    let base_offset = base_offset_from_name(path)?;
    writeln!(out, "Log starting offset: {base_offset}")?;
    let log = LogFile::open(path).map_err(DumpError::input(path))?;
    let name = path.file_name().map(|n| n.to_string_lossy()).unwrap_or_default();
    let end = args.max_bytes.map_or(log.len(), |max| max.min(log.len()));
    let mut walk = Walk { args, out, err, diagnostics, file: absolute(path), last_record_offset: None };

    let mut position = 0u64;
    let mut buf = Vec::new();
    loop {
        match log.next_batch(position, end, &mut buf).map_err(DumpError::input(path))? {
            Next::Batch => {}
            Next::End | Next::Truncated => break,
            Next::BadLength(len) => {
                walk.note(format_args!(
                    "{name}: batchLength {len} at position {position} is smaller than any batch; \
                     the rest of the file cannot be read"
                ))?;
                break;
            }
            Next::TooLarge(size) => {
                walk.note(format_args!(
                    "{name}: the batch at position {position} claims {size} bytes, more than the \
                     {MAX_BATCH_READ_BYTES} this tool reads; the rest of the file is not read"
                ))?;
                break;
            }
        }
        walk.batch(&buf, position)?;
        position += buf.len() as u64;
    }
    let trailing = end - position;
    // Kafka only reports leftovers when it was asked for the whole file.
    if trailing > 0 && args.max_bytes.is_none() {
        writeln!(walk.out, "Found {trailing} invalid bytes at the end of {name}")?;
    }
    Ok(())
}

/// The state of one file's walk.
struct Walk<'a> {
    args: &'a DumpLogArgs,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
    diagnostics: &'a mut Diagnostics,
    /// Absolute path, as Kafka names the file in its stderr findings.
    file: std::path::PathBuf,
    last_record_offset: Option<i64>,
}

impl Walk<'_> {
    /// A report on stderr, after flushing stdout so the two stay in order on a terminal.
    fn note(&mut self, message: std::fmt::Arguments<'_>) -> io::Result<()> {
        self.out.flush()?;
        writeln!(self.err, "{message}")
    }

    fn batch(&mut self, bytes: &[u8], position: u64) -> io::Result<()> {
        let magic = bytes[16] as i8;
        if magic != MAGIC_V2 {
            return self.note(format_args!(
                "skipping the batch at position {position}: magic {magic} is not supported (only magic 2)"
            ));
        }
        let batch = match RecordBatch::parse_lenient(bytes) {
            Ok(batch) => batch,
            Err(e) => return self.note(format_args!("skipping the batch at position {position}: {e}")),
        };
        writeln!(self.out, "{}", batch_line(&batch, position))?;
        if self.args.deep_iteration() {
            self.records(&batch, position)?;
        }
        Ok(())
    }

    fn records(&mut self, batch: &RecordBatch<'_>, position: u64) -> io::Result<()> {
        let records = match Records::decode(*batch, MAX_UNCOMPRESSED_BYTES) {
            Ok(records) => records,
            Err(e) => {
                return self
                    .note(format_args!("cannot read the records of the batch at position {position}: {e}"))
            }
        };
        for record in records.iter() {
            let record = match record {
                Ok(record) => record,
                Err(e) => {
                    return self.note(format_args!("invalid record in the batch at position {position}: {e}"))
                }
            };
            if let Some(last) = self.last_record_offset {
                if record.offset != last.wrapping_add(1) {
                    self.diagnostics.non_consecutive(&self.file, last, record.offset);
                }
            }
            self.last_record_offset = Some(record.offset);
            let (line, problem) = record_line(self.args, batch, &record);
            writeln!(self.out, "{line}")?;
            if let Some(e) = problem {
                self.note(format_args!("invalid control record at offset {}: {e}", record.offset))?;
            }
        }
        Ok(())
    }
}

/// Kafka's `printBatchLevel` for magic 2.
fn batch_line(b: &RecordBatch<'_>, position: u64) -> String {
    let delete_horizon = match b.delete_horizon_ms() {
        Some(ms) => format!("OptionalLong[{ms}]"),
        None => "OptionalLong.empty".to_string(),
    };
    let codec_id = (b.attributes() & 0x07) as u8;
    let codec = match Compression::from_id(codec_id) {
        Ok(codec) => codec.name().to_string(),
        Err(_) => format!("unknown({codec_id})"),
    };
    format!(
        "baseOffset: {} lastOffset: {} count: {} baseSequence: {} lastSequence: {} producerId: {} \
         producerEpoch: {} partitionLeaderEpoch: {} isTransactional: {} isControl: {} \
         deleteHorizonMs: {} position: {} {}: {} size: {} magic: {} compresscodec: {} crc: {} isvalid: {}",
        b.base_offset(),
        b.last_offset(),
        b.record_count(),
        b.base_sequence(),
        b.last_sequence(),
        b.producer_id(),
        b.producer_epoch(),
        b.partition_leader_epoch(),
        b.is_transactional(),
        b.is_control(),
        delete_horizon,
        position,
        b.timestamp_type().name(),
        b.max_timestamp(),
        b.size_bytes(),
        b.magic(),
        codec,
        b.crc(),
        b.check_crc().is_ok(),
    )
}

/// Kafka's per-record line, and a control record problem to report (Kafka would throw).
fn record_line(args: &DumpLogArgs, batch: &RecordBatch<'_>, r: &Record<'_>) -> (String, Option<BatchError>) {
    let mut line = String::new();
    let mut problem = None;
    let mut prefix = format!("{RECORD_INDENT} ");
    if !args.skip_record_metadata {
        let key_size = r.key.map_or(-1, |k| k.len() as i64);
        let value_size = r.value.map_or(-1, |v| v.len() as i64);
        let header_keys: Vec<_> = r.headers.iter().map(|h| String::from_utf8_lossy(h.key)).collect();
        line += &format!(
            "{prefix}offset: {} {}: {} keySize: {key_size} valueSize: {value_size} sequence: {} headerKeys: [{}]",
            r.offset,
            batch.timestamp_type().name(),
            r.timestamp,
            r.sequence,
            header_keys.join(","),
        );
        prefix = " ".to_string();
        if batch.is_control() {
            match control_description(r) {
                Ok(text) => line += &text,
                Err(e) => problem = Some(e),
            }
        }
    }
    if args.print_data_log && !batch.is_control() {
        if let Some(key) = r.key {
            line += &format!("{prefix}key: {}", String::from_utf8_lossy(key));
        }
        // Kafka writes " payload: " with a space even when nothing precedes it.
        if let Some(value) = r.value {
            line += &format!(" payload: {}", String::from_utf8_lossy(value));
        }
    }
    (line, problem)
}

fn control_description(r: &Record<'_>) -> Result<String, BatchError> {
    let id = control_type_id(r.key)?;
    Ok(match ControlRecordType::from_id(id) {
        ControlRecordType::Abort | ControlRecordType::Commit => {
            let marker = EndTxnMarker::parse(r)?;
            let kind = if marker.commit { "COMMIT" } else { "ABORT" };
            format!(" endTxnMarker: {kind} coordinatorEpoch: {}", marker.coordinator_epoch)
        }
        other => format!(" controlType: {}({id})", other.name()),
    })
}
