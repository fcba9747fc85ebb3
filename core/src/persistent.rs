//! What a node must never lose (PROTOCOL.md section 4). The caller stores it
//! whenever a call reports it changed, and before sending anything queued.

use core::fmt;
use serde::{Deserialize, Serialize};

use crate::config::Configuration;
use crate::crypto::{LrtqShare, Share, ShareDigest};
use crate::ids::{Epoch, PlatformId, RackId};
use crate::limits::{LRTQ_TOTAL_SHARES, MAX_STORED_CONFIGS};

/// What an LRTQ sled kept in its old ledger, read once at upgrade time.
/// Holds a secret share, so it has no `PartialEq`: compare encodings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LrtqShareData {
    /// The rack, as LRTQ knew it.
    pub rack_id: RackId,
    /// LRTQ threshold (`n/2 + 1` at rack setup).
    pub threshold: u8,
    /// This sled's LRTQ share.
    pub share: LrtqShare,
    /// Digests of all LRTQ shares made at setup, spares included.
    pub share_digests: heapless::Vec<ShareDigest, LRTQ_TOTAL_SHARES, u8>,
}

impl LrtqShareData {
    /// Whether `digest` is the digest of one of the rack's LRTQ shares.
    pub fn is_known_digest(&self, digest: &ShareDigest) -> bool {
        self.share_digests.iter().any(|d| d == digest)
    }
}

/// A configuration this node knows, with its own share once it has one
/// (from a `Prepare`, or computed after a `CommitAdvance`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct StoredConfig {
    /// The configuration.
    pub config: Configuration,
    /// This node's share for that epoch, if it has it yet.
    pub share: Option<Share>,
}

/// The node learned it is not a member of a committed configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expunged {
    /// The committed epoch it is not a member of.
    pub epoch: Epoch,
    /// Who said so.
    pub from: PlatformId,
}

/// Why a persistent state was refused (at decode) or a change to it refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum StateError {
    /// Stored configurations are not in strictly increasing epoch order.
    ConfigsNotSorted,
    /// The committed epoch has no stored configuration with a share.
    CommittedConfigMissing,
    /// Configurations of different racks.
    MixedRacks,
    /// A different configuration is already stored for this epoch.
    MismatchedConfiguration,
    /// The configuration is not newer than the latest commit.
    NotNewerThanCommitted,
    /// Every slot holds a newer configuration; this one is dropped.
    Full,
}

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::ConfigsNotSorted => "stored configurations are not sorted by epoch",
            Self::CommittedConfigMissing => "committed configuration or its share is missing",
            Self::MixedRacks => "stored configurations belong to different racks",
            Self::MismatchedConfiguration => "a different configuration exists for this epoch",
            Self::NotNewerThanCommitted => "configuration is not newer than the latest commit",
            Self::Full => "no room for another newer configuration",
        })
    }
}

impl core::error::Error for StateError {}

/// What storing a configuration did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Stored {
    /// It was new and is stored.
    Added,
    /// It was already stored; a missing share was filled in if given.
    AlreadyThere,
    /// It is stored, and the oldest uncommitted configuration the caller
    /// knows to be abandoned or superseded was dropped to make room.
    AddedDroppingOldest(Epoch),
}

/// Which stored configurations [`PersistentState::store`] may drop when
/// every slot is taken. Only the caller knows: a node that missed a commit
/// cannot tell a configuration Nexus committed (on its ack, perhaps) from
/// one Nexus abandoned, and dropping the first loses a share of the rack's
/// current secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) enum MakeRoom {
    /// Nexus named this node's latest commit as the rack's latest (a
    /// coordinator storing the configuration it starts): every stored
    /// uncommitted configuration was abandoned.
    DropAbandoned,
    /// The incoming configuration is committed (`CommitAdvance`): every
    /// uncommitted configuration older than it is superseded.
    DropSuperseded,
    /// The incoming configuration was started when this epoch (`None`: no
    /// epoch) was the latest Nexus committed (a `Prepare`): every older
    /// uncommitted configuration but that one was abandoned or is
    /// superseded.
    KeepLastCommitted(Option<Epoch>),
}

/// The node's persistent state. Holds at most [`MAX_STORED_CONFIGS`]
/// configurations: the latest committed one and newer ones.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(try_from = "StateFields")]
pub struct PersistentState(StateFields);

/// The fields of [`PersistentState`] as they are encoded.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StateFields {
    /// LRTQ share data, if this sled came from an LRTQ rack.
    pub lrtq: Option<LrtqShareData>,
    /// Known configurations, strictly increasing epochs.
    pub configs: heapless::Vec<StoredConfig, MAX_STORED_CONFIGS, u8>,
    /// The latest committed epoch.
    pub latest_committed: Option<Epoch>,
    /// Set once, forever.
    pub expunged: Option<Expunged>,
}

impl TryFrom<StateFields> for PersistentState {
    type Error = StateError;

    fn try_from(fields: StateFields) -> Result<Self, StateError> {
        let configs = &fields.configs;
        if !configs
            .windows(2)
            .all(|w| matches!(w, [a, b] if a.config.epoch() < b.config.epoch()))
        {
            return Err(StateError::ConfigsNotSorted);
        }
        if let Some(first) = configs.first() {
            let rack = first.config.rack_id();
            if configs.iter().any(|c| c.config.rack_id() != rack) {
                return Err(StateError::MixedRacks);
            }
        }
        if let Some(epoch) = fields.latest_committed {
            let held = configs
                .iter()
                .any(|c| c.config.epoch() == epoch && c.share.is_some());
            if !held {
                return Err(StateError::CommittedConfigMissing);
            }
        }
        Ok(Self(fields))
    }
}

impl PersistentState {
    /// A new sled's state: nothing yet.
    pub const fn new() -> Self {
        Self(StateFields {
            lrtq: None,
            configs: heapless::Vec::new(),
            latest_committed: None,
            expunged: None,
        })
    }

    /// A sled upgraded from LRTQ starts with its LRTQ share data.
    pub fn with_lrtq(lrtq: LrtqShareData) -> Self {
        let mut state = Self::new();
        state.0.lrtq = Some(lrtq);
        state
    }

    /// All fields, read-only.
    pub fn fields(&self) -> &StateFields {
        &self.0
    }

    /// The LRTQ share data, if any.
    pub fn lrtq(&self) -> Option<&LrtqShareData> {
        self.0.lrtq.as_ref()
    }

    /// The latest committed epoch.
    pub fn latest_committed_epoch(&self) -> Option<Epoch> {
        self.0.latest_committed
    }

    /// The latest committed configuration with this node's share.
    pub fn latest_committed(&self) -> Option<&StoredConfig> {
        self.get(self.0.latest_committed?)
    }

    /// The stored configuration of `epoch`.
    pub fn get(&self, epoch: Epoch) -> Option<&StoredConfig> {
        self.0.configs.iter().find(|c| c.config.epoch() == epoch)
    }

    /// The highest epoch this node has a configuration for.
    pub fn latest_epoch(&self) -> Option<Epoch> {
        self.0.configs.last().map(|c| c.config.epoch())
    }

    /// Whether the node was expunged.
    pub fn expunged(&self) -> Option<&Expunged> {
        self.0.expunged.as_ref()
    }

    /// Whether `epoch` is committed (it or a later epoch was committed).
    pub fn is_committed(&self, epoch: Epoch) -> bool {
        self.0.latest_committed.is_some_and(|c| epoch <= c)
    }

    /// Stores a configuration newer than the latest commit, with this node's
    /// share if known, dropping what `room` allows if every slot is taken.
    /// See [`Stored`] for the outcomes.
    pub(crate) fn store(
        &mut self,
        config: &Configuration,
        share: Option<&Share>,
        room: MakeRoom,
    ) -> Result<Stored, StateError> {
        let epoch = config.epoch();
        if self.0.latest_committed.is_some_and(|c| epoch <= c) {
            return Err(StateError::NotNewerThanCommitted);
        }
        if let Some(existing) = self
            .0
            .configs
            .iter_mut()
            .find(|c| c.config.epoch() == epoch)
        {
            if existing.config != *config {
                return Err(StateError::MismatchedConfiguration);
            }
            if existing.share.is_none() {
                existing.share = share.cloned();
            }
            return Ok(Stored::AlreadyThere);
        }
        let mut dropped = None;
        if self.0.configs.is_full() {
            dropped = Some(self.drop_oldest_uncommitted(epoch, room)?);
        }
        let position = self
            .0
            .configs
            .iter()
            .position(|c| c.config.epoch() > epoch)
            .unwrap_or(self.0.configs.len());
        let entry = StoredConfig {
            config: config.clone(),
            share: share.cloned(),
        };
        self.0
            .configs
            .insert(position, entry)
            .map_err(|_| StateError::Full)?;
        Ok(dropped.map_or(Stored::Added, Stored::AddedDroppingOldest))
    }

    /// Frees a slot for `incoming` by dropping the oldest uncommitted
    /// configuration older than it that `room` allows to drop.
    fn drop_oldest_uncommitted(
        &mut self,
        incoming: Epoch,
        room: MakeRoom,
    ) -> Result<Epoch, StateError> {
        let committed = self.0.latest_committed;
        let keep = match room {
            MakeRoom::KeepLastCommitted(epoch) => epoch,
            MakeRoom::DropAbandoned | MakeRoom::DropSuperseded => None,
        };
        let oldest = self
            .0
            .configs
            .iter()
            .position(|c| {
                let epoch = c.config.epoch();
                committed.is_none_or(|e| epoch > e) && epoch < incoming && Some(epoch) != keep
            })
            .ok_or(StateError::Full)?;
        let oldest_epoch = self
            .0
            .configs
            .get(oldest)
            .map(|c| c.config.epoch())
            .ok_or(StateError::Full)?;
        self.0.configs.remove(oldest);
        Ok(oldest_epoch)
    }

    /// Sets this node's share for a stored configuration.
    pub(crate) fn set_share(&mut self, epoch: Epoch, share: &Share) -> bool {
        match self
            .0
            .configs
            .iter_mut()
            .find(|c| c.config.epoch() == epoch)
        {
            Some(stored) => {
                stored.share = Some(share.clone());
                true
            }
            None => false,
        }
    }

    /// Records the commit of `epoch`, which must be stored with a share, and
    /// drops every older configuration. Returns false (changing nothing) if
    /// it is not stored with a share.
    pub(crate) fn commit(&mut self, epoch: Epoch) -> bool {
        let ready = self.get(epoch).is_some_and(|stored| stored.share.is_some());
        if !ready {
            return false;
        }
        if self.0.latest_committed.is_none_or(|c| c < epoch) {
            self.0.latest_committed = Some(epoch);
            self.0.configs.retain(|c| c.config.epoch() >= epoch);
        }
        true
    }

    /// Records an expungement. Permanent: a second one is ignored.
    pub(crate) fn set_expunged(&mut self, epoch: Epoch, from: &PlatformId) {
        if self.0.expunged.is_none() {
            self.0.expunged = Some(Expunged {
                epoch,
                from: from.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::fields;

    fn config(epoch: u64) -> Configuration {
        let mut f = fields(4, 2);
        f.epoch = Epoch(epoch);
        Configuration::new(f).unwrap()
    }

    fn share(epoch: u64) -> Share {
        Share::new(1, &[epoch as u8; 32]).unwrap()
    }

    /// Epoch 1 committed, then epochs 2 and 3 prepared: every slot taken.
    fn full_state() -> PersistentState {
        let mut state = PersistentState::new();
        for epoch in 1..=3 {
            let room = MakeRoom::KeepLastCommitted(None);
            state
                .store(&config(epoch), Some(&share(epoch)), room)
                .unwrap();
        }
        assert!(state.commit(Epoch(1)));
        assert_eq!(state.fields().configs.len(), MAX_STORED_CONFIGS);
        state
    }

    fn epochs(state: &PersistentState) -> std::vec::Vec<u64> {
        state
            .fields()
            .configs
            .iter()
            .map(|c| c.config.epoch().0)
            .collect()
    }

    #[test]
    fn a_prepare_keeps_the_epoch_nexus_may_have_committed() {
        // Regression (found by the cluster fuzz target): epoch 2 was
        // committed by Nexus on this node's ack, the node missed the commit,
        // and prepares of abandoned epochs 3 and 4 arrived. Dropping the
        // oldest uncommitted configuration would lose the share of 2.
        let mut state = full_state();
        let room = MakeRoom::KeepLastCommitted(Some(Epoch(2)));
        assert_eq!(
            state.store(&config(4), Some(&share(4)), room),
            Ok(Stored::AddedDroppingOldest(Epoch(3)))
        );
        assert_eq!(epochs(&state), [1, 2, 4]);
        assert!(state.get(Epoch(2)).unwrap().share.is_some());
        // Epoch 4 abandoned too: 5 replaces it, 2 stays.
        assert_eq!(
            state.store(&config(5), Some(&share(5)), room),
            Ok(Stored::AddedDroppingOldest(Epoch(4)))
        );
        assert_eq!(epochs(&state), [1, 2, 5]);
    }

    #[test]
    fn a_prepare_started_after_the_node_s_commit_drops_the_oldest_abandoned() {
        let mut state = full_state();
        let room = MakeRoom::KeepLastCommitted(Some(Epoch(1)));
        assert_eq!(
            state.store(&config(4), Some(&share(4)), room),
            Ok(Stored::AddedDroppingOldest(Epoch(2)))
        );
        assert_eq!(epochs(&state), [1, 3, 4]);
    }

    #[test]
    fn a_prepare_with_nothing_to_drop_is_refused() {
        let mut state = full_state();
        // Epoch 2 may be committed; 3 is newer than the incoming epoch.
        let room = MakeRoom::KeepLastCommitted(Some(Epoch(2)));
        let mut newer = PersistentState::new();
        for epoch in [1, 2, 5] {
            newer
                .store(&config(epoch), Some(&share(epoch)), room)
                .unwrap();
        }
        assert!(newer.commit(Epoch(1)));
        assert_eq!(
            newer.store(&config(4), Some(&share(4)), room),
            Err(StateError::Full)
        );
        assert_eq!(epochs(&newer), [1, 2, 5]);
        // The committed configuration is never dropped, though the oldest.
        let room = MakeRoom::KeepLastCommitted(Some(Epoch(3)));
        let _ = state.store(&config(4), Some(&share(4)), room);
        assert_eq!(epochs(&state), [1, 3, 4]);
    }

    #[test]
    fn a_committed_or_coordinated_configuration_drops_the_oldest_uncommitted() {
        for room in [MakeRoom::DropSuperseded, MakeRoom::DropAbandoned] {
            let mut state = full_state();
            assert_eq!(
                state.store(&config(4), None, room),
                Ok(Stored::AddedDroppingOldest(Epoch(2)))
            );
            assert_eq!(epochs(&state), [1, 3, 4]);
            // Older than every uncommitted one: nothing older to drop.
            assert_eq!(state.store(&config(2), None, room), Err(StateError::Full));
            assert_eq!(epochs(&state), [1, 3, 4]);
        }
    }
}
