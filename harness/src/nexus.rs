//! A model of Nexus, the control plane (PROTOCOL.md section 7).
//!
//! Nexus decides every configuration (epoch, members, threshold,
//! coordinator), asks the coordinator to run it, polls the coordinator's
//! status, and commits once at least `K + Z` members acked; then it tells
//! every member to commit, handing the configuration to those that answer
//! `NotPrepared`. It never blocks on a node. It may abandon a pending epoch
//! and start a higher one with another coordinator, and it never commits an
//! epoch after starting a newer one. A sled it removed is never added back
//! (it would have to be wiped first).

use tq_core::api::{CommitRequest, LrtqUpgradeMsg, ReconfigureMsg};
use tq_core::config::Configuration;
use tq_core::ids::{Epoch, Threshold};
use tq_core::member_set::MemberSet;
use tq_core::node::{CommitError, CoordinatorPhase, LrtqUpgradeError, ReconfigureError};

use crate::action::Change;
use crate::cluster::{Cluster, index_of, mask_ids, nth_bit};
use crate::invariants::Violation;
use crate::network::bit;
use crate::records::Seen;
use crate::{MAX_SLEDS, SledMask};

/// Most committed epochs Nexus remembers; past this the oldest is
/// forgotten (and the checker no longer judges sleds against it).
pub const MAX_HISTORY: usize = 64;

/// Crash tolerance `Z` for a configuration with `spare = members - K`.
pub const fn crash_tolerance(spare: usize) -> usize {
    match spare {
        0..=1 => 0,
        2..=4 => 1,
        5..=7 => 2,
        _ => 3,
    }
}

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

/// Where the pending reconfiguration stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PendingState {
    /// The coordinator has not accepted it yet (down, or not ready).
    NotStarted,
    /// The coordinator is running it.
    Running,
    /// The coordinator refused it as not newer (it crashed after storing
    /// it): only abandoning helps.
    Stale,
}

/// The reconfiguration Nexus is driving.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pending {
    /// Its epoch.
    pub epoch: Epoch,
    /// The coordinator's sled index.
    pub coordinator: usize,
    /// Members.
    pub members: SledMask,
    /// `K`.
    pub threshold: Threshold,
    /// Whether this is the LRTQ upgrade.
    pub upgrade: bool,
    /// The epoch committed last, as Nexus tells the coordinator.
    pub last_committed: Option<Epoch>,
    /// Where it stands.
    pub state: PendingState,
}

/// What Nexus did, for coverage reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NexusStats {
    /// Reconfigurations started (abandon restarts included).
    pub started: u32,
    /// Epochs committed.
    pub committed: u32,
    /// Pending epochs abandoned.
    pub abandoned: u32,
    /// LRTQ upgrades committed.
    pub upgrades: u32,
    /// Commits confirmed by members.
    pub member_commits: u32,
    /// `prepare_and_commit` calls.
    pub prepare_and_commits: u32,
    /// Sleds removed from the membership.
    pub removals: u32,
    /// Sleds added to the membership.
    pub additions: u32,
}

/// The Nexus model's state.
#[derive(Debug)]
pub struct Nexus {
    sled_count: usize,
    /// Sleds holding LRTQ share data.
    lrtq_sleds: SledMask,
    /// Still LRTQ: the next reconfiguration is the upgrade.
    on_lrtq: bool,
    /// The current members (of the latest commit, or the initial ones).
    members: SledMask,
    /// Sleds removed at some point: never added back.
    removed: SledMask,
    highest_started: Epoch,
    history: heapless::Deque<CommittedEpoch, MAX_HISTORY>,
    forgotten_below: Option<Epoch>,
    latest: Option<Configuration>,
    /// Members of the latest configuration that confirmed the commit.
    commit_confirmed: SledMask,
    counted_commit: [Option<Epoch>; MAX_SLEDS],
    pending: Option<Pending>,
    stats: NexusStats,
}

impl Nexus {
    pub(crate) fn new(sled_count: usize, members: usize, lrtq: bool) -> Self {
        let initial = (0..members).fold(0, |mask, i| mask | bit(i));
        Self {
            sled_count,
            lrtq_sleds: if lrtq { initial } else { 0 },
            on_lrtq: lrtq,
            members: initial,
            removed: 0,
            highest_started: Epoch(u64::from(lrtq)),
            history: heapless::Deque::new(),
            forgotten_below: None,
            latest: None,
            commit_confirmed: 0,
            counted_commit: [None; MAX_SLEDS],
            pending: None,
            stats: NexusStats::default(),
        }
    }

    /// The reconfiguration being driven, if any.
    pub fn pending(&self) -> Option<&Pending> {
        self.pending.as_ref()
    }

    /// The latest committed configuration.
    pub fn latest_config(&self) -> Option<&Configuration> {
        self.latest.as_ref()
    }

    /// The latest committed epoch, with members and acks.
    pub fn latest_committed(&self) -> Option<&CommittedEpoch> {
        self.history.back()
    }

    /// Every remembered commit, oldest first.
    pub fn history(&self) -> impl Iterator<Item = &CommittedEpoch> {
        self.history.iter()
    }

    /// The current members.
    pub fn members(&self) -> SledMask {
        self.members
    }

    /// Members of the latest configuration that confirmed the commit.
    pub fn commit_confirmed(&self) -> SledMask {
        self.commit_confirmed
    }

    /// Whether the rack is still on LRTQ.
    pub fn on_lrtq(&self) -> bool {
        self.on_lrtq
    }

    /// Counters.
    pub fn stats(&self) -> &NexusStats {
        &self.stats
    }

    /// Members of committed `epoch`, if Nexus committed it (and remembers).
    pub fn committed_members(&self, epoch: Epoch) -> Option<SledMask> {
        self.history
            .iter()
            .find(|c| c.epoch == epoch)
            .map(|c| c.members)
    }

    /// Whether `epoch` is older than what Nexus still remembers.
    pub fn forgot_epoch(&self, epoch: Epoch) -> bool {
        self.forgotten_below.is_some_and(|below| epoch < below)
    }

    /// The highest epoch Nexus counted sled `index` as committed at.
    pub fn counted_commit(&self, index: usize) -> Option<Epoch> {
        self.counted_commit.get(index).copied().flatten()
    }

    /// The committed epoch `back` commits before the latest (modulo the
    /// number remembered).
    pub fn committed_epoch_back(&self, back: u8) -> Option<Epoch> {
        let len = self.history.len();
        if len == 0 {
            return None;
        }
        let back = usize::from(back) % len;
        self.history.iter().rev().nth(back).map(|c| c.epoch)
    }

    /// Sleds that may coordinate a configuration with `members`.
    fn eligible_coordinators(&self, members: SledMask, upgrade: bool) -> SledMask {
        if upgrade {
            members & self.lrtq_sleds
        } else if self.latest.is_some() {
            // It must have committed the previous configuration.
            members & self.members
        } else {
            members
        }
    }

    fn record_commit(&mut self, config: Configuration, pending: &Pending, acked: SledMask) {
        if self.history.is_full()
            && let Some(oldest) = self.history.pop_front()
        {
            self.forgotten_below = Some(Epoch(oldest.epoch.0.saturating_add(1)));
        }
        let _ = self.history.push_back(CommittedEpoch {
            epoch: pending.epoch,
            members: pending.members,
            acked,
        });
        let removed = self.members & !pending.members;
        self.removed |= removed;
        self.members = pending.members;
        self.latest = Some(config);
        self.commit_confirmed = 0;
        self.pending = None;
        if self.on_lrtq {
            self.stats.upgrades = self.stats.upgrades.saturating_add(1);
        }
        self.on_lrtq = false;
        self.stats.committed = self.stats.committed.saturating_add(1);
    }
}

/// What Nexus reads from a coordinator's status.
struct StatusView {
    epoch: Epoch,
    phase: CoordinatorPhase,
    acked: SledMask,
    config: Option<Configuration>,
}

impl Cluster {
    /// Nexus starts a reconfiguration (the LRTQ upgrade on an LRTQ rack).
    /// Does nothing while one is pending.
    pub fn nexus_start(
        &mut self,
        change: Change,
        coordinator: u8,
        threshold: u8,
    ) -> Result<(), Violation> {
        let nexus = &mut self.nexus;
        if nexus.pending.is_some() {
            return Ok(());
        }
        let current = nexus.members;
        let members = match change {
            Change::Add(n) => {
                let never_members = (0..nexus.sled_count).fold(0, |mask, i| mask | bit(i))
                    & !current
                    & !nexus.removed;
                match nth_bit(never_members, usize::from(n)) {
                    Some(added) => {
                        nexus.stats.additions = nexus.stats.additions.saturating_add(1);
                        current | bit(added)
                    }
                    None => current,
                }
            }
            Change::Remove(n) => {
                let count = current.count_ones() as usize;
                match nth_bit(current, usize::from(n)) {
                    Some(gone) if count > tq_core::limits::MIN_MEMBERS => {
                        let next = current & !bit(gone);
                        // The coordinator must come from the remaining
                        // members (and hold LRTQ data for the upgrade).
                        if nexus.eligible_coordinators(next, nexus.on_lrtq) == 0 {
                            current
                        } else {
                            nexus.stats.removals = nexus.stats.removals.saturating_add(1);
                            next
                        }
                    }
                    _ => current,
                }
            }
            Change::Same => current,
        };
        let n = members.count_ones() as usize;
        let k = 2 + usize::from(threshold) % n.saturating_sub(2).max(1);
        let Some(threshold) = u8::try_from(k).ok().and_then(|k| Threshold::new(k).ok()) else {
            return Ok(());
        };
        let upgrade = nexus.on_lrtq;
        let eligible = nexus.eligible_coordinators(members, upgrade);
        let Some(coordinator) = nth_bit(eligible, usize::from(coordinator)) else {
            return Ok(());
        };
        let epoch = Epoch(nexus.highest_started.0.saturating_add(1));
        nexus.highest_started = epoch;
        nexus.stats.started = nexus.stats.started.saturating_add(1);
        nexus.pending = Some(Pending {
            epoch,
            coordinator,
            members,
            threshold,
            upgrade,
            last_committed: nexus.latest.as_ref().map(Configuration::epoch),
            state: PendingState::NotStarted,
        });
        self.nexus_try_start()
    }

    /// Nexus gives up the pending epoch and starts the same change at a
    /// higher epoch with another coordinator (the `n`-th eligible one
    /// other than the current). Does nothing without a pending epoch.
    pub fn nexus_abandon(&mut self, n: u8) -> Result<(), Violation> {
        let nexus = &mut self.nexus;
        let Some(old) = nexus.pending else {
            return Ok(());
        };
        let eligible = nexus.eligible_coordinators(old.members, old.upgrade);
        let others = eligible & !bit(old.coordinator);
        let pool = if others == 0 { eligible } else { others };
        let Some(coordinator) = nth_bit(pool, usize::from(n)) else {
            return Ok(());
        };
        let epoch = Epoch(nexus.highest_started.0.saturating_add(1));
        nexus.highest_started = epoch;
        nexus.stats.abandoned = nexus.stats.abandoned.saturating_add(1);
        nexus.stats.started = nexus.stats.started.saturating_add(1);
        nexus.pending = Some(Pending {
            epoch,
            coordinator,
            state: PendingState::NotStarted,
            ..old
        });
        self.nexus_try_start()
    }

    /// Asks the pending epoch's coordinator to start, if it has not.
    fn nexus_try_start(&mut self) -> Result<(), Violation> {
        let Some(pending) = self.nexus.pending else {
            return Ok(());
        };
        if pending.state != PendingState::NotStarted {
            return Ok(());
        }
        let sled = u8::try_from(pending.coordinator).unwrap_or(u8::MAX);
        let rack_id = self.rack_id;
        // Built before the call, so that only the node's work is probed.
        // (Nexus's masks always make a valid set.)
        let Ok(members) = MemberSet::new(mask_ids(&self.ids, pending.members)) else {
            return Ok(());
        };
        let state = if pending.upgrade {
            let msg = LrtqUpgradeMsg {
                rack_id,
                epoch: pending.epoch,
                members,
                threshold: pending.threshold,
            };
            let outcome = self.probed(
                pending.coordinator,
                "coordinate_upgrade_from_lrtq",
                |node, ctx, rng, _| node.coordinate_upgrade_from_lrtq(ctx, rng, &msg),
            )?;
            match outcome {
                None => return Ok(()),
                Some(Ok(())) => PendingState::Running,
                Some(Err(LrtqUpgradeError::EpochNotNewer { .. })) => PendingState::Stale,
                Some(Err(error)) => {
                    return Err(Violation::LrtqUpgradeRefused { sled, error });
                }
            }
        } else {
            let msg = ReconfigureMsg {
                rack_id,
                epoch: pending.epoch,
                last_committed_epoch: pending.last_committed,
                members,
                threshold: pending.threshold,
            };
            let outcome = self.probed(
                pending.coordinator,
                "coordinate_reconfiguration",
                |node, ctx, rng, _| node.coordinate_reconfiguration(ctx, rng, &msg),
            )?;
            match outcome {
                None => return Ok(()),
                Some(Ok(_)) => PendingState::Running,
                Some(Err(ReconfigureError::EpochNotNewer { .. })) => PendingState::Stale,
                // Not ready yet: it has not learned the last commit, or is
                // still computing its share of it.
                Some(Err(
                    ReconfigureError::LastCommittedEpochMismatch { .. }
                    | ReconfigureError::ComputingShare(_)
                    | ReconfigureError::MustUpgradeFromLrtq
                    | ReconfigureError::LrtqUpgradeInProgress(_),
                )) => PendingState::NotStarted,
                Some(Err(error)) => {
                    return Err(Violation::ReconfigureRefused { sled, error });
                }
            }
        };
        if let Some(p) = self.nexus.pending.as_mut() {
            p.state = state;
        }
        Ok(())
    }

    /// Nexus polls the coordinator: retries a start that did not happen,
    /// notices a coordinator that lost its coordination, and commits once
    /// `K + Z` members acked.
    pub fn nexus_poll(&mut self) -> Result<(), Violation> {
        let Some(pending) = self.nexus.pending else {
            return Ok(());
        };
        match pending.state {
            PendingState::NotStarted => return self.nexus_try_start(),
            PendingState::Stale => return Ok(()),
            PendingState::Running => {}
        }
        let sled = u8::try_from(pending.coordinator).unwrap_or(u8::MAX);
        let status = self.call(pending.coordinator, |node, ctx, _, ids| {
            node.coordinator_status(ctx).map(|status| {
                let acked = status
                    .acked
                    .iter()
                    .filter_map(|id| index_of(ids, id))
                    .fold(0, |mask, i| mask | bit(i));
                StatusView {
                    epoch: status.epoch,
                    phase: status.phase,
                    acked,
                    config: status.config.cloned(),
                }
            })
        })?;
        let Some(status) = status else {
            // The coordinator is down: wait (or abandon).
            return Ok(());
        };
        let Some(status) = status.filter(|s| s.epoch == pending.epoch) else {
            // It lost the coordination (a crash): ask again.
            if let Some(p) = self.nexus.pending.as_mut() {
                p.state = PendingState::NotStarted;
            }
            return self.nexus_try_start();
        };
        if status.phase != CoordinatorPhase::Preparing {
            return Ok(());
        }
        let Some(config) = status.config else {
            return Err(Violation::StatusMismatch {
                sled,
                epoch: pending.epoch,
            });
        };
        let config_members = config
            .members()
            .iter()
            .filter_map(|m| index_of(&self.ids, &m.id))
            .fold(0, |mask, i| mask | bit(i));
        let fits = config.epoch() == pending.epoch
            && config_members == pending.members
            && config.members().len() == pending.members.count_ones() as usize
            && config.threshold() == pending.threshold
            && self.ids.get(pending.coordinator) == Some(config.coordinator())
            && config.rack_id() == self.rack_id;
        if !fits {
            return Err(Violation::StatusMismatch {
                sled,
                epoch: pending.epoch,
            });
        }
        if self
            .configs
            .observe(&config)
            .map_err(|error| Violation::Encoding { sled, error })?
            == Seen::Different
        {
            return Err(Violation::MismatchedConfigurations {
                sled: None,
                epoch: pending.epoch,
            });
        }
        let acked = status.acked & pending.members;
        let n = pending.members.count_ones() as usize;
        let k = usize::from(pending.threshold.get());
        let needed = k + crash_tolerance(n.saturating_sub(k));
        if (acked.count_ones() as usize) >= needed {
            self.nexus.record_commit(config, &pending, acked);
        }
        Ok(())
    }

    /// Nexus tells the `n`-th member of the latest configuration that has
    /// not confirmed the commit to commit, and hands it the configuration
    /// if it did not prepare.
    pub fn nexus_commit(&mut self, n: u8) -> Result<(), Violation> {
        let Some(latest) = self.nexus.latest_committed().copied() else {
            return Ok(());
        };
        let waiting = latest.members & !self.nexus.commit_confirmed;
        let Some(member) = nth_bit(waiting, usize::from(n)) else {
            return Ok(());
        };
        self.nexus_commit_member(member, latest.epoch)
    }

    /// `commit_configuration` to `member`, then `prepare_and_commit` if it
    /// answers `NotPrepared`.
    pub(crate) fn nexus_commit_member(
        &mut self,
        member: usize,
        epoch: Epoch,
    ) -> Result<(), Violation> {
        let sled = u8::try_from(member).unwrap_or(u8::MAX);
        let rack_id = self.rack_id;
        let request = CommitRequest { rack_id, epoch };
        let outcome = self.probed(member, "commit_configuration", |node, ctx, _, _| {
            node.commit_configuration(ctx, &request)
        })?;
        match outcome {
            None => Ok(()),
            Some(Ok(_)) => {
                let nexus = &mut self.nexus;
                nexus.commit_confirmed |= bit(member);
                nexus.stats.member_commits = nexus.stats.member_commits.saturating_add(1);
                if let Some(slot) = nexus.counted_commit.get_mut(member) {
                    *slot = (*slot).max(Some(epoch));
                }
                Ok(())
            }
            Some(Err(CommitError::NotPrepared(_))) => {
                let Some(config) = self.nexus.latest.clone() else {
                    return Ok(());
                };
                self.nexus.stats.prepare_and_commits =
                    self.nexus.stats.prepare_and_commits.saturating_add(1);
                let outcome = self.probed(member, "prepare_and_commit", |node, ctx, _, _| {
                    node.prepare_and_commit(ctx, &config)
                })?;
                match outcome {
                    Some(Err(error)) => Err(Violation::PrepareAndCommitRefused { sled, error }),
                    _ => Ok(()),
                }
            }
            Some(Err(error)) => Err(Violation::CommitRefused { sled, error }),
        }
    }
}
