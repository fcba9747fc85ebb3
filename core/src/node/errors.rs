//! Errors of the Nexus-facing calls, one enum per call, one variant per
//! rejection of PROTOCOL.md section 6.

use core::fmt;

use crate::crypto::RngError;
use crate::ids::Epoch;

/// Why `coordinate_reconfiguration` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ReconfigureError {
    /// This node was expunged.
    Expunged,
    /// The request names another rack.
    RackIdMismatch,
    /// The node has only LRTQ data: the rack must be upgraded first.
    MustUpgradeFromLrtq,
    /// An LRTQ upgrade is being coordinated here.
    LrtqUpgradeInProgress,
    /// This node is not in the new member set.
    NotAMember,
    /// Member count outside `MIN_MEMBERS..=MAX_MEMBERS`.
    MemberCount,
    /// Threshold not strictly below the member count.
    ThresholdTooLarge,
    /// `last_committed_epoch` is not this node's latest committed epoch.
    LastCommittedEpochMismatch {
        /// What this node has committed last.
        node: Option<Epoch>,
        /// What the request said.
        request: Option<Epoch>,
    },
    /// A coordination for a newer epoch is running here.
    NewerCoordinationRunning(Epoch),
    /// A different request for the same epoch is running here.
    DifferentRequestRunning,
    /// The epoch is not newer than every configuration this node has seen.
    EpochNotNewer {
        /// The newest epoch this node knows.
        latest: Epoch,
    },
    /// The node is computing its own share of a newer committed
    /// configuration, so it is behind whatever Nexus thinks.
    ComputingShare,
    /// The caller's RNG failed; nothing changed.
    Rng(RngError),
    /// An invariant broke while preparing; an alarm was raised.
    Internal,
}

/// Why `coordinate_upgrade_from_lrtq` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LrtqUpgradeError {
    /// This node was expunged.
    Expunged,
    /// The request names another rack than the LRTQ data.
    RackIdMismatch,
    /// This node has no LRTQ data.
    NoLrtqData,
    /// A configuration was already committed: the rack is upgraded.
    AlreadyCommitted,
    /// This node is not in the new member set.
    NotAMember,
    /// Member count outside `MIN_MEMBERS..=MAX_MEMBERS`.
    MemberCount,
    /// Threshold not strictly below the member count.
    ThresholdTooLarge,
    /// Epoch below 2 (LRTQ itself is epoch 1).
    EpochTooSmall,
    /// The epoch is not newer than every configuration this node has seen
    /// or is coordinating.
    EpochNotNewer {
        /// The newest epoch this node knows.
        latest: Epoch,
    },
}

/// Why `commit_configuration` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CommitError {
    /// This node was expunged.
    Expunged,
    /// The request names another rack.
    RackIdMismatch,
    /// This node has not prepared the epoch: Nexus should send
    /// `prepare_and_commit`.
    NotPrepared(Epoch),
}

/// Why `prepare_and_commit` was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum PrepareAndCommitError {
    /// This node was expunged.
    Expunged,
    /// The configuration names another rack.
    RackIdMismatch,
}

/// Why `load_rack_secret` could not give a secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum LoadSecretError {
    /// This node was expunged.
    Expunged,
    /// Nothing is committed yet.
    NoCommittedConfiguration,
    /// That epoch is not committed (it is newer than the latest commit, or
    /// was abandoned).
    NotCommitted(Epoch),
    /// That epoch's secret is older than what is retained.
    TooOld {
        /// The oldest epoch whose secret is retained.
        oldest_retained: Epoch,
    },
}

macro_rules! display_by_debug {
    ($($t:ty),+) => {$(
        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Debug::fmt(self, f)
            }
        }

        impl core::error::Error for $t {}
    )+};
}

// Variant names read as sentences already ("NotPrepared(Epoch(4))"); the
// Debug form is the clearest Display for an operator.
display_by_debug!(
    ReconfigureError,
    LrtqUpgradeError,
    CommitError,
    PrepareAndCommitError,
    LoadSecretError
);
