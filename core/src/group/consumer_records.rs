//! The KIP-848 consumer group records of `__consumer_offsets`, in Kafka 4's schemas
//! (`group-coordinator/src/main/resources/common/message/ConsumerGroup*.json`):
//!
//! | key version | key (not flexible)                                 | value (v0, flexible)                  |
//! | ----------- | -------------------------------------------------- | ------------------------------------- |
//! | 3           | `ConsumerGroupMetadataKey {group}`                 | `{Epoch}`                             |
//! | 4           | `ConsumerGroupPartitionMetadataKey {group}`        | topic metadata (read, not used)       |
//! | 5           | `ConsumerGroupMemberMetadataKey {group, member}`   | instance, rack, client, subscription… |
//! | 6           | `ConsumerGroupTargetAssignmentMetadataKey {group}` | `{AssignmentEpoch}`                   |
//! | 7           | `ConsumerGroupTargetAssignmentMemberKey {g, m}`    | `{TopicPartitions[]}`                 |
//! | 8           | `ConsumerGroupCurrentMemberAssignmentKey {g, m}`   | epochs, state, assigned, revoking     |
//!
//! A null value is a tombstone. Values are read leniently (unknown tagged fields skipped), and
//! every length is checked against the bytes left, as in [`super::records`].

use std::collections::{BTreeMap, BTreeSet};

use super::records::{put_str, Reader};

/// A topic id as the metadata image keeps it.
pub type TopicId = [u8; 16];
/// Partitions by topic id.
pub type Assignment = BTreeMap<TopicId, BTreeSet<i32>>;

const VALUE_VERSION: i16 = 0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerKey {
    Metadata { group: String },
    PartitionMetadata { group: String },
    Member { group: String, member: String },
    TargetMetadata { group: String },
    TargetMember { group: String, member: String },
    CurrentAssignment { group: String, member: String },
}

impl ConsumerKey {
    pub fn group(&self) -> &str {
        match self {
            ConsumerKey::Metadata { group }
            | ConsumerKey::PartitionMetadata { group }
            | ConsumerKey::Member { group, .. }
            | ConsumerKey::TargetMetadata { group }
            | ConsumerKey::TargetMember { group, .. }
            | ConsumerKey::CurrentAssignment { group, .. } => group,
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let (version, group, member): (i16, &str, Option<&str>) = match self {
            ConsumerKey::Metadata { group } => (3, group, None),
            ConsumerKey::PartitionMetadata { group } => (4, group, None),
            ConsumerKey::Member { group, member } => (5, group, Some(member)),
            ConsumerKey::TargetMetadata { group } => (6, group, None),
            ConsumerKey::TargetMember { group, member } => (7, group, Some(member)),
            ConsumerKey::CurrentAssignment { group, member } => (8, group, Some(member)),
        };
        let mut out = Vec::with_capacity(6 + group.len() + member.map_or(0, str::len));
        out.extend_from_slice(&version.to_be_bytes());
        put_str(&mut out, group);
        if let Some(member) = member {
            put_str(&mut out, member);
        }
        out
    }
}

/// The rest of a key whose version `decode_key` already read.
pub(super) fn decode_key(version: i16, r: &mut Reader<'_>) -> Option<ConsumerKey> {
    let group = r.str()?;
    Some(match version {
        3 => ConsumerKey::Metadata { group },
        4 => ConsumerKey::PartitionMetadata { group },
        5 => ConsumerKey::Member { group, member: r.str()? },
        6 => ConsumerKey::TargetMetadata { group },
        7 => ConsumerKey::TargetMember { group, member: r.str()? },
        8 => ConsumerKey::CurrentAssignment { group, member: r.str()? },
        _ => return None,
    })
}

/// `ConsumerGroupMemberMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
}

/// `ConsumerGroupCurrentMemberAssignmentValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentAssignmentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    /// Kafka's `MemberState` value (0 stable, 1 unrevoked, 2 unreleased).
    pub state: i8,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

// ---- flexible encoding ---------------------------------------------------------------------

fn put_uvarint(out: &mut Vec<u8>, mut v: u32) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_compact_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => put_uvarint(out, 0),
        Some(s) => {
            let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
            put_uvarint(out, bytes.len() as u32 + 1);
            out.extend_from_slice(bytes);
        }
    }
}

fn put_topic_partitions(out: &mut Vec<u8>, assignment: &Assignment) {
    put_uvarint(out, assignment.len() as u32 + 1);
    for (topic_id, partitions) in assignment {
        out.extend_from_slice(topic_id);
        put_uvarint(out, partitions.len() as u32 + 1);
        for p in partitions {
            out.extend_from_slice(&p.to_be_bytes());
        }
        put_uvarint(out, 0); // no tagged fields
    }
}

fn value_header() -> Vec<u8> {
    VALUE_VERSION.to_be_bytes().to_vec()
}

/// `ConsumerGroupMetadataValue` / `ConsumerGroupTargetAssignmentMetadataValue`: one epoch.
pub fn epoch_value(epoch: i32) -> Vec<u8> {
    let mut out = value_header();
    out.extend_from_slice(&epoch.to_be_bytes());
    put_uvarint(&mut out, 0);
    out
}

pub fn member_value(v: &MemberMetadataValue) -> Vec<u8> {
    let mut out = value_header();
    put_compact_str(&mut out, v.instance_id.as_deref());
    put_compact_str(&mut out, v.rack_id.as_deref());
    put_compact_str(&mut out, Some(&v.client_id));
    put_compact_str(&mut out, Some(&v.client_host));
    put_uvarint(&mut out, v.subscribed_topic_names.len() as u32 + 1);
    for name in &v.subscribed_topic_names {
        put_compact_str(&mut out, Some(name));
    }
    put_compact_str(&mut out, v.subscribed_topic_regex.as_deref());
    out.extend_from_slice(&v.rebalance_timeout_ms.to_be_bytes());
    put_compact_str(&mut out, v.server_assignor.as_deref());
    put_uvarint(&mut out, 0);
    out
}

pub fn target_member_value(assignment: &Assignment) -> Vec<u8> {
    let mut out = value_header();
    put_topic_partitions(&mut out, assignment);
    put_uvarint(&mut out, 0);
    out
}

pub fn current_assignment_value(v: &CurrentAssignmentValue) -> Vec<u8> {
    let mut out = value_header();
    out.extend_from_slice(&v.member_epoch.to_be_bytes());
    out.extend_from_slice(&v.previous_member_epoch.to_be_bytes());
    out.push(v.state as u8);
    put_topic_partitions(&mut out, &v.assigned);
    put_topic_partitions(&mut out, &v.pending_revocation);
    put_uvarint(&mut out, 0);
    out
}

// ---- decoding ------------------------------------------------------------------------------

fn value_reader(value: &[u8]) -> Option<Reader<'_>> {
    let mut r = Reader { buf: value, flexible: true };
    (r.i16()? == VALUE_VERSION).then_some(r)
}

fn topic_partitions(r: &mut Reader<'_>) -> Option<Assignment> {
    let count = r.array_len()?;
    let mut out = Assignment::new();
    for _ in 0..count {
        let topic_id: TopicId = r.take(16)?.try_into().ok()?;
        let n = r.array_len()?;
        let mut partitions = BTreeSet::new();
        for _ in 0..n {
            partitions.insert(r.i32()?);
        }
        r.tagged_fields()?;
        out.entry(topic_id).or_default().extend(partitions);
    }
    Some(out)
}

pub fn decode_epoch_value(value: &[u8]) -> Option<i32> {
    value_reader(value)?.i32()
}

pub fn decode_member_value(value: &[u8]) -> Option<MemberMetadataValue> {
    let mut r = value_reader(value)?;
    let instance_id = r.nullable_str()?;
    let rack_id = r.nullable_str()?;
    let client_id = r.str()?;
    let client_host = r.str()?;
    let count = r.array_len()?;
    let mut subscribed_topic_names = Vec::with_capacity(count);
    for _ in 0..count {
        subscribed_topic_names.push(r.str()?);
    }
    let subscribed_topic_regex = r.nullable_str()?;
    let rebalance_timeout_ms = r.i32()?;
    let server_assignor = r.nullable_str()?;
    Some(MemberMetadataValue {
        instance_id,
        rack_id,
        client_id,
        client_host,
        subscribed_topic_names,
        subscribed_topic_regex,
        rebalance_timeout_ms,
        server_assignor,
    })
}

pub fn decode_target_member_value(value: &[u8]) -> Option<Assignment> {
    topic_partitions(&mut value_reader(value)?)
}

pub fn decode_current_assignment_value(value: &[u8]) -> Option<CurrentAssignmentValue> {
    let mut r = value_reader(value)?;
    let member_epoch = r.i32()?;
    let previous_member_epoch = r.i32()?;
    let state = r.take(1)?[0] as i8;
    let assigned = topic_partitions(&mut r)?;
    let pending_revocation = topic_partitions(&mut r)?;
    Some(CurrentAssignmentValue { member_epoch, previous_member_epoch, state, assigned, pending_revocation })
}

#[cfg(test)]
mod tests {
    use super::super::records::{decode_key, RecordKey};
    use super::*;

    #[test]
    fn keys_are_kafkas_and_round_trip() {
        let key = ConsumerKey::Member { group: "g".into(), member: "m1".into() };
        // version 5, "g", "m1": ConsumerGroupMemberMetadataKey is not flexible.
        assert_eq!(key.encode(), [0, 5, 0, 1, b'g', 0, 2, b'm', b'1']);
        for key in [
            ConsumerKey::Metadata { group: "g".into() },
            ConsumerKey::TargetMetadata { group: "g".into() },
            ConsumerKey::TargetMember { group: "g".into(), member: "m".into() },
            ConsumerKey::CurrentAssignment { group: "g".into(), member: "m".into() },
            key,
        ] {
            assert_eq!(decode_key(&key.encode()), Some(RecordKey::Consumer(key.clone())));
        }
    }

    #[test]
    fn damaged_records_are_refused_not_panicked_on() {
        // Every truncation and many single-byte changes of valid records: decoding answers
        // `None` or a value, never panics, never allocates beyond the bytes it was given.
        let m = MemberMetadataValue {
            instance_id: Some("i".into()),
            rack_id: None,
            client_id: "c".into(),
            client_host: "h".into(),
            subscribed_topic_names: vec!["t".into()],
            subscribed_topic_regex: Some("r.*".into()),
            rebalance_timeout_ms: 1,
            server_assignor: None,
        };
        let mut a = Assignment::new();
        a.insert([7; 16], [1, 2, 3].into_iter().collect());
        let c = CurrentAssignmentValue {
            member_epoch: 1,
            previous_member_epoch: 0,
            state: 0,
            assigned: a.clone(),
            pending_revocation: a.clone(),
        };
        let samples =
            [member_value(&m), current_assignment_value(&c), target_member_value(&a), epoch_value(3)];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for bytes in samples {
            for cut in 0..bytes.len() {
                let part = &bytes[..cut];
                let _ = (decode_member_value(part), decode_current_assignment_value(part));
                let _ = (decode_target_member_value(part), decode_epoch_value(part));
            }
            for _ in 0..2000 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let mut damaged = bytes.clone();
                let at = (seed as usize) % damaged.len();
                damaged[at] = (seed >> 32) as u8;
                let _ = (decode_member_value(&damaged), decode_current_assignment_value(&damaged));
                let _ = (decode_target_member_value(&damaged), decode_epoch_value(&damaged));
            }
        }
    }

    #[test]
    fn values_round_trip() {
        assert_eq!(epoch_value(7), [0, 0, 0, 0, 0, 7, 0]);
        assert_eq!(decode_epoch_value(&epoch_value(7)), Some(7));
        let m = MemberMetadataValue {
            instance_id: None,
            rack_id: Some("r".into()),
            client_id: "c".into(),
            client_host: "/127.0.0.1".into(),
            subscribed_topic_names: vec!["a".into(), "b".into()],
            subscribed_topic_regex: None,
            rebalance_timeout_ms: 300_000,
            server_assignor: Some("uniform".into()),
        };
        assert_eq!(decode_member_value(&member_value(&m)), Some(m));
        let mut assigned = Assignment::new();
        assigned.insert([1; 16], [0, 2].into_iter().collect());
        let mut revoking = Assignment::new();
        revoking.insert([2; 16], [1].into_iter().collect());
        let c = CurrentAssignmentValue {
            member_epoch: 5,
            previous_member_epoch: 4,
            state: 1,
            assigned: assigned.clone(),
            pending_revocation: revoking,
        };
        assert_eq!(decode_current_assignment_value(&current_assignment_value(&c)), Some(c));
        assert_eq!(decode_target_member_value(&target_member_value(&assigned)), Some(assigned.clone()));
        let bytes = target_member_value(&assigned);
        assert_eq!(decode_target_member_value(&bytes[..bytes.len() - 3]), None, "truncated");
    }
}
