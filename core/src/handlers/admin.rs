//! Admin APIs: CreateTopics, DeleteTopics, CreatePartitions, DescribeConfigs, AlterConfigs,
//! IncrementalAlterConfigs, DeleteRecords, DescribeCluster and DescribeLogDirs, answered the way
//! a Kafka 3.7 KRaft broker answers them.
//!
//! - Metadata changes (topics, partitions, configs) are forwarded to the controller over the
//!   control plane from whichever shard received them, as a KRaft broker forwards to its
//!   controller; the controller validates and commits, and its per-item error codes and
//!   messages go to the client unchanged. The reply comes back only once this shard's image
//!   has applied the commit, so a DescribeConfigs or Metadata on the same connection sees it.
//!   Other shards apply it moments later (partition logs pick new configs up there).
//! - Reads (DescribeConfigs, DescribeCluster, DescribeLogDirs) are answered from this shard's
//!   image, config and partitions; DeleteRecords runs on the shard that owns each partition.
//! - Topic configs are described from the controller's list of accepted names
//!   ([`topic_config_names`]), so DescribeConfigs never lists a key AlterConfigs refuses.
//! - Fields a response version does not have are left at their defaults: the encoder refuses a
//!   message that sets them.

use std::collections::BTreeMap;
use std::path::Path;

use shardlog_net::kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use shardlog_net::kafka_protocol::messages::create_topics_request::CreatableTopic;
use shardlog_net::kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult as WireCreatableTopicResult,
};
use shardlog_net::kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use shardlog_net::kafka_protocol::messages::delete_topics_response::DeletableTopicResult as WireDeletableTopicResult;
use shardlog_net::kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use shardlog_net::kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use shardlog_net::kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use shardlog_net::kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use shardlog_net::kafka_protocol::messages::{
    alter_configs_response, incremental_alter_configs_response, AlterConfigsRequest, AlterConfigsResponse,
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest, CreateTopicsResponse,
    DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeClusterRequest, DescribeClusterResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    DescribeLogDirsRequest, DescribeLogDirsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse, TopicName,
};
use shardlog_net::kafka_protocol::protocol::StrBytes;
use shardlog_net::KafkaError;
use uuid::Uuid;

use crate::config::{self, BrokerConfig};
use crate::controller::{
    self, topic_config_names, validate_topic_config, validate_topic_name, AlterableConfig, ApiError,
    ConfigResourceResult, ControlRequest, ControlResponse, NewTopic, PartitionsIncrease, ReplicaAssignment,
    TopicRef,
};
use crate::metadata::records::{RESOURCE_BROKER, RESOURCE_TOPIC};
use crate::shard::{now_ms, Shard};
use crate::topic_config::{effective_value, TOPIC_CONFIG_KEYS};

/// `DescribeConfigsResponse.ConfigSource` ids (Kafka's `ConfigEntry.ConfigSource`).
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DYNAMIC_DEFAULT_BROKER: i8 = 3;
const SOURCE_STATIC_BROKER: i8 = 4;
const SOURCE_DEFAULT: i8 = 5;

/// `ConfigResource.Type` of broker loggers: Kafka describes log4j levels there; we have none.
const RESOURCE_BROKER_LOGGER: i8 = 8;

/// DescribeCluster `endpoint_type`: brokers (what every shard is) and controllers.
const ENDPOINT_BROKERS: i8 = 1;
const ENDPOINT_CONTROLLERS: i8 = 2;

/// The schemas' "not requested" value of authorized-operations fields.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// Without an authorizer Kafka reports every operation the cluster resource supports:
/// CREATE(5), ALTER(7), DESCRIBE(8), CLUSTER_ACTION(9), DESCRIBE_CONFIGS(10), ALTER_CONFIGS(11)
/// and IDEMPOTENT_WRITE(12), as a bit field of `AclOperation` codes.
const CLUSTER_AUTHORIZED_OPERATIONS: i32 =
    (1 << 5) | (1 << 7) | (1 << 8) | (1 << 9) | (1 << 10) | (1 << 11) | (1 << 12);

/// Kafka's internal topics, whose records DeleteRecords must not touch.
const INTERNAL_TOPICS: &[&str] = &["__consumer_offsets", "__transaction_state"];

/// Broker keys that feed one setting, most specific first (Kafka's `brokerSynonyms`): a topic
/// config or broker key describes every one of them that has a value.
const BROKER_SYNONYMS: &[&[&str]] = &[
    &["log.retention.ms", "log.retention.minutes", "log.retention.hours"],
    &["log.roll.ms", "log.roll.hours"],
    &["log.flush.interval.ms", "log.flush.scheduler.interval.ms"],
    &["log.dirs", "log.dir"],
];

fn str_bytes(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}

fn topic_name(s: impl Into<String>) -> TopicName {
    TopicName(str_bytes(s))
}

fn message(error: &ApiError) -> Option<StrBytes> {
    error.message.clone().map(str_bytes)
}

/// A whole-request failure of the control plane, reported on every item.
fn control_plane_error(e: impl std::fmt::Display) -> ApiError {
    ApiError {
        code: KafkaError::UnknownServerError.code(),
        message: Some(format!("controller unavailable: {e}")),
    }
}

/// Sends `request` to the controller; `Err` when the control plane failed as a whole.
async fn ask_controller(shard: &Shard, request: ControlRequest) -> Result<ControlResponse, ApiError> {
    match shard.control.request(request).await {
        Ok(reply) => Ok(reply.response),
        Err(e) => Err(control_plane_error(e)),
    }
}

fn mismatched_reply() -> ApiError {
    // The controller answers every request with its own variant; anything else is a bug there.
    tracing::error!("the controller answered with another response type");
    ApiError {
        code: KafkaError::UnknownServerError.code(),
        message: Some("unexpected controller response".to_string()),
    }
}

// ---------------------------------------------------------------------------------------------
// CreateTopics
// ---------------------------------------------------------------------------------------------

pub async fn create_topics(shard: &Shard, req: CreateTopicsRequest, version: i16) -> CreateTopicsResponse {
    let topics: Vec<NewTopic> = req.topics.iter().map(new_topic).collect();
    let request = ControlRequest::CreateTopics(controller::CreateTopicsRequest {
        topics: topics.clone(),
        validate_only: req.validate_only,
    });
    let results = match ask_controller(shard, request).await {
        Ok(ControlResponse::CreateTopics(results)) => results,
        Ok(_) => failed_creations(&topics, &mismatched_reply()),
        Err(error) => failed_creations(&topics, &error),
    };
    let responses =
        results.iter().map(|r| creatable_topic_result(&shard.config, r, &topics, version)).collect();
    CreateTopicsResponse::default().with_topics(responses)
}

fn new_topic(topic: &CreatableTopic) -> NewTopic {
    NewTopic {
        name: topic.name.0.to_string(),
        num_partitions: topic.num_partitions,
        replication_factor: topic.replication_factor,
        assignments: topic
            .assignments
            .iter()
            .map(|a| ReplicaAssignment {
                partition: a.partition_index,
                replicas: a.broker_ids.iter().map(|b| b.0).collect(),
            })
            .collect(),
        configs: topic
            .configs
            .iter()
            .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
            .collect(),
    }
}

fn failed_creations(topics: &[NewTopic], error: &ApiError) -> Vec<controller::CreatableTopicResult> {
    topics
        .iter()
        .map(|t| controller::CreatableTopicResult {
            name: t.name.clone(),
            topic_id: [0; 16],
            error: error.clone(),
            num_partitions: -1,
            replication_factor: -1,
        })
        .collect()
}

/// One topic's answer. v5+ also carries the counts and, on success, the configs the topic has
/// (or would have, for validate_only) — Kafka fills them from the creation configs merged with
/// the broker's, sorted by name.
fn creatable_topic_result(
    broker: &BrokerConfig,
    result: &controller::CreatableTopicResult,
    requested: &[NewTopic],
    version: i16,
) -> WireCreatableTopicResult {
    let mut wire = WireCreatableTopicResult::default()
        .with_name(topic_name(result.name.clone()))
        .with_error_code(result.error.code)
        .with_error_message(message(&result.error));
    if version >= 7 {
        wire = wire.with_topic_id(Uuid::from_bytes(result.topic_id));
    }
    if version >= 5 {
        wire = wire
            .with_num_partitions(result.num_partitions)
            .with_replication_factor(result.replication_factor);
        let configs = if result.error.is_ok() {
            let creation_configs = creation_configs(requested, &result.name);
            topic_config_entries(broker, &creation_configs).iter().map(creatable_topic_config).collect()
        } else {
            Vec::new()
        };
        wire = wire.with_configs(Some(configs));
    }
    wire
}

/// The configs a successful request gave topic `name`, as the controller stores them (trimmed
/// and normalized; the last of duplicate keys wins).
fn creation_configs(requested: &[NewTopic], name: &str) -> BTreeMap<String, String> {
    let mut configs = BTreeMap::new();
    for topic in requested.iter().filter(|t| t.name == name) {
        for (key, value) in &topic.configs {
            if let Ok(value) = validate_topic_config(key, value.as_deref().unwrap_or_default()) {
                configs.insert(key.clone(), value);
            }
        }
    }
    configs
}

fn creatable_topic_config(entry: &ConfigEntry) -> CreatableTopicConfigs {
    CreatableTopicConfigs::default()
        .with_name(str_bytes(entry.name.clone()))
        .with_value(entry.value.clone().map(str_bytes))
        .with_read_only(entry.read_only)
        .with_config_source(entry.source)
        .with_is_sensitive(false)
}

// ---------------------------------------------------------------------------------------------
// DeleteTopics
// ---------------------------------------------------------------------------------------------

pub async fn delete_topics(shard: &Shard, req: DeleteTopicsRequest, version: i16) -> DeleteTopicsResponse {
    // v1–5 name topics in `topic_names`; v6 in `topics`, by name or by id.
    let topics: Vec<TopicRef> = if version >= 6 {
        req.topics
            .iter()
            .map(|t| TopicRef {
                name: t.name.as_ref().map(|n| n.0.to_string()),
                topic_id: *t.topic_id.as_bytes(),
            })
            .collect()
    } else {
        req.topic_names.iter().map(|n| TopicRef { name: Some(n.0.to_string()), topic_id: [0; 16] }).collect()
    };
    let request = ControlRequest::DeleteTopics(controller::DeleteTopicsRequest { topics: topics.clone() });
    let results = match ask_controller(shard, request).await {
        Ok(ControlResponse::DeleteTopics(results)) => results,
        Ok(_) => failed_deletions(&topics, &mismatched_reply()),
        Err(error) => failed_deletions(&topics, &error),
    };
    let responses = results.iter().map(|r| deletable_topic_result(r, version)).collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

fn failed_deletions(topics: &[TopicRef], error: &ApiError) -> Vec<controller::DeletableTopicResult> {
    topics
        .iter()
        .map(|t| controller::DeletableTopicResult {
            name: t.name.clone(),
            topic_id: t.topic_id,
            error: error.clone(),
        })
        .collect()
}

fn deletable_topic_result(
    result: &controller::DeletableTopicResult,
    version: i16,
) -> WireDeletableTopicResult {
    let mut error = result.error.clone();
    if error.code == KafkaError::TopicDeletionDisabled.code() && version < 3 {
        // Clients of v0–2 predate TOPIC_DELETION_DISABLED; Kafka answers them INVALID_REQUEST.
        error.code = KafkaError::InvalidRequest.code();
    }
    let mut wire = WireDeletableTopicResult::default()
        .with_name(result.name.clone().map(topic_name))
        .with_error_code(error.code);
    if version >= 5 {
        wire = wire.with_error_message(message(&error));
    }
    if version >= 6 {
        wire = wire.with_topic_id(Uuid::from_bytes(result.topic_id));
    }
    wire
}

// ---------------------------------------------------------------------------------------------
// CreatePartitions
// ---------------------------------------------------------------------------------------------

pub async fn create_partitions(shard: &Shard, req: CreatePartitionsRequest) -> CreatePartitionsResponse {
    let topics: Vec<PartitionsIncrease> = req
        .topics
        .iter()
        .map(|t| PartitionsIncrease {
            name: t.name.0.to_string(),
            count: t.count,
            assignments: t
                .assignments
                .as_ref()
                .map(|a| a.iter().map(|a| a.broker_ids.iter().map(|b| b.0).collect()).collect()),
        })
        .collect();
    let request = ControlRequest::CreatePartitions(controller::CreatePartitionsRequest {
        topics: topics.clone(),
        validate_only: req.validate_only,
    });
    let results: Vec<(String, ApiError)> = match ask_controller(shard, request).await {
        Ok(ControlResponse::CreatePartitions(results)) => {
            results.into_iter().map(|r| (r.name, r.error)).collect()
        }
        Ok(_) => topics.iter().map(|t| (t.name.clone(), mismatched_reply())).collect(),
        Err(error) => topics.iter().map(|t| (t.name.clone(), error.clone())).collect(),
    };
    let results = results
        .into_iter()
        .map(|(name, error)| {
            CreatePartitionsTopicResult::default()
                .with_name(topic_name(name))
                .with_error_code(error.code)
                .with_error_message(message(&error))
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

// ---------------------------------------------------------------------------------------------
// AlterConfigs / IncrementalAlterConfigs
// ---------------------------------------------------------------------------------------------

pub async fn alter_configs(shard: &Shard, req: AlterConfigsRequest) -> AlterConfigsResponse {
    let resources: Vec<controller::AlterConfigsResource> = req
        .resources
        .iter()
        .map(|r| controller::AlterConfigsResource {
            resource_type: r.resource_type,
            resource_name: r.resource_name.to_string(),
            configs: r
                .configs
                .iter()
                .map(|c| (c.name.to_string(), c.value.as_ref().map(|v| v.to_string())))
                .collect(),
        })
        .collect();
    let keys: Vec<(i8, String)> =
        resources.iter().map(|r| (r.resource_type, r.resource_name.clone())).collect();
    let request = ControlRequest::AlterConfigs(controller::AlterConfigsRequest {
        resources,
        validate_only: req.validate_only,
    });
    let results = match ask_controller(shard, request).await {
        Ok(ControlResponse::AlterConfigs(results)) => results,
        Ok(_) => failed_resources(&keys, &mismatched_reply()),
        Err(error) => failed_resources(&keys, &error),
    };
    let responses = results
        .iter()
        .map(|r| {
            alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(r.error.code)
                .with_error_message(message(&r.error))
                .with_resource_type(r.resource_type)
                .with_resource_name(str_bytes(r.resource_name.clone()))
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

pub async fn incremental_alter_configs(
    shard: &Shard,
    req: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let resources: Vec<controller::IncrementalAlterConfigsResource> = req
        .resources
        .iter()
        .map(|r| controller::IncrementalAlterConfigsResource {
            resource_type: r.resource_type,
            resource_name: r.resource_name.to_string(),
            configs: r
                .configs
                .iter()
                .map(|c| AlterableConfig {
                    name: c.name.to_string(),
                    op: c.config_operation,
                    value: c.value.as_ref().map(|v| v.to_string()),
                })
                .collect(),
        })
        .collect();
    let keys: Vec<(i8, String)> =
        resources.iter().map(|r| (r.resource_type, r.resource_name.clone())).collect();
    let request = ControlRequest::IncrementalAlterConfigs(controller::IncrementalAlterConfigsRequest {
        resources,
        validate_only: req.validate_only,
    });
    let results = match ask_controller(shard, request).await {
        Ok(ControlResponse::IncrementalAlterConfigs(results)) => results,
        Ok(_) => failed_resources(&keys, &mismatched_reply()),
        Err(error) => failed_resources(&keys, &error),
    };
    let responses = results
        .iter()
        .map(|r| {
            incremental_alter_configs_response::AlterConfigsResourceResponse::default()
                .with_error_code(r.error.code)
                .with_error_message(message(&r.error))
                .with_resource_type(r.resource_type)
                .with_resource_name(str_bytes(r.resource_name.clone()))
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

fn failed_resources(keys: &[(i8, String)], error: &ApiError) -> Vec<ConfigResourceResult> {
    keys.iter()
        .map(|(resource_type, resource_name)| ConfigResourceResult {
            resource_type: *resource_type,
            resource_name: resource_name.clone(),
            error: error.clone(),
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// DescribeConfigs
// ---------------------------------------------------------------------------------------------

/// One described config, before it is shaped into a response of some API.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ConfigEntry {
    name: String,
    value: Option<String>,
    source: i8,
    read_only: bool,
    /// Every source that supplies a value, the one in effect first (Kafka's synonyms).
    synonyms: Vec<Synonym>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Synonym {
    name: String,
    value: String,
    source: i8,
}

pub async fn describe_configs(
    shard: &Shard,
    req: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = req
        .resources
        .iter()
        .map(|resource| {
            let described = shard.with_image(|image| describe_resource(shard, image, resource));
            describe_configs_result(resource, described, req.include_synonyms, version)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn describe_resource(
    shard: &Shard,
    image: &crate::metadata::MetadataImage,
    resource: &DescribeConfigsResource,
) -> Result<Vec<ConfigEntry>, ApiError> {
    let name = resource.resource_name.as_str();
    match resource.resource_type {
        RESOURCE_TOPIC => {
            validate_topic_name(name)?;
            let Some(topic) = image.topic(name) else {
                return Err(ApiError { code: KafkaError::UnknownTopicOrPartition.code(), message: None });
            };
            Ok(topic_config_entries(&shard.config, &topic.configs))
        }
        RESOURCE_BROKER if name.is_empty() => {
            // The cluster-wide default resource holds only dynamic defaults (Kafka lists just
            // those); the controller refuses to set any, so this is normally empty.
            let dynamic = image.broker_configs("").cloned().unwrap_or_default();
            Ok(dynamic
                .into_iter()
                .map(|(name, value)| ConfigEntry {
                    synonyms: vec![Synonym {
                        name: name.clone(),
                        value: value.clone(),
                        source: SOURCE_DYNAMIC_DEFAULT_BROKER,
                    }],
                    name,
                    value: Some(value),
                    source: SOURCE_DYNAMIC_DEFAULT_BROKER,
                    read_only: false,
                })
                .collect())
        }
        RESOURCE_BROKER => {
            check_own_broker_id(shard, name)?;
            Ok(broker_config_entries(&shard.config))
        }
        RESOURCE_BROKER_LOGGER => {
            Err(invalid_request("Describing broker loggers is not supported by this broker."))
        }
        other => Err(invalid_request(&format!("Unsupported resource type: {other}"))),
    }
}

fn invalid_request(text: &str) -> ApiError {
    ApiError { code: KafkaError::InvalidRequest.code(), message: Some(text.to_string()) }
}

/// A broker resource names a node id of this broker. Every shard node shares the one broker
/// config, so any of them is accepted (Kafka accepts only its own id).
fn check_own_broker_id(shard: &Shard, name: &str) -> Result<(), ApiError> {
    let Ok(id) = name.trim().parse::<i32>() else {
        return Err(invalid_request(&format!("Broker id must be an integer, but it is: {name}")));
    };
    if shard.spec.nodes.iter().any(|(node, _)| *node == id) {
        return Ok(());
    }
    Err(invalid_request(&format!(
        "Unexpected broker id, expected {} or empty string, but received {name}",
        shard.spec.node_id
    )))
}

fn describe_configs_result(
    resource: &DescribeConfigsResource,
    described: Result<Vec<ConfigEntry>, ApiError>,
    include_synonyms: bool,
    version: i16,
) -> DescribeConfigsResult {
    let result = DescribeConfigsResult::default()
        .with_resource_type(resource.resource_type)
        .with_resource_name(resource.resource_name.clone());
    let entries = match described {
        Ok(entries) => entries,
        Err(error) => {
            return result
                .with_error_code(error.code)
                .with_error_message(message(&error))
                .with_configs(Vec::new())
        }
    };
    // Null or empty `configuration_keys` means every config (Kafka's `createResponseConfig`).
    let wanted = resource.configuration_keys.as_ref().filter(|keys| !keys.is_empty());
    let configs = entries
        .iter()
        .filter(|e| wanted.is_none_or(|keys| keys.iter().any(|k| k.as_str() == e.name)))
        .map(|e| describe_configs_entry(e, include_synonyms, version))
        .collect();
    result.with_error_code(0).with_error_message(None).with_configs(configs)
}

fn describe_configs_entry(
    entry: &ConfigEntry,
    include_synonyms: bool,
    version: i16,
) -> DescribeConfigsResourceResult {
    let synonyms = if include_synonyms {
        entry
            .synonyms
            .iter()
            .map(|s| {
                DescribeConfigsSynonym::default()
                    .with_name(str_bytes(s.name.clone()))
                    .with_value(Some(str_bytes(s.value.clone())))
                    .with_source(s.source)
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut wire = DescribeConfigsResourceResult::default()
        .with_name(str_bytes(entry.name.clone()))
        .with_value(entry.value.clone().map(str_bytes))
        .with_read_only(entry.read_only)
        .with_config_source(entry.source)
        .with_is_sensitive(false)
        .with_synonyms(synonyms);
    if version >= 3 {
        // No documentation strings here; `config_type` stays UNKNOWN (0).
        wire = wire.with_documentation(None);
    }
    wire
}

/// Every topic config the controller accepts, with the topic's value or the broker default it
/// falls back on, alphabetically (the order of `topic_config_names`).
fn topic_config_entries(broker: &BrokerConfig, topic_configs: &BTreeMap<String, String>) -> Vec<ConfigEntry> {
    topic_config_names().map(|name| topic_config_entry(broker, topic_configs, name)).collect()
}

fn topic_config_entry(
    broker: &BrokerConfig,
    topic_configs: &BTreeMap<String, String>,
    name: &str,
) -> ConfigEntry {
    let value = effective_value(broker, topic_configs, name).map(|(value, _)| value);
    let mut synonyms = Vec::new();
    if let Some(v) = topic_configs.get(name) {
        synonyms.push(Synonym { name: name.to_string(), value: v.clone(), source: SOURCE_TOPIC });
    }
    if let Some((_, broker_key)) = TOPIC_CONFIG_KEYS.iter().find(|(k, _)| *k == name) {
        synonyms.extend(broker_synonyms(broker, broker_key));
    }
    let source = synonyms.first().map_or(SOURCE_DEFAULT, |s| s.source);
    ConfigEntry { name: name.to_string(), value, source, read_only: false, synonyms }
}

/// Every broker key with its value (null when it has neither a value nor a default). All are
/// read-only: the controller changes no broker config at runtime.
fn broker_config_entries(broker: &BrokerConfig) -> Vec<ConfigEntry> {
    let mut keys: Vec<&str> = config::broker_keys().collect();
    keys.sort_unstable();
    keys.into_iter()
        .map(|key| {
            let synonyms = broker_synonyms(broker, key);
            ConfigEntry {
                name: key.to_string(),
                value: broker.values.get(key).cloned(),
                source: synonyms.first().map_or(SOURCE_DEFAULT, |s| s.source),
                read_only: true,
                synonyms,
            }
        })
        .collect()
}

/// The values `key` and its less specific synonyms have: given in the config (static) and
/// Kafka's default, in Kafka's order (per name: static, then default).
fn broker_synonyms(broker: &BrokerConfig, key: &str) -> Vec<Synonym> {
    let chain: &[&str] = BROKER_SYNONYMS
        .iter()
        .copied()
        .find(|chain| chain.first() == Some(&key))
        .unwrap_or(std::slice::from_ref(&key));
    let mut synonyms = Vec::new();
    for name in chain {
        if let Some(value) = broker.static_values.get(*name) {
            synonyms.push(Synonym {
                name: name.to_string(),
                value: value.clone(),
                source: SOURCE_STATIC_BROKER,
            });
        }
        if let Some(default) = config::default_value(name) {
            synonyms.push(Synonym {
                name: name.to_string(),
                value: default.to_string(),
                source: SOURCE_DEFAULT,
            });
        }
    }
    synonyms
}

// ---------------------------------------------------------------------------------------------
// DeleteRecords
// ---------------------------------------------------------------------------------------------

pub async fn delete_records(shard: &Shard, req: DeleteRecordsRequest) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(req.topics.len());
    for topic in req.topics {
        let name = topic.name.0.to_string();
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in topic.partitions {
            let result = DeleteRecordsPartitionResult::default().with_partition_index(p.partition_index);
            partitions.push(
                match delete_partition_records(shard, &name, p.partition_index, p.offset).await {
                    Ok(low_watermark) => result.with_low_watermark(low_watermark).with_error_code(0),
                    Err(e) => result.with_low_watermark(-1).with_error_code(e.code()),
                },
            );
        }
        topics.push(DeleteRecordsTopicResult::default().with_name(topic.name).with_partitions(partitions));
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

/// Moves one partition's log start to `offset` (-1: the high watermark); returns the new low
/// watermark. Checks in Kafka's order: internal topic, leadership, cleanup policy, offset.
async fn delete_partition_records(
    shard: &Shard,
    topic: &str,
    index: i32,
    offset: i64,
) -> Result<i64, KafkaError> {
    if INTERNAL_TOPICS.contains(&topic) {
        return Err(KafkaError::InvalidTopic);
    }
    // Like Produce: a partition this shard was just given may still be opening.
    let partition = super::led_partition(shard, topic, index).await?;
    // A compact-only topic keeps every key's latest record: Kafka refuses to cut it.
    let deletes = shard.with_image(|image| {
        let configs = image.topic(topic).map(|t| t.configs.clone()).unwrap_or_default();
        effective_value(&shard.config, &configs, "cleanup.policy")
            .is_none_or(|(policy, _)| policy.split(',').any(|p| p.trim() == "delete"))
    });
    if !deletes {
        return Err(KafkaError::PolicyViolation);
    }
    partition.delete_records_before(offset, now_ms()).await
}

// ---------------------------------------------------------------------------------------------
// DescribeCluster
// ---------------------------------------------------------------------------------------------

pub fn describe_cluster(shard: &Shard, req: DescribeClusterRequest, version: i16) -> DescribeClusterResponse {
    // v0 has no endpoint_type (it decodes as "brokers"); errors there are INVALID_REQUEST.
    if let Err((error, text)) = check_endpoint_type(req.endpoint_type) {
        let code = if version == 0 { KafkaError::InvalidRequest.code() } else { error.code() };
        return DescribeClusterResponse::default()
            .with_error_code(code)
            .with_error_message(Some(str_bytes(text)));
    }
    let rack = shard_rack(&shard.config);
    let brokers = shard
        .spec
        .nodes
        .iter()
        .map(|&(node_id, port)| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(node_id))
                .with_host(str_bytes(shard.config.advertised_host.clone()))
                .with_port(port as i32)
                .with_rack(Some(str_bytes(rack.clone())))
        })
        .collect();
    let authorized_operations = if req.include_cluster_authorized_operations {
        CLUSTER_AUTHORIZED_OPERATIONS
    } else {
        AUTHORIZED_OPERATIONS_OMITTED
    };
    let controller_id = shard.spec.nodes.first().map_or(-1, |(node, _)| *node);
    DescribeClusterResponse::default()
        .with_error_code(0)
        .with_error_message(None)
        .with_cluster_id(str_bytes(shard.spec.cluster_id.clone()))
        .with_controller_id(BrokerId(controller_id))
        .with_brokers(brokers)
        .with_cluster_authorized_operations(authorized_operations)
}

/// Every shard is a broker endpoint (Kafka's `AuthHelper.computeDescribeClusterResponse`).
fn check_endpoint_type(endpoint_type: i8) -> Result<(), (KafkaError, String)> {
    match endpoint_type {
        ENDPOINT_BROKERS => Ok(()),
        ENDPOINT_CONTROLLERS => Err((
            KafkaError::MismatchedEndpointType,
            "The request was sent to an endpoint of type BROKER, but we wanted an endpoint of type CONTROLLER"
                .to_string(),
        )),
        other => Err((KafkaError::UnsupportedEndpointType, format!("Unsupported endpoint type {other}"))),
    }
}

/// The rack Metadata advertises for every shard: `broker.rack`, else one named after the
/// physical broker, so replica placement can tell brokers apart (DESIGN.md invariant 3).
fn shard_rack(config: &BrokerConfig) -> String {
    config.rack.clone().unwrap_or_else(|| format!("broker-{}", config.node_id))
}

// ---------------------------------------------------------------------------------------------
// DescribeLogDirs
// ---------------------------------------------------------------------------------------------

pub async fn describe_log_dirs(
    shard: &Shard,
    req: DescribeLogDirsRequest,
    version: i16,
) -> DescribeLogDirsResponse {
    // Null topics = every partition of this shard; otherwise only the named ones it has.
    let wanted: Option<Vec<(String, Vec<i32>)>> =
        req.topics.map(|topics| topics.into_iter().map(|t| (t.topic.0.to_string(), t.partitions)).collect());
    let partitions: Vec<_> = shard
        .partitions
        .borrow()
        .values()
        .filter(|p| {
            wanted.as_ref().is_none_or(|w| w.iter().any(|(t, ps)| *t == p.topic && ps.contains(&p.index)))
        })
        .cloned()
        .collect();
    let mut by_topic: BTreeMap<String, Vec<DescribeLogDirsPartition>> = BTreeMap::new();
    for p in partitions {
        let size = p.size_bytes().await;
        by_topic.entry(p.topic.clone()).or_default().push(
            DescribeLogDirsPartition::default()
                .with_partition_index(p.index)
                .with_partition_size(size.min(i64::MAX as u64) as i64)
                .with_offset_lag(0)
                .with_is_future_key(false),
        );
    }
    let topics = by_topic
        .into_iter()
        .map(|(name, mut partitions)| {
            partitions.sort_by_key(|p| p.partition_index);
            DescribeLogDirsTopic::default().with_name(topic_name(name)).with_partitions(partitions)
        })
        .collect();
    let dir = &shard.config.log_dir;
    let shown = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.clone());
    let mut result = DescribeLogDirsResult::default()
        .with_error_code(0)
        .with_log_dir(str_bytes(shown.display().to_string()))
        .with_topics(topics);
    if version >= 4 {
        let (total, usable) = disk_space(dir).unwrap_or((-1, -1));
        result = result.with_total_bytes(total).with_usable_bytes(usable);
    }
    DescribeLogDirsResponse::default().with_results(vec![result])
}

/// `(total, usable)` bytes of the file system holding `path`, from `statvfs(2)` — a metadata
/// call that does not wait on the disk, so it is fine on a shard thread.
fn disk_space(path: &Path) -> Option<(i64, i64)> {
    use std::os::unix::ffi::OsStrExt;
    let c_path = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs is plain old data; all-zero is a valid value to be overwritten.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c_path` is NUL-terminated and `stat` is a valid, writable statvfs.
    if unsafe { libc::statvfs(c_path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    let block = stat.f_frsize as u64;
    let bytes = |blocks: u64| blocks.saturating_mul(block).min(i64::MAX as u64) as i64;
    Some((bytes(stat.f_blocks as u64), bytes(stat.f_bavail as u64)))
}

#[cfg(test)]
mod tests {
    use shardlog_net::kafka_protocol::messages::ApiKey;
    use shardlog_net::kafka_protocol::protocol::Encodable;

    use super::*;

    fn broker(overrides: &[&str]) -> BrokerConfig {
        let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
        BrokerConfig::load(None, &overrides).unwrap()
    }

    fn entry<'a>(entries: &'a [ConfigEntry], name: &str) -> &'a ConfigEntry {
        entries.iter().find(|e| e.name == name).unwrap_or_else(|| panic!("{name} not described"))
    }

    /// DescribeConfigs lists what AlterConfigs accepts, and every such key has a broker
    /// default: the two lists must not drift apart.
    #[test]
    fn described_topic_configs_are_exactly_the_alterable_ones() {
        let alterable: Vec<&str> = topic_config_names().collect();
        let with_defaults: Vec<&str> = TOPIC_CONFIG_KEYS.iter().map(|(k, _)| *k).collect();
        assert_eq!(alterable, with_defaults);
        let entries = topic_config_entries(&broker(&[]), &BTreeMap::new());
        assert_eq!(entries.iter().map(|e| e.name.as_str()).collect::<Vec<_>>(), alterable);
        for e in &entries {
            assert!(e.value.is_some(), "{} has no value", e.name);
            assert!(
                controller::validate_topic_config(&e.name, e.value.as_deref().unwrap()).is_ok(),
                "the default of {} is not a value AlterConfigs accepts: {:?}",
                e.name,
                e.value
            );
        }
    }

    #[test]
    fn topic_values_come_from_the_topic_then_the_static_broker_config_then_defaults() {
        let broker = broker(&["log.retention.hours=1", "message.max.bytes=2000"]);
        let topic = BTreeMap::from([("segment.bytes".to_string(), "4096".to_string())]);
        let entries = topic_config_entries(&broker, &topic);

        let segment = entry(&entries, "segment.bytes");
        assert_eq!((segment.value.as_deref(), segment.source), (Some("4096"), SOURCE_TOPIC));
        assert_eq!(
            segment.synonyms[0],
            Synonym { name: "segment.bytes".into(), value: "4096".into(), source: 1 }
        );
        assert_eq!(segment.synonyms[1].name, "log.segment.bytes");
        assert_eq!(segment.synonyms[1].source, SOURCE_DEFAULT);

        let retention = entry(&entries, "retention.ms");
        assert_eq!((retention.value.as_deref(), retention.source), (Some("3600000"), SOURCE_STATIC_BROKER));
        let names: Vec<(&str, i8)> = retention.synonyms.iter().map(|s| (s.name.as_str(), s.source)).collect();
        assert_eq!(names, vec![("log.retention.hours", 4), ("log.retention.hours", 5)]);

        let max = entry(&entries, "max.message.bytes");
        assert_eq!((max.value.as_deref(), max.source), (Some("2000"), SOURCE_STATIC_BROKER));
        let cleanup = entry(&entries, "cleanup.policy");
        assert_eq!((cleanup.value.as_deref(), cleanup.source, cleanup.read_only), (Some("delete"), 5, false));
        let flush = entry(&entries, "flush.ms");
        assert_eq!(flush.value.as_deref(), Some("9223372036854775807"));
        assert_eq!(flush.synonyms[0].name, "log.flush.scheduler.interval.ms");
    }

    #[test]
    fn broker_entries_are_read_only_and_know_their_source() {
        let entries = broker_config_entries(&broker(&["num.partitions=3"]));
        let partitions = entry(&entries, "num.partitions");
        assert_eq!(
            (partitions.value.as_deref(), partitions.source, partitions.read_only),
            (Some("3"), 4, true)
        );
        let retention = entry(&entries, "log.retention.ms");
        assert_eq!((retention.value.as_deref(), retention.source), (None, SOURCE_DEFAULT));
        assert_eq!(retention.synonyms[0].name, "log.retention.hours");
        let replication = entry(&entries, "default.replication.factor");
        assert_eq!(replication.source, SOURCE_DEFAULT);
        assert!(entries.windows(2).all(|w| w[0].name < w[1].name), "sorted by name");
    }

    fn encodes<R: Encodable>(api_key: ApiKey, version: i16, body: &R) {
        if let Err(e) = shardlog_net::encode_response(api_key, version, 7, body) {
            panic!("{api_key:?} v{version}: {e}");
        }
    }

    /// Every response shape the handlers build encodes at every advertised version: the
    /// encoder refuses a field set on a version that lacks it.
    #[test]
    fn responses_encode_at_every_supported_version() {
        let config = broker(&[]);
        let ok = controller::CreatableTopicResult {
            name: "t".into(),
            topic_id: [7; 16],
            error: ApiError::NONE,
            num_partitions: 3,
            replication_factor: 1,
        };
        let failed = controller::CreatableTopicResult {
            error: ApiError { code: 36, message: Some("Topic 't' already exists.".into()) },
            ..ok.clone()
        };
        let requested = vec![NewTopic {
            name: "t".into(),
            num_partitions: 3,
            replication_factor: 1,
            assignments: vec![],
            configs: vec![("retention.ms".into(), Some(" 5 ".into()))],
        }];
        for version in 2..=7 {
            let topics = [&ok, &failed]
                .iter()
                .map(|r| creatable_topic_result(&config, r, &requested, version))
                .collect();
            encodes(ApiKey::CreateTopics, version, &CreateTopicsResponse::default().with_topics(topics));
        }
        let v7 = creatable_topic_result(&config, &ok, &requested, 7);
        let configs = v7.configs.unwrap();
        let retention = configs.iter().find(|c| c.name.as_str() == "retention.ms").unwrap();
        assert_eq!((retention.value.as_deref(), retention.config_source), (Some("5"), SOURCE_TOPIC));
        assert_eq!(v7.topic_id, Uuid::from_bytes([7; 16]));

        let disabled = controller::DeletableTopicResult {
            name: Some("t".into()),
            topic_id: [1; 16],
            error: ApiError { code: 73, message: Some("Topic deletion is disabled.".into()) },
        };
        for version in 1..=6 {
            let result = deletable_topic_result(&disabled, version);
            assert_eq!(result.error_code, if version < 3 { 42 } else { 73 });
            encodes(
                ApiKey::DeleteTopics,
                version,
                &DeleteTopicsResponse::default().with_responses(vec![result]),
            );
        }

        let resource = DescribeConfigsResource::default()
            .with_resource_type(RESOURCE_TOPIC)
            .with_resource_name(str_bytes("t"))
            .with_configuration_keys(Some(vec![str_bytes("retention.ms")]));
        for version in 1..=4 {
            let entries = topic_config_entries(&config, &BTreeMap::new());
            let result = describe_configs_result(&resource, Ok(entries), true, version);
            assert_eq!(result.configs.len(), 1, "filtered by configuration_keys");
            encodes(
                ApiKey::DescribeConfigs,
                version,
                &DescribeConfigsResponse::default().with_results(vec![result]),
            );
        }

        for version in 1..=4 {
            let result = DescribeLogDirsResult::default().with_log_dir(str_bytes("/tmp"));
            let result = if version >= 4 { result.with_total_bytes(10).with_usable_bytes(5) } else { result };
            encodes(
                ApiKey::DescribeLogDirs,
                version,
                &DescribeLogDirsResponse::default().with_results(vec![result]),
            );
        }
    }

    #[test]
    fn endpoint_types_follow_kafka() {
        assert!(check_endpoint_type(1).is_ok());
        assert_eq!(check_endpoint_type(2).unwrap_err().0, KafkaError::MismatchedEndpointType);
        assert_eq!(check_endpoint_type(0).unwrap_err().0, KafkaError::UnsupportedEndpointType);
        assert_eq!(CLUSTER_AUTHORIZED_OPERATIONS, 8096);
    }

    #[test]
    fn disk_space_of_an_existing_dir() {
        let (total, usable) = disk_space(Path::new("/")).unwrap();
        assert!(total > 0 && usable >= 0 && usable <= total, "{total} {usable}");
        assert!(disk_space(Path::new("/no/such/dir")).is_none());
    }
}
