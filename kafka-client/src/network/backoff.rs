//! Exponential backoff with jitter (KIP-580, KIP-601): each failure doubles
//! the wait from `base` up to `max`, and a random ±20% spreads clients that
//! failed together.

use std::time::Duration;

/// A backoff policy and its failure count.
#[derive(Debug, Clone)]
pub struct Backoff {
    base: Duration,
    max: Duration,
    failures: u32,
    seed: u64,
}

impl Backoff {
    /// Starts at `base`, never waits longer than `max` (plus jitter).
    pub fn new(base: Duration, max: Duration) -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0x9e37_79b9, |d| d.as_nanos() as u64)
            | 1;
        Self {
            base,
            max: max.max(base),
            failures: 0,
            seed,
        }
    }

    /// Records a failure and returns how long to wait before the next try.
    pub fn next_delay(&mut self) -> Duration {
        let exponent = self.failures.min(31);
        self.failures = self.failures.saturating_add(1);
        let raw = self
            .base
            .saturating_mul(1u32 << exponent.min(20))
            .min(self.max);
        // xorshift64: enough randomness to de-synchronise retries.
        self.seed ^= self.seed << 13;
        self.seed ^= self.seed >> 7;
        self.seed ^= self.seed << 17;
        let jitter = (self.seed % 401) as f64 / 1000.0 - 0.2; // -0.2 ..= 0.2
        raw.mul_f64(1.0 + jitter)
    }

    /// Forgets the failures after a success.
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failures since the last success.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_up_to_the_max_within_twenty_percent() {
        let mut backoff = Backoff::new(Duration::from_millis(50), Duration::from_millis(1000));
        let expected = [50u64, 100, 200, 400, 800, 1000, 1000];
        for want in expected {
            let got = backoff.next_delay().as_secs_f64() * 1000.0;
            let want = want as f64;
            assert!(
                got >= want * 0.8 - 0.001 && got <= want * 1.2 + 0.001,
                "{got} vs {want}"
            );
        }
        backoff.reset();
        assert!(backoff.next_delay() <= Duration::from_millis(60));
    }
}
