//! `OffsetCheckpointFile`: Kafka's offset checkpoint format, used by a log directory's
//! `recovery-point-offset-checkpoint`, `log-start-offset-checkpoint` and
//! `replication-offset-checkpoint`:
//!
//! ```text
//! 0                      version
//! 2                      number of entries
//! orders 0 1200          topic partition offset
//! orders 1 1187
//! ```
//!
//! Written atomically (temporary file, fdatasync, rename, fsync of the directory), so a crash
//! leaves the old or the new file, never a mix. Reading a malformed file is an error.

use std::path::{Path, PathBuf};

use glommio::io::{BufferedFile, Directory, OpenOptions};

use crate::index_file::write_all_at;
use crate::log_error::{LogError, Result};

pub const RECOVERY_POINT_CHECKPOINT_FILE: &str = "recovery-point-offset-checkpoint";
pub const LOG_START_OFFSET_CHECKPOINT_FILE: &str = "log-start-offset-checkpoint";
pub const REPLICATION_CHECKPOINT_FILE: &str = "replication-offset-checkpoint";
pub const CLEANER_CHECKPOINT_FILE: &str = "cleaner-offset-checkpoint";

const VERSION: u32 = 0;
/// Limits on what a checkpoint may hold, so a damaged file cannot drive an allocation.
const MAX_CHECKPOINT_BYTES: u64 = 64 << 20;
const MAX_CHECKPOINT_ENTRIES: usize = 1 << 20;
/// Kafka's limit on topic name length.
pub const MAX_TOPIC_NAME_BYTES: usize = 249;

#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    pub topic: String,
    pub partition: i32,
}

impl TopicPartition {
    pub fn new(topic: impl Into<String>, partition: i32) -> Self {
        TopicPartition { topic: topic.into(), partition }
    }

    /// The partition's directory name in a log dir: `<topic>-<partition>`.
    pub fn dir_name(&self) -> String {
        format!("{}-{}", self.topic, self.partition)
    }
}

/// Kafka's legal topic names: 1 to 249 of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn is_legal_topic_name(topic: &str) -> bool {
    !topic.is_empty()
        && topic.len() <= MAX_TOPIC_NAME_BYTES
        && topic != "."
        && topic != ".."
        && topic.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}

#[derive(Debug, Clone)]
pub struct OffsetCheckpointFile {
    path: PathBuf,
}

impl OffsetCheckpointFile {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        OffsetCheckpointFile { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn write(&self, entries: &[(TopicPartition, i64)]) -> Result<()> {
        let bytes = Self::encode(entries)?;
        write_file_atomically(&self.path, &tmp_path(&self.path, ""), bytes).await
    }

    /// [`OffsetCheckpointFile::write`] through a temporary file of `writer`'s own
    /// (`<path>.<writer>.tmp`), for a file that several writers (shards) replace: theirs
    /// never collide, and each rename is atomic.
    pub async fn write_as(&self, writer: &str, entries: &[(TopicPartition, i64)]) -> Result<()> {
        let bytes = Self::encode(entries)?;
        write_file_atomically(&self.path, &tmp_path(&self.path, writer), bytes).await
    }

    /// The entries, or none when the file does not exist yet.
    pub async fn read(&self) -> Result<Vec<(TopicPartition, i64)>> {
        match read_small_file(&self.path, MAX_CHECKPOINT_BYTES).await? {
            Some(bytes) => Self::decode(&self.path, &bytes),
            None => Ok(Vec::new()),
        }
    }

    pub fn encode(entries: &[(TopicPartition, i64)]) -> Result<Vec<u8>> {
        if entries.len() > MAX_CHECKPOINT_ENTRIES {
            return Err(LogError::InvalidConfig(format!("{} checkpoint entries: too many", entries.len())));
        }
        let mut text = format!("{VERSION}\n{}\n", entries.len());
        for (tp, offset) in entries {
            if !is_legal_topic_name(&tp.topic) || tp.partition < 0 {
                return Err(LogError::InvalidConfig(format!("cannot checkpoint partition {tp:?}")));
            }
            text.push_str(&format!("{} {} {offset}\n", tp.topic, tp.partition));
        }
        Ok(text.into_bytes())
    }

    pub fn decode(path: &Path, bytes: &[u8]) -> Result<Vec<(TopicPartition, i64)>> {
        let malformed =
            |line: usize, reason: &str| LogError::malformed(path, format!("line {line}: {reason}"));
        let text = std::str::from_utf8(bytes).map_err(|_| LogError::malformed(path, "not UTF-8"))?;
        let mut lines = text.split_terminator('\n');
        let version = lines.next().ok_or_else(|| malformed(1, "empty file"))?;
        if version.parse::<u32>().ok() != Some(VERSION) {
            return Err(malformed(1, "unsupported version"));
        }
        let count = lines
            .next()
            .and_then(|l| l.parse::<usize>().ok())
            .ok_or_else(|| malformed(2, "bad entry count"))?;
        if count > MAX_CHECKPOINT_ENTRIES {
            return Err(malformed(2, "too many entries"));
        }
        let mut entries = Vec::with_capacity(count);
        for line_number in 3..3 + count {
            let line = lines.next().ok_or_else(|| malformed(line_number, "fewer entries than counted"))?;
            let fields: Vec<&str> = line.split(' ').collect();
            let [topic, partition, offset] = fields[..] else {
                return Err(malformed(line_number, "expected `topic partition offset`"));
            };
            let partition = partition.parse::<i32>().ok().filter(|p| *p >= 0);
            let (Some(partition), Ok(offset)) = (partition, offset.parse::<i64>()) else {
                return Err(malformed(line_number, "bad partition or offset"));
            };
            if !is_legal_topic_name(topic) {
                return Err(malformed(line_number, "illegal topic name"));
            }
            entries.push((TopicPartition::new(topic, partition), offset));
        }
        if lines.next().is_some() {
            return Err(malformed(3 + count, "more entries than counted"));
        }
        Ok(entries)
    }
}

/// `<path>.tmp`, or `<path>.<writer>.tmp`.
pub(crate) fn tmp_path(path: &Path, writer: &str) -> PathBuf {
    let mut tmp_name = path.as_os_str().to_owned();
    if !writer.is_empty() {
        tmp_name.push(".");
        tmp_name.push(writer);
    }
    tmp_name.push(".tmp");
    PathBuf::from(tmp_name)
}

/// Replaces `path` with `bytes` so that a crash leaves either the old or the new content:
/// write `tmp_path`, fdatasync it, rename it over `path`, fsync the directory.
pub(crate) async fn write_file_atomically(path: &Path, tmp_path: &Path, bytes: Vec<u8>) -> Result<()> {
    let file = OpenOptions::new().write(true).create(true).truncate(true).buffered_open(&tmp_path).await?;
    let written = write_all_at(&file, bytes, 0).await;
    let synced = match written {
        Ok(()) => file.fdatasync().await.map_err(LogError::from),
        Err(e) => Err(e),
    };
    file.close().await?;
    synced?;
    glommio::io::rename(tmp_path, path).await?;
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    let dir = Directory::open(parent).await?;
    let dir_synced = dir.sync().await;
    dir.close().await?;
    dir_synced?;
    Ok(())
}

/// The whole file, `None` when it does not exist; larger than `max_bytes` is malformed.
pub(crate) async fn read_small_file(path: &Path, max_bytes: u64) -> Result<Option<Vec<u8>>> {
    let file = match BufferedFile::open(path).await {
        Ok(file) => file,
        Err(e) => {
            let e = std::io::Error::from(e);
            return if e.kind() == std::io::ErrorKind::NotFound { Ok(None) } else { Err(e.into()) };
        }
    };
    let size_bytes = file.file_size().await?;
    if size_bytes > max_bytes {
        file.close().await?;
        return Err(LogError::malformed(path, format!("{size_bytes} bytes, more than {max_bytes}")));
    }
    let bytes =
        if size_bytes == 0 { Vec::new() } else { file.read_at(0, size_bytes as usize).await?.to_vec() };
    file.close().await?;
    Ok(Some(bytes))
}
