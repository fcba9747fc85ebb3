//! The model checker over the real core, at bounds a test can afford: every
//! interleaving of the model's steps within the bound, from a fresh rack,
//! an LRTQ rack, and a rack past its first commit, of three sleds, every
//! state checked (section 8 of PROTOCOL.md, liveness included).
//!
//! The `#[ignore]`d tests are CI's bound: under a minute each when built
//! with the model's crates optimized (`cargo test -p tq-model --config
//! model/optimized.toml --test bounded -- --ignored`; `.ci/run` runs them
//! so, see the crate doc). The others run in every `cargo test`.
#![cfg(not(any(
    feature = "planted-bug-ack-stale-prepare",
    feature = "planted-bug-ack-any-epoch"
)))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use tq_model::{Bounds, Report, Start, explore};
use tq_test_fixtures::with_big_stack;

fn run(bounds: Bounds) -> Report {
    let (report, found) = with_big_stack(move || explore(&bounds, &mut |_| {}));
    if let Some(found) = found {
        panic!("{found}\nharness actions: {:?}", found.actions);
    }
    println!("{bounds:?}\n{report:#?}");
    assert!(report.complete);
    assert_eq!(report.depth(), bounds.max_depth, "the bound is reached");
    let live = (0..report.unique)
        .filter(|i| bounds.liveness.checks(*i))
        .count();
    assert_eq!(report.liveness_checked, live as u64);
    report
}

/// The depth of the tests every `cargo test` runs: unoptimized, a state
/// costs tens to hundreds of milliseconds, so these only show the search
/// works on both starts; CI's bound is below.
const SMOKE_DEPTH: usize = 2;

#[test]
fn a_fresh_rack_of_three_keeps_every_invariant_in_every_state_to_depth_2() {
    let report = run(Bounds::new(3, Start::Fresh, SMOKE_DEPTH));
    assert!(report.coverage.with_running_coordination > 0);
    assert!(report.coverage.with_sled_down > 0);
    assert!(report.coverage.with_abandoned_epoch > 0);
}

#[test]
fn an_lrtq_rack_of_three_keeps_every_invariant_in_every_state_to_depth_2() {
    let report = run(Bounds::new(3, Start::Lrtq, SMOKE_DEPTH));
    assert!(report.coverage.with_running_coordination > 0);
    assert!(report.coverage.with_sled_down > 0);
}

#[test]
fn a_committed_rack_of_three_keeps_every_invariant_in_every_state_to_depth_2() {
    let report = run(Bounds::new(3, Start::Committed, SMOKE_DEPTH));
    assert!(report.coverage.with_running_coordination > 0);
    assert_eq!(report.coverage.highest_commit, 1);
}

#[test]
#[ignore = "CI's bound: run optimized (see the file doc)"]
fn ci_bound_fresh_rack_of_three_to_depth_6_live_from_every_state() {
    let report = run(Bounds::new(3, Start::Fresh, 6));
    // The first commit takes four steps (start, a prepare, its ack, a
    // poll); epoch 2 commits in five (start, abandon: the new coordinator
    // prepares at once, a prepare, its ack, a poll).
    assert!(report.coverage.with_commit > 0);
    assert_eq!(report.coverage.highest_commit, 2);
}

#[test]
#[ignore = "CI's bound: run optimized (see the file doc)"]
fn ci_bound_lrtq_rack_of_three_to_depth_5_live_from_every_state() {
    let report = run(Bounds::new(3, Start::Lrtq, 5));
    // The upgrade commits in six steps: start (the coordinator asks for
    // LRTQ shares), one request, its answer (with its own share, the LRTQ
    // threshold of two: prepare), a prepare, its ack, a poll. Five steps
    // reach the ack; the commit is the liveness check's, from every state.
    assert!(report.coverage.with_running_coordination > 0);
    assert!(report.coverage.with_sled_down > 0);
    assert!(report.coverage.with_abandoned_epoch > 0);
}

#[test]
#[ignore = "CI's bound: run optimized (see the file doc)"]
fn ci_bound_committed_rack_of_three_to_depth_4_live_from_every_state() {
    let report = run(Bounds::new(3, Start::Committed, 4));
    // Epoch 2 commits in six steps: start (the coordinator asks for shares
    // of epoch 1), one request, its answer (with its own share, the
    // threshold of two: rebuild the old secret, re-encrypt, prepare), a
    // prepare, its ack, a poll. Four steps reach a member storing the
    // prepare; the rest is the liveness check's, from every state (depth
    // 5 or 6 is for the binary: CI's time goes to the two starts the
    // issue names).
    assert!(report.coverage.with_running_coordination > 0);
    assert!(report.coverage.with_secret_loaded > 0);
}
