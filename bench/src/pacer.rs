//! When each message is meant to be sent.
//!
//! Open loop: message `i` of a producer is due at `start + i / rate`, whatever happened to the
//! ones before it. If the broker stalls, the schedule does not: messages pile up behind it and
//! each carries its *intended* time, so their latency includes the stall (no coordinated
//! omission). Closed loop: a message is due when the previous one was handed over, and its time
//! is that moment.

use crate::clock;

pub enum Pacer {
    Closed,
    Open { start_ns: u64, interval_ns: f64, sent: u64 },
}

/// What to do before sending the next message.
pub enum Due {
    /// Send now, stamped with this intended time.
    Now(u64),
    /// Nothing is due for this many nanoseconds.
    Wait(u64),
}

impl Pacer {
    /// `rate_msgs_per_s == 0` means closed loop.
    pub fn new(rate_msgs_per_s: f64, start_ns: u64) -> Pacer {
        if rate_msgs_per_s <= 0.0 {
            Pacer::Closed
        } else {
            Pacer::Open { start_ns, interval_ns: 1e9 / rate_msgs_per_s, sent: 0 }
        }
    }

    pub fn due(&mut self) -> Due {
        match self {
            Pacer::Closed => Due::Now(clock::now_ns()),
            Pacer::Open { start_ns, interval_ns, sent } => {
                let due_ns = *start_ns + (*sent as f64 * *interval_ns) as u64;
                let now = clock::now_ns();
                if due_ns <= now {
                    *sent += 1;
                    Due::Now(due_ns)
                } else {
                    Due::Wait(due_ns - now)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_loop_keeps_its_schedule_when_behind() {
        // Started 1 s ago at 1000 msg/s: 1000 messages are due at once, each with its own time.
        let start = clock::now_ns() - 1_000_000_000;
        let mut p = Pacer::new(1000.0, start);
        let mut stamps = Vec::new();
        while let Due::Now(t) = p.due() {
            stamps.push(t);
            assert!(stamps.len() <= 1002);
        }
        assert!((1000..=1002).contains(&stamps.len()));
        assert_eq!(stamps[0], start);
        assert_eq!(stamps[1] - stamps[0], 1_000_000);
    }
}
