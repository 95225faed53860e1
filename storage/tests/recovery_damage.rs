//! Damage tests: a `.log` cut at every byte of its last batch, flipped bytes in the tail,
//! deleted, shortened or garbled indexes, cleaner and deletion leftovers. Reopening must keep
//! every batch before the damage and nothing after, leave indexes that serve a read at every
//! offset and an offsets-by-time lookup for every batch, and never panic.

mod common;

use std::path::Path;

use proptest::prelude::*;
use shardlog_storage::log_config::LogConfig;
use shardlog_storage::partition_log::PartitionLog;
use shardlog_storage::record_batch::RecordBatch;

#[derive(Debug, Clone)]
struct Stored {
    base_offset: i64,
    last_offset: i64,
    max_timestamp: i64,
    position_in_log: usize,
    bytes: Vec<u8>,
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 700,
        index_interval_bytes: 60,
        file_delete_delay_ms: 0,
        ..LogConfig::default()
    }
}

/// Appends `count` batches of varying sizes with increasing timestamps, closes the log, and
/// returns the stored batches (positions are within each batch's segment).
async fn build_log(dir: &Path, config: &LogConfig, count: usize) -> Vec<Stored> {
    let mut log = PartitionLog::open(dir, config.clone(), None, None).await.unwrap();
    for i in 0..count {
        let batch = common::batch(1 + i % 3, 10 + (i * 13) % 70, common::TS + 10 * i as i64, i as u8);
        log.append(batch, 1, common::TS).await.unwrap();
    }
    let mut stored = Vec::new();
    for segment in log.segments() {
        let mut position = 0;
        let bytes = std::fs::read(segment.log_path()).unwrap();
        while position < bytes.len() {
            let batch = RecordBatch::validate(&bytes[position..], usize::MAX).unwrap();
            stored.push(Stored {
                base_offset: batch.base_offset(),
                last_offset: batch.last_offset(),
                max_timestamp: batch.max_timestamp(),
                position_in_log: position,
                bytes: batch.as_bytes().to_vec(),
            });
            position += batch.size_bytes();
        }
    }
    log.close().await.unwrap();
    stored
}

/// The log holds exactly `kept` and its indexes serve every offset and every timestamp.
async fn check_log(log: &PartitionLog, kept: &[Stored]) {
    let log_end = kept.last().map_or(0, |b| b.last_offset + 1);
    assert_eq!(log.log_end_offset(), log_end);
    let all = log.read(0, usize::MAX >> 1, i64::MAX, true).await.unwrap();
    let expected: Vec<u8> = kept.iter().flat_map(|b| b.bytes.clone()).collect();
    assert_eq!(common::read_all(&all).await, expected, "log content");
    for batch in kept {
        for offset in batch.base_offset..=batch.last_offset {
            let info = log.read(offset, 1, log_end, true).await.unwrap();
            assert_eq!(common::read_all(&info).await, batch.bytes, "read at {offset}");
        }
        let found = log.offset_for_timestamp(batch.max_timestamp).await.unwrap().expect("found by time");
        assert_eq!(found.offset, batch.base_offset, "offset for timestamp {}", batch.max_timestamp);
    }
    assert!(log.offset_for_timestamp(i64::MAX).await.unwrap().is_none());
}

/// Copies every file of `from` into a fresh directory `to`.
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

#[test]
fn a_log_cut_at_every_byte_of_its_last_batch_keeps_every_earlier_batch() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let original = tmp.path().join("original");
        let config = LogConfig { segment_bytes: 1 << 20, ..config() };
        let stored = build_log(&original, &config, 12).await;
        let log_name = "00000000000000000000.log";
        let log_bytes = std::fs::read(original.join(log_name)).unwrap();
        let last = stored.last().unwrap();
        for cut in last.position_in_log..log_bytes.len() {
            for recovery_point in [None, Some(last.last_offset + 1)] {
                let dir = tmp.path().join(format!("cut-{cut}-{}", recovery_point.is_some()));
                copy_dir(&original, &dir);
                std::fs::write(dir.join(log_name), &log_bytes[..cut]).unwrap();
                let mut log = PartitionLog::open(&dir, config.clone(), recovery_point, None).await.unwrap();
                check_log(&log, &stored[..stored.len() - 1]).await;
                assert_eq!(std::fs::metadata(dir.join(log_name)).unwrap().len(), last.position_in_log as u64);
                // The repaired log takes appends and reopens cleanly.
                log.append(common::batch(1, 5, common::TS, 0), 1, common::TS).await.unwrap();
                let log_end = log.log_end_offset();
                log.close().await.unwrap();
                let log = PartitionLog::open(&dir, config.clone(), Some(log_end), None).await.unwrap();
                assert_eq!(log.log_end_offset(), log_end);
                log.close().await.unwrap();
                std::fs::remove_dir_all(&dir).unwrap();
            }
        }
    });
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// A flipped byte anywhere the CRC or the framing covers (all but `baseOffset` and
    /// `partitionLeaderEpoch`, which Kafka leaves outside the CRC) in one of the last batches
    /// drops that batch and everything after it, even in an earlier segment.
    #[test]
    fn a_flipped_byte_drops_its_batch_and_everything_after(
        from_end in 1usize..6, at in any::<u16>(), xor in 1u8..=255, recover_all in any::<bool>(),
    ) {
        common::run(move || async move {
            let tmp = tempfile::tempdir().unwrap();
            let dir = tmp.path().join("t-0");
            let stored = build_log(&dir, &config(), 20).await;
            let victim = &stored[stored.len() - from_end];
            let covered: Vec<usize> = (8..12).chain(16..victim.bytes.len()).collect();
            let flip_at = covered[at as usize % covered.len()];
            let segment = std::fs::read_dir(&dir).unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|e| e == "log"))
                .find(|p| std::fs::read(p).unwrap().windows(victim.bytes.len()).any(|w| w == victim.bytes))
                .expect("the victim's segment");
            let mut bytes = std::fs::read(&segment).unwrap();
            bytes[victim.position_in_log + flip_at] ^= xor;
            std::fs::write(&segment, bytes).unwrap();
            // Recovering from the start re-validates every CRC; from a recovery point before the
            // victim, only the segments after it.
            let recovery_point = if recover_all { None } else { Some(victim.base_offset) };
            let log = PartitionLog::open(&dir, config(), recovery_point, None).await.unwrap();
            let kept: Vec<Stored> = stored.iter().filter(|b| b.base_offset < victim.base_offset).cloned().collect();
            check_log(&log, &kept).await;
            log.close().await.unwrap();
        });
    }
}

#[derive(Debug, Clone, Copy)]
enum IndexDamage {
    Delete,
    CutMidEntry,
    DropLastEntry,
    Garble,
    Zero,
    AppendGarbage,
}

impl IndexDamage {
    /// Whether reopening from a clean recovery point must notice and rebuild.
    fn must_rebuild(self) -> bool {
        !matches!(self, IndexDamage::DropLastEntry)
    }

    fn apply(self, path: &Path) {
        let bytes = std::fs::read(path).unwrap();
        match self {
            IndexDamage::Delete => std::fs::remove_file(path).unwrap(),
            IndexDamage::CutMidEntry => std::fs::write(path, &bytes[..bytes.len() - 3]).unwrap(),
            IndexDamage::DropLastEntry => {
                let entry_bytes = if path.to_string_lossy().ends_with(".timeindex") { 12 } else { 8 };
                std::fs::write(path, &bytes[..bytes.len() - entry_bytes]).unwrap();
            }
            IndexDamage::Garble => std::fs::write(path, vec![0xA5; bytes.len()]).unwrap(),
            IndexDamage::Zero => std::fs::write(path, vec![0; bytes.len()]).unwrap(),
            IndexDamage::AppendGarbage => {
                let mut longer = bytes.clone();
                longer.extend([0x5A; 24]);
                std::fs::write(path, longer).unwrap();
            }
        }
    }
}

#[test]
fn damaged_indexes_are_rebuilt_and_serve_every_offset() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let original = tmp.path().join("original");
        let stored = build_log(&original, &config(), 40).await;
        let log_end = stored.last().unwrap().last_offset + 1;
        let mut index_files: Vec<String> = common::file_names(&original)
            .into_iter()
            .filter(|n| n.ends_with(".index") || n.ends_with(".timeindex"))
            .collect();
        assert!(index_files.len() >= 6, "want several segments: {index_files:?}");
        // The first, a middle and the last segment's indexes.
        let middle = index_files.len() / 2 / 2 * 2;
        index_files = vec![
            index_files[0].clone(),
            index_files[1].clone(),
            index_files[middle].clone(),
            index_files[middle + 1].clone(),
            index_files[index_files.len() - 2].clone(),
            index_files[index_files.len() - 1].clone(),
        ];
        let damages = [
            IndexDamage::Delete,
            IndexDamage::CutMidEntry,
            IndexDamage::DropLastEntry,
            IndexDamage::Garble,
            IndexDamage::Zero,
            IndexDamage::AppendGarbage,
        ];
        for name in &index_files {
            let original_index = std::fs::read(original.join(name)).unwrap();
            let entry_bytes = if name.ends_with(".timeindex") { 12 } else { 8 };
            assert!(!original_index.is_empty(), "{name} should hold entries");
            for damage in damages {
                // A single all-zero entry is a plausible entry (a short index, which Kafka
                // cannot tell either); from two entries on, zeros are not increasing.
                if matches!(damage, IndexDamage::Zero) && original_index.len() < 2 * entry_bytes {
                    continue;
                }
                for recovery_point in [Some(log_end), None] {
                    let dir = tmp.path().join("damaged");
                    copy_dir(&original, &dir);
                    damage.apply(&dir.join(name));
                    let log = PartitionLog::open(&dir, config(), recovery_point, None).await.unwrap();
                    check_log(&log, &stored).await;
                    log.close().await.unwrap();
                    if damage.must_rebuild() || recovery_point.is_none() {
                        let rebuilt = std::fs::read(dir.join(name)).unwrap();
                        assert_eq!(
                            rebuilt, original_index,
                            "{name} after {damage:?}, recovery point {recovery_point:?}"
                        );
                    }
                    std::fs::remove_dir_all(&dir).unwrap();
                }
            }
        }
    });
}

#[test]
fn rebuilt_indexes_are_the_indexes_appends_wrote() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t-0");
        let stored = build_log(&dir, &config(), 40).await;
        let before: Vec<(String, Vec<u8>)> = common::file_names(&dir)
            .into_iter()
            .map(|n| (n.clone(), std::fs::read(dir.join(&n)).unwrap()))
            .collect();
        let log = PartitionLog::open(&dir, config(), None, None).await.unwrap();
        check_log(&log, &stored).await;
        log.close().await.unwrap();
        let after: Vec<(String, Vec<u8>)> = common::file_names(&dir)
            .into_iter()
            .map(|n| (n.clone(), std::fs::read(dir.join(&n)).unwrap()))
            .collect();
        assert_eq!(before, after);
    });
}

#[test]
fn a_corrupt_batch_in_an_early_segment_drops_every_later_segment() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t-0");
        let stored = build_log(&dir, &config(), 40).await;
        let logs: Vec<String> =
            common::file_names(&dir).into_iter().filter(|n| n.ends_with(".log")).collect();
        assert!(logs.len() >= 4, "{logs:?}");
        let victim_base: i64 = logs[1].trim_end_matches(".log").parse().unwrap();
        let path = dir.join(&logs[1]);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[30] ^= 0xFF; // inside the CRC of the segment's first batch
        std::fs::write(&path, bytes).unwrap();
        let log = PartitionLog::open(&dir, config(), None, None).await.unwrap();
        let kept: Vec<Stored> = stored.iter().filter(|b| b.base_offset < victim_base).cloned().collect();
        check_log(&log, &kept).await;
        assert_eq!(log.segments().len(), 2);
        log.close().await.unwrap();
        let names = common::file_names(&dir);
        assert_eq!(names.iter().filter(|n| n.ends_with(".log")).count(), 2, "{names:?}");
    });
}

#[test]
fn garbage_zeros_and_empty_files_open_as_the_valid_prefix() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let config = config();
        let name = "00000000000000000000.log";
        let valid = common::batch(2, 20, common::TS, 1);
        let mut valid_stored = valid.clone();
        shardlog_storage::record_batch::rewrite::set_base_offset(&mut valid_stored, 0);
        let cases: Vec<(&str, Vec<u8>, usize)> = vec![
            ("garbage", (0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect(), 0),
            ("empty", Vec::new(), 0),
            ("zero-tail", [valid.clone(), vec![0; 4096]].concat(), 1),
            (
                "huge-length",
                [valid.clone(), vec![0, 0, 0, 0, 0, 0, 0, 2, 0x7F, 0xFF, 0xFF, 0xFF]].concat(),
                1,
            ),
            (
                "negative-length",
                [valid.clone(), vec![0, 0, 0, 0, 0, 0, 0, 2, 0xFF, 0xFF, 0xFF, 0xF0]].concat(),
                1,
            ),
        ];
        for (label, bytes, kept_batches) in cases {
            let dir = tmp.path().join(label);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(name), &bytes).unwrap();
            for recovery_point in [None, Some(i64::MAX)] {
                let log = PartitionLog::open(&dir, config.clone(), recovery_point, None).await.unwrap();
                let all =
                    common::read_all(&log.read(0, usize::MAX >> 1, i64::MAX, true).await.unwrap()).await;
                let expected = if kept_batches == 1 { valid.clone() } else { Vec::new() };
                assert_eq!(common::batch_offsets(&all), common::batch_offsets(&expected), "{label}");
                assert_eq!(log.log_end_offset(), if kept_batches == 1 { 2 } else { 0 }, "{label}");
                log.close().await.unwrap();
            }
        }
    });
}

#[test]
fn deletion_and_cleaner_leftovers_are_cleaned_up() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t-0");
        let stored = build_log(&dir, &config(), 10).await;
        for leftover in [
            "00000000000000000000.log.deleted",
            "00000000000000000000.index.deleted",
            "00000000000000000003.log.cleaned",
            "00000000000000000003.timeindex.cleaned",
            "00000000000000099999.index",
            "00000000000000099999.timeindex",
        ] {
            std::fs::write(dir.join(leftover), b"leftover").unwrap();
        }
        std::fs::write(dir.join("partition.metadata"), b"version: 0\n").unwrap();
        let log = PartitionLog::open(&dir, config(), Some(stored.last().unwrap().last_offset + 1), None)
            .await
            .unwrap();
        check_log(&log, &stored).await;
        log.close().await.unwrap();
        let names = common::file_names(&dir);
        assert!(
            names.iter().all(|n| !n.contains("deleted") && !n.contains("cleaned") && !n.contains("99999")),
            "{names:?}"
        );
        assert!(names.contains(&"partition.metadata".to_string()), "unknown files are left alone");
    });
}

#[test]
fn a_finished_swap_replaces_the_segments_it_covers() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("t-0");
        let stored = build_log(&dir, &config(), 30).await;
        let logs: Vec<String> =
            common::file_names(&dir).into_iter().filter(|n| n.ends_with(".log")).collect();
        assert!(logs.len() >= 3, "{logs:?}");
        // A cleaner's output covering the first two segments (here: their batches unchanged),
        // renamed to .swap; the crash came before the originals were deleted.
        let merged =
            [std::fs::read(dir.join(&logs[0])).unwrap(), std::fs::read(dir.join(&logs[1])).unwrap()].concat();
        std::fs::write(dir.join(format!("{}.swap", logs[0])), merged).unwrap();
        let log = PartitionLog::open(&dir, config(), None, None).await.unwrap();
        check_log(&log, &stored).await;
        log.close().await.unwrap();
        let names = common::file_names(&dir);
        assert!(!names.contains(&logs[1]), "the covered segment is gone: {names:?}");
        assert!(names.iter().all(|n| !n.ends_with(".swap")), "{names:?}");
    });
}
