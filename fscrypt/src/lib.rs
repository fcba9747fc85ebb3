//! `tq-fscrypt`: the four fscrypt ioctls a key manager needs on Linux
//! (v2 policies, `Documentation/filesystems/fscrypt.rst`):
//!
//! - [`add_key`]: `FS_IOC_ADD_ENCRYPTION_KEY`, a raw key into the file
//!   system's keyring, answering its [`KeyIdentifier`];
//! - [`set_policy`]: `FS_IOC_SET_ENCRYPTION_POLICY` with a v2 policy
//!   naming that identifier (AES-256-XTS contents, AES-256-CTS names,
//!   names padded to 32 bytes) on an empty directory. The kernel accepts
//!   the same policy again and refuses another with `EEXIST`, so setting
//!   it on every unlock is how a directory is encrypted "on first use"
//!   and how a key that is not the directory's is caught;
//! - [`remove_key`]: `FS_IOC_REMOVE_ENCRYPTION_KEY`, which locks every
//!   directory under that key (files still open stay readable until
//!   closed: [`Removal::FilesBusy`]);
//! - [`key_status`], `FS_IOC_GET_ENCRYPTION_KEY_STATUS`: whether a key is in;
//! - [`policy_identifier`], `FS_IOC_GET_ENCRYPTION_POLICY_EX`: which key a
//!   directory is under (to lock it without the key).
//!
//! # Why this crate has `unsafe`
//!
//! No maintained crate offers these ioctls (there is none on crates.io
//! for fscrypt; Debian's `fscrypt` tool manages its own protectors and
//! metadata and would need the key in a file), and an ioctl passes raw
//! pointers. The unsafe code is the private `ioctl` module alone: each call goes
//! through rustix's typed `Updater`/`Setter`, with the kernel's own struct
//! layouts from `linux-raw-sys`, and each block says why it is sound.
//! Every other crate of the workspace stays `forbid(unsafe_code)`.
//!
//! The raw key is copied into the one buffer the kernel reads, which is
//! zeroized when the call returns; the kernel keeps its own copy until the
//! key is removed or the file system unmounted.

mod ioctl;

use std::fmt;
use std::io;
use std::os::fd::AsFd;

/// Fewest bytes of a raw key for the policy [`set_policy`] sets: AES-256-XTS
/// takes a 64-byte key, and the kernel refuses a master key shorter than
/// the longest key its policy derives.
pub const KEY_LEN: usize = 64;

/// The kernel's name for a v2 key: a hash of the key, not secret (16 bytes).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct KeyIdentifier(pub [u8; 16]);

impl fmt::Debug for KeyIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeyIdentifier({self})")
    }
}

impl fmt::Display for KeyIdentifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// A raw key of [`KEY_LEN`] bytes; zeroized on drop, no bytes in `Debug`;
/// boxed, so moving it leaves no copy behind.
pub struct RawKey(Box<zeroize::Zeroizing<[u8; KEY_LEN]>>);

impl RawKey {
    /// A key whose bytes `fill` writes in place (no copy of them is made
    /// on the way).
    pub fn new_with(fill: impl FnOnce(&mut [u8; KEY_LEN])) -> Self {
        let mut key = Box::new(zeroize::Zeroizing::new([0u8; KEY_LEN]));
        fill(&mut key);
        Self(key)
    }

    /// Takes the key's bytes (the caller's copy is its own to zeroize).
    pub fn new(bytes: [u8; KEY_LEN]) -> Self {
        Self::new_with(|key| *key = bytes)
    }
}

impl fmt::Debug for RawKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RawKey(..)")
    }
}

/// What [`remove_key`] achieved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Removal {
    /// The key is gone: every directory under it is locked.
    Removed,
    /// The key is gone but files opened with it are still in use; they
    /// lock when closed (removing again then finishes the job).
    FilesBusy,
    /// Other users had added the key too; only this user's claim went.
    OtherUsers,
}

/// A key's presence in a file system ([`key_status`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyStatus {
    /// Not added: directories under it are locked.
    Absent,
    /// Added: directories under it are unlocked.
    Present,
    /// Removed, but files under it were in use and are not yet locked.
    IncompletelyRemoved,
}

/// Adds `key` to the file system `fs` is on (any file or directory of it);
/// returns the key's identifier. Adding a key that is there already is
/// fine. Needs `CAP_SYS_ADMIN` or, for v2 keys, nothing (a user's claim).
pub fn add_key(fs: impl AsFd, key: &RawKey) -> io::Result<KeyIdentifier> {
    ioctl::add_key(fs.as_fd(), &key.0)
}

/// Sets the v2 policy of `id` on the directory `dir` (empty, or already
/// under this very policy). `EEXIST`: the directory is under another
/// policy (another key); `ENOTEMPTY`: unencrypted and not empty;
/// `ENOKEY`: `id` was not added.
pub fn set_policy(dir: impl AsFd, id: &KeyIdentifier) -> io::Result<()> {
    ioctl::set_policy(dir.as_fd(), id)
}

/// Removes the key `id` from the file system `fs` is on.
pub fn remove_key(fs: impl AsFd, id: &KeyIdentifier) -> io::Result<Removal> {
    ioctl::remove_key(fs.as_fd(), id)
}

/// The key identifier of the directory's v2 policy; `None` if it is not
/// encrypted (an error if it has a v1 policy).
pub fn policy_identifier(dir: impl AsFd) -> io::Result<Option<KeyIdentifier>> {
    ioctl::policy_identifier(dir.as_fd())
}

/// Whether the key `id` is in the file system `fs` is on.
pub fn key_status(fs: impl AsFd, id: &KeyIdentifier) -> io::Result<KeyStatus> {
    ioctl::key_status(fs.as_fd(), id)
}
