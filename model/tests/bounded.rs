//! The model checker over the real core, at bounds a test can afford: every
//! interleaving of the model's steps within the bound, from a fresh rack
//! and from an LRTQ rack of three sleds, every state checked (section 8 of
//! PROTOCOL.md, liveness included).
//!
//! The `#[ignore]`d tests are CI's bound: a few minutes each in the `model`
//! profile (`cargo test -p tq-model --profile model -- --ignored`, which
//! `.ci/run` runs). The others run in every `cargo test`.
#![cfg(not(any(
    feature = "planted-bug-ack-stale-prepare",
    feature = "planted-bug-ack-any-epoch"
)))]

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
    assert_eq!(report.liveness_checked, report.unique);
    report
}

#[test]
fn a_fresh_rack_of_three_keeps_every_invariant_in_every_state_to_depth_4() {
    let report = run(Bounds::new(3, Start::Fresh, 4));
    // The first commit takes four steps (start, a prepare, its ack, a
    // poll): the bound reaches it.
    assert!(report.coverage.with_commit > 0);
    assert!(report.coverage.with_sled_down > 0);
    assert!(report.coverage.with_abandoned_epoch > 0);
}

#[test]
fn an_lrtq_rack_of_three_keeps_every_invariant_in_every_state_to_depth_4() {
    let report = run(Bounds::new(3, Start::Lrtq, 4));
    assert!(report.coverage.with_running_coordination > 0);
    assert!(report.coverage.with_sled_down > 0);
}

#[test]
#[ignore = "CI's bound: run in the model profile (see the file doc)"]
fn ci_bound_fresh_rack_of_three_to_depth_6() {
    let report = run(Bounds::new(3, Start::Fresh, 6));
    assert!(report.coverage.with_commit > 0);
    assert!(report.coverage.with_commit_confirmed_everywhere > 0);
    assert!(report.coverage.with_secret_loaded > 0);
}

#[test]
#[ignore = "CI's bound: run in the model profile (see the file doc)"]
fn ci_bound_lrtq_rack_of_three_to_depth_6() {
    let report = run(Bounds::new(3, Start::Lrtq, 6));
    // The upgrade commits within six steps: start (the coordinator asks
    // for LRTQ shares), one share, its prepare, the ack, a poll.
    assert!(report.coverage.with_commit > 0);
}
