//! Committed offsets that go away, as in Kafka: `offsets.retention.minutes` for groups nobody
//! uses, offsets of deleted topics, and `__consumer_offsets` itself compacted by the log cleaner
//! so group metadata does not grow forever. Real binary, raw protocol client; bounded waits.
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::groups::{coordinator, s};
use common::raw::{ensure_topic, wait_until, RawClient};
use common::Broker;
use shardlog_net::kafka_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use shardlog_net::kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use shardlog_net::kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use shardlog_net::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use shardlog_net::kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use shardlog_net::kafka_protocol::messages::{GroupId, TopicName};

const NONE: i16 = 0;

/// OffsetCommit v9 of `offset` for partition 0 of `topic`; `member`/`epoch` empty/-1 for an
/// admin commit.
fn commit(client: &mut RawClient, group: &str, member: &str, epoch: i32, topic: &str, offset: i64) {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(epoch)
        .with_member_id(s(member))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s(topic)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)])]);
    let r = client.call(9, &req);
    assert_eq!(r.topics[0].partitions[0].error_code, NONE, "{r:?}");
}

/// Every committed offset of `group`: `(topic, partition, offset)`.
fn committed(client: &mut RawClient, group: &str) -> Vec<(String, i32, i64)> {
    let r = client.call(7, &OffsetFetchRequest::default().with_group_id(GroupId(s(group))).with_topics(None));
    assert_eq!(r.error_code, NONE, "{r:?}");
    r.topics
        .iter()
        .flat_map(|t| {
            t.partitions.iter().map(move |p| (t.name.0.to_string(), p.partition_index, p.committed_offset))
        })
        .collect()
}

fn listed(client: &mut RawClient, group: &str) -> bool {
    let r = client.call(4, &ListGroupsRequest::default());
    r.groups.iter().any(|g| g.group_id.0.as_str() == group)
}

#[test]
fn offsets_of_unused_groups_expire_after_the_retention() {
    let broker = Broker::start(
        2,
        &[
            "offsets.retention.minutes=1",
            "offsets.retention.check.interval.ms=500",
            "group.consumer.min.heartbeat.interval.ms=100",
            "group.consumer.heartbeat.interval.ms=500",
            "group.consumer.min.session.timeout.ms=1000",
            "group.consumer.session.timeout.ms=6000",
        ],
    );
    ensure_topic(broker.ports[0], "retained");
    // "idle" has only an admin commit; "active" has a live KIP-848 member subscribed to the
    // topic, which keeps its offsets however old.
    let mut idle = coordinator(&broker, "idle");
    let before_commit = Instant::now();
    commit(&mut idle, "idle", "", -1, "retained", 5);
    let mut active = coordinator(&broker, "active");
    let join = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s("active")))
        .with_member_id(s("m-1"))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s("retained"))]))
        .with_topic_partitions(Some(vec![]));
    let joined = active.call(1, &join);
    assert_eq!(joined.error_code, NONE, "{joined:?}");
    let epoch = joined.member_epoch;
    commit(&mut active, "active", "m-1", epoch, "retained", 7);
    assert_eq!(committed(&mut idle, "idle"), vec![("retained".to_string(), 0, 5)]);

    // "transient" had a member that left without committing: an empty group without offsets
    // is deleted at the next check.
    let mut transient = coordinator(&broker, "transient");
    let r = transient.call(1, &join.clone().with_group_id(GroupId(s("transient"))));
    assert_eq!(r.error_code, NONE, "{r:?}");
    let leave = join.clone().with_group_id(GroupId(s("transient"))).with_member_epoch(-1);
    let r = transient.call(1, &leave.with_topic_partitions(None).with_subscribed_topic_names(None));
    assert_eq!((r.error_code, r.member_epoch), (NONE, -1), "{r:?}");
    assert!(
        wait_until(Duration::from_secs(30), || !listed(&mut transient, "transient")),
        "the empty group without offsets stayed"
    );

    let mut last_heartbeat = Instant::now();
    let expired = wait_until(Duration::from_secs(150), || {
        if last_heartbeat.elapsed() >= Duration::from_millis(500) {
            last_heartbeat = Instant::now();
            let beat = join.clone().with_member_epoch(epoch).with_topic_partitions(None);
            let r = active.call(1, &beat);
            assert_eq!(r.error_code, NONE, "{r:?}");
        }
        committed(&mut idle, "idle").is_empty() && !listed(&mut idle, "idle")
    });
    assert!(expired, "idle's offsets never expired");
    // A lower bound only (a slow machine makes it longer, never shorter).
    assert!(before_commit.elapsed() >= Duration::from_secs(60), "expired before the retention");
    assert_eq!(
        committed(&mut active, "active"),
        vec![("retained".to_string(), 0, 7)],
        "a subscribed member keeps its group's offsets"
    );
}

#[test]
fn offsets_of_a_deleted_topic_are_removed_and_stay_removed() {
    let mut broker = Broker::start(2, &[]);
    ensure_topic(broker.ports[0], "doomed");
    ensure_topic(broker.ports[0], "kept");
    let mut orphan = coordinator(&broker, "orphan");
    commit(&mut orphan, "orphan", "", -1, "doomed", 3);
    let mut mixed = coordinator(&broker, "mixed");
    commit(&mut mixed, "mixed", "", -1, "doomed", 4);
    commit(&mut mixed, "mixed", "", -1, "kept", 9);

    let delete =
        DeleteTopicsRequest::default().with_topic_names(vec![TopicName(s("doomed"))]).with_timeout_ms(10_000);
    let r = RawClient::connect(broker.ports[0]).call(4, &delete);
    assert_eq!(r.responses[0].error_code, NONE, "{r:?}");
    let cleaned = wait_until(Duration::from_secs(30), || {
        committed(&mut orphan, "orphan").is_empty()
            && !listed(&mut orphan, "orphan")
            && committed(&mut mixed, "mixed") == vec![("kept".to_string(), 0, 9)]
    });
    assert!(
        cleaned,
        "orphan: {:?}, mixed: {:?}",
        committed(&mut orphan, "orphan"),
        committed(&mut mixed, "mixed")
    );

    // The tombstones are in the log: a restart does not bring the offsets back.
    broker.stop();
    let dir = broker.dir.clone();
    let broker = Broker::start_in(&dir, 2, &[], None);
    let mut mixed = coordinator(&broker, "mixed");
    assert_eq!(committed(&mut mixed, "mixed"), vec![("kept".to_string(), 0, 9)]);
    let mut orphan = coordinator(&broker, "orphan");
    assert!(committed(&mut orphan, "orphan").is_empty());
}

/// Bytes of every `.log` segment of `__consumer_offsets`.
fn offsets_topic_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if !entry.file_name().to_string_lossy().starts_with("__consumer_offsets-") {
            continue;
        }
        for file in std::fs::read_dir(entry.path()).unwrap().flatten() {
            if file.path().extension().is_some_and(|e| e == "log") {
                total += file.metadata().map(|m| m.len()).unwrap_or(0);
            }
        }
    }
    total
}

#[test]
fn the_log_cleaner_compacts_consumer_offsets() {
    let extra = ["offsets.topic.segment.bytes=16384", "offsets.topic.num.partitions=1"];
    let mut broker = Broker::start(1, &extra);
    ensure_topic(broker.ports[0], "busy");
    let mut client = coordinator(&broker, "committer");
    const COMMITS: i64 = 3000;
    for offset in 0..COMMITS {
        commit(&mut client, "committer", "", -1, "busy", offset);
    }
    // Each commit appended one batch of well over 100 bytes: more than 300 KB went in, in
    // 16 KiB segments. Compacted, the one key's latest record (plus the active segment) is left.
    const COMPACTED_MAX_BYTES: u64 = 64 * 1024;
    let compacted =
        wait_until(Duration::from_secs(60), || offsets_topic_bytes(&broker.dir) < COMPACTED_MAX_BYTES);
    assert!(compacted, "still {} bytes", offsets_topic_bytes(&broker.dir));
    assert_eq!(committed(&mut client, "committer"), vec![("busy".to_string(), 0, COMMITS - 1)]);

    broker.stop();
    let dir = broker.dir.clone();
    let broker = Broker::start_in(&dir, 1, &extra, None);
    let mut client = coordinator(&broker, "committer");
    assert_eq!(committed(&mut client, "committer"), vec![("busy".to_string(), 0, COMMITS - 1)]);
}
