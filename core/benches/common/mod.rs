//! Settings shared by the criterion benchmarks of `tq-core`.
// Each bench compiles this module on its own and uses part of it.
#![allow(dead_code)]

use criterion::Criterion;
use std::time::Duration;

/// Fixed seed, so every run measures the same secrets and shares.
pub const SEED: u64 = 0x7471_2d63_6f72_6521;

/// Short runs: the build machine has two busy cores, and the whole suite
/// should finish in a few minutes. Medians stay stable at this size; raise
/// the numbers on a quiet machine for tighter confidence intervals.
pub fn quick_criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
}
