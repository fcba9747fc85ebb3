//! An LRTQ rack as LRTQ rack setup left it: one curve25519 scalar secret
//! split by `vsss-rs` 3.3.4 (the crate and version LRTQ used) into 255
//! shares with threshold `n/2 + 1`, from a seed. Each sled's share file is
//! the core's encoding of its `LrtqShareData`.
//!
//! (A shared fixture crate for every test crate is on its way; this one
//! moves there when it lands.)

use rand08::SeedableRng;
use rand08::rngs::StdRng;
use tq_core::crypto::{LrtqShare, RackSecret};
use tq_core::ids::RackId;
use tq_core::limits::LRTQ_TOTAL_SHARES;
use tq_core::persistent::LrtqShareData;
use tq_core::wire::{self, MAX_LRTQ_SHARE_DATA_LEN};
use vsss_rs::curve25519::WrappedScalar;
use vsss_rs::curve25519_dalek::Scalar;

/// What rack setup left: each share file's bytes (one per sled, spares
/// past `sleds`) and the secret as the new protocol sees it.
pub struct LrtqRack {
    pub threshold: u8,
    pub secret: RackSecret,
    pub share_files: Vec<Vec<u8>>,
}

pub fn lrtq_rack(rack_id: RackId, sleds: usize, seed: u64) -> LrtqRack {
    let mut rng = StdRng::seed_from_u64(seed);
    let threshold = sleds / 2 + 1;
    let secret = Scalar::random(&mut rng);
    let shares = vsss_rs::shamir::split_secret::<WrappedScalar, u8, Vec<u8>>(
        threshold,
        LRTQ_TOTAL_SHARES,
        secret.into(),
        &mut rng,
    )
    .unwrap();
    let shares: Vec<LrtqShare> = shares
        .iter()
        .map(|s| LrtqShare::from_bytes(s.as_slice().try_into().unwrap()).unwrap())
        .collect();
    let share_files = (0..sleds)
        .map(|sled| {
            let data = LrtqShareData {
                rack_id,
                threshold: threshold as u8,
                share: shares[sled].clone(),
                share_digests: shares.iter().map(LrtqShare::digest).collect(),
            };
            let mut buf = vec![0; MAX_LRTQ_SHARE_DATA_LEN];
            wire::encode_lrtq_share_data(&data, &mut buf)
                .unwrap()
                .to_vec()
        })
        .collect();
    LrtqRack {
        threshold: threshold as u8,
        secret: RackSecret::from_bytes(secret.as_bytes()).unwrap(),
        share_files,
    }
}
