//! ConsumerGroupHeartbeat and ConsumerGroupDescribe (KIP-848) on the group coordinator, after
//! Kafka 4's `GroupMetadataManager.consumerGroupHeartbeat`: validate, find or create the group
//! and the member, record what changed, bump the group epoch, recompute the target assignment
//! with the server assignor, reconcile the member, and answer — after the records describing
//! the change are in `__consumer_offsets`.
//!
//! A KIP-848 group is a [`Group`] whose `consumer` is `Some`: it shares the committed offsets,
//! placement and loading with classic groups. Session expiry is one glommio task per member
//! (as for classic members); it re-reads the member when it wakes, so a stale timer is a no-op.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::time::Duration;

use super::consumer::{
    normalized, Assignor, ConsumerGroup, ConsumerMember, MemberState, TopicsMetadata, LEAVE_EPOCH,
    STATIC_LEAVE_EPOCH,
};
use super::consumer_records::{
    self as cr, Assignment, ConsumerKey, CurrentAssignmentValue, MemberMetadataValue,
};
use super::state::{GroupRef, GroupState};
use super::{append, code, group_store_error, GroupCoordinator, OFFSETS_TOPIC};
use crate::shard::{now_ms, Shard};

/// Longest a regular expression subscription may compile to (bytes of the compiled program):
/// the pattern comes from the network.
const REGEX_SIZE_MAX_BYTES: usize = 1 << 20;
/// Longest a session timer sleeps before re-reading its member (a revocation deadline set
/// meanwhile may be earlier than the session deadline it slept towards).
const TIMER_RECHECK_MS: i64 = 1_000;
/// Internal topics a regular expression never matches (Kafka excludes internal topics).
const INTERNAL_TOPICS: [&str; 2] = [OFFSETS_TOPIC, "__transaction_state"];

type Records = Vec<(Vec<u8>, Option<Vec<u8>>)>;

/// A ConsumerGroupHeartbeat, decoded.
#[derive(Debug, Clone)]
pub struct HeartbeatRequest {
    pub group_id: String,
    pub member_id: String,
    pub member_epoch: i32,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub subscribed_topic_names: Option<Vec<String>>,
    pub subscribed_topic_regex: Option<String>,
    pub server_assignor: Option<String>,
    /// The partitions the member owns, by topic id (`None`: unchanged since the last one).
    pub owned: Option<Assignment>,
    pub client_id: String,
    pub client_host: String,
    pub version: i16,
}

#[derive(Debug, Clone)]
pub struct HeartbeatResult {
    pub error: i16,
    pub message: Option<String>,
    pub member_id: Option<String>,
    pub member_epoch: i32,
    pub heartbeat_interval_ms: i32,
    /// `Some` when the member's assignment is (re)sent.
    pub assignment: Option<Assignment>,
}

impl HeartbeatResult {
    fn error(error: i16, message: impl Into<String>) -> HeartbeatResult {
        let message = message.into();
        HeartbeatResult {
            error,
            message: (!message.is_empty()).then_some(message),
            member_id: None,
            member_epoch: 0,
            heartbeat_interval_ms: 0,
            assignment: None,
        }
    }
}

/// One member as ConsumerGroupDescribe reports it (assignments with topic names).
pub struct DescribedMember {
    pub member: ConsumerMember,
    pub assignment: Vec<(cr::TopicId, String, Vec<i32>)>,
    pub target: Vec<(cr::TopicId, String, Vec<i32>)>,
}

pub struct DescribedConsumerGroup {
    pub error: i16,
    pub message: Option<String>,
    pub state: &'static str,
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub assignor: String,
    pub members: Vec<DescribedMember>,
}

type Failure = (i16, String);

/// Kafka's `throwIfConsumerGroupHeartbeatRequestIsInvalid`.
fn validate(req: &HeartbeatRequest, assignors: &[Assignor]) -> Result<(), Failure> {
    let invalid = |m: &str| Err((code::INVALID_REQUEST, m.to_string()));
    if req.group_id.is_empty() {
        return invalid("GroupId can't be empty.");
    }
    if req.instance_id.as_deref() == Some("") {
        return invalid("InstanceId can't be empty.");
    }
    if req.rack_id.as_deref() == Some("") {
        return invalid("RackId can't be empty.");
    }
    match req.member_epoch {
        0 => {
            if req.version >= 1 && req.member_id.is_empty() {
                return invalid("MemberId can't be empty.");
            }
            if req.rebalance_timeout_ms == -1 {
                return invalid("RebalanceTimeoutMs must be provided in first request.");
            }
            if req.owned.as_ref().is_none_or(|o| o.values().any(|ps| !ps.is_empty())) {
                return invalid("TopicPartitions must be empty when (re-)joining.");
            }
            if req.subscribed_topic_names.is_none() && req.subscribed_topic_regex.is_none() {
                return invalid("SubscribedTopicNames or SubscribedTopicRegex must be set in first request.");
            }
        }
        STATIC_LEAVE_EPOCH if req.instance_id.is_none() => {
            return invalid("InstanceId can't be null when leaving as a static member.");
        }
        epoch if epoch < STATIC_LEAVE_EPOCH => return invalid("MemberEpoch is invalid."),
        _ if req.member_id.is_empty() => return invalid("MemberId can't be empty."),
        _ => {}
    }
    if let Some(assignor) = &req.server_assignor {
        if !Assignor::parse(assignor).is_some_and(|a| assignors.contains(&a)) {
            return Err((code::UNSUPPORTED_ASSIGNOR, format!("ServerAssignor {assignor} is not supported.")));
        }
    }
    if let Some(regex) = &req.subscribed_topic_regex {
        compile_regex(regex)
            .map_err(|e| (code::INVALID_REGULAR_EXPRESSION, format!("SubscribedTopicRegex {regex}: {e}")))?;
    }
    Ok(())
}

/// A subscription pattern, matched against whole topic names (Kafka uses RE2/J `matches`).
fn compile_regex(pattern: &str) -> Result<regex::Regex, regex::Error> {
    regex::RegexBuilder::new(&format!("^(?:{pattern})$")).size_limit(REGEX_SIZE_MAX_BYTES).build()
}

fn member_record(group: &str, m: &ConsumerMember) -> (Vec<u8>, Option<Vec<u8>>) {
    let key = ConsumerKey::Member { group: group.to_string(), member: m.id.clone() };
    let value = MemberMetadataValue {
        instance_id: m.instance_id.clone(),
        rack_id: m.rack_id.clone(),
        client_id: m.client_id.clone(),
        client_host: m.client_host.clone(),
        subscribed_topic_names: m.subscribed_topic_names.clone(),
        subscribed_topic_regex: m.subscribed_topic_regex.clone(),
        rebalance_timeout_ms: m.rebalance_timeout_ms,
        server_assignor: m.server_assignor.clone(),
    };
    (key.encode(), Some(cr::member_value(&value)))
}

fn current_record(group: &str, m: &ConsumerMember) -> (Vec<u8>, Option<Vec<u8>>) {
    let key = ConsumerKey::CurrentAssignment { group: group.to_string(), member: m.id.clone() };
    let value = CurrentAssignmentValue {
        member_epoch: m.member_epoch,
        previous_member_epoch: m.previous_member_epoch,
        state: m.state.value(),
        assigned: m.assigned.clone(),
        pending_revocation: m.pending_revocation.clone(),
    };
    (key.encode(), Some(cr::current_assignment_value(&value)))
}

fn target_record(group: &str, member: &str, a: &Assignment) -> (Vec<u8>, Option<Vec<u8>>) {
    let key = ConsumerKey::TargetMember { group: group.to_string(), member: member.to_string() };
    (key.encode(), Some(cr::target_member_value(a)))
}

fn epoch_record(group: &str, epoch: i32) -> (Vec<u8>, Option<Vec<u8>>) {
    (ConsumerKey::Metadata { group: group.to_string() }.encode(), Some(cr::epoch_value(epoch)))
}

fn assignment_epoch_record(group: &str, epoch: i32) -> (Vec<u8>, Option<Vec<u8>>) {
    (ConsumerKey::TargetMetadata { group: group.to_string() }.encode(), Some(cr::epoch_value(epoch)))
}

/// The tombstones that delete an empty consumer group's own records.
pub(super) fn group_tombstones(group: &str) -> Records {
    vec![
        (ConsumerKey::TargetMetadata { group: group.to_string() }.encode(), None),
        (ConsumerKey::Metadata { group: group.to_string() }.encode(), None),
    ]
}

/// Kafka's member removal (leave or fence): its records are tombstoned and the group epoch
/// bumps, so the others' target is recomputed on their next heartbeat.
fn remove_member(cg: &mut ConsumerGroup, group: &str, member_id: &str, records: &mut Records) {
    if cg.members.remove(member_id).is_none() {
        return;
    }
    cg.target.remove(member_id);
    for key in [
        ConsumerKey::CurrentAssignment { group: group.to_string(), member: member_id.to_string() },
        ConsumerKey::TargetMember { group: group.to_string(), member: member_id.to_string() },
        ConsumerKey::Member { group: group.to_string(), member: member_id.to_string() },
    ] {
        records.push((key.encode(), None));
    }
    cg.group_epoch += 1;
    records.push(epoch_record(group, cg.group_epoch));
}

/// Each member's subscribed topic names (regexes resolved against the image), and the
/// metadata of every subscribed topic that exists.
fn subscriptions(shard: &Shard, cg: &ConsumerGroup) -> (BTreeMap<String, BTreeSet<String>>, TopicsMetadata) {
    shard.with_image(|image| {
        let mut subs: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        let mut topics = TopicsMetadata::new();
        for (id, m) in &cg.members {
            let mut names: BTreeSet<String> = m.subscribed_topic_names.iter().cloned().collect();
            if let Some(re) = &m.compiled_regex {
                names.extend(
                    image
                        .topics()
                        .filter(|t| !INTERNAL_TOPICS.contains(&t.name.as_str()) && re.is_match(&t.name))
                        .map(|t| t.name.clone()),
                );
            }
            for name in &names {
                if let Some(t) = image.topic(name) {
                    topics.insert(name.clone(), (t.topic_id, t.partitions.len() as i32));
                }
            }
            subs.insert(id.clone(), names);
        }
        (subs, topics)
    })
}

/// What one heartbeat did, once its records are stored.
struct Outcome {
    member_id: String,
    member_epoch: i32,
    assignment: Option<Assignment>,
    /// A member whose session timer must start.
    timer: Option<(String, u64)>,
}

impl GroupCoordinator {
    pub async fn consumer_heartbeat(&self, shard: &Shard, req: HeartbeatRequest) -> HeartbeatResult {
        let config = &shard.config;
        let default_assignor = config.group_consumer_assignors.first().copied().unwrap_or(Assignor::Uniform);
        if let Err((error, message)) = validate(&req, &config.group_consumer_assignors) {
            return HeartbeatResult::error(error, message);
        }
        let (index, log, group) = match self.lookup(shard, &req.group_id).await {
            Ok(found) => found,
            Err(error) => return HeartbeatResult::error(error, ""),
        };
        let group = match group {
            Some(group) => group,
            None if req.member_epoch == 0 => self.create_group(shard, &req.group_id, index, log),
            None => {
                let message = format!("Group {} not found.", req.group_id);
                return HeartbeatResult::error(code::GROUP_ID_NOT_FOUND, message);
            }
        };
        let mut records: Records = Vec::new();
        // What the group was, to undo this heartbeat if its records cannot be stored (Kafka
        // reverts the in-memory state of a failed write the same way).
        let snapshot = group.borrow().consumer.clone();
        let (outcome, version) = {
            let mut grp = group.borrow_mut();
            if grp.state == GroupState::Dead {
                return HeartbeatResult::error(code::COORDINATOR_NOT_AVAILABLE, "");
            }
            if grp.consumer.is_none() {
                // Kafka turns an empty classic group (e.g. one that only holds offsets) into a
                // consumer group; one with classic members is not a consumer group.
                let empty = grp.state == GroupState::Empty
                    && grp.members.is_empty()
                    && grp.pending_members.is_empty();
                if !empty || req.member_epoch != 0 {
                    let message = format!("Group {} is not a consumer group.", req.group_id);
                    return HeartbeatResult::error(code::GROUP_ID_NOT_FOUND, message);
                }
                if grp.generation > 0 {
                    records.push((super::records::group_key(&req.group_id), None));
                }
                grp.consumer = Some(ConsumerGroup::default());
            }
            let Some(cg) = grp.consumer.as_mut() else {
                return HeartbeatResult::error(code::UNKNOWN_SERVER_ERROR, "");
            };
            match heartbeat_step(shard, cg, &req, default_assignor, &mut records) {
                Ok(outcome) => {
                    cg.version += 1;
                    (outcome, cg.version)
                }
                Err((error, message)) => {
                    grp.consumer = snapshot;
                    return HeartbeatResult::error(error, message);
                }
            }
        };
        if !records.is_empty() {
            let log = group.borrow().log.clone();
            if let Err(e) = append(&log, records).await {
                let mut grp = group.borrow_mut();
                if grp.consumer.as_ref().is_some_and(|cg| cg.version == version) {
                    grp.consumer = snapshot;
                }
                return HeartbeatResult::error(group_store_error(e), "");
            }
        }
        if let Some((member_id, incarnation)) = outcome.timer {
            start_session_timer(group.clone(), member_id, incarnation);
        }
        HeartbeatResult {
            error: code::NONE,
            message: None,
            member_id: Some(outcome.member_id),
            member_epoch: outcome.member_epoch,
            heartbeat_interval_ms: config.group_consumer_heartbeat_interval_ms,
            assignment: outcome.assignment,
        }
    }

    pub async fn consumer_describe(&self, shard: &Shard, group_id: &str) -> DescribedConsumerGroup {
        let fail = |error: i16, message: String| DescribedConsumerGroup {
            error,
            message: (!message.is_empty()).then_some(message),
            state: "Dead",
            group_epoch: -1,
            assignment_epoch: -1,
            assignor: String::new(),
            members: Vec::new(),
        };
        let group = match self.lookup(shard, group_id).await {
            Ok((_, _, Some(group))) => group,
            Ok((_, _, None)) => {
                return fail(code::GROUP_ID_NOT_FOUND, format!("Group {group_id} not found."))
            }
            Err(error) => return fail(error, String::new()),
        };
        let grp = group.borrow();
        let Some(cg) = grp.consumer.as_ref().filter(|_| grp.state != GroupState::Dead) else {
            return fail(code::GROUP_ID_NOT_FOUND, format!("Group {group_id} is not a consumer group."));
        };
        let default = shard.config.group_consumer_assignors.first().copied().unwrap_or(Assignor::Uniform);
        let named = |a: &Assignment| -> Vec<(cr::TopicId, String, Vec<i32>)> {
            shard.with_image(|image| {
                normalized(a)
                    .into_iter()
                    .map(|(t, ps)| {
                        let name = image.topic_by_id(&t).map(|t| t.name.clone()).unwrap_or_default();
                        (t, name, ps.into_iter().collect())
                    })
                    .collect()
            })
        };
        DescribedConsumerGroup {
            error: code::NONE,
            message: None,
            state: cg.state().name(),
            group_epoch: cg.group_epoch,
            assignment_epoch: cg.assignment_epoch,
            assignor: cg.preferred_assignor(default).name().to_string(),
            members: cg
                .members
                .values()
                .map(|m| DescribedMember {
                    member: m.clone(),
                    assignment: named(&m.assigned),
                    target: named(cg.target.get(&m.id).unwrap_or(&Assignment::new())),
                })
                .collect(),
        }
    }
}

/// One heartbeat against the group's state (no `.await`: the group stays borrowed).
fn heartbeat_step(
    shard: &Shard,
    cg: &mut ConsumerGroup,
    req: &HeartbeatRequest,
    default_assignor: Assignor,
    records: &mut Records,
) -> Result<Outcome, Failure> {
    let config = &shard.config;
    let group = req.group_id.as_str();
    let now = now_ms();
    // A static member is known by its instance id: another member id under it is fenced
    // (Kafka's throwIfStaticMemberIsUnknown / throwIfInstanceIdIsFenced).
    if let (Some(instance), true) = (req.instance_id.as_deref(), req.member_epoch != 0) {
        match cg.member_by_instance(instance) {
            None => {
                return Err((code::UNKNOWN_MEMBER_ID, format!("Instance id {instance} is unknown.")));
            }
            Some(m) if m.id != req.member_id => {
                let message = format!(
                    "Static member {} with instance id {instance} was fenced by member {}.",
                    req.member_id, m.id
                );
                return Err((code::FENCED_INSTANCE_ID, message));
            }
            Some(_) => {}
        }
    }
    if req.member_epoch == LEAVE_EPOCH || req.member_epoch == STATIC_LEAVE_EPOCH {
        let Some(m) = cg.members.get_mut(&req.member_id) else {
            return Err((
                code::UNKNOWN_MEMBER_ID,
                format!("Member {} is not a member of group {group}.", req.member_id),
            ));
        };
        if req.member_epoch == STATIC_LEAVE_EPOCH {
            // A static member leaving for a restart keeps its partitions until its session
            // expires; it comes back with the same instance id.
            m.member_epoch = STATIC_LEAVE_EPOCH;
            records.push(current_record(group, m));
        } else {
            remove_member(cg, group, &req.member_id, records);
        }
        return Ok(Outcome {
            member_id: req.member_id.clone(),
            member_epoch: req.member_epoch,
            assignment: None,
            timer: None,
        });
    }
    let member_id =
        if req.member_id.is_empty() { uuid::Uuid::new_v4().to_string() } else { req.member_id.clone() };
    let owned = req.owned.as_ref();
    let mut timer = None;
    let mut force_current_record = false;
    if req.member_epoch == 0 {
        let previous_static = req
            .instance_id
            .as_deref()
            .and_then(|i| cg.member_by_instance(i))
            .filter(|m| m.id != member_id)
            .map(|m| (m.id.clone(), m.member_epoch));
        if let Some((old_id, old_epoch)) = previous_static {
            if old_epoch != STATIC_LEAVE_EPOCH {
                let message = format!(
                    "Static member {member_id} with instance id {} cannot join the group because the instance id is owned by member {old_id}.",
                    req.instance_id.as_deref().unwrap_or_default()
                );
                return Err((code::UNRELEASED_INSTANCE_ID, message));
            }
            // The restarted static member takes over its previous incarnation's partitions
            // and target, without a rebalance.
            let incarnation = cg.next_incarnation();
            if let Some(mut m) = cg.members.remove(&old_id) {
                for key in [
                    ConsumerKey::CurrentAssignment { group: group.to_string(), member: old_id.clone() },
                    ConsumerKey::TargetMember { group: group.to_string(), member: old_id.clone() },
                    ConsumerKey::Member { group: group.to_string(), member: old_id.clone() },
                ] {
                    records.push((key.encode(), None));
                }
                m.id = member_id.clone();
                m.incarnation = incarnation;
                let target = cg.target.remove(&old_id).unwrap_or_default();
                records.push(target_record(group, &member_id, &target));
                cg.target.insert(member_id.clone(), target);
                cg.members.insert(member_id.clone(), m);
                timer = Some((member_id.clone(), incarnation));
                force_current_record = true;
            }
        } else if let Some(existing) = cg.members.get(&member_id) {
            // A known member joining again: a retry whose answer was lost keeps its state;
            // otherwise its earlier incarnation is gone and its partitions are released first.
            if existing.check_epoch(0, owned).is_err() {
                remove_member(cg, group, &member_id, records);
            }
        }
        if !cg.members.contains_key(&member_id) {
            if cg.members.len() >= config.group_consumer_max_size.max(0) as usize {
                let message = format!(
                    "The consumer group has reached its maximum capacity of {} members.",
                    config.group_consumer_max_size
                );
                return Err((code::GROUP_MAX_SIZE_REACHED, message));
            }
            let incarnation = cg.next_incarnation();
            cg.members.insert(member_id.clone(), ConsumerMember::new(&member_id, incarnation));
            timer = Some((member_id.clone(), incarnation));
        }
    } else {
        let Some(m) = cg.members.get(&member_id) else {
            return Err((
                code::UNKNOWN_MEMBER_ID,
                format!("Member {member_id} is not a member of group {group}."),
            ));
        };
        m.check_epoch(req.member_epoch, owned).map_err(|e| {
            (
                e,
                format!(
                    "The consumer group member has a greater or stale member epoch ({}) than expected ({}).",
                    req.member_epoch, m.member_epoch
                ),
            )
        })?;
    }
    let is_new = timer.as_ref().is_some_and(|_| !force_current_record);
    let Some(m) = cg.members.get_mut(&member_id) else {
        return Err((code::UNKNOWN_SERVER_ERROR, String::new()));
    };
    // Metadata: null fields in the request mean "unchanged".
    let mut subscription_changed = is_new;
    let mut metadata_changed = is_new || force_current_record;
    if let Some(names) = &req.subscribed_topic_names {
        let mut names = names.clone();
        names.sort();
        names.dedup();
        if names != m.subscribed_topic_names {
            m.subscribed_topic_names = names;
            subscription_changed = true;
        }
    }
    if req.subscribed_topic_regex.is_some() && req.subscribed_topic_regex != m.subscribed_topic_regex {
        // An empty pattern clears the regex subscription (librdkafka sends "" when it has none).
        m.subscribed_topic_regex = req.subscribed_topic_regex.clone().filter(|r| !r.is_empty());
        // `validate` compiled it already; it cannot fail here.
        m.compiled_regex = m.subscribed_topic_regex.as_deref().and_then(|r| compile_regex(r).ok());
        subscription_changed = true;
    }
    if req.server_assignor.is_some() && req.server_assignor != m.server_assignor {
        m.server_assignor = req.server_assignor.clone();
        subscription_changed = true;
    }
    for (field, value) in [(&mut m.instance_id, &req.instance_id), (&mut m.rack_id, &req.rack_id)] {
        if value.is_some() && field != value {
            *field = value.clone();
            metadata_changed = true;
        }
    }
    if req.rebalance_timeout_ms != -1 && req.rebalance_timeout_ms != m.rebalance_timeout_ms {
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        metadata_changed = true;
    }
    if m.client_id != req.client_id || m.client_host != req.client_host {
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        metadata_changed = true;
    }
    m.session_deadline_ms = now + config.group_consumer_session_timeout_ms as i64;
    if metadata_changed || subscription_changed {
        records.push(member_record(group, m));
    }
    let assigned_before = normalized(&m.assigned);
    // The group epoch moves with membership and subscriptions, and with the subscribed topics.
    let (subs, topics) = subscriptions(shard, cg);
    if subscription_changed || topics != cg.subscription_metadata {
        cg.group_epoch += 1;
        cg.subscription_metadata = topics.clone();
        records.push(epoch_record(group, cg.group_epoch));
    }
    if cg.group_epoch > cg.assignment_epoch {
        let assignor = cg.preferred_assignor(default_assignor);
        for changed in cg.compute_target(&subs, &topics, assignor) {
            let target = cg.target.get(&changed).cloned().unwrap_or_default();
            records.push(target_record(group, &changed, &target));
        }
        records.push(assignment_epoch_record(group, cg.assignment_epoch));
    }
    let reconciled = cg.reconcile(&member_id, owned, now);
    let Some(m) = cg.members.get(&member_id) else {
        return Err((code::UNKNOWN_SERVER_ERROR, String::new()));
    };
    if reconciled || is_new || force_current_record {
        records.push(current_record(group, m));
    }
    let assigned = normalized(&m.assigned);
    let resend = req.member_epoch == 0
        || assigned != assigned_before
        || owned.is_some_and(|o| normalized(o) != assigned);
    Ok(Outcome { member_id, member_epoch: m.member_epoch, assignment: resend.then_some(assigned), timer })
}

/// Session expiry (and the revocation deadline) of one member incarnation.
pub(super) fn start_session_timer(group: GroupRef, member_id: String, incarnation: u64) {
    glommio::spawn_local(async move {
        loop {
            let now = now_ms();
            let wait_ms = {
                let grp = group.borrow();
                let Some(m) = grp.consumer.as_ref().and_then(|cg| cg.members.get(&member_id)) else { return };
                if m.incarnation != incarnation {
                    return;
                }
                let deadline = m.session_deadline_ms.min(m.revocation_deadline_ms.unwrap_or(i64::MAX));
                deadline - now
            };
            if wait_ms > 0 {
                glommio::timer::sleep(Duration::from_millis(wait_ms.min(TIMER_RECHECK_MS) as u64)).await;
                continue;
            }
            let (log, records) = {
                let mut grp = group.borrow_mut();
                let id = grp.id.clone();
                let log = grp.log.clone();
                let Some(cg) = grp.consumer.as_mut() else { return };
                let mut records = Records::new();
                remove_member(cg, &id, &member_id, &mut records);
                cg.version += 1;
                tracing::info!(
                    "consumer group {id}: member {member_id} fenced (session or rebalance timeout)"
                );
                (log, records)
            };
            if let Err(e) = append(&log, records).await {
                tracing::warn!("storing the removal of member {member_id}: {e}");
            }
            return;
        }
    })
    .detach();
}

/// The KIP-848 records of one offsets partition, folded while it is replayed.
#[derive(Default)]
pub(super) struct Replay {
    epoch: Option<i32>,
    assignment_epoch: i32,
    members: BTreeMap<String, MemberMetadataValue>,
    targets: BTreeMap<String, Assignment>,
    current: BTreeMap<String, CurrentAssignmentValue>,
}

impl Replay {
    /// Applies one record (`value` `None`: tombstone); `false` if the value does not parse.
    pub(super) fn apply(&mut self, key: &ConsumerKey, value: Option<&[u8]>) -> bool {
        match key {
            ConsumerKey::Metadata { .. } => match value {
                None => *self = Replay::default(),
                Some(v) => match cr::decode_epoch_value(v) {
                    Some(epoch) => self.epoch = Some(epoch),
                    None => return false,
                },
            },
            ConsumerKey::PartitionMetadata { .. } => {}
            ConsumerKey::TargetMetadata { .. } => {
                if let Some(v) = value {
                    match cr::decode_epoch_value(v) {
                        Some(epoch) => self.assignment_epoch = epoch,
                        None => return false,
                    }
                }
            }
            ConsumerKey::Member { member, .. } => match value.map(cr::decode_member_value) {
                None => {
                    self.members.remove(member);
                }
                Some(Some(v)) => {
                    self.members.insert(member.clone(), v);
                }
                Some(None) => return false,
            },
            ConsumerKey::TargetMember { member, .. } => match value.map(cr::decode_target_member_value) {
                None => {
                    self.targets.remove(member);
                }
                Some(Some(v)) => {
                    self.targets.insert(member.clone(), v);
                }
                Some(None) => return false,
            },
            ConsumerKey::CurrentAssignment { member, .. } => {
                match value.map(cr::decode_current_assignment_value) {
                    None => {
                        self.current.remove(member);
                    }
                    Some(Some(v)) => {
                        self.current.insert(member.clone(), v);
                    }
                    Some(None) => return false,
                }
            }
        }
        true
    }

    /// The group as the records left it; members get a fresh session (as Kafka does on load).
    pub(super) fn into_group(self, session_timeout_ms: i64) -> Option<ConsumerGroup> {
        let epoch = self.epoch?;
        let mut cg = ConsumerGroup::default();
        cg.group_epoch = epoch;
        cg.assignment_epoch = self.assignment_epoch;
        let deadline = now_ms() + session_timeout_ms;
        for (id, v) in self.members {
            let incarnation = cg.next_incarnation();
            let mut m = ConsumerMember::new(&id, incarnation);
            m.instance_id = v.instance_id;
            m.rack_id = v.rack_id;
            m.client_id = v.client_id;
            m.client_host = v.client_host;
            m.subscribed_topic_names = v.subscribed_topic_names;
            m.compiled_regex = v.subscribed_topic_regex.as_deref().and_then(|r| compile_regex(r).ok());
            m.subscribed_topic_regex = v.subscribed_topic_regex;
            m.server_assignor = v.server_assignor;
            m.rebalance_timeout_ms = v.rebalance_timeout_ms;
            m.session_deadline_ms = deadline;
            if let Some(c) = self.current.get(&id) {
                m.member_epoch = c.member_epoch;
                m.previous_member_epoch = c.previous_member_epoch;
                m.state = MemberState::from_value(c.state);
                m.assigned = c.assigned.clone();
                m.pending_revocation = c.pending_revocation.clone();
            }
            if let Some(t) = self.targets.get(&id) {
                cg.target.insert(id.clone(), t.clone());
            }
            cg.members.insert(id, m);
        }
        Some(cg)
    }
}

/// The topics a consumer group's members subscribe to (OffsetDelete refuses those).
pub(super) fn subscribed_topic_names(shard: &Shard, cg: &ConsumerGroup) -> BTreeSet<String> {
    subscriptions(shard, cg).0.into_values().flatten().collect()
}

/// Starts the session timers of the members a replay brought back.
pub(super) fn start_loaded_timers(group: &GroupRef) {
    let members: Vec<(String, u64)> = group
        .borrow()
        .consumer
        .as_ref()
        .map(|cg| cg.members.values().map(|m| (m.id.clone(), m.incarnation)).collect())
        .unwrap_or_default();
    for (id, incarnation) in members {
        start_session_timer(Rc::clone(group), id, incarnation);
    }
}
