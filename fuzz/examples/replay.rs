//! Replays cluster-target inputs outside libFuzzer, e.g. to read a finding:
//! `TQ_FUZZ_TRACE=1 cargo run --release --example replay -- artifacts/cluster/crash-...`
//! prints the rack, every step and every forgery, then the outcome. With
//! `TQ_FUZZ_SAFETY` set, inputs run as the `cluster_safety` target runs
//! them.
//!
//! `--log FILE INPUT` runs one input and writes what it did as an event log
//! for the `tq-replay` debugger (`cargo run -p tq-replay -- FILE` in the
//! root workspace).

use std::path::PathBuf;

use tq_fuzz::cluster::{self, Target};

fn main() {
    let mut args: Vec<String> = std::env::args().skip(1).collect();
    let log = match args.iter().position(|arg| arg == "--log") {
        Some(at) if at + 1 < args.len() => {
            let log = PathBuf::from(args.remove(at + 1));
            args.remove(at);
            Some(log)
        }
        Some(_) => usage(),
        None => None,
    };
    let target = if std::env::var_os("TQ_FUZZ_SAFETY").is_some() {
        Target::ClusterSafety
    } else {
        Target::Cluster
    };
    if log.is_some() && args.len() != 1 {
        usage();
    }
    // A Cluster is large: give it room.
    let failed = tq_test_fixtures::with_big_stack(move || {
        let mut failed = false;
        for path in args {
            let bytes = std::fs::read(&path).expect("readable input");
            let outcome = match &log {
                Some(log_path) => {
                    let source = format!("fuzz input {path}, run as {target:?}");
                    let (event_log, outcome) = cluster::event_log(&bytes, target, source);
                    event_log.write(log_path).expect("writable log");
                    println!("{}: {} events", log_path.display(), event_log.events.len());
                    outcome
                }
                None if target == Target::ClusterSafety => cluster::run_safety(&bytes),
                None => cluster::run(&bytes),
            };
            match outcome {
                Ok(stats) => println!("{path}: ok, {stats:?}"),
                Err(violation) => {
                    println!("{path}: {violation:?}");
                    failed = true;
                }
            }
        }
        failed
    });
    std::process::exit(i32::from(failed));
}

fn usage() -> ! {
    eprintln!("usage: replay INPUT...  |  replay --log FILE INPUT");
    std::process::exit(2);
}
