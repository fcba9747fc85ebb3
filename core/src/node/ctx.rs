//! The context a caller hands to every node call: persistent state, the
//! outgoing queue, connected peers, alarms, counters and the RNG.
//!
//! Its public methods are what the *caller* may do (read and persist the
//! state, drain messages, poll alarms and counters); its crate-private
//! methods are what the *node* may do (change the state, queue messages,
//! raise alarms, count events, draw randomness).

use rand_core::TryCryptoRng;

use crate::ids::{Epoch, PlatformId};
use crate::limits::{MAX_ALARMS, MAX_CONNECTED, MAX_OUTGOING};
use crate::log;
use crate::node::alarms::Alarm;
use crate::node::counters::{Counters, Event};
use crate::persistent::PersistentState;

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

impl<R: TryCryptoRng> NodeCtx<R> {
    /// A context for sled `id`, starting from its persistent state (a fresh
    /// `PersistentState::new()`, one read back from storage, or one holding
    /// LRTQ data).
    pub fn new(id: PlatformId, state: PersistentState, rng: R) -> Self {
        Self {
            id,
            state,
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
    use crate::config::tests::platform;
    use crate::limits::{MAX_ALARMS, MAX_CONNECTED, MAX_OUTGOING};
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn ctx() -> NodeCtx<ChaCha20Rng> {
        NodeCtx::new(
            platform(0),
            PersistentState::new(),
            ChaCha20Rng::seed_from_u64(0),
        )
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
}
