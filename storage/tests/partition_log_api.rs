//! The partition log's contract case by case: append validation and offset assignment,
//! LogAppendTime, follower appends, read boundaries (KIP-74, upper bound, out of range), rolls,
//! retention, delete-records, flush policy, truncation, offsets by time.

mod common;

use bytes::Bytes;
use shardlog_storage::log_config::LogConfig;
use shardlog_storage::log_error::{KafkaError, LogError};
use shardlog_storage::log_segment::SYNC_APPEND_BYTES_MAX;
use shardlog_storage::partition_log::{place_as_leader, PartitionLog};
use shardlog_storage::record_batch::{rewrite, BatchError, BatchIter, RecordBatch, TimestampType};

fn base_config() -> LogConfig {
    LogConfig { file_delete_delay_ms: 0, ..LogConfig::default() }
}

/// A batch as a leader stored it: offsets from `base_offset`.
fn stored_batch(base_offset: i64, count: usize, timestamp_ms: i64) -> Vec<u8> {
    let mut batch = common::batch(count, 10, timestamp_ms, base_offset as u8);
    rewrite::set_base_offset(&mut batch, base_offset);
    batch
}

#[test]
fn appends_assign_contiguous_offsets_and_rewrite_only_offset_and_epoch() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(tmp.path(), base_config(), None, None).await.unwrap();
        let set = [common::batch(3, 10, common::TS, 1), common::batch(2, 10, common::TS + 50, 2)].concat();
        let info = log.append(set.clone(), 7, 0).await.unwrap();
        assert_eq!((info.base_offset, info.last_offset, info.batch_count), (0, 4, 2));
        assert_eq!((info.max_timestamp, info.offset_of_max_timestamp), (common::TS + 51, 4));
        assert_eq!(info.log_append_time_ms, None);
        let info = log.append(common::batch(1, 10, common::TS, 3), 7, 0).await.unwrap();
        assert_eq!((info.base_offset, info.last_offset), (5, 5));
        assert_eq!(log.log_end_offset(), 6);
        let bytes = common::read_all(&log.read(0, 1 << 20, 6, false).await.unwrap()).await;
        assert_eq!(common::batch_offsets(&bytes), [(0, 2), (3, 4), (5, 5)]);
        let first = RecordBatch::validate(&bytes, usize::MAX).unwrap();
        assert_eq!(first.partition_leader_epoch(), 7);
        assert_eq!(
            &bytes[16..first.size_bytes()],
            &set[16..first.size_bytes()],
            "CRC-covered bytes unchanged"
        );
        log.close().await.unwrap();
    });
}

#[test]
fn a_bad_batch_rejects_the_whole_request_with_a_typed_error() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let config = LogConfig { max_message_bytes: 500, ..base_config() };
        let mut log = PartitionLog::open(tmp.path(), config, None, None).await.unwrap();
        let first = common::batch(1, 10, common::TS, 0);
        let first_bytes = first.len() as u64;
        log.append(first, 0, 0).await.unwrap();
        let good = common::batch(2, 10, common::TS, 1);
        let mut corrupt = good.clone();
        let last = corrupt.len() - 1;
        corrupt[last] ^= 1;
        let mut uncounted = good.clone();
        uncounted[23..27].copy_from_slice(&5i32.to_be_bytes()); // lastOffsetDelta 5 for 2 records
        let crc = crc32c::crc32c(&uncounted[21..]);
        uncounted[17..21].copy_from_slice(&crc.to_be_bytes());
        let too_large = common::batch(10, 100, common::TS, 2);
        let cases: Vec<(Vec<u8>, KafkaError)> = vec![
            ([good.clone(), corrupt].concat(), KafkaError::CorruptMessage),
            ([good.clone(), uncounted].concat(), KafkaError::CorruptMessage),
            ([good.clone(), too_large].concat(), KafkaError::MessageTooLarge),
            ([good.clone(), good[..40].to_vec()].concat(), KafkaError::CorruptMessage),
            (Vec::new(), KafkaError::InvalidRequest),
        ];
        for (set, kafka_error) in cases {
            let err = log.append(set, 0, 0).await.unwrap_err();
            assert_eq!(err.kafka_error(), kafka_error, "{err}");
            if kafka_error != KafkaError::InvalidRequest {
                assert!(matches!(err, LogError::InvalidBatch { index: 1, .. }), "{err:?}");
            }
            assert_eq!(log.log_end_offset(), 1, "nothing of a bad request is appended");
            assert_eq!(log.size_bytes(), first_bytes);
        }
        log.close().await.unwrap();
    });
}

/// The leader's placement on its own (what callgrind counts): a valid set gets consecutive
/// offsets and the epoch in the headers it will be written with, and the producer's bytes are
/// never changed (they are the request frame's); a set with a bad batch anywhere is refused.
/// LogAppendTime's rewrite recomputes each batch's CRC over the new header and the old body.
#[test]
fn placement_rewrites_the_headers_written_and_never_the_producers_bytes() {
    let good = [common::batch(3, 10, common::TS, 1), common::batch(2, 10, common::TS, 2)].concat();
    let source = Bytes::from(good.clone());
    let placed = place_as_leader(source.clone(), 40, 9, None, 1 << 20).unwrap();
    let offsets: Vec<(usize, i64, i64)> =
        placed.batches().iter().map(|(at, header)| (*at, header.base_offset, header.last_offset())).collect();
    let second_at = RecordBatch::validate(&good, usize::MAX).unwrap().size_bytes();
    assert_eq!(offsets, [(0, 40, 42), (second_at, 43, 44)]);
    let written = placed.to_vec();
    assert_eq!(written.len(), good.len());
    assert_eq!(common::batch_offsets(&written), [(40, 42), (43, 44)]);
    assert_eq!(RecordBatch::validate(&written, usize::MAX).unwrap().partition_leader_epoch(), 9);
    assert_eq!(&source[..], &good[..], "the producer's bytes are not rewritten");

    let appended_at = place_as_leader(source.clone(), 40, 9, Some(1_234_567), 1 << 20).unwrap().to_vec();
    for item in BatchIter::new(&appended_at, usize::MAX) {
        let (_, batch) = item.unwrap();
        batch.check_crc().expect("the CRC covers the rewritten header and the original body");
        assert_eq!(batch.max_timestamp(), 1_234_567);
    }

    let mut corrupt = good.clone();
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let err = place_as_leader(Bytes::from(corrupt), 40, 9, None, 1 << 20).unwrap_err();
    assert!(matches!(err, LogError::InvalidBatch { index: 1, .. }), "{err:?}");
}

/// A fetch at the tail takes its first batch's position from the appends it remembers, not
/// from a walk of the file's headers. Shown by spoiling the first batch's header on disk, where
/// every walk in this index-less segment starts: the tail still reads, an offset before the
/// batches remembered still walks (and fails), and a reopened log reads the file again (its
/// recovery finds the spoiled header).
#[test]
fn a_read_at_the_tail_finds_its_batch_without_reading_headers() {
    use std::os::unix::fs::FileExt;
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let log_file = tmp.path().join("00000000000000000000.log");
        {
            let mut log = PartitionLog::open(tmp.path(), base_config(), None, None).await.unwrap();
            log.append(common::batch(3, 10, common::TS, 1), 0, 0).await.unwrap();
            log.close().await.unwrap();
        }
        let mut log = PartitionLog::open(tmp.path(), base_config(), None, None).await.unwrap();
        let first_bytes = log.size_bytes();
        log.append(common::batch(2, 10, common::TS, 2), 0, 0).await.unwrap(); // offsets 3..=4
        log.append(common::batch(1, 10, common::TS, 3), 0, 0).await.unwrap(); // offset 5
        let spoiled = vec![0u8; 61];
        std::fs::OpenOptions::new().write(true).open(&log_file).unwrap().write_all_at(&spoiled, 0).unwrap();

        for offset in [3, 4] {
            let info = log.read(offset, 1 << 20, 6, false).await.unwrap();
            assert_eq!(info.regions[0].position, first_bytes, "offset {offset}");
            assert_eq!(common::batch_offsets(&common::read_all(&info).await), [(3, 4), (5, 5)]);
        }
        let info = log.read(5, 1 << 20, 6, false).await.unwrap();
        assert_eq!(common::batch_offsets(&common::read_all(&info).await), [(5, 5)]);
        let err = log.read(1, 1 << 20, 6, false).await.unwrap_err();
        assert!(err.to_string().contains("position 0"), "{err}");
        drop(log);

        // Reopened after an unclean stop, the log re-reads the file: recovery finds the spoiled
        // header at position 0 and cuts there, and no read is answered from what was remembered.
        let log = PartitionLog::open(tmp.path(), base_config(), None, None).await.unwrap();
        assert_eq!(log.log_end_offset(), 0);
        let err = log.read(5, 1 << 20, 6, false).await.unwrap_err();
        assert!(matches!(err, LogError::OffsetOutOfRange { offset: 5, .. }), "{err:?}");
    });
}

#[test]
fn log_append_time_topics_stamp_the_brokers_clock() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let config = LogConfig { message_timestamp_type: TimestampType::LogAppendTime, ..base_config() };
        let mut log = PartitionLog::open(tmp.path(), config, None, None).await.unwrap();
        let info = log.append(common::batch(2, 10, common::TS, 0), 0, 1_800_000_000_000).await.unwrap();
        assert_eq!(info.log_append_time_ms, Some(1_800_000_000_000));
        assert_eq!(info.max_timestamp, 1_800_000_000_000);
        // A large one too: written by the ring from the producer's bytes, with only the header
        // rewritten, so its CRC must cover the new header and the untouched records.
        let large = common::batch(2, SYNC_APPEND_BYTES_MAX, common::TS, 1);
        log.append(large, 0, 1_800_000_000_001).await.unwrap();
        let bytes = common::read_all(&log.read(0, 1 << 20, 4, true).await.unwrap()).await;
        let mut stamps = Vec::new();
        for item in BatchIter::new(&bytes, usize::MAX) {
            let (_, batch) = item.unwrap();
            batch.check_crc().expect("CRC recomputed");
            assert_eq!(batch.timestamp_type(), TimestampType::LogAppendTime);
            stamps.push(batch.max_timestamp());
        }
        assert_eq!(stamps, [1_800_000_000_000, 1_800_000_000_001]);
        log.close().await.unwrap();
    });
}

#[test]
fn follower_appends_keep_offsets_and_reject_going_backwards() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes: 300, ..base_config() };
        let mut log = PartitionLog::open(tmp.path(), config, None, None).await.unwrap();
        let info = log
            .append_as_follower([stored_batch(0, 2, common::TS), stored_batch(5, 1, common::TS)].concat(), 0)
            .await
            .unwrap();
        assert_eq!((info.base_offset, info.last_offset), (0, 5));
        assert_eq!(log.log_end_offset(), 6);
        let err = log.append_as_follower(stored_batch(4, 1, common::TS), 0).await.unwrap_err();
        assert!(
            matches!(err, LogError::UnexpectedAppendOffset { base_offset: 4, expected_at_least: 6 }),
            "{err:?}"
        );
        // A jump too far for the active segment's relative offsets rolls a new segment there.
        let far = 6 + i32::MAX as i64 + 10;
        log.append_as_follower(stored_batch(far, 1, common::TS), 0).await.unwrap();
        assert_eq!(log.segments().last().unwrap().base_offset(), far);
        assert_eq!(log.log_end_offset(), far + 1);
        let bytes = common::read_all(&log.read(0, 1 << 20, i64::MAX, true).await.unwrap()).await;
        assert_eq!(common::batch_offsets(&bytes), [(0, 1), (5, 5), (far, far)]);
        let mid = common::read_all(&log.read(3, 1 << 20, i64::MAX, true).await.unwrap()).await;
        assert_eq!(
            common::batch_offsets(&mid),
            [(5, 5), (far, far)],
            "an offset in a gap reads the next batch"
        );
        log.close().await.unwrap();
    });
}

#[test]
fn reads_follow_batch_boundaries_kip74_and_the_upper_bound() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(tmp.path(), base_config(), None, None).await.unwrap();
        let mut sizes = Vec::new();
        for i in 0..5 {
            let batch = common::batch(2, 100, common::TS, i);
            sizes.push(batch.len() as u64);
            log.append(batch, 0, 0).await.unwrap();
        }
        let read = |offset, max_bytes, upper, min_one| {
            let log = &log;
            async move {
                common::batch_offsets(
                    &common::read_all(&log.read(offset, max_bytes, upper, min_one).await.unwrap()).await,
                )
            }
        };
        assert_eq!(
            read(3, 1 << 20, 10, false).await,
            [(2, 3), (4, 5), (6, 7), (8, 9)],
            "offset inside a batch"
        );
        assert_eq!(read(0, sizes[0] as usize * 2, 10, false).await, [(0, 1), (2, 3)], "whole batches only");
        assert_eq!(read(0, sizes[0] as usize * 2 - 1, 10, false).await, [(0, 1)]);
        assert_eq!(read(0, 10, 10, false).await, [], "no partial batch without min_one_batch");
        assert_eq!(read(0, 10, 10, true).await, [(0, 1)], "KIP-74: one whole batch");
        assert_eq!(read(0, 0, 10, true).await, [(0, 1)]);
        assert_eq!(read(0, 1 << 20, 6, true).await, [(0, 1), (2, 3), (4, 5)], "below the high watermark");
        assert_eq!(
            read(0, 1 << 20, 5, true).await,
            [(0, 1), (2, 3)],
            "a batch crossing the bound is not returned"
        );
        assert_eq!(read(10, 1 << 20, 10, true).await, [], "at the log end");
        for bad in [-1, 11] {
            let err = log.read(bad, 100, 10, true).await.unwrap_err();
            assert_eq!(err.kafka_error(), KafkaError::OffsetOutOfRange);
        }
        let info = log.read(0, 1 << 20, 10, true).await.unwrap();
        assert!(info.regions[0].raw_fd() >= 0);
        assert_eq!(info.size_bytes(), sizes.iter().sum::<u64>());
        log.close().await.unwrap();
    });
}

#[test]
fn a_file_region_outlives_the_deletion_of_its_segment() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes: 200, retention_bytes: 0, ..base_config() };
        let mut log = PartitionLog::open(tmp.path(), config, None, None).await.unwrap();
        for i in 0..4 {
            log.append(common::batch(1, 100, common::TS, i), 0, 0).await.unwrap();
        }
        log.set_high_watermark(4);
        let info = log.read(0, 1 << 20, 4, true).await.unwrap();
        let before = common::read_all(&info).await;
        assert_eq!(log.delete_segments_for_retention(0).await.unwrap(), 3);
        assert_eq!(common::read_all(&info).await, before);
        log.close().await.unwrap();
    });
}

#[test]
fn segments_roll_on_size_time_and_full_indexes() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let size = common::batch(1, 50, common::TS, 0).len() as u32;
        // segment_bytes: three batches fit, the fourth rolls.
        let config = LogConfig { segment_bytes: size * 3, ..base_config() };
        let mut log = PartitionLog::open(tmp.path().join("size"), config, None, None).await.unwrap();
        for i in 0..7 {
            log.append(common::batch(1, 50, common::TS, i), 0, 0).await.unwrap();
        }
        let bases: Vec<i64> = log.segments().iter().map(|s| s.base_offset()).collect();
        assert_eq!(bases, [0, 3, 6]);
        log.close().await.unwrap();

        // segment_ms counts from the first batch's timestamp to the new batch's.
        let config = LogConfig { segment_ms: 1000, ..base_config() };
        let mut log = PartitionLog::open(tmp.path().join("time"), config, None, None).await.unwrap();
        for ts in [0, 500, 1000, 1001, 1500, 2002] {
            log.append(common::batch(1, 10, common::TS + ts, 0), 0, 0).await.unwrap();
        }
        let bases: Vec<i64> = log.segments().iter().map(|s| s.base_offset()).collect();
        assert_eq!(bases, [0, 3, 5]);
        log.close().await.unwrap();

        // A full index rolls: 24 bytes hold two time-index entries (12 bytes each).
        let config = LogConfig { segment_index_bytes: 24, index_interval_bytes: 1, ..base_config() };
        let mut log = PartitionLog::open(tmp.path().join("index"), config, None, None).await.unwrap();
        for i in 0..7 {
            log.append(common::batch(1, 10, common::TS + i as i64, 0), 0, 0).await.unwrap();
        }
        let bases: Vec<i64> = log.segments().iter().map(|s| s.base_offset()).collect();
        // Entries go to the 2nd and 3rd batch of a segment (none for the first), then it is full.
        assert_eq!(bases, [0, 3, 6]);
        assert!(log.segments().iter().all(|s| s.time_index().len() <= 2));
        log.close().await.unwrap();
    });
}

#[test]
fn retention_deletes_old_segments_by_time_and_size_but_never_the_active_one() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let size = common::batch(1, 50, common::TS, 0).len() as u64;
        let config = LogConfig {
            segment_bytes: size as u32 * 2,
            retention_ms: 1000,
            file_delete_delay_ms: 500,
            ..base_config()
        };
        let dir = tmp.path().join("t-0");
        let mut log = PartitionLog::open(&dir, config, None, None).await.unwrap();
        for i in 0..6 {
            log.append(common::batch(1, 50, common::TS + 1000 * i as i64, 0), 0, 0).await.unwrap();
        }
        // Segments [0,1] [2,3] [4,5] with newest timestamps TS+1000, +3000, +5000.
        assert_eq!(log.segments().len(), 3);
        assert_eq!(
            log.delete_segments_for_retention(common::TS + 10_000).await.unwrap(),
            0,
            "above the high watermark"
        );
        log.set_high_watermark(6);
        assert_eq!(log.delete_segments_for_retention(common::TS + 2500).await.unwrap(), 1);
        assert_eq!(log.log_start_offset(), 2);
        let names = common::file_names(&dir);
        assert!(names.contains(&"00000000000000000000.log.deleted".to_string()), "{names:?}");
        assert_eq!(
            log.remove_deleted_segments(common::TS + 2999).await.unwrap(),
            0,
            "file.delete.delay.ms not over"
        );
        assert_eq!(log.remove_deleted_segments(common::TS + 3000).await.unwrap(), 1);
        assert!(common::file_names(&dir).iter().all(|n| !n.ends_with(".deleted")));
        assert_eq!(
            log.delete_segments_for_retention(common::TS + 1_000_000).await.unwrap(),
            1,
            "the active one stays"
        );
        assert_eq!(log.segments().len(), 1);
        assert_eq!(log.log_start_offset(), 4);
        log.close().await.unwrap();

        let config =
            LogConfig { segment_bytes: size as u32 * 2, retention_bytes: size as i64 * 3, ..base_config() };
        let mut log = PartitionLog::open(tmp.path().join("bytes"), config, None, None).await.unwrap();
        for i in 0..7 {
            log.append(common::batch(1, 50, common::TS, i), 0, 0).await.unwrap();
        }
        log.set_high_watermark(7);
        // 7 batches in segments of 2: dropping the two oldest segments leaves 3 batches.
        assert_eq!(log.delete_segments_for_retention(0).await.unwrap(), 2);
        assert_eq!(log.log_start_offset(), 4);
        assert_eq!(log.size_bytes(), size * 3);
        log.close().await.unwrap();
    });
}

#[test]
fn delete_records_advances_the_log_start_up_to_the_high_watermark() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let size = common::batch(2, 50, common::TS, 0).len() as u32;
        let config = LogConfig { segment_bytes: size * 2, ..base_config() };
        let mut log = PartitionLog::open(tmp.path(), config, None, None).await.unwrap();
        for i in 0..6 {
            log.append(common::batch(2, 50, common::TS, i), 0, 0).await.unwrap();
        }
        log.set_high_watermark(8);
        let err = log.delete_records_before(9, 0).await.unwrap_err();
        assert_eq!(err.kafka_error(), KafkaError::OffsetOutOfRange);
        assert_eq!(log.delete_records_before(5, 0).await.unwrap(), 5);
        assert_eq!(log.segments()[0].base_offset(), 4, "segment [0, 4) deleted, [4, 8) holds the start");
        let bytes = common::read_all(&log.read(5, 1 << 20, 8, true).await.unwrap()).await;
        assert_eq!(
            common::batch_offsets(&bytes),
            [(4, 5), (6, 7)],
            "the batch holding the start is served whole"
        );
        assert!(log.read(4, 100, 8, true).await.is_err());
        assert_eq!(log.delete_records_before(3, 0).await.unwrap(), 5, "never backwards");
        log.close().await.unwrap();
        let log = PartitionLog::open(tmp.path(), base_config(), None, Some(5)).await.unwrap();
        assert_eq!(log.log_start_offset(), 5);
        log.close().await.unwrap();
    });
}

#[test]
fn flush_policy_and_recovery_point() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let config = LogConfig { flush_messages: 5, flush_ms: 1000, segment_bytes: 300, ..base_config() };
        let mut log = PartitionLog::open(tmp.path(), config, None, None).await.unwrap();
        assert!(!log.flush_due(0));
        log.append(common::batch(2, 100, common::TS, 0), 0, 10_000).await.unwrap();
        assert!(!log.flush_due(10_999));
        assert!(log.flush_due(11_000), "the oldest unflushed append is flush_ms old");
        log.append(common::batch(3, 100, common::TS, 0), 0, 10_001).await.unwrap();
        assert!(log.flush_due(10_001), "flush_messages unflushed messages");
        assert!(log.segments().len() > 1, "the flush below covers a rolled segment too");
        assert_eq!(log.recovery_point(), 0);
        log.flush().await.unwrap();
        assert_eq!(log.recovery_point(), 5);
        assert!(!log.flush_due(1_000_000));
        log.close().await.unwrap();
    });
}

#[test]
fn truncation_drops_later_segments_and_whole_batches() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let size = common::batch(2, 50, common::TS, 0).len() as u32;
        let config = LogConfig { segment_bytes: size * 2, index_interval_bytes: 1, ..base_config() };
        let dir = tmp.path().join("t-0");
        let mut log = PartitionLog::open(&dir, config.clone(), None, None).await.unwrap();
        for i in 0..6 {
            log.append(common::batch(2, 50, common::TS + i as i64, i), 0, 0).await.unwrap();
        }
        log.set_high_watermark(12);
        log.flush().await.unwrap();
        log.truncate_to(7).await.unwrap();
        assert_eq!(log.log_end_offset(), 6, "the batch [6, 7] goes whole");
        assert_eq!((log.high_watermark(), log.recovery_point()), (6, 6));
        assert_eq!(log.segments().len(), 2);
        assert_eq!(log.max_timestamp_and_offset().unwrap().offset, 5);
        log.append(common::batch(1, 50, common::TS, 9), 0, 0).await.unwrap();
        log.truncate_to(0).await.unwrap();
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 0));
        assert!(log.max_timestamp_and_offset().is_none());
        assert_eq!(common::file_names(&dir).iter().filter(|n| n.ends_with(".log")).count(), 1);
        log.close().await.unwrap();
    });
}

#[test]
fn offsets_by_time_and_the_max_timestamp() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes: 400, index_interval_bytes: 1, ..base_config() };
        let mut log = PartitionLog::open(tmp.path(), config, None, None).await.unwrap();
        // Out-of-order producer timestamps: 100, 50, 300, 200, 300, 400 (one record each).
        for ts in [100, 50, 300, 200, 300, 400] {
            log.append(common::batch(1, 60, common::TS + ts, 0), 0, 0).await.unwrap();
        }
        assert!(log.segments().len() > 1);
        let find = |ts: i64| {
            let log = &log;
            async move {
                log.offset_for_timestamp(common::TS + ts)
                    .await
                    .unwrap()
                    .map(|t| (t.timestamp - common::TS, t.offset))
            }
        };
        assert_eq!(find(0).await, Some((100, 0)));
        assert_eq!(find(100).await, Some((100, 0)));
        assert_eq!(find(101).await, Some((300, 2)));
        assert_eq!(find(300).await, Some((300, 2)));
        assert_eq!(find(301).await, Some((400, 5)));
        assert_eq!(find(401).await, None);
        let max = log.max_timestamp_and_offset().unwrap();
        assert_eq!((max.timestamp - common::TS, max.offset), (400, 5));
        log.close().await.unwrap();
    });
}

#[test]
fn invalid_configs_are_rejected() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        for config in [
            LogConfig { segment_bytes: 10, ..base_config() },
            LogConfig { segment_bytes: u32::MAX, ..base_config() },
            LogConfig { segment_index_bytes: 8, ..base_config() },
            LogConfig { flush_messages: 0, ..base_config() },
            LogConfig { retention_ms: -2, ..base_config() },
        ] {
            let err = PartitionLog::open(tmp.path(), config, None, None).await.unwrap_err();
            assert!(matches!(err, LogError::InvalidConfig(_)), "{err:?}");
        }
        assert!(matches!(BatchError::TooLarge { size_bytes: 2, max_bytes: 1 }, BatchError::TooLarge { .. }));
    });
}

#[test]
fn pipelined_appends_become_readable_in_order_and_flush_waits_for_them() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(tmp.path(), base_config(), None, None).await.unwrap();
        let mut pending = Vec::new();
        // Large enough for the pipelined path (small appends are written at once).
        let value_bytes = SYNC_APPEND_BYTES_MAX / 2 + 1;
        for i in 0..5 {
            let (info, written) =
                log.submit_append(common::batch(2, value_bytes, common::TS, i), 0, 0).await.unwrap();
            assert_eq!(info.base_offset, 2 * i as i64);
            pending.push(written);
        }
        assert_eq!(log.log_end_offset(), 10);
        // Some writes may have landed already (they start whenever this task yields, and an
        // index write yields); whatever is readable is whole batches, in order, from the start.
        let early = common::read_all(&log.read(0, 1 << 20, 10, true).await.unwrap()).await;
        let readable = common::batch_offsets(&early);
        assert!(
            readable.iter().enumerate().all(|(i, b)| *b == (2 * i as i64, 2 * i as i64 + 1)),
            "{readable:?}"
        );
        pending[2].wait().await.unwrap();
        assert!(log.readable_end_offset() >= 6, "a write resolves after every earlier one");
        log.flush().await.unwrap();
        assert_eq!((log.readable_end_offset(), log.recovery_point()), (10, 10));
        for written in &pending {
            written.wait().await.unwrap();
        }
        let all = common::read_all(&log.read(0, 1 << 20, 10, true).await.unwrap()).await;
        assert_eq!(common::batch_offsets(&all).len(), 5);
        log.close().await.unwrap();
    });
}

#[test]
fn a_small_append_is_written_at_once_unless_a_write_is_in_flight() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(tmp.path(), base_config(), None, None).await.unwrap();
        let (_, written) = log.submit_append(common::batch(2, 100, common::TS, 0), 0, 0).await.unwrap();
        assert_eq!(log.readable_end_offset(), 2, "readable before any task ran");
        written.wait().await.unwrap();

        // Behind a large write in flight, a small one waits its turn: it does not take the
        // synchronous path past the large one (`write_now` asserts that every earlier write is
        // in), and resolves only once both are in. The writes start as soon as this task
        // yields (an index write may make it), so either may already have landed here.
        let big = common::batch(2, SYNC_APPEND_BYTES_MAX / 2 + 1, common::TS, 1);
        let (_, big_written) = log.submit_append(big, 0, 0).await.unwrap();
        let (_, small_written) = log.submit_append(common::batch(2, 100, common::TS, 2), 0, 0).await.unwrap();
        small_written.wait().await.unwrap();
        assert_eq!(log.readable_end_offset(), 6, "the small append resolves only after the large one");
        assert!(big_written.wait().await.is_ok());
        let all = common::read_all(&log.read(0, 1 << 20, 10, true).await.unwrap()).await;
        assert_eq!(common::batch_offsets(&all), vec![(0, 1), (2, 3), (4, 5)]);
        log.close().await.unwrap();
    });
}

#[test]
fn retention_deletes_segments_below_a_checkpointed_log_start() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let size = common::batch(2, 50, common::TS, 0).len() as u32;
        let config = LogConfig { segment_bytes: size * 2, ..base_config() };
        let mut log = PartitionLog::open(tmp.path(), config.clone(), None, None).await.unwrap();
        for i in 0..6 {
            log.append(common::batch(2, 50, common::TS, i), 0, 0).await.unwrap();
        }
        log.close().await.unwrap();
        // The log-start checkpoint is ahead of the files (a crash after DeleteRecords).
        let mut log = PartitionLog::open(tmp.path(), config, Some(12), Some(9)).await.unwrap();
        assert_eq!((log.log_start_offset(), log.segments()[0].base_offset()), (9, 0));
        log.set_high_watermark(12);
        assert_eq!(log.delete_segments_for_retention(0).await.unwrap(), 2);
        assert_eq!(log.segments()[0].base_offset(), 8);
        log.close().await.unwrap();
    });
}
