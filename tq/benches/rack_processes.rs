//! Whole-rack wall times with every sled a `tq sled` process on loopback,
//! Nexus's driver (this process) calling their HTTPS APIs as `tq nexus`
//! does: the LRTQ upgrade, reconfigurations, and after each a rack unlock
//! (Nexus asks every member for the latest secret's fingerprint at once;
//! each but the coordinator, which computed it, first gathers the shares).
//! The in-process figures and the durable-write floor they are compared
//! with are tq-std's rack bench (`cargo bench -p tq-std --bench rack`).
//!
//!     cargo bench -p tq --bench rack_processes
//!
//! Times run from Nexus's `start` until every member confirmed the commit
//! (Nexus polls every millisecond), and for the unlock from the first ask
//! until the last answer. Each row is the median (and min..max).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "bench code: what goes wrong panics and fails the run"
)]

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tq::demo::layout::{Addressing, Layout};
use tq::demo::sleds::{Launch, Sleds};
use tq_core::ids::{PlatformId, Threshold};
use tq_driver::{Driver, DriverConfig, SledMap, StateFile};
use tq_nexus::{Origin, Timing};
use tq_test_fixtures::bench::{ms, span};

const LIMIT: Duration = Duration::from_secs(300);
/// How long a sled may gather shares for one answer (the API's limit).
const SECRET_WAIT: Duration = Duration::from_secs(60);
const RECONFIGURATIONS: usize = 5;

fn config() -> DriverConfig {
    DriverConfig {
        timing: Timing {
            poll_interval: Duration::from_millis(1),
            retry_interval: Duration::from_millis(20),
            abandon_after: Some(Duration::from_secs(30)),
        },
        call_timeout: Duration::from_secs(30),
    }
}

struct Row {
    upgrade: Duration,
    reconfigure: Vec<Duration>,
    unlock: Vec<Duration>,
}

async fn measure(count: usize, seed: u64) -> Row {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path(), count, 0, seed, &Addressing::Loopback).unwrap();
    let rack = layout.rack_file(|_| true);
    let authority = layout.authority.clone();
    let ids: Vec<PlatformId> = layout.sleds.iter().map(|s| s.id.clone()).collect();
    let exe = PathBuf::from(env!("CARGO_BIN_EXE_tq"));
    let mut sleds = Sleds::new(
        layout,
        Launch::Processes {
            exe,
            wrappers: Vec::new(),
        },
    )
    .unwrap();
    let all: Vec<usize> = (0..count).collect();
    for &i in &all {
        sleds.start(i).await.unwrap();
    }
    sleds.wait_connected(&all, LIMIT).await.unwrap();
    let directory = tq::nexus::directory(&rack, sleds.rack_ca(), config().call_timeout).unwrap();
    let mut driver: Driver<SledMap<_>> = Driver::create(
        StateFile::new(dir.path().join("nexus.json")),
        directory,
        authority,
        config(),
        rack.rack_id,
        Origin::Lrtq,
        &ids,
    )
    .await
    .unwrap();
    let k = Threshold::new((count / 2 + 1) as u8).unwrap();

    let t = Instant::now();
    driver.start(&ids, k, &ids[0]).await.unwrap();
    driver.settle(LIMIT).await.unwrap();
    let upgrade = t.elapsed();

    let mut row = Row {
        upgrade,
        reconfigure: vec![],
        unlock: vec![],
    };
    let authority = Arc::new(driver.authority().clone());
    for n in 0..RECONFIGURATIONS {
        let t = Instant::now();
        driver.start(&ids, k, &ids[(n + 1) % count]).await.unwrap();
        driver.settle(LIMIT).await.unwrap();
        row.reconfigure.push(t.elapsed());
        let latest = driver.nexus().latest_committed().unwrap().epoch();

        let mut asks = tokio::task::JoinSet::new();
        let t = Instant::now();
        for &i in &all {
            let api = sleds.api(i).unwrap().clone();
            let (id, authority) = (ids[i].clone(), Arc::clone(&authority));
            asks.spawn(async move { api.checked_fingerprint(&authority, &id, SECRET_WAIT).await });
        }
        while let Some(answer) = asks.join_next().await {
            let print = answer.unwrap().unwrap().unwrap();
            assert_eq!(print.epoch, latest);
        }
        row.unlock.push(t.elapsed());
    }
    sleds.stop_all().await;
    row
}

fn main() {
    // `cargo bench` passes `--bench`; a test run (`cargo test --benches`)
    // does not, and gets one quick 4-sled pass.
    let benching = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if benching { &[8, 32] } else { &[4] };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    println!("| sleds (processes) | LRTQ upgrade (ms) | reconfiguration (ms) | unlock (ms) |");
    println!("|---|---|---|---|");
    for &count in sizes {
        let row = runtime.block_on(measure(count, 7));
        println!(
            "| {count} | {} | {} | {} |",
            ms(row.upgrade),
            span(&row.reconfigure),
            span(&row.unlock),
        );
    }
}
