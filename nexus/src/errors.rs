//! Refusals of Nexus's commands, and what a node refused.

use core::fmt;

use tq_core::ids::{Epoch, PlatformId, Threshold};
use tq_core::node::{CommitError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError};

/// Why [`crate::Nexus::start`] started nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StartError {
    /// A reconfiguration is pending: one at a time (abandon it to start
    /// another).
    Pending(Epoch),
    /// The member list names a sled twice or has too many.
    Members,
    /// The threshold does not fit the member count (`2..=31`, below the
    /// member count, which must be `3..=32`).
    Threshold {
        /// The requested threshold.
        threshold: Threshold,
        /// The requested member count.
        members: usize,
    },
    /// This sled was removed from the rack: it must be wiped and come back
    /// as a new sled.
    Removed(PlatformId),
    /// The coordinator is not one of the new members, or cannot coordinate
    /// it (an upgrade needs a sled holding LRTQ data, a later
    /// reconfiguration a member of the latest commit).
    Coordinator(PlatformId),
    /// Nexus knows [`crate::MAX_KNOWN_SLEDS`] sleds: no new one fits.
    RosterFull,
    /// Every epoch was used.
    EpochsExhausted,
}

/// Why [`crate::Nexus::abandon`] abandoned nothing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AbandonError {
    /// Nothing is pending.
    NothingPending,
    /// That sled cannot coordinate the pending change.
    Coordinator(PlatformId),
    /// Every epoch was used.
    EpochsExhausted,
}

/// Why a stored [`crate::State`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RestoreError {
    /// A sled is listed twice.
    RosterRepeats,
    /// A set names a place past the known sleds.
    UnknownSled,
    /// A removed sled is a member.
    RemovedMember,
    /// Epochs out of order, or the latest configuration does not match the
    /// latest commit.
    Epochs,
    /// A configuration or request names another rack.
    RackId,
    /// The pending request does not match its members or coordinator.
    Pending,
}

/// A node refused what Nexus had every right to ask: a broken sled or a
/// bug, for an operator to see. The machine has already reacted (see
/// [`crate::Reaction::Refused`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NodeRefusal {
    /// The coordinator refused the reconfiguration.
    Reconfigure(ReconfigureError),
    /// The coordinator refused the LRTQ upgrade.
    UpgradeFromLrtq(LrtqUpgradeError),
    /// The coordinator's status names the pending epoch, but its
    /// configuration is not the one requested.
    StatusMismatch(Epoch),
    /// A member of the latest commit refused it.
    Commit(CommitError),
    /// A member refused the configuration it missed.
    PrepareAndCommit(PrepareAndCommitError),
    /// The answer is not of the call's kind (a driver bug): counted as
    /// unreachable.
    WrongAnswer,
}

impl fmt::Display for StartError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Pending(epoch) => write!(f, "epoch {epoch} is pending: abandon it first"),
            Self::Members => f.write_str("the member list repeats a sled or is too long"),
            Self::Threshold { threshold, members } => {
                write!(f, "threshold {threshold} does not fit {members} members")
            }
            Self::Removed(id) => write!(f, "sled {id} was removed: wipe it first"),
            Self::Coordinator(id) => write!(f, "sled {id} cannot coordinate this change"),
            Self::RosterFull => f.write_str("no room to know another sled"),
            Self::EpochsExhausted => f.write_str("every epoch was used"),
        }
    }
}

impl fmt::Display for AbandonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NothingPending => f.write_str("nothing is pending"),
            Self::Coordinator(id) => write!(f, "sled {id} cannot coordinate this change"),
            Self::EpochsExhausted => f.write_str("every epoch was used"),
        }
    }
}

impl fmt::Display for RestoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::RosterRepeats => "a sled is listed twice",
            Self::UnknownSled => "a set names an unknown sled",
            Self::RemovedMember => "a removed sled is a member",
            Self::Epochs => "the epochs do not fit together",
            Self::RackId => "a configuration names another rack",
            Self::Pending => "the pending request does not fit its members",
        })
    }
}

impl fmt::Display for NodeRefusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Reconfigure(e) => write!(f, "the coordinator refused: {e}"),
            Self::UpgradeFromLrtq(e) => write!(f, "the coordinator refused the upgrade: {e}"),
            Self::StatusMismatch(epoch) => write!(
                f,
                "the coordinator's configuration of epoch {epoch} is not the one requested"
            ),
            Self::Commit(e) => write!(f, "a member refused the commit: {e}"),
            Self::PrepareAndCommit(e) => write!(f, "a member refused prepare-and-commit: {e}"),
            Self::WrongAnswer => f.write_str("the answer does not fit the call"),
        }
    }
}

impl core::error::Error for StartError {}
impl core::error::Error for AbandonError {}
impl core::error::Error for RestoreError {}
impl core::error::Error for NodeRefusal {}
