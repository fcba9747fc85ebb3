//! The peer network between real sleds over loopback TLS: connection,
//! the dial rule, frames, replacement of a duplicate, run-time peer
//! changes, reconnection, send errors, keep-alives and the two timeouts
//! (silence, a write that does not end).
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
use tq_core::ids::SLED_PART_NUMBER;
use tq_std::net::{CloseReason, HandshakeRefusal, MAX_FRAME_LEN, NetConfig, NetEvent, SendError};

/// Sleds `a` and `b` of [`ids`] started with `config`, each given the
/// other as its peer (the listener `b` first), once both saw the
/// connection.
async fn connected_pair(config: NetConfig) -> (Node, Node) {
    let ca = Ca::new("rack");
    let [a, b, _] = ids();
    let mut na = start(&ca.identity(&a), config.clone()).await;
    let mut nb = start(&ca.identity(&b), config).await;
    let peers = peer_map(&[&na, &nb]);
    nb.net.set_peers(peers.clone());
    na.net.set_peers(peers);
    assert_eq!(next_event(&mut na.events).await, NetEvent::Connected(b));
    assert_eq!(next_event(&mut nb.events).await, NetEvent::Connected(a));
    (na, nb)
}

fn ids() -> [tq_core::ids::PlatformId; 3] {
    // Ordered a < b < c, with separators and quotes in the fields.
    [
        pid(SLED_PART_NUMBER, "A:1"),
        pid(SLED_PART_NUMBER, "B\"2"),
        pid("913-0000020", "C\\3"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_sleds_connect_once_per_pair_and_exchange_frames() {
    let ca = Ca::new("rack");
    let [a, b, c] = ids();
    let mut nodes = Vec::new();
    for id in [&a, &b, &c] {
        nodes.push(start(&ca.identity(id), fast_config()).await);
    }
    let peers = peer_map(&nodes.iter().collect::<Vec<_>>());
    // Highest first, so every listener knows its dialers before they dial
    // (a dialer unknown to its listener is refused and retries).
    for node in nodes.iter().rev() {
        node.net.set_peers(peers.clone());
    }
    for node in &mut nodes {
        let mut seen = Vec::new();
        while seen.len() < 2 {
            match next_event(&mut node.events).await {
                NetEvent::Connected(peer) => seen.push(peer),
                other => panic!("unexpected {other:?}"),
            }
        }
        seen.sort();
        let mut others: Vec<_> = [&a, &b, &c]
            .into_iter()
            .filter(|id| **id != node.id)
            .cloned()
            .collect();
        others.sort();
        assert_eq!(seen, others);
    }

    // Every sled sends one frame to every other.
    for from in 0..3 {
        for to in 0..3 {
            if from != to {
                let body = format!("{from}->{to}");
                let to_id = nodes[to].id.clone();
                nodes[from]
                    .net
                    .send(&to_id, message(RACK, body.as_bytes()))
                    .unwrap();
            }
        }
    }
    for to in 0..3 {
        let mut got = Vec::new();
        while got.len() < 2 {
            if let NetEvent::Frame(from, frame) = next_event(&mut nodes[to].events).await {
                assert_eq!(&frame[..17], &message(RACK, b"")[..]);
                got.push((from, String::from_utf8(frame[17..].to_vec()).unwrap()));
            }
        }
        got.sort();
        for (from, body) in got {
            let index = nodes.iter().position(|n| n.id == from).unwrap();
            assert_eq!(body, format!("{index}->{to}"));
        }
    }

    // A sender counts a frame once its write returned, which may be after
    // the receiver got it.
    eventually("frames counted as sent", || {
        nodes.iter().all(|n| {
            let s = n.net.stats();
            s.peers.len() == 2 && s.peers.values().all(|p| p.frames_out == 1)
        })
    })
    .await;
    // The lower id dialed; the higher never did; one connection each.
    let stats: Vec<_> = nodes.iter().map(|n| n.net.stats()).collect();
    assert!(stats[0].peer(&b).dials >= 1 && stats[0].peer(&c).dials >= 1);
    assert!(stats[1].peer(&c).dials >= 1);
    assert_eq!(stats[1].peer(&a).dials, 0);
    assert_eq!(stats[2].peer(&a).dials + stats[2].peer(&b).dials, 0);
    for (i, s) in stats.iter().enumerate() {
        assert_eq!(s.handshakes, 2, "sled {i}");
        assert_eq!(s.refused.iter().sum::<u64>(), 0, "sled {i}: {s:?}");
        for (peer, p) in &s.peers {
            assert_eq!(p.connects, 1, "sled {i} to {peer}");
            assert_eq!((p.frames_in, p.frames_out), (1, 1), "sled {i} to {peer}");
            assert!(p.bytes_in >= (4 + 17 + 4) as u64 && p.pings_in >= 1);
        }
    }
    for node in &nodes {
        assert_eq!(node.net.connected().len(), 2);
    }
    for node in nodes {
        node.net.shutdown().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_connection_from_the_dialer_replaces_the_old_one_on_both_sides() {
    let ca = Ca::new("rack");
    let [a, b, _] = ids();
    let a_identity = ca.identity(&a);
    let mut na = start(&a_identity, fast_config()).await;
    let mut nb = start(&ca.identity(&b), fast_config()).await;
    let peers = peer_map(&[&na, &nb]);
    nb.net.set_peers(peers.clone()); // the listener first
    na.net.set_peers(peers);
    assert_eq!(
        next_event(&mut na.events).await,
        NetEvent::Connected(b.clone())
    );
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Connected(a.clone())
    );

    // A second connection from `a` (as after `a` gave up on the first):
    // `b` keeps the newest, in order: the old one's end, then the new one.
    let mut second = raw_client(nb.net.local_addr(), Some(&a_identity))
        .await
        .unwrap();
    use tokio::io::AsyncWriteExt;
    second.write_all(&[0, 0, 0, 0]).await.unwrap(); // a keep-alive
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Disconnected(a.clone())
    );
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Connected(a.clone())
    );
    // (`a` may already be redialing, which replaces this one too.)
    let stats = nb.net.stats().peer(&a);
    assert!(stats.closes(CloseReason::Replaced) >= 1, "{stats:?}");

    // `a` saw its connection closed and redials; that newer one replaces
    // the raw one, and both ends settle on it.
    assert_eq!(
        next_event(&mut na.events).await,
        NetEvent::Disconnected(b.clone())
    );
    assert_eq!(
        next_event(&mut na.events).await,
        NetEvent::Connected(b.clone())
    );
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Disconnected(a.clone())
    );
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Connected(a.clone())
    );
    assert!(closed_by_peer(&mut second).await);
    na.net.send(&b, message(RACK, b"after")).unwrap();
    let NetEvent::Frame(from, frame) = next_event(&mut nb.events).await else {
        panic!("expected a frame")
    };
    assert_eq!((from, &frame[17..]), (a.clone(), &b"after"[..]));
    assert_eq!(na.net.connected(), vec![b.clone()]);
    assert_eq!(nb.net.connected(), vec![a.clone()]);
    let stats = nb.net.stats().peer(&a);
    assert_eq!(
        (stats.reconnects, stats.closes(CloseReason::Replaced)),
        (2, 2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_are_added_moved_and_removed_at_run_time() {
    let ca = Ca::new("rack");
    let [a, b, _] = ids();
    let mut na = start(&ca.identity(&a), fast_config()).await;
    let b_identity = ca.identity(&b);
    let mut nb = start(&b_identity, fast_config()).await;
    nb.net.set_peers(peer_map(&[&na]));
    // `a` does not know `b` yet: nothing connects.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(na.net.connected().is_empty() && nb.net.connected().is_empty());
    assert_eq!(
        na.net.send(&b, message(RACK, b"x")),
        Err(SendError::NotConnected)
    );

    na.net.set_peers(peer_map(&[&nb]));
    assert_eq!(
        next_event(&mut na.events).await,
        NetEvent::Connected(b.clone())
    );
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Connected(a.clone())
    );

    // `b` moves to another port: `a` follows the new address.
    nb.net.shutdown().await;
    assert_eq!(
        next_event(&mut na.events).await,
        NetEvent::Disconnected(b.clone())
    );
    let mut nb = start(&b_identity, fast_config()).await;
    nb.net.set_peers(peer_map(&[&na]));
    na.net.set_peers(peer_map(&[&nb]));
    assert_eq!(
        next_event(&mut na.events).await,
        NetEvent::Connected(b.clone())
    );
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Connected(a.clone())
    );

    // `b` drops `a` from its peers: the connection closes, and `a`'s
    // redials are refused while `b` does not know it.
    nb.net.set_peers(Default::default());
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Disconnected(a.clone())
    );
    assert_eq!(
        next_event(&mut na.events).await,
        NetEvent::Disconnected(b.clone())
    );
    eventually("a refused as unknown", || {
        nb.net.stats().refused(HandshakeRefusal::UnknownPeer) >= 1
    })
    .await;
    assert!(nb.net.connected().is_empty());
    assert_eq!(nb.net.stats().peer(&a).closes(CloseReason::Removed), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_a_dialed_peer_closes_its_connection_and_stops_dialing() {
    let [a, b, _] = ids();
    let (mut na, mut nb) = connected_pair(fast_config()).await;

    na.net.set_peers(Default::default());
    assert_eq!(
        next_event(&mut na.events).await,
        NetEvent::Disconnected(b.clone())
    );
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Disconnected(a.clone())
    );
    assert_eq!(na.net.stats().peer(&b).closes(CloseReason::Removed), 1);
    let dials = na.net.stats().peer(&b).dials;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        na.net.stats().peer(&b).dials,
        dials,
        "still dialing a removed peer"
    );
    assert!(na.net.connected().is_empty() && nb.net.connected().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dialer_backs_off_and_reconnects_when_its_peer_returns() {
    let ca = Ca::new("rack");
    let [a, b, _] = ids();
    let mut na = start(&ca.identity(&a), fast_config()).await;
    let b_identity = ca.identity(&b);
    let nb = start(&b_identity, fast_config()).await;
    let b_addr = nb.net.local_addr();
    nb.net.set_peers(peer_map(&[&na]));
    na.net.set_peers(peer_map(&[&nb]));
    assert_eq!(
        next_event(&mut na.events).await,
        NetEvent::Connected(b.clone())
    );
    nb.net.shutdown().await;
    assert_eq!(
        next_event(&mut na.events).await,
        NetEvent::Disconnected(b.clone())
    );

    // With `b` gone, dials fail and back off (20 ms doubling to 200 ms,
    // half of it jitter): over one second at most 1 + 1000/10 tries were
    // possible at the smallest delay; backoff allows far fewer.
    let before = na.net.stats().peer(&b).dials;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let tries = na.net.stats().peer(&b).dials - before;
    assert!((2..=15).contains(&tries), "{tries} dials in one second");

    let mut config = fast_config();
    config.listen = b_addr;
    let mut nb = start(&b_identity, config).await;
    nb.net.set_peers(peer_map(&[&na]));
    assert_eq!(
        next_event(&mut na.events).await,
        NetEvent::Connected(b.clone())
    );
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Connected(a.clone())
    );
    let stats = na.net.stats().peer(&b);
    assert!(
        stats.dial_failures >= 2 && stats.reconnects == 1,
        "{stats:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_are_refused_with_a_typed_error_never_blocking() {
    let ca = Ca::new("rack");
    let [a, b, _] = ids();
    let a_identity = ca.identity(&a);
    let mut config = fast_config();
    config.write_queue_len = 4;
    let mut nb = start(&ca.identity(&b), config).await;
    nb.net
        .set_peers([(a.clone(), "127.0.0.1:9".parse().unwrap())].into());

    assert_eq!(
        nb.net.send(&a, message(RACK, b"x")),
        Err(SendError::NotConnected)
    );
    assert_eq!(
        nb.net.send(&a, tq_std::net::Frame::default()),
        Err(SendError::BadLength(0))
    );
    let huge = tq_std::net::Frame::from(vec![1; MAX_FRAME_LEN + 1]);
    assert_eq!(
        nb.net.send(&a, huge),
        Err(SendError::BadLength(MAX_FRAME_LEN + 1))
    );

    // A peer that connects, says one keep-alive and then never reads.
    let mut lazy = raw_client(nb.net.local_addr(), Some(&a_identity))
        .await
        .unwrap();
    use tokio::io::AsyncWriteExt;
    lazy.write_all(&[0, 0, 0, 0]).await.unwrap();
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Connected(a.clone())
    );
    let big = message(RACK, &vec![7; MAX_FRAME_LEN - 17]);
    let mut busy = 0;
    for _ in 0..5000 {
        match nb.net.send(&a, big.clone()) {
            Ok(()) => {}
            Err(SendError::Busy) => busy += 1,
            Err(other) => panic!("{other:?}"),
        }
        if busy > 10 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(busy > 10, "the queue never filled");
    assert_eq!(nb.net.stats().peer(&a).queue_full, busy);
    // The stuck peer is dropped (write timeout or inactivity).
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Disconnected(a.clone())
    );
    let closes = nb.net.stats().peer(&a);
    assert_eq!(
        closes.closes(CloseReason::WriteTimeout) + closes.closes(CloseReason::Inactivity),
        1
    );
    drop(lazy);
}

/// A raw TLS peer with `a`'s certificate, connected to `nb` (which knows
/// `a` at an address nobody listens on, so only this connection exists),
/// established by one keep-alive.
async fn raw_peer_of(
    nb: &mut Node,
    a: &tq_core::ids::PlatformId,
    a_identity: &tq_std::net::TlsIdentity,
) -> tokio_rustls::client::TlsStream<tokio::net::TcpStream> {
    use tokio::io::AsyncWriteExt;
    nb.net
        .set_peers([(a.clone(), "127.0.0.1:9".parse().unwrap())].into());
    let mut raw = raw_client(nb.net.local_addr(), Some(a_identity))
        .await
        .unwrap();
    raw.write_all(&[0, 0, 0, 0]).await.unwrap();
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Connected(a.clone())
    );
    raw
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_peer_that_talks_but_never_reads_is_cut_off_by_the_write_timeout() {
    use tokio::io::AsyncWriteExt;
    let ca = Ca::new("rack");
    let [a, b, _] = ids();
    let a_identity = ca.identity(&a);
    let mut nb = start(&ca.identity(&b), fast_config()).await;
    let raw = raw_peer_of(&mut nb, &a, &a_identity).await;
    // Keep-alives every 100 ms (the peer is never silent), never a read.
    let (_unread, mut writer) = tokio::io::split(raw);
    let talking = tokio::spawn(async move {
        while writer.write_all(&[0, 0, 0, 0]).await.is_ok() {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    // Enough to fill both socket buffers, so that a write blocks.
    let big = message(RACK, &vec![7; MAX_FRAME_LEN - 17]);
    let sender = async {
        loop {
            match nb.net.send(&a, big.clone()) {
                Ok(()) | Err(SendError::Busy) => {}
                Err(SendError::NotConnected) => return,
                Err(other) => panic!("{other:?}"),
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    };
    let started = tokio::time::Instant::now();
    tokio::time::timeout(WAIT, sender)
        .await
        .expect("the connection to a peer that never reads was never cut off");
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Disconnected(a.clone())
    );
    let stats = nb.net.stats().peer(&a);
    assert_eq!(
        (
            stats.closes(CloseReason::WriteTimeout),
            stats.closes(CloseReason::Inactivity)
        ),
        (1, 0),
        "{stats:?} after {:?}",
        started.elapsed()
    );
    talking.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silence_is_counted_from_the_last_frame_heard() {
    use tokio::io::AsyncWriteExt;
    let ca = Ca::new("rack");
    let [a, b, _] = ids();
    let a_identity = ca.identity(&a);
    let config = fast_config();
    let inactivity = config.inactivity_timeout;
    let mut nb = start(&ca.identity(&b), config).await;
    let mut raw = raw_peer_of(&mut nb, &a, &a_identity).await;
    // Two and a half timeouts of keep-alives: the connection stays.
    let talk_until = tokio::time::Instant::now() + inactivity * 5 / 2;
    while tokio::time::Instant::now() < talk_until {
        raw.write_all(&[0, 0, 0, 0]).await.unwrap();
        tokio::time::sleep(inactivity / 5).await;
    }
    raw.write_all(&[0, 0, 0, 0]).await.unwrap();
    let last_word = tokio::time::Instant::now();
    assert!(
        nb.events.try_recv().is_err(),
        "cut off while talking: {:?}",
        nb.net.stats().peer(&a)
    );
    assert_eq!(nb.net.connected(), vec![a.clone()]);
    // Then silence: cut off one timeout after the last keep-alive.
    assert!(closed_by_peer(&mut raw).await, "a silent peer was kept");
    let silent_for = last_word.elapsed();
    assert!(
        silent_for >= inactivity * 4 / 5 && silent_for < inactivity * 3,
        "cut off {silent_for:?} after its last keep-alive"
    );
    assert_eq!(
        next_event(&mut nb.events).await,
        NetEvent::Disconnected(a.clone())
    );
    assert_eq!(nb.net.stats().peer(&a).closes(CloseReason::Inactivity), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_that_sends_frames_sends_no_keep_alives() {
    let [a, b, _] = ids();
    let config = fast_config();
    let interval = config.keepalive_interval;
    let (na, mut nb) = connected_pair(config).await;
    let pings = |n: &Node, peer| n.net.stats().peer(peer).pings_out;
    let (a_before, b_before) = (pings(&na, &b), pings(&nb, &a));
    // `a` sends a frame every 0.4 keep-alive intervals, for ten
    // intervals; `b` sends nothing.
    for i in 0..25 {
        na.net
            .send(&b, message(RACK, format!("{i}").as_bytes()))
            .unwrap();
        tokio::time::sleep(interval * 2 / 5).await;
    }
    let (a_sent, b_sent) = (pings(&na, &b) - a_before, pings(&nb, &a) - b_before);
    // A frame keeps the peer's silence away as a keep-alive would; `b`
    // has only keep-alives to send (one an interval).
    assert!(a_sent <= 2, "{a_sent} keep-alives between frames");
    assert!(b_sent >= 5, "only {b_sent} keep-alives from the idle side");
    let mut frames = 0;
    while let Ok(event) = nb.events.try_recv() {
        assert!(matches!(event, NetEvent::Frame(..)), "{event:?}");
        frames += 1;
    }
    assert!(frames >= 24, "{frames}");
    assert_eq!(na.net.connected(), vec![b.clone()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_frames_of_every_size_arrives_whole_and_in_order() {
    let [a, b, _] = ids();
    let config = fast_config();
    let burst = config.write_queue_len;
    let (na, mut nb) = connected_pair(config).await;
    // Queued at once, so the connection writes them as batches that are
    // staged together (small ones) and split (the largest).
    let body = |i: usize| -> Vec<u8> {
        let len = match i % 4 {
            0 => 1,
            1 => 300,
            2 => MAX_FRAME_LEN - 17,
            _ => 5000,
        };
        (0..len).map(|j| (i * 31 + j) as u8).collect()
    };
    for i in 0..burst {
        na.net.send(&b, message(RACK, &body(i))).unwrap();
    }
    for i in 0..burst {
        let NetEvent::Frame(from, frame) = next_event(&mut nb.events).await else {
            panic!("expected frame {i}")
        };
        assert_eq!(from, a);
        assert!(frame[17..] == body(i)[..], "frame {i}");
    }
    let stats = nb.net.stats().peer(&a);
    assert_eq!(stats.frames_in, burst as u64);
}
