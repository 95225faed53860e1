//! The broker's own request times, read from its Prometheus endpoint (shardlog's
//! `metrics.listener`): the `shardlog_request_total_time_seconds` histogram is scraped before
//! and after a phase, and since its bucket counts only grow, their difference is exactly the
//! requests of that phase. Next to the clients' latency this says how much of it the broker
//! spent (from reading a request to writing its response) and how much the clients and the
//! network did.
//!
//! shardlog's shards publish their counters to the endpoint once a second, so a scrape lags by
//! up to [`PUBLISH_LAG_MS`]: a steady phase's window is shifted by at most that much (both
//! scrapes lag alike); a phase that ends with its load waits that long before its last scrape.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

const HISTOGRAM: &str = "shardlog_request_total_time_seconds_bucket";
/// A scrape larger than this is refused rather than read without bound.
const SCRAPE_BYTES_MAX: u64 = 8 * 1024 * 1024;
const SCRAPE_TIMEOUT_MS: u64 = 5_000;
/// How far a scrape may lag behind the broker's requests (its publish interval, and a margin).
pub const PUBLISH_LAG_MS: u64 = 1_100;

/// One scrape: per request type, cumulative counts by upper bound (seconds, ascending;
/// `f64::INFINITY` last); per shard, its busy and CPU seconds so far.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Scrape {
    by_request: BTreeMap<String, Vec<(f64, u64)>>,
    shards: BTreeMap<usize, ShardUse>,
}

/// One shard's busy time (its executor not sleeping) and its thread's CPU time: counters in a
/// scrape, their growth over a phase in a result.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ShardUse {
    pub shard: usize,
    pub busy_s: f64,
    pub cpu_s: Option<f64>,
}

/// The broker's time for one request type over a phase (interpolated within buckets, as
/// Prometheus's `histogram_quantile`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RequestTimes {
    pub count: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
}

/// `GET /metrics` from `addr` (`host:port`).
pub fn scrape(addr: &str) -> Result<Scrape> {
    let mut stream = TcpStream::connect(addr).with_context(|| format!("broker metrics at {addr}"))?;
    stream.set_read_timeout(Some(Duration::from_millis(SCRAPE_TIMEOUT_MS)))?;
    stream.set_write_timeout(Some(Duration::from_millis(SCRAPE_TIMEOUT_MS)))?;
    write!(stream, "GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut response = String::new();
    stream.take(SCRAPE_BYTES_MAX).read_to_string(&mut response)?;
    let Some((head, body)) = response.split_once("\r\n\r\n") else { bail!("no HTTP response from {addr}") };
    if !head.starts_with("HTTP/1.1 200") {
        bail!("{addr}: {}", head.lines().next().unwrap_or_default());
    }
    Ok(parse(body))
}

/// Reads the histogram's bucket lines; every other line is ignored.
pub fn parse(text: &str) -> Scrape {
    let mut by_request: BTreeMap<String, Vec<(f64, u64)>> = BTreeMap::new();
    let mut shards: BTreeMap<usize, ShardUse> = BTreeMap::new();
    for line in text.lines() {
        if let Some((shard, seconds, is_busy)) = shard_counter(line) {
            let entry = shards.entry(shard).or_insert(ShardUse { shard, ..ShardUse::default() });
            if is_busy {
                entry.busy_s = seconds;
            } else {
                entry.cpu_s = Some(seconds);
            }
            continue;
        }
        let Some(rest) = line.strip_prefix(HISTOGRAM) else { continue };
        let Some((labels, value)) = rest.strip_prefix('{').and_then(|r| r.split_once("} ")) else { continue };
        let (mut le, mut request) = (None, None);
        for label in labels.split(',') {
            match label.split_once('=') {
                Some(("le", v)) => le = Some(v.trim_matches('"')),
                Some(("request", v)) => request = Some(v.trim_matches('"')),
                _ => {}
            }
        }
        let (Some(le), Some(request), Ok(count)) = (le, request, value.trim().parse::<f64>()) else {
            continue;
        };
        let upper_s = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::NAN) };
        if upper_s.is_nan() {
            continue;
        }
        by_request.entry(request.to_string()).or_default().push((upper_s, count as u64));
    }
    for buckets in by_request.values_mut() {
        buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
    }
    Scrape { by_request, shards }
}

/// `shardlog_shard_busy_seconds_total{shard="N"} V` (busy) or `..._cpu_seconds_total` (CPU).
fn shard_counter(line: &str) -> Option<(usize, f64, bool)> {
    let (rest, is_busy) = match line.strip_prefix("shardlog_shard_busy_seconds_total{shard=\"") {
        Some(rest) => (rest, true),
        None => (line.strip_prefix("shardlog_shard_cpu_seconds_total{shard=\"")?, false),
    };
    let (shard, rest) = rest.split_once("\"}")?;
    Some((shard.parse().ok()?, rest.trim().parse().ok()?, is_busy))
}

/// How much each shard was busy and used the CPU between two scrapes.
pub fn shard_use_between(before: &Scrape, after: &Scrape) -> Vec<ShardUse> {
    after
        .shards
        .values()
        .map(|a| {
            let b = before.shards.get(&a.shard);
            ShardUse {
                shard: a.shard,
                busy_s: (a.busy_s - b.map_or(0.0, |b| b.busy_s)).max(0.0),
                cpu_s: a.cpu_s.map(|cpu| (cpu - b.and_then(|b| b.cpu_s).unwrap_or(0.0)).max(0.0)),
            }
        })
        .collect()
}

/// Request times of the requests between two scrapes, by request type (types with none left
/// out).
pub fn between(before: &Scrape, after: &Scrape) -> BTreeMap<String, RequestTimes> {
    let mut out = BTreeMap::new();
    for (request, buckets) in &after.by_request {
        let earlier = before.by_request.get(request);
        let delta: Vec<(f64, u64)> = buckets
            .iter()
            .map(|&(upper, n)| {
                let was = earlier.and_then(|b| b.iter().find(|(u, _)| *u == upper)).map_or(0, |(_, n)| *n);
                (upper, n.saturating_sub(was))
            })
            .collect();
        let count = delta.last().map_or(0, |(_, n)| *n);
        if count == 0 {
            continue;
        }
        let q = |q: f64| quantile_s(&delta, q) * 1e6;
        out.insert(
            request.clone(),
            RequestTimes { count, p50_us: q(0.50), p90_us: q(0.90), p99_us: q(0.99), p999_us: q(0.999) },
        );
    }
    out
}

/// Prometheus's `histogram_quantile`: find the bucket holding rank `q × count` and interpolate
/// linearly inside it; in the `+Inf` bucket, answer the highest finite bound.
fn quantile_s(cumulative: &[(f64, u64)], q: f64) -> f64 {
    let Some(&(_, count)) = cumulative.last() else { return 0.0 };
    let rank = q * count as f64;
    let mut lower = (0.0, 0u64);
    for &(upper, n) in cumulative {
        if n as f64 >= rank {
            if upper.is_infinite() {
                return lower.0;
            }
            let in_bucket = (n - lower.1) as f64;
            let into = if in_bucket > 0.0 { (rank - lower.1 as f64) / in_bucket } else { 1.0 };
            return lower.0 + (upper - lower.0) * into;
        }
        lower = (upper, n);
    }
    lower.0
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: &str = "\
# TYPE shardlog_request_total_time_seconds histogram
shardlog_request_total_time_seconds_sum{request=\"Produce\"} 0.5
shardlog_request_total_time_seconds_count{request=\"Produce\"} 100
shardlog_request_total_time_seconds_bucket{le=\"0.0001\",request=\"Produce\"} 0
shardlog_request_total_time_seconds_bucket{le=\"0.0002\",request=\"Produce\"} 50
shardlog_request_total_time_seconds_bucket{le=\"0.001\",request=\"Produce\"} 90
shardlog_request_total_time_seconds_bucket{le=\"+Inf\",request=\"Produce\"} 100
shardlog_request_total_time_seconds_bucket{le=\"0.0001\",request=\"Metadata\"} 3
shardlog_request_total_time_seconds_bucket{le=\"0.0002\",request=\"Metadata\"} 3
shardlog_request_total_time_seconds_bucket{le=\"0.001\",request=\"Metadata\"} 3
shardlog_request_total_time_seconds_bucket{le=\"+Inf\",request=\"Metadata\"} 3
kafka_server_brokertopicmetrics_bytesin_total 1
shardlog_shard_busy_seconds_total{shard=\"0\"} 12.5
shardlog_shard_busy_seconds_total{shard=\"1\"} 3.0
shardlog_shard_cpu_seconds_total{shard=\"0\"} 10.0
";

    #[test]
    fn the_difference_of_two_scrapes_gives_the_phases_request_times() {
        let before =
            parse(&PAGE.replace("} 50\n", "} 10\n").replace("} 90\n", "} 10\n").replace("} 100\n", "} 10\n"));
        let after = parse(PAGE);
        let times = between(&before, &after);
        // Metadata did nothing in between: left out.
        assert_eq!(times.keys().collect::<Vec<_>>(), ["Produce"]);
        let p = &times["Produce"];
        // 90 requests in the phase: 40 in (100, 200] µs, 40 in (200 µs, 1 ms], 10 above 1 ms.
        assert_eq!(p.count, 90);
        assert!((p.p50_us - 300.0).abs() < 0.01, "{p:?}"); // rank 45: 5 of 40 into (200, 1000]
        assert!((p.p99_us - 1000.0).abs() < 0.01, "{p:?}"); // in +Inf: the highest finite bound
    }

    #[test]
    fn shard_use_is_the_growth_of_each_shards_counters() {
        let before = parse(
            "shardlog_shard_busy_seconds_total{shard=\"0\"} 10.0\n\
             shardlog_shard_busy_seconds_total{shard=\"1\"} 3.0\n\
             shardlog_shard_cpu_seconds_total{shard=\"0\"} 9.0\n",
        );
        let used = shard_use_between(&before, &parse(PAGE));
        assert_eq!(
            used,
            [
                ShardUse { shard: 0, busy_s: 2.5, cpu_s: Some(1.0) },
                ShardUse { shard: 1, busy_s: 0.0, cpu_s: None },
            ]
        );
    }

    #[test]
    fn a_page_without_the_histogram_has_no_times() {
        let empty = parse("# EOF\n");
        assert!(between(&empty, &empty).is_empty());
        assert!(between(&Scrape::default(), &parse(PAGE))["Produce"].count == 100);
    }
}
