//! Wall time of whole-rack operations over loopback TLS, node tasks in
//! this process, driven by Nexus's driver (`tq-driver` over `tq-nexus`'s
//! machine, its state file on disk) through the handles: an LRTQ upgrade,
//! a reconfiguration, and a rack unlock (every sled loads the latest
//! secret, at once); each against its durable-write floor; messages and
//! bytes per reconfiguration; resident memory per sled task. Prints a
//! table.
//!
//!     cargo bench -p tq-std --bench rack [-- SLEDS...]
//!
//! Times run from Nexus's `start` until every member confirmed the commit
//! (Nexus polls every millisecond here), split where the coordinator
//! answered Nexus and where Nexus decided to commit (accepted + prepared +
//! confirmed), and for the unlock from the first
//! `load_latest_secret` until the last returns. Each row is the median
//! (and min..max) of several runs.
//!
//! **The floor.** Each operation waits, in sequence, for durable writes
//! that no design of this protocol can overlap; the same run measures each
//! kind on the disk the racks live on (the temporary directory), with the
//! code that does it: a ledger write (both copies, as [`Ledger::write`]
//! writes them), an audit append (one record, both copies fsynced), and
//! a Nexus decision (its state file replaced atomically). A step every
//! member takes at once is measured as that many sleds writing at once:
//! here every sled's drives are one disk. A reconfiguration and the LRTQ
//! upgrade each wait for, in order: Nexus storing the start; the members'
//! audit records of the old shares (or LRTQ shares) they hand the
//! coordinator; the coordinator's ledger write of the new configuration;
//! its audit record of the shares it deals; the members' ledger writes of
//! their shares; Nexus storing the commit; the members' ledger writes of
//! the commit; their audit records of Nexus's call; Nexus storing the
//! confirmations. An unlock waits for two audit appends by every sled:
//! the records of the shares each hands out, then of the secret each
//! rebuilt and handed over.
//!
//! Memory: the process's resident set before and after starting the first
//! rack's sleds, divided by their count (each sled: node, context, ledger,
//! TLS listener and one connection per peer; later racks reuse memory the
//! allocator kept).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::nexus::Driver;
use common::rack::Rack;
use tq_driver::DriverEvent;
use tq_nexus::{Origin, Timing};
use tq_std::audit::{AuditConfig, AuditEvent, AuditLog, ShareMessage};
use tq_std::ledger::{self, Ledger};
use tq_test_fixtures::bench::{median, ms, span};

const LIMIT: Duration = Duration::from_secs(300);
const RACKS: usize = 3;
const RECONFIGURATIONS: usize = 5;
/// Samples of each kind of durable write by one sled (a quarter as many
/// by every sled at once).
const WRITES: usize = 200;

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

/// One sled's durable files in a scratch directory: a ledger and an audit
/// log, each with its two copies.
struct ScratchSled {
    ledger: Ledger,
    audit: AuditLog,
}

impl ScratchSled {
    async fn new(root: &Path, i: usize) -> Self {
        let drives = ["m2-a", "m2-b"].map(|d| root.join(format!("sled-{i}")).join(d));
        for drive in &drives {
            std::fs::create_dir_all(drive).unwrap();
        }
        let copies = drives.map(|d| d.join("ledger").join("tq-ledger"));
        ledger::init(&copies).unwrap();
        let ledger = Ledger::open(copies.clone()).await.unwrap().ledger;
        let audit = AuditLog::open(
            tq_std::audit::audit_dirs(&copies),
            format!("bench-{i}"),
            0,
            AuditConfig::default(),
        )
        .await
        .unwrap();
        Self { ledger, audit }
    }
}

/// The median latency of each kind of durable write the rack waits for,
/// by one sled alone and by every sled at once (the racks' sleds share
/// this machine's one disk, where a real rack's each have their own: a
/// step that every member takes together waits for all of their writes).
struct DurableWrites {
    ledger: Duration,
    audit: Duration,
    nexus: Duration,
    ledger_all: Duration,
    audit_all: Duration,
}

impl DurableWrites {
    /// Measured in a fresh temporary directory (on the racks' disk), with
    /// payloads the size of a sled's ledger and of Nexus's state file.
    async fn measure(sleds: usize, ledger_len: usize, nexus_len: usize) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut scratch = Vec::new();
        for i in 0..sleds {
            scratch.push(ScratchSled::new(dir.path(), i).await);
        }
        let payload = vec![0x5a; ledger_len.min(ledger::MAX_PAYLOAD_LEN)];
        let record = AuditEvent::ShareSent {
            to: common::rack::sled_id(1).to_string(),
            epoch: 2,
            message: ShareMessage::Share,
        };
        let ledger_writes = |count: usize| {
            let writes = scratch[..count].iter().map(|s| s.ledger.write(&payload));
            async move {
                let t = Instant::now();
                for written in futures_util::future::join_all(writes).await {
                    written.unwrap();
                }
                t.elapsed()
            }
        };
        let appends = |count: usize| {
            let appends = scratch[..count]
                .iter()
                .map(|s| s.audit.record(vec![record.clone()]));
            async move {
                let t = Instant::now();
                for appended in futures_util::future::join_all(appends).await {
                    appended.unwrap();
                }
                t.elapsed()
            }
        };
        let ledger_one = median_of(WRITES, || ledger_writes(1)).await;
        let ledger_all = median_of(WRITES / 4, || ledger_writes(sleds)).await;
        let audit_one = median_of(WRITES, || appends(1)).await;
        let audit_all = median_of(WRITES / 4, || appends(sleds)).await;

        let state_file = Arc::new(dir.path().join("nexus.json"));
        let state = Arc::new(vec![b' '; nexus_len]);
        let nexus_store = median_of(WRITES, || {
            let (path, bytes) = (Arc::clone(&state_file), Arc::clone(&state));
            async move {
                let t = Instant::now();
                tokio::task::spawn_blocking(move || tq_atomic_file::replace(&path, &bytes))
                    .await
                    .unwrap()
                    .unwrap();
                t.elapsed()
            }
        })
        .await;
        Self {
            ledger: ledger_one,
            audit: audit_one,
            nexus: nexus_store,
            ledger_all,
            audit_all,
        }
    }

    /// The chain of the crate doc: Nexus's three decisions, the
    /// coordinator's own ledger write and audit record, and four steps
    /// every member takes at once (the old shares' records, the prepare's
    /// and the commit's ledger writes, the commit's record).
    fn reconfiguration_floor(&self) -> Duration {
        self.nexus * 3 + self.ledger + self.audit + (self.ledger_all + self.audit_all) * 2
    }

    /// Every sled records the shares it hands out, then the secret it
    /// rebuilt, all at once.
    fn unlock_floor(&self) -> Duration {
        self.audit_all * 2
    }
}

async fn median_of<F: std::future::Future<Output = Duration>>(
    samples: usize,
    mut sample: impl FnMut() -> F,
) -> Duration {
    let mut times = Vec::with_capacity(samples);
    for _ in 0..samples {
        times.push(sample().await);
    }
    median(&times).0
}

/// CPU time this process used so far, on every thread.
fn cpu_time() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ProcessCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

fn file_len(path: &Path) -> usize {
    std::fs::metadata(path).unwrap().len() as usize
}

struct Row {
    upgrade: Vec<Duration>,
    reconfigure: Vec<Duration>,
    /// Each reconfiguration's phases: from the start to the coordinator's
    /// answer, from there to Nexus's commit decision, and from there to
    /// the last confirmation.
    accept: Vec<Duration>,
    prepare: Vec<Duration>,
    commit: Vec<Duration>,
    unlock: Vec<Duration>,
    /// CPU time the process spent on each unlock, on both runtime threads
    /// and the blocking pool: above the wall time, the unlock is bound by
    /// the CPU, not by the drives.
    unlock_cpu: Vec<Duration>,
    messages: Vec<u64>,
    bytes: Vec<u64>,
    rss_per_sled_kib: Vec<u64>,
    /// A sled's ledger copy and Nexus's state file, as the last
    /// reconfiguration left them.
    ledger_len: usize,
    nexus_len: usize,
}

async fn measure(sleds: usize) -> Row {
    let mut row = Row {
        upgrade: vec![],
        reconfigure: vec![],
        accept: vec![],
        prepare: vec![],
        commit: vec![],
        unlock: vec![],
        unlock_cpu: vec![],
        messages: vec![],
        bytes: vec![],
        rss_per_sled_kib: vec![],
        ledger_len: 0,
        nexus_len: 0,
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
        // When the coordinator accepted, and when Nexus decided to commit.
        let phases = Arc::new(Mutex::new((None, None)));
        let observed = Arc::clone(&phases);
        nexus.driver.observe(move |event| {
            let mut phases = observed.lock().unwrap();
            match event {
                DriverEvent::Running { .. } => phases.0 = Some(Instant::now()),
                DriverEvent::Committed { .. } => phases.1 = Some(Instant::now()),
                _ => {}
            }
        });

        let t = Instant::now();
        nexus.start(&rack, &all, k, 0).await;
        nexus.settle(&rack, LIMIT).await;
        row.upgrade.push(t.elapsed());

        for n in 0..RECONFIGURATIONS {
            let (frames, bytes) = sent(&rack).await;
            let t = Instant::now();
            nexus.start(&rack, &all, k, (n + 1) % sleds).await;
            nexus.settle(&rack, LIMIT).await;
            let settled = Instant::now();
            row.reconfigure.push(settled - t);
            let (running, committed) = std::mem::take(&mut *phases.lock().unwrap());
            let (running, committed) = (running.unwrap(), committed.unwrap());
            row.accept.push(running - t);
            row.prepare.push(committed - running);
            row.commit.push(settled - committed);
            let (frames_after, bytes_after) = sent(&rack).await;
            row.messages.push(frames_after - frames);
            row.bytes.push(bytes_after - bytes);

            for i in 0..sleds {
                rack.handle(i).clear_secrets().await.unwrap();
            }
            let (t, cpu) = (Instant::now(), cpu_time());
            let loads = (0..sleds).map(|i| rack.load_latest_secret(i, LIMIT));
            for loaded in futures_util::future::join_all(loads).await {
                loaded.unwrap().unwrap();
            }
            row.unlock.push(t.elapsed());
            row.unlock_cpu.push(cpu_time() - cpu);
        }
        row.ledger_len = file_len(&rack.sleds[0].ledger_paths()[0]);
        row.nexus_len = file_len(nexus.driver.state_file().path());
        rack.shutdown().await;
    }
    row
}

fn main() {
    // `cargo bench` passes `--bench`; a test run (`cargo test --benches`)
    // does not, and gets one quick 8-sled pass.
    let benching = std::env::args().any(|a| a == "--bench");
    // Rack sizes may be named: `cargo bench -p tq-std --bench rack -- 32`.
    let named: Vec<usize> = std::env::args().filter_map(|a| a.parse().ok()).collect();
    let sizes: &[usize] = match (benching, named.is_empty()) {
        (_, false) => &named,
        (true, true) => &[8, 32],
        (false, true) => &[8],
    };
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
    let rows: Vec<(usize, Row, DurableWrites)> = sizes
        .iter()
        .map(|&sleds| {
            let row = runtime.block_on(measure(sleds));
            let writes =
                runtime.block_on(DurableWrites::measure(sleds, row.ledger_len, row.nexus_len));
            (sleds, row, writes)
        })
        .collect();

    println!("Durable writes on this disk (median of {WRITES}):");
    println!();
    println!(
        "| sleds | ledger write, both copies (ms): one sled, every sled at once | audit append (ms): one, every | Nexus state file (ms) | reconfiguration floor (ms) | unlock floor (ms) |"
    );
    println!("|---|---|---|---|---|---|");
    for (sleds, _, writes) in &rows {
        println!(
            "| {sleds} | {}, {} | {}, {} | {} | {} | {} |",
            ms2(writes.ledger),
            ms2(writes.ledger_all),
            ms2(writes.audit),
            ms2(writes.audit_all),
            ms2(writes.nexus),
            ms2(writes.reconfiguration_floor()),
            ms2(writes.unlock_floor()),
        );
    }
    println!();
    println!(
        "| sleds | LRTQ upgrade (ms) | × floor | reconfiguration (ms): accepted + prepared + confirmed | × floor | goal: 1.5 × floor + 2 ms | unlock (ms) | × floor | unlock CPU time (ms) | messages / reconfiguration | bytes / reconfiguration | RSS per sled task (KiB) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (sleds, row, writes) in &rows {
        let times = |v: &[Duration], floor: Duration| {
            format!("{:.1}", median(v).0.as_secs_f64() / floor.as_secs_f64())
        };
        let reconfiguration_floor = writes.reconfiguration_floor();
        let (accept, ..) = median(&row.accept);
        let (prepare, ..) = median(&row.prepare);
        let (commit, ..) = median(&row.commit);
        let (messages, ..) = median(&row.messages);
        let (bytes, ..) = median(&row.bytes);
        // The first rack's: later racks reuse memory the allocator kept.
        let (_, _, rss) = median(&row.rss_per_sled_kib);
        println!(
            "| {sleds} | {} | {} | {}: {} + {} + {} | {} | {} | {} | {} | {} | {messages} | {bytes} | {rss} |",
            span(&row.upgrade),
            times(&row.upgrade, reconfiguration_floor),
            span(&row.reconfigure),
            ms(accept),
            ms(prepare),
            ms(commit),
            times(&row.reconfigure, reconfiguration_floor),
            ms(reconfiguration_floor.mul_f64(1.5) + Duration::from_millis(2)),
            span(&row.unlock),
            times(&row.unlock, writes.unlock_floor()),
            ms(median(&row.unlock_cpu).0),
        );
    }
}

fn ms2(d: Duration) -> String {
    format!("{:.2}", d.as_secs_f64() * 1e3)
}
