//! The native consumer: one thread per leader of the assigned partitions, each a Fetch loop
//! from offset 0. Records are counted from batch headers; records are decoded only while
//! latency is being recorded, to read the send time in each payload.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::mpsc::Sender;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{anyhow, Result};
use shardlog_cli::admin;
use shardlog_cli::client::Client;
use shardlog_net::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use shardlog_net::kafka_protocol::messages::{BrokerId, FetchRequest};
use shardlog_storage::record_batch::{BatchIter, RecordBatch};
use shardlog_storage::records::Records;

use super::{io_timeout, FETCH_MAX_BYTES, FETCH_V, UNCOMPRESSED_MAX_BYTES};
use crate::clock;
use crate::consumer::{ConsumerJob, ConsumerStats};
use crate::payload;

/// How long a fetch loop pauses after an error (bounded retry pace).
const ERROR_BACKOFF_MS: u64 = 100;

/// One leader's share of a consumer's partitions.
struct FetchLoop {
    client: Client,
    topic: String,
    /// (partition, next offset to fetch).
    positions: Vec<(i32, i64)>,
    wait_ms: i32,
    partition_max_bytes: i32,
    message_size_bytes: u64,
    stats: Arc<ConsumerStats>,
    stop: Arc<AtomicBool>,
}

/// Connects to every leader of `job.partitions`, reports readiness, then fetches until `stop`.
pub fn run(job: ConsumerJob, ready: Sender<Result<()>>) -> Result<()> {
    let setup = || -> Result<Vec<FetchLoop>> {
        let leaders = super::partition_leaders(&job.bootstrap, &job.topic)?;
        let mut loops: Vec<(String, FetchLoop)> = Vec::new();
        for &p in &job.partitions {
            let (_, addr) = leaders
                .iter()
                .find(|(q, _)| *q == p)
                .ok_or_else(|| anyhow!("{}-{p} is not in the metadata", job.topic))?;
            if let Some((_, l)) = loops.iter_mut().find(|(a, _)| a == addr) {
                l.positions.push((p, 0));
                continue;
            }
            let w = &job.workload;
            loops.push((
                addr.clone(),
                FetchLoop {
                    client: Client::connect(addr, io_timeout())?,
                    topic: job.topic.clone(),
                    positions: vec![(p, 0)],
                    wait_ms: w.fetch_wait_max_ms.min(i32::MAX as u64) as i32,
                    partition_max_bytes: w.max_partition_fetch_bytes.min(i32::MAX as u64) as i32,
                    message_size_bytes: w.message_size_bytes as u64,
                    stats: job.stats.clone(),
                    stop: job.stop.clone(),
                },
            ));
        }
        Ok(loops.into_iter().map(|(_, l)| l).collect())
    };
    let loops = match setup() {
        Ok(l) => l,
        Err(e) => {
            let _ = ready.send(Err(anyhow!("consumer {}: {e:#}", job.index)));
            return Err(e);
        }
    };
    let threads: Vec<JoinHandle<()>> = loops
        .into_iter()
        .map(|l| {
            std::thread::Builder::new().name(format!("native-fetch-{}", job.index)).spawn(move || l.run())
        })
        .collect::<std::io::Result<_>>()?;
    let _ = ready.send(Ok(()));
    for t in threads {
        let _ = t.join();
    }
    Ok(())
}

impl FetchLoop {
    fn run(mut self) {
        while !self.stop.load(Relaxed) {
            if let Err(e) = self.fetch_once() {
                eprintln!("native consumer: {e:#}");
                self.stats.errors.fetch_add(1, Relaxed);
                std::thread::sleep(Duration::from_millis(ERROR_BACKOFF_MS));
            }
        }
    }

    fn fetch_once(&mut self) -> Result<()> {
        let partitions = self
            .positions
            .iter()
            .map(|&(p, offset)| {
                FetchPartition::default()
                    .with_partition(p)
                    .with_current_leader_epoch(-1)
                    .with_fetch_offset(offset)
                    .with_last_fetched_epoch(-1)
                    .with_log_start_offset(-1)
                    .with_partition_max_bytes(self.partition_max_bytes)
            })
            .collect();
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(self.wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(FETCH_MAX_BYTES)
            .with_session_id(0)
            .with_session_epoch(-1)
            .with_topics(vec![FetchTopic::default()
                .with_topic(admin::topic_name(&self.topic))
                .with_partitions(partitions)]);
        let resp = match self.client.call(FETCH_V, &req) {
            Ok(r) => r,
            Err(e) => {
                // The connection may be mid-frame: start over on a new one.
                let addr = self.client.addr().to_string();
                self.client = Client::connect(&addr, io_timeout())?;
                return Err(e.into());
            }
        };
        if resp.error_code != 0 {
            return Err(anyhow!("fetch: {}", admin::error_name(resp.error_code)));
        }
        let now = clock::now_ns();
        let record_latency = self.stats.e2e_latency.is_enabled();
        let mut latencies_ns: Vec<u64> = Vec::new();
        let mut records: u64 = 0;
        for p in resp.responses.iter().flat_map(|t| t.partitions.iter()) {
            let Some(slot) = self.positions.iter_mut().find(|(q, _)| *q == p.partition_index) else {
                continue;
            };
            if p.error_code != 0 {
                return Err(anyhow!(
                    "{}-{}: {}",
                    self.topic,
                    p.partition_index,
                    admin::error_name(p.error_code)
                ));
            }
            let Some(set) = p.records.as_ref() else { continue };
            // A batch cut off at the end of the response ends the walk; it comes whole next time.
            for item in BatchIter::new(set, usize::MAX) {
                let Ok((_, batch)) = item else { break };
                let position = slot.1;
                slot.1 = slot.1.max(batch.next_offset());
                if batch.last_offset() < position || batch.is_control() {
                    continue;
                }
                // Bench topics hold one record per offset (no compaction, no transactions).
                let first = batch.base_offset().max(position);
                records += (batch.last_offset() - first + 1) as u64;
                if record_latency {
                    latencies_of(batch, position, now, &mut latencies_ns)?;
                }
            }
        }
        if records > 0 {
            let s = &self.stats;
            s.messages.fetch_add(records, Relaxed);
            s.bytes.fetch_add(records * self.message_size_bytes, Relaxed);
            let _ = s.first_message_ns.compare_exchange(0, now, Relaxed, Relaxed);
            s.last_message_ns.store(now, Relaxed);
            s.e2e_latency.record_latencies_ns(&latencies_ns);
        }
        Ok(())
    }
}

/// The end-to-end latency of each record at or after `position` in `batch`, from the send
/// time in its payload.
fn latencies_of(batch: RecordBatch<'_>, position: i64, now_ns: u64, out: &mut Vec<u64>) -> Result<()> {
    let records = Records::decode(batch, UNCOMPRESSED_MAX_BYTES)?;
    for r in records.iter() {
        let r = r?;
        if r.offset < position {
            continue;
        }
        if let Some(sent) = r.value.and_then(payload::send_ns) {
            out.push(now_ns.saturating_sub(sent));
        }
    }
    Ok(())
}
