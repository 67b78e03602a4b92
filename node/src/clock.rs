//! The node's clock for event times: wall time read once at start, advanced by the monotonic
//! clock, so a step of the system clock (a bad NTP correction, an operator's `date -s`) does not
//! move list time.
//!
//! Event times matter beyond display: a list's op-id window keeps op ids for at least ten
//! minutes *of list time*. If event times followed a wall clock stepped forward by fifteen
//! minutes, the next event would prune the window to its 10,000-op floor and a client retrying
//! an op from before the step would have it applied twice. The list actor stamps each command
//! with this clock (not the gateway's, which may be another node's) and the domain keeps a
//! list's event time from ever going below its previous event's.
//!
//! It does not correct a clock that was wrong when the node started; run NTP (a cluster also
//! compares clocks across nodes, see ARCHITECTURE.md).

use std::fmt::Debug;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

// tokio's instant is the monotonic clock in production and the simulated one under a paused
// runtime (tests, the deterministic simulation).
use tokio::time::Instant;

/// A source of event times in milliseconds since the Unix epoch.
pub trait Clock: Debug + Send + Sync + 'static {
    /// Now, in milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
}

/// Wall time at construction plus monotonic time elapsed since: immune to wall-clock steps.
#[derive(Debug)]
pub struct MonotonicClock {
    wall_at_start_ms: u64,
    started: Instant,
}

impl MonotonicClock {
    /// A clock starting at the system's wall time now.
    pub fn new() -> Self {
        Self::from_wall(system_now_ms)
    }

    /// A clock starting at what `wall` says now; `wall` is read this once and never again, so
    /// later steps of that clock do not matter.
    pub fn from_wall(wall: impl FnOnce() -> u64) -> Self {
        Self::starting_at(wall())
    }

    /// A clock starting at `wall_ms` (tests pick the start).
    pub fn starting_at(wall_ms: u64) -> Self {
        Self {
            wall_at_start_ms: wall_ms,
            started: Instant::now(),
        }
    }
}

impl Default for MonotonicClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for MonotonicClock {
    fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.wall_at_start_ms.saturating_add(elapsed)
    }
}

/// A clock that only moves when told to: for tests and the deterministic simulation.
#[derive(Debug, Default)]
pub struct ManualClock {
    now_ms: std::sync::atomic::AtomicU64,
}

impl ManualClock {
    /// A clock showing `now_ms`.
    pub fn at(now_ms: u64) -> Self {
        Self {
            now_ms: std::sync::atomic::AtomicU64::new(now_ms),
        }
    }

    /// Shows `now_ms` from now on (it may go backwards, as a stepped wall clock does).
    pub fn set(&self, now_ms: u64) {
        self.now_ms
            .store(now_ms, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.now_ms.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The system's wall clock, read afresh every time (steps and all): what the node compares
/// across a pause and stamps its gossip generation with. A simulation injects its own.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        system_now_ms()
    }
}

/// The system's wall time in milliseconds since the Unix epoch (0 if the clock is before it).
pub fn system_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_millis()
        .try_into()
        .unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Goal: the clock starts at the wall time it was given and advances with real time only.
    #[test]
    fn advances_with_monotonic_time_from_its_start() {
        let clock = MonotonicClock::starting_at(1_000_000);
        let first = clock.now_ms();
        assert!((1_000_000..1_000_000 + 1_000).contains(&first));
        let later = clock.now_ms();
        assert!(later >= first, "never goes back");
    }
}
