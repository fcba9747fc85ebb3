//! Host-side set-up for the target binaries.
//!
//! 1. Puts `memory.x` (the emulated board's memory map) where cortex-m-rt's
//!    linker script finds it.
//! 2. Sets up the LRTQ racks the scenario starts from, exactly as LRTQ rack
//!    setup did: one curve25519 scalar secret split with `vsss-rs` 3.3.4
//!    into 255 shares, threshold `n/2 + 1` for `n` sleds. For each rack size
//!    it writes into `OUT_DIR`, for `include_bytes!`:
//!    - `lrtq-N.threshold`: one byte;
//!    - `lrtq-N.secret`: the secret's 32 bytes, as the old software used
//!      them (`Scalar::as_bytes`), which the upgraded rack must keep as its
//!      epoch-1 secret;
//!    - `lrtq-N.shares`: the shares of the `N` sleds (identifiers 1..=N),
//!      33 bytes each in vsss-rs's layout;
//!    - `lrtq-N.digests`: SHA3-256 of each of the 255 shares, 32 bytes each.
//!
//! The RNG is seeded, so every build embeds the same racks and the binaries
//! (and their sizes) are reproducible.

use std::env;
use std::fs;
use std::path::{Path, PathBuf};

use rand::SeedableRng;
use rand::rngs::StdRng;
use sha3::{Digest, Sha3_256};
use vsss_rs::curve25519::WrappedScalar;
use vsss_rs::curve25519_dalek::Scalar;

/// LRTQ sleds of the racks the scenario runs (each rack also has one spare
/// sled, which the scenario adds).
const LRTQ_RACK_SIZES: [usize; 2] = [4, 7];

/// Shares LRTQ rack setup made, spares for later sleds included.
const LRTQ_TOTAL_SHARES: usize = 255;

fn main() {
    let out = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    fs::copy("memory.x", out.join("memory.x")).expect("copy memory.x");
    println!("cargo:rustc-link-search={}", out.display());
    println!("cargo:rerun-if-changed=memory.x");
    println!("cargo:rerun-if-changed=build.rs");
    for sleds in LRTQ_RACK_SIZES {
        write_lrtq_rack(&out, sleds);
    }
}

fn write_lrtq_rack(out: &Path, sleds: usize) {
    let threshold = sleds / 2 + 1;
    let mut rng = StdRng::seed_from_u64(0x4c52_5451_0000 + sleds as u64);
    let secret = Scalar::random(&mut rng);
    let shares = vsss_rs::shamir::split_secret::<WrappedScalar, u8, Vec<u8>>(
        threshold,
        LRTQ_TOTAL_SHARES,
        secret.into(),
        &mut rng,
    )
    .expect("vsss-rs splits the LRTQ secret");
    assert_eq!(shares.len(), LRTQ_TOTAL_SHARES);

    // The set-up is only useful if the shares rebuild the secret.
    let rebuilt: WrappedScalar =
        vsss_rs::combine_shares(&shares[..threshold]).expect("vsss-rs combines");
    assert_eq!(rebuilt.0, secret, "LRTQ shares do not rebuild the secret");

    let mut held = Vec::new();
    for share in &shares[..sleds] {
        assert_eq!(share.len(), 33, "vsss-rs share layout changed");
        held.extend_from_slice(share);
    }
    let mut digests = Vec::new();
    for share in &shares {
        digests.extend_from_slice(&Sha3_256::digest(share));
    }

    let name = |ext: &str| out.join(format!("lrtq-{sleds}.{ext}"));
    let threshold = u8::try_from(threshold).expect("small threshold");
    fs::write(name("threshold"), [threshold]).expect("write threshold");
    fs::write(name("secret"), secret.as_bytes()).expect("write secret");
    fs::write(name("shares"), held).expect("write shares");
    fs::write(name("digests"), digests).expect("write digests");
}
