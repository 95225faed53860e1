//! Request handlers: one module per Kafka API family, each turning a decoded request into a
//! response with the error codes Kafka 3.7 gives. Dispatch is by the request's body type.

// mod admin;
mod fetch;
mod list_offsets;
mod metadata;
mod produce;
mod producer_id;

use bytes::Bytes;
use shardlog_net::kafka_protocol::messages::{ApiKey, RequestKind};
use shardlog_net::kafka_protocol::protocol::Encodable;
use shardlog_net::{encode_response, OutPart, Request};
use shardlog_storage::partition_log::ReadInfo;

use crate::shard::Shard;

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
    pub reads: Vec<ReadInfo>,
}

pub async fn handle(shard: &Shard, request: Request) -> Response {
    let version = request.version();
    let correlation_id = request.correlation_id();
    let api_key = request.api_key;
    match request.body {
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
        // ADMIN-DISPATCH
        other => {
            // parse_request only lets advertised APIs through; reaching here is a bug in the
            // table, and Kafka closes the connection on an API it does not serve.
            Response::Close(format!("no handler for {:?}", api_key_name(&other)))
        }
    }
}

fn api_key_name(body: &RequestKind) -> String {
    format!("{body:?}").split('(').next().unwrap_or_default().to_string()
}

fn encode<R: Encodable>(api_key: ApiKey, version: i16, correlation_id: i32, body: &R) -> Response {
    match encode_response(api_key, version, correlation_id, body) {
        Ok(bytes) => Response::Frame(bytes),
        Err(e) => Response::Close(format!("cannot encode the response: {e}")),
    }
}

/// Kafka's rule for topic names: 1..=249 characters of `[a-zA-Z0-9._-]`, not `.` or `..`.
pub fn is_valid_topic_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 249
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
}
