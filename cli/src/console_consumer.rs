//! `shardlog console-consumer`: Kafka 3.7's `kafka-console-consumer.sh`. Without `--group` it
//! assigns every partition of the topic (or the one `--partition` names); with one it is a
//! classic group member ([`crate::group_member`]) that reads from the committed offsets. It
//! fetches from each partition's leader and prints records the way Kafka's
//! `DefaultMessageFormatter` does;
//! `Processed a total of N messages` goes to stderr at the end (max messages, timeout, or a
//! SIGINT/SIGTERM the binary turns into the `stop` flag).
//!
//! Records are decoded with storage's `RecordBatch` / `Records`; control batches are never
//! printed, and with `read_committed` the batches of aborted transactions are skipped as the
//! Java consumer skips them (the Fetch response's aborted-transaction list).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, ValueEnum};
use shardlog_net::kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use shardlog_net::kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use shardlog_net::kafka_protocol::messages::{
    BrokerId, FetchRequest, FetchResponse, ListOffsetsRequest, ListOffsetsResponse,
};
use shardlog_storage::record_batch::{BatchIter, TimestampType};
use shardlog_storage::records::Records;

use crate::admin::{self, error_message, error_name, ToolError};
use crate::client::{timeout_from_command_config, Client};
use crate::group_member::{GroupMember, AUTO_COMMIT_INTERVAL};

const FETCH_V: i16 = 12;
const LIST_OFFSETS_V: i16 = 7;
const OFFSET_OUT_OF_RANGE: i16 = 1;
/// Bounds on what one fetch may bring (Kafka's `fetch.max.bytes` and
/// `max.partition.fetch.bytes` defaults) and on a batch's decompressed size.
const FETCH_MAX_BYTES: i32 = 52_428_800;
const PARTITION_MAX_BYTES: i32 = 1_048_576;
const MAX_UNCOMPRESSED_BYTES: usize = 64 << 20;
/// How long one Fetch waits for data (`fetch.max.wait.ms`); short so a stop is seen soon.
const FETCH_WAIT_MS: i32 = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum IsolationLevel {
    #[value(name = "read_uncommitted")]
    ReadUncommitted,
    #[value(name = "read_committed")]
    ReadCommitted,
}

/// Read records from a topic and print them (Kafka's kafka-console-consumer.sh, without groups).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    shardlog console-consumer --bootstrap-server localhost:9092 --topic orders --from-beginning\n  \
    shardlog console-consumer --bootstrap-server localhost:9092 --topic orders --from-beginning --max-messages 10 --property print.key=true --property print.offset=true\n  \
    shardlog console-consumer --bootstrap-server localhost:9092 --topic orders --partition 0 --offset 42 --timeout-ms 5000")]
pub struct ConsoleConsumerArgs {
    /// The broker to connect to: HOST:PORT (a comma-separated list is tried in order).
    #[arg(long, value_name = "HOST:PORT", required = true)]
    pub bootstrap_server: String,
    /// The topic to consume.
    #[arg(long, required = true)]
    pub topic: String,
    /// Start from the earliest record rather than the latest.
    #[arg(long)]
    pub from_beginning: bool,
    /// Consume only this partition.
    #[arg(long)]
    pub partition: Option<i32>,
    /// With --partition: earliest, latest or an offset (default latest; earliest with --from-beginning).
    #[arg(long, requires = "partition", allow_hyphen_values = true)]
    pub offset: Option<String>,
    /// Exit after this many records.
    #[arg(long)]
    pub max_messages: Option<u64>,
    /// Exit when no record arrived for this many milliseconds.
    #[arg(long)]
    pub timeout_ms: Option<u64>,
    /// A consumer properties file (Kafka's --consumer.config); `request.timeout.ms` and
    /// `default.api.timeout.ms` set the request timeout, other keys are accepted and ignored.
    #[arg(long = "consumer.config", alias = "command-config", value_name = "FILE")]
    pub consumer_config: Option<std::path::PathBuf>,
    /// read_uncommitted (default) or read_committed (skip aborted transactions, stop at the LSO).
    #[arg(long, value_enum, default_value = "read_uncommitted")]
    pub isolation_level: IsolationLevel,
    /// Formatter property: print.timestamp, print.partition, print.offset, print.headers,
    /// print.key, print.value (true|false), key.separator, line.separator,
    /// headers.separator, headers.key.separator (repeatable).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// Consume as a member of this group (range assignment, offsets committed every 5 s and
    /// on exit); without it every partition is assigned and nothing is committed.
    #[arg(long, conflicts_with_all = ["partition", "offset"])]
    pub group: Option<String>,
}

/// Kafka's `DefaultMessageFormatter` settings.
#[derive(Debug, Clone)]
struct Format {
    timestamp: bool,
    partition: bool,
    offset: bool,
    headers: bool,
    key: bool,
    value: bool,
    key_separator: String,
    line_separator: String,
    headers_separator: String,
    headers_key_separator: String,
}

fn format(props: &[String]) -> Result<Format, ToolError> {
    let mut map = BTreeMap::new();
    for kv in props {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(ToolError(format!("Invalid property '{kv}': expected KEY=VALUE")));
        };
        map.insert(k.trim().to_string(), v.to_string());
    }
    let flag = |k: &str, default: bool| map.get(k).map_or(default, |v| v.trim().eq_ignore_ascii_case("true"));
    let text = |k: &str, default: &str| map.get(k).cloned().unwrap_or_else(|| default.to_string());
    Ok(Format {
        timestamp: flag("print.timestamp", false),
        partition: flag("print.partition", false),
        offset: flag("print.offset", false),
        headers: flag("print.headers", false),
        key: flag("print.key", false),
        value: flag("print.value", true),
        key_separator: text("key.separator", "\t"),
        line_separator: text("line.separator", "\n"),
        headers_separator: text("headers.separator", ","),
        headers_key_separator: text("headers.key.separator", ":"),
    })
}

/// One record in `DefaultMessageFormatter.writeTo`'s layout.
#[allow(clippy::too_many_arguments)]
fn write_record(
    f: &Format,
    out: &mut dyn Write,
    timestamp_type: TimestampType,
    timestamp: i64,
    partition: i32,
    offset: i64,
    headers: &[(&[u8], Option<&[u8]>)],
    key: Option<&[u8]>,
    value: Option<&[u8]>,
) -> std::io::Result<()> {
    let sep = |out: &mut dyn Write, more: bool| {
        out.write_all(if more { f.key_separator.as_bytes() } else { f.line_separator.as_bytes() })
    };
    let bytes = |out: &mut dyn Write, b: Option<&[u8]>| out.write_all(b.unwrap_or(b"null"));
    if f.timestamp {
        let kind = match timestamp_type {
            TimestampType::LogAppendTime => "LogAppendTime",
            _ => "CreateTime",
        };
        write!(out, "{kind}:{timestamp}")?;
        sep(out, f.partition || f.offset || f.headers || f.key || f.value)?;
    }
    if f.partition {
        write!(out, "Partition:{partition}")?;
        sep(out, f.offset || f.headers || f.key || f.value)?;
    }
    if f.offset {
        write!(out, "Offset:{offset}")?;
        sep(out, f.headers || f.key || f.value)?;
    }
    if f.headers {
        if headers.is_empty() {
            out.write_all(b"NO_HEADERS")?;
        }
        for (i, (k, v)) in headers.iter().enumerate() {
            if i > 0 {
                out.write_all(f.headers_separator.as_bytes())?;
            }
            out.write_all(k)?;
            out.write_all(f.headers_key_separator.as_bytes())?;
            bytes(out, *v)?;
        }
        sep(out, f.key || f.value)?;
    }
    if f.key {
        bytes(out, key)?;
        sep(out, f.value)?;
    }
    if f.value {
        bytes(out, value)?;
        out.write_all(f.line_separator.as_bytes())?;
    }
    Ok(())
}

struct Assigned {
    partition: i32,
    leader: i32,
    position: i64,
}

struct Consumer<'a> {
    args: &'a ConsoleConsumerArgs,
    nodes: BTreeMap<i32, String>,
    clients: BTreeMap<i32, Client>,
    timeout: Duration,
}

impl Consumer<'_> {
    fn client(&mut self, node: i32) -> Result<&mut Client, ToolError> {
        if !self.clients.contains_key(&node) {
            let addr = self
                .nodes
                .get(&node)
                .ok_or_else(|| ToolError(format!("No address for leader node {node}")))?;
            self.clients.insert(node, Client::connect(addr, self.timeout)?);
        }
        Ok(self.clients.get_mut(&node).expect("connected above"))
    }

    fn isolation(&self) -> i8 {
        match self.args.isolation_level {
            IsolationLevel::ReadUncommitted => 0,
            IsolationLevel::ReadCommitted => 1,
        }
    }

    /// The offset of `partition` at `time` (-1 latest / -2 earliest).
    fn list_offset(&mut self, leader: i32, partition: i32, time: i64) -> Result<i64, ToolError> {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_isolation_level(self.isolation())
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(admin::topic_name(&self.args.topic))
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(partition)
                    .with_timestamp(time)
                    .with_current_leader_epoch(-1)])]);
        let resp: ListOffsetsResponse = self.client(leader)?.call(LIST_OFFSETS_V, &req)?;
        let p = resp
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .find(|p| p.partition_index == partition)
            .ok_or_else(|| ToolError(format!("no offset for {}-{partition}", self.args.topic)))?;
        if p.error_code != 0 {
            return Err(ToolError(format!(
                "{}-{partition}: {}: {}",
                self.args.topic,
                error_name(p.error_code),
                error_message(p.error_code, None)
            )));
        }
        Ok(p.offset)
    }
}

fn start_time(args: &ConsoleConsumerArgs) -> Result<(i64, Option<i64>), ToolError> {
    // (ListOffsets time, explicit offset)
    let reset = if args.from_beginning { -2 } else { -1 };
    match args.offset.as_deref() {
        None => Ok((reset, None)),
        Some("earliest") => Ok((-2, None)),
        Some("latest") => Ok((-1, None)),
        Some(n) => match n.parse::<i64>() {
            Ok(n) if n >= 0 => Ok((reset, Some(n))),
            _ => Err(ToolError(format!(
                "The provided offset value '{n}' is incorrect. Valid values are 'earliest', 'latest', or a non-negative long."
            ))),
        },
    }
}

/// Runs the consumer. Returns the number of records printed; the `Processed a total of N
/// messages` line is written to `err` before returning once consumption has started.
pub fn run(
    args: &ConsoleConsumerArgs,
    out: &mut dyn Write,
    err: &mut dyn Write,
    stop: &AtomicBool,
) -> Result<u64, ToolError> {
    if args.group.is_some() && args.partition.is_some() {
        return Err(ToolError("Options group and partition cannot be specified together.".into()));
    }
    if args.from_beginning && args.offset.is_some() {
        return Err(ToolError("Options from-beginning and offset cannot be specified together.".into()));
    }
    let fmt = format(&args.properties)?;
    let (reset, explicit) = start_time(args)?;
    let timeout = timeout_from_command_config(args.consumer_config.as_deref()).map_err(ToolError)?;
    let mut bootstrap = admin::connect_bootstrap(&args.bootstrap_server, timeout)?;
    let md = admin::metadata(&mut bootstrap, Some(std::slice::from_ref(&args.topic)))?;
    let mut leaders = admin::partition_leaders(&md, &args.topic)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ToolError(format!("Topic {} not present in metadata.", args.topic)))?;
    if let Some(want) = args.partition {
        leaders.retain(|(p, _)| *p == want);
        if leaders.is_empty() {
            return Err(ToolError(format!("Partition {want} of topic {} does not exist.", args.topic)));
        }
    }
    let all: Vec<i32> = leaders.iter().map(|(p, _)| *p).collect();
    let leader_of: BTreeMap<i32, i32> = leaders.iter().copied().collect();
    let mut member = match &args.group {
        Some(group) => Some(GroupMember::connect(&mut bootstrap, group, &args.topic, timeout)?),
        None => None,
    };
    let mut consumer =
        Consumer { args, nodes: admin::node_addresses(&md), clients: BTreeMap::new(), timeout };
    let mut count = 0u64;
    let mut idle_since = Instant::now();
    let result = loop {
        // Without a group: the partitions chosen above. With one: what the group assigns,
        // from the committed offsets (else the reset position).
        let (mine, committed) = match member.as_mut() {
            Some(m) => {
                let mine = m.join(&all)?;
                let committed = m.committed(&mine)?;
                (mine, committed)
            }
            None => (all.clone(), BTreeMap::new()),
        };
        let mut assigned = Vec::new();
        for partition in mine {
            let leader = leader_of[&partition];
            let position = match (committed.get(&partition), explicit) {
                (Some(c), _) => *c,
                (None, Some(n)) => n,
                (None, None) => consumer.list_offset(leader, partition, reset)?,
            };
            assigned.push(Assigned { partition, leader, position });
        }
        let outcome = consume(
            &mut consumer,
            &mut assigned,
            &fmt,
            out,
            err,
            stop,
            reset,
            &mut count,
            &mut idle_since,
            member.as_mut(),
        );
        if let Some(m) = member.as_mut() {
            // Commit what was consumed (the Java consumer commits on rebalance and on close).
            let positions = assigned.iter().map(|a| (a.partition, a.position)).collect();
            if let Err(e) = m.commit(&positions) {
                writeln!(err, "ERROR Offset commit failed: {e}")?;
            }
        }
        match outcome {
            Ok(Outcome::Rebalance) => continue,
            Ok(Outcome::Done) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    if let Some(m) = member.as_mut() {
        let _ = m.leave();
    }
    let _ = out.flush();
    match result {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        Err(e) => writeln!(err, "ERROR Error processing message, terminating consumer process: {e}")?,
        Ok(()) => {}
    }
    writeln!(err, "Processed a total of {count} messages")?;
    Ok(count)
}

/// Why [`consume`] returned without an error.
enum Outcome {
    /// Max messages, timeout or a stop signal.
    Done,
    /// The group is rebalancing: join again, then go on.
    Rebalance,
}

#[allow(clippy::too_many_arguments)]
fn consume(
    consumer: &mut Consumer<'_>,
    assigned: &mut [Assigned],
    fmt: &Format,
    out: &mut dyn Write,
    err: &mut dyn Write,
    stop: &AtomicBool,
    reset: i64,
    count: &mut u64,
    last_record: &mut Instant,
    mut member: Option<&mut GroupMember>,
) -> std::io::Result<Outcome> {
    let to_io = |e: ToolError| std::io::Error::other(e.0);
    let max = consumer.args.max_messages;
    let idle_limit = consumer.args.timeout_ms.map(Duration::from_millis);
    let leaders: BTreeSet<i32> = assigned.iter().map(|a| a.leader).collect();
    let wait_ms = (FETCH_WAIT_MS / leaders.len().max(1) as i32).max(10);
    let mut last_commit = Instant::now();
    loop {
        // With nothing assigned (more members than partitions) there is nothing to fetch:
        // only the checks below run, at the fetch wait's pace.
        let round: Vec<Option<i32>> =
            if leaders.is_empty() { vec![None] } else { leaders.iter().copied().map(Some).collect() };
        for leader in round {
            if stop.load(Ordering::Relaxed) || max.is_some_and(|m| *count >= m) {
                return Ok(Outcome::Done);
            }
            if let Some(limit) = idle_limit {
                if last_record.elapsed() >= limit {
                    writeln!(
                        err,
                        "ERROR Error processing message, terminating consumer process: org.apache.kafka.common.errors.TimeoutException"
                    )?;
                    return Ok(Outcome::Done);
                }
            }
            if let Some(m) = member.as_deref_mut() {
                if m.heartbeat_if_due().map_err(to_io)? {
                    return Ok(Outcome::Rebalance);
                }
                if last_commit.elapsed() >= AUTO_COMMIT_INTERVAL {
                    let positions = assigned.iter().map(|a| (a.partition, a.position)).collect();
                    m.commit(&positions).map_err(to_io)?;
                    last_commit = Instant::now();
                }
            }
            let Some(leader) = leader else {
                std::thread::sleep(Duration::from_millis(FETCH_WAIT_MS as u64 / 5));
                continue;
            };
            let wait = idle_limit.map_or(wait_ms, |l| {
                let left = l.saturating_sub(last_record.elapsed()).as_millis() as i32;
                left.clamp(1, wait_ms)
            });
            let partitions: Vec<FetchPartition> = assigned
                .iter()
                .filter(|a| a.leader == leader)
                .map(|a| {
                    FetchPartition::default()
                        .with_partition(a.partition)
                        .with_current_leader_epoch(-1)
                        .with_fetch_offset(a.position)
                        .with_last_fetched_epoch(-1)
                        .with_log_start_offset(-1)
                        .with_partition_max_bytes(PARTITION_MAX_BYTES)
                })
                .collect();
            let req = FetchRequest::default()
                .with_replica_id(BrokerId(-1))
                .with_max_wait_ms(wait)
                .with_min_bytes(1)
                .with_max_bytes(FETCH_MAX_BYTES)
                .with_isolation_level(consumer.isolation())
                .with_session_id(0)
                .with_session_epoch(-1)
                .with_topics(vec![FetchTopic::default()
                    .with_topic(admin::topic_name(&consumer.args.topic))
                    .with_partitions(partitions)]);
            let resp: FetchResponse =
                consumer.client(leader).map_err(to_io)?.call(FETCH_V, &req).map_err(|e| to_io(e.into()))?;
            if resp.error_code != 0 {
                return Err(std::io::Error::other(format!(
                    "{}: {}",
                    error_name(resp.error_code),
                    error_message(resp.error_code, None)
                )));
            }
            for t in &resp.responses {
                for p in &t.partitions {
                    let Some(a) = assigned.iter_mut().find(|a| a.partition == p.partition_index) else {
                        continue;
                    };
                    if p.error_code == OFFSET_OUT_OF_RANGE {
                        // auto.offset.reset: earliest with --from-beginning, else latest.
                        a.position = consumer.list_offset(leader, a.partition, reset).map_err(to_io)?;
                        continue;
                    }
                    if p.error_code != 0 {
                        return Err(std::io::Error::other(format!(
                            "{}-{}: {}: {}",
                            consumer.args.topic,
                            a.partition,
                            error_name(p.error_code),
                            error_message(p.error_code, None)
                        )));
                    }
                    let Some(records) = p.records.as_ref() else { continue };
                    // Aborted transactions (read_committed): producer id → first offset.
                    let mut aborted: Vec<(i64, i64)> = p
                        .aborted_transactions
                        .iter()
                        .flatten()
                        .map(|t| (t.producer_id.0, t.first_offset))
                        .collect();
                    aborted.sort_by_key(|(_, first)| *first);
                    let mut aborting: BTreeSet<i64> = BTreeSet::new();
                    // A batch cut off at the end of the response ends the iteration.
                    for item in BatchIter::new(records, usize::MAX) {
                        let Ok((_, batch)) = item else { break };
                        while let Some(&(pid, first)) = aborted.first() {
                            if first > batch.last_offset() {
                                break;
                            }
                            aborting.insert(pid);
                            aborted.remove(0);
                        }
                        let next = batch.last_offset() + 1;
                        if batch.is_control() {
                            if batch.is_transactional() {
                                aborting.remove(&batch.producer_id());
                            }
                            a.position = a.position.max(next);
                            continue;
                        }
                        if batch.is_transactional() && aborting.contains(&batch.producer_id()) {
                            a.position = a.position.max(next);
                            continue;
                        }
                        let timestamp_type = batch.timestamp_type();
                        let decoded = Records::decode(batch, MAX_UNCOMPRESSED_BYTES).map_err(|e| {
                            std::io::Error::other(format!("{}-{}: {e}", consumer.args.topic, a.partition))
                        })?;
                        for record in decoded.iter() {
                            let record = record.map_err(|e| {
                                std::io::Error::other(format!("{}-{}: {e}", consumer.args.topic, a.partition))
                            })?;
                            if record.offset < a.position {
                                continue;
                            }
                            let headers: Vec<(&[u8], Option<&[u8]>)> =
                                record.headers.iter().map(|h| (h.key, h.value)).collect();
                            write_record(
                                fmt,
                                out,
                                timestamp_type,
                                record.timestamp,
                                a.partition,
                                record.offset,
                                &headers,
                                record.key,
                                record.value,
                            )?;
                            a.position = record.offset + 1;
                            *count += 1;
                            *last_record = Instant::now();
                            if max.is_some_and(|m| *count >= m) {
                                return Ok(Outcome::Done);
                            }
                        }
                        a.position = a.position.max(next);
                    }
                }
            }
            out.flush()?;
        }
    }
}
