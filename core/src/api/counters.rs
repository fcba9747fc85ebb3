//! One counter per kind of occurrence that has no caller to return an error
//! to: a refused message from a peer, a dropped message, a bound that was
//! hit. The firmware maps them to its ring buffer, the host shim to metrics,
//! so an operator sees that something is wrong without reading logs.
//!
//! Each occurrence is counted once, in one place: a refused peer message by
//! the message handler's caller (the handlers return the [`Counter`] as
//! their error), everything else where it happens.
//!
//! Each counter is declared with its [`CounterKind`]: an anomaly (a healthy
//! rack never counts it) or normal (the churn of a live rack, such as the
//! shares that arrive after a collection finished). An honest run leaves
//! every anomaly at zero, so a nonzero one is worth a look, and counting a
//! normal occurrence as an anomaly (or the reverse) is a bug.

use core::fmt;

macro_rules! counters {
    ($( $(#[doc = $doc:literal])* $variant:ident => $name:literal, $kind:ident, )+) => {
        /// What is counted. The name is stable: exporters use it as a metric
        /// label.
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[cfg_attr(feature = "defmt", derive(defmt::Format))]
        pub enum Counter {
            $( $(#[doc = $doc])* $variant, )+
        }

        impl Counter {
            /// Every counter, in order.
            pub const ALL: &'static [Counter] = &[$(Counter::$variant),+];

            /// The counter's stable snake_case name.
            pub const fn name(self) -> &'static str {
                match self {
                    $( Counter::$variant => $name, )+
                }
            }

            /// Whether a healthy rack ever counts it.
            pub const fn kind(self) -> CounterKind {
                match self {
                    $( Counter::$variant => CounterKind::$kind, )+
                }
            }
        }
    };
}

/// Whether a healthy rack ever counts a [`Counter`]: each counter is
/// declared with its kind, so a new one cannot be added unclassified.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum CounterKind {
    /// Something a healthy rack never does (a forged or invalid message,
    /// another rack's, bytes that do not decode, a bound or an invariant
    /// broken): any count is worth an operator's look.
    Anomaly,
    /// The ordinary churn of a live rack: a message that arrives after the
    /// work it answered is over, a repeat, a peer that has not caught up, a
    /// peer that went away.
    Normal,
}

impl Counter {
    /// Whether this counter is an [`CounterKind::Anomaly`]: an honest run
    /// leaves every one of them at zero.
    pub const fn is_anomaly(self) -> bool {
        matches!(self.kind(), CounterKind::Anomaly)
    }
}

counters! {
    /// A peer message named another rack.
    WrongRackId => "wrong_rack_id", Anomaly,
    /// A peer message arrived while this node is expunged (from a peer not
    /// yet told of the commit that removed it).
    WhileExpunged => "while_expunged", Normal,
    /// A peer message came from a sled that is not a member of the epoch it
    /// is about.
    FromNonMember => "from_non_member", Anomaly,
    /// A peer message was about a configuration this node is not a member
    /// of.
    NotAMember => "not_a_member", Anomaly,
    /// A configuration differs from the one stored for its epoch (the
    /// `MismatchedConfigurations` alarm is raised too).
    ConflictingConfiguration => "conflicting_configuration", Anomaly,
    /// A peer message was about an epoch this node is not working on, or one
    /// already superseded (a rack that reconfigures sees stragglers).
    WrongEpoch => "wrong_epoch", Normal,
    /// A `Prepare` did not come from its configuration's coordinator, or its
    /// configuration or share did not fit this node.
    InvalidPrepare => "invalid_prepare", Anomaly,
    /// A received share did not match the digest listed for its sender.
    InvalidShareDigest => "invalid_share_digest", Anomaly,
    /// A peer sent a share it had already sent (asked again after a
    /// reconnect, and both answers came).
    DuplicateShare => "duplicate_share", Normal,
    /// An LRTQ share's digest is not one of the rack's LRTQ digests.
    UnknownLrtqShareDigest => "unknown_lrtq_share_digest", Anomaly,
    /// An LRTQ share with the same digest already came from another node.
    DuplicateLrtqShareDigest => "duplicate_lrtq_share_digest", Anomaly,
    /// A message that nothing this node did or stores explains: an ack of
    /// a prepare it never sent, a share of an epoch it does not know, an
    /// LRTQ share while it holds no LRTQ data.
    Unexpected => "unexpected", Anomaly,
    /// A prepare ack of a configuration this node coordinated, from one of
    /// its members, after the coordination ended (committed, or this node
    /// restarted): the acks past what Nexus needed.
    LatePrepareAck => "late_prepare_ack", Normal,
    /// A share of a stored configuration, from one of its members and
    /// matching its digest, that no collection here wanted any more: a
    /// collection finishes with the first `K` shares, and the other members
    /// asked answer too.
    LateShare => "late_share", Normal,
    /// A genuine LRTQ share of this rack after the upgrade stopped
    /// collecting them (it needs only the LRTQ threshold of them).
    LateLrtqShare => "late_lrtq_share", Normal,
    /// Bytes from a peer did not decode.
    Undecodable => "undecodable", Anomaly,
    /// Bytes from a peer were in a wire format version this build does not
    /// read (a newer peer during a rolling upgrade).
    UnsupportedVersion => "unsupported_version", Anomaly,
    /// A peer's `Expunged` or `CommitAdvance` that this node's own state
    /// proves false, or that came from a sled outside the configuration it
    /// is about (only a member can truthfully send either).
    FalseClaim => "false_claim", Anomaly,
    /// A request this node cannot answer (no share, no LRTQ data): a sled
    /// that missed a prepare is asked for its share before it computed it.
    CannotAnswer => "cannot_answer", Normal,
    /// A reply was not queued because the peer that asked is not connected.
    NotConnected => "not_connected", Normal,
    /// A message was not queued because the outgoing queue is full.
    OutgoingQueueFull => "outgoing_queue_full", Anomaly,
    /// A queued message was dropped because what it referred to is gone.
    OutgoingStale => "outgoing_stale", Normal,
    /// A connection was not recorded because the table of peers is full.
    ConnectionTableFull => "connection_table_full", Anomaly,
    /// A configuration was not stored because `MAX_STORED_CONFIGS` was
    /// reached (never expected: obsolete ones are dropped first).
    ConfigDropped => "config_dropped", Anomaly,
    /// The oldest retained secret was dropped to respect
    /// `MAX_RETAINED_SECRETS`.
    RetainedSecretDropped => "retained_secret_dropped", Normal,
    /// An alarm was not recorded because the alarm list is full.
    AlarmDropped => "alarm_dropped", Anomaly,
    /// The caller's RNG failed during a protocol step.
    RngFailure => "rng_failure", Anomaly,
    /// An event was not recorded because the event queue is full.
    EventDropped => "event_dropped", Anomaly,
    /// A step that cannot fail did (a broken invariant of this code, not
    /// of the protocol); the step was abandoned.
    Internal => "internal", Anomaly,
    /// A Nexus request named another rack than this node's (in its
    /// authenticator or its body): refused before any MAC work.
    RequestForeignRack => "request_foreign_rack", Anomaly,
    /// A Nexus request's authenticator named another sled as its target.
    RequestWrongTarget => "request_wrong_target", Anomaly,
    /// A Nexus request came to a node that was given no request key: it
    /// refuses every Nexus call.
    RequestNoKey => "request_no_key", Anomaly,
    /// A Nexus request's tag did not match: altered on the way, or not
    /// made by Nexus.
    RequestBadTag => "request_bad_tag", Anomaly,
}

/// The number of counters.
pub const COUNTER_COUNT: usize = Counter::ALL.len();

/// How often each [`Counter`] happened since the node's context was made.
/// Saturating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counters([u32; COUNTER_COUNT]);

impl Default for Counters {
    fn default() -> Self {
        Self::new()
    }
}

impl Counters {
    /// All zero.
    pub const fn new() -> Self {
        Self([0; COUNTER_COUNT])
    }

    /// How often `counter` happened.
    pub fn get(&self, counter: Counter) -> u32 {
        self.0.get(counter as usize).copied().unwrap_or(0)
    }

    /// Every counter with its count, in a fixed order.
    pub fn iter(&self) -> impl Iterator<Item = (Counter, u32)> + '_ {
        Counter::ALL
            .iter()
            .zip(self.0.iter())
            .map(|(c, n)| (*c, *n))
    }

    /// The sum of all counts.
    pub fn total(&self) -> u64 {
        self.0.iter().map(|&n| u64::from(n)).sum()
    }

    /// The sum of the [anomalies](Counter::is_anomaly): zero in an honest
    /// rack.
    pub fn anomalies(&self) -> u64 {
        self.iter()
            .filter(|(counter, _)| counter.is_anomaly())
            .map(|(_, n)| u64::from(n))
            .sum()
    }

    pub(crate) fn bump(&mut self, counter: Counter) {
        if let Some(n) = self.0.get_mut(counter as usize) {
            *n = n.saturating_add(1);
        }
    }
}

/// In a human-readable format (JSON), a map from each counter's stable name
/// to its count; in postcard, the counts in counter order.
impl serde::Serialize for Counters {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::{SerializeMap, SerializeTuple};
        if serializer.is_human_readable() {
            let mut map = serializer.serialize_map(Some(COUNTER_COUNT))?;
            for (counter, count) in self.iter() {
                map.serialize_entry(counter.name(), &count)?;
            }
            map.end()
        } else {
            let mut tuple = serializer.serialize_tuple(COUNTER_COUNT)?;
            for count in &self.0 {
                tuple.serialize_element(count)?;
            }
            tuple.end()
        }
    }
}

#[cfg(any(test, feature = "host"))]
impl<'de> serde::Deserialize<'de> for Counters {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            deserializer.deserialize_map(CountersVisitor)
        } else {
            deserializer.deserialize_tuple(COUNTER_COUNT, CountersVisitor)
        }
    }
}

/// Reads [`Counters`] from either of its forms. A name this build does not
/// know (a newer node's counter) is skipped; a missing one reads as 0.
#[cfg(any(test, feature = "host"))]
struct CountersVisitor;

#[cfg(any(test, feature = "host"))]
impl<'de> serde::de::Visitor<'de> for CountersVisitor {
    type Value = Counters;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("event counters")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Counters, A::Error> {
        let mut counters = Counters::new();
        while let Some(name) = map.next_key::<&str>()? {
            let count: u32 = map.next_value()?;
            if let Some(counter) = Counter::ALL.iter().find(|c| c.name() == name)
                && let Some(slot) = counters.0.get_mut(*counter as usize)
            {
                *slot = count;
            }
        }
        Ok(counters)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Counters, A::Error> {
        let mut counters = Counters::new();
        for (index, slot) in counters.0.iter_mut().enumerate() {
            *slot = seq
                .next_element()?
                .ok_or_else(|| serde::de::Error::invalid_length(index, &self))?;
        }
        Ok(counters)
    }
}

impl fmt::Display for Counter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_counter_counts_on_its_own() {
        let mut counters = Counters::default();
        counters.bump(Counter::WrongRackId);
        counters.bump(Counter::WrongRackId);
        counters.bump(Counter::RngFailure);
        assert_eq!(counters.get(Counter::WrongRackId), 2);
        assert_eq!(counters.get(Counter::RngFailure), 1);
        assert_eq!(counters.get(Counter::Undecodable), 0);
        assert_eq!(counters.total(), 3);
        assert_eq!(counters.iter().count(), COUNTER_COUNT);
    }

    #[test]
    fn anomalies_sum_only_anomaly_counters() {
        let mut counters = Counters::default();
        counters.bump(Counter::LateShare);
        counters.bump(Counter::LatePrepareAck);
        counters.bump(Counter::DuplicateShare);
        assert_eq!(counters.anomalies(), 0);
        counters.bump(Counter::InvalidShareDigest);
        counters.bump(Counter::Unexpected);
        assert_eq!(counters.anomalies(), 2);
        assert_eq!(counters.total(), 5);
    }

    #[test]
    fn both_kinds_are_used_and_the_usual_anomalies_are_anomalies() {
        for counter in [
            Counter::WrongRackId,
            Counter::InvalidShareDigest,
            Counter::Undecodable,
            Counter::FalseClaim,
            Counter::Unexpected,
            Counter::Internal,
        ] {
            assert!(counter.is_anomaly(), "{counter}");
        }
        for counter in [
            Counter::LatePrepareAck,
            Counter::LateShare,
            Counter::LateLrtqShare,
            Counter::DuplicateShare,
        ] {
            assert!(!counter.is_anomaly(), "{counter}");
        }
    }

    #[test]
    fn counter_names_are_unique() {
        for (i, a) in Counter::ALL.iter().enumerate() {
            for b in &Counter::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
            }
        }
    }
}
