//! The group APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat, LeaveGroup,
//! OffsetCommit, OffsetFetch, OffsetDelete, ListGroups, DescribeGroups, DeleteGroups.
//!
//! This module only translates between `kafka-protocol`'s versioned messages and the
//! coordinator in `crate::group` (which holds the state machine and the Kafka 3.7 rules);
//! what differs by version — which fields exist, where an error goes — is decided here.

use shardlog_net::kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use shardlog_net::kafka_protocol::messages::describe_groups_response::{
    DescribedGroup, DescribedGroupMember,
};
use shardlog_net::kafka_protocol::messages::find_coordinator_response::Coordinator;
use shardlog_net::kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use shardlog_net::kafka_protocol::messages::leave_group_response::MemberResponse;
use shardlog_net::kafka_protocol::messages::list_groups_response::ListedGroup;
use shardlog_net::kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use shardlog_net::kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use shardlog_net::kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use shardlog_net::kafka_protocol::messages::{
    ApiKey, BrokerId, DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest,
    DescribeGroupsResponse, FindCoordinatorRequest, FindCoordinatorResponse, GroupId, HeartbeatRequest,
    HeartbeatResponse, JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse,
    ListGroupsRequest, ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetDeleteRequest,
    OffsetDeleteResponse, OffsetFetchRequest, OffsetFetchResponse, RequestHeader, RequestKind,
    SyncGroupRequest, SyncGroupResponse, TopicName,
};
use shardlog_net::kafka_protocol::protocol::StrBytes;

use super::{encode, Response};
use crate::group::state::{JoinRequest, SyncRequest};
use crate::group::{code, CommitTopics, Committer, FetchedOffset, PartitionErrors};
use crate::shard::Shard;

/// Kafka's `authorized operations` value when they were not asked for.
const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;
/// FindCoordinator key types.
const KEY_TYPE_GROUP: i8 = 0;
const KEY_TYPE_TRANSACTION: i8 = 1;

fn s(value: impl Into<String>) -> StrBytes {
    StrBytes::from_string(value.into())
}

/// Dispatches one group API request (the caller matched the body to one of them).
pub async fn handle(
    shard: &Shard,
    header: &RequestHeader,
    api_key: ApiKey,
    body: RequestKind,
    client_host: &str,
) -> Response {
    let version = header.request_api_version;
    let correlation_id = header.correlation_id;
    let client_id = header.client_id.as_ref().map(|c| c.to_string()).unwrap_or_default();
    match body {
        RequestKind::FindCoordinator(req) => {
            encode(api_key, version, correlation_id, &find_coordinator(shard, req, version).await)
        }
        RequestKind::JoinGroup(req) => encode(
            api_key,
            version,
            correlation_id,
            &join_group(shard, req, version, client_id, client_host).await,
        ),
        RequestKind::SyncGroup(req) => {
            encode(api_key, version, correlation_id, &sync_group(shard, req, version).await)
        }
        RequestKind::Heartbeat(req) => encode(api_key, version, correlation_id, &heartbeat(shard, req).await),
        RequestKind::LeaveGroup(req) => {
            encode(api_key, version, correlation_id, &leave_group(shard, req, version).await)
        }
        RequestKind::OffsetCommit(req) => {
            encode(api_key, version, correlation_id, &offset_commit(shard, req, version).await)
        }
        RequestKind::OffsetFetch(req) => {
            encode(api_key, version, correlation_id, &offset_fetch(shard, req, version).await)
        }
        RequestKind::OffsetDelete(req) => {
            encode(api_key, version, correlation_id, &offset_delete(shard, req).await)
        }
        RequestKind::ListGroups(req) => {
            encode(api_key, version, correlation_id, &list_groups(shard, req, version).await)
        }
        RequestKind::DescribeGroups(req) => {
            encode(api_key, version, correlation_id, &describe_groups(shard, req, version).await)
        }
        RequestKind::DeleteGroups(req) => {
            encode(api_key, version, correlation_id, &delete_groups(shard, req).await)
        }
        other => Response::Close(format!("not a group request: {other:?}")),
    }
}

async fn find_coordinator(
    shard: &Shard,
    req: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let keys: Vec<String> = if version >= 4 {
        req.coordinator_keys.iter().map(|k| k.to_string()).collect()
    } else {
        vec![req.key.to_string()]
    };
    let key_type = if version >= 1 { req.key_type } else { KEY_TYPE_GROUP };
    let mut answers = Vec::with_capacity(keys.len());
    for key in keys {
        let answer = match key_type {
            // Like Kafka, an empty group id is answered too (its partition is 0); the group
            // APIs then refuse it with INVALID_GROUP_ID.
            KEY_TYPE_GROUP => shard.groups.find_coordinator(shard, &key).await,
            // No transaction coordinator yet: clients retry, then report it.
            KEY_TYPE_TRANSACTION => Err(code::COORDINATOR_NOT_AVAILABLE),
            _ => Err(code::INVALID_REQUEST),
        };
        answers.push((key, answer));
    }
    let response = FindCoordinatorResponse::default();
    if version >= 4 {
        let coordinators = answers
            .into_iter()
            .map(|(key, answer)| {
                let c = Coordinator::default().with_key(s(key));
                match answer {
                    Ok((node, host, port)) => {
                        c.with_node_id(BrokerId(node)).with_host(s(host)).with_port(port)
                    }
                    Err(error) => {
                        c.with_node_id(BrokerId(-1)).with_host(s("")).with_port(-1).with_error_code(error)
                    }
                }
            })
            .collect();
        return response.with_coordinators(coordinators);
    }
    match answers.pop().map_or(Err(code::INVALID_REQUEST), |(_, a)| a) {
        Ok((node, host, port)) => response.with_node_id(BrokerId(node)).with_host(s(host)).with_port(port),
        Err(error) => {
            response.with_error_code(error).with_node_id(BrokerId(-1)).with_host(s("")).with_port(-1)
        }
    }
}

async fn join_group(
    shard: &Shard,
    req: JoinGroupRequest,
    version: i16,
    client_id: String,
    client_host: &str,
) -> JoinGroupResponse {
    let group_id = req.group_id.0.to_string();
    let request = JoinRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
        client_id,
        client_host: client_host.to_string(),
        session_timeout_ms: req.session_timeout_ms,
        // v0 has no rebalance timeout: the session timeout serves as both.
        rebalance_timeout_ms: if version >= 1 { req.rebalance_timeout_ms } else { req.session_timeout_ms },
        protocol_type: req.protocol_type.to_string(),
        protocols: req.protocols.iter().map(|p| (p.name.to_string(), p.metadata.clone())).collect(),
        require_known_member_id: version >= 4,
        supports_skip_assignment: version >= 9,
    };
    let result = shard.groups.join_group(shard, &group_id, request).await;
    let members = result
        .members
        .into_iter()
        .map(|(member_id, instance_id, metadata)| {
            let m = JoinGroupResponseMember::default().with_member_id(s(member_id)).with_metadata(metadata);
            if version >= 5 {
                m.with_group_instance_id(instance_id.map(s))
            } else {
                m
            }
        })
        .collect();
    // Before v7 the protocol name is not nullable.
    let protocol_name = match result.protocol_name {
        None if version < 7 => Some(String::new()),
        name => name,
    };
    let mut response = JoinGroupResponse::default()
        .with_error_code(result.error)
        .with_generation_id(result.generation)
        .with_protocol_name(protocol_name.map(s))
        .with_leader(s(result.leader))
        .with_member_id(s(result.member_id))
        .with_members(members);
    if version >= 7 {
        response = response.with_protocol_type(result.protocol_type.map(s));
    }
    if version >= 9 {
        response = response.with_skip_assignment(result.skip_assignment);
    }
    response
}

async fn sync_group(shard: &Shard, req: SyncGroupRequest, version: i16) -> SyncGroupResponse {
    let group_id = req.group_id.0.to_string();
    let request = SyncRequest {
        member_id: req.member_id.to_string(),
        instance_id: req.group_instance_id.as_ref().map(|i| i.to_string()),
        generation: req.generation_id,
        protocol_type: if version >= 5 { req.protocol_type.as_ref().map(|t| t.to_string()) } else { None },
        protocol_name: if version >= 5 { req.protocol_name.as_ref().map(|t| t.to_string()) } else { None },
        assignments: req
            .assignments
            .iter()
            .map(|a| (a.member_id.to_string(), a.assignment.clone()))
            .collect(),
    };
    let result = shard.groups.sync_group(shard, &group_id, request).await;
    let response =
        SyncGroupResponse::default().with_error_code(result.error).with_assignment(result.assignment);
    if version >= 5 {
        response
            .with_protocol_type(result.protocol_type.map(s))
            .with_protocol_name(result.protocol_name.map(s))
    } else {
        response
    }
}

async fn heartbeat(shard: &Shard, req: HeartbeatRequest) -> HeartbeatResponse {
    let error = shard
        .groups
        .heartbeat(
            shard,
            &req.group_id.0,
            &req.member_id,
            req.group_instance_id.as_deref(),
            req.generation_id,
        )
        .await;
    HeartbeatResponse::default().with_error_code(error)
}

async fn leave_group(shard: &Shard, req: LeaveGroupRequest, version: i16) -> LeaveGroupResponse {
    let members: Vec<(String, Option<String>)> = if version >= 3 {
        req.members
            .iter()
            .map(|m| (m.member_id.to_string(), m.group_instance_id.as_ref().map(|i| i.to_string())))
            .collect()
    } else {
        vec![(req.member_id.to_string(), None)]
    };
    let outcome = shard.groups.leave_group(shard, &req.group_id.0, &members).await;
    match outcome {
        Err(error) => LeaveGroupResponse::default().with_error_code(error),
        Ok(errors) if version < 3 => {
            LeaveGroupResponse::default().with_error_code(errors.first().copied().unwrap_or(code::NONE))
        }
        Ok(errors) => LeaveGroupResponse::default().with_members(
            members
                .into_iter()
                .zip(errors)
                .map(|((member_id, instance_id), error)| {
                    MemberResponse::default()
                        .with_member_id(s(member_id))
                        .with_group_instance_id(instance_id.map(s))
                        .with_error_code(error)
                })
                .collect(),
        ),
    }
}

pub(super) async fn offset_commit(
    shard: &Shard,
    req: OffsetCommitRequest,
    version: i16,
) -> OffsetCommitResponse {
    let topics: CommitTopics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let metadata = p.committed_metadata.as_ref().map(|m| m.to_string());
                    (p.partition_index, p.committed_offset, p.committed_leader_epoch, metadata)
                })
                .collect();
            (t.name.0.to_string(), partitions)
        })
        .collect();
    let results = shard
        .groups
        .commit_offsets(
            shard,
            &req.group_id.0,
            Committer {
                generation: req.generation_id_or_member_epoch,
                member_id: &req.member_id,
                instance_id: req.group_instance_id.as_deref(),
                version,
            },
            topics,
        )
        .await;
    OffsetCommitResponse::default().with_topics(
        results
            .into_iter()
            .map(|(topic, partitions)| {
                OffsetCommitResponseTopic::default().with_name(TopicName(s(topic))).with_partitions(
                    partitions
                        .into_iter()
                        .map(|(p, e)| {
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(p)
                                .with_error_code(e)
                        })
                        .collect(),
                )
            })
            .collect(),
    )
}

pub(super) async fn offset_fetch(
    shard: &Shard,
    req: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= 8 {
        let mut groups = Vec::with_capacity(req.groups.len());
        for g in &req.groups {
            let topics = g
                .topics
                .as_ref()
                .map(|ts| ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect());
            let group = OffsetFetchResponseGroup::default().with_group_id(g.group_id.clone());
            // v9: a KIP-848 member names itself and its epoch.
            let member = match (&g.member_id, version >= 9) {
                (Some(id), true) => Some((id.as_str(), g.member_epoch)),
                _ => None,
            };
            groups.push(match shard.groups.fetch_offsets(shard, &g.group_id.0, topics, member).await {
                Err(error) => group.with_error_code(error),
                Ok(fetched) => group.with_topics(
                    fetched
                        .into_iter()
                        .map(|(topic, partitions)| {
                            OffsetFetchResponseTopics::default()
                                .with_name(TopicName(s(topic)))
                                .with_partitions(partitions.into_iter().map(fetched_partitions).collect())
                        })
                        .collect(),
                ),
            });
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let requested: Option<Vec<(String, Vec<i32>)>> = req
        .topics
        .as_ref()
        .map(|ts| ts.iter().map(|t| (t.name.0.to_string(), t.partition_indexes.clone())).collect());
    match shard.groups.fetch_offsets(shard, &req.group_id.0, requested.clone(), None).await {
        Ok(fetched) => OffsetFetchResponse::default().with_topics(
            fetched
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetFetchResponseTopic::default().with_name(TopicName(s(topic))).with_partitions(
                        partitions.into_iter().map(|f| fetched_partition(f, version)).collect(),
                    )
                })
                .collect(),
        ),
        // v2+ have a top-level error; v1 puts it on every requested partition.
        Err(error) if version >= 2 => OffsetFetchResponse::default().with_error_code(error),
        Err(error) => OffsetFetchResponse::default().with_topics(
            requested
                .unwrap_or_default()
                .into_iter()
                .map(|(topic, partitions)| {
                    OffsetFetchResponseTopic::default().with_name(TopicName(s(topic))).with_partitions(
                        partitions
                            .into_iter()
                            .map(|p| {
                                let f = FetchedOffset {
                                    partition: p,
                                    offset: -1,
                                    leader_epoch: -1,
                                    metadata: String::new(),
                                    error,
                                };
                                fetched_partition(f, version)
                            })
                            .collect(),
                    )
                })
                .collect(),
        ),
    }
}

fn fetched_partition(f: FetchedOffset, version: i16) -> OffsetFetchResponsePartition {
    let p = OffsetFetchResponsePartition::default()
        .with_partition_index(f.partition)
        .with_committed_offset(f.offset)
        .with_metadata(Some(s(f.metadata)))
        .with_error_code(f.error);
    if version >= 5 {
        p.with_committed_leader_epoch(f.leader_epoch)
    } else {
        p
    }
}

fn fetched_partitions(f: FetchedOffset) -> OffsetFetchResponsePartitions {
    OffsetFetchResponsePartitions::default()
        .with_partition_index(f.partition)
        .with_committed_offset(f.offset)
        .with_committed_leader_epoch(f.leader_epoch)
        .with_metadata(Some(s(f.metadata)))
        .with_error_code(f.error)
}

async fn offset_delete(shard: &Shard, req: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let topics: Vec<(String, Vec<i32>)> = req
        .topics
        .iter()
        .map(|t| (t.name.0.to_string(), t.partitions.iter().map(|p| p.partition_index).collect()))
        .collect();
    match shard.groups.delete_offsets(shard, &req.group_id.0, topics).await {
        Err(error) => OffsetDeleteResponse::default().with_error_code(error),
        Ok(results) => OffsetDeleteResponse::default().with_topics(partition_errors(results)),
    }
}

fn partition_errors(results: PartitionErrors) -> Vec<OffsetDeleteResponseTopic> {
    results
        .into_iter()
        .map(|(topic, partitions)| {
            OffsetDeleteResponseTopic::default().with_name(TopicName(s(topic))).with_partitions(
                partitions
                    .into_iter()
                    .map(|(p, e)| {
                        OffsetDeleteResponsePartition::default().with_partition_index(p).with_error_code(e)
                    })
                    .collect(),
            )
        })
        .collect()
}

async fn list_groups(shard: &Shard, req: ListGroupsRequest, version: i16) -> ListGroupsResponse {
    let states: Vec<String> =
        if version >= 4 { req.states_filter.iter().map(|s| s.to_string()).collect() } else { Vec::new() };
    let types: Vec<String> =
        if version >= 5 { req.types_filter.iter().map(|t| t.to_string()).collect() } else { Vec::new() };
    match shard.groups.list_groups(shard, &states, &types).await {
        Err(error) => ListGroupsResponse::default().with_error_code(error),
        Ok(groups) => ListGroupsResponse::default().with_groups(
            groups
                .into_iter()
                .map(|(id, protocol_type, state, group_type)| {
                    let mut g = ListedGroup::default()
                        .with_group_id(GroupId(s(id)))
                        .with_protocol_type(s(protocol_type));
                    if version >= 4 {
                        g = g.with_group_state(s(state));
                    }
                    if version >= 5 {
                        g = g.with_group_type(s(group_type));
                    }
                    g
                })
                .collect(),
        ),
    }
}

async fn describe_groups(shard: &Shard, req: DescribeGroupsRequest, version: i16) -> DescribeGroupsResponse {
    let mut described = Vec::with_capacity(req.groups.len());
    for group_id in &req.groups {
        let d = shard.groups.describe_group(shard, &group_id.0).await;
        let members = d
            .members
            .into_iter()
            .map(|(member_id, instance_id, client_id, client_host, metadata, assignment)| {
                let m = DescribedGroupMember::default()
                    .with_member_id(s(member_id))
                    .with_client_id(s(client_id))
                    .with_client_host(s(client_host))
                    .with_member_metadata(metadata)
                    .with_member_assignment(assignment);
                if version >= 4 {
                    m.with_group_instance_id(instance_id.map(s))
                } else {
                    m
                }
            })
            .collect();
        described.push(
            DescribedGroup::default()
                .with_error_code(d.error)
                .with_group_id(group_id.clone())
                .with_group_state(s(d.state))
                .with_protocol_type(s(d.protocol_type))
                .with_protocol_data(s(d.protocol))
                .with_members(members)
                .with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED),
        );
    }
    DescribeGroupsResponse::default().with_groups(described)
}

async fn delete_groups(shard: &Shard, req: DeleteGroupsRequest) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(req.groups_names.len());
    for group_id in &req.groups_names {
        let error = shard.groups.delete_group(shard, &group_id.0).await;
        results.push(DeletableGroupResult::default().with_group_id(group_id.clone()).with_error_code(error));
    }
    DeleteGroupsResponse::default().with_results(results)
}
