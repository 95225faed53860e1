//! `LogSegment`: one `<20-digit base offset>.log` file of record batches with its `.index`
//! and `.timeindex`, as Kafka lays them out.
//!
//! Invariants, asserted before every write: batches in the file are whole and validated,
//! their offsets increase, every offset is within `i32::MAX` of the base offset (Kafka's
//! relative offsets are signed 32-bit) and every position fits a signed 32-bit integer.
//!
//! Appends are pipelined: a buffered io_uring write to a file that grows is executed by a
//! kernel worker thread, so one write at a time tops out near 200 MB/s here, while several
//! in flight pass 1 GB/s. The bytes are written from where the producer's request put them
//! (a [`PlacedRecords`]: the frame's bytes plus rewritten batch headers, by vectored writes on
//! the shard's own ring, `write_ring.rs`), never copied first. [`LogSegment::submit_append`]
//! assigns the bytes their place, starts the write and returns a [`WriteDone`] that resolves
//! once these bytes and every earlier append's are in the page cache. Reads stop at that
//! watermark (`written`), never at bytes still in flight. A failed write fails the segment:
//! every later append and flush errors and the log must be reopened, whose recovery
//! truncates at the hole.
//!
//! The exception is a small append with no write in flight: the shard `pwritev`s it itself
//! (at most `LogConfig::sync_append_bytes_max`, [`SYNC_APPEND_BYTES_MAX`] by default). Handing
//! a few KiB to a kernel worker costs more than copying them — two thread wake-ups and context
//! switches per write, measured as most of the broker's CPU and of a produce's latency when many
//! small batches arrive (low `linger.ms`) — while copying them blocks the shard for
//! microseconds. Large appends keep the worker. It inherits the shard's pinning, so it copies
//! on the shard's core, not beside it; what it buys is that a slow copy (the host faulting in
//! memory, the kernel throttling dirty pages) waits in the worker while the shard goes on
//! serving (a 256 KiB threshold lost 10 % of tailing throughput on freshly reclaimed memory;
//! see perf-reports/2026-12-05).
//!
//! The active segment's blocks are reserved ahead of its appends, [`PREALLOCATE_STEP_BYTES`]
//! ahead at most (`fallocate` keeping the file's size, so readers and recovery see only what
//! was appended). A buffered write into reserved blocks skips ext4's delayed-allocation
//! bookkeeping (`ext4_da_get_block_prep`), which was 14 % of the broker's produce CPU (profile
//! in perf-reports/2026-12-05-preallocate). The `fallocate` runs on glommio's blocking thread and
//! appends do not wait for it: it usually takes tens of µs, but waits for the file system's
//! journal when that is busy (up to 13 ms under `perf trace` at 300k msg/s, 0.4 ms at p99),
//! which must not stall the shard.
//! Sealing the segment releases what it did not use; a segment reopened after a crash with
//! blocks past its end releases them when sealed too. If a reservation fails (a full disk, a
//! file system without `fallocate`), the segment stops reserving, gives back what the failed
//! call kept (ext4 keeps a partial reservation: the disk's last free blocks) and its writes
//! proceed as before: a full disk then fails the write itself, as it would without
//! reservation.
//!
//! Index entries follow Kafka's rule for every batch, on append and on rebuild alike: when
//! more than `index.interval.bytes` were appended since the last entry, the batch gets an
//! offset-index entry (its last offset → its position) and, when the largest timestamp grew,
//! a time-index entry. So a rebuilt index is byte-for-byte the index appends wrote.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use glommio::io::{BufferedFile, OpenOptions, ReadResult};
use glommio::sync::Semaphore;

use crate::index_file::PENDING_ENTRIES_WRITE_THRESHOLD;
use crate::log_config::LogConfig;
use crate::log_error::{LogError, Result};
use crate::offset_index::OffsetIndex;
use crate::placed_records::PlacedRecords;
use crate::recent_batches::RecentBatches;
use crate::record_batch::{batch_size_at, BatchHeader, RecordBatch, BATCH_HEADER_BYTES, LOG_OVERHEAD};
use crate::time_index::{TimeIndex, NO_TIMESTAMP};
use crate::write_ring;

pub const LOG_FILE_SUFFIX: &str = ".log";
pub const INDEX_FILE_SUFFIX: &str = ".index";
pub const TIME_INDEX_FILE_SUFFIX: &str = ".timeindex";

/// Bytes read at a time when recovery re-validates a segment: large enough that reads are
/// cheap per byte, small enough to hold for each partition recovering at once.
const RECOVERY_WINDOW_BYTES: usize = 1 << 20;
/// Bytes read at a time when walking batch headers (fetch boundaries, lookups): most walks
/// cover at most `index.interval.bytes` plus one batch.
const HEADER_WINDOW_BYTES: usize = 4096;
/// Appends whose writes may be in flight at once per segment; the next waits for the oldest.
pub const MAX_WRITES_IN_FLIGHT: usize = 64;
/// Appends up to this size, with no write in flight, are written by the shard itself (the
/// default of `LogConfig::sync_append_bytes_max`): four pages, microseconds to copy.
pub const SYNC_APPEND_BYTES_MAX: usize = 16 * 1024;
/// How far ahead of the appends the active segment's blocks are reserved (the default of
/// `LogConfig::preallocate_step_bytes`): one `fallocate` per 2–4 MiB appended; the unused rest
/// is disk space held per active segment.
pub const PREALLOCATE_STEP_BYTES: u64 = 4 << 20;

/// `<base offset, 20 digits zero-padded><suffix>`, Kafka's segment file name.
pub fn segment_file_name(base_offset: i64, suffix: &str) -> String {
    format!("{base_offset:020}{suffix}")
}

/// A batch of a record set about to be appended: its start within the set and its header.
pub type PlacedBatch = (usize, BatchHeader);

/// Resolves once the bytes of one append, and of every append before it, are in the page
/// cache: acknowledge a producer (`acks=1`) only then. Cloning waits on the same write.
#[derive(Debug, Clone)]
pub struct WriteDone(Rc<Semaphore>);

impl WriteDone {
    fn new() -> Self {
        WriteDone(Rc::new(Semaphore::new(0)))
    }

    pub async fn wait(&self) -> Result<()> {
        match self.0.acquire_permit(1).await {
            Ok(_permit) => Ok(()),
            Err(_) => Err(std::io::Error::other("a write to the log failed; reopen it to recover").into()),
        }
    }

    fn is_done(&self) -> bool {
        self.0.available() > 0
    }
}

/// What reached the page cache, shared between a segment and its write tasks.
#[derive(Debug)]
struct Written {
    bytes: Cell<u64>,
    next_offset: Cell<i64>,
    failed: Cell<bool>,
}

/// Where recovery cut a segment, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Truncation {
    pub valid_bytes: u64,
    pub truncated_bytes: u64,
    pub reason: String,
}

/// A block reservation (`fallocate` keeping the size) running on glommio's blocking thread,
/// on a descriptor of its own so that it may outlive the segment's.
struct ReservationInFlight {
    /// The reserved range ends here once it succeeds.
    end: u64,
    outcome: Rc<RefCell<Option<std::io::Result<()>>>>,
    task: Option<glommio::Task<()>>,
}

impl ReservationInFlight {
    fn start(descriptor: std::os::fd::OwnedFd, from: u64, to: u64) -> Self {
        let blocking = glommio::executor().spawn_blocking(move || {
            // SAFETY: plain syscall on a descriptor this closure owns.
            let rc = unsafe {
                libc::fallocate(
                    descriptor.as_raw_fd(),
                    libc::FALLOC_FL_KEEP_SIZE,
                    from as libc::off_t,
                    (to - from) as libc::off_t,
                )
            };
            if rc == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
        let outcome = Rc::new(RefCell::new(None));
        let settled = Rc::clone(&outcome);
        let task = glommio::spawn_local(async move {
            *settled.borrow_mut() = Some(blocking.await);
        });
        ReservationInFlight { end: to, outcome, task: Some(task) }
    }

    fn is_settled(&self) -> bool {
        self.outcome.borrow().is_some()
    }

    async fn finish(mut self) -> (u64, std::io::Result<()>) {
        if let Some(task) = self.task.take() {
            task.await;
        }
        let outcome = self.outcome.borrow_mut().take();
        (self.end, outcome.unwrap_or_else(|| Err(std::io::Error::other("the reservation was cancelled"))))
    }
}

impl Drop for ReservationInFlight {
    /// A segment removed or replaced drops its reservation: let the call finish on its own
    /// descriptor rather than cancel it half-way.
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.detach();
        }
    }
}

impl std::fmt::Debug for ReservationInFlight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReservationInFlight")
            .field("end", &self.end)
            .field("settled", &self.is_settled())
            .finish()
    }
}

#[derive(Debug)]
pub struct LogSegment {
    base_offset: i64,
    log_path: PathBuf,
    /// Shared with the file regions handed to the fetch path, which keep it open after a
    /// roll, truncation or deletion.
    log: Rc<BufferedFile>,
    size_bytes: u64,
    /// Offset after the last batch; `base_offset` while empty.
    next_offset: i64,
    offset_index: OffsetIndex,
    time_index: TimeIndex,
    max_timestamp: i64,
    offset_of_max_timestamp: i64,
    bytes_since_last_index_entry: u64,
    /// The first batch's max timestamp (Kafka's `rollingBasedTimestamp`), for `segment.ms`.
    rolling_timestamp_ms: Option<i64>,
    created_ms: Option<i64>,
    /// Bytes or index entries not yet fdatasynced.
    unflushed: bool,
    written: Rc<Written>,
    /// Completion signals of the writes that may still be in flight, oldest first.
    in_flight: VecDeque<WriteDone>,
    /// The file's blocks are reserved up to here (0 when this process reserved none).
    reserved_bytes: u64,
    reservation: Option<ReservationInFlight>,
    /// A reservation failed: reserve no more in this segment.
    reservation_failed: bool,
    /// Blocks past the file's end may be reserved: release them when sealed.
    allocated_past_end: bool,
    /// Where the last batches appended start, so that a read at the tail walks no headers.
    recent_batches: RecentBatches,
}

impl LogSegment {
    /// Creates an empty segment, replacing any files of the same name.
    /// `now_ms` is the creation time `segment.ms` counts from when batches carry no
    /// timestamp; `None` makes it the first append's time.
    pub(crate) async fn create(
        dir: &Path,
        base_offset: i64,
        config: &LogConfig,
        now_ms: Option<i64>,
    ) -> Result<Self> {
        let log_path = dir.join(segment_file_name(base_offset, LOG_FILE_SUFFIX));
        let log = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .buffered_open(&log_path)
            .await?;
        for suffix in [INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX] {
            remove_if_exists(&dir.join(segment_file_name(base_offset, suffix))).await?;
        }
        let mut segment = Self::with_files(dir, base_offset, log_path, log, 0, config).await?;
        segment.created_ms = now_ms;
        segment.unflushed = true;
        Ok(segment)
    }

    /// Opens an existing segment without reading its batches; the caller then calls
    /// [`LogSegment::load_tail`] or [`LogSegment::recover`].
    pub(crate) async fn open(dir: &Path, base_offset: i64, config: &LogConfig) -> Result<Self> {
        let log_path = dir.join(segment_file_name(base_offset, LOG_FILE_SUFFIX));
        let log = OpenOptions::new().read(true).write(true).buffered_open(&log_path).await?;
        let size_bytes = log.file_size().await?;
        Self::with_files(dir, base_offset, log_path, log, size_bytes, config).await
    }

    /// Notes blocks reserved past the file's end that a crash left behind, so that sealing
    /// gives them back. Only the segment that was active can hold any: every other one gave
    /// back its reservation when it was sealed, before the next segment was created.
    pub(crate) fn find_reservation_left_by_a_crash(&mut self) -> Result<()> {
        self.allocated_past_end |= allocated_bytes(&*self.log)? > self.size_bytes.next_multiple_of(4096);
        Ok(())
    }

    async fn with_files(
        dir: &Path,
        base_offset: i64,
        log_path: PathBuf,
        log: BufferedFile,
        size_bytes: u64,
        config: &LogConfig,
    ) -> Result<Self> {
        // An index holds at most one entry per batch (plus the time index's final entry).
        let max_load_entries = (size_bytes / BATCH_HEADER_BYTES as u64) as usize + 2;
        let index_path = dir.join(segment_file_name(base_offset, INDEX_FILE_SUFFIX));
        let time_index_path = dir.join(segment_file_name(base_offset, TIME_INDEX_FILE_SUFFIX));
        let offset_index =
            OffsetIndex::open(&index_path, base_offset, config.offset_index_max_entries(), max_load_entries)
                .await?;
        let time_index =
            TimeIndex::open(&time_index_path, base_offset, config.time_index_max_entries(), max_load_entries)
                .await?;
        Ok(LogSegment {
            base_offset,
            log_path,
            log: Rc::new(log),
            size_bytes,
            next_offset: base_offset,
            offset_index,
            time_index,
            max_timestamp: NO_TIMESTAMP,
            offset_of_max_timestamp: base_offset,
            bytes_since_last_index_entry: 0,
            rolling_timestamp_ms: None,
            created_ms: None,
            unflushed: false,
            written: Rc::new(Written {
                bytes: Cell::new(size_bytes),
                next_offset: Cell::new(base_offset),
                failed: Cell::new(false),
            }),
            in_flight: VecDeque::new(),
            reserved_bytes: 0,
            reservation: None,
            reservation_failed: false,
            allocated_past_end: false,
            recent_batches: RecentBatches::default(),
        })
    }

    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    pub fn next_offset(&self) -> i64 {
        self.next_offset
    }
    /// Bytes appended, including writes still in flight.
    pub fn size_bytes(&self) -> u64 {
        self.size_bytes
    }
    /// Bytes in the page cache: what reads may return.
    pub fn written_bytes(&self) -> u64 {
        self.written.bytes.get()
    }
    /// The offset after the last batch in the page cache.
    pub fn written_next_offset(&self) -> i64 {
        self.written.next_offset.get()
    }
    pub fn is_empty(&self) -> bool {
        self.size_bytes == 0
    }
    /// The largest batch max timestamp in the segment, `NO_TIMESTAMP` (-1) when it has none.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    /// The first batch's max timestamp (what `segment.ms` rolls by, and Kafka's
    /// `getFirstBatchTimestamp` for `max.compaction.lag.ms`); `NO_TIMESTAMP` when unknown.
    pub fn first_batch_timestamp(&self) -> i64 {
        self.rolling_timestamp_ms.unwrap_or(crate::time_index::NO_TIMESTAMP)
    }
    /// The last offset of the first batch that reached [`LogSegment::max_timestamp`].
    pub fn offset_of_max_timestamp(&self) -> i64 {
        self.offset_of_max_timestamp
    }
    pub fn offset_index(&self) -> &OffsetIndex {
        &self.offset_index
    }
    pub fn time_index(&self) -> &TimeIndex {
        &self.time_index
    }
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }
    pub(crate) fn log_file(&self) -> &Rc<BufferedFile> {
        &self.log
    }
    pub(crate) fn is_unflushed(&self) -> bool {
        self.unflushed
    }

    /// Why the on-disk indexes cannot be trusted without a rebuild, if they cannot.
    pub(crate) fn index_inconsistency(&self) -> Option<&'static str> {
        self.offset_index.inconsistency(self.size_bytes)
    }

    /// For a segment recovery does not rescan: walks the batch headers after the last
    /// offset-index entry (no CRC; these bytes were flushed before the recovery point) to
    /// learn the segment's end offset, its largest timestamp and where indexing resumes.
    /// `Ok(Err(reason))` when the tail does not fit the index or the file: rebuild it.
    pub(crate) async fn load_tail(
        &mut self,
        config: &LogConfig,
        min_offset: i64,
        max_offset_exclusive: Option<i64>,
    ) -> Result<std::result::Result<(), String>> {
        // Called at open and after a truncation: batches remembered may be gone.
        self.recent_batches.clear();
        let (start_position, indexed_offset) = match self.offset_index.last_entry() {
            Some((offset, position)) => (position as u64, Some(offset)),
            None => (0, None),
        };
        let tail_bytes = self.size_bytes - start_position;
        if tail_bytes > config.index_interval_bytes as u64 + config.max_message_bytes as u64 {
            return Ok(Err(format!("{tail_bytes} bytes after the last index entry: the index is short")));
        }
        let (mut max_timestamp, mut offset_of_max) =
            self.time_index.last_entry().unwrap_or((NO_TIMESTAMP, self.base_offset));
        if self.size_bytes > i32::MAX as u64 {
            return Ok(Err(format!("{} bytes: larger than a segment can be", self.size_bytes)));
        }
        let mut next_offset = self.base_offset;
        let log = Rc::clone(&self.log);
        let mut reader = SegmentReader::new(&log, self.size_bytes, HEADER_WINDOW_BYTES);
        let mut position = start_position;
        while position < self.size_bytes {
            let header = match reader.header_at(position).await? {
                HeaderStep::Batch(header) => header,
                HeaderStep::End => break,
                HeaderStep::Bad(reason) => return Ok(Err(format!("at position {position}: {reason}"))),
            };
            if position == start_position && indexed_offset.is_some_and(|o| o != header.last_offset()) {
                return Ok(Err(format!(
                    "the last index entry does not point at batch {}",
                    header.base_offset
                )));
            }
            let floor = if position == 0 { min_offset.max(self.base_offset) } else { next_offset };
            if let Some(reason) = offset_problem(&header, floor, self.base_offset, max_offset_exclusive) {
                return Ok(Err(reason));
            }
            if header.max_timestamp > max_timestamp {
                (max_timestamp, offset_of_max) = (header.max_timestamp, header.last_offset());
            }
            next_offset = header.next_offset();
            position += header.size_bytes as u64;
        }
        if let Some(reason) = self.time_index.inconsistency(next_offset) {
            return Ok(Err(reason.to_string()));
        }
        if !self.offset_index.is_empty() && self.time_index.is_empty() && max_timestamp > NO_TIMESTAMP {
            return Ok(Err("the time index is empty".to_string()));
        }
        self.next_offset = next_offset;
        self.mark_all_written();
        self.max_timestamp = max_timestamp;
        self.offset_of_max_timestamp = offset_of_max;
        self.bytes_since_last_index_entry = tail_bytes;
        self.rolling_timestamp_ms = match reader.header_at(0).await? {
            HeaderStep::Batch(first) => Some(first.max_timestamp),
            HeaderStep::End | HeaderStep::Bad(_) => None,
        };
        Ok(Ok(()))
    }

    /// Re-validates every batch (CRC included) from the start, rebuilds both indexes, and cuts
    /// the file at the first torn or corrupt batch or at a batch whose offsets do not follow
    /// `min_offset` / precede `max_offset_exclusive` (the neighbouring segments).
    pub(crate) async fn recover(
        &mut self,
        config: &LogConfig,
        min_offset: i64,
        max_offset_exclusive: Option<i64>,
    ) -> Result<Option<Truncation>> {
        self.recent_batches.clear();
        self.offset_index.clear().await?;
        self.time_index.clear().await?;
        let file_size_bytes = self.log.file_size().await?;
        self.size_bytes = 0;
        self.next_offset = self.base_offset;
        self.max_timestamp = NO_TIMESTAMP;
        self.offset_of_max_timestamp = self.base_offset;
        self.bytes_since_last_index_entry = 0;
        self.rolling_timestamp_ms = None;
        self.unflushed = true;

        let log = Rc::clone(&self.log);
        let mut reader = SegmentReader::new(&log, file_size_bytes, RECOVERY_WINDOW_BYTES);
        let mut position = 0u64;
        let mut problem = None;
        while position < file_size_bytes {
            match Self::recover_batch(&mut reader, position).await? {
                Ok(header) if position + header.size_bytes as u64 > i32::MAX as u64 => {
                    problem = Some(format!("batch at position {position} ends past i32::MAX bytes"));
                    break;
                }
                Ok(header) => {
                    let floor =
                        if position == 0 { min_offset.max(self.base_offset) } else { self.next_offset };
                    if let Some(reason) =
                        offset_problem(&header, floor, self.base_offset, max_offset_exclusive)
                    {
                        problem = Some(reason);
                        break;
                    }
                    self.index_batch(config, position, &header);
                    self.next_offset = header.next_offset();
                    position += header.size_bytes as u64;
                    self.size_bytes = position;
                }
                Err(reason) => {
                    problem = Some(reason);
                    break;
                }
            }
        }
        drop(reader);
        self.mark_all_written();
        self.seal().await?;
        let Some(reason) = problem else { return Ok(None) };
        self.log.truncate(position).await?;
        Ok(Some(Truncation { valid_bytes: position, truncated_bytes: file_size_bytes - position, reason }))
    }

    async fn recover_batch(
        reader: &mut SegmentReader<'_>,
        position: u64,
    ) -> Result<std::result::Result<BatchHeader, String>> {
        let Some(prefix) = reader.bytes(position, LOG_OVERHEAD).await? else {
            return Ok(Err(format!("partial batch at position {position}")));
        };
        let Some(size_bytes) = batch_size_at(prefix) else {
            return Ok(Err(format!("batch length below the header size at position {position}")));
        };
        let Some(bytes) = reader.bytes(position, size_bytes).await? else {
            return Ok(Err(format!("batch of {size_bytes} bytes at position {position} is torn")));
        };
        if let Err(e) = RecordBatch::validate(bytes, usize::MAX) {
            return Ok(Err(format!("invalid batch at position {position}: {e}")));
        }
        Ok(BatchHeader::parse(bytes).map_err(|e| format!("invalid batch at position {position}: {e}")))
    }

    /// Kafka's indexing rule, shared by append and recovery (see the module comment).
    fn index_batch(&mut self, config: &LogConfig, position: u64, header: &BatchHeader) {
        if self.size_bytes == 0 && position == 0 {
            self.rolling_timestamp_ms = Some(header.max_timestamp);
        }
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.offset_of_max_timestamp = header.last_offset();
        }
        if self.bytes_since_last_index_entry > config.index_interval_bytes as u64
            && !self.offset_index.is_full()
        {
            self.offset_index.append(header.last_offset(), position as u32);
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp, false);
            self.bytes_since_last_index_entry = 0;
        }
        self.bytes_since_last_index_entry += header.size_bytes as u64;
    }

    /// Kafka's roll criteria for appending a record set of `set_bytes` bytes whose last
    /// offset is `last_offset` and largest timestamp `max_timestamp`.
    pub(crate) fn should_roll(
        &self,
        config: &LogConfig,
        set_bytes: usize,
        last_offset: i64,
        max_timestamp: i64,
        now_ms: i64,
    ) -> bool {
        if last_offset - self.base_offset > i32::MAX as i64 {
            return true;
        }
        if self.is_empty() {
            return false;
        }
        let waited_ms = match self.rolling_timestamp_ms {
            Some(first) if first >= 0 => max_timestamp.saturating_sub(first),
            _ => now_ms.saturating_sub(self.created_ms.unwrap_or(now_ms)),
        };
        self.size_bytes + set_bytes as u64 > config.segment_bytes as u64
            || waited_ms > config.max_segment_ms()
            || self.offset_index.is_full()
            || self.time_index.is_full()
    }

    /// The segment's files hold everything appended (no write in flight).
    fn mark_all_written(&self) {
        self.written.bytes.set(self.size_bytes);
        self.written.next_offset.set(self.next_offset);
    }

    /// Starts appending a validated record set whose offsets are assigned. `batches` are its
    /// batches (start within `records`, header), in order. Returns once the write is
    /// submitted; see [`WriteDone`].
    pub(crate) async fn submit_append(
        &mut self,
        config: &LogConfig,
        records: PlacedRecords,
        now_ms: i64,
    ) -> Result<WriteDone> {
        self.check_not_failed()?;
        while self.in_flight.front().is_some_and(WriteDone::is_done) {
            self.in_flight.pop_front();
        }
        if self.in_flight.len() >= MAX_WRITES_IN_FLIGHT {
            if let Some(oldest) = self.in_flight.pop_front() {
                oldest.wait().await?;
            }
        }
        let position = self.size_bytes;
        let set_bytes = records.len_bytes();
        let batches = records.batches();
        assert!(!batches.is_empty() && batches[0].0 == 0);
        assert!(position + set_bytes as u64 <= i32::MAX as u64, "segment position overflow");
        let mut expected_at_least = self.next_offset;
        for (at, header) in batches {
            assert!(at + header.size_bytes <= set_bytes);
            assert!(header.base_offset >= expected_at_least, "offsets must increase");
            assert!(header.last_offset() - self.base_offset <= i32::MAX as i64, "relative offset overflow");
            expected_at_least = header.next_offset();
        }
        self.reserve_ahead(config, position + set_bytes as u64).await?;
        let done = WriteDone::new();
        let synchronous = set_bytes <= config.sync_append_bytes_max && self.in_flight.is_empty();
        if synchronous {
            self.write_now(&records, position, expected_at_least, &done)?;
        }

        self.created_ms.get_or_insert(now_ms);
        for (at, header) in records.batches() {
            self.index_batch(config, position + *at as u64, header);
            self.recent_batches.push(position + *at as u64, *header);
        }
        if !synchronous {
            // Spawned last, as it takes the record set: the task runs only once this one yields.
            let write = Self::write_in_order(
                Rc::clone(&self.log),
                records,
                position,
                expected_at_least,
                Rc::clone(&self.written),
                self.in_flight.back().cloned(),
                done.clone(),
            );
            glommio::spawn_local(write).detach();
            self.in_flight.push_back(done.clone());
        }
        self.size_bytes += set_bytes as u64;
        self.next_offset = expected_at_least;
        self.unflushed = true;
        let pending = self.offset_index.pending_entries().max(self.time_index.pending_entries());
        if pending >= PENDING_ENTRIES_WRITE_THRESHOLD {
            self.write_index_entries().await?;
        }
        Ok(done)
    }

    /// Keeps the file's blocks reserved ahead of the appends: once they come within half a
    /// step of the reserved end, reserves on to a step past `end` (not past `segment.bytes`).
    /// One reservation at a time, on glommio's blocking thread; appends do not wait for it.
    async fn reserve_ahead(&mut self, config: &LogConfig, end: u64) -> Result<()> {
        if self.reservation.as_ref().is_some_and(ReservationInFlight::is_settled) {
            if let Some(settled) = self.reservation.take() {
                self.settle(settled).await?;
            }
        }
        let step = config.preallocate_step_bytes;
        if step == 0
            || self.reservation_failed
            || self.reservation.is_some()
            || end + step / 2 <= self.reserved_bytes
        {
            return Ok(());
        }
        let from = self.reserved_bytes.max(self.size_bytes);
        let to = end.saturating_add(step).min(u64::from(config.segment_bytes));
        if to <= from {
            return Ok(());
        }
        match duplicate_descriptor(&*self.log) {
            Ok(descriptor) => {
                self.allocated_past_end = true;
                self.reservation = Some(ReservationInFlight::start(descriptor, from, to));
            }
            Err(error) => {
                tracing::debug!(path = ?self.log_path, %error, "no descriptor to reserve log blocks with");
                self.reservation_failed = true;
            }
        }
        Ok(())
    }

    /// Takes in what a reservation came to. One that failed ends reserving for this segment,
    /// and what it kept is given back: ext4 keeps what a reservation got before it ran out of
    /// space, the disk's last free blocks, which the indexes and every other partition need.
    /// With no write in flight the file's size is `size_bytes`, so truncating to it frees them
    /// now; otherwise a write may still be growing the file, and sealing frees them.
    async fn settle(&mut self, reservation: ReservationInFlight) -> Result<()> {
        let (end, outcome) = reservation.finish().await;
        match outcome {
            Ok(()) => self.reserved_bytes = self.reserved_bytes.max(end),
            Err(error) => {
                tracing::debug!(path = ?self.log_path, %error, "reserving log blocks failed; writing without reservation");
                self.reservation_failed = true;
                if self.in_flight.is_empty() {
                    self.log.truncate(self.size_bytes).await?;
                    self.allocated_past_end = false;
                }
            }
        }
        Ok(())
    }

    /// Releases the blocks reserved past the file's end: truncating a file to its own size
    /// frees them.
    async fn release_preallocated(&mut self) -> Result<()> {
        if self.allocated_past_end {
            self.log.truncate(self.size_bytes).await?;
            self.allocated_past_end = false;
            self.reserved_bytes = 0;
        }
        Ok(())
    }

    /// Writes a small append from the shard's thread; every earlier write is done, so the
    /// watermark moves at once. A failure fails the segment, as in [`Self::write_in_order`].
    fn write_now(
        &self,
        records: &PlacedRecords,
        position: u64,
        next_offset: i64,
        done: &WriteDone,
    ) -> Result<()> {
        assert_eq!(self.written.bytes.get(), position, "a synchronous write follows every earlier one");
        if let Err(e) = write_ring::pwrite_all(self.log.as_raw_fd(), records, position) {
            tracing::error!(position, error = %e, "log write failed");
            self.written.failed.set(true);
            done.0.close();
            return Err(e.into());
        }
        self.written.bytes.set(position + records.len_bytes() as u64);
        self.written.next_offset.set(next_offset);
        done.0.signal(1);
        Ok(())
    }

    /// One append's write task: write, then wait for the previous append's write, then move
    /// the watermark — so the watermark and every [`WriteDone`] advance in append order.
    async fn write_in_order(
        log: Rc<BufferedFile>,
        records: PlacedRecords,
        position: u64,
        next_offset: i64,
        written: Rc<Written>,
        previous: Option<WriteDone>,
        done: WriteDone,
    ) {
        let end = position + records.len_bytes() as u64;
        let result = write_ring::write_all_at(log, records, position).await;
        let earlier_ok = match &previous {
            Some(previous) => previous.wait().await.is_ok(),
            None => true,
        };
        match result {
            Ok(()) if earlier_ok && !written.failed.get() => {
                written.bytes.set(end);
                written.next_offset.set(next_offset);
                done.0.signal(1);
            }
            Ok(()) => {
                written.failed.set(true);
                done.0.close();
            }
            Err(e) => {
                tracing::error!(position, error = %e, "log write failed");
                written.failed.set(true);
                done.0.close();
            }
        }
    }

    fn check_not_failed(&self) -> Result<()> {
        if self.written.failed.get() {
            let message = format!("a write to {:?} failed; reopen the log to recover", self.log_path);
            return Err(std::io::Error::other(message).into());
        }
        Ok(())
    }

    /// Waits until every write in flight reached the page cache, and the block reservation in
    /// flight is settled.
    pub(crate) async fn drain(&mut self) -> Result<()> {
        if let Some(last) = self.in_flight.back().cloned() {
            last.wait().await?;
        }
        self.in_flight.clear();
        if let Some(reservation) = self.reservation.take() {
            self.settle(reservation).await?;
        }
        self.check_not_failed()?;
        assert_eq!(self.written_bytes(), self.size_bytes);
        Ok(())
    }

    async fn write_index_entries(&mut self) -> Result<()> {
        self.offset_index.write_pending().await?;
        self.time_index.write_pending().await
    }

    /// The segment takes no more appends for now (roll, close, end of recovery): record its
    /// largest timestamp as the final time-index entry, as Kafka does, and write the indexes.
    pub(crate) async fn seal(&mut self) -> Result<()> {
        self.drain().await?;
        // Only the active segment's tail is read often enough to be worth the memory.
        self.recent_batches.clear();
        self.release_preallocated().await?;
        if self.max_timestamp > NO_TIMESTAMP {
            self.time_index.maybe_append(self.max_timestamp, self.offset_of_max_timestamp, true);
        }
        self.unflushed |= self.offset_index.pending_entries() + self.time_index.pending_entries() > 0;
        self.write_index_entries().await
    }

    /// Writes pending index entries and fdatasyncs the three files concurrently.
    pub(crate) async fn flush(&mut self) -> Result<()> {
        self.drain().await?;
        self.unflushed = false;
        self.write_index_entries().await?;
        let (log, (index, time_index)) = futures_lite::future::zip(
            self.log.fdatasync(),
            futures_lite::future::zip(self.offset_index.sync(), self.time_index.sync()),
        )
        .await;
        if let Err(e) = log.map_err(LogError::from).and(index).and(time_index) {
            self.unflushed = true;
            return Err(e);
        }
        Ok(())
    }

    /// Drops every batch whose last offset is >= `offset` (a batch holding `offset` goes
    /// whole: batches are never split). Returns the new end offset.
    pub(crate) async fn truncate_to(&mut self, config: &LogConfig, offset: i64) -> Result<i64> {
        self.drain().await?;
        let Some((position, header)) = self.find_batch(offset).await? else {
            return Ok(self.next_offset);
        };
        self.log.truncate(position).await?;
        self.size_bytes = position;
        // Shrinking the file freed every block past its new end.
        self.reserved_bytes = 0;
        self.allocated_past_end = false;
        self.mark_all_written();
        self.unflushed = true;
        self.offset_index.truncate_to_position(position).await?;
        self.time_index.truncate_to_offset(header.base_offset).await?;
        if let Err(reason) = self.load_tail(config, self.base_offset, None).await? {
            tracing::warn!(segment = ?self.log_path, %reason, "rebuilding indexes after truncation");
            if let Some(cut) = self.recover(config, self.base_offset, None).await? {
                tracing::warn!(segment = ?self.log_path, ?cut, "truncated a corrupt tail");
            }
        }
        if self.is_empty() {
            self.rolling_timestamp_ms = None;
        }
        Ok(self.next_offset)
    }

    /// Position and header of the first batch whose last offset is >= `offset`; `None` when
    /// the segment ends before `offset`.
    pub(crate) async fn find_batch(&self, offset: i64) -> Result<Option<(u64, BatchHeader)>> {
        let written_bytes = self.written_bytes();
        if offset >= self.written_next_offset() {
            return Ok(None);
        }
        if let Some((position, header)) = self.recent_batches.find(offset) {
            // The first batch at or past an offset below the written end is itself written.
            debug_assert!(position + header.size_bytes as u64 <= written_bytes);
            return Ok(Some((position, header)));
        }
        let start = self.offset_index.lookup(offset).map_or(0, |(_, position)| position as u64);
        let mut reader = SegmentReader::new(&self.log, written_bytes, HEADER_WINDOW_BYTES);
        let mut position = start;
        while position < written_bytes {
            let header = reader.stored_header_at(position).await?;
            if header.last_offset() >= offset {
                return Ok(Some((position, header)));
            }
            position += header.size_bytes as u64;
        }
        Ok(None)
    }

    /// The end of the longest run of whole batches starting at `start_position` that ends at or
    /// before `limit_position` and spans at most `max_bytes`; `start_position` when not even
    /// the first batch fits. Walks headers only from the index entry nearest that end.
    pub(crate) async fn batches_end(
        &self,
        start_position: u64,
        limit_position: u64,
        max_bytes: u64,
    ) -> Result<u64> {
        let budget_end = start_position.saturating_add(max_bytes);
        if budget_end >= limit_position {
            return Ok(limit_position);
        }
        let walk_from =
            self.offset_index.position_floor(budget_end).map_or(0, |p| p as u64).max(start_position);
        let mut reader = SegmentReader::new(&self.log, self.written_bytes(), HEADER_WINDOW_BYTES);
        let mut position = walk_from;
        while position < limit_position {
            let header = reader.stored_header_at(position).await?;
            if position + header.size_bytes as u64 > budget_end {
                break;
            }
            position += header.size_bytes as u64;
        }
        Ok(position)
    }

    /// The first batch (position and header) whose max timestamp is >= `timestamp` and whose
    /// last offset is >= `min_offset`.
    pub(crate) async fn find_by_timestamp(
        &self,
        timestamp: i64,
        min_offset: i64,
    ) -> Result<Option<BatchHeader>> {
        let from_offset =
            self.time_index.lookup(timestamp).map_or(self.base_offset, |(_, o)| o).max(min_offset);
        let Some((mut position, _)) = self.find_batch(from_offset).await? else { return Ok(None) };
        let written_bytes = self.written_bytes();
        let mut reader = SegmentReader::new(&self.log, written_bytes, HEADER_WINDOW_BYTES);
        while position < written_bytes {
            let header = reader.stored_header_at(position).await?;
            if header.max_timestamp >= timestamp && header.last_offset() >= min_offset {
                return Ok(Some(header));
            }
            position += header.size_bytes as u64;
        }
        Ok(None)
    }

    /// Renames the three files to `*.deleted` and closes them (open file regions keep the log
    /// readable). Returns the new paths.
    pub(crate) async fn rename_to_deleted(self) -> Result<Vec<PathBuf>> {
        let mut deleted = Vec::with_capacity(3);
        for path in [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
        ] {
            let mut name = path.into_os_string();
            let from = PathBuf::from(&name);
            name.push(".deleted");
            let to = PathBuf::from(name);
            glommio::io::rename(&from, &to).await?;
            deleted.push(to);
        }
        self.close_files().await?;
        Ok(deleted)
    }

    /// Removes the three files at once.
    pub(crate) async fn remove(self) -> Result<()> {
        let paths = [
            self.log_path.clone(),
            self.offset_index.path().to_path_buf(),
            self.time_index.path().to_path_buf(),
        ];
        self.close_files().await?;
        for path in paths {
            remove_if_exists(&path).await?;
        }
        Ok(())
    }

    /// Seals and writes the indexes, then closes every file.
    pub(crate) async fn close(mut self) -> Result<()> {
        self.seal().await?;
        self.close_files().await
    }

    /// Closes the files of a segment whose `.log` was replaced by the cleaner's output (open
    /// file regions keep the old bytes readable).
    ///
    /// The swap unlinked the old `.log` and its indexes, so their last close frees their
    /// blocks: on a file system mounted with `discard` that is a synchronous discard of the
    /// whole segment (about 0.2 s per GiB written on this project's test machines), which would
    /// stall every partition of the shard. So the last descriptors are duplicates closed on
    /// glommio's blocking thread, and the shard does not wait for them. A fetch still sending
    /// from the old file keeps its own reference; if that one is released last, its holder
    /// frees the blocks.
    pub(crate) async fn close_replaced(self) -> Result<()> {
        let duplicated = duplicate_descriptor(&*self.log).and_then(|log| {
            Ok([log, self.offset_index.duplicate_descriptor()?, self.time_index.duplicate_descriptor()?])
        });
        let last_references = match duplicated {
            Ok(descriptors) => descriptors,
            Err(e) => {
                // Out of descriptors, say: the swap is done, so close here rather than fail it.
                tracing::warn!(path = ?self.log_path, error = %e, "replaced segment closed on the shard");
                return self.close_files().await;
            }
        };
        self.close_files().await?;
        let release = glommio::executor().spawn_blocking(move || drop(last_references));
        glommio::spawn_local(release).detach();
        Ok(())
    }

    async fn close_files(self) -> Result<()> {
        self.offset_index.close().await?;
        self.time_index.close().await?;
        // A file region still being sent keeps the log open; its last holder closes it.
        if let Ok(log) = Rc::try_unwrap(self.log) {
            log.close().await?;
        }
        Ok(())
    }
}

/// Why a batch with `header` cannot follow offset `floor` in a segment based at `base_offset`
/// that must end before `max_offset_exclusive`, if it cannot.
fn offset_problem(
    header: &BatchHeader,
    floor: i64,
    base_offset: i64,
    max_exclusive: Option<i64>,
) -> Option<String> {
    if header.base_offset < floor {
        return Some(format!("batch at offset {} does not follow offset {floor}", header.base_offset));
    }
    if header.last_offset() - base_offset > i32::MAX as i64 {
        return Some(format!(
            "batch offset {} too far from the segment base {base_offset}",
            header.last_offset()
        ));
    }
    if max_exclusive.is_some_and(|max| header.last_offset() >= max) {
        return Some(format!("batch offset {} overlaps the next segment", header.last_offset()));
    }
    None
}

/// Bytes of disk the file holds, reserved blocks past its end included.
fn allocated_bytes(file: &impl AsRawFd) -> std::io::Result<u64> {
    // SAFETY: `fstat` writes into `stat`, which is valid for writes, on an open descriptor.
    let mut stat: libc::stat = unsafe { std::mem::zeroed() };
    if unsafe { libc::fstat(file.as_raw_fd(), &mut stat) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // `st_blocks` counts 512-byte units whatever the file system's block size.
    Ok(stat.st_blocks as u64 * 512)
}

/// An independent descriptor of an open file: closing it, or the original, leaves the other.
pub(crate) fn duplicate_descriptor(
    file: &impl std::os::fd::AsRawFd,
) -> std::io::Result<std::os::fd::OwnedFd> {
    // SAFETY: the descriptor belongs to `file`, which is open for the whole borrow.
    unsafe { std::os::fd::BorrowedFd::borrow_raw(file.as_raw_fd()) }.try_clone_to_owned()
}

pub(crate) async fn remove_if_exists(path: &Path) -> Result<()> {
    match glommio::io::remove(path).await {
        Ok(()) => Ok(()),
        Err(e) => {
            let e = std::io::Error::from(e);
            if e.kind() == std::io::ErrorKind::NotFound {
                Ok(())
            } else {
                Err(e.into())
            }
        }
    }
}

enum HeaderStep {
    Batch(BatchHeader),
    End,
    Bad(String),
}

/// Reads a segment in windows so that walking many small batches costs few reads, and never
/// reads past `end_position` whatever a length field says.
///
/// A window that is in the page cache is read with one `preadv2(RWF_NOWAIT)` on the shard's
/// thread; only when the kernel says it would block (pages not cached) does the read go
/// through io_uring. Fetches walk batch headers one window each: through io_uring every window
/// cost a submission, a completion and a task wake-up, and a fetch of 100 partitions of small
/// batches spent most of the broker's CPU in that machinery (2.9 CPU-s per GB drained against
/// 0.47 for 16 partitions of large batches).
struct SegmentReader<'f> {
    file: &'f BufferedFile,
    end_position: u64,
    window_bytes: usize,
    window_start: u64,
    window: Option<Window>,
}

/// Windows up to this size are first tried from the page cache without io_uring.
const CACHED_READ_BYTES_MAX: usize = 64 * 1024;

enum Window {
    Cached(Vec<u8>),
    Read(ReadResult),
}

impl Window {
    fn bytes(&self) -> &[u8] {
        match self {
            Window::Cached(bytes) => bytes,
            Window::Read(read) => read,
        }
    }
}

/// The `len` bytes at `position` if the page cache holds all of them, read without blocking;
/// `None` when any is not cached, the file is shorter, or the read failed (the caller then
/// reads through io_uring, which reports real errors).
fn read_cached(file: &BufferedFile, position: u64, len: usize) -> Option<Vec<u8>> {
    if len > CACHED_READ_BYTES_MAX {
        return None;
    }
    let offset = libc::off_t::try_from(position).ok()?;
    let mut buf = vec![0u8; len];
    let iov = libc::iovec { iov_base: buf.as_mut_ptr().cast(), iov_len: len };
    // SAFETY: `iov` describes `buf`, which outlives the call; the descriptor belongs to `file`,
    // borrowed for the duration of the call.
    let n = unsafe { libc::preadv2(file.as_raw_fd(), &iov, 1, offset, libc::RWF_NOWAIT) };
    (usize::try_from(n).ok()? == len).then_some(buf)
}

impl<'f> SegmentReader<'f> {
    fn new(file: &'f BufferedFile, end_position: u64, window_bytes: usize) -> Self {
        SegmentReader { file, end_position, window_bytes, window_start: 0, window: None }
    }

    /// The `len` bytes at `position`; `None` when they would extend past the end or the file
    /// turned out shorter.
    async fn bytes(&mut self, position: u64, len: usize) -> Result<Option<&[u8]>> {
        let end = position.saturating_add(len as u64);
        if end > self.end_position {
            return Ok(None);
        }
        let window_end = self.window_start + self.window.as_ref().map_or(0, |w| w.bytes().len() as u64);
        if self.window.is_none() || position < self.window_start || end > window_end {
            let want = (len.max(self.window_bytes) as u64).min(self.end_position - position) as usize;
            let window = match read_cached(self.file, position, want) {
                Some(bytes) => Window::Cached(bytes),
                None => Window::Read(self.file.read_at(position, want).await?),
            };
            self.window_start = position;
            self.window = Some(window);
        }
        let Some(window) = self.window.as_ref() else { return Ok(None) };
        let at = (position - self.window_start) as usize;
        Ok(window.bytes().get(at..at + len))
    }

    async fn header_at(&mut self, position: u64) -> Result<HeaderStep> {
        if position >= self.end_position {
            return Ok(HeaderStep::End);
        }
        let Some(bytes) = self.bytes(position, BATCH_HEADER_BYTES).await? else {
            return Ok(HeaderStep::Bad("partial batch header".to_string()));
        };
        let header = match BatchHeader::parse(bytes) {
            Ok(header) => header,
            Err(e) => return Ok(HeaderStep::Bad(e.to_string())),
        };
        if position + header.size_bytes as u64 > self.end_position {
            return Ok(HeaderStep::Bad(format!("batch of {} bytes extends past the end", header.size_bytes)));
        }
        Ok(HeaderStep::Batch(header))
    }

    /// A header of bytes this log validated and wrote: anything else means the file was
    /// changed under the log, an I/O error, never a panic.
    async fn stored_header_at(&mut self, position: u64) -> Result<BatchHeader> {
        match self.header_at(position).await? {
            HeaderStep::Batch(header) => Ok(header),
            HeaderStep::End => Err(invalid_data(format!("unexpected end of segment at position {position}"))),
            HeaderStep::Bad(reason) => Err(invalid_data(format!("at position {position}: {reason}"))),
        }
    }
}

fn invalid_data(message: String) -> LogError {
    LogError::Io(std::io::Error::new(std::io::ErrorKind::InvalidData, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run<F, Fut>(body: F)
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        glommio::LocalExecutorBuilder::default().spawn(body).expect("executor").join().expect("test body");
    }

    #[test]
    fn cached_reads_return_exactly_the_bytes_or_leave_it_to_io_uring() {
        run(|| async {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("00000000000000000000.log");
            let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
            std::fs::write(&path, &data).unwrap();
            let file = BufferedFile::open(&path).await.unwrap();
            // Just written through the page cache: served without io_uring, byte for byte.
            assert_eq!(read_cached(&file, 100, 4096).as_deref(), Some(&data[100..4196]));
            // Past the end of the file (a short read), or larger than a cached read may be:
            // nothing, and the reader goes through io_uring instead.
            assert_eq!(read_cached(&file, 99_000, 4096), None);
            assert_eq!(read_cached(&file, 0, CACHED_READ_BYTES_MAX + 1), None);
            // The reader gives the same bytes whichever way its windows are read: 4 KiB windows
            // from the page cache, windows too large for that through io_uring.
            for window_bytes in [4096, CACHED_READ_BYTES_MAX + 1] {
                let mut reader = SegmentReader::new(&file, data.len() as u64, window_bytes);
                for (i, (position, len)) in
                    [(0u64, 61usize), (5_000, 3_000), (99_990, 10), (90_000, 1_000)].into_iter().enumerate()
                {
                    let got = reader.bytes(position, len).await.unwrap().map(<[u8]>::to_vec);
                    assert_eq!(got.as_deref(), Some(&data[position as usize..position as usize + len]));
                    if i == 0 {
                        let cached = matches!(reader.window, Some(Window::Cached(_)));
                        assert_eq!(cached, window_bytes <= CACHED_READ_BYTES_MAX);
                    }
                }
                assert_eq!(reader.bytes(99_999, 2).await.unwrap(), None, "never past end_position");
            }
            file.close().await.unwrap();
        });
    }
}
