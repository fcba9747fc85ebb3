//! Nexus in the simulated rack: [`tq_nexus::Nexus`], the state machine the
//! host's Nexus driver runs too (PROTOCOL.md section 7), driven by the
//! harness's actions.
//!
//! This module only translates. An action's numbers pick sleds (sled `i`
//! is [`crate::sled::platform_id`]`(i)`, so sled order is `PlatformId`
//! order) and become the machine's commands; the machine's calls are made
//! on the nodes through the cluster's call path (the core's driving loop,
//! and the probe for everything but status reads), and their answers go
//! back to it; a node refusing what Nexus had every right to ask is a
//! [`Violation`]. What Nexus knows is read back as sled masks for the
//! checker and the liveness check.
//!
//! Time: the clock moves one [`STEP`] per Nexus action (and per round of
//! the liveness check), and every interval of [`timing`] is one step, so
//! every call Nexus wants is due at every Nexus action, as it was for the
//! model this replaced. A coordinator that can never run its epoch, or
//! whose status does not move for [`ABANDON_AFTER_STEPS`] steps, is
//! abandoned by the machine on its own.

use core::time::Duration;

use tq_core::config::Configuration;
use tq_core::ids::{Epoch, PlatformId, RackId, Threshold};
use tq_nexus::{
    AbandonError, Answer, CallId, CallKind, Instant, Method, Origin, Phase, Reaction, Refusal,
    Sleds, StartError, Timing,
};

use crate::action::Change;
use crate::cluster::{Cluster, index_of, mask_ids, nth_bit};
use crate::invariants::{SetupError, Violation};
use crate::network::bit;
use crate::records::Seen;
use crate::{MAX_SLEDS, SledMask};

pub use tq_nexus::{MAX_HISTORY, Stats as NexusStats};

/// How far the clock moves per Nexus action.
pub const STEP: Duration = Duration::from_secs(1);

/// Steps without progress after which Nexus abandons a coordination.
pub const ABANDON_AFTER_STEPS: u32 = 8;

/// The machine's timing in the harness: every interval one [`STEP`].
pub fn timing() -> Timing {
    Timing {
        poll_interval: STEP,
        retry_interval: STEP,
        abandon_after: Some(STEP * ABANDON_AFTER_STEPS),
    }
}

/// Most calls made for one Nexus action: a drain that goes on longer is
/// the machine looping ([`NexusFault::EndlessCalls`]).
const MAX_CALLS_PER_ACTION: usize = 4 * (1 + MAX_SLEDS);

/// One epoch Nexus committed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CommittedEpoch {
    /// The epoch.
    pub epoch: Epoch,
    /// Its members.
    pub members: SledMask,
    /// The members whose acks Nexus committed on.
    pub acked: SledMask,
}

/// The reconfiguration Nexus is driving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Its epoch.
    pub epoch: Epoch,
    /// The coordinator's sled index.
    pub coordinator: Option<usize>,
    /// Members.
    pub members: SledMask,
    /// `K`.
    pub threshold: Threshold,
    /// Where it stands.
    pub phase: Phase,
}

/// Nexus doing what it must not: refusing a command the harness checked,
/// or handing out calls without end.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NexusFault {
    /// A start the harness built from Nexus's own sets was refused.
    StartRefused(StartError),
    /// An abandon the harness built from Nexus's own sets was refused.
    AbandonRefused(AbandonError),
    /// An answer did not fit its call.
    WrongAnswer,
    /// One action drained more than `MAX_CALLS_PER_ACTION` calls.
    EndlessCalls,
}

/// Nexus, its clock, and the sled ids to map its answers back to indices.
#[derive(Debug)]
#[cfg_attr(feature = "model", derive(Clone))]
pub struct Nexus {
    machine: tq_nexus::Nexus,
    ids: heapless::Vec<PlatformId, MAX_SLEDS>,
    now: Instant,
}

impl Nexus {
    /// Nexus for a rack whose first `members` sleds of `ids` are its
    /// members (the LRTQ sleds if `lrtq`).
    pub(crate) fn new(
        rack_id: RackId,
        ids: &[PlatformId],
        members: usize,
        lrtq: bool,
    ) -> Result<Self, Violation> {
        let origin = if lrtq { Origin::Lrtq } else { Origin::Fresh };
        let initial = ids
            .get(..members)
            .ok_or(Violation::Setup(SetupError::Sizes))?;
        let now = Instant::from_millis(0);
        let machine = tq_nexus::Nexus::new(rack_id, origin, initial, timing(), now)
            .map_err(|_| Violation::Setup(SetupError::Sizes))?;
        let ids =
            heapless::Vec::from_slice(ids).map_err(|_| Violation::Setup(SetupError::Sizes))?;
        let mut nexus = Self { machine, ids, now };
        nexus.store();
        Ok(nexus)
    }

    /// The state machine, for everything the masks below do not say.
    pub fn machine(&self) -> &tq_nexus::Nexus {
        &self.machine
    }

    /// Nexus's clock.
    pub fn now(&self) -> Instant {
        self.now
    }

    /// Moves the clock one step; the machine abandons on its own if due.
    pub(crate) fn tick(&mut self) {
        self.now = self.now.after(STEP);
        self.machine.handle_timeout(self.now);
        self.store();
    }

    /// Stores every decision at once: this Nexus never crashes (its
    /// restore is tested in `tq-nexus`).
    fn store(&mut self) {
        if let Some(to_store) = self.machine.state_to_store() {
            let revision = to_store.revision;
            self.machine.acknowledge_stored(revision);
        }
    }

    fn mask(&self, sleds: Sleds<'_>) -> SledMask {
        sleds
            .iter()
            .filter_map(|id| index_of(&self.ids, id))
            .fold(0, |mask, i| mask | bit(i))
    }

    /// The sleds that may coordinate the next reconfiguration, were they
    /// among its members.
    fn may_coordinate(&self) -> SledMask {
        self.ids
            .iter()
            .enumerate()
            .filter(|(_, id)| self.machine.may_coordinate(id))
            .fold(0, |mask, (i, _)| mask | bit(i))
    }

    fn committed_epoch(&self, committed: tq_nexus::Committed<'_>) -> CommittedEpoch {
        CommittedEpoch {
            epoch: committed.epoch(),
            members: self.mask(committed.members()),
            acked: self.mask(committed.acked()),
        }
    }

    /// The reconfiguration being driven, if any.
    pub fn pending(&self) -> Option<Pending> {
        let pending = self.machine.pending()?;
        Some(Pending {
            epoch: pending.epoch(),
            coordinator: pending.coordinator().and_then(|id| index_of(&self.ids, id)),
            members: self.mask(pending.members()),
            threshold: pending.threshold(),
            phase: pending.phase(),
        })
    }

    /// The latest committed configuration.
    pub fn latest_config(&self) -> Option<&Configuration> {
        self.machine.latest_config()
    }

    /// The latest committed epoch, with members and acks.
    pub fn latest_committed(&self) -> Option<CommittedEpoch> {
        let latest = self.machine.latest_committed()?;
        Some(self.committed_epoch(latest))
    }

    /// Every remembered commit, oldest first.
    pub fn history(&self) -> impl Iterator<Item = CommittedEpoch> + '_ {
        self.machine.history().map(|c| self.committed_epoch(c))
    }

    /// The current members.
    pub fn members(&self) -> SledMask {
        self.mask(self.machine.members())
    }

    /// Members of the latest configuration that confirmed the commit.
    pub fn commit_confirmed(&self) -> SledMask {
        self.machine
            .latest_committed()
            .map_or(0, |c| self.mask(c.confirmed()))
    }

    /// Whether the rack is still on LRTQ.
    pub fn on_lrtq(&self) -> bool {
        self.machine.is_on_lrtq()
    }

    /// Counters.
    pub fn stats(&self) -> &NexusStats {
        self.machine.stats()
    }

    /// Members of committed `epoch`, if Nexus committed it (and remembers).
    pub fn committed_members(&self, epoch: Epoch) -> Option<SledMask> {
        self.machine
            .committed_members(epoch)
            .map(|members| self.mask(members))
    }

    /// Whether Nexus committed `epoch` (and remembers it).
    pub fn is_committed(&self, epoch: Epoch) -> bool {
        self.machine.committed(epoch).is_some()
    }

    /// Whether `epoch` is older than what Nexus still remembers.
    pub fn forgot_epoch(&self, epoch: Epoch) -> bool {
        self.machine.forgot_epoch(epoch)
    }

    /// The highest epoch Nexus counted sled `index` as committed at.
    pub fn counted_commit(&self, index: usize) -> Option<Epoch> {
        self.machine.counted_commit(self.ids.get(index)?)
    }

    /// The committed epoch `back` commits before the latest (modulo the
    /// number remembered).
    pub fn committed_epoch_back(&self, back: u8) -> Option<Epoch> {
        let len = self.machine.history().count();
        if len == 0 {
            return None;
        }
        let back = usize::from(back) % len;
        self.machine.history().rev().nth(back).map(|c| c.epoch())
    }
}

impl<const SLEDS: usize> Cluster<SLEDS> {
    /// Nexus starts a reconfiguration (the LRTQ upgrade on an LRTQ rack)
    /// and asks its coordinator at once. Does nothing while one is
    /// pending, or when no threshold or coordinator fits.
    pub fn nexus_start(
        &mut self,
        change: Change,
        coordinator: u8,
        threshold: u8,
    ) -> Result<(), Violation> {
        let nexus = &self.nexus;
        if nexus.machine.pending().is_some() {
            return Ok(());
        }
        let current = nexus.members();
        let everyone = (0..nexus.ids.len()).fold(0, |mask, i| mask | bit(i));
        let removed = nexus.mask(nexus.machine.removed());
        let may_coordinate = nexus.may_coordinate();
        let members = match change {
            Change::Add(n) => match nth_bit(everyone & !current & !removed, usize::from(n)) {
                Some(added) => current | bit(added),
                None => current,
            },
            Change::Remove(n) => match nth_bit(current, usize::from(n)) {
                Some(gone) if current.count_ones() as usize > tq_core::limits::MIN_MEMBERS => {
                    let next = current & !bit(gone);
                    // The coordinator must come from the remaining members
                    // (and hold LRTQ data for the upgrade).
                    if next & may_coordinate == 0 {
                        current
                    } else {
                        next
                    }
                }
                _ => current,
            },
            Change::Same => current,
        };
        let n = members.count_ones() as usize;
        let k = 2 + usize::from(threshold) % n.saturating_sub(2).max(1);
        let Some(threshold) = u8::try_from(k).ok().and_then(|k| Threshold::new(k).ok()) else {
            return Ok(());
        };
        let Some(coordinator) = nth_bit(members & may_coordinate, usize::from(coordinator)) else {
            return Ok(());
        };
        let nexus = &mut self.nexus;
        let Some(coordinator) = nexus.ids.get(coordinator) else {
            return Ok(());
        };
        nexus
            .machine
            .start(
                nexus.now,
                mask_ids(&nexus.ids, members),
                threshold,
                coordinator,
            )
            .map_err(|e| Violation::Nexus(NexusFault::StartRefused(e)))?;
        nexus.store();
        self.nexus_poll()
    }

    /// Nexus gives up the pending epoch and starts the same change at a
    /// higher epoch with another coordinator (the `n`-th eligible one
    /// other than the current), and asks it at once. Does nothing without
    /// a pending epoch.
    pub fn nexus_abandon(&mut self, n: u8) -> Result<(), Violation> {
        let nexus = &mut self.nexus;
        let Some(pending) = nexus.pending() else {
            return Ok(());
        };
        let eligible = pending.members & nexus.may_coordinate();
        let others = eligible & !pending.coordinator.map_or(0, bit);
        let pool = if others == 0 { eligible } else { others };
        let Some(coordinator) = nth_bit(pool, usize::from(n)).and_then(|i| nexus.ids.get(i)) else {
            return Ok(());
        };
        nexus
            .machine
            .abandon(nexus.now, coordinator)
            .map_err(|e| Violation::Nexus(NexusFault::AbandonRefused(e)))?;
        nexus.store();
        self.nexus_poll()
    }

    /// Nexus makes its due calls to the pending epoch's coordinator:
    /// starting it (again, if it lost it), or polling its status and
    /// committing once `K + Z` members acked.
    pub fn nexus_poll(&mut self) -> Result<(), Violation> {
        self.nexus_calls(|_, method| method.is_for_coordinator())
    }

    /// Nexus tells the `n`-th member of the latest configuration that has
    /// not confirmed the commit to commit, and hands it the configuration
    /// if it did not prepare.
    pub fn nexus_commit(&mut self, n: u8) -> Result<(), Violation> {
        let waiting = self
            .nexus
            .latest_committed()
            .map_or(0, |latest| latest.members & !self.nexus.commit_confirmed());
        match nth_bit(waiting, usize::from(n)) {
            Some(member) => self.nexus_commit_member(member),
            None => Ok(()),
        }
    }

    /// Nexus makes its due calls to `member` about the latest commit:
    /// `commit_configuration`, then `prepare_and_commit` if it answers
    /// `NotPrepared`.
    pub(crate) fn nexus_commit_member(&mut self, member: usize) -> Result<(), Violation> {
        self.nexus_calls(|sled, method| sled == member && !method.is_for_coordinator())
    }

    /// Makes every due call `wanted` accepts (given the callee's index and
    /// the method), one at a time, until none is left.
    fn nexus_calls(
        &mut self,
        mut wanted: impl FnMut(usize, Method) -> bool,
    ) -> Result<(), Violation> {
        for _ in 0..MAX_CALLS_PER_ACTION {
            let nexus = &mut self.nexus;
            let ids = &nexus.ids;
            let call = nexus.machine.poll_call_where(nexus.now, |to, method| {
                index_of(ids, to).is_some_and(|i| wanted(i, method))
            });
            let Some((id, to, method)) =
                call.and_then(|c| Some((c.id, index_of(ids, c.to)?, c.kind.method())))
            else {
                return Ok(());
            };
            self.nexus_call(id, to, method)?;
        }
        Err(Violation::Nexus(NexusFault::EndlessCalls))
    }

    /// Makes call `id` on sled `to` and hands the answer to Nexus.
    fn nexus_call(&mut self, id: CallId, to: usize, method: Method) -> Result<(), Violation> {
        let now = self.nexus.now;
        let answered = if method == Method::CoordinatorStatus {
            // Read-only, and its answer borrows the node: answered inside.
            self.call_for_nexus(to, None, |node, ctx, _, nexus| {
                let status = node.coordinator_status(ctx);
                nexus
                    .machine
                    .on_answer(now, id, Answer::CoordinatorStatus(status))
            })?
        } else {
            self.call_for_nexus(to, Some(method.name()), |node, ctx, rng, nexus| {
                let answer: Answer<'static> = match nexus.machine.call(id)?.kind {
                    CallKind::Reconfigure(msg) => {
                        Answer::Reconfigure(node.coordinate_reconfiguration(ctx, rng, msg))
                    }
                    CallKind::UpgradeFromLrtq(msg) => {
                        Answer::UpgradeFromLrtq(node.coordinate_upgrade_from_lrtq(ctx, rng, msg))
                    }
                    CallKind::Commit(request) => {
                        Answer::Commit(node.commit_configuration(ctx, &request))
                    }
                    CallKind::PrepareAndCommit(config) => {
                        Answer::PrepareAndCommit(node.prepare_and_commit(ctx, config))
                    }
                    CallKind::CoordinatorStatus => return None,
                };
                Some(answer)
            })?
            .flatten()
            .map(|answer| self.nexus.machine.on_answer(now, id, answer))
        };
        // The sled is down (or the call was gone: answered the same way).
        let reaction =
            answered.unwrap_or_else(|| self.nexus.machine.on_answer(now, id, Answer::Unreachable));
        self.nexus.store();
        self.nexus_react(to, reaction)
    }

    /// A node refusing what Nexus had every right to ask is a violation;
    /// the configuration Nexus commits is checked against every other
    /// seen for its epoch (invariant 1).
    fn nexus_react(&mut self, to: usize, reaction: Reaction) -> Result<(), Violation> {
        let sled = u8::try_from(to).unwrap_or(u8::MAX);
        match reaction {
            Reaction::Refused(refusal) => Err(match refusal {
                Refusal::Reconfigure(error) => Violation::ReconfigureRefused { sled, error },
                Refusal::UpgradeFromLrtq(error) => Violation::LrtqUpgradeRefused { sled, error },
                Refusal::Commit(error) => Violation::CommitRefused { sled, error },
                Refusal::PrepareAndCommit(error) => {
                    Violation::PrepareAndCommitRefused { sled, error }
                }
                Refusal::StatusMismatch(epoch) => Violation::StatusMismatch { sled, epoch },
                Refusal::WrongAnswer => Violation::Nexus(NexusFault::WrongAnswer),
            }),
            Reaction::Committed(epoch) => {
                let Some(config) = self.nexus.machine.latest_config() else {
                    return Ok(());
                };
                let seen = self
                    .configs
                    .observe(config)
                    .map_err(|error| Violation::Encoding { sled, error })?;
                if seen == Seen::Different {
                    return Err(Violation::MismatchedConfigurations { sled: None, epoch });
                }
                Ok(())
            }
            Reaction::Ignored
            | Reaction::Noted
            | Reaction::Started
            | Reaction::Stuck
            | Reaction::Confirmed(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use tq_test_fixtures::{RACK, with_big_stack};

    use crate::action::Action::*;
    use crate::action::Change;
    use crate::{Cluster, RackStart};

    /// Found by the property test: epoch 4's coordinator asked a member for
    /// its share of epoch 2 while that member had not learned epoch 2 yet
    /// (the request was lost), and re-asks only on a reconnection, which the
    /// liveness check's rounds do not make. Nexus must give up such a
    /// coordination on its own and start the change with the next
    /// coordinator.
    #[test]
    fn a_coordinator_that_stops_moving_is_abandoned_and_the_rack_stays_live() {
        with_big_stack(|| {
            let mut cluster: Cluster =
                Cluster::new(9886597241937573282, RACK, 6, 6, RackStart::Fresh)?;
            for action in [
                Reconfigure {
                    change: Change::Remove(14),
                    coordinator: 0,
                    threshold: 0,
                },
                DeliverAll,
                NexusPoll,
                NexusCommit(239),
                Reconfigure {
                    change: Change::Remove(198),
                    coordinator: 235,
                    threshold: 73,
                },
                Disconnect(139, 183),
                Deliver(0),
                Deliver(0),
                Duplicate(2),
                Deliver(2),
                Drop(0),
                Deliver(19),
                Deliver(24),
                Deliver(27),
                Deliver(23),
                Disconnect(160, 231),
                LoadSecret { sled: 165, back: 0 },
                Drop(188),
                Deliver(0),
                Connect(0, 0),
                LoadSecret { sled: 0, back: 0 },
                Deliver(130),
                Deliver(112),
                Deliver(0),
                Deliver(0),
                Deliver(0),
                Deliver(0),
                Deliver(0),
                Deliver(0),
                Deliver(0),
                NexusPoll,
                Reconfigure {
                    change: Change::Remove(187),
                    coordinator: 1,
                    threshold: 0,
                },
                Restart(0),
                NexusCommit(58),
                Disconnect(84, 29),
                NexusCommit(120),
                NexusAbandon(104),
            ] {
                cluster.apply(&action)?;
            }
            let stuck = cluster.nexus().pending().map(|p| p.epoch);
            cluster.check_liveness()?;
            let stats = cluster.nexus().stats();
            assert!(stats.abandoned_automatically >= 1);
            assert!(cluster.nexus().latest_committed().map(|c| c.epoch) > stuck);
            Ok::<_, crate::Violation>(())
        })
        .unwrap();
    }
}
