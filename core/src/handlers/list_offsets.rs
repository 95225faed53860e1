//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3), earliest local (-4), or the
//! first offset whose batch timestamp is at or after a time.

use shardlog_net::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use shardlog_net::kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use shardlog_net::KafkaError;

use crate::shard::Shard;

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;

pub async fn handle(shard: &Shard, req: ListOffsetsRequest, version: i16) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let response = ListOffsetsPartitionResponse::default().with_partition_index(p.partition_index);
            let response = match lookup(shard, &name, p.partition_index, p.timestamp).await {
                Ok((timestamp, offset, leader_epoch)) => {
                    // leader_epoch exists from v4 on; the encoder refuses it earlier.
                    let epoch = if version >= 4 { leader_epoch } else { -1 };
                    response.with_timestamp(timestamp).with_offset(offset).with_leader_epoch(epoch)
                }
                Err(e) => response
                    .with_error_code(e.code())
                    .with_timestamp(-1)
                    .with_offset(-1)
                    .with_leader_epoch(-1),
            };
            partitions.push(response);
        }
        topics.push(ListOffsetsTopicResponse::default().with_name(topic.name).with_partitions(partitions));
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// `(timestamp, offset, leader epoch)` for one partition.
async fn lookup(
    shard: &Shard,
    topic: &str,
    index: i32,
    timestamp: i64,
) -> Result<(i64, i64, i32), KafkaError> {
    let partition = super::led_partition(shard, topic, index).await?;
    let epoch = partition.leader_epoch.get();
    match timestamp {
        LATEST => Ok((-1, partition.high_watermark(), epoch)),
        EARLIEST | EARLIEST_LOCAL => Ok((-1, partition.log_start_offset(), epoch)),
        MAX_TIMESTAMP => Ok(match partition.max_timestamp_and_offset().await {
            Some(t) => (t.timestamp, t.offset, epoch),
            None => (-1, -1, -1),
        }),
        t if t < 0 => Err(KafkaError::InvalidRequest),
        t => Ok(match partition.offset_for_timestamp(t).await? {
            Some(found) if found.offset < partition.high_watermark() => {
                (found.timestamp, found.offset, epoch)
            }
            _ => (-1, -1, -1),
        }),
    }
}
