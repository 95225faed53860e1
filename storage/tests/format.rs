//! Format tests against bytes no code of ours produced: record batches encoded by the
//! `kafka-protocol` crate (an independent implementation of Kafka's magic-2 format and its
//! four codecs) must validate and read back identically here, and our builder's batches must
//! decode identically there. Then a robustness property: random damage to valid batches,
//! compressed or not, never panics any reader.

use bytes::{Bytes, BytesMut};
use kafka_protocol::indexmap::IndexMap;
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::records::{
    Compression as KCompression, Record as KRecord, RecordBatchDecoder, RecordBatchEncoder,
    RecordEncodeOptions, TimestampType as KTimestampType,
};
use proptest::prelude::*;
use shardlog_storage::batch_builder::RecordBatchBuilder;
use shardlog_storage::record_batch::{BatchIter, Compression, RecordBatch, TimestampType};
use shardlog_storage::records::{EndTxnMarker, Header, Records};

const MAX_BATCH: usize = 8 << 20;
const MAX_UNCOMPRESSED: usize = 64 << 20;

const CODECS: [(KCompression, Compression); 5] = [
    (KCompression::None, Compression::None),
    (KCompression::Gzip, Compression::Gzip),
    (KCompression::Snappy, Compression::Snappy),
    (KCompression::Lz4, Compression::Lz4),
    (KCompression::Zstd, Compression::Zstd),
];

/// Records as a producer would send them; `producer_id` -1 means not idempotent. Sequences
/// follow offsets so that kafka-protocol keeps them in one batch.
fn kafka_records(base_offset: i64, count: usize, value_len: usize, producer_id: i64) -> Vec<KRecord> {
    (0..count)
        .map(|i| {
            let mut headers = IndexMap::new();
            if i % 2 == 0 {
                headers.insert(StrBytes::from_static_str("trace-id"), Some(Bytes::from(format!("t{i}"))));
                headers.insert(StrBytes::from_static_str("empty"), None);
            }
            let idempotent = producer_id >= 0;
            KRecord {
                transactional: false,
                control: false,
                delete_horizon: false,
                partition_leader_epoch: 7,
                producer_id,
                producer_epoch: if idempotent { 3 } else { -1 },
                timestamp_type: KTimestampType::Creation,
                offset: base_offset + i as i64,
                sequence: if idempotent { 1000 + i as i32 } else { i as i32 - 1 },
                // Not monotonic: maxTimestamp must be the largest, baseTimestamp the smallest.
                timestamp: 1_700_000_000_000 + ((i * 37) % 11) as i64,
                key: (i % 3 != 1).then(|| Bytes::from(format!("key-{i}"))),
                value: (i % 4 != 3).then(|| Bytes::from(vec![b'a' + (i % 26) as u8; value_len])),
                headers,
            }
        })
        .collect()
}

fn encode(records: &[KRecord], codec: KCompression) -> Vec<u8> {
    let mut buf = BytesMut::new();
    RecordBatchEncoder::encode(
        &mut buf,
        records.iter(),
        &RecordEncodeOptions { version: 2, compression: codec },
    )
    .expect("kafka-protocol encodes");
    buf.to_vec()
}

/// Asserts that our reader sees exactly `expected` in `batch`.
fn assert_records_match(batch: RecordBatch<'_>, expected: &[KRecord]) {
    let records = Records::decode(batch, MAX_UNCOMPRESSED).expect("decompresses");
    let ours: Vec<_> = records.iter().collect::<Result<_, _>>().expect("every record parses");
    assert_eq!(ours.len(), expected.len());
    for (o, k) in ours.iter().zip(expected) {
        assert_eq!(o.offset, k.offset);
        assert_eq!(o.timestamp, k.timestamp);
        assert_eq!(o.key, k.key.as_deref());
        assert_eq!(o.value, k.value.as_deref());
        let k_headers: Vec<_> =
            k.headers.iter().map(|(key, v)| Header { key: key.as_bytes(), value: v.as_deref() }).collect();
        assert_eq!(o.headers, k_headers);
        let expected_sequence = if k.producer_id >= 0 { k.sequence } else { -1 };
        assert_eq!(o.sequence, expected_sequence);
    }
}

#[test]
fn kafka_protocol_batches_validate_and_read_back_in_every_codec() {
    for (kcodec, codec) in CODECS {
        for (count, value_len, producer_id) in [(1, 0, -1), (6, 10, -1), (6, 10, 42), (200, 1500, 42)] {
            let expected = kafka_records(500, count, value_len, producer_id);
            let bytes = encode(&expected, kcodec);
            let batch = RecordBatch::validate(&bytes, MAX_BATCH)
                .unwrap_or_else(|e| panic!("{codec:?} x{count}: {e}"));
            assert_eq!(batch.size_bytes(), bytes.len(), "one batch");
            assert_eq!(batch.compression(), codec);
            assert_eq!(batch.base_offset(), 500);
            assert_eq!(batch.last_offset(), 500 + count as i64 - 1);
            assert_eq!(batch.record_count(), count as i32);
            assert!(batch.has_one_record_per_offset());
            assert_eq!(batch.partition_leader_epoch(), 7);
            assert_eq!(batch.producer_id(), producer_id);
            assert_eq!(batch.base_sequence(), if producer_id >= 0 { 1000 } else { -1 });
            assert_eq!(batch.timestamp_type(), TimestampType::CreateTime);
            assert_eq!(batch.base_timestamp(), expected.iter().map(|r| r.timestamp).min().unwrap());
            assert_eq!(batch.max_timestamp(), expected.iter().map(|r| r.timestamp).max().unwrap());
            assert!(!batch.is_transactional() && !batch.is_control());
            assert_records_match(batch, &expected);
        }
    }
}

#[test]
fn kafka_protocol_record_sets_iterate_batch_by_batch() {
    // Records of two producers: kafka-protocol splits them into two batches.
    let mut records = kafka_records(0, 4, 8, 42);
    records.extend(kafka_records(4, 3, 8, 43));
    for (kcodec, _) in CODECS {
        let bytes = encode(&records, kcodec);
        let batches: Vec<_> = BatchIter::new(&bytes, MAX_BATCH).collect::<Result<_, _>>().unwrap();
        assert_eq!(batches.len(), 2);
        assert_eq!(batches[1].0, batches[0].1.size_bytes());
        for ((_, batch), expected) in batches.into_iter().zip([&records[..4], &records[4..]]) {
            batch.check_crc().unwrap();
            assert_records_match(batch, expected);
        }
    }
}

#[test]
fn kafka_protocol_transactional_and_control_batches() {
    let mut data = kafka_records(0, 3, 5, 42);
    for r in &mut data {
        r.transactional = true;
    }
    let marker = EndTxnMarker { commit: true, coordinator_epoch: 9 };
    let (key, value) = marker.encode();
    let control = KRecord {
        control: true,
        offset: 3,
        sequence: 1003,
        key: Some(Bytes::copy_from_slice(&key)),
        value: Some(Bytes::copy_from_slice(&value)),
        headers: IndexMap::new(),
        ..data[0].clone()
    };
    for (kcodec, _) in CODECS {
        let bytes = encode(&data, kcodec);
        let batch = RecordBatch::validate(&bytes, MAX_BATCH).unwrap();
        assert!(batch.is_transactional() && !batch.is_control());
        assert_records_match(batch, &data);

        let bytes = encode(std::slice::from_ref(&control), kcodec);
        let batch = RecordBatch::validate(&bytes, MAX_BATCH).unwrap();
        assert!(batch.is_transactional() && batch.is_control());
        let records = Records::decode(batch, MAX_UNCOMPRESSED).unwrap();
        let record = records.iter().next().unwrap().unwrap();
        assert_eq!(EndTxnMarker::parse(&record).unwrap(), marker);
    }
}

/// Our builder's output, decoded by kafka-protocol.
#[test]
fn our_batches_decode_in_kafka_protocol() {
    for (kcodec, codec) in CODECS {
        for count in [1usize, 5, 300] {
            let mut b = RecordBatchBuilder::new(1234, codec).producer(77, 2, 40).partition_leader_epoch(11);
            let payload = vec![b'z'; 700];
            for i in 0..count {
                let headers = [
                    Header { key: b"h-a", value: Some(b"1") },
                    Header { key: b"h-b", value: if i % 2 == 0 { None } else { Some(b"") } },
                ];
                let key = (i % 3 != 0).then_some(&b"the-key"[..]);
                let value = (i % 5 != 4).then_some(&payload[..i % payload.len()]);
                b.push(1_700_000_000_000 + i as i64, key, value, &headers[..i % 3]).unwrap();
            }
            let bytes = b.build().unwrap();
            let ours = RecordBatch::validate(&bytes, MAX_BATCH).unwrap();
            let records = Records::decode(ours, MAX_UNCOMPRESSED).unwrap();
            let ours: Vec<_> = records.iter().collect::<Result<_, _>>().unwrap();

            let mut buf = Bytes::from(bytes.clone());
            let set = RecordBatchDecoder::decode(&mut buf).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
            assert_eq!(set.compression, kcodec);
            assert_eq!(set.records.len(), count);
            for (k, o) in set.records.iter().zip(&ours) {
                assert_eq!((k.offset, k.timestamp, k.sequence), (o.offset, o.timestamp, o.sequence));
                assert_eq!((k.producer_id, k.producer_epoch, k.partition_leader_epoch), (77, 2, 11));
                assert!(!k.transactional && !k.control);
                assert_eq!(k.key.as_deref(), o.key);
                assert_eq!(k.value.as_deref(), o.value);
                let k_headers: Vec<_> = k
                    .headers
                    .iter()
                    .map(|(key, v)| Header { key: key.as_bytes(), value: v.as_deref() })
                    .collect();
                assert_eq!(k_headers, o.headers);
            }
        }
    }
}

#[test]
fn our_control_batches_decode_in_kafka_protocol() {
    let (key, value) = EndTxnMarker { commit: false, coordinator_epoch: 3 }.encode();
    let mut b =
        RecordBatchBuilder::new(50, Compression::None).producer(5, 1, -1).transactional(true).control(true);
    b.push(1_700_000_000_000, Some(&key), Some(&value), &[]).unwrap();
    let mut buf = Bytes::from(b.build().unwrap());
    let set = RecordBatchDecoder::decode(&mut buf).unwrap();
    let r = &set.records[0];
    assert!(r.control && r.transactional);
    assert_eq!((r.offset, r.producer_id), (50, 5));
    assert_eq!(r.key.as_deref(), Some(&key[..]));
    assert_eq!(r.value.as_deref(), Some(&value[..]));
}

/// Reads everything the way a tool or the cleaner would; the only requirement is no panic.
fn read_everything(bytes: &[u8]) {
    let _ = RecordBatch::validate(bytes, MAX_BATCH);
    for item in BatchIter::new(bytes, MAX_BATCH) {
        let Ok((_, batch)) = item else { break };
        touch_every_field(&batch);
        let _ = batch.check_crc();
        if let Ok(records) = Records::decode(batch, 1 << 20) {
            for r in records.iter() {
                let _ = r.map(|r| EndTxnMarker::parse(&r));
            }
        }
    }
    // The lenient view skips the header checks, so record decoding sees the damage too.
    if let Ok(batch) = RecordBatch::parse_lenient(bytes) {
        touch_every_field(&batch);
        if let Ok(records) = Records::decode(batch, 1 << 20) {
            records.iter().for_each(drop);
        }
    }
}

/// Every accessor must be safe on any bytes a view accepted (a tool prints them all).
fn touch_every_field(b: &RecordBatch<'_>) {
    let _ = (b.base_offset(), b.last_offset(), b.next_offset(), b.batch_length(), b.partition_leader_epoch());
    let _ = (b.magic(), b.crc(), b.attributes(), b.compression(), b.timestamp_type(), b.is_transactional());
    let _ =
        (b.is_control(), b.delete_horizon_ms(), b.last_offset_delta(), b.base_timestamp(), b.max_timestamp());
    let _ = (b.producer_id(), b.producer_epoch(), b.base_sequence(), b.last_sequence(), b.record_count());
    let _ = (b.records_bytes(), b.has_one_record_per_offset(), format!("{b:?}"));
}

fn valid_batch(codec_index: usize, count: usize, ours: bool) -> Vec<u8> {
    let (kcodec, codec) = CODECS[codec_index];
    if ours {
        let mut b = RecordBatchBuilder::new(0, codec);
        for i in 0..count {
            let h = [Header { key: b"k", value: Some(b"v") }];
            b.push(i as i64, Some(b"key"), Some(&[b'x'; 40][..i % 40]), &h[..i % 2]).unwrap();
        }
        b.build().unwrap()
    } else {
        encode(&kafka_records(0, count, 30, 42), kcodec)
    }
}

#[derive(Debug, Clone)]
enum Damage {
    Flip { at: usize, mask: u8 },
    Truncate { at: usize },
    Insert { at: usize, byte: u8 },
    Remove { at: usize },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 1u8..=255).prop_map(|(at, mask)| Damage::Flip { at, mask }),
        any::<usize>().prop_map(|at| Damage::Truncate { at }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Damage::Insert { at, byte }),
        any::<usize>().prop_map(|at| Damage::Remove { at }),
    ]
}

fn apply(bytes: &mut Vec<u8>, d: &Damage) {
    if bytes.is_empty() {
        return;
    }
    match *d {
        Damage::Flip { at, mask } => {
            let i = at % bytes.len();
            bytes[i] ^= mask;
        }
        Damage::Truncate { at } => bytes.truncate(at % bytes.len()),
        Damage::Insert { at, byte } => bytes.insert(at % (bytes.len() + 1), byte),
        Damage::Remove { at } => {
            bytes.remove(at % bytes.len());
        }
    }
}

/// Recomputes the CRC (bytes 17..21 over 21..end) so damage reaches the record decoder
/// through `validate` too, not only through the lenient view.
fn fix_crc(bytes: &mut [u8]) {
    if bytes.len() > 21 {
        let crc = crc32c::crc32c(&bytes[21..]);
        bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn damaged_batches_never_panic(
        codec_index in 0usize..5,
        count in 1usize..20,
        ours in any::<bool>(),
        damages in proptest::collection::vec(damage(), 1..6),
        recompute_crc in any::<bool>(),
    ) {
        let mut bytes = valid_batch(codec_index, count, ours);
        for d in &damages {
            apply(&mut bytes, d);
        }
        if recompute_crc {
            fix_crc(&mut bytes);
        }
        read_everything(&bytes);
    }

    /// Damage confined to the records section (after the 61-byte header) of a batch whose CRC
    /// is then fixed: validation passes, so the decompressor and record parser get garbage.
    #[test]
    fn damaged_records_sections_are_errors_or_records(
        codec_index in 0usize..5,
        count in 1usize..20,
        ours in any::<bool>(),
        flips in proptest::collection::vec((any::<usize>(), 1u8..=255), 1..8),
    ) {
        let mut bytes = valid_batch(codec_index, count, ours);
        let section = bytes.len() - 61;
        for (at, mask) in flips {
            bytes[61 + at % section] ^= mask;
        }
        fix_crc(&mut bytes);
        let batch = RecordBatch::validate(&bytes, MAX_BATCH).expect("header untouched, CRC fixed");
        if let Ok(records) = Records::decode(batch, 1 << 20) {
            let mut n = 0;
            for r in records.iter() {
                if r.is_err() { break; }
                n += 1;
            }
            prop_assert!(n <= count);
        }
    }
}
