//! Lagrange weights for interpolation through public x-coordinates, computed
//! with log/exp tables.
//!
//! # Why tables are allowed here
//!
//! Everything this module sees is public: the points' x-coordinates (member
//! `i` of a configuration holds `x = i + 1`, PROTOCOL.md section 3, and the
//! configuration, its member list included, is public), the target x (0 for
//! the secret, or the x of a member whose share is rebuilt, or of each share
//! `split` computes), and the weights, which are functions of those alone.
//! No `y` byte, share value or secret enters: the weights are handed to
//! [`gf256::add_weighted_sum`], which combines the secret vectors in
//! constant time with respect to both.
//!
//! So this module may branch on, and index tables by, its inputs: a timing
//! or cache side channel here can reveal only which members' shares were
//! combined, which the messages that carried them already show. The tables
//! are private to this module and its only inputs are x-coordinates, so no
//! other code can look a secret byte up in them.
//!
//! # Cost
//!
//! The tables are 512 bytes of flash (`LOG` and `EXP`, 256 bytes each, built
//! at compile time). [`Basis::set_points`] does one look-up per pair of
//! points, `len * (len - 1) / 2`; [`Basis::weights_at`] does `3 * len`. A
//! [`Basis`] takes 776 bytes of stack (its 16-bit sums let each pair be
//! looked up once: 8-bit ones would need `len^2` look-ups and save 255
//! bytes) and its weights 255.

use crate::crypto::gf256::{self, Gf256};
use crate::crypto::shamir::ShamirError;
use crate::limits::MAX_SHARES;

/// The order of the multiplicative group of GF(2^8): logarithms are taken
/// modulo this.
const GROUP_ORDER: u16 = 255;

/// `EXP[i] = 3^i`; `EXP[255] = EXP[0] = 1`, so any `u8` index is in range.
/// 3 is `x + 1`, a generator of the multiplicative group under the Rijndael
/// polynomial (`x` itself has order 51).
static EXP: [u8; 256] = exp_table();

/// `LOG[a]` is the `i` in `0..255` with `3^i = a`, for non-zero `a`.
/// Zero has no logarithm; `LOG[0]` is 0 and never looked up.
static LOG: [u8; 256] = log_table();

// Both tables are built only in the statics' initializers, at compile time,
// where an index out of range fails the build.
#[allow(clippy::indexing_slicing, reason = "evaluated at compile time only")]
const fn exp_table() -> [u8; 256] {
    let mut table = [0u8; 256];
    let mut power = 1u8;
    let mut i = 0;
    while i < table.len() {
        table[i] = power;
        // Times `x + 1`: times `x`, plus itself.
        power = gf256::times_x(power) ^ power;
        i += 1;
    }
    table
}

#[allow(clippy::indexing_slicing, reason = "evaluated at compile time only")]
const fn log_table() -> [u8; 256] {
    let exp = exp_table();
    let mut table = [0u8; 256];
    let mut i = 0;
    // Stop before 255: `EXP[255]` is 1 again, whose logarithm is 0.
    while i < 255 {
        table[exp[i] as usize] = i as u8;
        i += 1;
    }
    table
}

/// The logarithm of `a - b` (subtraction is XOR in characteristic 2), for
/// `a != b`.
#[inline]
fn log_difference(a: u8, b: u8) -> u16 {
    // A `u8` index is always within the 256 entries.
    u16::from(LOG.get(usize::from(a ^ b)).copied().unwrap_or(0))
}

/// `3^power`, for a power already reduced below [`GROUP_ORDER`].
#[inline]
fn exp(power: u16) -> Gf256 {
    Gf256(EXP.get(usize::from(power)).copied().unwrap_or(0))
}

/// A set of distinct, public x-coordinates, with what Lagrange interpolation
/// through them needs that does not depend on the target: the logarithm of
/// each point's denominator `prod_{m != j} (x_j - x_m)`.
///
/// Building it costs `O(len^2)` table look-ups, once per point set; the
/// weights at a target then cost `O(len)`.
pub(crate) struct Basis {
    xs: [u8; MAX_SHARES],
    /// Below 255 once the points are set.
    log_denominators: [u16; MAX_SHARES],
    len: usize,
}

impl Basis {
    /// A basis of no points, to be filled by [`Self::set_points`] where it
    /// stays: building and returning a filled one would copy its 776 bytes
    /// on the stack.
    pub(crate) const fn empty() -> Self {
        Self {
            xs: [0; MAX_SHARES],
            log_denominators: [0; MAX_SHARES],
            len: 0,
        }
    }

    /// Checks the points (at least two, at most [`MAX_SHARES`], no repeats)
    /// and precomputes their denominators. On error the basis is left with
    /// no points.
    pub(crate) fn set_points(&mut self, xs: impl Iterator<Item = u8>) -> Result<(), ShamirError> {
        self.len = 0;
        let mut len = 0;
        // One bit per possible x, to catch a repeat as it arrives. (`x >> 5`
        // is below 8, so the word always exists.)
        let mut seen = [0u32; 8];
        for x in xs {
            let word = seen
                .get_mut(usize::from(x >> 5))
                .ok_or(ShamirError::TooManyShares)?;
            let bit = 1 << (x & 31);
            if *word & bit != 0 {
                return Err(ShamirError::DuplicateX);
            }
            *word |= bit;
            // Only reachable with all 256 x values including 0, which shares
            // never have; still an error rather than a panic.
            let slot = self.xs.get_mut(len).ok_or(ShamirError::TooManyShares)?;
            *slot = x;
            len += 1;
        }
        if len < 2 {
            return Err(ShamirError::TooFewShares);
        }

        // The difference of a pair is a factor of both points'
        // denominators, so each pair is looked up once and its logarithm
        // added to both sums. A sum has at most 254 terms below 255, so it
        // fits in a `u16`.
        let xs = self.xs.get(..len).unwrap_or(&[]);
        let sums = self.log_denominators.get_mut(..len).unwrap_or(&mut []);
        sums.fill(0);
        for (j, &x_j) in xs.iter().enumerate() {
            // Always splits: `sums` is as long as `xs`.
            let Some((earlier, later)) = sums.split_at_mut_checked(j) else {
                break;
            };
            let mut sum_j = 0;
            for (&x_m, sum_m) in xs.iter().zip(earlier) {
                let log = log_difference(x_j, x_m);
                sum_j += log;
                *sum_m += log;
            }
            if let Some(sum) = later.first_mut() {
                *sum += sum_j;
            }
        }
        for sum in sums {
            *sum %= GROUP_ORDER;
        }
        self.len = len;
        Ok(())
    }

    /// The points' x-coordinates.
    pub(crate) fn xs(&self) -> &[u8] {
        self.xs.get(..self.len).unwrap_or(&[])
    }

    /// Writes into `slots` the Lagrange weight of each point at `target`,
    /// `prod_{m != j} (target - x_m) / (x_j - x_m)`, and returns them: one
    /// per point, in the order of [`Self::xs`]. The weights are public.
    ///
    /// The numerator of point `j` is the product over all points divided by
    /// its own factor, so in logarithms every weight is one subtraction from
    /// a shared sum.
    pub(crate) fn weights_at<'w>(
        &self,
        target: u8,
        slots: &'w mut [Gf256; MAX_SHARES],
    ) -> &'w [Gf256] {
        let xs = self.xs();
        let weights = slots.get_mut(..xs.len()).unwrap_or(&mut []);
        // At one of the points, the polynomial's value is that point's own
        // y: its weight is 1 and every other is 0 (the product above would
        // contain a zero factor, which has no logarithm).
        if let Some(hit) = xs.iter().position(|&x| x == target) {
            for (j, weight) in weights.iter_mut().enumerate() {
                *weight = Gf256(u8::from(j == hit));
            }
            return weights;
        }
        // Up to 255 logarithms below 255: the sum fits in a `u16`.
        let log_numerators =
            xs.iter().map(|&x| log_difference(target, x)).sum::<u16>() % GROUP_ORDER;
        let log_denominators = self.log_denominators.get(..xs.len()).unwrap_or(&[]);
        for ((weight, &x), &log_denominator) in weights.iter_mut().zip(xs).zip(log_denominators) {
            // Each term is below 255, so adding two group orders keeps the
            // difference non-negative.
            let power =
                log_numerators + 2 * GROUP_ORDER - log_difference(target, x) - log_denominator;
            *weight = exp(power % GROUP_ORDER);
        }
        weights
    }
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::crypto::gf256::reference::Rijndael;
    use proptest::prelude::*;
    use proptest::sample::subsequence;
    use std::vec::Vec;

    /// The weights by the definition, with the constant-time field
    /// arithmetic of `gf256`: `len^2` multiplications and an inversion per
    /// point, the way they were computed before the tables.
    fn slow_weights(xs: &[u8], target: u8) -> Vec<u8> {
        xs.iter()
            .enumerate()
            .map(|(j, &x_j)| {
                let mut numerator = Gf256::ONE;
                let mut denominator = Gf256::ONE;
                for (m, &x_m) in xs.iter().enumerate() {
                    if m != j {
                        numerator *= Gf256(target ^ x_m);
                        denominator *= Gf256(x_j ^ x_m);
                    }
                }
                (numerator * denominator.invert()).0
            })
            .collect()
    }

    fn fast_weights(xs: &[u8], target: u8) -> Vec<u8> {
        let mut basis = Basis::empty();
        basis.set_points(xs.iter().copied()).unwrap();
        assert_eq!(basis.xs(), xs);
        let mut slots = [Gf256(0xee); MAX_SHARES];
        let weights: Vec<u8> = basis
            .weights_at(target, &mut slots)
            .iter()
            .map(|w| w.0)
            .collect();
        assert!(
            slots[xs.len()..].iter().all(|w| w.0 == 0xee),
            "only len slots written"
        );
        weights
    }

    fn assert_same_weights(xs: &[u8], target: u8) {
        assert_eq!(
            fast_weights(xs, target),
            slow_weights(xs, target),
            "xs = {xs:?}, target = {target}"
        );
    }

    #[test]
    fn tables_are_powers_and_logarithms_of_the_generator() {
        // Independent of this module: powers of 3 in the `gf256` crate's
        // Rijndael field, and every non-zero element reached exactly once.
        let mut power = Rijndael(1);
        let mut seen = [false; 256];
        for i in 0..255u8 {
            assert_eq!(EXP[usize::from(i)], power.0, "3^{i}");
            assert!(!seen[usize::from(power.0)], "3^{i} repeats");
            seen[usize::from(power.0)] = true;
            assert_eq!(LOG[usize::from(power.0)], i, "log {:#04x}", power.0);
            power *= Rijndael(3);
        }
        assert_eq!(power.0, 1, "3^255 = 1");
        assert_eq!(EXP[255], 1);
        assert!(!seen[0]);
    }

    #[test]
    fn every_pair_at_zero_and_at_a_third_point() {
        // Every set of two points, including x = 0 (split's basis holds the
        // secret's point), at 0 and at another point off the pair.
        for a in 0..255u8 {
            for b in a + 1..=255 {
                assert_same_weights(&[a, b], 0);
                assert_same_weights(&[b, a], a.wrapping_mul(7) ^ b);
            }
        }
    }

    /// The targets of a 32-sled rack: the secret at 0 and each member's x,
    /// plus a few points beyond.
    fn rack_targets() -> impl Iterator<Item = u8> {
        (0..=32).chain([33, 128, 255])
    }

    #[test]
    fn every_triple_of_a_32_sled_rack_at_every_rack_target() {
        for a in 1..=32u8 {
            for b in a + 1..=32 {
                for c in b + 1..=32 {
                    for target in rack_targets() {
                        assert_same_weights(&[c, a, b], target);
                    }
                }
            }
        }
    }

    #[test]
    fn a_32_sled_rack_without_any_one_member_at_every_rack_target() {
        let all: Vec<u8> = (1..=32).collect();
        for target in rack_targets() {
            assert_same_weights(&all, target);
            for missing in 0..all.len() {
                let mut others = all.clone();
                others.remove(missing);
                assert_same_weights(&others, target);
            }
        }
    }

    #[test]
    fn split_bases_at_every_share() {
        // What `split` interpolates through: the secret at 0 and the random
        // shares at 1..k, evaluated at every x from k up.
        for k in 2..=32u8 {
            let xs: Vec<u8> = (0..k).collect();
            for target in k..=255 {
                assert_same_weights(&xs, target);
            }
        }
    }

    #[test]
    fn all_255_points() {
        let all: Vec<u8> = (1..=255).collect();
        assert_same_weights(&all, 0);
        let mut with_zero = all.clone();
        with_zero[100] = 0;
        assert_same_weights(&with_zero, 101);
    }

    #[test]
    fn refuses_repeats_and_too_few_or_too_many_points_and_is_left_empty() {
        let cases: [(&[u8], ShamirError); 4] = [
            (&[3, 5, 3], ShamirError::DuplicateX),
            (&[0, 0], ShamirError::DuplicateX),
            (&[7], ShamirError::TooFewShares),
            (&[], ShamirError::TooFewShares),
        ];
        let all: Vec<u8> = (0..=255).chain([1]).collect();
        for (xs, expected) in cases
            .into_iter()
            .chain([(&all[..], ShamirError::TooManyShares)])
        {
            let mut basis = Basis::empty();
            basis.set_points([1, 2, 3].into_iter()).unwrap();
            assert_eq!(
                basis.set_points(xs.iter().copied()),
                Err(expected),
                "{xs:?}"
            );
            assert!(basis.xs().is_empty(), "{xs:?}");
            let mut slots = [Gf256::ZERO; MAX_SHARES];
            assert!(basis.weights_at(0, &mut slots).is_empty());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn any_point_set_at_any_target(
            xs in (2usize..=MAX_SHARES)
                .prop_flat_map(|k| subsequence((0..=255u8).collect::<Vec<_>>(), k).prop_shuffle()),
            target in any::<u8>(),
        ) {
            prop_assert_eq!(fast_weights(&xs, target), slow_weights(&xs, target));
        }
    }
}
