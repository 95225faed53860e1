//! The broker seen from outside: CPU time and RSS from `/proc/<pid>`, and a `perf record`
//! of it limited to one phase of a run.
//!
//! Reading `/proc` works for any local broker process (shardlog or a peer), so CPU-seconds
//! per GB are computed the same way for both.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::limits;

/// One reading of a process's resource use.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProcSample {
    /// User + system CPU seconds since the process started (all threads).
    pub cpu_s: f64,
    pub rss_bytes: u64,
}

pub fn sample(pid: u32) -> Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("pid {pid}"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    Ok(ProcSample { cpu_s: parse_cpu_s(&stat, clock_ticks_per_s())?, rss_bytes: parse_rss_bytes(&status)? })
}

fn clock_ticks_per_s() -> f64 {
    // SAFETY: sysconf has no memory effects.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime and stime are fields 14 and 15; the command name (field 2) may contain spaces and
/// parentheses, so count from its closing parenthesis.
fn parse_cpu_s(stat: &str, ticks_per_s: f64) -> Result<f64> {
    let after = stat.rsplit_once(')').map(|(_, rest)| rest).context("no ')' in /proc stat")?;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let (Some(u), Some(s)) = (fields.get(11), fields.get(12)) else { bail!("short /proc stat") };
    Ok((u.parse::<u64>()? + s.parse::<u64>()?) as f64 / ticks_per_s)
}

fn parse_rss_bytes(status: &str) -> Result<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).context("no VmRSS")?;
    let kib: u64 = line.split_whitespace().nth(1).context("VmRSS value")?.parse()?;
    Ok(kib * 1024)
}

/// `perf record` attached to a process, stopped with SIGINT (so it writes a complete file).
pub struct Profiler {
    child: Child,
    pub out: PathBuf,
}

impl Profiler {
    /// cpu-clock because hardware counters are not available on these machines; DWARF call
    /// graphs because release builds keep no frame pointers (so `-g` alone gives broken
    /// stacks). Each sample carries 16 KiB of stack, so `hz` × seconds × 16 KiB is the file.
    pub fn start(pid: u32, out: &Path, hz: u32) -> Result<Profiler> {
        let child = Command::new("perf")
            .args(["record", "-e", "cpu-clock", "-F", &hz.to_string(), "--call-graph", "dwarf,16384", "-p"])
            .arg(pid.to_string())
            .arg("-o")
            .arg(out)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting perf (apt-get install linux-perf)")?;
        // perf needs a moment to attach; samples before that would be lost, not wrong.
        std::thread::sleep(Duration::from_millis(300));
        Ok(Profiler { child, out: out.to_path_buf() })
    }

    pub fn stop(mut self) -> Result<()> {
        // SAFETY: plain kill(2) on our own child's pid.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGINT) };
        let deadline = Instant::now() + Duration::from_secs(limits::ADMIN_TIMEOUT_S);
        loop {
            if let Some(status) = self.child.try_wait()? {
                // perf exits non-zero on SIGINT in some versions; the file is what matters.
                let _ = status;
                return Ok(());
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                bail!("perf did not stop within {} s", limits::ADMIN_TIMEOUT_S);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_proc_files() {
        let stat = "1234 (shard log) S 1 1234 1234 0 -1 4194560 500 0 0 0 250 50 0 0 20 0 3 0 100 0";
        assert_eq!(parse_cpu_s(stat, 100.0).unwrap(), 3.0);
        assert_eq!(parse_rss_bytes("Name:\tx\nVmRSS:\t   2048 kB\n").unwrap(), 2 << 20);
        let me = sample(std::process::id()).unwrap();
        assert!(me.rss_bytes > 0);
    }
}
