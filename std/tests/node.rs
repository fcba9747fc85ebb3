//! Node tasks over real loopback TLS and real ledger files: boot from an
//! LRTQ share file and from the ledger, proxied calls (answers, deadline,
//! disconnection), a sled whose ledger takes no write, bounded queues,
//! waiting for a secret.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::authority as auth;
use common::rack::{RACK_ID, Rack, node_net_config, sled_id};
use common::{CaIdentity, Unwritable};
use tq_core::api::{CommitRequest, LrtqUpgradeMsg};
use tq_core::ids::{Epoch, SLED_PART_NUMBER, Threshold};
use tq_core::member_set::MemberSet;
use tq_core::node::{CommitError, CoordinatorPhase, LoadSecretError};
use tq_std::handle::{Bound, Unavailable};
use tq_std::ledger::LedgerStatus;
use tq_std::net::{Net, NetEvent};
use tq_std::node::report::StorageHealth;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lrtq_sleds_boot_from_their_share_files_then_from_their_ledgers() {
    let mut rack = Rack::new(4, 0, 1);
    rack.start_all().await;
    rack.wait_connected().await;
    for i in 0..4 {
        let report = rack.handle(i).status().await.unwrap();
        let lrtq = report.node.state.lrtq.expect("LRTQ data");
        assert_eq!((lrtq.rack_id, lrtq.threshold.get()), (RACK_ID, 3));
        assert_eq!(report.storage, StorageHealth::Stored);
        assert!(report.node.state_stored);
        assert_eq!(report.ledger, LedgerStatus::Healthy);
        assert_eq!(report.node.connected.len(), 3);
        assert_eq!(rack.handle(i).watch_committed().borrow().clone(), None);
    }
    // The LRTQ data is in the ledger now: the file is not needed again.
    rack.crash(1).await;
    std::fs::remove_file(rack.sleds[1].lrtq_file.take().unwrap()).unwrap();
    rack.start(1).await;
    rack.wait_connected().await;
    let report = rack.handle(1).status().await.unwrap();
    assert!(report.node.state.lrtq.is_some());
    let metrics = rack.handle(1).metrics().await.unwrap();
    assert_eq!(metrics.ledger.generation, 1, "loaded, not written again");
    rack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn proxied_calls_reach_a_sled_through_a_connected_one() {
    let mut rack = Rack::new(4, 0, 2);
    rack.start_all().await;
    rack.wait_connected().await;
    let deadline = Duration::from_secs(5);
    let (via, target) = (rack.handle(0).clone(), rack.sleds[3].id.clone());

    let proxied = auth::proxy_status(&via, &target, deadline).await.unwrap();
    let own = rack.handle(3).status().await.unwrap().node;
    assert_eq!(proxied.id, target);
    assert_eq!(proxied.state, own.state);
    assert_eq!(proxied.connected, own.connected);

    // The target's own answer, refusal included, comes back typed.
    let commit = CommitRequest {
        rack_id: RACK_ID,
        epoch: Epoch(2),
    };
    assert_eq!(
        auth::proxy_commit(&via, &target, commit, deadline).await,
        Ok(Err(CommitError::NotPrepared(Epoch(2))))
    );
    // A sled this one has no connection to.
    assert_eq!(
        auth::proxy_status(&via, &sled_id(9), deadline).await,
        Err(Unavailable::NotConnected)
    );
    let metrics = via.metrics().await.unwrap();
    assert_eq!(metrics.shim.proxied, [2, 1, 0, 0]);
    let served = rack.handle(3).metrics().await.unwrap().shim.proxy_served;
    assert_eq!(served, 2);
    rack.shutdown().await;
}

/// A library caller's deadline too long for the clock (`Duration::MAX`)
/// is cut to `MAX_DEADLINE`: the call is answered and the node task
/// lives on (`Instant + Duration::MAX` would overflow).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deadline_too_long_for_the_clock_is_cut_to_the_limit() {
    let mut rack = Rack::new(2, 0, 12);
    rack.start_all().await;
    rack.wait_connected().await;
    let (via, target) = (rack.handle(0).clone(), rack.sleds[1].id.clone());
    let proxied = auth::proxy_status(&via, &target, Duration::MAX).await;
    assert_eq!(proxied.map(|status| status.id), Ok(target));
    assert_eq!(
        auth::proxy_status(&via, &sled_id(9), Duration::MAX).await,
        Err(Unavailable::NotConnected)
    );
    assert!(via.status().await.is_ok(), "the node task is alive");
    rack.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_proxied_call_fails_at_its_deadline_and_when_the_connection_ends() {
    let mut rack = Rack::new(3, 0, 3);
    rack.start(0).await;
    // A sled that takes frames and never answers: a bare network endpoint
    // with a valid certificate.
    let silent_id = sled_id(7);
    let (silent, mut silent_events) = Net::start(
        node_net_config("127.0.0.1:0".parse().unwrap()),
        &rack.ca.identity(&silent_id),
        BTreeMap::new(),
    )
    .await
    .unwrap();
    let mut peers = rack.peer_map();
    peers.insert(silent_id.clone(), silent.local_addr());
    silent.set_peers(peers.clone());
    let handle = rack.handle(0).clone();
    handle.set_peers(peers).await.unwrap();
    loop {
        if let NetEvent::Connected(_) = common::next_event(&mut silent_events).await {
            break;
        }
    }
    // Each side counts the connection once the other's first frame came.
    loop {
        let report = handle.status().await.unwrap();
        if report
            .peers
            .iter()
            .any(|p| p.id == silent_id && p.connected)
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }

    let started = tokio::time::Instant::now();
    let answer = auth::proxy_status(&handle, &silent_id, Duration::from_millis(300)).await;
    assert_eq!(answer, Err(Unavailable::DeadlinePassed));
    assert!(started.elapsed() >= Duration::from_millis(300));
    // The request did reach it, as a proxy frame.
    let NetEvent::Frame(_, frame) = common::next_event(&mut silent_events).await else {
        panic!("expected the proxied request")
    };
    assert!(tq_std::proxy::is_proxy_frame(&frame));

    // A call in flight when the connection ends fails at once.
    let waiting = tokio::spawn({
        let handle = handle.clone();
        let silent_id = silent_id.clone();
        async move { auth::proxy_status(&handle, &silent_id, Duration::from_secs(30)).await }
    });
    let _ = common::next_event(&mut silent_events).await;
    silent.shutdown().await;
    let answer = tokio::time::timeout(Duration::from_secs(10), waiting)
        .await
        .expect("failed at once, not at the deadline")
        .unwrap();
    assert_eq!(answer, Err(Unavailable::Disconnected));
    let metrics = handle.metrics().await.unwrap();
    assert_eq!(metrics.shim.proxied, [0, 0, 1, 1]);
    assert_eq!(metrics.proxied_in_flight, 0);
    rack.shutdown().await;
}

/// Sled 3's drives take no write: it boots from its LRTQ file, cannot store
/// that state, and so sends nothing, not even its LRTQ share to the
/// coordinator that asks for it, and acknowledges nothing; when the drives
/// come back the retried write succeeds and the upgrade goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sled_whose_ledger_takes_no_write_sends_nothing_until_it_does() {
    let mut rack = Rack::new(4, 0, 4);
    let guards = [
        Unwritable::new(&rack.sleds[3].dirs[0]),
        Unwritable::new(&rack.sleds[3].dirs[1]),
    ];
    // Sled 2 stays down: the coordinator (0) needs sled 3's LRTQ share
    // for its threshold of 3.
    for i in [0, 1, 3] {
        rack.start(i).await;
    }
    rack.publish_peers().await;
    rack.wait_connected().await;
    let members = MemberSet::new(&rack.ids()).unwrap();
    let upgrade = LrtqUpgradeMsg {
        rack_id: RACK_ID,
        epoch: Epoch(2),
        members,
        threshold: Threshold::new(3).unwrap(),
    };
    assert_eq!(
        auth::upgrade_from_lrtq(rack.handle(0), upgrade).await,
        Ok(Ok(()))
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let status = auth::coordinator_status(rack.handle(0))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.phase, CoordinatorPhase::CollectingLrtqShares);
    let report = rack.handle(3).status().await.unwrap();
    let StorageHealth::Failing { attempts } = report.storage else {
        panic!("{:?}", report.storage)
    };
    assert!(attempts >= 2, "retried with backoff: {attempts}");
    assert!(!report.node.state_stored);
    let sent: u64 = report.peers.iter().map(|p| p.stats.frames_out).sum();
    assert_eq!(sent, 0, "nothing leaves an unstored node");
    // Nothing is acknowledged either.
    let commit = CommitRequest {
        rack_id: RACK_ID,
        epoch: Epoch(2),
    };
    assert!(matches!(
        auth::commit(rack.handle(3), commit).await,
        Err(Unavailable::NotStored { .. })
    ));
    let text = tq_std::metrics::render(&rack.handle(3).metrics().await.unwrap());
    assert!(text.contains("\ntq_node_state_stored 0\n"), "{text}");

    drop(guards);
    let coordinator = rack.handle(0).clone();
    let mut preparing = false;
    for _ in 0..500 {
        let status = auth::coordinator_status(&coordinator)
            .await
            .unwrap()
            .unwrap();
        if status.phase == CoordinatorPhase::Preparing && status.acked.contains(&sled_id(3)) {
            preparing = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(
        preparing,
        "the upgrade went on once sled 3 stored its state"
    );
    let report = rack.handle(3).status().await.unwrap();
    assert_eq!(report.storage, StorageHealth::Stored);
    assert!(report.node.state_stored);
    rack.shutdown().await;
}

/// A new sled without LRTQ data has committed no configuration: the
/// latest secret is refused at once, however long the caller would wait
/// (no share can change the answer).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_latest_secret_with_nothing_committed_is_refused_at_once() {
    let mut rack = Rack::new(0, 3, 5);
    rack.start_all().await;
    let handle = rack.handle(0).clone();
    let started = std::time::Instant::now();
    let answer = tokio::time::timeout(
        Duration::from_secs(10),
        auth::load_latest_secret(&handle, Duration::from_secs(60)),
    )
    .await
    .expect("answered before its deadline");
    assert!(
        matches!(answer, Ok(Err(LoadSecretError::NoCommittedConfiguration))),
        "{answer:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(
        handle.load_rack_secret(Epoch(1)).await,
        Ok(Err(LoadSecretError::NoCommittedConfiguration))
    ));
    rack.shutdown().await;
}

/// A sled of an LRTQ rack not yet upgraded: its latest secret is the LRTQ
/// secret (rack setup's, made with vsss-rs), as epoch 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lrtq_sled_with_nothing_committed_loads_the_lrtq_secret_as_epoch_1() {
    let mut rack = Rack::new(3, 0, 5);
    rack.start_all().await;
    rack.wait_connected().await;
    let loaded = rack
        .handle(0)
        .load_own_latest_secret(Duration::from_secs(20))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(loaded.epoch(), Epoch(1));
    assert!(loaded.is(rack.lrtq_secret.as_ref().unwrap()));
    assert!(matches!(
        rack.handle(1).load_rack_secret(Epoch(2)).await,
        Ok(Err(LoadSecretError::NotCommitted(Epoch(2))))
    ));
    rack.shutdown().await;
}

/// With an API queue of one, calls made faster than the task runs are
/// refused as busy, never queued without bound, never a panic.
#[tokio::test(flavor = "current_thread")]
async fn a_full_api_queue_is_busy() {
    let mut rack = Rack::new(3, 0, 6);
    let mut config = rack.config(0);
    config.api_queue_len = 1;
    rack.start_with(0, config).await;
    let handle = rack.handle(0).clone();
    // On one thread, the task cannot run while these are first polled.
    let answers = futures_util::future::join_all((0..50).map(|_| handle.status())).await;
    let busy = answers
        .iter()
        .filter(|a| matches!(a, Err(Unavailable::Busy(Bound::ApiQueue))))
        .count();
    assert_eq!(busy, 49);
    assert!(answers[0].is_ok());
    let metrics = handle.metrics().await.unwrap();
    assert_eq!(metrics.shim.busy[Bound::ApiQueue as usize], 49);
    rack.shutdown().await;
}

/// A peer with a valid certificate whose frames pass the network's header
/// check but not the node's decoders (a core message, then a proxy frame):
/// each time the node drops that connection and counts it, and goes on
/// serving the others.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frames_the_node_cannot_decode_drop_only_their_connection() {
    use tokio::io::AsyncWriteExt;
    use tq_std::net::CloseReason;

    let mut rack = Rack::new(3, 0, 7);
    rack.start_all().await;
    rack.wait_connected().await;
    // Below every sled: it may dial them.
    let hostile = common::pid(SLED_PART_NUMBER, "A-hostile");
    let identity = rack.ca.identity(&hostile);
    let mut peers = rack.peer_map();
    peers.insert(hostile.clone(), "127.0.0.1:9".parse().unwrap());
    rack.handle(0).set_peers(peers).await.unwrap();
    let addr = rack.sleds[0].listen.unwrap();

    let mut bad_proxy = common::message(RACK_ID, &[0x42; 9]).to_vec();
    bad_proxy[0] = tq_std::proxy::PROXY_FRAME;
    for (round, frame) in [common::message(RACK_ID, &[0xff; 40]).to_vec(), bad_proxy]
        .into_iter()
        .enumerate()
    {
        let mut stream = common::raw_client(addr, Some(&identity)).await.unwrap();
        stream
            .write_all(&(frame.len() as u32).to_be_bytes())
            .await
            .unwrap();
        stream.write_all(&frame).await.unwrap();
        assert!(common::closed_by_peer(&mut stream).await, "round {round}");
        let deadline = tokio::time::Instant::now() + common::WAIT;
        loop {
            let metrics = rack.handle(0).metrics().await.unwrap();
            let closes = metrics.net.peer(&hostile).closes(CloseReason::Undecodable);
            if closes == round as u64 + 1 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "round {round}: {closes}"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // The others are still served: a proxied call through sled 0.
        let status = auth::proxy_status(rack.handle(0), &rack.sleds[2].id, Duration::from_secs(5))
            .await
            .unwrap();
        assert_eq!(status.id, rack.sleds[2].id);
    }
    let metrics = rack.handle(0).metrics().await.unwrap();
    assert_eq!(metrics.shim.undecodable_disconnects, 1);
    assert_eq!(metrics.shim.proxy_bad_frames, 1);
    assert_eq!(metrics.counters.get(tq_core::node::Counter::Undecodable), 1);
    rack.shutdown().await;
}
