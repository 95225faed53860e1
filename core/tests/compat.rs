//! The clients Debian stable ships, as they are, against the real binary (issue 3's
//! compatibility bar): kafka-python (`python3-kafka`), Shopify sarama
//! (`golang-github-shopify-sarama-dev`) and segmentio/kafka-go
//! (`golang-github-segmentio-kafka-go-dev`). `scripts/test.sh` installs them; the client programs
//! are in `core/tests/compat/`, and the Go ones build offline from Debian's packaged sources
//! (GOPATH mode over `/usr/share/gocode`, no module downloads).
//!
//! Each topic is auto-created by the client's first Metadata request; the broker places new
//! topics round-robin over the shards, so a client's second topic is led by shard 1 while its
//! Metadata was answered by shard 0 (the bootstrap port).
//!
//! What the old clients send. The `kafka-protocol` 0.18 crate decodes Produce from v3, Fetch
//! from v4 and ListOffsets from v1; the older versions, with their magic 0/1 message sets, are
//! decoded by `shardlog_net::legacy` and converted by `shardlog_storage::legacy_format`, as
//! Kafka 3.7 up-converts on produce and down-converts on fetch:
//! - sarama 1.22 sends no ApiVersions; its request versions follow `config.Version`, whose
//!   default is 0.8.2.0: Produce v0 (magic 0 message sets), Fetch v0 and ListOffsets v0.
//!   0.9.0 gives Produce v1, Fetch v1; 0.10.0 Produce v2 (magic 1), Fetch v2, ListOffsets v0;
//!   0.10.1 Produce v2, Fetch v3, ListOffsets v1; 0.11.0 Produce v3, Fetch v4 (magic 2).
//! - kafka-go 0.2.1 sends no ApiVersions and has fixed versions that cannot be configured:
//!   Metadata v1, ListOffsets v1, Produce v2 (magic 1) and Fetch v2.
//! - kafka-python 2.0.2 probes with ApiVersions v0 and picks versions from the answer (it
//!   infers "2.4.0": Produce v7, Fetch v4, ListOffsets v1, Metadata v1); pinned with
//!   `api_version` it sends what that Kafka spoke (0.8.2: Produce v0, Fetch v0, ListOffsets v0;
//!   0.9: v1, v1, v0; 0.10.0: v2, v2, v0; 0.10.1: v2, v3, v1).
//!
//! The client programs take `COMPAT_COMPRESSION=gzip|snappy|lz4`, so the compressed (wrapper)
//! message sets of each client are tested too, magic-0 LZ4 with Kafka 0.8's broken frame
//! checksum included (kafka-python).
mod common;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{go_build, kcat, Broker};

/// The longest one client run may take.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(30);

/// The installed version of a Debian package, `None` when it is not installed.
fn installed_version(package: &str) -> Option<String> {
    let out = Command::new("dpkg-query").args(["-W", "-f=${Status}\t${Version}", package]).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (status, version) = text.split_once('\t')?;
    (out.status.success() && status.ends_with(" installed")).then(|| version.to_string())
}

/// `true` when the test can use `package`. A package this Debian does not have at all skips
/// the test with a message; one it has but that is not installed fails it (scripts/test.sh
/// installs it).
fn require_package(package: &str) -> bool {
    if let Some(version) = installed_version(package) {
        eprintln!("using Debian package {package} {version}");
        return true;
    }
    let candidate = Command::new("apt-cache")
        .args(["policy", package])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).to_string())
        .unwrap_or_default();
    let available = candidate.lines().any(|l| l.trim().starts_with("Candidate:") && !l.contains("(none)"));
    if available {
        panic!("Debian package {package} is available but not installed: run scripts/test.sh (or apt-get install {package})");
    }
    eprintln!(
        "SKIPPED: Debian package {package} does not exist on this system, so this client cannot be tested"
    );
    false
}

struct Run {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `program args`, killing it after [`CLIENT_TIMEOUT`].
fn run(program: &Path, args: &[&str]) -> Run {
    run_with_env(program, args, &[])
}

/// [`run`] with extra environment variables.
fn run_with_env(program: &Path, args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut child = Command::new(program)
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + CLIENT_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let run = Run {
        success: status.is_some_and(|s| s.success()),
        stdout: out.join().unwrap(),
        stderr: err.join().unwrap(),
    };
    let what = format!("{} {args:?}", program.display());
    match status {
        None => eprintln!("{what}: killed after {CLIENT_TIMEOUT:?}"),
        Some(s) => eprintln!("{what}: {s}"),
    }
    eprintln!("stdout:\n{}\nstderr (last 2000 bytes):\n{}", run.stdout, tail(&run.stderr, 2000));
    run
}

fn tail(s: &str, bytes: usize) -> &str {
    let mut start = s.len().saturating_sub(bytes);
    while !s.is_char_boundary(start) {
        start += 1;
    }
    &s[start..]
}

fn kafka_python_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/compat/kafka_python_client.py")
}

/// kafka-python as it is: it probes the broker with ApiVersions and chooses its versions.
#[test]
fn kafka_python_produces_consumes_and_lists_topics() {
    if !require_package("python3-kafka") {
        return;
    }
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    // Debian's interpreter: python3 on PATH may be another one without the package.
    let python = Path::new("/usr/bin/python3");
    for topic in ["py-on-shard0", "py-on-shard1"] {
        let script = kafka_python_script();
        let out = run(python, &[script.to_str().unwrap(), &b, topic, "200"]);
        assert!(out.success, "kafka-python on {topic}: {}{}", out.stdout, tail(&out.stderr, 2000));
        assert!(out.stdout.starts_with("kafka-python 2."), "{}", out.stdout);
        assert!(out.stdout.contains(" produced=200 consumed=200 topics_listed=yes"), "{}", out.stdout);
    }
}

/// kafka-python pinned to 0.11 (Produce v3, Fetch v4, ListOffsets v1, Metadata v1): the oldest
/// `api_version` with magic-2 record batches.
#[test]
fn kafka_python_at_api_version_0_11() {
    if !require_package("python3-kafka") {
        return;
    }
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    let python = Path::new("/usr/bin/python3");
    for topic in ["py011-on-shard0", "py011-on-shard1"] {
        let script = kafka_python_script();
        let out = run(python, &[script.to_str().unwrap(), &b, topic, "50", "0.11.0"]);
        assert!(out.success, "kafka-python api 0.11 on {topic}: {}", out.stdout);
        assert!(
            out.stdout.contains("api=0.11.0 produced=50 consumed=50 topics_listed=yes"),
            "{}",
            out.stdout
        );
    }
}

/// sarama with `config.Version` at 0.11.0.0 (the oldest that works) and at 2.2.0 (its newest).
#[test]
fn sarama_produces_and_consumes_with_version_0_11_and_newer() {
    if !require_package("golang-github-shopify-sarama-dev") {
        return;
    }
    let client = go_build("sarama_client", "works");
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    for (topic, version) in
        [("sarama011-on-shard0", "0.11.0.0"), ("sarama011-on-shard1", "0.11.0.0"), ("sarama22", "2.2.0")]
    {
        let out = run(&client, &[&b, topic, "200", version]);
        assert!(out.success, "sarama {version} on {topic}: {}", out.stdout);
        assert!(
            out.stdout
                .contains(&format!("sarama version={version} produced=200 consumed=200 topics_listed=yes")),
            "{}",
            out.stdout
        );
    }
}

/// Asserts the broker closed no connection over a version it does not serve.
fn assert_no_refusals(broker: &Broker) {
    let log = broker.log_text();
    assert!(!log.contains("unsupported version"), "{log}");
    assert!(!log.contains("malformed"), "{log}");
}

/// sarama as it is: `config.Version` defaults to 0.8.2.0, which sends Produce v0 (magic 0),
/// Fetch v0 and ListOffsets v0; and the other pre-0.11 versions it can be set to (Produce v1-2,
/// Fetch v1-3). Both shards, for the default.
#[test]
fn sarama_default_version_produces_with_produce_v0_and_consumes_with_fetch_v0() {
    if !require_package("golang-github-shopify-sarama-dev") {
        return;
    }
    let client = go_build("sarama_client", "default");
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    for (topic, version, shown) in [
        ("sarama-default-on-shard0", "default", "0.8.2.0"),
        ("sarama-default-on-shard1", "default", "0.8.2.0"),
        ("sarama090", "0.9.0.0", "0.9.0.0"),
        ("sarama0100", "0.10.0.0", "0.10.0.0"),
        ("sarama0101", "0.10.1.0", "0.10.1.0"),
    ] {
        let out = run(&client, &[&b, topic, "100", version]);
        assert!(out.success, "sarama {version} on {topic}: {}", out.stdout);
        assert!(
            out.stdout
                .contains(&format!("sarama version={shown} produced=100 consumed=100 topics_listed=yes")),
            "{}",
            out.stdout
        );
    }
    assert_no_refusals(&broker);
}

/// sarama's compressed message sets: one gzip or snappy wrapper per request with magic 0 (its
/// default version), and lz4 with magic 1 (sarama requires 0.10.0.0 for it).
#[test]
fn sarama_compressed_old_message_sets() {
    if !require_package("golang-github-shopify-sarama-dev") {
        return;
    }
    let client = go_build("sarama_client", "compressed");
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    for (codec, version, shown) in
        [("gzip", "default", "0.8.2.0"), ("snappy", "default", "0.8.2.0"), ("lz4", "0.10.0.0", "0.10.0.0")]
    {
        let topic = format!("sarama-{codec}");
        let out = run_with_env(&client, &[&b, &topic, "100", version], &[("COMPAT_COMPRESSION", codec)]);
        assert!(out.success, "sarama {version} {codec}: {}", out.stdout);
        let want =
            format!("sarama version={shown} compression={codec} produced=100 consumed=100 topics_listed=yes");
        assert!(out.stdout.contains(&want), "{}", out.stdout);
    }
    assert_no_refusals(&broker);
}

/// kafka-go 0.2.1 as it is: Metadata v1, then its Writer's Produce v2 (magic 1) and its
/// Reader's ListOffsets v1 and Fetch v2 (down-converted to magic 1), on both shards.
#[test]
fn kafka_go_produces_with_produce_v2_and_consumes_with_fetch_v2() {
    if !require_package("golang-github-segmentio-kafka-go-dev") {
        return;
    }
    let client = go_build("kafkago_client", "works");
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    for topic in ["kafkago-on-shard0", "kafkago-on-shard1"] {
        let out = run(&client, &[&b, topic, "100"]);
        assert!(out.success, "kafka-go on {topic}: {}", out.stdout);
        assert!(
            out.stdout.contains("kafka-go produced=100 consumed=100 topics_listed=yes"),
            "{}",
            out.stdout
        );
    }

    // The Reader alone, on magic-2 batches another client (librdkafka) produced.
    kcat(&["-b", &b, "-t", "kafkago-read", "-P", "-K", ":"], "k0:v0\nk1:v1\n");
    let out = run(&client, &[&b, "kafkago-read", "2", "consume", "10"]);
    assert!(out.success, "{}", out.stdout);
    assert!(out.stdout.contains("kafka-go produced=0 consumed=2 topics_listed=yes"), "{}", out.stdout);
    assert_no_refusals(&broker);
}

/// kafka-go's Writer with each codec it has: one magic-1 wrapper per batch.
#[test]
fn kafka_go_compressed_message_sets() {
    if !require_package("golang-github-segmentio-kafka-go-dev") {
        return;
    }
    let client = go_build("kafkago_client", "compressed");
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    for codec in ["gzip", "snappy", "lz4"] {
        let topic = format!("kafkago-{codec}");
        let out = run_with_env(&client, &[&b, &topic, "100"], &[("COMPAT_COMPRESSION", codec)]);
        assert!(out.success, "kafka-go {codec}: {}", out.stdout);
        let want = format!("kafka-go compression={codec} produced=100 consumed=100 topics_listed=yes");
        assert!(out.stdout.contains(&want), "{}", out.stdout);
    }
    assert_no_refusals(&broker);
}

/// kafka-python pinned to the Kafka versions before record batches: 0.8.2 (Produce v0, Fetch
/// v0, ListOffsets v0, magic 0), 0.9 (v1, v1, v0), 0.10.0 (v2, v2, v0, magic 1), 0.10.1 (v2, v3,
/// v1).
#[test]
fn kafka_python_at_api_versions_before_0_11() {
    if !require_package("python3-kafka") {
        return;
    }
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    let python = Path::new("/usr/bin/python3");
    for api in ["0.8.2", "0.9", "0.10.0", "0.10.1"] {
        let topic = format!("py-{api}");
        let out = run(python, &[kafka_python_script().to_str().unwrap(), &b, &topic, "50", api]);
        assert!(out.success, "kafka-python api {api}: {}", out.stdout);
        let want = format!("api={api} produced=50 consumed=50 topics_listed=yes");
        assert!(out.stdout.contains(&want), "{}", out.stdout);
    }
    assert_no_refusals(&broker);
}

/// kafka-python's compressed message sets at 0.8.2 (magic 0: its LZ4 frames carry Kafka 0.8's
/// broken header checksum) and 0.10.0 (magic 1). Its snappy and lz4 need Debian's python3-snappy,
/// python3-lz4 and python3-xxhash.
#[test]
fn kafka_python_compressed_old_message_sets() {
    let packages = ["python3-kafka", "python3-snappy", "python3-lz4", "python3-xxhash"];
    if !packages.iter().all(|p| require_package(p)) {
        return;
    }
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    let python = Path::new("/usr/bin/python3");
    for api in ["0.8.2", "0.10.0"] {
        for codec in ["gzip", "snappy", "lz4"] {
            let topic = format!("py-{api}-{codec}");
            let script = kafka_python_script();
            let args = [script.to_str().unwrap(), &b, &topic, "50", api];
            let out = run_with_env(python, &args, &[("COMPAT_COMPRESSION", codec)]);
            assert!(out.success, "kafka-python api {api} {codec}: {}", out.stdout);
            let want = format!("api={api} compression={codec} produced=50 consumed=50 topics_listed=yes");
            assert!(out.stdout.contains(&want), "{}", out.stdout);
        }
    }
    assert_no_refusals(&broker);
}

/// sarama's offset and config requests below Kafka 0.11, which the crate does not decode either:
/// at the default `config.Version` (0.8.2.0) its OffsetManager commits with OffsetCommit v1
/// (generation -1, no member: a commit outside any group generation) and reads with
/// OffsetFetch v1; OffsetCommit v0 and OffsetFetch v0 go through its Broker; and
/// `ClusterAdmin.DescribeConfig` sends DescribeConfigs v0 (sarama 1.22 never sets its version)
/// — at 0.11.0.0, the lowest `config.Version` at which sarama sends DescribeConfigs at all
/// (below it the request fails client-side with ErrUnsupportedVersion). Both shards.
#[test]
fn sarama_default_version_commits_fetches_offsets_and_describes_configs() {
    if !require_package("golang-github-shopify-sarama-dev") {
        return;
    }
    let client = go_build("sarama_legacy", "default");
    let broker = Broker::start(2, &[]);
    let b = broker.bootstrap();
    for (topic, group) in [("sarama-legacy-0", "sarama-legacy-g0"), ("sarama-legacy-1", "sarama-legacy-g1")] {
        let out = run(&client, &[&b, topic, group]);
        assert!(out.success, "sarama legacy on {topic}: {}", out.stdout);
        assert!(out.stdout.contains("sarama legacy offsets=ok describe_configs="), "{}", out.stdout);
        // No topic override: the policy is Kafka's default and v0 says so with `is_default`.
        assert!(out.stdout.contains(" cleanup.policy=delete default=true"), "{}", out.stdout);
    }
    assert_no_refusals(&broker);
}
