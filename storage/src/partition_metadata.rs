//! `PartitionMetadataFile`: `partition.metadata` in a partition directory, Kafka's record of
//! the topic id the directory belongs to (so a recreated topic of the same name is told apart):
//!
//! ```text
//! version: 0
//! topic_id: 7mZ5bVF4QWi6qk2bY8Lhtw
//! ```
//!
//! The id is a 16-byte UUID written as Kafka's `Uuid.toString()` does: URL-safe base64
//! without padding (22 characters). Written atomically; a malformed file is an error.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use crate::checkpoint::{read_small_file, tmp_path, write_file_atomically};
use crate::log_error::{LogError, Result};

pub const PARTITION_METADATA_FILE: &str = "partition.metadata";

const VERSION: u32 = 0;
/// The file is two short lines; anything longer is not one.
const MAX_FILE_BYTES: u64 = 4096;

/// A topic id. The all-zero UUID is Kafka's "no id" and never names a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicId(pub [u8; 16]);

impl TopicId {
    pub const ZERO: TopicId = TopicId([0; 16]);
}

impl fmt::Display for TopicId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

impl FromStr for TopicId {
    type Err = ();

    /// Kafka's `Uuid.fromString`: exactly 22 URL-safe base64 characters, no padding.
    fn from_str(text: &str) -> std::result::Result<Self, ()> {
        if text.len() != 22 {
            return Err(());
        }
        let mut id = [0u8; 16];
        match URL_SAFE_NO_PAD.decode_slice(text, &mut id) {
            Ok(16) => Ok(TopicId(id)),
            _ => Err(()),
        }
    }
}

#[derive(Debug, Clone)]
pub struct PartitionMetadataFile {
    path: PathBuf,
}

impl PartitionMetadataFile {
    pub fn new(partition_dir: &Path) -> Self {
        PartitionMetadataFile { path: partition_dir.join(PARTITION_METADATA_FILE) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub async fn write(&self, topic_id: TopicId) -> Result<()> {
        write_file_atomically(&self.path, &tmp_path(&self.path, ""), Self::encode(topic_id)?.into_bytes())
            .await
    }

    /// The topic id, or `None` when the file does not exist (a directory from before topic
    /// ids, or not yet written).
    pub async fn read(&self) -> Result<Option<TopicId>> {
        match read_small_file(&self.path, MAX_FILE_BYTES).await? {
            Some(bytes) => Self::decode(&self.path, &bytes).map(Some),
            None => Ok(None),
        }
    }

    pub fn encode(topic_id: TopicId) -> Result<String> {
        if topic_id == TopicId::ZERO {
            return Err(LogError::InvalidConfig("the zero UUID is not a topic id".to_string()));
        }
        Ok(format!("version: {VERSION}\ntopic_id: {topic_id}\n"))
    }

    pub fn decode(path: &Path, bytes: &[u8]) -> Result<TopicId> {
        let text = std::str::from_utf8(bytes).map_err(|_| LogError::malformed(path, "not UTF-8"))?;
        let mut lines = text.split_terminator('\n');
        let field = |line: Option<&str>, name: &str| {
            line.and_then(|l| l.strip_prefix(name))
                .and_then(|rest| rest.strip_prefix(": "))
                .map(str::to_string)
        };
        let version =
            field(lines.next(), "version").ok_or_else(|| LogError::malformed(path, "no version line"))?;
        if version.parse::<u32>().ok() != Some(VERSION) {
            return Err(LogError::malformed(path, format!("unsupported version {version:?}")));
        }
        let id =
            field(lines.next(), "topic_id").ok_or_else(|| LogError::malformed(path, "no topic_id line"))?;
        let topic_id =
            id.parse::<TopicId>().map_err(|()| LogError::malformed(path, format!("bad topic id {id:?}")))?;
        if topic_id == TopicId::ZERO {
            return Err(LogError::malformed(path, "zero topic id"));
        }
        if lines.next().is_some() {
            return Err(LogError::malformed(path, "unexpected content after topic_id"));
        }
        Ok(topic_id)
    }
}
