//! Regressions of defects fixed with the driving contract (issue 9) and
//! after it (issue 17). Each test says what the node used to do; each fails
//! against that code.

use super::*;
use crate::config::tests::fields;
use crate::crypto::RngError;
use crate::node::coordinator::{Coordinator, StartFailed};
use crate::node::validate::{RequestKind, Validated};
use crate::persistent::{StateFields, StoredConfig};

// ---- (a) false `Expunged` claims ----

/// A peer's `Expunged(e)` used to be believed whenever `e` was not older
/// than the newest configuration known, so any peer could make a member
/// expunge itself for good by naming the epoch it had just committed. A
/// claim the node's own state proves false is now ignored and counted.
#[test]
fn an_expunged_claim_about_a_configuration_we_are_a_member_of_is_ignored() {
    let mut sleds = committed_rack(4, 2);
    let s = &mut sleds[1];
    s.take_events();
    s.without_write(|s| s.receive(&platform(0), &msg(Body::Expunged(Epoch(1)))));
    assert_eq!(s.count(Counter::FalseClaim), 1);
    assert!(s.ctx.persistent_state().expunged().is_none());
    assert!(s.take_events().is_empty());
    // Still a working member: it answers a share request.
    s.receive(&platform(2), &msg(Body::GetShare(Epoch(1))));
    let reply = wire::decode_peer_msg(&s.drain()[0].1).unwrap();
    assert!(matches!(reply.body, Body::Share { .. }));
}

/// The same claim from a sled outside the stored configuration it names:
/// only a member of `e` can know who is not. (A node stores only
/// configurations it is a member of, so this state, as storage could hold
/// it, is built by hand: epoch 2 lists sleds 1 to 4, not sled 0.)
#[test]
fn an_expunged_claim_from_outside_the_configuration_is_ignored() {
    let mut f = fields(4, 2);
    for (i, member) in f.members.iter_mut().enumerate() {
        member.id = platform(i + 1);
    }
    f.coordinator = platform(1);
    f.rack_id = RACK;
    f.epoch = Epoch(2);
    let mut state = StateFields::default();
    state
        .configs
        .push(StoredConfig {
            config: Configuration::new(f).unwrap(),
            share: None,
        })
        .unwrap();
    let mut s = Sled::new(0, PersistentState::try_from(state).unwrap());
    s.without_write(|s| s.receive(&platform(7), &msg(Body::Expunged(Epoch(2)))));
    assert_eq!(s.count(Counter::FalseClaim), 1);
    assert!(s.ctx.persistent_state().expunged().is_none());
    // A member of epoch 2 says it: believed, stored, then raised.
    s.receive(&platform(1), &msg(Body::Expunged(Epoch(2))));
    assert_eq!(s.count(Counter::FalseClaim), 1);
    assert_eq!(
        s.ctx.persistent_state().expunged().map(|e| e.epoch),
        Some(Epoch(2))
    );
    assert_eq!(
        s.take_events(),
        [Event::Expunged {
            epoch: Epoch(2),
            from: platform(1)
        }]
    );
}

// ---- (b) a `CommitAdvance` from outside its configuration ----

/// A `CommitAdvance(config)` used to be taken from anyone: a sled outside
/// `config` (here sled 4, removed by it) made a member store it unprepared
/// and start computing its share of an epoch Nexus never committed. Now it
/// is ignored and counted, and the real `Prepare` of that epoch works.
#[test]
fn a_commit_advance_from_outside_its_configuration_is_ignored() {
    let mut sleds = committed_rack(5, 2);
    // Sled 1 is away while sled 0 prepares epoch 2 without sled 4.
    sleds[0].disconnect(&platform(1));
    sleds[1].disconnect(&platform(0));
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..4), 2))
        .unwrap();
    settle(&mut sleds);
    assert_eq!(sleds[0].status().unwrap().acked.len(), 3);
    let config = config_of(&sleds[0], 2);

    let s = &mut sleds[1];
    s.drain();
    s.without_write(|s| s.receive(&platform(4), &msg(Body::CommitAdvance(config.clone()))));
    assert_eq!(s.count(Counter::FalseClaim), 1);
    assert_eq!(s.node.computing_share(), None);
    assert!(s.ctx.persistent_state().get(Epoch(2)).is_none());
    assert!(s.drain().is_empty(), "no share requests");

    // Sled 1 comes back: the coordinator sends it the real prepare.
    sleds[0].connect(&platform(1));
    sleds[1].connect(&platform(0));
    settle(&mut sleds);
    assert_eq!(sleds[0].status().unwrap().acked.len(), 4);
    assert_eq!(config_of(&sleds[1], 2), config);
    assert!(
        sleds[1]
            .ctx
            .persistent_state()
            .get(Epoch(2))
            .unwrap()
            .share
            .is_some()
    );
    commit_all(&mut sleds, 2);
    assert_all_equal(&load_everywhere(&mut sleds[..4], 2));
}

// ---- (c) an LRTQ threshold the new members cannot meet ----

/// An upgrade asks only the new members for LRTQ shares; with fewer members
/// than the LRTQ threshold it used to start and wait for ever. Now it is
/// refused.
#[test]
fn an_upgrade_with_fewer_members_than_the_lrtq_threshold_is_refused() {
    let mut sleds = lrtq_rack_with_threshold(5, 5);
    let s = &mut sleds[0];
    let refused = s.without_write(|s| s.upgrade(&upgrade(2, set(0..4), 2)));
    assert_eq!(
        refused,
        Err(LrtqUpgradeError::LrtqThresholdAboveMembers {
            lrtq_threshold: crate::ids::LrtqThreshold::new(5).unwrap(),
            members: 4
        })
    );
    assert!(s.status().is_none());
    assert!(s.drain().is_empty());
    // As many members as the threshold is enough.
    assert_eq!(s.upgrade(&upgrade(2, set(0..5), 2)), Ok(()));
    assert_eq!(
        s.status().map(|status| status.phase),
        Some(CoordinatorPhase::CollectingLrtqShares)
    );
}

// ---- (d) a failing RNG while coordinating ----

/// How many draws the coordinator of `sleds[0]` makes to prepare `msg`
/// once its shares are in (`settle` delivers them), and the sleds after.
fn draws_to_prepare(mut sleds: Vec<Sled>, msg: &ReconfigureMsg) -> (usize, Vec<Sled>) {
    let before = sleds[0].rng.drawn;
    sleds[0].coordinate(msg).unwrap();
    settle(&mut sleds);
    assert_eq!(
        sleds[0].status().map(|s| s.phase),
        Some(CoordinatorPhase::Preparing)
    );
    (sleds[0].rng.drawn - before, sleds)
}

/// On a fresh rack the secret is made at once: whichever draw fails
/// (making the secret, or splitting it), the call says so, nothing is
/// stored or sent, and the same request again prepares.
#[test]
fn a_failing_rng_on_a_fresh_rack_is_reported_and_the_request_retried() {
    let msg = reconfigure(1, None, set(0..4), 3);
    let draws = {
        let mut sleds = fresh_sleds(4);
        connect_all(&mut sleds);
        draws_to_prepare(sleds, &msg).0
    };
    assert!(draws >= 2, "the secret and its split");
    for failing in 0..draws {
        let mut sleds = fresh_sleds(4);
        connect_all(&mut sleds);
        let s = &mut sleds[0];
        s.rng.break_after(failing, 1);
        let refused = s.without_write(|s| s.coordinate(&msg));
        assert_eq!(
            refused,
            Err(ReconfigureError::Rng(RngError)),
            "draw {failing}"
        );
        assert_eq!(s.count(Counter::RngFailure), 1);
        assert_eq!(s.count(Counter::Internal), 0);
        assert!(s.status().is_none());
        assert!(s.drain().is_empty());
        assert_eq!(s.coordinate(&msg), Ok(ReconfigureOutcome::Started));
        settle(&mut sleds);
        assert_eq!(sleds[0].status().unwrap().acked.len(), 4);
    }
}

/// While collecting the old secret's shares, an RNG failure at the prepare
/// (making the secret, splitting it, salting the sealed old secrets) used
/// to be counted and then nothing: the coordination sat in its collecting
/// phase with every share in, and Nexus's repeated request changed nothing.
/// Now the coordination stays collecting, and the same request again
/// retries the prepare.
#[test]
fn a_failing_rng_while_collecting_is_retried_by_the_same_request() {
    let msg = reconfigure(2, Some(1), set(0..4), 2);
    let (draws, _) = draws_to_prepare(committed_rack(4, 2), &msg);
    assert!(draws >= 3, "the secret, its split and the salt");
    for failing in 0..draws {
        let mut sleds = committed_rack(4, 2);
        // Every share that arrives completes the collection and tries
        // to prepare: let all of those attempts fail.
        sleds[0].rng.break_after(failing, usize::MAX);
        sleds[0].coordinate(&msg).unwrap();
        settle(&mut sleds);
        let s = &mut sleds[0];
        assert_eq!(
            s.status().map(|status| status.phase),
            Some(CoordinatorPhase::CollectingShares),
            "draw {failing}"
        );
        assert!(s.count(Counter::RngFailure) >= 1);
        assert_eq!(s.count(Counter::Internal), 0);
        assert!(s.ctx.persistent_state().get(Epoch(2)).is_none());
        assert!(s.drain().is_empty());

        // The RNG works again; Nexus repeats its request.
        s.rng.break_after(0, 0);
        assert_eq!(s.coordinate(&msg), Ok(ReconfigureOutcome::AlreadyRunning));
        assert_eq!(
            s.status().map(|status| status.phase),
            Some(CoordinatorPhase::Preparing)
        );
        settle(&mut sleds);
        assert_eq!(sleds[0].status().unwrap().acked.len(), 4);
        commit_all(&mut sleds, 2);
        assert_all_equal(&load_everywhere(&mut sleds, 2));
    }
}

/// A split that fails for another reason than the RNG used to be reported
/// as an RNG failure. A validated request cannot make `split` fail, so the
/// coordinator is started here, inside the crate, from a request that
/// skipped validation (threshold 5 of 3 members).
#[test]
fn a_split_failure_that_is_not_the_rng_is_not_reported_as_one() {
    let mut s = fresh_sleds(1).pop().unwrap();
    let members = set(0..3);
    let request = Validated {
        rack_id: RACK,
        epoch: Epoch(1),
        members: &members,
        threshold: Threshold::new(5).unwrap(),
        kind: RequestKind::Reconfigure {
            last_committed: None,
        },
    };
    let mut slot = None;
    let started = Coordinator::start(&mut slot, &mut s.ctx, &mut s.rng, request);
    assert_eq!(started, Err(StartFailed::Internal));
    assert!(slot.is_none());
    assert_eq!(s.count(Counter::Internal), 1);
    assert_eq!(s.count(Counter::RngFailure), 0);
    assert!(s.ctx.is_stored());
}

// ---- (e) LRTQ shares de-duplicated by digest only ----

/// The LRTQ collector used to refuse a second share from one sender
/// (`duplicate_share`), though sleds added after rack setup may hold spare
/// shares; what matters is that no share counts twice. Now a share with a
/// new digest is taken from anyone, and a replayed share (same digest) is
/// refused whoever sends it.
#[test]
fn lrtq_shares_are_de_duplicated_by_digest_only() {
    let (mut sleds, lrtq_secret) = lrtq_rack(5);
    connect_all(&mut sleds);
    sleds[0].upgrade(&upgrade(2, set(0..5), 3)).unwrap();
    let lrtq_share = |sled: &Sled| sled.ctx.persistent_state().lrtq().unwrap().share.clone();
    let (share_1, share_3) = (lrtq_share(&sleds[1]), lrtq_share(&sleds[3]));
    let coordinator = &mut sleds[0];
    coordinator.drain();
    coordinator.receive(&platform(1), &msg(Body::LrtqShare(share_1.clone())));
    // Sled 2 replays sled 1's share.
    coordinator.receive(&platform(2), &msg(Body::LrtqShare(share_1)));
    assert_eq!(coordinator.count(Counter::DuplicateLrtqShareDigest), 1);
    assert_eq!(
        coordinator.status().map(|s| s.phase),
        Some(CoordinatorPhase::CollectingLrtqShares)
    );
    // Sled 1 sends another share: the third, which rebuilds the secret.
    coordinator.receive(&platform(1), &msg(Body::LrtqShare(share_3)));
    assert_eq!(coordinator.count(Counter::DuplicateShare), 0);
    assert_eq!(
        coordinator.status().map(|s| s.phase),
        Some(CoordinatorPhase::Preparing)
    );
    settle(&mut sleds);
    commit_all(&mut sleds, 2);
    for secret in load_everywhere(&mut sleds, 1) {
        assert_eq!(secret.expose_secret(), &lrtq_secret);
    }
}

// ---- (g) a prepare that arrives while the share is computed ----

/// A member that missed a prepare and was handed the committed
/// configuration (`prepare_and_commit`) computes its share from the
/// others'. When the coordinator's `Prepare`, share included, reached it
/// before the last of those shares, the computed share found one stored
/// already: the node counted `internal` (a broken invariant of its own
/// code) and did not commit, waiting for Nexus's commit instead. Found by
/// `tq chaos --seed 3` (sled processes, the coordinator slowed by its
/// peers' faults). Now the computation ends in the commit, counting
/// nothing.
#[test]
fn a_prepare_arriving_while_the_share_is_computed_still_commits() {
    let mut sleds = committed_rack(5, 3);
    // Sled 4 misses the prepare of epoch 2, which the others ack.
    for s in sleds.iter_mut() {
        s.disconnect(&platform(4));
    }
    for id in (0..4).map(platform).collect::<Vec<_>>() {
        sleds[4].disconnect(&id);
    }
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..5), 3))
        .unwrap();
    settle(&mut sleds);
    let config = config_of(&sleds[0], 2);
    // Nexus commits on those acks; the coordinator has not heard yet.
    for s in &mut sleds[1..4] {
        s.commit(RACK, 2).unwrap();
    }
    assert_eq!(
        sleds[4].prepare_and_commit(&config),
        Ok(PrepareAndCommitOutcome::ComputingShare)
    );
    // The coordinator reaches sled 4 first: its Prepare comes in.
    sleds[0].connect(&platform(4));
    sleds[4].connect(&platform(0));
    settle(&mut sleds);
    assert!(
        sleds[4]
            .ctx
            .persistent_state()
            .get(Epoch(2))
            .unwrap()
            .share
            .is_some()
    );
    // Then the other members' shares complete the computation.
    connect_all(&mut sleds);
    settle(&mut sleds);
    assert_eq!(sleds[4].count(Counter::Internal), 0);
    assert_eq!(sleds[4].node.computing_share(), None);
    assert_eq!(sleds[4].committed(), Some(Epoch(2)));
}

// ---- (f) what prepare_and_commit did ----

/// `prepare_and_commit` used to return `Ok(())` whatever it did (commit,
/// start computing a share, or nothing, counting its refusals where Nexus
/// could not see them) and to refuse only an expunged node or another rack.
/// Now it says what it did, and each refusal is typed.
#[test]
fn prepare_and_commit_says_what_it_did() {
    let mut sleds = committed_rack(5, 3);
    // Sled 4 misses the prepare of epoch 2; sled 3 misses its commit.
    for s in sleds.iter_mut() {
        s.disconnect(&platform(4));
    }
    for id in (0..4).map(platform).collect::<Vec<_>>() {
        sleds[4].disconnect(&id);
    }
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..5), 3))
        .unwrap();
    settle(&mut sleds);
    let config = config_of(&sleds[0], 2);
    for s in &mut sleds[..3] {
        s.commit(RACK, 2).unwrap();
    }
    sleds.iter_mut().for_each(|s| drop(s.take_events()));

    // Prepared here: committed now.
    let s = &mut sleds[3];
    assert_eq!(
        s.prepare_and_commit(&config),
        Ok(PrepareAndCommitOutcome::Committed)
    );
    assert_eq!(s.committed(), Some(Epoch(2)));
    assert_eq!(s.take_events(), [Event::Committed(Epoch(2))]);
    // And again: nothing to do.
    let again = s.without_write(|s| s.prepare_and_commit(&config));
    assert_eq!(again, Ok(PrepareAndCommitOutcome::AlreadyCommitted));
    assert!(s.take_events().is_empty());

    // Not prepared here: the share is computed, then committed.
    let s = &mut sleds[4];
    assert_eq!(
        s.prepare_and_commit(&config),
        Ok(PrepareAndCommitOutcome::ComputingShare)
    );
    assert_eq!(s.committed(), Some(Epoch(1)));
    let again = s.without_write(|s| s.prepare_and_commit(&config));
    assert_eq!(again, Ok(PrepareAndCommitOutcome::ComputingShare));
    connect_all(&mut sleds);
    settle(&mut sleds);
    assert_eq!(sleds[4].committed(), Some(Epoch(2)));
    assert_eq!(
        sleds[4].prepare_and_commit(&config),
        Ok(PrepareAndCommitOutcome::AlreadyCommitted)
    );
}

#[test]
fn prepare_and_commit_refusals_are_typed() {
    let mut sleds = committed_rack(4, 2);
    let config_1 = config_of(&sleds[0], 1);
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..3), 2))
        .unwrap();
    settle(&mut sleds);
    commit_all(&mut sleds, 2);
    let config_2 = config_of(&sleds[0], 2);

    // Sled 3 was removed by epoch 2.
    assert_eq!(
        sleds[3].without_write(|s| s.prepare_and_commit(&config_2)),
        Err(PrepareAndCommitError::NotAMember)
    );
    // Epoch 1 is older than what sled 0 committed.
    assert_eq!(
        sleds[0].without_write(|s| s.prepare_and_commit(&config_1)),
        Err(PrepareAndCommitError::NewerCommitted {
            epoch: Epoch(1),
            latest: Epoch(2)
        })
    );
    // Another configuration for committed epoch 2 (no alarm: see
    // `another_configuration_for_a_committed_epoch_raises_no_alarm`).
    assert_eq!(
        sleds[1].without_write(|s| s.prepare_and_commit(&differing(&config_2))),
        Err(PrepareAndCommitError::ConflictsWithCommitted(Epoch(2)))
    );
    // Another rack.
    let mut other_rack = config_2.fields().clone();
    other_rack.rack_id = OTHER_RACK;
    let other_rack = Configuration::new(other_rack).unwrap();
    assert_eq!(
        sleds[1].without_write(|s| s.prepare_and_commit(&other_rack)),
        Err(PrepareAndCommitError::RackIdMismatch(RackMismatch {
            expected: RACK,
            got: OTHER_RACK
        }))
    );
    // Expunged: sled 3 learns it from a member of epoch 2.
    sleds[3].receive(&platform(0), &msg(Body::Expunged(Epoch(2))));
    assert_eq!(
        sleds[3].without_write(|s| s.prepare_and_commit(&config_2)),
        Err(PrepareAndCommitError::Expunged(ExpungedAt {
            epoch: Epoch(2),
            from: platform(0)
        }))
    );
}

/// A node coordinating a newer epoch than the configuration Nexus hands it
/// refuses to start computing that configuration's share (Nexus starts a
/// coordination only after the commit it names, so the call is stale).
#[test]
fn prepare_and_commit_refuses_below_a_running_coordination() {
    let mut sleds = committed_rack(5, 3);
    for s in sleds.iter_mut() {
        s.disconnect(&platform(4));
    }
    for id in (0..4).map(platform).collect::<Vec<_>>() {
        sleds[4].disconnect(&id);
    }
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..5), 3))
        .unwrap();
    settle(&mut sleds);
    let config_2 = config_of(&sleds[0], 2);
    // Sled 4, which missed epoch 2, is asked to coordinate epoch 3 after 1.
    let s = &mut sleds[4];
    s.coordinate(&reconfigure(3, Some(1), set(0..5), 3))
        .unwrap();
    assert_eq!(
        s.without_write(|s| s.prepare_and_commit(&config_2)),
        Err(PrepareAndCommitError::CoordinatingNewerEpoch(Epoch(3)))
    );
    assert_eq!(s.node.computing_share(), None);
}

// ---- (g) an alarm any member could raise (issue 17, defect 4) ----

/// `config` with one member's share digest changed: another configuration
/// for the same epoch, from the same members.
fn differing(config: &Configuration) -> Configuration {
    let mut other = config.fields().clone();
    other.members[1].share_digest = ShareDigest([0x5a; 32]);
    Configuration::new(other).unwrap()
}

/// A `CommitAdvance` carrying another configuration for the epoch a node
/// had committed used to raise `MismatchedConfigurations` there: any member
/// could put any node in alarm. An epoch not newer than the latest commit
/// is ignored and counted (PROTOCOL.md section 6); the node's own state
/// proves this one false.
#[test]
fn a_commit_advance_with_another_configuration_for_the_committed_epoch_is_ignored() {
    let mut sleds = committed_rack(4, 2);
    let committed = config_of(&sleds[1], 1);
    let s = &mut sleds[1];
    s.take_events();
    s.without_write(|s| {
        s.receive(
            &platform(0),
            &msg(Body::CommitAdvance(differing(&committed))),
        )
    });
    assert_eq!(s.ctx.alarms(), &[]);
    assert_eq!(s.count(Counter::FalseClaim), 1);
    assert_eq!(s.count(Counter::ConflictingConfiguration), 0);
    assert!(s.take_events().is_empty());
    assert_eq!(config_of(s, 1), committed);
    // The same for an epoch older than the latest commit: stale.
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..4), 2))
        .unwrap();
    settle(&mut sleds);
    commit_all(&mut sleds, 2);
    let s = &mut sleds[1];
    s.without_write(|s| {
        s.receive(
            &platform(0),
            &msg(Body::CommitAdvance(differing(&committed))),
        )
    });
    assert_eq!(s.ctx.alarms(), &[]);
    assert_eq!(s.count(Counter::WrongEpoch), 1);
}

/// The order of PROTOCOL.md section 6: a stale `CommitAdvance` is ignored
/// as stale before its sender is looked at, so one from outside its
/// configuration for an epoch already committed counts as `wrong_epoch`,
/// not `false_claim`.
#[test]
fn a_commit_advance_is_judged_stale_before_its_sender() {
    let mut sleds = committed_rack(5, 2);
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..4), 2))
        .unwrap();
    settle(&mut sleds);
    commit_all(&mut sleds, 2);
    let config_2 = config_of(&sleds[0], 2);
    let s = &mut sleds[1];
    // Sled 4 was removed by epoch 2.
    s.without_write(|s| s.receive(&platform(4), &msg(Body::CommitAdvance(config_2.clone()))));
    assert_eq!(s.count(Counter::WrongEpoch), 1);
    assert_eq!(s.count(Counter::FalseClaim), 0);
}

/// Nexus handing `prepare_and_commit` another configuration for an epoch
/// the node committed used to raise the alarm too. It is a typed refusal:
/// the node's own state is intact, and the same configuration again is
/// still `AlreadyCommitted`.
#[test]
fn prepare_and_commit_of_another_configuration_for_the_committed_epoch_is_refused() {
    let mut sleds = committed_rack(4, 2);
    let committed = config_of(&sleds[1], 1);
    let s = &mut sleds[1];
    s.take_events();
    assert_eq!(
        s.without_write(|s| s.prepare_and_commit(&differing(&committed))),
        Err(PrepareAndCommitError::ConflictsWithCommitted(Epoch(1)))
    );
    assert_eq!(s.ctx.alarms(), &[]);
    assert!(s.take_events().is_empty());
    assert_eq!(
        s.without_write(|s| s.prepare_and_commit(&committed)),
        Ok(PrepareAndCommitOutcome::AlreadyCommitted)
    );
}
