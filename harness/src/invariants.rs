//! The safety invariants of PROTOCOL.md section 8, checked after every step,
//! and the typed [`Violation`] a broken one (or a liveness failure) yields.
//!
//! | PROTOCOL.md 8 | checked as |
//! |---|---|
//! | 1 | every configuration on any disk, in any `CommitAdvance` Nexus hands out, and in any coordinator's status, encodes the same as the first one seen for its epoch ([`Violation::MismatchedConfigurations`]) |
//! | 2 | a `PrepareAck` leaves a sled only when its disk holds that configuration with its share ([`Violation::AckWithoutDurablePrepare`]); a coordinator's acked set grows only by the sender of a `PrepareAck` for its epoch delivered in that step ([`Violation::AckNotSent`]); every sled a coordinator counts still holds the share, or moved on to a newer epoch ([`Violation::AckedPrepareLost`]); every sled whose ack Nexus committed on keeps its share until it commits ([`Violation::AckedPrepareLost`]) |
//! | 3 | a sled Nexus counted as committed has committed at least that epoch (the disk decodes only if it holds the share of its latest commit) ([`Violation::CommitNotDurable`]) |
//! | 4 | [`Violation::CoordinatingWhileComputingShare`] |
//! | 5 | [`Violation::Alarm`] |
//! | 6 | an expunged sled is outside the committed configuration of the epoch it was expunged at ([`Violation::WronglyExpunged`]) |
//! | 7 | the liveness check of [`crate::cluster::Cluster::check_liveness`], and every secret loaded for an epoch equals the first one loaded for it ([`Violation::SecretMismatch`]) |
//!
//! Besides: a sled commits only a configuration Nexus committed
//! ([`Violation::CommittedUnknownEpoch`]); a node whose context says its
//! state is stored has exactly that state on its disk, so nothing it sends
//! follows from state a crash loses ([`Violation::StateNotPersisted`]);
//! every commit or expungement a node reports as an event is on its disk
//! ([`Violation::EventNotDurable`]).

use core::fmt;

use tq_core::authority::RequestRefusal;
use tq_core::ids::Epoch;
use tq_core::node::{
    Alarm, CommitError, LoadSecretError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError,
};
use tq_core::wire::WireError;
use tq_nexus::{AbandonError, StartError};

/// Nexus doing what it must not: refusing a command the harness checked,
/// or handing out calls without end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NexusFault {
    /// A start the harness built from Nexus's own sets was refused.
    StartRefused(StartError),
    /// An abandon the harness built from Nexus's own sets was refused.
    AbandonRefused(AbandonError),
    /// An answer did not fit its call.
    WrongAnswer,
    /// One action drained more than `MAX_CALLS_PER_ACTION` (cluster/nexus_steps.rs) calls.
    EndlessCalls,
    /// A sled refused Nexus's own authenticated request.
    RequestRefused {
        /// The sled.
        sled: u8,
        /// Why.
        refusal: RequestRefusal,
    },
    /// A sled's answer to Nexus did not carry its valid tag.
    AnswerUnauthenticated {
        /// The sled.
        sled: u8,
    },
}

/// A broken invariant, a harness limit hit, or a liveness failure.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Violation {
    /// Invariant 1: two configurations for one epoch.
    MismatchedConfigurations {
        /// The sled holding the second one (or `None`: Nexus or a status).
        sled: Option<u8>,
        /// The epoch.
        epoch: Epoch,
    },
    /// Invariant 2: a `PrepareAck` was sent before the prepare was on disk.
    AckWithoutDurablePrepare {
        /// The acking sled.
        sled: u8,
        /// The epoch acked.
        epoch: Epoch,
    },
    /// Invariant 2: a coordinator counted an ack nobody sent it.
    AckNotSent {
        /// The coordinator.
        coordinator: u8,
        /// The sled counted.
        from: u8,
        /// The epoch.
        epoch: Epoch,
    },
    /// Invariant 2: a sled whose ack was counted no longer holds its share
    /// (without having moved on).
    AckedPrepareLost {
        /// The sled that acked.
        sled: u8,
        /// The epoch it acked.
        epoch: Epoch,
    },
    /// Invariant 3: Nexus counted a commit the sled's disk does not show.
    CommitNotDurable {
        /// The sled.
        sled: u8,
        /// The epoch Nexus counted.
        epoch: Epoch,
    },
    /// Invariant 4.
    CoordinatingWhileComputingShare {
        /// The sled.
        sled: u8,
    },
    /// Invariant 5.
    Alarm {
        /// The sled.
        sled: u8,
        /// Its first alarm.
        alarm: Alarm,
    },
    /// Invariant 6: expunged, yet a member of the configuration named.
    WronglyExpunged {
        /// The sled.
        sled: u8,
        /// The epoch it was expunged at.
        epoch: Epoch,
    },
    /// A sled committed a configuration Nexus never committed.
    CommittedUnknownEpoch {
        /// The sled.
        sled: u8,
        /// The epoch.
        epoch: Epoch,
    },
    /// Invariant 7: a secret loaded for an epoch differs from the first one
    /// loaded for it (or from the LRTQ secret for epoch 1).
    SecretMismatch {
        /// The sled.
        sled: u8,
        /// The epoch.
        epoch: Epoch,
    },
    /// A node's context said its state was stored while its disk held
    /// another: its driver acknowledged a write it did not make, and the
    /// node would send from state a crash loses.
    StateNotPersisted {
        /// The sled.
        sled: u8,
    },
    /// A node handed out an event (a commit, an expungement) its disk does
    /// not show.
    EventNotDurable {
        /// The sled.
        sled: u8,
    },
    /// A disk did not decode.
    DiskUnreadable {
        /// The sled.
        sled: u8,
        /// Why.
        error: WireError,
    },
    /// A state or message did not encode (the harness buffers are too
    /// small, or the core broke an encoding bound).
    Encoding {
        /// The sled.
        sled: u8,
        /// Why.
        error: WireError,
    },
    /// A node sent to a sled the harness does not know.
    UnknownPeer {
        /// The sender.
        sled: u8,
    },
    /// The coordinator's status disagrees with what Nexus asked for.
    StatusMismatch {
        /// The coordinator.
        sled: u8,
        /// The epoch.
        epoch: Epoch,
    },
    /// A node refused a coordination Nexus had every right to ask for.
    ReconfigureRefused {
        /// The coordinator.
        sled: u8,
        /// Why.
        error: ReconfigureError,
    },
    /// A node refused an LRTQ upgrade Nexus had every right to ask for.
    LrtqUpgradeRefused {
        /// The coordinator.
        sled: u8,
        /// Why.
        error: LrtqUpgradeError,
    },
    /// A member of the latest committed configuration refused its commit.
    CommitRefused {
        /// The member.
        sled: u8,
        /// Why.
        error: CommitError,
    },
    /// A member refused `prepare_and_commit`.
    PrepareAndCommitRefused {
        /// The member.
        sled: u8,
        /// Why.
        error: PrepareAndCommitError,
    },
    /// A member of the latest committed configuration could not load its
    /// secret for a reason other than "not yet".
    LoadRefused {
        /// The member.
        sled: u8,
        /// The epoch asked for.
        epoch: Epoch,
        /// Why.
        error: LoadSecretError,
    },
    /// Nexus's state machine refused a command the harness built from its
    /// own sets, or looped.
    Nexus(NexusFault),
    /// A request not made by Nexus (a forgery of the fuzzer's) was not
    /// refused with the refusal its forgery calls for, or not counted.
    ForgedRequestNotRefused {
        /// The sled.
        sled: u8,
        /// The refusal expected.
        expected: RequestRefusal,
        /// What the node did: `None` if it ran the request.
        refused: Option<RequestRefusal>,
    },
    /// Setting the cluster up failed (bad parameters).
    Setup(SetupError),
    /// The liveness check did not converge.
    Liveness(LivenessFailure),
}

/// Why a cluster could not be set up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SetupError {
    /// Member or sled counts out of range.
    Sizes,
    /// LRTQ share data for more sleds than there are.
    LrtqData,
    /// A disk could not be written.
    Disk(WireError),
}

/// Which part of the liveness check did not finish in its bounded rounds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LivenessFailure {
    /// The network kept producing messages (a message loop).
    NetworkNeverQuiet,
    /// Nexus could not finish its reconfiguration and commits.
    NexusNeverDone {
        /// The epoch pending, if one was.
        pending: Option<Epoch>,
        /// Members of the latest configuration that had not committed.
        uncommitted: u32,
    },
    /// Nothing was committed, so there is no secret to load.
    NothingCommitted,
    /// A member never loaded the secret.
    SecretNeverLoaded {
        /// The member.
        sled: u8,
        /// The epoch.
        epoch: Epoch,
    },
    /// A removed sled that asked for shares was never told it is expunged.
    NeverExpunged {
        /// The sled.
        sled: u8,
    },
    /// A sled did not come back up (its disk did not decode).
    SledDown {
        /// The sled.
        sled: u8,
    },
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Variant and field names read as sentences; nothing secret is in
        // here.
        fmt::Debug::fmt(self, f)
    }
}

impl From<LivenessFailure> for Violation {
    fn from(failure: LivenessFailure) -> Self {
        Self::Liveness(failure)
    }
}
