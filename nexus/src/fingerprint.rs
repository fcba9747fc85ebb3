//! The machine's fingerprint, for a model checker (feature `model`): two
//! machines hash alike when they would answer every future input alike.
//!
//! Time is hashed relative to `now`, and only as far as the machine can
//! tell it apart: a due time that has passed is "due now" however long
//! ago, and a coordination that has not moved for `abandon_after` or
//! longer is "too long" however much longer. The machine only compares
//! instants and adds durations (see [`crate::Instant`]), so this loses
//! nothing. Call ids (only matched with their answers), the counters and
//! the fixed timing are left out.

use core::hash::{Hash, Hasher};

use crate::machine::Nexus;
use crate::state::State;
use crate::time::Instant;

impl Nexus {
    /// Feeds what decides the machine's future behaviour to `h`, with
    /// every instant taken relative to `now` (which must not be before any
    /// instant the machine was given).
    pub fn fingerprint<H: Hasher>(&self, now: Instant, h: &mut H) {
        let until = |at: Instant| at.millis().saturating_sub(now.millis());
        let abandon_after = self.timing.abandon_after.map_or(u64::MAX, |d| {
            u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
        });
        self.state.hash(h);
        self.is_stored().hash(h);
        let progress = &self.progress;
        progress.phase.hash(h);
        progress.seen.hash(h);
        progress.acked.hash(h);
        now.millis()
            .saturating_sub(progress.last_progress.millis())
            .min(abandon_after)
            .hash(h);
        until(progress.due).hash(h);
        until(progress.abandon_held_until).hash(h);
        self.calls.fingerprint(h);
        for due in &self.member_due {
            until(*due).hash(h);
        }
        self.needs_prepare.hash(h);
    }
}

/// Every field (the history is a deque, which has no `Hash` of its own).
impl Hash for State {
    fn hash<H: Hasher>(&self, h: &mut H) {
        let Self {
            rack_id,
            roster,
            lrtq,
            on_lrtq,
            members,
            removed,
            highest_started,
            history,
            forgotten_below,
            latest,
            pending,
        } = self;
        (rack_id, roster, lrtq, on_lrtq, members, removed).hash(h);
        (highest_started, forgotten_below, latest, pending).hash(h);
        history.len().hash(h);
        history.iter().for_each(|record| record.hash(h));
    }
}
