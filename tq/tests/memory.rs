//! What a `tq sled` process keeps in its memory: a rack of real `tq sled`
//! processes goes through an LRTQ upgrade, a reconfiguration and an
//! unlock, then every process's memory is read through `/proc/PID/maps`
//! and `/proc/PID/mem` and searched for every share's 32 y bytes, every
//! LRTQ share's scalar and every rack secret the test can know. Each
//! process must also be undumpable with a core limit of 0.
//!
//! What a process may legitimately hold, and so is not asserted absent:
//!
//! - its own shares, of every epoch in its ledger, and its own LRTQ share:
//!   they are its persistent state, which the node context keeps;
//! - the secret it loaded (the unlocking sled's epoch-3 secret) and the
//!   older secrets that epoch carries, which the loader decrypts and keeps.
//!
//! Everything else is asserted absent. That includes a share another sled
//! sent it over the peer network: once the node has taken it, no buffer
//! may keep it, neither our frames nor the TLS layer's (see tq-std's crate
//! doc, on zeroization); such finds are named "received over TLS" in the
//! failure. One place is left out for received shares only: a thread's
//! stack (the mapping a thread's stack pointer is in), where the node's
//! handling of a decoded share leaves copies in dead stack frames that no buffer
//! zeroization reaches; those are reported, not asserted. A coordinator makes
//! every member's share of its new epoch and sends each in a Prepare, and
//! receives none of them: once the epoch is committed, no other member's
//! share of it may remain in the coordinator's memory (its encode buffer,
//! its frames and its connections' write buffers held the last Prepares).
//!
//! The scenario is scripted so that who receives what is known: every
//! member acks the Prepare before anyone commits (so no member computes
//! its share from others'), and one sled that coordinated nothing unlocks.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::collections::BTreeSet;
use std::fs::File;
use std::io::BufRead;
use std::os::unix::fs::FileExt;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use tq::api::types::SecretFingerprintRequest;
use tq::demo::layout::{Addressing, addresses};
use tq_core::api::{CommitRequest, LrtqUpgradeMsg, ReconfigureMsg};
use tq_core::crypto::{Share, combine};
use tq_core::ids::Epoch;
use tq_core::node::CoordinatorPhase;
use tq_rack_setup::layout::{SledConfigFile, SledDir};

/// Sleds 0-3 are the LRTQ rack; sled 4 joins at epoch 3.
const SLEDS: usize = 5;
/// Coordinates the upgrade (epoch 2).
const UPGRADER: usize = 0;
/// Coordinates the reconfiguration (epoch 3).
const RECONFIGURER: usize = 1;
/// Unlocks (loads the epoch-3 secret).
const UNLOCKER: usize = 2;

/// A `tq sled` process, killed when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Rewrites every sled's TOML file with fixed addresses and every other
/// sled as a `[[peers]]` entry, and starts its `tq sled` process.
fn start_processes(rack: &mut Rack) -> Vec<Process> {
    let addrs = addresses(&Addressing::Loopback, SLEDS).unwrap();
    let mut processes = Vec::new();
    for i in 0..SLEDS {
        let sled = &rack.sleds[i];
        let config = SledConfigFile {
            lrtq: i < 4,
            peer_listen: addrs[i].0,
            api_listen: addrs[i].1,
            peers: (0..SLEDS)
                .filter(|&j| j != i)
                .map(|j| (rack.sleds[j].id.clone(), addrs[j].0))
                .collect(),
        };
        SledDir::new(&sled.dir).write_config(&config).unwrap();
        let log = File::create(sled.dir.join("sled.log")).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tq"))
            .args(["sled", "--config"])
            .arg(&sled.config_path)
            .env("TQ_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        processes.push(Process(child));
        rack.sleds[i].api_addr = Some(addrs[i].1);
    }
    processes
}

async fn wait_apis(rack: &Rack) {
    for i in 0..SLEDS {
        let deadline = tokio::time::Instant::now() + WAIT;
        while rack.client(i).status().await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "sled {i}'s API did not answer; see {}",
                rack.sleds[i].dir.join("sled.log").display()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// Waits until every member acked `coordinator`'s Prepare of `epoch`, then
/// commits every member with `commit`, and waits until all hold it.
async fn commit_after_every_ack(rack: &Rack, coordinator: usize, epoch: Epoch, members: &[usize]) {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = rack
            .nexus(coordinator)
            .coordinator_status()
            .await
            .unwrap()
            .into_inner();
        if let Some(status) = status
            && status.epoch == epoch
            && status.phase == CoordinatorPhase::Preparing
            && members
                .iter()
                .all(|&i| status.acked.contains(&rack.sleds[i].id))
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "epoch {epoch}: not every member acked"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let request = CommitRequest {
        rack_id: RACK_ID,
        epoch,
    };
    for &i in members {
        rack.nexus(i).commit(&request).await.unwrap();
    }
    wait_committed(rack, members, epoch).await;
}

/// One byte string to search for: whose it is, and which sleds may hold it.
struct Needle {
    name: String,
    bytes: Vec<u8>,
    /// Sleds that hold it legitimately (their own, or loaded).
    held_by: BTreeSet<usize>,
    /// Sleds that received it over TLS: must not hold it either; named
    /// apart so a failure says where a copy came from.
    received_by: BTreeSet<usize>,
}

/// One mapping of a process's memory.
struct Region {
    bytes: Vec<u8>,
    /// Some thread's stack pointer is in it.
    stack: bool,
}

/// The stack pointer of every thread of `pid` that is in a system call
/// (`/proc/PID/task/TID/syscall`: number, six arguments, sp, pc). An idle
/// sled's threads all wait in one.
fn stack_pointers(pid: u32) -> Vec<u64> {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Vec::new();
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("syscall")).ok())
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let sp = fields.len().checked_sub(2).and_then(|i| fields.get(i))?;
            u64::from_str_radix(sp.strip_prefix("0x")?, 16).ok()
        })
        .collect()
}

/// A process's memory, region by region: every readable mapping except
/// the kernel's (`[vvar]`, `[vsyscall]`...) and files mapped without
/// write access (code and read-only data of the binary and its libraries,
/// which hold nothing made at run time). `Err` if it cannot be read.
fn read_memory(pid: u32) -> Result<Vec<Region>, String> {
    let stack_pointers = stack_pointers(pid);
    let maps = std::fs::read_to_string(format!("/proc/{pid}/maps")).map_err(|e| e.to_string())?;
    let mem = File::open(format!("/proc/{pid}/mem")).map_err(|e| e.to_string())?;
    let mut regions = Vec::new();
    for line in maps.lines() {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (range, perms) = (fields[0], fields[1]);
        let path = fields.get(5).copied().unwrap_or("");
        let file_backed = path.starts_with('/');
        if !perms.starts_with('r')
            || (file_backed && !perms.contains('w'))
            || path.starts_with("[vvar")
            || path == "[vsyscall]"
        {
            continue;
        }
        let (start, end) = range.split_once('-').unwrap();
        let start = u64::from_str_radix(start, 16).unwrap();
        let end = u64::from_str_radix(end, 16).unwrap();
        let mut region = vec![0; (end - start) as usize];
        match mem.read_at(&mut region, start) {
            Ok(n) => {
                region.truncate(n);
                regions.push(Region {
                    bytes: region,
                    stack: stack_pointers.iter().any(|sp| (start..end).contains(sp)),
                });
            }
            // A region that went away or cannot be read (guard pages).
            Err(_) => continue,
        }
    }
    if regions.is_empty() {
        return Err("no region could be read".into());
    }
    Ok(regions)
}

/// Whether the kernel may refuse: outside CI, say so and skip; in CI,
/// fail.
fn cannot_read(why: &str) {
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("cannot read a sled's memory under CI: {why}");
    }
    println!("SKIPPED: cannot read a sled's memory ({why}); run as root");
}

/// `Max core file size` from `/proc/PID/limits`: soft and hard.
fn core_limit(pid: u32) -> String {
    let limits = std::fs::read_to_string(format!("/proc/{pid}/limits")).unwrap();
    let line = limits
        .lines()
        .find(|l| l.starts_with("Max core file size"))
        .unwrap();
    line.split_whitespace()
        .skip(4)
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_process_keeps_a_share_it_should_not_hold() {
    let mut rack = Rack::new(4, 1, 23);
    let processes = start_processes(&mut rack);
    wait_apis(&rack).await;
    rack.wait_connected().await;

    // Each process hardened itself before reading its keys.
    for (i, process) in processes.iter().enumerate() {
        let pid = process.0.id();
        assert_eq!(core_limit(pid), "0 0", "sled {i}'s core limit");
        let log = std::fs::File::open(rack.sleds[i].dir.join("sled.log")).unwrap();
        let said = std::io::BufReader::new(log)
            .lines()
            .map_while(Result::ok)
            .find(|l| l.contains("core dumps off"))
            .unwrap_or_else(|| panic!("sled {i} did not say it turned core dumps off"));
        assert!(said.contains("dumpable=false"), "sled {i}: {said}");
    }

    let all: Vec<usize> = (0..SLEDS).collect();
    let lrtq_members = [0, 1, 2, 3];
    rack.nexus(UPGRADER)
        .upgrade_from_lrtq(&LrtqUpgradeMsg {
            rack_id: RACK_ID,
            epoch: Epoch(2),
            members: members(&rack, &lrtq_members),
            threshold: threshold(3),
        })
        .await
        .unwrap();
    commit_after_every_ack(&rack, UPGRADER, Epoch(2), &lrtq_members).await;
    let shares2 = ledger_shares_of_sleds(&rack, &lrtq_members);

    rack.nexus(RECONFIGURER)
        .reconfigure(&ReconfigureMsg {
            rack_id: RACK_ID,
            epoch: Epoch(3),
            last_committed_epoch: Some(Epoch(2)),
            members: members(&rack, &all),
            threshold: threshold(3),
        })
        .await
        .unwrap();
    commit_after_every_ack(&rack, RECONFIGURER, Epoch(3), &all).await;
    let shares3 = ledger_shares_of_sleds(&rack, &all);

    let print = rack
        .nexus(UNLOCKER)
        .secret_fingerprint(&SecretFingerprintRequest {
            deadline_ms: 20_000,
            auth: None,
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(print.epoch, Epoch(3));

    // The needles, and who may hold each.
    let mut needles = Vec::new();
    let only = |sleds: &[usize]| sleds.iter().copied().collect::<BTreeSet<usize>>();
    for (i, data) in rack.lrtq_data.iter().enumerate() {
        needles.push(Needle {
            name: format!("sled {i}'s LRTQ scalar"),
            bytes: data.share.expose_bytes()[1..].to_vec(),
            held_by: only(&[i]),
            // The upgrade's coordinator collected them.
            received_by: only(&[UPGRADER]),
        });
    }
    let mut seen = BTreeSet::new();
    for (owner, epoch, share) in shares2.iter().chain(&shares3) {
        if !seen.insert((*owner, *epoch)) {
            continue;
        }
        let received_by = match epoch.0 {
            // The reconfiguration's coordinator collected epoch-2 shares.
            2 => only(&[RECONFIGURER]),
            // The unlocking sled collected epoch-3 shares.
            3 => only(&[UNLOCKER]),
            _ => BTreeSet::new(),
        };
        needles.push(Needle {
            name: format!("sled {owner}'s share of epoch {epoch}"),
            bytes: share.expose_y().to_vec(),
            held_by: only(&[*owner]),
            received_by,
        });
    }
    // The unlocking sled keeps every older secret its epoch carries (the
    // core's loader decrypts them, for disks still under older keys);
    // nobody else keeps any secret.
    needles.push(Needle {
        name: "the LRTQ secret".into(),
        bytes: rack.lrtq_secret.as_ref().unwrap().expose_secret().to_vec(),
        held_by: only(&[UNLOCKER]),
        received_by: BTreeSet::new(),
    });
    for (epoch, shares) in [(Epoch(2), &shares2), (Epoch(3), &shares3)] {
        let mut of_epoch: Vec<Share> = shares
            .iter()
            .filter(|(_, e, _)| *e == epoch)
            .map(|(_, _, s)| s.clone())
            .collect();
        of_epoch.sort_by_key(Share::x);
        of_epoch.dedup_by_key(|s| s.x());
        let secret = combine(&of_epoch[..3]).unwrap();
        if epoch == Epoch(3) {
            assert_eq!(
                print.fingerprint,
                tq_std::secrets::fingerprint(&secret, RACK_ID, epoch)
            );
        }
        needles.push(Needle {
            name: format!("the secret of epoch {epoch}"),
            bytes: secret.expose_secret().to_vec(),
            held_by: only(&[UNLOCKER]),
            received_by: BTreeSet::new(),
        });
    }
    assert_eq!(needles.len(), 4 + 4 + 5 + 3, "every share was read");

    // Search every process.
    let mut forbidden = Vec::new();
    for (i, process) in processes.iter().enumerate() {
        let regions = match read_memory(process.0.id()) {
            Ok(regions) => regions,
            Err(why) => return cannot_read(&why),
        };
        let bytes: usize = regions.iter().map(|r| r.bytes.len()).sum();
        assert!(bytes > 1 << 20, "sled {i}: only {bytes} bytes read");
        for needle in &needles {
            let finder = memchr::memmem::Finder::new(&needle.bytes);
            let hits_in = |stack: bool| -> usize {
                regions
                    .iter()
                    .filter(|r| r.stack == stack)
                    .map(|r| finder.find_iter(&r.bytes).count())
                    .sum()
            };
            let (on_stacks, elsewhere) = (hits_in(true), hits_in(false));
            let hits = on_stacks + elsewhere;
            if hits == 0 {
                continue;
            }
            let verdict = if needle.held_by.contains(&i) {
                "held"
            } else if needle.received_by.contains(&i) && elsewhere == 0 {
                "received, only on a thread's stack (not asserted)"
            } else if needle.received_by.contains(&i) {
                forbidden.push(format!(
                    "sled {i}: {} ({elsewhere}x off the stacks, received over TLS)",
                    needle.name
                ));
                "FORBIDDEN (received over TLS)"
            } else {
                forbidden.push(format!("sled {i}: {} ({hits}x)", needle.name));
                "FORBIDDEN"
            };
            println!(
                "sled {i} ({} MiB read): {} found {hits}x ({on_stacks}x on stacks): {verdict}",
                bytes >> 20,
                needle.name
            );
        }
        // The search finds what is there: its own current share.
        let own = needles
            .iter()
            .find(|n| n.name == format!("sled {i}'s share of epoch 3"))
            .unwrap();
        let finder = memchr::memmem::Finder::new(&own.bytes);
        assert!(
            regions.iter().any(|r| finder.find(&r.bytes).is_some()),
            "sled {i}'s own epoch-3 share was not found: the search is broken"
        );
    }
    drop(processes);
    assert!(
        forbidden.is_empty(),
        "found where it must not be: {forbidden:#?}"
    );
}

/// Every share in the ledgers of `sleds`, with its sled and epoch.
fn ledger_shares_of_sleds(rack: &Rack, sleds: &[usize]) -> Vec<(usize, Epoch, Share)> {
    sleds
        .iter()
        .flat_map(|&i| {
            ledger_shares_of(rack, i)
                .into_iter()
                .map(move |(e, s)| (i, e, s))
        })
        .collect()
}
