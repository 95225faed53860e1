//! One consumer thread: reads its assigned partitions from the beginning and records
//! end-to-end latency from the send time in each payload.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::clock;
use crate::kafka::ConsumerCtx;
use crate::latency::Recorder;
use crate::payload;

#[derive(Default)]
pub struct ConsumerStats {
    pub messages: AtomicU64,
    pub bytes: AtomicU64,
    pub errors: AtomicU64,
    /// From the intended send time in the payload to receipt here.
    pub e2e_latency: Recorder,
    /// `CLOCK_MONOTONIC` ns of the first and last message received (a drain's span); 0 = none.
    pub first_message_ns: AtomicU64,
    pub last_message_ns: AtomicU64,
}

pub struct ConsumerJob {
    pub index: u32,
    pub bootstrap: String,
    pub topic: String,
    pub partitions: Vec<i32>,
    pub workload: crate::workload::Workload,
    pub stop: Arc<AtomicBool>,
    pub stats: Arc<ConsumerStats>,
}

/// Assigns the partitions at their beginning, then polls until `stop`. Returns once assigned
/// through `ready` so producers start only after every consumer is in place.
pub fn run(job: ConsumerJob, ready: std::sync::mpsc::Sender<Result<()>>) -> Result<()> {
    let setup = || -> Result<BaseConsumer<ConsumerCtx>> {
        let c: BaseConsumer<ConsumerCtx> = crate::kafka::consumer_config(
            &job.bootstrap,
            &job.workload,
            &format!("shardlog-bench-c{}", job.index),
            job.partitions.len(),
        )
        .create_with_context(ConsumerCtx)?;
        let mut tpl = TopicPartitionList::new();
        for &p in &job.partitions {
            tpl.add_partition_offset(&job.topic, p, Offset::Beginning)?;
        }
        c.assign(&tpl)?;
        Ok(c)
    };
    let consumer = match setup() {
        Ok(c) => {
            let _ = ready.send(Ok(()));
            c
        }
        Err(e) => {
            let _ = ready.send(Err(anyhow::anyhow!("consumer {}: {e:#}", job.index)));
            return Err(e);
        }
    };
    while !job.stop.load(Relaxed) {
        let Some(result) = consumer.poll(Duration::from_millis(100)) else { continue };
        match result {
            Ok(m) => {
                let now = clock::now_ns();
                let bytes = m.payload().unwrap_or_default();
                job.stats.messages.fetch_add(1, Relaxed);
                job.stats.bytes.fetch_add(bytes.len() as u64, Relaxed);
                let _ = job.stats.first_message_ns.compare_exchange(0, now, Relaxed, Relaxed);
                job.stats.last_message_ns.store(now, Relaxed);
                if let Some(sent) = payload::send_ns(bytes) {
                    job.stats.e2e_latency.record_ns(now.saturating_sub(sent));
                }
            }
            Err(_) => {
                job.stats.errors.fetch_add(1, Relaxed);
            }
        }
    }
    Ok(())
}

/// Splits `partitions` partitions over `consumers` as evenly as possible (consumer `i` gets
/// partitions `i, i + n, i + 2n, …`); a consumer beyond the partition count gets none, and
/// no consumers (a produce-only run) get nothing.
pub fn split_partitions(partitions: usize, consumers: usize) -> Vec<Vec<i32>> {
    let mut out = vec![Vec::new(); consumers];
    if consumers == 0 {
        return out;
    }
    for p in 0..partitions {
        out[p % consumers].push(p as i32);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn partitions_split_evenly() {
        let s = super::split_partitions(5, 2);
        assert_eq!(s, vec![vec![0, 2, 4], vec![1, 3]]);
        assert_eq!(super::split_partitions(1, 3)[2], Vec::<i32>::new());
        assert!(super::split_partitions(16, 0).is_empty());
    }
}
