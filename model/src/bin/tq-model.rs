//! Runs the model checker at any bound and prints what it explored, e.g.
//! `cargo run -p tq-model --config model/optimized.toml -- --sleds 3 --start lrtq --depth 7`.
//! Exits 1 with a shortest path if an invariant breaks.

use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, ValueEnum};
use tq_model::explore::describe_liveness;
use tq_model::{Bounds, Liveness, MAX_RACK_SLEDS, Report, Start, explore};

#[derive(Clone, Copy, Debug, ValueEnum)]
enum StartArg {
    Fresh,
    Lrtq,
    Committed,
    Upgraded,
}

/// Exhaustive, bounded model checking of the trust quorum core.
#[derive(Debug, Parser)]
struct Args {
    /// Sleds in the rack: 3 up to `tq_model::MAX_RACK_SLEDS` (4).
    #[arg(long, default_value_t = 3)]
    sleds: usize,
    /// Members at the start (default: every sled); the rest are spares.
    #[arg(long)]
    members: Option<usize>,
    /// How the rack starts.
    #[arg(long, value_enum, default_value_t = StartArg::Fresh)]
    start: StartArg,
    /// Most steps from the start.
    #[arg(long, default_value_t = 8)]
    depth: usize,
    /// Highest epoch Nexus may start (default: the first epoch and one more).
    #[arg(long)]
    max_epoch: Option<u64>,
    /// Most copies of one message in flight.
    #[arg(long, default_value_t = 2)]
    copies: usize,
    /// Most messages in flight for a duplicate to be offered.
    #[arg(long, default_value_t = 16)]
    max_in_flight: usize,
    /// Most sleds down at once.
    #[arg(long, default_value_t = 1)]
    max_down: usize,
    /// No connection resets.
    #[arg(long)]
    no_reconnects: bool,
    /// No secret loads.
    #[arg(long)]
    no_loads: bool,
    /// Liveness check from every n-th state (1: every state; 0: never).
    #[arg(long, default_value_t = 1)]
    liveness_every: u64,
}

fn peak_rss_mib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024)
}

fn main() -> ExitCode {
    let args = Args::parse();
    if !(tq_core::limits::MIN_MEMBERS..=MAX_RACK_SLEDS).contains(&args.sleds) {
        eprintln!(
            "--sleds {}: the checker explores racks of {} to {MAX_RACK_SLEDS} sleds",
            args.sleds,
            tq_core::limits::MIN_MEMBERS
        );
        return ExitCode::from(2);
    }
    let start = match args.start {
        StartArg::Fresh => Start::Fresh,
        StartArg::Lrtq => Start::Lrtq,
        StartArg::Committed => Start::Committed,
        StartArg::Upgraded => Start::Upgraded,
    };
    let mut bounds = Bounds::new(args.sleds, start, args.depth);
    bounds.members = args.members.unwrap_or(args.sleds);
    if let Some(max_epoch) = args.max_epoch {
        bounds.max_epoch = max_epoch;
    }
    bounds.max_copies = args.copies;
    bounds.max_in_flight = args.max_in_flight;
    bounds.max_down = args.max_down;
    bounds.reconnects = !args.no_reconnects;
    bounds.loads = !args.no_loads;
    bounds.liveness = match args.liveness_every {
        0 => Liveness::Off,
        1 => Liveness::Every,
        n => Liveness::EveryNth(n),
    };
    println!("{bounds:?}");
    println!("liveness check: {}", describe_liveness(bounds.liveness));
    let started = Instant::now();
    let (report, found) = tq_test_fixtures::with_big_stack(move || {
        explore(&bounds, &mut |r: &Report| {
            println!(
                "depth {:>2}: {:>10} new, {:>11} unique, {:>12} transitions, {:>8.1} s, peak {} MiB",
                r.depth(),
                r.per_depth.last().copied().unwrap_or(0),
                r.unique,
                r.transitions,
                started.elapsed().as_secs_f64(),
                peak_rss_mib().unwrap_or(0),
            );
        })
    });
    println!("{report:#?}");
    println!(
        "explored {} unique states ({} transitions, {} re-created) to depth {} in {:.1} s; liveness from {} states; peak RSS {} MiB",
        report.unique,
        report.transitions,
        report.recreated,
        report.depth(),
        report.elapsed.as_secs_f64(),
        report.liveness_checked,
        peak_rss_mib().unwrap_or(0)
    );
    match found {
        None => ExitCode::SUCCESS,
        Some(found) => {
            println!("FOUND: {found}");
            println!("harness actions: {:?}", found.actions);
            ExitCode::FAILURE
        }
    }
}
