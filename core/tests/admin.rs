//! The admin APIs of the real binary, driven by librdkafka's AdminClient (the `rdkafka` crate)
//! and, for what librdkafka does not expose (IncrementalAlterConfigs, DescribeCluster,
//! DescribeLogDirs, exact versions and error messages), by requests encoded with the
//! `kafka-protocol` crate (the harness's raw client).
mod common;

use std::future::Future;
use std::time::{Duration, Instant};

use common::{kcat, Broker};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, ConfigSource, NewPartitions, NewTopic, ResourceSpecifier,
    TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaError;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(15);

fn block_on<F: Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(future)
}

fn admin(broker: &Broker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new().set("bootstrap.servers", broker.bootstrap()).create().expect("admin client")
}

fn opts() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(TIMEOUT)).request_timeout(Some(TIMEOUT))
}

/// Polls `check` until it holds; panics naming `what` after 15 s. Metadata reaches the other
/// shards a moment after the controller commits, so a few checks need to wait for it.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + TIMEOUT;
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Partition count of `topic` in a fresh all-topics Metadata response (which never
/// auto-creates), `None` if the topic is not listed.
fn partition_count(admin: &AdminClient<DefaultClientContext>, topic: &str) -> Option<usize> {
    let metadata = admin.inner().fetch_metadata(None, TIMEOUT).expect("metadata");
    metadata.topics().iter().find(|t| t.name() == topic).map(|t| t.partitions().len())
}

fn create(admin: &AdminClient<DefaultClientContext>, topic: NewTopic<'_>) {
    let results = block_on(admin.create_topics(&[topic], &opts())).expect("create_topics");
    assert!(results[0].is_ok(), "{results:?}");
}

fn error_of<T: std::fmt::Debug>(result: &Result<T, (String, RDKafkaErrorCode)>) -> RDKafkaErrorCode {
    result.as_ref().expect_err("expected an error").1
}

fn producer(broker: &Broker) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", broker.bootstrap())
        .set("linger.ms", "0")
        .set("message.timeout.ms", "10000")
        .create()
        .expect("producer")
}

/// Produces one keyed value of `size` bytes to partition 0 and returns the broker's error code
/// (keyed, because a topic altered to `cleanup.policy=compact` refuses keyless records).
fn produce(producer: &FutureProducer, topic: &str, size: usize) -> Option<RDKafkaErrorCode> {
    let payload = vec![b'x'; size];
    let record = FutureRecord::to(topic).key("k").payload(&payload).partition(0);
    match block_on(producer.send(record, TIMEOUT)) {
        Ok(_) => None,
        Err((e, _)) => Some(e.rdkafka_error_code().unwrap_or_else(|| panic!("produce failed: {e}"))),
    }
}

/// One request on a fresh connection, through the shared raw client of the test harness.
mod wire {
    use shardlog_net::kafka_protocol::protocol::{Request, StrBytes};

    use super::common::raw::RawClient;

    pub fn call<R: Request>(port: u16, version: i16, request: &R) -> R::Response {
        RawClient::connect(port).call(version, request)
    }

    pub fn s(text: &str) -> StrBytes {
        StrBytes::from_string(text.to_string())
    }
}

use shardlog_net::kafka_protocol::messages::{
    create_partitions_request, create_topics_request, delete_records_request, delete_topics_request,
    describe_configs_request, describe_log_dirs_request, incremental_alter_configs_request, BrokerId,
    CreatePartitionsRequest, CreateTopicsRequest, DeleteRecordsRequest, DeleteTopicsRequest,
    DescribeClusterRequest, DescribeConfigsRequest, DescribeLogDirsRequest, IncrementalAlterConfigsRequest,
    TopicName,
};
use wire::s;

fn creatable(
    name: &str,
    partitions: i32,
    replication: i16,
    configs: &[(&str, &str)],
) -> create_topics_request::CreatableTopic {
    create_topics_request::CreatableTopic::default()
        .with_name(TopicName(s(name)))
        .with_num_partitions(partitions)
        .with_replication_factor(replication)
        .with_configs(
            configs
                .iter()
                .map(|(k, v)| {
                    create_topics_request::CreatableTopicConfig::default()
                        .with_name(s(k))
                        .with_value(Some(s(v)))
                })
                .collect(),
        )
}

fn incremental(
    resource_type: i8,
    name: &str,
    ops: &[(&str, i8, Option<&str>)],
    validate_only: bool,
) -> IncrementalAlterConfigsRequest {
    let configs = ops
        .iter()
        .map(|(k, op, v)| {
            incremental_alter_configs_request::AlterableConfig::default()
                .with_name(s(k))
                .with_config_operation(*op)
                .with_value(v.map(s))
        })
        .collect();
    IncrementalAlterConfigsRequest::default()
        .with_resources(vec![incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configs(configs)])
        .with_validate_only(validate_only)
}

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;

// ---------------------------------------------------------------------------------------------

#[test]
fn create_topics_with_configs_validate_only_and_kafkas_errors() {
    let broker = Broker::start(2, &[]);
    let admin = admin(&broker);
    create(
        &admin,
        NewTopic::new("orders", 3, TopicReplication::Fixed(1))
            .set("retention.ms", "60000")
            .set("cleanup.policy", "compact"),
    );
    let dry = NewTopic::new("dry", 2, TopicReplication::Fixed(1));
    let results = block_on(admin.create_topics(&[dry], &opts().validate_only(true))).unwrap();
    assert!(results[0].is_ok(), "{results:?}");

    let bad = [
        NewTopic::new("orders", 1, TopicReplication::Fixed(1)),
        NewTopic::new("bad/name", 1, TopicReplication::Fixed(1)),
        NewTopic::new("badconf", 1, TopicReplication::Fixed(1)).set("retention.ms", "soon"),
        NewTopic::new("unknownconf", 1, TopicReplication::Fixed(1)).set("retention.days", "1"),
        NewTopic::new("replicated", 1, TopicReplication::Fixed(2)),
    ];
    let results = block_on(admin.create_topics(&bad, &opts())).unwrap();
    let codes: Vec<RDKafkaErrorCode> = results.iter().map(error_of).collect();
    assert_eq!(
        codes,
        vec![
            RDKafkaErrorCode::TopicAlreadyExists,
            RDKafkaErrorCode::InvalidTopic,
            RDKafkaErrorCode::InvalidConfig,
            RDKafkaErrorCode::InvalidConfig,
            RDKafkaErrorCode::InvalidReplicationFactor,
        ]
    );

    let metadata = admin.inner().fetch_metadata(None, TIMEOUT).unwrap();
    let names: Vec<&str> = metadata.topics().iter().map(|t| t.name()).collect();
    assert_eq!(names, vec!["orders"], "validate_only and refused topics must not exist");
    let orders = &metadata.topics()[0];
    let leaders: Vec<i32> = orders.partitions().iter().map(|p| p.leader()).collect();
    assert_eq!(leaders.len(), 3);
    assert!(leaders.contains(&1) && leaders.contains(&1001), "placed over both shards: {leaders:?}");
}

#[test]
fn create_topics_v7_reports_counts_configs_and_topic_id() {
    let broker = Broker::start(2, &["num.partitions=3"]);
    let port = broker.ports[1]; // any shard forwards to the controller
    let request = CreateTopicsRequest::default()
        .with_topics(vec![creatable("defaults", -1, -1, &[("retention.ms", " 60000 ")])])
        .with_timeout_ms(10_000);
    let response = wire::call(port, 7, &request);
    let t = &response.topics[0];
    assert_eq!((t.error_code, t.error_message.as_deref()), (0, None));
    assert_eq!((t.num_partitions, t.replication_factor), (3, 1));
    assert!(!t.topic_id.is_nil());
    let configs = t.configs.as_ref().expect("v5+ returns configs");
    let find =
        |name: &str| configs.iter().find(|c| c.name.as_str() == name).unwrap_or_else(|| panic!("{name}"));
    let retention = find("retention.ms");
    assert_eq!(
        (retention.value.as_deref(), retention.config_source, retention.read_only),
        (Some("60000"), 1, false)
    );
    let max = find("max.message.bytes");
    assert_eq!((max.value.as_deref(), max.config_source), (Some("1048588"), 5));
    let names: Vec<&str> = configs.iter().map(|c| c.name.as_str()).collect();
    assert!(names.windows(2).all(|w| w[0] < w[1]), "sorted by name: {names:?}");

    // Errors carry Kafka's messages; v4 has no counts or configs.
    let again = wire::call(
        port,
        4,
        &CreateTopicsRequest::default().with_topics(vec![creatable("defaults", 1, 1, &[])]),
    );
    assert_eq!(again.topics[0].error_code, 36);
    assert_eq!(again.topics[0].error_message.as_deref(), Some("Topic 'defaults' already exists."));
    let bad = wire::call(
        port,
        2,
        &CreateTopicsRequest::default().with_topics(vec![creatable("b", 1, 1, &[("retention.ms", "abc")])]),
    );
    assert_eq!(bad.topics[0].error_code, 40);
    assert_eq!(
        bad.topics[0].error_message.as_deref(),
        Some("Invalid value abc for configuration retention.ms: Not a number of type LONG")
    );
    let zero =
        wire::call(port, 7, &CreateTopicsRequest::default().with_topics(vec![creatable("z", 0, 1, &[])]));
    assert_eq!((zero.topics[0].error_code, zero.topics[0].num_partitions), (37, -1));

    // validate_only answers as if it created the topic, and creates nothing.
    let dry = wire::call(
        port,
        7,
        &CreateTopicsRequest::default()
            .with_topics(vec![creatable("dry", 2, 1, &[])])
            .with_validate_only(true),
    );
    assert_eq!((dry.topics[0].error_code, dry.topics[0].num_partitions), (0, 2));
    assert!(dry.topics[0].configs.as_ref().is_some_and(|c| !c.is_empty()));
    assert_eq!(partition_count(&admin(&broker), "dry"), None);
    assert_eq!(partition_count(&admin(&broker), "defaults"), Some(3));
}

#[test]
fn describe_configs_tells_topic_overrides_from_broker_values_and_defaults() {
    let broker = Broker::start(2, &["log.retention.hours=2"]);
    let admin = admin(&broker);
    create(&admin, NewTopic::new("t", 1, TopicReplication::Fixed(1)).set("segment.bytes", "1048576"));

    let resources =
        [ResourceSpecifier::Topic("t"), ResourceSpecifier::Broker(1), ResourceSpecifier::Topic("nope")];
    let results = block_on(admin.describe_configs(&resources, &opts())).unwrap();
    let topic = results[0].as_ref().expect("topic described");
    let segment = topic.get("segment.bytes").unwrap();
    assert_eq!(
        (segment.value.as_deref(), &segment.source, segment.is_default),
        (Some("1048576"), &ConfigSource::DynamicTopic, false)
    );
    let retention = topic.get("retention.ms").unwrap();
    assert_eq!(
        (retention.value.as_deref(), &retention.source),
        (Some("7200000"), &ConfigSource::StaticBroker)
    );
    let cleanup = topic.get("cleanup.policy").unwrap();
    assert_eq!(
        (cleanup.value.as_deref(), &cleanup.source, cleanup.is_read_only),
        (Some("delete"), &ConfigSource::Default, false)
    );
    assert_eq!(topic.entries.len(), 19);

    let node = results[1].as_ref().expect("broker described");
    let hours = node.get("log.retention.hours").unwrap();
    assert_eq!(
        (hours.value.as_deref(), &hours.source, hours.is_read_only),
        (Some("2"), &ConfigSource::StaticBroker, true)
    );
    let partitions = node.get("num.partitions").unwrap();
    assert_eq!((partitions.value.as_deref(), &partitions.source), (Some("1"), &ConfigSource::Default));
    // The rdkafka crate drops per-resource error codes; the wire check below sees the code.
    assert!(results[2].as_ref().map_or(true, |r| r.entries.is_empty()));

    // v4 on the wire: synonyms in Kafka's order, key filtering, the broker resources.
    let describe = |resource_type: i8, name: &str, keys: Option<Vec<&str>>| {
        let resource = describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configuration_keys(keys.map(|k| k.into_iter().map(s).collect()));
        let request =
            DescribeConfigsRequest::default().with_resources(vec![resource]).with_include_synonyms(true);
        wire::call(broker.ports[0], 4, &request).results.remove(0)
    };
    let result = describe(TOPIC, "t", Some(vec!["retention.ms"]));
    assert_eq!(result.configs.len(), 1);
    let synonyms: Vec<(&str, Option<&str>, i8)> =
        result.configs[0].synonyms.iter().map(|s| (s.name.as_str(), s.value.as_deref(), s.source)).collect();
    assert_eq!(
        synonyms,
        vec![("log.retention.hours", Some("2"), 4), ("log.retention.hours", Some("168"), 5)]
    );
    let default_resource = describe(BROKER, "", None);
    assert_eq!((default_resource.error_code, default_resource.configs.len()), (0, 0));
    let other_shard = describe(BROKER, "1001", Some(vec!["log.retention.hours"]));
    assert_eq!((other_shard.error_code, other_shard.configs.len()), (0, 1));
    let bad = describe(BROKER, "one", None);
    assert_eq!(bad.error_code, 42);
    assert_eq!(bad.error_message.as_deref(), Some("Broker id must be an integer, but it is: one"));
    let unknown = describe(TOPIC, "nope", None);
    assert_eq!((unknown.error_code, unknown.configs.len()), (3, 0));
    let invalid = describe(TOPIC, "a/b", None);
    assert_eq!(invalid.error_code, 17);
}

#[test]
fn altered_configs_are_described_and_used_by_the_log_without_restart() {
    let broker = Broker::start(2, &[]);
    let admin = admin(&broker);
    let producer = producer(&broker);
    create(&admin, NewTopic::new("t", 1, TopicReplication::Fixed(1)).set("segment.bytes", "1048576"));
    let describe = |name: &str| {
        let results = block_on(admin.describe_configs(&[ResourceSpecifier::Topic("t")], &opts())).unwrap();
        let resource = results[0].as_ref().unwrap();
        let entry = resource.get(name).unwrap();
        (entry.value.clone().unwrap_or_default(), format!("{:?}", entry.source))
    };

    // Legacy AlterConfigs replaces the topic's whole dynamic config.
    let alter = AlterConfig::new(ResourceSpecifier::Topic("t")).set("retention.ms", "3600000");
    let results = block_on(admin.alter_configs(&[alter], &opts())).unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    assert_eq!(describe("retention.ms"), ("3600000".to_string(), "DynamicTopic".to_string()));
    assert_eq!(describe("segment.bytes"), ("1073741824".to_string(), "Default".to_string()));

    assert_eq!(produce(&producer, "t", 2000), None);
    let port = broker.ports[0];
    let set = incremental(
        TOPIC,
        "t",
        &[("max.message.bytes", SET, Some("1024")), ("cleanup.policy", APPEND, Some("compact"))],
        false,
    );
    let response = wire::call(port, 1, &set);
    assert_eq!(response.responses[0].error_code, 0, "{:?}", response.responses[0].error_message);
    assert_eq!(describe("max.message.bytes"), ("1024".to_string(), "DynamicTopic".to_string()));
    assert_eq!(describe("cleanup.policy").0, "delete,compact");
    // The partition's log now refuses what it accepted a moment ago.
    eventually("the log applies max.message.bytes=1024", || {
        produce(&producer, "t", 2000) == Some(RDKafkaErrorCode::MessageSizeTooLarge)
    });
    assert_eq!(produce(&producer, "t", 100), None);

    let delete = incremental(TOPIC, "t", &[("max.message.bytes", DELETE, None)], false);
    assert_eq!(wire::call(port, 0, &delete).responses[0].error_code, 0);
    eventually("the log falls back to the broker default", || produce(&producer, "t", 2000).is_none());

    // validate_only changes nothing; errors come with Kafka's codes and messages.
    let dry = incremental(TOPIC, "t", &[("retention.ms", SET, Some("5"))], true);
    assert_eq!(wire::call(port, 1, &dry).responses[0].error_code, 0);
    assert_eq!(describe("retention.ms").0, "3600000");
    let bad =
        wire::call(port, 1, &incremental(TOPIC, "t", &[("min.insync.replicas", SET, Some("0"))], false));
    assert_eq!(bad.responses[0].error_code, 40);
    assert_eq!(
        bad.responses[0].error_message.as_deref(),
        Some("Invalid value 0 for configuration min.insync.replicas: Value must be at least 1")
    );
    let missing =
        wire::call(port, 1, &incremental(TOPIC, "nope", &[("retention.ms", SET, Some("5"))], false));
    assert_eq!(missing.responses[0].error_code, 3);
    let broker_resource =
        wire::call(port, 1, &incremental(BROKER, "1", &[("log.retention.ms", SET, Some("5"))], false));
    assert_eq!(broker_resource.responses[0].error_code, 42);
    assert!(broker_resource.responses[0].error_message.is_some());
}

#[test]
fn create_partitions_grows_and_refuses_to_shrink() {
    let broker = Broker::start(2, &[]);
    let admin = admin(&broker);
    create(&admin, NewTopic::new("g", 1, TopicReplication::Fixed(1)));
    let results = block_on(admin.create_partitions(&[NewPartitions::new("g", 3)], &opts())).unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    eventually("3 partitions in metadata", || partition_count(&admin, "g") == Some(3));
    let out = kcat(&["-b", &broker.bootstrap(), "-t", "g", "-P", "-p", "2"], "into the new partition\n");
    assert!(out.is_empty());

    let results = block_on(admin.create_partitions(&[NewPartitions::new("g", 2)], &opts())).unwrap();
    assert_eq!(error_of(&results[0]), RDKafkaErrorCode::InvalidPartitions);
    let shrink = CreatePartitionsRequest::default()
        .with_topics(vec![create_partitions_request::CreatePartitionsTopic::default()
            .with_name(TopicName(s("g")))
            .with_count(2)])
        .with_timeout_ms(10_000);
    let response = wire::call(broker.ports[1], 3, &shrink);
    assert_eq!(response.results[0].error_code, 37);
    assert_eq!(
        response.results[0].error_message.as_deref(),
        Some("The topic g currently has 3 partition(s); 2 would not be an increase.")
    );
    let dry = block_on(admin.create_partitions(&[NewPartitions::new("g", 5)], &opts().validate_only(true)))
        .unwrap();
    assert!(dry[0].is_ok(), "{dry:?}");
    let missing = block_on(admin.create_partitions(&[NewPartitions::new("nope", 5)], &opts())).unwrap();
    assert_eq!(error_of(&missing[0]), RDKafkaErrorCode::UnknownTopicOrPartition);
    assert_eq!(partition_count(&admin, "g"), Some(3));
}

#[test]
fn delete_topics_removes_metadata_and_partition_directories() {
    let broker = Broker::start(2, &[]);
    let admin = admin(&broker);
    create(&admin, NewTopic::new("doomed", 2, TopicReplication::Fixed(1)));
    create(&admin, NewTopic::new("kept", 1, TopicReplication::Fixed(1)));
    for p in ["0", "1"] {
        kcat(&["-b", &broker.bootstrap(), "-t", "doomed", "-P", "-p", p], "a\nb\n");
    }
    let dirs = [broker.dir.join("doomed-0"), broker.dir.join("doomed-1")];
    assert!(dirs.iter().all(|d| d.is_dir()));

    let results = block_on(admin.delete_topics(&["doomed"], &opts())).unwrap();
    assert!(results[0].is_ok(), "{results:?}");
    eventually("doomed is gone from metadata", || partition_count(&admin, "doomed").is_none());
    eventually("doomed's directories are removed", || dirs.iter().all(|d| !d.exists()));
    assert!(broker.dir.join("kept-0").is_dir());

    let results = block_on(admin.delete_topics(&["doomed", "__cluster_metadata"], &opts())).unwrap();
    assert_eq!(error_of(&results[0]), RDKafkaErrorCode::UnknownTopicOrPartition);
    assert!(results[1].is_err(), "the metadata log is not a deletable topic");

    // v6 deletes by topic id; an unknown id is UNKNOWN_TOPIC_ID.
    let by_id = |id: uuid::Uuid| {
        DeleteTopicsRequest::default()
            .with_topics(vec![delete_topics_request::DeleteTopicState::default().with_topic_id(id)])
            .with_timeout_ms(10_000)
    };
    let response = wire::call(broker.ports[0], 6, &by_id(uuid::Uuid::from_bytes([9; 16])));
    assert_eq!(response.responses[0].error_code, 100);
    let kept_id = wire::call(
        broker.ports[0],
        7,
        &CreateTopicsRequest::default().with_topics(vec![creatable("kept", 1, 1, &[])]),
    );
    assert_eq!(kept_id.topics[0].error_code, 36);
}

#[test]
fn delete_topics_when_disabled_answers_by_version() {
    let broker = Broker::start(1, &["delete.topic.enable=false"]);
    let admin = admin(&broker);
    create(&admin, NewTopic::new("stays", 1, TopicReplication::Fixed(1)));
    let request =
        DeleteTopicsRequest::default().with_topic_names(vec![TopicName(s("stays"))]).with_timeout_ms(1000);
    assert_eq!(wire::call(broker.ports[0], 1, &request).responses[0].error_code, 42);
    let v5 = wire::call(broker.ports[0], 5, &request);
    assert_eq!(v5.responses[0].error_code, 73);
    assert_eq!(v5.responses[0].error_message.as_deref(), Some("Topic deletion is disabled."));
    let v6 = DeleteTopicsRequest::default().with_topics(vec![
        delete_topics_request::DeleteTopicState::default().with_name(Some(TopicName(s("stays")))),
    ]);
    assert_eq!(wire::call(broker.ports[0], 6, &v6).responses[0].error_code, 73);
    assert_eq!(partition_count(&admin, "stays"), Some(1));
}

#[test]
fn delete_records_moves_the_log_start_offset() {
    let broker = Broker::start(2, &[]);
    let admin = admin(&broker);
    create(&admin, NewTopic::new("r", 2, TopicReplication::Fixed(1)));
    create(
        &admin,
        NewTopic::new("compacted", 1, TopicReplication::Fixed(1)).set("cleanup.policy", "compact"),
    );
    let lines: String = (0..10).map(|i| format!("m{i}\n")).collect();
    for p in ["0", "1"] {
        kcat(&["-b", &broker.bootstrap(), "-t", "r", "-P", "-p", p], &lines);
    }
    kcat(&["-b", &broker.bootstrap(), "-t", "compacted", "-P", "-K", ":"], "k:v\n");

    let mut offsets = TopicPartitionList::new();
    offsets.add_partition_offset("r", 0, Offset::Offset(4)).unwrap();
    offsets.add_partition_offset("r", 1, Offset::End).unwrap(); // -1: up to the high watermark
    let result = block_on(admin.delete_records(&offsets, &opts())).expect("delete_records");
    let low: Vec<(i32, Offset)> = result.elements().iter().map(|e| (e.partition(), e.offset())).collect();
    assert_eq!(low, vec![(0, Offset::Offset(4)), (1, Offset::Offset(10))]);
    assert!(result.elements().iter().all(|e| e.error().is_ok()));
    assert_eq!(admin.inner().fetch_watermarks("r", 0, TIMEOUT).unwrap(), (4, 10));
    assert_eq!(admin.inner().fetch_watermarks("r", 1, TIMEOUT).unwrap(), (10, 10));
    let consumed = kcat(
        &["-b", &broker.bootstrap(), "-t", "r", "-C", "-p", "0", "-o", "beginning", "-e", "-f", "%o "],
        "",
    );
    assert_eq!(consumed.trim(), "4 5 6 7 8 9");

    let mut beyond = TopicPartitionList::new();
    beyond.add_partition_offset("r", 0, Offset::Offset(11)).unwrap();
    let result = block_on(admin.delete_records(&beyond, &opts())).unwrap();
    // rdkafka reports per-partition errors of a partition list as `OffsetFetch`.
    assert_eq!(
        result.elements()[0].error(),
        Err(KafkaError::OffsetFetch(RDKafkaErrorCode::OffsetOutOfRange))
    );

    // On the wire: the partition's owner decides; other shards and unknown partitions refuse.
    let request = |topic: &str, partition: i32, offset: i64| {
        DeleteRecordsRequest::default()
            .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![delete_records_request::DeleteRecordsPartition::default()
                    .with_partition_index(partition)
                    .with_offset(offset)])])
            .with_timeout_ms(10_000)
    };
    let metadata = admin.inner().fetch_metadata(Some("r"), TIMEOUT).unwrap();
    let leader = metadata.topics()[0].partitions()[0].leader();
    let (owner, other) =
        if leader == 1 { (broker.ports[0], broker.ports[1]) } else { (broker.ports[1], broker.ports[0]) };
    let code = |port, topic: &str, partition, offset| {
        let response = wire::call(port, 2, &request(topic, partition, offset));
        let p = &response.topics[0].partitions[0];
        (p.error_code, p.low_watermark)
    };
    assert_eq!(code(owner, "r", 0, 6), (0, 6));
    assert_eq!(code(owner, "r", 0, 5), (0, 6), "the log start never moves back");
    assert_eq!(code(other, "r", 0, 7), (6, -1));
    assert_eq!(code(owner, "r", 7, 1), (3, -1));
    assert_eq!(code(owner, "r", 0, -2), (1, -1));
    let compacted_leader = admin.inner().fetch_metadata(Some("compacted"), TIMEOUT).unwrap().topics()[0]
        .partitions()[0]
        .leader();
    let compacted_port = if compacted_leader == 1 { broker.ports[0] } else { broker.ports[1] };
    assert_eq!(code(compacted_port, "compacted", 0, 1), (44, -1));
}

#[test]
fn describe_cluster_lists_every_shard_as_a_broker() {
    let broker = Broker::start(2, &["broker.rack=r1"]);
    let meta = std::fs::read_to_string(broker.dir.join("meta.properties")).unwrap();
    let cluster_id = meta.lines().find_map(|l| l.strip_prefix("cluster.id=")).unwrap().trim().to_string();
    for version in [0, 1] {
        let request =
            DescribeClusterRequest::default().with_include_cluster_authorized_operations(version == 1);
        let response = wire::call(broker.ports[1], version, &request);
        assert_eq!(response.error_code, 0);
        assert_eq!(response.cluster_id.as_str(), cluster_id);
        assert_eq!(response.controller_id, BrokerId(1));
        let brokers: Vec<(i32, &str, i32, Option<&str>)> = response
            .brokers
            .iter()
            .map(|b| (b.broker_id.0, b.host.as_str(), b.port, b.rack.as_deref()))
            .collect();
        assert_eq!(
            brokers,
            vec![
                (1, "127.0.0.1", broker.ports[0] as i32, Some("r1")),
                (1001, "127.0.0.1", broker.ports[1] as i32, Some("r1"))
            ]
        );
        let expected_ops = if version == 1 { 8096 } else { i32::MIN };
        assert_eq!(response.cluster_authorized_operations, expected_ops);
    }
    let controllers =
        wire::call(broker.ports[0], 1, &DescribeClusterRequest::default().with_endpoint_type(2));
    assert_eq!(controllers.error_code, 114);
    let unknown = wire::call(broker.ports[0], 1, &DescribeClusterRequest::default().with_endpoint_type(0));
    assert_eq!(unknown.error_code, 115);
}

#[test]
fn describe_log_dirs_lists_the_partitions_of_the_answering_shard() {
    let broker = Broker::start(2, &[]);
    let admin = admin(&broker);
    create(&admin, NewTopic::new("logs", 2, TopicReplication::Fixed(1)));
    for p in ["0", "1"] {
        kcat(&["-b", &broker.bootstrap(), "-t", "logs", "-P", "-p", p], "some data\n");
    }
    let metadata = admin.inner().fetch_metadata(Some("logs"), TIMEOUT).unwrap();
    let leaders: Vec<i32> = metadata.topics()[0].partitions().iter().map(|p| p.leader()).collect();
    let log_dir = std::fs::canonicalize(&broker.dir).unwrap().display().to_string();
    for (shard, node) in [(0, 1), (1, 1001)] {
        for version in [1, 4] {
            let response = wire::call(
                broker.ports[shard],
                version,
                &DescribeLogDirsRequest::default().with_topics(None),
            );
            assert_eq!(response.results.len(), 1);
            let dir = &response.results[0];
            assert_eq!((dir.error_code, dir.log_dir.as_str()), (0, log_dir.as_str()));
            let listed: Vec<(i32, bool)> = dir
                .topics
                .iter()
                .filter(|t| t.name.0.as_str() == "logs")
                .flat_map(|t| t.partitions.iter().map(|p| (p.partition_index, p.partition_size > 0)))
                .collect();
            let expected: Vec<(i32, bool)> =
                (0..2).filter(|p| leaders[*p as usize] == node).map(|p| (p, true)).collect();
            assert_eq!(listed, expected, "shard {shard} v{version}");
            if version >= 4 {
                assert!(dir.total_bytes > 0 && dir.usable_bytes >= 0 && dir.usable_bytes <= dir.total_bytes);
            }
        }
    }
    // A filter that names nothing this shard has lists nothing.
    let none = DescribeLogDirsRequest::default().with_topics(Some(vec![
        describe_log_dirs_request::DescribableLogDirTopic::default()
            .with_topic(TopicName(s("logs")))
            .with_partitions(vec![7]),
    ]));
    assert!(wire::call(broker.ports[0], 2, &none).results[0].topics.is_empty());
}
