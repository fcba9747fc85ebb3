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
//!   encoded into a static transmit buffer and events logged;
//! - Nexus's requests are decoded in place into static slots, each input
//!   handled in its own out-of-line step so their frames never stack up in
//!   `main`'s; each comes with Nexus's authenticator, decoded from its own
//!   bytes and checked against the sled's request key (given to the
//!   context at boot) before the call, and each answer is tagged
//!   (`tq_core::authority`).
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
use tq_core::authority::{self, CoordinatorStatusQuery, RequestAuth, SledRequestKey};
use tq_core::config::Configuration;
use tq_core::ids::{Epoch, PlatformId, RackId, Threshold};
use tq_core::member_set::MemberSet;
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

/// Stands in for the sled's request key file (the optimiser only sees it
/// through `black_box`).
static REQUEST_KEY: [u8; 32] = [0x3c; 32];

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
        transmit: [0; MAX_PEER_MSG_LEN],
        io: TaskIo { sent: 0, events: 0 },
    }) else {
        fail("task slot taken");
    };

    let Some(slots) = REQUESTS.try_take() else {
        fail("request slots taken");
    };

    task.step(node, ctx, |node, ctx, _| node.on_connect(ctx, &peer));
    let (request, auth) = nexus_upgrade_request(ctx.id(), &peer);
    if !nexus_lrtq_upgrade(task, node, ctx, slots, &auth, request) {
        fail("the LRTQ upgrade was refused");
    }

    // Everything else a task passes in, from opaque bytes.
    let input = black_box(&INPUT[..]);
    deliver(task, node, ctx, &peer, input);
    nexus_reconfigure(task, node, ctx, slots, input, input);
    if let Some(auth) = request_auth(input) {
        black_box(nexus_lrtq_upgrade(task, node, ctx, slots, &auth, input));
    }
    nexus_commit(task, node, ctx, input, input);
    nexus_prepare_and_commit(task, node, ctx, slots, input, input);
    load_secret(task, node, ctx, Epoch(black_box(3)));
    nexus_coordinator_status(node, ctx, input);
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
    /// Each outgoing message is encoded here before it is handed over.
    transmit: [u8; MAX_PEER_MSG_LEN],
    io: TaskIo,
}

impl Task {
    /// One input through the core's driving loop: the input, then storing
    /// the state if it changed, then sending what it queued.
    fn step<T>(
        &mut self,
        node: &mut Node,
        ctx: &mut NodeCtx,
        input: impl FnOnce(&mut Node, &mut NodeCtx, &mut ChaCha20Rng) -> T,
    ) -> T {
        let rng = &mut self.rng;
        let (output, stored) = drive(node, ctx, &mut self.io, &mut self.transmit, |node, ctx| {
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
    ctx.set_request_key(SledRequestKey::from_bytes(RACK_ID, black_box(REQUEST_KEY)));
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
/// to 3, threshold 3, epoch 2), encoded into a static buffer as the bytes
/// the task receives, and its authenticator (under the sled's key: Nexus
/// derives it; the task's other requests decode theirs from bytes). Out of
/// line, so building the request is not in `main`'s frame.
#[inline(never)]
fn nexus_upgrade_request(id: &PlatformId, peer: &PlatformId) -> (&'static [u8], RequestAuth) {
    let members = [id.clone(), peer.clone(), sled("sled-2"), sled("sled-3")];
    let (Ok(members), Ok(threshold)) = (MemberSet::new(&members), Threshold::new(3)) else {
        fail("upgrade request");
    };
    let upgrade = LrtqUpgradeMsg {
        rack_id: RACK_ID,
        epoch: Epoch(2),
        members,
        threshold,
    };
    let Some(buf) = cortex_m::singleton!(: [u8; wire::MAX_LRTQ_UPGRADE_MSG_LEN] =
        [0; wire::MAX_LRTQ_UPGRADE_MSG_LEN])
    else {
        fail("request buffer taken");
    };
    let key = SledRequestKey::from_bytes(RACK_ID, REQUEST_KEY);
    let Ok(auth) = key.authorize(id, [0x11; 16], &upgrade) else {
        fail("upgrade request not authorized");
    };
    match wire::encode_nexus(&upgrade, buf) {
        Ok(bytes) => (black_box(bytes), black_box(auth)),
        Err(_) => fail("upgrade request does not encode"),
    }
}

/// Nexus's authenticator of a request, from its bytes.
fn request_auth(bytes: &[u8]) -> Option<RequestAuth> {
    authority::decode_request_auth(bytes).ok()
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

/// Nexus's requests, each decoded in place into its slot (a task keeps one
/// of each in static memory: a member set or a configuration is
/// kilobytes).
struct Requests {
    reconfigure: DecodeSlot<ReconfigureMsg>,
    upgrade: DecodeSlot<LrtqUpgradeMsg>,
    config: DecodeSlot<Configuration>,
}

/// The request slots, in static memory by construction (a decode slot is
/// `const`).
static REQUESTS: ConstStaticCell<Requests> = ConstStaticCell::new(Requests {
    reconfigure: DecodeSlot::new(),
    upgrade: DecodeSlot::new(),
    config: DecodeSlot::new(),
});

/// A reconfiguration request from Nexus, decoded in place.
#[inline(never)]
fn nexus_reconfigure(
    task: &mut Task,
    node: &mut Node,
    ctx: &mut NodeCtx,
    slots: &mut Requests,
    auth: &[u8],
    bytes: &[u8],
) {
    let Some(auth) = request_auth(auth) else {
        return;
    };
    if let Ok(msg) = wire::decode_reconfigure_msg_into(bytes, &mut slots.reconfigure) {
        black_box(task.step(node, ctx, |node, ctx, rng| {
            let msg = ctx.verify_request(&auth, msg).ok()?;
            let answer = node.coordinate_reconfiguration(ctx, rng, msg);
            ctx.tag_answer(&msg, &answer)
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
    auth: &RequestAuth,
    bytes: &[u8],
) -> bool {
    let Ok(msg) = wire::decode_lrtq_upgrade_msg_into(bytes, &mut slots.upgrade) else {
        return false;
    };
    task.step(node, ctx, |node, ctx, rng| {
        let Ok(msg) = ctx.verify_request(auth, msg) else {
            return false;
        };
        let answer = node.coordinate_upgrade_from_lrtq(ctx, rng, msg);
        black_box(ctx.tag_answer(&msg, &answer));
        answer.is_ok()
    })
}

/// Nexus's commit.
#[inline(never)]
fn nexus_commit(task: &mut Task, node: &mut Node, ctx: &mut NodeCtx, auth: &[u8], bytes: &[u8]) {
    let Some(auth) = request_auth(auth) else {
        return;
    };
    let request = wire::decode_commit_request(bytes).unwrap_or(CommitRequest {
        rack_id: RACK_ID,
        epoch: Epoch(black_box(3)),
    });
    black_box(task.step(node, ctx, |node, ctx, _| {
        let request = ctx.verify_request(&auth, &request).ok()?;
        let answer = node.commit_configuration(ctx, request);
        ctx.tag_answer(&request, &answer)
    }));
}

/// Nexus hands the node a committed configuration, decoded in place.
#[inline(never)]
fn nexus_prepare_and_commit(
    task: &mut Task,
    node: &mut Node,
    ctx: &mut NodeCtx,
    slots: &mut Requests,
    auth: &[u8],
    bytes: &[u8],
) {
    let Some(auth) = request_auth(auth) else {
        return;
    };
    if let Ok(config) = wire::decode_configuration_into(bytes, &mut slots.config) {
        black_box(task.step(node, ctx, |node, ctx, _| {
            let config = ctx.verify_request(&auth, config).ok()?;
            let answer = node.prepare_and_commit(ctx, config);
            ctx.tag_answer(&config, &answer)
        }));
    }
}

/// Nexus polls the coordination; the answer is tagged.
#[inline(never)]
fn nexus_coordinator_status(node: &mut Node, ctx: &mut NodeCtx, auth: &[u8]) {
    let Some(auth) = request_auth(auth) else {
        return;
    };
    if let Ok(query) = ctx.verify_request(&auth, &CoordinatorStatusQuery) {
        let status = node.coordinator_status(ctx, query);
        black_box(ctx.tag_answer(&query, &status));
        if let Some(status) = status {
            black_box((status.epoch, status.phase, status.acked.len()));
        }
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
