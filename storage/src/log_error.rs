//! `LogError`: everything a partition log operation can fail with, shaped so the broker can
//! map each variant to the Kafka error code a client expects (see [`LogError::kafka_error`]).

use std::path::PathBuf;

use thiserror::Error;

use crate::record_batch::BatchError;

#[derive(Debug, Error)]
pub enum LogError {
    /// A batch of a produce or replication request failed validation; nothing of the request
    /// was appended. `index` counts batches from 0 within the request's record set.
    #[error("batch {index} of the record set is invalid: {source}")]
    InvalidBatch { index: usize, source: BatchError },
    #[error("the record set holds no batch")]
    EmptyRecordSet,
    #[error("record set of {size_bytes} bytes exceeds the limit of {max_bytes} bytes")]
    RecordSetTooLarge { size_bytes: usize, max_bytes: usize },
    #[error("offset {offset} is outside the log [{log_start_offset}, {log_end_offset}]")]
    OffsetOutOfRange { offset: i64, log_start_offset: i64, log_end_offset: i64 },
    /// A replicated batch whose offsets do not follow the log end (Kafka's
    /// `UnexpectedAppendOffsetException`).
    #[error("replicated batch at offset {base_offset} does not follow offset {expected_at_least}")]
    UnexpectedAppendOffset { base_offset: i64, expected_at_least: i64 },
    /// A replicated record set spans more offsets than one segment can index (relative
    /// offsets are Kafka's signed 32-bit integers).
    #[error("record set spans offsets {first_offset}..={last_offset}, more than one segment can hold")]
    OffsetSpanTooLarge { first_offset: i64, last_offset: i64 },
    #[error("invalid log config: {0}")]
    InvalidConfig(String),
    /// A checkpoint or metadata file that does not parse. Its owner decides whether to fall
    /// back (e.g. recover from offset 0) or to stop.
    #[error("malformed {path:?}: {reason}")]
    MalformedFile { path: PathBuf, reason: String },
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The Kafka error a [`LogError`] stands for on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KafkaError {
    CorruptMessage,
    MessageTooLarge,
    RecordListTooLarge,
    OffsetOutOfRange,
    InvalidRequest,
    KafkaStorageError,
}

impl LogError {
    pub fn kafka_error(&self) -> KafkaError {
        match self {
            LogError::InvalidBatch { source, .. } if source.is_too_large() => KafkaError::MessageTooLarge,
            LogError::InvalidBatch { .. } => KafkaError::CorruptMessage,
            LogError::RecordSetTooLarge { .. } => KafkaError::RecordListTooLarge,
            LogError::OffsetOutOfRange { .. } | LogError::UnexpectedAppendOffset { .. } => {
                KafkaError::OffsetOutOfRange
            }
            LogError::EmptyRecordSet | LogError::OffsetSpanTooLarge { .. } => KafkaError::InvalidRequest,
            LogError::InvalidConfig(_) | LogError::MalformedFile { .. } | LogError::Io(_) => {
                KafkaError::KafkaStorageError
            }
        }
    }

    pub(crate) fn malformed(path: &std::path::Path, reason: impl Into<String>) -> Self {
        LogError::MalformedFile { path: path.to_path_buf(), reason: reason.into() }
    }
}

impl<T> From<glommio::GlommioError<T>> for LogError {
    fn from(e: glommio::GlommioError<T>) -> Self {
        LogError::Io(std::io::Error::from(e))
    }
}

pub type Result<T, E = LogError> = std::result::Result<T, E>;
