//! The run's trace: what the simulation decided and what clients saw, in order, with the
//! simulated time. Its hash is what a replay is compared by.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// A shared, append-only trace.
#[derive(Clone, Default)]
pub struct Trace {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Trace {
    /// Records `what` at the current simulated time.
    pub fn record(&self, what: impl Into<String>) {
        let at = turmoil::sim_elapsed().unwrap_or(Duration::ZERO);
        self.record_at(at, what);
    }

    /// Records `what` at `at` (the driver, outside any host, knows the time itself).
    pub fn record_at(&self, at: Duration, what: impl Into<String>) {
        let line = format!("{:>8} {}", at.as_millis(), what.into());
        self.lock().push(line);
    }

    /// Every line so far.
    pub fn lines(&self) -> Vec<String> {
        self.lock().clone()
    }

    /// FNV-1a over every line (stable across platforms and toolchains).
    pub fn hash(&self) -> u64 {
        fnv1a(
            self.lock()
                .iter()
                .flat_map(|line| line.bytes().chain([b'\n'])),
        )
    }

    fn lock(&self) -> MutexGuard<'_, Vec<String>> {
        self.lines
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// FNV-1a, 64 bits.
pub fn fnv1a(bytes: impl IntoIterator<Item = u8>) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for byte in bytes {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}
