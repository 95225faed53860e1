//! A hand-checked byte layout: two known batches appended with `index_interval_bytes = 1`
//! must leave exactly these bytes in the `.log`, `.index` and `.timeindex` files, under
//! Kafka's 20-digit names.

mod common;

use shardlog_storage::log_config::LogConfig;
use shardlog_storage::partition_log::PartitionLog;
use shardlog_storage::record_batch::RecordBatch;

/// 1_700_000_000_000 ms = 0x0000_018B_CFE5_6800.
const TS: [u8; 8] = [0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x00];
/// TS + 100 = ...0x64, TS + 105 = ...0x69.
const TS_100: [u8; 8] = [0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x64];
const TS_105: [u8; 8] = [0x00, 0x00, 0x01, 0x8B, 0xCF, 0xE5, 0x68, 0x69];

/// A magic-2 batch as a client sends it (baseOffset 0, leader epoch -1, no producer id),
/// with its CRC-32C computed over attributes..end.
fn batch(last_offset_delta: u8, base_ts: [u8; 8], max_ts: [u8; 8], records: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend([0; 8]); // baseOffset
    b.extend(((49 + records.len()) as u32).to_be_bytes()); // batchLength: 61 - 12 + records
    b.extend([0xFF; 4]); // partitionLeaderEpoch -1
    b.push(2); // magic
    b.extend([0; 4]); // crc, below
    b.extend([0, 0]); // attributes: no codec, CreateTime
    b.extend([0, 0, 0, last_offset_delta]);
    b.extend(base_ts);
    b.extend(max_ts);
    b.extend([0xFF; 8]); // producerId -1
    b.extend([0xFF; 2]); // producerEpoch -1
    b.extend([0xFF; 4]); // baseSequence -1
    b.extend([0, 0, 0, last_offset_delta + 1]); // recordCount
    b.extend(records);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

// Each record: length 7 (zigzag 0x0E), attributes 0, timestampDelta, offsetDelta, key null
// (zigzag -1 = 0x01), value length 1 (0x02), the value, 0 headers.
const RECORDS_1: [u8; 8] = [0x0E, 0x00, 0x00, 0x00, 0x01, 0x02, b'a', 0x00];
const RECORDS_2: [u8; 16] = [
    0x0E, 0x00, 0x00, 0x00, 0x01, 0x02, b'b', 0x00, // offsetDelta 0, timestampDelta 0
    0x0E, 0x00, 0x0A, 0x02, 0x01, 0x02, b'c', 0x00, // timestampDelta 5, offsetDelta 1
];

#[test]
fn two_batches_make_these_exact_files() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("orders-0");
        let config = LogConfig { index_interval_bytes: 1, ..LogConfig::default() };
        let first = batch(0, TS, TS, &RECORDS_1);
        let second = batch(1, TS_100, TS_105, &RECORDS_2);
        assert_eq!((first.len(), second.len()), (69, 77));
        RecordBatch::validate(&first, usize::MAX).expect("hand-built batch is valid");
        RecordBatch::validate(&second, usize::MAX).expect("hand-built batch is valid");

        let mut log = PartitionLog::open(&dir, config, None, None).await.unwrap();
        let a = log.append(first.clone(), 5, 0).await.unwrap();
        let b = log.append(second.clone(), 5, 0).await.unwrap();
        assert_eq!((a.base_offset, a.last_offset, b.base_offset, b.last_offset), (0, 0, 1, 2));
        assert_eq!(b.max_timestamp, 1_700_000_000_105);
        log.close().await.unwrap();

        assert_eq!(
            common::file_names(&dir),
            ["00000000000000000000.index", "00000000000000000000.log", "00000000000000000000.timeindex"]
        );
        // The broker rewrote baseOffset (0, then 1) and partitionLeaderEpoch (5), nothing else.
        let mut expected_log = first;
        expected_log[12..16].copy_from_slice(&[0, 0, 0, 5]);
        let mut rewritten = second;
        rewritten[0..8].copy_from_slice(&[0, 0, 0, 0, 0, 0, 0, 1]);
        rewritten[12..16].copy_from_slice(&[0, 0, 0, 5]);
        expected_log.extend(rewritten);
        assert_eq!(std::fs::read(dir.join("00000000000000000000.log")).unwrap(), expected_log);
        // index.interval.bytes = 1: the first batch (nothing appended before it) gets no entry;
        // the second gets (relative offset of its last offset 2, position 69).
        assert_eq!(std::fs::read(dir.join("00000000000000000000.index")).unwrap(), [0, 0, 0, 2, 0, 0, 0, 69]);
        // Largest timestamp so far (TS + 105) and the last offset of its batch (2).
        let mut expected_time_index = TS_105.to_vec();
        expected_time_index.extend([0, 0, 0, 2]);
        assert_eq!(std::fs::read(dir.join("00000000000000000000.timeindex")).unwrap(), expected_time_index);
    });
}

#[test]
fn a_rolled_segment_is_named_by_its_base_offset() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes: 100, ..LogConfig::default() };
        let mut log = PartitionLog::open(tmp.path(), config, None, None).await.unwrap();
        log.append(batch(0, TS, TS, &RECORDS_1), 0, 0).await.unwrap();
        log.append(batch(1, TS_100, TS_105, &RECORDS_2), 0, 0).await.unwrap();
        log.close().await.unwrap();
        let names = common::file_names(tmp.path());
        assert!(names.contains(&"00000000000000000001.log".to_string()), "{names:?}");
        assert_eq!(names.len(), 6, "{names:?}");
    });
}
