//! The Prometheus (OpenMetrics) text of a scrape, encoded by `prometheus-client`.
//!
//! Names are those Kafka's JMX beans get from the JMX exporter's standard Kafka rules, so a
//! dashboard built on Kafka reads these unchanged: a meter `kafka.server:type=
//! BrokerTopicMetrics,name=BytesInPerSec` is the counter `kafka_server_brokertopicmetrics_
//! bytesin_total`; a gauge `kafka.server:type=ReplicaManager,name=PartitionCount` is
//! `kafka_server_replicamanager_partitioncount`; a request histogram's 99th percentile is
//! `kafka_network_requestmetrics_totaltimems{request="Produce",quantile="0.99"}`.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use shardlog_net::kafka_protocol::messages::ApiKey;

use super::{RequestSnapshot, ShardLoad, ShardSnapshot, TIME_BUCKETS_US};
use crate::metadata::MetadataImage;

/// Kafka's request-time percentiles (`50thPercentile` … `999thPercentile`) as quantile labels.
const QUANTILES: [(&str, f64); 6] =
    [("0.50", 0.50), ("0.75", 0.75), ("0.95", 0.95), ("0.98", 0.98), ("0.99", 0.99), ("0.999", 0.999)];

/// Picks one of a request type's histograms.
type HistogramOf = fn(&RequestSnapshot) -> &hdrhistogram::Histogram<u64>;
/// Picks one of a shard's load figures (`None`: not known).
type ShardValue = fn(&ShardLoad) -> Option<f64>;

/// What the controller's and the replica manager's gauges report, from the metadata image.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterGauges {
    pub topics: u64,
    pub partitions: u64,
    /// Partitions some shard of this broker leads (all of them, on a single broker).
    pub leaders: u64,
    pub under_replicated: u64,
    pub offline: u64,
    /// 1 on the broker whose shard 0 runs the controller.
    pub active_controller: u64,
}

impl ClusterGauges {
    pub fn from_image(image: &MetadataImage, node_ids: &[i32], runs_controller: bool) -> ClusterGauges {
        let mut g = ClusterGauges { active_controller: runs_controller as u64, ..ClusterGauges::default() };
        for topic in image.topics() {
            g.topics += 1;
            for p in &topic.partitions {
                g.partitions += 1;
                g.leaders += node_ids.contains(&p.leader) as u64;
                g.under_replicated += (p.isr.len() < p.replicas.len()) as u64;
                g.offline += (p.leader < 0) as u64;
            }
        }
        g
    }
}

/// The broker process as Prometheus's standard `process_*` metrics report it; each is `None`
/// when the system could not say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ProcessStats {
    pub cpu_s: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub start_time_s: Option<f64>,
}

/// Descriptors counted at most, so a scrape's work is bounded whatever the process holds.
const OPEN_FDS_COUNTED_MAX: usize = 1 << 20;

impl ProcessStats {
    /// `started_unix_s`: when the broker started.
    pub fn read(started_unix_s: f64) -> ProcessStats {
        // statm's second field: resident pages.
        let resident_pages = std::fs::read_to_string("/proc/self/statm")
            .ok()
            .and_then(|statm| statm.split_whitespace().nth(1)?.parse::<u64>().ok());
        // SAFETY: sysconf reads a constant and touches no memory of ours.
        let page_bytes = u64::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) }).ok();
        let open_fds =
            std::fs::read_dir("/proc/self/fd").ok().map(|d| d.take(OPEN_FDS_COUNTED_MAX).count() as u64);
        ProcessStats {
            // Every thread of the process, io_uring's workers included.
            cpu_s: super::cpu_seconds(libc::RUSAGE_SELF),
            resident_bytes: resident_pages.zip(page_bytes).map(|(pages, bytes)| pages * bytes),
            open_fds,
            start_time_s: Some(started_unix_s),
        }
    }
}

/// The whole scrape.
pub fn render(
    sum: ShardSnapshot,
    gauges: ClusterGauges,
    process: ProcessStats,
    listener_name: &str,
) -> String {
    let mut registry = Registry::default();
    let listener_name = listener_name.to_string();
    registry.register_collector(Box::new(Scrape { sum, gauges, process, listener_name }));
    let mut out = String::new();
    match prometheus_client::encoding::text::encode(&mut out, &registry) {
        Ok(()) => out,
        // Writing into a String cannot fail; say so rather than serve half a page.
        Err(e) => format!("# metrics could not be encoded: {e}\n# EOF\n"),
    }
}

#[derive(Debug)]
struct Scrape {
    sum: ShardSnapshot,
    gauges: ClusterGauges,
    process: ProcessStats,
    listener_name: String,
}

impl std::fmt::Debug for RequestSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestSnapshot")
            .field("count", &self.total_time_buckets.count())
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for ShardSnapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ShardSnapshot").field("topics", &self.topics).finish_non_exhaustive()
    }
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let t = &self.sum.topics;
        let topic_counters = [
            ("messagesin", "Messages appended to partition logs.", t.messages_in),
            ("bytesin", "Record bytes appended by producers.", t.bytes_in),
            ("bytesout", "Record bytes returned to fetches.", t.bytes_out),
            ("totalproducerequests", "Produce requests, counted per partition.", t.produce_requests),
            (
                "failedproducerequests",
                "Partitions of produce requests that failed.",
                t.failed_produce_requests,
            ),
            ("totalfetchrequests", "Fetch requests, counted per partition.", t.fetch_requests),
            ("failedfetchrequests", "Partitions of fetch requests that failed.", t.failed_fetch_requests),
        ];
        for (name, help, value) in topic_counters {
            let counter = ConstCounter::new(value);
            let name = format!("kafka_server_brokertopicmetrics_{name}");
            counter.encode(encoder.encode_descriptor(&name, help, None, counter.metric_type())?)?;
        }

        let g = &self.gauges;
        let gauges = [
            ("kafka_server_replicamanager_partitioncount", "Partitions on this broker.", g.partitions),
            ("kafka_server_replicamanager_leadercount", "Partitions this broker leads.", g.leaders),
            (
                "kafka_server_replicamanager_underreplicatedpartitions",
                "Partitions whose in-sync replicas are fewer than their replicas.",
                g.under_replicated,
            ),
            (
                "kafka_controller_kafkacontroller_activecontrollercount",
                "1 if this broker runs the active controller.",
                g.active_controller,
            ),
            (
                "kafka_controller_kafkacontroller_offlinepartitionscount",
                "Partitions without a leader.",
                g.offline,
            ),
            ("kafka_controller_kafkacontroller_globaltopiccount", "Topics in the cluster.", g.topics),
            (
                "kafka_controller_kafkacontroller_globalpartitioncount",
                "Partitions in the cluster.",
                g.partitions,
            ),
        ];
        for (name, help, value) in gauges {
            let gauge = ConstGauge::new(value as i64);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }
        {
            let gauge = ConstGauge::new(self.sum.connections as i64);
            let mut metric = encoder.encode_descriptor(
                "kafka_server_socket_server_metrics_connection_count",
                "Open client connections.",
                None,
                gauge.metric_type(),
            )?;
            gauge.encode(metric.encode_family(&[("listener", self.listener_name.as_str())])?)?;
        }

        // Each shard is one core: its busy time is how near that core is to saturation.
        let mut loads = self.sum.shard_loads.clone();
        loads.sort_by_key(|l| l.shard);
        let shard_counters: [(&str, &str, ShardValue); 3] = [
            (
                "shardlog_shard_busy_seconds",
                "Seconds each shard's executor was running tasks or polling I/O rather than sleeping; rate() is its core's utilisation.",
                |l| Some(l.busy_s),
            ),
            (
                "shardlog_shard_cpu_seconds",
                "CPU seconds of each shard's thread (user + system; io_uring workers not included).",
                |l| l.cpu_s,
            ),
            ("shardlog_shard_tasks", "Tasks each shard's executor ran.", |l| Some(l.tasks as f64)),
        ];
        for (name, help, value_of) in shard_counters {
            let mut metric =
                encoder.encode_descriptor(name, help, None, ConstCounter::new(0.0f64).metric_type())?;
            for l in &loads {
                let Some(value) = value_of(l) else { continue };
                let shard = l.shard.to_string();
                ConstCounter::new(value).encode(metric.encode_family(&[("shard", shard.as_str())])?)?;
            }
        }
        let p = &self.process;
        if let Some(cpu_s) = p.cpu_s {
            let counter = ConstCounter::new(cpu_s);
            let help = "User and system CPU seconds of the broker process (every thread).";
            counter.encode(encoder.encode_descriptor(
                "process_cpu_seconds",
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        let process_gauges = [
            (
                "process_resident_memory_bytes",
                "Resident memory of the broker process.",
                p.resident_bytes.map(|v| v as f64),
            ),
            (
                "process_open_fds",
                "Open file descriptors of the broker process.",
                p.open_fds.map(|v| v as f64),
            ),
            ("process_start_time_seconds", "When the broker started, Unix seconds.", p.start_time_s),
        ];
        for (name, help, value) in process_gauges {
            let Some(value) = value else { continue };
            let gauge = ConstGauge::new(value);
            gauge.encode(encoder.encode_descriptor(name, help, None, gauge.metric_type())?)?;
        }

        // Consumer lag under kafka_exporter's names (what Prometheus setups for Kafka read):
        // a group's committed offset against its partition's high watermark.
        {
            let gauge = ConstGauge::new(0i64);
            let mut ends = encoder.encode_descriptor(
                "kafka_topic_partition_current_offset",
                "High watermark of each partition.",
                None,
                gauge.metric_type(),
            )?;
            for ((topic, partition), end) in &self.sum.partition_ends {
                let partition = partition.to_string();
                let labels = [("topic", topic.as_str()), ("partition", partition.as_str())];
                ConstGauge::new(*end).encode(ends.encode_family(&labels)?)?;
            }
        }
        let mut committed = self.sum.committed_offsets.clone();
        committed.sort();
        for (name, help, lag) in [
            ("kafka_consumergroup_current_offset", "A group's committed offset of each partition.", false),
            (
                "kafka_consumergroup_lag",
                "Messages a group has not committed yet: high watermark minus committed offset.",
                true,
            ),
        ] {
            let mut metric =
                encoder.encode_descriptor(name, help, None, ConstGauge::new(0i64).metric_type())?;
            for (group, topic, partition, offset) in &committed {
                let value = match (lag, self.sum.partition_ends.get(&(topic.clone(), *partition))) {
                    (false, _) => *offset,
                    // A negative offset is "none committed": no lag to say.
                    (true, Some(_)) if *offset < 0 => continue,
                    (true, Some(end)) => (end - offset).max(0),
                    (true, None) => continue, // the partition is gone, or beyond the bound
                };
                let partition = partition.to_string();
                let labels = [
                    ("consumergroup", group.as_str()),
                    ("topic", topic.as_str()),
                    ("partition", partition.as_str()),
                ];
                ConstGauge::new(value).encode(metric.encode_family(&labels)?)?;
            }
        }

        let requests: Vec<(String, &RequestSnapshot)> =
            self.sum.requests.iter().map(|(key, r)| (request_name(*key), r)).collect();
        {
            let mut metric = encoder.encode_descriptor(
                "kafka_network_requestmetrics_requests",
                "Requests served, by request type.",
                None,
                ConstCounter::new(0u64).metric_type(),
            )?;
            for (name, r) in &requests {
                ConstCounter::new(r.total_time_buckets.count())
                    .encode(metric.encode_family(&[("request", name.as_str())])?)?;
            }
        }
        let histograms: [(&str, &str, HistogramOf); 2] = [
            (
                "kafka_network_requestmetrics_totaltimems",
                "Milliseconds from reading a request to writing its response (recent requests).",
                |r| &r.total_time_us,
            ),
            (
                "kafka_network_requestmetrics_responsesendtimems",
                "Milliseconds spent writing responses (recent requests).",
                |r| &r.send_time_us,
            ),
        ];
        {
            let mut metric = encoder.encode_descriptor(
                "shardlog_request_total_time_seconds",
                "TotalTimeMs as a Prometheus histogram of every request since the start: diff two scrapes for the requests between them.",
                None,
                MetricType::Histogram,
            )?;
            for (name, r) in &requests {
                let b = &r.total_time_buckets;
                let buckets: Vec<(f64, u64)> = TIME_BUCKETS_US
                    .iter()
                    .map(|&us| us as f64 / 1e6)
                    .chain([f64::MAX])
                    .zip(b.counts)
                    .collect();
                let sum_s = b.sum_us as f64 / 1e6;
                let count = b.counts.iter().sum();
                metric
                    .encode_family(&[("request", name.as_str())])?
                    .encode_histogram::<NoLabelSet>(sum_s, count, &buckets, None)?;
            }
        }
        for (metric_name, help, histogram_of) in histograms {
            let mut metric =
                encoder.encode_descriptor(metric_name, help, None, ConstGauge::new(0.0f64).metric_type())?;
            for (name, r) in &requests {
                let h = histogram_of(r);
                for (label, q) in QUANTILES {
                    let us = if h.is_empty() { 0 } else { h.median_equivalent(h.value_at_quantile(q)) };
                    let ms = us as f64 / 1000.0;
                    let labels = [("request", name.as_str()), ("quantile", label)];
                    ConstGauge::new(ms).encode(metric.encode_family(&labels)?)?;
                }
            }
        }
        Ok(())
    }
}

/// Kafka's request names: the API's name, except that a fetch from a consumer is
/// `FetchConsumer` (Kafka splits consumer from follower fetches; this broker has no followers).
fn request_name(api_key: i16) -> String {
    match ApiKey::try_from(api_key) {
        Ok(ApiKey::Fetch) => "FetchConsumer".to_string(),
        Ok(key) => format!("{key:?}"),
        Err(_) => format!("ApiKey{api_key}"),
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;
    use crate::metrics::{ShardLoad, ShardMetrics};

    #[test]
    fn kafka_names_and_values_are_rendered() {
        let shard = ShardMetrics::default();
        let t0 = Instant::now();
        for ms in 1..=100 {
            let sent = t0 + Duration::from_millis(ms);
            shard.record_request(ApiKey::Produce as i16, t0, sent, sent);
        }
        shard.record_request(ApiKey::Fetch as i16, t0, t0, t0 + Duration::from_millis(3));
        shard.record_produce(Some((4096, 4)));
        let gauges = ClusterGauges {
            topics: 1,
            partitions: 3,
            leaders: 3,
            active_controller: 1,
            ..Default::default()
        };
        // Partition ends on one shard, a group's offsets on another.
        let mut leader = shard.snapshot(7);
        leader.partition_ends.insert(("orders".into(), 0), 100);
        leader.partition_ends.insert(("orders".into(), 1), 40);
        let coordinator = ShardSnapshot {
            committed_offsets: vec![
                ("billing".into(), "orders".into(), 0, 90),
                ("billing".into(), "orders".into(), 1, -1),
                ("billing".into(), "gone".into(), 0, 5),
            ],
            ..ShardSnapshot::default()
        };
        leader.shard_loads = vec![ShardLoad { shard: 1, busy_s: 2.5, cpu_s: Some(2.0), tasks: 9 }];
        let process = ProcessStats { resident_bytes: Some(30 << 20), ..ProcessStats::default() };
        let text = render(ShardSnapshot::sum([&leader, &coordinator]), gauges, process, "PLAINTEXT");
        for line in [
            "kafka_server_brokertopicmetrics_bytesin_total 4096",
            "kafka_server_brokertopicmetrics_messagesin_total 4",
            "kafka_server_replicamanager_partitioncount 3",
            "kafka_controller_kafkacontroller_activecontrollercount 1",
            "kafka_server_socket_server_metrics_connection_count{listener=\"PLAINTEXT\"} 7",
            "kafka_network_requestmetrics_requests_total{request=\"Produce\"} 100",
            "kafka_network_requestmetrics_requests_total{request=\"FetchConsumer\"} 1",
            "shardlog_request_total_time_seconds_bucket{le=\"0.05\",request=\"Produce\"} 50",
            "shardlog_request_total_time_seconds_bucket{le=\"+Inf\",request=\"Produce\"} 100",
            "shardlog_request_total_time_seconds_count{request=\"Produce\"} 100",
            "shardlog_request_total_time_seconds_bucket{le=\"0.003\",request=\"FetchConsumer\"} 1",
            "kafka_topic_partition_current_offset{topic=\"orders\",partition=\"1\"} 40",
            "kafka_consumergroup_current_offset{consumergroup=\"billing\",topic=\"orders\",partition=\"0\"} 90",
            "kafka_consumergroup_lag{consumergroup=\"billing\",topic=\"orders\",partition=\"0\"} 10",
            "shardlog_shard_busy_seconds_total{shard=\"1\"} 2.5",
            "shardlog_shard_cpu_seconds_total{shard=\"1\"} 2.0",
            "shardlog_shard_tasks_total{shard=\"1\"} 9.0",
            "process_resident_memory_bytes 31457280.0",
        ] {
            assert!(text.lines().any(|l| l == line), "no line {line:?} in:\n{text}");
        }
        // Percentiles are within the histograms' 1 %.
        let value = |series: &str| -> f64 {
            let line =
                text.lines().find(|l| l.starts_with(series)).unwrap_or_else(|| panic!("{series}:\n{text}"));
            line[series.len()..].trim().parse().unwrap_or_else(|_| panic!("{line}"))
        };
        for (series, expected_ms) in [
            ("kafka_network_requestmetrics_totaltimems{request=\"Produce\",quantile=\"0.99\"}", 99.0),
            ("kafka_network_requestmetrics_totaltimems{request=\"Produce\",quantile=\"0.50\"}", 50.0),
            ("kafka_network_requestmetrics_totaltimems{request=\"FetchConsumer\",quantile=\"0.50\"}", 3.0),
            ("kafka_network_requestmetrics_responsesendtimems{request=\"Produce\",quantile=\"0.50\"}", 0.0),
        ] {
            let got = value(series);
            assert!(
                (got - expected_ms).abs() <= expected_ms * 0.01 + 0.002,
                "{series} = {got}, not {expected_ms}"
            );
        }
        assert!(text.ends_with("# EOF\n"), "{text}");
        // No lag without a committed offset, nor for a partition with no known end.
        assert!(!text
            .contains("kafka_consumergroup_lag{consumergroup=\"billing\",topic=\"orders\",partition=\"1\"}"));
        assert!(!text.contains("kafka_consumergroup_lag{consumergroup=\"billing\",topic=\"gone\""));
        // What /proc could not say is left out, not reported as 0.
        assert!(!text.contains("process_open_fds"), "{text}");
    }

    #[test]
    fn this_process_reads_as_itself() {
        let before = ProcessStats::read(1.5e9);
        // Touch 64 MiB and burn some CPU: both must show.
        let touched = std::hint::black_box(vec![1u8; 64 << 20]);
        let deadline = Instant::now() + Duration::from_secs(5);
        let cpu_before = before.cpu_s.expect("getrusage");
        while crate::metrics::cpu_seconds(libc::RUSAGE_SELF).is_some_and(|c| c < cpu_before + 0.02)
            && Instant::now() < deadline
        {
            std::hint::black_box(touched.iter().step_by(4096).map(|b| *b as u64).sum::<u64>());
        }
        let after = ProcessStats::read(1.5e9);
        let (rss_before, rss_after) = (before.resident_bytes.unwrap(), after.resident_bytes.unwrap());
        assert!(rss_after >= rss_before + (32 << 20), "{before:?} {after:?}");
        assert!(after.cpu_s.unwrap() >= cpu_before + 0.02, "{before:?} {after:?}");
        assert!(after.open_fds.is_some_and(|n| n >= 3), "{after:?}");
        assert_eq!(after.start_time_s, Some(1.5e9));
        drop(touched);
    }
}
