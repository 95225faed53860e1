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

/// The README's start command: no config file and no `log.dirs`, so the data dir is the
/// embedded default `./shardlog-data` under the working directory — created fresh here, as on
/// a new machine. (glommio could not open a directory it had just created under a relative
/// path, and this first start failed.)
#[test]
fn the_embedded_default_starts_in_a_fresh_working_directory() {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    let cwd = tempfile::tempdir().unwrap();
    let port = common::free_ports(1)[0];
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardlog"))
        .args(["start", "--override", &format!("listeners=PLAINTEXT://127.0.0.1:{port}")])
        // One shard, so the test needs one free port (more shards take the ports after it).
        .args(["--override", "num.shards=1"])
        .current_dir(cwd.path())
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let started = line.contains("shardlog started");
            seen.push(line);
            if started {
                let _ = tx.send(Ok(()));
            }
        }
        let _ = tx.send(Err(seen));
    });
    let started = rx.recv_timeout(std::time::Duration::from_secs(30));
    if !matches!(started, Ok(Ok(()))) {
        let _ = child.kill();
        panic!("the default broker did not start: {started:?}");
    }
    let b = format!("127.0.0.1:{port}");
    kcat(&["-b", &b, "-t", "first", "-P"], "hello\n");
    assert_eq!(kcat(&["-b", &b, "-t", "first", "-C", "-e", "-q"], ""), "hello\n");
    assert!(cwd.path().join("shardlog-data/meta.properties").is_file());
    assert!(cwd.path().join("shardlog-data/first-0").is_dir());
    let _ = child.kill();
    let _ = child.wait();
}
