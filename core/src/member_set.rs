//! A set of sleds, as Nexus names the members of a new configuration.

use core::fmt;
#[cfg(any(test, feature = "host"))]
use serde::Deserialize;
use serde::Serialize;
use serde::ser::{SerializeSeq, Serializer};

use crate::ids::PlatformId;
use crate::limits::MAX_MEMBERS;

/// A set of sleds: sorted, no repeats, at most [`MAX_MEMBERS`]. Decoding
/// postcard refuses repeats and a list out of order (a set has one
/// encoding); a JSON list is sorted as it is read.
///
/// The in-place decoder of [`crate::wire`] is its postcard decoder; serde's
/// derived decoder exists for JSON on the host (feature `host`) and as that
/// decoder's oracle in tests.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(
    any(test, feature = "host"),
    derive(Deserialize),
    serde(try_from = "heapless::Vec<PlatformId, MAX_MEMBERS, u8>")
)]
#[cfg_attr(feature = "model", derive(Hash))]
pub struct MemberSet(heapless::Vec<PlatformId, MAX_MEMBERS, u8>);

/// Why a list of sleds is not a [`MemberSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MemberSetError {
    /// A sled appears twice.
    Duplicate,
    /// More than [`MAX_MEMBERS`] sleds.
    TooMany,
}

impl fmt::Display for MemberSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Duplicate => "a sled is listed twice",
            Self::TooMany => "too many sleds",
        })
    }
}

impl core::error::Error for MemberSetError {}

impl TryFrom<heapless::Vec<PlatformId, MAX_MEMBERS, u8>> for MemberSet {
    type Error = MemberSetError;

    fn try_from(mut ids: heapless::Vec<PlatformId, MAX_MEMBERS, u8>) -> Result<Self, Self::Error> {
        sort_and_check(&mut ids)?;
        Ok(Self(ids))
    }
}

/// Sorts a list of sleds in place and refuses repeats: what makes a list a
/// [`MemberSet`].
pub(crate) fn sort_and_check(ids: &mut [PlatformId]) -> Result<(), MemberSetError> {
    // An insertion sort: at most `MAX_MEMBERS` (32) ids, and unlike the
    // standard sorts (which check that the order is total) it has no panic
    // path, so the node binary's link-time no-panic check holds.
    for end in 1..ids.len() {
        for at in (1..=end).rev() {
            match ids.get_mut(at - 1..=at) {
                Some([left, right]) if *left > *right => core::mem::swap(left, right),
                _ => break,
            }
        }
    }
    if ids.windows(2).any(|w| matches!(w, [a, b] if a == b)) {
        return Err(MemberSetError::Duplicate);
    }
    Ok(())
}

impl MemberSet {
    /// The empty set.
    pub const fn new_empty() -> Self {
        Self(heapless::Vec::new())
    }

    /// The list inside, for the in-place decoder, which fills it and then
    /// calls [`sort_and_check`].
    pub(crate) fn ids_mut_unchecked(&mut self) -> &mut heapless::Vec<PlatformId, MAX_MEMBERS, u8> {
        &mut self.0
    }

    /// A set from any list of sleds.
    pub fn new<'a>(ids: impl IntoIterator<Item = &'a PlatformId>) -> Result<Self, MemberSetError> {
        let mut list = heapless::Vec::new();
        for id in ids {
            list.push(id.clone()).map_err(|_| MemberSetError::TooMany)?;
        }
        Self::try_from(list)
    }

    /// Makes this set a copy of `other` in place (a clone would be built
    /// on the stack first: a set is about 2 KiB).
    pub(crate) fn copy_from(&mut self, other: &MemberSet) {
        self.0.clear();
        for id in other.as_slice() {
            // Cannot fail: both sets have the same capacity.
            if self.0.push(id.clone()).is_err() {
                break;
            }
        }
    }

    /// The sleds, sorted.
    pub fn as_slice(&self) -> &[PlatformId] {
        &self.0
    }

    /// How many sleds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: &PlatformId) -> bool {
        self.0.binary_search(id).is_ok()
    }

    /// The bit of `id`'s position in the set (see [`MemberBits`]), if it
    /// is a member.
    pub fn bit_of(&self, id: &PlatformId) -> Option<MemberBits> {
        let at = self.0.iter().position(|m| m == id)?;
        1u32.checked_shl(u32::try_from(at).ok()?)
    }

    /// Adds `id` at its place; `Ok(false)` if it was already there.
    pub fn insert(&mut self, id: &PlatformId) -> Result<bool, MemberSetError> {
        if self.contains(id) {
            return Ok(false);
        }
        self.0
            .push(id.clone())
            .map_err(|_| MemberSetError::TooMany)?;
        // Moved down to its place one neighbour at a time, as the sort does
        // (`Vec::insert` has a panic path).
        for at in (1..self.0.len()).rev() {
            match self.0.get_mut(at - 1..=at) {
                Some([left, right]) if *left > *right => core::mem::swap(left, right),
                _ => break,
            }
        }
        Ok(true)
    }
}

/// Some of a [`MemberSet`]'s members, bit `i` for the set's member `i`:
/// 4 bytes where a set of their ids is about 2 KiB.
pub type MemberBits = u32;

const _: () = assert!(MAX_MEMBERS <= MemberBits::BITS as usize);

/// The members of a set whose bits are set, borrowed: what a node shows of
/// a subset it holds as [`MemberBits`]. Iterates, and encodes, as the
/// sorted list of their ids, the same bytes as a [`MemberSet`] of them.
#[derive(Clone, Copy)]
pub struct MemberSubset<'a> {
    set: &'a [PlatformId],
    bits: MemberBits,
}

impl<'a> MemberSubset<'a> {
    /// The members of `set` (a [`MemberSet`]'s sorted slice) whose bits
    /// are set in `bits`; bits past the set's end name no one.
    pub fn new(set: &'a [PlatformId], bits: MemberBits) -> Self {
        Self { set, bits }
    }

    /// Every member of `set`.
    pub fn all(set: &'a [PlatformId]) -> Self {
        Self::new(set, MemberBits::MAX)
    }

    /// No one.
    pub const fn none() -> Self {
        Self { set: &[], bits: 0 }
    }

    /// The members, sorted.
    pub fn iter(&self) -> SubsetIter<'a> {
        SubsetIter {
            rest: self.set.iter(),
            bits: self.bits,
        }
    }

    /// How many members.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }

    /// Whether `id` is one of them.
    pub fn contains(&self, id: &PlatformId) -> bool {
        self.iter().any(|m| m == id)
    }
}

/// The members of a [`MemberSubset`], in order.
#[derive(Clone)]
pub struct SubsetIter<'a> {
    rest: core::slice::Iter<'a, PlatformId>,
    /// The bits of `rest`, its first member's lowest.
    bits: MemberBits,
}

impl<'a> Iterator for SubsetIter<'a> {
    type Item = &'a PlatformId;

    fn next(&mut self) -> Option<&'a PlatformId> {
        loop {
            let id = self.rest.next()?;
            let taken = self.bits & 1 == 1;
            self.bits >>= 1;
            if taken {
                return Some(id);
            }
        }
    }
}

impl<'a> IntoIterator for MemberSubset<'a> {
    type Item = &'a PlatformId;
    type IntoIter = SubsetIter<'a>;

    fn into_iter(self) -> SubsetIter<'a> {
        self.iter()
    }
}

impl fmt::Debug for MemberSubset<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.iter()).finish()
    }
}

impl PartialEq for MemberSubset<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for MemberSubset<'_> {}

impl Serialize for MemberSubset<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // Its length first, as a set's list (a filtered iterator cannot
        // tell postcard its length).
        let mut seq = serializer.serialize_seq(Some(self.len()))?;
        for id in self.iter() {
            seq.serialize_element(id)?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::platform;

    #[test]
    fn member_sets_are_sorted_and_refuse_repeats() {
        let set = MemberSet::new(&[platform(3), platform(1), platform(2)]).unwrap();
        assert_eq!(set.as_slice(), &[platform(1), platform(2), platform(3)]);
        assert!(set.contains(&platform(2)));
        assert!(!set.contains(&platform(4)));
        assert_eq!(
            MemberSet::new(&[platform(1), platform(1)]),
            Err(MemberSetError::Duplicate)
        );
        let many: heapless::Vec<PlatformId, 40> = (0..=MAX_MEMBERS).map(platform).collect();
        assert_eq!(MemberSet::new(&many), Err(MemberSetError::TooMany));
    }

    #[test]
    fn a_subset_is_the_members_of_its_bits_and_encodes_as_their_set() {
        let set = MemberSet::new(&[platform(1), platform(2), platform(3), platform(4)]).unwrap();
        assert_eq!(set.bit_of(&platform(3)), Some(0b100));
        assert_eq!(set.bit_of(&platform(5)), None);
        // Bits past the set's end name no one.
        let subset = MemberSubset::new(set.as_slice(), 0b1_1010 | 1 << 31);
        let ids: std::vec::Vec<_> = subset.iter().cloned().collect();
        assert_eq!(ids, [platform(2), platform(4)]);
        assert_eq!(subset.len(), 2);
        assert!(subset.contains(&platform(4)) && !subset.contains(&platform(1)));
        assert!(MemberSubset::none().is_empty());
        let their_set = MemberSet::new(subset).unwrap();
        let mut a = [0u8; 256];
        let mut b = [0u8; 256];
        assert_eq!(
            postcard::to_slice(&subset, &mut a).unwrap(),
            postcard::to_slice(&their_set, &mut b).unwrap()
        );
    }

    #[test]
    fn insertion_keeps_the_set_sorted() {
        let mut set = MemberSet::new(&[platform(4), platform(1)]).unwrap();
        assert_eq!(set.insert(&platform(2)), Ok(true));
        assert_eq!(set.insert(&platform(2)), Ok(false));
        assert_eq!(set.as_slice(), &[platform(1), platform(2), platform(4)]);
    }

    #[test]
    fn the_sort_matches_the_library_sort_and_finds_every_repeat() {
        // Every arrangement of up to 6 ids drawn from 4 values.
        for len in 0..=6u32 {
            for code in 0..4u32.pow(len) {
                let mut ids: std::vec::Vec<PlatformId> = (0..len)
                    .map(|i| platform(((code / 4u32.pow(i)) % 4) as usize))
                    .collect();
                let mut expected = ids.clone();
                expected.sort();
                let repeated = expected.windows(2).any(|w| w[0] == w[1]);
                match sort_and_check(&mut ids) {
                    Ok(()) => {
                        assert!(!repeated);
                        assert_eq!(ids, expected);
                    }
                    Err(e) => {
                        assert!(repeated);
                        assert_eq!(e, MemberSetError::Duplicate);
                    }
                }
            }
        }
    }
}
