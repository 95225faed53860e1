//! `shardlog-bench`: run a workload against a bootstrap address, probe a process, or turn a
//! directory of runs into a report. See `bench/README.md`.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use shardlog_bench::run::{self, ClientKind, RunOptions};
use shardlog_bench::workload::{KeyDistributor, Workload};
use shardlog_bench::{ceiling, probe, report, wakeup};

#[derive(Parser)]
#[command(name = "shardlog-bench", about = "Load generator and reports for Kafka-compatible brokers")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run one workload; prints progress and a table on stderr, one JSON object on stdout.
    Run(Box<RunArgs>),
    /// Print a process's CPU seconds and RSS as JSON (for idle-RSS readings).
    Probe {
        #[arg(long)]
        pid: u32,
    },
    /// Measure thread wake-up round trips (across two cores, and on one) as JSON: the floor
    /// under every request's latency on this machine.
    Wakeup {
        #[arg(long, default_value_t = 20_000)]
        round_trips: u32,
    },
    /// Measure the machine's produce ceiling as JSON: loopback TCP streams received and dropped,
    /// then received into new files under --dir (the least work a broker does per produced byte)
    Ceiling {
        /// A directory on the log dir's file system; the scratch files are removed afterwards
        #[arg(long)]
        dir: PathBuf,
        /// One per broker shard
        #[arg(long, default_value_t = 2)]
        streams: usize,
        #[arg(long, default_value_t = 2 << 30)]
        bytes: u64,
    },
    /// Turn a report directory (runs.jsonl, raw/, *.folded) into report.md, results.json, SVGs.
    Report {
        #[arg(long)]
        dir: PathBuf,
    },
}

#[derive(Args)]
struct RunArgs {
    /// Workload file (TOML, after OMB's workloads); fields below override it.
    #[arg(long)]
    workload: PathBuf,
    /// Any Kafka-compatible bootstrap address, e.g. 127.0.0.1:9092.
    #[arg(long)]
    bootstrap: String,
    /// The client that moves the records: librdkafka, or our own (pipelined Produce of
    /// batches built with shardlog-storage, Fetch walked by batch headers).
    #[arg(long, value_enum, default_value_t = ClientKind::Rdkafka)]
    client: ClientKind,
    /// Name of this run in the JSON and the report.
    #[arg(long, default_value = "run")]
    label: String,
    /// `key=value`, repeatable; stored in the JSON (the report groups runs by `target`,
    /// `series`).
    #[arg(long = "tag")]
    tags: Vec<String>,
    /// Append the JSON object as one line to this file instead of printing it.
    #[arg(long)]
    json: Option<PathBuf>,
    /// The broker's pid: CPU seconds and RSS per phase come from /proc/<pid>.
    #[arg(long)]
    broker_pid: Option<u32>,
    /// `PHASE=FILE`, repeatable: `perf record` the broker into FILE during PHASE (measure,
    /// backlog or drain). Needs --broker-pid.
    #[arg(long = "profile", requires = "broker_pid")]
    profiles: Vec<String>,
    /// perf sampling frequency (bounded: DWARF samples are 16 KiB each).
    #[arg(long, default_value_t = 999, value_parser = clap::value_parser!(u32).range(1..=4999))]
    profile_hz: u32,
    /// `host:port` of the broker's Prometheus endpoint (shardlog: `metrics.listener`): records
    /// the broker's own request times (p50 … p99.9 by request type) per phase.
    #[arg(long)]
    broker_metrics: Option<String>,
    /// Leave the run's topics on the broker.
    #[arg(long)]
    keep_topics: bool,
    /// No progress line.
    #[arg(long)]
    quiet: bool,
    #[command(flatten)]
    overrides: Overrides,
}

/// Command-line overrides of workload fields (same names, dashes for underscores).
#[derive(Args)]
struct Overrides {
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    topics: Option<usize>,
    #[arg(long)]
    partitions_per_topic: Option<usize>,
    #[arg(long)]
    message_size_bytes: Option<usize>,
    #[arg(long, value_enum)]
    key_distributor: Option<KeyDistributor>,
    #[arg(long)]
    producers_per_topic: Option<usize>,
    #[arg(long)]
    consumers_per_topic: Option<usize>,
    /// 0 = closed loop (max rate).
    #[arg(long)]
    producer_rate_msgs_per_s: Option<u64>,
    #[arg(long)]
    consumer_backlog_bytes: Option<u64>,
    #[arg(long)]
    test_duration_s: Option<u64>,
    #[arg(long)]
    warmup_s: Option<u64>,
    #[arg(long)]
    acks: Option<String>,
    #[arg(long)]
    compression: Option<String>,
    #[arg(long)]
    batch_size_bytes: Option<u64>,
    #[arg(long)]
    batch_num_messages: Option<u64>,
    #[arg(long)]
    linger_ms: Option<u64>,
    #[arg(long)]
    fetch_wait_max_ms: Option<u64>,
    #[arg(long)]
    max_partition_fetch_bytes: Option<u64>,
    /// `key=value`, repeatable: an extra librdkafka producer property.
    #[arg(long)]
    producer_config: Vec<String>,
    /// `key=value`, repeatable: an extra librdkafka consumer property.
    #[arg(long)]
    consumer_config: Vec<String>,
}

impl Overrides {
    fn apply(self, w: &mut Workload) -> Result<()> {
        w.producer_config.extend(parse_tags(&self.producer_config)?);
        w.consumer_config.extend(parse_tags(&self.consumer_config)?);
        macro_rules! set {
            ($($f:ident),*) => { $( if let Some(v) = self.$f { w.$f = v; } )* };
        }
        set!(
            name,
            topics,
            partitions_per_topic,
            message_size_bytes,
            key_distributor,
            producers_per_topic,
            consumers_per_topic,
            producer_rate_msgs_per_s,
            consumer_backlog_bytes,
            test_duration_s,
            warmup_s,
            acks,
            compression,
            batch_size_bytes,
            batch_num_messages,
            linger_ms,
            fetch_wait_max_ms,
            max_partition_fetch_bytes
        );
        Ok(())
    }
}

fn parse_tags(tags: &[String]) -> Result<BTreeMap<String, String>> {
    tags.iter()
        .map(|t| match t.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => bail!("expected key=value, got {t:?}"),
        })
        .collect()
}

fn run_command(a: RunArgs) -> Result<()> {
    let mut workload = Workload::load(&a.workload)?;
    a.overrides.apply(&mut workload)?;
    workload.validate()?;
    let opts = RunOptions {
        bootstrap: a.bootstrap,
        client: a.client,
        label: a.label,
        tags: parse_tags(&a.tags)?,
        workload,
        broker_pid: a.broker_pid,
        profiles: parse_tags(&a.profiles)?.into_iter().map(|(k, v)| (k, PathBuf::from(v))).collect(),
        profile_hz: a.profile_hz,
        broker_metrics: a.broker_metrics,
        keep_topics: a.keep_topics,
        progress: !a.quiet,
    };
    let result = run::run(&opts)?;
    eprint!("{}", result.human_table());
    let line = serde_json::to_string(&result)?;
    match a.json {
        Some(path) => {
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .with_context(|| format!("opening {}", path.display()))?;
            writeln!(f, "{line}")?;
        }
        None => println!("{line}"),
    }
    Ok(())
}

fn main() -> Result<()> {
    shardlog_net::alloc::keep_large_allocations_in_the_heap();
    match Cli::parse().command {
        Command::Run(a) => run_command(*a),
        Command::Probe { pid } => {
            println!("{}", serde_json::to_string(&probe::sample(pid)?)?);
            Ok(())
        }
        Command::Wakeup { round_trips } => {
            println!("{}", serde_json::to_string(&wakeup::measure(round_trips)?)?);
            Ok(())
        }
        Command::Ceiling { dir, streams, bytes } => {
            println!("{}", serde_json::to_string(&ceiling::measure(&dir, streams, bytes)?)?);
            Ok(())
        }
        Command::Report { dir } => report::write(&dir),
    }
}
