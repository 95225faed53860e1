//! Produce: validate, check idempotence, append, answer — all on the shard that owns the
//! partition (invariant 1). The record bytes stay a slice of the request frame all the way
//! to the log file (`shardlog_storage::placed_records`). A request's partitions are appended
//! one after another: appending them together measured no better
//! (`perf-reports/2026-12-05-zero-copy-append/NOTE.md`).

use shardlog_net::kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, TopicProduceResponse,
};
use shardlog_net::kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use shardlog_net::KafkaError;

use crate::shard::{now_ms, Shard};
use crate::topic_config::effective_value;

/// What the connection does with a produce: answer, stay silent (acks=0), or close (acks=0
/// with a failure: Kafka closes so the client notices).
pub enum ProduceOutcome {
    Respond(ProduceResponse),
    Silent,
    Close(String),
}

pub async fn handle(shard: &Shard, req: ProduceRequest) -> ProduceOutcome {
    let acks = req.acks;
    let mut responses = Vec::with_capacity(req.topic_data.len());
    let mut first_error = None;
    for topic in req.topic_data {
        let name = topic.name.0.to_string();
        let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
        for data in topic.partition_data {
            let bytes = data.records.as_ref().map_or(0, |r| r.len() as u64);
            let result = if !matches!(acks, -1..=1) {
                Err(KafkaError::InvalidRequiredAcks)
            } else {
                produce_one(shard, &name, data.index, data.records, acks).await
            };
            shard.metrics.record_produce(result.as_ref().ok().map(|r| (bytes, r.appended_records as u64)));
            let response = PartitionProduceResponse::default().with_index(data.index);
            let response = match result {
                Ok(r) => response
                    .with_base_offset(r.base_offset)
                    .with_log_append_time_ms(r.log_append_time_ms)
                    .with_log_start_offset(r.log_start_offset),
                Err(e) => {
                    first_error.get_or_insert(e);
                    response
                        .with_error_code(e.code())
                        .with_base_offset(-1)
                        .with_log_append_time_ms(-1)
                        .with_log_start_offset(-1)
                }
            };
            partition_responses.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic.name)
                .with_partition_responses(partition_responses),
        );
    }
    if acks == 0 {
        return match first_error {
            Some(e) => ProduceOutcome::Close(format!("acks=0 produce failed: {e}")),
            None => ProduceOutcome::Silent,
        };
    }
    ProduceOutcome::Respond(ProduceResponse::default().with_responses(responses))
}

async fn produce_one(
    shard: &Shard,
    topic: &str,
    index: i32,
    records: Option<bytes::Bytes>,
    acks: i16,
) -> Result<crate::partition::ProduceResult, KafkaError> {
    let partition = super::led_partition(shard, topic, index).await?;
    let records = records.filter(|r| !r.is_empty()).ok_or(KafkaError::CorruptMessage)?;
    if acks == -1 {
        // One replica so far: the ISR is the leader alone.
        let min_isr = shard.with_image(|image| {
            image
                .topic(topic)
                .and_then(|t| effective_value(&shard.config, &t.configs, "min.insync.replicas"))
                .and_then(|(v, _)| v.parse::<usize>().ok())
                .unwrap_or(1)
        });
        if min_isr > 1 {
            return Err(KafkaError::NotEnoughReplicas);
        }
    }
    partition.append(records, now_ms()).await
}
