//! `LoopFs::remount` locks every encrypted directory even when another
//! mount namespace keeps the file system alive through the unmount.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::fs;
use std::io::Write as _;

use tq_fscrypt::RawKey;
use tq_test_fixtures::loopfs::{LoopFs, MountHolder};

#[test]
fn remount_locks_directories_though_another_namespace_holds_the_mount() {
    let Some(loop_fs) = LoopFs::new() else {
        return;
    };
    let vault = loop_fs.path().join("vault");
    fs::create_dir(&vault).unwrap();
    let dir = fs::File::open(&vault).unwrap();
    let id = tq_fscrypt::add_key(&dir, &RawKey::new([7; tq_fscrypt::KEY_LEN])).unwrap();
    tq_fscrypt::set_policy(&dir, &id).unwrap();
    drop(dir);
    fs::write(vault.join("note.txt"), b"before the power cut").unwrap();
    let Some(holder) = MountHolder::start() else {
        let _ = writeln!(
            std::io::stderr(),
            "SKIPPED (not run, not passed): `unshare --mount` could not make a mount namespace"
        );
        return;
    };
    loop_fs.remount();
    drop(holder);
    let names: Vec<_> = fs::read_dir(&vault)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names.len(), 1);
    assert_ne!(names[0], "note.txt", "the directory is locked");
    assert!(fs::read(vault.join(&names[0])).is_err());
}
