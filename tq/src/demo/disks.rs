//! The demo's encrypted disks: one per sled, unlocked by the sled's key
//! manager (`tq_std::disks`) once the rack secret can be had.
//!
//! With root, `mkfs.ext4` and loop mounts (a CI machine, a developer's as
//! root), each sled gets a small ext4 image made with `-O encrypt`,
//! loop-mounted in its directory, and an `fscrypt` disk: the directory
//! `vault` on it. Before the cold boot each member writes a file there;
//! the power cut remounts every image (the kernel forgets its keys, as at
//! a power cycle), so every vault is locked, its names unreadable, until
//! the rack unlocks; then each file must read back intact.
//!
//! Elsewhere each sled gets a `command` disk whose program only reads the
//! key (`cat > /dev/null`): the keys are made, wrapped, re-wrapped and
//! handed over all the same, but there is no data to check, and the
//! summary says which backend ran and why.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use tq_core::ids::Epoch;

use super::layout::Layout;
use super::sleds::Sleds;
use crate::api::types::DiskStatus;

/// Bytes of each sled's file system image.
const IMAGE_LEN: u64 = 8 << 20;

/// How long the demo waits for the disks to be unlocked and re-wrapped
/// after a phase (a re-wrap follows a commit by moments).
pub const DISK_LIMIT: Duration = Duration::from_secs(30);

/// What each member writes in its vault before the cold boot.
const NOTE: &str = "note.txt";

/// Which backend the demo's disks use.
pub enum Backend {
    /// fscrypt on a loop-mounted image per sled: each sled's mount point.
    Fscrypt(Vec<PathBuf>),
    /// A program that reads the key and nothing else: why not fscrypt.
    Command(String),
}

/// The demo's disks. Unmounts every image when dropped.
pub struct DemoDisks {
    backend: Backend,
}

/// Why a disk could not be set up (as fscrypt: the demo then falls back
/// to `command`).
#[derive(Debug, thiserror::Error)]
#[error("{what}: {source}")]
pub struct SetUpError {
    what: String,
    #[source]
    source: io::Error,
}

fn run(what: &str, command: &mut Command) -> Result<(), SetUpError> {
    let failed = |source| SetUpError {
        what: what.to_owned(),
        source,
    };
    let status = command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map_err(failed)?;
    if status.success() {
        Ok(())
    } else {
        Err(failed(io::Error::other(status.to_string())))
    }
}

impl DemoDisks {
    /// Gives every sled of `layout` a disk (appended to its `sled.toml`):
    /// fscrypt where it can be had, else `command`.
    pub fn set_up(layout: &Layout) -> io::Result<Self> {
        let backend = if rustix::process::geteuid().is_root() {
            let mut mounts = Vec::new();
            let mut made = Ok(());
            for sled in &layout.sleds {
                let mount = sled.dir.join("disk");
                made = make_image(&sled.dir.join("disk.img"), &mount);
                if made.is_err() {
                    break;
                }
                mounts.push(mount);
            }
            match made {
                Ok(()) => Backend::Fscrypt(mounts),
                Err(e) => {
                    for mount in &mounts {
                        unmount(mount);
                    }
                    Backend::Command(format!("fscrypt could not be set up ({e})"))
                }
            }
        } else {
            Backend::Command("fscrypt on loop-mounted images needs root".into())
        };
        for sled in &layout.sleds {
            let entry = match &backend {
                Backend::Fscrypt(mounts) => format!(
                    "\n[[disks]]\nname = \"vault\"\nserial = \"DEMO-DISK-{:02}\"\nbackend = \"fscrypt\"\ndir = \"{}\"\n",
                    sled.index,
                    vault(mounts.get(sled.index).map_or(Path::new(""), |m| m)).display()
                ),
                Backend::Command(_) => format!(
                    "\n[[disks]]\nname = \"vault\"\nserial = \"DEMO-DISK-{:02}\"\nbackend = \"command\"\nunlock = [\"sh\", \"-c\", \"cat > /dev/null\"]\n",
                    sled.index
                ),
            };
            let mut text = fs::read_to_string(&sled.config)?;
            text.push_str(&entry);
            fs::write(&sled.config, text)?;
        }
        Ok(Self { backend })
    }

    /// Which backend, for the progress and the summary.
    pub fn describe(&self) -> String {
        match &self.backend {
            Backend::Fscrypt(mounts) => format!(
                "disks: fscrypt (v2 policy) on {} loop-mounted ext4 images, one per sled",
                mounts.len()
            ),
            Backend::Command(why) => {
                format!("disks: the `command` backend (the key to `cat > /dev/null`): {why}")
            }
        }
    }

    /// Whether the disks hold data to check (fscrypt).
    pub fn real(&self) -> bool {
        matches!(self.backend, Backend::Fscrypt(_))
    }

    /// Writes each member's note in its vault (its disk unlocked).
    pub fn write_notes(&self, members: &[usize]) -> io::Result<()> {
        if let Backend::Fscrypt(mounts) = &self.backend {
            for &i in members {
                if let Some(mount) = mounts.get(i) {
                    fs::write(vault(mount).join(NOTE), note(i))?;
                }
            }
        }
        Ok(())
    }

    /// The power cut's part: every image remounted, so the kernel forgets
    /// every key. Returns how many of `members`' vaults are then locked
    /// (their note's name unreadable and the note itself unopenable).
    pub fn power_cut(&self, members: &[usize]) -> io::Result<usize> {
        let Backend::Fscrypt(mounts) = &self.backend else {
            return Ok(0);
        };
        for mount in mounts {
            unmount_now(mount)?;
            mount_image(&image_of(mount), mount).map_err(|e| io::Error::other(e.to_string()))?;
        }
        let mut locked = 0;
        for &i in members {
            let Some(mount) = mounts.get(i) else { continue };
            let names: Vec<_> = fs::read_dir(vault(mount))?
                .filter_map(Result::ok)
                .map(|e| e.file_name())
                .collect();
            let hidden = !names.iter().any(|n| n == NOTE)
                && names
                    .iter()
                    .all(|n| fs::read(vault(mount).join(n)).is_err());
            if hidden && !names.is_empty() {
                locked += 1;
            }
        }
        Ok(locked)
    }

    /// How many of `members`' notes read back intact.
    pub fn notes_intact(&self, members: &[usize]) -> usize {
        let Backend::Fscrypt(mounts) = &self.backend else {
            return 0;
        };
        members
            .iter()
            .filter(|&&i| {
                mounts.get(i).is_some_and(|mount| {
                    fs::read_to_string(vault(mount).join(NOTE)).is_ok_and(|text| text == note(i))
                })
            })
            .count()
    }
}

impl Drop for DemoDisks {
    fn drop(&mut self) {
        if let Backend::Fscrypt(mounts) = &self.backend {
            for mount in mounts {
                unmount(mount);
            }
        }
    }
}

/// How many of `members`' disks are unlocked with their key wrapped under
/// `epoch`, waiting up to `limit` for all of them (a re-wrap follows a
/// commit by moments).
pub async fn wait_wrapped(
    sleds: &Sleds,
    members: &[usize],
    epoch: Epoch,
    limit: Duration,
) -> usize {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let mut done = 0;
        for &i in members {
            if let Ok(status) = sleds.status(i).await
                && !status.disks.is_empty()
                && status
                    .disks
                    .iter()
                    .all(|d| d.state == DiskStatus::Unlocked && d.wrapped_epoch == Some(epoch))
            {
                done += 1;
            }
        }
        if done == members.len() || tokio::time::Instant::now() >= deadline {
            return done;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn vault(mount: &Path) -> PathBuf {
    mount.join("vault")
}

fn image_of(mount: &Path) -> PathBuf {
    mount.with_file_name("disk.img")
}

fn note(i: usize) -> String {
    format!("written by sled {i} before the cold boot\n")
}

fn make_image(image: &Path, mount: &Path) -> Result<(), SetUpError> {
    let io = |what: &str| {
        let what = what.to_owned();
        move |source| SetUpError { what, source }
    };
    fs::File::create(image)
        .and_then(|f| f.set_len(IMAGE_LEN))
        .map_err(io("creating the image"))?;
    run(
        "mkfs.ext4 -O encrypt",
        Command::new("mkfs.ext4")
            .args(["-q", "-F", "-O", "encrypt"])
            .arg(image),
    )?;
    fs::create_dir_all(mount).map_err(io("creating the mount point"))?;
    mount_image(image, mount)?;
    fs::create_dir(vault(mount)).map_err(io("creating the vault"))
}

fn mount_image(image: &Path, mount: &Path) -> Result<(), SetUpError> {
    run(
        "mount -o loop",
        Command::new("mount")
            .args(["-o", "loop"])
            .arg(image)
            .arg(mount),
    )
}

/// Unmounts `mount`, retrying for a few seconds while it is busy (a
/// killed sled's last file handles may still be closing).
fn unmount_now(mount: &Path) -> io::Result<()> {
    let mut tries = 0;
    loop {
        let out = Command::new("umount").arg(mount).output()?;
        if out.status.success() {
            return Ok(());
        }
        tries += 1;
        if tries >= 50 {
            return Err(io::Error::other(format!(
                "umount {}: {}: {}",
                mount.display(),
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn unmount(mount: &Path) {
    let _ = Command::new("umount")
        .arg(mount)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}
