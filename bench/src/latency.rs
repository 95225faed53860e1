//! Latency histograms (HdrHistogram, microseconds, fixed range) and their summaries.
//!
//! Each producer or consumer thread owns one [`Recorder`]; the progress thread locks it once a
//! second to read and reset the interval histogram, so the lock is uncontended on the hot path.

use std::sync::Mutex;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

use crate::limits::LATENCY_MAX_US;

/// Three significant digits: 1 µs resolution below 1 ms, 0.1 % above.
const SIGNIFICANT_DIGITS: u8 = 3;

pub fn new_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, LATENCY_MAX_US, SIGNIFICANT_DIGITS).expect("static bounds are valid")
}

/// A run-long histogram plus one reset every progress tick.
pub struct Recorder {
    inner: Mutex<Hists>,
}

struct Hists {
    total: Histogram<u64>,
    interval: Histogram<u64>,
    enabled: bool,
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder {
            inner: Mutex::new(Hists { total: new_histogram(), interval: new_histogram(), enabled: true }),
        }
    }
}

impl Recorder {
    /// Records `latency_ns`; values out of range saturate rather than fail.
    pub fn record_ns(&self, latency_ns: u64) {
        let us = (latency_ns / 1_000).clamp(1, LATENCY_MAX_US);
        let mut h = self.inner.lock().expect("recorder lock");
        if h.enabled {
            h.total.saturating_record(us);
            h.interval.saturating_record(us);
        }
    }

    /// Records `now_ns - sent` for every send time, under one lock (a batch's worth).
    pub fn record_since_ns(&self, now_ns: u64, sent_ns: &[u64]) {
        let mut h = self.inner.lock().expect("recorder lock");
        if h.enabled {
            for &sent in sent_ns {
                let us = (now_ns.saturating_sub(sent) / 1_000).clamp(1, LATENCY_MAX_US);
                h.total.saturating_record(us);
                h.interval.saturating_record(us);
            }
        }
    }

    /// Records every latency in `latencies_ns`, under one lock.
    pub fn record_latencies_ns(&self, latencies_ns: &[u64]) {
        if latencies_ns.is_empty() {
            return;
        }
        let mut h = self.inner.lock().expect("recorder lock");
        if h.enabled {
            for &ns in latencies_ns {
                let us = (ns / 1_000).clamp(1, LATENCY_MAX_US);
                h.total.saturating_record(us);
                h.interval.saturating_record(us);
            }
        }
    }

    /// Whether values are being kept (a client can skip the work of computing them if not).
    pub fn is_enabled(&self) -> bool {
        self.inner.lock().expect("recorder lock").enabled
    }

    /// Stops or resumes recording (the drain of an old backlog has no meaningful latency).
    pub fn set_enabled(&self, enabled: bool) {
        self.inner.lock().expect("recorder lock").enabled = enabled;
    }

    /// Forgets everything (end of warm-up).
    pub fn reset(&self) {
        let mut h = self.inner.lock().expect("recorder lock");
        h.total.reset();
        h.interval.reset();
    }

    /// Adds this tick's values into `into` and starts a new tick.
    pub fn drain_interval(&self, into: &mut Histogram<u64>) {
        let mut h = self.inner.lock().expect("recorder lock");
        let _ = into.add(&h.interval);
        h.interval.reset();
    }

    pub fn add_total(&self, into: &mut Histogram<u64>) {
        let h = self.inner.lock().expect("recorder lock");
        let _ = into.add(&h.total);
    }
}

/// The percentiles a report shows, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    pub count: u64,
    pub mean_us: f64,
    pub p50_us: u64,
    pub p90_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub p9999_us: u64,
    pub max_us: u64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Option<Percentiles> {
        if h.is_empty() {
            return None;
        }
        Some(Percentiles {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            p9999_us: h.value_at_quantile(0.9999),
            max_us: h.max(),
        })
    }
}

/// `1234` µs as "1.23 ms", short enough for a progress line.
pub fn fmt_us(us: u64) -> String {
    if us < 1_000 {
        format!("{us} µs")
    } else if us < 1_000_000 {
        format!("{:.2} ms", us as f64 / 1e3)
    } else {
        format!("{:.2} s", us as f64 / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_saturation() {
        let r = Recorder::default();
        for i in 1..=1000u64 {
            r.record_ns(i * 1_000);
        }
        r.record_ns(u64::MAX);
        let mut h = new_histogram();
        r.add_total(&mut h);
        let p = Percentiles::of(&h).unwrap();
        assert_eq!(p.count, 1001);
        assert!((495..=505).contains(&p.p50_us));
        assert!(p.max_us >= LATENCY_MAX_US * 999 / 1000);
        assert_eq!(Percentiles::of(&new_histogram()), None);
    }
}
