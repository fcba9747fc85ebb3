//! The table of connections, one slot per peer, shared by the connection
//! tasks and the node layer's calls.
//!
//! A slot is taken when a handshake completes and holds the newest
//! connection to that peer; taking it closes the previous connection
//! ([`CloseReason::Replaced`]), and the new one reports `Connected` only
//! after the old one has reported `Disconnected` (it waits for the old
//! one's `done` signal). Only a connection that has received its first
//! frame has a write queue in its slot, so [`Registry::send`] reaches only
//! established connections.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tq_core::ids::PlatformId;

use super::frame::Frame;
use super::stats::{CloseReason, lock};

/// Closes one connection with a reason; the first reason given wins.
#[derive(Clone)]
pub(crate) struct Closer {
    token: CancellationToken,
    reason: Arc<OnceLock<CloseReason>>,
}

impl Closer {
    /// A closer also fired when `parent` is cancelled (reason: shutdown).
    pub(crate) fn child_of(parent: &CancellationToken) -> Self {
        Self {
            token: parent.child_token(),
            reason: Arc::default(),
        }
    }

    pub(crate) fn close(&self, reason: CloseReason) {
        let _ = self.reason.set(reason);
        self.token.cancel();
    }

    /// Waits until closed, and says why.
    pub(crate) async fn closed(&self) -> CloseReason {
        self.token.cancelled().await;
        self.reason.get().copied().unwrap_or(CloseReason::Shutdown)
    }
}

struct Slot {
    conn_id: u64,
    closer: Closer,
    queue: Option<mpsc::Sender<Frame>>,
    done: Option<oneshot::Receiver<()>>,
}

/// What a connection gets when it takes its peer's slot.
pub(crate) struct Ticket {
    pub(crate) conn_id: u64,
    pub(crate) closer: Closer,
    /// Dropped when the connection has fully ended.
    pub(crate) done: oneshot::Sender<()>,
    /// Resolves when the connection it replaced has fully ended.
    pub(crate) predecessor: Option<oneshot::Receiver<()>>,
}

/// Why [`super::Net::send`] did not queue a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// No established connection to that peer.
    NotConnected,
    /// The peer's write queue is full; the frame was dropped (counted).
    Busy,
    /// Empty (empty frames are keep-alives) or above
    /// [`super::MAX_FRAME_LEN`] bytes.
    BadLength(usize),
}

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotConnected => f.write_str("peer not connected"),
            Self::Busy => f.write_str("peer write queue full"),
            Self::BadLength(len) => write!(f, "frame of {len} bytes cannot be sent"),
        }
    }
}

impl std::error::Error for SendError {}

#[derive(Default)]
pub(crate) struct Registry {
    slots: Mutex<HashMap<PlatformId, Slot>>,
}

impl Registry {
    /// Takes `peer`'s slot for a new connection, closing the one there.
    pub(crate) fn take_slot(&self, peer: &PlatformId, conn_id: u64, closer: Closer) -> Ticket {
        let (done, done_rx) = oneshot::channel();
        let slot = Slot {
            conn_id,
            closer: closer.clone(),
            queue: None,
            done: Some(done_rx),
        };
        let predecessor = lock(&self.slots)
            .insert(peer.clone(), slot)
            .and_then(|mut old| {
                old.closer.close(CloseReason::Replaced);
                old.done.take()
            });
        Ticket {
            conn_id,
            closer,
            done,
            predecessor,
        }
    }

    /// Opens the slot to sends; false if a newer connection took it.
    pub(crate) fn establish(
        &self,
        peer: &PlatformId,
        conn_id: u64,
        queue: mpsc::Sender<Frame>,
    ) -> bool {
        match lock(&self.slots).get_mut(peer) {
            Some(slot) if slot.conn_id == conn_id => {
                slot.queue = Some(queue);
                true
            }
            _ => false,
        }
    }

    /// Frees the slot if `conn_id` still holds it.
    pub(crate) fn release(&self, peer: &PlatformId, conn_id: u64) {
        let mut slots = lock(&self.slots);
        if slots.get(peer).is_some_and(|slot| slot.conn_id == conn_id) {
            slots.remove(peer);
        }
    }

    pub(crate) fn send(&self, peer: &PlatformId, frame: Frame) -> Result<(), SendError> {
        let slots = lock(&self.slots);
        let queue = slots
            .get(peer)
            .and_then(|slot| slot.queue.as_ref())
            .ok_or(SendError::NotConnected)?;
        queue.try_send(frame).map_err(|e| match e {
            mpsc::error::TrySendError::Full(_) => SendError::Busy,
            mpsc::error::TrySendError::Closed(_) => SendError::NotConnected,
        })
    }

    /// Closes `peer`'s connection, if any; true if there was one.
    pub(crate) fn close(&self, peer: &PlatformId, reason: CloseReason) -> bool {
        lock(&self.slots)
            .get(peer)
            .map(|slot| slot.closer.close(reason))
            .is_some()
    }

    /// Peers with an established connection.
    pub(crate) fn established(&self) -> Vec<PlatformId> {
        let mut peers: Vec<_> = lock(&self.slots)
            .iter()
            .filter(|(_, slot)| slot.queue.is_some())
            .map(|(peer, _)| peer.clone())
            .collect();
        peers.sort();
        peers
    }
}
