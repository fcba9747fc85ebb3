//! A disk's data key and its wrapping under a rack-secret-derived key.
//!
//! The data key is 32 random bytes made once per disk and never changed
//! ([`DataKey::generate`]). It is stored only as a [`Wrapping`]:
//! ChaCha20-Poly1305 under the disk key of one epoch
//! ([`crate::secrets::LoadedSecret::derive_disk_key`], purpose = the
//! disk's serial), a random 96-bit nonce, and the associated data
//!
//! ```text
//! "trust-quorum-v1-disk-wrap" || rack id (16 bytes) || epoch (8 bytes, big-endian) || serial
//! ```
//!
//! so a wrapping moved to another rack, epoch or disk does not open. Each
//! key wraps one data key (re-wrapping after a crash wraps the same one
//! again under a fresh nonce), so random nonces are far from any bound.

use std::fmt;

use chacha20poly1305::aead::AeadInOut;
use chacha20poly1305::{ChaCha20Poly1305, Key, KeyInit, Nonce, Tag};
use rand::TryRng;
use rand::rngs::SysRng;
use tq_core::ids::{Epoch, RackId};
use zeroize::Zeroizing;

use crate::secrets::{DeriveError, LoadedSecret};

/// Bytes of a data key (what `zfs load-key` takes as a raw key).
pub const DATA_KEY_LEN: usize = 32;

/// Bytes of a wrapping's nonce.
pub const NONCE_LEN: usize = 12;

/// Bytes of a wrapped data key: the ciphertext and its 16-byte tag.
pub const SEALED_LEN: usize = DATA_KEY_LEN + 16;

/// The fixed start of a wrapping's associated data.
pub const WRAP_CONTEXT: &[u8] = b"trust-quorum-v1-disk-wrap";

/// A disk's data key: zeroized on drop, no bytes in `Debug`. Boxed, so
/// moving it moves a pointer and leaves no copy of the key behind.
pub struct DataKey(Box<Zeroizing<[u8; DATA_KEY_LEN]>>);

impl DataKey {
    /// A new random key from the operating system's generator.
    pub fn generate() -> Result<Self, WrapError> {
        let mut key = Box::new(Zeroizing::new([0u8; DATA_KEY_LEN]));
        SysRng
            .try_fill_bytes(key.as_mut_slice())
            .map_err(|_| WrapError::Random)?;
        Ok(Self(key))
    }

    /// The key's bytes, for a backend: every call site is a place where
    /// the key leaves this type.
    pub fn expose(&self) -> &[u8; DATA_KEY_LEN] {
        &self.0
    }

    /// Whether two keys are the same, in constant time.
    pub fn same_as(&self, other: &Self) -> bool {
        use subtle::ConstantTimeEq;
        bool::from(self.0.ct_eq(&**other.0))
    }

    #[cfg(test)]
    pub(crate) fn from_bytes(bytes: [u8; DATA_KEY_LEN]) -> Self {
        Self(Box::new(Zeroizing::new(bytes)))
    }
}

impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DataKey(..)")
    }
}

/// One data key wrapped under one epoch's disk key (public bytes).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wrapping {
    /// The epoch whose secret the wrapping key was derived from.
    pub epoch: Epoch,
    /// Its nonce.
    pub nonce: [u8; NONCE_LEN],
    /// The wrapped key and its tag.
    pub sealed: [u8; SEALED_LEN],
}

/// Why a data key was not wrapped or unwrapped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WrapError {
    /// The operating system's random generator failed.
    Random,
    /// The disk key could not be derived (a serial out of bounds).
    Derive(DeriveError),
    /// The secret is of another epoch than the wrapping.
    WrongEpoch {
        /// The wrapping's epoch.
        wrapping: Epoch,
        /// The secret's epoch.
        secret: Epoch,
    },
    /// The wrapping does not open under this secret, rack and serial.
    DoesNotOpen,
}

impl fmt::Display for WrapError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Random => f.write_str("the system's random generator failed"),
            Self::Derive(e) => write!(f, "deriving the disk key: {e}"),
            Self::WrongEpoch { wrapping, secret } => write!(
                f,
                "a wrapping of epoch {wrapping} needs that epoch's secret, not epoch {secret}'s"
            ),
            Self::DoesNotOpen => f.write_str(
                "the wrapping does not open (another rack, disk or secret, or altered bytes)",
            ),
        }
    }
}

impl std::error::Error for WrapError {}

fn associated_data(rack: RackId, epoch: Epoch, serial: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(WRAP_CONTEXT.len() + 16 + 8 + serial.len());
    aad.extend_from_slice(WRAP_CONTEXT);
    aad.extend_from_slice(rack.as_bytes());
    aad.extend_from_slice(&epoch.0.to_be_bytes());
    aad.extend_from_slice(serial);
    aad
}

fn cipher(secret: &LoadedSecret, serial: &[u8]) -> Result<ChaCha20Poly1305, WrapError> {
    let key = secret.derive_disk_key(serial).map_err(WrapError::Derive)?;
    Ok(ChaCha20Poly1305::new(<&Key>::from(key.expose())))
}

/// Wraps `key` for the disk `serial` under `secret`'s epoch.
pub fn wrap(key: &DataKey, secret: &LoadedSecret, serial: &[u8]) -> Result<Wrapping, WrapError> {
    let mut nonce = [0u8; NONCE_LEN];
    SysRng
        .try_fill_bytes(&mut nonce)
        .map_err(|_| WrapError::Random)?;
    let aad = associated_data(secret.rack_id(), secret.epoch(), serial);
    // Encrypted in place in a buffer that is wiped if anything fails.
    let mut body = Box::new(Zeroizing::new([0u8; DATA_KEY_LEN]));
    body.copy_from_slice(key.expose());
    let tag = cipher(secret, serial)?
        .encrypt_inout_detached(&Nonce::from(nonce), &aad, body.as_mut_slice().into())
        // Only a message over 256 GiB fails.
        .map_err(|_| WrapError::DoesNotOpen)?;
    let mut sealed = [0u8; SEALED_LEN];
    let (ciphertext, tag_out) = sealed.split_at_mut(DATA_KEY_LEN);
    ciphertext.copy_from_slice(body.as_slice());
    tag_out.copy_from_slice(&tag);
    Ok(Wrapping {
        epoch: secret.epoch(),
        nonce,
        sealed,
    })
}

/// Opens `wrapping` with `secret` (of the wrapping's epoch) for `serial`.
pub fn unwrap(
    wrapping: &Wrapping,
    secret: &LoadedSecret,
    serial: &[u8],
) -> Result<DataKey, WrapError> {
    if wrapping.epoch != secret.epoch() {
        return Err(WrapError::WrongEpoch {
            wrapping: wrapping.epoch,
            secret: secret.epoch(),
        });
    }
    let aad = associated_data(secret.rack_id(), wrapping.epoch, serial);
    let (ciphertext, tag) = wrapping.sealed.split_at(DATA_KEY_LEN);
    let tag = <&Tag>::try_from(tag).map_err(|_| WrapError::DoesNotOpen)?;
    let mut key = Box::new(Zeroizing::new([0u8; DATA_KEY_LEN]));
    key.copy_from_slice(ciphertext);
    cipher(secret, serial)?
        .decrypt_inout_detached(
            &Nonce::from(wrapping.nonce),
            &aad,
            key.as_mut_slice().into(),
            tag,
        )
        .map_err(|_| WrapError::DoesNotOpen)?;
    Ok(DataKey(key))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tq_core::crypto::RackSecret;

    fn secret(byte: u8, rack: u8, epoch: u64) -> LoadedSecret {
        LoadedSecret::new(
            RackId([rack; 16]),
            Epoch(epoch),
            RackSecret::from_bytes(&[byte; 32]).unwrap(),
        )
    }

    #[test]
    fn a_wrapping_opens_only_under_its_secret_rack_epoch_and_serial() {
        let key = DataKey::from_bytes([0x42; DATA_KEY_LEN]);
        let s = secret(7, 1, 3);
        let w = wrap(&key, &s, b"SN1").unwrap();
        assert_ne!(&w.sealed[..DATA_KEY_LEN], key.expose());
        assert!(unwrap(&w, &s, b"SN1").unwrap().same_as(&key));
        assert_eq!(
            unwrap(&w, &secret(8, 1, 3), b"SN1").unwrap_err(),
            WrapError::DoesNotOpen
        );
        assert_eq!(
            unwrap(&w, &secret(7, 2, 3), b"SN1").unwrap_err(),
            WrapError::DoesNotOpen
        );
        assert_eq!(unwrap(&w, &s, b"SN2").unwrap_err(), WrapError::DoesNotOpen);
        assert!(matches!(
            unwrap(&w, &secret(7, 1, 4), b"SN1"),
            Err(WrapError::WrongEpoch { .. })
        ));
        // The epoch is bound: relabelling the wrapping does not open it.
        let mut moved = w.clone();
        moved.epoch = Epoch(4);
        assert_eq!(
            unwrap(&moved, &secret(7, 1, 4), b"SN1").unwrap_err(),
            WrapError::DoesNotOpen
        );
        let mut flipped = w;
        flipped.sealed[0] ^= 1;
        assert_eq!(
            unwrap(&flipped, &s, b"SN1").unwrap_err(),
            WrapError::DoesNotOpen
        );
    }

    #[test]
    fn wrapping_twice_gives_fresh_nonces() {
        let key = DataKey::generate().unwrap();
        let s = secret(7, 1, 3);
        assert_ne!(
            wrap(&key, &s, b"SN").unwrap().nonce,
            wrap(&key, &s, b"SN").unwrap().nonce
        );
        assert_eq!(format!("{key:?}"), "DataKey(..)");
    }
}
