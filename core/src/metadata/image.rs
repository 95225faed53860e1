//! `MetadataImage`: the cluster metadata as of some log offset — topics, their partitions and
//! configs, broker configs, and the next free producer id — built by applying records in order.
//!
//! The controller keeps one image to validate requests against; every shard keeps its own copy
//! (fed by the control plane) to answer Metadata and to know which partitions it leads.
//!
//! Invariants:
//! - [`MetadataImage::apply`] is the only mutator. It is pure and synchronous, and never panics
//!   on any sequence of records: a record that does not fit the image (a partition of an unknown
//!   topic, a gap in partition numbers, a duplicate topic, a producer-id block that goes
//!   backwards) is ignored with a warning, identically on every replica of the image.
//! - `applied_offset` counts every record applied, ignored ones included, so offsets mean the same
//!   thing on the controller and on every shard.
//! - A topic's partitions are dense: `partitions[i].partition == i`.

use std::collections::BTreeMap;

use super::records::{
    ConfigRecord, MetadataRecord, PartitionRecord, ProducerIdsRecord, TopicId, TopicRecord, RESOURCE_BROKER,
    RESOURCE_TOPIC,
};

/// One partition as the image knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionImage {
    pub partition: i32,
    /// Node id of the leader, -1 for none.
    pub leader: i32,
    pub replicas: Vec<i32>,
    pub isr: Vec<i32>,
    pub leader_epoch: i32,
}

/// One topic: its partitions (dense, by index) and its dynamic (non-default) configs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicImage {
    pub name: String,
    pub topic_id: TopicId,
    pub partitions: Vec<PartitionImage>,
    pub configs: BTreeMap<String, String>,
}

/// What [`MetadataImage::apply`] did with a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApplyOutcome {
    Applied,
    /// The record did not fit the image and changed nothing (the reason was logged).
    Ignored(&'static str),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetadataImage {
    topics: BTreeMap<String, TopicImage>,
    names_by_id: BTreeMap<TopicId, String>,
    /// Broker configs by resource name (a broker id in decimal, "" for cluster-wide).
    broker_configs: BTreeMap<String, BTreeMap<String, String>>,
    next_producer_id: i64,
    /// Leader of the most recently created partition: where round-robin placement resumes.
    last_placed_leader: Option<i32>,
    applied_offset: u64,
}

impl MetadataImage {
    pub fn new() -> MetadataImage {
        MetadataImage::default()
    }

    /// Number of records applied so far (the offset of the next record).
    pub fn applied_offset(&self) -> u64 {
        self.applied_offset
    }

    pub fn topic(&self, name: &str) -> Option<&TopicImage> {
        self.topics.get(name)
    }

    pub fn topic_by_id(&self, topic_id: &TopicId) -> Option<&TopicImage> {
        self.names_by_id.get(topic_id).and_then(|name| self.topics.get(name))
    }

    /// All topics, ordered by name.
    pub fn topics(&self) -> impl Iterator<Item = &TopicImage> {
        self.topics.values()
    }

    pub fn topic_count(&self) -> usize {
        self.topics.len()
    }

    /// Every partition that `node_id` leads, with its topic: what a shard must host.
    pub fn partitions_led_by(&self, node_id: i32) -> impl Iterator<Item = (&TopicImage, &PartitionImage)> {
        self.topics
            .values()
            .flat_map(|t| t.partitions.iter().map(move |p| (t, p)))
            .filter(move |(_, p)| p.leader == node_id)
    }

    /// Dynamic configs of a broker resource ("" = cluster-wide default).
    pub fn broker_configs(&self, resource_name: &str) -> Option<&BTreeMap<String, String>> {
        self.broker_configs.get(resource_name)
    }

    /// First id of the next producer-id block the controller will hand out.
    pub fn next_producer_id(&self) -> i64 {
        self.next_producer_id
    }

    /// Leader node of the most recently created partition, if any.
    pub fn last_placed_leader(&self) -> Option<i32> {
        self.last_placed_leader
    }

    /// Applies every record of a batch in order.
    pub fn apply_all<'a>(&mut self, records: impl IntoIterator<Item = &'a MetadataRecord>) {
        for record in records {
            self.apply(record);
        }
    }

    /// Applies one record. Never panics; see the module invariants.
    pub fn apply(&mut self, record: &MetadataRecord) -> ApplyOutcome {
        self.applied_offset += 1;
        let outcome = match record {
            MetadataRecord::Topic(r) => self.apply_topic(r),
            MetadataRecord::Partition(r) => self.apply_partition(r),
            MetadataRecord::Config(r) => self.apply_config(r),
            MetadataRecord::RemoveTopic(r) => self.remove_topic(&r.topic_id),
            MetadataRecord::ProducerIds(r) => self.apply_producer_ids(r),
        };
        if let ApplyOutcome::Ignored(reason) = outcome {
            tracing::warn!(offset = self.applied_offset - 1, ?record, reason, "metadata record ignored");
        }
        outcome
    }

    fn apply_topic(&mut self, r: &TopicRecord) -> ApplyOutcome {
        if self.topics.contains_key(&r.name) {
            return ApplyOutcome::Ignored("a topic with this name exists");
        }
        if self.names_by_id.contains_key(&r.topic_id) {
            return ApplyOutcome::Ignored("a topic with this id exists");
        }
        self.names_by_id.insert(r.topic_id, r.name.clone());
        let topic = TopicImage {
            name: r.name.clone(),
            topic_id: r.topic_id,
            partitions: Vec::new(),
            configs: BTreeMap::new(),
        };
        self.topics.insert(r.name.clone(), topic);
        ApplyOutcome::Applied
    }

    fn apply_partition(&mut self, r: &PartitionRecord) -> ApplyOutcome {
        let Some(name) = self.names_by_id.get(&r.topic_id) else {
            return ApplyOutcome::Ignored("partition of an unknown topic id");
        };
        let Some(topic) = self.topics.get_mut(name) else {
            return ApplyOutcome::Ignored("topic id maps to no topic");
        };
        let Ok(index) = usize::try_from(r.partition) else {
            return ApplyOutcome::Ignored("negative partition index");
        };
        let partition = PartitionImage {
            partition: r.partition,
            leader: r.leader,
            replicas: r.replicas.clone(),
            isr: r.isr.clone(),
            leader_epoch: r.leader_epoch,
        };
        match index.cmp(&topic.partitions.len()) {
            std::cmp::Ordering::Less => topic.partitions[index] = partition,
            std::cmp::Ordering::Equal => {
                topic.partitions.push(partition);
                self.last_placed_leader = Some(r.leader);
            }
            std::cmp::Ordering::Greater => return ApplyOutcome::Ignored("gap in partition indexes"),
        }
        ApplyOutcome::Applied
    }

    fn apply_config(&mut self, r: &ConfigRecord) -> ApplyOutcome {
        let configs = match r.resource_type {
            RESOURCE_TOPIC => match self.topics.get_mut(&r.resource_name) {
                Some(topic) => &mut topic.configs,
                None => return ApplyOutcome::Ignored("config of an unknown topic"),
            },
            RESOURCE_BROKER => self.broker_configs.entry(r.resource_name.clone()).or_default(),
            _ => return ApplyOutcome::Ignored("unknown config resource type"),
        };
        match &r.value {
            Some(value) => {
                configs.insert(r.name.clone(), value.clone());
            }
            None => {
                configs.remove(&r.name);
            }
        }
        if r.resource_type == RESOURCE_BROKER && configs.is_empty() {
            self.broker_configs.remove(&r.resource_name);
        }
        ApplyOutcome::Applied
    }

    fn remove_topic(&mut self, topic_id: &TopicId) -> ApplyOutcome {
        let Some(name) = self.names_by_id.remove(topic_id) else {
            return ApplyOutcome::Ignored("removal of an unknown topic id");
        };
        self.topics.remove(&name);
        ApplyOutcome::Applied
    }

    fn apply_producer_ids(&mut self, r: &ProducerIdsRecord) -> ApplyOutcome {
        // Moving backwards would hand out ids twice; a well-behaved controller never does it.
        if r.next_producer_id <= self.next_producer_id {
            return ApplyOutcome::Ignored("producer id block does not move forward");
        }
        self.next_producer_id = r.next_producer_id;
        ApplyOutcome::Applied
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metadata::records::RemoveTopicRecord;

    const A: TopicId = [1; 16];
    const B: TopicId = [2; 16];

    fn topic(name: &str, id: TopicId) -> MetadataRecord {
        MetadataRecord::Topic(TopicRecord { name: name.into(), topic_id: id })
    }
    fn partition(id: TopicId, partition: i32, leader: i32) -> MetadataRecord {
        MetadataRecord::Partition(PartitionRecord {
            topic_id: id,
            partition,
            replicas: vec![leader],
            isr: vec![leader],
            leader,
            leader_epoch: 0,
        })
    }
    fn config(kind: i8, resource: &str, name: &str, value: Option<&str>) -> MetadataRecord {
        MetadataRecord::Config(ConfigRecord {
            resource_type: kind,
            resource_name: resource.into(),
            name: name.into(),
            value: value.map(String::from),
        })
    }

    #[test]
    fn topics_partitions_and_configs_build_up_in_order() {
        let mut image = MetadataImage::new();
        image.apply_all(&[
            topic("orders", A),
            partition(A, 0, 1),
            partition(A, 1, 1001),
            config(RESOURCE_TOPIC, "orders", "retention.ms", Some("1000")),
        ]);
        let t = image.topic("orders").unwrap();
        assert_eq!(t.partitions.len(), 2);
        assert_eq!(t.partitions[1].leader, 1001);
        assert_eq!(t.configs.get("retention.ms").map(String::as_str), Some("1000"));
        assert_eq!(image.topic_by_id(&A).unwrap().name, "orders");
        assert_eq!(image.applied_offset(), 4);
        assert_eq!(image.last_placed_leader(), Some(1001));
        assert_eq!(image.partitions_led_by(1).count(), 1);

        image.apply(&config(RESOURCE_TOPIC, "orders", "retention.ms", None));
        assert!(image.topic("orders").unwrap().configs.is_empty());
    }

    #[test]
    fn a_partition_record_for_an_existing_index_replaces_it() {
        let mut image = MetadataImage::new();
        image.apply_all(&[topic("t", A), partition(A, 0, 1), partition(A, 0, 2001)]);
        let t = image.topic("t").unwrap();
        assert_eq!(t.partitions.len(), 1);
        assert_eq!(t.partitions[0].leader, 2001);
        // Replacing is not a placement: the round-robin cursor stays on the creation.
        assert_eq!(image.last_placed_leader(), Some(1));
    }

    #[test]
    fn records_that_do_not_fit_are_ignored_and_still_counted() {
        let mut image = MetadataImage::new();
        assert_eq!(
            image.apply(&partition(A, 0, 1)),
            ApplyOutcome::Ignored("partition of an unknown topic id")
        );
        image.apply(&topic("t", A));
        assert!(matches!(image.apply(&partition(A, 1, 1)), ApplyOutcome::Ignored(_)), "gap");
        assert!(matches!(image.apply(&partition(A, -1, 1)), ApplyOutcome::Ignored(_)));
        assert!(matches!(image.apply(&topic("t", B)), ApplyOutcome::Ignored(_)), "same name");
        assert!(matches!(image.apply(&topic("u", A)), ApplyOutcome::Ignored(_)), "same id");
        assert!(matches!(
            image.apply(&config(RESOURCE_TOPIC, "nope", "k", Some("v"))),
            ApplyOutcome::Ignored(_)
        ));
        assert!(matches!(image.apply(&config(9, "x", "k", Some("v"))), ApplyOutcome::Ignored(_)));
        let remove = MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id: B });
        assert!(matches!(image.apply(&remove), ApplyOutcome::Ignored(_)));
        assert_eq!(image.applied_offset(), 9);
        assert_eq!(image.topic_count(), 1);
        assert!(image.topic("t").unwrap().partitions.is_empty());
    }

    #[test]
    fn removing_a_topic_drops_its_partitions_configs_and_id() {
        let mut image = MetadataImage::new();
        image.apply_all(&[
            topic("t", A),
            partition(A, 0, 1),
            config(RESOURCE_TOPIC, "t", "cleanup.policy", Some("compact")),
            MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id: A }),
        ]);
        assert!(image.topic("t").is_none());
        assert!(image.topic_by_id(&A).is_none());
        // The name and the id are free again; configs do not come back with the name.
        image.apply_all(&[topic("t", B), partition(B, 0, 1)]);
        assert!(image.topic("t").unwrap().configs.is_empty());
    }

    #[test]
    fn broker_configs_come_and_go() {
        let mut image = MetadataImage::new();
        image.apply(&config(RESOURCE_BROKER, "1", "log.retention.ms", Some("5")));
        assert_eq!(image.broker_configs("1").unwrap().len(), 1);
        image.apply(&config(RESOURCE_BROKER, "1", "log.retention.ms", None));
        assert!(image.broker_configs("1").is_none());
    }

    #[test]
    fn producer_id_blocks_only_move_forward() {
        let mut image = MetadataImage::new();
        let block =
            |next| MetadataRecord::ProducerIds(ProducerIdsRecord { broker_id: 1, next_producer_id: next });
        assert_eq!(image.apply(&block(1000)), ApplyOutcome::Applied);
        assert!(matches!(image.apply(&block(1000)), ApplyOutcome::Ignored(_)));
        assert!(matches!(image.apply(&block(-5)), ApplyOutcome::Ignored(_)));
        assert_eq!(image.next_producer_id(), 1000);
    }

    #[test]
    fn any_sequence_of_records_is_survived() {
        // A small deterministic fuzz: pseudo-random records over a few ids and names.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        let mut image = MetadataImage::new();
        let names = ["a", "b", "c"];
        for i in 0..20_000u64 {
            let r = next();
            let id = [(r % 4) as u8; 16];
            let name = names[(r >> 8) as usize % names.len()];
            let record = match (r >> 16) % 6 {
                0 => topic(name, id),
                1 => partition(id, ((r >> 24) % 5) as i32 - 1, (r >> 32) as i32),
                2 => config(((r >> 24) % 6) as i8, name, "k", ((r >> 28) % 2 == 0).then_some("v")),
                3 => MetadataRecord::RemoveTopic(RemoveTopicRecord { topic_id: id }),
                4 => MetadataRecord::ProducerIds(ProducerIdsRecord {
                    broker_id: 1,
                    next_producer_id: (r >> 40) as i64 - 100,
                }),
                _ => partition(id, 0, -1),
            };
            image.apply(&record);
            assert_eq!(image.applied_offset(), i + 1);
        }
        for t in image.topics() {
            assert_eq!(image.topic_by_id(&t.topic_id).map(|x| &x.name), Some(&t.name));
            for (i, p) in t.partitions.iter().enumerate() {
                assert_eq!(p.partition as usize, i);
            }
        }
    }
}
