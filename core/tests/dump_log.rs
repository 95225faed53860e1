//! `shardlog dump-log`, run as the real binary on segment files built by hand (batches from
//! `RecordBatchBuilder` concatenated into a `.log`, index entries from `index_entry`). The
//! expected lines are Kafka 3.7's `kafka-dump-log.sh` format, field for field.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use shardlog_storage::batch_builder::RecordBatchBuilder;
use shardlog_storage::index_entry::{OffsetIndexEntry, TimeIndexEntry};
use shardlog_storage::record_batch::Compression;
use shardlog_storage::records::{EndTxnMarker, Header};

const T0: i64 = 1_700_000_000_000;

fn shardlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shardlog")).args(args).output().expect("runs shardlog")
}

fn stdout_lines(o: &Output) -> Vec<String> {
    String::from_utf8(o.stdout.clone()).expect("utf-8").lines().map(str::to_string).collect()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn crc(batch: &[u8]) -> u32 {
    let stored = u32::from_be_bytes([batch[17], batch[18], batch[19], batch[20]]);
    assert_eq!(stored, crc32c::crc32c(&batch[21..]), "builder wrote a valid CRC");
    stored
}

/// The four batches of the test segment, base offset 100.
struct Segment {
    batches: Vec<Vec<u8>>,
}

impl Segment {
    fn build() -> Segment {
        // 100..=102: plain, keys, a null key, a null value, headers.
        let mut a = RecordBatchBuilder::new(100, Compression::None);
        let h = [Header { key: b"a", value: Some(b"1") }, Header { key: b"b", value: None }];
        a.push(T0, Some(b"k"), Some(b"value"), &h).unwrap();
        a.push(T0 + 1, None, Some(b"no-key"), &[]).unwrap();
        a.push(T0 + 2, Some(b"tombstone"), None, &h[..1]).unwrap();
        // 103..=104: idempotent producer 7, gzip, leader epoch 5.
        let mut b =
            RecordBatchBuilder::new(103, Compression::Gzip).producer(7, 2, 10).partition_leader_epoch(5);
        b.push(T0 + 10, Some(b"g1"), Some(b"gzipped one"), &[]).unwrap();
        b.push(T0 + 11, Some(b"g2"), Some(b"gzipped two"), &[]).unwrap();
        // 105: zstd, transactional.
        let mut c = RecordBatchBuilder::new(105, Compression::Zstd).producer(8, 0, 0).transactional(true);
        c.push(T0 + 20, Some(b"z"), Some(b"zstd value"), &[]).unwrap();
        // 106: the COMMIT marker that ends producer 8's transaction.
        let (key, value) = EndTxnMarker { commit: true, coordinator_epoch: 3 }.encode();
        let mut d = RecordBatchBuilder::new(106, Compression::None)
            .producer(8, 0, -1)
            .transactional(true)
            .control(true);
        d.push(T0 + 30, Some(&key), Some(&value), &[]).unwrap();
        Segment { batches: [a, b, c, d].into_iter().map(|x| x.build().unwrap()).collect() }
    }

    fn bytes(&self) -> Vec<u8> {
        self.batches.concat()
    }

    fn position(&self, i: usize) -> usize {
        self.batches[..i].iter().map(Vec::len).sum()
    }

    /// The batch lines Kafka prints for this segment (with the CRCs of `batches`, which may
    /// have been damaged on purpose: `valid` says which ones still check out).
    fn batch_lines(&self, valid: [bool; 4]) -> Vec<String> {
        let fields = [
            "baseOffset: 100 lastOffset: 102 count: 3 baseSequence: -1 lastSequence: -1 producerId: -1 \
             producerEpoch: -1 partitionLeaderEpoch: 0 isTransactional: false isControl: false",
            "baseOffset: 103 lastOffset: 104 count: 2 baseSequence: 10 lastSequence: 11 producerId: 7 \
             producerEpoch: 2 partitionLeaderEpoch: 5 isTransactional: false isControl: false",
            "baseOffset: 105 lastOffset: 105 count: 1 baseSequence: 0 lastSequence: 0 producerId: 8 \
             producerEpoch: 0 partitionLeaderEpoch: 0 isTransactional: true isControl: false",
            "baseOffset: 106 lastOffset: 106 count: 1 baseSequence: -1 lastSequence: -1 producerId: 8 \
             producerEpoch: 0 partitionLeaderEpoch: 0 isTransactional: true isControl: true",
        ];
        let max_ts = [T0 + 2, T0 + 11, T0 + 20, T0 + 30];
        let codecs = ["none", "gzip", "zstd", "none"];
        (0..self.batches.len())
            .map(|i| {
                let b = &self.batches[i];
                let stored = u32::from_be_bytes([b[17], b[18], b[19], b[20]]);
                format!(
                    "{} deleteHorizonMs: OptionalLong.empty position: {} CreateTime: {} size: {} magic: 2 \
                     compresscodec: {} crc: {} isvalid: {}",
                    fields[i],
                    self.position(i),
                    max_ts[i],
                    b.len(),
                    codecs[i],
                    stored,
                    valid[i]
                )
            })
            .collect()
    }
}

/// Record lines with `--print-data-log`, per batch.
fn record_lines() -> Vec<Vec<String>> {
    vec![
        vec![
            format!("| offset: 100 CreateTime: {T0} keySize: 1 valueSize: 5 sequence: -1 headerKeys: [a,b] key: k payload: value"),
            format!("| offset: 101 CreateTime: {} keySize: -1 valueSize: 6 sequence: -1 headerKeys: [] payload: no-key", T0 + 1),
            format!("| offset: 102 CreateTime: {} keySize: 9 valueSize: -1 sequence: -1 headerKeys: [a] key: tombstone", T0 + 2),
        ],
        vec![
            format!("| offset: 103 CreateTime: {} keySize: 2 valueSize: 11 sequence: 10 headerKeys: [] key: g1 payload: gzipped one", T0 + 10),
            format!("| offset: 104 CreateTime: {} keySize: 2 valueSize: 11 sequence: 11 headerKeys: [] key: g2 payload: gzipped two", T0 + 11),
        ],
        vec![format!(
            "| offset: 105 CreateTime: {} keySize: 1 valueSize: 10 sequence: 0 headerKeys: [] key: z payload: zstd value",
            T0 + 20
        )],
        vec![format!(
            "| offset: 106 CreateTime: {} keySize: 4 valueSize: 6 sequence: -1 headerKeys: [] endTxnMarker: COMMIT coordinatorEpoch: 3",
            T0 + 30
        )],
    ]
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

const LOG: &str = "00000000000000000100.log";

/// Batch 0 of [`Segment`]: header (baseOffset 100, batchLength 102, epoch 0, magic 2, CRC,
/// attributes 0, lastOffsetDelta 2, timestamps, producer -1/-1/-1, count 3), then 3 records.
const BATCH_0_HEX: &str =
    "00000000000000640000006600000000025138ee540000000000020000018bcfe568000000018bcfe568\
                           02ffffffffffffffffffffffffffff00000003\
                           26000000026b0a76616c7565040261023102620118000202010c6e6f2d6b6579002600040412746f6d\
                           6273746f6e65010202610231";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[test]
fn a_segment_dumps_one_line_per_batch() {
    let dir = tempfile::tempdir().unwrap();
    let seg = Segment::build();
    let path = write(dir.path(), LOG, &seg.bytes());
    let o = shardlog(&["dump-log", "--files", path.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut expected = vec![format!("Dumping {}", path.display()), "Log starting offset: 100".to_string()];
    expected.extend(seg.batch_lines([true; 4]));
    assert_eq!(stdout_lines(&o), expected);
    assert_eq!(stderr(&o), "");
    // Pin the first batch to bytes encoded by hand from Kafka's format description (with an
    // independent CRC-32C), so the lines above do not only echo our own builder.
    assert_eq!(hex(&seg.batches[0]), BATCH_0_HEX);
    assert_eq!(crc(&seg.batches[0]), 1_362_685_524);
}

#[test]
fn print_data_log_adds_one_line_per_record_including_the_control_record() {
    let dir = tempfile::tempdir().unwrap();
    let seg = Segment::build();
    let path = write(dir.path(), LOG, &seg.bytes());
    let o = shardlog(&["dump-log", "--files", path.to_str().unwrap(), "--print-data-log"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let mut expected = vec![format!("Dumping {}", path.display()), "Log starting offset: 100".to_string()];
    for (batch, records) in seg.batch_lines([true; 4]).into_iter().zip(record_lines()) {
        expected.push(batch);
        expected.extend(records);
    }
    assert_eq!(stdout_lines(&o), expected);
    assert_eq!(stderr(&o), "");
}

#[test]
fn deep_iteration_without_data_and_data_without_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let seg = Segment { batches: Segment::build().batches[..1].to_vec() };
    let path = write(dir.path(), LOG, &seg.bytes());
    let o = shardlog(&["dump-log", "--files", path.to_str().unwrap(), "--deep-iteration"]);
    let lines = stdout_lines(&o);
    assert_eq!(
        lines[3],
        format!("| offset: 100 CreateTime: {T0} keySize: 1 valueSize: 5 sequence: -1 headerKeys: [a,b]")
    );
    let o = shardlog(&[
        "dump-log",
        "--files",
        path.to_str().unwrap(),
        "--print-data-log",
        "--skip-record-metadata",
    ]);
    // Kafka's spacing: "| key: …" when there is a key, " payload: …" alone when there is not.
    assert_eq!(stdout_lines(&o)[3..], ["| key: k payload: value", " payload: no-key", "| key: tombstone"]);
}

#[test]
fn a_corrupt_batch_is_invalid_and_the_dump_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = Segment::build();
    // Inside batch 0's first value ("value" → "valuE"): the CRC no longer matches.
    let at = seg.batches[0].windows(5).position(|w| w == b"value").unwrap() + 4;
    seg.batches[0][at] = b'E';
    let path = write(dir.path(), LOG, &seg.bytes());
    let o = shardlog(&["dump-log", "--files", path.to_str().unwrap(), "--print-data-log"]);
    assert!(o.status.success());
    let lines = stdout_lines(&o);
    let batches = seg.batch_lines([false, true, true, true]);
    assert_eq!(lines[2], batches[0]);
    assert!(lines[3].ends_with("key: k payload: valuE"), "records of a bad batch still show: {}", lines[3]);
    assert_eq!(lines[6], batches[1]);
    assert_eq!(lines.len(), 2 + 4 + 7);
}

#[test]
fn compressed_garbage_is_reported_and_the_next_batch_still_dumps() {
    let dir = tempfile::tempdir().unwrap();
    let mut seg = Segment::build();
    // Overwrite gzip batch 1's compressed section (after the 61-byte header).
    let len = seg.batches[1].len();
    seg.batches[1][61..len].fill(0xAB);
    let path = write(dir.path(), LOG, &seg.bytes());
    let o = shardlog(&["dump-log", "--files", path.to_str().unwrap(), "--print-data-log"]);
    assert!(o.status.success());
    let lines = stdout_lines(&o);
    let batches = seg.batch_lines([true, false, true, true]);
    assert_eq!(lines[6], batches[1]);
    assert_eq!(lines[7], batches[2], "no record lines for the undecodable batch");
    assert!(stderr(&o).contains("cannot read the records of the batch at position"), "{}", stderr(&o));
}

#[test]
fn trailing_damage_ends_the_file_with_kafkas_message() {
    let dir = tempfile::tempdir().unwrap();
    let seg = Segment::build();
    let full = seg.bytes();
    let tail = seg.position(3);

    // A torn last batch: everything but its last byte.
    let path = write(dir.path(), LOG, &full[..full.len() - 1]);
    let o = shardlog(&["dump-log", "--files", path.to_str().unwrap()]);
    let lines = stdout_lines(&o);
    assert_eq!(lines[2..5], seg.batch_lines([true; 4])[..3]);
    assert_eq!(lines[5], format!("Found {} invalid bytes at the end of {LOG}", full.len() - 1 - tail));
    assert_eq!(lines.len(), 6);

    // A batchLength too small for any batch: nothing after it can be framed.
    let mut bad = full[..tail].to_vec();
    bad.extend_from_slice(&106i64.to_be_bytes());
    bad.extend_from_slice(&5i32.to_be_bytes());
    bad.extend_from_slice(&[0u8; 40]);
    let path = write(dir.path(), LOG, &bad);
    let o = shardlog(&["dump-log", "--files", path.to_str().unwrap()]);
    let lines = stdout_lines(&o);
    assert_eq!(lines[5], format!("Found 52 invalid bytes at the end of {LOG}"));
    assert!(stderr(&o).contains("batchLength 5"), "{}", stderr(&o));
    assert!(o.status.success());

    // A few junk bytes (no more than the 17 up to magic): the same message.
    let mut junk = full.clone();
    junk.extend_from_slice(&[1, 2, 3]);
    let path = write(dir.path(), LOG, &junk);
    let lines = stdout_lines(&shardlog(&["dump-log", "--files", path.to_str().unwrap()]));
    assert_eq!(lines.last().unwrap(), &format!("Found 3 invalid bytes at the end of {LOG}"));

    // --max-bytes cuts on batch boundaries and, like Kafka, reports no leftovers.
    let path = write(dir.path(), LOG, &full);
    let max = (seg.position(2) + 10).to_string();
    let lines =
        stdout_lines(&shardlog(&["dump-log", "--files", path.to_str().unwrap(), "--max-bytes", &max]));
    assert_eq!(lines[2..], seg.batch_lines([true; 4])[..2]);
}

#[test]
fn index_files_print_absolute_offsets_and_are_checked_against_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let seg = Segment::build();
    write(dir.path(), LOG, &seg.bytes());
    let mut index = Vec::new();
    for (rel, batch) in [(2u32, 0), (4, 1), (5, 2)] {
        index
            .extend(OffsetIndexEntry { relative_offset: rel, position: seg.position(batch) as u32 }.encode());
    }
    index.extend([0u8; 8 * 3]); // preallocated, unused
    let index_path = write(dir.path(), "00000000000000000100.index", &index);
    let mut time = Vec::new();
    for (ts, rel) in [(T0 + 2, 2u32), (T0 + 11, 4), (T0 + 20, 5)] {
        time.extend(TimeIndexEntry { timestamp: ts, relative_offset: rel }.encode());
    }
    time.extend([0u8; 12 * 2]);
    let time_path = write(dir.path(), "00000000000000000100.timeindex", &time);
    let files = format!("{},{}", index_path.display(), time_path.display());

    let o = shardlog(&["dump-log", "--files", &files]);
    assert!(o.status.success(), "{}", stderr(&o));
    let p1 = seg.position(1);
    let p2 = seg.position(2);
    assert_eq!(
        stdout_lines(&o),
        [
            format!("Dumping {}", index_path.display()),
            "offset: 102 position: 0".to_string(),
            format!("offset: 104 position: {p1}"),
            format!("offset: 105 position: {p2}"),
            format!("Dumping {}", time_path.display()),
            format!("timestamp: {} offset: 102", T0 + 2),
            format!("timestamp: {} offset: 104", T0 + 11),
            format!("timestamp: {} offset: 105", T0 + 20),
        ]
    );
    assert_eq!(stderr(&o), "", "a consistent index has no findings");

    // Point the second index entry at the wrong batch.
    let mut bad_index = index.clone();
    bad_index[12..16].copy_from_slice(&(p2 as u32).to_be_bytes());
    write(dir.path(), "00000000000000000100.index", &bad_index);
    let o = shardlog(&["dump-log", "--files", index_path.to_str().unwrap(), "--verify-index-only"]);
    assert_eq!(stdout_lines(&o), [format!("Dumping {}", index_path.display())]);
    let abs_index = std::path::absolute(&index_path).unwrap();
    assert_eq!(
        stderr(&o),
        format!("Mismatches in :{}\n  Index offset: 104, log offset: 105\n", abs_index.display())
    );

    // With the index repaired, a wrong timestamp in the time index (also out of order now).
    write(dir.path(), "00000000000000000100.index", &index);
    let mut bad_time = time.clone();
    bad_time[12..20].copy_from_slice(&(T0 + 99).to_be_bytes());
    write(dir.path(), "00000000000000000100.timeindex", &bad_time);
    let o = shardlog(&["dump-log", "--files", time_path.to_str().unwrap()]);
    assert_eq!(stdout_lines(&o)[2], format!("timestamp: {} offset: 104", T0 + 99));
    let abs_time = std::path::absolute(&time_path).unwrap();
    assert_eq!(
        stderr(&o),
        format!(
            "Found timestamp mismatch in :{0}\n  Index timestamp: {1}, log timestamp: {2}\n\
             Found out of order timestamp in :{0}\n  Index timestamp: {3}, Previously indexed timestamp: {1}\n",
            abs_time.display(),
            T0 + 99,
            T0 + 11,
            T0 + 20,
        )
    );
}

#[test]
fn an_empty_index_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(dir.path(), "00000000000000000000.index", &[]);
    let o = shardlog(&["dump-log", "--files", path.to_str().unwrap()]);
    assert!(o.status.success());
    let shown = path.display();
    assert_eq!(stdout_lines(&o), [format!("Dumping {shown}"), format!("{shown} is empty.")]);
}

#[test]
fn missing_and_unknown_files_fail_but_the_others_still_dump() {
    let dir = tempfile::tempdir().unwrap();
    let seg = Segment { batches: Segment::build().batches[..1].to_vec() };
    let good = write(dir.path(), LOG, &seg.bytes());
    let missing = dir.path().join("00000000000000000200.log");
    let unknown = write(dir.path(), "notes.txt", b"hello");
    let files = format!("{},{},{}", missing.display(), unknown.display(), good.display());
    let o = shardlog(&["dump-log", "--files", &files]);
    assert!(!o.status.success());
    assert_eq!(
        stdout_lines(&o),
        [
            format!("Dumping {}", missing.display()),
            "Log starting offset: 200".to_string(),
            format!("Dumping {}", unknown.display()),
            format!("Dumping {}", good.display()),
            "Log starting offset: 100".to_string(),
            seg.batch_lines([true; 4])[0].clone(),
        ]
    );
    let err = stderr(&o);
    assert!(err.contains(&format!("error: cannot read {}", missing.display())), "{err}");
    assert!(err.contains("unknown file type"), "{err}");
}

#[test]
fn help_has_examples() {
    let o = shardlog(&["dump-log", "--help"]);
    assert!(o.status.success());
    let help = String::from_utf8(o.stdout).unwrap();
    assert!(help.contains("Examples:") && help.contains("--print-data-log"), "{help}");
    let o = shardlog(&["dump-log"]);
    assert!(!o.status.success(), "--files is required");
}
