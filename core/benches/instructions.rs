//! Instructions per Shamir operation, counted by Valgrind's callgrind:
//! `tq-core` next to `sharks` 0.5 and `vsss-rs` 6, the same operations on
//! the same inputs as the `sharing` bench (`common/shamir_crates.rs`).
//!
//! Unlike wall-clock time, an instruction count does not change with the
//! load on the machine, so these ratios hold on a busy one; they do not see
//! cache misses, branch mispredictions or how many instructions retire per
//! cycle, which the criterion bench does.
//!
//! `cargo bench -p tq-core --bench instructions` prints a Markdown table.
//! The binary runs itself under `valgrind --tool=callgrind` once per
//! operation, crate and (n, k), with only the repetitions of the operation
//! counted (`--toggle-collect` on [`measured`]), and divides by the
//! repetitions. Needs `valgrind` on the PATH (Debian: `apt-get install
//! valgrind`).
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

use shamir_crates::{
    CASES, CheckedShares, SHARKS, TQ, VSSS, checked_missing_x, checked_shares, fixed_secret,
    sharks_combine, sharks_rng, sharks_split, tq_combine, tq_compute_share, tq_rng, tq_split,
    vsss_combine, vsss_split,
};
use std::hint::black_box;
use std::process::{Command, ExitCode};

/// Times each operation runs while counted.
const REPS: u32 = 100;

const OPERATIONS: [&str; 3] = ["split", "combine", "compute_share"];
const CRATES: [&str; 3] = [TQ, SHARKS, VSSS];

/// Runs `op` [`REPS`] times. Callgrind counts only inside this function.
#[inline(never)]
fn measured(op: &mut dyn FnMut()) {
    for _ in 0..REPS {
        op();
    }
}

/// Sets up one operation of one crate and runs it under [`measured`].
fn run_one(operation: &str, krate: &str, n: usize, k: usize) {
    let (secret, bytes) = fixed_secret();
    match operation {
        "split" => match krate {
            TQ => {
                let mut rng = tq_rng();
                measured(&mut || drop(black_box(tq_split(black_box(&secret), n, k, &mut rng))));
            }
            SHARKS => {
                let mut rng = sharks_rng();
                measured(&mut || drop(black_box(sharks_split(black_box(&bytes), n, k, &mut rng))));
            }
            _ => {
                let mut rng = tq_rng();
                measured(&mut || drop(black_box(vsss_split(black_box(&bytes), n, k, &mut rng))));
            }
        },
        _ => {
            let shares = checked_shares(n, k);
            let missing_x = checked_missing_x(&shares, n, k);
            let CheckedShares { tq, vsss, sharks } = shares;
            match (operation, krate) {
                ("combine", TQ) => {
                    measured(&mut || drop(black_box(tq_combine(black_box(&tq[..k])))));
                }
                (_, TQ) => measured(&mut || {
                    drop(black_box(tq_compute_share(
                        black_box(&tq[..k]),
                        black_box(missing_x),
                    )));
                }),
                // As in the `sharing` bench, the other crates' compute_share
                // row is their combine: interpolation at x = 0.
                (_, SHARKS) => {
                    measured(&mut || drop(black_box(sharks_combine(black_box(&sharks[..k]), k))));
                }
                _ => measured(&mut || drop(black_box(vsss_combine(black_box(&vsss[..k]))))),
            }
        }
    }
}

/// Instructions per run of one operation, from callgrind's totals.
fn count(operation: &str, krate: &str, n: usize, k: usize) -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let out_file = std::env::temp_dir().join(format!("tq-instructions-{}.out", std::process::id()));
    let status = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg("--quiet")
        .arg("--toggle-collect=*measured*")
        .arg(format!("--callgrind-out-file={}", out_file.display()))
        .arg(&exe)
        .args(["--run", operation, krate, &n.to_string(), &k.to_string()])
        .status()
        .map_err(|e| format!("cannot run valgrind ({e}); install it (apt-get install valgrind)"))?;
    if !status.success() {
        return Err(format!(
            "valgrind failed on {operation} {krate} n={n} k={k}"
        ));
    }
    let text = std::fs::read_to_string(&out_file).map_err(|e| e.to_string())?;
    let _ = std::fs::remove_file(&out_file);
    let total = text
        .lines()
        .find_map(|line| {
            line.strip_prefix("totals:")
                .or(line.strip_prefix("summary:"))
        })
        .and_then(|value| value.split_whitespace().next()?.parse::<u64>().ok())
        .ok_or("no totals line in callgrind's output")?;
    Ok(total / u64::from(REPS))
}

fn print_table() -> Result<(), String> {
    println!(
        "| operation | {TQ} instructions | {SHARKS} | ratio ({TQ} / {SHARKS}) | {VSSS} | ratio ({TQ} / {VSSS}) |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for operation in OPERATIONS {
        for (n, k) in CASES {
            let counts = CRATES
                .iter()
                .map(|krate| count(operation, krate, n, k))
                .collect::<Result<Vec<_>, _>>()?;
            let ours = counts[0] as f64;
            println!(
                "| {operation} n={n} k={k} | {} | {} | {:.3} | {} | {:.3} |",
                counts[0],
                counts[1],
                ours / counts[1] as f64,
                counts[2],
                ours / counts[2] as f64,
            );
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().position(|a| a == "--run") {
        Some(at) => {
            let [operation, krate, n, k] = &args[at + 1..] else {
                eprintln!("usage: instructions --run OPERATION CRATE N K");
                return ExitCode::from(2);
            };
            let (Ok(n), Ok(k)) = (n.parse(), k.parse()) else {
                eprintln!("N and K are numbers");
                return ExitCode::from(2);
            };
            run_one(operation, krate, n, k);
            ExitCode::SUCCESS
        }
        // `cargo bench` passes `--bench`; nothing else is taken.
        None => match print_table() {
            Ok(()) => ExitCode::SUCCESS,
            Err(problem) => {
                eprintln!("{problem}");
                ExitCode::FAILURE
            }
        },
    }
}
