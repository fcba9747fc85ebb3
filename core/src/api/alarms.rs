//! Alarms: violations of invariants that must never happen (PROTOCOL.md
//! section 6). Raising one does not stop the node; it is recorded, bounded
//! by `MAX_ALARMS`, and polled by the caller.

use core::fmt;

#[cfg(any(test, feature = "host"))]
use serde::Deserialize;
use serde::Serialize;

use crate::ids::Epoch;

/// An invariant violation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "model", derive(Hash))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum Alarm {
    /// Two different configurations were seen for one epoch.
    MismatchedConfigurations(Epoch),
    /// This node's share, computed from valid shares, did not match its
    /// digest.
    ShareComputationFailed(Epoch),
    /// A configuration this node had committed is no longer stored.
    CommittedConfigurationLost(Epoch),
    /// The old secrets of a configuration did not decrypt under a secret
    /// rebuilt from valid shares.
    DecryptionFailed(Epoch),
    /// Valid shares did not rebuild a secret.
    ReconstructionFailed(Epoch),
}

impl fmt::Display for Alarm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MismatchedConfigurations(e) => {
                write!(f, "two different configurations for epoch {e}")
            }
            Self::ShareComputationFailed(e) => write!(f, "share computation failed for epoch {e}"),
            Self::CommittedConfigurationLost(e) => {
                write!(f, "committed configuration of epoch {e} lost")
            }
            Self::DecryptionFailed(e) => write!(f, "old secrets of epoch {e} did not decrypt"),
            Self::ReconstructionFailed(e) => write!(f, "secret of epoch {e} did not rebuild"),
        }
    }
}
