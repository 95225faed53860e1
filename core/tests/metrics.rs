//! The metrics endpoint of the real broker (`metrics.listener`), scraped over HTTP as
//! Prometheus and `curl` do, after `kcat` produced and consumed through both shards.
mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{free_ports, kcat, Broker};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::{Offset, TopicPartitionList};

/// One HTTP exchange; returns the status line and the body.
fn http(port: u16, request_line: &str) -> (String, String) {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("the metrics port accepts");
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(stream, "{request_line}\r\nHost: localhost\r\nAccept: */*\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("a whole response, then close");
    let (head, body) = response.split_once("\r\n\r\n").unwrap_or((&response, ""));
    (head.lines().next().unwrap_or_default().to_string(), body.to_string())
}

/// The value of the first series that is exactly `series` (name and labels).
fn value(page: &str, series: &str) -> Option<f64> {
    page.lines().find_map(|line| {
        let rest = line.strip_prefix(series)?;
        rest.strip_prefix(' ')?.trim().parse().ok()
    })
}

/// The sum of a group's `kafka_consumergroup_lag` series, and how many there are.
fn lag_of(page: &str, group: &str) -> (f64, usize) {
    let prefix = format!("kafka_consumergroup_lag{{consumergroup=\"{group}\",");
    let lags: Vec<f64> = page
        .lines()
        .filter(|l| l.starts_with(&prefix))
        .filter_map(|l| l.rsplit_once(' ').and_then(|(_, v)| v.parse().ok()))
        .collect();
    (lags.iter().sum(), lags.len())
}

#[test]
fn metrics_add_up_what_clients_did_on_every_shard() {
    let metrics_port = free_ports(1)[0];
    let listener = format!("metrics.listener=http://127.0.0.1:{metrics_port}");
    let broker = Broker::start(2, &[&listener, "num.partitions=4"]);
    let bootstrap = broker.bootstrap();
    let (messages, value_bytes) = (200usize, 100usize);
    let lines: Vec<String> = (0..messages).map(|i| format!("key-{i}:{}", "v".repeat(value_bytes))).collect();
    kcat(&["-b", &bootstrap, "-t", "metered", "-P", "-K", ":"], &(lines.join("\n") + "\n"));
    // The topic's partitions are led by both shards (nodes 1 and 1001), so the page must add
    // up two shards' counters to see every message.
    let listing = kcat(&["-b", &bootstrap, "-L", "-t", "metered"], "");
    assert!(listing.contains("leader 1,") && listing.contains("leader 1001,"), "{listing}");
    let consumed = kcat(&["-b", &bootstrap, "-t", "metered", "-C", "-o", "beginning", "-e", "-q"], "");
    assert_eq!(consumed.lines().count(), messages);
    // A group that committed offset 0 everywhere lags by every message.
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", &bootstrap)
        .set("group.id", "lagging")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut committed = TopicPartitionList::new();
    for partition in 0..4 {
        committed.add_partition_offset("metered", partition, Offset::Offset(0)).expect("offset");
    }
    consumer.commit(&committed, CommitMode::Sync).expect("commit");

    // Shards publish their counters every second: wait (bounded) for the scrape to catch up.
    let deadline = Instant::now() + Duration::from_secs(15);
    let page = loop {
        let (status, page) = http(metrics_port, "GET /metrics HTTP/1.1");
        assert_eq!(status, "HTTP/1.1 200 OK");
        let caught_up = value(&page, "kafka_server_brokertopicmetrics_messagesin_total")
            == Some(messages as f64)
            && value(&page, "kafka_network_requestmetrics_requests_total{request=\"FetchConsumer\"}")
                .is_some_and(|n| n > 0.0)
            && lag_of(&page, "lagging").1 == 4;
        if caught_up || Instant::now() > deadline {
            break page;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let get = |series: &str| value(&page, series).unwrap_or_else(|| panic!("no {series} in:\n{page}"));
    assert_eq!(get("kafka_server_brokertopicmetrics_messagesin_total"), messages as f64, "{page}");
    let bytes_in = get("kafka_server_brokertopicmetrics_bytesin_total");
    assert!(bytes_in >= (messages * value_bytes) as f64, "{page}");
    // Everything produced was fetched at least once.
    assert!(get("kafka_server_brokertopicmetrics_bytesout_total") >= bytes_in, "{page}");
    assert_eq!(get("kafka_server_brokertopicmetrics_failedproducerequests_total"), 0.0);
    // The topic's 4 partitions and `__consumer_offsets`' 50, made by the group's commit.
    assert_eq!(get("kafka_server_replicamanager_partitioncount"), 54.0);
    assert_eq!(get("kafka_server_replicamanager_leadercount"), 54.0);
    assert_eq!(get("kafka_server_replicamanager_underreplicatedpartitions"), 0.0);
    assert_eq!(get("kafka_controller_kafkacontroller_activecontrollercount"), 1.0);
    assert_eq!(get("kafka_controller_kafkacontroller_offlinepartitionscount"), 0.0);
    assert!(get("kafka_network_requestmetrics_requests_total{request=\"Produce\"}") >= 1.0);
    assert!(get("kafka_network_requestmetrics_requests_total{request=\"Metadata\"}") >= 2.0);
    // Lag per partition is its end minus the committed 0: all of them add up to every message.
    assert_eq!(lag_of(&page, "lagging"), (messages as f64, 4), "{page}");
    for partition in 0..4 {
        let end = get(&format!(
            "kafka_topic_partition_current_offset{{topic=\"metered\",partition=\"{partition}\"}}"
        ));
        let lag = get(&format!(
            "kafka_consumergroup_lag{{consumergroup=\"lagging\",topic=\"metered\",partition=\"{partition}\"}}"
        ));
        assert_eq!(lag, end, "{page}");
    }
    // Each shard reports its own load; the process its memory.
    for shard in 0..2 {
        // Busy time is wall time not sleeping, so it holds at least the thread's CPU time (a
        // busy figure of the last interval only would fall far short of it).
        let busy = get(&format!("shardlog_shard_busy_seconds_total{{shard=\"{shard}\"}}"));
        let cpu = get(&format!("shardlog_shard_cpu_seconds_total{{shard=\"{shard}\"}}"));
        assert!(busy > 0.0 && busy >= 0.5 * cpu, "shard {shard}: busy {busy} s, CPU {cpu} s\n{page}");
        assert!(get(&format!("shardlog_shard_tasks_total{{shard=\"{shard}\"}}")) > 0.0, "{page}");
    }
    assert!(get("process_resident_memory_bytes") > 1e6, "{page}");
    assert!(get("process_cpu_seconds_total") > 0.0, "{page}");
    let produce_p99 = get("kafka_network_requestmetrics_totaltimems{request=\"Produce\",quantile=\"0.99\"}");
    assert!(produce_p99 > 0.0, "{page}");
    assert!(page.ends_with("# EOF\n"), "{page}");

    let (status, body) = http(metrics_port, "HEAD /metrics HTTP/1.1");
    assert_eq!((status.as_str(), body.as_str()), ("HTTP/1.1 200 OK", ""));
    assert_eq!(http(metrics_port, "GET / HTTP/1.1").0, "HTTP/1.1 404 Not Found");
    assert_eq!(http(metrics_port, "POST /metrics HTTP/1.1").0, "HTTP/1.1 405 Method Not Allowed");
    // Clients that connect and say nothing hold no one else up (each waits out its own
    // timeout), and a head that never ends is cut off at its bound.
    let silent: Vec<TcpStream> =
        (0..3).map(|_| TcpStream::connect(("127.0.0.1", metrics_port)).unwrap()).collect();
    assert_eq!(http(metrics_port, "GET /metrics HTTP/1.1").0, "HTTP/1.1 200 OK");
    drop(silent);
    let mut flood = TcpStream::connect(("127.0.0.1", metrics_port)).unwrap();
    flood.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let _ = flood.write_all(format!("GET /metrics HTTP/1.1\r\nX: {}", "x".repeat(16 * 1024)).as_bytes());
    let mut cut = String::new();
    let _ = flood.read_to_string(&mut cut);
    assert!(cut.starts_with("HTTP/1.1 431"), "{cut}");
    assert_eq!(http(metrics_port, "GET /metrics HTTP/1.1").0, "HTTP/1.1 200 OK");
}

#[test]
fn a_metrics_port_in_use_fails_the_start_and_names_the_key() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let listener = format!("metrics.listener=http://127.0.0.1:{port}");
    match Broker::try_start_in(dir.path(), 1, &[&listener], None) {
        Ok(_) => panic!("the broker started on a metrics port in use"),
        Err(log) => {
            assert!(log.iter().any(|l| l.contains("metrics.listener") && l.contains("in use")), "{log:?}")
        }
    }
}
