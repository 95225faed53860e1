//! Fetch: file regions of the owning shard's segments, framed by hand and sent with
//! `sendfile` (invariant 5). Long poll: when fewer than `min_bytes` are ready the request
//! waits for an append to any of its partitions or for `max_wait_ms`, never by polling.

use std::future::Future;
use std::rc::Rc;
use std::time::{Duration, Instant};

use shardlog_net::fetch::{FetchPartition, FetchResponseParts, FetchTopic, FileRegion};
use shardlog_net::kafka_protocol::messages::FetchRequest;
use shardlog_net::kafka_protocol::protocol::StrBytes;
use shardlog_net::{encode_fetch_response, KafkaError};
use shardlog_storage::partition_log::ReadInfo;

use super::{FetchReply, Response};
use crate::partition::Partition;
use crate::shard::Shard;

/// Kafka's broker-side cap on one fetch response (`fetch.max.bytes`, 55 MiB).
pub(super) const FETCH_RESPONSE_BYTES_MAX: usize = 57_671_680;
/// The longest a fetch may wait, whatever the client asks: bounded waits keep a shutdown quick.
pub(super) const FETCH_WAIT_MS_MAX: i32 = 60_000;

/// One requested partition of a fetch (any version).
pub(super) struct Slot {
    pub topic_index: usize,
    pub partition_index: i32,
    pub fetch_offset: i64,
    pub partition_max_bytes: usize,
    pub target: Result<Rc<Partition>, KafkaError>,
}

pub async fn handle(shard: &Shard, req: FetchRequest, version: i16, correlation_id: i32) -> Response {
    let max_wait = Duration::from_millis(req.max_wait_ms.clamp(0, FETCH_WAIT_MS_MAX) as u64);
    let min_bytes = req.min_bytes.max(0) as usize;
    let max_bytes =
        if version >= 3 { req.max_bytes.max(0) as usize } else { usize::MAX }.min(FETCH_RESPONSE_BYTES_MAX);

    let mut topics: Vec<(StrBytes, [u8; 16])> = Vec::with_capacity(req.topics.len());
    let mut slots = Vec::new();
    let resolved_names: Vec<Option<String>> = shard.with_image(|image| {
        req.topics
            .iter()
            .map(|topic| {
                if version >= 13 {
                    image.topic_by_id(topic.topic_id.as_bytes()).map(|t| t.name.clone())
                } else {
                    Some(topic.topic.0.to_string())
                }
            })
            .collect()
    });
    {
        for (topic, resolved) in req.topics.iter().zip(resolved_names) {
            let topic_index = topics.len();
            topics.push((topic.topic.0.clone(), *topic.topic_id.as_bytes()));
            for p in &topic.partitions {
                let target = match &resolved {
                    None => Err(KafkaError::UnknownTopicId),
                    Some(name) => super::led_partition(shard, name, p.partition).await,
                };
                slots.push(Slot {
                    topic_index,
                    partition_index: p.partition,
                    fetch_offset: p.fetch_offset,
                    partition_max_bytes: p.partition_max_bytes.max(0) as usize,
                    target,
                });
            }
        }
    }

    let results = long_poll(shard, &slots, max_bytes, min_bytes, max_wait, false).await;

    let mut parts = FetchResponseParts::default();
    let mut reads = Vec::new();
    for (topic_index, (name, topic_id)) in topics.into_iter().enumerate() {
        let mut partitions = Vec::new();
        for (slot, result) in slots.iter().zip(results.iter()).filter(|(s, _)| s.topic_index == topic_index) {
            let partition = match result {
                Ok(read) => FetchPartition {
                    partition_index: slot.partition_index,
                    error_code: 0,
                    high_watermark: read.high_watermark,
                    last_stable_offset: read.high_watermark,
                    log_start_offset: read.log_start_offset,
                    preferred_read_replica: -1,
                    records: read
                        .regions
                        .iter()
                        .map(|r| FileRegion {
                            fd: r.raw_fd(),
                            position: r.position,
                            len_bytes: r.length_bytes as u32,
                        })
                        .collect(),
                },
                Err(e) => {
                    let (high_watermark, log_start_offset) = match &slot.target {
                        Ok(p) => (p.high_watermark(), p.log_start_offset()),
                        Err(_) => (-1, -1),
                    };
                    FetchPartition {
                        partition_index: slot.partition_index,
                        error_code: e.code(),
                        high_watermark,
                        last_stable_offset: high_watermark,
                        log_start_offset,
                        preferred_read_replica: -1,
                        records: Vec::new(),
                    }
                }
            };
            partitions.push(partition);
        }
        parts.topics.push(FetchTopic { name, topic_id, partitions });
    }
    for result in results.into_iter().flatten() {
        reads.push(result);
    }
    match encode_fetch_response(version, correlation_id, &parts) {
        Ok(out) => Response::Fetch(FetchReply { parts: out, reads }),
        Err(e) => Response::Close(format!("cannot frame the fetch response: {e}")),
    }
}

/// Reads the slots until at least `min_bytes` are there, an error or a shutdown answers at
/// once, or `max_wait` passes; woken by appends to the partitions, never by polling.
pub(super) async fn long_poll(
    shard: &Shard,
    slots: &[Slot],
    max_bytes: usize,
    min_bytes: usize,
    max_wait: Duration,
    min_one_each: bool,
) -> Vec<Result<ReadInfo, KafkaError>> {
    let deadline = Instant::now() + max_wait;
    let has_errors = slots.iter().any(|s| s.target.is_err());
    loop {
        // Listen before reading, so an append between the read and the wait is not missed.
        let mut listeners: Vec<event_listener::EventListener> =
            slots.iter().filter_map(|s| s.target.as_ref().ok()).map(|p| p.listen_for_append()).collect();
        let (results, total_bytes) = read_all(slots, max_bytes, min_one_each).await;
        let errors = has_errors || results.iter().any(|r| r.is_err());
        let now = Instant::now();
        if total_bytes >= min_bytes
            || errors
            || now >= deadline
            || listeners.is_empty()
            || shard.is_stopping()
        {
            for result in &results {
                shard.metrics.record_fetch(result.as_ref().ok().map(|read| read.size_bytes()));
            }
            return results;
        }
        // Woken by the first append to any of the partitions, by a clean shutdown (which
        // answers with what there is rather than cut the request off), or by the deadline.
        listeners.push(shard.listen_for_stop());
        let _ = glommio::timer::timeout(deadline - now, async {
            wait_any(listeners).await;
            Ok(())
        })
        .await;
    }
}

/// Reads every slot within the response budget. KIP-74: the first partition with data gets at
/// least one whole batch even when it is larger than the limits, so a consumer never stalls on
/// a batch bigger than its `max.partition.fetch.bytes`; Fetch v0-2 clients need one per
/// partition (`min_one_each`).
async fn read_all(
    slots: &[Slot],
    max_bytes: usize,
    min_one_each: bool,
) -> (Vec<Result<ReadInfo, KafkaError>>, usize) {
    let mut results = Vec::with_capacity(slots.len());
    let mut total_bytes = 0usize;
    for slot in slots {
        let result = match &slot.target {
            Err(e) => Err(*e),
            Ok(partition) => {
                let budget = slot.partition_max_bytes.min(max_bytes.saturating_sub(total_bytes));
                partition.read(slot.fetch_offset, budget, min_one_each || total_bytes == 0).await
            }
        };
        if let Ok(read) = &result {
            total_bytes += read.size_bytes() as usize;
        }
        results.push(result);
    }
    (results, total_bytes)
}

async fn wait_any(mut listeners: Vec<event_listener::EventListener>) {
    futures_lite::future::poll_fn(|cx| {
        for listener in listeners.iter_mut() {
            if std::pin::Pin::new(listener).poll(cx).is_ready() {
                return std::task::Poll::Ready(());
            }
        }
        std::task::Poll::Pending
    })
    .await
}
