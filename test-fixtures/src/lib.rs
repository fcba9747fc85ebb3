//! `tq-test-fixtures`: the set-up every test crate of the trust quorum
//! shares, written once.
//!
//! - [`lrtq_setup`]: an LRTQ rack as LRTQ rack setup left it, split with
//!   the very crate and version LRTQ used (`vsss-rs` 3.3.4: one curve25519
//!   scalar secret, 255 shares, threshold `n/2 + 1`), from a seed, so every
//!   test and every build embeds the same rack. Raw bytes, without tq-core,
//!   so tq-core's own unit tests can use it too.
//! - [`lrtq_rack`] (feature `core`, on by default): the same rack as each
//!   sled's `LrtqShareData` and the secret as the new protocol sees it.
//! - [`with_big_stack`]: a thread with room for a whole simulated rack.
//! - `pki` (feature `pki`): a rack CA and sled certificates (rcgen), as
//!   DER or PEM files.
//! - [`tools::available`]: whether an external program a test runs is
//!   here; without it the test skips loudly, or fails under CI.
//!
//! Test-only: it panics on any failure, as a test should.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test-only: a failed set-up fails the test that asked for it"
)]

#[cfg(feature = "pki")]
pub mod pki;
pub mod tools;

use rand::SeedableRng;
use rand::rngs::StdRng;
use sha3::{Digest, Sha3_256};
use vsss_rs::curve25519::WrappedScalar;
use vsss_rs::curve25519_dalek::Scalar;

/// Shares LRTQ rack setup made, spares for later sleds included.
pub const LRTQ_TOTAL_SHARES: usize = 255;

/// Bytes of one LRTQ share in `vsss-rs`'s layout: the identifier, then the
/// scalar.
pub const LRTQ_SHARE_LEN: usize = 33;

/// The rack id of the racks these fixtures make (as raw bytes).
pub const RACK_ID: [u8; 16] = [0x42; 16];

/// The rack id of the racks these fixtures make.
#[cfg(feature = "core")]
pub const RACK: tq_core::ids::RackId = tq_core::ids::RackId(RACK_ID);

/// What LRTQ rack setup left behind.
#[derive(Clone, Debug)]
pub struct LrtqSetup {
    /// `K`: `sleds / 2 + 1`.
    pub threshold: u8,
    /// The secret's bytes as the old software used them
    /// (`Scalar::as_bytes`): the upgraded rack's epoch-1 secret.
    pub secret: [u8; 32],
    /// All 255 shares; share `i` has identifier `i + 1` and is held by
    /// sled `i` (the ones past the rack's sleds are spares).
    pub shares: Vec<[u8; LRTQ_SHARE_LEN]>,
}

impl LrtqSetup {
    /// SHA3-256 of every share, in share order: what each ledger lists.
    pub fn digests(&self) -> Vec<[u8; 32]> {
        self.shares
            .iter()
            .map(|share| Sha3_256::digest(share).into())
            .collect()
    }
}

/// Sets up an LRTQ rack of `sleds` sleds from `seed` (`StdRng`), exactly
/// as the old software did.
pub fn lrtq_setup(sleds: usize, seed: u64) -> LrtqSetup {
    let mut rng = StdRng::seed_from_u64(seed);
    let threshold = sleds / 2 + 1;
    let secret = Scalar::random(&mut rng);
    let shares = vsss_rs::shamir::split_secret::<WrappedScalar, u8, Vec<u8>>(
        threshold,
        LRTQ_TOTAL_SHARES,
        secret.into(),
        &mut rng,
    )
    .expect("vsss-rs splits the LRTQ secret");
    LrtqSetup {
        threshold: u8::try_from(threshold).expect("a rack has at most 32 sleds"),
        secret: *secret.as_bytes(),
        shares: shares
            .iter()
            .map(|share| share.as_slice().try_into().expect("vsss-rs share layout"))
            .collect(),
    }
}

/// Each of `sleds` sleds' LRTQ share data (rack [`RACK`]) and the LRTQ
/// secret as the new protocol sees it, for the rack [`lrtq_setup`] makes
/// from `seed`.
#[cfg(feature = "core")]
pub fn lrtq_rack(
    sleds: usize,
    seed: u64,
) -> (
    Vec<tq_core::persistent::LrtqShareData>,
    tq_core::crypto::RackSecret,
) {
    let setup = lrtq_setup(sleds, seed);
    // The digests of all 255 shares are the same for every sled: hash them
    // once (a rack of 32 would hash 8,160 shares, slowly in debug builds).
    let digests = share_digests(&setup);
    let data = (0..sleds)
        .map(|sled| share_data_with(&setup, RACK, sled, &digests))
        .collect();
    let secret = tq_core::crypto::RackSecret::from_bytes(&setup.secret).expect("nonzero secret");
    (data, secret)
}

/// Sled `sled`'s LRTQ share data of `setup`, under `rack_id`.
#[cfg(feature = "core")]
pub fn lrtq_share_data(
    setup: &LrtqSetup,
    rack_id: tq_core::ids::RackId,
    sled: usize,
) -> tq_core::persistent::LrtqShareData {
    share_data_with(setup, rack_id, sled, &share_digests(setup))
}

/// The digests an LRTQ ledger lists, as the core holds them.
#[cfg(feature = "core")]
type Digests = heapless::Vec<tq_core::crypto::ShareDigest, LRTQ_TOTAL_SHARES, u8>;

/// The digest of every share of `setup`, as the core computes it.
#[cfg(feature = "core")]
fn share_digests(setup: &LrtqSetup) -> Digests {
    setup
        .shares
        .iter()
        .map(|s| lrtq_share(s).digest())
        .collect()
}

/// [`lrtq_share_data`] with the digests already computed.
#[cfg(feature = "core")]
fn share_data_with(
    setup: &LrtqSetup,
    rack_id: tq_core::ids::RackId,
    sled: usize,
    digests: &Digests,
) -> tq_core::persistent::LrtqShareData {
    tq_core::persistent::LrtqShareData {
        rack_id,
        threshold: tq_core::ids::LrtqThreshold::new(setup.threshold)
            .expect("n/2 + 1 is an LRTQ threshold"),
        share: lrtq_share(&setup.shares[sled]),
        share_digests: digests.clone(),
    }
}

#[cfg(feature = "core")]
fn lrtq_share(bytes: &[u8; LRTQ_SHARE_LEN]) -> tq_core::crypto::LrtqShare {
    tq_core::crypto::LrtqShare::from_bytes(bytes).expect("tq-core takes the vsss-rs share")
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shares_rebuild_the_secret_with_vsss_rs() {
        for sleds in [3, 4, 8] {
            let setup = lrtq_setup(sleds, 1);
            assert_eq!(setup.shares.len(), LRTQ_TOTAL_SHARES);
            assert_eq!(usize::from(setup.threshold), sleds / 2 + 1);
            for (i, share) in setup.shares.iter().enumerate() {
                assert_eq!(usize::from(share[0]), i + 1);
            }
            let k = usize::from(setup.threshold);
            let subset: Vec<Vec<u8>> = setup.shares[sleds..sleds + k]
                .iter()
                .map(|s| s.to_vec())
                .collect();
            let rebuilt: WrappedScalar = vsss_rs::combine_shares(&subset).unwrap();
            assert_eq!(rebuilt.0.to_bytes(), setup.secret);
        }
        // The same seed, the same rack.
        assert_eq!(lrtq_setup(4, 9).shares, lrtq_setup(4, 9).shares);
    }

    #[cfg(feature = "core")]
    #[test]
    fn the_share_data_lists_the_digests_sha3_gives() {
        let setup = lrtq_setup(4, 2);
        let data = lrtq_share_data(&setup, RACK, 3);
        let raw: Vec<[u8; 32]> = data.share_digests.iter().map(|d| d.0).collect();
        assert_eq!(raw, setup.digests());
        let (racks, secret) = lrtq_rack(4, 2);
        assert_eq!(racks.len(), 4);
        assert_eq!(secret.expose_secret(), &setup.secret);
        assert_eq!(
            tq_core::crypto::combine_lrtq(&[
                racks[0].share.clone(),
                racks[1].share.clone(),
                racks[2].share.clone(),
            ])
            .unwrap()
            .expose_secret(),
            &setup.secret
        );
    }
}
