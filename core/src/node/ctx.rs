//! The context a caller hands to every node call: persistent state, the
//! outgoing queue, connected peers, alarms, counters and the RNG.
//!
//! Its public methods are what the *caller* may do (read and persist the
//! state, drain messages, poll alarms and counters); its crate-private
//! methods are what the *node* may do (change the state, queue messages,
//! raise alarms, count events, draw randomness).

use core::fmt;

use rand_core::TryCryptoRng;

use crate::ids::{Epoch, PlatformId};
use crate::limits::{MAX_ALARMS, MAX_CONNECTED, MAX_OUTGOING};
use crate::log;
use crate::node::alarms::Alarm;
use crate::node::counters::{Counters, Event};
use crate::persistent::PersistentState;
use crate::wire::{self, WireError};

/// A message the node wants sent, by reference to the state that holds its
/// contents. [`crate::node::Node::next_message`] turns it into a message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub(crate) enum Outgoing {
    /// The stored configuration of this epoch and the receiver's share, held
    /// by the coordinator.
    Prepare(Epoch),
    PrepareAck(Epoch),
    GetShare(Epoch),
    /// This node's stored share of this epoch.
    Share(Epoch),
    GetLrtqShare,
    /// This node's LRTQ share.
    LrtqShare,
    Expunged(Epoch),
    /// The stored configuration of this (committed) epoch.
    CommitAdvance(Epoch),
}

/// Everything a node reads and changes besides its in-memory protocol
/// state. Owned by the caller, passed to each node call.
pub struct NodeCtx<R> {
    id: PlatformId,
    state: PersistentState,
    state_changed: bool,
    outgoing: heapless::Deque<(PlatformId, Outgoing), MAX_OUTGOING>,
    connected: heapless::Vec<PlatformId, MAX_CONNECTED, u8>,
    alarms: heapless::Vec<Alarm, MAX_ALARMS, u8>,
    counters: Counters,
    rng: R,
}

/// Why [`NodeCtx::restore_lrtq`] set no LRTQ share data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RestoreLrtqError {
    /// The state is not empty: LRTQ data only ever starts a sled that has
    /// nothing stored. Nothing changed.
    StateNotEmpty,
    /// The bytes are not LRTQ share data.
    Wire(WireError),
}

impl fmt::Display for RestoreLrtqError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::StateNotEmpty => f.write_str("the persistent state is not empty"),
            Self::Wire(error) => write!(f, "LRTQ share data: {error}"),
        }
    }
}

impl core::error::Error for RestoreLrtqError {}

impl<R: TryCryptoRng> NodeCtx<R> {
    /// A context for sled `id` with an empty persistent state; at boot the
    /// caller then fills the state in place with [`Self::restore_state`]
    /// (from storage) or [`Self::restore_lrtq`] (from the LRTQ ledger).
    ///
    /// The context is large (about 30 KiB, the persistent state 20 KiB of
    /// it), so a caller with a small stack constructs it straight into the
    /// static memory it lives in, e.g. `cortex_m::singleton!(: NodeCtx<R>
    /// = NodeCtx::new(id, rng))`: an empty state is a few length fields,
    /// which the compiler then writes in place (`target-tests`' node
    /// binary measures this on the service processor; a temporary copy
    /// would exceed its stack budget). Not a `const fn` for a static
    /// initialiser: neither a [`PlatformId`] nor a seeded RNG can be made
    /// at compile time.
    pub fn new(id: PlatformId, rng: R) -> Self {
        Self {
            id,
            state: PersistentState::new(),
            state_changed: false,
            outgoing: heapless::Deque::new(),
            connected: heapless::Vec::new(),
            alarms: heapless::Vec::new(),
            counters: Counters::default(),
            rng,
        }
    }

    /// This sled.
    pub fn id(&self) -> &PlatformId {
        &self.id
    }

    /// The persistent state, to store after a call that changed it.
    pub fn persistent_state(&self) -> &PersistentState {
        &self.state
    }

    /// Whether the persistent state changed since the last call to this
    /// method. The caller must store the state before sending anything.
    pub fn take_state_changed(&mut self) -> bool {
        core::mem::replace(&mut self.state_changed, false)
    }

    /// Replaces the persistent state with the one `bytes` encode (what
    /// the caller stored), decoded in place: at most one stored
    /// configuration's worth of data is on the stack at a time. For boot,
    /// before any node call: a running [`crate::node::Node`] would not know
    /// its state was replaced.
    ///
    /// On an error the state is left empty and the error returned; the
    /// caller then starts from LRTQ data ([`Self::restore_lrtq`]) or as a
    /// new sled, or refuses to run (an
    /// [`WireError::UnsupportedVersion`] means a newer build wrote the
    /// bytes).
    ///
    /// Either way the state is marked unchanged: after a success it is what
    /// storage holds, and after an error storing the empty state would
    /// overwrite bytes the caller may still want (a newer format's).
    pub fn restore_state(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        self.state_changed = false;
        wire::decode_persistent_state_into(bytes, &mut self.state)
    }

    /// Sets the LRTQ share data `bytes` encode (as
    /// [`wire::encode_lrtq_share_data`] writes them) into the empty
    /// persistent state, decoded in place: the data (about 8 KiB) is never
    /// on the stack.
    ///
    /// Refused with [`RestoreLrtqError::StateNotEmpty`], changing nothing,
    /// if the state holds anything (restored from storage, or changed by
    /// the node). On a decoding error the state is left empty. On success
    /// the state is marked changed: storage does not hold it yet.
    pub fn restore_lrtq(&mut self, bytes: &[u8]) -> Result<(), RestoreLrtqError> {
        if !self.state.is_empty() {
            return Err(RestoreLrtqError::StateNotEmpty);
        }
        wire::decode_lrtq_share_data_into(bytes, self.state.lrtq_mut())
            .map_err(RestoreLrtqError::Wire)?;
        self.state_changed = true;
        Ok(())
    }

    /// Whether messages are queued.
    pub fn has_outgoing(&self) -> bool {
        !self.outgoing.is_empty()
    }

    /// Peers currently connected.
    pub fn connected(&self) -> &[PlatformId] {
        &self.connected
    }

    /// Alarms raised so far.
    pub fn alarms(&self) -> &[Alarm] {
        &self.alarms
    }

    /// Event counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The RNG, for a caller that wants to reseed or inspect it.
    pub fn rng_mut(&mut self) -> &mut R {
        &mut self.rng
    }

    /// Counts an event the caller saw on the node's behalf (bytes that did
    /// not decode, for example).
    pub fn count(&mut self, event: Event) {
        self.counters.bump(event);
    }

    // ---- what the node may do ----

    pub(crate) fn is_connected(&self, peer: &PlatformId) -> bool {
        self.connected.iter().any(|p| p == peer)
    }

    /// Records a connection; false if it was not recorded (table full).
    pub(crate) fn add_connection(&mut self, peer: &PlatformId) -> bool {
        if self.is_connected(peer) {
            return true;
        }
        if self.connected.push(peer.clone()).is_err() {
            self.count(Event::ConnectionTableFull);
            return false;
        }
        true
    }

    pub(crate) fn remove_connection(&mut self, peer: &PlatformId) {
        self.connected.retain(|p| p != peer);
        // Nothing still queued for a peer that left will reach it.
        self.outgoing.retain(|(to, _)| to != peer);
    }

    /// Queues a request (`Prepare`, `GetShare`, `GetLrtqShare`) if `to` is
    /// connected. A peer that is not connected is normal here: `on_connect`
    /// sends the request when it comes.
    pub(crate) fn request(&mut self, to: &PlatformId, msg: Outgoing) {
        if self.is_connected(to) {
            self.queue(to, msg);
        }
    }

    /// Queues a reply. It goes to a peer that just spoke to us, so a peer
    /// that is not connected is odd: counted and dropped.
    pub(crate) fn reply(&mut self, to: &PlatformId, msg: Outgoing) {
        if self.is_connected(to) {
            self.queue(to, msg);
        } else {
            self.count(Event::NotConnected);
        }
    }

    fn queue(&mut self, to: &PlatformId, msg: Outgoing) {
        if self.outgoing.push_back((to.clone(), msg)).is_err() {
            log::warning!("outgoing queue full, dropping a message");
            self.count(Event::OutgoingQueueFull);
        }
    }

    pub(crate) fn pop_outgoing(&mut self) -> Option<(PlatformId, Outgoing)> {
        self.outgoing.pop_front()
    }

    pub(crate) fn state(&self) -> &PersistentState {
        &self.state
    }

    /// Changes the persistent state and marks it changed.
    pub(crate) fn update_state<T>(&mut self, change: impl FnOnce(&mut PersistentState) -> T) -> T {
        self.state_changed = true;
        change(&mut self.state)
    }

    /// [`Self::update_state`] for a change that draws randomness (sealing
    /// old secrets into a configuration built in place).
    pub(crate) fn update_state_with_rng<T>(
        &mut self,
        change: impl FnOnce(&mut PersistentState, &mut R) -> T,
    ) -> T {
        self.state_changed = true;
        change(&mut self.state, &mut self.rng)
    }

    pub(crate) fn raise_alarm(&mut self, alarm: Alarm) {
        log::error!("ALARM: {}", alarm);
        if !self.alarms.contains(&alarm) && self.alarms.push(alarm).is_err() {
            self.count(Event::AlarmDropped);
        }
    }

    pub(crate) fn rng(&mut self) -> &mut R {
        &mut self.rng
    }

    pub(crate) fn clear_outgoing(&mut self) {
        self.outgoing.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Configuration;
    use crate::config::tests::{fields, platform};
    use crate::crypto::{LrtqShare, Share, ShareDigest};
    use crate::ids::RackId;
    use crate::limits::{LRTQ_TOTAL_SHARES, MAX_ALARMS, MAX_CONNECTED, MAX_OUTGOING};
    use crate::persistent::LrtqShareData;
    use crate::wire::{MAX_LRTQ_SHARE_DATA_LEN, MAX_PERSISTENT_STATE_LEN, WIRE_VERSION};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;
    use std::vec::Vec;

    fn ctx() -> NodeCtx<ChaCha20Rng> {
        NodeCtx::new(platform(0), ChaCha20Rng::seed_from_u64(0))
    }

    #[test]
    fn a_full_connection_table_is_counted() {
        let mut ctx = ctx();
        for i in 1..=MAX_CONNECTED {
            assert!(ctx.add_connection(&platform(i)));
        }
        assert!(ctx.add_connection(&platform(1)), "already connected");
        assert!(!ctx.add_connection(&platform(MAX_CONNECTED + 1)));
        assert_eq!(ctx.counters().get(Event::ConnectionTableFull), 1);
        ctx.remove_connection(&platform(1));
        assert!(ctx.add_connection(&platform(MAX_CONNECTED + 1)));
    }

    #[test]
    fn a_full_outgoing_queue_is_counted() {
        let mut ctx = ctx();
        ctx.add_connection(&platform(1));
        for _ in 0..MAX_OUTGOING {
            ctx.request(&platform(1), Outgoing::GetLrtqShare);
        }
        ctx.request(&platform(1), Outgoing::GetLrtqShare);
        assert_eq!(ctx.counters().get(Event::OutgoingQueueFull), 1);
        let mut drained = 0;
        while ctx.pop_outgoing().is_some() {
            drained += 1;
        }
        assert_eq!(drained, MAX_OUTGOING);
    }

    #[test]
    fn alarms_are_recorded_once_and_bounded() {
        let mut ctx = ctx();
        ctx.raise_alarm(Alarm::DecryptionFailed(Epoch(1)));
        ctx.raise_alarm(Alarm::DecryptionFailed(Epoch(1)));
        assert_eq!(ctx.alarms().len(), 1);
        for e in 2..=(MAX_ALARMS as u64 + 1) {
            ctx.raise_alarm(Alarm::ReconstructionFailed(Epoch(e)));
        }
        assert_eq!(ctx.alarms().len(), MAX_ALARMS);
        assert_eq!(ctx.counters().get(Event::AlarmDropped), 1);
    }

    #[test]
    fn a_disconnect_drops_what_was_queued_for_the_peer() {
        let mut ctx = ctx();
        ctx.add_connection(&platform(1));
        ctx.add_connection(&platform(2));
        ctx.request(&platform(1), Outgoing::GetLrtqShare);
        ctx.request(&platform(2), Outgoing::GetLrtqShare);
        ctx.remove_connection(&platform(1));
        assert_eq!(ctx.pop_outgoing().map(|(to, _)| to), Some(platform(2)));
        assert!(ctx.pop_outgoing().is_none());
    }

    fn lrtq_data() -> LrtqShareData {
        let mut share = [9u8; 33];
        share[0] = 1;
        LrtqShareData {
            rack_id: RackId([7; 16]),
            threshold: crate::ids::LrtqThreshold::new(3).unwrap(),
            share: LrtqShare::from_bytes(&share).unwrap(),
            share_digests: (0..LRTQ_TOTAL_SHARES)
                .map(|i| ShareDigest([i as u8; 32]))
                .collect(),
        }
    }

    fn config(epoch: u64) -> Configuration {
        let mut f = fields(4, 2);
        f.epoch = Epoch(epoch);
        Configuration::new(f).unwrap()
    }

    /// A state with every part: LRTQ data, a committed configuration and a
    /// newer one, and an expungement.
    fn full_state() -> PersistentState {
        let mut state = PersistentState::with_lrtq(lrtq_data());
        state
            .store(&config(2), Some(&Share::new(1, &[3; 32]).unwrap()))
            .unwrap();
        assert!(state.commit(Epoch(2)));
        state.store(&config(3), None).unwrap();
        state.set_expunged(Epoch(3), &platform(1));
        state
    }

    fn encoded_state(state: &PersistentState) -> Vec<u8> {
        let mut buf = std::vec![0u8; MAX_PERSISTENT_STATE_LEN];
        wire::encode_persistent_state(state, &mut buf)
            .unwrap()
            .to_vec()
    }

    fn encoded_lrtq(data: &LrtqShareData) -> Vec<u8> {
        let mut buf = std::vec![0u8; MAX_LRTQ_SHARE_DATA_LEN];
        wire::encode_lrtq_share_data(data, &mut buf)
            .unwrap()
            .to_vec()
    }

    /// Bytes that are not a state, with the error each gives.
    fn garbage() -> [(Vec<u8>, WireError); 4] {
        let truncated = {
            let mut bytes = encoded_state(&full_state());
            bytes.truncate(bytes.len() / 2);
            bytes
        };
        [
            (Vec::new(), WireError::Empty),
            (std::vec![0xff; 40], WireError::UnsupportedVersion(0xff)),
            (
                std::vec![WIRE_VERSION, 0xff, 0xff, 0xff],
                WireError::Malformed,
            ),
            (truncated, WireError::Malformed),
        ]
    }

    #[test]
    fn a_new_context_has_an_empty_unchanged_state() {
        let mut ctx = ctx();
        assert!(ctx.persistent_state().is_empty());
        assert!(!ctx.take_state_changed());
    }

    #[test]
    fn a_restored_state_encodes_as_the_stored_bytes() {
        let stored = encoded_state(&full_state());
        let mut ctx = ctx();
        ctx.restore_state(&stored).unwrap();
        assert_eq!(encoded_state(ctx.persistent_state()), stored);
        assert!(!ctx.take_state_changed(), "storage already holds it");
        // Restoring again over a full state gives the same state.
        ctx.restore_state(&stored).unwrap();
        assert_eq!(encoded_state(ctx.persistent_state()), stored);
    }

    #[test]
    fn garbage_leaves_an_empty_state_and_says_why() {
        let stored = encoded_state(&full_state());
        for (bytes, error) in garbage() {
            let mut ctx = ctx();
            // Whatever the state held before must not survive.
            ctx.restore_state(&stored).unwrap();
            ctx.update_state(|_| ());
            assert_eq!(ctx.restore_state(&bytes), Err(error));
            assert!(ctx.persistent_state().is_empty());
            assert!(!ctx.take_state_changed(), "nothing to store after {error}");
        }
    }

    #[test]
    fn lrtq_data_restored_in_place_equals_the_by_value_state() {
        let data = lrtq_data();
        let mut ctx = ctx();
        ctx.restore_lrtq(&encoded_lrtq(&data)).unwrap();
        assert_eq!(
            encoded_state(ctx.persistent_state()),
            encoded_state(&PersistentState::with_lrtq(data))
        );
        assert!(ctx.take_state_changed(), "storage does not hold it yet");
    }

    #[test]
    fn lrtq_data_is_refused_into_a_state_that_is_not_empty() {
        let data = lrtq_data();
        let stored = encoded_state(&full_state());
        let mut ctx = ctx();
        ctx.restore_state(&stored).unwrap();
        assert_eq!(
            ctx.restore_lrtq(&encoded_lrtq(&data)),
            Err(RestoreLrtqError::StateNotEmpty)
        );
        assert_eq!(encoded_state(ctx.persistent_state()), stored);
        assert!(!ctx.take_state_changed());

        // Not only LRTQ data counts: a lone expungement does too.
        let mut expunged = PersistentState::new();
        expunged.set_expunged(Epoch(4), &platform(2));
        let mut ctx = self::ctx();
        ctx.restore_state(&encoded_state(&expunged)).unwrap();
        assert_eq!(
            ctx.restore_lrtq(&encoded_lrtq(&data)),
            Err(RestoreLrtqError::StateNotEmpty)
        );
    }

    #[test]
    fn bad_lrtq_bytes_leave_an_empty_state_and_say_why() {
        let good = encoded_lrtq(&lrtq_data());
        let mut bad_share = good.clone();
        // The share's identifier (after version, rack id and threshold).
        bad_share[1 + 16 + 1] = 0;
        let cases = [
            (Vec::new(), WireError::Empty),
            (std::vec![2; 10], WireError::UnsupportedVersion(2)),
            (good[..good.len() - 1].to_vec(), WireError::Malformed),
            (bad_share, WireError::Malformed),
            ([&good[..], &[0]].concat(), WireError::TrailingBytes),
        ];
        for (bytes, error) in cases {
            let mut ctx = ctx();
            assert_eq!(ctx.restore_lrtq(&bytes), Err(RestoreLrtqError::Wire(error)));
            assert!(ctx.persistent_state().is_empty());
            assert!(!ctx.take_state_changed());
            assert!(
                std::format!("{}", RestoreLrtqError::Wire(error)).starts_with("LRTQ share data: ")
            );
            // The failed attempt leaves room for a good one.
            ctx.restore_lrtq(&good).unwrap();
            assert_eq!(
                ctx.persistent_state().lrtq().map(|d| d.threshold.get()),
                Some(3)
            );
        }
    }
}
