//! Shamir sharing of a 32-byte rack secret: `tq-core` next to the `sharks`
//! crate doing the same job, in the same criterion group, on the same secret,
//! the same (n, k) and the same share x-coordinates.
//!
//! Both crates share over GF(2^8) but reduce by different polynomials
//! (`tq-core`: 0x11b, `sharks`: 0x11d), so their shares are not
//! interchangeable: each crate combines the shares it made itself. Both draw
//! their coefficients from a ChaCha12 stream seeded with the same seed.

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use rand_chacha::ChaCha12Rng;
use rand_core::SeedableRng;
use std::hint::black_box;
use subtle::ConstantTimeEq;
use tq_core::crypto::rack_secret::RackSecret;
use tq_core::crypto::shamir::{self, Share};

/// (member count n, threshold k): the largest rack at its largest and its
/// usual threshold, a small rack, and the smallest allowed configuration.
const CASES: [(usize, usize); 4] = [(32, 31), (32, 17), (8, 5), (3, 2)];

/// Largest n in [`CASES`]: the capacity of `tq-core`'s share vector.
const MAX_N: usize = 32;

type TqShares = heapless::Vec<Share, MAX_N>;

/// One fixed secret, as the value `tq-core` wraps and as the bytes `sharks`
/// takes.
fn fixed_secret() -> (RackSecret, [u8; 32]) {
    let secret = RackSecret::generate(&mut ChaCha12Rng::seed_from_u64(common::SEED))
        .expect("a seeded ChaCha12 stream is not all zero");
    let bytes = *secret.expose_secret();
    (secret, bytes)
}

fn tq_split(secret: &RackSecret, n: usize, k: usize, rng: &mut ChaCha12Rng) -> TqShares {
    let mut out = TqShares::new();
    shamir::split(secret, k, n, rng, &mut out).expect("valid (n, k)");
    out
}

/// `Sharks::dealer` is `dealer_rng` with the thread-local rand 0.8 RNG, which
/// is ChaCha12 as well; the seeded variant keeps runs repeatable.
fn sharks_split(
    bytes: &[u8; 32],
    n: usize,
    k: usize,
    rng: &mut rand08::rngs::StdRng,
) -> Vec<sharks::Share> {
    let threshold = u8::try_from(k).expect("k fits in u8");
    sharks::Sharks(threshold)
        .dealer_rng(bytes, rng)
        .take(n)
        .collect()
}

fn bench_split(c: &mut Criterion, n: usize, k: usize) {
    let (secret, bytes) = fixed_secret();
    let mut group = c.benchmark_group(format!("split n={n} k={k}"));

    let mut tq_rng = ChaCha12Rng::seed_from_u64(common::SEED);
    group.bench_function("tq-core", |b| {
        b.iter(|| tq_split(black_box(&secret), n, k, &mut tq_rng))
    });

    let mut sharks_rng = <rand08::rngs::StdRng as rand08::SeedableRng>::seed_from_u64(common::SEED);
    group.bench_function("sharks", |b| {
        b.iter(|| sharks_split(black_box(&bytes), n, k, &mut sharks_rng))
    });
    group.finish();
}

/// Shares of the fixed secret from both crates, already checked to give the
/// secret back from their first `k` (x = 1..=k), the subset every combine
/// benchmark uses.
fn checked_shares(n: usize, k: usize) -> (TqShares, Vec<sharks::Share>, [u8; 32]) {
    let (secret, bytes) = fixed_secret();
    let tq = tq_split(&secret, n, k, &mut ChaCha12Rng::seed_from_u64(common::SEED));
    let rebuilt = shamir::combine(&tq[..k]).expect("k valid shares");
    assert!(bool::from(rebuilt.ct_eq(&secret)), "tq-core round trip");

    let sharks = sharks_split(
        &bytes,
        n,
        k,
        &mut <rand08::rngs::StdRng as rand08::SeedableRng>::seed_from_u64(common::SEED),
    );
    let threshold = u8::try_from(k).expect("k fits in u8");
    let recovered = sharks::Sharks(threshold)
        .recover(&sharks[..k])
        .expect("k valid shares");
    assert_eq!(recovered, bytes, "sharks round trip");
    (tq, sharks, bytes)
}

fn bench_combine(c: &mut Criterion, n: usize, k: usize) {
    let (tq, sharks, _) = checked_shares(n, k);
    let threshold = u8::try_from(k).expect("k fits in u8");
    let mut group = c.benchmark_group(format!("combine n={n} k={k}"));
    group.bench_function("tq-core", |b| {
        b.iter(|| shamir::combine(black_box(&tq[..k])).expect("k valid shares"))
    });
    group.bench_function("sharks", |b| {
        b.iter(|| {
            sharks::Sharks(threshold)
                .recover(black_box(&sharks[..k]))
                .expect("k valid shares")
        })
    });
    group.finish();
}

fn bench_compute_share(c: &mut Criterion, n: usize, k: usize) {
    let (tq, sharks, _) = checked_shares(n, k);
    let threshold = u8::try_from(k).expect("k fits in u8");
    // The share of member n is missing from the first k (k < n): rebuild it.
    let missing_x = u8::try_from(n).expect("n fits in u8");
    let expected = tq.last().expect("n shares");
    let computed = shamir::compute_share(&tq[..k], missing_x).expect("k valid shares");
    assert_eq!(computed.x(), missing_x);
    assert!(
        bool::from(computed.expose_y().ct_eq(expected.expose_y())),
        "compute_share rebuilds the share that split made"
    );

    let mut group = c.benchmark_group(format!("compute_share n={n} k={k}"));
    group.bench_function("tq-core", |b| {
        b.iter(|| {
            shamir::compute_share(black_box(&tq[..k]), black_box(missing_x))
                .expect("k valid shares")
        })
    });
    // `sharks` cannot evaluate the polynomial at a chosen x; the closest job
    // it does is the same Lagrange interpolation at x = 0, i.e. `recover`.
    // So this row compares interpolation at one point with the same k shares.
    group.bench_function("sharks", |b| {
        b.iter(|| {
            sharks::Sharks(threshold)
                .recover(black_box(&sharks[..k]))
                .expect("k valid shares")
        })
    });
    group.finish();
}

fn sharing(c: &mut Criterion) {
    for (n, k) in CASES {
        bench_split(c, n, k);
        bench_combine(c, n, k);
        bench_compute_share(c, n, k);
    }
}

criterion_group! {
    name = benches;
    config = common::quick_criterion();
    targets = sharing
}
criterion_main!(benches);
