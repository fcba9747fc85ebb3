//! What checking one Nexus request would cost on the Cortex-M7 with an
//! Ed25519 signature (`ed25519-dalek` without its precomputed tables, as
//! flash demands): `verify_strict` of RFC 8032's test 3 (a two-byte
//! message; the signature covers a SHA-512 of the message, so a 2 KiB
//! request adds about 16 SHA-512 blocks to this). The twin of `verify_mac`;
//! see it for the flash comparison.
//!
//! Prints `icount: Ed25519 verify_strict (RFC 8032 test 3): N instructions`.
#![no_std]
#![no_main]

use core::hint::black_box;

use ed25519_dalek::{Signature, VerifyingKey};
use hex_literal::hex;
use tq_target_tests::icount;
use tq_target_tests::{fail, pass};

/// RFC 8032 section 7.1, TEST 3.
const PUBLIC_KEY: [u8; 32] =
    hex!("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025");
const MESSAGE: [u8; 2] = hex!("af82");
const SIGNATURE: [u8; 64] = hex!(
    "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
    "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"
);

#[cortex_m_rt::entry]
fn main() -> ! {
    if icount::start().is_err() {
        fail("the timer does not count instructions (QEMU without -icount shift=0?)");
    }
    let (ok, instructions) = icount::count(|| {
        verify(
            black_box(&PUBLIC_KEY),
            black_box(&MESSAGE),
            black_box(&SIGNATURE),
        )
    });
    if !ok {
        fail("the RFC 8032 signature does not verify");
    }
    defmt::println!(
        "icount: Ed25519 verify_strict (RFC 8032 test 3): {=u64} instructions",
        instructions
    );
    pass()
}

#[inline(never)]
fn verify(key: &[u8; 32], msg: &[u8], signature: &[u8; 64]) -> bool {
    let Ok(key) = VerifyingKey::from_bytes(key) else {
        return false;
    };
    key.verify_strict(msg, &Signature::from_bytes(signature))
        .is_ok()
}
