//! Lessons 9, 10, 11 and 17 of the course, command by command, with `shardlog <tool>` in place
//! of `kafka-<tool>.sh`, against a one-shard broker (so leaders read `1`, as in the course).
mod common;

use std::process::Output;

use common::Broker;

fn shardlog(args: &[&str], stdin: &str) -> Output {
    common::shardlog_with_input(args, stdin)
}

/// Runs a tool that must succeed; returns its stdout.
fn ok(args: &[&str], stdin: &str) -> String {
    let out = shardlog(args, stdin);
    assert!(out.status.success(), "shardlog {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Splits a describe line into its tab-separated, trimmed fields.
fn fields(line: &str) -> Vec<String> {
    line.split('\t').map(|f| f.trim().to_string()).filter(|f| !f.is_empty()).collect()
}

#[test]
fn lessons_9_10_11_and_17() {
    let broker = Broker::start(1, &[]);
    let b = broker.bootstrap();
    let b = b.as_str();

    // Lesson 9: create, list, describe, alter, delete, then the four topics of the ERP example.
    assert_eq!(
        ok(
            &[
                "topics",
                "--create",
                "--topic",
                "orders",
                "--partitions",
                "3",
                "--replication-factor",
                "1",
                "--bootstrap-server",
                b
            ],
            ""
        ),
        "Created topic orders.\n"
    );
    assert_eq!(ok(&["topics", "--list", "--bootstrap-server", b], ""), "orders\n");
    let describe = ok(&["topics", "--describe", "--topic", "orders", "--bootstrap-server", b], "");
    let lines: Vec<&str> = describe.lines().collect();
    assert_eq!(lines.len(), 4, "{describe}");
    let head = fields(lines[0]);
    assert_eq!(head[0], "Topic: orders");
    assert!(head[1].starts_with("TopicId: "));
    assert_eq!(head[2..4], ["PartitionCount: 3".to_string(), "ReplicationFactor: 1".to_string()]);
    for (i, line) in lines[1..].iter().enumerate() {
        assert_eq!(
            fields(line),
            vec![
                "Topic: orders".to_string(),
                format!("Partition: {i}"),
                "Leader: 1".into(),
                "Replicas: 1".into(),
                "Isr: 1".into()
            ]
        );
    }
    ok(&["topics", "--alter", "--topic", "orders", "--partitions", "6", "--bootstrap-server", b], "");
    let describe = ok(&["topics", "--describe", "--topic", "orders", "--bootstrap-server", b], "");
    assert!(describe.contains("PartitionCount: 6"), "{describe}");
    ok(&["topics", "--delete", "--topic", "orders", "--bootstrap-server", b], "");
    for (topic, partitions) in
        [("orders", "3"), ("payments", "3"), ("notifications", "2"), ("user-events", "3")]
    {
        ok(
            &[
                "topics",
                "--create",
                "--topic",
                topic,
                "--partitions",
                partitions,
                "--replication-factor",
                "1",
                "--bootstrap-server",
                b,
            ],
            "",
        );
    }
    assert_eq!(
        ok(&["topics", "--list", "--bootstrap-server", b], ""),
        "notifications\norders\npayments\nuser-events\n"
    );

    // Lesson 10: plain values, then keyed ones; every key stays on one partition.
    ok(
        &["console-producer", "--topic", "orders", "--bootstrap-server", b],
        "Birinchi buyurtma\nIkkinchi buyurtma\n",
    );
    let keyed = "user-1:{\"order_id\":1, \"user\":\"Ali\"}\nuser-2:{\"order_id\":2, \"user\":\"Vali\"}\nuser-1:{\"order_id\":3, \"user\":\"Ali\"}\n";
    ok(
        &[
            "console-producer",
            "--topic",
            "orders",
            "--property",
            "parse.key=true",
            "--property",
            "key.separator=:",
            "--bootstrap-server",
            b,
        ],
        keyed,
    );
    let out = shardlog(
        &[
            "console-consumer",
            "--topic",
            "orders",
            "--from-beginning",
            "--property",
            "print.key=true",
            "--property",
            "print.partition=true",
            "--property",
            "print.offset=true",
            "--max-messages",
            "5",
            "--bootstrap-server",
            b,
        ],
        "",
    );
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("Processed a total of 5 messages"));
    let rows: Vec<Vec<String>> = stdout.lines().map(fields).collect();
    assert_eq!(rows.len(), 5, "{stdout}");
    let partition_of =
        |key: &str| -> Vec<String> { rows.iter().filter(|r| r[2] == key).map(|r| r[0].clone()).collect() };
    let user_1 = partition_of("user-1");
    assert_eq!(user_1.len(), 2);
    assert_eq!(user_1[0], user_1[1], "user-1's messages share a partition");
    assert_eq!(partition_of("null").len(), 2, "keyless messages print key null");

    // Lesson 11: read one partition, from an offset; earliest and latest offsets per partition.
    let second_user_1 = rows.iter().filter(|r| r[2] == "user-1").nth(1).unwrap();
    let partition = second_user_1[0].trim_start_matches("Partition:");
    let offset = second_user_1[1].trim_start_matches("Offset:");
    let from_one = ok(
        &[
            "console-consumer",
            "--topic",
            "orders",
            "--partition",
            partition,
            "--offset",
            offset,
            "--max-messages",
            "1",
            "--bootstrap-server",
            b,
        ],
        "",
    );
    assert_eq!(from_one.trim(), "{\"order_id\":3, \"user\":\"Ali\"}");
    let earliest = ok(&["get-offsets", "--topic", "orders", "--time", "-2", "--broker-list", b], "");
    assert_eq!(earliest, "orders:0:0\norders:1:0\norders:2:0\n");
    let latest = ok(&["get-offsets", "--topic", "orders", "--time", "-1", "--bootstrap-server", b], "");
    let total: i64 = latest.lines().map(|l| l.rsplit(':').next().unwrap().parse::<i64>().unwrap()).sum();
    assert_eq!(total, 5);

    // A group reads everything, then a reset sends it back to the beginning.
    let out = shardlog(
        &[
            "console-consumer",
            "--topic",
            "orders",
            "--group",
            "order-processor",
            "--from-beginning",
            "--max-messages",
            "5",
            "--bootstrap-server",
            b,
        ],
        "",
    );
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let describe =
        ok(&["consumer-groups", "--describe", "--group", "order-processor", "--bootstrap-server", b], "");
    let lags: Vec<String> = describe
        .lines()
        .filter(|l| l.starts_with("order-processor"))
        .map(|l| l.split_whitespace().nth(5).unwrap().to_string())
        .collect();
    assert_eq!(lags, vec!["0", "0", "0"], "{describe}");
    ok(
        &[
            "consumer-groups",
            "--reset-offsets",
            "--group",
            "order-processor",
            "--topic",
            "orders",
            "--to-earliest",
            "--execute",
            "--bootstrap-server",
            b,
        ],
        "",
    );
    let describe =
        ok(&["consumer-groups", "--describe", "--group", "order-processor", "--bootstrap-server", b], "");
    let current: Vec<String> = describe
        .lines()
        .filter(|l| l.starts_with("order-processor"))
        .map(|l| l.split_whitespace().nth(3).unwrap().to_string())
        .collect();
    assert_eq!(current, vec!["0", "0", "0"], "{describe}");

    // Lesson 17: retention and compaction settings per topic.
    ok(
        &[
            "configs",
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "orders",
            "--add-config",
            "retention.ms=2592000000",
            "--bootstrap-server",
            b,
        ],
        "",
    );
    let configs = ok(
        &[
            "configs",
            "--describe",
            "--entity-type",
            "topics",
            "--entity-name",
            "orders",
            "--bootstrap-server",
            b,
        ],
        "",
    );
    assert!(configs.contains("retention.ms=2592000000"), "{configs}");
    ok(
        &[
            "topics",
            "--create",
            "--topic",
            "user-profiles",
            "--partitions",
            "1",
            "--replication-factor",
            "1",
            "--bootstrap-server",
            b,
        ],
        "",
    );
    ok(
        &[
            "configs",
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "user-profiles",
            "--add-config",
            "cleanup.policy=compact",
            "--bootstrap-server",
            b,
        ],
        "",
    );
    let configs = ok(
        &[
            "configs",
            "--describe",
            "--entity-type",
            "topics",
            "--entity-name",
            "user-profiles",
            "--bootstrap-server",
            b,
        ],
        "",
    );
    assert!(configs.contains("cleanup.policy=compact"), "{configs}");
    ok(
        &[
            "configs",
            "--alter",
            "--entity-type",
            "topics",
            "--entity-name",
            "user-profiles",
            "--add-config",
            "cleanup.policy=[compact,delete]",
            "--bootstrap-server",
            b,
        ],
        "",
    );
    let configs = ok(
        &[
            "configs",
            "--describe",
            "--entity-type",
            "topics",
            "--entity-name",
            "user-profiles",
            "--bootstrap-server",
            b,
        ],
        "",
    );
    assert!(configs.contains("cleanup.policy=compact,delete"), "{configs}");
}
