//! Time, as the caller tells it, and how long the machine waits.

use core::time::Duration;

/// A point in time: milliseconds since an origin the caller picks. It must
/// never go backwards (a monotonic clock); the machine only compares and
/// adds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Instant(pub u64);

impl Instant {
    /// `millis` milliseconds after the origin.
    pub const fn from_millis(millis: u64) -> Self {
        Self(millis)
    }

    /// Milliseconds since the origin.
    pub const fn millis(self) -> u64 {
        self.0
    }

    /// `self + duration`, saturating.
    pub fn after(self, duration: Duration) -> Self {
        let millis = u64::try_from(duration.as_millis()).unwrap_or(u64::MAX);
        Self(self.0.saturating_add(millis))
    }
}

/// How long the machine waits between calls, and when it gives up on a
/// coordinator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    /// Between two polls of a running coordinator's status.
    pub poll_interval: Duration,
    /// Before calling a sled again after it was unreachable, refused, or
    /// was not ready (it had not learned the last commit yet, or was still
    /// computing its share), and between telling a member of a commit
    /// again.
    pub retry_interval: Duration,
    /// Abandon the pending epoch (and start it again at a higher epoch with
    /// the next coordinator the caller reaches) once its coordinator made
    /// no progress for this long, or at once when it can never run it; with
    /// no coordinator the caller reaches, check again this long after.
    /// `None`: only when told ([`crate::Nexus::abandon`]).
    pub abandon_after: Option<Duration>,
}

impl Default for Timing {
    /// A second between polls, five before a retry, two minutes without
    /// progress before abandoning.
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            retry_interval: Duration::from_secs(5),
            abandon_after: Some(Duration::from_secs(120)),
        }
    }
}
