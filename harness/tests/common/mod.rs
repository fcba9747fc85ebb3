//! Shared set-up for the harness's integration tests.
#![allow(dead_code)]

use rand08::SeedableRng;
use rand08::rngs::StdRng;
use tq_core::crypto::{LrtqShare, RackSecret};
use tq_core::ids::RackId;
use tq_core::limits::{LRTQ_SHARE_LEN, LRTQ_TOTAL_SHARES};
use tq_core::persistent::LrtqShareData;
use vsss_rs::curve25519::WrappedScalar;
use vsss_rs::curve25519_dalek::Scalar as LrtqScalar;

pub const RACK: RackId = RackId([0x42; 16]);

/// Runs `f` on a thread with a stack large enough for a `Cluster` (it keeps
/// every sled inline, and debug builds copy it around).
pub fn with_big_stack<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    std::thread::Builder::new()
        .stack_size(256 << 20)
        .spawn(f)
        .unwrap()
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
}

/// What LRTQ rack setup leaves behind for `sleds` sleds: each sled's share
/// data (its own share of 255, threshold n/2+1, every digest) and the
/// secret as the new protocol sees it.
pub fn lrtq_rack(sleds: usize, seed: u64) -> (Vec<LrtqShareData>, RackSecret) {
    let mut rng = StdRng::seed_from_u64(seed);
    let threshold = sleds / 2 + 1;
    let secret = LrtqScalar::random(&mut rng);
    let shares = vsss_rs::shamir::split_secret::<WrappedScalar, u8, Vec<u8>>(
        threshold,
        LRTQ_TOTAL_SHARES,
        secret.into(),
        &mut rng,
    )
    .unwrap();
    let shares: Vec<LrtqShare> = shares
        .iter()
        .map(|s| {
            let bytes: [u8; LRTQ_SHARE_LEN] = s.as_slice().try_into().unwrap();
            LrtqShare::from_bytes(&bytes).unwrap()
        })
        .collect();
    let digests: heapless::Vec<_, LRTQ_TOTAL_SHARES, u8> =
        shares.iter().map(LrtqShare::digest).collect();
    let data = (0..sleds)
        .map(|i| LrtqShareData {
            rack_id: RACK,
            threshold: tq_core::ids::LrtqThreshold::new(u8::try_from(threshold).unwrap()).unwrap(),
            share: shares[i].clone(),
            share_digests: digests.clone(),
        })
        .collect();
    (data, RackSecret::from_bytes(secret.as_bytes()).unwrap())
}
