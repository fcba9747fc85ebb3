//! Turning queued messages into bytes for the caller to send.

use crate::api::Counter;
use crate::ids::PlatformId;
use crate::messages::{Envelope, PeerMsgRef, QueuedBody, QueuedShare};
use crate::node::coordinator::Coordinator;
use crate::node::validate::rack_id;
use crate::node::{Node, NodeCtx};
use crate::persistent::PersistentState;
use crate::wire::{self, MAX_PEER_MSG_LEN};

/// A message encoded into the caller's buffer: send its first `len` bytes
/// to `to`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transmit {
    /// The receiver.
    pub to: PlatformId,
    /// How many bytes of the buffer the message takes.
    pub len: usize,
}

impl Node {
    /// Encodes the next queued message into `buf` and says who gets it;
    /// `None` when nothing is queued, and while the persistent state is not
    /// stored (see the driving contract in [`crate::node`]). A message whose
    /// parts are gone (a configuration dropped since it was queued) is
    /// skipped and counted (`outgoing_stale`).
    pub fn poll_transmit(
        &self,
        ctx: &mut NodeCtx,
        buf: &mut [u8; MAX_PEER_MSG_LEN],
    ) -> Option<Transmit> {
        if !ctx.is_stored() {
            return None;
        }
        loop {
            let popped = ctx.outbox.pop()?;
            let coordinator = self.coordinator.as_ref();
            let encoded = popped.and_then(|(to, queued)| {
                let msg =
                    resolve(coordinator, ctx.state(), &to, queued).ok_or(Counter::OutgoingStale)?;
                let len = wire::encode_peer_msg(&msg, buf)
                    .map(<[u8]>::len)
                    .map_err(|_| Counter::Internal)?;
                Ok(Transmit { to, len })
            });
            match encoded {
                Ok(transmit) => return Some(transmit),
                Err(counter) => ctx.count(counter),
            }
        }
    }
}

/// The message a queued one stands for, borrowing its parts from where they
/// are kept; `None` if one of them is gone.
fn resolve<'a>(
    coordinator: Option<&'a Coordinator>,
    state: &'a PersistentState,
    to: &PlatformId,
    queued: QueuedBody,
) -> Option<PeerMsgRef<'a>> {
    let body = queued
        .try_map(
            |epoch| state.get(epoch).map(|stored| &stored.config).ok_or(()),
            |share| match share {
                QueuedShare::Own(epoch) => state
                    .get(epoch)
                    .and_then(|stored| stored.share.as_ref())
                    .ok_or(()),
                QueuedShare::ForReceiver(epoch) => coordinator
                    .filter(|c| c.epoch == epoch)
                    .and_then(|c| c.share_for(to))
                    .ok_or(()),
            },
            |()| state.lrtq().map(|lrtq| &lrtq.share).ok_or(()),
        )
        .ok()?;
    Some(Envelope {
        rack_id: rack_id(state)?,
        body,
    })
}
