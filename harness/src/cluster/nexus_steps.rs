//! The cluster's Nexus steps: an action's numbers become commands to
//! Nexus's state machine (through [`crate::nexus::SimNexus`]), and the
//! calls it wants are made on the nodes through the cluster's call path
//! (the core's driving loop, and the probe for everything but status
//! reads), their answers handed back to it. A node refusing what Nexus had every right
//! to ask is a [`Violation`]; the configuration Nexus commits goes to the
//! checker (invariant 1).

use rand_chacha::ChaCha20Rng;
use tq_core::authority::{
    AnswerTag, CoordinatorStatusQuery, NexusCall, RequestAuth, RequestRefusal,
};
use tq_core::ids::Threshold;
use tq_core::node::{Node, NodeCtx};
use tq_nexus::{Answer, CallId, CallKind, Method, NodeRefusal, Reaction};

use super::Cluster;
use crate::MAX_SLEDS;
use crate::action::Change;
use crate::invariants::{NexusFault, Violation};
use crate::mask::{bit, mask_ids, mask_of, nth_bit};
use crate::nexus::SimNexus;
use crate::sled::index_of;

/// Most calls made for one Nexus action: a drain that goes on longer is
/// the machine looping ([`NexusFault::EndlessCalls`]).
const MAX_CALLS_PER_ACTION: usize = 4 * (1 + MAX_SLEDS);

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
        let everyone = mask_of(0..nexus.ids.len());
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

    /// Makes call `id` on sled `to` as Nexus makes it (authorized with the
    /// sled's key under a fresh nonce, shown to the recorder if one is
    /// set), and hands the answer to Nexus once its tag checks out. The
    /// probe, if any, runs the node's side only: the check of the request,
    /// the call, the answer's tag.
    fn nexus_call(&mut self, id: CallId, to: usize, method: Method) -> Result<(), Violation> {
        let now = self.nexus.now;
        let sled = u8::try_from(to).unwrap_or(u8::MAX);
        let nonce = self.nexus.nonce();
        let nexus = &self.nexus;
        let Some(auth) = nexus
            .machine
            .call(id)
            .and_then(|call| nexus.authorize_call(to, nonce, call.kind))
        else {
            return Err(Violation::Nexus(NexusFault::WrongAnswer));
        };
        if let (Some(record), Some(call)) = (nexus.recorder, nexus.machine.call(id)) {
            record(to, &auth, call.kind);
        }
        let answered = if method == Method::CoordinatorStatus {
            // Read-only, and its answer borrows the node: answered inside.
            self.call_for_nexus(to, None, |node, ctx, _, nexus| {
                let query =
                    ctx.verify_request(&auth, &CoordinatorStatusQuery)
                        .map_err(|refusal| {
                            Violation::Nexus(NexusFault::RequestRefused { sled, refusal })
                        })?;
                let status = node.coordinator_status(ctx, query);
                let tag = ctx.tag_answer(&query, &status);
                if !nexus.answer_is_authentic(
                    to,
                    NexusCall::CoordinatorStatus,
                    &auth,
                    &status,
                    tag.as_ref(),
                ) {
                    return Err(Violation::Nexus(NexusFault::AnswerUnauthenticated { sled }));
                }
                Ok(nexus
                    .machine
                    .on_answer(now, id, Answer::CoordinatorStatus(status)))
            })?
            .transpose()?
        } else {
            let ran = self.call_for_nexus(to, Some(method.name()), |node, ctx, rng, nexus| {
                let kind = nexus.machine.call(id)?.kind;
                Some(run_owned(node, ctx, rng, &auth, kind))
            })?;
            match ran.flatten() {
                None => None,
                Some(Err(refusal)) => {
                    return Err(Violation::Nexus(NexusFault::RequestRefused {
                        sled,
                        refusal,
                    }));
                }
                Some(Ok((answer, tag))) => {
                    if !answer_is_authentic(&self.nexus, to, &auth, &answer, tag.as_ref()) {
                        return Err(Violation::Nexus(NexusFault::AnswerUnauthenticated { sled }));
                    }
                    Some(self.nexus.machine.on_answer(now, id, answer))
                }
            }
        };
        // The sled is down (or the call was gone: answered the same way).
        let reaction =
            answered.unwrap_or_else(|| self.nexus.machine.on_answer(now, id, Answer::Unreachable));
        self.nexus.store();
        self.nexus_react(to, reaction)
    }

    /// Delivers a Nexus request as it arrives from anyone (a replay, a
    /// forgery): `call` with `auth` on sled `sled`, checked by the node's
    /// context and, if it passes, run; the answer goes nowhere (Nexus did
    /// not make this call). `Ok(None)`: the sled is down;
    /// `Ok(Some(Err(refusal)))`: the node refused it (and counted it).
    pub fn deliver_nexus_request(
        &mut self,
        sled: usize,
        auth: &RequestAuth,
        call: CallKind<'_>,
    ) -> Result<Option<Result<(), RequestRefusal>>, Violation> {
        let ran = self.call_for_nexus(sled, None, |node, ctx, rng, _| {
            run_owned(node, ctx, rng, auth, call).map(|_| ())
        })?;
        self.check()?;
        Ok(ran)
    }

    /// Shows every request Nexus makes from now on to `recorder`.
    pub fn set_request_recorder(&mut self, recorder: crate::nexus::RequestRecorder) {
        self.nexus.set_request_recorder(recorder);
    }

    /// A node refusing what Nexus had every right to ask is a violation;
    /// the configuration Nexus commits is checked against every other
    /// seen for its epoch (invariant 1).
    fn nexus_react(&mut self, to: usize, reaction: Reaction) -> Result<(), Violation> {
        let sled = u8::try_from(to).unwrap_or(u8::MAX);
        match reaction {
            Reaction::Refused(refusal) => Err(match refusal {
                NodeRefusal::Reconfigure(error) => Violation::ReconfigureRefused { sled, error },
                NodeRefusal::UpgradeFromLrtq(error) => {
                    Violation::LrtqUpgradeRefused { sled, error }
                }
                NodeRefusal::Commit(error) => Violation::CommitRefused { sled, error },
                NodeRefusal::PrepareAndCommit(error) => {
                    Violation::PrepareAndCommitRefused { sled, error }
                }
                NodeRefusal::StatusMismatch(epoch) => Violation::StatusMismatch { sled, epoch },
                NodeRefusal::WrongAnswer => Violation::Nexus(NexusFault::WrongAnswer),
            }),
            Reaction::Committed(epoch) => match self.nexus.machine.latest_config() {
                Some(config) => self.checker.nexus_committed(sled, epoch, config),
                None => Ok(()),
            },
            Reaction::Ignored
            | Reaction::Noted
            | Reaction::Started
            | Reaction::Stuck
            | Reaction::Confirmed(_) => Ok(()),
        }
    }
}

/// Runs `kind`, a call whose answer owns its data, on a node as it arrives
/// with `auth`: checked by the context, then the call, its answer tagged.
/// `CoordinatorStatus`, whose answer borrows the node, is not one.
pub(crate) fn run_owned(
    node: &mut Node,
    ctx: &mut NodeCtx,
    rng: &mut ChaCha20Rng,
    auth: &RequestAuth,
    kind: CallKind<'_>,
) -> Result<(Answer<'static>, Option<AnswerTag>), RequestRefusal> {
    Ok(match kind {
        CallKind::Reconfigure(msg) => {
            let msg = ctx.verify_request(auth, msg)?;
            let answer = node.coordinate_reconfiguration(ctx, rng, msg);
            let tag = ctx.tag_answer(&msg, &answer);
            (Answer::Reconfigure(answer), tag)
        }
        CallKind::UpgradeFromLrtq(msg) => {
            let msg = ctx.verify_request(auth, msg)?;
            let answer = node.coordinate_upgrade_from_lrtq(ctx, rng, msg);
            let tag = ctx.tag_answer(&msg, &answer);
            (Answer::UpgradeFromLrtq(answer), tag)
        }
        CallKind::Commit(request) => {
            let request = ctx.verify_request(auth, &request)?;
            let answer = node.commit_configuration(ctx, request);
            let tag = ctx.tag_answer(&request, &answer);
            (Answer::Commit(answer), tag)
        }
        CallKind::PrepareAndCommit(config) => {
            let config = ctx.verify_request(auth, config)?;
            let answer = node.prepare_and_commit(ctx, config);
            let tag = ctx.tag_answer(&config, &answer);
            (Answer::PrepareAndCommit(answer), tag)
        }
        // Checked, so that a forged status request is refused and counted
        // like any other; its answer is not owned, so none is made here.
        CallKind::CoordinatorStatus => {
            ctx.verify_request(auth, &CoordinatorStatusQuery)?;
            (Answer::Unreachable, None)
        }
    })
}

/// Whether `tag` is sled `to`'s tag of `answer` (an owned one, from
/// [`run_owned`]) to the call made with `auth`.
fn answer_is_authentic(
    nexus: &SimNexus,
    to: usize,
    auth: &RequestAuth,
    answer: &Answer<'_>,
    tag: Option<&AnswerTag>,
) -> bool {
    match answer {
        Answer::Reconfigure(a) => {
            nexus.answer_is_authentic(to, NexusCall::Reconfigure, auth, a, tag)
        }
        Answer::UpgradeFromLrtq(a) => {
            nexus.answer_is_authentic(to, NexusCall::UpgradeFromLrtq, auth, a, tag)
        }
        Answer::Commit(a) => nexus.answer_is_authentic(to, NexusCall::Commit, auth, a, tag),
        Answer::PrepareAndCommit(a) => {
            nexus.answer_is_authentic(to, NexusCall::PrepareAndCommit, auth, a, tag)
        }
        Answer::CoordinatorStatus(a) => {
            nexus.answer_is_authentic(to, NexusCall::CoordinatorStatus, auth, a, tag)
        }
        _ => false,
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
                Deliver(2),
                Deliver(2),
                Duplicate(2),
                Deliver(4),
                Drop(0),
                Deliver(21),
                Deliver(26),
                Deliver(29),
                Deliver(25),
                Disconnect(160, 231),
                LoadSecret { sled: 165, back: 0 },
                Drop(188),
                Deliver(2),
                Connect(0, 0),
                LoadSecret { sled: 0, back: 0 },
                Deliver(132),
                Deliver(114),
                Deliver(2),
                Deliver(2),
                Deliver(2),
                Deliver(2),
                Deliver(2),
                Deliver(2),
                Deliver(2),
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
