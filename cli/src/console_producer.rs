//! `shardlog console-producer`: Kafka 3.7's `kafka-console-producer.sh` — reads stdin line by
//! line (a `>` prompt when it is a terminal), one record per line (`parse.key=true` splits a
//! key off at `key.separator`), partitions them as Kafka's default partitioner does (murmur2 of
//! the key; keyless records stick to one partition until its batch fills), builds magic-2
//! batches with storage's `RecordBatchBuilder` and sends Produce to each partition's leader.
//!
//! A record that could not be sent is one stderr line naming Kafka's error, and the exit is
//! non-zero; the other records are still sent.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use clap::Args;
use shardlog_net::kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use shardlog_net::kafka_protocol::messages::{ProduceRequest, ProduceResponse};
use shardlog_storage::batch_builder::RecordBatchBuilder;
use shardlog_storage::record_batch::Compression;

use crate::admin::{self, error_message, error_name, ToolError};
use crate::client::{Client, DEFAULT_TIMEOUT};

const PRODUCE_V: i16 = 9;
/// Kafka's `batch.size` default.
const DEFAULT_BATCH_SIZE: usize = 16384;

/// Read records from standard input and send them to a topic (Kafka's kafka-console-producer.sh).
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
    shardlog console-producer --bootstrap-server localhost:9092 --topic orders\n  \
    shardlog console-producer --bootstrap-server localhost:9092 --topic orders --property parse.key=true --property key.separator=:\n  \
    shardlog console-producer --bootstrap-server localhost:9092 --topic orders --producer-property acks=all --compression-codec lz4 < orders.txt")]
pub struct ConsoleProducerArgs {
    /// The broker to connect to: HOST:PORT (a comma-separated list is tried in order).
    #[arg(long, alias = "broker-list", value_name = "HOST:PORT", required = true)]
    pub bootstrap_server: String,
    /// The topic to produce to.
    #[arg(long, required = true)]
    pub topic: String,
    /// A line-reader property: parse.key=true|false, key.separator=SEP (default tab),
    /// ignore.error=true|false (repeatable).
    #[arg(long = "property", value_name = "KEY=VALUE")]
    pub properties: Vec<String>,
    /// A producer property: acks, compression.type, batch.size, request.timeout.ms (repeatable;
    /// others are accepted and ignored).
    #[arg(long = "producer-property", value_name = "KEY=VALUE")]
    pub producer_properties: Vec<String>,
    /// acks: -1 or all (the default), 1 or 0.
    #[arg(long, value_name = "ACKS", allow_hyphen_values = true)]
    pub request_required_acks: Option<String>,
    /// none, gzip (when given without a value), snappy, lz4 or zstd.
    #[arg(long, value_name = "CODEC", num_args = 0..=1, default_missing_value = "gzip")]
    pub compression_codec: Option<String>,
    /// A producer properties file (Kafka's --producer.config); --producer-property entries win.
    #[arg(long = "producer.config", alias = "command-config", value_name = "FILE")]
    pub producer_config: Option<std::path::PathBuf>,
}

/// One line's record and what a failure report says about it.
struct Pending {
    builder: RecordBatchBuilder,
    bytes: usize,
    /// (key length, value length) of each record, for failure lines.
    sizes: Vec<(Option<usize>, usize)>,
}

struct Settings {
    acks: i16,
    compression: Compression,
    batch_size: usize,
    timeout: Duration,
    parse_key: bool,
    key_separator: String,
    ignore_error: bool,
}

fn parse_kv(list: &[String], what: &str) -> Result<BTreeMap<String, String>, ToolError> {
    let mut map = BTreeMap::new();
    for kv in list {
        let Some((k, v)) = kv.split_once('=') else {
            return Err(ToolError(format!("Invalid {what} '{kv}': expected KEY=VALUE")));
        };
        map.insert(k.trim().to_string(), v.to_string());
    }
    Ok(map)
}

/// `key=value` lines of a client properties file (`#`/`!` comments skipped).
fn properties_file(path: &std::path::Path) -> Result<BTreeMap<String, String>, ToolError> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ToolError(format!("cannot read {}: {e}", path.display())))?;
    let lines: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#') && !l.starts_with('!'))
        .map(str::to_string)
        .collect();
    parse_kv(&lines, "property in the producer config")
}

fn parse_acks(s: &str) -> Result<i16, ToolError> {
    match s.trim() {
        "all" | "-1" => Ok(-1),
        "0" => Ok(0),
        "1" => Ok(1),
        other => Err(ToolError(format!(
            "Invalid value {other} for configuration acks: String must be one of: all, -1, 0, 1"
        ))),
    }
}

fn parse_codec(s: &str) -> Result<Compression, ToolError> {
    match s.trim() {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "snappy" => Ok(Compression::Snappy),
        "lz4" => Ok(Compression::Lz4),
        "zstd" => Ok(Compression::Zstd),
        other => Err(ToolError(format!(
            "Invalid value {other} for configuration compression.type: String must be one of: none, gzip, snappy, lz4, zstd"
        ))),
    }
}

fn settings(args: &ConsoleProducerArgs) -> Result<Settings, ToolError> {
    let props = parse_kv(&args.properties, "property")?;
    let mut producer = match &args.producer_config {
        Some(path) => properties_file(path)?,
        None => BTreeMap::new(),
    };
    producer.extend(parse_kv(&args.producer_properties, "producer property")?);
    // Explicit options win over --producer-property, as in ConsoleProducer.
    let acks = match (&args.request_required_acks, producer.get("acks")) {
        (Some(a), _) | (None, Some(a)) => parse_acks(a)?,
        (None, None) => -1,
    };
    let compression = match (&args.compression_codec, producer.get("compression.type")) {
        (Some(c), _) | (None, Some(c)) => parse_codec(c)?,
        (None, None) => Compression::None,
    };
    let number = |key: &str, default: u64| -> Result<u64, ToolError> {
        producer.get(key).map_or(Ok(default), |v| {
            v.trim().parse().map_err(|_| ToolError(format!("Invalid value {v} for configuration {key}")))
        })
    };
    let batch_size = number("batch.size", DEFAULT_BATCH_SIZE as u64)? as usize;
    let timeout =
        Duration::from_millis(number("request.timeout.ms", DEFAULT_TIMEOUT.as_millis() as u64)?.max(1));
    let flag = |key: &str| props.get(key).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    Ok(Settings {
        acks,
        compression,
        batch_size: batch_size.max(1),
        timeout,
        parse_key: flag("parse.key"),
        key_separator: props.get("key.separator").cloned().unwrap_or_else(|| "\t".into()),
        ignore_error: flag("ignore.error"),
    })
}

/// Kafka's `Utils.murmur2` (MurmurHash2, seed 0x9747b28c) over `data`.
pub fn murmur2(data: &[u8]) -> i32 {
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;
    let length = data.len();
    let mut h: u32 = 0x9747_b28c ^ (length as u32);
    let mut chunks = data.chunks_exact(4);
    for c in &mut chunks {
        let mut k = u32::from_le_bytes([c[0], c[1], c[2], c[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M);
        h ^= k;
    }
    let rest = chunks.remainder();
    if rest.len() >= 3 {
        h ^= (rest[2] as u32) << 16;
    }
    if rest.len() >= 2 {
        h ^= (rest[1] as u32) << 8;
    }
    if !rest.is_empty() {
        h ^= rest[0] as u32;
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Kafka's default partitioner picks for a key: `toPositive(murmur2(key)) % n`.
pub fn partition_for_key(key: &[u8], partitions: usize) -> usize {
    ((murmur2(key) & 0x7fff_ffff) as usize) % partitions.max(1)
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

struct Producer<'a> {
    args: &'a ConsoleProducerArgs,
    settings: Settings,
    /// (partition, leader node), sorted by partition.
    partitions: Vec<(i32, i32)>,
    nodes: BTreeMap<i32, String>,
    clients: BTreeMap<i32, Client>,
    pending: BTreeMap<usize, Pending>,
    /// Index into `partitions` keyless records go to.
    sticky: usize,
    failed: usize,
}

impl Producer<'_> {
    fn add(&mut self, key: Option<&[u8]>, value: &[u8], err: &mut dyn Write) -> Result<(), ToolError> {
        let index = match key {
            Some(k) => partition_for_key(k, self.partitions.len()),
            None => self.sticky,
        };
        let compression = self.settings.compression;
        let p = self.pending.entry(index).or_insert_with(|| Pending {
            builder: RecordBatchBuilder::new(0, compression),
            bytes: 0,
            sizes: Vec::new(),
        });
        p.builder.push(now_ms(), key, Some(value), &[]).map_err(|e| ToolError(e.to_string()))?;
        p.bytes += value.len() + key.map_or(0, <[u8]>::len) + 16;
        p.sizes.push((key.map(<[u8]>::len), value.len()));
        if p.bytes >= self.settings.batch_size {
            self.flush(err)?;
        }
        Ok(())
    }

    /// Sends every pending batch, one Produce per leader. Failures are reported on `err`.
    fn flush(&mut self, err: &mut dyn Write) -> Result<(), ToolError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        // The sticky partition moves on once its batch is sent (Kafka's built-in partitioner).
        if self.pending.contains_key(&self.sticky) {
            self.sticky = (self.sticky + 1) % self.partitions.len();
        }
        let pending = std::mem::take(&mut self.pending);
        let mut by_leader: BTreeMap<i32, Vec<(i32, Pending)>> = BTreeMap::new();
        for (index, p) in pending {
            let (partition, leader) = self.partitions[index];
            by_leader.entry(leader).or_default().push((partition, p));
        }
        for (leader, batches) in by_leader {
            let mut sizes: BTreeMap<i32, Vec<(Option<usize>, usize)>> = BTreeMap::new();
            let mut data = Vec::new();
            for (partition, p) in batches {
                sizes.insert(partition, p.sizes);
                match p.builder.build() {
                    Ok(batch) => data.push(
                        PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(Bytes::from(batch))),
                    ),
                    Err(e) => {
                        let sizes = sizes.remove(&partition).unwrap_or_default();
                        self.report(err, &sizes, &format!("KafkaException: {e}"))?;
                    }
                }
            }
            if data.is_empty() {
                continue;
            }
            let req = ProduceRequest::default()
                .with_acks(self.settings.acks)
                .with_timeout_ms(self.settings.timeout.as_millis().min(i32::MAX as u128) as i32)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(admin::topic_name(&self.args.topic))
                    .with_partition_data(data)]);
            match self.send(leader, &req) {
                Ok(None) => {}
                Ok(Some(resp)) => {
                    for t in &resp.responses {
                        for p in &t.partition_responses {
                            if p.error_code != 0 {
                                let sizes = sizes.remove(&p.index).unwrap_or_default();
                                let text = format!(
                                    "{}: {}",
                                    error_name(p.error_code),
                                    error_message(p.error_code, p.error_message.as_ref())
                                );
                                self.report(err, &sizes, &text)?;
                            }
                        }
                    }
                }
                Err(e) => {
                    self.clients.remove(&leader);
                    for sizes in sizes.values() {
                        self.report(err, sizes, &format!("NETWORK_EXCEPTION: {e}"))?;
                    }
                }
            }
        }
        Ok(())
    }

    /// Sends to `leader`; `None` for `acks=0` (no answer comes).
    fn send(&mut self, leader: i32, req: &ProduceRequest) -> Result<Option<ProduceResponse>, ToolError> {
        if !self.clients.contains_key(&leader) {
            let addr = self
                .nodes
                .get(&leader)
                .ok_or_else(|| ToolError(format!("LEADER_NOT_AVAILABLE: no address for node {leader}")))?;
            self.clients.insert(leader, Client::connect(addr, self.settings.timeout)?);
        }
        let client = self.clients.get_mut(&leader).expect("connected above");
        if self.settings.acks == 0 {
            client.send(PRODUCE_V, req)?;
            Ok(None)
        } else {
            Ok(Some(client.call(PRODUCE_V, req)?))
        }
    }

    fn report(
        &mut self,
        err: &mut dyn Write,
        sizes: &[(Option<usize>, usize)],
        text: &str,
    ) -> Result<(), ToolError> {
        for (key, value) in sizes {
            let key = key.map_or("null".to_string(), |k| format!("{k} bytes"));
            writeln!(
                err,
                "ERROR Error when sending message to topic {} with key: {key}, value: {value} bytes with error: {text}",
                self.args.topic
            )?;
            self.failed += 1;
        }
        Ok(())
    }
}

/// Runs the producer over `input`; returns how many records failed (their lines are on
/// `err`). `interactive`: print a `>` prompt to `out` before each line and send each line at
/// once.
pub fn run(
    args: &ConsoleProducerArgs,
    input: impl Read,
    interactive: bool,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<usize, ToolError> {
    let settings = settings(args)?;
    let mut bootstrap = admin::connect_bootstrap(&args.bootstrap_server, settings.timeout)?;
    let md = admin::metadata_for_producing(&mut bootstrap, &args.topic)?;
    let partitions = admin::partition_leaders(&md, &args.topic)
        .filter(|p| !p.is_empty())
        .ok_or_else(|| ToolError(format!("Topic {} not present in metadata.", args.topic)))?;
    let sticky = (now_ms() as usize) % partitions.len();
    let mut producer = Producer {
        args,
        settings,
        partitions,
        nodes: admin::node_addresses(&md),
        clients: BTreeMap::new(),
        pending: BTreeMap::new(),
        sticky,
        failed: 0,
    };
    let mut reader = BufReader::new(input);
    let mut line = String::new();
    let mut line_number = 0u64;
    loop {
        if interactive {
            write!(out, ">")?;
            out.flush()?;
        }
        line.clear();
        if reader.read_line(&mut line)? == 0 {
            break;
        }
        line_number += 1;
        let text = line.strip_suffix('\n').unwrap_or(&line);
        let text = text.strip_suffix('\r').unwrap_or(text);
        if producer.settings.parse_key {
            match text.split_once(producer.settings.key_separator.as_str()) {
                Some((k, v)) => {
                    let (k, v) = (k.as_bytes().to_vec(), v.as_bytes().to_vec());
                    producer.add(Some(&k), &v, err)?;
                }
                None if producer.settings.ignore_error => {
                    let v = text.as_bytes().to_vec();
                    producer.add(None, &v, err)?;
                }
                None => {
                    let message = format!("No key separator found on line number {line_number}: '{text}'");
                    producer.flush(err)?;
                    return Err(ToolError(message));
                }
            }
        } else {
            let v = text.as_bytes().to_vec();
            producer.add(None, &v, err)?;
        }
        // Send when nothing more is already waiting in the buffer: interactive lines go at
        // once, piped input in batches.
        if interactive || reader.buffer().is_empty() {
            producer.flush(err)?;
        }
    }
    producer.flush(err)?;
    Ok(producer.failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cases of Kafka's `UtilsTest.testMurmur2`.
    #[test]
    fn murmur2_matches_kafka() {
        assert_eq!(murmur2(b"21"), -973932308);
        assert_eq!(murmur2(b"foobar"), -790332482);
        assert_eq!(murmur2(b"a-little-bit-long-string"), -985981536);
        assert_eq!(murmur2(b"a-little-bit-longer-string"), -1486304829);
        assert_eq!(murmur2(b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8"), -58897971);
        assert_eq!(murmur2(b"abc"), 479470107);
    }
}
