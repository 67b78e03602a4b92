//! Open-loop pacing: ops are due at fixed times whatever the server does, and latency is
//! measured from when an op was due, so queueing behind a stall is counted (no coordinated
//! omission).

use std::time::Duration;

use tokio::time::Instant;

/// Releases op numbers at a fixed rate from a start time.
pub struct Pacer {
    start: Instant,
    interval: Duration,
    next: u64,
    until: Instant,
}

impl Pacer {
    /// `rate` ops per second for `duration`, starting now.
    pub fn new(rate: f64, duration: Duration) -> Self {
        let start = Instant::now();
        let interval = Duration::from_secs_f64(1.0 / rate.max(0.001));
        Self {
            start,
            interval,
            next: 0,
            until: start + duration,
        }
    }

    /// Waits until at least one op is due and returns the due times of every op due by now
    /// (several at once when the timer is coarser than the interval); empty when the run is over.
    pub async fn due(&mut self) -> Vec<Instant> {
        let first_due = self.start + self.interval.mul_f64(self.next as f64);
        if first_due >= self.until {
            return Vec::new();
        }
        tokio::time::sleep_until(first_due).await;
        let now = Instant::now();
        let mut due = Vec::new();
        loop {
            let at = self.start + self.interval.mul_f64(self.next as f64);
            if at > now || at >= self.until {
                break;
            }
            due.push(at);
            self.next += 1;
        }
        due
    }
}
