//! One run's result: the JSON object written per run, and the human table printed at its end.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::latency::{fmt_us, Percentiles};
use crate::workload::Workload;

pub const SCHEMA: &str = "shardlog-bench.run/1";

/// Messages and payload bytes moved in one direction during one phase.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Flow {
    pub messages: u64,
    pub bytes: u64,
    pub errors: u64,
    pub msgs_per_s: f64,
    pub bytes_per_s: f64,
}

impl Flow {
    pub fn new(messages: u64, bytes: u64, errors: u64, wall_s: f64) -> Flow {
        let per_s = |n: u64| if wall_s > 0.0 { n as f64 / wall_s } else { 0.0 };
        Flow { messages, bytes, errors, msgs_per_s: per_s(messages), bytes_per_s: per_s(bytes) }
    }
}

/// The broker's resource use over one phase (when its pid was given).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct BrokerUse {
    pub cpu_s: f64,
    /// CPU seconds over the phase divided by GB (1e9 bytes) produced / consumed in it.
    pub cpu_s_per_gb_produced: Option<f64>,
    pub cpu_s_per_gb_consumed: Option<f64>,
    pub rss_end_bytes: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseResult {
    /// `measure` (producers and consumers together), `backlog` (produce only) or `drain`
    /// (consume only).
    pub name: String,
    pub wall_s: f64,
    pub produced: Flow,
    pub consumed: Flow,
    pub ack_latency_us: Option<Percentiles>,
    pub e2e_latency_us: Option<Percentiles>,
    pub broker: Option<BrokerUse>,
    /// The `perf record` output, if this phase was profiled.
    pub profile: Option<String>,
    /// The broker's own time per request type (from reading a request to writing its
    /// response) over this phase, from its metrics endpoint (`--broker-metrics`).
    #[serde(default)]
    pub broker_request_us: Option<BTreeMap<String, crate::broker_metrics::RequestTimes>>,
    /// Each broker shard's busy and CPU seconds over this phase, from the same endpoint.
    #[serde(default)]
    pub broker_shards: Option<Vec<crate::broker_metrics::ShardUse>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunResult {
    pub schema: String,
    pub label: String,
    /// The client that moved the records: `rdkafka` or `native` (runs from before the native
    /// client have no field and were librdkafka's).
    #[serde(default = "rdkafka")]
    pub client: String,
    /// Free-form `key=value` tags from the command line (the report groups runs by them).
    pub tags: BTreeMap<String, String>,
    pub bootstrap: String,
    pub started_unix_ms: u64,
    pub workload: Workload,
    pub topics: Vec<String>,
    pub phases: Vec<PhaseResult>,
    pub broker_rss_start_bytes: Option<u64>,
}

fn rdkafka() -> String {
    "rdkafka".into()
}

impl RunResult {
    pub fn phase(&self, name: &str) -> Option<&PhaseResult> {
        self.phases.iter().find(|p| p.name == name)
    }

    /// The table printed at the end of a run.
    pub fn human_table(&self) -> String {
        let mut s = String::new();
        let w = &self.workload;
        let _ = writeln!(
            s,
            "\n{} — {} → {} ({} client): {} topic(s) × {} partitions, {} B, {} producer(s), {} consumer(s), {}, acks={}, compression={}, linger {} ms",
            self.label,
            w.name,
            self.bootstrap,
            self.client,
            w.topics,
            w.partitions_per_topic,
            w.message_size_bytes,
            w.producers(),
            w.consumers(),
            if w.producer_rate_msgs_per_s == 0 {
                "closed loop".to_string()
            } else {
                format!("open loop at {} msg/s", w.producer_rate_msgs_per_s)
            },
            w.acks,
            w.compression,
            w.linger_ms
        );
        let _ = writeln!(
            s,
            "{:<8} {:>7} {:>12} {:>9} {:>12} {:>9} {:>7} {:>9} {:>9}",
            "phase",
            "wall s",
            "prod msg/s",
            "prod MB/s",
            "cons msg/s",
            "cons MB/s",
            "errors",
            "cpu s",
            "cpu s/GB"
        );
        for p in &self.phases {
            let (cpu, per_gb) = match &p.broker {
                Some(b) => (
                    format!("{:.2}", b.cpu_s),
                    b.cpu_s_per_gb_produced
                        .or(b.cpu_s_per_gb_consumed)
                        .map_or("-".into(), |v| format!("{v:.2}")),
                ),
                None => ("-".into(), "-".into()),
            };
            let _ = writeln!(
                s,
                "{:<8} {:>7.2} {:>12.0} {:>9.1} {:>12.0} {:>9.1} {:>7} {:>9} {:>9}",
                p.name,
                p.wall_s,
                p.produced.msgs_per_s,
                p.produced.bytes_per_s / 1e6,
                p.consumed.msgs_per_s,
                p.consumed.bytes_per_s / 1e6,
                p.produced.errors + p.consumed.errors,
                cpu,
                per_gb
            );
        }
        let _ = writeln!(
            s,
            "{:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
            "latency", "count", "p50", "p90", "p99", "p99.9", "p99.99", "max", "mean"
        );
        for p in &self.phases {
            for (what, l) in [("ack", &p.ack_latency_us), ("e2e", &p.e2e_latency_us)] {
                if let Some(l) = l {
                    let _ = writeln!(
                        s,
                        "{:<14} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9} {:>10}",
                        format!("{} {what}", p.name),
                        l.count,
                        fmt_us(l.p50_us),
                        fmt_us(l.p90_us),
                        fmt_us(l.p99_us),
                        fmt_us(l.p999_us),
                        fmt_us(l.p9999_us),
                        fmt_us(l.max_us),
                        fmt_us(l.mean_us as u64)
                    );
                }
            }
        }
        for p in &self.phases {
            for shard in p.broker_shards.iter().flatten() {
                let share = |v: f64| {
                    if p.wall_s > 0.0 {
                        format!("{:.0} %", 100.0 * v / p.wall_s)
                    } else {
                        "–".into()
                    }
                };
                let _ = writeln!(
                    s,
                    "broker shard {} ({}): busy {:.2} s = {} of the phase, CPU {}",
                    shard.shard,
                    p.name,
                    shard.busy_s,
                    share(shard.busy_s),
                    shard.cpu_s.map_or("–".into(), |c| format!("{c:.2} s = {}", share(c)))
                );
            }
        }
        let broker_times = self.phases.iter().filter_map(|p| Some((p, p.broker_request_us.as_ref()?)));
        for (p, times) in broker_times {
            let _ = writeln!(
                s,
                "broker time ({}, from its metrics) {:>9} {:>9} {:>9} {:>9}",
                p.name, "p50", "p90", "p99", "p99.9"
            );
            for (request, t) in times {
                let _ = writeln!(
                    s,
                    "  {request:<14} {:>9} requests {:>9} {:>9} {:>9} {:>9}",
                    t.count,
                    fmt_us(t.p50_us as u64),
                    fmt_us(t.p90_us as u64),
                    fmt_us(t.p99_us as u64),
                    fmt_us(t.p999_us as u64)
                );
            }
        }
        s
    }
}
