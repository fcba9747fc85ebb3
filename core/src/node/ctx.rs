//! The context a caller hands to every node call: persistent state,
//! connected peers and the outgoing queue, alarms, counters and events.
//!
//! Its public methods are what the *caller* may do (restore, read and
//! store the state, acknowledge the write, poll events, alarms and
//! counters); its crate-private methods are what the *node* may do (change
//! the state, queue messages, raise alarms, count, record events).

use core::fmt;

use crate::api::{Alarm, Counter, Counters};
use crate::ids::PlatformId;
use crate::limits::MAX_ALARMS;
use crate::log;
use crate::messages::QueuedBody;
use crate::node::events::{Event, EventQueue};
use crate::node::outbox::Outbox;
use crate::persistent::{PersistentState, Revision};
use crate::wire::{self, WireError};

/// Everything a node reads and changes besides its in-memory protocol
/// state. Owned by the caller, passed to each node call.
#[cfg_attr(feature = "model", derive(Clone))]
pub struct NodeCtx {
    id: PlatformId,
    state: PersistentState,
    /// The revision of the state the caller last said it stored.
    stored: Revision,
    pub(crate) outbox: Outbox,
    alarms: heapless::Vec<Alarm, MAX_ALARMS, u8>,
    counters: Counters,
    events: EventQueue,
}

/// The persistent state to store, and the revision to acknowledge once it
/// is stored ([`NodeCtx::acknowledge_stored`]).
#[derive(Clone, Copy, Debug)]
pub struct StateToStore<'a> {
    /// What to store.
    pub state: &'a PersistentState,
    /// Its revision.
    pub revision: Revision,
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

/// Two contexts hash alike when a node would behave alike with either:
/// the counters (never read by the node) and the revision numbers (only
/// compared with each other) are left out, whether the state is stored is
/// not.
#[cfg(feature = "model")]
impl core::hash::Hash for NodeCtx {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        // Every field named, so a new one is not left out unseen.
        let Self {
            id,
            state,
            stored: _,
            outbox,
            alarms,
            counters: _,
            events,
        } = self;
        (id, state, self.is_stored(), outbox, alarms).hash(h);
        events.len().hash(h);
        events.iter().for_each(|event| event.hash(h));
    }
}

impl fmt::Debug for NodeCtx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The state holds shares: show only what is public.
        f.debug_struct("NodeCtx")
            .field("id", &self.id)
            .field("stored", &self.is_stored())
            .field("connected", &self.outbox.connected())
            .field("alarms", &self.alarms)
            .field("events", &self.events.len())
            .finish_non_exhaustive()
    }
}

/// Static memory for a node's context, for firmware: [`CtxSlot::new`] is
/// `const`, so a task declares the slot in a `static` and the context
/// (about 29 KiB, the persistent state 20 KiB of it) is in `.bss` by
/// construction, never built on the stack. The slot yields a context only
/// once booted with the sled's id, which is known only at run time.
pub struct CtxSlot {
    ctx: NodeCtx,
    booted: bool,
}

impl CtxSlot {
    /// An empty slot.
    pub const fn new() -> Self {
        Self {
            ctx: NodeCtx::empty(PlatformId::unfilled()),
            booted: false,
        }
    }

    /// Boots sled `id`: an empty context in the slot, to be filled with
    /// [`NodeCtx::restore_state`] or [`NodeCtx::restore_lrtq`]. Booting
    /// again starts over, as a restart does (field by field, in place).
    pub fn boot(&mut self, id: PlatformId) -> &mut NodeCtx {
        let ctx = &mut self.ctx;
        ctx.id = id;
        ctx.state.clear();
        ctx.stored = ctx.state.revision();
        ctx.outbox.clear();
        ctx.alarms.clear();
        ctx.counters = Counters::new();
        ctx.events.clear();
        self.booted = true;
        ctx
    }

    /// The booted context, if the slot was booted.
    pub fn get_mut(&mut self) -> Option<&mut NodeCtx> {
        self.booted.then_some(&mut self.ctx)
    }
}

impl Default for CtxSlot {
    fn default() -> Self {
        Self::new()
    }
}

impl NodeCtx {
    /// A context for sled `id` with an empty persistent state (which counts
    /// as stored); at boot the caller then fills the state in place with
    /// [`Self::restore_state`] (from storage) or [`Self::restore_lrtq`]
    /// (from the LRTQ ledger). Built by value (about 29 KiB): firmware
    /// boots a [`CtxSlot`] in static memory instead.
    pub fn new(id: PlatformId) -> Self {
        Self::empty(id)
    }

    const fn empty(id: PlatformId) -> Self {
        Self {
            id,
            state: PersistentState::new(),
            stored: Revision::ZERO,
            outbox: Outbox::new(),
            alarms: heapless::Vec::new(),
            counters: Counters::new(),
            events: EventQueue::new(),
        }
    }

    /// This sled.
    pub fn id(&self) -> &PlatformId {
        &self.id
    }

    /// The persistent state as it is now (stored or not).
    pub fn persistent_state(&self) -> &PersistentState {
        &self.state
    }

    /// The state to store, if it changed since the write last acknowledged.
    /// Reading it changes nothing: the state stays unstored, and the node
    /// hands out no message or event, until [`Self::acknowledge_stored`].
    pub fn state_to_store(&self) -> Option<StateToStore<'_>> {
        (!self.is_stored()).then_some(StateToStore {
            state: &self.state,
            revision: self.state.revision(),
        })
    }

    /// The caller stored the state at `revision` durably. If the state
    /// changed again since (it cannot between two node calls), it stays
    /// unstored.
    pub fn acknowledge_stored(&mut self, revision: Revision) {
        self.stored = revision;
    }

    /// Whether the state as it is now is stored: only then does the node
    /// hand out messages ([`crate::node::Node::poll_transmit`]) and events.
    pub fn is_stored(&self) -> bool {
        self.stored == self.state.revision()
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
    /// Either way the state counts as stored: after a success it is what
    /// storage holds, and after an error storing the empty state would
    /// overwrite bytes the caller may still want (a newer format's).
    pub fn restore_state(&mut self, bytes: &[u8]) -> Result<(), WireError> {
        let restored = wire::decode_persistent_state_into(bytes, &mut self.state);
        self.stored = self.state.revision();
        restored
    }

    /// [`Self::restore_state`] from storage read a page at a time (flash
    /// that is not memory-mapped) instead of one slice: the `len` stored
    /// bytes behind `reader`, decoded in place through a 64-byte buffer.
    pub fn restore_state_from<R: wire::PageReader>(
        &mut self,
        reader: &mut R,
        len: usize,
    ) -> Result<(), wire::PagedError<R::Error>> {
        let restored = wire::decode_persistent_state_from(reader, len, &mut self.state);
        self.stored = self.state.revision();
        restored
    }

    /// Sets the LRTQ share data `bytes` encode (as
    /// [`wire::encode_lrtq_share_data`] writes them) into the empty
    /// persistent state, decoded in place: the data (about 8 KiB) is never
    /// on the stack.
    ///
    /// Refused with [`RestoreLrtqError::StateNotEmpty`], changing nothing,
    /// if the state holds anything (restored from storage, or changed by
    /// the node). On a decoding error the state is left empty (and counts
    /// as stored, as after a failed [`Self::restore_state`]). On success
    /// the state is unstored: storage does not hold it yet.
    pub fn restore_lrtq(&mut self, bytes: &[u8]) -> Result<(), RestoreLrtqError> {
        if !self.state.is_empty() {
            return Err(RestoreLrtqError::StateNotEmpty);
        }
        let decoded = wire::decode_lrtq_share_data_into(bytes, self.state.lrtq_mut());
        if let Err(error) = decoded {
            self.stored = self.state.revision();
            return Err(RestoreLrtqError::Wire(error));
        }
        Ok(())
    }

    /// Whether messages are queued (handed out once the state is stored).
    pub fn has_outgoing(&self) -> bool {
        self.outbox.has_queued()
    }

    /// Peers currently connected.
    pub fn connected(&self) -> &[PlatformId] {
        self.outbox.connected()
    }

    /// Alarms raised so far.
    pub fn alarms(&self) -> &[Alarm] {
        &self.alarms
    }

    /// Counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The next event, oldest first; `None` when there is none, and while
    /// the state is not stored (an event describes the state after the
    /// call that raised it).
    pub fn poll_event(&mut self) -> Option<Event> {
        if !self.is_stored() {
            return None;
        }
        self.events.pop_front()
    }

    // ---- what the node may do ----

    pub(crate) fn count(&mut self, counter: Counter) {
        self.counters.bump(counter);
    }

    pub(crate) fn is_connected(&self, peer: &PlatformId) -> bool {
        self.outbox.is_connected(peer)
    }

    /// Records a connection; false if it was not recorded (table full).
    pub(crate) fn add_connection(&mut self, peer: &PlatformId) -> bool {
        match self.outbox.connect(peer) {
            Ok(()) => true,
            Err(counter) => {
                self.count(counter);
                false
            }
        }
    }

    pub(crate) fn remove_connection(&mut self, peer: &PlatformId) {
        self.outbox.disconnect(peer);
    }

    /// Queues a request (`Prepare`, `GetShare`, `GetLrtqShare`) if `to` is
    /// connected. A peer that is not connected is normal here: `on_connect`
    /// sends the request when it comes.
    pub(crate) fn request(&mut self, to: &PlatformId, body: QueuedBody) {
        if self.is_connected(to) {
            self.queue(to, body);
        }
    }

    /// Queues a reply. It goes to a peer that just spoke to us, so a peer
    /// that is not connected is odd: counted and dropped.
    pub(crate) fn reply(&mut self, to: &PlatformId, body: QueuedBody) {
        self.queue(to, body);
    }

    fn queue(&mut self, to: &PlatformId, body: QueuedBody) {
        if let Err(counter) = self.outbox.queue(to, body) {
            if counter == Counter::OutgoingQueueFull {
                log::warning!("outgoing queue full, dropping a message");
            }
            self.count(counter);
        }
    }

    pub(crate) fn state(&self) -> &PersistentState {
        &self.state
    }

    /// The state, to change: every change bumps its revision (see
    /// [`crate::persistent`]), which makes it unstored.
    pub(crate) fn state_mut(&mut self) -> &mut PersistentState {
        &mut self.state
    }

    pub(crate) fn raise_alarm(&mut self, alarm: Alarm) {
        log::error!("ALARM: {}", alarm);
        if self.alarms.contains(&alarm) {
            return;
        }
        // Past `MAX_ALARMS`, an alarm is only counted: an event for it
        // would come again each time it is raised.
        if self.alarms.push(alarm).is_err() {
            self.count(Counter::AlarmDropped);
            return;
        }
        self.emit(Event::AlarmRaised(alarm));
    }

    /// Records an event for the caller to poll.
    pub(crate) fn emit(&mut self, event: Event) {
        if self.events.push_back(event).is_err() {
            self.count(Counter::EventDropped);
        }
    }

    /// Drops everything queued: an expunged node says nothing more.
    pub(crate) fn clear_outgoing(&mut self) {
        self.outbox.clear_queue();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Configuration;
    use crate::config::tests::{fields, platform};
    use crate::crypto::{LrtqShare, Share, ShareDigest};
    use crate::ids::Epoch;
    use crate::ids::RackId;
    use crate::limits::{LRTQ_TOTAL_SHARES, MAX_ALARMS, MAX_CONNECTED, MAX_EVENTS, MAX_OUTGOING};
    use crate::persistent::LrtqShareData;
    use crate::wire::{
        MAX_LRTQ_SHARE_DATA_LEN, MAX_PERSISTENT_STATE_LEN, PERSISTENT_STATE_VERSION,
    };
    use std::vec::Vec;

    fn ctx() -> NodeCtx {
        NodeCtx::new(platform(0))
    }

    #[test]
    fn a_full_connection_table_is_counted() {
        let mut ctx = ctx();
        for i in 1..=MAX_CONNECTED {
            assert!(ctx.add_connection(&platform(i)));
        }
        assert!(ctx.add_connection(&platform(1)), "already connected");
        assert!(!ctx.add_connection(&platform(MAX_CONNECTED + 1)));
        assert_eq!(ctx.counters().get(Counter::ConnectionTableFull), 1);
        ctx.remove_connection(&platform(1));
        assert!(ctx.add_connection(&platform(MAX_CONNECTED + 1)));
    }

    #[test]
    fn a_full_outgoing_queue_is_counted() {
        let mut ctx = ctx();
        ctx.add_connection(&platform(1));
        for _ in 0..MAX_OUTGOING {
            ctx.request(&platform(1), QueuedBody::GetLrtqShare);
        }
        ctx.request(&platform(1), QueuedBody::GetLrtqShare);
        assert_eq!(ctx.counters().get(Counter::OutgoingQueueFull), 1);
        let mut drained = 0;
        while ctx.outbox.pop().is_some() {
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
        assert_eq!(ctx.counters().get(Counter::AlarmDropped), 1);
        // Each recorded alarm is also an event.
        let mut events = 0;
        while let Some(event) = ctx.poll_event() {
            assert!(matches!(event, Event::AlarmRaised(_)));
            events += 1;
        }
        assert_eq!(events, MAX_ALARMS);
    }

    #[test]
    fn a_full_event_queue_is_counted() {
        let mut ctx = ctx();
        for e in 0..=MAX_EVENTS as u64 {
            ctx.emit(Event::Committed(Epoch(e)));
        }
        assert_eq!(ctx.counters().get(Counter::EventDropped), 1);
        assert_eq!(ctx.poll_event(), Some(Event::Committed(Epoch(0))));
    }

    #[test]
    fn nothing_is_handed_out_while_the_state_is_unstored() {
        let mut ctx = ctx();
        ctx.emit(Event::Committed(Epoch(1)));
        ctx.state_mut().set_expunged(Epoch(2), &platform(1));
        let Some(to_store) = ctx.state_to_store() else {
            panic!("a change must be stored");
        };
        let revision = to_store.revision;
        // Reading what to store does not count as storing it.
        assert!(ctx.state_to_store().is_some());
        assert_eq!(ctx.poll_event(), None);
        ctx.acknowledge_stored(revision);
        assert!(ctx.state_to_store().is_none());
        assert_eq!(ctx.poll_event(), Some(Event::Committed(Epoch(1))));
        // An acknowledgement of an older revision does not cover a newer
        // change.
        ctx.state_mut().set_expunged(Epoch(3), &platform(1));
        assert!(ctx.is_stored(), "a second expungement changes nothing");
    }

    #[test]
    fn a_disconnect_drops_what_was_queued_for_the_peer() {
        let mut ctx = ctx();
        ctx.add_connection(&platform(1));
        ctx.add_connection(&platform(2));
        ctx.request(&platform(1), QueuedBody::GetLrtqShare);
        ctx.request(&platform(2), QueuedBody::GetLrtqShare);
        ctx.remove_connection(&platform(1));
        assert_eq!(ctx.outbox.pop().map(|e| e.unwrap().0), Some(platform(2)));
        assert!(ctx.outbox.pop().is_none());
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
                std::vec![PERSISTENT_STATE_VERSION, 0xff, 0xff, 0xff],
                WireError::Malformed,
            ),
            (truncated, WireError::Malformed),
        ]
    }

    #[test]
    fn a_slot_yields_a_context_only_once_booted_and_a_reboot_starts_over() {
        static_assertions_const();
        let mut slot = CtxSlot::new();
        assert!(slot.get_mut().is_none());
        let ctx = slot.boot(platform(0));
        assert_eq!(ctx.id(), &platform(0));
        assert!(ctx.persistent_state().is_empty() && ctx.is_stored());
        ctx.restore_state(&encoded_state(&full_state())).unwrap();
        ctx.add_connection(&platform(1));
        ctx.request(&platform(1), QueuedBody::GetLrtqShare);
        ctx.raise_alarm(Alarm::DecryptionFailed(Epoch(1)));
        ctx.count(Counter::Undecodable);
        let ctx = slot.boot(platform(2));
        assert_eq!(ctx.id(), &platform(2));
        assert!(ctx.persistent_state().is_empty() && ctx.is_stored());
        assert!(ctx.connected().is_empty() && !ctx.has_outgoing());
        assert!(ctx.alarms().is_empty() && ctx.counters().total() == 0);
        assert_eq!(ctx.poll_event(), None);
        assert!(slot.get_mut().is_some());
    }

    /// A slot and a node are `const`: firmware declares them as statics.
    fn static_assertions_const() {
        static SLOT: std::sync::Mutex<CtxSlot> = std::sync::Mutex::new(CtxSlot::new());
        static NODE: std::sync::Mutex<crate::node::Node> =
            std::sync::Mutex::new(crate::node::Node::new());
        assert!(SLOT.lock().is_ok() && NODE.lock().is_ok());
    }

    #[test]
    fn a_new_context_has_an_empty_unchanged_state() {
        let ctx = ctx();
        assert!(ctx.persistent_state().is_empty());
        assert!(ctx.is_stored());
    }

    #[test]
    fn a_restored_state_encodes_as_the_stored_bytes() {
        let stored = encoded_state(&full_state());
        let mut ctx = ctx();
        ctx.restore_state(&stored).unwrap();
        assert_eq!(encoded_state(ctx.persistent_state()), stored);
        assert!(ctx.is_stored(), "storage already holds it");
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
            ctx.state_mut().set_expunged(Epoch(9), &platform(3));
            assert_eq!(ctx.restore_state(&bytes), Err(error));
            assert!(ctx.persistent_state().is_empty());
            assert!(ctx.is_stored(), "nothing to store after {error}");
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
        assert!(!ctx.is_stored(), "storage does not hold it yet");
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
        assert!(ctx.is_stored());

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
            assert!(ctx.is_stored());
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
