//! A shard: one glommio executor pinned to one core, its listener, and the partitions it leads.
//!
//! Invariants (DESIGN.md §1):
//! - Everything a shard owns is reached through `Rc<Shard>` on its own thread; the only
//!   cross-core traffic is the control plane (metadata records in, control requests out).
//! - A partition is served only by the shard whose node id the metadata names as its leader;
//!   any other shard answers `NOT_LEADER_OR_FOLLOWER`.
//! - The shard's copy of the metadata image only moves forward, by applying the controller's
//!   committed records in order; partition logs are opened and deleted as a consequence.

mod cleaner_checkpoint;
mod connection;

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::sync::mpsc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::Context;
use glommio::channels::shared_channel::{SharedReceiver, SharedSender};
use glommio::net::TcpListener;
use shardlog_storage::log_config::LogConfig;
use shardlog_storage::throttler::Throttler;

use crate::broker::{shutdown_requested, ShardSpec};
use crate::config::BrokerConfig;
use crate::control_plane::{ControlHandle, ControllerEndpoint, ShardEndpoint};
use crate::controller::{Controller, ControllerConfig};
use crate::metadata::MetadataImage;
use crate::metrics::exposition::ClusterGauges;
use crate::metrics::{ShardMetrics, ShardSnapshot};
use crate::partition::{CleanerResources, Partition};
use crate::topic_config::log_config_for;

/// Connections one shard serves at once; more are closed right after accept, so a flood of
/// clients costs a bounded amount of memory.
pub const CONNECTIONS_PER_SHARD_MAX: usize = 10_000;
/// Finished request buffers a shard keeps for its next requests (each at most 1 MiB): enough
/// for the connections that send large produce requests at once, bounded whatever their number.
const FRAME_POOL_BUFFERS: usize = 16;
/// How long a clean shutdown waits for in-flight requests before closing the logs anyway.
const SHUTDOWN_DRAIN_MS: u64 = 5_000;
/// How long a shard retries binding a port that is in use (see [`bind_exclusive`]).
const BIND_RETRY_MS: u64 = 2_000;

/// `(topic name, partition index)`.
pub type TopicPartition = (String, i32);

pub struct Shard {
    pub spec: ShardSpec,
    pub config: BrokerConfig,
    pub partitions: RefCell<HashMap<TopicPartition, Rc<Partition>>>,
    pub control: ControlHandle,
    connections_open: Cell<usize>,
    requests_in_flight: Cell<usize>,
    /// Set once a clean shutdown begins; `stop` wakes the long polls so they answer now.
    stopping: Cell<bool>,
    stop: event_listener::Event,
    /// Fires whenever partition logs were opened or deleted.
    partitions_changed: event_listener::Event,
    /// Recovery points from the last clean shutdown, used once when a partition is opened.
    recovery_points: RefCell<HashMap<TopicPartition, i64>>,
    /// `cleaner-offset-checkpoint` as read at start, used once when a partition is opened.
    cleaner_checkpoints: RefCell<HashMap<TopicPartition, i64>>,
    /// The consumer groups this shard coordinates (those of the `__consumer_offsets`
    /// partitions it leads).
    pub groups: crate::group::GroupCoordinator,
    /// Request buffers of finished requests, reused by the next ones.
    pub frames: shardlog_net::FramePool,
    pub metrics: ShardMetrics,
}

pub fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// A shard's ends of the control plane; shard 0 also gets the controller's. With
/// `metrics.listener` set, every shard sends its metrics to shard 0, which receives them all.
pub struct ShardWiring {
    pub endpoint: ShardEndpoint,
    pub controller: Option<ControllerEndpoint>,
    pub metrics_sender: Option<SharedSender<ShardSnapshot>>,
    pub metrics_receivers: Vec<SharedReceiver<ShardSnapshot>>,
}

/// The checkpoint entries a shard hands back when it stops: `(topic, partition, recovery
/// point, log start offset)`.
pub type CheckpointEntries = Vec<(String, i32, i64, i64)>;

/// Runs one shard to completion. Reports start-up success or failure on `ready` first.
pub async fn run(
    spec: ShardSpec,
    config: BrokerConfig,
    mut wiring: ShardWiring,
    recovery_points: HashMap<TopicPartition, i64>,
    ready: mpsc::Sender<(usize, anyhow::Result<()>)>,
) -> anyhow::Result<CheckpointEntries> {
    let index = spec.index;
    // Started first, so its timer fires from the very beginning: glommio has a history of
    // lost cross-executor wake-ups on shared channels (DataDog/glommio#261, #273), and the
    // reactor re-checks every channel whenever it wakes, so a timer every
    // `SHUTDOWN_CHECK_INTERVAL` bounds such a stall, start-up included, to that interval.
    let shutdown = glommio::spawn_local(shutdown_requested()).detach();
    // What the metrics report as the broker's start (shards start right after the process).
    let started_unix_s = now_ms() as f64 / 1000.0;
    let metrics_sender = wiring.metrics_sender.take();
    let metrics_receivers = std::mem::take(&mut wiring.metrics_receivers);
    let started = start(spec, config, wiring, recovery_points).await;
    let (shard, listener, metrics_listener) = match started {
        Ok(ok) => {
            let _ = ready.send((index, Ok(())));
            ok
        }
        Err(e) => {
            let message = format!("{e:#}");
            let _ = ready.send((index, Err(e)));
            anyhow::bail!(message);
        }
    };
    let applier = glommio::spawn_local(apply_metadata_forever(shard.clone())).detach();
    let maintenance = glommio::spawn_local(maintain_forever(shard.clone())).detach();
    let cleaner =
        shard.config.log_cleaner_enable.then(|| glommio::spawn_local(clean_forever(shard.clone())).detach());
    let group_cleanup = glommio::spawn_local(crate::group::expiry::clean_forever(shard.clone())).detach();
    let metrics_publisher = metrics_sender.map(|sender| {
        let shard = shard.clone();
        let take = move || shard.metrics_snapshot();
        glommio::spawn_local(crate::metrics::publish(sender, take)).detach()
    });
    let metrics_endpoint = match metrics_listener {
        Some(listener) => {
            let snapshots = crate::metrics::collect(metrics_receivers).await;
            let render_shard = shard.clone();
            let render: Rc<dyn Fn() -> String> = Rc::new(move || {
                let shard = &render_shard;
                let node_ids: Vec<i32> = shard.spec.nodes.iter().map(|(id, _)| *id).collect();
                let gauges = shard.with_image(|image| ClusterGauges::from_image(image, &node_ids, true));
                let process = crate::metrics::exposition::ProcessStats::read(started_unix_s);
                crate::metrics::exposition::render(
                    snapshots.sum(),
                    gauges,
                    process,
                    &shard.config.listener.name,
                )
            });
            Some(glommio::spawn_local(crate::metrics::http::serve_forever(listener, render)).detach())
        }
        None => None,
    };
    let accepter = glommio::spawn_local(accept_forever(shard.clone(), listener)).detach();
    shutdown.await;
    accepter.cancel();
    if let Some(task) = metrics_endpoint {
        task.cancel();
    }
    if let Some(task) = metrics_publisher {
        task.cancel();
    }
    shard.stopping.set(true);
    shard.stop.notify(usize::MAX);
    // Let in-flight requests finish (bounded), then close every log cleanly.
    let deadline = std::time::Instant::now() + Duration::from_millis(SHUTDOWN_DRAIN_MS);
    while shard.requests_in_flight.get() > 0 && std::time::Instant::now() < deadline {
        glommio::timer::sleep(Duration::from_millis(10)).await;
    }
    maintenance.cancel();
    // A pass cut short leaves `.cleaned` files (discarded on open) or a swap half done
    // (completed on open); either way the log is consistent.
    if let Some(cleaner) = cleaner {
        cleaner.cancel();
    }
    group_cleanup.cancel();
    applier.cancel();
    let partitions: Vec<Rc<Partition>> = shard.partitions.borrow_mut().drain().map(|(_, p)| p).collect();
    let mut entries = Vec::with_capacity(partitions.len());
    for partition in partitions {
        match partition.close().await {
            Ok((recovery_point, log_start)) => {
                entries.push((partition.topic.clone(), partition.index, recovery_point, log_start))
            }
            Err(e) => tracing::error!("closing {}-{}: {e}", partition.topic, partition.index),
        }
    }
    // The metadata log fsyncs every commit, so the controller needs no goodbye; the handle is
    // dropped with the shard.
    Ok(entries)
}

async fn start(
    spec: ShardSpec,
    config: BrokerConfig,
    wiring: ShardWiring,
    recovery_points: HashMap<TopicPartition, i64>,
) -> anyhow::Result<(Rc<Shard>, TcpListener, Option<TcpListener>)> {
    let host =
        if config.listener.host.is_empty() { "0.0.0.0".to_string() } else { config.listener.host.clone() };
    let listener = bind_exclusive(&host, spec.port).await.map_err(|e| {
        anyhow::anyhow!("cannot listen on {host}:{}: {e} (is the port already in use?)", spec.port)
    })?;
    // Shard 0 serves the metrics endpoint; a port in use fails the start, as for `listeners`.
    let metrics_listener = match (&config.metrics_listener, spec.index) {
        (Some(metrics), 0) => {
            let metrics_host = if metrics.host.is_empty() { "0.0.0.0" } else { metrics.host.as_str() };
            let bound = bind_exclusive(metrics_host, metrics.port).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot listen on {metrics_host}:{} for metrics.listener: {e} (is the port already in use?)",
                    metrics.port
                )
            })?;
            Some(bound)
        }
        _ => None,
    };
    if let Some(controller_end) = wiring.controller {
        let controller_config = ControllerConfig {
            default_num_partitions: config.num_partitions,
            default_replication_factor: config.default_replication_factor,
            delete_topic_enable: config.delete_topic_enable,
            ..ControllerConfig::single_broker(config.node_id, spec.num_shards)
        };
        let (controller, replay) = Controller::open(controller_config, &config.log_dir)
            .await
            .context("cannot open the metadata log")?;
        glommio::spawn_local(controller_end.run(controller, replay)).detach();
    }
    let control = wiring.endpoint.connect().await.context("cannot reach the controller")?;
    let cleaner_checkpoints = cleaner_checkpoint::read(&config.log_dir).await;
    let shard = Rc::new(Shard {
        spec,
        config,
        partitions: RefCell::new(HashMap::new()),
        control,
        connections_open: Cell::new(0),
        requests_in_flight: Cell::new(0),
        stopping: Cell::new(false),
        stop: event_listener::Event::new(),
        partitions_changed: event_listener::Event::new(),
        recovery_points: RefCell::new(recovery_points),
        cleaner_checkpoints: RefCell::new(cleaner_checkpoints),
        groups: crate::group::GroupCoordinator::new(),
        frames: shardlog_net::FramePool::new(FRAME_POOL_BUFFERS),
        metrics: ShardMetrics::default(),
    });
    shard.sync_partitions().await;
    tracing::info!(
        "shard {} is node {} on {host}:{} with {} partitions",
        shard.spec.index,
        shard.spec.node_id,
        shard.spec.port,
        shard.partitions.borrow().len()
    );
    Ok((shard, listener, metrics_listener))
}

/// Binds a shard's port for this shard alone. glommio's `TcpListener::bind` sets
/// `SO_REUSEPORT`, which lets a second broker on the same port start and silently share the
/// connections; std's bind sets only `SO_REUSEADDR` (so a restart still rebinds while old
/// connections linger in `TIME_WAIT`) and refuses a port another socket listens on.
///
/// After a `kill -9` the kernel tears the dead process's io_uring down asynchronously, and
/// until then its pending `accept` keeps the old listener alive for a moment; so "in use" is
/// retried for up to [`BIND_RETRY_MS`] before it is reported.
async fn bind_exclusive(host: &str, port: u16) -> std::io::Result<TcpListener> {
    use std::os::fd::{FromRawFd, IntoRawFd};
    let deadline = std::time::Instant::now() + Duration::from_millis(BIND_RETRY_MS);
    let listener = loop {
        match std::net::TcpListener::bind((host, port)) {
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse && std::time::Instant::now() < deadline => {
                glommio::timer::sleep(Duration::from_millis(50)).await;
            }
            result => break result?,
        }
    };
    // SAFETY: a bound, listening TCP socket whose ownership moves to glommio here.
    Ok(unsafe { TcpListener::from_raw_fd(listener.into_raw_fd()) })
}

impl Shard {
    /// What this shard sends to shard 0 for the metrics endpoint: its counters, and for
    /// consumer lag the ends of the partitions it leads and its groups' committed offsets.
    fn metrics_snapshot(&self) -> ShardSnapshot {
        let max = crate::metrics::LAG_ENTRIES_PER_SHARD_MAX;
        let mut snapshot = self.metrics.snapshot(self.connections_open.get());
        snapshot.partition_ends = self
            .partitions
            .borrow()
            .iter()
            .take(max)
            .map(|((topic, index), p)| ((topic.clone(), *index), p.high_watermark()))
            .collect();
        snapshot.committed_offsets = self.groups.committed_offsets(max);
        snapshot.shard_loads = vec![self.metrics.load(self.spec.index)];
        snapshot
    }

    /// The partition if this shard leads it; `None` for unknown and not-led alike (the caller
    /// tells the two apart with the image).
    pub fn partition(&self, topic: &str, index: i32) -> Option<Rc<Partition>> {
        self.partitions.borrow().get(&(topic.to_string(), index)).cloned()
    }

    /// Reads this shard's copy of the metadata image (never across an `.await`).
    pub fn with_image<R>(&self, read: impl FnOnce(&MetadataImage) -> R) -> R {
        self.control.with_image(read)
    }

    /// Whether the image knows `topic`/`index` at all: tells `NOT_LEADER_OR_FOLLOWER` (it
    /// exists, another node leads it) from `UNKNOWN_TOPIC_OR_PARTITION`.
    pub fn not_here_error(&self, topic: &str, index: i32) -> shardlog_net::KafkaError {
        let exists = self.with_image(|image| {
            image.topic(topic).is_some_and(|t| t.partitions.iter().any(|p| p.partition == index))
        });
        if exists {
            shardlog_net::KafkaError::NotLeaderOrFollower
        } else {
            shardlog_net::KafkaError::UnknownTopicOrPartition
        }
    }

    /// Opens the partitions the image says this node leads and drops the ones it no longer
    /// does (deleted topics lose their directories).
    async fn sync_partitions(&self) {
        let wanted: Vec<(String, [u8; 16], i32, i32, LogConfig)> = self.with_image(|image| {
            image
                .partitions_led_by(self.spec.node_id)
                .map(|(topic, p)| {
                    (
                        topic.name.clone(),
                        topic.topic_id,
                        p.partition,
                        p.leader_epoch,
                        log_config_for(&self.config, &topic.configs),
                    )
                })
                .collect()
        });
        let mut keep = std::collections::HashSet::new();
        for (topic, topic_id, index, leader_epoch, log_config) in wanted {
            let key = (topic.clone(), index);
            keep.insert(key.clone());
            let existing = self.partitions.borrow().get(&key).cloned();
            match existing {
                Some(p) if p.topic_id == topic_id => {
                    p.leader_epoch.set(leader_epoch);
                    p.set_config(log_config).await;
                }
                Some(p) => {
                    // Same name, new topic id: the old topic was deleted and recreated.
                    self.partitions.borrow_mut().remove(&key);
                    p.delete().await;
                    self.open_partition(key, topic_id, leader_epoch, log_config).await;
                }
                None => self.open_partition(key, topic_id, leader_epoch, log_config).await,
            }
        }
        let gone: Vec<TopicPartition> =
            self.partitions.borrow().keys().filter(|k| !keep.contains(*k)).cloned().collect();
        for key in gone {
            // Take it out first: a RefCell borrow must not live across the `.await` below.
            let removed = self.partitions.borrow_mut().remove(&key);
            if let Some(p) = removed {
                tracing::info!("deleting partition {}-{}", key.0, key.1);
                p.delete().await;
            }
        }
        self.partitions_changed.notify(usize::MAX);
    }

    async fn open_partition(
        &self,
        key: TopicPartition,
        topic_id: [u8; 16],
        leader_epoch: i32,
        config: LogConfig,
    ) {
        let recovery_point = self.recovery_points.borrow_mut().remove(&key);
        match Partition::open(
            &self.config.log_dir,
            &key.0,
            topic_id,
            key.1,
            leader_epoch,
            config,
            recovery_point,
        )
        .await
        {
            Ok(p) => {
                let cleaned_up_to = self.cleaner_checkpoints.borrow_mut().remove(&key);
                if let Some(offset) = cleaned_up_to {
                    p.restore_cleaner_checkpoint(offset).await;
                }
                self.partitions.borrow_mut().insert(key, p);
            }
            Err(e) => tracing::error!("cannot open partition {}-{}: {e}", key.0, key.1),
        }
    }

    /// A listener that fires the next time partition logs are opened or deleted.
    pub fn listen_for_partition_changes(&self) -> event_listener::EventListener {
        self.partitions_changed.listen()
    }

    /// Whether a clean shutdown has begun: no new requests, waiting requests answer now.
    pub fn is_stopping(&self) -> bool {
        self.stopping.get()
    }

    /// A listener that fires when a clean shutdown begins (check [`Shard::is_stopping`]
    /// without an `.await` in between, so the start is not missed).
    pub fn listen_for_stop(&self) -> event_listener::EventListener {
        self.stop.listen()
    }

    pub fn request_started(&self) {
        self.requests_in_flight.set(self.requests_in_flight.get() + 1);
    }

    pub fn request_finished(&self) {
        self.requests_in_flight.set(self.requests_in_flight.get().saturating_sub(1));
    }
}

/// Opens and deletes partition logs as the metadata image moves.
async fn apply_metadata_forever(shard: Rc<Shard>) {
    let mut seen = shard.control.applied_offset();
    while let Ok(applied) = shard.control.wait_applied(seen + 1).await {
        seen = applied;
        shard.sync_partitions().await;
    }
}

/// Flush policy, retention and delayed deletes for every partition of the shard.
async fn maintain_forever(shard: Rc<Shard>) {
    let tick_ms = shard.config.log_flush_scheduler_interval_ms.clamp(100, 1_000) as u64;
    let retention_every_ms = shard.config.log_retention_check_interval_ms.max(1);
    let mut last_retention_ms = now_ms();
    loop {
        glommio::timer::sleep(Duration::from_millis(tick_ms)).await;
        let now = now_ms();
        let retention_due = now - last_retention_ms >= retention_every_ms;
        if retention_due {
            last_retention_ms = now;
        }
        let partitions: Vec<Rc<Partition>> = shard.partitions.borrow().values().cloned().collect();
        for partition in partitions {
            if let Err(e) = partition.maintain(now, retention_due).await {
                tracing::warn!("maintenance of {}-{}: {e}", partition.topic, partition.index);
            }
        }
    }
}

/// The shard's log cleaner (`log.cleaner.enable`): a task of its own, so that a long,
/// throttled pass delays neither flushes nor retention. Its work yields between batches and
/// locks a partition only to plan a pass and to swap the result in, so produce and fetch wait
/// at most one bounded step for it. After a round that moved any partition's cleaning
/// progress it rewrites `cleaner-offset-checkpoint`.
async fn clean_forever(shard: Rc<Shard>) {
    let tick_ms = shard.config.log_flush_scheduler_interval_ms.clamp(100, 1_000) as u64;
    let mut cleaner = CleanerResources {
        dedupe_buffer_bytes: shard.config.log_cleaner_dedupe_buffer_bytes,
        throttler: Throttler::new(
            shard.config.log_cleaner_io_max_bytes_per_second,
            std::time::Instant::now(),
        ),
    };
    let mut verify_checkpoint = false;
    loop {
        glommio::timer::sleep(Duration::from_millis(tick_ms)).await;
        let partitions: Vec<Rc<Partition>> = shard.partitions.borrow().values().cloned().collect();
        let mut moved = false;
        for partition in partitions {
            match partition.clean(now_ms(), &mut cleaner).await {
                Ok(m) => moved |= m,
                Err(e) => tracing::warn!("cleaning {}-{}: {e}", partition.topic, partition.index),
            }
        }
        // Another shard rewriting the file at the same moment may have dropped this shard's
        // newest entries: check the round after each write, and write again until they hold.
        let own = shard.own_cleaner_progress();
        if moved || (verify_checkpoint && !cleaner_checkpoint::holds(&shard.config.log_dir, &own).await) {
            let exists = |topic: &str| shard.with_image(|image| image.topic(topic).is_some());
            cleaner_checkpoint::write(&shard.config.log_dir, shard.spec.index, &own, exists).await;
            verify_checkpoint = true;
        } else {
            verify_checkpoint = false;
        }
    }
}

impl Shard {
    /// This shard's partitions and their cleaner progress (`None`: nothing cleaned yet).
    fn own_cleaner_progress(&self) -> HashMap<TopicPartition, Option<i64>> {
        self.partitions
            .borrow()
            .iter()
            .map(|(key, p)| {
                let progress = p.first_uncleaned_offset();
                (key.clone(), (progress > p.log_start_offset()).then_some(progress))
            })
            .collect()
    }
}

async fn accept_forever(shard: Rc<Shard>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!("accept on port {}: {e}", shard.spec.port);
                glommio::timer::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if shard.connections_open.get() >= CONNECTIONS_PER_SHARD_MAX {
            tracing::warn!(
                "shard {}: {CONNECTIONS_PER_SHARD_MAX} connections open, refusing one",
                shard.spec.index
            );
            continue;
        }
        let _ = stream.set_nodelay(true);
        if let Err(e) = shardlog_net::prepare_for_sendfile(stream.as_raw_fd()) {
            // Without it a Fetch's sendfile could block the whole shard: refuse the connection.
            tracing::warn!("shard {}: refusing a connection: O_NONBLOCK: {e}", shard.spec.index);
            continue;
        }
        shard.connections_open.set(shard.connections_open.get() + 1);
        let shard_for_task = shard.clone();
        glommio::spawn_local(async move {
            connection::serve(&shard_for_task, stream).await;
            shard_for_task.connections_open.set(shard_for_task.connections_open.get() - 1);
        })
        .detach();
    }
}
