//! Limits and errors on the wire (DESIGN.md invariant 7, issue 3 item 6), the Fetch long
//! poll, and the idempotent producer's sequence rules — each driven by raw requests against
//! the real binary, so the test controls every byte a real client would not send.
mod common;

use std::time::{Duration, Instant};

use common::raw::{
    batch, ensure_topic, fetch_request, idempotent_batch, leader_and_other_port, produce_request, RawClient,
    FETCH_V,
};
use common::Broker;
use shardlog_net::kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, FetchRequest, FetchResponse,
};
use shardlog_net::kafka_protocol::protocol::{Decodable, StrBytes};

const NONE: i16 = 0;
const OFFSET_OUT_OF_RANGE: i16 = 1;
const CORRUPT_MESSAGE: i16 = 2;
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
const MESSAGE_TOO_LARGE: i16 = 10;
const INVALID_TOPIC_EXCEPTION: i16 = 17;
const INVALID_REQUIRED_ACKS: i16 = 21;
const UNSUPPORTED_VERSION: i16 = 35;
const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
const INVALID_RECORD: i16 = 87;
const INVALID_PRODUCER_EPOCH: i16 = 47;

/// A request every test uses to show the broker still serves a shard: Metadata answered.
fn assert_serving(port: u16) {
    let md = RawClient::connect(port).metadata(None, false);
    assert!(!md.brokers.is_empty(), "the broker stopped answering Metadata on port {port}");
}

/// Deterministic pseudo-random bytes (xorshift64*), so a failure replays exactly.
fn pseudo_random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            (state.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
        })
        .collect()
}

/// The fixed request-header prefix: api key, version, correlation id.
fn header_prefix(api_key: i16, version: i16, correlation_id: i32) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&api_key.to_be_bytes());
    out.extend_from_slice(&version.to_be_bytes());
    out.extend_from_slice(&correlation_id.to_be_bytes());
    out
}

#[test]
fn frame_over_socket_request_max_bytes_is_closed_without_response() {
    let broker = Broker::start(1, &["socket.request.max.bytes=4096"]);
    let port = broker.ports[0];

    // Announced and sent in full: closed before the body is read.
    let mut client = RawClient::connect(port);
    let _ = client.send_frame(&vec![0u8; 5000]);
    client.assert_closed();

    // An absurd announced size and nothing behind it: closed from the 4 prefix bytes alone.
    let mut client = RawClient::connect(port);
    client.send_bytes(&i32::MAX.to_be_bytes()).unwrap();
    client.assert_closed();

    // A request under the limit is served as usual.
    ensure_topic(port, "limit");
    let mut client = RawClient::connect(port);
    assert_eq!(client.produce("limit", 0, 1, batch(&[b"x"])), (NONE, 0));

    assert_serving(port);
}

#[test]
fn negative_frame_size_is_closed() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    for size in [-1i32, i32::MIN] {
        let mut client = RawClient::connect(port);
        client.send_bytes(&size.to_be_bytes()).unwrap();
        client.assert_closed();
    }
    assert_serving(port);
}

#[test]
fn batch_over_max_message_bytes_is_message_too_large_and_not_appended() {
    let broker = Broker::start(1, &["message.max.bytes=1000"]);
    let port = broker.ports[0];
    ensure_topic(port, "big");
    let mut client = RawClient::connect(port);
    let value = vec![b'v'; 2000];
    let (error, _) = client.produce("big", 0, 1, batch(&[&value]));
    assert_eq!(error, MESSAGE_TOO_LARGE);
    assert_eq!(client.list_offset("big", 0, -1), (NONE, 0), "nothing may be appended");
    let (error, high_watermark, records) = client.fetch("big", 0, 0, 0, 0);
    assert_eq!((error, high_watermark, records.len()), (NONE, 0, 0));
    // The connection stays usable and a batch under the limit goes in at offset 0.
    assert_eq!(client.produce("big", 0, 1, batch(&[b"small"])), (NONE, 0));
}

/// Rewrites a batch's `recordCount` and `lastOffsetDelta` to `count` and fixes its CRC, so
/// only walking the records shows the lie.
fn with_record_count(mut batch: Vec<u8>, count: i32) -> Vec<u8> {
    batch[23..27].copy_from_slice(&(count - 1).to_be_bytes());
    batch[57..61].copy_from_slice(&count.to_be_bytes());
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
    batch
}

#[test]
fn corrupt_batches_are_corrupt_message_and_not_appended() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "crc");
    let mut client = RawClient::connect(port);

    // A flipped byte in the last record's value: the CRC-32C no longer matches.
    let mut bad_crc = batch(&[b"one", b"two"]);
    *bad_crc.last_mut().unwrap() ^= 0x55;
    assert_eq!(client.produce("crc", 0, 1, bad_crc).0, CORRUPT_MESSAGE);

    // A batch whose length field promises more bytes than the request carries.
    let mut torn = batch(&[b"one", b"two"]);
    torn.truncate(torn.len() - 3);
    assert_eq!(client.produce("crc", 0, 1, torn).0, CORRUPT_MESSAGE);

    // A valid batch followed by the first bytes of another: the set is refused whole.
    let mut trailing = batch(&[b"good"]);
    trailing.extend_from_slice(&batch(&[b"cut short"])[..30]);
    assert_eq!(client.produce("crc", 0, 1, trailing).0, CORRUPT_MESSAGE);

    // Header and CRC consistent, records not: the count promises more (or fewer) records
    // than the batch holds. Stored, it would give consumers offsets without records.
    let one = batch(&[b"only one"]);
    let three = batch(&[b"one", b"two", b"three"]);
    for (bytes, claimed) in [(one, 3), (three, 1)] {
        let lying = with_record_count(bytes, claimed);
        let (error, _) = client.produce("crc", 0, 1, lying);
        assert!(error == CORRUPT_MESSAGE || error == INVALID_RECORD, "count {claimed}: error {error}");
    }

    assert_eq!(client.list_offset("crc", 0, -1), (NONE, 0), "nothing may be appended");
    assert_eq!(client.produce("crc", 0, 1, batch(&[b"fine"])), (NONE, 0));
    let (_, _, records) = client.fetch("crc", 0, 0, 0, 0);
    assert_eq!(records.iter().map(|r| r.value.as_slice()).collect::<Vec<_>>(), [b"fine"]);
}

#[test]
fn unknown_topic_without_auto_create_is_unknown_topic_or_partition() {
    let broker = Broker::start(1, &["auto.create.topics.enable=false"]);
    let port = broker.ports[0];
    let mut client = RawClient::connect(port);
    assert_eq!(client.produce("nowhere", 0, 1, batch(&[b"x"])).0, UNKNOWN_TOPIC_OR_PARTITION);
    // Metadata does not create it either, even when the request allows auto-creation.
    for _ in 0..2 {
        let md = client.metadata(Some(&["nowhere"]), true);
        assert_eq!(md.topics.len(), 1);
        assert_eq!(md.topics[0].error_code, UNKNOWN_TOPIC_OR_PARTITION);
    }
    assert_eq!(client.list_offset("nowhere", 0, -1).0, UNKNOWN_TOPIC_OR_PARTITION);
    assert_eq!(client.fetch("nowhere", 0, 0, 0, 0).0, UNKNOWN_TOPIC_OR_PARTITION);
}

#[test]
fn invalid_topic_names_in_metadata_are_invalid_topic_exception() {
    let broker = Broker::start(1, &[]);
    let mut client = RawClient::connect(broker.ports[0]);
    let too_long = "x".repeat(250);
    let names = ["bad/name", "..", ".", "spaces are bad", too_long.as_str()];
    for allow_auto_create in [true, false] {
        let md = client.metadata(Some(&names), allow_auto_create);
        assert_eq!(md.topics.len(), names.len());
        for (topic, name) in md.topics.iter().zip(names) {
            assert_eq!(
                topic.error_code, INVALID_TOPIC_EXCEPTION,
                "{name:?} (auto-create {allow_auto_create})"
            );
        }
    }
    // None of them was created.
    let all = client.metadata(None, false);
    assert!(all.topics.is_empty(), "{:?}", all.topics);
}

#[test]
fn partition_sent_to_the_wrong_shard_is_not_leader_or_follower() {
    let broker = Broker::start(2, &["num.partitions=4"]);
    let leaders = ensure_topic(broker.ports[0], "routed");
    for partition in 0..4 {
        let (leader, other) =
            leader_and_other_port(&mut RawClient::connect(broker.ports[0]), "routed", partition);
        assert_eq!(leaders[partition as usize], leader);
        let mut wrong = RawClient::connect(other);
        assert_eq!(wrong.produce("routed", partition, 1, batch(&[b"x"])).0, NOT_LEADER_OR_FOLLOWER);
        assert_eq!(wrong.fetch("routed", partition, 0, 0, 0).0, NOT_LEADER_OR_FOLLOWER);
        assert_eq!(wrong.list_offset("routed", partition, -1).0, NOT_LEADER_OR_FOLLOWER);
        // The owner serves it, and the misrouted produce left nothing behind.
        let mut right = RawClient::connect(leader);
        assert_eq!(right.list_offset("routed", partition, -1), (NONE, 0));
        assert_eq!(right.produce("routed", partition, 1, batch(&[b"x"])), (NONE, 0));
    }
    // Both shards keep placing partitions: the topic is spread over both.
    assert!(leaders.iter().any(|&p| p == broker.ports[0]) && leaders.iter().any(|&p| p == broker.ports[1]));
}

#[test]
fn api_versions_at_an_unknown_version_gets_the_v0_fallback_and_the_connection_stays_usable() {
    let broker = Broker::start(1, &[]);
    let mut client = RawClient::connect(broker.ports[0]);
    // ApiVersions v99 from a "future" client: header v2 (client id + tagged fields), then a
    // v3-shaped body the broker cannot know the layout of.
    let mut frame = header_prefix(ApiKey::ApiVersions as i16, 99, 77);
    frame.extend_from_slice(&[0, 6]);
    frame.extend_from_slice(b"future");
    frame.push(0); // header tagged fields
    frame.extend_from_slice(&[5, b'r', b'u', b's', b't', 4, b'9', b'.', b'9', 0]);
    client.send_frame(&frame).unwrap();
    let mut response = client.read_frame().unwrap().expect("a fallback response, not a close");
    let correlation_id = bytes::Buf::get_i32(&mut response);
    assert_eq!(correlation_id, 77);
    let fallback = ApiVersionsResponse::decode(&mut response, 0).unwrap();
    assert_eq!(fallback.error_code, UNSUPPORTED_VERSION);
    let api_versions = fallback
        .api_keys
        .iter()
        .find(|k| k.api_key == ApiKey::ApiVersions as i16)
        .expect("the fallback lists ApiVersions so the client can retry");
    assert!(api_versions.max_version >= 3);

    // The client retries at a version the broker speaks, on the same connection.
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("rust"))
        .with_client_software_version(StrBytes::from_static_str("1.0"));
    let answer = client.call(3, &req);
    assert_eq!(answer.error_code, NONE);
    assert!(answer.api_keys.iter().any(|k| k.api_key == ApiKey::Produce as i16));
    assert!(!client.metadata(None, false).brokers.is_empty());
}

#[test]
fn unsupported_version_of_another_api_closes_the_connection() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    // One past what the broker advertises (the range it serves is its own business).
    let req = ApiVersionsRequest::default()
        .with_client_software_name(StrBytes::from_static_str("rust"))
        .with_client_software_version(StrBytes::from_static_str("1.0"));
    let advertised: ApiVersionsResponse = RawClient::connect(port).call(3, &req);
    let max_of = |key: ApiKey| {
        advertised.api_keys.iter().find(|k| k.api_key == key as i16).expect("advertised").max_version
    };
    let mut frames = Vec::new();
    for key in [ApiKey::Produce, ApiKey::Fetch, ApiKey::ListOffsets, ApiKey::Metadata] {
        for version in [max_of(key) + 1, 99] {
            // A flexible header (client id, no tagged fields), then a few body bytes.
            let mut frame = header_prefix(key as i16, version, 5);
            frame.extend_from_slice(&[0, 3, b'n', b'e', b'w', 0]);
            frame.extend_from_slice(&[0, 0, 0, 0, 1, 0]);
            frames.push((key, version, frame));
        }
    }
    for (key, version, frame) in frames {
        let mut client = RawClient::connect(port);
        client.send_frame(&frame).unwrap();
        assert!(client.closed_within(Duration::from_secs(5)), "{key:?} v{version} was not closed");
    }
    assert_serving(port);
}

#[test]
fn acks_2_is_invalid_required_acks() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "acks");
    let mut client = RawClient::connect(port);
    for acks in [2i16, -2, 5] {
        assert_eq!(client.produce("acks", 0, acks, batch(&[b"x"])).0, INVALID_REQUIRED_ACKS, "acks={acks}");
    }
    assert_eq!(client.list_offset("acks", 0, -1), (NONE, 0));
}

#[test]
fn acks_0_is_silent_on_success_and_closes_on_failure() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "fire-and-forget");
    let mut client = RawClient::connect(port);
    let (payload, _) = client.encode(9, &produce_request("fire-and-forget", 0, 0, batch(&[b"quiet"])));
    client.send_frame(&payload).unwrap();
    // No response to acks=0: the next answer on the connection is the ListOffsets one.
    assert_eq!(client.list_offset("fire-and-forget", 0, -1), (NONE, 1));
    // A failed acks=0 produce cannot be answered, so the connection is closed (as Kafka does).
    let mut bad = batch(&[b"bad"]);
    *bad.last_mut().unwrap() ^= 1;
    let (payload, _) = client.encode(9, &produce_request("fire-and-forget", 0, 0, bad));
    client.send_frame(&payload).unwrap();
    client.assert_closed();
    assert_eq!(RawClient::connect(port).list_offset("fire-and-forget", 0, -1), (NONE, 1));
}

#[test]
fn fetch_outside_the_log_is_offset_out_of_range() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "range");
    let mut client = RawClient::connect(port);
    assert_eq!(client.produce("range", 0, 1, batch(&[b"a", b"b"])), (NONE, 0));
    for offset in [3, 1_000, i64::MAX, -1, i64::MIN] {
        let (error, high_watermark, records) = client.fetch("range", 0, offset, 0, 0);
        assert_eq!((error, high_watermark, records.len()), (OFFSET_OUT_OF_RANGE, 2, 0), "offset {offset}");
    }
    // At the end: empty and fine.
    let (error, _, records) = client.fetch("range", 0, 2, 0, 0);
    assert_eq!((error, records.len()), (NONE, 0));
    // Fetching out of range does not wait out max_wait_ms either.
    let started = Instant::now();
    assert_eq!(client.fetch("range", 0, 50, 5_000, 1).0, OFFSET_OUT_OF_RANGE);
    assert!(started.elapsed() < Duration::from_millis(4_000));
}

#[test]
fn garbage_frames_close_the_connection_and_the_broker_keeps_serving() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    let mut frames: Vec<Vec<u8>> = Vec::new();
    // Too short for a header.
    frames.push(vec![0, 3, 0]);
    // An API key nobody has.
    frames.push([header_prefix(0x7f00, 1, 1), pseudo_random_bytes(1, 40)].concat());
    // Valid fixed headers of served APIs followed by random bytes.
    for (seed, (api_key, version)) in
        [(0i16, 9i16), (0, 0), (0, 2), (1, 12), (1, 0), (1, 3), (3, 12), (3, 0), (2, 7), (22, 4)]
            .into_iter()
            .enumerate()
    {
        for len in [1usize, 17, 200] {
            let body = pseudo_random_bytes(seed as u64 * 1000 + len as u64, len);
            frames.push([header_prefix(api_key, version, 1), body].concat());
        }
    }
    // A Metadata v0 request claiming 2^31 - 1 topics in a few bytes.
    frames.push([header_prefix(3, 0, 1), vec![0, 0], i32::MAX.to_be_bytes().to_vec()].concat());
    for frame in &frames {
        let mut client = RawClient::connect(port);
        client.send_frame(frame).unwrap();
        assert!(client.closed_within(Duration::from_secs(5)), "not closed after {frame:?}");
        assert_serving(port);
    }
}

#[test]
fn long_poll_fetch_returns_with_data_produced_by_another_connection() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "poll");
    const MAX_WAIT_MS: i32 = 5_000;
    let fetcher = std::thread::spawn(move || {
        let mut client = RawClient::connect(port);
        let started = Instant::now();
        let result = client.fetch("poll", 0, 0, MAX_WAIT_MS, 1);
        (result, started.elapsed())
    });
    // Give the fetch time to reach the broker and park; if it has not, it simply finds the
    // data at once — either way it must come back with it.
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(RawClient::connect(port).produce("poll", 0, 1, batch(&[b"wake up"])), (NONE, 0));
    let ((error, high_watermark, records), elapsed) = fetcher.join().unwrap();
    assert_eq!((error, high_watermark), (NONE, 1));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value, b"wake up");
    // Woken by the append, not by the end of the wait (which also reads the data).
    assert!(elapsed < Duration::from_millis(MAX_WAIT_MS as u64 - 500), "woke only after {elapsed:?}");
}

#[test]
fn long_poll_fetch_returns_empty_after_max_wait() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "quiet");
    let mut client = RawClient::connect(port);
    let started = Instant::now();
    let (error, high_watermark, records) = client.fetch("quiet", 0, 0, 600, 1);
    let elapsed = started.elapsed();
    assert_eq!((error, high_watermark, records.len()), (NONE, 0, 0));
    assert!(elapsed >= Duration::from_millis(550), "returned after {elapsed:?}, before max_wait_ms");
    // min_bytes=0 never waits, whatever max_wait_ms says.
    let started = Instant::now();
    let correlation_id = client.send(FETCH_V, &fetch_request("quiet", 0, 0, 5_000, 0));
    let resp: FetchResponse = client.receive::<FetchRequest>(FETCH_V, correlation_id);
    assert_eq!(resp.responses[0].partitions[0].error_code, NONE);
    assert!(started.elapsed() < Duration::from_millis(4_000));
}

#[test]
fn idempotent_retry_gets_the_original_offset_and_is_appended_once() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "idem");
    let mut client = RawClient::connect(port);
    let init = client.init_producer_id();
    assert_eq!(init.error_code, NONE);
    assert!(init.producer_id.0 >= 0);
    assert_eq!(init.producer_epoch, 0);
    let pid = init.producer_id.0;

    let first = idempotent_batch(pid, 0, 0, &[b"a", b"b", b"c"]);
    assert_eq!(client.produce("idem", 0, -1, first.clone()), (NONE, 0));
    assert_eq!(client.produce("idem", 0, -1, first.clone()), (NONE, 0), "a retry gets the first offset");
    let second = idempotent_batch(pid, 0, 3, &[b"d", b"e"]);
    assert_eq!(client.produce("idem", 0, -1, second.clone()), (NONE, 3));
    // An older batch (still among the last five) retried late: same answer, no append.
    assert_eq!(client.produce("idem", 0, -1, first), (NONE, 0));
    assert_eq!(client.produce("idem", 0, -1, second), (NONE, 3));
    assert_eq!(client.list_offset("idem", 0, -1), (NONE, 5));
    let (_, _, records) = client.fetch("idem", 0, 0, 0, 0);
    let values: Vec<&[u8]> = records.iter().map(|r| r.value.as_slice()).collect();
    assert_eq!(values, [b"a", b"b", b"c", b"d", b"e"]);

    // Another producer id is independent.
    let other = client.init_producer_id().producer_id.0;
    assert_ne!(other, pid);
    assert_eq!(client.produce("idem", 0, -1, idempotent_batch(other, 0, 0, &[b"f"])), (NONE, 5));
}

#[test]
fn idempotent_sequence_gap_is_out_of_order_sequence_number() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "gap");
    let mut client = RawClient::connect(port);
    let pid = client.init_producer_id().producer_id.0;
    assert_eq!(client.produce("gap", 0, -1, idempotent_batch(pid, 0, 0, &[b"a", b"b"])), (NONE, 0));
    // Sequence 2 is next; 5 leaves a gap.
    let (error, _) = client.produce("gap", 0, -1, idempotent_batch(pid, 0, 5, &[b"x"]));
    assert_eq!(error, OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_eq!(client.list_offset("gap", 0, -1), (NONE, 2));
    // The gap did not poison the state: the right sequence still goes in.
    assert_eq!(client.produce("gap", 0, -1, idempotent_batch(pid, 0, 2, &[b"c"])), (NONE, 2));
}

#[test]
fn idempotent_stale_epoch_is_invalid_producer_epoch() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "epoch");
    let mut client = RawClient::connect(port);
    let pid = client.init_producer_id().producer_id.0;
    assert_eq!(client.produce("epoch", 0, -1, idempotent_batch(pid, 0, 0, &[b"a"])), (NONE, 0));
    // A bumped epoch restarts its sequence at 0.
    assert_eq!(client.produce("epoch", 0, -1, idempotent_batch(pid, 1, 0, &[b"b"])), (NONE, 1));
    // The old epoch is fenced, whatever its sequence.
    for seq in [1, 0] {
        let (error, _) = client.produce("epoch", 0, -1, idempotent_batch(pid, 0, seq, &[b"zombie"]));
        assert_eq!(error, INVALID_PRODUCER_EPOCH, "seq {seq}");
    }
    assert_eq!(client.list_offset("epoch", 0, -1), (NONE, 2));
}
