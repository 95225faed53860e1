//! What the network tools share: the bootstrap connection, Metadata, Kafka's error texts.

use std::collections::BTreeMap;
use std::time::Duration;

use shardlog_net::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use shardlog_net::kafka_protocol::messages::{MetadataRequest, MetadataResponse, TopicName};
use shardlog_net::kafka_protocol::protocol::StrBytes;

use crate::client::{Client, ClientError};

/// Metadata version the tools send (Kafka 3.7's latest: topic ids, no auto-creation).
pub const METADATA_V: i16 = 12;

/// A tool's failure: one line for stderr (the binary adds nothing but a newline).
#[derive(Debug)]
pub struct ToolError(pub String);

impl std::fmt::Display for ToolError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<ClientError> for ToolError {
    fn from(e: ClientError) -> Self {
        ToolError(e.to_string())
    }
}

impl From<std::io::Error> for ToolError {
    fn from(e: std::io::Error) -> Self {
        ToolError(e.to_string())
    }
}

/// Connects to the first reachable server of a comma-separated `--bootstrap-server` list.
pub fn connect_bootstrap(servers: &str, timeout: Duration) -> Result<Client, ClientError> {
    let mut last = None;
    for server in servers.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        match Client::connect(server, timeout) {
            Ok(client) => return Ok(client),
            Err(e) => last = Some(e),
        }
    }
    Err(last.unwrap_or_else(|| ClientError::BadAddress(servers.to_string())))
}

pub fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

/// Metadata of `topics` (`None`: every topic), never creating any.
pub fn metadata(client: &mut Client, topics: Option<&[String]>) -> Result<MetadataResponse, ClientError> {
    metadata_request(client, topics, false)
}

/// Metadata a producer asks for: the broker creates a missing topic when its
/// `auto.create.topics.enable` allows, as for Kafka's console producer.
pub fn metadata_for_producing(client: &mut Client, topic: &str) -> Result<MetadataResponse, ClientError> {
    metadata_request(client, Some(&[topic.to_string()]), true)
}

fn metadata_request(
    client: &mut Client,
    topics: Option<&[String]>,
    allow_auto_topic_creation: bool,
) -> Result<MetadataResponse, ClientError> {
    let topics = topics.map(|names| {
        names.iter().map(|n| MetadataRequestTopic::default().with_name(Some(topic_name(n)))).collect()
    });
    let req = MetadataRequest::default()
        .with_topics(topics)
        .with_allow_auto_topic_creation(allow_auto_topic_creation);
    client.call(METADATA_V, &req)
}

/// `host:port` of each node in a Metadata response.
pub fn node_addresses(md: &MetadataResponse) -> BTreeMap<i32, String> {
    md.brokers.iter().map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port))).collect()
}

/// Kafka's default message for an error code (what its clients print when the broker sent
/// no message of its own).
pub fn error_text(code: i16) -> String {
    let text = match code {
        3 => "This server does not host this topic-partition.",
        5 => "There is no leader for this topic-partition as we are in the middle of a leadership election.",
        6 => "For requests intended only for the leader, this error indicates that the broker is not the current leader. For requests intended for any replica, this error indicates that the broker is not a replica of the topic partition.",
        7 => "The request timed out.",
        17 => "The request attempted to perform an operation on an invalid topic.",
        36 => "Topic with this name already exists.",
        37 => "Number of partitions is below 1.",
        38 => "Replication factor is below 1 or larger than the number of available brokers.",
        40 => "Configuration is invalid.",
        41 => "This is not the correct controller for this cluster.",
        42 => "This most likely occurs because of a request being malformed by the client library or the message was sent to an incompatible broker. See the broker logs for more details.",
        44 => "Request parameters do not satisfy the configured policy.",
        73 => "Topic deletion is disabled.",
        _ => return format!("The broker answered with error code {code}."),
    };
    text.to_string()
}

/// The broker's message for an error, or Kafka's default one.
pub fn error_message(code: i16, message: Option<&StrBytes>) -> String {
    match message {
        Some(m) if !m.is_empty() => m.to_string(),
        _ => error_text(code),
    }
}

/// Kafka's name of an error code (`Errors.java`: `MESSAGE_TOO_LARGE`), as its clients log it.
pub fn error_name(code: i16) -> String {
    let Some(error) = shardlog_net::kafka_protocol::ResponseError::try_from_code(code) else {
        return "NONE".into();
    };
    if let shardlog_net::kafka_protocol::ResponseError::Unknown(code) = error {
        return format!("UNKNOWN_ERROR_CODE_{code}");
    }
    let camel = error.to_string();
    let mut name = String::with_capacity(camel.len() + 8);
    for (i, c) in camel.chars().enumerate() {
        if c.is_ascii_uppercase() && i > 0 {
            name.push('_');
        }
        name.push(c.to_ascii_uppercase());
    }
    name
}

/// The partitions of `topic` with their leader node, sorted by partition; `None` when the
/// topic is not in the Metadata (or the broker reported an error for it).
pub fn partition_leaders(md: &MetadataResponse, topic: &str) -> Option<Vec<(i32, i32)>> {
    let t = md.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))?;
    if t.error_code != 0 {
        return None;
    }
    let mut parts: Vec<(i32, i32)> =
        t.partitions.iter().map(|p| (p.partition_index, p.leader_id.0)).collect();
    parts.sort_unstable();
    Some(parts)
}
