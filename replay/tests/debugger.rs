//! The debugger on a run that breaks an invariant: a sled lies to the
//! coordinator that it acked a prepare it never received (the log of
//! `replay/examples/forged-ack.json`, the harness README's example) (what the fuzz
//! targets' judge never injects, since the protocol believes an
//! authenticated sled's ack), and the checker flags the coordinator's
//! count. Through the library, then through the binary.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::process::Command;

use tq_core::ids::Epoch;
use tq_core::messages::{Body, Envelope};
use tq_harness::sled::DiskSummary;
use tq_harness::{Action, Change, DEFAULT_SLEDS, Violation};
use tq_replay::debugger::{self, Command as Cmd};
use tq_replay::session::Stepped;
use tq_replay::{Check, Debugger, EventLog, Rack, RunEvent, Session};
use tq_test_fixtures::{RACK, with_big_stack};

/// A fresh rack of 4 sleds: Nexus starts epoch 1, a few messages move,
/// then a member that has not acked tells the coordinator it did.
fn forged_ack_log() -> EventLog {
    let rack = Rack {
        rack_id: RACK,
        capacity: DEFAULT_SLEDS,
        sleds: 4,
        members: 4,
        seed: 5,
        lrtq_seed: None,
    };
    let mut log = EventLog::new(
        "replay/examples/forged-ack.json (replay/tests/debugger.rs makes it)",
        rack,
    );
    log.events = vec![
        RunEvent::Act(Action::Reconfigure {
            change: Change::Same,
            coordinator: 0,
            threshold: 0,
        }),
        RunEvent::Act(Action::Deliver(0)),
        RunEvent::Act(Action::NexusPoll),
    ];
    // Who coordinates, and a member that has not stored the prepare (so
    // sent no ack).
    let (coordinator, liar) = with_big_stack({
        let log = log.clone();
        move || {
            let mut session = Session::<DEFAULT_SLEDS>::new(log).unwrap();
            session.goto(3).unwrap();
            let cluster = session.cluster();
            let coordinator = cluster.nexus().pending().unwrap().coordinator.unwrap();
            let liar = (0..4)
                .find(|&i| {
                    let disk = DiskSummary::of(&cluster.sled(i).unwrap().read_disk().unwrap());
                    i != coordinator && !disk.holds_share(Epoch(1))
                })
                .unwrap();
            (coordinator, liar)
        }
    });
    let mut buf = [0u8; 64];
    let ack = Envelope {
        rack_id: RACK,
        body: Body::PrepareAck(Epoch(1)),
    };
    let bytes = tq_core::wire::encode_peer_msg(&ack.as_ref(), &mut buf).unwrap();
    log.events.push(RunEvent::Inject {
        from: liar as u8,
        to: coordinator as u8,
        bytes: bytes.to_vec(),
    });
    log.events.push(RunEvent::Act(Action::DeliverAll));
    log.events.push(RunEvent::Check(Check::Liveness));
    log
}

#[test]
fn the_session_stops_at_the_violation_and_goes_back_to_the_same_states() {
    let log = forged_ack_log();
    with_big_stack(move || {
        let mut session = Session::<DEFAULT_SLEDS>::new(log).unwrap();
        for expected in 0..3 {
            assert_eq!(session.step(), Stepped::Applied(expected));
        }
        let before_lie = tq_replay::view::snapshot(session.cluster());
        let Stepped::Failed(failure) = session.step() else {
            panic!("the forged ack passed");
        };
        assert_eq!(failure.event, 3);
        assert!(
            matches!(
                failure.violation,
                Violation::AckNotSent {
                    epoch: Epoch(1),
                    ..
                }
            ),
            "{:?}",
            failure.violation
        );
        assert_eq!(session.step(), Stepped::Stuck);
        assert_eq!(session.position(), 4);
        // Back to 3 rebuilds the rack and replays: the same state.
        assert_eq!(session.goto(3).unwrap(), 3);
        assert!(session.failure().is_none());
        assert_eq!(tq_replay::view::snapshot(session.cluster()), before_lie);
        // Past the failure, the session stops at it.
        assert_eq!(session.goto(6).unwrap(), 4);
    });
}

#[test]
fn continue_stops_at_breakpoints_then_at_the_violation() {
    let log = forged_ack_log();
    with_big_stack(move || {
        let mut debugger = Debugger::new(Session::<DEFAULT_SLEDS>::new(log).unwrap());
        let mut run = |line: &str| debugger.run(&Cmd::parse(line).unwrap()).unwrap();
        run("break nexuspoll");
        let out = run("continue");
        assert!(out.contains("after 2 events"), "{out}");
        assert!(out.contains("next [2] NexusPoll"), "{out}");
        let out = run("continue");
        assert!(out.contains("[3] Inject"), "{out}");
        assert!(out.contains("VIOLATION AckNotSent"), "{out}");
        let out = run("diff 3 4");
        assert!(out.contains("+++ position 4"), "{out}");
        // The coordinator counted the liar.
        assert!(
            out.contains("+sled 0 coordinating epoch 1 (Preparing), acked by [913-0000019:SN0000, 913-0000019:SN0002"),
            "{out}"
        );
    });
}

#[test]
fn bad_commands_are_refused_with_a_reason() {
    assert!(
        Cmd::parse("break Delivr")
            .unwrap_err()
            .contains("kinds: Deliver,")
    );
    assert!(Cmd::parse("sled").unwrap_err().contains("needs a number"));
    assert!(Cmd::parse("goto x").unwrap_err().contains("not a number"));
    assert!(Cmd::parse("frobnicate").unwrap_err().contains("try help"));
    assert_eq!(
        Cmd::parse("b 7"),
        Ok(Cmd::Break(debugger::Breakpoint::Event(7)))
    );
}

/// The binary, as a user runs it: the log in a file, commands as `-e`
/// arguments and on standard input.
#[test]
fn the_binary_steps_through_a_log_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("forged-ack.json");
    forged_ack_log().write(&path).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_tq-replay"))
        .arg(&path)
        .args([
            "-e", "continue", "-e", "sled 1", "-e", "flight", "-e", "nexus",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        stdout.contains("6 events, 4 sleds (4 members, fresh), seed 5"),
        "{stdout}"
    );
    assert!(stdout.contains("[3] Inject"), "{stdout}");
    assert!(stdout.contains("VIOLATION AckNotSent"), "{stdout}");
    assert!(stdout.contains("\"counters\""), "{stdout}");
    assert!(stdout.contains("in flight"), "{stdout}");
    assert!(stdout.contains("pending: epoch 1"), "{stdout}");

    let out = tq_replay_with_input(&path, "step 2\nwhere\nquit\nstep\n");
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.contains("[1] Deliver(0): ok"), "{stdout}");
    assert!(
        stdout.contains("at position 2 of 6; next [2] NexusPoll"),
        "{stdout}"
    );
    // Nothing after quit.
    assert!(!stdout.contains("[2] NexusPoll: ok"), "{stdout}");

    let out = Command::new(env!("CARGO_BIN_EXE_tq-replay"))
        .arg(dir.path().join("missing.json"))
        .output()
        .unwrap();
    assert!(!out.status.success());
}

/// The example log is the one [`forged_ack_log`] makes
/// (`TQ_UPDATE_EXAMPLES=1` rewrites it).
#[test]
fn the_example_log_is_up_to_date() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/forged-ack.json");
    let made = forged_ack_log().to_json();
    if std::env::var_os("TQ_UPDATE_EXAMPLES").is_some() {
        std::fs::write(path, &made).unwrap();
    }
    assert_eq!(
        std::fs::read_to_string(path).unwrap(),
        made,
        "TQ_UPDATE_EXAMPLES=1 rewrites it"
    );
}

/// The harness README's worked example, run as written: its commands (the
/// `(tq-replay) ` lines of the block) on the binary's standard input print
/// exactly the block.
#[test]
fn the_readme_example_works_as_written() {
    let readme = include_str!("../../harness/README.md");
    let block = readme
        .split("```text\n$ cargo run -q -p tq-replay -- replay/examples/forged-ack.json\n")
        .nth(1)
        .and_then(|rest| rest.split("```").next())
        .expect("the example block");
    let commands: String = block
        .lines()
        .filter_map(|line| line.strip_prefix("(tq-replay) "))
        .map(|command| format!("{command}\n"))
        .collect();
    assert!(commands.lines().count() >= 5);
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/forged-ack.json");
    let out = tq_replay_with_input(std::path::Path::new(example), &commands);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), block);
}

/// Runs the binary on `log` with `input` as its standard input.
fn tq_replay_with_input(log: &std::path::Path, input: &str) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new(env!("CARGO_BIN_EXE_tq-replay"))
        .arg(log)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}
