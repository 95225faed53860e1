//! Topic-level configs: which keys a topic may set, the broker key each one defaults from, and
//! the `LogConfig` a partition runs with (topic value if set, else the broker's).

use std::collections::BTreeMap;

use shardlog_storage::log_config::{CleanupPolicy, LogConfig};
use shardlog_storage::record_batch::TimestampType;

use crate::config::BrokerConfig;

/// `(topic key, broker key that supplies its default)`, in Kafka's `kafka-configs.sh
/// --describe --all` order.
pub const TOPIC_CONFIG_KEYS: &[(&str, &str)] = &[
    ("cleanup.policy", "log.cleanup.policy"),
    ("compression.type", "compression.type"),
    ("delete.retention.ms", "log.cleaner.delete.retention.ms"),
    ("file.delete.delay.ms", "log.segment.delete.delay.ms"),
    ("flush.messages", "log.flush.interval.messages"),
    ("flush.ms", "log.flush.interval.ms"),
    ("index.interval.bytes", "log.index.interval.bytes"),
    ("max.compaction.lag.ms", "log.cleaner.max.compaction.lag.ms"),
    ("max.message.bytes", "message.max.bytes"),
    ("message.timestamp.type", "log.message.timestamp.type"),
    ("min.cleanable.dirty.ratio", "log.cleaner.min.cleanable.ratio"),
    ("min.compaction.lag.ms", "log.cleaner.min.compaction.lag.ms"),
    ("min.insync.replicas", "min.insync.replicas"),
    ("retention.bytes", "log.retention.bytes"),
    ("retention.ms", "log.retention.ms"),
    ("segment.bytes", "log.segment.bytes"),
    ("segment.index.bytes", "log.index.size.max.bytes"),
    ("segment.ms", "log.roll.ms"),
    ("unclean.leader.election.enable", "unclean.leader.election.enable"),
];

/// The effective value of a topic config: `(value, is_topic_override)`.
pub fn effective_value(
    broker: &BrokerConfig,
    topic_configs: &BTreeMap<String, String>,
    key: &str,
) -> Option<(String, bool)> {
    if let Some(v) = topic_configs.get(key) {
        return Some((v.clone(), true));
    }
    let defaults = &broker.log_defaults;
    let value = match key {
        "retention.ms" => defaults.retention_ms.to_string(),
        "segment.ms" => defaults.segment_ms.to_string(),
        "flush.ms" => defaults.flush_ms.to_string(),
        "min.insync.replicas" => broker.min_insync_replicas.to_string(),
        _ => {
            let broker_key = TOPIC_CONFIG_KEYS.iter().find(|(k, _)| *k == key)?.1;
            broker.values.get(broker_key)?.clone()
        }
    };
    Some((value, false))
}

/// The log settings of a topic's partitions.
pub fn log_config_for(broker: &BrokerConfig, topic_configs: &BTreeMap<String, String>) -> LogConfig {
    let mut config = broker.log_defaults.clone();
    let int = |key: &str| topic_configs.get(key).and_then(|v| v.trim().parse::<i64>().ok());
    if let Some(v) = int("segment.bytes") {
        config.segment_bytes = v.clamp(1, i32::MAX as i64) as u32;
    }
    if let Some(v) = int("segment.ms") {
        config.segment_ms = v;
    }
    if let Some(v) = int("segment.index.bytes") {
        config.segment_index_bytes = v.clamp(1, i32::MAX as i64) as u32;
    }
    if let Some(v) = int("index.interval.bytes") {
        config.index_interval_bytes = v.clamp(0, i32::MAX as i64) as u32;
    }
    if let Some(v) = int("max.message.bytes") {
        config.max_message_bytes = v.clamp(0, i32::MAX as i64) as u32;
    }
    if let Some(v) = int("flush.messages") {
        config.flush_messages = v;
    }
    if let Some(v) = int("flush.ms") {
        config.flush_ms = v;
    }
    if let Some(v) = int("retention.ms") {
        config.retention_ms = v;
    }
    if let Some(v) = int("retention.bytes") {
        config.retention_bytes = v;
    }
    if let Some(v) = int("file.delete.delay.ms") {
        config.file_delete_delay_ms = v;
    }
    if let Some(v) = int("delete.retention.ms") {
        config.delete_retention_ms = v;
    }
    if let Some(v) = int("min.compaction.lag.ms") {
        config.min_compaction_lag_ms = v;
    }
    if let Some(v) = int("max.compaction.lag.ms") {
        config.max_compaction_lag_ms = v;
    }
    if let Some(v) = topic_configs.get("min.cleanable.dirty.ratio").and_then(|v| v.trim().parse::<f64>().ok())
    {
        config.min_cleanable_dirty_ratio = v;
    }
    if let Some(policy) = topic_configs.get("cleanup.policy").and_then(|v| CleanupPolicy::parse(v)) {
        config.cleanup_policy = policy;
    }
    match topic_configs.get("message.timestamp.type").map(String::as_str) {
        Some("LogAppendTime") => config.message_timestamp_type = TimestampType::LogAppendTime,
        Some("CreateTime") => config.message_timestamp_type = TimestampType::CreateTime,
        _ => {}
    }
    if config.validate().is_err() {
        // The controller validated the values; a log that still refuses them keeps the
        // broker's defaults rather than failing to open.
        tracing::warn!("topic configs {topic_configs:?} rejected by the log; using broker defaults");
        return broker.log_defaults.clone();
    }
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_values_override_broker_defaults() {
        let broker = BrokerConfig::load(None, &["log.retention.hours=1".to_string()]).unwrap();
        let mut topic = BTreeMap::new();
        assert_eq!(log_config_for(&broker, &topic).retention_ms, 3_600_000);
        topic.insert("retention.ms".to_string(), "5000".to_string());
        topic.insert("message.timestamp.type".to_string(), "LogAppendTime".to_string());
        let config = log_config_for(&broker, &topic);
        assert_eq!(config.retention_ms, 5000);
        assert_eq!(config.message_timestamp_type, TimestampType::LogAppendTime);
        assert_eq!(effective_value(&broker, &topic, "retention.ms"), Some(("5000".into(), true)));
        assert_eq!(effective_value(&broker, &topic, "max.message.bytes"), Some(("1048588".into(), false)));
    }

    #[test]
    fn cleaner_settings_map_from_topic_and_broker_keys() {
        let broker = BrokerConfig::load(
            None,
            &["log.cleanup.policy=compact".to_string(), "log.cleaner.delete.retention.ms=1000".to_string()],
        )
        .unwrap();
        let mut topic = BTreeMap::new();
        let config = log_config_for(&broker, &topic);
        assert_eq!(config.cleanup_policy, CleanupPolicy::COMPACT);
        assert_eq!((config.delete_retention_ms, config.min_cleanable_dirty_ratio), (1000, 0.5));
        for (k, v) in [
            ("cleanup.policy", "compact,delete"),
            ("delete.retention.ms", "5"),
            ("min.cleanable.dirty.ratio", "0.1"),
            ("min.compaction.lag.ms", "7"),
            ("max.compaction.lag.ms", "9"),
        ] {
            topic.insert(k.to_string(), v.to_string());
        }
        let config = log_config_for(&broker, &topic);
        assert_eq!(config.cleanup_policy, CleanupPolicy { delete: true, compact: true });
        assert_eq!(
            (config.delete_retention_ms, config.min_compaction_lag_ms, config.max_compaction_lag_ms),
            (5, 7, 9)
        );
        assert_eq!(config.min_cleanable_dirty_ratio, 0.1);
        assert!(BrokerConfig::load(None, &["log.cleanup.policy=nope".to_string()]).is_err());
    }
}
