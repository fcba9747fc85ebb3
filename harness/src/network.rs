//! The simulated network: symmetric links between sleds and a bounded list
//! of encoded messages in flight.
//!
//! Messages are delivered in whatever order the actions pick (reordering),
//! can be duplicated or dropped, and are dropped at delivery when their link
//! is down. A link is *plugged* or not; a connection exists while the link
//! is plugged and both sleds are up (the cluster calls `on_connect` /
//! `on_disconnect` on both nodes when that changes).
//!
//! The messages in flight are stored back to back in one byte arena, oldest
//! first, so a 30-byte ack takes 30 bytes and a rack of 32 sleds can have
//! hundreds of small messages in flight next to a round of large `Prepare`s.
//! How many may be in flight at once grows with the rack ([`Network::new`]:
//! [`IN_FLIGHT_PER_SLED`] per sled, and never fewer than [`MIN_IN_FLIGHT`],
//! the bound every rack had before racks grew past 8 sleds, so that a rack
//! of up to 8 runs exactly as it did then, seeds and regressions included).

use tq_core::wire::MAX_PEER_MSG_LEN;

use crate::MAX_SLEDS;
use crate::mask::{SledMask, bit};

/// Most bytes of one message in flight: the largest peer message the core
/// encodes. A longer one is not put in flight and is counted as a drop
/// ([`NetworkStats::dropped_full`]); the core never sends one.
pub const MAX_MSG_LEN: usize = MAX_PEER_MSG_LEN;

/// Messages a rack may have in flight per sled: sending one more drops it
/// and counts the drop ([`NetworkStats::dropped_full`]), like a congested
/// link would.
pub const IN_FLIGHT_PER_SLED: usize = 12;

/// Fewest messages any rack may have in flight: what a rack of 8 holds.
pub const MIN_IN_FLIGHT: usize = IN_FLIGHT_PER_SLED * 8;

/// Most messages in flight in the largest rack.
pub const MAX_IN_FLIGHT: usize = IN_FLIGHT_PER_SLED * MAX_SLEDS;

/// Bytes of all messages in flight together: about fifty of the largest
/// `Prepare`s a simulated rack of 32 sleds sends, or hundreds of small
/// messages. A message that does not fit is a counted drop, as when the
/// count is reached.
pub const MAX_IN_FLIGHT_BYTES: usize = 128 * 1024;

/// One message in flight, as stored: its bytes are the next `len` bytes of
/// the arena.
#[derive(Clone, Copy, Debug)]
struct Header {
    from: u8,
    to: u8,
    len: u16,
}

/// One message in flight, borrowed from the network.
#[derive(Clone, Copy)]
pub struct Message<'a> {
    /// Sender's sled index.
    pub from: u8,
    /// Receiver's sled index.
    pub to: u8,
    /// The encoded message (`tq_core::wire::encode_peer_msg`).
    pub bytes: &'a [u8],
}

impl core::fmt::Debug for Message<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The bytes may hold a share: only the message kind and size show.
        f.debug_struct("Message")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("kind", &self.kind())
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl Message<'_> {
    /// The message's kind, read from its tag (after the version byte and
    /// the rack id), or `"?"`.
    pub fn kind(&self) -> &'static str {
        const TAG_AT: usize = 1 + 16;
        self.bytes
            .get(TAG_AT)
            .and_then(|&tag| {
                tq_core::messages::Body::<(), (), ()>::KINDS
                    .get(usize::from(tag))
                    .copied()
            })
            .unwrap_or("?")
    }
}

/// A message taken out of flight for delivery: its own copy of the bytes.
pub struct Taken {
    from: u8,
    to: u8,
    len: usize,
    bytes: [u8; MAX_MSG_LEN],
}

impl Taken {
    /// The message.
    pub fn message(&self) -> Message<'_> {
        Message {
            from: self.from,
            to: self.to,
            bytes: self.bytes.get(..self.len).unwrap_or(&[]),
        }
    }
}

/// What happened to messages, for coverage reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Messages put in flight.
    pub sent: u32,
    /// Messages handed to their receiver.
    pub delivered: u32,
    /// Messages dropped because the network was full.
    pub dropped_full: u32,
    /// Messages dropped because their link was down at delivery.
    pub dropped_link_down: u32,
    /// Messages dropped by a `Drop` action.
    pub dropped_by_action: u32,
    /// Messages duplicated by a `Duplicate` action.
    pub duplicated: u32,
}

/// Links and messages in flight.
pub struct Network {
    headers: heapless::Vec<Header, MAX_IN_FLIGHT>,
    /// The messages' bytes, back to back in the order of `headers`.
    arena: [u8; MAX_IN_FLIGHT_BYTES],
    /// Bytes of `arena` in use.
    used: usize,
    /// Most messages in flight in this rack.
    capacity: usize,
    /// Bit `b` of `plugged[a]` is set iff the link a–b is plugged.
    plugged: [SledMask; MAX_SLEDS],
    stats: NetworkStats,
}

impl core::fmt::Debug for Network {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Network")
            .field("in_flight", &self.headers.len())
            .field("bytes", &self.used)
            .field("capacity", &self.capacity)
            .field("plugged", &self.plugged)
            .field("stats", &self.stats)
            .finish()
    }
}

/// Copies the messages in flight, not the free arena and headers around
/// them (a model checker copies many networks).
#[cfg(feature = "model")]
impl Clone for Network {
    fn clone(&self) -> Self {
        let mut copy = Self::new(0);
        copy.clone_from(self);
        copy
    }

    fn clone_from(&mut self, source: &Self) {
        self.headers.clone_from(&source.headers);
        if let (Some(to), Some(from)) = (
            self.arena.get_mut(..source.used),
            source.arena.get(..source.used),
        ) {
            to.copy_from_slice(from);
        }
        self.used = source.used;
        self.capacity = source.capacity;
        self.plugged = source.plugged;
        self.stats = source.stats;
    }
}

impl Network {
    /// No messages, no links, room for [`IN_FLIGHT_PER_SLED`] messages per
    /// sled of a rack of `sleds` (at most [`MAX_SLEDS`]), and at least
    /// [`MIN_IN_FLIGHT`].
    pub const fn new(sleds: usize) -> Self {
        let sleds = if sleds < MAX_SLEDS { sleds } else { MAX_SLEDS };
        let capacity = IN_FLIGHT_PER_SLED * sleds;
        Self {
            headers: heapless::Vec::new(),
            arena: [0; MAX_IN_FLIGHT_BYTES],
            used: 0,
            capacity: if capacity < MIN_IN_FLIGHT {
                MIN_IN_FLIGHT
            } else {
                capacity
            },
            plugged: [0; MAX_SLEDS],
            stats: NetworkStats {
                sent: 0,
                delivered: 0,
                dropped_full: 0,
                dropped_link_down: 0,
                dropped_by_action: 0,
                duplicated: 0,
            },
        }
    }

    /// Messages in flight, oldest first.
    pub fn in_flight(&self) -> impl ExactSizeIterator<Item = Message<'_>> + '_ {
        let mut at = 0;
        self.headers.iter().map(move |header| {
            let len = usize::from(header.len);
            let bytes = self.arena.get(at..at + len).unwrap_or(&[]);
            at += len;
            Message {
                from: header.from,
                to: header.to,
                bytes,
            }
        })
    }

    /// Message `index` (modulo the count), if any is in flight.
    pub fn get(&self, index: usize) -> Option<Message<'_>> {
        let len = self.len();
        if len == 0 {
            return None;
        }
        self.in_flight().nth(index % len)
    }

    /// How many messages are in flight.
    pub fn len(&self) -> usize {
        self.headers.len()
    }

    /// Whether nothing is in flight.
    pub fn is_empty(&self) -> bool {
        self.headers.is_empty()
    }

    /// Most messages this rack may have in flight.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Counters.
    pub fn stats(&self) -> &NetworkStats {
        &self.stats
    }

    /// Whether the link a–b is plugged.
    pub fn is_plugged(&self, a: usize, b: usize) -> bool {
        a != b && self.plugged.get(a).is_some_and(|links| links & bit(b) != 0)
    }

    /// Plugs or unplugs the link a–b; returns whether it changed.
    pub fn set_plugged(&mut self, a: usize, b: usize, plugged: bool) -> bool {
        if a == b || a >= MAX_SLEDS || b >= MAX_SLEDS || self.is_plugged(a, b) == plugged {
            return false;
        }
        for (x, y) in [(a, b), (b, a)] {
            if let Some(links) = self.plugged.get_mut(x) {
                if plugged {
                    *links |= bit(y);
                } else {
                    *links &= !bit(y);
                }
            }
        }
        true
    }

    /// Puts a message in flight; false (and counted) if the network is
    /// full or the message too long.
    pub fn send(&mut self, from: usize, to: usize, bytes: &[u8]) -> bool {
        let header = match (
            u8::try_from(from),
            u8::try_from(to),
            u16::try_from(bytes.len()),
        ) {
            (Ok(from), Ok(to), Ok(len)) if bytes.len() <= MAX_MSG_LEN => Header { from, to, len },
            _ => return self.count_full(),
        };
        let end = self.used + bytes.len();
        let Some(slot) = self.arena.get_mut(self.used..end) else {
            return self.count_full();
        };
        if self.headers.len() >= self.capacity || self.headers.push(header).is_err() {
            return self.count_full();
        }
        slot.copy_from_slice(bytes);
        self.used = end;
        self.stats.sent = self.stats.sent.saturating_add(1);
        true
    }

    fn count_full(&mut self) -> bool {
        self.stats.dropped_full = self.stats.dropped_full.saturating_add(1);
        false
    }

    /// Where message `index` (exactly, not modulo) starts in the arena.
    fn offset(&self, index: usize) -> usize {
        self.headers
            .iter()
            .take(index)
            .map(|h| usize::from(h.len))
            .sum()
    }

    /// Takes message `index` (modulo the count) out of flight, for delivery.
    pub fn take(&mut self, index: usize) -> Option<Taken> {
        let count = self.len();
        if count == 0 {
            return None;
        }
        let index = index % count;
        let start = self.offset(index);
        let header = self.headers.remove(index);
        let len = usize::from(header.len);
        let mut taken = Taken {
            from: header.from,
            to: header.to,
            len,
            bytes: [0; MAX_MSG_LEN],
        };
        if let (Some(to), Some(from)) = (
            taken.bytes.get_mut(..len),
            self.arena.get(start..start + len),
        ) {
            to.copy_from_slice(from);
        }
        self.arena.copy_within(start + len..self.used, start);
        self.used -= len;
        Some(taken)
    }

    /// Records that a taken message reached its receiver.
    pub(crate) fn count_delivered(&mut self) {
        self.stats.delivered = self.stats.delivered.saturating_add(1);
    }

    /// Records that a taken message found its link down.
    pub(crate) fn count_link_down(&mut self) {
        self.stats.dropped_link_down = self.stats.dropped_link_down.saturating_add(1);
    }

    /// Drops message `index` (modulo the count).
    pub fn drop_message(&mut self, index: usize) {
        if self.take(index).is_some() {
            self.stats.dropped_by_action = self.stats.dropped_by_action.saturating_add(1);
        }
    }

    /// Puts a second copy of message `index` (modulo the count) in flight.
    pub fn duplicate(&mut self, index: usize) {
        let count = self.len();
        if count == 0 {
            return;
        }
        let index = index % count;
        let start = self.offset(index);
        let Some(&header) = self.headers.get(index) else {
            return;
        };
        let len = usize::from(header.len);
        let fits = self.used + len <= MAX_IN_FLIGHT_BYTES && self.headers.len() < self.capacity;
        if !fits || self.headers.push(header).is_err() {
            self.count_full();
            return;
        }
        self.arena.copy_within(start..start + len, self.used);
        self.used += len;
        self.stats.duplicated = self.stats.duplicated.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_symmetric_and_never_to_self() {
        let mut net = Network::new(4);
        assert!(net.set_plugged(1, 3, true));
        assert!(net.is_plugged(3, 1));
        assert!(!net.set_plugged(3, 1, true));
        assert!(!net.set_plugged(2, 2, true));
        assert!(!net.is_plugged(2, 2));
        assert!(net.set_plugged(3, 1, false));
        assert!(!net.is_plugged(1, 3));
    }

    #[test]
    fn a_full_network_counts_the_drop() {
        let mut net = Network::new(3);
        assert_eq!(net.capacity(), 96);
        assert_eq!(Network::new(20).capacity(), 240);
        for _ in 0..net.capacity() {
            assert!(net.send(0, 1, &[1, 2]));
        }
        assert!(!net.send(0, 1, &[3]));
        net.duplicate(0);
        assert_eq!(net.stats().dropped_full, 2);
        assert_eq!(net.len(), 96);
        assert_eq!(net.take(96 + 1).unwrap().message().bytes, [1, 2]);
    }

    #[test]
    fn the_arena_keeps_order_through_takes_and_duplicates() {
        let mut net = Network::new(MAX_SLEDS);
        for n in 0..5u8 {
            assert!(net.send(usize::from(n), 9, &[n; 7][..usize::from(n) + 1]));
        }
        assert_eq!(net.take(2).unwrap().message().bytes, [2, 2, 2]);
        net.duplicate(1);
        net.drop_message(0);
        let left: Vec<(u8, Vec<u8>)> = net
            .in_flight()
            .map(|m| (m.from, m.bytes.to_vec()))
            .collect();
        assert_eq!(
            left,
            [
                (1, vec![1, 1]),
                (3, vec![3, 3, 3, 3]),
                (4, vec![4; 5]),
                (1, vec![1, 1]),
            ]
        );
        assert_eq!(net.get(5).unwrap().bytes, [3, 3, 3, 3]);
        assert_eq!(net.used, 2 + 4 + 5 + 2);
    }

    #[cfg(feature = "model")]
    #[test]
    fn a_network_cloned_into_another_has_the_same_messages_links_and_counts() {
        let mut net = Network::new(3);
        net.set_plugged(0, 2, true);
        for n in 0..4u8 {
            assert!(net.send(usize::from(n % 3), 1, &[n; 9][..usize::from(n) + 2]));
        }
        net.drop_message(1);
        let mut copy = Network::new(MAX_SLEDS);
        for _ in 0..20 {
            copy.send(5, 6, &[0xee; 40]);
        }
        copy.clone_from(&net);
        let messages = |n: &Network| -> Vec<(u8, u8, Vec<u8>)> {
            n.in_flight()
                .map(|m| (m.from, m.to, m.bytes.to_vec()))
                .collect()
        };
        assert_eq!(messages(&copy), messages(&net));
        assert_eq!(copy.used, net.used);
        assert_eq!(copy.capacity(), net.capacity());
        assert!(copy.is_plugged(2, 0));
        assert_eq!(copy.stats(), net.stats());
        assert_eq!(messages(&net.clone()), messages(&net));
    }

    #[test]
    fn bytes_past_the_arena_are_a_counted_drop() {
        let mut net = Network::new(MAX_SLEDS);
        let big = [7u8; MAX_MSG_LEN];
        let fit = MAX_IN_FLIGHT_BYTES / MAX_MSG_LEN;
        for _ in 0..fit {
            assert!(net.send(0, 1, &big));
        }
        assert!(!net.send(0, 1, &big));
        assert!(!net.send(0, 1, &[0; MAX_MSG_LEN + 1]));
        assert_eq!(net.stats().dropped_full, 2);
        assert_eq!(net.len(), fit);
    }
}
