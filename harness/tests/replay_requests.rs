//! The replay argument of `tq_core::authority`, tested: every Nexus
//! request of a whole run is recorded (authenticator and body, as Nexus
//! sent it), and once the run is over and the rack at rest, all of them
//! are delivered again, in random order, each to the sled it was made
//! for. Every replay passes the tag check (it is genuine), and none
//! changes anything but counters: no disk, no node's state or activity,
//! no message sent. The rack still reconfigures afterwards.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::cell::RefCell;
use std::hash::{DefaultHasher, Hash, Hasher};

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use tq_core::api::{
    Activity, CommitRequest, CoordinatorStatus, LrtqUpgradeMsg, ReconfigureMsg, StateSummary,
};
use tq_core::authority::RequestAuth;
use tq_core::config::Configuration;
use tq_core::node::Alarm;
use tq_harness::{Action, Change, Cluster, RackStart};
use tq_nexus::CallKind;
use tq_test_fixtures::{RACK, lrtq_rack, with_big_stack};

/// A recorded request's call, owned.
#[derive(Clone, Debug)]
enum Call {
    Reconfigure(Box<ReconfigureMsg>),
    UpgradeFromLrtq(Box<LrtqUpgradeMsg>),
    Commit(CommitRequest),
    PrepareAndCommit(Box<Configuration>),
    CoordinatorStatus,
}

impl Call {
    fn of(kind: CallKind<'_>) -> Self {
        match kind {
            CallKind::Reconfigure(msg) => Self::Reconfigure(Box::new(msg.clone())),
            CallKind::UpgradeFromLrtq(msg) => Self::UpgradeFromLrtq(Box::new(msg.clone())),
            CallKind::Commit(request) => Self::Commit(request),
            CallKind::PrepareAndCommit(config) => Self::PrepareAndCommit(Box::new(config.clone())),
            CallKind::CoordinatorStatus => Self::CoordinatorStatus,
        }
    }

    fn kind(&self) -> CallKind<'_> {
        match self {
            Self::Reconfigure(msg) => CallKind::Reconfigure(msg),
            Self::UpgradeFromLrtq(msg) => CallKind::UpgradeFromLrtq(msg),
            Self::Commit(request) => CallKind::Commit(*request),
            Self::PrepareAndCommit(config) => CallKind::PrepareAndCommit(config),
            Self::CoordinatorStatus => CallKind::CoordinatorStatus,
        }
    }
}

thread_local! {
    /// The run's requests, in the order Nexus made them (the cluster runs
    /// on one thread).
    static LOG: RefCell<Vec<(usize, RequestAuth, Call)>> = const { RefCell::new(Vec::new()) };
}

fn record(sled: usize, auth: &RequestAuth, call: CallKind<'_>) {
    LOG.with(|log| log.borrow_mut().push((sled, auth.clone(), Call::of(call))));
}

/// Everything of a sled but its counters: its disk, and what its node
/// shows of its state and work.
#[derive(Debug, PartialEq)]
struct SledView {
    /// The disk's length and a hash of its bytes (the bytes themselves
    /// would flood a failure's message).
    disk: (usize, u64),
    up: bool,
    state: Option<StateSummary>,
    state_stored: Option<bool>,
    activity: Option<Activity>,
    alarms: Vec<Alarm>,
    coordination: Option<CoordinatorStatus>,
}

fn view(cluster: &Cluster, index: usize) -> SledView {
    let sled = cluster.sled(index).unwrap();
    let running = sled.running();
    let status = running.map(|r| r.node.status(&r.ctx));
    SledView {
        disk: (sled.disk().len(), {
            let mut hasher = DefaultHasher::new();
            sled.disk().hash(&mut hasher);
            hasher.finish()
        }),
        up: sled.is_up(),
        state: status.as_ref().map(|s| s.state.clone()),
        state_stored: status.as_ref().map(|s| s.state_stored),
        activity: status.as_ref().map(|s| s.activity),
        alarms: status.map(|s| s.alarms.to_vec()).unwrap_or_default(),
        coordination: running.and_then(|r| {
            r.node.coordination(&r.ctx).map(|c| CoordinatorStatus {
                epoch: c.epoch,
                phase: c.phase,
                acked: tq_core::member_set::MemberSet::new(c.acked).unwrap(),
                config: c.config.cloned(),
            })
        }),
    }
}

/// A run of `steps` random actions from `seed` (a settle every so often,
/// so that the run goes through several reconfigurations), recorded, then
/// brought to rest, then replayed.
fn run_and_replay(cluster: &mut Cluster, seed: u64, steps: usize) {
    LOG.with(|log| log.borrow_mut().clear());
    cluster.set_request_recorder(record);
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    for step in 0..steps {
        let action = if step % 25 == 24 {
            Action::Settle
        } else {
            Action::random(&mut rng)
        };
        cluster.apply(&action).unwrap();
    }
    cluster.check_liveness().unwrap();
    let recorded = LOG.with(|log| log.borrow().clone());
    let kinds = |pick: fn(&Call) -> bool| recorded.iter().filter(|(_, _, c)| pick(c)).count();
    assert!(kinds(|c| matches!(c, Call::Reconfigure(_) | Call::UpgradeFromLrtq(_))) > 1);
    assert!(kinds(|c| matches!(c, Call::Commit(_))) > 1);
    assert!(kinds(|c| matches!(c, Call::CoordinatorStatus)) > 1);
    println!(
        "seed {seed}: {} requests ({} coordinations, {} commits, {} prepare_and_commit), {} committed epochs",
        recorded.len(),
        kinds(|c| matches!(c, Call::Reconfigure(_) | Call::UpgradeFromLrtq(_))),
        kinds(|c| matches!(c, Call::Commit(_))),
        kinds(|c| matches!(c, Call::PrepareAndCommit(_))),
        cluster.nexus().stats().committed,
    );

    let sleds = cluster.sled_count();
    let before: Vec<SledView> = (0..sleds).map(|i| view(cluster, i)).collect();
    let in_flight = cluster.network().len();
    let counted = |cluster: &Cluster| -> u64 {
        (0..sleds)
            .filter_map(|i| cluster.sled(i).unwrap().running())
            .map(|r| r.ctx.counters().total())
            .sum()
    };
    let counts_before = counted(cluster);

    let mut order: Vec<usize> = (0..recorded.len()).collect();
    for i in (1..order.len()).rev() {
        let j = (rng.next_u64() % (i as u64 + 1)) as usize;
        order.swap(i, j);
    }
    for &i in &order {
        let (sled, auth, call) = &recorded[i];
        let outcome = cluster
            .deliver_nexus_request(*sled, auth, call.kind())
            .unwrap();
        assert_eq!(
            outcome,
            Some(Ok(())),
            "replay {i} of {call:?} to sled {sled}"
        );
        for (index, before) in before.iter().enumerate() {
            assert_eq!(
                &view(cluster, index),
                before,
                "replay {i} ({call:?} to sled {sled}) changed sled {index}"
            );
        }
        assert_eq!(
            cluster.network().len(),
            in_flight,
            "replay {i} ({call:?} to sled {sled}) sent a message"
        );
    }
    // Nothing was refused by a tag check, so the anomaly counters are as
    // they were; only the ordinary ones may have moved.
    let anomalies: u64 = (0..sleds)
        .filter_map(|i| cluster.sled(i).unwrap().running())
        .map(|r| r.ctx.counters().anomalies())
        .sum();
    assert_eq!(anomalies, 0);
    assert!(counted(cluster) >= counts_before);

    // The rack still reconfigures.
    let committed = cluster.nexus().stats().committed;
    cluster
        .apply(&Action::Reconfigure {
            change: Change::Same,
            coordinator: 1,
            threshold: 0,
        })
        .unwrap();
    cluster.check_liveness().unwrap();
    assert!(cluster.nexus().stats().committed > committed);
}

#[test]
fn replaying_every_request_of_fresh_racks_changes_nothing() {
    with_big_stack(|| {
        for seed in 0..8 {
            let mut cluster: Cluster = Cluster::new(seed, RACK, 6, 4, RackStart::Fresh).unwrap();
            run_and_replay(&mut cluster, seed, 300);
        }
    });
}

#[test]
fn replaying_every_request_of_an_upgraded_lrtq_rack_changes_nothing() {
    with_big_stack(|| {
        for seed in 10..14 {
            let (data, secret) = lrtq_rack(5, seed);
            let lrtq = RackStart::Lrtq {
                data: &data,
                secret: &secret,
            };
            let mut cluster: Cluster = Cluster::new(seed, RACK, 6, 5, lrtq).unwrap();
            run_and_replay(&mut cluster, seed, 150);
        }
    });
}
