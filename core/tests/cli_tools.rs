//! The network and storage tools (`topics`, `get-offsets`, `broker-api-versions`, `storage`)
//! run as the real `shardlog` binary against a real broker; outputs are checked against the
//! shapes Kafka 3.7's `kafka-*.sh` tools print.

mod common;

use std::process::{Command, Output};
use std::time::{Duration, Instant};

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
