//! The cluster: sleds, network, Nexus and the checker, driven one
//! [`Action`] at a time.
//!
//! Every call into a node goes through [`Cluster::call`] (or, for the calls
//! the harness makes itself, its probed twin), which afterwards stores the
//! state to the sled's disk if it changed and only then moves the queued
//! messages, encoded, into the network. Every delivery goes through
//! `Node::handle_bytes`, so the wire format is exercised on every message.

use rand_chacha::ChaCha20Rng;
use rand_core::{Rng, SeedableRng};
use tq_core::crypto::RackSecret;
use tq_core::ids::{Epoch, PlatformId, RackId};
use tq_core::limits::{MAX_EVENTS, MAX_OUTGOING};
use tq_core::messages::Body;
use tq_core::node::{Event, Io, LoadSecretError, Node, NodeCtx, Outputs, drive};
use tq_core::persistent::{LrtqShareData, PersistentState, Revision};
use tq_core::wire::{self, MAX_PEER_MSG_LEN};

use crate::action::Action;
use crate::invariants::{SetupError, Violation};
use crate::network::{Network, bit};
use crate::nexus::Nexus;
use crate::records::{ConfigRecord, SecretRecord, Seen};
use crate::sled::{Disk, DiskSummary, Running, Sled, platform_id};
use crate::{DEFAULT_SLEDS, MAX_SLEDS, SledMask};

// A child of this module, so it sees the checker's private memory.
#[cfg(feature = "model")]
#[path = "model.rs"]
mod model;

/// How the rack starts.
#[derive(Clone, Copy, Debug)]
pub enum RackStart<'a> {
    /// New sleds with nothing on disk; Nexus's first reconfiguration makes
    /// the first secret.
    Fresh,
    /// An LRTQ rack: sled `i` holds `data[i]` (the first `data.len()` sleds
    /// are the LRTQ members) and `secret` is the LRTQ rack secret, which
    /// every load of epoch 1 must return.
    Lrtq {
        /// Per-sled LRTQ share data.
        data: &'a [LrtqShareData],
        /// The LRTQ secret (as the new protocol's epoch-1 secret).
        secret: &'a RackSecret,
    },
}

/// How a sled's driver misbehaves, to test that the checker catches it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "model", derive(Hash))]
pub enum DriverFault {
    /// It stores, then acknowledges, as the contract says.
    #[default]
    None,
    /// It acknowledges every write without making it: the node then sends
    /// from state that is not on the disk.
    AcknowledgeWithoutStoring,
}

/// The sled's side of the core's driving loop: its disk, the network,
/// and what it saw.
struct SledIo<'a> {
    index: usize,
    ids: &'a [PlatformId],
    disk: &'a mut Disk,
    writes: &'a mut u32,
    network: &'a mut Network,
    fault: DriverFault,
    events: heapless::Vec<Event, MAX_EVENTS>,
    /// Epochs of the `PrepareAck`s sent (at most one message per outgoing
    /// slot leaves in one call), checked against the disk after the call.
    acks_sent: heapless::Vec<Epoch, MAX_OUTGOING>,
    /// The revision of the state written to the disk in this call.
    written: Option<Revision>,
    /// The first broken rule seen while sending.
    violation: Option<Violation>,
}

impl Io for SledIo<'_> {
    type StoreError = wire::WireError;

    fn store(&mut self, state: &PersistentState) -> Result<(), wire::WireError> {
        if self.fault == DriverFault::AcknowledgeWithoutStoring {
            return Ok(());
        }
        self.disk.write(state)?;
        *self.writes = self.writes.wrapping_add(1);
        self.written = Some(state.revision());
        Ok(())
    }
}

impl Outputs for SledIo<'_> {
    fn send(&mut self, to: &PlatformId, bytes: &[u8]) {
        if self.violation.is_none() {
            self.violation = self.send_checked(to, bytes).err();
        }
    }

    fn event(&mut self, event: Event) {
        // At most MAX_EVENTS come out of one call.
        let _ = self.events.push(event);
    }
}

impl SledIo<'_> {
    fn send_checked(&mut self, to: &PlatformId, bytes: &[u8]) -> Result<(), Violation> {
        let sled = u8::try_from(self.index).unwrap_or(u8::MAX);
        // Invariant 2, at the source: an ack leaves only once its prepare
        // is on the disk. The disk is read after the call (by the cached
        // summary the checker decodes anyway): a call stores before it
        // sends anything, so the disk then is the disk now.
        if let Ok(msg) = wire::decode_peer_msg(bytes)
            && let Body::PrepareAck(epoch) = msg.body
            && self.acks_sent.push(epoch).is_err()
        {
            return Err(Violation::AckWithoutDurablePrepare { sled, epoch });
        }
        let to = index_of(self.ids, to).ok_or(Violation::UnknownPeer { sled })?;
        // A full network is a counted drop, like a lost message.
        self.network.send(self.index, to, bytes);
        Ok(())
    }
}

/// What a run did, for coverage reports and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Actions applied.
    pub actions: u32,
    /// Crashes of a running sled.
    pub crashes: u32,
    /// Restarts of a crashed sled.
    pub restarts: u32,
    /// Secrets returned by `load_rack_secret`.
    pub secrets_loaded: u32,
    /// Times a sled's disk first showed it expunged.
    pub expunged: u32,
    /// `Committed` events handed out by nodes.
    pub committed_events: u32,
    /// `ShareComputed` events.
    pub shares_computed: u32,
    /// `ReadyToCommit` events.
    pub ready_to_commit: u32,
}

impl Stats {
    fn count_event(&mut self, event: &Event) {
        let counter = match event {
            Event::Committed(_) => &mut self.committed_events,
            Event::ShareComputed(_) => &mut self.shares_computed,
            Event::ReadyToCommit { .. } => &mut self.ready_to_commit,
            _ => return,
        };
        *counter = counter.saturating_add(1);
    }
}

/// What every node call the harness makes itself runs through (see
/// [`Cluster::set_call_probe`]): it gets the call's name and must run it
/// exactly once.
pub type CallProbe = fn(call: &'static str, run: &mut dyn FnMut());

/// The default probe: just runs the call.
fn run_call(_: &'static str, run: &mut dyn FnMut()) {
    run();
}

/// What a node call may use besides its node: the sled ids, and Nexus.
struct CallSide<'a> {
    ids: &'a [PlatformId],
    nexus: &'a mut Nexus,
}

/// The last `PrepareAck` delivered, for the ack ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DeliveredAck {
    from: usize,
    to: usize,
    epoch: Epoch,
}

/// A running sled's state and disk when they were last found equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Compared {
    boots: u32,
    revision: Revision,
    writes: u32,
}

/// When [`Cluster::check_stored`] encodes a state to compare it with the
/// disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Compare {
    /// Whatever changed.
    Always,
    /// If the state, the disk or the boot changed since they were last
    /// known equal.
    IfChanged,
    /// The call just made wrote the disk from the state at this revision:
    /// only if the state has another now.
    WrittenAt(Revision),
}

/// What a coordinator counted at the last check.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[cfg_attr(feature = "model", derive(Hash))]
struct AckView {
    epoch: Option<Epoch>,
    acked: SledMask,
}

/// A simulated rack of up to `SLEDS` sleds (at most [`MAX_SLEDS`]; see
/// the crate doc for why the capacity is a parameter).
pub struct Cluster<const SLEDS: usize = DEFAULT_SLEDS> {
    pub(crate) rack_id: RackId,
    pub(crate) ids: heapless::Vec<PlatformId, SLEDS>,
    pub(crate) sleds: heapless::Vec<Sled, SLEDS>,
    pub(crate) network: Network,
    pub(crate) nexus: Nexus,
    pub(crate) configs: ConfigRecord,
    pub(crate) secrets: SecretRecord,
    summaries: [Option<(u32, DiskSummary)>; SLEDS],
    acks: [AckView; SLEDS],
    delivered_ack: Option<DeliveredAck>,
    /// Where a state is encoded to compare it with the disk.
    scratch: Disk,
    /// Per sled, when its state and disk were last found equal.
    compared: [Option<Compared>; SLEDS],
    rng: ChaCha20Rng,
    pub(crate) stats: Stats,
    probe: CallProbe,
    faults: [DriverFault; SLEDS],
}

impl<const SLEDS: usize> core::fmt::Debug for Cluster<SLEDS> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Cluster")
            .field("rack_id", &self.rack_id)
            .field("nexus", &self.nexus)
            .field("network", self.network.stats())
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl<const SLEDS: usize> Cluster<SLEDS> {
    /// Most sleds this cluster holds.
    pub const CAPACITY: usize = SLEDS;

    /// A rack of `sled_count` sleds (at most `SLEDS`), all up and all connected. The first
    /// `members` are the rack's members (for an LRTQ rack: the LRTQ sleds,
    /// `data.len()` of them); the others are spares Nexus may add. Every
    /// random choice of the run derives from `seed`.
    pub fn new(
        seed: u64,
        rack_id: RackId,
        sled_count: usize,
        members: usize,
        start: RackStart<'_>,
    ) -> Result<Self, Violation> {
        let lrtq_count = match start {
            RackStart::Fresh => 0,
            RackStart::Lrtq { data, .. } => data.len(),
        };
        const {
            assert!(
                SLEDS <= MAX_SLEDS,
                "member sets are bit masks over the sleds"
            )
        };
        if !(tq_core::limits::MIN_MEMBERS..=sled_count).contains(&members) || sled_count > SLEDS {
            return Err(Violation::Setup(SetupError::Sizes));
        }
        if lrtq_count != 0 && lrtq_count != members {
            return Err(Violation::Setup(SetupError::LrtqData));
        }
        let mut ids = heapless::Vec::<PlatformId, SLEDS>::new();
        for index in 0..sled_count {
            let id = platform_id(index).ok_or(Violation::Setup(SetupError::Sizes))?;
            ids.push(id)
                .map_err(|_| Violation::Setup(SetupError::Sizes))?;
        }
        let nexus = Nexus::new(rack_id, &ids, members, lrtq_count != 0)?;
        let mut cluster = Self {
            rack_id,
            ids,
            sleds: heapless::Vec::new(),
            network: Network::new(sled_count),
            nexus,
            configs: ConfigRecord::default(),
            secrets: SecretRecord::default(),
            summaries: core::array::from_fn(|_| None),
            acks: [AckView::default(); SLEDS],
            delivered_ack: None,
            scratch: Disk::new(),
            compared: [None; SLEDS],
            rng: ChaCha20Rng::seed_from_u64(seed),
            stats: Stats::default(),
            probe: run_call,
            faults: [DriverFault::None; SLEDS],
        };
        for index in 0..sled_count {
            let id = cluster
                .ids
                .get(index)
                .cloned()
                .ok_or(Violation::Setup(SetupError::Sizes))?;
            let state = match start {
                RackStart::Lrtq { data, .. } => match data.get(index) {
                    Some(lrtq) => PersistentState::with_lrtq(lrtq.clone()),
                    None => PersistentState::new(),
                },
                RackStart::Fresh => PersistentState::new(),
            };
            let sled = Sled::new(id, &state).map_err(|e| Violation::Setup(SetupError::Disk(e)))?;
            cluster
                .sleds
                .push(sled)
                .map_err(|_| Violation::Setup(SetupError::Sizes))?;
        }
        if let RackStart::Lrtq { secret, .. } = start {
            cluster.secrets.observe(Epoch(1), secret);
        }
        for index in 0..sled_count {
            cluster.restart(index)?;
        }
        for a in 0..sled_count {
            for b in a + 1..sled_count {
                cluster.connect(a, b)?;
            }
        }
        cluster.check()?;
        Ok(cluster)
    }

    // ---- reading ----

    /// The rack id.
    pub fn rack_id(&self) -> RackId {
        self.rack_id
    }

    /// Number of sleds.
    pub fn sled_count(&self) -> usize {
        self.sleds.len()
    }

    /// Sled `index`.
    pub fn sled(&self, index: usize) -> Option<&Sled> {
        self.sleds.get(index)
    }

    /// The id of sled `index`.
    pub fn id(&self, index: usize) -> Option<&PlatformId> {
        self.ids.get(index)
    }

    /// The network.
    pub fn network(&self) -> &Network {
        &self.network
    }

    /// The Nexus model.
    pub fn nexus(&self) -> &Nexus {
        &self.nexus
    }

    /// What the run did so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// Epochs for which a secret was loaded (or, for epoch 1 of an LRTQ
    /// rack, given).
    pub fn epochs_with_secret(&self) -> impl Iterator<Item = Epoch> + '_ {
        self.secrets.epochs()
    }

    // ---- driving ----

    /// Applies one action, then checks every invariant.
    pub fn apply(&mut self, action: &Action) -> Result<(), Violation> {
        self.stats.actions = self.stats.actions.saturating_add(1);
        self.delivered_ack = None;
        let count = self.sleds.len().max(1);
        let sled = |n: u8| usize::from(n) % count;
        match *action {
            Action::Deliver(n) => return self.deliver(usize::from(n)),
            Action::DeliverAll => return self.deliver_all(),
            Action::Duplicate(n) => self.network.duplicate(usize::from(n)),
            Action::Drop(n) => self.network.drop_message(usize::from(n)),
            Action::Connect(a, b) => self.connect(sled(a), sled(b))?,
            Action::Disconnect(a, b) => self.disconnect(sled(a), sled(b))?,
            Action::Crash(n) => self.crash(sled(n))?,
            Action::Restart(n) => self.restart(sled(n))?,
            Action::Reconfigure {
                change,
                coordinator,
                threshold,
            } => {
                self.nexus.tick();
                self.nexus_start(change, coordinator, threshold)?;
            }
            Action::NexusPoll => {
                self.nexus.tick();
                self.nexus_poll()?;
            }
            Action::NexusCommit(n) => {
                self.nexus.tick();
                self.nexus_commit(n)?;
            }
            Action::NexusAbandon(n) => {
                self.nexus.tick();
                self.nexus_abandon(n)?;
            }
            Action::LoadSecret { sled: n, back } => {
                let epoch = self.nexus.committed_epoch_back(back).unwrap_or(Epoch(1));
                self.load_secret(sled(n), epoch)?;
            }
            Action::ClearSecrets(n) => {
                self.probed(sled(n), "clear_secrets", |node, _, _, _| {
                    node.clear_secrets()
                })?;
            }
            Action::Settle => self.settle()?,
        }
        self.check()
    }

    /// Runs `f` on sled `index`'s node if it is up, through the core's
    /// driving loop ([`tq_core::node::drive()`]): its state is stored to the
    /// disk if it changed, and only then do its messages move, encoded,
    /// into the network. `None` if the sled is down. Not run through the
    /// probe: the caller sees the call itself.
    pub fn call<T>(
        &mut self,
        index: usize,
        f: impl FnOnce(&mut Node, &mut NodeCtx, &mut ChaCha20Rng, &[PlatformId]) -> T,
    ) -> Result<Option<T>, Violation> {
        self.call_through(index, run_call, "call", |node, ctx, rng, side| {
            f(node, ctx, rng, side.ids)
        })
    }

    /// Has every node call the harness makes itself (deliveries, named by
    /// the message's kind; connection events; Nexus's requests; loads) run
    /// through `probe`, named after the node method: the Cortex-M7 run
    /// measures each one's stack this way. Only the node call runs inside
    /// the probe, not the harness's work around it.
    pub fn set_call_probe(&mut self, probe: CallProbe) {
        self.probe = probe;
    }

    /// Makes sled `index`'s driver misbehave (a test of the checker: a
    /// driver that acknowledges writes it never made must be caught).
    pub fn set_driver_fault(&mut self, index: usize, fault: DriverFault) {
        if let Some(slot) = self.faults.get_mut(index) {
            *slot = fault;
        }
    }

    /// [`Cluster::call`] through the probe, for the calls the harness makes
    /// itself.
    pub(crate) fn probed<T>(
        &mut self,
        index: usize,
        name: &'static str,
        f: impl FnOnce(&mut Node, &mut NodeCtx, &mut ChaCha20Rng, &[PlatformId]) -> T,
    ) -> Result<Option<T>, Violation> {
        self.call_through(index, self.probe, name, |node, ctx, rng, side| {
            f(node, ctx, rng, side.ids)
        })
    }

    /// [`Cluster::call`] (through the probe if `probed`) with Nexus at
    /// hand: its calls carry references into its state, and the answer to
    /// a status borrows the node.
    pub(crate) fn call_for_nexus<T>(
        &mut self,
        index: usize,
        probed: Option<&'static str>,
        f: impl FnOnce(&mut Node, &mut NodeCtx, &mut ChaCha20Rng, &mut Nexus) -> T,
    ) -> Result<Option<T>, Violation> {
        let (probe, name) = match probed {
            Some(name) => (self.probe, name),
            None => (run_call as CallProbe, "call"),
        };
        self.call_through(index, probe, name, |node, ctx, rng, side| {
            f(node, ctx, rng, side.nexus)
        })
    }

    fn call_through<T>(
        &mut self,
        index: usize,
        probe: CallProbe,
        name: &'static str,
        f: impl FnOnce(&mut Node, &mut NodeCtx, &mut ChaCha20Rng, &mut CallSide<'_>) -> T,
    ) -> Result<Option<T>, Violation> {
        let sled_u8 = u8::try_from(index).unwrap_or(u8::MAX);
        let fault = self.faults.get(index).copied().unwrap_or_default();
        let Some(sled) = self.sleds.get_mut(index) else {
            return Ok(None);
        };
        let (running, disk, writes) = sled.split_mut();
        let Some(Running { node, ctx, rng }) = running else {
            return Ok(None);
        };
        let ids = &self.ids;
        let mut side = CallSide {
            ids,
            nexus: &mut self.nexus,
        };
        let mut io = SledIo {
            index,
            ids,
            disk,
            writes,
            network: &mut self.network,
            fault,
            events: heapless::Vec::new(),
            acks_sent: heapless::Vec::new(),
            written: None,
            violation: None,
        };
        let mut buf = [0u8; MAX_PEER_MSG_LEN];
        let (out, stored) = drive(node, ctx, &mut io, &mut buf, |node, ctx| {
            let mut f = Some(f);
            let mut out = None;
            probe(name, &mut || {
                if let Some(f) = f.take() {
                    out = Some(f(node, ctx, rng, &mut side));
                }
            });
            out
        });
        let SledIo {
            events,
            acks_sent,
            written,
            violation,
            ..
        } = io;
        if let Some(violation) = violation {
            return Err(violation);
        }
        stored.map_err(|error| Violation::Encoding {
            sled: sled_u8,
            error,
        })?;
        let compare = match written {
            Some(revision) => Compare::WrittenAt(revision),
            None => Compare::IfChanged,
        };
        self.check_stored(index, compare)?;
        self.check_acks_sent(index, &acks_sent)?;
        self.check_events(index, &events)?;
        // `None` here too if a probe did not run the call.
        Ok(out)
    }

    /// A sled whose context says its state is stored must have exactly
    /// that state on its disk: what its messages and events follow from.
    ///
    /// The state is encoded and compared with the disk whenever either may
    /// have changed since they were last known equal (another revision of
    /// the state, another disk write, another boot), and always with
    /// [`Compare::Always`] (before a crash, and at the end of the liveness
    /// check), which also catches a change the state made without a new
    /// revision. They are known equal after a comparison that passed, and
    /// after a call that wrote the disk from the state at the revision it
    /// still has ([`Compare::WrittenAt`]: the disk is that state's
    /// encoding, made a moment ago; a driver that acknowledges a write it
    /// did not make never gets there).
    fn check_stored(&mut self, index: usize, compare: Compare) -> Result<(), Violation> {
        let sled_u8 = u8::try_from(index).unwrap_or(u8::MAX);
        let Some(sled) = self.sleds.get(index) else {
            return Ok(());
        };
        let Some(running) = sled.running() else {
            return Ok(());
        };
        if !running.ctx.is_stored() {
            return Ok(());
        }
        let state = running.ctx.persistent_state();
        let seen = Compared {
            boots: sled.boots(),
            revision: state.revision(),
            writes: sled.disk_writes(),
        };
        let slot = self.compared.get_mut(index);
        let known_equal = match compare {
            Compare::Always => false,
            Compare::IfChanged => slot.as_deref() == Some(&Some(seen)),
            Compare::WrittenAt(revision) => revision == seen.revision,
        };
        if !known_equal {
            self.scratch
                .write(state)
                .map_err(|error| Violation::Encoding {
                    sled: sled_u8,
                    error,
                })?;
            if self.scratch.as_slice() != sled.disk() {
                return Err(Violation::StateNotPersisted { sled: sled_u8 });
            }
        }
        if let Some(slot) = slot {
            *slot = Some(seen);
        }
        Ok(())
    }

    /// Compares every running sled's state with its disk, whether or not
    /// anything changed since the last comparison (see `check_stored`):
    /// the end of a run calls it.
    pub fn check_every_state_stored(&mut self) -> Result<(), Violation> {
        for index in 0..self.sleds.len() {
            self.check_stored(index, Compare::Always)?;
        }
        Ok(())
    }

    /// Every `PrepareAck` sled `index` sent in the call just made left with
    /// its prepare on the disk (invariant 2, at the source).
    fn check_acks_sent(&mut self, index: usize, epochs: &[Epoch]) -> Result<(), Violation> {
        if epochs.is_empty() {
            return Ok(());
        }
        let sled = u8::try_from(index).unwrap_or(u8::MAX);
        let summary = self.summary(index)?;
        match epochs.iter().find(|&&epoch| !summary.holds_share(epoch)) {
            Some(&epoch) => Err(Violation::AckWithoutDurablePrepare { sled, epoch }),
            None => Ok(()),
        }
    }

    /// Every event a sled handed out describes its disk: a commit or an
    /// expungement it reports is stored.
    fn check_events(&mut self, index: usize, events: &[Event]) -> Result<(), Violation> {
        let sled = u8::try_from(index).unwrap_or(u8::MAX);
        for event in events {
            self.stats.count_event(event);
            let summary = self.summary(index)?;
            let durable = match event {
                Event::Committed(epoch) => summary.latest_committed.is_some_and(|c| c >= *epoch),
                Event::Expunged { epoch, .. } => summary.expunged == Some(*epoch),
                _ => true,
            };
            if !durable {
                return Err(Violation::EventNotDurable { sled });
            }
        }
        Ok(())
    }

    /// Delivers message `n` (modulo the count) if its link is up.
    pub fn deliver(&mut self, n: usize) -> Result<(), Violation> {
        self.delivered_ack = None;
        let Some(taken) = self.network.take(n) else {
            return self.check();
        };
        let msg = taken.message();
        let (from, to) = (usize::from(msg.from), usize::from(msg.to));
        if !self.is_connected(from, to) {
            self.network.count_link_down();
            return self.check();
        }
        self.network.count_delivered();
        let kind = match wire::decode_peer_msg(msg.bytes) {
            Ok(decoded) => {
                if let Body::PrepareAck(epoch) = decoded.body {
                    self.delivered_ack = Some(DeliveredAck { from, to, epoch });
                }
                decoded.body.kind()
            }
            Err(_) => "undecodable",
        };
        let Some(from_id) = self.ids.get(from).cloned() else {
            return self.check();
        };
        self.probed(to, kind, |node, ctx, rng, _| {
            node.handle_bytes(ctx, rng, &from_id, msg.bytes)
        })?;
        self.check()
    }

    /// Hands `bytes` to sled `to` as if sled `from` had sent them, past the
    /// network (a forged or replayed message), then checks every invariant.
    /// The message reaches nobody if `to` is down or `from` is no sled.
    pub fn inject(&mut self, from: usize, to: usize, bytes: &[u8]) -> Result<(), Violation> {
        self.delivered_ack = None;
        if let Some(from_id) = self.ids.get(from).cloned() {
            self.call(to, |node, ctx, rng, _| {
                node.handle_bytes(ctx, rng, &from_id, bytes)
            })?;
        }
        self.check()
    }

    /// Delivers every message, oldest first, checking after each, until
    /// none is left. Fails if the network does not go quiet within a bound
    /// (a message loop between nodes).
    pub fn deliver_all(&mut self) -> Result<(), Violation> {
        const MAX_DELIVERIES: usize = 4096;
        for _ in 0..MAX_DELIVERIES {
            if self.network.is_empty() {
                return Ok(());
            }
            self.deliver(0)?;
        }
        Err(crate::invariants::LivenessFailure::NetworkNeverQuiet.into())
    }

    /// Whether sleds `a` and `b` have a connection (link plugged, both up).
    pub fn is_connected(&self, a: usize, b: usize) -> bool {
        self.network.is_plugged(a, b) && self.is_up(a) && self.is_up(b)
    }

    fn is_up(&self, index: usize) -> bool {
        self.sleds.get(index).is_some_and(Sled::is_up)
    }

    /// Plugs the link a–b; both nodes see the connection if both are up.
    pub fn connect(&mut self, a: usize, b: usize) -> Result<(), Violation> {
        if self.network.set_plugged(a, b, true) && self.is_up(a) && self.is_up(b) {
            self.notify_connect(a, b)?;
        }
        Ok(())
    }

    /// Unplugs the link a–b; both nodes see the disconnection if both are up.
    pub fn disconnect(&mut self, a: usize, b: usize) -> Result<(), Violation> {
        let connected = self.is_connected(a, b);
        if self.network.set_plugged(a, b, false) && connected {
            self.notify_disconnect(a, b)?;
        }
        Ok(())
    }

    fn notify_connect(&mut self, a: usize, b: usize) -> Result<(), Violation> {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(peer) = self.ids.get(y).cloned() {
                self.probed(x, "on_connect", |node, ctx, _, _| {
                    node.on_connect(ctx, &peer)
                })?;
            }
        }
        Ok(())
    }

    fn notify_disconnect(&mut self, a: usize, b: usize) -> Result<(), Violation> {
        for (x, y) in [(a, b), (b, a)] {
            if let Some(peer) = self.ids.get(y).cloned() {
                self.probed(x, "on_disconnect", |node, ctx, _, _| {
                    node.on_disconnect(ctx, &peer)
                })?;
            }
        }
        Ok(())
    }

    /// Crashes sled `index`: its peers see the connection drop, and it
    /// keeps only its disk.
    pub fn crash(&mut self, index: usize) -> Result<(), Violation> {
        if !self.is_up(index) {
            return Ok(());
        }
        // What the crash loses must be on the disk already.
        self.check_stored(index, Compare::Always)?;
        for peer in 0..self.sleds.len() {
            if self.is_connected(index, peer)
                && let Some(id) = self.ids.get(index).cloned()
            {
                self.probed(peer, "on_disconnect", |node, ctx, _, _| {
                    node.on_disconnect(ctx, &id)
                })?;
            }
        }
        if let Some(sled) = self.sleds.get_mut(index) {
            sled.crash();
        }
        if let Some(view) = self.acks.get_mut(index) {
            *view = AckView::default();
        }
        self.stats.crashes = self.stats.crashes.saturating_add(1);
        Ok(())
    }

    /// Boots crashed sled `index` from its disk and connects it to every
    /// up sled it has a plugged link to.
    pub fn restart(&mut self, index: usize) -> Result<(), Violation> {
        if self.is_up(index) {
            return Ok(());
        }
        let mut seed = [0u8; 32];
        self.rng.fill_bytes(&mut seed);
        let sled_u8 = u8::try_from(index).unwrap_or(u8::MAX);
        let Some(sled) = self.sleds.get_mut(index) else {
            return Ok(());
        };
        sled.boot(seed).map_err(|error| Violation::DiskUnreadable {
            sled: sled_u8,
            error,
        })?;
        if sled.boots() > 1 {
            self.stats.restarts = self.stats.restarts.saturating_add(1);
        }
        for peer in 0..self.sleds.len() {
            if self.is_connected(index, peer) {
                self.notify_connect(index, peer)?;
            }
        }
        Ok(())
    }

    /// Asks sled `index` for the secret of `epoch`. Any secret returned is
    /// compared with the first one loaded for that epoch. `None` if the
    /// sled is down.
    pub fn load_secret(
        &mut self,
        index: usize,
        epoch: Epoch,
    ) -> Result<Option<Result<bool, LoadSecretError>>, Violation> {
        let outcome = self.probed(index, "load_rack_secret", |node, ctx, _, _| {
            node.load_rack_secret(ctx, epoch)
        })?;
        let Some(outcome) = outcome else {
            return Ok(None);
        };
        Ok(Some(match outcome {
            Ok(Some(secret)) => {
                self.stats.secrets_loaded = self.stats.secrets_loaded.saturating_add(1);
                if self.secrets.observe(epoch, &secret) == Seen::Different {
                    return Err(Violation::SecretMismatch {
                        sled: u8::try_from(index).unwrap_or(u8::MAX),
                        epoch,
                    });
                }
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        }))
    }

    /// The decoded summary of sled `index`'s disk (cached per disk write).
    pub fn disk_summary(&mut self, index: usize) -> Result<DiskSummary, Violation> {
        self.summary(index).cloned()
    }

    fn summary(&mut self, index: usize) -> Result<&DiskSummary, Violation> {
        let sled_u8 = u8::try_from(index).unwrap_or(u8::MAX);
        let writes = self.sleds.get(index).map_or(0, Sled::disk_writes);
        let fresh = self
            .summaries
            .get(index)
            .and_then(Option::as_ref)
            .is_some_and(|(w, _)| *w == writes);
        if !fresh {
            let state = self
                .sleds
                .get(index)
                .map(Sled::read_disk)
                .unwrap_or(Ok(PersistentState::new()))
                .map_err(|error| Violation::DiskUnreadable {
                    sled: sled_u8,
                    error,
                })?;
            // Invariant 1, for every configuration on the disk.
            for stored in &state.fields().configs {
                let seen =
                    self.configs
                        .observe(&stored.config)
                        .map_err(|error| Violation::Encoding {
                            sled: sled_u8,
                            error,
                        })?;
                if seen == Seen::Different {
                    return Err(Violation::MismatchedConfigurations {
                        sled: Some(sled_u8),
                        epoch: stored.config.epoch(),
                    });
                }
            }
            let summary = DiskSummary::of(&state);
            let was_expunged = self
                .summaries
                .get(index)
                .and_then(Option::as_ref)
                .is_some_and(|(_, s)| s.expunged.is_some());
            if summary.expunged.is_some() && !was_expunged {
                self.stats.expunged = self.stats.expunged.saturating_add(1);
            }
            if let Some(slot) = self.summaries.get_mut(index) {
                *slot = Some((writes, summary));
            }
        }
        self.summaries
            .get(index)
            .and_then(Option::as_ref)
            .map(|(_, s)| s)
            .ok_or(Violation::DiskUnreadable {
                sled: sled_u8,
                error: wire::WireError::Empty,
            })
    }

    /// Checks every safety invariant (see [`crate::invariants`]).
    pub fn check(&mut self) -> Result<(), Violation> {
        let count = self.sleds.len();
        for index in 0..count {
            self.summary(index)?;
        }
        for index in 0..count {
            self.check_disk(index)?;
            self.check_running(index)?;
        }
        self.check_nexus_commits()
    }

    /// Invariants that read one sled's disk against Nexus.
    fn check_disk(&self, index: usize) -> Result<(), Violation> {
        let sled = u8::try_from(index).unwrap_or(u8::MAX);
        let Some((_, summary)) = self.summaries.get(index).and_then(Option::as_ref) else {
            return Ok(());
        };
        if let Some(epoch) = summary.expunged {
            // Invariant 6: outside a configuration Nexus committed (or one
            // too old for Nexus to remember).
            let outside = match self.nexus.committed_members(epoch) {
                Some(members) => members & bit(index) == 0,
                None => self.nexus.forgot_epoch(epoch),
            };
            if !outside {
                return Err(Violation::WronglyExpunged { sled, epoch });
            }
        }
        if let Some(epoch) = summary.latest_committed
            && !self.nexus.is_committed(epoch)
            && !self.nexus.forgot_epoch(epoch)
        {
            return Err(Violation::CommittedUnknownEpoch { sled, epoch });
        }
        // Invariant 3.
        if let Some(epoch) = self.nexus.counted_commit(index)
            && summary.latest_committed.is_none_or(|c| c < epoch)
        {
            return Err(Violation::CommitNotDurable { sled, epoch });
        }
        Ok(())
    }

    /// Invariants on a running node: alarms, roles, the ack ledger.
    fn check_running(&mut self, index: usize) -> Result<(), Violation> {
        let sled = u8::try_from(index).unwrap_or(u8::MAX);
        let Some(running) = self.sleds.get(index).and_then(Sled::running) else {
            return Ok(());
        };
        // Invariant 5.
        if let Some(&alarm) = running.ctx.alarms().first() {
            return Err(Violation::Alarm { sled, alarm });
        }
        // Invariant 4.
        if running.node.coordinating().is_some() && running.node.computing_share().is_some() {
            return Err(Violation::CoordinatingWhileComputingShare { sled });
        }
        // Invariant 2: the ack ledger.
        let mut view = AckView::default();
        let mut status_config = None;
        if let Some(status) = running.node.coordinator_status(&running.ctx) {
            view.epoch = Some(status.epoch);
            for id in status.acked {
                let from = index_of(&self.ids, id).ok_or(Violation::UnknownPeer { sled })?;
                view.acked |= bit(from);
            }
            status_config = status.config.cloned();
        }
        let previous = self.acks.get(index).copied().unwrap_or_default();
        let mut allowed = bit(index);
        if previous.epoch == view.epoch {
            allowed |= previous.acked;
        }
        if let (Some(ack), Some(epoch)) = (self.delivered_ack, view.epoch)
            && ack.to == index
            && ack.epoch == epoch
        {
            allowed |= bit(ack.from);
        }
        if let Some(epoch) = view.epoch {
            if let Some(from) = first_bit(view.acked & !allowed) {
                return Err(Violation::AckNotSent {
                    coordinator: sled,
                    from,
                    epoch,
                });
            }
            for from in 0..self.sleds.len() {
                if view.acked & bit(from) == 0 {
                    continue;
                }
                let Some((_, acker)) = self.summaries.get(from).and_then(Option::as_ref) else {
                    continue;
                };
                let durable = acker.holds_share(epoch)
                    || acker.latest_epoch.is_some_and(|e| e > epoch)
                    || acker.latest_committed.is_some_and(|e| e >= epoch);
                if !durable {
                    return Err(Violation::AckedPrepareLost {
                        sled: u8::try_from(from).unwrap_or(u8::MAX),
                        epoch,
                    });
                }
            }
        }
        if let Some(slot) = self.acks.get_mut(index) {
            *slot = view;
        }
        // Invariant 1, for the configuration a coordinator reports.
        if let Some(config) = status_config {
            let seen = self
                .configs
                .observe(&config)
                .map_err(|error| Violation::Encoding { sled, error })?;
            if seen == Seen::Different {
                return Err(Violation::MismatchedConfigurations {
                    sled: Some(sled),
                    epoch: config.epoch(),
                });
            }
        }
        Ok(())
    }

    /// Invariant 2 for what Nexus committed: every sled whose ack it
    /// committed on keeps the share until it commits.
    fn check_nexus_commits(&self) -> Result<(), Violation> {
        let Some(latest) = self.nexus.latest_committed() else {
            return Ok(());
        };
        for index in 0..self.sleds.len() {
            if latest.acked & bit(index) == 0 {
                continue;
            }
            let Some((_, summary)) = self.summaries.get(index).and_then(Option::as_ref) else {
                continue;
            };
            let kept = summary.holds_share(latest.epoch)
                || summary.latest_committed.is_some_and(|c| c >= latest.epoch);
            if !kept {
                return Err(Violation::AckedPrepareLost {
                    sled: u8::try_from(index).unwrap_or(u8::MAX),
                    epoch: latest.epoch,
                });
            }
        }
        Ok(())
    }
}

/// The sled index of `id`. Sled `i`'s serial number is `SN{i:04}`
/// ([`platform_id`]), so the index is read from it, then checked against
/// `ids` (one comparison instead of a search: the checker maps ids to
/// sleds at every step, and a rack of 32 made the search its largest cost).
pub(crate) fn index_of(ids: &[PlatformId], id: &PlatformId) -> Option<usize> {
    let index: usize = id.serial_number().strip_prefix("SN")?.parse().ok()?;
    (ids.get(index)? == id).then_some(index)
}

/// The members of `mask`, as ids.
pub(crate) fn mask_ids(ids: &[PlatformId], mask: SledMask) -> impl Iterator<Item = &PlatformId> {
    ids.iter()
        .enumerate()
        .filter(move |(i, _)| mask & bit(*i) != 0)
        .map(|(_, id)| id)
}

/// The lowest sled index in `mask`.
pub(crate) fn first_bit(mask: SledMask) -> Option<u8> {
    (mask != 0).then(|| u8::try_from(mask.trailing_zeros()).unwrap_or(u8::MAX))
}

/// The `n`-th (modulo the count) sled index in `mask`.
pub(crate) fn nth_bit(mask: SledMask, n: usize) -> Option<usize> {
    let count = usize::try_from(mask.count_ones()).ok()?;
    if count == 0 {
        return None;
    }
    (0..MAX_SLEDS)
        .filter(|i| mask & bit(*i) != 0)
        .nth(n % count)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_ids_map_back_to_their_index_and_nothing_else_does() {
        let ids: heapless::Vec<PlatformId, MAX_SLEDS> =
            (0..MAX_SLEDS).map(|i| platform_id(i).unwrap()).collect();
        for (i, id) in ids.iter().enumerate() {
            assert_eq!(index_of(&ids, id), Some(i));
            assert_eq!(index_of(&ids[..i], id), None);
        }
        for (part, serial) in [
            (crate::sled::PART_NUMBER, "SN+003"),
            (crate::sled::PART_NUMBER, "SN0032"),
            (crate::sled::PART_NUMBER, "XX0003"),
            ("913-0000020", "SN0003"),
        ] {
            let id = PlatformId::new(part, serial).unwrap();
            assert_eq!(index_of(&ids, &id), None, "{id:?}");
        }
    }
}
