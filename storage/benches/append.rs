//! Append throughput with ~16 KiB batches into the page cache — validation (CRC), offset
//! assignment, the buffered io_uring write, index entries; no fsync (flushing is a separate
//! policy). Each append gets a fresh copy of the batch, as a produce request's buffer would
//! be, so the copy is part of the figure. Target (issue 2): >= 1 GB/s on one core.
//!
//! Two shapes: `append` waits for each write before the next (one produce request at a time),
//! `submit_append` keeps up to `IN_FLIGHT` writes in flight (a shard serving many requests).
//! A third, `leader_append_16KiB_batch`, is the CPU part alone, with no I/O and no copy:
//! `place_as_leader` (validation, offsets assigned in a copy of the batch's header).
//!
//! Run: `cargo bench -p shardlog-storage --bench append`. Under valgrind 3.19 glommio's first
//! I/O never completes (see `bench/README.md`), so only the CPU part has a callgrind count:
//! `perf-reports/callgrind.sh`, case `leader_append_16KiB_batch`.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use bytes::Bytes;
use criterion::{black_box, criterion_group, Criterion, Throughput};
use shardlog_storage::batch_builder::RecordBatchBuilder;
use shardlog_storage::log_config::LogConfig;
use shardlog_storage::partition_log::{place_as_leader, PartitionLog};
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

/// What a leader's append computes before its write, for one batch: validation, and offsets
/// assigned in a copy of its header (the produce path writes the rest from the request frame).
/// Returns the next offset, so every step assigns new offsets as a growing log would.
fn leader_append_cpu(records: &Bytes, next_offset: i64, max_batch_bytes: usize) -> i64 {
    let placed = place_as_leader(records.clone(), next_offset, 0, None, max_batch_bytes).expect("valid");
    placed.batches().last().expect("one batch").1.next_offset()
}

fn leader_append(c: &mut Criterion) {
    let batch = Bytes::from(batch_of_about_16_kib());
    let max_batch_bytes = LogConfig::default().max_message_bytes as usize;
    let mut group = c.benchmark_group("append");
    group.throughput(Throughput::Bytes(batch.len() as u64));
    let mut next_offset = 0;
    group.bench_function("leader_append_16KiB_batch", |b| {
        b.iter(|| next_offset = leader_append_cpu(black_box(&batch), next_offset, max_batch_bytes))
    });
    group.finish();
}

criterion_group!(benches, leader_append, append);

#[path = "../../bench/callgrind/case.rs"]
mod callgrind;

fn main() {
    if let Some(r) = callgrind::requested() {
        let batch = Bytes::from(batch_of_about_16_kib());
        let max_batch_bytes = LogConfig::default().max_message_bytes as usize;
        let mut next_offset = 0;
        match r.case.as_str() {
            "leader_append_16KiB_batch" => callgrind::callgrind_measured(r.iterations, &mut || {
                next_offset = leader_append_cpu(black_box(&batch), next_offset, max_batch_bytes);
            }),
            other => callgrind::unknown(other, &["leader_append_16KiB_batch"]),
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
