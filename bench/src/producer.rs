//! One producer thread: paces (or floods), stamps, sends, and records acknowledgement latency.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::ClientContext;

use crate::clock;
use crate::latency::Recorder;
use crate::limits;
use crate::pacer::{Due, Pacer};
use crate::payload::{self, Payload, XorShift};
use crate::workload::{KeyDistributor, Workload};

/// Counters and latency of one producer, read by the progress line and the result.
#[derive(Default)]
pub struct ProducerStats {
    /// Acknowledged messages and their payload bytes.
    pub acked: AtomicU64,
    pub acked_bytes: AtomicU64,
    /// Delivery failures and send errors other than a full queue.
    pub errors: AtomicU64,
    /// From intended send time to acknowledgement.
    pub ack_latency: Recorder,
}

struct Ctx {
    stats: Arc<ProducerStats>,
}

impl ClientContext for Ctx {
    fn log(&self, level: rdkafka::config::RDKafkaLogLevel, fac: &str, log_message: &str) {
        crate::kafka::log_to_stderr(level, fac, log_message);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        crate::kafka::error_to_stderr(error, reason);
    }
}

impl ProducerContext for Ctx {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(m) => {
                let now = clock::now_ns();
                let payload = m.payload().unwrap_or_default();
                self.stats.acked.fetch_add(1, Relaxed);
                self.stats.acked_bytes.fetch_add(payload.len() as u64, Relaxed);
                if let Some(sent) = payload::send_ns(payload) {
                    self.stats.ack_latency.record_ns(now.saturating_sub(sent));
                }
            }
            Err(_) => {
                self.stats.errors.fetch_add(1, Relaxed);
            }
        }
    }
}

/// What one producer thread is told to do.
pub struct ProducerJob {
    pub index: u32,
    pub bootstrap: String,
    pub topic: String,
    pub workload: Workload,
    /// This producer's share of the target rate; 0 = closed loop.
    pub rate_msgs_per_s: f64,
    /// Stop after this many acknowledged bytes (a backlog build); 0 = until `stop`.
    pub stop_after_bytes: u64,
    pub stop: Arc<AtomicBool>,
    pub stats: Arc<ProducerStats>,
}

/// Runs until `stop` (or the byte budget), then flushes for at most the grace period.
pub fn run(job: ProducerJob) -> Result<()> {
    let config = crate::kafka::producer_config(
        &job.bootstrap,
        &job.workload,
        &format!("shardlog-bench-p{}", job.index),
    );
    let producer: BaseProducer<Ctx> = config.create_with_context(Ctx { stats: job.stats.clone() })?;
    let mut payload =
        Payload::new(job.workload.message_size_bytes, job.index, 0x9e37_79b9 + job.index as u64);
    let mut rng = XorShift::new(0x5eed + job.index as u64);
    let mut pacer = Pacer::new(job.rate_msgs_per_s, clock::now_ns());
    let mut key_buf = [0u8; 20];
    let mut sequence: u64 = 0;
    let enqueued_budget = job.stop_after_bytes;
    let mut enqueued_bytes: u64 = 0;

    'sending: while !job.stop.load(Relaxed) {
        if enqueued_budget > 0 && enqueued_bytes >= enqueued_budget {
            break;
        }
        let send_ns = match pacer.due() {
            Due::Now(t) => t,
            Due::Wait(ns) => {
                // librdkafka's poll timeout is whole milliseconds (a shorter one becomes 0, a
                // busy spin that would take a core from the broker): poll through long waits,
                // sleep through short ones. Oversleeping makes sends late, and their latency
                // counts from the schedule, so it is charged to the result, not hidden.
                if ns >= 1_000_000 {
                    producer.poll(Duration::from_millis(1));
                } else {
                    serve_delivery_reports(&producer, &job.stats);
                    std::thread::sleep(Duration::from_nanos(ns));
                }
                continue;
            }
        };
        let key = match job.workload.key_distributor {
            KeyDistributor::None => None,
            KeyDistributor::RoundRobin => Some(write_key(&mut key_buf, sequence % limits::ROUND_ROBIN_KEYS)),
            KeyDistributor::Random => Some(write_key(&mut key_buf, rng.next_u64())),
        };
        let bytes = payload.stamp(sequence, send_ns);
        let mut record: BaseRecord<'_, [u8], [u8]> = BaseRecord::to(&job.topic).payload(bytes);
        if let Some(k) = key {
            record = record.key(&key_buf[..k]);
        }
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // Back-pressure: the queue holds PRODUCER_QUEUE_MAX_KIB; wait for acks.
                    producer.poll(Duration::from_millis(1));
                    if job.stop.load(Relaxed) {
                        break 'sending;
                    }
                    record = back;
                }
                Err(_) => {
                    job.stats.errors.fetch_add(1, Relaxed);
                    break;
                }
            }
        }
        enqueued_bytes += job.workload.message_size_bytes as u64;
        sequence += 1;
        // Delivery reports are served on this thread; keep them flowing without a syscall
        // per message.
        if sequence & 63 == 0 {
            serve_delivery_reports(&producer, &job.stats);
        }
    }
    // Bounded flush: what is not acknowledged by then is simply not counted.
    let _ = producer.flush(Duration::from_secs(limits::GRACE_MAX_S));
    Ok(())
}

/// Serves every delivery report already waiting, without waiting for more. `poll(ZERO)` serves
/// one event, and an event reports one produced batch: with many partitions and small batches
/// (100 partitions at 150k msg/s) one poll per 64 messages fell behind, the reports waited in
/// librdkafka until its queue limit stopped the sender, and the ack latency measured that
/// queue (432 ms at p50 against an e2e p50 of 8 ms). Stops at the first poll that served
/// nothing, or after `DELIVERY_REPORT_EVENTS_PER_SERVE_MAX` events.
fn serve_delivery_reports(producer: &BaseProducer<Ctx>, stats: &ProducerStats) {
    let served = || stats.acked.load(Relaxed) + stats.errors.load(Relaxed);
    for _ in 0..limits::DELIVERY_REPORT_EVENTS_PER_SERVE_MAX {
        let before = served();
        producer.poll(Duration::ZERO);
        if served() == before {
            break;
        }
    }
}

/// Formats `n` as decimal ASCII into `buf`, returning the length (keys are text, like OMB's).
pub(crate) fn write_key(buf: &mut [u8; 20], mut n: u64) -> usize {
    let mut tmp = [0u8; 20];
    let mut i = 0;
    loop {
        tmp[i] = b'0' + (n % 10) as u8;
        n /= 10;
        i += 1;
        if n == 0 {
            break;
        }
    }
    for j in 0..i {
        buf[j] = tmp[i - 1 - j];
    }
    i
}

#[cfg(test)]
mod tests {
    #[test]
    fn keys_are_decimal() {
        let mut b = [0u8; 20];
        let n = super::write_key(&mut b, 9071);
        assert_eq!(&b[..n], b"9071");
        let n = super::write_key(&mut b, u64::MAX);
        assert_eq!(&b[..n], u64::MAX.to_string().as_bytes());
    }
}
