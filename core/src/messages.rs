//! What nodes say to each other, and what Nexus asks of a node
//! (PROTOCOL.md sections 5 and 6). Plain data: validation of the parts
//! happens as they are built or decoded; the protocol rules live in the node.

use core::fmt;
#[cfg(test)]
use serde::Deserialize;
use serde::Serialize;

use crate::config::Configuration;
use crate::crypto::{LrtqShare, Share};
use crate::ids::{Epoch, PlatformId, RackId, Threshold};
use crate::limits::MAX_MEMBERS;

/// A message between nodes. Generic over how the large parts are held, so
/// that a node sends borrowed parts ([`PeerMsgRef`]) and a receiver decodes
/// owned ones ([`PeerMsg`]) with one wire definition: a coordinator
/// preparing 32 members never holds 32 copies of its configuration.
///
/// Only the in-place decoder of [`crate::wire`] decodes a message: serde's
/// derived decoders of `Envelope` and [`Body`] exist in tests only, as that
/// decoder's oracle.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct Envelope<C, S, L> {
    /// Every message names its rack; a mismatch drops it.
    pub rack_id: RackId,
    /// What is said.
    pub body: Body<C, S, L>,
}

impl<C, S, L> Envelope<C, S, L> {
    /// The same message with its parts borrowed: turns a decoded
    /// [`PeerMsg`] into the [`PeerMsgRef`] the encoder takes, so a received
    /// message can be re-encoded (forwarded, logged as bytes, checked for a
    /// round trip) without cloning its secrets.
    pub fn as_ref(&self) -> Envelope<&C, &S, &L> {
        Envelope {
            rack_id: self.rack_id,
            body: self.body.as_ref(),
        }
    }
}

/// An owned peer message, as decoded.
pub type PeerMsg = Envelope<Configuration, Share, LrtqShare>;

/// A borrowed peer message, as sent.
pub type PeerMsgRef<'a> = Envelope<&'a Configuration, &'a Share, &'a LrtqShare>;

/// The body of a peer message. The variant order is the wire tag order:
/// only ever append.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub enum Body<C, S, L> {
    /// Coordinator to member: the new configuration and that member's share.
    Prepare {
        /// The configuration being prepared.
        config: C,
        /// The receiving member's share.
        share: S,
        /// The epoch Nexus named as committed when it started this
        /// reconfiguration (`None` for a rack's first configuration). Not in
        /// PROTOCOL.md's table: it is how a member that missed that commit
        /// learns it, so that it never drops a committed configuration to
        /// make room (see `PersistentState::supersede`).
        last_committed: Option<Epoch>,
    },
    /// Member to coordinator: the prepare is stored durably.
    PrepareAck(Epoch),
    /// Asks a member for its share of a configuration.
    GetShare(Epoch),
    /// The answer to `GetShare`.
    Share {
        /// The configuration the share belongs to.
        epoch: Epoch,
        /// The share.
        share: S,
    },
    /// An LRTQ upgrade coordinator asks for the LRTQ share.
    GetLrtqShare,
    /// The answer to `GetLrtqShare`.
    LrtqShare(L),
    /// "You are not a member of committed epoch `epoch`."
    Expunged(Epoch),
    /// "You are behind: this newer configuration committed."
    CommitAdvance(C),
}

impl<C, S, L> Body<C, S, L> {
    /// The same body with its parts borrowed (see [`Envelope::as_ref`]).
    pub fn as_ref(&self) -> Body<&C, &S, &L> {
        match self {
            Self::Prepare {
                config,
                share,
                last_committed,
            } => Body::Prepare {
                config,
                share,
                last_committed: *last_committed,
            },
            Self::PrepareAck(epoch) => Body::PrepareAck(*epoch),
            Self::GetShare(epoch) => Body::GetShare(*epoch),
            Self::Share { epoch, share } => Body::Share {
                epoch: *epoch,
                share,
            },
            Self::GetLrtqShare => Body::GetLrtqShare,
            Self::LrtqShare(share) => Body::LrtqShare(share),
            Self::Expunged(epoch) => Body::Expunged(*epoch),
            Self::CommitAdvance(config) => Body::CommitAdvance(config),
        }
    }

    /// The variant's name, for logs and counters (never the contents).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Prepare { .. } => "Prepare",
            Self::PrepareAck(_) => "PrepareAck",
            Self::GetShare(_) => "GetShare",
            Self::Share { .. } => "Share",
            Self::GetLrtqShare => "GetLrtqShare",
            Self::LrtqShare(_) => "LrtqShare",
            Self::Expunged(_) => "Expunged",
            Self::CommitAdvance(_) => "CommitAdvance",
        }
    }
}

/// A set of sleds: sorted, no repeats, at most [`MAX_MEMBERS`]. Decoding
/// refuses repeats and a list out of order (a set has one encoding).
///
/// Only the in-place decoder of [`crate::wire`] decodes it: serde's derived
/// decoder exists in tests only, as that decoder's oracle.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
#[cfg_attr(
    test,
    derive(Deserialize),
    serde(try_from = "heapless::Vec<PlatformId, MAX_MEMBERS, u8>")
)]
pub struct MemberSet(heapless::Vec<PlatformId, MAX_MEMBERS, u8>);

/// Why a list of sleds is not a [`MemberSet`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum MemberSetError {
    /// A sled appears twice.
    Duplicate,
    /// More than [`MAX_MEMBERS`] sleds.
    TooMany,
}

impl fmt::Display for MemberSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Duplicate => "a sled is listed twice",
            Self::TooMany => "too many sleds",
        })
    }
}

impl core::error::Error for MemberSetError {}

impl TryFrom<heapless::Vec<PlatformId, MAX_MEMBERS, u8>> for MemberSet {
    type Error = MemberSetError;

    fn try_from(mut ids: heapless::Vec<PlatformId, MAX_MEMBERS, u8>) -> Result<Self, Self::Error> {
        sort_and_check(&mut ids)?;
        Ok(Self(ids))
    }
}

/// Sorts a list of sleds in place and refuses repeats: what makes a list a
/// [`MemberSet`].
pub(crate) fn sort_and_check(ids: &mut [PlatformId]) -> Result<(), MemberSetError> {
    ids.sort_unstable();
    if ids.windows(2).any(|w| matches!(w, [a, b] if a == b)) {
        return Err(MemberSetError::Duplicate);
    }
    Ok(())
}

impl MemberSet {
    /// The list inside, for the in-place decoder, which fills it and then
    /// calls [`sort_and_check`].
    pub(crate) fn ids_mut_unchecked(&mut self) -> &mut heapless::Vec<PlatformId, MAX_MEMBERS, u8> {
        &mut self.0
    }

    /// A set from any list of sleds.
    pub fn new<'a>(ids: impl IntoIterator<Item = &'a PlatformId>) -> Result<Self, MemberSetError> {
        let mut list = heapless::Vec::new();
        for id in ids {
            list.push(id.clone()).map_err(|_| MemberSetError::TooMany)?;
        }
        Self::try_from(list)
    }

    /// The sleds, sorted.
    pub fn as_slice(&self) -> &[PlatformId] {
        &self.0
    }

    /// How many sleds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `id` is in the set.
    pub fn contains(&self, id: &PlatformId) -> bool {
        self.0.binary_search(id).is_ok()
    }
}

/// Nexus asks a node to coordinate a reconfiguration.
///
/// Decoded in place by [`crate::wire::decode_reconfigure_msg_into`] (about
/// 2 KiB with a full member set); serde's derived decoder is the oracle of
/// the tests only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct ReconfigureMsg {
    /// The rack.
    pub rack_id: RackId,
    /// The new epoch.
    pub epoch: Epoch,
    /// The epoch Nexus believes is committed last; `None` for a fresh rack.
    pub last_committed_epoch: Option<Epoch>,
    /// Members of the new configuration.
    pub members: MemberSet,
    /// Threshold of the new configuration.
    pub threshold: Threshold,
}

/// Nexus asks a node to coordinate the upgrade of an LRTQ rack.
///
/// Decoded in place by [`crate::wire::decode_lrtq_upgrade_msg_into`];
/// serde's derived decoder is the oracle of the tests only.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(test, derive(Deserialize))]
pub struct LrtqUpgradeMsg {
    /// The rack (must match the LRTQ data).
    pub rack_id: RackId,
    /// The first new-protocol epoch: 2 or later.
    pub epoch: Epoch,
    /// Members of the new configuration.
    pub members: MemberSet,
    /// Threshold of the new configuration.
    pub threshold: Threshold,
}

impl ReconfigureMsg {
    /// A request with no members, for [`crate::wire::decode_reconfigure_msg_into`]
    /// to overwrite (a node refuses it as it is).
    pub const fn unfilled() -> Self {
        Self {
            rack_id: RackId([0; 16]),
            epoch: Epoch(0),
            last_committed_epoch: None,
            members: MemberSet(heapless::Vec::new()),
            threshold: Threshold::MIN,
        }
    }
}

impl LrtqUpgradeMsg {
    /// A request with no members, for [`crate::wire::decode_lrtq_upgrade_msg_into`]
    /// to overwrite (a node refuses it as it is).
    pub const fn unfilled() -> Self {
        Self {
            rack_id: RackId([0; 16]),
            epoch: Epoch(0),
            members: MemberSet(heapless::Vec::new()),
            threshold: Threshold::MIN,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::platform;

    #[test]
    fn member_sets_are_sorted_and_refuse_repeats() {
        let set = MemberSet::new(&[platform(3), platform(1), platform(2)]).unwrap();
        assert_eq!(set.as_slice(), &[platform(1), platform(2), platform(3)]);
        assert!(set.contains(&platform(2)));
        assert!(!set.contains(&platform(4)));
        assert_eq!(
            MemberSet::new(&[platform(1), platform(1)]),
            Err(MemberSetError::Duplicate)
        );
        let many: heapless::Vec<PlatformId, 40> = (0..=MAX_MEMBERS).map(platform).collect();
        assert_eq!(MemberSet::new(&many), Err(MemberSetError::TooMany));
    }

    /// One owned message of every body variant.
    fn every_body() -> [PeerMsg; 8] {
        let config = Configuration::new(crate::config::tests::fields(4, 2)).unwrap();
        let share = || Share::new(3, &[0x5a; 32]).unwrap();
        let mut lrtq = [0u8; crate::limits::LRTQ_SHARE_LEN];
        lrtq[0] = 9;
        lrtq[1] = 4;
        let lrtq = LrtqShare::from_bytes(&lrtq).unwrap();
        let bodies = [
            Body::Prepare {
                config: config.clone(),
                share: share(),
                last_committed: Some(Epoch(2)),
            },
            Body::PrepareAck(Epoch(4)),
            Body::GetShare(Epoch(5)),
            Body::Share {
                epoch: Epoch(6),
                share: share(),
            },
            Body::GetLrtqShare,
            Body::LrtqShare(lrtq),
            Body::Expunged(Epoch(7)),
            Body::CommitAdvance(config),
        ];
        bodies.map(|body| Envelope {
            rack_id: RackId([0x11; 16]),
            body,
        })
    }

    #[test]
    fn a_borrowed_view_encodes_like_the_message_it_was_decoded_from() {
        use crate::wire::{MAX_PEER_MSG_LEN, decode_peer_msg, encode_peer_msg};
        let mut first = [0u8; MAX_PEER_MSG_LEN];
        let mut second = [0u8; MAX_PEER_MSG_LEN];
        let mut kinds = std::vec::Vec::new();
        for msg in every_body() {
            let sent = encode_peer_msg(&msg.as_ref(), &mut first).unwrap();
            let decoded = decode_peer_msg(sent).unwrap();
            let view = decoded.as_ref();
            assert_eq!(view.rack_id, msg.rack_id);
            assert_eq!(view.body.kind(), msg.body.kind());
            assert_eq!(encode_peer_msg(&view, &mut second).unwrap(), sent);
            kinds.push(view.body.kind());
        }
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), 8, "every variant is covered once");
    }
}
