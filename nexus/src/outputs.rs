//! The calls the machine wants made.

use tq_core::api::CommitRequest;
use tq_core::ids::PlatformId;

use crate::calls::{Call, CallId, CallKind, Method};
use crate::machine::{Nexus, Phase};
use crate::state::Request;
use crate::stats::bump;
use crate::time::Instant;

impl Nexus {
    /// The next call to make, if one is due at `now`: starting or polling
    /// the pending epoch's coordinator, then telling each member of the
    /// latest commit that has not confirmed it (`prepare_and_commit` to one
    /// that answered `NotPrepared`). At most one call per sled and purpose
    /// is in flight; a call is due again only after its answer. Nothing
    /// while a decision is not stored.
    pub fn poll_call(&mut self, now: Instant) -> Option<Call<'_>> {
        self.poll_call_where(now, |_, _| true)
    }

    /// [`Nexus::poll_call`], among the due calls `wanted` accepts (given
    /// the callee and the method): for a driver that picks the order of
    /// calls itself, as a deterministic test does. The others stay due.
    pub fn poll_call_where(
        &mut self,
        now: Instant,
        mut wanted: impl FnMut(&PlatformId, Method) -> bool,
    ) -> Option<Call<'_>> {
        if !self.is_stored() {
            return None;
        }
        let id = self
            .coordinator_call(now, &mut wanted)
            .or_else(|| self.member_call(now, &mut wanted))?;
        bump(&mut self.stats.calls);
        self.call(id)
    }

    /// The call `id`, while it is in flight (for a driver that makes it
    /// later than it polled it).
    pub fn call(&self, id: CallId) -> Option<Call<'_>> {
        let in_flight = self.calls.get(id)?;
        let to = self.state.roster.get(in_flight.to)?;
        let pending = self
            .state
            .pending
            .as_ref()
            .filter(|p| p.request.epoch() == in_flight.epoch);
        let kind = match (in_flight.method, pending.map(|p| &p.request)) {
            (Method::Reconfigure, Some(Request::Reconfigure(msg))) => CallKind::Reconfigure(msg),
            (Method::UpgradeFromLrtq, Some(Request::Upgrade(msg))) => {
                CallKind::UpgradeFromLrtq(msg)
            }
            (Method::CoordinatorStatus, _) => CallKind::CoordinatorStatus,
            (Method::Commit, _) => CallKind::Commit(CommitRequest {
                rack_id: self.state.rack_id,
                epoch: in_flight.epoch,
            }),
            (Method::PrepareAndCommit, _) => CallKind::PrepareAndCommit(
                self.state
                    .latest
                    .as_ref()
                    .filter(|c| c.epoch() == in_flight.epoch)?,
            ),
            _ => return None,
        };
        Some(Call { id, to, kind })
    }

    /// Starting or polling the coordinator, if due and wanted.
    fn coordinator_call(
        &mut self,
        now: Instant,
        wanted: &mut impl FnMut(&PlatformId, Method) -> bool,
    ) -> Option<CallId> {
        let pending = self.state.pending.as_ref()?;
        if self.calls.coordinator_busy() || now < self.progress.due {
            return None;
        }
        let method = match (self.progress.phase, &pending.request) {
            (Phase::Starting, Request::Upgrade(_)) => Method::UpgradeFromLrtq,
            (Phase::Starting, Request::Reconfigure(_)) => Method::Reconfigure,
            (Phase::Running, _) => Method::CoordinatorStatus,
            (Phase::Stuck(_), _) => return None,
        };
        let to = self.state.roster.get(pending.coordinator)?;
        if !wanted(to, method) {
            return None;
        }
        self.calls
            .add(pending.coordinator, method, pending.request.epoch())
    }

    /// Telling a member of the latest commit, if due and wanted.
    fn member_call(
        &mut self,
        now: Instant,
        wanted: &mut impl FnMut(&PlatformId, Method) -> bool,
    ) -> Option<CallId> {
        let latest = *self.state.history.back()?;
        for place in latest.members.minus(latest.confirmed).places() {
            let due = self.member_due.get(usize::from(place)).copied();
            if self.calls.member_busy(place) || due.is_none_or(|due| now < due) {
                continue;
            }
            let method = if self.needs_prepare.contains(place) {
                Method::PrepareAndCommit
            } else {
                Method::Commit
            };
            let Some(to) = self.state.roster.get(place) else {
                continue;
            };
            if !wanted(to, method) {
                continue;
            }
            if method == Method::PrepareAndCommit {
                bump(&mut self.stats.prepare_and_commits);
            }
            return self.calls.add(place, method, latest.epoch);
        }
        None
    }
}
