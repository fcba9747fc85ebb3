//! Which outgoing peer messages hand out a share, read from the head of
//! their encoding alone (the share itself is never decoded or copied).
//!
//! A peer message is a version byte, the rack id (16 bytes), the body's
//! variant tag (a postcard varint) and the variant's fields
//! (`tq_core::wire`): a `Share` starts with its epoch, a `Prepare` with
//! its configuration, which starts with the rack id and the epoch; an
//! `LrtqShare` names no epoch. The tags come from the core's own
//! [`Body::tag`], so a reordered message set cannot go unnoticed here.

use serde::Deserialize;
use tq_core::ids::Epoch;
use tq_core::messages::Body;
use tq_core::wire::PEER_MSG_VERSION;

use super::event::ShareMessage;

/// What an outgoing message hands out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandsOut {
    /// A share of this epoch's configuration.
    Share(ShareMessage, Epoch),
    /// The LRTQ share.
    LrtqShare,
}

#[derive(Deserialize)]
struct Head {
    version: u8,
    _rack: [u8; 16],
    tag: u32,
}

fn tag_of(body: Body<(), (), ()>) -> u32 {
    body.tag()
}

/// What `bytes`, an encoded peer message, hands out; `None` for a message
/// without a share (or bytes that are not a peer message of this build).
pub fn hands_out(bytes: &[u8]) -> Option<HandsOut> {
    let (head, rest) = postcard::take_from_bytes::<Head>(bytes).ok()?;
    if head.version != PEER_MSG_VERSION {
        return None;
    }
    let share = tag_of(Body::Share {
        epoch: Epoch(0),
        share: (),
    });
    let prepare = tag_of(Body::Prepare {
        config: (),
        share: (),
        last_committed: None,
    });
    if head.tag == share {
        let (epoch, _) = postcard::take_from_bytes::<u64>(rest).ok()?;
        Some(HandsOut::Share(ShareMessage::Share, Epoch(epoch)))
    } else if head.tag == prepare {
        let ((_rack, epoch), _) = postcard::take_from_bytes::<([u8; 16], u64)>(rest).ok()?;
        Some(HandsOut::Share(ShareMessage::Prepare, Epoch(epoch)))
    } else if head.tag == tag_of(Body::LrtqShare(())) {
        Some(HandsOut::LrtqShare)
    } else {
        None
    }
}
