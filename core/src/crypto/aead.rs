//! ChaCha20-Poly1305 (RFC 8439) as [`sealed`](super::sealed) uses it: the
//! `chacha20poly1305` crate's construction, over a ChaCha20 that leaves out
//! one check the construction already makes, so that no panic path is left.
//!
//! `chacha20poly1305` applies its keystream through the `cipher` crate's
//! panicking methods (`apply_keystream`, `.expect("end of keystream
//! reached")`). The check behind that `expect` compares the request against
//! the room left in ChaCha20's 32-bit block counter, which lives in the
//! cipher's state, so the compiler cannot prove it always passes and the
//! panic stays in the binary (the service processor's link-time no-panic
//! check fails on it).
//!
//! Here it always passes, because of how the construction drives the cipher:
//! a fresh cipher per message, 32 bytes of block 0 for the Poly1305 key, a
//! seek to block 1, then the message, which the construction itself refuses
//! (`aead::Error`) from `u32::MAX` blocks up, before any keystream is
//! applied. Block 1 plus fewer than `u32::MAX` blocks never wraps the
//! counter. [`OneMessageChaCha20`] therefore reports room for every request
//! and hands the work to `chacha20`'s own unchecked methods; the keystream,
//! the seek and the AEAD are the published crates', unchanged (the tests
//! check every output against `ChaCha20Poly1305`, and `sealed`'s known-answer
//! vectors come from Python's `cryptography`).

use chacha20::ChaCha20;
use chacha20::cipher::consts::{U12, U32};
use chacha20::cipher::{
    InOutBuf, IvSizeUser, KeyIvInit, KeySizeUser, OverflowError, SeekNum, StreamCipher,
    StreamCipherError, StreamCipherSeek,
};
use chacha20poly1305::ChaChaPoly1305;

/// ChaCha20-Poly1305 with a 96-bit nonce: the same cipher as
/// `chacha20poly1305::ChaCha20Poly1305`, without its panic path.
pub(crate) type ChaCha20Poly1305 = ChaChaPoly1305<OneMessageChaCha20, U12>;

/// IETF ChaCha20 as `ChaChaPoly1305` drives it for one message (see the
/// module doc): only that construction may use it, since it answers every
/// keystream request as if there were room.
pub(crate) struct OneMessageChaCha20(ChaCha20);

impl KeySizeUser for OneMessageChaCha20 {
    type KeySize = U32;
}

impl IvSizeUser for OneMessageChaCha20 {
    type IvSize = U12;
}

impl KeyIvInit for OneMessageChaCha20 {
    #[inline]
    fn new(key: &chacha20::cipher::Key<Self>, iv: &chacha20::cipher::Iv<Self>) -> Self {
        Self(ChaCha20::new(key, iv))
    }
}

impl StreamCipher for OneMessageChaCha20 {
    /// Always room: the construction refuses, before asking, any message
    /// that would wrap the counter (module doc).
    #[inline]
    fn check_remaining(&self, _data_len: usize) -> Result<(), StreamCipherError> {
        Ok(())
    }

    #[inline]
    fn unchecked_apply_keystream_inout(&mut self, buf: InOutBuf<'_, '_, u8>) {
        self.0.unchecked_apply_keystream_inout(buf);
    }

    #[inline]
    fn unchecked_write_keystream(&mut self, buf: &mut [u8]) {
        self.0.unchecked_write_keystream(buf);
    }
}

impl StreamCipherSeek for OneMessageChaCha20 {
    #[inline]
    fn try_current_pos<T: SeekNum>(&self) -> Result<T, OverflowError> {
        self.0.try_current_pos()
    }

    #[inline]
    fn try_seek<T: SeekNum>(&mut self, pos: T) -> Result<(), StreamCipherError> {
        self.0.try_seek(pos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::{AeadInOut, KeyInit};
    use proptest::prelude::*;

    proptest! {
        /// Same ciphertext and tag as the crate's own type, any key, nonce,
        /// associated data and length up to several blocks; and each opens
        /// what the other sealed.
        #[test]
        fn seals_and_opens_exactly_like_chacha20poly1305(
            key in any::<[u8; 32]>(),
            nonce in any::<[u8; 12]>(),
            ad in proptest::collection::vec(any::<u8>(), 0..40),
            plaintext in proptest::collection::vec(any::<u8>(), 0..300),
        ) {
            let key = chacha20poly1305::Key::from(key);
            let nonce = chacha20poly1305::Nonce::from(nonce);
            let ours = ChaCha20Poly1305::new(&key);
            let reference = chacha20poly1305::ChaCha20Poly1305::new(&key);

            let mut sealed = plaintext.clone();
            let tag = ours
                .encrypt_inout_detached(&nonce, &ad, sealed.as_mut_slice().into())
                .unwrap();
            let mut expected = plaintext.clone();
            let expected_tag = reference
                .encrypt_inout_detached(&nonce, &ad, expected.as_mut_slice().into())
                .unwrap();
            prop_assert_eq!(&sealed, &expected);
            prop_assert_eq!(tag, expected_tag);

            let mut opened = expected.clone();
            ours.decrypt_inout_detached(&nonce, &ad, opened.as_mut_slice().into(), &expected_tag)
                .unwrap();
            prop_assert_eq!(&opened, &plaintext);
            let mut opened = sealed.clone();
            reference
                .decrypt_inout_detached(&nonce, &ad, opened.as_mut_slice().into(), &tag)
                .unwrap();
            prop_assert_eq!(&opened, &plaintext);

            // A flipped tag bit still fails, and leaves the ciphertext alone.
            let mut bad_tag = tag;
            if let Some(byte) = bad_tag.first_mut() {
                *byte ^= 1;
            }
            let mut untouched = sealed.clone();
            prop_assert!(ours
                .decrypt_inout_detached(&nonce, &ad, untouched.as_mut_slice().into(), &bad_tag)
                .is_err());
            prop_assert_eq!(&untouched, &sealed);
        }
    }
}
