//! The event stream: each kind raised exactly when its cause happens, once.

use super::*;
use crate::api::acks_to_commit;

/// A fresh rack of `n` connected sleds with epoch 1 prepared everywhere
/// (not committed), and every event so far taken.
fn prepared_rack(n: usize, k: u8) -> Vec<Sled> {
    let mut sleds = fresh_sleds(n);
    connect_all(&mut sleds);
    sleds[0]
        .coordinate(&reconfigure(1, None, set(0..n), k))
        .unwrap();
    settle(&mut sleds);
    sleds.iter_mut().for_each(|s| drop(s.take_events()));
    sleds
}

#[test]
fn committed_is_raised_once_by_commit_configuration() {
    let mut sleds = prepared_rack(4, 2);
    let s = &mut sleds[1];
    s.commit(RACK, 1).unwrap();
    assert_eq!(s.take_events(), [Event::Committed(Epoch(1))]);
    s.commit(RACK, 1).unwrap();
    assert!(s.take_events().is_empty());
}

#[test]
fn committed_is_raised_by_a_commit_advance() {
    let mut sleds = prepared_rack(4, 2);
    sleds[0].commit(RACK, 1).unwrap();
    let config = config_of(&sleds[0], 1);
    let s = &mut sleds[1];
    s.receive(&platform(0), &msg(Body::CommitAdvance(config.clone())));
    assert_eq!(s.committed(), Some(Epoch(1)));
    assert_eq!(s.take_events(), [Event::Committed(Epoch(1))]);
    s.receive(&platform(0), &msg(Body::CommitAdvance(config)));
    assert!(s.take_events().is_empty());
}

#[test]
fn committed_is_raised_by_a_prepare_naming_the_commit() {
    let mut sleds = prepared_rack(4, 2);
    // Only the coordinator hears of the commit of epoch 1; its prepare of
    // epoch 2 tells the others.
    sleds[0].commit(RACK, 1).unwrap();
    sleds[0].take_events();
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..4), 2))
        .unwrap();
    settle(&mut sleds);
    for s in &mut sleds[1..] {
        assert_eq!(s.take_events(), [Event::Committed(Epoch(1))]);
    }
}

#[test]
fn a_computed_share_raises_share_computed_then_committed() {
    let mut sleds = prepared_rack(4, 2);
    commit_all(&mut sleds, 1);
    // Sled 3 misses the prepare of epoch 2.
    for s in sleds.iter_mut() {
        s.disconnect(&platform(3));
    }
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..4), 2))
        .unwrap();
    settle(&mut sleds);
    let config = config_of(&sleds[0], 2);
    for s in &mut sleds[..3] {
        s.commit(RACK, 2).unwrap();
    }
    sleds.iter_mut().for_each(|s| drop(s.take_events()));
    let late = &mut sleds[3];
    late.prepare_and_commit(&config).unwrap();
    assert!(late.take_events().is_empty(), "nothing computed yet");
    connect_all(&mut sleds);
    settle(&mut sleds);
    assert_eq!(
        sleds[3].take_events(),
        [Event::ShareComputed(Epoch(2)), Event::Committed(Epoch(2))]
    );
}

#[test]
fn secret_loaded_is_raised_once_the_shares_are_in() {
    let mut sleds = prepared_rack(4, 3);
    commit_all(&mut sleds, 1);
    sleds.iter_mut().for_each(|s| drop(s.take_events()));
    assert!(sleds[2].load(1).unwrap().is_none());
    assert!(sleds[2].take_events().is_empty());
    settle(&mut sleds);
    assert_eq!(sleds[2].take_events(), [Event::SecretLoaded(Epoch(1))]);
    assert!(sleds[2].load(1).unwrap().is_some());
    assert!(
        sleds[2].take_events().is_empty(),
        "a cached secret is not loaded again"
    );
    // Nobody else loaded anything.
    for (i, s) in sleds.iter_mut().enumerate().filter(|(i, _)| *i != 2) {
        assert!(s.take_events().is_empty(), "sled {i}");
    }
}

#[test]
fn expunged_names_the_epoch_and_the_sender() {
    let mut sleds = prepared_rack(4, 2);
    commit_all(&mut sleds, 1);
    sleds[0]
        .coordinate(&reconfigure(2, Some(1), set(0..3), 2))
        .unwrap();
    settle(&mut sleds);
    commit_all(&mut sleds, 2);
    sleds.iter_mut().for_each(|s| drop(s.take_events()));
    // The removed sled asks for a share of epoch 1 and is told.
    sleds[3].node.clear_secrets();
    assert!(sleds[3].load(1).unwrap().is_none());
    let asked = sleds[3].drain();
    let (to, bytes) = &asked[0];
    deliver(&mut sleds, &platform(3), to, bytes);
    let (_, reply) = sleds
        .iter_mut()
        .find(|s| s.id() == *to)
        .unwrap()
        .drain()
        .remove(0);
    sleds[3].receive_bytes(to, &reply);
    assert_eq!(
        sleds[3].take_events(),
        [Event::Expunged {
            epoch: Epoch(2),
            from: to.clone()
        }]
    );
    // A second claim changes nothing.
    sleds[3].receive(&platform(1), &msg(Body::Expunged(Epoch(2))));
    assert!(sleds[3].take_events().is_empty());
}

#[test]
fn alarm_raised_comes_once_per_alarm() {
    let mut sleds = prepared_rack(4, 2);
    let mut other = config_of(&sleds[0], 1).fields().clone();
    other.members[2].share_digest = ShareDigest([0x5a; 32]);
    let other = Configuration::new(other).unwrap();
    let s = &mut sleds[1];
    s.receive(&platform(0), &msg(Body::CommitAdvance(other.clone())));
    assert_eq!(
        s.take_events(),
        [Event::AlarmRaised(Alarm::MismatchedConfigurations(Epoch(
            1
        )))]
    );
    s.receive(&platform(0), &msg(Body::CommitAdvance(other)));
    assert!(s.take_events().is_empty());
    assert_eq!(s.ctx.alarms().len(), 1);
}

/// `ReadyToCommit` comes once, on the ack that makes `K + Z`.
fn ready_to_commit_comes_at_k_plus_z(n: usize, k: u8) {
    let mut sleds = fresh_sleds(n);
    connect_all(&mut sleds);
    sleds[0]
        .coordinate(&reconfigure(1, None, set(0..n), k))
        .unwrap();
    let needed = acks_to_commit(n, Threshold::new(k).unwrap());
    // Every member acks; the acks reach the coordinator one by one.
    let prepares = sleds[0].drain();
    let mut acks = Vec::new();
    for (to, bytes) in &prepares {
        deliver(&mut sleds, &platform(0), to, bytes);
        let member = sleds.iter_mut().find(|s| s.id() == *to).unwrap();
        acks.extend(member.drain().into_iter().map(|(_, ack)| (to.clone(), ack)));
    }
    assert_eq!(acks.len(), n - 1);
    let coordinator = &mut sleds[0];
    assert!(coordinator.take_events().is_empty());
    for (i, (from, ack)) in acks.iter().enumerate() {
        coordinator.receive_bytes(from, ack);
        // The coordinator acked itself.
        let count = i + 2;
        let expected: Vec<Event> = if count == needed {
            std::vec![Event::ReadyToCommit {
                epoch: Epoch(1),
                acks: count as u8
            }]
        } else {
            Vec::new()
        };
        assert_eq!(
            coordinator.take_events(),
            expected,
            "{count} acks of {n}, K = {k}"
        );
        // The same ack again counts for nothing.
        coordinator.receive_bytes(from, ack);
        assert!(coordinator.take_events().is_empty());
    }
}

#[test]
fn ready_to_commit_comes_once_at_k_plus_z_acks() {
    for (n, k) in [(5, 3), (4, 2), (3, 2), (10, 2), (8, 7)] {
        ready_to_commit_comes_at_k_plus_z(n, k);
    }
}
