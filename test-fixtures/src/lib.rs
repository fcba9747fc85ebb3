//! `tq-test-fixtures`: the set-up every test crate of the trust quorum
//! shares, as test helpers over `tq-rack-setup` (what the demo sets a rack
//! up with).
//!
//! - [`lrtq_setup`], [`lrtq_rack`], [`lrtq_share_data`]: an LRTQ rack as
//!   LRTQ rack setup left it ([`tq_rack_setup::lrtq`]: `vsss-rs` 3.3.4,
//!   from a seed, so every test and every build embeds the same rack),
//!   under the rack id [`RACK`].
//! - [`sled_id`]: sled `i`'s platform id, as the demo names it.
//! - [`authority_key`], [`request_key`]: Nexus's authority key of these
//!   racks (fixed, so every test signs alike) and each sled's request key
//!   derived from it.
//! - [`with_big_stack`]: a thread with room for a whole simulated rack.
//! - [`mod@bench`]: the benches' medians and their printing.
//! - `pki` (feature `pki`): a rack CA and sled certificates, as DER or PEM
//!   files.
//! - [`loopfs::LoopFs`]: a loop-mounted ext4 with fscrypt on (root only;
//!   otherwise a `SKIPPED` line).
//! - [`tools::available`]: whether an external program a test runs is
//!   here; without it the test skips loudly, or fails under CI.
//!
//! Test-only: it panics on any failure, as a test should. Nothing that
//! ships depends on it (`.ci/check-deps` checks).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test-only: a failed set-up fails the test that asked for it"
)]

pub mod bench;
pub mod loopfs;
#[cfg(feature = "pki")]
pub mod pki;
pub mod tools;

use tq_core::ids::{PlatformId, RackId};
pub use tq_rack_setup::lrtq::{LRTQ_SHARE_LEN, LRTQ_TOTAL_SHARES, LrtqSetup};

/// The rack id of the racks these fixtures make (as raw bytes).
pub const RACK_ID: [u8; 16] = [0x42; 16];

/// The rack id of the racks these fixtures make.
pub const RACK: RackId = RackId(RACK_ID);

/// Sled `index`'s platform id ([`tq_rack_setup::sled_id`]).
pub fn sled_id(index: usize) -> PlatformId {
    tq_rack_setup::sled_id(index).expect("a sled id")
}

/// Nexus's authority key of the fixtures' racks: fixed bytes, never a
/// real rack's.
pub fn authority_key() -> tq_core::authority::NexusAuthorityKey {
    tq_core::authority::NexusAuthorityKey::from_bytes([0xa7; 32])
}

/// Sled `id`'s request key for rack [`RACK`], from [`authority_key`].
pub fn request_key(id: &PlatformId) -> tq_core::authority::SledRequestKey {
    authority_key()
        .sled_key(RACK, id)
        .expect("a sled request key")
}

/// Sets up an LRTQ rack of `sleds` sleds from `seed`, exactly as the old
/// software did.
pub fn lrtq_setup(sleds: usize, seed: u64) -> LrtqSetup {
    tq_rack_setup::lrtq::lrtq_setup(sleds, seed).expect("an LRTQ rack")
}

/// Each of `sleds` sleds' LRTQ share data (rack [`RACK`]) and the LRTQ
/// secret as the new protocol sees it, for the rack [`lrtq_setup`] makes
/// from `seed`.
pub fn lrtq_rack(
    sleds: usize,
    seed: u64,
) -> (
    Vec<tq_core::persistent::LrtqShareData>,
    tq_core::crypto::RackSecret,
) {
    let setup = lrtq_setup(sleds, seed);
    let data = setup.rack(RACK, sleds).expect("LRTQ share data");
    (data, setup.rack_secret().expect("nonzero secret"))
}

/// [`lrtq_rack`] for a test rack whose first `lrtq` sleds come from an
/// LRTQ rack: nothing (no data, no secret) when `lrtq` is 0.
pub fn lrtq_rack_or_fresh(
    lrtq: usize,
    seed: u64,
) -> (
    Vec<tq_core::persistent::LrtqShareData>,
    Option<tq_core::crypto::RackSecret>,
) {
    if lrtq == 0 {
        return (Vec::new(), None);
    }
    let (data, secret) = lrtq_rack(lrtq, seed);
    (data, Some(secret))
}

/// Sled `sled`'s LRTQ share data of `setup`, under `rack_id`.
pub fn lrtq_share_data(
    setup: &LrtqSetup,
    rack_id: RackId,
    sled: usize,
) -> tq_core::persistent::LrtqShareData {
    let digests = setup.share_digests().expect("share digests");
    setup
        .share_data(rack_id, sled, &digests)
        .expect("LRTQ share data")
}

/// Runs `f` on a thread with a stack large enough for a whole simulated
/// rack (`tq_harness::Cluster` keeps every sled inline, and debug builds
/// copy it around), and returns its result; a panic in `f` is the
/// caller's.
pub fn with_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .expect("spawn a thread")
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}
