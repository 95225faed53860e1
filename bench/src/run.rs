//! One run of a workload: create topics, start consumers then producers, walk the phases,
//! collect a [`RunResult`], delete the topics.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};

use crate::broker_metrics;
use crate::clock;
use crate::consumer::{self, ConsumerJob, ConsumerStats};
use crate::kafka;
use crate::latency::{new_histogram, Percentiles};
use crate::limits;
use crate::native;
use crate::probe::{self, Profiler};
use crate::producer::{self, ProducerJob, ProducerStats};
use crate::progress::Progress;
use crate::result::{BrokerUse, Flow, PhaseResult, RunResult, SCHEMA};
use crate::workload::Workload;

/// Which client moves the records.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ClientKind {
    /// librdkafka through the `rdkafka` crate: the client the field uses.
    #[default]
    Rdkafka,
    /// Our own ([`crate::native`]): pipelined Produce, plain Fetch, little CPU per record.
    Native,
}

impl ClientKind {
    pub fn name(self) -> &'static str {
        match self {
            ClientKind::Rdkafka => "rdkafka",
            ClientKind::Native => "native",
        }
    }
}

pub struct RunOptions {
    pub bootstrap: String,
    pub client: ClientKind,
    pub label: String,
    pub tags: BTreeMap<String, String>,
    pub workload: Workload,
    /// The broker's pid, for CPU and RSS per phase (local brokers only).
    pub broker_pid: Option<u32>,
    /// `(phase, perf.data path)`: profile the broker with `perf record` during that phase.
    pub profiles: Vec<(String, PathBuf)>,
    /// Sampling frequency of those profiles.
    pub profile_hz: u32,
    /// `host:port` of the broker's Prometheus endpoint (shardlog's `metrics.listener`): the
    /// broker's own request times per phase.
    pub broker_metrics: Option<String>,
    pub keep_topics: bool,
    pub progress: bool,
}

/// The clients of a run and their stats.
struct Clients {
    producer_stats: Vec<Arc<ProducerStats>>,
    consumer_stats: Vec<Arc<ConsumerStats>>,
    producers: Vec<JoinHandle<Result<()>>>,
    consumers: Vec<JoinHandle<Result<()>>>,
    stop_producers: Arc<AtomicBool>,
    stop_consumers: Arc<AtomicBool>,
}

/// Counters summed over all clients at one instant.
#[derive(Clone, Copy, Default)]
struct Snapshot {
    at: Option<Instant>,
    produced: u64,
    produced_bytes: u64,
    produce_errors: u64,
    consumed: u64,
    consumed_bytes: u64,
    consume_errors: u64,
    broker: Option<probe::ProcSample>,
}

impl Clients {
    fn new(w: &Workload) -> Clients {
        Clients {
            producer_stats: (0..w.producers()).map(|_| Arc::default()).collect(),
            consumer_stats: (0..w.consumers()).map(|_| Arc::default()).collect(),
            producers: Vec::new(),
            consumers: Vec::new(),
            stop_producers: Arc::new(AtomicBool::new(false)),
            stop_consumers: Arc::new(AtomicBool::new(false)),
        }
    }

    fn snapshot(&self, broker_pid: Option<u32>) -> Snapshot {
        let mut s = Snapshot { at: Some(Instant::now()), ..Snapshot::default() };
        for p in &self.producer_stats {
            s.produced += p.acked.load(Relaxed);
            s.produced_bytes += p.acked_bytes.load(Relaxed);
            s.produce_errors += p.errors.load(Relaxed);
        }
        for c in &self.consumer_stats {
            s.consumed += c.messages.load(Relaxed);
            s.consumed_bytes += c.bytes.load(Relaxed);
            s.consume_errors += c.errors.load(Relaxed);
        }
        s.broker = broker_pid.and_then(|pid| probe::sample(pid).ok());
        s
    }

    /// Starts every consumer at the beginning of its partitions and waits until all are
    /// assigned, so no message is produced before someone is reading.
    fn start_consumers(&mut self, o: &RunOptions, topics: &[String]) -> Result<()> {
        let w = &o.workload;
        let (tx, rx) = mpsc::channel();
        for (t, topic) in topics.iter().enumerate() {
            let split = consumer::split_partitions(w.partitions_per_topic, w.consumers_per_topic);
            for (c, partitions) in split.into_iter().enumerate() {
                let index = t * w.consumers_per_topic + c;
                let job = ConsumerJob {
                    index: index as u32,
                    bootstrap: o.bootstrap.clone(),
                    topic: topic.clone(),
                    partitions,
                    workload: w.clone(),
                    stop: self.stop_consumers.clone(),
                    stats: self.consumer_stats[index].clone(),
                };
                let tx = tx.clone();
                let client = o.client;
                self.consumers.push(std::thread::Builder::new().name(format!("consumer-{index}")).spawn(
                    move || match client {
                        ClientKind::Rdkafka => consumer::run(job, tx),
                        ClientKind::Native => native::consumer::run(job, tx),
                    },
                )?);
            }
        }
        drop(tx);
        for _ in 0..self.consumers.len() {
            rx.recv_timeout(Duration::from_secs(limits::ADMIN_TIMEOUT_S)).context("consumer start")??;
        }
        Ok(())
    }

    fn start_producers(&mut self, o: &RunOptions, topics: &[String], stop_after_bytes: u64) -> Result<()> {
        let w = &o.workload;
        let share = w.producer_rate_msgs_per_s as f64 / w.producers() as f64;
        for (t, topic) in topics.iter().enumerate() {
            for p in 0..w.producers_per_topic {
                let index = t * w.producers_per_topic + p;
                let job = ProducerJob {
                    index: index as u32,
                    bootstrap: o.bootstrap.clone(),
                    topic: topic.clone(),
                    workload: w.clone(),
                    rate_msgs_per_s: share,
                    stop_after_bytes: stop_after_bytes / w.producers() as u64,
                    stop: self.stop_producers.clone(),
                    stats: self.producer_stats[index].clone(),
                };
                let client = o.client;
                self.producers.push(std::thread::Builder::new().name(format!("producer-{index}")).spawn(
                    move || match client {
                        ClientKind::Rdkafka => producer::run(job),
                        ClientKind::Native => native::producer::run(job),
                    },
                )?);
            }
        }
        Ok(())
    }

    fn set_recording(&self, enabled: bool) {
        self.producer_stats.iter().for_each(|p| p.ack_latency.set_enabled(enabled));
        self.consumer_stats.iter().for_each(|c| c.e2e_latency.set_enabled(enabled));
    }

    fn reset_latency(&self) {
        self.producer_stats.iter().for_each(|p| p.ack_latency.reset());
        self.consumer_stats.iter().for_each(|c| c.e2e_latency.reset());
    }

    fn latency(&self) -> (Option<Percentiles>, Option<Percentiles>) {
        let mut ack = new_histogram();
        let mut e2e = new_histogram();
        self.producer_stats.iter().for_each(|p| p.ack_latency.add_total(&mut ack));
        self.consumer_stats.iter().for_each(|c| c.e2e_latency.add_total(&mut e2e));
        (Percentiles::of(&ack), Percentiles::of(&e2e))
    }

    fn join_producers(&mut self) -> Result<()> {
        self.stop_producers.store(true, Relaxed);
        join_all(std::mem::take(&mut self.producers))
    }

    fn join_consumers(&mut self) -> Result<()> {
        self.stop_consumers.store(true, Relaxed);
        join_all(std::mem::take(&mut self.consumers))
    }
}

fn join_all(handles: Vec<JoinHandle<Result<()>>>) -> Result<()> {
    let mut first_err = None;
    for h in handles {
        match h.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => first_err = first_err.or(Some(e)),
            Err(_) => first_err = first_err.or(Some(anyhow!("client thread panicked"))),
        }
    }
    first_err.map_or(Ok(()), Err)
}

/// A phase's numbers from the snapshots at its ends (`wall_s` may be shorter than the
/// snapshots' distance, e.g. a drain ends at its last message).
fn phase_result(name: &str, a: &Snapshot, b: &Snapshot, wall_s: f64, clients: &Clients) -> PhaseResult {
    let produced = Flow::new(
        b.produced - a.produced,
        b.produced_bytes - a.produced_bytes,
        b.produce_errors - a.produce_errors,
        wall_s,
    );
    let consumed = Flow::new(
        b.consumed - a.consumed,
        b.consumed_bytes - a.consumed_bytes,
        b.consume_errors - a.consume_errors,
        wall_s,
    );
    let broker = match (a.broker, b.broker) {
        (Some(x), Some(y)) => {
            let cpu_s = y.cpu_s - x.cpu_s;
            let per_gb = |bytes: u64| (bytes > 0).then(|| cpu_s / (bytes as f64 / 1e9));
            Some(BrokerUse {
                cpu_s,
                cpu_s_per_gb_produced: per_gb(produced.bytes),
                cpu_s_per_gb_consumed: per_gb(consumed.bytes),
                rss_end_bytes: y.rss_bytes,
            })
        }
        _ => None,
    };
    let (ack_latency_us, e2e_latency_us) = clients.latency();
    PhaseResult {
        name: name.into(),
        wall_s,
        produced,
        consumed,
        ack_latency_us,
        e2e_latency_us,
        broker,
        profile: None,
        broker_request_us: None,
        broker_shards: None,
    }
}

/// A scrape of the broker's metrics endpoint, if one was given; a failed scrape only costs
/// the phase its broker times.
fn scrape_broker(o: &RunOptions) -> Option<broker_metrics::Scrape> {
    let addr = o.broker_metrics.as_deref()?;
    broker_metrics::scrape(addr).map_err(|e| eprintln!("broker metrics: {e:#}")).ok()
}

/// [`scrape_broker`] once the broker has published everything up to now (the load has
/// stopped).
fn scrape_broker_when_settled(o: &RunOptions) -> Option<broker_metrics::Scrape> {
    o.broker_metrics.as_ref()?;
    std::thread::sleep(Duration::from_millis(broker_metrics::PUBLISH_LAG_MS));
    scrape_broker(o)
}

/// The broker's request times and each shard's use between two scrapes (none without both).
fn broker_use(
    before: Option<broker_metrics::Scrape>,
    after: Option<broker_metrics::Scrape>,
) -> (Option<BTreeMap<String, broker_metrics::RequestTimes>>, Option<Vec<broker_metrics::ShardUse>>) {
    match (before, after) {
        (Some(b), Some(a)) => {
            (Some(broker_metrics::between(&b, &a)), Some(broker_metrics::shard_use_between(&b, &a)))
        }
        _ => (None, None),
    }
}

/// Starts the profiler if this phase is the one asked for.
fn maybe_profile(o: &RunOptions, phase: &str) -> Result<Option<Profiler>> {
    match (o.profiles.iter().find(|(p, _)| p == phase), o.broker_pid) {
        (Some((_, out)), Some(pid)) => Ok(Some(Profiler::start(pid, out, o.profile_hz)?)),
        _ => Ok(None),
    }
}

fn finish_profile(profiler: Option<Profiler>, phase: &mut PhaseResult) -> Result<()> {
    if let Some(p) = profiler {
        let out = p.out.display().to_string();
        p.stop()?;
        phase.profile = Some(out);
    }
    Ok(())
}

pub fn run(o: &RunOptions) -> Result<RunResult> {
    let w = &o.workload;
    w.validate()?;
    let started_unix_ms = clock::unix_ms();
    let topics: Vec<String> =
        (0..w.topics).map(|t| format!("bench-{}-{}-{t}", started_unix_ms, std::process::id())).collect();
    kafka::create_topics(&o.bootstrap, w, &topics)?;
    let broker_rss_start_bytes = o.broker_pid.and_then(|pid| probe::sample(pid).ok()).map(|s| s.rss_bytes);

    let mut clients = Clients::new(w);
    let progress = Arc::new(Progress {
        producers: clients.producer_stats.clone(),
        consumers: clients.consumer_stats.clone(),
        phase: Mutex::new("setup"),
        stop: AtomicBool::new(false),
        enabled: o.progress,
    });
    let progress_thread = {
        let p = progress.clone();
        std::thread::Builder::new().name("progress".into()).spawn(move || p.run())?
    };

    let phases = if w.is_backlog_drain() {
        backlog_drain(o, &topics, &mut clients, &progress)
    } else {
        steady(o, &topics, &mut clients, &progress)
    };
    // Whatever happened, stop every thread before reporting.
    let stopped = clients.join_producers().and(clients.join_consumers());
    progress.stop.store(true, Relaxed);
    let _ = progress_thread.join();
    let phases = phases?;
    stopped?;
    if !o.keep_topics {
        if let Err(e) = kafka::delete_topics(&o.bootstrap, &topics) {
            eprintln!("warning: {e:#}");
        }
    }
    Ok(RunResult {
        schema: SCHEMA.into(),
        label: o.label.clone(),
        client: o.client.name().into(),
        tags: o.tags.clone(),
        bootstrap: o.bootstrap.clone(),
        started_unix_ms,
        workload: w.clone(),
        topics,
        phases,
        broker_rss_start_bytes,
    })
}

/// Producers and consumers together: warm-up, then the measured window.
fn steady(
    o: &RunOptions,
    topics: &[String],
    c: &mut Clients,
    progress: &Progress,
) -> Result<Vec<PhaseResult>> {
    let w = &o.workload;
    c.start_consumers(o, topics)?;
    c.start_producers(o, topics, 0)?;
    progress.set_phase("warmup");
    std::thread::sleep(Duration::from_secs(w.warmup_s));
    c.reset_latency();
    progress.set_phase("measure");
    let profiler = maybe_profile(o, "measure")?;
    let scrape_a = scrape_broker(o);
    let a = c.snapshot(o.broker_pid);
    std::thread::sleep(Duration::from_secs(w.test_duration_s));
    let b = c.snapshot(o.broker_pid);
    let scrape_b = scrape_broker(o);
    // Values recorded after the window (the flush tail) must not count.
    c.set_recording(false);
    let wall_s = b.at.zip(a.at).map_or(0.0, |(b, a)| (b - a).as_secs_f64());
    let mut phase = phase_result("measure", &a, &b, wall_s, c);
    (phase.broker_request_us, phase.broker_shards) = broker_use(scrape_a, scrape_b);
    finish_profile(profiler, &mut phase)?;
    progress.set_phase("stopping");
    c.join_producers()?;
    // Let consumers catch up with what was acknowledged, for at most the grace period.
    let target = c.snapshot(None).produced;
    let deadline = Instant::now() + Duration::from_secs(limits::GRACE_MAX_S);
    while c.snapshot(None).consumed < target && Instant::now() < deadline && !c.consumers.is_empty() {
        std::thread::sleep(Duration::from_millis(50));
    }
    c.join_consumers()?;
    Ok(vec![phase])
}

/// Produce a backlog with nobody reading, stop, then drain it from the beginning.
fn backlog_drain(
    o: &RunOptions,
    topics: &[String],
    c: &mut Clients,
    progress: &Progress,
) -> Result<Vec<PhaseResult>> {
    let w = &o.workload;
    let phase_limit = Duration::from_secs(w.test_duration_s);

    progress.set_phase("backlog");
    let profiler = maybe_profile(o, "backlog")?;
    let scrape_a = scrape_broker(o);
    let a = c.snapshot(o.broker_pid);
    c.start_producers(o, topics, w.consumer_backlog_bytes)?;
    let deadline = Instant::now() + phase_limit;
    while c.producers.iter().any(|h| !h.is_finished()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    c.join_producers()?;
    let b = c.snapshot(o.broker_pid);
    let wall_s = b.at.zip(a.at).map_or(0.0, |(b, a)| (b - a).as_secs_f64());
    let mut backlog = phase_result("backlog", &a, &b, wall_s, c);
    let scrape_b = scrape_broker_when_settled(o);
    (backlog.broker_request_us, backlog.broker_shards) = broker_use(scrape_a, scrape_b.clone());
    finish_profile(profiler, &mut backlog)?;

    // The drain: the old messages' send times say nothing about fetch latency.
    c.set_recording(false);
    c.reset_latency();
    progress.set_phase("drain");
    let target = b.produced;
    let profiler = maybe_profile(o, "drain")?;
    let a = c.snapshot(o.broker_pid);
    c.start_consumers(o, topics)?;
    let deadline = Instant::now() + phase_limit;
    while c.snapshot(None).consumed < target && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let b = c.snapshot(o.broker_pid);
    // From the first message to the last: the transfer itself, not client start-up.
    let first_ns = c.consumer_stats.iter().map(|s| s.first_message_ns.load(Relaxed)).filter(|&t| t > 0).min();
    let last_ns = c.consumer_stats.iter().map(|s| s.last_message_ns.load(Relaxed)).max();
    let wall_s = match (first_ns, last_ns) {
        (Some(f), Some(l)) => l.saturating_sub(f) as f64 / 1e9,
        _ => 0.0,
    };
    let mut drain = phase_result("drain", &a, &b, wall_s, c);
    finish_profile(profiler, &mut drain)?;
    c.join_consumers()?;
    (drain.broker_request_us, drain.broker_shards) = broker_use(scrape_b, scrape_broker_when_settled(o));
    Ok(vec![backlog, drain])
}
