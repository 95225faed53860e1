//! `MetadataLog`: the durable, append-only log of metadata record batches, owned by shard 0.
//!
//! File: `<log.dir>/__cluster_metadata-0/metadata.log`, a sequence of frames
//!
//! ```text
//! [len: u32 BE][crc32c(payload): u32 BE][payload: rkyv-encoded Vec<MetadataRecord>, len bytes]
//! ```
//!
//! One frame is one batch: everything one control operation commits (a topic with its configs
//! and partitions), so an operation is on disk entirely or not at all. Frames are written with
//! glommio's buffered (page cache, io_uring) file I/O and `fdatasync`'d once per
//! [`MetadataLog::append`] call; appends are rare control operations, so one sync each is cheap.
//!
//! Recovery ([`MetadataLog::open`]) replays every frame into a [`MetadataImage`] and stops at the
//! first frame that is short (a torn write after `kill -9` or power loss), longer than
//! [`MAX_FRAME_BYTES`], fails its CRC, or does not validate as rkyv. Everything from there on is
//! truncated with a warning: the broker always starts. Like Kafka's log recovery, a damaged frame
//! in the middle of the file also ends the log there — without a second copy, the bytes after
//! it cannot be trusted to be frames.
//!
//! Invariants:
//! - A frame length is checked against [`MAX_FRAME_BYTES`] and against the bytes left in the
//!   file before anything is allocated for it.
//! - After a failed write or sync the log is poisoned: the state of the page cache is unknown, so
//!   every later append fails until a restart re-reads the file. (As with any fsync failure, a
//!   batch reported as failed may still turn up on restart; it is then applied like any other.)
//! - Offsets count records, not frames or bytes: `end_offset()` is the offset the next record
//!   gets, and equals the replayed image's `applied_offset()`.
//!
//! Stop-gap: the replication issue moves the metadata onto `openraft`. This type is shaped for
//! that: a batch is one Raft entry's payload, [`MetadataLog::append`] plays
//! `RaftLogStorage::append` (+ the flush callback), replay on `open` plays reading the entries
//! back, and [`MetadataImage::apply`] plays `RaftStateMachine::apply`. The controller only calls
//! `open`, `append` and `end_offset`, so a Raft-backed store replaces this file without touching
//! the shards.

use std::path::{Path, PathBuf};

use glommio::io::{BufferedFile, Directory, OpenOptions};

use super::image::MetadataImage;
use super::records::{decode_batch, encode_batch, MetadataRecord, RecordError};

/// Directory of the metadata log inside `log.dir` (Kafka's name for the KRaft metadata
/// partition, so an operator recognises it; partition-log scans must skip it).
pub const METADATA_DIR_NAME: &str = "__cluster_metadata-0";
pub const METADATA_FILE_NAME: &str = "metadata.log";

/// Largest payload of one frame. A batch of `controller::MAX_RECORDS_PER_OP` records fits well
/// below it; a length field above it can only be damage.
pub const MAX_FRAME_BYTES: usize = 4 * 1024 * 1024;

const HEADER_BYTES: usize = 8;

/// Bytes read per I/O during replay.
const READ_CHUNK_BYTES: usize = 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("metadata log {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("metadata batch of {bytes} bytes exceeds the frame limit of {max} bytes")]
    FrameTooLarge { bytes: usize, max: usize },
    #[error(transparent)]
    Encode(#[from] RecordError),
    #[error("metadata log {0} is unusable after an earlier write failure; restart to recover")]
    Poisoned(PathBuf),
}

/// What [`MetadataLog::open`] found on disk.
#[derive(Debug)]
pub struct Replayed {
    /// The image after applying every intact frame.
    pub image: MetadataImage,
    /// Every intact batch, in order, for the controller to send to the shards at start.
    pub batches: Vec<Vec<MetadataRecord>>,
    /// Bytes cut off the end because they were torn or damaged (0 after a clean shutdown).
    pub truncated_bytes: u64,
}

#[derive(Debug)]
pub struct MetadataLog {
    file: BufferedFile,
    path: PathBuf,
    /// Byte length of the intact frames: where the next frame goes.
    end_bytes: u64,
    /// Records in the log: the offset of the next record.
    end_offset: u64,
    poisoned: bool,
}

impl MetadataLog {
    /// Opens (creating if needed) the log under `log_dir`, replays it, and truncates a torn or
    /// damaged tail. Fails only on I/O errors (e.g. permissions), never on the file's contents.
    pub async fn open(log_dir: &Path) -> Result<(MetadataLog, Replayed), LogError> {
        let dir = log_dir.join(METADATA_DIR_NAME);
        let path = dir.join(METADATA_FILE_NAME);
        let io = |source: std::io::Error| LogError::Io { path: path.clone(), source };

        // Startup only, so the blocking mkdir does not matter; the directory entries are then
        // synced so a created file cannot vanish on power loss.
        let existed = path.exists();
        std::fs::create_dir_all(&dir).map_err(io)?;
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .buffered_open(&path)
            .await
            .map_err(|e| io(e.into()))?;
        if !existed {
            for d in [dir.as_path(), log_dir] {
                let handle = Directory::open(d).await.map_err(|e| io(e.into()))?;
                handle.sync().await.map_err(|e| io(e.into()))?;
                handle.close().await.map_err(|e| io(e.into()))?;
            }
        }

        let size_bytes = file.file_size().await.map_err(|e| io(e.into()))?;
        let mut reader = ChunkReader { file: &file, size_bytes, window_start: 0, window: Vec::new() };
        let mut image = MetadataImage::new();
        let mut batches = Vec::new();
        let mut pos = 0u64;
        let stop_reason = loop {
            match read_frame(&mut reader, pos).await.map_err(io)? {
                Frame::End => break None,
                Frame::Bad(reason) => break Some(reason),
                Frame::Batch { records, frame_bytes } => {
                    image.apply_all(&records);
                    batches.push(records);
                    pos += frame_bytes;
                }
            }
        };

        let truncated_bytes = size_bytes - pos;
        if let Some(reason) = stop_reason {
            tracing::warn!(
                path = %path.display(),
                valid_bytes = pos,
                truncated_bytes,
                reason,
                "metadata log has a torn or damaged tail; truncating it"
            );
            file.truncate(pos).await.map_err(|e| io(e.into()))?;
            file.fdatasync().await.map_err(|e| io(e.into()))?;
        }
        let end_offset = image.applied_offset();
        let log = MetadataLog { file, path, end_bytes: pos, end_offset, poisoned: false };
        Ok((log, Replayed { image, batches, truncated_bytes }))
    }

    /// Appends one batch as one frame and makes it durable (`fdatasync`) before returning the
    /// new end offset. An empty batch writes nothing.
    // A `Vec` because rkyv serializes a sized root (see `records::encode_batch`).
    #[allow(clippy::ptr_arg)]
    pub async fn append(&mut self, records: &Vec<MetadataRecord>) -> Result<u64, LogError> {
        if self.poisoned {
            return Err(LogError::Poisoned(self.path.clone()));
        }
        if records.is_empty() {
            return Ok(self.end_offset);
        }
        let payload = encode_batch(records)?;
        if payload.len() > MAX_FRAME_BYTES {
            return Err(LogError::FrameTooLarge { bytes: payload.len(), max: MAX_FRAME_BYTES });
        }
        let mut frame = Vec::with_capacity(HEADER_BYTES + payload.len());
        frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
        frame.extend_from_slice(&shardlog_storage::checksum::crc32c(&payload).to_be_bytes());
        frame.extend_from_slice(&payload);
        let frame_bytes = frame.len() as u64;

        if let Err(source) = self.write_and_sync(frame).await {
            self.poisoned = true;
            tracing::error!(path = %self.path.display(), error = %source, "metadata log write failed; log poisoned");
            return Err(LogError::Io { path: self.path.clone(), source });
        }
        self.end_bytes += frame_bytes;
        self.end_offset += records.len() as u64;
        Ok(self.end_offset)
    }

    async fn write_and_sync(&self, frame: Vec<u8>) -> Result<(), std::io::Error> {
        let len = frame.len();
        let written = self.file.write_at(frame, self.end_bytes).await?;
        // A short write on a regular file means the disk is full or the file too large; the
        // caller poisons the log and the next start truncates the partial frame.
        if written != len {
            return Err(std::io::Error::new(
                std::io::ErrorKind::WriteZero,
                format!("short write: {written} of {len} bytes"),
            ));
        }
        self.file.fdatasync().await.map_err(Into::into)
    }

    /// Offset the next record will get (= records in the log).
    pub fn end_offset(&self) -> u64 {
        self.end_offset
    }

    /// Bytes of intact frames in the file.
    pub fn size_bytes(&self) -> u64 {
        self.end_bytes
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the file (all appends are already synced; this only releases the descriptor).
    pub async fn close(self) -> Result<(), LogError> {
        let path = self.path;
        self.file.close().await.map_err(|e| LogError::Io { path, source: e.into() })
    }
}

enum Frame {
    Batch {
        records: Vec<MetadataRecord>,
        frame_bytes: u64,
    },
    /// Clean end of file.
    End,
    /// Torn or damaged from here on; the reason is for the warning.
    Bad(&'static str),
}

async fn read_frame(reader: &mut ChunkReader<'_>, pos: u64) -> Result<Frame, std::io::Error> {
    let left = reader.size_bytes - pos;
    if left == 0 {
        return Ok(Frame::End);
    }
    if left < HEADER_BYTES as u64 {
        return Ok(Frame::Bad("torn frame header"));
    }
    let header = reader.read(pos, HEADER_BYTES).await?;
    let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
    let crc = u32::from_be_bytes([header[4], header[5], header[6], header[7]]);
    if len == 0 || len > MAX_FRAME_BYTES {
        return Ok(Frame::Bad("frame length out of range"));
    }
    if (len as u64) > left - HEADER_BYTES as u64 {
        return Ok(Frame::Bad("torn frame payload"));
    }
    let payload = reader.read(pos + HEADER_BYTES as u64, len).await?;
    if shardlog_storage::checksum::crc32c(payload) != crc {
        return Ok(Frame::Bad("frame CRC mismatch"));
    }
    match decode_batch(payload) {
        Ok(records) => Ok(Frame::Batch { records, frame_bytes: (HEADER_BYTES + len) as u64 }),
        Err(_) => Ok(Frame::Bad("frame payload is not a valid record batch")),
    }
}

/// Sequential reads through a window of at most `READ_CHUNK_BYTES` (or one frame, if larger),
/// so replay costs one I/O per chunk rather than two per frame.
struct ChunkReader<'a> {
    file: &'a BufferedFile,
    size_bytes: u64,
    window_start: u64,
    window: Vec<u8>,
}

impl ChunkReader<'_> {
    /// `len` bytes at `pos`; the caller has checked that they lie inside the file.
    async fn read(&mut self, pos: u64, len: usize) -> Result<&[u8], std::io::Error> {
        let window_end = self.window_start + self.window.len() as u64;
        if pos < self.window_start || pos + len as u64 > window_end {
            let want = len.max(READ_CHUNK_BYTES).min((self.size_bytes - pos) as usize);
            self.window.clear();
            self.window_start = pos;
            while self.window.len() < want {
                let at = pos + self.window.len() as u64;
                let chunk = self.file.read_at(at, want - self.window.len()).await?;
                if chunk.is_empty() {
                    // The file shrank under us (nobody else should write it): report as an error
                    // rather than guess.
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "metadata log shorter than its size",
                    ));
                }
                self.window.extend_from_slice(&chunk);
            }
        }
        let start = (pos - self.window_start) as usize;
        Ok(&self.window[start..start + len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::records::{ConfigRecord, PartitionRecord, ProducerIdsRecord, TopicRecord};
    use glommio::LocalExecutorBuilder;

    /// Runs `f` on a fresh glommio executor (tests run on plain threads).
    pub(crate) fn run<F, Fut, T>(f: F) -> T
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: std::future::Future<Output = T> + 'static,
        T: Send + 'static,
    {
        LocalExecutorBuilder::default().spawn(f).expect("spawn executor").join().expect("join executor")
    }

    fn batch(n: u8) -> Vec<MetadataRecord> {
        let id = [n; 16];
        let name = format!("topic-{n}");
        vec![
            MetadataRecord::Topic(TopicRecord { name: name.clone(), topic_id: id }),
            MetadataRecord::Config(ConfigRecord {
                resource_type: 2,
                resource_name: name,
                name: "retention.ms".into(),
                value: Some(format!("{n}000")),
            }),
            MetadataRecord::Partition(PartitionRecord {
                topic_id: id,
                partition: 0,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
            }),
            MetadataRecord::ProducerIds(ProducerIdsRecord {
                broker_id: 1,
                next_producer_id: 1000 * n as i64,
            }),
        ]
    }

    fn image_of(batches: &[Vec<MetadataRecord>]) -> MetadataImage {
        let mut image = MetadataImage::new();
        for b in batches {
            image.apply_all(b);
        }
        image
    }

    fn file_of(dir: &Path) -> PathBuf {
        dir.join(METADATA_DIR_NAME).join(METADATA_FILE_NAME)
    }

    /// Writes three batches; returns the file bytes and where each frame starts.
    fn three_frames(dir: PathBuf) -> (Vec<u8>, Vec<u64>) {
        run(move || async move {
            let (mut log, replayed) = MetadataLog::open(&dir).await.unwrap();
            assert!(replayed.batches.is_empty());
            let mut starts = Vec::new();
            for n in 1..=3 {
                starts.push(log.size_bytes());
                log.append(&batch(n)).await.unwrap();
            }
            assert_eq!(log.end_offset(), 12);
            log.close().await.unwrap();
            (std::fs::read(file_of(&dir)).unwrap(), starts)
        })
    }

    /// Puts `bytes` in place as the log, reopens it, and returns what replay saw plus the file
    /// length afterwards.
    fn reopen_with(dir: PathBuf, bytes: Vec<u8>) -> (Replayed, u64) {
        std::fs::write(file_of(&dir), &bytes).unwrap();
        run(move || async move {
            let (log, replayed) = MetadataLog::open(&dir).await.unwrap();
            let size = log.size_bytes();
            log.close().await.unwrap();
            assert_eq!(std::fs::metadata(file_of(&dir)).unwrap().len(), size);
            (replayed, size)
        })
    }

    #[test]
    fn reopen_gives_the_same_image_and_batches() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, _) = three_frames(dir.path().to_path_buf());
        let (replayed, size) = reopen_with(dir.path().to_path_buf(), bytes.clone());
        assert_eq!(size, bytes.len() as u64);
        assert_eq!(replayed.truncated_bytes, 0);
        assert_eq!(replayed.batches, vec![batch(1), batch(2), batch(3)]);
        assert_eq!(replayed.image, image_of(&[batch(1), batch(2), batch(3)]));
        assert_eq!(replayed.image.applied_offset(), 12);
    }

    #[test]
    fn a_torn_last_frame_is_cut_at_every_byte_and_appending_continues() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, starts) = three_frames(dir.path().to_path_buf());
        let last = starts[2] as usize;
        let expected = image_of(&[batch(1), batch(2)]);
        for cut in last..bytes.len() {
            let (replayed, size) = reopen_with(dir.path().to_path_buf(), bytes[..cut].to_vec());
            assert_eq!(size, last as u64, "cut at {cut}");
            assert_eq!(replayed.image, expected, "cut at {cut}");
            assert_eq!(replayed.truncated_bytes, (cut - last) as u64);
        }
        // After the truncation the log takes new frames where the torn one was.
        let d = dir.path().to_path_buf();
        run(move || async move {
            let (mut log, _) = MetadataLog::open(&d).await.unwrap();
            assert_eq!(log.append(&batch(3)).await.unwrap(), 12);
            log.close().await.unwrap();
            let (_, replayed) = MetadataLog::open(&d).await.unwrap();
            assert_eq!(replayed.image, image_of(&[batch(1), batch(2), batch(3)]));
        });
    }

    #[test]
    fn a_flipped_byte_ends_the_log_at_its_frame() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, starts) = three_frames(dir.path().to_path_buf());
        for (frame, keep) in [(2usize, 2usize), (1, 1)] {
            let start = starts[frame] as usize;
            let end = starts.get(frame + 1).map_or(bytes.len(), |s| *s as usize);
            let expected = image_of(&(1..=keep as u8).map(batch).collect::<Vec<_>>());
            for i in start..end {
                let mut damaged = bytes.clone();
                damaged[i] ^= 0x5a;
                let (replayed, size) = reopen_with(dir.path().to_path_buf(), damaged);
                assert_eq!(size, start as u64, "flip at {i}");
                assert_eq!(replayed.image, expected, "flip at {i}");
            }
        }
    }

    #[test]
    fn absurd_lengths_and_zero_fill_never_allocate_or_fail() {
        let dir = tempfile::tempdir().unwrap();
        let (bytes, _) = three_frames(dir.path().to_path_buf());
        let full = image_of(&[batch(1), batch(2), batch(3)]);
        for tail in [vec![0xffu8; 8], vec![0u8; 4096], vec![0, 0, 0, 9, 1, 2, 3, 4, 5], vec![0x7f; 3]] {
            let mut damaged = bytes.clone();
            damaged.extend_from_slice(&tail);
            let (replayed, size) = reopen_with(dir.path().to_path_buf(), damaged);
            assert_eq!(size, bytes.len() as u64);
            assert_eq!(replayed.image, full);
        }
        // Garbage from the first byte: an empty log, not a failure.
        let (replayed, size) = reopen_with(dir.path().to_path_buf(), vec![0xab; 100]);
        assert_eq!(size, 0);
        assert_eq!(replayed.image, MetadataImage::new());
    }

    #[test]
    fn oversized_batches_are_refused_before_writing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        run(move || async move {
            let (mut log, _) = MetadataLog::open(&dir).await.unwrap();
            let huge = vec![MetadataRecord::Config(ConfigRecord {
                resource_type: 2,
                resource_name: "t".into(),
                name: "k".into(),
                value: Some("x".repeat(MAX_FRAME_BYTES)),
            })];
            assert!(matches!(log.append(&huge).await, Err(LogError::FrameTooLarge { .. })));
            assert_eq!(log.size_bytes(), 0);
            // Not poisoned: nothing was written.
            assert_eq!(log.append(&batch(1)).await.unwrap(), 4);
            assert_eq!(log.append(&Vec::new()).await.unwrap(), 4);
            log.close().await.unwrap();
        });
    }
}
