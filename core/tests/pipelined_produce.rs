//! Produce requests a client pipelines on one connection (librdkafka keeps up to
//! `max.in.flight` unanswered, Kafka's Java client 5): the broker must behave as Kafka's one
//! request at a time — answers and offsets in request order, a request of another kind seeing
//! every produce sent before it, idempotent sequences checked in order, and nothing it wrote
//! left unreadable when the client goes away. Large record sets go through the write ring, so
//! their writes complete later than those of small sets sent behind them. The contract for any
//! change to `shard::connection` (handling a connection's requests concurrently was measured
//! and not landed: `perf-reports/2026-12-05-pipelined-produce/NOTE.md`).
mod common;

use std::time::Duration;

use common::raw::{
    batch, ensure_topic, fetch_request, idempotent_batch, produce_request, RawClient, PRODUCE_V,
};
use common::Broker;
use shardlog_net::kafka_protocol::messages::{FetchRequest, FetchResponse, ProduceRequest, ProduceResponse};

const NONE: i16 = 0;
const FETCH_V: i16 = common::raw::FETCH_V;

/// Record sets of alternating sizes: the large ones (over the 16 KiB the shard writes itself)
/// go through the write ring and complete later than the small ones submitted behind them.
fn record_set(request: usize) -> (Vec<u8>, Vec<Vec<u8>>) {
    let len = if request.is_multiple_of(2) { 200 * 1024 } else { 10 };
    let values: Vec<Vec<u8>> = (0..2).map(|r| vec![b'a' + (request * 2 + r) as u8 % 26; len]).collect();
    let refs: Vec<&[u8]> = values.iter().map(Vec::as_slice).collect();
    (batch(&refs), values)
}

fn answer(client: &mut RawClient, correlation_id: i32) -> (i16, i64) {
    let resp: ProduceResponse = client.receive::<ProduceRequest>(PRODUCE_V, correlation_id);
    let p = &resp.responses[0].partition_responses[0];
    (p.error_code, p.base_offset)
}

#[test]
fn pipelined_produces_are_answered_in_order_and_a_fetch_behind_them_sees_them() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "pipe");
    let mut client = RawClient::connect(port);
    // More requests than the broker submits at once, all sent before any answer is read.
    const REQUESTS: usize = 12;
    let mut ids = Vec::new();
    let mut expected = Vec::new();
    for request in 0..REQUESTS {
        let (records, values) = record_set(request);
        ids.push(client.send(PRODUCE_V, &produce_request("pipe", 0, 1, records)));
        expected.extend(values);
    }
    let fetch_id = client.send(FETCH_V, &fetch_request("pipe", 0, 0, 0, 0));
    for (request, id) in ids.into_iter().enumerate() {
        assert_eq!(answer(&mut client, id), (NONE, request as i64 * 2), "request {request}");
    }
    let resp: FetchResponse = client.receive::<FetchRequest>(FETCH_V, fetch_id);
    let p = &resp.responses[0].partitions[0];
    assert_eq!((p.error_code, p.high_watermark), (NONE, REQUESTS as i64 * 2));
    let records = p.records.as_deref().map(common::raw::decode_records).unwrap_or_default();
    let values: Vec<Vec<u8>> = records.iter().map(|r| r.value.clone()).collect();
    assert_eq!(values.len(), expected.len(), "the fetch behind the produces saw only some of them");
    assert!(values == expected, "records out of order");
    let offsets: Vec<i64> = records.iter().map(|r| r.offset).collect();
    assert_eq!(offsets, (0..REQUESTS as i64 * 2).collect::<Vec<_>>());
}

#[test]
fn idempotent_sequences_pipelined_on_one_connection_are_checked_in_order() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "pipe-idem");
    let mut client = RawClient::connect(port);
    let pid = client.init_producer_id().producer_id.0;
    let big = vec![b'x'; 100 * 1024];
    // Each batch's sequence follows the one before, which may still be being written.
    let mut ids = Vec::new();
    for sequence in 0..5 {
        let value: &[u8] = if sequence % 2 == 0 { &big } else { b"small" };
        ids.push(client.send(
            PRODUCE_V,
            &produce_request("pipe-idem", 0, -1, idempotent_batch(pid, 0, sequence, &[value])),
        ));
    }
    // A retry of sequence 3 and then sequence 5, still behind them.
    ids.push(
        client
            .send(PRODUCE_V, &produce_request("pipe-idem", 0, -1, idempotent_batch(pid, 0, 3, &[b"small"]))),
    );
    ids.push(
        client.send(PRODUCE_V, &produce_request("pipe-idem", 0, -1, idempotent_batch(pid, 0, 5, &[&big]))),
    );
    // And a gap: sequence 9.
    ids.push(
        client.send(PRODUCE_V, &produce_request("pipe-idem", 0, -1, idempotent_batch(pid, 0, 9, &[b"gap"]))),
    );
    let answers: Vec<(i16, i64)> = ids.into_iter().map(|id| answer(&mut client, id)).collect();
    const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
    assert_eq!(answers[..7], [(NONE, 0), (NONE, 1), (NONE, 2), (NONE, 3), (NONE, 4), (NONE, 3), (NONE, 5)]);
    assert_eq!(answers[7].0, OUT_OF_ORDER_SEQUENCE_NUMBER);
    assert_eq!(client.list_offset("pipe-idem", 0, -1), (NONE, 6));
}

/// SO_LINGER 0: closing sends a reset, as a client that crashes does, instead of a FIN.
fn reset_on_close(stream: &std::net::TcpStream) {
    use std::os::fd::AsRawFd;
    let linger = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: a valid socket and a `linger` of the size passed.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(rc, 0, "SO_LINGER: {}", std::io::Error::last_os_error());
}

#[test]
fn produces_of_a_client_that_vanishes_are_readable_when_written() {
    let broker = Broker::start(1, &[]);
    let port = broker.ports[0];
    ensure_topic(port, "pipe-gone");
    let mut probe = RawClient::connect(port);
    // The client sends several large produces and resets the connection without reading an
    // answer; the broker may be anywhere in them. Whatever it appended must become readable:
    // the next append's offset is the high watermark from before it.
    for round in 0..10 {
        let mut client = RawClient::connect(port);
        for request in 0..6 {
            let (records, _) = record_set(request * 2);
            client.send(PRODUCE_V, &produce_request("pipe-gone", 0, 1, records));
        }
        reset_on_close(&client.stream);
        drop(client);
        // Settled: two looks a while apart agree.
        let mut high_watermark = -1;
        assert!(common::raw::wait_until(Duration::from_secs(10), || {
            let (_, now, _) = probe.fetch("pipe-gone", 0, 0, 0, 0);
            let settled = now == high_watermark;
            high_watermark = now;
            std::thread::sleep(Duration::from_millis(100));
            settled
        }));
        assert_eq!(
            probe.produce("pipe-gone", 0, 1, batch(&[b"probe"])),
            (NONE, high_watermark),
            "round {round}: records written before the client vanished are not readable"
        );
    }
}
