//! Whole racks of node tasks over loopback TLS, driven by the Nexus driver
//! (`tq-driver`, over `tq-nexus`'s state machine) through their handles:
//! an LRTQ rack upgrades, grows through proxied commits and shrinks, and
//! every member agrees on every epoch's secret; a sled killed in the
//! middle of a prepare restarts from its ledger and catches up; a
//! coordinator killed mid-reconfiguration is abandoned and the next one
//! commits; a Nexus driver restarted mid-reconfiguration resumes from its
//! state file; a sled in no configuration gets no share.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::time::Duration;

use common::nexus::Driver;
use common::rack::Rack;
use common::{CaIdentity, Unwritable};
use tq_core::ids::Epoch;
use tq_nexus::{Origin, Phase};
use tq_std::secrets::LoadedSecret;

const LIMIT: Duration = Duration::from_secs(60);
const SECRET_WAIT: Duration = Duration::from_secs(20);

/// Every sled in `members` loads the secret of each of `epochs` (the last
/// is the latest commit); all agree, and differ between epochs. Returns
/// sled `members[0]`'s.
async fn every_member_loads_every_secret(
    rack: &Rack,
    members: &[usize],
    epochs: &[u64],
) -> Vec<LoadedSecret> {
    let latest = Epoch(*epochs.last().unwrap());
    let mut all: Vec<Vec<LoadedSecret>> = Vec::new();
    for &i in members {
        let handle = rack.handle(i);
        let newest = rack
            .load_latest_secret(i, SECRET_WAIT)
            .await
            .unwrap_or_else(|e| panic!("sled {i}: {e}"))
            .unwrap();
        assert_eq!(newest.epoch(), latest, "sled {i}");
        let mut secrets = Vec::new();
        for &epoch in epochs {
            let secret = handle
                .load_rack_secret(Epoch(epoch))
                .await
                .unwrap()
                .unwrap_or_else(|e| panic!("sled {i}, epoch {epoch}: {e}"))
                .unwrap_or_else(|| panic!("sled {i}, epoch {epoch}: not loaded"));
            assert_eq!(secret.epoch(), Epoch(epoch));
            secrets.push(secret);
        }
        all.push(secrets);
    }
    let first = all.remove(0);
    for (n, secrets) in all.iter().enumerate() {
        for (a, b) in first.iter().zip(secrets) {
            assert!(
                a.same_secret(b),
                "sled {} disagrees on epoch {}",
                members[n + 1],
                a.epoch()
            );
        }
    }
    for (i, a) in first.iter().enumerate() {
        for b in &first[i + 1..] {
            assert!(
                !a.same_secret(b),
                "epochs {} and {} share a secret",
                a.epoch(),
                b.epoch()
            );
        }
    }
    // Disk keys agree too, and a caller needs nothing but the loaded secret.
    let key = first[0].derive_disk_key(b"u2-disk:1").unwrap();
    assert_eq!(key.epoch(), Epoch(1));
    first
}

/// A fresh rack of `sleds` sleds, started and connected, that committed
/// epoch 1 with every sled a member (threshold `k`, coordinator sled 0).
async fn fresh_rack_at_epoch_1(sleds: usize, k: u8, seed: u64) -> (Rack, Driver) {
    let mut rack = Rack::new(0, sleds, seed);
    rack.start_all().await;
    rack.wait_connected().await;
    let all: Vec<usize> = (0..sleds).collect();
    let mut nexus = Driver::new(Origin::Fresh, &rack.ids()).await;
    assert_eq!(nexus.start(&rack, &all, k, 0).await, Epoch(1));
    nexus.settle(&rack, LIMIT).await;
    (rack, nexus)
}

async fn committed_everywhere(rack: &Rack, members: &[usize], epoch: Epoch) {
    for &i in members {
        let mut watch = rack.handle(i).watch_committed();
        tokio::time::timeout(LIMIT, watch.wait_for(|e| *e >= Some(epoch)))
            .await
            .unwrap_or_else(|_| panic!("sled {i} never saw epoch {epoch} commit"))
            .unwrap();
    }
}

/// A committed sled whose peers are all gone waits for shares that do not
/// come, until its deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn waiting_for_shares_ends_at_the_deadline() {
    let (mut rack, _nexus) = fresh_rack_at_epoch_1(3, 2, 41).await;
    committed_everywhere(&rack, &[0, 1, 2], Epoch(1)).await;
    rack.crash(1).await;
    rack.crash(2).await;
    let handle = rack.handle(0).clone();
    handle.clear_secrets().await.unwrap();
    let started = std::time::Instant::now();
    let answer = rack.load_latest_secret(0, Duration::from_millis(300)).await;
    assert!(
        matches!(answer, Err(tq_std::handle::Unavailable::DeadlinePassed)),
        "{answer:?}"
    );
    assert!(started.elapsed() >= Duration::from_millis(300));
    rack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lrtq_rack_upgrades_grows_through_proxies_shrinks_and_agrees_on_every_secret() {
    // Eight sleds from an LRTQ rack, two new ones.
    let mut rack = Rack::new(8, 2, 21);
    rack.start_all().await;
    rack.wait_connected().await;
    let ids = rack.ids();
    let mut nexus = Driver::new(Origin::Lrtq, &ids[..8]).await;

    let lrtq: Vec<usize> = (0..8).collect();
    assert_eq!(nexus.start(&rack, &lrtq, 5, 0).await, Epoch(2));
    nexus.settle(&rack, LIMIT).await;
    assert_eq!(nexus.nexus().stats().upgrades, 1);
    committed_everywhere(&rack, &lrtq, Epoch(2)).await;
    let secrets = every_member_loads_every_secret(&rack, &lrtq, &[1, 2]).await;
    let lrtq_secret = rack.lrtq_secret.as_ref().unwrap();
    assert!(secrets[0].is(lrtq_secret), "epoch 1 is the LRTQ secret");

    // The two new sleds have no control-plane address: the driver reaches
    // them only through a member's proxy (the first member it reaches,
    // sled 0).
    nexus.proxied.extend([ids[8].clone(), ids[9].clone()]);
    let grown: Vec<usize> = (0..10).collect();
    assert_eq!(nexus.start(&rack, &grown, 6, 1).await, Epoch(3));
    nexus.settle(&rack, LIMIT).await;
    committed_everywhere(&rack, &grown, Epoch(3)).await;
    let through_driver = nexus.driver.stats().proxied;
    assert!(
        through_driver >= 2,
        "commits went through the proxy: {through_driver}"
    );
    let proxied = rack.handle(0).metrics().await.unwrap().shim.proxied[0];
    assert!(proxied >= 2, "sled 0 passed them on: {proxied}");
    let secrets = every_member_loads_every_secret(&rack, &grown, &[1, 2, 3]).await;
    assert!(secrets[0].is(lrtq_secret));

    // Sled 4 leaves.
    let shrunk: Vec<usize> = (0..10).filter(|&i| i != 4).collect();
    assert_eq!(nexus.start(&rack, &shrunk, 5, 2).await, Epoch(4));
    nexus.settle(&rack, LIMIT).await;
    committed_everywhere(&rack, &shrunk, Epoch(4)).await;
    let secrets = every_member_loads_every_secret(&rack, &shrunk, &[1, 2, 3, 4]).await;
    assert!(secrets[0].is(lrtq_secret));
    for i in 0..10 {
        let report = rack.handle(i).status().await.unwrap();
        assert!(
            report.node.alarms.is_empty(),
            "sled {i}: {:?}",
            report.node.alarms
        );
    }
    rack.shutdown().await;
}

/// Sled 4 gets the prepare of epoch 2 while its drives take no write: it
/// cannot store (so does not ack), and its task is killed right there.
/// Nexus commits without it; restarted from its ledger (epoch 1) with its
/// drives back, it is told of the commit, computes its share from the
/// others, and agrees on every secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_killed_in_the_middle_of_a_prepare_restarts_from_its_ledger_and_catches_up() {
    let (mut rack, mut nexus) = fresh_rack_at_epoch_1(5, 3, 22).await;
    let all: Vec<usize> = (0..5).collect();

    let guards = [
        Unwritable::new(&rack.sleds[4].dirs[0]),
        Unwritable::new(&rack.sleds[4].dirs[1]),
    ];
    assert_eq!(nexus.start(&rack, &all, 3, 1).await, Epoch(2));
    // Until sled 4 holds the prepare in memory, unable to store it.
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        nexus.step(&rack).await;
        let report = rack.handle(4).status().await.unwrap();
        if report
            .node
            .state
            .configs
            .iter()
            .any(|c| c.epoch == Epoch(2))
        {
            assert!(!report.node.state_stored);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no prepare reached sled 4"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    rack.crash(4).await;
    drop(guards);
    // K + Z = 4 of 5: the others commit epoch 2 without sled 4.
    nexus
        .run_until(&rack, LIMIT, "epoch 2 committed", |n| {
            n.latest_committed().is_some_and(|c| c.epoch() == Epoch(2))
        })
        .await;
    rack.start(4).await;
    rack.publish_peers().await;
    let restarted = rack.handle(4).status().await.unwrap();
    assert_eq!(restarted.node.state.latest_committed, Some(Epoch(1)));
    nexus.settle(&rack, LIMIT).await;
    assert!(nexus.nexus().stats().prepare_and_commits >= 1);
    committed_everywhere(&rack, &all, Epoch(2)).await;
    every_member_loads_every_secret(&rack, &all, &[1, 2]).await;
    rack.shutdown().await;
}

/// The coordinator of epoch 2 is killed once it runs the reconfiguration;
/// Nexus abandons the epoch and retries at epoch 3 with another
/// coordinator, which commits; the old coordinator comes back and catches
/// up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_killed_mid_reconfiguration_is_abandoned_and_the_retry_commits() {
    let (mut rack, mut nexus) = fresh_rack_at_epoch_1(5, 3, 23).await;
    let all: Vec<usize> = (0..5).collect();

    assert_eq!(nexus.start(&rack, &all, 3, 1).await, Epoch(2));
    nexus
        .run_until(&rack, LIMIT, "coordinator running", |n| {
            n.pending().is_some_and(|p| p.phase() == Phase::Running)
        })
        .await;
    rack.crash(1).await;
    nexus
        .run_until(&rack, LIMIT, "a later epoch committed", |n| {
            n.latest_committed().is_some_and(|c| c.epoch() > Epoch(2))
        })
        .await;
    assert!(nexus.nexus().stats().abandoned_automatically >= 1);
    let latest = nexus.nexus().latest_committed().unwrap().epoch();
    rack.start(1).await;
    rack.publish_peers().await;
    nexus.settle(&rack, LIMIT).await;
    committed_everywhere(&rack, &all, latest).await;
    let committed: Vec<u64> = nexus.nexus().history().map(|c| c.epoch().0).collect();
    assert!(!committed.contains(&2), "the abandoned epoch never commits");
    assert_eq!(committed.last(), Some(&latest.0));
    every_member_loads_every_secret(&rack, &[0, 2, 3, 4, 1], &committed).await;
    // Asked for the abandoned epoch, a sled says it is not committed.
    assert!(matches!(
        rack.handle(0).load_rack_secret(Epoch(2)).await,
        Ok(Err(tq_core::node::LoadSecretError::NotCommitted(Epoch(2))))
    ));
    rack.shutdown().await;
}

/// The driver is stopped (dropped: its calls in flight are abandoned, as
/// in a crash) while the coordinator of epoch 2 runs it, and again right
/// after it committed epoch 3, before any member confirmed. Each time a new
/// driver resumes from the state file: it asks the same coordinator for the
/// same epoch again (no abandon, no new epoch), and tells every member of
/// the commit it had not heard from.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_driver_restarted_mid_reconfiguration_resumes_from_its_state_file() {
    let (mut rack, mut nexus) = fresh_rack_at_epoch_1(5, 3, 26).await;
    let ids = rack.ids();
    let all: Vec<usize> = (0..5).collect();

    assert_eq!(nexus.start(&rack, &all, 3, 1).await, Epoch(2));
    nexus
        .run_until(&rack, LIMIT, "coordinator running", |n| {
            n.pending().is_some_and(|p| p.phase() == Phase::Running)
        })
        .await;
    let mut nexus = nexus.restart().await;
    let pending = nexus.nexus().pending().expect("epoch 2 pending");
    assert_eq!(pending.epoch(), Epoch(2));
    assert_eq!(pending.coordinator(), Some(&ids[1]));
    nexus.settle(&rack, LIMIT).await;
    let committed: Vec<u64> = nexus.nexus().history().map(|c| c.epoch().0).collect();
    assert_eq!(committed, [1, 2]);
    assert_eq!(nexus.nexus().stats().abandoned, 0);
    assert_eq!(nexus.nexus().highest_started(), Epoch(2));
    committed_everywhere(&rack, &all, Epoch(2)).await;

    assert_eq!(nexus.start(&rack, &all, 3, 2).await, Epoch(3));
    nexus
        .run_until(&rack, LIMIT, "epoch 3 committed", |n| {
            n.latest_committed().is_some_and(|c| c.epoch() == Epoch(3))
        })
        .await;
    let mut nexus = nexus.restart().await;
    let latest = nexus.nexus().latest_committed().unwrap();
    assert_eq!(latest.epoch(), Epoch(3));
    assert_eq!(latest.unconfirmed().len(), 5, "no member confirmed yet");
    assert!(nexus.nexus().pending().is_none());
    nexus.settle(&rack, LIMIT).await;
    assert!(nexus.nexus().stats().member_commits >= 5);
    committed_everywhere(&rack, &all, Epoch(3)).await;
    every_member_loads_every_secret(&rack, &all, &[1, 2, 3]).await;
    rack.shutdown().await;
}

/// A sled with a valid rack certificate, in the peer set but in no
/// configuration, asks a committed rack's member for its share (and for an
/// LRTQ share): it gets no share. (Certificates from another CA, expired
/// ones, none at all and sleds outside the peer set never get past the
/// handshake: `tests/hostile.rs`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_in_no_configuration_gets_no_share() {
    use std::collections::BTreeMap;
    use tq_core::messages::{Body, Envelope};
    use tq_core::wire;
    use tq_std::net::{Net, NetEvent};

    let (mut rack, _nexus) = fresh_rack_at_epoch_1(4, 2, 24).await;
    let ids = rack.ids();

    let stranger = common::rack::sled_id(99);
    let (net, mut events) = Net::start(
        common::rack::node_net_config("127.0.0.1:0".parse().unwrap()),
        &rack.ca.identity(&stranger),
        BTreeMap::new(),
    )
    .await
    .unwrap();
    let mut peers = rack.peer_map();
    peers.insert(stranger.clone(), net.local_addr());
    net.set_peers(peers.clone());
    rack.handle(0).set_peers(peers).await.unwrap();
    loop {
        if let NetEvent::Connected(peer) = common::next_event(&mut events).await {
            assert_eq!(peer, ids[0]);
            break;
        }
    }
    for body in [Body::GetShare(Epoch(1)), Body::GetLrtqShare] {
        let msg = Envelope {
            rack_id: common::rack::RACK_ID,
            body,
        };
        let mut buf = vec![0; wire::MAX_PEER_MSG_LEN];
        let bytes = wire::encode_peer_msg(&msg, &mut buf).unwrap();
        net.send(&ids[0], tq_std::net::Frame::copy_from_slice(bytes))
            .unwrap();
    }
    let quiet = tokio::time::sleep(Duration::from_millis(500));
    tokio::pin!(quiet);
    let mut replies = Vec::new();
    loop {
        tokio::select! {
            () = &mut quiet => break,
            event = events.recv() => match event {
                Some(NetEvent::Frame(_, frame)) => {
                    replies.push(wire::decode_peer_msg(&frame).unwrap().body.kind())
                }
                Some(_) => {}
                None => break,
            },
        }
    }
    // The protocol's answer to a non-member (PROTOCOL.md section 6): that
    // it is not one. No share, no LRTQ share.
    assert_eq!(replies, ["Expunged", "Expunged"]);
    net.shutdown().await;
    rack.shutdown().await;
}

/// After a commit, one ledger copy of each of three sleds is damaged (a
/// flipped bit, a truncation, a deletion) and the sleds are killed: each
/// restarts from its good copy with everything it acknowledged, rewrites
/// the bad one at start, and still loads the rack's secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sleds_restart_from_their_good_ledger_copy_and_repair_the_other() {
    let (mut rack, _nexus) = fresh_rack_at_epoch_1(4, 2, 25).await;
    let all: Vec<usize> = (0..4).collect();

    for i in 0..3 {
        rack.crash(i).await;
    }
    let copy = |i: usize, c: usize| rack.sleds[i].ledger_paths()[c].clone();
    let mut flipped = std::fs::read(copy(0, 0)).unwrap();
    let last = flipped.len() - 1;
    flipped[last] ^= 0x01;
    std::fs::write(copy(0, 0), flipped).unwrap();
    let truncated = std::fs::read(copy(1, 1)).unwrap();
    std::fs::write(copy(1, 1), &truncated[..truncated.len() / 2]).unwrap();
    std::fs::remove_file(copy(2, 0)).unwrap();
    for i in 0..3 {
        rack.start(i).await;
    }
    rack.publish_peers().await;
    rack.wait_connected().await;
    for (i, bad) in [(0, 0), (1, 1), (2, 0)] {
        let report = rack.handle(i).status().await.unwrap();
        assert_eq!(
            report.node.state.latest_committed,
            Some(Epoch(1)),
            "sled {i}"
        );
        let ledger = rack.handle(i).metrics().await.unwrap().ledger;
        assert_eq!(ledger.copies[bad].found_bad, 1, "sled {i}");
        assert_eq!(ledger.copies[bad].repairs, 1, "sled {i}");
        let [a, b] = rack.sleds[i]
            .ledger_paths()
            .map(|p| std::fs::read(p).unwrap());
        assert_eq!(a, b, "sled {i}: both copies hold the state again");
    }
    every_member_loads_every_secret(&rack, &all, &[1]).await;
    rack.shutdown().await;
}
