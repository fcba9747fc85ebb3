//! One trust quorum node as a service processor task would hold it: a
//! `Node` and its `NodeCtx` in static memory, driven through every entry
//! point, the budget binary of the flash, static RAM and task stack
//! figures.
//!
//! Every input (the persistent state read back from storage, the bytes from
//! peers and from Nexus) passes through `core::hint::black_box`, so the
//! optimiser cannot see what it holds and keeps every path a real input
//! could take. The whole stack is painted as `main` starts, so the task's
//! peak stack, `main`'s own frame included, is measured (the `budget:
//! stack, whole node task` line at the end); nothing big is ever on it:
//!
//! - boot (the `budget: stack, deepest boot path` line): the context is
//!   built straight into static memory, storage holds nothing usable, so
//!   the state is restored in place from the LRTQ ledger (sled 0 of the
//!   7-sled LRTQ rack the build script set up); the node then starts
//!   coordinating the LRTQ upgrade from Nexus's encoded request: a real
//!   call with real output;
//! - every input goes through the core's driving loop (`node::drive`) with
//!   this task's `Io`: the state goes to storage a 256-byte page at a time
//!   (`wire::encode_persistent_state_chunked`), not through a buffer of
//!   `wire::MAX_PERSISTENT_STATE_LEN` (about 20 KiB), then messages are
//!   encoded into the task's one message buffer (where Nexus's requests
//!   are received too) and events logged;
//! - Nexus's requests are decoded in place into one static slot, each input
//!   handled in its own out-of-line step so their frames never stack up in
//!   `main`'s.
//!
//! Built with the `no-panic` feature it is also the link-time proof that
//! no panic path survives (see `tq_target_tests::exit`).
#![no_std]
#![no_main]

use core::hint::black_box;

// chacha20's RNG, not rand_chacha's: its block function is the one the
// core's AEAD links anyway (see Cargo.toml).
use chacha20::ChaCha20Rng;
use rand_core::SeedableRng;
use static_cell::ConstStaticCell;
use tq_core::api::{CommitRequest, LrtqUpgradeMsg, ReconfigureMsg};
use tq_core::config::Configuration;
use tq_core::ids::{Epoch, PlatformId, RackId, Threshold};
use tq_core::node::{CtxSlot, Event, Io, Node, NodeCtx, Outputs, drive};
use tq_core::persistent::PersistentState;
use tq_core::wire::{self, DecodeSlot, MAX_PEER_MSG_LEN, PageReader};
use tq_target_tests::lrtq::{LEDGER_RACK_ID, LRTQ_RACK_7};
use tq_target_tests::stack;
use tq_target_tests::{fail, pass};

const RACK_ID: RackId = LEDGER_RACK_ID;

/// Stands in for bytes from storage, peers and Nexus: the optimiser only
/// sees it through `black_box`.
static INPUT: [u8; 64] = [0; 64];

/// A storage page: what the task hands the flash driver at a time.
const STORAGE_PAGE_LEN: usize = 256;

#[cortex_m_rt::entry]
fn main() -> ! {
    // Before anything else: the whole task's stack is measured from here.
    stack::paint_whole_stack();
    let Ok(id) = PlatformId::new("913-0000019", "sled-0") else {
        fail("platform id");
    };
    let Ok(peer) = PlatformId::new("913-0000019", "sled-1") else {
        fail("platform id");
    };
    let ((ctx, path), measured) = stack::measure(|| boot(id));
    defmt::println!(
        "budget: stack, deepest boot path: {=usize} bytes ({=str})",
        measured.bytes,
        path
    );
    let Some(node) = cortex_m::singleton!(: Node = Node::new()) else {
        fail("node slot taken");
    };
    let Some(task) = cortex_m::singleton!(: Task = Task {
        rng: ChaCha20Rng::from_seed([7; 32]),
        buffer: [0; MAX_PEER_MSG_LEN],
        io: TaskIo { sent: 0, events: 0 },
    }) else {
        fail("task slot taken");
    };

    let Some(slots) = REQUESTS.try_take() else {
        fail("request slot taken");
    };

    task.step(node, ctx, |node, ctx, _| node.on_connect(ctx, &peer));
    let request = nexus_upgrade_request(task, ctx.id(), &peer);
    if !nexus_lrtq_upgrade(task, node, ctx, slots, request) {
        fail("the LRTQ upgrade was refused");
    }

    // Everything else a task passes in, from opaque bytes.
    let input = black_box(&INPUT[..]);
    deliver(task, node, ctx, &peer, input);
    nexus_reconfigure(task, node, ctx, slots, input);
    black_box(nexus_lrtq_upgrade(
        task,
        node,
        ctx,
        slots,
        Received::Input(input),
    ));
    nexus_commit(task, node, ctx, input);
    nexus_prepare_and_commit(task, node, ctx, slots, input);
    load_secret(task, node, ctx, Epoch(black_box(3)));
    if let Some(status) = node.coordinator_status(ctx) {
        black_box((status.epoch, status.phase, status.acked.len()));
    }
    task.step(node, ctx, |node, _, _| node.clear_secrets());
    task.step(node, ctx, |node, ctx, _| node.on_disconnect(ctx, &peer));
    black_box((ctx.alarms().len(), ctx.counters().total()));

    let coordinating = node.coordinating() == Some(Epoch(2));
    defmt::println!(
        "node: coordinating the LRTQ upgrade: {=bool}; sent {=u32} messages; size_of Node {=usize}, NodeCtx {=usize}",
        coordinating,
        task.io.sent,
        core::mem::size_of::<Node>(),
        core::mem::size_of::<NodeCtx>()
    );
    defmt::println!(
        "budget: stack, whole node task: {=usize} bytes",
        stack::deepest_since_paint()
    );
    if !coordinating {
        fail("not coordinating the upgrade");
    }
    pass()
}

/// What the task keeps besides the node and its context, in static memory.
struct Task {
    rng: ChaCha20Rng,
    /// The task's one message buffer: a request from Nexus is received
    /// here and decoded into its slot before the node call, and each
    /// outgoing message is encoded here during the call's sending step, so
    /// the two never need it at once.
    buffer: [u8; MAX_PEER_MSG_LEN],
    io: TaskIo,
}

// A Nexus request fits the buffer.
const _: () = assert!(wire::MAX_LRTQ_UPGRADE_MSG_LEN <= MAX_PEER_MSG_LEN);
const _: () = assert!(wire::MAX_RECONFIGURE_MSG_LEN <= MAX_PEER_MSG_LEN);
const _: () = assert!(wire::MAX_CONFIGURATION_LEN <= MAX_PEER_MSG_LEN);

/// Where the bytes of a request are.
#[derive(Clone, Copy)]
enum Received {
    /// Opaque bytes from outside.
    Input(&'static [u8]),
    /// The first bytes of the task's buffer.
    InBuffer(usize),
}

impl Task {
    fn received(&self, bytes: Received) -> &[u8] {
        match bytes {
            Received::Input(bytes) => bytes,
            Received::InBuffer(len) => self.buffer.get(..len).unwrap_or(&[]),
        }
    }

    /// One input through the core's driving loop: the input, then storing
    /// the state if it changed, then sending what it queued.
    fn step<T>(
        &mut self,
        node: &mut Node,
        ctx: &mut NodeCtx,
        input: impl FnOnce(&mut Node, &mut NodeCtx, &mut ChaCha20Rng) -> T,
    ) -> T {
        let rng = &mut self.rng;
        let (output, stored) = drive(node, ctx, &mut self.io, &mut self.buffer, |node, ctx| {
            input(node, ctx, rng)
        });
        if stored.is_err() {
            fail("storage write failed");
        }
        output
    }
}

/// The task's storage, network and log.
struct TaskIo {
    sent: u32,
    events: u32,
}

impl Io for TaskIo {
    type StoreError = ();

    /// Writes the state to storage a page at a time (here: each page
    /// handed to `black_box`, as to a flash driver).
    #[inline(never)]
    fn store(&mut self, state: &PersistentState) -> Result<(), ()> {
        let mut page = [0u8; STORAGE_PAGE_LEN];
        wire::encode_persistent_state_chunked(state, &mut page, |bytes| {
            black_box(bytes);
            Ok::<(), ()>(())
        })
        .map(|_| ())
        .map_err(|_| ())
    }
}

impl Outputs for TaskIo {
    fn send(&mut self, to: &PlatformId, bytes: &[u8]) {
        black_box((to, bytes));
        self.sent += 1;
    }

    fn event(&mut self, event: Event) {
        defmt::info!("node event: {}", event);
        self.events += 1;
    }
}

/// The context, in static memory by construction: its slot is
/// `const`-constructible with all-zero bytes, so it sits in `.bss` and is
/// never built on the stack (`ConstStaticCell` hands it out once).
static CTX: ConstStaticCell<CtxSlot> = ConstStaticCell::new(CtxSlot::new());

/// The task's storage, read back a page at a time as flash that is not
/// memory-mapped would be: here it holds the opaque input, so it holds no
/// state (a sled upgrading from LRTQ).
struct Storage(&'static [u8]);

impl PageReader for Storage {
    type Error = ();

    fn read(&mut self, offset: usize, buf: &mut [u8]) -> Result<(), ()> {
        let end = offset.checked_add(buf.len()).ok_or(())?;
        buf.copy_from_slice(black_box(self.0).get(offset..end).ok_or(())?);
        Ok(())
    }
}

/// Boots as firmware should, nothing big ever on the stack: the context
/// booted in its static slot, its state restored in place from storage
/// read a page at a time, else from the LRTQ ledger in place. Returns the
/// context and which of the two filled it. Out of line, so that all of its
/// frame is below `main`'s painted stack.
#[inline(never)]
fn boot(id: PlatformId) -> (&'static mut NodeCtx, &'static str) {
    let Some(slot) = CTX.try_take() else {
        fail("context slot taken");
    };
    let (ctx, measured) = stack::measure(|| slot.boot(id));
    defmt::println!("stack: boot: CtxSlot::boot: {}", measured);
    let mut storage = Storage(&INPUT);
    let stored_len = black_box(INPUT.len());
    let (restored, measured) = stack::measure(|| ctx.restore_state_from(&mut storage, stored_len));
    defmt::println!("stack: boot: NodeCtx::restore_state_from: {}", measured);
    if restored.is_ok() {
        return (ctx, "restored");
    }
    let ledger = black_box(LRTQ_RACK_7.sled_0_ledger);
    let (restored, measured) = stack::measure(|| ctx.restore_lrtq(ledger));
    defmt::println!("stack: boot: NodeCtx::restore_lrtq: {}", measured);
    match restored {
        Ok(()) => (ctx, "lrtq_ledger"),
        Err(error) => {
            defmt::error!("LRTQ ledger: {}", error);
            fail("LRTQ ledger")
        }
    }
}

fn sled(serial: &str) -> PlatformId {
    PlatformId::new("913-0000019", serial).unwrap_or_else(|_| fail("platform id"))
}

/// Stands for Nexus: the request to coordinate the LRTQ upgrade (sleds 0
/// to 3, threshold 3, epoch 2), encoded into the task's buffer as the
/// bytes the task receives. Encoded from borrowed parts: an
/// [`LrtqUpgradeMsg`] built by value (its member set alone is 2 KiB, moved
/// twice on the way) made this stand-in for Nexus the deepest frame of the
/// whole task, deeper than any node call. Out of line, so that its frame is
/// not `main`'s.
#[inline(never)]
fn nexus_upgrade_request(task: &mut Task, id: &PlatformId, peer: &PlatformId) -> Received {
    let members = [id.clone(), peer.clone(), sled("sled-2"), sled("sled-3")];
    let Ok(threshold) = Threshold::new(3) else {
        fail("upgrade request");
    };
    let upgrade = UpgradeRequest {
        rack_id: RACK_ID,
        epoch: Epoch(2),
        members: &members,
        threshold,
    };
    match wire::encode_nexus(&upgrade, &mut task.buffer) {
        Ok(bytes) => Received::InBuffer(black_box(bytes.len())),
        Err(_) => fail("upgrade request does not encode"),
    }
}

/// An [`LrtqUpgradeMsg`] with its member set borrowed as a sorted slice:
/// the same fields in the same order, so the same encoding (a member set
/// encodes as its list). The node decodes it with the core's decoder,
/// which refuses anything else, and the run fails if it does.
#[derive(serde::Serialize)]
struct UpgradeRequest<'a> {
    rack_id: RackId,
    epoch: Epoch,
    members: &'a [PlatformId],
    threshold: Threshold,
}

impl wire::NexusWire for UpgradeRequest<'_> {
    const MAX_LEN: usize = wire::MAX_LRTQ_UPGRADE_MSG_LEN;
}

/// Bytes from a peer. Out of line: the node decodes the message (about
/// 4 KiB with a configuration) in this call's frame, which must not become
/// part of `main`'s.
#[inline(never)]
fn deliver(task: &mut Task, node: &mut Node, ctx: &mut NodeCtx, from: &PlatformId, bytes: &[u8]) {
    task.step(node, ctx, |node, ctx, rng| {
        node.handle_bytes(ctx, rng, from, bytes);
    });
}

/// Where Nexus's requests are decoded in place, one at a time: a task
/// handles one request before it reads the next, so one slot, sized for
/// the largest request (a configuration, about 4 KiB), serves all three
/// kinds rather than a slot of each.
// Sized by the largest kind on purpose: that is the point of one slot.
#[allow(clippy::large_enum_variant)]
enum Requests {
    Reconfigure(DecodeSlot<ReconfigureMsg>),
    Upgrade(DecodeSlot<LrtqUpgradeMsg>),
    Config(DecodeSlot<Configuration>),
}

impl Requests {
    /// The slot for a reconfiguration request. Switching kinds writes an
    /// empty slot in place (out of line, so whatever the assignment builds
    /// stays out of the callers' frames).
    #[inline(never)]
    fn reconfigure(&mut self) -> &mut DecodeSlot<ReconfigureMsg> {
        if !matches!(self, Self::Reconfigure(_)) {
            *self = Self::Reconfigure(DecodeSlot::new());
        }
        match self {
            Self::Reconfigure(slot) => slot,
            _ => fail("request slot kind"),
        }
    }

    /// The slot for an LRTQ upgrade request.
    #[inline(never)]
    fn upgrade(&mut self) -> &mut DecodeSlot<LrtqUpgradeMsg> {
        if !matches!(self, Self::Upgrade(_)) {
            *self = Self::Upgrade(DecodeSlot::new());
        }
        match self {
            Self::Upgrade(slot) => slot,
            _ => fail("request slot kind"),
        }
    }

    /// The slot for a configuration.
    #[inline(never)]
    fn config(&mut self) -> &mut DecodeSlot<Configuration> {
        if !matches!(self, Self::Config(_)) {
            *self = Self::Config(DecodeSlot::new());
        }
        match self {
            Self::Config(slot) => slot,
            _ => fail("request slot kind"),
        }
    }
}

/// The request slot, in static memory by construction (a decode slot is
/// `const`).
static REQUESTS: ConstStaticCell<Requests> =
    ConstStaticCell::new(Requests::Config(DecodeSlot::new()));

/// A reconfiguration request from Nexus, decoded in place.
#[inline(never)]
fn nexus_reconfigure(
    task: &mut Task,
    node: &mut Node,
    ctx: &mut NodeCtx,
    slots: &mut Requests,
    bytes: &[u8],
) {
    if let Ok(msg) = wire::decode_reconfigure_msg_into(bytes, slots.reconfigure()) {
        black_box(task.step(node, ctx, |node, ctx, rng| {
            node.coordinate_reconfiguration(ctx, rng, msg).is_ok()
        }));
    }
}

/// An LRTQ upgrade request from Nexus, decoded in place; whether the node
/// took it.
#[inline(never)]
fn nexus_lrtq_upgrade(
    task: &mut Task,
    node: &mut Node,
    ctx: &mut NodeCtx,
    slots: &mut Requests,
    bytes: Received,
) -> bool {
    let Ok(msg) = wire::decode_lrtq_upgrade_msg_into(task.received(bytes), slots.upgrade()) else {
        return false;
    };
    task.step(node, ctx, |node, ctx, rng| {
        node.coordinate_upgrade_from_lrtq(ctx, rng, msg).is_ok()
    })
}

/// Nexus's commit.
#[inline(never)]
fn nexus_commit(task: &mut Task, node: &mut Node, ctx: &mut NodeCtx, bytes: &[u8]) {
    let request = wire::decode_commit_request(bytes).unwrap_or(CommitRequest {
        rack_id: RACK_ID,
        epoch: Epoch(black_box(3)),
    });
    black_box(task.step(node, ctx, |node, ctx, _| {
        node.commit_configuration(ctx, &request).is_ok()
    }));
}

/// Nexus hands the node a committed configuration, decoded in place.
#[inline(never)]
fn nexus_prepare_and_commit(
    task: &mut Task,
    node: &mut Node,
    ctx: &mut NodeCtx,
    slots: &mut Requests,
    bytes: &[u8],
) {
    if let Ok(config) = wire::decode_configuration_into(bytes, slots.config()) {
        black_box(task.step(node, ctx, |node, ctx, _| {
            node.prepare_and_commit(ctx, config).is_ok()
        }));
    }
}

/// Nexus asks for the rack secret of `epoch`.
#[inline(never)]
fn load_secret(task: &mut Task, node: &mut Node, ctx: &mut NodeCtx, epoch: Epoch) {
    task.step(node, ctx, |node, ctx, _| {
        if let Ok(Some(secret)) = node.load_rack_secret(ctx, epoch) {
            black_box(secret.expose_secret());
        }
    });
}
