//! The machine's thread wake-up cost: the floor under every request's latency.
//!
//! A Kafka request crosses threads at least twice (client → broker shard → client), and a
//! consumed record once more; each crossing wakes a sleeping thread. Two threads ping-pong one
//! byte over a Unix socket pair, each blocking in `read`, so every round trip is two wake-ups:
//! once with the threads pinned to different cores (an inter-processor interrupt each time;
//! on a VM with guest halt-polling off, the sleeping vCPU must be woken by the host) and once
//! on one core (a context switch each time). The report shows it beside loopback TCP and the
//! disk, so latencies can be read against it.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

/// Round trips per measurement, at most (each is two wake-ups).
pub const ROUND_TRIPS_MAX: u32 = 1_000_000;

/// Round-trip times of one placement, in microseconds.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct RoundTripUs {
    pub p50_us: f64,
    pub p99_us: f64,
}

/// What `shardlog-bench wakeup` prints (and `raw/wakeup.json` holds).
#[derive(Clone, Copy, Debug, Serialize, Deserialize, PartialEq)]
pub struct Wakeup {
    pub round_trips: u32,
    /// The two threads on cores 0 and 1; `None` on a single-core machine.
    pub cross_core: Option<RoundTripUs>,
    /// Both threads on core 0.
    pub same_core: RoundTripUs,
}

pub fn measure(round_trips: u32) -> Result<Wakeup> {
    if round_trips == 0 || round_trips > ROUND_TRIPS_MAX {
        bail!("round trips must be in 1..={ROUND_TRIPS_MAX}, not {round_trips}");
    }
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let cross_core = if cores >= 2 { Some(ping_pong(round_trips, 0, 1)?) } else { None };
    let same_core = ping_pong(round_trips, 0, 0)?;
    Ok(Wakeup { round_trips, cross_core, same_core })
}

fn ping_pong(round_trips: u32, core_a: usize, core_b: usize) -> Result<RoundTripUs> {
    let (mut a, mut b) = UnixStream::pair().context("socketpair")?;
    let echo = std::thread::Builder::new()
        .name("wakeup-echo".into())
        .spawn(move || -> Result<()> {
            pin_current_thread(core_b)?;
            let mut byte = [0u8; 1];
            for _ in 0..round_trips {
                b.read_exact(&mut byte)?;
                b.write_all(&byte)?;
            }
            Ok(())
        })
        .context("spawning the echo thread")?;
    let original = current_affinity()?;
    pin_current_thread(core_a)?;
    let mut samples_ns = Vec::with_capacity(round_trips as usize);
    let mut byte = [7u8; 1];
    for _ in 0..round_trips {
        let start = std::time::Instant::now();
        a.write_all(&byte)?;
        a.read_exact(&mut byte)?;
        samples_ns.push(start.elapsed().as_nanos() as u64);
    }
    echo.join().map_err(|_| anyhow::anyhow!("the echo thread panicked"))??;
    set_affinity(&original).context("restoring the thread's cores")?;
    samples_ns.sort_unstable();
    let at = |q: f64| samples_ns[((samples_ns.len() - 1) as f64 * q).round() as usize] as f64 / 1000.0;
    Ok(RoundTripUs { p50_us: at(0.50), p99_us: at(0.99) })
}

fn pin_current_thread(core: usize) -> Result<()> {
    // SAFETY: a zeroed cpu_set_t is a valid empty set; CPU_SET stays within it for core < 1024.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    if core >= libc::CPU_SETSIZE as usize {
        bail!("core {core} beyond CPU_SETSIZE");
    }
    unsafe { libc::CPU_SET(core, &mut set) };
    set_affinity(&set).with_context(|| format!("pinning to core {core}"))
}

fn current_affinity() -> Result<libc::cpu_set_t> {
    // SAFETY: pid 0 is the calling thread; the kernel fills a cpu_set_t of the size passed.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error()).context("sched_getaffinity");
    }
    Ok(set)
}

fn set_affinity(set: &libc::cpu_set_t) -> std::io::Result<()> {
    // SAFETY: pid 0 is the calling thread; the set is a valid cpu_set_t of the size passed.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), set) };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn measures_both_placements() {
        let w = measure(200).expect("measure");
        assert_eq!(w.round_trips, 200);
        for rt in w.cross_core.iter().chain([&w.same_core]) {
            assert!(rt.p50_us > 0.0 && rt.p99_us >= rt.p50_us, "{w:?}");
        }
        // The calling thread gets its cores back.
        assert_eq!(w.cross_core.is_some(), std::thread::available_parallelism().unwrap().get() >= 2);
        let json = serde_json::to_string(&w).expect("json");
        assert_eq!(serde_json::from_str::<Wakeup>(&json).expect("parse"), w);
    }

    #[test]
    fn rejects_unbounded_counts() {
        assert!(measure(0).is_err());
        assert!(measure(ROUND_TRIPS_MAX + 1).is_err());
    }
}
