//! Ledger fault injection over real files: truncation, bit flips, a deleted
//! copy, a crash between the two renames, unwritable directories (one, then
//! both), and real crashes (a writer process killed with SIGKILL); init as
//! the only fresh start; modes, owners and links; one owner at a time.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test code: what goes wrong panics and fails the run"
)]

mod common;

use std::fs;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::Unwritable;

use tq_std::backoff::BackoffConfig;
use tq_std::ledger::access::AccessProblem;
use tq_std::ledger::format::HEADER_LEN;
use tq_std::ledger::lock::LockError;
use tq_std::ledger::lrtq::{LrtqFileError, read_share_file};
use tq_std::ledger::{
    CopyFinding, CorruptReason, InitError, Ledger, LedgerStatus, MAX_PAYLOAD_LEN, OpenError,
    Repair, WriteError, WriteOutcome, WriteStep,
};

const FILE: &str = "tq-ledger";

/// Two "drives", each a directory.
struct Drives {
    _root: tempfile::TempDir,
    dirs: [PathBuf; 2],
}

impl Drives {
    /// Initialized, as `tq sled init` leaves them.
    fn new() -> Self {
        let drives = Self::uninitialized();
        tq_std::ledger::init(&drives.paths()).unwrap();
        drives
    }

    /// Empty directories (mode 0700), never initialized.
    fn uninitialized() -> Self {
        use std::os::unix::fs::DirBuilderExt;
        let root = tempfile::tempdir().unwrap();
        let dirs = ["m2-a", "m2-b"].map(|d| root.path().join(d));
        for dir in &dirs {
            fs::DirBuilder::new().mode(0o700).create(dir).unwrap();
        }
        Self { _root: root, dirs }
    }

    fn paths(&self) -> [PathBuf; 2] {
        self.dirs.clone().map(|d| d.join(FILE))
    }

    fn copy(&self, i: usize) -> PathBuf {
        self.dirs[i].join(FILE)
    }

    async fn open(&self) -> tq_std::ledger::Opened {
        Ledger::open(self.paths()).await.unwrap()
    }

    /// Both copies are valid, of the same generation, byte for byte.
    fn assert_mirrored(&self) {
        let a = fs::read(self.copy(0)).unwrap();
        let b = fs::read(self.copy(1)).unwrap();
        assert_eq!(a, b);
        assert!(!self.copy(0).with_file_name(format!("{FILE}.tmp")).exists());
        assert!(!self.copy(1).with_file_name(format!("{FILE}.tmp")).exists());
    }
}

#[tokio::test]
async fn an_initialized_sled_writes_and_reloads() {
    let drives = Drives::new();
    let opened = drives.open().await;
    assert!(opened.state.is_none());
    assert_eq!(opened.report.generation, 0);
    assert_eq!(opened.report.found, [CopyFinding::Current; 2]);
    let ledger = opened.ledger;
    // A new sled's ledger is not a bad copy.
    let found_bad: Vec<u64> = ledger.stats().copies.iter().map(|c| c.found_bad).collect();
    assert_eq!(found_bad, [0, 0]);
    assert!(matches!(
        ledger.write(b"state one").await,
        Ok(WriteOutcome::Both { generation: 1 })
    ));
    assert!(matches!(
        ledger.write(b"state two").await,
        Ok(WriteOutcome::Both { generation: 2 })
    ));
    drives.assert_mirrored();
    let stats = ledger.stats();
    assert_eq!((stats.generation, stats.writes_both), (2, 2));
    drop(ledger);

    let opened = drives.open().await;
    assert_eq!(
        opened.state.as_deref().map(Vec::as_slice),
        Some(&b"state two"[..])
    );
    assert_eq!(opened.report.generation, 2);
    assert_eq!(opened.report.found, [CopyFinding::Current; 2]);
    assert_eq!(opened.report.repair, [Repair::NotNeeded; 2]);
    assert!(matches!(
        opened.ledger.write(b"three").await,
        Ok(WriteOutcome::Both { generation: 3 })
    ));
}

async fn two_generations(drives: &Drives) {
    let ledger = drives.open().await.ledger;
    ledger.write(b"older").await.unwrap();
    ledger.write(b"newest").await.unwrap();
}

#[tokio::test]
async fn truncated_copies_are_repaired_at_open() {
    let drives = Drives::new();
    two_generations(&drives).await;
    let full = fs::read(drives.copy(0)).unwrap().len();
    for (len, reason) in [
        (0, CorruptReason::Truncated),
        (HEADER_LEN - 1, CorruptReason::Truncated),
        (HEADER_LEN, CorruptReason::LengthMismatch),
        (full - 1, CorruptReason::LengthMismatch),
    ] {
        let victim = len % 2; // alternate the copies
        let file = fs::OpenOptions::new()
            .write(true)
            .open(drives.copy(victim))
            .unwrap();
        file.set_len(len as u64).unwrap();
        let opened = drives.open().await;
        assert_eq!(
            opened.state.as_deref().map(Vec::as_slice),
            Some(&b"newest"[..])
        );
        assert_eq!(
            opened.report.found[victim],
            CopyFinding::Corrupt(reason),
            "len {len}"
        );
        assert_eq!(opened.report.found[1 - victim], CopyFinding::Current);
        assert_eq!(opened.report.repair[victim], Repair::Repaired);
        assert_eq!(opened.ledger.stats().copies[victim].repairs, 1);
        assert_eq!(opened.ledger.status(), LedgerStatus::Healthy);
        drives.assert_mirrored();
    }
}

#[tokio::test]
async fn flipped_bits_are_detected_and_repaired() {
    let drives = Drives::new();
    two_generations(&drives).await;
    let len = fs::read(drives.copy(1)).unwrap().len();
    // A bit in the magic, the version, the generation, the length, the
    // checksum and the payload.
    for (byte, reason) in [
        (0, CorruptReason::BadMagic),
        (8, CorruptReason::UnsupportedVersion(0)),
        (12, CorruptReason::ChecksumMismatch),
        (21, CorruptReason::LengthMismatch),
        (30, CorruptReason::ChecksumMismatch),
        (len - 1, CorruptReason::ChecksumMismatch),
    ] {
        let mut bytes = fs::read(drives.copy(1)).unwrap();
        bytes[byte] ^= if byte == 8 { 1 } else { 0x10 };
        fs::write(drives.copy(1), &bytes).unwrap();
        let opened = drives.open().await;
        assert_eq!(
            opened.state.as_deref().map(Vec::as_slice),
            Some(&b"newest"[..])
        );
        assert_eq!(
            opened.report.found[1],
            CopyFinding::Corrupt(reason),
            "byte {byte}"
        );
        assert_eq!(opened.report.repair[1], Repair::Repaired);
        drives.assert_mirrored();
    }
}

#[tokio::test]
async fn a_deleted_copy_is_rewritten() {
    let drives = Drives::new();
    two_generations(&drives).await;
    fs::remove_file(drives.copy(0)).unwrap();
    let opened = drives.open().await;
    assert_eq!(
        opened.state.as_deref().map(Vec::as_slice),
        Some(&b"newest"[..])
    );
    assert_eq!(
        opened.report.found,
        [CopyFinding::Absent, CopyFinding::Current]
    );
    assert_eq!(opened.report.repair[0], Repair::Repaired);
    drives.assert_mirrored();
}

#[tokio::test]
async fn a_crash_between_the_two_renames_loads_the_newer_copy_and_repairs_the_older() {
    let drives = Drives::new();
    two_generations(&drives).await; // generation 2 on both
    {
        // Generation 3 reaches copy 0 only: what a crash after the first
        // rename leaves, here made by copy 1's drive refusing the write.
        let ledger = drives.open().await.ledger;
        let _guard = Unwritable::new(&drives.dirs[1]);
        let outcome = ledger.write(b"generation three").await.unwrap();
        let WriteOutcome::Degraded {
            generation: 3,
            failed,
        } = outcome
        else {
            panic!("{outcome:?}")
        };
        assert_eq!((failed.copy, failed.step), (1, WriteStep::Create));
        assert_eq!(ledger.status(), LedgerStatus::Degraded { failed_copy: 1 });
    }
    // And the crash left copy 1's half-written temporary file.
    fs::write(drives.dirs[1].join(format!("{FILE}.tmp")), b"TQLEDGER half").unwrap();

    let opened = drives.open().await;
    assert_eq!(
        opened.state.as_deref().map(Vec::as_slice),
        Some(&b"generation three"[..])
    );
    assert_eq!(opened.report.generation, 3);
    assert_eq!(
        opened.report.found,
        [CopyFinding::Current, CopyFinding::Stale { generation: 2 }]
    );
    assert_eq!(opened.report.repair, [Repair::NotNeeded, Repair::Repaired]);
    assert_eq!(opened.report.leftover_removed, [false, true]);
    drives.assert_mirrored();
    // The next write continues past every generation on disk.
    let outcome = opened.ledger.write(b"four").await.unwrap();
    assert_eq!(outcome.generation(), 4);
}

#[tokio::test]
async fn one_unwritable_drive_degrades_and_recovers() {
    let drives = Drives::new();
    let ledger = drives.open().await.ledger;
    ledger.write(b"before").await.unwrap();
    let guard = Unwritable::new(&drives.dirs[0]);
    for n in 0..3 {
        let outcome = ledger
            .write(format!("degraded {n}").as_bytes())
            .await
            .unwrap();
        assert!(matches!(outcome, WriteOutcome::Degraded { failed: ref f, .. } if f.copy == 0));
    }
    assert_eq!(ledger.status(), LedgerStatus::Degraded { failed_copy: 0 });
    let stats = ledger.stats();
    assert_eq!(
        (stats.writes_degraded, stats.copies[0].write_failures),
        (3, 3)
    );

    // A restart while the drive is still bad: the newest state loads from
    // the good copy; the repair fails and is reported.
    drop(ledger);
    let opened = drives.open().await;
    assert_eq!(
        opened.state.as_deref().map(Vec::as_slice),
        Some(&b"degraded 2"[..])
    );
    assert_eq!(opened.report.found[0], CopyFinding::Stale { generation: 1 });
    assert!(matches!(
        opened.report.repair[0],
        Repair::Failed(WriteStep::Create, _)
    ));
    assert_eq!(
        opened.ledger.status(),
        LedgerStatus::Degraded { failed_copy: 0 }
    );

    drop(guard);
    let outcome = opened.ledger.write(b"recovered").await.unwrap();
    assert!(matches!(outcome, WriteOutcome::Both { .. }));
    assert_eq!(opened.ledger.status(), LedgerStatus::Healthy);
    drives.assert_mirrored();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_drives_unwritable_fail_typed_and_retry_until_the_disk_returns() {
    let drives = Drives::new();
    let ledger = drives.open().await.ledger;
    ledger.write(b"acknowledged").await.unwrap();
    let guards = [
        Unwritable::new(&drives.dirs[0]),
        Unwritable::new(&drives.dirs[1]),
    ];

    let Err(WriteError::NoCopy(failures)) = ledger.write(b"lost").await else {
        panic!("a write with both drives unwritable must fail")
    };
    assert_eq!(failures.each_ref().map(|f| f.copy), [0, 1]);
    assert!(matches!(ledger.status(), LedgerStatus::Failing { .. }));
    assert_eq!(ledger.stats().writes_failed, 1);

    // Nothing acknowledged was lost: a restart now loads the last state
    // (and the restarted ledger is the one that retries).
    drop(ledger);
    let opened = drives.open().await;
    assert_eq!(
        opened.state.as_deref().map(Vec::as_slice),
        Some(&b"acknowledged"[..])
    );
    let ledger = opened.ledger;

    let retrying = tokio::spawn({
        let ledger = ledger.clone();
        async move {
            let backoff = BackoffConfig {
                initial: Duration::from_millis(10),
                max: Duration::from_millis(50),
            };
            ledger.write_retrying(b"eventually", backoff).await
        }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while ledger.stats().write_retries < 3 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(matches!(ledger.status(), LedgerStatus::Failing { attempts } if attempts >= 3));
    assert!(!retrying.is_finished());

    drop(guards);
    let outcome = tokio::time::timeout(Duration::from_secs(5), retrying)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    // The guards make the two directories writable one after the other, so
    // a retry may land between them and write only the first copy; the
    // next write must then bring both copies back.
    let outcome = match outcome {
        WriteOutcome::Both { .. } => outcome,
        WriteOutcome::Degraded { failed, .. } => {
            assert_eq!(failed.copy, 1);
            assert!(matches!(ledger.status(), LedgerStatus::Degraded { .. }));
            ledger.write(b"eventually").await.unwrap()
        }
    };
    assert!(matches!(outcome, WriteOutcome::Both { .. }));
    assert_eq!(ledger.status(), LedgerStatus::Healthy);
    drop(ledger);
    let opened = drives.open().await;
    assert_eq!(
        opened.state.as_deref().map(Vec::as_slice),
        Some(&b"eventually"[..])
    );
    // Every failed attempt used up a generation; none is reused.
    assert_eq!(opened.report.generation, outcome.generation());
    assert!(outcome.generation() >= 2 + 3);
}

#[tokio::test]
async fn no_valid_copy_is_an_error_not_a_fresh_start() {
    let drives = Drives::new();
    two_generations(&drives).await;
    fs::write(drives.copy(0), b"garbage").unwrap();
    fs::write(drives.copy(1), b"").unwrap();
    let Err(OpenError::NoValidCopy(found)) = Ledger::open(drives.paths()).await else {
        panic!("opened a ledger with no valid copy")
    };
    assert_eq!(found, [CopyFinding::Corrupt(CorruptReason::Truncated); 2]);

    fs::remove_file(drives.copy(1)).unwrap();
    assert!(matches!(
        Ledger::open(drives.paths()).await,
        Err(OpenError::NoValidCopy(_))
    ));

    // A missing drive (directory) next to an empty one is not a fresh sled.
    let drives = Drives::uninitialized();
    fs::remove_dir(&drives.dirs[0]).unwrap();
    let Err(OpenError::NotInitialized(found)) = Ledger::open(drives.paths()).await else {
        panic!("a missing drive was taken for a fresh sled")
    };
    assert_eq!(found, [CopyFinding::NoDirectory, CopyFinding::Absent]);
}

#[tokio::test]
async fn a_missing_drive_next_to_a_good_one_runs_degraded() {
    let drives = Drives::new();
    two_generations(&drives).await;
    fs::remove_dir_all(&drives.dirs[0]).unwrap();
    let opened = drives.open().await;
    assert_eq!(
        opened.state.as_deref().map(Vec::as_slice),
        Some(&b"newest"[..])
    );
    assert_eq!(opened.report.found[0], CopyFinding::NoDirectory);
    assert!(matches!(
        opened.report.repair[0],
        Repair::Failed(WriteStep::Create, _)
    ));
    assert!(
        !drives.dirs[0].exists(),
        "the ledger never creates a drive's directory"
    );
    assert_eq!(
        opened.ledger.status(),
        LedgerStatus::Degraded { failed_copy: 0 }
    );
}

#[tokio::test]
async fn an_oversize_state_is_refused_before_any_io() {
    let drives = Drives::new();
    let ledger = drives.open().await.ledger;
    let big = vec![0; MAX_PAYLOAD_LEN + 1];
    assert!(matches!(ledger.write(&big).await, Err(WriteError::TooLarge(n)) if n == big.len()));
    assert_eq!(ledger.stats().generation, 0, "nothing written");
    let largest = vec![1; MAX_PAYLOAD_LEN];
    ledger.write(&largest).await.unwrap();
    drop(ledger);
    assert_eq!(drives.open().await.state.unwrap().len(), MAX_PAYLOAD_LEN);
}

#[tokio::test]
async fn the_lrtq_share_file_is_read_and_checked_by_the_core() {
    use tq_core::crypto::ShareDigest;
    use tq_core::crypto::lrtq::LrtqShare;
    use tq_core::ids::RackId;
    use tq_core::persistent::LrtqShareData;
    use tq_core::wire::{MAX_LRTQ_SHARE_DATA_LEN, encode_lrtq_share_data};

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("lrtq");
    // Configured but missing: an error naming it, never a fresh start.
    let Err(LrtqFileError::Missing(missing)) = read_share_file(path.clone()).await else {
        panic!("a missing LRTQ share file was not an error")
    };
    assert_eq!(missing, path);

    let mut share_bytes = [0u8; 33];
    share_bytes[0] = 1;
    share_bytes[1] = 5;
    let share = LrtqShare::from_bytes(&share_bytes).unwrap();
    let mut share_digests = heapless::Vec::new();
    share_digests.push(share.digest()).unwrap();
    for i in 1..=254u8 {
        share_digests.push(ShareDigest([i; 32])).unwrap();
    }
    let rack_id = RackId([9; 16]);
    let data = LrtqShareData {
        rack_id,
        threshold: tq_core::ids::LrtqThreshold::new(2).unwrap(),
        share,
        share_digests,
    };
    let mut buf = vec![0; MAX_LRTQ_SHARE_DATA_LEN];
    let encoded = encode_lrtq_share_data(&data, &mut buf).unwrap().to_vec();
    fs::write(&path, &encoded).unwrap();
    let file = read_share_file(path.clone()).await.unwrap();
    assert_eq!(
        (file.rack_id, file.bytes.as_slice()),
        (rack_id, encoded.as_slice())
    );

    fs::write(&path, &encoded[..encoded.len() - 1]).unwrap();
    assert!(matches!(
        read_share_file(path.clone()).await,
        Err(LrtqFileError::Decode(_))
    ));
    fs::write(&path, vec![1; MAX_LRTQ_SHARE_DATA_LEN + 1]).unwrap();
    assert!(matches!(
        read_share_file(path.clone()).await,
        Err(LrtqFileError::TooLong)
    ));
}

// --- Init, access and ownership. ---

fn mode_of(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[tokio::test]
async fn only_init_makes_a_fresh_sled_and_it_marks_both_copies() {
    // Nothing on either drive (unmounted, or never initialized) does not
    // open, whether the directories are there or not.
    let drives = Drives::uninitialized();
    let Err(OpenError::NotInitialized(found)) = Ledger::open(drives.paths()).await else {
        panic!("empty drives were taken for a fresh sled")
    };
    assert_eq!(found, [CopyFinding::Absent; 2]);
    for dir in &drives.dirs {
        fs::remove_dir_all(dir).unwrap();
    }
    let Err(OpenError::NotInitialized(found)) = Ledger::open(drives.paths()).await else {
        panic!("missing drives were taken for a fresh sled")
    };
    assert_eq!(found, [CopyFinding::NoDirectory; 2]);

    // Init creates the directories (0700) and marks both copies.
    tq_std::ledger::init(&drives.paths()).unwrap();
    for i in 0..2 {
        assert_eq!(mode_of(&drives.dirs[i]), 0o700);
        assert_eq!(mode_of(&drives.copy(i)), 0o600);
    }
    drives.assert_mirrored();
    let opened = drives.open().await;
    assert!(opened.state.is_none());
    assert_eq!(opened.report.found, [CopyFinding::Current; 2]);
    drop(opened);

    // A second init refuses: the sled is set up.
    assert!(matches!(
        tq_std::ledger::init(&drives.paths()),
        Err(InitError::AlreadyInitialized(_))
    ));

    // One initialized copy missing is a degraded mirror, repaired; never
    // a fresh start.
    fs::remove_file(drives.copy(1)).unwrap();
    let opened = drives.open().await;
    assert!(opened.state.is_none());
    assert_eq!(
        opened.report.found,
        [CopyFinding::Current, CopyFinding::Absent]
    );
    assert_eq!(opened.report.repair[1], Repair::Repaired);
    drives.assert_mirrored();
    drop(opened);

    // Init never creates a drive: a missing parent is an error.
    let root = tempfile::tempdir().unwrap();
    let paths = ["m2-a", "m2-b"].map(|d| root.path().join(d).join("tq").join(FILE));
    let Err(InitError::Directory(dir, _)) = tq_std::ledger::init(&paths) else {
        panic!("init created a drive's directory")
    };
    assert_eq!(dir, root.path().join("m2-a").join("tq"));
    assert!(!root.path().join("m2-a").exists());
}

#[tokio::test]
async fn copies_are_private_and_never_written_through_a_link() {
    // Under the usual umask, not because of it.
    let drives = Drives::new();
    let ledger = drives.open().await.ledger;
    ledger.write(b"a key share").await.unwrap();
    for i in 0..2 {
        assert_eq!(mode_of(&drives.copy(i)), 0o600, "copy {i}");
    }

    // A link planted at the temporary file's name receives nothing.
    let elsewhere = drives.dirs[0].parent().unwrap().join("elsewhere");
    fs::write(&elsewhere, b"").unwrap();
    for dir in &drives.dirs {
        std::os::unix::fs::symlink(&elsewhere, dir.join(format!("{FILE}.tmp"))).unwrap();
    }
    ledger.write(b"another key share").await.unwrap();
    assert_eq!(fs::read(&elsewhere).unwrap(), b"");
    for i in 0..2 {
        assert_eq!(mode_of(&drives.copy(i)), 0o600, "copy {i}");
        assert!(fs::symlink_metadata(drives.copy(i)).unwrap().is_file());
    }
    drop(ledger);
    let opened = drives.open().await;
    assert_eq!(
        opened.state.as_deref().map(Vec::as_slice),
        Some(&b"another key share"[..])
    );
}

fn refused(result: Result<tq_std::ledger::Opened, OpenError>) -> AccessProblem {
    match result {
        Err(OpenError::Unsafe(refused)) => {
            assert!(
                refused
                    .to_string()
                    .contains(&*refused.path.to_string_lossy())
            );
            refused.problem
        }
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("opened"),
    }
}

#[tokio::test]
async fn a_copy_or_directory_open_to_others_or_foreign_is_refused() {
    let drives = Drives::new();
    two_generations(&drives).await;

    set_mode(&drives.copy(1), 0o644);
    assert_eq!(
        refused(Ledger::open(drives.paths()).await),
        AccessProblem::OpenToOthers { mode: 0o644 }
    );
    assert_eq!(mode_of(&drives.copy(1)), 0o644, "refused, not repaired");
    set_mode(&drives.copy(1), 0o600);

    set_mode(&drives.dirs[0], 0o755);
    assert_eq!(
        refused(Ledger::open(drives.paths()).await),
        AccessProblem::OpenToOthers { mode: 0o755 }
    );
    set_mode(&drives.dirs[0], 0o700);

    // A copy that is a link (to a valid copy, even) is refused.
    let moved = drives.dirs[0].parent().unwrap().join("moved");
    fs::rename(drives.copy(0), &moved).unwrap();
    std::os::unix::fs::symlink(&moved, drives.copy(0)).unwrap();
    assert_eq!(
        refused(Ledger::open(drives.paths()).await),
        AccessProblem::Symlink
    );
    fs::remove_file(drives.copy(0)).unwrap();
    fs::rename(&moved, drives.copy(0)).unwrap();

    // Another user's copy (only root can make one).
    if effective_uid() == 0 {
        std::os::unix::fs::chown(drives.copy(0), Some(1), None).unwrap();
        assert_eq!(
            refused(Ledger::open(drives.paths()).await),
            AccessProblem::ForeignOwner { owner: 1, euid: 0 }
        );
        std::os::unix::fs::chown(drives.copy(0), Some(0), None).unwrap();
    }
    assert_eq!(drives.open().await.report.generation, 2);
}

fn effective_uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    // The owner of a file this process just made is its effective uid.
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe");
    fs::write(&probe, b"").unwrap();
    fs::metadata(&probe).unwrap().uid()
}

#[tokio::test]
async fn a_second_owner_is_refused_while_the_first_lives() {
    let drives = Drives::new();
    let first = drives.open().await;
    first.ledger.write(b"owned").await.unwrap();
    // A leftover of the owner's: the second opener must not touch it.
    let leftover = drives.dirs[1].join(format!("{FILE}.tmp"));
    fs::write(&leftover, b"in flight").unwrap();
    let Err(OpenError::Locked(LockError::Held(lock))) = Ledger::open(drives.paths()).await else {
        panic!("two owners of one ledger")
    };
    assert_eq!(lock, drives.dirs[0].join(format!("{FILE}.lock")));
    assert!(leftover.exists(), "the refused opener removed a file");
    assert!(matches!(
        tq_std::ledger::init(&drives.paths()),
        Err(InitError::Locked(_))
    ));
    drop(first);
    let second = drives.open().await;
    assert_eq!(
        second.state.as_deref().map(Vec::as_slice),
        Some(&b"owned"[..])
    );
    assert!(!leftover.exists());
}

// --- Real crashes: a writer process killed at random moments. ---

const CHILD_ENV: &str = "TQ_LEDGER_CRASH_CHILD_DIR";
const CRASH_PAYLOAD_LEN: usize = 16 * 1024;

/// A payload that names its sequence number and whose every byte depends
/// on it, so a torn or mixed write cannot pass for a valid state.
fn crash_payload(seq: u64) -> Vec<u8> {
    let mut payload = seq.to_le_bytes().to_vec();
    payload.extend(
        (0..CRASH_PAYLOAD_LEN).map(|i| (seq as usize).wrapping_mul(31).wrapping_add(i) as u8),
    );
    payload
}

fn sequence_of(payload: &[u8]) -> u64 {
    let seq = u64::from_le_bytes(payload[..8].try_into().unwrap());
    assert_eq!(
        payload,
        crash_payload(seq),
        "payload is not one that was written"
    );
    seq
}

/// The writer: run only as the child of the test below. Writes forever,
/// printing each sequence number once its write returned.
#[tokio::test]
#[ignore = "child process of ledger_survives_a_killed_writer"]
async fn crash_child() {
    use std::io::Write;
    let dir = PathBuf::from(std::env::var(CHILD_ENV).expect("only run by the crash test"));
    let paths = [dir.join("a").join(FILE), dir.join("b").join(FILE)];
    let opened = Ledger::open(paths).await.unwrap();
    let mut seq = opened.state.map_or(0, |s| sequence_of(&s));
    let mut out = std::io::stdout().lock();
    loop {
        seq += 1;
        opened.ledger.write(&crash_payload(seq)).await.unwrap();
        writeln!(out, "acked {seq}").unwrap();
        out.flush().unwrap();
    }
}

#[test]
fn ledger_survives_a_killed_writer() {
    use std::io::{BufRead, BufReader};
    let root = tempfile::tempdir().unwrap();
    tq_std::ledger::init(&["a", "b"].map(|d| root.path().join(d).join(FILE))).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut last_acked = 0;
    for round in 0..12u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "crash_child",
                "--ignored",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ENV, root.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Kill after a varying number of acknowledged writes, so the kill
        // lands at different points of a write.
        let wanted = 3 + round * 7 % 20;
        let mut lines = BufReader::new(stdout).lines();
        let mut acked_now = 0;
        for line in lines.by_ref() {
            let line = line.unwrap();
            if let Some(n) = line.strip_prefix("acked ") {
                last_acked = n.parse().unwrap();
                acked_now += 1;
                if acked_now == wanted {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_micros(round * 337 % 2000));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Acknowledgements printed before the kill landed.
        for line in lines.map_while(Result::ok) {
            if let Some(n) = line.strip_prefix("acked ") {
                last_acked = n.parse().unwrap();
            }
        }
        assert!(
            acked_now == wanted,
            "round {round}: the child stopped early"
        );

        let paths = [
            root.path().join("a").join(FILE),
            root.path().join("b").join(FILE),
        ];
        let opened = runtime.block_on(Ledger::open(paths)).unwrap();
        let loaded = sequence_of(&opened.state.unwrap());
        assert!(
            loaded >= last_acked,
            "round {round}: acked {last_acked}, loaded {loaded}"
        );
        assert!(
            loaded <= last_acked + 1,
            "round {round}: a write that never started"
        );
        last_acked = loaded;
    }
}
