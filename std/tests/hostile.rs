//! Hostile peers against a real listener over loopback TLS, while a good
//! peer stays connected and keeps being served: every refusal happens at
//! the handshake or drops only the offending connection, and is counted.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::time::Duration;

use common::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tq_core::ids::{PlatformId, SLED_PART_NUMBER};
use tq_std::net::identity::platform_id_uri;
use tq_std::net::{CloseReason, HandshakeRefusal, MAX_FRAME_LEN, NetEvent, TlsIdentity};

struct Rack {
    ca: Ca,
    good: Node,
    listener: Node,
    hostile: PlatformId,
}

fn higher() -> PlatformId {
    pid(SLED_PART_NUMBER, "C")
}

impl Rack {
    async fn new() -> Self {
        let ca = Ca::new("rack");
        // good < hostile < listener: both may dial the listener.
        let good_id = pid(SLED_PART_NUMBER, "A1");
        let hostile = pid(SLED_PART_NUMBER, "A2");
        let listener_id = pid(SLED_PART_NUMBER, "B");
        let mut good = start(&ca.identity(&good_id), fast_config()).await;
        let mut listener = start(&ca.identity(&listener_id), fast_config()).await;
        let mut peers = peer_map(&[&good, &listener]);
        peers.insert(hostile.clone(), "127.0.0.1:9".parse().unwrap());
        // A known sled above the listener: the listener dials it (and fails:
        // nothing listens there); it must never dial the listener.
        peers.insert(higher(), "127.0.0.1:9".parse().unwrap());
        // The listener first, so it knows the good peer before its dial.
        listener.net.set_peers(peers.clone());
        good.net.set_peers(peers);
        assert_eq!(
            next_event(&mut good.events).await,
            NetEvent::Connected(listener_id.clone())
        );
        assert_eq!(
            next_event(&mut listener.events).await,
            NetEvent::Connected(good_id.clone())
        );
        Self {
            ca,
            good,
            listener,
            hostile,
        }
    }

    fn hostile_identity(&self) -> TlsIdentity {
        self.ca.identity(&self.hostile)
    }

    /// The good peer and the listener still exchange frames both ways, on
    /// their first and only connection.
    async fn good_peer_is_served(&mut self, round: &str) {
        let (good, listener) = (self.good.id.clone(), self.listener.id.clone());
        self.good
            .net
            .send(&listener, message(RACK, round.as_bytes()))
            .unwrap();
        let event = wait_event(
            &mut self.listener.events,
            |e| matches!(e, NetEvent::Frame(from, _) if *from == good),
        )
        .await;
        assert_eq!(
            event,
            NetEvent::Frame(good.clone(), message(RACK, round.as_bytes()))
        );
        self.listener
            .net
            .send(&good, message(RACK, round.as_bytes()))
            .unwrap();
        assert_eq!(
            next_event(&mut self.good.events).await,
            NetEvent::Frame(listener.clone(), message(RACK, round.as_bytes()))
        );
        let stats = self.listener.net.stats().peer(&good);
        assert_eq!(stats.connects, 1, "{round}: {stats:?}");
        assert_eq!(stats.closes.iter().sum::<u64>(), 0, "{round}");
    }

    async fn refused(&self, reason: HandshakeRefusal, count: u64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let refused = self.listener.net.stats().refused;
            if refused[reason as usize] == count {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} not refused {count} times: {:?}",
                reason.label(),
                HandshakeRefusal::ALL.map(|r| (r.label(), refused[r as usize]))
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The listener's events hold nothing about anyone but the good peer.
    fn no_events_from_strangers(&mut self) {
        while let Ok(event) = self.listener.events.try_recv() {
            match &event {
                NetEvent::Connected(p) | NetEvent::Disconnected(p) | NetEvent::Frame(p, _) => {
                    assert_eq!(*p, self.good.id, "{event:?}");
                }
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificates_are_refused_at_the_handshake() {
    let mut rack = Rack::new().await;
    let addr = rack.listener.net.local_addr();
    let uri = platform_id_uri(&rack.hostile);

    let other_ca = Ca::new("another rack");
    let cases: Vec<(&str, Option<TlsIdentity>, HandshakeRefusal)> = vec![
        (
            "another CA",
            Some(other_ca.identity(&rack.hostile)),
            HandshakeRefusal::UnknownIssuer,
        ),
        (
            "no client certificate",
            None,
            HandshakeRefusal::NoCertificate,
        ),
        (
            "no platform id",
            {
                let (cert, key) = rack.ca.leaf(&[], None);
                Some(TlsIdentity {
                    ca_certs: vec![],
                    cert_chain: vec![cert],
                    key,
                })
            },
            HandshakeRefusal::BadIdentity,
        ),
        (
            "two platform ids",
            {
                let second = platform_id_uri(&pid(SLED_PART_NUMBER, "A3"));
                let (cert, key) = rack.ca.leaf(&[uri.clone(), second], None);
                Some(TlsIdentity {
                    ca_certs: vec![],
                    cert_chain: vec![cert],
                    key,
                })
            },
            HandshakeRefusal::BadIdentity,
        ),
        (
            "not a peer",
            Some(rack.ca.identity(&pid(SLED_PART_NUMBER, "A0"))),
            HandshakeRefusal::UnknownPeer,
        ),
        (
            "higher id dials",
            Some(rack.ca.identity(&higher())),
            HandshakeRefusal::WrongDirection,
        ),
    ];
    let mut expected = std::collections::HashMap::new();
    for (round, (name, identity, reason)) in cases.into_iter().enumerate() {
        // In TLS 1.3 the client may finish before the server has checked
        // its certificate; either way the server closes on it.
        if let Ok(mut stream) = raw_client(addr, identity.as_ref()).await {
            let _ = stream.write_all(&[0, 0, 0, 0]).await;
            assert!(closed_by_peer(&mut stream).await, "{name}");
        }
        let count = expected.entry(reason).or_insert(0);
        *count += 1;
        rack.refused(reason, *count).await;
        rack.good_peer_is_served(&format!("round {round}: {name}"))
            .await;
    }
    assert_eq!(
        rack.listener.net.stats().handshakes,
        1,
        "only the good peer's"
    );
    rack.no_events_from_strangers();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_tls_and_silent_clients_are_refused() {
    let mut rack = Rack::new().await;
    let addr = rack.listener.net.local_addr();

    let mut garbage = TcpStream::connect(addr).await.unwrap();
    garbage
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    assert!(closed_by_peer(&mut garbage).await);
    rack.refused(HandshakeRefusal::Protocol, 1).await;
    rack.good_peer_is_served("after plaintext").await;

    let mut silent = TcpStream::connect(addr).await.unwrap();
    assert!(closed_by_peer(&mut silent).await);
    rack.refused(HandshakeRefusal::Timeout, 1).await;
    rack.good_peer_is_served("after a silent TCP client").await;
    rack.no_events_from_strangers();
}

/// A hostile sled with a valid certificate, past the handshake.
async fn established_hostile(rack: &Rack) -> tokio_rustls::client::TlsStream<TcpStream> {
    raw_client(
        rack.listener.net.local_addr(),
        Some(&rack.hostile_identity()),
    )
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_frames_drop_only_their_connection() {
    let mut rack = Rack::new().await;
    let hostile = rack.hostile.clone();
    let closes = |rack: &Rack, reason| rack.listener.net.stats().peer(&hostile).closes(reason);

    // A length prefix far past the largest message.
    let mut stream = established_hostile(&rack).await;
    stream.write_all(&u32::MAX.to_be_bytes()).await.unwrap();
    assert!(closed_by_peer(&mut stream).await);
    eventually("oversize", || closes(&rack, CloseReason::Oversize) == 1).await;
    rack.good_peer_is_served("after oversize").await;

    // One byte past the largest message.
    let mut stream = established_hostile(&rack).await;
    stream
        .write_all(&(MAX_FRAME_LEN as u32 + 1).to_be_bytes())
        .await
        .unwrap();
    assert!(closed_by_peer(&mut stream).await);
    eventually("oversize by one", || {
        closes(&rack, CloseReason::Oversize) == 2
    })
    .await;

    // Garbage: a plausible length, then random bytes.
    let mut stream = established_hostile(&rack).await;
    stream
        .write_all(&[0, 0, 0, 5, 0xde, 0xad, 0xbe, 0xef, 0x00])
        .await
        .unwrap();
    assert!(closed_by_peer(&mut stream).await);
    eventually("garbage", || closes(&rack, CloseReason::BadHeader) == 1).await;
    rack.good_peer_is_served("after garbage").await;

    // A well-formed frame of another rack.
    let mut stream = established_hostile(&rack).await;
    let frame = message(OTHER_RACK, b"body");
    stream
        .write_all(&(frame.len() as u32).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&frame).await.unwrap();
    assert!(closed_by_peer(&mut stream).await);
    eventually("wrong rack", || closes(&rack, CloseReason::WrongRack) == 1).await;
    rack.good_peer_is_served("after another rack's frame").await;

    // Silence past the handshake.
    let mut stream = established_hostile(&rack).await;
    let started = tokio::time::Instant::now();
    assert!(closed_by_peer(&mut stream).await);
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "{:?}",
        started.elapsed()
    );
    eventually("silence", || closes(&rack, CloseReason::Inactivity) == 1).await;
    rack.good_peer_is_served("after silence").await;

    rack.no_events_from_strangers();
    let stats = rack.listener.net.stats().peer(&hostile);
    assert_eq!((stats.connects, stats.frames_in), (0, 0), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_message_is_dropped_by_the_node_layer() {
    let mut rack = Rack::new().await;
    let hostile = rack.hostile.clone();
    // Right header, body the core cannot decode.
    let mut stream = established_hostile(&rack).await;
    let frame = message(RACK, &[0xff; 40]);
    stream
        .write_all(&(frame.len() as u32).to_be_bytes())
        .await
        .unwrap();
    stream.write_all(&frame).await.unwrap();

    // What the node layer will do: decode with the core, drop on failure.
    assert_eq!(
        next_event(&mut rack.listener.events).await,
        NetEvent::Connected(hostile.clone())
    );
    let NetEvent::Frame(from, bytes) = next_event(&mut rack.listener.events).await else {
        panic!("expected the frame")
    };
    assert_eq!(from, hostile);
    assert!(tq_core::wire::decode_peer_msg(&bytes).is_err());
    assert!(
        rack.listener
            .net
            .disconnect(&from, CloseReason::Undecodable)
    );
    assert_eq!(
        next_event(&mut rack.listener.events).await,
        NetEvent::Disconnected(hostile.clone())
    );
    assert!(closed_by_peer(&mut stream).await);
    let stats = rack.listener.net.stats().peer(&hostile);
    assert_eq!(stats.closes(CloseReason::Undecodable), 1);
    assert_eq!(stats.frames_in, 1);
    rack.good_peer_is_served("after an undecodable message")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialer_refuses_a_listener_that_is_not_the_peer_it_dialed() {
    let ca = Ca::new("rack");
    let (a, b, c) = (pid("p", "a"), pid("p", "b"), pid("p", "c"));
    let na = start(&ca.identity(&a), fast_config()).await;
    // `c` (valid rack certificate) sits where `a` expects `b`.
    let impostor = start(&ca.identity(&c), fast_config()).await;
    na.net
        .set_peers([(b.clone(), impostor.net.local_addr())].into());
    eventually("wrong peer", || {
        na.net.stats().refused(HandshakeRefusal::WrongPeer) >= 2
    })
    .await;

    // A listener under another CA, claiming to be `b`.
    let other = Ca::new("another rack");
    let foreign = start(&other.identity(&b), fast_config()).await;
    na.net
        .set_peers([(b.clone(), foreign.net.local_addr())].into());
    eventually("unknown issuer", || {
        na.net.stats().refused(HandshakeRefusal::UnknownIssuer) >= 2
    })
    .await;
    assert!(na.net.connected().is_empty());
    assert_eq!(
        impostor.net.stats().handshakes + foreign.net.stats().handshakes,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_1_2_is_refused_by_a_real_openssl_client() {
    if !tq_test_fixtures::tools::available("openssl", &["version"], "apt-get install openssl") {
        return;
    }
    let mut rack = Rack::new().await;
    let addr = rack.listener.net.local_addr();
    let output = tokio::process::Command::new("openssl")
        .args(["s_client", "-tls1_2", "-connect", &addr.to_string()])
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .expect("the openssl CLI runs");
    assert!(!output.status.success());
    rack.refused(HandshakeRefusal::Protocol, 1).await;
    rack.good_peer_is_served("after TLS 1.2").await;
}
