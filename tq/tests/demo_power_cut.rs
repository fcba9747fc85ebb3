//! The demo's power cut locks every vault even when the kernel keeps the
//! file systems alive through the remount: here a process in a mount
//! namespace of its own (made after the images were mounted, so holding a
//! copy of each mount that no unmount of ours reaches where the root
//! mount is private, as `ip netns exec` and another test's sleds do)
//! stays up across the power cut.
//!
//! Needs root, `mkfs.ext4`, loop mounts and `unshare`; elsewhere it says
//! so (`SKIPPED` on stderr) and checks nothing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "test code: what goes wrong panics and fails the run"
)]

use std::fs;
use std::io::Write as _;

use tq::demo::disks::DemoDisks;
use tq::demo::layout::{Addressing, Layout};
use tq_fscrypt::RawKey;
use tq_test_fixtures::loopfs::MountHolder;

fn skip(why: &str) {
    let _ = writeln!(std::io::stderr(), "SKIPPED (not run, not passed): {why}");
}

#[test]
fn power_cut_locks_every_vault_though_another_namespace_keeps_the_mounts() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout::create(dir.path(), 3, 0, 5, &Addressing::Loopback).unwrap();
    let disks = DemoDisks::set_up(&layout).unwrap();
    if !disks.real() {
        return skip(&disks.describe());
    }
    let members: Vec<usize> = (0..layout.sleds.len()).collect();
    // What a sled's key manager does: a key added, the vault under it.
    for sled in &layout.sleds {
        let vault = fs::File::open(sled.dir.join("disk").join("vault")).unwrap();
        let key = RawKey::new_with(|k| k.fill(u8::try_from(sled.index).unwrap() + 1));
        let id = tq_fscrypt::add_key(&vault, &key).unwrap();
        tq_fscrypt::set_policy(&vault, &id).unwrap();
    }
    disks.write_notes(&members).unwrap();
    let Some(holder) = MountHolder::start() else {
        return skip("`unshare --mount` could not make a mount namespace");
    };
    let cut = disks.power_cut(&members).unwrap();
    drop(holder);
    assert_eq!(cut.locked, members.len(), "{cut:?}");
}
