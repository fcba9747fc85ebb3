//! Host-side set-up for the target binaries.
//!
//! 1. Puts `memory.x` (the emulated board's memory map) where cortex-m-rt's
//!    linker script finds it.
//! 2. Sets up the LRTQ racks the scenario starts from with the fixture
//!    every test crate shares (`tq_test_fixtures::lrtq_setup`: exactly as
//!    LRTQ rack setup did, one curve25519 scalar secret split with
//!    `vsss-rs` 3.3.4 into 255 shares, threshold `n/2 + 1` for `n` sleds).
//!    For each rack size it writes into `OUT_DIR`, for `include_bytes!`:
//!    - `lrtq-N.threshold`: one byte;
//!    - `lrtq-N.secret`: the secret's 32 bytes, as the old software used
//!      them (`Scalar::as_bytes`), which the upgraded rack must keep as its
//!      epoch-1 secret;
//!    - `lrtq-N.shares`: the shares of the `N` sleds (identifiers 1..=N),
//!      33 bytes each in vsss-rs's layout;
//!    - `lrtq-N.digests`: SHA3-256 of each of the 255 shares, 32 bytes each;
//!    - `lrtq-N.ledger`: what sled 0 keeps of its LRTQ ledger, as tq-core
//!      encodes LRTQ share data (`wire::encode_lrtq_share_data`), under the
//!      rack id in `lrtq.rack-id` (16 bytes): what a booting node restores
//!      in place when it has no state of its own.
//!
//! The RNG is seeded, so every build embeds the same racks and the binaries
//! (and their sizes) are reproducible.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use tq_core::ids::RackId;
use tq_core::wire;
use tq_test_fixtures::{LRTQ_TOTAL_SHARES, lrtq_setup, lrtq_share_data};

/// LRTQ sleds of the racks the scenario runs (each rack also has one spare
/// sled, which the scenario adds).
const LRTQ_RACK_SIZES: [usize; 2] = [4, 7];

/// The rack id the LRTQ ledgers name.
const LEDGER_RACK_ID: [u8; 16] = [0x5a; 16];

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    fs::write(out.join("lrtq.rack-id"), LEDGER_RACK_ID).expect("write rack id");
    for sleds in LRTQ_RACK_SIZES {
        write_lrtq_rack(&out, sleds);
    }
}

fn write_lrtq_rack(out: &Path, sleds: usize) {
    let setup = lrtq_setup(sleds, 0x4c52_5451_0000 + sleds as u64);
    assert_eq!(setup.shares.len(), LRTQ_TOTAL_SHARES);
    let held: Vec<u8> = setup.shares[..sleds].concat();
    let digests: Vec<u8> = setup.digests().concat();
    // Sled 0's share data, encoded by tq-core.
    let data = lrtq_share_data(&setup, RackId(LEDGER_RACK_ID), 0);
    let mut ledger = vec![0; wire::MAX_LRTQ_SHARE_DATA_LEN];
    let ledger = wire::encode_lrtq_share_data(&data, &mut ledger).expect("LRTQ share data encodes");

    let name = |ext: &str| out.join(format!("lrtq-{sleds}.{ext}"));
    fs::write(name("threshold"), [setup.threshold]).expect("write threshold");
    fs::write(name("secret"), setup.secret).expect("write secret");
    fs::write(name("shares"), held).expect("write shares");
    fs::write(name("ledger"), ledger).expect("write ledger");
    fs::write(name("digests"), digests).expect("write digests");
}
