//! What Nexus asks of a node and what it gets back (PROTOCOL.md sections 6
//! and 7): one type per request and per answer of every Nexus-facing call.
//!
//! | call | request | answer |
//! |---|---|---|
//! | `coordinate_reconfiguration` | [`ReconfigureMsg`] | [`ReconfigureOutcome`] or [`ReconfigureError`] |
//! | `coordinate_upgrade_from_lrtq` | [`LrtqUpgradeMsg`] | `()` or [`LrtqUpgradeError`] |
//! | `commit_configuration` | [`CommitRequest`] | [`CommitOutcome`] or [`CommitError`] |
//! | `prepare_and_commit` | a [`Configuration`] | [`PrepareAndCommitOutcome`] or [`PrepareAndCommitError`] |
//! | `coordinator_status` | none | `Option<`[`CoordinatorStatus`]`>` |
//! | `status` | none | [`NodeStatus`] |
//! | `load_latest_rack_secret` (the host's fingerprint endpoint) | none | [`SecretFingerprint`] or [`LoadSecretError`] |
//!
//! Each request travels with Nexus's [`crate::authority::RequestAuth`] and
//! each answer with the node's [`crate::authority::AnswerTag`] (see
//! [`crate::authority`]).
//!
//! Each has a postcard codec in [`crate::wire`] (in place where the value
//! is large) for the service processor; with the `host` feature each also
//! derives serde's `Deserialize`, and all of them round-trip through JSON
//! (a rack id as its UUID string, digests and ciphertexts as hex); with
//! the `schema` feature each also describes that JSON as a JSON Schema
//! (`crate::schema`), for the host's HTTP API.
//!
//! The two large answers are generic over how they hold their lists, like
//! [`crate::messages::Envelope`]: a node answers with borrowed parts
//! ([`CoordinatorStatusRef`], [`NodeStatusRef`]) that encode exactly as the
//! owned values a caller decodes ([`CoordinatorStatus`], [`NodeStatus`]).
//!
//! The refusals of the calls ([`ReconfigureError`], ...), the alarms and
//! the counters a status reports live here too, below the node that
//! raises them: this module and [`crate::wire`] use nothing of
//! [`crate::node`] (`tests/layers.rs` checks it), and the node re-exports
//! them under their old paths.

mod alarms;
mod counters;
mod errors;

pub use alarms::Alarm;
pub use counters::{COUNTER_COUNT, Counter, CounterKind, Counters};
pub use errors::{
    CommitError, ExpungedAt, LoadSecretError, LrtqUpgradeError, PrepareAndCommitError,
    RackMismatch, ReconfigureError,
};

#[cfg(any(test, feature = "host"))]
use serde::Deserialize;
use serde::Serialize;

use crate::config::Configuration;
use crate::ids::{Epoch, LrtqThreshold, PlatformId, RackId, Threshold};
use crate::limits::{MAX_ALARMS, MAX_CONNECTED, MAX_STORED_CONFIGS};
use crate::member_set::{MemberSet, MemberSubset};
use crate::persistent::Expunged;

/// Longest deadline a Nexus-facing call waits, in milliseconds: a proxied
/// call's answer, or the latest secret's shares. The one copy of this
/// limit: the host's HTTP API refuses longer deadlines, the Nexus driver
/// keeps its proxy deadlines within it, and a longer one given to a node
/// handle is cut to it.
pub const MAX_DEADLINE_MS: u64 = 60_000;

/// [`MAX_DEADLINE_MS`] as a duration.
pub const MAX_DEADLINE: core::time::Duration = core::time::Duration::from_millis(MAX_DEADLINE_MS);

/// Nexus asks a node to coordinate a reconfiguration.
///
/// Decoded in place by [`crate::wire::decode_reconfigure_msg_into`] (about
/// 2 KiB with a full member set).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "model", derive(Hash))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ReconfigureMsg {
    /// The rack.
    pub rack_id: RackId,
    /// The new epoch.
    pub epoch: Epoch,
    /// The epoch Nexus believes is committed last; `None` for a fresh rack.
    pub last_committed_epoch: Option<Epoch>,
    /// Members of the new configuration.
    pub members: MemberSet,
    /// Threshold of the new configuration.
    pub threshold: Threshold,
}

/// Nexus asks a node to coordinate the upgrade of an LRTQ rack.
///
/// Decoded in place by [`crate::wire::decode_lrtq_upgrade_msg_into`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "model", derive(Hash))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LrtqUpgradeMsg {
    /// The rack (must match the LRTQ data).
    pub rack_id: RackId,
    /// The first new-protocol epoch: 2 or later.
    pub epoch: Epoch,
    /// Members of the new configuration.
    pub members: MemberSet,
    /// Threshold of the new configuration.
    pub threshold: Threshold,
}

/// Nexus committed `epoch`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct CommitRequest {
    /// The rack.
    pub rack_id: RackId,
    /// The committed epoch.
    pub epoch: Epoch,
}

/// What `coordinate_reconfiguration` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum ReconfigureOutcome {
    /// The coordination started.
    Started,
    /// The same request is already running here (if its prepare had failed
    /// for want of randomness, it was tried again).
    AlreadyRunning,
}

/// What `commit_configuration` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum CommitOutcome {
    /// The epoch is now committed here.
    Committed,
    /// It (or a later epoch) was already committed: nothing changed.
    AlreadyCommitted,
}

/// What `prepare_and_commit` did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum PrepareAndCommitOutcome {
    /// The node had prepared this configuration and is now committed.
    Committed,
    /// The node stored the configuration and is collecting shares to
    /// compute its own; it commits when done (an
    /// [`crate::node::Event::Committed`] follows).
    ComputingShare,
    /// This configuration is already committed here: nothing changed.
    AlreadyCommitted,
}

/// Where a coordination stands, as Nexus sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "model", derive(Hash))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub enum CoordinatorPhase {
    /// Collecting shares of the last committed configuration.
    CollectingShares,
    /// Collecting LRTQ shares (upgrade from LRTQ).
    CollectingLrtqShares,
    /// The configuration exists; collecting prepare acks.
    Preparing,
}

/// A running coordination, as Nexus polls it. Generic over how the member
/// list and the configuration are held; see the module doc.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "CoordinatorStatus"))]
pub struct CoordinatorStatus<A = MemberSet, C = Configuration> {
    /// The epoch being coordinated.
    pub epoch: Epoch,
    /// Where it stands.
    pub phase: CoordinatorPhase,
    /// Members that acked the prepare (this node included), once
    /// preparing.
    pub acked: A,
    /// The new configuration, once it exists.
    pub config: Option<C>,
}

/// A coordinator status as a node answers it, borrowing its parts (the
/// acked members as a [`MemberSubset`] of the request's members: the same
/// bytes as a [`MemberSet`] of them).
pub type CoordinatorStatusRef<'a> = CoordinatorStatus<MemberSubset<'a>, &'a Configuration>;

/// The list type of the owned [`NodeStatus`]'s connected peers.
pub type PeerList = heapless::Vec<PlatformId, MAX_CONNECTED, u8>;

/// Everything an operator may see of a node, and nothing secret: no share,
/// no secret, no key. Generic over how the list of connected peers is held;
/// see the module doc.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
#[cfg_attr(feature = "schema", schemars(rename = "NodeStatus", bound = ""))]
pub struct NodeStatus<P = PeerList> {
    /// This sled.
    pub id: PlatformId,
    /// Peers currently connected.
    #[cfg_attr(
        feature = "schema",
        schemars(with = "std::vec::Vec<PlatformId>", length(max = "MAX_CONNECTED"))
    )]
    pub connected: P,
    /// What the persistent state holds.
    pub state: StateSummary,
    /// Whether that state is stored: false between a change and the
    /// caller's acknowledgement of its write (nothing is sent meanwhile).
    pub state_stored: bool,
    /// What is in progress.
    pub activity: Activity,
    /// Alarms raised so far.
    #[cfg_attr(
        feature = "schema",
        schemars(with = "std::vec::Vec<Alarm>", length(max = "MAX_ALARMS"))
    )]
    pub alarms: heapless::Vec<Alarm, MAX_ALARMS, u8>,
    /// Event counters.
    pub counters: Counters,
}

/// A node status as a node answers it, borrowing its peer list.
pub type NodeStatusRef<'a> = NodeStatus<&'a [PlatformId]>;

/// A summary of a node's persistent state.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct StateSummary {
    /// The LRTQ share data, if this sled came from an LRTQ rack.
    pub lrtq: Option<LrtqSummary>,
    /// The configurations stored, oldest first.
    #[cfg_attr(
        feature = "schema",
        schemars(
            with = "std::vec::Vec<ConfigSummary>",
            length(max = "MAX_STORED_CONFIGS")
        )
    )]
    pub configs: heapless::Vec<ConfigSummary, MAX_STORED_CONFIGS, u8>,
    /// The latest committed epoch.
    pub latest_committed: Option<Epoch>,
    /// Set once the node learned it was expunged.
    pub expunged: Option<Expunged>,
}

/// What a node holds of its LRTQ share data (never the share).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct LrtqSummary {
    /// The rack, as LRTQ knew it.
    pub rack_id: RackId,
    /// The LRTQ threshold.
    pub threshold: LrtqThreshold,
}

/// One stored configuration, summarised.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ConfigSummary {
    /// Its epoch.
    pub epoch: Epoch,
    /// The member that coordinated it.
    pub coordinator: PlatformId,
    /// How many members it has.
    pub members: u8,
    /// Its threshold.
    pub threshold: Threshold,
    /// Whether this node holds its share of it.
    pub share_held: bool,
    /// Whether it is committed here.
    pub committed: bool,
}

/// What a node is doing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Activity {
    /// The coordination running here: its epoch and phase.
    pub coordinating: Option<Coordinating>,
    /// The committed epoch whose own share is being computed.
    pub computing_share: Option<Epoch>,
    /// The epoch whose shares are being collected to load its secret.
    pub loading_secret: Option<Epoch>,
    /// The epoch whose secret (and older ones) is loaded.
    pub secret_loaded: Option<Epoch>,
}

/// A coordination running on a node. (A struct, not a tuple: JSON and
/// OpenAPI 3.0 name its fields; postcard encodes both alike.)
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Coordinating {
    /// The epoch being coordinated.
    pub epoch: Epoch,
    /// Where it stands.
    pub phase: CoordinatorPhase,
}

/// The answer to Nexus's request for the latest secret (the host's
/// fingerprint endpoint): its epoch and the secret's public fingerprint
/// (computed by the host; see tq-std's `secrets`), never the secret. The
/// node's [`crate::authority::AnswerTag`] covers the whole
/// `Result<SecretFingerprint, LoadSecretError>`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct SecretFingerprint {
    /// The latest committed epoch, whose secret it is.
    pub epoch: Epoch,
    /// The fingerprint. Lower-case hex in JSON.
    #[serde(with = "crate::serde_forms::hex_array")]
    #[cfg_attr(feature = "schema", schemars(with = "String"))]
    pub fingerprint: [u8; 32],
}

/// Nexus's crash tolerance `Z` for a configuration with `spare = members -
/// K` (PROTOCOL.md section 7).
pub const fn crash_tolerance(spare: usize) -> usize {
    match spare {
        0..=1 => 0,
        2..=4 => 1,
        5..=7 => 2,
        _ => 3,
    }
}

/// How many prepare acks Nexus needs before it commits a configuration of
/// `members` members and threshold `threshold`: `K + Z`.
pub const fn acks_to_commit(members: usize, threshold: Threshold) -> usize {
    let k = threshold.get() as usize;
    k + crash_tolerance(members.saturating_sub(k))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commit_quorum_follows_section_7() {
        let k = |k| Threshold::new(k).unwrap();
        // (members, K) -> K + Z
        for (n, t, want) in [
            (3, 2, 2),
            (4, 2, 3),
            (6, 2, 3),
            (7, 2, 4),
            (9, 2, 4),
            (10, 2, 5),
            (32, 17, 20),
            (32, 31, 31),
            (8, 5, 6),
        ] {
            assert_eq!(acks_to_commit(n, k(t)), want, "{n} members, K = {t}");
        }
    }
}
