//! What a node must never lose (PROTOCOL.md section 4). The caller stores it
//! whenever it changed, and before sending anything queued (the driving
//! contract of [`crate::node`]).
//!
//! Every change goes through a method here that bumps the state's
//! [`Revision`] only if something really changed, so "must this be stored?"
//! is a comparison of revisions, never a flag some path forgot to set, and a
//! call that changed nothing never costs a write.

use core::fmt;
use serde::{Deserialize, Serialize};

use crate::config::{ConfigError, ConfigFields, Configuration};
use crate::crypto::{LrtqShare, Share, ShareDigest};
use crate::ids::{Epoch, LrtqThreshold, PlatformId, RackId};
use crate::limits::{LRTQ_TOTAL_SHARES, MAX_STORED_CONFIGS};

/// What an LRTQ sled kept in its old ledger, read once at upgrade time.
/// Holds a secret share, so it has no `PartialEq`: compare encodings. Only
/// the in-place decoder of [`crate::wire`] decodes it: serde's derived
/// decoder exists in tests only, as that decoder's oracle.
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
#[cfg_attr(feature = "model", derive(Hash))]
pub struct LrtqShareData {
    /// The rack, as LRTQ knew it.
    pub rack_id: RackId,
    /// LRTQ threshold (`n/2 + 1` at rack setup).
    pub threshold: LrtqThreshold,
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
#[derive(Clone, Debug, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
#[cfg_attr(feature = "model", derive(Hash))]
pub struct StoredConfig {
    /// The configuration.
    pub config: Configuration,
    /// This node's share for that epoch, if it has it yet.
    pub share: Option<Share>,
}

/// The node learned it is not a member of a committed configuration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "model", derive(Hash))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
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
    /// No slot is free. Never expected: the node drops obsolete
    /// configurations before storing (see `MAX_STORED_CONFIGS`).
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
            Self::Full => "no room for another configuration",
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
}

/// The node's persistent state. Holds at most [`MAX_STORED_CONFIGS`]
/// configurations: the latest committed one and newer ones. Only the
/// in-place decoder of [`crate::wire`] decodes it (and a
/// [`StoredConfig`]): serde's derived decoders exist in tests only, as that
/// decoder's oracle.
#[derive(Clone, Debug, Default)]
pub struct PersistentState {
    fields: StateFields,
    /// Not encoded: it only tells changes apart in memory.
    revision: Revision,
}

/// Which change of a [`PersistentState`] this is: bumped by every change
/// and by nothing else. A caller that stored the state at revision `r`
/// must store it again exactly when the revision is no longer `r`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Revision(u64);

impl Revision {
    /// The revision of a state as [`PersistentState::new`] makes it.
    pub(crate) const ZERO: Self = Self(0);
}

/// The fields only: the revision tells changes apart in memory, nothing
/// more.
#[cfg(feature = "model")]
impl core::hash::Hash for PersistentState {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        let Self {
            fields,
            revision: _,
        } = self;
        fields.hash(h);
    }
}

impl Serialize for PersistentState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.fields.serialize(serializer)
    }
}

#[cfg(test)]
impl<'de> serde::Deserialize<'de> for PersistentState {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let fields = StateFields::deserialize(deserializer)?;
        Self::try_from(fields).map_err(serde::de::Error::custom)
    }
}

/// The fields of [`PersistentState`] as they are encoded.
#[derive(Clone, Debug, Default, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
#[cfg_attr(feature = "model", derive(Hash))]
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
        check(&fields)?;
        Ok(Self {
            fields,
            revision: Revision::default(),
        })
    }
}

/// The rules every persistent state keeps: shared by
/// `PersistentState::try_from` and the in-place decoder of [`crate::wire`].
pub(crate) fn check(fields: &StateFields) -> Result<(), StateError> {
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
    Ok(())
}

impl PersistentState {
    /// A new sled's state: nothing yet.
    pub const fn new() -> Self {
        Self {
            fields: StateFields {
                lrtq: None,
                configs: heapless::Vec::new(),
                latest_committed: None,
                expunged: None,
            },
            revision: Revision(0),
        }
    }

    /// Empties the state in place, field by field (assigning a new state
    /// would build 20 KiB on the stack first). Counts as a change.
    pub(crate) fn clear(&mut self) {
        self.changed();
        self.fields.lrtq = None;
        self.fields.configs.clear();
        self.fields.latest_committed = None;
        self.fields.expunged = None;
    }

    /// The revision of this state (see [`Revision`]).
    pub fn revision(&self) -> Revision {
        self.revision
    }

    /// Records that the state changed.
    fn changed(&mut self) {
        self.revision.0 = self.revision.0.wrapping_add(1);
    }

    /// A sled upgraded from LRTQ starts with its LRTQ share data. Built by
    /// value (about 20 KiB, with about 8 KiB of data passed in): a caller
    /// with a small stack sets the data into its context's state in place
    /// with [`crate::node::NodeCtx::restore_lrtq`].
    pub fn with_lrtq(lrtq: LrtqShareData) -> Self {
        let mut state = Self::new();
        state.fields.lrtq = Some(lrtq);
        state
    }

    /// Whether the state holds nothing at all, as [`Self::new`] makes it.
    pub fn is_empty(&self) -> bool {
        let fields = &self.fields;
        fields.lrtq.is_none()
            && fields.configs.is_empty()
            && fields.latest_committed.is_none()
            && fields.expunged.is_none()
    }

    /// All fields, read-only.
    pub fn fields(&self) -> &StateFields {
        &self.fields
    }

    /// The fields, for the in-place decoder of [`crate::wire`] only: it
    /// runs [`check`] on them before the state is used. Counts as a change.
    pub(crate) fn fields_mut_unchecked(&mut self) -> &mut StateFields {
        self.changed();
        &mut self.fields
    }

    /// The LRTQ share data, if any.
    pub fn lrtq(&self) -> Option<&LrtqShareData> {
        self.fields.lrtq.as_ref()
    }

    /// The LRTQ share data's place, to decode into: no rule of the state
    /// involves it, so whatever is written there keeps the state valid.
    /// Counts as a change.
    pub(crate) fn lrtq_mut(&mut self) -> &mut Option<LrtqShareData> {
        self.changed();
        &mut self.fields.lrtq
    }

    /// The latest committed epoch.
    pub fn latest_committed_epoch(&self) -> Option<Epoch> {
        self.fields.latest_committed
    }

    /// The latest committed configuration with this node's share.
    pub fn latest_committed(&self) -> Option<&StoredConfig> {
        self.get(self.fields.latest_committed?)
    }

    /// The stored configuration of `epoch`.
    pub fn get(&self, epoch: Epoch) -> Option<&StoredConfig> {
        self.fields
            .configs
            .iter()
            .find(|c| c.config.epoch() == epoch)
    }

    /// The highest epoch this node has a configuration for.
    pub fn latest_epoch(&self) -> Option<Epoch> {
        self.fields.configs.last().map(|c| c.config.epoch())
    }

    /// Whether the node was expunged.
    pub fn expunged(&self) -> Option<&Expunged> {
        self.fields.expunged.as_ref()
    }

    /// Whether `epoch` is committed (it or a later epoch was committed).
    pub fn is_committed(&self, epoch: Epoch) -> bool {
        self.fields.latest_committed.is_some_and(|c| epoch <= c)
    }

    /// Stores a configuration newer than the latest commit, with this node's
    /// share if known. See [`Stored`] for the outcomes.
    pub(crate) fn store(
        &mut self,
        config: &Configuration,
        share: Option<&Share>,
    ) -> Result<Stored, StateError> {
        let epoch = config.epoch();
        if self.fields.latest_committed.is_some_and(|c| epoch <= c) {
            return Err(StateError::NotNewerThanCommitted);
        }
        if let Some(existing) = self
            .fields
            .configs
            .iter_mut()
            .find(|c| c.config.epoch() == epoch)
        {
            if existing.config != *config {
                return Err(StateError::MismatchedConfiguration);
            }
            if existing.share.is_none() && share.is_some() {
                existing.share = share.cloned();
                self.changed();
            }
            return Ok(Stored::AlreadyThere);
        }
        let slot = self.new_slot(epoch)?;
        config.copy_into(&mut slot.config);
        slot.share = share.cloned();
        self.changed();
        Ok(Stored::Added)
    }

    /// Stores a new configuration of `epoch`, newer than the latest commit,
    /// with this node's `share`: `build` writes it straight into its slot in
    /// the state, so it is never on the stack, and it is then checked as
    /// [`Configuration::new`] checks. If `build` fails or breaks a rule,
    /// nothing is stored.
    ///
    /// A configuration of `epoch` already stored is refused as
    /// `MismatchedConfiguration` without building: the only builder is a
    /// coordinator, which makes each configuration from a fresh secret, so
    /// the new one cannot equal it.
    pub(crate) fn store_built<E: From<StateError> + From<ConfigError>>(
        &mut self,
        epoch: Epoch,
        share: &Share,
        build: impl FnOnce(&mut ConfigFields) -> Result<(), E>,
    ) -> Result<(), E> {
        if self.is_committed(epoch) {
            return Err(StateError::NotNewerThanCommitted.into());
        }
        if self.get(epoch).is_some() {
            return Err(StateError::MismatchedConfiguration.into());
        }
        let slot = self.new_slot(epoch)?;
        let fields = slot.config.fields_mut_unchecked();
        let built = build(fields);
        // Whatever `build` wrote, the slot keeps the epoch it was placed for.
        fields.epoch = epoch;
        match built.and_then(|()| Ok(crate::config::check(fields)?)) {
            Ok(()) => {
                slot.share = Some(share.clone());
                self.changed();
                Ok(())
            }
            Err(error) => {
                self.fields.configs.retain(|c| c.config.epoch() != epoch);
                Err(error)
            }
        }
    }

    /// Makes room for a configuration of `epoch` (not stored yet) at its
    /// place in epoch order and returns the slot, to be filled at once:
    /// until then it holds an invalid configuration.
    fn new_slot(&mut self, epoch: Epoch) -> Result<&mut StoredConfig, StateError> {
        let configs = &mut self.fields.configs;
        let position = configs
            .iter()
            .position(|c| c.config.epoch() > epoch)
            .unwrap_or(configs.len());
        push_unfilled(configs).ok_or(StateError::Full)?;
        // Moved down one neighbour at a time: `insert`, `rotate_right` and
        // `slice::swap` would each hold a whole entry on the stack.
        for at in (position + 1..configs.len()).rev() {
            if let Some((before, [after, ..])) = configs.split_at_mut_checked(at)
                && let Some(last) = before.last_mut()
            {
                core::mem::swap(last, after);
            }
        }
        let slot = configs.get_mut(position).ok_or(StateError::Full)?;
        slot.config.fields_mut_unchecked().epoch = epoch;
        Ok(slot)
    }

    /// Drops every uncommitted configuration whose epoch `obsolete` names.
    /// The node calls this when a newer configuration proves them abandoned
    /// or superseded; it never guesses, because it cannot tell an abandoned
    /// epoch from one Nexus committed without telling it.
    pub(crate) fn drop_uncommitted(&mut self, obsolete: impl Fn(Epoch) -> bool) {
        let committed = self.fields.latest_committed;
        let before = self.fields.configs.len();
        self.fields.configs.retain(|c| {
            let epoch = c.config.epoch();
            committed.is_some_and(|l| epoch <= l) || !obsolete(epoch)
        });
        if self.fields.configs.len() != before {
            self.changed();
        }
    }

    /// Sets this node's share for a stored configuration that has none
    /// (a computed share); false, changing nothing, if that configuration
    /// is not stored or already holds a share.
    pub(crate) fn set_share(&mut self, epoch: Epoch, share: &Share) -> bool {
        let slot = self
            .fields
            .configs
            .iter_mut()
            .find(|c| c.config.epoch() == epoch)
            .filter(|c| c.share.is_none());
        match slot {
            Some(stored) => {
                stored.share = Some(share.clone());
                self.changed();
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
        if self.fields.latest_committed.is_none_or(|c| c < epoch) {
            self.fields.latest_committed = Some(epoch);
            self.fields.configs.retain(|c| c.config.epoch() >= epoch);
            self.changed();
        }
        true
    }

    /// Records an expungement. Permanent: a second one is ignored.
    pub(crate) fn set_expunged(&mut self, epoch: Epoch, from: &PlatformId) {
        if self.fields.expunged.is_none() {
            self.fields.expunged = Some(Expunged {
                epoch,
                from: from.clone(),
            });
            self.changed();
        }
    }
}

/// Appends an empty slot, or `None` if there is no room. The slot is
/// written where it stays (`push` would build the entry on the stack and
/// return it back inside its `Result` when full).
pub(crate) fn push_unfilled(
    configs: &mut heapless::Vec<StoredConfig, MAX_STORED_CONFIGS, u8>,
) -> Option<&mut StoredConfig> {
    // A constant whose bytes are mostly undefined (the lists' unused
    // room) is written where it stays; a value built by a closure went
    // through a 1.4 KiB temporary first.
    const UNFILLED: StoredConfig = StoredConfig {
        config: Configuration::unfilled(),
        share: None,
    };
    configs.push_mut(UNFILLED).ok()
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

    fn share() -> Share {
        Share::new(1, &[5; 32]).unwrap()
    }

    fn epochs(state: &PersistentState) -> heapless::Vec<u64, 8> {
        state
            .fields()
            .configs
            .iter()
            .map(|c| c.config.epoch().0)
            .collect()
    }

    #[test]
    fn any_part_makes_a_state_not_empty() {
        assert!(PersistentState::new().is_empty());
        let mut configs = PersistentState::new();
        configs.store(&config(2), None).unwrap();
        let mut committed = configs.clone();
        committed.set_share(Epoch(2), &share());
        assert!(committed.commit(Epoch(2)));
        // Only the commit mark left: not a valid state, but not empty.
        let mut mark = PersistentState::new();
        mark.fields.latest_committed = Some(Epoch(2));
        let mut expunged = PersistentState::new();
        expunged.set_expunged(Epoch(3), &crate::config::tests::platform(1));
        let mut lrtq = PersistentState::new();
        *lrtq.lrtq_mut() = Some(LrtqShareData {
            rack_id: RackId([7; 16]),
            threshold: LrtqThreshold::new(2).unwrap(),
            share: LrtqShare::from_bytes(&[1; 33]).unwrap(),
            share_digests: heapless::Vec::new(),
        });
        for state in [configs, committed, mark, expunged, lrtq] {
            assert!(!state.is_empty());
        }
    }

    #[test]
    fn the_store_is_bounded_and_never_evicts_by_itself() {
        let mut state = PersistentState::new();
        for e in 1..=MAX_STORED_CONFIGS as u64 {
            assert_eq!(state.store(&config(e), Some(&share())), Ok(Stored::Added));
        }
        assert_eq!(
            state.store(&config(9), Some(&share())),
            Err(StateError::Full)
        );
        assert_eq!(epochs(&state), [1, 2, 3]);
    }

    #[test]
    fn repeats_fill_in_a_share_and_mismatches_are_refused() {
        let mut state = PersistentState::new();
        state.store(&config(2), None).unwrap();
        assert_eq!(
            state.store(&config(2), Some(&share())),
            Ok(Stored::AlreadyThere)
        );
        assert!(state.get(Epoch(2)).unwrap().share.is_some());
        let mut other = config(2).fields().clone();
        other.threshold = crate::ids::Threshold::new(3).unwrap();
        let other = Configuration::new(other).unwrap();
        assert_eq!(
            state.store(&other, None),
            Err(StateError::MismatchedConfiguration)
        );
    }

    #[test]
    fn commits_drop_older_and_drop_uncommitted_spares_commits() {
        let mut state = PersistentState::new();
        for e in [1, 2, 3] {
            state.store(&config(e), Some(&share())).unwrap();
        }
        assert!(state.commit(Epoch(2)));
        assert_eq!(epochs(&state), [2, 3]);
        assert_eq!(
            state.store(&config(1), None),
            Err(StateError::NotNewerThanCommitted)
        );
        state.drop_uncommitted(|_| true);
        assert_eq!(epochs(&state), [2]);
        assert!(!state.commit(Epoch(7)), "not stored");
        assert_eq!(state.latest_committed_epoch(), Some(Epoch(2)));
    }

    /// What `store_built` reports, as one type for the tests.
    #[derive(Debug, PartialEq)]
    enum BuildError {
        State(StateError),
        Config(ConfigError),
        Builder,
    }

    impl From<StateError> for BuildError {
        fn from(e: StateError) -> Self {
            Self::State(e)
        }
    }

    impl From<ConfigError> for BuildError {
        fn from(e: ConfigError) -> Self {
            Self::Config(e)
        }
    }

    fn build_like(
        model: Configuration,
    ) -> impl FnOnce(&mut ConfigFields) -> Result<(), BuildError> {
        move |fields| {
            *fields = model.fields().clone();
            Ok(())
        }
    }

    #[test]
    fn configurations_built_in_place_are_stored_in_epoch_order() {
        let mut state = PersistentState::new();
        state.store(&config(1), Some(&share())).unwrap();
        state.store(&config(3), None).unwrap();
        assert_eq!(
            state.store_built(Epoch(2), &share(), build_like(config(2))),
            Ok(())
        );
        assert_eq!(epochs(&state), [1, 2, 3]);
        assert!(state.get(Epoch(2)).unwrap().config == config(2));
        assert!(state.get(Epoch(2)).unwrap().share.is_some());
        // The slots around it kept their contents.
        assert!(state.get(Epoch(1)).unwrap().config == config(1));
        assert!(state.get(Epoch(3)).unwrap().config == config(3));
        assert!(state.get(Epoch(3)).unwrap().share.is_none());
        assert_eq!(
            state.store_built(Epoch(4), &share(), build_like(config(4))),
            Err(BuildError::State(StateError::Full))
        );
        assert!(state.commit(Epoch(2)));
        assert_eq!(
            state.store_built(Epoch(2), &share(), build_like(config(2))),
            Err(BuildError::State(StateError::NotNewerThanCommitted))
        );
        // The epoch is the slot's, whatever the builder wrote.
        assert_eq!(
            state.store_built(Epoch(6), &share(), build_like(config(7))),
            Ok(())
        );
        assert_eq!(epochs(&state), [2, 3, 6]);
        assert!(state.get(Epoch(6)).unwrap().config == config(6));
    }

    #[test]
    fn a_built_configuration_that_fails_leaves_no_trace() {
        let mut state = PersistentState::new();
        state.store(&config(3), None).unwrap();
        let too_few = |fields: &mut ConfigFields| {
            *fields = config(2).fields().clone();
            fields.members.truncate(2);
            Ok(())
        };
        assert_eq!(
            state.store_built(Epoch(2), &share(), too_few),
            Err(BuildError::Config(ConfigError::MemberCount))
        );
        let failing = |_: &mut ConfigFields| Err(BuildError::Builder);
        assert_eq!(
            state.store_built(Epoch(4), &share(), failing),
            Err(BuildError::Builder)
        );
        assert_eq!(epochs(&state), [3]);
        assert!(state.get(Epoch(3)).unwrap().config == config(3));
    }

    #[test]
    fn a_built_configuration_never_replaces_a_stored_one() {
        let mut state = PersistentState::new();
        state.store(&config(3), None).unwrap();
        // Even an identical one: a builder makes it from a fresh secret.
        assert_eq!(
            state.store_built(Epoch(3), &share(), build_like(config(3))),
            Err(BuildError::State(StateError::MismatchedConfiguration))
        );
        assert!(state.get(Epoch(3)).unwrap().share.is_none());
    }

    #[test]
    fn decoding_checks_the_state_invariants() {
        let mut unsorted = StateFields::default();
        for e in [3, 2] {
            unsorted
                .configs
                .push(StoredConfig {
                    config: config(e),
                    share: None,
                })
                .unwrap();
        }
        assert_eq!(
            PersistentState::try_from(unsorted).err(),
            Some(StateError::ConfigsNotSorted)
        );
        let missing = StateFields {
            latest_committed: Some(Epoch(1)),
            ..StateFields::default()
        };
        assert_eq!(
            PersistentState::try_from(missing).err(),
            Some(StateError::CommittedConfigMissing)
        );
        let mut mixed = StateFields::default();
        let mut other_rack = config(4).fields().clone();
        other_rack.rack_id = RackId([9; 16]);
        for c in [config(3), Configuration::new(other_rack).unwrap()] {
            mixed
                .configs
                .push(StoredConfig {
                    config: c,
                    share: None,
                })
                .unwrap();
        }
        assert_eq!(
            PersistentState::try_from(mixed).err(),
            Some(StateError::MixedRacks)
        );
    }
}
