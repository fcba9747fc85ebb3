//! A configuration: who the members of one epoch are, and how to check their
//! shares. Public data: it is stored by every member and sent in the clear
//! (inside the authenticated channel).

use core::fmt;
use serde::{Deserialize, Serialize};

use crate::crypto::ShareDigest;
use crate::crypto::rack_secret::RackSecret;
use crate::crypto::sealed::{EncryptedRackSecrets, OpenError, RetainedSecrets};
use crate::ids::{Epoch, PlatformId, RackId, Threshold};
use crate::limits::{MAX_MEMBERS, MIN_MEMBERS};

/// One member of a configuration and the digest of the share it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "model", derive(Hash))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct Member {
    /// The sled.
    pub id: PlatformId,
    /// SHA3-256 of the share the sled holds for this epoch.
    pub share_digest: ShareDigest,
}

/// The members of a configuration, in strictly increasing `PlatformId` order.
pub type Members = heapless::Vec<Member, MAX_MEMBERS, u8>;

/// Why a configuration was refused. Every check runs both when one is built
/// and when one is decoded, so an invalid configuration never exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum ConfigError {
    /// Fewer than `MIN_MEMBERS` or more than `MAX_MEMBERS` members.
    MemberCount,
    /// Members not in strictly increasing order, so some id is repeated or
    /// the x-coordinates would be ambiguous.
    MembersNotSorted,
    /// The threshold is not strictly below the member count.
    ThresholdTooLarge,
    /// The coordinator is not a member.
    CoordinatorNotMember,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::MemberCount => "member count out of range",
            Self::MembersNotSorted => "members are not sorted and unique",
            Self::ThresholdTooLarge => "threshold is not below the member count",
            Self::CoordinatorNotMember => "coordinator is not a member",
        })
    }
}

impl core::error::Error for ConfigError {}

/// A validated configuration (PROTOCOL.md section 3).
///
/// The in-place decoder of [`crate::wire`] is its postcard decoder; serde's
/// derived decoder (checking every rule too) exists for JSON and Nexus's
/// answers on the host (feature `host`) and as that decoder's oracle in
/// tests.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(
    any(test, feature = "host"),
    derive(Deserialize),
    serde(try_from = "ConfigFields")
)]
#[cfg_attr(feature = "model", derive(Hash))]
pub struct Configuration(ConfigFields);

/// The fields of a configuration, as they go on the wire.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "model", derive(Hash))]
#[cfg_attr(feature = "schema", derive(schemars::JsonSchema))]
pub struct ConfigFields {
    /// The rack this configuration belongs to.
    pub rack_id: RackId,
    /// Its epoch.
    pub epoch: Epoch,
    /// The member that ran the reconfiguration.
    pub coordinator: PlatformId,
    /// Members and share digests, sorted by id. A member's share has
    /// x-coordinate (position + 1).
    #[cfg_attr(
        feature = "schema",
        schemars(
            with = "std::vec::Vec<Member>",
            length(min = "MIN_MEMBERS", max = "MAX_MEMBERS")
        )
    )]
    pub members: Members,
    /// Shares needed to rebuild the secret.
    pub threshold: Threshold,
    /// Retained old secrets, encrypted under this epoch's secret. Absent in a
    /// fresh rack's first configuration.
    pub encrypted_rack_secrets: Option<EncryptedRackSecrets>,
}

impl TryFrom<ConfigFields> for Configuration {
    type Error = ConfigError;

    fn try_from(fields: ConfigFields) -> Result<Self, ConfigError> {
        check(&fields)?;
        Ok(Self(fields))
    }
}

/// The rules every configuration keeps: shared by [`Configuration::new`],
/// the in-place decoder of [`crate::wire`], and the coordinator building
/// one in place.
pub(crate) fn check(fields: &ConfigFields) -> Result<(), ConfigError> {
    let count = fields.members.len();
    if !(MIN_MEMBERS..=MAX_MEMBERS).contains(&count) {
        return Err(ConfigError::MemberCount);
    }
    if !fields
        .members
        .windows(2)
        .all(|w| matches!(w, [a, b] if a.id < b.id))
    {
        return Err(ConfigError::MembersNotSorted);
    }
    if !fields.threshold.fits_member_count(count) {
        return Err(ConfigError::ThresholdTooLarge);
    }
    if !fields.members.iter().any(|m| m.id == fields.coordinator) {
        return Err(ConfigError::CoordinatorNotMember);
    }
    Ok(())
}

impl Configuration {
    /// A slot for the in-place decoder of [`crate::wire`] to fill: *not* a
    /// valid configuration (it has no members) until filled and checked.
    /// Building it writes only lengths, so it costs no stack copy.
    pub(crate) const fn unfilled() -> Self {
        Self(ConfigFields {
            rack_id: RackId([0; 16]),
            epoch: Epoch(0),
            coordinator: PlatformId::unfilled(),
            members: heapless::Vec::new(),
            threshold: Threshold::UNFILLED,
            encrypted_rack_secrets: None,
        })
    }

    /// Copies this configuration into `slot` field by field, so no whole
    /// configuration is built on the stack on the way.
    pub(crate) fn copy_into(&self, slot: &mut Configuration) {
        let (from, to) = (&self.0, &mut slot.0);
        to.rack_id = from.rack_id;
        to.epoch = from.epoch;
        to.coordinator.clone_from(&from.coordinator);
        to.members.clear();
        for member in &from.members {
            // Cannot fail: both lists have the same capacity.
            if to.members.push(member.clone()).is_err() {
                break;
            }
        }
        to.threshold = from.threshold;
        to.encrypted_rack_secrets
            .clone_from(&from.encrypted_rack_secrets);
    }

    /// The fields, for the in-place decoder of [`crate::wire`] only: it
    /// runs [`check`] before the value is used as a configuration.
    pub(crate) fn fields_mut_unchecked(&mut self) -> &mut ConfigFields {
        &mut self.0
    }

    /// Builds a configuration, checking every rule.
    pub fn new(fields: ConfigFields) -> Result<Self, ConfigError> {
        Self::try_from(fields)
    }

    /// All fields, read-only.
    pub fn fields(&self) -> &ConfigFields {
        &self.0
    }

    /// The rack.
    pub fn rack_id(&self) -> RackId {
        self.0.rack_id
    }

    /// The epoch.
    pub fn epoch(&self) -> Epoch {
        self.0.epoch
    }

    /// The coordinator.
    pub fn coordinator(&self) -> &PlatformId {
        &self.0.coordinator
    }

    /// The threshold `K`.
    pub fn threshold(&self) -> Threshold {
        self.0.threshold
    }

    /// Members with their share digests, in x-coordinate order.
    pub fn members(&self) -> &[Member] {
        &self.0.members
    }

    /// The encrypted old secrets, if any.
    pub fn encrypted_rack_secrets(&self) -> Option<&EncryptedRackSecrets> {
        self.0.encrypted_rack_secrets.as_ref()
    }

    /// The old secrets this configuration carries, opened with its own
    /// `secret` (none for a fresh rack's first configuration).
    pub fn retained_secrets(&self, secret: &RackSecret) -> Result<RetainedSecrets, OpenError> {
        match &self.0.encrypted_rack_secrets {
            None => Ok(RetainedSecrets::new()),
            Some(sealed) => sealed.decrypt(&self.0.rack_id, self.0.epoch, secret),
        }
    }

    /// Whether `id` is a member.
    pub fn is_member(&self, id: &PlatformId) -> bool {
        self.x_coordinate(id).is_some()
    }

    /// The share x-coordinate of member `id`: its 1-based position.
    pub fn x_coordinate(&self, id: &PlatformId) -> Option<u8> {
        let index = self.0.members.binary_search_by(|m| m.id.cmp(id)).ok()?;
        // At most MAX_MEMBERS (32) members, so index + 1 fits a u8.
        u8::try_from(index + 1).ok()
    }

    /// The share digest listed for member `id`.
    pub fn share_digest(&self, id: &PlatformId) -> Option<&ShareDigest> {
        let index = self.0.members.binary_search_by(|m| m.id.cmp(id)).ok()?;
        self.0.members.get(index).map(|m| &m.share_digest)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn platform(n: usize) -> PlatformId {
        let mut serial = heapless::String::<8>::new();
        core::fmt::write(&mut serial, format_args!("SN{n:04}")).unwrap();
        PlatformId::new(crate::ids::SLED_PART_NUMBER, &serial).unwrap()
    }

    pub(crate) fn fields(count: usize, k: u8) -> ConfigFields {
        let mut members = Members::new();
        for i in 0..count {
            members
                .push(Member {
                    id: platform(i),
                    share_digest: ShareDigest([i as u8; 32]),
                })
                .unwrap();
        }
        ConfigFields {
            rack_id: RackId([7; 16]),
            epoch: Epoch(3),
            coordinator: platform(0),
            members,
            threshold: Threshold::new(k).unwrap(),
            encrypted_rack_secrets: None,
        }
    }

    #[test]
    fn a_valid_configuration_maps_members_to_x_coordinates() {
        let config = Configuration::new(fields(5, 3)).unwrap();
        assert_eq!(config.x_coordinate(&platform(0)), Some(1));
        assert_eq!(config.x_coordinate(&platform(4)), Some(5));
        assert_eq!(config.x_coordinate(&platform(5)), None);
        assert_eq!(
            config.share_digest(&platform(2)),
            Some(&ShareDigest([2; 32]))
        );
        assert!(config.is_member(&platform(3)));
    }

    #[test]
    fn member_count_bounds_are_enforced() {
        assert_eq!(
            Configuration::new(fields(2, 2)).err(),
            Some(ConfigError::MemberCount)
        );
        assert!(Configuration::new(fields(3, 2)).is_ok());
        assert!(Configuration::new(fields(MAX_MEMBERS, 31)).is_ok());
    }

    #[test]
    fn threshold_must_be_below_member_count() {
        assert_eq!(
            Configuration::new(fields(4, 4)).err(),
            Some(ConfigError::ThresholdTooLarge)
        );
    }

    #[test]
    fn members_must_be_sorted_and_unique() {
        let mut f = fields(4, 2);
        f.members.swap(1, 2);
        assert_eq!(
            Configuration::new(f).err(),
            Some(ConfigError::MembersNotSorted)
        );
        let mut f = fields(4, 2);
        f.members[2].id = platform(1);
        assert_eq!(
            Configuration::new(f).err(),
            Some(ConfigError::MembersNotSorted)
        );
    }

    #[test]
    fn coordinator_must_be_a_member() {
        let mut f = fields(4, 2);
        f.coordinator = platform(9);
        assert_eq!(
            Configuration::new(f).err(),
            Some(ConfigError::CoordinatorNotMember)
        );
    }
}
