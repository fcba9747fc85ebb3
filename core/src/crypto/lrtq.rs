//! Combining LRTQ shares into the LRTQ rack secret (PROTOCOL.md sections 1
//! and 3).
//!
//! LRTQ racks split one secret scalar of the curve25519 group order field
//! into 255 Shamir shares with the `vsss-rs` 3.3.4 crate. A share is 33
//! bytes: the identifier `x` (1..=255), then `y` as a canonical
//! little-endian scalar. Upgrading such a rack rebuilds the secret once, by
//! Lagrange interpolation at `x = 0`, and its 32 little-endian bytes become
//! the epoch 1 rack secret of the new protocol.
//!
//! Identifiers are public, so the Lagrange coefficients are computed with
//! ordinary branches; the secret `y` values only ever go through
//! curve25519-dalek's constant-time scalar multiplication and addition.

use core::fmt;
use curve25519_dalek::Scalar;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::digest::ShareDigest;
use crate::crypto::rack_secret::RackSecret;
use crate::limits::{LRTQ_SHARE_LEN, MAX_LRTQ_COMBINE, SECRET_LEN};

/// Why an LRTQ share was refused or the LRTQ secret could not be rebuilt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LrtqError {
    /// Fewer than two shares: no LRTQ threshold is below two.
    TooFewShares,
    /// More than [`MAX_LRTQ_COMBINE`] shares.
    TooManyShares,
    /// A share with identifier 0, which is where the secret itself sits.
    ZeroIdentifier,
    /// Two shares with the same identifier.
    DuplicateIdentifier,
    /// A share whose value is not a canonical scalar (not below the group
    /// order), which `vsss-rs` never produces.
    NonCanonicalScalar,
    /// The shares interpolate to zero: they do not belong to one secret.
    ZeroSecret,
}

impl fmt::Display for LrtqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TooFewShares => "fewer than two LRTQ shares",
            Self::TooManyShares => "too many LRTQ shares to combine",
            Self::ZeroIdentifier => "LRTQ share has identifier 0",
            Self::DuplicateIdentifier => "two LRTQ shares have the same identifier",
            Self::NonCanonicalScalar => "LRTQ share value is not a canonical scalar",
            Self::ZeroSecret => "LRTQ shares combine to a zero secret",
        })
    }
}

impl core::error::Error for LrtqError {}

/// One LRTQ share, in exactly the byte layout `vsss-rs` 3.3.4 produced:
/// identifier byte, then the little-endian canonical scalar.
///
/// Always has a non-zero identifier and a canonical scalar. Zeroized on
/// drop; compared only through [`ConstantTimeEq`]; its `Debug` shows only
/// the (public) identifier.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct LrtqShare([u8; LRTQ_SHARE_LEN]);

impl LrtqShare {
    /// A slot for the in-place decoder of [`crate::wire`] to overwrite:
    /// *not* a valid share (its identifier is 0).
    pub(crate) const fn unfilled() -> Self {
        Self([0; LRTQ_SHARE_LEN])
    }

    /// Checks and wraps share bytes read from the LRTQ ledger or a peer. The
    /// caller still owns, and should zeroize, its copy.
    pub fn from_bytes(bytes: &[u8; LRTQ_SHARE_LEN]) -> Result<Self, LrtqError> {
        let share = Self(*bytes);
        if share.identifier() == 0 {
            return Err(LrtqError::ZeroIdentifier);
        }
        // Parsing reveals one public validity bit, never the value.
        share.value_scalar()?;
        Ok(share)
    }

    /// The share's identifier: its `x` coordinate, 1..=255.
    pub fn identifier(&self) -> u8 {
        let [identifier, ..] = self.0;
        identifier
    }

    /// The share bytes. Every call site is a place where the share leaves
    /// this type: keep them few and obvious.
    pub fn expose_bytes(&self) -> &[u8; LRTQ_SHARE_LEN] {
        &self.0
    }

    /// SHA3-256 of the 33 share bytes, as listed in the LRTQ share data.
    pub fn digest(&self) -> ShareDigest {
        ShareDigest::of_parts(&[&self.0])
    }

    /// The share's `y` value. Only fails for bytes `from_bytes` refused.
    ///
    /// Canonical means below the group order: reducing the value modulo
    /// the order leaves it unchanged, the check `from_canonical_bytes`
    /// makes. The reduction here is dalek's 512-bit one (the value as the
    /// low half), which runs on the out-of-line Montgomery multiplication
    /// the combining links anyway; `from_canonical_bytes` inlines a
    /// reduction of its own, 2 KiB more flash on the service processor.
    /// A value below the order is below 2^255, so its high bit is clear as
    /// `from_canonical_bytes` also requires.
    fn value_scalar(&self) -> Result<Zeroizing<Scalar>, LrtqError> {
        let [_, value @ ..] = &self.0;
        let mut wide = Zeroizing::new([0u8; 2 * SECRET_LEN]);
        if let Some(low) = wide.first_chunk_mut::<SECRET_LEN>() {
            *low = *value;
        }
        let reduced = Zeroizing::new(Scalar::from_bytes_mod_order_wide(&wide));
        // Whether it is canonical is public (the share is refused); the
        // value is compared in constant time all the same.
        if bool::from(reduced.as_bytes().ct_eq(value)) {
            Ok(reduced)
        } else {
            Err(LrtqError::NonCanonicalScalar)
        }
    }
}

impl ConstantTimeEq for LrtqShare {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

/// Through the share's digest (public anyway), never its bytes.
#[cfg(feature = "model")]
impl core::hash::Hash for LrtqShare {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        self.digest().hash(h);
    }
}

impl fmt::Debug for LrtqShare {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LrtqShare")
            .field("identifier", &self.identifier())
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for LrtqShare {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "LrtqShare(identifier {=u8})", self.identifier());
    }
}

/// Rebuilds the LRTQ rack secret from `shares` (any order) by Lagrange
/// interpolation at 0 through all of them.
///
/// Give exactly the LRTQ threshold of shares, or more: fewer rebuild a wrong
/// secret that nothing here can detect (the caller checks each share's
/// digest against the LRTQ share data before combining).
pub fn combine_lrtq(shares: &[LrtqShare]) -> Result<RackSecret, LrtqError> {
    if shares.len() < 2 {
        return Err(LrtqError::TooFewShares);
    }
    if shares.len() > MAX_LRTQ_COMBINE {
        return Err(LrtqError::TooManyShares);
    }
    check_distinct_identifiers(shares)?;

    // One inversion for all coefficients (Montgomery's trick inside
    // `invert_batch`); unused slots stay 1 so every input is non-zero.
    let mut inverse_denominators = [Scalar::ONE; MAX_LRTQ_COMBINE];
    for (index, slot) in inverse_denominators
        .iter_mut()
        .take(shares.len())
        .enumerate()
    {
        *slot = lagrange_denominator(shares, index);
    }
    Scalar::invert_batch(&mut inverse_denominators);

    let mut secret = Zeroizing::new(Scalar::ZERO);
    for (index, (share, inverse_denominator)) in
        shares.iter().zip(&inverse_denominators).enumerate()
    {
        let coefficient = lagrange_numerator(shares, index) * inverse_denominator;
        let mut term = share.value_scalar()?;
        *term *= &coefficient;
        *secret += &*term;
    }

    let bytes: Zeroizing<[u8; SECRET_LEN]> = Zeroizing::new(secret.to_bytes());
    // `from_bytes` only fails on an all-zero secret.
    RackSecret::from_bytes(&bytes).map_err(|_| LrtqError::ZeroSecret)
}

/// Refuses repeated identifiers, which would make a denominator zero.
fn check_distinct_identifiers(shares: &[LrtqShare]) -> Result<(), LrtqError> {
    for (index, share) in shares.iter().enumerate() {
        let identifier = share.identifier();
        if shares
            .iter()
            .skip(index + 1)
            .any(|later| later.identifier() == identifier)
        {
            return Err(LrtqError::DuplicateIdentifier);
        }
    }
    Ok(())
}

/// The identifiers of every share but the one at `index`.
fn other_identifiers(shares: &[LrtqShare], index: usize) -> impl Iterator<Item = u8> + '_ {
    shares
        .iter()
        .enumerate()
        .filter(move |(other, _)| *other != index)
        .map(|(_, share)| share.identifier())
}

/// `prod(x_j)` over `j != index`: the numerator of the coefficient at 0.
fn lagrange_numerator(shares: &[LrtqShare], index: usize) -> Scalar {
    product_of_small_factors(other_identifiers(shares, index).map(u64::from))
}

/// `prod(x_j - x_i)` over `j != i = index`: the denominator of the
/// coefficient at 0. Non-zero when the identifiers are distinct, because
/// every difference is below 256, far below the (prime) group order.
fn lagrange_denominator(shares: &[LrtqShare], index: usize) -> Scalar {
    let own = shares.get(index).map_or(0, LrtqShare::identifier);
    // Multiply magnitudes as small integers, then apply the sign once.
    let magnitude = product_of_small_factors(
        other_identifiers(shares, index).map(|x| u64::from(x.abs_diff(own))),
    );
    let negative_factors = other_identifiers(shares, index)
        .filter(|&x| x < own)
        .count();
    if negative_factors.is_multiple_of(2) {
        magnitude
    } else {
        -magnitude
    }
}

/// The product of small public integers as a scalar. Factors are multiplied
/// as `u64`s until the next one would overflow, because a scalar
/// multiplication costs far more than an integer one on the service
/// processor (identifier products have at most 31 factors below 256).
fn product_of_small_factors(factors: impl Iterator<Item = u64>) -> Scalar {
    let mut product = Scalar::ONE;
    let mut pending: u64 = 1;
    for factor in factors {
        match pending.checked_mul(factor) {
            Some(larger) => pending = larger,
            None => {
                product *= Scalar::from(pending);
                pending = factor;
            }
        }
    }
    product * Scalar::from(pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The group order minus one, little-endian: the largest canonical scalar.
    const ORDER_MINUS_ONE: [u8; 32] = [
        0xec, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x00, 0x10,
    ];

    /// A share whose value is the small integer `y`.
    fn small_share(identifier: u8, y: u8) -> LrtqShare {
        let mut bytes = [0; LRTQ_SHARE_LEN];
        bytes[0] = identifier;
        bytes[1] = y;
        LrtqShare::from_bytes(&bytes).unwrap()
    }

    fn share_with_value(identifier: u8, value: &[u8; 32]) -> Result<LrtqShare, LrtqError> {
        let mut bytes = [0; LRTQ_SHARE_LEN];
        bytes[0] = identifier;
        bytes[1..].copy_from_slice(value);
        LrtqShare::from_bytes(&bytes)
    }

    fn le_bytes(value: u8) -> [u8; 32] {
        let mut bytes = [0; 32];
        bytes[0] = value;
        bytes
    }

    #[test]
    fn shares_of_a_line_combine_to_its_constant_term() {
        // f(x) = 7 + 3x.
        let shares = [small_share(1, 10), small_share(2, 13)];
        let secret = combine_lrtq(&shares).unwrap();
        assert_eq!(secret.expose_secret(), &le_bytes(7));

        // Any order, and more points than needed, give the same value.
        let shares = [small_share(5, 22), small_share(2, 13), small_share(3, 16)];
        let secret = combine_lrtq(&shares).unwrap();
        assert_eq!(secret.expose_secret(), &le_bytes(7));
    }

    #[test]
    fn interpolation_wraps_around_the_group_order() {
        // f(x) = -1 + x, so the secret is the group order minus one.
        let shares = [small_share(2, 1), small_share(1, 0)];
        let secret = combine_lrtq(&shares).unwrap();
        assert_eq!(secret.expose_secret(), &ORDER_MINUS_ONE);

        // f(x) = -1 + 2x - x^2 at x = 3, 4, 5: -4, -9, -16.
        let minus = |n: u8| (-Scalar::from(n)).to_bytes();
        let shares = [
            share_with_value(4, &minus(9)).unwrap(),
            share_with_value(5, &minus(16)).unwrap(),
            share_with_value(3, &minus(4)).unwrap(),
        ];
        let secret = combine_lrtq(&shares).unwrap();
        assert_eq!(secret.expose_secret(), &ORDER_MINUS_ONE);
    }

    #[test]
    fn long_identifier_products_are_exact() {
        // 32 shares of the constant polynomial 5 at the largest
        // identifiers: products of 31 factors near 255 span several u64
        // chunks, and any lost factor would change the sum of coefficients.
        let shares: heapless::Vec<LrtqShare, MAX_LRTQ_COMBINE> =
            (224..=255).map(|x| small_share(x, 5)).collect();
        let secret = combine_lrtq(&shares).unwrap();
        assert_eq!(secret.expose_secret(), &le_bytes(5));
    }

    #[test]
    fn product_of_small_factors_matches_scalar_multiplication() {
        let factors = (200..=255u64).chain([1, 0xffff_ffff, 7]);
        let expected = factors
            .clone()
            .fold(Scalar::ONE, |acc, f| acc * Scalar::from(f));
        assert_eq!(product_of_small_factors(factors), expected);
        assert_eq!(product_of_small_factors(core::iter::empty()), Scalar::ONE);
    }

    #[test]
    fn identifier_zero_is_refused() {
        assert_eq!(
            share_with_value(0, &le_bytes(1)).err(),
            Some(LrtqError::ZeroIdentifier)
        );
    }

    #[test]
    fn non_canonical_scalars_are_refused() {
        assert_eq!(
            share_with_value(1, &[0xff; 32]).err(),
            Some(LrtqError::NonCanonicalScalar)
        );
        // The group order itself is the smallest non-canonical value.
        let mut order = ORDER_MINUS_ONE;
        order[0] += 1;
        assert_eq!(
            share_with_value(1, &order).err(),
            Some(LrtqError::NonCanonicalScalar)
        );
        assert!(share_with_value(1, &ORDER_MINUS_ONE).is_ok());
    }

    /// The canonical check (a wide reduction compared with the value) and
    /// the value it returns agree with dalek's `from_canonical_bytes`, on
    /// values around the group order, below it and far above it.
    #[test]
    fn canonical_check_agrees_with_from_canonical_bytes() {
        use proptest::prelude::*;
        let near_order =
            (any::<[u8; 16]>(), 0x0fu8..=0x11, any::<u8>()).prop_map(|(low, top, middle)| {
                let mut value = ORDER_MINUS_ONE;
                value[..16].copy_from_slice(&low);
                value[16] = middle % 2;
                value[31] = top;
                value
            });
        let values = prop_oneof![any::<[u8; 32]>(), near_order];
        proptest!(|(value in values, delta in 0u8..4)| {
            let mut value = value;
            // Also exactly at the order and just around it.
            if delta > 0 && value[16..31] == [0; 15] && value[31] == 0x10 {
                value[..16].copy_from_slice(&ORDER_MINUS_ONE[..16]);
                value[0] = value[0].wrapping_add(delta - 1);
            }
            let ours = share_with_value(1, &value).map(|share| share.value_scalar());
            let dalek = Option::<Scalar>::from(Scalar::from_canonical_bytes(value));
            match (ours, dalek) {
                (Ok(Ok(ours)), Some(dalek)) => prop_assert_eq!(*ours, dalek),
                (Err(LrtqError::NonCanonicalScalar), None) => {}
                (ours, dalek) => prop_assert!(false, "{:?} vs {:?}", ours.map(|r| r.is_ok()), dalek),
            }
        });
    }

    #[test]
    fn too_few_shares_are_refused() {
        assert_eq!(combine_lrtq(&[]).err(), Some(LrtqError::TooFewShares));
        assert_eq!(
            combine_lrtq(&[small_share(1, 1)]).err(),
            Some(LrtqError::TooFewShares)
        );
    }

    #[test]
    fn too_many_shares_are_refused() {
        let shares: heapless::Vec<LrtqShare, { MAX_LRTQ_COMBINE + 1 }> =
            (1..=33).map(|x| small_share(x, 5)).collect();
        assert_eq!(combine_lrtq(&shares).err(), Some(LrtqError::TooManyShares));
        let secret = combine_lrtq(&shares[..MAX_LRTQ_COMBINE]).unwrap();
        assert_eq!(secret.expose_secret(), &le_bytes(5));
    }

    #[test]
    fn duplicate_identifiers_are_refused() {
        let shares = [small_share(3, 1), small_share(9, 2), small_share(3, 4)];
        assert_eq!(
            combine_lrtq(&shares).err(),
            Some(LrtqError::DuplicateIdentifier)
        );
    }

    #[test]
    fn a_zero_secret_is_refused() {
        // f(x) = x.
        let shares = [small_share(1, 1), small_share(2, 2)];
        assert_eq!(combine_lrtq(&shares).err(), Some(LrtqError::ZeroSecret));
    }

    #[test]
    fn debug_shows_only_the_identifier() {
        let mut value = [0x5a; 32];
        value[31] = 0x05;
        let share = share_with_value(7, &value).unwrap();
        let mut out = heapless::String::<64>::new();
        core::fmt::write(&mut out, format_args!("{share:?}")).unwrap();
        assert_eq!(out.as_str(), "LrtqShare { identifier: 7, .. }");
    }

    #[test]
    fn accessors_return_what_was_given() {
        let share = small_share(200, 9);
        assert_eq!(share.identifier(), 200);
        let mut expected = [0; LRTQ_SHARE_LEN];
        expected[0] = 200;
        expected[1] = 9;
        assert_eq!(share.expose_bytes(), &expected);
    }

    #[test]
    fn digest_is_sha3_256_of_the_share_bytes() {
        // python3: hashlib.sha3_256(bytes([1, 10] + [0] * 31)).hexdigest()
        let expected = [
            0xd9, 0x72, 0x80, 0x63, 0x88, 0x22, 0x58, 0x8d, 0xab, 0xfb, 0x96, 0x78, 0x92, 0xc3,
            0xec, 0xc0, 0x6e, 0x54, 0x4d, 0x35, 0xde, 0xfe, 0x98, 0x74, 0x2a, 0xa9, 0xca, 0x59,
            0x4b, 0x1c, 0x4c, 0x9a,
        ];
        assert_eq!(small_share(1, 10).digest().as_bytes(), &expected);
    }

    #[test]
    fn equality_is_over_all_bytes() {
        let a = small_share(1, 10);
        assert!(bool::from(a.ct_eq(&a.clone())));
        assert!(!bool::from(a.ct_eq(&small_share(1, 11))));
        assert!(!bool::from(a.ct_eq(&small_share(2, 10))));
    }

    #[test]
    fn errors_display_without_panicking() {
        let all = [
            LrtqError::TooFewShares,
            LrtqError::TooManyShares,
            LrtqError::ZeroIdentifier,
            LrtqError::DuplicateIdentifier,
            LrtqError::NonCanonicalScalar,
            LrtqError::ZeroSecret,
        ];
        for error in all {
            let mut out = heapless::String::<64>::new();
            core::fmt::write(&mut out, format_args!("{error}")).unwrap();
            assert!(out.contains("LRTQ"), "{out}");
        }
    }
}
