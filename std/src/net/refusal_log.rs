//! Warnings about refused connections, at most one line per reason per
//! interval.
//!
//! Whoever can reach the peer port can make the listener refuse
//! connections as fast as it can open them; a warning for each would let
//! them flood the log (and the disk under it). Every refusal is still
//! counted ([`super::NetStats::refused`]); the log shows the first of each
//! reason in an interval, and after the interval one line saying how many
//! of that reason it left out.
//!
//! A small type of our own rather than a crate: `governor` (the usual
//! choice) brings a keyed, token-bucket rate limiter with its own clock
//! and several dependencies to answer one question per event ("was one of
//! these logged in the last interval?"), and would still not keep the
//! count of what it refused, which is the point here.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use super::stats::{HandshakeRefusal, lock};

/// How often each reason may be logged.
pub(crate) const REFUSAL_LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The rate limit of refusal warnings, shared by the listener's tasks.
pub(crate) struct RefusalLog {
    interval: Duration,
    reasons: Mutex<[Slot; HandshakeRefusal::COUNT]>,
}

#[derive(Clone, Copy, Default)]
struct Slot {
    /// When a line about this reason was last written.
    last_line: Option<Instant>,
    /// Refusals of this reason not logged since that line.
    suppressed: u64,
}

impl RefusalLog {
    pub(crate) fn new(interval: Duration) -> Self {
        Self {
            interval,
            reasons: Mutex::new([Slot::default(); HandshakeRefusal::COUNT]),
        }
    }

    /// Logs one refusal, unless a line about `reason` was written less than
    /// an interval ago; then it is only counted as suppressed.
    pub(crate) fn refused(&self, reason: HandshakeRefusal, what: &str) {
        if let Some(suppressed) = self.admit(reason, Instant::now()) {
            tracing::warn!(
                reason = reason.label(),
                suppressed_before = suppressed,
                "{what}"
            );
        }
    }

    /// Writes one line per reason whose suppressed refusals are an interval
    /// old, with their count. The listener calls it every interval.
    pub(crate) fn report_suppressed(&self) {
        for (reason, suppressed) in self.take_suppressed(Instant::now()) {
            tracing::warn!(
                reason = reason.label(),
                suppressed,
                "refused connections not logged in the last {:?}",
                self.interval
            );
        }
    }

    /// Whether a refusal of `reason` at `now` is logged; if so, with how
    /// many of its reason were suppressed before it and not yet reported.
    fn admit(&self, reason: HandshakeRefusal, now: Instant) -> Option<u64> {
        let mut reasons = lock(&self.reasons);
        let slot = reasons.get_mut(reason as usize)?;
        match slot.last_line {
            Some(last) if now.saturating_duration_since(last) < self.interval => {
                slot.suppressed = slot.suppressed.saturating_add(1);
                None
            }
            _ => {
                slot.last_line = Some(now);
                Some(std::mem::take(&mut slot.suppressed))
            }
        }
    }

    /// The suppressed counts due for a line at `now` (their reason's last
    /// line is an interval old), reset; that line counts as the reason's
    /// line of this interval.
    fn take_suppressed(&self, now: Instant) -> Vec<(HandshakeRefusal, u64)> {
        let mut reasons = lock(&self.reasons);
        HandshakeRefusal::ALL
            .iter()
            .zip(reasons.iter_mut())
            .filter(|(_, slot)| {
                slot.suppressed > 0
                    && slot
                        .last_line
                        .is_none_or(|last| now.saturating_duration_since(last) >= self.interval)
            })
            .map(|(reason, slot)| {
                slot.last_line = Some(now);
                (*reason, std::mem::take(&mut slot.suppressed))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_reason_per_interval_and_the_rest_counted() {
        let log = RefusalLog::new(Duration::from_secs(10));
        let start = Instant::now();
        let at = |secs: u64| start + Duration::from_secs(secs);

        // A flood of one reason: the first is logged, the rest counted.
        assert_eq!(log.admit(HandshakeRefusal::Protocol, at(0)), Some(0));
        for _ in 0..1000 {
            assert_eq!(log.admit(HandshakeRefusal::Protocol, at(1)), None);
        }
        // Another reason has its own allowance.
        assert_eq!(log.admit(HandshakeRefusal::UnknownIssuer, at(1)), Some(0));
        assert_eq!(log.admit(HandshakeRefusal::UnknownIssuer, at(2)), None);

        // Not before the interval is over...
        assert!(log.take_suppressed(at(9)).is_empty());
        // ...then one line per reason with its count.
        assert_eq!(
            log.take_suppressed(at(11)),
            [
                (HandshakeRefusal::UnknownIssuer, 1),
                (HandshakeRefusal::Protocol, 1000)
            ]
        );
        assert!(log.take_suppressed(at(12)).is_empty());

        // That line was this interval's: the flood goes on, counted.
        assert_eq!(log.admit(HandshakeRefusal::Protocol, at(12)), None);
        assert!(log.take_suppressed(at(20)).is_empty());
        assert_eq!(
            log.take_suppressed(at(21)),
            [(HandshakeRefusal::Protocol, 1)]
        );
        // A refusal after a quiet interval is logged again.
        assert_eq!(log.admit(HandshakeRefusal::Protocol, at(40)), Some(0));
        assert_eq!(log.admit(HandshakeRefusal::Protocol, at(41)), None);
        // If it comes before the report, it carries the count.
        assert_eq!(log.admit(HandshakeRefusal::Protocol, at(50)), Some(1));
    }
}
