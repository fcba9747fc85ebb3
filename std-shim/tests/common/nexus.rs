//! A small driver of Nexus's state machine (`tq-nexus`) over the rack's
//! node handles: it makes each call the machine hands out on the sled's
//! handle (or through a proxy for sleds Nexus cannot reach), feeds the
//! answer back, and tells the machine the time. Every decision (when to
//! commit, whom to tell, when to abandon) is the machine's.

use std::collections::BTreeSet;
use std::time::Duration;

use tokio::time::Instant;
use tq_core::api::CoordinatorStatus;
use tq_core::ids::{Epoch, PlatformId, Threshold};
use tq_nexus::{Answer, Call, CallId, CallKind, Nexus, Origin, Reaction, Timing, status_ref};
use tq_std::handle::NodeHandle;

use super::rack::{RACK_ID, Rack};

/// How long one call may take before it counts as unreachable.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);

/// Quick polls: the rack runs on loopback.
pub fn timing() -> Timing {
    Timing {
        poll_interval: Duration::from_millis(5),
        retry_interval: Duration::from_millis(50),
        abandon_after: Some(Duration::from_secs(2)),
    }
}

/// A call the machine handed out, owned, so calls run concurrently.
enum Owned {
    Reconfigure(Box<tq_core::api::ReconfigureMsg>),
    Upgrade(Box<tq_core::api::LrtqUpgradeMsg>),
    Status,
    Commit(tq_core::api::CommitRequest),
    PrepareAndCommit(Box<tq_core::config::Configuration>),
}

/// A node's answer, owned.
enum Got {
    Reconfigure(Result<tq_core::api::ReconfigureOutcome, tq_core::node::ReconfigureError>),
    Upgrade(Result<(), tq_core::node::LrtqUpgradeError>),
    Status(Option<Box<CoordinatorStatus>>),
    Commit(Result<tq_core::api::CommitOutcome, tq_core::node::CommitError>),
    PrepareAndCommit(
        Result<tq_core::api::PrepareAndCommitOutcome, tq_core::node::PrepareAndCommitError>,
    ),
    Unreachable,
}

impl Got {
    fn answer(&self) -> Answer<'_> {
        match self {
            Self::Reconfigure(r) => Answer::Reconfigure(r.clone()),
            Self::Upgrade(r) => Answer::UpgradeFromLrtq(r.clone()),
            Self::Status(s) => Answer::CoordinatorStatus(s.as_deref().map(status_ref)),
            Self::Commit(r) => Answer::Commit(r.clone()),
            Self::PrepareAndCommit(r) => Answer::PrepareAndCommit(r.clone()),
            Self::Unreachable => Answer::Unreachable,
        }
    }
}

pub struct Driver {
    pub nexus: Nexus,
    origin: Instant,
    /// Sleds Nexus reaches only through `via`'s proxy.
    pub proxied: BTreeSet<PlatformId>,
    pub via: Option<PlatformId>,
    pub reactions: Vec<Reaction>,
    /// Calls made.
    pub calls: usize,
}

impl Driver {
    pub fn new(origin: Origin, sleds: &[PlatformId]) -> Self {
        Self::with_timing(origin, sleds, timing())
    }

    pub fn with_timing(origin: Origin, sleds: &[PlatformId], timing: Timing) -> Self {
        let start = Instant::now();
        let nexus = Nexus::new(
            RACK_ID,
            origin,
            sleds,
            timing,
            tq_nexus::Instant::from_millis(0),
        )
        .unwrap();
        let mut driver = Self {
            nexus,
            origin: start,
            proxied: BTreeSet::new(),
            via: None,
            reactions: Vec::new(),
            calls: 0,
        };
        driver.store();
        driver
    }

    fn now(&self) -> tq_nexus::Instant {
        tq_nexus::Instant::from_millis(self.origin.elapsed().as_millis() as u64)
    }

    /// Nexus's state lives in this test's memory: "stored" at once.
    fn store(&mut self) {
        if let Some(to_store) = self.nexus.state_to_store() {
            let revision = to_store.revision;
            self.nexus.acknowledge_stored(revision);
        }
    }

    pub fn start(&mut self, rack: &Rack, members: &[usize], k: u8, coordinator: usize) -> Epoch {
        let ids = rack.ids();
        let members: Vec<&PlatformId> = members.iter().map(|&i| &ids[i]).collect();
        let epoch = self
            .nexus
            .start(
                self.now(),
                members,
                Threshold::new(k).unwrap(),
                &ids[coordinator],
            )
            .unwrap();
        self.store();
        epoch
    }

    /// One round: time, then every due call made (concurrently) and
    /// answered.
    pub async fn step(&mut self, rack: &Rack) {
        let now = self.now();
        self.nexus.handle_timeout(now);
        self.store();
        let mut calls = Vec::new();
        while let Some(call) = self.nexus.poll_call(now) {
            calls.push(owned(call));
        }
        let made = calls.iter().map(|(id, to, call)| {
            let route = self.route(rack, to);
            async move { (*id, perform(route, to, call).await) }
        });
        let answers = futures_util::future::join_all(made).await;
        for (id, got) in answers {
            self.calls += 1;
            let reaction = self.nexus.on_answer(self.now(), id, got.answer());
            assert!(
                !matches!(reaction, Reaction::Refused(_)),
                "refused: {reaction:?}"
            );
            self.reactions.push(reaction);
            self.store();
        }
    }

    fn route(&self, rack: &Rack, to: &PlatformId) -> Route {
        let handle_of = |id: &PlatformId| {
            rack.sleds
                .iter()
                .find(|s| s.id == *id)
                .and_then(|s| s.running.as_ref())
                .map(|r| r.handle.clone())
        };
        match (&self.via, self.proxied.contains(to)) {
            (Some(via), true) => match handle_of(via) {
                Some(handle) => Route::Proxy(handle),
                None => Route::Down,
            },
            _ => handle_of(to).map_or(Route::Down, Route::Direct),
        }
    }

    /// Steps until `done` holds, for at most `limit`.
    pub async fn run_until(
        &mut self,
        rack: &Rack,
        limit: Duration,
        what: &str,
        mut done: impl FnMut(&Nexus) -> bool,
    ) {
        let deadline = Instant::now() + limit;
        while !done(&self.nexus) {
            assert!(
                Instant::now() < deadline,
                "not done after {limit:?}: {what}; pending {:?}, latest {:?}, stats {:?}",
                self.nexus.pending(),
                self.nexus.latest_committed().map(|c| c.epoch()),
                self.nexus.stats()
            );
            self.step(rack).await;
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    }

    /// Until nothing is pending and every member confirmed the latest
    /// commit.
    pub async fn settle(&mut self, rack: &Rack, limit: Duration) {
        self.run_until(rack, limit, "settled", settled).await;
    }
}

pub fn settled(nexus: &Nexus) -> bool {
    nexus.pending().is_none()
        && nexus
            .latest_committed()
            .is_some_and(|c| c.unconfirmed().is_empty())
}

enum Route {
    Direct(NodeHandle),
    Proxy(NodeHandle),
    Down,
}

fn owned(call: Call<'_>) -> (CallId, PlatformId, Owned) {
    let kind = match call.kind {
        CallKind::Reconfigure(msg) => Owned::Reconfigure(Box::new(msg.clone())),
        CallKind::UpgradeFromLrtq(msg) => Owned::Upgrade(Box::new(msg.clone())),
        CallKind::CoordinatorStatus => Owned::Status,
        CallKind::Commit(request) => Owned::Commit(request),
        CallKind::PrepareAndCommit(config) => Owned::PrepareAndCommit(Box::new(config.clone())),
    };
    (call.id, call.to.clone(), kind)
}

async fn perform(route: Route, to: &PlatformId, call: &Owned) -> Got {
    let made = async {
        match (route, call) {
            (Route::Down, _) => Got::Unreachable,
            (Route::Direct(h), Owned::Reconfigure(m)) => h
                .reconfigure(*m.clone())
                .await
                .map_or(Got::Unreachable, Got::Reconfigure),
            (Route::Direct(h), Owned::Upgrade(m)) => h
                .upgrade_from_lrtq(*m.clone())
                .await
                .map_or(Got::Unreachable, Got::Upgrade),
            (Route::Direct(h), Owned::Status) => h
                .coordinator_status()
                .await
                .map_or(Got::Unreachable, |s| Got::Status(s.map(Box::new))),
            (Route::Direct(h), Owned::Commit(r)) => {
                h.commit(*r).await.map_or(Got::Unreachable, Got::Commit)
            }
            (Route::Direct(h), Owned::PrepareAndCommit(c)) => h
                .prepare_and_commit(*c.clone())
                .await
                .map_or(Got::Unreachable, Got::PrepareAndCommit),
            (Route::Proxy(h), Owned::Commit(r)) => h
                .proxy_commit(to.clone(), *r, CALL_TIMEOUT)
                .await
                .map_or(Got::Unreachable, Got::Commit),
            (Route::Proxy(h), Owned::PrepareAndCommit(c)) => h
                .proxy_prepare_and_commit(to.clone(), *c.clone(), CALL_TIMEOUT)
                .await
                .map_or(Got::Unreachable, Got::PrepareAndCommit),
            // Only member calls are proxied; a coordinator is reachable.
            (Route::Proxy(_), _) => Got::Unreachable,
        }
    };
    tokio::time::timeout(CALL_TIMEOUT, made)
        .await
        .unwrap_or(Got::Unreachable)
}
