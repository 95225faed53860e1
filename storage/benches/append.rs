//! Append throughput with ~16 KiB batches into the page cache — validation (CRC), offset
//! assignment, the `pwritev` from the request buffer, index entries; no fsync (flushing is a
//! separate policy). Target (issue 2): >= 1 GB/s on one core.
//!
//! Run: `cargo bench -p shardlog-storage --bench append`. No callgrind count: glommio's
//! executor deadlocks under valgrind 3.19 (a blocking `io_uring_enter` holds valgrind's
//! thread lock), see `bench/README.md`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shardlog_storage::batch_builder::RecordBatchBuilder;
use shardlog_storage::log_config::LogConfig;
use shardlog_storage::partition_log::PartitionLog;
use shardlog_storage::record_batch::Compression;

const TS: i64 = 1_700_000_000_000;

/// 16 records of 1000-byte values: 16,2xx bytes.
fn batch_of_about_16_kib() -> Vec<u8> {
    let value: Vec<u8> = (0..1000).map(|i| (i * 31 % 251) as u8).collect();
    let mut builder = RecordBatchBuilder::new(0, Compression::None);
    for i in 0..16 {
        builder.push(TS + i, Some(b"key"), Some(&value), &[]).expect("push");
    }
    builder.build().expect("build")
}

fn append(c: &mut Criterion) {
    let executor = glommio::LocalExecutorBuilder::default().make().expect("executor");
    let tmp = tempfile::tempdir().expect("temporary directory");
    let batch = batch_of_about_16_kib();
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    group.sample_size(20).measurement_time(Duration::from_secs(10));
    let mut run = 0;
    group.bench_function("append_16KiB_batches", |b| {
        b.iter_custom(|iters| {
            run += 1;
            let dir = tmp.path().join(format!("append-{run}"));
            let batch = &batch;
            executor.run(async move {
                let mut log = PartitionLog::open(&dir, LogConfig::default(), None, None).await.expect("open");
                let start = Instant::now();
                for _ in 0..iters {
                    log.append(batch, 0, TS).await.expect("append");
                }
                let elapsed = start.elapsed();
                // Not closed: a close would fsync gigabytes the benchmark then deletes.
                drop(log);
                std::fs::remove_dir_all(&dir).expect("remove");
                elapsed
            })
        })
    });
    group.finish();
}

criterion_group!(benches, append);

criterion_main!(benches);
