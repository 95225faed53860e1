//! The request versions the `kafka-protocol` crate no longer decodes but Kafka 3.7 still serves,
//! and that Debian's old clients send: Produce v0–2, Fetch v0–3 and ListOffsets v0 (sarama 1.22
//! with its default `Version`, segmentio/kafka-go 0.2.1, kafka-python pinned to 0.10 or older),
//! DescribeConfigs v0 (sarama's `ClusterAdmin` below `Version` 0.11), OffsetCommit v0–1 (sarama's
//! offset manager without `Offsets.Retention`; kafka-python at 0.8.x) and OffsetFetch v0
//! (kafka-python at 0.8.x).
//!
//! Their schemas are small and fixed (no flexible versions, no tagged fields), so they are
//! decoded and encoded here by hand, following the Kafka protocol guide:
//!
//! ```text
//! ProduceRequest v0-2     acks i16, timeout_ms i32,
//!                         [topic string, [partition i32, records bytes]]
//! ProduceResponse v0      [topic string, [partition i32, error_code i16, base_offset i64]]
//!                 v1      v0, then throttle_time_ms i32
//!                 v2      partitions add log_append_time_ms i64 after base_offset
//! FetchRequest v0-2       replica_id i32, max_wait_ms i32, min_bytes i32,
//!                         [topic string, [partition i32, fetch_offset i64, partition_max_bytes i32]]
//!              v3         max_bytes i32 after min_bytes
//! FetchResponse v0        [topic string, [partition i32, error_code i16, high_watermark i64,
//!                         records bytes]]
//!               v1-3      throttle_time_ms i32 first, then v0
//! ListOffsetsRequest v0   replica_id i32,
//!                         [topic string, [partition i32, timestamp i64, max_num_offsets i32]]
//! ListOffsetsResponse v0  [topic string, [partition i32, error_code i16, offsets [i64]]]
//! DescribeConfigsRequest v0   [resource_type i8, resource_name string, config_names [string]?]
//! DescribeConfigsResponse v0  throttle_time_ms i32, [error_code i16, error_message string?,
//!                             resource_type i8, resource_name string, [name string,
//!                             value string?, read_only bool, is_default bool, is_sensitive bool]]
//! OffsetCommitRequest v0  group_id string,
//!                         [topic string, [partition i32, offset i64, metadata string?]]
//!                     v1  group_id string, generation_id i32, member_id string,
//!                         [topic string, [partition i32, offset i64, commit_timestamp i64,
//!                         metadata string?]]
//! OffsetCommitResponse v0-1  [topic string, [partition i32, error_code i16]]
//! OffsetFetchRequest v0   group_id string, [topic string, [partition i32]]
//! OffsetFetchResponse v0  [topic string, [partition i32, offset i64, metadata string?,
//!                         error_code i16]]
//! ```
//! (`?` marks nullable.)
//!
//! All use request header v1 and response header v0. Records stay slices of the request frame.
//!
//! The last three carry no message sets: they are decoded straight into the crate's request of
//! the nearest version it decodes (DescribeConfigs v1 without synonyms, OffsetCommit v2 with
//! retention -1 — v1's per-partition commit timestamps are dropped, as Kafka 3.7 also ignores
//! them for expiry; v0 gets generation -1 and member "", a commit outside any generation, as
//! Kafka 3.7 serves v0 like v1 storage-wise — and OffsetFetch v1, whose layout v0 shares), so
//! the current handlers serve them; only their responses are encoded here, from the crate's
//! response structs.
//!
//! The decoder trusts nothing: every length and count is checked against the bytes behind it
//! before anything is sliced or allocated, all arrays together are bounded by
//! [`MAX_ELEMENTS_PER_REQUEST`], and failures are [`LegacyDecodeError`]s, never panics.
//! Trailing bytes after the body are allowed, as Kafka allows them.
//!
//! [`crate::request::parse_request`] puts the result in [`crate::Request::legacy`] and, in
//! `body`, the same request in the crate's version-neutral structs (as Kafka's own data classes
//! are), so that code looking at `body` sees the right topics and partitions. The records of a
//! legacy Produce are magic 0/1 message sets, though, and the responses must be encoded here:
//! handlers serve these requests from `legacy`.

use bytes::{BufMut, Bytes};
use kafka_protocol::messages::{
    describe_configs_request, fetch_request, list_offsets_request, offset_commit_request,
    offset_fetch_request, produce_request, ApiKey, BrokerId, DescribeConfigsRequest, DescribeConfigsResponse,
    FetchRequest, GroupId, ListOffsetsRequest, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, ProduceRequest, RequestKind, TopicName,
};
use kafka_protocol::protocol::{StrBytes, VersionRange};

use crate::response::{put_response_header, SIZE_PREFIX_BYTES};
use crate::shape::MAX_ELEMENTS_PER_REQUEST;

/// Produce versions decoded here (the crate starts at 3).
pub const PRODUCE_VERSIONS: VersionRange = VersionRange { min: 0, max: 2 };
/// Fetch versions decoded here (the crate starts at 4).
pub const FETCH_VERSIONS: VersionRange = VersionRange { min: 0, max: 3 };
/// ListOffsets versions decoded here (the crate starts at 1).
pub const LIST_OFFSETS_VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };
/// DescribeConfigs versions decoded here (the crate starts at 1).
pub const DESCRIBE_CONFIGS_VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };
/// OffsetCommit versions decoded here (the crate starts at 2).
pub const OFFSET_COMMIT_VERSIONS: VersionRange = VersionRange { min: 0, max: 1 };
/// OffsetFetch versions decoded here (the crate starts at 1).
pub const OFFSET_FETCH_VERSIONS: VersionRange = VersionRange { min: 0, max: 0 };
/// `config_source` DEFAULT_CONFIG: what DescribeConfigs v0's `is_default` stands for.
const CONFIG_SOURCE_DEFAULT: i8 = 5;

/// The versions of `api_key` this module decodes, if any.
pub fn legacy_versions(api_key: ApiKey) -> Option<VersionRange> {
    match api_key {
        ApiKey::Produce => Some(PRODUCE_VERSIONS),
        ApiKey::Fetch => Some(FETCH_VERSIONS),
        ApiKey::ListOffsets => Some(LIST_OFFSETS_VERSIONS),
        ApiKey::DescribeConfigs => Some(DESCRIBE_CONFIGS_VERSIONS),
        ApiKey::OffsetCommit => Some(OFFSET_COMMIT_VERSIONS),
        ApiKey::OffsetFetch => Some(OFFSET_FETCH_VERSIONS),
        _ => None,
    }
}

/// Whether `api_key` at `version` is decoded here rather than by the crate.
pub fn is_legacy(api_key: ApiKey, version: i16) -> bool {
    legacy_versions(api_key).is_some_and(|r| r.min <= version && version <= r.max)
}

/// A decoded legacy request.
#[derive(Debug, Clone, PartialEq)]
pub enum LegacyRequest {
    Produce(LegacyProduceRequest),
    Fetch(LegacyFetchRequest),
    ListOffsets(LegacyListOffsetsRequest),
    /// DescribeConfigs v0 as the crate's v1 request (no synonyms, no documentation).
    DescribeConfigs(DescribeConfigsRequest),
    /// OffsetCommit v0-1 as the crate's v2 request (retention -1; v0: generation -1, member "").
    OffsetCommit(OffsetCommitRequest),
    /// OffsetFetch v0 as the crate's v1 request.
    OffsetFetch(OffsetFetchRequest),
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegacyProduceRequest {
    pub acks: i16,
    pub timeout_ms: i32,
    pub topics: Vec<LegacyProduceTopic>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegacyProduceTopic {
    pub name: StrBytes,
    pub partitions: Vec<LegacyProducePartition>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegacyProducePartition {
    pub partition: i32,
    /// A magic 0/1 message set (a slice of the request frame); `None` when sent as null.
    pub records: Option<Bytes>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegacyFetchRequest {
    pub replica_id: i32,
    pub max_wait_ms: i32,
    pub min_bytes: i32,
    /// The response-wide limit: v3 only (`None` for v0-2: no limit).
    pub max_bytes: Option<i32>,
    pub topics: Vec<LegacyFetchTopic>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegacyFetchTopic {
    pub name: StrBytes,
    pub partitions: Vec<LegacyFetchPartition>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegacyFetchPartition {
    pub partition: i32,
    pub fetch_offset: i64,
    pub partition_max_bytes: i32,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegacyListOffsetsRequest {
    pub replica_id: i32,
    pub topics: Vec<LegacyListOffsetsTopic>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegacyListOffsetsTopic {
    pub name: StrBytes,
    pub partitions: Vec<LegacyListOffsetsPartition>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LegacyListOffsetsPartition {
    pub partition: i32,
    /// -1 latest, -2 earliest, else a time in ms.
    pub timestamp: i64,
    pub max_num_offsets: i32,
}

/// Why a legacy request body does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyDecodeError {
    #[error("body ends {missing_bytes} bytes short at offset {offset}")]
    Truncated { offset: usize, missing_bytes: usize },
    #[error("array at offset {offset} claims {count} elements but only {remaining_bytes} bytes remain")]
    ImpossibleCount { offset: usize, count: i32, remaining_bytes: usize },
    #[error("request holds more than {MAX_ELEMENTS_PER_REQUEST} array elements")]
    TooManyElements,
    #[error("null or negative length {length} at offset {offset} where a value is required")]
    BadLength { offset: usize, length: i32 },
    #[error("topic name at offset {offset} is not UTF-8")]
    NotUtf8 { offset: usize },
    #[error("{0:?} v{1} is not a legacy version")]
    NotLegacy(ApiKey, i16),
}

/// Decodes the body (the bytes after the request header) of a legacy `api_key` request at
/// `version`. Returns the legacy request and its translation into the crate's structs.
pub fn decode(
    api_key: ApiKey,
    version: i16,
    body: Bytes,
) -> Result<(LegacyRequest, RequestKind), LegacyDecodeError> {
    if !is_legacy(api_key, version) {
        return Err(LegacyDecodeError::NotLegacy(api_key, version));
    }
    let mut r = Reader { buf: body, pos: 0, elements: 0 };
    let legacy = match api_key {
        ApiKey::Produce => LegacyRequest::Produce(decode_produce(&mut r)?),
        ApiKey::Fetch => LegacyRequest::Fetch(decode_fetch(&mut r, version)?),
        ApiKey::DescribeConfigs => LegacyRequest::DescribeConfigs(decode_describe_configs(&mut r)?),
        ApiKey::OffsetCommit => LegacyRequest::OffsetCommit(decode_offset_commit(&mut r, version)?),
        ApiKey::OffsetFetch => LegacyRequest::OffsetFetch(decode_offset_fetch(&mut r)?),
        _ => LegacyRequest::ListOffsets(decode_list_offsets(&mut r)?),
    };
    let kind = legacy.to_request_kind();
    Ok((legacy, kind))
}

/// Smallest encodings, for checking array counts: a topic is at least an empty string and an
/// empty array.
const TOPIC_MIN_BYTES: usize = 2 + 4;
const PRODUCE_PARTITION_MIN_BYTES: usize = 4 + 4;
const FETCH_PARTITION_BYTES: usize = 4 + 8 + 4;
const LIST_OFFSETS_PARTITION_BYTES: usize = 4 + 8 + 4;
/// resource type, empty name, null key list.
const DESCRIBE_CONFIGS_RESOURCE_MIN_BYTES: usize = 1 + 2 + 4;
const STRING_MIN_BYTES: usize = 2;
/// partition, offset, null metadata (v1: and the commit timestamp).
const OFFSET_COMMIT_PARTITION_MIN_BYTES: usize = 4 + 8 + 2;
const COMMIT_TIMESTAMP_BYTES: usize = 8;
const PARTITION_INDEX_BYTES: usize = 4;

fn decode_produce(r: &mut Reader) -> Result<LegacyProduceRequest, LegacyDecodeError> {
    let acks = r.i16()?;
    let timeout_ms = r.i32()?;
    let mut topics = Vec::with_capacity(r.count(TOPIC_MIN_BYTES)?);
    for _ in 0..topics.capacity() {
        let name = r.string()?;
        let mut partitions = Vec::with_capacity(r.count(PRODUCE_PARTITION_MIN_BYTES)?);
        for _ in 0..partitions.capacity() {
            let partition = r.i32()?;
            let records = r.nullable_bytes()?;
            partitions.push(LegacyProducePartition { partition, records });
        }
        topics.push(LegacyProduceTopic { name, partitions });
    }
    Ok(LegacyProduceRequest { acks, timeout_ms, topics })
}

fn decode_fetch(r: &mut Reader, version: i16) -> Result<LegacyFetchRequest, LegacyDecodeError> {
    let replica_id = r.i32()?;
    let max_wait_ms = r.i32()?;
    let min_bytes = r.i32()?;
    let max_bytes = if version >= 3 { Some(r.i32()?) } else { None };
    let mut topics = Vec::with_capacity(r.count(TOPIC_MIN_BYTES)?);
    for _ in 0..topics.capacity() {
        let name = r.string()?;
        let mut partitions = Vec::with_capacity(r.count(FETCH_PARTITION_BYTES)?);
        for _ in 0..partitions.capacity() {
            let partition = r.i32()?;
            let fetch_offset = r.i64()?;
            let partition_max_bytes = r.i32()?;
            partitions.push(LegacyFetchPartition { partition, fetch_offset, partition_max_bytes });
        }
        topics.push(LegacyFetchTopic { name, partitions });
    }
    Ok(LegacyFetchRequest { replica_id, max_wait_ms, min_bytes, max_bytes, topics })
}

fn decode_list_offsets(r: &mut Reader) -> Result<LegacyListOffsetsRequest, LegacyDecodeError> {
    let replica_id = r.i32()?;
    let mut topics = Vec::with_capacity(r.count(TOPIC_MIN_BYTES)?);
    for _ in 0..topics.capacity() {
        let name = r.string()?;
        let mut partitions = Vec::with_capacity(r.count(LIST_OFFSETS_PARTITION_BYTES)?);
        for _ in 0..partitions.capacity() {
            let partition = r.i32()?;
            let timestamp = r.i64()?;
            let max_num_offsets = r.i32()?;
            partitions.push(LegacyListOffsetsPartition { partition, timestamp, max_num_offsets });
        }
        topics.push(LegacyListOffsetsTopic { name, partitions });
    }
    Ok(LegacyListOffsetsRequest { replica_id, topics })
}

fn decode_describe_configs(r: &mut Reader) -> Result<DescribeConfigsRequest, LegacyDecodeError> {
    let mut resources = Vec::with_capacity(r.count(DESCRIBE_CONFIGS_RESOURCE_MIN_BYTES)?);
    for _ in 0..resources.capacity() {
        let resource_type = r.i8()?;
        let resource_name = r.string()?;
        let configuration_keys = match r.nullable_count(STRING_MIN_BYTES)? {
            None => None,
            Some(n) => {
                let mut keys = Vec::with_capacity(n);
                for _ in 0..n {
                    keys.push(r.string()?);
                }
                Some(keys)
            }
        };
        resources.push(
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(resource_name)
                .with_configuration_keys(configuration_keys),
        );
    }
    Ok(DescribeConfigsRequest::default()
        .with_resources(resources)
        .with_include_synonyms(false)
        .with_include_documentation(false))
}

fn decode_offset_commit(r: &mut Reader, version: i16) -> Result<OffsetCommitRequest, LegacyDecodeError> {
    let group_id = r.string()?;
    let (generation, member_id) = if version >= 1 {
        (r.i32()?, r.string()?)
    } else {
        // v0 commits outside any generation (Kafka's "simple" commit).
        (-1, StrBytes::default())
    };
    let partition_min_bytes =
        OFFSET_COMMIT_PARTITION_MIN_BYTES + if version >= 1 { COMMIT_TIMESTAMP_BYTES } else { 0 };
    let mut topics = Vec::with_capacity(r.count(TOPIC_MIN_BYTES)?);
    for _ in 0..topics.capacity() {
        let name = r.string()?;
        let mut partitions = Vec::with_capacity(r.count(partition_min_bytes)?);
        for _ in 0..partitions.capacity() {
            let partition_index = r.i32()?;
            let committed_offset = r.i64()?;
            if version >= 1 {
                // The per-partition commit timestamp: not kept (see the module docs).
                r.i64()?;
            }
            let committed_metadata = r.nullable_string()?;
            partitions.push(
                offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(partition_index)
                    .with_committed_offset(committed_offset)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(committed_metadata),
            );
        }
        topics.push(
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(name))
                .with_partitions(partitions),
        );
    }
    Ok(OffsetCommitRequest::default()
        .with_group_id(GroupId(group_id))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(member_id)
        .with_group_instance_id(None)
        .with_retention_time_ms(-1)
        .with_topics(topics))
}

fn decode_offset_fetch(r: &mut Reader) -> Result<OffsetFetchRequest, LegacyDecodeError> {
    let group_id = r.string()?;
    let mut topics = Vec::with_capacity(r.count(TOPIC_MIN_BYTES)?);
    for _ in 0..topics.capacity() {
        let name = r.string()?;
        let mut partition_indexes = Vec::with_capacity(r.count(PARTITION_INDEX_BYTES)?);
        for _ in 0..partition_indexes.capacity() {
            partition_indexes.push(r.i32()?);
        }
        topics.push(
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(name))
                .with_partition_indexes(partition_indexes),
        );
    }
    Ok(OffsetFetchRequest::default().with_group_id(GroupId(group_id)).with_topics(Some(topics)))
}

impl LegacyRequest {
    /// The same request in the crate's structs (what `Request::body` holds). Lossy only for
    /// ListOffsets v0's `max_num_offsets`, which the crate's struct no longer has (and
    /// OffsetCommit v1's commit timestamps, dropped when decoding).
    pub fn to_request_kind(&self) -> RequestKind {
        match self {
            LegacyRequest::DescribeConfigs(r) => RequestKind::DescribeConfigs(r.clone()),
            LegacyRequest::OffsetCommit(r) => RequestKind::OffsetCommit(r.clone()),
            LegacyRequest::OffsetFetch(r) => RequestKind::OffsetFetch(r.clone()),
            LegacyRequest::Produce(p) => RequestKind::Produce(
                ProduceRequest::default().with_acks(p.acks).with_timeout_ms(p.timeout_ms).with_topic_data(
                    p.topics
                        .iter()
                        .map(|t| {
                            produce_request::TopicProduceData::default()
                                .with_name(TopicName(t.name.clone()))
                                .with_partition_data(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            produce_request::PartitionProduceData::default()
                                                .with_index(p.partition)
                                                .with_records(p.records.clone())
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            ),
            LegacyRequest::Fetch(f) => RequestKind::Fetch(
                FetchRequest::default()
                    .with_replica_id(BrokerId(f.replica_id))
                    .with_max_wait_ms(f.max_wait_ms)
                    .with_min_bytes(f.min_bytes)
                    .with_max_bytes(f.max_bytes.unwrap_or(i32::MAX))
                    .with_topics(
                        f.topics
                            .iter()
                            .map(|t| {
                                fetch_request::FetchTopic::default()
                                    .with_topic(TopicName(t.name.clone()))
                                    .with_partitions(
                                        t.partitions
                                            .iter()
                                            .map(|p| {
                                                fetch_request::FetchPartition::default()
                                                    .with_partition(p.partition)
                                                    .with_fetch_offset(p.fetch_offset)
                                                    .with_partition_max_bytes(p.partition_max_bytes)
                                            })
                                            .collect(),
                                    )
                            })
                            .collect(),
                    ),
            ),
            LegacyRequest::ListOffsets(l) => RequestKind::ListOffsets(
                ListOffsetsRequest::default().with_replica_id(BrokerId(l.replica_id)).with_topics(
                    l.topics
                        .iter()
                        .map(|t| {
                            list_offsets_request::ListOffsetsTopic::default()
                                .with_name(TopicName(t.name.clone()))
                                .with_partitions(
                                    t.partitions
                                        .iter()
                                        .map(|p| {
                                            list_offsets_request::ListOffsetsPartition::default()
                                                .with_partition_index(p.partition)
                                                .with_timestamp(p.timestamp)
                                        })
                                        .collect(),
                                )
                        })
                        .collect(),
                ),
            ),
        }
    }
}

/// A bounds-checked cursor over the body.
struct Reader {
    buf: Bytes,
    pos: usize,
    /// Array elements so far, all arrays together.
    elements: usize,
}

impl Reader {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn take(&mut self, n: usize) -> Result<std::ops::Range<usize>, LegacyDecodeError> {
        if n > self.remaining() {
            return Err(LegacyDecodeError::Truncated {
                offset: self.pos,
                missing_bytes: n - self.remaining(),
            });
        }
        let start = self.pos;
        self.pos += n;
        Ok(start..self.pos)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], LegacyDecodeError> {
        let range = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(&self.buf[range]);
        Ok(out)
    }

    fn i8(&mut self) -> Result<i8, LegacyDecodeError> {
        Ok(i8::from_be_bytes(self.array()?))
    }

    fn i16(&mut self) -> Result<i16, LegacyDecodeError> {
        Ok(i16::from_be_bytes(self.array()?))
    }

    fn i32(&mut self) -> Result<i32, LegacyDecodeError> {
        Ok(i32::from_be_bytes(self.array()?))
    }

    fn i64(&mut self) -> Result<i64, LegacyDecodeError> {
        Ok(i64::from_be_bytes(self.array()?))
    }

    /// A non-null string (topic names).
    fn string(&mut self) -> Result<StrBytes, LegacyDecodeError> {
        let offset = self.pos;
        let len = self.i16()?;
        if len < 0 {
            return Err(LegacyDecodeError::BadLength { offset, length: i32::from(len) });
        }
        let range = self.take(len as usize)?;
        StrBytes::from_utf8(self.buf.slice(range)).map_err(|_| LegacyDecodeError::NotUtf8 { offset })
    }

    /// A nullable string (commit metadata).
    fn nullable_string(&mut self) -> Result<Option<StrBytes>, LegacyDecodeError> {
        let offset = self.pos;
        match self.i16()? {
            -1 => Ok(None),
            n if n < 0 => Err(LegacyDecodeError::BadLength { offset, length: i32::from(n) }),
            n => {
                let range = self.take(n as usize)?;
                StrBytes::from_utf8(self.buf.slice(range))
                    .map(Some)
                    .map_err(|_| LegacyDecodeError::NotUtf8 { offset })
            }
        }
    }

    /// Nullable bytes, as a slice of the frame (no copy).
    fn nullable_bytes(&mut self) -> Result<Option<Bytes>, LegacyDecodeError> {
        let offset = self.pos;
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(LegacyDecodeError::BadLength { offset, length: n }),
            n => {
                let range = self.take(n as usize)?;
                Ok(Some(self.buf.slice(range)))
            }
        }
    }

    /// A non-null array's count, checked against the bytes left (each element takes at least
    /// `min_element_bytes`) and against the per-request element bound, before any allocation.
    fn count(&mut self, min_element_bytes: usize) -> Result<usize, LegacyDecodeError> {
        let offset = self.pos;
        match self.nullable_count(min_element_bytes)? {
            Some(n) => Ok(n),
            None => Err(LegacyDecodeError::BadLength { offset, length: -1 }),
        }
    }

    /// [`Reader::count`] for a nullable array: `None` when sent as null (-1).
    fn nullable_count(&mut self, min_element_bytes: usize) -> Result<Option<usize>, LegacyDecodeError> {
        let offset = self.pos;
        let count = self.i32()?;
        if count == -1 {
            return Ok(None);
        }
        if count < 0 {
            return Err(LegacyDecodeError::BadLength { offset, length: count });
        }
        let n = count as usize;
        if n.saturating_mul(min_element_bytes) > self.remaining() {
            return Err(LegacyDecodeError::ImpossibleCount {
                offset,
                count,
                remaining_bytes: self.remaining(),
            });
        }
        self.elements = self.elements.saturating_add(n);
        if self.elements > MAX_ELEMENTS_PER_REQUEST {
            return Err(LegacyDecodeError::TooManyElements);
        }
        Ok(Some(n))
    }
}

// ---- responses ----

/// Why a legacy response could not be encoded (broker bugs or absurd sizes, not client input).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LegacyEncodeError {
    #[error("{api_key:?} v{version} is not a legacy version")]
    NotLegacy { api_key: ApiKey, version: i16 },
    #[error("string of {0} bytes does not fit a Kafka string")]
    StringTooLong(usize),
    #[error("{what} of {size_bytes} bytes does not fit an i32")]
    TooLarge { what: &'static str, size_bytes: usize },
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LegacyProduceResponse {
    pub topics: Vec<LegacyProduceTopicResponse>,
    /// Written for v1+.
    pub throttle_time_ms: i32,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyProduceTopicResponse {
    pub name: StrBytes,
    pub partitions: Vec<LegacyProducePartitionResponse>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyProducePartitionResponse {
    pub partition: i32,
    pub error_code: i16,
    pub base_offset: i64,
    /// Written for v2: the broker's time for `LogAppendTime` topics, else -1.
    pub log_append_time_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LegacyFetchResponse {
    /// Written for v1+.
    pub throttle_time_ms: i32,
    pub topics: Vec<LegacyFetchTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyFetchTopicResponse {
    pub name: StrBytes,
    pub partitions: Vec<LegacyFetchPartitionResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyFetchPartitionResponse {
    pub partition: i32,
    pub error_code: i16,
    pub high_watermark: i64,
    /// A magic 0 (v0-1) or magic 1 (v2-3) message set.
    pub records: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct LegacyListOffsetsResponse {
    pub topics: Vec<LegacyListOffsetsTopicResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyListOffsetsTopicResponse {
    pub name: StrBytes,
    pub partitions: Vec<LegacyListOffsetsPartitionResponse>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LegacyListOffsetsPartitionResponse {
    pub partition: i32,
    pub error_code: i16,
    pub offsets: Vec<i64>,
}

/// Builds one response frame: size prefix, header v0, body.
struct FrameWriter {
    buf: Vec<u8>,
}

impl FrameWriter {
    fn new(correlation_id: i32, capacity: usize) -> Self {
        let mut buf = Vec::with_capacity(capacity);
        buf.put_i32(0); // size, patched in finish
        put_response_header(&mut buf, 0, correlation_id);
        FrameWriter { buf }
    }

    fn array_len(&mut self, len: usize) -> Result<(), LegacyEncodeError> {
        let len =
            i32::try_from(len).map_err(|_| LegacyEncodeError::TooLarge { what: "array", size_bytes: len })?;
        self.buf.put_i32(len);
        Ok(())
    }

    fn string(&mut self, s: &str) -> Result<(), LegacyEncodeError> {
        let len = i16::try_from(s.len()).map_err(|_| LegacyEncodeError::StringTooLong(s.len()))?;
        self.buf.put_i16(len);
        self.buf.put_slice(s.as_bytes());
        Ok(())
    }

    fn nullable_string(&mut self, s: Option<&str>) -> Result<(), LegacyEncodeError> {
        match s {
            Some(s) => self.string(s),
            None => {
                self.buf.put_i16(-1);
                Ok(())
            }
        }
    }

    fn bool(&mut self, b: bool) {
        self.buf.put_u8(u8::from(b));
    }

    fn bytes(&mut self, b: &[u8]) -> Result<(), LegacyEncodeError> {
        let len = i32::try_from(b.len())
            .map_err(|_| LegacyEncodeError::TooLarge { what: "records", size_bytes: b.len() })?;
        self.buf.put_i32(len);
        self.buf.put_slice(b);
        Ok(())
    }

    fn finish(mut self) -> Result<Bytes, LegacyEncodeError> {
        let frame_bytes = self.buf.len() - SIZE_PREFIX_BYTES;
        let size = i32::try_from(frame_bytes)
            .map_err(|_| LegacyEncodeError::TooLarge { what: "response", size_bytes: frame_bytes })?;
        self.buf[..SIZE_PREFIX_BYTES].copy_from_slice(&size.to_be_bytes());
        Ok(Bytes::from(self.buf))
    }
}

fn check_version(api_key: ApiKey, version: i16) -> Result<(), LegacyEncodeError> {
    if is_legacy(api_key, version) {
        Ok(())
    } else {
        Err(LegacyEncodeError::NotLegacy { api_key, version })
    }
}

/// The whole frame answering a Produce v0-2 request.
pub fn encode_produce_response(
    version: i16,
    correlation_id: i32,
    resp: &LegacyProduceResponse,
) -> Result<Bytes, LegacyEncodeError> {
    check_version(ApiKey::Produce, version)?;
    let mut w = FrameWriter::new(correlation_id, 64);
    w.array_len(resp.topics.len())?;
    for topic in &resp.topics {
        w.string(&topic.name)?;
        w.array_len(topic.partitions.len())?;
        for p in &topic.partitions {
            w.buf.put_i32(p.partition);
            w.buf.put_i16(p.error_code);
            w.buf.put_i64(p.base_offset);
            if version >= 2 {
                w.buf.put_i64(p.log_append_time_ms);
            }
        }
    }
    if version >= 1 {
        w.buf.put_i32(resp.throttle_time_ms);
    }
    w.finish()
}

/// The whole frame answering a Fetch v0-3 request. The records are copied into it: these old
/// versions carry down-converted message sets, which exist only in memory anyway.
pub fn encode_fetch_response(
    version: i16,
    correlation_id: i32,
    resp: &LegacyFetchResponse,
) -> Result<Bytes, LegacyEncodeError> {
    check_version(ApiKey::Fetch, version)?;
    let records_bytes: usize =
        resp.topics.iter().flat_map(|t| t.partitions.iter()).map(|p| p.records.len()).sum();
    let mut w = FrameWriter::new(correlation_id, 64usize.saturating_add(records_bytes));
    if version >= 1 {
        w.buf.put_i32(resp.throttle_time_ms);
    }
    w.array_len(resp.topics.len())?;
    for topic in &resp.topics {
        w.string(&topic.name)?;
        w.array_len(topic.partitions.len())?;
        for p in &topic.partitions {
            w.buf.put_i32(p.partition);
            w.buf.put_i16(p.error_code);
            w.buf.put_i64(p.high_watermark);
            w.bytes(&p.records)?;
        }
    }
    w.finish()
}

/// The whole frame answering a ListOffsets v0 request.
pub fn encode_list_offsets_response(
    version: i16,
    correlation_id: i32,
    resp: &LegacyListOffsetsResponse,
) -> Result<Bytes, LegacyEncodeError> {
    check_version(ApiKey::ListOffsets, version)?;
    let mut w = FrameWriter::new(correlation_id, 64);
    w.array_len(resp.topics.len())?;
    for topic in &resp.topics {
        w.string(&topic.name)?;
        w.array_len(topic.partitions.len())?;
        for p in &topic.partitions {
            w.buf.put_i32(p.partition);
            w.buf.put_i16(p.error_code);
            w.array_len(p.offsets.len())?;
            for offset in &p.offsets {
                w.buf.put_i64(*offset);
            }
        }
    }
    w.finish()
}

/// The whole frame answering a DescribeConfigs v0 request, from the handler's response (built
/// for v1 without synonyms): `is_default` stands where v1 has `config_source`, true for
/// DEFAULT_CONFIG, as Kafka 3.7 fills it; synonyms, types and documentation do not exist in v0.
pub fn encode_describe_configs_response(
    version: i16,
    correlation_id: i32,
    resp: &DescribeConfigsResponse,
) -> Result<Bytes, LegacyEncodeError> {
    check_version(ApiKey::DescribeConfigs, version)?;
    let mut w = FrameWriter::new(correlation_id, 256);
    w.buf.put_i32(resp.throttle_time_ms);
    w.array_len(resp.results.len())?;
    for result in &resp.results {
        w.buf.put_i16(result.error_code);
        w.nullable_string(result.error_message.as_deref())?;
        w.buf.put_i8(result.resource_type);
        w.string(&result.resource_name)?;
        w.array_len(result.configs.len())?;
        for config in &result.configs {
            w.string(&config.name)?;
            w.nullable_string(config.value.as_deref())?;
            w.bool(config.read_only);
            w.bool(config.config_source == CONFIG_SOURCE_DEFAULT);
            w.bool(config.is_sensitive);
        }
    }
    w.finish()
}

/// The whole frame answering an OffsetCommit v0-1 request: v2's layout (the handler's
/// response), which has no throttle time either.
pub fn encode_offset_commit_response(
    version: i16,
    correlation_id: i32,
    resp: &OffsetCommitResponse,
) -> Result<Bytes, LegacyEncodeError> {
    check_version(ApiKey::OffsetCommit, version)?;
    let mut w = FrameWriter::new(correlation_id, 64);
    w.array_len(resp.topics.len())?;
    for topic in &resp.topics {
        w.string(&topic.name)?;
        w.array_len(topic.partitions.len())?;
        for p in &topic.partitions {
            w.buf.put_i32(p.partition_index);
            w.buf.put_i16(p.error_code);
        }
    }
    w.finish()
}

/// The whole frame answering an OffsetFetch v0 request: v1's layout (the handler's response;
/// no top-level error, so a group error is on every partition, as the v1 handler puts it).
pub fn encode_offset_fetch_response(
    version: i16,
    correlation_id: i32,
    resp: &OffsetFetchResponse,
) -> Result<Bytes, LegacyEncodeError> {
    check_version(ApiKey::OffsetFetch, version)?;
    let mut w = FrameWriter::new(correlation_id, 64);
    w.array_len(resp.topics.len())?;
    for topic in &resp.topics {
        w.string(&topic.name)?;
        w.array_len(topic.partitions.len())?;
        for p in &topic.partitions {
            w.buf.put_i32(p.partition_index);
            w.buf.put_i64(p.committed_offset);
            w.nullable_string(p.metadata.as_deref())?;
            w.buf.put_i16(p.error_code);
        }
    }
    w.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::protocol::Decodable;
    use proptest::prelude::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
        (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap()).collect()
    }

    // ---- a test-side encoder of legacy requests, for round trips ----

    fn put_string(out: &mut Vec<u8>, s: &str) {
        out.put_i16(s.len() as i16);
        out.put_slice(s.as_bytes());
    }

    fn encode_request(req: &LegacyRequest, version: i16) -> Vec<u8> {
        let mut out = Vec::new();
        match req {
            LegacyRequest::Produce(p) => {
                out.put_i16(p.acks);
                out.put_i32(p.timeout_ms);
                out.put_i32(p.topics.len() as i32);
                for t in &p.topics {
                    put_string(&mut out, &t.name);
                    out.put_i32(t.partitions.len() as i32);
                    for p in &t.partitions {
                        out.put_i32(p.partition);
                        match &p.records {
                            None => out.put_i32(-1),
                            Some(r) => {
                                out.put_i32(r.len() as i32);
                                out.put_slice(r);
                            }
                        }
                    }
                }
            }
            LegacyRequest::Fetch(f) => {
                out.put_i32(f.replica_id);
                out.put_i32(f.max_wait_ms);
                out.put_i32(f.min_bytes);
                if version >= 3 {
                    out.put_i32(f.max_bytes.unwrap_or(i32::MAX));
                }
                out.put_i32(f.topics.len() as i32);
                for t in &f.topics {
                    put_string(&mut out, &t.name);
                    out.put_i32(t.partitions.len() as i32);
                    for p in &t.partitions {
                        out.put_i32(p.partition);
                        out.put_i64(p.fetch_offset);
                        out.put_i32(p.partition_max_bytes);
                    }
                }
            }
            LegacyRequest::DescribeConfigs(d) => {
                out.put_i32(d.resources.len() as i32);
                for r in &d.resources {
                    out.put_i8(r.resource_type);
                    put_string(&mut out, &r.resource_name);
                    match &r.configuration_keys {
                        None => out.put_i32(-1),
                        Some(keys) => {
                            out.put_i32(keys.len() as i32);
                            for k in keys {
                                put_string(&mut out, k);
                            }
                        }
                    }
                }
            }
            LegacyRequest::OffsetCommit(c) => {
                put_string(&mut out, &c.group_id);
                if version >= 1 {
                    out.put_i32(c.generation_id_or_member_epoch);
                    put_string(&mut out, &c.member_id);
                }
                out.put_i32(c.topics.len() as i32);
                for t in &c.topics {
                    put_string(&mut out, &t.name);
                    out.put_i32(t.partitions.len() as i32);
                    for p in &t.partitions {
                        out.put_i32(p.partition_index);
                        out.put_i64(p.committed_offset);
                        if version >= 1 {
                            out.put_i64(1_700_000_000_000);
                        }
                        match &p.committed_metadata {
                            None => out.put_i16(-1),
                            Some(m) => put_string(&mut out, m),
                        }
                    }
                }
            }
            LegacyRequest::OffsetFetch(f) => {
                put_string(&mut out, &f.group_id);
                let topics = f.topics.as_deref().unwrap_or_default();
                out.put_i32(topics.len() as i32);
                for t in topics {
                    put_string(&mut out, &t.name);
                    out.put_i32(t.partition_indexes.len() as i32);
                    for p in &t.partition_indexes {
                        out.put_i32(*p);
                    }
                }
            }
            LegacyRequest::ListOffsets(l) => {
                out.put_i32(l.replica_id);
                out.put_i32(l.topics.len() as i32);
                for t in &l.topics {
                    put_string(&mut out, &t.name);
                    out.put_i32(t.partitions.len() as i32);
                    for p in &t.partitions {
                        out.put_i32(p.partition);
                        out.put_i64(p.timestamp);
                        out.put_i32(p.max_num_offsets);
                    }
                }
            }
        }
        out
    }

    fn name() -> impl Strategy<Value = StrBytes> {
        "[a-z0-9._-]{0,12}".prop_map(StrBytes::from_string)
    }

    fn produce() -> impl Strategy<Value = LegacyRequest> {
        let partition = (any::<i32>(), proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)))
            .prop_map(|(partition, r)| LegacyProducePartition { partition, records: r.map(Bytes::from) });
        let topic = (name(), proptest::collection::vec(partition, 0..3))
            .prop_map(|(name, partitions)| LegacyProduceTopic { name, partitions });
        (any::<i16>(), any::<i32>(), proptest::collection::vec(topic, 0..3)).prop_map(
            |(acks, timeout_ms, topics)| {
                LegacyRequest::Produce(LegacyProduceRequest { acks, timeout_ms, topics })
            },
        )
    }

    fn fetch(v3: bool) -> impl Strategy<Value = LegacyRequest> {
        let partition =
            (any::<i32>(), any::<i64>(), any::<i32>()).prop_map(|(partition, fetch_offset, max)| {
                LegacyFetchPartition { partition, fetch_offset, partition_max_bytes: max }
            });
        let topic = (name(), proptest::collection::vec(partition, 0..3))
            .prop_map(|(name, partitions)| LegacyFetchTopic { name, partitions });
        (any::<i32>(), any::<i32>(), any::<i32>(), any::<i32>(), proptest::collection::vec(topic, 0..3))
            .prop_map(move |(replica_id, max_wait_ms, min_bytes, max_bytes, topics)| {
                LegacyRequest::Fetch(LegacyFetchRequest {
                    replica_id,
                    max_wait_ms,
                    min_bytes,
                    max_bytes: v3.then_some(max_bytes),
                    topics,
                })
            })
    }

    fn list_offsets() -> impl Strategy<Value = LegacyRequest> {
        let partition = (any::<i32>(), any::<i64>(), any::<i32>()).prop_map(|(partition, timestamp, max)| {
            LegacyListOffsetsPartition { partition, timestamp, max_num_offsets: max }
        });
        let topic = (name(), proptest::collection::vec(partition, 0..3))
            .prop_map(|(name, partitions)| LegacyListOffsetsTopic { name, partitions });
        (any::<i32>(), proptest::collection::vec(topic, 0..3)).prop_map(|(replica_id, topics)| {
            LegacyRequest::ListOffsets(LegacyListOffsetsRequest { replica_id, topics })
        })
    }

    fn describe_configs() -> impl Strategy<Value = LegacyRequest> {
        let resource = (any::<i8>(), name(), proptest::option::of(proptest::collection::vec(name(), 0..3)))
            .prop_map(|(resource_type, resource_name, keys)| {
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(resource_name)
                    .with_configuration_keys(keys)
            });
        proptest::collection::vec(resource, 0..3).prop_map(|resources| {
            LegacyRequest::DescribeConfigs(
                DescribeConfigsRequest::default()
                    .with_resources(resources)
                    .with_include_synonyms(false)
                    .with_include_documentation(false),
            )
        })
    }

    fn offset_commit(v1: bool) -> impl Strategy<Value = LegacyRequest> {
        let partition = (any::<i32>(), any::<i64>(), proptest::option::of(name())).prop_map(
            |(partition_index, committed_offset, metadata)| {
                offset_commit_request::OffsetCommitRequestPartition::default()
                    .with_partition_index(partition_index)
                    .with_committed_offset(committed_offset)
                    .with_committed_leader_epoch(-1)
                    .with_committed_metadata(metadata)
            },
        );
        let topic = (name(), proptest::collection::vec(partition, 0..3)).prop_map(|(name, partitions)| {
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(name))
                .with_partitions(partitions)
        });
        (name(), any::<i32>(), name(), proptest::collection::vec(topic, 0..3)).prop_map(
            move |(group, generation, member, topics)| {
                let (generation, member) = if v1 { (generation, member) } else { (-1, StrBytes::default()) };
                LegacyRequest::OffsetCommit(
                    OffsetCommitRequest::default()
                        .with_group_id(GroupId(group))
                        .with_generation_id_or_member_epoch(generation)
                        .with_member_id(member)
                        .with_group_instance_id(None)
                        .with_retention_time_ms(-1)
                        .with_topics(topics),
                )
            },
        )
    }

    fn offset_fetch() -> impl Strategy<Value = LegacyRequest> {
        let topic = (name(), proptest::collection::vec(any::<i32>(), 0..4)).prop_map(|(name, partitions)| {
            offset_fetch_request::OffsetFetchRequestTopic::default()
                .with_name(TopicName(name))
                .with_partition_indexes(partitions)
        });
        (name(), proptest::collection::vec(topic, 0..3)).prop_map(|(group, topics)| {
            LegacyRequest::OffsetFetch(
                OffsetFetchRequest::default().with_group_id(GroupId(group)).with_topics(Some(topics)),
            )
        })
    }

    fn api_of(req: &LegacyRequest) -> ApiKey {
        match req {
            LegacyRequest::Produce(_) => ApiKey::Produce,
            LegacyRequest::Fetch(_) => ApiKey::Fetch,
            LegacyRequest::ListOffsets(_) => ApiKey::ListOffsets,
            LegacyRequest::DescribeConfigs(_) => ApiKey::DescribeConfigs,
            LegacyRequest::OffsetCommit(_) => ApiKey::OffsetCommit,
            LegacyRequest::OffsetFetch(_) => ApiKey::OffsetFetch,
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

        /// Encode → decode is the identity, for every legacy version; produce records come out
        /// as slices of the body; every strict prefix fails without panicking.
        #[test]
        fn round_trips(
            (req, version) in prop_oneof![
                (produce(), 0i16..=2),
                (fetch(false), 0i16..=2),
                (fetch(true), Just(3i16)),
                (list_offsets(), Just(0i16)),
                (describe_configs(), Just(0i16)),
                (offset_commit(false), Just(0i16)),
                (offset_commit(true), Just(1i16)),
                (offset_fetch(), Just(0i16)),
            ]
        ) {
            let api_key = api_of(&req);
            let body = Bytes::from(encode_request(&req, version));
            let (decoded, kind) = decode(api_key, version, body.clone()).expect("decodes");
            prop_assert_eq!(&decoded, &req);
            prop_assert_eq!(kind, req.to_request_kind());
            if let LegacyRequest::Produce(p) = &decoded {
                let range = body.as_ptr_range();
                for records in p.topics.iter().flat_map(|t| &t.partitions).filter_map(|p| p.records.as_ref()) {
                    prop_assert!(records.is_empty() || range.contains(&records.as_ptr()), "records were copied");
                }
            }
            for cut in 0..body.len() {
                // A prefix can be a valid shorter body only if it ends exactly where a whole
                // body would; with counts in front, that never happens before the end.
                prop_assert!(decode(api_key, version, body.slice(..cut)).is_err(), "prefix {cut} decoded");
            }
        }

        /// Random bodies: any outcome but a panic or a huge allocation.
        #[test]
        fn random_bodies_never_panic(
            api in 0usize..6,
            version_pick in 0i16..4,
            bytes in proptest::collection::vec(any::<u8>(), 0..200),
        ) {
            let api_key = [
                ApiKey::Produce,
                ApiKey::Fetch,
                ApiKey::ListOffsets,
                ApiKey::DescribeConfigs,
                ApiKey::OffsetCommit,
                ApiKey::OffsetFetch,
            ][api];
            let range = legacy_versions(api_key).unwrap();
            let version = range.min + version_pick % (range.max - range.min + 1);
            let _ = decode(api_key, version, Bytes::from(bytes));
        }

        /// Valid bodies with a few bytes overwritten.
        #[test]
        fn mutated_bodies_never_panic(
            (req, version) in prop_oneof![
                (produce(), Just(0i16)),
                (fetch(false), Just(0i16)),
                (list_offsets(), Just(0i16)),
                (describe_configs(), Just(0i16)),
                (offset_commit(false), Just(0i16)),
                (offset_commit(true), Just(1i16)),
                (offset_fetch(), Just(0i16)),
            ],
            edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..6),
        ) {
            let mut body = encode_request(&req, version);
            for (pos, value) in edits {
                let len = body.len();
                body[pos as usize % len] = value;
            }
            let _ = decode(api_of(&req), version, Bytes::from(body));
        }
    }

    #[test]
    fn huge_counts_and_bad_lengths_are_errors() {
        // Produce: acks, timeout, topics = i32::MAX in a tiny body.
        let mut body = vec![0, 1, 0, 0, 3, 232];
        body.extend_from_slice(&i32::MAX.to_be_bytes());
        let err = decode(ApiKey::Produce, 0, Bytes::from(body)).unwrap_err();
        assert!(matches!(err, LegacyDecodeError::ImpossibleCount { count: i32::MAX, .. }), "{err}");
        // Negative array count.
        let mut body = vec![0xff; 4];
        body.extend_from_slice(&(-5i32).to_be_bytes());
        let err = decode(ApiKey::ListOffsets, 0, Bytes::from(body)).unwrap_err();
        assert!(matches!(err, LegacyDecodeError::BadLength { length: -5, .. }), "{err}");
        // Null topic name.
        let mut body = vec![0, 1, 0, 0, 0, 10, 0, 0, 0, 1];
        body.extend_from_slice(&(-1i16).to_be_bytes());
        body.extend_from_slice(&[0; 4]);
        let err = decode(ApiKey::Produce, 2, Bytes::from(body)).unwrap_err();
        assert!(matches!(err, LegacyDecodeError::BadLength { length: -1, .. }), "{err}");
        // Records length past the end.
        let mut body = vec![0, 1, 0, 0, 0, 10, 0, 0, 0, 1, 0, 1, b't', 0, 0, 0, 1, 0, 0, 0, 0];
        body.extend_from_slice(&1000i32.to_be_bytes());
        body.extend_from_slice(b"short");
        let err = decode(ApiKey::Produce, 1, Bytes::from(body)).unwrap_err();
        assert!(matches!(err, LegacyDecodeError::Truncated { .. }), "{err}");
        // Not UTF-8.
        let body = vec![0, 1, 0, 0, 0, 10, 0, 0, 0, 1, 0, 1, 0xff, 0, 0, 0, 0];
        assert!(matches!(
            decode(ApiKey::Produce, 0, Bytes::from(body)),
            Err(LegacyDecodeError::NotUtf8 { .. })
        ));
        // Not legacy.
        assert!(matches!(decode(ApiKey::Produce, 3, Bytes::new()), Err(LegacyDecodeError::NotLegacy(..))));
        assert!(matches!(decode(ApiKey::Metadata, 0, Bytes::new()), Err(LegacyDecodeError::NotLegacy(..))));
    }

    #[test]
    fn trailing_bytes_are_allowed() {
        let req = LegacyRequest::ListOffsets(LegacyListOffsetsRequest { replica_id: -1, topics: vec![] });
        let mut body = encode_request(&req, 0);
        body.extend_from_slice(b"extra");
        assert_eq!(decode(ApiKey::ListOffsets, 0, Bytes::from(body)).unwrap().0, req);
    }

    // ---- bytes written by another implementation: kafka-python 2.0.2's protocol classes ----
    //
    // Generated with Debian's python3-kafka, e.g.
    //   ProduceRequest[2](required_acks=-1, timeout=1000,
    //       topics=[('t', [(0, b'abc')])]).encode()
    // (request bodies without the header; responses are the body after the correlation id).

    #[test]
    fn decodes_requests_written_by_kafka_python() {
        // ProduceRequest v2: acks -1, timeout 1000, topic "t", partition 0, records b"abc".
        let body = hex("ffff 000003e8 00000001 0001 74 00000001 00000000 00000003 616263");
        let (req, _) = decode(ApiKey::Produce, 2, Bytes::from(body)).unwrap();
        let LegacyRequest::Produce(p) = req else { panic!() };
        assert_eq!((p.acks, p.timeout_ms, &*p.topics[0].name), (-1, 1000, "t"));
        assert_eq!(p.topics[0].partitions[0].records.as_deref(), Some(&b"abc"[..]));
        // FetchRequest v3: replica -1, max wait 500, min bytes 1, max bytes 52428800,
        // topic "t", partition 2, offset 7, partition max 1048576.
        let body = hex(
            "ffffffff 000001f4 00000001 03200000 00000001 0001 74 00000001 00000002 0000000000000007 00100000",
        );
        let (req, _) = decode(ApiKey::Fetch, 3, Bytes::from(body)).unwrap();
        let LegacyRequest::Fetch(f) = req else { panic!() };
        assert_eq!((f.replica_id, f.max_wait_ms, f.min_bytes, f.max_bytes), (-1, 500, 1, Some(52_428_800)));
        assert_eq!(
            f.topics[0].partitions[0],
            LegacyFetchPartition { partition: 2, fetch_offset: 7, partition_max_bytes: 1_048_576 }
        );
        // OffsetRequest v0: replica -1, topic "t", partition 0, time -2, max offsets 1.
        let body = hex("ffffffff 00000001 0001 74 00000001 00000000 fffffffffffffffe 00000001");
        let (req, _) = decode(ApiKey::ListOffsets, 0, Bytes::from(body)).unwrap();
        let LegacyRequest::ListOffsets(l) = req else { panic!() };
        assert_eq!(
            l.topics[0].partitions[0],
            LegacyListOffsetsPartition { partition: 0, timestamp: -2, max_num_offsets: 1 }
        );
    }

    fn body_of(frame: &Bytes, correlation_id: i32) -> Vec<u8> {
        let size = i32::from_be_bytes(frame[..4].try_into().unwrap()) as usize;
        assert_eq!(size, frame.len() - 4);
        assert_eq!(i32::from_be_bytes(frame[4..8].try_into().unwrap()), correlation_id);
        frame[8..].to_vec()
    }

    #[test]
    fn responses_match_kafka_python() {
        let produce = LegacyProduceResponse {
            topics: vec![LegacyProduceTopicResponse {
                name: StrBytes::from_static_str("t"),
                partitions: vec![LegacyProducePartitionResponse {
                    partition: 1,
                    error_code: 0,
                    base_offset: 5,
                    log_append_time_ms: -1,
                }],
            }],
            throttle_time_ms: 0,
        };
        // ProduceResponse[v](topics=[('t', [(1, 0, 5, -1)])], throttle_time_ms=0) per version.
        let want = [
            "00000001 0001 74 00000001 00000001 0000 0000000000000005",
            "00000001 0001 74 00000001 00000001 0000 0000000000000005 00000000",
            "00000001 0001 74 00000001 00000001 0000 0000000000000005 ffffffffffffffff 00000000",
        ];
        for (version, want) in want.iter().enumerate() {
            let frame = encode_produce_response(version as i16, 7, &produce).unwrap();
            assert_eq!(body_of(&frame, 7), hex(want), "produce v{version}");
        }

        let fetch = LegacyFetchResponse {
            throttle_time_ms: 0,
            topics: vec![LegacyFetchTopicResponse {
                name: StrBytes::from_static_str("t"),
                partitions: vec![LegacyFetchPartitionResponse {
                    partition: 0,
                    error_code: 1,
                    high_watermark: 9,
                    records: Bytes::from_static(b"ab"),
                }],
            }],
        };
        let v0 = "00000001 0001 74 00000001 00000000 0001 0000000000000009 00000002 6162";
        for version in 0..=3 {
            let frame = encode_fetch_response(version, 8, &fetch).unwrap();
            let want = if version == 0 { hex(v0) } else { [hex("00000000"), hex(v0)].concat() };
            assert_eq!(body_of(&frame, 8), want, "fetch v{version}");
        }

        let offsets = LegacyListOffsetsResponse {
            topics: vec![LegacyListOffsetsTopicResponse {
                name: StrBytes::from_static_str("t"),
                partitions: vec![LegacyListOffsetsPartitionResponse {
                    partition: 0,
                    error_code: 0,
                    offsets: vec![12, 0],
                }],
            }],
        };
        let frame = encode_list_offsets_response(0, 9, &offsets).unwrap();
        let want = "00000001 0001 74 00000001 00000000 0000 00000002 000000000000000c 0000000000000000";
        assert_eq!(body_of(&frame, 9), hex(want));

        assert!(encode_produce_response(3, 1, &produce).is_err());
        assert!(encode_fetch_response(4, 1, &fetch).is_err());
        assert!(encode_list_offsets_response(1, 1, &offsets).is_err());
    }
    // ---- DescribeConfigs v0, OffsetCommit v0-1, OffsetFetch v0 (sarama 1.22, kafka-python) ----

    #[test]
    fn decodes_group_and_config_requests_into_the_crates_structs() {
        // DescribeConfigs v0 (sarama ClusterAdmin.DescribeConfig below 0.11): topic "t", keys
        // null; then a named key.
        let (req, kind) =
            decode(ApiKey::DescribeConfigs, 0, Bytes::from(hex("00000001 02 0001 74 ffffffff"))).unwrap();
        let LegacyRequest::DescribeConfigs(d) = req else { panic!() };
        assert_eq!(kind, RequestKind::DescribeConfigs(d.clone()));
        assert_eq!((d.include_synonyms, d.include_documentation), (false, false));
        assert_eq!(d.resources.len(), 1);
        assert_eq!((d.resources[0].resource_type, &*d.resources[0].resource_name), (2, "t"));
        assert_eq!(d.resources[0].configuration_keys, None);
        let (req, _) =
            decode(ApiKey::DescribeConfigs, 0, Bytes::from(hex("00000001 02 0001 74 00000001 0001 61")))
                .unwrap();
        let LegacyRequest::DescribeConfigs(d) = req else { panic!() };
        assert_eq!(d.resources[0].configuration_keys, Some(vec![StrBytes::from_static_str("a")]));

        // OffsetCommit v1 (sarama's offset manager without retention): group "g", generation
        // -1, member "", topic "t", partition 0, offset 5, timestamp -1 (ReceiveTime), "".
        let body = hex(
            "0001 67 ffffffff 0000 00000001 0001 74 00000001 00000000 0000000000000005 ffffffffffffffff 0000",
        );
        let (req, kind) = decode(ApiKey::OffsetCommit, 1, Bytes::from(body)).unwrap();
        let LegacyRequest::OffsetCommit(c) = req else { panic!() };
        assert_eq!(kind, RequestKind::OffsetCommit(c.clone()));
        assert_eq!((&**c.group_id, c.generation_id_or_member_epoch, &*c.member_id), ("g", -1, ""));
        assert_eq!((c.retention_time_ms, c.group_instance_id.clone()), (-1, None));
        let p = &c.topics[0].partitions[0];
        assert_eq!((&**c.topics[0].name, p.partition_index, p.committed_offset), ("t", 0, 5));
        assert_eq!((p.committed_leader_epoch, p.committed_metadata.as_deref()), (-1, Some("")));
        // v1 with a real generation and member.
        let body = hex("0001 67 00000003 0002 6d31 00000000");
        let (req, _) = decode(ApiKey::OffsetCommit, 1, Bytes::from(body)).unwrap();
        let LegacyRequest::OffsetCommit(c) = req else { panic!() };
        assert_eq!((c.generation_id_or_member_epoch, &*c.member_id), (3, "m1"));
        // OffsetCommit v0 (kafka-python at 0.8.1/0.8.2): no generation, member or timestamps;
        // null metadata.
        let body = hex("0001 67 00000001 0001 74 00000001 00000002 0000000000000007 ffff");
        let (req, _) = decode(ApiKey::OffsetCommit, 0, Bytes::from(body)).unwrap();
        let LegacyRequest::OffsetCommit(c) = req else { panic!() };
        assert_eq!((c.generation_id_or_member_epoch, &*c.member_id, c.retention_time_ms), (-1, "", -1));
        let p = &c.topics[0].partitions[0];
        assert_eq!((p.partition_index, p.committed_offset, p.committed_metadata.clone()), (2, 7, None));

        // OffsetFetch v0: group "g", topic "t", partitions 0 and 1.
        let body = hex("0001 67 00000001 0001 74 00000002 00000000 00000001");
        let (req, kind) = decode(ApiKey::OffsetFetch, 0, Bytes::from(body.clone())).unwrap();
        let LegacyRequest::OffsetFetch(f) = req else { panic!() };
        assert_eq!(kind, RequestKind::OffsetFetch(f.clone()));
        // v0's layout is v1's: the crate decodes the same bytes at v1 into the same struct.
        let crate_v1 = OffsetFetchRequest::decode(&mut Bytes::from(body), 1).unwrap();
        assert_eq!(f, crate_v1);
        let topics = f.topics.unwrap();
        assert_eq!((&**topics[0].name, topics[0].partition_indexes.clone()), ("t", vec![0, 1]));

        // A null topic array is an error in all three (nullable only in later versions), a
        // negative metadata length too.
        assert!(decode(ApiKey::OffsetFetch, 0, Bytes::from(hex("0001 67 ffffffff"))).is_err());
        assert!(decode(ApiKey::OffsetCommit, 0, Bytes::from(hex("0001 67 ffffffff"))).is_err());
        assert!(decode(ApiKey::DescribeConfigs, 0, Bytes::from(hex("ffffffff"))).is_err());
        let body = hex("0001 67 00000001 0001 74 00000001 00000002 0000000000000007 fffe");
        assert!(matches!(
            decode(ApiKey::OffsetCommit, 0, Bytes::from(body)),
            Err(LegacyDecodeError::BadLength { length: -2, .. })
        ));
        assert!(matches!(
            decode(ApiKey::OffsetCommit, 2, Bytes::new()),
            Err(LegacyDecodeError::NotLegacy(..))
        ));
        assert!(matches!(
            decode(ApiKey::OffsetFetch, 1, Bytes::new()),
            Err(LegacyDecodeError::NotLegacy(..))
        ));
    }

    #[test]
    fn group_and_config_responses_in_the_old_layouts() {
        use kafka_protocol::messages::describe_configs_response::{
            DescribeConfigsResourceResult, DescribeConfigsResult,
        };
        use kafka_protocol::messages::offset_commit_response::{
            OffsetCommitResponsePartition, OffsetCommitResponseTopic,
        };
        use kafka_protocol::messages::offset_fetch_response::{
            OffsetFetchResponsePartition, OffsetFetchResponseTopic,
        };
        use kafka_protocol::protocol::Encodable;

        let configs = DescribeConfigsResponse::default().with_results(vec![
            DescribeConfigsResult::default()
                .with_error_code(0)
                .with_error_message(None)
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("t"))
                .with_configs(vec![
                    DescribeConfigsResourceResult::default()
                        .with_name(StrBytes::from_static_str("cleanup.policy"))
                        .with_value(Some(StrBytes::from_static_str("delete")))
                        .with_config_source(5),
                    DescribeConfigsResourceResult::default()
                        .with_name(StrBytes::from_static_str("retention.ms"))
                        .with_value(Some(StrBytes::from_static_str("1000")))
                        .with_config_source(1),
                    DescribeConfigsResourceResult::default()
                        .with_name(StrBytes::from_static_str("x"))
                        .with_value(None)
                        .with_read_only(true)
                        .with_config_source(4)
                        .with_is_sensitive(true),
                ]),
            DescribeConfigsResult::default()
                .with_error_code(3)
                .with_error_message(Some(StrBytes::from_static_str("no")))
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("u"))
                .with_configs(vec![]),
        ]);
        // throttle; 2 results; each: error, message, type, name, configs [name, value,
        // read_only, is_default, is_sensitive].
        let want = "00000000 00000002 \
                    0000 ffff 02 0001 74 00000003 \
                    000e 636c65616e75702e706f6c696379 0006 64656c657465 00 01 00 \
                    000c 726574656e74696f6e2e6d73 0004 31303030 00 00 00 \
                    0001 78 ffff 01 00 01 \
                    0003 0002 6e6f 02 0001 75 00000000";
        let frame = encode_describe_configs_response(0, 11, &configs).unwrap();
        assert_eq!(body_of(&frame, 11), hex(want));

        let commit = OffsetCommitResponse::default().with_topics(vec![OffsetCommitResponseTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![
                OffsetCommitResponsePartition::default().with_partition_index(0).with_error_code(0),
                OffsetCommitResponsePartition::default().with_partition_index(1).with_error_code(25),
            ])]);
        let want = "00000001 0001 74 00000002 00000000 0000 00000001 0019";
        // The crate's v2 encoding is the same layout (v3 adds the throttle time).
        let mut v2 = bytes::BytesMut::new();
        commit.encode(&mut v2, 2).unwrap();
        assert_eq!(&v2[..], &hex(want)[..]);
        for version in 0..=1 {
            let frame = encode_offset_commit_response(version, 12, &commit).unwrap();
            assert_eq!(body_of(&frame, 12), hex(want), "offset commit v{version}");
        }

        let fetch = OffsetFetchResponse::default().with_topics(vec![OffsetFetchResponseTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("t")))
            .with_partitions(vec![
                OffsetFetchResponsePartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(42)
                    .with_metadata(Some(StrBytes::from_static_str("m")))
                    .with_error_code(0),
                OffsetFetchResponsePartition::default()
                    .with_partition_index(1)
                    .with_committed_offset(-1)
                    .with_metadata(None)
                    .with_error_code(16),
            ])]);
        let want = "00000001 0001 74 00000002 \
                    00000000 000000000000002a 0001 6d 0000 \
                    00000001 ffffffffffffffff ffff 0010";
        let mut v1 = bytes::BytesMut::new();
        fetch.encode(&mut v1, 1).unwrap();
        assert_eq!(&v1[..], &hex(want)[..]);
        let frame = encode_offset_fetch_response(0, 13, &fetch).unwrap();
        assert_eq!(body_of(&frame, 13), hex(want));

        assert!(encode_describe_configs_response(1, 1, &configs).is_err());
        assert!(encode_offset_commit_response(2, 1, &commit).is_err());
        assert!(encode_offset_fetch_response(1, 1, &fetch).is_err());
    }
}
