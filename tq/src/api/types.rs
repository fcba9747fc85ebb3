//! The API's own request and answer types: what wraps the core's types for
//! the calls the core has no single type for (proxied calls, the secret's
//! fingerprint, the sled's status with what the shim adds).

use std::net::SocketAddr;
use std::time::Duration;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use tq_core::api::{CommitRequest, NodeStatus};
use tq_core::config::Configuration;
use tq_core::ids::{Epoch, PlatformId};
use tq_std::disks::{DiskReport, DiskState};
use tq_std::ledger::LedgerStatus;
use tq_std::node::report::{NodeReport, StorageHealth};

use super::error::{ApiError, ErrorCode};

/// Longest deadline a caller may give, in milliseconds: the node
/// handle's own limit.
pub use tq_std::handle::MAX_DEADLINE_MS;

/// How long a call may wait, in milliseconds: 1 to [`MAX_DEADLINE_MS`].
pub type DeadlineMs = u64;

/// A deadline in range, as a duration; `invalid_deadline` otherwise.
// ApiError is the HTTP handlers' error type (dropshot's HttpError
// conversion); it is built once per refused request, not carried around.
#[allow(clippy::result_large_err)]
pub fn deadline(ms: DeadlineMs) -> Result<Duration, ApiError> {
    if (1..=MAX_DEADLINE_MS).contains(&ms) {
        Ok(Duration::from_millis(ms))
    } else {
        Err(ApiError::new(
            ErrorCode::InvalidDeadline,
            format!("a deadline of {ms} ms is outside 1..={MAX_DEADLINE_MS}"),
        ))
    }
}

/// `commit_configuration` on another sled, through this one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyCommitRequest {
    /// The sled to run it on.
    pub target: PlatformId,
    /// How long to wait for its answer, in milliseconds (1 to 60000).
    #[schemars(range(min = 1, max = "MAX_DEADLINE_MS"))]
    pub deadline_ms: DeadlineMs,
    /// The call.
    pub request: CommitRequest,
}

/// `prepare_and_commit` on another sled, through this one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyPrepareAndCommitRequest {
    /// The sled to run it on.
    pub target: PlatformId,
    /// How long to wait for its answer, in milliseconds (1 to 60000).
    #[schemars(range(min = 1, max = "MAX_DEADLINE_MS"))]
    pub deadline_ms: DeadlineMs,
    /// The configuration to prepare and commit.
    pub config: Configuration,
}

/// The node status of another sled, through this one.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProxyStatusRequest {
    /// The sled to ask.
    pub target: PlatformId,
    /// How long to wait for its answer, in milliseconds (1 to 60000).
    #[schemars(range(min = 1, max = "MAX_DEADLINE_MS"))]
    pub deadline_ms: DeadlineMs,
}

/// Load the latest committed epoch's secret, waiting up to the deadline
/// for its shares.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SecretFingerprintRequest {
    /// How long to wait for the shares, in milliseconds (1 to 60000).
    #[schemars(range(min = 1, max = "MAX_DEADLINE_MS"))]
    pub deadline_ms: DeadlineMs,
}

/// Which secret a sled loaded, without the secret: its epoch and its
/// fingerprint (tq-std's `LoadedSecret::fingerprint`, a one-way,
/// domain-separated hash), so members can be compared.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SecretFingerprint {
    /// The epoch whose secret was loaded.
    pub epoch: Epoch,
    /// The fingerprint, 32 bytes in lower-case hex.
    #[schemars(length(equal = 64), regex(pattern = r"^[0-9a-f]*$"))]
    pub fingerprint: String,
}

/// A sled's status: the core's node status, and what the shim adds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SledStatus {
    /// The core's status (never a secret or a share).
    pub node: NodeStatus,
    /// Whether the node's state reaches the ledger.
    pub storage: Storage,
    /// The ledger copies' health.
    pub ledger: Ledger,
    /// Every peer in the peer set, in order.
    pub peers: Vec<Peer>,
    /// The encrypted disks whose keys the rack secret protects, in
    /// configuration order (none if none is configured).
    pub disks: Vec<Disk>,
}

/// One encrypted disk: what its key manager shows (never a key).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Disk {
    /// Its configured name.
    pub name: String,
    /// Its serial.
    pub serial: String,
    /// Its backend: `fscrypt` or `command`.
    pub backend: String,
    /// Whether it is open, and why not.
    pub state: DiskStatus,
    /// The epoch its key is wrapped under on disk, once read.
    pub wrapped_epoch: Option<Epoch>,
    /// Unlock attempts so far.
    pub unlock_attempts: u64,
    /// Re-wraps under a newer epoch so far.
    pub rewraps: u64,
    /// Wrappings that did not open under their epoch's secret.
    pub wrappings_refused: u64,
}

/// A disk's state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", tag = "state")]
pub enum DiskStatus {
    /// Not open, and not being opened.
    Locked {
        /// Why.
        reason: String,
    },
    /// Being opened (waiting for the rack secret, or the backend runs).
    Unlocking {
        /// Rounds tried so far.
        attempts: u32,
        /// What the last failed round met.
        last_error: Option<String>,
    },
    /// Open.
    Unlocked,
    /// Given up until the next commit or restart.
    Failed {
        /// Why.
        reason: String,
    },
}

impl From<DiskReport> for Disk {
    fn from(report: DiskReport) -> Self {
        Self {
            name: report.name,
            serial: report.serial,
            backend: report.backend.to_owned(),
            state: match report.state {
                DiskState::Locked(reason) => DiskStatus::Locked { reason },
                DiskState::Unlocking {
                    attempts,
                    last_error,
                } => DiskStatus::Unlocking {
                    attempts,
                    last_error,
                },
                DiskState::Unlocked => DiskStatus::Unlocked,
                DiskState::Failed(reason) => DiskStatus::Failed { reason },
            },
            wrapped_epoch: report.wrapped_epoch,
            unlock_attempts: report.stats.unlock_attempts,
            rewraps: report.stats.rewraps,
            wrappings_refused: report.stats.wrappings_refused,
        }
    }
}

/// Whether the node's state reaches the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Storage {
    /// The state is stored (at least one copy).
    Stored,
    /// The last writes reached no copy; nothing is sent or acknowledged
    /// until a retry succeeds.
    Failing {
        /// Failed writes in a row.
        attempts: u32,
    },
}

/// The ledger copies' health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Ledger {
    /// Both copies hold the latest state.
    Healthy,
    /// Only one copy holds the latest state.
    Degraded {
        /// The copy that is behind (0 or 1).
        failed_copy: u8,
    },
    /// The last write reached no copy.
    Failing {
        /// Failed attempts in a row.
        attempts: u32,
    },
}

/// One peer's connection.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Peer {
    /// The peer.
    pub id: PlatformId,
    /// Its peer network address.
    #[schemars(with = "String")]
    pub address: SocketAddr,
    /// Whether a connection is established.
    pub connected: bool,
    /// Connections established with it so far.
    pub connects: u64,
    /// What it runs, as its certificate's measurements say: one entry
    /// per firmware digest (empty while not connected).
    pub measurements: Vec<Measurement>,
}

/// One firmware digest a connected peer's certificate carries.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Measurement {
    /// The hash algorithm's OID, dotted (2.16.840.1.101.3.4.2.8 is
    /// SHA3-256, the one the reference measurements list).
    pub algorithm: String,
    /// The digest, in lower-case hex.
    #[schemars(regex(pattern = r"^[0-9a-f]*$"))]
    pub digest: String,
    /// Its name in the reference measurements when the connection was
    /// made; absent if it was not listed (admitted only with enforcement
    /// off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
}

impl From<NodeReport> for SledStatus {
    fn from(report: NodeReport) -> Self {
        Self {
            node: report.node,
            storage: match report.storage {
                StorageHealth::Stored => Storage::Stored,
                StorageHealth::Failing { attempts } => Storage::Failing { attempts },
            },
            ledger: match report.ledger {
                LedgerStatus::Healthy => Ledger::Healthy,
                LedgerStatus::Degraded { failed_copy } => Ledger::Degraded {
                    failed_copy: u8::try_from(failed_copy).unwrap_or(u8::MAX),
                },
                LedgerStatus::Failing { attempts } => Ledger::Failing { attempts },
            },
            peers: report
                .peers
                .into_iter()
                .map(|peer| Peer {
                    id: peer.id,
                    address: peer.addr,
                    connected: peer.connected,
                    connects: peer.stats.connects,
                    measurements: peer
                        .measurements
                        .into_iter()
                        .map(|m| Measurement {
                            algorithm: m.fwid.algorithm,
                            digest: hex::encode(m.fwid.digest),
                            reference: m.reference,
                        })
                        .collect(),
                })
                .collect(),
            disks: report.disks.into_iter().map(Disk::from).collect(),
        }
    }
}
