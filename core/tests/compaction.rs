//! Log compaction on the running broker: a `cleanup.policy=compact` topic (from the broker's
//! `log.cleanup.policy`) is cleaned by the shard's maintenance task, so a consumer reading
//! from the beginning sees only the latest value per key, at its original offset.
mod common;

use std::time::{Duration, Instant};

use common::{kcat, Broker};

const UPDATES: &[&str] = &[
    "user-1:alice@a",
    "user-2:bob@a",
    "user-3:carol@a",
    "user-1:alice@b",
    "user-2:bob@b",
    "user-1:alice@c",
    "user-3:carol@b",
    "user-2:bob@c",
    // Unique keys after the updates, so that every update lies in a sealed segment (the
    // active segment is never cleaned).
    "filler-1:x",
    "filler-2:x",
    "filler-3:x",
    "filler-4:x",
];

const EXPECTED: &str = "user-1=alice@c@5\nuser-3=carol@b@6\nuser-2=bob@c@7\n\
                        filler-1=x@8\nfiller-2=x@9\nfiller-3=x@10\nfiller-4=x@11\n";

fn consume(bootstrap: &str, topic: &str) -> String {
    kcat(&["-b", bootstrap, "-t", topic, "-C", "-e", "-o", "beginning", "-f", "%k=%s@%o\n"], "")
}

fn log_files(broker: &Broker, topic: &str) -> usize {
    std::fs::read_dir(broker.dir.join(format!("{topic}-0")))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .count()
}

#[test]
fn the_course_example_is_compacted_to_the_latest_value_per_key() {
    let overrides = ["log.cleanup.policy=compact", "log.segment.bytes=200", "num.partitions=1"];
    let mut broker = Broker::start(1, &overrides);
    let b = broker.bootstrap();
    kcat(
        &["-b", &b, "-t", "users", "-P", "-K", ":", "-X", "linger.ms=0", "-X", "batch.num.messages=1"],
        &(UPDATES.join("\n") + "\n"),
    );
    assert!(log_files(&broker, "users") > 3, "small segments rolled");

    // Bounded wait: the maintenance task ticks at most every second.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = consume(&b, "users");
    while seen != EXPECTED && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        seen = consume(&b, "users");
    }
    assert_eq!(seen, EXPECTED, "broker log:\n{}", broker.log_text());

    // The cleaned log survives a restart as it is; new updates append after it.
    broker.stop();
    let restarted = Broker::start_in(&broker.dir, 1, &overrides, Some(broker.ports.clone()));
    assert_eq!(consume(&b, "users"), EXPECTED);
    kcat(&["-b", &b, "-t", "users", "-P", "-K", ":"], "user-1:alice@d\n");
    assert_eq!(consume(&b, "users"), format!("{EXPECTED}user-1=alice@d@12\n"));
    drop(restarted);
}

#[test]
fn a_compacted_topic_refuses_records_without_a_key() {
    let broker = Broker::start(1, &["log.cleanup.policy=compact", "num.partitions=1"]);
    let b = broker.bootstrap();
    kcat(&["-b", &b, "-t", "keyed", "-P", "-K", ":"], "k:v\n");
    let out = std::process::Command::new("kcat")
        .args(["-b", &b, "-t", "keyed", "-P", "-X", "message.send.max.retries=0"])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child.stdin.take().unwrap().write_all(b"no key\n")?;
            child.wait_with_output()
        })
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    // librdkafka's text for INVALID_RECORD (87).
    assert!(stderr.contains("Broker: Broker failed to validate record"), "kcat said: {stderr}");
    assert_eq!(consume(&b, "keyed"), "k=v@0\n");
}
