//! `tq nexus` and `tq status` as an operator runs them: each command its
//! own `tq` process, the rack's daemons serving their HTTP APIs on
//! loopback, Nexus's decisions carried from one process to the next by the
//! state file.
//!
//! An LRTQ rack of four sleds and one new sled. The upgrade is started
//! with a coordinator that is then killed, and the process driving it
//! gives up after its time limit: a later `tq nexus run` (a new driver,
//! from the state file) abandons the dead coordinator's epoch and commits
//! the retry with another one, and once the killed sled is back, tells it.
//! The new sled has no API address in the rack file: it is added, and
//! told of the commit, only through a member's proxy. One sled is
//! removed. `show` and `status` report it all; `status` of one sled
//! reads nothing from a sled whose certificate names another.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::path::Path;
use std::time::Duration;

use tq::demo::layout::{Addressing, Layout};
use tq::demo::sleds::{Launch, Sleds};
use tq_core::ids::Epoch;
use tq_driver::StateFile;
use tq_nexus::{Nexus, Timing};
use tq_rack_setup::layout::RACK_CA_FILE;
use tq_test_fixtures::pki::Ca;

const TQ: &str = env!("CARGO_BIN_EXE_tq");

/// Runs `tq args...`; its success, stdout and stderr.
async fn tq(args: &[&str]) -> (bool, String, String) {
    let out = tokio::process::Command::new(TQ)
        .args(args)
        .output()
        .await
        .unwrap();
    let text = |b: Vec<u8>| String::from_utf8(b).unwrap();
    (out.status.success(), text(out.stdout), text(out.stderr))
}

fn nexus(state: &Path) -> Nexus {
    let loaded = StateFile::new(state).load().unwrap().unwrap();
    Nexus::restore(loaded.state, Timing::default(), tq_nexus::Instant(0)).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nexus_commands_drive_a_rack_across_processes_through_a_dead_coordinator_and_a_proxy() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path(), 4, 1, 7, &Addressing::Loopback).unwrap();
    let rack_path = dir.path().join("rack.toml");
    // The new sled (4) has no address Nexus knows.
    layout.rack_file(|s| s.lrtq).write(&rack_path).unwrap();
    let mut sleds = Sleds::new(layout, Launch::InProcess).unwrap();
    let all: Vec<usize> = (0..5).collect();
    for &i in &all {
        sleds.start(i).await.unwrap();
    }
    sleds
        .wait_connected(&all, Duration::from_secs(30))
        .await
        .unwrap();
    let state_path = dir.path().join("nexus.json");
    let (rack, state) = (rack_path.to_str().unwrap(), state_path.to_str().unwrap());
    let base = [
        "nexus",
        "--rack",
        rack,
        "--state",
        state,
        "--poll-ms",
        "20",
        "--retry-ms",
        "200",
    ];
    let cmd = |rest: &[&'static str]| -> Vec<String> {
        base.iter().chain(rest).map(|s| s.to_string()).collect()
    };
    let run = |args: Vec<String>| async move {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        tq(&args).await
    };

    // The four LRTQ sleds (the file's fifth has no LRTQ share: named out).
    let (ok, out, err) = run(cmd(&["init", "--sleds", "SN0000,SN0001,SN0002,SN0003"])).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("4 sleds"), "{out}");

    // The upgrade is started with sled 1 as coordinator, which dies.
    let (ok, out, err) = run(cmd(&["upgrade", "--no-wait", "--coordinator", "SN0001"])).await;
    assert!(ok, "{out}{err}");
    assert_eq!(nexus(&state_path).pending().unwrap().epoch(), Epoch(2));
    sleds.kill(1).await.unwrap();
    // Driven for a while: the retry commits, but sled 1 cannot be told.
    let (ok, _, err) = run(cmd(&["--abandon-after", "1", "--timeout", "8", "run"])).await;
    assert!(!ok, "cannot settle with a member down: {err}");
    assert!(err.contains("epoch 2 abandoned"), "{err}");
    let decided = nexus(&state_path);
    let latest = decided.latest_committed().unwrap();
    assert_eq!(latest.epoch(), Epoch(3));
    assert_eq!(decided.pending().map(|p| p.epoch()), None);
    assert!(!latest.unconfirmed().is_empty());
    // Sled 1 back (from its LRTQ share file): a new driver tells it.
    sleds.start(1).await.unwrap();
    let (ok, out, err) = run(cmd(&["run"])).await;
    assert!(ok, "{out}{err}");
    assert!(
        out.contains("epoch 3 committed; 4 members confirmed"),
        "{out}"
    );
    let status = sleds.status(1).await.unwrap();
    assert_eq!(status.node.state.latest_committed, Some(Epoch(3)));

    // The new sled, reached only through a proxy.
    let (ok, out, err) = run(cmd(&["add", "SN0004"])).await;
    assert!(ok, "{out}{err}");
    assert!(err.contains("SN0004 reached through"), "{err}");
    let status = sleds.status(4).await.unwrap();
    assert_eq!(status.node.state.latest_committed, Some(Epoch(4)));

    let (ok, out, err) = run(cmd(&["remove", "SN0003"])).await;
    assert!(ok, "{out}{err}");
    let decided = nexus(&state_path);
    let epochs: Vec<u64> = decided.history().map(|c| c.epoch().0).collect();
    assert_eq!(epochs, [3, 4, 5], "epoch 2 was abandoned, never committed");
    assert_eq!(decided.members().len(), 4);
    assert_eq!(decided.removed().len(), 1);

    let (ok, out, err) = run(cmd(&["show"])).await;
    assert!(ok, "{out}{err}");
    assert!(out.contains("removed (never added back): SN0003"), "{out}");
    assert!(out.contains("nothing pending"), "{out}");
    let (ok, json, err) = run(cmd(&["show", "--json"])).await;
    assert!(ok, "{err}");
    let shown: tq_nexus::State = serde_json::from_str(&json).unwrap();
    assert_eq!(&shown, decided.state());

    let (ok, out, err) = tq(&["status", "--rack", rack, "--state", state]).await;
    assert!(ok, "{out}{err}");
    for serial in ["SN0000", "SN0002", "SN0003"] {
        assert!(out.contains(serial), "{out}");
    }
    assert!(
        out.contains("via SN"),
        "sled 4 is asked through a proxy: {out}"
    );
    let api = sleds.api(0).unwrap().addr().to_string();
    let rack_ca = dir.path().join(RACK_CA_FILE);
    let rack_ca = rack_ca.to_str().unwrap();
    let status_of = |id: String| {
        let args: Vec<String> = [
            "status",
            "--sled",
            &api,
            "--platform-id",
            &id,
            "--rack-ca",
            rack_ca,
            "--json",
        ]
        .map(str::to_owned)
        .to_vec();
        run(args)
    };
    let id = |i: usize| sleds.files(i).unwrap().id.clone();
    let (ok, json, err) = status_of(id(0).to_string()).await;
    assert!(ok, "{err}");
    let view: serde_json::Value = serde_json::from_str(&json).unwrap();
    let node = &view["sleds"][0]["status"]["node"];
    assert_eq!(node["state"]["latest_committed"], 5);
    assert_eq!(node["alarms"].as_array().unwrap().len(), 0);
    // Each connected peer's measurements, named from the reference file.
    let peers = view["sleds"][0]["status"]["peers"].as_array().unwrap();
    let connected: Vec<_> = peers.iter().filter(|p| p["connected"] == true).collect();
    assert!(!connected.is_empty(), "{json}");
    for peer in connected {
        let names: Vec<&str> = peer["measurements"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["reference"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["sp 1.0.0", "host 1.0.0"], "{json}");
    }
    let (ok, out, err) = tq(&[
        "status",
        "--sled",
        &api,
        "--platform-id",
        &id(0).to_string(),
        "--rack-ca",
        rack_ca,
    ])
    .await;
    assert!(ok, "{err}");
    assert!(out.contains("sp 1.0.0 (sha3-256 "), "{out}");
    // Sled 0's address, but another sled expected: its certificate does
    // not name that sled, so nothing it says is read.
    let (ok, json, err) = status_of(id(1).to_string()).await;
    assert!(!ok, "{json}{err}");
    let view: serde_json::Value = serde_json::from_str(&json).unwrap();
    let sled = &view["sleds"][0];
    assert!(sled.get("status").is_none(), "{json}");
    assert_eq!(sled["id"], serde_json::to_value(id(1)).unwrap(), "{json}");
    sleds.stop_all().await;
}

/// Two `tq nexus` on one state file: while one holds it (here, this test
/// process holding its lock), every command that drives is refused in one
/// line and the file is left as it was; `show` still reads it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_nexus_on_one_state_file_is_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path(), 3, 0, 7, &Addressing::Loopback).unwrap();
    let rack_path = dir.path().join("rack.toml");
    layout.rack_file(|_| true).write(&rack_path).unwrap();
    let state_path = dir.path().join("nexus.json");
    let (rack, state) = (rack_path.to_str().unwrap(), state_path.to_str().unwrap());
    let base = ["nexus", "--rack", rack, "--state", state, "--timeout", "5"];
    let with = |rest: &[&'static str]| -> Vec<&str> { base.iter().chain(rest).copied().collect() };

    let (ok, _, err) = tq(&with(&["init"])).await;
    assert!(ok, "{err}");
    let before = std::fs::read(&state_path).unwrap();

    let held = StateFile::new(&state_path).lock().await.unwrap();
    for command in [&["upgrade"][..], &["run"], &["abandon"]] {
        let (ok, out, err) = tq(&with(command)).await;
        assert!(!ok, "{command:?} ran beside another driver: {out}");
        let lines: Vec<&str> = err.lines().collect();
        assert_eq!(lines.len(), 1, "{command:?}: {err}");
        assert!(
            lines[0].starts_with("tq nexus: the Nexus state file is in use by another process"),
            "{err}"
        );
        assert!(lines[0].contains("nexus.json.lock"), "{err}");
    }
    // `init` too: it checks for an existing file only under the lock.
    let (ok, _, err) = tq(&with(&["init"])).await;
    assert!(!ok && err.contains("in use by another process"), "{err}");
    assert_eq!(
        std::fs::read(&state_path).unwrap(),
        before,
        "the file was touched"
    );
    let (ok, out, err) = tq(&with(&["show"])).await;
    assert!(ok && out.contains("nothing pending"), "{out}{err}");

    drop(held);
    let (ok, out, err) = tq(&with(&["show"])).await;
    assert!(ok, "{out}{err}");
    // Driving is allowed again (with no sled running it goes no further).
    let (_, out, err) = tq(&with(&["run"])).await;
    assert!(
        !err.contains("in use by another process"),
        "the lock outlived its owner: {out}{err}"
    );
}

/// A command that fails says so on one line of stderr, `tq <command>: `
/// then the error and each of its causes, and exits 1. A rack file that
/// is not of the format is named with the line and column of the fault
/// (TOML's multi-line snippet left out), by `tq nexus` and `tq status`
/// alike; a missing state file is named as Nexus's.
#[tokio::test]
async fn a_failed_command_is_one_line_naming_the_file_and_where() {
    let dir = tempfile::tempdir().unwrap();
    let rack_id = "rack_id = \"42424242-4242-4242-4242-424242424242\"\n";
    let bad = dir.path().join("bad.toml");
    let sled = "\n[[sleds]]\npart = \"913-0000019\"\nserial = \"SN1\"\nport = 3\n";
    std::fs::write(&bad, format!("{rack_id}{sled}")).unwrap();
    let good = dir.path().join("rack.toml");
    std::fs::write(dir.path().join(RACK_CA_FILE), Ca::new("rack").pem()).unwrap();
    std::fs::write(&good, format!("{rack_id}rack_ca = \"{RACK_CA_FILE}\"\n")).unwrap();
    let state = dir.path().join("nexus.json");
    let (bad, good, state) = (
        bad.to_str().unwrap(),
        good.to_str().unwrap(),
        state.to_str().unwrap(),
    );

    let cases: [(&[&str], String); 4] = [
        (
            &["nexus", "--rack", bad, "--state", state, "show"],
            format!("tq nexus: {bad}, line 6, column 1: unknown field `port`"),
        ),
        (
            &["status", "--rack", bad],
            format!("tq status: {bad}, line 6, column 1: unknown field `port`"),
        ),
        (
            &["nexus", "--rack", good, "--state", state, "show"],
            format!("tq nexus: no Nexus state file at {state}"),
        ),
        (
            &["status", "--rack", good, "--state", state],
            format!("tq status: no Nexus state file at {state}"),
        ),
    ];
    for (args, start) in cases {
        let (ok, _, err) = tq(args).await;
        assert!(!ok, "{args:?}");
        assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with(&start), "{args:?}: {err}");
    }
}
