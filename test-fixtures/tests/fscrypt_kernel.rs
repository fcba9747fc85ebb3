//! tq-fscrypt's ioctls against the running kernel (here, not in
//! tq-fscrypt: this crate is built on it), on an ext4 file system made
//! with `-O encrypt` in a file and loop-mounted: needs root, `mkfs.ext4`
//! and a kernel with fscrypt (`tq_test_fixtures::loopfs`); otherwise a
//! `SKIPPED` line says why (and under CI the test fails instead).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::fs::{self, File};
use std::path::Path;

use tq_fscrypt::{
    KEY_LEN, KeyStatus, RawKey, Removal, add_key, key_status, policy_identifier, remove_key,
    set_policy,
};

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
    let Some(fs) = tq_test_fixtures::loopfs::LoopFs::new() else {
        return;
    };
    let root = File::open(fs.path()).unwrap();
    let vault = fs.path().join("vault");
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
    assert_eq!(refused.kind(), std::io::ErrorKind::AlreadyExists);
    remove_key(&root, &other).unwrap();
    remove_key(&root, &id).unwrap();
}
