//! The dated report: `report.md`, `results.json` and SVG plots, generated from a report
//! directory's runs and raw tool outputs (see [`inputs`]). Runs are grouped by their tags:
//! `target` (which broker: `shardlog-2-shards`, `shardlog-1-shard`, `peer`), `series` (`size`,
//! `load`, `omb`, `backlog`) and `point` (the x value within the series), and by the client
//! that moved the records (`rdkafka`, the reference, or `native`): the sections per target are
//! librdkafka's; the native client's runs are shown beside them where both ran.

mod frames;
mod inputs;
mod svg;

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use serde_json::json;

use crate::latency::fmt_us;
use crate::result::{PhaseResult, RunResult};
pub use frames::analyse as analyse_folded;
use inputs::Inputs;
use svg::{Chart, Series};

/// The target the headline is about: the default broker layout (one shard per core here).
const MAIN_TARGET: &str = "shardlog-2-shards";
const FRAMES_SHOWN: usize = 10;

fn tag<'a>(r: &'a RunResult, k: &str) -> &'a str {
    r.tags.get(k).map(String::as_str).unwrap_or("")
}

fn targets(inp: &Inputs) -> Vec<String> {
    let mut t: Vec<String> = Vec::new();
    for r in &inp.runs {
        let name = tag(r, "target").to_string();
        if !t.contains(&name) {
            t.push(name);
        }
    }
    t
}

const RDKAFKA: &str = "rdkafka";
const NATIVE: &str = "native";

/// The last librdkafka run of (target, series, point).
fn find<'a>(inp: &'a Inputs, target: &str, series: &str, point: &str) -> Option<&'a RunResult> {
    find_by(inp, RDKAFKA, target, series, point)
}

fn find_by<'a>(
    inp: &'a Inputs,
    client: &str,
    target: &str,
    series: &str,
    point: &str,
) -> Option<&'a RunResult> {
    inp.runs.iter().rev().find(|r| {
        r.client == client
            && tag(r, "target") == target
            && tag(r, "series") == series
            && tag(r, "point") == point
    })
}

/// librdkafka's runs of one series for one target, sorted by their numeric point.
fn series<'a>(inp: &'a Inputs, target: &str, series: &str) -> Vec<(f64, &'a RunResult)> {
    series_by(inp, RDKAFKA, target, series)
}

fn series_by<'a>(inp: &'a Inputs, client: &str, target: &str, series: &str) -> Vec<(f64, &'a RunResult)> {
    let mut v: Vec<(f64, &RunResult)> = inp
        .runs
        .iter()
        .filter(|r| r.client == client && tag(r, "target") == target && tag(r, "series") == series)
        .filter_map(|r| tag(r, "point").parse::<f64>().ok().map(|x| (x, r)))
        .collect();
    v.sort_by(|a, b| a.0.total_cmp(&b.0));
    v
}

fn measure(r: &RunResult) -> Option<&PhaseResult> {
    r.phase("measure")
}

/// 1234567.8 → "1,234,568".
fn thousands(v: f64) -> String {
    let s = format!("{:.0}", v.max(0.0));
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn mb(bytes_per_s: f64) -> String {
    format!("{:.1}", bytes_per_s / 1e6)
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b > 0.0 => format!("{:.3}", a / b),
        _ => "–".into(),
    }
}

fn opt_us(v: Option<u64>) -> String {
    v.map_or("–".into(), fmt_us)
}

/// Writes report.md, results.json and plots/*.svg into `dir`.
pub fn write(dir: &Path) -> Result<()> {
    let inp = inputs::load(dir)?;
    std::fs::create_dir_all(dir.join("plots"))?;
    let profiles: Vec<(String, frames::Profile)> =
        inp.folded.iter().map(|(name, text)| (name.clone(), frames::analyse(text, FRAMES_SHOWN))).collect();
    let mut md = String::new();
    header(&mut md, &inp);
    headline(&mut md, &inp);
    native_section(&mut md, &inp);
    size_section(&mut md, &inp, dir)?;
    load_section(&mut md, &inp, dir)?;
    all_runs(&mut md, &inp);
    compare(&mut md, &inp, "shardlog-1-shard", MAIN_TARGET, "1 shard against 2 shards", SHARDS_NOTE);
    shard_load(&mut md, &inp, &["shardlog-1-shard", MAIN_TARGET]);
    // Any other target is the peer broker of PEER_BOOTSTRAP, under its PEER_NAME.
    for peer in targets(&inp).into_iter().filter(|t| t != MAIN_TARGET && t != "shardlog-1-shard") {
        let title = format!("{MAIN_TARGET} against {peer} (PEER_BOOTSTRAP)");
        compare(&mut md, &inp, &peer, MAIN_TARGET, &title, "");
    }
    resources(&mut md, &inp);
    cpu_section(&mut md, &profiles);
    callgrind_section(&mut md, &inp);
    md.push_str(REPRODUCE);
    std::fs::write(dir.join("report.md"), md)?;
    let results = json!({
        "schema": "shardlog-bench.report/1",
        "machine": inp.machine,
        "idle": inp.idle,
        "profiles": profiles.iter().map(|(n, p)| (n.clone(), p)).collect::<std::collections::BTreeMap<_, _>>(),
        "runs": inp.runs,
        "callgrind": inp.callgrind,
    });
    std::fs::write(dir.join("results.json"), serde_json::to_string_pretty(&results)?)?;
    eprintln!("wrote {}", dir.join("report.md").display());
    Ok(())
}

const SHARDS_NOTE: &str = "A ratio above 1 means two shards did better. On this 2-core machine the load \
generator runs on the same two cores, so the second shard competes with librdkafka's threads \
instead of getting a core of its own; the comparison shows what a second shard costs or gains \
under that contention, not the scaling on a dedicated machine. Clients put into a request what \
accumulated while earlier ones were in flight, so a broker that answers sooner receives smaller \
requests, and per-request costs (system calls and thread wake-ups, on both sides) then take more \
CPU per byte: the KB per request columns show how far that went in each pairing (a consumer's \
Fetch also spans only the partitions one shard leads, half of them with two), and the Shard \
load table below the request rates themselves.\n\n";

fn header(md: &mut String, inp: &Inputs) {
    let f = &inp.machine.facts;
    let get = |k: &str| f.get(k).cloned().unwrap_or_else(|| "?".into());
    let _ = writeln!(md, "# Shardlog performance report — {}\n", get("date"));
    let _ = writeln!(
        md,
        "Generated by `perf-reports/run.sh` → `shardlog-bench report` from `runs.jsonl` (one JSON \
         object per bench run) and the raw tool outputs in `raw/`; no number here is typed by hand. \
         Commit `{}`{}. Machine: {}, {} cores, kernel {}. The load generator (librdkafka, or the \
         bench's native client where marked) and the broker share these cores, and other builds may run on them: compare figures within this \
         report (ratios), not across reports. Load average (1, 5, 15 min) at the start: {}; at \
         the end: {}.\n",
        get("git"),
        if get("git_dirty") == "yes" { " (with uncommitted changes)" } else { "" },
        get("cpu_model"),
        get("cpus"),
        get("kernel"),
        get("loadavg_start"),
        get("loadavg_end")
    );
    let m = &inp.machine;
    let _ = writeln!(md, "## Machine limits, measured in this run\n");
    let _ = writeln!(md, "| limit | value | how |\n| --- | ---: | --- |");
    let _ = writeln!(
        md,
        "| loopback TCP | {} MB/s ({} Gbit/s) | `iperf3` one stream, 127.0.0.1, {} s |",
        m.loopback_bytes_per_s.map_or("–".into(), mb),
        m.loopback_bytes_per_s.map_or("–".into(), |b| format!("{:.1}", b * 8.0 / 1e9)),
        get("iperf3_seconds")
    );
    let _ = writeln!(
        md,
        "| sequential write | {} MB/s | `dd bs=1M count={} {}` on the log dir's file system |",
        m.disk_write_bytes_per_s.map_or("–".into(), mb),
        get("dd_count_mib"),
        get("dd_flags")
    );
    let _ = writeln!(
        md,
        "| page cache, new memory (first touch) | {} MB/s | `dd bs=1M count={}` into the page cache after memory sat freed for a while |",
        m.page_cache_new_bytes_per_s.map_or("–".into(), mb),
        get("dd_count_mib")
    );
    let _ = writeln!(
        md,
        "| page cache, memory just freed | {} MB/s | the same dd again right after |",
        m.page_cache_reused_bytes_per_s.map_or("–".into(), mb)
    );
    let _ = writeln!(
        md,
        "| page cache, memory full of page cache | {} MB/s | the same dd with free memory filled by clean page cache (`perf-reports/page-cache.sh`) |",
        m.page_cache_full_bytes_per_s.map_or("–".into(), mb)
    );
    let round_trip = |rt: Option<crate::wakeup::RoundTripUs>| {
        rt.map_or("–".into(), |rt| format!("{:.1} µs (p99 {:.1} µs)", rt.p50_us, rt.p99_us))
    };
    let _ = writeln!(
        md,
        "| thread wake-up round trip, across cores | {} | `shardlog-bench wakeup`: two threads pinned to cores 0 and 1 ping-pong a byte over a Unix socket pair, {} round trips (two wake-ups each) |",
        round_trip(m.wakeup.and_then(|w| w.cross_core)),
        m.wakeup.map_or("–".into(), |w| thousands(f64::from(w.round_trips)))
    );
    let _ = writeln!(
        md,
        "| thread wake-up round trip, on one core | {} | the same, both threads on core 0 |",
        round_trip(m.wakeup.map(|w| w.same_core))
    );
    if let Some(c) = m.ceiling {
        let _ = writeln!(
            md,
            "| loopback TCP, {n} streams | {} MB/s | `shardlog-bench ceiling`: {n} connections, 1 MiB writes, each received by a thread of its own and dropped |",
            mb(c.receive_bytes_per_s),
            n = c.streams
        );
        let _ = writeln!(
            md,
            "| produce ceiling: loopback TCP into the page cache, {n} streams | {} MB/s | the same, each receiver writing every byte into a new file (`pwrite`) on the log dir's file system, {} MB in all, memory in the runs' state |",
            mb(c.receive_and_write_bytes_per_s),
            mb(c.receive_and_write_bytes as f64),
            n = c.streams
        );
    }
    let _ = writeln!(md);
    if let Some(c) = m.ceiling {
        let _ = writeln!(
            md,
            "The produce ceiling is the least work a broker that reads requests into memory does \
             for a produced byte — receive it, write it into the page cache — with nothing else (no \
             protocol, checksum, index or client-side batching) at the main target's parallelism; \
             the sender shares the two cores as the load generator does. It ran at {:.2}× the \
             loopback TCP of the same streams and {:.2}× iperf3's one stream: no such broker \
             produces a larger share of loopback TCP here. Produce rows are shown against it \
             (\"÷ ceiling\").\n",
            c.receive_and_write_bytes_per_s / c.receive_bytes_per_s,
            m.loopback_bytes_per_s.map_or(f64::NAN, |l| c.receive_and_write_bytes_per_s / l)
        );
    }
    if let Some(cross) = m.wakeup.and_then(|w| w.cross_core) {
        let _ = writeln!(
            md,
            "Every request crosses threads: client → broker shard → client, and a consumed record \
             once more. Each crossing to a sleeping thread on the other core cost about {:.0} µs of \
             wall time here (half a round trip), and CPU on both sides{}. It sets the floor under \
             the latencies below and the CPU cost of small requests.\n",
            cross.p50_us / 2.0,
            match m.facts.get("guest_halt_poll_ns").map(String::as_str) {
                None => String::new(),
                Some("0") => "; this VM's idle vCPUs halt at once (guest_halt_poll_ns=0), so the host \
                              must wake them"
                    .to_string(),
                Some(ns) => format!(" (guest_halt_poll_ns={ns})"),
            }
        );
    }
    if let (Some(new), Some(reused)) = (m.page_cache_new_bytes_per_s, m.page_cache_reused_bytes_per_s) {
        let full = m.facts.get("page_cache_mode").is_some_and(|v| v == "full");
        let _ = writeln!(
            md,
            "A log that grows needs new page-cache pages all the time. Where the host backs guest \
             memory only while it is in use (here the balloon driver hands freed pages back within \
             seconds{}), each page taken from free memory costs a host fault: writing into reclaimed \
             memory ran at {:.2}× the speed of writing into memory just freed. {} Produce throughput \
             is shown against the rate the runs saw (\"÷ page-cache write\"); the produce flamegraphs \
             show the copy into the page cache as `copy_folio_from_iter_atomic` in the `iou-wrk` \
             threads. On bare metal the rates are equal.\n",
            m.facts
                .get("page_reporting_order")
                .map_or(String::new(), |v| format!(", page_reporting_order={v}")),
            new / reused,
            if full {
                "Every run here started with free memory filled by clean page cache (as on a broker \
                 that has run a while, whose memory holds older log pages), so the broker's new pages \
                 were reclaimed from it: the \"memory full\" rate applies."
            } else {
                "The runs here started with memory free (`PAGE_CACHE=new`), as on a freshly booted \
                 VM: the first-touch rate applies, except where a run reuses memory a previous run \
                 freed moments before (so the ratio can exceed 1)."
            }
        );
    }
}

/// One row of the headline: what, goal, the measured figure, its ratio to the goal, and the
/// payload bytes per second (for the ratios to machine limits) when it is a throughput.
struct HeadlineRow {
    what: &'static str,
    goal: &'static str,
    measured: String,
    vs_goal: String,
    bytes_per_s: Option<f64>,
}

fn headline_rows(inp: &Inputs, client: &str) -> Vec<HeadlineRow> {
    let lo = inp.machine.loopback_bytes_per_s;
    let mut rows = Vec::new();
    let mut row = |what, goal, measured, vs_goal, bytes_per_s| {
        rows.push(HeadlineRow { what, goal, measured, vs_goal, bytes_per_s });
    };
    if let Some(p) = find_by(inp, client, MAIN_TARGET, "size", "1024").and_then(measure) {
        let m = format!("{} msg/s ({} MB/s)", thousands(p.produced.msgs_per_s), mb(p.produced.bytes_per_s));
        row(
            "produce 1 KiB, 16 partitions, acks=1, with a tailing consumer",
            "≥ 1,000,000 msg/s",
            m,
            ratio(Some(p.produced.msgs_per_s), Some(1e6)),
            Some(p.produced.bytes_per_s),
        );
    }
    let backlog = find_by(inp, client, MAIN_TARGET, "backlog", "1024");
    if let Some(p) = backlog.and_then(|r| r.phase("backlog")) {
        let m = format!("{} msg/s ({} MB/s)", thousands(p.produced.msgs_per_s), mb(p.produced.bytes_per_s));
        row(
            "produce 1 KiB, 16 partitions, acks=1, no consumer",
            "≥ 1,000,000 msg/s",
            m,
            ratio(Some(p.produced.msgs_per_s), Some(1e6)),
            Some(p.produced.bytes_per_s),
        );
    }
    if let Some(p) = backlog.and_then(|r| r.phase("drain")) {
        let m = format!("{} msg/s ({} MB/s)", thousands(p.consumed.msgs_per_s), mb(p.consumed.bytes_per_s));
        row(
            "consume 1 KiB, backlog drain from the beginning",
            "≥ 2,000,000 msg/s",
            m,
            ratio(Some(p.consumed.msgs_per_s), Some(2e6)),
            Some(p.consumed.bytes_per_s),
        );
    }
    if let Some(p) = find_by(inp, client, MAIN_TARGET, "size", "16384").and_then(measure) {
        let goal = lo.map(|l| 0.8 * l);
        row(
            "produce 16 KiB, with a tailing consumer",
            "≥ 0.8 × loopback",
            format!("{} MB/s", mb(p.produced.bytes_per_s)),
            ratio(Some(p.produced.bytes_per_s), goal),
            Some(p.produced.bytes_per_s),
        );
        row(
            "consume 16 KiB (tailing)",
            "≥ 0.8 × loopback",
            format!("{} MB/s", mb(p.consumed.bytes_per_s)),
            ratio(Some(p.consumed.bytes_per_s), goal),
            Some(p.consumed.bytes_per_s),
        );
    }
    // The same 16 KiB goals for each path alone: a backlog built with no consumer running,
    // then drained from the beginning.
    let backlog_16k = find_by(inp, client, MAIN_TARGET, "backlog", "16384");
    if let Some(p) = backlog_16k.and_then(|r| r.phase("backlog")) {
        row(
            "produce 16 KiB, no consumer",
            "≥ 0.8 × loopback",
            format!("{} MB/s", mb(p.produced.bytes_per_s)),
            ratio(Some(p.produced.bytes_per_s), lo.map(|l| 0.8 * l)),
            Some(p.produced.bytes_per_s),
        );
    }
    if let Some(p) = backlog_16k.and_then(|r| r.phase("drain")) {
        row(
            "consume 16 KiB, backlog drain from the beginning",
            "≥ 0.8 × loopback",
            format!("{} MB/s", mb(p.consumed.bytes_per_s)),
            ratio(Some(p.consumed.bytes_per_s), lo.map(|l| 0.8 * l)),
            Some(p.consumed.bytes_per_s),
        );
    }
    if let Some(r) = find_by(inp, client, MAIN_TARGET, "load", "50") {
        let e2e = measure(r).and_then(|p| p.e2e_latency_us.clone());
        let rate = r.workload.producer_rate_msgs_per_s;
        let p99 = e2e.as_ref().map(|l| l.p99_us);
        let p999 = e2e.as_ref().map(|l| l.p999_us);
        row(
            "end-to-end p99 at 50 % of librdkafka's max rate",
            "≤ 1 ms",
            format!("{} (at {} msg/s)", opt_us(p99), thousands(rate as f64)),
            ratio(p99.map(|v| v as f64), Some(1000.0)),
            None,
        );
        row(
            "end-to-end p99.9 at 50 % of librdkafka's max rate",
            "≤ 5 ms",
            opt_us(p999),
            ratio(p999.map(|v| v as f64), Some(5000.0)),
            None,
        );
        // How much of the latency is the broker's: its own time for these Produce requests.
        let produce = measure(r).and_then(|p| p.broker_request_us.as_ref()?.get("Produce").cloned());
        if let Some(t) = produce {
            row(
                "  of which the broker's Produce time, p50 / p99 / p99.9 (its metrics)",
                "reported",
                format!(
                    "{} / {} / {}",
                    fmt_us(t.p50_us as u64),
                    fmt_us(t.p99_us as u64),
                    fmt_us(t.p999_us as u64)
                ),
                String::new(),
                None,
            );
        }
    }
    let cpu = |phase: &str| {
        backlog.and_then(|r| r.phase(phase)).and_then(|p| p.broker.clone()).and_then(|b| {
            if phase == "drain" {
                b.cpu_s_per_gb_consumed
            } else {
                b.cpu_s_per_gb_produced
            }
        })
    };
    if backlog.is_some() {
        row(
            "broker CPU-seconds per GB produced (backlog phase)",
            "reported",
            cpu("backlog").map_or("–".into(), |v| format!("{v:.2}")),
            String::new(),
            None,
        );
        row(
            "broker CPU-seconds per GB fetched (drain phase)",
            "reported",
            cpu("drain").map_or("–".into(), |v| format!("{v:.2}")),
            String::new(),
            None,
        );
    }
    rows
}

fn headline(md: &mut String, inp: &Inputs) {
    let lo = inp.machine.loopback_bytes_per_s;
    let disk = inp.machine.disk_write_bytes_per_s;
    let page_cache = inp.machine.page_cache_write_bytes_per_s();
    let ceiling = inp.machine.ceiling.map(|c| c.receive_and_write_bytes_per_s);
    let reference = headline_rows(inp, RDKAFKA);
    let native = headline_rows(inp, NATIVE);
    let _ = writeln!(
        md,
        "## Headline: issue 4's targets ({MAIN_TARGET})
"
    );
    let _ = writeln!(
        md,
        "| what | goal | measured (librdkafka) | ÷ goal | ÷ loopback TCP | ÷ disk write | ÷ page-cache write | ÷ ceiling | measured (native client) | ÷ goal | ÷ loopback TCP | ÷ page-cache write | ÷ ceiling |"
    );
    let _ = writeln!(
        md,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    );
    let mut whats: Vec<&str> = reference.iter().map(|r| r.what).collect();
    for r in &native {
        if !whats.contains(&r.what) {
            whats.push(r.what);
        }
    }
    for what in whats {
        let a = reference.iter().find(|r| r.what == what);
        let b = native.iter().find(|r| r.what == what);
        let goal = a.or(b).map_or("", |r| r.goal);
        let cells = |r: Option<&HeadlineRow>| match r {
            Some(r) => (r.measured.clone(), r.vs_goal.clone(), r.bytes_per_s),
            None => ("–".into(), String::new(), None),
        };
        let (am, ag, ab) = cells(a);
        let (bm, bg, bb) = cells(b);
        let limit = |bytes: Option<f64>, l: Option<f64>| {
            if bytes.is_some() {
                ratio(bytes, l)
            } else {
                String::new()
            }
        };
        // Only a produce grows the log; a fetch reads pages that are already there.
        let produce_limit =
            |what: &str, bytes, l| if what.starts_with("produce") { limit(bytes, l) } else { String::new() };
        let _ = writeln!(
            md,
            "| {what} | {goal} | {am} | {ag} | {} | {} | {} | {} | {bm} | {bg} | {} | {} | {} |",
            limit(ab, lo),
            limit(ab, disk),
            produce_limit(what, ab, page_cache),
            produce_limit(what, ab, ceiling),
            limit(bb, lo),
            produce_limit(what, bb, page_cache),
            produce_limit(what, bb, ceiling)
        );
    }
    if let Some(idle) = inp.idle.get(MAIN_TARGET) {
        let _ = writeln!(
            md,
            "| broker RSS idle (after start, before load) | ≤ 100 MB | {} MB | {} | | | | | | | | | |",
            mb(idle.rss_bytes as f64),
            ratio(Some(idle.rss_bytes as f64), Some(100e6))
        );
    }
    let _ = writeln!(
        md,
        "\nA ratio to a goal above 1 meets a throughput goal; below 1 meets a latency or memory goal. \
         Ratios to machine limits: payload bytes per second of the run ÷ the limit measured above. \
         Both clients run the same workloads; the native client's open-loop run uses the same \
         target rate as librdkafka's, so their latencies compare like for like.\n"
    );
}

/// Every (target, series, point) both clients ran, side by side.
fn native_section(md: &mut String, inp: &Inputs) {
    let pairs: Vec<(&RunResult, &RunResult)> = inp
        .runs
        .iter()
        .filter(|r| r.client == NATIVE)
        .filter_map(|n| find(inp, tag(n, "target"), tag(n, "series"), tag(n, "point")).map(|r| (r, n)))
        .collect();
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(
        md,
        "## Native client beside librdkafka
"
    );
    let _ = writeln!(
        md,
        "The same workloads driven by `shardlog-bench --client native` (our own client: batches \
         built with shardlog-storage, up to 5 Produce requests in flight per leader, Fetch walked \
         by batch headers) and by librdkafka, against the same broker in this run. On a shared \
         2-core machine the client's CPU per record is taken from the broker, so the difference \
         between the columns is mostly client cost.\n"
    );
    let _ = writeln!(md, "| target | series | point | phase | produce msg/s librdkafka | native | consume msg/s librdkafka | native | e2e p99 librdkafka | native | broker CPU s/GB librdkafka | native |");
    let _ = writeln!(md, "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (r, n) in pairs {
        for pn in &n.phases {
            let Some(pr) = r.phase(&pn.name) else { continue };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                tag(n, "target"),
                tag(n, "series"),
                tag(n, "point"),
                pn.name,
                thousands(pr.produced.msgs_per_s),
                thousands(pn.produced.msgs_per_s),
                thousands(pr.consumed.msgs_per_s),
                thousands(pn.consumed.msgs_per_s),
                opt_us(pr.e2e_latency_us.as_ref().map(|l| l.p99_us)),
                opt_us(pn.e2e_latency_us.as_ref().map(|l| l.p99_us)),
                cpu_per_gb(pr).map_or("–".into(), |v| format!("{v:.2}")),
                cpu_per_gb(pn).map_or("–".into(), |v| format!("{v:.2}"))
            );
        }
    }
    md.push('\n');
}

/// The broker's CPU seconds in a phase ÷ all payload GB moved in it (produced + consumed).
/// Payload KB per request of type `request` (the broker's name for it, e.g. `Produce`), from
/// the broker's request count over the phase.
fn kb_per_request(p: &PhaseResult, request: &str, bytes: u64) -> Option<f64> {
    let count = p.broker_request_us.as_ref()?.get(request)?.count;
    (count > 0 && bytes > 0).then(|| bytes as f64 / count as f64 / 1e3)
}

/// Requests of type `request` per second over the phase.
fn requests_per_s(p: &PhaseResult, request: &str) -> Option<f64> {
    let count = p.broker_request_us.as_ref()?.get(request)?.count;
    (p.wall_s > 0.0).then(|| count as f64 / p.wall_s)
}

fn cpu_per_gb(p: &PhaseResult) -> Option<f64> {
    let bytes = p.produced.bytes + p.consumed.bytes;
    p.broker.as_ref().and_then(|b| (bytes > 0).then(|| b.cpu_s / (bytes as f64 / 1e9)))
}

fn size_section(md: &mut String, inp: &Inputs, dir: &Path) -> Result<()> {
    let lo = inp.machine.loopback_bytes_per_s;
    let disk = inp.machine.disk_write_bytes_per_s;
    let page_cache = inp.machine.page_cache_write_bytes_per_s();
    let mut chart_series = Vec::new();
    let mut any = false;
    for target in targets(inp) {
        let runs = series(inp, &target, "size");
        if runs.is_empty() {
            continue;
        }
        if !any {
            let _ = writeln!(md, "## Throughput against message size\n");
            let _ = writeln!(md, "Closed loop (max rate), 1 topic × 16 partitions, 1 producer, 1 consumer tailing, acks=1, no compression. \
                 Latency in closed loop is mostly time spent in librdkafka's queue (bounded at 64 MiB per \
                 producer): it measures the client's buffer, not the broker; the load series below is \
                 the latency measurement. Consumption can exceed production in a window because the \
                 consumer is still catching up with the warm-up.\n");
            let _ = writeln!(md, "![throughput against message size](plots/throughput-vs-size.svg)\n");
            any = true;
        }
        let _ = writeln!(md, "**{target}**\n");
        let _ = writeln!(md, "| message B | produce msg/s | produce MB/s | ÷ loopback | ÷ disk | ÷ page-cache write | consume msg/s | consume MB/s | ÷ loopback | e2e p50 | e2e p99 | e2e p99.9 | errors |");
        let _ = writeln!(
            md,
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        );
        let mut prod = Vec::new();
        let mut cons = Vec::new();
        for (x, r) in &runs {
            let Some(p) = measure(r) else { continue };
            let e = p.e2e_latency_us.as_ref();
            let _ = writeln!(
                md,
                "| {x} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                thousands(p.produced.msgs_per_s),
                mb(p.produced.bytes_per_s),
                ratio(Some(p.produced.bytes_per_s), lo),
                ratio(Some(p.produced.bytes_per_s), disk),
                ratio(Some(p.produced.bytes_per_s), page_cache),
                thousands(p.consumed.msgs_per_s),
                mb(p.consumed.bytes_per_s),
                ratio(Some(p.consumed.bytes_per_s), lo),
                opt_us(e.map(|l| l.p50_us)),
                opt_us(e.map(|l| l.p99_us)),
                opt_us(e.map(|l| l.p999_us)),
                p.produced.errors + p.consumed.errors
            );
            prod.push((*x, p.produced.bytes_per_s / 1e6));
            cons.push((*x, p.consumed.bytes_per_s / 1e6));
        }
        md.push('\n');
        chart_series.push(Series { name: format!("{target} produce"), points: prod });
        chart_series.push(Series { name: format!("{target} consume"), points: cons });
        let native = series_by(inp, NATIVE, &target, "size");
        let flow = |f: fn(&PhaseResult) -> f64| -> Vec<(f64, f64)> {
            native.iter().filter_map(|(x, r)| measure(r).map(|p| (*x, f(p) / 1e6))).collect()
        };
        let (np, nc) = (flow(|p| p.produced.bytes_per_s), flow(|p| p.consumed.bytes_per_s));
        if !np.is_empty() {
            chart_series.push(Series { name: format!("{target} produce (native client)"), points: np });
            chart_series.push(Series { name: format!("{target} consume (native client)"), points: nc });
        }
    }
    if any {
        let mut refs = Vec::new();
        if let Some(l) = lo {
            refs.push(("loopback TCP".to_string(), l / 1e6));
        }
        if let Some(d) = disk {
            refs.push(("disk write".to_string(), d / 1e6));
        }
        if let Some(n) = page_cache {
            refs.push(("page-cache write".to_string(), n / 1e6));
        }
        let chart = Chart {
            title: "Throughput against message size".into(),
            x_label: "message size (bytes)".into(),
            y_label: "MB/s (payload)".into(),
            log_x: true,
            log_y: false,
            series: chart_series,
            reference_lines: refs,
        };
        std::fs::write(dir.join("plots/throughput-vs-size.svg"), chart.render())?;
    }
    Ok(())
}

fn load_section(md: &mut String, inp: &Inputs, dir: &Path) -> Result<()> {
    let mut any = false;
    for target in targets(inp) {
        let runs = series(inp, &target, "load");
        if runs.is_empty() {
            continue;
        }
        if !any {
            let _ = writeln!(md, "## Latency against load\n");
            let _ = writeln!(
                md,
                "Open loop: 1 KiB, 16 partitions, the rate a fraction of the closed-loop max rate of the \
                 same target in this run. Latency runs from the *intended* send time (coordinated \
                 omission corrected): ack = until the producer's delivery report, e2e = until the \
                 consumer has the message. *Broker produce* is the broker's own time for the run's \
                 Produce requests, from reading a request to writing its response (its metrics \
                 endpoint, `shardlog_request_total_time_seconds`): what of the ack latency the \
                 broker spent; the rest is the client's linger and queues, and the network.\n"
            );
            any = true;
        }
        let file = format!("latency-vs-load-{target}.svg");
        let _ = writeln!(md, "**{target}** — ![latency against load](plots/{file})\n");
        let _ = writeln!(
            md,
            "| load % | target msg/s | achieved msg/s | e2e p50 | p90 | p99 | p99.9 | p99.99 | max | ack p50 | ack p99 | broker produce p50 | p99 | p99.9 |"
        );
        let _ = writeln!(md, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
        let mut s = [(50, Vec::new()), (99, Vec::new()), (999, Vec::new()), (9999, Vec::new())];
        for (x, r) in &runs {
            let Some(p) = measure(r) else { continue };
            let e = p.e2e_latency_us.as_ref();
            let produce = p.broker_request_us.as_ref().and_then(|t| t.get("Produce"));
            let _ = writeln!(
                md,
                "| {x} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                thousands(r.workload.producer_rate_msgs_per_s as f64),
                thousands(p.produced.msgs_per_s),
                opt_us(e.map(|l| l.p50_us)),
                opt_us(e.map(|l| l.p90_us)),
                opt_us(e.map(|l| l.p99_us)),
                opt_us(e.map(|l| l.p999_us)),
                opt_us(e.map(|l| l.p9999_us)),
                opt_us(e.map(|l| l.max_us)),
                opt_us(p.ack_latency_us.as_ref().map(|l| l.p50_us)),
                opt_us(p.ack_latency_us.as_ref().map(|l| l.p99_us)),
                opt_us(produce.map(|t| t.p50_us as u64)),
                opt_us(produce.map(|t| t.p99_us as u64)),
                opt_us(produce.map(|t| t.p999_us as u64))
            );
            if let Some(e) = e {
                let rate = r.workload.producer_rate_msgs_per_s as f64;
                s[0].1.push((rate, e.p50_us as f64 / 1e3));
                s[1].1.push((rate, e.p99_us as f64 / 1e3));
                s[2].1.push((rate, e.p999_us as f64 / 1e3));
                s[3].1.push((rate, e.p9999_us as f64 / 1e3));
            }
        }
        md.push('\n');
        let chart = Chart {
            title: format!("End-to-end latency against load — {target}"),
            x_label: "target rate (msg/s, 1 KiB)".into(),
            y_label: "latency (ms)".into(),
            log_x: false,
            log_y: true,
            series: s
                .into_iter()
                .map(|(q, points)| Series {
                    name: match q {
                        50 => "p50".into(),
                        99 => "p99".into(),
                        999 => "p99.9".into(),
                        _ => "p99.99".into(),
                    },
                    points,
                })
                .collect(),
            reference_lines: vec![("1 ms".into(), 1.0), ("5 ms".into(), 5.0)],
        };
        std::fs::write(dir.join("plots").join(file), chart.render())?;
    }
    Ok(())
}

fn all_runs(md: &mut String, inp: &Inputs) {
    let lo = inp.machine.loopback_bytes_per_s;
    let _ = writeln!(md, "## Every run\n");
    let _ = writeln!(md, "| run | client | workload | phase | wall s | produce msg/s | MB/s | ÷ loopback | consume msg/s | MB/s | ÷ loopback | e2e p99 | e2e p99.9 | errors | broker CPU s | CPU s/GB |");
    let _ = writeln!(md, "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for r in &inp.runs {
        for p in &r.phases {
            let b = p.broker.as_ref();
            let bytes = p.produced.bytes + p.consumed.bytes;
            let per_gb = b.and_then(|b| (bytes > 0).then(|| b.cpu_s / (bytes as f64 / 1e9)));
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.label,
                r.client,
                r.workload.name,
                p.name,
                p.wall_s,
                thousands(p.produced.msgs_per_s),
                mb(p.produced.bytes_per_s),
                ratio(Some(p.produced.bytes_per_s), lo),
                thousands(p.consumed.msgs_per_s),
                mb(p.consumed.bytes_per_s),
                ratio(Some(p.consumed.bytes_per_s), lo),
                opt_us(p.e2e_latency_us.as_ref().map(|l| l.p99_us)),
                opt_us(p.e2e_latency_us.as_ref().map(|l| l.p999_us)),
                p.produced.errors + p.consumed.errors,
                b.map_or("–".into(), |b| format!("{:.2}", b.cpu_s)),
                per_gb.map_or("–".into(), |v| format!("{v:.2}"))
            );
        }
    }
    let _ = writeln!(md, "\nCPU s/GB here divides the broker's CPU time in the phase by all payload bytes moved in it (produced + consumed).\n");
}

/// Where each configuration's CPU went: every shard's busy time and thread CPU, and the whole
/// process's CPU (which adds io_uring's kernel workers), each as a share of the phase.
fn shard_load(md: &mut String, inp: &Inputs, targets: &[&str]) {
    let runs: Vec<&RunResult> = inp
        .runs
        .iter()
        .filter(|r| targets.contains(&tag(r, "target")))
        .filter(|r| r.phases.iter().any(|p| p.broker_shards.is_some()))
        .collect();
    let shards = runs
        .iter()
        .flat_map(|r| r.phases.iter().flat_map(|p| p.broker_shards.iter().flatten()))
        .map(|s| s.shard + 1)
        .max()
        .unwrap_or(0);
    if runs.is_empty() || shards == 0 {
        return;
    }
    let _ = writeln!(md, "### Shard load\n");
    let _ = writeln!(
        md,
        "From the broker's metrics endpoint, over each phase: how long each shard's executor was \
         busy (not sleeping), its thread's CPU time, and the broker process's CPU time (its \
         shards plus io_uring's kernel workers, which copy large appends into the page cache), \
         each as a share of the phase's wall time. 100 % is one core; the machine has {} cores, \
         shared with the load generator.\n",
        inp.machine.facts.get("cpus").cloned().unwrap_or_else(|| "?".into())
    );
    let mut head = "| target | client | series | point | phase | MB/s moved |".to_string();
    let mut rule = "| --- | --- | --- | --- | --- | ---: |".to_string();
    for i in 0..shards {
        let _ = write!(head, " shard {i} busy | CPU |");
        rule.push_str(" ---: | ---: |");
    }
    head.push_str(" process CPU | Produce req/s | KB per Produce | Fetch req/s | KB per Fetch |");
    rule.push_str(" ---: | ---: | ---: | ---: | ---: |");
    let _ = writeln!(md, "{head}\n{rule}");
    for r in runs {
        for p in r.phases.iter().filter(|p| p.wall_s > 0.0) {
            let Some(loads) = &p.broker_shards else { continue };
            let pct = |v: f64| format!("{:.0} %", 100.0 * v / p.wall_s);
            let mut row = format!(
                "| {} | {} | {} | {} | {} | {} |",
                tag(r, "target"),
                r.client,
                tag(r, "series"),
                tag(r, "point"),
                p.name,
                mb(p.produced.bytes_per_s + p.consumed.bytes_per_s)
            );
            for i in 0..shards {
                match loads.iter().find(|s| s.shard == i) {
                    Some(s) => {
                        let _ = write!(row, " {} | {} |", pct(s.busy_s), s.cpu_s.map_or("–".into(), pct));
                    }
                    None => row.push_str(" – | – |"),
                }
            }
            let _ = write!(row, " {} |", p.broker.as_ref().map_or("–".into(), |b| pct(b.cpu_s)));
            let rate = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.0}"));
            let kb = |v: Option<f64>| v.map_or("–".into(), |v| format!("{v:.1}"));
            let _ = write!(
                row,
                " {} | {} | {} | {} |",
                rate(requests_per_s(p, "Produce")),
                kb(kb_per_request(p, "Produce", p.produced.bytes)),
                rate(requests_per_s(p, "FetchConsumer")),
                kb(kb_per_request(p, "FetchConsumer", p.consumed.bytes))
            );
            let _ = writeln!(md, "{row}");
        }
    }
    md.push('\n');
}

/// Ratios `a ÷ b` for every (series, point, phase) both targets ran.
fn compare(md: &mut String, inp: &Inputs, a: &str, b: &str, title: &str, note: &str) {
    let pairs: Vec<(&RunResult, &RunResult)> = inp
        .runs
        .iter()
        .filter(|r| tag(r, "target") == b)
        .filter_map(|rb| find_by(inp, &rb.client, a, tag(rb, "series"), tag(rb, "point")).map(|ra| (ra, rb)))
        .collect();
    if pairs.is_empty() {
        return;
    }
    let _ = writeln!(md, "## {title}\n");
    md.push_str(note);
    let _ = writeln!(md, "Each cell is {b} ÷ {a}, measured in this run.\n");
    let _ = writeln!(
        md,
        "| client | series | point | phase | produce msg/s | consume msg/s | e2e p99 | broker CPU s per GB | KB per Produce request | KB per Fetch request |"
    );
    let _ = writeln!(md, "| --- | --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |");
    for (ra, rb) in pairs {
        for pb in &rb.phases {
            let Some(pa) = ra.phase(&pb.name) else { continue };
            let nz = |v: f64| (v > 0.0).then_some(v);
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                rb.client,
                tag(rb, "series"),
                tag(rb, "point"),
                pb.name,
                ratio(nz(pb.produced.msgs_per_s), nz(pa.produced.msgs_per_s)),
                ratio(nz(pb.consumed.msgs_per_s), nz(pa.consumed.msgs_per_s)),
                ratio(
                    pb.e2e_latency_us.as_ref().map(|l| l.p99_us as f64),
                    pa.e2e_latency_us.as_ref().map(|l| l.p99_us as f64)
                ),
                ratio(cpu_per_gb(pb), cpu_per_gb(pa)),
                ratio(
                    kb_per_request(pb, "Produce", pb.produced.bytes),
                    kb_per_request(pa, "Produce", pa.produced.bytes)
                ),
                ratio(
                    kb_per_request(pb, "FetchConsumer", pb.consumed.bytes),
                    kb_per_request(pa, "FetchConsumer", pa.consumed.bytes)
                )
            );
        }
    }
    md.push('\n');
}

fn resources(md: &mut String, inp: &Inputs) {
    if inp.idle.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Broker resources\n");
    let _ = writeln!(md, "| target | RSS idle MB | RSS after its last run MB | CPU s / GB produced (backlog) | CPU s / GB fetched (drain) |");
    let _ = writeln!(md, "| --- | ---: | ---: | ---: | ---: |");
    for (target, idle) in &inp.idle {
        let last_rss = inp
            .runs
            .iter()
            .rev()
            .filter(|r| tag(r, "target") == target)
            .find_map(|r| r.phases.last().and_then(|p| p.broker.as_ref()).map(|b| b.rss_end_bytes));
        let backlog = find(inp, target, "backlog", "1024");
        let per = |phase: &str, produced: bool| {
            backlog
                .and_then(|r| r.phase(phase))
                .and_then(|p| p.broker.as_ref())
                .and_then(|b| if produced { b.cpu_s_per_gb_produced } else { b.cpu_s_per_gb_consumed })
                .map_or("–".into(), |v| format!("{v:.2}"))
        };
        let _ = writeln!(
            md,
            "| {target} | {} | {} | {} | {} |",
            mb(idle.rss_bytes as f64),
            last_rss.map_or("–".into(), |v| mb(v as f64)),
            per("backlog", true),
            per("drain", false)
        );
    }
    md.push('\n');
}

fn cpu_section(md: &mut String, profiles: &[(String, frames::Profile)]) {
    if profiles.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Where the broker's CPU goes\n");
    let _ = writeln!(
        md,
        "`perf record -e cpu-clock --call-graph dwarf -p <broker>` during one phase of a separate \
         `profiled` run (so sampling does not slow the measured runs), folded and rendered with \
         `inferno`: *produce* is the backlog phase (producer only), *fetch* the drain phase \
         (consumer only). *Self* is where the samples landed; *total* is what they ran \
         under (thread entry frames left out).\n"
    );
    for (name, p) in profiles {
        let _ = writeln!(
            md,
            "### {name} — {:.0} ms of broker CPU sampled — [flamegraph](flame/{name}.svg)\n",
            p.weight_ns as f64 / 1e6
        );
        let threads: Vec<String> =
            p.threads.iter().map(|t| format!("{} {:.1} %", t.name, t.percent)).collect();
        let _ = writeln!(md, "By thread: {}.\n", threads.join(", "));
        let _ = writeln!(
            md,
            "| # | self % | frame (self) | total % | frame (total) |\n| ---: | ---: | --- | ---: | --- |"
        );
        for i in 0..FRAMES_SHOWN {
            let s = p.top_self.get(i);
            let t = p.top_total.get(i);
            if s.is_none() && t.is_none() {
                break;
            }
            let cell = |f: Option<&frames::Frame>| {
                f.map_or(("".into(), "".into()), |f| {
                    (format!("{:.1}", f.percent), format!("`{}`", short_frame(&f.name)))
                })
            };
            let (sp, sn) = cell(s);
            let (tp, tn) = cell(t);
            let _ = writeln!(md, "| {} | {sp} | {sn} | {tp} | {tn} |", i + 1);
        }
        md.push('\n');
    }
}

fn callgrind_section(md: &mut String, inp: &Inputs) {
    if inp.callgrind.is_empty() {
        return;
    }
    let _ = writeln!(md, "## Hot paths: instruction counts (callgrind)\n");
    let first = &inp.callgrind[0];
    let _ = writeln!(
        md,
        "`perf-reports/callgrind.sh`: each criterion micro-benchmark's step run N times under \
         `valgrind --tool=callgrind` ({}, `{}` profile), counting only the measured step \
         (`--toggle-collect`), never its set-up. Instruction counts do not move with other load on \
         the machine, so they compare across commits where wall time does not; they are not \
         time (no cache misses or stalls in them). An append's write has no count, since glommio's \
         I/O never completes under this valgrind (see bench/README.md): \
         `leader_append_16KiB_batch` counts what the append computes before it.\n",
        first.valgrind, first.profile
    );
    let _ = writeln!(md, "| case | crate | what | iterations | instructions per iteration |");
    let _ = writeln!(md, "| --- | --- | --- | ---: | ---: |");
    for c in &inp.callgrind {
        let per = match (&c.error, c.instructions_per_iteration) {
            (Some(e), _) => format!("failed: {e}"),
            (None, Some(v)) => thousands(v),
            (None, None) => "–".into(),
        };
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {per} |",
            c.case,
            c.crate_name,
            c.what.replace('|', "\\|"),
            thousands(c.iterations as f64)
        );
    }
    md.push('\n');
}

/// Frame names without their generic arguments' noise, at most 120 characters.
fn short_frame(name: &str) -> String {
    let mut s: String = name.replace('|', "\\|");
    if s.len() > 120 {
        let mut cut = 117;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

const REPRODUCE: &str = "## Reproduce\n\n\
```sh\n\
perf-reports/run.sh                                   # this report, into perf-reports/<date>/\n\
perf-reports/callgrind.sh                             # only the instruction counts (JSON lines)\n\
PEER_BOOTSTRAP=127.0.0.1:9092 PEER_PID=<pid> perf-reports/run.sh   # also measure a peer broker\n\
target/release/shardlog-bench run --workload bench/workloads/1-topic-16-partitions-1kb.toml --bootstrap 127.0.0.1:9092\n\
```\n";

#[cfg(test)]
mod tests {
    use crate::broker_metrics::RequestTimes;
    use crate::result::{Flow, PhaseResult};

    /// Request sizes come from the broker's request counts and the bytes each direction moved:
    /// Produce counts produced bytes, a consumer's Fetch consumed bytes.
    #[test]
    fn request_sizes_and_rates_come_from_the_brokers_counts() {
        let times = |count| RequestTimes { count, p50_us: 1.0, p90_us: 1.0, p99_us: 1.0, p999_us: 1.0 };
        let phase = PhaseResult {
            name: "measure".into(),
            wall_s: 5.0,
            produced: Flow::new(1000, 4_000_000, 0, 5.0),
            consumed: Flow::new(1000, 3_000_000, 0, 5.0),
            broker_request_us: Some(
                [("Produce".to_string(), times(400)), ("FetchConsumer".to_string(), times(100))].into(),
            ),
            ..PhaseResult::default()
        };
        assert_eq!(super::kb_per_request(&phase, "Produce", phase.produced.bytes), Some(10.0));
        assert_eq!(super::kb_per_request(&phase, "FetchConsumer", phase.consumed.bytes), Some(30.0));
        assert_eq!(super::requests_per_s(&phase, "Produce"), Some(80.0));
        assert_eq!(super::kb_per_request(&phase, "Metadata", 1), None);
        assert_eq!(super::kb_per_request(&PhaseResult::default(), "Produce", 1), None);
    }

    /// The machine-limits table shows the wake-up round trips of `raw/wakeup.json`, and says
    /// what the VM's idle policy makes of them.
    #[test]
    fn report_shows_the_wake_up_floor() {
        let dir = std::env::temp_dir().join(format!("shardlog-report-test-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("raw")).expect("mkdir");
        std::fs::write(dir.join("runs.jsonl"), "").expect("runs");
        std::fs::write(dir.join("raw/machine.txt"), "cpus=2\nguest_halt_poll_ns=0\n").expect("machine");
        let wakeup = r#"{"round_trips":20000,"cross_core":{"p50_us":63.3,"p99_us":88.9},"same_core":{"p50_us":10.3,"p99_us":13.5}}"#;
        std::fs::write(dir.join("raw/wakeup.json"), wakeup).expect("wakeup");
        super::write(&dir).expect("report");
        let md = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert!(md.contains("| thread wake-up round trip, across cores | 63.3 µs (p99 88.9 µs) |"), "{md}");
        assert!(md.contains("| thread wake-up round trip, on one core | 10.3 µs (p99 13.5 µs) |"), "{md}");
        assert!(md.contains("cost about 32 µs of wall time"), "{md}");
        assert!(md.contains("guest_halt_poll_ns=0"), "{md}");
    }

    /// The produce ceiling of `raw/ceiling.json` is a machine limit, compared with iperf3's.
    #[test]
    fn report_shows_the_produce_ceiling() {
        let dir = std::env::temp_dir().join(format!("shardlog-report-ceiling-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("raw")).expect("mkdir");
        std::fs::write(dir.join("runs.jsonl"), "").expect("runs");
        std::fs::write(dir.join("raw/iperf3.json"), r#"{"end":{"sum_received":{"bits_per_second":24e9}}}"#)
            .expect("iperf3");
        let ceiling = r#"{"streams":2,"receive_bytes":3000000000,"receive_bytes_per_s":6e9,"receive_and_write_bytes":3000000000,"receive_and_write_bytes_per_s":2.4e9}"#;
        std::fs::write(dir.join("raw/ceiling.json"), ceiling).expect("ceiling");
        super::write(&dir).expect("report");
        let md = std::fs::read_to_string(dir.join("report.md")).expect("report.md");
        std::fs::remove_dir_all(&dir).expect("cleanup");
        assert!(md.contains("| loopback TCP, 2 streams | 6000.0 MB/s |"), "{md}");
        assert!(
            md.contains("| produce ceiling: loopback TCP into the page cache, 2 streams | 2400.0 MB/s |"),
            "{md}"
        );
        assert!(
            md.contains("It ran at 0.40× the loopback TCP of the same streams and 0.80× iperf3's one stream"),
            "{md}"
        );
    }
}
