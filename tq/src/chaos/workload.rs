//! Nexus's side of the run: the real driver over HTTP, reconfiguring the
//! rack without pause. First the LRTQ upgrade; then, drawn from the seed,
//! a spare sled added (a spare of the first rack, or a replacement the
//! operator slid into a slot a removal emptied), a member removed (never
//! below [`MIN_MEMBERS`]; in a run with replacements, only one whose slot
//! has a replacement left, and no faster than the pool lasts the run), or
//! the same members again (a rotation: new epoch, new shares). Each
//! change is coordinated by a member that stays and that Nexus reaches
//! directly (a coordinator cannot be called through a proxy), drawn from
//! the seed, and driven until every member confirmed it; a coordinator
//! that stops answering is abandoned on
//! Nexus's deadline and the change retried at a higher epoch with another
//! (the driver's own behaviour). The fault injector reads the pending
//! coordinator to kill it, and every commit a member confirms is noted as
//! what that sled acknowledged.
//!
//! Nexus reaches the LRTQ sleds directly and the first rack's spares
//! through a proxy; a replacement is given a direct route when the
//! operator slides it in (a new sled registers with Nexus), so the rack
//! keeps sleds Nexus reaches after every LRTQ sled is removed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tq_core::ids::{PlatformId, Threshold};
use tq_driver::{Driver, DriverError, DriverEvent, SledMap, settled};

use super::plan::{Dice, stream};
use super::slots::removals_allowed;
use super::{Latest, Shared, lock};
use crate::nexus::http::HttpSled;

/// Fewest members the workload leaves.
pub const MIN_MEMBERS: usize = 4;

/// How long each slice of driving lasts before the shared view is updated.
const SLICE: Duration = Duration::from_millis(500);

/// The workload.
pub struct Workload {
    driver: Driver<SledMap<HttpSled>>,
    shared: Arc<Mutex<Shared>>,
    ids: Vec<PlatformId>,
    dice: Dice,
    /// Sleds of the current (or pending) membership.
    members: Vec<usize>,
    /// Sleds never added yet (replacements join once slid in).
    spares: Vec<usize>,
    /// Starts Nexus refused.
    pub refused_starts: u64,
    /// Each replacement's route, given to Nexus when it is slid in.
    routes: BTreeMap<usize, HttpSled>,
    /// Replacements in all.
    pool: usize,
    /// Members removed so far (changes started that drop one).
    removals: usize,
    /// When the run began, and how long its faults last: removals are
    /// spread over it ([`removals_allowed`]).
    began: Instant,
    duration: Duration,
}

impl Workload {
    /// The workload over `driver`, the rack's LRTQ sleds `lrtq` and spare
    /// sleds `spares`; `ids` maps a sled index to its platform id;
    /// `routes` has each replacement sled's API; the faults last
    /// `duration`.
    pub fn new(
        mut driver: Driver<SledMap<HttpSled>>,
        shared: Arc<Mutex<Shared>>,
        ids: Vec<PlatformId>,
        (lrtq, spares): (Vec<usize>, Vec<usize>),
        routes: BTreeMap<usize, HttpSled>,
        seed: u64,
        duration: Duration,
    ) -> Self {
        let book = Arc::clone(&shared);
        let index = ids.clone();
        driver.observe(move |event| {
            if let DriverEvent::Confirmed { epoch, sled } = event
                && let Some(i) = index.iter().position(|id| id == sled)
            {
                let mut shared = lock(&book);
                let slot = shared.confirmed.entry(i).or_insert(*epoch);
                *slot = (*slot).max(*epoch);
            }
        });
        Self {
            driver,
            shared,
            ids,
            dice: Dice::new(seed, stream::WORKLOAD),
            members: lrtq,
            spares,
            refused_starts: 0,
            pool: routes.len(),
            routes,
            removals: 0,
            began: Instant::now(),
            duration,
        }
    }

    /// Nexus's driver.
    pub fn driver(&self) -> &Driver<SledMap<HttpSled>> {
        &self.driver
    }

    /// Reconfigures until the shared stop flag is set, then drives the
    /// last change until settled, for at most `settle_limit`.
    pub async fn run(&mut self, settle_limit: Duration) -> Result<(), DriverError> {
        while !lock(&self.shared).stop_workload {
            if self.driver.nexus().pending().is_none() {
                self.start_next().await?;
            }
            self.drive(SLICE).await?;
            if settled(self.driver.nexus()) {
                self.publish();
                let pause = Duration::from_millis(self.dice.between(0, 1_500));
                tokio::time::sleep(pause).await;
            }
        }
        let deadline = tokio::time::Instant::now() + settle_limit;
        while !settled(self.driver.nexus()) && tokio::time::Instant::now() < deadline {
            self.drive(SLICE).await?;
        }
        self.publish();
        Ok(())
    }

    /// Drives for at most `limit`: timing out or stalling is not an error
    /// here (the faults cause both), a state file that cannot be written
    /// is.
    async fn drive(&mut self, limit: Duration) -> Result<(), DriverError> {
        match self.driver.run_until("settled", limit, settled).await {
            Ok(()) | Err(DriverError::TimedOut { .. }) => {}
            Err(DriverError::Stalled { .. }) => tokio::time::sleep(limit).await,
            Err(e) => return Err(e),
        }
        let coordinator = self
            .driver
            .nexus()
            .pending()
            .and_then(|p| p.coordinator().cloned())
            .and_then(|id| self.index(&id));
        lock(&self.shared).coordinator = coordinator;
        Ok(())
    }

    fn index(&self, id: &PlatformId) -> Option<usize> {
        self.ids.iter().position(|i| i == id)
    }

    /// Tells the others what Nexus committed last, and which sleds it
    /// removed.
    fn publish(&mut self) {
        let nexus = self.driver.nexus();
        let Some(latest) = nexus.latest_committed() else {
            return;
        };
        let mut members: Vec<usize> = latest
            .members()
            .iter()
            .filter_map(|id| self.index(id))
            .collect();
        members.sort_unstable();
        let k = nexus
            .latest_config()
            .map_or(0, |c| usize::from(c.threshold().get()));
        let removed: Vec<usize> = nexus
            .removed()
            .iter()
            .filter_map(|id| self.index(id))
            .collect();
        let committed: Vec<_> = nexus.history().map(|c| c.epoch()).collect();
        let mut shared = lock(&self.shared);
        shared.seen.committed.extend(committed);
        shared.latest = Some(Latest {
            epoch: latest.epoch(),
            members: members.clone(),
            k,
        });
        for sled in removed {
            if !shared.retired.contains(&sled) && !shared.retire.contains(&sled) {
                shared.retire.push(sled);
            }
        }
        self.members = members;
    }

    /// After the faults: one last change adding every sled waiting to be
    /// added (replacements slid in, spares never added), driven until
    /// settled for at most `settle_limit`, so the run ends with a full
    /// rack and the final unlock asks every sled in it.
    pub async fn add_every_spare(&mut self, settle_limit: Duration) -> Result<(), DriverError> {
        self.take_arrivals();
        if self.spares.is_empty() || self.driver.nexus().is_on_lrtq() {
            return Ok(());
        }
        let mut next = self.members.clone();
        next.append(&mut self.spares);
        next.sort_unstable();
        self.propose(next).await?;
        let deadline = tokio::time::Instant::now() + settle_limit;
        while !settled(self.driver.nexus()) && tokio::time::Instant::now() < deadline {
            self.drive(SLICE).await?;
        }
        self.publish();
        Ok(())
    }

    /// Replacements the operator slid in become spares, each reached
    /// directly from now on.
    fn take_arrivals(&mut self) {
        let arrived = std::mem::take(&mut lock(&self.shared).arrived);
        for &sled in &arrived {
            if let (Some(id), Some(route)) = (self.ids.get(sled), self.routes.remove(&sled)) {
                self.driver.directory().insert(id.clone(), route);
            }
        }
        self.spares.extend(arrived);
    }

    /// Starts the next change.
    async fn start_next(&mut self) -> Result<(), DriverError> {
        self.take_arrivals();
        let current = self.members.clone();
        let mut next = current.clone();
        if !self.driver.nexus().is_on_lrtq() {
            match self.dice.below(10) {
                0..=2 if !self.spares.is_empty() => {
                    let at =
                        usize::try_from(self.dice.below(self.spares.len() as u64)).unwrap_or(0);
                    next.push(self.spares.remove(at));
                    next.sort_unstable();
                }
                3..=4 if current.len() > MIN_MEMBERS => {
                    let at = usize::try_from(self.dice.below(next.len() as u64)).unwrap_or(0);
                    let allowed = removals_allowed(self.pool, self.began.elapsed(), self.duration);
                    if self.removals < allowed && self.refillable(next.get(at)) {
                        next.remove(at);
                    }
                }
                _ => {}
            }
        }
        let removal = next.len() < current.len();
        self.propose(next).await?;
        if removal && self.members.len() < current.len() {
            self.removals += 1;
        }
        Ok(())
    }

    /// Whether removing `member` leaves a slot a replacement can refill
    /// (always, in a run without replacements): a slot is not emptied for
    /// good.
    fn refillable(&self, member: Option<&usize>) -> bool {
        if self.pool == 0 {
            return true;
        }
        let shared = lock(&self.shared);
        member
            .and_then(|&m| shared.slot_of.get(m))
            .and_then(|&slot| shared.refills.get(slot))
            .is_some_and(|&left| left > 0)
    }

    /// Starts the change to `next`, coordinated by a member that stays
    /// and that Nexus reaches directly (drawn from the seed; any that
    /// stays if none is reached directly).
    async fn propose(&mut self, next: Vec<usize>) -> Result<(), DriverError> {
        let current = self.members.clone();
        let stay: Vec<usize> = current
            .iter()
            .copied()
            .filter(|i| next.contains(i))
            .collect();
        let direct = self.driver.directory().ids();
        let reached: Vec<usize> = stay
            .iter()
            .copied()
            .filter(|&i| self.ids.get(i).is_some_and(|id| direct.contains(id)))
            .collect();
        let eligible = if reached.is_empty() { &stay } else { &reached };
        let Some(coordinator) = self.dice.pick(eligible) else {
            return Ok(());
        };
        let Ok(k) = crate::nexus::majority(next.len()) else {
            return Ok(());
        };
        let ids: Vec<PlatformId> = next
            .iter()
            .filter_map(|&i| self.ids.get(i).cloned())
            .collect();
        let Some(coordinator_id) = self.ids.get(coordinator).cloned() else {
            return Ok(());
        };
        match self.start(&ids, k, &coordinator_id).await {
            Ok(()) => {
                self.members = next;
                lock(&self.shared).coordinator = Some(coordinator);
                Ok(())
            }
            Err(DriverError::Start(_)) => {
                // Nexus refused the change (e.g. a removed sled): drawn
                // again next time.
                self.refused_starts += 1;
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    async fn start(
        &mut self,
        ids: &[PlatformId],
        k: Threshold,
        coordinator: &PlatformId,
    ) -> Result<(), DriverError> {
        self.driver.start(ids, k, coordinator).await.map(|_| ())
    }
}
