//! Refusals of the Nexus-facing calls, one enum per call, one variant per
//! rejection of PROTOCOL.md section 6. Each carries what Nexus needs to act
//! on it, and displays as a sentence an operator can read.

use core::fmt;

#[cfg(any(test, feature = "host"))]
use serde::Deserialize;
use serde::Serialize;

use crate::crypto::RngError;
use crate::ids::{Epoch, LrtqThreshold, PlatformId, RackId, Threshold};

/// This node was expunged: it is not a member of committed `epoch`, as
/// `from` said.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ExpungedAt {
    /// The committed epoch this node is not a member of.
    pub epoch: Epoch,
    /// The member that said so.
    pub from: PlatformId,
}

impl fmt::Display for ExpungedAt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "this sled was expunged: it is not a member of committed epoch {} (said {})",
            self.epoch, self.from
        )
    }
}

/// A request named another rack than this node's.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct RackMismatch {
    /// This node's rack.
    pub expected: RackId,
    /// The rack the request named.
    pub got: RackId,
}

impl fmt::Display for RackMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the request is for rack {} but this sled belongs to rack {}",
            self.got, self.expected
        )
    }
}

/// Why `coordinate_reconfiguration` was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum ReconfigureError {
    /// This node was expunged.
    Expunged(ExpungedAt),
    /// The request names another rack.
    RackIdMismatch(RackMismatch),
    /// The node has only LRTQ data: the rack must be upgraded first.
    MustUpgradeFromLrtq,
    /// An LRTQ upgrade to this epoch is being coordinated here.
    LrtqUpgradeInProgress(Epoch),
    /// This node is not in the new member set.
    NotAMember,
    /// Member count outside `MIN_MEMBERS..=MAX_MEMBERS`.
    MemberCount(usize),
    /// Threshold not strictly below the member count.
    ThresholdTooLarge {
        /// The requested threshold.
        threshold: Threshold,
        /// The requested member count.
        members: usize,
    },
    /// `last_committed_epoch` is not this node's latest committed epoch.
    LastCommittedEpochMismatch {
        /// What this node has committed last.
        node: Option<Epoch>,
        /// What the request said.
        request: Option<Epoch>,
    },
    /// A coordination for this newer epoch is running here.
    NewerCoordinationRunning(Epoch),
    /// A different request for the same epoch is running here.
    DifferentRequestRunning(Epoch),
    /// The epoch is not newer than every configuration this node has seen.
    EpochNotNewer {
        /// The newest epoch this node knows.
        latest: Epoch,
    },
    /// The node is computing its own share of this committed configuration,
    /// so it is behind whatever Nexus thinks.
    ComputingShare(Epoch),
    /// The caller's RNG failed; nothing changed, and the same request again
    /// tries again.
    Rng(RngError),
    /// An invariant of this code broke while preparing (counted as
    /// `internal`; an alarm was raised if the protocol's broke).
    Internal,
}

/// Why `coordinate_upgrade_from_lrtq` was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum LrtqUpgradeError {
    /// This node was expunged.
    Expunged(ExpungedAt),
    /// The request names another rack than the LRTQ data.
    RackIdMismatch(RackMismatch),
    /// This node has no LRTQ data.
    NoLrtqData,
    /// This configuration was already committed: the rack is upgraded.
    AlreadyCommitted(Epoch),
    /// This node is not in the new member set.
    NotAMember,
    /// Member count outside `MIN_MEMBERS..=MAX_MEMBERS`.
    MemberCount(usize),
    /// Threshold not strictly below the member count.
    ThresholdTooLarge {
        /// The requested threshold.
        threshold: Threshold,
        /// The requested member count.
        members: usize,
    },
    /// The LRTQ threshold is more than the new members, the only sleds
    /// asked for LRTQ shares: the upgrade could never rebuild the secret.
    LrtqThresholdAboveMembers {
        /// The LRTQ threshold.
        lrtq_threshold: LrtqThreshold,
        /// The requested member count.
        members: usize,
    },
    /// Epoch below 2 (LRTQ itself is epoch 1).
    EpochTooSmall(Epoch),
    /// The epoch is not newer than every configuration this node has seen
    /// or is coordinating.
    EpochNotNewer {
        /// The newest epoch this node knows.
        latest: Epoch,
    },
}

/// Why `commit_configuration` was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum CommitError {
    /// This node was expunged.
    Expunged(ExpungedAt),
    /// The request names another rack.
    RackIdMismatch(RackMismatch),
    /// This node has not prepared the epoch: Nexus should send
    /// `prepare_and_commit`.
    NotPrepared(Epoch),
}

/// Why `prepare_and_commit` was refused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum PrepareAndCommitError {
    /// This node was expunged.
    Expunged(ExpungedAt),
    /// The configuration names another rack.
    RackIdMismatch(RackMismatch),
    /// This node is not a member of the configuration.
    NotAMember,
    /// A newer epoch is already committed here: the configuration is stale.
    NewerCommitted {
        /// The configuration's epoch.
        epoch: Epoch,
        /// This node's latest commit.
        latest: Epoch,
    },
    /// This node stores a different configuration for the epoch, not yet
    /// committed: the `MismatchedConfigurations` alarm is raised.
    MismatchedConfiguration(Epoch),
    /// This node committed a different configuration for the epoch. Its own
    /// state is intact, so no alarm: the call is refused, as any call for
    /// an epoch not newer than the latest commit is ignored.
    ConflictsWithCommitted(Epoch),
    /// This node coordinates a newer epoch than the committed one, which
    /// Nexus never starts before the commit it names.
    CoordinatingNewerEpoch(Epoch),
    /// An invariant of this code broke (counted as `internal`).
    Internal,
}

/// Why `load_rack_secret` could not give a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum LoadSecretError {
    /// This node was expunged.
    Expunged(ExpungedAt),
    /// Nothing is committed yet.
    NoCommittedConfiguration,
    /// That epoch is not committed (it is newer than the latest commit, or
    /// was abandoned).
    NotCommitted(Epoch),
    /// That epoch's secret is older than what is retained.
    TooOld {
        /// The epoch asked for.
        epoch: Epoch,
        /// The oldest epoch whose secret is retained.
        oldest_retained: Epoch,
    },
}

impl fmt::Display for ReconfigureError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expunged(e) => e.fmt(f),
            Self::RackIdMismatch(m) => m.fmt(f),
            Self::MustUpgradeFromLrtq => {
                f.write_str("this sled holds only LRTQ data: the rack must be upgraded first")
            }
            Self::LrtqUpgradeInProgress(epoch) => {
                write!(
                    f,
                    "the LRTQ upgrade to epoch {epoch} is being coordinated here"
                )
            }
            Self::NotAMember => f.write_str("this sled is not a member of the new configuration"),
            Self::MemberCount(n) => write!(f, "{n} members is outside the allowed range"),
            Self::ThresholdTooLarge { threshold, members } => {
                write!(
                    f,
                    "threshold {threshold} is not below the {members} members"
                )
            }
            Self::LastCommittedEpochMismatch { node, request } => write!(
                f,
                "the request names {} as last committed, but this sled last committed {}",
                OptionalEpoch(*request),
                OptionalEpoch(*node)
            ),
            Self::NewerCoordinationRunning(epoch) => {
                write!(f, "this sled is coordinating newer epoch {epoch}")
            }
            Self::DifferentRequestRunning(epoch) => write!(
                f,
                "a different reconfiguration to epoch {epoch} is being coordinated here"
            ),
            Self::EpochNotNewer { latest } => {
                write!(f, "the epoch is not newer than epoch {latest}, known here")
            }
            Self::ComputingShare(epoch) => write!(
                f,
                "this sled is still computing its share of committed epoch {epoch}"
            ),
            Self::Rng(error) => write!(f, "{error}; the same request again retries"),
            Self::Internal => f.write_str("internal error while preparing"),
        }
    }
}

impl fmt::Display for LrtqUpgradeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expunged(e) => e.fmt(f),
            Self::RackIdMismatch(m) => m.fmt(f),
            Self::NoLrtqData => f.write_str("this sled holds no LRTQ share data"),
            Self::AlreadyCommitted(epoch) => write!(
                f,
                "epoch {epoch} is committed here: the rack is already upgraded"
            ),
            Self::NotAMember => f.write_str("this sled is not a member of the new configuration"),
            Self::MemberCount(n) => write!(f, "{n} members is outside the allowed range"),
            Self::ThresholdTooLarge { threshold, members } => {
                write!(
                    f,
                    "threshold {threshold} is not below the {members} members"
                )
            }
            Self::LrtqThresholdAboveMembers {
                lrtq_threshold,
                members,
            } => write!(
                f,
                "the LRTQ threshold {lrtq_threshold} is more than the {members} members \
                 that would be asked for LRTQ shares"
            ),
            Self::EpochTooSmall(epoch) => {
                write!(f, "epoch {epoch} is below 2 (LRTQ is epoch 1)")
            }
            Self::EpochNotNewer { latest } => {
                write!(f, "the epoch is not newer than epoch {latest}, known here")
            }
        }
    }
}

impl fmt::Display for CommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expunged(e) => e.fmt(f),
            Self::RackIdMismatch(m) => m.fmt(f),
            Self::NotPrepared(epoch) => write!(
                f,
                "this sled has not prepared epoch {epoch}: send it prepare-and-commit"
            ),
        }
    }
}

impl fmt::Display for PrepareAndCommitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expunged(e) => e.fmt(f),
            Self::RackIdMismatch(m) => m.fmt(f),
            Self::NotAMember => f.write_str("this sled is not a member of the configuration"),
            Self::NewerCommitted { epoch, latest } => write!(
                f,
                "epoch {epoch} is stale: this sled already committed epoch {latest}"
            ),
            Self::MismatchedConfiguration(epoch) => write!(
                f,
                "this sled stores a different configuration for epoch {epoch}"
            ),
            Self::ConflictsWithCommitted(epoch) => write!(
                f,
                "this sled committed a different configuration for epoch {epoch}"
            ),
            Self::CoordinatingNewerEpoch(epoch) => {
                write!(f, "this sled is coordinating newer epoch {epoch}")
            }
            Self::Internal => f.write_str("internal error while storing the configuration"),
        }
    }
}

impl fmt::Display for LoadSecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Expunged(e) => e.fmt(f),
            Self::NoCommittedConfiguration => f.write_str("no configuration is committed yet"),
            Self::NotCommitted(epoch) => write!(f, "epoch {epoch} is not committed"),
            Self::TooOld {
                epoch,
                oldest_retained,
            } => write!(
                f,
                "the secret of epoch {epoch} is no longer retained (the oldest is epoch \
                 {oldest_retained})"
            ),
        }
    }
}

/// An optional epoch in a sentence.
struct OptionalEpoch(Option<Epoch>);

impl fmt::Display for OptionalEpoch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(epoch) => write!(f, "epoch {epoch}"),
            None => f.write_str("nothing"),
        }
    }
}

impl core::error::Error for ExpungedAt {}
impl core::error::Error for RackMismatch {}
impl core::error::Error for ReconfigureError {}
impl core::error::Error for LrtqUpgradeError {}
impl core::error::Error for CommitError {}
impl core::error::Error for PrepareAndCommitError {}
impl core::error::Error for LoadSecretError {}
