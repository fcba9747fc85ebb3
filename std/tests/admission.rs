//! Admission to the listener: strangers flooding it cannot keep a peer
//! out, no session is resumed past the accept policy, and certificate
//! validity does not depend on the sled's clock.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use common::flood::{Flood, REOPEN_PAUSE};
use common::*;
use rustls::HandshakeKind;
use tokio::io::AsyncReadExt;
use tq_std::net::identity::platform_id_uri;
use tq_std::net::{HandshakeRefusal, NetConfig, NetEvent, TlsIdentity};

fn loopback(last: u8) -> IpAddr {
    IpAddr::from([127, 0, 0, last])
}

fn listening_on(ip: IpAddr) -> NetConfig {
    let mut config = fast_config();
    config.listen = SocketAddr::new(ip, 0);
    config
}

/// Hundreds of silent connections from three stranger addresses, re-opened
/// as the listener closes them, hold every stranger slot; a peer listening
/// on (and so dialing from) 127.0.0.5 still connects, through its reserve.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_strangers_does_not_keep_a_peer_out() {
    let ca = Ca::new("rack");
    let (peer_id, listener_id) = (pid("p", "a"), pid("p", "b"));
    let mut config = listening_on(loopback(1));
    // Smaller than the defaults, so three sources overflow the pool too.
    config.max_stranger_handshakes = 8;
    config.max_handshakes_per_source = 4;
    let mut listener = start(&ca.identity(&listener_id), config).await;
    let mut peer = start(&ca.identity(&peer_id), listening_on(loopback(5))).await;
    let peers = peer_map(&[&peer, &listener]);
    listener.net.set_peers(peers.clone());

    let sources = [loopback(2), loopback(3), loopback(4)];
    let flood = Flood::start(&[listener.net.local_addr()], &sources, 70, REOPEN_PAUSE);
    // The flood holds the pool and is being turned away.
    eventually("the flood fills the stranger pool", || {
        let stats = listener.net.stats();
        stats.refused(HandshakeRefusal::SourceBusy) > 100
            && stats.refused(HandshakeRefusal::TooManyHandshakes) > 0
    })
    .await;

    let started = tokio::time::Instant::now();
    peer.net.set_peers(peers);
    assert_eq!(
        next_event(&mut peer.events).await,
        NetEvent::Connected(listener_id.clone())
    );
    assert_eq!(
        next_event(&mut listener.events).await,
        NetEvent::Connected(peer_id.clone())
    );
    let took = started.elapsed();
    // Strangers kept being refused while the peer connected...
    let refused_before = listener.net.stats().refused(HandshakeRefusal::SourceBusy);
    eventually("the flood goes on", || {
        listener.net.stats().refused(HandshakeRefusal::SourceBusy) > refused_before
    })
    .await;
    // ...and timed out when they held a slot.
    eventually("held strangers time out", || {
        listener.net.stats().refused(HandshakeRefusal::Timeout) > 0
    })
    .await;
    let opened = flood.stop().await;
    eprintln!("peer connected in {took:?} under a flood of {opened} connections");
    let stats = listener.net.stats();
    assert_eq!(stats.handshakes, 1, "only the peer's");
    assert_eq!(
        peer.net.stats().peer(&listener_id).dial_failures,
        0,
        "the first dial got through"
    );
}

/// A client that could resume (rustls's session cache on, one
/// configuration for every connection) gets a full handshake every time,
/// so a peer removed from the peer set is refused again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_session_is_resumed() {
    let ca = Ca::new("rack");
    let (client_id, listener_id) = (pid("p", "a"), pid("p", "b"));
    let listener = start(&ca.identity(&listener_id), fast_config()).await;
    let addr = listener.net.local_addr();
    listener.net.set_peers(
        [
            (client_id.clone(), "127.0.0.1:9".parse().unwrap()),
            (listener_id.clone(), addr),
        ]
        .into(),
    );
    let config = raw_client_config(Some(&ca.identity(&client_id)));

    for round in 0..2 {
        let mut stream = raw_connect(addr, config.clone()).await.unwrap();
        assert_eq!(
            stream.get_ref().1.handshake_kind(),
            Some(HandshakeKind::Full),
            "connection {round}"
        );
        // Read the listener's first keep-alive: any ticket it sent after the
        // handshake has been taken in by then.
        let mut prefix = [0u8; 4];
        stream.read_exact(&mut prefix).await.unwrap();
        assert_eq!(prefix, [0; 4]);
    }
    eventually("two handshakes", || listener.net.stats().handshakes == 2).await;

    // Removed from the peer set: refused, whatever it kept from before.
    listener.net.set_peers([(listener_id.clone(), addr)].into());
    if let Ok(mut stream) = raw_connect(addr, config).await {
        assert!(closed_by_peer(&mut stream).await);
    }
    eventually("the removed peer is refused", || {
        listener.net.stats().refused(HandshakeRefusal::UnknownPeer) == 1
    })
    .await;
    assert_eq!(listener.net.stats().handshakes, 2);
}

fn identity_valid(ca: &Ca, id: &tq_core::ids::PlatformId, from: i32, to: i32) -> TlsIdentity {
    let (cert, key) = ca.leaf(
        &[platform_id_uri(id)],
        Some((
            rcgen::date_time_ymd(from, 1, 1),
            rcgen::date_time_ymd(to, 1, 1),
        )),
    );
    TlsIdentity {
        ca_certs: vec![ca.der()],
        cert_chain: vec![cert],
        key,
    }
}

/// Certificates are judged as of their issuance, not the sled's clock
/// (`net::validity`): a dialer whose certificate expired by the wall clock
/// and a listener whose certificate is not valid yet by it connect both
/// ways.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_outside_their_validity_by_the_wall_clock_connect() {
    let ca = Ca::new("rack");
    let (dialer_id, listener_id) = (pid("p", "a"), pid("p", "b"));
    let mut dialer = start(&identity_valid(&ca, &dialer_id, 2000, 2001), fast_config()).await;
    let mut listener = start(
        &identity_valid(&ca, &listener_id, 2090, 2091),
        fast_config(),
    )
    .await;
    let peers = peer_map(&[&dialer, &listener]);
    listener.net.set_peers(peers.clone());
    dialer.net.set_peers(peers);
    assert_eq!(
        next_event(&mut dialer.events).await,
        NetEvent::Connected(listener_id)
    );
    assert_eq!(
        next_event(&mut listener.events).await,
        NetEvent::Connected(dialer_id)
    );
    for node in [&dialer, &listener] {
        let stats = node.net.stats();
        assert_eq!(stats.refused.iter().sum::<u64>(), 0, "{stats:?}");
    }
}

/// Strangers get the shorter handshake timeout; a peer's address the
/// longer one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_stranger_is_dropped_sooner_than_a_silent_peer_address() {
    let ca = Ca::new("rack");
    let mut config = listening_on(loopback(1));
    config.stranger_handshake_timeout = Duration::from_millis(200);
    config.handshake_timeout = Duration::from_secs(2);
    let listener = start(&ca.identity(&pid("p", "b")), config).await;
    let addr = listener.net.local_addr();
    listener
        .net
        .set_peers([(pid("p", "a"), "127.0.0.6:9".parse().unwrap())].into());

    let held_for = |source: IpAddr| async move {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind(SocketAddr::new(source, 0)).unwrap();
        let mut stream = socket.connect(addr).await.unwrap();
        let started = tokio::time::Instant::now();
        assert!(closed_by_peer(&mut stream).await);
        started.elapsed()
    };
    let stranger = held_for(loopback(7)).await;
    let peer_address = held_for(loopback(6)).await;
    assert!(stranger < Duration::from_secs(1), "{stranger:?}");
    assert!(peer_address >= Duration::from_secs(2), "{peer_address:?}");
    assert_eq!(listener.net.stats().refused(HandshakeRefusal::Timeout), 2);
}
