//! The cryptography the protocol stands on (PROTOCOL.md section 3).
//!
//! Everything here is a pure function of its inputs and the caller's RNG.
//! Secret data is handled in constant time: no branch, index or table lookup
//! depends on a secret byte. Public values may be looked up in tables: the
//! Lagrange weights of Shamir's x-coordinates are (see `shamir`).

mod aead;
pub mod digest;
pub mod gf256;
mod lagrange;
pub mod lrtq;
pub mod rack_secret;
pub mod random;
pub mod sealed;
pub mod shamir;

pub use digest::ShareDigest;
pub use lrtq::{LrtqError, LrtqShare, combine_lrtq};
pub use rack_secret::{RackSecret, SecretError};
pub use random::RngError;
pub use sealed::{EncryptedRackSecrets, OpenError, RetainedSecrets, SealError};
pub use shamir::{ShamirError, Share, combine, compute_share, split};
