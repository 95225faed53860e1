//! Committed offsets that go away on their own, as Kafka's `GroupMetadataManager.cleanupGroupMetadata`
//! and `onPartitionsDeleted` do:
//!
//! - **Retention** (`offsets.retention.minutes`, checked every
//!   `offsets.retention.check.interval.ms`): an offset expires once it is older than the
//!   retention — counted from when the group became empty for an empty classic `consumer`
//!   group, else from the commit — and only while no member could still need it: the group is
//!   empty, or (classic `consumer` and KIP-848 groups) no member subscribes to its topic.
//! - **Deleted topics**: the offsets of partitions that no longer exist are dropped as soon as
//!   this shard's metadata image no longer has them.
//!
//! Both write tombstones to the group's `__consumer_offsets` partition; a group that is empty
//! and has no offsets (left) is deleted (its metadata tombstoned) the way DeleteGroups does.

use std::collections::HashSet;
use std::rc::Rc;
use std::time::Duration;

use super::state::{GroupRef, GroupState};
use super::{append, consumer_coordinator, records};
use crate::shard::{now_ms, Shard};

/// How often the task looks for deleted topics (only when the metadata image moved).
const DELETED_TOPICS_CHECK_MS: u64 = 1_000;

/// Runs on every shard for as long as it runs; the shard cancels it on shutdown.
pub async fn clean_forever(shard: Rc<Shard>) {
    let retention_every_ms = shard.config.offsets_retention_check_interval_ms.max(1);
    let mut last_retention_ms = now_ms();
    let mut seen_image = shard.control.applied_offset();
    loop {
        let tick_ms = DELETED_TOPICS_CHECK_MS.min(retention_every_ms as u64);
        glommio::timer::sleep(Duration::from_millis(tick_ms)).await;
        if shard.is_stopping() {
            return;
        }
        let now = now_ms();
        let retention_due = now - last_retention_ms >= retention_every_ms;
        let image = shard.control.applied_offset();
        if !retention_due && image == seen_image {
            continue;
        }
        if retention_due {
            last_retention_ms = now;
        }
        seen_image = image;
        shard.groups.clean(&shard, retention_due, now).await;
    }
}

/// What to tombstone in one group.
struct Cleanup {
    group: GroupRef,
    expired: Vec<(String, i32)>,
    /// The group is left empty without offsets: it goes too.
    delete_group: bool,
}

impl super::GroupCoordinator {
    /// One pass over this shard's groups: expired offsets (if `retention_due`) and offsets of
    /// deleted partitions.
    pub async fn clean(&self, shard: &Shard, retention_due: bool, now_ms: i64) {
        let retention_ms = shard.config.offsets_retention_minutes.saturating_mul(60_000);
        let groups: Vec<GroupRef> = self.groups.borrow().values().cloned().collect();
        for group in groups {
            let Some(cleanup) = plan(shard, &group, retention_due, retention_ms, now_ms) else { continue };
            self.apply(cleanup).await;
        }
    }

    async fn apply(&self, cleanup: Cleanup) {
        let Cleanup { group, expired, delete_group } = cleanup;
        let (id, log, consumer) = {
            let grp = group.borrow();
            (grp.id.clone(), grp.log.clone(), grp.consumer.is_some())
        };
        let mut tombstones: Vec<(Vec<u8>, Option<Vec<u8>>)> =
            expired.iter().map(|(t, p)| (records::offset_key(&id, t, *p), None)).collect();
        if delete_group {
            if consumer {
                tombstones.extend(consumer_coordinator::group_tombstones(&id));
            } else {
                tombstones.push((records::group_key(&id), None));
            }
            // Gone before the append, as DeleteGroups does: a request arriving meanwhile
            // finds no group rather than one being deleted.
            group.borrow_mut().state = GroupState::Dead;
            self.groups.borrow_mut().remove(&id);
        }
        match append(&log, tombstones).await {
            Ok(()) => {
                let mut grp = group.borrow_mut();
                for key in &expired {
                    grp.offsets.remove(key);
                }
                tracing::info!(
                    "group {id}: removed {} expired or orphaned offsets{}",
                    expired.len(),
                    if delete_group { " and the group" } else { "" }
                );
            }
            Err(e) => {
                tracing::warn!("group {id}: storing offset expiry: {e}");
                if delete_group {
                    group.borrow_mut().state = GroupState::Empty;
                    self.groups.borrow_mut().entry(id).or_insert(group);
                }
            }
        }
    }
}

/// Kafka's expiry rules for one group (`OffsetExpirationCondition` and `isSubscribedToTopic`).
fn plan(
    shard: &Shard,
    group: &GroupRef,
    retention_due: bool,
    retention_ms: i64,
    now_ms: i64,
) -> Option<Cleanup> {
    let grp = group.borrow();
    if grp.state == GroupState::Dead {
        return None;
    }
    let (empty, subscribed, since_empty_ms): (bool, Option<HashSet<String>>, Option<i64>) =
        match &grp.consumer {
            Some(cg) => {
                let topics = consumer_coordinator::subscribed_topic_names(shard, cg).into_iter().collect();
                (cg.members.is_empty(), Some(topics), None)
            }
            None => {
                let empty = grp.state == GroupState::Empty && grp.pending_members.is_empty();
                let is_consumer = grp.protocol_type.as_deref() == Some("consumer");
                let subscribed = if empty { None } else { grp.subscribed_topics() };
                (empty, subscribed, (empty && is_consumer).then_some(grp.state_since_ms))
            }
        };
    let expired: Vec<(String, i32)> = grp
        .offsets
        .iter()
        .filter(|((topic, partition), value)| {
            let exists = shard.with_image(|image| {
                image.topic(topic).is_some_and(|t| t.partitions.iter().any(|p| p.partition == *partition))
            });
            if !exists {
                return true;
            }
            let unused = empty || subscribed.as_ref().is_some_and(|s| !s.contains(topic));
            let base_ms = since_empty_ms.unwrap_or(value.commit_timestamp_ms);
            retention_due && unused && now_ms - base_ms >= retention_ms
        })
        .map(|(key, _)| key.clone())
        .collect();
    // Kafka also deletes, at each retention check, an empty group that has no offsets left.
    let delete_group = empty && expired.len() == grp.offsets.len() && (retention_due || !expired.is_empty());
    if expired.is_empty() && !delete_group {
        return None;
    }
    Some(Cleanup { group: group.clone(), expired, delete_group })
}
