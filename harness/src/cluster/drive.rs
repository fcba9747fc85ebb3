//! Driving the cluster: actions, node calls through the core's driving
//! loop, deliveries, links, crashes and restarts, loads. Every call into a
//! node goes through [`Cluster::call`] (or, for the calls the harness makes
//! itself, its probed twin), which afterwards stores the state to the
//! sled's disk if it changed and only then moves the queued messages,
//! encoded, into the network; the checker then looks at what the call did.
//! Every delivery goes through `Node::handle_bytes`, so the wire format is
//! exercised on every message.

use rand_chacha::ChaCha20Rng;
use rand_core::Rng;
use tq_core::ids::{Epoch, PlatformId};
use tq_core::limits::{MAX_EVENTS, MAX_OUTGOING};
use tq_core::messages::Body;
use tq_core::node::{Event, Io, LoadSecretError, Node, NodeCtx, Outputs, drive};
use tq_core::persistent::{PersistentState, Revision};
use tq_core::wire::{self, MAX_PEER_MSG_LEN};

use super::{Cluster, DriverFault};
use crate::action::Action;
use crate::checker::Compare;
use crate::invariants::{LivenessFailure, Violation};
use crate::network::Network;
use crate::nexus::SimNexus;
use crate::sled::{Disk, Running, Sled, index_of};

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

/// What every node call the harness makes itself runs through (see
/// [`Cluster::set_call_probe`]): it gets the call's name and must run it
/// exactly once.
pub type CallProbe = fn(call: &'static str, run: &mut dyn FnMut());

/// The default probe: just runs the call.
pub(super) fn run_call(_: &'static str, run: &mut dyn FnMut()) {
    run();
}

/// What a node call may use besides its node: the sled ids, and Nexus.
struct CallSide<'a> {
    ids: &'a [PlatformId],
    nexus: &'a mut SimNexus,
}

impl<const SLEDS: usize> Cluster<SLEDS> {
    /// Applies one action, then checks every invariant.
    pub fn apply(&mut self, action: &Action) -> Result<(), Violation> {
        self.stats.actions = self.stats.actions.saturating_add(1);
        self.checker.step_begins();
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
        f: impl FnOnce(&mut Node, &mut NodeCtx, &mut ChaCha20Rng, &mut SimNexus) -> T,
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
        let (checker, world, stats) = self.checking();
        checker.check_stored(world, index, compare)?;
        checker.check_acks_sent(world, stats, index, &acks_sent)?;
        checker.check_events(world, stats, index, &events)?;
        // `None` here too if a probe did not run the call.
        Ok(out)
    }

    /// Delivers message `n` (modulo the count) if its link is up.
    pub fn deliver(&mut self, n: usize) -> Result<(), Violation> {
        self.checker.step_begins();
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
                    self.checker.ack_delivered(from, to, epoch);
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
        self.checker.step_begins();
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
        Err(LivenessFailure::NetworkNeverQuiet.into())
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
        let (checker, world, _) = self.checking();
        checker.check_stored(world, index, Compare::Always)?;
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
        self.checker.sled_crashed(index);
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

    /// Has sled `index` ask every connected member for the shares its
    /// secret load still awaits: what a real caller does once a load has
    /// waited too long (`tq_core::node::Node::widen_secret_load`). Nothing
    /// if the sled is down.
    pub fn widen_secret_load(&mut self, index: usize) -> Result<(), Violation> {
        self.probed(index, "widen_secret_load", |node, ctx, _, _| {
            node.widen_secret_load(ctx);
        })?;
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
                self.checker.secret_loaded(index, epoch, &secret)?;
                Ok(true)
            }
            Ok(None) => Ok(false),
            Err(e) => Err(e),
        }))
    }
}
