//! KIP-848 consumer groups (`group.protocol=consumer`, Kafka 4) against the real binary:
//! librdkafka 2.12 (`rdkafka`) as the client, plus a raw client for ConsumerGroupHeartbeat /
//! ConsumerGroupDescribe and the protocol's error paths. Every wait is bounded.
mod common;

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::groups::{assigned, coordinator, pump_until, s, split};
use common::raw::{ensure_topic, wait_until, RawClient};
use common::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::Message;
use shardlog_net::kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use shardlog_net::kafka_protocol::messages::consumer_group_describe_response::DescribedGroup;
use shardlog_net::kafka_protocol::messages::consumer_group_heartbeat_request::{
    ConsumerGroupHeartbeatRequest, TopicPartitions,
};
use shardlog_net::kafka_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
use shardlog_net::kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use shardlog_net::kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use shardlog_net::kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use shardlog_net::kafka_protocol::messages::join_group_request::{
    JoinGroupRequest, JoinGroupRequestProtocol,
};
use shardlog_net::kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use shardlog_net::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use shardlog_net::kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use shardlog_net::kafka_protocol::messages::{GroupId, TopicName};

// Kafka error codes the tests expect.
const NONE: i16 = 0;
const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
const UNKNOWN_MEMBER_ID: i16 = 25;
const UNSUPPORTED_VERSION: i16 = 35;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_MAX_SIZE_REACHED: i16 = 81;
const FENCED_INSTANCE_ID: i16 = 82;
const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
const UNRELEASED_INSTANCE_ID: i16 = 111;
const INVALID_REQUEST: i16 = 42;
const GROUP_ID_NOT_FOUND: i16 = 69;
const FENCED_MEMBER_EPOCH: i16 = 110;
const UNSUPPORTED_ASSIGNOR: i16 = 112;
const STALE_MEMBER_EPOCH: i16 = 113;

/// Env var that turns [`kip848_member_process`] into a consumer for the kill test.
const CHILD_ENV: &str = "SHARDLOG_KIP848_CHILD_BOOTSTRAP";

fn start_broker_in(dir: Option<&std::path::Path>) -> Broker {
    let extra = [
        "num.partitions=3",
        "group.consumer.min.heartbeat.interval.ms=100",
        "group.consumer.heartbeat.interval.ms=500",
        "group.consumer.min.session.timeout.ms=1000",
        "group.consumer.session.timeout.ms=6000",
    ];
    match dir {
        None => Broker::start(2, &extra),
        Some(dir) => Broker::start_in(dir, 2, &extra, None),
    }
}

fn consumer(bootstrap: &str, group: &str, assignor: Option<&str>) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("group.protocol", "consumer")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    if let Some(assignor) = assignor {
        config.set("group.remote.assignor", assignor);
    }
    config.create().expect("consumer")
}

fn describe(client: &mut RawClient, group: &str) -> DescribedGroup {
    let r = client.call(1, &ConsumerGroupDescribeRequest::default().with_group_ids(vec![GroupId(s(group))]));
    r.groups.into_iter().next().expect("one group described")
}

/// A consumer for the kill test, run as a child process of this test binary (a real
/// librdkafka member that can be SIGKILLed without a goodbye). Does nothing unless the parent
/// set [`CHILD_ENV`].
#[test]
#[ignore = "helper process for kip848_consumers_split_spread_and_move, not a test"]
fn kip848_member_process() {
    let Ok(bootstrap) = std::env::var(CHILD_ENV) else { return };
    let c = consumer(&bootstrap, "kip848-splitters", None);
    c.subscribe(&["kip848-split"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        let _ = c.poll(Duration::from_millis(50));
    }
}

#[test]
fn kip848_consumers_split_spread_and_move() {
    let broker = start_broker_in(None);
    let b = broker.bootstrap();
    ensure_topic(broker.ports[0], "kip848-split");

    let c1 = consumer(&b, "kip848-splitters", None);
    c1.subscribe(&["kip848-split"]).unwrap();
    pump_until(&[&c1], Duration::from_secs(30), |a| split(a, 3, vec![3]));

    let c2 = consumer(&b, "kip848-splitters", None);
    c2.subscribe(&["kip848-split"]).unwrap();
    let two = pump_until(&[&c1, &c2], Duration::from_secs(30), |a| split(a, 3, vec![1, 2]));
    eprintln!("two consumers: {two:?}");

    // A third member in another process, so that it can be killed without leaving.
    let mut third = Command::new(std::env::current_exe().unwrap())
        .args(["kip848_member_process", "--exact", "--ignored", "--nocapture"])
        .env(CHILD_ENV, &b)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("child consumer");
    let three = pump_until(&[&c1, &c2], Duration::from_secs(30), |a| {
        let held: BTreeSet<i32> = a.iter().flatten().copied().collect();
        a.iter().all(|p| p.len() == 1) && held.len() == 2
    });
    eprintln!("three members (the child holds the rest): {three:?}");
    let mut client = coordinator(&broker, "kip848-splitters");
    let d = describe(&mut client, "kip848-splitters");
    assert_eq!(d.members.len(), 3, "{d:?}");

    // SIGKILL: only the session timeout (6 s here) tells the coordinator.
    third.kill().unwrap();
    third.wait().unwrap();
    let after = pump_until(&[&c1, &c2], Duration::from_secs(40), |a| split(a, 3, vec![1, 2]));
    eprintln!("after the kill: {after:?}");
    let d = describe(&mut client, "kip848-splitters");
    assert_eq!(d.members.len(), 2, "the killed member was fenced: {d:?}");

    // A clean close (member epoch -1) hands its partitions over.
    drop(c2);
    pump_until(&[&c1], Duration::from_secs(30), |a| split(a, 3, vec![3]));
    let d = describe(&mut client, "kip848-splitters");
    assert_eq!(d.members.len(), 1, "{d:?}");
    assert_eq!(d.assignor_name.as_str(), "uniform");
}

/// Produces records `first..first + n` to each of the three partitions; values `p-i`.
fn produce(bootstrap: &str, topic: &str, first: usize, n: usize) {
    let producer: BaseProducer =
        ClientConfig::new().set("bootstrap.servers", bootstrap).create().expect("producer");
    for i in first..first + n {
        for p in 0..3 {
            let value = format!("{p}-{i}");
            producer.send(BaseRecord::<(), String>::to(topic).payload(&value).partition(p)).expect("queued");
        }
    }
    producer.flush(Duration::from_secs(30)).expect("all records acknowledged");
}

/// Consumes until `count` messages arrived (bounded by `within`); returns their values.
fn consume(consumer: &BaseConsumer, count: usize, within: Duration) -> Vec<String> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < count && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned()),
            Some(Err(e)) => eprintln!("consumer error (retried by the client): {e}"),
            None => {}
        }
    }
    got
}

#[test]
fn kip848_committed_offsets_and_the_group_survive_a_restart() {
    let mut broker = start_broker_in(None);
    let b = broker.bootstrap();
    ensure_topic(broker.ports[0], "kip848-resume");
    produce(&b, "kip848-resume", 0, 10);

    let c = consumer(&b, "kip848-resumers", Some("range"));
    c.subscribe(&["kip848-resume"]).unwrap();
    let first = consume(&c, 30, Duration::from_secs(30));
    assert_eq!(first.len(), 30, "{first:?}");
    // OffsetCommit v9 with the member's epoch.
    c.commit_consumer_state(CommitMode::Sync).expect("commit");
    let mut client = coordinator(&broker, "kip848-resumers");
    let d = describe(&mut client, "kip848-resumers");
    assert_eq!((d.error_code, d.group_state.as_str(), d.members.len()), (NONE, "Stable", 1), "{d:?}");
    assert_eq!(d.assignor_name.as_str(), "range");
    let m = &d.members[0];
    let owned: usize = m.assignment.topic_partitions.iter().map(|t| t.partitions.len()).sum();
    assert_eq!(owned, 3, "{d:?}");
    assert_eq!(m.assignment.topic_partitions[0].topic_name.0.as_str(), "kip848-resume");
    assert!(m.member_epoch > 0 && m.member_epoch == d.assignment_epoch, "{d:?}");
    drop(c);
    let epoch_before = wait_for_members(&mut client, "kip848-resumers", 0).group_epoch;

    broker.stop();
    let dir = broker.dir.clone();
    let broker2 = start_broker_in(Some(&dir));
    let b2 = broker2.bootstrap();
    let mut client = coordinator(&broker2, "kip848-resumers");
    let d = describe(&mut client, "kip848-resumers");
    assert_eq!((d.error_code, d.group_state.as_str()), (NONE, "Empty"), "the group came back: {d:?}");
    assert_eq!(d.group_epoch, epoch_before, "{d:?}");

    produce(&b2, "kip848-resume", 10, 2);
    let c = consumer(&b2, "kip848-resumers", None);
    c.subscribe(&["kip848-resume"]).unwrap();
    let rest = consume(&c, 6, Duration::from_secs(30));
    let mut rest_sorted = rest.clone();
    rest_sorted.sort();
    let expected: Vec<String> = (0..3).flat_map(|p| (10..12).map(move |i| format!("{p}-{i}"))).collect();
    assert_eq!(rest_sorted, expected, "resumed right after the commits");
    let extra = consume(&c, 1, Duration::from_secs(2));
    assert!(extra.is_empty(), "nothing re-read: {extra:?}");
}

fn wait_for_members(client: &mut RawClient, group: &str, n: usize) -> DescribedGroup {
    let mut last = None;
    let ok = wait_until(Duration::from_secs(20), || {
        let d = describe(client, group);
        let done = d.members.len() == n;
        last = Some(d);
        done
    });
    let last = last.expect("described");
    assert!(ok, "group never had {n} members: {last:?}");
    last
}

// ---- the protocol, with a raw client ---------------------------------------------------------

fn heartbeat_request(group: &str, member: &str, epoch: i32) -> ConsumerGroupHeartbeatRequest {
    ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_member_id(s(member))
        .with_member_epoch(epoch)
}

fn join_request(group: &str, member: &str, topic: &str) -> ConsumerGroupHeartbeatRequest {
    heartbeat_request(group, member, 0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s(topic))]))
        .with_topic_partitions(Some(vec![]))
}

fn owned(r: &ConsumerGroupHeartbeatResponse) -> Vec<TopicPartitions> {
    r.assignment
        .as_ref()
        .map(|a| {
            a.topic_partitions
                .iter()
                .map(|t| {
                    TopicPartitions::default().with_topic_id(t.topic_id).with_partitions(t.partitions.clone())
                })
                .collect()
        })
        .unwrap_or_default()
}

fn count(tps: &[TopicPartitions]) -> usize {
    tps.iter().map(|t| t.partitions.len()).sum()
}

#[test]
fn kip848_protocol_errors_and_revocation_before_assignment() {
    let broker = start_broker_in(None);
    ensure_topic(broker.ports[0], "kip848-raw");
    let group = "kip848-raw-group";
    let mut c = coordinator(&broker, group);

    // Validation and unknown groups/members.
    let r = c.call(1, &heartbeat_request(group, "m-x", 0));
    assert_eq!(r.error_code, INVALID_REQUEST, "no rebalance timeout nor subscription: {r:?}");
    let r = c.call(1, &join_request(group, "", "kip848-raw"));
    assert_eq!(r.error_code, INVALID_REQUEST, "v1 needs a client-generated member id: {r:?}");
    let r = c.call(1, &join_request(group, "m-a", "kip848-raw").with_server_assignor(Some(s("sticky"))));
    assert_eq!(r.error_code, UNSUPPORTED_ASSIGNOR, "{r:?}");
    let r = c.call(1, &heartbeat_request(group, "m-a", 3));
    assert_eq!(r.error_code, GROUP_ID_NOT_FOUND, "{r:?}");
    let d = describe(&mut c, group);
    assert_eq!(d.error_code, GROUP_ID_NOT_FOUND, "{d:?}");

    // A joins and gets all three partitions.
    let a = c.call(1, &join_request(group, "m-a", "kip848-raw"));
    assert_eq!(a.error_code, NONE, "{a:?}");
    assert_eq!(a.member_id.as_deref(), Some("m-a"));
    assert_eq!(a.heartbeat_interval_ms, 500);
    let a_owned = owned(&a);
    assert_eq!(count(&a_owned), 3, "{a:?}");
    let a_epoch = a.member_epoch;
    assert!(a_epoch > 0);
    let r = c.call(1, &heartbeat_request(group, "m-b", 1));
    assert_eq!(r.error_code, UNKNOWN_MEMBER_ID, "{r:?}");
    let r = c.call(1, &heartbeat_request(group, "m-a", a_epoch + 1));
    assert_eq!(r.error_code, FENCED_MEMBER_EPOCH, "{r:?}");

    // B joins: nothing is free yet, so B gets nothing until A has revoked.
    let b = c.call(1, &join_request(group, "m-b", "kip848-raw"));
    assert_eq!(b.error_code, NONE, "{b:?}");
    assert_eq!(count(&owned(&b)), 0, "A still owns everything: {b:?}");
    let b_epoch = b.member_epoch;
    // A learns what it keeps; its epoch only moves once it has revoked the rest.
    let r = c.call(1, &heartbeat_request(group, "m-a", a_epoch).with_topic_partitions(Some(a_owned.clone())));
    assert_eq!(r.error_code, NONE, "{r:?}");
    assert_eq!(r.member_epoch, a_epoch, "still revoking: {r:?}");
    let a_keeps = owned(&r);
    assert!(count(&a_keeps) < 3, "{r:?}");
    // OffsetCommit v9 from A at an epoch older than its own is stale; at its own it is fine.
    let commit = |epoch: i32| {
        OffsetCommitRequest::default()
            .with_group_id(GroupId(s(group)))
            .with_generation_id_or_member_epoch(epoch)
            .with_member_id(s("m-a"))
            .with_topics(vec![OffsetCommitRequestTopic::default()
                .with_name(TopicName(s("kip848-raw")))
                .with_partitions(vec![OffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(0)])])
    };
    let r = c.call(9, &commit(a_epoch - 1));
    assert_eq!(r.topics[0].partitions[0].error_code, STALE_MEMBER_EPOCH, "{r:?}");
    let r = c.call(9, &commit(a_epoch));
    assert_eq!(r.topics[0].partitions[0].error_code, NONE, "{r:?}");
    // B still gets nothing while A has not acknowledged.
    let r = c.call(1, &heartbeat_request(group, "m-b", b_epoch).with_topic_partitions(Some(vec![])));
    assert_eq!(count(&owned(&r)), 0, "{r:?}");
    // A acknowledges (owns only what it keeps): it moves to the new epoch.
    let r = c.call(1, &heartbeat_request(group, "m-a", a_epoch).with_topic_partitions(Some(a_keeps.clone())));
    assert_eq!(r.error_code, NONE, "{r:?}");
    assert!(r.member_epoch > a_epoch, "{r:?}");
    // Now B gets the released partitions.
    let r = c.call(1, &heartbeat_request(group, "m-b", b_epoch).with_topic_partitions(Some(vec![])));
    assert_eq!(r.error_code, NONE, "{r:?}");
    let b_now = owned(&r);
    assert_eq!(count(&b_now) + count(&a_keeps), 3, "{r:?}");
    let d = describe(&mut c, group);
    assert_eq!((d.group_state.as_str(), d.members.len()), ("Stable", 2), "{d:?}");

    // ListGroups v5 lists it as a consumer group, and filters by type.
    let l = c.call(5, &ListGroupsRequest::default());
    let listed = l.groups.iter().find(|g| g.group_id.0.as_str() == group).expect("listed");
    assert_eq!((listed.group_type.as_str(), listed.group_state.as_str()), ("consumer", "Stable"));
    let l = c.call(5, &ListGroupsRequest::default().with_types_filter(vec![s("classic")]));
    assert!(l.groups.iter().all(|g| g.group_id.0.as_str() != group), "{l:?}");

    // A leaves (epoch -1): B is answered everything on its next heartbeats.
    let r = c.call(1, &heartbeat_request(group, "m-a", -1));
    assert_eq!((r.error_code, r.member_epoch), (NONE, -1), "{r:?}");
    let b_owned = b_heartbeats_until_it_owns_all_three(&mut c, group, b_now);
    assert_eq!(count(&b_owned), 3, "B never got all three partitions: {b_owned:?}");
}

/// B's current epoch as the coordinator describes it.
/// Heartbeats as member "m-b", reporting what it owns, until it owns the topic's three
/// partitions or 10 s pass; returns what it owns last.
fn b_heartbeats_until_it_owns_all_three(
    c: &mut RawClient,
    group: &str,
    mut b_owned: Vec<TopicPartitions>,
) -> Vec<TopicPartitions> {
    wait_until(Duration::from_secs(10), || {
        let epoch = b_epoch_now(c, group);
        let r =
            c.call(1, &heartbeat_request(group, "m-b", epoch).with_topic_partitions(Some(b_owned.clone())));
        assert_eq!(r.error_code, NONE, "{r:?}");
        if r.assignment.is_some() {
            b_owned = owned(&r);
        }
        count(&b_owned) == 3
    });
    b_owned
}

fn b_epoch_now(c: &mut RawClient, group: &str) -> i32 {
    describe(c, group)
        .members
        .iter()
        .find(|m| m.member_id.as_str() == "m-b")
        .map(|m| m.member_epoch)
        .unwrap_or(0)
}

#[test]
fn kip848_static_members_group_limits_and_deletion() {
    let broker = Broker::start(
        2,
        &[
            "num.partitions=3",
            "group.consumer.max.size=2",
            "group.consumer.min.session.timeout.ms=1000",
            "group.consumer.session.timeout.ms=30000",
        ],
    );
    ensure_topic(broker.ports[0], "kip848-static");
    let group = "kip848-static-group";
    let mut c = coordinator(&broker, group);
    let static_join =
        |member: &str| join_request(group, member, "kip848-static").with_instance_id(Some(s("inst-1")));

    let first = c.call(1, &static_join("s-1"));
    assert_eq!(first.error_code, NONE, "{first:?}");
    let partitions = owned(&first);
    assert_eq!(count(&partitions), 3);
    // A restart: leave with epoch -2; the partitions stay reserved for the instance.
    let r = c.call(1, &heartbeat_request(group, "s-1", -2).with_instance_id(Some(s("inst-1"))));
    assert_eq!((r.error_code, r.member_epoch), (NONE, -2), "{r:?}");
    let before = describe(&mut c, group);
    assert_eq!(before.members.len(), 1, "{before:?}");
    assert_eq!(before.members[0].member_epoch, -2);
    // Back under a new member id: the same partitions, and no new group epoch.
    let back = c.call(1, &static_join("s-1b"));
    assert_eq!(back.error_code, NONE, "{back:?}");
    assert_eq!(owned(&back), partitions);
    let after = describe(&mut c, group);
    assert_eq!(after.group_epoch, before.group_epoch, "no rebalance: {after:?}");
    assert_eq!(after.members[0].member_id.as_str(), "s-1b");
    // The instance id is taken while s-1b is there; the old member id is fenced.
    let r = c.call(1, &static_join("s-2"));
    assert_eq!(r.error_code, UNRELEASED_INSTANCE_ID, "{r:?}");
    let r =
        c.call(1, &heartbeat_request(group, "s-1", back.member_epoch).with_instance_id(Some(s("inst-1"))));
    assert_eq!(r.error_code, FENCED_INSTANCE_ID, "{r:?}");

    // group.consumer.max.size=2.
    let r = c.call(1, &join_request(group, "d-2", "kip848-static"));
    assert_eq!(r.error_code, NONE, "{r:?}");
    let r = c.call(1, &join_request(group, "d-3", "kip848-static"));
    assert_eq!(r.error_code, GROUP_MAX_SIZE_REACHED, "{r:?}");

    // A KIP-848 member's commit needs OffsetCommit v9 (the version with member epochs).
    let commit = OffsetCommitRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_generation_id_or_member_epoch(back.member_epoch)
        .with_member_id(s("s-1b"))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(s("kip848-static")))
            .with_partitions(vec![OffsetCommitRequestPartition::default().with_committed_offset(0)])]);
    let r = c.call(8, &commit);
    assert_eq!(r.topics[0].partitions[0].error_code, UNSUPPORTED_VERSION, "{r:?}");

    // Classic APIs: no classic member may join; DescribeGroups (v0-5) reads it as Dead.
    let classic = JoinGroupRequest::default()
        .with_group_id(GroupId(s(group)))
        .with_session_timeout_ms(10_000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s("classic-1"))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default().with_name(s("range"))]);
    let r = c.call(5, &classic);
    assert_eq!(r.error_code, INCONSISTENT_GROUP_PROTOCOL, "{r:?}");
    let r = c.call(5, &DescribeGroupsRequest::default().with_groups(vec![GroupId(s(group))]));
    assert_eq!((r.groups[0].error_code, r.groups[0].group_state.as_str()), (NONE, "Dead"), "{r:?}");

    // Deletion: refused while members remain, then the group and its records go.
    let delete = DeleteGroupsRequest::default().with_groups_names(vec![GroupId(s(group))]);
    let r = c.call(2, &delete);
    assert_eq!(r.results[0].error_code, NON_EMPTY_GROUP, "{r:?}");
    for member in ["s-1b", "d-2"] {
        let r = c.call(1, &heartbeat_request(group, member, -1));
        assert_eq!((r.error_code, r.member_epoch), (NONE, -1), "{r:?}");
    }
    assert_eq!(describe(&mut c, group).group_state.as_str(), "Empty");
    let r = c.call(2, &delete);
    assert_eq!(r.results[0].error_code, NONE, "{r:?}");
    let d = describe(&mut c, group);
    assert_eq!(d.error_code, GROUP_ID_NOT_FOUND, "{d:?}");
}

#[test]
fn kip848_regular_expression_subscription() {
    let broker = start_broker_in(None);
    let b = broker.bootstrap();
    ensure_topic(broker.ports[0], "kip848-re-a");
    ensure_topic(broker.ports[0], "kip848-re-b");
    ensure_topic(broker.ports[0], "kip848-other");
    let c = consumer(&b, "kip848-regex", None);
    // librdkafka sends a subscription starting with ^ as SubscribedTopicRegex.
    c.subscribe(&["^kip848-re-.*"]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut topics: BTreeSet<(String, i32)> = BTreeSet::new();
    while Instant::now() < deadline {
        let _ = c.poll(Duration::from_millis(50));
        topics = c
            .assignment()
            .map(|a| a.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect())
            .unwrap_or_default();
        if topics.len() == 6 {
            break;
        }
    }
    let expected: BTreeSet<(String, i32)> =
        ["kip848-re-a", "kip848-re-b"].iter().flat_map(|t| (0..3).map(move |p| (t.to_string(), p))).collect();
    assert_eq!(topics, expected);
    let mut client = coordinator(&broker, "kip848-regex");
    let d = describe(&mut client, "kip848-regex");
    // librdkafka 2.12 sends it as "(^kip848-re-.*)".
    let regex = d.members[0].subscribed_topic_regex.as_deref().unwrap_or_default();
    assert!(regex.contains("^kip848-re-.*") && d.members[0].subscribed_topic_names.is_empty(), "{d:?}");
}

#[test]
fn kip848_partitions_of_a_deleted_topic_are_revoked() {
    let broker = start_broker_in(None);
    ensure_topic(broker.ports[0], "kip848-gone");
    ensure_topic(broker.ports[0], "kip848-stays");
    let group = "kip848-deleting";
    let mut c = coordinator(&broker, group);
    let join = heartbeat_request(group, "m-1", 0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(s("kip848-gone")), TopicName(s("kip848-stays"))]))
        .with_topic_partitions(Some(vec![]));
    let r = c.call(1, &join);
    assert_eq!(r.error_code, NONE, "{r:?}");
    let mut mine = owned(&r);
    assert_eq!(count(&mine), 6, "{r:?}");
    let mut epoch = r.member_epoch;

    // OffsetDelete refuses a topic a member subscribes to.
    let delete_offsets = OffsetDeleteRequest::default().with_group_id(GroupId(s(group))).with_topics(vec![
        OffsetDeleteRequestTopic::default()
            .with_name(TopicName(s("kip848-stays")))
            .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)]),
    ]);
    let r = c.call(0, &delete_offsets);
    assert_eq!(r.topics[0].partitions[0].error_code, GROUP_SUBSCRIBED_TO_TOPIC, "{r:?}");

    let delete = DeleteTopicsRequest::default()
        .with_topic_names(vec![TopicName(s("kip848-gone"))])
        .with_timeout_ms(10_000);
    let r = RawClient::connect(broker.ports[0]).call(4, &delete);
    assert_eq!(r.responses[0].error_code, NONE, "{r:?}");
    // The member is told to give up the deleted topic's partitions; once it has, it moves on.
    let settled = wait_until(Duration::from_secs(20), || {
        let r = c.call(1, &heartbeat_request(group, "m-1", epoch).with_topic_partitions(Some(mine.clone())));
        assert_eq!(r.error_code, NONE, "{r:?}");
        if r.assignment.is_some() {
            mine = owned(&r);
        }
        epoch = r.member_epoch;
        count(&mine) == 3 && describe(&mut c, group).group_state.as_str() == "Stable"
    });
    assert!(settled, "{:?}", describe(&mut c, group));
    let d = describe(&mut c, group);
    let names: Vec<&str> =
        d.members[0].assignment.topic_partitions.iter().map(|t| t.topic_name.0.as_str()).collect();
    assert_eq!(names, ["kip848-stays"], "{d:?}");
}

#[test]
fn kip848_members_and_assignments_come_back_after_kill_9() {
    let mut broker = start_broker_in(None);
    let b = broker.bootstrap();
    ensure_topic(broker.ports[0], "kip848-survive");
    let c = consumer(&b, "kip848-survivors", None);
    c.subscribe(&["kip848-survive"]).unwrap();
    pump_until(&[&c], Duration::from_secs(30), |a| split(a, 3, vec![3]));
    let mut client = coordinator(&broker, "kip848-survivors");
    let before = describe(&mut client, "kip848-survivors");
    assert_eq!(before.group_state.as_str(), "Stable", "{before:?}");

    // kill -9, then the same ports: the member, its epoch and its assignment are replayed from
    // __consumer_offsets, and the running consumer carries on in the same generation.
    broker.kill();
    let dir = broker.dir.clone();
    let extra = [
        "num.partitions=3",
        "group.consumer.min.heartbeat.interval.ms=100",
        "group.consumer.heartbeat.interval.ms=500",
        "group.consumer.min.session.timeout.ms=1000",
        "group.consumer.session.timeout.ms=6000",
    ];
    let broker = Broker::start_in(&dir, 2, &extra, Some(broker.ports.clone()));
    let mut client = coordinator(&broker, "kip848-survivors");
    let after = describe(&mut client, "kip848-survivors");
    assert_eq!(after.members.len(), 1, "{after:?}");
    let (m0, m1) = (&before.members[0], &after.members[0]);
    assert_eq!((&m1.member_id, m1.member_epoch), (&m0.member_id, m0.member_epoch), "{after:?}");
    assert_eq!(m1.assignment, m0.assignment);
    assert!(after.group_epoch >= before.group_epoch);

    produce(&b, "kip848-survive", 0, 2);
    let got = consume(&c, 6, Duration::from_secs(30));
    assert_eq!(got.len(), 6, "{got:?}");
    assert_eq!(assigned(&c), vec![0, 1, 2]);
}

#[test]
fn kip848_member_that_does_not_revoke_within_its_rebalance_timeout_is_fenced() {
    let broker = start_broker_in(None);
    ensure_topic(broker.ports[0], "kip848-slow");
    let group = "kip848-slow-group";
    let mut c = coordinator(&broker, group);
    let a = c.call(1, &join_request(group, "m-a", "kip848-slow").with_rebalance_timeout_ms(1000));
    assert_eq!(a.error_code, NONE, "{a:?}");
    let a_owned = owned(&a);
    let b = c.call(1, &join_request(group, "m-b", "kip848-slow"));
    assert_eq!(b.error_code, NONE, "{b:?}");
    // A keeps heartbeating (its session is fine) but never lets go of what it must revoke.
    let fenced = wait_until(Duration::from_secs(20), || {
        let r = c.call(
            1,
            &heartbeat_request(group, "m-a", a.member_epoch).with_topic_partitions(Some(a_owned.clone())),
        );
        r.error_code == UNKNOWN_MEMBER_ID
    });
    assert!(fenced, "A was never fenced: {:?}", describe(&mut c, group));
    // B gets everything once A is gone.
    let b_owned = b_heartbeats_until_it_owns_all_three(&mut c, group, vec![]);
    assert_eq!(count(&b_owned), 3, "{:?}", describe(&mut c, group));
}

fn classic_consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

#[test]
fn kip848_an_empty_group_switches_protocol_and_keeps_its_offsets() {
    let broker = start_broker_in(None);
    let b = broker.bootstrap();
    ensure_topic(broker.ports[0], "kip848-switch");
    produce(&b, "kip848-switch", 0, 5);

    // Classic protocol first: consume and commit, then leave (the group is Empty).
    let c = classic_consumer(&b, "kip848-switchers");
    c.subscribe(&["kip848-switch"]).unwrap();
    assert_eq!(consume(&c, 15, Duration::from_secs(30)).len(), 15);
    c.commit_consumer_state(CommitMode::Sync).expect("commit");
    drop(c);

    // The consumer protocol takes the empty group over and resumes after its commits.
    produce(&b, "kip848-switch", 5, 1);
    let c = consumer(&b, "kip848-switchers", None);
    c.subscribe(&["kip848-switch"]).unwrap();
    let mut got = consume(&c, 3, Duration::from_secs(30));
    got.sort();
    assert_eq!(got, ["0-5", "1-5", "2-5"]);
    c.commit_consumer_state(CommitMode::Sync).expect("commit");
    let mut client = coordinator(&broker, "kip848-switchers");
    assert_eq!(describe(&mut client, "kip848-switchers").group_state.as_str(), "Stable");
    drop(c);
    wait_for_members(&mut client, "kip848-switchers", 0);

    // And back to classic, still from the commits.
    produce(&b, "kip848-switch", 6, 1);
    let c = classic_consumer(&b, "kip848-switchers");
    c.subscribe(&["kip848-switch"]).unwrap();
    let mut got = consume(&c, 3, Duration::from_secs(30));
    got.sort();
    assert_eq!(got, ["0-6", "1-6", "2-6"]);
    let d = describe(&mut client, "kip848-switchers");
    assert_eq!(d.error_code, GROUP_ID_NOT_FOUND, "a classic group again: {d:?}");
}

/// `shardlog consumer-groups --describe` shows a KIP-848 group's members, assignments and lag
/// (log end − committed), as Kafka 4's tool does through ConsumerGroupDescribe.
#[test]
fn kip848_group_described_by_the_consumer_groups_tool_with_lag() {
    let broker = start_broker_in(None);
    let b = broker.bootstrap();
    ensure_topic(broker.ports[0], "kip848-lag");
    produce(&b, "kip848-lag", 0, 10);
    let c = consumer(&b, "kip848-lagging", None);
    c.subscribe(&["kip848-lag"]).unwrap();
    let read = consume(&c, 30, Duration::from_secs(30));
    assert_eq!(read.len(), 30, "{read:?}");
    c.commit_consumer_state(CommitMode::Sync).expect("commit");
    // 4 more per partition after the commit: the lag the tool must show.
    produce(&b, "kip848-lag", 10, 4);

    let out = Command::new(env!("CARGO_BIN_EXE_shardlog"))
        .args(["consumer-groups", "--bootstrap-server", &b, "--describe", "--group", "kip848-lagging"])
        .output()
        .expect("run shardlog consumer-groups");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .filter(|cells| cells.first() == Some(&"kip848-lagging"))
        .collect();
    assert_eq!(rows.len(), 3, "one row per partition:\n{stdout}");
    for (partition, cells) in rows.iter().enumerate() {
        // GROUP TOPIC PARTITION CURRENT-OFFSET LOG-END-OFFSET LAG CONSUMER-ID HOST CLIENT-ID
        assert_eq!(&cells[1..6], &["kip848-lag", &partition.to_string(), "10", "14", "4"], "{stdout}");
        assert_ne!(cells[6], "-", "the partition's owner is shown:\n{stdout}");
    }
}
