//! `shardlog start`: one broker process = one glommio executor ("shard") per core.
//!
//! Start-up is all-or-nothing: every shard binds its listener before any of them serves, and a
//! port already taken (or any other start-up error) is reported once, naming the port, and the
//! process exits non-zero. Shutdown (SIGTERM/SIGINT) is cooperative: the main thread flips a
//! flag, each shard stops accepting, lets in-flight requests finish, flushes its logs and
//! writes its checkpoints, so the next start needs no recovery scan.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::time::Duration;

use anyhow::{bail, Context};
use glommio::{LocalExecutorBuilder, Placement};

use std::collections::HashMap;
use std::path::Path;

use shardlog_storage::checkpoint::{
    OffsetCheckpointFile, TopicPartition, LOG_START_OFFSET_CHECKPOINT_FILE, RECOVERY_POINT_CHECKPOINT_FILE,
};

use crate::config::BrokerConfig;
use crate::control_plane::{control_plane, ControlPlaneLimits};
use crate::meta_properties::MetaProperties;
use crate::shard::{self, CheckpointEntries, ShardWiring};

/// Set by the signal handler thread; shards check it every [`SHUTDOWN_CHECK_INTERVAL`].
/// This is the only state shared by all cores, and it carries no data.
pub static SHUTDOWN: AtomicBool = AtomicBool::new(false);
/// How often a shard looks at [`SHUTDOWN`]: rare enough to cost nothing, quick enough for a
/// service manager's stop timeout.
pub const SHUTDOWN_CHECK_INTERVAL: Duration = Duration::from_millis(50);

/// What each shard knows about the broker at start-up (copied to every shard: no sharing).
#[derive(Debug, Clone)]
pub struct ShardSpec {
    pub index: usize,
    pub num_shards: usize,
    pub node_id: i32,
    pub port: u16,
    pub cpu: Option<usize>,
    /// Node id and port of every shard of this broker, in shard order.
    pub nodes: Vec<(i32, u16)>,
    /// From the log dir's `meta.properties`.
    pub cluster_id: String,
}

pub fn run(config: BrokerConfig) -> anyhow::Result<()> {
    let cores = core_affinity::get_core_ids().unwrap_or_default();
    let num_shards = config.num_shards.unwrap_or_else(|| cores.len().max(1));
    let ports = config.shard_ports(num_shards)?;
    std::fs::create_dir_all(&config.log_dir)
        .with_context(|| format!("cannot create log dir {}", config.log_dir.display()))?;
    let nodes: Vec<(i32, u16)> = (0..num_shards).map(|i| (config.shard_node_id(i), ports[i])).collect();
    let meta = MetaProperties::ensure(&config.log_dir, config.node_id)?;
    let recovery_points = take_recovery_points(&config.log_dir);

    for key in crate::config::IGNORED_KEYS.iter().filter(|k| config.static_values.contains_key(**k)) {
        tracing::info!("{key} is ignored: a thread-per-core broker runs one thread per shard");
    }
    install_signal_handlers()?;
    let (controller_end, shard_ends) = control_plane(num_shards, ControlPlaneLimits::default());
    let mut controller_end = Some(controller_end);
    let (mut metrics_senders, mut metrics_receivers) = match config.metrics_listener {
        Some(_) => {
            let wiring = crate::metrics::metrics_wiring(num_shards);
            (wiring.senders.into_iter().map(Some).collect(), wiring.receivers)
        }
        None => (Vec::new(), Vec::new()),
    };
    let (ready_tx, ready_rx) = mpsc::channel::<(usize, anyhow::Result<()>)>();
    let mut handles = Vec::with_capacity(num_shards);
    for (index, endpoint) in shard_ends.into_iter().enumerate() {
        let shard_wiring = ShardWiring {
            endpoint,
            controller: if index == 0 { controller_end.take() } else { None },
            metrics_sender: metrics_senders.get_mut(index).and_then(Option::take),
            metrics_receivers: if index == 0 { std::mem::take(&mut metrics_receivers) } else { Vec::new() },
        };
        let recovery_points = recovery_points.clone();
        let spec = ShardSpec {
            index,
            num_shards,
            node_id: nodes[index].0,
            port: nodes[index].1,
            cpu: cores.get(index % cores.len().max(1)).map(|c| c.id),
            nodes: nodes.clone(),
            cluster_id: meta.cluster_id.clone(),
        };
        let config = config.clone();
        let ready_tx = ready_tx.clone();
        let handle = LocalExecutorBuilder::new(Placement::Unbound)
            .name(&format!("shard-{index}"))
            .spawn(move || async move {
                if let Some(cpu) = spec.cpu {
                    // Pinning is best effort: a container may forbid it, and an unpinned shard
                    // is still correct, only slower.
                    core_affinity::set_for_current(core_affinity::CoreId { id: cpu });
                }
                shard::run(spec, config, shard_wiring, recovery_points, ready_tx).await
            })
            .map_err(|e| anyhow::anyhow!("cannot start shard {index}: {e}"))?;
        handles.push(handle);
    }
    drop(ready_tx);

    let mut failed = None;
    for _ in 0..num_shards {
        match ready_rx.recv() {
            Ok((_, Ok(()))) => {}
            Ok((index, Err(e))) => {
                failed.get_or_insert_with(|| format!("shard {index}: {e:#}"));
                SHUTDOWN.store(true, Ordering::SeqCst);
            }
            Err(_) => {
                failed.get_or_insert_with(|| "a shard stopped during start-up".to_string());
                SHUTDOWN.store(true, Ordering::SeqCst);
                break;
            }
        }
    }
    if failed.is_none() {
        tracing::info!(
            "shardlog started: node.id={} shards={} listening on {}",
            config.node_id,
            num_shards,
            nodes.iter().map(|(id, port)| format!("node {id} -> {port}")).collect::<Vec<_>>().join(", ")
        );
    }
    let mut checkpoints: CheckpointEntries = Vec::new();
    for handle in handles {
        match handle.join() {
            Ok(Ok(entries)) => checkpoints.extend(entries),
            Ok(Err(e)) => {
                failed.get_or_insert_with(|| format!("{e:#}"));
            }
            Err(e) => {
                failed.get_or_insert_with(|| format!("shard panicked: {e:?}"));
            }
        }
    }
    if let Some(message) = failed {
        bail!(message);
    }
    write_checkpoints(&config.log_dir, &checkpoints)?;
    tracing::info!("shardlog stopped cleanly");
    Ok(())
}

fn install_signal_handlers() -> anyhow::Result<()> {
    let mut signals =
        signal_hook::iterator::Signals::new([signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT])
            .context("cannot install signal handlers")?;
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            if let Some(signal) = signals.forever().next() {
                tracing::info!("signal {signal}: shutting down");
                SHUTDOWN.store(true, Ordering::SeqCst);
            }
        })
        .context("cannot start the signal thread")?;
    Ok(())
}

/// Resolves when [`SHUTDOWN`] is set.
pub async fn shutdown_requested() {
    while !SHUTDOWN.load(Ordering::Relaxed) {
        glommio::timer::sleep(SHUTDOWN_CHECK_INTERVAL).await;
    }
}

/// Reads the recovery points of the last clean shutdown and removes the file: it is written
/// only at a clean shutdown, so after this start it would be stale, and a crash must then
/// recover every segment rather than trust it.
fn take_recovery_points(log_dir: &Path) -> HashMap<shard::TopicPartition, i64> {
    let path = log_dir.join(RECOVERY_POINT_CHECKPOINT_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(_) => return HashMap::new(),
    };
    let entries = match OffsetCheckpointFile::decode(&path, &bytes) {
        Ok(entries) => entries,
        Err(e) => {
            tracing::warn!("ignoring {}: {e}", path.display());
            Vec::new()
        }
    };
    if let Err(e) = std::fs::remove_file(&path) {
        tracing::warn!("cannot remove {}: {e}", path.display());
    }
    entries.into_iter().map(|(tp, offset)| ((tp.topic, tp.partition), offset)).collect()
}

/// Writes Kafka's `recovery-point-offset-checkpoint` and `log-start-offset-checkpoint` for
/// the next start (temp file, fsync, rename).
fn write_checkpoints(log_dir: &Path, entries: &CheckpointEntries) -> anyhow::Result<()> {
    let recovery: Vec<(TopicPartition, i64)> =
        entries.iter().map(|(t, p, recovery, _)| (TopicPartition::new(t.clone(), *p), *recovery)).collect();
    let log_start: Vec<(TopicPartition, i64)> =
        entries.iter().map(|(t, p, _, start)| (TopicPartition::new(t.clone(), *p), *start)).collect();
    for (name, entries) in
        [(RECOVERY_POINT_CHECKPOINT_FILE, recovery), (LOG_START_OFFSET_CHECKPOINT_FILE, log_start)]
    {
        let path = log_dir.join(name);
        let bytes = OffsetCheckpointFile::encode(&entries)?;
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut file = std::fs::File::create(&tmp)?;
            file.write_all(&bytes)?;
            file.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
    }
    Ok(())
}
