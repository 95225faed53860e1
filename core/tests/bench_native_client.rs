//! `shardlog-bench --client native` moves every record: its producer's acknowledged count,
//! its consumer's count and librdkafka's reading of the same topic all equal the number of
//! records the run was told to send. Counts only; nothing here looks at timing.
mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::Broker;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};
use shardlog_bench::run::{self, ClientKind, RunOptions};
use shardlog_bench::workload::Workload;

const PARTITIONS: i32 = 16;
const RECORDS: u64 = 20_000;
const MESSAGE_BYTES: u64 = 1024;

/// The payload header's sequence number (bytes 8..16, see `shardlog_bench::payload`).
fn sequence(payload: &[u8]) -> u64 {
    u64::from_le_bytes(payload[8..16].try_into().expect("8 bytes"))
}

#[test]
fn native_producer_and_consumer_move_every_record() {
    let metrics_port = common::free_ports(1)[0];
    let broker = Broker::start(2, &[&format!("metrics.listener=http://127.0.0.1:{metrics_port}")]);
    // A backlog drain: the producer stops after exactly RECORDS records (the byte budget),
    // then the consumer reads them from the beginning. Small batches with keys over 16
    // partitions on two shards: many requests in flight on two connections.
    let workload = Workload::parse(&format!(
        "name = 'native-count'\n\
         partitions_per_topic = {PARTITIONS}\n\
         message_size_bytes = {MESSAGE_BYTES}\n\
         key_distributor = 'round-robin'\n\
         batch_num_messages = 50\n\
         consumer_backlog_bytes = {}\n\
         test_duration_s = 120\n\
         warmup_s = 0\n",
        RECORDS * MESSAGE_BYTES
    ))
    .expect("workload");
    let result = run::run(&RunOptions {
        bootstrap: broker.bootstrap(),
        client: ClientKind::Native,
        label: "test".into(),
        tags: Default::default(),
        workload,
        broker_pid: None,
        profiles: Vec::new(),
        profile_hz: 99,
        broker_metrics: Some(format!("127.0.0.1:{metrics_port}")),
        keep_topics: true,
        progress: false,
    })
    .expect("run");
    assert_eq!(result.client, "native");
    let backlog = result.phase("backlog").expect("backlog phase");
    let drain = result.phase("drain").expect("drain phase");
    assert_eq!(backlog.produced.errors, 0);
    assert_eq!(backlog.produced.messages, RECORDS, "acknowledged records");
    assert_eq!(backlog.produced.bytes, RECORDS * MESSAGE_BYTES);
    assert_eq!(drain.consumed.errors, 0);
    assert_eq!(drain.consumed.messages, RECORDS, "records the native consumer counted");
    assert_eq!(drain.consumed.bytes, RECORDS * MESSAGE_BYTES);
    // The broker's own request times, per phase, from its metrics endpoint: the backlog's
    // produce requests and the drain's fetches, each in its own phase.
    let requests = |phase: &shardlog_bench::result::PhaseResult, request: &str| {
        let times = phase.broker_request_us.as_ref().expect("broker times were scraped");
        times.get(request).map_or(0, |t| t.count)
    };
    assert!(requests(backlog, "Produce") > 0, "{:?}", backlog.broker_request_us);
    assert_eq!(requests(drain, "Produce"), 0, "{:?}", drain.broker_request_us);
    assert!(requests(drain, "FetchConsumer") > 0, "{:?}", drain.broker_request_us);
    // And each shard's load: both shards worked for the backlog (16 partitions on two).
    let shards = backlog.broker_shards.as_ref().expect("shard loads were scraped");
    assert_eq!(shards.iter().map(|s| s.shard).collect::<Vec<_>>(), [0, 1], "{shards:?}");
    assert!(shards.iter().all(|s| s.busy_s > 0.0 && s.cpu_s.is_some_and(|c| c > 0.0)), "{shards:?}");

    // librdkafka reads the same topic: every sequence number once, none missing.
    let topic = &result.topics[0];
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("group.id", "native-check")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition_offset(topic, p, Offset::Beginning).expect("assign");
    }
    consumer.assign(&tpl).expect("assign");
    let mut seen = BTreeSet::new();
    let mut duplicates = 0;
    let deadline = Instant::now() + Duration::from_secs(60);
    while (seen.len() as u64) < RECORDS && Instant::now() < deadline {
        if let Some(m) = consumer.poll(Duration::from_millis(200)) {
            let m = m.expect("message");
            let payload = m.payload().expect("payload");
            assert_eq!(payload.len() as u64, MESSAGE_BYTES);
            if !seen.insert(sequence(payload)) {
                duplicates += 1;
            }
        }
    }
    assert_eq!(duplicates, 0);
    assert_eq!(seen.len() as u64, RECORDS, "records librdkafka read back");
    assert_eq!(seen.iter().next_back().copied(), Some(RECORDS - 1));
}
