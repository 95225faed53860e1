//! Request handlers: one module per Kafka API family, each turning a decoded request into a
//! response with the error codes Kafka 3.7 gives. Dispatch is by the request's body type.

mod admin;
mod consumer_group;
mod fetch;
mod group;
mod legacy;
mod list_offsets;
mod metadata;
mod produce;
mod producer_id;

use std::rc::Rc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use shardlog_net::kafka_protocol::messages::{ApiKey, RequestKind};
use shardlog_net::kafka_protocol::protocol::Encodable;
use shardlog_net::{encode_response, KafkaError, OutPart, Request};
use shardlog_storage::partition_log::ReadInfo;

use crate::partition::Partition;
use crate::shard::Shard;

/// How long a request waits for a partition that the image already says this shard leads but
/// whose log the applier has not opened yet.
const OPENING_WAIT: Duration = Duration::from_secs(1);

/// What the connection sends back.
pub enum Response {
    /// Nothing (Produce with acks=0).
    None,
    /// One encoded frame.
    Frame(Bytes),
    /// A hand-framed Fetch response; `reads` keeps the segment files open until it is sent.
    Fetch(FetchReply),
    /// Close the connection (Kafka's answer to some errors, e.g. a failed acks=0 produce).
    Close(String),
}

pub struct FetchReply {
    pub parts: Vec<OutPart>,
    /// Held, never read: the regions in `parts` borrow these files' descriptors.
    #[allow(dead_code)]
    pub reads: Vec<ReadInfo>,
}

/// Serves one request; `client_host` is the peer's address as Kafka prints it (`/1.2.3.4`).
pub async fn handle(shard: &Shard, request: Request, client_host: &str) -> Response {
    let version = request.version();
    let correlation_id = request.correlation_id();
    let api_key = request.api_key;
    match request.body {
        // Produce v0-2, Fetch v0-3, ListOffsets v0: old message formats, own encoders;
        // DescribeConfigs v0, OffsetCommit v0-1, OffsetFetch v0: current handlers, old layouts.
        RequestKind::Produce(_)
        | RequestKind::Fetch(_)
        | RequestKind::ListOffsets(_)
        | RequestKind::DescribeConfigs(_)
        | RequestKind::OffsetCommit(_)
        | RequestKind::OffsetFetch(_)
            if request.legacy.is_some() =>
        {
            legacy::handle(shard, request.legacy, version, correlation_id).await
        }
        RequestKind::ApiVersions(_) => {
            let body = shardlog_net::api_versions_response();
            encode(api_key, version, correlation_id, &body)
        }
        RequestKind::Metadata(req) => {
            let body = metadata::handle(shard, req, version).await;
            encode(api_key, version, correlation_id, &body)
        }
        RequestKind::Produce(req) => match produce::handle(shard, req).await {
            produce::ProduceOutcome::Respond(body) => encode(api_key, version, correlation_id, &body),
            produce::ProduceOutcome::Silent => Response::None,
            produce::ProduceOutcome::Close(reason) => Response::Close(reason),
        },
        RequestKind::Fetch(req) => fetch::handle(shard, req, version, correlation_id).await,
        RequestKind::ListOffsets(req) => {
            let body = list_offsets::handle(shard, req, version).await;
            encode(api_key, version, correlation_id, &body)
        }
        RequestKind::InitProducerId(req) => {
            let body = producer_id::handle(shard, req).await;
            encode(api_key, version, correlation_id, &body)
        }
        RequestKind::CreateTopics(req) => {
            let body = admin::create_topics(shard, req, version).await;
            encode(api_key, version, correlation_id, &body)
        }
        RequestKind::DeleteTopics(req) => {
            let body = admin::delete_topics(shard, req, version).await;
            encode(api_key, version, correlation_id, &body)
        }
        RequestKind::CreatePartitions(req) => {
            let body = admin::create_partitions(shard, req).await;
            encode(api_key, version, correlation_id, &body)
        }
        RequestKind::DescribeConfigs(req) => {
            let body = admin::describe_configs(shard, req, version).await;
            encode(api_key, version, correlation_id, &body)
        }
        RequestKind::AlterConfigs(req) => {
            let body = admin::alter_configs(shard, req).await;
            encode(api_key, version, correlation_id, &body)
        }
        RequestKind::IncrementalAlterConfigs(req) => {
            let body = admin::incremental_alter_configs(shard, req).await;
            encode(api_key, version, correlation_id, &body)
        }
        RequestKind::DeleteRecords(req) => {
            let body = admin::delete_records(shard, req).await;
            encode(api_key, version, correlation_id, &body)
        }
        RequestKind::DescribeCluster(req) => {
            let body = admin::describe_cluster(shard, req, version);
            encode(api_key, version, correlation_id, &body)
        }
        RequestKind::DescribeLogDirs(req) => {
            let body = admin::describe_log_dirs(shard, req, version).await;
            encode(api_key, version, correlation_id, &body)
        }
        RequestKind::ConsumerGroupHeartbeat(req) => {
            let client_id = request.header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default();
            let body = consumer_group::heartbeat(shard, req, version, client_id, client_host).await;
            encode(api_key, version, correlation_id, &body)
        }
        RequestKind::ConsumerGroupDescribe(req) => {
            let body = consumer_group::describe(shard, req, version).await;
            encode(api_key, version, correlation_id, &body)
        }
        body @ (RequestKind::FindCoordinator(_)
        | RequestKind::JoinGroup(_)
        | RequestKind::SyncGroup(_)
        | RequestKind::Heartbeat(_)
        | RequestKind::LeaveGroup(_)
        | RequestKind::OffsetCommit(_)
        | RequestKind::OffsetFetch(_)
        | RequestKind::OffsetDelete(_)
        | RequestKind::ListGroups(_)
        | RequestKind::DescribeGroups(_)
        | RequestKind::DeleteGroups(_)) => {
            group::handle(shard, &request.header, api_key, body, client_host).await
        }
        _ => {
            // parse_request only lets advertised APIs through; reaching here is a bug in the
            // table, and Kafka closes the connection on an API it does not serve.
            Response::Close(format!("no handler for {api_key:?}"))
        }
    }
}

/// The partition `topic`/`index` if this shard leads it, else the error to answer.
///
/// A Metadata answer names the leader as soon as the controller has committed the topic (an
/// auto-creation answers at once), but the leader shard opens the log a moment later, in its
/// metadata applier. A client that goes straight to the leader (kafka-python, whose producer
/// does not retry by default, does) must not get `NOT_LEADER_OR_FOLLOWER` for a partition we
/// just told it this node leads: while the image says this node leads it, wait (bounded) for
/// the log to open.
pub async fn led_partition(shard: &Shard, topic: &str, index: i32) -> Result<Rc<Partition>, KafkaError> {
    if let Some(partition) = shard.partition(topic, index) {
        return Ok(partition);
    }
    let deadline = Instant::now() + OPENING_WAIT;
    while leads_per_image(shard, topic, index) {
        // Listen before looking, so an open between the look and the wait is not missed.
        let opened = shard.listen_for_partition_changes();
        if let Some(partition) = shard.partition(topic, index) {
            return Ok(partition);
        }
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        let _ = glommio::timer::timeout(deadline - now, async {
            opened.await;
            Ok(())
        })
        .await;
    }
    Err(shard.not_here_error(topic, index))
}

fn leads_per_image(shard: &Shard, topic: &str, index: i32) -> bool {
    shard.with_image(|image| {
        image.topic(topic).is_some_and(|t| {
            t.partitions.iter().any(|p| p.partition == index && p.leader == shard.spec.node_id)
        })
    })
}

fn encode<R: Encodable>(api_key: ApiKey, version: i16, correlation_id: i32, body: &R) -> Response {
    match encode_response(api_key, version, correlation_id, body) {
        Ok(bytes) => Response::Frame(bytes),
        Err(e) => Response::Close(format!("cannot encode the response: {e}")),
    }
}
