//! Arithmetic in GF(2^8) with the Rijndael polynomial `x^8 + x^4 + x^3 + x + 1`.
//!
//! Shares are computed byte-wise in this field (PROTOCOL.md section 3), and
//! the bytes being multiplied are often secret. So nothing here branches on,
//! indexes by, or looks up a table with a field element: multiplication is
//! shift-and-add where each conditional add is a mask, and inversion is a
//! fixed chain of multiplications.
//!
//! The hot path of Shamir sharing is "add a sum of public weights times
//! secret 32-byte vectors", which [`add_weighted_sum`] computes on four
//! 64-bit lanes at once, in constant time with respect to the weights as
//! well. (The weights are Lagrange weights of public x-coordinates, computed
//! outside this module with tables: see `crypto::lagrange`.)

use core::ops::{Add, AddAssign, Mul, MulAssign};
use subtle::{Choice, ConstantTimeEq};
use zeroize::Zeroize;

use crate::limits::SECRET_LEN;

/// The low byte of the reduction polynomial: `x^8` wraps around to
/// `x^4 + x^3 + x + 1`.
const REDUCTION: u8 = 0x1b;

/// An element of GF(2^8). Addition is XOR; multiplication is modulo the
/// Rijndael polynomial.
///
/// There is no `PartialEq` or `Debug`: the value may be secret. Compare
/// through [`ConstantTimeEq`], or read the public byte `.0` when the element
/// is known to be public (an x-coordinate, a Lagrange weight).
#[derive(Clone, Copy, Default, Zeroize)]
pub struct Gf256(pub u8);

impl Gf256 {
    /// The additive identity.
    pub const ZERO: Self = Self(0);
    /// The multiplicative identity.
    pub const ONE: Self = Self(1);

    /// The product `self * rhs`, in constant time. The `*` operator calls
    /// this.
    #[allow(
        clippy::should_implement_trait,
        reason = "callers name the operation; `Mul` is implemented as well"
    )]
    #[inline]
    #[must_use]
    pub fn mul(self, rhs: Self) -> Self {
        // Each step adds `self * x^i` under a mask that is all ones when bit
        // `i` of `rhs` is set. The masks are computed together by arithmetic
        // (not one `0 - bit` per step), which leaves the compiler no
        // recognisable bit test to turn into a predicated instruction, as it
        // did on Thumb-2.
        let mut shifted = self.0;
        let mut product = 0u8;
        for mask in bit_masks(rhs.0).to_le_bytes() {
            product ^= shifted & mask;
            shifted = times_x(shifted);
        }
        Self(product)
    }

    /// The multiplicative inverse, computed as `self^254` (the group of
    /// non-zero elements has order 255) by a fixed chain of multiplications,
    /// so its running time does not depend on `self`.
    ///
    /// Zero has no inverse; this returns zero for it. Shamir callers never
    /// invert zero, because they only invert differences of distinct
    /// x-coordinates.
    #[must_use]
    pub fn invert(self) -> Self {
        let x2 = self.mul(self);
        let x3 = x2.mul(self);
        let x6 = x3.mul(x3);
        let x12 = x6.mul(x6);
        let x15 = x12.mul(x3);
        let x30 = x15.mul(x15);
        let x60 = x30.mul(x30);
        let x120 = x60.mul(x60);
        let x240 = x120.mul(x120);
        let x252 = x240.mul(x12);
        x252.mul(x2)
    }
}

impl Add for Gf256 {
    type Output = Self;
    #[allow(
        clippy::suspicious_arithmetic_impl,
        reason = "addition in GF(2^8) is XOR"
    )]
    #[inline]
    fn add(self, rhs: Self) -> Self {
        Self(self.0 ^ rhs.0)
    }
}

impl AddAssign for Gf256 {
    #[allow(
        clippy::suspicious_op_assign_impl,
        reason = "addition in GF(2^8) is XOR"
    )]
    #[inline]
    fn add_assign(&mut self, rhs: Self) {
        self.0 ^= rhs.0;
    }
}

impl Mul for Gf256 {
    type Output = Self;
    #[inline]
    fn mul(self, rhs: Self) -> Self {
        Gf256::mul(self, rhs)
    }
}

impl MulAssign for Gf256 {
    #[inline]
    fn mul_assign(&mut self, rhs: Self) {
        *self = Gf256::mul(*self, rhs);
    }
}

impl ConstantTimeEq for Gf256 {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

/// Byte `i` of the result is `0xff` if bit `i` of `b` is set, else `0x00`.
#[inline]
fn bit_masks(b: u8) -> u64 {
    // Byte `i` keeps only bit `i` of `b`, so it is non-zero exactly when
    // that bit is set.
    let spread = (u64::from(b) * LOW_BIT) & 0x8040_2010_0804_0201;
    // Adding 0x7f to the low seven bits of a byte sets its top bit exactly
    // when they are non-zero, without carrying into the next byte.
    let nonzero = (((spread & LOW_SEVEN_BITS) + LOW_SEVEN_BITS) | spread) & !LOW_SEVEN_BITS;
    (nonzero >> 7) * 0xff
}

/// Multiplies one element by `x`: shift left, and fold the bit that fell off
/// back in as the reduction polynomial, selected by multiplying by 0 or 1.
#[inline]
pub(crate) const fn times_x(a: u8) -> u8 {
    (a << 1) ^ ((a >> 7) * REDUCTION)
}

/// Bytes per lane of the packed representation.
const LANE_BYTES: usize = 8;
/// Lanes in a 32-byte vector.
const LANES: usize = SECRET_LEN / LANE_BYTES;
/// `0x7f` in every byte of a lane.
const LOW_SEVEN_BITS: u64 = 0x7f7f_7f7f_7f7f_7f7f;
/// `0x01` in every byte of a lane.
const LOW_BIT: u64 = 0x0101_0101_0101_0101;

/// Multiplies each of the eight bytes of `lane` by `x` at once: the mask
/// keeps each byte's shift from carrying into its neighbour, and each byte's
/// top bit selects the reduction constant for that byte alone.
#[inline]
fn lane_times_x(lane: u64) -> u64 {
    ((lane & LOW_SEVEN_BITS) << 1) ^ (((lane >> 7) & LOW_BIT) * u64::from(REDUCTION))
}

/// `acc += sum_j weights[j] * vectors[j]`, byte-wise in GF(2^8), in constant
/// time with respect to both the vectors and the weights. Extra weights or
/// vectors (if one is longer) are ignored.
///
/// This is Lagrange interpolation once the weights are known: the vectors
/// are shares' secret `y` bytes, the weights their Lagrange weights.
/// `vectors` is walked eight times, once per weight bit from the top
/// (Horner's rule in `x`): double the sum, then add every vector whose
/// weight has that bit, under a mask. So each term costs eight masked XORs
/// and the whole sum eight doublings, instead of eight doublings per term.
pub fn add_weighted_sum<'a>(
    acc: &mut [u8; SECRET_LEN],
    weights: &[Gf256],
    vectors: impl Iterator<Item = &'a [u8; SECRET_LEN]> + Clone,
) {
    let mut sum = [0u64; LANES];
    for bit in (0..8).rev() {
        for lane in &mut sum {
            *lane = lane_times_x(*lane);
        }
        for (weight, vector) in weights.iter().zip(vectors.clone()) {
            // All ones if the weight has this bit. (Written as a shift to
            // the top and an arithmetic shift down, LLVM turned this into
            // a branch on the bit.)
            let take = 0u64.wrapping_sub(u64::from((weight.0 >> bit) & 1));
            let (chunks, _) = vector.as_chunks::<LANE_BYTES>();
            for (lane, chunk) in sum.iter_mut().zip(chunks) {
                *lane ^= u64::from_le_bytes(*chunk) & take;
            }
        }
    }
    let (chunks, _) = acc.as_chunks_mut::<LANE_BYTES>();
    for (chunk, lane) in chunks.iter_mut().zip(sum.iter()) {
        *chunk = (u64::from_le_bytes(*chunk) ^ lane).to_le_bytes();
    }
    sum.zeroize();
}

/// The `gf256` crate's Rijndael field: an implementation independent of
/// this module, which the tests here and in `shamir` check against. (That
/// crate's default field uses a different polynomial, 0x11d.)
#[cfg(test)]
pub(crate) mod reference {
    #![allow(clippy::manual_strip, reason = "inside code the `gf` macro generates")]

    #[::gf256::gf::gf(polynomial = 0x11b, generator = 0x3)]
    pub(crate) type Rijndael;
}

#[cfg(test)]
mod tests {
    use super::reference::Rijndael;
    use super::*;

    #[test]
    fn every_product_matches_the_gf256_crate() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                let ours = Gf256(a).mul(Gf256(b)).0;
                let theirs = (Rijndael(a) * Rijndael(b)).0;
                assert_eq!(ours, theirs, "{a:#04x} * {b:#04x}");
            }
        }
    }

    #[test]
    fn every_inverse_matches_the_gf256_crate() {
        for a in 1..=255u8 {
            let inverse = Gf256(a).invert();
            assert_eq!(inverse.0, Rijndael(a).recip().0, "1 / {a:#04x}");
            assert_eq!(Gf256(a).mul(inverse).0, 1, "{a:#04x} * 1 / {a:#04x}");
        }
    }

    #[test]
    fn bit_masks_expand_each_bit_to_a_byte() {
        for b in 0..=255u8 {
            let masks = bit_masks(b).to_le_bytes();
            for (bit, mask) in masks.iter().enumerate() {
                let expected = if b & (1 << bit) != 0 { 0xff } else { 0x00 };
                assert_eq!(*mask, expected, "b = {b:#04x}, bit {bit}");
            }
        }
    }

    #[test]
    fn zero_inverts_to_zero() {
        assert_eq!(Gf256::ZERO.invert().0, 0);
    }

    #[test]
    fn fips_197_examples() {
        // FIPS 197 section 4.2: {57} * {83} = {c1}; section 5.1.1: the
        // S-box input {53} has inverse {ca}.
        assert_eq!((Gf256(0x57) * Gf256(0x83)).0, 0xc1);
        assert_eq!(Gf256(0x53).invert().0, 0xca);
    }

    #[test]
    fn operators_agree_with_the_methods() {
        let (a, b) = (Gf256(0x8e), Gf256(0x3d));
        assert_eq!((a + b).0, 0x8e ^ 0x3d);
        assert_eq!((a * b).0, a.mul(b).0);
        let mut c = a;
        c += b;
        assert_eq!(c.0, (a + b).0);
        let mut d = a;
        d *= b;
        assert_eq!(d.0, a.mul(b).0);
        assert!(bool::from(a.ct_eq(&Gf256(0x8e))));
        assert!(!bool::from(a.ct_eq(&b)));
        assert_eq!(Gf256::default().0, Gf256::ZERO.0);
        assert_eq!((Gf256::ONE * a).0, a.0);
    }

    #[test]
    fn weighted_sum_of_one_vector_matches_scalar_products_for_every_byte_in_every_position() {
        for weight in 0..=255u8 {
            for base in 0..=255u8 {
                // Every position sees every byte value as `base` runs, and
                // neighbouring positions hold different values so a carry
                // leaking across a byte or lane boundary shows up.
                let vector: [u8; SECRET_LEN] =
                    core::array::from_fn(|i| base.wrapping_add((i as u8).wrapping_mul(37)));
                let start: [u8; SECRET_LEN] =
                    core::array::from_fn(|i| (i as u8).wrapping_mul(11) ^ weight);
                let mut acc = start;
                add_weighted_sum(&mut acc, &[Gf256(weight)], core::iter::once(&vector));
                for i in 0..SECRET_LEN {
                    let expected = start[i] ^ (Rijndael(vector[i]) * Rijndael(weight)).0;
                    assert_eq!(acc[i], expected, "w={weight:#04x} base={base} i={i}");
                }
            }
        }
    }

    #[test]
    fn weighted_sum_adds_the_products_of_many_terms() {
        // Up to 255 terms (the most a basis has), each weight and byte
        // different, summed term by term with the `gf256` crate; and extra
        // weights or vectors beyond the shorter side are ignored.
        for len in [0usize, 1, 2, 3, 17, 31, 255] {
            let weights: std::vec::Vec<Gf256> = (0..=len)
                .map(|j| Gf256((j as u8).wrapping_mul(73) ^ 0x5c))
                .collect();
            let vectors: std::vec::Vec<[u8; SECRET_LEN]> = (0..=len)
                .map(|j| core::array::from_fn(|i| (i as u8).wrapping_mul(29) ^ (j as u8)))
                .collect();
            let start = [0xa5; SECRET_LEN];
            let mut short_weights = start;
            add_weighted_sum(&mut short_weights, &weights[..len], vectors.iter());
            let mut short_vectors = start;
            add_weighted_sum(&mut short_vectors, &weights, vectors[..len].iter());
            for i in 0..SECRET_LEN {
                let expected = weights[..len]
                    .iter()
                    .zip(&vectors)
                    .fold(Rijndael(start[i]), |acc, (w, v)| {
                        acc + Rijndael(w.0) * Rijndael(v[i])
                    });
                assert_eq!(short_weights[i], expected.0, "len={len} i={i}");
                assert_eq!(short_vectors[i], expected.0, "len={len} i={i}");
            }
        }
    }
}
