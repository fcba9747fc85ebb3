//! Rack secrets in the process, and the disk keys derived from them.
//!
//! The node task hands a loaded secret out only as a [`LoadedSecret`]: it
//! names its rack and epoch, never shows its bytes (`Debug` prints the
//! epoch only), and offers two things to do with it: derive a [`DiskKey`],
//! and show its public fingerprint ([`LoadedSecret::fingerprint`]).
//! So a caller (sled-agent unlocking its drives) never handles the raw
//! secret, and the secret never leaves the process: nothing in this crate
//! encodes, logs or exports it.
//!
//! # Derivation
//!
//! HKDF-SHA3-256 (RFC 5869 over SHA3-256), no salt (HKDF's default: a
//! hash length of zero bytes), the rack secret as input key material, and
//! the info string
//!
//! ```text
//! "trust-quorum-v1-disk-key" || rack id (16 bytes) || epoch (8 bytes, big-endian) || purpose
//! ```
//!
//! to [`DISK_KEY_LEN`] bytes. The purpose is the caller's own label of the
//! key (a drive's serial number, say): 1 to [`MAX_PURPOSE_LEN`] bytes,
//! last in the info string, so every other field has a fixed length and
//! two different contexts never give the same info. A derived key of all
//! zeroes is refused (it cannot happen but by a broken hash). The vectors
//! in `tests/kat/` come from an independent implementation (Python's
//! `cryptography`).
//!
//! Everything holding key material (the secret, each derived key) is
//! zeroized when dropped.
//!
//! # Fingerprint
//!
//! To show *which* secret a sled loaded (members agree, an operator or a
//! test compares them) without the secret, [`LoadedSecret::fingerprint`]
//! is the same HKDF-SHA3-256 with the info string
//!
//! ```text
//! "trust-quorum-v1-fingerprint" || rack id (16 bytes) || epoch (8 bytes, big-endian)
//! ```
//!
//! to [`FINGERPRINT_LEN`] bytes. It is public: one-way (finding the
//! secret from it is inverting HKDF on a 32-byte random key), and never a
//! disk key, since the two contexts differ from their 17th byte on (`f`
//! against `d`), so no purpose makes the info strings equal.

use std::fmt;

use hkdf::SimpleHkdf;
use sha3::Sha3_256;
use subtle::ConstantTimeEq;
use tq_core::api::{LoadSecretError, SecretFingerprint};
use tq_core::crypto::RackSecret;
use tq_core::ids::{Epoch, RackId};
use zeroize::Zeroizing;

/// The fixed start of every disk key's HKDF info string.
pub const DISK_KEY_CONTEXT: &[u8] = b"trust-quorum-v1-disk-key";

/// Bytes of a disk key.
pub const DISK_KEY_LEN: usize = 32;

/// The fixed start of the fingerprint's HKDF info string.
pub const FINGERPRINT_CONTEXT: &[u8] = b"trust-quorum-v1-fingerprint";

/// Bytes of a secret's fingerprint.
pub const FINGERPRINT_LEN: usize = 32;

/// Most bytes of a key's purpose.
pub const MAX_PURPOSE_LEN: usize = 64;

/// A rack secret loaded by the node task: what the typed in-process API
/// hands out. See the module doc.
pub struct LoadedSecret {
    rack_id: RackId,
    epoch: Epoch,
    secret: RackSecret,
}

impl LoadedSecret {
    pub(crate) fn new(rack_id: RackId, epoch: Epoch, secret: RackSecret) -> Self {
        Self {
            rack_id,
            epoch,
            secret,
        }
    }

    /// The rack.
    pub fn rack_id(&self) -> RackId {
        self.rack_id
    }

    /// The epoch whose secret this is.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The disk key for `purpose` (see the module doc).
    pub fn derive_disk_key(&self, purpose: &[u8]) -> Result<DiskKey, DeriveError> {
        derive_disk_key(&self.secret, self.rack_id, self.epoch, purpose)
    }

    /// The secret's public fingerprint (see the module doc): equal for
    /// equal secrets of the same rack and epoch, and says nothing else of
    /// the secret.
    pub fn fingerprint(&self) -> [u8; FINGERPRINT_LEN] {
        fingerprint(&self.secret, self.rack_id, self.epoch)
    }

    /// Whether two loaded secrets are the same secret, compared in
    /// constant time (a test that members agree needs no bytes).
    pub fn same_secret(&self, other: &Self) -> bool {
        bool::from(self.secret.ct_eq(&other.secret))
    }

    /// Whether this is the secret `expected` (tests compare a loaded
    /// epoch-1 secret with the LRTQ secret), in constant time.
    pub fn is(&self, expected: &RackSecret) -> bool {
        bool::from(self.secret.ct_eq(expected))
    }
}

impl fmt::Debug for LoadedSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoadedSecret")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// A key derived from a rack secret, for one purpose. Zeroized on drop;
/// `Debug` shows no bytes.
pub struct DiskKey {
    epoch: Epoch,
    key: Zeroizing<[u8; DISK_KEY_LEN]>,
}

impl DiskKey {
    /// The epoch of the secret it was derived from.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The key's bytes, for the disk encryption layer: every call site is
    /// a place where key material leaves this type.
    pub fn expose(&self) -> &[u8; DISK_KEY_LEN] {
        &self.key
    }
}

impl fmt::Debug for DiskKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DiskKey")
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// Why no disk key was derived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeriveError {
    /// The purpose is empty or longer than [`MAX_PURPOSE_LEN`] bytes.
    PurposeLength(usize),
    /// HKDF gave all zeroes.
    ZeroKey,
}

impl fmt::Display for DeriveError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PurposeLength(len) => write!(
                f,
                "a key purpose of {len} bytes is outside 1..={MAX_PURPOSE_LEN}"
            ),
            Self::ZeroKey => f.write_str("the derived key is all zero"),
        }
    }
}

impl std::error::Error for DeriveError {}

/// The derivation of the module doc, from the secret itself.
pub fn derive_disk_key(
    secret: &RackSecret,
    rack_id: RackId,
    epoch: Epoch,
    purpose: &[u8],
) -> Result<DiskKey, DeriveError> {
    if purpose.is_empty() || purpose.len() > MAX_PURPOSE_LEN {
        return Err(DeriveError::PurposeLength(purpose.len()));
    }
    // `SimpleHkdf`, as in the core: sha3 offers no block-level core for the
    // eager variant. Same HKDF.
    let hkdf = SimpleHkdf::<Sha3_256>::new(None, secret.expose_secret());
    let mut key = Zeroizing::new([0u8; DISK_KEY_LEN]);
    // Fails only for outputs over 255 hash lengths; this is one.
    hkdf.expand_multi_info(
        &[
            DISK_KEY_CONTEXT,
            rack_id.as_bytes(),
            &epoch.0.to_be_bytes(),
            purpose,
        ],
        key.as_mut_slice(),
    )
    .map_err(|_| DeriveError::ZeroKey)?;
    if bool::from(key.ct_eq(&[0; DISK_KEY_LEN])) {
        return Err(DeriveError::ZeroKey);
    }
    Ok(DiskKey { epoch, key })
}

/// What the node tags for Nexus's latest-secret request (the fingerprint
/// endpoint): the loaded secret's epoch and fingerprint, or the refusal;
/// never the secret. The answer tag of
/// [`crate::handle::NodeHandle::load_latest_secret`] covers its Nexus
/// encoding.
pub fn fingerprint_answer(
    loaded: &Result<LoadedSecret, LoadSecretError>,
) -> Result<SecretFingerprint, LoadSecretError> {
    match loaded {
        Ok(secret) => Ok(SecretFingerprint {
            epoch: secret.epoch(),
            fingerprint: secret.fingerprint(),
        }),
        Err(error) => Err(error.clone()),
    }
}

/// The fingerprint of the module doc, from the secret itself.
pub fn fingerprint(secret: &RackSecret, rack_id: RackId, epoch: Epoch) -> [u8; FINGERPRINT_LEN] {
    let hkdf = SimpleHkdf::<Sha3_256>::new(None, secret.expose_secret());
    let mut out = [0u8; FINGERPRINT_LEN];
    // Fails only for outputs over 255 hash lengths; this is one, and
    // `out` stays zero if it ever did.
    let _ = hkdf.expand_multi_info(
        &[
            FINGERPRINT_CONTEXT,
            rack_id.as_bytes(),
            &epoch.0.to_be_bytes(),
        ],
        &mut out,
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> RackSecret {
        RackSecret::from_bytes(&[byte; 32]).unwrap()
    }

    #[test]
    fn each_context_field_changes_the_key() {
        let rack = RackId([1; 16]);
        let base = derive_disk_key(&secret(7), rack, Epoch(2), b"disk-a").unwrap();
        let others = [
            derive_disk_key(&secret(8), rack, Epoch(2), b"disk-a").unwrap(),
            derive_disk_key(&secret(7), RackId([2; 16]), Epoch(2), b"disk-a").unwrap(),
            derive_disk_key(&secret(7), rack, Epoch(3), b"disk-a").unwrap(),
            derive_disk_key(&secret(7), rack, Epoch(2), b"disk-b").unwrap(),
        ];
        for other in &others {
            assert_ne!(base.expose(), other.expose());
        }
        let again = derive_disk_key(&secret(7), rack, Epoch(2), b"disk-a").unwrap();
        assert_eq!(base.expose(), again.expose());
    }

    #[test]
    fn purposes_are_bounded() {
        let rack = RackId([1; 16]);
        assert_eq!(
            derive_disk_key(&secret(7), rack, Epoch(2), b"").unwrap_err(),
            DeriveError::PurposeLength(0)
        );
        let long = [b'x'; MAX_PURPOSE_LEN + 1];
        assert_eq!(
            derive_disk_key(&secret(7), rack, Epoch(2), &long).unwrap_err(),
            DeriveError::PurposeLength(MAX_PURPOSE_LEN + 1)
        );
        assert!(derive_disk_key(&secret(7), rack, Epoch(2), &long[1..]).is_ok());
    }

    #[test]
    fn debug_shows_no_key_material() {
        let loaded = LoadedSecret::new(RackId([1; 16]), Epoch(5), secret(0xab));
        let key = loaded.derive_disk_key(b"p").unwrap();
        assert_eq!(
            format!("{loaded:?}"),
            "LoadedSecret { epoch: Epoch(5), .. }"
        );
        assert_eq!(format!("{key:?}"), "DiskKey { epoch: Epoch(5), .. }");
    }

    #[test]
    fn the_fingerprint_is_neither_the_secret_nor_a_disk_key() {
        let rack = RackId([1; 16]);
        let loaded = LoadedSecret::new(rack, Epoch(5), secret(0xab));
        let print = loaded.fingerprint();
        assert_ne!(print, [0xab; 32]);
        assert_ne!(print, [0; 32]);
        // The purpose that would line the disk key's info string up with
        // the fingerprint's, and a few others.
        for purpose in [&b"fingerprint"[..], b"p", &FINGERPRINT_CONTEXT[16..]] {
            let key = loaded.derive_disk_key(purpose).unwrap();
            assert_ne!(&print, key.expose());
        }
        // Same secret, rack and epoch: same print; any of them changed: not.
        assert_eq!(print, fingerprint(&secret(0xab), rack, Epoch(5)));
        assert_ne!(print, fingerprint(&secret(0xac), rack, Epoch(5)));
        assert_ne!(print, fingerprint(&secret(0xab), RackId([2; 16]), Epoch(5)));
        assert_ne!(print, fingerprint(&secret(0xab), rack, Epoch(6)));
    }
}
