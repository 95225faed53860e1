//! The wire-protocol hot paths around the record bytes: decoding a Produce request (header,
//! shape guard, `kafka-protocol` body decode — the records stay a slice of the frame) and
//! framing a Fetch response around file regions (the bytes written before `sendfile`).
//!
//! Run: `cargo bench -p shardlog-net --bench codec`. Wall time on these shared machines is
//! noisy: compare the two sides of a change in one session, not across sessions, or count
//! instructions under callgrind with `perf-reports/callgrind.sh` (cases
//! `produce_decode_16_partitions`, `fetch_framing_16_partitions`).

use bytes::{Bytes, BytesMut};
use criterion::{black_box, criterion_group, Criterion, Throughput};
use shardlog_net::fetch::{FetchPartition, FetchResponseParts, FetchTopic, FileRegion};
use shardlog_net::kafka_protocol::indexmap::IndexMap;
use shardlog_net::kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use shardlog_net::kafka_protocol::messages::{ApiKey, ProduceRequest, RequestHeader, TopicName};
use shardlog_net::kafka_protocol::protocol::{encode_request_header_into_buffer, Encodable, StrBytes};
use shardlog_net::kafka_protocol::records::{
    Compression, Record, RecordBatchEncoder, RecordEncodeOptions, TimestampType,
};
use shardlog_net::{encode_fetch_response, parse_request};

/// What librdkafka sends for the standard workload: 16 partitions, one batch each.
const PARTITIONS: i32 = 16;
const RECORDS_PER_BATCH: usize = 64;
const VALUE_BYTES: usize = 1024;
/// Produce v9 is the first flexible version, as librdkafka 2.x uses.
const PRODUCE_VERSION: i16 = 9;
/// Fetch v12: flexible, topics by name (librdkafka 2.x).
const FETCH_VERSION: i16 = 12;

fn batch() -> Bytes {
    let value = Bytes::from((0..VALUE_BYTES).map(|i| (i * 31 % 251) as u8).collect::<Vec<u8>>());
    let records: Vec<Record> = (0..RECORDS_PER_BATCH)
        .map(|i| Record {
            transactional: false,
            control: false,
            delete_horizon: false,
            partition_leader_epoch: -1,
            producer_id: -1,
            producer_epoch: -1,
            timestamp_type: TimestampType::Creation,
            offset: i as i64,
            sequence: -1,
            timestamp: 1_700_000_000_000 + i as i64,
            key: None,
            value: Some(value.clone()),
            headers: IndexMap::new(),
        })
        .collect();
    let mut buf = BytesMut::new();
    let options = RecordEncodeOptions { version: 2, compression: Compression::None };
    RecordBatchEncoder::encode(&mut buf, &records, &options).expect("encode batch");
    buf.freeze()
}

fn produce_frame() -> Bytes {
    let batch = batch();
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_static_str("bench-topic")))
        .with_partition_data(
            (0..PARTITIONS)
                .map(|p| PartitionProduceData::default().with_index(p).with_records(Some(batch.clone())))
                .collect(),
        );
    let request = ProduceRequest::default().with_acks(1).with_timeout_ms(30_000).with_topic_data(vec![topic]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::Produce as i16)
        .with_request_api_version(PRODUCE_VERSION)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("bench")));
    let mut buf = BytesMut::new();
    encode_request_header_into_buffer(&mut buf, &header).expect("header");
    request.encode(&mut buf, PRODUCE_VERSION).expect("body");
    buf.freeze()
}

fn produce_decode(c: &mut Criterion) {
    let frame = produce_frame();
    let mut group = c.benchmark_group("produce_request");
    // Per partition, not per byte: the records stay slices of the frame, so bytes/s would only
    // measure the frame size.
    group.throughput(Throughput::Elements(PARTITIONS as u64));
    group.bench_function("decode_16_partitions_64KiB_each", |b| {
        // Bytes::clone is a reference count, as the connection loop hands the frame over.
        b.iter(|| parse_request(black_box(frame.clone())).expect("valid"))
    });
    group.finish();
}

fn fetch_parts() -> FetchResponseParts {
    FetchResponseParts {
        throttle_time_ms: 0,
        error_code: 0,
        session_id: 0,
        topics: vec![FetchTopic {
            name: StrBytes::from_static_str("bench-topic"),
            topic_id: [7; 16],
            partitions: (0..PARTITIONS)
                .map(|p| FetchPartition {
                    partition_index: p,
                    error_code: 0,
                    high_watermark: 1_000_000,
                    last_stable_offset: 1_000_000,
                    log_start_offset: 0,
                    preferred_read_replica: -1,
                    // Never read: framing only describes the regions.
                    records: vec![FileRegion { fd: 0, position: p as u64 * 1_048_576, len_bytes: 1_048_576 }],
                })
                .collect(),
        }],
    }
}

fn fetch_framing(c: &mut Criterion) {
    let parts = fetch_parts();
    let mut group = c.benchmark_group("fetch_response");
    group.throughput(Throughput::Elements(PARTITIONS as u64));
    group.bench_function("frame_16_partitions", |b| {
        b.iter(|| encode_fetch_response(FETCH_VERSION, 9, black_box(&parts)).expect("frame").len())
    });
    group.finish();
}

criterion_group!(benches, produce_decode, fetch_framing);

#[path = "../../bench/callgrind/case.rs"]
mod callgrind;

fn main() {
    if let Some(r) = callgrind::requested() {
        match r.case.as_str() {
            "produce_decode_16_partitions" => {
                let frame = produce_frame();
                callgrind::callgrind_measured(r.iterations, &mut || {
                    black_box(parse_request(black_box(frame.clone())).expect("valid"));
                })
            }
            "fetch_framing_16_partitions" => {
                let parts = fetch_parts();
                callgrind::callgrind_measured(r.iterations, &mut || {
                    black_box(
                        encode_fetch_response(FETCH_VERSION, 9, black_box(&parts)).expect("frame").len(),
                    );
                })
            }
            other => {
                callgrind::unknown(other, &["produce_decode_16_partitions", "fetch_framing_16_partitions"])
            }
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
