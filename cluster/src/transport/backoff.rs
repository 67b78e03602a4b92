//! Bounded exponential backoff with jitter for redialling.

use std::time::Duration;

/// Delays double from `initial` up to `max`; each delay is drawn uniformly from its upper
/// half ("equal jitter"), so peers that lost a node at the same moment do not redial in
/// lockstep. The generator is SplitMix64: a few lines, seedable for simulations, and only
/// ever used for jitter (correctness does not depend on it).
#[derive(Debug, Clone)]
pub(crate) struct Backoff {
    initial: Duration,
    max: Duration,
    current: Duration,
    rng_state: u64,
}

impl Backoff {
    pub(crate) fn new(initial: Duration, max: Duration, seed: u64) -> Backoff {
        Backoff {
            initial,
            max,
            current: initial,
            rng_state: seed,
        }
    }

    /// Back to the initial delay, after a connection succeeded.
    pub(crate) fn reset(&mut self) {
        self.current = self.initial;
    }

    /// The next delay to wait.
    pub(crate) fn next_delay(&mut self) -> Duration {
        let base = self.current;
        self.current = (base * 2).min(self.max);
        let half = base / 2;
        let fraction = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        half + half.mul_f64(fraction)
    }

    fn next_u64(&mut self) -> u64 {
        self.rng_state = self.rng_state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.rng_state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// A seed from the OS, or from the clock if the OS has none to give.
pub(crate) fn os_seed() -> u64 {
    let mut bytes = [0u8; 8];
    if getrandom::fill(&mut bytes).is_ok() {
        return u64::from_le_bytes(bytes);
    }
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_nanos() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Delays stay within [base/2, base], double up to the cap, reset, and a fixed seed gives
    /// a fixed sequence.
    #[test]
    fn doubles_with_jitter_up_to_the_cap() {
        let initial = Duration::from_millis(100);
        let max = Duration::from_millis(800);
        let mut backoff = Backoff::new(initial, max, 42);
        let mut base = initial;
        let mut first_run = Vec::new();
        for _ in 0..8 {
            let delay = backoff.next_delay();
            assert!(
                delay >= base / 2 && delay <= base,
                "{delay:?} for base {base:?}"
            );
            first_run.push(delay);
            base = (base * 2).min(max);
        }
        backoff.reset();
        assert!(backoff.next_delay() <= initial);
        let mut again = Backoff::new(initial, max, 42);
        let second_run: Vec<Duration> = (0..8).map(|_| again.next_delay()).collect();
        assert_eq!(first_run, second_run);
    }
}
