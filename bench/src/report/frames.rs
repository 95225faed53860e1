//! Where the CPU goes, from a folded-stacks file (`inferno-collapse-perf` output: one line
//! per distinct stack, `frame;frame;…;leaf count`).

use std::collections::HashMap;

use serde::Serialize;

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Frame {
    pub name: String,
    pub samples: u64,
    pub percent: f64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Profile {
    /// Sum of the folded weights: with `perf record -e cpu-clock`, nanoseconds of CPU sampled.
    pub weight_ns: u64,
    /// Frames by samples where they are the leaf (where the CPU actually is).
    pub top_self: Vec<Frame>,
    /// Frames by samples where they are anywhere on the stack (what the time is spent under).
    pub top_total: Vec<Frame>,
    /// Threads (grouped) by samples.
    pub threads: Vec<Frame>,
}

/// Frames that sit under nearly every stack and say nothing about the path: thread entry,
/// the executor's task loop, syscall entry, future plumbing.
fn is_boring(frame: &str) -> bool {
    const PREFIXES: [&str; 17] = [
        "[unknown]",
        "clone",
        "start_thread",
        "std::",
        "core::",
        "alloc::",
        "scoped_tls::",
        "glommio::executor::",
        "glommio::task::",
        "<core::pin::Pin",
        "<glommio::timer::timer_impl::Timeout",
        "entry_SYSCALL",
        "do_syscall_64",
        "ret_from_fork",
        "__x64_sys",
        "x64_sys_call",
        "__",
    ];
    PREFIXES.iter().any(|p| frame.starts_with(p)) || frame.contains("thread::Builder")
}

/// perf names threads by their comm; io_uring's workers are `iou-wrk-<tid>`, one per worker,
/// which says nothing per tid. glommio's blocking threads have no name of their own: they carry
/// the comm of the shard thread that started them, so they are told apart by their stacks.
fn thread_group(frames: &[&str]) -> String {
    let comm = frames.first().copied().unwrap_or_default();
    if comm.starts_with("iou-wrk-") {
        "iou-wrk-* (io_uring async workers)".to_string()
    } else if frames.iter().any(|f| f.starts_with("glommio::sys::blocking::")) {
        "glommio blocking threads".to_string()
    } else {
        comm.to_string()
    }
}

pub fn analyse(folded: &str, top_n: usize) -> Profile {
    let mut total = 0u64;
    let mut self_counts: HashMap<&str, u64> = HashMap::new();
    let mut incl: HashMap<&str, u64> = HashMap::new();
    let mut threads: HashMap<String, u64> = HashMap::new();
    for line in folded.lines() {
        let Some((stack, count)) = line.rsplit_once(' ') else { continue };
        let Ok(count) = count.parse::<u64>() else { continue };
        total += count;
        let frames: Vec<&str> = stack.split(';').collect();
        *threads.entry(thread_group(&frames)).or_default() += count;
        if let Some(leaf) = frames.last() {
            *self_counts.entry(leaf).or_default() += count;
        }
        let mut seen: Vec<&str> = Vec::with_capacity(frames.len());
        // The first frame is the thread's name (perf's comm): on every stack of that thread.
        for f in frames.into_iter().skip(1) {
            if !seen.contains(&f) {
                seen.push(f);
                *incl.entry(f).or_default() += count;
            }
        }
    }
    let top = |m: HashMap<&str, u64>, skip_boring: bool| {
        let mut v: Vec<(&str, u64)> = m.into_iter().filter(|(f, _)| !(skip_boring && is_boring(f))).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.into_iter()
            .take(top_n)
            .map(|(name, samples)| Frame {
                name: name.to_string(),
                samples,
                percent: if total > 0 { 100.0 * samples as f64 / total as f64 } else { 0.0 },
            })
            .collect::<Vec<_>>()
    };
    let mut threads: Vec<Frame> = threads
        .into_iter()
        .map(|(name, samples)| Frame { name, samples, percent: 100.0 * samples as f64 / total.max(1) as f64 })
        .collect();
    threads.sort_by(|a, b| b.samples.cmp(&a.samples).then(a.name.cmp(&b.name)));
    Profile { weight_ns: total, top_self: top(self_counts, false), top_total: top(incl, true), threads }
}

#[cfg(test)]
mod tests {
    #[test]
    fn self_and_total() {
        let p = super::analyse("shardlog;main;a;b 3\nshardlog;main;a 1\niou-wrk-7;main;c;b 6\n", 5);
        assert_eq!(p.threads[0].name, "iou-wrk-* (io_uring async workers)");
        assert_eq!(p.weight_ns, 10);
        assert_eq!(p.top_self[0].name, "b");
        assert_eq!(p.top_self[0].samples, 9);
        assert!(p.top_total.iter().any(|f| f.name == "main" && f.samples == 10));
        assert!(!p.top_total.iter().any(|f| f.name == "shardlog"));
        assert!(p.top_total.iter().all(|f| f.samples <= 10));
    }

    #[test]
    fn blocking_threads_are_told_apart_from_the_shard_that_started_them() {
        let folded = "shard-0-1;start_thread;glommio::executor::run;poll 4\n\
                      shard-0-1;start_thread;glommio::sys::blocking::BlockingThreadOp::execute;fallocate64 2\n";
        let p = super::analyse(folded, 5);
        let names: Vec<(&str, u64)> = p.threads.iter().map(|t| (t.name.as_str(), t.samples)).collect();
        assert_eq!(names, [("shard-0-1", 4), ("glommio blocking threads", 2)]);
    }
}
