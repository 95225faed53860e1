//! `Throttler`: Kafka's `kafka.utils.Throttler` as the log cleaner uses it for
//! `log.cleaner.io.max.bytes.per.second` — the cleaner reports every byte it reads and
//! writes; once per check interval the observed rate is compared with the desired one and, if
//! it is higher, the cleaner sleeps long enough to bring the interval's average down to it.
//!
//! One refinement over Kafka: a check also happens as soon as the bytes of the current
//! interval exceed what the rate allows for a whole interval, so a pass shorter than an
//! interval cannot burst past the limit unchecked (Kafka waits for the interval to end).
//!
//! The decision ([`Throttler::observe`]) is a pure function of the bytes and the clock, so it
//! is tested without sleeping; [`Throttler::maybe_throttle`] sleeps on the shard's timer, which
//! lets produce and fetch run meanwhile (the cleaner holds no partition lock while building).

use std::time::{Duration, Instant};

/// Kafka's `LogCleaner` checks its throttler every 300 ms.
pub const CHECK_INTERVAL_MS: u64 = 300;
/// The longest single nap: a huge observation at a tiny rate must not park the cleaner for
/// hours in one step (every wait has a bound, and other partitions wait for their turn); the
/// remainder is carried into the next interval, so the average rate still holds.
const SLEEP_MAX_MS: u64 = 10_000;

#[derive(Debug, Clone)]
pub struct Throttler {
    /// `None`: unlimited (Kafka's default `Double.MAX_VALUE`).
    bytes_per_second: Option<f64>,
    period_start: Instant,
    observed_bytes: f64,
}

impl Throttler {
    /// A throttler at `bytes_per_second`; a non-finite or non-positive rate, or one too large
    /// to matter, means unlimited.
    pub fn new(bytes_per_second: f64, now: Instant) -> Self {
        let limited = bytes_per_second.is_finite() && bytes_per_second > 0.0 && bytes_per_second < 1e18;
        Throttler {
            bytes_per_second: limited.then_some(bytes_per_second),
            period_start: now,
            observed_bytes: 0.0,
        }
    }

    pub fn unlimited() -> Self {
        Throttler::new(f64::INFINITY, Instant::now())
    }

    pub fn is_unlimited(&self) -> bool {
        self.bytes_per_second.is_none()
    }

    /// Counts `bytes` at `now` and returns how long to sleep (zero for no nap). When an
    /// interval of [`CHECK_INTERVAL_MS`] is complete, or its bytes exceed an interval's worth
    /// at the rate, the rate is checked and the count starts over from the end of the nap
    /// returned.
    pub fn observe(&mut self, bytes: u64, now: Instant) -> Duration {
        let Some(rate) = self.bytes_per_second else { return Duration::ZERO };
        self.observed_bytes += bytes as f64;
        let elapsed = now.saturating_duration_since(self.period_start);
        let interval_budget_bytes = rate * CHECK_INTERVAL_MS as f64 / 1000.0;
        let interval_done = elapsed > Duration::from_millis(CHECK_INTERVAL_MS);
        if (!interval_done && self.observed_bytes <= interval_budget_bytes) || self.observed_bytes <= 0.0 {
            return Duration::ZERO;
        }
        let elapsed_ms = elapsed.as_millis() as f64;
        // The time these bytes should have taken at the desired rate, minus what they took.
        let wanted_ms = (self.observed_bytes / rate * 1000.0 - elapsed_ms).round();
        let sleep_ms = if wanted_ms > 0.0 { (wanted_ms as u64).min(SLEEP_MAX_MS) } else { 0 };
        // Bytes the capped nap does not pay for stay on the books for the next interval.
        let unpaid_ms = if wanted_ms > 0.0 { wanted_ms - sleep_ms as f64 } else { 0.0 };
        self.observed_bytes = unpaid_ms * rate / 1000.0;
        let sleep = Duration::from_millis(sleep_ms);
        self.period_start = now + sleep;
        sleep
    }

    /// [`Throttler::observe`], then the nap on the shard's timer.
    pub async fn maybe_throttle(&mut self, bytes: u64) {
        let sleep = self.observe(bytes, Instant::now());
        if !sleep.is_zero() {
            glommio::timer::sleep(sleep).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unlimited_never_sleeps() {
        let start = Instant::now();
        for rate in [f64::MAX, f64::INFINITY, f64::NAN, 0.0, -1.0] {
            let mut t = Throttler::new(rate, start);
            assert!(t.is_unlimited());
            assert_eq!(t.observe(u64::MAX, start + Duration::from_secs(1)), Duration::ZERO);
        }
    }

    #[test]
    fn sleeps_to_bring_the_interval_down_to_the_rate() {
        let start = Instant::now();
        let mut t = Throttler::new(1000.0, start);
        // Inside the check interval and its budget (300 bytes): counted, no nap yet.
        assert_eq!(t.observe(200, start + Duration::from_millis(100)), Duration::ZERO);
        // 1000 bytes in 400 ms at 1000 B/s should have taken 1000 ms: sleep 600 ms.
        let at = start + Duration::from_millis(400);
        assert_eq!(t.observe(800, at), Duration::from_millis(600));
        // The next interval starts after the nap: 100 bytes over 400 ms is under the rate.
        let later = at + Duration::from_millis(600 + 400);
        assert_eq!(t.observe(100, later), Duration::ZERO);
    }

    #[test]
    fn a_burst_over_the_interval_budget_naps_before_the_interval_ends() {
        let start = Instant::now();
        let mut t = Throttler::new(1000.0, start);
        // 500 bytes in 50 ms: more than the 300 an interval allows, so it naps at once.
        assert_eq!(t.observe(500, start + Duration::from_millis(50)), Duration::from_millis(450));
    }

    #[test]
    fn a_slow_natural_rate_is_not_throttled() {
        let start = Instant::now();
        let mut t = Throttler::new(1_000_000.0, start);
        assert_eq!(t.observe(1000, start + Duration::from_secs(1)), Duration::ZERO);
    }

    #[test]
    fn a_huge_observation_naps_in_capped_steps_and_keeps_the_debt() {
        let start = Instant::now();
        let mut t = Throttler::new(100.0, start);
        // 10_000 bytes at 100 B/s = 100 s; one nap is at most SLEEP_MAX_MS.
        let at = start + Duration::from_millis(500);
        let first = t.observe(10_000, at);
        assert_eq!(first, Duration::from_millis(SLEEP_MAX_MS));
        // The unpaid part makes the next check nap again even without new bytes.
        let next = at + first + Duration::from_millis(CHECK_INTERVAL_MS + 1);
        assert!(t.observe(0, next) > Duration::ZERO);
    }
}
