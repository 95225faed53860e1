//! librdkafka clients configured from a workload, and the topic admin a run needs.

use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::ConsumerContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;

use crate::limits;
use crate::workload::Workload;

/// Producer settings from the workload. The queue is bounded in bytes (librdkafka's default
/// is 1 GiB) so a closed-loop producer cannot grow without limit while the broker lags.
pub fn producer_config(bootstrap: &str, w: &Workload, client_id: &str) -> ClientConfig {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("client.id", client_id)
        .set("acks", &w.acks)
        .set("compression.type", &w.compression)
        .set("batch.size", w.batch_size_bytes.to_string())
        .set("batch.num.messages", w.batch_num_messages.to_string())
        .set("linger.ms", w.linger_ms.to_string())
        .set("queue.buffering.max.kbytes", limits::PRODUCER_QUEUE_MAX_KIB.to_string())
        // The byte bound above is the real limit; the count bound would throttle 100 B messages.
        .set("queue.buffering.max.messages", "2000000")
        .set("enable.idempotence", "false");
    for (k, v) in &w.producer_config {
        c.set(k, v);
    }
    c
}

/// Consumer settings: no group membership or commits (partitions are assigned explicitly,
/// which works against any broker, with or without a group coordinator), bounded prefetch.
pub fn consumer_config(
    bootstrap: &str,
    w: &Workload,
    client_id: &str,
    partitions_owned: usize,
) -> ClientConfig {
    // librdkafka bounds prefetch per partition when partitions are assigned by hand; split the
    // per-consumer budget over them, with a floor so one partition's fetch still fits.
    let per_partition_kib = (limits::CONSUMER_QUEUE_TOTAL_MAX_KIB / partitions_owned.max(1) as u64)
        .max(w.max_partition_fetch_bytes.div_ceil(1024));
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", bootstrap)
        .set("client.id", client_id)
        .set("group.id", "shardlog-bench-no-commits")
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        // Long-poll: a tailing consumer should be woken by the append, not by this timer.
        .set("fetch.wait.max.ms", w.fetch_wait_max_ms.to_string())
        .set("max.partition.fetch.bytes", w.max_partition_fetch_bytes.to_string())
        .set("queued.max.messages.kbytes", per_partition_kib.to_string())
        // When that bound is reached librdkafka postpones the partition's next fetch by this
        // much; its 1000 ms default turns every full queue in a drain into a 1 s stall that
        // measures the client, not the broker.
        .set("fetch.queue.backoff.ms", "5");
    for (k, v) in &w.consumer_config {
        c.set(k, v);
    }
    c
}

/// librdkafka's log lines go to stderr (there is no `log` subscriber here), so its warnings
/// and any `debug=…` contexts a workload asks for are visible next to the progress line.
pub fn log_to_stderr(level: RDKafkaLogLevel, facility: &str, message: &str) {
    eprintln!("librdkafka {level:?} {facility}: {message}");
}

/// Client-level errors (broker down, all brokers down) are worth a line, not a panic: the run
/// shows them as errors or a stall, and the result says so.
pub fn error_to_stderr(error: KafkaError, reason: &str) {
    eprintln!("librdkafka error: {error}: {reason}");
}

/// The consumers' context: only logging.
pub struct ConsumerCtx;

impl ClientContext for ConsumerCtx {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        log_to_stderr(level, fac, log_message);
    }
    fn error(&self, error: KafkaError, reason: &str) {
        error_to_stderr(error, reason);
    }
}

impl ConsumerContext for ConsumerCtx {}

fn admin(bootstrap: &str) -> Result<AdminClient<DefaultClientContext>> {
    ClientConfig::new().set("bootstrap.servers", bootstrap).create().context("creating admin client")
}

/// Creates `names` with `partitions` each (replication factor 1) and waits until every
/// partition has a leader in metadata.
pub fn create_topics(bootstrap: &str, w: &Workload, names: &[String]) -> Result<()> {
    let partitions = w.partitions_per_topic;
    let admin = admin(bootstrap)?;
    let topics: Vec<NewTopic> =
        names.iter().map(|n| NewTopic::new(n, partitions as i32, TopicReplication::Fixed(1))).collect();
    let timeout = Duration::from_secs(limits::ADMIN_TIMEOUT_S);
    let opts = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
    let results = futures_lite::future::block_on(admin.create_topics(&topics, &opts))?;
    for r in results {
        r.map_err(|(topic, code)| anyhow!("creating topic {topic}: {code}"))?;
    }
    let probe: BaseConsumer = consumer_config(bootstrap, w, "shardlog-bench-metadata", 1).create()?;
    for name in names {
        wait_for_leaders(&probe, name, partitions)?;
    }
    Ok(())
}

fn wait_for_leaders(c: &BaseConsumer, topic: &str, partitions: usize) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(limits::ADMIN_TIMEOUT_S);
    loop {
        let md = c.fetch_metadata(Some(topic), Duration::from_secs(5))?;
        let ready = md.topics().iter().find(|t| t.name() == topic).is_some_and(|t| {
            t.error().is_none()
                && t.partitions().len() == partitions
                && t.partitions().iter().all(|p| p.leader() >= 0)
        });
        if ready {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("topic {topic}: partitions have no leader after {} s", limits::ADMIN_TIMEOUT_S);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Deletes the run's topics; failures are reported, not fatal (the data dir may be temporary).
pub fn delete_topics(bootstrap: &str, names: &[String]) -> Result<()> {
    let admin = admin(bootstrap)?;
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let timeout = Duration::from_secs(limits::ADMIN_TIMEOUT_S);
    let opts = AdminOptions::new().operation_timeout(Some(timeout)).request_timeout(Some(timeout));
    let results = futures_lite::future::block_on(admin.delete_topics(&names, &opts))?;
    for r in results {
        r.map_err(|(topic, code)| anyhow!("deleting topic {topic}: {code}"))?;
    }
    Ok(())
}
