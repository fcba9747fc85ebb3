//! Regressions found by the cluster harness (`tq-harness`), one test each,
//! driven through the harness so every safety invariant is checked after
//! every step.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use tq_core::ids::Epoch;
use tq_harness::{Action, Change, Cluster, RackStart, Violation};
use tq_test_fixtures::{RACK, with_big_stack};

/// A member acked the prepare of epoch 1, Nexus committed on that ack, and
/// the member was not told yet. Two newer epochs are then prepared and
/// abandoned. With `MAX_STORED_CONFIGS = 3` the member used to drop "the
/// oldest uncommitted configuration" to store the fourth: epoch 1, whose
/// share Nexus counted on (K = 3 of 4, so two members doing this could leave
/// the committed secret unrecoverable), and could then no longer store it
/// from `prepare_and_commit` (`StateError::Full`), so it never caught up.
#[test]
fn an_acked_prepare_of_a_committed_epoch_is_never_dropped() {
    with_big_stack(|| {
        let mut cluster: Cluster = Cluster::new(1, RACK, 4, 4, RackStart::Fresh).unwrap();
        let outcome = (|| -> Result<(), Violation> {
            cluster.apply(&Action::Crash(3))?;
            // Epoch 1, K = 3, Z = 0: acks from sleds 0, 1 and 2 commit it.
            cluster.apply(&Action::Reconfigure {
                change: Change::Same,
                coordinator: 0,
                threshold: 1,
            })?;
            cluster.deliver_all()?;
            cluster.apply(&Action::NexusPoll)?;
            assert_eq!(
                cluster.nexus().latest_committed().map(|c| c.epoch),
                Some(Epoch(1))
            );
            // Only sleds 0 and 3 learn of the commit (3 by computing its
            // share); 1 and 2 keep epoch 1 as prepared.
            cluster.apply(&Action::NexusCommit(0))?;
            cluster.apply(&Action::Restart(3))?;
            cluster.deliver_all()?;
            cluster.apply(&Action::NexusCommit(2))?;
            cluster.deliver_all()?;
            cluster.apply(&Action::NexusCommit(2))?;
            assert_eq!(cluster.nexus().commit_confirmed(), 0b1001);
            // Epochs 2 and 3 are prepared everywhere, then abandoned.
            cluster.apply(&Action::Reconfigure {
                change: Change::Same,
                coordinator: 0,
                threshold: 1,
            })?;
            cluster.deliver_all()?;
            cluster.apply(&Action::NexusAbandon(2))?;
            cluster.deliver_all()?;
            // Epoch 4's prepare makes sleds 1 and 2 drop epoch 1.
            cluster.apply(&Action::NexusAbandon(0))?;
            cluster.deliver_all()?;
            cluster.check_liveness()
        })();
        assert_eq!(outcome, Ok(()));
    });
}
