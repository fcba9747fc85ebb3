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
//! - the state goes to storage a 256-byte page at a time
//!   (`wire::encode_persistent_state_chunked`), not through a buffer of
//!   `wire::MAX_PERSISTENT_STATE_LEN` (about 20 KiB);
//! - Nexus's requests are decoded in place, each input handled in its own
//!   out-of-line step so their frames never stack up in `main`'s;
//! - the configuration handed to `prepare_and_commit` lives in a static
//!   slot.
//!
//! Built with the `no-panic` feature it is also the link-time proof that
//! no panic path survives (see `tq_target_tests::exit`).
#![no_std]
#![no_main]

use core::hint::black_box;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_core::config::Configuration;
use tq_core::ids::{Epoch, PlatformId, RackId, Threshold};
use tq_core::messages::{LrtqUpgradeMsg, MemberSet, ReconfigureMsg};
use tq_core::node::{Node, NodeCtx};
use tq_core::wire;
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

    node.on_connect(ctx, &peer);
    let request = nexus_upgrade_request(ctx.id(), &peer);
    if !nexus_lrtq_upgrade(node, ctx, request) {
        fail("the LRTQ upgrade was refused");
    }
    persist_then_send(node, ctx);

    // Everything else a task passes in, from opaque bytes.
    let input = black_box(&INPUT[..]);
    deliver(node, ctx, &peer, input);
    persist_then_send(node, ctx);
    nexus_reconfigure(node, ctx, input);
    black_box(nexus_lrtq_upgrade(node, ctx, input));
    persist_then_send(node, ctx);
    let epoch = Epoch(black_box(3));
    black_box(node.commit_configuration(ctx, RACK_ID, epoch)).ok();
    nexus_prepare_and_commit(node, ctx, epoch);
    persist_then_send(node, ctx);
    load_secret(node, ctx, epoch);
    if let Some(status) = node.coordinator_status(ctx) {
        black_box((status.epoch, status.phase, status.acked.len()));
    }
    node.clear_secrets();
    node.on_disconnect(ctx, &peer);
    persist_then_send(node, ctx);
    black_box((ctx.alarms().len(), ctx.counters().total()));

    let coordinating = node.coordinating() == Some(Epoch(2));
    defmt::println!(
        "node: coordinating the LRTQ upgrade: {=bool}; size_of Node {=usize}, NodeCtx {=usize}",
        coordinating,
        core::mem::size_of::<Node>(),
        core::mem::size_of::<NodeCtx<ChaCha20Rng>>()
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
/// Boots as firmware should, nothing big ever on the stack: the context
/// built straight into its static, its state restored in place from
/// storage, else from the LRTQ ledger in place. Returns the context and
/// which of the two filled it. Out of line, so that all of its frame is
/// below `main`'s painted stack.
#[inline(never)]
fn boot(id: PlatformId) -> (&'static mut NodeCtx<ChaCha20Rng>, &'static str) {
    let rng = ChaCha20Rng::from_seed(black_box([7; 32]));
    let (ctx, measured) =
        stack::measure(|| cortex_m::singleton!(: NodeCtx<ChaCha20Rng> = NodeCtx::new(id, rng)));
    defmt::println!("stack: boot: NodeCtx::new into its static: {}", measured);
    let Some(ctx) = ctx else {
        fail("context slot taken");
    };
    // Storage: here it holds no state (a sled upgrading from LRTQ).
    let (restored, measured) = stack::measure(|| ctx.restore_state(black_box(&INPUT[..])));
    defmt::println!("stack: boot: NodeCtx::restore_state: {}", measured);
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
/// the task receives. Out of line, so building the request is not in
/// `main`'s frame.
#[inline(never)]
fn nexus_upgrade_request(id: &PlatformId, peer: &PlatformId) -> &'static [u8] {
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
    match wire::encode_lrtq_upgrade_msg(&upgrade, buf) {
        Ok(bytes) => black_box(bytes),
        Err(_) => fail("upgrade request does not encode"),
    }
}

/// Bytes from a peer. Out of line: the node decodes the message (about
/// 4 KiB with a configuration) in this call's frame, which must not become
/// part of `main`'s.
#[inline(never)]
fn deliver(node: &mut Node, ctx: &mut NodeCtx<ChaCha20Rng>, from: &PlatformId, bytes: &[u8]) {
    node.handle_bytes(ctx, from, bytes);
}

/// A reconfiguration request from Nexus, decoded in place.
#[inline(never)]
fn nexus_reconfigure(node: &mut Node, ctx: &mut NodeCtx<ChaCha20Rng>, bytes: &[u8]) {
    let mut msg = ReconfigureMsg::unfilled();
    if wire::decode_reconfigure_msg_into(bytes, &mut msg).is_ok() {
        black_box(node.coordinate_reconfiguration(ctx, &msg)).ok();
    }
}

/// An LRTQ upgrade request from Nexus, decoded in place; whether the node
/// took it.
#[inline(never)]
fn nexus_lrtq_upgrade(node: &mut Node, ctx: &mut NodeCtx<ChaCha20Rng>, bytes: &[u8]) -> bool {
    let mut msg = LrtqUpgradeMsg::unfilled();
    wire::decode_lrtq_upgrade_msg_into(bytes, &mut msg).is_ok()
        && black_box(node.coordinate_upgrade_from_lrtq(ctx, &msg)).is_ok()
}

/// Nexus hands the node the committed configuration of `epoch` (here: the
/// one the node stored, if any). It goes into a static slot, as a task
/// would keep it: a configuration is about 4 KiB.
#[inline(never)]
fn nexus_prepare_and_commit(node: &mut Node, ctx: &mut NodeCtx<ChaCha20Rng>, epoch: Epoch) {
    let Some(config) = config_slot(ctx, epoch) else {
        return;
    };
    black_box(node.prepare_and_commit(ctx, config)).ok();
}

/// Copies the stored configuration of `epoch` into its static slot. Out of
/// line: `singleton!` builds the value in a local before moving it into
/// the static, and that 4 KiB frame must be gone before the node's call.
#[inline(never)]
fn config_slot(ctx: &NodeCtx<ChaCha20Rng>, epoch: Epoch) -> Option<&'static mut Configuration> {
    let stored = ctx.persistent_state().get(epoch)?;
    let Some(slot) = cortex_m::singleton!(: Configuration = stored.config.clone()) else {
        fail("configuration slot taken");
    };
    Some(slot)
}

/// Nexus asks for the rack secret of `epoch`.
#[inline(never)]
fn load_secret(node: &mut Node, ctx: &mut NodeCtx<ChaCha20Rng>, epoch: Epoch) {
    if let Ok(Some(secret)) = node.load_rack_secret(ctx, epoch) {
        black_box(secret.expose_secret());
    }
}

/// What a task does after every call: store the state if it changed, then
/// send what was queued.
fn persist_then_send(node: &Node, ctx: &mut NodeCtx<ChaCha20Rng>) {
    if ctx.take_state_changed() {
        persist(ctx);
    }
    send_queued(node, ctx);
}

/// Writes the state to storage a page at a time (here: each page handed
/// to `black_box`, as to a flash driver).
#[inline(never)]
fn persist(ctx: &NodeCtx<ChaCha20Rng>) {
    let mut page = [0u8; STORAGE_PAGE_LEN];
    let written =
        wire::encode_persistent_state_chunked(ctx.persistent_state(), &mut page, |bytes| {
            black_box(bytes);
            Ok::<(), ()>(())
        });
    if written.is_err() {
        fail("persistent state does not encode");
    }
}

/// Encodes each queued message and hands it over (here: to `black_box`).
#[inline(never)]
fn send_queued(node: &Node, ctx: &mut NodeCtx<ChaCha20Rng>) {
    let mut buf = [0u8; wire::MAX_PEER_MSG_LEN];
    while let Some((to, msg)) = node.next_message(ctx) {
        match wire::encode_peer_msg(&msg, &mut buf) {
            Ok(bytes) => {
                black_box((&to, bytes));
            }
            Err(_) => fail("message does not encode"),
        }
    }
}
