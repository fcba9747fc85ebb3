//! The Nexus-facing calls, their results and their refusals.

use super::*;

// ---- coordinate_reconfiguration ----

#[test]
fn a_fresh_rack_prepares_commits_and_loads_one_secret() {
    let mut sleds = fresh_sleds(5);
    connect_all(&mut sleds);
    let msg = reconfigure(1, None, set(0..5), 3);
    let writes = sleds[0].io.writes;
    assert_eq!(sleds[0].coordinate(&msg), Ok(ReconfigureOutcome::Started));
    assert_eq!(sleds[0].io.writes, writes + 1, "the prepare is stored");
    settle(&mut sleds);

    let status = sleds[0].status().unwrap();
    assert_eq!(status.epoch, Epoch(1));
    assert_eq!(status.phase, CoordinatorPhase::Preparing);
    assert_eq!(status.acked.len(), 5);
    let config = status.config.unwrap().clone();
    assert_eq!(config.encrypted_rack_secrets(), None);
    for sled in &sleds {
        assert_eq!(config_of(sled, 1), config);
    }

    commit_all(&mut sleds, 1);
    assert!(sleds[0].status().is_none());
    assert!(sleds.iter().all(|s| s.committed() == Some(Epoch(1))));
    let secrets = load_everywhere(&mut sleds, 1);
    assert_all_equal(&secrets);
    assert!(sleds.iter().all(|s| s.ctx.alarms().is_empty()));
}

#[test]
fn a_reconfiguration_carries_the_old_secret_forward() {
    let mut sleds = committed_rack(5, 3);
    let old = load_everywhere(&mut sleds, 1);

    let msg = reconfigure(2, Some(1), set(0..5), 3);
    sleds[1].coordinate(&msg).unwrap();
    let status = sleds[1].status().unwrap();
    assert_eq!(status.phase, CoordinatorPhase::CollectingShares);
    settle(&mut sleds);
    let config = config_of(&sleds[1], 2);
    assert!(config.encrypted_rack_secrets().is_some());
    commit_all(&mut sleds, 2);

    sleds.iter_mut().for_each(|s| s.node.clear_secrets());
    let new = load_everywhere(&mut sleds, 2);
    assert_all_equal(&new);
    assert!(!bool::from(new[0].ct_eq(&old[0])));
    let carried = load_everywhere(&mut sleds, 1);
    assert!(bool::from(carried[3].ct_eq(&old[0])));
}

#[test]
fn reconfiguration_rejections() {
    let mut sleds = committed_rack(4, 2);
    let s = &mut sleds[0];
    let reject = |s: &mut Sled, msg: ReconfigureMsg| s.coordinate(&msg).unwrap_err();
    let k = |k| Threshold::new(k).unwrap();

    let mut wrong_rack = reconfigure(2, Some(1), set(0..4), 2);
    wrong_rack.rack_id = OTHER_RACK;
    assert_eq!(
        reject(s, wrong_rack),
        ReconfigureError::RackIdMismatch(RackMismatch {
            expected: RACK,
            got: OTHER_RACK
        })
    );
    assert_eq!(
        reject(s, reconfigure(2, Some(1), set(1..4), 2)),
        ReconfigureError::NotAMember
    );
    assert_eq!(
        reject(s, reconfigure(2, Some(1), set(0..2), 2)),
        ReconfigureError::MemberCount(2)
    );
    assert_eq!(
        reject(s, reconfigure(2, Some(1), set(0..4), 4)),
        ReconfigureError::ThresholdTooLarge {
            threshold: k(4),
            members: 4
        }
    );
    assert_eq!(
        reject(s, reconfigure(2, None, set(0..4), 2)),
        ReconfigureError::LastCommittedEpochMismatch {
            node: Some(Epoch(1)),
            request: None
        }
    );
    assert_eq!(
        reject(s, reconfigure(1, Some(1), set(0..4), 2)),
        ReconfigureError::EpochNotNewer { latest: Epoch(1) }
    );

    s.coordinate(&reconfigure(5, Some(1), set(0..4), 2))
        .unwrap();
    assert_eq!(
        reject(s, reconfigure(4, Some(1), set(0..4), 2)),
        ReconfigureError::NewerCoordinationRunning(Epoch(5))
    );
    assert_eq!(
        reject(s, reconfigure(5, Some(1), set(0..4), 3)),
        ReconfigureError::DifferentRequestRunning(Epoch(5))
    );
    // The same request again is accepted and changes nothing: no write, no
    // message.
    s.drain();
    let outcome = s.without_write(|s| s.coordinate(&reconfigure(5, Some(1), set(0..4), 2)));
    assert_eq!(outcome, Ok(ReconfigureOutcome::AlreadyRunning));
    assert!(s.drain().is_empty());
}

#[test]
fn an_lrtq_only_node_must_upgrade_first() {
    let (mut sleds, _) = lrtq_rack(4);
    assert_eq!(
        sleds[0].coordinate(&reconfigure(2, None, set(0..4), 2)),
        Err(ReconfigureError::MustUpgradeFromLrtq)
    );
}

#[test]
fn an_expunged_node_refuses_every_nexus_call() {
    let mut sleds = committed_rack(4, 2);
    let s = &mut sleds[0];
    let from = platform(1);
    // Epoch 2, which sled 0 never saw, left it out. (This used to say
    // epoch 1, which sled 0 stores and is a member of: that claim is now
    // refused as false, see `defects.rs`.)
    s.receive(&from, &msg(Body::Expunged(Epoch(2))));
    let expunged = ExpungedAt {
        epoch: Epoch(2),
        from: from.clone(),
    };
    assert_eq!(s.ctx.persistent_state().expunged().unwrap().epoch, Epoch(2));
    assert_eq!(
        s.coordinate(&reconfigure(2, Some(1), set(0..4), 2)),
        Err(ReconfigureError::Expunged(expunged.clone()))
    );
    assert_eq!(
        s.commit(RACK, 2),
        Err(CommitError::Expunged(expunged.clone()))
    );
    let config = config_of(s, 1);
    assert_eq!(
        s.prepare_and_commit(&config),
        Err(PrepareAndCommitError::Expunged(expunged.clone()))
    );
    assert_eq!(s.load(1).err(), Some(LoadSecretError::Expunged(expunged)));
    // Peer messages are dropped and counted.
    s.drain();
    s.receive(&from, &msg(Body::GetShare(Epoch(1))));
    assert_eq!(s.count(Counter::WhileExpunged), 1);
    assert!(s.drain().is_empty());
}

// ---- LRTQ upgrade ----

#[test]
fn an_lrtq_rack_upgrades_and_keeps_its_secret_as_epoch_1() {
    let (mut sleds, lrtq_secret) = lrtq_rack(5);
    connect_all(&mut sleds);
    sleds[2].upgrade(&upgrade(2, set(0..5), 3)).unwrap();
    let status = sleds[2].status().unwrap();
    assert_eq!(status.phase, CoordinatorPhase::CollectingLrtqShares);
    settle(&mut sleds);
    let status = sleds[2].status().unwrap();
    assert_eq!(status.phase, CoordinatorPhase::Preparing);
    assert_eq!(status.acked.len(), 5);
    commit_all(&mut sleds, 2);
    let epoch_1 = load_everywhere(&mut sleds, 1);
    for secret in &epoch_1 {
        assert_eq!(secret.expose_secret(), &lrtq_secret);
    }
    assert_all_equal(&load_everywhere(&mut sleds, 2));
}

#[test]
fn lrtq_upgrade_rejections() {
    let (mut sleds, _) = lrtq_rack(4);
    let s = &mut sleds[0];
    let reject = |s: &mut Sled, msg: LrtqUpgradeMsg| s.upgrade(&msg).unwrap_err();
    let mut wrong_rack = upgrade(2, set(0..4), 2);
    wrong_rack.rack_id = OTHER_RACK;
    assert_eq!(
        reject(s, wrong_rack),
        LrtqUpgradeError::RackIdMismatch(RackMismatch {
            expected: RACK,
            got: OTHER_RACK
        })
    );
    assert_eq!(
        reject(s, upgrade(2, set(1..4), 2)),
        LrtqUpgradeError::NotAMember
    );
    assert_eq!(
        reject(s, upgrade(2, set(0..2), 2)),
        LrtqUpgradeError::MemberCount(2)
    );
    assert_eq!(
        reject(s, upgrade(2, set(0..4), 4)),
        LrtqUpgradeError::ThresholdTooLarge {
            threshold: Threshold::new(4).unwrap(),
            members: 4
        }
    );
    assert_eq!(
        reject(s, upgrade(1, set(0..4), 2)),
        LrtqUpgradeError::EpochTooSmall(Epoch(1))
    );
    s.upgrade(&upgrade(3, set(0..4), 2)).unwrap();
    // No idempotent repeat.
    assert_eq!(
        reject(s, upgrade(3, set(0..4), 2)),
        LrtqUpgradeError::EpochNotNewer { latest: Epoch(3) }
    );
    assert_eq!(
        s.coordinate(&reconfigure(4, None, set(0..4), 2)),
        Err(ReconfigureError::MustUpgradeFromLrtq)
    );

    let mut fresh = fresh_sleds(1);
    assert_eq!(
        reject(&mut fresh[0], upgrade(2, set(0..4), 2)),
        LrtqUpgradeError::NoLrtqData
    );
}

#[test]
fn an_upgraded_rack_refuses_a_second_upgrade() {
    let (mut sleds, _) = lrtq_rack(4);
    connect_all(&mut sleds);
    sleds[0].upgrade(&upgrade(2, set(0..4), 2)).unwrap();
    settle(&mut sleds);
    commit_all(&mut sleds, 2);
    assert_eq!(
        sleds[1].upgrade(&upgrade(3, set(0..4), 2)),
        Err(LrtqUpgradeError::AlreadyCommitted(Epoch(2)))
    );
}

// ---- commit_configuration and prepare_and_commit ----

#[test]
fn commit_rejections_and_repeats() {
    let mut sleds = committed_rack(4, 2);
    let s = &mut sleds[0];
    assert_eq!(
        s.commit(OTHER_RACK, 1),
        Err(CommitError::RackIdMismatch(RackMismatch {
            expected: RACK,
            got: OTHER_RACK
        }))
    );
    assert_eq!(s.commit(RACK, 2), Err(CommitError::NotPrepared(Epoch(2))));
    let repeat = s.without_write(|s| s.commit(RACK, 1));
    assert_eq!(
        repeat,
        Ok(CommitOutcome::AlreadyCommitted),
        "a repeated commit changes nothing"
    );
}

#[test]
fn a_sled_that_missed_the_prepare_computes_its_share() {
    let mut sleds = committed_rack(5, 3);
    // Sled 4 is away during the prepare of epoch 2.
    for s in sleds.iter_mut() {
        s.disconnect(&platform(4));
    }
    let ids: Vec<PlatformId> = (0..4).map(platform).collect();
    for id in &ids {
        sleds[4].disconnect(id);
    }
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..5), 3))
        .unwrap();
    settle(&mut sleds);
    let config = config_of(&sleds[0], 2);
    commit_all(&mut sleds, 2);
    let late = &mut sleds[4];
    assert_eq!(late.committed(), Some(Epoch(1)));
    assert_eq!(
        late.commit(RACK, 2),
        Err(CommitError::NotPrepared(Epoch(2)))
    );
    let mut other = config.fields().clone();
    other.rack_id = OTHER_RACK;
    let wrong = Configuration::new(other).unwrap();
    assert_eq!(
        late.prepare_and_commit(&wrong),
        Err(PrepareAndCommitError::RackIdMismatch(RackMismatch {
            expected: RACK,
            got: OTHER_RACK
        }))
    );
    assert_eq!(
        late.prepare_and_commit(&config),
        Ok(PrepareAndCommitOutcome::ComputingShare)
    );
    assert_eq!(late.node.computing_share(), Some(Epoch(2)));
    connect_all(&mut sleds);
    settle(&mut sleds);
    assert_eq!(sleds[4].committed(), Some(Epoch(2)));
    assert_eq!(sleds[4].node.computing_share(), None);
    assert_all_equal(&load_everywhere(&mut sleds, 2));
}

// ---- load_rack_secret and clear_secrets ----

#[test]
fn load_rejections_and_clearing() {
    let mut fresh = fresh_sleds(1);
    assert_eq!(
        fresh[0].load(1).err(),
        Some(LoadSecretError::NoCommittedConfiguration)
    );

    let mut sleds = committed_rack(4, 2);
    let s = &mut sleds[0];
    assert_eq!(
        s.load(2).err(),
        Some(LoadSecretError::NotCommitted(Epoch(2)))
    );
    assert!(s.load(1).unwrap().is_none());
    assert_eq!(s.node.loading(), Some(Epoch(1)));
    load_everywhere(&mut sleds, 1);
    let s = &mut sleds[0];
    assert_eq!(
        s.load(0).err(),
        Some(LoadSecretError::TooOld {
            epoch: Epoch(0),
            oldest_retained: Epoch(1)
        })
    );
    s.node.clear_secrets();
    assert!(s.load(1).unwrap().is_none());
}

/// The latest secret: refused at once with nothing committed, "not yet"
/// while its shares come, then the latest epoch's.
#[test]
fn the_latest_secret_names_its_epoch() {
    let mut fresh = fresh_sleds(1);
    assert_eq!(
        fresh[0].load_latest().err(),
        Some(LoadSecretError::NoCommittedConfiguration)
    );
    let mut sleds = committed_rack(4, 2);
    assert!(sleds[0].load_latest().unwrap().is_none());
    let loaded = load_everywhere(&mut sleds, 1);
    let (epoch, secret) = sleds[0].load_latest().unwrap().unwrap();
    assert_eq!(epoch, Epoch(1));
    assert!(bool::from(secret.ct_eq(&loaded[0])));
}

#[test]
fn the_oldest_secret_is_dropped_past_max_retained_secrets() {
    use crate::limits::MAX_RETAINED_SECRETS;
    let mut sleds = committed_rack(4, 2);
    let last = MAX_RETAINED_SECRETS as u64 + 2;
    for epoch in 2..=last {
        sleds[0]
            .coordinate(&reconfigure(epoch, Some(epoch - 1), set(0..4), 2))
            .unwrap();
        settle(&mut sleds);
        commit_all(&mut sleds, epoch);
    }
    // Configuration `last` would carry 1..last-1: one too many.
    assert_eq!(sleds[0].count(Counter::RetainedSecretDropped), 1);
    load_everywhere(&mut sleds, last);
    assert_eq!(
        sleds[1].load(1).err(),
        Some(LoadSecretError::TooOld {
            epoch: Epoch(1),
            oldest_retained: Epoch(2)
        })
    );
    assert!(sleds[1].load(2).unwrap().is_some());
}

#[test]
fn a_node_with_its_context_fits_the_ram_budget() {
    // PROTOCOL budget for the service processor: one node and everything it
    // keeps, persistent state included, within 64 KiB.
    let total = core::mem::size_of::<Node>() + core::mem::size_of::<NodeCtx>();
    assert!(total <= 64 * 1024, "node + context is {total} bytes");
}

/// While collecting LRTQ shares, a member that reconnects is asked again
/// only if it has not answered yet.
#[test]
fn a_reconnecting_member_is_asked_for_its_lrtq_share_only_until_it_answered() {
    let (mut sleds, _) = lrtq_rack(5);
    connect_all(&mut sleds);
    sleds[0].upgrade(&upgrade(2, set(0..5), 3)).unwrap();
    let (coordinator, answering) = (sleds[0].id(), sleds[1].id());
    // Only sled 1 gets the request and answers: with the coordinator's own
    // share that is 2 of the 3 the LRTQ threshold needs.
    let asked = sleds[0].drain();
    let (_, request) = asked.iter().find(|(to, _)| *to == answering).unwrap();
    sleds[1].receive_bytes(&coordinator, request);
    for (to, bytes) in sleds[1].drain() {
        deliver(&mut sleds, &answering, &to, &bytes);
    }
    assert_eq!(
        sleds[0].status().unwrap().phase,
        CoordinatorPhase::CollectingLrtqShares
    );
    for peer in [1, 2] {
        let id = sleds[peer].id();
        sleds[0].disconnect(&id);
        sleds[0].connect(&id);
    }
    let asked_again: Vec<PlatformId> = sleds[0]
        .drain()
        .into_iter()
        .filter(|(_, bytes)| {
            matches!(
                wire::decode_peer_msg(bytes).unwrap().body,
                Body::GetLrtqShare
            )
        })
        .map(|(to, _)| to)
        .collect();
    assert_eq!(asked_again, [sleds[2].id()]);
}
