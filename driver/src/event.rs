//! What the driver reports as it goes: every decision and every outcome an
//! operator (or the demo's progress display) wants to see. Each is also
//! logged with `tracing`.

use std::fmt;

use tq_core::ids::{Epoch, PlatformId, Threshold};
use tq_nexus::{Method, NodeRefusal};

use crate::sled::CallFailure;

/// One thing the driver decided or saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DriverEvent {
    /// A reconfiguration started (stored).
    Started {
        /// Its epoch.
        epoch: Epoch,
        /// Its coordinator.
        coordinator: PlatformId,
        /// How many members.
        members: usize,
        /// Its threshold.
        threshold: Threshold,
        /// Whether it is the LRTQ upgrade.
        upgrade: bool,
    },
    /// The coordinator accepted the pending epoch.
    Running {
        /// The epoch.
        epoch: Epoch,
    },
    /// The coordinator's acks changed.
    Acks {
        /// The epoch.
        epoch: Epoch,
        /// Members that acked.
        acked: usize,
        /// Acks needed to commit: `K + Z`.
        needed: usize,
    },
    /// Nexus committed the epoch (stored).
    Committed {
        /// The epoch.
        epoch: Epoch,
        /// Acks it committed on.
        acked: usize,
    },
    /// A member confirmed a commit.
    Confirmed {
        /// The epoch.
        epoch: Epoch,
        /// The member.
        sled: PlatformId,
    },
    /// A member that missed the prepare was handed the configuration.
    PreparedAndCommitted {
        /// The member.
        sled: PlatformId,
    },
    /// The pending epoch was abandoned and the change started again at a
    /// higher epoch with another coordinator (stored).
    Abandoned {
        /// The epoch given up.
        epoch: Epoch,
        /// The epoch started in its place.
        next: Epoch,
        /// Its coordinator.
        coordinator: PlatformId,
        /// On the machine's own deadline, not an operator's command.
        automatically: bool,
    },
    /// Automatic abandonment was due, but no member that may coordinate
    /// the pending epoch has a direct route (a coordinator cannot be
    /// called through a proxy): the epoch is kept, and abandoned once a
    /// route comes back (checked again after the machine's deadline).
    AbandonHeld {
        /// The epoch kept.
        epoch: Epoch,
    },
    /// The coordinator can never run the pending epoch.
    Stuck {
        /// The epoch.
        epoch: Epoch,
    },
    /// A sled could not be reached (direct and, for a member call, every
    /// proxy tried).
    Unreachable {
        /// The sled.
        sled: PlatformId,
        /// The call.
        method: Method,
        /// The last failure.
        failure: CallFailure,
    },
    /// A call reached its sled through another sled's proxy.
    Proxied {
        /// The sled.
        sled: PlatformId,
        /// The sled that passed the call on.
        via: PlatformId,
        /// The call.
        method: Method,
    },
    /// A node refused what Nexus had every right to ask: for an operator.
    Refused {
        /// The sled.
        sled: PlatformId,
        /// What it refused.
        refusal: NodeRefusal,
    },
}

impl fmt::Display for DriverEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Started {
                epoch,
                coordinator,
                members,
                threshold,
                upgrade,
            } => write!(
                f,
                "epoch {epoch}: {} of {members} members, K = {threshold}, coordinated by {coordinator}",
                if *upgrade {
                    "LRTQ upgrade"
                } else {
                    "reconfiguration"
                }
            ),
            Self::Running { epoch } => write!(f, "epoch {epoch}: the coordinator runs it"),
            Self::Acks {
                epoch,
                acked,
                needed,
            } => write!(f, "epoch {epoch}: {acked} of {needed} acks"),
            Self::Committed { epoch, acked } => {
                write!(f, "epoch {epoch}: committed on {acked} acks")
            }
            Self::Confirmed { epoch, sled } => write!(f, "epoch {epoch}: {sled} committed"),
            Self::PreparedAndCommitted { sled } => {
                write!(f, "{sled} missed the prepare: handed the configuration")
            }
            Self::Abandoned {
                epoch,
                next,
                coordinator,
                automatically,
            } => write!(
                f,
                "epoch {epoch} abandoned{}: retried as epoch {next} coordinated by {coordinator}",
                if *automatically { " (no progress)" } else { "" }
            ),
            Self::AbandonHeld { epoch } => write!(
                f,
                "epoch {epoch} not abandoned: no member that may coordinate it is reached directly"
            ),
            Self::Stuck { epoch } => write!(f, "epoch {epoch}: the coordinator cannot run it"),
            Self::Unreachable {
                sled,
                method,
                failure,
            } => write!(f, "{sled} unreachable ({}): {failure}", method.name()),
            Self::Proxied { sled, via, method } => {
                write!(f, "{sled} reached through {via} ({})", method.name())
            }
            Self::Refused { sled, refusal } => write!(f, "{sled} refused: {refusal}"),
        }
    }
}
