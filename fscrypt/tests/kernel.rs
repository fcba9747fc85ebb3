//! The ioctls against the running kernel, on an ext4 file system made
//! with `-O encrypt` in a file and loop-mounted: needs root, `mkfs.ext4`
//! and a kernel with fscrypt; otherwise a `SKIPPED` line says why (and
//! under CI, where all of these hold, the test fails instead).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::fs::{self, File};
use std::io::{ErrorKind, Write as _};
use std::path::{Path, PathBuf};
use std::process::Command;

use tq_fscrypt::{
    KEY_LEN, KeyStatus, RawKey, Removal, add_key, key_status, policy_identifier, remove_key,
    set_policy,
};

/// A loop-mounted ext4 with encryption on, unmounted when dropped.
struct LoopFs {
    _dir: tempfile::TempDir,
    mount: PathBuf,
}

impl LoopFs {
    fn new() -> Option<Self> {
        let skip = |why: String| {
            assert!(std::env::var_os("CI").is_none(), "CI must run this: {why}");
            let _ = writeln!(std::io::stderr(), "SKIPPED (not run, not passed): {why}");
            None
        };
        if !rustix::process::geteuid().is_root() {
            return skip("fscrypt on a loop mount needs root".into());
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        File::create(&image).unwrap().set_len(32 << 20).unwrap();
        let mkfs = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-O", "encrypt"])
            .arg(&image)
            .status();
        match mkfs {
            Err(e) if e.kind() == ErrorKind::NotFound => {
                return skip("`mkfs.ext4` is not installed (apt-get install e2fsprogs)".into());
            }
            Err(e) => panic!("mkfs.ext4: {e}"),
            Ok(status) => assert!(status.success(), "mkfs.ext4: {status}"),
        }
        let mount = dir.path().join("mnt");
        fs::create_dir(&mount).unwrap();
        let status = Command::new("mount")
            .args(["-o", "loop"])
            .arg(&image)
            .arg(&mount)
            .status()
            .unwrap();
        if !status.success() {
            return skip(format!("mount -o loop failed ({status})"));
        }
        Some(Self { _dir: dir, mount })
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}

fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn a_directory_locks_and_unlocks_with_its_key() {
    let Some(fs) = LoopFs::new() else { return };
    let root = File::open(&fs.mount).unwrap();
    let vault = fs.mount.join("vault");
    fs::create_dir(&vault).unwrap();
    let key = RawKey::new([0x5a; KEY_LEN]);

    assert_eq!(
        policy_identifier(File::open(&vault).unwrap()).unwrap(),
        None
    );
    let id = add_key(&root, &key).unwrap();
    assert_eq!(key_status(&root, &id).unwrap(), KeyStatus::Present);
    set_policy(File::open(&vault).unwrap(), &id).unwrap();
    // The same policy again is accepted: "set on first use" is idempotent.
    set_policy(File::open(&vault).unwrap(), &id).unwrap();
    fs::write(vault.join("note.txt"), b"kept safe").unwrap();
    assert_eq!(
        policy_identifier(File::open(&vault).unwrap()).unwrap(),
        Some(id)
    );

    assert_eq!(remove_key(&root, &id).unwrap(), Removal::Removed);
    assert_eq!(key_status(&root, &id).unwrap(), KeyStatus::Absent);
    // Locked: the name is ciphertext, and the file cannot be opened.
    let locked = names(&vault);
    assert_eq!(locked.len(), 1);
    assert_ne!(locked[0], "note.txt");
    assert!(fs::read(vault.join(&locked[0])).is_err());

    // The same key again unlocks it; another key is not the directory's.
    assert_eq!(add_key(&root, &key).unwrap(), id);
    assert_eq!(names(&vault), ["note.txt"]);
    assert_eq!(fs::read(vault.join("note.txt")).unwrap(), b"kept safe");
    let other = add_key(&root, &RawKey::new([0x11; KEY_LEN])).unwrap();
    assert_ne!(other, id);
    let refused = set_policy(File::open(&vault).unwrap(), &other).unwrap_err();
    assert_eq!(
        refused.raw_os_error(),
        Some(rustix::io::Errno::EXIST.raw_os_error())
    );
    remove_key(&root, &other).unwrap();
    remove_key(&root, &id).unwrap();
}
