//! One counter per kind of event that has no caller to return an error to:
//! a bad message from a peer, a dropped message, a bound that was hit. The
//! firmware maps them to its ring buffer, the host shim to metrics, so an
//! operator sees that something is wrong without reading logs.

use core::fmt;

macro_rules! events {
    ($( $(#[doc = $doc:literal])* $variant:ident => $name:literal, )+) => {
        /// A counted event. The name is stable: exporters use it as a metric
        /// label.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub enum Event {
            $( $(#[doc = $doc])* $variant, )+
        }

        impl Event {
            /// Every event, in counter order.
            pub const ALL: &'static [Event] = &[$(Event::$variant),+];

            /// The event's stable snake_case name.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Event::$variant => $name, )+
                }
            }
        }
    };
}

events! {
    /// A peer message named another rack.
    WrongRackId => "wrong_rack_id",
    /// A peer message arrived while this node is expunged.
    WhileExpunged => "while_expunged",
    /// A peer message came from a sled that is not a member of the epoch it
    /// is about.
    FromNonMember => "from_non_member",
    /// A peer message was about an epoch this node is not working on, or one
    /// already superseded.
    WrongEpoch => "wrong_epoch",
    /// A `Prepare` did not come from its configuration's coordinator, or its
    /// configuration or share did not fit this node.
    InvalidPrepare => "invalid_prepare",
    /// A received share did not match the digest listed for its sender.
    InvalidShareDigest => "invalid_share_digest",
    /// A peer sent a share it had already sent.
    DuplicateShare => "duplicate_share",
    /// An LRTQ share's digest is not one of the rack's LRTQ digests.
    UnknownLrtqShareDigest => "unknown_lrtq_share_digest",
    /// An LRTQ share with the same digest already came from another node.
    DuplicateLrtqShareDigest => "duplicate_lrtq_share_digest",
    /// A message nobody on this node was waiting for.
    Unexpected => "unexpected",
    /// Bytes from a peer did not decode.
    Undecodable => "undecodable",
    /// A request this node cannot answer (no share, no LRTQ data).
    CannotAnswer => "cannot_answer",
    /// A reply was not queued because the peer that asked is not connected.
    NotConnected => "not_connected",
    /// A message was not queued because the outgoing queue is full.
    OutgoingQueueFull => "outgoing_queue_full",
    /// A queued message was dropped because what it referred to is gone.
    OutgoingStale => "outgoing_stale",
    /// A connection was not recorded because the table of peers is full.
    ConnectionTableFull => "connection_table_full",
    /// A configuration was not stored because `MAX_STORED_CONFIGS` was
    /// reached (never expected: obsolete ones are dropped first).
    ConfigDropped => "config_dropped",
    /// The oldest retained secret was dropped to respect
    /// `MAX_RETAINED_SECRETS`.
    RetainedSecretDropped => "retained_secret_dropped",
    /// An alarm was not recorded because the alarm list is full.
    AlarmDropped => "alarm_dropped",
    /// The caller's RNG failed during a protocol step.
    RngFailure => "rng_failure",
}

/// The number of counted events.
pub const EVENT_COUNT: usize = Event::ALL.len();

/// Counts of each [`Event`] since the node's context was made. Saturating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters([u32; EVENT_COUNT]);

impl Default for Counters {
    fn default() -> Self {
        Self([0; EVENT_COUNT])
    }
}

impl Counters {
    /// How often `event` happened.
    pub fn get(&self, event: Event) -> u32 {
        self.0.get(event as usize).copied().unwrap_or(0)
    }

    /// Every event with its count, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = (Event, u32)> + '_ {
        Event::ALL.iter().zip(self.0.iter()).map(|(e, n)| (*e, *n))
    }

    /// The sum of all counts: zero means nothing odd has happened.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|&n| u64::from(n)).sum()
    }

    pub(crate) fn bump(&mut self, event: Event) {
        if let Some(n) = self.0.get_mut(event as usize) {
            *n = n.saturating_add(1);
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_event_has_its_own_counter() {
        let mut counters = Counters::default();
        counters.bump(Event::WrongRackId);
        counters.bump(Event::WrongRackId);
        counters.bump(Event::RngFailure);
        assert_eq!(counters.get(Event::WrongRackId), 2);
        assert_eq!(counters.get(Event::RngFailure), 1);
        assert_eq!(counters.get(Event::Undecodable), 0);
        assert_eq!(counters.total(), 3);
        assert_eq!(counters.iter().count(), EVENT_COUNT);
    }

    #[test]
    fn event_names_are_unique() {
        for (i, a) in Event::ALL.iter().enumerate() {
            for b in &Event::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }
}
