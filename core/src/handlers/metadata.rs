//! Metadata: every shard of this broker is a node; each partition's leader is the shard node
//! that owns it. Unknown topics are auto-created when both the request and
//! `auto.create.topics.enable` allow it.

use shardlog_net::kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use shardlog_net::kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use shardlog_net::kafka_protocol::protocol::StrBytes;
use shardlog_net::KafkaError;
use uuid::Uuid;

use crate::controller::{ControlReply, ControlRequest, ControlResponse};
use crate::metadata::image::TopicImage;
use crate::metadata::MetadataImage;
use crate::shard::Shard;
use shardlog_storage::checkpoint::is_legal_topic_name as is_valid_topic_name;

/// Kafka's `authorized operations` value when the client did not ask for them.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

pub async fn handle(shard: &Shard, req: MetadataRequest, version: i16) -> MetadataResponse {
    // v0 sends an empty list for "all topics"; v1+ sends null.
    let requested: Option<Vec<(Option<String>, Uuid)>> = match req.topics {
        None => None,
        Some(topics) if topics.is_empty() && version == 0 => None,
        Some(topics) => {
            Some(topics.into_iter().map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id)).collect())
        }
    };
    let allow_auto_create =
        (version < 4 || req.allow_auto_topic_creation) && shard.config.auto_create_topics_enable;

    if let Some(requested) = &requested {
        let missing: Vec<String> = shard.with_image(|image| {
            requested
                .iter()
                .filter_map(|(name, _)| name.clone())
                .filter(|name| image.topic(name).is_none() && is_valid_topic_name(name))
                .collect()
        });
        if allow_auto_create && !missing.is_empty() {
            // The offsets topic has settings of its own (partition count, compaction); Kafka
            // creates it with those whoever asks first.
            let (internal, missing): (Vec<String>, Vec<String>) =
                missing.into_iter().partition(|name| name == crate::group::OFFSETS_TOPIC);
            if !internal.is_empty() {
                if let Err(code) = crate::group::create_offsets_topic(shard).await {
                    tracing::warn!("auto-creating {}: error {code}", crate::group::OFFSETS_TOPIC);
                }
            }
            if !missing.is_empty() {
                auto_create(shard, missing).await;
            }
        }
    }

    let topics = shard.with_image(|image| topics_metadata(image, requested));
    let rack = shard.config.rack.clone().unwrap_or_else(|| format!("broker-{}", shard.config.node_id));
    let brokers = shard
        .spec
        .nodes
        .iter()
        .map(|&(node_id, port)| {
            MetadataResponseBroker::default()
                .with_node_id(BrokerId(node_id))
                .with_host(StrBytes::from_string(shard.config.advertised_host.clone()))
                .with_port(port as i32)
                .with_rack(Some(StrBytes::from_string(rack.clone())))
        })
        .collect();
    MetadataResponse::default()
        .with_brokers(brokers)
        .with_cluster_id(Some(StrBytes::from_string(shard.spec.cluster_id.clone())))
        .with_controller_id(BrokerId(shard.spec.nodes[0].0))
        .with_topics(topics)
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

/// Asks the controller to create `names` with the broker's defaults and waits until this
/// shard's image has the result. Failures are left for the response to report as unknown.
pub async fn auto_create(shard: &Shard, names: Vec<String>) {
    match shard.control.request(ControlRequest::AutoCreateTopics { names }).await {
        Ok(ControlReply { response: ControlResponse::AutoCreateTopics(results), .. }) => {
            for r in results
                .iter()
                .filter(|r| !r.error.is_ok() && r.error.code != KafkaError::TopicAlreadyExists.code())
            {
                tracing::warn!("auto-creating topic {} failed: {:?}", r.name, r.error);
            }
        }
        Ok(_) => tracing::error!("controller answered auto-creation with another response type"),
        Err(e) => tracing::warn!("auto-creating topics: {e}"),
    }
}

fn topic_metadata(topic: &TopicImage) -> MetadataResponseTopic {
    let partitions = topic
        .partitions
        .iter()
        .map(|p| {
            MetadataResponsePartition::default()
                .with_partition_index(p.partition)
                .with_leader_id(BrokerId(p.leader))
                .with_leader_epoch(p.leader_epoch)
                .with_replica_nodes(p.replicas.iter().copied().map(BrokerId).collect())
                .with_isr_nodes(p.isr.iter().copied().map(BrokerId).collect())
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(topic.name.clone()))))
        .with_topic_id(Uuid::from_bytes(topic.topic_id))
        .with_is_internal(topic.name.starts_with("__"))
        .with_partitions(partitions)
        .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
}

fn topics_metadata(
    image: &MetadataImage,
    requested: Option<Vec<(Option<String>, Uuid)>>,
) -> Vec<MetadataResponseTopic> {
    let mut topics = Vec::new();
    match requested {
        None => {
            for topic in image.topics() {
                topics.push(topic_metadata(topic));
            }
        }
        Some(requested) => {
            for (name, topic_id) in requested {
                let found = match &name {
                    Some(name) => image.topic(name),
                    None => image.topic_by_id(topic_id.as_bytes()),
                };
                match found {
                    Some(topic) => topics.push(topic_metadata(topic)),
                    None => {
                        let error = match &name {
                            Some(name) if !is_valid_topic_name(name) => KafkaError::InvalidTopic,
                            Some(_) => KafkaError::UnknownTopicOrPartition,
                            None => KafkaError::UnknownTopicId,
                        };
                        topics.push(
                            MetadataResponseTopic::default()
                                .with_error_code(error.code())
                                .with_name(name.map(|n| TopicName(StrBytes::from_string(n))))
                                .with_topic_id(topic_id)
                                .with_topic_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED),
                        );
                    }
                }
            }
        }
    }

    topics
}
