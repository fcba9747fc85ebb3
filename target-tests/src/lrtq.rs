//! The LRTQ racks the build script set up on the host with `vsss-rs`
//! 3.3.4, as rack setup did (see `build.rs`).

use tq_core::crypto::{LrtqShare, RackSecret, ShareDigest};
use tq_core::ids::{LrtqThreshold, RackId};
use tq_core::limits::{LRTQ_SHARE_LEN, LRTQ_TOTAL_SHARES};
use tq_core::persistent::LrtqShareData;

/// One LRTQ rack as rack setup left it.
pub struct LrtqRack {
    /// `n/2 + 1`.
    pub threshold: u8,
    /// The secret, as the old software used its bytes.
    pub secret: &'static [u8; 32],
    /// The shares of the rack's sleds, 33 bytes each, sled `i` holding the
    /// share with identifier `i + 1`.
    shares: &'static [u8],
    /// SHA3-256 of all 255 shares, 32 bytes each.
    digests: &'static [u8; LRTQ_TOTAL_SHARES * 32],
    /// What sled 0 keeps of its LRTQ ledger: its share data under
    /// [`LEDGER_RACK_ID`], as tq-core encodes it
    /// (`wire::encode_lrtq_share_data`, run by the build script). A node
    /// with no state of its own restores it in place
    /// (`NodeCtx::restore_lrtq`).
    pub sled_0_ledger: &'static [u8],
}

/// The rack id the LRTQ ledgers name.
pub const LEDGER_RACK_ID: RackId =
    RackId(*include_bytes!(concat!(env!("OUT_DIR"), "/lrtq.rack-id")));

macro_rules! lrtq_rack {
    ($sleds:literal) => {
        LrtqRack {
            threshold: include_bytes!(concat!(env!("OUT_DIR"), "/lrtq-", $sleds, ".threshold"))[0],
            secret: include_bytes!(concat!(env!("OUT_DIR"), "/lrtq-", $sleds, ".secret")),
            shares: include_bytes!(concat!(env!("OUT_DIR"), "/lrtq-", $sleds, ".shares")),
            digests: include_bytes!(concat!(env!("OUT_DIR"), "/lrtq-", $sleds, ".digests")),
            sled_0_ledger: include_bytes!(concat!(env!("OUT_DIR"), "/lrtq-", $sleds, ".ledger")),
        }
    };
}

/// A rack of 4 LRTQ sleds (threshold 3).
pub static LRTQ_RACK_4: LrtqRack = lrtq_rack!(4);
/// A rack of 7 LRTQ sleds (threshold 4).
pub static LRTQ_RACK_7: LrtqRack = lrtq_rack!(7);
/// A rack of 8 LRTQ sleds (threshold 5).
pub static LRTQ_RACK_8: LrtqRack = lrtq_rack!(8);
/// A rack of 32 LRTQ sleds (threshold 17), the largest.
pub static LRTQ_RACK_32: LrtqRack = lrtq_rack!(32);

/// Why build-script data did not make valid LRTQ share data.
#[derive(Clone, Copy, Debug, defmt::Format)]
pub enum LrtqDataError {
    /// No such sled.
    NoSuchSled,
    /// `LrtqShare::from_bytes` refused the share.
    BadShare,
    /// The digests did not fit.
    TooManyDigests,
    /// The threshold is not a valid LRTQ threshold.
    BadThreshold,
    /// The secret is all zero.
    BadSecret,
}

impl LrtqRack {
    /// Sleds in the rack.
    pub fn sleds(&self) -> usize {
        self.shares.len() / LRTQ_SHARE_LEN
    }

    /// The LRTQ share sled `sled` holds.
    pub fn share(&self, sled: usize) -> Result<LrtqShare, LrtqDataError> {
        let bytes: &[u8; LRTQ_SHARE_LEN] = self
            .shares
            .chunks_exact(LRTQ_SHARE_LEN)
            .nth(sled)
            .and_then(|chunk| chunk.try_into().ok())
            .ok_or(LrtqDataError::NoSuchSled)?;
        LrtqShare::from_bytes(bytes).map_err(|_| LrtqDataError::BadShare)
    }

    /// What sled `sled` read from its LRTQ ledger.
    pub fn share_data(&self, rack_id: RackId, sled: usize) -> Result<LrtqShareData, LrtqDataError> {
        let share = self.share(sled)?;
        let mut share_digests = heapless::Vec::new();
        for digest in self.digests.as_chunks::<32>().0 {
            share_digests
                .push(ShareDigest(*digest))
                .map_err(|_| LrtqDataError::TooManyDigests)?;
        }
        Ok(LrtqShareData {
            rack_id,
            threshold: LrtqThreshold::new(self.threshold)
                .map_err(|_| LrtqDataError::BadThreshold)?,
            share,
            share_digests,
        })
    }

    /// The LRTQ secret as the new protocol holds it (epoch 1).
    pub fn rack_secret(&self) -> Result<RackSecret, LrtqDataError> {
        RackSecret::from_bytes(self.secret).map_err(|_| LrtqDataError::BadSecret)
    }
}
