//! A rack cold-booting under a flood of unauthenticated TCP connections,
//! against the same rack booting in peace: how long until every sled is
//! connected to every other, and until every sled has loaded the rack
//! secret (unlock). Loopback TLS, node tasks in this process. Prints a
//! table.
//!
//!     cargo bench -p tq-std --bench admission
//!
//! Each run: a fresh rack commits its first configuration, every sled
//! stops (a cold boot: nothing in memory, ledgers on disk), the flood
//! starts (if any), every sled starts again on its old port with no peer
//! addresses yet, and once the flood has reached every listener the
//! sleds are given their peers' addresses (so the peers dial into a
//! flood in full swing). Times run from that moment. The flood: `FLOOD_PER_SLED` silent
//! connections to each sled from 127.0.0.2 (not a peer address), each
//! opened again `FLOOD_PAUSE` after the sled closes it; it runs in this
//! process, so it also competes for the CPU. Each row is the median (and
//! min..max) of the runs.
//!
//! Measured on a shared 2-core machine, debug build (`cargo test -p tq-std
//! --bench admission -- --bench`), 8 sleds, 3 runs: all connected in
//! 59.9 ms (58.5..61.8) without the flood and 95.9 ms (73.3..197.6) under
//! it; unlocked in 71.7 ms (69.7..73.2) and 115.4 ms (92.8..212.0). Before
//! the admission pools (one pool of 64 slots for everyone), the same flood
//! kept a 4-sled rack from connecting at all: 30 s later sled 0 was
//! connected to 2 of its 3 peers, and the rack never unlocked.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

use common::flood::Flood;
use common::nexus::Driver;
use common::rack::Rack;
use tq_nexus::Origin;
use tq_std::net::HandshakeRefusal;
use tq_test_fixtures::bench::{median, span};

const LIMIT: Duration = Duration::from_secs(120);
const FLOOD_PER_SLED: usize = 200;
const FLOOD_PAUSE: Duration = Duration::from_millis(100);

struct Run {
    connected: Duration,
    unlocked: Duration,
    flood_connections: u64,
    refused: u64,
}

async fn cold_boot(sleds: usize, seed: u64, flood: bool) -> Run {
    let all: Vec<usize> = (0..sleds).collect();
    let mut rack = Rack::new(0, sleds, seed);
    rack.start_all().await;
    rack.wait_connected().await;
    let mut nexus = Driver::new(Origin::Fresh, &rack.ids()).await;
    nexus.start(&rack, &all, (sleds / 2 + 1) as u8, 0).await;
    nexus.settle(&rack, LIMIT).await;
    rack.shutdown().await;

    let targets: Vec<SocketAddr> = rack.sleds.iter().filter_map(|s| s.listen).collect();
    let stranger = IpAddr::from([127, 0, 0, 2]);
    let flood = flood.then(|| Flood::start(&targets, &[stranger], FLOOD_PER_SLED, FLOOD_PAUSE));
    for i in 0..sleds {
        let mut config = rack.config(i);
        config.peers = BTreeMap::new();
        rack.start_with(i, config).await;
    }
    if flood.is_some() {
        for i in 0..sleds {
            while rack.handle(i).metrics().await.unwrap().net.accepted < FLOOD_PER_SLED as u64 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    let started = Instant::now();
    rack.publish_peers().await;
    rack.wait_connected().await;
    let connected = started.elapsed();
    let loads = (0..sleds).map(|i| rack.load_latest_secret(i, LIMIT));
    for loaded in futures_util::future::join_all(loads).await {
        loaded.unwrap().unwrap();
    }
    let unlocked = started.elapsed();

    let mut refused = 0;
    for i in 0..sleds {
        let net = rack.handle(i).metrics().await.unwrap().net;
        refused += [
            HandshakeRefusal::SourceBusy,
            HandshakeRefusal::TooManyHandshakes,
            HandshakeRefusal::Timeout,
        ]
        .map(|r| net.refused(r))
        .iter()
        .sum::<u64>();
    }
    let flood_connections = match flood {
        Some(flood) => flood.stop().await,
        None => 0,
    };
    rack.shutdown().await;
    Run {
        connected,
        unlocked,
        flood_connections,
        refused,
    }
}

fn main() {
    // `cargo bench` passes `--bench`; a test run (`cargo test --benches`)
    // does not, and gets one quick small pass.
    let benching = std::env::args().any(|a| a == "--bench");
    let (sleds, runs) = if benching { (8, 3) } else { (4, 1) };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "| sleds | flood | all connected (ms) | unlocked (ms) | flood connections opened | refused by the sleds |"
    );
    println!("|---|---|---|---|---|---|");
    for flood in [false, true] {
        let results: Vec<Run> = (0..runs)
            .map(|seed| runtime.block_on(cold_boot(sleds, seed as u64, flood)))
            .collect();
        let connected: Vec<Duration> = results.iter().map(|r| r.connected).collect();
        let unlocked: Vec<Duration> = results.iter().map(|r| r.unlocked).collect();
        let opened = median(
            &results
                .iter()
                .map(|r| r.flood_connections)
                .collect::<Vec<_>>(),
        )
        .0;
        let refused = median(&results.iter().map(|r| r.refused).collect::<Vec<_>>()).0;
        let what = if flood {
            format!("{FLOOD_PER_SLED} per sled from 127.0.0.2, reopened after {FLOOD_PAUSE:?}")
        } else {
            "none".to_owned()
        };
        println!(
            "| {sleds} | {what} | {} | {} | {opened} | {refused} |",
            span(&connected),
            span(&unlocked),
        );
    }
}
