//! The connected peers and the messages queued for them.
//!
//! Kept apart from the persistent state in the context so that turning a
//! queued message into bytes can pop from here while reading the state
//! (which holds the message's parts) in the same step.

use crate::api::Counter;
use crate::ids::{Epoch, PlatformId};
use crate::limits::{MAX_CONNECTED, MAX_OUTGOING};
use crate::messages::{Body, QueuedBody, QueuedShare};

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
    queue: heapless::Deque<Entry, MAX_OUTGOING>,
}

/// A queued message as the queue holds it: its receiver's position and its
/// body packed into bytes, 26 bytes where `(ConnIndex, QueuedBody)` took
/// 48 (the body's epochs are 8-byte aligned, so its tags took 8 bytes
/// each). [`Entry::pack`] and [`Entry::body`] are exact inverses.
#[derive(Clone, Copy, Debug)]
struct Entry {
    to: ConnIndex,
    /// The body's variant (`PREPARE` ... `COMMIT_ADVANCE`), and the flags below.
    kind: u8,
    /// The body's epochs, in the order of its fields, little-endian.
    epochs: [[u8; 8]; 3],
}

/// [`Entry::kind`]'s low bits: the body's variant.
const PREPARE: u8 = 0;
const PREPARE_ACK: u8 = 1;
const GET_SHARE: u8 = 2;
const SHARE: u8 = 3;
const GET_LRTQ_SHARE: u8 = 4;
const LRTQ_SHARE: u8 = 5;
const EXPUNGED: u8 = 6;
const COMMIT_ADVANCE: u8 = 7;

/// [`Entry::kind`]: the share is [`QueuedShare::ForReceiver`] (else `Own`).
const FOR_RECEIVER: u8 = 0x10;
/// [`Entry::kind`]: a `Prepare` names a last committed epoch.
const LAST_COMMITTED: u8 = 0x20;
const KIND_MASK: u8 = 0x0f;

impl Entry {
    fn pack(to: ConnIndex, body: QueuedBody) -> Self {
        let none = Epoch(0);
        let share_parts = |share: QueuedShare| match share {
            QueuedShare::Own(epoch) => (0, epoch),
            QueuedShare::ForReceiver(epoch) => (FOR_RECEIVER, epoch),
        };
        let (kind, epochs) = match body {
            Body::Prepare {
                config,
                share,
                last_committed,
            } => {
                let (flag, share) = share_parts(share);
                let flags = flag
                    | if last_committed.is_some() {
                        LAST_COMMITTED
                    } else {
                        0
                    };
                (
                    PREPARE | flags,
                    [config, share, last_committed.unwrap_or(none)],
                )
            }
            Body::PrepareAck(epoch) => (PREPARE_ACK, [epoch, none, none]),
            Body::GetShare(epoch) => (GET_SHARE, [epoch, none, none]),
            Body::Share { epoch, share } => {
                let (flag, share) = share_parts(share);
                (SHARE | flag, [epoch, share, none])
            }
            Body::GetLrtqShare => (GET_LRTQ_SHARE, [none; 3]),
            Body::LrtqShare(()) => (LRTQ_SHARE, [none; 3]),
            Body::Expunged(epoch) => (EXPUNGED, [epoch, none, none]),
            Body::CommitAdvance(config) => (COMMIT_ADVANCE, [config, none, none]),
        };
        Self {
            to,
            kind,
            epochs: epochs.map(|epoch| epoch.0.to_le_bytes()),
        }
    }

    /// The body [`Self::pack`] packed; `None` never (a kind it does not
    /// write).
    fn body(&self) -> Option<QueuedBody> {
        let [first, second, third] = self.epochs.map(|bytes| Epoch(u64::from_le_bytes(bytes)));
        let share = if self.kind & FOR_RECEIVER != 0 {
            QueuedShare::ForReceiver(second)
        } else {
            QueuedShare::Own(second)
        };
        Some(match self.kind & KIND_MASK {
            PREPARE => Body::Prepare {
                config: first,
                share,
                last_committed: (self.kind & LAST_COMMITTED != 0).then_some(third),
            },
            PREPARE_ACK => Body::PrepareAck(first),
            GET_SHARE => Body::GetShare(first),
            SHARE => Body::Share {
                epoch: first,
                share,
            },
            GET_LRTQ_SHARE => Body::GetLrtqShare,
            LRTQ_SHARE => Body::LrtqShare(()),
            EXPUNGED => Body::Expunged(first),
            COMMIT_ADVANCE => Body::CommitAdvance(first),
            _ => return None,
        })
    }
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
        // By receiver id and body, as when the queue held them.
        queue.iter().for_each(|entry| {
            (connected.get(usize::from(entry.to)), entry.body()).hash(h);
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
            if let Some(mut entry) = self.queue.pop_front()
                && entry.to != gone
            {
                if entry.to > gone {
                    entry.to -= 1;
                }
                // Cannot fail: an entry was just taken out.
                let _ = self.queue.push_back(entry);
            }
        }
    }

    /// Queues `body` for `to`, which must be connected: the counter to
    /// bump otherwise.
    pub(crate) fn queue(&mut self, to: &PlatformId, body: QueuedBody) -> Result<(), Counter> {
        let to = self.position(to).ok_or(Counter::NotConnected)?;
        self.queue
            .push_back(Entry::pack(to, body))
            .map_err(|_| Counter::OutgoingQueueFull)
    }

    /// The oldest queued message and its receiver; `Err(Internal)` if its
    /// receiver is not in the table (never: positions in the queue are of
    /// connected peers) or its body does not unpack (never), the message
    /// then dropped.
    pub(crate) fn pop(&mut self) -> Option<Result<(PlatformId, QueuedBody), Counter>> {
        let entry = self.queue.pop_front()?;
        Some(
            match (self.connected.get(usize::from(entry.to)), entry.body()) {
                (Some(to), Some(body)) => Ok((to.clone(), body)),
                _ => Err(Counter::Internal),
            },
        )
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

    /// Every body kind, with every flag, and epochs at their extremes,
    /// comes back from its packed entry as it went in.
    #[test]
    fn a_packed_body_unpacks_to_itself() {
        let shares = [
            QueuedShare::Own(Epoch(u64::MAX)),
            QueuedShare::ForReceiver(Epoch(1)),
        ];
        let mut bodies: std::vec::Vec<QueuedBody> = std::vec::Vec::new();
        for share in shares {
            for last_committed in [None, Some(Epoch(0)), Some(Epoch(u64::MAX - 1))] {
                bodies.push(Body::Prepare {
                    config: Epoch(7),
                    share,
                    last_committed,
                });
            }
            bodies.push(Body::Share {
                epoch: Epoch(3),
                share,
            });
        }
        bodies.extend([
            Body::PrepareAck(Epoch(u64::MAX)),
            Body::GetShare(Epoch(2)),
            Body::GetLrtqShare,
            Body::LrtqShare(()),
            Body::Expunged(Epoch(9)),
            Body::CommitAdvance(Epoch(1 << 40)),
        ]);
        assert_eq!(bodies.len(), 14);
        for body in bodies {
            let entry = Entry::pack(5, body.clone());
            assert_eq!(entry.to, 5);
            assert_eq!(entry.body(), Some(body));
        }
        assert!(core::mem::size_of::<Entry>() <= 26);
    }

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
