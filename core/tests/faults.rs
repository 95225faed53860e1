//! Faults against the real binary: slow and vanished clients, idle connections, the
//! idempotent producer across restarts, `kill -9` mid-stream and torn segment tails
//! (DESIGN.md invariant 8), graceful SIGTERM (issue 3 item 7) and start-up errors.
mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::raw::{
    batch, ensure_topic, fetch_request, idempotent_batch, wait_until, FetchedRecord, RawClient, FETCH_V,
};
use common::{free_ports, Broker};
use rdkafka::config::ClientConfig;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;
use shardlog_net::kafka_protocol::messages::{FetchRequest, FetchResponse};

const NONE: i16 = 0;
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_PRODUCER_EPOCH: i16 = 47;
/// What storage logs when it re-validates segments on open (absent after a clean shutdown).
const RECOVERY_SCAN_LOG: &str = "recovery scan re-validated segments";
const RECOVERY_POINT_CHECKPOINT: &str = "recovery-point-offset-checkpoint";

fn assert_serving(port: u16) {
    let md = RawClient::connect(port).metadata(None, false);
    assert!(!md.brokers.is_empty(), "the broker stopped answering Metadata on port {port}");
}

/// Every record of a partition from offset 0 to its high watermark, fetched from `port`.
fn read_partition(port: u16, topic: &str, partition: i32) -> Vec<FetchedRecord> {
    let mut client = RawClient::connect(port);
    let mut out: Vec<FetchedRecord> = Vec::new();
    // Bounded: each round either advances or the partition is fully read.
    for _ in 0..10_000 {
        let next = out.last().map_or(0, |r| r.offset + 1);
        let (error, high_watermark, records) = client.fetch(topic, partition, next, 0, 0);
        assert_eq!(error, NONE, "fetch {topic}-{partition} at {next}");
        if next >= high_watermark {
            return out;
        }
        assert!(!records.is_empty(), "no records at {next} below the high watermark {high_watermark}");
        out.extend(records.into_iter().filter(|r| r.offset >= next));
    }
    panic!("reading {topic}-{partition} did not end");
}

fn values(records: &[FetchedRecord]) -> Vec<String> {
    records.iter().map(|r| String::from_utf8(r.value.clone()).unwrap()).collect()
}

fn assert_contiguous_from_zero(records: &[FetchedRecord]) {
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.offset, i as i64, "offsets must be contiguous from 0");
    }
}

// ---- Slow and vanished clients --------------------------------------------------------------

#[test]
fn half_a_frame_does_not_stop_other_clients_on_the_shard() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "busy");
    // One client stalls inside the size prefix, another inside a frame body.
    let mut in_prefix = RawClient::connect(port);
    in_prefix.send_bytes(&[0, 0]).unwrap();
    let mut in_body = RawClient::connect(port);
    in_body.send_bytes(&1000i32.to_be_bytes()).unwrap();
    in_body.send_bytes(&[0, 3, 0, 12, 0, 0]).unwrap();

    let mut other = RawClient::connect(port);
    for i in 0..20 {
        assert_eq!(other.produce("busy", 0, 1, batch(&[format!("v{i}").as_bytes()])), (NONE, i));
    }
    assert_eq!(values(&read_partition(port, "busy", 0)).len(), 20);
    assert_serving(port);
    // The stalled clients are still connected (not idle long enough): the broker just waits.
    assert!(!in_body.closed_within(Duration::from_millis(100)));
    assert!(!in_prefix.closed_within(Duration::from_millis(100)));
}

#[test]
fn a_client_that_never_reads_its_fetches_does_not_stall_others() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "firehose");
    // ~8 MiB in the partition.
    let mut producer = RawClient::connect(port);
    let value = vec![b'x'; 512 * 1024];
    for i in 0..16 {
        assert_eq!(producer.produce("firehose", 0, 1, batch(&[&value])), (NONE, i));
    }
    // The slow client pipelines large fetches and never reads a byte: far more than the
    // socket buffers hold, so the broker's send must park.
    let mut stuck = RawClient::connect(port);
    for _ in 0..8 {
        let (payload, _) = stuck.encode(FETCH_V, &fetch_request("firehose", 0, 0, 0, 1));
        stuck.send_frame(&payload).unwrap();
    }
    // Give the broker a moment to start sending into the full socket (not needed for the
    // assertions to hold; without it they would just run before the stall).
    std::thread::sleep(Duration::from_millis(300));

    // Other clients on the same shard, on the same partition: produce, fetch, metadata.
    let mut other = RawClient::connect(port);
    let started = Instant::now();
    for i in 0..10 {
        assert_eq!(other.produce("firehose", 0, 1, batch(&[b"small"])), (NONE, 16 + i));
    }
    let (error, high_watermark, records) = other.fetch("firehose", 0, 25, 0, 1);
    assert_eq!((error, high_watermark, records.len()), (NONE, 26, 1));
    assert_serving(port);
    assert!(started.elapsed() < Duration::from_secs(10), "other clients waited {:?}", started.elapsed());

    // The stuck client vanishes; the broker notices (a reset) and goes on serving.
    drop(stuck);
    assert_eq!(other.produce("firehose", 0, 1, batch(&[b"after"])), (NONE, 26));
    assert_serving(port);
}

#[test]
fn a_client_that_stops_reading_is_closed_after_connections_max_idle_ms() {
    let broker = Broker::start(1, &["connections.max.idle.ms=500"]);
    let port = broker.ports[0];
    ensure_topic(port, "unread");
    let mut producer = RawClient::connect(port);
    let value = vec![b'x'; 512 * 1024];
    for i in 0..16 {
        assert_eq!(producer.produce("unread", 0, 1, batch(&[&value])), (NONE, i));
    }
    // 8 responses of 8 MiB each: far more than the socket buffers hold.
    const FETCHES: usize = 8;
    let mut stuck = RawClient::connect(port);
    for _ in 0..FETCHES {
        let (payload, _) = stuck.encode(FETCH_V, &fetch_request("unread", 0, 0, 0, 1));
        stuck.send_frame(&payload).unwrap();
    }
    // Not reading for three idle periods: the broker's send makes no progress all that time,
    // like a client that vanished without a reset, so the connection is idle and closed.
    std::thread::sleep(Duration::from_millis(1_500));
    let mut complete = 0;
    while let Ok(Some(_)) = stuck.read_frame() {
        complete += 1;
        if complete == FETCHES {
            break;
        }
    }
    assert!(complete < FETCHES, "all {FETCHES} responses were still sent after the idle limit");
    assert_serving(port);
}

#[test]
fn a_client_that_never_reads_does_not_hold_up_a_clean_stop() {
    let mut broker = Broker::start(1, &[]);
    let (dir, ports) = (broker.dir.clone(), broker.ports.clone());
    ensure_topic(ports[0], "stuck");
    let mut producer = RawClient::connect(ports[0]);
    let value = vec![b'x'; 512 * 1024];
    for i in 0..16 {
        assert_eq!(producer.produce("stuck", 0, 1, batch(&[&value])), (NONE, i));
    }
    let mut stuck = RawClient::connect(ports[0]);
    for _ in 0..4 {
        let (payload, _) = stuck.encode(FETCH_V, &fetch_request("stuck", 0, 0, 0, 1));
        stuck.send_frame(&payload).unwrap();
    }
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let status = broker.stop();
    assert!(status.success(), "{status:?}: {}", broker.log_text());
    assert!(started.elapsed() < Duration::from_secs(15), "stopping took {:?}", started.elapsed());
    drop(stuck);
    let broker = Broker::start_in(&dir, 1, &[], Some(ports.clone()));
    assert!(!broker.log_text().contains(RECOVERY_SCAN_LOG), "{}", broker.log_text());
    assert_eq!(read_partition(ports[0], "stuck", 0).len(), 16);
}

#[test]
fn idle_connections_are_closed_after_connections_max_idle_ms() {
    let broker = Broker::start(1, &["connections.max.idle.ms=500"]);
    let port = broker.ports[0];
    let mut idle = RawClient::connect(port);
    let mut half = RawClient::connect(port);
    half.send_bytes(&[0, 0, 0]).unwrap();
    let mut busy = RawClient::connect(port);
    let started = Instant::now();
    // The busy connection sends a request every 150 ms and stays open past the idle limit.
    while started.elapsed() < Duration::from_millis(1_200) {
        assert!(!busy.metadata(None, false).brokers.is_empty());
        std::thread::sleep(Duration::from_millis(150));
    }
    assert!(idle.closed_within(Duration::from_secs(5)), "an idle connection stayed open");
    assert!(half.closed_within(Duration::from_secs(5)), "a stalled half-frame connection stayed open");
    assert!(!busy.metadata(None, false).brokers.is_empty());
}

// ---- Idempotent producer ---------------------------------------------------------------------

/// Collects librdkafka's delivery reports: `(partition, offset, value)` of every acknowledged
/// message, and the number of failed ones.
#[derive(Default)]
struct Deliveries {
    acked: Mutex<Vec<(i32, i64, String)>>,
    failed: Mutex<usize>,
}

#[derive(Clone, Default)]
struct DeliveryContext(Arc<Deliveries>);

impl ClientContext for DeliveryContext {}

impl ProducerContext for DeliveryContext {
    type DeliveryOpaque = ();
    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                let value = String::from_utf8(m.payload().unwrap_or_default().to_vec()).unwrap();
                self.0.acked.lock().unwrap().push((m.partition(), m.offset(), value));
            }
            Err(_) => *self.0.failed.lock().unwrap() += 1,
        }
    }
}

fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> (ThreadedProducer<DeliveryContext>, Arc<Deliveries>) {
    let context = DeliveryContext::default();
    let deliveries = context.0.clone();
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", bootstrap).set("linger.ms", "5").set("message.timeout.ms", "5000");
    for (k, v) in extra {
        config.set(*k, *v);
    }
    let producer = config.create_with_context(context).expect("create producer");
    (producer, deliveries)
}

/// Sends `value` to `partition`, waiting out a full local queue (bounded).
fn send(producer: &ThreadedProducer<DeliveryContext>, topic: &str, partition: i32, value: &str) {
    let mut record: BaseRecord<(), str> = BaseRecord::to(topic).partition(partition).payload(value);
    for _ in 0..10_000 {
        match producer.send(record) {
            Ok(()) => return,
            Err((_, back)) => {
                record = back;
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
    panic!("the producer queue stayed full");
}

#[test]
fn rdkafka_idempotent_producer_delivers_each_message_once_in_order() {
    let broker = Broker::start(2, &["num.partitions=2"]);
    let leaders = ensure_topic(broker.ports[0], "exactly");
    let (producer, deliveries) =
        producer(&broker.bootstrap(), &[("enable.idempotence", "true"), ("acks", "all")]);
    const N: usize = 1_000;
    for i in 0..N {
        send(&producer, "exactly", (i % 2) as i32, &format!("m-{i}"));
    }
    producer.flush(Duration::from_secs(20)).expect("flush");
    assert_eq!(*deliveries.failed.lock().unwrap(), 0);
    assert_eq!(deliveries.acked.lock().unwrap().len(), N);
    for (partition, &leader) in leaders.iter().enumerate() {
        let records = read_partition(leader, "exactly", partition as i32);
        assert_contiguous_from_zero(&records);
        let want: Vec<String> = (0..N).filter(|i| i % 2 == partition).map(|i| format!("m-{i}")).collect();
        assert_eq!(values(&records), want, "partition {partition}");
    }
}

#[test]
fn idempotent_producer_state_survives_sigterm_and_kill_9_restarts() {
    let mut broker = Broker::start(1, &[]);
    let (dir, ports) = (broker.dir.clone(), broker.ports.clone());
    ensure_topic(ports[0], "durable-idem");
    let mut client = RawClient::connect(ports[0]);
    let pid = client.init_producer_id().producer_id.0;
    let first = idempotent_batch(pid, 0, 0, &[b"a", b"b", b"c"]);
    let second = idempotent_batch(pid, 0, 3, &[b"d", b"e"]);
    assert_eq!(client.produce("durable-idem", 0, -1, first), (NONE, 0));
    assert_eq!(client.produce("durable-idem", 0, -1, second.clone()), (NONE, 3));
    drop(client);

    // Clean stop: the state comes back from the producer snapshot.
    assert!(broker.stop().success());
    let mut broker = Broker::start_in(&dir, 1, &[], Some(ports.clone()));
    let mut client = RawClient::connect(ports[0]);
    assert_eq!(client.produce("durable-idem", 0, -1, second), (NONE, 3), "retry after SIGTERM restart");
    assert_eq!(client.list_offset("durable-idem", 0, -1), (NONE, 5));
    let (error, _) = client.produce("durable-idem", 0, -1, idempotent_batch(pid, 0, 9, &[b"gap"]));
    assert_eq!(error, OUT_OF_ORDER_SEQUENCE_NUMBER);
    let third = idempotent_batch(pid, 0, 5, &[b"f"]);
    assert_eq!(client.produce("durable-idem", 0, -1, third.clone()), (NONE, 5));
    drop(client);

    // kill -9: the state comes back from the snapshot plus the log after it.
    broker.kill();
    let mut broker = Broker::start_in(&dir, 1, &[], Some(ports.clone()));
    let mut client = RawClient::connect(ports[0]);
    assert_eq!(client.produce("durable-idem", 0, -1, third), (NONE, 5), "retry after kill -9 restart");
    assert_eq!(client.list_offset("durable-idem", 0, -1), (NONE, 6));
    // A bumped epoch, then another crash: the old epoch stays fenced.
    let bumped = idempotent_batch(pid, 1, 0, &[b"g"]);
    assert_eq!(client.produce("durable-idem", 0, -1, bumped.clone()), (NONE, 6));
    drop(client);
    broker.kill();
    let _broker = Broker::start_in(&dir, 1, &[], Some(ports.clone()));
    let mut client = RawClient::connect(ports[0]);
    assert_eq!(client.produce("durable-idem", 0, -1, bumped), (NONE, 6));
    let (error, _) = client.produce("durable-idem", 0, -1, idempotent_batch(pid, 0, 6, &[b"zombie"]));
    assert_eq!(error, INVALID_PRODUCER_EPOCH);
    let records = read_partition(ports[0], "durable-idem", 0);
    assert_contiguous_from_zero(&records);
    assert_eq!(values(&records), ["a", "b", "c", "d", "e", "f", "g"]);
}

// ---- Crash and restart -----------------------------------------------------------------------

/// How a stream of produces is interrupted.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Interruption {
    Kill9,
    Sigterm,
}

/// Streams librdkafka produces (with `producer_config`) to two partitions on two shards,
/// interrupts the broker mid-stream, restarts it on the same dir and ports, and checks that
/// every acknowledged record is there at its offset, offsets are contiguous, no value is
/// stored twice, and new produces follow. Returns the restarted broker's log.
fn interrupt_mid_stream(topic: &str, interruption: Interruption, producer_config: &[(&str, &str)]) -> String {
    let mut broker = Broker::start(2, &["num.partitions=2"]);
    let (dir, ports) = (broker.dir.clone(), broker.ports.clone());
    let leaders = ensure_topic(ports[0], topic);
    let mut config = vec![("message.timeout.ms", "1500")];
    config.extend_from_slice(producer_config);
    let (producer, deliveries) = producer(&broker.bootstrap(), &config);
    let producer = Arc::new(producer);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let (producer, stop, topic) = (producer.clone(), stop.clone(), topic.to_string());
        std::thread::spawn(move || {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) && i < 1_000_000 {
                send(&producer, &topic, (i % 2) as i32, &format!("m-{i}"));
                i += 1;
                if i & 63 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
            }
        })
    };
    assert!(
        wait_until(Duration::from_secs(30), || deliveries.acked.lock().unwrap().len() >= 3_000),
        "too few acknowledgements before the interruption"
    );
    match interruption {
        Interruption::Kill9 => broker.kill(),
        Interruption::Sigterm => {
            let status = broker.stop();
            assert!(status.success(), "{status:?}: {}", broker.log_text());
        }
    }
    stop.store(true, Ordering::Relaxed);
    sender.join().unwrap();
    // Everything still queued fails (message.timeout.ms); then no producer is left to write.
    let _ = producer.flush(Duration::from_secs(15));
    drop(producer);
    let acked: Vec<(i32, i64, String)> = deliveries.acked.lock().unwrap().clone();
    let failed = *deliveries.failed.lock().unwrap();
    assert!(failed > 0, "the stream was not interrupted ({} acknowledged)", acked.len());

    let broker = Broker::start_in(&dir, 2, &[], Some(ports.clone()));
    let mut by_partition: HashMap<i32, Vec<FetchedRecord>> = HashMap::new();
    for (partition, &leader) in leaders.iter().enumerate() {
        let records = read_partition(leader, topic, partition as i32);
        assert_contiguous_from_zero(&records);
        let mut seen = std::collections::HashSet::new();
        for value in values(&records) {
            assert!(seen.insert(value.clone()), "{value} is stored twice in partition {partition}");
        }
        by_partition.insert(partition as i32, records);
    }
    for (partition, offset, value) in &acked {
        let record = by_partition[partition].get(*offset as usize);
        assert_eq!(
            record.map(|r| r.value.as_slice()),
            Some(value.as_bytes()),
            "acknowledged {value} at {partition}/{offset} is missing after {interruption:?}"
        );
    }
    // The restarted broker takes new writes right after the recovered ones.
    for partition in 0..2 {
        let end = by_partition[&partition].len() as i64;
        let mut client = RawClient::connect(leaders[partition as usize]);
        assert_eq!(client.produce(topic, partition, 1, batch(&[b"after the restart"])), (NONE, end));
    }
    broker.log_text()
}

#[test]
fn kill_9_mid_stream_keeps_every_acknowledged_record() {
    let log = interrupt_mid_stream("crash", Interruption::Kill9, &[("acks", "1")]);
    assert!(log.contains(RECOVERY_SCAN_LOG), "a crash must be followed by a recovery scan:\n{log}");
}

#[test]
fn kill_9_mid_stream_of_idempotent_acks_all_keeps_every_record_once() {
    let log = interrupt_mid_stream("crash-idem", Interruption::Kill9, &[("enable.idempotence", "true")]);
    assert!(log.contains(RECOVERY_SCAN_LOG), "{log}");
}

#[test]
fn sigterm_mid_stream_keeps_every_acknowledged_record_without_recovery() {
    let log = interrupt_mid_stream("stopped", Interruption::Sigterm, &[("acks", "all")]);
    assert!(!log.contains(RECOVERY_SCAN_LOG), "a clean stop must not need a recovery scan:\n{log}");
}

/// The active (highest base offset) segment file of `<dir>/<topic>-<partition>`.
fn active_segment(dir: &Path, topic: &str, partition: i32) -> PathBuf {
    let partition_dir = dir.join(format!("{topic}-{partition}"));
    let mut logs: Vec<PathBuf> = std::fs::read_dir(&partition_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "log"))
        .collect();
    logs.sort();
    logs.pop().expect("a segment file")
}

/// Produces `count` one-record batches "r-0".. and kills the broker; returns the batch sizes.
fn produce_then_kill(broker: &mut Broker, topic: &str, count: usize) -> Vec<usize> {
    let port = broker.ports[0];
    ensure_topic(port, topic);
    let mut client = RawClient::connect(port);
    let mut sizes = Vec::new();
    for i in 0..count {
        let b = batch(&[format!("r-{i}").as_bytes()]);
        sizes.push(b.len());
        assert_eq!(client.produce(topic, 0, 1, b), (NONE, i as i64));
    }
    broker.kill();
    sizes
}

#[test]
fn torn_write_at_the_tail_is_cut_and_everything_before_it_is_served() {
    let mut broker = Broker::start(1, &["log.segment.bytes=1024"]);
    let (dir, ports) = (broker.dir.clone(), broker.ports.clone());
    let sizes = produce_then_kill(&mut broker, "torn", 40);
    // Several segments (1 KiB each): only the tail of the active one is torn.
    let segment = active_segment(&dir, "torn", 0);
    let file = std::fs::OpenOptions::new().write(true).open(&segment).unwrap();
    let len = file.metadata().unwrap().len();
    assert!(len > 3 && len < sizes.iter().sum::<usize>() as u64, "{len}");
    file.set_len(len - 3).unwrap();
    drop(file);

    let broker = Broker::start_in(&dir, 1, &[], Some(ports.clone()));
    assert!(broker.log_text().contains("truncated the log"), "{}", broker.log_text());
    let records = read_partition(ports[0], "torn", 0);
    assert_contiguous_from_zero(&records);
    let want: Vec<String> = (0..39).map(|i| format!("r-{i}")).collect();
    assert_eq!(values(&records), want, "everything before the torn batch, nothing after");
    let mut client = RawClient::connect(ports[0]);
    // The rebuilt indexes find a batch in the middle of the recovered segments.
    for offset in [13, 25, 38] {
        let (error, _, records) = client.fetch("torn", 0, offset, 0, 0);
        assert_eq!(error, NONE);
        assert_eq!(records.first().map(|r| r.offset), Some(offset));
    }
    assert_eq!(client.list_offset("torn", 0, 0), (NONE, 0), "offsets for times after recovery");
    assert_eq!(client.produce("torn", 0, 1, batch(&[b"r-39 again"])), (NONE, 39));
    assert_eq!(values(&read_partition(ports[0], "torn", 0)).last().unwrap(), "r-39 again");
}

#[test]
fn corrupt_batch_at_the_tail_is_cut_and_everything_before_it_is_served() {
    let mut broker = Broker::start(1, &[]);
    let (dir, ports) = (broker.dir.clone(), broker.ports.clone());
    let sizes = produce_then_kill(&mut broker, "rot", 10);
    // Flip a byte inside the value of the 8th batch: batches 7..9 are cut, 0..6 kept.
    let segment = active_segment(&dir, "rot", 0);
    let mut bytes = std::fs::read(&segment).unwrap();
    assert_eq!(bytes.len(), sizes.iter().sum::<usize>(), "the segment holds exactly the batches");
    let at = sizes[..8].iter().sum::<usize>() - 2;
    bytes[at] ^= 0xff;
    std::fs::write(&segment, &bytes).unwrap();

    let _broker = Broker::start_in(&dir, 1, &[], Some(ports.clone()));
    let records = read_partition(ports[0], "rot", 0);
    assert_contiguous_from_zero(&records);
    assert_eq!(values(&records), (0..7).map(|i| format!("r-{i}")).collect::<Vec<_>>());
}

// ---- Graceful SIGTERM ------------------------------------------------------------------------

#[test]
fn sigterm_writes_checkpoints_and_the_next_start_needs_no_recovery_scan() {
    let mut broker = Broker::start(2, &["num.partitions=4"]);
    let (dir, ports) = (broker.dir.clone(), broker.ports.clone());
    let leaders = ensure_topic(ports[0], "graceful");
    for (partition, &port) in leaders.iter().enumerate() {
        let mut client = RawClient::connect(port);
        for i in 0..5 {
            let value = format!("p{partition}-{i}");
            assert_eq!(
                client.produce("graceful", partition as i32, 1, batch(&[value.as_bytes()])),
                (NONE, i)
            );
        }
    }
    // An idle client and a parked long poll must not keep the broker from stopping.
    let _idle = RawClient::connect(ports[0]);
    let mut parked = RawClient::connect(leaders[0]);
    let (payload, parked_correlation_id) =
        parked.encode(FETCH_V, &fetch_request("graceful", 0, 5, 30_000, 1));
    parked.send_frame(&payload).unwrap();
    // Let it reach the broker and park (if it has not, it is simply not in flight yet).
    std::thread::sleep(Duration::from_millis(200));

    let started = Instant::now();
    let status = broker.stop();
    assert!(status.success(), "exit status {status:?}: {}", broker.log_text());
    assert!(started.elapsed() < Duration::from_secs(10), "stopping took {:?}", started.elapsed());
    // The in-flight long poll was finished (answered, empty), not cut off.
    let answer: FetchResponse = parked.receive::<FetchRequest>(FETCH_V, parked_correlation_id);
    let partition = &answer.responses[0].partitions[0];
    assert_eq!((partition.error_code, partition.high_watermark), (NONE, 5));
    let checkpoint =
        std::fs::read_to_string(dir.join(RECOVERY_POINT_CHECKPOINT)).expect("checkpoint written");
    for partition in 0..4 {
        assert!(checkpoint.contains(&format!("graceful {partition} 5")), "{checkpoint}");
    }

    let broker = Broker::start_in(&dir, 2, &[], Some(ports.clone()));
    let log = broker.log_text();
    assert!(!log.contains(RECOVERY_SCAN_LOG), "a clean start re-validated segments:\n{log}");
    assert!(!log.contains("rebuilding indexes"), "{log}");
    for (partition, &port) in leaders.iter().enumerate() {
        let want: Vec<String> = (0..5).map(|i| format!("p{partition}-{i}")).collect();
        assert_eq!(values(&read_partition(port, "graceful", partition as i32)), want);
    }
}

// ---- Start-up errors -------------------------------------------------------------------------

/// Runs `shardlog start` with `args` and waits (bounded) for it to exit; `(success, stderr)`.
fn start_expecting_exit(args: &[String]) -> (bool, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardlog"))
        .arg("start")
        .args(args)
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("shardlog did not exit: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = child.wait_with_output().unwrap();
    (status.success(), String::from_utf8_lossy(&out.stderr).into_owned())
}

fn base_overrides(dir: &Path, ports: &[u16]) -> Vec<String> {
    let list = ports.iter().map(|p| p.to_string()).collect::<Vec<_>>().join(",");
    [
        format!("log.dirs={}", dir.display()),
        format!("listeners=PLAINTEXT://127.0.0.1:{}", ports[0]),
        format!("num.shards={}", ports.len()),
        format!("shard.ports={list}"),
    ]
    .into_iter()
    .flat_map(|o| ["--override".to_string(), o])
    .collect()
}

fn assert_one_error_line_naming_port(stderr: &str, port: u16) {
    let naming: Vec<&str> = stderr.lines().filter(|l| l.contains(&format!(":{port}"))).collect();
    assert_eq!(naming.len(), 1, "want one line naming port {port}:\n{stderr}");
    assert!(naming[0].to_lowercase().contains("error"), "{}", naming[0]);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_port_already_in_use_is_one_error_naming_it() {
    for taken_shard in [0, 1] {
        let ports = free_ports(2);
        let _holder = std::net::TcpListener::bind(("127.0.0.1", ports[taken_shard])).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let (success, stderr) = start_expecting_exit(&base_overrides(dir.path(), &ports));
        assert!(!success, "started on a taken port: {stderr}");
        assert_one_error_line_naming_port(&stderr, ports[taken_shard]);
    }
}

#[test]
fn a_port_used_by_another_shardlog_is_refused() {
    let running = Broker::start(1, &[]);
    let dir = tempfile::tempdir().unwrap();
    let (success, stderr) = start_expecting_exit(&base_overrides(dir.path(), &running.ports));
    assert!(!success, "a second broker bound the same port: {stderr}");
    assert_one_error_line_naming_port(&stderr, running.ports[0]);
    assert_serving(running.ports[0]);
}

#[test]
fn an_unknown_key_in_a_config_file_is_refused_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.properties");
    std::fs::write(&file, "num.partitions=3\nlog.retention.hourz=12\n").unwrap();
    let mut args = vec!["--config".to_string(), file.display().to_string()];
    args.extend(base_overrides(dir.path(), &free_ports(1)));
    let (success, stderr) = start_expecting_exit(&args);
    assert!(!success);
    assert_eq!(stderr.lines().filter(|l| l.contains("log.retention.hourz")).count(), 1, "{stderr}");
    // The same through --override.
    let mut args = base_overrides(dir.path(), &free_ports(1));
    args.extend(["--override".to_string(), "num.partition=3".to_string()]);
    let (success, stderr) = start_expecting_exit(&args);
    assert!(!success);
    assert_eq!(stderr.lines().filter(|l| l.contains("num.partition")).count(), 1, "{stderr}");
}

#[test]
fn an_invalid_value_is_refused_naming_key_and_value() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("num.partitions", "zero"),
        ("auto.create.topics.enable", "maybe"),
        ("socket.request.max.bytes", "-5"),
    ];
    for (key, value) in cases {
        let file = dir.path().join("server.properties");
        std::fs::write(&file, format!("{key}={value}\n")).unwrap();
        let mut args = vec!["--config".to_string(), file.display().to_string()];
        args.extend(base_overrides(dir.path(), &free_ports(1)));
        let (success, stderr) = start_expecting_exit(&args);
        assert!(!success, "{key}={value} was accepted");
        let line = stderr.lines().find(|l| l.contains(key)).unwrap_or_else(|| panic!("{key}: {stderr}"));
        assert!(line.contains(value), "{line}");
    }
}
