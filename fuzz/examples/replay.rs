//! Replays cluster-target inputs outside libFuzzer, e.g. to read a finding:
//! `TQ_FUZZ_TRACE=1 cargo run --release --example replay -- artifacts/cluster/crash-...`
//! prints the rack, every step and every forgery, then the outcome. With
//! `TQ_FUZZ_SAFETY` set, inputs run as the `cluster_safety` target runs
//! them.

fn main() {
    let paths: Vec<String> = std::env::args().skip(1).collect();
    let run = if std::env::var_os("TQ_FUZZ_SAFETY").is_some() {
        tq_fuzz::cluster::run_safety
    } else {
        tq_fuzz::cluster::run
    };
    // A Cluster is large: give it room.
    let outcome = tq_test_fixtures::with_big_stack(move || {
        let mut failed = false;
        for path in paths {
            let bytes = std::fs::read(&path).expect("readable input");
            match run(&bytes) {
                Ok(stats) => println!("{path}: ok, {stats:?}"),
                Err(violation) => {
                    println!("{path}: {violation:?}");
                    failed = true;
                }
            }
        }
        failed
    });
    std::process::exit(i32::from(outcome));
}
