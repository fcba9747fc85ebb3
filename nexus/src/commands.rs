//! What Nexus is told to do, and what it does on its own when time passes:
//! start a reconfiguration, abandon the pending one.

use core::time::Duration;

use tq_core::api::{LrtqUpgradeMsg, ReconfigureMsg};
use tq_core::ids::{Epoch, PlatformId, Threshold};
use tq_core::limits::MAX_MEMBERS;
use tq_core::member_set::MemberSet;

use crate::errors::{AbandonError, StartError};
use crate::machine::{Nexus, Phase, Progress};
use crate::roster::{MAX_KNOWN_SLEDS, SledSet};
use crate::state::{Pending, Request};
use crate::stats::bump;
use crate::time::Instant;

/// What [`Nexus::handle_timeout`] did when automatic abandonment was due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimedOut {
    /// The pending epoch was abandoned for the next coordinator.
    Abandoned(Abandoned),
    /// The pending epoch was kept: no member that may coordinate it is
    /// one the caller reaches (its coordinator included), so a restart
    /// would be stuck for certain. Counted
    /// ([`crate::NexusStats::abandon_held`]); due again
    /// [`crate::Timing::abandon_after`] later, when routes may have
    /// changed.
    Held {
        /// The epoch kept pending.
        epoch: Epoch,
    },
}

/// An epoch abandoned on its own ([`TimedOut::Abandoned`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Abandoned {
    /// The epoch given up.
    pub epoch: Epoch,
    /// The epoch started in its place, with the next coordinator.
    pub next: Epoch,
}

impl Nexus {
    /// Starts a reconfiguration to `members` with threshold `threshold`,
    /// coordinated by `coordinator`: the LRTQ upgrade while the rack is on
    /// LRTQ, else a reconfiguration after the latest commit (or a fresh
    /// rack's first). Returns its epoch, the next one never used.
    ///
    /// One at a time: refused while one is pending. A removed sled is never
    /// added back. The coordinator must be a member, and hold LRTQ data for
    /// the upgrade, or be a member of the latest commit after one.
    pub fn start<'a>(
        &mut self,
        now: Instant,
        members: impl IntoIterator<Item = &'a PlatformId>,
        threshold: Threshold,
        coordinator: &PlatformId,
    ) -> Result<Epoch, StartError> {
        if let Some(pending) = &self.state.pending {
            return Err(StartError::Pending(pending.request.epoch()));
        }
        let epoch = self.next_epoch().ok_or(StartError::EpochsExhausted)?;
        let rack_id = self.state.rack_id;
        // The request is built in its slot, so the member set is never
        // copied; the slot is emptied again if the request is refused.
        let request = if self.state.on_lrtq {
            Request::Upgrade(LrtqUpgradeMsg {
                rack_id,
                epoch,
                members: MemberSet::new_empty(),
                threshold,
            })
        } else {
            Request::Reconfigure(ReconfigureMsg {
                rack_id,
                epoch,
                last_committed_epoch: self.state.latest_committed_epoch(),
                members: MemberSet::new_empty(),
                threshold,
            })
        };
        let pending = self.state.pending.insert(Pending {
            request,
            coordinator: 0,
            members: SledSet::EMPTY,
        });
        let mut filled = Ok(());
        for id in members {
            if pending.request.members_mut().insert(id) != Ok(true) {
                filled = Err(StartError::Members);
                break;
            }
        }
        let checked = filled.and_then(|()| self.check_start(coordinator));
        let (coordinator, members) = match checked {
            Ok(places) => places,
            Err(error) => {
                self.state.pending = None;
                return Err(error);
            }
        };
        let current = self.state.members;
        let Some(pending) = self.state.pending.as_mut() else {
            return Err(StartError::Members);
        };
        pending.coordinator = coordinator;
        pending.members = members;
        self.state.highest_started = epoch;
        for _ in 0..members.minus(current).len() {
            bump(&mut self.stats.additions);
        }
        for _ in 0..current.minus(members).len() {
            bump(&mut self.stats.removals);
        }
        bump(&mut self.stats.started);
        self.progress = Progress::starting(now);
        self.decided();
        Ok(epoch)
    }

    /// Checks the request just put in the pending slot, and gives every
    /// new member a place: the coordinator's place and the member set.
    fn check_start(&mut self, coordinator: &PlatformId) -> Result<(u8, SledSet), StartError> {
        let Some(pending) = &self.state.pending else {
            return Err(StartError::Members);
        };
        let request = &pending.request;
        let ids = request.members().as_slice();
        let threshold = request.threshold();
        if !threshold.fits_member_count(ids.len()) {
            return Err(StartError::Threshold {
                threshold,
                members: ids.len(),
            });
        }
        let roster = &self.state.roster;
        let mut new = 0;
        for id in ids {
            match roster.place_of(id) {
                Some(place) if self.state.removed.contains(place) => {
                    return Err(StartError::Removed(id.clone()));
                }
                Some(_) => {}
                None => new += 1,
            }
        }
        if roster.len() + new > MAX_KNOWN_SLEDS {
            return Err(StartError::RosterFull);
        }
        if !request.members().contains(coordinator) || !self.may_coordinate(coordinator) {
            return Err(StartError::Coordinator(coordinator.clone()));
        }
        // Every member gets a place (there is room, checked above).
        let mut set = SledSet::EMPTY;
        for i in 0..MAX_MEMBERS {
            let Some(id) = self
                .state
                .pending
                .as_ref()
                .and_then(|p| p.request.members().as_slice().get(i))
            else {
                break;
            };
            let place = self.state.roster.place_or_add(id);
            set = set.with(place.ok_or(StartError::RosterFull)?);
        }
        let place = self.state.roster.place_of(coordinator);
        Ok((place.ok_or(StartError::RosterFull)?, set))
    }

    /// Abandons the pending epoch now and starts the same change at the
    /// next epoch, coordinated by `coordinator` (another one, where there
    /// is one: the same sled may well be stuck again). Returns the new
    /// epoch. Answers to calls about the abandoned epoch are ignored from
    /// here on, so it is never committed.
    pub fn abandon(
        &mut self,
        now: Instant,
        coordinator: &PlatformId,
    ) -> Result<Epoch, AbandonError> {
        let Some(pending) = &self.state.pending else {
            return Err(AbandonError::NothingPending);
        };
        let place = self
            .state
            .roster
            .place_of(coordinator)
            .filter(|&p| pending.members.contains(p) && self.state.may_coordinate().contains(p))
            .ok_or_else(|| AbandonError::Coordinator(coordinator.clone()))?;
        let epoch = self.next_epoch().ok_or(AbandonError::EpochsExhausted)?;
        let Some(pending) = self.state.pending.as_mut() else {
            return Err(AbandonError::NothingPending);
        };
        pending.request.set_epoch(epoch);
        pending.coordinator = place;
        self.state.highest_started = epoch;
        self.calls.forget_coordinator_call();
        self.progress = Progress::starting(now);
        bump(&mut self.stats.abandoned);
        bump(&mut self.stats.started);
        self.decided();
        Ok(epoch)
    }

    /// Lets time pass: with automatic abandonment ([`crate::Timing`]),
    /// abandons the pending epoch whose coordinator can never run it, or
    /// made no progress for too long, and starts it again with
    /// [`Nexus::next_coordinator`] under `reachable`. Call it whenever
    /// [`Nexus::poll_timeout`] has passed (calling it more often is
    /// harmless). `None` when nothing was due.
    ///
    /// `reachable` says which sleds the caller can make coordinator calls
    /// on (the host driver: those it has a direct route to, as those calls
    /// are never passed through a proxy). A coordinator the caller cannot
    /// reach could never run the epoch, so it is never picked; when no
    /// member may be picked, the epoch is kept ([`TimedOut::Held`]).
    pub fn handle_timeout(
        &mut self,
        now: Instant,
        reachable: impl Fn(&PlatformId) -> bool,
    ) -> Option<TimedOut> {
        let after = self.timing.abandon_after?;
        let pending = self.state.pending.as_ref()?;
        if now < self.abandon_due(after) {
            return None;
        }
        let old = pending.request.epoch();
        let Some(coordinator) = self.next_coordinator(reachable).cloned() else {
            self.progress.abandon_held_until = now.after(after);
            bump(&mut self.stats.abandon_held);
            return Some(TimedOut::Held { epoch: old });
        };
        let epoch = self.abandon(now, &coordinator).ok()?;
        bump(&mut self.stats.abandoned_automatically);
        Some(TimedOut::Abandoned(Abandoned {
            epoch: old,
            next: epoch,
        }))
    }

    /// When automatic abandonment of the pending epoch is due: at once for
    /// a stuck coordinator, else `after` from its last progress; never
    /// before a held abandonment is due again.
    fn abandon_due(&self, after: Duration) -> Instant {
        let due = match self.progress.phase {
            Phase::Stuck(_) => self.progress.last_progress,
            _ => self.progress.last_progress.after(after),
        };
        due.max(self.progress.abandon_held_until)
    }

    /// When [`Nexus::handle_timeout`] or [`Nexus::poll_call`] next has
    /// something to do, if nothing else happens first (`None`: only an
    /// answer or a command changes anything).
    pub fn poll_timeout(&self) -> Option<Instant> {
        let mut earliest: Option<Instant> = None;
        let mut consider = |at: Instant| {
            earliest = Some(earliest.map_or(at, |e| e.min(at)));
        };
        if self.state.pending.is_some() {
            let stuck = matches!(self.progress.phase, Phase::Stuck(_));
            if !stuck && !self.calls.coordinator_busy() {
                consider(self.progress.due);
            }
            if let Some(after) = self.timing.abandon_after {
                consider(self.abandon_due(after));
            }
        }
        if let Some(latest) = self.state.history.back() {
            for place in latest.members.minus(latest.confirmed).places() {
                if !self.calls.member_busy(place)
                    && let Some(&due) = self.member_due.get(usize::from(place))
                {
                    consider(due);
                }
            }
        }
        earliest
    }

    fn next_epoch(&self) -> Option<Epoch> {
        self.state.highest_started.0.checked_add(1).map(Epoch)
    }

    /// The coordinator [`Nexus::handle_timeout`] would restart the pending
    /// epoch with: of its members that may coordinate it and that
    /// `reachable` accepts, the first after the current coordinator in
    /// `PlatformId` order (wrapping; the current one if it is the only
    /// one). `None` if nothing is pending or no such member is left.
    ///
    /// An operator's abandon without a named coordinator picks with it
    /// too, so both follow one order.
    pub fn next_coordinator(&self, reachable: impl Fn(&PlatformId) -> bool) -> Option<&PlatformId> {
        let pending = self.state.pending.as_ref()?;
        let roster = &self.state.roster;
        let current = roster.get(pending.coordinator)?;
        // Those after the current one sort first (`false`), each group by
        // id: the minimum is the next one, wrapping.
        pending
            .members
            .intersection(self.state.may_coordinate())
            .places()
            .filter_map(|place| roster.get(place))
            .filter(|id| reachable(id))
            .min_by_key(|&id| (id <= current, id))
    }
}
