//! Deterministic scenarios: each drives the cluster through one story and
//! ends with the full liveness check.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use tq_core::ids::Epoch;
use tq_core::node::LoadSecretError;
use tq_harness::{Action, Change, Cluster, MAX_SLEDS, RackStart};
use tq_test_fixtures::{RACK, lrtq_rack, with_big_stack};

fn fresh(sleds: usize, members: usize) -> Cluster {
    Cluster::new(7, RACK, sleds, members, RackStart::Fresh).unwrap()
}

/// Starts a reconfiguration and drives it to a commit every member knows.
fn reconfigure(cluster: &mut Cluster, change: Change) {
    let before = cluster.nexus().stats().committed;
    cluster
        .apply(&Action::Reconfigure {
            change,
            coordinator: 0,
            threshold: 1,
        })
        .unwrap();
    cluster.nexus_finish().unwrap();
    assert_eq!(cluster.nexus().stats().committed, before + 1);
}

fn latest_epoch(cluster: &Cluster) -> Epoch {
    cluster.nexus().latest_committed().unwrap().epoch
}

#[test]
fn a_fresh_rack_of_five_commits_epoch_one_and_agrees_on_its_secret() {
    with_big_stack(|| {
        let mut cluster = fresh(5, 5);
        reconfigure(&mut cluster, Change::Same);
        assert_eq!(latest_epoch(&cluster), Epoch(1));
        let before = cluster.stats().secrets_loaded;
        cluster.check_liveness().unwrap();
        // Every one of the five loaded epoch 1, and the recorder compared
        // each with the first.
        assert!(cluster.stats().secrets_loaded >= before + 5);
        assert!(cluster.epochs_with_secret().any(|e| e == Epoch(1)));
    });
}

#[test]
fn an_lrtq_rack_of_five_upgrades_and_keeps_the_lrtq_secret_as_epoch_one() {
    with_big_stack(|| {
        let (data, secret) = lrtq_rack(5, 11);
        let lrtq = RackStart::Lrtq {
            data: &data,
            secret: &secret,
        };
        let mut cluster: Cluster = Cluster::new(3, RACK, 5, 5, lrtq).unwrap();
        reconfigure(&mut cluster, Change::Same);
        assert_eq!(latest_epoch(&cluster), Epoch(2));
        assert_eq!(cluster.nexus().stats().upgrades, 1);
        for sled in 0..5 {
            // Epoch 1 was recorded as the LRTQ secret at set-up: a load
            // returning anything else is a `SecretMismatch`.
            let mut loaded = false;
            for _ in 0..4 {
                if cluster.load_secret(sled, Epoch(1)).unwrap() == Some(Ok(true)) {
                    loaded = true;
                    break;
                }
                cluster.deliver_all().unwrap();
            }
            assert!(loaded, "sled {sled} never loaded epoch 1");
        }
        cluster.check_liveness().unwrap();
    });
}

/// Before any upgrade, every sled of an LRTQ rack loads epoch 1 and gets
/// the LRTQ secret rack setup made with vsss-rs (recorded at set-up: any
/// other is a `SecretMismatch`); a sled that reaches fewer than the LRTQ
/// threshold of shares is told "not yet" until one more peer connects.
#[test]
fn an_lrtq_rack_not_yet_upgraded_loads_the_lrtq_secret_as_epoch_one() {
    with_big_stack(|| {
        let (data, secret) = lrtq_rack(5, 12);
        let lrtq = RackStart::Lrtq {
            data: &data,
            secret: &secret,
        };
        let mut cluster: Cluster = Cluster::new(4, RACK, 5, 5, lrtq).unwrap();
        // LRTQ threshold 3 of 5: sled 0 with sled 1 alone has two shares.
        for peer in 2..5 {
            cluster.disconnect(0, peer).unwrap();
        }
        for _ in 0..4 {
            assert_eq!(cluster.load_secret(0, Epoch(1)).unwrap(), Some(Ok(false)));
            cluster.deliver_all().unwrap();
        }
        cluster.connect(0, 2).unwrap();
        cluster.deliver_all().unwrap();
        assert_eq!(cluster.load_secret(0, Epoch(1)).unwrap(), Some(Ok(true)));
        for peer in 3..5 {
            cluster.connect(0, peer).unwrap();
        }
        for sled in 0..5 {
            let mut loaded = false;
            for _ in 0..4 {
                if cluster.load_secret(sled, Epoch(1)).unwrap() == Some(Ok(true)) {
                    loaded = true;
                    break;
                }
                cluster.deliver_all().unwrap();
            }
            assert!(loaded, "sled {sled} never loaded epoch 1");
        }
        assert!(cluster.stats().secrets_loaded >= 5);
        assert_eq!(cluster.nexus().stats().committed, 0, "nothing upgraded");
    });
}

#[test]
fn reconfigurations_add_a_sled_and_remove_one() {
    with_big_stack(|| {
        let mut cluster = fresh(6, 4);
        reconfigure(&mut cluster, Change::Same);
        reconfigure(&mut cluster, Change::Add(0));
        assert_eq!(cluster.nexus().members(), 0b1_1111);
        reconfigure(&mut cluster, Change::Remove(0));
        assert_eq!(cluster.nexus().members(), 0b1_1110);
        assert_eq!(latest_epoch(&cluster), Epoch(3));
        let added = cluster.disk_summary(4).unwrap();
        assert_eq!(added.latest_committed, Some(Epoch(3)));
        cluster.check_liveness().unwrap();
        // The old secrets are still loadable by the new member.
        for epoch in [Epoch(1), Epoch(2)] {
            assert_eq!(cluster.load_secret(4, epoch).unwrap(), Some(Ok(true)));
        }
    });
}

#[test]
fn a_sled_that_missed_the_prepare_computes_its_share_and_commits() {
    with_big_stack(|| {
        let mut cluster = fresh(5, 5);
        cluster.apply(&Action::Crash(4)).unwrap();
        cluster
            .apply(&Action::Reconfigure {
                change: Change::Same,
                coordinator: 0,
                threshold: 1,
            })
            .unwrap();
        cluster.deliver_all().unwrap();
        // K = 3, Z = 1: the four sleds that are up are enough.
        cluster.apply(&Action::NexusPoll).unwrap();
        assert_eq!(latest_epoch(&cluster), Epoch(1));
        for _ in 0..4 {
            cluster.apply(&Action::NexusCommit(0)).unwrap();
        }
        assert_eq!(cluster.nexus().commit_confirmed(), 0b1111);
        cluster.apply(&Action::Restart(4)).unwrap();
        cluster.deliver_all().unwrap();
        assert_eq!(cluster.disk_summary(4).unwrap().latest_epoch, None);
        // NotPrepared, then prepare_and_commit: sled 4 collects K shares
        // and interpolates its own.
        cluster.apply(&Action::NexusCommit(0)).unwrap();
        assert_eq!(cluster.nexus().stats().prepare_and_commits, 1);
        cluster.deliver_all().unwrap();
        let caught_up = cluster.disk_summary(4).unwrap();
        assert_eq!(caught_up.latest_committed, Some(Epoch(1)));
        assert!(caught_up.holds_share(Epoch(1)));
        cluster.apply(&Action::NexusCommit(0)).unwrap();
        assert_eq!(cluster.nexus().commit_confirmed(), 0b1_1111);
        cluster.check_liveness().unwrap();
    });
}

#[test]
fn a_removed_sled_that_asks_for_shares_is_expunged() {
    with_big_stack(|| {
        let mut cluster = fresh(4, 4);
        reconfigure(&mut cluster, Change::Same);
        reconfigure(&mut cluster, Change::Remove(3));
        assert_eq!(cluster.nexus().members(), 0b0111);
        assert_eq!(cluster.load_secret(3, Epoch(1)).unwrap(), Some(Ok(false)));
        cluster.deliver_all().unwrap();
        assert_eq!(cluster.disk_summary(3).unwrap().expunged, Some(Epoch(2)));
        let refused = cluster.load_secret(3, Epoch(1)).unwrap();
        assert!(
            matches!(&refused, Some(Err(LoadSecretError::Expunged(at))) if at.epoch == Epoch(2)),
            "{refused:?}"
        );
        assert_eq!(cluster.stats().expunged, 1);
        cluster.check_liveness().unwrap();
    });
}

/// Found by the cluster fuzz target: an LRTQ upgrade abandoned thirteen
/// times with nothing delivered leaves thirteen coordinators re-asking for
/// LRTQ shares and a full network. Healing must still let the newest one
/// finish (it once re-sent its requests into the full network, lost them
/// at every heal, and never collected a share).
#[test]
fn an_upgrade_abandoned_many_times_on_a_full_network_still_finishes() {
    with_big_stack(|| {
        let (data, secret) = lrtq_rack(8, 5);
        let lrtq = RackStart::Lrtq {
            data: &data,
            secret: &secret,
        };
        let mut cluster: Cluster = Cluster::new(9, RACK, 8, 8, lrtq).unwrap();
        cluster
            .apply(&Action::Reconfigure {
                change: Change::Same,
                coordinator: 3,
                threshold: 0,
            })
            .unwrap();
        for next in [6, 5, 1, 2, 6, 5, 6, 5, 6, 5, 6, 5, 1, 0] {
            cluster.apply(&Action::NexusAbandon(next)).unwrap();
        }
        assert_eq!(cluster.network().len(), cluster.network().capacity());
        cluster.check_liveness().unwrap();
        assert_eq!(cluster.nexus().stats().upgrades, 1);
    });
}

/// The checker catches a driver that breaks persist-before-send: one that
/// acknowledges state writes it never made lets the node send (and report
/// events) from state that is not on its disk, which a crash would lose.
#[test]
fn a_driver_that_acknowledges_unwritten_state_is_caught() {
    with_big_stack(|| {
        let mut cluster = fresh(4, 4);
        cluster.set_driver_fault(1, tq_harness::DriverFault::AcknowledgeWithoutStoring);
        let start = Action::Reconfigure {
            change: Change::Same,
            coordinator: 0,
            threshold: 1,
        };
        let caught = cluster
            .apply(&start)
            .and_then(|()| cluster.nexus_finish())
            .expect_err("the broken driver must be caught");
        assert!(
            matches!(
                caught,
                tq_harness::Violation::StateNotPersisted { sled: 1 }
                    | tq_harness::Violation::AckWithoutDurablePrepare { sled: 1, .. }
            ),
            "{caught:?}"
        );

        // The same run with a correct driver passes.
        let mut cluster = fresh(4, 4);
        cluster.apply(&start).unwrap();
        cluster.nexus_finish().unwrap();
    });
}

/// A cluster with room for a whole rack.
type WholeRack = Cluster<MAX_SLEDS>;

/// An LRTQ rack of `lrtq` sleds (set up with `vsss-rs` 3.3.4 as LRTQ rack
/// setup did) and `spares` new sleds, in a cluster with room for a whole
/// rack; checks the LRTQ threshold, `n/2 + 1`.
fn lrtq_rack_of(lrtq: usize, spares: usize, seed: u64) -> Box<WholeRack> {
    let (data, secret) = lrtq_rack(lrtq, seed);
    assert_eq!(usize::from(data[0].threshold.get()), lrtq / 2 + 1);
    let start = RackStart::Lrtq {
        data: &data,
        secret: &secret,
    };
    Box::new(WholeRack::new(seed, RACK, lrtq + spares, lrtq, start).unwrap())
}

/// The threshold byte that makes Nexus's model pick `k` of `members`
/// (it takes `2 + t % (members - 2)`).
fn pick(k: usize) -> u8 {
    u8::try_from(k - 2).unwrap()
}

/// Delivers and polls until Nexus committed the pending epoch, healing
/// nothing (crashed sleds stay down).
fn drive_to_commit<const N: usize>(cluster: &mut Cluster<N>) {
    for _ in 0..16 {
        cluster.deliver_all().unwrap();
        cluster.apply(&Action::NexusPoll).unwrap();
        if cluster.nexus().pending().is_none() {
            return;
        }
    }
    panic!("Nexus never committed: {:?}", cluster.nexus().pending());
}

/// Nexus tells every member of the latest configuration that is up to
/// commit (the ones that are down stay waiting).
fn commit_where_up<const N: usize>(cluster: &mut Cluster<N>) {
    for _ in 0..N {
        let latest = cluster.nexus().latest_committed().unwrap();
        let waiting: Vec<usize> = (0..cluster.sled_count())
            .filter(|s| latest.members & !cluster.nexus().commit_confirmed() & (1 << s) != 0)
            .collect();
        let up = waiting
            .iter()
            .position(|&s| cluster.sled(s).unwrap().is_up());
        let Some(n) = up else {
            return;
        };
        cluster
            .apply(&Action::NexusCommit(u8::try_from(n).unwrap()))
            .unwrap();
        cluster.deliver_all().unwrap();
    }
}

/// Every member of the latest configuration loads the secret of `epoch`
/// (each compared with the first loaded, and epoch 1 with the LRTQ secret
/// recorded at set-up).
fn every_member_loads<const N: usize>(cluster: &mut Cluster<N>, epoch: Epoch) {
    let members = cluster.nexus().members();
    for sled in (0..cluster.sled_count()).filter(|s| members & (1 << s) != 0) {
        let mut loaded = false;
        for _ in 0..4 {
            if cluster.load_secret(sled, epoch).unwrap() == Some(Ok(true)) {
                loaded = true;
                break;
            }
            cluster.deliver_all().unwrap();
        }
        assert!(loaded, "sled {sled} never loaded epoch {epoch:?}");
    }
}

/// Starts `change` with threshold `k` and coordinator `coordinator`.
fn start<const N: usize>(cluster: &mut Cluster<N>, change: Change, coordinator: u8, k: usize) {
    cluster
        .apply(&Action::Reconfigure {
            change,
            coordinator,
            threshold: pick(k),
        })
        .unwrap();
}

/// An LRTQ rack of 17 sleds (LRTQ threshold 9) and a spare: two sleds are
/// down during the upgrade, which commits at `K + Z` = 9 + 3 acks and
/// leaves them to catch up through `prepare_and_commit`; every member then
/// loads the LRTQ secret as epoch 1; the spare is added; liveness holds.
#[test]
fn an_lrtq_rack_of_seventeen_upgrades_with_two_sleds_down_and_grows() {
    with_big_stack(|| {
        let mut cluster = lrtq_rack_of(17, 1, 17);
        for down in [15, 16] {
            cluster.apply(&Action::Crash(down)).unwrap();
        }
        // K = 9, N - K = 8: Z = 3.
        start(&mut cluster, Change::Same, 0, 9);
        drive_to_commit(&mut *cluster);
        let upgrade = cluster.nexus().latest_committed().unwrap();
        assert_eq!(upgrade.epoch, Epoch(2));
        assert_eq!(upgrade.members.count_ones(), 17);
        assert!(upgrade.acked.count_ones() >= 9 + 3);
        assert_eq!(upgrade.acked & (0b11 << 15), 0);
        assert_eq!(cluster.nexus().stats().upgrades, 1);
        commit_where_up(&mut *cluster);
        assert_eq!(cluster.nexus().commit_confirmed(), (1 << 15) - 1);
        for down in [15, 16] {
            cluster.apply(&Action::Restart(down)).unwrap();
        }
        cluster.nexus_finish().unwrap();
        assert_eq!(cluster.nexus().stats().prepare_and_commits, 2);
        for sled in [15, 16] {
            let caught_up = cluster.disk_summary(sled).unwrap();
            assert_eq!(caught_up.latest_committed, Some(Epoch(2)));
            assert!(caught_up.holds_share(Epoch(2)));
        }
        every_member_loads(&mut *cluster, Epoch(1));
        every_member_loads(&mut *cluster, Epoch(2));

        start(&mut cluster, Change::Add(0), 3, 9);
        cluster.nexus_finish().unwrap();
        assert_eq!(latest_epoch_of(&cluster), Epoch(3));
        assert_eq!(cluster.nexus().members().count_ones(), 18);
        cluster.check_liveness().unwrap();
        every_member_loads(&mut *cluster, Epoch(1));
    });
}

/// A whole rack: 32 LRTQ sleds (LRTQ threshold 17). The upgrade picks
/// K = 24, so Z = 3 and Nexus commits at 27 acks: with five sleds down it
/// needs every other one, and commits. The five catch up, every member
/// loads the LRTQ secret as epoch 1, a member is removed (and learns it is
/// expunged in the liveness check), and liveness holds.
#[test]
fn a_whole_rack_of_thirty_two_upgrades_from_lrtq_at_the_crash_tolerance() {
    with_big_stack(|| {
        let mut cluster = lrtq_rack_of(MAX_SLEDS, 0, 32);
        let down = [3u8, 9, 14, 22, 31];
        for &sled in &down {
            cluster.apply(&Action::Crash(sled)).unwrap();
        }
        start(&mut cluster, Change::Same, 0, 24);
        drive_to_commit(&mut *cluster);
        let upgrade = cluster.nexus().latest_committed().unwrap();
        assert_eq!(upgrade.epoch, Epoch(2));
        assert_eq!(upgrade.members.count_ones(), 32);
        assert_eq!(upgrade.acked.count_ones(), 27);
        let config = cluster.nexus().latest_config().unwrap();
        assert_eq!(config.threshold().get(), 24);
        commit_where_up(&mut *cluster);
        assert_eq!(cluster.nexus().commit_confirmed(), upgrade.acked);
        for &sled in &down {
            assert_eq!(upgrade.acked & (1 << sled), 0);
            cluster.apply(&Action::Restart(sled)).unwrap();
        }
        cluster.nexus_finish().unwrap();
        assert_eq!(cluster.nexus().stats().prepare_and_commits, 5);
        every_member_loads(&mut *cluster, Epoch(1));

        start(&mut cluster, Change::Remove(7), 1, 20);
        cluster.nexus_finish().unwrap();
        assert_eq!(latest_epoch_of(&cluster), Epoch(3));
        assert_eq!(cluster.nexus().members(), !(1 << 7));
        cluster.check_liveness().unwrap();
        assert_eq!(cluster.disk_summary(7).unwrap().expunged, Some(Epoch(3)));
        every_member_loads(&mut *cluster, Epoch(1));
    });
}

fn latest_epoch_of<const N: usize>(cluster: &Cluster<N>) -> Epoch {
    cluster.nexus().latest_committed().unwrap().epoch
}
