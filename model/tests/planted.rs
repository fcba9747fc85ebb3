//! The checker finds a broken core: with a bug planted in tq-core (a
//! `planted-bug-*` feature, see `tq_core::planted`), the search stops at
//! the broken invariant and prints a shortest path to it, which replays to
//! the same violation in the harness alone.
//!
//! `cargo test -p tq-model --config model/optimized.toml --features planted-bug-ack-stale-prepare --test planted -- --nocapture`
//! (and the same with `planted-bug-ack-any-epoch`); `.ci/run` runs both.
#![cfg(any(
    feature = "planted-bug-ack-stale-prepare",
    feature = "planted-bug-ack-any-epoch"
))]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use tq_harness::Violation;
use tq_model::{Bounds, Failure, Liveness, Rack, Start, explore};
use tq_test_fixtures::with_big_stack;

/// The bug and what the checker must say about it: the violation and the
/// length of a shortest path.
#[cfg(feature = "planted-bug-ack-stale-prepare")]
const EXPECTED: (fn(&Violation) -> bool, usize) = (
    |v| matches!(v, Violation::AckWithoutDurablePrepare { .. }),
    // Nexus starts epoch 1 (sled 0 coordinates), abandons it for epoch 2
    // (sled 1 coordinates, and stores its own prepare at once), then sled
    // 1 gets epoch 1's prepare: stale, and acked.
    3,
);

#[cfg(all(
    feature = "planted-bug-ack-any-epoch",
    not(feature = "planted-bug-ack-stale-prepare")
))]
const EXPECTED: (fn(&Violation) -> bool, usize) = (
    |v| matches!(v, Violation::AckNotSent { .. }),
    // Epoch 1's coordinator prepares a member, which acks; Nexus abandons
    // epoch 1 twice, and epoch 3 goes back to the first coordinator, which
    // then gets the ack of epoch 1.
    5,
);

#[test]
fn the_checker_finds_the_planted_bug_by_a_shortest_path() {
    let mut bounds = Bounds::new(3, Start::Fresh, 6);
    bounds.max_epoch = 3;
    // Steps only: the liveness check's heal delivers messages in its own
    // order and may reach the bug sooner, but its path is not one of
    // steps (`the_liveness_check_finds_it_too` below).
    bounds.liveness = Liveness::Off;
    let (report, found) = with_big_stack(move || explore(&bounds, &mut |_| {}));
    let found = found.expect("the planted bug is found");
    println!("planted: {:?}", tq_core::planted::PLANTED_BUG);
    println!(
        "after {} states, {} transitions, in {:.2?}",
        report.unique, report.transitions, report.elapsed
    );
    println!("{found}");
    println!("harness actions: {:?}", found.actions);
    let (is_expected, shortest) = EXPECTED;
    let Failure::Step(violation) = &found.failure else {
        panic!("not the planted bug: {found}");
    };
    assert!(is_expected(violation), "not the planted bug: {found}");
    assert_eq!(found.path.len(), shortest);
    // Breadth first: every state less deep was explored and kept every
    // invariant.
    assert_eq!(report.depth() + 1, found.path.len());
    // The path alone, taken again from the start, breaks the same
    // invariant.
    let path = found.path.clone();
    let replayed =
        with_big_stack(move || tq_model::replay(&Rack::new(bounds), &path).end.map(|_| ()));
    assert_eq!(replayed, Err(Some(violation.clone())));
}

#[test]
fn the_liveness_check_finds_it_too() {
    let mut bounds = Bounds::new(3, Start::Fresh, 6);
    bounds.max_epoch = 3;
    let (_, found) = with_big_stack(move || explore(&bounds, &mut |_| {}));
    let found = found.expect("the planted bug is found");
    println!("{found}");
    let (Failure::Step(violation) | Failure::Liveness(violation)) = &found.failure else {
        panic!("not the planted bug: {found}");
    };
    assert!((EXPECTED.0)(violation), "not the planted bug: {found}");
}
