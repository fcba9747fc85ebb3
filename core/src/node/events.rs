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
/// dropped and counted (`Counter::EventDropped`) by the context.
pub(crate) type EventQueue = heapless::Deque<Event, MAX_EVENTS>;
