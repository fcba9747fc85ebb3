//! The hand-written wire vectors (`core/tests/vectors/wire.txt`) on the
//! service processor's CPU: each decoder of `tq_core::wire` (the state and
//! Nexus's requests in place, into statics, as a node's task decodes them)
//! on every vector, with the outcome printed as `vector LINE DECODER
//! OUTCOME`, and the deepest stack each decoder took. The
//! host runs the same file (`tq-core`'s `wire::vector_tests`); the run
//! exits non-zero if any outcome differs from the file's, and CI checks
//! from the log that every vector ran (`tools/vectors.py`).
//!
//! The 32-bit reader is the point: postcard reads a length varint of at
//! most 5 bytes here and 10 on the host, and the canonical rule must make
//! both refuse the same bytes with the same error.
#![no_std]
#![no_main]

#[path = "../../../core/tests/vectors/format.rs"]
mod format;

use core::hint::black_box;

use format::{Decoder, Outcome};
use tq_core::api::{LrtqUpgradeMsg, ReconfigureMsg};
use tq_core::persistent::PersistentState;
use tq_core::wire::{self, DecodeSlot, WireError};
use tq_target_tests::stack;
use tq_target_tests::{fail, pass};

const VECTORS: &str = include_str!("../../../core/tests/vectors/wire.txt");

/// Longest vector, in bytes.
const MAX_VECTOR_LEN: usize = 1024;

/// Where decoded values go: statics, as in the node's task.
struct Slots {
    state: &'static mut PersistentState,
    reconfigure: &'static mut DecodeSlot<ReconfigureMsg>,
    upgrade: &'static mut DecodeSlot<LrtqUpgradeMsg>,
}

/// Decodes `bytes` with the decoder of `decoder`. Each decoder runs in its
/// own frame, so each one's stack is its own.
fn decode_as(decoder: Decoder, bytes: &[u8], slots: &mut Slots) -> Result<(), WireError> {
    match decoder {
        Decoder::Peer => peer(bytes),
        Decoder::State => state(bytes, slots.state),
        Decoder::Reconfigure => reconfigure(bytes, slots.reconfigure),
        Decoder::Upgrade => upgrade(bytes, slots.upgrade),
        Decoder::Lrtq => lrtq(bytes),
    }
}

/// A peer message, by value, as the node decodes one it is handed.
#[inline(never)]
fn peer(bytes: &[u8]) -> Result<(), WireError> {
    wire::decode_peer_msg(bytes).map(drop)
}

#[inline(never)]
fn state(bytes: &[u8], slot: &mut PersistentState) -> Result<(), WireError> {
    wire::decode_persistent_state_into(bytes, slot)
}

#[inline(never)]
fn reconfigure(bytes: &[u8], slot: &mut DecodeSlot<ReconfigureMsg>) -> Result<(), WireError> {
    wire::decode_reconfigure_msg_into(bytes, slot).map(drop)
}

#[inline(never)]
fn upgrade(bytes: &[u8], slot: &mut DecodeSlot<LrtqUpgradeMsg>) -> Result<(), WireError> {
    wire::decode_lrtq_upgrade_msg_into(bytes, slot).map(drop)
}

/// LRTQ share data, by value (about 8 KiB; a booting node decodes it in
/// place instead, with `NodeCtx::restore_lrtq`).
#[inline(never)]
fn lrtq(bytes: &[u8]) -> Result<(), WireError> {
    wire::decode_lrtq_share_data(bytes).map(drop)
}

#[cortex_m_rt::entry]
fn main() -> ! {
    let (Some(state), Some(reconfigure), Some(upgrade)) = (
        cortex_m::singleton!(: PersistentState = PersistentState::new()),
        cortex_m::singleton!(: DecodeSlot<ReconfigureMsg> = DecodeSlot::new()),
        cortex_m::singleton!(: DecodeSlot<LrtqUpgradeMsg> = DecodeSlot::new()),
    ) else {
        fail("slots taken");
    };
    let mut slots = Slots {
        state,
        reconfigure,
        upgrade,
    };
    let mut buf = [0u8; MAX_VECTOR_LEN];
    let (mut run, mut by_rule, mut wrong) = (0usize, 0usize, 0usize);
    // Deepest stack per decoder, in `Decoder` order.
    let mut deepest = [0usize; Decoder::ALL.len()];
    for vector in format::vectors(VECTORS) {
        let Ok(vector) = vector else {
            fail("wire.txt has a line that is not a vector");
        };
        let Ok(bytes) = vector.bytes_into(&mut buf) else {
            fail("a vector's bytes do not parse or fit");
        };
        let bytes = black_box(bytes);
        let (result, measured) = stack::measure(|| decode_as(vector.decoder, bytes, &mut slots));
        let got = Outcome::of(&result);
        print(vector.line, vector.decoder, got);
        if let Some(slot) = deepest.get_mut(vector.decoder as usize) {
            *slot = (*slot).max(measured.bytes);
        }
        run += 1;
        by_rule += usize::from(vector.canonical_rule);
        if got != vector.expected {
            wrong += 1;
            defmt::error!(
                "line {=usize}: expected {=str}, got {=str}",
                vector.line,
                vector.expected.name(),
                got.name()
            );
        }
    }
    for decoder in Decoder::ALL {
        defmt::println!(
            "stack: {=str} vectors: {=usize} bytes at most",
            decoder.name(),
            deepest.get(decoder as usize).copied().unwrap_or(0)
        );
    }
    defmt::println!(
        "vectors: {=usize} run ({=usize} that a 64-bit postcard alone reads), {=usize} wrong",
        run,
        by_rule,
        wrong
    );
    if wrong == 0 {
        pass()
    } else {
        fail("a vector's outcome differs from wire.txt")
    }
}

/// One vector's outcome, in the line format `tools/vectors.py` reads.
fn print(line: usize, decoder: Decoder, outcome: Outcome) {
    match outcome {
        Outcome::Version(version) => defmt::println!(
            "vector {=usize} {=str} version:{=u8}",
            line,
            decoder.name(),
            version
        ),
        _ => defmt::println!(
            "vector {=usize} {=str} {=str}",
            line,
            decoder.name(),
            outcome.name()
        ),
    }
}
