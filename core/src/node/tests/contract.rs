//! The driving contract of [`crate::node`]: nothing leaves for state a
//! crash could lose, a refused write keeps everything queued, and only a
//! real change costs a write.

use super::*;

/// A fresh rack of 4 connected sleds where sled 0 coordinates epoch 1, and
/// the `Prepare` it sent sled 1, not yet delivered.
fn a_prepare_for_sled_1() -> (Vec<Sled>, Vec<u8>) {
    let mut sleds = fresh_sleds(4);
    connect_all(&mut sleds);
    sleds[0]
        .coordinate(&reconfigure(1, None, set(0..4), 2))
        .unwrap();
    let (_, prepare) = sleds[0]
        .drain()
        .into_iter()
        .find(|(to, _)| *to == platform(1))
        .unwrap();
    (sleds, prepare)
}

fn commit_1() -> CommitRequest {
    CommitRequest {
        rack_id: RACK,
        epoch: Epoch(1),
    }
}

fn is_prepare_ack_of_1(bytes: &[u8]) -> bool {
    let reply = wire::decode_peer_msg(bytes).unwrap();
    matches!(reply.body, Body::PrepareAck(Epoch(1)))
}

#[test]
fn transmits_and_events_wait_for_the_write() {
    let (mut sleds, prepare) = a_prepare_for_sled_1();
    let s = &mut sleds[1];
    let mut buf = [0u8; MAX_PEER_MSG_LEN];
    // Inputs called outside the driving loop: the prepare queues an ack,
    // the commit an event, and both change the state.
    s.node
        .handle_bytes(&mut s.ctx, &mut s.rng, &platform(0), &prepare);
    assert!(!s.ctx.is_stored());
    assert!(s.ctx.has_outgoing());
    assert_eq!(s.node.poll_transmit(&mut s.ctx, &mut buf), None);
    let request = commit_1();
    let auth = s.authorize(&request);
    let request = s.ctx.verify_request(&auth, &request).unwrap();
    assert_eq!(
        s.node.commit_configuration(&mut s.ctx, request),
        Ok(CommitOutcome::Committed)
    );
    assert_eq!(s.node.poll_transmit(&mut s.ctx, &mut buf), None);
    assert_eq!(s.ctx.poll_event(), None);
    assert!(s.ctx.has_outgoing(), "polling while unstored drops nothing");

    // The caller stores what it is given and acknowledges it.
    let to_store = s.ctx.state_to_store().unwrap();
    assert_eq!(encoded(to_store.state), encoded(s.ctx.persistent_state()));
    let revision = to_store.revision;
    assert!(s.ctx.state_to_store().is_some(), "reading is not storing");
    s.ctx.acknowledge_stored(revision);
    assert!(s.ctx.is_stored());
    assert!(s.ctx.state_to_store().is_none());

    let transmit = s.node.poll_transmit(&mut s.ctx, &mut buf).unwrap();
    assert_eq!(transmit.to, platform(0));
    assert!(is_prepare_ack_of_1(&buf[..transmit.len]));
    assert_eq!(s.node.poll_transmit(&mut s.ctx, &mut buf), None);
    assert_eq!(s.ctx.poll_event(), Some(Event::Committed(Epoch(1))));
    assert_eq!(s.ctx.poll_event(), None);
}

#[test]
fn a_refused_write_keeps_everything_queued_until_a_later_write() {
    let (mut sleds, prepare) = a_prepare_for_sled_1();
    let s = &mut sleds[1];
    let writes = s.io.writes;
    let disk = s.io.disk.clone();
    // Both inputs change the state; storage refuses both writes.
    s.io.refuse_writes = 2;
    s.receive_bytes(&platform(0), &prepare);
    assert_eq!(
        s.nexus(&commit_1(), |node, ctx, _, request| node
            .commit_configuration(ctx, request)),
        Ok(CommitOutcome::Committed)
    );
    assert_eq!(s.io.refuse_writes, 0, "each drive tried to write");
    assert_eq!(s.io.writes, writes);
    assert_eq!(s.io.disk, disk);
    assert!(s.io.sent.is_empty(), "nothing left for unstored state");
    assert!(s.io.events.is_empty());
    assert!(!s.ctx.is_stored());
    assert!(s.ctx.state_to_store().is_some());

    // The next drive, with nothing to do, writes and then sends it all.
    s.call(|_, _, _| ());
    assert_eq!(s.io.writes, writes + 1);
    assert_eq!(s.io.disk, encoded(s.ctx.persistent_state()));
    let sent = s.drain();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].0, platform(0));
    assert!(is_prepare_ack_of_1(&sent[0].1));
    assert_eq!(s.take_events(), [Event::Committed(Epoch(1))]);
}

#[test]
fn acknowledging_a_stale_revision_does_not_cover_a_newer_change() {
    let (mut sleds, prepare) = a_prepare_for_sled_1();
    let s = &mut sleds[1];
    let mut buf = [0u8; MAX_PEER_MSG_LEN];
    s.node
        .handle_bytes(&mut s.ctx, &mut s.rng, &platform(0), &prepare);
    let first = s.ctx.state_to_store().unwrap().revision;
    let request = commit_1();
    let auth = s.authorize(&request);
    let request = s.ctx.verify_request(&auth, &request).unwrap();
    s.node.commit_configuration(&mut s.ctx, request).unwrap();
    let second = s.ctx.state_to_store().unwrap().revision;
    assert_ne!(first, second);

    // The write of the first change completes only now.
    s.ctx.acknowledge_stored(first);
    assert!(!s.ctx.is_stored());
    assert_eq!(
        s.ctx.state_to_store().map(|to_store| to_store.revision),
        Some(second)
    );
    assert_eq!(s.node.poll_transmit(&mut s.ctx, &mut buf), None);
    assert_eq!(s.ctx.poll_event(), None);

    s.ctx.acknowledge_stored(second);
    assert!(s.ctx.is_stored());
    assert!(s.node.poll_transmit(&mut s.ctx, &mut buf).is_some());
    assert_eq!(s.ctx.poll_event(), Some(Event::Committed(Epoch(1))));
}

#[test]
fn refused_and_no_op_nexus_calls_need_no_write() {
    let mut sleds = committed_rack(4, 2);
    let config_1 = config_of(&sleds[0], 1);
    let s = &mut sleds[0];
    let k2 = |epoch, last, members| reconfigure(epoch, last, members, 2);

    // commit_configuration: already committed, another rack, not prepared.
    let outcome = s.without_write(|s| s.commit(RACK, 1));
    assert_eq!(outcome, Ok(CommitOutcome::AlreadyCommitted));
    assert!(s.without_write(|s| s.commit(OTHER_RACK, 1)).is_err());
    assert!(s.without_write(|s| s.commit(RACK, 5)).is_err());

    // coordinate_reconfiguration: each refusal.
    let mut wrong_rack = k2(2, Some(1), set(0..4));
    wrong_rack.rack_id = OTHER_RACK;
    for refused in [
        wrong_rack,
        k2(2, Some(1), set(1..4)),
        k2(2, Some(1), set(0..2)),
        reconfigure(2, Some(1), set(0..4), 4),
        k2(2, None, set(0..4)),
        k2(1, Some(1), set(0..4)),
    ] {
        assert!(s.without_write(|s| s.coordinate(&refused)).is_err());
    }
    // A running coordination, then the same request again (the start
    // itself changes nothing stored either: it collects shares first).
    let running = k2(2, Some(1), set(0..4));
    assert_eq!(
        s.without_write(|s| s.coordinate(&running)),
        Ok(ReconfigureOutcome::Started)
    );
    assert_eq!(
        s.without_write(|s| s.coordinate(&running)),
        Ok(ReconfigureOutcome::AlreadyRunning)
    );
    let different = reconfigure(2, Some(1), set(0..4), 3);
    assert!(s.without_write(|s| s.coordinate(&different)).is_err());

    // coordinate_upgrade_from_lrtq: no LRTQ data here.
    let outcome = s.without_write(|s| s.upgrade(&upgrade(3, set(0..4), 2)));
    assert_eq!(outcome, Err(LrtqUpgradeError::NoLrtqData));

    // prepare_and_commit: already committed, another rack, not a member.
    let outcome = s.without_write(|s| s.prepare_and_commit(&config_1));
    assert_eq!(outcome, Ok(PrepareAndCommitOutcome::AlreadyCommitted));
    let mut other_rack = config_1.fields().clone();
    other_rack.rack_id = OTHER_RACK;
    let other_rack = Configuration::new(other_rack).unwrap();
    assert!(
        s.without_write(|s| s.prepare_and_commit(&other_rack))
            .is_err()
    );
    let mut without_me = crate::config::tests::fields(4, 2);
    for (i, member) in without_me.members.iter_mut().enumerate() {
        member.id = platform(i + 1);
    }
    without_me.coordinator = platform(1);
    without_me.rack_id = RACK;
    without_me.epoch = Epoch(3);
    let without_me = Configuration::new(without_me).unwrap();
    assert_eq!(
        s.without_write(|s| s.prepare_and_commit(&without_me)),
        Err(PrepareAndCommitError::NotAMember)
    );

    // load_rack_secret: refused, and started (collecting changes nothing
    // stored).
    assert!(s.without_write(|s| s.load(7)).is_err());
    assert!(s.without_write(|s| s.load(1)).unwrap().is_none());

    // Connection events.
    s.without_write(|s| {
        s.disconnect(&platform(1));
        s.connect(&platform(1));
        s.connect(&platform(9));
    });
}

#[test]
fn refused_upgrades_need_no_write() {
    let mut sleds = lrtq_rack_with_threshold(4, 4);
    let s = &mut sleds[0];
    let mut wrong_rack = upgrade(2, set(0..4), 2);
    wrong_rack.rack_id = OTHER_RACK;
    for refused in [
        wrong_rack,
        upgrade(2, set(1..4), 2),
        upgrade(2, set(0..2), 2),
        upgrade(2, set(0..4), 4),
        upgrade(2, set(0..3), 2),
        upgrade(1, set(0..4), 2),
    ] {
        assert!(s.without_write(|s| s.upgrade(&refused)).is_err());
    }
    // Starting one stores nothing either: it collects LRTQ shares first.
    assert_eq!(
        s.without_write(|s| s.upgrade(&upgrade(2, set(0..4), 2))),
        Ok(())
    );
    let again = s.without_write(|s| s.upgrade(&upgrade(2, set(0..4), 2)));
    assert_eq!(
        again,
        Err(LrtqUpgradeError::EpochNotNewer { latest: Epoch(2) })
    );
    let reconfiguration = reconfigure(3, None, set(0..4), 2);
    assert!(s.without_write(|s| s.coordinate(&reconfiguration)).is_err());
}

#[test]
fn refused_and_no_op_peer_messages_need_no_write() {
    let mut sleds = committed_rack(5, 3);
    let share_of_1 = share_of(&sleds[1], 1);
    let s = &mut sleds[0];
    // A share for a load, then the same share again.
    assert!(s.load(1).unwrap().is_none());
    let share = msg(Body::Share {
        epoch: Epoch(1),
        share: share_of_1,
    });
    s.without_write(|s| {
        s.receive(&platform(1), &share);
        s.receive(&platform(1), &share);
    });
    assert_eq!(s.count(Counter::DuplicateShare), 1);
    // Another rack, garbage, a newer format, a late ack, a false
    // expungement.
    s.without_write(|s| {
        let other = Envelope {
            rack_id: OTHER_RACK,
            body: Body::Expunged(Epoch(9)),
        };
        s.receive(&platform(1), &other);
        s.receive_bytes(&platform(1), &[wire::PEER_MSG_VERSION, 0xff, 0xff, 0xff]);
        s.receive_bytes(&platform(1), &[]);
        s.receive_bytes(&platform(1), &[wire::PEER_MSG_VERSION + 1]);
        s.receive(&platform(1), &msg(Body::PrepareAck(Epoch(1))));
        s.receive(&platform(1), &msg(Body::Expunged(Epoch(1))));
    });
    assert_eq!(s.count(Counter::WrongRackId), 1);
    assert_eq!(s.count(Counter::Undecodable), 2);
    assert_eq!(s.count(Counter::UnsupportedVersion), 1);
    assert_eq!(s.count(Counter::LatePrepareAck), 1);
    assert_eq!(s.count(Counter::FalseClaim), 1);
    assert!(s.ctx.persistent_state().expunged().is_none());
}

#[test]
fn a_repeated_prepare_is_acked_again_without_a_write() {
    let (mut sleds, prepare) = a_prepare_for_sled_1();
    let s = &mut sleds[1];
    s.receive_bytes(&platform(0), &prepare);
    assert!(is_prepare_ack_of_1(&s.drain()[0].1));
    s.without_write(|s| s.receive_bytes(&platform(0), &prepare));
    let sent = s.drain();
    assert_eq!(sent.len(), 1);
    assert!(is_prepare_ack_of_1(&sent[0].1));
}
