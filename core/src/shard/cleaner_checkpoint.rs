//! `cleaner-offset-checkpoint`: the log cleaner's progress per partition (the first offset
//! not yet cleaned) in Kafka's `OffsetCheckpointFile` format in the log dir, so that a restart
//! — clean or `kill -9` — does not clean every compacted log from its start again.
//!
//! One file serves every shard, as in Kafka one file serves every cleaner thread. A shard
//! rewrites it after a maintenance round in which its cleaner moved: read the file, replace the
//! entries of the partitions this shard leads by their current values, keep the other shards'
//! entries of topics that still exist, write through a temporary file of the shard's own and
//! rename. Two shards rewriting at the same moment can lose each other's newest entry; that
//! only leaves an entry *behind* (an older offset, or none), and a checkpoint behind the truth
//! merely makes the cleaner redo work — never skip dirty records. A shard checks with
//! [`holds`] the round after it wrote and writes again if its entries were lost, so the file
//! converges without a lock across cores.

use std::collections::HashMap;
use std::path::Path;

use shardlog_storage::checkpoint::{OffsetCheckpointFile, TopicPartition, CLEANER_CHECKPOINT_FILE};

/// The checkpoint's entries, empty when the file is missing or unreadable (then the cleaner
/// starts from each log's start, which is safe).
pub async fn read(log_dir: &Path) -> HashMap<super::TopicPartition, i64> {
    let file = OffsetCheckpointFile::new(log_dir.join(CLEANER_CHECKPOINT_FILE));
    match file.read().await {
        Ok(entries) => entries.into_iter().map(|(tp, offset)| ((tp.topic, tp.partition), offset)).collect(),
        Err(e) => {
            tracing::warn!("ignoring {}: {e}", file.path().display());
            HashMap::new()
        }
    }
}

/// Whether the file holds exactly `own`'s entries for this shard's partitions.
pub async fn holds(log_dir: &Path, own: &HashMap<super::TopicPartition, Option<i64>>) -> bool {
    let entries = read(log_dir).await;
    own.iter().all(|(key, offset)| entries.get(key).copied() == *offset)
}

/// Rewrites the file with `own` (this shard's partitions and their cleaner progress; a led
/// partition missing from it loses its entry) over what the file holds now, keeping the
/// entries of other shards' partitions whose topic `exists`.
pub async fn write(
    log_dir: &Path,
    shard_index: usize,
    own: &HashMap<super::TopicPartition, Option<i64>>,
    exists: impl Fn(&str) -> bool,
) {
    let file = OffsetCheckpointFile::new(log_dir.join(CLEANER_CHECKPOINT_FILE));
    let mut entries: Vec<(TopicPartition, i64)> = read(log_dir)
        .await
        .into_iter()
        .filter(|(key, _)| !own.contains_key(key) && exists(&key.0))
        .map(|((topic, partition), offset)| (TopicPartition::new(topic, partition), offset))
        .collect();
    entries.extend(own.iter().filter_map(|((topic, partition), offset)| {
        Some((TopicPartition::new(topic.clone(), *partition), (*offset)?))
    }));
    entries.sort();
    if let Err(e) = file.write_as(&format!("shard-{shard_index}"), &entries).await {
        // The next round tries again; until then a restart re-cleans, which is safe.
        tracing::warn!("cannot write {}: {e}", file.path().display());
    }
}
