//! `shardlog-cli`: the command-line tools of the `shardlog` binary, as a library: `dump-log`
//! (Kafka's `kafka-dump-log.sh`) and the network tools `topics`, `get-offsets`, `configs`,
//! `console-producer`, `console-consumer`, `consumer-groups` and `broker-api-versions` (over
//! [`client`], a blocking `kafka-protocol` client — no librdkafka,
//! so the binary builds without cmake). The broker binary in `core` only parses arguments with
//! the clap types defined here and calls the tool's `run`.
//!
//! Owns each tool's arguments, `--help` text and output format. The output of a tool that
//! mirrors a Kafka tool is byte-for-byte what Kafka 3.7's tool prints, so scripts and habits
//! built on Kafka keep working; anything we add (e.g. reports on damage Kafka would crash on)
//! goes to stderr.
//!
//! Invariants: tools only read the files they are given; file formats come from
//! `shardlog-storage` and are never re-implemented here; input files are untrusted, so every
//! read is bounded and damage is reported and skipped over, never a panic; tools write to the
//! `Write`rs they are handed (tests run them in-process) and report failures in their outcome
//! so the binary can exit non-zero.

pub mod admin;
pub mod broker_api_versions;
pub mod client;
pub mod configs;
pub mod console_consumer;
pub mod console_producer;
pub mod consumer_groups;
pub mod dump_log;
pub mod get_offsets;
pub mod group_member;
pub mod topics;
