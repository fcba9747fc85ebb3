//! The sleds Nexus knows, and sets of them.
//!
//! Every sled Nexus ever named (a member, a removed member, an LRTQ sled)
//! has a place in the [`Roster`], in the order Nexus first heard of it, and
//! keeps it forever: a removed sled must stay known so that it is never
//! added back. Every set of sleds in the state ([`SledSet`]) is a bit mask
//! over those places, so the history of commits stays small.

use serde::{Deserialize, Serialize};
use tq_core::ids::PlatformId;

/// Most sleds Nexus can know over the life of a rack (32 slots, and every
/// replacement a new sled): starting a configuration with one more new
/// sled is refused ([`crate::StartError::RosterFull`]).
pub const MAX_KNOWN_SLEDS: usize = 128;

/// A set of sleds: bit `i` for the sled at place `i` of the roster.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "model", derive(Hash))]
pub(crate) struct SledSet(u128);

const _: () = assert!(MAX_KNOWN_SLEDS <= u128::BITS as usize);

impl SledSet {
    pub(crate) const EMPTY: Self = Self(0);

    pub(crate) fn contains(self, place: u8) -> bool {
        self.0
            .checked_shr(u32::from(place))
            .is_some_and(|b| b & 1 == 1)
    }

    pub(crate) fn with(self, place: u8) -> Self {
        Self(self.0 | 1u128.checked_shl(u32::from(place)).unwrap_or(0))
    }

    pub(crate) fn without(self, place: u8) -> Self {
        Self(self.0 & !1u128.checked_shl(u32::from(place)).unwrap_or(0))
    }

    pub(crate) fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    pub(crate) fn intersection(self, other: Self) -> Self {
        Self(self.0 & other.0)
    }

    pub(crate) fn minus(self, other: Self) -> Self {
        Self(self.0 & !other.0)
    }

    pub(crate) fn len(self) -> usize {
        self.0.count_ones() as usize
    }

    pub(crate) fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The places in the set, lowest first.
    pub(crate) fn places(self) -> impl Iterator<Item = u8> {
        (0..=u8::MAX)
            .take(MAX_KNOWN_SLEDS)
            .filter(move |&place| self.contains(place))
    }
}

/// Every sled Nexus knows, each at a fixed place.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "model", derive(Hash))]
pub(crate) struct Roster(heapless::Vec<PlatformId, MAX_KNOWN_SLEDS, u8>);

impl Roster {
    pub(crate) fn place_of(&self, id: &PlatformId) -> Option<u8> {
        self.0
            .iter()
            .position(|known| known == id)
            .and_then(|i| u8::try_from(i).ok())
    }

    pub(crate) fn get(&self, place: u8) -> Option<&PlatformId> {
        self.0.get(usize::from(place))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    /// The place of `id`, given one if it is new; `None` if the roster is
    /// full.
    pub(crate) fn place_or_add(&mut self, id: &PlatformId) -> Option<u8> {
        if let Some(place) = self.place_of(id) {
            return Some(place);
        }
        let place = u8::try_from(self.0.len()).ok()?;
        self.0.push(id.clone()).ok()?;
        Some(place)
    }

    /// Whether any sled is listed twice (a corrupt stored state).
    pub(crate) fn has_repeats(&self) -> bool {
        self.0
            .iter()
            .enumerate()
            .any(|(i, id)| self.0.iter().skip(i + 1).any(|other| other == id))
    }

    /// The set of every place.
    pub(crate) fn all(&self) -> SledSet {
        (0..=u8::MAX)
            .take(self.len())
            .fold(SledSet::EMPTY, SledSet::with)
    }
}

/// A set of sleds Nexus knows, to read: which sleds, and whether one is in
/// it. Iterates in the order Nexus first heard of each sled.
#[derive(Clone, Copy)]
pub struct Sleds<'a> {
    roster: &'a Roster,
    set: SledSet,
}

impl<'a> Sleds<'a> {
    pub(crate) fn new(roster: &'a Roster, set: SledSet) -> Self {
        Self { roster, set }
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: &PlatformId) -> bool {
        self.roster
            .place_of(id)
            .is_some_and(|place| self.set.contains(place))
    }

    /// How many sleds.
    pub fn len(&self) -> usize {
        self.set.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty()
    }

    /// The sleds.
    pub fn iter(&self) -> impl Iterator<Item = &'a PlatformId> + 'a {
        let (roster, set) = (self.roster, self.set);
        set.places().filter_map(move |place| roster.get(place))
    }
}

impl core::fmt::Debug for Sleds<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_set().entries(self.iter()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_operations_at_the_edges() {
        let top = u8::try_from(MAX_KNOWN_SLEDS - 1).unwrap();
        let set = SledSet::EMPTY.with(0).with(top);
        assert!(set.contains(0) && set.contains(top) && !set.contains(1));
        assert_eq!(set.len(), 2);
        // Places past the mask are never in a set, and adding one is a no-op.
        assert!(!set.contains(200));
        assert_eq!(set.with(200), set);
        assert!(set.places().eq([0, top]));
        assert_eq!(set.minus(SledSet::EMPTY.with(0)).places().count(), 1);
    }
}
