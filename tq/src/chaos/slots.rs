//! The operator's pool of replacement sleds: per slot, the new sleds made
//! ready at set-up that may take it once Nexus removed its sled, and when
//! one is slid in (drawn from the seed). Sliding one in is the injector's
//! (`Injector::slide_in`), between faults.

use std::collections::{BTreeMap, VecDeque};
use std::time::Duration;

use super::plan::{Dice, stream};

/// Replacements not yet used, per slot.
pub struct Pool {
    waiting: BTreeMap<usize, VecDeque<usize>>,
    dice: Dice,
}

impl Pool {
    /// The pool of `replacements` (sled indexes, each in the slot
    /// `slot_of` gives), used in that order; choices from `seed`.
    pub fn new(slot_of: &[usize], replacements: &[usize], seed: u64) -> Self {
        let mut waiting: BTreeMap<usize, VecDeque<usize>> = BTreeMap::new();
        for &sled in replacements {
            if let Some(&slot) = slot_of.get(sled) {
                waiting.entry(slot).or_default().push_back(sled);
            }
        }
        Self {
            waiting,
            dice: Dice::new(seed, stream::REPLACEMENTS),
        }
    }

    /// The replacements to slide in now, `(slot, sled)`: for each empty
    /// slot (`occupants[slot]` is `None`) with one left, even odds, so a
    /// slot also stays empty for a while. Each replacement is given once.
    pub fn draw(&mut self, occupants: &[Option<usize>]) -> Vec<(usize, usize)> {
        let mut chosen = Vec::new();
        for (slot, occupant) in occupants.iter().enumerate() {
            if occupant.is_some() {
                continue;
            }
            let Some(queue) = self.waiting.get_mut(&slot) else {
                continue;
            };
            if queue.is_empty() || self.dice.below(2) != 0 {
                continue;
            }
            if let Some(sled) = queue.pop_front() {
                chosen.push((slot, sled));
            }
        }
        chosen
    }

    /// The replacements to slide in at the end of the run: one for each
    /// empty slot with one left.
    pub fn every(&mut self, occupants: &[Option<usize>]) -> Vec<(usize, usize)> {
        occupants
            .iter()
            .enumerate()
            .filter(|(_, occupant)| occupant.is_none())
            .filter_map(|(slot, _)| {
                let sled = self.waiting.get_mut(&slot)?.pop_front()?;
                Some((slot, sled))
            })
            .collect()
    }

    /// Replacements left for `slot`.
    pub fn left(&self, slot: usize) -> usize {
        self.waiting.get(&slot).map_or(0, VecDeque::len)
    }
}

/// How many members the workload may have removed `elapsed` into a run
/// of `duration` with `pool` replacements in all: one, then more spread
/// evenly over the run, so that the pool (which Nexus's bound on the
/// sleds it ever knows, `tq_nexus::MAX_KNOWN_SLEDS`, limits) lasts the
/// whole run instead of its first minutes. Without replacements, no
/// bound: members are removed down to the workload's minimum, as they
/// always were.
pub fn removals_allowed(pool: usize, elapsed: Duration, duration: Duration) -> usize {
    if pool == 0 {
        return usize::MAX;
    }
    let total = duration.as_millis().max(1);
    let share = u128::try_from(pool).unwrap_or(u128::MAX) * elapsed.as_millis().min(total) / total;
    usize::try_from(share).unwrap_or(pool).saturating_add(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three slots (sleds 0, 1, 2), two replacements each: 3 and 6 for
    /// slot 0, 4 and 7 for slot 1, 5 and 8 for slot 2.
    fn pool(seed: u64) -> Pool {
        let slot_of = [0, 1, 2, 0, 1, 2, 0, 1, 2];
        Pool::new(&slot_of, &[3, 4, 5, 6, 7, 8], seed)
    }

    #[test]
    fn only_empty_slots_are_filled_each_replacement_once_in_order() {
        let mut pool = pool(1);
        let occupants = [Some(0), None, Some(2)];
        let mut given = Vec::new();
        for _ in 0..64 {
            given.extend(pool.draw(&occupants));
        }
        assert_eq!(given, [(1, 4), (1, 7)]);
        assert_eq!(pool.left(1), 0);
        assert_eq!(pool.left(0), 2);
        assert!(pool.draw(&occupants).is_empty());
        assert_eq!(pool.every(&[None, None, Some(2)]), [(0, 3)]);
        assert_eq!(pool.every(&[None, None, Some(2)]), [(0, 6)]);
        assert!(pool.every(&[None, None, Some(2)]).is_empty());
    }

    #[test]
    fn removals_are_spread_over_the_run_so_the_pool_lasts() {
        let hour = Duration::from_secs(3600);
        let at = |minutes: u64| removals_allowed(120, Duration::from_secs(minutes * 60), hour);
        assert_eq!(at(0), 1);
        assert_eq!(at(30), 61);
        assert_eq!(at(60), 121);
        assert_eq!(at(90), 121);
        assert_eq!(removals_allowed(0, Duration::ZERO, hour), usize::MAX);
    }

    #[test]
    fn a_seed_draws_the_same_turns_and_a_slot_may_wait() {
        let empty = [None, None, None];
        let turns = |seed| {
            let mut pool = pool(seed);
            (0..4).map(|_| pool.draw(&empty)).collect::<Vec<_>>()
        };
        assert_eq!(turns(5), turns(5));
        let first: Vec<usize> = (0..32).map(|seed| pool(seed).draw(&empty).len()).collect();
        assert!(first.contains(&3), "{first:?}");
        assert!(first.iter().any(|&n| n < 3), "{first:?}");
    }
}
