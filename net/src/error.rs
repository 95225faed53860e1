//! The one place where broker errors become Kafka error codes.
//!
//! Handlers return `Result<_, KafkaError>` and put [`KafkaError::code`] (or [`NONE`]) into the
//! response's `error_code` field. The numbers are not typed in here: each variant maps to the
//! matching [`ResponseError`] of the `kafka-protocol` crate, which is generated from Kafka's
//! `Errors.java`, so a code cannot drift from what clients expect. A test pins the numbers that
//! the issue lists against `Errors.java` as well.

use kafka_protocol::ResponseError;

/// `error_code` of a successful response (Kafka's `NONE`).
pub const NONE: i16 = 0;

/// An error the broker reports to a client, with the Kafka error code it maps to.
///
/// Only the errors this broker produces are listed; add a variant (and its `ResponseError`
/// arm) when a handler needs a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KafkaError {
    #[error("UNKNOWN_SERVER_ERROR: unexpected server error")]
    UnknownServerError,
    #[error("OFFSET_OUT_OF_RANGE: offset outside the partition's log")]
    OffsetOutOfRange,
    #[error("CORRUPT_MESSAGE: record batch failed validation (CRC, sizes or counts)")]
    CorruptMessage,
    #[error("UNKNOWN_TOPIC_OR_PARTITION: this server does not host the topic-partition")]
    UnknownTopicOrPartition,
    #[error("LEADER_NOT_AVAILABLE: partition has no leader right now")]
    LeaderNotAvailable,
    #[error("NOT_LEADER_OR_FOLLOWER: another node leads this partition")]
    NotLeaderOrFollower,
    #[error("REQUEST_TIMED_OUT: the request timed out")]
    RequestTimedOut,
    #[error("MESSAGE_TOO_LARGE: batch larger than max.message.bytes")]
    MessageTooLarge,
    #[error("COORDINATOR_NOT_AVAILABLE: coordinator not available")]
    CoordinatorNotAvailable,
    #[error("NOT_COORDINATOR: this node is not the coordinator")]
    NotCoordinator,
    #[error("INVALID_TOPIC_EXCEPTION: invalid topic name")]
    InvalidTopic,
    #[error("RECORD_LIST_TOO_LARGE: record list larger than the segment")]
    RecordListTooLarge,
    #[error("NOT_ENOUGH_REPLICAS: in-sync replicas below min.insync.replicas")]
    NotEnoughReplicas,
    #[error("NOT_ENOUGH_REPLICAS_AFTER_APPEND: appended, but in-sync replicas dropped")]
    NotEnoughReplicasAfterAppend,
    #[error("INVALID_REQUIRED_ACKS: acks must be 0, 1 or -1")]
    InvalidRequiredAcks,
    #[error("INVALID_TIMESTAMP: timestamp out of the accepted range")]
    InvalidTimestamp,
    #[error("UNSUPPORTED_VERSION: request version not supported")]
    UnsupportedVersion,
    #[error("TOPIC_ALREADY_EXISTS: topic already exists")]
    TopicAlreadyExists,
    #[error("INVALID_PARTITIONS: invalid partition count")]
    InvalidPartitions,
    #[error("INVALID_REPLICATION_FACTOR: invalid replication factor")]
    InvalidReplicationFactor,
    #[error("INVALID_REPLICA_ASSIGNMENT: invalid replica assignment")]
    InvalidReplicaAssignment,
    #[error("INVALID_CONFIG: invalid configuration")]
    InvalidConfig,
    #[error("INVALID_REQUEST: malformed or inconsistent request")]
    InvalidRequest,
    #[error("POLICY_VIOLATION: request violates the configured policy")]
    PolicyViolation,
    #[error("OUT_OF_ORDER_SEQUENCE_NUMBER: producer sequence gap")]
    OutOfOrderSequenceNumber,
    #[error("DUPLICATE_SEQUENCE_NUMBER: producer sequence already written")]
    DuplicateSequenceNumber,
    #[error("INVALID_PRODUCER_EPOCH: producer epoch is stale")]
    InvalidProducerEpoch,
    #[error("KAFKA_STORAGE_ERROR: disk error")]
    KafkaStorageError,
    #[error("UNKNOWN_PRODUCER_ID: no state for this producer id")]
    UnknownProducerId,
    #[error("TOPIC_DELETION_DISABLED: topic deletion is disabled")]
    TopicDeletionDisabled,
    #[error("INVALID_RECORD: record failed broker-side validation")]
    InvalidRecord,
    #[error("PRODUCER_FENCED: a newer producer with the same transactional id exists")]
    ProducerFenced,
    #[error("UNKNOWN_TOPIC_ID: this server does not host this topic id")]
    UnknownTopicId,
    #[error("MISMATCHED_ENDPOINT_TYPE: request sent to an endpoint of the wrong type")]
    MismatchedEndpointType,
    #[error("UNSUPPORTED_ENDPOINT_TYPE: endpoint type not supported")]
    UnsupportedEndpointType,
}

impl KafkaError {
    /// The matching `kafka-protocol` error (and through it Kafka's `Errors.java`).
    pub const fn response_error(self) -> ResponseError {
        match self {
            KafkaError::UnknownServerError => ResponseError::UnknownServerError,
            KafkaError::OffsetOutOfRange => ResponseError::OffsetOutOfRange,
            KafkaError::CorruptMessage => ResponseError::CorruptMessage,
            KafkaError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
            KafkaError::LeaderNotAvailable => ResponseError::LeaderNotAvailable,
            KafkaError::NotLeaderOrFollower => ResponseError::NotLeaderOrFollower,
            KafkaError::RequestTimedOut => ResponseError::RequestTimedOut,
            KafkaError::MessageTooLarge => ResponseError::MessageTooLarge,
            KafkaError::CoordinatorNotAvailable => ResponseError::CoordinatorNotAvailable,
            KafkaError::NotCoordinator => ResponseError::NotCoordinator,
            KafkaError::InvalidTopic => ResponseError::InvalidTopicException,
            KafkaError::RecordListTooLarge => ResponseError::RecordListTooLarge,
            KafkaError::NotEnoughReplicas => ResponseError::NotEnoughReplicas,
            KafkaError::NotEnoughReplicasAfterAppend => ResponseError::NotEnoughReplicasAfterAppend,
            KafkaError::InvalidRequiredAcks => ResponseError::InvalidRequiredAcks,
            KafkaError::InvalidTimestamp => ResponseError::InvalidTimestamp,
            KafkaError::UnsupportedVersion => ResponseError::UnsupportedVersion,
            KafkaError::TopicAlreadyExists => ResponseError::TopicAlreadyExists,
            KafkaError::InvalidPartitions => ResponseError::InvalidPartitions,
            KafkaError::InvalidReplicationFactor => ResponseError::InvalidReplicationFactor,
            KafkaError::InvalidReplicaAssignment => ResponseError::InvalidReplicaAssignment,
            KafkaError::InvalidConfig => ResponseError::InvalidConfig,
            KafkaError::InvalidRequest => ResponseError::InvalidRequest,
            KafkaError::PolicyViolation => ResponseError::PolicyViolation,
            KafkaError::OutOfOrderSequenceNumber => ResponseError::OutOfOrderSequenceNumber,
            KafkaError::DuplicateSequenceNumber => ResponseError::DuplicateSequenceNumber,
            KafkaError::InvalidProducerEpoch => ResponseError::InvalidProducerEpoch,
            KafkaError::KafkaStorageError => ResponseError::KafkaStorageError,
            KafkaError::UnknownProducerId => ResponseError::UnknownProducerId,
            KafkaError::TopicDeletionDisabled => ResponseError::TopicDeletionDisabled,
            KafkaError::InvalidRecord => ResponseError::InvalidRecord,
            KafkaError::ProducerFenced => ResponseError::ProducerFenced,
            KafkaError::UnknownTopicId => ResponseError::UnknownTopicId,
            KafkaError::MismatchedEndpointType => ResponseError::MismatchedEndpointType,
            KafkaError::UnsupportedEndpointType => ResponseError::UnsupportedEndpointType,
        }
    }

    /// The numeric Kafka error code for a response's `error_code` field.
    pub const fn code(self) -> i16 {
        self.response_error().code()
    }
}

/// `error_code` for a handler outcome: [`NONE`] on success, else the error's code.
pub fn error_code<T>(outcome: &Result<T, KafkaError>) -> i16 {
    match outcome {
        Ok(_) => NONE,
        Err(e) => e.code(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The numbers from Kafka's `Errors.java` that the broker issue names; if the crate's table
    /// ever disagreed with these, a client would misread our answers.
    #[test]
    fn codes_match_errors_java() {
        let expected = [
            (KafkaError::UnknownServerError, -1),
            (KafkaError::OffsetOutOfRange, 1),
            (KafkaError::CorruptMessage, 2),
            (KafkaError::UnknownTopicOrPartition, 3),
            (KafkaError::LeaderNotAvailable, 5),
            (KafkaError::NotLeaderOrFollower, 6),
            (KafkaError::RequestTimedOut, 7),
            (KafkaError::MessageTooLarge, 10),
            (KafkaError::CoordinatorNotAvailable, 15),
            (KafkaError::NotCoordinator, 16),
            (KafkaError::InvalidTopic, 17),
            (KafkaError::RecordListTooLarge, 18),
            (KafkaError::NotEnoughReplicas, 19),
            (KafkaError::NotEnoughReplicasAfterAppend, 20),
            (KafkaError::InvalidRequiredAcks, 21),
            (KafkaError::InvalidTimestamp, 32),
            (KafkaError::UnsupportedVersion, 35),
            (KafkaError::TopicAlreadyExists, 36),
            (KafkaError::InvalidPartitions, 37),
            (KafkaError::InvalidReplicationFactor, 38),
            (KafkaError::InvalidReplicaAssignment, 39),
            (KafkaError::InvalidConfig, 40),
            (KafkaError::InvalidRequest, 42),
            (KafkaError::PolicyViolation, 44),
            (KafkaError::OutOfOrderSequenceNumber, 45),
            (KafkaError::DuplicateSequenceNumber, 46),
            (KafkaError::InvalidProducerEpoch, 47),
            (KafkaError::KafkaStorageError, 56),
            (KafkaError::UnknownProducerId, 59),
            (KafkaError::TopicDeletionDisabled, 73),
            (KafkaError::InvalidRecord, 87),
            (KafkaError::ProducerFenced, 90),
            (KafkaError::UnknownTopicId, 100),
            (KafkaError::MismatchedEndpointType, 114),
            (KafkaError::UnsupportedEndpointType, 115),
        ];
        for (err, code) in expected {
            assert_eq!(err.code(), code, "{err:?}");
        }
        assert_eq!(error_code::<()>(&Ok(())), NONE);
        assert_eq!(error_code::<()>(&Err(KafkaError::MessageTooLarge)), 10);
    }
}
