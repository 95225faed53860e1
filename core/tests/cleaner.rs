//! The log cleaner on the running broker, beyond the course example (`compaction.rs`): its
//! `cleaner-offset-checkpoint`, `max.compaction.lag.ms`, the I/O throttle, a `kill -9` in the
//! middle of a pass, the dedupe buffer bound, and idempotent producers whose records are
//! compacted away.
mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use common::raw::RawClient;
use common::{kcat, shardlog_with_input, Broker};
use shardlog_storage::batch_builder::RecordBatchBuilder;
use shardlog_storage::record_batch::{BatchIter, Compression};

/// One consumed record: offset, key, value.
type Seen = (i64, String, String);

fn consume(bootstrap: &str, topic: &str) -> Vec<Seen> {
    let out = kcat(&["-b", bootstrap, "-t", topic, "-C", "-e", "-o", "beginning", "-f", "%o %k %s\n"], "");
    out.lines()
        .map(|line| {
            let mut fields = line.splitn(3, ' ');
            let offset = fields.next().unwrap().parse().unwrap();
            (offset, fields.next().unwrap().to_string(), fields.next().unwrap_or("").to_string())
        })
        .collect()
}

/// Key → (offset, value) of the latest record per key.
fn latest(records: &[Seen]) -> BTreeMap<String, (i64, String)> {
    records.iter().map(|(o, k, v)| (k.clone(), (*o, v.clone()))).collect()
}

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .flatten()
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.ends_with(suffix))
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn count_lines(broker: &Broker, needle: &str) -> usize {
    broker.log.lock().unwrap().iter().filter(|l| l.contains(needle)).count()
}

/// The `field: <number>` values of every cleaner pass the broker logged.
fn pass_stats(broker: &Broker, field: &str) -> Vec<i64> {
    let needle = format!("{field}: ");
    broker
        .log
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains("log cleaner pass done"))
        .filter_map(|l| {
            let at = l.find(&needle)? + needle.len();
            l[at..].split(|c: char| !c.is_ascii_digit()).next()?.parse().ok()
        })
        .collect()
}

fn wait_until(within: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    condition()
}

fn produce_keyed(bootstrap: &str, topic: &str, lines: &[String]) {
    kcat(&["-b", bootstrap, "-t", topic, "-P", "-K", ":"], &(lines.join("\n") + "\n"));
}

fn checkpoint_entry(log_dir: &Path, topic: &str) -> Option<i64> {
    checkpoint_entry_of(log_dir, topic, 0)
}

fn checkpoint_entry_of(log_dir: &Path, topic: &str, partition: i32) -> Option<i64> {
    let text = std::fs::read_to_string(log_dir.join("cleaner-offset-checkpoint")).ok()?;
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("0"), "version line of:\n{text}");
    let count: usize = lines.next()?.parse().unwrap();
    let entries: Vec<&str> = lines.collect();
    assert_eq!(entries.len(), count, "entry count of:\n{text}");
    entries.iter().find_map(|l| l.strip_prefix(&format!("{topic} {partition} "))?.parse().ok())
}

/// Every shard's cleaner writes the one `cleaner-offset-checkpoint` of the log dir; each
/// rewrite keeps the other shards' entries.
#[test]
fn shards_share_the_cleaner_checkpoint_file() {
    let broker =
        Broker::start(2, &["log.cleanup.policy=compact", "log.segment.bytes=200", "num.partitions=2"]);
    let b = broker.bootstrap();
    for partition in ["0", "1"] {
        let lines: Vec<String> = (0..12).map(|i| format!("user-{}:v{i}", i % 3)).collect();
        kcat(
            &[
                "-b",
                &b,
                "-t",
                "pair",
                "-p",
                partition,
                "-P",
                "-K",
                ":",
                "-X",
                "linger.ms=0",
                "-X",
                "batch.num.messages=1",
            ],
            &(lines.join("\n") + "\n"),
        );
    }
    let both = || {
        checkpoint_entry_of(&broker.dir, "pair", 0).is_some()
            && checkpoint_entry_of(&broker.dir, "pair", 1).is_some()
    };
    assert!(
        wait_until(Duration::from_secs(30), both),
        "{:?}\n{}",
        std::fs::read_to_string(broker.dir.join("cleaner-offset-checkpoint")),
        broker.log_text()
    );
}

/// Kafka's `cleaner-offset-checkpoint`: written after a pass, read on start, so the first pass
/// after a restart (a `kill -9` here) starts where the last one ended rather than at offset 0.
#[test]
fn the_cleaner_checkpoint_is_written_and_read_back_after_a_kill() {
    let overrides = [
        "log.cleanup.policy=compact",
        "log.segment.bytes=200",
        "num.partitions=1",
        "log.cleaner.min.cleanable.ratio=0.01",
    ];
    let mut broker = Broker::start(1, &overrides);
    let b = broker.bootstrap();
    let lines: Vec<String> = (0..12).map(|i| format!("user-{}:v{i}", i % 3)).collect();
    kcat(
        &["-b", &b, "-t", "users", "-P", "-K", ":", "-X", "linger.ms=0", "-X", "batch.num.messages=1"],
        &(lines.join("\n") + "\n"),
    );
    let dir = broker.dir.join("users-0");
    let active_base = || files_with_suffix(&dir, ".log").last().map(|n| n[..20].parse::<i64>().unwrap());
    // Everything below the active segment is cleaned and checkpointed.
    assert!(
        wait_until(Duration::from_secs(30), || checkpoint_entry(&broker.dir, "users").is_some()
            && checkpoint_entry(&broker.dir, "users") == active_base()),
        "checkpoint {:?}, active segment {:?}; broker log:\n{}",
        checkpoint_entry(&broker.dir, "users"),
        active_base(),
        broker.log_text()
    );
    let checkpointed = checkpoint_entry(&broker.dir, "users").unwrap();
    assert!(checkpointed > 0);
    let before_kill = consume(&b, "users");

    broker.kill();
    let restarted = Broker::start_in(&broker.dir, 1, &overrides, Some(broker.ports.clone()));
    assert_eq!(consume(&b, "users"), before_kill, "the cleaned log survives the kill as it was");
    // New updates make new dirty segments; the first pass after the restart starts at the
    // checkpoint (without it, at 0).
    let more: Vec<String> = (12..18).map(|i| format!("user-{}:v{i}", i % 3)).collect();
    kcat(
        &["-b", &b, "-t", "users", "-P", "-K", ":", "-X", "linger.ms=0", "-X", "batch.num.messages=1"],
        &(more.join("\n") + "\n"),
    );
    assert!(
        wait_until(Duration::from_secs(30), || !pass_stats(&restarted, "dirty_start").is_empty()),
        "no pass after the restart:\n{}",
        restarted.log_text()
    );
    assert_eq!(pass_stats(&restarted, "dirty_start")[0], checkpointed, "{}", restarted.log_text());
}

/// `max.compaction.lag.ms`: with `min.cleanable.dirty.ratio=1` (the ratio can never be above
/// it) a log is still cleaned once its oldest dirty record is older than the lag; the lag also
/// rolls the active segment on the next append (Kafka's `maxSegmentMs`), as `segment.ms` does.
/// The same log without the lag is left alone.
#[test]
fn max_compaction_lag_cleans_a_log_the_dirty_ratio_never_would() {
    let broker = Broker::start(1, &["num.partitions=1"]);
    let b = broker.bootstrap();
    for (topic, lag_config) in [("lagged", "max.compaction.lag.ms=2000"), ("unlagged", "segment.ms=2000")] {
        let out = shardlog_with_input(
            &[
                "topics",
                "--bootstrap-server",
                &b,
                "--create",
                "--topic",
                topic,
                "--partitions",
                "1",
                "--config",
                "cleanup.policy=compact",
                "--config",
                "min.cleanable.dirty.ratio=1",
                "--config",
                lag_config,
            ],
            "",
        );
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        produce_keyed(&b, topic, &["k:1".into(), "k:2".into(), "k:3".into()]);
    }
    // Both active segments are older than 2 s once this sleep is over: the next append rolls
    // them (by max.compaction.lag.ms for one, by segment.ms for the other).
    std::thread::sleep(Duration::from_millis(2_500));
    for topic in ["lagged", "unlagged"] {
        produce_keyed(&b, topic, &["k:4".into()]);
        assert_eq!(
            files_with_suffix(&broker.dir.join(format!("{topic}-0")), ".log").len(),
            2,
            "{topic} rolled"
        );
    }
    let cleaned = |records: &[Seen]| records.iter().map(|r| r.0).collect::<Vec<_>>() == vec![2, 3];
    assert!(
        wait_until(Duration::from_secs(20), || cleaned(&consume(&b, "lagged"))),
        "lagged: {:?}\n{}",
        consume(&b, "lagged"),
        broker.log_text()
    );
    // A few more cleaner rounds: the log without the lag stays as it is.
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(consume(&b, "unlagged").len(), 4, "{}", broker.log_text());
}

/// A compacted log of `keys` keys updated `updates` times, 200-byte values, each value naming
/// its update so the latest per key is known; `kcat_args` shape the producer's batches.
fn big_compacted_topic(
    bootstrap: &str,
    topic: &str,
    keys: usize,
    updates: usize,
    kcat_args: &[&str],
) -> BTreeMap<String, String> {
    let mut expected = BTreeMap::new();
    let lines: Vec<String> = (0..updates)
        .map(|i| {
            let key = format!("key-{:03}", i % keys);
            let value = format!("update-{i:05}-{}", "v".repeat(188));
            expected.insert(key.clone(), value.clone());
            format!("{key}:{value}")
        })
        .collect();
    let mut args = vec!["-b", bootstrap, "-t", topic, "-P", "-K", ":"];
    args.extend_from_slice(kcat_args);
    kcat(&args, &(lines.join("\n") + "\n"));
    expected
}

/// `log.cleaner.io.max.bytes.per.second` slows a pass down to the limit while produce and
/// fetch on the same shard go on; a `kill -9` in the middle of that pass (its `.cleaned`
/// output half written) leaves a log that restarts consistent — no key lost, no offset
/// twice, leftovers removed — and that is then cleaned to the latest value per key.
#[test]
fn a_throttled_pass_does_not_block_the_shard_and_survives_a_kill() {
    let throttled = [
        "log.cleanup.policy=compact",
        "num.partitions=1",
        "log.segment.bytes=65536",
        // One pass over everything: segments are cleanable once this old, and all of the
        // topic is produced well within it.
        "log.cleaner.min.compaction.lag.ms=3000",
        "log.cleaner.io.max.bytes.per.second=100000",
    ];
    let mut broker = Broker::start(1, &throttled);
    let b = broker.bootstrap();
    const UPDATES: usize = 6_000;
    let expected = big_compacted_topic(&b, "big", 400, UPDATES, &["-X", "batch.num.messages=100"]);
    let dir = broker.dir.join("big-0");
    assert!(
        files_with_suffix(&dir, ".log").len() > 10,
        "{:?} {}",
        files_with_suffix(&dir, ""),
        consume(&b, "big").len()
    );

    // ~1.2 MB read for the offset map at 100 kB/s: the pass runs for many seconds.
    assert!(
        wait_until(Duration::from_secs(60), || count_lines(&broker, "log cleaner pass started") > 0),
        "{}",
        broker.log_text()
    );
    let passes_done = count_lines(&broker, "log cleaner pass done");
    assert_eq!(passes_done, 0, "the first pass is still running: {}", broker.log_text());
    // Produce and fetch on the shard the cleaner runs on are answered meanwhile.
    produce_keyed(&b, "big", &["during:the-pass".into()]);
    let during = consume(&b, "big");
    assert_eq!(during.len(), UPDATES + 1);
    assert_eq!(during.last().map(|r| r.1.as_str()), Some("during"));
    assert_eq!(
        count_lines(&broker, "log cleaner pass done"),
        0,
        "the throttled pass ended before produce and fetch were answered:\n{}",
        broker.log_text()
    );

    // kill -9 while the pass writes its output.
    assert!(
        wait_until(Duration::from_secs(120), || !files_with_suffix(&dir, ".cleaned").is_empty()),
        "{}",
        broker.log_text()
    );
    broker.kill();
    assert!(!files_with_suffix(&dir, ".cleaned").is_empty(), "killed in the middle of the pass");

    let unthrottled: Vec<&str> = throttled[..4].to_vec();
    let restarted = Broker::start_in(&broker.dir, 1, &unthrottled, Some(broker.ports.clone()));
    assert!(files_with_suffix(&dir, ".cleaned").is_empty() && files_with_suffix(&dir, ".swap").is_empty());
    let mut want = expected.clone();
    want.insert("during".into(), "the-pass".into());
    let check = |records: &[Seen], want: &BTreeMap<String, String>| {
        assert!(records.windows(2).all(|w| w[0].0 < w[1].0), "offsets strictly increase");
        let got: BTreeMap<String, String> = latest(records).into_iter().map(|(k, (_, v))| (k, v)).collect();
        assert_eq!(&got, want, "the latest value of every key, none lost, none stale");
    };
    check(&consume(&b, "big"), &want);
    // The broker serves writes after the restart, and cleaning finishes (what is left: one
    // record per key below the active segment, and the active segment).
    produce_keyed(&b, "big", &["after:restart".into()]);
    want.insert("after".into(), "restart".into());
    assert!(
        wait_until(Duration::from_secs(60), || consume(&b, "big").len() < UPDATES / 4),
        "not compacted after the restart: {} records\n{}",
        consume(&b, "big").len(),
        restarted.log_text()
    );
    check(&consume(&b, "big"), &want);
}

/// `log.cleaner.dedupe.buffer.size` bounds the offset map: with room for 50 keys, a log of
/// 150 keys is cleaned in several passes, none holding more keys than fit, and ends with the
/// latest value of every key.
#[test]
fn the_dedupe_buffer_bounds_each_pass_on_a_topic_with_more_keys_than_fit() {
    // Entry cost: key bytes (7) + MAP_ENTRY_OVERHEAD_BYTES (48) = 55 bytes.
    let budget_bytes = 50 * (7 + shardlog_storage::log_cleaner::MAP_ENTRY_OVERHEAD_BYTES);
    let buffer = format!("log.cleaner.dedupe.buffer.size={budget_bytes}");
    let broker = Broker::start(
        1,
        &[
            "log.cleanup.policy=compact",
            "num.partitions=1",
            "log.segment.bytes=16384",
            "log.flush.scheduler.interval.ms=100",
            // Cleaning waits until everything is produced, so the passes are comparable.
            "log.cleaner.min.compaction.lag.ms=2000",
            &buffer,
        ],
    );
    let b = broker.bootstrap();
    // Batches of at most 10 records: a pass always takes one whole batch, so a batch must fit.
    const UPDATES: usize = 1_500;
    let expected = big_compacted_topic(&b, "wide", 150, UPDATES, &["-X", "batch.num.messages=10"]);
    produce_keyed(&b, "wide", &["tail:x".into()]);
    assert!(
        wait_until(Duration::from_secs(120), || consume(&b, "wide").len() < UPDATES / 3),
        "{}",
        broker.log_text()
    );
    let map_keys = pass_stats(&broker, "map_keys");
    assert!(map_keys.len() > 2, "several passes: {map_keys:?}");
    assert!(map_keys.iter().all(|&k| k <= 50), "every pass within the buffer: {map_keys:?}");
    assert!(broker.log_text().contains("map_full: true"));
    let got: BTreeMap<String, String> = latest(&consume(&b, "wide"))
        .into_iter()
        .filter(|(k, _)| k != "tail")
        .map(|(k, (_, v))| (k, v))
        .collect();
    assert_eq!(got, expected);
}

/// Every batch on disk of partition 0 of `topic`: (base offset, last offset, record count,
/// producer id, epoch, base sequence).
fn disk_batches(log_dir: &Path, topic: &str) -> Vec<(i64, i64, i32, i64, i16, i32)> {
    let dir = log_dir.join(format!("{topic}-0"));
    let mut out = Vec::new();
    for name in files_with_suffix(&dir, ".log") {
        let bytes = std::fs::read(dir.join(name)).unwrap();
        for (_, batch) in BatchIter::new(&bytes, usize::MAX).map_while(Result::ok) {
            out.push((
                batch.base_offset(),
                batch.last_offset(),
                batch.record_count(),
                batch.producer_id(),
                batch.producer_epoch(),
                batch.base_sequence(),
            ));
        }
    }
    out
}

/// An idempotent producer (librdkafka) whose records are all compacted away keeps its last
/// batch as an empty batch, so after a `kill -9` and a restart the broker still knows its
/// sequence: a retry of that batch is deduplicated (answered with its original offset, not
/// appended), and the producer carries on with the same id, epoch and next sequence.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idempotent_producers_state_survives_compaction_and_a_kill() {
    use rdkafka::config::ClientConfig;
    use rdkafka::producer::{FutureProducer, FutureRecord, Producer};

    let overrides = ["log.cleanup.policy=compact", "num.partitions=1", "log.segment.bytes=200"];
    let mut broker = Broker::start(1, &overrides);
    let b = broker.bootstrap();
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", &b)
        .set("enable.idempotence", "true")
        .set("enable.gapless.guarantee", "true")
        .set("linger.ms", "100")
        .create()
        .expect("producer");
    let mut sends = Vec::new();
    for i in 0..5 {
        let key = format!("idem-{i}");
        sends.push(
            producer.send_result(FutureRecord::to("idem").key(&key).payload("old").partition(0)).unwrap(),
        );
    }
    for send in sends {
        send.await.unwrap().expect("acked");
    }
    // Another producer supersedes every key; unique fillers seal those segments.
    let plain: Vec<String> =
        (0..5).map(|i| format!("idem-{i}:new")).chain((0..4).map(|i| format!("filler-{i}:x"))).collect();
    kcat(
        &["-b", &b, "-t", "idem", "-P", "-K", ":", "-X", "linger.ms=0", "-X", "batch.num.messages=1"],
        &(plain.join("\n") + "\n"),
    );
    let idempotent_batches =
        || disk_batches(&broker.dir, "idem").into_iter().filter(|x| x.3 >= 0).collect::<Vec<_>>();
    assert!(
        wait_until(Duration::from_secs(30), || !consume(&b, "idem").iter().any(|r| r.2 == "old")),
        "{}",
        broker.log_text()
    );
    let kept = idempotent_batches();
    let &(base, last, count, pid, epoch, base_seq) = kept.last().expect("the producer's last batch is kept");
    assert_eq!(count, 0, "kept as an empty batch: {kept:?}");
    assert!(kept.iter().all(|x| x.2 == 0 && (x.3, x.4) == (pid, epoch)));
    let last_seq = base_seq + (last - base) as i32;
    assert_eq!(last_seq, 4, "five records, sequences 0-4");

    broker.kill();
    let restarted = Broker::start_in(&broker.dir, 1, &overrides, Some(broker.ports.clone()));
    let mut client = RawClient::connect(restarted.ports[0]);
    let (_, end_before) = client.list_offset("idem", 0, -1);
    // The last batch again, as a retry: same producer, epoch and sequences.
    let mut retry = RecordBatchBuilder::new(0, Compression::None).producer(pid, epoch, base_seq);
    for offset in base..=last {
        retry.push(0, Some(format!("idem-{offset}").as_bytes()), Some(b"old"), &[]).unwrap();
    }
    assert_eq!(client.produce("idem", 0, -1, retry.build().unwrap()), (0, base), "deduplicated");
    assert_eq!(client.list_offset("idem", 0, -1), (0, end_before), "nothing appended");

    // The producer carries on: accepted with the same id and epoch, next sequence.
    let delivery = producer
        .send_result(FutureRecord::to("idem").key("idem-9").payload("next").partition(0))
        .unwrap()
        .await
        .unwrap();
    let offset = delivery.expect("accepted after the restart").offset;
    producer.flush(Duration::from_secs(5)).unwrap();
    let next = disk_batches(&restarted.dir, "idem").into_iter().find(|x| x.0 == offset).expect("on disk");
    assert_eq!((next.3, next.4, next.5), (pid, epoch, last_seq + 1), "{}", restarted.log_text());
    assert_eq!(consume(&b, "idem").iter().filter(|r| r.2 == "old").count(), 0);
}
