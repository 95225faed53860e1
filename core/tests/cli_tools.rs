//! The network and storage tools (`topics`, `get-offsets`, `configs`, `console-producer`,
//! `console-consumer`, `consumer-groups`, `broker-api-versions`, `storage`)
//! run as the real `shardlog` binary against a real broker; outputs are checked against the
//! shapes Kafka 3.7's `kafka-*.sh` tools print.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

use common::shardlog_with_input;
use common::{kcat, Broker};

fn shardlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_shardlog")).args(args).output().expect("runs shardlog")
}

fn stdout(o: &Output) -> String {
    String::from_utf8(o.stdout.clone()).expect("utf-8")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Runs a tool that must succeed; returns its stdout.
fn ok(args: &[&str]) -> String {
    let o = shardlog(args);
    assert!(o.status.success(), "shardlog {args:?} failed: {}", stderr(&o));
    stdout(&o)
}

/// Runs a tool that must fail with one stderr line; returns that line.
fn fails(args: &[&str]) -> String {
    let o = shardlog(args);
    assert!(!o.status.success(), "shardlog {args:?} succeeded: {}", stdout(&o));
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "one error line: {err:?}");
    err.trim_end().to_string()
}

fn topics(b: &str, rest: &[&str]) -> Vec<String> {
    let mut args = vec!["topics", "--bootstrap-server", b];
    args.extend_from_slice(rest);
    args.into_iter().map(str::to_string).collect()
}

fn run_ok(args: &[String]) -> String {
    ok(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

fn run_fails(args: &[String]) -> String {
    fails(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// Node ids of the broker's shards, from broker-api-versions (`host:port (id: N rack: …`).
fn node_ids(b: &str) -> Vec<String> {
    ok(&["broker-api-versions", "--bootstrap-server", b])
        .lines()
        .filter_map(|l| l.split("(id: ").nth(1))
        .map(|rest| rest.split(' ').next().unwrap().to_string())
        .collect()
}

#[test]
fn topics_create_list_describe_alter_delete() {
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    let nodes = node_ids(&b);
    assert_eq!(nodes.len(), 2, "{nodes:?}");

    let out = run_ok(&topics(
        &b,
        &[
            "--create",
            "--topic",
            "orders",
            "--partitions",
            "3",
            "--replication-factor",
            "1",
            "--config",
            "retention.ms=60000",
        ],
    ));
    assert_eq!(out, "Created topic orders.\n");
    // A name with a period gets Kafka's collision warning first.
    let out = run_ok(&topics(&b, &["--create", "--topic", "a.b", "--partitions", "1"]));
    assert_eq!(
        out,
        "WARNING: Due to limitations in metric names, topics with a period ('.') or underscore ('_') could collide. To avoid issues it is best to use either, but not both.\nCreated topic a.b.\n"
    );

    // Already exists: Kafka's error line; --if-not-exists: silent success.
    let err = run_fails(&topics(&b, &["--create", "--topic", "zero", "--partitions", "0"]));
    assert_eq!(err, "Error while executing topic command : The partitions must be greater than 0");
    let err = run_fails(&topics(&b, &["--create", "--topic", "orders", "--partitions", "3"]));
    assert_eq!(err, "Error while executing topic command : Topic 'orders' already exists.");
    assert_eq!(run_ok(&topics(&b, &["--create", "--topic", "orders", "--if-not-exists"])), "");

    let list = run_ok(&topics(&b, &["--list"]));
    let names: Vec<&str> = list.lines().collect();
    assert!(names.contains(&"orders") && names.contains(&"a.b"), "{list}");
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted, "sorted, one per line");

    let describe = run_ok(&topics(&b, &["--describe", "--topic", "orders"]));
    let lines: Vec<&str> = describe.lines().collect();
    assert_eq!(lines.len(), 4, "{describe}");
    let head: Vec<&str> = lines[0].split('\t').collect();
    assert_eq!(head.len(), 5, "{:?}", lines[0]);
    assert_eq!(head[0], "Topic: orders");
    let id = head[1].strip_prefix("TopicId: ").expect("TopicId");
    assert_eq!(id.len(), 22, "base64url topic id: {id}");
    assert!(id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{id}");
    assert_eq!(&head[2..], ["PartitionCount: 3", "ReplicationFactor: 1", "Configs: retention.ms=60000"]);
    for (i, line) in lines[1..].iter().enumerate() {
        let fields: Vec<&str> = line.split('\t').collect();
        assert_eq!(fields.len(), 6, "{line:?}");
        assert_eq!(fields[0], "");
        assert_eq!(fields[1], "Topic: orders");
        assert_eq!(fields[2], format!("Partition: {i}"));
        let leader = fields[3].strip_prefix("Leader: ").expect("Leader");
        assert!(nodes.iter().any(|n| n == leader), "leader {leader} is a shard node {nodes:?}");
        assert_eq!(fields[4], format!("Replicas: {leader}"));
        assert_eq!(fields[5], format!("Isr: {leader}"));
    }
    // Describing everything includes both topics; a topic with no overrides has empty Configs.
    let all = run_ok(&topics(&b, &["--describe"]));
    assert!(all.lines().any(|l| l.starts_with("Topic: a.b\t") && l.ends_with("\tConfigs: ")), "{all}");
    assert!(all.lines().any(|l| l.starts_with("Topic: orders\t")), "{all}");

    // Grow, then try to shrink: the broker's INVALID_PARTITIONS message, non-zero exit.
    assert_eq!(run_ok(&topics(&b, &["--alter", "--topic", "orders", "--partitions", "4"])), "");
    let describe = run_ok(&topics(&b, &["--describe", "--topic", "orders"]));
    assert!(describe.contains("\tPartitionCount: 4\t"), "{describe}");
    assert_eq!(describe.lines().count(), 5);
    let err = run_fails(&topics(&b, &["--alter", "--topic", "orders", "--partitions", "2"]));
    assert_eq!(
        err,
        "Error while executing topic command : The topic orders currently has 4 partition(s); 2 would not be an increase."
    );

    // Unknown topics.
    let missing = "Error while executing topic command : Topic 'nope' does not exist as expected";
    assert_eq!(run_fails(&topics(&b, &["--describe", "--topic", "nope"])), missing);
    assert_eq!(run_fails(&topics(&b, &["--delete", "--topic", "nope"])), missing);
    assert_eq!(run_fails(&topics(&b, &["--alter", "--topic", "nope", "--partitions", "5"])), missing);
    assert_eq!(run_ok(&topics(&b, &["--delete", "--topic", "nope", "--if-exists"])), "");
    assert_eq!(run_ok(&topics(&b, &["--describe", "--topic", "nope", "--if-exists"])), "");

    // Delete: gone from the list.
    assert_eq!(run_ok(&topics(&b, &["--delete", "--topic", "orders"])), "");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let list = run_ok(&topics(&b, &["--list"]));
        if !list.lines().any(|l| l == "orders") {
            break;
        }
        assert!(Instant::now() < deadline, "orders still listed: {list}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Bad usage is refused by the argument parser (non-zero exit, no request sent).
    let o = shardlog(&["topics", "--bootstrap-server", &b, "--create", "--list", "--topic", "x"]);
    assert!(!o.status.success());
    let o = shardlog(&["topics", "--bootstrap-server", &b]);
    assert!(!o.status.success());
}

#[test]
fn unreachable_broker_is_one_error_line_and_a_failure() {
    let port = common::free_ports(1)[0];
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    for args in [
        vec!["topics", "--bootstrap-server", &addr, "--list"],
        vec!["get-offsets", "--bootstrap-server", &addr, "--topic", "t"],
        vec!["broker-api-versions", "--bootstrap-server", &addr],
        vec!["configs", "--bootstrap-server", &addr, "--entity-type", "topics", "--describe"],
        vec!["console-producer", "--bootstrap-server", &addr, "--topic", "t"],
        vec!["console-consumer", "--bootstrap-server", &addr, "--topic", "t"],
    ] {
        let err = fails(&args);
        assert!(err.contains(&format!("cannot connect to {addr}")), "{err}");
    }
    let err = fails(&["topics", "--bootstrap-server", "no-port", "--list"]);
    assert!(err.contains("no-port"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn get_offsets_asks_each_leader() {
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    run_ok(&topics(&b, &["--create", "--topic", "events", "--partitions", "2"]));
    let leaders = common::raw::ensure_topic(broker.ports[0], "events");
    assert_ne!(leaders[0], leaders[1], "partitions are spread over both shards");
    kcat(&["-b", &b, "-t", "events", "-P", "-p", "0"], "a\nb\nc\n");
    kcat(&["-b", &b, "-t", "events", "-P", "-p", "1"], "d\ne\n");

    let go = |extra: &[&str]| {
        let mut args = vec!["get-offsets", "--bootstrap-server", &b];
        args.extend_from_slice(extra);
        ok(&args)
    };
    assert_eq!(go(&["--topic", "events"]), "events:0:3\nevents:1:2\n");
    assert_eq!(go(&["--topic", "events", "--time", "-1"]), "events:0:3\nevents:1:2\n");
    assert_eq!(go(&["--topic", "events", "--time", "-2"]), "events:0:0\nevents:1:0\n");
    assert_eq!(go(&["--topic", "events", "--time", "earliest", "--partitions", "1"]), "events:1:0\n");
    assert_eq!(go(&["--topic", "events", "--partitions", "0,1"]), "events:0:3\nevents:1:2\n");
    // A timestamp before every record: the first offset.
    assert_eq!(go(&["--topic", "events", "--time", "1"]), "events:0:0\nevents:1:0\n");

    let err = fails(&["get-offsets", "--bootstrap-server", &b, "--topic", "nope"]);
    assert_eq!(err, "Error occurred: Could not match any topic-partitions with the specified filters");
}

#[test]
fn broker_api_versions_lists_every_shard() {
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    let out = ok(&["broker-api-versions", "--bootstrap-server", &b]);
    let heads: Vec<&str> = out.lines().filter(|l| l.ends_with(" -> (")).collect();
    assert_eq!(heads.len(), 2, "{out}");
    for (head, port) in heads.iter().zip(&broker.ports) {
        assert!(head.starts_with(&format!("127.0.0.1:{port} (id: ")), "{head}");
        // Shards of one broker share its rack (`broker.rack`, else `broker-<node.id>`).
        assert!(head.ends_with(" rack: broker-1) -> ("), "{head}");
    }
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[1], "\tProduce(0): 0 to 10 [usable: 10],");
    assert!(lines.contains(&"\tMetadata(3): 0 to 12 [usable: 12],"), "{out}");
    assert!(lines.iter().any(|l| l.starts_with("\tCreatePartitions(37): 0 to 3 [usable: 3]")), "{out}");
    assert!(lines.iter().any(|l| l.ends_with(": UNSUPPORTED,")), "{out}");
    assert_eq!(lines.iter().filter(|l| **l == ")").count(), 2, "{out}");
    // The line before each `)` has no trailing comma.
    for (i, l) in lines.iter().enumerate() {
        if *l == ")" {
            assert!(!lines[i - 1].ends_with(','), "{}", lines[i - 1]);
        }
    }
}

#[test]
fn storage_random_uuid_and_format() {
    let id = ok(&["storage", "random-uuid"]);
    let id = id.trim_end();
    assert_eq!(id.len(), 22, "{id}");
    assert_ne!(id, ok(&["storage", "random-uuid"]).trim_end(), "random");

    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let props = tmp.path().join("server.properties");
    std::fs::write(&props, format!("node.id=1\nlog.dirs={}\n", data.display())).unwrap();
    let props = props.to_str().unwrap();

    let out = ok(&["storage", "format", "-t", id, "-c", props]);
    assert_eq!(out, format!("Formatting {} with metadata.version 3.7-IV4.\n", data.display()));
    let meta = std::fs::read_to_string(data.join("meta.properties")).unwrap();
    assert!(meta.contains(&format!("cluster.id={id}\n")), "{meta}");
    assert!(meta.contains("node.id=1\n") && meta.contains("version=1\n"), "{meta}");

    // Formatting again: refused, unless --ignore-formatted with the same cluster id.
    let err = fails(&["storage", "format", "-t", id, "-c", props]);
    assert!(err.contains("already formatted"), "{err}");
    assert_eq!(
        ok(&["storage", "format", "-t", id, "-c", props, "--ignore-formatted"]),
        "All of the log directories are already formatted.\n"
    );
    let other = ok(&["storage", "random-uuid"]);
    let err = fails(&["storage", "format", "-t", other.trim_end(), "-c", props, "--ignore-formatted"]);
    assert!(err.contains(&format!("already formatted for cluster {id}")), "{err}");
    assert_eq!(std::fs::read_to_string(data.join("meta.properties")).unwrap(), meta, "untouched");

    let err = fails(&["storage", "format", "-t", "not-a-uuid", "-c", props]);
    assert!(err.contains("not-a-uuid"), "{err}");
}

fn configs(b: &str, rest: &[&str]) -> Vec<String> {
    let mut args = vec!["configs", "--bootstrap-server", b];
    args.extend_from_slice(rest);
    args.into_iter().map(str::to_string).collect()
}

#[test]
fn configs_describe_and_alter_round_trip() {
    let broker = Broker::start(1, &[]);
    let b = broker.bootstrap();
    run_ok(&topics(&b, &["--create", "--topic", "orders", "--partitions", "1"]));
    let entity = ["--entity-type", "topics", "--entity-name", "orders"];
    let with = |extra: &[&str]| {
        let mut v = entity.to_vec();
        v.extend_from_slice(extra);
        configs(&b, &v)
    };

    // Nothing dynamic yet: the heading alone.
    assert_eq!(run_ok(&with(&["--describe"])), "Dynamic configs for topic orders are:\n");

    let out =
        run_ok(&with(&["--alter", "--add-config", "retention.ms=86400000,cleanup.policy=[compact,delete]"]));
    assert_eq!(out, "Completed updating config for topic orders.\n");
    let out = run_ok(&with(&["--describe"]));
    assert_eq!(
        out,
        "Dynamic configs for topic orders are:\n  \
         cleanup.policy=compact,delete sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:cleanup.policy=compact,delete, DEFAULT_CONFIG:log.cleanup.policy=delete}\n  \
         retention.ms=86400000 sensitive=false synonyms={DYNAMIC_TOPIC_CONFIG:retention.ms=86400000, DEFAULT_CONFIG:log.retention.hours=168}\n"
    );
    // --all: every topic config, sorted, the defaults included.
    let all = run_ok(&with(&["--describe", "--all"]));
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines[0], "All configs for topic orders are:");
    assert!(lines.len() > 10, "{all}");
    assert!(
        lines.iter().any(|l| l.starts_with("  retention.ms=86400000 sensitive=false synonyms={")),
        "{all}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("  segment.bytes=1073741824 sensitive=false synonyms={DEFAULT_CONFIG:log.segment.bytes=1073741824}")),
        "{all}"
    );
    let names: Vec<&str> = lines[1..].iter().map(|l| l.trim_start().split('=').next().unwrap()).collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);

    // Delete one, and the other stays.
    let out = run_ok(&with(&["--alter", "--delete-config", "cleanup.policy"]));
    assert_eq!(out, "Completed updating config for topic orders.\n");
    let out = run_ok(&with(&["--describe"]));
    assert_eq!(out.lines().count(), 2, "{out}");
    assert!(out.lines().nth(1).unwrap().starts_with("  retention.ms=86400000 "), "{out}");

    // Errors: one line, non-zero exit.
    assert_eq!(
        run_fails(&with(&["--alter", "--delete-config", "cleanup.policy"])),
        "Invalid config(s): cleanup.policy"
    );
    let err = run_fails(&with(&["--alter", "--add-config", "no.such.config=1"]));
    assert!(!err.is_empty());
    let err = run_fails(&configs(&b, &["--entity-type", "topics", "--entity-name", "nope", "--describe"]));
    assert!(err.contains("does not host this topic-partition"), "{err}");
    let err = run_fails(&with(&["--alter", "--add-config", "novalue"]));
    assert!(err.contains("key=val"), "{err}");

    // Brokers: static configs only, so nothing dynamic; --all lists them with their source.
    let node = node_ids(&b)[0].clone();
    let out = run_ok(&configs(&b, &["--entity-type", "brokers", "--entity-name", &node, "--describe"]));
    assert_eq!(out, format!("Dynamic configs for broker {node} are:\n"));
    let out =
        run_ok(&configs(&b, &["--entity-type", "brokers", "--entity-name", &node, "--describe", "--all"]));
    assert!(out.starts_with(&format!("All configs for broker {node} are:\n")), "{out}");
    assert!(
        out.lines().any(|l| l.starts_with(
            "  log.retention.hours=168 sensitive=false synonyms={DEFAULT_CONFIG:log.retention.hours=168}"
        )),
        "{out}"
    );
}

/// `partition|key|value` lines of everything in `topic`, sorted.
fn kcat_read(b: &str, topic: &str) -> Vec<(i32, String, String)> {
    let out = kcat(&["-b", b, "-t", topic, "-C", "-e", "-q", "-f", "%p|%k|%s\n"], "");
    let mut rows: Vec<(i32, String, String)> = out
        .lines()
        .map(|l| {
            let mut f = l.splitn(3, '|');
            (f.next().unwrap().parse().unwrap(), f.next().unwrap().to_string(), f.next().unwrap().to_string())
        })
        .collect();
    rows.sort();
    rows
}

#[test]
fn console_producer_partitions_keys_like_kafka() {
    use shardlog_cli::console_producer::partition_for_key;
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    for t in ["keyed", "crosscheck", "plain"] {
        run_ok(&topics(&b, &["--create", "--topic", t, "--partitions", "3"]));
        common::raw::ensure_topic(broker.ports[0], t);
    }
    let keys: Vec<String> = (1..=12).map(|i| format!("key{i}")).collect();

    // librdkafka's murmur2_random partitioner is Kafka's default partitioner for keyed
    // records: our rule must put every key where it does.
    let input: String = keys.iter().map(|k| format!("{k}:x\n")).collect();
    kcat(&["-b", &b, "-t", "crosscheck", "-P", "-K", ":", "-X", "partitioner=murmur2_random"], &input);
    let theirs = kcat_read(&b, "crosscheck");
    assert_eq!(theirs.len(), keys.len());
    for (partition, key, _) in &theirs {
        assert_eq!(*partition as usize, partition_for_key(key.as_bytes(), 3), "key {key}");
    }
    let spread: std::collections::BTreeSet<i32> = theirs.iter().map(|r| r.0).collect();
    assert!(spread.len() > 1, "keys spread over partitions: {theirs:?}");

    // Ours, with keys, acks=all and lz4: read back with their keys on the same partitions.
    let input: String = keys.iter().enumerate().map(|(i, k)| format!("{k}:value {i}\n")).collect();
    let o = shardlog_with_input(
        &[
            "console-producer",
            "--bootstrap-server",
            &b,
            "--topic",
            "keyed",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
            "--producer-property",
            "acks=all",
            "--compression-codec",
            "lz4",
        ],
        &input,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o), "", "no prompt when stdin is not a terminal");
    let ours = kcat_read(&b, "keyed");
    assert_eq!(ours.len(), keys.len());
    for (partition, key, value) in &ours {
        let i = keys.iter().position(|k| k == key).expect("a key we sent");
        assert_eq!(value, &format!("value {i}"));
        let same = theirs.iter().find(|r| &r.1 == key).unwrap().0;
        assert_eq!(*partition, same, "key {key}: same partition as librdkafka's murmur2");
    }

    // Keyless lines, default tab separator unused, every codec and acks.
    for (codec, acks) in [("gzip", "1"), ("snappy", "-1"), ("zstd", "1"), ("none", "0")] {
        let o = shardlog_with_input(
            &[
                "console-producer",
                "--bootstrap-server",
                &b,
                "--topic",
                "plain",
                "--compression-codec",
                codec,
                "--request-required-acks",
                acks,
            ],
            &format!("{codec} a\n{codec} b\n"),
        );
        assert!(o.status.success(), "{codec}: {}", stderr(&o));
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = kcat_read(&b, "plain");
        if rows.len() == 8 {
            let mut values: Vec<&str> = rows.iter().map(|r| r.2.as_str()).collect();
            values.sort();
            assert_eq!(
                values,
                ["gzip a", "gzip b", "none a", "none b", "snappy a", "snappy b", "zstd a", "zstd b"]
            );
            assert!(rows.iter().all(|r| r.1.is_empty()), "no keys: {rows:?}");
            break;
        }
        assert!(Instant::now() < deadline, "{rows:?}");
        std::thread::sleep(Duration::from_millis(50));
    }

    // A missing key separator: Kafka's message, non-zero exit; lines before it were sent.
    let o = shardlog_with_input(
        &["console-producer", "--bootstrap-server", &b, "--topic", "keyed", "--property", "parse.key=true"],
        "k\tv\nno separator\n",
    );
    assert!(!o.status.success());
    assert_eq!(stderr(&o), "No key separator found on line number 2: 'no separator'\n");
    assert_eq!(kcat_read(&b, "keyed").len(), keys.len() + 1);

    // A record the broker refuses: Kafka's error name on stderr, non-zero exit.
    run_ok(&topics(
        &b,
        &["--create", "--topic", "small", "--partitions", "1", "--config", "max.message.bytes=200"],
    ));
    common::raw::ensure_topic(broker.ports[0], "small");
    let big = "x".repeat(1000);
    let o = shardlog_with_input(
        &["console-producer", "--bootstrap-server", &b, "--topic", "small"],
        &format!("{big}\n"),
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("ERROR Error when sending message to topic small with key: null, value: 1000 bytes with error: MESSAGE_TOO_LARGE: "),
        "{err}"
    );

    // A missing topic is auto-created (auto.create.topics.enable defaults to true), as Kafka's
    // console producer does.
    let o = shardlog_with_input(&["console-producer", "--bootstrap-server", &b, "--topic", "fresh"], "a\n");
    assert!(o.status.success(), "{}", stderr(&o));
    let listed = shardlog(&["topics", "--bootstrap-server", &b, "--list"]);
    assert!(String::from_utf8_lossy(&listed.stdout).lines().any(|l| l == "fresh"));
}

#[test]
fn console_producer_to_a_missing_topic_without_auto_creation_fails_in_one_line() {
    let broker = Broker::start(1, &["auto.create.topics.enable=false"]);
    let b = broker.bootstrap();
    let o = shardlog_with_input(&["console-producer", "--bootstrap-server", &b, "--topic", "nope"], "a\n");
    assert!(!o.status.success());
    assert_eq!(stderr(&o), "Topic nope not present in metadata.\n");
}

#[test]
fn console_consumer_prints_like_kafka() {
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    run_ok(&topics(&b, &["--create", "--topic", "feed", "--partitions", "2"]));
    common::raw::ensure_topic(broker.ports[0], "feed");
    kcat(&["-b", &b, "-t", "feed", "-P", "-p", "0", "-K", ":", "-z", "gzip"], "a:one\nb:two\nc:three\n");
    kcat(&["-b", &b, "-t", "feed", "-P", "-p", "1", "-K", ":", "-H", "h1=x"], "d:four\n");

    let consume = |extra: &[&str]| {
        let mut args = vec!["console-consumer", "--bootstrap-server", &b, "--topic", "feed"];
        args.extend_from_slice(extra);
        let o = shardlog(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        (stdout(&o), stderr(&o))
    };

    // Values only; every record of both partitions; the count on stderr.
    let (out, err) = consume(&["--from-beginning", "--max-messages", "4"]);
    let mut values: Vec<&str> = out.lines().collect();
    values.sort();
    assert_eq!(values, ["four", "one", "three", "two"]);
    assert_eq!(err, "Processed a total of 4 messages\n");

    // One partition, key and offset: DefaultMessageFormatter's order, tab-separated.
    let (out, err) = consume(&[
        "--partition",
        "0",
        "--offset",
        "earliest",
        "--max-messages",
        "3",
        "--property",
        "print.key=true",
        "--property",
        "print.offset=true",
    ]);
    assert_eq!(out, "Offset:0\ta\tone\nOffset:1\tb\ttwo\nOffset:2\tc\tthree\n");
    assert_eq!(err, "Processed a total of 3 messages\n");

    // Every column with a custom separator; --offset N starts mid-batch.
    let (out, _) = consume(&[
        "--partition",
        "0",
        "--offset",
        "1",
        "--max-messages",
        "1",
        "--property",
        "print.timestamp=true",
        "--property",
        "print.partition=true",
        "--property",
        "print.offset=true",
        "--property",
        "print.headers=true",
        "--property",
        "print.key=true",
        "--property",
        "key.separator=|",
    ]);
    let fields: Vec<&str> = out.trim_end().split('|').collect();
    assert_eq!(fields.len(), 6, "{out}");
    let ts: i64 = fields[0].strip_prefix("CreateTime:").expect("CreateTime").parse().unwrap();
    assert!(ts > 1_600_000_000_000, "{ts}");
    assert_eq!(&fields[1..], ["Partition:0", "Offset:1", "NO_HEADERS", "b", "two"]);
    let (out, _) = consume(&[
        "--partition",
        "1",
        "--offset",
        "earliest",
        "--max-messages",
        "1",
        "--property",
        "print.headers=true",
    ]);
    assert_eq!(out, "h1:x\tfour\n");

    // --timeout-ms: stops when nothing comes; Kafka's lines on stderr, success.
    let started = Instant::now();
    let (out, err) = consume(&["--timeout-ms", "700"]);
    assert_eq!(out, "");
    assert!(err.ends_with("Processed a total of 0 messages\n"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));

    // Read committed: a partition read from the beginning with a timeout.
    let (out, err) =
        consume(&["--from-beginning", "--timeout-ms", "700", "--isolation-level", "read_committed"]);
    assert_eq!(out.lines().count(), 4, "{out}");
    assert!(err.ends_with("Processed a total of 4 messages\n"), "{err}");

    // SIGINT: exits cleanly with the count (sent once all four records were printed).
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardlog"))
        .args(["console-consumer", "--bootstrap-server", &b, "--topic", "feed", "--from-beginning"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    for _ in 0..4 {
        lines.next().expect("a record line").unwrap();
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill").args(["-INT", &pid]).status().unwrap().success());
    let o = child.wait_with_output().unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(lines.count(), 0);
    assert_eq!(stderr(&o), "Processed a total of 4 messages\n");

    // Errors: one line, non-zero exit.
    assert_eq!(
        fails(&["console-consumer", "--bootstrap-server", &b, "--topic", "nope", "--max-messages", "1"]),
        "Topic nope not present in metadata."
    );
    assert_eq!(
        fails(&["console-consumer", "--bootstrap-server", &b, "--topic", "feed", "--partition", "7"]),
        "Partition 7 of topic feed does not exist."
    );
    let o = shardlog(&["console-consumer", "--bootstrap-server", &b, "--topic", "feed", "--offset", "1"]);
    assert!(!o.status.success(), "--offset needs --partition");
}

#[test]
fn console_consumer_group_commits_and_shares_partitions() {
    let broker = Broker::start(2, &["group.initial.rebalance.delay.ms=0"]);
    let b = broker.bootstrap();
    run_ok(&topics(&b, &["--create", "--topic", "grp", "--partitions", "2"]));
    common::raw::ensure_topic(broker.ports[0], "grp");
    kcat(&["-b", &b, "-t", "grp", "-P", "-p", "0"], "a\nb\n");
    kcat(&["-b", &b, "-t", "grp", "-P", "-p", "1"], "c\nd\n");
    let consume = |extra: &[&str]| {
        let mut args = vec!["console-consumer", "--bootstrap-server", &b, "--topic", "grp", "--group", "g1"];
        args.extend_from_slice(extra);
        let o = shardlog(&args);
        assert!(o.status.success(), "{args:?}: {}", stderr(&o));
        (stdout(&o), stderr(&o))
    };

    let (out, err) = consume(&["--from-beginning", "--max-messages", "4"]);
    let mut values: Vec<&str> = out.lines().collect();
    values.sort();
    assert_eq!(values, ["a", "b", "c", "d"]);
    assert_eq!(err, "Processed a total of 4 messages\n");
    // The offsets were committed on exit: the group resumes after them.
    let (out, err) = consume(&["--from-beginning", "--timeout-ms", "1000"]);
    assert_eq!(out, "");
    assert!(err.ends_with("Processed a total of 0 messages\n"), "{err}");
    kcat(&["-b", &b, "-t", "grp", "-P", "-p", "1"], "e\n");
    let (out, _) = consume(&["--max-messages", "1", "--property", "print.partition=true"]);
    assert_eq!(out, "Partition:1\te\n");

    // Two members of a new group at once: whichever partitions each is assigned over the
    // rebalances (range assignor; offsets committed before each rejoin), together they read
    // every record exactly once.
    let spawn = || {
        Command::new(env!("CARGO_BIN_EXE_shardlog"))
            .args([
                "console-consumer",
                "--bootstrap-server",
                &b,
                "--topic",
                "grp",
                "--group",
                "g2",
                "--from-beginning",
                "--timeout-ms",
                "8000",
                "--property",
                "print.partition=true",
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let first = spawn();
    let second = spawn();
    let (first, second) = (first.wait_with_output().unwrap(), second.wait_with_output().unwrap());
    assert!(first.status.success() && second.status.success(), "{} {}", stderr(&first), stderr(&second));
    let (a, b2) = (stdout(&first), stdout(&second));
    let mut all: Vec<&str> = a.lines().chain(b2.lines()).collect();
    all.sort();
    assert_eq!(
        all,
        ["Partition:0\ta", "Partition:0\tb", "Partition:1\tc", "Partition:1\td", "Partition:1\te"]
    );

    // --group with --partition: refused by the argument parser.
    let o = shardlog(&[
        "console-consumer",
        "--bootstrap-server",
        &b,
        "--topic",
        "grp",
        "--group",
        "g",
        "--partition",
        "0",
    ]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("cannot be used with"), "{}", stderr(&o));
}

fn groups_cmd(b: &str, rest: &[&str]) -> Vec<String> {
    let mut args = vec!["consumer-groups", "--bootstrap-server", b];
    args.extend_from_slice(rest);
    args.into_iter().map(str::to_string).collect()
}

/// The rows of a `--describe` table, split on whitespace, after checking the blank line, the
/// header and that every row's columns start where the header's do.
fn describe_rows(out: &str) -> Vec<Vec<String>> {
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some(""), "a blank line first: {out:?}");
    let header = lines.next().expect("header");
    let names: Vec<&str> = header.split_whitespace().collect();
    assert_eq!(
        names,
        [
            "GROUP",
            "TOPIC",
            "PARTITION",
            "CURRENT-OFFSET",
            "LOG-END-OFFSET",
            "LAG",
            "CONSUMER-ID",
            "HOST",
            "CLIENT-ID"
        ]
    );
    let starts: Vec<usize> = names.iter().map(|n| header.find(n).unwrap()).collect();
    lines
        .map(|l| {
            for &s in &starts[1..] {
                assert_eq!(&l[s - 1..s], " ", "column at {s} aligned: {l:?} under {header:?}");
                assert_ne!(&l[s..s + 1], " ", "column at {s} aligned: {l:?} under {header:?}");
            }
            l.split_whitespace().map(str::to_string).collect()
        })
        .collect()
}

#[test]
fn consumer_groups_list_describe_reset_delete() {
    let broker = Broker::start(2, &["group.initial.rebalance.delay.ms=0"]);
    let b = broker.bootstrap();
    run_ok(&topics(&b, &["--create", "--topic", "cg", "--partitions", "2"]));
    common::raw::ensure_topic(broker.ports[0], "cg");
    kcat(&["-b", &b, "-t", "cg", "-P", "-p", "0"], "a\nb\nc\n");
    kcat(&["-b", &b, "-t", "cg", "-P", "-p", "1"], "d\ne\n");
    let o = shardlog(&[
        "console-consumer",
        "--bootstrap-server",
        &b,
        "--topic",
        "cg",
        "--group",
        "cg1",
        "--from-beginning",
        "--max-messages",
        "5",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stdout(&o).lines().count(), 5);
    kcat(&["-b", &b, "-t", "cg", "-P", "-p", "0"], "f\ng\n");

    let list = run_ok(&groups_cmd(&b, &["--list"]));
    assert!(list.lines().any(|l| l == "cg1"), "{list}");

    // No members: Kafka's note on stderr, the committed offsets, log end offsets and lag.
    let o = shardlog(
        &groups_cmd(&b, &["--describe", "--group", "cg1"]).iter().map(String::as_str).collect::<Vec<_>>(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(stderr(&o), "\nConsumer group 'cg1' has no active members.\n");
    let rows = describe_rows(&stdout(&o));
    assert_eq!(
        rows,
        [["cg1", "cg", "0", "3", "5", "2", "-", "-", "-"], ["cg1", "cg", "1", "2", "2", "0", "-", "-", "-"]]
    );

    // Dry run: the plan, nothing committed.
    let plan = run_ok(&groups_cmd(
        &b,
        &["--reset-offsets", "--group", "cg1", "--topic", "cg", "--to-earliest", "--dry-run"],
    ));
    assert_eq!(
        plan,
        format!(
            "\n{:<30} {:<30} {:<10} {:<15}\n{:<30} {:<30} {:<10} {:<15}\n{:<30} {:<30} {:<10} {:<15}\n",
            "GROUP", "TOPIC", "PARTITION", "NEW-OFFSET", "cg1", "cg", "0", "0", "cg1", "cg", "1", "0"
        )
    );
    let rows = describe_rows(&run_ok(&groups_cmd(&b, &["--describe", "--group", "cg1"])));
    assert_eq!(rows[0][3], "3");
    // Execute: committed 0, full lag.
    run_ok(&groups_cmd(
        &b,
        &["--reset-offsets", "--group", "cg1", "--topic", "cg", "--to-earliest", "--execute"],
    ));
    let rows = describe_rows(&run_ok(&groups_cmd(&b, &["--describe", "--group", "cg1"])));
    assert_eq!(
        rows,
        [["cg1", "cg", "0", "0", "5", "5", "-", "-", "-"], ["cg1", "cg", "1", "0", "2", "2", "-", "-", "-"]]
    );
    // Shift (clamped to the log end) and --to-offset for one partition.
    run_ok(&groups_cmd(
        &b,
        &["--reset-offsets", "--group", "cg1", "--all-topics", "--shift-by", "3", "--execute"],
    ));
    run_ok(&groups_cmd(
        &b,
        &["--reset-offsets", "--group", "cg1", "--topic", "cg:0", "--to-offset", "1", "--execute"],
    ));
    let rows = describe_rows(&run_ok(&groups_cmd(&b, &["--describe", "--group", "cg1"])));
    assert_eq!((rows[0][3].as_str(), rows[0][5].as_str()), ("1", "4"));
    assert_eq!((rows[1][3].as_str(), rows[1][5].as_str()), ("2", "0"));

    // By time: every record is younger than a day (earliest); none is after 2999 (log end).
    run_ok(&groups_cmd(
        &b,
        &["--reset-offsets", "--group", "cg1", "--all-topics", "--by-duration", "P1D", "--execute"],
    ));
    let rows = describe_rows(&run_ok(&groups_cmd(&b, &["--describe", "--group", "cg1"])));
    assert_eq!((rows[0][3].as_str(), rows[1][3].as_str()), ("0", "0"));
    let plan = run_ok(&groups_cmd(
        &b,
        &[
            "--reset-offsets",
            "--group",
            "cg1",
            "--all-topics",
            "--to-datetime",
            "2999-01-01T00:00:00.000",
            "--dry-run",
        ],
    ));
    let planned: Vec<Vec<&str>> = plan.lines().skip(2).map(|l| l.split_whitespace().collect()).collect();
    assert_eq!(planned, [["cg1", "cg", "0", "5"], ["cg1", "cg", "1", "2"]]);
    let err = run_fails(&groups_cmd(
        &b,
        &["--reset-offsets", "--group", "cg1", "--all-topics", "--by-duration", "1d"],
    ));
    assert_eq!(err, "Error: --by-duration '1d' is not an ISO-8601 duration (PnDTnHnMnS)");

    // A group with an active member: described with its member, reset refused.
    let mut member = Command::new(env!("CARGO_BIN_EXE_shardlog"))
        .args([
            "console-consumer",
            "--bootstrap-server",
            &b,
            "--topic",
            "cg",
            "--group",
            "cg2",
            "--timeout-ms",
            "6000",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let state = loop {
        // Until the member has joined, the group does not exist.
        let o = shardlog(&[
            "consumer-groups",
            "--bootstrap-server",
            &b,
            "--describe",
            "--group",
            "cg2",
            "--state",
        ]);
        let state = stdout(&o);
        if state.contains(" Stable ") || Instant::now() > deadline {
            break state;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let state_lines: Vec<&str> = state.lines().collect();
    assert_eq!(state_lines[0], "");
    assert_eq!(
        state_lines[1].split_whitespace().collect::<Vec<_>>(),
        ["GROUP", "COORDINATOR", "(ID)", "ASSIGNMENT-STRATEGY", "STATE", "#MEMBERS"]
    );
    let fields: Vec<&str> = state_lines[2].split_whitespace().collect();
    assert_eq!((fields[0], fields[3], fields[4], fields[5]), ("cg2", "range", "Stable", "1"), "{state}");
    // Assigned partitions with nothing committed yet: the member's columns, `-` offsets.
    let rows = describe_rows(&run_ok(&groups_cmd(&b, &["--describe", "--group", "cg2"])));
    assert_eq!(rows.len(), 2, "{rows:?}");
    for (i, r) in rows.iter().enumerate() {
        assert_eq!(&r[..3], ["cg2", "cg", &i.to_string()]);
        assert!(r[6].starts_with("shardlog-cli-") && r[8] == "shardlog-cli", "{r:?}");
        assert_eq!(r[7], "/127.0.0.1", "HOST is the member's address as Kafka prints it");
    }
    assert_eq!((rows[0][4].as_str(), rows[1][4].as_str()), ("5", "2"));
    let members = run_ok(&groups_cmd(&b, &["--describe", "--group", "cg2", "--members"]));
    let member_row: Vec<&str> = members.lines().nth(2).unwrap().split_whitespace().collect();
    assert_eq!(member_row.len(), 5, "{members:?}");
    assert_eq!((member_row[0], member_row[4]), ("cg2", "2"), "{members}");
    let err = run_fails(&groups_cmd(
        &b,
        &["--reset-offsets", "--group", "cg2", "--topic", "cg", "--to-earliest", "--execute"],
    ));
    assert_eq!(
        err,
        "Error: Assignments can only be reset if the group 'cg2' is inactive, but the current state is Stable."
    );
    // Neither --topic nor --all-topics: refused before anything is sent.
    let err = run_fails(&groups_cmd(&b, &["--reset-offsets", "--group", "cg1", "--to-latest"]));
    assert_eq!(err, "Error: Option --reset-offsets takes the option: --topic or --all-topics");
    let err = run_fails(&groups_cmd(&b, &["--delete", "--group", "cg2"]));
    assert!(err.contains("NON_EMPTY_GROUP"), "{err}");
    assert!(member.wait().unwrap().success());

    // Delete: Kafka's line, gone from --list, describing it is an error.
    let out = run_ok(&groups_cmd(&b, &["--delete", "--group", "cg1"]));
    assert_eq!(out, "Deletion of requested consumer groups ('cg1') was successful.\n");
    let list = run_ok(&groups_cmd(&b, &["--list"]));
    assert!(!list.lines().any(|l| l == "cg1"), "{list}");
    let err = run_fails(&groups_cmd(&b, &["--describe", "--group", "cg1"]));
    assert_eq!(err, "Error: Consumer group 'cg1' does not exist.");
}

/// The console tools read client properties files (Kafka's --producer.config /
/// --consumer.config, also accepted as --command-config).
#[test]
fn console_tools_read_their_client_config_files() {
    let broker = Broker::start(1, &[]);
    let b = broker.bootstrap();
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.properties");
    std::fs::write(&bad, "# a comment\nacks=banana\n").unwrap();
    let out = shardlog_with_input(
        &[
            "console-producer",
            "--bootstrap-server",
            &b,
            "--topic",
            "cfg",
            "--producer.config",
            bad.to_str().unwrap(),
        ],
        "x\n",
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("acks"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let good = dir.path().join("good.properties");
    std::fs::write(&good, "acks=1\ncompression.type=zstd\nrequest.timeout.ms=5000\n").unwrap();
    let out = shardlog_with_input(
        &[
            "console-producer",
            "--bootstrap-server",
            &b,
            "--topic",
            "cfg",
            "--command-config",
            good.to_str().unwrap(),
        ],
        "one\ntwo\n",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let out = shardlog(&[
        "console-consumer",
        "--bootstrap-server",
        &b,
        "--topic",
        "cfg",
        "--from-beginning",
        "--max-messages",
        "2",
        "--consumer.config",
        good.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout), "one\ntwo\n");
    // The producer config's compression reached the log.
    let log = broker.dir.join("cfg-0").join("00000000000000000000.log");
    let dump = shardlog(&["dump-log", "--files", log.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&dump.stdout).contains("compresscodec: zstd"));
}

/// Every tool explains itself with examples, and a bad flag is one error and a non-zero exit.
#[test]
fn every_tool_has_help_with_examples_and_refuses_bad_flags() {
    for tool in [
        "start",
        "topics",
        "configs",
        "consumer-groups",
        "get-offsets",
        "broker-api-versions",
        "console-producer",
        "console-consumer",
        "dump-log",
        "storage",
    ] {
        let help = shardlog(&[tool, "--help"]);
        assert!(help.status.success(), "{tool} --help");
        assert!(String::from_utf8_lossy(&help.stdout).contains("Examples"), "{tool} --help has no examples");
        let bad = shardlog(&[tool, "--no-such-flag"]);
        assert!(!bad.status.success(), "{tool} accepted a bad flag");
        assert!(String::from_utf8_lossy(&bad.stderr).contains("--no-such-flag"), "{tool}");
    }
}
