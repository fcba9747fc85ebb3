//! The stateful targets' tests: the input format reads back, seeds and
//! regressions run clean with either ledger, logs replay, and the judge's
//! verdicts hold when the forgery is injected.

use tq_core::ids::Epoch;
use tq_core::messages::{Body, Envelope, PeerMsgRef};
use tq_core::wire;
use tq_harness::{Action, Change, Cluster, DEFAULT_SLEDS, MAX_SLEDS, Violation};
use tq_replay::{EventLog, RunEvent};
use tq_test_fixtures::with_big_stack;

use super::input::Reader;
use super::run::{new_cluster, refused_as_expunged, run_as};
use super::*;
use crate::samples::RACK;

#[test]
fn headers_and_forgeries_read_back() {
    for lrtq in [false, true] {
        for sleds in 3..=MAX_SLEDS {
            let fewest = if sleds <= 8 { 3 } else { sleds - 2 };
            for members in fewest..=sleds {
                let layout = Layout {
                    lrtq,
                    sleds,
                    members,
                    seed: 9,
                };
                let header = layout.header();
                assert_eq!(Layout::read(&mut Reader(&header), Racks::Whole), layout);
                if sleds <= 8 {
                    assert_eq!(Layout::read(&mut Reader(&header), Racks::Small), layout);
                }
            }
        }
    }
    // The safety target reads a large rack's header as a small rack.
    let large = Layout {
        lrtq: true,
        sleds: 20,
        members: 19,
        seed: 5,
    };
    let small = Layout::read(&mut Reader(&large.header()), Racks::Small);
    assert!(small.sleds <= 8 && small.lrtq);
    let forgeries = [
        Forgery::Garbage {
            from: 1,
            to: 2,
            bytes: vec![1, 2, 3],
        },
        Forgery::Corrupt {
            n: 4,
            at: 300,
            xor: 0x80,
        },
        Forgery::Replay {
            n: 5,
            from: 6,
            to: 7,
        },
    ];
    for forgery in forgeries {
        let mut bytes = Vec::new();
        forgery.write(&mut bytes);
        let mut input = Reader(&bytes);
        assert_eq!(Step::read(&mut input), Some(Step::Forge(forgery)));
        assert!(input.is_empty());
    }
}

#[test]
fn an_input_with_no_steps_runs_to_a_live_rack() {
    with_big_stack(|| {
        for lrtq in [false, true] {
            let layout = Layout {
                lrtq,
                sleds: 5,
                members: 4,
                seed: 3,
            };
            let stats = run(&layout.header()).expect("no violation");
            assert_eq!(stats.steps, 0);
            let stats = run_safety(&layout.header()).expect("no violation");
            assert_eq!(stats.steps, 0);
        }
    });
}

/// The members' ledger (`cluster_safety`'s) and the full one make the
/// same run: the target's seeds and regressions, and random LRTQ
/// inputs, end alike and count alike.
#[test]
fn the_members_ledger_changes_nothing_a_run_does() {
    use rand_chacha::ChaCha20Rng;
    use rand_core::{Rng, SeedableRng};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs = Vec::new();
    for corpus in ["seeds/cluster_safety", "regressions/cluster_safety"] {
        for entry in std::fs::read_dir(dir.join(corpus)).expect("corpus") {
            inputs.push(std::fs::read(entry.expect("entry").path()).expect("input"));
        }
    }
    let mut rng = ChaCha20Rng::seed_from_u64(7);
    for _ in 0..32 {
        let mut input = vec![0u8; 400];
        rng.fill_bytes(&mut input);
        input[0] |= 1; // an LRTQ rack
        inputs.push(input);
    }
    let upgrades = with_big_stack(move || {
        let mut upgrades = 0;
        for input in inputs {
            let members = run_as(&input, Target::ClusterSafety, Ledger::Members, None);
            assert_eq!(
                members,
                run_as(&input, Target::ClusterSafety, Ledger::Full, None),
                "{input:?}"
            );
            let lrtq = Layout::read(&mut Reader(&input), Racks::Small).lrtq;
            if lrtq && members.is_ok_and(|stats| stats.committed > 0) {
                upgrades += 1;
            }
        }
        upgrades
    });
    // Not vacuous: LRTQ racks upgraded (their shares checked against
    // the ledger).
    assert!(upgrades >= 3, "{upgrades}");
}

/// The event log of a run replays in `tq-replay`'s session to the same
/// end: every committed seed and regression of both targets (forged
/// messages included), and an input whose forged ack the harness
/// catches (what the judge never lets through), stopped at the same
/// event with the same violation.
#[test]
fn event_logs_replay_to_the_same_outcome() {
    use tq_replay::session::first_failure;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut inputs = Vec::new();
    for (target, name) in [
        (Target::Cluster, "cluster"),
        (Target::ClusterSafety, "cluster_safety"),
    ] {
        for corpus in ["seeds", "regressions"] {
            let Ok(entries) = std::fs::read_dir(dir.join(corpus).join(name)) else {
                continue;
            };
            for entry in entries {
                let path = entry.expect("entry").path();
                inputs.push((target, std::fs::read(path).expect("input")));
            }
        }
    }
    assert!(inputs.len() > 10);
    with_big_stack(move || {
        let mut injected = 0;
        for (target, input) in inputs {
            let (log, outcome) = event_log(&input, target, "test");
            let log = EventLog::from_json(&log.to_json()).expect("reads back");
            injected += log
                .events
                .iter()
                .filter(|e| matches!(e, RunEvent::Inject { .. }))
                .count();
            let failure = first_failure(log).expect("session");
            match (failure.map(|f| f.violation), outcome) {
                // The target excuses a call a self-expunged sled
                // refuses once a forger waived liveness; the session
                // stops there.
                (Some(refusal), Ok(stats))
                    if stats.liveness_waived && refused_as_expunged(&refusal) => {}
                (failure, outcome) => assert_eq!(failure, outcome.err(), "{input:?}"),
            }
        }
        assert!(injected > 0);
    });
}

/// A rack of four members and one spare (sled 4) whose epoch 1
/// committed everywhere.
fn committed_rack() -> Box<Cluster<DEFAULT_SLEDS>> {
    let layout = Layout {
        lrtq: false,
        sleds: 5,
        members: 4,
        seed: 1,
    };
    let mut cluster =
        Box::new(new_cluster::<DEFAULT_SLEDS>(&layout, Ledger::Full).expect("cluster"));
    cluster
        .apply(&Action::Reconfigure {
            change: Change::Same,
            coordinator: 0,
            threshold: 0,
        })
        .expect("start");
    cluster.nexus_finish().expect("commit");
    assert!(cluster.nexus().latest_committed().is_some());
    cluster
}

fn encode(
    body: Body<
        &tq_core::config::Configuration,
        &tq_core::crypto::Share,
        &tq_core::crypto::LrtqShare,
    >,
) -> Vec<u8> {
    let msg: PeerMsgRef<'_> = Envelope {
        rack_id: RACK,
        body,
    };
    let mut buf = vec![0u8; wire::MAX_PEER_MSG_LEN];
    wire::encode_peer_msg(&msg, &mut buf)
        .expect("encode")
        .to_vec()
}

#[test]
fn lies_the_node_disproves_are_injected_and_ignored() {
    with_big_stack(|| {
        let mut cluster = committed_rack();
        let epoch = cluster.nexus().latest_committed().expect("commit").epoch;
        // Sled 1 stores `epoch` and is a member of it.
        let lie = encode(Body::Expunged(epoch));
        assert_eq!(judge(&cluster, 0, 1, &lie, None), Verdict::Inject);
        let from = cluster.id(0).cloned().expect("id");
        let counted = cluster
            .call(1, |node, ctx, rng, _| {
                node.handle_bytes(ctx, rng, &from, &lie);
                ctx.counters().get(tq_core::node::Counter::FalseClaim)
            })
            .expect("call");
        assert_eq!(counted, Some(1));
        cluster.check().expect("still safe");
    });
}

/// PROTOCOL.md section 6: a `CommitAdvance` whose epoch is not newer
/// than the receiver's latest commit is ignored, whatever configuration
/// it carries. A member's lie about the committed epoch is injected,
/// counted as false, and raises no alarm (it once did: any member could
/// put any node in alarm).
#[test]
fn a_commit_advance_for_the_committed_epoch_is_injected_and_ignored() {
    with_big_stack(|| {
        let mut cluster = committed_rack();
        let committed = cluster
            .sled(1)
            .and_then(|s| s.running())
            .and_then(|r| r.ctx.persistent_state().latest_committed())
            .map(|stored| stored.config.clone())
            .expect("sled 1 committed");
        let mut fields = committed.fields().clone();
        fields.members[2].share_digest = tq_core::crypto::ShareDigest([0x5a; 32]);
        let other = tq_core::config::Configuration::new(fields).expect("config");
        for config in [&committed, &other] {
            let bytes = encode(Body::CommitAdvance(config));
            assert_eq!(judge(&cluster, 0, 1, &bytes, None), Verdict::Inject);
        }
        let lie = encode(Body::CommitAdvance(&other));
        let from = cluster.id(0).cloned().expect("id");
        let counted = cluster
            .call(1, |node, ctx, rng, _| {
                node.handle_bytes(ctx, rng, &from, &lie);
                ctx.counters().get(tq_core::node::Counter::FalseClaim)
            })
            .expect("call");
        assert_eq!(counted, Some(1));
        cluster.check().expect("no alarm");
    });
}

#[test]
fn lies_the_protocol_believes_are_not_injected_and_would_be_caught() {
    with_big_stack(|| {
        let mut cluster = committed_rack();
        let epoch = cluster.nexus().latest_committed().expect("commit").epoch;
        // An epoch sled 1 has not heard of: nothing it stores disproves
        // the claim, so it believes it.
        let lie = encode(Body::Expunged(Epoch(epoch.0 + 1)));
        assert_eq!(judge(&cluster, 0, 1, &lie, None), Verdict::Skip);
        // Injected anyway, the checker catches it: the filter is what
        // keeps the target's findings real.
        let from = cluster.id(0).cloned().expect("id");
        cluster
            .call(1, |node, ctx, rng, _| {
                node.handle_bytes(ctx, rng, &from, &lie)
            })
            .expect("call");
        assert!(matches!(
            cluster.check(),
            Err(Violation::WronglyExpunged { sled: 1, .. })
        ));
    });
}

#[test]
fn a_relayed_lrtq_share_costs_the_coordinator_nothing() {
    // Found by the fuzzer: an LRTQ rack of four upgrades without sled
    // 2; sled 3 hands the coordinator sled 1's LRTQ share (in flight).
    // The coordinator once refused a second share from one sender, so
    // it then took neither sled 1's share (a duplicate digest) nor sled
    // 3's own (a second share from sled 3), and the upgrade stalled.
    // De-duplicating by digest only, it takes sled 3's own share and
    // the rack stays live.
    // The header read 4 LRTQ sleds, all members, seed 14, when racks
    // stopped at 8 (its `0xff` now reads a large rack).
    let mut input = Layout {
        lrtq: true,
        sleds: 4,
        members: 4,
        seed: 0x0e,
    }
    .header();
    input.extend_from_slice(&[
        0x99, 0x9a, 0x97, 0x0e, 0x00, 0xff, 0xfe, 0x00, 0x0e, 0x0f, 0x11, 0x11, 0xff,
    ]);
    with_big_stack(move || {
        let stats = run(&input).expect("safe and live");
        assert!(stats.forged >= 1, "{stats:?}");
        assert!(!stats.liveness_waived, "{stats:?}");
    });
}

#[test]
fn checked_forgeries_are_injected_and_keep_the_invariants() {
    with_big_stack(|| {
        let cluster = committed_rack();
        let epoch = cluster.nexus().latest_committed().expect("commit").epoch;
        let other_rack = {
            let mut bytes = encode(Body::Expunged(epoch));
            bytes[1] ^= 0xff;
            bytes
        };
        let requests = [encode(Body::GetShare(epoch)), encode(Body::GetLrtqShare)];
        let garbage = vec![wire::PEER_MSG_VERSION, 0xff, 0x00, 0x13];
        for bytes in [other_rack, garbage].iter().chain(&requests) {
            assert_eq!(judge(&cluster, 2, 1, bytes, None), Verdict::Inject);
        }
        // The spare asks: the true answer expunges it.
        for bytes in &requests {
            assert_eq!(
                judge(&cluster, 4, 1, bytes, None),
                Verdict::InjectWaivingLiveness
            );
        }
        let unknown_epoch = encode(Body::GetShare(Epoch(epoch.0 + 5)));
        assert_eq!(judge(&cluster, 4, 1, &unknown_epoch, None), Verdict::Inject);
        let mut input = Layout {
            lrtq: false,
            sleds: 4,
            members: 4,
            seed: 1,
        }
        .header();
        // Start epoch 1, then forge around it while it runs.
        input.extend_from_slice(&[0, 150, 2, 0, 0]);
        for n in 0..6u8 {
            input.extend_from_slice(&[0, 0, 0]); // deliver the oldest
            Forgery::Replay {
                n,
                from: n + 1,
                to: n + 2,
            }
            .write(&mut input);
            Forgery::Corrupt {
                n,
                at: 40 + u16::from(n),
                xor: 0x01,
            }
            .write(&mut input);
            Forgery::Corrupt { n, at: 18, xor: 0 }.write(&mut input);
            Forgery::Garbage {
                from: n,
                to: n + 1,
                bytes: vec![1; 20],
            }
            .write(&mut input);
        }
        let stats = run(&input).expect("no violation");
        println!("{stats:?}");
        assert!(stats.forged >= 12, "{stats:?}");
    });
}

/// Every kind of forged Nexus request, before the first commit (a forged
/// commit) and after it (a forged `prepare_and_commit` of the latest
/// configuration at the last epoch), to every sled: each refused with its
/// refusal and counted (else `run` fails), and the rack stays safe and
/// live.
#[test]
fn forged_requests_are_refused_and_counted() {
    let forge = |input: &mut Vec<u8>| {
        for to in 0..4u8 {
            for how in 0..4u8 {
                input.extend_from_slice(&[REQUEST_FORGERY, to, how]);
            }
        }
    };
    let mut input = Layout {
        lrtq: false,
        sleds: 4,
        members: 4,
        seed: 1,
    }
    .header();
    forge(&mut input);
    // Start epoch 1, deliver, let Nexus commit, then forge again.
    input.extend_from_slice(&[0, 150, 2, 0, 0]);
    for _ in 0..4 {
        input.extend_from_slice(&[0, 96]); // deliver everything
        input.extend_from_slice(&[0, 164]); // Nexus polls (and commits)
    }
    forge(&mut input);
    with_big_stack(move || {
        let stats = run(&input).expect("safe and live");
        assert_eq!(stats.requests_forged, 32, "{stats:?}");
        assert!(stats.committed >= 1, "{stats:?}");
    });
}
