//! What the broker advertises in ApiVersions, and the ApiVersions responses themselves.
//!
//! Each range is the intersection of three things: what Kafka 3.7 (the course's version)
//! serves, what the `kafka-protocol` 0.18 crate decodes (it dropped the versions Kafka 4.0
//! removed, e.g. Produce v0-2 and Fetch v0-3) or [`crate::legacy`] decodes by hand in its place
//! (Produce v0-2, Fetch v0-3, ListOffsets v0, DescribeConfigs v0, OffsetCommit v0-1, OffsetFetch
//! v0: old clients send them), and what our structural
//! guard has a schema for.
//! A request outside its range is answered as Kafka does: ApiVersions gets the v0 fallback
//! response, every other API gets its connection closed.

use bytes::Bytes;
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::*;
#[cfg(test)]
use kafka_protocol::protocol::Message;
use kafka_protocol::protocol::VersionRange;

use crate::error::KafkaError;
use crate::response::{encode_response, EncodeError};

/// One advertised API: key and inclusive version range.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SupportedApi {
    pub api_key: ApiKey,
    pub min_version: i16,
    pub max_version: i16,
}

const fn api(api_key: ApiKey, min_version: i16, max_version: i16) -> SupportedApi {
    SupportedApi { api_key, min_version, max_version }
}

/// The APIs this broker serves. Kafka 3.7 maxima in the comments; minima are the crate's, or
/// those of [`crate::legacy`] below it.
pub const SUPPORTED_APIS: &[SupportedApi] = &[
    api(ApiKey::Produce, 0, 10),         // Kafka 3.7: 0-10; crate: 3-13; legacy: 0-2
    api(ApiKey::Fetch, 0, 16),           // Kafka 3.7: 0-16; crate: 4-18; legacy: 0-3
    api(ApiKey::ListOffsets, 0, 8),      // Kafka 3.7: 0-8; crate: 1-10; legacy: 0
    api(ApiKey::Metadata, 0, 12),        // Kafka 3.7: 0-12; crate: 0-13
    api(ApiKey::ApiVersions, 0, 3),      // Kafka 3.7: 0-3; crate: 0-4
    api(ApiKey::CreateTopics, 2, 7),     // Kafka 3.7: 0-7; crate: 2-7
    api(ApiKey::DeleteTopics, 1, 6),     // Kafka 3.7: 0-6; crate: 1-6
    api(ApiKey::DeleteRecords, 0, 2),    // Kafka 3.7: 0-2
    api(ApiKey::InitProducerId, 0, 4),   // Kafka 3.7: 0-4; crate: 0-5
    api(ApiKey::DescribeConfigs, 0, 4),  // Kafka 3.7: 0-4; crate: 1-4; legacy: 0
    api(ApiKey::AlterConfigs, 0, 2),     // Kafka 3.7: 0-2
    api(ApiKey::DescribeLogDirs, 1, 4),  // Kafka 3.7: 0-4; crate: 1-4
    api(ApiKey::CreatePartitions, 0, 3), // Kafka 3.7: 0-3
    api(ApiKey::IncrementalAlterConfigs, 0, 1), // Kafka 3.7: 0-1
    api(ApiKey::DescribeCluster, 0, 1),  // Kafka 3.7: 0-1; crate: 0-2
    // Group coordinator (classic protocol).
    api(ApiKey::FindCoordinator, 0, 4), // Kafka 3.7: 0-4; crate: 0-6
    api(ApiKey::JoinGroup, 0, 9),       // Kafka 3.7: 0-9
    api(ApiKey::Heartbeat, 0, 4),       // Kafka 3.7: 0-4
    api(ApiKey::LeaveGroup, 0, 5),      // Kafka 3.7: 0-5
    api(ApiKey::SyncGroup, 0, 5),       // Kafka 3.7: 0-5
    api(ApiKey::DescribeGroups, 0, 5),  // Kafka 3.7: 0-5; crate: 0-6
    api(ApiKey::ListGroups, 0, 5),      // Kafka 3.7: 0-4; Kafka 4.0: 0-5 (group types)
    api(ApiKey::OffsetCommit, 0, 9),    // Kafka 3.7: 0-9; crate: 2-9; legacy: 0-1
    api(ApiKey::OffsetFetch, 0, 9),     // Kafka 3.7: 0-9; crate: 1-9; legacy: 0
    api(ApiKey::OffsetDelete, 0, 0),    // Kafka 3.7: 0
    api(ApiKey::DeleteGroups, 0, 2),    // Kafka 3.7: 0-2
    // KIP-848 consumer groups (Kafka 4.0: 0-1; librdkafka 2.12 requires Heartbeat v1).
    api(ApiKey::ConsumerGroupHeartbeat, 0, 1),
    api(ApiKey::ConsumerGroupDescribe, 0, 1),
];

/// The advertised range for `api_key`, or `None` if the broker does not serve it.
pub fn supported_versions(api_key: ApiKey) -> Option<VersionRange> {
    SUPPORTED_APIS
        .iter()
        .find(|a| a.api_key == api_key)
        .map(|a| VersionRange { min: a.min_version, max: a.max_version })
}

/// The versions the crate's request decoder accepts (its message `VERSIONS`; the crate's
/// `ApiKey::valid_versions` is off by one for a few APIs, e.g. InitProducerId).
#[cfg(test)]
pub(crate) fn crate_request_versions(api_key: ApiKey) -> VersionRange {
    match api_key {
        ApiKey::Produce => ProduceRequest::VERSIONS,
        ApiKey::Fetch => FetchRequest::VERSIONS,
        ApiKey::ListOffsets => ListOffsetsRequest::VERSIONS,
        ApiKey::Metadata => MetadataRequest::VERSIONS,
        ApiKey::ApiVersions => ApiVersionsRequest::VERSIONS,
        ApiKey::CreateTopics => CreateTopicsRequest::VERSIONS,
        ApiKey::DeleteTopics => DeleteTopicsRequest::VERSIONS,
        ApiKey::DeleteRecords => DeleteRecordsRequest::VERSIONS,
        ApiKey::InitProducerId => InitProducerIdRequest::VERSIONS,
        ApiKey::DescribeConfigs => DescribeConfigsRequest::VERSIONS,
        ApiKey::AlterConfigs => AlterConfigsRequest::VERSIONS,
        ApiKey::DescribeLogDirs => DescribeLogDirsRequest::VERSIONS,
        ApiKey::CreatePartitions => CreatePartitionsRequest::VERSIONS,
        ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::VERSIONS,
        ApiKey::DescribeCluster => DescribeClusterRequest::VERSIONS,
        ApiKey::FindCoordinator => FindCoordinatorRequest::VERSIONS,
        ApiKey::JoinGroup => JoinGroupRequest::VERSIONS,
        ApiKey::Heartbeat => HeartbeatRequest::VERSIONS,
        ApiKey::LeaveGroup => LeaveGroupRequest::VERSIONS,
        ApiKey::SyncGroup => SyncGroupRequest::VERSIONS,
        ApiKey::DescribeGroups => DescribeGroupsRequest::VERSIONS,
        ApiKey::ListGroups => ListGroupsRequest::VERSIONS,
        ApiKey::OffsetCommit => OffsetCommitRequest::VERSIONS,
        ApiKey::OffsetFetch => OffsetFetchRequest::VERSIONS,
        ApiKey::DeleteGroups => DeleteGroupsRequest::VERSIONS,
        ApiKey::OffsetDelete => OffsetDeleteRequest::VERSIONS,
        ApiKey::ConsumerGroupHeartbeat => ConsumerGroupHeartbeatRequest::VERSIONS,
        ApiKey::ConsumerGroupDescribe => ConsumerGroupDescribeRequest::VERSIONS,
        other => other.valid_versions(),
    }
}

/// The ApiVersionsResponse body for a supported request version: error NONE and the table.
/// `throttle_time_ms` is only encoded for v1+; the caller fills in nothing else (no features:
/// Kafka 3.7 in KRaft mode also lists finalized features, which clients do not need).
pub fn api_versions_response() -> ApiVersionsResponse {
    let api_keys = SUPPORTED_APIS
        .iter()
        .map(|a| {
            ApiVersion::default()
                .with_api_key(a.api_key as i16)
                .with_min_version(a.min_version)
                .with_max_version(a.max_version)
        })
        .collect();
    ApiVersionsResponse::default().with_error_code(0).with_api_keys(api_keys)
}

/// The whole response frame for an ApiVersions request whose version we do not support
/// (KIP-511): always encoded as v0 with header v0, error UNSUPPORTED_VERSION, and only the
/// ApiVersions entry, so that the client can retry with a version we speak.
pub fn api_versions_fallback_frame(correlation_id: i32) -> Result<Bytes, EncodeError> {
    let (min, max) = SUPPORTED_APIS
        .iter()
        .find(|a| a.api_key == ApiKey::ApiVersions)
        .map_or((0, 0), |a| (a.min_version, a.max_version));
    let body = ApiVersionsResponse::default()
        .with_error_code(KafkaError::UnsupportedVersion.code())
        .with_api_keys(vec![ApiVersion::default()
            .with_api_key(ApiKey::ApiVersions as i16)
            .with_min_version(min)
            .with_max_version(max)]);
    encode_response(ApiKey::ApiVersions, 0, correlation_id, &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Buf;
    use kafka_protocol::protocol::Decodable;

    #[test]
    fn table_is_within_the_crate_and_the_guard() {
        for a in SUPPORTED_APIS {
            let crate_range = crate_request_versions(a.api_key);
            assert!(a.min_version <= a.max_version, "{a:?}");
            // Below the crate's range, the legacy decoder must cover it, right up to the crate's.
            let min = match crate::legacy::legacy_versions(a.api_key) {
                Some(legacy) => {
                    assert_eq!(legacy.max + 1, crate_range.min, "{a:?}: gap between legacy and crate");
                    legacy.min
                }
                None => crate_range.min,
            };
            assert!(min <= a.min_version && a.max_version <= crate_range.max, "{a:?}");
            assert!(crate::shape::schema(a.api_key).is_some(), "{a:?} has no guard schema");
        }
    }

    #[test]
    fn full_response_round_trips_at_every_version() {
        for version in 0..=3 {
            let frame =
                encode_response(ApiKey::ApiVersions, version, 9, &api_versions_response()).expect("encode");
            let mut buf = frame.slice(4..);
            assert_eq!(buf.get_i32(), 9, "correlation id; header v0 has no tagged fields");
            let body = ApiVersionsResponse::decode(&mut buf, version).expect("decode");
            assert_eq!(body.error_code, 0);
            assert_eq!(body.api_keys.len(), SUPPORTED_APIS.len());
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn fallback_is_v0_with_unsupported_version() {
        let frame = api_versions_fallback_frame(77).expect("encode");
        let mut buf = frame.clone();
        assert_eq!(buf.get_i32() as usize, frame.len() - 4);
        assert_eq!(buf.get_i32(), 77);
        let body = ApiVersionsResponse::decode(&mut buf, 0).expect("decode");
        assert_eq!(body.error_code, 35);
        assert_eq!(body.api_keys.len(), 1);
        assert_eq!(body.api_keys[0].api_key, ApiKey::ApiVersions as i16);
        assert_eq!(body.api_keys[0].max_version, 3);
        assert!(buf.is_empty());
    }
}
