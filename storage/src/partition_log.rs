//! `PartitionLog`: one partition's log — a directory `<log dir>/<topic>-<partition>/` of
//! [`LogSegment`]s in Kafka's layout, with offsets assignment, reads as file regions for
//! `sendfile`, truncation, retention, an explicit flush policy and recovery on open.
//!
//! It runs inside one glommio executor and is owned by one shard (invariant 1): `&mut self`
//! serialises every mutation, nothing is shared across threads.
//!
//! Invariants: segments are sorted by base offset and never empty as a list; the last one is
//! active. `log_start_offset <= recovery_point <= log_end_offset` and
//! `log_start_offset <= high_watermark <= log_end_offset`. Bytes up to the recovery point
//! were fdatasynced; recovery on open re-validates everything after it.

use std::os::unix::io::{AsRawFd, RawFd};
use std::path::{Path, PathBuf};
use std::rc::Rc;

use bytes::Bytes;
use glommio::io::{BufferedFile, Directory};

use crate::log_cleaner::{cleaned_path, swap_path, CleanPlan, CleanStats, CleanedSegments, SourceSegment};
use crate::log_config::LogConfig;
use crate::log_error::{LogError, Result};
use crate::log_segment::{
    remove_if_exists, LogSegment, WriteDone, INDEX_FILE_SUFFIX, LOG_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX,
};
use crate::placed_records::PlacedRecords;
use crate::record_batch::{
    batch_size_at, rewrite, BatchError, BatchHeader, BatchIter, TimestampType, BATCH_HEADER_BYTES,
};
use crate::time_index::NO_TIMESTAMP;

/// Suffix of segment files waiting for `file.delete.delay.ms` before removal.
pub const DELETED_FILE_SUFFIX: &str = ".deleted";
/// Suffix of a log cleaner's unfinished output: discarded on open.
pub const CLEANED_FILE_SUFFIX: &str = ".cleaned";
/// Suffix of a log cleaner's finished output not yet swapped in: completed on open.
pub const SWAP_FILE_SUFFIX: &str = ".swap";

/// The result of an append, what a produce response reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendInfo {
    pub base_offset: i64,
    pub last_offset: i64,
    pub batch_count: usize,
    pub size_bytes: usize,
    /// The largest batch max timestamp appended, and the last offset of its batch.
    pub max_timestamp: i64,
    pub offset_of_max_timestamp: i64,
    /// The broker's clock when the topic uses `LogAppendTime` (Kafka's `log_append_time_ms`).
    pub log_append_time_ms: Option<i64>,
    pub log_start_offset: i64,
}

/// A byte range of a segment's `.log` on batch boundaries. It holds the file open, so it stays
/// valid for `sendfile` after the segment is rolled, truncated or deleted (a truncation
/// shortens what is there to send; the sender must handle a short `sendfile`).
#[derive(Debug, Clone)]
pub struct FileRegion {
    file: Rc<BufferedFile>,
    pub position: u64,
    pub length_bytes: u64,
    /// Base offset of the region's first batch (may precede the offset asked for).
    pub base_offset: i64,
}

impl FileRegion {
    pub fn raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// Copies the region into memory: for consumers that cannot `sendfile` (TLS, tools,
    /// tests).
    pub async fn read_bytes(&self) -> Result<Vec<u8>> {
        let bytes = self.file.read_at(self.position, self.length_bytes as usize).await?;
        Ok(bytes.to_vec())
    }
}

/// What a read returns: regions in offset order (one per segment touched) and the log's
/// offsets at the time of the read, for the fetch response.
#[derive(Debug, Clone)]
pub struct ReadInfo {
    pub regions: Vec<FileRegion>,
    pub log_start_offset: i64,
    pub high_watermark: i64,
    pub log_end_offset: i64,
}

impl ReadInfo {
    pub fn size_bytes(&self) -> u64 {
        self.regions.iter().map(|r| r.length_bytes).sum()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimestampAndOffset {
    pub timestamp: i64,
    pub offset: i64,
}

#[derive(Debug)]
struct PendingDeletion {
    paths: Vec<PathBuf>,
    delete_at_ms: i64,
}

#[derive(Debug)]
pub struct PartitionLog {
    dir: PathBuf,
    dir_handle: Directory,
    config: LogConfig,
    segments: Vec<LogSegment>,
    log_start_offset: i64,
    high_watermark: i64,
    recovery_point: i64,
    oldest_unflushed_append_ms: Option<i64>,
    /// Files were created, renamed or removed since the last flush: fsync the directory.
    dir_needs_sync: bool,
    pending_deletions: Vec<PendingDeletion>,
    /// The log cleaner's checkpoint: offsets below it were cleaned. The owner persists it in
    /// `cleaner-offset-checkpoint` and restores it with `set_first_uncleaned_offset`; without
    /// that the whole log counts as dirty after an open.
    first_uncleaned_offset: i64,
}

impl PartitionLog {
    /// Opens (creating when absent) the partition directory and recovers it: leftovers of
    /// deletion and cleaning are cleaned up, segments from the one holding `recovery_point`
    /// on (all of them when `None`) are re-validated batch by batch, the log is cut at the
    /// first torn or corrupt batch and every later segment dropped, and indexes that are
    /// missing or inconsistent are rebuilt. A damaged tail never makes this fail.
    pub async fn open(
        partition_dir: impl AsRef<Path>,
        config: LogConfig,
        recovery_point: Option<i64>,
        log_start_offset: Option<i64>,
    ) -> Result<Self> {
        config.validate()?;
        let dir = partition_dir.as_ref().to_path_buf();
        let dir_handle = Directory::create(&dir).await?;
        let listing = list_dir(&dir).await?;
        let mut segments = Vec::with_capacity(listing.log_bases.len());
        for &base_offset in &listing.log_bases {
            segments.push(LogSegment::open(&dir, base_offset, &config).await?);
        }
        complete_swaps(&config, &mut segments, &listing.swapped_bases).await?;
        let revalidated = recover_segments(&config, &mut segments, &listing, recovery_point).await?;
        if revalidated > 0 {
            tracing::info!(?dir, revalidated_segments = revalidated, "recovery scan re-validated segments");
        }

        let first_base = segments.first().map(LogSegment::base_offset);
        let log_start = log_start_offset.unwrap_or(0).max(first_base.unwrap_or(0));
        let log_end = segments.last().map_or(log_start, LogSegment::next_offset);
        if segments.is_empty() || log_start > log_end {
            if !segments.is_empty() {
                tracing::warn!(?dir, log_start, log_end, "log start is past the log end: starting empty");
            }
            for segment in segments.drain(..) {
                segment.remove().await?;
            }
            segments.push(LogSegment::create(&dir, log_start, &config, None).await?);
        }
        if let Some(active) = segments.last_mut() {
            active.find_reservation_left_by_a_crash()?;
        }
        let log_end = segments.last().map_or(log_start, LogSegment::next_offset);
        let log = PartitionLog {
            dir,
            dir_handle,
            config,
            segments,
            log_start_offset: log_start,
            high_watermark: log_start,
            recovery_point: recovery_point.unwrap_or(log_start).clamp(log_start, log_end),
            oldest_unflushed_append_ms: None,
            dir_needs_sync: true,
            pending_deletions: Vec::new(),
            first_uncleaned_offset: log_start,
        };
        log.check_invariants();
        Ok(log)
    }

    fn check_invariants(&self) {
        assert!(!self.segments.is_empty());
        assert!(self.segments.windows(2).all(|w| w[0].base_offset() < w[1].base_offset()));
        assert!(self.segments.windows(2).all(|w| w[0].next_offset() <= w[1].base_offset()));
        let log_end = self.log_end_offset();
        assert!(self.log_start_offset <= self.recovery_point && self.recovery_point <= log_end);
        assert!(self.log_start_offset <= self.high_watermark && self.high_watermark <= log_end);
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
    /// Applies new topic settings (AlterConfigs) from the next append on: rolls, retention and
    /// flushing read the config each time, so nothing already written changes.
    pub fn set_config(&mut self, config: LogConfig) -> Result<()> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    pub fn config(&self) -> &LogConfig {
        &self.config
    }
    pub fn segments(&self) -> &[LogSegment] {
        &self.segments
    }
    pub fn log_start_offset(&self) -> i64 {
        self.log_start_offset
    }
    /// The offset the next append gets (appends still being written included).
    pub fn log_end_offset(&self) -> i64 {
        self.active().next_offset()
    }
    /// The offset after the last batch that reached the page cache: reads stop here. Equal to
    /// the log end unless [`PartitionLog::submit_append`] writes are in flight.
    pub fn readable_end_offset(&self) -> i64 {
        self.active().written_next_offset()
    }
    pub fn high_watermark(&self) -> i64 {
        self.high_watermark
    }
    pub fn recovery_point(&self) -> i64 {
        self.recovery_point
    }
    /// Bytes of every segment.
    pub fn size_bytes(&self) -> u64 {
        self.segments.iter().map(LogSegment::size_bytes).sum()
    }

    /// Sets the high watermark, clamped to `[log start, log end]`; returns the value set.
    pub fn set_high_watermark(&mut self, offset: i64) -> i64 {
        self.high_watermark = offset.clamp(self.log_start_offset, self.log_end_offset());
        self.high_watermark
    }

    fn active(&self) -> &LogSegment {
        let Some(active) = self.segments.last() else { unreachable!("a log always has a segment") };
        active
    }

    fn active_mut(&mut self) -> &mut LogSegment {
        let Some(active) = self.segments.last_mut() else { unreachable!("a log always has a segment") };
        active
    }

    /// Appends a producer's record set as leader and waits until it is in the page cache;
    /// [`PartitionLog::submit_append`] does the work.
    pub async fn append(
        &mut self,
        records: impl Into<Bytes>,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<AppendInfo> {
        let (info, written) = self.submit_append(records, leader_epoch, now_ms).await?;
        written.wait().await?;
        Ok(info)
    }

    /// Appends a producer's record set as leader: validates every batch (CRC, one record per
    /// offset, record framing, `max_message_bytes`) before touching anything, then assigns
    /// offsets by rewriting `baseOffset` and `partitionLeaderEpoch` (and `maxTimestamp` + CRC
    /// for `LogAppendTime`) in copies of the batch headers, and writes the producer's bytes
    /// from where they are, the request frame — no copy ([`PlacedRecords`]).
    /// Returns once the write is submitted, so a shard can keep many appends in flight;
    /// acknowledge the producer when the returned [`WriteDone`] resolves.
    pub async fn submit_append(
        &mut self,
        records: impl Into<Bytes>,
        leader_epoch: i32,
        now_ms: i64,
    ) -> Result<(AppendInfo, WriteDone)> {
        let records = records.into();
        self.check_set_size(&records)?;
        let log_append_time_ms =
            (self.config.message_timestamp_type == TimestampType::LogAppendTime).then_some(now_ms);
        let placed = place_as_leader(
            records,
            self.log_end_offset(),
            leader_epoch,
            log_append_time_ms,
            self.config.max_message_bytes as usize,
        )?;
        self.append_placed(placed, now_ms, log_append_time_ms).await
    }

    /// Appends batches that already carry their offsets (a follower copying its leader):
    /// validates every batch (CRC, `max_message_bytes`) and that offsets increase from the
    /// log end on; writes them unchanged.
    pub async fn append_as_follower(&mut self, records: Vec<u8>, now_ms: i64) -> Result<AppendInfo> {
        self.check_set_size(&records)?;
        let mut expected_at_least = self.log_end_offset();
        let mut placed = Vec::new();
        for (index, item) in BatchIter::new(&records, self.config.max_message_bytes as usize).enumerate() {
            let (at, batch) = item.map_err(|source| LogError::InvalidBatch { index, source })?;
            batch.check_crc().map_err(|source| LogError::InvalidBatch { index, source })?;
            let header = BatchHeader::parse(batch.as_bytes())
                .map_err(|source| LogError::InvalidBatch { index, source })?;
            if header.base_offset < expected_at_least {
                return Err(LogError::UnexpectedAppendOffset {
                    base_offset: header.base_offset,
                    expected_at_least,
                });
            }
            expected_at_least = header.next_offset();
            placed.push((at, header));
        }
        let (Some((_, first)), Some((_, last))) = (placed.first(), placed.last()) else {
            return Err(LogError::EmptyRecordSet);
        };
        if last.last_offset() - first.base_offset > i32::MAX as i64 {
            return Err(LogError::OffsetSpanTooLarge {
                first_offset: first.base_offset,
                last_offset: last.last_offset(),
            });
        }
        let records = PlacedRecords::unchanged(Bytes::from(records), placed);
        let (info, written) = self.append_placed(records, now_ms, None).await?;
        written.wait().await?;
        Ok(info)
    }

    fn check_set_size(&self, records: &[u8]) -> Result<()> {
        if records.is_empty() {
            return Err(LogError::EmptyRecordSet);
        }
        // One record set goes into one segment, whose positions are signed 32-bit.
        let max_bytes = i32::MAX as usize;
        if records.len() > max_bytes {
            return Err(LogError::RecordSetTooLarge { size_bytes: records.len(), max_bytes });
        }
        Ok(())
    }

    async fn append_placed(
        &mut self,
        records: PlacedRecords,
        now_ms: i64,
        log_append_time_ms: Option<i64>,
    ) -> Result<(AppendInfo, WriteDone)> {
        let placed = records.batches();
        let (Some((_, first)), Some((_, last))) = (placed.first(), placed.last()) else {
            return Err(LogError::EmptyRecordSet);
        };
        let (base_offset, last_offset) = (first.base_offset, last.last_offset());
        let (mut max_timestamp, mut offset_of_max_timestamp) = (NO_TIMESTAMP, base_offset);
        for (_, header) in placed {
            if header.max_timestamp > max_timestamp {
                (max_timestamp, offset_of_max_timestamp) = (header.max_timestamp, header.last_offset());
            }
        }
        let batch_count = placed.len();
        let size_bytes = records.len_bytes();
        if self.active().should_roll(&self.config, size_bytes, last_offset, max_timestamp, now_ms) {
            self.roll(base_offset, now_ms).await?;
        }
        let config = self.config.clone();
        let written = self.active_mut().submit_append(&config, records, now_ms).await?;
        self.oldest_unflushed_append_ms.get_or_insert(now_ms);
        let info = AppendInfo {
            base_offset,
            last_offset,
            batch_count,
            size_bytes,
            max_timestamp,
            offset_of_max_timestamp,
            log_append_time_ms,
            log_start_offset: self.log_start_offset,
        };
        Ok((info, written))
    }

    /// Starts a new active segment at `base_offset`. An empty active segment is replaced
    /// rather than kept (a follower's first batch may start far past its base).
    async fn roll(&mut self, base_offset: i64, now_ms: i64) -> Result<()> {
        assert!(base_offset >= self.log_end_offset(), "a new segment starts at the log end or later");
        if self.active().is_empty() {
            if let Some(empty) = self.segments.pop() {
                empty.remove().await?;
            }
        } else {
            self.active_mut().seal().await?;
        }
        let segment = LogSegment::create(&self.dir, base_offset, &self.config, Some(now_ms)).await?;
        self.segments.push(segment);
        self.dir_needs_sync = true;
        Ok(())
    }

    /// Reads whole batches from `offset` on (the batch holding `offset` first), up to
    /// `max_bytes` and below `upper_bound_offset` (the high watermark for consumers, the log
    /// end for followers) and the readable end. With `min_one_batch` (KIP-74) the first batch is returned even when
    /// it is larger than `max_bytes`. `offset` outside `[log start, log end]` is
    /// `OffsetOutOfRange`; at the log end the result is empty.
    pub async fn read(
        &self,
        offset: i64,
        max_bytes: usize,
        upper_bound_offset: i64,
        min_one_batch: bool,
    ) -> Result<ReadInfo> {
        let log_end_offset = self.log_end_offset();
        if offset < self.log_start_offset || offset > log_end_offset {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset,
            });
        }
        let upper_bound = upper_bound_offset.min(self.readable_end_offset());
        let mut regions: Vec<FileRegion> = Vec::new();
        let mut remaining_bytes = max_bytes as u64;
        let mut cursor = offset;
        let first = self.segments.partition_point(|s| s.base_offset() <= offset).saturating_sub(1);
        for segment in &self.segments[first..] {
            if cursor >= upper_bound || segment.base_offset() >= upper_bound {
                break;
            }
            let Some((start, header)) = segment.find_batch(cursor).await? else { continue };
            if header.last_offset() >= upper_bound {
                break;
            }
            let limit = match segment.find_batch(upper_bound).await? {
                Some((position, _)) => position,
                None => segment.written_bytes(),
            };
            let mut end = segment.batches_end(start, limit, remaining_bytes).await?;
            if end == start {
                if !(min_one_batch && regions.is_empty()) {
                    break;
                }
                end = start + header.size_bytes as u64;
            }
            let region = FileRegion {
                file: Rc::clone(segment.log_file()),
                position: start,
                length_bytes: end - start,
                base_offset: header.base_offset,
            };
            remaining_bytes = remaining_bytes.saturating_sub(region.length_bytes);
            regions.push(region);
            if end < segment.written_bytes() {
                break;
            }
            cursor = segment.next_offset();
        }
        Ok(ReadInfo {
            regions,
            log_start_offset: self.log_start_offset,
            high_watermark: self.high_watermark,
            log_end_offset,
        })
    }

    /// The first batch whose max timestamp is >= `timestamp` (Kafka's ListOffsets by time),
    /// as its max timestamp and its base offset (or the log start, if later). Batch
    /// granularity: records inside a batch are not searched.
    pub async fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<TimestampAndOffset>> {
        for segment in &self.segments {
            if segment.max_timestamp() < timestamp || segment.next_offset() <= self.log_start_offset {
                continue;
            }
            if let Some(header) = segment.find_by_timestamp(timestamp, self.log_start_offset).await? {
                let offset = header.base_offset.max(self.log_start_offset);
                return Ok(Some(TimestampAndOffset { timestamp: header.max_timestamp, offset }));
            }
        }
        Ok(None)
    }

    /// The largest timestamp in the log and the last offset of the batch that first had it
    /// (Kafka's ListOffsets `MAX_TIMESTAMP`); `None` when no batch has a timestamp.
    pub fn max_timestamp_and_offset(&self) -> Option<TimestampAndOffset> {
        let mut best: Option<TimestampAndOffset> = None;
        for segment in &self.segments {
            if segment.max_timestamp() > best.map_or(NO_TIMESTAMP, |b| b.timestamp) {
                best = Some(TimestampAndOffset {
                    timestamp: segment.max_timestamp(),
                    offset: segment.offset_of_max_timestamp(),
                });
            }
        }
        best
    }

    /// Drops every batch whose last offset is >= `offset`, across segments, with their index
    /// entries (replication's truncation). A batch holding `offset` goes whole, so the log end
    /// may land below `offset`. Removed segments are deleted at once: readers holding a
    /// [`FileRegion`] keep their file open.
    pub async fn truncate_to(&mut self, offset: i64) -> Result<()> {
        if offset >= self.log_end_offset() {
            return Ok(());
        }
        self.active_mut().drain().await?;
        if offset <= self.segments[0].base_offset() {
            return self.truncate_fully_and_start_at(offset.max(0)).await;
        }
        while self.active().base_offset() > offset {
            if let Some(segment) = self.segments.pop() {
                segment.remove().await?;
            }
        }
        let config = self.config.clone();
        let log_end = self.active_mut().truncate_to(&config, offset).await?;
        self.dir_needs_sync = true;
        self.log_start_offset = self.log_start_offset.min(log_end);
        self.high_watermark = self.high_watermark.min(log_end);
        self.recovery_point = self.recovery_point.min(log_end);
        // Kafka's `maybeTruncateCheckpoint`: offsets appended again after the cut are dirty.
        self.first_uncleaned_offset = self.first_uncleaned_offset.min(log_end);
        self.check_invariants();
        Ok(())
    }

    async fn truncate_fully_and_start_at(&mut self, offset: i64) -> Result<()> {
        for segment in self.segments.drain(..) {
            segment.remove().await?;
        }
        self.segments.push(LogSegment::create(&self.dir, offset, &self.config, None).await?);
        self.dir_needs_sync = true;
        self.log_start_offset = offset;
        self.high_watermark = offset;
        self.recovery_point = offset;
        self.first_uncleaned_offset = offset;
        self.check_invariants();
        Ok(())
    }

    /// Kafka's DeleteRecords: advances the log start to `offset` (at most the high
    /// watermark) and deletes the segments entirely below it. Returns the new log start.
    pub async fn delete_records_before(&mut self, offset: i64, now_ms: i64) -> Result<i64> {
        if offset < 0 || offset > self.high_watermark {
            return Err(LogError::OffsetOutOfRange {
                offset,
                log_start_offset: self.log_start_offset,
                log_end_offset: self.log_end_offset(),
            });
        }
        if offset > self.log_start_offset {
            self.log_start_offset = offset;
            self.recovery_point = self.recovery_point.max(offset);
        }
        while self.segments.len() > 1 && self.segments[1].base_offset() <= self.log_start_offset {
            self.delete_oldest_segment(now_ms).await?;
        }
        self.check_invariants();
        Ok(self.log_start_offset)
    }

    /// Retention: deletes the oldest segments while they lie wholly below the log start, are
    /// older than `retention_ms` (by their largest timestamp), or the log is more than a
    /// segment larger than `retention_bytes` — never the active segment, never data at or
    /// above the high watermark. Returns how many segments were deleted.
    pub async fn delete_segments_for_retention(&mut self, now_ms: i64) -> Result<usize> {
        let mut deleted = 0;
        while self.oldest_is_deletable() && self.segments[1].base_offset() <= self.log_start_offset {
            self.delete_oldest_segment(now_ms).await?;
            deleted += 1;
        }
        if self.config.cleanup_policy.delete && self.config.retention_ms >= 0 {
            while self.oldest_is_deletable()
                && now_ms.saturating_sub(self.oldest_largest_timestamp()) > self.config.retention_ms
            {
                self.delete_oldest_segment(now_ms).await?;
                deleted += 1;
            }
        }
        if self.config.cleanup_policy.delete && self.config.retention_bytes >= 0 {
            let mut excess_bytes = self.size_bytes() as i64 - self.config.retention_bytes;
            while self.oldest_is_deletable() && excess_bytes >= self.segments[0].size_bytes() as i64 {
                excess_bytes -= self.segments[0].size_bytes() as i64;
                self.delete_oldest_segment(now_ms).await?;
                deleted += 1;
            }
        }
        if deleted > 0 {
            self.log_start_offset = self.log_start_offset.max(self.segments[0].base_offset());
            self.high_watermark = self.high_watermark.max(self.log_start_offset);
            self.recovery_point = self.recovery_point.max(self.log_start_offset);
        }
        self.check_invariants();
        Ok(deleted)
    }

    fn oldest_is_deletable(&self) -> bool {
        self.segments.len() > 1 && self.segments[1].base_offset() <= self.high_watermark
    }

    /// A segment's largest timestamp, or — when none of its batches has one — its file's
    /// modification time, as Kafka does.
    fn oldest_largest_timestamp(&self) -> i64 {
        let segment = &self.segments[0];
        if segment.max_timestamp() > NO_TIMESTAMP {
            return segment.max_timestamp();
        }
        let modified = std::fs::metadata(segment.log_path()).and_then(|m| m.modified());
        match modified.ok().and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok()) {
            Some(since_epoch) => since_epoch.as_millis() as i64,
            None => i64::MAX,
        }
    }

    async fn delete_oldest_segment(&mut self, now_ms: i64) -> Result<()> {
        assert!(self.segments.len() > 1, "the active segment is never deleted");
        let segment = self.segments.remove(0);
        tracing::info!(segment = ?segment.log_path(), "deleting segment");
        let paths = segment.rename_to_deleted().await?;
        self.dir_needs_sync = true;
        self.pending_deletions.push(PendingDeletion {
            paths,
            delete_at_ms: now_ms.saturating_add(self.config.file_delete_delay_ms),
        });
        if self.config.file_delete_delay_ms == 0 {
            self.remove_deleted_segments(now_ms).await?;
        }
        Ok(())
    }

    /// Removes the `*.deleted` files whose `file_delete_delay_ms` has passed; the owner calls
    /// this periodically. Returns how many segments' files were removed.
    pub async fn remove_deleted_segments(&mut self, now_ms: i64) -> Result<usize> {
        let mut removed = 0;
        while let Some(position) = self.pending_deletions.iter().position(|d| d.delete_at_ms <= now_ms) {
            let deletion = self.pending_deletions.swap_remove(position);
            for path in &deletion.paths {
                remove_if_exists(path).await?;
            }
            removed += 1;
        }
        Ok(removed)
    }

    /// Whether the flush policy asks for a flush now: `flush_messages` appended messages not
    /// yet flushed, or an unflushed append older than `flush_ms`.
    pub fn flush_due(&self, now_ms: i64) -> bool {
        let unflushed_messages = self.log_end_offset() - self.recovery_point;
        unflushed_messages >= self.config.flush_messages
            || self
                .oldest_unflushed_append_ms
                .is_some_and(|t| now_ms.saturating_sub(t) >= self.config.flush_ms)
    }

    /// Group commit: fdatasyncs every segment with unflushed bytes (rolled ones too) and the
    /// directory when segments were created or removed, then advances the recovery point to
    /// the log end. The shard calls it once per tick for each dirty log, however many
    /// appends happened.
    pub async fn flush(&mut self) -> Result<()> {
        let flushed_to = self.log_end_offset();
        for segment in self.segments.iter_mut().filter(|s| s.is_unflushed()) {
            segment.flush().await?;
        }
        if self.dir_needs_sync {
            self.dir_handle.sync().await?;
            self.dir_needs_sync = false;
        }
        self.recovery_point = self.recovery_point.max(flushed_to);
        self.oldest_unflushed_append_ms = None;
        Ok(())
    }

    /// How many leading segments the cleaner may touch: all but the active one, stopping at
    /// the first whose records are younger than `min_compaction_lag_ms`.
    fn cleanable_segment_count(&self, now_ms: i64) -> usize {
        let sealed = self.segments.len() - 1;
        let lag_ms = self.config.min_compaction_lag_ms;
        if lag_ms <= 0 {
            return sealed;
        }
        self.segments[..sealed]
            .iter()
            .position(|s| s.max_timestamp() > now_ms.saturating_sub(lag_ms))
            .unwrap_or(sealed)
    }

    fn dirty_start(&self) -> i64 {
        self.first_uncleaned_offset.max(self.log_start_offset)
    }

    /// The first offset the cleaner has not cleaned yet.
    pub fn first_uncleaned_offset(&self) -> i64 {
        self.dirty_start()
    }

    /// Kafka's cleanable ratio: bytes of the dirty segments (those holding offsets at or past
    /// the first uncleaned one) over bytes of every segment the cleaner may touch (not the
    /// active one, none younger than `min_compaction_lag_ms`); 0 when there is none.
    /// Segment granularity: a partly cleaned segment counts as dirty.
    pub fn cleanable_dirty_ratio(&self, now_ms: i64) -> f64 {
        let cleanable = &self.segments[..self.cleanable_segment_count(now_ms)];
        let dirty_start = self.dirty_start();
        let total: u64 = cleanable.iter().map(LogSegment::size_bytes).sum();
        let dirty: u64 =
            cleanable.iter().filter(|s| s.next_offset() > dirty_start).map(LogSegment::size_bytes).sum();
        if total == 0 {
            0.0
        } else {
            dirty as f64 / total as f64
        }
    }

    /// Whether the cleaner should run now (Kafka's `LogCleanerManager` rule): the policy
    /// includes `compact`, a cleanable segment holds dirty offsets, and either the dirty ratio
    /// is *above* `min_cleanable_dirty_ratio` or the compaction delay is positive.
    pub fn clean_due(&self, now_ms: i64) -> bool {
        if !self.config.cleanup_policy.compact {
            return false;
        }
        let dirty_start = self.dirty_start();
        let has_cleanable_dirty = self.segments[..self.cleanable_segment_count(now_ms)]
            .iter()
            .any(|s| s.next_offset() > dirty_start && !s.is_empty());
        has_cleanable_dirty
            && (self.cleanable_dirty_ratio(now_ms) > self.config.min_cleanable_dirty_ratio
                || self.max_compaction_delay_ms(now_ms) > 0)
    }

    /// Kafka's `maxCompactionDelay`: how far past `max_compaction_lag_ms` the oldest first
    /// batch timestamp of the dirty sealed segments is (0 when none is overdue). Segments
    /// without a timestamp do not count.
    pub fn max_compaction_delay_ms(&self, now_ms: i64) -> i64 {
        let dirty_start = self.dirty_start();
        let sealed = &self.segments[..self.segments.len() - 1];
        let earliest = sealed
            .iter()
            .filter(|s| s.next_offset() > dirty_start)
            .map(LogSegment::first_batch_timestamp)
            .filter(|t| *t > 0)
            .min();
        let clean_until_ms = now_ms.saturating_sub(self.config.max_compaction_lag_ms.max(0));
        match earliest {
            Some(t) if t < clean_until_ms => clean_until_ms - t,
            _ => 0,
        }
    }

    /// Restores the cleaner's checkpoint (`cleaner-offset-checkpoint`) after an open. As
    /// Kafka does, an offset below the log start counts from the log start and one past the
    /// log end (the log was truncated under it) is dropped: the whole log is dirty again.
    pub fn set_first_uncleaned_offset(&mut self, offset: i64) {
        self.first_uncleaned_offset = if offset > self.log_end_offset() {
            tracing::warn!(dir = ?self.dir, offset, "cleaner checkpoint past the log end: cleaning from the start");
            self.log_start_offset
        } else {
            offset.max(self.log_start_offset)
        };
    }

    /// Step 1 of a cleaning pass (see `log_cleaner`): what to clean, with the segments' files
    /// held open; `None` when no sealed segment holds dirty offsets.
    pub fn plan_clean(&self, now_ms: i64, dedupe_buffer_bytes: usize) -> Option<CleanPlan> {
        let count = self.cleanable_segment_count(now_ms);
        let dirty_start = self.dirty_start();
        let cleanable = &self.segments[..count];
        if !cleanable.iter().any(|s| s.next_offset() > dirty_start && !s.is_empty()) {
            return None;
        }
        let sources = cleanable
            .iter()
            .map(|s| SourceSegment {
                base_offset: s.base_offset(),
                next_offset: s.next_offset(),
                size_bytes: s.size_bytes(),
                file: Rc::clone(s.log_file()),
            })
            .collect();
        Some(CleanPlan {
            dir: self.dir.clone(),
            sources,
            dirty_start,
            first_uncleanable: self.segments[count].base_offset(),
            now_ms,
            delete_retention_ms: self.config.delete_retention_ms,
            dedupe_buffer_bytes,
            producer_last_offsets: std::collections::HashMap::new(),
        })
    }

    /// Step 3 of a cleaning pass: swaps the `.cleaned` outputs in, all at once (see
    /// [`PartitionLog::install_cleaned_step`], which this repeats).
    pub async fn install_cleaned(&mut self, mut cleaned: CleanedSegments) -> Result<CleanStats> {
        // Bounded: every step installs or discards at least one output.
        loop {
            if let Some(stats) = self.install_cleaned_step(&mut cleaned).await? {
                return Ok(stats);
            }
        }
    }

    /// Step 3 of a cleaning pass in bounded steps, so the owner can release its lock between
    /// them: each call swaps in the next `.cleaned` output (lowest offset first) and returns
    /// `Some(stats)` once the pass is complete. An output whose source segment is no longer
    /// in the log unchanged (same base offset and size: retention, DeleteRecords or a
    /// truncation got there first) ends the pass: it and the rest are discarded (`aborted`),
    /// and the cleaner's checkpoint does not move.
    ///
    /// One swap: the `.cleaned` file is renamed `.swap` (the segment's commit point; the
    /// directory is fsynced), the old indexes are removed, the `.swap` replaces the `.log`,
    /// and the segment is reopened with its indexes rebuilt from the new file.
    ///
    /// Crash safety: an open discards `.cleaned` files and completes a `.swap`, so a crash
    /// leaves a prefix of the pass's segments new and the rest old. That is consistent, and so
    /// is what readers see between two steps: the cleaner only drops a record superseded by a
    /// later one (or a tombstone whose older values were dropped from earlier segments), and
    /// earlier segments are swapped first. Readers holding a [`FileRegion`] of a replaced
    /// segment keep reading the old file.
    pub async fn install_cleaned_step(
        &mut self,
        cleaned: &mut CleanedSegments,
    ) -> Result<Option<CleanStats>> {
        let Some(output) = cleaned.outputs.first() else {
            let mut stats = cleaned.stats.clone();
            stats.segments_cleaned = cleaned.installed;
            if !stats.aborted {
                self.first_uncleaned_offset = self.first_uncleaned_offset.max(stats.cleaned_up_to);
            }
            if cleaned.installed > 0 {
                tracing::debug!(dir = ?self.dir, ?stats, "log cleaned");
            }
            return Ok(Some(stats));
        };
        let (base, source_size_bytes) = (output.base_offset, output.source_size_bytes);
        let sealed = &self.segments[..self.segments.len() - 1];
        let Some(index) =
            sealed.iter().position(|s| s.base_offset() == base && s.size_bytes() == source_size_bytes)
        else {
            cleaned.discard().await?;
            cleaned.outputs.clear();
            cleaned.stats.aborted = true;
            return Ok(None);
        };
        glommio::io::rename(cleaned_path(&self.dir, base), swap_path(&self.dir, base)).await?;
        cleaned.outputs.remove(0);
        self.dir_handle.sync().await?;
        for suffix in [INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX] {
            remove_if_exists(&self.dir.join(crate::log_segment::segment_file_name(base, suffix))).await?;
        }
        let log_path = self.dir.join(crate::log_segment::segment_file_name(base, LOG_FILE_SUFFIX));
        glommio::io::rename(swap_path(&self.dir, base), &log_path).await?;
        let config = self.config.clone();
        let mut segment = LogSegment::open(&self.dir, base, &config).await?;
        let min_offset = if index == 0 { 0 } else { self.segments[index - 1].next_offset() };
        let max_offset = self.segments.get(index + 1).map(LogSegment::base_offset);
        if let Some(cut) = segment.recover(&config, min_offset, max_offset).await? {
            tracing::error!(?log_path, ?cut, "a cleaned segment failed validation and was cut");
        }
        let old = std::mem::replace(&mut self.segments[index], segment);
        old.close_replaced().await?;
        self.dir_handle.sync().await?;
        cleaned.installed += 1;
        self.check_invariants();
        Ok(None)
    }

    /// A whole cleaning pass (plan, build, swap) with `&mut self` held throughout; it yields
    /// to the shard between batches. A shard that wants produce and fetch to go on during the
    /// pass runs the three steps itself and locks the log for the first and last only.
    pub async fn clean(&mut self, now_ms: i64, dedupe_buffer_bytes: usize) -> Result<CleanStats> {
        let Some(plan) = self.plan_clean(now_ms, dedupe_buffer_bytes) else {
            return Ok(CleanStats { cleaned_up_to: self.dirty_start(), ..CleanStats::default() });
        };
        let cleaned = plan.build().await?;
        self.install_cleaned(cleaned).await
    }

    /// Waits until every append's write has reached the page cache (without an fsync).
    pub async fn drain_writes(&mut self) -> Result<()> {
        self.active_mut().drain().await
    }

    /// Seals the active segment, flushes everything and closes every file: the files left
    /// behind need no recovery. `*.deleted` files still waiting are removed on the next open.
    pub async fn close(mut self) -> Result<()> {
        self.active_mut().seal().await?;
        self.flush().await?;
        for segment in self.segments.drain(..) {
            segment.close().await?;
        }
        self.dir_handle.close().await?;
        Ok(())
    }
}

/// The CPU part of a leader's append, before anything is written: validates every batch of a
/// producer's record set (CRC-32C, one record per offset, record framing, `max_batch_bytes`),
/// then assigns offsets from `next_offset` on by rewriting `baseOffset` and
/// `partitionLeaderEpoch` (and `maxTimestamp` + CRC with `log_append_time_ms`) in a copy of
/// each batch's header; the producer's bytes are never changed or copied ([`PlacedRecords`]).
/// Pure, so its instructions can be counted (`perf-reports/callgrind.sh`, case
/// `leader_append_16KiB_batch`).
pub fn place_as_leader(
    records: Bytes,
    next_offset: i64,
    leader_epoch: i32,
    log_append_time_ms: Option<i64>,
    max_batch_bytes: usize,
) -> Result<PlacedRecords> {
    let mut batch_count = 0;
    for (index, item) in BatchIter::new(&records, max_batch_bytes).enumerate() {
        batch_count = index + 1;
        let (_, batch) = item.map_err(|source| LogError::InvalidBatch { index, source })?;
        batch.check_crc().map_err(|source| LogError::InvalidBatch { index, source })?;
        if !batch.has_one_record_per_offset() {
            let source = BatchError::InconsistentRecordCount {
                last_offset_delta: batch.last_offset_delta(),
                record_count: batch.record_count(),
            };
            return Err(LogError::InvalidBatch { index, source });
        }
        batch.check_record_framing().map_err(|source| LogError::InvalidBatch { index, source })?;
    }
    let mut next_offset = next_offset;
    let mut placed = Vec::with_capacity(batch_count);
    let mut headers = Vec::with_capacity(batch_count * BATCH_HEADER_BYTES);
    let mut at = 0;
    while at < records.len() {
        let Some(size_bytes) = batch_size_at(&records[at..]) else { unreachable!("validated above") };
        let header_at = headers.len();
        headers.extend_from_slice(&records[at..at + BATCH_HEADER_BYTES]);
        let header_copy = &mut headers[header_at..];
        rewrite::set_base_offset(header_copy, next_offset);
        rewrite::set_partition_leader_epoch(header_copy, leader_epoch);
        if let Some(time_ms) = log_append_time_ms {
            let body = &records[at + BATCH_HEADER_BYTES..at + size_bytes];
            rewrite::set_log_append_time_in_header(header_copy, body, time_ms);
        }
        let header = BatchHeader::parse(header_copy)
            .map_err(|source| LogError::InvalidBatch { index: placed.len(), source })?;
        next_offset = header.next_offset();
        placed.push((at, header));
        at += size_bytes;
    }
    Ok(PlacedRecords::new(records, headers, placed))
}

/// What a partition directory holds, after leftovers were dealt with.
#[derive(Debug, Default)]
struct Listing {
    log_bases: Vec<i64>,
    /// Segments whose index files were missing: rebuilt on open.
    missing_index_bases: Vec<i64>,
    /// Segments that replaced cleaner swap files: their offset range supersedes others'.
    swapped_bases: Vec<i64>,
}

/// Lists the directory and deals with leftovers: `*.deleted` and `*.cleaned` files are
/// removed, a `*.log.swap` (a cleaner's finished output) is renamed into place with its
/// indexes dropped for a rebuild, index files without a `.log` are removed.
async fn list_dir(dir: &Path) -> Result<Listing> {
    // A blocking readdir: once per partition at open, never on the data path.
    let mut names = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        if let Some(name) = entry?.file_name().to_str() {
            names.push(name.to_string());
        }
    }
    names.sort();
    let mut listing = Listing::default();
    let mut index_files = Vec::new();
    for name in &names {
        let path = dir.join(name);
        if name.ends_with(DELETED_FILE_SUFFIX) || name.ends_with(CLEANED_FILE_SUFFIX) {
            tracing::info!(?path, "removing leftover file");
            remove_if_exists(&path).await?;
        } else if let Some(stem) = name.strip_suffix(SWAP_FILE_SUFFIX) {
            match parse_segment_name(stem) {
                Some((base, LOG_FILE_SUFFIX)) => {
                    tracing::warn!(?path, "completing an interrupted segment swap");
                    glommio::io::rename(&path, dir.join(stem)).await?;
                    listing.swapped_bases.push(base);
                    listing.log_bases.push(base);
                }
                _ => remove_if_exists(&path).await?,
            }
        } else if let Some((base, suffix)) = parse_segment_name(name) {
            match suffix {
                LOG_FILE_SUFFIX => listing.log_bases.push(base),
                suffix => index_files.push((base, suffix, path)),
            }
        }
    }
    listing.log_bases.sort_unstable();
    listing.log_bases.dedup();
    for &base in &listing.swapped_bases {
        for suffix in [INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX] {
            remove_if_exists(&dir.join(crate::log_segment::segment_file_name(base, suffix))).await?;
        }
    }
    for (base, _, path) in &index_files {
        if listing.log_bases.binary_search(base).is_err() {
            tracing::warn!(?path, "removing an index without a log");
            remove_if_exists(path).await?;
        }
    }
    for &base in &listing.log_bases {
        let has = |suffix: &str| index_files.iter().any(|(b, s, _)| *b == base && *s == suffix);
        if !has(INDEX_FILE_SUFFIX) || !has(TIME_INDEX_FILE_SUFFIX) || listing.swapped_bases.contains(&base) {
            listing.missing_index_bases.push(base);
        }
    }
    Ok(listing)
}

/// `(base offset, suffix)` of a segment file name such as `00000000000000000042.index`.
fn parse_segment_name(name: &str) -> Option<(i64, &'static str)> {
    for suffix in [LOG_FILE_SUFFIX, INDEX_FILE_SUFFIX, TIME_INDEX_FILE_SUFFIX] {
        if let Some(stem) = name.strip_suffix(suffix) {
            if !stem.is_empty() && stem.len() <= 20 && stem.bytes().all(|b| b.is_ascii_digit()) {
                return stem.parse::<i64>().ok().map(|base| (base, suffix));
            }
        }
    }
    None
}

/// A swapped-in segment supersedes every segment whose base offset falls inside its range.
async fn complete_swaps(
    config: &LogConfig,
    segments: &mut Vec<LogSegment>,
    swapped_bases: &[i64],
) -> Result<()> {
    for &base in swapped_bases {
        let Some(index) = segments.iter().position(|s| s.base_offset() == base) else { continue };
        if let Some(cut) = segments[index].recover(config, base, None).await? {
            tracing::warn!(base, ?cut, "truncated a swapped-in segment");
        }
        let end = segments[index].next_offset();
        while let Some(overlapped) =
            segments.iter().position(|s| s.base_offset() > base && s.base_offset() < end)
        {
            let segment = segments.remove(overlapped);
            tracing::warn!(segment = ?segment.log_path(), "removing a segment superseded by a swap");
            segment.remove().await?;
        }
    }
    Ok(())
}

/// Validates the segments in order: a segment whose indexes are missing or inconsistent,
/// whose tail does not parse, or that may hold offsets at or past the recovery point is
/// re-validated in full. At the first cut, every later segment is removed. Returns how many
/// segments were re-validated (none after a clean shutdown).
async fn recover_segments(
    config: &LogConfig,
    segments: &mut Vec<LogSegment>,
    listing: &Listing,
    recovery_point: Option<i64>,
) -> Result<usize> {
    let mut revalidated = 0;
    let mut min_offset = 0;
    let mut index = 0;
    while index < segments.len() {
        let max_offset_exclusive = segments.get(index + 1).map(LogSegment::base_offset);
        let later_segments = segments.len() - index - 1;
        let segment = &mut segments[index];
        let base = segment.base_offset();
        let mut rebuild_reason = None;
        if listing.missing_index_bases.contains(&base) {
            rebuild_reason = Some("index file missing".to_string());
        } else if let Some(reason) = segment.index_inconsistency() {
            rebuild_reason = Some(reason.to_string());
        } else if let Err(reason) = segment.load_tail(config, min_offset, max_offset_exclusive).await? {
            rebuild_reason = Some(reason);
        }
        let unflushed = !matches!(recovery_point, Some(point) if segment.next_offset() <= point);
        if let Some(reason) = &rebuild_reason {
            tracing::warn!(segment = ?segment.log_path(), %reason, "rebuilding indexes");
        }
        if rebuild_reason.is_some() || unflushed {
            revalidated += 1;
            if let Some(cut) = segment.recover(config, min_offset, max_offset_exclusive).await? {
                tracing::warn!(
                    segment = ?segment.log_path(),
                    valid_bytes = cut.valid_bytes,
                    truncated_bytes = cut.truncated_bytes,
                    reason = %cut.reason,
                    dropped_segments = later_segments,
                    "truncated the log at a torn or corrupt batch",
                );
                for later in segments.drain(index + 1..) {
                    later.remove().await?;
                }
            }
        }
        min_offset = segments[index].next_offset();
        index += 1;
    }
    Ok(revalidated)
}
