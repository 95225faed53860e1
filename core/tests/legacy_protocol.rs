//! Produce v0–2, Fetch v0–3 and ListOffsets v0 on the wire, driven by raw frames against the
//! real binary: the request versions of Debian's old clients (see `compat.rs` for the clients
//! themselves). Old-format message sets (magic 0 and 1, plain and compressed) are up-converted
//! on produce and down-converted on fetch, as Kafka 3.7 does; damaged ones get Kafka's error
//! codes; current clients read what old ones wrote.
mod common;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::raw::{batch, ensure_topic, leader_and_other_port, wait_until, RawClient};
use common::Broker;
use shardlog_storage::legacy_format::{
    build_message_set, put_message, LegacyMessage, MessageIter, NewMessage, MAGIC_V0, MAGIC_V1,
};
use shardlog_storage::record_batch::{Compression, TimestampType};

const NONE: i16 = 0;
const CORRUPT_MESSAGE: i16 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const INVALID_REQUIRED_ACKS: i16 = 21;
const INVALID_RECORD: i16 = 87;

const PRODUCE: i16 = 0;
const FETCH: i16 = 1;
const LIST_OFFSETS: i16 = 2;

// ---- legacy frames, written by hand as the protocol guide has them ----

/// Request header v1: api key, version, correlation id, client id.
fn header(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&api_key.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&correlation_id.to_be_bytes());
    put_string(&mut out, "legacy-test");
    out
}

fn put_string(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(&(s.len() as i16).to_be_bytes());
    out.extend_from_slice(s.as_bytes());
}

fn produce_frame(version: i16, acks: i16, topic: &str, partition: i32, records: Option<&[u8]>) -> Vec<u8> {
    let mut out = header(PRODUCE, version, 11);
    out.extend_from_slice(&acks.to_be_bytes());
    out.extend_from_slice(&10_000i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    put_string(&mut out, topic);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&partition.to_be_bytes());
    match records {
        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
        Some(r) => {
            out.extend_from_slice(&(r.len() as i32).to_be_bytes());
            out.extend_from_slice(r);
        }
    }
    out
}

struct FetchArgs {
    offset: i64,
    partition_max_bytes: i32,
    max_wait_ms: i32,
    min_bytes: i32,
    /// v3 only.
    max_bytes: i32,
}

const FETCH_NOW: FetchArgs =
    FetchArgs { offset: 0, partition_max_bytes: 1 << 20, max_wait_ms: 0, min_bytes: 0, max_bytes: 1 << 24 };

fn fetch_frame(version: i16, topic: &str, partition: i32, a: &FetchArgs) -> Vec<u8> {
    let mut out = header(FETCH, version, 12);
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.extend_from_slice(&a.max_wait_ms.to_be_bytes());
    out.extend_from_slice(&a.min_bytes.to_be_bytes());
    if version >= 3 {
        out.extend_from_slice(&a.max_bytes.to_be_bytes());
    }
    out.extend_from_slice(&1i32.to_be_bytes());
    put_string(&mut out, topic);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&partition.to_be_bytes());
    out.extend_from_slice(&a.offset.to_be_bytes());
    out.extend_from_slice(&a.partition_max_bytes.to_be_bytes());
    out
}

fn list_offsets_frame(topic: &str, partition: i32, timestamp: i64, max_num_offsets: i32) -> Vec<u8> {
    let mut out = header(LIST_OFFSETS, 0, 13);
    out.extend_from_slice(&(-1i32).to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    put_string(&mut out, topic);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&partition.to_be_bytes());
    out.extend_from_slice(&timestamp.to_be_bytes());
    out.extend_from_slice(&max_num_offsets.to_be_bytes());
    out
}

/// A cursor over a response body.
struct Cursor(bytes::Bytes, usize);

impl Cursor {
    fn take(&mut self, n: usize) -> &[u8] {
        let s = &self.0[self.1..self.1 + n];
        self.1 += n;
        s
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take(2).try_into().unwrap())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take(4).try_into().unwrap())
    }
    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take(8).try_into().unwrap())
    }
    fn string(&mut self) -> String {
        let len = self.i16() as usize;
        String::from_utf8(self.take(len).to_vec()).unwrap()
    }
    fn done(&self) {
        assert_eq!(self.1, self.0.len(), "bytes left over in the response");
    }
}

/// Sends `frame`, reads the answer, checks the correlation id (response header v0).
fn call(client: &mut RawClient, frame: &[u8]) -> Cursor {
    client.send_frame(frame).unwrap();
    let response = client.read_frame().unwrap().expect("an answer, not a close");
    let mut c = Cursor(response, 0);
    assert_eq!(c.i32(), i32::from_be_bytes(frame[4..8].try_into().unwrap()), "correlation id");
    c
}

/// `(error, base offset, log append time)` of a one-partition produce.
fn produce(client: &mut RawClient, version: i16, topic: &str, records: Option<&[u8]>) -> (i16, i64, i64) {
    let mut c = call(client, &produce_frame(version, -1, topic, 0, records));
    assert_eq!((c.i32(), c.string(), c.i32(), c.i32()), (1, topic.to_string(), 1, 0));
    let (error, base_offset) = (c.i16(), c.i64());
    let log_append_time = if version >= 2 { c.i64() } else { -1 };
    if version >= 1 {
        assert_eq!(c.i32(), 0, "throttle time");
    }
    c.done();
    (error, base_offset, log_append_time)
}

/// `(error, high watermark, message set)` of a one-partition fetch.
fn fetch(
    client: &mut RawClient,
    version: i16,
    topic: &str,
    partition: i32,
    a: &FetchArgs,
) -> (i16, i64, Vec<u8>) {
    let mut c = call(client, &fetch_frame(version, topic, partition, a));
    if version >= 1 {
        assert_eq!(c.i32(), 0, "throttle time");
    }
    assert_eq!((c.i32(), c.string(), c.i32(), c.i32()), (1, topic.to_string(), 1, partition));
    let (error, high_watermark) = (c.i16(), c.i64());
    let len = c.i32() as usize;
    let records = c.take(len).to_vec();
    c.done();
    (error, high_watermark, records)
}

/// `(error, offsets)` of a one-partition ListOffsets v0.
fn list_offsets(
    client: &mut RawClient,
    topic: &str,
    timestamp: i64,
    max_num_offsets: i32,
) -> (i16, Vec<i64>) {
    let mut c = call(client, &list_offsets_frame(topic, 0, timestamp, max_num_offsets));
    assert_eq!((c.i32(), c.string(), c.i32(), c.i32()), (1, topic.to_string(), 1, 0));
    let error = c.i16();
    let n = c.i32();
    let offsets = (0..n).map(|_| c.i64()).collect();
    c.done();
    (error, offsets)
}

fn messages(set: &[u8]) -> Vec<LegacyMessage<'_>> {
    MessageIter::new(set).collect::<Result<_, _>>().expect("a valid message set, CRCs included")
}

fn message_set(magic: i8, codec: Compression, values: &[&str], timestamp: i64) -> Vec<u8> {
    let new: Vec<NewMessage<'_>> = values
        .iter()
        .map(|v| NewMessage { timestamp, key: Some(b"key"), value: Some(v.as_bytes()) })
        .collect();
    build_message_set(magic, codec, 0, &new).unwrap()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64
}

#[test]
fn old_produce_and_fetch_versions_round_trip_through_the_log() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "legacy");
    let mut client = RawClient::connect(port);

    // What sarama 0.8 (magic 0, gzip), kafka-python 0.9 (magic 0) and kafka-go (magic 1, lz4)
    // send, and a current batch inside an old request (Kafka accepts that too).
    assert_eq!(
        produce(
            &mut client,
            0,
            "legacy",
            Some(&message_set(MAGIC_V0, Compression::Gzip, &["a0", "a1", "a2"], 0))
        ),
        (NONE, 0, -1)
    );
    assert_eq!(
        produce(&mut client, 1, "legacy", Some(&message_set(MAGIC_V0, Compression::None, &["a3", "a4"], 0))),
        (NONE, 3, -1)
    );
    let t = now_ms();
    assert_eq!(
        produce(
            &mut client,
            2,
            "legacy",
            Some(&message_set(MAGIC_V1, Compression::Lz4, &["a5", "a6", "a7"], t))
        ),
        (NONE, 5, -1)
    );
    assert_eq!(produce(&mut client, 2, "legacy", Some(&batch(&[b"a8"]))), (NONE, 8, -1));
    assert_eq!(
        produce(&mut client, 2, "legacy", Some(&message_set(MAGIC_V1, Compression::Snappy, &["a9"], t))),
        (NONE, 9, -1)
    );

    // Every old fetch version, from the middle of the first lz4 batch: magic 0 for v0-1,
    // magic 1 for v2-3, absolute offsets, nothing before the fetch offset.
    for version in 0..=3 {
        let (error, high_watermark, set) =
            fetch(&mut client, version, "legacy", 0, &FetchArgs { offset: 6, ..FETCH_NOW });
        assert_eq!((error, high_watermark), (NONE, 10), "v{version}");
        let got = messages(&set);
        let offsets: Vec<i64> = got.iter().map(|m| m.offset).collect();
        assert_eq!(offsets, vec![6, 7, 8, 9], "v{version}");
        for m in &got {
            assert_eq!(m.magic, if version >= 2 { MAGIC_V1 } else { MAGIC_V0 });
            assert_eq!(m.attributes, 0, "uncompressed, CreateTime");
            assert_eq!(m.value.unwrap(), format!("a{}", m.offset).as_bytes());
        }
        if version >= 2 {
            assert_eq!(got[0].timestamp, t, "magic 1 keeps the producer's timestamp");
        }
    }
    // Magic 0 messages had no timestamp; up-converted, they are -1 (CreateTime).
    let (_, _, set) = fetch(&mut client, 2, "legacy", 0, &FETCH_NOW);
    let got = messages(&set);
    assert_eq!(got.len(), 10);
    assert!(got[..5].iter().all(|m| m.timestamp == -1 && m.timestamp_type() == TimestampType::CreateTime));
    assert_eq!(got[0].key, Some(&b"key"[..]));

    // A current client reads what the old ones wrote.
    let (error, high_watermark, records) = client.fetch("legacy", 0, 0, 0, 0);
    assert_eq!((error, high_watermark), (NONE, 10));
    let values: Vec<String> = records.iter().map(|r| String::from_utf8(r.value.clone()).unwrap()).collect();
    assert_eq!(values, (0..10).map(|i| format!("a{i}")).collect::<Vec<_>>());
    assert_eq!(records.iter().map(|r| r.offset).collect::<Vec<_>>(), (0..10).collect::<Vec<_>>());

    // ListOffsets v0: latest, earliest, none asked for, a time, an unknown partition.
    assert_eq!(list_offsets(&mut client, "legacy", -1, 1), (NONE, vec![10]));
    assert_eq!(list_offsets(&mut client, "legacy", -2, 1), (NONE, vec![0]));
    assert_eq!(list_offsets(&mut client, "legacy", -1, 0), (NONE, vec![]));
    assert_eq!(list_offsets(&mut client, "legacy", t, 1).1.len(), 1);
    assert_eq!(list_offsets(&mut client, "no-such-topic", -1, 1).0, UNKNOWN_TOPIC_OR_PARTITION);
    // Past the end: OFFSET_OUT_OF_RANGE, with the high watermark.
    let (error, high_watermark, set) =
        fetch(&mut client, 0, "legacy", 0, &FetchArgs { offset: 11, ..FETCH_NOW });
    assert_eq!((error, high_watermark, set.len()), (1, 10, 0));
    // At the end: empty.
    let (error, _, set) = fetch(&mut client, 0, "legacy", 0, &FetchArgs { offset: 10, ..FETCH_NOW });
    assert_eq!((error, set.len()), (NONE, 0));
}

#[test]
fn damaged_and_invalid_message_sets_get_kafka_error_codes() {
    let broker = Broker::start(2, &[]);
    let bootstrap = broker.ports[0];
    ensure_topic(bootstrap, "damaged");
    let (leader, other) = leader_and_other_port(&mut RawClient::connect(bootstrap), "damaged", 0);
    let mut client = RawClient::connect(leader);

    let good = message_set(MAGIC_V1, Compression::None, &["ok"], 1);
    let mut bad_crc = good.clone();
    *bad_crc.last_mut().unwrap() ^= 1;
    assert_eq!(produce(&mut client, 2, "damaged", Some(&bad_crc)).0, CORRUPT_MESSAGE);
    assert_eq!(produce(&mut client, 2, "damaged", Some(&good[..good.len() - 1])).0, CORRUPT_MESSAGE);
    assert_eq!(produce(&mut client, 0, "damaged", Some(&[])).0, CORRUPT_MESSAGE);
    assert_eq!(produce(&mut client, 0, "damaged", None).0, CORRUPT_MESSAGE);
    // A compressed message inside a compressed message: INVALID_RECORD, as Kafka.
    let inner = message_set(MAGIC_V1, Compression::Gzip, &["x"], 1);
    let compressed = shardlog_storage::codec::compress(Compression::Gzip, &inner).unwrap();
    let mut nested = Vec::new();
    put_message(&mut nested, MAGIC_V1, 0, 1, 1, None, Some(&compressed)).unwrap();
    assert_eq!(produce(&mut client, 2, "damaged", Some(&nested)).0, INVALID_RECORD);
    // Bad acks, an unknown topic, the partition on the wrong shard.
    let mut c = call(&mut client, &produce_frame(1, 2, "damaged", 0, Some(&good)));
    assert_eq!(
        (c.i32(), c.string(), c.i32(), c.i32(), c.i16()),
        (1, "damaged".into(), 1, 0, INVALID_REQUIRED_ACKS)
    );
    assert_eq!(produce(&mut client, 2, "no-such-topic", Some(&good)).0, UNKNOWN_TOPIC_OR_PARTITION);
    // (The other shard learns of the new topic a moment after its leader.)
    let mut elsewhere = RawClient::connect(other);
    assert!(wait_until(Duration::from_secs(10), || {
        produce(&mut elsewhere, 2, "damaged", Some(&good)).0 == NOT_LEADER_OR_FOLLOWER
    }));
    assert_eq!(fetch(&mut elsewhere, 2, "damaged", 0, &FETCH_NOW).0, NOT_LEADER_OR_FOLLOWER);

    // None of it reached the log; the good set does, on the same connection.
    assert_eq!(produce(&mut client, 2, "damaged", Some(&good)), (NONE, 0, -1));

    // acks=0: silent on success (the next answer is the ListOffsets one), a closed connection
    // on failure (as Kafka, and as current versions here).
    client.send_frame(&produce_frame(2, 0, "damaged", 0, Some(&good))).unwrap();
    assert_eq!(list_offsets(&mut client, "damaged", -1, 1), (NONE, vec![2]));
    client.send_frame(&produce_frame(2, 0, "damaged", 0, Some(&bad_crc))).unwrap();
    client.assert_closed();

    // Garbage behind valid legacy headers closes the connection; the broker keeps serving.
    for (api_key, version) in [(PRODUCE, 0), (PRODUCE, 2), (FETCH, 0), (FETCH, 3), (LIST_OFFSETS, 0)] {
        let mut frame = header(api_key, version, 99);
        frame.extend_from_slice(&[0, 0, 0, 0, 0x7f, 0xff, 0xff, 0xff, 1, 2]);
        let mut c = RawClient::connect(leader);
        c.send_frame(&frame).unwrap();
        c.assert_closed();
    }
    assert_eq!(list_offsets(&mut RawClient::connect(leader), "damaged", -1, 1), (NONE, vec![2]));
}

#[test]
fn log_append_time_topics_stamp_old_messages() {
    let broker = Broker::start(1, &["log.message.timestamp.type=LogAppendTime"]);
    let port = broker.ports[0];
    ensure_topic(port, "stamped");
    let mut client = RawClient::connect(port);
    let before = now_ms();
    let (error, base_offset, log_append_time) =
        produce(&mut client, 2, "stamped", Some(&message_set(MAGIC_V1, Compression::Gzip, &["s0", "s1"], 5)));
    assert_eq!((error, base_offset), (NONE, 0));
    assert!(log_append_time >= before && log_append_time <= now_ms(), "{log_append_time}");
    // Magic 0 messages get the broker's time too.
    assert_eq!(
        produce(&mut client, 0, "stamped", Some(&message_set(MAGIC_V0, Compression::None, &["s2"], 0))).0,
        NONE
    );
    let (_, _, set) = fetch(&mut client, 3, "stamped", 0, &FETCH_NOW);
    let got = messages(&set);
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|m| m.timestamp_type() == TimestampType::LogAppendTime && m.timestamp >= before));
    assert_eq!(got[0].timestamp, log_append_time);
}

#[test]
fn old_fetches_long_poll_and_keep_to_their_limits() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "polled");

    // A fetch at the end waits for the next append, not for max_wait_ms.
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        let mut client = RawClient::connect(port);
        produce(&mut client, 0, "polled", Some(&message_set(MAGIC_V0, Compression::None, &["late"], 0)))
    });
    let started = Instant::now();
    let mut client = RawClient::connect(port);
    let wait = FetchArgs { max_wait_ms: 10_000, min_bytes: 1, ..FETCH_NOW };
    let (error, _, set) = fetch(&mut client, 1, "polled", 0, &wait);
    assert_eq!(producer.join().unwrap().0, NONE);
    assert_eq!(error, NONE);
    assert_eq!(messages(&set)[0].value, Some(&b"late"[..]));
    assert!(started.elapsed() < Duration::from_secs(5), "waited {:?}", started.elapsed());
    // With nothing new, it answers empty after max_wait_ms.
    let started = Instant::now();
    let (error, _, set) = fetch(
        &mut client,
        2,
        "polled",
        0,
        &FetchArgs { offset: 1, max_wait_ms: 300, min_bytes: 1, ..FETCH_NOW },
    );
    assert_eq!((error, set.len()), (NONE, 0));
    assert!(started.elapsed() >= Duration::from_millis(250));

    // Ten 100-byte values in one gzip set: one batch in the log.
    let value = "v".repeat(100);
    let values: Vec<&str> = (0..10).map(|_| value.as_str()).collect();
    assert_eq!(
        produce(&mut client, 2, "polled", Some(&message_set(MAGIC_V1, Compression::Gzip, &values, 7))).0,
        NONE
    );
    // A magic-1 message: offset and size, its header, "key", the value.
    let one: i32 = 12 + 22 + 3 + 100;
    // Whole messages within partition_max_bytes...
    let limited = FetchArgs { offset: 1, partition_max_bytes: 3 * one + 10, ..FETCH_NOW };
    for version in [0, 2] {
        let (_, _, set) = fetch(&mut client, version, "polled", 0, &limited);
        assert_eq!(messages(&set).len(), 3, "v{version}");
    }
    // ...within v3's max_bytes...
    let (_, _, set) = fetch(&mut client, 3, "polled", 0, &FetchArgs { max_bytes: 2 * one, ..limited });
    assert_eq!(messages(&set).len(), 2);
    // ...but always at least one, so a consumer with a small fetch size does not stall.
    for version in 0..=3 {
        let tiny = FetchArgs { offset: 1, partition_max_bytes: 10, max_bytes: 10, ..FETCH_NOW };
        let (_, _, set) = fetch(&mut client, version, "polled", 0, &tiny);
        let got = messages(&set);
        assert_eq!((got.len(), got[0].offset), (1, 1), "v{version}");
    }
}

/// Fetch v0-2 clients (sarama before 0.10.1) get at least one message for every partition,
/// even when it is larger than their `partition_max_bytes` and not the first in the request:
/// Kafka sends them a partial message to grow their fetch size; we send it whole.
#[test]
fn old_fetches_give_every_partition_at_least_one_message() {
    let broker = Broker::start(1, &["num.partitions=2"]);
    let port = broker.ports[0];
    ensure_topic(port, "wide");
    let mut client = RawClient::connect(port);
    let big = "b".repeat(500);
    for partition in 0..2 {
        let records = message_set(MAGIC_V0, Compression::None, &[&big, &big], 0);
        let mut c = call(&mut client, &produce_frame(0, 1, "wide", partition, Some(&records)));
        assert_eq!((c.i32(), c.string(), c.i32(), c.i32(), c.i16()), (1, "wide".into(), 1, partition, NONE));
    }
    for version in 0..=3i16 {
        let mut frame = header(FETCH, version, 21);
        frame.extend_from_slice(&(-1i32).to_be_bytes());
        frame.extend_from_slice(&0i32.to_be_bytes()); // max wait
        frame.extend_from_slice(&0i32.to_be_bytes()); // min bytes
        if version >= 3 {
            frame.extend_from_slice(&(1i32 << 20).to_be_bytes());
        }
        frame.extend_from_slice(&1i32.to_be_bytes());
        put_string(&mut frame, "wide");
        frame.extend_from_slice(&2i32.to_be_bytes());
        for partition in 0..2i32 {
            frame.extend_from_slice(&partition.to_be_bytes());
            frame.extend_from_slice(&0i64.to_be_bytes());
            frame.extend_from_slice(&100i32.to_be_bytes()); // smaller than one message
        }
        let mut c = call(&mut client, &frame);
        if version >= 1 {
            c.i32();
        }
        assert_eq!((c.i32(), c.string(), c.i32()), (1, "wide".into(), 2));
        let mut counts = Vec::new();
        for partition in 0..2 {
            assert_eq!((c.i32(), c.i16(), c.i64()), (partition, NONE, 2));
            let len = c.i32() as usize;
            counts.push(messages(c.take(len)).len());
        }
        c.done();
        // v3 follows KIP-74: at least one message in the response, not per partition.
        let want = if version <= 2 { vec![1, 1] } else { vec![1, 0] };
        assert_eq!(counts, want, "v{version}");
    }
}
