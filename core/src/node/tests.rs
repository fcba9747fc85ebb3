//! Unit tests of each node call and each peer message, errors included.
//! Multi-step cluster behaviour is tested through `tq-harness`.

use std::vec::Vec;

use curve25519_dalek::Scalar;
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use subtle::ConstantTimeEq;

use super::*;
use crate::config::tests::platform;
use crate::crypto::{LrtqShare, ShareDigest};
use crate::messages::Envelope;
use crate::persistent::LrtqShareData;

const RACK: RackId = RackId([0x42; 16]);
const OTHER_RACK: RackId = RackId([0x24; 16]);

struct Sled {
    node: Node,
    ctx: NodeCtx<ChaCha20Rng>,
}

impl Sled {
    fn new(i: usize, state: PersistentState) -> Self {
        let mut ctx = NodeCtx::new(platform(i), ChaCha20Rng::seed_from_u64(i as u64));
        let mut stored = std::vec![0u8; wire::MAX_PERSISTENT_STATE_LEN];
        ctx.restore_state(wire::encode_persistent_state(&state, &mut stored).unwrap())
            .unwrap();
        Self {
            node: Node::new(),
            ctx,
        }
    }

    fn id(&self) -> PlatformId {
        self.ctx.id().clone()
    }

    /// Everything queued, encoded as it would go on the wire.
    fn drain(&mut self) -> Vec<(PlatformId, Vec<u8>)> {
        let mut out = Vec::new();
        let mut buf = [0u8; wire::MAX_PEER_MSG_LEN];
        while let Some((to, msg)) = self.node.next_message(&mut self.ctx) {
            out.push((to, wire::encode_peer_msg(&msg, &mut buf).unwrap().to_vec()));
        }
        out
    }

    fn coordinate(&mut self, msg: &ReconfigureMsg) -> Result<(), ReconfigureError> {
        self.node.coordinate_reconfiguration(&mut self.ctx, msg)
    }

    fn upgrade(&mut self, msg: &LrtqUpgradeMsg) -> Result<(), LrtqUpgradeError> {
        self.node.coordinate_upgrade_from_lrtq(&mut self.ctx, msg)
    }

    fn load(&mut self, epoch: u64) -> Result<Option<RackSecret>, LoadSecretError> {
        self.node.load_rack_secret(&mut self.ctx, Epoch(epoch))
    }

    fn status(&self) -> Option<CoordinatorStatus<'_>> {
        self.node.coordinator_status(&self.ctx)
    }

    fn connect(&mut self, peer: &PlatformId) {
        self.node.on_connect(&mut self.ctx, peer);
    }

    fn disconnect(&mut self, peer: &PlatformId) {
        self.node.on_disconnect(&mut self.ctx, peer);
    }

    fn receive(&mut self, from: &PlatformId, msg: &PeerMsg) {
        self.node.handle(&mut self.ctx, from, msg);
    }

    fn count(&self, event: Event) -> u32 {
        self.ctx.counters().get(event)
    }

    fn committed(&self) -> Option<Epoch> {
        self.ctx.persistent_state().latest_committed_epoch()
    }
}

fn fresh_sleds(n: usize) -> Vec<Sled> {
    (0..n)
        .map(|i| Sled::new(i, PersistentState::new()))
        .collect()
}

fn set(range: impl IntoIterator<Item = usize>) -> MemberSet {
    let ids: Vec<PlatformId> = range.into_iter().map(platform).collect();
    MemberSet::new(&ids).unwrap()
}

fn reconfigure(epoch: u64, last: Option<u64>, members: MemberSet, k: u8) -> ReconfigureMsg {
    ReconfigureMsg {
        rack_id: RACK,
        epoch: Epoch(epoch),
        last_committed_epoch: last.map(Epoch),
        members,
        threshold: Threshold::new(k).unwrap(),
    }
}

fn connect_all(sleds: &mut [Sled]) {
    let ids: Vec<PlatformId> = sleds.iter().map(Sled::id).collect();
    for sled in sleds.iter_mut() {
        for id in &ids {
            if *id != sled.id() {
                sled.node.on_connect(&mut sled.ctx, id);
            }
        }
    }
}

/// Delivers messages, through the wire, until none are left.
fn settle(sleds: &mut [Sled]) {
    for _ in 0..100 {
        let mut in_flight = Vec::new();
        for sled in sleds.iter_mut() {
            let from = sled.id();
            for (to, bytes) in sled.drain() {
                in_flight.push((from.clone(), to, bytes));
            }
        }
        if in_flight.is_empty() {
            return;
        }
        for (from, to, bytes) in in_flight {
            if let Some(sled) = sleds.iter_mut().find(|s| s.id() == to) {
                sled.node.handle_bytes(&mut sled.ctx, &from, &bytes);
            }
        }
    }
    panic!("messages kept flowing");
}

fn commit_all(sleds: &mut [Sled], epoch: u64) {
    for sled in sleds.iter_mut() {
        if sled.ctx.persistent_state().get(Epoch(epoch)).is_some() {
            sled.node
                .commit_configuration(&mut sled.ctx, RACK, Epoch(epoch))
                .unwrap();
        }
    }
}

/// A fresh rack of `n` sleds, epoch 1 committed everywhere, all connected.
fn committed_rack(n: usize, k: u8) -> Vec<Sled> {
    let mut sleds = fresh_sleds(n);
    connect_all(&mut sleds);
    let msg = reconfigure(1, None, set(0..n), k);
    sleds[0].coordinate(&msg).unwrap();
    settle(&mut sleds);
    commit_all(&mut sleds, 1);
    sleds
}

/// Loads the secret of `epoch` on every sled, collecting shares as needed.
fn load_everywhere(sleds: &mut [Sled], epoch: u64) -> Vec<RackSecret> {
    for sled in sleds.iter_mut() {
        let _ = sled.node.load_rack_secret(&mut sled.ctx, Epoch(epoch));
    }
    settle(sleds);
    sleds
        .iter_mut()
        .map(|s| {
            s.node
                .load_rack_secret(&mut s.ctx, Epoch(epoch))
                .unwrap()
                .expect("secret loaded")
        })
        .collect()
}

fn assert_all_equal(secrets: &[RackSecret]) {
    for s in secrets {
        assert!(bool::from(s.ct_eq(&secrets[0])));
    }
}

fn config_of(sled: &Sled, epoch: u64) -> Configuration {
    sled.ctx
        .persistent_state()
        .get(Epoch(epoch))
        .unwrap()
        .config
        .clone()
}

// ---- LRTQ fixtures: shares of a degree-2 polynomial over the scalar field ----

fn lrtq_rack(n: usize) -> (Vec<Sled>, [u8; 32]) {
    let secret = Scalar::from(0x1234_5678_u64);
    let (a1, a2) = (Scalar::from(77u64), Scalar::from(991u64));
    let shares: Vec<LrtqShare> = (1..=255u8)
        .map(|x| {
            let xs = Scalar::from(x);
            let y = secret + a1 * xs + a2 * xs * xs;
            let mut bytes = [0u8; 33];
            bytes[0] = x;
            bytes[1..].copy_from_slice(y.as_bytes());
            LrtqShare::from_bytes(&bytes).unwrap()
        })
        .collect();
    let digests: heapless::Vec<ShareDigest, 255, u8> =
        shares.iter().map(LrtqShare::digest).collect();
    let sleds = (0..n)
        .map(|i| {
            let data = LrtqShareData {
                rack_id: RACK,
                threshold: crate::ids::LrtqThreshold::new(3).unwrap(),
                share: shares[i].clone(),
                share_digests: digests.clone(),
            };
            Sled::new(i, PersistentState::with_lrtq(data))
        })
        .collect();
    (sleds, secret.to_bytes())
}

fn upgrade(epoch: u64, members: MemberSet, k: u8) -> LrtqUpgradeMsg {
    LrtqUpgradeMsg {
        rack_id: RACK,
        epoch: Epoch(epoch),
        members,
        threshold: Threshold::new(k).unwrap(),
    }
}

// ---- coordinate_reconfiguration ----

#[test]
fn a_fresh_rack_prepares_commits_and_loads_one_secret() {
    let mut sleds = fresh_sleds(5);
    connect_all(&mut sleds);
    let msg = reconfigure(1, None, set(0..5), 3);
    sleds[0].coordinate(&msg).unwrap();
    assert!(sleds[0].ctx.take_state_changed());
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
    let reject = |s: &mut Sled, msg: ReconfigureMsg| {
        s.node
            .coordinate_reconfiguration(&mut s.ctx, &msg)
            .unwrap_err()
    };

    let mut wrong_rack = reconfigure(2, Some(1), set(0..4), 2);
    wrong_rack.rack_id = OTHER_RACK;
    assert_eq!(reject(s, wrong_rack), ReconfigureError::RackIdMismatch);
    assert_eq!(
        reject(s, reconfigure(2, Some(1), set(1..4), 2)),
        ReconfigureError::NotAMember
    );
    assert_eq!(
        reject(s, reconfigure(2, Some(1), set(0..2), 2)),
        ReconfigureError::MemberCount
    );
    assert_eq!(
        reject(s, reconfigure(2, Some(1), set(0..4), 4)),
        ReconfigureError::ThresholdTooLarge
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

    s.node
        .coordinate_reconfiguration(&mut s.ctx, &reconfigure(5, Some(1), set(0..4), 2))
        .unwrap();
    assert_eq!(
        reject(s, reconfigure(4, Some(1), set(0..4), 2)),
        ReconfigureError::NewerCoordinationRunning(Epoch(5))
    );
    assert_eq!(
        reject(s, reconfigure(5, Some(1), set(0..4), 3)),
        ReconfigureError::DifferentRequestRunning
    );
    // The same request again is accepted and changes nothing.
    s.drain();
    s.ctx.take_state_changed();
    s.node
        .coordinate_reconfiguration(&mut s.ctx, &reconfigure(5, Some(1), set(0..4), 2))
        .unwrap();
    assert!(!s.ctx.take_state_changed());
    assert!(s.drain().is_empty());
}

#[test]
fn an_lrtq_only_node_must_upgrade_first() {
    let (mut sleds, _) = lrtq_rack(4);
    let s = &mut sleds[0];
    assert_eq!(
        s.node
            .coordinate_reconfiguration(&mut s.ctx, &reconfigure(2, None, set(0..4), 2))
            .unwrap_err(),
        ReconfigureError::MustUpgradeFromLrtq
    );
}

#[test]
fn an_expunged_node_refuses_every_nexus_call() {
    let mut sleds = committed_rack(4, 2);
    let s = &mut sleds[0];
    let from = platform(1);
    s.receive(
        &from,
        &Envelope {
            rack_id: RACK,
            body: Body::Expunged(Epoch(1)),
        },
    );
    assert_eq!(s.ctx.persistent_state().expunged().unwrap().epoch, Epoch(1));
    assert_eq!(
        s.node
            .coordinate_reconfiguration(&mut s.ctx, &reconfigure(2, Some(1), set(0..4), 2))
            .unwrap_err(),
        ReconfigureError::Expunged
    );
    assert_eq!(
        s.node
            .commit_configuration(&mut s.ctx, RACK, Epoch(2))
            .unwrap_err(),
        CommitError::Expunged
    );
    let config = config_of(s, 1);
    assert_eq!(
        s.node.prepare_and_commit(&mut s.ctx, &config).unwrap_err(),
        PrepareAndCommitError::Expunged
    );
    assert_eq!(
        s.node.load_rack_secret(&mut s.ctx, Epoch(1)).unwrap_err(),
        LoadSecretError::Expunged
    );
    // Peer messages are dropped and counted.
    s.receive(
        &from,
        &Envelope {
            rack_id: RACK,
            body: Body::GetShare(Epoch(1)),
        },
    );
    assert_eq!(s.count(Event::WhileExpunged), 1);
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
    let reject = |s: &mut Sled, msg: LrtqUpgradeMsg| {
        s.node
            .coordinate_upgrade_from_lrtq(&mut s.ctx, &msg)
            .unwrap_err()
    };
    let mut wrong_rack = upgrade(2, set(0..4), 2);
    wrong_rack.rack_id = OTHER_RACK;
    assert_eq!(reject(s, wrong_rack), LrtqUpgradeError::RackIdMismatch);
    assert_eq!(
        reject(s, upgrade(2, set(1..4), 2)),
        LrtqUpgradeError::NotAMember
    );
    assert_eq!(
        reject(s, upgrade(2, set(0..2), 2)),
        LrtqUpgradeError::MemberCount
    );
    assert_eq!(
        reject(s, upgrade(2, set(0..4), 4)),
        LrtqUpgradeError::ThresholdTooLarge
    );
    assert_eq!(
        reject(s, upgrade(1, set(0..4), 2)),
        LrtqUpgradeError::EpochTooSmall
    );
    s.node
        .coordinate_upgrade_from_lrtq(&mut s.ctx, &upgrade(3, set(0..4), 2))
        .unwrap();
    // No idempotent repeat.
    assert_eq!(
        reject(s, upgrade(3, set(0..4), 2)),
        LrtqUpgradeError::EpochNotNewer { latest: Epoch(3) }
    );
    assert_eq!(
        s.node
            .coordinate_reconfiguration(&mut s.ctx, &reconfigure(4, None, set(0..4), 2))
            .unwrap_err(),
        ReconfigureError::MustUpgradeFromLrtq
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
    let s = &mut sleds[1];
    assert_eq!(
        s.node
            .coordinate_upgrade_from_lrtq(&mut s.ctx, &upgrade(3, set(0..4), 2))
            .unwrap_err(),
        LrtqUpgradeError::AlreadyCommitted
    );
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
    coordinator.receive(
        &platform(1),
        &Envelope {
            rack_id: RACK,
            body: Body::LrtqShare(forged),
        },
    );
    assert_eq!(coordinator.count(Event::UnknownLrtqShareDigest), 1);
    coordinator.receive(
        &platform(1),
        &Envelope {
            rack_id: RACK,
            body: Body::LrtqShare(share_of_1.clone()),
        },
    );
    // Sled 2 replays sled 1's share.
    coordinator.receive(
        &platform(2),
        &Envelope {
            rack_id: RACK,
            body: Body::LrtqShare(share_of_1),
        },
    );
    assert_eq!(coordinator.count(Event::DuplicateLrtqShareDigest), 1);
    let status = coordinator
        .node
        .coordinator_status(&coordinator.ctx)
        .unwrap();
    assert_eq!(status.phase, CoordinatorPhase::CollectingLrtqShares);
}

// ---- commit_configuration and prepare_and_commit ----

#[test]
fn commit_rejections_and_repeats() {
    let mut sleds = committed_rack(4, 2);
    let s = &mut sleds[0];
    assert_eq!(
        s.node
            .commit_configuration(&mut s.ctx, OTHER_RACK, Epoch(1))
            .unwrap_err(),
        CommitError::RackIdMismatch
    );
    assert_eq!(
        s.node
            .commit_configuration(&mut s.ctx, RACK, Epoch(2))
            .unwrap_err(),
        CommitError::NotPrepared(Epoch(2))
    );
    s.ctx.take_state_changed();
    s.node
        .commit_configuration(&mut s.ctx, RACK, Epoch(1))
        .unwrap();
    assert!(
        !s.ctx.take_state_changed(),
        "a repeated commit changes nothing"
    );
}

#[test]
fn a_sled_that_missed_the_prepare_computes_its_share() {
    let mut sleds = committed_rack(5, 3);
    // Sled 4 is away during the prepare of epoch 2.
    for s in sleds.iter_mut() {
        s.node.on_disconnect(&mut s.ctx, &platform(4));
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
        late.node
            .commit_configuration(&mut late.ctx, RACK, Epoch(2))
            .unwrap_err(),
        CommitError::NotPrepared(Epoch(2))
    );
    let mut other = config.fields().clone();
    other.rack_id = OTHER_RACK;
    let wrong = Configuration::new(other).unwrap();
    assert_eq!(
        late.node
            .prepare_and_commit(&mut late.ctx, &wrong)
            .unwrap_err(),
        PrepareAndCommitError::RackIdMismatch
    );
    late.node
        .prepare_and_commit(&mut late.ctx, &config)
        .unwrap();
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
    let s = &mut fresh[0];
    assert_eq!(
        s.node.load_rack_secret(&mut s.ctx, Epoch(1)).unwrap_err(),
        LoadSecretError::NoCommittedConfiguration
    );

    let mut sleds = committed_rack(4, 2);
    let s = &mut sleds[0];
    assert_eq!(
        s.node.load_rack_secret(&mut s.ctx, Epoch(2)).unwrap_err(),
        LoadSecretError::NotCommitted(Epoch(2))
    );
    assert!(
        s.node
            .load_rack_secret(&mut s.ctx, Epoch(1))
            .unwrap()
            .is_none()
    );
    assert_eq!(s.node.loading(), Some(Epoch(1)));
    load_everywhere(&mut sleds, 1);
    let s = &mut sleds[0];
    assert_eq!(
        s.node.load_rack_secret(&mut s.ctx, Epoch(0)).unwrap_err(),
        LoadSecretError::TooOld {
            oldest_retained: Epoch(1)
        }
    );
    s.node.clear_secrets();
    assert!(
        s.node
            .load_rack_secret(&mut s.ctx, Epoch(1))
            .unwrap()
            .is_none()
    );
}

// ---- peer messages ----

fn msg(body: Body<Configuration, Share, LrtqShare>) -> PeerMsg {
    Envelope {
        rack_id: RACK,
        body,
    }
}

#[test]
fn messages_for_another_rack_are_counted_and_dropped() {
    let mut sleds = committed_rack(4, 2);
    sleds[0].receive(
        &platform(1),
        &Envelope {
            rack_id: OTHER_RACK,
            body: Body::GetShare(Epoch(1)),
        },
    );
    assert_eq!(sleds[0].count(Event::WrongRackId), 1);
    assert!(sleds[0].drain().is_empty());
}

#[test]
fn undecodable_bytes_are_counted() {
    let mut sleds = committed_rack(4, 2);
    let s = &mut sleds[0];
    s.node
        .handle_bytes(&mut s.ctx, &platform(1), &[wire::WIRE_VERSION, 0xff, 0xff]);
    s.node.handle_bytes(&mut s.ctx, &platform(1), &[]);
    assert_eq!(s.count(Event::Undecodable), 2);
}

#[test]
fn get_share_answers() {
    let mut sleds = committed_rack(4, 2);
    let s = &mut sleds[0];
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
    s.node.on_connect(&mut s.ctx, &platform(9));
    s.receive(&platform(9), &msg(Body::GetShare(Epoch(1))));
    let reply = wire::decode_peer_msg(&s.drain()[0].1).unwrap();
    assert!(matches!(reply.body, Body::Expunged(Epoch(1))));
    // An unknown epoch cannot be answered.
    s.receive(&platform(1), &msg(Body::GetShare(Epoch(7))));
    assert_eq!(s.count(Event::CannotAnswer), 1);
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
    let share_of_1 = sleds[1]
        .ctx
        .persistent_state()
        .get(Epoch(2))
        .unwrap()
        .share
        .clone()
        .unwrap();
    let mut fresh = Sled::new(1, PersistentState::new());
    fresh.node.on_connect(&mut fresh.ctx, &platform(2));
    // Not from the coordinator.
    fresh.receive(
        &platform(2),
        &msg(Body::Prepare {
            config: config.clone(),
            share: share_of_1.clone(),
            last_committed: Some(Epoch(1)),
        }),
    );
    assert_eq!(fresh.count(Event::InvalidPrepare), 1);
    // Somebody else's share.
    let share_of_2 = sleds[2]
        .ctx
        .persistent_state()
        .get(Epoch(2))
        .unwrap()
        .share
        .clone()
        .unwrap();
    fresh.receive(
        &platform(0),
        &msg(Body::Prepare {
            config: config.clone(),
            share: share_of_2,
            last_committed: Some(Epoch(1)),
        }),
    );
    assert_eq!(fresh.count(Event::InvalidPrepare), 2);
    // For a sled that is not a member.
    let mut outsider = Sled::new(9, PersistentState::new());
    outsider.receive(
        &platform(0),
        &msg(Body::Prepare {
            config: config.clone(),
            share: share_of_1.clone(),
            last_committed: Some(Epoch(1)),
        }),
    );
    assert_eq!(outsider.count(Event::FromNonMember), 1);
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
    assert_eq!(sleds[1].count(Event::WrongEpoch), 1);
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
}

#[test]
fn shares_that_do_not_match_their_digest_are_counted() {
    let mut sleds = committed_rack(4, 2);
    let s = &mut sleds[0];
    assert!(
        s.node
            .load_rack_secret(&mut s.ctx, Epoch(1))
            .unwrap()
            .is_none()
    );
    let bogus = Share::new(2, &[9; 32]).unwrap();
    s.receive(
        &platform(1),
        &msg(Body::Share {
            epoch: Epoch(1),
            share: bogus,
        }),
    );
    assert_eq!(s.count(Event::InvalidShareDigest), 1);
    assert!(
        s.node
            .load_rack_secret(&mut s.ctx, Epoch(1))
            .unwrap()
            .is_none()
    );
}

#[test]
fn unexpected_acks_and_shares_are_counted() {
    let mut sleds = committed_rack(4, 2);
    let s = &mut sleds[0];
    s.receive(&platform(1), &msg(Body::PrepareAck(Epoch(1))));
    assert_eq!(s.count(Event::Unexpected), 1);
    let share = Share::new(2, &[1; 32]).unwrap();
    s.receive(
        &platform(1),
        &msg(Body::Share {
            epoch: Epoch(1),
            share,
        }),
    );
    assert_eq!(s.count(Event::Unexpected), 2);
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
    assert_eq!(sleds[1].count(Event::WrongEpoch), 1);
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
        let from = platform(0);
        let sled = sleds.iter_mut().find(|s| s.id() == *to).unwrap();
        sled.node.handle_bytes(&mut sled.ctx, &from, bytes);
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
    assert_eq!(sleds[0].count(Event::NotConnected), 0);
    sleds[0].connect(&platform(2));
    assert_eq!(sleds[0].drain().len(), 1);
    // A share request from a peer that is not connected cannot be answered.
    sleds[0].receive(&platform(3), &msg(Body::GetShare(Epoch(1))));
    assert!(sleds[0].drain().is_empty());
    assert_eq!(sleds[0].count(Event::NotConnected), 1);
}

#[test]
fn a_node_with_its_context_fits_the_ram_budget() {
    // PROTOCOL budget for the service processor: one node and everything it
    // keeps, persistent state included, within 64 KiB.
    let total = core::mem::size_of::<Node>() + core::mem::size_of::<NodeCtx<ChaCha20Rng>>();
    assert!(total <= 64 * 1024, "node + context is {total} bytes");
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
    let first = &mut sleds[0];
    first
        .node
        .commit_configuration(&mut first.ctx, RACK, Epoch(1))
        .unwrap();
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
        assert_eq!(sled.count(Event::ConfigDropped), 0);
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
    late.node.handle_bytes(&mut late.ctx, &platform(0), &bytes);
    assert_eq!(late.count(Event::WrongEpoch), 1);
    assert!(late.ctx.persistent_state().get(Epoch(1)).is_none());
    assert!(late.drain().is_empty(), "no ack for a stale prepare");
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
    assert_eq!(sleds[0].count(Event::RetainedSecretDropped), 1);
    load_everywhere(&mut sleds, last);
    assert_eq!(
        sleds[1].load(1).unwrap_err(),
        LoadSecretError::TooOld {
            oldest_retained: Epoch(2)
        }
    );
    assert!(sleds[1].load(2).unwrap().is_some());
}
