//! Every size bound of the core, in one place.
//!
//! Each constant says what happens when the bound is hit. None of them is
//! ever a panic: hitting a bound is a typed error for the caller.

/// Bytes in a rack secret, and in the `y` part of every share.
pub const SECRET_LEN: usize = 32;

/// Most shares one secret can be split into: the non-zero elements of
/// GF(2^8). Asking `split` for more is `ShamirError::TooManyShares`.
pub const MAX_SHARES: usize = 255;

/// Most old secrets one configuration carries in its encrypted rack secrets.
/// Encrypting more is `SealError::TooManySecrets`; a ciphertext that decrypts
/// to more is `OpenError::TooManySecrets`. Callers that rotate drop the
/// oldest retained secret to make room.
pub const MAX_RETAINED_SECRETS: usize = 16;

/// Most bytes of an encrypted rack secrets ciphertext: [`MAX_RETAINED_SECRETS`]
/// entries of an 8-byte epoch and a secret each, then the 16-byte
/// authentication tag. A longer ciphertext is refused when it is built or
/// deserialized (`OpenError::TooManySecrets`), before any decryption.
pub const MAX_SEALED_LEN: usize = MAX_RETAINED_SECRETS * (8 + SECRET_LEN) + 16;

/// Bytes of one LRTQ share: an identifier byte, then a little-endian
/// curve25519 scalar, as `vsss-rs` 3.3.4 lays it out.
pub const LRTQ_SHARE_LEN: usize = 33;

/// Shares an LRTQ rack was set up with. Every one has a digest in the LRTQ
/// share data, because sleds added later hold spare shares.
pub const LRTQ_TOTAL_SHARES: usize = 255;

/// Most LRTQ shares combined at once. LRTQ racks used a threshold of
/// `n/2 + 1` for at most 32 sleds, so 17 is the largest real threshold; more
/// shares are `LrtqError::TooManyShares`.
pub const MAX_LRTQ_COMBINE: usize = 32;
