//! The key manager's rules on a live node (a rack of node tasks over
//! loopback TLS, driven to a commit by tq-nexus's machine), with a
//! `command` backend that records the key it is given: a new key only
//! where no key file exists, a copy that is there but unreadable stops the
//! disk instead of orphaning its key, a wrapping that does not open is
//! refused and counted, and one bad copy is repaired from the other.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::nexus::Driver;
use common::rack::Rack;
use tq_core::ids::Epoch;
use tq_nexus::Origin;
use tq_std::disks::{
    self, Backend, DiskReport, DiskSpec, DiskState, DisksConfig, KeyFormat, keyfile,
};

const LIMIT: Duration = Duration::from_secs(30);

/// A disk whose backend writes its standard input to `out` (a new file
/// each time, numbered).
fn recording_disk(out: &Path) -> DiskSpec {
    DiskSpec {
        name: "data".into(),
        serial: "SERIAL-1".into(),
        backend: Backend::Command {
            unlock: vec![
                "sh".into(),
                "-c".into(),
                format!("n=$(ls {0} | wc -l); cat > {0}/key-$n", out.display()),
            ],
            lock: None,
            timeout: Duration::from_secs(10),
            key_format: KeyFormat::Raw,
        },
    }
}

fn given_keys(out: &Path) -> Vec<Vec<u8>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(out)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect()
}

fn key_files(rack: &Rack, i: usize) -> [PathBuf; 2] {
    rack.sleds[i]
        .dirs
        .clone()
        .map(|d| d.join(keyfile::file_name("data")))
}

/// How long a manager retries a disk that cannot be opened before it
/// calls it failed: short, so that the cases ending `Failed` end soon.
/// The secret is in the node's hands before each manager starts (see
/// [`run_manager`]), so this is spent on the key files alone, not on
/// collecting shares, however slow the machine.
const FAIL_AFTER: Duration = Duration::from_secs(1);

/// Starts a manager on sled 0 and waits until `done` holds of its disk.
async fn run_manager(
    rack: &Rack,
    out: &Path,
    done: impl Fn(&DiskReport) -> bool,
) -> (disks::Disks, DiskReport) {
    let mut config = DisksConfig::new(vec![recording_disk(out)], rack.sleds[0].dirs.clone());
    config.unlock_deadline = FAIL_AFTER;
    let handle = rack.handle(0);
    // The node rebuilds the rack secret now and keeps it: on a loaded
    // machine, collecting the shares can take longer than FAIL_AFTER,
    // and the manager would then fail for want of the secret instead of
    // meeting the key files this test is about.
    handle
        .load_own_latest_secret(LIMIT)
        .await
        .unwrap()
        .expect("the rack secret");
    let manager = disks::start(handle, config).unwrap();
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let report = handle.disks().reports().remove(0);
        if done(&report) {
            return (manager, report);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "disk never got there: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keys_are_made_once_and_never_replaced_by_a_bad_copy() {
    let mut rack = Rack::new(0, 4, 51);
    rack.start_all().await;
    rack.wait_connected().await;
    let all: Vec<usize> = (0..4).collect();
    let mut nexus = Driver::new(Origin::Fresh, &rack.ids()).await;
    assert_eq!(nexus.start(&rack, &all, 2, 0).await, Epoch(1));
    nexus.settle(&rack, LIMIT).await;
    let out = tempfile::tempdir().unwrap();
    let files = key_files(&rack, 0);

    // First sight: a new key, wrapped on both copies before the backend
    // sees it.
    let (manager, report) =
        run_manager(&rack, out.path(), |r| r.state == DiskState::Unlocked).await;
    assert_eq!(report.wrapped_epoch, Some(Epoch(1)));
    assert_eq!(report.stats.unlock_attempts, 1);
    manager.stop().await;
    let keys = given_keys(out.path());
    assert_eq!(keys.len(), 1);
    let good = std::fs::read(&files[0]).unwrap();
    assert_eq!(std::fs::read(&files[1]).unwrap(), good);

    // One copy corrupt: opened from the other, counted, and repaired.
    std::fs::write(&files[1], b"not a key file").unwrap();
    let (manager, report) =
        run_manager(&rack, out.path(), |r| r.state == DiskState::Unlocked).await;
    manager.stop().await;
    assert_eq!(report.stats.bad_copies, 1);
    assert_eq!(given_keys(out.path())[1], keys[0]);
    assert!(keyfile::decode(&std::fs::read(&files[1]).unwrap()).is_ok());

    // Every copy there but none valid: failed, and no new key is made.
    std::fs::write(&files[0], b"junk").unwrap();
    std::fs::write(&files[1], b"junk").unwrap();
    let (manager, report) = run_manager(&rack, out.path(), |r| {
        matches!(r.state, DiskState::Failed(_))
    })
    .await;
    manager.stop().await;
    let DiskState::Failed(why) = &report.state else {
        panic!("{report:?}")
    };
    assert!(why.contains("no key file copy is valid"), "{why}");
    assert_eq!(std::fs::read(&files[0]).unwrap(), b"junk", "left as found");
    assert_eq!(
        given_keys(out.path()).len(),
        2,
        "the backend was not called"
    );

    // A wrapping altered under a valid checksum: refused and counted.
    let mut wrappings = keyfile::decode(&good).unwrap();
    wrappings[0].sealed[3] ^= 0x40;
    let altered = keyfile::encode(&wrappings);
    std::fs::write(&files[0], &altered).unwrap();
    std::fs::write(&files[1], &altered).unwrap();
    let (manager, report) = run_manager(&rack, out.path(), |r| {
        matches!(r.state, DiskState::Failed(_))
    })
    .await;
    manager.stop().await;
    assert!(report.stats.wrappings_refused >= 1, "{report:?}");
    assert!(
        matches!(&report.state, DiskState::Failed(why) if why.contains("does not open")),
        "{report:?}"
    );
    assert_eq!(given_keys(out.path()).len(), 2);

    // The good file back: the same key again.
    std::fs::write(&files[0], &good).unwrap();
    let (manager, _) = run_manager(&rack, out.path(), |r| r.state == DiskState::Unlocked).await;
    manager.stop().await;
    let keys_now = given_keys(out.path());
    assert_eq!(keys_now.len(), 3);
    assert!(keys_now.iter().all(|k| k == &keys[0]));
    rack.shutdown().await;
}

/// Waits until sled 0's disk report satisfies `done`.
async fn wait_for_disk(rack: &Rack, done: impl Fn(&DiskReport) -> bool) -> DiskReport {
    let deadline = tokio::time::Instant::now() + LIMIT;
    loop {
        let report = rack.handle(0).disks().reports().remove(0);
        if done(&report) {
            return report;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "disk never got there: {report:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The single wrapping both key file copies of sled 0 hold.
fn only_wrapping(rack: &Rack) -> disks::wrap::Wrapping {
    let files = key_files(rack, 0);
    let bytes = std::fs::read(&files[0]).unwrap();
    assert_eq!(std::fs::read(&files[1]).unwrap(), bytes, "copies agree");
    let mut wrappings = keyfile::decode(&bytes).unwrap();
    assert_eq!(wrappings.len(), 1, "{wrappings:?}");
    wrappings.remove(0)
}

/// A sled of an LRTQ rack not yet upgraded unlocks its disk from the LRTQ
/// secret (epoch 1, the one rack setup made with vsss-rs); the upgrade's
/// commit re-wraps it under epoch 2 like any commit, and after a restart
/// it opens from epoch 2 with the same key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lrtq_sled_unlocks_before_the_upgrade_and_rewraps_on_its_commit() {
    let mut rack = Rack::new(4, 0, 52);
    rack.start_all().await;
    rack.wait_connected().await;
    let out = tempfile::tempdir().unwrap();
    let serial = recording_disk(out.path()).serial;

    // Before the upgrade: unlocked under epoch 1, the LRTQ secret.
    let (manager, report) =
        run_manager(&rack, out.path(), |r| r.state == DiskState::Unlocked).await;
    assert_eq!(report.wrapped_epoch, Some(Epoch(1)));
    let keys = given_keys(out.path());
    assert_eq!(keys.len(), 1);
    let epoch_1 = rack
        .handle(0)
        .load_rack_secret(Epoch(1))
        .await
        .unwrap()
        .unwrap()
        .expect("the LRTQ secret is loaded");
    assert!(epoch_1.is(rack.lrtq_secret.as_ref().unwrap()));
    let wrapped = only_wrapping(&rack);
    assert_eq!(wrapped.epoch, Epoch(1));
    let key = disks::wrap::unwrap(&wrapped, &epoch_1, serial.as_bytes()).unwrap();
    assert_eq!(key.expose().as_slice(), keys[0].as_slice());

    // The upgrade commits: the disk is re-wrapped to epoch 2, not reopened.
    let all: Vec<usize> = (0..4).collect();
    let mut nexus = Driver::new(Origin::Lrtq, &rack.ids()).await;
    assert_eq!(nexus.start(&rack, &all, 3, 0).await, Epoch(2));
    nexus.settle(&rack, LIMIT).await;
    let report = wait_for_disk(&rack, |r| r.wrapped_epoch == Some(Epoch(2))).await;
    assert_eq!(report.state, DiskState::Unlocked);
    assert_eq!(report.stats.rewraps, 1);
    assert_eq!(only_wrapping(&rack).epoch, Epoch(2));
    assert_eq!(
        given_keys(out.path()).len(),
        1,
        "the backend was not called again"
    );
    manager.stop().await;

    // After a restart of the sled: opened from epoch 2, the same key.
    rack.shutdown().await;
    rack.start_all().await;
    rack.wait_connected().await;
    let (manager, report) =
        run_manager(&rack, out.path(), |r| r.state == DiskState::Unlocked).await;
    manager.stop().await;
    assert_eq!(report.wrapped_epoch, Some(Epoch(2)));
    assert_eq!(report.stats.rewraps, 0);
    let keys_now = given_keys(out.path());
    assert_eq!(keys_now.len(), 2);
    assert!(keys_now.iter().all(|k| k == &keys[0]));
    assert_eq!(only_wrapping(&rack).epoch, Epoch(2));
    rack.shutdown().await;
}
