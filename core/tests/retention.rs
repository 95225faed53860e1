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
