//! Broker metrics: what Kafka's JMX beans report (the course's lesson 24), served as Prometheus
//! text under the names Kafka's standard JMX-exporter rules give them, so existing dashboards
//! and alerts read them unchanged.
//!
//! Shape (DESIGN.md invariant 2 — cross-core channels carry control only, never record bytes;
//! a once-a-second snapshot of counters is control-plane traffic in that sense):
//! - Every shard records into its own [`ShardMetrics`] (`Cell`s and a `RefCell`, no atomics).
//! - When `metrics.listener` is set, every shard publishes a [`ShardSnapshot`] (plain data) to
//!   shard 0 every [`PUBLISH_INTERVAL_MS`] over a bounded channel ([`publish`]); shard 0 keeps
//!   the latest of each ([`Snapshots`]) and `http` renders their sum on `GET /metrics`
//!   ([`exposition`]). A scrape is therefore at most one interval old, and costs the shards
//!   nothing.
//!
//! Request times are kept as Kafka's `RequestMetrics` keep them — `TotalTimeMs` from the moment
//! the request is read to the moment its response is written, `ResponseSendTimeMs` for the
//! write alone — in histograms of the last [`WINDOW_MS`] to twice that (two windows, rotated),
//! as Kafka's decaying reservoirs favour recent requests.

pub mod exposition;
pub mod http;

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use glommio::channels::shared_channel::{self, SharedReceiver, SharedSender};
use hdrhistogram::Histogram;

/// How often a shard sends its snapshot to shard 0 (the staleness bound of a scrape).
pub const PUBLISH_INTERVAL_MS: u64 = 1_000;
/// Request-time percentiles cover the last `WINDOW_MS` to `2 × WINDOW_MS`.
pub const WINDOW_MS: u64 = 30_000;
/// Partition ends and committed offsets one shard sends for consumer lag: a bound on the
/// snapshot (and the page) whatever the number of partitions and groups; beyond it the lag
/// series of the rest are missing from the page, not wrong.
pub const LAG_ENTRIES_PER_SHARD_MAX: usize = 10_000;
/// Snapshots queued from one shard to shard 0; a newer one replaces an older one anyway.
const SNAPSHOT_CHANNEL_CAPACITY: usize = 2;
/// Largest recordable request time: a fetch waits at most a minute, a send at most
/// `connections.max.idle.ms`; longer ones are clamped to this, not lost.
const TIME_US_MAX: u64 = 3_600_000_000;
/// Two significant digits: percentiles within 1 %, 26 KiB per histogram.
const TIME_SIGNIFICANT_DIGITS: u8 = 2;
/// Upper bounds (µs) of the cumulative request-time buckets, Prometheus's own histogram: its
/// bucket counts only grow, so the time of the requests between two scrapes is their
/// difference (what `histogram_quantile(rate(...))` and the bench's `--broker-metrics` read).
/// Fine below 5 ms, where a healthy broker's requests are.
pub const TIME_BUCKETS_US: [u64; 30] = [
    50, 100, 150, 200, 300, 400, 500, 750, 1_000, 1_500, 2_000, 3_000, 4_000, 5_000, 7_500, 10_000, 15_000,
    20_000, 30_000, 50_000, 75_000, 100_000, 250_000, 500_000, 1_000_000, 2_500_000, 5_000_000, 10_000_000,
    30_000_000, 60_000_000,
];

/// One shard's counters. Every field only grows (Prometheus counters), except the histograms'
/// windows.
#[derive(Default)]
pub struct ShardMetrics {
    /// By API key.
    requests: RefCell<BTreeMap<i16, RequestStats>>,
    topics: Cell<TopicCounters>,
    /// The executor's busy time and tasks so far: glommio hands out only what accrued since
    /// the last time anyone asked, so they are added up here.
    busy: Cell<Duration>,
    tasks: Cell<u64>,
}

/// Kafka's `BrokerTopicMetrics` (all topics): what was produced and fetched.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TopicCounters {
    pub messages_in: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Per partition of a request, as Kafka counts them.
    pub produce_requests: u64,
    pub failed_produce_requests: u64,
    pub fetch_requests: u64,
    pub failed_fetch_requests: u64,
}

struct RequestStats {
    total_time: WindowedHistogram,
    send_time: WindowedHistogram,
    total_time_buckets: TimeBuckets,
}

/// Requests per [`TIME_BUCKETS_US`] bucket (the last one: above them all) and their total time.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TimeBuckets {
    pub counts: [u64; TIME_BUCKETS_US.len() + 1],
    pub sum_us: u64,
}

impl TimeBuckets {
    /// Every request counted.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    fn record(&mut self, us: u64) {
        let bucket = TIME_BUCKETS_US.partition_point(|&upper| upper < us);
        self.counts[bucket] += 1;
        self.sum_us = self.sum_us.saturating_add(us);
    }

    fn add(&mut self, other: &TimeBuckets) {
        for (sum, n) in self.counts.iter_mut().zip(other.counts) {
            *sum += n;
        }
        self.sum_us = self.sum_us.saturating_add(other.sum_us);
    }
}

impl ShardMetrics {
    /// One served request: `received` when its frame was read, `handled` when its response
    /// was ready, `sent` when the response was written.
    pub fn record_request(&self, api_key: i16, received: Instant, handled: Instant, sent: Instant) {
        let mut requests = self.requests.borrow_mut();
        let stats = requests.entry(api_key).or_insert_with(|| RequestStats {
            total_time: WindowedHistogram::new(sent),
            send_time: WindowedHistogram::new(sent),
            total_time_buckets: TimeBuckets::default(),
        });
        let total_time = sent.saturating_duration_since(received);
        stats.total_time_buckets.record(u64::try_from(total_time.as_micros()).unwrap_or(u64::MAX));
        stats.total_time.record(sent, total_time);
        stats.send_time.record(sent, sent.saturating_duration_since(handled));
    }

    /// One partition of a produce: its record bytes and messages if appended, or a failure.
    pub fn record_produce(&self, appended: Option<(u64, u64)>) {
        let mut t = self.topics.get();
        t.produce_requests += 1;
        match appended {
            Some((bytes, messages)) => {
                t.bytes_in += bytes;
                t.messages_in += messages;
            }
            None => t.failed_produce_requests += 1,
        }
        self.topics.set(t);
    }

    /// One partition of a fetch: the record bytes it returns, or a failure.
    pub fn record_fetch(&self, returned_bytes: Option<u64>) {
        let mut t = self.topics.get();
        t.fetch_requests += 1;
        match returned_bytes {
            Some(bytes) => t.bytes_out += bytes,
            None => t.failed_fetch_requests += 1,
        }
        self.topics.set(t);
    }

    pub fn snapshot(&self, connections: usize) -> ShardSnapshot {
        let now = Instant::now();
        let requests = self
            .requests
            .borrow_mut()
            .iter_mut()
            .map(|(api_key, stats)| {
                (
                    *api_key,
                    RequestSnapshot {
                        total_time_us: stats.total_time.recent(now),
                        send_time_us: stats.send_time.recent(now),
                        total_time_buckets: stats.total_time_buckets.clone(),
                    },
                )
            })
            .collect();
        ShardSnapshot {
            requests,
            topics: self.topics.get(),
            connections: connections as u64,
            ..Default::default()
        }
    }
}

/// What a shard sends to shard 0: plain data, `Send`.
#[derive(Clone, Default)]
pub struct ShardSnapshot {
    pub requests: BTreeMap<i16, RequestSnapshot>,
    pub topics: TopicCounters,
    pub connections: u64,
    /// `(topic, partition) → high watermark` of the partitions this shard leads.
    pub partition_ends: BTreeMap<(String, i32), i64>,
    /// `(group, topic, partition, committed offset)` of the groups this shard coordinates.
    pub committed_offsets: Vec<(String, String, i32, i64)>,
    /// How busy each shard is (one entry per shard; a sum keeps them apart).
    pub shard_loads: Vec<ShardLoad>,
}

/// A shard's own load: what tells a saturated core from an idle one.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ShardLoad {
    pub shard: usize,
    /// Seconds the executor ran tasks or polled I/O, not sleeping (glommio's `total_runtime`).
    pub busy_s: f64,
    /// CPU seconds of the shard's thread (user + system, `getrusage(RUSAGE_THREAD)`); `None`
    /// if it could not be read. io_uring's kernel workers are not in it.
    pub cpu_s: Option<f64>,
    pub tasks: u64,
}

impl ShardMetrics {
    /// The calling shard's load so far, read on its own thread. `executor_stats` takes the
    /// counts since its previous call (it resets them), so this must be its only caller.
    pub fn load(&self, shard: usize) -> ShardLoad {
        let since_last = glommio::executor().executor_stats();
        self.busy.set(self.busy.get() + since_last.total_runtime());
        self.tasks.set(self.tasks.get() + since_last.tasks_executed());
        let cpu_s = cpu_seconds(libc::RUSAGE_THREAD);
        ShardLoad { shard, busy_s: self.busy.get().as_secs_f64(), cpu_s, tasks: self.tasks.get() }
    }
}

/// User + system CPU seconds of `who`: `RUSAGE_THREAD` the calling thread, `RUSAGE_SELF` every
/// thread of the process (io_uring's workers included). `None` if the kernel refuses.
pub fn cpu_seconds(who: libc::c_int) -> Option<f64> {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage writes one `rusage` into memory we own; a zeroed one is valid anyway.
    if unsafe { libc::getrusage(who, usage.as_mut_ptr()) } != 0 {
        return None;
    }
    // SAFETY: initialised (zeroed, then written by the kernel).
    let usage = unsafe { usage.assume_init() };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Some(seconds(usage.ru_utime) + seconds(usage.ru_stime))
}

#[derive(Clone)]
pub struct RequestSnapshot {
    /// Microseconds, recent requests only (see the module docs).
    pub total_time_us: Histogram<u64>,
    pub send_time_us: Histogram<u64>,
    /// Every request since the start, by [`TIME_BUCKETS_US`].
    pub total_time_buckets: TimeBuckets,
}

impl ShardSnapshot {
    /// The broker's view: every shard's counters and histograms added up.
    pub fn sum<'a>(shards: impl IntoIterator<Item = &'a ShardSnapshot>) -> ShardSnapshot {
        let mut out = ShardSnapshot::default();
        for s in shards {
            let t = &mut out.topics;
            t.messages_in += s.topics.messages_in;
            t.bytes_in += s.topics.bytes_in;
            t.bytes_out += s.topics.bytes_out;
            t.produce_requests += s.topics.produce_requests;
            t.failed_produce_requests += s.topics.failed_produce_requests;
            t.fetch_requests += s.topics.fetch_requests;
            t.failed_fetch_requests += s.topics.failed_fetch_requests;
            out.connections += s.connections;
            out.partition_ends.extend(s.partition_ends.iter().map(|(k, v)| (k.clone(), *v)));
            out.committed_offsets.extend(s.committed_offsets.iter().cloned());
            out.shard_loads.extend(s.shard_loads.iter().cloned());
            for (api_key, r) in &s.requests {
                match out.requests.get_mut(api_key) {
                    None => {
                        out.requests.insert(*api_key, r.clone());
                    }
                    Some(sum) => {
                        sum.total_time_buckets.add(&r.total_time_buckets);
                        // Same bounds on every shard, so adding cannot fail; if it did, the
                        // sum would only miss that shard's recent times.
                        let _ = sum.total_time_us.add(&r.total_time_us);
                        let _ = sum.send_time_us.add(&r.send_time_us);
                    }
                }
            }
        }
        out
    }
}

/// The current and the previous window; a window is dropped once it is two windows old.
struct WindowedHistogram {
    current: Histogram<u64>,
    previous: Histogram<u64>,
    current_started: Instant,
}

impl WindowedHistogram {
    fn new(now: Instant) -> WindowedHistogram {
        WindowedHistogram {
            current: new_time_histogram(),
            previous: new_time_histogram(),
            current_started: now,
        }
    }

    fn rotate(&mut self, now: Instant) {
        let window = Duration::from_millis(WINDOW_MS);
        let age = now.saturating_duration_since(self.current_started);
        if age < window {
            return;
        }
        std::mem::swap(&mut self.current, &mut self.previous);
        self.current.reset();
        if age >= 2 * window {
            // Idle for longer than both windows: nothing recent is left.
            self.previous.reset();
        }
        self.current_started = now;
    }

    fn record(&mut self, now: Instant, time: Duration) {
        self.rotate(now);
        let us = u64::try_from(time.as_micros()).unwrap_or(u64::MAX).clamp(1, TIME_US_MAX);
        self.current.saturating_record(us);
    }

    fn recent(&mut self, now: Instant) -> Histogram<u64> {
        self.rotate(now);
        let mut out = self.previous.clone();
        let _ = out.add(&self.current);
        out
    }
}

fn new_time_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, TIME_US_MAX, TIME_SIGNIFICANT_DIGITS) {
        Ok(h) => h,
        Err(e) => unreachable!("constant histogram bounds are valid: {e}"),
    }
}

/// Shard 0's latest snapshot of every shard.
pub struct Snapshots {
    latest: RefCell<Vec<ShardSnapshot>>,
}

impl Snapshots {
    pub fn sum(&self) -> ShardSnapshot {
        ShardSnapshot::sum(self.latest.borrow().iter())
    }
}

/// The channels of a broker's metrics: one per shard, every receiver on shard 0.
pub struct MetricsWiring {
    pub senders: Vec<SharedSender<ShardSnapshot>>,
    pub receivers: Vec<SharedReceiver<ShardSnapshot>>,
}

pub fn metrics_wiring(num_shards: usize) -> MetricsWiring {
    let (senders, receivers) =
        (0..num_shards).map(|_| shared_channel::new_bounded(SNAPSHOT_CHANNEL_CAPACITY)).unzip();
    MetricsWiring { senders, receivers }
}

/// Shard 0: keeps the latest snapshot of each shard until that shard's sender goes away.
pub async fn collect(receivers: Vec<SharedReceiver<ShardSnapshot>>) -> Rc<Snapshots> {
    let snapshots =
        Rc::new(Snapshots { latest: RefCell::new(vec![ShardSnapshot::default(); receivers.len()]) });
    for (shard, receiver) in receivers.into_iter().enumerate() {
        let receiver = receiver.connect().await;
        let snapshots = snapshots.clone();
        glommio::spawn_local(async move {
            while let Some(snapshot) = receiver.recv().await {
                if let Some(slot) = snapshots.latest.borrow_mut().get_mut(shard) {
                    *slot = snapshot;
                }
            }
        })
        .detach();
    }
    snapshots
}

/// Every shard: sends its snapshot to shard 0 every [`PUBLISH_INTERVAL_MS`], for ever.
pub async fn publish(sender: SharedSender<ShardSnapshot>, take: impl Fn() -> ShardSnapshot) {
    let sender = sender.connect().await;
    loop {
        if sender.send(take()).await.is_err() {
            return; // shard 0 is gone: the broker is stopping
        }
        glommio::timer::sleep(Duration::from_millis(PUBLISH_INTERVAL_MS)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_times_cover_recent_windows_only() {
        let t0 = Instant::now();
        let mut h = WindowedHistogram::new(t0);
        h.record(t0, Duration::from_millis(5));
        assert_eq!(h.recent(t0).len(), 1);
        let window = Duration::from_millis(WINDOW_MS);
        // One window later the old value is still in the previous window...
        h.record(t0 + window, Duration::from_millis(7));
        assert_eq!(h.recent(t0 + window).len(), 2);
        // ...and two windows later it is gone, the newer one kept.
        let later = t0 + 2 * window;
        assert_eq!(h.recent(later).len(), 1);
        assert_eq!(h.recent(later + 2 * window).len(), 0);
    }

    #[test]
    fn shards_add_up() {
        let t0 = Instant::now();
        let (a, b) = (ShardMetrics::default(), ShardMetrics::default());
        a.record_produce(Some((1000, 10)));
        b.record_produce(Some((24, 1)));
        b.record_produce(None);
        a.record_fetch(Some(1024));
        a.record_request(0, t0, t0 + Duration::from_micros(900), t0 + Duration::from_millis(1));
        b.record_request(0, t0, t0 + Duration::from_millis(2), t0 + Duration::from_millis(3));
        b.record_request(1, t0, t0, t0 + Duration::from_millis(1));
        let sum = ShardSnapshot::sum([&a.snapshot(2), &b.snapshot(3)]);
        assert_eq!(sum.connections, 5);
        assert_eq!(
            sum.topics,
            TopicCounters {
                messages_in: 11,
                bytes_in: 1024,
                bytes_out: 1024,
                produce_requests: 3,
                failed_produce_requests: 1,
                fetch_requests: 1,
                failed_fetch_requests: 0,
            }
        );
        let produce = &sum.requests[&0];
        assert_eq!(produce.total_time_buckets.count(), 2);
        assert_eq!(produce.total_time_us.len(), 2);
        assert!(produce.total_time_us.equivalent(produce.total_time_us.max(), 3_000));
        assert!(produce.send_time_us.equivalent(produce.send_time_us.min(), 100));
        assert_eq!(sum.requests[&1].total_time_buckets.count(), 1);
        // 1 ms is in the bucket up to 1,000 µs, 3 ms in the one up to 3,000 µs.
        let buckets = &produce.total_time_buckets;
        let upper_of = |us: u64| TIME_BUCKETS_US.iter().position(|&b| b == us).unwrap();
        assert_eq!((buckets.counts[upper_of(1_000)], buckets.counts[upper_of(3_000)]), (1, 1));
        assert_eq!(buckets.counts.iter().sum::<u64>(), 2);
        assert_eq!(buckets.sum_us, 4_000);
    }

    #[test]
    fn times_beyond_the_last_bucket_are_counted_above_it() {
        let mut b = TimeBuckets::default();
        b.record(0);
        b.record(TIME_BUCKETS_US[29] + 1);
        assert_eq!((b.counts[0], b.counts[30]), (1, 1));
    }
}
