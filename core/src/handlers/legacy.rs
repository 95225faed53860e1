//! Produce v0–2, Fetch v0–3 and ListOffsets v0: the request versions of Debian's old clients
//! (sarama 1.22 with its default `Version` sends Produce v0, Fetch v0 and ListOffsets v0;
//! segmentio/kafka-go 0.2.1 Produce v2 and Fetch v2; kafka-python pinned to 0.10 Produce v2).
//! Their records are magic 0/1 message sets, so they are converted as Kafka 3.7 converts them:
//!
//! - **Produce** up-converts each partition's message set into one magic-2 batch and then goes
//!   the way of every produce: [`Partition::append`] validates, assigns offsets and writes it
//!   (a `LogAppendTime` topic stamps it there). A set whose first entry is already magic 2 is
//!   appended as it is (Kafka accepts the "wrong" magic in old produce versions too).
//! - **Fetch** waits like a current fetch (woken by appends, `max_wait_ms`), reads the same file
//!   regions, but copies them into memory and down-converts them to an uncompressed magic 0
//!   (v0–1) or magic 1 (v2–3) message set with absolute offsets. Copying breaks the zero-copy
//!   rule of invariant 5 on purpose, and only for these old versions: a message set in the old
//!   format does not exist on disk, so there is nothing to `sendfile`.
//! - **ListOffsets v0** answers with a list of offsets: the high watermark for latest (-1), the
//!   log start for earliest (-2), and for a time the first offset whose timestamp is at or
//!   after it (Kafka answers a time with segment base offsets by file mtime; the time index
//!   is the closer answer to what a consumer asks), at most `max_num_offsets` of them.
//! - **DescribeConfigs v0, OffsetCommit v0–1, OffsetFetch v0** carry no message sets:
//!   `shardlog_net::legacy` decoded them into the crate's request of the nearest version it
//!   decodes (DescribeConfigs v1 without synonyms, OffsetCommit v2 with retention -1 — v0 with
//!   generation -1 and member "", a commit outside any generation — and OffsetFetch v1), so the
//!   current handlers serve them at that version, and only the response is written in the old
//!   layout (DescribeConfigs v0 has `is_default` where v1 has `config_source`; OffsetCommit
//!   v0–1 and OffsetFetch v0 are v2's and v1's layouts).

use std::time::Duration;

use bytes::Bytes;
use shardlog_net::legacy::{
    encode_describe_configs_response, encode_fetch_response, encode_list_offsets_response,
    encode_offset_commit_response, encode_offset_fetch_response, encode_produce_response,
    LegacyFetchPartitionResponse, LegacyFetchRequest, LegacyFetchResponse, LegacyFetchTopicResponse,
    LegacyListOffsetsPartitionResponse, LegacyListOffsetsRequest, LegacyListOffsetsResponse,
    LegacyListOffsetsTopicResponse, LegacyProducePartitionResponse, LegacyProduceRequest,
    LegacyProduceResponse, LegacyProduceTopicResponse,
};
use shardlog_net::{KafkaError, LegacyRequest};
use shardlog_storage::legacy_format::{
    down_convert, up_convert, UpConvertLimits, MAGIC_AT, MAGIC_V0, MAGIC_V1,
};
use shardlog_storage::partition_log::ReadInfo;
use shardlog_storage::record_batch::MAGIC_V2;

use super::fetch::{long_poll, Slot, FETCH_RESPONSE_BYTES_MAX, FETCH_WAIT_MS_MAX};
use super::Response;
use crate::shard::{now_ms, Shard};
use crate::topic_config::effective_value;

/// Kafka's default `message.max.bytes`, if the topic's value cannot be read.
const DEFAULT_MAX_MESSAGE_BYTES: usize = 1_048_588;
/// What the compressed wrappers of one produce partition may inflate to, together, per
/// `max.message.bytes` of the topic (bounded below and above).
const DECOMPRESSED_PER_MESSAGE_BYTES: usize = 16;
const DECOMPRESSED_BYTES_MIN: usize = 16 << 20;
const DECOMPRESSED_BYTES_MAX: usize = 128 << 20;
/// The version whose handler logic serves DescribeConfigs v0 (v1: same fields, no synonyms
/// asked) and OffsetFetch v0 (v1: same layout, errors per partition).
const DESCRIBE_CONFIGS_SERVED_AS: i16 = 1;
const OFFSET_FETCH_SERVED_AS: i16 = 1;
/// What one compressed batch read from the log may inflate to when down-converting.
const DOWN_CONVERT_DECOMPRESSED_BYTES_MAX: usize = 64 << 20;

pub async fn handle(
    shard: &Shard,
    legacy: Option<LegacyRequest>,
    version: i16,
    correlation_id: i32,
) -> Response {
    match legacy {
        Some(LegacyRequest::Produce(req)) => produce(shard, req, version, correlation_id).await,
        Some(LegacyRequest::Fetch(req)) => fetch(shard, req, version, correlation_id).await,
        Some(LegacyRequest::ListOffsets(req)) => list_offsets(shard, req, version, correlation_id).await,
        Some(LegacyRequest::DescribeConfigs(req)) => {
            let body = super::admin::describe_configs(shard, req, DESCRIBE_CONFIGS_SERVED_AS).await;
            frame(encode_describe_configs_response(version, correlation_id, &body))
        }
        Some(LegacyRequest::OffsetCommit(req)) => {
            let body = super::group::offset_commit(shard, req, version).await;
            frame(encode_offset_commit_response(version, correlation_id, &body))
        }
        Some(LegacyRequest::OffsetFetch(req)) => {
            let body = super::group::offset_fetch(shard, req, OFFSET_FETCH_SERVED_AS).await;
            frame(encode_offset_fetch_response(version, correlation_id, &body))
        }
        None => Response::Close("legacy dispatch without a legacy request".to_string()),
    }
}

fn frame<E: std::fmt::Display>(encoded: Result<Bytes, E>) -> Response {
    match encoded {
        Ok(bytes) => Response::Frame(bytes),
        Err(e) => Response::Close(format!("cannot encode the response: {e}")),
    }
}

// ---- Produce v0-2 ----

async fn produce(shard: &Shard, req: LegacyProduceRequest, version: i16, correlation_id: i32) -> Response {
    let acks = req.acks;
    let mut topics = Vec::with_capacity(req.topics.len());
    let mut first_error = None;
    for topic in req.topics {
        let name = topic.name.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for data in topic.partitions {
            let bytes = data.records.as_ref().map_or(0, |r| r.len() as u64);
            let result = if !matches!(acks, -1..=1) {
                Err(KafkaError::InvalidRequiredAcks)
            } else {
                produce_one(shard, &name, data.partition, data.records, acks).await
            };
            shard.metrics.record_produce(result.as_ref().ok().map(|r| (bytes, r.appended_records as u64)));
            partitions.push(match result {
                Ok(r) => LegacyProducePartitionResponse {
                    partition: data.partition,
                    error_code: 0,
                    base_offset: r.base_offset,
                    log_append_time_ms: r.log_append_time_ms,
                },
                Err(e) => {
                    first_error.get_or_insert(e);
                    LegacyProducePartitionResponse {
                        partition: data.partition,
                        error_code: e.code(),
                        base_offset: -1,
                        log_append_time_ms: -1,
                    }
                }
            });
        }
        topics.push(LegacyProduceTopicResponse { name: topic.name, partitions });
    }
    if acks == 0 {
        // As for current versions: silence on success, a closed connection on failure.
        return match first_error {
            Some(e) => Response::Close(format!("acks=0 produce failed: {e}")),
            None => Response::None,
        };
    }
    let body = LegacyProduceResponse { topics, throttle_time_ms: 0 };
    frame(encode_produce_response(version, correlation_id, &body))
}

async fn produce_one(
    shard: &Shard,
    topic: &str,
    index: i32,
    records: Option<Bytes>,
    acks: i16,
) -> Result<crate::partition::ProduceResult, KafkaError> {
    let partition = super::led_partition(shard, topic, index).await?;
    let records = records.filter(|r| !r.is_empty()).ok_or(KafkaError::CorruptMessage)?;
    let (min_isr, max_message_bytes) = shard.with_image(|image| {
        let value = |key: &str| {
            image
                .topic(topic)
                .and_then(|t| effective_value(&shard.config, &t.configs, key))
                .and_then(|(v, _)| v.trim().parse::<usize>().ok())
        };
        (
            value("min.insync.replicas").unwrap_or(1),
            value("max.message.bytes").unwrap_or(DEFAULT_MAX_MESSAGE_BYTES),
        )
    });
    if acks == -1 && min_isr > 1 {
        // One replica so far: the ISR is the leader alone.
        return Err(KafkaError::NotEnoughReplicas);
    }
    let batch = if records.get(MAGIC_AT).is_some_and(|m| *m as i8 == MAGIC_V2) {
        records
    } else {
        let limits = UpConvertLimits {
            max_message_bytes,
            max_decompressed_bytes: max_message_bytes
                .saturating_mul(DECOMPRESSED_PER_MESSAGE_BYTES)
                .clamp(DECOMPRESSED_BYTES_MIN, DECOMPRESSED_BYTES_MAX),
        };
        let converted = up_convert(&records, limits).map_err(|e| {
            tracing::debug!("legacy produce to {topic}-{index} refused: {e}");
            if e.is_too_large() {
                KafkaError::MessageTooLarge
            } else if e.is_invalid_record() {
                KafkaError::InvalidRecord
            } else {
                KafkaError::CorruptMessage
            }
        })?;
        Bytes::from(converted.batch)
    };
    partition.append(batch, now_ms()).await
}

// ---- Fetch v0-3 ----

async fn fetch(shard: &Shard, req: LegacyFetchRequest, version: i16, correlation_id: i32) -> Response {
    let magic = if version >= 2 { MAGIC_V1 } else { MAGIC_V0 };
    let max_wait = Duration::from_millis(req.max_wait_ms.clamp(0, FETCH_WAIT_MS_MAX) as u64);
    let min_bytes = req.min_bytes.max(0) as usize;
    // v0-2 have no response-wide limit; v3 does.
    let max_bytes = req.max_bytes.map_or(usize::MAX, |b| b.max(0) as usize).min(FETCH_RESPONSE_BYTES_MAX);

    let mut slots = Vec::new();
    for (topic_index, topic) in req.topics.iter().enumerate() {
        for p in &topic.partitions {
            slots.push(Slot {
                topic_index,
                partition_index: p.partition,
                fetch_offset: p.fetch_offset,
                partition_max_bytes: p.partition_max_bytes.max(0) as usize,
                target: super::led_partition(shard, &topic.name, p.partition).await,
            });
        }
    }

    let reads = long_poll(shard, &slots, max_bytes, min_bytes, max_wait, version <= 2).await;

    let mut topics: Vec<LegacyFetchTopicResponse> = req
        .topics
        .iter()
        .map(|t| LegacyFetchTopicResponse { name: t.name.clone(), partitions: Vec::new() })
        .collect();
    let mut response_bytes = 0usize;
    for (slot, read) in slots.iter().zip(reads) {
        let converted = match read {
            Ok(read) => {
                // v0-2 clients expect at least one message per partition that has one (Kafka
                // sends them a partial one to grow their fetch size; we send it whole); v3 gets
                // KIP-74's "at least one in the response".
                let min_one = version <= 2 || response_bytes == 0;
                let budget = slot.partition_max_bytes.min(max_bytes.saturating_sub(response_bytes));
                convert_read(&read, magic, slot.fetch_offset, budget, min_one)
                    .await
                    .map(|r| (r, read.high_watermark))
            }
            Err(e) => Err(e),
        };
        let partition = match converted {
            Ok((records, high_watermark)) => {
                response_bytes += records.len();
                LegacyFetchPartitionResponse {
                    partition: slot.partition_index,
                    error_code: 0,
                    high_watermark,
                    records: Bytes::from(records),
                }
            }
            Err(e) => LegacyFetchPartitionResponse {
                partition: slot.partition_index,
                error_code: e.code(),
                high_watermark: slot.target.as_ref().map_or(-1, |p| p.high_watermark()),
                records: Bytes::new(),
            },
        };
        topics[slot.topic_index].partitions.push(partition);
    }
    let body = LegacyFetchResponse { throttle_time_ms: 0, topics };
    frame(encode_fetch_response(version, correlation_id, &body))
}

/// Whole magic-2 batches for every slot, measured in log bytes for `min_bytes`. The first
/// partition with data gets at least one batch (KIP-74); with `min_one_each` (v0-2, whose
/// clients expect a message per partition, see below) every partition does.
/// Copies a read's file regions into memory and down-converts them (see the module docs for
/// why these versions copy).
async fn convert_read(
    read: &ReadInfo,
    magic: i8,
    fetch_offset: i64,
    max_bytes: usize,
    min_one_message: bool,
) -> Result<Vec<u8>, KafkaError> {
    let mut batches = Vec::with_capacity(read.size_bytes() as usize);
    for region in &read.regions {
        let bytes = region.read_bytes().await.map_err(|e| {
            tracing::error!("legacy fetch: cannot read a segment region: {e}");
            KafkaError::KafkaStorageError
        })?;
        batches.extend_from_slice(&bytes);
    }
    down_convert(
        &batches,
        magic,
        fetch_offset,
        max_bytes,
        min_one_message,
        DOWN_CONVERT_DECOMPRESSED_BYTES_MAX,
    )
    .map(|converted| converted.bytes)
    .map_err(|e| {
        tracing::error!("legacy fetch: cannot down-convert to magic {magic} from offset {fetch_offset}: {e}");
        KafkaError::CorruptMessage
    })
}

// ---- ListOffsets v0 ----

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;

async fn list_offsets(
    shard: &Shard,
    req: LegacyListOffsetsRequest,
    version: i16,
    correlation_id: i32,
) -> Response {
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.name.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let (error_code, offsets) = match offsets_before(shard, &name, p.partition, p.timestamp).await {
                // Kafka returns at most `max_num_offsets` (and none for 0 or less).
                Ok(offset) => (0, offset.into_iter().take(p.max_num_offsets.max(0) as usize).collect()),
                Err(e) => (e.code(), Vec::new()),
            };
            partitions.push(LegacyListOffsetsPartitionResponse {
                partition: p.partition,
                error_code,
                offsets,
            });
        }
        topics.push(LegacyListOffsetsTopicResponse { name: topic.name, partitions });
    }
    frame(encode_list_offsets_response(version, correlation_id, &LegacyListOffsetsResponse { topics }))
}

/// The offsets to answer for one partition (at most one here; see the module docs).
async fn offsets_before(
    shard: &Shard,
    topic: &str,
    index: i32,
    timestamp: i64,
) -> Result<Option<i64>, KafkaError> {
    let partition = super::led_partition(shard, topic, index).await?;
    Ok(match timestamp {
        LATEST => Some(partition.high_watermark()),
        EARLIEST => Some(partition.log_start_offset()),
        // Kafka finds no segment older than a negative time: an empty list.
        t if t < 0 => None,
        t => match partition.offset_for_timestamp(t).await? {
            Some(found) if found.offset < partition.high_watermark() => Some(found.offset),
            _ => Some(partition.high_watermark()),
        },
    })
}
