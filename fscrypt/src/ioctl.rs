//! The ioctl calls themselves: the only `unsafe` code of the workspace
//! (see the crate doc). Each block's soundness argument is the same two
//! points, spelled out where they apply: the opcode matches the argument
//! type the kernel reads or writes (the kernel's own definitions, from
//! `linux-raw-sys`), and the argument outlives the call (it is borrowed
//! by rustix's `Updater`/`Setter` for the call only).
#![allow(unsafe_code)]

use std::io;
use std::os::fd::BorrowedFd;

use linux_raw_sys::general::{
    FSCRYPT_KEY_REMOVAL_STATUS_FLAG_FILES_BUSY, FSCRYPT_KEY_REMOVAL_STATUS_FLAG_OTHER_USERS,
    FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER, FSCRYPT_KEY_STATUS_ABSENT,
    FSCRYPT_KEY_STATUS_INCOMPLETELY_REMOVED, FSCRYPT_KEY_STATUS_PRESENT, FSCRYPT_MODE_AES_256_CTS,
    FSCRYPT_MODE_AES_256_XTS, FSCRYPT_POLICY_FLAGS_PAD_32, FSCRYPT_POLICY_V2, fscrypt_add_key_arg,
    fscrypt_get_key_status_arg, fscrypt_get_policy_ex_arg, fscrypt_key_specifier,
    fscrypt_policy_v2, fscrypt_remove_key_arg,
};
use linux_raw_sys::ioctl::{
    FS_IOC_ADD_ENCRYPTION_KEY, FS_IOC_GET_ENCRYPTION_KEY_STATUS, FS_IOC_GET_ENCRYPTION_POLICY_EX,
    FS_IOC_REMOVE_ENCRYPTION_KEY, FS_IOC_SET_ENCRYPTION_POLICY,
};
use rustix::ioctl::{Opcode, Setter, Updater, ioctl};
use zeroize::Zeroize;

use crate::{KEY_LEN, KeyIdentifier, KeyStatus, Removal};

/// `struct fscrypt_add_key_arg` followed by its flexible `raw[]` member:
/// the kernel reads `raw_size` bytes right after the fixed part, which is
/// where `repr(C)` puts `raw` (the fixed part's size is a multiple of 4,
/// `raw`'s alignment is 1).
#[repr(C)]
struct AddKeyArg {
    arg: fscrypt_add_key_arg,
    raw: [u8; KEY_LEN],
}

// The kernel writes the identifier into `key_spec.u` and reads `raw_size`
// bytes after the fixed part: check the layout these blocks rely on.
const _: () = assert!(std::mem::offset_of!(AddKeyArg, raw) == size_of::<fscrypt_add_key_arg>());

fn identifier_spec(id: Option<&KeyIdentifier>) -> fscrypt_key_specifier {
    // SAFETY: `fscrypt_key_specifier` is plain old data (integers and a
    // union of byte arrays): all zeroes is a valid value of it.
    let mut spec: fscrypt_key_specifier = unsafe { std::mem::zeroed() };
    spec.type_ = FSCRYPT_KEY_SPEC_TYPE_IDENTIFIER;
    if let Some(id) = id {
        spec.u.identifier = id.0;
    }
    spec
}

pub(crate) fn add_key(fs: BorrowedFd<'_>, key: &[u8; KEY_LEN]) -> io::Result<KeyIdentifier> {
    // SAFETY: plain old data, as above; the padding of `raw` is ours.
    let mut arg: Box<AddKeyArg> = Box::new(unsafe { std::mem::zeroed() });
    arg.arg.key_spec = identifier_spec(None);
    arg.arg.raw_size = KEY_LEN as u32;
    arg.raw.copy_from_slice(key);
    const OPCODE: Opcode = FS_IOC_ADD_ENCRYPTION_KEY as Opcode;
    // SAFETY: FS_IOC_ADD_ENCRYPTION_KEY reads a `fscrypt_add_key_arg` and
    // `raw_size` bytes after it, all inside `AddKeyArg` (layout checked
    // above), and writes the identifier into `key_spec`; `arg` is borrowed
    // mutably for the call only.
    let updater = unsafe { Updater::<OPCODE, AddKeyArg>::new(&mut arg) };
    // SAFETY: the opcode and argument type match (see `updater`).
    let result = unsafe { ioctl(fs, updater) };
    arg.raw.zeroize();
    result?;
    // SAFETY: with a key specifier of type IDENTIFIER the kernel filled
    // the union's `identifier` member, and every bit pattern of it is a
    // valid byte array.
    let identifier = unsafe { arg.arg.key_spec.u.identifier };
    Ok(KeyIdentifier(identifier))
}

pub(crate) fn set_policy(dir: BorrowedFd<'_>, id: &KeyIdentifier) -> io::Result<()> {
    let policy = fscrypt_policy_v2 {
        version: FSCRYPT_POLICY_V2 as u8,
        contents_encryption_mode: FSCRYPT_MODE_AES_256_XTS as u8,
        filenames_encryption_mode: FSCRYPT_MODE_AES_256_CTS as u8,
        flags: FSCRYPT_POLICY_FLAGS_PAD_32 as u8,
        // 0: the file system's own data unit (its block size).
        log2_data_unit_size: 0,
        __reserved: [0; 3],
        master_key_identifier: id.0,
    };
    // The ioctl's number encodes a v1 policy's size, but the kernel reads
    // the version byte first and then the policy of that version's size.
    const OPCODE: Opcode = FS_IOC_SET_ENCRYPTION_POLICY as Opcode;
    // SAFETY: FS_IOC_SET_ENCRYPTION_POLICY reads a policy whose first byte
    // is its version; a `fscrypt_policy_v2` is what version 2 reads.
    // `Setter` owns the value and passes a pointer to it for the call.
    let setter = unsafe { Setter::<OPCODE, fscrypt_policy_v2>::new(policy) };
    // SAFETY: the opcode and argument type match (see `setter`).
    unsafe { ioctl(dir, setter) }?;
    Ok(())
}

pub(crate) fn remove_key(fs: BorrowedFd<'_>, id: &KeyIdentifier) -> io::Result<Removal> {
    // SAFETY: plain old data: all zeroes is valid.
    let mut arg: fscrypt_remove_key_arg = unsafe { std::mem::zeroed() };
    arg.key_spec = identifier_spec(Some(id));
    const OPCODE: Opcode = FS_IOC_REMOVE_ENCRYPTION_KEY as Opcode;
    // SAFETY: FS_IOC_REMOVE_ENCRYPTION_KEY reads and writes one
    // `fscrypt_remove_key_arg`, borrowed mutably for the call only.
    let updater = unsafe { Updater::<OPCODE, fscrypt_remove_key_arg>::new(&mut arg) };
    // SAFETY: the opcode and argument type match (see `updater`).
    unsafe { ioctl(fs, updater) }?;
    let flags = arg.removal_status_flags;
    Ok(if flags & FSCRYPT_KEY_REMOVAL_STATUS_FLAG_FILES_BUSY != 0 {
        Removal::FilesBusy
    } else if flags & FSCRYPT_KEY_REMOVAL_STATUS_FLAG_OTHER_USERS != 0 {
        Removal::OtherUsers
    } else {
        Removal::Removed
    })
}

pub(crate) fn key_status(fs: BorrowedFd<'_>, id: &KeyIdentifier) -> io::Result<KeyStatus> {
    // SAFETY: plain old data: all zeroes is valid.
    let mut arg: fscrypt_get_key_status_arg = unsafe { std::mem::zeroed() };
    arg.key_spec = identifier_spec(Some(id));
    const OPCODE: Opcode = FS_IOC_GET_ENCRYPTION_KEY_STATUS as Opcode;
    // SAFETY: FS_IOC_GET_ENCRYPTION_KEY_STATUS reads and writes one
    // `fscrypt_get_key_status_arg`, borrowed mutably for the call only.
    let updater = unsafe { Updater::<OPCODE, fscrypt_get_key_status_arg>::new(&mut arg) };
    // SAFETY: the opcode and argument type match (see `updater`).
    unsafe { ioctl(fs, updater) }?;
    match arg.status {
        FSCRYPT_KEY_STATUS_ABSENT => Ok(KeyStatus::Absent),
        FSCRYPT_KEY_STATUS_PRESENT => Ok(KeyStatus::Present),
        FSCRYPT_KEY_STATUS_INCOMPLETELY_REMOVED => Ok(KeyStatus::IncompletelyRemoved),
        other => Err(io::Error::other(format!(
            "the kernel answered key status {other}"
        ))),
    }
}

pub(crate) fn policy_identifier(dir: BorrowedFd<'_>) -> io::Result<Option<KeyIdentifier>> {
    // SAFETY: plain old data: all zeroes is valid.
    let mut arg: fscrypt_get_policy_ex_arg = unsafe { std::mem::zeroed() };
    arg.policy_size = size_of_val(&arg.policy) as u64;
    const OPCODE: Opcode = FS_IOC_GET_ENCRYPTION_POLICY_EX as Opcode;
    // SAFETY: FS_IOC_GET_ENCRYPTION_POLICY_EX reads `policy_size` and
    // writes at most that many bytes of policy into `policy`, which is
    // that large; `arg` is borrowed mutably for the call only.
    let updater = unsafe { Updater::<OPCODE, fscrypt_get_policy_ex_arg>::new(&mut arg) };
    // SAFETY: the opcode and argument type match (see `updater`).
    match unsafe { ioctl(dir, updater) } {
        Ok(()) => {}
        // Not encrypted.
        Err(e) if e == rustix::io::Errno::NODATA => return Ok(None),
        Err(e) => return Err(e.into()),
    }
    // SAFETY: every member of the union is plain bytes, and the kernel
    // wrote at least the version byte.
    let version = unsafe { arg.policy.version };
    if u32::from(version) != FSCRYPT_POLICY_V2 {
        return Err(io::Error::other(format!(
            "the directory has a version {version} policy, not 2"
        )));
    }
    // SAFETY: the kernel wrote a v2 policy (its version byte says so), and
    // any bit pattern is a valid `fscrypt_policy_v2`.
    let identifier = unsafe { arg.policy.v2.master_key_identifier };
    Ok(Some(KeyIdentifier(identifier)))
}
