//! `tq-rack-setup`: what setting up a trust-quorum rack makes, written
//! once for the `tq demo`, the tests that start sleds and the fixtures.
//!
//! - [`lrtq`]: an LRTQ rack as LRTQ rack setup left it, split with the
//!   very crate and version LRTQ used (`vsss-rs` 3.3.4: one curve25519
//!   scalar secret, 255 shares, threshold `n/2 + 1`) from a seed, and
//!   each sled's share data as the core holds it.
//! - `pki` (feature `pki`, on by default): the rack PKI made with rcgen: a CA that signs sled
//!   certificates directly, each sled certificate naming its platform id
//!   in a SAN URI, with both TLS usages (every sled listens and dials).
//! - [`layout`]: one sled's directory: its two ledger directories
//!   (`m2-a`, `m2-b`, made by `tq sled init`), its LRTQ share file, its
//!   PEM files, its request key file and its `tq sled` configuration
//!   file.
//! - [`keys`]: the key files of Nexus's authority: its authority key, a
//!   sled's request key (derived from it for the sled and the rack).
//! - [`sled_id`]: sled `i`'s platform id, part number
//!   [`tq_core::ids::SLED_PART_NUMBER`], serial `SN0000`, `SN0001`, ...
//!   (so sled order is platform-id order).
//!
//! Everything returns [`SetupError`], never panics: the `tq` binary ships
//! this crate. Test-only conveniences that panic live in
//! `tq-test-fixtures`, which builds on this one.

mod error;
pub mod keys;
pub mod layout;
pub mod lrtq;
#[cfg(feature = "pki")]
pub mod pki;

pub use error::SetupError;
use tq_core::ids::{PlatformId, SLED_PART_NUMBER};

/// Sled `index`'s platform id: part [`SLED_PART_NUMBER`], serial
/// `SN{index:04}`.
pub fn sled_id(index: usize) -> Result<PlatformId, SetupError> {
    PlatformId::new(SLED_PART_NUMBER, &format!("SN{index:04}")).map_err(SetupError::PlatformId)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sled_ids_sort_as_their_index() {
        let ids: Vec<PlatformId> = (0..12).map(|i| sled_id(i).unwrap()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(ids[3].to_string(), "913-0000019:SN0003");
    }
}
