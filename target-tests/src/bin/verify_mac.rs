//! What checking one Nexus request costs on the Cortex-M7 with the
//! per-sled MAC the core uses: HMAC-SHA3-256 (`hmac` over `sha3`, the
//! crates the core's HKDF already links) of a 2 KiB request, the largest
//! `ReconfigureMsg` rounded up, checked against a tag Python's `hmac` and
//! `hashlib` computed. Its twin `verify_ed25519` checks an Ed25519
//! signature instead; `verify_baseline` is the same binary with no
//! verifier, so each one's flash less the baseline's is what its verifier
//! adds to a binary that has neither hash yet (the node binary already
//! links SHA3-256, so there the MAC adds only HMAC's few hundred bytes).
//!
//! Prints `icount: HMAC-SHA3-256 verify (2048 B): N instructions`.
#![no_std]
#![no_main]

use core::hint::black_box;

use hex_literal::hex;
use hmac::{KeyInit, Mac, SimpleHmac};
use sha3::Sha3_256;
use tq_target_tests::icount;
use tq_target_tests::{fail, pass};

/// Key: bytes 0, 1, ..., 31. Message: 2048 bytes, byte `i` is `i % 251`.
/// Tag from `hmac.new(key, msg, hashlib.sha3_256)` (Python 3).
const TAG: [u8; 32] = hex!("a0f2f17f50fb1b35fd8481f1d72038e3e3c6c7d1a9b872512eb15fa22b24962e");

#[cortex_m_rt::entry]
fn main() -> ! {
    if icount::start().is_err() {
        fail("the timer does not count instructions (QEMU without -icount shift=0?)");
    }
    let mut key = [0u8; 32];
    for (i, b) in key.iter_mut().enumerate() {
        *b = i as u8;
    }
    let mut msg = [0u8; 2048];
    for (i, b) in msg.iter_mut().enumerate() {
        *b = (i % 251) as u8;
    }
    let (ok, instructions) = icount::count(|| verify(black_box(&key), black_box(&msg), &TAG));
    if !ok {
        fail("HMAC-SHA3-256 tag does not verify");
    }
    defmt::println!(
        "icount: HMAC-SHA3-256 verify (2048 B): {=u64} instructions",
        instructions
    );
    pass()
}

#[inline(never)]
fn verify(key: &[u8; 32], msg: &[u8], tag: &[u8; 32]) -> bool {
    let Ok(mut mac) = <SimpleHmac<Sha3_256> as KeyInit>::new_from_slice(key) else {
        return false;
    };
    mac.update(msg);
    mac.verify_slice(tag).is_ok()
}
