//! Shamir secret sharing of the 32-byte rack secret over GF(2^8).
//!
//! Each secret byte has its own random polynomial of degree `threshold - 1`
//! whose value at `x = 0` is that byte; a share is the 32 values at one
//! non-zero `x`, so member `i` holds `x = i + 1` (PROTOCOL.md section 3).
//!
//! Splitting, combining and rebuilding a lost share are all one operation:
//! Lagrange interpolation through known points, evaluated at a target `x`
//! ([`combine`] at 0, [`compute_share`] at the lost share's `x`, [`split`]
//! at each share's `x` past the random ones). It has two halves:
//!
//! - **Weights, from public values only.** The points' x-coordinates, the
//!   target and the counts are public: a share's `x` is its owner's place
//!   in the configuration's member list, and the configuration is public;
//!   the targets are fixed by the protocol. The Lagrange weights are functions
//!   of those alone, so they are public too. `crypto::lagrange` computes
//!   them with log/exp tables and may branch on them; a timing or cache
//!   side channel there reveals only which members took part, which every
//!   peer knows.
//! - **Sums, over secret values.** The `y` bytes, the secret and the random
//!   shares meet the weights only in [`gf256::add_weighted_sum`], which
//!   runs in constant time with respect to both (no branch, index or table
//!   look-up depends on either), and are zeroized afterwards.
//!
//! Memory stays small and independent of the secret's polynomial: no
//! coefficients are ever stored, only a few bytes per point for the weights.

use core::fmt;
use core::{iter, slice};
use rand_core::TryCryptoRng;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use crate::crypto::digest::ShareDigest;
use crate::crypto::gf256::{self, Gf256};
use crate::crypto::lagrange::Basis;
use crate::crypto::rack_secret::RackSecret;
use crate::crypto::random::{self, RngError};
use crate::limits::{MAX_SHARES, SECRET_LEN};

/// Why sharing, combining or rebuilding a share failed. Nothing secret is
/// revealed by which case it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ShamirError {
    /// Interpolation needs at least two shares.
    TooFewShares,
    /// Two shares have the same x-coordinate.
    DuplicateX,
    /// A share or target x-coordinate was 0, where the secret lives.
    ZeroX,
    /// The threshold was below 2, which would make every share the secret.
    ThresholdTooSmall,
    /// The threshold was above the share count, so the secret could never be
    /// rebuilt.
    ThresholdAboveCount,
    /// More shares were asked for than GF(2^8) has non-zero x-coordinates
    /// ([`MAX_SHARES`]).
    TooManyShares,
    /// The output vector cannot hold the requested number of shares.
    OutputTooSmall,
    /// The shares interpolated to an all-zero secret, which is never a rack
    /// secret: the shares do not belong to the same split.
    ZeroSecret,
    /// The caller's RNG failed.
    Rng(RngError),
}

impl fmt::Display for ShamirError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooFewShares => f.write_str("at least two shares are needed"),
            Self::DuplicateX => f.write_str("two shares have the same x-coordinate"),
            Self::ZeroX => f.write_str("x-coordinate 0 is reserved for the secret"),
            Self::ThresholdTooSmall => f.write_str("threshold must be at least 2"),
            Self::ThresholdAboveCount => f.write_str("threshold exceeds the number of shares"),
            Self::TooManyShares => f.write_str("at most 255 shares can be made"),
            Self::OutputTooSmall => f.write_str("output cannot hold that many shares"),
            Self::ZeroSecret => f.write_str("shares combine to an all-zero secret"),
            Self::Rng(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for ShamirError {}

impl From<RngError> for ShamirError {
    fn from(e: RngError) -> Self {
        Self::Rng(e)
    }
}

/// One share: a non-zero x-coordinate and the 32 polynomial values there.
///
/// Zeroized on drop, compared only through [`ConstantTimeEq`], and its
/// `Debug` shows only `x`.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Share {
    x: u8,
    y: [u8; SECRET_LEN],
}

impl Share {
    /// A slot for the in-place decoder of [`crate::wire`] to overwrite:
    /// *not* a valid share (its `x` is 0).
    pub(crate) const fn unfilled() -> Self {
        Self {
            x: 0,
            y: [0; SECRET_LEN],
        }
    }

    /// A share from its parts (as received or loaded). `x` must not be 0,
    /// because that point is the secret itself.
    pub fn new(x: u8, y: &[u8; SECRET_LEN]) -> Result<Self, ShamirError> {
        if x == 0 {
            return Err(ShamirError::ZeroX);
        }
        Ok(Self { x, y: *y })
    }

    /// The x-coordinate (public).
    pub fn x(&self) -> u8 {
        self.x
    }

    /// The secret y bytes. Every call site is a place where share bytes leave
    /// this type: keep them few and obvious.
    pub fn expose_y(&self) -> &[u8; SECRET_LEN] {
        &self.y
    }

    /// SHA3-256 over `x || y`, as listed in a configuration.
    pub fn digest(&self) -> ShareDigest {
        ShareDigest::of_parts(&[&[self.x], &self.y])
    }

    /// Whether this share hashes to `digest`, without revealing where the
    /// digests first differ.
    pub fn matches(&self, digest: &ShareDigest) -> Choice {
        self.digest().ct_eq(digest)
    }
}

impl ConstantTimeEq for Share {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.x.ct_eq(&other.x) & self.y.ct_eq(&other.y)
    }
}

/// Through the share's digest (public anyway), never its bytes.
#[cfg(feature = "model")]
impl core::hash::Hash for Share {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        self.digest().hash(h);
    }
}

impl fmt::Debug for Share {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Share")
            .field("x", &self.x)
            .finish_non_exhaustive()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Share {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "Share {{ x: {=u8}, .. }}", self.x);
    }
}

/// Splits `secret` into `count` shares, any `threshold` of which rebuild it.
///
/// Clears `out`, then pushes the shares with `x = 1..=count` in order. On
/// error `out` is left empty. Draws `(threshold - 1) * 32` bytes from `rng`.
pub fn split<R: TryCryptoRng + ?Sized, const N: usize>(
    secret: &RackSecret,
    threshold: usize,
    count: usize,
    rng: &mut R,
    out: &mut heapless::Vec<Share, N>,
) -> Result<(), ShamirError> {
    out.clear();
    if threshold < 2 {
        return Err(ShamirError::ThresholdTooSmall);
    }
    if count > MAX_SHARES {
        return Err(ShamirError::TooManyShares);
    }
    if threshold > count {
        return Err(ShamirError::ThresholdAboveCount);
    }
    if count > N {
        return Err(ShamirError::OutputTooSmall);
    }
    let result = push_shares(secret, threshold, count, rng, out);
    if result.is_err() {
        // Dropping the partial shares zeroizes them.
        out.clear();
    }
    result
}

/// The body of [`split`], after its arguments are checked.
///
/// A uniformly random polynomial of degree `k - 1` with a fixed value at 0
/// is the same thing as uniformly random values at `x = 1..k-1`: for a fixed
/// value at 0, the map from the `k - 1` free coefficients to the values at
/// those `k - 1` points is linear and invertible (a Vandermonde system over
/// distinct points), so it carries the uniform distribution to the uniform
/// distribution. So the first `k - 1` shares are random bytes, and each
/// remaining share is the polynomial through `(0, secret)` and those shares,
/// evaluated at its `x`. No coefficients are stored.
fn push_shares<R: TryCryptoRng + ?Sized, const N: usize>(
    secret: &RackSecret,
    threshold: usize,
    count: usize,
    rng: &mut R,
    out: &mut heapless::Vec<Share, N>,
) -> Result<(), ShamirError> {
    // Both fit in a u8 because `threshold <= count <= MAX_SHARES`.
    let threshold = u8::try_from(threshold).map_err(|_| ShamirError::TooManyShares)?;
    let count = u8::try_from(count).map_err(|_| ShamirError::TooManyShares)?;

    for x in 1..threshold {
        let mut share = Share {
            x,
            y: [0; SECRET_LEN],
        };
        random::fill(rng, &mut share.y)?;
        out.push(share).map_err(|_| ShamirError::OutputTooSmall)?;
    }

    // The random shares' points, then the secret's.
    let mut basis = Basis::empty();
    basis.set_points((1..threshold).chain(iter::once(0)))?;
    let mut weights = [Gf256::ZERO; MAX_SHARES];
    for x in threshold..=count {
        let mut share = Share {
            x,
            y: [0; SECRET_LEN],
        };
        let (secret_weight, random_weights) = basis
            .weights_at(x, &mut weights)
            .split_last()
            .ok_or(ShamirError::TooFewShares)?;
        // `out` starts with the random shares; the weights stop the sum
        // before the shares pushed here.
        gf256::add_weighted_sum(&mut share.y, random_weights, out.iter().map(|s| &s.y));
        gf256::add_weighted_sum(
            &mut share.y,
            slice::from_ref(secret_weight),
            iter::once(secret.expose_secret()),
        );
        out.push(share).map_err(|_| ShamirError::OutputTooSmall)?;
    }
    Ok(())
}

/// The shares' y bytes, in order, for [`gf256::add_weighted_sum`]: the only
/// place combining and rebuilding touch them.
fn ys(shares: &[Share]) -> impl Iterator<Item = &[u8; SECRET_LEN]> + Clone {
    shares.iter().map(|s| &s.y)
}

/// Rebuilds the secret from shares of one split: the polynomial through all
/// given shares, evaluated at 0.
///
/// Given at least `threshold` shares of one split this is the secret. Fewer,
/// or shares of different splits, give an unrelated value (or
/// [`ShamirError::ZeroSecret`]): check shares against their digests first.
pub fn combine(shares: &[Share]) -> Result<RackSecret, ShamirError> {
    let mut basis = Basis::empty();
    basis.set_points(shares.iter().map(|s| s.x))?;
    let mut weights = [Gf256::ZERO; MAX_SHARES];
    let mut secret = Zeroizing::new([0u8; SECRET_LEN]);
    gf256::add_weighted_sum(&mut secret, basis.weights_at(0, &mut weights), ys(shares));
    // `from_bytes` refuses only an all-zero secret.
    RackSecret::from_bytes(&secret).map_err(|_| ShamirError::ZeroSecret)
}

/// The share at `x` of the split the given shares belong to: how a node
/// rebuilds its own lost share from `threshold` others.
///
/// If `x` is one of the given shares' coordinates, that share comes back.
pub fn compute_share(shares: &[Share], x: u8) -> Result<Share, ShamirError> {
    if x == 0 {
        return Err(ShamirError::ZeroX);
    }
    let mut basis = Basis::empty();
    basis.set_points(shares.iter().map(|s| s.x))?;
    let mut share = Share {
        x,
        y: [0; SECRET_LEN],
    };
    let mut weights = [Gf256::ZERO; MAX_SHARES];
    gf256::add_weighted_sum(&mut share.y, basis.weights_at(x, &mut weights), ys(shares));
    Ok(share)
}

#[cfg(test)]
mod tests {
    extern crate std;

    use super::*;
    use crate::crypto::gf256::reference::Rijndael;
    use proptest::prelude::*;
    use proptest::sample::subsequence;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{Rng, SeedableRng};
    use std::vec::Vec;

    type Shares = heapless::Vec<Share, MAX_SHARES>;

    fn secret_from_seed(seed: u64) -> RackSecret {
        RackSecret::generate(&mut ChaCha20Rng::seed_from_u64(seed)).unwrap()
    }

    fn split_from_seed(secret: &RackSecret, k: usize, n: usize, seed: u64) -> Shares {
        let mut shares = Shares::new();
        split(
            secret,
            k,
            n,
            &mut ChaCha20Rng::seed_from_u64(seed),
            &mut shares,
        )
        .unwrap();
        shares
    }

    fn pick(shares: &[Share], indices: &[usize]) -> Vec<Share> {
        indices.iter().map(|&i| shares[i].clone()).collect()
    }

    fn same_secret(a: &RackSecret, b: &RackSecret) -> bool {
        bool::from(a.ct_eq(b))
    }

    /// An RNG that always fails, as a broken hardware RNG might.
    struct FailingRng;
    #[derive(Debug)]
    struct HardwareFault;
    impl fmt::Display for HardwareFault {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("hardware fault")
        }
    }
    impl core::error::Error for HardwareFault {}
    impl rand_core::TryRng for FailingRng {
        type Error = HardwareFault;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Err(HardwareFault)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Err(HardwareFault)
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Self::Error> {
            Err(HardwareFault)
        }
    }
    impl rand_core::TryCryptoRng for FailingRng {}

    /// (seed, n, k, a shuffled k-subset of 0..n, a member outside it).
    fn split_case(max_n: usize) -> impl Strategy<Value = (u64, usize, usize, Vec<usize>)> {
        (2..=max_n)
            .prop_flat_map(|n| (Just(n), 2..=n))
            .prop_flat_map(|(n, k)| {
                (
                    any::<u64>(),
                    Just(n),
                    Just(k),
                    subsequence((0..n).collect::<Vec<_>>(), k).prop_shuffle(),
                )
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn any_threshold_of_shares_rebuilds_the_secret_and_fewer_do_not(
            (seed, n, k, subset) in split_case(48)
        ) {
            let secret = secret_from_seed(seed);
            let shares = split_from_seed(&secret, k, n, seed ^ 1);
            prop_assert_eq!(shares.len(), n);
            for (i, share) in shares.iter().enumerate() {
                prop_assert_eq!(usize::from(share.x()), i + 1);
            }

            let enough = pick(&shares, &subset);
            prop_assert!(same_secret(&combine(&enough).unwrap(), &secret));

            let too_few = &enough[..k - 1];
            match combine(too_few) {
                Ok(other) => prop_assert!(!same_secret(&other, &secret)),
                Err(e) => prop_assert!(
                    e == ShamirError::ZeroSecret || (k == 2 && e == ShamirError::TooFewShares),
                    "unexpected {:?}", e
                ),
            }
        }

        #[test]
        fn any_threshold_of_other_shares_rebuilds_each_missing_share(
            (seed, n, k, subset) in split_case(40)
        ) {
            let secret = secret_from_seed(seed);
            let shares = split_from_seed(&secret, k, n, seed ^ 2);
            let known = pick(&shares, &subset);
            for missing in shares.iter().filter(|s| !subset.contains(&(usize::from(s.x()) - 1))) {
                let rebuilt = compute_share(&known, missing.x()).unwrap();
                prop_assert!(bool::from(rebuilt.ct_eq(missing)), "x = {}", missing.x());
            }
        }

        #[test]
        fn shares_of_an_independent_polynomial_combine_to_its_constant_term(
            coefficients in prop::collection::vec(any::<[u8; SECRET_LEN]>(), 2..=20),
            extra in 0usize..4,
        ) {
            // Evaluate each byte's polynomial with the `gf256` crate (Horner,
            // highest coefficient last in the vector).
            let k = coefficients.len();
            let constant = coefficients[0];
            prop_assume!(constant != [0; SECRET_LEN]);
            let evaluate = |x: u8| -> [u8; SECRET_LEN] {
                core::array::from_fn(|byte| {
                    coefficients
                        .iter()
                        .rev()
                        .fold(Rijndael(0), |acc, c| acc * Rijndael(x) + Rijndael(c[byte]))
                        .0
                })
            };
            let shares: Vec<Share> = (1..=(k + extra) as u8)
                .map(|x| Share::new(x, &evaluate(x)).unwrap())
                .collect();
            let secret = combine(&shares).unwrap();
            prop_assert_eq!(secret.expose_secret(), &constant);

            let target = (k + extra + 1) as u8;
            let rebuilt = compute_share(&shares[..k], target).unwrap();
            prop_assert_eq!(rebuilt.expose_y(), &evaluate(target));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        /// `vsss-rs` 6 shares bytes over the same field (0x11b) with the
        /// same layout (x, then the values), so each side combines the
        /// other's shares, and `compute_share` rebuilds any of its shares.
        #[test]
        fn shares_interoperate_with_vsss_rs_6(
            (seed, n, k, subset) in split_case(40)
        ) {
            use vsss6::{Gf256 as VsssField, IdentifierGf256};

            let secret = secret_from_seed(seed);
            let ours = split_from_seed(&secret, k, n, seed ^ 3);
            let as_bytes = |s: &Share| -> Vec<u8> { iter::once(s.x).chain(s.y).collect() };
            let picked: Vec<Vec<u8>> = subset.iter().map(|&i| as_bytes(&ours[i])).collect();
            let recovered = VsssField::combine_bytes(&picked).unwrap();
            prop_assert_eq!(recovered.as_slice(), secret.expose_secret().as_slice());

            let ids = (1..=n as u8).map(|x| IdentifierGf256(VsssField(x)));
            let theirs = VsssField::split_bytes_with_participant_ids_iter(
                k,
                n,
                secret.expose_secret(),
                ChaCha20Rng::seed_from_u64(seed ^ 4),
                ids,
            )
            .unwrap();
            let theirs: Vec<Share> = theirs
                .iter()
                .map(|bytes| Share::new(bytes[0], bytes[1..].try_into().unwrap()).unwrap())
                .collect();
            let known = pick(&theirs, &subset);
            prop_assert!(same_secret(&combine(&known).unwrap(), &secret));
            for missing in theirs.iter().filter(|s| !subset.contains(&(usize::from(s.x()) - 1))) {
                let rebuilt = compute_share(&known, missing.x()).unwrap();
                prop_assert!(bool::from(rebuilt.ct_eq(missing)), "x = {}", missing.x());
            }
        }
    }

    #[test]
    fn the_largest_splits_round_trip() {
        let secret = secret_from_seed(7);
        for k in [2, 128, MAX_SHARES - 1, MAX_SHARES] {
            let shares = split_from_seed(&secret, k, MAX_SHARES, 8);
            let last: Vec<Share> = shares[MAX_SHARES - k..].to_vec();
            assert!(same_secret(&combine(&last).unwrap(), &secret), "k = {k}");
            assert!(same_secret(&combine(&shares).unwrap(), &secret), "k = {k}");
            if k > 2 {
                assert!(
                    !same_secret(&combine(&last[1..]).unwrap(), &secret),
                    "k = {k}"
                );
            }
        }
        // Rebuilding the first share from the 254 others needs k <= 254.
        let shares = split_from_seed(&secret, MAX_SHARES - 1, MAX_SHARES, 9);
        let rebuilt = compute_share(&shares[1..], 1).unwrap();
        assert!(bool::from(rebuilt.ct_eq(&shares[0])));
    }

    #[test]
    fn split_is_reproducible_from_a_seed() {
        let secret = secret_from_seed(3);
        let a = split_from_seed(&secret, 3, 5, 10);
        let b = split_from_seed(&secret, 3, 5, 10);
        let c = split_from_seed(&secret, 3, 5, 11);
        for (a, b) in a.iter().zip(&b) {
            assert!(bool::from(a.ct_eq(b)));
        }
        assert!(a.iter().zip(&c).all(|(a, c)| !bool::from(a.ct_eq(c))));
    }

    #[test]
    fn split_consumes_threshold_minus_one_vectors_of_randomness() {
        let secret = secret_from_seed(4);
        let mut rng = ChaCha20Rng::seed_from_u64(12);
        let mut shares = Shares::new();
        split(&secret, 4, 6, &mut rng, &mut shares).unwrap();
        let mut expected = ChaCha20Rng::seed_from_u64(12);
        let mut skipped = [0u8; 3 * SECRET_LEN];
        expected.fill_bytes(&mut skipped);
        assert_eq!(rng.next_u64(), expected.next_u64());
    }

    #[test]
    fn split_replaces_what_was_in_the_output() {
        let secret = secret_from_seed(5);
        let mut shares = split_from_seed(&secret, 2, 4, 1);
        split(
            &secret,
            2,
            3,
            &mut ChaCha20Rng::seed_from_u64(2),
            &mut shares,
        )
        .unwrap();
        let xs: Vec<u8> = shares.iter().map(Share::x).collect();
        assert_eq!(xs, [1, 2, 3]);
    }

    #[test]
    fn split_refuses_bad_parameters_and_leaves_the_output_empty() {
        let secret = secret_from_seed(6);
        let cases: [(usize, usize, ShamirError); 5] = [
            (0, 3, ShamirError::ThresholdTooSmall),
            (1, 3, ShamirError::ThresholdTooSmall),
            (4, 3, ShamirError::ThresholdAboveCount),
            (2, MAX_SHARES + 1, ShamirError::TooManyShares),
            (2, 5, ShamirError::OutputTooSmall),
        ];
        for (k, n, expected) in cases {
            let mut out = heapless::Vec::<Share, 4>::new();
            out.push(Share::new(9, &[1; SECRET_LEN]).unwrap()).unwrap();
            let got = split(&secret, k, n, &mut ChaCha20Rng::seed_from_u64(0), &mut out);
            assert_eq!(got, Err(expected), "k = {k}, n = {n}");
            assert!(out.is_empty());
        }
    }

    #[test]
    fn split_reports_a_failing_rng_and_leaves_the_output_empty() {
        let secret = secret_from_seed(6);
        let mut out = Shares::new();
        assert_eq!(
            split(&secret, 2, 3, &mut FailingRng, &mut out),
            Err(ShamirError::Rng(RngError))
        );
        assert!(out.is_empty());
    }

    #[test]
    fn interpolation_refuses_bad_share_sets() {
        let one = Share::new(1, &[1; SECRET_LEN]).unwrap();
        let two = Share::new(2, &[2; SECRET_LEN]).unwrap();
        assert_eq!(combine(&[]).err(), Some(ShamirError::TooFewShares));
        assert_eq!(
            combine(core::slice::from_ref(&one)).err(),
            Some(ShamirError::TooFewShares)
        );
        assert_eq!(
            compute_share(core::slice::from_ref(&one), 2).err(),
            Some(ShamirError::TooFewShares)
        );
        let twice = [one.clone(), two.clone(), one.clone()];
        assert_eq!(combine(&twice).err(), Some(ShamirError::DuplicateX));
        assert_eq!(
            compute_share(&twice, 3).err(),
            Some(ShamirError::DuplicateX)
        );
        assert_eq!(
            compute_share(&[one, two], 0).err(),
            Some(ShamirError::ZeroX)
        );
    }

    #[test]
    fn shares_that_interpolate_to_zero_are_refused() {
        // A line through (1, 5) and (2, 10) hits 0 at x = 0 byte-wise:
        // y = 5x in GF(2^8), and 5 * 2 = 10 there.
        let shares = [
            Share::new(1, &[5; SECRET_LEN]).unwrap(),
            Share::new(2, &[10; SECRET_LEN]).unwrap(),
        ];
        assert_eq!(combine(&shares).err(), Some(ShamirError::ZeroSecret));
    }

    #[test]
    fn a_share_cannot_have_x_zero() {
        assert_eq!(
            Share::new(0, &[1; SECRET_LEN]).err(),
            Some(ShamirError::ZeroX)
        );
    }

    #[test]
    fn compute_share_at_a_given_x_returns_that_share() {
        let secret = secret_from_seed(9);
        let shares = split_from_seed(&secret, 3, 4, 9);
        let again = compute_share(&shares[..3], 2).unwrap();
        assert!(bool::from(again.ct_eq(&shares[1])));
    }

    #[test]
    fn digest_is_sha3_of_x_then_y_and_matches_only_its_share() {
        let y: [u8; SECRET_LEN] = core::array::from_fn(|i| i as u8);
        let share = Share::new(7, &y).unwrap();
        let mut bytes = [0u8; 1 + SECRET_LEN];
        bytes[0] = 7;
        bytes[1..].copy_from_slice(&y);
        assert_eq!(share.digest(), ShareDigest::of_parts(&[&bytes]));
        assert!(bool::from(share.matches(&share.digest())));

        let other_x = Share::new(8, &y).unwrap();
        let mut y2 = y;
        y2[31] ^= 1;
        let other_y = Share::new(7, &y2).unwrap();
        assert!(!bool::from(share.matches(&other_x.digest())));
        assert!(!bool::from(share.matches(&other_y.digest())));
    }

    #[test]
    fn ct_eq_compares_both_coordinates() {
        let a = Share::new(1, &[3; SECRET_LEN]).unwrap();
        assert!(bool::from(a.ct_eq(&a.clone())));
        assert!(!bool::from(
            a.ct_eq(&Share::new(2, &[3; SECRET_LEN]).unwrap())
        ));
        assert!(!bool::from(
            a.ct_eq(&Share::new(1, &[4; SECRET_LEN]).unwrap())
        ));
        assert_eq!(a.x(), 1);
        assert_eq!(a.expose_y(), &[3; SECRET_LEN]);
    }

    #[test]
    fn debug_shows_only_x() {
        let share = Share::new(3, &[0xab; SECRET_LEN]).unwrap();
        let mut out = heapless::String::<64>::new();
        core::fmt::write(&mut out, format_args!("{share:?}")).unwrap();
        assert_eq!(out.as_str(), "Share { x: 3, .. }");
    }

    #[test]
    fn every_error_displays_a_distinct_message() {
        let all = [
            ShamirError::TooFewShares,
            ShamirError::DuplicateX,
            ShamirError::ZeroX,
            ShamirError::ThresholdTooSmall,
            ShamirError::ThresholdAboveCount,
            ShamirError::TooManyShares,
            ShamirError::OutputTooSmall,
            ShamirError::ZeroSecret,
            ShamirError::Rng(RngError),
        ];
        let messages: Vec<std::string::String> =
            all.iter().map(std::string::ToString::to_string).collect();
        for (i, a) in messages.iter().enumerate() {
            assert!(!a.is_empty());
            for b in &messages[i + 1..] {
                assert_ne!(a, b);
            }
        }
    }
}
