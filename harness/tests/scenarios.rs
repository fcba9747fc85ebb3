//! Deterministic scenarios: each drives the cluster through one story and
//! ends with the full liveness check.

use tq_core::ids::Epoch;
use tq_core::node::LoadSecretError;
use tq_harness::{Action, Change, Cluster, RackStart};
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
