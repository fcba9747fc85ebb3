//! The simulated network: symmetric links between sleds and a bounded list
//! of encoded messages in flight.
//!
//! Messages are delivered in whatever order the actions pick (reordering),
//! can be duplicated or dropped, and are dropped at delivery when their link
//! is down. A link is *plugged* or not; a connection exists while the link
//! is plugged and both sleds are up (the cluster calls `on_connect` /
//! `on_disconnect` on both nodes when that changes).

use crate::{MAX_SLEDS, SledMask};

/// Most bytes of one message in flight. Enough for a `Prepare` to
/// [`MAX_SLEDS`] members carrying `MAX_RETAINED_SECRETS` old secrets (about
/// 1.2 KiB); a larger one is refused when sent and reported by the cluster
/// as a violation (the harness was sized wrong), never truncated.
pub const MAX_MSG_LEN: usize = 1536;

/// Most messages in flight. Sending one more drops it and counts the drop
/// ([`NetworkStats::dropped_full`]), like a congested link would.
pub const MAX_IN_FLIGHT: usize = 96;

/// The bytes of one message.
pub type MsgBytes = heapless::Vec<u8, MAX_MSG_LEN>;

/// One message in flight.
#[derive(Clone)]
pub struct InFlight {
    /// Sender's sled index.
    pub from: u8,
    /// Receiver's sled index.
    pub to: u8,
    /// The encoded message (`tq_core::wire::encode_peer_msg`).
    pub bytes: MsgBytes,
}

impl core::fmt::Debug for InFlight {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        // The bytes may hold a share: only the message kind and size show.
        f.debug_struct("InFlight")
            .field("from", &self.from)
            .field("to", &self.to)
            .field("kind", &self.kind())
            .field("len", &self.bytes.len())
            .finish()
    }
}

impl InFlight {
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

/// What happened to messages, for coverage reports.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    /// Messages put in flight.
    pub sent: u32,
    /// Messages handed to their receiver.
    pub delivered: u32,
    /// Messages dropped because the in-flight list was full.
    pub dropped_full: u32,
    /// Messages dropped because their link was down at delivery.
    pub dropped_link_down: u32,
    /// Messages dropped by a `Drop` action.
    pub dropped_by_action: u32,
    /// Messages duplicated by a `Duplicate` action.
    pub duplicated: u32,
}

/// Links and messages in flight.
#[derive(Debug)]
pub struct Network {
    in_flight: heapless::Vec<InFlight, MAX_IN_FLIGHT>,
    /// Bit `b` of `plugged[a]` is set iff the link a–b is plugged.
    plugged: [SledMask; MAX_SLEDS],
    stats: NetworkStats,
}

/// Copies the messages in flight, not the capacity around them (a model
/// checker copies many networks).
#[cfg(feature = "model")]
impl Clone for Network {
    fn clone(&self) -> Self {
        let mut copy = Self::new();
        copy.clone_from(self);
        copy
    }

    fn clone_from(&mut self, source: &Self) {
        self.in_flight.clear();
        for msg in &source.in_flight {
            // Same capacity: cannot fail.
            let _ = self.in_flight.push(InFlight {
                from: msg.from,
                to: msg.to,
                bytes: MsgBytes::new(),
            });
            if let Some(last) = self.in_flight.last_mut() {
                let _ = last.bytes.extend_from_slice(&msg.bytes);
            }
        }
        self.plugged = source.plugged;
        self.stats = source.stats;
    }
}

impl Default for Network {
    fn default() -> Self {
        Self::new()
    }
}

impl Network {
    /// No messages, no links.
    pub const fn new() -> Self {
        Self {
            in_flight: heapless::Vec::new(),
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
    pub fn in_flight(&self) -> &[InFlight] {
        &self.in_flight
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

    /// Puts a message in flight; false (and counted) if the list is full.
    pub fn send(&mut self, from: usize, to: usize, bytes: &[u8]) -> bool {
        let (Ok(from), Ok(to)) = (u8::try_from(from), u8::try_from(to)) else {
            self.stats.dropped_full = self.stats.dropped_full.saturating_add(1);
            return false;
        };
        let Ok(bytes) = MsgBytes::from_slice(bytes) else {
            self.stats.dropped_full = self.stats.dropped_full.saturating_add(1);
            return false;
        };
        if self.in_flight.push(InFlight { from, to, bytes }).is_err() {
            self.stats.dropped_full = self.stats.dropped_full.saturating_add(1);
            return false;
        }
        self.stats.sent = self.stats.sent.saturating_add(1);
        true
    }

    /// Takes message `index` (modulo the count) out of flight, for delivery.
    pub fn take(&mut self, index: usize) -> Option<InFlight> {
        let len = self.in_flight.len();
        if len == 0 {
            return None;
        }
        Some(self.in_flight.remove(index % len))
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
        let len = self.in_flight.len();
        let Some(copy) = self.in_flight.get(index % len.max(1)).cloned() else {
            return;
        };
        if self.in_flight.push(copy).is_err() {
            self.stats.dropped_full = self.stats.dropped_full.saturating_add(1);
        } else {
            self.stats.duplicated = self.stats.duplicated.saturating_add(1);
        }
    }
}

/// The mask bit of sled `index` (0 past [`MAX_SLEDS`]).
pub(crate) const fn bit(index: usize) -> SledMask {
    if index < MAX_SLEDS { 1 << index } else { 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_symmetric_and_never_to_self() {
        let mut net = Network::new();
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
        let mut net = Network::new();
        for _ in 0..MAX_IN_FLIGHT {
            assert!(net.send(0, 1, &[1, 2]));
        }
        assert!(!net.send(0, 1, &[3]));
        net.duplicate(0);
        assert_eq!(net.stats().dropped_full, 2);
        assert_eq!(net.in_flight().len(), MAX_IN_FLIGHT);
        assert_eq!(net.take(MAX_IN_FLIGHT + 1).unwrap().bytes[..], [1, 2]);
    }
}
