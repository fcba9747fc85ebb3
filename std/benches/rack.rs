//! Wall time of whole-rack operations over loopback TLS, node tasks in
//! this process, driven by Nexus's state machine (`tq-nexus`) through the
//! handles: an LRTQ upgrade, a reconfiguration, and a rack unlock (every
//! sled loads the latest secret, at once); messages and bytes per
//! reconfiguration; resident memory per sled task. Prints a table.
//!
//!     cargo bench -p tq-std --bench rack
//!
//! Times run from Nexus's `start` until every member confirmed the commit
//! (Nexus polls every millisecond here), and for the unlock from the first
//! `load_latest_secret` until the last returns. Each row is the median
//! (and min..max) of several runs. Memory: the process's resident set
//! before and after starting the first rack's sleds, divided by their
//! count (each sled: node, context, ledger, TLS listener and one
//! connection per peer; later racks reuse memory the allocator kept).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::nexus::Driver;
use common::rack::Rack;
use tq_nexus::{Origin, Timing};

const LIMIT: Duration = Duration::from_secs(300);
const RACKS: usize = 3;
const RECONFIGURATIONS: usize = 5;

fn timing() -> Timing {
    Timing {
        poll_interval: Duration::from_millis(1),
        retry_interval: Duration::from_millis(20),
        abandon_after: Some(Duration::from_secs(30)),
    }
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Message frames and their bytes (prefixes included, keep-alives not)
/// sent by every sled so far.
async fn sent(rack: &Rack) -> (u64, u64) {
    let mut frames = 0;
    let mut bytes = 0;
    for i in 0..rack.sleds.len() {
        let net = rack.handle(i).metrics().await.unwrap().net;
        for peer in net.peers.values().chain([&net.other_peers]) {
            frames += peer.frames_out;
            bytes += peer.bytes_out - 4 * peer.pings_out;
        }
    }
    (frames, bytes)
}

struct Row {
    upgrade: Vec<Duration>,
    reconfigure: Vec<Duration>,
    unlock: Vec<Duration>,
    messages: Vec<u64>,
    bytes: Vec<u64>,
    rss_per_sled_kib: Vec<u64>,
}

async fn measure(sleds: usize) -> Row {
    let mut row = Row {
        upgrade: vec![],
        reconfigure: vec![],
        unlock: vec![],
        messages: vec![],
        bytes: vec![],
        rss_per_sled_kib: vec![],
    };
    let all: Vec<usize> = (0..sleds).collect();
    let k = (sleds / 2 + 1) as u8;
    for seed in 0..RACKS {
        let before = rss_kib();
        let mut rack = Rack::new(sleds, 0, seed as u64);
        rack.start_all().await;
        rack.wait_connected().await;
        row.rss_per_sled_kib
            .push(rss_kib().saturating_sub(before) / sleds as u64);
        let ids = rack.ids();
        let mut nexus = Driver::with_timing(Origin::Lrtq, &ids, timing()).await;

        let t = Instant::now();
        nexus.start(&rack, &all, k, 0).await;
        nexus.settle(&rack, LIMIT).await;
        row.upgrade.push(t.elapsed());

        for n in 0..RECONFIGURATIONS {
            let (frames, bytes) = sent(&rack).await;
            let t = Instant::now();
            nexus.start(&rack, &all, k, (n + 1) % sleds).await;
            nexus.settle(&rack, LIMIT).await;
            row.reconfigure.push(t.elapsed());
            let (frames_after, bytes_after) = sent(&rack).await;
            row.messages.push(frames_after - frames);
            row.bytes.push(bytes_after - bytes);

            for i in 0..sleds {
                rack.handle(i).clear_secrets().await.unwrap();
            }
            let t = Instant::now();
            let loads = (0..sleds).map(|i| rack.load_latest_secret(i, LIMIT));
            for loaded in futures_util::future::join_all(loads).await {
                loaded.unwrap().unwrap();
            }
            row.unlock.push(t.elapsed());
        }
        rack.shutdown().await;
    }
    row
}

fn median<T: Ord + Copy>(values: &[T]) -> (T, T, T) {
    let mut sorted = values.to_vec();
    sorted.sort();
    (
        sorted[sorted.len() / 2],
        sorted[0],
        sorted[sorted.len() - 1],
    )
}

fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1e3)
}

fn main() {
    // `cargo bench` passes `--bench`; a test run (`cargo test --benches`)
    // does not, and gets one quick 8-sled pass.
    let benching = std::env::args().any(|a| a == "--bench");
    let sizes: &[usize] = if benching { &[8, 32] } else { &[8] };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // Warm-up: one-time costs (the TLS provider, the runtime's threads)
    // stay out of the first rack's memory figure.
    runtime.block_on(async {
        let mut rack = Rack::new(3, 0, 99);
        rack.start_all().await;
        rack.wait_connected().await;
        rack.shutdown().await;
    });
    println!(
        "| sleds | LRTQ upgrade (ms) | reconfiguration (ms) | unlock (ms) | messages / reconfiguration | bytes / reconfiguration | RSS per sled task (KiB) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for &sleds in sizes {
        let row = runtime.block_on(measure(sleds));
        let span = |v: &[Duration]| {
            let (m, lo, hi) = median(v);
            format!("{} ({}..{})", ms(m), ms(lo), ms(hi))
        };
        let (messages, ..) = median(&row.messages);
        let (bytes, ..) = median(&row.bytes);
        // The first rack's: later racks reuse memory the allocator kept.
        let (_, _, rss) = median(&row.rss_per_sled_kib);
        println!(
            "| {sleds} | {} | {} | {} | {messages} | {bytes} | {rss} |",
            span(&row.upgrade),
            span(&row.reconfigure),
            span(&row.unlock),
        );
    }
}
