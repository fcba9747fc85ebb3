//! Capped exponential backoff with jitter, for redialling a peer and for
//! retrying a ledger write that reached no copy.
//!
//! The delay before retry `n` (0-based) is drawn uniformly from
//! `[d/2, d]` where `d = min(max, initial * 2^n)` ("equal jitter"): never
//! zero, so a failing peer is never hammered, and spread out, so sleds that
//! lost a common peer at the same moment do not redial in lockstep. The
//! randomness is a parameter so tests are deterministic.

use std::time::Duration;

/// How a retry loop backs off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BackoffConfig {
    /// Upper end of the first delay.
    pub initial: Duration,
    /// Largest upper end of any delay.
    pub max: Duration,
}

impl Default for BackoffConfig {
    /// 100 ms doubling up to 10 s: a peer that comes back is found within
    /// about ten seconds, and a dead one costs one dial every 5 to 10 s.
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(10),
        }
    }
}

/// The state of one retry loop.
#[derive(Clone, Debug)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
}

impl Backoff {
    /// A loop that has not failed yet.
    pub fn new(config: BackoffConfig) -> Self {
        Self { config, attempt: 0 }
    }

    /// Failures since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// Forgets past failures: the next delay is drawn from the initial range.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }

    /// The delay before the next retry, with `unit` a random number in
    /// `[0, 1]` (clamped) choosing where in `[d/2, d]` it falls.
    pub fn next_delay_with(&mut self, unit: f64) -> Duration {
        let ceiling = self.ceiling();
        self.attempt = self.attempt.saturating_add(1);
        let half = ceiling / 2;
        half + (ceiling - half).mul_f64(unit.clamp(0.0, 1.0))
    }

    /// [`Self::next_delay_with`] with thread-local randomness.
    pub fn next_delay(&mut self) -> Duration {
        self.next_delay_with(rand::random_range(0.0..=1.0))
    }

    fn ceiling(&self) -> Duration {
        let max = self.config.max.max(self.config.initial);
        // 2^31 times any non-zero initial delay is far past any sane cap.
        let factor = 1u32 << self.attempt.min(31);
        self.config
            .initial
            .checked_mul(factor)
            .unwrap_or(max)
            .min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn backoff() -> Backoff {
        Backoff::new(BackoffConfig {
            initial: 100 * MS,
            max: 1000 * MS,
        })
    }

    #[test]
    fn doubles_then_caps() {
        let mut b = backoff();
        let tops: Vec<_> = (0..7).map(|_| b.next_delay_with(1.0)).collect();
        assert_eq!(tops, [100, 200, 400, 800, 1000, 1000, 1000].map(|n| n * MS));
    }

    #[test]
    fn jitter_spans_upper_half() {
        let mut b = backoff();
        assert_eq!(b.next_delay_with(0.0), 50 * MS);
        assert_eq!(b.next_delay_with(0.5), 150 * MS);
        assert_eq!(b.next_delay_with(7.0), 400 * MS, "unit is clamped");
        assert_eq!(b.next_delay_with(-1.0), 400 * MS, "unit is clamped");
        // Capped from here on: [500 ms, 1 s].
        for _ in 0..100 {
            let d = b.next_delay();
            assert!((500 * MS..=1000 * MS).contains(&d), "{d:?}");
        }
    }

    #[test]
    fn reset_starts_over_and_many_failures_do_not_overflow() {
        let mut b = backoff();
        for _ in 0..1000 {
            b.next_delay_with(1.0);
        }
        assert_eq!(b.attempts(), 1000);
        assert_eq!(b.next_delay_with(1.0), 1000 * MS);
        b.reset();
        assert_eq!(b.next_delay_with(1.0), 100 * MS);
    }
}
