//! A classic-protocol consumer group member for the console consumer, over the blocking
//! [`Client`]: FindCoordinator, JoinGroup (the member-id round trip), SyncGroup with Kafka's
//! `range` assignor when this member leads, Heartbeat, OffsetFetch / OffsetCommit and
//! LeaveGroup. One topic per member, as the console consumer subscribes to one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Buf, BufMut, Bytes, BytesMut};
use shardlog_net::kafka_protocol::messages::consumer_protocol_assignment::TopicPartition as AssignedTopic;
use shardlog_net::kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use shardlog_net::kafka_protocol::messages::leave_group_request::MemberIdentity;
use shardlog_net::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use shardlog_net::kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use shardlog_net::kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use shardlog_net::kafka_protocol::messages::{
    ConsumerProtocolAssignment, ConsumerProtocolSubscription, FindCoordinatorRequest,
    FindCoordinatorResponse, GroupId, HeartbeatRequest, HeartbeatResponse, JoinGroupRequest,
    JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, OffsetCommitRequest, OffsetCommitResponse,
    OffsetFetchRequest, OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse,
};
use shardlog_net::kafka_protocol::protocol::{Decodable, Encodable, StrBytes};

use crate::admin::{self, error_message, error_name, ToolError};
use crate::client::Client;

const FIND_COORDINATOR_V: i16 = 3;
const JOIN_GROUP_V: i16 = 7;
const SYNC_GROUP_V: i16 = 5;
const HEARTBEAT_V: i16 = 4;
const LEAVE_GROUP_V: i16 = 4;
const OFFSET_FETCH_V: i16 = 7;
const OFFSET_COMMIT_V: i16 = 8;
/// The embedded consumer protocol's version (v0: topics and user data).
const CONSUMER_PROTOCOL_V: i16 = 0;

const MEMBER_ID_REQUIRED: i16 = 79;
const REBALANCE_IN_PROGRESS: i16 = 27;
const UNKNOWN_MEMBER_ID: i16 = 25;
const ILLEGAL_GENERATION: i16 = 22;

/// Kafka's consumer defaults.
const SESSION_TIMEOUT_MS: i32 = 45_000;
const REBALANCE_TIMEOUT_MS: i32 = 300_000;
pub const HEARTBEAT_INTERVAL: Duration = Duration::from_secs(3);
pub const AUTO_COMMIT_INTERVAL: Duration = Duration::from_secs(5);

fn fail(what: &str, code: i16, message: Option<&StrBytes>) -> ToolError {
    ToolError(format!("{what}: {}: {}", error_name(code), error_message(code, message)))
}

pub struct GroupMember {
    coordinator: Client,
    group: String,
    topic: String,
    member_id: String,
    generation: i32,
    last_heartbeat: Instant,
}

impl GroupMember {
    /// Finds the group's coordinator (asking `bootstrap`) and connects to it.
    pub fn connect(
        bootstrap: &mut Client,
        group: &str,
        topic: &str,
        timeout: Duration,
    ) -> Result<Self, ToolError> {
        let req = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(group.to_string()))
            .with_key_type(0);
        let resp: FindCoordinatorResponse = bootstrap.call(FIND_COORDINATOR_V, &req)?;
        if resp.error_code != 0 {
            return Err(fail("FindCoordinator", resp.error_code, resp.error_message.as_ref()));
        }
        let coordinator = Client::connect(&format!("{}:{}", resp.host.as_str(), resp.port), timeout)?;
        Ok(GroupMember {
            coordinator,
            group: group.to_string(),
            topic: topic.to_string(),
            member_id: String::new(),
            generation: -1,
            last_heartbeat: Instant::now(),
        })
    }

    fn group_id(&self) -> GroupId {
        GroupId(StrBytes::from_string(self.group.clone()))
    }

    /// Joins (or rejoins) the group; returns the partitions of the topic assigned to this
    /// member. `partitions`: every partition of the topic, for the range assignor.
    pub fn join(&mut self, partitions: &[i32]) -> Result<Vec<i32>, ToolError> {
        let subscription = ConsumerProtocolSubscription::default()
            .with_topics(vec![StrBytes::from_string(self.topic.clone())])
            .with_user_data(None);
        let metadata = versioned(&subscription)?;
        let join = loop {
            let req = JoinGroupRequest::default()
                .with_group_id(self.group_id())
                .with_session_timeout_ms(SESSION_TIMEOUT_MS)
                .with_rebalance_timeout_ms(REBALANCE_TIMEOUT_MS)
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_protocol_type(StrBytes::from_static_str("consumer"))
                .with_protocols(vec![JoinGroupRequestProtocol::default()
                    .with_name(StrBytes::from_static_str("range"))
                    .with_metadata(metadata.clone())]);
            let resp: JoinGroupResponse = self.coordinator.call(JOIN_GROUP_V, &req)?;
            match resp.error_code {
                0 => break resp,
                MEMBER_ID_REQUIRED => self.member_id = resp.member_id.to_string(),
                UNKNOWN_MEMBER_ID => self.member_id.clear(),
                REBALANCE_IN_PROGRESS => {}
                code => return Err(fail("JoinGroup", code, None)),
            }
        };
        self.member_id = join.member_id.to_string();
        self.generation = join.generation_id;
        let assignments = if join.leader == join.member_id {
            let members: Vec<String> = join.members.iter().map(|m| m.member_id.to_string()).collect();
            range_assign(&members, partitions)
                .into_iter()
                .map(|(member, parts)| {
                    let assignment = ConsumerProtocolAssignment::default()
                        .with_assigned_partitions(vec![AssignedTopic::default()
                            .with_topic(admin::topic_name(&self.topic))
                            .with_partitions(parts)])
                        .with_user_data(None);
                    Ok(SyncGroupRequestAssignment::default()
                        .with_member_id(StrBytes::from_string(member))
                        .with_assignment(versioned(&assignment)?))
                })
                .collect::<Result<Vec<_>, ToolError>>()?
        } else {
            Vec::new()
        };
        let req = SyncGroupRequest::default()
            .with_group_id(self.group_id())
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_protocol_type(Some(StrBytes::from_static_str("consumer")))
            .with_protocol_name(join.protocol_name.clone())
            .with_assignments(assignments);
        let resp: SyncGroupResponse = self.coordinator.call(SYNC_GROUP_V, &req)?;
        match resp.error_code {
            0 => {}
            // Another rebalance began: join again.
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION => return self.join(partitions),
            code => return Err(fail("SyncGroup", code, None)),
        }
        self.last_heartbeat = Instant::now();
        if resp.assignment.is_empty() {
            return Ok(Vec::new());
        }
        let mut buf = resp.assignment.clone();
        if buf.remaining() < 2 {
            return Err(ToolError("SyncGroup: an assignment too short to decode".into()));
        }
        let version = buf.get_i16().min(3);
        let assignment = ConsumerProtocolAssignment::decode(&mut buf, version)
            .map_err(|e| ToolError(format!("SyncGroup: an assignment that does not decode: {e}")))?;
        let mut mine: Vec<i32> = assignment
            .assigned_partitions
            .iter()
            .filter(|t| t.topic.0.as_str() == self.topic)
            .flat_map(|t| t.partitions.iter().copied())
            .collect();
        mine.sort_unstable();
        Ok(mine)
    }

    /// Heartbeats when one is due; `Ok(true)` when the group is rebalancing and this member
    /// must join again.
    pub fn heartbeat_if_due(&mut self) -> Result<bool, ToolError> {
        if self.last_heartbeat.elapsed() < HEARTBEAT_INTERVAL {
            return Ok(false);
        }
        self.last_heartbeat = Instant::now();
        let req = HeartbeatRequest::default()
            .with_group_id(self.group_id())
            .with_generation_id(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()));
        let resp: HeartbeatResponse = self.coordinator.call(HEARTBEAT_V, &req)?;
        match resp.error_code {
            0 => Ok(false),
            REBALANCE_IN_PROGRESS | ILLEGAL_GENERATION | UNKNOWN_MEMBER_ID => Ok(true),
            code => Err(fail("Heartbeat", code, None)),
        }
    }

    /// The committed offsets of `partitions` (absent: none committed).
    pub fn committed(&mut self, partitions: &[i32]) -> Result<BTreeMap<i32, i64>, ToolError> {
        let req = OffsetFetchRequest::default().with_group_id(self.group_id()).with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(admin::topic_name(&self.topic))
                .with_partition_indexes(partitions.to_vec()),
        ]));
        let resp: OffsetFetchResponse = self.coordinator.call(OFFSET_FETCH_V, &req)?;
        if resp.error_code != 0 {
            return Err(fail("OffsetFetch", resp.error_code, None));
        }
        let mut out = BTreeMap::new();
        for t in &resp.topics {
            for p in &t.partitions {
                if p.error_code != 0 {
                    return Err(fail("OffsetFetch", p.error_code, None));
                }
                if p.committed_offset >= 0 {
                    out.insert(p.partition_index, p.committed_offset);
                }
            }
        }
        Ok(out)
    }

    /// Commits `positions` (partition → next offset to read) for this generation.
    pub fn commit(&mut self, positions: &BTreeMap<i32, i64>) -> Result<(), ToolError> {
        if positions.is_empty() {
            return Ok(());
        }
        let req = OffsetCommitRequest::default()
            .with_group_id(self.group_id())
            .with_generation_id_or_member_epoch(self.generation)
            .with_member_id(StrBytes::from_string(self.member_id.clone()))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(admin::topic_name(&self.topic))
                .with_partitions(
                    positions
                        .iter()
                        .map(|(p, o)| {
                            OffsetCommitRequestPartition::default()
                                .with_partition_index(*p)
                                .with_committed_offset(*o)
                                .with_committed_leader_epoch(-1)
                                .with_committed_metadata(Some(StrBytes::from_static_str("")))
                        })
                        .collect(),
                )]);
        let resp: OffsetCommitResponse = self.coordinator.call(OFFSET_COMMIT_V, &req)?;
        for t in &resp.topics {
            for p in &t.partitions {
                if p.error_code != 0 {
                    return Err(fail("OffsetCommit", p.error_code, None));
                }
            }
        }
        Ok(())
    }

    /// Leaves the group (so the others rebalance at once rather than after the session timeout).
    pub fn leave(&mut self) -> Result<(), ToolError> {
        let req = LeaveGroupRequest::default().with_group_id(self.group_id()).with_members(vec![
            MemberIdentity::default()
                .with_member_id(StrBytes::from_string(self.member_id.clone()))
                .with_reason(None),
        ]);
        let resp: LeaveGroupResponse = self.coordinator.call(LEAVE_GROUP_V, &req)?;
        if resp.error_code != 0 {
            return Err(fail("LeaveGroup", resp.error_code, None));
        }
        Ok(())
    }
}

/// A consumer-protocol message with its version in front, as the JoinGroup / SyncGroup bytes
/// carry it.
fn versioned<M: Encodable>(message: &M) -> Result<Bytes, ToolError> {
    let mut buf = BytesMut::new();
    buf.put_i16(CONSUMER_PROTOCOL_V);
    message.encode(&mut buf, CONSUMER_PROTOCOL_V).map_err(|e| ToolError(format!("cannot encode: {e}")))?;
    Ok(buf.freeze())
}

/// Kafka's `RangeAssignor` for one topic: members sorted by id, each takes
/// `partitions / members` consecutive partitions and the first `partitions % members` one more.
pub fn range_assign(members: &[String], partitions: &[i32]) -> BTreeMap<String, Vec<i32>> {
    let mut members: Vec<&String> = members.iter().collect();
    members.sort();
    members.dedup();
    let mut partitions = partitions.to_vec();
    partitions.sort_unstable();
    let mut out = BTreeMap::new();
    if members.is_empty() {
        return out;
    }
    let (per, extra) = (partitions.len() / members.len(), partitions.len() % members.len());
    let mut start = 0;
    for (i, m) in members.iter().enumerate() {
        let n = per + usize::from(i < extra);
        out.insert((*m).clone(), partitions[start..start + n].to_vec());
        start += n;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn range_assignor_gives_the_first_members_the_extra_partitions() {
        let got = range_assign(&["b".into(), "a".into()], &[0, 1, 2]);
        assert_eq!(got["a"], vec![0, 1]);
        assert_eq!(got["b"], vec![2]);
        let got = range_assign(&["a".into(), "b".into(), "c".into()], &[0]);
        assert_eq!(got["a"], vec![0]);
        assert!(got["c"].is_empty());
    }
}
