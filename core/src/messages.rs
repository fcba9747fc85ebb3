//! What nodes say to each other (PROTOCOL.md section 5). Plain data:
//! validation of the parts happens as they are built or decoded; the
//! protocol rules live in the node.

use core::convert::Infallible;
#[cfg(test)]
use serde::Deserialize;

use serde::Serialize;

use crate::config::Configuration;
use crate::crypto::{LrtqShare, Share};
use crate::ids::{Epoch, RackId};

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

/// Holds nothing: no value of it exists. The configuration part of a
/// [`SmallPeerMsg`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NoConfig {}

/// A peer message without a configuration, about 100 bytes where a
/// [`PeerMsg`] is about 4 KiB: every message but `Prepare` and
/// `CommitAdvance` is decoded into one, so handling it does not hold 4 KiB
/// of stack through the whole call.
pub(crate) type SmallPeerMsg = Envelope<NoConfig, Share, LrtqShare>;

impl SmallPeerMsg {
    /// The message, borrowed as the node handles (and encodes) any.
    pub(crate) fn as_peer_msg_ref(&self) -> PeerMsgRef<'_> {
        let Ok(body) = self.body.as_ref().try_map(
            |none: &NoConfig| -> Result<&Configuration, Infallible> { match *none {} },
            Ok,
            Ok,
        );
        Envelope {
            rack_id: self.rack_id,
            body,
        }
    }
}

/// Declares the message set once: the [`Body`] enum (its variant order is
/// the wire tag order), each variant's stable name and its tag. Everything
/// else that goes by variant (borrowing, resolving a queued message,
/// decoding in place) is an exhaustive `match`, so a new variant cannot be
/// forgotten anywhere.
macro_rules! peer_messages {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident $( ( $part:ty ) )? $( { $( $(#[doc = $fdoc:literal])* $field:ident: $fty:ty ),+ $(,)? } )?,
    )+) => {
        /// The body of a peer message, generic over how its large parts are
        /// held (see [`Envelope`]). Only ever append variants: the order is
        /// the wire tag.
        #[derive(Clone, Debug, PartialEq, Eq, Serialize)]
        #[cfg_attr(test, derive(Deserialize))]
        #[cfg_attr(feature = "model", derive(Hash))]
        pub enum Body<C, S, L> {
            $(
                $(#[doc = $doc])*
                $variant $( ($part) )? $( { $( $(#[doc = $fdoc])* $field: $fty ),+ } )?,
            )+
        }

        impl<C, S, L> Body<C, S, L> {
            /// Every variant's name, in wire tag order.
            pub const KINDS: &'static [&'static str] = &[$(stringify!($variant)),+];

            /// The variant's wire tag.
            pub fn tag(&self) -> u32 {
                let mut tag = 0;
                $(
                    if let Self::$variant { .. } = self {
                        return tag;
                    }
                    tag += 1;
                )+
                tag
            }

            /// The variant's name, for logs and counters (never the
            /// contents).
            pub fn kind(&self) -> &'static str {
                match self {
                    $( Self::$variant { .. } => stringify!($variant), )+
                }
            }
        }
    };
}

peer_messages! {
    /// Coordinator to member: the new configuration and that member's share.
    Prepare {
        /// The configuration being prepared.
        config: C,
        /// The receiving member's share.
        share: S,
        /// The epoch Nexus named as committed when it started this
        /// reconfiguration (`None` for a rack's first configuration): how a
        /// member that missed that commit learns it, so that it never drops
        /// a committed configuration to make room.
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

    /// The same body with each large part replaced by what `config`,
    /// `share` and `lrtq` make of it; the first failure is returned. This
    /// is how a queued message, which names its parts, becomes the message
    /// that borrows them.
    pub(crate) fn try_map<C2, S2, L2, E>(
        self,
        config: impl FnOnce(C) -> Result<C2, E>,
        share: impl FnOnce(S) -> Result<S2, E>,
        lrtq: impl FnOnce(L) -> Result<L2, E>,
    ) -> Result<Body<C2, S2, L2>, E> {
        Ok(match self {
            Self::Prepare {
                config: c,
                share: s,
                last_committed,
            } => Body::Prepare {
                config: config(c)?,
                share: share(s)?,
                last_committed,
            },
            Self::PrepareAck(epoch) => Body::PrepareAck(epoch),
            Self::GetShare(epoch) => Body::GetShare(epoch),
            Self::Share { epoch, share: s } => Body::Share {
                epoch,
                share: share(s)?,
            },
            Self::GetLrtqShare => Body::GetLrtqShare,
            Self::LrtqShare(l) => Body::LrtqShare(lrtq(l)?),
            Self::Expunged(epoch) => Body::Expunged(epoch),
            Self::CommitAdvance(c) => Body::CommitAdvance(config(c)?),
        })
    }
}

/// A message a node has queued, naming its large parts instead of holding
/// them: the configuration by its stored epoch, the share by whose it is,
/// the LRTQ share as this node's own. It becomes a [`PeerMsgRef`] only
/// when it is encoded, so a queue of 64 messages costs a few kilobytes, not
/// 64 configurations.
pub(crate) type QueuedBody = Body<Epoch, QueuedShare, ()>;

/// Which share a queued message carries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "model", derive(Hash))]
pub(crate) enum QueuedShare {
    /// This node's stored share of the epoch.
    Own(Epoch),
    /// The share the coordinator of this epoch made for the receiving
    /// member.
    ForReceiver(Epoch),
}

#[cfg(test)]
mod tests {
    use super::*;

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
