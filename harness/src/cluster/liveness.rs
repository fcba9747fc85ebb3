//! The liveness check (PROTOCOL.md section 8, item 7): heal everything, let
//! Nexus finish, then every member of the latest committed configuration
//! loads its secret and they agree. Every loop is bounded, so a livelock is
//! a [`LivenessFailure`], not a hang.

use tq_core::ids::Epoch;
use tq_core::limits::MAX_RETAINED_SECRETS;
use tq_core::node::LoadSecretError;

use super::Cluster;
use crate::invariants::{LivenessFailure, Violation};
use crate::mask::bit;

/// Rounds (deliver everything, one Nexus step) Nexus gets to finish.
pub const MAX_NEXUS_ROUNDS: usize = 64;

/// Rounds (deliver everything, one Nexus step) of one
/// [`crate::Action::Settle`].
pub const SETTLE_ROUNDS: usize = 16;

/// Rounds (ask, deliver everything) a sled gets to load a secret or to be
/// told it is expunged.
pub const MAX_LOAD_ROUNDS: usize = 8;

impl<const SLEDS: usize> Cluster<SLEDS> {
    /// Restarts every crashed sled, plugs every link, and gives every pair
    /// a fresh connection (so each side re-sends what it still needs, as a
    /// real reconnection would after lost messages).
    pub fn heal(&mut self) -> Result<(), Violation> {
        let count = self.sled_count();
        for index in 0..count {
            self.restart(index)?;
            let up = self.sled(index).is_some_and(crate::sled::Sled::is_up);
            if !up {
                return Err(LivenessFailure::SledDown {
                    sled: u8::try_from(index).unwrap_or(u8::MAX),
                }
                .into());
            }
        }
        // Start from an empty network, and deliver after every new
        // connection: requests re-sent into a full network would be lost
        // again, and a pair whose requests are lost at every heal never
        // catches up (a rack of stale coordinators re-asking everyone can
        // fill the network on its own).
        self.deliver_all()?;
        for a in 0..count {
            for b in a + 1..count {
                self.disconnect(a, b)?;
                self.connect(a, b)?;
                self.deliver_all()?;
            }
        }
        self.check()
    }

    /// Delivers everything; if the network was full and dropped a message
    /// meanwhile, treats it as the connection reset it would be on a real
    /// link and heals again, so nothing stays lost.
    fn deliver_reliably(&mut self) -> Result<(), Violation> {
        for _ in 0..MAX_NEXUS_ROUNDS {
            let dropped = self.network.stats().dropped_full;
            self.deliver_all()?;
            if self.network.stats().dropped_full == dropped {
                return Ok(());
            }
            self.heal()?;
        }
        Err(LivenessFailure::NetworkNeverQuiet.into())
    }

    /// Heals, lets Nexus finish, then checks that every member of the
    /// latest committed configuration loads the same secret for it and for
    /// every older committed epoch still retained, that an upgraded LRTQ
    /// rack's epoch 1 is the LRTQ secret, that every removed sled that
    /// asks for shares learns it is expunged, and that every sled's state
    /// is on its disk.
    pub fn check_liveness(&mut self) -> Result<(), Violation> {
        self.heal()?;
        self.deliver_reliably()?;
        self.nexus_finish()?;
        let latest = self
            .nexus
            .latest_committed()
            .ok_or(LivenessFailure::NothingCommitted)?;
        for member in (0..self.sled_count()).filter(|m| latest.members & bit(*m) != 0) {
            self.load_until_done(member, latest.epoch)?;
        }
        // Older committed epochs the latest configuration still carries.
        let history: heapless::Vec<Epoch, { crate::nexus::MAX_HISTORY }> =
            self.nexus.history().map(|c| c.epoch).collect();
        let upgraded = self.nexus.stats().upgrades > 0;
        let older = history
            .iter()
            .rev()
            .skip(1)
            .copied()
            .chain(upgraded.then_some(Epoch(1)));
        let retained: heapless::Vec<Epoch, { crate::nexus::MAX_HISTORY + 1 }> =
            older.take(MAX_RETAINED_SECRETS).collect();
        for member in (0..self.sled_count()).filter(|m| latest.members & bit(*m) != 0) {
            for &epoch in &retained {
                self.load_until_done(member, epoch)?;
            }
        }
        self.check_removed_sleds_expunged(latest.members)?;
        self.check_every_state_stored()?;
        self.check()
    }

    /// Drives Nexus until nothing is pending and every member of the latest
    /// configuration confirmed its commit.
    pub fn nexus_finish(&mut self) -> Result<(), Violation> {
        for _ in 0..MAX_NEXUS_ROUNDS {
            self.deliver_reliably()?;
            if !self.nexus_round()? {
                if self.nexus.latest_committed().is_none() {
                    // Nothing ever started: start the first one.
                    self.nexus_start(crate::Change::Same, 0, 0)?;
                } else if self.network.is_empty() {
                    return Ok(());
                }
            }
            self.check()?;
        }
        let latest = self.nexus.latest_committed();
        Err(LivenessFailure::NexusNeverDone {
            pending: self.nexus.pending().map(|p| p.epoch),
            uncommitted: latest.map_or(0, |l| l.members & !self.nexus.commit_confirmed()),
        }
        .into())
    }

    /// A quiet stretch of time ([`crate::Action::Settle`]): every crashed
    /// sled boots again (a sled that crashes reboots), then up to 16 rounds
    /// of delivering everything in flight and one Nexus step, until Nexus
    /// has nothing left to do and nothing is in flight. Cut links stay cut,
    /// so Nexus may still be waiting at the end (and may have abandoned a
    /// coordinator that stopped moving: every round moves its clock).
    pub fn settle(&mut self) -> Result<(), Violation> {
        for index in 0..self.sled_count() {
            self.restart(index)?;
        }
        for _ in 0..SETTLE_ROUNDS {
            self.deliver_all()?;
            if !self.nexus_round()? && self.network.is_empty() {
                break;
            }
            self.check()?;
        }
        self.check()
    }

    /// One round of Nexus's work: one step of its clock (a coordination
    /// that can never finish, or stops moving, is abandoned by Nexus
    /// itself), the latest commit to every member that has not confirmed
    /// it (even while a new reconfiguration waits: its coordinator may need
    /// it first), and the pending coordinator polled. Returns whether Nexus
    /// had anything to do: a pending epoch, or members to tell.
    fn nexus_round(&mut self) -> Result<bool, Violation> {
        self.nexus.tick();
        let latest = self.nexus.latest_committed();
        let waiting = latest.map_or(0, |l| l.members & !self.nexus.commit_confirmed());
        for member in (0..self.sled_count()).filter(|m| waiting & bit(*m) != 0) {
            self.nexus_commit_member(member)?;
        }
        let pending = self.nexus.pending().is_some();
        if pending {
            self.nexus_poll()?;
        }
        Ok(pending || waiting != 0)
    }

    /// Asks `member` for the secret of `epoch` until it has it.
    fn load_until_done(&mut self, member: usize, epoch: Epoch) -> Result<(), Violation> {
        let sled = u8::try_from(member).unwrap_or(u8::MAX);
        for round in 0..MAX_LOAD_ROUNDS {
            match self.load_secret(member, epoch)? {
                Some(Ok(true)) => return Ok(()),
                Some(Ok(false)) | None => {}
                Some(Err(error)) => return Err(Violation::LoadRefused { sled, epoch, error }),
            }
            // A round passed without the secret: the members first asked
            // may be silent (one that has no share yet stays so), and a
            // real caller's patience would run out.
            if round > 0 {
                self.widen_secret_load(member)?;
            }
            self.deliver_reliably()?;
        }
        Err(LivenessFailure::SecretNeverLoaded { sled, epoch }.into())
    }

    /// Every sled outside `members` whose last committed configuration
    /// shares a member with `members` is told it is expunged once it asks
    /// for shares (a sled whose whole old configuration was removed too can
    /// only ask other removed sleds, which do not know).
    fn check_removed_sleds_expunged(&mut self, members: u32) -> Result<(), Violation> {
        for index in (0..self.sled_count()).filter(|i| members & bit(*i) == 0) {
            let summary = self.disk_summary(index)?;
            if summary.expunged.is_some() {
                continue;
            }
            let Some(last) = summary.latest_committed else {
                continue;
            };
            let overlaps = self
                .nexus
                .committed_members(last)
                .is_some_and(|old| old & members != 0);
            if !overlaps {
                continue;
            }
            let sled = u8::try_from(index).unwrap_or(u8::MAX);
            let mut told = false;
            for _ in 0..MAX_LOAD_ROUNDS {
                match self.load_secret(index, last)? {
                    Some(Err(LoadSecretError::Expunged(_))) => {
                        told = true;
                        break;
                    }
                    // A cached secret answers without asking anyone: drop
                    // it so the sled asks.
                    Some(Ok(true)) => {
                        self.probed(index, "clear_secrets", |node, _, _, _| node.clear_secrets())?;
                    }
                    // The members it asked first may not know either.
                    _ => self.widen_secret_load(index)?,
                }
                self.deliver_reliably()?;
            }
            if !told {
                return Err(LivenessFailure::NeverExpunged { sled }.into());
            }
        }
        Ok(())
    }
}
