//! The KIP-848 consumer group APIs: ConsumerGroupHeartbeat (68) and ConsumerGroupDescribe (69).
//! Translation only; the protocol lives in `crate::group::consumer*`.

use shardlog_net::kafka_protocol::messages::consumer_group_describe_response::{
    Assignment as DescribedAssignment, DescribedGroup, Member as DescribedMember,
    TopicPartitions as DescribedTopicPartitions,
};
use shardlog_net::kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, TopicPartitions,
};
use shardlog_net::kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, ConsumerGroupHeartbeatRequest,
    ConsumerGroupHeartbeatResponse, TopicName,
};
use shardlog_net::kafka_protocol::protocol::StrBytes;
use uuid::Uuid;

use crate::group::consumer_coordinator::HeartbeatRequest;
use crate::group::consumer_records::{Assignment as Partitions, TopicId};
use crate::shard::Shard;

/// Kafka's `authorized operations` value when they were not asked for.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// ConsumerGroupDescribe v1 `MemberType`: the member speaks the consumer protocol.
const MEMBER_TYPE_CONSUMER: i8 = 1;

fn s(value: impl Into<String>) -> StrBytes {
    StrBytes::from_string(value.into())
}

pub async fn heartbeat(
    shard: &Shard,
    req: ConsumerGroupHeartbeatRequest,
    version: i16,
    client_id: String,
    client_host: &str,
) -> ConsumerGroupHeartbeatResponse {
    let owned = req.topic_partitions.as_ref().map(|tps| {
        let mut owned = Partitions::new();
        for tp in tps {
            owned.entry(*tp.topic_id.as_bytes()).or_default().extend(tp.partitions.iter().copied());
        }
        owned
    });
    let request = HeartbeatRequest {
        group_id: req.group_id.0.to_string(),
        member_id: req.member_id.to_string(),
        member_epoch: req.member_epoch,
        instance_id: req.instance_id.as_ref().map(|i| i.to_string()),
        rack_id: req.rack_id.as_ref().map(|r| r.to_string()),
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        subscribed_topic_names: req
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.0.to_string()).collect()),
        subscribed_topic_regex: req.subscribed_topic_regex.as_ref().map(|r| r.to_string()),
        server_assignor: req.server_assignor.as_ref().map(|a| a.to_string()),
        owned,
        client_id,
        client_host: client_host.to_string(),
        version,
    };
    let result = shard.groups.consumer_heartbeat(shard, request).await;
    let assignment = result.assignment.map(|a| {
        Assignment::default().with_topic_partitions(
            a.into_iter()
                .map(|(topic_id, partitions)| {
                    TopicPartitions::default()
                        .with_topic_id(Uuid::from_bytes(topic_id))
                        .with_partitions(partitions.into_iter().collect())
                })
                .collect(),
        )
    });
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(result.error)
        .with_error_message(result.message.map(s))
        .with_member_id(result.member_id.map(s))
        .with_member_epoch(result.member_epoch)
        .with_heartbeat_interval_ms(result.heartbeat_interval_ms)
        .with_assignment(assignment)
}

fn described(partitions: Vec<(TopicId, String, Vec<i32>)>) -> DescribedAssignment {
    DescribedAssignment::default().with_topic_partitions(
        partitions
            .into_iter()
            .map(|(id, name, ps)| {
                DescribedTopicPartitions::default()
                    .with_topic_id(Uuid::from_bytes(id))
                    .with_topic_name(TopicName(s(name)))
                    .with_partitions(ps)
            })
            .collect(),
    )
}

pub async fn describe(
    shard: &Shard,
    req: ConsumerGroupDescribeRequest,
    version: i16,
) -> ConsumerGroupDescribeResponse {
    let mut groups = Vec::with_capacity(req.group_ids.len());
    for group_id in &req.group_ids {
        let d = shard.groups.consumer_describe(shard, &group_id.0).await;
        let members = d
            .members
            .into_iter()
            .map(|m| {
                let member = m.member;
                let described = DescribedMember::default()
                    .with_member_id(s(member.id))
                    .with_instance_id(member.instance_id.map(s))
                    .with_rack_id(member.rack_id.map(s))
                    .with_member_epoch(member.member_epoch)
                    .with_client_id(s(member.client_id))
                    .with_client_host(s(member.client_host))
                    .with_subscribed_topic_names(
                        member.subscribed_topic_names.into_iter().map(|n| TopicName(s(n))).collect(),
                    )
                    .with_subscribed_topic_regex(member.subscribed_topic_regex.map(s))
                    .with_assignment(described(m.assignment))
                    .with_target_assignment(described(m.target));
                if version >= 1 {
                    described.with_member_type(MEMBER_TYPE_CONSUMER)
                } else {
                    described
                }
            })
            .collect();
        groups.push(
            DescribedGroup::default()
                .with_error_code(d.error)
                .with_error_message(d.message.map(s))
                .with_group_id(group_id.clone())
                .with_group_state(s(d.state))
                .with_group_epoch(d.group_epoch)
                .with_assignment_epoch(d.assignment_epoch)
                .with_assignor_name(s(d.assignor))
                .with_members(members)
                .with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED),
        );
    }
    ConsumerGroupDescribeResponse::default().with_groups(groups)
}
