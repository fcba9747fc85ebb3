//! The fault schedule: every fault, its targets, how long it holds and the
//! quiet gap after it, drawn from the run's seed alone (ChaCha8), so a
//! failing run's faults replay with the same seed. Targets are sled
//! indexes; the injector aims a fault at the sleds still in the rack when
//! it comes (see `inject`), never redrawing, so the rest of the schedule
//! stays the same.
//!
//! Targets are slots (`0..` the rack's first sleds): a fault on a slot
//! hits the sled in it when the fault comes, the first or a replacement.

use std::fmt;
use std::time::Duration;

use rand_chacha::ChaCha8Rng;
use rand_core::{Rng, SeedableRng};

/// A seeded source of choices (also the workload's and the probes').
pub struct Dice(ChaCha8Rng);

impl Dice {
    /// The dice of `seed`, for `stream` (each user its own stream, so the
    /// fault schedule does not depend on how often the workload rolls).
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(stream);
        Self(rng)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.0.next_u64() % n }
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low) + 1)
    }

    /// One of `items`, if any.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        let n = u64::try_from(items.len()).unwrap_or(u64::MAX);
        items
            .get(usize::try_from(self.below(n)).unwrap_or(0))
            .copied()
    }

    /// `items` in a random order.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = usize::try_from(self.below(i as u64 + 1)).unwrap_or(0);
            items.swap(i, j);
        }
    }
}

/// The dice streams.
pub mod stream {
    /// The fault schedule.
    pub const FAULTS: u64 = 1;
    /// Nexus's reconfigurations.
    pub const WORKLOAD: u64 = 2;
    /// Which sled loads a secret.
    pub const PROBES: u64 = 3;
    /// Which member is killed when no coordinator is running.
    pub const COORDINATOR: u64 = 4;
    /// When the operator slides a replacement into an empty slot.
    pub const REPLACEMENTS: u64 = 5;
    /// Which packets a link fault drops, delays or lets through at once.
    pub const LINKS: u64 = 6;
}

/// What a link fault does to a link's packets, as netem's parameters.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LinkFault {
    /// Percent of packets dropped.
    pub loss: u64,
    /// Milliseconds each held packet waits, on average.
    pub delay_ms: u64,
    /// Plus or minus this many milliseconds, uniformly.
    pub jitter_ms: u64,
    /// Percent of the packets not dropped that are sent at once, out of
    /// order.
    pub reorder: u64,
}

/// One fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The rack split in two: no packet crosses between the sides.
    Partition {
        /// One side (the other is every other sled).
        side: Vec<usize>,
    },
    /// Packets from `from` to every other sled dropped; the other way
    /// still delivered.
    OneWay {
        /// The sleds whose packets to the rest are dropped.
        from: Vec<usize>,
    },
    /// Nexus's calls to the sled dropped (its peers still reach it).
    CutFromNexus {
        /// The sled.
        sled: usize,
    },
    /// `tc netem` on the sleds' links: loss, delay with jitter, reordering.
    Netem {
        /// The sleds (their outgoing packets).
        sleds: Vec<usize>,
        /// What is done to their packets.
        link: LinkFault,
    },
    /// SIGSTOP, then SIGCONT when healed.
    Pause {
        /// The sled.
        sled: usize,
    },
    /// SIGKILL, then started again from its ledger when healed.
    Kill {
        /// The sled.
        sled: usize,
    },
    /// SIGKILL of the pending reconfiguration's coordinator (any member
    /// when none is pending), started again when healed.
    KillCoordinator,
    /// The sled's ledger file systems fill up: one copy for the first
    /// third of the hold, both for the second, then space returns.
    DiskFull {
        /// The sled.
        sled: usize,
    },
    /// The sled's wall clock (CLOCK_REALTIME) stepped by `secs`; stepped
    /// back when healed.
    ClockStep {
        /// The sled.
        sled: usize,
        /// Seconds, either way.
        secs: i64,
    },
    /// Planted, never drawn: the sled is killed, its ledger copies are
    /// replaced by the ones it had right after boot, and it is started
    /// again. The checker must report lost state.
    StaleLedger {
        /// The sled.
        sled: usize,
    },
    /// Planted, never drawn: the sled is paused, one record of its audit
    /// log (copy 0) is altered in place, and it is resumed. The checker
    /// must report the log damaged.
    AlteredAudit {
        /// The sled.
        sled: usize,
    },
}

impl Fault {
    /// Its kind, as the final table counts it.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Partition { .. } => "partition",
            Self::OneWay { .. } => "one-way partition",
            Self::CutFromNexus { .. } => "cut from Nexus",
            Self::Netem { .. } => "loss/delay/reorder",
            Self::Pause { .. } => "pause (SIGSTOP)",
            Self::Kill { .. } => "kill -9 + restart",
            Self::KillCoordinator => "coordinator killed",
            Self::DiskFull { .. } => "ledger disk full",
            Self::ClockStep { .. } => "clock step",
            Self::StaleLedger { .. } => "stale ledger (planted)",
            Self::AlteredAudit { .. } => "altered audit record (planted)",
        }
    }

    /// The sleds it names (none for [`Fault::KillCoordinator`]).
    pub fn sleds(&self) -> Vec<usize> {
        match self {
            Self::Partition { side } => side.clone(),
            Self::OneWay { from } => from.clone(),
            Self::Netem { sleds, .. } => sleds.clone(),
            Self::CutFromNexus { sled }
            | Self::Pause { sled }
            | Self::Kill { sled }
            | Self::DiskFull { sled }
            | Self::ClockStep { sled, .. }
            | Self::StaleLedger { sled }
            | Self::AlteredAudit { sled } => vec![*sled],
            Self::KillCoordinator => Vec::new(),
        }
    }
}

impl fmt::Display for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Partition { side } => write!(f, "partition: sleds {side:?} | the rest"),
            Self::OneWay { from } => write!(f, "one-way: sleds {from:?} -> the rest dropped"),
            Self::CutFromNexus { sled } => write!(f, "sled {sled} cut from Nexus"),
            Self::Netem { sleds, link } => {
                let LinkFault {
                    loss,
                    delay_ms,
                    jitter_ms,
                    reorder,
                } = link;
                write!(
                    f,
                    "netem on sleds {sleds:?}: loss {loss}%, delay {delay_ms}±{jitter_ms} ms, reorder {reorder}%"
                )
            }
            Self::Pause { sled } => write!(f, "sled {sled} paused (SIGSTOP)"),
            Self::Kill { sled } => write!(f, "sled {sled} killed (SIGKILL)"),
            Self::KillCoordinator => write!(f, "the coordinator killed (SIGKILL)"),
            Self::DiskFull { sled } => write!(f, "sled {sled}'s ledger disks fill up"),
            Self::ClockStep { sled, secs } => write!(f, "sled {sled}'s clock stepped {secs:+} s"),
            Self::StaleLedger { sled } => {
                write!(f, "sled {sled} restarted from an older copy of its ledger")
            }
            Self::AlteredAudit { sled } => {
                write!(f, "sled {sled} paused, a record of its audit log altered")
            }
        }
    }
}

/// A fault with its timing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Scheduled {
    /// The fault.
    pub fault: Fault,
    /// How long it holds before it is healed.
    pub hold: Duration,
    /// The quiet time after it is healed.
    pub gap: Duration,
}

/// The schedule of a run: an endless sequence of faults.
pub struct Plan {
    dice: Dice,
    sleds: usize,
}

impl Plan {
    /// The schedule of `seed` for a rack of `sleds` slots.
    pub fn new(seed: u64, sleds: usize) -> Self {
        Self {
            dice: Dice::new(seed, stream::FAULTS),
            sleds,
        }
    }

    fn sled(&mut self) -> usize {
        usize::try_from(self.dice.below(self.sleds as u64)).unwrap_or(0)
    }

    /// A random non-empty proper subset of the sleds, at most half.
    fn side(&mut self) -> Vec<usize> {
        let mut all: Vec<usize> = (0..self.sleds).collect();
        self.dice.shuffle(&mut all);
        let half = (self.sleds / 2).max(1) as u64;
        let take = usize::try_from(self.dice.between(1, half)).unwrap_or(1);
        let mut side: Vec<usize> = all.into_iter().take(take).collect();
        side.sort_unstable();
        side
    }

    fn fault(&mut self) -> Fault {
        match self.dice.below(9) {
            0 => Fault::Partition { side: self.side() },
            1 => Fault::OneWay { from: self.side() },
            2 => Fault::CutFromNexus { sled: self.sled() },
            3 => Fault::Netem {
                sleds: self.side(),
                link: LinkFault {
                    loss: self.dice.between(1, 30),
                    delay_ms: self.dice.between(5, 200),
                    jitter_ms: self.dice.between(0, 50),
                    reorder: self.dice.between(0, 50),
                },
            },
            4 => Fault::Pause { sled: self.sled() },
            5 => Fault::Kill { sled: self.sled() },
            6 => Fault::KillCoordinator,
            7 => Fault::DiskFull { sled: self.sled() },
            _ => {
                let secs = i64::try_from(self.dice.between(1, 3600)).unwrap_or(1);
                let secs = if self.dice.below(2) == 0 { secs } else { -secs };
                Fault::ClockStep {
                    sled: self.sled(),
                    secs,
                }
            }
        }
    }
}

impl Iterator for Plan {
    type Item = Scheduled;

    fn next(&mut self) -> Option<Scheduled> {
        let fault = self.fault();
        let hold = Duration::from_millis(self.dice.between(1_000, 6_000));
        let gap = Duration::from_millis(self.dice.between(300, 2_000));
        Some(Scheduled { fault, hold, gap })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seed_gives_the_same_schedule_and_another_seed_another() {
        let a: Vec<Scheduled> = Plan::new(7, 8).take(50).collect();
        let b: Vec<Scheduled> = Plan::new(7, 8).take(50).collect();
        let c: Vec<Scheduled> = Plan::new(8, 8).take(50).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn every_kind_but_the_planted_one_is_drawn_and_targets_are_sleds() {
        let mut kinds = std::collections::BTreeSet::new();
        for s in Plan::new(1, 8).take(500) {
            assert!(s.fault.sleds().iter().all(|&i| i < 8), "{}", s.fault);
            if let Fault::Partition { side } | Fault::OneWay { from: side } = &s.fault {
                assert!(!side.is_empty() && side.len() <= 4);
            }
            kinds.insert(s.fault.kind());
        }
        assert_eq!(kinds.len(), 9, "{kinds:?}");
        assert!(!kinds.contains("stale ledger (planted)"));
    }
}
