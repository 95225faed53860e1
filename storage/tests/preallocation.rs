//! Blocks reserved ahead of the active segment's appends (`LogConfig::preallocate_step_bytes`):
//! reserved past the file's end while it is active, released when it is sealed (roll, close,
//! and after a crash left a reservation behind). The file's size is only ever what was
//! appended, so readers and recovery never see the reservation.
//!
//! On a file system without `fallocate` there is nothing to reserve: the tests say so and
//! check only that appends still read back.

mod common;

use std::os::unix::fs::MetadataExt;
use std::os::unix::io::AsRawFd;
use std::path::Path;

use shardlog_storage::log_config::LogConfig;

const STEP_BYTES: u64 = 1 << 20;
const BLOCK_BYTES: u64 = 4096;

/// Bytes of disk the file holds, reserved blocks included.
fn allocated_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat").blocks() * 512
}

fn size_bytes(path: &Path) -> u64 {
    std::fs::metadata(path).expect("stat").len()
}

/// Whether the file system of `dir` reserves blocks past a file's end.
fn can_reserve(dir: &Path) -> bool {
    let probe = dir.join("probe");
    let file = std::fs::File::create(&probe).expect("probe");
    // SAFETY: plain syscall on an open descriptor.
    let rc =
        unsafe { libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, STEP_BYTES as libc::off_t) };
    let reserved = rc == 0 && allocated_bytes(&probe) >= STEP_BYTES;
    drop(file);
    std::fs::remove_file(&probe).expect("remove probe");
    if !reserved {
        eprintln!("the file system of {dir:?} reserves no blocks past a file's end: checking reads only");
    }
    reserved
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 3 * STEP_BYTES as u32,
        preallocate_step_bytes: STEP_BYTES,
        ..LogConfig::default()
    }
}

/// No more blocks than the file's bytes need.
fn assert_nothing_reserved(path: &Path) {
    let size = size_bytes(path);
    assert!(
        allocated_bytes(path) <= size.next_multiple_of(BLOCK_BYTES),
        "{path:?}: {} bytes allocated for {size} bytes",
        allocated_bytes(path)
    );
}

#[test]
fn blocks_are_reserved_ahead_of_appends_and_released_on_roll_and_close() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let reserves = can_reserve(tmp.path());
        let dir = tmp.path().join("t-0");
        let mut log = common::open(&dir, config(), None).await;
        let first_log = dir.join("00000000000000000000.log");

        let mut appended = Vec::new();
        let first = common::batch(10, 1000, common::TS, 1);
        appended.push(log.append(first.clone(), 0, 0).await.unwrap());
        log.drain_writes().await.unwrap();
        assert_eq!(size_bytes(&first_log), first.len() as u64, "the size is what was appended");
        if reserves {
            assert!(allocated_bytes(&first_log) >= STEP_BYTES, "a step is reserved past the first append");
        }

        // ~10 KiB batches until the log rolls twice: each sealed segment gives back its rest.
        let mut seed = 2u8;
        while log.segments().len() < 3 {
            appended.push(log.append(common::batch(10, 1000, common::TS, seed), 0, 0).await.unwrap());
            seed = seed.wrapping_add(1);
        }
        log.drain_writes().await.unwrap();
        let active = log.segments()[2].log_path().to_path_buf();
        for segment in &log.segments()[..2] {
            assert!(segment.size_bytes() > 2 * STEP_BYTES, "the segment grew past two steps");
            assert_eq!(size_bytes(segment.log_path()), segment.size_bytes());
            assert_nothing_reserved(segment.log_path());
        }
        if reserves {
            assert!(allocated_bytes(&active) >= STEP_BYTES, "the new active segment reserves again");
        }

        let end = log.log_end_offset();
        let mut offsets = Vec::new();
        while offsets.last().map_or(0, |&(_, last)| last + 1) < end {
            let from = offsets.last().map_or(0, |&(_, last)| last + 1);
            let read = log.read(from, i32::MAX as usize, end, true).await.unwrap();
            let batches = common::batch_offsets(&common::read_all(&read).await);
            assert!(!batches.is_empty(), "a read at {from} below the end {end} returns batches");
            offsets.extend(batches);
        }
        let expected: Vec<(i64, i64)> = appended.iter().map(|a| (a.base_offset, a.last_offset)).collect();
        assert_eq!(offsets, expected, "reads see every batch, in order");

        log.close().await.unwrap();
        assert_nothing_reserved(&active);
        let reopened = common::open(&dir, config(), None).await;
        assert_eq!(reopened.log_end_offset(), end, "nothing appended is lost, nothing extra is read");
        reopened.close().await.unwrap();
    });
}

#[test]
fn blocks_reserved_before_a_crash_are_released_when_the_segment_is_sealed() {
    common::run(|| async {
        let tmp = tempfile::tempdir().unwrap();
        let reserves = can_reserve(tmp.path());
        let dir = tmp.path().join("t-0");
        let no_reservation = LogConfig { preallocate_step_bytes: 0, ..config() };
        let mut log = common::open(&dir, no_reservation.clone(), None).await;
        log.append(common::batch(10, 1000, common::TS, 1), 0, 0).await.unwrap();
        log.close().await.unwrap();
        let path = dir.join("00000000000000000000.log");
        let size = size_bytes(&path);

        // What a broker killed while the segment was active leaves: a reservation past the end.
        let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        // SAFETY: plain syscall on an open descriptor.
        let rc = unsafe {
            libc::fallocate(file.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, (4 * STEP_BYTES) as libc::off_t)
        };
        drop(file);
        if reserves {
            assert_eq!(rc, 0);
            assert!(allocated_bytes(&path) >= 4 * STEP_BYTES);
        }
        assert_eq!(size_bytes(&path), size);

        // Reserving nothing itself, the log still gives back what the crash left.
        let log = common::open(&dir, no_reservation, None).await;
        assert_eq!(log.log_end_offset(), 10);
        log.close().await.unwrap();
        assert_eq!(size_bytes(&path), size);
        assert_nothing_reserved(&path);
    });
}
