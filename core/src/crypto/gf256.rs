//! Arithmetic in GF(2^8) with the Rijndael polynomial `x^8 + x^4 + x^3 + x + 1`.
//!
//! Shares are computed byte-wise in this field (PROTOCOL.md section 3), and
//! the bytes being multiplied are often secret. So nothing here branches on,
//! indexes by, or looks up a table with a field element: multiplication is
//! shift-and-add where each conditional add is a mask, and inversion is a
//! fixed chain of multiplications.
//!
//! The hot path of Shamir sharing is "add a public coefficient times a secret
//! 32-byte vector into an accumulator", which [`add_scaled`] does on four
//! 64-bit lanes at once.

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
fn times_x(a: u8) -> u8 {
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

/// Reads a 32-byte vector as four little-endian lanes.
#[inline]
fn to_lanes(bytes: &[u8; SECRET_LEN]) -> [u64; LANES] {
    let mut lanes = [0u64; LANES];
    let (chunks, _) = bytes.as_chunks::<LANE_BYTES>();
    for (lane, chunk) in lanes.iter_mut().zip(chunks) {
        *lane = u64::from_le_bytes(*chunk);
    }
    lanes
}

/// `acc += coefficient * vector`, byte-wise in GF(2^8), in constant time
/// with respect to both the vector and the coefficient.
///
/// This is the inner step of Lagrange interpolation: the vector is a share's
/// secret `y` bytes and the coefficient a Lagrange weight.
pub fn add_scaled(acc: &mut [u8; SECRET_LEN], vector: &[u8; SECRET_LEN], coefficient: Gf256) {
    let mut powers = to_lanes(vector);
    let mut sum = to_lanes(acc);
    for bit in 0..8 {
        // As in `Gf256::mul`, but each step moves 32 bytes: add
        // `vector * x^bit` under a mask, then advance to `x^(bit + 1)`.
        let take = 0u64.wrapping_sub(u64::from((coefficient.0 >> bit) & 1));
        for (s, p) in sum.iter_mut().zip(powers.iter_mut()) {
            *s ^= *p & take;
            *p = lane_times_x(*p);
        }
    }
    let (chunks, _) = acc.as_chunks_mut::<LANE_BYTES>();
    for (chunk, lane) in chunks.iter_mut().zip(sum.iter()) {
        *chunk = lane.to_le_bytes();
    }
    powers.zeroize();
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
    fn add_scaled_matches_scalar_products_for_every_byte_in_every_position() {
        for coefficient in 0..=255u8 {
            for base in 0..=255u8 {
                // Every position sees every byte value as `base` runs, and
                // neighbouring positions hold different values so a carry
                // leaking across a byte or lane boundary shows up.
                let vector: [u8; SECRET_LEN] =
                    core::array::from_fn(|i| base.wrapping_add((i as u8).wrapping_mul(37)));
                let start: [u8; SECRET_LEN] =
                    core::array::from_fn(|i| (i as u8).wrapping_mul(11) ^ coefficient);
                let mut acc = start;
                add_scaled(&mut acc, &vector, Gf256(coefficient));
                for i in 0..SECRET_LEN {
                    let expected = start[i] ^ Gf256(vector[i]).mul(Gf256(coefficient)).0;
                    assert_eq!(acc[i], expected, "c={coefficient:#04x} base={base} i={i}");
                }
            }
        }
    }
}
