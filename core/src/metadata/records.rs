//! The metadata records: every change to topics, partitions, configs and producer-id blocks is
//! one of these, committed to the metadata log by the controller and applied in order by every
//! shard's [`MetadataImage`](super::image::MetadataImage).
//!
//! They are encoded with `rkyv` (explicit little-endian, aligned, 32-bit format features in the
//! workspace manifest, so the bytes on disk never change with a default). One log frame holds one
//! *batch* (`Vec<MetadataRecord>`): a batch is what one control operation commits, and it is
//! committed or lost as a whole.
//!
//! Invariants:
//! - Bytes read back are untrusted: [`decode_batch`] validates them (rkyv `bytecheck`) before
//!   anything is deserialized, and never panics on any input.
//! - Records are facts, not commands: they carry the decision (e.g. the chosen leader), so
//!   replaying them needs no configuration and gives the same image on every shard and restart.
//! - New variants go at the end of [`MetadataRecord`]: the archived enum tag is the variant
//!   index, so reordering would reinterpret old logs.

use rkyv::rancor;
use rkyv::util::AlignedVec;
use rkyv::{Archive, Deserialize, Serialize};

/// Kafka's `ConfigResource.Type` id of a topic.
pub const RESOURCE_TOPIC: i8 = 2;
/// Kafka's `ConfigResource.Type` id of a broker.
pub const RESOURCE_BROKER: i8 = 4;

/// A topic id: a v4 UUID's 16 bytes, big-endian as Kafka writes `Uuid` on the wire.
pub type TopicId = [u8; 16];

/// A new topic (its partitions follow as [`PartitionRecord`]s in the same batch).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct TopicRecord {
    pub name: String,
    pub topic_id: TopicId,
}

/// A partition's full assignment: creates the partition, or replaces it (leader/ISR change).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct PartitionRecord {
    pub topic_id: TopicId,
    pub partition: i32,
    /// Node ids; the first is the preferred leader.
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    /// A node id (`node.id + 1000 × shard`), or -1 for none.
    pub leader: i32,
    pub leader_epoch: i32,
}

/// Sets (`Some`) or deletes (`None`) one dynamic config of one resource.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ConfigRecord {
    /// [`RESOURCE_TOPIC`] or [`RESOURCE_BROKER`].
    pub resource_type: i8,
    /// Topic name, or broker id in decimal ("" for the cluster-wide default).
    pub resource_name: String,
    pub name: String,
    pub value: Option<String>,
}

/// Deletes a topic with its partitions and configs.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct RemoveTopicRecord {
    pub topic_id: TopicId,
}

/// A block of producer ids was handed to `broker_id`; the next block starts at
/// `next_producer_id`. Persisted so ids never repeat across restarts.
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct ProducerIdsRecord {
    pub broker_id: i32,
    pub next_producer_id: i64,
}

/// One metadata record. Append new variants at the end only (see the module doc).
#[derive(Archive, Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub enum MetadataRecord {
    Topic(TopicRecord),
    Partition(PartitionRecord),
    Config(ConfigRecord),
    RemoveTopic(RemoveTopicRecord),
    ProducerIds(ProducerIdsRecord),
}

#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    #[error("cannot encode metadata records: {0}")]
    Encode(rancor::Error),
    #[error("invalid metadata record bytes: {0}")]
    Decode(rancor::Error),
}

/// Encodes one batch (the payload of one log frame).
// rkyv serializes a sized root; taking a slice would force a copy into a Vec first.
#[allow(clippy::ptr_arg)]
pub fn encode_batch(records: &Vec<MetadataRecord>) -> Result<AlignedVec, RecordError> {
    rkyv::to_bytes::<rancor::Error>(records).map_err(RecordError::Encode)
}

/// Validates and decodes one batch. `bytes` may sit at any address: they are copied into an
/// aligned buffer first, because rkyv's checked access refuses misaligned roots.
pub fn decode_batch(bytes: &[u8]) -> Result<Vec<MetadataRecord>, RecordError> {
    let mut aligned = AlignedVec::<16>::with_capacity(bytes.len());
    aligned.extend_from_slice(bytes);
    rkyv::from_bytes::<Vec<MetadataRecord>, rancor::Error>(&aligned).map_err(RecordError::Decode)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<MetadataRecord> {
        let id = [7u8; 16];
        vec![
            MetadataRecord::Topic(TopicRecord { name: "orders".into(), topic_id: id }),
            MetadataRecord::Partition(PartitionRecord {
                topic_id: id,
                partition: 0,
                replicas: vec![1],
                isr: vec![1],
                leader: 1,
                leader_epoch: 0,
            }),
            MetadataRecord::Config(ConfigRecord {
                resource_type: RESOURCE_TOPIC,
                resource_name: "orders".into(),
                name: "retention.ms".into(),
                value: Some("1000".into()),
            }),
            MetadataRecord::Config(ConfigRecord {
                resource_type: RESOURCE_TOPIC,
                resource_name: "orders".into(),
                name: "retention.ms".into(),
                value: None,
            }),
            MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id: id }),
            MetadataRecord::ProducerIds(ProducerIdsRecord { broker_id: 1, next_producer_id: 2000 }),
        ]
    }

    #[test]
    fn a_batch_round_trips() {
        let batch = sample();
        let bytes = encode_batch(&batch).unwrap();
        assert_eq!(decode_batch(&bytes).unwrap(), batch);
    }

    #[test]
    fn misaligned_input_still_decodes() {
        let batch = sample();
        let bytes = encode_batch(&batch).unwrap();
        let mut shifted = vec![0u8; 3];
        shifted.extend_from_slice(&bytes);
        assert_eq!(decode_batch(&shifted[3..]).unwrap(), batch);
    }

    #[test]
    fn damaged_bytes_are_an_error_never_a_panic() {
        let bytes = encode_batch(&sample()).unwrap().to_vec();
        for i in 0..bytes.len() {
            for bit in [0x01u8, 0x80, 0xff] {
                let mut damaged = bytes.clone();
                damaged[i] ^= bit;
                // Either rejected or decoded to some records; what matters is no panic and no
                // unbounded allocation (lengths are checked against the buffer by bytecheck).
                let _ = decode_batch(&damaged);
            }
        }
        for len in 0..bytes.len() {
            let _ = decode_batch(&bytes[..len]);
        }
        assert!(decode_batch(&[]).is_err());
        assert!(decode_batch(&[0xff; 64]).is_err());
    }
}
