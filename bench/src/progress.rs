//! The live progress line: once a second on stderr, rates and the last second's p99.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::consumer::ConsumerStats;
use crate::latency::{fmt_us, new_histogram};
use crate::producer::ProducerStats;

/// Everything the line reads; the phase name is set by the run as it moves on.
pub struct Progress {
    pub producers: Vec<Arc<ProducerStats>>,
    pub consumers: Vec<Arc<ConsumerStats>>,
    pub phase: Mutex<&'static str>,
    pub stop: AtomicBool,
    pub enabled: bool,
}

impl Progress {
    pub fn set_phase(&self, phase: &'static str) {
        *self.phase.lock().expect("phase lock") = phase;
    }

    fn totals(&self) -> (u64, u64, u64, u64, u64) {
        let (mut pm, mut pb, mut cm, mut cb, mut err) = (0, 0, 0, 0, 0);
        for p in &self.producers {
            pm += p.acked.load(Relaxed);
            pb += p.acked_bytes.load(Relaxed);
            err += p.errors.load(Relaxed);
        }
        for c in &self.consumers {
            cm += c.messages.load(Relaxed);
            cb += c.bytes.load(Relaxed);
            err += c.errors.load(Relaxed);
        }
        (pm, pb, cm, cb, err)
    }

    /// Runs on its own thread until `stop`.
    pub fn run(&self) {
        let start = Instant::now();
        let mut last = self.totals();
        let mut last_t = Instant::now();
        let mut ack = new_histogram();
        let mut e2e = new_histogram();
        while !self.stop.load(Relaxed) {
            std::thread::sleep(Duration::from_millis(100));
            if last_t.elapsed() < Duration::from_secs(1) {
                continue;
            }
            let now = self.totals();
            let dt = last_t.elapsed().as_secs_f64();
            last_t = Instant::now();
            ack.reset();
            e2e.reset();
            for p in &self.producers {
                p.ack_latency.drain_interval(&mut ack);
            }
            for c in &self.consumers {
                c.e2e_latency.drain_interval(&mut e2e);
            }
            if self.enabled {
                let p99 = |h: &hdrhistogram::Histogram<u64>| {
                    if h.is_empty() {
                        "-".to_string()
                    } else {
                        fmt_us(h.value_at_quantile(0.99))
                    }
                };
                eprintln!(
                    "[{:>4.0} s] {:<8} produce {:>10.0} msg/s {:>8.1} MiB/s ack p99 {:>9} | consume {:>10.0} msg/s {:>8.1} MiB/s e2e p99 {:>9} | errors {}",
                    start.elapsed().as_secs_f64(),
                    *self.phase.lock().expect("phase lock"),
                    (now.0 - last.0) as f64 / dt,
                    (now.1 - last.1) as f64 / dt / (1 << 20) as f64,
                    p99(&ack),
                    (now.2 - last.2) as f64 / dt,
                    (now.3 - last.3) as f64 / dt / (1 << 20) as f64,
                    p99(&e2e),
                    now.4,
                );
            }
            last = now;
        }
    }
}
