//! Loading the LRTQ secret as epoch 1 on a sled of an LRTQ rack that has
//! not been upgraded (the loader's LRTQ collection), and that it stops once
//! the sled commits.

use super::*;

#[test]
fn an_lrtq_sled_loads_the_lrtq_secret_as_its_latest_epoch_1() {
    let (mut sleds, lrtq_secret) = lrtq_rack(5);
    connect_all(&mut sleds);
    assert!(sleds[0].load_latest().unwrap().is_none(), "not yet");
    assert_eq!(sleds[0].node.loading(), Some(Epoch(1)));
    settle(&mut sleds);
    assert_eq!(sleds[0].node.loading(), None);
    assert!(
        sleds[0]
            .take_events()
            .contains(&Event::SecretLoaded(Epoch(1)))
    );
    let (epoch, secret) = sleds[0].load_latest().unwrap().unwrap();
    assert_eq!(epoch, Epoch(1));
    assert_eq!(secret.expose_secret(), &lrtq_secret);
    for secret in &load_everywhere(&mut sleds, 1) {
        assert_eq!(secret.expose_secret(), &lrtq_secret);
    }
    // Only epoch 1 exists before the upgrade.
    let s = &mut sleds[0];
    assert_eq!(
        s.load(2).err(),
        Some(LoadSecretError::NotCommitted(Epoch(2)))
    );
    assert_eq!(
        s.load(0).err(),
        Some(LoadSecretError::NotCommitted(Epoch(0)))
    );
    // Loading wrote nothing and no share was refused.
    for sled in &sleds {
        assert_eq!(sled.ctx.counters().anomalies(), 0);
        assert!(sled.ctx.alarms().is_empty());
    }
}

#[test]
fn an_lrtq_sled_with_too_few_peers_gets_not_yet_until_one_more_connects() {
    let (mut sleds, lrtq_secret) = lrtq_rack(5);
    // LRTQ threshold 3: its own share and sled 1's are not enough.
    let (one, two) = (sleds[1].id(), sleds[2].id());
    sleds[0].connect(&one);
    sleds[1].connect(&platform(0));
    assert!(sleds[0].load(1).unwrap().is_none());
    settle(&mut sleds);
    assert!(sleds[0].load(1).unwrap().is_none(), "still not yet");
    assert_eq!(sleds[0].node.loading(), Some(Epoch(1)));
    // The new peer is asked as it connects.
    sleds[0].connect(&two);
    sleds[2].connect(&platform(0));
    settle(&mut sleds);
    let secret = sleds[0].load(1).unwrap().expect("loaded");
    assert_eq!(secret.expose_secret(), &lrtq_secret);
    // Clearing drops it: the next load collects again.
    sleds[0].node.clear_secrets();
    assert!(sleds[0].load(1).unwrap().is_none());
}

#[test]
fn a_sled_without_lrtq_data_or_commit_is_still_refused_at_once() {
    let mut fresh = fresh_sleds(1);
    assert_eq!(
        fresh[0].load_latest().err(),
        Some(LoadSecretError::NoCommittedConfiguration)
    );
    assert_eq!(fresh[0].node.loading(), None);
}

/// An upgrade's coordinator and the loader on one sled both ask each peer,
/// so each peer answers twice: the repeat is late, not a replay (an
/// anomaly). Failed before `LrtqCollector` told the two apart.
#[test]
fn a_sled_loading_while_it_coordinates_the_upgrade_counts_no_replay() {
    let (mut sleds, lrtq_secret) = lrtq_rack(5);
    connect_all(&mut sleds);
    assert!(sleds[0].load(1).unwrap().is_none());
    sleds[0].upgrade(&upgrade(2, set(0..5), 3)).unwrap();
    settle(&mut sleds);
    let s = &mut sleds[0];
    assert_eq!(s.count(Counter::DuplicateLrtqShareDigest), 0);
    assert_eq!(s.ctx.counters().anomalies(), 0);
    assert_eq!(
        s.status().map(|c| c.phase),
        Some(CoordinatorPhase::Preparing)
    );
    assert_eq!(s.load(1).unwrap().unwrap().expose_secret(), &lrtq_secret);
}

/// Once the upgrade commits, epoch 1 is the retained secret of the
/// upgrade's configuration, loaded from its shares like any epoch; LRTQ
/// shares are no longer asked for or taken.
#[test]
fn after_the_upgrade_commits_secrets_come_from_the_committed_configuration() {
    let (mut sleds, lrtq_secret) = lrtq_rack(5);
    connect_all(&mut sleds);
    load_everywhere(&mut sleds, 1);
    sleds[2].upgrade(&upgrade(2, set(0..5), 3)).unwrap();
    settle(&mut sleds);
    assert_eq!(
        sleds[0].node.status(&sleds[0].ctx).activity.secret_loaded,
        Some(Epoch(1))
    );
    commit_all(&mut sleds, 2);
    // The commit itself dropped the LRTQ secret.
    assert_eq!(
        sleds[0].node.status(&sleds[0].ctx).activity.secret_loaded,
        None
    );
    let s = &mut sleds[0];
    // The LRTQ cache is gone: the committed path collects epoch 2's shares.
    assert!(s.load(1).unwrap().is_none());
    assert_eq!(s.node.loading(), Some(Epoch(2)));
    for secret in &load_everywhere(&mut sleds, 1) {
        assert_eq!(secret.expose_secret(), &lrtq_secret);
    }
    let (epoch, _) = sleds[0].load_latest().unwrap().unwrap();
    assert_eq!(epoch, Epoch(2));
    // A late LRTQ share is refused as late, and nothing collects it.
    let share = sleds[1]
        .ctx
        .persistent_state()
        .lrtq()
        .unwrap()
        .share
        .clone();
    let late = sleds[0].count(Counter::LateLrtqShare);
    sleds[0].receive(&platform(1), &msg(Body::LrtqShare(share)));
    assert_eq!(sleds[0].count(Counter::LateLrtqShare), late + 1);
    assert_eq!(sleds[0].node.loading(), None);
}

/// While loading, a share that is not one of the rack's is refused (an
/// anomaly) and a share already held is a repeat (late), and neither
/// counts toward the threshold.
#[test]
fn a_loading_sled_refuses_forged_shares_and_counts_repeats_once() {
    let (mut sleds, lrtq_secret) = lrtq_rack(5);
    let lrtq_share = |sled: &Sled| sled.ctx.persistent_state().lrtq().unwrap().share.clone();
    let (share_1, share_2) = (lrtq_share(&sleds[1]), lrtq_share(&sleds[2]));
    let mut forged = *share_1.expose_bytes();
    forged[5] ^= 1;
    let forged = LrtqShare::from_bytes(&forged).unwrap();
    let s = &mut sleds[0];
    assert!(s.load(1).unwrap().is_none());
    s.receive(&platform(1), &msg(Body::LrtqShare(forged)));
    assert_eq!(s.count(Counter::UnknownLrtqShareDigest), 1);
    s.receive(&platform(1), &msg(Body::LrtqShare(share_1.clone())));
    s.receive(&platform(1), &msg(Body::LrtqShare(share_1)));
    assert_eq!(s.count(Counter::LateLrtqShare), 1);
    assert!(s.load(1).unwrap().is_none(), "two distinct shares of three");
    s.receive(&platform(2), &msg(Body::LrtqShare(share_2)));
    assert_eq!(s.load(1).unwrap().unwrap().expose_secret(), &lrtq_secret);
}
