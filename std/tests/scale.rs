//! Scale: 32 sleds of an LRTQ rack, each a node task with its own ledger
//! and TLS listener in this process, upgrade and then reconfigure, driven
//! by Nexus's state machine; every sled then unlocks (loads the latest
//! secret). Slow in debug builds (each LRTQ share combination and 32 TLS
//! handshakes per sled): CI runs it in release.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::time::{Duration, Instant};

use common::nexus::Driver;
use common::rack::Rack;
use tq_core::ids::Epoch;
use tq_nexus::Origin;

const LIMIT: Duration = Duration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_two_sleds_upgrade_from_lrtq_and_reconfigure() {
    let mut rack = Rack::new(32, 0, 32);
    let started = Instant::now();
    rack.start_all().await;
    rack.wait_connected().await;
    eprintln!("32 sleds up and fully connected in {:?}", started.elapsed());
    let ids = rack.ids();
    let all: Vec<usize> = (0..32).collect();
    let mut nexus = Driver::new(Origin::Lrtq, &ids).await;

    let t = Instant::now();
    assert_eq!(nexus.start(&rack, &all, 17, 0).await, Epoch(2));
    nexus.settle(&rack, LIMIT).await;
    eprintln!("LRTQ upgrade committed everywhere in {:?}", t.elapsed());

    let t = Instant::now();
    assert_eq!(nexus.start(&rack, &all, 17, 5).await, Epoch(3));
    nexus.settle(&rack, LIMIT).await;
    eprintln!("reconfiguration committed everywhere in {:?}", t.elapsed());

    let t = Instant::now();
    let mut secrets = Vec::new();
    for i in 0..32 {
        let secret = rack.load_latest_secret(i, LIMIT).await.unwrap().unwrap();
        assert_eq!(secret.epoch(), Epoch(3));
        secrets.push(secret);
    }
    eprintln!(
        "unlock (every sled loads the latest secret) in {:?}",
        t.elapsed()
    );
    assert!(secrets.iter().all(|s| s.same_secret(&secrets[0])));
    let lrtq = rack
        .handle(31)
        .load_rack_secret(Epoch(1))
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert!(lrtq.is(rack.lrtq_secret.as_ref().unwrap()));
    rack.shutdown().await;
}
