//! The one place where errors of the lower crates become Kafka error codes on the wire.
//! Storage says what went wrong in its own terms; the protocol's `KafkaError` is what a
//! client acts on.

use shardlog_net::KafkaError;
use shardlog_storage::log_error::{KafkaError as StorageKafkaError, LogError};
use shardlog_storage::producer_state::ProducerStateError;

pub fn log_error(e: &LogError) -> KafkaError {
    match e.kafka_error() {
        StorageKafkaError::CorruptMessage => KafkaError::CorruptMessage,
        StorageKafkaError::MessageTooLarge => KafkaError::MessageTooLarge,
        StorageKafkaError::RecordListTooLarge => KafkaError::RecordListTooLarge,
        StorageKafkaError::OffsetOutOfRange => KafkaError::OffsetOutOfRange,
        StorageKafkaError::InvalidRequest => KafkaError::InvalidRequest,
        StorageKafkaError::KafkaStorageError => {
            tracing::error!("storage error: {e}");
            KafkaError::KafkaStorageError
        }
    }
}

pub fn producer_error(e: &ProducerStateError) -> KafkaError {
    match e {
        ProducerStateError::InvalidProducerEpoch { .. } => KafkaError::InvalidProducerEpoch,
        ProducerStateError::OutOfOrderSequence { .. } => KafkaError::OutOfOrderSequenceNumber,
    }
}
