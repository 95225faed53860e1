//! The real binary driven by `kcat` (librdkafka 2.0 from Debian): produce, consume, metadata.
mod common;

use common::{kcat, Broker};

#[test]
fn kcat_produces_and_consumes_through_auto_created_topic() {
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    let lines: Vec<String> = (0..100).map(|i| format!("key{i}:value-{i}")).collect();
    kcat(&["-b", &b, "-t", "orders", "-P", "-K", ":"], &(lines.join("\n") + "\n"));
    let out = kcat(&["-b", &b, "-t", "orders", "-C", "-e", "-f", "%k=%s@%o\n"], "");
    let got: Vec<&str> = out.lines().collect();
    let want: Vec<String> = (0..100).map(|i| format!("key{i}=value-{i}@{i}")).collect();
    assert_eq!(got, want);
}

#[test]
fn kcat_metadata_lists_every_shard_as_a_broker() {
    let broker = Broker::start(2, &["num.partitions=4"]);
    let b = broker.bootstrap();
    kcat(&["-b", &b, "-t", "events", "-P"], "x\n");
    let out = kcat(&["-b", &b, "-L", "-t", "events"], "");
    assert!(out.contains("2 brokers:"), "{out}");
    assert!(out.contains(&format!("broker 1 at 127.0.0.1:{}", broker.ports[0])), "{out}");
    assert!(out.contains(&format!("broker 1001 at 127.0.0.1:{}", broker.ports[1])), "{out}");
    assert!(out.contains("topic \"events\" with 4 partitions"), "{out}");
}
