//! The log cleaner (`cleanup.policy=compact`): latest value per key at its original offset,
//! tombstones, compressed batches, crash leftovers, and the dedupe-buffer bound.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{read_all, run, TS};
use shardlog_storage::batch_builder::RecordBatchBuilder;
use shardlog_storage::log_config::{CleanupPolicy, LogConfig};
use shardlog_storage::partition_log::PartitionLog;
use shardlog_storage::record_batch::{BatchIter, Compression, RecordBatch};
use shardlog_storage::records::Records;

/// One record as a consumer sees it: offset, key, value (None = tombstone), sequence.
type Seen = (i64, Option<String>, Option<String>);

fn compact_config() -> LogConfig {
    LogConfig {
        // Every append rolls: one batch per segment.
        segment_bytes: 100,
        index_interval_bytes: 0,
        file_delete_delay_ms: 0,
        cleanup_policy: CleanupPolicy::COMPACT,
        delete_retention_ms: 1000,
        ..LogConfig::default()
    }
}

fn keyed_batch(codec: Compression, records: &[(&str, Option<&str>)], timestamp_ms: i64) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(0, codec).partition_leader_epoch(-1);
    for (key, value) in records {
        builder.push(timestamp_ms, Some(key.as_bytes()), value.map(str::as_bytes), &[]).unwrap();
    }
    builder.build().unwrap()
}

/// Every record from the log start, each batch checked (CRC included).
async fn read_records(log: &PartitionLog) -> Vec<Seen> {
    let info = log.read(log.log_start_offset(), usize::MAX >> 1, log.log_end_offset(), true).await.unwrap();
    let bytes = read_all(&info).await;
    let mut out = Vec::new();
    for item in BatchIter::new(&bytes, usize::MAX) {
        let (_, batch) = item.unwrap();
        let batch = RecordBatch::validate(batch.as_bytes(), usize::MAX).expect("valid batch, CRC included");
        let records = Records::decode(batch, 1 << 24).unwrap();
        for r in records.iter() {
            let r = r.unwrap();
            let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
            out.push((r.offset, text(r.key), text(r.value)));
        }
    }
    out
}

fn offsets_increase(records: &[Seen]) -> bool {
    records.windows(2).all(|w| w[0].0 < w[1].0)
}

/// The latest (offset, value) per key of a record list.
fn latest(records: &[Seen]) -> BTreeMap<String, (i64, Option<String>)> {
    let mut map = BTreeMap::new();
    for (offset, key, value) in records {
        if let Some(key) = key {
            map.insert(key.clone(), (*offset, value.clone()));
        }
    }
    map
}

fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(suffix))
        .collect();
    names.sort();
    names
}

/// The course's example: user-1/2/3 updated across several segments.
async fn course_example_log(dir: &Path, codec: Compression) -> PartitionLog {
    let mut log = PartitionLog::open(dir, compact_config(), None, None).await.unwrap();
    let updates: [&[(&str, Option<&str>)]; 4] = [
        &[("user-1", Some("alice@a")), ("user-2", Some("bob@a")), ("user-1", Some("alice@b"))],
        &[("user-3", Some("carol@a")), ("user-2", Some("bob@b"))],
        &[("user-1", Some("alice@c")), ("user-3", Some("carol@b"))],
        &[("user-2", Some("bob@c"))],
    ];
    for records in updates {
        log.append(keyed_batch(codec, records, TS), 0, TS).await.unwrap();
    }
    // The active segment is never cleaned: give it a record of its own.
    log.append(keyed_batch(codec, &[("user-9", Some("tail"))], TS), 0, TS).await.unwrap();
    assert!(log.segments().len() >= 5);
    log
}

fn expected_course_result() -> Vec<Seen> {
    let s = |o: i64, k: &str, v: &str| (o, Some(k.to_string()), Some(v.to_string()));
    vec![
        s(5, "user-1", "alice@c"),
        s(6, "user-3", "carol@b"),
        s(7, "user-2", "bob@c"),
        s(8, "user-9", "tail"),
    ]
}

#[test]
fn the_course_example_keeps_the_latest_value_per_key_at_its_offset() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = course_example_log(dir.path(), Compression::None).await;
        assert_eq!(log.cleanable_dirty_ratio(TS), 1.0);
        assert!(log.clean_due(TS));
        let stats = log.clean(TS, 1 << 20).await.unwrap();
        assert_eq!(stats.segments_cleaned, 4);
        assert_eq!(stats.records_removed, 5);
        assert!(!stats.map_full && !stats.aborted);
        assert_eq!(stats.cleaned_up_to, 8);
        assert!(stats.bytes_after < stats.bytes_before);
        assert_eq!(read_records(&log).await, expected_course_result());
        assert_eq!(log.cleanable_dirty_ratio(TS), 0.0);
        assert!(!log.clean_due(TS));
        assert_eq!((log.log_start_offset(), log.log_end_offset()), (0, 9));
        // Fetching from an offset that was removed starts at the next kept one.
        let info = log.read(1, 1 << 20, 9, true).await.unwrap();
        assert_eq!(info.regions[0].base_offset, 5);
        // No leftovers, and the cleaned log reopens as it is.
        assert!(files_with_suffix(dir.path(), ".cleaned").is_empty());
        assert!(files_with_suffix(dir.path(), ".swap").is_empty());
        log.close().await.unwrap();
        let log = PartitionLog::open(dir.path(), compact_config(), Some(9), None).await.unwrap();
        assert_eq!(read_records(&log).await, expected_course_result());
        // Appends go on after cleaning.
        log.close().await.unwrap();
    });
}

#[test]
fn the_policy_gates_the_cleaner_and_retention() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = course_example_log(dir.path(), Compression::None).await;
        // compact only: time retention does not delete.
        assert_eq!(log.delete_segments_for_retention(TS + 365 * 86_400_000).await.unwrap(), 0);
        let mut config = compact_config();
        config.cleanup_policy = CleanupPolicy::DELETE;
        log.set_config(config.clone()).unwrap();
        assert!(!log.clean_due(TS));
        config.cleanup_policy = CleanupPolicy { delete: true, compact: true };
        // Kafka cleans when the dirty ratio is *above* the minimum: never by ratio at 1.0.
        config.min_cleanable_dirty_ratio = 1.0;
        log.set_config(config.clone()).unwrap();
        assert!(!log.clean_due(TS));
        config.min_cleanable_dirty_ratio = 0.99;
        log.set_config(config.clone()).unwrap();
        assert!(log.clean_due(TS));
        // min.compaction.lag.ms: segments with records younger than the lag are not cleaned.
        config.min_compaction_lag_ms = 10_000;
        log.set_config(config).unwrap();
        assert!(!log.clean_due(TS + 5_000));
        assert_eq!(log.clean(TS + 5_000, 1 << 20).await.unwrap().segments_cleaned, 0);
        assert!(log.clean_due(TS + 20_000));
        log.close().await.unwrap();
    });
}

#[test]
fn tombstones_stay_for_delete_retention_ms_then_go() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), compact_config(), None, None).await.unwrap();
        let c = Compression::None;
        log.append(keyed_batch(c, &[("k1", Some("v1")), ("k2", Some("v2"))], TS), 0, TS).await.unwrap();
        log.append(keyed_batch(c, &[("k1", None)], TS + 10), 0, TS).await.unwrap();
        log.append(keyed_batch(c, &[("k3", Some("v3"))], TS + 20), 0, TS).await.unwrap();
        // Before delete.retention.ms (1000) passed: the tombstone stays, k1's value goes.
        let stats = log.clean(TS + 500, 1 << 20).await.unwrap();
        assert_eq!((stats.records_removed, stats.tombstones_removed), (1, 0));
        let s = |o: i64, k: &str, v: Option<&str>| (o, Some(k.to_string()), v.map(str::to_string));
        assert_eq!(
            read_records(&log).await,
            vec![s(1, "k2", Some("v2")), s(2, "k1", None), s(3, "k3", Some("v3"))]
        );
        // New dirty data triggers the next pass; now the tombstone is past its retention.
        log.append(keyed_batch(c, &[("k4", Some("v4"))], TS + 30), 0, TS).await.unwrap();
        let stats = log.clean(TS + 2_000, 1 << 20).await.unwrap();
        assert_eq!((stats.records_removed, stats.tombstones_removed), (1, 1));
        assert_eq!(
            read_records(&log).await,
            vec![s(1, "k2", Some("v2")), s(3, "k3", Some("v3")), s(4, "k4", Some("v4"))]
        );
        log.close().await.unwrap();
    });
}

#[test]
fn compressed_batches_are_rebuilt_with_their_codec_offsets_and_producer_fields() {
    for codec in [Compression::Gzip, Compression::Zstd] {
        run(move || async move {
            let dir = tempfile::tempdir().unwrap();
            let mut log = PartitionLog::open(dir.path(), compact_config(), None, None).await.unwrap();
            let mut first = RecordBatchBuilder::new(0, codec).partition_leader_epoch(-1).producer(42, 3, 100);
            for (i, key) in ["a", "b", "c", "d"].iter().enumerate() {
                first.push(TS + i as i64, Some(key.as_bytes()), Some(b"old"), &[]).unwrap();
            }
            log.append(first.build().unwrap(), 7, TS).await.unwrap();
            log.append(keyed_batch(codec, &[("b", Some("new")), ("d", Some("new"))], TS + 9), 0, TS)
                .await
                .unwrap();
            log.append(keyed_batch(codec, &[("z", Some("tail"))], TS + 9), 0, TS).await.unwrap();
            let stats = log.clean(TS + 10, 1 << 20).await.unwrap();
            assert_eq!(stats.records_removed, 2);

            let info = log.read(0, 1 << 20, log.log_end_offset(), true).await.unwrap();
            let bytes = read_all(&info).await;
            let (_, rebuilt) = BatchIter::new(&bytes, usize::MAX).next().unwrap().unwrap();
            let rebuilt = RecordBatch::validate(rebuilt.as_bytes(), usize::MAX).expect("CRC valid");
            assert_eq!(rebuilt.compression(), codec);
            assert_eq!((rebuilt.base_offset(), rebuilt.record_count()), (0, 2));
            assert_eq!(
                (rebuilt.producer_id(), rebuilt.producer_epoch(), rebuilt.base_sequence()),
                (42, 3, 100)
            );
            assert_eq!(rebuilt.partition_leader_epoch(), 7);
            let records = Records::decode(rebuilt, 1 << 20).unwrap();
            let kept: Vec<_> =
                records.iter().map(|r| r.unwrap()).map(|r| (r.offset, r.timestamp, r.sequence)).collect();
            // a@0 and c@2 stay with their timestamps and sequences; b@1 and d@3 went.
            assert_eq!(kept, vec![(0, TS, 100), (2, TS + 2, 102)]);
            let all = read_records(&log).await;
            assert_eq!(all.iter().map(|r| r.0).collect::<Vec<_>>(), vec![0, 2, 4, 5, 6]);
            log.close().await.unwrap();
        });
    }
}

/// A pass whose `.cleaned` files are written but not swapped in: as a crash leaves them.
async fn leave_cleaned_files(log: &PartitionLog) {
    let plan = log.plan_clean(TS, 1 << 20).expect("something to clean");
    let cleaned = plan.build().await.unwrap();
    drop(cleaned);
}

#[test]
fn a_crash_before_the_swap_leaves_the_old_segments() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = course_example_log(dir.path(), Compression::Gzip).await;
        let before = read_records(&log).await;
        leave_cleaned_files(&log).await;
        assert_eq!(files_with_suffix(dir.path(), ".cleaned").len(), 4);
        drop(log); // no close: a crash
        let log = PartitionLog::open(dir.path(), compact_config(), None, None).await.unwrap();
        assert!(files_with_suffix(dir.path(), ".cleaned").is_empty());
        assert_eq!(read_records(&log).await, before);
        log.close().await.unwrap();
    });
}

#[test]
fn a_crash_after_the_commit_point_completes_the_swap() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = course_example_log(dir.path(), Compression::Zstd).await;
        leave_cleaned_files(&log).await;
        for name in files_with_suffix(dir.path(), ".cleaned") {
            let swap = name.replace(".cleaned", ".swap");
            std::fs::rename(dir.path().join(&name), dir.path().join(swap)).unwrap();
        }
        drop(log);
        let log = PartitionLog::open(dir.path(), compact_config(), None, None).await.unwrap();
        assert!(files_with_suffix(dir.path(), ".swap").is_empty());
        assert_eq!(read_records(&log).await, expected_course_result());
        assert_eq!(log.log_end_offset(), 9);
        log.close().await.unwrap();
    });
}

#[test]
fn a_crash_in_the_middle_of_the_renames_leaves_a_consistent_log() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let log = course_example_log(dir.path(), Compression::None).await;
        let before = read_records(&log).await;
        leave_cleaned_files(&log).await;
        // The renames go in offset order: the first two made it to `.swap`.
        for name in files_with_suffix(dir.path(), ".cleaned").iter().take(2) {
            let swap = name.replace(".cleaned", ".swap");
            std::fs::rename(dir.path().join(name), dir.path().join(swap)).unwrap();
        }
        drop(log);
        let log = PartitionLog::open(dir.path(), compact_config(), None, None).await.unwrap();
        assert!(files_with_suffix(dir.path(), ".cleaned").is_empty());
        let after = read_records(&log).await;
        assert!(offsets_increase(&after));
        assert_eq!(latest(&after), latest(&before));
        assert!(after.len() < before.len());
        // The next pass finishes the job.
        let mut log = log;
        log.clean(TS, 1 << 20).await.unwrap();
        assert_eq!(read_records(&log).await, expected_course_result());
        log.close().await.unwrap();
    });
}

#[test]
fn a_small_dedupe_buffer_cleans_in_several_passes() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig { segment_bytes: 300, ..compact_config() };
        let mut log = PartitionLog::open(dir.path(), config, None, None).await.unwrap();
        let mut n = 0;
        for _ in 0..10 {
            let owned: Vec<(String, String)> = (0..10)
                .map(|_| {
                    n += 1;
                    (format!("key-{:02}", n % 25), format!("v{n}"))
                })
                .collect();
            let records: Vec<(&str, Option<&str>)> =
                owned.iter().map(|(k, v)| (k.as_str(), Some(v.as_str()))).collect();
            log.append(keyed_batch(Compression::Lz4, &records, TS), 0, TS).await.unwrap();
        }
        // Larger than a segment: it rolls, so every keyed batch is in a sealed segment.
        let tail = "t".repeat(400);
        log.append(keyed_batch(Compression::None, &[("tail", Some(&tail))], TS), 0, TS).await.unwrap();
        let before = read_records(&log).await;
        let first_uncleanable = log.segments().last().unwrap().base_offset();

        // Room for 12 keys of 6 bytes: one batch's 10 new keys fit, two batches' do not.
        let budget = 12 * (6 + shardlog_storage::log_cleaner::MAP_ENTRY_OVERHEAD_BYTES);
        let stats = log.clean(TS, budget).await.unwrap();
        assert!(stats.map_full);
        assert!(stats.map_keys <= 12);
        assert!(stats.cleaned_up_to < first_uncleanable);
        assert_eq!(log.first_uncleaned_offset(), stats.cleaned_up_to);
        let partial = read_records(&log).await;
        assert!(partial.len() > 25, "one pass cannot finish: {} records left", partial.len());

        let mut passes = 1;
        while log.first_uncleaned_offset() < first_uncleanable {
            let stats = log.clean(TS, budget).await.unwrap();
            assert!(stats.map_keys <= 12);
            passes += 1;
            assert!(passes < 20);
        }
        let after = read_records(&log).await;
        assert!(passes > 2);
        assert_eq!(after.len(), 26, "passes {passes}");
        assert!(offsets_increase(&after));
        assert_eq!(latest(&after), latest(&before));
        log.close().await.unwrap();
    });
}

#[test]
fn a_pass_is_dropped_when_the_log_changed_under_it() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = course_example_log(dir.path(), Compression::None).await;
        let before = read_records(&log).await;
        let cleaned = log.plan_clean(TS, 1 << 20).unwrap().build().await.unwrap();
        // DeleteRecords removes the first segment meanwhile.
        log.set_high_watermark(9);
        log.delete_records_before(3, TS).await.unwrap();
        let stats = log.install_cleaned(cleaned).await.unwrap();
        assert!(stats.aborted);
        assert!(files_with_suffix(dir.path(), ".cleaned").is_empty());
        assert_eq!(read_records(&log).await, before[3..].to_vec());
        log.close().await.unwrap();
    });
}

fn idempotent_batch(producer_id: i64, base_sequence: i32, records: &[(&str, &str)]) -> Vec<u8> {
    let mut builder = RecordBatchBuilder::new(0, Compression::Lz4).partition_leader_epoch(-1).producer(
        producer_id,
        0,
        base_sequence,
    );
    for (key, value) in records {
        builder.push(TS, Some(key.as_bytes()), Some(value.as_bytes()), &[]).unwrap();
    }
    builder.build().unwrap()
}

/// Kafka keeps an idempotent producer's last batch as an empty batch when the cleaner removes
/// all its records, and keeps a rebuilt batch's last offset: producer state rebuilt from the
/// cleaned log still knows the last sequence, and a retry of that batch is a duplicate.
#[test]
fn a_producers_last_batch_is_kept_empty_and_rebuilt_batches_keep_their_last_offset() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = PartitionLog::open(dir.path(), compact_config(), None, None).await.unwrap();
        // Producer 7: seq 0-1 at offsets 0-1, then its last batch, seq 2-3 at offsets 2-3.
        log.append(idempotent_batch(7, 0, &[("k2", "a"), ("k1", "a")]), 0, TS).await.unwrap();
        let last = idempotent_batch(7, 2, &[("k3", "a"), ("k4", "a")]);
        log.append(last.clone(), 0, TS).await.unwrap();
        // A plain producer supersedes k1, k3 and k4; then a tail so all of it is sealed.
        log.append(
            keyed_batch(Compression::None, &[("k1", Some("b")), ("k3", Some("b")), ("k4", Some("b"))], TS),
            0,
            TS,
        )
        .await
        .unwrap();
        log.append(keyed_batch(Compression::None, &[("tail", Some("t"))], TS), 0, TS).await.unwrap();

        let mut plan = log.plan_clean(TS, 1 << 20).unwrap();
        plan.retain_producer_last_batches([(7, 3)]);
        let stats = log.install_cleaned(plan.build().await.unwrap()).await.unwrap();
        assert_eq!((stats.records_removed, stats.empty_batches_kept), (3, 1));

        let info = log.read(0, 1 << 20, log.log_end_offset(), true).await.unwrap();
        let bytes = read_all(&info).await;
        let batches: Vec<RecordBatch> = BatchIter::new(&bytes, usize::MAX)
            .map(|b| RecordBatch::validate(b.unwrap().1.as_bytes(), usize::MAX).expect("CRC valid"))
            .collect();
        let shape = |b: &RecordBatch| (b.base_offset(), b.last_offset(), b.record_count(), b.last_sequence());
        // The first batch lost its last record (k1@1) but still ends at offset 1, sequence 1.
        assert_eq!(shape(&batches[0]), (0, 1, 1, 1));
        // The last batch lost both records and is kept as a header: offsets 2-3, sequence 2-3.
        assert_eq!(shape(&batches[1]), (2, 3, 0, 3));
        assert_eq!(
            (batches[1].producer_id(), batches[1].producer_epoch(), batches[1].base_sequence()),
            (7, 0, 2)
        );
        assert_eq!(batches.len(), 4);
        assert_eq!(read_records(&log).await.iter().map(|r| r.0).collect::<Vec<_>>(), vec![0, 4, 5, 6, 7]);

        // Producer state replayed from the cleaned log (as after a restart) deduplicates a retry
        // of the last batch and accepts the next sequence.
        let mut producers = shardlog_storage::producer_state::ProducerStateManager::new();
        for batch in &batches {
            producers.replay(batch);
        }
        let retry = RecordBatch::validate(&last, usize::MAX).unwrap();
        assert!(matches!(
            producers.check(&retry).unwrap(),
            shardlog_storage::producer_state::ProducerCheck::Duplicate {
                first_offset: 2,
                last_offset: 3,
                ..
            }
        ));
        let next = idempotent_batch(7, 4, &[("k5", "a")]);
        let next = RecordBatch::validate(&next, usize::MAX).unwrap();
        assert_eq!(producers.check(&next).unwrap(), shardlog_storage::producer_state::ProducerCheck::Append);

        // A later pass that is not told the batch is the producer's last drops it.
        log.append(keyed_batch(Compression::None, &[("k2", Some("b"))], TS), 0, TS).await.unwrap();
        log.append(keyed_batch(Compression::None, &[("tail2", Some("t"))], TS), 0, TS).await.unwrap();
        log.set_first_uncleaned_offset(0);
        log.clean(TS, 1 << 20).await.unwrap();
        assert_eq!(read_records(&log).await.iter().map(|r| r.0).collect::<Vec<_>>(), vec![4, 5, 6, 7, 8, 9]);
        log.close().await.unwrap();
    });
}

/// `max.compaction.lag.ms`: a log whose oldest dirty batch is older than the lag is cleaned
/// even when its dirty ratio never would be (Kafka's `maxCompactionDelay`), and a compacted
/// log rolls its active segment by the lag too (Kafka's `maxSegmentMs`).
#[test]
fn max_compaction_lag_cleans_below_the_dirty_ratio_and_rolls_the_active_segment() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let config = LogConfig {
            segment_bytes: 1 << 20,
            min_cleanable_dirty_ratio: 1.0,
            max_compaction_lag_ms: 1_000,
            ..compact_config()
        };
        let mut log = PartitionLog::open(dir.path(), config, None, None).await.unwrap();
        log.append(keyed_batch(Compression::None, &[("k", Some("1"))], TS), 0, TS).await.unwrap();
        log.append(keyed_batch(Compression::None, &[("k", Some("2"))], TS + 500), 0, TS + 500).await.unwrap();
        assert_eq!(log.segments().len(), 1, "within the lag: no roll");
        // A batch 1.5 s after the segment's first one rolls it (segment.ms alone is 7 days).
        log.append(keyed_batch(Compression::None, &[("k", Some("3"))], TS + 1_500), 0, TS + 1_500)
            .await
            .unwrap();
        assert_eq!(log.segments().len(), 2);
        assert_eq!(log.segments()[1].base_offset(), 2);

        assert_eq!(log.cleanable_dirty_ratio(TS + 1_500), 1.0);
        assert_eq!(log.max_compaction_delay_ms(TS + 1_000), 0);
        assert!(!log.clean_due(TS + 1_000), "not overdue and the ratio is not above 1.0");
        assert_eq!(log.max_compaction_delay_ms(TS + 1_600), 600);
        assert!(log.clean_due(TS + 1_600));
        log.clean(TS + 1_600, 1 << 20).await.unwrap();
        assert_eq!(
            read_records(&log).await,
            vec![(1, Some("k".into()), Some("2".into())), (2, Some("k".into()), Some("3".into()))]
        );
        assert!(!log.clean_due(TS + 10_000), "nothing dirty is left in sealed segments");

        // Without compaction the lag does not shorten segment.ms.
        let mut plain = log.config().clone();
        plain.cleanup_policy = CleanupPolicy::DELETE;
        assert_eq!(plain.max_segment_ms(), plain.segment_ms);
        log.close().await.unwrap();
    });
}

/// The swap goes one segment per step, so the owner can let produce and fetch in between:
/// after every step the log reads consistently (offsets increase, the latest value of every
/// key is there), appends in between are kept, and the checkpoint moves only at the end.
#[test]
fn a_pass_is_swapped_in_one_segment_per_step_with_a_consistent_log_between_steps() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = course_example_log(dir.path(), Compression::None).await;
        let before = latest(&read_records(&log).await);
        let mut cleaned = log.plan_clean(TS, 1 << 20).unwrap().build().await.unwrap();
        let mut steps = 0;
        let stats = loop {
            let step = log.install_cleaned_step(&mut cleaned).await.unwrap();
            steps += 1;
            let now = read_records(&log).await;
            assert!(offsets_increase(&now));
            let mut want = before.clone();
            if steps > 1 {
                want.insert("user-5".into(), (9, Some("between".into())));
            }
            assert_eq!(latest(&now), want, "after step {steps}");
            if let Some(stats) = step {
                break stats;
            }
            assert_eq!(log.first_uncleaned_offset(), 0, "the checkpoint waits for the whole pass");
            if steps == 1 {
                log.append(keyed_batch(Compression::None, &[("user-5", Some("between"))], TS), 0, TS)
                    .await
                    .unwrap();
            }
        };
        assert_eq!(stats.segments_cleaned, steps - 1);
        assert!(stats.segments_cleaned >= 4 && !stats.aborted);
        assert_eq!(log.first_uncleaned_offset(), stats.cleaned_up_to);
        let mut want = expected_course_result();
        want.push((9, Some("user-5".into()), Some("between".into())));
        assert_eq!(read_records(&log).await, want);
        log.close().await.unwrap();
    });
}

/// A truncation below the cleaner's progress moves it back (Kafka's
/// `maybeTruncateCheckpoint`): records appended again at those offsets are dirty.
#[test]
fn a_truncation_moves_the_cleaner_progress_back() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = course_example_log(dir.path(), Compression::None).await;
        log.clean(TS, 1 << 20).await.unwrap();
        assert_eq!(log.first_uncleaned_offset(), 8);
        log.truncate_to(6).await.unwrap();
        assert_eq!(log.first_uncleaned_offset(), log.log_end_offset());
        assert!(log.first_uncleaned_offset() <= 6);
        log.close().await.unwrap();
    });
}

/// Descriptors of this process that still point at a removed file under `dir`.
fn open_removed_files(dir: &Path) -> Vec<String> {
    let prefix = dir.to_string_lossy().into_owned();
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .map(|target| target.to_string_lossy().into_owned())
        .filter(|t| t.starts_with(&prefix) && t.ends_with(" (deleted)"))
        .collect()
}

#[test]
fn every_file_of_a_replaced_segment_is_released() {
    run(|| async {
        let dir = tempfile::tempdir().unwrap();
        let mut log = course_example_log(dir.path(), Compression::None).await;
        let stats = log.clean(TS, 1 << 20).await.unwrap();
        assert_eq!(stats.segments_cleaned, 4);
        // The swap unlinked the old files; their last descriptors are closed asynchronously
        // (on glommio's blocking thread, which this test cannot see). None may leak.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while !open_removed_files(dir.path()).is_empty() && std::time::Instant::now() < deadline {
            glommio::timer::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(open_removed_files(dir.path()), Vec::<String>::new());
        assert_eq!(read_records(&log).await, expected_course_result());
        log.close().await.unwrap();
    });
}
