//! What Nexus decided: the part of the machine a restarted driver must get
//! back ([`State`]). Everything else (calls in flight, when to call next,
//! what the coordinator last said, the counters) is rebuilt by asking the
//! sleds again.

use serde::{Deserialize, Serialize};
use tq_core::api::{LrtqUpgradeMsg, ReconfigureMsg};
use tq_core::config::Configuration;
use tq_core::ids::{Epoch, RackId, Threshold};
use tq_core::member_set::MemberSet;

use crate::roster::{Roster, SledSet};

/// Most committed epochs Nexus remembers (with who acked and who
/// confirmed); past this the oldest is forgotten, and
/// [`crate::Nexus::forgot_epoch`] says so.
pub const MAX_HISTORY: usize = 64;

/// Nexus's decisions: persist every one before making a call that follows
/// from it (see the crate doc).
///
/// It holds: the rack; every sled Nexus knows; which hold LRTQ data and
/// whether the rack is still on LRTQ; the current members and the sleds
/// ever removed (never added back); the highest epoch ever started (never
/// reused, even if abandoned); the committed epochs with who acked and who
/// confirmed; the latest committed configuration (handed to members that
/// missed its prepare); and the reconfiguration being driven.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
pub struct State {
    pub(crate) rack_id: RackId,
    pub(crate) roster: Roster,
    /// Sleds holding LRTQ share data (none on a fresh rack).
    pub(crate) lrtq: SledSet,
    /// The rack is still on LRTQ: the next reconfiguration is the upgrade.
    pub(crate) on_lrtq: bool,
    /// Members of the latest commit, or the sleds the rack started with.
    pub(crate) members: SledSet,
    pub(crate) removed: SledSet,
    /// Epoch 0 on a fresh rack, 1 (LRTQ's) on an LRTQ rack.
    pub(crate) highest_started: Epoch,
    pub(crate) history: heapless::Deque<CommitRecord, MAX_HISTORY>,
    /// Epochs below this were committed and forgotten.
    pub(crate) forgotten_below: Option<Epoch>,
    pub(crate) latest: Option<Configuration>,
    pub(crate) pending: Option<Pending>,
}

/// One committed epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "model", derive(Hash))]
pub(crate) struct CommitRecord {
    pub(crate) epoch: Epoch,
    pub(crate) members: SledSet,
    /// The members whose prepare acks Nexus committed on.
    pub(crate) acked: SledSet,
    /// The members that confirmed the commit.
    pub(crate) confirmed: SledSet,
}

/// The reconfiguration Nexus is driving: the request its coordinator gets
/// (kept whole, so each call hands out a reference to it).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "model", derive(Hash))]
pub(crate) struct Pending {
    pub(crate) request: Request,
    /// The coordinator's place in the roster.
    pub(crate) coordinator: u8,
    /// The request's members, as a set over the roster.
    pub(crate) members: SledSet,
}

/// The request of a pending reconfiguration.
// Both variants hold a member set of the same size.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "model", derive(Hash))]
pub(crate) enum Request {
    /// The LRTQ upgrade.
    Upgrade(LrtqUpgradeMsg),
    /// A reconfiguration of a committed rack (or a fresh rack's first).
    Reconfigure(ReconfigureMsg),
}

impl Request {
    pub(crate) fn epoch(&self) -> Epoch {
        match self {
            Self::Upgrade(msg) => msg.epoch,
            Self::Reconfigure(msg) => msg.epoch,
        }
    }

    pub(crate) fn set_epoch(&mut self, epoch: Epoch) {
        match self {
            Self::Upgrade(msg) => msg.epoch = epoch,
            Self::Reconfigure(msg) => msg.epoch = epoch,
        }
    }

    pub(crate) fn members(&self) -> &MemberSet {
        match self {
            Self::Upgrade(msg) => &msg.members,
            Self::Reconfigure(msg) => &msg.members,
        }
    }

    pub(crate) fn members_mut(&mut self) -> &mut MemberSet {
        match self {
            Self::Upgrade(msg) => &mut msg.members,
            Self::Reconfigure(msg) => &mut msg.members,
        }
    }

    pub(crate) fn threshold(&self) -> Threshold {
        match self {
            Self::Upgrade(msg) => msg.threshold,
            Self::Reconfigure(msg) => msg.threshold,
        }
    }

    pub(crate) fn rack_id(&self) -> RackId {
        match self {
            Self::Upgrade(msg) => msg.rack_id,
            Self::Reconfigure(msg) => msg.rack_id,
        }
    }

    pub(crate) fn last_committed(&self) -> Option<Epoch> {
        match self {
            Self::Upgrade(_) => None,
            Self::Reconfigure(msg) => msg.last_committed_epoch,
        }
    }
}

impl State {
    pub(crate) fn new(rack_id: RackId, roster: Roster, lrtq: bool) -> Self {
        let everyone = roster.all();
        Self {
            rack_id,
            roster,
            lrtq: if lrtq { everyone } else { SledSet::EMPTY },
            on_lrtq: lrtq,
            members: everyone,
            removed: SledSet::EMPTY,
            highest_started: Epoch(u64::from(lrtq)),
            history: heapless::Deque::new(),
            forgotten_below: None,
            latest: None,
            pending: None,
        }
    }

    /// The sleds that may coordinate the next reconfiguration (before
    /// intersecting with its members): an LRTQ sled for the upgrade, a
    /// member of the latest commit after one (it must hold a share of the
    /// configuration it rebuilds the old secret from), anyone before.
    pub(crate) fn may_coordinate(&self) -> SledSet {
        if self.on_lrtq {
            self.lrtq
        } else if self.latest.is_some() {
            self.members
        } else {
            self.roster.all()
        }
    }

    pub(crate) fn latest_committed_epoch(&self) -> Option<Epoch> {
        self.history.back().map(|c| c.epoch)
    }

    /// Records the commit of the pending epoch with `config`, committed on
    /// the acks of `acked`.
    pub(crate) fn record_commit(&mut self, config: &Configuration, acked: SledSet) {
        let Some(pending) = self.pending.take() else {
            return;
        };
        if self.history.is_full()
            && let Some(oldest) = self.history.pop_front()
        {
            self.forgotten_below = Some(Epoch(oldest.epoch.0.saturating_add(1)));
        }
        // Cannot fail after making room.
        let _ = self.history.push_back(CommitRecord {
            epoch: pending.request.epoch(),
            members: pending.members,
            acked,
            confirmed: SledSet::EMPTY,
        });
        self.removed = self.removed.union(self.members.minus(pending.members));
        self.members = pending.members;
        match &mut self.latest {
            Some(latest) => latest.clone_from(config),
            None => self.latest = Some(config.clone()),
        }
        self.on_lrtq = false;
    }

    /// Checks what a decoded state must satisfy: it was written by this
    /// machine, but the file may be corrupt or from another build.
    pub(crate) fn check(&self) -> Result<(), crate::RestoreError> {
        use crate::RestoreError as E;
        let everyone = self.roster.all();
        if self.roster.has_repeats() {
            return Err(E::RosterRepeats);
        }
        let sets = [self.lrtq, self.members, self.removed];
        let histories = self
            .history
            .iter()
            .flat_map(|c| [c.members, c.acked, c.confirmed]);
        if sets
            .into_iter()
            .chain(histories)
            .any(|s| !s.minus(everyone).is_empty())
        {
            return Err(E::UnknownSled);
        }
        if !self.members.intersection(self.removed).is_empty() {
            return Err(E::RemovedMember);
        }
        let increasing = self
            .history
            .iter()
            .zip(self.history.iter().skip(1))
            .all(|(a, b)| a.epoch < b.epoch);
        let last = self.latest_committed_epoch();
        if !increasing
            || last.is_some_and(|e| e > self.highest_started)
            || self.latest.as_ref().map(Configuration::epoch) != last
            || self.on_lrtq && last.is_some()
        {
            return Err(E::Epochs);
        }
        if self
            .latest
            .as_ref()
            .is_some_and(|c| c.rack_id() != self.rack_id)
        {
            return Err(E::RackId);
        }
        if let Some(pending) = &self.pending {
            let request = &pending.request;
            let epoch = request.epoch();
            let members_fit = request.members().len() == pending.members.len()
                && request.members().as_slice().iter().all(|id| {
                    self.roster
                        .place_of(id)
                        .is_some_and(|p| pending.members.contains(p))
                });
            let kind_fits = matches!(request, Request::Upgrade(_)) == self.on_lrtq;
            if !members_fit || !pending.members.contains(pending.coordinator) || !kind_fits {
                return Err(E::Pending);
            }
            if epoch > self.highest_started
                || last.is_some_and(|l| epoch <= l)
                || request.last_committed() != last
            {
                return Err(E::Epochs);
            }
            if request.rack_id() != self.rack_id {
                return Err(E::RackId);
            }
        }
        Ok(())
    }
}
