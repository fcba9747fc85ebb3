//! Decoding the big values straight into caller-owned storage: the only
//! decoders of peer messages, configurations, persistent states, LRTQ
//! share data and Nexus's requests (member sets).
//!
//! serde's derived code builds a value field by field in locals, then moves
//! it through `TryFrom` conversions and `Result`s: every layer is another
//! copy on the stack, and a configuration is about 4 KiB, LRTQ share data
//! about 8 KiB, a persistent state about 20 KiB, a member set about 2 KiB
//! (the derived decoder of a Nexus request took an 8.5 KiB frame). The seeds here read the
//! same postcard encoding (the field order and shapes of the derived
//! `Serialize` impls) but write each field where it will live, so at most
//! one small field is in flight; a value is checked with the same rules as
//! its `TryFrom` impl once it is complete. Those types derive `Deserialize`
//! in tests only, as the oracle these decoders are checked against
//! (`wire/tests.rs`).
//!
//! After an error the storage holds a partly written value that breaks the
//! type's rules: callers reset or discard it.

use core::fmt;

use serde::Deserialize;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, Expected, IgnoredAny, SeqAccess,
    VariantAccess, Visitor,
};

use crate::api::{LrtqUpgradeMsg, ReconfigureMsg};
use crate::config::Configuration;
use crate::crypto::sealed::EncryptedRackSecrets;
use crate::crypto::{LrtqShare, Share};
use crate::ids::{Epoch, LrtqThreshold, RackId};
use crate::limits::MAX_STORED_CONFIGS;
use crate::member_set::{MemberSet, sort_and_check};
use crate::messages::{Body, Envelope, NoConfig};
use crate::persistent::{LrtqShareData, PersistentState, StoredConfig, push_unfilled};

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
pub(crate) struct ConfigInto<'a>(pub(super) &'a mut Configuration);

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
        field_into(
            &mut seq,
            SealedInto(&mut fields.encrypted_rack_secrets),
            5,
            expected,
        )?;
        crate::config::check(fields).map_err(de::Error::custom)
    }
}

/// A configuration's optional [`EncryptedRackSecrets`], written into an
/// existing option: the derived decoder built the ciphertext (up to
/// `MAX_SEALED_LEN` bytes) in several places on the stack on its way.
struct SealedInto<'a>(&'a mut Option<EncryptedRackSecrets>);

const SEALED_FIELDS: &[&str] = &["salt", "ciphertext"];

impl<'de> DeserializeSeed<'de> for SealedInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_option(self)
    }
}

impl<'de> Visitor<'de> for SealedInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("optional encrypted rack secrets")
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        *self.0 = None;
        Ok(())
    }
    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let sealed = self.0.get_or_insert_with(EncryptedRackSecrets::unfilled);
        deserializer.deserialize_struct(
            "EncryptedRackSecrets",
            SEALED_FIELDS,
            SealedFieldsInto(sealed),
        )
    }
}

struct SealedFieldsInto<'a>(&'a mut EncryptedRackSecrets);

impl<'de> Visitor<'de> for SealedFieldsInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("encrypted rack secrets")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let expected = &"encrypted rack secrets";
        let (salt, ciphertext) = self.0.parts_mut_unchecked();
        *salt = field(&mut seq, 0, expected)?;
        field_into(&mut seq, VecInto(ciphertext), 1, expected)?;
        self.0.check_len().map_err(de::Error::custom)
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
        LrtqDataInto(self.0).deserialize(deserializer)
    }
}

/// [`LrtqShareData`], written into an existing option (made `Some`): on
/// its own, or as the inside of a state's optional LRTQ data.
pub(super) struct LrtqDataInto<'a>(pub(super) &'a mut Option<LrtqShareData>);

impl<'de> DeserializeSeed<'de> for LrtqDataInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
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
        let threshold: LrtqThreshold = field(&mut seq, 1, expected)?;
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
    threshold: LrtqThreshold,
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

/// What a peer message decoded in place holds where a configuration goes:
/// a [`Configuration`], or nothing at all in a [`SmallPeerMsg`], which
/// refuses the two bodies that carry one.
pub(crate) trait ConfigPart: Sized {
    /// A placeholder to decode into; `None` if this type holds none.
    fn unfilled() -> Option<Self>;
    /// The seed that decodes a configuration into `self`.
    fn seed(&mut self) -> ConfigInto<'_>;
}

impl ConfigPart for Configuration {
    fn unfilled() -> Option<Self> {
        Some(Configuration::unfilled())
    }
    fn seed(&mut self) -> ConfigInto<'_> {
        ConfigInto(self)
    }
}

impl ConfigPart for NoConfig {
    fn unfilled() -> Option<Self> {
        None
    }
    fn seed(&mut self) -> ConfigInto<'_> {
        match *self {}
    }
}

/// A peer message ([`crate::messages::Envelope`]), written into an
/// existing one.
pub(super) struct PeerMsgInto<'a, C: ConfigPart>(pub(super) &'a mut PeerMsgWith<C>);

impl<'de, C: ConfigPart> DeserializeSeed<'de> for PeerMsgInto<'_, C> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("Envelope", &["rack_id", "body"], self)
    }
}

impl<'de, C: ConfigPart> Visitor<'de> for PeerMsgInto<'_, C> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a peer message")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let expected = &"a peer message";
        self.0.rack_id = field(&mut seq, 0, expected)?;
        field_into(&mut seq, BodyInto(&mut self.0.body), 1, expected)
    }
}

/// A peer message whose configuration part is `C`.
pub(super) type PeerMsgWith<C> = Envelope<C, Share, LrtqShare>;

/// A message body: switched to the variant read, whose parts are then
/// decoded where they stay.
struct BodyInto<'a, C: ConfigPart>(&'a mut Body<C, Share, LrtqShare>);

impl<'de, C: ConfigPart> DeserializeSeed<'de> for BodyInto<'_, C> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_enum("Body", BODY_VARIANTS, self)
    }
}

impl<'de, C: ConfigPart> Visitor<'de> for BodyInto<'_, C> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a message body")
    }
    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<(), A::Error> {
        let (index, variant) = data.variant::<u32>()?;
        if !switch_variant(self.0, index) {
            return Err(de::Error::invalid_value(
                de::Unexpected::Unsigned(u64::from(index)),
                &"variant index 0 <= i < 8",
            ));
        }
        match self.0 {
            Body::Prepare {
                config,
                share,
                last_committed,
            } => variant.struct_variant(
                &["config", "share", "last_committed"],
                PrepareInto {
                    config: config.seed(),
                    share,
                    last_committed,
                },
            ),
            Body::PrepareAck(epoch) | Body::GetShare(epoch) | Body::Expunged(epoch) => {
                *epoch = variant.newtype_variant()?;
                Ok(())
            }
            Body::Share { epoch, share } => {
                variant.struct_variant(&["epoch", "share"], ShareInto { epoch, share })
            }
            Body::GetLrtqShare => variant.unit_variant(),
            Body::LrtqShare(share) => {
                *share = variant.newtype_variant()?;
                Ok(())
            }
            Body::CommitAdvance(config) => variant.newtype_variant_seed(config.seed()),
        }
    }
}

/// Makes `body` the variant of wire tag `index`, with unfilled parts
/// unless it already is that variant; false for an unknown tag, and for a
/// body with a configuration if `C` holds none. Out of line: assigning a
/// body may build it on the stack first (it is about 4 KiB with a
/// configuration).
#[inline(never)]
fn switch_variant<C: ConfigPart>(body: &mut Body<C, Share, LrtqShare>, index: u32) -> bool {
    if body.tag() == index {
        return true;
    }
    *body = match index {
        0 => match C::unfilled() {
            Some(config) => Body::Prepare {
                config,
                share: Share::unfilled(),
                last_committed: None,
            },
            None => return false,
        },
        1 => Body::PrepareAck(Epoch(0)),
        2 => Body::GetShare(Epoch(0)),
        3 => Body::Share {
            epoch: Epoch(0),
            share: Share::unfilled(),
        },
        4 => Body::GetLrtqShare,
        5 => Body::LrtqShare(LrtqShare::unfilled()),
        6 => Body::Expunged(Epoch(0)),
        7 => match C::unfilled() {
            Some(config) => Body::CommitAdvance(config),
            None => return false,
        },
        _ => return false,
    };
    true
}

struct PrepareInto<'a> {
    config: ConfigInto<'a>,
    share: &'a mut Share,
    last_committed: &'a mut Option<Epoch>,
}

impl<'de> Visitor<'de> for PrepareInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a prepare")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let expected = &"a prepare";
        field_into(&mut seq, self.config, 0, expected)?;
        *self.share = field(&mut seq, 1, expected)?;
        *self.last_committed = field(&mut seq, 2, expected)?;
        Ok(())
    }
}

struct ShareInto<'a> {
    epoch: &'a mut Epoch,
    share: &'a mut Share,
}

impl<'de> Visitor<'de> for ShareInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a share")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let expected = &"a share";
        *self.epoch = field(&mut seq, 0, expected)?;
        *self.share = field(&mut seq, 1, expected)?;
        Ok(())
    }
}

/// A [`MemberSet`], its list filled in place, then sorted and checked.
struct MemberSetInto<'a>(&'a mut MemberSet);

impl<'de> DeserializeSeed<'de> for MemberSetInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        let ids = self.0.ids_mut_unchecked();
        VecInto(&mut *ids).deserialize(deserializer)?;
        sort_and_check(ids).map_err(de::Error::custom)
    }
}

const RECONFIGURE_FIELDS: &[&str] = &[
    "rack_id",
    "epoch",
    "last_committed_epoch",
    "members",
    "threshold",
];

/// A [`ReconfigureMsg`], written into an existing one.
pub(super) struct ReconfigureInto<'a>(pub(super) &'a mut ReconfigureMsg);

impl<'de> DeserializeSeed<'de> for ReconfigureInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("ReconfigureMsg", RECONFIGURE_FIELDS, self)
    }
}

impl<'de> Visitor<'de> for ReconfigureInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a reconfiguration request")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let expected = &"a reconfiguration request";
        let msg = self.0;
        msg.rack_id = field(&mut seq, 0, expected)?;
        msg.epoch = field(&mut seq, 1, expected)?;
        msg.last_committed_epoch = field(&mut seq, 2, expected)?;
        field_into(&mut seq, MemberSetInto(&mut msg.members), 3, expected)?;
        msg.threshold = field(&mut seq, 4, expected)?;
        Ok(())
    }
}

const LRTQ_UPGRADE_FIELDS: &[&str] = &["rack_id", "epoch", "members", "threshold"];

/// An [`LrtqUpgradeMsg`], written into an existing one.
pub(super) struct LrtqUpgradeInto<'a>(pub(super) &'a mut LrtqUpgradeMsg);

impl<'de> DeserializeSeed<'de> for LrtqUpgradeInto<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_struct("LrtqUpgradeMsg", LRTQ_UPGRADE_FIELDS, self)
    }
}

impl<'de> Visitor<'de> for LrtqUpgradeInto<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an LRTQ upgrade request")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let expected = &"an LRTQ upgrade request";
        let msg = self.0;
        msg.rack_id = field(&mut seq, 0, expected)?;
        msg.epoch = field(&mut seq, 1, expected)?;
        field_into(&mut seq, MemberSetInto(&mut msg.members), 2, expected)?;
        msg.threshold = field(&mut seq, 3, expected)?;
        Ok(())
    }
}
