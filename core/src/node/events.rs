//! What happened that no call returned: the node's event stream.
//!
//! A commit that arrived through a peer's `CommitAdvance`, a share computed
//! after shares trickled in, a secret that finished loading, an
//! expungement: each is the outcome of some later input, so the caller
//! learns of it here instead of re-polling. The host shim turns
//! [`Event::Committed`] into the watch that drives disk key rotation; the
//! firmware logs every event.
//!
//! Events describe the persistent state after the call that raised them,
//! so, like transmits, they are handed out only once that state is stored
//! (see the driving contract in [`crate::node`]).

use core::fmt;

use crate::api::Alarm;
use crate::ids::{Epoch, PlatformId};
use crate::limits::MAX_EVENTS;

/// Something that happened on the node.
#[derive(Clone, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[cfg_attr(feature = "model", derive(Hash))]
pub enum Event {
    /// This epoch is now committed here (by Nexus's call, a peer's
    /// `CommitAdvance`, a `Prepare` naming it, or a computed share).
    Committed(Epoch),
    /// This node computed its own share of a configuration whose prepare it
    /// missed.
    ShareComputed(Epoch),
    /// The rack secret of this (latest committed) epoch, and the older ones
    /// it carries, are loaded: `load_rack_secret` now returns them.
    SecretLoaded(Epoch),
    /// This node learned it is not a member of committed `epoch`; it stops
    /// all protocol activity for good.
    Expunged {
        /// The committed epoch it is not a member of.
        epoch: Epoch,
        /// The member that said so.
        from: PlatformId,
    },
    /// An invariant broke (see [`Alarm`]).
    AlarmRaised(Alarm),
    /// The coordination of `epoch` has prepare acks from enough members
    /// for Nexus to commit it (`K + Z`, PROTOCOL.md section 7).
    ReadyToCommit {
        /// The epoch being coordinated.
        epoch: Epoch,
        /// Members that acked, this node included.
        acks: u8,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Committed(epoch) => write!(f, "committed epoch {epoch}"),
            Self::ShareComputed(epoch) => write!(f, "computed own share of epoch {epoch}"),
            Self::SecretLoaded(epoch) => write!(f, "loaded the rack secret of epoch {epoch}"),
            Self::Expunged { epoch, from } => {
                write!(f, "expunged: not a member of epoch {epoch}, says {from}")
            }
            Self::AlarmRaised(alarm) => write!(f, "alarm: {alarm}"),
            Self::ReadyToCommit { epoch, acks } => {
                write!(f, "epoch {epoch} has {acks} prepare acks: enough to commit")
            }
        }
    }
}

/// The bounded queue of events not yet polled. When full, a new event is
/// dropped (and the context counts it, `Counter::EventDropped`).
///
/// An event is held without the 66-byte id of an [`Event::Expunged`]'s
/// sender, kept once beside the queue instead: an [`Event`] in each of
/// [`MAX_EVENTS`] entries was 1.3 KiB of static memory. So the queue holds
/// at most one expungement at a time (a node is expunged once: an expunged
/// node refuses every later message); a second one is dropped like an
/// event past the bound.
#[derive(Debug)]
#[cfg_attr(feature = "model", derive(Clone))]
pub(crate) struct EventQueue {
    events: heapless::Deque<Queued, MAX_EVENTS>,
    /// The sender of the queued [`Queued::Expunged`], if one is queued.
    expunged_by: Option<PlatformId>,
}

/// An [`Event`] as queued: the same, but for the expungement's sender.
#[derive(Clone, Copy, Debug)]
enum Queued {
    Committed(Epoch),
    ShareComputed(Epoch),
    SecretLoaded(Epoch),
    Expunged(Epoch),
    AlarmRaised(Alarm),
    ReadyToCommit { epoch: Epoch, acks: u8 },
}

/// The event could not be queued (the queue is full, or already holds an
/// expungement).
#[derive(Debug)]
pub(crate) struct QueueFull;

impl EventQueue {
    pub(crate) const fn new() -> Self {
        Self {
            events: heapless::Deque::new(),
            expunged_by: None,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.events.len()
    }

    pub(crate) fn clear(&mut self) {
        self.events.clear();
        self.expunged_by = None;
    }

    /// Queues `event` last.
    pub(crate) fn push_back(&mut self, event: Event) -> Result<(), QueueFull> {
        if self.events.is_full() {
            return Err(QueueFull);
        }
        let queued = match event {
            Event::Committed(epoch) => Queued::Committed(epoch),
            Event::ShareComputed(epoch) => Queued::ShareComputed(epoch),
            Event::SecretLoaded(epoch) => Queued::SecretLoaded(epoch),
            Event::Expunged { epoch, from } => {
                if self.expunged_by.is_some() {
                    return Err(QueueFull);
                }
                self.expunged_by = Some(from);
                Queued::Expunged(epoch)
            }
            Event::AlarmRaised(alarm) => Queued::AlarmRaised(alarm),
            Event::ReadyToCommit { epoch, acks } => Queued::ReadyToCommit { epoch, acks },
        };
        self.events.push_back(queued).map_err(|_| QueueFull)
    }

    /// The oldest event, taken out.
    pub(crate) fn pop_front(&mut self) -> Option<Event> {
        Some(match self.events.pop_front()? {
            Queued::Committed(epoch) => Event::Committed(epoch),
            Queued::ShareComputed(epoch) => Event::ShareComputed(epoch),
            Queued::SecretLoaded(epoch) => Event::SecretLoaded(epoch),
            Queued::Expunged(epoch) => Event::Expunged {
                epoch,
                // Always there: it was set when the event was queued.
                from: self.expunged_by.take()?,
            },
            Queued::AlarmRaised(alarm) => Event::AlarmRaised(alarm),
            Queued::ReadyToCommit { epoch, acks } => Event::ReadyToCommit { epoch, acks },
        })
    }

    /// The events, oldest first, without taking them out (from a copy).
    #[cfg(feature = "model")]
    pub(crate) fn iter(&self) -> impl Iterator<Item = Event> {
        let mut copy = self.clone();
        core::iter::from_fn(move || copy.pop_front())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::tests::platform;

    fn expunged(by: usize) -> Event {
        Event::Expunged {
            epoch: Epoch(4),
            from: platform(by),
        }
    }

    #[test]
    fn events_come_out_as_they_went_in_the_sender_of_one_expungement_kept() {
        let events = [
            Event::Committed(Epoch(1)),
            expunged(2),
            Event::ShareComputed(Epoch(2)),
            Event::SecretLoaded(Epoch(3)),
            Event::AlarmRaised(Alarm::DecryptionFailed(Epoch(5))),
            Event::ReadyToCommit {
                epoch: Epoch(6),
                acks: 3,
            },
        ];
        let mut queue = EventQueue::new();
        for event in events.clone() {
            queue.push_back(event).unwrap();
        }
        // One expungement at a time: its sender's place is taken.
        assert!(queue.push_back(expunged(3)).is_err());
        assert_eq!(queue.len(), events.len());
        let out: std::vec::Vec<Event> = core::iter::from_fn(|| queue.pop_front()).collect();
        assert_eq!(out, events);
        // Once polled, its place is free again.
        queue.push_back(expunged(3)).unwrap();
        assert_eq!(queue.pop_front(), Some(expunged(3)));
    }

    #[test]
    fn a_full_queue_refuses_the_next_event() {
        let mut queue = EventQueue::new();
        for epoch in 0..MAX_EVENTS as u64 {
            queue.push_back(Event::Committed(Epoch(epoch))).unwrap();
        }
        assert!(queue.push_back(Event::Committed(Epoch(99))).is_err());
        assert!(queue.push_back(expunged(1)).is_err());
        assert_eq!(queue.pop_front(), Some(Event::Committed(Epoch(0))));
    }
}
