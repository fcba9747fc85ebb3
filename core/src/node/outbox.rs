//! The connected peers and the messages queued for them.
//!
//! Kept apart from the persistent state in the context so that turning a
//! queued message into bytes can pop from here while reading the state
//! (which holds the message's parts) in the same step.

use crate::api::Counter;
use crate::ids::PlatformId;
use crate::limits::{MAX_CONNECTED, MAX_OUTGOING};
use crate::messages::QueuedBody;

/// Connected peers and the outgoing queue.
#[derive(Debug)]
#[cfg_attr(feature = "model", derive(Clone))]
pub(crate) struct Outbox {
    connected: heapless::Vec<PlatformId, MAX_CONNECTED, u8>,
    /// Each message names its receiver by position in `connected`, not by
    /// id: a 66-byte id in each of `MAX_OUTGOING` entries was 4 KiB of
    /// static memory. Every position is that of a connected peer:
    /// [`Outbox::disconnect`] drops the peer's messages and renumbers the
    /// rest.
    queue: heapless::Deque<(ConnIndex, QueuedBody), MAX_OUTGOING>,
}

/// A position in [`Outbox::connected`].
type ConnIndex = u8;

const _: () = assert!(MAX_CONNECTED <= ConnIndex::MAX as usize + 1);

#[cfg(feature = "model")]
impl core::hash::Hash for Outbox {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        let Self { connected, queue } = self;
        connected.hash(h);
        queue.len().hash(h);
        // By receiver id, as when the queue held ids.
        queue.iter().for_each(|(to, body)| {
            (connected.get(usize::from(*to)), body).hash(h);
        });
    }
}

impl Outbox {
    pub(crate) const fn new() -> Self {
        Self {
            connected: heapless::Vec::new(),
            queue: heapless::Deque::new(),
        }
    }

    pub(crate) fn connected(&self) -> &[PlatformId] {
        &self.connected
    }

    pub(crate) fn is_connected(&self, peer: &PlatformId) -> bool {
        self.position(peer).is_some()
    }

    fn position(&self, peer: &PlatformId) -> Option<ConnIndex> {
        let at = self.connected.iter().position(|p| p == peer)?;
        ConnIndex::try_from(at).ok()
    }

    pub(crate) fn has_queued(&self) -> bool {
        !self.queue.is_empty()
    }

    /// Records a connection; the counter to bump if the table is full.
    pub(crate) fn connect(&mut self, peer: &PlatformId) -> Result<(), Counter> {
        if self.is_connected(peer) {
            return Ok(());
        }
        self.connected
            .push(peer.clone())
            .map_err(|_| Counter::ConnectionTableFull)
    }

    /// Forgets a connection and what was still queued for it: nothing
    /// queued for a peer that left will reach it.
    pub(crate) fn disconnect(&mut self, peer: &PlatformId) {
        let Some(gone) = self.position(peer) else {
            return;
        };
        self.connected.retain(|p| p != peer);
        // Each entry is taken from the front and put back unless it is for
        // `peer`, keeping the order (`Deque::retain` has a panic path); the
        // peers after `peer` moved down one place.
        for _ in 0..self.queue.len() {
            if let Some((to, body)) = self.queue.pop_front()
                && to != gone
            {
                let to = if to > gone { to - 1 } else { to };
                // Cannot fail: an entry was just taken out.
                let _ = self.queue.push_back((to, body));
            }
        }
    }

    /// Queues `body` for `to`, which must be connected: the counter to
    /// bump otherwise.
    pub(crate) fn queue(&mut self, to: &PlatformId, body: QueuedBody) -> Result<(), Counter> {
        let to = self.position(to).ok_or(Counter::NotConnected)?;
        self.queue
            .push_back((to, body))
            .map_err(|_| Counter::OutgoingQueueFull)
    }

    /// The oldest queued message and its receiver; `Err(Internal)` if its
    /// receiver is not in the table (never: positions in the queue are of
    /// connected peers), the message then dropped.
    pub(crate) fn pop(&mut self) -> Option<Result<(PlatformId, QueuedBody), Counter>> {
        let (to, body) = self.queue.pop_front()?;
        Some(match self.connected.get(usize::from(to)) {
            Some(to) => Ok((to.clone(), body)),
            None => Err(Counter::Internal),
        })
    }

    pub(crate) fn clear_queue(&mut self) {
        self.queue.clear();
    }

    /// Forgets every connection and everything queued.
    pub(crate) fn clear(&mut self) {
        self.connected.clear();
        self.queue.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::platform;
    use crate::ids::Epoch;
    use crate::messages::Body;

    /// Messages queued for three peers; the middle one leaves: its
    /// messages are gone, the others still reach their own receivers, in
    /// order (the positions after it were renumbered).
    #[test]
    fn disconnect_keeps_each_message_with_its_receiver() {
        let mut outbox = Outbox::new();
        let (a, b, c) = (platform(1), platform(2), platform(3));
        for peer in [&a, &b, &c] {
            outbox.connect(peer).unwrap();
        }
        for (epoch, to) in [(1, &c), (2, &b), (3, &a), (4, &c), (5, &b)] {
            outbox.queue(to, Body::GetShare(Epoch(epoch))).unwrap();
        }
        outbox.disconnect(&b);
        let mut left = std::vec::Vec::new();
        while let Some(entry) = outbox.pop() {
            left.push(entry.unwrap());
        }
        assert_eq!(
            left,
            [
                (c.clone(), Body::GetShare(Epoch(1))),
                (a.clone(), Body::GetShare(Epoch(3))),
                (c.clone(), Body::GetShare(Epoch(4))),
            ]
        );
        assert_eq!(
            outbox.queue(&b, Body::GetShare(Epoch(6))),
            Err(Counter::NotConnected)
        );
    }
}
