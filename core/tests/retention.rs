//! Retention enforced by the running broker: segments past `retention.ms` or beyond
//! `retention.bytes` are deleted by each shard's periodic check, never the active segment, and
//! the earliest offset clients see moves up.
mod common;

use std::time::{Duration, Instant};

use common::raw::RawClient;
use common::{kcat, Broker};

/// Produces `count` ~200-byte messages one batch each (kcat flushes per line with linger 0).
fn produce(bootstrap: &str, topic: &str, count: usize) {
    let lines: Vec<String> = (0..count).map(|i| format!("{i:04}-{}", "x".repeat(200))).collect();
    kcat(
        &["-b", bootstrap, "-t", topic, "-P", "-X", "linger.ms=0", "-X", "batch.num.messages=1"],
        &(lines.join("\n") + "\n"),
    );
}

fn earliest(client: &mut RawClient, topic: &str) -> i64 {
    let (error, offset) = client.list_offset(topic, 0, -2);
    assert_eq!(error, 0);
    offset
}

fn log_files(broker: &Broker, topic: &str) -> usize {
    std::fs::read_dir(broker.dir.join(format!("{topic}-0")))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .count()
}

#[test]
fn time_retention_deletes_old_segments_but_not_the_active_one() {
    let broker = Broker::start(
        1,
        &[
            "log.segment.bytes=2048",
            "log.retention.ms=1500",
            "log.retention.check.interval.ms=200",
            "log.segment.delete.delay.ms=0",
        ],
    );
    let b = broker.bootstrap();
    produce(&b, "events", 60);
    let mut client = RawClient::connect(broker.ports[0]);
    assert_eq!(earliest(&mut client, "events"), 0);
    assert!(log_files(&broker, "events") > 3, "small segments rolled");

    // Bounded wait: retention.ms plus a few checks.
    let deadline = Instant::now() + Duration::from_secs(20);
    while log_files(&broker, "events") > 1 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(log_files(&broker, "events"), 1, "only the active segment is left");
    let start = earliest(&mut client, "events");
    assert!(start > 0, "the log start moved up");
    let (error, latest) = client.list_offset("events", 0, -1);
    assert_eq!((error, latest), (0, 60));

    // A consumer from the beginning starts at the new log start and reads to the end.
    let out = kcat(&["-b", &b, "-t", "events", "-C", "-e", "-o", "beginning", "-f", "%o\n"], "");
    let offsets: Vec<i64> = out.lines().map(|l| l.parse().unwrap()).collect();
    assert_eq!(offsets.first(), Some(&start));
    assert_eq!(offsets.last(), Some(&59));
}

#[test]
fn size_retention_keeps_the_log_under_retention_bytes() {
    let broker = Broker::start(
        1,
        &[
            "log.segment.bytes=2048",
            "log.retention.bytes=4096",
            "log.retention.check.interval.ms=200",
            "log.segment.delete.delay.ms=0",
        ],
    );
    produce(&broker.bootstrap(), "sized", 60);
    let mut client = RawClient::connect(broker.ports[0]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while earliest(&mut client, "sized") == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let start = earliest(&mut client, "sized");
    assert!(start > 0, "oldest segments deleted");
    let dir = broker.dir.join("sized-0");
    let log_bytes: u64 = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().unwrap().len())
        .sum();
    // Kafka's rule: delete whole segments while the log minus the segment stays >= the limit,
    // so what is left is at most the limit plus one segment.
    assert!(log_bytes <= 4096 + 2048 + 512, "log is {log_bytes} bytes");
}

/// A librdkafka consumer reading from the start while retention deletes the segments under
/// it: the next fetch gets `OFFSET_OUT_OF_RANGE`, and `auto.offset.reset=earliest` continues
/// from the new log start, while `auto.offset.reset=error` surfaces the error to the
/// application. ListOffsets earliest (librdkafka's low watermark) moves to the first segment
/// left, once `retention.ms` is lowered with AlterConfigs (no restart).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_behind_the_log_start_follows_auto_offset_reset() {
    use rdkafka::admin::{AdminClient, AdminOptions, AlterConfig, ResourceSpecifier};
    use rdkafka::config::ClientConfig;
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::error::KafkaError;
    use rdkafka::types::RDKafkaErrorCode;
    use rdkafka::{Message, Offset, TopicPartitionList};

    let broker = Broker::start(
        1,
        &[
            "num.partitions=1",
            "log.segment.bytes=2048",
            "log.retention.check.interval.ms=200",
            "log.segment.delete.delay.ms=0",
        ],
    );
    let b = broker.bootstrap();
    produce(&b, "behind", 60);
    let consumer = |reset: &str| -> BaseConsumer {
        let c: BaseConsumer = rdkafka::config::ClientConfig::new()
            .set("bootstrap.servers", &b)
            .set("group.id", format!("retention-{reset}"))
            .set("enable.auto.commit", "false")
            .set("auto.offset.reset", reset)
            // Fetch one batch at a time and prefetch little, so the consumer is really behind.
            .set("fetch.message.max.bytes", "1")
            .set("queued.min.messages", "1")
            .create()
            .expect("consumer");
        let mut assignment = TopicPartitionList::new();
        assignment.add_partition_offset("behind", 0, Offset::Offset(0)).unwrap();
        c.assign(&assignment).unwrap();
        c
    };
    let poll_message = |c: &BaseConsumer| -> Result<i64, KafkaError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(m) = c.poll(Duration::from_millis(100)) {
                return m.map(|m| m.offset());
            }
        }
        panic!("nothing polled in 30 s");
    };
    let earliest_consumer = consumer("earliest");
    let error_consumer = consumer("error");
    assert_eq!(poll_message(&earliest_consumer).unwrap(), 0);
    assert_eq!(poll_message(&error_consumer).unwrap(), 0);
    assert_eq!(earliest_consumer.fetch_watermarks("behind", 0, Duration::from_secs(5)).unwrap(), (0, 60));

    // Every sealed segment is now past retention.
    let admin: AdminClient<_> = ClientConfig::new().set("bootstrap.servers", &b).create().unwrap();
    let alter = AlterConfig::new(ResourceSpecifier::Topic("behind")).set("retention.ms", "1");
    let results = admin.alter_configs(&[alter], &AdminOptions::new()).await.unwrap();
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    let dir = broker.dir.join("behind-0");
    let first_segment = || {
        let mut bases: Vec<i64> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.strip_suffix(".log")?.parse().ok())
            .collect();
        bases.sort();
        bases[0]
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut low = 0;
    while low == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
        low = earliest_consumer.fetch_watermarks("behind", 0, Duration::from_secs(5)).unwrap().0;
    }
    assert!(low > 1, "the log start moved past the consumers");
    assert_eq!(low, first_segment(), "earliest is the base of the first segment left");

    // earliest: whatever was prefetched before the deletion, then a jump to the new start and
    // on to the end, contiguous.
    let mut offsets = Vec::new();
    while offsets.last() != Some(&59) {
        match poll_message(&earliest_consumer) {
            Ok(offset) => offsets.push(offset),
            // librdkafka may report the reset itself as an event; the data below is the proof.
            Err(e) => assert!(offsets.len() < 60, "{e}"),
        }
    }
    let jump = offsets.iter().position(|&o| o >= low).expect("reached the new start");
    assert_eq!(offsets[jump], low, "continued at the new log start: {offsets:?}");
    assert!(offsets[..jump].iter().all(|&o| o < 5), "only prefetched records before the jump: {offsets:?}");
    assert_eq!(offsets[jump..].to_vec(), (low..60).collect::<Vec<_>>());

    // error: the out-of-range offset surfaces as an error, and no record past it arrives.
    let mut surfaced = None;
    for _ in 0..10 {
        match poll_message(&error_consumer) {
            Ok(offset) => {
                assert!(offset < 5, "a record from the new start with auto.offset.reset=error: {offset}")
            }
            Err(e) => {
                surfaced = Some(e);
                break;
            }
        }
    }
    assert_eq!(
        surfaced.as_ref().and_then(KafkaError::rdkafka_error_code),
        Some(RDKafkaErrorCode::AutoOffsetReset),
        "{surfaced:?}"
    );
}
