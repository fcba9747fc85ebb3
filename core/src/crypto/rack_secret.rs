//! The rack secret: 32 random bytes that no sled stores.

use core::fmt;
use rand_core::TryCryptoRng;
use subtle::{Choice, ConstantTimeEq};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::crypto::random::{self, RngError};
use crate::limits::SECRET_LEN;

/// Why a rack secret could not be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SecretError {
    /// The bytes were all zero. From an RNG this means the RNG is broken;
    /// from interpolation it means the shares did not belong together.
    AllZero,
    /// The caller's RNG failed.
    Rng(RngError),
}

impl fmt::Display for SecretError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AllZero => f.write_str("rack secret would be all zero"),
            Self::Rng(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for SecretError {}

impl From<RngError> for SecretError {
    fn from(e: RngError) -> Self {
        Self::Rng(e)
    }
}

/// A rack secret. Never all zero; zeroized on drop; compared only through
/// [`ConstantTimeEq`]; its `Debug` shows no bytes.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct RackSecret([u8; SECRET_LEN]);

impl RackSecret {
    /// Draws a fresh secret from the caller's CSPRNG.
    pub fn generate<R: TryCryptoRng + ?Sized>(rng: &mut R) -> Result<Self, SecretError> {
        let mut secret = Self([0; SECRET_LEN]);
        random::fill(rng, &mut secret.0)?;
        secret.check_not_zero()?;
        Ok(secret)
    }

    /// Wraps existing secret bytes (a rebuilt or decrypted secret). The caller
    /// still owns, and should zeroize, its copy.
    pub fn from_bytes(bytes: &[u8; SECRET_LEN]) -> Result<Self, SecretError> {
        let secret = Self(*bytes);
        secret.check_not_zero()?;
        Ok(secret)
    }

    /// The secret bytes. Every call site is a place where the secret leaves
    /// this type: keep them few and obvious.
    pub fn expose_secret(&self) -> &[u8; SECRET_LEN] {
        &self.0
    }

    fn check_not_zero(&self) -> Result<(), SecretError> {
        // Only the single bit "all zero" is revealed, never which bytes.
        if bool::from(self.0.ct_eq(&[0; SECRET_LEN])) {
            Err(SecretError::AllZero)
        } else {
            Ok(())
        }
    }
}

impl ConstantTimeEq for RackSecret {
    fn ct_eq(&self, other: &Self) -> Choice {
        self.0.ct_eq(&other.0)
    }
}

/// Through a SHA3-256 digest of the secret (one-way, and apart from share
/// digests by its prefix), never its bytes.
#[cfg(feature = "model")]
impl core::hash::Hash for RackSecret {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        crate::crypto::digest::ShareDigest::of_parts(&[b"tq-model rack secret", &self.0]).hash(h);
    }
}

impl fmt::Debug for RackSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RackSecret(..)")
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for RackSecret {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "RackSecret(..)");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    /// An RNG that returns only zeroes, as a broken hardware RNG might.
    struct ZeroRng;
    impl rand_core::TryRng for ZeroRng {
        type Error = core::convert::Infallible;
        fn try_next_u32(&mut self) -> Result<u32, Self::Error> {
            Ok(0)
        }
        fn try_next_u64(&mut self) -> Result<u64, Self::Error> {
            Ok(0)
        }
        fn try_fill_bytes(&mut self, dst: &mut [u8]) -> Result<(), Self::Error> {
            dst.fill(0);
            Ok(())
        }
    }
    impl rand_core::TryCryptoRng for ZeroRng {}

    #[test]
    fn generated_secrets_differ_and_are_reproducible_from_a_seed() {
        let a = RackSecret::generate(&mut ChaCha20Rng::seed_from_u64(1)).unwrap();
        let b = RackSecret::generate(&mut ChaCha20Rng::seed_from_u64(2)).unwrap();
        let a2 = RackSecret::generate(&mut ChaCha20Rng::seed_from_u64(1)).unwrap();
        assert!(!bool::from(a.ct_eq(&b)));
        assert!(bool::from(a.ct_eq(&a2)));
    }

    #[test]
    fn an_all_zero_secret_is_refused() {
        assert_eq!(
            RackSecret::generate(&mut ZeroRng).err(),
            Some(SecretError::AllZero)
        );
        assert_eq!(
            RackSecret::from_bytes(&[0; SECRET_LEN]).err(),
            Some(SecretError::AllZero)
        );
    }

    #[test]
    fn debug_shows_no_secret_bytes() {
        let secret = RackSecret::from_bytes(&[0xab; SECRET_LEN]).unwrap();
        let mut out = heapless::String::<64>::new();
        core::fmt::write(&mut out, format_args!("{secret:?}")).unwrap();
        assert_eq!(out.as_str(), "RackSecret(..)");
    }
}
