//! An LRTQ rack as LRTQ rack setup left it: one curve25519 scalar secret
//! split with `vsss-rs` 3.3.4 into 255 shares (spares for later sleds
//! included), threshold `n/2 + 1`, from `StdRng` seeded with the seed,
//! so the same seed always gives the same rack.

use rand::SeedableRng;
use rand::rngs::StdRng;
use sha3::{Digest, Sha3_256};
use tq_core::crypto::{LrtqShare, RackSecret, ShareDigest};
use tq_core::ids::{LrtqThreshold, RackId};
use tq_core::persistent::LrtqShareData;
use vsss_rs::curve25519::WrappedScalar;
use vsss_rs::curve25519_dalek::Scalar;
use zeroize::Zeroize;

use crate::SetupError;

/// Shares LRTQ rack setup made, spares for later sleds included.
pub const LRTQ_TOTAL_SHARES: usize = 255;

/// Bytes of one LRTQ share in `vsss-rs`'s layout: the identifier, then the
/// scalar.
pub const LRTQ_SHARE_LEN: usize = 33;

/// The digests an LRTQ ledger lists, as the core holds them.
pub type Digests = heapless::Vec<ShareDigest, LRTQ_TOTAL_SHARES, u8>;

/// What LRTQ rack setup left behind. Zeroized when dropped; never shown
/// by `Debug`.
#[derive(Clone)]
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

impl std::fmt::Debug for LrtqSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LrtqSetup")
            .field("threshold", &self.threshold)
            .field("shares", &self.shares.len())
            .finish_non_exhaustive()
    }
}

impl Drop for LrtqSetup {
    fn drop(&mut self) {
        self.secret.zeroize();
        self.shares.iter_mut().for_each(Zeroize::zeroize);
    }
}

impl LrtqSetup {
    /// SHA3-256 of every share, in share order: what each ledger lists.
    pub fn digests(&self) -> Vec<[u8; 32]> {
        self.shares
            .iter()
            .map(|share| Sha3_256::digest(share).into())
            .collect()
    }

    /// The secret as the new protocol holds it.
    pub fn rack_secret(&self) -> Result<RackSecret, SetupError> {
        RackSecret::from_bytes(&self.secret).map_err(|e| SetupError::Lrtq(format!("{e:?}")))
    }

    /// The digest of every share, as the core computes it (the same for
    /// every sled: compute it once for a whole rack).
    pub fn share_digests(&self) -> Result<Digests, SetupError> {
        let mut digests = Digests::new();
        for share in &self.shares {
            digests
                .push(core_share(share)?.digest())
                .map_err(|_| SetupError::Lrtq("more shares than a ledger lists".into()))?;
        }
        Ok(digests)
    }

    /// Sled `sled`'s share data under `rack_id`, listing `digests`
    /// ([`Self::share_digests`]).
    pub fn share_data(
        &self,
        rack_id: RackId,
        sled: usize,
        digests: &Digests,
    ) -> Result<LrtqShareData, SetupError> {
        let share = self
            .shares
            .get(sled)
            .ok_or_else(|| SetupError::Lrtq(format!("no share for sled {sled}")))?;
        Ok(LrtqShareData {
            rack_id,
            threshold: LrtqThreshold::new(self.threshold)
                .map_err(|e| SetupError::Lrtq(format!("{e:?}")))?,
            share: core_share(share)?,
            share_digests: digests.clone(),
        })
    }

    /// Each of the first `sleds` sleds' share data under `rack_id`.
    pub fn rack(&self, rack_id: RackId, sleds: usize) -> Result<Vec<LrtqShareData>, SetupError> {
        let digests = self.share_digests()?;
        (0..sleds)
            .map(|sled| self.share_data(rack_id, sled, &digests))
            .collect()
    }
}

/// Sets up an LRTQ rack of `sleds` sleds (1 to 32) from `seed`, exactly
/// as the old software did.
pub fn lrtq_setup(sleds: usize, seed: u64) -> Result<LrtqSetup, SetupError> {
    if !(1..=32).contains(&sleds) {
        return Err(SetupError::Lrtq(format!(
            "{sleds} sleds (an LRTQ rack has 1 to 32)"
        )));
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let threshold = sleds / 2 + 1;
    let mut secret = Scalar::random(&mut rng);
    let split = vsss_rs::shamir::split_secret::<WrappedScalar, u8, Vec<u8>>(
        threshold,
        LRTQ_TOTAL_SHARES,
        secret.into(),
        &mut rng,
    );
    let setup = LrtqSetup {
        threshold: u8::try_from(threshold)
            .map_err(|_| SetupError::Lrtq(format!("threshold {threshold}")))?,
        secret: *secret.as_bytes(),
        shares: Vec::new(),
    };
    secret.zeroize();
    let mut split = split.map_err(|e| SetupError::Lrtq(format!("vsss-rs split: {e:?}")))?;
    let shares = split
        .iter()
        .map(|share| share.as_slice().try_into())
        .collect::<Result<Vec<[u8; LRTQ_SHARE_LEN]>, _>>()
        .map_err(|_| SetupError::Lrtq("a vsss-rs share of an unexpected length".into()));
    split.iter_mut().for_each(Zeroize::zeroize);
    Ok(LrtqSetup {
        shares: shares?,
        ..setup
    })
}

fn core_share(bytes: &[u8; LRTQ_SHARE_LEN]) -> Result<LrtqShare, SetupError> {
    LrtqShare::from_bytes(bytes).map_err(|e| SetupError::Lrtq(format!("{e:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shares_rebuild_the_secret_with_vsss_rs() {
        for sleds in [3, 4, 8] {
            let setup = lrtq_setup(sleds, 1).unwrap();
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
        assert_eq!(
            lrtq_setup(4, 9).unwrap().shares,
            lrtq_setup(4, 9).unwrap().shares
        );
    }

    #[test]
    fn a_rack_of_no_sleds_or_too_many_is_an_error() {
        assert!(matches!(lrtq_setup(0, 1), Err(SetupError::Lrtq(_))));
        assert!(matches!(lrtq_setup(33, 1), Err(SetupError::Lrtq(_))));
    }

    #[test]
    fn the_share_data_lists_the_digests_sha3_gives_and_combines() {
        let setup = lrtq_setup(4, 2).unwrap();
        let rack = setup.rack(RackId([0x42; 16]), 4).unwrap();
        let raw: Vec<[u8; 32]> = rack[3].share_digests.iter().map(|d| d.0).collect();
        assert_eq!(raw, setup.digests());
        let combined = tq_core::crypto::combine_lrtq(&[
            rack[0].share.clone(),
            rack[1].share.clone(),
            rack[2].share.clone(),
        ])
        .unwrap();
        assert_eq!(combined.expose_secret(), &setup.secret);
        assert!(format!("{setup:?}").len() < 60, "no secret in Debug");
    }
}
