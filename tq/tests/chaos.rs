//! `tq chaos` (tq::chaos) against real `tq sled` processes in network
//! namespaces: a short seeded run must pass every check (CI's), and in it
//! sleds Nexus removed are replaced by new ones (new platform id, fresh
//! ledger) that join the rack and unlock; a planted
//! fault (a sled restarted from an older copy of its ledger) must be
//! reported as lost state, naming the sled; another (a record of a
//! sled's audit log altered while it is paused) must fail the audit
//! check and that check alone; and, with `--ignored`, every
//! seed that once found a failure must pass at the length it found it.
//!
//! Needs root, iproute2 and `nft`; libfaketime for the clock steps. Where
//! namespaces cannot be made it says so and checks nothing (`SKIPPED`);
//! under CI (`.ci/run` installs the tools) a missing tool fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::time::Duration;

use tq::chaos::check::names;
use tq::chaos::report::Summary;
use tq::chaos::{Options, run};

const TQ: &str = env!("CARGO_BIN_EXE_tq");

/// One rack at a time: two would share the machine's two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Seeds of CI's run, 40 s of faults each.
const SEEDS: &[u64] = &[1];

/// Seeds that found a failure, each with the minutes of faults it took and
/// what it found; the fix's regression test is named. Minutes each, so not
/// CI's: `cargo test -p tq --test chaos -- --ignored` runs them.
const FOUND: &[(u64, f64, &str)] = &[(
    3,
    3.0,
    "core: internal counted (once, on one or two sleds) when a Prepare reached a member \
     computing its share after prepare_and_commit; fixed in core/src/node/peer.rs, \
     regression test tq-core node::tests::defects::\
     a_prepare_arriving_while_the_share_is_computed_still_commits",
)];

fn can_run() -> bool {
    if let Some(why) = tq::netns::cannot_make_namespaces() {
        eprintln!("SKIPPED (not run, not passed): network namespaces cannot be made here: {why}");
        return false;
    }
    tq_test_fixtures::tools::available("nft", &["--version"], "apt-get install nftables")
        && tq_test_fixtures::tools::available(
            "faketime",
            &["--version"],
            "apt-get install faketime",
        )
}

fn options(seed: u64, seconds: f64) -> Options {
    Options {
        exe: TQ.into(),
        lrtq: 5,
        spares: 3,
        replacements: 2,
        seed,
        duration: Duration::from_secs_f64(seconds),
        plant_stale_ledger: false,
        plant_altered_audit: false,
        keep: false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_seeded_runs_pass_every_check() {
    if !can_run() {
        return;
    }
    let _alone = ONE_AT_A_TIME.lock().await;
    for &seed in SEEDS {
        let summary = run(options(seed, 40.0)).await.unwrap();
        eprintln!("{summary}");
        assert!(summary.passed(), "seed {seed}:\n{summary}");
        let injected: u64 = summary.faults.applied.values().sum();
        assert!(injected >= 5, "seed {seed}: only {injected} faults");
        assert!(summary.committed >= 3, "seed {seed}: {summary}");
        assert!(summary.loads.0 > 0, "seed {seed}: no secret loaded");
        // Replacements slid in, added by a committed reconfiguration, and
        // in the final membership, every member of which loaded the latest
        // secret (the unlock check above).
        assert!(summary.replacements_slid_in >= 1, "seed {seed}: {summary}");
        assert!(summary.replacements_added >= 1, "seed {seed}: {summary}");
        let replacements = summary
            .final_members
            .iter()
            .filter(|m| m.is_replacement())
            .count();
        assert!(replacements >= 1, "seed {seed}: {summary}");
        let unlocked = summary.verdict(names::UNLOCKED).unwrap();
        assert!(
            unlocked
                .detail
                .starts_with(&format!("{} members", summary.final_members.len())),
            "{}",
            unlocked.detail
        );
    }
}

/// A run with a planted fault, which is meant to fail: its kept
/// directory is removed.
async fn planted_run(options: Options) -> Summary {
    let _alone = ONE_AT_A_TIME.lock().await;
    let summary = run(options).await.unwrap();
    eprintln!("{summary}");
    if let Some(kept) = summary.log.as_ref().and_then(|l| l.parent()) {
        std::fs::remove_dir_all(kept).unwrap();
    }
    summary
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_restarted_from_an_older_copy_of_its_ledger_is_reported_as_lost_state() {
    if !can_run() {
        return;
    }
    let summary = planted_run(Options {
        plant_stale_ledger: true,
        ..options(2, 10.0)
    })
    .await;
    let lost = summary.verdict(names::NOT_LOST).unwrap();
    assert!(!lost.passed, "{summary}");
    assert!(
        lost.detail.contains("restarted holding epoch none"),
        "{}",
        lost.detail
    );
    assert_eq!(
        summary.faults.applied.get("stale ledger (planted)"),
        Some(&1)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_whose_audit_record_was_altered_fails_the_audit_check() {
    if !can_run() {
        return;
    }
    let summary = planted_run(Options {
        plant_altered_audit: true,
        ..options(2, 10.0)
    })
    .await;
    let audit = summary.verdict(names::AUDIT).unwrap();
    assert!(!audit.passed, "{summary}");
    // Copy 0 only, and the hash chain (not the parser) catches it.
    assert!(
        audit.detail.contains("audit copy 0: record seq")
            && audit.detail.contains("altered")
            && !audit.detail.contains("audit copy 1"),
        "{}",
        audit.detail
    );
    assert_eq!(
        summary.faults.applied.get("altered audit record (planted)"),
        Some(&1)
    );
    let failed: Vec<&str> = summary
        .verdicts
        .iter()
        .filter(|v| !v.passed)
        .map(|v| v.check)
        .collect();
    assert_eq!(failed, [names::AUDIT], "{summary}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes per seed: run with --ignored"]
async fn the_seeds_that_found_failures_pass() {
    if !can_run() {
        return;
    }
    let _alone = ONE_AT_A_TIME.lock().await;
    for &(seed, minutes, found) in FOUND {
        let summary = run(options(seed, minutes * 60.0)).await.unwrap();
        eprintln!("{summary}");
        assert!(summary.passed(), "seed {seed} ({found}):\n{summary}");
    }
}
