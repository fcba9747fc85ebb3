//! The network's counters: plain structs, read through
//! [`super::Net::stats`] as one consistent snapshot, for logs, status and
//! the Prometheus export.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tq_core::ids::PlatformId;
use tq_core::limits::MAX_MEMBERS;

/// Most peers with counters of their own; counters of any further peer go
/// to [`NetStats::other_peers`]. Twice a rack, for sleds being replaced.
pub const MAX_TRACKED_PEERS: usize = 2 * MAX_MEMBERS;

/// Why a handshake was refused (by us, or by the peer as we saw it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HandshakeRefusal {
    /// The certificate does not chain to the rack CA.
    UnknownIssuer,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// The dialer presented no certificate.
    NoCertificate,
    /// Another certificate fault (signature, key usage, encoding...).
    BadCertificate,
    /// The certificate names no valid platform id ([`super::identity`]).
    BadIdentity,
    /// A platform id that is not in the peer set.
    UnknownPeer,
    /// A peer that must be dialed by us dialed us (or our own id).
    WrongDirection,
    /// The listener we dialed is another sled than the one we meant.
    WrongPeer,
    /// The peer refused us (a TLS alert).
    RefusedByPeer,
    /// Not TLS 1.3, or malformed TLS.
    Protocol,
    /// The handshake did not finish in time.
    Timeout,
    /// The connection failed during the handshake.
    Io,
    /// The stranger pool of handshake slots was full
    /// (`super::admission`).
    TooManyHandshakes,
    /// The source address already had its share of the stranger pool.
    SourceBusy,
    /// The certificate carries no measurements (`super::attestation`).
    NoMeasurements,
    /// The certificate's measurements are malformed.
    MalformedMeasurements,
    /// A measurement is not in the rack's reference measurements.
    UnknownMeasurement,
}

impl HandshakeRefusal {
    /// Number of kinds.
    pub const COUNT: usize = 18;
    /// Every kind, in counter order.
    pub const ALL: [Self; Self::COUNT] = [
        Self::UnknownIssuer,
        Self::Expired,
        Self::NotYetValid,
        Self::NoCertificate,
        Self::BadCertificate,
        Self::BadIdentity,
        Self::UnknownPeer,
        Self::WrongDirection,
        Self::WrongPeer,
        Self::RefusedByPeer,
        Self::Protocol,
        Self::Timeout,
        Self::Io,
        Self::TooManyHandshakes,
        Self::SourceBusy,
        Self::NoMeasurements,
        Self::MalformedMeasurements,
        Self::UnknownMeasurement,
    ];

    /// A stable snake-case name, for logs and metric labels.
    pub fn label(self) -> &'static str {
        match self {
            Self::UnknownIssuer => "unknown_issuer",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::NoCertificate => "no_certificate",
            Self::BadCertificate => "bad_certificate",
            Self::BadIdentity => "bad_identity",
            Self::UnknownPeer => "unknown_peer",
            Self::WrongDirection => "wrong_direction",
            Self::WrongPeer => "wrong_peer",
            Self::RefusedByPeer => "refused_by_peer",
            Self::Protocol => "protocol",
            Self::Timeout => "timeout",
            Self::Io => "io",
            Self::TooManyHandshakes => "too_many_handshakes",
            Self::SourceBusy => "source_busy",
            Self::NoMeasurements => "no_measurements",
            Self::MalformedMeasurements => "malformed_measurements",
            Self::UnknownMeasurement => "unknown_measurement",
        }
    }

    /// Whether a healthy rack never refuses for this reason. A peer that
    /// goes down mid-handshake (timeout, I/O) is normal churn; everything
    /// else is a bad certificate, a confused peer or a flood.
    pub fn is_anomaly(self) -> bool {
        match self {
            Self::Timeout | Self::Io => false,
            Self::UnknownIssuer
            | Self::Expired
            | Self::NotYetValid
            | Self::NoCertificate
            | Self::BadCertificate
            | Self::BadIdentity
            | Self::UnknownPeer
            | Self::WrongDirection
            | Self::WrongPeer
            | Self::RefusedByPeer
            | Self::Protocol
            | Self::TooManyHandshakes
            | Self::SourceBusy
            | Self::NoMeasurements
            | Self::MalformedMeasurements
            | Self::UnknownMeasurement => true,
        }
    }
}

/// Why an established connection ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The peer closed it.
    PeerClosed,
    /// Nothing arrived within the inactivity timeout.
    Inactivity,
    /// A frame's length prefix was above [`super::MAX_FRAME_LEN`].
    Oversize,
    /// A frame too short for a message header, or of another peer message version.
    BadHeader,
    /// A frame carrying another rack's id.
    WrongRack,
    /// The node layer could not decode a frame ([`super::Net::disconnect`]).
    Undecodable,
    /// The peer did not take our bytes within the inactivity timeout.
    WriteTimeout,
    /// A read or write failed.
    Io,
    /// A newer connection from the same peer replaced it.
    Replaced,
    /// The peer left the peer set.
    Removed,
    /// The node layer asked, for another reason.
    Requested,
    /// The network is shutting down, or the node layer stopped listening.
    Shutdown,
    /// A measurement of the peer left the reference measurements
    /// (`super::attestation`).
    Unattested,
}

impl CloseReason {
    /// Number of kinds.
    pub const COUNT: usize = 13;
    /// Every kind, in counter order.
    pub const ALL: [Self; Self::COUNT] = [
        Self::PeerClosed,
        Self::Inactivity,
        Self::Oversize,
        Self::BadHeader,
        Self::WrongRack,
        Self::Undecodable,
        Self::WriteTimeout,
        Self::Io,
        Self::Replaced,
        Self::Removed,
        Self::Requested,
        Self::Shutdown,
        Self::Unattested,
    ];

    /// A stable snake-case name, for logs and metric labels.
    pub fn label(self) -> &'static str {
        match self {
            Self::PeerClosed => "peer_closed",
            Self::Inactivity => "inactivity",
            Self::Oversize => "oversize",
            Self::BadHeader => "bad_header",
            Self::WrongRack => "wrong_rack",
            Self::Undecodable => "undecodable",
            Self::WriteTimeout => "write_timeout",
            Self::Io => "io",
            Self::Replaced => "replaced",
            Self::Removed => "removed",
            Self::Requested => "requested",
            Self::Shutdown => "shutdown",
            Self::Unattested => "unattested",
        }
    }

    /// Whether a healthy rack never closes a connection for this reason:
    /// a frame that breaks the protocol or names another rack, a peer
    /// running firmware no longer approved. Peers that restart, go quiet
    /// or leave are normal churn.
    pub fn is_anomaly(self) -> bool {
        match self {
            Self::Oversize
            | Self::BadHeader
            | Self::WrongRack
            | Self::Undecodable
            | Self::Unattested => true,
            Self::PeerClosed
            | Self::Inactivity
            | Self::WriteTimeout
            | Self::Io
            | Self::Replaced
            | Self::Removed
            | Self::Requested
            | Self::Shutdown => false,
        }
    }
}

/// Counters of one peer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PeerStats {
    /// Connections that became established (first frame received).
    pub connects: u64,
    /// Dials started to this peer.
    pub dials: u64,
    /// Dials that did not reach an established connection.
    pub dial_failures: u64,
    /// Connections established after the first one (either direction).
    pub reconnects: u64,
    /// Message frames received (keep-alives excluded).
    pub frames_in: u64,
    /// Message frames sent.
    pub frames_out: u64,
    /// Bytes received, length prefixes and keep-alives included.
    pub bytes_in: u64,
    /// Bytes sent, length prefixes and keep-alives included.
    pub bytes_out: u64,
    /// Keep-alives received.
    pub pings_in: u64,
    /// Keep-alives sent.
    pub pings_out: u64,
    /// Sends refused because the write queue was full.
    pub queue_full: u64,
    /// Connections that ended after their handshake, by reason.
    pub closes: [u64; CloseReason::COUNT],
}

impl PeerStats {
    /// Connections that ended for `reason`.
    pub fn closes(&self, reason: CloseReason) -> u64 {
        count(&self.closes, reason as usize)
    }
}

/// A snapshot of the network's counters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct NetStats {
    /// TCP connections accepted by the listener.
    pub accepted: u64,
    /// Handshakes completed (both directions).
    pub handshakes: u64,
    /// Handshakes refused, by reason (both directions).
    pub refused: [u64; HandshakeRefusal::COUNT],
    /// Per peer, for up to [`MAX_TRACKED_PEERS`] peers.
    pub peers: BTreeMap<PlatformId, PeerStats>,
    /// All peers past that bound, summed.
    pub other_peers: PeerStats,
    /// Re-reads of the reference measurements file that failed (the last
    /// good contents were kept; `super::attestation`).
    pub reference_reload_failures: u64,
}

impl NetStats {
    /// Handshakes refused for `reason`.
    pub fn refused(&self, reason: HandshakeRefusal) -> u64 {
        count(&self.refused, reason as usize)
    }

    /// The counters of `peer` (zero if it has none of its own).
    pub fn peer(&self, peer: &PlatformId) -> PeerStats {
        self.peers.get(peer).copied().unwrap_or_default()
    }
}

/// Where one peer's counters live; shared by its connections.
pub(crate) type PeerCell = Arc<Mutex<PeerStats>>;

/// The live counters behind [`NetStats`].
#[derive(Default)]
pub(crate) struct NetCounters {
    global: Mutex<Global>,
}

#[derive(Default)]
struct Global {
    accepted: u64,
    handshakes: u64,
    refused: [u64; HandshakeRefusal::COUNT],
    peers: BTreeMap<PlatformId, PeerCell>,
    other_peers: Option<PeerCell>,
}

/// Adds one to a counter of a per-kind array (indexed by the kind's
/// discriminant, which the tests check is its place in `ALL`).
pub(crate) fn bump(counts: &mut [u64], index: usize) {
    if let Some(count) = counts.get_mut(index) {
        *count += 1;
    }
}

fn count(counts: &[u64], index: usize) -> u64 {
    counts.get(index).copied().unwrap_or(0)
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Counters stay usable even if a holder panicked.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl NetCounters {
    pub(crate) fn accepted(&self) {
        lock(&self.global).accepted += 1;
    }

    pub(crate) fn handshake(&self) {
        lock(&self.global).handshakes += 1;
    }

    pub(crate) fn refused(&self, reason: HandshakeRefusal) {
        bump(&mut lock(&self.global).refused, reason as usize);
    }

    /// The counters `peer`'s connections update.
    pub(crate) fn peer(&self, peer: &PlatformId) -> PeerCell {
        let mut global = lock(&self.global);
        if let Some(cell) = global.peers.get(peer) {
            return cell.clone();
        }
        if global.peers.len() < MAX_TRACKED_PEERS {
            let cell = PeerCell::default();
            global.peers.insert(peer.clone(), cell.clone());
            return cell;
        }
        global
            .other_peers
            .get_or_insert_with(PeerCell::default)
            .clone()
    }

    pub(crate) fn snapshot(&self) -> NetStats {
        let global = lock(&self.global);
        let other_peers = global
            .other_peers
            .as_ref()
            .map(|cell| *lock(cell))
            .unwrap_or_default();
        NetStats {
            accepted: global.accepted,
            handshakes: global.handshakes,
            refused: global.refused,
            peers: global
                .peers
                .iter()
                .map(|(id, cell)| (id.clone(), *lock(cell)))
                .collect(),
            other_peers,
            reference_reload_failures: 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_are_listed_in_discriminant_order() {
        for (i, reason) in HandshakeRefusal::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i);
        }
        for (i, reason) in CloseReason::ALL.iter().enumerate() {
            assert_eq!(*reason as usize, i);
        }
        // The last variants: a kind added after them must extend ALL.
        assert_eq!(
            HandshakeRefusal::UnknownMeasurement as usize + 1,
            HandshakeRefusal::COUNT
        );
        assert_eq!(CloseReason::Unattested as usize + 1, CloseReason::COUNT);
    }

    #[test]
    fn labels_are_distinct() {
        let mut labels: Vec<_> = HandshakeRefusal::ALL.iter().map(|r| r.label()).collect();
        labels.extend(CloseReason::ALL.iter().map(|r| r.label()));
        let before = labels.len();
        labels.sort();
        labels.dedup();
        // "io" is shared by both kinds on purpose (different metrics).
        assert_eq!(labels.len(), before - 1);
    }

    #[test]
    fn peers_past_the_bound_share_one_bucket() {
        let stats = NetCounters::default();
        for n in 0..MAX_TRACKED_PEERS + 3 {
            let id = PlatformId::new("p", &n.to_string()).unwrap();
            lock(&stats.peer(&id)).frames_in += 1;
        }
        let snapshot = stats.snapshot();
        assert_eq!(snapshot.peers.len(), MAX_TRACKED_PEERS);
        assert_eq!(snapshot.other_peers.frames_in, 3);
    }
}
