//! Broker configuration: the `server.properties` keys Kafka users already write, Kafka's
//! defaults for all of them, and the few keys of our own (`num.shards`, `shard.ports`).
//!
//! Every key the broker accepts is in [`KEYS`] with its type; anything else is refused with
//! one error naming the key, so a typo never silently falls back to a default. Keys that only
//! make sense for Kafka's thread pools (`num.network.threads`, `num.io.threads`, ...) are
//! accepted and ignored: a thread-per-core broker has one thread per shard.

pub mod properties;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::group::consumer::Assignor;
use shardlog_storage::log_config::{CleanupPolicy, LogConfig};
use shardlog_storage::record_batch::TimestampType;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read { path: PathBuf, source: std::io::Error },
    #[error("config file {path}: {source}")]
    Syntax { path: PathBuf, source: properties::PropertiesError },
    #[error("unknown configuration key '{0}'")]
    UnknownKey(String),
    #[error("invalid value '{value}' for configuration key '{key}': {reason}")]
    InvalidValue { key: String, value: String, reason: String },
    #[error("--override expects key=value, got '{0}'")]
    BadOverride(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Int { min: i64, max: i64 },
    Bool,
    Double,
    Str,
}

const INT: Kind = Kind::Int { min: i32::MIN as i64, max: i32::MAX as i64 };
const NON_NEGATIVE_INT: Kind = Kind::Int { min: 0, max: i32::MAX as i64 };
const POSITIVE_INT: Kind = Kind::Int { min: 1, max: i32::MAX as i64 };
const LONG: Kind = Kind::Int { min: i64::MIN, max: i64::MAX };
const NON_NEGATIVE_LONG: Kind = Kind::Int { min: 0, max: i64::MAX };
const POSITIVE_LONG: Kind = Kind::Int { min: 1, max: i64::MAX };

/// Every accepted key, its type and Kafka's default (`None`: unset unless given).
const KEYS: &[(&str, Kind, Option<&str>)] = &[
    // Identity and listeners (KRaft, lesson 8 and 23 of the course).
    ("process.roles", Kind::Str, Some("broker,controller")),
    ("node.id", NON_NEGATIVE_INT, None),
    ("broker.id", NON_NEGATIVE_INT, None),
    ("broker.rack", Kind::Str, None),
    ("controller.quorum.voters", Kind::Str, None),
    ("controller.quorum.bootstrap.servers", Kind::Str, None),
    ("controller.listener.names", Kind::Str, Some("CONTROLLER")),
    ("listeners", Kind::Str, Some("PLAINTEXT://127.0.0.1:9092")),
    ("advertised.listeners", Kind::Str, None),
    ("inter.broker.listener.name", Kind::Str, None),
    ("listener.security.protocol.map", Kind::Str, None),
    ("log.dirs", Kind::Str, None),
    ("log.dir", Kind::Str, Some("./shardlog-data")),
    // Our own: shards and their ports (README, "Shards, node ids and ports").
    ("num.shards", Kind::Int { min: 1, max: 1024 }, None),
    ("shard.ports", Kind::Str, None),
    // Our own: the Prometheus endpoint (README, "Monitoring"); unset = none.
    ("metrics.listener", Kind::Str, None),
    // Topics.
    ("num.partitions", POSITIVE_INT, Some("1")),
    ("default.replication.factor", POSITIVE_INT, Some("1")),
    ("min.insync.replicas", POSITIVE_INT, Some("1")),
    ("auto.create.topics.enable", Kind::Bool, Some("true")),
    ("delete.topic.enable", Kind::Bool, Some("true")),
    ("unclean.leader.election.enable", Kind::Bool, Some("false")),
    ("auto.leader.rebalance.enable", Kind::Bool, Some("true")),
    ("compression.type", Kind::Str, Some("producer")),
    // Log segments, retention, flushing.
    ("log.segment.bytes", Kind::Int { min: 14, max: i32::MAX as i64 }, Some("1073741824")),
    ("log.roll.ms", POSITIVE_LONG, None),
    ("log.roll.hours", POSITIVE_INT, Some("168")),
    ("log.retention.ms", LONG, None),
    ("log.retention.minutes", INT, None),
    ("log.retention.hours", INT, Some("168")),
    ("log.retention.bytes", LONG, Some("-1")),
    ("log.retention.check.interval.ms", POSITIVE_LONG, Some("300000")),
    ("log.index.interval.bytes", NON_NEGATIVE_INT, Some("4096")),
    ("log.index.size.max.bytes", Kind::Int { min: 4, max: i32::MAX as i64 }, Some("10485760")),
    ("log.flush.interval.messages", POSITIVE_LONG, Some("9223372036854775807")),
    ("log.flush.interval.ms", POSITIVE_LONG, None),
    ("log.flush.scheduler.interval.ms", POSITIVE_LONG, Some("9223372036854775807")),
    ("log.flush.offset.checkpoint.interval.ms", NON_NEGATIVE_INT, Some("60000")),
    ("log.segment.delete.delay.ms", NON_NEGATIVE_LONG, Some("60000")),
    ("log.message.timestamp.type", Kind::Str, Some("CreateTime")),
    ("log.cleanup.policy", Kind::Str, Some("delete")),
    ("log.cleaner.enable", Kind::Bool, Some("true")),
    ("log.cleaner.threads", POSITIVE_INT, Some("1")),
    ("log.cleaner.dedupe.buffer.size", POSITIVE_LONG, Some("134217728")),
    ("log.cleaner.io.max.bytes.per.second", Kind::Double, Some("1.7976931348623157E308")),
    ("log.cleaner.delete.retention.ms", NON_NEGATIVE_LONG, Some("86400000")),
    ("log.cleaner.min.compaction.lag.ms", NON_NEGATIVE_LONG, Some("0")),
    ("log.cleaner.max.compaction.lag.ms", POSITIVE_LONG, Some("9223372036854775807")),
    ("log.cleaner.min.cleanable.ratio", Kind::Double, Some("0.5")),
    ("num.recovery.threads.per.data.dir", POSITIVE_INT, Some("1")),
    // Requests and connections.
    ("message.max.bytes", NON_NEGATIVE_INT, Some("1048588")),
    ("socket.request.max.bytes", POSITIVE_INT, Some("104857600")),
    ("socket.send.buffer.bytes", INT, Some("102400")),
    ("socket.receive.buffer.bytes", INT, Some("102400")),
    ("connections.max.idle.ms", LONG, Some("600000")),
    ("num.network.threads", POSITIVE_INT, Some("3")),
    ("num.io.threads", POSITIVE_INT, Some("8")),
    ("queued.max.requests", POSITIVE_INT, Some("500")),
    // Replication.
    ("replica.lag.time.max.ms", POSITIVE_LONG, Some("30000")),
    ("replica.fetch.max.bytes", NON_NEGATIVE_INT, Some("1048576")),
    ("num.replica.fetchers", POSITIVE_INT, Some("1")),
    // Groups, offsets and transactions.
    ("offsets.topic.num.partitions", POSITIVE_INT, Some("50")),
    ("offsets.topic.replication.factor", POSITIVE_INT, Some("3")),
    ("offsets.retention.minutes", POSITIVE_INT, Some("10080")),
    ("offsets.retention.check.interval.ms", POSITIVE_LONG, Some("600000")),
    ("offsets.topic.segment.bytes", POSITIVE_INT, Some("104857600")),
    ("group.initial.rebalance.delay.ms", NON_NEGATIVE_INT, Some("3000")),
    ("group.min.session.timeout.ms", NON_NEGATIVE_INT, Some("6000")),
    ("group.max.session.timeout.ms", NON_NEGATIVE_INT, Some("1800000")),
    // KIP-848 consumer groups (Kafka 4).
    ("group.consumer.session.timeout.ms", POSITIVE_INT, Some("45000")),
    ("group.consumer.heartbeat.interval.ms", POSITIVE_INT, Some("5000")),
    ("group.consumer.min.session.timeout.ms", POSITIVE_INT, Some("45000")),
    ("group.consumer.max.session.timeout.ms", POSITIVE_INT, Some("60000")),
    ("group.consumer.min.heartbeat.interval.ms", POSITIVE_INT, Some("5000")),
    ("group.consumer.max.heartbeat.interval.ms", POSITIVE_INT, Some("15000")),
    ("group.consumer.max.size", POSITIVE_INT, Some("2147483647")),
    (
        "group.consumer.assignors",
        Kind::Str,
        Some(
            "org.apache.kafka.coordinator.group.assignor.UniformAssignor,\
             org.apache.kafka.coordinator.group.assignor.RangeAssignor",
        ),
    ),
    ("transaction.state.log.replication.factor", POSITIVE_INT, Some("3")),
    ("transaction.state.log.min.isr", POSITIVE_INT, Some("2")),
    ("transaction.state.log.num.partitions", POSITIVE_INT, Some("50")),
];

/// Every broker key this broker accepts, in [`KEYS`] order.
pub fn broker_keys() -> impl Iterator<Item = &'static str> {
    KEYS.iter().map(|(key, _, _)| *key)
}

/// Kafka's default for a broker key (`None`: unset unless given, or not a key).
pub fn default_value(key: &str) -> Option<&'static str> {
    KEYS.iter().find(|(k, _, _)| *k == key).and_then(|(_, _, default)| *default)
}

/// Keys Kafka needs for its own thread pools; a thread-per-core broker has no use for them.
pub const IGNORED_KEYS: &[&str] =
    &["num.network.threads", "num.io.threads", "num.recovery.threads.per.data.dir", "queued.max.requests"];

/// One `NAME://host:port` entry of `listeners` / `advertised.listeners`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    /// Empty means every interface (Kafka's `PLAINTEXT://:9092`).
    pub host: String,
    pub port: u16,
}

/// The typed broker configuration. Built only by [`BrokerConfig::load`], which has already
/// checked every key and value.
#[derive(Debug, Clone)]
pub struct BrokerConfig {
    pub node_id: i32,
    pub rack: Option<String>,
    /// The client listener (the first one that is not a controller listener).
    pub listener: Listener,
    /// Every other configured listener; shard ports must not collide with them.
    pub other_listeners: Vec<Listener>,
    /// The host advertised to clients for the client listener.
    pub advertised_host: String,
    pub log_dir: PathBuf,
    pub num_shards: Option<usize>,
    pub shard_ports: Option<Vec<u16>>,
    /// `metrics.listener=http://host:port`: where `GET /metrics` is served (shard 0).
    pub metrics_listener: Option<Listener>,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub socket_request_max_bytes: usize,
    pub connections_max_idle_ms: i64,
    pub log_retention_check_interval_ms: i64,
    pub log_flush_scheduler_interval_ms: i64,
    /// `log.cleaner.enable`: whether compacted topics are cleaned at all.
    pub log_cleaner_enable: bool,
    /// `log.cleaner.dedupe.buffer.size`: the offset map's memory bound per cleaning pass.
    pub log_cleaner_dedupe_buffer_bytes: usize,
    /// `log.cleaner.io.max.bytes.per.second`: read + write bytes per second of each shard's
    /// cleaner (Kafka's default, `Double.MAX_VALUE`, is unlimited).
    pub log_cleaner_io_max_bytes_per_second: f64,
    pub offsets_topic_num_partitions: i32,
    /// `offsets.topic.segment.bytes`: segments of `__consumer_offsets` (small ones compact sooner).
    pub offsets_topic_segment_bytes: i32,
    pub offsets_retention_minutes: i64,
    pub offsets_retention_check_interval_ms: i64,
    pub group_initial_rebalance_delay_ms: i32,
    pub group_min_session_timeout_ms: i32,
    pub group_max_session_timeout_ms: i32,
    pub group_consumer_session_timeout_ms: i32,
    pub group_consumer_heartbeat_interval_ms: i32,
    pub group_consumer_max_size: i32,
    /// `group.consumer.assignors`, the first being the default.
    pub group_consumer_assignors: Vec<Assignor>,
    /// Defaults for every topic's log; topic configs override them.
    pub log_defaults: LogConfig,
    pub min_insync_replicas: i32,
    /// The raw, validated key/value pairs (defaults included) for DescribeConfigs.
    pub values: BTreeMap<String, String>,
    /// The pairs the config file and `--override`s gave (DescribeConfigs reports them as
    /// `STATIC_BROKER_CONFIG`, the rest of [`BrokerConfig::values`] as `DEFAULT_CONFIG`).
    pub static_values: BTreeMap<String, String>,
}

impl BrokerConfig {
    /// Reads `file` (if any), applies `overrides` (`key=value`, as `kafka-server-start.sh
    /// --override`), fills Kafka's defaults and checks everything.
    pub fn load(file: Option<&Path>, overrides: &[String]) -> Result<BrokerConfig, ConfigError> {
        let mut given = match file {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|source| ConfigError::Read { path: path.to_path_buf(), source })?;
                properties::parse(&text)
                    .map_err(|source| ConfigError::Syntax { path: path.to_path_buf(), source })?
            }
            None => BTreeMap::new(),
        };
        for o in overrides {
            let (k, v) = o.split_once('=').ok_or_else(|| ConfigError::BadOverride(o.clone()))?;
            given.insert(k.trim().to_string(), v.trim().to_string());
        }
        Self::from_map(given)
    }

    pub fn from_map(given: BTreeMap<String, String>) -> Result<BrokerConfig, ConfigError> {
        for (key, value) in &given {
            let kind = KEYS
                .iter()
                .find(|(k, _, _)| k == key)
                .map(|(_, kind, _)| *kind)
                .ok_or_else(|| ConfigError::UnknownKey(key.clone()))?;
            check_kind(key, value, kind)?;
        }
        let mut values: BTreeMap<String, String> =
            KEYS.iter().filter_map(|(k, _, d)| d.map(|d| (k.to_string(), d.to_string()))).collect();
        values.extend(given.clone());
        let v = Values { values: &values };

        let listeners = parse_listeners("listeners", v.str("listeners"))?;
        let controller_names: Vec<String> =
            v.str("controller.listener.names").split(',').map(|s| s.trim().to_string()).collect();
        let (client, others): (Vec<Listener>, Vec<Listener>) =
            listeners.into_iter().partition(|l| !controller_names.contains(&l.name));
        let mut client = client.into_iter();
        let listener = client.next().ok_or_else(|| ConfigError::InvalidValue {
            key: "listeners".into(),
            value: v.str("listeners").into(),
            reason: "no client listener (every listener is a controller listener)".into(),
        })?;
        let metrics_listener = match given.get("metrics.listener") {
            Some(text) => Some(parse_metrics_listener(text)?),
            None => None,
        };
        // Shard ports skip the metrics port as they skip every other listener's.
        let other_listeners: Vec<Listener> =
            others.into_iter().chain(client).chain(metrics_listener.clone()).collect();
        let advertised_host = match given.get("advertised.listeners") {
            Some(text) => parse_listeners("advertised.listeners", text)?
                .into_iter()
                .find(|l| l.name == listener.name)
                .map(|l| l.host)
                .unwrap_or_default(),
            None => String::new(),
        };
        let advertised_host = match (advertised_host.is_empty(), listener.host.is_empty()) {
            (false, _) => advertised_host,
            (true, false) if listener.host != "0.0.0.0" => listener.host.clone(),
            _ => "localhost".to_string(),
        };

        let log_dir = given.get("log.dirs").or_else(|| values.get("log.dir")).cloned().unwrap_or_default();
        let log_dir = log_dir.split(',').next().unwrap_or_default().trim().to_string();
        if log_dir.is_empty() {
            return Err(invalid("log.dirs", &log_dir, "empty"));
        }
        // Relative to the working directory, as Kafka's, but resolved once here: glommio
        // cannot open a directory it just created under a relative path (EBADF), which made
        // the first start with the embedded default (`./shardlog-data`) fail.
        let log_dir = std::path::absolute(&log_dir).map_err(|e| {
            invalid("log.dirs", &log_dir, &format!("cannot resolve against the working directory: {e}"))
        })?;
        let shard_ports = match given.get("shard.ports") {
            Some(text) => Some(
                text.split(',')
                    .map(|p| {
                        p.trim().parse::<u16>().map_err(|_| invalid("shard.ports", text, "not a port list"))
                    })
                    .collect::<Result<Vec<u16>, _>>()?,
            ),
            None => None,
        };
        let node_id = v.int_opt("node.id").or_else(|| v.int_opt("broker.id")).unwrap_or(1) as i32;
        if node_id >= NODE_ID_SHARD_STRIDE {
            return Err(invalid(
                "node.id",
                &node_id.to_string(),
                "must be below 1000 (see README: node ids)",
            ));
        }
        let retention_ms = v
            .int_opt("log.retention.ms")
            .or_else(|| v.int_opt("log.retention.minutes").map(|m| m * 60_000))
            .unwrap_or_else(|| v.int("log.retention.hours") * 3_600_000);
        let roll_ms = v.int_opt("log.roll.ms").unwrap_or_else(|| v.int("log.roll.hours") * 3_600_000);
        let timestamp_type = match v.str("log.message.timestamp.type") {
            "CreateTime" => TimestampType::CreateTime,
            "LogAppendTime" => TimestampType::LogAppendTime,
            other => return Err(invalid("log.message.timestamp.type", other, "CreateTime or LogAppendTime")),
        };
        let cleanup_policy = CleanupPolicy::parse(v.str("log.cleanup.policy")).ok_or_else(|| {
            invalid("log.cleanup.policy", v.str("log.cleanup.policy"), "delete, compact or compact,delete")
        })?;
        let min_cleanable_ratio =
            v.str("log.cleaner.min.cleanable.ratio").trim().parse::<f64>().unwrap_or(0.5);
        if !(0.0..=1.0).contains(&min_cleanable_ratio) {
            let value = v.str("log.cleaner.min.cleanable.ratio");
            return Err(invalid("log.cleaner.min.cleanable.ratio", value, "must be between 0 and 1"));
        }
        let cleaner_io_key = "log.cleaner.io.max.bytes.per.second";
        let cleaner_io_max_bytes_per_second =
            v.str(cleaner_io_key).trim().parse::<f64>().ok().filter(|r| *r > 0.0).ok_or_else(|| {
                // Kafka takes any double, but a rate of 0 would stall its cleaner for good.
                invalid(cleaner_io_key, v.str(cleaner_io_key), "must be a positive number")
            })?;
        let log_defaults = LogConfig {
            segment_bytes: v.int("log.segment.bytes") as u32,
            segment_ms: roll_ms,
            segment_index_bytes: v.int("log.index.size.max.bytes") as u32,
            index_interval_bytes: v.int("log.index.interval.bytes") as u32,
            max_message_bytes: v.int("message.max.bytes") as u32,
            flush_messages: v.int("log.flush.interval.messages"),
            flush_ms: v.int_opt("log.flush.interval.ms").unwrap_or(i64::MAX),
            retention_ms,
            retention_bytes: v.int("log.retention.bytes"),
            message_timestamp_type: timestamp_type,
            file_delete_delay_ms: v.int("log.segment.delete.delay.ms"),
            cleanup_policy,
            delete_retention_ms: v.int("log.cleaner.delete.retention.ms"),
            min_cleanable_dirty_ratio: min_cleanable_ratio,
            min_compaction_lag_ms: v.int("log.cleaner.min.compaction.lag.ms"),
            max_compaction_lag_ms: v.int("log.cleaner.max.compaction.lag.ms"),
            sync_append_bytes_max: shardlog_storage::log_segment::SYNC_APPEND_BYTES_MAX,
            preallocate_step_bytes: shardlog_storage::log_segment::PREALLOCATE_STEP_BYTES,
        };
        let min_insync_replicas = v.int("min.insync.replicas") as i32;
        check_consumer_group_timeouts(&v)?;
        let assignors_text = v.str("group.consumer.assignors");
        let group_consumer_assignors = assignors_text
            .split(',')
            .filter(|a| !a.trim().is_empty())
            .map(|a| {
                Assignor::parse(a).ok_or_else(|| invalid("group.consumer.assignors", a, "uniform or range"))
            })
            .collect::<Result<Vec<Assignor>, _>>()?;
        if group_consumer_assignors.is_empty() {
            return Err(invalid("group.consumer.assignors", assignors_text, "empty"));
        }
        Ok(BrokerConfig {
            node_id,
            rack: given.get("broker.rack").cloned(),
            listener,
            other_listeners,
            metrics_listener,
            advertised_host,
            log_dir,
            num_shards: v.int_opt("num.shards").map(|n| n as usize),
            shard_ports,
            num_partitions: v.int("num.partitions") as i32,
            default_replication_factor: v.int("default.replication.factor").min(i16::MAX as i64) as i16,
            auto_create_topics_enable: v.bool("auto.create.topics.enable"),
            delete_topic_enable: v.bool("delete.topic.enable"),
            socket_request_max_bytes: v.int("socket.request.max.bytes") as usize,
            connections_max_idle_ms: v.int("connections.max.idle.ms"),
            log_retention_check_interval_ms: v.int("log.retention.check.interval.ms"),
            log_flush_scheduler_interval_ms: v.int("log.flush.scheduler.interval.ms"),
            log_cleaner_enable: v.bool("log.cleaner.enable"),
            log_cleaner_dedupe_buffer_bytes: v.int("log.cleaner.dedupe.buffer.size").max(1) as usize,
            log_cleaner_io_max_bytes_per_second: cleaner_io_max_bytes_per_second,
            offsets_topic_num_partitions: v.int("offsets.topic.num.partitions") as i32,
            offsets_topic_segment_bytes: v.int("offsets.topic.segment.bytes") as i32,
            offsets_retention_minutes: v.int("offsets.retention.minutes"),
            offsets_retention_check_interval_ms: v.int("offsets.retention.check.interval.ms"),
            group_initial_rebalance_delay_ms: v.int("group.initial.rebalance.delay.ms") as i32,
            group_min_session_timeout_ms: v.int("group.min.session.timeout.ms") as i32,
            group_max_session_timeout_ms: v.int("group.max.session.timeout.ms") as i32,
            group_consumer_session_timeout_ms: v.int("group.consumer.session.timeout.ms") as i32,
            group_consumer_heartbeat_interval_ms: v.int("group.consumer.heartbeat.interval.ms") as i32,
            group_consumer_max_size: v.int("group.consumer.max.size") as i32,
            group_consumer_assignors,
            log_defaults,
            min_insync_replicas,
            values,
            static_values: given,
        })
    }

    /// Node id of shard `shard` of this broker: `node.id + 1000 × shard`. Shard 0 keeps the
    /// broker's own id, so a one-shard broker looks exactly like a Kafka broker.
    pub fn shard_node_id(&self, shard: usize) -> i32 {
        self.node_id + NODE_ID_SHARD_STRIDE * shard as i32
    }

    /// Ports of `num_shards` shards: `shard.ports` when given, else the client listener's port
    /// and the next ports up, skipping any port another listener (e.g. CONTROLLER on 9093) uses.
    pub fn shard_ports(&self, num_shards: usize) -> Result<Vec<u16>, ConfigError> {
        if let Some(ports) = &self.shard_ports {
            if ports.len() != num_shards {
                return Err(invalid(
                    "shard.ports",
                    &format!("{ports:?}"),
                    &format!("lists {} ports for {num_shards} shards", ports.len()),
                ));
            }
            return Ok(ports.clone());
        }
        let taken: Vec<u16> = self.other_listeners.iter().map(|l| l.port).collect();
        let mut ports = Vec::with_capacity(num_shards);
        let mut port = self.listener.port as u32;
        while ports.len() < num_shards {
            if port > u16::MAX as u32 {
                return Err(invalid("listeners", &self.listener.port.to_string(), "no room for shard ports"));
            }
            if !taken.contains(&(port as u16)) {
                ports.push(port as u16);
            }
            port += 1;
        }
        Ok(ports)
    }
}

/// Node ids of one broker's shards are `node.id + NODE_ID_SHARD_STRIDE × shard`.
pub const NODE_ID_SHARD_STRIDE: i32 = 1000;

struct Values<'a> {
    values: &'a BTreeMap<String, String>,
}

impl Values<'_> {
    fn str(&self, key: &str) -> &str {
        self.values.get(key).map(String::as_str).unwrap_or_default()
    }
    // Values were checked by `check_kind` before; a missing or bad one can only be a key
    // without a default, which callers read through `int_opt`.
    fn int(&self, key: &str) -> i64 {
        self.int_opt(key).unwrap_or_default()
    }
    fn int_opt(&self, key: &str) -> Option<i64> {
        self.values.get(key).and_then(|v| v.trim().parse().ok())
    }
    fn bool(&self, key: &str) -> bool {
        self.str(key).trim().eq_ignore_ascii_case("true")
    }
}

/// Kafka's `GroupCoordinatorConfig` checks of the KIP-848 session and heartbeat settings.
fn check_consumer_group_timeouts(v: &Values<'_>) -> Result<(), ConfigError> {
    let get = |key: &str| v.int(key);
    let (session, heartbeat) =
        (get("group.consumer.session.timeout.ms"), get("group.consumer.heartbeat.interval.ms"));
    let (min_session, max_session) =
        (get("group.consumer.min.session.timeout.ms"), get("group.consumer.max.session.timeout.ms"));
    let (min_heartbeat, max_heartbeat) =
        (get("group.consumer.min.heartbeat.interval.ms"), get("group.consumer.max.heartbeat.interval.ms"));
    let fail = |key: &str, value: i64, reason: String| Err(invalid(key, &value.to_string(), &reason));
    if max_session < min_session {
        return fail(
            "group.consumer.max.session.timeout.ms",
            max_session,
            format!("must be at least group.consumer.min.session.timeout.ms ({min_session})"),
        );
    }
    if max_heartbeat < min_heartbeat {
        return fail(
            "group.consumer.max.heartbeat.interval.ms",
            max_heartbeat,
            format!("must be at least group.consumer.min.heartbeat.interval.ms ({min_heartbeat})"),
        );
    }
    if !(min_session..=max_session).contains(&session) {
        return fail(
            "group.consumer.session.timeout.ms",
            session,
            format!(
                "must be within group.consumer.min/max.session.timeout.ms ({min_session}..{max_session})"
            ),
        );
    }
    if !(min_heartbeat..=max_heartbeat).contains(&heartbeat) {
        return fail("group.consumer.heartbeat.interval.ms", heartbeat, format!("must be within group.consumer.min/max.heartbeat.interval.ms ({min_heartbeat}..{max_heartbeat})"));
    }
    if heartbeat >= session {
        return fail(
            "group.consumer.heartbeat.interval.ms",
            heartbeat,
            format!("must be less than group.consumer.session.timeout.ms ({session})"),
        );
    }
    Ok(())
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::InvalidValue { key: key.into(), value: value.into(), reason: reason.into() }
}

fn check_kind(key: &str, value: &str, kind: Kind) -> Result<(), ConfigError> {
    let v = value.trim();
    match kind {
        Kind::Int { min, max } => {
            let n: i64 = v.parse().map_err(|_| invalid(key, value, "not an integer"))?;
            if n < min || n > max {
                return Err(invalid(key, value, &format!("must be between {min} and {max}")));
            }
        }
        Kind::Bool => {
            if !v.eq_ignore_ascii_case("true") && !v.eq_ignore_ascii_case("false") {
                return Err(invalid(key, value, "must be true or false"));
            }
        }
        Kind::Double => {
            v.parse::<f64>().map_err(|_| invalid(key, value, "not a number"))?;
        }
        Kind::Str => {}
    }
    Ok(())
}

fn parse_listeners(key: &str, text: &str) -> Result<Vec<Listener>, ConfigError> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, rest) =
            part.split_once("://").ok_or_else(|| invalid(key, part, "expected NAME://host:port"))?;
        let (host, port) = rest.rsplit_once(':').ok_or_else(|| invalid(key, part, "missing :port"))?;
        let port: u16 = port.parse().map_err(|_| invalid(key, part, "bad port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        out.push(Listener { name: name.to_string(), host, port });
    }
    if out.is_empty() {
        return Err(invalid(key, text, "no listener"));
    }
    Ok(out)
}

/// `http://host:port` (an empty host is every interface, as in `listeners`).
fn parse_metrics_listener(text: &str) -> Result<Listener, ConfigError> {
    let key = "metrics.listener";
    let listener = match parse_listeners(key, text)?.as_slice() {
        [one] => one.clone(),
        _ => return Err(invalid(key, text, "expected one http://host:port")),
    };
    if !listener.name.eq_ignore_ascii_case("http") {
        return Err(invalid(key, text, "expected http://host:port"));
    }
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[&str]) -> Result<BrokerConfig, ConfigError> {
        let overrides: Vec<String> = pairs.iter().map(|s| s.to_string()).collect();
        BrokerConfig::load(None, &overrides)
    }

    #[test]
    fn embedded_default_is_a_single_local_broker() {
        let c = load(&[]).unwrap();
        assert_eq!(c.listener, Listener { name: "PLAINTEXT".into(), host: "127.0.0.1".into(), port: 9092 });
        assert_eq!(c.log_dir, std::env::current_dir().unwrap().join("shardlog-data"));
        assert!(c.auto_create_topics_enable);
        assert_eq!(c.num_partitions, 1);
        assert_eq!(c.log_defaults.max_message_bytes, 1048588);
        assert_eq!(c.socket_request_max_bytes, 104857600);
        assert_eq!(c.log_defaults.retention_ms, 168 * 3_600_000);
        assert_eq!(c.node_id, 1);
    }

    #[test]
    fn the_courses_kraft_file_is_accepted_and_ports_skip_the_controller() {
        let c = load(&[
            "process.roles=broker,controller",
            "node.id=1",
            "controller.quorum.voters=1@localhost:9093",
            "listeners=PLAINTEXT://:9092,CONTROLLER://:9093",
            "advertised.listeners=PLAINTEXT://localhost:9092",
            "controller.listener.names=CONTROLLER",
            "log.dirs=/tmp/kraft-combined-logs",
            "num.partitions=3",
            "default.replication.factor=1",
            "log.segment.bytes=1073741824",
            "log.retention.hours=168",
        ])
        .unwrap();
        assert_eq!(c.shard_ports(3).unwrap(), vec![9092, 9094, 9095]);
        assert_eq!(c.advertised_host, "localhost");
        assert_eq!(c.shard_node_id(0), 1);
        assert_eq!(c.shard_node_id(2), 2001);
        assert_eq!(c.num_partitions, 3);
    }

    #[test]
    fn the_metrics_listener_is_http_and_its_port_is_no_shards() {
        assert!(load(&[]).unwrap().metrics_listener.is_none());
        let c = load(&["metrics.listener=http://127.0.0.1:9093"]).unwrap();
        let expected = Listener { name: "http".into(), host: "127.0.0.1".into(), port: 9093 };
        assert_eq!(c.metrics_listener, Some(expected));
        assert_eq!(c.shard_ports(3).unwrap(), vec![9092, 9094, 9095]);
        let e = load(&["metrics.listener=PLAINTEXT://:7071"]).unwrap_err().to_string();
        assert!(e.contains("metrics.listener") && e.contains("http://host:port"), "{e}");
        assert!(load(&["metrics.listener=http://:1,http://:2"]).is_err());
        assert!(load(&["metrics.listener=7071"]).is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_key() {
        let e = load(&["log.retension.hours=1"]).unwrap_err().to_string();
        assert!(e.contains("log.retension.hours"), "{e}");
        let e = load(&["num.partitions=zero"]).unwrap_err().to_string();
        assert!(e.contains("num.partitions") && e.contains("zero"), "{e}");
        let e = load(&["num.partitions=0"]).unwrap_err().to_string();
        assert!(e.contains("num.partitions"), "{e}");
        assert!(load(&["auto.create.topics.enable=yes"]).is_err());
        assert!(load(&["listeners=9092"]).is_err());
    }

    #[test]
    fn consumer_group_protocol_settings_are_checked_as_kafka_does() {
        let c = load(&[]).unwrap();
        assert_eq!(
            (c.group_consumer_session_timeout_ms, c.group_consumer_heartbeat_interval_ms),
            (45_000, 5_000)
        );
        assert_eq!(c.group_consumer_assignors, vec![Assignor::Uniform, Assignor::Range]);
        let e = load(&["group.consumer.session.timeout.ms=6000"]).unwrap_err().to_string();
        assert!(e.contains("group.consumer.session.timeout.ms") && e.contains("45000"), "{e}");
        let e = load(&["group.consumer.heartbeat.interval.ms=50000"]).unwrap_err().to_string();
        assert!(e.contains("group.consumer.heartbeat.interval.ms"), "{e}");
        let e = load(&[
            "group.consumer.min.heartbeat.interval.ms=100",
            "group.consumer.heartbeat.interval.ms=50000",
            "group.consumer.max.heartbeat.interval.ms=60000",
            "group.consumer.max.session.timeout.ms=60000",
        ])
        .unwrap_err()
        .to_string();
        assert!(e.contains("less than group.consumer.session.timeout.ms"), "{e}");
        let ok = load(&[
            "group.consumer.min.session.timeout.ms=1000",
            "group.consumer.session.timeout.ms=6000",
            "group.consumer.assignors=range",
        ])
        .unwrap();
        assert_eq!(
            (ok.group_consumer_session_timeout_ms, ok.group_consumer_assignors.clone()),
            (6000, vec![Assignor::Range])
        );
        assert!(load(&["group.consumer.assignors=sticky"]).is_err());
    }

    #[test]
    fn retention_ms_beats_minutes_beats_hours() {
        assert_eq!(load(&["log.retention.hours=1"]).unwrap().log_defaults.retention_ms, 3_600_000);
        let c = load(&["log.retention.hours=1", "log.retention.minutes=2"]).unwrap();
        assert_eq!(c.log_defaults.retention_ms, 120_000);
        let c = load(&["log.retention.minutes=2", "log.retention.ms=5"]).unwrap();
        assert_eq!(c.log_defaults.retention_ms, 5);
    }

    #[test]
    fn cleaner_io_limit_defaults_to_unlimited_and_must_be_positive() {
        assert_eq!(load(&[]).unwrap().log_cleaner_io_max_bytes_per_second, f64::MAX);
        let c = load(&["log.cleaner.io.max.bytes.per.second=1048576"]).unwrap();
        assert_eq!(c.log_cleaner_io_max_bytes_per_second, 1048576.0);
        let e = load(&["log.cleaner.io.max.bytes.per.second=0"]).unwrap_err().to_string();
        assert!(e.contains("log.cleaner.io.max.bytes.per.second"), "{e}");
    }

    #[test]
    fn explicit_shard_ports_must_match_the_shard_count() {
        let c = load(&["shard.ports=9100,9200"]).unwrap();
        assert_eq!(c.shard_ports(2).unwrap(), vec![9100, 9200]);
        assert!(c.shard_ports(3).is_err());
    }
}
