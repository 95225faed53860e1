//! The records of `__consumer_offsets`, in Kafka's own key/value schemas (from
//! `group-coordinator/src/main/resources/common/message/` of Kafka 3.7), so that the partition
//! logs read the same as Kafka's:
//!
//! | key version | key                                    | value                                  |
//! | ----------- | -------------------------------------- | -------------------------------------- |
//! | 0, 1        | `OffsetCommitKey {group, topic, part}` | `OffsetCommitValue` v0–v4 (we write v3)|
//! | 2           | `GroupMetadataKey {group}`             | `GroupMetadataValue` v0–v4 (we write v3)|
//!
//! | 3–8         | KIP-848 consumer groups                | see [`super::consumer_records`]        |
//!
//! A null value is a tombstone: the committed offset, or the whole group, is gone. Keys of other
//! versions are skipped on replay.
//!
//! Every byte read back is untrusted (a torn or foreign log): decoding checks each length
//! against what remains and returns `None` rather than panicking or over-allocating.

use bytes::Bytes;

/// Key versions.
pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// Value versions we write.
pub const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
pub const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// A decoded record key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordKey {
    Offset {
        group: String,
        topic: String,
        partition: i32,
    },
    Group {
        group: String,
    },
    /// A KIP-848 consumer group record (key versions 3–8), see [`super::consumer_records`].
    Consumer(super::consumer_records::ConsumerKey),
}

/// `OffsetCommitValue`, whatever version it was written in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetValue {
    pub offset: i64,
    /// -1: unknown.
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp_ms: i64,
}

/// `GroupMetadataValue.MemberMetadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout_ms: i32,
    pub session_timeout_ms: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// `GroupMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp_ms: i64,
    pub members: Vec<MemberValue>,
}

// ---- encoding --------------------------------------------------------------------------------

pub(super) fn put_str(out: &mut Vec<u8>, s: &str) {
    // Group ids, topics and member ids come from requests whose strings are i16-length on the
    // wire, so they fit; clamp anyway rather than write a wrong length.
    let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    out.extend_from_slice(&(bytes.len() as i16).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn put_nullable_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.extend_from_slice(&(-1i16).to_be_bytes()),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.extend_from_slice(&(b.len() as i32).to_be_bytes());
    out.extend_from_slice(b);
}

pub fn offset_key(group: &str, topic: &str, partition: i32) -> Vec<u8> {
    let mut out = Vec::with_capacity(8 + group.len() + topic.len());
    out.extend_from_slice(&OFFSET_COMMIT_KEY_VERSION.to_be_bytes());
    put_str(&mut out, group);
    put_str(&mut out, topic);
    out.extend_from_slice(&partition.to_be_bytes());
    out
}

pub fn group_key(group: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + group.len());
    out.extend_from_slice(&GROUP_METADATA_KEY_VERSION.to_be_bytes());
    put_str(&mut out, group);
    out
}

/// `OffsetCommitValue` v3: offset, leader epoch, metadata, commit timestamp.
pub fn offset_value(value: &OffsetValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(24 + value.metadata.len());
    out.extend_from_slice(&OFFSET_COMMIT_VALUE_VERSION.to_be_bytes());
    out.extend_from_slice(&value.offset.to_be_bytes());
    out.extend_from_slice(&value.leader_epoch.to_be_bytes());
    put_str(&mut out, &value.metadata);
    out.extend_from_slice(&value.commit_timestamp_ms.to_be_bytes());
    out
}

/// `GroupMetadataValue` v3.
pub fn group_value(value: &GroupValue) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&GROUP_METADATA_VALUE_VERSION.to_be_bytes());
    put_str(&mut out, &value.protocol_type);
    out.extend_from_slice(&value.generation.to_be_bytes());
    put_nullable_str(&mut out, value.protocol.as_deref());
    put_nullable_str(&mut out, value.leader.as_deref());
    out.extend_from_slice(&value.current_state_timestamp_ms.to_be_bytes());
    out.extend_from_slice(&(value.members.len() as i32).to_be_bytes());
    for m in &value.members {
        put_str(&mut out, &m.member_id);
        put_nullable_str(&mut out, m.group_instance_id.as_deref());
        put_str(&mut out, &m.client_id);
        put_str(&mut out, &m.client_host);
        out.extend_from_slice(&m.rebalance_timeout_ms.to_be_bytes());
        out.extend_from_slice(&m.session_timeout_ms.to_be_bytes());
        put_bytes(&mut out, &m.subscription);
        put_bytes(&mut out, &m.assignment);
    }
    out
}

// ---- decoding --------------------------------------------------------------------------------

/// A bounds-checked reader; `flexible` switches strings, bytes and arrays to the compact
/// (varint) forms of flexible versions.
pub(super) struct Reader<'a> {
    pub(super) buf: &'a [u8],
    pub(super) flexible: bool,
}

impl<'a> Reader<'a> {
    pub(super) fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Some(head)
    }
    pub(super) fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.take(2)?.try_into().ok()?))
    }
    pub(super) fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.take(4)?.try_into().ok()?))
    }
    pub(super) fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.take(8)?.try_into().ok()?))
    }
    pub(super) fn uvarint(&mut self) -> Option<u32> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let b = self.take(1)?[0];
            value |= ((b & 0x7f) as u32) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    /// A length; `None` inside `Some` means null.
    fn len(&mut self, short: bool) -> Option<Option<usize>> {
        if self.flexible {
            let n = self.uvarint()?;
            return Some(if n == 0 { None } else { Some(n as usize - 1) });
        }
        let n = if short { self.i16()? as i32 } else { self.i32()? };
        match n {
            -1 => Some(None),
            n if n < 0 => None,
            n => Some(Some(n as usize)),
        }
    }
    pub(super) fn nullable_str(&mut self) -> Option<Option<String>> {
        match self.len(true)? {
            None => Some(None),
            Some(n) => Some(Some(String::from_utf8(self.take(n)?.to_vec()).ok()?)),
        }
    }
    pub(super) fn str(&mut self) -> Option<String> {
        self.nullable_str()?
    }
    fn bytes(&mut self) -> Option<Bytes> {
        match self.len(false)? {
            None => Some(Bytes::new()),
            Some(n) => Some(Bytes::copy_from_slice(self.take(n)?)),
        }
    }
    pub(super) fn array_len(&mut self) -> Option<usize> {
        let n = self.len(false)?.unwrap_or(0);
        // Each element is at least one byte: a count beyond the bytes left is corrupt.
        (n <= self.buf.len()).then_some(n)
    }
    /// Skips a flexible struct's tagged fields.
    pub(super) fn tagged_fields(&mut self) -> Option<()> {
        if !self.flexible {
            return Some(());
        }
        let count = self.uvarint()?;
        for _ in 0..count {
            self.uvarint()?;
            let size = self.uvarint()? as usize;
            self.take(size)?;
        }
        Some(())
    }
}

/// Decodes a record key; `None` for versions we do not use or bytes that do not parse.
pub fn decode_key(key: &[u8]) -> Option<RecordKey> {
    let mut r = Reader { buf: key, flexible: false };
    match r.i16()? {
        0 | 1 => {
            let group = r.str()?;
            let topic = r.str()?;
            let partition = r.i32()?;
            Some(RecordKey::Offset { group, topic, partition })
        }
        2 => Some(RecordKey::Group { group: r.str()? }),
        version => super::consumer_records::decode_key(version, &mut r).map(RecordKey::Consumer),
    }
}

pub fn decode_offset_value(value: &[u8]) -> Option<OffsetValue> {
    let mut r = Reader { buf: value, flexible: false };
    let version = r.i16()?;
    r.flexible = version >= 4;
    let offset = r.i64()?;
    let leader_epoch = if version >= 3 { r.i32()? } else { -1 };
    let metadata = r.nullable_str()?.unwrap_or_default();
    let commit_timestamp_ms = r.i64()?;
    if version == 1 {
        r.i64()?; // expire timestamp: retention is recomputed from the commit time
    }
    if !(0..=4).contains(&version) {
        return None;
    }
    Some(OffsetValue { offset, leader_epoch, metadata, commit_timestamp_ms })
}

pub fn decode_group_value(value: &[u8]) -> Option<GroupValue> {
    let mut r = Reader { buf: value, flexible: false };
    let version = r.i16()?;
    if !(0..=4).contains(&version) {
        return None;
    }
    r.flexible = version >= 4;
    let protocol_type = r.str()?;
    let generation = r.i32()?;
    let protocol = r.nullable_str()?;
    let leader = r.nullable_str()?;
    let current_state_timestamp_ms = if version >= 2 { r.i64()? } else { -1 };
    let count = r.array_len()?;
    let mut members = Vec::with_capacity(count);
    for _ in 0..count {
        let member_id = r.str()?;
        let group_instance_id = if version >= 3 { r.nullable_str()? } else { None };
        let client_id = r.str()?;
        let client_host = r.str()?;
        let rebalance_timeout_ms = if version >= 1 { r.i32()? } else { -1 };
        let session_timeout_ms = r.i32()?;
        let subscription = r.bytes()?;
        let assignment = r.bytes()?;
        r.tagged_fields()?;
        members.push(MemberValue {
            member_id,
            group_instance_id,
            client_id,
            client_host,
            rebalance_timeout_ms: if version >= 1 { rebalance_timeout_ms } else { session_timeout_ms },
            session_timeout_ms,
            subscription,
            assignment,
        });
    }
    r.tagged_fields()?;
    Some(GroupValue { protocol_type, generation, protocol, leader, current_state_timestamp_ms, members })
}

/// The topics of a `ConsumerProtocolSubscription` (any version: the topic array comes first
/// after the version in all of them; v0–v3 are not flexible). `None` if it does not parse.
pub fn subscribed_topics(metadata: &[u8]) -> Option<Vec<String>> {
    let mut r = Reader { buf: metadata, flexible: false };
    let version = r.i16()?;
    if !(0..=3).contains(&version) {
        return None;
    }
    let count = r.array_len()?;
    let mut topics = Vec::with_capacity(count);
    for _ in 0..count {
        topics.push(r.str()?);
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_key_round_trips() {
        let key = offset_key("g", "orders", 7);
        // version 1, "g", "orders", 7 — byte for byte Kafka's OffsetCommitKey v1.
        assert_eq!(key, [&[0, 1, 0, 1, b'g', 0, 6][..], b"orders", &[0, 0, 0, 7]].concat());
        assert_eq!(
            decode_key(&key),
            Some(RecordKey::Offset { group: "g".into(), topic: "orders".into(), partition: 7 })
        );
        assert_eq!(decode_key(&group_key("grp")), Some(RecordKey::Group { group: "grp".into() }));
        assert_eq!(decode_key(&[0, 9, 0, 0]), None, "unknown key versions are skipped");
        assert_eq!(decode_key(&key[..key.len() - 1]), None, "truncated");
    }

    #[test]
    fn offset_value_round_trips_and_reads_old_versions() {
        let v = OffsetValue { offset: 42, leader_epoch: 3, metadata: "m".into(), commit_timestamp_ms: 1000 };
        assert_eq!(decode_offset_value(&offset_value(&v)), Some(v));
        // v1: offset, metadata, commit ts, expire ts.
        let mut v1 = vec![0, 1];
        v1.extend_from_slice(&5i64.to_be_bytes());
        v1.extend_from_slice(&[0, 0]);
        v1.extend_from_slice(&9i64.to_be_bytes());
        v1.extend_from_slice(&99i64.to_be_bytes());
        let d = decode_offset_value(&v1).unwrap();
        assert_eq!((d.offset, d.leader_epoch, d.metadata.as_str(), d.commit_timestamp_ms), (5, -1, "", 9));
        assert_eq!(decode_offset_value(&v1[..10]), None);
    }

    #[test]
    fn group_value_round_trips() {
        let v = GroupValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            current_state_timestamp_ms: 123,
            members: vec![MemberValue {
                member_id: "m-1".into(),
                group_instance_id: Some("i".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout_ms: 300_000,
                session_timeout_ms: 10_000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        assert_eq!(decode_group_value(&group_value(&v)), Some(v.clone()));
        let empty = GroupValue { protocol: None, leader: None, members: vec![], ..v };
        assert_eq!(decode_group_value(&group_value(&empty)), Some(empty.clone()));
        // A member count far beyond the bytes is refused, not allocated.
        let mut bad = group_value(&empty);
        let n = bad.len();
        bad[n - 4..].copy_from_slice(&i32::MAX.to_be_bytes());
        assert_eq!(decode_group_value(&bad), None);
    }

    #[test]
    fn subscription_topics() {
        // ConsumerProtocolSubscription v1: version, topics ["a", "bc"], user data null, owned [].
        let mut m = vec![0, 1, 0, 0, 0, 2, 0, 1, b'a', 0, 2, b'b', b'c'];
        m.extend_from_slice(&(-1i32).to_be_bytes());
        m.extend_from_slice(&0i32.to_be_bytes());
        assert_eq!(subscribed_topics(&m), Some(vec!["a".to_string(), "bc".to_string()]));
        assert_eq!(subscribed_topics(&[0, 9]), None);
    }
}
