//! Timing-leak tests (dudect: fixed-vs-random Welch t-tests on run times) for
//! the GF(2^8) arithmetic, the Shamir operations and the LRTQ combine of
//! `tq-core`.
//!
//! The Shamir tests hold the x-coordinates fixed (1..=K) in both classes:
//! they are public, and the Lagrange weights computed from them with tables
//! may take time that depends on them. Only the share bytes and the secret
//! are classed.
//!
//! Each test times one operation on inputs of two classes, interleaved at
//! random: *Left* holds the secret input at a fixed, "special" value (zero
//! or mostly zero, where table or early-exit code would be fastest), *Right*
//! draws it uniformly at random. Public inputs (x-coordinates, the other
//! operand) are drawn the same way in both classes. A max |t| above about
//! 4.5 means the run time depends on the secret.
//!
//! Inputs are made a chunk at a time, before the chunk is timed, so drawing
//! them is not measured. Run with `cargo bench --bench constant_time`
//! (`-- --help` lists the options).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use dudect_bencher::ctbench::{BenchFn, BenchMetadata, BenchName, BenchOpts, run_benches_console};
use dudect_bencher::rand::{Rng, RngExt};
use dudect_bencher::{BenchRng, Class, CtRunner};
use rand_chacha::ChaCha12Rng;
use rand_core::SeedableRng;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::ExitCode;
use tq_core::crypto::gf256::{self, Gf256};
use tq_core::crypto::lrtq::{self, LrtqShare};
use tq_core::crypto::rack_secret::RackSecret;
use tq_core::crypto::shamir::{self, Share};

/// Samples of each GF(2^8) test: cheap, so many.
const FIELD_SAMPLES: usize = 5_000_000;
/// Samples of each test on K shares.
const SHARE_SAMPLES: usize = 1_000_000;
/// Samples of each control: their leaks are large.
const CONTROL_SAMPLES: usize = 50_000;
/// Samples drawn before each timed chunk.
const CHUNK: usize = 10_000;

/// One multiplication is shorter than the clock's resolution, so a sample
/// times this many, all on operands of the sample's class.
const MULS_PER_SAMPLE: usize = 64;
/// Terms of the `weighted_sum` timed in one sample.
const TERMS: usize = 8;
/// Shares in the combine tests: the usual threshold of a 32-sled rack.
const K: u8 = 17;

/// Draws `samples` inputs with `make`, a chunk at a time, each of a random
/// class, and times `op` on each.
fn time_classes<I, T>(
    runner: &mut CtRunner,
    rng: &mut BenchRng,
    samples: usize,
    mut make: impl FnMut(Class, &mut BenchRng) -> I,
    op: impl Fn(&I) -> T,
) {
    for _ in 0..samples.div_ceil(CHUNK) {
        let inputs: Vec<(Class, I)> = (0..CHUNK)
            .map(|_| {
                let class = if rng.random::<bool>() {
                    Class::Left
                } else {
                    Class::Right
                };
                (class, make(class, rng))
            })
            .collect();
        for (class, input) in &inputs {
            runner.run_one(*class, || op(black_box(input)));
        }
    }
}

/// Left: all zero; Right: uniformly random.
fn secret_bytes<const LEN: usize>(class: Class, rng: &mut BenchRng) -> [u8; LEN] {
    let mut bytes = [0u8; LEN];
    if let Class::Right = class {
        rng.fill_bytes(&mut bytes);
    }
    bytes
}

fn public_bytes<const LEN: usize>(rng: &mut BenchRng) -> [u8; LEN] {
    let mut bytes = [0u8; LEN];
    rng.fill_bytes(&mut bytes);
    bytes
}

/// Multiplies pairwise and folds the products, so none can be dropped.
fn mul_pairs(lhs: &[u8; MULS_PER_SAMPLE], rhs: &[u8; MULS_PER_SAMPLE]) -> u8 {
    lhs.iter()
        .zip(rhs)
        .fold(0, |acc, (&a, &b)| acc ^ Gf256(a).mul(Gf256(b)).0)
}

/// (a) `Gf256::mul`, secret left operand: zero vs random.
fn gf256_mul_secret_lhs(runner: &mut CtRunner, rng: &mut BenchRng) {
    time_classes(
        runner,
        rng,
        FIELD_SAMPLES,
        |class, rng| (secret_bytes(class, rng), public_bytes(rng)),
        |(secret, public)| mul_pairs(secret, public),
    );
}

/// (a) `Gf256::mul`, secret right operand: zero vs random.
fn gf256_mul_secret_rhs(runner: &mut CtRunner, rng: &mut BenchRng) {
    time_classes(
        runner,
        rng,
        FIELD_SAMPLES,
        |class, rng| (secret_bytes(class, rng), public_bytes(rng)),
        |(secret, public)| mul_pairs(public, secret),
    );
}

/// `add_weighted_sum` of `TERMS` vectors.
fn weighted_sum_all(vectors: &[[u8; 32]; TERMS], weights: &[u8; TERMS]) -> [u8; 32] {
    let mut acc = [0u8; 32];
    gf256::add_weighted_sum(&mut acc, &weights.map(Gf256), vectors.iter());
    acc
}

/// (c) packed `add_weighted_sum`, secret 32-byte vectors: zero vs random.
fn gf256_weighted_sum_secret_vectors(runner: &mut CtRunner, rng: &mut BenchRng) {
    time_classes(
        runner,
        rng,
        FIELD_SAMPLES,
        |class, rng| {
            let vectors: [[u8; 32]; TERMS] = std::array::from_fn(|_| secret_bytes(class, rng));
            (vectors, public_bytes(rng))
        },
        |(vectors, weights)| weighted_sum_all(vectors, weights),
    );
}

/// (c) packed `add_weighted_sum`, secret weights: zero vs random.
fn gf256_weighted_sum_secret_weights(runner: &mut CtRunner, rng: &mut BenchRng) {
    time_classes(
        runner,
        rng,
        FIELD_SAMPLES,
        |class, rng| {
            let vectors: [[u8; 32]; TERMS] = std::array::from_fn(|_| public_bytes(rng));
            (vectors, secret_bytes(class, rng))
        },
        |(vectors, weights)| weighted_sum_all(vectors, weights),
    );
}

/// The y bytes of K shares at x = 1..=K. Left: every byte zero except share
/// 1's, which are all one, so the secret is non-zero and `combine` takes the
/// same success path as for Right; Right: uniformly random.
fn y_bytes_of_class(class: Class, rng: &mut BenchRng) -> Vec<(u8, [u8; 32])> {
    (1..=K)
        .map(|x| match class {
            Class::Left if x == 1 => (x, [1; 32]),
            _ => (x, secret_bytes(class, rng)),
        })
        .collect()
}

fn shares_of_class(class: Class, rng: &mut BenchRng) -> Vec<Share> {
    y_bytes_of_class(class, rng)
        .iter()
        .map(|(x, y)| Share::new(*x, y).expect("x in 1..=255"))
        .collect()
}

/// (b) `combine` of K shares: fixed vs random y bytes.
fn shamir_combine_k17(runner: &mut CtRunner, rng: &mut BenchRng) {
    time_classes(runner, rng, SHARE_SAMPLES, shares_of_class, |shares| {
        shamir::combine(shares).map(|secret| *secret.expose_secret())
    });
}

/// `compute_share` of K shares at a missing x: fixed vs random y bytes.
fn shamir_compute_share_k17(runner: &mut CtRunner, rng: &mut BenchRng) {
    time_classes(runner, rng, SHARE_SAMPLES, shares_of_class, |shares| {
        shamir::compute_share(shares, 32).map(|share| *share.expose_y())
    });
}

/// `split` into 32 shares with threshold K: fixed vs random secret. Left:
/// the secret is zero except its first byte (a rack secret is never all
/// zero); Right: uniformly random. The RNG that draws the random shares is
/// seeded at random in both classes.
fn shamir_split_k17(runner: &mut CtRunner, rng: &mut BenchRng) {
    let make = |class: Class, rng: &mut BenchRng| {
        let mut bytes: [u8; 32] = secret_bytes(class, rng);
        if let Class::Left = class {
            bytes[0] = 1;
        }
        let secret = RackSecret::from_bytes(&bytes).expect("not all zero");
        (secret, rng.random::<u64>())
    };
    time_classes(runner, rng, SHARE_SAMPLES, make, |(secret, seed)| {
        let mut shares = heapless::Vec::<Share, 32>::new();
        let mut dealer = ChaCha12Rng::seed_from_u64(*seed);
        shamir::split(secret, usize::from(K), 32, &mut dealer, &mut shares)
            .map(|()| *shares[31].expose_y())
    });
}

/// K LRTQ shares at identifiers 1..=K. The scalars are the y bytes of
/// [`y_bytes_of_class`] with the top four bits cleared, so below 2^252 and
/// canonical (the group order is just above 2^252): Left is zero except
/// share 1's scalar, Right is uniformly random.
fn lrtq_shares_of_class(class: Class, rng: &mut BenchRng) -> Vec<LrtqShare> {
    y_bytes_of_class(class, rng)
        .iter()
        .map(|(x, y)| {
            let mut bytes = [0u8; 33];
            bytes[0] = *x;
            bytes[1..].copy_from_slice(y);
            bytes[32] &= 0x0f;
            LrtqShare::from_bytes(&bytes).expect("canonical scalar, x > 0")
        })
        .collect()
}

/// `combine_lrtq` of K shares: fixed vs random scalars.
fn lrtq_combine_k17(runner: &mut CtRunner, rng: &mut BenchRng) {
    time_classes(runner, rng, SHARE_SAMPLES, lrtq_shares_of_class, |shares| {
        lrtq::combine_lrtq(shares).map(|secret| *secret.expose_secret())
    });
}

/// Null control, expected *not* to leak: `combine_lrtq` with uniformly
/// random scalars in both classes. Its max |t| shows how far the statistic
/// strays without any leak on this machine (dudect reports the largest of
/// 101 correlated t-tests, and a loaded machine adds heavy-tailed noise).
fn control_null_lrtq_combine_k17(runner: &mut CtRunner, rng: &mut BenchRng) {
    time_classes(
        runner,
        rng,
        SHARE_SAMPLES,
        |_, rng| lrtq_shares_of_class(Class::Right, rng),
        |shares| lrtq::combine_lrtq(shares).map(|secret| *secret.expose_secret()),
    );
}

/// Control, certain to leak: an early-exit comparison of a secret 1 KiB
/// buffer with a public one. Left: equal (scans to the end); Right: random
/// (stops at the first byte, almost always). Shows the harness sees a leak.
fn control_early_exit_compare(runner: &mut CtRunner, rng: &mut BenchRng) {
    let public = [0u8; 1024];
    time_classes(
        runner,
        rng,
        CONTROL_SAMPLES,
        secret_bytes::<1024>,
        |secret| secret.iter().zip(&public).position(|(a, b)| a != b),
    );
}

/// Control, expected to leak: `sharks` (table-based GF(2^8) that branches
/// on zero) recovering from K shares of the same two classes as
/// `shamir_combine_k17`. Its field differs; for timing that does not matter.
fn control_sharks_recover_k17(runner: &mut CtRunner, rng: &mut BenchRng) {
    let dealer = sharks::Sharks(K);
    let make = |class: Class, rng: &mut BenchRng| -> Vec<sharks::Share> {
        y_bytes_of_class(class, rng)
            .iter()
            .map(|(x, y)| {
                let bytes: Vec<u8> = std::iter::once(*x).chain(*y).collect();
                sharks::Share::try_from(bytes.as_slice()).expect("33 bytes")
            })
            .collect()
    };
    time_classes(runner, rng, CONTROL_SAMPLES, make, |shares| {
        dealer.recover(shares).map(|secret| secret.len())
    });
}

/// Every test, by name. Names sort alphabetically when run.
const TESTS: [(&str, BenchFn); 11] = [
    ("control_early_exit_compare", control_early_exit_compare),
    (
        "control_null_lrtq_combine_k17",
        control_null_lrtq_combine_k17,
    ),
    ("control_sharks_recover_k17", control_sharks_recover_k17),
    ("gf256_mul_secret_lhs", gf256_mul_secret_lhs),
    ("gf256_mul_secret_rhs", gf256_mul_secret_rhs),
    (
        "gf256_weighted_sum_secret_weights",
        gf256_weighted_sum_secret_weights,
    ),
    (
        "gf256_weighted_sum_secret_vectors",
        gf256_weighted_sum_secret_vectors,
    ),
    ("lrtq_combine_k17", lrtq_combine_k17),
    ("shamir_combine_k17", shamir_combine_k17),
    ("shamir_compute_share_k17", shamir_compute_share_k17),
    ("shamir_split_k17", shamir_split_k17),
];

const USAGE: &str = "usage: constant_time [NAME] [--filter NAME] [--continuous NAME] \
[--seed N] [--out FILE.csv]
  NAME, --filter NAME  run only the tests whose name contains NAME
  --continuous NAME    run the first test matching NAME until Ctrl-C
  --seed N             seed every test's input RNG with N (default: random)
  --out FILE.csv       also write every raw timing to FILE.csv";

/// What `dudect-bencher`'s own `ctbench_main!` parses, by hand: `cargo bench`
/// passes `--bench`, which that parser refuses.
/// `Ok(None)` means help was asked for.
fn parse_args() -> Result<Option<(BenchOpts, Option<u64>)>, String> {
    let mut opts = BenchOpts::default();
    let mut seed = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--bench" => {}
            "--help" | "-h" => return Ok(None),
            "--filter" => opts.filter = Some(value()?),
            "--continuous" => {
                opts.filter = Some(value()?);
                opts.continuous = true;
            }
            "--seed" => {
                let text = value()?;
                seed = Some(text.parse().map_err(|_| format!("bad seed {text}"))?);
            }
            "--out" => opts.file_out = Some(PathBuf::from(value()?)),
            name if !name.starts_with('-') && opts.filter.is_none() => {
                opts.filter = Some(name.to_owned());
            }
            other => return Err(format!("unexpected argument {other}")),
        }
    }
    Ok(Some((opts, seed)))
}

fn main() -> ExitCode {
    let (opts, seed) = match parse_args() {
        Ok(Some(parsed)) => parsed,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(problem) => {
            eprintln!("{problem}\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    let tests = TESTS
        .iter()
        .map(|&(name, benchfn)| BenchMetadata {
            name: BenchName(name),
            seed,
            benchfn,
        })
        .collect();
    match run_benches_console(opts, tests) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("{error}");
            ExitCode::FAILURE
        }
    }
}
