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

/// A small ext4 file system on a loop device, mounted for the test's lifetime (needs root and
/// `mkfs.ext4`: CI and the development machines have both; elsewhere the test says so and does
/// nothing). ext4, because a reservation that runs out of space keeps what it got there.
struct SmallDisk {
    dir: std::path::PathBuf,
    _tmp: tempfile::TempDir,
}

impl SmallDisk {
    fn mount_ext4(size_bytes: u64) -> Option<SmallDisk> {
        let tmp = tempfile::tempdir().unwrap();
        let image = tmp.path().join("disk.img");
        std::fs::File::create(&image).unwrap().set_len(size_bytes).unwrap();
        let dir = tmp.path().join("disk");
        std::fs::create_dir(&dir).unwrap();
        let quiet = |cmd: &mut std::process::Command| {
            cmd.stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        let formatted = quiet(std::process::Command::new("mkfs.ext4").args(["-q", "-F"]).arg(&image));
        let mounted = formatted
            && quiet(std::process::Command::new("mount").args(["-o", "loop"]).arg(&image).arg(&dir));
        mounted.then_some(SmallDisk { dir, _tmp: tmp })
    }

    /// Free bytes, the blocks ext4 keeps for root included (the tests run as root).
    fn free_bytes(&self) -> u64 {
        // SAFETY: `statvfs` writes into `stat` through a valid pointer, from a NUL-terminated path.
        let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
        let path = std::ffi::CString::new(self.dir.as_os_str().as_encoded_bytes()).unwrap();
        assert_eq!(unsafe { libc::statvfs(path.as_ptr(), &mut stat) }, 0);
        stat.f_bfree as u64 * stat.f_frsize as u64
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

#[test]
fn appends_go_on_when_the_disk_has_no_room_for_a_reservation() {
    let Some(disk) = SmallDisk::mount_ext4(16 * STEP_BYTES) else {
        eprintln!("cannot mount an ext4 image (not root, or no mkfs.ext4): nothing checked");
        return;
    };
    // Leave 2.5 MiB free: a 4 MiB reservation fails, keeping what it got on the way.
    let filler = disk.free_bytes() - 5 * STEP_BYTES / 2;
    std::fs::write(disk.dir.join("filler"), vec![0u8; filler as usize]).unwrap();
    let dir = disk.dir.join("t-0");
    common::run(move || async move {
        let config = LogConfig {
            segment_bytes: 8 * STEP_BYTES as u32,
            preallocate_step_bytes: 4 * STEP_BYTES,
            ..config()
        };
        let mut log = common::open(&dir, config.clone(), None).await;
        let path = dir.join("00000000000000000000.log");
        let mut last_offset =
            log.append(common::batch(10, 1000, common::TS, 0), 0, 0).await.unwrap().last_offset;
        log.drain_writes().await.unwrap();
        assert_nothing_reserved(&path); // what the failed reservation got is given back at once
        for seed in 1..150u8 {
            last_offset =
                log.append(common::batch(10, 1000, common::TS, seed), 0, 0).await.unwrap().last_offset;
        }
        log.close().await.unwrap();
        assert!(size_bytes(&path) > STEP_BYTES, "about 1.5 MiB appended");
        assert_nothing_reserved(&path);

        let log = common::open(&dir, config, None).await;
        assert_eq!(log.log_end_offset(), last_offset + 1, "every append is kept");
        log.close().await.unwrap();
    });
}
