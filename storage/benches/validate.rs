//! `RecordBatch::validate` throughput on 16 KiB batches — the per-batch check the produce path
//! runs (header shape plus CRC-32C). Target (issue 2): at least 5 GB/s on one core.
//!
//! Run: `cargo bench -p shardlog-storage --bench validate`. Instruction counts of one
//! validation under callgrind: `perf-reports/callgrind.sh` (case `validate_16KiB_batch`).

use criterion::{black_box, criterion_group, Criterion, Throughput};
use shardlog_storage::batch_builder::RecordBatchBuilder;
use shardlog_storage::record_batch::{BatchIter, Compression, RecordBatch};

const BATCH_BYTES: usize = 16 * 1024;
const MAX_BATCH_BYTES: usize = 1 << 20;

/// A valid uncompressed batch of exactly 16 KiB: 16 records with ~1 KiB values of varied bytes
/// (so nothing about the content is special), the last value sized to land on the byte.
fn batch_of_16_kib() -> Vec<u8> {
    let value: Vec<u8> = (0..BATCH_BYTES).map(|i| (i * 31 % 251) as u8).collect();
    let build = |last_len: usize| {
        let mut b = RecordBatchBuilder::new(0, Compression::None);
        for i in 0..15 {
            b.push(1_700_000_000_000 + i, Some(b"key"), Some(&value[..1000]), &[]).expect("push");
        }
        b.push(1_700_000_000_015, Some(b"key"), Some(&value[..last_len]), &[]).expect("push");
        b.build().expect("build")
    };
    let overshoot = build(1000).len() as isize - BATCH_BYTES as isize;
    let batch = build((1000 - overshoot) as usize);
    assert_eq!(batch.len(), BATCH_BYTES);
    batch
}

fn validate(c: &mut Criterion) {
    let batch = batch_of_16_kib();
    let mut group = c.benchmark_group("validate");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.bench_function("one_16KiB_batch", |b| {
        b.iter(|| RecordBatch::validate(black_box(&batch), MAX_BATCH_BYTES).expect("valid").record_count())
    });

    // A produce request's partition data: 64 batches back to back, walked and checked.
    let set: Vec<u8> = (0..64).flat_map(|_| batch.iter().copied()).collect();
    group.throughput(Throughput::Bytes(set.len() as u64));
    group.bench_function("record_set_64x16KiB", |b| {
        b.iter(|| {
            let mut n = 0;
            for item in BatchIter::new(black_box(&set), MAX_BATCH_BYTES) {
                let (_, batch) = item.expect("parses");
                batch.check_crc().expect("crc");
                n += 1;
            }
            n
        })
    });
    group.finish();
}

criterion_group!(benches, validate);

#[path = "../../bench/callgrind/case.rs"]
mod callgrind;

fn main() {
    if let Some(r) = callgrind::requested() {
        let batch = batch_of_16_kib();
        match r.case.as_str() {
            "validate_16KiB_batch" => callgrind::callgrind_measured(r.iterations, &mut || {
                black_box(
                    RecordBatch::validate(black_box(&batch), MAX_BATCH_BYTES).expect("valid").record_count(),
                );
            }),
            other => callgrind::unknown(other, &["validate_16KiB_batch"]),
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
