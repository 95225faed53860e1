//! `dump-log` run in-process on batches Kafka's tool has special output (or no output) for:
//! log-append time, a delete horizon, unknown control records, unsupported magic.

use std::path::Path;

use shardlog_cli::dump_log::{run, DumpLogArgs};
use shardlog_storage::batch_builder::RecordBatchBuilder;
use shardlog_storage::record_batch::Compression;

fn dump(path: &Path, print_data_log: bool) -> (Vec<String>, String, bool) {
    let args = DumpLogArgs {
        files: vec![path.to_path_buf()],
        print_data_log,
        deep_iteration: false,
        skip_record_metadata: false,
        verify_index_only: false,
        max_bytes: None,
    };
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let outcome = run(&args, &mut out, &mut err).expect("writes to memory");
    let lines = String::from_utf8(out).unwrap().lines().map(str::to_string).collect();
    (lines, String::from_utf8(err).unwrap(), outcome.success())
}

fn segment(dir: &Path, batches: &[Vec<u8>]) -> std::path::PathBuf {
    let path = dir.join("00000000000000000000.log");
    std::fs::write(&path, batches.concat()).unwrap();
    path
}

#[test]
fn log_append_time_and_delete_horizon_are_printed_like_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = RecordBatchBuilder::new(0, Compression::Lz4).log_append_time(1_800_000_000_000);
    b.push(5, Some(b"k"), Some(b"v"), &[]).unwrap();
    let mut bytes = b.build().unwrap();
    // Set the delete-horizon attribute bit (0x40) and fix the CRC, as the cleaner would.
    bytes[22] |= 0x40;
    let crc = crc32c(&bytes[21..]);
    bytes[17..21].copy_from_slice(&crc.to_be_bytes());
    let (lines, err, ok) = dump(&segment(dir.path(), &[bytes]), true);
    assert!(ok && err.is_empty(), "{err}");
    assert!(lines[2].contains(" deleteHorizonMs: OptionalLong[5] position: 0 LogAppendTime: 1800000000000 "));
    assert!(lines[2].contains(" compresscodec: lz4 "));
    assert!(lines[2].ends_with(" isvalid: true"));
    // Record timestamps of a LogAppendTime batch are the batch's.
    assert_eq!(
        lines[3],
        "| offset: 0 LogAppendTime: 1800000000000 keySize: 1 valueSize: 1 sequence: -1 headerKeys: [] key: k payload: v"
    );
}

#[test]
fn unknown_control_records_and_invalid_markers() {
    let dir = tempfile::tempdir().unwrap();
    let mut leader_change = RecordBatchBuilder::new(0, Compression::None).control(true);
    leader_change.push(0, Some(&[0, 0, 0, 2]), Some(b"x"), &[]).unwrap();
    let mut short_marker = RecordBatchBuilder::new(1, Compression::None).control(true);
    short_marker.push(0, Some(&[0, 0, 0, 1]), Some(&[0, 0]), &[]).unwrap();
    let path = segment(dir.path(), &[leader_change.build().unwrap(), short_marker.build().unwrap()]);
    let (lines, err, ok) = dump(&path, true);
    assert!(ok);
    assert!(lines[3].ends_with("headerKeys: [] controlType: LEADER_CHANGE(2)"), "{}", lines[3]);
    // Kafka would throw; we print what we can and report the rest.
    assert!(lines[5].ends_with("headerKeys: []"), "{}", lines[5]);
    assert!(err.contains("invalid control record at offset 1"), "{err}");
}

#[test]
fn unsupported_magic_is_skipped_with_a_report() {
    let dir = tempfile::tempdir().unwrap();
    let mut b = RecordBatchBuilder::new(0, Compression::None);
    b.push(0, None, Some(b"v"), &[]).unwrap();
    let good = b.build().unwrap();
    let mut old = good.clone();
    old[16] = 1;
    let (lines, err, ok) = dump(&segment(dir.path(), &[old, good.clone()]), false);
    assert!(ok);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(
        lines[2].starts_with("baseOffset: 0 ") && lines[2].contains(&format!(" position: {} ", good.len()))
    );
    assert!(err.contains("magic 1 is not supported"), "{err}");
}

fn crc32c(bytes: &[u8]) -> u32 {
    // Bitwise CRC-32C, independent of the crate the code under test uses.
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= b as u32;
        for _ in 0..8 {
            crc = if crc & 1 != 0 { (crc >> 1) ^ 0x82F6_3B78 } else { crc >> 1 };
        }
    }
    !crc
}
