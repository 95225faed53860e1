//! The small files of a log directory: offset checkpoints and `partition.metadata` —
//! exact bytes, round trips, and malformed input as errors, never panics.

mod common;

use std::path::Path;

use shardlog_storage::checkpoint::{OffsetCheckpointFile, TopicPartition, RECOVERY_POINT_CHECKPOINT_FILE};
use shardlog_storage::log_error::LogError;
use shardlog_storage::partition_metadata::{PartitionMetadataFile, TopicId};

#[test]
fn checkpoints_round_trip_in_kafkas_format() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let file = OffsetCheckpointFile::new(tmp.path().join(RECOVERY_POINT_CHECKPOINT_FILE));
        assert_eq!(file.read().await.unwrap(), [], "a missing checkpoint is empty");
        let entries = vec![
            (TopicPartition::new("orders", 0), 1200),
            (TopicPartition::new("__consumer_offsets", 49), 7),
        ];
        file.write(&entries).await.unwrap();
        assert_eq!(
            std::fs::read_to_string(file.path()).unwrap(),
            "0\n2\norders 0 1200\n__consumer_offsets 49 7\n"
        );
        assert_eq!(file.read().await.unwrap(), entries);
        file.write(&[]).await.unwrap();
        assert_eq!(std::fs::read_to_string(file.path()).unwrap(), "0\n0\n");
        assert_eq!(
            common::file_names(tmp.path()),
            [RECOVERY_POINT_CHECKPOINT_FILE],
            "no temporary file left"
        );
    });
}

#[test]
fn malformed_checkpoints_are_errors() {
    let path = Path::new("checkpoint");
    for text in [
        "",
        "1\n0\n",
        "0\n",
        "0\nx\n",
        "0\n2\norders 0 1\n",
        "0\n1\norders 0 1\norders 1 2\n",
        "0\n1\norders 0\n",
        "0\n1\norders zero 1\n",
        "0\n1\norders -1 1\n",
        "0\n1\norders 0 1 extra\n",
        "0\n1\nor ders 0 1\n",
        "0\n1\norders  0 1\n",
        "0\n99999999999\n",
        "0\n18446744073709551617\n",
    ] {
        let result = OffsetCheckpointFile::decode(path, text.as_bytes());
        assert!(matches!(result, Err(LogError::MalformedFile { .. })), "{text:?}: {result:?}");
    }
    assert!(OffsetCheckpointFile::decode(path, &[0x30, 0x0A, 0xFF]).is_err(), "not UTF-8");
    assert!(OffsetCheckpointFile::encode(&[(TopicPartition::new("bad topic", 0), 1)]).is_err());
}

#[test]
fn partition_metadata_round_trips_the_topic_id() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let file = PartitionMetadataFile::new(tmp.path());
        assert_eq!(file.read().await.unwrap(), None);
        let id = TopicId([0xFF; 16]);
        file.write(id).await.unwrap();
        // Kafka's Uuid.toString: URL-safe base64 without padding.
        assert_eq!(
            std::fs::read_to_string(file.path()).unwrap(),
            "version: 0\ntopic_id: _____________________w\n"
        );
        assert_eq!(file.read().await.unwrap(), Some(id));
        let id: TopicId = "7mZ5bVF4QWi6qk2bY8Lhtw".parse().unwrap();
        assert_eq!(id.to_string(), "7mZ5bVF4QWi6qk2bY8Lhtw");
        assert!(file.write(TopicId::ZERO).await.is_err());
    });
}

#[test]
fn malformed_partition_metadata_is_an_error() {
    let path = Path::new("partition.metadata");
    for text in [
        "",
        "version: 1\ntopic_id: 7mZ5bVF4QWi6qk2bY8Lhtw\n",
        "version: 0\n",
        "version: 0\ntopic_id: 7mZ5bVF4QWi6qk2bY8Lht\n",
        "version: 0\ntopic_id: 7mZ5bVF4QWi6qk2bY8Lh+w\n",
        "version: 0\ntopic_id: AAAAAAAAAAAAAAAAAAAAAA\n",
        "version: 0\ntopic_id: 7mZ5bVF4QWi6qk2bY8Lhtw\nextra\n",
        "topic_id: 7mZ5bVF4QWi6qk2bY8Lhtw\nversion: 0\n",
        "version:0\ntopic_id: 7mZ5bVF4QWi6qk2bY8Lhtw\n",
    ] {
        let result = PartitionMetadataFile::decode(path, text.as_bytes());
        assert!(matches!(result, Err(LogError::MalformedFile { .. })), "{text:?}: {result:?}");
    }
    assert!("7mZ5bVF4QWi6qk2bY8Lhtx".parse::<TopicId>().is_err(), "non-canonical trailing bits");
}
