//! The tasks behind [`super::Net`]: the listener, one dialer per peer that
//! we dial, and the peer set that drives them.
//!
//! Who dials: of two sleds, the one with the lower [`PlatformId`] dials the
//! other. The listener refuses, at the handshake, a peer that is not in the
//! peer set ([`HandshakeRefusal::UnknownPeer`]) or that we should dial
//! ([`HandshakeRefusal::WrongDirection`]). So every pair has one dialer, and a
//! second connection between a pair can only be that dialer's newer
//! attempt after it gave up on the old one: both sides keep the newest
//! (the listener closes the older one, [`super::CloseReason::Replaced`]).

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use rustls::client::UnbufferedClientConnection;
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio::time::{Instant, MissedTickBehavior, interval, sleep, timeout};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tq_core::ids::PlatformId;
use tracing::Instrument;

use super::admission::{Admission, Pool, StrangerLimits, canonical};
use super::attestation::{PeerMeasurement, REFERENCE_RECHECK_INTERVAL};
use super::refusal_log::{REFUSAL_LOG_INTERVAL, RefusalLog};
use super::registry::{Closer, Registry, Ticket};
use super::stats::{CloseReason, HandshakeRefusal, NetCounters, lock};
use super::tls::{Tls, classify_handshake_error, peer_platform_id};
use super::tls_conn::TlsConn;
use super::{NetConfig, NetEvent, conn};
use crate::backoff::Backoff;

/// How long the listener pauses after `accept` fails (out of file
/// descriptors, say) before accepting again.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Everything the network's tasks share.
pub(crate) struct Shared {
    pub(crate) local: PlatformId,
    pub(crate) config: NetConfig,
    pub(crate) tls: Tls,
    pub(crate) stats: NetCounters,
    /// Rate-limits the warnings about refused connections.
    pub(crate) refusal_log: RefusalLog,
    pub(crate) registry: Registry,
    pub(crate) events: mpsc::Sender<NetEvent>,
    pub(crate) shutdown: CancellationToken,
    pub(crate) tasks: TaskTracker,
    pub(crate) peers: Arc<RwLock<BTreeMap<PlatformId, SocketAddr>>>,
    /// Each peer's measurements from its latest handshake; only peers in
    /// the peer set.
    pub(crate) measurements: Mutex<BTreeMap<PlatformId, Vec<PeerMeasurement>>>,
    dialers: Mutex<BTreeMap<PlatformId, Dialer>>,
    next_conn_id: AtomicU64,
}

struct Dialer {
    addr: watch::Sender<SocketAddr>,
    cancel: CancellationToken,
}

impl Shared {
    pub(crate) fn new(
        local: PlatformId,
        config: NetConfig,
        tls: Tls,
        events: mpsc::Sender<NetEvent>,
        peers: Arc<RwLock<BTreeMap<PlatformId, SocketAddr>>>,
    ) -> Self {
        Self {
            local,
            config,
            tls,
            stats: NetCounters::default(),
            refusal_log: RefusalLog::new(REFUSAL_LOG_INTERVAL),
            registry: Registry::default(),
            events,
            shutdown: CancellationToken::new(),
            tasks: TaskTracker::new(),
            peers,
            measurements: Mutex::default(),
            dialers: Mutex::default(),
            next_conn_id: AtomicU64::new(0),
        }
    }

    pub(crate) fn take_slot(&self, peer: &PlatformId) -> Ticket {
        let conn_id = self.next_conn_id.fetch_add(1, Ordering::Relaxed);
        self.registry
            .take_slot(peer, conn_id, Closer::child_of(&self.shutdown))
    }

    /// How many configured peers have their address at `ip`.
    pub(crate) fn peers_at(&self, ip: IpAddr) -> usize {
        let ip = canonical(ip);
        self.peers
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .filter(|addr| canonical(addr.ip()) == ip)
            .count()
    }

    /// Records what `peer` runs, from the certificate of the handshake
    /// just completed.
    pub(crate) fn record_measurements(&self, peer: &PlatformId, conn: &rustls::CommonState) {
        let Some(leaf) = conn.peer_certificates().and_then(|chain| chain.first()) else {
            return;
        };
        let measurements = self.tls.attestation.describe(leaf);
        lock(&self.measurements).insert(peer.clone(), measurements);
    }

    /// Hands an event to the node layer, waiting for room; during shutdown
    /// only if there is room, so a node that stopped reading cannot stall it.
    pub(crate) async fn report(&self, event: NetEvent) {
        // With room (the usual case) there is nothing to wait for, and no
        // need to watch for shutdown while waiting.
        let event = match self.events.try_send(event) {
            Ok(()) => return,
            Err(mpsc::error::TrySendError::Closed(_)) => return,
            Err(mpsc::error::TrySendError::Full(event)) => event,
        };
        if self.shutdown.is_cancelled() {
            return;
        }
        tokio::select! {
            _ = self.shutdown.cancelled() => {}
            _ = self.events.send(event) => {}
        }
    }

    /// Replaces the peer set: starts, redirects and stops dialers, and
    /// closes connections to peers that left.
    pub(crate) fn set_peers(self: &Arc<Self>, mut peers: BTreeMap<PlatformId, SocketAddr>) {
        peers.remove(&self.local);
        let left: Vec<PlatformId> = {
            let mut current = self.peers.write().unwrap_or_else(|p| p.into_inner());
            let left = current
                .keys()
                .filter(|id| !peers.contains_key(*id))
                .cloned()
                .collect();
            *current = peers.clone();
            left
        };
        for peer in &left {
            self.registry.close(peer, CloseReason::Removed);
            lock(&self.measurements).remove(peer);
        }
        let mut dialers = lock(&self.dialers);
        dialers.retain(|peer, dialer| {
            let keep = peers.contains_key(peer);
            if !keep {
                dialer.cancel.cancel();
            }
            keep
        });
        for (peer, addr) in peers.into_iter().filter(|(peer, _)| *peer > self.local) {
            if let Some(dialer) = dialers.get(&peer) {
                dialer.addr.send_if_modified(|current| {
                    let changed = *current != addr;
                    *current = addr;
                    changed
                });
                continue;
            }
            let (addr_tx, addr_rx) = watch::channel(addr);
            let cancel = self.shutdown.child_token();
            let span = tracing::info_span!("dialer", peer = %peer);
            self.tasks.spawn(
                dial_loop(self.clone(), peer.clone(), addr_rx, cancel.clone()).instrument(span),
            );
            dialers.insert(
                peer,
                Dialer {
                    addr: addr_tx,
                    cancel,
                },
            );
        }
    }
}

/// Accepts connections until shutdown, each handshake in its own task with
/// a slot from `admission` (or closed at once if there is none).
pub(crate) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    let admission = Arc::new(Admission::new(StrangerLimits {
        total: shared.config.max_stranger_handshakes,
        per_source: shared.config.max_handshakes_per_source,
    }));
    let mut report_suppressed = interval(REFUSAL_LOG_INTERVAL);
    report_suppressed.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        let (tcp, remote) = tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = report_suppressed.tick() => {
                shared.refusal_log.report_suppressed();
                continue;
            }
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(error) => {
                    tracing::warn!(%error, "accept failed");
                    sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            },
        };
        shared.stats.accepted();
        let permit = match admission.admit(remote.ip(), shared.peers_at(remote.ip())) {
            Ok(permit) => permit,
            Err(reason) => {
                shared.stats.refused(reason);
                shared
                    .refusal_log
                    .refused(reason, "no handshake slot; connection dropped");
                continue;
            }
        };
        let handshake_timeout = match permit.pool() {
            Pool::Peer => shared.config.handshake_timeout,
            Pool::Stranger => shared.config.stranger_handshake_timeout,
        };
        let task_shared = shared.clone();
        let span = tracing::info_span!("inbound", %remote, peer = tracing::field::Empty);
        shared.tasks.spawn(
            async move {
                let shared = task_shared;
                let _ = tcp.set_nodelay(true);
                let Ok(server) = shared.tls.accept() else {
                    shared.stats.refused(HandshakeRefusal::Protocol);
                    return;
                };
                let handshake = timeout(handshake_timeout, TlsConn::handshake(tcp, server));
                let stream = tokio::select! {
                    _ = shared.shutdown.cancelled() => return,
                    result = handshake => match result {
                        Err(_) => Err(HandshakeRefusal::Timeout),
                        Ok(Err(error)) => Err(classify_handshake_error(&error)),
                        Ok(Ok(stream)) => Ok(stream),
                    },
                };
                drop(permit);
                let stream = match stream {
                    Ok(stream) => stream,
                    Err(reason) => {
                        shared.stats.refused(reason);
                        shared.refusal_log.refused(reason, "handshake refused");
                        return;
                    }
                };
                // The verifier checked the identity; read it back.
                let Ok(peer) = peer_platform_id(stream.common()) else {
                    shared.stats.refused(HandshakeRefusal::BadIdentity);
                    shared
                        .refusal_log
                        .refused(HandshakeRefusal::BadIdentity, "handshake refused");
                    return;
                };
                shared.stats.handshake();
                shared.record_measurements(&peer, stream.common());
                tracing::Span::current().record("peer", tracing::field::display(&peer));
                conn::run(&shared, &peer, stream).await;
            }
            .instrument(span),
        );
    }
}

/// Until shutdown, every [`REFERENCE_RECHECK_INTERVAL`], disconnects the
/// connected peers whose measurements the reference file no longer
/// admits (only when attestation is enforced).
pub(crate) async fn recheck_loop(shared: Arc<Shared>) {
    let mut tick = interval(REFERENCE_RECHECK_INTERVAL);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shared.shutdown.cancelled() => return,
            _ = tick.tick() => {}
        }
        let Some(reference) = shared.tls.attestation.enforced_reference() else {
            return;
        };
        let connected = shared.registry.established();
        let revoked: Vec<PlatformId> = {
            let measurements = lock(&shared.measurements);
            connected
                .into_iter()
                .filter(|peer| {
                    let of_peer = measurements.get(peer).map_or(&[][..], Vec::as_slice);
                    !PeerMeasurement::all_listed(of_peer, &reference)
                })
                .collect()
        };
        for peer in revoked {
            tracing::warn!(%peer, "peer's measurements no longer in the reference; disconnected");
            shared.registry.close(&peer, CloseReason::Unattested);
        }
    }
}

/// Dials `peer` until cancelled: backoff after every attempt, reset after
/// a connection that stayed up for `stable_after`, or when the address
/// changes.
async fn dial_loop(
    shared: Arc<Shared>,
    peer: PlatformId,
    mut addr: watch::Receiver<SocketAddr>,
    cancel: CancellationToken,
) {
    let mut backoff = Backoff::new(shared.config.backoff);
    let cell = shared.stats.peer(&peer);
    loop {
        let target = *addr.borrow_and_update();
        lock(&cell).dials += 1;
        let started = Instant::now();
        let span = tracing::info_span!("outbound", remote = %target);
        // Cancelling may interrupt a dial, never a connection: that one is
        // closed through its slot and must report its end.
        let dialed = tokio::select! {
            _ = cancel.cancelled() => return,
            dialed = dial_once(&shared, &peer, target).instrument(span.clone()) => dialed,
        };
        let outcome = match dialed {
            Ok(stream) => {
                shared.stats.handshake();
                shared.record_measurements(&peer, stream.common());
                Ok(conn::run(&shared, &peer, stream).instrument(span).await)
            }
            Err(reason) => Err(reason),
        };
        match outcome {
            Ok(ended) if ended.established => {
                if started.elapsed() >= shared.config.stable_after {
                    backoff.reset();
                }
            }
            Ok(ended) => {
                lock(&cell).dial_failures += 1;
                tracing::debug!(
                    reason = ended.reason.label(),
                    "connection ended before its first frame"
                );
            }
            Err(reason) => {
                lock(&cell).dial_failures += 1;
                shared.stats.refused(reason);
                tracing::debug!(reason = reason.label(), "dial failed");
            }
        }
        let delay = backoff.next_delay();
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = sleep(delay) => {}
            changed = addr.changed() => {
                if changed.is_err() {
                    return;
                }
                backoff.reset();
            }
        }
    }
}

/// Connects to `addr` from the address we listen on when that is a
/// specific one, so the peer sees the source it has configured for us and
/// admits us to our reserve (`super::admission`); from any address
/// otherwise.
async fn connect_from_listen_ip(shared: &Shared, addr: SocketAddr) -> std::io::Result<TcpStream> {
    let listen = shared.config.listen.ip();
    if listen.is_unspecified() || listen.is_ipv4() != addr.is_ipv4() {
        return TcpStream::connect(addr).await;
    }
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.bind(SocketAddr::new(listen, 0))?;
    socket.connect(addr).await
}

async fn dial_once(
    shared: &Shared,
    peer: &PlatformId,
    addr: SocketAddr,
) -> Result<TlsConn<UnbufferedClientConnection>, HandshakeRefusal> {
    let tcp = match timeout(
        shared.config.connect_timeout,
        connect_from_listen_ip(shared, addr),
    )
    .await
    {
        Err(_) => return Err(HandshakeRefusal::Timeout),
        Ok(Err(_)) => return Err(HandshakeRefusal::Io),
        Ok(Ok(tcp)) => tcp,
    };
    let _ = tcp.set_nodelay(true);
    let client = shared
        .tls
        .dial(peer.clone(), addr)
        .map_err(|_| HandshakeRefusal::BadCertificate)?;
    match timeout(
        shared.config.handshake_timeout,
        TlsConn::handshake(tcp, client),
    )
    .await
    {
        Err(_) => Err(HandshakeRefusal::Timeout),
        Ok(Err(error)) => Err(classify_handshake_error(&error)),
        Ok(Ok(stream)) => match peer_platform_id(stream.common()) {
            Ok(id) if id == *peer => Ok(stream),
            _ => Err(HandshakeRefusal::WrongPeer),
        },
    }
}
