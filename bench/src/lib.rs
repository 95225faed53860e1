//! `shardlog-bench`: a load generator and report writer for Kafka-compatible brokers.
//!
//! It speaks Kafka through librdkafka (the `rdkafka` crate) or its own [`native`] client to any
//! bootstrap address, so shardlog and a peer broker started by hand are measured by the same
//! clients in the same run, and no figure rests on one client alone.
//! It owns: workload files after the OpenMessaging Benchmark's ([`workload`]), paced or
//! closed-loop producers ([`producer`], [`pacer`]), consumers that drain a backlog or tail
//! ([`consumer`]), latency histograms ([`latency`]), the per-run JSON ([`result`]), broker
//! process probes and profiling hooks ([`probe`]), the broker's own request times from its
//! metrics endpoint ([`broker_metrics`]), the machine's thread wake-up cost ([`wakeup`]) and
//! produce ceiling ([`ceiling`]), and the dated report ([`report`]).
//!
//! Invariants:
//! - **Latency is measured from the intended send time.** In open-loop mode that is the
//!   schedule's time, not the moment the client got around to sending, so a stalled broker
//!   cannot hide its stall by slowing the load down (coordinated omission).
//! - **Everything is bounded:** run time (`test_duration_s`, grace periods), threads
//!   ([`limits`]), client queues (librdkafka's byte limits are set, never left at 1 GB), and
//!   histogram sizes (fixed range, saturating).
//! - **It is not a test.** Nothing asserts on timing; a slow broker gives a slow report.

pub mod broker_metrics;
pub mod ceiling;
pub mod clock;
pub mod consumer;
pub mod kafka;
pub mod latency;
pub mod limits;
pub mod native;
pub mod pacer;
pub mod payload;
pub mod probe;
pub mod producer;
pub mod progress;
pub mod report;
pub mod result;
pub mod run;
pub mod wakeup;
pub mod workload;
