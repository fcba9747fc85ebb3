//! LRTQ interoperability: secrets split exactly as LRTQ rack setup split
//! them (`vsss-rs` 3.3.4, 255 shares, threshold `n/2 + 1`) must come back
//! byte for byte through `combine_lrtq`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use rand08::rngs::StdRng;
use rand08::seq::SliceRandom;
use rand08::{Rng, SeedableRng};
use tq_core::crypto::lrtq::{LrtqError, LrtqShare, combine_lrtq};
use tq_core::limits::{LRTQ_SHARE_LEN, LRTQ_TOTAL_SHARES, MAX_LRTQ_COMBINE};
use vsss_rs::curve25519::WrappedScalar;
use vsss_rs::curve25519_dalek::Scalar as LrtqScalar;

/// What LRTQ rack setup left behind for a rack of `sleds` sleds.
struct LrtqRack {
    threshold: usize,
    /// The secret's bytes as the old software used them (`Scalar::as_bytes`).
    secret: [u8; 32],
    shares: Vec<Vec<u8>>,
}

fn set_up_rack(sleds: usize, rng: &mut StdRng) -> LrtqRack {
    let threshold = sleds / 2 + 1;
    let secret = LrtqScalar::random(rng);
    let shares = vsss_rs::shamir::split_secret::<WrappedScalar, u8, Vec<u8>>(
        threshold,
        LRTQ_TOTAL_SHARES,
        secret.into(),
        &mut *rng,
    )
    .unwrap();
    LrtqRack {
        threshold,
        secret: *secret.as_bytes(),
        shares,
    }
}

fn to_lrtq_share(vsss_share: &[u8]) -> LrtqShare {
    let bytes: [u8; LRTQ_SHARE_LEN] = vsss_share.try_into().unwrap();
    LrtqShare::from_bytes(&bytes).unwrap()
}

/// `count` distinct shares of `rack`, chosen and ordered at random.
fn random_subset(rack: &LrtqRack, count: usize, rng: &mut StdRng) -> Vec<Vec<u8>> {
    let mut indices: Vec<usize> = (0..rack.shares.len()).collect();
    let (chosen, _) = indices.partial_shuffle(rng, count);
    chosen.iter().map(|&i| rack.shares[i].clone()).collect()
}

fn combine_with_tq_core(vsss_shares: &[Vec<u8>]) -> Result<[u8; 32], LrtqError> {
    let shares: Vec<LrtqShare> = vsss_shares.iter().map(|s| to_lrtq_share(s)).collect();
    combine_lrtq(&shares).map(|secret| *secret.expose_secret())
}

fn combine_with_vsss(vsss_shares: &[Vec<u8>]) -> [u8; 32] {
    let secret: WrappedScalar = vsss_rs::combine_shares(vsss_shares).unwrap();
    secret.0.to_bytes()
}

#[test]
fn shares_have_the_layout_the_protocol_expects() {
    let rack = set_up_rack(8, &mut StdRng::seed_from_u64(1));
    assert_eq!(rack.shares.len(), LRTQ_TOTAL_SHARES);
    for (index, vsss_share) in rack.shares.iter().enumerate() {
        assert_eq!(vsss_share.len(), LRTQ_SHARE_LEN);
        let share = to_lrtq_share(vsss_share);
        assert_eq!(usize::from(share.identifier()), index + 1);
        assert_eq!(&share.expose_bytes()[..], &vsss_share[..]);
    }
}

#[test]
fn every_lrtq_rack_size_rebuilds_its_secret() {
    for sleds in 3..=32 {
        let mut rng = StdRng::seed_from_u64(0x4c52_5451_0000 + sleds as u64);
        let rack = set_up_rack(sleds, &mut rng);
        let threshold = rack.threshold;

        for attempt in 0..4 {
            let subset = random_subset(&rack, threshold, &mut rng);
            assert_eq!(
                combine_with_tq_core(&subset),
                Ok(rack.secret),
                "{sleds} sleds, threshold subset"
            );
            // vsss-rs combines slowly (one inversion per share): once is
            // enough to show both read the shares the same way.
            if attempt == 0 {
                assert_eq!(combine_with_vsss(&subset), rack.secret, "{sleds} sleds");
            }
        }

        let larger = rng.gen_range(threshold + 1..=MAX_LRTQ_COMBINE);
        for count in [larger, MAX_LRTQ_COMBINE] {
            let subset = random_subset(&rack, count, &mut rng);
            assert_eq!(
                combine_with_tq_core(&subset),
                Ok(rack.secret),
                "{sleds} sleds, {count} shares"
            );
        }

        let subset = random_subset(&rack, threshold - 1, &mut rng);
        if threshold - 1 < 2 {
            assert_eq!(combine_with_tq_core(&subset), Err(LrtqError::TooFewShares));
        } else {
            // Too few points interpolate to some other value; vsss-rs lands
            // on the same wrong value, which pins the arithmetic further.
            let wrong = combine_with_tq_core(&subset).unwrap();
            assert_ne!(wrong, rack.secret, "{sleds} sleds, below threshold");
            assert_eq!(wrong, combine_with_vsss(&subset), "{sleds} sleds");
        }
    }
}

#[test]
fn a_share_with_a_non_canonical_scalar_is_refused() {
    let rack = set_up_rack(5, &mut StdRng::seed_from_u64(2));
    let mut forged: [u8; LRTQ_SHARE_LEN] = rack.shares[0].as_slice().try_into().unwrap();
    forged[1..].fill(0xff);
    assert_eq!(
        LrtqShare::from_bytes(&forged).err(),
        Some(LrtqError::NonCanonicalScalar)
    );
    // vsss-rs itself would have reinterpreted these bytes (as a big-endian
    // number reduced modulo the group order) rather than refuse them.
    let mut shares = rack.shares[1..rack.threshold].to_vec();
    shares.push(forged.to_vec());
    assert!(vsss_rs::combine_shares::<WrappedScalar, u8, Vec<u8>>(&shares).is_ok());
}
