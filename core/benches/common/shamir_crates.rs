//! The Shamir operations of `tq-core` and of the published crates it is
//! compared with (`sharks` 0.5, `vsss-rs` 6), on the same secret, the same
//! (n, k) and the same share x-coordinates (1..=n), for the `sharing` and
//! `instructions` benches.
//!
//! All three share over GF(2^8). `vsss-rs` 6 reduces by the same polynomial
//! as `tq-core` (0x11b), so it combines `tq-core`'s own shares (checked in
//! [`checked_shares`]); `sharks` reduces by 0x11d, so it combines the shares
//! it made itself. All draw their coefficients from a ChaCha12 stream seeded
//! with the same seed.
//!
//! Omicron's `gfss` is not here: it is not published on crates.io, and its
//! git repository cannot be fetched on the build machine.

use rand_chacha::ChaCha12Rng;
use rand_core::SeedableRng;
use subtle::ConstantTimeEq;
use tq_core::crypto::rack_secret::RackSecret;
use tq_core::crypto::shamir::{self, Share};

use crate::common::SEED;

/// (member count n, threshold k): the largest rack at its largest and its
/// usual threshold, a small rack, and the smallest allowed configuration.
pub const CASES: [(usize, usize); 4] = [(32, 31), (32, 17), (8, 5), (3, 2)];

/// Largest n in [`CASES`]: the capacity of `tq-core`'s share vector.
const MAX_N: usize = 32;

pub type TqShares = heapless::Vec<Share, MAX_N>;

/// The names the crates' results carry. (`vsss-rs` 3.3.4 is the LRTQ
/// bench's.)
pub const TQ: &str = "tq-core";
pub const SHARKS: &str = "sharks";
pub const VSSS: &str = "vsss-rs 6";

/// One fixed secret, as the value `tq-core` wraps and as the bytes the other
/// crates take.
pub fn fixed_secret() -> (RackSecret, [u8; 32]) {
    let secret = RackSecret::generate(&mut ChaCha12Rng::seed_from_u64(SEED))
        .expect("a seeded ChaCha12 stream is not all zero");
    let bytes = *secret.expose_secret();
    (secret, bytes)
}

pub fn tq_rng() -> ChaCha12Rng {
    ChaCha12Rng::seed_from_u64(SEED)
}

/// `Sharks::dealer` is `dealer_rng` with the thread-local rand 0.8 RNG, which
/// is ChaCha12 as well; the seeded variant keeps runs repeatable.
pub fn sharks_rng() -> rand08::rngs::StdRng {
    <rand08::rngs::StdRng as rand08::SeedableRng>::seed_from_u64(SEED)
}

pub fn tq_split(secret: &RackSecret, n: usize, k: usize, rng: &mut ChaCha12Rng) -> TqShares {
    let mut out = TqShares::new();
    shamir::split(secret, k, n, rng, &mut out).expect("valid (n, k)");
    out
}

pub fn sharks_split(
    bytes: &[u8; 32],
    n: usize,
    k: usize,
    rng: &mut rand08::rngs::StdRng,
) -> Vec<sharks::Share> {
    sharks::Sharks(threshold(k))
        .dealer_rng(bytes, rng)
        .take(n)
        .collect()
}

/// `vsss-rs` 6 shares at x = 1..=n, each laid out as its x then the 32
/// values (the crate's byte-share format).
pub fn vsss_split(bytes: &[u8; 32], n: usize, k: usize, rng: &mut ChaCha12Rng) -> Vec<Vec<u8>> {
    let ids = (1..=threshold(n)).map(|x| vsss6::IdentifierGf256(vsss6::Gf256(x)));
    vsss6::Gf256::split_bytes_with_participant_ids_iter(k, n, bytes, rng, ids)
        .expect("valid (n, k)")
}

pub fn tq_combine(shares: &[Share]) -> RackSecret {
    shamir::combine(shares).expect("k valid shares")
}

pub fn sharks_combine(shares: &[sharks::Share], k: usize) -> Vec<u8> {
    sharks::Sharks(threshold(k))
        .recover(shares)
        .expect("k valid shares")
}

pub fn vsss_combine(shares: &[Vec<u8>]) -> Vec<u8> {
    vsss6::Gf256::combine_bytes(shares).expect("k valid shares")
}

pub fn tq_compute_share(shares: &[Share], x: u8) -> Share {
    shamir::compute_share(shares, x).expect("k valid shares")
}

/// A count or threshold of [`CASES`] as the `u8` the crates take.
pub fn threshold(k: usize) -> u8 {
    u8::try_from(k).expect("fits in u8")
}

/// Shares of the fixed secret: `tq-core`'s, the same in `vsss-rs` 6's format,
/// and `sharks`' own, each already checked to give the secret back from
/// their first `k` (x = 1..=k), the subset every combine benchmark uses.
pub struct CheckedShares {
    pub tq: TqShares,
    pub vsss: Vec<Vec<u8>>,
    pub sharks: Vec<sharks::Share>,
}

pub fn checked_shares(n: usize, k: usize) -> CheckedShares {
    let (secret, bytes) = fixed_secret();
    let tq = tq_split(&secret, n, k, &mut tq_rng());
    assert!(
        bool::from(tq_combine(&tq[..k]).ct_eq(&secret)),
        "tq-core round trip"
    );

    let vsss: Vec<Vec<u8>> = tq
        .iter()
        .map(|s| std::iter::once(s.x()).chain(*s.expose_y()).collect())
        .collect();
    assert_eq!(
        vsss_combine(&vsss[..k]),
        bytes,
        "vsss-rs 6 combines tq-core's shares"
    );

    let sharks = sharks_split(&bytes, n, k, &mut sharks_rng());
    assert_eq!(sharks_combine(&sharks[..k], k), bytes, "sharks round trip");
    CheckedShares { tq, vsss, sharks }
}

/// The x of member n, missing from the first k shares (k < n), which
/// `compute_share` rebuilds; checked to give back the share `split` made.
pub fn checked_missing_x(shares: &CheckedShares, n: usize, k: usize) -> u8 {
    let missing_x = threshold(n);
    let expected = shares.tq.last().expect("n shares");
    let computed = tq_compute_share(&shares.tq[..k], missing_x);
    assert_eq!(computed.x(), missing_x);
    assert!(
        bool::from(computed.expose_y().ct_eq(expected.expose_y())),
        "compute_share rebuilds the share that split made"
    );
    missing_x
}
