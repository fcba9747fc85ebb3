//! Drawing bytes from the caller's RNG.

use core::fmt;
use rand_core::TryCryptoRng;
#[cfg(any(test, feature = "host"))]
use serde::Deserialize;
use serde::Serialize;

/// The caller's RNG failed to produce bytes (a hardware RNG can fail on the
/// service processor). Nothing was changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[cfg_attr(any(test, feature = "host"), derive(Deserialize))]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct RngError;

impl fmt::Display for RngError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("random number generator failed")
    }
}

impl core::error::Error for RngError {}

/// Fills `buf` from `rng`, mapping any RNG failure to [`RngError`].
pub(crate) fn fill<R: TryCryptoRng + ?Sized>(rng: &mut R, buf: &mut [u8]) -> Result<(), RngError> {
    rng.try_fill_bytes(buf).map_err(|_| RngError)
}
