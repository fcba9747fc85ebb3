//! What a record says: one [`AuditEvent`]. Every field is an identifier, an
//! epoch, a count or a reason; no variant has room for a share, a secret,
//! a key or an authentication tag, and none may be added that does.

use serde::{Deserialize, Serialize};

/// The Nexus-facing calls, as the core names them. Every call that acts
/// is recorded, accepted or refused; a read (a coordinator or node status)
/// only when it is refused: Nexus polls them, and an accepted one changes
/// nothing. Secret loads are [`AuditEvent::SecretLoad`].
pub use tq_core::authority::NexusCall;

/// What became of a Nexus request.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "outcome")]
pub enum RequestOutcome {
    /// The node accepted it, with this result (the core's outcome name).
    Accepted {
        /// E.g. `Committed`, `AlreadyCommitted`, `Started`.
        result: String,
    },
    /// Refused, and why: by the node (the core's error) or before it
    /// (its authenticator missing, or refused by the node).
    Refused {
        /// The refusal as its error prints.
        reason: String,
    },
    /// The node acted but the ledger took no copy of the state, so the
    /// caller was told nothing is acknowledged.
    NotStored,
}

/// Who a secret was loaded for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SecretFor {
    /// Nexus's fingerprint call (`/v1/secret/fingerprint`).
    NexusFingerprint,
    /// The sled itself (its disks' keys).
    Sled,
}

/// How a share left this sled.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ShareMessage {
    /// A `Share`: the answer to a peer's `GetShare`.
    Share,
    /// A `Prepare`: this sled, coordinating, dealt the member its share.
    Prepare,
}

/// One audited event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "event")]
pub enum AuditEvent {
    /// The first record of every segment: which segment it is, and the
    /// oldest one the writer keeps from now on (older ones were dropped
    /// by rotation). [`super::verify`] checks every segment in that range
    /// is there.
    SegmentOpened {
        /// This segment's number.
        segment: u64,
        /// The oldest segment kept.
        oldest_kept: u64,
        /// The sled writing.
        sled: String,
    },
    /// A new log: nothing was on either drive. A ledger generation above
    /// 0 means the sled had stored state before: an earlier log was lost,
    /// or the sled ran a build without one.
    LogCreated {
        /// The ledger's generation at the time.
        ledger_generation: u64,
    },
    /// How much each refusal count grew since the previous such record
    /// (or the sled's start), one record per interval at most
    /// ([`super::refusals`]): by kind, `family.reason`, for example
    /// `handshake.unknown_issuer` or `node.wrong_rack`.
    Refusals {
        /// The growth of each count that grew.
        counts: std::collections::BTreeMap<String, u64>,
    },
    /// The sled (its node task) started.
    Started {
        /// The build (`tq-std`'s version).
        version: String,
        /// The ledger's generation loaded.
        ledger_generation: u64,
    },
    /// A record cut short by a crash (power loss during an append) was
    /// cut off at open.
    TornTailTruncated {
        /// The copy (0 or 1).
        copy: usize,
        /// Its segment.
        segment: u64,
        /// Bytes removed.
        bytes: u64,
    },
    /// One copy differed from the other at open and was rewritten from
    /// it: behind after a crash or a drive fault, or damaged (the finding
    /// says which).
    CopyRepaired {
        /// The copy rewritten.
        copy: usize,
        /// What was found in it.
        finding: String,
        /// Segments rewritten.
        rewritten: u64,
        /// Segments removed.
        removed: u64,
    },
    /// The copy the log continues from fails verification itself (both
    /// copies are damaged): the damage stays visible to `tq audit verify`
    /// until rotation drops it.
    LogDamaged {
        /// The copy kept.
        copy: usize,
        /// What verification found.
        finding: String,
    },
    /// A Nexus request, accepted or refused.
    NexusRequest {
        /// The call.
        call: NexusCall,
        /// The epoch it names, if it names one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        epoch: Option<u64>,
        /// The sled that relayed it, for a proxied call.
        via: Option<String>,
        /// What became of it.
        #[serde(flatten)]
        outcome: RequestOutcome,
    },
    /// A share is about to leave for a peer (recorded before it is sent).
    ShareSent {
        /// The peer.
        to: String,
        /// The configuration it belongs to.
        epoch: u64,
        /// The message carrying it.
        message: ShareMessage,
    },
    /// This sled's LRTQ share is about to leave for an upgrade
    /// coordinator (recorded before it is sent).
    LrtqShareSent {
        /// The peer.
        to: String,
    },
    /// A loaded secret was handed out, or the load was refused.
    SecretLoad {
        /// Who asked.
        #[serde(rename = "for")]
        for_whom: SecretFor,
        /// The epoch asked for, or loaded (the latest's).
        epoch: Option<u64>,
        /// `None` if handed out; the refusal otherwise.
        refused: Option<String>,
    },
    /// The node rebuilt a rack secret from shares.
    SecretRebuilt {
        /// Its epoch.
        epoch: u64,
    },
    /// This sled learned it was expunged.
    Expunged {
        /// The committed epoch it is not a member of.
        epoch: u64,
        /// The peer that said so.
        from: String,
    },
    /// An alarm: an invariant broken.
    Alarm {
        /// The alarm, as it prints.
        alarm: String,
    },
}

impl AuditEvent {
    /// Whether it records a share handed out.
    pub fn hands_out(&self) -> bool {
        matches!(self, Self::ShareSent { .. } | Self::LrtqShareSent { .. })
    }

    /// A Nexus request's record from the call's result (`Err(())`: the
    /// state it left was not stored).
    pub fn nexus_request<T: AcceptedResult, E: std::fmt::Display>(
        call: NexusCall,
        epoch: Option<u64>,
        via: Option<String>,
        result: Result<&Result<T, E>, ()>,
    ) -> Self {
        let outcome = match result {
            Ok(Ok(accepted)) => RequestOutcome::Accepted {
                result: accepted.name(),
            },
            Ok(Err(refused)) => RequestOutcome::Refused {
                reason: refused.to_string(),
            },
            Err(()) => RequestOutcome::NotStored,
        };
        Self::NexusRequest {
            call,
            epoch,
            via,
            outcome,
        }
    }
}

/// A Nexus call's successful result, named for its record.
pub trait AcceptedResult {
    /// The result's name.
    fn name(&self) -> String;
}

macro_rules! named_by_debug {
    ($($outcome:ty),+) => {$(
        impl AcceptedResult for $outcome {
            fn name(&self) -> String {
                format!("{self:?}")
            }
        }
    )+};
}

named_by_debug!(
    tq_core::api::ReconfigureOutcome,
    tq_core::api::CommitOutcome,
    tq_core::api::PrepareAndCommitOutcome
);

/// The LRTQ upgrade's only success: the coordination started.
impl AcceptedResult for () {
    fn name(&self) -> String {
        "Started".to_owned()
    }
}
