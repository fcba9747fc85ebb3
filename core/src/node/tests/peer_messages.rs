//! Messages from peers: answers, and refusals counted.

use super::*;

#[test]
fn messages_for_another_rack_are_counted_and_dropped() {
    let mut sleds = committed_rack(4, 2);
    sleds[0].drain();
    sleds[0].receive(
        &platform(1),
        &Envelope {
            rack_id: OTHER_RACK,
            body: Body::GetShare(Epoch(1)),
        },
    );
    assert_eq!(sleds[0].count(Counter::WrongRackId), 1);
    assert!(sleds[0].drain().is_empty());
}

#[test]
fn undecodable_bytes_are_counted() {
    let mut sleds = committed_rack(4, 2);
    let s = &mut sleds[0];
    s.receive_bytes(&platform(1), &[wire::PEER_MSG_VERSION, 0xff, 0xff]);
    s.receive_bytes(&platform(1), &[]);
    assert_eq!(s.count(Counter::Undecodable), 2);
    // A newer peer's format is counted apart.
    s.receive_bytes(&platform(1), &[wire::PEER_MSG_VERSION + 1, 0]);
    assert_eq!(s.count(Counter::UnsupportedVersion), 1);
    assert_eq!(s.count(Counter::Undecodable), 2);
}

#[test]
fn get_share_answers() {
    let mut sleds = committed_rack(4, 2);
    let s = &mut sleds[0];
    s.drain();
    // A member gets the share.
    s.receive(&platform(1), &msg(Body::GetShare(Epoch(1))));
    let sent = s.drain();
    assert_eq!(sent.len(), 1);
    let reply = wire::decode_peer_msg(&sent[0].1).unwrap();
    let Body::Share { epoch, share } = reply.body else {
        panic!("expected a share");
    };
    assert_eq!(epoch, Epoch(1));
    assert!(bool::from(
        share.matches(config_of(s, 1).share_digest(s.ctx.id()).unwrap())
    ));
    // A non-member is told it is expunged (once connected).
    s.connect(&platform(9));
    s.receive(&platform(9), &msg(Body::GetShare(Epoch(1))));
    let reply = wire::decode_peer_msg(&s.drain()[0].1).unwrap();
    assert!(matches!(reply.body, Body::Expunged(Epoch(1))));
    // An unknown epoch cannot be answered.
    s.receive(&platform(1), &msg(Body::GetShare(Epoch(7))));
    assert_eq!(s.count(Counter::CannotAnswer), 1);
}

#[test]
fn a_sled_asking_about_an_old_epoch_is_told_what_committed() {
    let mut sleds = committed_rack(4, 2);
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..3), 2))
        .unwrap();
    settle(&mut sleds);
    commit_all(&mut sleds, 2);
    let s = &mut sleds[1];
    s.receive(&platform(2), &msg(Body::GetShare(Epoch(1))));
    let reply = wire::decode_peer_msg(&s.drain()[0].1).unwrap();
    let Body::CommitAdvance(config) = reply.body else {
        panic!("expected CommitAdvance");
    };
    assert_eq!(config, config_of(s, 2));
    // Sled 3 was removed in epoch 2.
    s.receive(&platform(3), &msg(Body::GetShare(Epoch(1))));
    let reply = wire::decode_peer_msg(&s.drain()[0].1).unwrap();
    assert!(matches!(reply.body, Body::Expunged(Epoch(2))));
    s.receive(&platform(3), &msg(Body::GetLrtqShare));
    let reply = wire::decode_peer_msg(&s.drain()[0].1).unwrap();
    assert!(matches!(reply.body, Body::Expunged(Epoch(2))));
}

#[test]
fn the_removed_sled_learns_it_is_expunged() {
    let mut sleds = committed_rack(4, 2);
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..3), 2))
        .unwrap();
    settle(&mut sleds);
    commit_all(&mut sleds, 2);
    // The removed sled still thinks epoch 1 is current and tries to load.
    sleds[3].node.clear_secrets();
    let _ = sleds[3].load(1);
    settle(&mut sleds);
    let expunged = sleds[3].ctx.persistent_state().expunged().unwrap();
    assert_eq!(expunged.epoch, Epoch(2));
}

#[test]
fn prepares_that_do_not_fit_are_refused() {
    let mut sleds = committed_rack(4, 2);
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..4), 2))
        .unwrap();
    settle(&mut sleds);
    let config = config_of(&sleds[0], 2);
    let share_of_1 = share_of(&sleds[1], 2);
    let mut fresh = Sled::new(1, PersistentState::new());
    fresh.connect(&platform(2));
    // Not from the coordinator.
    fresh.receive(
        &platform(2),
        &msg(Body::Prepare {
            config: config.clone(),
            share: share_of_1.clone(),
            last_committed: Some(Epoch(1)),
        }),
    );
    assert_eq!(fresh.count(Counter::InvalidPrepare), 1);
    // Somebody else's share.
    let share_of_2 = share_of(&sleds[2], 2);
    fresh.receive(
        &platform(0),
        &msg(Body::Prepare {
            config: config.clone(),
            share: share_of_2,
            last_committed: Some(Epoch(1)),
        }),
    );
    assert_eq!(fresh.count(Counter::InvalidPrepare), 2);
    // For a sled that is not a member: counted as `not_a_member` now (it
    // was `from_non_member`, which now only means the sender is not a
    // member).
    let mut outsider = Sled::new(9, PersistentState::new());
    outsider.receive(
        &platform(0),
        &msg(Body::Prepare {
            config: config.clone(),
            share: share_of_1.clone(),
            last_committed: Some(Epoch(1)),
        }),
    );
    assert_eq!(outsider.count(Counter::NotAMember), 1);
    // Already committed.
    let committed = config_of(&sleds[1], 1);
    sleds[1].receive(
        &platform(0),
        &msg(Body::Prepare {
            config: committed,
            share: share_of_1,
            last_committed: None,
        }),
    );
    assert_eq!(sleds[1].count(Counter::WrongEpoch), 1);
    assert!(fresh.ctx.persistent_state().get(Epoch(2)).is_none());
}

#[test]
fn a_second_configuration_for_one_epoch_raises_the_alarm() {
    let mut sleds = committed_rack(4, 2);
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..4), 2))
        .unwrap();
    settle(&mut sleds);
    let mut other = config_of(&sleds[0], 2).fields().clone();
    other.threshold = Threshold::new(3).unwrap();
    let other = Configuration::new(other).unwrap();
    sleds[1].receive(&platform(0), &msg(Body::CommitAdvance(other)));
    assert_eq!(
        sleds[1].ctx.alarms(),
        &[Alarm::MismatchedConfigurations(Epoch(2))]
    );
    assert_eq!(sleds[1].count(Counter::ConflictingConfiguration), 1);
}

#[test]
fn shares_that_do_not_match_their_digest_are_counted() {
    let mut sleds = committed_rack(4, 2);
    let s = &mut sleds[0];
    assert!(s.load(1).unwrap().is_none());
    let bogus = Share::new(2, &[9; 32]).unwrap();
    s.receive(
        &platform(1),
        &msg(Body::Share {
            epoch: Epoch(1),
            share: bogus,
        }),
    );
    assert_eq!(s.count(Counter::InvalidShareDigest), 1);
    assert!(s.load(1).unwrap().is_none());
}

#[test]
fn acks_after_the_commit_are_late_not_anomalies() {
    let mut sleds = committed_rack(4, 2);
    // Sled 0 coordinated epoch 1; Nexus committed before sled 1's ack came.
    let s = &mut sleds[0];
    s.receive(&platform(1), &msg(Body::PrepareAck(Epoch(1))));
    assert_eq!(s.count(Counter::LatePrepareAck), 1);
    assert_eq!(s.ctx.counters().anomalies(), 0);
}

#[test]
fn acks_nothing_explains_are_anomalies() {
    let mut sleds = committed_rack(4, 2);
    // Sled 1 coordinated nothing; nobody prepared epoch 7.
    let s = &mut sleds[1];
    s.receive(&platform(2), &msg(Body::PrepareAck(Epoch(1))));
    s.receive(&platform(2), &msg(Body::PrepareAck(Epoch(7))));
    assert_eq!(s.count(Counter::Unexpected), 2);
    assert_eq!(s.count(Counter::LatePrepareAck), 0);
}

#[test]
fn shares_after_a_load_finished_are_late_not_anomalies() {
    let mut sleds = committed_rack(5, 3);
    for sled in &mut sleds {
        sled.call(|node, _, _| node.clear_secrets());
    }
    settle(&mut sleds);
    // Sled 0 asks sleds 1 and 2, widens before they answer (the caller's
    // patience ran out), so 3 and 4 are asked too: two of the four shares
    // come after its collection finished.
    assert!(sleds[0].load(1).unwrap().is_none());
    sleds[0].call(|node, ctx, _| node.widen_secret_load(ctx));
    settle(&mut sleds);
    assert!(sleds[0].load(1).unwrap().is_some());
    assert_eq!(sleds[0].count(Counter::LateShare), 2);
    assert_eq!(anomalies(&sleds), 0);
}

#[test]
fn unwanted_shares_that_are_forged_or_unexplained_are_anomalies() {
    let mut sleds = committed_rack(4, 2);
    let share_of_1 = share_of(&sleds[1], 1);
    let s = &mut sleds[0];
    // Nothing is being collected here.
    let bogus = Share::new(2, &[1; 32]).unwrap();
    let share = |epoch, share| msg(Body::Share { epoch, share });
    s.receive(&platform(1), &share(Epoch(1), bogus));
    assert_eq!(s.count(Counter::InvalidShareDigest), 1);
    s.receive(&platform(1), &share(Epoch(9), share_of_1.clone()));
    assert_eq!(s.count(Counter::Unexpected), 1);
    // Sled 1's genuine share, but sent by sled 2.
    s.receive(&platform(2), &share(Epoch(1), share_of_1));
    assert_eq!(s.count(Counter::InvalidShareDigest), 2);
    assert_eq!(s.count(Counter::LateShare), 0);
}

#[test]
fn an_lrtq_upgrade_and_loads_count_no_anomaly() {
    let (mut sleds, _) = lrtq_rack(5);
    connect_all(&mut sleds);
    sleds[0].upgrade(&upgrade(2, set(0..5), 3)).unwrap();
    settle(&mut sleds);
    commit_all(&mut sleds, 2);
    assert_all_equal(&load_everywhere(&mut sleds, 2));
    // The coordinator needs 3 LRTQ shares of the 5 it asked for.
    assert!(sleds[0].count(Counter::LateLrtqShare) > 0);
    assert_eq!(anomalies(&sleds), 0);
}

#[test]
fn lrtq_shares_nothing_explains_are_anomalies() {
    let (mut lrtq, _) = lrtq_rack(2);
    let genuine = lrtq[1].ctx.persistent_state().lrtq().unwrap().share.clone();
    // Forged, at an LRTQ sled that collects nothing.
    let mut forged = *genuine.expose_bytes();
    forged[5] ^= 1;
    let forged = LrtqShare::from_bytes(&forged).unwrap();
    lrtq[0].receive(&platform(1), &msg(Body::LrtqShare(forged)));
    assert_eq!(lrtq[0].count(Counter::UnknownLrtqShareDigest), 1);
    // At a sled that never had LRTQ data.
    let mut fresh = committed_rack(4, 2);
    fresh[0].receive(&platform(1), &msg(Body::LrtqShare(genuine)));
    assert_eq!(fresh[0].count(Counter::Unexpected), 1);
    assert_eq!(fresh[0].count(Counter::LateLrtqShare), 0);
}

#[test]
fn an_expunged_message_about_an_old_epoch_is_ignored() {
    let mut sleds = committed_rack(4, 2);
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..4), 2))
        .unwrap();
    settle(&mut sleds);
    sleds[1].receive(&platform(0), &msg(Body::Expunged(Epoch(1))));
    assert!(sleds[1].ctx.persistent_state().expunged().is_none());
    assert_eq!(sleds[1].count(Counter::WrongEpoch), 1);
}

#[test]
fn reconnecting_resends_a_pending_prepare() {
    let mut sleds = fresh_sleds(4);
    connect_all(&mut sleds);
    let msg = reconfigure(1, None, set(0..4), 2);
    sleds[0].coordinate(&msg).unwrap();
    // The prepare to sled 3 is lost.
    let sent = sleds[0].drain();
    assert_eq!(sent.len(), 3);
    for (to, bytes) in sent.iter().filter(|(to, _)| *to != platform(3)) {
        deliver(&mut sleds, &platform(0), to, bytes);
    }
    settle(&mut sleds);
    assert_eq!(sleds[0].status().unwrap().acked.len(), 3);
    sleds[0].disconnect(&platform(3));
    sleds[0].connect(&platform(3));
    settle(&mut sleds);
    assert_eq!(sleds[0].status().unwrap().acked.len(), 4);
}

#[test]
fn requests_wait_for_a_connection_and_replies_to_strangers_are_counted() {
    let mut sleds = fresh_sleds(4);
    sleds[0]
        .coordinate(&reconfigure(1, None, set(0..4), 2))
        .unwrap();
    // Prepares wait for on_connect; that is normal, so nothing is counted.
    assert!(sleds[0].drain().is_empty());
    assert_eq!(sleds[0].count(Counter::NotConnected), 0);
    sleds[0].connect(&platform(2));
    assert_eq!(sleds[0].drain().len(), 1);
    // A share request from a peer that is not connected cannot be answered.
    sleds[0].receive(&platform(3), &msg(Body::GetShare(Epoch(1))));
    assert!(sleds[0].drain().is_empty());
    assert_eq!(sleds[0].count(Counter::NotConnected), 1);
}

#[test]
fn a_committed_prepare_is_never_dropped_for_newer_abandoned_ones() {
    // Found by the cluster harness: a member that missed the commit of
    // epoch 1 used to evict it to store the prepares of abandoned epochs.
    let mut sleds = fresh_sleds(4);
    connect_all(&mut sleds);
    sleds[0]
        .coordinate(&reconfigure(1, None, set(0..4), 3))
        .unwrap();
    settle(&mut sleds);
    // Nexus committed epoch 1 but only sled 0 heard of it.
    sleds[0].commit(RACK, 1).unwrap();
    // Epochs 2, 3 and 4 are prepared and abandoned in turn.
    for epoch in 2..=4 {
        sleds[0]
            .coordinate(&reconfigure(epoch, Some(1), set(0..4), 3))
            .unwrap();
        settle(&mut sleds);
    }
    for sled in &sleds[1..] {
        // The prepare of epoch 2 said epoch 1 committed: it is committed
        // here too, and only the newest prepare is kept beside it.
        assert_eq!(sled.committed(), Some(Epoch(1)));
        let epochs: Vec<Epoch> = sled
            .ctx
            .persistent_state()
            .fields()
            .configs
            .iter()
            .map(|c| c.config.epoch())
            .collect();
        assert_eq!(epochs, [Epoch(1), Epoch(4)]);
        assert_eq!(sled.count(Counter::ConfigDropped), 0);
    }
    sleds.iter_mut().for_each(|s| s.node.clear_secrets());
    assert_all_equal(&load_everywhere(&mut sleds, 1));
}

#[test]
fn a_stale_prepare_is_ignored() {
    let mut sleds = fresh_sleds(4);
    connect_all(&mut sleds);
    sleds[0]
        .coordinate(&reconfigure(1, None, set(0..4), 2))
        .unwrap();
    // Epoch 1's prepares are held back; Nexus abandons it for epoch 2.
    let held = sleds[0].drain();
    sleds[1]
        .coordinate(&reconfigure(2, None, set(0..4), 2))
        .unwrap();
    settle(&mut sleds);
    let (to, bytes) = held.into_iter().find(|(to, _)| *to == platform(2)).unwrap();
    let late = sleds.iter_mut().find(|s| s.id() == to).unwrap();
    late.receive_bytes(&platform(0), &bytes);
    assert_eq!(late.count(Counter::WrongEpoch), 1);
    assert!(late.ctx.persistent_state().get(Epoch(1)).is_none());
    assert!(late.drain().is_empty(), "no ack for a stale prepare");
}

#[test]
fn lrtq_shares_with_unknown_or_repeated_digests_are_refused() {
    let (mut sleds, _) = lrtq_rack(5);
    connect_all(&mut sleds);
    sleds[0].upgrade(&upgrade(2, set(0..5), 3)).unwrap();
    let share_of_1 = sleds[1]
        .ctx
        .persistent_state()
        .lrtq()
        .unwrap()
        .share
        .clone();
    let mut forged = *share_of_1.expose_bytes();
    forged[5] ^= 1;
    let forged = LrtqShare::from_bytes(&forged).unwrap();
    let coordinator = &mut sleds[0];
    coordinator.receive(&platform(1), &msg(Body::LrtqShare(forged)));
    assert_eq!(coordinator.count(Counter::UnknownLrtqShareDigest), 1);
    coordinator.receive(&platform(1), &msg(Body::LrtqShare(share_of_1.clone())));
    // Sled 2 replays sled 1's share.
    coordinator.receive(&platform(2), &msg(Body::LrtqShare(share_of_1)));
    assert_eq!(coordinator.count(Counter::DuplicateLrtqShareDigest), 1);
    let status = coordinator.status().unwrap();
    assert_eq!(status.phase, CoordinatorPhase::CollectingLrtqShares);
}
