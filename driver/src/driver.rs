//! The driver: owns the machine, its state file and a clock, makes the
//! calls the machine hands out and tells it the answers.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinSet;
use tq_atomic_file::lock::FileLock;
use tq_core::authority::NexusAuthorityKey;
use tq_core::ids::{Epoch, PlatformId, RackId, Threshold};
use tq_nexus::{
    AbandonError, CallId, Method, Nexus, Origin, Reaction, RestoreError, StartError, TimedOut,
    Timing,
};

use crate::authority::Authority;
use crate::call::{self, Outcome, Request, Route};
use crate::event::DriverEvent;
use crate::sled::{Directory, FailureKind};
use crate::store::{StateFile, StoreError};

/// Most proxies tried for one member call before it counts as unreachable.
pub const MAX_PROXY_TRIES: usize = 3;

/// How the driver waits.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DriverConfig {
    /// The machine's own timing (polls, retries, automatic abandonment).
    pub timing: Timing,
    /// How long one attempt of a call may take before it counts as
    /// unreachable (each proxy tried gets as long; the proxy itself is
    /// given four fifths of it, at most
    /// [`tq_core::api::MAX_DEADLINE`]).
    pub call_timeout: Duration,
}

impl Default for DriverConfig {
    /// The machine's defaults, ten seconds per call.
    fn default() -> Self {
        Self {
            timing: Timing::default(),
            call_timeout: Duration::from_secs(10),
        }
    }
}

/// What the driver did, besides what the machine counts
/// ([`tq_nexus::NexusStats`]).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DriverStats {
    /// Calls answered by their sled directly.
    pub direct: u64,
    /// Calls answered through a proxy.
    pub proxied: u64,
    /// Calls no route answered.
    pub unreachable: u64,
    /// Of those, because an attempt timed out.
    pub timeouts: u64,
    /// Times the state file was written.
    pub stores: u64,
    /// Refusals seen (each also an [`DriverEvent::Refused`]).
    pub refused: u64,
    /// Answers whose tag did not check with the target sled's key (altered,
    /// or not the target's answer to the request): never acted on, each
    /// counted here and, when no other route answered, as unreachable.
    pub answer_unauthenticated: u64,
    /// Requests a sled refused for their authenticator (another rack or
    /// sled, no key there, a tag that does not match): a key that differs
    /// from the sled's, or a request altered on the way.
    pub request_refused: u64,
}

/// Why the driver stopped or refused a command.
#[derive(Debug)]
pub enum DriverError {
    /// The state file could not be read or written (nothing that follows
    /// from an unstored decision was done).
    Store(StoreError),
    /// No state file at this path: make one first.
    NoState(PathBuf),
    /// A state file exists at this path already.
    StateExists(PathBuf),
    /// The stored state is inconsistent.
    Restore(RestoreError),
    /// The machine refused to be made, or to start a reconfiguration.
    Start(StartError),
    /// The machine refused to abandon.
    Abandon(AbandonError),
    /// The coordinator named has no direct route in the directory: a
    /// coordinator's calls never go through a proxy, so it could never be
    /// asked to run the epoch.
    NoDirectRoute(PlatformId),
    /// Not done within the limit.
    TimedOut {
        /// What was awaited.
        what: String,
        /// The limit.
        limit: Duration,
    },
    /// Not done, and nothing left to do: no call in flight, none due ever
    /// (a stuck coordinator with automatic abandonment off: abandon it).
    Stalled {
        /// What was awaited.
        what: String,
    },
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Store(e) => write!(f, "{e}"),
            Self::NoState(path) => write!(f, "no Nexus state file at {}", path.display()),
            Self::StateExists(path) => {
                write!(f, "a Nexus state file exists at {}", path.display())
            }
            Self::Restore(e) => write!(f, "the stored state is refused: {e}"),
            Self::Start(e) => write!(f, "{e}"),
            Self::Abandon(e) => write!(f, "{e}"),
            Self::NoDirectRoute(id) => write!(
                f,
                "{id} is reached only through a proxy, and a coordinator is called directly"
            ),
            Self::TimedOut { what, limit } => write!(f, "not {what} after {limit:?}"),
            Self::Stalled { what } => {
                write!(f, "not {what}, and nothing left to do (abandon the epoch?)")
            }
        }
    }
}

impl std::error::Error for DriverError {}

impl From<StoreError> for DriverError {
    fn from(e: StoreError) -> Self {
        Self::Store(e)
    }
}

type Observer = Box<dyn FnMut(&DriverEvent) + Send>;

/// A finished call, as its task hands it back.
struct Finished {
    id: CallId,
    to: PlatformId,
    method: Method,
    outcome: Outcome,
}

/// The Nexus driver: see the crate doc.
pub struct Driver<D: Directory> {
    nexus: Box<Nexus>,
    /// Nexus's authority: every call is authenticated, every answer
    /// checked, with it.
    authority: Arc<Authority>,
    file: StateFile,
    /// This driver's ownership of the file, for its whole life.
    _lock: FileLock,
    directory: D,
    config: DriverConfig,
    origin: tokio::time::Instant,
    in_flight: JoinSet<Finished>,
    /// The proxy that last passed a call on to each sled.
    via: BTreeMap<PlatformId, PlatformId>,
    /// Sleds reported unreachable and not reached since (one event each).
    unreachable: BTreeSet<PlatformId>,
    /// The acks last reported, per epoch.
    acks: Option<(Epoch, usize)>,
    /// Events of answers whose decisions are not stored yet.
    unreported: Vec<DriverEvent>,
    observer: Option<Observer>,
    stats: DriverStats,
}

impl<D: Directory> Driver<D> {
    /// A driver for a new rack of `sleds` (an LRTQ rack's, or a fresh
    /// rack's first members), with Nexus's authority key `key`: its first
    /// state is stored at `file`, which must not exist. Locks the file for
    /// the driver's life.
    pub async fn create(
        file: StateFile,
        directory: D,
        key: NexusAuthorityKey,
        config: DriverConfig,
        rack_id: RackId,
        origin: Origin,
        sleds: &[PlatformId],
    ) -> Result<Self, DriverError> {
        let lock = file.lock().await?;
        if file.path().exists() {
            return Err(DriverError::StateExists(file.path().to_owned()));
        }
        let clock = tokio::time::Instant::now();
        let nexus = Nexus::new(rack_id, origin, sleds, config.timing, tq_nexus::Instant(0))
            .map_err(DriverError::Start)?;
        let authority = Authority::new(key, rack_id);
        let mut driver = Self::with(
            Box::new(nexus),
            authority,
            file,
            lock,
            directory,
            config,
            clock,
        );
        driver.store().await?;
        tracing::info!(rack = %rack_id, sleds = sleds.len(), ?origin, "Nexus state created");
        Ok(driver)
    }

    /// The driver as it was when its state file was last written, with
    /// Nexus's authority key `key`: the pending epoch (if any) is asked for
    /// again, and every member that has not confirmed the latest commit is
    /// told again. Locks the file for the driver's life.
    pub async fn resume(
        file: StateFile,
        directory: D,
        key: NexusAuthorityKey,
        config: DriverConfig,
    ) -> Result<Self, DriverError> {
        let lock = file.lock().await?;
        let loaded = file
            .load()?
            .ok_or_else(|| DriverError::NoState(file.path().to_owned()))?;
        let nexus = Nexus::restore(loaded.state, config.timing, tq_nexus::Instant(0))
            .map_err(DriverError::Restore)?;
        let authority = Authority::new(key, nexus.rack_id());
        let driver = Self::with(
            Box::new(nexus),
            authority,
            file,
            lock,
            directory,
            config,
            tokio::time::Instant::now(),
        );
        tracing::info!(
            revision = loaded.revision,
            pending = ?driver.nexus.pending().map(|p| p.epoch()),
            latest = ?driver.nexus.latest_committed().map(|c| c.epoch()),
            "Nexus state resumed"
        );
        Ok(driver)
    }

    fn with(
        nexus: Box<Nexus>,
        authority: Authority,
        file: StateFile,
        lock: FileLock,
        directory: D,
        config: DriverConfig,
        origin: tokio::time::Instant,
    ) -> Self {
        Self {
            nexus,
            authority: Arc::new(authority),
            file,
            _lock: lock,
            directory,
            config,
            origin,
            in_flight: JoinSet::new(),
            via: BTreeMap::new(),
            unreachable: BTreeSet::new(),
            acks: None,
            unreported: Vec::new(),
            observer: None,
            stats: DriverStats::default(),
        }
    }

    /// Calls `observer` with every event from now on (live progress).
    pub fn observe(&mut self, observer: impl FnMut(&DriverEvent) + Send + 'static) {
        self.observer = Some(Box::new(observer));
    }

    /// The machine, for what Nexus knows (members, history, pending...).
    pub fn nexus(&self) -> &Nexus {
        &self.nexus
    }

    /// Nexus's authority (to authenticate a call the driver does not
    /// make, such as a secret load).
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The directory calls are routed by.
    pub fn directory(&self) -> &D {
        &self.directory
    }

    /// The driver's own counters.
    pub fn stats(&self) -> DriverStats {
        self.stats
    }

    /// The state file.
    pub fn state_file(&self) -> &StateFile {
        &self.file
    }

    /// Calls made and not answered yet.
    pub fn calls_in_flight(&self) -> usize {
        self.in_flight.len()
    }

    // ---- commands ----

    /// Starts a reconfiguration to `members` with threshold `threshold`,
    /// coordinated by `coordinator` (the LRTQ upgrade while the rack is on
    /// LRTQ). Returns its epoch, once the decision is stored.
    pub async fn start(
        &mut self,
        members: &[PlatformId],
        threshold: Threshold,
        coordinator: &PlatformId,
    ) -> Result<Epoch, DriverError> {
        self.check_direct(coordinator)?;
        let upgrade = self.nexus.is_on_lrtq();
        let epoch = self
            .nexus
            .start(self.now(), members, threshold, coordinator)
            .map_err(DriverError::Start)?;
        self.store().await?;
        self.acks = None;
        self.emit(DriverEvent::Started {
            epoch,
            coordinator: coordinator.clone(),
            members: members.len(),
            threshold,
            upgrade,
        });
        Ok(epoch)
    }

    /// Abandons the pending epoch and starts the same change at the next
    /// epoch, coordinated by `coordinator`. Returns the new epoch, once
    /// stored.
    pub async fn abandon(&mut self, coordinator: &PlatformId) -> Result<Epoch, DriverError> {
        self.check_direct(coordinator)?;
        let old = self.nexus.pending().map(|p| p.epoch());
        let next = self
            .nexus
            .abandon(self.now(), coordinator)
            .map_err(DriverError::Abandon)?;
        self.store().await?;
        self.emit(DriverEvent::Abandoned {
            epoch: old.unwrap_or(next),
            next,
            coordinator: coordinator.clone(),
            automatically: false,
        });
        Ok(next)
    }

    /// Refuses a coordinator the directory reaches only through a proxy
    /// (see [`DriverError::NoDirectRoute`]), before anything is decided.
    fn check_direct(&self, coordinator: &PlatformId) -> Result<(), DriverError> {
        match self.directory.direct(coordinator) {
            Some(_) => Ok(()),
            None => Err(DriverError::NoDirectRoute(coordinator.clone())),
        }
    }

    // ---- the loop ----

    /// Drives until `done` holds of the machine, for at most `limit`.
    /// Every decision is stored when this returns; calls still in flight
    /// stay in flight for the next run.
    pub async fn run_until(
        &mut self,
        what: &str,
        limit: Duration,
        mut done: impl FnMut(&Nexus) -> bool,
    ) -> Result<(), DriverError> {
        let deadline = later(tokio::time::Instant::now(), limit);
        loop {
            self.dispatch().await?;
            if done(&self.nexus) {
                return Ok(());
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Err(DriverError::TimedOut {
                    what: what.to_owned(),
                    limit,
                });
            }
            let wake = self.nexus.poll_timeout().map(|at| self.instant_at(at));
            if wake.is_none() && self.in_flight.is_empty() {
                return Err(DriverError::Stalled {
                    what: what.to_owned(),
                });
            }
            self.wait(wake.map_or(deadline, |w| w.min(deadline)))
                .await?;
        }
    }

    /// Drives until nothing is pending and every member confirmed the
    /// latest commit, for at most `limit`.
    pub async fn settle(&mut self, limit: Duration) -> Result<(), DriverError> {
        self.run_until("settled", limit, settled).await
    }

    /// Drives for one turn: the due calls are made, then one answer is
    /// awaited for at most `max_wait` (for a caller that checks something
    /// else between turns).
    pub async fn turn(&mut self, max_wait: Duration) -> Result<(), DriverError> {
        self.dispatch().await?;
        self.wait(later(tokio::time::Instant::now(), max_wait))
            .await?;
        self.dispatch().await
    }

    /// Waits for an answer (handling every one that is ready) or `until`;
    /// then stores what the answers decided, once for them all, and only
    /// then reports it.
    async fn wait(&mut self, until: tokio::time::Instant) -> Result<(), DriverError> {
        tokio::select! {
            Some(joined) = self.in_flight.join_next() => {
                if let Ok(finished) = joined {
                    self.on_finished(finished);
                }
                while let Some(Ok(finished)) = self.in_flight.try_join_next() {
                    self.on_finished(finished);
                }
            }
            () = tokio::time::sleep_until(until) => {}
        }
        self.store().await?;
        for event in std::mem::take(&mut self.unreported) {
            self.emit(event);
        }
        Ok(())
    }

    /// Lets time pass, stores, and makes every call due.
    async fn dispatch(&mut self) -> Result<(), DriverError> {
        self.abandon_if_due().await?;
        self.store().await?;
        let now = self.now();
        while let Some(call) = self.nexus.poll_call(now) {
            let (id, to, request) = (call.id, call.to.clone(), Request::of(&call));
            let route = self.route(&to);
            let method = request.method();
            tracing::trace!(sled = %to, method = method.name(), "call");
            let timeout = self.config.call_timeout;
            let authority = Arc::clone(&self.authority);
            self.in_flight.spawn(async move {
                let outcome = call::make(to.clone(), request, route, timeout, authority).await;
                Finished {
                    id,
                    to,
                    method,
                    outcome,
                }
            });
        }
        Ok(())
    }

    /// Lets the machine abandon the pending epoch if it is due, restarting
    /// it only with a coordinator the directory has a direct route to: a
    /// proxy passes on member calls only (`Request::proxiable`), so a
    /// coordinator without one could never be asked to run the epoch.
    async fn abandon_if_due(&mut self) -> Result<(), DriverError> {
        let now = self.now();
        let directory = &self.directory;
        let reachable = |id: &PlatformId| directory.direct(id).is_some();
        match self.nexus.handle_timeout(now, reachable) {
            None => {}
            Some(TimedOut::Abandoned(abandoned)) => {
                self.store().await?;
                let coordinator = self.nexus.pending().and_then(|p| p.coordinator().cloned());
                tracing::warn!(epoch = %abandoned.epoch, next = %abandoned.next, "abandoned");
                if let Some(coordinator) = coordinator {
                    self.emit(DriverEvent::Abandoned {
                        epoch: abandoned.epoch,
                        next: abandoned.next,
                        coordinator,
                        automatically: true,
                    });
                }
            }
            Some(TimedOut::Held { epoch }) => {
                tracing::warn!(%epoch, "not abandoned: no member that may coordinate is reached directly");
                self.emit(DriverEvent::AbandonHeld { epoch });
            }
        }
        Ok(())
    }

    /// The route to `to`: direct if the directory has one, then members of
    /// the latest configuration that Nexus reaches directly as proxies.
    fn route(&self, to: &PlatformId) -> Route<D::Sled> {
        let preferred = self.via.get(to);
        let mut proxies: Vec<(PlatformId, D::Sled)> = Vec::new();
        let candidates = preferred.into_iter().chain(
            self.nexus
                .members()
                .iter()
                .filter(|id| Some(*id) != preferred),
        );
        for id in candidates {
            if proxies.len() == MAX_PROXY_TRIES {
                break;
            }
            if id != to
                && !self.unreachable.contains(id)
                && let Some(sled) = self.directory.direct(id)
            {
                proxies.push((id.clone(), sled));
            }
        }
        Route {
            direct: self.directory.direct(to),
            proxy_first: preferred.is_some() && proxies.first().map(|(id, _)| id) == preferred,
            proxies,
        }
    }

    /// Tells the machine a call's answer. Its events wait in `unreported`
    /// until what it decided is stored.
    fn on_finished(&mut self, finished: Finished) {
        let Finished {
            id,
            to,
            method,
            outcome,
        } = finished;
        let answer = match &outcome.result {
            Ok(got) => {
                self.reached(&to, method, outcome.via.as_ref());
                got.answer()
            }
            Err(failure) => {
                self.stats.unreachable += 1;
                match failure.kind {
                    FailureKind::Timeout => self.stats.timeouts += 1,
                    FailureKind::AnswerUnauthenticated => self.stats.answer_unauthenticated += 1,
                    FailureKind::RequestRefused => self.stats.request_refused += 1,
                    _ => {}
                }
                if self.unreachable.insert(to.clone()) {
                    tracing::warn!(sled = %to, method = method.name(), %failure, "unreachable");
                    self.unreported.push(DriverEvent::Unreachable {
                        sled: to.clone(),
                        method,
                        failure: failure.clone(),
                    });
                }
                tq_nexus::Answer::Unreachable
            }
        };
        let pending = self.nexus.pending().map(|p| p.epoch());
        let reaction = self.nexus.on_answer(self.now(), id, answer);
        self.react(&to, method, pending, reaction, &outcome);
    }

    /// A sled answered (through `via`, if a proxy passed it on).
    fn reached(&mut self, to: &PlatformId, method: Method, via: Option<&PlatformId>) {
        self.unreachable.remove(to);
        match via {
            None => {
                self.stats.direct += 1;
                self.via.remove(to);
            }
            Some(via) => {
                self.stats.proxied += 1;
                if self.via.get(to) != Some(via) {
                    self.via.insert(to.clone(), via.clone());
                    tracing::info!(sled = %to, via = %via, "reached through a proxy");
                    self.unreported.push(DriverEvent::Proxied {
                        sled: to.clone(),
                        via: via.clone(),
                        method,
                    });
                }
            }
        }
    }

    fn react(
        &mut self,
        to: &PlatformId,
        method: Method,
        pending: Option<Epoch>,
        reaction: Reaction,
        outcome: &Outcome,
    ) {
        tracing::debug!(sled = %to, method = method.name(), ?reaction, "answer");
        match reaction {
            Reaction::Started => {
                if let Some(epoch) = pending {
                    self.unreported.push(DriverEvent::Running { epoch });
                }
            }
            Reaction::Stuck => {
                if let Some(epoch) = pending {
                    tracing::warn!(%epoch, "the coordinator cannot run it");
                    self.unreported.push(DriverEvent::Stuck { epoch });
                }
            }
            Reaction::Committed(epoch) => {
                let acked = self.nexus.committed(epoch).map_or(0, |c| c.acked().len());
                tracing::info!(%epoch, acked, "committed");
                self.unreported
                    .push(DriverEvent::Committed { epoch, acked });
            }
            Reaction::Confirmed(epoch) => self.unreported.push(DriverEvent::Confirmed {
                epoch,
                sled: to.clone(),
            }),
            Reaction::Refused(refusal) => {
                self.stats.refused += 1;
                tracing::error!(sled = %to, %refusal, "refused");
                self.unreported.push(DriverEvent::Refused {
                    sled: to.clone(),
                    refusal,
                });
            }
            Reaction::Noted => {
                if method == Method::PrepareAndCommit && outcome.result.is_ok() {
                    self.unreported
                        .push(DriverEvent::PreparedAndCommitted { sled: to.clone() });
                }
                self.report_acks();
            }
            Reaction::Ignored => {}
        }
    }

    /// An [`DriverEvent::Acks`] when the coordinator's acks changed.
    fn report_acks(&mut self) {
        let Some(pending) = self.nexus.pending() else {
            return;
        };
        let now = (pending.epoch(), pending.acked().len());
        let needed = pending.acks_needed();
        if now.1 > 0 && self.acks != Some(now) {
            self.acks = Some(now);
            self.unreported.push(DriverEvent::Acks {
                epoch: now.0,
                acked: now.1,
                needed,
            });
        }
    }

    /// Stores the machine's state if a decision is unstored.
    async fn store(&mut self) -> Result<(), DriverError> {
        let Some(to_store) = self.nexus.state_to_store() else {
            return Ok(());
        };
        let revision = to_store.revision;
        self.file.store(revision, to_store.state).await?;
        self.nexus.acknowledge_stored(revision);
        self.stats.stores += 1;
        Ok(())
    }

    fn emit(&mut self, event: DriverEvent) {
        tracing::debug!(%event, "event");
        if let Some(observer) = &mut self.observer {
            observer(&event);
        }
    }

    fn now(&self) -> tq_nexus::Instant {
        let millis = self.origin.elapsed().as_millis();
        tq_nexus::Instant(u64::try_from(millis).unwrap_or(u64::MAX))
    }

    fn instant_at(&self, at: tq_nexus::Instant) -> tokio::time::Instant {
        later(self.origin, Duration::from_millis(at.millis()))
    }
}

/// How far ahead a wait with no representable end is put: as good as
/// never, for a process.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 24 * 3600);

/// `start + wait`, saturating: a limit or a timer too long for the clock
/// (`--timeout` of `u64::MAX` seconds) waits as good as forever instead of
/// overflowing.
fn later(start: tokio::time::Instant, wait: Duration) -> tokio::time::Instant {
    start
        .checked_add(wait)
        .or_else(|| start.checked_add(FAR_FUTURE))
        .unwrap_or(start)
}

/// Whether nothing is pending and every member confirmed the latest
/// commit.
pub fn settled(nexus: &Nexus) -> bool {
    nexus.pending().is_none()
        && nexus
            .latest_committed()
            .is_some_and(|c| c.unconfirmed().is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_too_long_for_the_clock_saturates() {
        let now = tokio::time::Instant::now();
        assert_eq!(
            later(now, Duration::from_secs(3)),
            now + Duration::from_secs(3)
        );
        assert!(later(now, Duration::MAX) >= now + FAR_FUTURE);
        assert!(later(now, Duration::from_secs(u64::MAX)) > now);
    }
}
