//! Nexus over the rack's node handles: `tq-driver` (the host's Nexus
//! driver, the one adapter from the machine's calls to sled calls) with a
//! directory of the rack's running handles and its state file in a
//! temporary directory. Every decision (when to commit, whom to tell, when
//! to abandon) is the machine's; every call, route and proxy the driver's.

use std::collections::BTreeSet;
use std::time::Duration;

use tq_core::ids::{Epoch, PlatformId, Threshold};
use tq_driver::{DriverConfig, SledMap, StateFile};
use tq_nexus::{Nexus, Origin, Timing};

use super::in_process::InProcess;
use super::rack::{RACK_ID, Rack};

/// How long one call may take before it counts as unreachable.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Quick polls: the rack runs on loopback.
pub fn timing() -> Timing {
    Timing {
        poll_interval: Duration::from_millis(5),
        retry_interval: Duration::from_millis(50),
        abandon_after: Some(Duration::from_secs(2)),
    }
}

pub struct Driver {
    pub driver: tq_driver::Driver<SledMap<InProcess>>,
    /// Sleds Nexus has no direct route to: reached only through proxies.
    pub proxied: BTreeSet<PlatformId>,
    pub dir: tempfile::TempDir,
    timing: Timing,
}

impl Driver {
    pub async fn new(origin: Origin, sleds: &[PlatformId]) -> Self {
        Self::with_timing(origin, sleds, timing()).await
    }

    pub async fn with_timing(origin: Origin, sleds: &[PlatformId], timing: Timing) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let driver = tq_driver::Driver::create(
            StateFile::new(dir.path().join("nexus.json")),
            SledMap::new(),
            super::authority::authority(),
            config(timing),
            RACK_ID,
            origin,
            sleds,
        )
        .await
        .unwrap();
        Self {
            driver,
            proxied: BTreeSet::new(),
            dir,
            timing,
        }
    }

    /// A driver restarted from this one's state file (this one dropped:
    /// its calls in flight are abandoned, as in a crash).
    pub async fn restart(self) -> Self {
        let Self {
            driver,
            proxied,
            dir,
            timing,
        } = self;
        let file = driver.state_file().clone();
        drop(driver);
        let driver = tq_driver::Driver::resume(
            file,
            SledMap::new(),
            super::authority::authority(),
            config(timing),
        )
        .await
        .unwrap();
        Self {
            driver,
            proxied,
            dir,
            timing,
        }
    }

    pub fn nexus(&self) -> &Nexus {
        self.driver.nexus()
    }

    /// Points the directory at the rack's current handles (a restarted
    /// sled has a new one; a crashed one keeps its old, stopped handle,
    /// which answers nothing).
    fn sync(&self, rack: &Rack) {
        let map = self.driver.directory();
        for sled in &rack.sleds {
            if self.proxied.contains(&sled.id) {
                map.remove(&sled.id);
            } else if let Some(running) = &sled.running {
                map.insert(sled.id.clone(), InProcess(running.handle.clone()));
            }
        }
    }

    pub async fn start(
        &mut self,
        rack: &Rack,
        members: &[usize],
        k: u8,
        coordinator: usize,
    ) -> Epoch {
        self.sync(rack);
        let ids = rack.ids();
        let members: Vec<PlatformId> = members.iter().map(|&i| ids[i].clone()).collect();
        self.driver
            .start(&members, Threshold::new(k).unwrap(), &ids[coordinator])
            .await
            .unwrap()
    }

    /// One turn: the due calls made, one answer awaited briefly.
    pub async fn step(&mut self, rack: &Rack) {
        self.sync(rack);
        self.driver.turn(Duration::from_millis(2)).await.unwrap();
        self.no_refusals();
    }

    /// Drives until `done` holds, for at most `limit`.
    pub async fn run_until(
        &mut self,
        rack: &Rack,
        limit: Duration,
        what: &str,
        done: impl FnMut(&Nexus) -> bool,
    ) {
        self.sync(rack);
        if let Err(e) = self.driver.run_until(what, limit, done).await {
            let nexus = self.nexus();
            panic!(
                "{e}; pending {:?}, latest {:?}, stats {:?}, driver {:?}",
                nexus.pending(),
                nexus.latest_committed().map(|c| c.epoch()),
                nexus.stats(),
                self.driver.stats()
            );
        }
        self.no_refusals();
    }

    /// Until nothing is pending and every member confirmed the latest
    /// commit.
    pub async fn settle(&mut self, rack: &Rack, limit: Duration) {
        self.run_until(rack, limit, "settled", tq_driver::settled)
            .await;
    }

    fn no_refusals(&self) {
        assert_eq!(self.driver.stats().refused, 0, "a sled refused Nexus");
    }
}

fn config(timing: Timing) -> DriverConfig {
    DriverConfig {
        timing,
        call_timeout: CALL_TIMEOUT,
    }
}
