//! Consumer groups against the real binary: librdkafka (`rdkafka`) and `kcat -G` as the
//! clients, plus a raw client for the protocol's error paths. Every wait is bounded.
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::groups::{pump_until, s, split};
use common::raw::{ensure_topic, topic_name, wait_until, RawClient};
use common::{kcat, Broker};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};
use shardlog_net::kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use shardlog_net::kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use shardlog_net::kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use shardlog_net::kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use shardlog_net::kafka_protocol::messages::join_group_request::{
    JoinGroupRequest, JoinGroupRequestProtocol,
};
use shardlog_net::kafka_protocol::messages::leave_group_request::{LeaveGroupRequest, MemberIdentity};
use shardlog_net::kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use shardlog_net::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use shardlog_net::kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use shardlog_net::kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use shardlog_net::kafka_protocol::messages::sync_group_request::{
    SyncGroupRequest, SyncGroupRequestAssignment,
};
use shardlog_net::kafka_protocol::messages::{GroupId, JoinGroupResponse};

const SESSION_TIMEOUT_MS: &str = "6000";

// Kafka error codes the tests expect.
const NONE: i16 = 0;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const COORDINATOR_NOT_AVAILABLE: i16 = 15;
const NOT_COORDINATOR: i16 = 16;
const ILLEGAL_GENERATION: i16 = 22;
const UNKNOWN_MEMBER_ID: i16 = 25;
const REBALANCE_IN_PROGRESS: i16 = 27;
const INVALID_REQUEST: i16 = 42;
const NON_EMPTY_GROUP: i16 = 68;
const GROUP_ID_NOT_FOUND: i16 = 69;
const MEMBER_ID_REQUIRED: i16 = 79;
const FENCED_INSTANCE_ID: i16 = 82;

fn start_broker() -> Broker {
    Broker::start(2, &["num.partitions=3", "group.initial.rebalance.delay.ms=0"])
}

fn consumer(bootstrap: &str, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("session.timeout.ms", SESSION_TIMEOUT_MS)
        .set("heartbeat.interval.ms", "500")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer")
}

/// Produces `per_partition` records to each of `partitions` partitions; values `p-i`.
fn produce(bootstrap: &str, topic: &str, partitions: i32, per_partition: usize) {
    let producer: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    for i in 0..per_partition {
        for p in 0..partitions {
            let value = format!("{p}-{i}");
            let mut record = BaseRecord::<(), String>::to(topic).payload(&value).partition(p);
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((_, r)) => {
                        record = r;
                        producer.poll(Duration::from_millis(10));
                    }
                }
            }
        }
    }
    producer.flush(Duration::from_secs(30)).expect("all records acknowledged");
}

#[test]
fn consumers_split_partitions_rebalance_on_join_and_on_a_killed_member() {
    let broker = start_broker();
    let b = broker.bootstrap();
    ensure_topic(broker.ports[0], "split");

    let c1 = consumer(&b, "splitters");
    c1.subscribe(&["split"]).unwrap();
    pump_until(&[&c1], Duration::from_secs(30), |a| split(a, 3, vec![3]));

    let c2 = consumer(&b, "splitters");
    c2.subscribe(&["split"]).unwrap();
    let two = pump_until(&[&c1, &c2], Duration::from_secs(30), |a| split(a, 3, vec![1, 2]));
    eprintln!("two consumers: {two:?}");

    // A third member, in another process so that it can be killed without a goodbye.
    let mut third = Command::new("kcat")
        .args([
            "-b",
            &b,
            "-G",
            "splitters",
            "-q",
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=500",
        ])
        .arg("split")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("kcat");
    // c1 and c2 hold one partition each, the third member the remaining one.
    let three = pump_until(&[&c1, &c2], Duration::from_secs(30), |a| {
        let held: BTreeSet<i32> = a.iter().flatten().copied().collect();
        a.iter().all(|p| p.len() == 1) && held.len() == 2
    });
    eprintln!("three members (kcat holds the rest): {three:?}");

    // SIGKILL: no LeaveGroup; only the session timeout tells the coordinator.
    third.kill().unwrap();
    third.wait().unwrap();
    let killed_at = Instant::now();
    let after = pump_until(&[&c1, &c2], Duration::from_secs(30), |a| split(a, 3, vec![1, 2]));
    let took = killed_at.elapsed();
    eprintln!("after the kill: {after:?} in {took:?}");
    assert!(took >= Duration::from_secs(4), "moved before the session timeout could expire: {took:?}");
    assert!(took < Duration::from_secs(20), "took {took:?}");

    // A clean close (LeaveGroup) moves its partitions at once.
    drop(c2);
    let left_at = Instant::now();
    pump_until(&[&c1], Duration::from_secs(15), |a| split(a, 3, vec![3]));
    assert!(left_at.elapsed() < Duration::from_secs(5), "LeaveGroup should rebalance at once");
}

fn consumer_with(bootstrap: &str, group: &str, extra: &[(&str, &str)]) -> BaseConsumer {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("session.timeout.ms", SESSION_TIMEOUT_MS)
        .set("heartbeat.interval.ms", "500")
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    config.create().expect("consumer")
}

/// How many rebalances the broker started for `group` so far (from its log).
fn rebalances(broker: &Broker, group: &str) -> usize {
    let needle = format!("group {group} preparing to rebalance");
    broker.log_text().lines().filter(|l| l.contains(&needle)).count()
}

#[test]
fn cooperative_sticky_consumers_rebalance_incrementally() {
    let broker = start_broker();
    let b = broker.bootstrap();
    ensure_topic(broker.ports[0], "coop");
    let strategy = [("partition.assignment.strategy", "cooperative-sticky")];
    let c1 = consumer_with(&b, "cooperators", &strategy);
    c1.subscribe(&["coop"]).unwrap();
    pump_until(&[&c1], Duration::from_secs(30), |a| split(a, 3, vec![3]));
    let c2 = consumer_with(&b, "cooperators", &strategy);
    c2.subscribe(&["coop"]).unwrap();
    // Incremental: c1 gives up one partition and keeps the others throughout (sticky).
    let two = pump_until(&[&c1, &c2], Duration::from_secs(30), |a| split(a, 3, vec![1, 2]));
    assert_eq!(two[0].len(), 2, "c1 keeps two of its partitions: {two:?}");
    let c3 = consumer_with(&b, "cooperators", &strategy);
    c3.subscribe(&["coop"]).unwrap();
    let three = pump_until(&[&c1, &c2, &c3], Duration::from_secs(30), |a| split(a, 3, vec![1, 1, 1]));
    assert!(two[0].contains(&three[0][0]) && three[1] == two[1], "sticky: {two:?} then {three:?}");
}

#[test]
fn static_member_restarted_within_the_session_timeout_gets_its_partitions_back_without_a_rebalance() {
    let broker = start_broker();
    let b = broker.bootstrap();
    ensure_topic(broker.ports[0], "statics");
    let a1 = consumer_with(&b, "static-group", &[("group.instance.id", "instance-a")]);
    let other = consumer_with(&b, "static-group", &[("group.instance.id", "instance-b")]);
    a1.subscribe(&["statics"]).unwrap();
    other.subscribe(&["statics"]).unwrap();
    let before = pump_until(&[&a1, &other], Duration::from_secs(30), |a| split(a, 3, vec![1, 2]));
    // The broker's log reaches the harness through a pipe and a reader thread, a moment after
    // the broker wrote it: count once the count holds still.
    let mut rebalances_before = rebalances(&broker, "static-group");
    for _ in 0..20 {
        std::thread::sleep(Duration::from_millis(250));
        let now = rebalances(&broker, "static-group");
        if now == rebalances_before {
            break;
        }
        rebalances_before = now;
    }
    // A static member does not leave the group when it closes (KIP-345).
    drop(a1);
    let a2 = consumer_with(&b, "static-group", &[("group.instance.id", "instance-a")]);
    a2.subscribe(&["statics"]).unwrap();
    let after = pump_until(&[&a2, &other], Duration::from_secs(30), |a| split(a, 3, vec![1, 2]));
    assert_eq!(after, before, "same partitions for the same instances");
    // Keep polling past a heartbeat or two: still no rebalance.
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        for c in [&a2, &other] {
            c.poll(Duration::from_millis(20));
        }
    }
    assert_eq!(pump_until(&[&a2, &other], Duration::from_secs(1), |_| true), before);
    assert_eq!(rebalances(&broker, "static-group"), rebalances_before, "{}", broker.log_text());
}

/// Consumes until `count` records arrived (bounded); returns `(partition, offset, value)`.
fn consume(consumer: &BaseConsumer, count: usize, within: Duration) -> Vec<(i32, i64, String)> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < count && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => got.push((
                m.partition(),
                m.offset(),
                String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap(),
            )),
            Some(Err(e)) => eprintln!("consumer error (retried by the client): {e}"),
            None => {}
        }
    }
    got
}

/// Reads on for `quiet` to prove nothing else arrives.
fn nothing_more(consumer: &BaseConsumer, quiet: Duration) {
    let extra = consume(consumer, 1, quiet);
    assert!(extra.is_empty(), "unexpected records: {extra:?}");
}

fn committed(consumer: &BaseConsumer, topic: &str, partitions: i32) -> BTreeMap<i32, i64> {
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer.committed_offsets(tpl, Duration::from_secs(15)).expect("committed offsets");
    got.elements()
        .iter()
        .map(|e| (e.partition(), if let Offset::Offset(o) = e.offset() { o } else { -1 }))
        .collect()
}

#[test]
fn committed_offsets_survive_restarts_and_a_restarted_consumer_resumes_after_them() {
    // `original` owns the temp data dir: it must outlive the restarted brokers.
    let mut original = start_broker();
    let b = original.bootstrap();
    let (dir, ports) = (original.dir.clone(), original.ports.clone());
    ensure_topic(ports[0], "resume");
    produce(&b, "resume", 3, 30);
    let everything: BTreeSet<(i32, i64)> = (0..3).flat_map(|p| (0..30).map(move |o| (p, o))).collect();

    // First consumer: takes 40 records, commits exactly what it consumed, leaves.
    let first = consumer(&b, "resumers");
    first.subscribe(&["resume"]).unwrap();
    let got1 = consume(&first, 40, Duration::from_secs(30));
    assert_eq!(got1.len(), 40);
    first.commit_consumer_state(CommitMode::Sync).expect("commit");
    let committed1 = committed(&first, "resume", 3);
    drop(first);
    for (p, offset, value) in &got1 {
        assert_eq!(value, &format!("{p}-{offset}"));
    }
    let next1: BTreeMap<i32, i64> =
        (0..3).map(|p| (p, got1.iter().filter(|g| g.0 == p).map(|g| g.1 + 1).max().unwrap_or(0))).collect();
    assert_eq!(committed1.iter().map(|(p, o)| (*p, (*o).max(0))).collect::<BTreeMap<_, _>>(), next1);

    // Clean restart (SIGTERM).
    assert!(original.stop().success());
    let mut restarted = Broker::start_in(
        &dir,
        2,
        &["num.partitions=3", "group.initial.rebalance.delay.ms=0"],
        Some(ports.clone()),
    );

    // Second consumer: resumes right after the commit, takes 20 more, commits.
    let second = consumer(&b, "resumers");
    second.subscribe(&["resume"]).unwrap();
    assert_eq!(committed(&second, "resume", 3), committed1, "commits survived a clean restart");
    let got2 = consume(&second, 20, Duration::from_secs(30));
    assert_eq!(got2.len(), 20);
    for (p, offset, _) in &got2 {
        assert!(*offset >= next1[p], "re-read {p}@{offset}, committed {}", next1[p]);
    }
    second.commit_consumer_state(CommitMode::Sync).expect("commit");
    let committed2 = committed(&second, "resume", 3);
    drop(second);

    // Crash restart (SIGKILL) right after the acknowledged commit.
    restarted.kill();
    let _again =
        Broker::start_in(&dir, 2, &["num.partitions=3", "group.initial.rebalance.delay.ms=0"], Some(ports));

    let third = consumer(&b, "resumers");
    third.subscribe(&["resume"]).unwrap();
    assert_eq!(committed(&third, "resume", 3), committed2, "commits survived kill -9");
    let got3 = consume(&third, 30, Duration::from_secs(30));
    nothing_more(&third, Duration::from_secs(2));

    // Nothing skipped, nothing read twice.
    let seen: Vec<(i32, i64)> = got1.iter().chain(&got2).chain(&got3).map(|g| (g.0, g.1)).collect();
    let unique: BTreeSet<(i32, i64)> = seen.iter().copied().collect();
    assert_eq!(seen.len(), unique.len(), "a record was delivered twice");
    assert_eq!(unique, everything);
}

#[test]
fn two_groups_on_one_topic_each_see_every_message() {
    let broker = start_broker();
    let b = broker.bootstrap();
    ensure_topic(broker.ports[0], "shared");
    produce(&b, "shared", 3, 50);
    let billing = consumer(&b, "billing");
    let shipping = consumer(&b, "shipping");
    billing.subscribe(&["shared"]).unwrap();
    shipping.subscribe(&["shared"]).unwrap();
    let deadline = Duration::from_secs(30);
    let a: BTreeSet<(i32, i64)> = consume(&billing, 150, deadline).into_iter().map(|g| (g.0, g.1)).collect();
    let s: BTreeSet<(i32, i64)> = consume(&shipping, 150, deadline).into_iter().map(|g| (g.0, g.1)).collect();
    assert_eq!(a.len(), 150);
    assert_eq!(a, s);
}

#[test]
fn kcat_balanced_consumer_reads_everything_once_then_resumes_from_its_commits() {
    let broker = start_broker();
    let b = broker.bootstrap();
    let lines: Vec<String> = (0..60).map(|i| format!("v{i}")).collect();
    kcat(&["-b", &b, "-t", "kgroup-topic", "-P"], &(lines.join("\n") + "\n"));
    let args = [
        "-b",
        &b,
        "-G",
        "kcat-group",
        "-e",
        "-X",
        "auto.offset.reset=earliest",
        "-X",
        "session.timeout.ms=6000",
        "-f",
        "%s\n",
        "kgroup-topic",
    ];
    let out = kcat(&args, "");
    let mut got: Vec<&str> = out.lines().collect();
    got.sort_unstable();
    let mut want: Vec<&str> = lines.iter().map(String::as_str).collect();
    want.sort_unstable();
    assert_eq!(got, want);
    // kcat commits on exit: the same group reads nothing again, until there is more.
    assert_eq!(kcat(&args, ""), "");
    kcat(&["-b", &b, "-t", "kgroup-topic", "-P"], "late\n");
    assert_eq!(kcat(&args, ""), "late\n");
}

// ---- Debian's other clients as group members ------------------------------------------------

fn installed(package: &str) -> bool {
    let out = Command::new("dpkg-query").args(["-W", "-f=${Status}", package]).output();
    let ok =
        out.is_ok_and(|o| o.status.success() && String::from_utf8_lossy(&o.stdout).ends_with(" installed"));
    if !ok {
        eprintln!("SKIPPED: Debian package {package} is not installed (scripts/test.sh installs it)");
    }
    ok
}

/// Runs a client program (killed after 60 s) and returns its stdout; panics if it failed.
fn run_client(program: &std::path::Path, args: &[&str]) -> String {
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "{} {args:?}: {stdout}\n{}",
        program.display(),
        &stderr[stderr.len().saturating_sub(2000)..]
    );
    stdout
}

#[test]
fn kafka_python_group_consumer_commits_and_resumes() {
    if !installed("python3-kafka") {
        return;
    }
    let broker = start_broker();
    let b = broker.bootstrap();
    ensure_topic(broker.ports[0], "py-group");
    produce(&b, "py-group", 3, 10);
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/kafka_python_group.py");
    let script = script.to_str().unwrap();
    let python = std::path::Path::new("/usr/bin/python3");
    let out = run_client(python, &[script, &b, "py-group", "py-consumers", "30", "5000"]);
    assert!(out.contains("kafka-python group consumed=30 committed=0:10,1:10,2:10"), "{out}");
    let out = run_client(python, &[script, &b, "py-group", "py-consumers", "30", "3000"]);
    assert!(out.contains("consumed=0 "), "resumes after its commits: {out}");
    produce(&b, "py-group", 3, 1);
    let out = run_client(python, &[script, &b, "py-group", "py-consumers", "3", "5000"]);
    assert!(out.contains("consumed=3 committed=0:11,1:11,2:11"), "{out}");
}

#[test]
fn sarama_consumer_group_commits_and_resumes() {
    if !installed("golang-github-shopify-sarama-dev") {
        return;
    }
    let binary = common::go_build("sarama_group", "groups");

    let broker = start_broker();
    let b = broker.bootstrap();
    ensure_topic(broker.ports[0], "sarama-group");
    produce(&b, "sarama-group", 3, 10);
    let out = run_client(&binary, &[&b, "sarama-group", "sarama-consumers", "30", "5000"]);
    assert!(out.contains("sarama group consumed=30"), "{out}");
    let out = run_client(&binary, &[&b, "sarama-group", "sarama-consumers", "30", "3000"]);
    assert!(out.contains("sarama group consumed=0"), "resumes after its commits: {out}");
    // Its commits are the group's: librdkafka in the same group sees them.
    let c = consumer(&b, "sarama-consumers");
    assert_eq!(committed(&c, "sarama-group", 3), (0..3).map(|p| (p, 10)).collect());
}

#[test]
fn kafka_go_group_reader_commits_and_resumes() {
    if !installed("golang-github-segmentio-kafka-go-dev") {
        return;
    }
    let binary = common::go_build("kafkago_group", "groups");

    let broker = start_broker();
    let b = broker.bootstrap();
    ensure_topic(broker.ports[0], "kafkago-group");
    produce(&b, "kafkago-group", 3, 10);
    let out = run_client(&binary, &[&b, "kafkago-group", "kafkago-consumers", "30", "5000"]);
    assert!(out.contains("kafka-go group consumed=30 "), "{out}");
    // kafka-go 0.2.1's Reader.Close cancels its context before it dials the coordinator for
    // LeaveGroup, so no LeaveGroup is sent and (on Kafka too) the next member's JoinGroup waits
    // out the old member's 6 s session: the later runs wait longer than that.
    let out = run_client(&binary, &[&b, "kafkago-group", "kafkago-consumers", "30", "12000"]);
    assert!(out.contains("kafka-go group consumed=0 "), "resumes after its commits: {out}");
    produce(&b, "kafkago-group", 3, 1);
    let out = run_client(&binary, &[&b, "kafkago-group", "kafkago-consumers", "3", "12000"]);
    assert!(out.contains("kafka-go group consumed=3 values=0-0,1-0,2-0"), "only the new records: {out}");
    // Its commits (OffsetCommit v2) are the group's: librdkafka in the same group sees them.
    let c = consumer(&b, "kafkago-consumers");
    assert_eq!(committed(&c, "kafkago-group", 3), (0..3).map(|p| (p, 11)).collect());
}

// ---- the protocol, with a raw client ---------------------------------------------------------

fn gid(v: &str) -> GroupId {
    GroupId(s(v))
}

/// The port of `group`'s coordinator (FindCoordinator v3 on `port`) and of the other shard.
fn coordinator_ports(broker: &Broker, group: &str) -> (u16, u16) {
    let mut client = RawClient::connect(broker.ports[0]);
    let r = client.call(3, &FindCoordinatorRequest::default().with_key(s(group)).with_key_type(0));
    assert_eq!(r.error_code, NONE, "{r:?}");
    let port = r.port as u16;
    let other = *broker.ports.iter().find(|p| **p != port).unwrap();
    (port, other)
}

fn join_request(group: &str, member: &str, instance: Option<&str>) -> JoinGroupRequest {
    JoinGroupRequest::default()
        .with_group_id(gid(group))
        .with_session_timeout_ms(6000)
        .with_rebalance_timeout_ms(10_000)
        .with_member_id(s(member))
        .with_group_instance_id(instance.map(s))
        .with_protocol_type(s("consumer"))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(s("range"))
            .with_metadata(Bytes::from_static(b"\0\x01\0\0\0\x01\0\x03raw\xff\xff\xff\xff"))])
}

/// JoinGroup v5 with the MEMBER_ID_REQUIRED handshake; returns the final answer.
fn join(client: &mut RawClient, group: &str) -> JoinGroupResponse {
    let first = client.call(5, &join_request(group, "", None));
    assert_eq!(first.error_code, MEMBER_ID_REQUIRED, "{first:?}");
    assert!(!first.member_id.is_empty());
    client.call(5, &join_request(group, &first.member_id, None))
}

fn heartbeat(
    client: &mut RawClient,
    group: &str,
    member: &str,
    instance: Option<&str>,
    generation: i32,
) -> i16 {
    let req = HeartbeatRequest::default()
        .with_group_id(gid(group))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_group_instance_id(instance.map(s));
    client.call(4, &req).error_code
}

fn sync_request(
    group: &str,
    member: &str,
    generation: i32,
    assignments: &[(&str, &'static [u8])],
) -> SyncGroupRequest {
    SyncGroupRequest::default()
        .with_group_id(gid(group))
        .with_generation_id(generation)
        .with_member_id(s(member))
        .with_protocol_type(Some(s("consumer")))
        .with_protocol_name(Some(s("range")))
        .with_assignments(
            assignments
                .iter()
                .map(|(m, a)| {
                    SyncGroupRequestAssignment::default()
                        .with_member_id(s(m))
                        .with_assignment(Bytes::from_static(a))
                })
                .collect(),
        )
}

fn commit_request(
    group: &str,
    member: &str,
    generation: i32,
    topic: &str,
    offset: i64,
) -> OffsetCommitRequest {
    OffsetCommitRequest::default()
        .with_group_id(gid(group))
        .with_generation_id_or_member_epoch(generation)
        .with_member_id(s(member))
        .with_topics(vec![OffsetCommitRequestTopic::default().with_name(topic_name(topic)).with_partitions(
            vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(s("meta")))],
        )])
}

fn commit_error(client: &mut RawClient, req: &OffsetCommitRequest) -> i16 {
    let r = client.call(8, req);
    r.topics[0].partitions[0].error_code
}

#[test]
fn find_coordinator_routes_every_group_to_one_shard() {
    let broker = start_broker();
    let mut a = RawClient::connect(broker.ports[0]);
    let mut b = RawClient::connect(broker.ports[1]);
    for group in ["g-1", "g-2", "orders-service", "ünïcödé"] {
        let ra = a.call(0, &FindCoordinatorRequest::default().with_key(s(group)));
        let rb = b.call(3, &FindCoordinatorRequest::default().with_key(s(group)).with_key_type(0));
        assert_eq!((ra.error_code, rb.error_code), (NONE, NONE));
        assert_eq!((ra.node_id, ra.port), (rb.node_id, rb.port), "every shard names the same coordinator");
        assert!(broker.ports.contains(&(ra.port as u16)));
        assert_eq!(ra.host.as_str(), "127.0.0.1");
    }
    // Batched keys (v4), an unknown key type, and the transaction key type (below).
    let r = a.call(
        4,
        &FindCoordinatorRequest::default().with_key_type(0).with_coordinator_keys(vec![s("g-1"), s("g-2")]),
    );
    assert_eq!(r.coordinators.len(), 2);
    assert_eq!((r.coordinators[0].key.as_str(), r.coordinators[1].key.as_str()), ("g-1", "g-2"));
    assert_eq!((r.coordinators[0].error_code, r.coordinators[1].error_code), (NONE, NONE));
    let g1 = b.call(3, &FindCoordinatorRequest::default().with_key(s("g-1")).with_key_type(0));
    assert_eq!(r.coordinators[0].port, g1.port);
    let r =
        a.call(4, &FindCoordinatorRequest::default().with_key_type(7).with_coordinator_keys(vec![s("x")]));
    assert_eq!(r.coordinators[0].error_code, INVALID_REQUEST);
    let r =
        a.call(4, &FindCoordinatorRequest::default().with_key_type(1).with_coordinator_keys(vec![s("tx")]));
    assert_eq!(r.coordinators[0].error_code, COORDINATOR_NOT_AVAILABLE);
    // The internal topic exists now: 50 compacted partitions spread over both shards.
    let md = a.metadata(Some(&["__consumer_offsets"]), false);
    let t = &md.topics[0];
    assert_eq!(t.error_code, NONE);
    assert!(t.is_internal);
    assert_eq!(t.partitions.len(), 50);
    let leaders: BTreeSet<i32> = t.partitions.iter().map(|p| p.leader_id.0).collect();
    assert_eq!(leaders.len(), 2, "spread over the shards");
}

#[test]
fn group_protocol_errors_follow_kafka() {
    let broker = start_broker();
    ensure_topic(broker.ports[0], "raw-topic");
    let group = "raw-g";
    let (port, other) = coordinator_ports(&broker, group);
    let mut a = RawClient::connect(port);
    let mut b = RawClient::connect(port);
    let mut wrong = RawClient::connect(other);

    // The other shard is not the coordinator.
    assert_eq!(heartbeat(&mut wrong, group, "x", None, 1), NOT_COORDINATOR);
    assert_eq!(wrong.call(5, &join_request(group, "", None)).error_code, NOT_COORDINATOR);
    assert_eq!(commit_error(&mut wrong, &commit_request(group, "", -1, "raw-topic", 1)), NOT_COORDINATOR);

    // Unknown group / member.
    assert_eq!(heartbeat(&mut a, group, "nobody", None, 1), UNKNOWN_MEMBER_ID);
    assert_eq!(a.call(5, &join_request(group, "nobody", None)).error_code, UNKNOWN_MEMBER_ID);

    // First member: handshake, generation 1, leads.
    let ja = join(&mut a, group);
    assert_eq!(ja.error_code, NONE, "{ja:?}");
    assert_eq!(ja.generation_id, 1);
    assert_eq!(ja.leader, ja.member_id);
    assert_eq!(ja.members.len(), 1);
    assert_eq!(ja.protocol_name.as_deref(), Some("range"));
    let ma = ja.member_id.to_string();
    let sa = a.call(5, &sync_request(group, &ma, 1, &[(&ma, b"assignment-a")]));
    assert_eq!((sa.error_code, &sa.assignment[..]), (NONE, &b"assignment-a"[..]));

    assert_eq!(heartbeat(&mut a, group, &ma, None, 1), NONE);
    assert_eq!(heartbeat(&mut a, group, &ma, None, 7), ILLEGAL_GENERATION);
    assert_eq!(heartbeat(&mut a, group, "nobody", None, 1), UNKNOWN_MEMBER_ID);

    // Commits: a member in its generation; "simple" commits only for groups without members.
    assert_eq!(commit_error(&mut a, &commit_request(group, &ma, 1, "raw-topic", 5)), NONE);
    assert_eq!(commit_error(&mut a, &commit_request(group, &ma, 0, "raw-topic", 5)), ILLEGAL_GENERATION);
    assert_eq!(commit_error(&mut a, &commit_request(group, "", -1, "raw-topic", 5)), UNKNOWN_MEMBER_ID);
    assert_eq!(
        commit_error(&mut a, &commit_request(group, &ma, 1, "no-such-topic", 5)),
        UNKNOWN_TOPIC_OR_PARTITION
    );

    // A group with members cannot be deleted; an unknown one is not found.
    let r = a.call(2, &DeleteGroupsRequest::default().with_groups_names(vec![gid(group), gid("never-was")]));
    let codes: Vec<i16> = r.results.iter().map(|r| r.error_code).collect();
    assert_eq!(codes, vec![NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND]);

    // Describe and list (each shard lists the groups it coordinates).
    let d = a.call(5, &DescribeGroupsRequest::default().with_groups(vec![gid(group), gid("never-was")]));
    assert_eq!(d.groups[0].group_state.as_str(), "Stable");
    assert_eq!(d.groups[0].protocol_data.as_str(), "range");
    assert_eq!(d.groups[0].members.len(), 1);
    assert_eq!(&d.groups[0].members[0].member_assignment[..], b"assignment-a");
    assert_eq!(d.groups[0].members[0].client_id.as_str(), "shardlog-raw-test");
    assert_eq!((d.groups[1].error_code, d.groups[1].group_state.as_str()), (NONE, "Dead"));
    let listed = a.call(4, &ListGroupsRequest::default().with_states_filter(vec![s("stable")]));
    assert!(listed.groups.iter().any(|g| g.group_id.as_str() == group && g.group_state.as_str() == "Stable"));
    let listed = a.call(4, &ListGroupsRequest::default().with_states_filter(vec![s("Empty")]));
    assert!(!listed.groups.iter().any(|g| g.group_id.as_str() == group));
    let listed = wrong.call(3, &ListGroupsRequest::default());
    assert!(!listed.groups.iter().any(|g| g.group_id.as_str() == group));

    // A second member joins: its JoinGroup waits for the rebalance; the first learns of it
    // from its heartbeat and rejoins; the leader gets both members.
    let first_b = b.call(5, &join_request(group, "", None));
    assert_eq!(first_b.error_code, MEMBER_ID_REQUIRED);
    let mb = first_b.member_id.to_string();
    let pending_b = b.send(5, &join_request(group, &mb, None));
    assert!(wait_until(Duration::from_secs(10), || heartbeat(&mut a, group, &ma, None, 1)
        == REBALANCE_IN_PROGRESS));
    let ja2 = a.call(5, &join_request(group, &ma, None));
    let jb2 = b.receive::<JoinGroupRequest>(5, pending_b);
    assert_eq!((ja2.error_code, jb2.error_code), (NONE, NONE));
    assert_eq!((ja2.generation_id, jb2.generation_id), (2, 2));
    assert_eq!(ja2.members.len(), 2, "the leader gets the member list");
    assert!(jb2.members.is_empty());
    assert_eq!(jb2.leader.as_str(), ma);
    // SyncGroup: the follower waits for the leader's assignment.
    let pending_sync_b = b.send(5, &sync_request(group, &mb, 2, &[]));
    let sa2 = a.call(5, &sync_request(group, &ma, 2, &[(&ma, b"A"), (&mb, b"B")]));
    let sb2 = b.receive::<SyncGroupRequest>(5, pending_sync_b);
    assert_eq!((&sa2.assignment[..], &sb2.assignment[..]), (&b"A"[..], &b"B"[..]));
    assert_eq!(sb2.protocol_name.as_deref(), Some("range"));

    // Batched LeaveGroup (v3+) empties the group.
    let leave = LeaveGroupRequest::default().with_group_id(gid(group)).with_members(vec![
        MemberIdentity::default().with_member_id(s(&ma)),
        MemberIdentity::default().with_member_id(s(&mb)),
        MemberIdentity::default().with_member_id(s("stranger")),
    ]);
    let r = a.call(4, &leave);
    let codes: Vec<i16> = r.members.iter().map(|m| m.error_code).collect();
    assert_eq!((r.error_code, codes), (NONE, vec![NONE, NONE, UNKNOWN_MEMBER_ID]));
    let d = a.call(5, &DescribeGroupsRequest::default().with_groups(vec![gid(group)]));
    assert_eq!(d.groups[0].group_state.as_str(), "Empty");

    // Now admin-style commits (generation -1, no member) are allowed.
    assert_eq!(commit_error(&mut a, &commit_request(group, "", -1, "raw-topic", 9)), NONE);

    // OffsetFetch: v1 per partition, v7 all topics (null), v8 several groups at once.
    let v1 = a.call(
        1,
        &OffsetFetchRequest::default().with_group_id(gid(group)).with_topics(Some(vec![
            OffsetFetchRequestTopic::default()
                .with_name(topic_name("raw-topic"))
                .with_partition_indexes(vec![0, 1]),
        ])),
    );
    let p: Vec<(i32, i64)> =
        v1.topics[0].partitions.iter().map(|p| (p.partition_index, p.committed_offset)).collect();
    assert_eq!(p, vec![(0, 9), (1, -1)]);
    let v7 = a.call(7, &OffsetFetchRequest::default().with_group_id(gid(group)).with_topics(None));
    assert_eq!(v7.error_code, NONE);
    assert_eq!(v7.topics.len(), 1);
    assert_eq!(v7.topics[0].partitions[0].committed_offset, 9);
    assert_eq!(v7.topics[0].partitions[0].metadata.as_deref(), Some("meta"));
    let groups = vec![
        OffsetFetchRequestGroup::default().with_group_id(gid(group)).with_topics(Some(vec![
            OffsetFetchRequestTopics::default()
                .with_name(topic_name("raw-topic"))
                .with_partition_indexes(vec![0]),
        ])),
        OffsetFetchRequestGroup::default().with_group_id(gid("never-was")).with_topics(None),
    ];
    let v8 = a.call(8, &OffsetFetchRequest::default().with_groups(groups));
    assert_eq!(v8.groups[0].error_code, NONE);
    assert_eq!(v8.groups[0].topics[0].partitions[0].committed_offset, 9);
    // "never-was" may live on the other shard: either its empty answer or NOT_COORDINATOR.
    assert!(matches!(v8.groups[1].error_code, NONE | NOT_COORDINATOR));
    assert!(v8.groups[1].topics.is_empty());

    // OffsetDelete, then the group itself.
    let del = OffsetDeleteRequest::default().with_group_id(gid(group)).with_topics(vec![
        OffsetDeleteRequestTopic::default()
            .with_name(topic_name("raw-topic"))
            .with_partitions(vec![OffsetDeleteRequestPartition::default().with_partition_index(0)]),
    ]);
    let r = a.call(0, &del);
    assert_eq!((r.error_code, r.topics[0].partitions[0].error_code), (NONE, NONE));
    let v7 = a.call(7, &OffsetFetchRequest::default().with_group_id(gid(group)).with_topics(None));
    assert!(v7.topics.is_empty(), "{v7:?}");
    let r = a.call(2, &DeleteGroupsRequest::default().with_groups_names(vec![gid(group)]));
    assert!(matches!(r.results[0].error_code, NONE | GROUP_ID_NOT_FOUND), "{r:?}");
    let r = a.call(2, &DeleteGroupsRequest::default().with_groups_names(vec![gid(group)]));
    assert_eq!(r.results[0].error_code, GROUP_ID_NOT_FOUND);
}

#[test]
fn static_member_restart_takes_its_place_back_without_a_rebalance() {
    let broker = start_broker();
    let group = "static-g";
    let (port, _) = coordinator_ports(&broker, group);
    let mut a = RawClient::connect(port);

    // A static member (group.instance.id) joins without the member-id handshake.
    let j1 = a.call(5, &join_request(group, "", Some("instance-1")));
    assert_eq!(j1.error_code, NONE, "{j1:?}");
    let m1 = j1.member_id.to_string();
    assert!(m1.starts_with("instance-1-"));
    let s1 = a.call(5, &sync_request(group, &m1, 1, &[(&m1, b"mine")]));
    assert_eq!(&s1.assignment[..], b"mine");

    // "Restarted": it joins again with no member id and the same instance id and metadata.
    let mut restarted = RawClient::connect(port);
    let j2 = restarted.call(9, &join_request(group, "", Some("instance-1")));
    assert_eq!(j2.error_code, NONE, "{j2:?}");
    assert_eq!(j2.generation_id, 1, "no rebalance: same generation");
    let m2 = j2.member_id.to_string();
    assert_ne!(m2, m1);
    assert_eq!(j2.leader.as_str(), m2, "it was the leader and still is");
    assert!(j2.skip_assignment, "v9: the static leader keeps the current assignment");
    // Its assignment is still there; the old member id is fenced.
    let s2 = restarted.call(5, &sync_request(group, &m2, 1, &[]));
    assert_eq!((s2.error_code, &s2.assignment[..]), (NONE, &b"mine"[..]));
    assert_eq!(heartbeat(&mut restarted, group, &m2, Some("instance-1"), 1), NONE);
    assert_eq!(heartbeat(&mut a, group, &m1, Some("instance-1"), 1), FENCED_INSTANCE_ID);
    let d = a.call(5, &DescribeGroupsRequest::default().with_groups(vec![gid(group)]));
    assert_eq!(d.groups[0].group_state.as_str(), "Stable");
    assert_eq!(d.groups[0].members.len(), 1);
    assert_eq!(d.groups[0].members[0].group_instance_id.as_deref(), Some("instance-1"));

    // Leaving by instance id alone (v4).
    let leave =
        LeaveGroupRequest::default().with_group_id(gid(group)).with_members(vec![MemberIdentity::default()
            .with_member_id(s(""))
            .with_group_instance_id(Some(s("instance-1")))]);
    let r = a.call(4, &leave);
    assert_eq!(r.members[0].error_code, NONE, "{r:?}");
}

#[test]
fn old_join_group_versions_join_directly() {
    let broker = start_broker();
    let group = "old-clients";
    let (port, _) = coordinator_ports(&broker, group);
    let mut a = RawClient::connect(port);
    // v0-v3 have no MEMBER_ID_REQUIRED handshake; v0 has no rebalance timeout.
    let j = a.call(0, &join_request(group, "", None));
    assert_eq!(j.error_code, NONE, "{j:?}");
    assert_eq!(j.generation_id, 1);
    let m = j.member_id.to_string();
    let r = a.call(
        0,
        &sync_request(group, &m, 1, &[(&m, b"x")]).with_protocol_type(None).with_protocol_name(None),
    );
    assert_eq!(&r.assignment[..], b"x");
    let leave = LeaveGroupRequest::default().with_group_id(gid(group)).with_member_id(s(&m));
    assert_eq!(a.call(0, &leave).error_code, NONE);
    assert_eq!(a.call(0, &leave).error_code, UNKNOWN_MEMBER_ID);
}

#[test]
fn initial_rebalance_delay_gathers_members_joining_an_empty_group_into_one_generation() {
    let broker = Broker::start(2, &["num.partitions=3", "group.initial.rebalance.delay.ms=1500"]);
    let group = "delayed";
    let (port, _) = coordinator_ports(&broker, group);
    let mut a = RawClient::connect(port);
    let mut b = RawClient::connect(port);
    let ida = a.call(5, &join_request(group, "", None)).member_id.to_string();
    let idb = b.call(5, &join_request(group, "", None)).member_id.to_string();
    let started = Instant::now();
    let pending_a = a.send(5, &join_request(group, &ida, None));
    std::thread::sleep(Duration::from_millis(300));
    let pending_b = b.send(5, &join_request(group, &idb, None));
    let ja = a.receive::<JoinGroupRequest>(5, pending_a);
    let jb = b.receive::<JoinGroupRequest>(5, pending_b);
    let waited = started.elapsed();
    assert_eq!((ja.error_code, jb.error_code), (NONE, NONE));
    assert_eq!((ja.generation_id, jb.generation_id), (1, 1), "one rebalance for both");
    assert_eq!(ja.members.len() + jb.members.len(), 2, "the leader saw both members");
    assert!(waited >= Duration::from_millis(1400), "the delay was not applied: {waited:?}");
}

#[test]
fn lag_is_log_end_minus_committed_through_the_admin_apis() {
    let broker = start_broker();
    let b = broker.bootstrap();
    ensure_topic(broker.ports[0], "lagging");
    produce(&b, "lagging", 3, 10);
    // Commit offsets 2, 5 and 10 as an admin tool does (no group membership).
    let c = consumer(&b, "lag-group");
    let mut tpl = TopicPartitionList::new();
    for (p, o) in [(0, 2), (1, 5), (2, 10)] {
        tpl.add_partition_offset("lagging", p, Offset::Offset(o)).unwrap();
    }
    c.commit(&tpl, CommitMode::Sync).expect("commit without joining");
    // What `kafka-consumer-groups --describe` computes: OffsetFetch + ListOffsets.
    let committed = committed(&c, "lagging", 3);
    let lag: Vec<i64> = (0..3)
        .map(|p| {
            let (_, high) = c.fetch_watermarks("lagging", p, Duration::from_secs(10)).unwrap();
            high - committed[&p]
        })
        .collect();
    assert_eq!(lag, vec![8, 5, 0]);
}

/// Kafka creates the offsets topic with its own settings whoever asks first; a Metadata request
/// that auto-creates it must not give it the broker's defaults (1 partition, delete policy).
#[test]
fn metadata_auto_creation_of_the_offsets_topic_uses_its_own_settings() {
    let broker = Broker::start(2, &["offsets.topic.num.partitions=7"]);
    let mut client = RawClient::connect(broker.ports[1]);
    let md = client.metadata(Some(&["__consumer_offsets"]), true);
    let topic =
        md.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == "__consumer_offsets"));
    let topic = topic.expect("offsets topic in the response");
    assert_eq!(topic.error_code, 0);
    assert_eq!(topic.partitions.len(), 7);
    assert!(topic.is_internal);
    let configs = kcat(&["-b", &broker.bootstrap(), "-L", "-t", "__consumer_offsets"], "");
    assert!(configs.contains("with 7 partitions"), "{configs}");
}
