//! The native producer: batches per partition with `RecordBatchBuilder`, one connection per
//! leader with up to [`IN_FLIGHT_PER_CONNECTION_MAX`] Produce requests in flight, answers
//! read by one thread per connection.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use shardlog_cli::admin;
use shardlog_cli::client::{Client, ResponseReader};
use shardlog_cli::console_producer::partition_for_key;
use shardlog_net::kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use shardlog_net::kafka_protocol::messages::ProduceRequest;
use shardlog_storage::batch_builder::RecordBatchBuilder;
use shardlog_storage::record_batch::Compression;

use super::{io_timeout, IN_FLIGHT_PER_CONNECTION_MAX, PRODUCE_V};
use crate::clock;
use crate::limits;
use crate::pacer::{Due, Pacer};
use crate::payload::{Payload, XorShift};
use crate::producer::{write_key, ProducerJob, ProducerStats};
use crate::workload::{KeyDistributor, Workload};

/// Upper bound of a record's framing around its key and value (length, attributes, deltas,
/// key and value lengths, header count, all varints): what a batch's size estimate adds.
const RECORD_OVERHEAD_MAX_BYTES: usize = 16;
/// How often pending batches are checked against `linger_ms`: a batch waits at most this much
/// past its linger (so `linger_ms = 0` means "within this", not a record per request). Each
/// check walks the pending batches; a sleeping producer wakes this often.
const LINGER_CHECK_INTERVAL_NS: u64 = 100_000;

/// One batch being filled for a partition.
struct Pending {
    builder: RecordBatchBuilder,
    /// Intended send time of each record, for its acknowledgement latency.
    sent_ns: Vec<u64>,
    size_estimate_bytes: usize,
    payload_bytes: u64,
    opened_ns: u64,
}

/// A batch on the wire, waiting for its partition's answer.
struct SentBatch {
    partition: i32,
    payload_bytes: u64,
    sent_ns: Vec<u64>,
}

/// One Produce request on the wire.
struct InFlight {
    correlation_id: i32,
    batches: Vec<SentBatch>,
}

/// A connection to one leader and the thread reading its answers.
struct Leader {
    client: Client,
    /// Holds what was sent; its capacity is what bounds the requests in flight.
    in_flight: Option<SyncSender<InFlight>>,
    reader: Option<JoinHandle<()>>,
}

impl Leader {
    fn connect(addr: &str, acks: i16, stats: &Arc<ProducerStats>) -> Result<Leader> {
        let client = Client::connect(addr, io_timeout())?;
        if acks == 0 {
            // The broker does not answer acks=0 requests: nothing to read.
            return Ok(Leader { client, in_flight: None, reader: None });
        }
        // The writer sends a request, then queues it here (blocking while full), and the reader
        // holds one more while it waits: capacity + 2 requests can be unanswered at once.
        let (tx, rx) = mpsc::sync_channel(IN_FLIGHT_PER_CONNECTION_MAX - 2);
        let reader = client.reader()?;
        let stats = stats.clone();
        let handle = std::thread::Builder::new()
            .name("native-acks".into())
            .spawn(move || read_acks(reader, rx, &stats))?;
        Ok(Leader { client, in_flight: Some(tx), reader: Some(handle) })
    }

    /// Stops after the answers to everything sent (each read is bounded by the I/O timeout).
    fn close(mut self) {
        drop(self.in_flight.take());
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

fn count_failed(stats: &ProducerStats, batches: &[SentBatch]) {
    let records: usize = batches.iter().map(|b| b.sent_ns.len()).sum();
    stats.errors.fetch_add(records as u64, Relaxed);
}

/// Reads Produce answers in order; every record is counted once, as acknowledged or failed.
fn read_acks(mut reader: ResponseReader, rx: Receiver<InFlight>, stats: &ProducerStats) {
    while let Ok(f) = rx.recv() {
        match reader.receive::<ProduceRequest>(PRODUCE_V, f.correlation_id) {
            Ok(resp) => {
                let now = clock::now_ns();
                for b in &f.batches {
                    let code = resp
                        .responses
                        .iter()
                        .flat_map(|t| t.partition_responses.iter())
                        .find(|p| p.index == b.partition)
                        .map(|p| p.error_code);
                    if code == Some(0) {
                        stats.acked.fetch_add(b.sent_ns.len() as u64, Relaxed);
                        stats.acked_bytes.fetch_add(b.payload_bytes, Relaxed);
                        stats.ack_latency.record_since_ns(now, &b.sent_ns);
                    } else {
                        count_failed(stats, std::slice::from_ref(b));
                    }
                }
            }
            Err(e) => {
                eprintln!("native producer: {e}");
                count_failed(stats, &f.batches);
                // The connection is unusable: what is queued behind this request fails too, and
                // dropping the queue makes the writer's next send fail, close this leader and
                // reconnect.
                for f in rx.try_iter() {
                    count_failed(stats, &f.batches);
                }
                return;
            }
        }
    }
}

fn compression(name: &str) -> Result<Compression> {
    Ok(match name {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        other => bail!("unknown compression {other}"),
    })
}

fn acks(s: &str) -> i16 {
    match s {
        "0" => 0,
        "1" => 1,
        _ => -1,
    }
}

struct Producer {
    topic: String,
    workload: Workload,
    acks: i16,
    compression: Compression,
    stats: Arc<ProducerStats>,
    /// Leader address of each partition (index = partition).
    leader_of: Vec<String>,
    leaders: BTreeMap<String, Leader>,
    pending: BTreeMap<i32, Pending>,
}

/// librdkafka's `message.max.bytes` default: no batch it sends is larger, whatever
/// `batch.size` says, so a broker at Kafka's defaults (1048588) never refuses one.
const BATCH_BYTES_MAX: u64 = 1_000_000;

/// A batch is full when one more record like the ones in it would pass the batch size (never
/// above [`BATCH_BYTES_MAX`]) or the record count: like librdkafka, a batch never grows past
/// its limit by the record that fills it.
fn is_full(p: &Pending, workload: &Workload) -> bool {
    let records = p.sent_ns.len() as u64;
    let per_record_bytes = p.size_estimate_bytes as u64 / records.max(1);
    let limit_bytes = workload.batch_size_bytes.min(BATCH_BYTES_MAX);
    p.size_estimate_bytes as u64 + per_record_bytes > limit_bytes || records >= workload.batch_num_messages
}

impl Producer {
    fn add(&mut self, partition: i32, key: Option<&[u8]>, value: &[u8], send_ns: u64) -> Result<()> {
        let compression = self.compression;
        let p = self.pending.entry(partition).or_insert_with(|| Pending {
            builder: RecordBatchBuilder::new(0, compression),
            sent_ns: Vec::new(),
            size_estimate_bytes: 0,
            payload_bytes: 0,
            opened_ns: clock::now_ns(),
        });
        p.builder.push(clock::unix_ms() as i64, key, Some(value), &[])?;
        p.sent_ns.push(send_ns);
        p.size_estimate_bytes += value.len() + key.map_or(0, <[u8]>::len) + RECORD_OVERHEAD_MAX_BYTES;
        p.payload_bytes += value.len() as u64;
        if is_full(p, &self.workload) {
            // Other batches for the same leader ride along if they are due anyway.
            let leader = self.leader_of[partition as usize].clone();
            let linger_ns = self.workload.linger_ms * 1_000_000;
            let now = clock::now_ns();
            self.send(&leader, |full, opened_ns| full || now.saturating_sub(opened_ns) >= linger_ns)?;
        }
        Ok(())
    }

    /// Sends every batch that waited `linger_ms` (or all with `force`), one request per leader.
    fn send_lingered(&mut self, now_ns: u64, force: bool) -> Result<()> {
        let linger_ns = self.workload.linger_ms * 1_000_000;
        let mut due: Vec<String> = Vec::new();
        for (partition, p) in &self.pending {
            let leader = &self.leader_of[*partition as usize];
            if (force || now_ns.saturating_sub(p.opened_ns) >= linger_ns) && !due.contains(leader) {
                due.push(leader.clone());
            }
        }
        for leader in due {
            self.send(&leader, |p, opened_ns| force || p || now_ns.saturating_sub(opened_ns) >= linger_ns)?;
        }
        Ok(())
    }

    /// One Produce to `leader` with its pending batches that `ready(full, opened_ns)` picks
    /// (the full batch that triggered it, and any that lingered long enough).
    fn send(&mut self, leader: &str, ready: impl Fn(bool, u64) -> bool) -> Result<()> {
        let mut data = Vec::new();
        let mut batches = Vec::new();
        let partitions: Vec<i32> = self
            .pending
            .iter()
            .filter(|(partition, p)| {
                self.leader_of[**partition as usize] == leader
                    && ready(is_full(p, &self.workload), p.opened_ns)
            })
            .map(|(partition, _)| *partition)
            .collect();
        for partition in partitions {
            let Some(p) = self.pending.remove(&partition) else { continue };
            let batch = p.builder.build()?;
            data.push(
                PartitionProduceData::default().with_index(partition).with_records(Some(Bytes::from(batch))),
            );
            batches.push(SentBatch { partition, payload_bytes: p.payload_bytes, sent_ns: p.sent_ns });
        }
        if batches.is_empty() {
            return Ok(());
        }
        let req = ProduceRequest::default()
            .with_acks(self.acks)
            .with_timeout_ms(io_timeout().as_millis() as i32)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(admin::topic_name(&self.topic))
                .with_partition_data(data)]);
        if !self.leaders.contains_key(leader) {
            match Leader::connect(leader, self.acks, &self.stats) {
                Ok(l) => {
                    self.leaders.insert(leader.to_string(), l);
                }
                Err(e) => {
                    eprintln!("native producer: {e:#}");
                    count_failed(&self.stats, &batches);
                    // Bounded retry pace: a down broker costs one attempt per this interval.
                    std::thread::sleep(Duration::from_millis(100));
                    return Ok(());
                }
            }
        }
        let l = self.leaders.get_mut(leader).context("leader connected above")?;
        let sent = l.client.send(PRODUCE_V, &req);
        let failed = match (sent, &l.in_flight) {
            (Err(e), _) => {
                eprintln!("native producer: {e}");
                Some(batches)
            }
            (Ok(_), None) => {
                // acks=0: handed to the socket is as acknowledged as it gets (librdkafka reports
                // such messages delivered at the same point).
                let now = clock::now_ns();
                for b in &batches {
                    self.stats.acked.fetch_add(b.sent_ns.len() as u64, Relaxed);
                    self.stats.acked_bytes.fetch_add(b.payload_bytes, Relaxed);
                    self.stats.ack_latency.record_since_ns(now, &b.sent_ns);
                }
                None
            }
            (Ok(correlation_id), Some(tx)) => {
                tx.send(InFlight { correlation_id, batches }).err().map(|back| back.0.batches)
            }
        };
        if let Some(batches) = failed {
            count_failed(&self.stats, &batches);
            if let Some(l) = self.leaders.remove(leader) {
                l.close();
            }
        }
        Ok(())
    }
}

/// Kafka's sticky partitioner (KIP-480) for keyless records: they go to one partition until
/// its batch is sent — full or lingered, either way — and then the next batch starts on the
/// next partition, so records spread over every partition batch by batch.
struct StickyPartitioner {
    current: i32,
    partitions: i32,
    used: bool,
}

impl StickyPartitioner {
    fn new(producer_index: usize, partitions: usize) -> StickyPartitioner {
        let partitions = partitions.max(1) as i32;
        StickyPartitioner { current: (producer_index % partitions as usize) as i32, partitions, used: false }
    }

    /// The partition of the next keyless record; `has_pending_batch(p)` says whether a batch
    /// for `p` is still being filled.
    fn next(&mut self, has_pending_batch: impl Fn(i32) -> bool) -> i32 {
        if self.used && !has_pending_batch(self.current) {
            self.current = (self.current + 1) % self.partitions;
        }
        self.used = true;
        self.current
    }
}

/// Runs until `stop` (or the byte budget), then sends what is pending and waits for its
/// answers (each bounded by the I/O timeout).
pub fn run(job: ProducerJob) -> Result<()> {
    let w = job.workload.clone();
    let parts = super::partition_leaders(&job.bootstrap, &job.topic)?;
    if parts.iter().enumerate().any(|(i, (p, _))| *p != i as i32) || parts.is_empty() {
        bail!("topic {}: partitions are not 0..{}", job.topic, parts.len());
    }
    let mut producer = Producer {
        topic: job.topic.clone(),
        acks: acks(&w.acks),
        compression: compression(&w.compression)?,
        stats: job.stats.clone(),
        leader_of: parts.into_iter().map(|(_, addr)| addr).collect(),
        leaders: BTreeMap::new(),
        pending: BTreeMap::new(),
        workload: w.clone(),
    };
    let partitions = producer.leader_of.len();
    let mut payload = Payload::new(w.message_size_bytes, job.index, 0x9e37_79b9 + job.index as u64);
    let mut rng = XorShift::new(0x5eed + job.index as u64);
    let mut pacer = Pacer::new(job.rate_msgs_per_s, clock::now_ns());
    let mut key_buf = [0u8; 20];
    let mut sequence: u64 = 0;
    let mut sticky = StickyPartitioner::new(job.index as usize, partitions);
    let mut enqueued_bytes: u64 = 0;
    let mut next_linger_check_ns = 0;

    while !job.stop.load(Relaxed) {
        if job.stop_after_bytes > 0 && enqueued_bytes >= job.stop_after_bytes {
            break;
        }
        let now = clock::now_ns();
        if now >= next_linger_check_ns {
            producer.send_lingered(now, false)?;
            next_linger_check_ns = now + LINGER_CHECK_INTERVAL_NS;
        }
        let send_ns = match pacer.due() {
            Due::Now(t) => t,
            Due::Wait(ns) => {
                // Oversleeping makes sends late; their latency counts from the schedule.
                std::thread::sleep(Duration::from_nanos(ns.min(LINGER_CHECK_INTERVAL_NS)));
                continue;
            }
        };
        let key_len = match w.key_distributor {
            KeyDistributor::None => None,
            KeyDistributor::RoundRobin => Some(write_key(&mut key_buf, sequence % limits::ROUND_ROBIN_KEYS)),
            KeyDistributor::Random => Some(write_key(&mut key_buf, rng.next_u64())),
        };
        let key = key_len.map(|n| &key_buf[..n]);
        let partition = match key {
            Some(k) => partition_for_key(k, partitions) as i32,
            None => sticky.next(|p| producer.pending.contains_key(&p)),
        };
        let value = payload.stamp(sequence, send_ns);
        producer.add(partition, key, value, send_ns)?;
        enqueued_bytes += w.message_size_bytes as u64;
        sequence += 1;
    }
    producer.send_lingered(clock::now_ns(), true)?;
    for (_, l) in std::mem::take(&mut producer.leaders) {
        l.close();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyless_records_move_on_once_their_batch_is_sent_however_it_was_sent() {
        let mut sticky = StickyPartitioner::new(1, 3);
        let pending = std::cell::RefCell::new(std::collections::BTreeSet::new());
        let mut next = || {
            let p = sticky.next(|p| pending.borrow().contains(&p));
            pending.borrow_mut().insert(p);
            p
        };
        // Records join the open batch of their partition...
        assert_eq!((next(), next()), (1, 1));
        // ...and once it is sent (a linger expiry as much as a full batch), the next record
        // starts a batch on the next partition, round and round.
        let mut seen = Vec::new();
        for _ in 0..4 {
            pending.borrow_mut().clear();
            seen.push(next());
        }
        assert_eq!(seen, [2, 0, 1, 2]);
    }
}
