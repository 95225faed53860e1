//! A KIP-848 consumer group (the `consumer` rebalance protocol of Kafka 4): pure state, the
//! server-side assignors and the reconciliation of one member, after Kafka's
//! `ConsumerGroup`, `UniformAssignor` / `RangeAssignor` and `CurrentAssignmentBuilder`.
//!
//! Epochs. The *group epoch* moves whenever membership, a subscription or the partition count of
//! a subscribed topic changes. The *assignment epoch* is the group epoch the target assignment
//! was computed for. Each member has a *member epoch*: it reaches the assignment epoch once the
//! member owns exactly its target, and requests carrying another epoch are fenced.
//!
//! Invariant (revocation before assignment): a partition is handed to a member only while no
//! other member has it assigned or pending revocation; a member gives a partition up only by
//! acknowledging, in a heartbeat, that it no longer owns it (or by leaving / being fenced).
//! So two members never own one partition at the same time.

use std::collections::{BTreeMap, BTreeSet};

use super::code;
use super::consumer_records::{Assignment, TopicId};

/// The member epochs of a leaving member (dynamic, static).
pub const LEAVE_EPOCH: i32 = -1;
pub const STATIC_LEAVE_EPOCH: i32 = -2;

/// Kafka's `MemberState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberState {
    Stable,
    /// Waits for the member to acknowledge that it revoked `pending_revocation`.
    UnrevokedPartitions,
    /// Waits for other members to release partitions of its target.
    UnreleasedPartitions,
}

impl MemberState {
    pub fn value(self) -> i8 {
        match self {
            MemberState::Stable => 0,
            MemberState::UnrevokedPartitions => 1,
            MemberState::UnreleasedPartitions => 2,
        }
    }

    pub fn from_value(v: i8) -> MemberState {
        match v {
            1 => MemberState::UnrevokedPartitions,
            2 => MemberState::UnreleasedPartitions,
            _ => MemberState::Stable,
        }
    }
}

/// Kafka's `ConsumerGroupState`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConsumerGroupState {
    Empty,
    Assigning,
    Reconciling,
    Stable,
}

impl ConsumerGroupState {
    pub fn name(self) -> &'static str {
        match self {
            ConsumerGroupState::Empty => "Empty",
            ConsumerGroupState::Assigning => "Assigning",
            ConsumerGroupState::Reconciling => "Reconciling",
            ConsumerGroupState::Stable => "Stable",
        }
    }
}

/// A server-side assignor (`group.consumer.assignors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Assignor {
    Uniform,
    Range,
}

impl Assignor {
    /// A short name (`uniform`) or Kafka's class name (`…assignor.UniformAssignor`).
    pub fn parse(name: &str) -> Option<Assignor> {
        let short = name.trim().rsplit('.').next().unwrap_or_default().to_ascii_lowercase();
        match short.as_str() {
            "uniform" | "uniformassignor" => Some(Assignor::Uniform),
            "range" | "rangeassignor" => Some(Assignor::Range),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Assignor::Uniform => "uniform",
            Assignor::Range => "range",
        }
    }
}

#[derive(Debug, Clone)]
pub struct ConsumerMember {
    pub id: String,
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    /// `subscribed_topic_regex` compiled once, not at every heartbeat.
    pub compiled_regex: Option<regex::Regex>,
    pub server_assignor: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: MemberState,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
    /// Session expiry, epoch ms.
    pub session_deadline_ms: i64,
    /// While revoking: the member is fenced if it has not revoked by then, epoch ms.
    pub revocation_deadline_ms: Option<i64>,
    /// Tells a session timer of an earlier member with the same id that it is stale.
    pub incarnation: u64,
}

impl ConsumerMember {
    pub fn new(id: &str, incarnation: u64) -> ConsumerMember {
        ConsumerMember {
            id: id.to_string(),
            instance_id: None,
            rack_id: None,
            client_id: String::new(),
            client_host: String::new(),
            subscribed_topic_names: Vec::new(),
            subscribed_topic_regex: None,
            compiled_regex: None,
            server_assignor: None,
            rebalance_timeout_ms: -1,
            member_epoch: 0,
            previous_member_epoch: 0,
            state: MemberState::Stable,
            assigned: Assignment::new(),
            pending_revocation: Assignment::new(),
            session_deadline_ms: 0,
            revocation_deadline_ms: None,
            incarnation,
        }
    }

    /// Kafka's `throwIfMemberEpochIsInvalid`: a newer epoch than ours is fenced; an older one
    /// only if it is not the previous epoch with a subset of the assignment (the answer that
    /// bumped the epoch may have been lost).
    pub fn check_epoch(&self, received: i32, owned: Option<&Assignment>) -> Result<(), i16> {
        if received > self.member_epoch {
            return Err(code::FENCED_MEMBER_EPOCH);
        }
        if received < self.member_epoch {
            let subset = owned.is_none_or(|o| is_subset(o, &self.assigned));
            if received != self.previous_member_epoch || !subset {
                return Err(code::FENCED_MEMBER_EPOCH);
            }
        }
        Ok(())
    }
}

fn is_subset(a: &Assignment, b: &Assignment) -> bool {
    a.iter().all(|(t, ps)| ps.is_empty() || b.get(t).is_some_and(|bs| ps.is_subset(bs)))
}

fn intersects(a: &Assignment, b: &Assignment) -> bool {
    a.iter().any(|(t, ps)| b.get(t).is_some_and(|bs| !ps.is_disjoint(bs)))
}

/// `a` without empty topics, for comparisons.
pub fn normalized(a: &Assignment) -> Assignment {
    a.iter().filter(|(_, ps)| !ps.is_empty()).map(|(t, ps)| (*t, ps.clone())).collect()
}

/// Subscribed topic metadata: name → (topic id, partition count).
pub type TopicsMetadata = BTreeMap<String, (TopicId, i32)>;

#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    pub group_epoch: i32,
    pub assignment_epoch: i32,
    pub members: BTreeMap<String, ConsumerMember>,
    /// Target assignment by member id (computed at `assignment_epoch`).
    pub target: BTreeMap<String, Assignment>,
    /// The subscribed topics' metadata when the group epoch last moved: a change (a topic
    /// created, deleted or grown) bumps the epoch.
    pub subscription_metadata: TopicsMetadata,
    next_incarnation: u64,
    /// Bumped by every change, so that a change whose records could not be stored is undone
    /// only if nothing changed the group after it.
    pub version: u64,
}

impl ConsumerGroup {
    pub fn state(&self) -> ConsumerGroupState {
        if self.members.is_empty() {
            ConsumerGroupState::Empty
        } else if self.group_epoch > self.assignment_epoch {
            ConsumerGroupState::Assigning
        } else if self
            .members
            .values()
            .any(|m| m.member_epoch != self.assignment_epoch || m.state != MemberState::Stable)
        {
            ConsumerGroupState::Reconciling
        } else {
            ConsumerGroupState::Stable
        }
    }

    pub fn next_incarnation(&mut self) -> u64 {
        self.next_incarnation += 1;
        self.next_incarnation
    }

    pub fn member_by_instance(&self, instance_id: &str) -> Option<&ConsumerMember> {
        self.members.values().find(|m| m.instance_id.as_deref() == Some(instance_id))
    }

    /// Kafka's preferred server assignor: the one most members ask for, else the default.
    pub fn preferred_assignor(&self, default: Assignor) -> Assignor {
        let mut votes: BTreeMap<&'static str, (usize, Assignor)> = BTreeMap::new();
        for m in self.members.values() {
            if let Some(a) = m.server_assignor.as_deref().and_then(Assignor::parse) {
                votes.entry(a.name()).or_insert((0, a)).0 += 1;
            }
        }
        votes.values().max_by_key(|(n, _)| *n).map(|(_, a)| *a).unwrap_or(default)
    }

    /// Whether another member than `except` holds `(topic, partition)` (assigned or still
    /// revoking it).
    fn held_by_other(&self, except: &str, topic: &TopicId, partition: i32) -> bool {
        self.members.iter().any(|(id, m)| {
            id != except
                && (m.assigned.get(topic).is_some_and(|ps| ps.contains(&partition))
                    || m.pending_revocation.get(topic).is_some_and(|ps| ps.contains(&partition)))
        })
    }

    /// Recomputes the target assignment at the group epoch; returns the members whose target
    /// changed.
    pub fn compute_target(
        &mut self,
        subscriptions: &BTreeMap<String, BTreeSet<String>>,
        topics: &TopicsMetadata,
        assignor: Assignor,
    ) -> Vec<String> {
        let members: Vec<(String, BTreeSet<TopicId>)> = self
            .members
            .keys()
            .map(|id| {
                let subscribed = subscriptions
                    .get(id)
                    .map(|names| names.iter().filter_map(|n| topics.get(n).map(|(t, _)| *t)).collect())
                    .unwrap_or_default();
                (id.clone(), subscribed)
            })
            .collect();
        let partitions: BTreeMap<TopicId, i32> = topics.values().copied().collect();
        let target = match assignor {
            Assignor::Uniform => uniform(&members, &partitions, &self.target),
            Assignor::Range => range(&members, &partitions),
        };
        let changed = members
            .iter()
            .filter(|(id, _)| {
                normalized(self.target.get(id).unwrap_or(&Assignment::new()))
                    != normalized(target.get(id).unwrap_or(&Assignment::new()))
            })
            .map(|(id, _)| id.clone())
            .collect();
        self.target = target;
        self.assignment_epoch = self.group_epoch;
        changed
    }

    /// Kafka's `CurrentAssignmentBuilder`: moves `member_id` towards its target. Partitions the
    /// member must give up are revoked first (epoch unchanged) and only when the member reports
    /// (`owned`) that it let them go does it advance to the assignment epoch; partitions another
    /// member still holds are withheld until released. Returns whether the member changed.
    pub fn reconcile(&mut self, member_id: &str, owned: Option<&Assignment>, now_ms: i64) -> bool {
        let target_epoch = self.assignment_epoch;
        let Some(m) = self.members.get(member_id) else { return false };
        match m.state {
            MemberState::Stable if m.member_epoch == target_epoch => return false,
            MemberState::UnrevokedPartitions => match owned {
                Some(owned) if !intersects(owned, &m.pending_revocation) => {}
                _ => return false,
            },
            _ => {}
        }
        let target = self.target.get(member_id).cloned().unwrap_or_default();
        let current = m.assigned.clone();
        let topics: BTreeSet<TopicId> = target.keys().chain(current.keys()).copied().collect();
        let (mut keep, mut revoke, mut add) = (Assignment::new(), Assignment::new(), Assignment::new());
        let mut unreleased = false;
        for t in topics {
            let empty = BTreeSet::new();
            let want = target.get(&t).unwrap_or(&empty);
            let have = current.get(&t).unwrap_or(&empty);
            let kept: BTreeSet<i32> = have.intersection(want).copied().collect();
            let revoked: BTreeSet<i32> = have.difference(want).copied().collect();
            let mut added = BTreeSet::new();
            for p in want.difference(have) {
                if self.held_by_other(member_id, &t, *p) {
                    unreleased = true;
                } else {
                    added.insert(*p);
                }
            }
            if !kept.is_empty() {
                keep.insert(t, kept);
            }
            if !revoked.is_empty() {
                revoke.insert(t, revoked);
            }
            if !added.is_empty() {
                add.insert(t, added);
            }
        }
        let Some(m) = self.members.get_mut(member_id) else { return false };
        let before = (
            m.member_epoch,
            m.previous_member_epoch,
            m.state,
            m.assigned.clone(),
            m.pending_revocation.clone(),
        );
        if !revoke.is_empty() {
            m.state = MemberState::UnrevokedPartitions;
            m.assigned = keep;
            m.pending_revocation = revoke;
            if m.revocation_deadline_ms.is_none() {
                m.revocation_deadline_ms = Some(now_ms + m.rebalance_timeout_ms.max(0) as i64);
            }
        } else {
            for (t, ps) in add {
                keep.entry(t).or_default().extend(ps);
            }
            if m.member_epoch != target_epoch {
                m.previous_member_epoch = m.member_epoch;
                m.member_epoch = target_epoch;
            }
            m.state = if unreleased { MemberState::UnreleasedPartitions } else { MemberState::Stable };
            m.assigned = keep;
            m.pending_revocation = Assignment::new();
            m.revocation_deadline_ms = None;
        }
        before
            != (
                m.member_epoch,
                m.previous_member_epoch,
                m.state,
                m.assigned.clone(),
                m.pending_revocation.clone(),
            )
    }
}

/// The uniform assignor: every partition of a subscribed topic goes to one of its subscribers,
/// counts as even as the subscriptions allow, and a member keeps what it had where that does
/// not unbalance the group (Kafka's `UniformAssignor` is sticky the same way).
pub fn uniform(
    members: &[(String, BTreeSet<TopicId>)],
    partitions: &BTreeMap<TopicId, i32>,
    previous: &BTreeMap<String, Assignment>,
) -> BTreeMap<String, Assignment> {
    let mut result: BTreeMap<String, Assignment> =
        members.iter().map(|(id, _)| (id.clone(), Assignment::new())).collect();
    let subscribed: BTreeMap<&str, &BTreeSet<TopicId>> =
        members.iter().map(|(id, s)| (id.as_str(), s)).collect();
    let all: Vec<(TopicId, i32)> = partitions
        .iter()
        .filter(|(t, _)| members.iter().any(|(_, s)| s.contains(*t)))
        .flat_map(|(t, n)| (0..*n).map(move |p| (*t, p)))
        .collect();
    // Even shares (Kafka's optimized uniform builder): everyone `floor`, and `extra` members
    // one more — those that already held more than `floor` keep the extra one first.
    let active = members.iter().filter(|(_, s)| !s.is_empty()).count().max(1);
    let floor = all.len() / active;
    let mut extra = all.len() % active;
    let mut count: BTreeMap<&str, usize> = members.iter().map(|(id, _)| (id.as_str(), 0)).collect();
    let mut taken: BTreeSet<(TopicId, i32)> = BTreeSet::new();
    // Sticky: keep what is still subscribed and exists, up to `floor`, then the extra ones.
    let mut keepers: Vec<(&str, Vec<(TopicId, i32)>)> = Vec::new();
    for (id, subs) in members {
        let Some(prev) = previous.get(id) else { continue };
        let kept: Vec<(TopicId, i32)> = prev
            .iter()
            .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
            .filter(|(t, p)| subs.contains(t) && partitions.get(t).is_some_and(|c| *p < *c))
            .collect();
        keepers.push((id.as_str(), kept));
    }
    for round in 0..2 {
        for (id, kept) in &keepers {
            let limit = if round == 0 { floor } else { floor + 1 };
            if round == 1 && (extra == 0 || count.get(id).copied().unwrap_or(0) != floor) {
                continue;
            }
            for (t, p) in kept {
                let n = count.get(id).copied().unwrap_or(0);
                if n >= limit {
                    break;
                }
                if taken.insert((*t, *p)) {
                    result.entry(id.to_string()).or_default().entry(*t).or_default().insert(*p);
                    count.insert(id, n + 1);
                }
            }
            if round == 1 && count.get(id).copied().unwrap_or(0) > floor {
                extra -= 1;
            }
        }
    }
    // The rest to the least loaded subscriber.
    for (t, p) in &all {
        if taken.contains(&(*t, *p)) {
            continue;
        }
        let best = members
            .iter()
            .filter(|(_, s)| s.contains(t))
            .min_by_key(|(id, _)| count.get(id.as_str()).copied().unwrap_or(0))
            .map(|(id, _)| id.as_str());
        if let Some(best) = best {
            result.entry(best.to_string()).or_default().entry(*t).or_default().insert(*p);
            *count.entry(best).or_default() += 1;
            taken.insert((*t, *p));
        }
    }
    // Balance (uneven subscriptions): move a partition from a member to a subscriber with at
    // least two fewer. Each move lowers the spread, so this ends; bounded besides.
    for _ in 0..all.len() {
        let mut moved = false;
        let ids: Vec<String> = result.keys().cloned().collect();
        'outer: for from in &ids {
            let from_count = count.get(from.as_str()).copied().unwrap_or(0);
            let owned: Vec<(TopicId, i32)> = result
                .get(from)
                .map(|a| a.iter().flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p))).collect())
                .unwrap_or_default();
            for (t, p) in owned.into_iter().rev() {
                let to = ids
                    .iter()
                    .filter(|id| *id != from && subscribed.get(id.as_str()).is_some_and(|s| s.contains(&t)))
                    .min_by_key(|id| count.get(id.as_str()).copied().unwrap_or(0));
                let Some(to) = to else { continue };
                if count.get(to.as_str()).copied().unwrap_or(0) + 2 <= from_count {
                    if let Some(ps) = result.get_mut(from).and_then(|a| a.get_mut(&t)) {
                        ps.remove(&p);
                    }
                    result.entry(to.clone()).or_default().entry(t).or_default().insert(p);
                    if let Some(c) = count.get_mut(from.as_str()) {
                        *c -= 1;
                    }
                    if let Some(c) = count.get_mut(to.as_str()) {
                        *c += 1;
                    }
                    moved = true;
                    break 'outer;
                }
            }
        }
        if !moved {
            break;
        }
    }
    result.values_mut().for_each(|a| a.retain(|_, ps| !ps.is_empty()));
    result
}

/// The range assignor: per topic, its subscribers in member-id order each get a contiguous
/// range, the first `partitions % subscribers` one more.
pub fn range(
    members: &[(String, BTreeSet<TopicId>)],
    partitions: &BTreeMap<TopicId, i32>,
) -> BTreeMap<String, Assignment> {
    let mut result: BTreeMap<String, Assignment> =
        members.iter().map(|(id, _)| (id.clone(), Assignment::new())).collect();
    for (t, n) in partitions {
        let subscribers: Vec<&String> =
            members.iter().filter(|(_, s)| s.contains(t)).map(|(id, _)| id).collect();
        if subscribers.is_empty() {
            continue;
        }
        let n = (*n).max(0) as usize;
        let (base, extra) = (n / subscribers.len(), n % subscribers.len());
        let mut next = 0usize;
        for (i, id) in subscribers.iter().enumerate() {
            let len = base + usize::from(i < extra);
            if len > 0 {
                let ps = (next..next + len).map(|p| p as i32).collect();
                result.entry((*id).clone()).or_default().insert(*t, ps);
            }
            next += len;
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: TopicId = [1; 16];
    const B: TopicId = [2; 16];

    fn members(spec: &[(&str, &[TopicId])]) -> Vec<(String, BTreeSet<TopicId>)> {
        spec.iter().map(|(id, ts)| (id.to_string(), ts.iter().copied().collect())).collect()
    }

    fn count(a: &BTreeMap<String, Assignment>, id: &str) -> usize {
        a.get(id).map(|a| a.values().map(BTreeSet::len).sum()).unwrap_or(0)
    }

    #[test]
    fn uniform_is_balanced_and_sticky() {
        let parts: BTreeMap<TopicId, i32> = [(A, 3)].into();
        let two = uniform(&members(&[("m1", &[A]), ("m2", &[A])]), &parts, &BTreeMap::new());
        assert_eq!((count(&two, "m1"), count(&two, "m2")), (2, 1));
        let three = uniform(&members(&[("m1", &[A]), ("m2", &[A]), ("m3", &[A])]), &parts, &two);
        assert!(["m1", "m2", "m3"].iter().all(|m| count(&three, m) == 1));
        // m2 keeps its partition; m1 keeps one of its two.
        assert_eq!(three["m2"], two["m2"]);
        assert!(three["m1"][&A].is_subset(&two["m1"][&A]));
        // Uneven subscriptions: B only to m2, A to both.
        let parts: BTreeMap<TopicId, i32> = [(A, 4), (B, 2)].into();
        let r = uniform(&members(&[("m1", &[A]), ("m2", &[A, B])]), &parts, &BTreeMap::new());
        assert_eq!((count(&r, "m1"), count(&r, "m2")), (3, 3));
        assert_eq!(r["m2"][&B].len(), 2);
    }

    #[test]
    fn uniform_stays_balanced_complete_and_sticky_as_members_come_and_go() {
        let ids: Vec<String> = (0..7).map(|i| format!("m{i}")).collect();
        for p in 0..24 {
            let parts: BTreeMap<TopicId, i32> = [(A, p)].into();
            let mut previous: BTreeMap<String, Assignment> = BTreeMap::new();
            // Members join one by one, then leave from the front.
            let sizes: Vec<std::ops::Range<usize>> =
                (1..=7).map(|n| 0..n).chain((1..7).map(|k| k..7)).collect();
            for range in sizes {
                let spec: Vec<(String, BTreeSet<TopicId>)> =
                    ids[range].iter().map(|id| (id.clone(), [A].into())).collect();
                let next = uniform(&spec, &parts, &previous);
                let counts: Vec<usize> = spec.iter().map(|(id, _)| count(&next, id)).collect();
                let all: BTreeSet<i32> = next.values().flat_map(|a| a.values().flatten().copied()).collect();
                assert_eq!(counts.iter().sum::<usize>(), p as usize, "each partition once: {next:?}");
                assert_eq!(all.len(), p as usize);
                let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
                assert!(max - min <= 1, "balanced: {counts:?}");
                for (id, _) in &spec {
                    let before = previous.get(id).and_then(|a| a.get(&A)).cloned().unwrap_or_default();
                    let after = next.get(id).and_then(|a| a.get(&A)).cloned().unwrap_or_default();
                    let kept = before.intersection(&after).count();
                    assert_eq!(
                        kept,
                        before.len().min(after.len()),
                        "{id} keeps what it can: {before:?} -> {after:?}"
                    );
                }
                previous = next;
            }
        }
    }

    #[test]
    fn range_gives_contiguous_ranges() {
        let parts: BTreeMap<TopicId, i32> = [(A, 5)].into();
        let r = range(&members(&[("b", &[A]), ("a", &[A])]), &parts);
        assert_eq!(r["b"][&A], [0, 1, 2].into(), "members in the order given (sorted by the caller)");
        assert_eq!(r["a"][&A], [3, 4].into());
    }

    fn group_with(members: &[&str]) -> ConsumerGroup {
        let mut g = ConsumerGroup::default();
        for id in members {
            g.members.insert(id.to_string(), ConsumerMember::new(id, 0));
        }
        g
    }

    #[test]
    fn revocation_before_assignment() {
        let subs: BTreeMap<String, BTreeSet<String>> =
            [("m1".to_string(), ["t".to_string()].into()), ("m2".to_string(), ["t".to_string()].into())]
                .into();
        let topics: TopicsMetadata = [("t".to_string(), (A, 2))].into();
        let mut g = group_with(&["m1"]);
        g.group_epoch = 1;
        g.compute_target(&[("m1".to_string(), subs["m1"].clone())].into(), &topics, Assignor::Uniform);
        assert!(g.reconcile("m1", Some(&Assignment::new()), 0));
        assert_eq!(g.members["m1"].member_epoch, 1);
        assert_eq!(g.members["m1"].assigned[&A].len(), 2);
        // m2 joins: m1 must give up one partition before m2 gets it.
        g.members.insert("m2".into(), ConsumerMember::new("m2", 0));
        g.group_epoch = 2;
        g.compute_target(&subs, &topics, Assignor::Uniform);
        assert!(g.reconcile("m2", Some(&Assignment::new()), 0));
        assert_eq!(g.members["m2"].state, MemberState::UnreleasedPartitions);
        assert!(g.members["m2"].assigned.is_empty());
        assert!(g.reconcile("m1", None, 0));
        let m1 = &g.members["m1"];
        assert_eq!((m1.state, m1.member_epoch), (MemberState::UnrevokedPartitions, 1));
        let still_owned = g.members["m1"].assigned.clone();
        let mut both = still_owned.clone();
        both.entry(A).or_default().extend(g.members["m1"].pending_revocation[&A].iter());
        assert!(!g.reconcile("m1", Some(&both), 0), "not revoked yet: no progress");
        assert!(!g.reconcile("m2", Some(&Assignment::new()), 0), "still held by m1");
        assert!(g.reconcile("m1", Some(&still_owned), 0));
        assert_eq!((g.members["m1"].state, g.members["m1"].member_epoch), (MemberState::Stable, 2));
        assert!(g.reconcile("m2", Some(&Assignment::new()), 0));
        assert_eq!((g.members["m2"].state, g.members["m2"].member_epoch), (MemberState::Stable, 2));
        assert_eq!(g.state(), ConsumerGroupState::Stable);
    }

    #[test]
    fn epoch_checks_are_kafkas() {
        let mut m = ConsumerMember::new("m", 0);
        m.member_epoch = 5;
        m.previous_member_epoch = 3;
        assert_eq!(m.check_epoch(5, None), Ok(()));
        assert_eq!(m.check_epoch(6, None), Err(code::FENCED_MEMBER_EPOCH));
        assert_eq!(m.check_epoch(4, None), Err(code::FENCED_MEMBER_EPOCH));
        assert_eq!(m.check_epoch(3, Some(&Assignment::new())), Ok(()), "lost response");
    }
}
