//! What the handle's `status` returns, and owned copies of the core's
//! borrowed answers.

use std::net::SocketAddr;

use tq_core::api::{CoordinatorStatus, CoordinatorStatusRef, NodeStatus, NodeStatusRef};
use tq_core::member_set::MemberSet;

use crate::disks::DiskReport;
use crate::ledger::LedgerStatus;
use crate::net::{PeerMeasurement, PeerStats};
use tq_core::ids::PlatformId;

/// A node's status with what the shim adds: the ledger's health and every
/// peer's connection.
#[derive(Clone, Debug)]
pub struct NodeReport {
    /// The core's status (never a secret or a share).
    pub node: NodeStatus,
    /// Whether the state is being stored: `Failing` while no ledger copy
    /// takes it (nothing is sent or acknowledged meanwhile).
    pub storage: StorageHealth,
    /// The ledger's copies.
    pub ledger: LedgerStatus,
    /// Every peer in the peer set, in order.
    pub peers: Vec<PeerReport>,
    /// The disks the key manager handles ([`crate::disks`]), in
    /// configuration order.
    pub disks: Vec<DiskReport>,
}

/// Whether the node's state reaches the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StorageHealth {
    /// The state is stored (at least one copy).
    Stored,
    /// The last writes reached no copy; retried with backoff.
    Failing {
        /// Failed writes in a row.
        attempts: u32,
    },
}

/// One peer's connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerReport {
    /// The peer.
    pub id: PlatformId,
    /// Its address.
    pub addr: SocketAddr,
    /// Whether a connection is established.
    pub connected: bool,
    /// Its counters.
    pub stats: PeerStats,
    /// What it runs, as its certificate says (empty when not connected,
    /// or when attestation is off and it carries none).
    pub measurements: Vec<PeerMeasurement>,
}

/// An owned copy of the node's borrowed status.
pub(crate) fn owned_status(status: NodeStatusRef<'_>) -> NodeStatus {
    let mut connected = heapless::Vec::new();
    for peer in status.connected {
        // The same bound as the node's own list: never full.
        if connected.push(peer.clone()).is_err() {
            break;
        }
    }
    NodeStatus {
        id: status.id,
        connected,
        state: status.state,
        state_stored: status.state_stored,
        activity: status.activity,
        alarms: status.alarms,
        counters: status.counters,
    }
}

/// An owned copy of the node's borrowed coordinator status.
pub(crate) fn owned_coordinator_status(status: CoordinatorStatusRef<'_>) -> CoordinatorStatus {
    CoordinatorStatus {
        epoch: status.epoch,
        phase: status.phase,
        // The node's acked members come from a member set: always valid.
        acked: MemberSet::new(status.acked).unwrap_or_default(),
        config: status.config.cloned(),
    }
}
