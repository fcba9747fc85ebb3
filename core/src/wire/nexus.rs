//! Codecs of what Nexus and a node exchange ([`crate::api`]).
//!
//! Every request and answer implements [`NexusWire`], which gives its
//! largest encoding; [`encode_nexus`] writes any of them. A node decodes
//! the requests: the large ones in place ([`super::decode_reconfigure_msg_into`],
//! [`super::decode_lrtq_upgrade_msg_into`], [`super::decode_configuration_into`]),
//! a commit with [`decode_commit_request`]. Nexus decodes the answers, on
//! the host, with [`decode_answer`] (feature `host`).

use serde::Serialize;

use super::{
    CONFIG_LEN, EPOCH_LEN, MAX_LRTQ_UPGRADE_MSG_LEN, MAX_RECONFIGURE_MSG_LEN, MEMBER_SET_LEN,
    OPTION_LEN, PLATFORM_ID_LEN, RACK_ID_LEN, TAG_LEN, VERSION_LEN, WireError, varint_len,
};
use crate::api::{
    COUNTER_COUNT, CommitError, CommitOutcome, CommitRequest, CoordinatorStatus, LoadSecretError,
    LrtqUpgradeError, LrtqUpgradeMsg, NodeStatus, PrepareAndCommitError, PrepareAndCommitOutcome,
    ReconfigureError, ReconfigureMsg, ReconfigureOutcome, SecretFingerprint,
};
use crate::config::Configuration;
use crate::limits::{MAX_ALARMS, MAX_CONNECTED, MAX_STORED_CONFIGS};

/// The version of every request and answer between Nexus and a node.
pub const NEXUS_VERSION: u8 = 1;

/// A request or answer between Nexus and a node, and the most bytes its
/// encoding takes (tests encode the largest value of each and check it
/// fits exactly or within).
pub trait NexusWire: Serialize {
    /// The largest encoding, version byte included.
    const MAX_LEN: usize;
}

/// Encodes a request or answer into `buf`, returning the bytes written.
pub fn encode_nexus<'b, T: NexusWire + ?Sized>(
    value: &T,
    buf: &'b mut [u8],
) -> Result<&'b [u8], WireError> {
    super::encode(value, NEXUS_VERSION, buf)
}

/// Decodes `commit_configuration`'s request.
pub fn decode_commit_request(bytes: &[u8]) -> Result<CommitRequest, WireError> {
    super::decode(bytes, NEXUS_VERSION)
}

/// Decodes an answer (on the host: the derived decoders of the `host`
/// feature).
#[cfg(feature = "host")]
pub fn decode_answer<T: NexusWire + serde::de::DeserializeOwned>(
    bytes: &[u8],
) -> Result<T, WireError> {
    super::decode(bytes, NEXUS_VERSION)
}

/// Largest encoded [`CommitRequest`].
pub const MAX_COMMIT_REQUEST_LEN: usize = VERSION_LEN + RACK_ID_LEN + EPOCH_LEN;

/// Largest encoded configuration (`prepare_and_commit`'s request).
pub const MAX_CONFIGURATION_LEN: usize = VERSION_LEN + CONFIG_LEN;

/// The largest error of any call: `Expunged` with its epoch and sled.
const ERROR_LEN: usize = TAG_LEN + EPOCH_LEN + PLATFORM_ID_LEN;

/// Largest encoded answer of `coordinate_reconfiguration`,
/// `coordinate_upgrade_from_lrtq`, `commit_configuration` and
/// `prepare_and_commit` (a `Result` whose largest error is an
/// expungement).
pub const MAX_ANSWER_LEN: usize = VERSION_LEN + TAG_LEN + ERROR_LEN;

/// Largest encoded `Option<CoordinatorStatus>`.
pub const MAX_COORDINATOR_STATUS_LEN: usize =
    VERSION_LEN + OPTION_LEN + EPOCH_LEN + TAG_LEN + MEMBER_SET_LEN + OPTION_LEN + CONFIG_LEN;

const CONFIG_SUMMARY_LEN: usize = EPOCH_LEN + PLATFORM_ID_LEN + 1 + 1 + 1 + 1;
const STATE_SUMMARY_LEN: usize = OPTION_LEN
    + RACK_ID_LEN
    + 1
    + varint_len(MAX_STORED_CONFIGS)
    + MAX_STORED_CONFIGS * CONFIG_SUMMARY_LEN
    + OPTION_LEN
    + EPOCH_LEN
    + OPTION_LEN
    + EPOCH_LEN
    + PLATFORM_ID_LEN;
const ACTIVITY_LEN: usize = OPTION_LEN + EPOCH_LEN + TAG_LEN + 3 * (OPTION_LEN + EPOCH_LEN);
/// A `u32` varint.
const COUNT_LEN: usize = 5;

/// Largest encoded [`NodeStatus`].
pub const MAX_NODE_STATUS_LEN: usize = VERSION_LEN
    + PLATFORM_ID_LEN
    + varint_len(MAX_CONNECTED)
    + MAX_CONNECTED * PLATFORM_ID_LEN
    + STATE_SUMMARY_LEN
    + 1
    + ACTIVITY_LEN
    + varint_len(MAX_ALARMS)
    + MAX_ALARMS * (TAG_LEN + EPOCH_LEN)
    + COUNTER_COUNT * COUNT_LEN;

impl NexusWire for ReconfigureMsg {
    const MAX_LEN: usize = MAX_RECONFIGURE_MSG_LEN;
}

impl NexusWire for LrtqUpgradeMsg {
    const MAX_LEN: usize = MAX_LRTQ_UPGRADE_MSG_LEN;
}

impl NexusWire for CommitRequest {
    const MAX_LEN: usize = MAX_COMMIT_REQUEST_LEN;
}

impl NexusWire for Configuration {
    const MAX_LEN: usize = MAX_CONFIGURATION_LEN;
}

impl NexusWire for Result<ReconfigureOutcome, ReconfigureError> {
    const MAX_LEN: usize = MAX_ANSWER_LEN;
}

impl NexusWire for Result<(), LrtqUpgradeError> {
    const MAX_LEN: usize = MAX_ANSWER_LEN;
}

impl NexusWire for Result<CommitOutcome, CommitError> {
    const MAX_LEN: usize = MAX_ANSWER_LEN;
}

impl NexusWire for Result<PrepareAndCommitOutcome, PrepareAndCommitError> {
    const MAX_LEN: usize = MAX_ANSWER_LEN;
}

impl<A: Serialize, C: Serialize> NexusWire for Option<CoordinatorStatus<A, C>> {
    const MAX_LEN: usize = MAX_COORDINATOR_STATUS_LEN;
}

impl<P: Serialize> NexusWire for NodeStatus<P> {
    const MAX_LEN: usize = MAX_NODE_STATUS_LEN;
}

impl NexusWire for Result<SecretFingerprint, LoadSecretError> {
    // The largest of the epoch and fingerprint, and the largest error.
    const MAX_LEN: usize = VERSION_LEN + TAG_LEN + max(EPOCH_LEN + 32, ERROR_LEN);
}

const fn max(a: usize, b: usize) -> usize {
    if a > b { a } else { b }
}
