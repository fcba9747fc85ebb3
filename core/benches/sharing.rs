//! Shamir sharing of a 32-byte rack secret: `tq-core` next to the published
//! crates `sharks` 0.5 and `vsss-rs` 6 doing the same job, in the same
//! criterion group (see `common/shamir_crates.rs` for how the crates are
//! called and what is checked first).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;
#[path = "common/shamir_crates.rs"]
mod shamir_crates;

use criterion::{Criterion, criterion_group, criterion_main};
use shamir_crates::{
    CASES, CheckedShares, SHARKS, TQ, VSSS, checked_missing_x, checked_shares, fixed_secret,
    sharks_combine, sharks_rng, sharks_split, tq_combine, tq_compute_share, tq_rng, tq_split,
    vsss_combine, vsss_split,
};
use std::hint::black_box;

fn bench_split(c: &mut Criterion, n: usize, k: usize) {
    let (secret, bytes) = fixed_secret();
    let mut group = c.benchmark_group(format!("split n={n} k={k}"));
    let mut rng = tq_rng();
    group.bench_function(TQ, |b| {
        b.iter(|| tq_split(black_box(&secret), n, k, &mut rng))
    });
    let mut rng = sharks_rng();
    group.bench_function(SHARKS, |b| {
        b.iter(|| sharks_split(black_box(&bytes), n, k, &mut rng))
    });
    let mut rng = tq_rng();
    group.bench_function(VSSS, |b| {
        b.iter(|| vsss_split(black_box(&bytes), n, k, &mut rng))
    });
    group.finish();
}

fn bench_combine(c: &mut Criterion, n: usize, k: usize) {
    let CheckedShares { tq, vsss, sharks } = checked_shares(n, k);
    let mut group = c.benchmark_group(format!("combine n={n} k={k}"));
    group.bench_function(TQ, |b| b.iter(|| tq_combine(black_box(&tq[..k]))));
    group.bench_function(SHARKS, |b| {
        b.iter(|| sharks_combine(black_box(&sharks[..k]), k))
    });
    group.bench_function(VSSS, |b| b.iter(|| vsss_combine(black_box(&vsss[..k]))));
    group.finish();
}

fn bench_compute_share(c: &mut Criterion, n: usize, k: usize) {
    let shares = checked_shares(n, k);
    let missing_x = checked_missing_x(&shares, n, k);
    let CheckedShares { tq, vsss, sharks } = shares;

    let mut group = c.benchmark_group(format!("compute_share n={n} k={k}"));
    group.bench_function(TQ, |b| {
        b.iter(|| tq_compute_share(black_box(&tq[..k]), black_box(missing_x)))
    });
    // Neither other crate evaluates the polynomial at a chosen x; the
    // closest job each does is the same Lagrange interpolation at x = 0
    // (`recover`, `combine_bytes`). So these rows compare interpolation at
    // one point through the same k shares.
    group.bench_function(SHARKS, |b| {
        b.iter(|| sharks_combine(black_box(&sharks[..k]), k))
    });
    group.bench_function(VSSS, |b| b.iter(|| vsss_combine(black_box(&vsss[..k]))));
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
