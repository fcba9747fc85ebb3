//! Sets of sleds as bit masks: bit `i` is sled `i`. Nexus's sets, the
//! network's links and a coordinator's acks are all read this way.

use tq_core::ids::PlatformId;

use crate::MAX_SLEDS;

/// A set of sleds, bit `i` for sled `i`.
pub type SledMask = u32;

const _: () = assert!(MAX_SLEDS <= SledMask::BITS as usize);

/// The mask bit of sled `index` (0 past [`MAX_SLEDS`]).
pub const fn bit(index: usize) -> SledMask {
    if index < MAX_SLEDS { 1 << index } else { 0 }
}

/// The set of the sled indices `indices` yields.
pub fn mask_of(indices: impl IntoIterator<Item = usize>) -> SledMask {
    indices.into_iter().fold(0, |mask, i| mask | bit(i))
}

/// The lowest sled index in `mask`.
pub fn first_bit(mask: SledMask) -> Option<u8> {
    (mask != 0).then(|| u8::try_from(mask.trailing_zeros()).unwrap_or(u8::MAX))
}

/// The `n`-th (modulo the count) sled index in `mask`.
pub fn nth_bit(mask: SledMask, n: usize) -> Option<usize> {
    let count = usize::try_from(mask.count_ones()).ok()?;
    if count == 0 {
        return None;
    }
    (0..MAX_SLEDS)
        .filter(|i| mask & bit(*i) != 0)
        .nth(n % count)
}

/// The members of `mask`, as ids (`ids[i]` is sled `i`).
pub fn mask_ids(ids: &[PlatformId], mask: SledMask) -> impl Iterator<Item = &PlatformId> {
    ids.iter()
        .enumerate()
        .filter(move |(i, _)| mask & bit(*i) != 0)
        .map(|(_, id)| id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bits_past_the_largest_rack_are_empty() {
        assert_eq!(bit(0), 1);
        assert_eq!(bit(MAX_SLEDS - 1), 1 << (MAX_SLEDS - 1));
        assert_eq!(bit(MAX_SLEDS), 0);
        assert_eq!(mask_of([0, 3, MAX_SLEDS]), 0b1001);
    }

    #[test]
    fn first_and_nth_bits_count_from_the_lowest_sled() {
        assert_eq!(first_bit(0), None);
        assert_eq!(first_bit(0b1100), Some(2));
        assert_eq!(nth_bit(0, 3), None);
        assert_eq!(nth_bit(0b1010, 0), Some(1));
        assert_eq!(nth_bit(0b1010, 1), Some(3));
        assert_eq!(nth_bit(0b1010, 2), Some(1));
    }
}
