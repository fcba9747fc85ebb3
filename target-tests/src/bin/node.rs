//! One trust quorum node as a service processor task would hold it: a
//! `Node` and its `NodeCtx` in static memory, driven through every entry
//! point, the budget binary of the flash and static RAM figures.
//!
//! Every input (the persistent state read back from storage, the bytes from
//! peers and from Nexus) passes through `core::hint::black_box`, so the
//! optimiser cannot see what it holds and keeps every path a real input
//! could take. At run time the node boots as firmware should, with the
//! stack painted first so the boot path's peak stack is measured (the
//! `budget: stack, deepest boot path` line): the context is built straight
//! into static memory, storage holds nothing usable, so the state is
//! restored in place from the LRTQ ledger (sled 0 of the 7-sled LRTQ rack
//! the build script set up). The node then starts coordinating the LRTQ
//! upgrade: a real call with real output.
//!
//! Built with the `no-panic` feature it is also the link-time proof that
//! no panic path survives (see `tq_target_tests::exit`).
#![no_std]
#![no_main]

use core::hint::black_box;

use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tq_core::ids::{Epoch, PlatformId, RackId, Threshold};
use tq_core::messages::{LrtqUpgradeMsg, MemberSet};
use tq_core::node::{Node, NodeCtx};
use tq_core::wire;
use tq_target_tests::lrtq::{LEDGER_RACK_ID, LRTQ_RACK_7};
use tq_target_tests::stack;
use tq_target_tests::{fail, pass};

const RACK_ID: RackId = LEDGER_RACK_ID;

/// Stands in for bytes from storage, peers and Nexus: the optimiser only
/// sees it through `black_box`.
static INPUT: [u8; 64] = [0; 64];

#[cortex_m_rt::entry]
fn main() -> ! {
    let Ok(id) = PlatformId::new("913-0000019", "sled-0") else {
        fail("platform id");
    };
    let Ok(peer) = PlatformId::new("913-0000019", "sled-1") else {
        fail("platform id");
    };
    // Everything the boot path writes on the stack is below here.
    stack::paint_below_here();
    let (ctx, path) = boot(id);
    defmt::println!(
        "budget: stack, deepest boot path: {=usize} bytes ({=str})",
        stack::deepest_since_paint(),
        path
    );
    let Some(node) = cortex_m::singleton!(: Node = Node::new()) else {
        fail("node slot taken");
    };

    node.on_connect(ctx, &peer);
    let members = [
        ctx.id().clone(),
        peer.clone(),
        sled("sled-2"),
        sled("sled-3"),
    ];
    let (Ok(members), Ok(threshold)) = (MemberSet::new(&members), Threshold::new(3)) else {
        fail("upgrade request");
    };
    let upgrade = LrtqUpgradeMsg {
        rack_id: RACK_ID,
        epoch: Epoch(2),
        members,
        threshold,
    };
    if node
        .coordinate_upgrade_from_lrtq(ctx, black_box(&upgrade))
        .is_err()
    {
        fail("the LRTQ upgrade was refused");
    }
    persist_then_send(node, ctx);

    // Everything else a task passes in, from opaque bytes.
    let input = black_box(&INPUT[..]);
    node.handle_bytes(ctx, &peer, input);
    if let Ok(msg) = wire::decode_reconfigure_msg(input) {
        black_box(node.coordinate_reconfiguration(ctx, &msg)).ok();
    }
    if let Ok(msg) = wire::decode_lrtq_upgrade_msg(input) {
        black_box(node.coordinate_upgrade_from_lrtq(ctx, &msg)).ok();
    }
    let epoch = Epoch(black_box(3));
    black_box(node.commit_configuration(ctx, RACK_ID, epoch)).ok();
    let config = ctx
        .persistent_state()
        .get(epoch)
        .map(|stored| stored.config.clone());
    if let Some(config) = config {
        black_box(node.prepare_and_commit(ctx, &config)).ok();
    }
    if let Ok(Some(secret)) = node.load_rack_secret(ctx, epoch) {
        black_box(secret.expose_secret());
    }
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

/// What a task does after every call: store the state if it changed, then
/// send what was queued (here: encode it and hand it to `black_box`).
fn persist_then_send(node: &Node, ctx: &mut NodeCtx<ChaCha20Rng>) {
    if ctx.take_state_changed() {
        let mut storage = [0u8; wire::MAX_PERSISTENT_STATE_LEN];
        match wire::encode_persistent_state(ctx.persistent_state(), &mut storage) {
            Ok(bytes) => {
                black_box(bytes);
            }
            Err(_) => fail("persistent state does not encode"),
        }
    }
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
