//! Append throughput with ~16 KiB batches into the page cache — validation (CRC), offset
//! assignment, the buffered io_uring write, index entries; no fsync (flushing is a separate
//! policy). Each append gets a fresh copy of the batch, as a produce request's buffer would
//! be, so the copy is part of the figure. Target (issue 2): >= 1 GB/s on one core.
//!
//! Two shapes: `append` waits for each write before the next (one produce request at a time),
//! `submit_append` keeps up to `IN_FLIGHT` writes in flight (a shard serving many requests).
//!
//! Run: `cargo bench -p shardlog-storage --bench append`. No callgrind count: under valgrind
//! 3.19 glommio's first I/O never completes, see `bench/README.md`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use shardlog_storage::batch_builder::RecordBatchBuilder;
use shardlog_storage::log_config::LogConfig;
use shardlog_storage::partition_log::PartitionLog;
use shardlog_storage::record_batch::Compression;

const TS: i64 = 1_700_000_000_000;
/// Appends in flight in the pipelined shape, like a shard with that many produce requests.
const IN_FLIGHT: usize = 16;

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
    for pipelined in [false, true] {
        let name = if pipelined { "submit_append_16KiB_batches" } else { "append_16KiB_batches" };
        let mut run = 0;
        group.bench_function(name, |b| {
            b.iter_custom(|iters| {
                run += 1;
                let dir = tmp.path().join(format!("{name}-{run}"));
                let batch = &batch;
                executor.run(async move {
                    let mut log =
                        PartitionLog::open(&dir, LogConfig::default(), None, None).await.expect("open");
                    let mut in_flight = VecDeque::new();
                    let start = Instant::now();
                    for _ in 0..iters {
                        if !pipelined {
                            log.append(batch.clone(), 0, TS).await.expect("append");
                            continue;
                        }
                        let (_, written) = log.submit_append(batch.clone(), 0, TS).await.expect("submit");
                        in_flight.push_back(written);
                        if in_flight.len() >= IN_FLIGHT {
                            in_flight.pop_front().expect("in flight").wait().await.expect("written");
                        }
                    }
                    for written in in_flight {
                        written.wait().await.expect("written");
                    }
                    let elapsed = start.elapsed();
                    // Not closed: a close would fsync gigabytes the benchmark then deletes.
                    drop(log);
                    std::fs::remove_dir_all(&dir).expect("remove");
                    elapsed
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, append);

criterion_main!(benches);
