//! An ext4 file system made with `-O encrypt` (fscrypt) in a file of a
//! temporary directory, loop-mounted: the real thing for the fscrypt
//! tests, with no disk to spare. Needs root, `mkfs.ext4` and `mount`.

use std::fs::{self, File};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// A loop-mounted ext4 with encryption on, unmounted when dropped.
pub struct LoopFs {
    image: PathBuf,
    mount: PathBuf,
    _dir: tempfile::TempDir,
}

impl LoopFs {
    /// A 32 MiB file system, mounted; `None` (after a `SKIPPED` line on
    /// stderr) where this cannot be done: not root, no `mkfs.ext4`, or a
    /// refused mount. Under CI (`CI` set), where all of these hold, that
    /// fails the test instead.
    pub fn new() -> Option<Self> {
        let skip = |why: &str| {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must run the fscrypt tests: {why}"
            );
            // Straight to stderr: the harness hides `eprintln!` of a test
            // that passes.
            let _ = writeln!(std::io::stderr(), "SKIPPED (not run, not passed): {why}");
            None
        };
        if !rustix::process::geteuid().is_root() {
            return skip("fscrypt on a loop mount needs root");
        }
        if !crate::tools::available("mkfs.ext4", &["-V"], "apt-get install e2fsprogs") {
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let image = dir.path().join("fs.img");
        File::create(&image).unwrap().set_len(32 << 20).unwrap();
        let status = Command::new("mkfs.ext4")
            .args(["-q", "-F", "-O", "encrypt"])
            .arg(&image)
            .status()
            .unwrap();
        assert!(status.success(), "mkfs.ext4 -O encrypt: {status}");
        let mount = dir.path().join("mnt");
        fs::create_dir(&mount).unwrap();
        let fs = Self {
            image,
            mount,
            _dir: dir,
        };
        if !fs.mount_it() {
            return skip("`mount -o loop` of an ext4 image was refused");
        }
        Some(fs)
    }

    /// Where it is mounted.
    pub fn path(&self) -> &Path {
        &self.mount
    }

    /// Unmounts and mounts it again: the kernel forgets every fscrypt key
    /// it was given, as at a power cycle.
    pub fn remount(&self) {
        self.unmount();
        assert!(self.mount_it(), "mounting {} again", self.image.display());
    }

    fn mount_it(&self) -> bool {
        Command::new("mount")
            .args(["-o", "loop"])
            .arg(&self.image)
            .arg(&self.mount)
            .status()
            .is_ok_and(|s| s.success())
    }

    fn unmount(&self) {
        let status = Command::new("umount").arg(&self.mount).status().unwrap();
        assert!(
            status.success(),
            "umount {}: {status}",
            self.mount.display()
        );
    }
}

impl Drop for LoopFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.mount).status();
    }
}
