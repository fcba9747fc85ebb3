//! Rebuilding an LRTQ rack secret from `k` of its shares: `tq-core` next to
//! `vsss-rs` 3.3.4, the crate LRTQ racks were set up with.
//!
//! As at LRTQ rack setup, 255 shares are made with threshold `n/2 + 1`; both
//! crates then combine the same first `k` shares (identifiers 1..=k), byte
//! for byte.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use criterion::{Criterion, criterion_group, criterion_main};
use rand08::SeedableRng;
use std::hint::black_box;
use tq_core::crypto::lrtq::{self, LrtqShare};
use tq_core::limits::{LRTQ_SHARE_LEN, LRTQ_TOTAL_SHARES};
use vsss_rs::curve25519::WrappedScalar;
use vsss_rs::elliptic_curve::{Field, PrimeField};

/// (sled count n, threshold k = n/2 + 1) of the racks measured.
const CASES: [(usize, usize); 2] = [(32, 17), (8, 5)];

/// The 255 LRTQ shares of one fixed secret, as `vsss-rs` lays them out.
fn lrtq_setup(k: usize) -> (WrappedScalar, Vec<Vec<u8>>) {
    let mut rng = rand08::rngs::StdRng::seed_from_u64(common::SEED);
    let secret = WrappedScalar::random(&mut rng);
    let shares = vsss_rs::shamir::split_secret::<WrappedScalar, u8, Vec<u8>>(
        k,
        LRTQ_TOTAL_SHARES,
        secret,
        &mut rng,
    )
    .expect("valid threshold and count");
    (secret, shares)
}

fn to_tq_share(bytes: &[u8]) -> LrtqShare {
    let array: &[u8; LRTQ_SHARE_LEN] = bytes.try_into().expect("33-byte vsss-rs share");
    LrtqShare::from_bytes(array).expect("a share vsss-rs made")
}

fn bench_lrtq_combine(c: &mut Criterion, n: usize, k: usize) {
    let (secret, vsss_shares) = lrtq_setup(k);
    let vsss_subset = &vsss_shares[..k];
    let tq_subset: Vec<LrtqShare> = vsss_subset.iter().map(|s| to_tq_share(s)).collect();

    // Both must rebuild the same secret from the same bytes before timing.
    let by_vsss =
        vsss_rs::combine_shares::<WrappedScalar, u8, Vec<u8>>(vsss_subset).expect("k valid shares");
    assert!(by_vsss == secret, "vsss-rs round trip");
    let by_tq = lrtq::combine_lrtq(&tq_subset).expect("k valid shares");
    assert_eq!(
        by_tq.expose_secret(),
        &secret.to_repr(),
        "tq-core rebuilds the secret vsss-rs shared"
    );

    let mut group = c.benchmark_group(format!("lrtq_combine n={n} k={k}"));
    group.bench_function("tq-core", |b| {
        b.iter(|| lrtq::combine_lrtq(black_box(&tq_subset)).expect("k valid shares"))
    });
    group.bench_function("vsss-rs", |b| {
        b.iter(|| {
            vsss_rs::combine_shares::<WrappedScalar, u8, Vec<u8>>(black_box(vsss_subset))
                .expect("k valid shares")
        })
    });
    group.finish();
}

fn lrtq_combine(c: &mut Criterion) {
    for (n, k) in CASES {
        bench_lrtq_combine(c, n, k);
    }
}

criterion_group! {
    name = benches;
    config = common::quick_criterion();
    targets = lrtq_combine
}
criterion_main!(benches);
