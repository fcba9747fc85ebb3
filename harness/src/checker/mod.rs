//! The checker: the safety invariants of PROTOCOL.md section 8 (listed in
//! [`crate::invariants`]), checked against the simulated world after every
//! step, and the memory they need across steps (the first configuration
//! and secret seen for each epoch, each sled's decoded disk, what each
//! coordinator counted, when each sled's state and disk were last found
//! equal). The checker only reads the world ([`World`]); the cluster tells
//! it what happened that the world does not show (an ack delivered, a
//! crash, a secret loaded, a commit Nexus made).

mod records;

use tq_core::config::Configuration;
use tq_core::crypto::RackSecret;
use tq_core::ids::{Epoch, PlatformId};
use tq_core::node::Event;
use tq_core::persistent::{PersistentState, Revision};
use tq_core::wire;

use crate::invariants::Violation;
use crate::mask::{SledMask, bit, first_bit};
use crate::nexus::SimNexus;
use crate::sled::{Disk, DiskSummary, Sled, index_of};
use crate::stats::RunStats;
use records::{ConfigRecord, SecretRecord, Seen};

/// What the checker reads of the world: the sled ids (`ids[i]` is sled
/// `i`), the sleds and Nexus.
#[derive(Clone, Copy)]
pub(crate) struct World<'a> {
    pub ids: &'a [PlatformId],
    pub sleds: &'a [Sled],
    pub nexus: &'a SimNexus,
}

/// The last `PrepareAck` delivered, for the ack ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DeliveredAck {
    from: usize,
    to: usize,
    epoch: Epoch,
}

/// A running sled's state and disk when they were last found equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Compared {
    boots: u32,
    revision: Revision,
    writes: u32,
}

/// When [`Checker::check_stored`] encodes a state to compare it with the
/// disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Compare {
    /// Whatever changed.
    Always,
    /// If the state, the disk or the boot changed since they were last
    /// known equal.
    IfChanged,
    /// The call just made wrote the disk from the state at this revision:
    /// only if the state has another now.
    WrittenAt(Revision),
}

/// What a coordinator counted at the last check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "model", derive(Hash))]
struct AckView {
    epoch: Option<Epoch>,
    acked: SledMask,
}

/// The checker's memory, for a cluster of up to `SLEDS` sleds.
pub(crate) struct Checker<const SLEDS: usize> {
    configs: ConfigRecord,
    secrets: SecretRecord,
    /// Per sled, its decoded disk and the write count it was decoded at.
    summaries: [Option<(u32, DiskSummary)>; SLEDS],
    acks: [AckView; SLEDS],
    delivered_ack: Option<DeliveredAck>,
    /// Where a state is encoded to compare it with the disk.
    scratch: Disk,
    /// Per sled, when its state and disk were last found equal.
    compared: [Option<Compared>; SLEDS],
}

/// A sled index as violations name it.
fn sled_u8(index: usize) -> u8 {
    u8::try_from(index).unwrap_or(u8::MAX)
}

impl<const SLEDS: usize> Checker<SLEDS> {
    /// A checker that has seen nothing yet.
    pub(crate) fn new() -> Self {
        Self {
            configs: ConfigRecord::default(),
            secrets: SecretRecord::default(),
            summaries: core::array::from_fn(|_| None),
            acks: [AckView::default(); SLEDS],
            delivered_ack: None,
            scratch: Disk::new(),
            compared: [None; SLEDS],
        }
    }

    // ---- what the world does not show ----

    /// A new step begins: the ack delivered in the last one no longer
    /// explains a coordinator's count.
    pub(crate) fn step_begins(&mut self) {
        self.delivered_ack = None;
    }

    /// Sled `from`'s `PrepareAck` of `epoch` was delivered to sled `to` in
    /// this step: `to` may count it.
    pub(crate) fn ack_delivered(&mut self, from: usize, to: usize, epoch: Epoch) {
        self.delivered_ack = Some(DeliveredAck { from, to, epoch });
    }

    /// Sled `index` crashed: what its coordinator counted is gone.
    pub(crate) fn sled_crashed(&mut self, index: usize) {
        if let Some(view) = self.acks.get_mut(index) {
            *view = AckView::default();
        }
    }

    /// `secret` is the secret of `epoch` from the start (an LRTQ rack's):
    /// every load of it must return it.
    pub(crate) fn know_secret(&mut self, epoch: Epoch, secret: &RackSecret) {
        self.secrets.observe(epoch, secret);
    }

    /// Sled `index` loaded `secret` for `epoch`: it must equal the first
    /// one loaded for that epoch (invariant 7).
    pub(crate) fn secret_loaded(
        &mut self,
        index: usize,
        epoch: Epoch,
        secret: &RackSecret,
    ) -> Result<(), Violation> {
        if self.secrets.observe(epoch, secret) == Seen::Different {
            return Err(Violation::SecretMismatch {
                sled: sled_u8(index),
                epoch,
            });
        }
        Ok(())
    }

    /// Epochs for which a secret was loaded or known.
    pub(crate) fn epochs_with_secret(&self) -> impl Iterator<Item = Epoch> + '_ {
        self.secrets.epochs()
    }

    /// Nexus committed `config` for `epoch` on the answer of sled `sled`:
    /// it must be the configuration seen for that epoch (invariant 1).
    pub(crate) fn nexus_committed(
        &mut self,
        sled: u8,
        epoch: Epoch,
        config: &Configuration,
    ) -> Result<(), Violation> {
        let seen = self
            .configs
            .observe(config)
            .map_err(|error| Violation::Encoding { sled, error })?;
        if seen == Seen::Different {
            return Err(Violation::MismatchedConfigurations { sled: None, epoch });
        }
        Ok(())
    }

    // ---- after a node call ----

    /// A sled whose context says its state is stored must have exactly
    /// that state on its disk: what its messages and events follow from.
    ///
    /// The state is encoded and compared with the disk whenever either may
    /// have changed since they were last known equal (another revision of
    /// the state, another disk write, another boot), and always with
    /// [`Compare::Always`] (before a crash, and at the end of the liveness
    /// check), which also catches a change the state made without a new
    /// revision. They are known equal after a comparison that passed, and
    /// after a call that wrote the disk from the state at the revision it
    /// still has ([`Compare::WrittenAt`]: the disk is that state's
    /// encoding, made a moment ago; a driver that acknowledges a write it
    /// did not make never gets there).
    pub(crate) fn check_stored(
        &mut self,
        world: World<'_>,
        index: usize,
        compare: Compare,
    ) -> Result<(), Violation> {
        let Some(sled) = world.sleds.get(index) else {
            return Ok(());
        };
        let Some(running) = sled.running() else {
            return Ok(());
        };
        if !running.ctx.is_stored() {
            return Ok(());
        }
        let state = running.ctx.persistent_state();
        let seen = Compared {
            boots: sled.boots(),
            revision: state.revision(),
            writes: sled.disk_writes(),
        };
        let slot = self.compared.get_mut(index);
        let known_equal = match compare {
            Compare::Always => false,
            Compare::IfChanged => slot.as_deref() == Some(&Some(seen)),
            Compare::WrittenAt(revision) => revision == seen.revision,
        };
        if !known_equal {
            self.scratch
                .write(state)
                .map_err(|error| Violation::Encoding {
                    sled: sled_u8(index),
                    error,
                })?;
            if self.scratch.as_slice() != sled.disk() {
                return Err(Violation::StateNotPersisted {
                    sled: sled_u8(index),
                });
            }
        }
        if let Some(slot) = slot {
            *slot = Some(seen);
        }
        Ok(())
    }

    /// Every `PrepareAck` sled `index` sent in the call just made left with
    /// its prepare on the disk (invariant 2, at the source).
    pub(crate) fn check_acks_sent(
        &mut self,
        world: World<'_>,
        stats: &mut RunStats,
        index: usize,
        epochs: &[Epoch],
    ) -> Result<(), Violation> {
        if epochs.is_empty() {
            return Ok(());
        }
        let summary = self.summary(world, stats, index)?;
        match epochs.iter().find(|&&epoch| !summary.holds_share(epoch)) {
            Some(&epoch) => Err(Violation::AckWithoutDurablePrepare {
                sled: sled_u8(index),
                epoch,
            }),
            None => Ok(()),
        }
    }

    /// Every event a sled handed out describes its disk: a commit or an
    /// expungement it reports is stored.
    pub(crate) fn check_events(
        &mut self,
        world: World<'_>,
        stats: &mut RunStats,
        index: usize,
        events: &[Event],
    ) -> Result<(), Violation> {
        for event in events {
            stats.count_event(event);
            let summary = self.summary(world, stats, index)?;
            let durable = match event {
                Event::Committed(epoch) => summary.latest_committed.is_some_and(|c| c >= *epoch),
                Event::Expunged { epoch, .. } => summary.expunged == Some(*epoch),
                _ => true,
            };
            if !durable {
                return Err(Violation::EventNotDurable {
                    sled: sled_u8(index),
                });
            }
        }
        Ok(())
    }

    /// The decoded summary of sled `index`'s disk (decoded again after each
    /// disk write; every configuration on it is checked against invariant
    /// 1 then).
    pub(crate) fn summary(
        &mut self,
        world: World<'_>,
        stats: &mut RunStats,
        index: usize,
    ) -> Result<&DiskSummary, Violation> {
        let sled = sled_u8(index);
        let writes = world.sleds.get(index).map_or(0, Sled::disk_writes);
        let fresh = self
            .summaries
            .get(index)
            .and_then(Option::as_ref)
            .is_some_and(|(w, _)| *w == writes);
        if !fresh {
            let state = world
                .sleds
                .get(index)
                .map(Sled::read_disk)
                .unwrap_or(Ok(PersistentState::new()))
                .map_err(|error| Violation::DiskUnreadable { sled, error })?;
            // Invariant 1, for every configuration on the disk.
            for stored in &state.fields().configs {
                let seen = self
                    .configs
                    .observe(&stored.config)
                    .map_err(|error| Violation::Encoding { sled, error })?;
                if seen == Seen::Different {
                    return Err(Violation::MismatchedConfigurations {
                        sled: Some(sled),
                        epoch: stored.config.epoch(),
                    });
                }
            }
            let summary = DiskSummary::of(&state);
            let was_expunged = self
                .summaries
                .get(index)
                .and_then(Option::as_ref)
                .is_some_and(|(_, s)| s.expunged.is_some());
            if summary.expunged.is_some() && !was_expunged {
                stats.expunged = stats.expunged.saturating_add(1);
            }
            if let Some(slot) = self.summaries.get_mut(index) {
                *slot = Some((writes, summary));
            }
        }
        self.summaries
            .get(index)
            .and_then(Option::as_ref)
            .map(|(_, s)| s)
            .ok_or(Violation::DiskUnreadable {
                sled,
                error: wire::WireError::Empty,
            })
    }

    // ---- after every step ----

    /// Checks every safety invariant (see [`crate::invariants`]).
    pub(crate) fn check(
        &mut self,
        world: World<'_>,
        stats: &mut RunStats,
    ) -> Result<(), Violation> {
        let count = world.sleds.len();
        for index in 0..count {
            self.summary(world, stats, index)?;
        }
        for index in 0..count {
            self.check_disk(world, index)?;
            self.check_running(world, index)?;
        }
        self.check_nexus_commits(world)
    }

    /// Invariants that read one sled's disk against Nexus.
    fn check_disk(&self, world: World<'_>, index: usize) -> Result<(), Violation> {
        let sled = sled_u8(index);
        let nexus = world.nexus;
        let Some((_, summary)) = self.summaries.get(index).and_then(Option::as_ref) else {
            return Ok(());
        };
        if let Some(epoch) = summary.expunged {
            // Invariant 6: outside a configuration Nexus committed (or one
            // too old for Nexus to remember).
            let outside = match nexus.committed_members(epoch) {
                Some(members) => members & bit(index) == 0,
                None => nexus.forgot_epoch(epoch),
            };
            if !outside {
                return Err(Violation::WronglyExpunged { sled, epoch });
            }
        }
        if let Some(epoch) = summary.latest_committed
            && !nexus.is_committed(epoch)
            && !nexus.forgot_epoch(epoch)
        {
            return Err(Violation::CommittedUnknownEpoch { sled, epoch });
        }
        // Invariant 3.
        if let Some(epoch) = nexus.counted_commit(index)
            && summary.latest_committed.is_none_or(|c| c < epoch)
        {
            return Err(Violation::CommitNotDurable { sled, epoch });
        }
        Ok(())
    }

    /// Invariants on a running node: alarms, roles, the ack ledger.
    fn check_running(&mut self, world: World<'_>, index: usize) -> Result<(), Violation> {
        let sled = sled_u8(index);
        let Some(running) = world.sleds.get(index).and_then(Sled::running) else {
            return Ok(());
        };
        // Invariant 5.
        if let Some(&alarm) = running.ctx.alarms().first() {
            return Err(Violation::Alarm { sled, alarm });
        }
        // Invariant 4.
        if running.node.coordinating().is_some() && running.node.computing_share().is_some() {
            return Err(Violation::CoordinatingWhileComputingShare { sled });
        }
        // Invariant 2: the ack ledger.
        let mut view = AckView::default();
        let mut status_config = None;
        if let Some(status) = running.node.coordination(&running.ctx) {
            view.epoch = Some(status.epoch);
            for id in status.acked {
                let from = index_of(world.ids, id).ok_or(Violation::UnknownPeer { sled })?;
                view.acked |= bit(from);
            }
            status_config = status.config.cloned();
        }
        let previous = self.acks.get(index).copied().unwrap_or_default();
        let mut allowed = bit(index);
        if previous.epoch == view.epoch {
            allowed |= previous.acked;
        }
        if let (Some(ack), Some(epoch)) = (self.delivered_ack, view.epoch)
            && ack.to == index
            && ack.epoch == epoch
        {
            allowed |= bit(ack.from);
        }
        if let Some(epoch) = view.epoch {
            if let Some(from) = first_bit(view.acked & !allowed) {
                return Err(Violation::AckNotSent {
                    coordinator: sled,
                    from,
                    epoch,
                });
            }
            for from in 0..world.sleds.len() {
                if view.acked & bit(from) == 0 {
                    continue;
                }
                let Some((_, acker)) = self.summaries.get(from).and_then(Option::as_ref) else {
                    continue;
                };
                let durable = acker.holds_share(epoch)
                    || acker.latest_epoch.is_some_and(|e| e > epoch)
                    || acker.latest_committed.is_some_and(|e| e >= epoch);
                if !durable {
                    return Err(Violation::AckedPrepareLost {
                        sled: sled_u8(from),
                        epoch,
                    });
                }
            }
        }
        if let Some(slot) = self.acks.get_mut(index) {
            *slot = view;
        }
        // Invariant 1, for the configuration a coordinator reports.
        if let Some(config) = status_config {
            let seen = self
                .configs
                .observe(&config)
                .map_err(|error| Violation::Encoding { sled, error })?;
            if seen == Seen::Different {
                return Err(Violation::MismatchedConfigurations {
                    sled: Some(sled),
                    epoch: config.epoch(),
                });
            }
        }
        Ok(())
    }

    /// Invariant 2 for what Nexus committed: every sled whose ack it
    /// committed on keeps the share until it commits.
    fn check_nexus_commits(&self, world: World<'_>) -> Result<(), Violation> {
        let Some(latest) = world.nexus.latest_committed() else {
            return Ok(());
        };
        for index in 0..world.sleds.len() {
            if latest.acked & bit(index) == 0 {
                continue;
            }
            let Some((_, summary)) = self.summaries.get(index).and_then(Option::as_ref) else {
                continue;
            };
            let kept = summary.holds_share(latest.epoch)
                || summary.latest_committed.is_some_and(|c| c >= latest.epoch);
            if !kept {
                return Err(Violation::AckedPrepareLost {
                    sled: sled_u8(index),
                    epoch: latest.epoch,
                });
            }
        }
        Ok(())
    }
}

/// For the model checker: the checker's memory that decides how it judges
/// the future (the first configuration and secret seen for each epoch,
/// what each coordinator counted), and copies of it. Left out of the hash:
/// the disk summaries (read again from the disks), when each sled's state
/// and disk were last found equal (it only spares a comparison that would
/// pass), and the last ack delivered (it matters for one step only).
#[cfg(feature = "model")]
impl<const SLEDS: usize> Checker<SLEDS> {
    /// Feeds the memory that decides future verdicts to `h`.
    pub(crate) fn fingerprint<H: core::hash::Hasher>(&self, h: &mut H) {
        use core::hash::Hash;
        (&self.configs, &self.secrets, &self.acks).hash(h);
    }
}

#[cfg(feature = "model")]
impl<const SLEDS: usize> Clone for Checker<SLEDS> {
    fn clone(&self) -> Self {
        Self {
            configs: self.configs.clone(),
            secrets: self.secrets.clone(),
            summaries: self.summaries.clone(),
            acks: self.acks,
            delivered_ack: self.delivered_ack,
            scratch: Disk::new(),
            compared: self.compared,
        }
    }

    fn clone_from(&mut self, source: &Self) {
        let Self {
            configs,
            secrets,
            summaries,
            acks,
            delivered_ack,
            scratch: _,
            compared,
        } = self;
        configs.clone_from(&source.configs);
        secrets.clone_from(&source.secrets);
        summaries.clone_from(&source.summaries);
        *acks = source.acks;
        *delivered_ack = source.delivered_ack;
        *compared = source.compared;
    }
}
