//! The group coordinator (classic protocol): consumer groups, their rebalances and their
//! committed offsets, as Kafka 3.7's `GroupCoordinator` + `GroupMetadataManager`.
//!
//! Placement. Groups live in the internal topic `__consumer_offsets`
//! (`offsets.topic.num.partitions` partitions, compacted, created through the controller the
//! first time a client looks for a coordinator, placed over the shards like any topic). Group
//! `g` belongs to partition `abs(javaHashCode(g)) % partitions`, and its coordinator is the
//! node — the shard — that leads that partition. FindCoordinator answers that node from any
//! shard; every other group request reaching a shard that is not the coordinator gets
//! `NOT_COORDINATOR`, and before the topic exists `COORDINATOR_NOT_AVAILABLE`.
//!
//! State. Each shard keeps the groups of the offsets partitions it leads in a shard-local
//! [`GroupCoordinator`] (`Rc`/`RefCell`, no locks, nothing shared across cores). A partition is
//! loaded on first use: its log is replayed into committed offsets and groups (as `Empty`,
//! without members) before any request for one of its groups is served.
//!
//! Durability. Every offset commit and every group change that Kafka persists (assignment at
//! SyncGroup, a group becoming empty, a static member's new id, deletions as tombstones) is
//! appended to the group's partition in Kafka's record format ([`records`]) before the client
//! gets its answer, so a restart — clean or `kill -9` — loses nothing that was acknowledged.

pub mod consumer;
pub mod consumer_coordinator;
pub mod consumer_records;
pub mod expiry;
pub mod records;
pub mod state;

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;
use shardlog_net::KafkaError;
use shardlog_storage::batch_builder::RecordBatchBuilder;
use shardlog_storage::record_batch::{BatchIter, Compression};
use shardlog_storage::records::Records;

use self::records::{GroupValue, OffsetValue, RecordKey};
use self::state::{
    Group, GroupRef, GroupState, JoinOutcome, JoinRequest, JoinResult, Slot, SyncOutcome, SyncRequest,
    SyncResult,
};
use crate::controller::{ControlReply, ControlRequest, ControlResponse, CreateTopicsRequest, NewTopic};
use crate::partition::Partition;
use crate::shard::{now_ms, Shard};

/// The internal topic holding committed offsets and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Kafka's `offset.metadata.max.bytes`.
pub const OFFSET_METADATA_MAX_BYTES: usize = 4096;
/// How long a group request waits for its shard to open a just-created offsets partition.
const PARTITION_OPEN_WAIT_MS: u64 = 10_000;
/// Bytes read per step when replaying an offsets partition, and the most one batch may inflate to.
const REPLAY_READ_BYTES: usize = 8 << 20;
const REPLAY_MAX_UNCOMPRESSED_BYTES: usize = 64 << 20;
/// Slack on top of the protocol's own timeouts before a parked JoinGroup/SyncGroup gives up.
const WAIT_SLACK_MS: u64 = 10_000;

/// Kafka error codes of the group APIs, from `kafka-protocol`'s table (itself generated from
/// Kafka's `Errors.java`). The net crate's `KafkaError` covers the data path; group errors
/// are only ever produced here.
pub mod code {
    use shardlog_net::kafka_protocol::ResponseError as E;
    pub const NONE: i16 = 0;
    pub const UNKNOWN_SERVER_ERROR: i16 = E::UnknownServerError.code();
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = E::UnknownTopicOrPartition.code();
    pub const OFFSET_METADATA_TOO_LARGE: i16 = E::OffsetMetadataTooLarge.code();
    pub const COORDINATOR_LOAD_IN_PROGRESS: i16 = E::CoordinatorLoadInProgress.code();
    pub const COORDINATOR_NOT_AVAILABLE: i16 = E::CoordinatorNotAvailable.code();
    pub const NOT_COORDINATOR: i16 = E::NotCoordinator.code();
    pub const ILLEGAL_GENERATION: i16 = E::IllegalGeneration.code();
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = E::InconsistentGroupProtocol.code();
    pub const INVALID_GROUP_ID: i16 = E::InvalidGroupId.code();
    pub const UNKNOWN_MEMBER_ID: i16 = E::UnknownMemberId.code();
    pub const INVALID_SESSION_TIMEOUT: i16 = E::InvalidSessionTimeout.code();
    pub const REBALANCE_IN_PROGRESS: i16 = E::RebalanceInProgress.code();
    pub const INVALID_COMMIT_OFFSET_SIZE: i16 = E::InvalidCommitOffsetSize.code();
    pub const INVALID_REQUEST: i16 = E::InvalidRequest.code();
    pub const NON_EMPTY_GROUP: i16 = E::NonEmptyGroup.code();
    pub const GROUP_ID_NOT_FOUND: i16 = E::GroupIdNotFound.code();
    pub const MEMBER_ID_REQUIRED: i16 = E::MemberIdRequired.code();
    pub const FENCED_INSTANCE_ID: i16 = E::FencedInstanceId.code();
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = E::GroupSubscribedToTopic.code();
    pub const UNSUPPORTED_VERSION: i16 = E::UnsupportedVersion.code();
    pub const GROUP_MAX_SIZE_REACHED: i16 = E::GroupMaxSizeReached.code();
    pub const FENCED_MEMBER_EPOCH: i16 = E::FencedMemberEpoch.code();
    pub const UNRELEASED_INSTANCE_ID: i16 = E::UnreleasedInstanceId.code();
    pub const UNSUPPORTED_ASSIGNOR: i16 = E::UnsupportedAssignor.code();
    pub const STALE_MEMBER_EPOCH: i16 = E::StaleMemberEpoch.code();
    pub const INVALID_REGULAR_EXPRESSION: i16 = E::InvalidRegularExpression.code();
}

/// Java's `String.hashCode` (over UTF-16 code units, wrapping).
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(c as i32))
}

/// Kafka's `partitionFor(groupId)`: `Utils.abs(groupId.hashCode) % partitions`, where
/// `Utils.abs(Integer.MIN_VALUE)` is 0.
pub fn partition_for(group_id: &str, partitions: i32) -> i32 {
    let h = java_string_hash(group_id);
    let abs = if h == i32::MIN { 0 } else { h.abs() };
    abs % partitions.max(1)
}

enum Load {
    Loading(Rc<event_listener::Event>),
    Loaded(Rc<Partition>),
}

/// The coordinator state of one shard: the groups of the offsets partitions it leads.
#[derive(Default)]
pub struct GroupCoordinator {
    groups: RefCell<HashMap<String, GroupRef>>,
    loads: RefCell<HashMap<i32, Load>>,
}

/// A committed offset as OffsetFetch reports it.
#[derive(Debug, Clone)]
pub struct FetchedOffset {
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub error: i16,
}

/// One group as DescribeGroups reports it.
pub struct GroupDescription {
    pub error: i16,
    pub state: &'static str,
    pub protocol_type: String,
    pub protocol: String,
    /// `(member id, instance id, client id, client host, metadata, assignment)`.
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

/// Who commits: the generation (classic) or member epoch (KIP-848), member and instance id,
/// and the OffsetCommit version they used.
pub struct Committer<'a> {
    pub generation: i32,
    pub member_id: &'a str,
    pub instance_id: Option<&'a str>,
    pub version: i16,
}

/// `(topic, [(partition, offset, leader epoch, metadata)])` of an OffsetCommit.
pub type CommitTopics = Vec<(String, Vec<(i32, i64, i32, Option<String>)>)>;
/// `(topic, [(partition, error)])`.
pub type PartitionErrors = Vec<(String, Vec<(i32, i16)>)>;

impl GroupCoordinator {
    pub fn new() -> GroupCoordinator {
        GroupCoordinator::default()
    }

    // ---- placement -----------------------------------------------------------------------

    /// The offsets partition of `group_id` if this shard coordinates it.
    fn route(&self, shard: &Shard, group_id: &str) -> Result<i32, i16> {
        shard.with_image(|image| {
            let topic = image.topic(OFFSETS_TOPIC).ok_or(code::COORDINATOR_NOT_AVAILABLE)?;
            let partition = partition_for(group_id, topic.partitions.len() as i32);
            let leader = topic
                .partitions
                .iter()
                .find(|p| p.partition == partition)
                .map(|p| p.leader)
                .ok_or(code::COORDINATOR_NOT_AVAILABLE)?;
            if leader == shard.spec.node_id {
                Ok(partition)
            } else if leader < 0 {
                Err(code::COORDINATOR_NOT_AVAILABLE)
            } else {
                Err(code::NOT_COORDINATOR)
            }
        })
    }

    /// FindCoordinator for a group: `(node id, host, port)` of the shard leading its offsets
    /// partition, creating `__consumer_offsets` first if it does not exist yet.
    pub async fn find_coordinator(&self, shard: &Shard, group_id: &str) -> Result<(i32, String, i32), i16> {
        let exists = shard.with_image(|image| image.topic(OFFSETS_TOPIC).is_some());
        if !exists {
            create_offsets_topic(shard).await?;
        }
        let leader = shard.with_image(|image| {
            let topic = image.topic(OFFSETS_TOPIC)?;
            let partition = partition_for(group_id, topic.partitions.len() as i32);
            topic.partitions.iter().find(|p| p.partition == partition).map(|p| p.leader)
        });
        let leader = leader.filter(|l| *l >= 0).ok_or(code::COORDINATOR_NOT_AVAILABLE)?;
        let port = shard
            .spec
            .nodes
            .iter()
            .find(|(node, _)| *node == leader)
            .map(|(_, port)| *port as i32)
            .ok_or(code::COORDINATOR_NOT_AVAILABLE)?;
        Ok((leader, shard.config.advertised_host.clone(), port))
    }

    // ---- loading ---------------------------------------------------------------------------

    /// The log of offsets partition `index`, replayed into this coordinator first if needed.
    async fn ensure_loaded(&self, shard: &Shard, index: i32) -> Result<Rc<Partition>, i16> {
        let started = std::time::Instant::now();
        loop {
            let current = shard.partition(OFFSETS_TOPIC, index);
            let waiting = match self.loads.borrow().get(&index) {
                Some(Load::Loaded(log)) if current.as_ref().is_some_and(|c| Rc::ptr_eq(c, log)) => {
                    return Ok(log.clone());
                }
                Some(Load::Loaded(_)) => None,
                Some(Load::Loading(event)) => Some(event.listen()),
                None => None,
            };
            if let Some(listener) = waiting {
                let _ = glommio::timer::timeout(Duration::from_millis(100), async {
                    listener.await;
                    Ok(())
                })
                .await;
                if started.elapsed() > Duration::from_millis(PARTITION_OPEN_WAIT_MS * 3) {
                    return Err(code::COORDINATOR_LOAD_IN_PROGRESS);
                }
                continue;
            }
            let Some(log) = current else {
                // The image says we lead it; the shard opens it right after applying the image.
                let opened = shard.listen_for_partition_changes();
                if shard.partition(OFFSETS_TOPIC, index).is_some() {
                    continue;
                }
                let waited = started.elapsed();
                let max = Duration::from_millis(PARTITION_OPEN_WAIT_MS);
                if waited >= max {
                    return Err(code::COORDINATOR_LOAD_IN_PROGRESS);
                }
                let _ = glommio::timer::timeout(max - waited, async {
                    opened.await;
                    Ok(())
                })
                .await;
                continue;
            };
            // Not loaded, or loaded from a log that was since replaced: (re)load.
            self.unload(index);
            let event = Rc::new(event_listener::Event::new());
            self.loads.borrow_mut().insert(index, Load::Loading(event.clone()));
            let delay_ms = shard.config.group_initial_rebalance_delay_ms as i64;
            let session_ms = shard.config.group_consumer_session_timeout_ms as i64;
            let loaded = self.load(&log, index, delay_ms, session_ms).await;
            self.loads.borrow_mut().insert(index, Load::Loaded(log.clone()));
            event.notify(usize::MAX);
            let took_ms = started.elapsed().as_millis();
            if loaded > 0 {
                tracing::info!("loaded {loaded} groups from {OFFSETS_TOPIC}-{index} in {took_ms} ms");
            } else {
                tracing::debug!("loaded {OFFSETS_TOPIC}-{index} (no groups) in {took_ms} ms");
            }
            return Ok(log);
        }
    }

    fn unload(&self, index: i32) {
        self.loads.borrow_mut().remove(&index);
        self.groups.borrow_mut().retain(|_, g| g.borrow().offsets_partition != index);
    }

    /// Replays one offsets partition; returns how many groups it holds.
    async fn load(&self, log: &Rc<Partition>, index: i32, delay_ms: i64, session_timeout_ms: i64) -> usize {
        let mut offsets: HashMap<String, HashMap<(String, i32), OffsetValue>> = HashMap::new();
        let mut groups: BTreeMap<String, Option<GroupValue>> = BTreeMap::new();
        let mut consumer: BTreeMap<String, consumer_coordinator::Replay> = BTreeMap::new();
        let mut offset = log.log_start_offset();
        let end = log.high_watermark();
        // Bounded by the log: each step moves `offset` past at least one batch.
        while offset < end {
            let read = match log.read(offset, REPLAY_READ_BYTES, true).await {
                Ok(read) => read,
                Err(e) => {
                    tracing::error!("replaying {OFFSETS_TOPIC}-{index} at {offset}: {e}");
                    break;
                }
            };
            let mut advanced = false;
            for region in &read.regions {
                let bytes = match region.read_bytes().await {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        tracing::error!("replaying {OFFSETS_TOPIC}-{index}: {e}");
                        break;
                    }
                };
                for (_, batch) in BatchIter::new(&bytes, usize::MAX).flatten() {
                    if batch.next_offset() <= offset {
                        continue;
                    }
                    offset = batch.next_offset();
                    advanced = true;
                    if batch.is_control() {
                        continue;
                    }
                    let records = match Records::decode(batch, REPLAY_MAX_UNCOMPRESSED_BYTES) {
                        Ok(records) => records,
                        Err(e) => {
                            tracing::warn!("skipping a batch of {OFFSETS_TOPIC}-{index}: {e}");
                            continue;
                        }
                    };
                    for record in records.iter().flatten() {
                        let Some(key) = record.key.and_then(records::decode_key) else { continue };
                        match key {
                            RecordKey::Offset { group, topic, partition } => {
                                let entry = offsets.entry(group.clone()).or_default();
                                match record.value.map(records::decode_offset_value) {
                                    Some(Some(value)) => {
                                        entry.insert((topic, partition), value);
                                    }
                                    Some(None) => tracing::warn!("unreadable offset of group {group}"),
                                    None => {
                                        entry.remove(&(topic, partition));
                                    }
                                }
                            }
                            RecordKey::Group { group } => match record.value.map(records::decode_group_value)
                            {
                                Some(Some(value)) => {
                                    groups.insert(group, Some(value));
                                }
                                Some(None) => tracing::warn!("unreadable metadata of group {group}"),
                                None => {
                                    groups.insert(group, None);
                                }
                            },
                            RecordKey::Consumer(key) => {
                                let replay = consumer.entry(key.group().to_string()).or_default();
                                if !replay.apply(&key, record.value) {
                                    tracing::warn!("unreadable consumer group record of {}", key.group());
                                }
                            }
                        }
                    }
                }
            }
            if !advanced {
                break;
            }
        }
        // A group exists if its metadata is not tombstoned, or if it has offsets.
        let mut loaded = 0;
        let mut map = self.groups.borrow_mut();
        let mut ids: BTreeSet<String> = groups.keys().cloned().collect();
        ids.extend(offsets.keys().cloned());
        ids.extend(consumer.keys().cloned());
        for id in ids {
            let value = groups.get(&id).cloned().flatten();
            let group_offsets = offsets.remove(&id).unwrap_or_default();
            let consumer_group = consumer.remove(&id).and_then(|r| r.into_group(session_timeout_ms));
            if value.is_none() && group_offsets.is_empty() && consumer_group.is_none() {
                continue;
            }
            let mut group = Group::new(&id, index, log.clone(), delay_ms);
            match consumer_group {
                Some(cg) => group.consumer = Some(cg),
                None => {
                    if let Some(value) = &value {
                        group.restore(value);
                    }
                }
            }
            group.offsets = group_offsets;
            let group = Rc::new(RefCell::new(group));
            consumer_coordinator::start_loaded_timers(&group);
            map.insert(id, group);
            loaded += 1;
        }
        loaded
    }

    /// The group if it exists, after the coordinator checks.
    async fn lookup(
        &self,
        shard: &Shard,
        group_id: &str,
    ) -> Result<(i32, Rc<Partition>, Option<GroupRef>), i16> {
        let index = self.route(shard, group_id)?;
        let log = self.ensure_loaded(shard, index).await?;
        Ok((index, log, self.groups.borrow().get(group_id).cloned()))
    }

    fn create_group(&self, shard: &Shard, group_id: &str, index: i32, log: Rc<Partition>) -> GroupRef {
        let delay_ms = shard.config.group_initial_rebalance_delay_ms as i64;
        self.groups
            .borrow_mut()
            .entry(group_id.to_string())
            .or_insert_with(|| Rc::new(RefCell::new(Group::new(group_id, index, log, delay_ms))))
            .clone()
    }

    // ---- membership ------------------------------------------------------------------------

    pub async fn join_group(&self, shard: &Shard, group_id: &str, req: JoinRequest) -> JoinResult {
        if group_id.is_empty() {
            return JoinResult::error(&req.member_id, code::INVALID_GROUP_ID);
        }
        let (index, log, group) = match self.lookup(shard, group_id).await {
            Ok(found) => found,
            Err(error) => return JoinResult::error(&req.member_id, error),
        };
        let min = shard.config.group_min_session_timeout_ms;
        let max = shard.config.group_max_session_timeout_ms;
        if req.session_timeout_ms < min || req.session_timeout_ms > max {
            return JoinResult::error(&req.member_id, code::INVALID_SESSION_TIMEOUT);
        }
        let group = match group {
            Some(group) => group,
            None if req.member_id.is_empty() => self.create_group(shard, group_id, index, log),
            None => return JoinResult::error(&req.member_id, code::UNKNOWN_MEMBER_ID),
        };
        // A classic member and a KIP-848 group: an empty consumer group becomes classic (as in
        // Kafka 4); one with consumer-protocol members refuses classic members here.
        let consumer_members = group.borrow().consumer.as_ref().map(|cg| cg.members.len());
        match consumer_members {
            Some(0) => {
                let log = group.borrow().log.clone();
                if let Err(e) = append(&log, consumer_coordinator::group_tombstones(group_id)).await {
                    return JoinResult::error(&req.member_id, group_store_error(e));
                }
                group.borrow_mut().consumer = None;
            }
            Some(_) => return JoinResult::error(&req.member_id, code::INCONSISTENT_GROUP_PROTOCOL),
            None => {}
        }
        let outcome = if req.member_id.is_empty() {
            state::join_new_member(&group, &req)
        } else {
            state::join_known_member(&group, &req)
        };
        if group.borrow().state == GroupState::PreparingRebalance {
            state::try_complete_join(&group);
        }
        match outcome {
            JoinOutcome::Now(result) => result,
            JoinOutcome::Wait(slot) => {
                let max = req.rebalance_timeout_ms.max(0) as u64
                    + shard.config.group_initial_rebalance_delay_ms.max(0) as u64
                    + WAIT_SLACK_MS;
                match wait_for(shard, &slot, Duration::from_millis(max)).await {
                    Some(result) => result,
                    None => JoinResult::error(&req.member_id, waited_out_error(shard)),
                }
            }
            JoinOutcome::StoreThen(result, value) => {
                let log = group.borrow().log.clone();
                match store_group(&log, group_id, Some(&value)).await {
                    Ok(()) => result,
                    Err(error) => JoinResult::error(&result.member_id, error),
                }
            }
        }
    }

    pub async fn sync_group(&self, shard: &Shard, group_id: &str, req: SyncRequest) -> SyncResult {
        if group_id.is_empty() {
            return SyncResult::error(code::INVALID_GROUP_ID);
        }
        let group = match self.lookup(shard, group_id).await {
            Ok((_, _, Some(group))) => group,
            Ok((_, _, None)) => return SyncResult::error(code::UNKNOWN_MEMBER_ID),
            Err(error) => return SyncResult::error(error),
        };
        let generation = req.generation;
        let waiter = match state::sync(&group, req) {
            SyncOutcome::Now(result) => return result,
            SyncOutcome::Wait(waiter) => waiter,
            SyncOutcome::LeaderStore { waiter, value, assignments } => {
                let log = group.borrow().log.clone();
                let stored = match store_group(&log, group_id, Some(&value)).await {
                    Ok(()) => code::NONE,
                    Err(error) => error,
                };
                state::finish_leader_sync(&group, generation, assignments, stored);
                waiter
            }
        };
        let max =
            group.borrow().members.iter().map(|m| m.rebalance_timeout_ms.max(0) as u64).max().unwrap_or(0)
                + WAIT_SLACK_MS;
        match wait_for(shard, &waiter, Duration::from_millis(max)).await {
            Some(result) => result,
            None => SyncResult::error(waited_out_error(shard)),
        }
    }

    pub async fn heartbeat(
        &self,
        shard: &Shard,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        if group_id.is_empty() {
            return code::INVALID_GROUP_ID;
        }
        match self.lookup(shard, group_id).await {
            Ok((_, _, Some(group))) => state::heartbeat(&group, member_id, instance_id, generation),
            Ok((_, _, None)) => code::UNKNOWN_MEMBER_ID,
            Err(error) => error,
        }
    }

    /// LeaveGroup: a top-level error, or one error per `(member id, instance id)`.
    pub async fn leave_group(
        &self,
        shard: &Shard,
        group_id: &str,
        members: &[(String, Option<String>)],
    ) -> Result<Vec<i16>, i16> {
        if group_id.is_empty() {
            return Err(code::INVALID_GROUP_ID);
        }
        match self.lookup(shard, group_id).await? {
            (_, _, None) => Ok(vec![code::UNKNOWN_MEMBER_ID; members.len()]),
            (_, _, Some(group)) => {
                if group.borrow().state == GroupState::Dead {
                    return Err(code::COORDINATOR_NOT_AVAILABLE);
                }
                Ok(members
                    .iter()
                    .map(|(member, instance)| state::leave(&group, member, instance.as_deref()))
                    .collect())
            }
        }
    }

    // ---- offsets ---------------------------------------------------------------------------

    /// OffsetCommit with Kafka 3.7's checks: members commit for their generation; a commit with
    /// generation -1 and no member id (admin tools, manual assignment) only while the group has
    /// no members.
    pub async fn commit_offsets(
        &self,
        shard: &Shard,
        group_id: &str,
        committer: Committer<'_>,
        topics: CommitTopics,
    ) -> PartitionErrors {
        let Committer { generation, member_id, instance_id, version } = committer;
        let all = |error: i16| -> PartitionErrors {
            topics.iter().map(|(t, ps)| (t.clone(), ps.iter().map(|p| (p.0, error)).collect())).collect()
        };
        let (index, log, group) = match self.lookup(shard, group_id).await {
            Ok(found) => found,
            Err(error) => return all(error),
        };
        let group = match group {
            Some(group) => group,
            None if generation < 0 => self.create_group(shard, group_id, index, log),
            None => return all(code::ILLEGAL_GENERATION),
        };
        // Kafka's validateOffsetCommit, then the state.
        let checked = {
            let grp = group.borrow();
            if grp.state == GroupState::Dead {
                Err(code::COORDINATOR_NOT_AVAILABLE)
            } else if let Some(cg) = &grp.consumer {
                // Kafka's ConsumerGroup.validateOffsetCommit: without an epoch only while the
                // group has no members; else the member's current epoch, exactly.
                if generation < 0 && cg.members.is_empty() {
                    Ok(())
                } else {
                    match cg.members.get(member_id) {
                        None => Err(code::UNKNOWN_MEMBER_ID),
                        // Member epochs came with v9; an older version cannot carry one.
                        Some(_) if version < 9 => Err(code::UNSUPPORTED_VERSION),
                        Some(m) if generation > m.member_epoch => Err(code::FENCED_MEMBER_EPOCH),
                        Some(m) if generation < m.member_epoch => Err(code::STALE_MEMBER_EPOCH),
                        Some(_) => Ok(()),
                    }
                }
            } else if generation >= 0 || !member_id.is_empty() || instance_id.is_some() {
                grp.validate_member(member_id, instance_id).and_then(|()| {
                    if generation != grp.generation {
                        Err(code::ILLEGAL_GENERATION)
                    } else {
                        Ok(())
                    }
                })
            } else if grp.state != GroupState::Empty {
                Err(code::UNKNOWN_MEMBER_ID)
            } else {
                Ok(())
            }
            .and_then(|()| match grp.state {
                GroupState::CompletingRebalance => Err(code::REBALANCE_IN_PROGRESS),
                _ => Ok(()),
            })
        };
        if let Err(error) = checked {
            return all(error);
        }
        if matches!(group.borrow().state, GroupState::Stable | GroupState::PreparingRebalance) {
            state::reset_heartbeat(&group, member_id);
        }
        let now = now_ms();
        let mut results: PartitionErrors = Vec::with_capacity(topics.len());
        let mut to_store: Vec<(String, i32, OffsetValue)> = Vec::new();
        for (topic, partitions) in topics {
            let mut topic_results = Vec::with_capacity(partitions.len());
            for (partition, offset, leader_epoch, metadata) in partitions {
                let exists = shard.with_image(|image| {
                    image.topic(&topic).is_some_and(|t| t.partitions.iter().any(|p| p.partition == partition))
                });
                let metadata = metadata.unwrap_or_default();
                let error = if !exists {
                    code::UNKNOWN_TOPIC_OR_PARTITION
                } else if metadata.len() > OFFSET_METADATA_MAX_BYTES {
                    code::OFFSET_METADATA_TOO_LARGE
                } else {
                    let value = OffsetValue { offset, leader_epoch, metadata, commit_timestamp_ms: now };
                    to_store.push((topic.clone(), partition, value));
                    code::NONE
                };
                topic_results.push((partition, error));
            }
            results.push((topic, topic_results));
        }
        if to_store.is_empty() {
            return results;
        }
        let log = group.borrow().log.clone();
        let batch: Vec<(Vec<u8>, Option<Vec<u8>>)> = to_store
            .iter()
            .map(|(t, p, v)| (records::offset_key(group_id, t, *p), Some(records::offset_value(v))))
            .collect();
        let stored = append(&log, batch).await.map_err(commit_error);
        match stored {
            Ok(()) => {
                let mut grp = group.borrow_mut();
                for (topic, partition, value) in to_store {
                    grp.offsets.insert((topic, partition), value);
                }
                drop(grp);
                // A group deleted while the commit was written comes back with these offsets,
                // as the log (replayed) would have it.
                self.groups.borrow_mut().entry(group_id.to_string()).or_insert(group);
            }
            Err(error) => {
                for (_, partitions) in &mut results {
                    for (_, e) in partitions.iter_mut() {
                        if *e == code::NONE {
                            *e = error;
                        }
                    }
                }
            }
        }
        results
    }

    /// OffsetFetch for one group: `None` topics = every committed offset of the group.
    pub async fn fetch_offsets(
        &self,
        shard: &Shard,
        group_id: &str,
        topics: Option<Vec<(String, Vec<i32>)>>,
        member: Option<(&str, i32)>,
    ) -> Result<Vec<(String, Vec<FetchedOffset>)>, i16> {
        let (_, _, group) = self.lookup(shard, group_id).await?;
        // OffsetFetch v9 from a KIP-848 member: Kafka's ConsumerGroup.validateOffsetFetch.
        if let (Some((member_id, epoch)), Some(g)) = (member, &group) {
            if let Some(cg) = &g.borrow().consumer {
                match cg.members.get(member_id) {
                    None => return Err(code::UNKNOWN_MEMBER_ID),
                    Some(m) if epoch > m.member_epoch => return Err(code::FENCED_MEMBER_EPOCH),
                    Some(m) if epoch < m.member_epoch => return Err(code::STALE_MEMBER_EPOCH),
                    Some(_) => {}
                }
            }
        }
        let fetched = |offsets: Option<&HashMap<(String, i32), OffsetValue>>, topic: &str, partition: i32| {
            match offsets.and_then(|o| o.get(&(topic.to_string(), partition))) {
                Some(v) => FetchedOffset {
                    partition,
                    offset: v.offset,
                    leader_epoch: v.leader_epoch,
                    metadata: v.metadata.clone(),
                    error: code::NONE,
                },
                None => FetchedOffset {
                    partition,
                    offset: -1,
                    leader_epoch: -1,
                    metadata: String::new(),
                    error: code::NONE,
                },
            }
        };
        let grp = group.as_ref().map(|g| g.borrow());
        let offsets = grp.as_ref().map(|g| &g.offsets);
        Ok(match topics {
            Some(topics) => topics
                .into_iter()
                .map(|(topic, partitions)| {
                    let list = partitions.iter().map(|p| fetched(offsets, &topic, *p)).collect();
                    (topic, list)
                })
                .collect(),
            None => {
                let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
                for (topic, partition) in offsets.into_iter().flat_map(|o| o.keys()) {
                    by_topic.entry(topic.clone()).or_default().push(*partition);
                }
                by_topic
                    .into_iter()
                    .map(|(topic, mut partitions)| {
                        partitions.sort_unstable();
                        let list = partitions.iter().map(|p| fetched(offsets, &topic, *p)).collect();
                        (topic, list)
                    })
                    .collect()
            }
        })
    }

    /// OffsetDelete: a top-level error, or per-partition errors.
    pub async fn delete_offsets(
        &self,
        shard: &Shard,
        group_id: &str,
        topics: Vec<(String, Vec<i32>)>,
    ) -> Result<PartitionErrors, i16> {
        if group_id.is_empty() {
            return Err(code::INVALID_GROUP_ID);
        }
        let group = self.lookup(shard, group_id).await?.2.ok_or(code::GROUP_ID_NOT_FOUND)?;
        let subscribed = {
            let grp = group.borrow();
            match grp.state {
                GroupState::Dead => return Err(code::GROUP_ID_NOT_FOUND),
                GroupState::Empty if grp.consumer.as_ref().is_some_and(|cg| !cg.members.is_empty()) => {
                    let cg = grp
                        .consumer
                        .as_ref()
                        .map(|cg| consumer_coordinator::subscribed_topic_names(shard, cg));
                    Some(cg.unwrap_or_default().into_iter().collect())
                }
                GroupState::Empty => None,
                _ if grp.protocol_type.as_deref() == Some("consumer") => {
                    Some(grp.subscribed_topics().unwrap_or_default())
                }
                _ => return Err(code::NON_EMPTY_GROUP),
            }
        };
        let mut results: PartitionErrors = Vec::with_capacity(topics.len());
        let mut deletable: Vec<(String, i32)> = Vec::new();
        for (topic, partitions) in topics {
            let exists = shard.with_image(|image| image.topic(&topic).is_some());
            let errors = partitions
                .into_iter()
                .map(|p| {
                    let error = if !exists {
                        code::UNKNOWN_TOPIC_OR_PARTITION
                    } else if subscribed.as_ref().is_some_and(|s| s.contains(&topic)) {
                        code::GROUP_SUBSCRIBED_TO_TOPIC
                    } else {
                        deletable.push((topic.clone(), p));
                        code::NONE
                    };
                    (p, error)
                })
                .collect();
            results.push((topic, errors));
        }
        let present: Vec<(String, i32)> = {
            let grp = group.borrow();
            deletable.into_iter().filter(|k| grp.offsets.contains_key(k)).collect()
        };
        if !present.is_empty() {
            let log = group.borrow().log.clone();
            let tombstones =
                present.iter().map(|(t, p)| (records::offset_key(group_id, t, *p), None)).collect();
            append(&log, tombstones).await.map_err(group_store_error)?;
            let mut grp = group.borrow_mut();
            for key in &present {
                grp.offsets.remove(key);
            }
        }
        self.remove_if_unused(group_id, &group).await;
        Ok(results)
    }

    /// Kafka removes an empty group once it has no offsets left (and never had a generation).
    async fn remove_if_unused(&self, group_id: &str, group: &GroupRef) {
        let unused = {
            let grp = group.borrow();
            grp.state == GroupState::Empty
                && grp.consumer.is_none()
                && grp.offsets.is_empty()
                && grp.generation == 0
                && grp.pending_members.is_empty()
        };
        if unused {
            let log = group.borrow().log.clone();
            if store_group(&log, group_id, None).await.is_ok() {
                group.borrow_mut().state = GroupState::Dead;
                self.groups.borrow_mut().remove(group_id);
            }
        }
    }

    // ---- administration --------------------------------------------------------------------

    /// ListGroups: the groups this shard coordinates (admin clients ask every node).
    /// `(group id, protocol type, state, group type)` of the groups whose state is in `states`
    /// and type in `types` (empty: any).
    pub async fn list_groups(
        &self,
        shard: &Shard,
        states: &[String],
        types: &[String],
    ) -> Result<Vec<(String, String, &'static str, &'static str)>, i16> {
        let led: Vec<i32> = shard.with_image(|image| {
            image
                .topic(OFFSETS_TOPIC)
                .map(|t| {
                    t.partitions
                        .iter()
                        .filter(|p| p.leader == shard.spec.node_id)
                        .map(|p| p.partition)
                        .collect()
                })
                .unwrap_or_default()
        });
        for index in led {
            self.ensure_loaded(shard, index).await?;
        }
        let groups = self.groups.borrow();
        let mut listed: Vec<(String, String, &'static str, &'static str)> = groups
            .values()
            .map(|g| {
                let g = g.borrow();
                match &g.consumer {
                    Some(cg) => (g.id.clone(), "consumer".to_string(), cg.state().name(), "consumer"),
                    None => {
                        (g.id.clone(), g.protocol_type.clone().unwrap_or_default(), g.state.name(), "classic")
                    }
                }
            })
            .filter(|(_, _, state, _)| {
                states.is_empty() || states.iter().any(|s| s.eq_ignore_ascii_case(state))
            })
            .filter(|(_, _, _, kind)| types.is_empty() || types.iter().any(|t| t.eq_ignore_ascii_case(kind)))
            .collect();
        listed.sort();
        Ok(listed)
    }

    /// Up to `max` committed offsets of the groups loaded on this shard, `(group, topic,
    /// partition, offset)`: what consumer-lag metrics compare with the partitions' ends.
    pub fn committed_offsets(&self, max: usize) -> Vec<(String, String, i32, i64)> {
        let groups = self.groups.borrow();
        let mut out = Vec::new();
        for group in groups.values() {
            let group = group.borrow();
            for ((topic, partition), value) in &group.offsets {
                if out.len() >= max {
                    return out;
                }
                out.push((group.id.clone(), topic.clone(), *partition, value.offset));
            }
        }
        out
    }

    pub async fn describe_group(&self, shard: &Shard, group_id: &str) -> GroupDescription {
        let dead = |error: i16| GroupDescription {
            error,
            state: GroupState::Dead.name(),
            protocol_type: String::new(),
            protocol: String::new(),
            members: Vec::new(),
        };
        let group = match self.lookup(shard, group_id).await {
            Ok((_, _, Some(group))) => group,
            Ok((_, _, None)) => return dead(code::NONE),
            Err(error) => return dead(error),
        };
        let grp = group.borrow();
        if grp.consumer.is_some() {
            // Kafka 4: DescribeGroups describes classic groups only; before v6 a group of
            // another type reads as Dead (ConsumerGroupDescribe describes it).
            return dead(code::NONE);
        }
        let stable = grp.state == GroupState::Stable;
        let protocol = if stable { grp.protocol.clone().unwrap_or_default() } else { String::new() };
        GroupDescription {
            error: code::NONE,
            state: grp.state.name(),
            protocol_type: grp.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: grp
                .members
                .iter()
                .map(|m| {
                    let (metadata, assignment) = if stable {
                        (m.metadata(&protocol), m.assignment.clone())
                    } else {
                        (Bytes::new(), Bytes::new())
                    };
                    (
                        m.id.clone(),
                        m.instance_id.clone(),
                        m.client_id.clone(),
                        m.client_host.clone(),
                        metadata,
                        assignment,
                    )
                })
                .collect(),
        }
    }

    /// DeleteGroups for one group: only an empty group can go; its offsets and metadata are
    /// tombstoned.
    pub async fn delete_group(&self, shard: &Shard, group_id: &str) -> i16 {
        let group = match self.lookup(shard, group_id).await {
            Ok((_, _, Some(group))) => group,
            Ok((_, _, None)) => return code::GROUP_ID_NOT_FOUND,
            Err(error) => return error,
        };
        let (log, tombstones) = {
            let grp = group.borrow();
            match grp.state {
                GroupState::Dead => return code::GROUP_ID_NOT_FOUND,
                _ if grp.consumer.as_ref().is_some_and(|cg| !cg.members.is_empty()) => {
                    return code::NON_EMPTY_GROUP
                }
                GroupState::Empty if grp.pending_members.is_empty() => {}
                _ => return code::NON_EMPTY_GROUP,
            }
            let mut tombstones: Vec<(Vec<u8>, Option<Vec<u8>>)> =
                grp.offsets.keys().map(|(t, p)| (records::offset_key(group_id, t, *p), None)).collect();
            match grp.consumer {
                Some(_) => tombstones.extend(consumer_coordinator::group_tombstones(group_id)),
                None => tombstones.push((records::group_key(group_id), None)),
            }
            (grp.log.clone(), tombstones)
        };
        group.borrow_mut().state = GroupState::Dead;
        self.groups.borrow_mut().remove(group_id);
        match append(&log, tombstones).await {
            Ok(()) => code::NONE,
            Err(e) => {
                // Not deleted after all: put it back as it was.
                group.borrow_mut().state = GroupState::Empty;
                self.groups.borrow_mut().entry(group_id.to_string()).or_insert(group);
                group_store_error(e)
            }
        }
    }
}

/// A parked JoinGroup/SyncGroup's answer, or `None` when `max` passed or the shard is stopping.
async fn wait_for<T>(shard: &Shard, slot: &Slot<T>, max: Duration) -> Option<T> {
    let stopped = async {
        loop {
            let stop = shard.listen_for_stop();
            if shard.is_stopping() {
                return None;
            }
            stop.await;
        }
    };
    futures_lite::future::or(slot.wait(max), stopped).await
}

/// A parked JoinGroup/SyncGroup that outlived every timer: rejoin; the broker is stopping:
/// find the coordinator again.
fn waited_out_error(shard: &Shard) -> i16 {
    if shard.is_stopping() {
        code::NOT_COORDINATOR
    } else {
        code::REBALANCE_IN_PROGRESS
    }
}

/// Creates `__consumer_offsets` through the controller (compacted; replication factor 1 while
/// the cluster is one broker). Another shard creating it at the same time is fine.
pub async fn create_offsets_topic(shard: &Shard) -> Result<(), i16> {
    let topic = NewTopic {
        name: OFFSETS_TOPIC.to_string(),
        num_partitions: shard.config.offsets_topic_num_partitions.max(1),
        replication_factor: 1,
        assignments: Vec::new(),
        configs: vec![
            ("cleanup.policy".to_string(), Some("compact".to_string())),
            ("compression.type".to_string(), Some("producer".to_string())),
            ("segment.bytes".to_string(), Some(shard.config.offsets_topic_segment_bytes.to_string())),
        ],
    };
    let request =
        ControlRequest::CreateTopics(CreateTopicsRequest { topics: vec![topic], validate_only: false });
    match shard.control.request(request).await {
        Ok(ControlReply { response: ControlResponse::CreateTopics(results), .. }) => {
            for r in &results {
                if !r.error.is_ok() && r.error.code != KafkaError::TopicAlreadyExists.code() {
                    tracing::warn!("creating {OFFSETS_TOPIC} failed: {:?}", r.error);
                    return Err(code::COORDINATOR_NOT_AVAILABLE);
                }
            }
            tracing::info!("created {OFFSETS_TOPIC}");
            Ok(())
        }
        Ok(_) => Err(code::COORDINATOR_NOT_AVAILABLE),
        Err(e) => {
            tracing::warn!("creating {OFFSETS_TOPIC}: {e}");
            Err(code::COORDINATOR_NOT_AVAILABLE)
        }
    }
}

/// Appends `(key, value)` records (value `None` = tombstone) as one batch and returns once the
/// log has them.
async fn append(log: &Partition, entries: Vec<(Vec<u8>, Option<Vec<u8>>)>) -> Result<(), KafkaError> {
    let now = now_ms();
    let mut builder = RecordBatchBuilder::new(0, Compression::None);
    for (key, value) in &entries {
        builder.push(now, Some(key), value.as_deref(), &[]).map_err(|_| KafkaError::RecordListTooLarge)?;
    }
    let batch = builder.build().map_err(|_| KafkaError::RecordListTooLarge)?;
    log.append(Bytes::from(batch), now).await.map(|_| ())
}

/// Stores group metadata (`None`: the group's tombstone).
pub(crate) async fn store_group(
    log: &Partition,
    group_id: &str,
    value: Option<&GroupValue>,
) -> Result<(), i16> {
    append(log, vec![(records::group_key(group_id), value.map(records::group_value))])
        .await
        .map_err(group_store_error)
}

/// Kafka's mapping of a failed group-metadata append (`GroupMetadataManager.storeGroup`).
fn group_store_error(e: KafkaError) -> i16 {
    match e {
        KafkaError::UnknownTopicOrPartition
        | KafkaError::NotEnoughReplicas
        | KafkaError::NotEnoughReplicasAfterAppend => code::COORDINATOR_NOT_AVAILABLE,
        KafkaError::NotLeaderOrFollower | KafkaError::KafkaStorageError => code::NOT_COORDINATOR,
        KafkaError::RequestTimedOut => code::REBALANCE_IN_PROGRESS,
        KafkaError::MessageTooLarge | KafkaError::RecordListTooLarge => code::UNKNOWN_SERVER_ERROR,
        other => other.code(),
    }
}

/// Kafka's mapping of a failed offset-commit append (`GroupMetadataManager.storeOffsets`).
fn commit_error(e: KafkaError) -> i16 {
    match e {
        KafkaError::MessageTooLarge | KafkaError::RecordListTooLarge => code::INVALID_COMMIT_OFFSET_SIZE,
        other => group_store_error(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_hash_code_matches_java() {
        // Values from Java's "...".hashCode().
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("hello"), 99_162_322);
        assert_eq!(java_string_hash("my-group"), -1_906_497_762);
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        // Non-BMP characters count as two UTF-16 units: "😀" is \uD83D\uDE00.
        assert_eq!(java_string_hash("😀"), 1_772_899);
    }

    #[test]
    fn partition_for_is_kafkas() {
        assert_eq!(partition_for("polygenelubricants", 50), 0, "Utils.abs(MIN_VALUE) is 0");
        assert_eq!(partition_for("hello", 50), 99_162_322 % 50);
        // A negative hash is taken by absolute value: "my-group".hashCode() = -1906497762.
        assert_eq!(partition_for("my-group", 50), 12);
        for g in ["a", "group-1", "ünïcödé"] {
            assert!((0..50).contains(&partition_for(g, 50)));
        }
    }
}
