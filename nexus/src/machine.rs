//! The machine: its parts, how it is made or restored, storing its
//! decisions, and what it knows.

use tq_core::api::acks_to_commit;
use tq_core::config::Configuration;
use tq_core::ids::{Epoch, PlatformId, RackId, Threshold};
use tq_core::node::CoordinatorPhase;

use crate::calls::Calls;
use crate::errors::{RestoreError, StartError};
use crate::roster::{MAX_KNOWN_SLEDS, Roster, SledSet, Sleds};
use crate::state::{CommitRecord, Pending, Request, State};
use crate::stats::NexusStats;
use crate::time::{Instant, Timing};

/// How the rack starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Origin {
    /// New sleds: the first configuration makes the first secret.
    Fresh,
    /// Sleds holding LRTQ share data: the first configuration upgrades
    /// them, and its coordinator must be one of them.
    Lrtq,
}

/// Nexus's side of the trust quorum: see the crate doc.
#[derive(Debug)]
#[cfg_attr(feature = "model", derive(Clone))]
pub struct Nexus {
    pub(crate) state: State,
    /// Bumped at every decision; `stored` is the last one the caller
    /// stored.
    pub(crate) revision: u64,
    pub(crate) stored: u64,
    pub(crate) timing: Timing,
    pub(crate) progress: Progress,
    pub(crate) calls: Calls,
    /// When each member of the latest commit may next be told of it, by
    /// roster place.
    pub(crate) member_due: [Instant; MAX_KNOWN_SLEDS],
    /// Members that answered `NotPrepared`: `prepare_and_commit` next.
    pub(crate) needs_prepare: SledSet,
    pub(crate) stats: NexusStats,
}

/// Where the pending reconfiguration stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "model", derive(Hash))]
pub enum Phase {
    /// The coordinator has not accepted it yet (not asked yet, unreachable,
    /// not ready, or it lost it in a crash).
    Starting,
    /// The coordinator is running it: Nexus polls its status.
    Running,
    /// The coordinator can never run it: only abandoning helps.
    Stuck(Stuck),
}

/// Why the coordinator can never run the pending epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "model", derive(Hash))]
pub enum Stuck {
    /// It knows an epoch at least as new (it stored this one and then lost
    /// the coordination in a crash, or Nexus lost its own state).
    EpochNotNewer,
    /// It refused the request, or reported another configuration than the
    /// one requested ([`crate::Reaction::Refused`] said why).
    Refused,
}

/// What Nexus knows of the pending reconfiguration besides its decision:
/// rebuilt by asking again after a restart.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Progress {
    pub(crate) phase: Phase,
    /// The coordinator's phase and ack count at the last poll.
    pub(crate) seen: Option<(CoordinatorPhase, usize)>,
    /// The members the coordinator reported as acked at the last poll.
    pub(crate) acked: SledSet,
    /// When the coordination last moved (started, accepted, or its status
    /// changed).
    pub(crate) last_progress: Instant,
    /// When the next coordinator call may go.
    pub(crate) due: Instant,
    /// Automatic abandonment is not due before this: it was held (no
    /// member the caller reaches may coordinate) and waits for routes to
    /// change.
    pub(crate) abandon_held_until: Instant,
}

impl Progress {
    pub(crate) fn starting(now: Instant) -> Self {
        Self {
            phase: Phase::Starting,
            seen: None,
            acked: SledSet::EMPTY,
            last_progress: now,
            due: now,
            abandon_held_until: now,
        }
    }
}

/// The state to store, and the revision to acknowledge once it is.
#[derive(Clone, Copy, Debug)]
pub struct StateToStore<'a> {
    /// Pass to [`Nexus::acknowledge_stored`] once stored.
    pub revision: u64,
    /// The decisions.
    pub state: &'a State,
}

/// One committed epoch, as Nexus remembers it.
#[derive(Clone, Copy, Debug)]
pub struct Committed<'a> {
    roster: &'a Roster,
    record: CommitRecord,
}

impl<'a> Committed<'a> {
    /// The epoch.
    pub fn epoch(&self) -> Epoch {
        self.record.epoch
    }

    /// Its members.
    pub fn members(&self) -> Sleds<'a> {
        Sleds::new(self.roster, self.record.members)
    }

    /// The members whose prepare acks Nexus committed on.
    pub fn acked(&self) -> Sleds<'a> {
        Sleds::new(self.roster, self.record.acked)
    }

    /// The members that confirmed the commit.
    pub fn confirmed(&self) -> Sleds<'a> {
        Sleds::new(self.roster, self.record.confirmed)
    }

    /// The members that have not confirmed it yet.
    pub fn unconfirmed(&self) -> Sleds<'a> {
        Sleds::new(
            self.roster,
            self.record.members.minus(self.record.confirmed),
        )
    }
}

/// The reconfiguration being driven.
#[derive(Clone, Copy, Debug)]
pub struct PendingView<'a> {
    nexus: &'a Nexus,
    pending: &'a Pending,
}

impl<'a> PendingView<'a> {
    /// Its epoch.
    pub fn epoch(&self) -> Epoch {
        self.pending.request.epoch()
    }

    /// Its coordinator (`None` only in a corrupt state).
    pub fn coordinator(&self) -> Option<&'a PlatformId> {
        self.nexus.state.roster.get(self.pending.coordinator)
    }

    /// Its members.
    pub fn members(&self) -> Sleds<'a> {
        Sleds::new(&self.nexus.state.roster, self.pending.members)
    }

    /// Its threshold.
    pub fn threshold(&self) -> Threshold {
        self.pending.request.threshold()
    }

    /// Whether it is the LRTQ upgrade.
    pub fn is_upgrade(&self) -> bool {
        matches!(self.pending.request, Request::Upgrade(_))
    }

    /// The epoch it names as committed last.
    pub fn last_committed(&self) -> Option<Epoch> {
        self.pending.request.last_committed()
    }

    /// Where it stands.
    pub fn phase(&self) -> Phase {
        self.nexus.progress.phase
    }

    /// The coordinator's phase at the last poll.
    pub fn coordinator_phase(&self) -> Option<CoordinatorPhase> {
        self.nexus.progress.seen.map(|(phase, _)| phase)
    }

    /// The members the coordinator reported as acked at the last poll.
    pub fn acked(&self) -> Sleds<'a> {
        Sleds::new(&self.nexus.state.roster, self.nexus.progress.acked)
    }

    /// How many acks commit it: `K + Z` (PROTOCOL.md section 7).
    pub fn acks_needed(&self) -> usize {
        acks_to_commit(self.pending.members.len(), self.threshold())
    }

    /// When its coordination last moved.
    pub fn last_progress(&self) -> Instant {
        self.nexus.progress.last_progress
    }
}

impl Nexus {
    /// Nexus for a rack of `sleds` (the fresh rack's first members, or the
    /// sleds holding LRTQ data), deciding nothing yet. Its state is not
    /// stored: store it before the first call.
    pub fn new<'a>(
        rack_id: RackId,
        origin: Origin,
        sleds: impl IntoIterator<Item = &'a PlatformId>,
        timing: Timing,
        now: Instant,
    ) -> Result<Self, StartError> {
        let mut roster = Roster::default();
        for id in sleds {
            if roster.place_of(id).is_some() {
                return Err(StartError::Members);
            }
            roster.place_or_add(id).ok_or(StartError::RosterFull)?;
        }
        let state = State::new(rack_id, roster, origin == Origin::Lrtq);
        let mut nexus = Self::with_state(state, timing, now);
        nexus.revision = 1;
        Ok(nexus)
    }

    /// Nexus as it was when `state` was stored: the pending epoch (if any)
    /// is asked for again (the same request is harmless), and every member
    /// that has not confirmed the latest commit is told again.
    pub fn restore(state: State, timing: Timing, now: Instant) -> Result<Self, RestoreError> {
        state.check()?;
        Ok(Self::with_state(state, timing, now))
    }

    fn with_state(state: State, timing: Timing, now: Instant) -> Self {
        Self {
            state,
            revision: 0,
            stored: 0,
            timing,
            progress: Progress::starting(now),
            calls: Calls::default(),
            member_due: [now; MAX_KNOWN_SLEDS],
            needs_prepare: SledSet::EMPTY,
            stats: NexusStats::default(),
        }
    }

    // ---- storing decisions ----

    /// The state to store, if a decision was made since the last one
    /// stored. Until it is stored and acknowledged, no call is handed out.
    pub fn state_to_store(&self) -> Option<StateToStore<'_>> {
        (self.revision != self.stored).then_some(StateToStore {
            revision: self.revision,
            state: &self.state,
        })
    }

    /// The state of `revision` is stored durably.
    pub fn acknowledge_stored(&mut self, revision: u64) {
        if revision <= self.revision {
            self.stored = self.stored.max(revision);
        }
    }

    /// The decisions, stored or not.
    pub fn state(&self) -> &State {
        &self.state
    }

    pub(crate) fn decided(&mut self) {
        self.revision = self.revision.wrapping_add(1);
    }

    pub(crate) fn is_stored(&self) -> bool {
        self.revision == self.stored
    }

    // ---- what Nexus knows ----

    /// The rack.
    pub fn rack_id(&self) -> RackId {
        self.state.rack_id
    }

    /// How it waits.
    pub fn timing(&self) -> &Timing {
        &self.timing
    }

    /// The current members: of the latest commit, or the sleds the rack
    /// started with.
    pub fn members(&self) -> Sleds<'_> {
        Sleds::new(&self.state.roster, self.state.members)
    }

    /// Sleds removed from the membership: never added back.
    pub fn removed(&self) -> Sleds<'_> {
        Sleds::new(&self.state.roster, self.state.removed)
    }

    /// Every sled Nexus knows.
    pub fn known(&self) -> Sleds<'_> {
        Sleds::new(&self.state.roster, self.state.roster.all())
    }

    /// Whether the rack is still on LRTQ (the next reconfiguration is the
    /// upgrade).
    pub fn is_on_lrtq(&self) -> bool {
        self.state.on_lrtq
    }

    /// Whether `id` may coordinate the next reconfiguration (if it is one
    /// of its members): a sled holding LRTQ data for the upgrade, a member
    /// of the latest commit after one, any member before.
    pub fn may_coordinate(&self, id: &PlatformId) -> bool {
        match self.state.roster.place_of(id) {
            Some(place) => self.state.may_coordinate().contains(place),
            None => !self.state.on_lrtq && self.state.latest.is_none(),
        }
    }

    /// The latest committed configuration.
    pub fn latest_config(&self) -> Option<&Configuration> {
        self.state.latest.as_ref()
    }

    /// The latest committed epoch.
    pub fn latest_committed(&self) -> Option<Committed<'_>> {
        self.state
            .history
            .back()
            .map(|&record| self.committed_view(record))
    }

    /// Every remembered commit, oldest first.
    pub fn history(&self) -> impl DoubleEndedIterator<Item = Committed<'_>> + '_ {
        self.state
            .history
            .iter()
            .map(|&record| self.committed_view(record))
    }

    /// Committed `epoch`, if Nexus committed it (and remembers it).
    pub fn committed(&self, epoch: Epoch) -> Option<Committed<'_>> {
        self.history().rev().find(|c| c.epoch() == epoch)
    }

    /// The members of committed `epoch`.
    pub fn committed_members(&self, epoch: Epoch) -> Option<Sleds<'_>> {
        self.committed(epoch).map(|c| c.members())
    }

    /// Whether `epoch` is older than what Nexus remembers.
    pub fn forgot_epoch(&self, epoch: Epoch) -> bool {
        self.state
            .forgotten_below
            .is_some_and(|below| epoch < below)
    }

    /// The highest remembered epoch `id` confirmed the commit of.
    pub fn counted_commit(&self, id: &PlatformId) -> Option<Epoch> {
        let place = self.state.roster.place_of(id)?;
        self.state
            .history
            .iter()
            .rev()
            .find(|c| c.confirmed.contains(place))
            .map(|c| c.epoch)
    }

    /// The highest epoch ever started (the next one is above it).
    pub fn highest_started(&self) -> Epoch {
        self.state.highest_started
    }

    /// The reconfiguration being driven.
    pub fn pending(&self) -> Option<PendingView<'_>> {
        self.state.pending.as_ref().map(|pending| PendingView {
            nexus: self,
            pending,
        })
    }

    /// Calls handed out and not answered yet.
    pub fn calls_in_flight(&self) -> usize {
        self.calls.len()
    }

    /// Counters.
    pub fn stats(&self) -> &NexusStats {
        &self.stats
    }

    fn committed_view(&self, record: CommitRecord) -> Committed<'_> {
        Committed {
            roster: &self.state.roster,
            record,
        }
    }
}
