//! Every error a Nexus-facing call returns displays as a sentence that
//! carries its context, never as `Debug`-like text.

use std::string::{String, ToString};

use super::*;
use crate::crypto::RngError;

const EPOCH: Epoch = Epoch(7001);
const LATEST: Epoch = Epoch(7002);

fn expunged_at() -> ExpungedAt {
    ExpungedAt {
        epoch: EPOCH,
        from: platform(17),
    }
}

fn mismatch() -> RackMismatch {
    RackMismatch {
        expected: RACK,
        got: OTHER_RACK,
    }
}

/// What the display of `expunged_at()` and `mismatch()` must name.
const EXPUNGED_CONTEXT: &[&str] = &["7001", "913-0000019:SN0017"];
const MISMATCH_CONTEXT: &[&str] = &[
    "42424242-4242-4242-4242-424242424242",
    "24242424-2424-2424-2424-242424242424",
];

/// Checks that `text`, the display of a value whose `Debug` is `debug`,
/// is a sentence naming each of `context`.
fn assert_sentence(text: &str, debug: &str, context: &[&str]) {
    let variant: String = debug
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    assert!(text.contains(' '), "{debug}: {text:?} is not a sentence");
    assert!(
        text.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit()),
        "{debug}: {text:?}"
    );
    assert_eq!(text.trim(), text, "{debug}");
    assert!(
        !text.contains(&*variant),
        "{debug}: {text:?} names the variant"
    );
    for debugish in [
        "{",
        "}",
        "::",
        "Some",
        "None",
        "Epoch",
        "RackId",
        "PlatformId",
    ] {
        assert!(
            !text.contains(debugish),
            "{debug}: {text:?} has {debugish:?}"
        );
    }
    let called = text
        .as_bytes()
        .windows(2)
        .any(|w| w[0].is_ascii_alphanumeric() && w[1] == b'(');
    assert!(!called, "{debug}: {text:?} reads like Debug");
    for part in context {
        assert!(
            text.contains(part),
            "{debug}: {text:?} does not say {part:?}"
        );
    }
}

fn check<E: core::fmt::Display + core::fmt::Debug>(errors: &[(E, &[&str])]) {
    for (error, context) in errors {
        assert_sentence(&error.to_string(), &std::format!("{error:?}"), context);
    }
}

/// Checks that `listed` holds every variant: `index` maps each to its
/// place, exhaustively, so a new variant does not compile until listed.
fn assert_every_variant<E>(listed: &[(E, &[&str])], count: usize, index: impl Fn(&E) -> usize) {
    let mut seen = std::vec![false; count];
    for (error, _) in listed {
        seen[index(error)] = true;
    }
    assert!(seen.iter().all(|&s| s), "a variant is missing");
}

#[test]
fn reconfigure_errors_are_sentences() {
    use ReconfigureError as E;
    let k = Threshold::new(9).unwrap();
    let errors: [(E, &[&str]); 15] = [
        (E::Expunged(expunged_at()), EXPUNGED_CONTEXT),
        (E::RackIdMismatch(mismatch()), MISMATCH_CONTEXT),
        (E::MustUpgradeFromLrtq, &["LRTQ"]),
        (E::LrtqUpgradeInProgress(EPOCH), &["7001"]),
        (E::NotAMember, &[]),
        (E::MemberCount(33), &["33"]),
        (
            E::ThresholdTooLarge {
                threshold: k,
                members: 8,
            },
            &["9", "8"],
        ),
        (
            E::LastCommittedEpochMismatch {
                node: Some(LATEST),
                request: Some(EPOCH),
            },
            &["7001", "7002"],
        ),
        (
            E::LastCommittedEpochMismatch {
                node: None,
                request: Some(EPOCH),
            },
            &["7001", "nothing"],
        ),
        (E::NewerCoordinationRunning(EPOCH), &["7001"]),
        (E::DifferentRequestRunning(EPOCH), &["7001"]),
        (E::EpochNotNewer { latest: LATEST }, &["7002"]),
        (E::ComputingShare(EPOCH), &["7001"]),
        (E::Rng(RngError), &["random"]),
        (E::Internal, &[]),
    ];
    assert_every_variant(&errors, 14, |e| match e {
        E::Expunged(_) => 0,
        E::RackIdMismatch(_) => 1,
        E::MustUpgradeFromLrtq => 2,
        E::LrtqUpgradeInProgress(_) => 3,
        E::NotAMember => 4,
        E::MemberCount(_) => 5,
        E::ThresholdTooLarge { .. } => 6,
        E::LastCommittedEpochMismatch { .. } => 7,
        E::NewerCoordinationRunning(_) => 8,
        E::DifferentRequestRunning(_) => 9,
        E::EpochNotNewer { .. } => 10,
        E::ComputingShare(_) => 11,
        E::Rng(_) => 12,
        E::Internal => 13,
    });
    check(&errors);
}

#[test]
fn lrtq_upgrade_errors_are_sentences() {
    use LrtqUpgradeError as E;
    let errors: [(E, &[&str]); 10] = [
        (E::Expunged(expunged_at()), EXPUNGED_CONTEXT),
        (E::RackIdMismatch(mismatch()), MISMATCH_CONTEXT),
        (E::NoLrtqData, &["LRTQ"]),
        (E::AlreadyCommitted(EPOCH), &["7001"]),
        (E::NotAMember, &[]),
        (E::MemberCount(2), &["2"]),
        (
            E::ThresholdTooLarge {
                threshold: Threshold::new(9).unwrap(),
                members: 8,
            },
            &["9", "8"],
        ),
        (
            E::LrtqThresholdAboveMembers {
                lrtq_threshold: crate::ids::LrtqThreshold::new(17).unwrap(),
                members: 16,
            },
            &["17", "16"],
        ),
        (E::EpochTooSmall(Epoch(1)), &["1"]),
        (E::EpochNotNewer { latest: LATEST }, &["7002"]),
    ];
    assert_every_variant(&errors, 10, |e| match e {
        E::Expunged(_) => 0,
        E::RackIdMismatch(_) => 1,
        E::NoLrtqData => 2,
        E::AlreadyCommitted(_) => 3,
        E::NotAMember => 4,
        E::MemberCount(_) => 5,
        E::ThresholdTooLarge { .. } => 6,
        E::LrtqThresholdAboveMembers { .. } => 7,
        E::EpochTooSmall(_) => 8,
        E::EpochNotNewer { .. } => 9,
    });
    check(&errors);
}

#[test]
fn commit_errors_are_sentences() {
    use CommitError as E;
    let errors: [(E, &[&str]); 3] = [
        (E::Expunged(expunged_at()), EXPUNGED_CONTEXT),
        (E::RackIdMismatch(mismatch()), MISMATCH_CONTEXT),
        (E::NotPrepared(EPOCH), &["7001"]),
    ];
    assert_every_variant(&errors, 3, |e| match e {
        E::Expunged(_) => 0,
        E::RackIdMismatch(_) => 1,
        E::NotPrepared(_) => 2,
    });
    check(&errors);
}

#[test]
fn prepare_and_commit_errors_are_sentences() {
    use PrepareAndCommitError as E;
    let errors: [(E, &[&str]); 8] = [
        (E::Expunged(expunged_at()), EXPUNGED_CONTEXT),
        (E::RackIdMismatch(mismatch()), MISMATCH_CONTEXT),
        (E::NotAMember, &[]),
        (
            E::NewerCommitted {
                epoch: EPOCH,
                latest: LATEST,
            },
            &["7001", "7002"],
        ),
        (E::MismatchedConfiguration(EPOCH), &["7001"]),
        (E::ConflictsWithCommitted(EPOCH), &["7001"]),
        (E::CoordinatingNewerEpoch(LATEST), &["7002"]),
        (E::Internal, &[]),
    ];
    assert_every_variant(&errors, 8, |e| match e {
        E::Expunged(_) => 0,
        E::RackIdMismatch(_) => 1,
        E::NotAMember => 2,
        E::NewerCommitted { .. } => 3,
        E::MismatchedConfiguration(_) => 4,
        E::ConflictsWithCommitted(_) => 5,
        E::CoordinatingNewerEpoch(_) => 6,
        E::Internal => 7,
    });
    check(&errors);
}

#[test]
fn load_secret_errors_are_sentences() {
    use LoadSecretError as E;
    let errors: [(E, &[&str]); 4] = [
        (E::Expunged(expunged_at()), EXPUNGED_CONTEXT),
        (E::NoCommittedConfiguration, &[]),
        (E::NotCommitted(EPOCH), &["7001"]),
        (
            E::TooOld {
                epoch: EPOCH,
                oldest_retained: LATEST,
            },
            &["7001", "7002"],
        ),
    ];
    assert_every_variant(&errors, 4, |e| match e {
        E::Expunged(_) => 0,
        E::NoCommittedConfiguration => 1,
        E::NotCommitted(_) => 2,
        E::TooOld { .. } => 3,
    });
    check(&errors);
}

#[test]
fn the_shared_contexts_are_sentences() {
    check(&[(expunged_at(), EXPUNGED_CONTEXT)]);
    check(&[(mismatch(), MISMATCH_CONTEXT)]);
}
