//! Disks that unlock: a rack of real `tq sled` processes, each with an
//! encrypted disk whose backend is a `command` that records the key it is
//! given (in a directory of the test's, outside every sled's), through
//! crashes in the middle of re-wraps, a sled that misses two commits, an
//! expunged sled, and a search of everything the sleds wrote and answered
//! for the keys. `fscrypt` for real on a loop-mounted ext4 (root only,
//! else a SKIPPED line), through a cold boot.
//!
//! Trials of the crash test: `TQ_DISK_CRASH_TRIALS` (default 30, about
//! ten seconds; about half catch the key files mid-re-wrap); the
//! random delays come from `TQ_DISK_CRASH_SEED` (default: the clock), which
//! a failure prints.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::fs::{self, File};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use common::*;
use tq::api::types::{Disk, DiskStatus};
use tq::demo::layout::{Addressing, addresses};
use tq_core::api::{CommitRequest, ReconfigureMsg};
use tq_core::config::Configuration;
use tq_core::ids::Epoch;
use tq_core::node::CoordinatorPhase;
use tq_rack_setup::layout::{LEDGER_DIRS, SledConfigFile, SledDir};
use tq_std::disks::keyfile;

/// A `tq sled` process, killed (SIGKILL) when dropped.
struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The scripts the `command` backend runs: `unlock DIR` stores its
/// standard input as a new file in DIR; `lock DIR` leaves a mark there.
struct Recorder {
    root: tempfile::TempDir,
}

impl Recorder {
    fn new() -> Self {
        let root = tempfile::tempdir().unwrap();
        let script = |name: &str, body: &str| {
            let path = root.path().join(name);
            fs::write(&path, format!("#!/bin/sh\nset -e\n{body}\n")).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        };
        script(
            "unlock",
            r#"f="$1/$(date +%s%N)-$$.key"; cat > "$f.part"; mv "$f.part" "$f""#,
        );
        script("lock", r#": > "$1/$(date +%s%N)-$$.locked""#);
        Self { root }
    }

    fn dir(&self, sled: usize) -> PathBuf {
        let dir = self.root.path().join(format!("sled-{sled}"));
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// The keys sled `i`'s backend was given, oldest first.
    fn keys(&self, sled: usize) -> Vec<Vec<u8>> {
        let mut names: Vec<PathBuf> = fs::read_dir(self.dir(sled))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "key"))
            .collect();
        names.sort();
        names.into_iter().map(|p| fs::read(p).unwrap()).collect()
    }

    fn locks(&self, sled: usize) -> usize {
        fs::read_dir(self.dir(sled))
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .path()
                    .extension()
                    .is_some_and(|x| x == "locked")
            })
            .count()
    }

    /// The `[[disks]]` text of sled `i`.
    fn disk_toml(&self, sled: usize) -> String {
        let dir = self.dir(sled);
        format!(
            "\n[disk_unlock]\ndeadline_secs = 60\n\n[[disks]]\nname = \"data\"\nserial = \"DISK-{sled}\"\nbackend = \"command\"\nunlock = [\"{}\", \"{}\"]\nlock = [\"{}\", \"{}\"]\ntimeout_ms = 10000\n",
            self.root.path().join("unlock").display(),
            dir.display(),
            self.root.path().join("lock").display(),
            dir.display(),
        )
    }
}

/// A rack of `tq sled` processes on fixed loopback addresses, each
/// sled's TOML file with every other sled and `disk_toml(i)` appended.
struct Processes {
    rack: Rack,
    procs: Vec<Option<Process>>,
}

impl Processes {
    fn new(n: usize, seed: u64, disk_toml: impl Fn(usize) -> String) -> Self {
        let mut rack = Rack::new(0, n, seed);
        let addrs = addresses(&Addressing::Loopback, n).unwrap();
        for i in 0..n {
            let config = SledConfigFile {
                lrtq: false,
                peer_listen: addrs[i].0,
                api_listen: addrs[i].1,
                peers: (0..n)
                    .filter(|&j| j != i)
                    .map(|j| (rack.sleds[j].id.clone(), addrs[j].0))
                    .collect(),
            };
            let path = SledDir::new(&rack.sleds[i].dir)
                .write_config(&config)
                .unwrap();
            let mut text = fs::read_to_string(&path).unwrap();
            text.push_str(&disk_toml(i));
            fs::write(&path, text).unwrap();
            rack.sleds[i].api_addr = Some(addrs[i].1);
        }
        let procs = (0..n).map(|_| None).collect();
        Self { rack, procs }
    }

    fn log(&self, i: usize) -> PathBuf {
        self.rack.sleds[i].dir.join("sled.log")
    }

    fn start(&mut self, i: usize) {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log(i))
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_tq"))
            .args(["sled", "--config"])
            .arg(&self.rack.sleds[i].config_path)
            .env("TQ_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.procs[i] = Some(Process(child));
    }

    /// SIGKILL: no clean-up of any kind.
    fn kill(&mut self, i: usize) {
        self.procs[i] = None;
    }

    async fn wait_api(&self, i: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.rack.client(i).status().await.is_err() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "sled {i}'s API did not answer; its log: {}",
                fs::read_to_string(self.log(i)).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn disk(&self, i: usize) -> Disk {
        let status = self.rack.client(i).status().await.unwrap().into_inner();
        assert_eq!(status.disks.len(), 1, "sled {i}");
        status.disks.into_iter().next().unwrap()
    }

    /// Waits until sled `i`'s (fscrypt) disk is unlocked.
    async fn wait_unlocked_fscrypt(&self, i: usize) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let disk = self.disk(i).await;
            if disk.state == DiskStatus::Unlocked {
                assert_eq!(disk.backend, "fscrypt");
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "sled {i}'s fscrypt disk: {disk:?}; see {}",
                self.log(i).display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until sled `i`'s disk is unlocked with its key wrapped under
    /// `epoch` (and nothing else).
    async fn wait_unlocked_at(&self, i: usize, epoch: Epoch) {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let disk = self.disk(i).await;
            if disk.state == DiskStatus::Unlocked
                && disk.wrapped_epoch == Some(epoch)
                && key_file_epochs(&self.rack, i) == [vec![epoch], vec![epoch]]
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "sled {i}'s disk not unlocked at epoch {epoch}: {disk:?}, files {:?}; see {}",
                key_file_epochs(&self.rack, i),
                self.log(i).display()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// The epochs of the wrappings in each copy of sled `i`'s key file (empty
/// for a copy that is absent or invalid).
fn key_file_epochs(rack: &Rack, i: usize) -> Vec<Vec<Epoch>> {
    LEDGER_DIRS
        .iter()
        .map(|dir| {
            let path = rack.sleds[i].dir.join(dir).join(keyfile::file_name("data"));
            fs::read(path)
                .ok()
                .and_then(|bytes| keyfile::decode(&bytes).ok())
                .map(|ws| ws.iter().map(|w| w.epoch).collect())
                .unwrap_or_default()
        })
        .collect()
}

/// Starts a reconfiguration to `epoch` on `coordinator` and waits until
/// every sled of `acking` acked its Prepare; returns the configuration.
async fn prepare(
    rack: &Rack,
    coordinator: usize,
    epoch: Epoch,
    last: Option<Epoch>,
    member_sleds: &[usize],
    acking: &[usize],
    k: u8,
) -> Configuration {
    rack.nexus(coordinator)
        .reconfigure(&ReconfigureMsg {
            rack_id: RACK_ID,
            epoch,
            last_committed_epoch: last,
            members: members(rack, member_sleds),
            threshold: threshold(k),
        })
        .await
        .unwrap();
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
            && acking
                .iter()
                .all(|&i| status.acked.contains(&rack.sleds[i].id))
        {
            return status.config.unwrap();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "epoch {epoch}: not every member acked"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Commits `config` on sled `i` as Nexus does: `commit`, or
/// `prepare_and_commit` if it missed the prepare.
async fn commit(rack: &Rack, i: usize, config: &Configuration) {
    let request = CommitRequest {
        rack_id: RACK_ID,
        epoch: config.epoch(),
    };
    if rack.nexus(i).commit(&request).await.is_err() {
        rack.nexus(i)
            .prepare_and_commit(config)
            .await
            .unwrap_or_else(|e| panic!("sled {i}: prepare_and_commit: {e}"));
    }
}

/// A small deterministic generator for the kill delays.
struct XorShift(u64);

impl XorShift {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn seed() -> u64 {
    std::env::var("TQ_DISK_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos() as u64
                | 1
        })
}

/// Every place a key must not be: every file under `dir`.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else {
            out.push(path);
        }
    }
    out
}

/// The key's spellings a leak could take: raw, and hex either case.
fn spellings(key: &[u8]) -> Vec<Vec<u8>> {
    let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        key.to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
    ]
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The bytes of `path` on sled `i`'s API, over its HTTPS.
async fn get_text(rack: &Rack, i: usize, path: &str) -> Vec<u8> {
    rack.http(i)
        .get(format!("{}{path}", rack.base_url(i)))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .to_vec()
}

/// Four sleds, one disk each: first unlock at the first commit; kill -9
/// of a sled at random points of its re-wrap, many times, each restart
/// opening the disk with the same key; a sled down during two commits
/// catching up; an expunged sled staying locked; and no key anywhere the
/// sleds wrote or answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disk_keys_survive_crashes_catch_up_and_die_with_expungement() {
    const N: usize = 4;
    let recorder = Recorder::new();
    let mut rack = Processes::new(N, 41, |i| recorder.disk_toml(i));
    for i in 0..N {
        rack.start(i);
    }
    for i in 0..N {
        rack.wait_api(i).await;
    }
    rack.rack.wait_connected().await;
    // Nothing committed: locked, waiting.
    let disk = rack.disk(0).await;
    assert!(
        matches!(disk.state, DiskStatus::Unlocking { .. }),
        "{disk:?}"
    );
    assert!(recorder.keys(0).is_empty());

    let all: Vec<usize> = (0..N).collect();
    let config = prepare(&rack.rack, 0, Epoch(1), None, &all, &all, 2).await;
    for i in 0..N {
        commit(&rack.rack, i, &config).await;
    }
    for i in 0..N {
        rack.wait_unlocked_at(i, Epoch(1)).await;
    }
    let keys: Vec<Vec<u8>> = (0..N)
        .map(|i| {
            let keys = recorder.keys(i);
            assert_eq!(keys.len(), 1, "sled {i} unlocked once");
            assert_eq!(keys[0].len(), 32, "a raw 32-byte key");
            keys[0].clone()
        })
        .collect();
    for i in 1..N {
        assert_ne!(keys[i], keys[0], "each disk has its own key");
    }

    // kill -9 in the middle of re-wraps.
    let trials: u64 = std::env::var("TQ_DISK_CRASH_TRIALS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let seed = seed();
    let mut rng = XorShift(seed);
    let mut epoch = Epoch(1);
    let mut caught_mid_rewrap = 0;
    let started = std::time::Instant::now();
    for trial in 0..trials {
        let victim = (trial as usize) % N;
        let coordinator = (victim + 1) % N;
        let next = Epoch(epoch.0 + 1);
        let config = prepare(&rack.rack, coordinator, next, Some(epoch), &all, &all, 2).await;
        for i in (0..N).filter(|&i| i != victim) {
            commit(&rack.rack, i, &config).await;
        }
        commit(&rack.rack, victim, &config).await;
        // The re-wrap starts as the commit is stored: kill somewhere in it.
        let delay = rng.below(40);
        tokio::time::sleep(Duration::from_millis(delay)).await;
        rack.kill(victim);
        let files = key_file_epochs(&rack.rack, victim);
        if files != [vec![next], vec![next]] {
            caught_mid_rewrap += 1;
        }
        for (copy, epochs) in files.iter().enumerate() {
            assert!(
                epochs.iter().any(|&e| e == epoch || e == next),
                "trial {trial} (seed {seed}): copy {copy} of sled {victim} holds {files:?}"
            );
        }
        rack.start(victim);
        rack.wait_api(victim).await;
        for i in 0..N {
            rack.wait_unlocked_at(i, next).await;
        }
        let given = recorder.keys(victim);
        assert!(given.len() >= 2, "sled {victim} unlocked again");
        for key in &given {
            assert_eq!(
                key, &keys[victim],
                "trial {trial} (seed {seed}): sled {victim} opened with another key"
            );
        }
        epoch = next;
    }
    println!(
        "{trials} kill -9 trials in {:?} (seed {seed}): {caught_mid_rewrap} caught the key files mid-re-wrap",
        started.elapsed()
    );

    // Sled 3 down during two commits.
    let late = 3;
    rack.kill(late);
    let up: Vec<usize> = vec![0, 1, 2];
    let missed = epoch;
    for _ in 0..2 {
        let next = Epoch(epoch.0 + 1);
        let config = prepare(&rack.rack, 0, next, Some(epoch), &all, &up, 2).await;
        for &i in &up {
            commit(&rack.rack, i, &config).await;
        }
        epoch = next;
    }
    assert_eq!(
        key_file_epochs(&rack.rack, late),
        [vec![missed], vec![missed]]
    );
    let before = recorder.keys(late).len();
    rack.start(late);
    rack.wait_api(late).await;
    let latest = prepare_and_commit_latest(&rack.rack, late, &up, epoch).await;
    assert_eq!(latest, epoch);
    rack.wait_unlocked_at(late, epoch).await;
    let given = recorder.keys(late);
    assert_eq!(given.len(), before + 1);
    assert!(given.iter().all(|k| k == &keys[late]));

    // Sled 3 expunged: its disk locks and its keys go.
    let remaining = vec![0, 1, 2];
    let next = Epoch(epoch.0 + 1);
    let config = prepare(&rack.rack, 1, next, Some(epoch), &remaining, &remaining, 2).await;
    for &i in &remaining {
        commit(&rack.rack, i, &config).await;
    }
    epoch = next;
    for &i in &remaining {
        rack.wait_unlocked_at(i, epoch).await;
    }
    rack.kill(late);
    let unlocked_before = recorder.keys(late).len();
    rack.start(late);
    rack.wait_api(late).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let disk = rack.disk(late).await;
        if let DiskStatus::Locked { reason } = &disk.state
            && reason.contains("expunged")
        {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the expunged sled's disk: {disk:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(key_file_epochs(&rack.rack, late), [vec![], vec![]]);
    for dir in LEDGER_DIRS {
        assert!(
            !rack.rack.sleds[late]
                .dir
                .join(dir)
                .join(keyfile::file_name("data"))
                .exists()
        );
    }
    assert!(recorder.locks(late) >= 1, "the backend was locked");
    // And stays so across a restart.
    rack.kill(late);
    rack.start(late);
    rack.wait_api(late).await;
    // Polled, not read once after a fixed pause: how soon the new manager
    // hears it is expunged is the machine's speed; that it ends locked
    // as expunged (and the backend never called, below) is the check.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let disk = rack.disk(late).await;
        if matches!(&disk.state, DiskStatus::Locked { reason } if reason.contains("expunged")) {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "{disk:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(recorder.keys(late).len(), unlocked_before);

    // No key in any answer, metric, log or file of any sled.
    let mut haystacks: Vec<(String, Vec<u8>)> = Vec::new();
    for i in 0..N {
        haystacks.push((
            format!("sled {i} /v1/status"),
            get_text(&rack.rack, i, "/v1/status").await,
        ));
        haystacks.push((
            format!("sled {i} /metrics"),
            get_text(&rack.rack, i, "/metrics").await,
        ));
    }
    rack.procs.clear();
    for path in files_under(rack.rack.root.path()) {
        haystacks.push((path.display().to_string(), fs::read(&path).unwrap()));
    }
    assert!(
        haystacks.len() > 4 * N,
        "{} places searched",
        haystacks.len()
    );
    for (i, key) in keys.iter().enumerate() {
        for spelling in spellings(key) {
            for (place, bytes) in &haystacks {
                assert!(!contains(bytes, &spelling), "sled {i}'s key in {place}");
            }
        }
    }
    // The search finds a key where there is one.
    assert!(contains(&recorder.keys(0)[0], &keys[0]));
}

/// Brings a sled that missed commits up to `latest` as Nexus would
/// (`prepare_and_commit` with the latest configuration, from a member's
/// coordinator status is not needed: its own status tells when it has
/// caught up by itself); returns its latest committed epoch.
async fn prepare_and_commit_latest(rack: &Rack, late: usize, up: &[usize], latest: Epoch) -> Epoch {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let status = rack.client(late).status().await.unwrap().into_inner();
        if status.node.state.latest_committed == Some(latest) {
            return latest;
        }
        // The coordinator of `latest` still has its configuration.
        if let Some(config) = rack
            .nexus(up[0])
            .coordinator_status()
            .await
            .unwrap()
            .into_inner()
            .and_then(|s| s.config)
            .filter(|c| c.epoch() == latest)
        {
            let _ = rack.nexus(late).prepare_and_commit(&config).await;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "sled {late} did not catch up to {latest}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// fscrypt for real: three sleds, each disk a directory of one
/// loop-mounted ext4 (`-O encrypt`). Each sled writes a file once its disk
/// is unlocked; the rack is killed and the file system remounted (the
/// kernel forgets its keys, as at a power cycle): every directory is
/// locked, its names unreadable; the sleds come back, unlock, and every
/// file reads back intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fscrypt_directories_lock_at_a_cold_boot_and_unlock_with_the_rack() {
    const N: usize = 3;
    let Some(fs) = tq_test_fixtures::loopfs::LoopFs::new() else {
        return;
    };
    let vault = |i: usize| fs.path().join(format!("sled-{i}"));
    for i in 0..N {
        fs::create_dir(vault(i)).unwrap();
    }
    let mut rack = Processes::new(N, 43, |i| {
        format!(
            "\n[[disks]]\nname = \"vault\"\nserial = \"VAULT-{i}\"\nbackend = \"fscrypt\"\ndir = \"{}\"\n",
            vault(i).display()
        )
    });
    for i in 0..N {
        rack.start(i);
    }
    for i in 0..N {
        rack.wait_api(i).await;
    }
    rack.rack.wait_connected().await;
    let all: Vec<usize> = (0..N).collect();
    let config = prepare(&rack.rack, 0, Epoch(1), None, &all, &all, 2).await;
    for i in 0..N {
        commit(&rack.rack, i, &config).await;
    }
    for i in 0..N {
        rack.wait_unlocked_fscrypt(i).await;
        fs::write(vault(i).join("note.txt"), format!("sled {i} was here")).unwrap();
    }

    // Power cut: every process killed, every key out of the kernel.
    rack.procs.iter_mut().for_each(|p| *p = None);
    fs.remount();
    for i in 0..N {
        let names: Vec<String> = fs::read_dir(vault(i))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names.len(), 1);
        assert_ne!(names[0], "note.txt", "sled {i}'s directory is locked");
        assert!(fs::read(vault(i).join(&names[0])).is_err());
    }

    // Cold boot: the rack comes back and every directory opens.
    for i in 0..N {
        rack.start(i);
    }
    for i in 0..N {
        rack.wait_api(i).await;
    }
    for i in 0..N {
        rack.wait_unlocked_fscrypt(i).await;
        assert_eq!(
            fs::read_to_string(vault(i).join("note.txt")).unwrap(),
            format!("sled {i} was here")
        );
    }
    rack.procs.clear();
}

/// Not a test but the benchmark (ignored unless asked for): for a fresh
/// rack of `tq sled` processes of 8 and of 32 sleds with one `command`
/// disk each, committed at epoch 1, then killed and started again all at
/// once (a cold boot), the time from each process's start to its disk
/// unlocked. Prints a table:
///
/// ```text
/// cargo test -p tq --test disks -- --ignored --nocapture cold_boot_unlock_times
/// ```
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a benchmark: run it by name"]
async fn cold_boot_unlock_times() {
    let mut rows = Vec::new();
    for n in [8usize, 32] {
        let recorder = Recorder::new();
        let mut rack = Processes::new(n, 47, |i| recorder.disk_toml(i));
        for i in 0..n {
            rack.start(i);
        }
        for i in 0..n {
            rack.wait_api(i).await;
        }
        rack.rack.wait_connected().await;
        let all: Vec<usize> = (0..n).collect();
        let k = u8::try_from(n / 2 + 1).unwrap();
        let config = prepare(&rack.rack, 0, Epoch(1), None, &all, &all, k).await;
        for i in 0..n {
            commit(&rack.rack, i, &config).await;
        }
        for i in 0..n {
            rack.wait_unlocked_at(i, Epoch(1)).await;
        }
        // Cold boot.
        rack.procs.iter_mut().for_each(|p| *p = None);
        let start = tokio::time::Instant::now();
        for i in 0..n {
            rack.start(i);
        }
        let mut times = vec![None; n];
        while times.iter().any(Option::is_none) {
            for (i, time) in times.iter_mut().enumerate() {
                if time.is_some() {
                    continue;
                }
                if let Ok(status) = rack.rack.client(i).status().await
                    && status.disks.iter().all(|d| d.state == DiskStatus::Unlocked)
                {
                    *time = Some(start.elapsed());
                }
            }
            assert!(start.elapsed() < WAIT * 4, "cold boot of {n} sleds");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let mut times: Vec<Duration> = times.into_iter().flatten().collect();
        times.sort();
        rows.push((n, times[0], times[n / 2], times[n - 1]));
        rack.procs.clear();
    }
    println!("| sleds | first unlocked | median | last unlocked |");
    println!("|---|---|---|---|");
    for (n, first, median, last) in rows {
        println!("| {n} | {first:.2?} | {median:.2?} | {last:.2?} |");
    }
}
