//! Helpers of the consumer group tests: assignments of real librdkafka consumers, and the
//! group's coordinator found through FindCoordinator.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use shardlog_net::kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use shardlog_net::kafka_protocol::protocol::StrBytes;

use super::raw::RawClient;
use super::Broker;

pub fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

/// A connection to the node that coordinates `group` (FindCoordinator v3 through shard 0).
pub fn coordinator(broker: &Broker, group: &str) -> RawClient {
    let mut client = RawClient::connect(broker.ports[0]);
    let r = client.call(3, &FindCoordinatorRequest::default().with_key(s(group)).with_key_type(0));
    assert_eq!(r.error_code, 0, "{r:?}");
    RawClient::connect(r.port as u16)
}

/// The partitions assigned to `consumer`, sorted.
pub fn assigned(consumer: &BaseConsumer) -> Vec<i32> {
    let mut parts: Vec<i32> = consumer
        .assignment()
        .map(|a| a.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default();
    parts.sort_unstable();
    parts
}

/// Polls every consumer (which runs its rebalance callbacks) until `done` holds for their
/// assignments; panics with the last assignments after `within`.
pub fn pump_until(
    consumers: &[&BaseConsumer],
    within: Duration,
    done: impl Fn(&[Vec<i32>]) -> bool,
) -> Vec<Vec<i32>> {
    let deadline = Instant::now() + within;
    loop {
        for c in consumers {
            if let Some(Err(e)) = c.poll(Duration::from_millis(20)) {
                eprintln!("consumer error (retried by the client): {e}");
            }
        }
        let now: Vec<Vec<i32>> = consumers.iter().map(|c| assigned(c)).collect();
        if done(&now) {
            return now;
        }
        assert!(Instant::now() < deadline, "assignments never settled: {now:?}");
    }
}

/// The assignments are disjoint and cover partitions `0..n`, each consumer holding `sizes`.
pub fn split(assignments: &[Vec<i32>], n: i32, mut sizes: Vec<usize>) -> bool {
    let all: Vec<i32> = assignments.iter().flatten().copied().collect();
    let unique: BTreeSet<i32> = all.iter().copied().collect();
    let mut got: Vec<usize> = assignments.iter().map(Vec::len).collect();
    got.sort_unstable();
    sizes.sort_unstable();
    all.len() == n as usize && unique == (0..n).collect() && got == sizes
}
