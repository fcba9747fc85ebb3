//! Encryption of the old rack secrets a configuration retains (PROTOCOL.md
//! section 3, "Encrypted rack secrets").
//!
//! After a reconfiguration, data may still be sealed under an older epoch's
//! secret. So each new configuration carries the old secrets it retains,
//! encrypted under a key derived from its *own* secret: whoever can rebuild
//! the new secret can recover the old ones, and the configuration itself stays
//! public.
//!
//! Format: plaintext = for each retained epoch, oldest first, the epoch as 8
//! big-endian bytes then its 32-byte secret. Key = HKDF-SHA3-256 with a fresh
//! random 32-byte salt, the new secret as input key material, and info =
//! `trust-quorum-v1-rack-secrets` || rack id || new epoch (big-endian).
//! Cipher = ChaCha20-Poly1305 with an all-zero nonce and no associated data:
//! the fresh salt makes every key single-use, so a fixed nonce never repeats
//! under one key.

use core::fmt;

use chacha20poly1305::{AeadInOut, Key, KeyInit, Nonce, Tag};
use hkdf::SimpleHkdf;
use rand_core::TryCryptoRng;
use serde::{Deserialize, Serialize};
use sha3::Sha3_256;
use subtle::ConstantTimeEq;
use zeroize::{Zeroize, Zeroizing};

use crate::crypto::aead::ChaCha20Poly1305;
use crate::crypto::rack_secret::RackSecret;
use crate::crypto::random::{self, RngError};
use crate::ids::{Epoch, RackId};
use crate::limits::{MAX_RETAINED_SECRETS, MAX_SEALED_LEN, SECRET_LEN};

/// HKDF context, so that a key derived here can never collide with a key
/// derived from the same secret for another purpose.
const KDF_CONTEXT: &[u8] = b"trust-quorum-v1-rack-secrets";

/// Bytes of the random HKDF salt.
pub const SALT_LEN: usize = 32;

/// Bytes of the ChaCha20-Poly1305 key.
const KEY_LEN: usize = 32;

/// Bytes of the Poly1305 tag at the end of the ciphertext.
const TAG_LEN: usize = 16;

/// Bytes of one plaintext entry: the epoch, then its secret.
const ENTRY_LEN: usize = 8 + SECRET_LEN;

// The public bound in `limits` must describe exactly this layout.
const _: () = assert!(MAX_SEALED_LEN == MAX_RETAINED_SECRETS * ENTRY_LEN + TAG_LEN);

/// Why a secret could not be added to [`RetainedSecrets`]. The secret that
/// was offered is dropped (and so zeroized).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum RetainError {
    /// Already [`MAX_RETAINED_SECRETS`] entries; drop the oldest first.
    Full,
    /// The epoch is not greater than the newest retained epoch.
    EpochNotIncreasing,
}

impl fmt::Display for RetainError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Full => "retained secrets are full",
            Self::EpochNotIncreasing => "retained secret epoch is not increasing",
        })
    }
}

impl core::error::Error for RetainError {}

/// Why old secrets could not be encrypted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SealError {
    /// More than [`MAX_RETAINED_SECRETS`] entries.
    TooManySecrets,
    /// A retained epoch is not older than the epoch being sealed for.
    EpochNotNewer,
    /// Key derivation gave an all-zero key (or failed outright). An internal
    /// error: with a real secret this does not happen.
    ZeroKey,
    /// The caller's RNG failed while drawing the salt.
    Rng(RngError),
}

impl fmt::Display for SealError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooManySecrets => f.write_str("too many retained secrets to encrypt"),
            Self::EpochNotNewer => f.write_str("a retained epoch is not older than the new epoch"),
            Self::ZeroKey => f.write_str("derived rack secrets key is unusable"),
            Self::Rng(e) => e.fmt(f),
        }
    }
}

impl core::error::Error for SealError {}

impl From<RngError> for SealError {
    fn from(e: RngError) -> Self {
        Self::Rng(e)
    }
}

/// Why encrypted rack secrets could not be accepted or opened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum OpenError {
    /// The ciphertext is shorter than the authentication tag.
    Truncated,
    /// The ciphertext minus the tag is not a whole number of entries.
    NotWholeEntries,
    /// The ciphertext holds more than [`MAX_RETAINED_SECRETS`] entries.
    TooManySecrets,
    /// The tag did not verify: the data was altered, or the rack id, epoch
    /// or secret is not the one it was sealed with.
    Decryption,
    /// The decrypted epochs are not strictly increasing.
    EpochsNotIncreasing,
    /// A decrypted epoch is not older than the epoch being opened.
    EpochNotOlder,
    /// A decrypted secret is all zero.
    ZeroSecret,
    /// Key derivation gave an all-zero key (or failed outright). An internal
    /// error: with a real secret this does not happen.
    ZeroKey,
}

impl fmt::Display for OpenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Truncated => "encrypted rack secrets are shorter than the tag",
            Self::NotWholeEntries => "encrypted rack secrets are not a whole number of entries",
            Self::TooManySecrets => "encrypted rack secrets hold too many entries",
            Self::Decryption => "encrypted rack secrets failed to authenticate",
            Self::EpochsNotIncreasing => "decrypted epochs are not increasing",
            Self::EpochNotOlder => "a decrypted epoch is not older than the opened epoch",
            Self::ZeroSecret => "a decrypted rack secret is all zero",
            Self::ZeroKey => "derived rack secrets key is unusable",
        })
    }
}

impl core::error::Error for OpenError {}

/// The old secrets a configuration carries: strictly increasing epochs, at
/// most [`MAX_RETAINED_SECRETS`]. Secrets zeroize when dropped; `Debug`
/// shows only the epochs.
#[derive(Clone, Default)]
pub struct RetainedSecrets {
    entries: heapless::Deque<(Epoch, RackSecret), MAX_RETAINED_SECRETS>,
}

impl RetainedSecrets {
    /// No retained secrets.
    pub const fn new() -> Self {
        Self {
            entries: heapless::Deque::new(),
        }
    }

    /// Appends the secret of `epoch`, which must be newer than every entry.
    /// A full set is an error rather than a silent eviction: which secret
    /// to give up is the node's decision ([`Self::drop_oldest`]).
    pub fn push(&mut self, epoch: Epoch, secret: RackSecret) -> Result<(), RetainError> {
        if let Some((newest, _)) = self.entries.back()
            && epoch <= *newest
        {
            return Err(RetainError::EpochNotIncreasing);
        }
        self.entries
            .push_back((epoch, secret))
            .map_err(|_| RetainError::Full)
    }

    /// Forgets the oldest secret, returning its epoch (`None` when empty).
    pub fn drop_oldest(&mut self) -> Option<Epoch> {
        self.entries.pop_front().map(|(epoch, _)| epoch)
    }

    /// The secret of `epoch`, if retained.
    pub fn get(&self, epoch: Epoch) -> Option<&RackSecret> {
        self.iter()
            .find(|(entry_epoch, _)| *entry_epoch == epoch)
            .map(|(_, secret)| secret)
    }

    /// The oldest retained epoch.
    pub fn oldest_epoch(&self) -> Option<Epoch> {
        self.entries.front().map(|(epoch, _)| *epoch)
    }

    /// How many secrets are retained.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no secret is retained.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether another [`Self::push`] would fail with [`RetainError::Full`].
    pub fn is_full(&self) -> bool {
        self.entries.is_full()
    }

    /// The entries, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = (Epoch, &RackSecret)> {
        self.entries.iter().map(|(epoch, secret)| (*epoch, secret))
    }
}

#[cfg(feature = "model")]
impl core::hash::Hash for RetainedSecrets {
    fn hash<H: core::hash::Hasher>(&self, h: &mut H) {
        self.len().hash(h);
        self.iter().for_each(|entry| entry.hash(h));
    }
}

impl fmt::Debug for RetainedSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        /// Lists the epochs only, never the secrets.
        struct Epochs<'a>(&'a RetainedSecrets);
        impl fmt::Debug for Epochs<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|(epoch, _)| epoch))
                    .finish()
            }
        }
        f.debug_struct("RetainedSecrets")
            .field("epochs", &Epochs(self))
            .finish()
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for RetainedSecrets {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(f, "RetainedSecrets({=usize} entries)", self.len());
    }
}

/// Old rack secrets encrypted under a key derived from a newer one. Public
/// data: it travels inside configurations.
///
/// Every value has a ciphertext of a whole number of entries plus the tag,
/// at most [`MAX_SEALED_LEN`] bytes: [`Self::from_parts`] and deserialization
/// both refuse anything else, so a malformed length never reaches
/// decryption.
///
/// In JSON the salt and ciphertext are lower-case hex.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "EncryptedRackSecretsWire")]
#[cfg_attr(feature = "model", derive(Hash))]
pub struct EncryptedRackSecrets {
    #[serde(with = "crate::serde_forms::hex_array")]
    salt: [u8; SALT_LEN],
    #[serde(with = "crate::serde_forms::hex_vec")]
    ciphertext: heapless::Vec<u8, MAX_SEALED_LEN>,
}

/// What deserialization reads before the length checks; same fields, so the
/// wire format is exactly what `Serialize` writes.
#[derive(Deserialize)]
#[serde(rename = "EncryptedRackSecrets")]
struct EncryptedRackSecretsWire {
    #[serde(with = "crate::serde_forms::hex_array")]
    salt: [u8; SALT_LEN],
    // heapless refuses more than MAX_SEALED_LEN bytes before allocating.
    #[serde(with = "crate::serde_forms::hex_vec")]
    ciphertext: heapless::Vec<u8, MAX_SEALED_LEN>,
}

impl TryFrom<EncryptedRackSecretsWire> for EncryptedRackSecrets {
    type Error = OpenError;

    fn try_from(wire: EncryptedRackSecretsWire) -> Result<Self, OpenError> {
        check_ciphertext_len(wire.ciphertext.len())?;
        Ok(Self {
            salt: wire.salt,
            ciphertext: wire.ciphertext,
        })
    }
}

impl EncryptedRackSecrets {
    /// Encrypts `old` for the configuration of `epoch` on rack `rack_id`,
    /// whose secret is `secret`, under a fresh salt from `rng`.
    pub fn encrypt<R: TryCryptoRng + ?Sized>(
        rng: &mut R,
        rack_id: &RackId,
        epoch: Epoch,
        secret: &RackSecret,
        old: &RetainedSecrets,
    ) -> Result<Self, SealError> {
        let mut sealed = Self::unfilled();
        sealed.encrypt_into(rng, rack_id, epoch, secret, old)?;
        Ok(sealed)
    }

    /// A value for [`Self::encrypt_into`] to fill: *not* a valid one (its
    /// ciphertext lacks the tag) until filled.
    pub(crate) const fn unfilled() -> Self {
        Self {
            salt: [0; SALT_LEN],
            ciphertext: heapless::Vec::new(),
        }
    }

    /// [`Self::encrypt`] into `self`, so that a caller building a
    /// configuration in place seals straight into it, with no copy on the
    /// stack. After an error `self` is wiped and invalid: discard it. Out of
    /// line: the cipher's state is held only while it runs, never in the
    /// caller's frame.
    #[inline(never)]
    pub(crate) fn encrypt_into<R: TryCryptoRng + ?Sized>(
        &mut self,
        rng: &mut R,
        rack_id: &RackId,
        epoch: Epoch,
        secret: &RackSecret,
        old: &RetainedSecrets,
    ) -> Result<(), SealError> {
        self.ciphertext.clear();
        // Refuse before drawing randomness, so a refused call leaves the RNG
        // untouched.
        if old.iter().any(|(old_epoch, _)| old_epoch >= epoch) {
            return Err(SealError::EpochNotNewer);
        }
        let mut salt = [0; SALT_LEN];
        random::fill(rng, &mut salt)?;
        self.seal_into(
            salt,
            rack_id,
            epoch,
            secret,
            old.iter()
                .map(|(old_epoch, old_secret)| (old_epoch, old_secret.expose_secret())),
        )
    }

    /// Decrypts the old secrets with the `epoch` configuration's `secret`.
    /// Any change to the salt or ciphertext, and any other rack id, epoch or
    /// secret, fails as [`OpenError::Decryption`].
    pub fn decrypt(
        &self,
        rack_id: &RackId,
        epoch: Epoch,
        secret: &RackSecret,
    ) -> Result<RetainedSecrets, OpenError> {
        check_ciphertext_len(self.ciphertext.len())?;
        let key = derive_key(&self.salt, rack_id, epoch, secret).map_err(|_| OpenError::ZeroKey)?;
        open(&key, &self.ciphertext, epoch)
    }

    /// Rebuilds a value from its stored parts, checking only the lengths;
    /// authenticity is checked by [`Self::decrypt`].
    pub fn from_parts(salt: [u8; SALT_LEN], ciphertext: &[u8]) -> Result<Self, OpenError> {
        check_ciphertext_len(ciphertext.len())?;
        let ciphertext =
            heapless::Vec::from_slice(ciphertext).map_err(|_| OpenError::TooManySecrets)?;
        Ok(Self { salt, ciphertext })
    }

    /// The parts, for the in-place decoder of [`crate::wire`] only: it
    /// runs [`Self::check_len`] before the value is used.
    pub(crate) fn parts_mut_unchecked(
        &mut self,
    ) -> (&mut [u8; SALT_LEN], &mut heapless::Vec<u8, MAX_SEALED_LEN>) {
        (&mut self.salt, &mut self.ciphertext)
    }

    /// The length check every value passes (see [`Self::from_parts`]).
    pub(crate) fn check_len(&self) -> Result<(), OpenError> {
        check_ciphertext_len(self.ciphertext.len())
    }

    /// The HKDF salt.
    pub fn salt(&self) -> &[u8; SALT_LEN] {
        &self.salt
    }

    /// The ciphertext, tag included.
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }

    /// The deterministic part of [`Self::encrypt`]: seals `entries` exactly
    /// as given, in order, with no check on their epochs, into `self`. Kept
    /// apart so that tests can fix the salt and build plaintexts `encrypt`
    /// would refuse. After an error `self` is wiped and invalid.
    fn seal_into<'a>(
        &mut self,
        salt: [u8; SALT_LEN],
        rack_id: &RackId,
        epoch: Epoch,
        secret: &RackSecret,
        entries: impl IntoIterator<Item = (Epoch, &'a [u8; SECRET_LEN])>,
    ) -> Result<(), SealError> {
        self.salt = salt;
        let sealed = self.seal_in_place(rack_id, epoch, secret, entries);
        if sealed.is_err() {
            // The buffer may still hold plaintext.
            self.ciphertext.as_mut_slice().zeroize();
            self.ciphertext.clear();
        }
        sealed
    }

    /// Writes the plaintext into the ciphertext buffer, encrypts it there
    /// and appends the tag: the sealed bytes are built where they stay.
    fn seal_in_place<'a>(
        &mut self,
        rack_id: &RackId,
        epoch: Epoch,
        secret: &RackSecret,
        entries: impl IntoIterator<Item = (Epoch, &'a [u8; SECRET_LEN])>,
    ) -> Result<(), SealError> {
        let buffer = &mut self.ciphertext;
        buffer.clear();
        for (entry_epoch, entry_secret) in entries {
            if buffer.len() >= MAX_SEALED_LEN - TAG_LEN {
                return Err(SealError::TooManySecrets);
            }
            let start = buffer.len();
            buffer
                .resize(start + ENTRY_LEN, 0)
                .map_err(|_| SealError::TooManySecrets)?;
            let slot = buffer.get_mut(start..).ok_or(SealError::TooManySecrets)?;
            write_entry(slot, entry_epoch, entry_secret);
        }
        let key = derive_key(&self.salt, rack_id, epoch, secret).map_err(|_| SealError::ZeroKey)?;
        // The only failure is a message too long for ChaCha20 (256 GiB).
        let tag = ChaCha20Poly1305::new(<&Key>::from(&*key))
            .encrypt_inout_detached(&Nonce::default(), b"", buffer.as_mut_slice().into())
            .map_err(|_| SealError::TooManySecrets)?;
        buffer
            .extend_from_slice(&tag)
            .map_err(|_| SealError::TooManySecrets)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for EncryptedRackSecrets {
    fn format(&self, f: defmt::Formatter) {
        defmt::write!(
            f,
            "EncryptedRackSecrets({=usize} bytes)",
            self.ciphertext.len()
        );
    }
}

/// Length checks shared by every way of building an [`EncryptedRackSecrets`].
fn check_ciphertext_len(len: usize) -> Result<(), OpenError> {
    let body_len = len.checked_sub(TAG_LEN).ok_or(OpenError::Truncated)?;
    if !body_len.is_multiple_of(ENTRY_LEN) {
        return Err(OpenError::NotWholeEntries);
    }
    if body_len / ENTRY_LEN > MAX_RETAINED_SECRETS {
        return Err(OpenError::TooManySecrets);
    }
    Ok(())
}

/// Key derivation gave a key that must not be used.
struct UnusableKey;

/// Opens `ciphertext` (tag included) with `key`: the entries, checked as
/// [`EncryptedRackSecrets::decrypt`] says. Out of line, and called after
/// [`derive_key`] returned: the buffer and the cipher's state are never on
/// the stack at the same time as the key derivation's hash states.
#[inline(never)]
fn open(
    key: &[u8; KEY_LEN],
    ciphertext: &[u8],
    epoch: Epoch,
) -> Result<RetainedSecrets, OpenError> {
    let body_len = ciphertext.len().saturating_sub(TAG_LEN);
    let (body, tag) = ciphertext
        .split_at_checked(body_len)
        .ok_or(OpenError::Truncated)?;
    let tag = <&Tag>::try_from(tag).map_err(|_| OpenError::Truncated)?;
    // Decrypt in a stack buffer that is wiped on every return path.
    let mut buffer = Zeroizing::new([0u8; MAX_SEALED_LEN]);
    let plaintext = buffer
        .get_mut(..body_len)
        .ok_or(OpenError::TooManySecrets)?;
    plaintext.copy_from_slice(body);
    ChaCha20Poly1305::new(<&Key>::from(key))
        .decrypt_inout_detached(&Nonce::default(), b"", plaintext.into(), tag)
        .map_err(|_| OpenError::Decryption)?;
    parse_entries(plaintext, epoch)
}

/// The single-use ChaCha20-Poly1305 key for one salt, rack and epoch. Out
/// of line: its hash states (about 2 KiB) are held only while it runs.
#[inline(never)]
fn derive_key(
    salt: &[u8; SALT_LEN],
    rack_id: &RackId,
    epoch: Epoch,
    secret: &RackSecret,
) -> Result<Zeroizing<[u8; KEY_LEN]>, UnusableKey> {
    // `SimpleHkdf`: sha3 0.12 offers no block-level core, which the faster
    // `Hkdf` (eager HMAC) needs. The result is the same HKDF.
    let hkdf = SimpleHkdf::<Sha3_256>::new(Some(salt), secret.expose_secret());
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    // Fails only for outputs over 255 hash lengths; ours is one.
    hkdf.expand_multi_info(
        &[KDF_CONTEXT, rack_id.as_bytes(), &epoch.to_be_bytes()],
        key.as_mut_slice(),
    )
    .map_err(|_| UnusableKey)?;
    check_key_not_zero(&key)?;
    Ok(key)
}

/// Refuses an all-zero key, revealing only that one bit.
fn check_key_not_zero(key: &[u8; KEY_LEN]) -> Result<(), UnusableKey> {
    if bool::from(key.ct_eq(&[0; KEY_LEN])) {
        Err(UnusableKey)
    } else {
        Ok(())
    }
}

/// Lays out one plaintext entry: epoch big-endian, then the secret.
fn write_entry(slot: &mut [u8], epoch: Epoch, secret: &[u8; SECRET_LEN]) {
    let bytes = epoch
        .to_be_bytes()
        .into_iter()
        .chain(secret.iter().copied());
    for (dst, src) in slot.iter_mut().zip(bytes) {
        *dst = src;
    }
}

/// Reads authenticated plaintext back into entries, checking what the
/// protocol promises about them.
fn parse_entries(plaintext: &[u8], opened: Epoch) -> Result<RetainedSecrets, OpenError> {
    let entries = plaintext.chunks_exact(ENTRY_LEN);
    if !entries.remainder().is_empty() {
        return Err(OpenError::NotWholeEntries);
    }
    let mut retained = RetainedSecrets::new();
    for entry in entries {
        let (epoch_bytes, secret_bytes) = entry
            .split_first_chunk::<8>()
            .ok_or(OpenError::NotWholeEntries)?;
        let secret_bytes =
            <&[u8; SECRET_LEN]>::try_from(secret_bytes).map_err(|_| OpenError::NotWholeEntries)?;
        let entry_epoch = Epoch(u64::from_be_bytes(*epoch_bytes));
        if entry_epoch >= opened {
            return Err(OpenError::EpochNotOlder);
        }
        let entry_secret =
            RackSecret::from_bytes(secret_bytes).map_err(|_| OpenError::ZeroSecret)?;
        retained
            .push(entry_epoch, entry_secret)
            .map_err(|e| match e {
                RetainError::Full => OpenError::TooManySecrets,
                RetainError::EpochNotIncreasing => OpenError::EpochsNotIncreasing,
            })?;
    }
    Ok(retained)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::{SeedableRng, TryRng};

    /// Vectors written by `core/tests/kat/sealed_kat.py` with Python's
    /// `cryptography` package, an implementation independent of this one.
    const KAT: &str = include_str!("../../tests/kat/sealed_vectors.txt");

    const RACK: RackId = RackId([0x42; 16]);
    const EPOCH: Epoch = Epoch(20);

    /// An RNG whose every call fails, as a broken hardware RNG might.
    struct FailingRng;
    #[derive(Debug)]
    struct Broken;
    impl core::fmt::Display for Broken {
        fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
            f.write_str("broken")
        }
    }
    impl core::error::Error for Broken {}
    impl TryRng for FailingRng {
        type Error = Broken;
        fn try_next_u32(&mut self) -> Result<u32, Broken> {
            Err(Broken)
        }
        fn try_next_u64(&mut self) -> Result<u64, Broken> {
            Err(Broken)
        }
        fn try_fill_bytes(&mut self, _: &mut [u8]) -> Result<(), Broken> {
            Err(Broken)
        }
    }
    impl TryCryptoRng for FailingRng {}

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    fn secret(rng: &mut ChaCha20Rng) -> RackSecret {
        RackSecret::generate(rng).unwrap()
    }

    /// `count` secrets for epochs 1, 2, ..., drawn from `rng`.
    fn retained(rng: &mut ChaCha20Rng, count: u64) -> RetainedSecrets {
        let mut old = RetainedSecrets::new();
        for epoch in 1..=count {
            old.push(Epoch(epoch), secret(rng)).unwrap();
        }
        old
    }

    fn assert_same_entries(a: &RetainedSecrets, b: &RetainedSecrets) {
        assert_eq!(a.len(), b.len());
        for ((epoch_a, secret_a), (epoch_b, secret_b)) in a.iter().zip(b.iter()) {
            assert_eq!(epoch_a, epoch_b);
            assert!(bool::from(secret_a.ct_eq(secret_b)));
        }
    }

    /// Sealed data for three old epochs, with the secret that opens it.
    fn sample() -> (EncryptedRackSecrets, RackSecret, RetainedSecrets) {
        let mut rng = rng(7);
        let old = retained(&mut rng, 3);
        let new = secret(&mut rng);
        let sealed = EncryptedRackSecrets::encrypt(&mut rng, &RACK, EPOCH, &new, &old).unwrap();
        (sealed, new, old)
    }

    // ---- Known-answer vectors -------------------------------------------

    fn unhex<const N: usize>(text: &str) -> heapless::Vec<u8, N> {
        assert!(text.len().is_multiple_of(2), "odd hex length: {text}");
        text.as_bytes()
            .chunks(2)
            .map(|pair| u8::from_str_radix(core::str::from_utf8(pair).unwrap(), 16).unwrap())
            .collect()
    }

    fn unhex_array<const N: usize>(text: &str) -> [u8; N] {
        <[u8; N]>::try_from(unhex::<N>(text).as_slice()).unwrap()
    }

    struct Vector {
        name: &'static str,
        rack_id: RackId,
        epoch: Epoch,
        secret: RackSecret,
        salt: [u8; SALT_LEN],
        old: RetainedSecrets,
        key: [u8; KEY_LEN],
        ciphertext: heapless::Vec<u8, MAX_SEALED_LEN>,
    }

    fn parse_vector(block: &'static str) -> Option<Vector> {
        let mut name = None;
        let mut rack_id = None;
        let mut epoch = None;
        let mut secret = None;
        let mut salt = None;
        let mut old = RetainedSecrets::new();
        let mut key = None;
        let mut ciphertext = None;
        let lines = block
            .lines()
            .filter(|line| !line.is_empty() && !line.starts_with('#'));
        for line in lines {
            let (field, value) = line.split_once('=').unwrap();
            match field {
                "name" => name = Some(value),
                "rack_id" => rack_id = Some(RackId(unhex_array(value))),
                "epoch" => epoch = Some(Epoch(value.parse().unwrap())),
                "secret" => secret = Some(RackSecret::from_bytes(&unhex_array(value)).unwrap()),
                "salt" => salt = Some(unhex_array(value)),
                "old" => {
                    let (old_epoch, old_secret) = value.split_once(':').unwrap();
                    let old_secret = RackSecret::from_bytes(&unhex_array(old_secret)).unwrap();
                    old.push(Epoch(old_epoch.parse().unwrap()), old_secret)
                        .unwrap();
                }
                "key" => key = Some(unhex_array(value)),
                "ciphertext" => ciphertext = Some(unhex(value)),
                other => panic!("unknown field {other:?} in vector file"),
            }
        }
        // A block of comments only (the file header) is not a vector.
        name?;
        Some(Vector {
            name: name.unwrap(),
            rack_id: rack_id.unwrap(),
            epoch: epoch.unwrap(),
            secret: secret.unwrap(),
            salt: salt.unwrap(),
            old,
            key: key.unwrap(),
            ciphertext: ciphertext.unwrap(),
        })
    }

    fn vectors() -> impl Iterator<Item = Vector> {
        KAT.split("\n\n").filter_map(parse_vector)
    }

    #[test]
    fn vector_file_covers_the_sizes_that_matter() {
        let mut sizes: heapless::Vec<usize, 8> = vectors().map(|v| v.old.len()).collect();
        sizes.sort_unstable();
        assert_eq!(sizes.as_slice(), &[0, 0, 1, 3, MAX_RETAINED_SECRETS]);
    }

    #[test]
    fn derived_keys_match_the_python_vectors() {
        for v in vectors() {
            let key = derive_key(&v.salt, &v.rack_id, v.epoch, &v.secret)
                .ok()
                .unwrap();
            assert_eq!(*key, v.key, "key of {}", v.name);
        }
    }

    /// `seal_into` a new value.
    fn seal_with_salt<'a>(
        salt: [u8; SALT_LEN],
        rack_id: &RackId,
        epoch: Epoch,
        secret: &RackSecret,
        entries: impl IntoIterator<Item = (Epoch, &'a [u8; SECRET_LEN])>,
    ) -> Result<EncryptedRackSecrets, SealError> {
        let mut sealed = EncryptedRackSecrets::unfilled();
        sealed.seal_into(salt, rack_id, epoch, secret, entries)?;
        Ok(sealed)
    }

    #[test]
    fn ciphertexts_match_the_python_vectors() {
        for v in vectors() {
            let sealed = seal_with_salt(
                v.salt,
                &v.rack_id,
                v.epoch,
                &v.secret,
                v.old.iter().map(|(e, s)| (e, s.expose_secret())),
            )
            .unwrap();
            assert_eq!(sealed.salt(), &v.salt, "salt of {}", v.name);
            assert_eq!(sealed.ciphertext(), v.ciphertext.as_slice(), "{}", v.name);
        }
    }

    #[test]
    fn python_vectors_decrypt_to_their_entries() {
        for v in vectors() {
            let sealed = EncryptedRackSecrets::from_parts(v.salt, &v.ciphertext).unwrap();
            let opened = sealed.decrypt(&v.rack_id, v.epoch, &v.secret).unwrap();
            assert_same_entries(&opened, &v.old);
        }
    }

    #[test]
    fn encrypt_uses_the_next_32_bytes_of_the_rng_as_salt() {
        let mut rng_a = rng(3);
        let old = retained(&mut rng_a, 2);
        let new = secret(&mut rng_a);
        let mut rng_b = rng_a.clone();
        let sealed = EncryptedRackSecrets::encrypt(&mut rng_a, &RACK, EPOCH, &new, &old).unwrap();

        let mut salt = [0; SALT_LEN];
        rng_b.try_fill_bytes(&mut salt).unwrap();
        let expected = seal_with_salt(
            salt,
            &RACK,
            EPOCH,
            &new,
            old.iter().map(|(e, s)| (e, s.expose_secret())),
        )
        .unwrap();
        assert_eq!(sealed, expected);
    }

    // ---- Round trips and refusals ---------------------------------------

    #[test]
    fn every_count_from_zero_to_the_maximum_round_trips() {
        let mut rng = rng(1);
        for count in 0..=MAX_RETAINED_SECRETS as u64 {
            let old = retained(&mut rng, count);
            let new = secret(&mut rng);
            let epoch = Epoch(count + 1);
            let sealed = EncryptedRackSecrets::encrypt(&mut rng, &RACK, epoch, &new, &old).unwrap();
            assert_eq!(
                sealed.ciphertext().len(),
                count as usize * ENTRY_LEN + TAG_LEN
            );
            assert_same_entries(&sealed.decrypt(&RACK, epoch, &new).unwrap(), &old);
        }
    }

    #[test]
    fn two_encryptions_of_the_same_secrets_differ() {
        let (first, new, old) = sample();
        let second = EncryptedRackSecrets::encrypt(&mut rng(8), &RACK, EPOCH, &new, &old).unwrap();
        assert_ne!(first.salt(), second.salt());
        assert_ne!(first.ciphertext(), second.ciphertext());
    }

    #[test]
    fn changing_any_ciphertext_byte_fails() {
        let (sealed, new, _) = sample();
        for i in 0..sealed.ciphertext().len() {
            let mut bytes: heapless::Vec<u8, MAX_SEALED_LEN> =
                heapless::Vec::from_slice(sealed.ciphertext()).unwrap();
            bytes[i] ^= 0x01;
            let tampered = EncryptedRackSecrets::from_parts(*sealed.salt(), &bytes).unwrap();
            assert_eq!(
                tampered.decrypt(&RACK, EPOCH, &new).err(),
                Some(OpenError::Decryption),
                "byte {i}"
            );
        }
    }

    #[test]
    fn changing_any_salt_byte_fails() {
        let (sealed, new, _) = sample();
        for i in 0..SALT_LEN {
            let mut salt = *sealed.salt();
            salt[i] ^= 0x80;
            let tampered = EncryptedRackSecrets::from_parts(salt, sealed.ciphertext()).unwrap();
            assert_eq!(
                tampered.decrypt(&RACK, EPOCH, &new).err(),
                Some(OpenError::Decryption),
                "byte {i}"
            );
        }
    }

    #[test]
    fn wrong_rack_epoch_or_secret_fails() {
        let (sealed, new, _) = sample();
        let mut other_rack = RACK;
        other_rack.0[15] ^= 1;
        let other_secret = secret(&mut rng(99));
        assert_eq!(
            sealed.decrypt(&other_rack, EPOCH, &new).err(),
            Some(OpenError::Decryption)
        );
        assert_eq!(
            sealed.decrypt(&RACK, Epoch(EPOCH.0 + 1), &new).err(),
            Some(OpenError::Decryption)
        );
        assert_eq!(
            sealed.decrypt(&RACK, Epoch(EPOCH.0 - 1), &new).err(),
            Some(OpenError::Decryption)
        );
        assert_eq!(
            sealed.decrypt(&RACK, EPOCH, &other_secret).err(),
            Some(OpenError::Decryption)
        );
        // And the right inputs still work, so the failures above are real.
        assert!(sealed.decrypt(&RACK, EPOCH, &new).is_ok());
    }

    #[test]
    fn dropping_a_whole_entry_fails_to_authenticate() {
        let (sealed, new, _) = sample();
        let ciphertext = sealed.ciphertext();
        // Without the last entry (but with the tag): lengths pass, the tag
        // does not.
        let body_len = ciphertext.len() - TAG_LEN;
        let mut shortened: heapless::Vec<u8, MAX_SEALED_LEN> =
            heapless::Vec::from_slice(&ciphertext[..body_len - ENTRY_LEN]).unwrap();
        shortened
            .extend_from_slice(&ciphertext[body_len..])
            .unwrap();
        let shortened = EncryptedRackSecrets::from_parts(*sealed.salt(), &shortened).unwrap();
        assert_eq!(
            shortened.decrypt(&RACK, EPOCH, &new).err(),
            Some(OpenError::Decryption)
        );
    }

    #[test]
    fn lengths_are_checked_when_building() {
        let bytes = [0u8; MAX_SEALED_LEN + ENTRY_LEN];
        let salt = [1; SALT_LEN];
        for len in 0..TAG_LEN {
            assert_eq!(
                EncryptedRackSecrets::from_parts(salt, &bytes[..len]).err(),
                Some(OpenError::Truncated),
                "length {len}"
            );
        }
        for len in [
            TAG_LEN + 1,
            TAG_LEN + ENTRY_LEN - 1,
            TAG_LEN + ENTRY_LEN + 1,
        ] {
            assert_eq!(
                EncryptedRackSecrets::from_parts(salt, &bytes[..len]).err(),
                Some(OpenError::NotWholeEntries),
                "length {len}"
            );
        }
        assert_eq!(
            EncryptedRackSecrets::from_parts(salt, &bytes).err(),
            Some(OpenError::TooManySecrets)
        );
        for len in [TAG_LEN, TAG_LEN + ENTRY_LEN, MAX_SEALED_LEN] {
            let sealed = EncryptedRackSecrets::from_parts(salt, &bytes[..len]).unwrap();
            assert_eq!(sealed.ciphertext(), &bytes[..len]);
            assert_eq!(sealed.salt(), &salt);
        }
    }

    #[test]
    fn sealing_more_than_the_maximum_is_refused() {
        let filler = [7u8; SECRET_LEN];
        let too_many = (1..=MAX_RETAINED_SECRETS as u64 + 1).map(|e| (Epoch(e), &filler));
        let new = secret(&mut rng(2));
        assert_eq!(
            seal_with_salt([0; SALT_LEN], &RACK, EPOCH, &new, too_many.clone()).err(),
            Some(SealError::TooManySecrets)
        );
        // Sealing in place: a refusal leaves nothing behind, plaintext
        // included, even over a value that held a sealed one.
        let (mut sealed, _, _) = sample();
        assert_eq!(
            sealed.seal_into([0; SALT_LEN], &RACK, EPOCH, &new, too_many),
            Err(SealError::TooManySecrets)
        );
        assert!(sealed.ciphertext().is_empty());
    }

    #[test]
    fn encrypt_refuses_old_epochs_not_older_than_the_new_one() {
        let mut rng = rng(4);
        let new = secret(&mut rng);
        let mut old = RetainedSecrets::new();
        old.push(Epoch(5), secret(&mut rng)).unwrap();
        old.push(EPOCH, secret(&mut rng)).unwrap();
        assert_eq!(
            EncryptedRackSecrets::encrypt(&mut rng, &RACK, EPOCH, &new, &old).err(),
            Some(SealError::EpochNotNewer)
        );
        assert_eq!(
            EncryptedRackSecrets::encrypt(&mut rng, &RACK, Epoch(5), &new, &old).err(),
            Some(SealError::EpochNotNewer)
        );
    }

    #[test]
    fn a_failing_rng_is_an_error() {
        let new = secret(&mut rng(5));
        assert_eq!(
            EncryptedRackSecrets::encrypt(
                &mut FailingRng,
                &RACK,
                EPOCH,
                &new,
                &RetainedSecrets::new()
            )
            .err(),
            Some(SealError::Rng(RngError))
        );
    }

    /// Seals `entries` as given (even ones `encrypt` refuses) and opens the
    /// result with the right inputs.
    fn open_hand_built(entries: &[(u64, [u8; SECRET_LEN])]) -> Result<RetainedSecrets, OpenError> {
        let new = secret(&mut rng(6));
        let sealed = seal_with_salt(
            [9; SALT_LEN],
            &RACK,
            EPOCH,
            &new,
            entries.iter().map(|(e, s)| (Epoch(*e), s)),
        )
        .unwrap();
        sealed.decrypt(&RACK, EPOCH, &new)
    }

    #[test]
    fn authentic_plaintexts_that_break_the_rules_are_refused() {
        let a = [0xaa; SECRET_LEN];
        let b = [0xbb; SECRET_LEN];
        // Sanity: the same helper accepts well-formed entries.
        assert_eq!(open_hand_built(&[(3, a), (4, b)]).unwrap().len(), 2);

        assert_eq!(
            open_hand_built(&[(3, a), (3, b)]).err(),
            Some(OpenError::EpochsNotIncreasing)
        );
        assert_eq!(
            open_hand_built(&[(5, a), (4, b)]).err(),
            Some(OpenError::EpochsNotIncreasing)
        );
        assert_eq!(
            open_hand_built(&[(3, a), (EPOCH.0, b)]).err(),
            Some(OpenError::EpochNotOlder)
        );
        assert_eq!(
            open_hand_built(&[(EPOCH.0 + 1, a)]).err(),
            Some(OpenError::EpochNotOlder)
        );
        assert_eq!(
            open_hand_built(&[(3, a), (4, [0; SECRET_LEN])]).err(),
            Some(OpenError::ZeroSecret)
        );
    }

    #[test]
    fn an_all_zero_key_is_refused() {
        assert!(check_key_not_zero(&[0; KEY_LEN]).is_err());
        let mut almost = [0; KEY_LEN];
        almost[KEY_LEN - 1] = 1;
        assert!(check_key_not_zero(&almost).is_ok());
    }

    #[test]
    fn plaintext_layout_is_epoch_big_endian_then_secret() {
        let mut slot = [0u8; ENTRY_LEN];
        write_entry(&mut slot, Epoch(0x0102_0304_0506_0708), &[0xee; SECRET_LEN]);
        assert_eq!(slot[..8], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(slot[8..], [0xee; SECRET_LEN]);
    }

    // ---- Wire format ----------------------------------------------------

    #[test]
    fn postcard_round_trip_and_layout() {
        let (sealed, new, old) = sample();
        let mut buf = [0u8; MAX_SEALED_LEN + SALT_LEN + 8];
        let bytes = postcard::to_slice(&sealed, &mut buf).unwrap();
        // The salt's 32 bytes, the ciphertext length as a varint, the bytes.
        let len = sealed.ciphertext().len();
        assert_eq!(len, 3 * ENTRY_LEN + TAG_LEN);
        assert_eq!(&bytes[..SALT_LEN], sealed.salt());
        assert_eq!(
            bytes[SALT_LEN..SALT_LEN + 2],
            [(len as u8) | 0x80, (len >> 7) as u8]
        );
        assert_eq!(&bytes[SALT_LEN + 2..], sealed.ciphertext());

        let back: EncryptedRackSecrets = postcard::from_bytes(bytes).unwrap();
        assert_eq!(back, sealed);
        assert_same_entries(&back.decrypt(&RACK, EPOCH, &new).unwrap(), &old);
    }

    /// Same serde shape as `EncryptedRackSecrets`, but any length.
    #[derive(Serialize)]
    struct AnyLength<'a> {
        salt: [u8; SALT_LEN],
        ciphertext: &'a [u8],
    }

    fn decode_any_length(len: usize) -> postcard::Result<EncryptedRackSecrets> {
        let ciphertext = [3u8; MAX_SEALED_LEN + 1];
        let raw = AnyLength {
            salt: [4; SALT_LEN],
            ciphertext: &ciphertext[..len],
        };
        let mut buf = [0u8; MAX_SEALED_LEN + SALT_LEN + 8];
        let bytes = postcard::to_slice(&raw, &mut buf).unwrap();
        postcard::from_bytes(bytes)
    }

    #[test]
    fn deserialization_refuses_bad_lengths() {
        for len in [
            0,
            TAG_LEN - 1,
            TAG_LEN + 1,
            TAG_LEN + ENTRY_LEN + 1,
            MAX_SEALED_LEN + 1,
        ] {
            assert!(decode_any_length(len).is_err(), "length {len}");
        }
        for len in [TAG_LEN, TAG_LEN + ENTRY_LEN, MAX_SEALED_LEN] {
            assert_eq!(decode_any_length(len).unwrap().ciphertext().len(), len);
        }
    }

    // ---- RetainedSecrets ------------------------------------------------

    #[test]
    fn retained_secrets_are_bounded_and_drop_the_oldest() {
        let mut rng = rng(10);
        let mut old = retained(&mut rng, MAX_RETAINED_SECRETS as u64);
        assert!(old.is_full());
        assert_eq!(old.len(), MAX_RETAINED_SECRETS);
        let next = Epoch(MAX_RETAINED_SECRETS as u64 + 1);
        assert_eq!(old.push(next, secret(&mut rng)), Err(RetainError::Full));

        assert_eq!(old.oldest_epoch(), Some(Epoch(1)));
        assert_eq!(old.drop_oldest(), Some(Epoch(1)));
        assert_eq!(old.oldest_epoch(), Some(Epoch(2)));
        assert!(old.get(Epoch(1)).is_none());
        assert!(!old.is_full());
        let kept = secret(&mut rng);
        old.push(next, kept.clone()).unwrap();
        assert!(old.is_full());
        assert!(bool::from(old.get(next).unwrap().ct_eq(&kept)));
        assert!(old.iter().map(|(e, _)| e.0).eq(2..=next.0));
    }

    #[test]
    fn retained_epochs_must_increase() {
        let mut rng = rng(11);
        let mut old = RetainedSecrets::default();
        assert!(old.is_empty());
        assert_eq!(old.drop_oldest(), None);
        assert_eq!(old.oldest_epoch(), None);
        old.push(Epoch(4), secret(&mut rng)).unwrap();
        assert_eq!(
            old.push(Epoch(4), secret(&mut rng)),
            Err(RetainError::EpochNotIncreasing)
        );
        assert_eq!(
            old.push(Epoch(3), secret(&mut rng)),
            Err(RetainError::EpochNotIncreasing)
        );
        old.push(Epoch(9), secret(&mut rng)).unwrap();
        assert_eq!(old.len(), 2);
        assert!(old.get(Epoch(5)).is_none());
    }

    #[test]
    fn retained_secrets_debug_shows_only_epochs() {
        let mut old = RetainedSecrets::new();
        old.push(
            Epoch(1),
            RackSecret::from_bytes(&[0xab; SECRET_LEN]).unwrap(),
        )
        .unwrap();
        old.push(
            Epoch(2),
            RackSecret::from_bytes(&[0xcd; SECRET_LEN]).unwrap(),
        )
        .unwrap();
        let mut out = heapless::String::<96>::new();
        core::fmt::write(&mut out, format_args!("{old:?}")).unwrap();
        assert_eq!(
            out.as_str(),
            "RetainedSecrets { epochs: [Epoch(1), Epoch(2)] }"
        );
    }
}
