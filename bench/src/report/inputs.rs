//! What a report directory holds before the report is written: the runs (`runs.jsonl`, one
//! [`RunResult`] per line), raw tool outputs under `raw/` (iperf3 JSON, dd's summary lines,
//! `machine.txt` key=value facts, `wakeup.json`, `ceiling.json`, `idle-<target>.json` probes, `callgrind.jsonl` from
//! `perf-reports/callgrind.sh`) and folded stacks under `flame/`. Everything is parsed from the tools' own output, never typed in.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use crate::ceiling::Ceiling;
use crate::probe::ProcSample;
use crate::result::RunResult;
use crate::wakeup::Wakeup;

#[derive(Clone, Debug, Default, Serialize)]
pub struct Machine {
    /// `key=value` lines of raw/machine.txt (cpu model, cores, kernel, commit, date).
    pub facts: BTreeMap<String, String>,
    /// iperf3 over loopback, one stream: bytes per second received.
    pub loopback_bytes_per_s: Option<f64>,
    /// dd sequential write with direct I/O (or fdatasync): bytes per second.
    pub disk_write_bytes_per_s: Option<f64>,
    /// dd into the page cache after memory sat freed long enough for the host to reclaim it:
    /// the rate at which a growing log can get new page-cache pages (first touch).
    pub page_cache_new_bytes_per_s: Option<f64>,
    /// dd into the page cache right after, reusing the memory the first dd freed.
    pub page_cache_reused_bytes_per_s: Option<f64>,
    /// dd into the page cache with memory full of other clean page cache (`PAGE_CACHE=full`):
    /// new pages are reclaimed from older ones, as on a broker that has run a while.
    pub page_cache_full_bytes_per_s: Option<f64>,
    /// `shardlog-bench wakeup`: thread wake-up round trips across cores and on one core.
    pub wakeup: Option<Wakeup>,
    /// `shardlog-bench ceiling`: loopback streams received and dropped, and received into new
    /// files (the least work a broker does per produced byte), in the runs' memory state.
    pub ceiling: Option<Ceiling>,
}

impl Machine {
    /// The page-cache write rate the runs of this report saw: with memory kept full of page
    /// cache (`page_cache_mode=full`) the reclaim rate, else the first-touch rate.
    pub fn page_cache_write_bytes_per_s(&self) -> Option<f64> {
        match self.facts.get("page_cache_mode").map(String::as_str) {
            Some("full") => self.page_cache_full_bytes_per_s,
            _ => self.page_cache_new_bytes_per_s,
        }
    }
}

/// One line of `raw/callgrind.jsonl`: a hot-path case's instruction count under callgrind.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CallgrindCase {
    #[serde(rename = "crate")]
    pub crate_name: String,
    pub bench: String,
    pub case: String,
    pub what: String,
    pub iterations: u64,
    pub instructions: Option<u64>,
    pub instructions_per_iteration: Option<f64>,
    /// `bench` (optimised) or `test` (debug).
    pub profile: String,
    pub valgrind: String,
    pub error: Option<String>,
}

pub struct Inputs {
    pub machine: Machine,
    pub runs: Vec<RunResult>,
    /// Target name → the broker's CPU and RSS when idle after start.
    pub idle: BTreeMap<String, ProcSample>,
    /// Profile name (file stem under flame/) → folded stacks text.
    pub folded: BTreeMap<String, String>,
    pub callgrind: Vec<CallgrindCase>,
}

pub fn load(dir: &Path) -> Result<Inputs> {
    let runs_path = dir.join("runs.jsonl");
    let text =
        std::fs::read_to_string(&runs_path).with_context(|| format!("reading {}", runs_path.display()))?;
    let mut runs = Vec::new();
    for (i, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
        runs.push(serde_json::from_str(line).with_context(|| format!("runs.jsonl line {}", i + 1))?);
    }
    let raw = dir.join("raw");
    let mut machine = Machine::default();
    if let Ok(t) = std::fs::read_to_string(raw.join("machine.txt")) {
        machine.facts = t
            .lines()
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect();
    }
    if let Ok(t) = std::fs::read_to_string(raw.join("iperf3.json")) {
        machine.loopback_bytes_per_s = parse_iperf3(&t);
    }
    let dd = |name: &str| std::fs::read_to_string(raw.join(name)).ok().and_then(|t| parse_dd(&t));
    machine.disk_write_bytes_per_s = dd("dd.txt");
    machine.page_cache_new_bytes_per_s = dd("page-cache-new-dd.txt");
    machine.page_cache_reused_bytes_per_s = dd("page-cache-dd.txt");
    machine.page_cache_full_bytes_per_s = dd("page-cache-full-dd.txt");
    if let Ok(t) = std::fs::read_to_string(raw.join("wakeup.json")) {
        machine.wakeup = Some(serde_json::from_str(&t).context("raw/wakeup.json")?);
    }
    if let Ok(t) = std::fs::read_to_string(raw.join("ceiling.json")) {
        machine.ceiling = Some(serde_json::from_str(&t).context("raw/ceiling.json")?);
    }
    let mut callgrind = Vec::new();
    if let Ok(t) = std::fs::read_to_string(raw.join("callgrind.jsonl")) {
        for (i, line) in t.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
            callgrind
                .push(serde_json::from_str(line).with_context(|| format!("callgrind.jsonl line {}", i + 1))?);
        }
    }
    let mut idle = BTreeMap::new();
    let mut folded = BTreeMap::new();
    for (sub, ext) in [("raw", "json"), ("flame", "folded")] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else { continue };
        for e in entries.flatten() {
            let path = e.path();
            let Some(stem) = path.file_stem().and_then(|s| s.to_str()).map(str::to_string) else { continue };
            if path.extension().is_none_or(|x| x != ext) {
                continue;
            }
            let text = std::fs::read_to_string(&path)?;
            if ext == "folded" {
                folded.insert(stem, text);
            } else if let Some(target) = stem.strip_prefix("idle-") {
                idle.insert(target.to_string(), serde_json::from_str(&text)?);
            }
        }
    }
    Ok(Inputs { machine, runs, idle, folded, callgrind })
}

/// `end.sum_received.bits_per_second` of `iperf3 -J`, in bytes per second.
pub fn parse_iperf3(json: &str) -> Option<f64> {
    let v: serde_json::Value = serde_json::from_str(json).ok()?;
    v.pointer("/end/sum_received/bits_per_second")?.as_f64().map(|b| b / 8.0)
}

/// dd's summary line: `1073741824 bytes (1.1 GB, 1.0 GiB) copied, 2.5 s, 429 MB/s`; bytes
/// over seconds, not the rounded rate.
pub fn parse_dd(text: &str) -> Option<f64> {
    let line = text.lines().rev().find(|l| l.contains(" copied, "))?;
    let bytes: f64 = line.split_whitespace().next()?.parse().ok()?;
    let after = line.split(" copied, ").nth(1)?;
    let secs: f64 = after.split_whitespace().next()?.replace(',', ".").parse().ok()?;
    (secs > 0.0).then(|| bytes / secs)
}

#[cfg(test)]
mod tests {
    #[test]
    fn parses_tool_output() {
        let dd = "256+0 records in\n256+0 records out\n268435456 bytes (268 MB, 256 MiB) copied, 0.5 s, 537 MB/s\n";
        assert_eq!(super::parse_dd(dd), Some(268435456.0 / 0.5));
        let ip = r#"{"end":{"sum_received":{"bits_per_second":8e10}}}"#;
        assert_eq!(super::parse_iperf3(ip), Some(1e10));
        assert_eq!(super::parse_iperf3("{}"), None);
    }
}
