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
    queue: heapless::Deque<(PlatformId, QueuedBody), MAX_OUTGOING>,
}

#[cfg(feature = "model")]
impl core::hash::Hash for Outbox {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        let Self { connected, queue } = self;
        connected.hash(h);
        queue.len().hash(h);
        queue.iter().for_each(|entry| entry.hash(h));
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
        self.connected.iter().any(|p| p == peer)
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
        self.connected.retain(|p| p != peer);
        // Each entry is taken from the front and put back unless it is for
        // `peer`, keeping the order: `Deque::retain` has a panic path.
        for _ in 0..self.queue.len() {
            if let Some(entry) = self.queue.pop_front()
                && entry.0 != *peer
            {
                // Cannot fail: an entry was just taken out.
                let _ = self.queue.push_back(entry);
            }
        }
    }

    /// Queues `body` for `to`, which must be connected: the counter to
    /// bump otherwise.
    pub(crate) fn queue(&mut self, to: &PlatformId, body: QueuedBody) -> Result<(), Counter> {
        if !self.is_connected(to) {
            return Err(Counter::NotConnected);
        }
        self.queue
            .push_back((to.clone(), body))
            .map_err(|_| Counter::OutgoingQueueFull)
    }

    pub(crate) fn pop(&mut self) -> Option<(PlatformId, QueuedBody)> {
        self.queue.pop_front()
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
