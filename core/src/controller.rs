//! The controller: the one place that decides metadata changes. It runs on shard 0 only, owns
//! the [`MetadataLog`] and the controller's [`MetadataImage`], and answers [`ControlRequest`]s
//! (CreateTopics, DeleteTopics, CreatePartitions, AlterConfigs, IncrementalAlterConfigs,
//! auto-creation, producer-id blocks) the way a Kafka 3.7 KRaft controller does: per-item Kafka
//! error codes and messages (the checks follow `ControllerApis`, `ReplicationControlManager`,
//! `ConfigurationControlManager` and `ConfigAdminManager` of Kafka 3.7).
//!
//! Handling a request is two steps:
//! 1. [`decide`] — pure and synchronous: validates against the image and produces the records
//!    to commit plus the response. Unit-tested without any I/O.
//! 2. [`Controller::handle`] — commits those records as one batch (one fsync), applies them to
//!    the controller's image, and returns them for the control plane to broadcast.
//!
//! Invariants:
//! - One request is one batch: committed entirely or not at all, never more than
//!   [`MAX_RECORDS_PER_OP`] records (Kafka's limit; above it the whole request fails with
//!   `POLICY_VIOLATION`, as Kafka does), checked before any large allocation.
//! - Requests are handled one at a time, so each decision sees every earlier commit.
//! - Placement is a stable rule recorded in the records: a new partition's leader is the shard
//!   node after the leader of the most recently created partition (round-robin over
//!   [`ControllerConfig::node_ids`], derived from the image, so restarts continue the rotation).
//!   Replicas = ISR = [leader]: one broker, no replication yet.
//! - Topic ids are random v4 UUIDs, never all-zero, never one whose base64 form starts with '-'
//!   (Kafka avoids those too: they read like command-line flags), never one already in use.

// Until core/src/main.rs wires the control plane into the shards, only tests call into it.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use crate::metadata::log::{LogError, MetadataLog, Replayed};
use crate::metadata::records::{
    ConfigRecord, MetadataRecord, PartitionRecord, ProducerIdsRecord, RemoveTopicRecord, TopicId,
    TopicRecord, RESOURCE_BROKER, RESOURCE_TOPIC,
};
use crate::metadata::MetadataImage;

/// Most records one operation may commit (Kafka's `QuorumController.MAX_RECORDS_PER_USER_OP`).
pub const MAX_RECORDS_PER_OP: usize = 10_000;
/// Producer ids handed out per [`ControlRequest::AllocateProducerIds`] (Kafka's block size).
pub const PRODUCER_ID_BLOCK_SIZE: i32 = 1000;
/// Node ids of one broker's shards are `node.id + NODE_ID_SHARD_STRIDE × shard` (the same rule
/// as `config::NODE_ID_SHARD_STRIDE`; kept here so this module compiles on its own).
pub const NODE_ID_SHARD_STRIDE: i32 = 1000;

const MAX_TOPIC_NAME_LEN: usize = 249;
const CLUSTER_METADATA_TOPIC: &str = "__cluster_metadata";
const RESOURCE_BROKER_LOGGER: i8 = 8;
const EXCESSIVE_BATCH: &str = "Unable to perform excessively large batch operation.";

/// Kafka error codes used here. The net crate's error module will own the full table; these are
/// the numeric values of Kafka's `Errors` enum, kept private so nothing else grows on them.
mod code {
    pub const NONE: i16 = 0;
    pub const UNKNOWN_SERVER_ERROR: i16 = -1;
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    pub const INVALID_TOPIC_EXCEPTION: i16 = 17;
    pub const TOPIC_AUTHORIZATION_FAILED: i16 = 29;
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    pub const INVALID_PARTITIONS: i16 = 37;
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    pub const INVALID_REPLICA_ASSIGNMENT: i16 = 39;
    pub const INVALID_CONFIG: i16 = 40;
    pub const INVALID_REQUEST: i16 = 42;
    pub const POLICY_VIOLATION: i16 = 44;
    pub const TOPIC_DELETION_DISABLED: i16 = 73;
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
}

/// Kafka's `AlterConfigOp.OpType` ids (IncrementalAlterConfigs `config_operation`).
pub const OP_SET: i8 = 0;
pub const OP_DELETE: i8 = 1;
pub const OP_APPEND: i8 = 2;
pub const OP_SUBTRACT: i8 = 3;

// ---------------------------------------------------------------------------------------------
// Requests and responses
// ---------------------------------------------------------------------------------------------

/// A Kafka error code with its optional message, as it goes into a response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub code: i16,
    pub message: Option<String>,
}

impl ApiError {
    pub const NONE: ApiError = ApiError { code: code::NONE, message: None };

    fn new(code: i16, message: impl Into<String>) -> ApiError {
        ApiError { code, message: Some(message.into()) }
    }

    fn bare(code: i16) -> ApiError {
        ApiError { code, message: None }
    }

    pub fn is_ok(&self) -> bool {
        self.code == code::NONE
    }
}

/// What the controller needs from the broker config.
#[derive(Debug, Clone)]
pub struct ControllerConfig {
    /// Node id of every shard, by shard index; placement rotates over them.
    pub node_ids: Vec<i32>,
    /// Brokers in the cluster (1 until the replication issue).
    pub broker_count: usize,
    /// `num.partitions`: used when a request says -1.
    pub default_num_partitions: i32,
    /// `default.replication.factor`: used when a request says -1.
    pub default_replication_factor: i16,
    /// `delete.topic.enable`.
    pub delete_topic_enable: bool,
}

impl ControllerConfig {
    /// One broker `node_id` with `num_shards` shards and Kafka's defaults.
    pub fn single_broker(node_id: i32, num_shards: usize) -> ControllerConfig {
        ControllerConfig {
            node_ids: (0..num_shards as i32).map(|s| node_id + NODE_ID_SHARD_STRIDE * s).collect(),
            broker_count: 1,
            default_num_partitions: 1,
            default_replication_factor: 1,
            delete_topic_enable: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlRequest {
    CreateTopics(CreateTopicsRequest),
    DeleteTopics(DeleteTopicsRequest),
    CreatePartitions(CreatePartitionsRequest),
    AlterConfigs(AlterConfigsRequest),
    IncrementalAlterConfigs(IncrementalAlterConfigsRequest),
    /// Create topics with the broker defaults if they do not exist yet (Metadata/Produce with
    /// `auto.create.topics.enable`). Existing topics are a success, not an error.
    AutoCreateTopics {
        names: Vec<String>,
    },
    /// A block of [`PRODUCER_ID_BLOCK_SIZE`] producer ids for InitProducerId on `broker_id`.
    AllocateProducerIds {
        broker_id: i32,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreateTopicsRequest {
    pub topics: Vec<NewTopic>,
    pub validate_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTopic {
    pub name: String,
    /// -1: `num.partitions` (or the assignments, when given).
    pub num_partitions: i32,
    /// -1: `default.replication.factor` (or the assignments, when given).
    pub replication_factor: i16,
    /// Manual placement; when non-empty both counts above must be -1.
    pub assignments: Vec<ReplicaAssignment>,
    /// `None` values are refused, as Kafka does.
    pub configs: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaAssignment {
    pub partition: i32,
    pub replicas: Vec<i32>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatableTopicResult {
    pub name: String,
    /// All-zero on error.
    pub topic_id: TopicId,
    pub error: ApiError,
    /// -1 on error.
    pub num_partitions: i32,
    /// -1 on error.
    pub replication_factor: i16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteTopicsRequest {
    pub topics: Vec<TopicRef>,
}

/// A topic named by name or by id, as DeleteTopics v6+ sends it (older versions: name only,
/// zero id). Naming both, or neither, is an error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicRef {
    pub name: Option<String>,
    /// All-zero = not given.
    pub topic_id: TopicId,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeletableTopicResult {
    pub name: Option<String>,
    pub topic_id: TopicId,
    pub error: ApiError,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CreatePartitionsRequest {
    pub topics: Vec<PartitionsIncrease>,
    pub validate_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionsIncrease {
    pub name: String,
    /// The new total number of partitions.
    pub count: i32,
    /// Replicas of each new partition, when placed by hand.
    pub assignments: Option<Vec<Vec<i32>>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicResult {
    pub name: String,
    pub error: ApiError,
}

/// Legacy AlterConfigs: the given configs replace the resource's whole dynamic config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfigsRequest {
    pub resources: Vec<AlterConfigsResource>,
    pub validate_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterConfigsResource {
    pub resource_type: i8,
    pub resource_name: String,
    pub configs: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncrementalAlterConfigsRequest {
    pub resources: Vec<IncrementalAlterConfigsResource>,
    pub validate_only: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncrementalAlterConfigsResource {
    pub resource_type: i8,
    pub resource_name: String,
    pub configs: Vec<AlterableConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlterableConfig {
    pub name: String,
    /// [`OP_SET`], [`OP_DELETE`], [`OP_APPEND`] or [`OP_SUBTRACT`].
    pub op: i8,
    pub value: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigResourceResult {
    pub resource_type: i8,
    pub resource_name: String,
    pub error: ApiError,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducerIdBlock {
    pub broker_id: i32,
    pub first_producer_id: i64,
    pub size: i32,
}

/// The answer to one [`ControlRequest`], same variant, one result per item.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlResponse {
    CreateTopics(Vec<CreatableTopicResult>),
    DeleteTopics(Vec<DeletableTopicResult>),
    CreatePartitions(Vec<TopicResult>),
    AlterConfigs(Vec<ConfigResourceResult>),
    IncrementalAlterConfigs(Vec<ConfigResourceResult>),
    AutoCreateTopics(Vec<CreatableTopicResult>),
    AllocateProducerIds(Result<ProducerIdBlock, ApiError>),
}

impl ControlResponse {
    /// Marks every item failed: the request as a whole could not be committed.
    fn fail_all(&mut self, error: &ApiError) {
        match self {
            ControlResponse::CreateTopics(items) | ControlResponse::AutoCreateTopics(items) => {
                for item in items {
                    *item = CreatableTopicResult::failed(&item.name, error.clone());
                }
            }
            ControlResponse::DeleteTopics(items) => items.iter_mut().for_each(|i| i.error = error.clone()),
            ControlResponse::CreatePartitions(items) => {
                items.iter_mut().for_each(|i| i.error = error.clone())
            }
            ControlResponse::AlterConfigs(items) | ControlResponse::IncrementalAlterConfigs(items) => {
                items.iter_mut().for_each(|i| i.error = error.clone())
            }
            ControlResponse::AllocateProducerIds(result) => *result = Err(error.clone()),
        }
    }
}

/// A response with the metadata offset it committed at: the requester's own image must have
/// applied records up to `committed_offset` before it answers its client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ControlReply {
    pub committed_offset: u64,
    pub response: ControlResponse,
}

impl CreatableTopicResult {
    fn failed(name: &str, error: ApiError) -> CreatableTopicResult {
        CreatableTopicResult {
            name: name.to_string(),
            topic_id: [0; 16],
            error,
            num_partitions: -1,
            replication_factor: -1,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The controller
// ---------------------------------------------------------------------------------------------

/// The records a request commits and the response to send once they are committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub records: Vec<MetadataRecord>,
    pub response: ControlResponse,
}

/// What [`Controller::handle`] did: the reply, and the records it committed (empty if none) for
/// the control plane to broadcast to every shard.
#[derive(Debug)]
pub struct Handled {
    pub reply: ControlReply,
    pub committed: Vec<MetadataRecord>,
}

/// Owns the metadata log and the controller's image. Lives on shard 0.
pub struct Controller {
    config: ControllerConfig,
    log: MetadataLog,
    image: MetadataImage,
}

impl Controller {
    /// Opens (and recovers) the metadata log under `log_dir`. The replayed batches are returned
    /// for the control plane to send to every shard before anything else.
    pub async fn open(
        config: ControllerConfig,
        log_dir: &Path,
    ) -> Result<(Controller, Vec<Vec<MetadataRecord>>), LogError> {
        let (log, Replayed { image, batches, .. }) = MetadataLog::open(log_dir).await?;
        tracing::info!(
            path = %log.path().display(),
            offset = log.end_offset(),
            topics = image.topic_count(),
            "metadata log replayed"
        );
        Ok((Controller { config, log, image }, batches))
    }

    pub fn image(&self) -> &MetadataImage {
        &self.image
    }

    pub fn config(&self) -> &ControllerConfig {
        &self.config
    }

    /// Decides, commits (one frame, one fdatasync) and applies one request.
    pub async fn handle(&mut self, request: &ControlRequest) -> Handled {
        let Decision { records, mut response } = decide(&self.config, &self.image, request);
        if records.is_empty() {
            let reply = ControlReply { committed_offset: self.image.applied_offset(), response };
            return Handled { reply, committed: records };
        }
        match self.log.append(&records).await {
            Ok(end_offset) => {
                self.image.apply_all(&records);
                debug_assert_eq!(end_offset, self.image.applied_offset());
                let reply = ControlReply { committed_offset: self.image.applied_offset(), response };
                Handled { reply, committed: records }
            }
            Err(e) => {
                let error = match e {
                    LogError::FrameTooLarge { .. } => ApiError::new(code::POLICY_VIOLATION, EXCESSIVE_BATCH),
                    e => {
                        tracing::error!(error = %e, "metadata commit failed");
                        ApiError::new(code::UNKNOWN_SERVER_ERROR, format!("metadata commit failed: {e}"))
                    }
                };
                response.fail_all(&error);
                let reply = ControlReply { committed_offset: self.image.applied_offset(), response };
                Handled { reply, committed: Vec::new() }
            }
        }
    }

    pub async fn close(self) -> Result<(), LogError> {
        self.log.close().await
    }
}

/// Validates `request` against `image` and returns the records to commit with the response.
/// Pure: the same inputs give the same records, except for the random topic ids.
pub fn decide(config: &ControllerConfig, image: &MetadataImage, request: &ControlRequest) -> Decision {
    let mut p = Planner::new(config, image);
    let (mut response, validate_only) = match request {
        ControlRequest::CreateTopics(r) => {
            (ControlResponse::CreateTopics(p.create_topics(r)), r.validate_only)
        }
        ControlRequest::AutoCreateTopics { names } => {
            (ControlResponse::AutoCreateTopics(p.auto_create(names)), false)
        }
        ControlRequest::DeleteTopics(r) => (ControlResponse::DeleteTopics(p.delete_topics(r)), false),
        ControlRequest::CreatePartitions(r) => {
            (ControlResponse::CreatePartitions(p.create_partitions(r)), r.validate_only)
        }
        ControlRequest::AlterConfigs(r) => {
            (ControlResponse::AlterConfigs(p.alter_configs(r)), r.validate_only)
        }
        ControlRequest::IncrementalAlterConfigs(r) => {
            (ControlResponse::IncrementalAlterConfigs(p.incremental_alter_configs(r)), r.validate_only)
        }
        ControlRequest::AllocateProducerIds { broker_id } => {
            (ControlResponse::AllocateProducerIds(p.allocate_producer_ids(*broker_id)), false)
        }
    };
    if p.too_large {
        // Kafka fails the whole operation when its record list would pass the limit, even for
        // validate_only (the list is built either way).
        response.fail_all(&ApiError::new(code::POLICY_VIOLATION, EXCESSIVE_BATCH));
        return Decision { records: Vec::new(), response };
    }
    let records = if validate_only { Vec::new() } else { p.records };
    Decision { records, response }
}

/// Builds one request's batch. Later items of a request see the topics earlier items create.
struct Planner<'a> {
    config: &'a ControllerConfig,
    image: &'a MetadataImage,
    records: Vec<MetadataRecord>,
    /// The batch would pass [`MAX_RECORDS_PER_OP`]: the whole request fails.
    too_large: bool,
    /// Leader of the last partition placed (image first, then this batch).
    last_leader: Option<i32>,
    new_topics: BTreeMap<String, TopicId>,
}

impl<'a> Planner<'a> {
    fn new(config: &'a ControllerConfig, image: &'a MetadataImage) -> Planner<'a> {
        Planner {
            config,
            image,
            records: Vec::new(),
            too_large: false,
            last_leader: image.last_placed_leader(),
            new_topics: BTreeMap::new(),
        }
    }

    /// Whether `n` more records fit in the batch; marks the request too large if not.
    fn reserve(&mut self, n: usize) -> bool {
        if self.too_large || self.records.len().saturating_add(n) > MAX_RECORDS_PER_OP {
            self.too_large = true;
            return false;
        }
        self.records.reserve(n);
        true
    }

    /// The next leader in the rotation over the shards' node ids.
    fn place(&mut self) -> i32 {
        let nodes = &self.config.node_ids;
        let next = self
            .last_leader
            .and_then(|l| nodes.iter().position(|n| *n == l))
            .map_or(0, |i| (i + 1) % nodes.len().max(1));
        let leader = nodes.get(next).copied().unwrap_or(-1);
        self.last_leader = Some(leader);
        leader
    }

    // --- CreateTopics / auto-creation ---------------------------------------------------------

    fn create_topics(&mut self, request: &CreateTopicsRequest) -> Vec<CreatableTopicResult> {
        let counts = count(request.topics.iter().map(|t| t.name.as_str()));
        let mut reported = BTreeSet::new();
        let mut results = Vec::with_capacity(request.topics.len());
        for topic in &request.topics {
            if counts[topic.name.as_str()] > 1 {
                if reported.insert(topic.name.as_str()) {
                    let error = ApiError::new(code::INVALID_REQUEST, "Duplicate topic name.");
                    results.push(CreatableTopicResult::failed(&topic.name, error));
                }
                continue;
            }
            let result = self.create_topic(topic, false);
            results.push(result.unwrap_or_else(|error| CreatableTopicResult::failed(&topic.name, error)));
        }
        results
    }

    fn auto_create(&mut self, names: &[String]) -> Vec<CreatableTopicResult> {
        let mut seen = BTreeSet::new();
        let mut results = Vec::with_capacity(names.len());
        for name in names {
            if !seen.insert(name.as_str()) {
                continue;
            }
            let topic = NewTopic {
                name: name.clone(),
                num_partitions: -1,
                replication_factor: -1,
                assignments: Vec::new(),
                configs: Vec::new(),
            };
            let result = self.create_topic(&topic, true);
            results.push(result.unwrap_or_else(|error| CreatableTopicResult::failed(name, error)));
        }
        results
    }

    /// Validates one new topic and, if it is fine, adds its records to the batch.
    fn create_topic(
        &mut self,
        topic: &NewTopic,
        existing_is_ok: bool,
    ) -> Result<CreatableTopicResult, ApiError> {
        let name = topic.name.as_str();
        if name == CLUSTER_METADATA_TOPIC {
            return Err(ApiError::new(code::TOPIC_AUTHORIZATION_FAILED, "Authorization failed."));
        }
        validate_topic_name(name)?;
        if let Some(existing) = self.image.topic(name) {
            if existing_is_ok {
                return Ok(CreatableTopicResult {
                    name: name.to_string(),
                    topic_id: existing.topic_id,
                    error: ApiError::NONE,
                    num_partitions: existing.partitions.len() as i32,
                    replication_factor: existing.partitions.first().map_or(0, |p| p.replicas.len() as i16),
                });
            }
            return Err(ApiError::new(code::TOPIC_ALREADY_EXISTS, format!("Topic '{name}' already exists.")));
        }
        if let Some(id) = self.new_topics.get(name) {
            // Only auto-creation can get here (CreateTopics refuses duplicate names).
            let id = *id;
            return Ok(CreatableTopicResult {
                name: name.to_string(),
                topic_id: id,
                error: ApiError::NONE,
                num_partitions: self.partition_records_of(&id) as i32,
                replication_factor: 1,
            });
        }
        if let Some(other) = self.collision(name) {
            return Err(ApiError::new(
                code::INVALID_TOPIC_EXCEPTION,
                format!("Topic '{name}' collides with existing topic: {other}"),
            ));
        }
        let configs = validate_new_topic_configs(&topic.configs)?;
        let replicas = self.new_topic_replicas(topic)?;
        let rf = replicas.first().map_or(0, |r| r.len() as i16);
        let num_partitions = replicas.len() as i32;

        if !self.reserve(1 + configs.len() + replicas.len()) {
            return Err(ApiError::new(code::POLICY_VIOLATION, EXCESSIVE_BATCH));
        }
        let topic_id = self.new_topic_id();
        self.new_topics.insert(name.to_string(), topic_id);
        self.records.push(MetadataRecord::Topic(TopicRecord { name: name.to_string(), topic_id }));
        // Configs go after the topic and before its partitions, as in Kafka's batches.
        for (key, value) in configs {
            self.records.push(MetadataRecord::Config(ConfigRecord {
                resource_type: RESOURCE_TOPIC,
                resource_name: name.to_string(),
                name: key,
                value: Some(value),
            }));
        }
        for (partition, replicas) in replicas.into_iter().enumerate() {
            self.push_partition(topic_id, partition as i32, replicas);
        }
        Ok(CreatableTopicResult {
            name: name.to_string(),
            topic_id,
            error: ApiError::NONE,
            num_partitions,
            replication_factor: rf,
        })
    }

    /// The replica list of every partition of a new topic (manual or placed), validated.
    fn new_topic_replicas(&mut self, topic: &NewTopic) -> Result<Vec<Vec<i32>>, ApiError> {
        if !topic.assignments.is_empty() {
            if topic.replication_factor != -1 {
                return Err(ApiError::new(
                    code::INVALID_REQUEST,
                    "A manual partition assignment was specified, but replication factor was not set to -1.",
                ));
            }
            if topic.num_partitions != -1 {
                return Err(ApiError::new(
                    code::INVALID_REQUEST,
                    "A manual partition assignment was specified, but numPartitions was not set to -1.",
                ));
            }
            let mut by_partition: BTreeMap<i32, &Vec<i32>> = BTreeMap::new();
            let mut rf = None;
            for a in &topic.assignments {
                if by_partition.insert(a.partition, &a.replicas).is_some() {
                    return Err(ApiError::new(
                        code::INVALID_REPLICA_ASSIGNMENT,
                        format!("Found multiple manual partition assignments for partition {}", a.partition),
                    ));
                }
                self.validate_manual_assignment(&a.replicas, rf)?;
                rf = Some(a.replicas.len());
            }
            if by_partition.keys().enumerate().any(|(i, p)| *p != i as i32) {
                return Err(ApiError::new(
                    code::INVALID_REPLICA_ASSIGNMENT,
                    "partitions should be a consecutive 0-based integer sequence",
                ));
            }
            return Ok(by_partition.into_values().cloned().collect());
        }
        if topic.replication_factor < -1 || topic.replication_factor == 0 {
            return Err(ApiError::new(
                code::INVALID_REPLICATION_FACTOR,
                "Replication factor must be larger than 0, or -1 to use the default value.",
            ));
        }
        if topic.num_partitions < -1 || topic.num_partitions == 0 {
            return Err(ApiError::new(
                code::INVALID_PARTITIONS,
                "Number of partitions was set to an invalid non-positive value.",
            ));
        }
        let num_partitions = if topic.num_partitions == -1 {
            self.config.default_num_partitions
        } else {
            topic.num_partitions
        };
        let rf = if topic.replication_factor == -1 {
            self.config.default_replication_factor
        } else {
            topic.replication_factor
        };
        self.check_replication_factor(rf as usize)?;
        if num_partitions <= 0 {
            // Only a bad `num.partitions` default can get here; the config loader refuses it.
            return Err(ApiError::new(
                code::INVALID_PARTITIONS,
                "Number of partitions was set to an invalid non-positive value.",
            ));
        }
        // Refuse before placing (and allocating) anything for an absurd count.
        if (num_partitions as usize) > MAX_RECORDS_PER_OP {
            self.too_large = true;
            return Err(ApiError::new(code::POLICY_VIOLATION, EXCESSIVE_BATCH));
        }
        Ok((0..num_partitions).map(|_| vec![self.place()]).collect())
    }

    fn check_replication_factor(&self, rf: usize) -> Result<(), ApiError> {
        if rf > self.config.broker_count {
            return Err(ApiError::new(
                code::INVALID_REPLICATION_FACTOR,
                format!(
                    "Unable to replicate the partition {rf} time(s): The target replication factor of {rf} cannot be \
                     reached because only {} broker(s) are registered.",
                    self.config.broker_count
                ),
            ));
        }
        Ok(())
    }

    fn validate_manual_assignment(&self, replicas: &[i32], rf: Option<usize>) -> Result<(), ApiError> {
        let invalid = |m: String| Err(ApiError::new(code::INVALID_REPLICA_ASSIGNMENT, m));
        if replicas.is_empty() {
            return invalid("The manual partition assignment includes an empty replica list.".into());
        }
        let mut sorted = replicas.to_vec();
        sorted.sort_unstable();
        for (i, node) in sorted.iter().enumerate() {
            if !self.config.node_ids.contains(node) {
                return invalid(format!(
                    "The manual partition assignment includes broker {node}, but no such broker is registered."
                ));
            }
            if i > 0 && sorted[i - 1] == *node {
                return invalid(format!(
                    "The manual partition assignment includes the broker {node} more than once."
                ));
            }
        }
        if let Some(rf) = rf.filter(|rf| *rf != replicas.len()) {
            return invalid(format!(
                "The manual partition assignment includes a partition with {} replica(s), but this is not consistent \
                 with previous partitions, which have {rf} replica(s).",
                replicas.len()
            ));
        }
        // Every node id is a shard of this one broker: replicas on two shards would be copies
        // nobody replicates.
        self.check_replication_factor(replicas.len())
    }

    fn push_partition(&mut self, topic_id: TopicId, partition: i32, replicas: Vec<i32>) {
        let leader = replicas.first().copied().unwrap_or(-1);
        self.last_leader = Some(leader);
        self.records.push(MetadataRecord::Partition(PartitionRecord {
            topic_id,
            partition,
            isr: replicas.clone(),
            replicas,
            leader,
            leader_epoch: 0,
        }));
    }

    fn partition_records_of(&self, topic_id: &TopicId) -> usize {
        self.records
            .iter()
            .filter(|r| matches!(r, MetadataRecord::Partition(p) if p.topic_id == *topic_id))
            .count()
    }

    /// An existing or new topic whose name differs from `name` only by '.' versus '_' (the two
    /// collide in Kafka's metric names).
    fn collision(&self, name: &str) -> Option<String> {
        if !name.contains(['.', '_']) {
            return None;
        }
        let unified = name.replace('.', "_");
        self.image
            .topics()
            .map(|t| t.name.as_str())
            .chain(self.new_topics.keys().map(String::as_str))
            .find(|other| *other != name && other.replace('.', "_") == unified)
            .map(str::to_string)
    }

    fn new_topic_id(&self) -> TopicId {
        loop {
            let id = *uuid::Uuid::new_v4().as_bytes();
            let dash_first = id[0] >> 2 == 62; // base64url index 62 is '-'
            let taken = self.image.topic_by_id(&id).is_some() || self.new_topics.values().any(|t| *t == id);
            if id != [0; 16] && !dash_first && !taken {
                return id;
            }
        }
    }

    // --- DeleteTopics -------------------------------------------------------------------------

    fn delete_topics(&mut self, request: &DeleteTopicsRequest) -> Vec<DeletableTopicResult> {
        let result = |name: Option<&str>, topic_id: TopicId, error: ApiError| DeletableTopicResult {
            name: name.map(str::to_string),
            topic_id,
            error,
        };
        if !self.config.delete_topic_enable {
            // DeleteTopics v0–v2 expect INVALID_REQUEST here; the handler maps it by version.
            let error = ApiError::new(code::TOPIC_DELETION_DISABLED, "Topic deletion is disabled.");
            return request
                .topics
                .iter()
                .map(|t| result(t.name.as_deref(), t.topic_id, error.clone()))
                .collect();
        }
        let names =
            count(request.topics.iter().filter(|t| t.topic_id == [0; 16]).filter_map(|t| t.name.as_deref()));
        let ids = count(
            request.topics.iter().filter(|t| t.name.is_none() && t.topic_id != [0; 16]).map(|t| t.topic_id),
        );
        // Topic ids already claimed by an earlier item, so a name and an id for the same topic
        // do not delete it twice.
        let image = self.image;
        let mut claimed: BTreeSet<TopicId> = BTreeSet::new();
        let mut reported_names = BTreeSet::new();
        let mut reported_ids = BTreeSet::new();
        let mut results = Vec::with_capacity(request.topics.len());
        for t in &request.topics {
            let by_id = t.topic_id != [0; 16];
            match (t.name.as_deref(), by_id) {
                (None, false) => results.push(result(
                    None,
                    t.topic_id,
                    ApiError::new(code::INVALID_REQUEST, "Neither topic name nor id were specified."),
                )),
                (Some(name), true) => results.push(result(
                    Some(name),
                    t.topic_id,
                    ApiError::new(code::INVALID_REQUEST, "You may not specify both topic name and topic id."),
                )),
                (Some(name), false) if names[name] > 1 => {
                    if reported_names.insert(name) {
                        let error = ApiError::new(code::INVALID_REQUEST, "Duplicate topic name.");
                        results.push(result(Some(name), [0; 16], error));
                    }
                }
                (None, true) if ids[&t.topic_id] > 1 => {
                    if reported_ids.insert(t.topic_id) {
                        let error = ApiError::new(code::INVALID_REQUEST, "Duplicate topic id.");
                        results.push(result(None, t.topic_id, error));
                    }
                }
                (Some(name), false) => match image.topic(name) {
                    None => results.push(result(
                        Some(name),
                        [0; 16],
                        ApiError::bare(code::UNKNOWN_TOPIC_OR_PARTITION),
                    )),
                    Some(topic) => {
                        let error = if claimed.insert(topic.topic_id) {
                            self.remove_topic(topic.topic_id)
                        } else {
                            ApiError::new(
                                code::INVALID_REQUEST,
                                "The provided topic name maps to an ID that was already supplied.",
                            )
                        };
                        results.push(result(Some(name), topic.topic_id, error));
                    }
                },
                (None, true) => match image.topic_by_id(&t.topic_id) {
                    None => results.push(result(
                        None,
                        t.topic_id,
                        ApiError::new(code::UNKNOWN_TOPIC_ID, "This server does not host this topic ID."),
                    )),
                    Some(topic) => {
                        let error = if claimed.insert(topic.topic_id) {
                            self.remove_topic(topic.topic_id)
                        } else {
                            ApiError::new(
                                code::INVALID_REQUEST,
                                "The provided topic name maps to an ID that was already supplied.",
                            )
                        };
                        results.push(result(Some(&topic.name), t.topic_id, error));
                    }
                },
            }
        }
        results
    }

    fn remove_topic(&mut self, topic_id: TopicId) -> ApiError {
        if !self.reserve(1) {
            return ApiError::new(code::POLICY_VIOLATION, EXCESSIVE_BATCH);
        }
        self.records.push(MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id }));
        ApiError::NONE
    }

    // --- CreatePartitions ---------------------------------------------------------------------

    fn create_partitions(&mut self, request: &CreatePartitionsRequest) -> Vec<TopicResult> {
        let counts = count(request.topics.iter().map(|t| t.name.as_str()));
        let mut reported = BTreeSet::new();
        let mut results = Vec::with_capacity(request.topics.len());
        for t in &request.topics {
            if counts[t.name.as_str()] > 1 {
                if reported.insert(t.name.as_str()) {
                    let error = ApiError::new(code::INVALID_REQUEST, "Duplicate topic name.");
                    results.push(TopicResult { name: t.name.clone(), error });
                }
                continue;
            }
            let error = self.grow_topic(t).err().unwrap_or(ApiError::NONE);
            results.push(TopicResult { name: t.name.clone(), error });
        }
        results
    }

    fn grow_topic(&mut self, t: &PartitionsIncrease) -> Result<(), ApiError> {
        let image = self.image;
        let Some(topic) = image.topic(&t.name) else {
            return Err(ApiError::bare(code::UNKNOWN_TOPIC_OR_PARTITION));
        };
        let current = topic.partitions.len() as i64;
        let count = t.count as i64;
        if count == current {
            return Err(ApiError::new(
                code::INVALID_PARTITIONS,
                format!("Topic already has {current} partition(s)."),
            ));
        }
        if count < current {
            // Kafka 3.7's KRaft wording (ReplicationControlManager.createPartitions).
            return Err(ApiError::new(
                code::INVALID_PARTITIONS,
                format!(
                    "The topic {} currently has {current} partition(s); {count} would not be an increase.",
                    t.name
                ),
            ));
        }
        let additional = (count - current) as usize;
        if let Some(assignments) = &t.assignments {
            if assignments.len() != additional {
                return Err(ApiError::new(
                    code::INVALID_REPLICA_ASSIGNMENT,
                    format!(
                        "Attempted to add {additional} additional partition(s), but only {} assignment(s) were specified.",
                        assignments.len()
                    ),
                ));
            }
        }
        let Some(first) = topic.partitions.first() else {
            return Err(ApiError::new(
                code::UNKNOWN_SERVER_ERROR,
                format!("Invalid state: topic {} appears to have no partitions.", t.name),
            ));
        };
        let rf = first.replicas.len();
        let topic_id = topic.topic_id;
        if !self.reserve(additional) {
            return Err(ApiError::new(code::POLICY_VIOLATION, EXCESSIVE_BATCH));
        }
        let placements: Vec<Vec<i32>> = match &t.assignments {
            Some(assignments) => {
                for replicas in assignments {
                    self.validate_manual_assignment(replicas, Some(rf))?;
                }
                assignments.clone()
            }
            None => {
                self.check_replication_factor(rf)?;
                (0..additional).map(|_| vec![self.place()]).collect()
            }
        };
        for (i, replicas) in placements.into_iter().enumerate() {
            self.push_partition(topic_id, (current as usize + i) as i32, replicas);
        }
        Ok(())
    }

    // --- AlterConfigs / IncrementalAlterConfigs -----------------------------------------------

    fn alter_configs(&mut self, request: &AlterConfigsRequest) -> Vec<ConfigResourceResult> {
        let counts = count(request.resources.iter().map(|r| (r.resource_type, r.resource_name.as_str())));
        let mut results = Vec::with_capacity(request.resources.len());
        for r in &request.resources {
            let error = if counts[&(r.resource_type, r.resource_name.as_str())] > 1 {
                ApiError::new(code::INVALID_REQUEST, "Each resource must appear at most once.")
            } else {
                self.replace_resource_configs(r).err().unwrap_or(ApiError::NONE)
            };
            results.push(ConfigResourceResult {
                resource_type: r.resource_type,
                resource_name: r.resource_name.clone(),
                error,
            });
        }
        results
    }

    fn replace_resource_configs(&mut self, r: &AlterConfigsResource) -> Result<(), ApiError> {
        check_config_keys_unique(r.configs.iter().map(|(k, _)| k.as_str()))?;
        check_no_null_values(r.configs.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| k.as_str()))?;
        self.check_config_resource(r.resource_type, &r.resource_name)?;
        let mut wanted = BTreeMap::new();
        for (key, value) in &r.configs {
            let value = value.as_deref().unwrap_or_default();
            wanted.insert(key.clone(), validate_topic_config(key, value)?);
        }
        let current = self.existing_topic_configs(&r.resource_name)?;
        let mut changes: Vec<(String, Option<String>)> = wanted
            .iter()
            .filter(|(k, v)| current.get(*k) != Some(*v))
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        changes.extend(current.keys().filter(|k| !wanted.contains_key(*k)).map(|k| (k.clone(), None)));
        self.push_config_changes(&r.resource_name, changes)
    }

    fn incremental_alter_configs(
        &mut self,
        request: &IncrementalAlterConfigsRequest,
    ) -> Vec<ConfigResourceResult> {
        let counts = count(request.resources.iter().map(|r| (r.resource_type, r.resource_name.as_str())));
        let mut results = Vec::with_capacity(request.resources.len());
        for r in &request.resources {
            let error = if counts[&(r.resource_type, r.resource_name.as_str())] > 1 {
                ApiError::new(code::INVALID_REQUEST, "Each resource must appear at most once.")
            } else {
                self.alter_resource_configs(r).err().unwrap_or(ApiError::NONE)
            };
            results.push(ConfigResourceResult {
                resource_type: r.resource_type,
                resource_name: r.resource_name.clone(),
                error,
            });
        }
        results
    }

    fn alter_resource_configs(&mut self, r: &IncrementalAlterConfigsResource) -> Result<(), ApiError> {
        check_config_keys_unique(r.configs.iter().map(|c| c.name.as_str()))?;
        check_no_null_values(
            r.configs.iter().filter(|c| c.op != OP_DELETE && c.value.is_none()).map(|c| c.name.as_str()),
        )?;
        self.check_config_resource(r.resource_type, &r.resource_name)?;
        let image = self.image;
        let no_configs = BTreeMap::new();
        let current = image.topic(&r.resource_name).map_or(&no_configs, |t| &t.configs);
        let mut changes = Vec::new();
        for c in &r.configs {
            let old = current.get(&c.name);
            let value = c.value.as_deref().unwrap_or_default();
            let new = match c.op {
                OP_SET => Some(validate_topic_config(&c.name, value)?),
                OP_DELETE => None,
                OP_APPEND | OP_SUBTRACT => {
                    let verb = if c.op == OP_APPEND { "APPEND" } else { "SUBTRACT" };
                    let Some(default) =
                        TOPIC_LIST_DEFAULTS.iter().find(|(k, _)| *k == c.name).map(|(_, d)| *d)
                    else {
                        return Err(ApiError::new(
                            code::INVALID_CONFIG,
                            format!("Can't {verb} to key {} because its type is not LIST.", c.name),
                        ));
                    };
                    let mut parts: Vec<&str> =
                        old.map_or(default, String::as_str).split(',').filter(|p| !p.is_empty()).collect();
                    for item in value.split(',').filter(|p| !p.is_empty()) {
                        if c.op == OP_APPEND && !parts.contains(&item) {
                            parts.push(item);
                        } else if c.op == OP_SUBTRACT {
                            parts.retain(|p| *p != item);
                        }
                    }
                    Some(validate_topic_config(&c.name, &parts.join(","))?)
                }
                other => {
                    return Err(ApiError::new(
                        code::INVALID_REQUEST,
                        format!("Unknown operations type {other}"),
                    ));
                }
            };
            if new.as_ref() != old {
                changes.push((c.name.clone(), new));
            }
        }
        self.existing_topic_configs(&r.resource_name)?;
        self.push_config_changes(&r.resource_name, changes)
    }

    /// Only topic configs are dynamic here; the checks Kafka makes on the resource itself.
    fn check_config_resource(&self, resource_type: i8, name: &str) -> Result<(), ApiError> {
        match resource_type {
            RESOURCE_TOPIC => {}
            RESOURCE_BROKER | RESOURCE_BROKER_LOGGER => {
                return Err(ApiError::new(
                    code::INVALID_REQUEST,
                    "Changing broker configs at runtime is not supported by this broker; set them in \
                     server.properties and restart.",
                ));
            }
            other => {
                return Err(ApiError::new(code::INVALID_REQUEST, format!("Unknown resource type {other}")))
            }
        }
        if name.is_empty() {
            return Err(ApiError::new(code::INVALID_REQUEST, "Default topic resources are not allowed."));
        }
        validate_topic_name(name)
    }

    /// The current dynamic configs of an existing topic (checked after the values, as Kafka
    /// does, so a bad value on a missing topic reports the value).
    fn existing_topic_configs(&self, name: &str) -> Result<&'a BTreeMap<String, String>, ApiError> {
        match self.image.topic(name) {
            Some(topic) => Ok(&topic.configs),
            None => Err(ApiError::new(
                code::UNKNOWN_TOPIC_OR_PARTITION,
                format!("The topic '{name}' does not exist."),
            )),
        }
    }

    fn push_config_changes(
        &mut self,
        topic: &str,
        changes: Vec<(String, Option<String>)>,
    ) -> Result<(), ApiError> {
        if !self.reserve(changes.len()) {
            return Err(ApiError::new(code::POLICY_VIOLATION, EXCESSIVE_BATCH));
        }
        for (name, value) in changes {
            self.records.push(MetadataRecord::Config(ConfigRecord {
                resource_type: RESOURCE_TOPIC,
                resource_name: topic.to_string(),
                name,
                value,
            }));
        }
        Ok(())
    }

    // --- Producer ids -------------------------------------------------------------------------

    fn allocate_producer_ids(&mut self, broker_id: i32) -> Result<ProducerIdBlock, ApiError> {
        let first = self.image.next_producer_id();
        if first > i64::MAX - PRODUCER_ID_BLOCK_SIZE as i64 {
            return Err(ApiError::new(
                code::UNKNOWN_SERVER_ERROR,
                "Exhausted all producerIds as the next block's end producerId has exceeded the int64 type limit",
            ));
        }
        if !self.reserve(1) {
            return Err(ApiError::new(code::POLICY_VIOLATION, EXCESSIVE_BATCH));
        }
        let next_producer_id = first + PRODUCER_ID_BLOCK_SIZE as i64;
        self.records.push(MetadataRecord::ProducerIds(ProducerIdsRecord { broker_id, next_producer_id }));
        Ok(ProducerIdBlock { broker_id, first_producer_id: first, size: PRODUCER_ID_BLOCK_SIZE })
    }
}

fn count<K: Ord>(keys: impl Iterator<Item = K>) -> BTreeMap<K, usize> {
    let mut counts = BTreeMap::new();
    for k in keys {
        *counts.entry(k).or_insert(0) += 1;
    }
    counts
}

fn check_config_keys_unique<'k>(keys: impl Iterator<Item = &'k str>) -> Result<(), ApiError> {
    let mut seen = BTreeSet::new();
    for k in keys {
        if !seen.insert(k) {
            return Err(ApiError::new(code::INVALID_REQUEST, "Error due to duplicate config keys"));
        }
    }
    Ok(())
}

fn check_no_null_values<'k>(keys: impl Iterator<Item = &'k str>) -> Result<(), ApiError> {
    let nulls: Vec<&str> = keys.collect();
    if nulls.is_empty() {
        return Ok(());
    }
    Err(ApiError::new(code::INVALID_REQUEST, format!("Null value not supported for : {}", nulls.join(", "))))
}

/// Kafka's `Topic.validate`, with its messages.
pub fn validate_topic_name(name: &str) -> Result<(), ApiError> {
    let reason = if name.is_empty() {
        "the empty string is not allowed".to_string()
    } else if name == "." {
        "'.' is not allowed".to_string()
    } else if name == ".." {
        "'..' is not allowed".to_string()
    } else if name.encode_utf16().count() > MAX_TOPIC_NAME_LEN {
        format!("the length of '{name}' is longer than the max allowed length {MAX_TOPIC_NAME_LEN}")
    } else if !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) {
        format!("'{name}' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'")
    } else {
        return Ok(());
    };
    Err(ApiError::new(code::INVALID_TOPIC_EXCEPTION, format!("Topic name is invalid: {reason}")))
}

/// CreateTopics configs: no nulls, every key known and every value valid; the last of
/// duplicate keys wins (Kafka builds a map).
fn validate_new_topic_configs(
    configs: &[(String, Option<String>)],
) -> Result<BTreeMap<String, String>, ApiError> {
    let nulls: Vec<&str> = configs.iter().filter(|(_, v)| v.is_none()).map(|(k, _)| k.as_str()).collect();
    if !nulls.is_empty() {
        return Err(ApiError::new(
            code::INVALID_CONFIG,
            format!("Null value not supported for topic configs: {}", nulls.join(",")),
        ));
    }
    let mut out = BTreeMap::new();
    for (key, value) in configs {
        let value = value.as_deref().unwrap_or_default();
        out.insert(key.clone(), validate_topic_config(key, value)?);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Topic configs
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy)]
enum ConfigKind {
    Int { min: Option<i64> },
    Long { min: Option<i64> },
    Double { min: f64, max: f64 },
    Bool,
    OneOf(&'static [&'static str]),
    ListOf(&'static [&'static str]),
}

/// The topic configs this broker accepts (the keys of `topic_config::TOPIC_CONFIG_KEYS`), with
/// the types and validators of Kafka 3.7's `LogConfig`. Kafka's cross-key check
/// (`min.compaction.lag.ms` ≤ `max.compaction.lag.ms`) is left to the log cleaner's issue.
const TOPIC_CONFIGS: &[(&str, ConfigKind)] = &[
    ("cleanup.policy", ConfigKind::ListOf(&["compact", "delete"])),
    ("compression.type", ConfigKind::OneOf(&["uncompressed", "zstd", "lz4", "snappy", "gzip", "producer"])),
    ("delete.retention.ms", ConfigKind::Long { min: Some(0) }),
    ("file.delete.delay.ms", ConfigKind::Long { min: Some(0) }),
    ("flush.messages", ConfigKind::Long { min: Some(1) }),
    ("flush.ms", ConfigKind::Long { min: Some(0) }),
    ("index.interval.bytes", ConfigKind::Int { min: Some(0) }),
    ("max.compaction.lag.ms", ConfigKind::Long { min: Some(1) }),
    ("max.message.bytes", ConfigKind::Int { min: Some(0) }),
    ("message.timestamp.type", ConfigKind::OneOf(&["CreateTime", "LogAppendTime"])),
    ("min.cleanable.dirty.ratio", ConfigKind::Double { min: 0.0, max: 1.0 }),
    ("min.compaction.lag.ms", ConfigKind::Long { min: Some(0) }),
    ("min.insync.replicas", ConfigKind::Int { min: Some(1) }),
    ("retention.bytes", ConfigKind::Long { min: None }),
    ("retention.ms", ConfigKind::Long { min: Some(-1) }),
    ("segment.bytes", ConfigKind::Int { min: Some(14) }),
    ("segment.index.bytes", ConfigKind::Int { min: Some(4) }),
    ("segment.ms", ConfigKind::Long { min: Some(1) }),
    ("unclean.leader.election.enable", ConfigKind::Bool),
];

/// List-typed topic configs and the default APPEND/SUBTRACT start from when the topic has no
/// value (Kafka uses the topic config definition's default here, not the broker's).
const TOPIC_LIST_DEFAULTS: &[(&str, &str)] = &[("cleanup.policy", "delete")];

/// Names of the topic configs this broker accepts (for DescribeConfigs).
pub fn topic_config_names() -> impl Iterator<Item = &'static str> {
    TOPIC_CONFIGS.iter().map(|(name, _)| *name)
}

/// Checks one topic config as Kafka's `LogConfig` does and returns the value to store
/// (trimmed; lists re-joined with ","). Errors are `INVALID_CONFIG` with Kafka's messages.
pub fn validate_topic_config(name: &str, value: &str) -> Result<String, ApiError> {
    let Some((_, kind)) = TOPIC_CONFIGS.iter().find(|(n, _)| *n == name) else {
        return Err(ApiError::new(code::INVALID_CONFIG, format!("Unknown topic config name: {name}")));
    };
    let invalid = |shown: &str, reason: String| {
        Err(ApiError::new(
            code::INVALID_CONFIG,
            format!("Invalid value {shown} for configuration {name}: {reason}"),
        ))
    };
    let trimmed = value.trim();
    match *kind {
        ConfigKind::Int { min } | ConfigKind::Long { min } => {
            let (parsed, type_name) = match kind {
                ConfigKind::Int { .. } => (trimmed.parse::<i32>().map(i64::from), "INT"),
                _ => (trimmed.parse::<i64>(), "LONG"),
            };
            let Ok(n) = parsed else {
                return invalid(value, format!("Not a number of type {type_name}"));
            };
            if let Some(min) = min.filter(|min| n < *min) {
                return invalid(value, format!("Value must be at least {min}"));
            }
            Ok(n.to_string())
        }
        ConfigKind::Double { min, max } => {
            // Unlike Java's parseDouble we refuse NaN and infinities: no log setting means them.
            let Some(x) = trimmed.parse::<f64>().ok().filter(|x| x.is_finite()) else {
                return invalid(value, "Not a number of type DOUBLE".to_string());
            };
            if x < min {
                return invalid(value, format!("Value must be at least {min}"));
            }
            if x > max {
                return invalid(value, format!("Value must be no more than {max}"));
            }
            Ok(trimmed.to_string())
        }
        ConfigKind::Bool => match trimmed.to_ascii_lowercase().as_str() {
            b @ ("true" | "false") => Ok(b.to_string()),
            _ => invalid(value, "Expected value to be either true or false".to_string()),
        },
        ConfigKind::OneOf(allowed) => {
            if !allowed.contains(&trimmed) {
                return invalid(value, format!("String must be one of: {}", allowed.join(", ")));
            }
            Ok(trimmed.to_string())
        }
        ConfigKind::ListOf(allowed) => {
            let items: Vec<&str> =
                if trimmed.is_empty() { Vec::new() } else { trimmed.split(',').map(str::trim).collect() };
            if let Some(bad) = items.iter().find(|i| !allowed.contains(i)) {
                return invalid(bad, format!("String must be one of: {}", allowed.join(", ")));
            }
            Ok(items.join(","))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(shards: usize) -> ControllerConfig {
        ControllerConfig::single_broker(1, shards)
    }

    /// Decides and "commits" (applies) in one go, like the controller minus the disk.
    fn run(image: &mut MetadataImage, config: &ControllerConfig, request: ControlRequest) -> ControlResponse {
        let d = decide(config, image, &request);
        image.apply_all(&d.records);
        d.response
    }

    fn new_topic(name: &str, partitions: i32) -> NewTopic {
        NewTopic {
            name: name.into(),
            num_partitions: partitions,
            replication_factor: -1,
            assignments: vec![],
            configs: vec![],
        }
    }

    fn create(
        image: &mut MetadataImage,
        cfg: &ControllerConfig,
        topics: Vec<NewTopic>,
    ) -> Vec<CreatableTopicResult> {
        let ControlResponse::CreateTopics(r) = run(
            image,
            cfg,
            ControlRequest::CreateTopics(CreateTopicsRequest { topics, validate_only: false }),
        ) else {
            panic!("wrong response variant")
        };
        r
    }

    fn codes(results: &[CreatableTopicResult]) -> Vec<i16> {
        results.iter().map(|r| r.error.code).collect()
    }

    #[test]
    fn create_topics_places_partitions_round_robin_across_creations() {
        let cfg = config(3);
        let mut image = MetadataImage::new();
        let r = create(&mut image, &cfg, vec![new_topic("a", 4), new_topic("b", 2)]);
        assert_eq!(codes(&r), vec![0, 0]);
        assert_eq!(r[0].num_partitions, 4);
        assert_eq!(r[0].replication_factor, 1);
        assert_ne!(r[0].topic_id, [0; 16]);
        let leaders = |image: &MetadataImage, t: &str| {
            image.topic(t).unwrap().partitions.iter().map(|p| p.leader).collect::<Vec<_>>()
        };
        assert_eq!(leaders(&image, "a"), vec![1, 1001, 2001, 1]);
        assert_eq!(leaders(&image, "b"), vec![1001, 2001]);
        // A later request resumes from the image: the rotation survives a restart.
        create(&mut image, &cfg, vec![new_topic("c", 2)]);
        assert_eq!(leaders(&image, "c"), vec![1, 1001]);
        let p = &image.topic("c").unwrap().partitions[1];
        assert_eq!((p.replicas.clone(), p.isr.clone(), p.leader_epoch), (vec![1001], vec![1001], 0));
    }

    #[test]
    fn create_topics_defaults_and_errors() {
        let mut cfg = config(2);
        cfg.default_num_partitions = 3;
        let mut image = MetadataImage::new();
        create(&mut image, &cfg, vec![new_topic("exists", 1), new_topic("a.b", 1)]);
        let mut rf2 = new_topic("rf2", 1);
        rf2.replication_factor = 2;
        let mut rf0 = new_topic("rf0", 1);
        rf0.replication_factor = 0;
        let r = create(
            &mut image,
            &cfg,
            vec![
                new_topic("defaults", -1),
                new_topic("exists", 1),
                new_topic("bad name", 1),
                new_topic("", 1),
                new_topic("..", 1),
                new_topic(&"x".repeat(250), 1),
                new_topic("zero", 0),
                new_topic("minus2", -2),
                rf2,
                rf0,
                new_topic("a_b", 1),
                new_topic("__cluster_metadata", 1),
                new_topic("dup", 1),
                new_topic("dup", 1),
            ],
        );
        assert_eq!(codes(&r), vec![0, 36, 17, 17, 17, 17, 37, 37, 38, 38, 17, 29, 42]);
        assert_eq!(image.topic("defaults").unwrap().partitions.len(), 3);
        assert_eq!(r[1].error.message.as_deref(), Some("Topic 'exists' already exists."));
        assert_eq!(
            r[2].error.message.as_deref(),
            Some("Topic name is invalid: 'bad name' contains one or more characters other than ASCII alphanumerics, '.', '_' and '-'")
        );
        assert_eq!(
            r[8].error.message.as_deref(),
            Some("Unable to replicate the partition 2 time(s): The target replication factor of 2 cannot be reached because only 1 broker(s) are registered.")
        );
        assert_eq!(r[10].error.message.as_deref(), Some("Topic 'a_b' collides with existing topic: a.b"));
        assert_eq!(r[12].error.message.as_deref(), Some("Duplicate topic name."));
        assert!(image.topic("dup").is_none() && image.topic("zero").is_none());
        let ok = create(&mut image, &cfg, vec![new_topic(&"y".repeat(249), 1)]);
        assert_eq!(codes(&ok), vec![0]);
    }

    #[test]
    fn create_topics_with_configs_and_validate_only() {
        let cfg = config(1);
        let mut image = MetadataImage::new();
        let mut good = new_topic("good", 1);
        good.configs = vec![
            ("cleanup.policy".into(), Some(" compact , delete".into())),
            ("retention.ms".into(), Some("-1".into())),
        ];
        let mut unknown = new_topic("unknown", 1);
        unknown.configs = vec![("retention.mss".into(), Some("1".into()))];
        let mut bad = new_topic("bad", 1);
        bad.configs = vec![("segment.bytes".into(), Some("13".into()))];
        let mut null = new_topic("null", 1);
        null.configs = vec![("segment.bytes".into(), None)];
        let r = create(&mut image, &cfg, vec![good, unknown, bad, null]);
        assert_eq!(codes(&r), vec![0, 40, 40, 40]);
        assert_eq!(r[1].error.message.as_deref(), Some("Unknown topic config name: retention.mss"));
        assert_eq!(
            r[2].error.message.as_deref(),
            Some("Invalid value 13 for configuration segment.bytes: Value must be at least 14")
        );
        assert_eq!(
            r[3].error.message.as_deref(),
            Some("Null value not supported for topic configs: segment.bytes")
        );
        let configs = &image.topic("good").unwrap().configs;
        assert_eq!(configs.get("cleanup.policy").map(String::as_str), Some("compact,delete"));
        assert_eq!(configs.get("retention.ms").map(String::as_str), Some("-1"));

        let d = decide(
            &cfg,
            &image,
            &ControlRequest::CreateTopics(CreateTopicsRequest {
                topics: vec![new_topic("v", 2)],
                validate_only: true,
            }),
        );
        assert!(d.records.is_empty());
        let ControlResponse::CreateTopics(r) = d.response else { panic!() };
        assert_eq!((r[0].error.code, r[0].num_partitions), (0, 2));
    }

    #[test]
    fn manual_assignments_are_checked_like_kafka() {
        let cfg = config(2);
        let mut image = MetadataImage::new();
        let manual = |name: &str, a: Vec<(i32, Vec<i32>)>| NewTopic {
            name: name.into(),
            num_partitions: -1,
            replication_factor: -1,
            assignments: a
                .into_iter()
                .map(|(partition, replicas)| ReplicaAssignment { partition, replicas })
                .collect(),
            configs: vec![],
        };
        let mut with_count = manual("with-count", vec![(0, vec![1])]);
        with_count.num_partitions = 1;
        let r = create(
            &mut image,
            &cfg,
            vec![
                manual("ok", vec![(1, vec![1]), (0, vec![1001])]),
                with_count,
                manual("gap", vec![(0, vec![1]), (2, vec![1])]),
                manual("twice", vec![(0, vec![1]), (0, vec![1])]),
                manual("nobody", vec![(0, vec![7])]),
                manual("empty", vec![(0, vec![])]),
                manual("two", vec![(0, vec![1, 1001])]),
                manual("same", vec![(0, vec![1, 1])]),
            ],
        );
        assert_eq!(codes(&r), vec![0, 42, 39, 39, 39, 39, 38, 39]);
        let leaders: Vec<i32> = image.topic("ok").unwrap().partitions.iter().map(|p| p.leader).collect();
        assert_eq!(leaders, vec![1001, 1]);
        assert_eq!(
            r[4].error.message.as_deref(),
            Some("The manual partition assignment includes broker 7, but no such broker is registered.")
        );
    }

    #[test]
    fn an_oversized_operation_fails_whole_without_allocating() {
        let cfg = config(1);
        let mut image = MetadataImage::new();
        let r = create(&mut image, &cfg, vec![new_topic("small", 1), new_topic("huge", i32::MAX)]);
        assert_eq!(codes(&r), vec![44, 44]);
        assert_eq!(r[0].error.message.as_deref(), Some(EXCESSIVE_BATCH));
        assert_eq!(image.topic_count(), 0);
        assert_eq!(image.applied_offset(), 0);
        // Exactly at the limit is fine: 1 topic record + 9999 partitions, and it fits one frame.
        let request = ControlRequest::CreateTopics(CreateTopicsRequest {
            topics: vec![new_topic(&"l".repeat(249), (MAX_RECORDS_PER_OP - 1) as i32)],
            validate_only: false,
        });
        let d = decide(&cfg, &image, &request);
        assert_eq!(d.records.len(), MAX_RECORDS_PER_OP);
        let bytes = crate::metadata::records::encode_batch(&d.records).unwrap();
        assert!(bytes.len() < crate::metadata::log::MAX_FRAME_BYTES / 2, "{} bytes", bytes.len());
    }

    #[test]
    fn handle_commits_durably_and_refuses_a_batch_too_big_for_a_frame() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        glommio::LocalExecutorBuilder::default()
            .spawn(move || async move {
                let (mut controller, replay) = Controller::open(config(2), &path).await.unwrap();
                assert!(replay.is_empty());
                let request = ControlRequest::CreateTopics(CreateTopicsRequest {
                    topics: vec![new_topic("t", 2)],
                    validate_only: false,
                });
                let handled = controller.handle(&request).await;
                assert_eq!(handled.committed.len(), 3);
                assert_eq!(handled.reply.committed_offset, 3);

                // Every element is valid, but the value is far larger than a frame may be.
                let huge = vec!["compact"; crate::metadata::log::MAX_FRAME_BYTES / 7].join(",");
                let request = ControlRequest::IncrementalAlterConfigs(IncrementalAlterConfigsRequest {
                    resources: vec![res("t", vec![("cleanup.policy", OP_SET, Some(huge.as_str()))])],
                    validate_only: false,
                });
                let handled = controller.handle(&request).await;
                assert!(handled.committed.is_empty());
                let ControlResponse::IncrementalAlterConfigs(r) = &handled.reply.response else { panic!() };
                assert_eq!(r[0].error.code, 44);
                assert_eq!(handled.reply.committed_offset, 3);

                // The log is still usable, and a reopen sees exactly what was committed.
                let handled = controller.handle(&ControlRequest::AllocateProducerIds { broker_id: 1 }).await;
                assert_eq!(handled.reply.committed_offset, 4);
                let image = controller.image().clone();
                controller.close().await.unwrap();
                let (reopened, replay) = Controller::open(config(2), &path).await.unwrap();
                assert_eq!(reopened.image(), &image);
                assert_eq!(replay.len(), 2);
            })
            .unwrap()
            .join()
            .unwrap();
    }

    #[test]
    fn auto_create_is_idempotent_and_uses_defaults() {
        let mut cfg = config(2);
        cfg.default_num_partitions = 2;
        let mut image = MetadataImage::new();
        let req = ControlRequest::AutoCreateTopics { names: vec!["t".into(), "t".into(), "bad/name".into()] };
        let ControlResponse::AutoCreateTopics(r) = run(&mut image, &cfg, req.clone()) else { panic!() };
        assert_eq!(codes(&r), vec![0, 17]);
        let id = r[0].topic_id;
        assert_eq!(image.topic("t").unwrap().partitions.len(), 2);
        let ControlResponse::AutoCreateTopics(again) = run(&mut image, &cfg, req) else { panic!() };
        assert_eq!((again[0].error.code, again[0].topic_id, again[0].num_partitions), (0, id, 2));
        assert_eq!(image.topic_count(), 1);
    }

    fn delete(
        image: &mut MetadataImage,
        cfg: &ControllerConfig,
        topics: Vec<TopicRef>,
    ) -> Vec<DeletableTopicResult> {
        let ControlResponse::DeleteTopics(r) =
            run(image, cfg, ControlRequest::DeleteTopics(DeleteTopicsRequest { topics }))
        else {
            panic!()
        };
        r
    }

    fn by_name(name: &str) -> TopicRef {
        TopicRef { name: Some(name.into()), topic_id: [0; 16] }
    }

    fn by_id(id: TopicId) -> TopicRef {
        TopicRef { name: None, topic_id: id }
    }

    #[test]
    fn delete_topics_by_name_and_id() {
        let cfg = config(1);
        let mut image = MetadataImage::new();
        let created = create(&mut image, &cfg, vec![new_topic("a", 1), new_topic("b", 1), new_topic("c", 1)]);
        let (a, b, c) = (created[0].topic_id, created[1].topic_id, created[2].topic_id);
        let r = delete(
            &mut image,
            &cfg,
            vec![
                by_name("a"),
                by_id(b),
                by_name("missing"),
                by_id([9; 16]),
                TopicRef { name: Some("c".into()), topic_id: c },
                TopicRef { name: None, topic_id: [0; 16] },
                by_name("d"),
                by_name("d"),
            ],
        );
        let got: Vec<(Option<&str>, i16)> = r.iter().map(|r| (r.name.as_deref(), r.error.code)).collect();
        assert_eq!(
            got,
            vec![
                (Some("a"), 0),
                (Some("b"), 0),
                (Some("missing"), 3),
                (None, 100),
                (Some("c"), 42),
                (None, 42),
                (Some("d"), 42)
            ]
        );
        assert_eq!(r[0].topic_id, a, "a name-based delete reports the id");
        assert!(image.topic("a").is_none() && image.topic("b").is_none() && image.topic("c").is_some());

        // The same topic by name and by id in one request is deleted once and flagged once.
        let r = delete(&mut image, &cfg, vec![by_id(c), by_name("c")]);
        assert_eq!(r.iter().map(|r| r.error.code).collect::<Vec<_>>(), vec![0, 42]);

        let mut off = config(1);
        off.delete_topic_enable = false;
        create(&mut image, &off, vec![new_topic("keep", 1)]);
        let r = delete(&mut image, &off, vec![by_name("keep")]);
        assert_eq!(r[0].error.code, 73);
        assert!(image.topic("keep").is_some());
    }

    fn grow(
        image: &mut MetadataImage,
        cfg: &ControllerConfig,
        topics: Vec<PartitionsIncrease>,
    ) -> Vec<TopicResult> {
        let req = ControlRequest::CreatePartitions(CreatePartitionsRequest { topics, validate_only: false });
        let ControlResponse::CreatePartitions(r) = run(image, cfg, req) else { panic!() };
        r
    }

    fn inc(name: &str, count: i32) -> PartitionsIncrease {
        PartitionsIncrease { name: name.into(), count, assignments: None }
    }

    #[test]
    fn create_partitions_only_grows() {
        let cfg = config(2);
        let mut image = MetadataImage::new();
        create(&mut image, &cfg, vec![new_topic("t", 3), new_topic("u", 1), new_topic("w", 1)]);
        let r = grow(
            &mut image,
            &cfg,
            vec![
                inc("t", 2),
                inc("u", 1),
                inc("missing", 4),
                PartitionsIncrease { name: "w".into(), count: 3, assignments: Some(vec![vec![1001]]) },
            ],
        );
        let got: Vec<i16> = r.iter().map(|r| r.error.code).collect();
        assert_eq!(got, vec![37, 37, 3, 39]);
        assert_eq!(
            r[0].error.message.as_deref(),
            Some("The topic t currently has 3 partition(s); 2 would not be an increase.")
        );
        assert_eq!(r[1].error.message.as_deref(), Some("Topic already has 1 partition(s)."));

        let r = grow(
            &mut image,
            &cfg,
            vec![
                inc("t", 5),
                PartitionsIncrease { name: "u".into(), count: 2, assignments: Some(vec![vec![1]]) },
            ],
        );
        assert_eq!(r.iter().map(|r| r.error.code).collect::<Vec<_>>(), vec![0, 0]);
        let leaders: Vec<i32> = image.topic("t").unwrap().partitions.iter().map(|p| p.leader).collect();
        // t: 1, 1001, 1; u: 1001; w: 1; growing t continues the rotation after w's partition.
        assert_eq!(leaders, vec![1, 1001, 1, 1001, 1]);
        assert_eq!(image.topic("u").unwrap().partitions[1].leader, 1);
        let r = grow(&mut image, &cfg, vec![inc("t", 6), inc("t", 7)]);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].error.code, 42);
    }

    fn alter(
        image: &mut MetadataImage,
        cfg: &ControllerConfig,
        resources: Vec<IncrementalAlterConfigsResource>,
    ) -> Vec<i16> {
        let req = ControlRequest::IncrementalAlterConfigs(IncrementalAlterConfigsRequest {
            resources,
            validate_only: false,
        });
        let ControlResponse::IncrementalAlterConfigs(r) = run(image, cfg, req) else { panic!() };
        r.iter().map(|r| r.error.code).collect()
    }

    fn res(name: &str, configs: Vec<(&str, i8, Option<&str>)>) -> IncrementalAlterConfigsResource {
        IncrementalAlterConfigsResource {
            resource_type: RESOURCE_TOPIC,
            resource_name: name.into(),
            configs: configs
                .into_iter()
                .map(|(n, op, v)| AlterableConfig { name: n.into(), op, value: v.map(String::from) })
                .collect(),
        }
    }

    #[test]
    fn incremental_alter_configs_set_delete_append_subtract() {
        let cfg = config(1);
        let mut image = MetadataImage::new();
        create(&mut image, &cfg, vec![new_topic("t", 1)]);
        let configs = |image: &MetadataImage| image.topic("t").unwrap().configs.clone();

        assert_eq!(
            alter(
                &mut image,
                &cfg,
                vec![res(
                    "t",
                    vec![
                        ("retention.ms", OP_SET, Some("1000")),
                        ("cleanup.policy", OP_APPEND, Some("compact"))
                    ]
                )]
            ),
            vec![0]
        );
        assert_eq!(configs(&image).get("cleanup.policy").map(String::as_str), Some("delete,compact"));
        assert_eq!(configs(&image).get("retention.ms").map(String::as_str), Some("1000"));
        assert_eq!(
            alter(
                &mut image,
                &cfg,
                vec![res(
                    "t",
                    vec![("cleanup.policy", OP_SUBTRACT, Some("delete")), ("retention.ms", OP_DELETE, None)]
                )]
            ),
            vec![0]
        );
        assert_eq!(configs(&image).get("cleanup.policy").map(String::as_str), Some("compact"));
        assert!(!configs(&image).contains_key("retention.ms"));

        let offset = image.applied_offset();
        // Setting the same value again commits nothing.
        assert_eq!(
            alter(&mut image, &cfg, vec![res("t", vec![("cleanup.policy", OP_SET, Some("compact"))])]),
            vec![0]
        );
        assert_eq!(image.applied_offset(), offset);

        let errors = alter(
            &mut image,
            &cfg,
            vec![
                res("t", vec![("retention.ms", OP_APPEND, Some("1"))]),
                res("missing", vec![("retention.ms", OP_SET, Some("1"))]),
                res("bad!", vec![("retention.ms", OP_SET, Some("1"))]),
                res("u", vec![("nope", OP_SET, Some("1"))]),
                res("v", vec![("segment.ms", OP_SET, Some("0"))]),
                res("w", vec![("retention.ms", OP_SET, None)]),
                res("x", vec![("retention.ms", OP_SET, Some("1")), ("retention.ms", OP_DELETE, None)]),
                res("y", vec![("retention.ms", 9, Some("1"))]),
            ],
        );
        assert_eq!(errors, vec![40, 3, 17, 40, 40, 42, 42, 42]);
        assert_eq!(image.applied_offset(), offset);

        // Unsupported resources and duplicates.
        let mut broker = res("1", vec![("log.retention.ms", OP_SET, Some("1"))]);
        broker.resource_type = RESOURCE_BROKER;
        assert_eq!(
            alter(&mut image, &cfg, vec![broker, res("t", vec![]), res("t", vec![])]),
            vec![42, 42, 42]
        );
    }

    #[test]
    fn legacy_alter_configs_replaces_the_whole_set() {
        let cfg = config(1);
        let mut image = MetadataImage::new();
        let mut t = new_topic("t", 1);
        t.configs = vec![("retention.ms".into(), Some("5".into())), ("segment.ms".into(), Some("9".into()))];
        create(&mut image, &cfg, vec![t]);
        let req = |configs: Vec<(&str, Option<&str>)>, validate_only| {
            ControlRequest::AlterConfigs(AlterConfigsRequest {
                resources: vec![AlterConfigsResource {
                    resource_type: RESOURCE_TOPIC,
                    resource_name: "t".into(),
                    configs: configs.into_iter().map(|(k, v)| (k.to_string(), v.map(String::from))).collect(),
                }],
                validate_only,
            })
        };
        let ControlResponse::AlterConfigs(r) =
            run(&mut image, &cfg, req(vec![("retention.ms", Some("7"))], true))
        else {
            panic!()
        };
        assert_eq!(r[0].error.code, 0);
        assert_eq!(image.topic("t").unwrap().configs.len(), 2, "validate_only changes nothing");
        run(&mut image, &cfg, req(vec![("retention.ms", Some("7"))], false));
        let configs = &image.topic("t").unwrap().configs;
        assert_eq!(configs.len(), 1);
        assert_eq!(configs.get("retention.ms").map(String::as_str), Some("7"));
        let ControlResponse::AlterConfigs(r) =
            run(&mut image, &cfg, req(vec![("retention.ms", None)], false))
        else {
            panic!()
        };
        assert_eq!(r[0].error.code, 42);
    }

    #[test]
    fn producer_id_blocks_never_overlap() {
        let cfg = config(1);
        let mut image = MetadataImage::new();
        let mut firsts = Vec::new();
        for _ in 0..3 {
            let ControlResponse::AllocateProducerIds(Ok(block)) =
                run(&mut image, &cfg, ControlRequest::AllocateProducerIds { broker_id: 1 })
            else {
                panic!()
            };
            assert_eq!(block.size, PRODUCER_ID_BLOCK_SIZE);
            firsts.push(block.first_producer_id);
        }
        assert_eq!(firsts, vec![0, 1000, 2000]);
        assert_eq!(image.next_producer_id(), 3000);
    }

    #[test]
    fn topic_ids_are_random_and_well_formed() {
        let cfg = config(1);
        let image = MetadataImage::new();
        let p = Planner::new(&cfg, &image);
        let mut seen = BTreeSet::new();
        for _ in 0..1000 {
            let id = p.new_topic_id();
            assert_ne!(id, [0; 16]);
            assert_ne!(id[0] >> 2, 62);
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn topic_config_values_follow_kafkas_validators() {
        let ok = |n: &str, v: &str| validate_topic_config(n, v).unwrap();
        let err = |n: &str, v: &str| validate_topic_config(n, v).unwrap_err().message.unwrap();
        assert_eq!(ok("retention.bytes", "-5"), "-5");
        assert_eq!(ok("max.message.bytes", " 100 "), "100");
        assert_eq!(ok("compression.type", "zstd"), "zstd");
        assert_eq!(ok("cleanup.policy", ""), "");
        assert_eq!(
            err("retention.ms", "abc"),
            "Invalid value abc for configuration retention.ms: Not a number of type LONG"
        );
        assert_eq!(
            err("max.message.bytes", "3000000000"),
            "Invalid value 3000000000 for configuration max.message.bytes: Not a number of type INT"
        );
        assert_eq!(
            err("min.insync.replicas", "0"),
            "Invalid value 0 for configuration min.insync.replicas: Value must be at least 1"
        );
        assert_eq!(
            err("message.timestamp.type", "Now"),
            "Invalid value Now for configuration message.timestamp.type: String must be one of: CreateTime, LogAppendTime"
        );
        assert_eq!(
            err("cleanup.policy", "delete,zap"),
            "Invalid value zap for configuration cleanup.policy: String must be one of: compact, delete"
        );
        assert_eq!(ok("min.cleanable.dirty.ratio", "0.25"), "0.25");
        assert_eq!(
            err("min.cleanable.dirty.ratio", "1.5"),
            "Invalid value 1.5 for configuration min.cleanable.dirty.ratio: Value must be no more than 1"
        );
        assert_eq!(ok("unclean.leader.election.enable", " TRUE "), "true");
        assert_eq!(
            err("unclean.leader.election.enable", "yes"),
            "Invalid value yes for configuration unclean.leader.election.enable: Expected value to be either true or false"
        );
        assert_eq!(topic_config_names().count(), 19);
    }
}
