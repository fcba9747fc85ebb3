//! The peer network: TCP with mutual TLS 1.3 under the rack CA, one
//! connection per pair of sleds, length-prefixed frames.
//!
//! The node layer talks to it through [`Net`] and a stream of
//! [`NetEvent`]s:
//!
//! - [`Net::start`] binds the listener and dials the peers it should (see
//!   `manager` for who dials whom); it returns the handle and the event
//!   receiver.
//! - Events for one peer come in order: `Connected`, its frames,
//!   `Disconnected`; a replacing connection's `Connected` comes after the
//!   old one's `Disconnected`. `Frame` carries one peer message as the core
//!   encodes it (header checked, body not decoded).
//! - [`Net::send`] queues one encoded message without waiting; a full queue
//!   is [`SendError::Busy`] (counted), no connection
//!   [`SendError::NotConnected`]. The core re-sends what matters on its next
//!   connect.
//! - [`Net::disconnect`] drops a peer, e.g. with
//!   [`CloseReason::Undecodable`] when the core cannot decode its frame.
//! - [`Net::set_peers`] replaces the peer addresses at run time.
//! - [`Net::stats`] reads every counter at once.
//!
//! A misbehaving peer (bad certificate, oversize or malformed frame,
//! silence) costs only its own connection: it is counted and dropped, and
//! nothing it sends can stop the network or another peer's connection.
//!
//! Strangers cannot starve the peers: handshakes from configured peers'
//! addresses have slots of their own, strangers share a bounded pool with
//! a per-address share and a shorter timeout, and a connection that finds
//! no slot is closed at once rather than queued (`admission`). Session
//! resumption is off ([`tls`]), and certificate validity is judged without
//! the sled's clock, which cannot be trusted at boot (`validity`).
//!
//! Peers prove what they run: a peer certificate carries the sled's
//! firmware digests ([`measurements`]), and a peer whose digests are not
//! all in the rack's reference measurements ([`mod@reference`]) is refused at
//! the handshake ([`attestation`], set by [`NetConfig::attestation`]).
//!
//! [`api_tls`] is not the peer network: it configures the TLS of the
//! sled's HTTP API with the same certificate, provider and verifier.

mod admission;
pub mod api_tls;
pub mod attestation;
mod conn;
mod frame;
pub mod identity;
mod manager;
pub mod measurements;
pub mod reference;
mod refusal_log;
mod registry;
mod stats;
pub mod tls;
mod tls_conn;
mod validity;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tq_core::ids::{PlatformId, RackId};
use tracing::Instrument;

use crate::backoff::BackoffConfig;
pub use admission::HANDSHAKES_PER_PEER;
pub use attestation::{Attestation, PeerMeasurement};
pub use frame::{FRAME_PREFIX_LEN, Frame, MAX_FRAME_LEN, MESSAGE_HEADER_LEN};
use manager::Shared;
pub use registry::SendError;
pub use stats::{CloseReason, HandshakeRefusal, MAX_TRACKED_PEERS, NetStats, PeerStats};
pub use tls::{TlsIdentity, TlsSetupError};

/// What the network tells the node layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetEvent {
    /// A connection to this peer is established.
    Connected(PlatformId),
    /// The connection to this peer ended.
    Disconnected(PlatformId),
    /// One message from this peer, as the core encodes it.
    Frame(PlatformId, Frame),
}

/// The network's settings. Every bound is here or a named constant.
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Our rack's id: frames carrying another are dropped with their
    /// connection ([`CloseReason::WrongRack`]). `None` leaves the check to
    /// the node layer.
    pub rack_id: Option<RackId>,
    /// A connection that sent nothing for this long sends a keep-alive
    /// (a busy one sends none: its frames keep the peer's silence away).
    pub keepalive_interval: Duration,
    /// A connection that receives nothing for this long, or cannot write a
    /// frame for this long, is dropped.
    pub inactivity_timeout: Duration,
    /// Longest TLS handshake from a configured peer's address.
    pub handshake_timeout: Duration,
    /// Longest TLS handshake from any other address (`admission`).
    pub stranger_handshake_timeout: Duration,
    /// Longest TCP connect when dialing.
    pub connect_timeout: Duration,
    /// Frames queued per peer before [`SendError::Busy`].
    pub write_queue_len: usize,
    /// Events queued for the node layer before connections wait for it.
    pub event_queue_len: usize,
    /// Handshakes under way at once from addresses that are not a
    /// configured peer's (or past a peer's reserve of
    /// [`HANDSHAKES_PER_PEER`]); connections past it are dropped
    /// ([`HandshakeRefusal::TooManyHandshakes`]).
    pub max_stranger_handshakes: usize,
    /// Of those, at most this many from one address; connections past it
    /// are dropped ([`HandshakeRefusal::SourceBusy`]).
    pub max_handshakes_per_source: usize,
    /// Redial backoff.
    pub backoff: BackoffConfig,
    /// A dialed connection that lasted this long resets the backoff.
    pub stable_after: Duration,
    /// Whether peers' measurements are checked, and against what file.
    pub attestation: Attestation,
}

impl NetConfig {
    /// The defaults: a keep-alive after a second of sending nothing, ten
    /// seconds of silence ends a connection. Attestation is
    /// [`Attestation::Off`] here, since only a sled's configuration names
    /// its reference measurements file: `tq sled` sets it, enforcing unless
    /// told otherwise.
    pub fn new(listen: SocketAddr) -> Self {
        Self {
            listen,
            rack_id: None,
            keepalive_interval: Duration::from_secs(1),
            inactivity_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            // A handshake takes two round trips and two signatures: a
            // stranger slower than this is holding a slot, not connecting.
            stranger_handshake_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(5),
            // A node queues at most a few messages per peer per call.
            write_queue_len: 32,
            event_queue_len: 256,
            max_stranger_handshakes: 64,
            max_handshakes_per_source: 4,
            backoff: BackoffConfig::default(),
            stable_after: Duration::from_secs(10),
            attestation: Attestation::Off,
        }
    }
}

/// Why the network could not start.
#[derive(Debug)]
pub enum StartError {
    /// The TLS identity is unusable.
    Tls(TlsSetupError),
    /// The listener could not bind.
    Bind(std::io::Error),
    /// The reference measurements file is unusable.
    Reference(reference::ReferenceError),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tls(e) => write!(f, "{e}"),
            Self::Bind(e) => write!(f, "cannot listen: {e}"),
            Self::Reference(e) => write!(f, "reference measurements: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

/// The running network. Dropping it stops every task (without waiting;
/// [`Net::shutdown`] waits).
pub struct Net {
    shared: Arc<Shared>,
    local_addr: SocketAddr,
}

impl Net {
    /// Starts listening on `config.listen` and dialing the peers in
    /// `peers` that we dial. Our platform id is the one our certificate
    /// names. Must be called within a tokio runtime.
    pub async fn start(
        config: NetConfig,
        identity: &TlsIdentity,
        peers: BTreeMap<PlatformId, SocketAddr>,
    ) -> Result<(Self, mpsc::Receiver<NetEvent>), StartError> {
        let local = identity.platform_id().map_err(StartError::Tls)?;
        let peer_set: Arc<RwLock<BTreeMap<PlatformId, SocketAddr>>> = Arc::default();
        let policy_local = local.clone();
        let policy_peers = peer_set.clone();
        let policy = Arc::new(move |id: &PlatformId| {
            let known = policy_peers
                .read()
                .unwrap_or_else(|p| p.into_inner())
                .contains_key(id);
            if !known {
                Err(HandshakeRefusal::UnknownPeer)
            } else if *id >= policy_local {
                Err(HandshakeRefusal::WrongDirection)
            } else {
                Ok(())
            }
        });
        let checker =
            attestation::Checker::new(config.attestation.clone()).map_err(StartError::Reference)?;
        let tls = tls::Tls::new(identity, policy, Arc::new(checker)).map_err(StartError::Tls)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .map_err(StartError::Bind)?;
        let local_addr = listener.local_addr().map_err(StartError::Bind)?;
        let (events_tx, events_rx) = mpsc::channel(config.event_queue_len.max(1));
        let shared = Arc::new(Shared::new(local.clone(), config, tls, events_tx, peer_set));
        shared.set_peers(peers);
        let span = tracing::info_span!("net", local = %local, listen = %local_addr);
        shared
            .tasks
            .spawn(manager::accept_loop(shared.clone(), listener).instrument(span.clone()));
        if shared.tls.attestation.enforced() {
            shared
                .tasks
                .spawn(manager::recheck_loop(shared.clone()).instrument(span));
        }
        tracing::info!(local = %local, listen = %local_addr, "peer network started");
        Ok((Self { shared, local_addr }, events_rx))
    }

    /// Our platform id, from our certificate.
    pub fn local_id(&self) -> &PlatformId {
        &self.shared.local
    }

    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Queues one encoded message for `peer`; never waits.
    pub fn send(&self, peer: &PlatformId, frame: Frame) -> Result<(), SendError> {
        if frame.is_empty() || frame.len() > MAX_FRAME_LEN {
            return Err(SendError::BadLength(frame.len()));
        }
        let result = self.shared.registry.send(peer, frame);
        if result == Err(SendError::Busy) {
            stats::lock(&self.shared.stats.peer(peer)).queue_full += 1;
            tracing::warn!(peer = %peer, "write queue full; frame dropped");
        }
        result
    }

    /// Drops the connection to `peer`, if any, counting `reason`; the
    /// dialer (if we dial it) reconnects after its backoff.
    pub fn disconnect(&self, peer: &PlatformId, reason: CloseReason) -> bool {
        self.shared.registry.close(peer, reason)
    }

    /// Replaces the peer set (our own id, if present, is ignored).
    pub fn set_peers(&self, peers: BTreeMap<PlatformId, SocketAddr>) {
        self.shared.set_peers(peers);
    }

    /// Peers with an established connection, in order.
    pub fn connected(&self) -> Vec<PlatformId> {
        self.shared.registry.established()
    }

    /// A snapshot of every counter.
    pub fn stats(&self) -> NetStats {
        let mut stats = self.shared.stats.snapshot();
        stats.reference_reload_failures = self.shared.tls.attestation.reload_failures();
        stats
    }

    /// The measurements of every peer connected now, as their certificates
    /// carry them.
    pub fn measurements(&self) -> BTreeMap<PlatformId, Vec<PeerMeasurement>> {
        let connected = self.connected();
        stats::lock(&self.shared.measurements)
            .iter()
            .filter(|(id, _)| connected.contains(id))
            .map(|(id, m)| (id.clone(), m.clone()))
            .collect()
    }

    /// Stops every task and waits for them to end.
    pub async fn shutdown(self) {
        self.shared.shutdown.cancel();
        self.shared.tasks.close();
        self.shared.tasks.wait().await;
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.shared.shutdown.cancel();
    }
}
