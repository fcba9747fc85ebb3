//! What the machine makes of each answer. Each case is the node's own
//! typed result (PROTOCOL.md section 6) read as Nexus must read it.

use tq_core::api::{CoordinatorStatusRef, acks_to_commit};
use tq_core::ids::Epoch;
use tq_core::member_set::MemberSubset;
use tq_core::node::{CommitError, CoordinatorPhase, LrtqUpgradeError, ReconfigureError};

use crate::calls::{Answer, CallId, InFlight};
use crate::errors::NodeRefusal;
use crate::machine::{Nexus, Phase, Progress, Stuck};
use crate::roster::SledSet;
use crate::state::Pending;
use crate::stats::bump;
use crate::time::Instant;

/// What the machine made of an answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reaction {
    /// Not the answer to a call in flight (answered already, or about an
    /// epoch abandoned since): ignored.
    Ignored,
    /// Nothing decided: the sled is unreachable or not ready (asked again
    /// later), a share collection goes on, a coordinator that lost its
    /// coordination in a crash is asked again, a member is handed the
    /// configuration it missed.
    Noted,
    /// The coordinator runs the pending epoch.
    Started,
    /// The coordinator can never run the pending epoch: it must be
    /// abandoned (at once, with automatic abandonment).
    Stuck,
    /// The pending epoch is committed: a decision to store before the next
    /// call; then every member is told.
    Committed(Epoch),
    /// A member confirmed the commit of this epoch (stored like a
    /// decision).
    Confirmed(Epoch),
    /// A node refused what Nexus had every right to ask (a broken sled, a
    /// lost state, or a bug): for an operator. A coordinator that refused
    /// is stuck, except for a failed RNG or an internal error, which are
    /// tried again later, as is a member that refused.
    Refused(NodeRefusal),
}

impl Nexus {
    /// Reports the answer to call `id`. Every call handed out is answered
    /// exactly once; [`Answer::Unreachable`] if none came within the
    /// caller's timeout.
    pub fn on_answer(&mut self, now: Instant, id: CallId, answer: Answer<'_>) -> Reaction {
        let Some(call) = self.calls.take(id) else {
            bump(&mut self.stats.ignored);
            return Reaction::Ignored;
        };
        let fits = answer.method().is_none_or(|m| m == call.method);
        let answer = if fits { answer } else { Answer::Unreachable };
        if matches!(answer, Answer::Unreachable) {
            bump(&mut self.stats.unreachable);
        }
        let reaction = if call.method.is_for_coordinator() {
            self.on_coordinator_answer(now, answer)
        } else {
            self.on_member_answer(now, call, answer)
        };
        let reaction = if fits {
            reaction
        } else {
            Reaction::Refused(NodeRefusal::WrongAnswer)
        };
        if matches!(reaction, Reaction::Refused(_)) {
            bump(&mut self.stats.refused);
        }
        reaction
    }

    /// A coordinator call in flight is always about the pending epoch:
    /// abandoning forgets it, and a commit ends with its answer.
    fn on_coordinator_answer(&mut self, now: Instant, answer: Answer<'_>) -> Reaction {
        let retry = now.after(self.timing.retry_interval);
        match answer {
            Answer::Unreachable => {
                self.progress.due = retry;
                Reaction::Noted
            }
            Answer::Reconfigure(Ok(_)) | Answer::UpgradeFromLrtq(Ok(())) => {
                self.progress.phase = Phase::Running;
                self.progress.due = now.after(self.timing.poll_interval);
                self.progress.last_progress = now;
                Reaction::Started
            }
            Answer::Reconfigure(Err(error)) => match error {
                ReconfigureError::EpochNotNewer { .. } => self.stuck(Stuck::EpochNotNewer, None),
                // Not ready yet: it has not learned the last commit (the
                // commit fan-out tells it), is still computing its share
                // of it, or is still on LRTQ.
                ReconfigureError::LastCommittedEpochMismatch { .. }
                | ReconfigureError::ComputingShare(_)
                | ReconfigureError::MustUpgradeFromLrtq
                | ReconfigureError::LrtqUpgradeInProgress(_) => {
                    self.progress.due = retry;
                    Reaction::Noted
                }
                // The same request again tries again.
                ReconfigureError::Rng(_) | ReconfigureError::Internal => {
                    self.progress.due = retry;
                    Reaction::Refused(NodeRefusal::Reconfigure(error))
                }
                _ => self.stuck(Stuck::Refused, Some(NodeRefusal::Reconfigure(error))),
            },
            Answer::UpgradeFromLrtq(Err(error)) => match error {
                LrtqUpgradeError::EpochNotNewer { .. } => self.stuck(Stuck::EpochNotNewer, None),
                _ => self.stuck(Stuck::Refused, Some(NodeRefusal::UpgradeFromLrtq(error))),
            },
            Answer::CoordinatorStatus(status) => self.on_status(now, status),
            // Member answers never reach here (`on_answer` checked).
            Answer::Commit(_) | Answer::PrepareAndCommit(_) => Reaction::Ignored,
        }
    }

    fn stuck(&mut self, why: Stuck, refusal: Option<NodeRefusal>) -> Reaction {
        self.progress.phase = Phase::Stuck(why);
        refusal.map_or(Reaction::Stuck, Reaction::Refused)
    }

    /// The coordinator's status: commits once `K + Z` members acked.
    fn on_status(&mut self, now: Instant, status: Option<CoordinatorStatusRef<'_>>) -> Reaction {
        self.progress.due = now.after(self.timing.poll_interval);
        let Some(pending) = self.state.pending.as_ref() else {
            return Reaction::Ignored;
        };
        let epoch = pending.request.epoch();
        let Some(status) = status.filter(|s| s.epoch == epoch) else {
            // It lost the coordination (a crash): ask again at once.
            self.progress.phase = Phase::Starting;
            self.progress.due = now;
            return Reaction::Noted;
        };
        let acked = self.acked_members(pending, status.acked);
        let seen = Some((status.phase, acked.len()));
        if self.progress.seen != seen {
            self.progress.seen = seen;
            self.progress.last_progress = now;
        }
        if status.phase != CoordinatorPhase::Preparing {
            return Reaction::Noted;
        }
        self.progress.acked = acked;
        let Some(config) = status.config.filter(|c| self.fits(pending, c)) else {
            return self.stuck(Stuck::Refused, Some(NodeRefusal::StatusMismatch(epoch)));
        };
        let needed = acks_to_commit(pending.members.len(), pending.request.threshold());
        if acked.len() < needed {
            return Reaction::Noted;
        }
        if self.state.on_lrtq {
            bump(&mut self.stats.upgrades);
        }
        self.state.record_commit(config, acked);
        bump(&mut self.stats.committed);
        self.progress = Progress::starting(now);
        self.member_due.fill(now);
        self.needs_prepare = SledSet::EMPTY;
        self.decided();
        Reaction::Committed(epoch)
    }

    /// The members of the pending request among `ids` (a coordinator
    /// counts only members; anyone else is ignored).
    fn acked_members(&self, pending: &Pending, ids: MemberSubset<'_>) -> SledSet {
        ids.iter()
            .filter_map(|id| self.state.roster.place_of(id))
            .filter(|&place| pending.members.contains(place))
            .fold(SledSet::EMPTY, SledSet::with)
    }

    /// Whether the coordinator's configuration is the one requested.
    fn fits(&self, pending: &Pending, config: &tq_core::config::Configuration) -> bool {
        let request = &pending.request;
        let wanted = request.members().as_slice();
        config.epoch() == request.epoch()
            && config.rack_id() == self.state.rack_id
            && config.threshold() == request.threshold()
            && self.state.roster.get(pending.coordinator) == Some(config.coordinator())
            && config.members().len() == wanted.len()
            && config
                .members()
                .iter()
                .zip(wanted)
                .all(|(member, id)| member.id == *id)
    }

    fn on_member_answer(&mut self, now: Instant, call: InFlight, answer: Answer<'_>) -> Reaction {
        let place = usize::from(call.to);
        let retry = now.after(self.timing.retry_interval);
        let is_latest = self.state.latest_committed_epoch() == Some(call.epoch);
        let (due, reaction) = match answer {
            Answer::Unreachable => (retry, Reaction::Noted),
            Answer::Commit(Ok(_)) => {
                let record = self
                    .state
                    .history
                    .iter_mut()
                    .find(|c| c.epoch == call.epoch);
                if let Some(record) = record {
                    record.confirmed = record.confirmed.with(call.to);
                    self.decided();
                }
                bump(&mut self.stats.member_commits);
                // If a newer epoch committed meanwhile, it is told at once.
                (now, Reaction::Confirmed(call.epoch))
            }
            Answer::Commit(Err(CommitError::NotPrepared(epoch))) if epoch == call.epoch => {
                if is_latest {
                    self.needs_prepare = self.needs_prepare.with(call.to);
                }
                (now, Reaction::Noted)
            }
            Answer::Commit(Err(error)) => (retry, Reaction::Refused(NodeRefusal::Commit(error))),
            // Asked to confirm after a while: it may be computing its share.
            Answer::PrepareAndCommit(Ok(_)) => {
                self.needs_prepare = self.needs_prepare.without(call.to);
                (retry, Reaction::Noted)
            }
            Answer::PrepareAndCommit(Err(error)) => {
                self.needs_prepare = self.needs_prepare.without(call.to);
                (
                    retry,
                    Reaction::Refused(NodeRefusal::PrepareAndCommit(error)),
                )
            }
            // Coordinator answers never reach here (`on_answer` checked).
            _ => (retry, Reaction::Ignored),
        };
        if let Some(slot) = self.member_due.get_mut(place) {
            *slot = due;
        }
        reaction
    }
}
