//! One consumer group of the classic protocol: its state machine, members and committed
//! offsets, following Kafka 3.7's `GroupMetadata` / `GroupCoordinator` (the pre-KIP-848 one).
//!
//! ```text
//!            join (first member)          all joined / rebalance timeout       leader's SyncGroup
//!   Empty ───────────────────▶ PreparingRebalance ───────────────▶ CompletingRebalance ─────────▶ Stable
//!     ▲                           ▲   │ no member left                  │  join/leave/expiry        │
//!     └───────────────────────────┼───┘                                  ▼                           │
//!                                 └──────────────────────────────────────┴───────────────────────────┘
//!   Empty ── DeleteGroups ──▶ Dead (removed)
//! ```
//!
//! Invariants:
//! - Everything here lives on the shard that leads the group's `__consumer_offsets` partition;
//!   a group is an `Rc<RefCell<Group>>` and no borrow is ever held across an `.await`.
//! - A member waiting for its JoinGroup or SyncGroup answer holds a [`Slot`]; every path that
//!   drops or replaces a member fills its slots, and every wait is bounded besides.
//! - Timers are glommio timers on this shard: one task per member (session expiry), one per
//!   pending member, one per rebalance (initial delay, rebalance timeout) and one per generation
//!   (members that never sync). Each re-checks the group when it wakes, so a stale timer is a
//!   no-op rather than something to cancel.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;
use std::time::Duration;

use bytes::Bytes;

use super::code;
use super::records::{GroupValue, MemberValue, OffsetValue};
use crate::partition::Partition;
use crate::shard::now_ms;

pub type GroupRef = Rc<RefCell<Group>>;

/// Kafka's `GroupCoordinator.NewMemberJoinTimeoutMs`: a new member waiting for its first
/// JoinGroup answer is dropped after this long (it retries if it is still there).
pub const NEW_MEMBER_JOIN_TIMEOUT_MS: i64 = 5 * 60 * 1000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupState {
    Empty,
    PreparingRebalance,
    CompletingRebalance,
    Stable,
    Dead,
}

impl GroupState {
    /// The names Kafka reports in ListGroups/DescribeGroups.
    pub fn name(self) -> &'static str {
        match self {
            GroupState::Empty => "Empty",
            GroupState::PreparingRebalance => "PreparingRebalance",
            GroupState::CompletingRebalance => "CompletingRebalance",
            GroupState::Stable => "Stable",
            GroupState::Dead => "Dead",
        }
    }
}

/// A one-shot answer for a waiting request.
pub struct Slot<T> {
    value: RefCell<Option<T>>,
    ready: event_listener::Event,
}

impl<T> Slot<T> {
    pub fn new() -> Rc<Slot<T>> {
        Rc::new(Slot { value: RefCell::new(None), ready: event_listener::Event::new() })
    }

    /// Fills the slot (the first answer wins) and wakes the waiter.
    pub fn put(&self, value: T) {
        {
            let mut slot = self.value.borrow_mut();
            if slot.is_none() {
                *slot = Some(value);
            }
        }
        self.ready.notify(usize::MAX);
    }

    /// The answer, or `None` after `max`.
    pub async fn wait(&self, max: Duration) -> Option<T> {
        let deadline = std::time::Instant::now() + max;
        loop {
            let listener = self.ready.listen();
            if let Some(value) = self.value.borrow_mut().take() {
                return Some(value);
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return None;
            }
            let _ = glommio::timer::timeout(deadline - now, async {
                listener.await;
                Ok(())
            })
            .await;
        }
    }
}

/// The answer to a JoinGroup.
#[derive(Debug, Clone)]
pub struct JoinResult {
    pub error: i16,
    pub member_id: String,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub leader: String,
    pub skip_assignment: bool,
    /// Only for the leader: `(member id, group instance id, metadata of the chosen protocol)`.
    pub members: Vec<(String, Option<String>, Bytes)>,
}

impl JoinResult {
    pub fn error(member_id: &str, error: i16) -> JoinResult {
        JoinResult {
            error,
            member_id: member_id.to_string(),
            generation: -1,
            protocol_type: None,
            protocol_name: None,
            leader: String::new(),
            skip_assignment: false,
            members: Vec::new(),
        }
    }
}

/// The answer to a SyncGroup.
#[derive(Debug, Clone)]
pub struct SyncResult {
    pub error: i16,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignment: Bytes,
}

impl SyncResult {
    pub fn error(error: i16) -> SyncResult {
        SyncResult { error, protocol_type: None, protocol_name: None, assignment: Bytes::new() }
    }
}

pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    /// `(name, metadata)` in the member's order of preference.
    pub protocols: Vec<(String, Bytes)>,
    pub assignment: Bytes,
    pub join_waiter: Option<Rc<Slot<JoinResult>>>,
    pub sync_waiter: Option<Rc<Slot<SyncResult>>>,
    /// Joined but not yet through a completed join phase.
    pub is_new: bool,
    /// Session expiry (heartbeat deadline), epoch ms.
    pub deadline_ms: i64,
}

impl Member {
    pub fn metadata(&self, protocol: &str) -> Bytes {
        self.protocols.iter().find(|(name, _)| name == protocol).map(|(_, m)| m.clone()).unwrap_or_default()
    }

    /// Same protocols with the same metadata, in the same order (Kafka's `MemberMetadata.matches`).
    pub fn matches(&self, protocols: &[(String, Bytes)]) -> bool {
        self.protocols == protocols
    }

    fn awaiting(&self) -> bool {
        (self.join_waiter.is_some() && !self.is_new) || self.sync_waiter.is_some()
    }
}

/// What a JoinGroup asks for, decoded from any version.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub session_timeout_ms: i32,
    pub rebalance_timeout_ms: i32,
    pub protocol_type: String,
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a member without an id first gets one with MEMBER_ID_REQUIRED.
    pub require_known_member_id: bool,
    /// v9+: a static leader rejoining a stable group may skip the assignment.
    pub supports_skip_assignment: bool,
}

/// How a JoinGroup is answered.
pub enum JoinOutcome {
    Now(JoinResult),
    Wait(Rc<Slot<JoinResult>>),
    /// A static member replaced its old member id in a stable group: store the group, then
    /// answer (or, if the store fails, answer its error).
    StoreThen(JoinResult, GroupValue),
}

pub struct Group {
    pub id: String,
    /// The `__consumer_offsets` partition this group lives in, and its log.
    pub offsets_partition: i32,
    pub log: Rc<Partition>,
    pub state: GroupState,
    pub state_since_ms: i64,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// In join order.
    pub members: Vec<Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not joined yet.
    pub pending_members: HashSet<String>,
    /// group.instance.id → member id.
    pub static_members: HashMap<String, String>,
    /// Members of the current generation that have not sent SyncGroup yet.
    pub pending_sync: HashSet<String>,
    pub offsets: HashMap<(String, i32), OffsetValue>,
    /// `Some` while this is a KIP-848 consumer group (then the classic fields above stay
    /// `Empty` and member-less; the offsets are shared).
    pub consumer: Option<super::consumer::ConsumerGroup>,
    /// A member joined during the initial delay (extends it, as Kafka's InitialDelayedJoin).
    new_member_added: bool,
    /// The current rebalance is in its initial delay: it does not complete early.
    initial_delay_running: bool,
    /// Bumped at every rebalance; a rebalance timer acts only on its own.
    rebalance_epoch: u64,
    initial_rebalance_delay_ms: i64,
}

impl Group {
    pub fn new(
        id: &str,
        offsets_partition: i32,
        log: Rc<Partition>,
        initial_rebalance_delay_ms: i64,
    ) -> Group {
        Group {
            id: id.to_string(),
            offsets_partition,
            log,
            state: GroupState::Empty,
            state_since_ms: now_ms(),
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: Vec::new(),
            pending_members: HashSet::new(),
            static_members: HashMap::new(),
            pending_sync: HashSet::new(),
            offsets: HashMap::new(),
            consumer: None,
            new_member_added: false,
            initial_delay_running: false,
            rebalance_epoch: 0,
            initial_rebalance_delay_ms,
        }
    }

    pub fn member(&self, id: &str) -> Option<&Member> {
        self.members.iter().find(|m| m.id == id)
    }

    pub fn member_mut(&mut self, id: &str) -> Option<&mut Member> {
        self.members.iter_mut().find(|m| m.id == id)
    }

    pub fn has(&self, id: &str) -> bool {
        self.member(id).is_some()
    }

    pub fn is_leader(&self, id: &str) -> bool {
        self.leader.as_deref() == Some(id)
    }

    fn transition(&mut self, state: GroupState) {
        self.state = state;
        self.state_since_ms = now_ms();
    }

    /// A static member whose instance id now maps to another member id.
    pub fn is_fenced(&self, instance_id: Option<&str>, member_id: &str) -> bool {
        instance_id.is_some_and(|i| self.static_members.get(i).is_some_and(|current| current != member_id))
    }

    /// Kafka's `validateCurrentMember`: FENCED_INSTANCE_ID, UNKNOWN_MEMBER_ID or fine.
    pub fn validate_member(&self, member_id: &str, instance_id: Option<&str>) -> Result<(), i16> {
        if self.is_fenced(instance_id, member_id) {
            Err(code::FENCED_INSTANCE_ID)
        } else if !self.has(member_id) {
            Err(code::UNKNOWN_MEMBER_ID)
        } else {
            Ok(())
        }
    }

    /// Kafka's `supportsProtocols`: a member may join if its protocol type matches and it
    /// shares at least one protocol with every current member.
    pub fn supports_protocols(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return !protocol_type.is_empty() && !protocols.is_empty();
        }
        self.protocol_type.as_deref() == Some(protocol_type)
            && protocols
                .iter()
                .any(|(name, _)| self.members.iter().all(|m| m.protocols.iter().any(|(n, _)| n == name)))
    }

    /// Kafka's `selectProtocol`: among the protocols every member supports, the one most
    /// members list first among those candidates (ties: the first member's preference).
    pub fn select_protocol(&self) -> Option<String> {
        let first = self.members.first()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(n, _)| n.as_str())
            .filter(|name| self.members.iter().all(|m| m.protocols.iter().any(|(n, _)| n == name)))
            .collect();
        let mut votes: Vec<usize> = vec![0; candidates.len()];
        for m in &self.members {
            if let Some(i) = m.protocols.iter().find_map(|(n, _)| candidates.iter().position(|c| c == n)) {
                votes[i] += 1;
            }
        }
        let best = votes.iter().enumerate().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(&a.0)))?.0;
        Some(candidates[best].to_string())
    }

    /// Topics the members of a `consumer` group subscribe to (for OffsetDelete); `None` when
    /// the group does not use the consumer protocol or a subscription does not parse.
    pub fn subscribed_topics(&self) -> Option<HashSet<String>> {
        if self.protocol_type.as_deref() != Some("consumer") {
            return None;
        }
        let protocol = self.protocol.as_deref()?;
        let mut topics = HashSet::new();
        for m in &self.members {
            topics.extend(super::records::subscribed_topics(&m.metadata(protocol))?);
        }
        Some(topics)
    }

    fn all_joined(&self) -> bool {
        self.pending_members.is_empty() && self.members.iter().all(|m| m.join_waiter.is_some())
    }

    fn rebalance_timeout_ms(&self) -> i64 {
        self.members.iter().map(|m| m.rebalance_timeout_ms as i64).max().unwrap_or(0).max(0)
    }

    fn add_member(&mut self, member: Member) {
        if self.members.is_empty() {
            self.protocol_type = Some(member.protocol_type.clone());
        }
        if self.leader.is_none() {
            self.leader = Some(member.id.clone());
        }
        if let Some(instance) = &member.instance_id {
            self.static_members.insert(instance.clone(), member.id.clone());
        }
        self.pending_members.remove(&member.id);
        self.members.push(member);
    }

    /// Removes a member (no rebalance here), answering anything it waits for.
    fn remove_member(&mut self, id: &str, error: i16) -> Option<Member> {
        let index = self.members.iter().position(|m| m.id == id)?;
        let mut member = self.members.remove(index);
        if let Some(slot) = member.join_waiter.take() {
            slot.put(JoinResult::error(id, error));
        }
        if let Some(slot) = member.sync_waiter.take() {
            slot.put(SyncResult::error(error));
        }
        if let Some(instance) = &member.instance_id {
            if self.static_members.get(instance).map(String::as_str) == Some(id) {
                self.static_members.remove(instance);
            }
        }
        self.pending_members.remove(id);
        self.pending_sync.remove(id);
        if self.is_leader(id) {
            self.leader = self.members.first().map(|m| m.id.clone());
        }
        Some(member)
    }

    /// The member list a leader gets.
    fn member_metadata(&self) -> Vec<(String, Option<String>, Bytes)> {
        let protocol = self.protocol.clone().unwrap_or_default();
        self.members.iter().map(|m| (m.id.clone(), m.instance_id.clone(), m.metadata(&protocol))).collect()
    }

    fn current_join_result(&self, member_id: &str, with_members: bool, skip_assignment: bool) -> JoinResult {
        JoinResult {
            error: code::NONE,
            member_id: member_id.to_string(),
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            leader: self.leader.clone().unwrap_or_default(),
            skip_assignment,
            members: if with_members { self.member_metadata() } else { Vec::new() },
        }
    }

    /// The group as `GroupMetadataValue`, with `assignments` replacing members' current ones.
    pub fn to_value(&self, assignments: Option<&HashMap<String, Bytes>>) -> GroupValue {
        let protocol = self.protocol.clone().unwrap_or_default();
        GroupValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp_ms: self.state_since_ms,
            members: self
                .members
                .iter()
                .map(|m| MemberValue {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout_ms: m.rebalance_timeout_ms,
                    session_timeout_ms: m.session_timeout_ms,
                    subscription: m.metadata(&protocol),
                    assignment: assignments
                        .and_then(|a| a.get(&m.id).cloned())
                        .unwrap_or_else(|| m.assignment.clone()),
                })
                .collect(),
        }
    }

    /// Rebuilt from the log: Kafka's generation and protocol type survive, members do not
    /// (they rejoin, which a restart of a one-broker cluster makes them do anyway).
    pub fn restore(&mut self, value: &GroupValue) {
        self.generation = value.generation;
        self.protocol_type = (!value.protocol_type.is_empty()).then(|| value.protocol_type.clone());
        // Offset retention of an empty group counts from when it became empty.
        if value.current_state_timestamp_ms > 0 {
            self.state_since_ms = value.current_state_timestamp_ms;
        }
    }

    /// Moves everyone waiting for SyncGroup back to "rejoin", clearing assignments.
    fn reset_and_propagate_assignment_error(&mut self, error: i16) {
        for m in &mut self.members {
            m.assignment = Bytes::new();
            if let Some(slot) = m.sync_waiter.take() {
                slot.put(SyncResult::error(error));
            }
        }
    }
}

// ---- transitions that arm timers ----------------------------------------------------------

fn spawn(fut: impl std::future::Future<Output = ()> + 'static) {
    glommio::spawn_local(fut).detach();
}

async fn sleep_ms(ms: i64) {
    glommio::timer::sleep(Duration::from_millis(ms.max(0) as u64)).await;
}

/// Kafka's `maybePrepareRebalance`.
pub fn maybe_prepare_rebalance(g: &GroupRef, reason: &str) {
    let can =
        matches!(g.borrow().state, GroupState::Stable | GroupState::CompletingRebalance | GroupState::Empty);
    if can {
        prepare_rebalance(g, reason);
    }
}

/// Kafka's `prepareRebalance`: to PreparingRebalance, with the initial delay for an empty
/// group and the members' largest rebalance timeout otherwise.
pub fn prepare_rebalance(g: &GroupRef, reason: &str) {
    let mut grp = g.borrow_mut();
    if grp.state == GroupState::CompletingRebalance {
        grp.reset_and_propagate_assignment_error(code::REBALANCE_IN_PROGRESS);
    }
    grp.pending_sync.clear();
    let initial = grp.state == GroupState::Empty;
    grp.transition(GroupState::PreparingRebalance);
    grp.rebalance_epoch += 1;
    let epoch = grp.rebalance_epoch;
    tracing::info!("group {} preparing to rebalance (generation {}): {reason}", grp.id, grp.generation);
    if initial {
        let delay = grp.initial_rebalance_delay_ms;
        let remaining = (grp.rebalance_timeout_ms() - delay).max(0);
        grp.initial_delay_running = true;
        grp.new_member_added = false;
        drop(grp);
        spawn(initial_delayed_join(g.clone(), epoch, delay, remaining));
    } else {
        let timeout = grp.rebalance_timeout_ms();
        grp.initial_delay_running = false;
        drop(grp);
        spawn(delayed_join(g.clone(), epoch, timeout));
        try_complete_join(g);
    }
}

async fn initial_delayed_join(g: GroupRef, epoch: u64, mut delay: i64, mut remaining: i64) {
    loop {
        sleep_ms(delay).await;
        let mut grp = g.borrow_mut();
        if grp.rebalance_epoch != epoch || grp.state != GroupState::PreparingRebalance {
            return;
        }
        if grp.new_member_added && remaining > 0 {
            grp.new_member_added = false;
            let next = grp.initial_rebalance_delay_ms.min(remaining);
            remaining = (remaining - delay).max(0);
            delay = next;
            continue;
        }
        grp.initial_delay_running = false;
        drop(grp);
        complete_join(&g);
        return;
    }
}

async fn delayed_join(g: GroupRef, epoch: u64, timeout: i64) {
    sleep_ms(timeout).await;
    let current = {
        let grp = g.borrow();
        grp.rebalance_epoch == epoch && grp.state == GroupState::PreparingRebalance
    };
    if current {
        complete_join(&g);
    }
}

/// Completes the join phase early once every known member has rejoined.
pub fn try_complete_join(g: &GroupRef) {
    let ready = {
        let grp = g.borrow();
        grp.state == GroupState::PreparingRebalance && !grp.initial_delay_running && grp.all_joined()
    };
    if ready {
        complete_join(g);
    }
}

/// Kafka's `onCompleteJoin`: drop dynamic members that did not rejoin, start the next
/// generation, answer every JoinGroup (the leader with the member list).
fn complete_join(g: &GroupRef) {
    let mut grp = g.borrow_mut();
    if grp.state != GroupState::PreparingRebalance {
        return;
    }
    let not_rejoined: Vec<String> = grp
        .members
        .iter()
        .filter(|m| m.join_waiter.is_none() && m.instance_id.is_none())
        .map(|m| m.id.clone())
        .collect();
    for id in not_rejoined {
        tracing::info!("group {}: member {id} did not rejoin in time and is removed", grp.id);
        grp.remove_member(&id, code::UNKNOWN_MEMBER_ID);
    }
    // The leader must be a member that rejoined (Kafka's maybeElectNewJoinedLeader).
    let leader_joined =
        grp.leader.as_deref().and_then(|l| grp.member(l)).is_some_and(|m| m.join_waiter.is_some());
    if !leader_joined {
        let joined = grp.members.iter().find(|m| m.join_waiter.is_some()).map(|m| m.id.clone());
        match joined {
            Some(id) => grp.leader = Some(id),
            None if !grp.members.is_empty() => {
                // Only static members that have not rejoined: wait another rebalance timeout
                // (their session timeouts remove them if they are gone).
                let epoch = grp.rebalance_epoch;
                let timeout = grp.rebalance_timeout_ms();
                drop(grp);
                spawn(delayed_join(g.clone(), epoch, timeout));
                return;
            }
            None => grp.leader = None,
        }
    }
    grp.generation += 1;
    if grp.members.is_empty() {
        grp.protocol = None;
        grp.transition(GroupState::Empty);
        tracing::info!("group {} is empty at generation {}", grp.id, grp.generation);
        let value = grp.to_value(None);
        let (id, log) = (grp.id.clone(), grp.log.clone());
        drop(grp);
        spawn(async move {
            if let Err(e) = super::store_group(&log, &id, Some(&value)).await {
                tracing::warn!("storing empty group {id}: error {e}");
            }
        });
        return;
    }
    grp.protocol = grp.select_protocol();
    grp.transition(GroupState::CompletingRebalance);
    tracing::info!(
        "group {} generation {} with {} members, protocol {:?}",
        grp.id,
        grp.generation,
        grp.members.len(),
        grp.protocol
    );
    let now = now_ms();
    let mut answers = Vec::with_capacity(grp.members.len());
    for i in 0..grp.members.len() {
        let id = grp.members[i].id.clone();
        let result = grp.current_join_result(&id, grp.is_leader(&id), false);
        let m = &mut grp.members[i];
        if let Some(slot) = m.join_waiter.take() {
            answers.push((slot, result));
        }
        m.deadline_ms = now + m.session_timeout_ms as i64;
        m.is_new = false;
    }
    grp.pending_sync = grp.members.iter().map(|m| m.id.clone()).collect();
    let generation = grp.generation;
    let timeout = grp.rebalance_timeout_ms();
    drop(grp);
    for (slot, result) in answers {
        slot.put(result);
    }
    spawn(pending_sync_timer(g.clone(), generation, timeout));
}

/// Members of a generation that do not send SyncGroup within the rebalance timeout are
/// removed and the group rebalances (Kafka's `onExpirePendingSync`).
async fn pending_sync_timer(g: GroupRef, generation: i32, timeout: i64) {
    sleep_ms(timeout).await;
    let expired: Vec<String> = {
        let grp = g.borrow();
        if grp.generation != generation
            || !matches!(grp.state, GroupState::CompletingRebalance | GroupState::Stable)
        {
            return;
        }
        grp.pending_sync.iter().cloned().collect()
    };
    if expired.is_empty() {
        return;
    }
    {
        let mut grp = g.borrow_mut();
        for id in &expired {
            tracing::info!("group {}: member {id} did not sync in time and is removed", grp.id);
            grp.remove_member(id, code::UNKNOWN_MEMBER_ID);
        }
        grp.pending_sync.clear();
    }
    maybe_prepare_rebalance(&g, "members did not sync in time");
}

/// Session expiry: one task per member, re-armed by moving `deadline_ms`.
async fn member_timer(g: GroupRef, member_id: String) {
    loop {
        let now = now_ms();
        let wait_ms = {
            let grp = g.borrow();
            let Some(m) = grp.member(&member_id) else { return };
            if now < m.deadline_ms {
                // The deadline may also move earlier (a new member's join timeout becomes its
                // session timeout), so never sleep past one session timeout.
                (m.deadline_ms - now).min((m.session_timeout_ms as i64).max(100))
            } else if m.awaiting() {
                // A member parked in JoinGroup/SyncGroup cannot heartbeat; it is judged
                // by the rebalance timeouts instead.
                (m.session_timeout_ms as i64).max(100)
            } else {
                0
            }
        };
        if wait_ms > 0 {
            sleep_ms(wait_ms).await;
            continue;
        }
        remove_member_and_update_group(&g, &member_id, "session timeout expired");
        return;
    }
}

async fn pending_member_timer(g: GroupRef, member_id: String, session_timeout_ms: i64) {
    sleep_ms(session_timeout_ms).await;
    let removed = g.borrow_mut().pending_members.remove(&member_id);
    if removed {
        try_complete_join(&g);
    }
}

/// Kafka's `removeMemberAndUpdateGroup`: the member leaves (LeaveGroup, expiry) and the group
/// rebalances, or finishes the rebalance it was waiting on.
pub fn remove_member_and_update_group(g: &GroupRef, member_id: &str, reason: &str) {
    let state = {
        let mut grp = g.borrow_mut();
        if grp.remove_member(member_id, code::UNKNOWN_MEMBER_ID).is_none() {
            return;
        }
        tracing::info!("group {}: member {member_id} removed: {reason}", grp.id);
        grp.state
    };
    match state {
        GroupState::Dead | GroupState::Empty => {}
        GroupState::Stable | GroupState::CompletingRebalance => {
            maybe_prepare_rebalance(g, &format!("removing member {member_id}: {reason}"))
        }
        GroupState::PreparingRebalance => try_complete_join(g),
    }
}

/// LeaveGroup of a member id still in the MEMBER_ID_REQUIRED handshake.
pub fn remove_pending_member(g: &GroupRef, member_id: &str) -> bool {
    let removed = g.borrow_mut().pending_members.remove(member_id);
    if removed {
        try_complete_join(g);
    }
    removed
}

pub fn reset_heartbeat(g: &GroupRef, member_id: &str) {
    let now = now_ms();
    if let Some(m) = g.borrow_mut().member_mut(member_id) {
        m.deadline_ms = now + m.session_timeout_ms as i64;
    }
}

fn new_member(req: &JoinRequest, id: String, waiter: Rc<Slot<JoinResult>>) -> Member {
    Member {
        id,
        instance_id: req.instance_id.clone(),
        client_id: req.client_id.clone(),
        client_host: req.client_host.clone(),
        session_timeout_ms: req.session_timeout_ms,
        rebalance_timeout_ms: req.rebalance_timeout_ms,
        protocol_type: req.protocol_type.clone(),
        protocols: req.protocols.clone(),
        assignment: Bytes::new(),
        join_waiter: Some(waiter),
        sync_waiter: None,
        is_new: true,
        deadline_ms: now_ms() + NEW_MEMBER_JOIN_TIMEOUT_MS,
    }
}

/// Kafka's `addMemberAndRebalance`.
fn add_member_and_rebalance(g: &GroupRef, req: &JoinRequest, member_id: String) -> JoinOutcome {
    let waiter = Slot::new();
    {
        let mut grp = g.borrow_mut();
        if grp.state == GroupState::PreparingRebalance && grp.generation == 0 {
            grp.new_member_added = true;
        }
        grp.add_member(new_member(req, member_id.clone(), waiter.clone()));
    }
    spawn(member_timer(g.clone(), member_id.clone()));
    maybe_prepare_rebalance(g, &format!("adding new member {member_id}"));
    JoinOutcome::Wait(waiter)
}

/// Kafka's `updateMemberAndRebalance`.
fn update_member_and_rebalance(g: &GroupRef, req: &JoinRequest, member_id: &str) -> JoinOutcome {
    let waiter = Slot::new();
    {
        let mut grp = g.borrow_mut();
        let Some(m) = grp.member_mut(member_id) else {
            return JoinOutcome::Now(JoinResult::error(member_id, code::UNKNOWN_MEMBER_ID));
        };
        m.protocols = req.protocols.clone();
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.session_timeout_ms = req.session_timeout_ms;
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        if let Some(old) = m.join_waiter.replace(waiter.clone()) {
            // The client gave up on its earlier JoinGroup and sent this one.
            old.put(JoinResult::error(member_id, code::REBALANCE_IN_PROGRESS));
        }
    }
    maybe_prepare_rebalance(g, &format!("member {member_id} rejoined with new metadata"));
    JoinOutcome::Wait(waiter)
}

/// A JoinGroup without a member id (Kafka's `doNewMemberJoinGroup`).
pub fn join_new_member(g: &GroupRef, req: &JoinRequest) -> JoinOutcome {
    {
        let grp = g.borrow();
        if grp.state == GroupState::Dead {
            return JoinOutcome::Now(JoinResult::error("", code::COORDINATOR_NOT_AVAILABLE));
        }
        if !grp.supports_protocols(&req.protocol_type, &req.protocols) {
            return JoinOutcome::Now(JoinResult::error("", code::INCONSISTENT_GROUP_PROTOCOL));
        }
    }
    let prefix = req.instance_id.as_deref().unwrap_or(&req.client_id);
    let new_id = format!("{prefix}-{}", uuid::Uuid::new_v4());
    if let Some(instance) = &req.instance_id {
        return join_static_member(g, req, instance, new_id);
    }
    if req.require_known_member_id {
        g.borrow_mut().pending_members.insert(new_id.clone());
        spawn(pending_member_timer(g.clone(), new_id.clone(), req.session_timeout_ms as i64));
        return JoinOutcome::Now(JoinResult::error(&new_id, code::MEMBER_ID_REQUIRED));
    }
    add_member_and_rebalance(g, req, new_id)
}

/// Kafka's `doStaticMemberJoinGroup`: a known instance id takes over with its new member id;
/// in a stable group with unchanged metadata that needs no rebalance.
fn join_static_member(g: &GroupRef, req: &JoinRequest, instance: &str, new_id: String) -> JoinOutcome {
    let old_id = g.borrow().static_members.get(instance).cloned();
    let Some(old_id) = old_id else {
        return add_member_and_rebalance(g, req, new_id);
    };
    let mut grp = g.borrow_mut();
    let state = grp.state;
    if matches!(state, GroupState::Empty | GroupState::Dead) {
        return JoinOutcome::Now(JoinResult::error("", code::UNKNOWN_MEMBER_ID));
    }
    // Replace the old member id: its waiting requests are fenced.
    let Some(index) = grp.members.iter().position(|m| m.id == old_id) else {
        grp.static_members.remove(instance);
        drop(grp);
        return add_member_and_rebalance(g, req, new_id);
    };
    let unchanged = grp.members[index].matches(&req.protocols);
    {
        let m = &mut grp.members[index];
        if let Some(slot) = m.join_waiter.take() {
            slot.put(JoinResult::error(&old_id, code::FENCED_INSTANCE_ID));
        }
        if let Some(slot) = m.sync_waiter.take() {
            slot.put(SyncResult::error(code::FENCED_INSTANCE_ID));
        }
        m.id = new_id.clone();
        m.client_id = req.client_id.clone();
        m.client_host = req.client_host.clone();
        m.session_timeout_ms = req.session_timeout_ms;
        m.rebalance_timeout_ms = req.rebalance_timeout_ms;
        m.deadline_ms = now_ms() + req.session_timeout_ms as i64;
    }
    if grp.is_leader(&old_id) {
        grp.leader = Some(new_id.clone());
    }
    grp.static_members.insert(instance.to_string(), new_id.clone());
    if grp.pending_sync.remove(&old_id) {
        grp.pending_sync.insert(new_id.clone());
    }
    tracing::info!("group {}: static member {instance} replaced member id {old_id} with {new_id}", grp.id);
    drop(grp);
    spawn(member_timer(g.clone(), new_id.clone()));
    if state == GroupState::Stable && unchanged {
        let grp = g.borrow();
        let is_leader = grp.is_leader(&new_id);
        let result = grp.current_join_result(&new_id, is_leader, is_leader && req.supports_skip_assignment);
        return JoinOutcome::StoreThen(result, grp.to_value(None));
    }
    update_member_and_rebalance(g, req, &new_id)
}

/// A JoinGroup with a member id (Kafka's `doCurrentMemberJoinGroup`).
pub fn join_known_member(g: &GroupRef, req: &JoinRequest) -> JoinOutcome {
    let member_id = req.member_id.as_str();
    let grp = g.borrow();
    if grp.state == GroupState::Dead {
        return JoinOutcome::Now(JoinResult::error(member_id, code::COORDINATOR_NOT_AVAILABLE));
    }
    if !grp.supports_protocols(&req.protocol_type, &req.protocols) {
        return JoinOutcome::Now(JoinResult::error(member_id, code::INCONSISTENT_GROUP_PROTOCOL));
    }
    if grp.pending_members.contains(member_id) {
        drop(grp);
        return add_member_and_rebalance(g, req, member_id.to_string());
    }
    if let Err(error) = grp.validate_member(member_id, req.instance_id.as_deref()) {
        return JoinOutcome::Now(JoinResult::error(member_id, error));
    }
    let Some(member) = grp.member(member_id) else {
        return JoinOutcome::Now(JoinResult::error(member_id, code::UNKNOWN_MEMBER_ID));
    };
    match grp.state {
        GroupState::PreparingRebalance => {
            drop(grp);
            update_member_and_rebalance(g, req, member_id)
        }
        GroupState::CompletingRebalance => {
            if member.matches(&req.protocols) {
                // It probably missed the JoinGroup answer: give it the current generation again.
                let with_members = grp.is_leader(member_id);
                JoinOutcome::Now(grp.current_join_result(member_id, with_members, false))
            } else {
                drop(grp);
                update_member_and_rebalance(g, req, member_id)
            }
        }
        GroupState::Stable => {
            if grp.is_leader(member_id) || !member.matches(&req.protocols) {
                // The leader rejoining (e.g. its subscription's topics changed) forces a rebalance.
                drop(grp);
                update_member_and_rebalance(g, req, member_id)
            } else {
                JoinOutcome::Now(grp.current_join_result(member_id, false, false))
            }
        }
        GroupState::Empty | GroupState::Dead => {
            JoinOutcome::Now(JoinResult::error(member_id, code::UNKNOWN_MEMBER_ID))
        }
    }
}

/// How a SyncGroup is answered.
pub enum SyncOutcome {
    Now(SyncResult),
    Wait(Rc<Slot<SyncResult>>),
    /// The leader's assignments: store them, then [`finish_leader_sync`], then wait.
    LeaderStore {
        waiter: Rc<Slot<SyncResult>>,
        value: GroupValue,
        assignments: HashMap<String, Bytes>,
    },
}

pub struct SyncRequest {
    pub member_id: String,
    pub instance_id: Option<String>,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol_name: Option<String>,
    pub assignments: Vec<(String, Bytes)>,
}

/// Kafka's `doSyncGroup`.
pub fn sync(g: &GroupRef, req: SyncRequest) -> SyncOutcome {
    let mut grp = g.borrow_mut();
    if grp.state == GroupState::Dead {
        return SyncOutcome::Now(SyncResult::error(code::COORDINATOR_NOT_AVAILABLE));
    }
    if let Err(error) = grp.validate_member(&req.member_id, req.instance_id.as_deref()) {
        return SyncOutcome::Now(SyncResult::error(error));
    }
    if req.generation != grp.generation {
        return SyncOutcome::Now(SyncResult::error(code::ILLEGAL_GENERATION));
    }
    let type_mismatch = req.protocol_type.as_ref().is_some_and(|t| grp.protocol_type.as_ref() != Some(t));
    let name_mismatch = req.protocol_name.as_ref().is_some_and(|n| grp.protocol.as_ref() != Some(n));
    if type_mismatch || name_mismatch {
        return SyncOutcome::Now(SyncResult::error(code::INCONSISTENT_GROUP_PROTOCOL));
    }
    match grp.state {
        GroupState::Empty | GroupState::Dead => SyncOutcome::Now(SyncResult::error(code::UNKNOWN_MEMBER_ID)),
        GroupState::PreparingRebalance => SyncOutcome::Now(SyncResult::error(code::REBALANCE_IN_PROGRESS)),
        GroupState::CompletingRebalance => {
            let waiter = Slot::new();
            grp.pending_sync.remove(&req.member_id);
            let now = now_ms();
            let Some(m) = grp.member_mut(&req.member_id) else {
                return SyncOutcome::Now(SyncResult::error(code::UNKNOWN_MEMBER_ID));
            };
            m.deadline_ms = now + m.session_timeout_ms as i64;
            if let Some(old) = m.sync_waiter.replace(waiter.clone()) {
                old.put(SyncResult::error(code::REBALANCE_IN_PROGRESS));
            }
            if !grp.is_leader(&req.member_id) {
                return SyncOutcome::Wait(waiter);
            }
            let mut assignments: HashMap<String, Bytes> = HashMap::new();
            for (member_id, assignment) in req.assignments {
                if grp.has(&member_id) {
                    assignments.insert(member_id, assignment);
                }
            }
            for m in &grp.members {
                assignments.entry(m.id.clone()).or_default();
            }
            let value = grp.to_value(Some(&assignments));
            SyncOutcome::LeaderStore { waiter, value, assignments }
        }
        GroupState::Stable => {
            grp.pending_sync.remove(&req.member_id);
            let now = now_ms();
            let Some(m) = grp.member_mut(&req.member_id) else {
                return SyncOutcome::Now(SyncResult::error(code::UNKNOWN_MEMBER_ID));
            };
            m.deadline_ms = now + m.session_timeout_ms as i64;
            let assignment = m.assignment.clone();
            SyncOutcome::Now(SyncResult {
                error: code::NONE,
                protocol_type: grp.protocol_type.clone(),
                protocol_name: grp.protocol.clone(),
                assignment,
            })
        }
    }
}

/// After the leader's assignments were stored (`stored` = the store's error code): if the
/// group is still in that generation's CompletingRebalance, hand every member its assignment
/// and become Stable; a failed store sends everyone back to rejoin.
pub fn finish_leader_sync(g: &GroupRef, generation: i32, assignments: HashMap<String, Bytes>, stored: i16) {
    let mut grp = g.borrow_mut();
    if grp.state != GroupState::CompletingRebalance || grp.generation != generation {
        return;
    }
    if stored != code::NONE {
        grp.reset_and_propagate_assignment_error(stored);
        drop(grp);
        maybe_prepare_rebalance(g, "storing the group assignment failed");
        return;
    }
    let (protocol_type, protocol_name) = (grp.protocol_type.clone(), grp.protocol.clone());
    let mut answers = Vec::new();
    for m in &mut grp.members {
        m.assignment = assignments.get(&m.id).cloned().unwrap_or_default();
        if let Some(slot) = m.sync_waiter.take() {
            answers.push((slot, m.assignment.clone()));
        }
    }
    grp.transition(GroupState::Stable);
    tracing::info!("group {} is stable at generation {}", grp.id, grp.generation);
    drop(grp);
    for (slot, assignment) in answers {
        slot.put(SyncResult {
            error: code::NONE,
            protocol_type: protocol_type.clone(),
            protocol_name: protocol_name.clone(),
            assignment,
        });
    }
}

/// Kafka's `handleHeartbeat` once the group is found.
pub fn heartbeat(g: &GroupRef, member_id: &str, instance_id: Option<&str>, generation: i32) -> i16 {
    let state = {
        let grp = g.borrow();
        if grp.state == GroupState::Dead {
            return code::COORDINATOR_NOT_AVAILABLE;
        }
        if let Err(error) = grp.validate_member(member_id, instance_id) {
            return error;
        }
        if generation != grp.generation {
            return code::ILLEGAL_GENERATION;
        }
        grp.state
    };
    match state {
        GroupState::Empty | GroupState::Dead => code::UNKNOWN_MEMBER_ID,
        GroupState::CompletingRebalance | GroupState::Stable => {
            reset_heartbeat(g, member_id);
            code::NONE
        }
        GroupState::PreparingRebalance => {
            reset_heartbeat(g, member_id);
            code::REBALANCE_IN_PROGRESS
        }
    }
}

/// One member of a LeaveGroup (Kafka's `handleLeaveGroup` per member identity).
pub fn leave(g: &GroupRef, member_id: &str, instance_id: Option<&str>) -> i16 {
    let member_id = if member_id.is_empty() {
        // v3+: a static member may leave by instance id alone.
        match instance_id.and_then(|i| g.borrow().static_members.get(i).cloned()) {
            Some(id) => id,
            None => return code::UNKNOWN_MEMBER_ID,
        }
    } else {
        member_id.to_string()
    };
    {
        let grp = g.borrow();
        if grp.is_fenced(instance_id, &member_id) {
            return code::FENCED_INSTANCE_ID;
        }
        if grp.pending_members.contains(&member_id) {
            drop(grp);
            remove_pending_member(g, &member_id);
            return code::NONE;
        }
        if !grp.has(&member_id) {
            return code::UNKNOWN_MEMBER_ID;
        }
    }
    remove_member_and_update_group(g, &member_id, "the member left the group");
    code::NONE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn member(id: &str, protocols: &[&str]) -> Member {
        Member {
            id: id.into(),
            instance_id: None,
            client_id: "c".into(),
            client_host: String::new(),
            session_timeout_ms: 10_000,
            rebalance_timeout_ms: 10_000,
            protocol_type: "consumer".into(),
            protocols: protocols.iter().map(|p| (p.to_string(), Bytes::from(p.to_string()))).collect(),
            assignment: Bytes::new(),
            join_waiter: None,
            sync_waiter: None,
            is_new: false,
            deadline_ms: 0,
        }
    }

    /// A group needs a partition log only to store itself; these tests never store, so they
    /// build one over a temp dir on a glommio executor.
    fn with_group(test: impl FnOnce(&mut Group) + 'static) {
        glommio::LocalExecutorBuilder::default().make().unwrap().run(async move {
            let dir = tempfile::tempdir().unwrap();
            let log = Partition::open(
                dir.path(),
                "__consumer_offsets",
                [1; 16],
                0,
                0,
                shardlog_storage::log_config::LogConfig::default(),
                None,
            )
            .await
            .unwrap();
            let mut g = Group::new("g", 0, log, 0);
            test(&mut g);
        });
    }

    #[test]
    fn protocol_selection_follows_votes_among_common_protocols() {
        with_group(|g| {
            g.add_member(member("a", &["range", "roundrobin"]));
            g.add_member(member("b", &["roundrobin", "range"]));
            g.add_member(member("c", &["roundrobin", "sticky"]));
            // "range" is not supported by c; roundrobin is the only common one.
            assert_eq!(g.select_protocol().as_deref(), Some("roundrobin"));
            assert!(g.supports_protocols("consumer", &[("roundrobin".into(), Bytes::new())]));
            assert!(!g.supports_protocols("consumer", &[("range".into(), Bytes::new())]));
            assert!(!g.supports_protocols("connect", &[("roundrobin".into(), Bytes::new())]));
        });
        with_group(|g| {
            g.add_member(member("a", &["range", "cooperative-sticky"]));
            g.add_member(member("b", &["cooperative-sticky", "range"]));
            g.add_member(member("c", &["cooperative-sticky", "range"]));
            assert_eq!(g.select_protocol().as_deref(), Some("cooperative-sticky"));
        });
    }

    #[test]
    fn first_member_leads_and_leadership_moves_on_removal() {
        with_group(|g| {
            assert!(g.supports_protocols("consumer", &[("range".into(), Bytes::new())]));
            assert!(!g.supports_protocols("", &[("range".into(), Bytes::new())]));
            g.add_member(member("a", &["range"]));
            g.add_member(member("b", &["range"]));
            assert_eq!(g.leader.as_deref(), Some("a"));
            assert_eq!(g.protocol_type.as_deref(), Some("consumer"));
            g.remove_member("a", code::UNKNOWN_MEMBER_ID);
            assert_eq!(g.leader.as_deref(), Some("b"));
            assert_eq!(g.validate_member("a", None), Err(code::UNKNOWN_MEMBER_ID));
            let mut s = member("s", &["range"]);
            s.instance_id = Some("i".into());
            g.add_member(s);
            assert_eq!(g.validate_member("other", Some("i")), Err(code::FENCED_INSTANCE_ID));
            assert_eq!(g.validate_member("s", Some("i")), Ok(()));
        });
    }
}
