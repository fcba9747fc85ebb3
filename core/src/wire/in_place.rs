//! Decoding the big values straight into caller-owned storage.
//!
//! serde's derived code builds a value field by field in locals, then moves
//! it through `TryFrom` conversions and `Result`s: every layer is another
//! copy on the stack, and a configuration is about 4 KiB, a persistent state
//! about 20 KiB. The seeds here read the same postcard encoding (the field
//! order and shapes of the derived `Serialize` impls) but write each field
//! where it will live, so at most one small field is in flight; a value is
//! checked with the same rules as its `TryFrom` impl once it is complete.
//!
//! After an error the storage holds a partly written value that breaks the
//! type's rules: callers reset or discard it.

use core::fmt;

use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Expected, IgnoredAny, SeqAccess,
    VariantAccess, Visitor,
};

use crate::config::Configuration;
use crate::crypto::{LrtqShare, Share};
use crate::ids::{Epoch, RackId};
use crate::limits::MAX_STORED_CONFIGS;
use crate::messages::{Body, Envelope, PeerMsg, PeerMsgRef};
use crate::persistent::{LrtqShareData, PersistentState, StateFields, StoredConfig};

/// Reads field `index` of a struct; postcard yields every field, in order.
fn field<'de, A: SeqAccess<'de>, T: Deserialize<'de>>(
    seq: &mut A,
    index: usize,
    expected: &dyn Expected,
) -> Result<T, A::Error> {
    seq.next_element()?
        .ok_or_else(|| de::Error::invalid_length(index, expected))
}

/// Reads field `index` of a struct into the place `seed` writes to.
fn field_into<'de, A: SeqAccess<'de>, S: DeserializeSeed<'de, Value = ()>>(
    seq: &mut A,
    seed: S,
    index: usize,
    expected: &dyn Expected,
) -> Result<(), A::Error> {
    seq.next_element_seed(seed)?
        .ok_or_else(|| de::Error::invalid_length(index, expected))
}

/// A sequence pushed element by element into a `heapless::Vec`, refused
/// when longer than its capacity (as heapless's own `Deserialize` does).
struct VecInto<'a, T, L: heapless::LenType, const N: usize>(&'a mut heapless::Vec<T, N, L>);

impl<'de, T: Deserialize<'de>, L: heapless::LenType, const N: usize> DeserializeSeed<'de>
    for VecInto<'_, T, L, N>
{
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de, T: Deserialize<'de>, L: heapless::LenType, const N: usize> Visitor<'de>
    for VecInto<'_, T, L, N>
{
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a bounded sequence")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.clear();
        while let Some(value) = seq.next_element()? {
            if self.0.push(value).is_err() {
                return Err(de::Error::invalid_length(N + 1, &self));
            }
        }
        Ok(())
    }
}

const CONFIG_FIELDS: &[&str] = &[
    "rack_id",
    "epoch",
    "coordinator",
    "members",
    "threshold",
    "encrypted_rack_secrets",
];

/// A [`Configuration`], written into an existing one and then checked.
pub(super) struct ConfigInto<'a>(pub(super) &'a mut Configuration);

impl<'de> DeserializeSeed<'de> for ConfigInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("ConfigFields", CONFIG_FIELDS, self)
    }
}

impl<'de> Visitor<'de> for ConfigInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a configuration")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let expected = &"a configuration";
        let fields = self.0.fields_mut_unchecked();
        fields.rack_id = field(&mut seq, 0, expected)?;
        fields.epoch = field(&mut seq, 1, expected)?;
        fields.coordinator = field(&mut seq, 2, expected)?;
        field_into(&mut seq, VecInto(&mut fields.members), 3, expected)?;
        fields.threshold = field(&mut seq, 4, expected)?;
        fields.encrypted_rack_secrets = field(&mut seq, 5, expected)?;
        crate::config::check(fields).map_err(de::Error::custom)
    }
}

/// A [`StoredConfig`], written into an existing one.
struct StoredInto<'a>(&'a mut StoredConfig);

impl<'de> DeserializeSeed<'de> for StoredInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("StoredConfig", &["config", "share"], self)
    }
}

impl<'de> Visitor<'de> for StoredInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a stored configuration")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let expected = &"a stored configuration";
        field_into(&mut seq, ConfigInto(&mut self.0.config), 0, expected)?;
        self.0.share = field(&mut seq, 1, expected)?;
        Ok(())
    }
}

type StoredConfigs = heapless::Vec<StoredConfig, MAX_STORED_CONFIGS, u8>;

/// The stored configurations, decoded one at a time into their slots.
struct ConfigsInto<'a>(&'a mut StoredConfigs);

impl<'de> DeserializeSeed<'de> for ConfigsInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ConfigsInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a bounded sequence of stored configurations")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.0.clear();
        loop {
            let Some(slot) = push_unfilled(self.0) else {
                // Full: one more element is too many (postcard cannot skip
                // it, so reading it is an error too).
                return match seq.next_element::<IgnoredAny>()? {
                    None => Ok(()),
                    Some(_) => Err(de::Error::invalid_length(MAX_STORED_CONFIGS + 1, &self)),
                };
            };
            if seq.next_element_seed(StoredInto(slot))?.is_none() {
                // `truncate` drops the unused slot where it is, unlike `pop`,
                // which would move it out onto the stack.
                let filled = self.0.len().saturating_sub(1);
                self.0.truncate(filled);
                return Ok(());
            }
        }
    }
}

/// Appends an empty slot, or `None` if there is no room. Kept out of line
/// so the one temporary it builds is not part of any caller's frame.
#[inline(never)]
fn push_unfilled(configs: &mut StoredConfigs) -> Option<&mut StoredConfig> {
    configs
        .push(StoredConfig {
            config: Configuration::unfilled(),
            share: None,
        })
        .ok()?;
    configs.last_mut()
}

const LRTQ_FIELDS: &[&str] = &["rack_id", "threshold", "share", "share_digests"];

/// `Option<LrtqShareData>`, written into an existing option.
struct LrtqInto<'a>(&'a mut Option<LrtqShareData>);

impl<'de> DeserializeSeed<'de> for LrtqInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for LrtqInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("optional LRTQ share data")
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        *self.0 = None;
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("LrtqShareData", LRTQ_FIELDS, LrtqFieldsInto(self.0))
    }
}

struct LrtqFieldsInto<'a>(&'a mut Option<LrtqShareData>);

impl<'de> Visitor<'de> for LrtqFieldsInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LRTQ share data")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let expected = &"LRTQ share data";
        let rack_id: RackId = field(&mut seq, 0, expected)?;
        let threshold: u8 = field(&mut seq, 1, expected)?;
        let share: LrtqShare = field(&mut seq, 2, expected)?;
        let data = fill_lrtq(self.0, rack_id, threshold, share);
        field_into(&mut seq, VecInto(&mut data.share_digests), 3, expected)
    }
}

/// Sets the small fields of the LRTQ data, making room for it if needed.
/// Kept out of line for the same reason as [`push_unfilled`].
#[inline(never)]
fn fill_lrtq(
    slot: &mut Option<LrtqShareData>,
    rack_id: RackId,
    threshold: u8,
    share: LrtqShare,
) -> &mut LrtqShareData {
    match slot {
        Some(data) => {
            data.rack_id = rack_id;
            data.threshold = threshold;
            data.share = share;
            data
        }
        None => slot.insert(LrtqShareData {
            rack_id,
            threshold,
            share,
            share_digests: heapless::Vec::new(),
        }),
    }
}

const STATE_FIELDS: &[&str] = &["lrtq", "configs", "latest_committed", "expunged"];

/// A [`PersistentState`], written into an existing one and then checked.
pub(super) struct StateInto<'a>(pub(super) &'a mut PersistentState);

impl<'de> DeserializeSeed<'de> for StateInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("StateFields", STATE_FIELDS, self)
    }
}

impl<'de> Visitor<'de> for StateInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a persistent state")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let expected = &"a persistent state";
        let fields = self.0.fields_mut_unchecked();
        field_into(&mut seq, LrtqInto(&mut fields.lrtq), 0, expected)?;
        field_into(&mut seq, ConfigsInto(&mut fields.configs), 1, expected)?;
        fields.latest_committed = field(&mut seq, 2, expected)?;
        fields.expunged = field(&mut seq, 3, expected)?;
        crate::persistent::check(fields).map_err(de::Error::custom)
    }
}

/// Empties a state after a failed decode, field by field (assigning a new
/// state would build it on the stack first).
pub(super) fn reset(fields: &mut StateFields) {
    fields.lrtq = None;
    fields.configs.clear();
    fields.latest_committed = None;
    fields.expunged = None;
}

/// Which [`Body`] variant a [`PeerMsgSlot`] holds, in the variants' order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Prepare,
    PrepareAck,
    GetShare,
    Share,
    GetLrtqShare,
    LrtqShare,
    Expunged,
    CommitAdvance,
}

const BODY_VARIANTS: &[&str] = &[
    "Prepare",
    "PrepareAck",
    "GetShare",
    "Share",
    "GetLrtqShare",
    "LrtqShare",
    "Expunged",
    "CommitAdvance",
];

/// A decoded peer message, flat: one slot per kind of part, so a body's
/// configuration is decoded where it stays. Read it through
/// [`PeerMsgSlot::as_msg`].
#[derive(Debug)]
pub(crate) struct PeerMsgSlot {
    rack_id: RackId,
    kind: Kind,
    config: Configuration,
    share: Option<Share>,
    lrtq_share: Option<LrtqShare>,
    epoch: Epoch,
    last_committed: Option<Epoch>,
}

impl PeerMsgSlot {
    /// An empty slot (it holds no message until a decode succeeds).
    pub(crate) const fn new() -> Self {
        Self {
            rack_id: RackId([0; 16]),
            kind: Kind::GetLrtqShare,
            config: Configuration::unfilled(),
            share: None,
            lrtq_share: None,
            epoch: Epoch(0),
            last_committed: None,
        }
    }

    /// The message, borrowing its parts. `None` only for a slot no decode
    /// succeeded on.
    pub(crate) fn as_msg(&self) -> Option<PeerMsgRef<'_>> {
        let body = match self.kind {
            Kind::Prepare => Body::Prepare {
                config: &self.config,
                share: self.share.as_ref()?,
                last_committed: self.last_committed,
            },
            Kind::PrepareAck => Body::PrepareAck(self.epoch),
            Kind::GetShare => Body::GetShare(self.epoch),
            Kind::Share => Body::Share {
                epoch: self.epoch,
                share: self.share.as_ref()?,
            },
            Kind::GetLrtqShare => Body::GetLrtqShare,
            Kind::LrtqShare => Body::LrtqShare(self.lrtq_share.as_ref()?),
            Kind::Expunged => Body::Expunged(self.epoch),
            Kind::CommitAdvance => Body::CommitAdvance(&self.config),
        };
        Some(Envelope {
            rack_id: self.rack_id,
            body,
        })
    }

    /// The owned message, moving the parts out. `None` as for `as_msg`.
    pub(crate) fn into_msg(self) -> Option<PeerMsg> {
        let Self {
            rack_id,
            kind,
            config,
            share,
            lrtq_share,
            epoch,
            last_committed,
        } = self;
        let body = match kind {
            Kind::Prepare => Body::Prepare {
                config,
                share: share?,
                last_committed,
            },
            Kind::PrepareAck => Body::PrepareAck(epoch),
            Kind::GetShare => Body::GetShare(epoch),
            Kind::Share => Body::Share {
                epoch,
                share: share?,
            },
            Kind::GetLrtqShare => Body::GetLrtqShare,
            Kind::LrtqShare => Body::LrtqShare(lrtq_share?),
            Kind::Expunged => Body::Expunged(epoch),
            Kind::CommitAdvance => Body::CommitAdvance(config),
        };
        Some(Envelope { rack_id, body })
    }
}

/// A peer message ([`crate::messages::Envelope`]), written into a slot.
pub(super) struct PeerMsgInto<'a>(pub(super) &'a mut PeerMsgSlot);

impl<'de> DeserializeSeed<'de> for PeerMsgInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("Envelope", &["rack_id", "body"], self)
    }
}

impl<'de> Visitor<'de> for PeerMsgInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a peer message")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let expected = &"a peer message";
        self.0.rack_id = field(&mut seq, 0, expected)?;
        field_into(&mut seq, BodyInto(self.0), 1, expected)
    }
}

struct BodyInto<'a>(&'a mut PeerMsgSlot);

impl<'de> DeserializeSeed<'de> for BodyInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_enum("Body", BODY_VARIANTS, self)
    }
}

impl<'de> Visitor<'de> for BodyInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message body")
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let (index, variant) = data.variant::<u32>()?;
        let slot = self.0;
        slot.kind = match index {
            0 => {
                variant
                    .struct_variant(&["config", "share", "last_committed"], PrepareInto(slot))?;
                Kind::Prepare
            }
            1 => {
                slot.epoch = variant.newtype_variant()?;
                Kind::PrepareAck
            }
            2 => {
                slot.epoch = variant.newtype_variant()?;
                Kind::GetShare
            }
            3 => {
                variant.struct_variant(&["epoch", "share"], ShareInto(slot))?;
                Kind::Share
            }
            4 => {
                variant.unit_variant()?;
                Kind::GetLrtqShare
            }
            5 => {
                slot.lrtq_share = Some(variant.newtype_variant()?);
                Kind::LrtqShare
            }
            6 => {
                slot.epoch = variant.newtype_variant()?;
                Kind::Expunged
            }
            7 => {
                variant.newtype_variant_seed(ConfigInto(&mut slot.config))?;
                Kind::CommitAdvance
            }
            other => {
                return Err(de::Error::invalid_value(
                    de::Unexpected::Unsigned(u64::from(other)),
                    &"variant index 0 <= i < 8",
                ));
            }
        };
        Ok(())
    }
}

struct PrepareInto<'a>(&'a mut PeerMsgSlot);

impl<'de> Visitor<'de> for PrepareInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a prepare")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let expected = &"a prepare";
        field_into(&mut seq, ConfigInto(&mut self.0.config), 0, expected)?;
        self.0.share = Some(field(&mut seq, 1, expected)?);
        self.0.last_committed = field(&mut seq, 2, expected)?;
        Ok(())
    }
}

struct ShareInto<'a>(&'a mut PeerMsgSlot);

impl<'de> Visitor<'de> for ShareInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a share")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let expected = &"a share";
        self.0.epoch = field(&mut seq, 0, expected)?;
        self.0.share = Some(field(&mut seq, 1, expected)?);
        Ok(())
    }
}
