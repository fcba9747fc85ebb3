//! The driver's automatic abandonment against sleds that never answer:
//! the machine picks the next coordinator, but only among the sleds the
//! directory reaches directly (coordinator calls are never proxied, so a
//! coordinator reached only through a proxy would be stuck for certain).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tq_core::api::{
    CommitOutcome, CommitRequest, CoordinatorStatus, LrtqUpgradeMsg, NodeStatus,
    PrepareAndCommitOutcome, ReconfigureMsg, ReconfigureOutcome,
};
use tq_core::authority::RequestAuth;
use tq_core::config::Configuration;
use tq_core::ids::{Epoch, PlatformId, Threshold};
use tq_core::node::{CommitError, LrtqUpgradeError, PrepareAndCommitError, ReconfigureError};
use tq_driver::{
    CallFailure, Driver, DriverConfig, DriverError, DriverEvent, FailureKind, Reply, SledApi,
    SledMap, StateFile, Tagged,
};
use tq_nexus::{Origin, Timing};
use tq_test_fixtures::{RACK, authority_key, sled_id};

/// A sled that is down: every call fails at once.
#[derive(Clone)]
struct Down;

fn down<T>() -> Reply<T> {
    Err(CallFailure::new(FailureKind::Transport, "down"))
}

impl SledApi for Down {
    async fn reconfigure(
        &self,
        _: RequestAuth,
        _: ReconfigureMsg,
    ) -> Reply<Tagged<Result<ReconfigureOutcome, ReconfigureError>>> {
        down()
    }

    async fn upgrade_from_lrtq(
        &self,
        _: RequestAuth,
        _: LrtqUpgradeMsg,
    ) -> Reply<Tagged<Result<(), LrtqUpgradeError>>> {
        down()
    }

    async fn commit(
        &self,
        _: RequestAuth,
        _: CommitRequest,
    ) -> Reply<Tagged<Result<CommitOutcome, CommitError>>> {
        down()
    }

    async fn prepare_and_commit(
        &self,
        _: RequestAuth,
        _: Configuration,
    ) -> Reply<Tagged<Result<PrepareAndCommitOutcome, PrepareAndCommitError>>> {
        down()
    }

    async fn coordinator_status(&self, _: RequestAuth) -> Reply<Tagged<Option<CoordinatorStatus>>> {
        down()
    }

    async fn status(&self) -> Reply<NodeStatus> {
        down()
    }

    async fn proxy_commit(
        &self,
        _: PlatformId,
        _: RequestAuth,
        _: CommitRequest,
        _: Duration,
    ) -> Reply<Tagged<Result<CommitOutcome, CommitError>>> {
        down()
    }

    async fn proxy_prepare_and_commit(
        &self,
        _: PlatformId,
        _: RequestAuth,
        _: Configuration,
        _: Duration,
    ) -> Reply<Tagged<Result<PrepareAndCommitOutcome, PrepareAndCommitError>>> {
        down()
    }

    async fn proxy_status(
        &self,
        _: PlatformId,
        _: RequestAuth,
        _: Duration,
    ) -> Reply<Tagged<NodeStatus>> {
        down()
    }
}

/// How long without progress before the machine abandons.
const ABANDON_AFTER: Duration = Duration::from_millis(150);

const LIMIT: Duration = Duration::from_secs(10);

struct Rack {
    driver: Driver<SledMap<Down>>,
    /// The directory, shared with the driver.
    routes: SledMap<Down>,
    /// Every event the driver reported.
    events: Arc<Mutex<Vec<DriverEvent>>>,
    _dir: tempfile::TempDir,
}

/// A fresh rack of `sleds` sleds, those in `direct` reached directly.
async fn rack(sleds: usize, direct: &[usize]) -> Rack {
    let dir = tempfile::tempdir().unwrap();
    let routes: SledMap<Down> = direct.iter().map(|&i| (sled_id(i), Down)).collect();
    let config = DriverConfig {
        timing: Timing {
            poll_interval: Duration::from_millis(10),
            retry_interval: Duration::from_millis(20),
            abandon_after: Some(ABANDON_AFTER),
        },
        call_timeout: Duration::from_secs(1),
    };
    let ids: Vec<PlatformId> = (0..sleds).map(sled_id).collect();
    let mut driver = Driver::create(
        StateFile::new(dir.path().join("nexus.json")),
        routes.clone(),
        authority_key(),
        config,
        RACK,
        Origin::Fresh,
        &ids,
    )
    .await
    .unwrap();
    let events = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&events);
    driver.observe(move |event| seen.lock().unwrap().push(event.clone()));
    Rack {
        driver,
        routes,
        events,
        _dir: dir,
    }
}

impl Rack {
    /// Starts a change to every sled, coordinated by sled `coordinator`.
    async fn start(&mut self, sleds: usize, coordinator: usize) -> Epoch {
        let ids: Vec<PlatformId> = (0..sleds).map(sled_id).collect();
        self.driver
            .start(&ids, Threshold::new(2).unwrap(), &sled_id(coordinator))
            .await
            .unwrap()
    }

    /// The coordinators the driver abandoned to, in order.
    fn abandoned_to(&self) -> Vec<PlatformId> {
        let events = self.events.lock().unwrap();
        events
            .iter()
            .filter_map(|event| match event {
                DriverEvent::Abandoned {
                    coordinator,
                    automatically: true,
                    ..
                } => Some(coordinator.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Sled 2 is next after sled 1 in platform id order, but the driver
/// reaches it only through a proxy: the driver's automatic abandonment
/// goes on to sled 3, then wraps to sled 0, and never picks sled 2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_reached_only_through_a_proxy_is_never_picked() {
    let mut rack = rack(4, &[0, 1, 3]).await;
    assert_eq!(rack.start(4, 1).await, Epoch(1));
    rack.driver
        .run_until("abandoned twice", LIMIT, |n| {
            n.highest_started() >= Epoch(3)
        })
        .await
        .unwrap();
    assert_eq!(rack.abandoned_to(), [sled_id(3), sled_id(0)]);
    let pending = rack.driver.nexus().pending().unwrap();
    assert_eq!(pending.coordinator(), Some(&sled_id(0)));
}

/// No member has a direct route any more (the coordinator's went after
/// the start): the epoch is kept (reported, counted, and checked again
/// only a deadline later, not in a loop); once a route comes back, it is
/// abandoned for that sled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_no_member_reached_directly_the_epoch_is_kept_until_a_route_comes_back() {
    let mut rack = rack(3, &[0]).await;
    let epoch = rack.start(3, 0).await;
    rack.routes.remove(&sled_id(0));
    let started = tokio::time::Instant::now();
    rack.driver
        .run_until("held twice", LIMIT, |n| n.stats().abandon_held >= 2)
        .await
        .unwrap();
    // The first hold is one deadline after the start; the second came a
    // deadline after it, not at once (half a deadline of slack for the
    // driver's whole-millisecond clock and a slow machine).
    let took = started.elapsed();
    assert!(took >= ABANDON_AFTER * 3 / 2, "{took:?}");
    let nexus = rack.driver.nexus();
    assert_eq!(nexus.highest_started(), epoch);
    assert_eq!(nexus.stats().abandoned, 0);
    assert_eq!(nexus.pending().unwrap().coordinator(), Some(&sled_id(0)));
    let held = rack
        .events
        .lock()
        .unwrap()
        .iter()
        .filter(|e| **e == DriverEvent::AbandonHeld { epoch })
        .count();
    assert_eq!(held, 2);

    rack.routes.insert(sled_id(2), Down);
    rack.driver
        .run_until("abandoned", LIMIT, |n| n.highest_started() > epoch)
        .await
        .unwrap();
    assert_eq!(rack.abandoned_to(), [sled_id(2)]);
}

/// An operator naming a coordinator the driver reaches only through a
/// proxy, to start a change or to take over a stuck one, is refused
/// before anything is decided or stored.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_coordinator_named_without_a_direct_route_is_refused() {
    let mut rack = rack(4, &[0, 1, 3]).await;
    let ids: Vec<PlatformId> = (0..4).map(sled_id).collect();
    let k = Threshold::new(2).unwrap();
    let refused = rack.driver.start(&ids, k, &sled_id(2)).await;
    assert!(
        matches!(&refused, Err(DriverError::NoDirectRoute(id)) if *id == sled_id(2)),
        "{refused:?}"
    );
    assert!(rack.driver.nexus().pending().is_none());
    assert_eq!(rack.start(4, 1).await, Epoch(1));
    let refused = rack.driver.abandon(&sled_id(2)).await;
    assert!(
        matches!(&refused, Err(DriverError::NoDirectRoute(id)) if *id == sled_id(2)),
        "{refused:?}"
    );
    let pending = rack.driver.nexus().pending().unwrap();
    assert_eq!(pending.epoch(), Epoch(1));
    assert_eq!(pending.coordinator(), Some(&sled_id(1)));
    assert_eq!(rack.driver.abandon(&sled_id(3)).await.unwrap(), Epoch(2));
}
